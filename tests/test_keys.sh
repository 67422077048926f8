# tests/test_keys.sh: the key process (issue 19 item 1, src/keyproc.c). The private
# keys are in no worker's memory and in the key process's; it runs as server.user
# with no capability, no_new_privs and its own seccomp filter; killed under load it
# is restarted and only the handshakes in flight fail; a reload with a new
# certificate and key (ECDSA, then RSA) serves and signs with them while full and
# resumed handshakes go on; a key that does not match is refused at start and on a
# reload (the old one serves on); -t reads no key and starts no key process.

# keys_status PID FIELD: a field of /proc/PID/status.
keys_status() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# keys_scalar KEY: the private scalar of an EC key, 64 hex digits (big-endian).
keys_scalar() {
	openssl pkey -in "$1" -noout -text 2>/dev/null |
	    awk '/^priv:/ {on = 1; next} /^pub:/ {on = 0} on' | tr -dc '0-9a-f' |
	    awk '{ s = $0; while (length(s) < 64) s = "0" s; print substr(s, length(s) - 63) }'
}

# keys_find HEX,HEX... PID...: how many times each process's readable memory
# (/proc/PID/maps, /proc/PID/mem) holds any of the byte strings, as given
# (big-endian, as in the key file's DER) or reversed (little-endian, as a BIGNUM
# holds them on this machine); one line "PID COUNT" a process. Only the pages
# present are read (/proc/PID/pagemap), so that the sanitizer build's shadow
# memory (terabytes reserved, nothing in it) costs nothing.
keys_find() {
	python3 - "$@" <<'PY'
import struct, sys
pats = [bytes.fromhex(h) for h in sys.argv[1].split(',') if h]
pats += [p[::-1] for p in pats]
PAGE = 4096
for pid in sys.argv[2:]:
    hits = 0
    with open('/proc/%s/maps' % pid) as f:
        maps = f.read().splitlines()
    mem = open('/proc/%s/mem' % pid, 'rb', 0)
    pm = open('/proc/%s/pagemap' % pid, 'rb', 0)
    for line in maps:
        f = line.split()
        if f[1][0] != 'r' or line.endswith(('[vvar]', '[vsyscall]', '[vvar_vclock]')):
            continue
        lo, hi = (int(x, 16) for x in f[0].split('-'))
        if hi - lo > (1 << 36):
            continue
        # runs of present pages, read with a page's overlap on each side
        start = None
        npages = (hi - lo) // PAGE
        for base in range(0, npages, 65536):
            n = min(65536, npages - base)
            pm.seek((lo // PAGE + base) * 8)
            ents = pm.read(n * 8)
            for i in range(len(ents) // 8):
                present = struct.unpack_from('<Q', ents, i * 8)[0] >> 63
                page = base + i
                if present and start is None:
                    start = page
                if (not present or page == npages - 1) and start is not None:
                    end = page + 1 if present else page
                    a, b = lo + start * PAGE, lo + end * PAGE
                    try:
                        mem.seek(a)
                        data = mem.read(b - a)
                    except OSError:
                        data = b''
                    for p in pats:
                        hits += data.count(p)
                    start = None
    print(pid, hits)
PY
}

# keys_editor: an editor's client certificate $T/ed.crt, ED_FP its SHA-256.
keys_editor() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/ed.key" -out "$T/ed.crt" -days 30 -subj /CN=ed 2>/dev/null
	ED_FP=$(openssl x509 -in "$T/ed.crt" -outform DER | sha256sum | cut -d' ' -f1)
}

# keys_new TYPE CN OUT: a self-signed certificate OUT.crt and key OUT.key (TYPE:
# ec, rsa or ed25519).
keys_new() {
	local -a alg
	case $1 in
	ec) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	rsa) alg=(-newkey rsa:2048) ;;
	*) alg=(-newkey "$1") ;;
	esac
	openssl req -x509 "${alg[@]}" -nodes -subj "/CN=$2" -addext "subjectAltName=DNS:$2" \
		-keyout "$3.key" -out "$3.crt" -days 30 2>/dev/null
}

keys_fp() { openssl x509 -noout -fingerprint -sha256 -in "$1"; }
keys_home() { echo "gemini://localhost:$GEM_PORT/"; }
# keys_status_of REQUEST [gemget options]: the status of a Gemini reply (gemget's
# failure is the test's).
keys_get() {
	local out
	out=$(gemini "$@") || { echo "FAIL: gemget failed for $1" >&2; return 1; }
	printf '%s' "${out:0:2}"
}

