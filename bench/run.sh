#!/usr/bin/env bash
# bench/run.sh: what `make bench` runs (issue 7). Serves the same ~2 KB page from
# kilnet (--workers 1), the floor server (bench/floor.c), molly-brown and nginx's
# stream module (Gemini), and from kilnet, the plain floor and gophernicus under
# socat (Gopher); each server pinned to core 0, the load generator (bench/loadgen.c)
# to core 1; then Spartan and Nex from a kilnet serving them, against the plain
# floor sending the same replies. Prints one table (req/s, p50/p99, errors,
# resumed handshakes, server CPU time per request from /proc/PID/stat, server
# RSS), the ratios of issue 7 item 4, Spartan's and Nex's CPU per request
# against the floor (issue 23) and kilnet's CPU per request with the
# per-address limits on against off (issue 13), each MET or NOT MET. Stops
# everything it started, also on Ctrl-C.
#
# Environment: KILNET (default ./kilnet), BENCH_SCALE (request counts multiplier,
# default 1), BENCH_IDLE (idle connections, default 10000), BENCH_HOLD (seconds the
# idle ones are held after all are open, default 12), BENCH_KEEP=1 keeps the temp dir.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BIN=$ROOT/bench/bin
KILNET=${KILNET:-$ROOT/kilnet}
SCALE=${BENCH_SCALE:-1}
IDLE_N=${BENCH_IDLE:-10000}
HOLD=${BENCH_HOLD:-12}
HZ=$(getconf CLK_TCK)
T0=$(date +%s)

say() { printf 'bench: %s\n' "$*" >&2; }
n_of() { echo $(( $1 * SCALE > 0 ? $1 * SCALE : 1 )); }

# ------------------------------------------------------------ peers and tools
PEERS="molly-brown nginx libnginx-mod-stream gophernicus socat procps util-linux"
missing=
for p in $PEERS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing$missing"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $SUDO apt-get install -y -qq $missing >/dev/null || say "apt-get failed; missing peers are reported as errors"
fi
make -s -C "$ROOT" bench/bin/loadgen bench/bin/floor || { say "cannot build the bench tools"; exit 1; }
[ -x "$KILNET" ] || make -s -C "$ROOT" kilnet || say "kilnet does not build; its rows will be errors"

# 10,000 idle connections on each side of loopback.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" -lt $((IDLE_N + 2000)) ]; then
	IDLE_N=$(( $(ulimit -n) - 2000 ))
	say "open files limit $(ulimit -n): holding $IDLE_N idle connections"
fi

# Pinning needs two cores; on one, everything shares it.
if [ "$(nproc)" -ge 2 ]; then
	SRV_PIN="taskset -c 0"; CLI_PIN="taskset -c 1"
else
	SRV_PIN=; CLI_PIN=; say "one core: nothing is pinned"
fi

# ---------------------------------------------------------------- processes
W=$(mktemp -d /tmp/kilnet-bench.XXXXXX)
chmod 755 "$W"      # gophernicus runs as nobody and reads its root from here
STARTED=()          # pids this script started (each server's root process)

# Every descendant of the given pids, the pids included.
tree() {
	ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			do {
				added = 0
				for (i = 1; i <= NR; i++) {
					p = pids[i]
					if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; added = 1 }
				}
			} while (added)
			for (p in keep) if (p != "") print p
		}'
}

# kill_pids TRIES PID...: SIGTERM, up to TRIES x 50 ms for them to go, then SIGKILL.
kill_pids() {
	local tries=$1 p alive; shift
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null
	for _ in $(seq 1 "$tries"); do
		alive=
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && break
		sleep 0.05
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
	return 0
}

