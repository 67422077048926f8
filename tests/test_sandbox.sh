# tests/test_sandbox.sh: the workers' confinement (issue 13): the seccomp filter
# (server.sandbox), the change of user and the chroot into an empty folder.

# sb_status PID FIELD: a field of /proc/PID/status ("Seccomp", "NoNewPrivs", ...).
sb_status() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# sb_served: the home page is served (retried for a while: a worker may be
# restarting).
sb_served() {
	local i
	for i in $(seq 1 40); do
		[ "$(gemini "gemini://localhost:$GEM_PORT/" | head -c 2)" = 20 ] && return 0
		sleep 0.1
	done
	fail "home page not served"
}

test_sandbox_workers_confined() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --workers 2
	sb_served
	local w n=0
	for w in $(workers_of "$KPID"); do
		n=$((n + 1))
		expect_eq "worker $w NoNewPrivs" 1 "$(sb_status "$w" NoNewPrivs)"
		expect_eq "worker $w Seccomp (2: filter)" 2 "$(sb_status "$w" Seccomp)"
		if [ "$(id -u)" = 0 ]; then
			expect_eq "worker $w user" "$(id -u nobody)" "$(sb_status "$w" Uid)"
			expect_eq "worker $w root" /var/empty "$(readlink "/proc/$w/root")"
		fi
	done
	expect_eq "workers" 2 "$n"
	expect_eq "master Seccomp" 0 "$(sb_status "$KPID" Seccomp)"
	if [ "$(id -u)" = 0 ]; then
		# the default root: made by kilnet if missing, root's, not writable
		expect_eq "empty root's owner and mode" "0 755" "$(stat -c '%u %a' /var/empty)"
		expect_eq "master root" / "$(readlink "/proc/$KPID/root")"
	fi
	# serving works inside: both protocols, a search, a capsule file, a 51
	expect_contains "gopher" "$(gopher_raw $'/members\r\n')" "Bradford"
	expect_contains "search" "$(gemini "gemini://localhost:$GEM_PORT/search?bristol")" "Bristol"
	expect_contains "not found" "$(gemini "gemini://localhost:$GEM_PORT/nothing-here")" "51 "
	# a reload: the new workers are confined too
	kill -HUP "$KPID"
	srv_wait_log "$T/k.log" "reloaded: "
	sb_served
	for w in $(workers_of "$KPID"); do
		expect_eq "new worker $w Seccomp" 2 "$(sb_status "$w" Seccomp)"
	done
	grep -q "sandbox violation" "$T/k.log" && fail "a sandbox violation was logged"
	return 0
}

# sb_probe CALL SYSCALL: a worker makes a forbidden call (test hook) after it
# entered the filter: it ends, the master names the call and starts another.
sb_probe() {
	write_conf "$T/k.conf"
	KILNET_TEST_SANDBOX_PROBE=$1 start_kilnet k -c "$T/k.conf"
	local first
	first=$(workers_of "$KPID")
	srv_wait_log "$T/k.log" "sandbox violation: system call $2 "
	srv_wait_log "$T/k.log" "worker 1 restarted"
	kill -0 "$first" 2>/dev/null && fail "the worker that made the call still runs"
	grep "sandbox violation" "$T/k.log" | head -n 1
	[ -e /tmp/kilnet-sandbox-probe ] && fail "the worker created a file"
	sb_served
	# the restarted workers keep making the call: stop without the status check
	kill -TERM "$KPID"
	wait "$KPID" || true
	touch "$T/.stopped-$KPID"
}
test_sandbox_forbidden_open() { sb_probe open openat; }
test_sandbox_forbidden_socket() { sb_probe socket socket; }
test_sandbox_forbidden_execve() { sb_probe execve execve; }

test_sandbox_off() {
	write_conf "$T/k.conf" "sandbox = false;" 'chroot = "";'
	start_kilnet k -c "$T/k.conf"
	sb_served
	local w
	w=$(workers_of "$KPID")
	expect_eq "Seccomp" 0 "$(sb_status "$w" Seccomp)"
	expect_eq "key process Seccomp" 0 "$(sb_status "$(keyproc_of "$KPID")" Seccomp)"
	expect_eq "root" / "$(readlink "/proc/$w/root")"
	expect_contains "gopher" "$(gopher_raw $'/members\r\n')" "Bradford"
}

test_sandbox_bad_setting() {
	write_conf "$T/k.conf" 'sandbox = "yes";'
	local rc=0
	"$KILNET" -t -c "$T/k.conf" >"$T/out" 2>&1 || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message" "$(cat "$T/out")" "server.sandbox"
}
