# tests/test_server.sh: the network layer against the real server: certificates
# (generation, reuse, SNI), TLS versions, close_notify, session resumption,
# deadlines, the connection cap, IPv6, listen errors, TLS autodetection on the
# Gopher port, signals, the access log and workers. Checks status codes and
# connection behaviour, not page content (other files test that).
# needs: test_server_cert_generated_and_reused openssl
# needs: test_server_bad_key_is_an_error openssl
# needs: test_server_tls_versions openssl
# needs: test_server_resumption_across_workers openssl
# needs: test_server_no_certificate_request openssl
# needs: test_server_client_certificate_accepted openssl

# srv_start [SETTINGS...]: a server on free ports with the default dataset.
srv_start() {
	write_conf "$T/k.conf" "$@"
	start_kilnet k -c "$T/k.conf"
}

# srv_status REQUEST [gemget options]: the two-digit status of a Gemini reply;
# fails when gemget does (no close_notify, connection error).
srv_status() {
	local out rc=0
	out=$(gemini "$@") || rc=$?
	[ $rc -eq 0 ] || { echo "FAIL: gemget exited $rc for $1"; return 1; }
	printf '%s' "${out:0:2}"
}

srv_home() { echo "gemini://localhost:$GEM_PORT/"; }

# srv_fingerprint CERT-FILE
srv_fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$1"; }
srv_subject() { openssl x509 -noout -subject -in "$1" | sed 's/ //g'; }

# srv_ms: a monotonic-enough clock in milliseconds.
srv_ms() { date +%s%3N; }

test_server_cert_generated_and_reused() {
	srv_start
	[ -f "$T/certs/localhost.crt" ] || fail "no certificate generated"
	[ -f "$T/certs/localhost.key" ] || fail "no key generated"
	expect_eq "key mode" "600" "$(stat -c %a "$T/certs/localhost.key")"
	local text
	text=$(openssl x509 -noout -text -in "$T/certs/localhost.crt")
	expect_contains "SAN" "$text" "DNS:localhost"
	expect_contains "EC key" "$text" "id-ecPublicKey"
	expect_contains "P-256" "$text" "prime256v1"
	expect_contains "CN" "$(srv_subject "$T/certs/localhost.crt")" "CN=localhost"
	# valid for many years (clients pin it)
	openssl x509 -noout -checkend $((15 * 365 * 86400)) -in "$T/certs/localhost.crt" >/dev/null \
		|| fail "certificate expires within 15 years"
	gemini "$(srv_home)" --cert-out "$T/served.crt" >/dev/null
	local fp
	fp=$(srv_fingerprint "$T/certs/localhost.crt")
	expect_eq "served certificate" "$fp" "$(srv_fingerprint "$T/served.crt")"
	stop_kilnet "$KPID"

	start_kilnet k2 -c "$T/k.conf"
	expect_eq "certificate reused" "$fp" "$(srv_fingerprint "$T/certs/localhost.crt")"
	gemini "$(srv_home)" --cert-out "$T/served2.crt" >/dev/null
	expect_eq "served certificate after restart" "$fp" "$(srv_fingerprint "$T/served2.crt")"
	expect_eq "key mode after restart" "600" "$(stat -c %a "$T/certs/localhost.key")"
}

test_server_bad_key_is_an_error() {
	write_conf "$T/k.conf"
	printf 'not a key\n' >"$T/certs/localhost.key"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x \
		-keyout "$T/other.key" -out "$T/certs/localhost.crt" -days 1 2>/dev/null
	local rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message names the key" "$(cat "$T/err")" "$T/certs/localhost.key"
	# a key that does not match the certificate
	cp "$T/other.key" "$T/certs/localhost.key"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=y \
		-keyout "$T/third.key" -out "$T/certs/localhost.crt" -days 1 2>/dev/null
	rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "exit status (mismatch)" 1 "$rc"
	expect_contains "mismatch message" "$(cat "$T/err")" "does not match"
}

# A certificate folder that cannot be made is an error naming it, before anything
# listens; the folder itself (one level) is made when missing.
test_server_cert_dir_cannot_be_made() {
	write_conf "$T/k.conf"
	sed -i "s|cert_dir = .*|cert_dir = \"$T/missing/certs\";|" "$T/k.conf"
	local rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message names the folder" "$(cat "$T/err")" \
	    "$T/missing/certs: cannot create the certificate folder"
	mkdir "$T/missing"
	start_kilnet k -c "$T/k.conf"
	[ -f "$T/missing/certs/localhost.crt" ] || fail "no certificate made in the new folder"
}

