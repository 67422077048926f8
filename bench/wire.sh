#!/usr/bin/env bash
# bench/wire.sh: bytes and packets on the wire per Gemini page view, full and
# resumed, for kilnet, the floor (bench/floor.c), molly-brown and nginx's stream
# module, all serving kilnet's home page. Each server runs in a network namespace
# of its own with the client (openssl s_client), so the namespace's loopback
# counters (/proc/net/dev) count exactly one view's packets: IP + TCP + TLS, both
# directions (the 14-byte Ethernet header of lo taken off). Each figure is the
# median of RUNS views. Run by make bench (bench/run.sh); alone:
#   bash bench/wire.sh    (needs root for ip netns; RUNS=9 by default)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/lib.sh"
RUNS=${RUNS:-9}
W=$(mktemp -d /tmp/kilnet-wire.XXXXXX)
NSS=()
cleanup() {
	local ns
	for ns in "${NSS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		sleep 0.2
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT
command -v ip >/dev/null && [ "$(id -u)" = 0 ] || { echo "wire: needs root and ip (iproute2): skipped"; exit 0; }

PORT=11965
# inside NS: until PORT accepts (5 s at most)
ns_wait() { ip netns exec "$1" bash -c "for i in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && exit 0; sleep 0.05; done; exit 1"; }
ns_new() { ip netns add "$1" && ip netns exec "$1" ip link set lo up && NSS+=("$1"); }
lo_count() { ip netns exec "$1" awk '/^ *lo:/ {print $2, $3}' /proc/net/dev; }

# one view: prints "BYTES PACKETS REUSED(0/1)"
view() {
	local ns=$1; shift
	local b0 p0 b1 p1 out
	read -r b0 p0 < <(lo_count "$ns")
	out=$(printf 'gemini://localhost:%s/\r\n' "$PORT" |
	    ip netns exec "$ns" timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername localhost -ign_eof "$@" 2>/dev/null)
	sleep 0.3	# the last ACKs and FINs
	read -r b1 p1 < <(lo_count "$ns")
	echo "$(( (b1 - b0) - 14 * (p1 - p0) )) $((p1 - p0)) $(grep -c '^Reused' <<<"$out")"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# measure NAME: RUNS full and RUNS resumed views; sets FULL[NAME], RES[NAME], ...
declare -A FULL FULLP RES RESP REUSED
measure() {
	local name=$1 ns=$2 i
	: >"$W/$name.full"; : >"$W/$name.res"
	view "$ns" -sess_out "$W/$name.sess" >/dev/null	# the ticket to resume with
	for i in $(seq 1 "$RUNS"); do
		view "$ns" >>"$W/$name.full"
		view "$ns" -sess_in "$W/$name.sess" >>"$W/$name.res"
	done
	FULL[$name]=$(awk '{print $1}' "$W/$name.full" | median)
	FULLP[$name]=$(awk '{print $2}' "$W/$name.full" | median)
	RES[$name]=$(awk '{print $1}' "$W/$name.res" | median)
	RESP[$name]=$(awk '{print $2}' "$W/$name.res" | median)
	REUSED[$name]=$(awk '{s += $3} END {print s}' "$W/$name.res")
}

make -s kilnet bench/bin/floor >/dev/null || { echo "wire: cannot build"; exit 1; }

# kilnet, and its home page (header included) for the others
ns_new kw-kilnet
mkdir -p "$W/kilnet/certs"
kilnet_conf "$W/kilnet/k.conf" "$PORT" "$((PORT + 1))" "$W/kilnet/certs" \
    "$ROOT/conf/network.conf" "workers = 1;"
ip netns exec kw-kilnet "$ROOT/kilnet" -c "$W/kilnet/k.conf" >"$W/kilnet/log" 2>&1 &
ns_wait kw-kilnet || { echo "wire: kilnet did not start"; cat "$W/kilnet/log"; exit 1; }
CRT=$W/kilnet/certs/localhost.crt KEY=$W/kilnet/certs/localhost.key
printf 'gemini://localhost:%s/\r\n' "$PORT" | ip netns exec kw-kilnet openssl s_client -quiet \
    -connect "127.0.0.1:$PORT" -servername localhost 2>/dev/null >"$W/page"
BODY=$(($(stat -c %s "$W/page") - $(head -n 1 "$W/page" | wc -c)))
tail -n +2 "$W/page" >"$W/body"

ns_new kw-floor
ip netns exec kw-floor "$ROOT/bench/bin/floor" --port "$PORT" --response "$W/page" \
    --cert "$CRT" --key "$KEY" >"$W/floor.log" 2>&1 &
ns_wait kw-floor || echo "wire: the floor did not start"

HAVE=(kilnet floor)
if command -v molly-brown >/dev/null; then
	ns_new kw-molly
	mkdir -p "$W/molly/docs"
	cp "$W/body" "$W/molly/docs/index.gmi"
	cat >"$W/molly/molly.conf" <<-MOLLY
	Port = $PORT
	Hostname = "localhost"
	CertPath = "$CRT"
	KeyPath = "$KEY"
	DocBase = "$W/molly/docs"
	AccessLog = "/dev/null"
	ErrorLog = "$W/molly/error.log"
	MOLLY
	ip netns exec kw-molly molly-brown -c "$W/molly/molly.conf" >"$W/molly.log" 2>&1 &
	ns_wait kw-molly && HAVE+=(molly-brown) || echo "wire: molly-brown did not start"
fi
NGX_MOD=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null)
if command -v nginx >/dev/null; then
	ns_new kw-nginx
	mkdir -p "$W/nginx"
	# the page as an nginx string: backslash, quote, CR, LF, TAB and $ escaped
	ret=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/${dollar}/g' -e 's/\t/\\t/g' -e 's/\r$/\\r/' \
	    "$W/page" | awk '{printf "%s\\n", $0}')
	cat >"$W/nginx/nginx.conf" <<-NGINX
	daemon off;
	master_process off;
	pid $W/nginx/nginx.pid;
	error_log $W/nginx/error.log emerg;
	${NGX_MOD:+load_module $NGX_MOD;}
	events { worker_connections 64; }
	stream {
	  geo \$dollar { default "\$"; }
	  server {
	    listen 127.0.0.1:$PORT ssl;
	    ssl_certificate $CRT;
	    ssl_certificate_key $KEY;
	    ssl_protocols TLSv1.3;
	    ssl_ecdh_curve X25519;
	    return "$ret";
	  }
	}
	NGINX
	ip netns exec kw-nginx nginx -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" >"$W/nginx.log" 2>&1 &
	ns_wait kw-nginx && HAVE+=(nginx) || echo "wire: nginx did not start"
fi
declare -A NS=([kilnet]=kw-kilnet [floor]=kw-floor [molly-brown]=kw-molly [nginx]=kw-nginx)
for s in "${HAVE[@]}"; do measure "$s" "${NS[$s]}"; done

# Spartan and Nex views of the home page (plain TCP: one request, the page, the
# close), from a kilnet of its own that serves them too (its Gemini home page,
# measured above from the other, carries no links to them).
# plain_view NS PORT REQUEST: prints "BYTES PACKETS" of one view
plain_view() {
	local ns=$1 port=$2 req=$3 b0 p0 b1 p1
	read -r b0 p0 < <(lo_count "$ns")
	ip netns exec "$ns" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%b" "$2" >&3 &&
	    timeout 10 cat <&3 >/dev/null' _ "$port" "$req"
	sleep 0.3
	read -r b1 p1 < <(lo_count "$ns")
	echo "$(( (b1 - b0) - 14 * (p1 - p0) )) $((p1 - p0))"
}
declare -A LIGHT LIGHTP
ns_new kw-light
mkdir -p "$W/light/certs"
kilnet_conf "$W/light/k.conf" "$PORT" "$((PORT + 1))" "$W/light/certs" \
    "$ROOT/conf/network.conf" "workers = 1;" \
    "spartan = { listen = [ \"127.0.0.1:$((PORT + 2))\" ]; };" \
    "nex = { listen = [ \"127.0.0.1:$((PORT + 3))\" ]; };"
ip netns exec kw-light "$ROOT/kilnet" -c "$W/light/k.conf" >"$W/light/log" 2>&1 &
if ns_wait kw-light; then
	for p in spartan nex; do
		: >"$W/$p.views"
		for i in $(seq 1 "$RUNS"); do
			if [ $p = spartan ]; then
				plain_view kw-light "$((PORT + 2))" 'localhost / 0\r\n'
			else
				plain_view kw-light "$((PORT + 3))" '/\n'
			fi >>"$W/$p.views"
		done
		LIGHT[$p]=$(awk '{print $1}' "$W/$p.views" | median)
		LIGHTP[$p]=$(awk '{print $2}' "$W/$p.views" | median)
	done
else
	echo "wire: kilnet with Spartan and Nex did not start"
fi

echo
echo "Bytes on the wire per page view (IP + TCP + TLS, both directions; median of $RUNS;"
echo "one openssl s_client per view; the page: kilnet's home page, $BODY bytes of body):"
printf '%-14s | %10s | %8s | %10s | %8s | %s\n' server "full B" packets "resumed B" packets "resumed"
for s in "${HAVE[@]}"; do
	printf '%-14s | %10s | %8s | %10s | %8s | %s/%s\n' "$s" "${FULL[$s]}" "${FULLP[$s]}" \
	    "${RES[$s]}" "${RESP[$s]}" "${REUSED[$s]}" "$RUNS"
done
for p in spartan nex; do
	[ -n "${LIGHT[$p]:-}" ] || continue
	printf '%-14s | %10s | %8s | %10s | %8s | %s\n' "kilnet $p" "${LIGHT[$p]}" "${LIGHTP[$p]}" \
	    - - "(plain TCP)"
done
if [ -n "${LIGHT[spartan]:-}" ] && [ -n "${FULL[kilnet]:-}" ]; then
	r=$(awk -v a="${LIGHT[spartan]}" -v b="${FULL[kilnet]}" 'BEGIN {printf "%.2f", a / b}')
	ok=$(awk -v r="$r" 'BEGIN {print (r <= 0.65) ? "MET    " : "NOT MET"}')
	echo "$ok  wire, Spartan: ${LIGHT[spartan]} B vs a full Gemini view ${FULL[kilnet]} B: ${r}x (<= 0.65x)"
fi
lightest() {   # full|res: the smallest peer figure and its name
	local -n v=$1
	local s best= name=
	for s in "${HAVE[@]}"; do
		[ "$s" = kilnet ] && continue
		if [ -z "$best" ] || [ "${v[$s]}" -lt "$best" ]; then best=${v[$s]} name=$s; fi
	done
	echo "$best $name"
}
for kind in FULL RES; do
	read -r best name < <(lightest $kind)
	[ -n "$best" ] || continue
	declare -n K=$kind
	r=$(awk -v a="${K[kilnet]}" -v b="$best" 'BEGIN {printf "%.2f", a / b}')
	ok=$(awk -v r="$r" 'BEGIN {print (r <= 0.95) ? "MET    " : "NOT MET"}')
	label=$([ $kind = FULL ] && echo "full handshake" || echo "resumed")
	echo "$ok  wire, $label: kilnet ${K[kilnet]} B vs lightest peer ($name) $best B: ${r}x (<= 0.95x)"
	unset -n K
done