cleanup() {
	trap - EXIT INT TERM
	if [ ${#STARTED[@]} -gt 0 ]; then
		kill_pids 40 $(tree "${STARTED[@]}")
		wait 2>/dev/null
	fi
	[ "${BENCH_KEEP:-0}" = 1 ] && say "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# Below the ephemeral range: the client's TIME_WAIT sockets (thousands after an
# idle run) sit there, invisible to a connect probe, and make bind() fail.
EPH_LO=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ "${EPH_LO:-0}" -gt 12000 ] || EPH_LO=32768
free_port() {
	local p
	while :; do
		p=$(( 10000 + (RANDOM * 32768 + RANDOM) % (EPH_LO - 10000) ))
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
		grep -qx "$p" "$W/.ports" 2>/dev/null && continue
		echo "$p" >>"$W/.ports"
		echo "$p"; return
	done
}

wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start NAME PIN CMD...: runs CMD in the background from $W/NAME, logs to
# $W/NAME/log; sets PID_<NAME>.
start() {
	local name=$1 pin=$2; shift 2
	mkdir -p "$W/$name"
	( cd "$W/$name" && exec $pin "$@" ) >"$W/$name/log" 2>&1 &
	STARTED+=($!)
	printf -v "PID_${name//-/_}" '%s' "$!"
}
pid_of() { local v="PID_${1//-/_}"; echo "${!v:-}"; }

# stop NAME: ends that server (its whole tree) now.
stop() {
	# shellcheck disable=SC2046
	kill_pids 60 $(tree "$(pid_of "$1")")
	wait "$(pid_of "$1")" 2>/dev/null
}

# The Gemini request for a server on PORT (kilnet answers 53 to a URL whose port
# is not its own).
greq() { echo "gemini://localhost:$1/"; }

# CPU ticks of a process tree: utime+stime of each process, plus cutime+cstime
# (children that exited and were reaped, e.g. socat's gophernicus).
cpu_ticks() {
	local sum=0 s p
	for p in $(tree "$1"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s
		sum=$(( sum + ${12} + ${13} + ${14} + ${15} ))
	done
	echo "$sum"
}

# CPU time of a process tree in ns, from the scheduler (/proc/PID/task/*/schedstat:
# every thread, to the nanosecond; children already reaped are not in it, so the
# per-round ratios below use it only for servers without per-connection children).
cpu_ns() {
	local sum=0 p t v
	for p in $(tree "$1"); do
		for t in /proc/"$p"/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null || continue
			sum=$(( sum + v ))
		done
	done
	echo "$sum"
}

rss_kb() {
	local sum=0 p v
	for p in $(tree "$1"); do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		sum=$(( sum + ${v:-0} ))
	done
	echo "$sum"
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# kilnet's key process (src/keyproc.c; its title kilnet-keys), a child of the
# master PID: its CPU is in kilnet's (the tree's), and its share gets a row.
keyproc_pid() { pgrep -P "$1" -x kilnet-keys 2>/dev/null | head -n 1; }
# The scenarios whose kilnet row is followed by its key process's share.
KEY_ROWS="|gemini full c=16|gemini resumed c=16|"

# ------------------------------------------------------------------ results
TABLE=$W/table
declare -A R      # R[scenario|server|key] = value
: >"$TABLE"

# kv LINE KEY: the value of KEY=... in a loadgen line
kv() { local x=" $1 "; x=${x#* $2=}; [ "$x" = " $1 " ] && { echo; return; }; echo "${x%% *}"; }

fmt_rss() { awk -v k="$1" 'BEGIN { if (k >= 10240) printf "%.1f MiB", k / 1024; else printf "%d KiB", k }'; }

row() {   # scenario server rps p50 p99 errors resumed cpu rss note
	printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$@" >>"$TABLE"
}

# measure SCENARIO SERVER PID PIN LOADGEN-ARGS...: one run, added to that row's
# sums (CPU ticks, requests, ...); emit writes the row. The rows that carry the
# ratios alternate servers over several shorter runs (alternate, below), so that a
# slow second on the machine does not land on one server.
declare -A A      # A[scenario|server|key]: sums over a row's runs
measure() {
	local sc=$1 sv=$2 pid=$3 pin=$4; shift 4
	local k="$sc|$sv" c0 c1 n0 n1 out req kp= k0=0 k1=0
	if ! alive "$pid"; then
		A["$k|dead"]=1
	else
		[[ $KEY_ROWS == *"|$sc|"* ]] && kp=$(keyproc_pid "$pid")
		[ -n "$kp" ] && k0=$(cpu_ns "$kp")
		c0=$(cpu_ticks "$pid") n0=$(cpu_ns "$pid")
		out=$($pin "$BIN/loadgen" "$@" 2>&1 | tail -n 1)
		c1=$(cpu_ticks "$pid") n1=$(cpu_ns "$pid")
		[ -n "$kp" ] && k1=$(cpu_ns "$kp")
		req=$(kv "$out" requests)
		if [ -z "$req" ]; then
			A["$k|fail"]=$out
		else
			A["$k|runs"]=$(( ${A["$k|runs"]:-0} + 1 ))
			# this run's CPU a request (ns), for the per-round ratios
			[ "$req" -gt 0 ] && A["$k|rounds"]="${A["$k|rounds"]:-} $(( (n1 - n0) / req ))"
			A["$k|ticks"]=$(( ${A["$k|ticks"]:-0} + c1 - c0 ))
			A["$k|ns"]=$(( ${A["$k|ns"]:-0} + n1 - n0 ))
			# the key process's part of the tree's time (0 if it was
			# restarted meanwhile: then k1 < k0 and the run counts none)
			if [ -n "$kp" ] && [ "$k1" -ge "$k0" ]; then
				A["$k|keyns"]=$(( ${A["$k|keyns"]:-0} + k1 - k0 ))
				A["$k|keypid"]=$kp
			fi
			A["$k|req"]=$(( ${A["$k|req"]:-0} + req ))
			A["$k|errors"]=$(( ${A["$k|errors"]:-0} + $(kv "$out" errors) ))
			A["$k|resumed"]=$(( ${A["$k|resumed"]:-0} + $(kv "$out" resumed) ))
			A["$k|unfinished"]=$(( ${A["$k|unfinished"]:-0} + $(kv "$out" unfinished) ))
			A["$k|elapsed"]=$(awk -v a="${A["$k|elapsed"]:-0}" -v b="$(kv "$out" elapsed)" 'BEGIN { print a + b }')
			A["$k|p50"]="${A["$k|p50"]:-} $(kv "$out" p50_ms)"
			A["$k|p99"]="${A["$k|p99"]:-} $(kv "$out" p99_ms)"
			if [ -n "$(kv "$out" tickets_reused)" ]; then
				A["$k|fresh"]=$(( ${A["$k|fresh"]:-0} + $(kv "$out" tickets_fresh) ))
				A["$k|reused"]=$(( ${A["$k|reused"]:-0} + $(kv "$out" tickets_reused) ))
			fi
		fi
		say "$sc $sv: $out"
	fi
}

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# emit SCENARIO SERVER PID: the row of that server's runs. CPU and req/s are
# totals over the runs; p50 and p99 the median of the runs' values.
emit() {
	local sc=$1 sv=$2 pid=$3 k="$1|$2" req cpu rps p50 p99 note=
	if [ -n "${A["$k|dead"]:-}" ]; then
		row "$sc" "$sv" - - - "not running" - - - "see $sv log"
		R["$sc|$sv|errors"]=all
		return
	fi
	req=${A["$k|req"]:-}
	if [ -z "$req" ]; then
		row "$sc" "$sv" - - - "loadgen failed" - - - "${A["$k|fail"]:-}"
		return
	fi
	if [ "$req" -gt 0 ]; then
		cpu=$(awk -v t="${A["$k|ticks"]}" -v hz="$HZ" -v n="$req" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	else
		cpu=-
	fi
	rps=$(awk -v n="$req" -v e="${A["$k|elapsed"]}" 'BEGIN { if (e > 0) printf "%.1f", n / e; else print 0 }')
	p50=$(median "${A["$k|p50"]}") p99=$(median "${A["$k|p99"]}")
	[ "${A["$k|unfinished"]}" != 0 ] && note="unfinished ${A["$k|unfinished"]}"
	if [ -n "${A["$k|reused"]:-}" ]; then
		note="${note:+$note; }tickets offered: ${A["$k|fresh"]} fresh, ${A["$k|reused"]} reused"
		R["$sc|$sv|reused"]=${A["$k|reused"]}
	fi
	[ "${A["$k|runs"]}" -gt 1 ] && note="${note:+$note; }${A["$k|runs"]} runs, alternating servers"
	alive "$pid" || note="server died"
	R["$sc|$sv|rps"]=$rps; R["$sc|$sv|p99"]=$p99
	R["$sc|$sv|cpu"]=$cpu; R["$sc|$sv|req"]=$req; R["$sc|$sv|resumed"]=${A["$k|resumed"]}
	R["$sc|$sv|errors"]=${A["$k|errors"]}
	row "$sc" "$sv" "$rps" "$p50" "$p99" "${A["$k|errors"]}" "${A["$k|resumed"]}" "$cpu" \
	    "$(fmt_rss "$(rss_kb "$pid")")" "$note"
	# The key process's share: its scheduler time over the same runs, a
	# request, and as a part of the whole tree's (kilnet's CPU above).
	if [ -n "${A["$k|keyns"]:-}" ] && [ "$req" -gt 0 ]; then
		local kcpu share
		kcpu=$(awk -v t="${A["$k|keyns"]}" -v n="$req" 'BEGIN { printf "%.1f", t / 1000 / n }')
		share=$(awk -v a="${A["$k|keyns"]}" -v b="${A["$k|ns"]}" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "-" }')
		R["$sc|$sv|keycpu"]=$kcpu; R["$sc|$sv|keyshare"]=$share
		row "$sc" "$sv: key process" - - - - - "$kcpu" \
		    "$(fmt_rss "$(rss_kb "${A["$k|keypid"]}")")" \
		    "$share% of $sv's CPU (scheduler time; in $sv's row already)"
	fi
}

# measure_idle SCENARIO SERVER PID LOADGEN-ARGS...: N silent connections held,
# normal requests meanwhile; RSS per held connection and closes by the server.
measure_idle() {
	local sc=$1 sv=$2 pid=$3; shift 3
	local r0 r1 out lg held closed per
	if ! alive "$pid"; then
		row "$sc" "$sv" - - - "not running" - - - "see $sv log"
		R["$sc|$sv|errors"]=all
		return
	fi
	rm -f "$W/ready"
	# a fresh server, warmed up: the baseline holds its working set
	$CLI_PIN "$BIN/loadgen" "$@" -n 300 >/dev/null 2>&1
	sleep 0.5
	r0=$(rss_kb "$pid")
	$CLI_PIN "$BIN/loadgen" "$@" --idle "$IDLE_N" --hold "$HOLD" --ready-file "$W/ready" \
	    >"$W/idle.out" 2>&1 &
	lg=$!
	STARTED+=("$lg")
	while [ ! -f "$W/ready" ] && kill -0 "$lg" 2>/dev/null; do sleep 0.05; done
	r1=$(rss_kb "$pid")
	# Only now the measured requests start: ps and awk running beside them
	# doubled their p99 (issue 7's idle Gopher ratio).
	rm -f "$W/ready"
	wait "$lg"
	out=$(tail -n 1 "$W/idle.out")
	held=$(kv "$out" held); closed=$(kv "$out" closed_by_server)
	if [ -z "$held" ]; then
		row "$sc" "$sv" - - - "loadgen failed" - - - "$out"
		return
	fi
	per=$(awk -v a="$r0" -v b="$r1" -v n="$held" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "-" }')
	R["$sc|$sv|per"]=$per; R["$sc|$sv|held"]=$held; R["$sc|$sv|closed"]=$closed
	R["$sc|$sv|p99"]=$(kv "$out" p99_ms); R["$sc|$sv|errors"]=$(kv "$out" errors)
	R["$sc|$sv|idle_failed"]=$(kv "$out" idle_failed)
	row "$sc" "$sv" "$(kv "$out" rps)" "$(kv "$out" p50_ms)" "$(kv "$out" p99_ms)" \
	    "$(kv "$out" errors)" - - "$per KiB/conn" \
	    "held $held (failed $(kv "$out" idle_failed)), closed by server $closed within ${HOLD}s (last after $(kv "$out" idle_close_max_s)s)"
	say "$sc $sv: $out; RSS $r0 -> $r1 KiB"
}

# ------------------------------------------------------------- the page, the cert
say "work dir $W"
mkdir -p "$W/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$W/certs/localhost.key" -out "$W/certs/localhost.crt" 2>/dev/null ||
    { say "openssl req failed"; exit 1; }
chmod 600 "$W/certs/localhost.key"
CRT=$W/certs/localhost.crt KEY=$W/certs/localhost.key

declare -A PORT   # PORT[server] = its port (kilnet: Gemini), GPORT[kilnet...] = Gopher
declare -A GPORT

# start_kilnet NAME WORKERS PIN [SETTINGS]: kilnet on two free ports, waited for.
start_kilnet() {
	local name=$1 gem goph
	gem=$(free_port) goph=$(free_port)
	PORT[$name]=$gem GPORT[$name]=$goph
	kilnet_conf "$W/$name.conf" "$gem" "$goph" "$W/certs" "$ROOT/conf/network.conf" \
	    "workers = $2;" "max_connections = $((IDLE_N + 4096));" "${4:-}"
	start "$name" "$3" "$KILNET" -c "$W/$name.conf" --workers "$2"
	if ! wait_port "$gem" || ! wait_port "$goph"; then
		say "$name is not serving (its rows are errors); its log:"
		head -n 5 "$W/$name/log" >&2
		return 1
	fi
}
start_floor() {   # NAME [--plain [RESPONSE] | --bufferevent]
	local name=$1 port; port=$(free_port)
	PORT[$name]=$port
	if [ "${2:-}" = --plain ]; then
		start "$name" "$SRV_PIN" "$BIN/floor" --port "$port" --response "${3:-$W/goph.resp}" --plain
	else
		start "$name" "$SRV_PIN" "$BIN/floor" --port "$port" --response "$W/gem.resp" --cert "$CRT" --key "$KEY" ${2:-}
	fi
	wait_port "$port" || say "$name is not listening; see $W/$name/log"
}
start_molly() {   # NAME
	local name=$1 port; port=$(free_port)
	PORT[$name]=$port
	mkdir -p "$W/$name/docs"
	cp "$W/gem.body" "$W/$name/docs/index.gmi"
	cat >"$W/$name/molly.conf" <<-MOLLY
	Port = $port
	Hostname = "localhost"
	CertPath = "$CRT"
	KeyPath = "$KEY"
	DocBase = "$W/$name/docs"
	AccessLog = "/dev/null"
	ErrorLog = "$W/$name/error.log"
	MOLLY
	start "$name" "$SRV_PIN" molly-brown -c "$W/$name/molly.conf"
	wait_port "$port" || say "$name is not listening; see $W/$name/log"
}

KILNET_OK=1
start_kilnet kilnet 1 "$SRV_PIN" || KILNET_OK=0
K_GEM=${PORT[kilnet]} K_GOPH=${GPORT[kilnet]}

# The Gemini page: kilnet's home page when it is ~2 KB, byte for byte (header
# included), else a fixed test page. Same for Gopher with kilnet's root menu.
GOPH_REQ=""
size_ok() { [ -s "$1" ] && [ "$(stat -c %s "$1")" -ge 1000 ] && [ "$(stat -c %s "$1")" -le 3500 ]; }
PAGE_SRC="fixed test page"
if [ "$KILNET_OK" = 1 ] &&
    "$BIN/loadgen" --gemini --port "$K_GEM" --request "$(greq "$K_GEM")" --expect "20 " \
        --save "$W/gem.resp" >/dev/null 2>&1 && size_ok "$W/gem.resp"; then
	PAGE_SRC="kilnet's home page"
else
	{
		printf '20 text/gemini\r\n# Keep it Local Network\n\n'
		for i in $(seq -w 1 30); do
			printf '=> gemini://localhost/members/member-%s.gmi Member council number %s\n' "$i" "$i"
		done
		printf '\nA fixed test page for the bench: about two kilobytes of gemtext.\n'
	} >"$W/gem.resp"
fi
GOPH_SRC="fixed test page"
if [ "$KILNET_OK" = 1 ] &&
    "$BIN/loadgen" --gopher --port "$K_GOPH" --request "$GOPH_REQ" \
        --save "$W/goph.resp" >/dev/null 2>&1 && size_ok "$W/goph.resp"; then
	GOPH_SRC="kilnet's root menu"
else
	{
		printf 'iKeep it Local Network\t\tlocalhost\t70\r\n'
		for i in $(seq -w 1 30); do
			printf '0Member council number %s\t/members/member-%s.txt\tlocalhost\t70\r\n' "$i" "$i"
		done
		printf '.\r\n'
	} >"$W/goph.resp"
fi
GEM_BYTES=$(stat -c %s "$W/gem.resp") GOPH_BYTES=$(stat -c %s "$W/goph.resp")
# the body alone, for molly-brown (it writes its own header)
sed '1d' "$W/gem.resp" >"$W/gem.body"
GEM_BODY=$(stat -c %s "$W/gem.body")
say "Gemini page: $PAGE_SRC, $GEM_BYTES bytes; Gopher page: $GOPH_SRC, $GOPH_BYTES bytes"

# ------------------------------------------------------------------ the peers
start_floor floor
start_floor floor-plain --plain
# The floor again, on libevent's bufferevent_openssl: the I/O model kilnet did
# not take, measured beside the one it did (issue 7 item 2).
start_floor floor-bev --bufferevent
start_molly molly-brown

# nginx: `return` takes a quoted string; \r \n \t \" \\ are escapes in it, and a
# '$' would start a variable, so a '$' in the page comes from a geo variable.
PORT[nginx]=$(free_port)
mkdir -p "$W/nginx"
NGX_RET=$(python3 - "$W/gem.resp" <<'PY'
import sys
s = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
out = s.replace('\\', '\\\\').replace('"', '\\"').replace('\r', '\\r') \
       .replace('\n', '\\n').replace('\t', '\\t').replace('$', '${dollar}')
print(out, end='')
PY
)
NGX_MOD=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null)
cat >"$W/nginx/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $((IDLE_N + 8192));
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log emerg;
${NGX_MOD:+load_module $NGX_MOD;}
events { worker_connections $((IDLE_N + 4096)); }
stream {
  geo \$dollar { default "\$"; }
  server {
    listen 127.0.0.1:${PORT[nginx]} ssl;
    ssl_certificate $CRT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    return "$NGX_RET";
  }
}
NGINX
start nginx "$SRV_PIN" nginx -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log"
wait_port "${PORT[nginx]}" || say "nginx is not listening; see $W/nginx/log"

# gophernicus refuses to run as root; socat forks and execs it per connection
# (nofork: the socket is its stdin/stdout, as under inetd). -i/-k: no throttling.
G_PORT=$(free_port)
PORT[gophernicus]=$G_PORT
mkdir -p "$W/gophernicus/root"
cp "$W/goph.resp" "$W/gophernicus/root/page.txt"
chmod -R a+rX "$W/gophernicus"
start gophernicus "$SRV_PIN" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    socat "TCP-LISTEN:$G_PORT,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
    "EXEC:/usr/sbin/gophernicus -h localhost -p $G_PORT -r $W/gophernicus/root -nv -i 2000000000 -k 2000000000,nofork"
wait_port "$G_PORT" || say "gophernicus is not listening; see $W/gophernicus/log"

# ------------------------------------------------------------------ scenarios
GEM=( --gemini --expect "20 " --min-bytes "$GEM_BODY" --seconds 20 )
GOPH=( --gopher --min-bytes $((GOPH_BYTES / 2)) --seconds 20 )
gem() {   # SCENARIO SERVER PIN ARGS...: a Gemini run against that server
	local sc=$1 sv=$2 pin=$3; shift 3
	measure "$sc" "$sv" "$(pid_of "$sv")" "$pin" "${GEM[@]}" --port "${PORT[$sv]}" \
	    --request "$(greq "${PORT[$sv]}")" "$@"
}
goph() {   # SCENARIO SERVER PIN ARGS...: a Gopher run against that server
	local sc=$1 sv=$2 pin=$3; shift 3
	local -a where=(--port "${PORT[$sv]}")
	case $sv in
	kilnet*) where=(--port "${GPORT[$sv]}" --request "$GOPH_REQ") ;;
	gophernicus) where=(--port "$G_PORT" --request /page.txt) ;;
	esac
	measure "$sc" "$sv" "$(pid_of "$sv")" "$pin" "${GOPH[@]}" "${where[@]}" "$@"
}

# alternate SCENARIO RUNS N "SERVERS" RUNNER ARGS...: N requests to each server in
# RUNS runs, the servers taking turns (RUNNER SCENARIO SERVER ARGS... -n N/RUNS),
# then one row per server.
alternate() {
	local sc=$1 runs=$2 n=$3 servers=$4 fn=$5 sv; shift 5
	for _ in $(seq 1 "$runs"); do
		for sv in $servers; do "$fn" "$sc" "$sv" "$@" -n $((n / runs)); done
	done
	for sv in $servers; do emit "$sc" "$sv" "$(pid_of "$sv")"; done
}

# Request counts: the c=16 runs carry the ratios, so they get the most requests,
# in ROUNDS short runs taking turns (server after server, round after round); a
# ratio is the median of the rounds' ratios (rratio), so that a busy second of
# the machine lands on one round of every server, not on one server.
ROUNDS=8
GEM_SERVERS="kilnet floor floor-bev molly-brown nginx"
for c in 1 16 64; do
	case $c in 1) n=$(n_of 1000) r=1 ;; 16) n=$(n_of 6000) r=$ROUNDS ;; *) n=$(n_of 4000) r=1 ;; esac
	alternate "gemini full c=$c" $r "$n" "$GEM_SERVERS" gem "$CLI_PIN" -c $c
done
alternate "gemini resumed c=16" $ROUNDS "$(n_of 6000)" "$GEM_SERVERS" gem "$CLI_PIN" --resume -c 16
# The same with a client that never offers a ticket twice (RFC 8446 C.4): only
# servers that send a new ticket after a resumption keep resuming.
alternate "resumed c=16, single-use tickets" 1 "$(n_of 2000)" "kilnet floor molly-brown nginx" \
    gem "$CLI_PIN" --resume --single-use -c 16

for c in 1 16 64; do
	case $c in 1) n=$(n_of 10000) r=1 ;; 16) n=$(n_of 100000) r=$ROUNDS ;; *) n=$(n_of 40000) r=1 ;; esac
	alternate "gopher c=$c" $r "$n" "kilnet floor-plain" goph "$CLI_PIN" -c $c
	# gophernicus costs milliseconds a request: fewer, bounded by time.
	alternate "gopher c=$c" 1 "$(n_of 1500)" gophernicus goph "$CLI_PIN" -c $c --seconds 10