# Started as root with two workers and editors (editing_hostname: two hosts, two
# keys): neither key's scalar is in a worker's memory nor in the master's, both are
# in the key process's; the key process runs as nobody, chrooted, with no
# capability, no_new_privs and a filter; each worker holds one socket to it.
test_keys_memory_and_confinement() {
	if [ "$(id -u)" != 0 ]; then echo "not root: skipped"; return 0; fi
	keys_editor
	write_conf "$T/k.conf" "editors = [ \"$ED_FP\" ];" 'editing_hostname = "edit.localhost";' \
		"state_dir = \"$T/state\";"
	start_kilnet k -c "$T/k.conf" --workers 2
	local i kp w workers hex n
	# full handshakes on both names, so that both workers have signed
	for i in $(seq 1 8); do
		expect_eq "home $i" 20 "$(keys_get "$(keys_home)")"
		gemini "gemini://edit.localhost:$GEM_PORT/" --sni edit.localhost \
			--client-cert "$T/ed.crt" --client-key "$T/ed.key" >/dev/null
	done
	kp=$(keyproc_of "$KPID")
	[ -n "$kp" ] || fail "no key process (process title kilnet-keys)"
	grep -q "key process started (pid $kp): 2 keys" "$T/k.log" || fail "no log line naming the key process"
	workers=$(workers_of "$KPID" | tr '\n' ' ')
	expect_eq "workers" 2 "$(wc -w <<<"$workers")"

	expect_eq "key process user" "$(id -u nobody) $(id -u nobody) $(id -u nobody) $(id -u nobody)" \
		"$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$kp/status")"
	expect_eq "key process CapEff" 0000000000000000 "$(keys_status "$kp" CapEff)"
	expect_eq "key process NoNewPrivs" 1 "$(keys_status "$kp" NoNewPrivs)"
	expect_eq "key process Seccomp (2: filter)" 2 "$(keys_status "$kp" Seccomp)"
	expect_eq "key process root" /var/empty "$(readlink "/proc/$kp/root")"
	# its descriptors: the master's socket and one a worker, and stdio only
	expect_eq "key process's sockets" 3 "$(ls -l "/proc/$kp/fd" | grep -c 'socket:')"
	expect_eq "key process's other descriptors (stdio)" "" \
		"$(ls -l "/proc/$kp/fd" | awk 'NR > 1 && $NF !~ /^socket:/ && $9 > 2 {print $9}')"
	# each worker: one socket to the key process (a SOCK_SEQPACKET pair), its own
	for w in $workers; do
		expect_eq "worker $w: sockets to the key process" 1 \
			"$(ss -Hxp | grep -F "pid=$w," | grep -c '^u_seq')"
	done

	hex=$(keys_scalar "$T/certs/localhost.key"),$(keys_scalar "$T/certs/edit.localhost.key")
	[[ $hex =~ ^[0-9a-f]{64},[0-9a-f]{64}$ ]] || fail "cannot read the keys' scalars: $hex"
	local ed
	ed=$(pgrep -P "$KPID" -x kilnet-edit)
	[ -n "$ed" ] || fail "no editing process (process title kilnet-edit)"
	keys_find "$hex" $workers "$KPID" "$kp" "$ed" >"$T/found"
	cat "$T/found"
	expect_eq "the editing process holds a private key" 0 "$(awk -v p="$ed" '$1 == p {print $2}' "$T/found")"
	for w in $workers; do
		expect_eq "worker $w holds a private key" 0 "$(awk -v p="$w" '$1 == p {print $2}' "$T/found")"
	done
	expect_eq "the master holds a private key" 0 "$(awk -v p="$KPID" '$1 == p {print $2}' "$T/found")"
	# the test can fail: the key process does hold each key
	for i in 1 2; do
		n=$(keys_find "$(cut -d, -f$i <<<"$hex")" "$kp" | awk '{print $2}')
		[ "$n" -ge 1 ] || fail "key $i not found in the key process's memory"
	done
	return 0
}