test_server_sni_selects_host() {
	write_conf "$T/k.conf"
	sed -i 's/hostnames = .*/hostnames = [ "localhost", "other.test" ];/' "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	[ -f "$T/certs/other.test.crt" ] || fail "no certificate for other.test"
	gemini "gemini://other.test:$GEM_PORT/" --sni other.test --cert-out "$T/o.crt" >/dev/null
	expect_contains "SNI other.test" "$(srv_subject "$T/o.crt")" "CN=other.test"
	gemini "gemini://OTHER.test:$GEM_PORT/" --sni OTHER.test --cert-out "$T/o2.crt" >/dev/null
	expect_contains "SNI is case-insensitive" "$(srv_subject "$T/o2.crt")" "CN=other.test"
	gemini "$(srv_home)" --sni localhost --cert-out "$T/l.crt" >/dev/null
	expect_contains "SNI localhost" "$(srv_subject "$T/l.crt")" "CN=localhost"
	gemini "$(srv_home)" --no-sni --cert-out "$T/n.crt" >/dev/null
	expect_contains "no SNI" "$(srv_subject "$T/n.crt")" "CN=localhost"
	gemini "gemini://unknown.test:$GEM_PORT/" --sni unknown.test --cert-out "$T/u.crt" >/dev/null || true
	expect_contains "unknown SNI" "$(srv_subject "$T/u.crt")" "CN=localhost"
	expect_eq "other.test is served" 20 "$(srv_status "gemini://other.test:$GEM_PORT/" --sni other.test)"
}

test_server_tls_versions() {
	srv_start
	expect_eq "TLS 1.3" 20 "$(srv_status "$(srv_home)" --tls13)"
	expect_eq "TLS 1.2" 20 "$(srv_status "$(srv_home)" --tls12)"
	local out
	out=$(openssl s_client -connect "127.0.0.1:$GEM_PORT" -servername localhost -tls1_1 \
		-cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1) && fail "TLS 1.1 accepted: $out"
	expect_not_contains "TLS 1.1 refused" "$out" "New, TLSv1.1"
	grep -q "unsupported protocol" "$T/k.log" || fail "refusal not logged"
	out=$(openssl s_client -connect "127.0.0.1:$GEM_PORT" -servername localhost -tls1_2 \
		</dev/null 2>&1) || true
	expect_contains "s_client TLS 1.2" "$out" "TLSv1.2"
	expect_eq "served after the refusal" 20 "$(srv_status "$(srv_home)")"
}

test_server_close_notify() {
	srv_start
	local rc=0
	gemini "$(srv_home)" >/dev/null || rc=$?
	expect_eq "gemget exit (0: close_notify seen)" 0 "$rc"
	rc=0
	gemini "gemini://localhost:$GEM_PORT/no-such-page" >/dev/null || rc=$?
	expect_eq "close_notify after an error reply" 0 "$rc"
	rc=0
	gemini "$(srv_home)" --tls12 >/dev/null || rc=$?
	expect_eq "close_notify with TLS 1.2" 0 "$rc"
}

test_server_session_resumption() {
	srv_start
	local v
	for v in --tls13 --tls12; do
		gemini "$(srv_home)" $v --sess-out "$T/s$v.pem" >/dev/null
		[ -s "$T/s$v.pem" ] || fail "no session saved ($v)"
		gemini "$(srv_home)" $v --sess-in "$T/s$v.pem" >"$T/out" 2>"$T/err"
		expect_eq "resumed ($v)" "resumed" "$(cat "$T/err")"
		expect_eq "status after resumption ($v)" "20" "$(head -c 2 "$T/out")"
	done
	# A client that uses each ticket once (RFC 8446 C.4) needs a fresh ticket
	# after every resumed handshake too.
	gemini "$(srv_home)" --tls13 --sess-out "$T/c0.pem" >/dev/null
	local i
	for i in 1 2 3; do
		gemini "$(srv_home)" --tls13 --sess-in "$T/c$((i - 1)).pem" \
			--sess-out "$T/c$i.pem" >/dev/null 2>"$T/err"
		expect_eq "resumed from the ticket of resumption $((i - 1))" "resumed" "$(cat "$T/err")"
		cmp -s "$T/c$((i - 1)).pem" "$T/c$i.pem" && fail "no new ticket after resumption $i"
	done
	return 0
}

