#!/usr/bin/env bash
# tests/run.sh: the test runner. Sources lib.sh and every tests/test_*.sh, runs each
# function named test_* (or those whose names contain $1) in its own subshell and
# scratch folder, JOBS of them at a time (default 4), and ends with the line
# "N passed, N failed" (then exits non-zero if any failed).
#
#   KILNET=./kilnet bash tests/run.sh [PATTERN]
#   KILNET="./kilnet ./kilnet-asan" bash tests/run.sh [PATTERN]
#
# A test's output is kept in its folder and printed whole when it ends: "ok   NAME
# (2.0 s)", "skip NAME (why)", or "FAIL NAME (2.0 s)" and the tail of its output and
# of its logs. A skipped test counts as neither passed nor failed. The unit tests
# (tests/bin/unit, or unit-asan with ./kilnet-asan) run first, and each of their
# cases counts in the closing line; PATTERN "unit" runs only them ("unit_url" only
# the suites whose names start with "url"). The
# tests in $serial run first, one at a time and alone: no test of any run
# on this machine runs beside them. With several builds, one run per build goes at the
# same time: the first prints as it goes, each other's output follows whole once the
# first is done, and a last line "N passed, N failed" counts them all.
set -u
cd "$(dirname "$0")/.."
export ROOT=$PWD
((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)) || { echo "tests/run.sh needs bash 5.1 (wait -n -p)"; exit 2; }

