# tests/test_proxy.sh: kilnet behind a PROXY protocol sender. The real haproxy
# (TCP mode, send-proxy-v2, the health checks of conf/haproxy.cfg.example: GET
# /health on each instance's metrics port) in front of two kilnet instances on
# loopback; and headers sent by hand (v1 with gemget --first, v2 as raw bytes) to
# check what a proxy listener accepts, that a plain listener never trusts one,
# and that the rate limit sees the address from the header.
# needs: test_proxy_haproxy_* haproxy curl openssl

# proxy_conf FILE NAME [SETTINGS...]: a kilnet config with plain and PROXY
# listeners on free ports, exported as ${NAME}_G, ${NAME}_O (plain Gemini,
# Gopher) and ${NAME}_PG, ${NAME}_PO (proxy), and its metrics listener (the
# health checks) on ${NAME}_M. Links use HAP_G / HAP_O when set.
proxy_conf() {
	local f=$1 name=$2 g o pg po m; shift 2
	g=$(free_port); o=$(free_port); pg=$(free_port); po=$(free_port); m=$(free_port)
	eval "${name}_G=$g ${name}_O=$o ${name}_PG=$pg ${name}_PO=$po ${name}_M=$m"
	mkdir -p "$T/certs"
	{
		echo "server = {"
		echo "  hostnames = [ \"localhost\" ];"
		echo "  gemini = { listen = [ \"127.0.0.1:$g\" ]; proxy_listen = [ \"127.0.0.1:$pg\" ];"
		echo "             port = ${HAP_G:-$g}; };"
		echo "  gopher = { listen = [ \"127.0.0.1:$o\" ]; proxy_listen = [ \"127.0.0.1:$po\" ];"
		echo "             port = ${HAP_O:-$o}; };"
		echo "  metrics = { listen = [ \"127.0.0.1:$m\" ]; };"
		echo "  cert_dir = \"$T/certs\";"
		echo "  capsule = \"$ROOT/capsule\";"
		echo "  workers = 1;"
		for l in "$@"; do echo "  $l"; done
		echo "};"
		echo "@include \"$ROOT/conf/network.conf\""
	} >"$f"
}

# start_proxied NAME [SETTINGS...]: proxy_conf, then kilnet started (waits for
# the plain ports: a probe of a proxy port would be logged as a bad header).
start_proxied() {
	local name=$1; shift
	proxy_conf "$T/$name.conf" "$name" "$@"
	local g o
	eval "g=\$${name}_G o=\$${name}_O"
	GEM_PORT=$g GOPH_PORT=$o start_kilnet "$name" -c "$T/$name.conf"
}

# start_haproxy: haproxy on HAP_G / HAP_O in front of instances a and b, with the
# settings of conf/haproxy.cfg.example (checks every 200 ms here); waits until
# both backends of both services are up. Stopped when the test ends.
start_haproxy() {
	cat >"$T/haproxy.cfg" <<-EOF
	global
	    maxconn 1000
	defaults
	    mode tcp
	    retries 3
	    option redispatch 1
	    timeout connect 1s
	    timeout client 20s
	    timeout server 20s
	    timeout check 2s
	frontend gemini
	    bind 127.0.0.1:$HAP_G
	    default_backend kilnet_gemini
	backend kilnet_gemini
	    balance ${HAP_BALANCE:-roundrobin}
	    option httpchk GET /health
	    http-check expect status 200
	    default-server send-proxy-v2 check inter 200ms fall 2 rise 1
	    server a 127.0.0.1:$a_PG port $a_M
	    server b 127.0.0.1:$b_PG port $b_M
	frontend gopher
	    bind 127.0.0.1:$HAP_O
	    default_backend kilnet_gopher
	backend kilnet_gopher
	    balance roundrobin
	    option httpchk GET /health
	    http-check expect status 200
	    default-server send-proxy-v2 check inter 200ms fall 2 rise 1
	    server a 127.0.0.1:$a_PO port $a_M
	    server b 127.0.0.1:$b_PO port $b_M
	listen stats
	    mode http
	    bind 127.0.0.1:$HAP_S
	    stats enable
	    stats uri /stats
	EOF
	haproxy -c -q -f "$T/haproxy.cfg" || { fail "haproxy rejects its config"; return 1; }
	haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 &
	HAP_PID=$!
	trap 'kill $HAP_PID 2>/dev/null || true; wait $HAP_PID 2>/dev/null || true' EXIT
	wait_port 127.0.0.1 "$HAP_G" && wait_port 127.0.0.1 "$HAP_O" ||
	    { cat "$T/haproxy.out"; fail "haproxy did not listen"; return 1; }
	# The health checks (GET /health on each metrics port) must find all
	# four up.
	local i up
	for i in $(seq 1 100); do
		up=$(curl -s "http://127.0.0.1:$HAP_S/stats;csv" | grep -cE '^kilnet_(gemini|gopher),(a|b),.*,UP,' || true)
		[ "$up" = 4 ] && return 0
		sleep 0.1
	done
	curl -s "http://127.0.0.1:$HAP_S/stats;csv" | cut -d, -f1,2,18,37,38 | head
	cat "$T/haproxy.out"
	fail "haproxy's health checks did not find both kilnet instances up"
}

