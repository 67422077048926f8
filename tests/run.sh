#!/usr/bin/env bash
# tests/run.sh: the test runner. Sources lib.sh and every tests/test_*.sh, runs each
# function named test_* (or those matching $1) in its own subshell and scratch folder,
# and ends with the line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export ROOT=$PWD
export KILNET=${KILNET:-./kilnet}
case $KILNET in /*) ;; *) KILNET=$ROOT/${KILNET#./} ;; esac
export TESTBIN=$ROOT/tests/bin
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
. tests/lib.sh
for f in tests/test_*.sh; do . "$f"; done

pattern=${1:-}
scratch=$(mktemp -d /tmp/kilnet-test.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0 failures=()
echo "# kilnet tests with $KILNET"
for t in $(declare -F | awk '{print $3}' | grep '^test_' ); do
	[ -n "$pattern" ] && [[ $t != *$pattern* ]] && continue
	T=$scratch/$t
	mkdir -p "$T"
	( export T; cd "$T" && set -e && "$t" ) >"$T/out" 2>&1
	rc=$?
	( T=$T; cleanup_servers ) >>"$T/out" 2>&1 || rc=1
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1)); echo "ok   $t"
	else
		failed=$((failed + 1)); failures+=("$t"); echo "FAIL $t"
		sed 's/^/     | /' "$T/out" | tail -n 40
		for l in "$T"/*.log; do
			[ -f "$l" ] || continue
			echo "     | --- $(basename "$l") (tail)"; tail -n 15 "$l" | sed 's/^/     | /'
		done
	fi
done
[ ${#failures[@]} -gt 0 ] && echo "# failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