# Sessions live in a cache the workers share: with 2 workers every resumption
# works, whichever worker made the session and whichever takes the connection
# (a cache per worker would resume about half of them), and the TLS 1.3 ticket
# is the session's identifier only (the ticket of a sealed session was about
# 200 bytes).
test_server_resumption_across_workers() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	local i n=0 v
	for v in --tls13 --tls12; do
		gemini "$(srv_home)" $v --sess-out "$T/s$v.pem" >/dev/null
		for i in $(seq 1 12); do
			gemini "$(srv_home)" $v --sess-in "$T/s$v.pem" >/dev/null 2>"$T/err"
			[ "$(cat "$T/err")" = resumed ] && n=$((n + 1))
		done
	done
	expect_eq "resumed out of 24" 24 "$n"
	[ "$(grep -c ' w1 gemini' "$T/k.log")" -gt 0 ] && [ "$(grep -c ' w2 gemini' "$T/k.log")" -gt 0 ] ||
		fail "one worker took every connection"
	# the ticket's size, from the session file: the identifier is 32 bytes
	local ticket
	ticket=$(openssl sess_id -in "$T/s--tls13.pem" -text -noout | awk '/TLS session ticket:/ {t = 1; next} t && /^ *[0-9a-f][0-9a-f][0-9a-f][0-9a-f] - / {n++} END {print n + 0}')
	[ "$ticket" -ge 1 ] && [ "$ticket" -le 3 ] || fail "ticket of $ticket lines of 16 bytes (expected 2: the 32-byte identifier)"
}

# No CertificateRequest in the handshake (about 100 bytes a visit for nothing:
# no page uses client certificates), yet a client that sends one anyway is served.
test_server_no_certificate_request() {
	srv_start
	local out
	out=$(printf 'gemini://localhost:%s/\r\n' "$GEM_PORT" | openssl s_client -msg -ign_eof \
		-connect "127.0.0.1:$GEM_PORT" -servername localhost 2>&1)
	expect_contains "handshake done" "$out" "ServerHello"
	expect_contains "page served" "$out" "20 text/gemini"
	expect_not_contains "no CertificateRequest" "$out" "CertificateRequest"
}

test_server_client_certificate_accepted() {
	srv_start
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=me \
		-keyout "$T/me.key" -out "$T/me.crt" -days 1 2>/dev/null
	expect_eq "with a client certificate" 20 \
		"$(srv_status "$(srv_home)" --client-cert "$T/me.crt" --client-key "$T/me.key")"
}

test_server_handshake_deadline() {
	srv_start 'handshake_timeout = 1.0;'
	local t0 t1
	t0=$(srv_ms)
	exec 6<>"/dev/tcp/127.0.0.1/$GEM_PORT"
	# another client is served while the silent one waits
	expect_eq "served meanwhile" 20 "$(srv_status "$(srv_home)")"
	timeout 8 cat <&6 >/dev/null || true
	t1=$(srv_ms)
	exec 6<&-
	[ $((t1 - t0)) -ge 800 ] || fail "closed too early: $((t1 - t0)) ms"
	[ $((t1 - t0)) -le 4000 ] || fail "silent client not closed on time: $((t1 - t0)) ms"
	grep -q "handshake deadline" "$T/k.log" || fail "deadline not logged"
	assert_alive
}

test_server_gopher_silent_deadline() {
	srv_start 'request_timeout = 1.0;'
	local t0 t1
	t0=$(srv_ms)
	exec 6<>"/dev/tcp/127.0.0.1/$GOPH_PORT"
	timeout 8 cat <&6 >/dev/null || true
	t1=$(srv_ms)
	exec 6<&-
	[ $((t1 - t0)) -le 4000 ] || fail "silent Gopher client not closed on time"
	assert_alive
}

test_server_slow_client_cut() {
	srv_start 'request_timeout = 2.0;'
	local t0 t1 rc=0 out
	t0=$(srv_ms)
	out=$(gemini "$(srv_home)" --slow 1000 --timeout 20 2>"$T/err") || rc=$?
	t1=$(srv_ms)
	[ $rc -ne 0 ] || fail "slow client was answered: $out"
	[ $rc -ne 4 ] || fail "slow client not cut (gemget timed out)"
	expect_not_contains "no reply" "$out" "20 "
	[ $((t1 - t0)) -le 6000 ] || fail "cut too late: $((t1 - t0)) ms"
	grep -q "request deadline" "$T/k.log" || fail "deadline not logged"
	# and over plain Gopher: a selector long enough that its last byte comes
	# well after the deadline ("/" ended at 2.0 s, a race with the deadline)
	rc=0
	out=$(gemget_plain "/members" --slow 1000) || rc=$?
	[ -z "$out" ] || fail "slow Gopher client was answered"
	expect_eq "served afterwards" 20 "$(srv_status "$(srv_home)")"
}