proxy_pair() {
	HAP_G=$(free_port); HAP_O=$(free_port); HAP_S=$(free_port)
	start_proxied a
	start_proxied b
	start_haproxy
}

# hap_status SERVER: haproxy's status of SERVER (a or b) in both backends,
# "GEMINI GOPHER" (UP, DOWN, ...).
hap_status() {
	curl -s "http://127.0.0.1:$HAP_S/stats;csv" |
		awk -F, -v s="$1" '$2 == s && $1 == "kilnet_gemini" { g = $18 }
			$2 == s && $1 == "kilnet_gopher" { o = $18 } END { print g, o }'
}

# hap_wait SERVER STATUS MS: until haproxy has SERVER as STATUS in both.
hap_wait() {
	local i
	for i in $(seq 1 $(( $3 / 50 ))); do
		[ "$(hap_status "$1")" = "$2 $2" ] && return 0
		sleep 0.05
	done
	fail "haproxy: $1 is $(hap_status "$1"), not $2 in both backends after $3 ms"
}

# Through haproxy both protocols are served (Gemini's TLS end to end: the
# certificate is kilnet's), and each kilnet logs the client's own address, sent
# in the header (the client connects from 127.0.0.2; haproxy from 127.0.0.1).
test_proxy_haproxy_passes_requests() {
	command -v haproxy >/dev/null || { fail "haproxy is not installed (make deps)"; return 1; }
	proxy_pair
	local out i
	for i in 1 2 3 4; do
		out=$("$TESTBIN/gemget" --bind 127.0.0.2 --cert-out "$T/cert.pem" 127.0.0.1 "$HAP_G" "gemini://localhost:$HAP_G/")
		expect_contains "Gemini through haproxy ($i)" "$out" $'20 text/gemini'
		expect_contains "Gemini body ($i)" "$out" "Keep it Local"
		out=$("$TESTBIN/gemget" --plain --bind 127.0.0.2 127.0.0.1 "$HAP_O" "/")
		expect_contains "Gopher through haproxy ($i)" "$out" "Keep it Local"
		expect_contains "Gopher links use haproxy's port ($i)" "$out" $'\tlocalhost\t'"$HAP_O"
	done
	# TLS was kilnet's: the certificate is the one in cert_dir.
	expect_eq "certificate end to end" "$(openssl x509 -in "$T/certs/localhost.crt" -noout -fingerprint)" \
	    "$(openssl x509 -in "$T/cert.pem" -noout -fingerprint)"
	# Round robin: each instance served both protocols to 127.0.0.2.
	for i in a b; do
		expect_contains "$i logged a Gemini client from the header" "$(cat "$T/$i.log")" " gemini 127.0.0.2 "
		expect_contains "$i logged a Gopher client from the header" "$(cat "$T/$i.log")" " gopher 127.0.0.2 "
		expect_not_contains "$i refused nothing" "$(cat "$T/$i.log")" "no valid PROXY"
	done
}

# TLS sessions are cached per instance (shared by its workers): with the
# example's "balance source" a client keeps its instance and resumes through
# haproxy, and another client address may land on the other instance.
test_proxy_haproxy_resumes() {
	command -v haproxy >/dev/null || { fail "haproxy is not installed (make deps)"; return 1; }
	grep -qE '^ *balance source' "$ROOT/conf/haproxy.cfg.example" ||
		fail "the example does not balance Gemini by source address"
	HAP_BALANCE=source proxy_pair
	local i n=0
	"$TESTBIN/gemget" --bind 127.0.0.2 --sess-out "$T/s.pem" 127.0.0.1 "$HAP_G" \
		"gemini://localhost:$HAP_G/" >/dev/null
	for i in $(seq 1 8); do
		"$TESTBIN/gemget" --bind 127.0.0.2 --sess-in "$T/s.pem" 127.0.0.1 "$HAP_G" \
			"gemini://localhost:$HAP_G/" >"$T/out" 2>"$T/err"
		expect_contains "served ($i)" "$(cat "$T/out")" "20 text/gemini"
		[ "$(cat "$T/err")" = resumed ] && n=$((n + 1))
	done
	expect_eq "resumed through haproxy, out of 8" 8 "$n"
}

