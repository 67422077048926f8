# tests/test_metrics.sh: what operators watch (issue 22). A real Prometheus
# scrapes kilnet's metrics process and its query API gives back the requests the
# test made, by protocol and status, and the resumed share the client saw;
# /health answers 503 while a killed worker's replacement is not serving yet and
# while the last reload failed, 200 otherwise; uploads are counted by result;
# the metrics process has the listeners' caps and deadlines and runs
# unprivileged in its own filter; and with log_format = "json" hostile requests
# give lines that jq parses, each field holding what was sent.
# needs: test_metrics_prometheus_* prometheus curl jq
# needs: test_metrics_health_* curl
# needs: test_metrics_edits_* curl openssl python3
# needs: test_metrics_listener_* curl python3
# needs: test_metrics_json_* jq python3

# met_start [SETTINGS...]: kilnet with its metrics listener on $MET_PORT (free),
# WORKERS workers (default 2), the config in $T/k.conf.
met_start() {
	MET_PORT=$(free_port)
	WORKERS=${WORKERS:-2} write_conf "$T/k.conf" \
		"metrics = { listen = [ \"127.0.0.1:$MET_PORT\" ]; };" "$@"
	start_kilnet k -c "$T/k.conf"
}

# met_health: "CODE BODY" of GET /health ("000" when nothing answered).
met_health() {
	local body code
	body=$(curl -s -m 2 -o - -w '\n%{http_code}' "http://127.0.0.1:$MET_PORT/health" 2>/dev/null)
	code=${body##*$'\n'}
	body=${body%$'\n'*}
	echo "$code ${body%$'\n'}"
}

# met_wait_health CODE MS: until /health answers CODE (MS milliseconds at most);
# its body in MET_BODY, the milliseconds it took in MET_MS.
met_wait_health() {
	local want=$1 t0 h
	t0=$(date +%s%3N)
	while :; do
		h=$(met_health)
		MET_MS=$(( $(date +%s%3N) - t0 ))
		[ "${h%% *}" = "$want" ] && { MET_BODY=${h#* }; return 0; }
		[ "$MET_MS" -le "$2" ] || break
		sleep 0.05
	done
	fail "/health did not answer $want within $2 ms; last: $h"
}

# met_value SERIES: the value of one series of GET /metrics, exactly as named
# (e.g. 'kilnet_worker_restarts_total{reason="crash"}'); empty when absent.
met_value() {
	curl -s -m 5 "http://127.0.0.1:$MET_PORT/metrics" |
		awk -v s="$1" 'substr($0, 1, length(s) + 1) == s " " { print $2 }'
}

# ------------------------------------------------------------------ Prometheus

# prom_query EXPR: the instant vector of EXPR, one "LABELS VALUE" a line, sorted
# (LABELS: the series' labels but job and instance, k=v joined by commas).
prom_query() {
	curl -s -m 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
		jq -r '.data.result[] | ((.metric | del(.job, .instance, .__name__) | to_entries |
			map("\(.key)=\(.value)") | join(",")) + " " + .value[1])' | LC_ALL=C sort
}

# 100 Gemini requests (50 full handshakes, 50 offering the last ticket), 50
# Gopher requests and 15 Gemini requests from 127.0.0.2, whose burst is 5: 10 are
# over the rate limit. Prometheus, scraping every second, then gives exactly those
# counts by protocol and status, the 10 limited, the histogram's counts, and the
# resumed share of handshakes that the client saw.
test_metrics_prometheus_counts() {
	met_start 'rate_limit = { rate = 0.001; burst = 5.0; max_per_address = 0; allow = [ "127.0.0.1/32" ]; };'
	met_wait_health 200 5000
	PROM_PORT=$(free_port)
	mkdir -p "$T/prom"
	cat >"$T/prom.yml" <<-EOF
	global:
	  scrape_interval: 1s
	  scrape_timeout: 1s
	scrape_configs:
	  - job_name: kilnet
	    static_configs:
	      - targets: [ "127.0.0.1:$MET_PORT" ]
	EOF
	prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" \
		--web.listen-address="127.0.0.1:$PROM_PORT" >"$T/prometheus.out" 2>&1 &
	PROM_PID=$!
	trap 'kill $PROM_PID 2>/dev/null; wait $PROM_PID 2>/dev/null' EXIT
	local i resumed out

	# loadgen: one process for each run of requests, each request a new
	# connection; with --resume each handshake offers the newest ticket.
	local url="gemini://localhost:$GEM_PORT/" lg=$ROOT/bench/bin/loadgen
	out=$("$lg" --gemini --port "$GEM_PORT" --sni localhost --request "$url" \
		--expect "20 " -c 1 -n 50 --seconds 60 2>&1 | tail -n 1)
	[[ $out == *" requests=50 errors=0 "* ]] || fail "50 full Gemini requests: $out"
	resumed=$(sed -n 's/.* resumed=\([0-9]*\) .*/\1/p' <<<"$out")
	out=$("$lg" --gemini --port "$GEM_PORT" --sni localhost --request "$url" \
		--expect "20 " -c 1 -n 50 --seconds 60 --resume 2>&1 | tail -n 1)
	[[ $out == *" requests=50 errors=0 "* ]] || fail "50 resuming Gemini requests: $out"
	resumed=$(( resumed + $(sed -n 's/.* resumed=\([0-9]*\) .*/\1/p' <<<"$out") ))
	[ "$resumed" -ge 40 ] || fail "the client saw only $resumed of 100 handshakes resumed"
	out=$("$lg" --gopher --port "$GOPH_PORT" --request "" --min-bytes 1000 -c 1 -n 50 \
		--seconds 60 2>&1 | tail -n 1)
	[[ $out == *" requests=50 errors=0 "* ]] || fail "50 Gopher requests: $out"
	local n20=0 n44=0
	for i in $(seq 1 15); do
		out=$("$TESTBIN/gemget" --bind 127.0.0.2 127.0.0.1 "$GEM_PORT" "$url" | head -c 2)
		case $out in 20) n20=$((n20 + 1)) ;; 44) n44=$((n44 + 1)) ;; *) fail "127.0.0.2: $out" ;; esac
	done
	expect_eq "served from 127.0.0.2 (the burst)" 5 "$n20"
	# both workers served: the counts are summed over them
	expect_eq "workers that answered" 2 "$(grep -oE ' w[12] gemini 127\.0\.0\.1 ' "$T/k.log" | sort -u | wc -l)"

	# Prometheus has scraped once the sum is all of them.
	local total=
	for i in $(seq 1 150); do
		total=$(prom_query 'sum(kilnet_requests_total)' | awk '{ print $NF }')
		[ "$total" = 165 ] && break
		sleep 0.1
	done
	[ "$total" = 165 ] || { tail -n 5 "$T/prometheus.out"; fail "Prometheus's sum of kilnet_requests_total: '$total', expected 165"; return 1; }
	expect_eq "kilnet_requests_total by protocol and status" \
		"$(printf '%s\n' 'protocol=gemini,status=20 105' 'protocol=gemini,status=44 10' \
		    'protocol=gopher,status=ok 50')" \
		"$(prom_query 'kilnet_requests_total')"
	expect_eq "kilnet_rate_limited_total" "protocol=gemini 10" \
		"$(prom_query 'kilnet_rate_limited_total > 0')"
	expect_eq "requests in the duration histogram" \
		"$(printf '%s\n' 'protocol=gemini 115' 'protocol=gopher 50')" \
		"$(prom_query 'sum by (protocol) (kilnet_request_duration_seconds_count) > 0')"
	expect_eq "handshakes" "$(printf 'kind=full %d\nkind=resumed %d\n' $((115 - resumed)) "$resumed")" \
		"$(prom_query 'kilnet_tls_handshakes_total')"
	expect_eq "resumed share" "$(awk -v r="$resumed" 'BEGIN { printf "%.4f", r / 115 }')" \
		"$(prom_query 'sum(kilnet_tls_handshakes_total{kind="resumed"}) / sum(kilnet_tls_handshakes_total)' |
		    awk '{ printf "%.4f", $NF }')"
	expect_eq "handshake failures" " 0" "$(prom_query 'kilnet_tls_handshake_failures_total')"
	expect_eq "bytes counted for Gemini and Gopher" "$(printf '%s\n' 'protocol=gemini' 'protocol=gopher')" \
		"$(prom_query 'kilnet_response_bytes_total > 1000' | cut -d' ' -f1)"
	expect_eq "members" " 11" "$(prom_query 'kilnet_dataset_members')"
	expect_eq "build info" "version=$(sed -n 's/^VERSION *= *//p' "$ROOT/Makefile") 1" \
		"$(prom_query 'kilnet_build_info')"
	expect_eq "the scrape was up" " 1" "$(prom_query 'up{job="kilnet"}')"
}