# gemget_plain SELECTOR [options]: plain Gopher through the C client.
gemget_plain() {
	local req=$1; shift
	"$TESTBIN/gemget" --plain "$@" 127.0.0.1 "$GOPH_PORT" "$req"
}

test_server_connection_cap() {
	srv_start 'max_connections = 3;' 'handshake_timeout = 2.0;'
	local t0 t1
	exec 6<>"/dev/tcp/127.0.0.1/$GEM_PORT"
	exec 7<>"/dev/tcp/127.0.0.1/$GEM_PORT"
	exec 8<>"/dev/tcp/127.0.0.1/$GEM_PORT"
	sleep 0.2
	t0=$(srv_ms)
	expect_eq "4th request answered once the idle ones are closed" 20 \
		"$(srv_status "$(srv_home)" --timeout 10)"
	t1=$(srv_ms)
	exec 6<&- 7<&- 8<&-
	[ $((t1 - t0)) -ge 1000 ] || fail "4th connection served while 3 were open"
	expect_eq "served afterwards" 20 "$(srv_status "$(srv_home)")"
	assert_alive
}

test_server_ipv6() {
	grep -q '^0*1 ' /proc/net/if_inet6 2>/dev/null || { echo "no IPv6 loopback: skipped"; return 0; }
	write_conf "$T/k.conf"
	local p
	p=$(free_port)
	start_kilnet k -c "$T/k.conf" --gemini "[::1]:$p"
	local out rc=0
	out=$("$TESTBIN/gemget" ::1 "$p" "gemini://localhost:$p/") || rc=$?
	expect_eq "gemget over IPv6" 0 "$rc"
	expect_eq "status over IPv6" 20 "${out:0:2}"
	grep -q ' ::1 ' "$T/k.log" || fail "IPv6 client not logged"
}

test_server_port_in_use() {
	srv_start
	local rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message" "$(cat "$T/err")" \
		"kilnet: cannot listen on 127.0.0.1:$GEM_PORT (server.gemini.listen or --gemini): Address already in use"
	rc=0
	local p
	p=$(free_port)
	"$KILNET" -c "$T/k.conf" --gemini "127.0.0.1:$p" 2>"$T/err" || rc=$?
	expect_eq "exit status (gopher port)" 1 "$rc"
	expect_contains "gopher message" "$(cat "$T/err")" \
		"cannot listen on 127.0.0.1:$GOPH_PORT (server.gopher.listen or --gopher)"
	expect_eq "first server still serves" 20 "$(srv_status "$(srv_home)")"
}

test_server_gopher_tls_autodetect() {
	srv_start
	local out rc=0
	out=$("$TESTBIN/gemget" 127.0.0.1 "$GOPH_PORT" "/") || rc=$?
	expect_eq "TLS on the Gopher port, close_notify" 0 "$rc"
	[ -n "$out" ] || fail "no Gopher reply over TLS"
	[[ ${out:0:2} != [0-9][0-9] ]] || fail "Gemini reply on the Gopher port: ${out:0:20}"
	gopher_raw $'/\r\n' >"$T/plain"
	[ -s "$T/plain" ] || fail "no plain Gopher reply"
	expect_eq "same reply, TLS or plain" "$(cat "$T/plain")" "$out"
	grep -q ' gophers 127.0.0.1 ' "$T/k.log" || fail "gophers not logged"
	grep -q ' gopher 127.0.0.1 ' "$T/k.log" || fail "gopher not logged"
}

test_server_garbage_and_oversized() {
	srv_start
	# plain text to the TLS port: one connection lost, nothing else
	local out
	out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 "$TESTBIN/gemget" --plain --no-crlf \
		127.0.0.1 "$GEM_PORT" 'GET / HTTP/1.0\r\n\r\n' 2>/dev/null) || true
	expect_eq "served after garbage" 20 "$(srv_status "$(srv_home)")"
	# far more than a request, over several TLS records: the reply still arrives
	# whole, with close_notify (unread bytes must not reset the connection)
	local big
	big=$(head -c 40000 /dev/zero | tr '\0' 'a')
	expect_eq "oversized request" 59 "$(srv_status "$big")"
	big=$(head -c 40000 /dev/zero | tr '\0' 'b')
	gemget_plain "$big" >"$T/big" || fail "plain oversized request: no clean close"
	[ -s "$T/big" ] || fail "no reply to an oversized selector"
	assert_alive
}