done

# Spartan and Nex (issue 23): a kilnet that serves them too, as the shipped
# config does, against the plain floor (bench/floor.c --plain: read a line,
# write the bytes, close) serving the very reply kilnet sends, its Spartan home
# page (header and body) and its Nex home directory, saved from it. Both warmed
# up, then ROUNDS runs at c=16 taking turns, as for Gopher; the ratio is the
# median of the rounds' CPU ratios.
SP_PORT=$(free_port) NX_PORT=$(free_port)
start_kilnet kilnet-light 1 "$SRV_PIN" \
    "spartan = { listen = [ \"127.0.0.1:$SP_PORT\" ]; }; nex = { listen = [ \"127.0.0.1:$NX_PORT\" ]; };"
wait_port "$SP_PORT" && wait_port "$NX_PORT" || say "kilnet-light: no Spartan or Nex listener"
"$BIN/loadgen" --spartan --port "$SP_PORT" --save "$W/spartan.resp" >/dev/null 2>&1 ||
    say "kilnet-light: no Spartan home page (its rows are errors)"
"$BIN/loadgen" --nex --port "$NX_PORT" --save "$W/nex.resp" >/dev/null 2>&1 ||
    say "kilnet-light: no Nex home directory (its rows are errors)"
SP_BYTES=$(stat -c %s "$W/spartan.resp" 2>/dev/null || echo 2)
NX_BYTES=$(stat -c %s "$W/nex.resp" 2>/dev/null || echo 2)
start_floor floor-spartan --plain "$W/spartan.resp"
start_floor floor-nex --plain "$W/nex.resp"
SP_ARGS=( --spartan --expect "2 " --min-bytes $((SP_BYTES / 2)) --seconds 20 )
NX_ARGS=( --nex --min-bytes $((NX_BYTES / 2)) --seconds 20 )
# light_rounds SCENARIO KILNET-PORT FLOOR N ARGS...: N requests to kilnet-light
# (its row: kilnet) and to FLOOR (its row: floor-plain), in ROUNDS runs taking turns.
light_rounds() {
	local sc=$1 kport=$2 floor=$3 n=$4; shift 4
	for _ in $(seq 1 "$ROUNDS"); do
		measure "$sc" kilnet "$(pid_of kilnet-light)" "$CLI_PIN" "$@" --port "$kport" \
		    -c 16 -n $((n / ROUNDS))
		measure "$sc" floor-plain "$(pid_of "$floor")" "$CLI_PIN" "$@" --port "${PORT[$floor]}" \
		    -c 16 -n $((n / ROUNDS))
	done
	emit "$sc" kilnet "$(pid_of kilnet-light)"
	emit "$sc" floor-plain "$(pid_of "$floor")"
}
for p in "$SP_PORT" "${PORT[floor-spartan]}"; do
	$CLI_PIN "$BIN/loadgen" "${SP_ARGS[@]}" --port "$p" -c 16 -n 3000 >/dev/null 2>&1