# ---------------------------------------------------------------------- health

# kill -9 of a worker whose replacement takes 1.5 s to serve (a test hook):
# /health is 503, naming the worker, until the replacement serves, then 200; the
# restart is counted as a crash, and the replacement serves.
test_metrics_health_worker_killed() {
	export KILNET_TEST_WORKER_DELAY_MS=1500
	met_start
	met_wait_health 200 8000
	local w
	w=$(workers_of "$KPID" | head -n 1)
	[ -n "$w" ] || fail "no worker"
	expect_eq "restarts before" 0 "$(met_value 'kilnet_worker_restarts_total{reason="crash"}')"
	kill -9 "$w"
	met_wait_health 503 1000
	[[ $MET_BODY =~ ^worker\ [12]\ is\ not\ serving$ ]] || fail "503's reason: $MET_BODY"
	met_wait_health 200 5000
	echo "503 for $MET_MS ms after the kill"
	[ "$MET_MS" -ge 700 ] || fail "200 after $MET_MS ms: before the replacement served"
	expect_eq "body" ok "$MET_BODY"
	expect_eq "restarts counted" 1 "$(met_value 'kilnet_worker_restarts_total{reason="crash"}')"
	expect_eq "no sandbox restart" 0 "$(met_value 'kilnet_worker_restarts_total{reason="sandbox"}')"
	kill -0 "$w" 2>/dev/null && fail "the killed worker still runs"
	expect_eq "served after" 20 "$("$TESTBIN/gemget" 127.0.0.1 "$GEM_PORT" "gemini://localhost:$GEM_PORT/" | head -c 2)"
}