test_server_sigterm_exits_0() {
	srv_start
	expect_eq "served" 20 "$(srv_status "$(srv_home)")"
	# a connection in flight does not hold the stop for long
	exec 6<>"/dev/tcp/127.0.0.1/$GEM_PORT"
	local t0 t1
	t0=$(srv_ms)
	stop_kilnet "$KPID"
	t1=$(srv_ms)
	exec 6<&-
	[ $((t1 - t0)) -le 4000 ] || fail "stop took $((t1 - t0)) ms"
	(exec 3<>"/dev/tcp/127.0.0.1/$GEM_PORT") 2>/dev/null && fail "still listening after SIGTERM"
	# SIGINT too
	start_kilnet k2 -c "$T/k.conf"
	kill -INT "$KPID"
	local st=0
	wait "$KPID" || st=$?
	touch "$T/.stopped-$KPID"
	expect_eq "exit status on SIGINT" 0 "$st"
}

test_server_access_log() {
	srv_start "access_log = \"$T/access.log\";"
	gemini "$(srv_home)" >/dev/null
	gemini "gemini://localhost:$GEM_PORT/a\"b\\x01c" >/dev/null || true
	gopher_raw $'/\r\n' >/dev/null
	sleep 0.2
	local re_time='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
	cat "$T/access.log"
	expect_eq "lines" 3 "$(wc -l <"$T/access.log")"
	grep -Eq "^$re_time w1 gemini 127\.0\.0\.1 localhost \"gemini://localhost:$GEM_PORT/\" 20 [0-9]+ [0-9]+ms\$" \
		"$T/access.log" || fail "Gemini line format"
	grep -Fq "\"gemini://localhost:$GEM_PORT/a\\\"b\\x01c\"" "$T/access.log" \
		|| fail "request not escaped"
	grep -Eq "^$re_time w1 gopher 127\.0\.0\.1 - \"/\" [0-9]+ [0-9]+ [0-9]+ms\$" \
		"$T/access.log" || fail "Gopher line format"
	# not in the error log
	grep -q '"gemini://' "$T/k.log" && fail "access line in stderr"
	return 0
}

test_server_access_log_anonymised_and_off() {
	srv_start 'anonymise_log = true;'
	gemini "$(srv_home)" >/dev/null
	sleep 0.2
	grep -Eq " w1 gemini 127\.0\.0\.0 localhost " "$T/k.log" || fail "address not anonymised"
	stop_kilnet "$KPID"
	write_conf "$T/k2.conf" 'access_log = "off";'
	start_kilnet k2 -c "$T/k2.conf"
	gemini "$(srv_home)" >/dev/null
	grep -q '"gemini://' "$T/k2.log" && fail "access log not off"
	return 0
}

test_server_workers() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	local i
	for i in $(seq 1 12); do
		expect_eq "request $i" 20 "$(srv_status "$(srv_home)")"
	done
	local kids
	kids=$(workers_of "$KPID" | wc -l)
	expect_eq "worker processes" 2 "$kids"
	grep -q 'w2' "$T/k.log" || fail "no log line from worker 2"
	local pids
	pids=$(workers_of "$KPID" | tr '\n' ' ')
	stop_kilnet "$KPID"
	for i in $pids; do
		kill -0 "$i" 2>/dev/null && fail "worker $i still running"
	done
	return 0
}

