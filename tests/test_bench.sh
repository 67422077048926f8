# tests/test_bench.sh: the benchmark's load generator works against kilnet (a few
# hundred requests, no timing asserted: speed is measured by make bench, not here).
# needs: test_bench_floor_modes openssl

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

# --spartan and --nex: the request line each protocol sends (Spartan's
# "HOST PATH 0" and CRLF, Nex's path and LF), answered by kilnet's front ends;
# --save keeps the reply the bench's floor then serves.
test_bench_loadgen_spartan_and_nex() {
	local sp nx out
	sp=$(free_port) nx=$(free_port)
	write_conf "$T/k.conf" 'access_log = "off";'
	start_kilnet k -c "$T/k.conf" --spartan "127.0.0.1:$sp" --nex "127.0.0.1:$nx"
	out=$(bench_loadgen --spartan --port "$sp" -c 8 -n 300 --seconds 60 --expect "2 text/gemini" \
		--min-bytes 1000)
	echo "$out"
	expect_eq "spartan mode" spartan "$(field mode "$out")"
	expect_eq "spartan requests" 300 "$(field requests "$out")"
	expect_eq "spartan errors" 0 "$(field errors "$out")"
	out=$(bench_loadgen --spartan --port "$sp" --request "localhost /join.gmi 0" -c 2 -n 20 \
		--seconds 60 --expect "2 text/gemini")
	expect_eq "spartan --request errors" 0 "$(field errors "$out")"
	out=$(bench_loadgen --nex --port "$nx" -c 8 -n 300 --seconds 60 --expect "Keep it Local" \
		--min-bytes 1000)
	echo "$out"
	expect_eq "nex mode" nex "$(field mode "$out")"
	expect_eq "nex requests" 300 "$(field requests "$out")"
	expect_eq "nex errors" 0 "$(field errors "$out")"
	# The saved replies are what a client of each protocol gets.
	bench_loadgen --spartan --port "$sp" --save "$T/sp.resp" >/dev/null
	gopher_raw $'localhost / 0\r\n' "$sp" >"$T/sp.direct"
	cmp "$T/sp.resp" "$T/sp.direct" || fail "--spartan --save differs from the reply"
	bench_loadgen --nex --port "$nx" --save "$T/nx.resp" >/dev/null
	gopher_raw $'/\n' "$nx" >"$T/nx.direct"
	cmp "$T/nx.resp" "$T/nx.direct" || fail "--nex --save differs from the reply"
	expect_contains "Nex home directory" "$(cat "$T/nx.resp")" "=> /members/ "
}

# The floor server (bench/floor.c) in each of its modes answers every request: the
# bench compares kilnet against it, so a broken floor would make every ratio lie.
test_bench_floor_modes() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	    -subj /CN=localhost -keyout "$T/f.key" -out "$T/f.crt" 2>/dev/null
	printf '20 text/gemini\r\n# floor\n' >"$T/gem.resp"
	printf 'iplain floor\t\terror.host\t1\r\n.\r\n' >"$T/goph.resp"
	local mode port out args
	for mode in epoll bufferevent plain; do
		port=$(free_port)
		case $mode in
		epoll) args=(--cert "$T/f.crt" --key "$T/f.key" --response "$T/gem.resp") ;;
		bufferevent) args=(--cert "$T/f.crt" --key "$T/f.key" --response "$T/gem.resp" --bufferevent) ;;
		plain) args=(--plain --response "$T/goph.resp") ;;
		esac
		"$ROOT/bench/bin/floor" --port "$port" "${args[@]}" >"$T/floor-$mode.log" 2>&1 &
		echo "$! floor-$mode" >>"$T/.servers"
		wait_port 127.0.0.1 "$port" || fail "floor $mode did not listen"
		if [ "$mode" = plain ]; then
			out=$(bench_loadgen --gopher --port "$port" -c 8 -n 200 --seconds 60 --expect "iplain floor")
			echo "$mode: $out"
			expect_eq "$mode requests" 200 "$(field requests "$out")"
			expect_eq "$mode errors" 0 "$(field errors "$out")"
			continue
		fi
		out=$(bench_loadgen --gemini --port "$port" -c 8 -n 200 --seconds 60 --expect "20 text/gemini" --min-bytes 24)
		echo "$mode: $out"
		expect_eq "$mode requests" 200 "$(field requests "$out")"
		expect_eq "$mode errors" 0 "$(field errors "$out")"
		out=$(bench_loadgen --gemini --port "$port" -c 8 -n 200 --seconds 60 --resume --expect "20 ")
		echo "$mode resumed: $out"
		expect_eq "$mode resumed errors" 0 "$(field errors "$out")"
		[ "$(field resumed "$out")" -ge 180 ] || fail "$mode: only $(field resumed "$out") of 200 resumed"
	done
}

# With --ready-file, the measured requests wait until the bench has sampled the
# server and removed the file: a sampler running beside them showed in their p99.
test_bench_idle_waits_for_ready_file() {
	write_conf "$T/k.conf" "access_log = \"$T/access.log\";"
	start_kilnet k -c "$T/k.conf"
	bench_loadgen --gopher --port "$GOPH_PORT" -c 4 -n 20 --seconds 60 --request /members \
	    --idle 50 --hold 1 --ready-file "$T/ready" >"$T/idle.out" 2>&1 &
	local lg=$! i
	for i in $(seq 1 200); do [ -f "$T/ready" ] && break; sleep 0.05; done
	[ -f "$T/ready" ] || fail "no ready file"
	expect_contains "ready file" "$(cat "$T/ready")" "held=50"
	sleep 0.5
	kill -0 "$lg" || fail "loadgen did not wait for the ready file's removal"
	expect_eq "requests served before the go" 0 "$(grep -c '"/members"' "$T/access.log" 2>/dev/null || true)"
	rm "$T/ready"
	wait "$lg"
	cat "$T/idle.out"
	expect_eq "requests" 20 "$(field requests "$(tail -n 1 "$T/idle.out")")"
	expect_eq "held" 50 "$(field held "$(tail -n 1 "$T/idle.out")")"
	for i in $(seq 1 40); do [ "$(grep -c '"/members"' "$T/access.log")" = 20 ] && break; sleep 0.05; done
	expect_eq "requests in the access log" 20 "$(grep -c '"/members"' "$T/access.log")"
}