# kill -9 of the key process under load (c=8, 2 workers): restarted at once, and
# serving goes on. Bound on the failures: a worker asks for one signature at a time
# (a blocking round trip) and the master writes one abort into its socket, so at
# most one handshake a worker fails: 2.
test_keys_kill_under_load() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	local kp new out errors requests failed
	kp=$(keyproc_of "$KPID")
	"$ROOT/bench/bin/loadgen" --gemini --port "$GEM_PORT" --sni localhost \
		--request "$(keys_home)" --expect "20 " -c 8 --seconds 5 -n 3000000 >"$T/load.out" 2>&1 &
	local lpid=$!
	sleep 2
	kill -KILL "$kp"
	srv_wait_log "$T/k.log" "key process restarted"
	new=$(keyproc_of "$KPID")
	[ -n "$new" ] && [ "$new" != "$kp" ] || fail "no new key process"
	wait "$lpid" || { cat "$T/load.out"; fail "loadgen failed"; }
	out=$(tail -n 1 "$T/load.out")
	echo "$out"
	grep -E "key process|no signature" "$T/k.log"
	errors=$(sed -n 's/.* errors=\([0-9]*\) .*/\1/p' <<<"$out")
	requests=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$out")
	failed=$(grep -c "no signature from the key process" "$T/k.log" || true)
	echo "requests $requests, failed $errors (handshakes without a signature: $failed)"
	[ "${errors:-99}" -le 2 ] || fail "$errors requests failed: more than the 2 in flight"
	[ "$failed" -le 2 ] || fail "$failed handshakes had no signature: more than 2"
	[ "${requests:-0}" -ge 200 ] || fail "only ${requests:-0} requests served"
	# the new one serves, and is confined as the first was
	expect_eq "served after the restart" 20 "$(keys_get "$(keys_home)")"
	expect_eq "new key process Seccomp" 2 "$(keys_status "$new" Seccomp)"
	expect_eq "workers" 2 "$(workers_of "$KPID" | wc -l)"
}

# A reload with a new certificate and key: the new certificate is served and its
# handshakes sign (the client checks the signature with the served certificate);
# a session from before the reload, and one from after, resume. Then the same to
# an RSA pair: TLS 1.3 (RSA-PSS) and TLS 1.2 (PKCS#1 v1.5 and PSS).
test_keys_reload_rotated() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	expect_eq "before" 20 "$(keys_get "$(keys_home)" --sess-out "$T/old.sess")"
	keys_new ec localhost "$T/new"
	mv "$T/new.key" "$T/certs/localhost.key"
	mv "$T/new.crt" "$T/certs/localhost.crt"
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reloaded: "
	expect_eq "full handshake after the reload" 20 \
		"$(keys_get "$(keys_home)" --cert-out "$T/served.crt" --sess-out "$T/new.sess")"
	expect_eq "the new certificate is served" "$(keys_fp "$T/certs/localhost.crt")" \
		"$(keys_fp "$T/served.crt")"
	gemini "$(keys_home)" --sess-in "$T/old.sess" >/dev/null 2>"$T/r1"
	expect_eq "a session from before the reload" resumed "$(cat "$T/r1")"
	gemini "$(keys_home)" --sess-in "$T/new.sess" >/dev/null 2>"$T/r2"
	expect_eq "a session from after the reload" resumed "$(cat "$T/r2")"
	expect_eq "TLS 1.2" 20 "$(keys_get "$(keys_home)" --tls12)"

	keys_new rsa localhost "$T/rsa"
	mv "$T/rsa.key" "$T/certs/localhost.key"
	mv "$T/rsa.crt" "$T/certs/localhost.crt"
	kill -HUP "$KPID"
	srv_wait_log_count "$T/k.log" "reloaded: " 2
	expect_eq "RSA, TLS 1.3" 20 "$(keys_get "$(keys_home)" --tls13 --cert-out "$T/rsa-served.crt")"
	expect_eq "the RSA certificate is served" "$(keys_fp "$T/certs/localhost.crt")" \
		"$(keys_fp "$T/rsa-served.crt")"
	expect_eq "RSA, TLS 1.2" 20 "$(keys_get "$(keys_home)" --tls12)"
	local out
	out=$(printf 'gemini://localhost:%s/\r\n' "$GEM_PORT" | timeout 10 openssl s_client \
		-connect "127.0.0.1:$GEM_PORT" -servername localhost -tls1_2 -sigalgs RSA+SHA256 \
		-ign_eof 2>&1) || true
	expect_contains "TLS 1.2 with PKCS#1 v1.5" "$out" "Peer signature type: RSA"
	expect_contains "PKCS#1 v1.5: served" "$out" "20 text/gemini"
	out=$(printf 'gemini://localhost:%s/\r\n' "$GEM_PORT" | timeout 10 openssl s_client \
		-connect "127.0.0.1:$GEM_PORT" -servername localhost -tls1_3 -ign_eof 2>&1) || true
	expect_contains "TLS 1.3 with RSA-PSS" "$out" "Peer signature type: RSA-PSS"
	grep -q "reload failed" "$T/k.log" && fail "a reload failed"
	grep -q "no signature" "$T/k.log" && fail "a handshake had no signature"
	return 0
}