# A response far larger than the socket buffers: written in parts (partial TLS
# writes), arrives whole; a client that stops reading is cut by write_timeout.
test_server_large_response_and_write_deadline() {
	mkdir -p "$T/cap"
	head -c 16000000 /dev/urandom >"$T/cap/big.bin"
	CAPSULE=$T/cap srv_start 'write_timeout = 2.0;'
	local want got
	want=$(sha256sum <"$T/cap/big.bin" | cut -d' ' -f1)
	gemini "gemini://localhost:$GEM_PORT/big.bin" >"$T/got"
	expect_eq "status" "20 application/octet-stream" "$(head -n 1 "$T/got" | tr -d '\r')"
	got=$(tail -c +$(( $(head -n 1 "$T/got" | wc -c) + 1 )) "$T/got" | sha256sum | cut -d' ' -f1)
	expect_eq "body over TLS" "$want" "$got"
	# a Gopher client that sends its selector and never reads
	local t0 t1
	t0=$(srv_ms)
	exec 6<>"/dev/tcp/127.0.0.1/$GOPH_PORT"
	printf '/big.bin\r\n' >&6
	local i
	for i in $(seq 1 80); do
		grep -q "write deadline" "$T/k.log" && break
		sleep 0.1
	done
	t1=$(srv_ms)
	exec 6<&-
	grep -q "write deadline" "$T/k.log" || fail "write deadline not logged"
	[ $((t1 - t0)) -ge 1500 ] || fail "cut before the write deadline"
	expect_eq "served afterwards" 20 "$(srv_status "$(srv_home)")"
}

# --- reload (SIGHUP), privileges, SIGTERM with the master/worker structure (issue 8)

# srv_dataset: a copy of the default dataset in $T that a test may edit; sets DATASET.
srv_dataset() {
	cp "$ROOT/conf/network.conf" "$T/network.conf"
	DATASET=$T/network.conf
}

# srv_wait_log FILE TEXT [SECONDS]: until TEXT shows in FILE.
srv_wait_log() {
	local i
	for i in $(seq 1 $(( ${3:-10} * 20 ))); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$2 not logged in $(basename "$1")"
}