# Several builds: one run of this script per build, side by side.
read -ra builds <<<"${KILNET:-./kilnet}"
if [ ${#builds[@]} -gt 1 ]; then
	outs=$(mktemp -d /tmp/kilnet-runs.XXXXXX)
	trap 'rm -rf "$outs"' EXIT
	pids=() rc=0
	for i in "${!builds[@]}"; do
		[ "$i" -eq 0 ] && continue
		KILNET=${builds[$i]} bash "$ROOT/tests/run.sh" "$@" >"$outs/$i" 2>&1 &
		pids[$i]=$!
	done
	KILNET=${builds[0]} bash "$ROOT/tests/run.sh" "$@" | tee "$outs/0"
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || rc=1
		cat "$outs/$i"
	done
	passed=0 failed=0
	for i in "${!builds[@]}"; do
		if [[ $(tail -n 1 "$outs/$i") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
			passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
		else
			echo "# the run with ${builds[$i]} ended without its count"
			failed=$((failed + 1))
		fi
	done
	echo "# all builds: ${builds[*]}"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
	exit
fi

export KILNET=${builds[0]}
case $KILNET in /*) ;; *) KILNET=$ROOT/${KILNET#./} ;; esac
export TESTBIN=$ROOT/tests/bin
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
JOBS=${JOBS:-4}
. tests/lib.sh
for f in tests/test_*.sh; do . "$f"; done

# Tests that run alone, before the others: each waits until no test of any run on this
# machine runs, and none starts beside it. A test file can add one with a line
# "# serial: test_NAME".
#   test_server_reload_under_load_*: loadgen flat out for 20 and 10 s against a
#     server that reloads, then a count of the requests served and of the workers
#     left. Beside other tests (or each other: make test's two builds) they served a
#     tenth of their usual count, old workers were still draining at the end, and
#     the tests beside them missed their own deadlines.
#   test_server_slow_client_cut: its Gopher client sends its 3 bytes one a second
#     against a 2 s deadline, so the last one comes just at the deadline: when the
#     server is slow to accept, it is answered (1 run in 3 beside other tests).
serial=(test_server_reload_under_load_gemini test_server_reload_under_load_gopher
	test_server_slow_client_cut
	$(sed -n 's/^# serial: *\(test_[A-Za-z0-9_]*\).*/\1/p' tests/test_*.sh))

# Tests that share something within a run take turns, in one job: the install tests
# build into one folder per run (install_into in tests/test_install.sh).
in_turn=(test_install_)

# The tools a test needs besides bash, coreutils and the build: a test file says
# so in a line "# needs: test_NAME TOOL..." (NAME may end in *: every test whose
# name starts so). With KILNET_SKIP_MISSING=1 (make check) a test whose tools are
# not all installed is skipped, with a line naming them; otherwise (make test,
# after make deps) it fails at once, naming them.
needs_pat=() needs_tools=()
while read -r p tools; do
	needs_pat+=("$p") needs_tools+=("$tools")
done < <(sed -n 's/^# needs: *\(test_[A-Za-z0-9_*]*\) \(.*\)/\1 \2/p' tests/test_*.sh)

# missing_tools NAME: the tools NAME needs that are not installed.
missing_tools() {
	local i tool missing=
	for i in "${!needs_pat[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == ${needs_pat[$i]} ]] || continue
		for tool in ${needs_tools[$i]}; do
			command -v "$tool" >/dev/null 2>&1 || [[ " $missing " == *" $tool "* ]] ||
				missing+=${missing:+ }$tool
		done
	done
	echo "$missing"
}

pattern=${1:-}
scratch=$(mktemp -d /tmp/kilnet-test.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# The lock every test holds while it runs: shared beside other tests, exclusive for a
# test that runs alone. The gate, taken first for a moment, keeps a test waiting for
# the exclusive lock from starving: tests that come after it wait behind it.
lock=${KILNET_TEST_LOCK:-/tmp/kilnet-tests.lock}
lock_fd=
for f in "$lock" "$lock.gate"; do
	[ -e "$f" ] || { : >>"$f" && chmod 666 "$f"; } 2>/dev/null
done

# locked -s|-x COMMAND...: COMMAND, holding the lock shared (-s) or exclusive (-x).
locked() {
	local mode=$1 gate rc; shift
	if [ -r "$lock" ] && [ -r "$lock.gate" ]; then
		exec {gate}<"$lock.gate" {lock_fd}<"$lock"
		flock -x "$gate"; flock "$mode" "$lock_fd"; exec {gate}<&-
	fi
	"$@"; rc=$?
	[ -z "$lock_fd" ] || exec {lock_fd}<&-
	lock_fd=
	return $rc
}

# run_test NAME: the test in $scratch/NAME, then its servers stopped; its status and
# start and end times go to $T/.result.
run_test() {
	local t=$1 T=$scratch/$1 rc t0=$EPOCHREALTIME missing
	mkdir -p "$T"
	missing=$(missing_tools "$t")
	if [ -n "$missing" ]; then
		if [ -n "${KILNET_SKIP_MISSING:-}" ]; then
			echo "needs $missing, not installed" >"$T/.skipped"; rc=0
		else
			echo "FAIL: needs $missing, not installed (make deps installs them)" >"$T/out"; rc=1
		fi
		echo "$rc $t0 $EPOCHREALTIME" >"$T/.result"
		return
	fi
	(
		[ -z "$lock_fd" ] || exec {lock_fd}<&-
		export T; cd "$T" && set -e && "$t"
	) >"$T/out" 2>&1
	rc=$?
	( cleanup_servers ) >>"$T/out" 2>&1 || rc=1
	echo "$rc $t0 $EPOCHREALTIME" >"$T/.result"
}

# report NAME: its line, and for a failure the tail of its output and logs.
passed=0 failed=0 failures=() skipped=()
report() {
	local t=$1 T=$scratch/$1 rc=1 t0=0 t1=0 us
	if [ -f "$T/.result" ]; then
		read -r rc t0 t1 <"$T/.result"
	else
		mkdir -p "$T"; echo "runner: the test's job ended without a result" >>"$T/out"
	fi
	us=$(( ${t1/[.,]/} - ${t0/[.,]/} ))
	local took="($((us / 1000000)).$((us / 100000 % 10)) s)"
	if [ "$rc" -eq 0 ] && [ -f "$T/.skipped" ]; then
		skipped+=("$t"); echo "skip $t ($(head -n 1 "$T/.skipped"))"
	elif [ "$rc" -eq 0 ]; then
		passed=$((passed + 1)); echo "ok   $t $took"
	else
		failed=$((failed + 1)); failures+=("$t"); echo "FAIL $t $took"
		sed 's/^/     | /' "$T/out" | tail -n 40
		for l in "$T"/*.log; do
			[ -f "$l" ] || continue
			echo "     | --- $(basename "$l") (tail)"; tail -n 15 "$l" | sed 's/^/     | /'
		done
	fi
}

# The jobs: each runs one test, or the tests of one in_turn group one after another.
jobs_=() alone=()
declare -A job_of=() is_serial=()
for t in "${serial[@]}"; do is_serial[$t]=1; done
for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
	[ -n "$pattern" ] && [[ $t != *$pattern* ]] && continue
	if [ -n "${is_serial[$t]:-}" ]; then alone+=("$t"); continue; fi
	key=$t
	for p in "${in_turn[@]}"; do [[ $t == "$p"* ]] && key=$p; done
	if [ -n "${job_of[$key]:-}" ]; then
		jobs_[${job_of[$key]}]+=" $t"
	else
		job_of[$key]=${#jobs_[@]}; jobs_+=("$t")
	fi
done

# run_units [FILTER]: the unit tests of this build, their cases counted.
run_units() {
	local bin out rc=0 t0=$EPOCHREALTIME us n_ok n_bad
	case ${KILNET##*/} in
	kilnet-asan) bin=$TESTBIN/unit-asan ;;
	*) bin=$TESTBIN/unit ;;
	esac
	bin=${KILNET_UNIT:-$bin}
	if [ ! -x "$bin" ]; then
		failed=$((failed + 1)); failures+=(unit)
		echo "FAIL unit: $bin is not built (make ${bin#"$ROOT"/})"; return
	fi
	out=$("$bin" "$@" 2>&1) || rc=$?
	us=$(( ${EPOCHREALTIME/[.,]/} - ${t0/[.,]/} ))
	if [[ $(tail -n 1 <<<"$out") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		n_ok=${BASH_REMATCH[1]} n_bad=${BASH_REMATCH[2]}
	else
		n_ok=0 n_bad=1
		out+=$'\n'"(the unit tests ended without their count, status $rc)"
	fi
	[ "$rc" -eq 0 ] || [ "$n_bad" -gt 0 ] || n_bad=1
	passed=$((passed + n_ok)) failed=$((failed + n_bad))
	if [ "$n_bad" -eq 0 ]; then
		echo "ok   unit: $n_ok cases ($((us / 1000000)).$((us / 100000 % 10)) s)"
	else
		failures+=(unit)
		echo "FAIL unit: $n_bad of $((n_ok + n_bad)) cases ($((us / 1000000)).$((us / 100000 % 10)) s)"
		sed '$d; s/^/     | /' <<<"$out" | tail -n 60
	fi
}

echo "# kilnet tests with $KILNET"
case $pattern in
'') run_units ;;
unit) run_units ;;
unit_*) run_units "${pattern#unit_}" ;;
esac
declare -A running=()
# reap: waits for one job to end and reports its tests.
reap() {
	local pid= t
	wait -n -p pid "${!running[@]}"
	[ -n "$pid" ] || return 0
	for t in ${running[$pid]}; do report "$t"; done
	unset "running[$pid]"
}
for t in "${alone[@]}"; do
	locked -x run_test "$t"
	report "$t"
done
for j in "${jobs_[@]}"; do
	while [ ${#running[@]} -ge "$JOBS" ]; do reap; done
	( for t in $j; do locked -s run_test "$t"; done ) &
	running[$!]=$j
done
while [ ${#running[@]} -gt 0 ]; do reap; done

[ ${#skipped[@]} -gt 0 ] && echo "# skipped: ${skipped[*]}"
[ ${#failures[@]} -gt 0 ] && echo "# failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