# A key that does not match its certificate, or cannot be read, fails the start with
# a message naming the file; on a reload the old site serves on, signing with the
# old key; an Ed25519 certificate is refused naming its key file; -t reads no key.
test_keys_refused() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	local fp rc out
	fp=$(keys_fp "$T/certs/localhost.crt")
	cp "$T/certs/localhost.key" "$T/good.key"
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/certs/localhost.key" 2>/dev/null
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reload failed"
	grep -F "error: $T/certs/localhost.key: the key does not match the certificate" "$T/k.log" ||
		fail "mismatch not logged with the file"
	expect_eq "old site, full handshake" 20 "$(keys_get "$(keys_home)" --cert-out "$T/served.crt")"
	expect_eq "old certificate" "$fp" "$(keys_fp "$T/served.crt")"
	# -t and --render read no key
	"$KILNET" -t -c "$T/k.conf" >"$T/t.out" 2>&1 || fail "-t read the key: $(cat "$T/t.out")"
	"$KILNET" --render "$T/site" -c "$T/k.conf" >/dev/null 2>&1 || fail "--render read the key"
	stop_kilnet "$KPID"

	rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "mismatch at start" 1 "$rc"
	expect_contains "mismatch message" "$(cat "$T/err")" \
		"$T/certs/localhost.key: the key does not match the certificate"
	chmod 000 "$T/certs/localhost.key"
	if [ "$(id -u)" != 0 ]; then
		rc=0
		"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
		expect_eq "unreadable key" 1 "$rc"
		expect_contains "unreadable key message" "$(cat "$T/err")" "$T/certs/localhost.key: cannot read"
	fi
	rm -f "$T/certs/localhost.key"
	keys_new ed25519 localhost "$T/ed"
	mv "$T/ed.key" "$T/certs/localhost.key"
	mv "$T/ed.crt" "$T/certs/localhost.crt"
	rc=0
	"$KILNET" -c "$T/k.conf" 2>"$T/err" || rc=$?
	expect_eq "Ed25519 at start" 1 "$rc"
	out=$(cat "$T/err")
	expect_contains "Ed25519 message names the key" "$out" "$T/certs/localhost.key: an ED25519 key cannot be used"
	return 0
}

# Resumed handshakes sign nothing: with the key process stopped (SIGSTOP), a
# session resumes (a signature asked for would fail it: nothing answers), while
# a full handshake fails once its wait for a signature (500 ms, src/keysign.c)
# runs out; continued, the key process signs again.
test_keys_resumed_needs_no_signature() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	local kp t0 ms
	expect_eq "full" 20 "$(keys_get "$(keys_home)" --sess-out "$T/s.sess")"
	kp=$(keyproc_of "$KPID")
	kill -STOP "$kp"
	expect_eq "resumed, key process stopped" 20 "$(keys_get "$(keys_home)" --sess-in "$T/s.sess" 2>"$T/r")"
	expect_eq "resumed" resumed "$(cat "$T/r")"
	sleep 0.2
	grep -q "no signature" "$T/k.log" && { kill -CONT "$kp"; fail "the resumption asked for a signature"; }
	t0=$(date +%s%3N)
	gemini "$(keys_home)" >/dev/null 2>&1 && { kill -CONT "$kp"; fail "a full handshake without the key process"; }
	ms=$(( $(date +%s%3N) - t0 ))
	echo "full handshake failed after $ms ms"
	kill -CONT "$kp"
	[ "$ms" -lt 3000 ] || fail "the full handshake waited $ms ms"
	grep -q "no signature from the key process for a handshake: timed out" "$T/k.log" ||
		fail "the timeout not logged"
	expect_eq "full, key process continued" 20 "$(keys_get "$(keys_home)")"
}