done
for p in "$NX_PORT" "${PORT[floor-nex]}"; do
	$CLI_PIN "$BIN/loadgen" "${NX_ARGS[@]}" --port "$p" -c 16 -n 3000 >/dev/null 2>&1
done
light_rounds "spartan c=16" "$SP_PORT" floor-spartan "$(n_of 100000)" "${SP_ARGS[@]}"
light_rounds "nex c=16" "$NX_PORT" floor-nex "$(n_of 100000)" "${NX_ARGS[@]}"
for sv in kilnet-light floor-spartan floor-nex; do stop "$sv"; done

# The per-address limits (issue 13): kilnet with them off, and on for the
# loadgen's address (127.0.0.1 not exempt; so high that nothing is refused), in
# the table all workers share. Each warmed up, then 6 runs taking turns.
LIM_ON='rate_limit = { rate = 1000000.0; burst = 1000000.0; max_per_address = 1000000; allow = [ ]; };'
LIM_OFF='rate_limit = { rate = 0.0; max_per_address = 0; allow = [ ]; };'
LIM_SERVERS="kilnet-limits-off kilnet-limits-on"
start_kilnet kilnet-limits-off 1 "$SRV_PIN" "$LIM_OFF"
start_kilnet kilnet-limits-on 1 "$SRV_PIN" "$LIM_ON"
for sv in $LIM_SERVERS; do
	$CLI_PIN "$BIN/loadgen" --gemini --port "${PORT[$sv]}" --request "$(greq "${PORT[$sv]}")" \
	    -c 16 -n 300 --seconds 20 >/dev/null 2>&1
	$CLI_PIN "$BIN/loadgen" --gopher --port "${GPORT[$sv]}" --request "$GOPH_REQ" \
	    -c 16 -n 3000 --seconds 20 >/dev/null 2>&1