# srv_wait_log_count FILE TEXT N: until TEXT is on N lines of FILE (10 s at most).
srv_wait_log_count() {
	local i
	for i in $(seq 1 200); do
		[ "$(grep -cF -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.05
	done
	fail "$2 not logged $3 times in $(basename "$1")"
}

# srv_workers PID: the master's worker processes.
srv_workers() { workers_of "$1" | tr '\n' ' '; }

test_server_reload_changes_content() {
	srv_dataset
	srv_start
	local old_workers
	old_workers=$(srv_workers "$KPID")
	expect_contains "before" "$(gemini "$(srv_home)" --sess-out "$T/sess.pem")" \
		"Keep it Local Network"
	sed -i 's/name = "Keep it Local Network";/name = "Reloaded Local Network";/' "$DATASET"
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reloaded: "
	# a ticket issued before the reload still resumes after it
	gemini "$(srv_home)" --sess-in "$T/sess.pem" >/dev/null 2>"$T/resumed"
	expect_eq "resumed across the reload" "resumed" "$(cat "$T/resumed")"
	expect_contains "Gemini after" "$(gemini "$(srv_home)")" "Reloaded Local Network"
	expect_contains "Gopher after" "$(gopher_raw $'\r\n')" "Reloaded Local Network"
	local i
	for i in 1 2 3; do
		expect_eq "new title (request $i)" "# Reloaded Local Network" \
			"$(gemini "$(srv_home)" | sed -n 2p)"
	done
	# the old worker is gone, a new one serves
	for i in $(seq 1 40); do
		[ "$(srv_workers "$KPID")" != "$old_workers" ] && break
		sleep 0.05
	done
	[ "$(srv_workers "$KPID")" != "$old_workers" ] || fail "the old worker still runs"
	expect_eq "one worker" 1 "$(workers_of "$KPID" | wc -l)"
	# a capsule file added is served after a reload too
	mkdir -p "$T/cap"
	echo "fresh" >"$T/cap/new.txt"
	sed -i "s|capsule = .*|capsule = \"$T/cap\";|" "$T/k.conf"
	kill -HUP "$KPID"
	for i in $(seq 1 100); do
		[ "$(grep -c 'reloaded: ' "$T/k.log")" -ge 2 ] && break
		sleep 0.05
	done
	expect_contains "capsule file after reload" \
		"$(gemini "gemini://localhost:$GEM_PORT/new.txt")" "fresh"
	# reloads in quick succession: workers retire while others still start.
	# A SIGHUP that comes while one is pending is merged with it (signals do
	# not queue), so a slow machine may count fewer than 12: each HUP waits
	# until the previous one is taken, and every reload must complete.
	local n
	for i in $(seq 1 12); do
		n=$(grep -c 'signal 1: reloading' "$T/k.log")
		kill -HUP "$KPID"
		for _ in $(seq 1 100); do
			[ "$(grep -c 'signal 1: reloading' "$T/k.log")" -gt "$n" ] && break
			sleep 0.01
		done
	done
	for i in $(seq 1 100); do
		[ "$(grep -c 'reloaded: ' "$T/k.log")" -ge 14 ] && break
		sleep 0.05
	done
	expect_eq "reloads" 14 "$(grep -c 'reloaded: ' "$T/k.log")"
	expect_eq "served after quick reloads" 20 "$(srv_status "$(srv_home)")"
	for i in $(seq 1 60); do
		[ "$(workers_of "$KPID" | wc -l)" -eq 1 ] && break
		sleep 0.1
	done
	expect_eq "one worker after quick reloads" 1 "$(workers_of "$KPID" | wc -l)"
	grep -E 'worker [0-9]+ \(pid [0-9]+\) (killed|exited)' "$T/k.log" \
		&& fail "a worker ended badly"
	return 0
}

test_server_reload_broken_config_keeps_site() {
	srv_dataset
	srv_start
	# a semantic error (the dataset) and, after it, a syntax error
	sed -i 's/name = "Keep it Local Network";/name = "";/' "$DATASET"
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reload failed"
	grep -E "error: $T/network\.conf:[0-9]+: " "$T/k.log" \
		|| fail "dataset error not logged with file:line"
	expect_contains "old site served" "$(gemini "$(srv_home)")" "Keep it Local Network"
	expect_contains "old site over Gopher" "$(gopher_raw $'\r\n')" "Keep it Local Network"
	cp "$ROOT/conf/network.conf" "$DATASET"
	echo 'server = { workers = 1; ' >>"$T/k.conf"
	kill -HUP "$KPID"
	for i in $(seq 1 100); do
		[ "$(grep -c 'reload failed' "$T/k.log")" -ge 2 ] && break
		sleep 0.05
	done
	grep -E "error: $T/k\.conf:[0-9]+" "$T/k.log" || fail "syntax error not logged with file:line"
	expect_eq "still served" 20 "$(srv_status "$(srv_home)")"
	assert_alive
	# fixed: the next reload works
	write_conf "$T/k.conf"
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reloaded: "
	expect_eq "served after the fix" 20 "$(srv_status "$(srv_home)")"
}

# srv_reload_under_load MODE SECONDS: loadgen for SECONDS at c=8 against 2
# workers with 9 SIGHUPs spread over the run; the load client must count no error.
srv_reload_under_load() {
	local mode=$1 secs=$2 port out
	write_conf "$T/k.conf"
	# from the command line: a reload keeps it
	start_kilnet k -c "$T/k.conf" --workers 2
	[ "$mode" = gemini ] && port=$GEM_PORT || port=$GOPH_PORT
	"$ROOT/bench/bin/loadgen" --$mode --port "$port" --sni localhost -c 8 --seconds "$secs" -n 3000000 \
		>"$T/load.out" 2>&1 &
	local lpid=$! i
	for i in $(seq 1 9); do
		sleep "$(awk -v s="$secs" 'BEGIN { print s / 10 }')"
		kill -HUP "$KPID"
	done
	wait "$lpid" || { cat "$T/load.out"; fail "loadgen failed"; }
	out=$(cat "$T/load.out")
	echo "$out"
	for i in $(seq 1 100); do
		[ "$(grep -c 'reloaded: ' "$T/k.log")" -ge 9 ] && break
		sleep 0.05
	done
	expect_eq "reloads" 9 "$(grep -c 'reloaded: ' "$T/k.log")"
	expect_contains "no errors" "$out" " errors=0 "
	local n
	n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$out")
	[ "${n:-0}" -ge 1000 ] || fail "only ${n:-0} requests in $secs s"
	expect_eq "two workers at the end" 2 "$(workers_of "$KPID" | wc -l)"
}

# The issue's check: a 20-second Gemini run. Gopher is cheaper per request, so a
# shorter run still sees tens of thousands of requests across the reloads.
test_server_reload_under_load_gemini() { srv_reload_under_load gemini 20; }
test_server_reload_under_load_gopher() { srv_reload_under_load gopher 10; }

# srv_reload_fewer_workers MODE: under load (c=64, so that connections wait in
# the accept queues), 30 reloads 0.25 s apart take the workers from 2 to 1 and
# back; every request must be answered. Before the surplus sockets were kept,
# the connections queued on the socket of the slot that went were reset (about
# one error a run).
# serial: test_server_reload_fewer_workers_gemini (loadgen at c=64 on both cores)
# serial: test_server_reload_fewer_workers_gopher
srv_reload_fewer_workers() {
	local mode=$1 port out i
	write_conf "$T/k.conf"
	sed -i 's/workers = 1;/workers = 2;/' "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	[ "$mode" = gemini ] && port=$GEM_PORT || port=$GOPH_PORT
	"$ROOT/bench/bin/loadgen" --$mode --port "$port" --sni localhost -c 64 --seconds 8 -n 3000000 \
		>"$T/load.out" 2>&1 &
	local lpid=$!
	for i in $(seq 1 30); do
		sleep 0.25
		if [ $((i % 2)) = 1 ]; then
			sed -i 's/workers = 2;/workers = 1;/' "$T/k.conf"
		else
			sed -i 's/workers = 1;/workers = 2;/' "$T/k.conf"
		fi
		kill -HUP "$KPID"
	done
	wait "$lpid" || { cat "$T/load.out"; fail "loadgen failed"; }
	out=$(cat "$T/load.out")
	echo "$out"
	srv_wait_log_count "$T/k.log" "reloaded: " 30
	expect_contains "no errors" "$out" " errors=0 "
	expect_eq "reloads to 1 worker" 15 "$(grep -c 'reloaded: .*, 1 worker$' "$T/k.log")"
	expect_eq "two workers at the end" 2 "$(workers_of "$KPID" | wc -l)"
}
test_server_reload_fewer_workers_gemini() { srv_reload_fewer_workers gemini; }
test_server_reload_fewer_workers_gopher() { srv_reload_fewer_workers gopher; }

test_server_privileges() {
	if [ "$(id -u)" != 0 ]; then echo "not root: skipped"; return 0; fi
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	expect_eq "served" 20 "$(srv_status "$(srv_home)")"
	local nobody w
	nobody=$(id -u nobody)
	expect_eq "master uid" 0 "$(awk '/^Uid:/ {print $2}' "/proc/$KPID/status")"
	for w in $(srv_workers "$KPID"); do
		expect_eq "worker $w uid" "$nobody $nobody $nobody $nobody" \
			"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$w/status")"
		expect_eq "worker $w groups" "$(id -g nobody)" \
			"$(awk '/^Groups:/ {print $2}' "/proc/$w/status")"
	done
	# the master, still root, reads the keys again on a reload
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reloaded: "
	expect_eq "served after reload" 20 "$(srv_status "$(srv_home)")"
	for w in $(srv_workers "$KPID"); do
		expect_eq "new worker $w uid" "$nobody" "$(awk '/^Uid:/ {print $2}' "/proc/$w/status")"
	done
	stop_kilnet "$KPID"
	# with a chroot: the workers' root is that folder, and pages are served
	# from memory all the same
	mkdir -p "$T/jail"
	write_conf "$T/k2.conf" "chroot = \"$T/jail\";"
	start_kilnet k2 -c "$T/k2.conf"
	expect_eq "served from the chroot" 20 "$(srv_status "$(srv_home)")"
	for w in $(srv_workers "$KPID"); do
		expect_eq "worker $w root" "$T/jail" "$(readlink "/proc/$w/root")"
	done
	expect_eq "master root" "/" "$(readlink "/proc/$KPID/root")"
	# a user that does not exist is a start-up error naming the setting
	local rc=0
	GEM_PORT=$(free_port) GOPH_PORT=$(free_port) write_conf "$T/bad.conf" 'user = "no-such-user-kilnet";'
	"$KILNET" -c "$T/bad.conf" 2>"$T/err" || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message" "$(cat "$T/err")" "server.user"
	expect_contains "names the user" "$(cat "$T/err")" "no-such-user-kilnet"
}

test_server_sigterm_finishes_slow_response() {
	mkdir -p "$T/cap"
	head -c 8000000 /dev/urandom >"$T/cap/big.bin"
	CAPSULE=$T/cap write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	# a reader that takes about a second for the whole body (more than the
	# socket buffers hold): the response is in flight when SIGTERM comes, and
	# finishes, with close_notify
	"$TESTBIN/gemget" --read-slow 2 --rcvbuf 65536 127.0.0.1 "$GEM_PORT" \
		"gemini://localhost:$GEM_PORT/big.bin" >"$T/got" &
	local cpid=$! rc=0
	sleep 0.3
	stop_kilnet "$KPID"
	wait "$cpid" || rc=$?
	expect_eq "client ended with close_notify" 0 "$rc"
	expect_eq "whole body" $((8000000 + $(head -n 1 "$T/got" | wc -c))) "$(stat -c %s "$T/got")"
}