# A worker stopped by its seccomp filter (the test hook makes it open a file)
# is counted as a sandbox restart.
test_metrics_health_sandbox_restart() {
	export KILNET_TEST_SANDBOX_PROBE=open
	WORKERS=1 met_start
	local i v=
	for i in $(seq 1 80); do
		v=$(met_value 'kilnet_worker_restarts_total{reason="sandbox"}')
		[ "${v:-0}" -ge 1 ] && break
		sleep 0.05
	done
	[ "${v:-0}" -ge 1 ] || fail "no sandbox restart counted (log: $(grep -c 'sandbox violation' "$T/k.log"))"
	expect_eq "crash restarts" 0 "$(met_value 'kilnet_worker_restarts_total{reason="crash"}')"
	grep -q 'sandbox violation: system call open' "$T/k.log" || fail "the violation was not logged"
}

# A broken config on SIGHUP: 503 with the first error of the reload (file, line,
# setting), counted as failed; the site serves on. The config mended and
# SIGHUP again: 200, an ok reload, and a newer success timestamp.
test_metrics_health_reload() {
	met_start
	met_wait_health 200 5000
	local t0 t1 line
	t0=$(met_value kilnet_last_reload_success_timestamp_seconds)
	cp "$T/k.conf" "$T/good.conf"
	sed -i 's/^  workers = .*/  workers = "two";/' "$T/k.conf"
	line=$(grep -n '^  workers = ' "$T/k.conf" | cut -d: -f1)
	kill -HUP "$KPID"
	met_wait_health 503 3000
	expect_eq "503's reason" "the last reload failed: $T/k.conf:$line: server.workers: expected an integer, found a string" "$MET_BODY"
	expect_eq "failed reloads" 1 "$(met_value 'kilnet_reloads_total{result="failed"}')"
	expect_eq "ok reloads" 0 "$(met_value 'kilnet_reloads_total{result="ok"}')"
	expect_eq "still served" 20 "$("$TESTBIN/gemget" 127.0.0.1 "$GEM_PORT" "gemini://localhost:$GEM_PORT/" | head -c 2)"
	expect_eq "still 503" 503 "$(met_health | cut -d' ' -f1)"
	sleep 1.1	# the timestamp has milliseconds; a second apart leaves no doubt
	cp "$T/good.conf" "$T/k.conf"
	kill -HUP "$KPID"
	met_wait_health 200 5000
	expect_eq "ok reloads" 1 "$(met_value 'kilnet_reloads_total{result="ok"}')"
	t1=$(met_value kilnet_last_reload_success_timestamp_seconds)
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b > a + 1) }' || fail "success timestamp $t0 -> $t1"
}