done
alternate "gemini full c=16, limits" 6 "$(n_of 12000)" "$LIM_SERVERS" gem "$CLI_PIN" -c 16
alternate "gopher c=16, limits" 6 "$(n_of 150000)" "$LIM_SERVERS" goph "$CLI_PIN" -c 16
for sv in $LIM_SERVERS; do stop "$sv"; done

# kilnet with two workers, nothing pinned.
start_kilnet kilnet2 2 ""
sc="gemini full c=64, 2 workers, unpinned"
measure "$sc" kilnet "$PID_kilnet2" "" "${GEM[@]}" \
    --port "${PORT[kilnet2]}" --request "$(greq "${PORT[kilnet2]}")" -c 64 -n "$(n_of 8000)"
emit "$sc" kilnet "$PID_kilnet2"
sc="gopher c=64, 2 workers, unpinned"
measure "$sc" kilnet "$PID_kilnet2" "" "${GOPH[@]}" \
    --request "$GOPH_REQ" --port "${GPORT[kilnet2]}" -c 64 -n "$(n_of 40000)"
emit "$sc" kilnet "$PID_kilnet2"
stop kilnet2

# Idle, each on a fresh server (a heap grown by an earlier run hides the cost),
# warmed up, then N silent connections and normal requests at c=16 meanwhile.
# nginx's `return` answers right after the handshake, so it holds no silent
# connection; gophernicus forks a process per connection (10,000 processes).
# idle_gem SERVER: measure_idle on the fresh Gemini server SERVER-idle, then stop it.
idle_gem() {
	local name=$1-idle
	measure_idle "$sc" "$1" "$(pid_of "$name")" "${GEM[@]}" --port "${PORT[$name]}" \
	    --request "$(greq "${PORT[$name]}")" -c 16 -n "$(n_of 2000)" --seconds 60
	stop "$name"
}
sc="idle TLS x$IDLE_N"
start_kilnet kilnet-idle 1 "$SRV_PIN"; idle_gem kilnet
start_floor floor-idle; idle_gem floor
start_floor floor-bev-idle --bufferevent; idle_gem floor-bev
start_molly molly-brown-idle; idle_gem molly-brown
sc="idle gopher x$IDLE_N"
start_kilnet kilnet-idle-gopher 1 "$SRV_PIN"
measure_idle "$sc" kilnet "$PID_kilnet_idle_gopher" "${GOPH[@]}" --request "$GOPH_REQ" \
    --port "${GPORT[kilnet-idle-gopher]}" -c 16 -n "$(n_of 10000)" --seconds 60
