# tests/lib.sh: helpers for the test files. A test is a function test_NAME in a
# tests/test_*.sh file; it runs with set -e in its own folder $T, and fails when any
# command fails or when it calls fail. Servers it starts are stopped after it, and a
# server that died, crashed or reported a sanitizer error fails the test.

fail() { echo "FAIL: $*"; return 1; }
# skip WHY: ends the test here as skipped ("skip NAME (WHY)"), for what a test
# cannot do on this machine (root, a namespace); called from the test's own body,
# not inside $(...). A missing tool is said with a "# needs:" line (tests/run.sh).
skip() { echo "$*" >"$T/.skipped"; exit 0; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	[ "$2" == "$3" ] && return 0
	echo "FAIL: $1"; echo "  expected: $(printf '%q' "$2")"; echo "  actual:   $(printf '%q' "$3")"
	return 1
}
# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
	[[ $2 == *"$3"* ]] && return 0
	echo "FAIL: $1: $(printf '%q' "$3") not found in:"; printf '%s\n' "$2" | head -n 20
	return 1
}
expect_not_contains() {
	[[ $2 != *"$3"* ]] && return 0
	echo "FAIL: $1: $(printf '%q' "$3") found"; return 1
}

# A TCP port nobody uses now (on both 127.0.0.1 and ::1), taken below the kernel's
# range for outgoing connections: a port in that range can be held by a client
# socket in TIME_WAIT, and bind fails even with SO_REUSEADDR. Tests run side by side
# (JOBS at a time, and make test runs two builds at once), and a port is free until
# the test it went to binds it, so they are handed out in turn from one counter per
# machine (next_port): no two tests get the same port until the ~22000 of the range
# have gone round.
free_port() {
	local p n low
	low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$low" ] && [ "$low" -gt 12000 ] || low=32768
	while :; do
		n=$(next_port) || n=$(( RANDOM * 32768 + RANDOM ))
		p=$(( 10000 + n % (low - 10000) ))
		[ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && continue
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
		echo "$p"; return
	done
}

# next_port: the next number of the counter in $KILNET_TEST_PORTS (one file for every
# run on this machine, read and written under flock; it starts at a random number).
next_port() {
	local f=${KILNET_TEST_PORTS:-/tmp/kilnet-tests.ports} n
	[ -e "$f" ] || { : >>"$f" && chmod 666 "$f"; } 2>/dev/null
	{
		flock -x 9 || return 1
		read -r n <"$f" || true
		[[ ${n:-} =~ ^[0-9]{1,12}$ ]] || n=$(( RANDOM * 32768 + RANDOM ))
		echo $((n + 1)) >"$f" || return 1
		echo "$n"
	} 2>/dev/null 9<"$f"
}

# write_conf FILE [SETTINGS...]: a test config that includes the default dataset; each
# extra argument is a line inside the server group (e.g. 'request_timeout = 1.0;').
# Sets GEM_PORT and GOPH_PORT (free ports, also in the config) unless already set;
# GEM_PUBLIC, when set, is the Gemini port the pages and redirects name (a proxy's).
write_conf() {
	local f=$1; shift
	: "${GEM_PORT:=$(free_port)}" "${GOPH_PORT:=$(free_port)}"
	export GEM_PORT GOPH_PORT
	mkdir -p "$T/certs" "$T/capsule"
	{
		echo "server = {"
		echo "  hostnames = [ \"localhost\" ];"
		echo "  gemini = { listen = [ \"127.0.0.1:$GEM_PORT\" ];${GEM_PUBLIC:+ port = $GEM_PUBLIC;} };"
		echo "  gopher = { listen = [ \"127.0.0.1:$GOPH_PORT\" ]; };"
		echo "  cert_dir = \"$T/certs\";"
		echo "  capsule = \"${CAPSULE:-$ROOT/capsule}\";"
		echo "  workers = ${WORKERS:-1};"
		for l in "$@"; do echo "  $l"; done
		echo "};"
		echo "@include \"${DATASET:-$ROOT/conf/network.conf}\""
	} >"$f"
}

# wait_port HOST PORT: until something accepts there (5 s at most).
wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_kilnet NAME ARGS...: runs $KILNET ARGS in the background, stderr and stdout
# to $T/NAME.log; waits until every --gemini/--gopher/--spartan/--nex port (or,
# with none, the config's Gemini and Gopher ports) accepts.
# Sets KPID (and KPID_NAME).
start_kilnet() {
	local name=$1; shift
	"$KILNET" "$@" >"$T/$name.log" 2>&1 &
	KPID=$!
	eval "KPID_$name=$KPID"
	echo "$KPID $name" >>"$T/.servers"
	local ports=() a prev=
	for a in "$@"; do
		case $prev in --gemini|--gopher|--spartan|--nex) ports+=("$a") ;; esac
		prev=$a
	done
	[ ${#ports[@]} -eq 0 ] && ports=("127.0.0.1:${GEM_PORT:-}" "127.0.0.1:${GOPH_PORT:-}")
	for a in "${ports[@]}"; do
		local host=${a%:*} port=${a##*:}
		host=${host#[}; host=${host%]}
		[ -n "$port" ] || continue
		wait_port "$host" "$port" || { cat "$T/$name.log"; fail "kilnet did not listen on $a"; return 1; }
	done
}

# Stops every server the test started: each must still be alive, stop on SIGTERM with
# status 0, and leave no sanitizer report in its log.
cleanup_servers() {
	[ -f "$T/.servers" ] || return 0
	local rc=0 pid name st
	while read -r pid name; do
		[ -f "$T/.stopped-$pid" ] && continue
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "FAIL: server $name (pid $pid) was not running at the end of the test"
			rc=1; continue
		fi
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "FAIL: server $name did not stop on SIGTERM"; kill -KILL "$pid"; rc=1
		fi
		wait "$pid" 2>/dev/null; st=$?
		[ "$st" = 0 ] || [ "$st" = 127 ] || { echo "FAIL: server $name exited with status $st"; rc=1; }
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/$name.log" 2>/dev/null; then
			echo "FAIL: sanitizer report in $name.log"; rc=1
		fi
	done <"$T/.servers"
	return $rc
}

# stop_kilnet PID: stops one server now (SIGTERM, status 0 expected).
stop_kilnet() {
	local pid=$1 st
	kill -TERM "$pid"
	wait "$pid"; st=$?
	touch "$T/.stopped-$pid"
	[ "$st" = 0 ] || fail "kilnet exited with status $st on SIGTERM"
}

# workers_of PID: the worker processes of the master PID, one a line: its
# children but the key process (process title kilnet-keys, src/keyproc.c).
workers_of() {
	local p
	for p in $(pgrep -P "$1"); do
		# the key process, the editing process, the builder, the store
		# process and the metrics process have names of their own
		# (kilnet-keys, kilnet-edit, kilnet-build, kilnet-store,
		# kilnet-metrics)
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		kilnet-keys|kilnet-edit|kilnet-build|kilnet-store|kilnet-metrics) ;;
		*) echo "$p" ;;
		esac
	done
}
# keyproc_of PID: the key process of the master PID.
keyproc_of() { pgrep -P "$1" -x kilnet-keys; }

# assert_alive: the last server started still runs.
assert_alive() { kill -0 "$KPID" 2>/dev/null || fail "kilnet died"; }

# Gemini request through the C test client: gemini REQUEST-LINE [gemget options...]
# prints the whole response (header and body).
gemini() {
	local req=$1; shift
	"$TESTBIN/gemget" "$@" 127.0.0.1 "$GEM_PORT" "$req"
}
# Gopher request: gopher SELECTOR-LINE (sent as given plus CRLF) with bash /dev/tcp.
gopher_raw() {
	local req=$1 port=${2:-$GOPH_PORT}
	exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf '%s' "$req" >&5
	timeout 10 cat <&5
	exec 5<&-
}