# ----------------------------------------------------------------------- edits

# An upload stored, one refused by the check (a syntax error), and two denied
# (no certificate; one that is not an editor's): kilnet_edits_total by result,
# and the Titan requests by status.
test_metrics_edits_counted() {
	tit_setup
	tit_cert other
	MET_PORT=$(free_port)
	tit_start "metrics = { listen = [ \"127.0.0.1:$MET_PORT\" ]; };"
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect_status "good upload" 30 "$T/w/up"
	printf 'network = {\n  name = ;\n};\n' >"$T/w/bad.conf"
	tit_upload "$T/w/bad" /network.conf "$T/w/bad.conf"
	tit_expect_status "broken upload" 59 "$T/w/bad"
	local url="titan://localhost:$GEM_PORT/network.conf;size=AUTO;mime=text/plain"
	tit "$T/w/r" --url "$url" --file "$T/w/new.conf"
	tit_expect_status "no certificate" 60 "$T/w/r"
	tit "$T/w/r" --url "$url" --file "$T/w/new.conf" --cert "$T/other.crt" --key "$T/other.key"
	tit_expect_status "not an editor" 61 "$T/w/r"
	sleep 0.3
	expect_eq "stored" 1 "$(met_value 'kilnet_edits_total{result="stored"}')"
	expect_eq "refused" 1 "$(met_value 'kilnet_edits_total{result="refused"}')"
	expect_eq "denied" 2 "$(met_value 'kilnet_edits_total{result="denied"}')"
	expect_eq "Titan 30" 1 "$(met_value 'kilnet_requests_total{protocol="titan",status="30"}')"
	expect_eq "Titan 59" 1 "$(met_value 'kilnet_requests_total{protocol="titan",status="59"}')"
	expect_eq "Titan 61" 1 "$(met_value 'kilnet_requests_total{protocol="titan",status="61"}')"
	expect_eq "an upload's store reloads" 1 "$(met_value 'kilnet_reloads_total{result="ok"}')"
	expect_eq "members after the upload" 12 "$(met_value kilnet_dataset_members)"
}

# ------------------------------------------------------------ the metrics process

# The listener's limits: with max_connections 2 and request_timeout 1 s, two
# silent connections hold it full, so a third request waits until the deadline
# closes them (about 1 s), then is answered; the silent ones got nothing.
# Unknown paths are 404, other methods refused, HEAD has no body.
test_metrics_listener_limits() {
	met_start 'max_connections = 2;' 'request_timeout = 1.0;'
	met_wait_health 200 5000
	python3 - "$MET_PORT" <<-'PY' >"$T/limits.out"
	import socket, subprocess, sys, time
	port = int(sys.argv[1])
	idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
	time.sleep(0.2)
	t = time.time()
	code = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
	    "http://127.0.0.1:%d/health" % port], capture_output=True, text=True).stdout
	took = time.time() - t
	got = []
	for s in idle:
	    s.settimeout(3)
	    got.append(len(s.recv(100)))
	print(code, "%.2f" % took, got)
	PY
	read -r code took got <"$T/limits.out"
	expect_eq "third request" 200 "$code"
	awk -v t="$took" 'BEGIN { exit !(t >= 0.6 && t <= 3) }' ||
		fail "the third request took $took s: not held until the deadline"
	expect_eq "the silent connections got nothing" "[0, 0]" "$got"
	expect_eq "unknown path" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MET_PORT/x")"
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$MET_PORT/metrics")
	[ "$code" = 405 ] || [ "$code" = 501 ] || fail "DELETE answered $code"
	expect_eq "HEAD: no body" 0 "$(curl -s -I "http://127.0.0.1:$MET_PORT/metrics" -o /dev/null -w '%{size_download}')"
	expect_contains "HEAD: the length" "$(curl -s -I "http://127.0.0.1:$MET_PORT/metrics")" "Content-Length: "
	assert_alive
}

