# tests/test_fuzz.sh: replays each fuzz target's corpus (fuzz/corpus/NAME/: the
# seeds and every crash make fuzz ever found) through fuzz/bin/replay_NAME, the
# target built with the ASan/UBSan flags and without libFuzzer. A target's own
# checks abort on a broken contract; a sanitizer report fails the test too.

# replay_corpus NAME: every file replayed, none crashed, no sanitizer report.
replay_corpus() {
	local name=$1 bin=$ROOT/fuzz/bin/replay_$1 dir=$ROOT/fuzz/corpus/$1 rc=0 n
	[ -x "$bin" ] || { fail "$bin is missing (make $bin)"; return 1; }
	n=$(find "$dir" -type f | wc -l)
	[ "$n" -ge 10 ] || { fail "$dir holds $n files, expected at least 10"; return 1; }
	LSAN_OPTIONS=suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0 \
	    "$bin" "$dir" >"$T/replay.out" 2>&1 || rc=$?
	if [ "$rc" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/replay.out"; then
		tail -n 40 "$T/replay.out"
		fail "replay of $name: exit status $rc"
		return 1
	fi
	expect_eq "files replayed" "$n" "$(grep -c '^replayed ' "$T/replay.out")"
}

test_fuzz_replay_gemini() { replay_corpus gemini; }
test_fuzz_replay_gopher() { replay_corpus gopher; }
test_fuzz_replay_spartan() { replay_corpus spartan; }
test_fuzz_replay_nex()    { replay_corpus nex; }
test_fuzz_replay_proxy()  { replay_corpus proxy; }
test_fuzz_replay_config() { replay_corpus config; }
test_fuzz_replay_escape() { replay_corpus escape; }
test_fuzz_replay_titan()  { replay_corpus titan; }
test_fuzz_replay_wire()   { replay_corpus wire; }