# One instance stops (SIGTERM) in the middle of 50 requests: haproxy sends what
# it refuses to the other one, and every request is answered.
test_proxy_haproxy_failover() {
	command -v haproxy >/dev/null || { fail "haproxy is not installed (make deps)"; return 1; }
	proxy_pair
	: >"$T/results"
	(
		for i in $(seq 1 50); do
			if [ $((i % 2)) = 0 ]; then
				r=$("$TESTBIN/gemget" --timeout 10 127.0.0.1 "$HAP_G" "gemini://localhost:$HAP_G/members/" 2>>"$T/gemget.err" | head -n 1)
			else
				r=$("$TESTBIN/gemget" --timeout 10 --plain 127.0.0.1 "$HAP_O" "/members/" 2>>"$T/gemget.err" | head -c 1)
			fi
			echo "$i ${r%$'\r'}" >>"$T/results"
		done
	) &
	local loop=$! n
	for _ in $(seq 1 200); do
		n=$(wc -l <"$T/results")
		[ "$n" -ge 15 ] && break
		sleep 0.02
	done
	stop_kilnet "$KPID_a"
	wait "$loop"
	n=$(grep -cE '^[0-9]+ (20 text/gemini|i|1)' "$T/results" || true)
	[ "$n" = 50 ] || { grep -vE '^[0-9]+ (20 text/gemini|i|1)' "$T/results"; cat "$T/gemget.err"; fail "answered: $n of 50"; return 1; }
	# b took over: it served the last requests.
	expect_contains "b served after a stopped" "$(tail -n 3 "$T/b.log")" "/members/"
	# and the health check (a's metrics port refuses now) took a out
	hap_wait a DOWN 3000
	expect_eq "b stays up" "UP UP" "$(hap_status b)"
}

# An instance that runs but cannot serve its site: a's worker is killed and its
# replacement takes 2 s to serve (a test hook), so a's /health answers 503
# meanwhile. haproxy's check takes a out of both backends while its process and
# its ports are still there, every request goes to b, and a is back once its
# replacement serves.
test_proxy_haproxy_health_check() {
	command -v haproxy >/dev/null || { fail "haproxy is not installed (make deps)"; return 1; }
	HAP_G=$(free_port); HAP_O=$(free_port); HAP_S=$(free_port)
	KILNET_TEST_WORKER_DELAY_MS=2000 start_proxied a
	start_proxied b
	start_haproxy
	local w i out
	w=$(workers_of "$KPID_a")
	[ -n "$w" ] || fail "no worker in a"
	kill -9 "$w"
	hap_wait a DOWN 2000
	expect_eq "a's /health meanwhile" 503 \
		"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$a_M/health")"
	kill -0 "$KPID_a" || fail "a's master is gone"
	: >"$T/b.before"; cp "$T/b.log" "$T/b.before"
	for i in 1 2 3 4; do
		out=$("$TESTBIN/gemget" --timeout 5 127.0.0.1 "$HAP_G" "gemini://localhost:$HAP_G/join.gmi")
		expect_contains "Gemini while a is down ($i)" "$out" "20 text/gemini"
		out=$("$TESTBIN/gemget" --timeout 5 --plain 127.0.0.1 "$HAP_O" "/join.txt")
		[ -n "$out" ] || fail "Gopher while a is down ($i): nothing"
	done
	expect_eq "b served them all" 8 \
		"$(diff "$T/b.before" "$T/b.log" | grep -cE '^> .* (gemini|gopher) 127\.0\.0\.1 .*join\.' || true)"
	hap_wait a UP 5000
	expect_contains "a serves again" "$("$TESTBIN/gemget" 127.0.0.1 "$a_G" "gemini://localhost:$a_G/")" "20 text/gemini"
}

