# tests/test_bench.sh: the benchmark's load generator works against kilnet (a few
# hundred requests, no timing asserted: speed is measured by make bench, not here).

bench_loadgen() { "$ROOT/bench/bin/loadgen" "$@"; }

# field NAME LINE: the value of NAME=... in loadgen's one-line report.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

test_bench_loadgen_gemini_and_gopher() {
	write_conf "$T/k.conf" 'access_log = "off";'
	start_kilnet k -c "$T/k.conf"
	local out
	out=$(bench_loadgen --gemini --port "$GEM_PORT" --sni localhost -c 8 -n 300 --request "gemini://localhost:$GEM_PORT/" \
		--seconds 60 --expect "20 ")
	echo "$out"
	expect_eq "gemini requests" 300 "$(field requests "$out")"
	expect_eq "gemini errors" 0 "$(field errors "$out")"
	out=$(bench_loadgen --gemini --port "$GEM_PORT" --sni localhost -c 8 -n 300 --request "gemini://localhost:$GEM_PORT/" \
		--seconds 60 --resume --expect "20 ")
	echo "$out"
	expect_eq "resumed run errors" 0 "$(field errors "$out")"
	# Every handshake but the first few (one per connection slot) resumes.
	[ "$(field resumed "$out")" -ge 280 ] || fail "only $(field resumed "$out") of 300 resumed"
	out=$(bench_loadgen --gopher --port "$GOPH_PORT" -c 8 -n 300 --seconds 60 \
		--request /members --expect "i")
	echo "$out"
	expect_eq "gopher requests" 300 "$(field requests "$out")"
	expect_eq "gopher errors" 0 "$(field errors "$out")"
}