# The metrics process holds nothing it does not serve with: no listening
# socket of the workers, no writable view of the counters or of the others'
# shared memory, its seccomp filter on, and, started as root, the configured
# user and an empty root. A second process that cannot have the
# port stops the start with the setting named.
test_metrics_listener_confined() {
	met_start
	met_wait_health 200 5000
	sleep 1
	local mp st
	mp=$(pgrep -P "$KPID" -x kilnet-metrics) || fail "no kilnet-metrics process"
	st=$(cat "/proc/$mp/status")
	expect_contains "seccomp filter" "$st" $'Seccomp:\t2'
	if [ "$(id -u)" = 0 ]; then
		[[ $st =~ Uid:[[:space:]]+([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != 0 ] ||
			fail "the metrics process runs as root"
		[ "$(readlink "/proc/$mp/root")" != / ] || fail "the metrics process is not chrooted"
	fi
	# the counters read only; no other process's shared memory (the TLS
	# session cache, the rate limits): one writable page, its own report
	# board for a sandbox violation
	local rw= range perm _
	while read -r range perm _; do
		[[ $perm == rw?s ]] && rw+="${rw:+ }$(( 0x${range#*-} - 0x${range%-*} ))"
	done <"/proc/$mp/maps"
	expect_eq "writable shared memory" 4096 "$rw"
	grep -qE ' r--s .*/dev/zero' "/proc/$mp/maps" || fail "no read-only view of the counters"
	local socks
	sleep 0.3	# the health checks' connections are gone
	socks=$(ls -l "/proc/$mp/fd" 2>/dev/null | grep -c 'socket:' || true)
	expect_eq "sockets it holds (its listener)" 1 "$socks"
	# another kilnet on the same metrics port fails to start, naming it
	local rc=0
	GEM_PORT=$(free_port) GOPH_PORT=$(free_port) write_conf "$T/two.conf" \
		"metrics = { listen = [ \"127.0.0.1:$MET_PORT\" ]; };"
	timeout 10 "$KILNET" -c "$T/two.conf" >"$T/two.out" 2>&1 || rc=$?
	expect_eq "second server's status" 1 "$rc"
	expect_contains "message" "$(cat "$T/two.out")" "cannot listen on 127.0.0.1:$MET_PORT (server.metrics.listen)"
	# and kill -9 of the metrics process (a second after its start: one
	# that dies sooner is not started again): a new one serves
	kill -9 "$mp"
	met_wait_health 200 3000
	[ "$(pgrep -P "$KPID" -x kilnet-metrics)" != "$mp" ] || fail "not a new process"
}

# ------------------------------------------------------------------- JSON logs

# With log_format = "json", hostile requests over Gemini, Gopher, Spartan and Nex
# (CR, LF, quotes, backslashes, ANSI escapes, invalid UTF-8, a forged field):
# every line of the log is one JSON object, and each request line holds what was
# sent: "request" itself when it was UTF-8, else its exact bytes in
# "request_base64" (and U+FFFD in "request").
test_metrics_json_logs_hostile() {
	local sp np
	sp=$(free_port) np=$(free_port)
	WORKERS=1 write_conf "$T/k.conf" 'log_format = "json";' \
		"spartan = { listen = [ \"127.0.0.1:$sp\" ]; };" "nex = { listen = [ \"127.0.0.1:$np\" ]; };"
	start_kilnet k -c "$T/k.conf"
	python3 - "$GEM_PORT" "$GOPH_PORT" "$sp" "$np" "$TESTBIN/gemget" >"$T/sent" <<-'PY'
	import base64, subprocess, sys, socket
	gem, goph, sp, nex, gemget = sys.argv[1:6]
	host = "localhost:%s" % gem
	hostile = [b'"quoted" \\back\\slash', b'a\rb', b'\x1b[31mred\x1b[0m \x1b]0;title\x07',
	    b'\xff\xfe \xc0\xaf \xed\xa0\x80', b'x","status":20,"forged":"1', b'caf\xc3\xa9 \xe2\x80\xae']
	def esc(b):	# gemget's escapes: \\ \r \n \xHH
	    return "".join("\\\\" if c == 0x5c else chr(c) if 0x20 <= c < 0x7f else "\\x%02x" % c for c in b)
	def plain(port, data):
	    s = socket.create_connection(("127.0.0.1", int(port)))
	    s.sendall(data)
	    s.settimeout(5)
	    while s.recv(65536):
	        pass
	    s.close()
	for h in hostile:
	    req = b"gemini://" + host.encode() + b"/" + h
	    subprocess.run([gemget, "127.0.0.1", gem, esc(req)], capture_output=True)
	    print("gemini", base64.b64encode(req).decode())
	for h in hostile + [b'abc\n{"forged":true}']:
	    plain(goph, h + b"\r\n")
	    print("gopher", base64.b64encode(h.split(b"\n")[0]).decode())
	for h in hostile:
	    req = b"localhost /" + h + b" 0"
	    plain(sp, req + b"\r\n")
	    print("spartan", base64.b64encode(req).decode())
	for h in hostile:
	    plain(nex, b"/" + h + b"\n")
	    print("nex", base64.b64encode(b"/" + h).decode())
	PY
	sleep 0.3
	local lines objs
	lines=$(wc -l <"$T/k.log")
	objs=$(jq -c . "$T/k.log" | wc -l) || fail "jq cannot parse the log"
	expect_eq "one object a line" "$lines" "$objs"
	jq -e 'type == "object"' "$T/k.log" >/dev/null || fail "a line is not an object"
	expect_eq "no forged field" "" "$(jq -c 'select(has("forged"))' "$T/k.log")"
	# every message has its four fields, the time with milliseconds
	expect_eq "messages with time, level, process, message" "" "$(jq -c 'select(has("request") | not) |
		select((.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$") | not)
		or (.level | type) != "string" or (.process | type) != "string" or (.message | type) != "string")' "$T/k.log")"
	jq -r 'select(has("request")) | [.protocol, (if has("request_base64") then .request_base64
		else (.request | @base64) end), .status, .bytes, .worker, .client, .time] | @tsv' \
		"$T/k.log" >"$T/logged"
	expect_eq "requests logged" "$(wc -l <"$T/sent")" "$(wc -l <"$T/logged")"
	expect_eq "each request as sent, in order" "$(cat "$T/sent")" "$(cut -f1,2 "$T/logged" | tr '\t' ' ')"
	local bad
	bad=$(awk -F'\t' '$4 !~ /^[0-9]+$/ || $5 != 1 || $6 != "127.0.0.1" ||
		$7 !~ /^[0-9-]+T[0-9:]+\.[0-9][0-9][0-9]Z$/' "$T/logged")
	[ -z "$bad" ] || fail "fields: $bad"
	# a request that is not UTF-8 shows U+FFFD where its bytes were not
	expect_contains "U+FFFD" "$(jq -r 'select(has("request_base64")) | .request' "$T/k.log" | head -n 1)" $'\xef\xbf\xbd'
	# and nothing but ASCII is written: a terminal reading the log takes no
	# byte as a command
	LC_ALL=C grep -q '[^ -~]' "$T/k.log" && fail "bytes outside printable ASCII in the log"
	return 0
}

# A reload turns the listener on (the workers count from then on), moves it to
# another port (the old one refuses, the counts stay), and turns it off.
test_metrics_listener_reload() {
	WORKERS=1 write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	MET_PORT=$(free_port)
	local p2
	p2=$(free_port)
	cp "$T/k.conf" "$T/off.conf"
	sed -i "s|^  workers = 1;|  workers = 1; metrics = { listen = [ \"127.0.0.1:$MET_PORT\" ]; };|" "$T/k.conf"
	kill -HUP "$KPID"
	met_wait_health 200 5000
	"$TESTBIN/gemget" 127.0.0.1 "$GEM_PORT" "gemini://localhost:$GEM_PORT/" >/dev/null
	expect_eq "counted once on" 1 "$(met_value 'kilnet_requests_total{protocol="gemini",status="20"}')"
	sed -i "s|127.0.0.1:$MET_PORT|127.0.0.1:$p2|" "$T/k.conf"
	kill -HUP "$KPID"
	local old=$MET_PORT
	MET_PORT=$p2
	met_wait_health 200 5000
	expect_eq "the counts moved with it" 1 "$(met_value 'kilnet_requests_total{protocol="gemini",status="20"}')"
	expect_eq "the old port" 000 "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$old/health")"
	cp "$T/off.conf" "$T/k.conf"
	kill -HUP "$KPID"
	local i
	for i in $(seq 1 60); do
		[ "$(met_health | cut -d' ' -f1)" = 000 ] && break
		sleep 0.05
	done
	expect_eq "off after the reload" 000 "$(met_health | cut -d' ' -f1)"
	pgrep -P "$KPID" -x kilnet-metrics >/dev/null && fail "a metrics process still runs"
	assert_alive
}