# A proxy listener refuses what does not start with a valid header: closed
# without a reply (no TLS alert, no Gopher error), and logged.
test_proxy_listener_requires_header() {
	start_proxied a
	local out rc
	# Gopher: a plain request where the header should be.
	# (The close may be a reset: the request was never read.)
	out=$(gopher_raw $'/\r\n' "$a_PO" 2>/dev/null | wc -c)
	expect_eq "Gopher request without header: bytes answered" 0 "$out"
	# A broken header: no reply either.
	out=$(gopher_raw $'PROXY TCP4 192.0.2.1 127.0.0.1 01 70\r\n/\r\n' "$a_PO" 2>/dev/null | wc -c)
	expect_eq "bad v1 header (leading zero): bytes answered" 0 "$out"
	out=$(gopher_raw $'PROXY TCP4 192.0.2.300 127.0.0.1 1 70\r\n/\r\n' "$a_PO" 2>/dev/null | wc -c)
	expect_eq "bad v1 header (address): bytes answered" 0 "$out"
	# Gemini: a TLS handshake with no header fails.
	rc=0
	out=$("$TESTBIN/gemget" --timeout 5 127.0.0.1 "$a_PG" "gemini://localhost/" 2>&1) || rc=$?
	[ "$rc" = 1 ] || [ "$rc" = 3 ] || fail "TLS without header: gemget exit $rc: $out"
	expect_not_contains "no Gemini reply" "$out" "20 text/gemini"
	expect_contains "logged" "$(cat "$T/a.log")" "no valid PROXY protocol header"
	# The same listener serves a request with a header, v1 and v2 (v2 LOCAL
	# keeps the connection's own address).
	out=$("$TESTBIN/gemget" --first 'PROXY TCP4 192.0.2.9 127.0.0.1 40000 1965\r\n' 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
	expect_contains "Gemini with a v1 header" "$out" $'20 text/gemini'
	out=$("$TESTBIN/gemget" --first 'PROXY TCP6 2001:db8::7 ::1 40000 1965\r\n' 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
	expect_contains "Gemini with a v1 TCP6 header" "$out" $'20 text/gemini'
	out=$("$TESTBIN/gemget" --plain --first '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x05\x7f\x00\x00\x01\x9c\x40\x00\x46' 127.0.0.1 "$a_PO" "/")
	expect_contains "Gopher with a v2 header" "$out" "Keep it Local"
	out=$("$TESTBIN/gemget" --plain --first '\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00' 127.0.0.1 "$a_PO" "/")
	expect_contains "Gopher with a v2 LOCAL header" "$out" "Keep it Local"
	local log; log=$(cat "$T/a.log")
	expect_contains "v1 address logged" "$log" " gemini 192.0.2.9 "
	expect_contains "v1 TCP6 address logged" "$log" " gemini 2001:db8::7 "
	expect_contains "v2 address logged" "$log" " gopher 198.51.100.5 "
	expect_contains "v2 LOCAL: own address" "$log" " gopher 127.0.0.1 "
}

# A plain listener never trusts a header: on Gopher it is a selector like any
# other (a type 3 error), inside Gemini's TLS it is not a URL (59), before TLS
# it breaks the handshake; the log never shows the claimed address.
test_proxy_plain_listener_distrusts_header() {
	start_proxied a
	local out rc
	out=$(gopher_raw $'PROXY TCP4 192.0.2.1 127.0.0.1 5000 70\r\n' "$a_O")
	[ "${out:0:1}" = 3 ] || fail "Gopher: expected a type 3 line, got: ${out:0:80}"
	out=$("$TESTBIN/gemget" --timeout 5 127.0.0.1 "$a_G" 'PROXY TCP4 192.0.2.1 127.0.0.1 5000 1965')
	expect_eq "Gemini: header as the request" "59" "${out:0:2}"
	rc=0
	out=$("$TESTBIN/gemget" --timeout 5 --first 'PROXY TCP4 192.0.2.1 127.0.0.1 5000 1965\r\n' 127.0.0.1 "$a_G" "gemini://localhost:$a_G/" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "Gemini: a header before TLS was accepted: $out"
	expect_not_contains "no reply" "$out" "20 text/gemini"
	# (The request itself, logged in quotes, holds it, but never as the client.)
	expect_not_contains "claimed address never the Gemini client" "$(cat "$T/a.log")" " gemini 192.0.2.1 "
	expect_not_contains "claimed address never the Gopher client" "$(cat "$T/a.log")" " gopher 192.0.2.1 "
	expect_not_contains "claimed address never in a message" "$(cat "$T/a.log")" "192.0.2.1:5000"
}

# The rate limit counts the address from the header: a flood claimed from one
# address gets 44 (Gemini) and a type 3 line (Gopher), while another claimed
# address is served; an IPv6 /64 is one client; allowed ranges are exempt.
test_proxy_rate_limit_claimed_address() {
	start_proxied a 'rate_limit = { rate = 0.01; burst = 3; max_per_address = 0;' \
	    '  allow = [ "203.0.113.0/24" ]; };'
	local out i
	hdr() {
		local dst=127.0.0.1
		[ "$1" = TCP6 ] && dst=::1
		printf 'PROXY %s %s %s 40000 1965\\r\\n' "$1" "$2" "$dst"
	}
	for i in 1 2 3; do
		out=$("$TESTBIN/gemget" --first "$(hdr TCP4 192.0.2.1)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
		expect_contains "request $i within the burst" "$out" $'20 text/gemini'
	done
	for i in 4 5 6 7 8; do
		out=$("$TESTBIN/gemget" --first "$(hdr TCP4 192.0.2.1)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
		[[ $out =~ ^44\ [0-9]+$'\r'$ ]] || fail "request $i: expected 44 SECONDS, got: $(printf '%q' "${out:0:60}")"
		# 1 token per 100 s: the wait is 100 s or just under.
		local s=${out#44 }; s=${s%$'\r'}
		[ "$s" -ge 90 ] && [ "$s" -le 100 ] || fail "wait $s s, expected about 100"
	done
	out=$("$TESTBIN/gemget" --first "$(hdr TCP4 192.0.2.2)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
	expect_contains "another claimed address is served" "$out" $'20 text/gemini'
	# The same bucket for Gopher requests from that address: a type 3 line.
	out=$("$TESTBIN/gemget" --plain --first "$(hdr TCP4 192.0.2.1)" 127.0.0.1 "$a_PO" "/")
	[ "${out:0:1}" = 3 ] || fail "Gopher over the limit: expected type 3, got: ${out:0:80}"
	expect_not_contains "Gopher over the limit: no page" "$out" "Keep it Local"
	# IPv6: one /64 shares a bucket, the next /64 has its own.
	for i in 1 2 3; do
		"$TESTBIN/gemget" --first "$(hdr TCP6 2001:db8:0:1::$i)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/" >/dev/null
	done
	out=$("$TESTBIN/gemget" --first "$(hdr TCP6 2001:db8:0:1:ffff::9)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
	expect_eq "same /64 limited" "44" "${out:0:2}"
	out=$("$TESTBIN/gemget" --first "$(hdr TCP6 2001:db8:0:2::1)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
	expect_contains "next /64 served" "$out" $'20 text/gemini'
	# An allowed range is never limited.
	for i in $(seq 1 8); do
		out=$("$TESTBIN/gemget" --first "$(hdr TCP4 203.0.113.5)" 127.0.0.1 "$a_PG" "gemini://localhost:$a_G/")
		expect_contains "allowed address, request $i" "$out" $'20 text/gemini'
	done
	# The loopback is not in this test's allow list, but the plain listener's
	# client (127.0.0.1) has its own bucket, untouched by the claimed floods.
	out=$("$TESTBIN/gemget" 127.0.0.1 "$a_G" "gemini://localhost:$a_G/")
	expect_contains "the proxy's own address has its own bucket" "$out" $'20 text/gemini'
}

# max_per_address counts open connections per claimed address: with two held
# open from one address, a third from it is closed unanswered, while another
# address is served; when one closes, the address may connect again.
test_proxy_max_per_address_claimed() {
	start_proxied a 'rate_limit = { rate = 0; max_per_address = 2; allow = [ ]; };'
	local out hdr=$'PROXY TCP4 192.0.2.50 127.0.0.1 40000 70\r\n'
	exec 3<>"/dev/tcp/127.0.0.1/$a_PO" 4<>"/dev/tcp/127.0.0.1/$a_PO"
	printf '%s' "$hdr" >&3
	printf '%s' "$hdr" >&4
	sleep 0.3
	out=$("$TESTBIN/gemget" --timeout 5 --plain --first 'PROXY TCP4 192.0.2.50 127.0.0.1 40001 70\r\n' 127.0.0.1 "$a_PO" "/" 2>/dev/null | wc -c)
	expect_eq "third connection from 192.0.2.50: bytes answered" 0 "$out"
	out=$("$TESTBIN/gemget" --timeout 5 --plain --first 'PROXY TCP4 192.0.2.51 127.0.0.1 40001 70\r\n' 127.0.0.1 "$a_PO" "/")
	expect_contains "another address is served" "$out" "Keep it Local"
	expect_contains "logged" "$(cat "$T/a.log")" "192.0.2.50:40001 gopher: too many connections"
	exec 3<&-
	sleep 0.3
	out=$("$TESTBIN/gemget" --timeout 5 --plain --first 'PROXY TCP4 192.0.2.50 127.0.0.1 40002 70\r\n' 127.0.0.1 "$a_PO" "/")
	expect_contains "served again after one closed" "$out" "Keep it Local"
	exec 4<&-
}