stop kilnet-idle-gopher
start_floor floor-plain-idle --plain
measure_idle "$sc" floor-plain "$PID_floor_plain_idle" "${GOPH[@]}" \
    --port "${PORT[floor-plain-idle]}" -c 16 -n "$(n_of 10000)" --seconds 60
stop floor-plain-idle

# Rendering the whole dataset: `kilnet --render` (load, render, write every file)
# and `kilnet -t` (load and render in memory), mean wall time of 20 runs each,
# beside a run that only starts the process (`kilnet -V`).
render_ms() {
	local t0 t1 i
	"$@" >/dev/null 2>&1 || { echo -; return; }
	t0=$(date +%s%N)
	for i in $(seq 1 20); do "$@" >/dev/null 2>&1; done
	t1=$(date +%s%N)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 20 / 1e6 }'
}
RENDER_MS=$(render_ms $SRV_PIN "$KILNET" -c "$W/kilnet.conf" --render "$W/render")
CHECK_MS=$(render_ms $SRV_PIN "$KILNET" -c "$W/kilnet.conf" -t)
START_MS=$(render_ms $SRV_PIN "$KILNET" -V)
# The check counts loading and rendering (-t), not writing the export's files:
# serving renders into memory and writes no file.
R["render"]=$(awk -v a="$CHECK_MS" -v b="$START_MS" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f", a - b }')
row "render whole dataset" kilnet - - - - - - - \
    "--render $RENDER_MS ms a run; -t (no files) $CHECK_MS ms; process start alone (-V) $START_MS ms"

# ------------------------------------------------------------------ the table
echo
echo "kilnet bench, $(date -u +'%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(uname -r), $(openssl version | cut -d' ' -f1-2)"
echo "page: Gemini $GEM_BYTES bytes ($PAGE_SRC), Gopher $GOPH_BYTES bytes ($GOPH_SRC); TLS 1.3, x25519, ECDSA P-256"
echo "servers pinned to core 0, loadgen to core 1; CPU = server utime+stime (children included: kilnet's key process too) per request"
echo
{
	echo "scenario|server|req/s|p50 ms|p99 ms|errors|resumed|CPU µs/req|RSS|notes"
	cat "$TABLE"
} | column -t -s '|' -o ' | '

# ------------------------------------------------------------------ the ratios
echo
# check NAME VALUE LIMIT OP: VALUE OP LIMIT (OP: le, lt, ge), printed with the factor
check() {
	local name=$1 v=$2 lim=$3 op=$4 unit=${5:-}
	if [ -z "$v" ] || [ "$v" = - ] || [ -z "$lim" ] || [ "$lim" = - ]; then
		printf 'NOT MET  %s: no measurement\n' "$name"; return
	fi
	awk -v n="$name" -v v="$v" -v l="$lim" -v op="$op" -v u="$unit" 'BEGIN {
		ok = (op == "le") ? v <= l : (op == "lt") ? v < l : (op == "gt") ? v > l : v >= l
		if (op == "ge" || op == "gt") f = (v > 0) ? l / v : 0; else f = (l > 0) ? v / l : 0
		rel = (op == "ge") ? ">=" : (op == "gt") ? ">" : (op == "lt") ? "<" : "<="
		if (ok) printf "MET      %s: %s%s (%s %s%s)\n", n, v, u, rel, l, u
		else printf "NOT MET  %s: %s%s (%s %s%s; off by %.2fx)\n", n, v, u, rel, l, u, f
	}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
mul() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-") print "-"; else printf "%.2f", a * b }'; }
k16="gemini full c=16"; r16="gemini resumed c=16"; p16="gopher c=16"
kg() { local v="${R[$1]:-}"; echo "${v:--}"; }
# rratio SCENARIO A B: the median over the rounds of A's CPU a request / B's.
rratio() {
	local a="${A["$1|$2|rounds"]:-}" b="${A["$1|$3|rounds"]:-}"
	[ -n "$a" ] && [ -n "$b" ] || { echo -; return; }
	paste <(printf '%s\n' $a) <(printf '%s\n' $b) |
	    awk '$1 > 0 && $2 > 0 { print $1 / $2 }' | sort -g |
	    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "Ratios (issues 7 and 14; CPU ratios: the median of $ROUNDS per-round ratios):"
check "Gemini full c=16: kilnet CPU/req vs floor" "$(rratio "$k16" kilnet floor)" 1.10 le x
check "Gemini full c=16: kilnet CPU/req vs molly-brown" "$(rratio "$k16" kilnet molly-brown)" 1.00 le x
check "Gemini full c=16: kilnet CPU/req vs nginx" "$(rratio "$k16" kilnet nginx)" 1.00 lt x
check "resumed c=16: kilnet CPU/req vs molly-brown" "$(rratio "$r16" kilnet molly-brown)" 1.00 le x
check "resumed c=16: kilnet handshakes resumed" "$(awk -v r="$(kg "$r16|kilnet|resumed")" -v n="$(kg "$r16|kilnet|req")" 'BEGIN { if (n > 0 && r != "-") printf "%.1f", 100 * r / n; else print "-" }')" 95 gt %
check "resumed c=16: kilnet CPU/req vs floor" "$(rratio "$r16" kilnet floor)" 1.10 le x
check "Gopher c=16: kilnet CPU/req vs plain floor" "$(rratio "$p16" kilnet floor-plain)" 1.30 le x
check "Gopher c=16: kilnet req/s vs gophernicus" "$(ratio "$(kg "$p16|kilnet|rps")" "$(kg "$p16|gophernicus|rps")")" 50 ge x
it="idle TLS x$IDLE_N" ip="idle gopher x$IDLE_N"
check "idle TLS: kilnet RSS per connection" "$(kg "$it|kilnet|per")" 24 le " KiB"
check "idle Gopher: kilnet RSS per connection" "$(kg "$ip|kilnet|per")" 2 le " KiB"
check "idle TLS: silent connections kilnet closed by its deadline" "$(kg "$it|kilnet|closed")" "$(kg "$it|kilnet|held")" ge ""
check "idle Gopher: silent connections kilnet closed by its deadline" "$(kg "$ip|kilnet|closed")" "$(kg "$ip|kilnet|held")" ge ""
check "idle TLS: kilnet p99 while held vs without (Gemini c=16)" "$(ratio "$(kg "$it|kilnet|p99")" "$(kg "$k16|kilnet|p99")")" 2 le x
check "idle Gopher: kilnet p99 while held vs without (Gopher c=16)" "$(ratio "$(kg "$ip|kilnet|p99")" "$(kg "$p16|kilnet|p99")")" 2 le x
check "whole dataset loaded and rendered (kilnet -t less process start)" "$(kg render)" 5 le " ms"
echo
echo "Spartan and Nex (issue 23): kilnet serving all four protocols against the plain"
echo "floor sending the same reply ($SP_BYTES bytes over Spartan, $NX_BYTES over Nex: the home page):"
check "Spartan c=16: kilnet CPU/req vs plain floor" "$(rratio "spartan c=16" kilnet floor-plain)" 1.10 le x
check "Nex c=16: kilnet CPU/req vs plain floor" "$(rratio "nex c=16" kilnet floor-plain)" 1.10 le x
echo
echo "Per-address limits (issue 13): kilnet with them on (127.0.0.1 counted in the shared"
echo "table, nothing refused) against off:"
kl="gemini full c=16, limits" pl="gopher c=16, limits"
check "Gemini full c=16: limits on vs off CPU/req" "$(rratio "$kl" kilnet-limits-on kilnet-limits-off)" 1.05 le x
check "Gopher c=16: limits on vs off CPU/req" "$(rratio "$pl" kilnet-limits-on kilnet-limits-off)" 1.05 le x
echo
echo "I/O model (issue 7 item 2; reported, no target): the floor on bufferevent_openssl"
echo "against the floor driving SSL_* from its own epoll loop, and kilnet (its own"
echo "SSL_* calls from libevent events) against the bufferevent floor:"
report() { printf 'INFO     %s: %s\n' "$1" "$2"; }
report "Gemini full c=16: bufferevent floor CPU/req vs floor" "$(ratio "$(kg "$k16|floor-bev|cpu")" "$(kg "$k16|floor|cpu")")x"
report "resumed c=16: bufferevent floor CPU/req vs floor" "$(ratio "$(kg "$r16|floor-bev|cpu")" "$(kg "$r16|floor|cpu")")x"
report "Gemini full c=16: kilnet CPU/req vs bufferevent floor" "$(ratio "$(kg "$k16|kilnet|cpu")" "$(kg "$k16|floor-bev|cpu")")x"
report "resumed c=16: kilnet CPU/req vs bufferevent floor" "$(ratio "$(kg "$r16|kilnet|cpu")" "$(kg "$r16|floor-bev|cpu")")x"
report "Gemini full c=16: kilnet's key process (signatures) CPU/req, share of kilnet's" \
    "$(kg "$k16|kilnet|keycpu") µs, $(kg "$k16|kilnet|keyshare")%"
report "resumed c=16: kilnet's key process CPU/req (no signature: ~0)" "$(kg "$r16|kilnet|keycpu") µs"
report "idle TLS: RSS per connection, kilnet / floor / bufferevent floor" \
    "$(kg "$it|kilnet|per") / $(kg "$it|floor|per") / $(kg "$it|floor-bev|per") KiB"
ku=$(kg "$r16|kilnet|reused") kn=$(kg "$r16|kilnet|req")
if [ "$ku" != - ] && [ "$kn" != - ] && [ $((ku * 2)) -gt "$kn" ]; then
	echo "note: kilnet resumed mostly from reused tickets (it sent no new ticket after a"
	echo "      resumption); a client that uses each ticket once resumes $(kg "resumed c=16, single-use tickets|kilnet|resumed") of $(kg "resumed c=16, single-use tickets|kilnet|req")."
fi
echo
# Cost by size of network (issue 14): its own datasets and servers.
say "scale: 11, 1,000 and 10,000 members"
bash "$ROOT/bench/scale.sh"
echo
# What the metrics cost a request (issue 22): its own two instances.
say "metrics: on against off"
bash "$ROOT/bench/metrics.sh"
echo
# Bytes on the wire per view (issue 14): its own namespaces and servers.
say "wire: bytes per view in network namespaces"
bash "$ROOT/bench/wire.sh" | sed '1{/^$/d}'
echo
# Several instances (issue 21): its own etcd cluster and servers.
say "store: an edit through one instance, live on the other"
bash "$ROOT/bench/store.sh"
echo
say "done in $(( $(date +%s) - T0 )) s"
