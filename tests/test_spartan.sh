# tests/test_spartan.sh: the Spartan front end (issue 23 items 1, 3 and 4) over
# real sockets, with the project's own client (tests/lightnet.py): the pages are
# Gemini's with Spartan's header, the search link is a "=:" prompt whose data
# block is the query, and every hostile request gets a "4" (or a close) while
# the server keeps serving; a 1,000-member site is crawled by its links, the
# rate limit holds across two workers, and PROXY, the access log, reload and
# --render work as for the other protocols.
# needs: test_spartan_* python3

SP_CLIENT=$ROOT/tests/lightnet.py

# sp_start [SETTINGS...]: a server with Spartan on $SP_PORT (and the usual
# Gemini and Gopher ports).
sp_start() {
	SP_PORT=$(free_port)
	write_conf "$T/k.conf" "spartan = { listen = [ \"127.0.0.1:$SP_PORT\" ]; };" "$@"
	start_kilnet k -c "$T/k.conf" ${SP_WORKERS:+--workers "$SP_WORKERS"}
	wait_port 127.0.0.1 "$SP_PORT" || fail "no Spartan listener"
}

# sp PATH [DATA]: the whole reply; sp_send BYTES: BYTES (Python escapes) sent
# as they are, then the client's end of stream.
sp() { python3 "$SP_CLIENT" spartan "$SP_PORT" "$@"; }
sp_send() { python3 "$SP_CLIENT" send "$SP_PORT" "$1"; }
sp_head() { sp "$@" | head -n 1 | tr -d '\r'; }

test_spartan_home() {
	sp_start
	sp / >"$T/home"
	expect_eq "header" "2 text/gemini; charset=utf-8; lang=en" "$(head -n 1 "$T/home" | tr -d '\r')"
	local body
	body=$(tail -n +2 "$T/home")
	expect_contains "prompt line" "$body" "=: /search Search the network's members"
	expect_not_contains "no Gemini search link" "$body" "=> /search"
	expect_contains "Gemini link" "$body" "=> gemini://localhost:$GEM_PORT/ The same site over Gemini"
	expect_contains "Gopher link" "$body" "=> gopher://localhost:$GOPH_PORT/1/ The same site over Gopher"
	expect_not_contains "no link to itself" "$body" "spartan://"
	expect_contains "members" "$body" "=> /members/hackney.gmi Hackney Council"
	# Gemini's home page names Spartan, and Gopher's root too
	expect_contains "Gemini home links Spartan" "$(gemini "gemini://localhost:$GEM_PORT/")" \
		"=> spartan://localhost:$SP_PORT/ The same site over Spartan"
	expect_contains "Gopher root links Spartan" "$(gopher_raw $'\r\n')" \
		"hThe same site over Spartan	URL:spartan://localhost:$SP_PORT/	"
}

# A page that needs no change is Gemini's body under Spartan's header.
test_spartan_same_pages() {
	sp_start
	local p
	for p in /members/hackney.gmi /join.gmi /robots.txt /about.gmi; do
		sp "$p" | tail -n +2 >"$T/sp"
		gemini "gemini://localhost:$GEM_PORT$p" | tail -n +2 >"$T/gem"
		cmp -s "$T/sp" "$T/gem" || fail "$p differs from Gemini's body"
	done
	expect_eq "robots.txt header" "2 text/plain" "$(sp_head /robots.txt | cut -d';' -f1)"
	expect_contains "member list prompt" "$(sp /members/)" "=: /search Search the network's members"
	expect_eq "search page" "=: /search Search the network's members" \
		"$(sp /search | grep '^=:')"
}

test_spartan_search() {
	sp_start
	# a word of Bradford's statement, as the data block
	sp /search altruism >"$T/r"
	expect_eq "header" "2 text/gemini; charset=utf-8; lang=en" "$(head -n 1 "$T/r" | tr -d '\r')"
	expect_contains "hit" "$(cat "$T/r")" "=> /members/bradford.gmi Bradford Metropolitan District Council"
	expect_contains "prompt to search again" "$(cat "$T/r")" "=: /search "
	# a query string (the links between pages of results carry one) is the query too
	expect_contains "query string" "$(sp '/search?Rotherham')" "=> /members/rotherham.gmi"
	expect_contains "UTF-8 query" "$(sp /search 'Gloucestershire')" "south-gloucestershire.gmi"
	expect_contains "no hit" "$(sp /search zzzqqq)" "No member"
	# data sent to a page that takes none is ignored: the page
	expect_eq "data to a page" "2 text/gemini; charset=utf-8; lang=en" "$(sp_head /join.gmi hello)"
	expect_eq "bad UTF-8 query" "4 Search query is not valid UTF-8 text" \
		"$(sp_send 'localhost /search 2\r\n\xff\xfe' | head -n 1 | tr -d '\r')"
	expect_eq "control in query" "4 Search query is not valid UTF-8 text" \
		"$(sp_send 'localhost /search 3\r\na\nb' | head -n 1 | tr -d '\r')"
}

test_spartan_hostile() {
	sp_start 'request_timeout = 1.0;'
	local long
	long=$(head -c 1100 /dev/zero | tr '\0' a)
	while IFS='|' read -r req want; do
		expect_eq "$req" "$want" "$(sp_send "$req" | head -n 1 | tr -d '\r')"
	done <<-EOF
	localhost / abc\r\n|4 Content length is not a number
	localhost / -1\r\n|4 Content length is not a number
	localhost / 1e3\r\n|4 Content length is not a number
	localhost / 99999999999\r\n|4 Content length is not a number
	localhost / 257\r\n|4 Data block too large (at most 256 bytes here)
	localhost /search 10\r\nabc|4 Data block shorter than its content length
	localhost / 0|4 Request line must end with CRLF
	\r\n|4 Empty request: send HOST PATH CONTENT-LENGTH
	l\xc3\xa9 / 0\r\n|4 Request line is not printable ASCII
	localhost /\x00 0\r\n|4 Request line is not printable ASCII
	localhost /\x1b 0\r\n|4 Request line is not printable ASCII
	localhost  / 0\r\n|4 Request line must be HOST PATH CONTENT-LENGTH
	localhost / 0 x\r\n|4 Request line must be HOST PATH CONTENT-LENGTH
	localhost /\r\n|4 Request line must be HOST PATH CONTENT-LENGTH
	example.org / 0\r\n|4 Host not served here
	localhost:x / 0\r\n|4 Host not served here
	localhost members 0\r\n|4 Path must be absolute
	localhost /%00 0\r\n|4 Percent-encoded NUL in path
	localhost /nope 0\r\n|4 Not found
	localhost /../../etc/passwd 0\r\n|3 /etc/passwd
	localhost /members 0\r\n|3 /members/
	localhost /members/./hackney.gmi 0\r\n|3 /members/hackney.gmi
	localhost /search/page/2 0\r\n|3 /search
	localhost. / 0\r\n|2 text/gemini; charset=utf-8; lang=en
	LOCALHOST:300 / 0\r\n|2 text/gemini; charset=utf-8; lang=en
	localhost / 0\n|2 text/gemini; charset=utf-8; lang=en
	EOF
	expect_eq "line over 1024 bytes" "4 Request line longer than 1024 bytes" \
		"$(sp_send "localhost /$long 0\r\n" | head -n 1 | tr -d '\r')"
	expect_eq "no LF at all" "4 Request line longer than 1024 bytes" \
		"$(sp_send "$long$long" | head -n 1 | tr -d '\r')"
	# a client that stops short and stays silent is closed at the deadline
	# (the server's log says so; the client's timeout only keeps a hung
	# server from hanging the test)
	python3 - "$SP_PORT" >"$T/cport" <<-'PY' || fail "short body held open"
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
	print(s.getsockname()[1], flush=True)
	s.sendall(b"localhost /search 10\r\nab")
	assert s.recv(100) == b"", "a reply to a request that never ended"
	PY
	grep -q "127\.0\.0\.1:$(cat "$T/cport") spartan: .* deadline passed" "$T/k.log" ||
		fail "the short request was not closed at the deadline"
	assert_alive
	expect_eq "still serving" "2 text/gemini; charset=utf-8; lang=en" "$(sp_head /)"
	grep -q ' spartan 127\.0\.0\.1 - "localhost / 0" 2 ' "$T/k.log" ||
		fail "no access log line for a Spartan request"
}

# Every page of a 1,000-member site is reached from the home page by its links
# (the member list's pages, each council), as the Gemini and Gopher crawls do.
test_spartan_crawl_1000() {
	sc_dataset || return 1
	DATASET=$T/net.conf sp_start
	python3 "$SP_CLIENT" crawl-spartan "$SP_PORT" >"$T/crawl" || { grep FAIL "$T/crawl" | head; fail "crawl failed"; }
	sed -n 's|^page /members/\([a-z0-9-]*\)\.gmi$|\1|p' "$T/crawl" | sort >"$T/reached"
	cmp -s "$T/ids" "$T/reached" || fail "members reached: $(wc -l <"$T/reached") of $(wc -l <"$T/ids")"
	grep -q '^page /members/page/2\.gmi$' "$T/crawl" || fail "the member list's second page not reached"
	sp /search Council | head -c 9000 >"$T/s"
	[ "$(wc -c <"$T/s")" -le 8192 ] || fail "a page of results over 8 KB"
	grep -q '^=> /search/page/2?Council ' "$T/s" || fail "no next page of results"
	expect_contains "second page of results" "$(sp '/search/page/2?Council' | head -n 2)" "Search"
}

test_spartan_rate_across_workers() {
	SP_WORKERS=2 sp_start "$LIMITS_RATE"
	limits_flood spartan 40 sp_rate_one
	local served bad
	served=$(grep -c '^2 ' "$T/spartan.out" || true)
	bad=$(grep -v -E '^(2 text/gemini.*|4 Rate limit: try again in [1-9][0-9]* s)$' "$T/spartan.out" || true)
	[ -z "$bad" ] || fail "replies neither the page nor the limit: $(printf '%q' "$bad")"
	grep -q '^4 Rate limit' "$T/spartan.out" || fail "no rate limit reply"
	limits_expect spartan "$served"
	expect_eq "workers that answered" 2 \
		"$(grep -oE ' w[0-9]+ spartan 127\.0\.0\.1 ' "$T/k.log" | sort -u | wc -l)"
}
sp_rate_one() { sp_head /; }

test_spartan_proxy() {
	SP_PORT=$(free_port)
	local pp
	pp=$(free_port)
	write_conf "$T/k.conf" "spartan = { listen = [ \"127.0.0.1:$SP_PORT\" ]; proxy_listen = [ \"127.0.0.1:$pp\" ]; };"
	start_kilnet k -c "$T/k.conf"
	wait_port 127.0.0.1 "$pp" || fail "no PROXY listener"
	expect_eq "through the proxy" "2 text/gemini; charset=utf-8; lang=en" \
		"$(python3 "$SP_CLIENT" send "$pp" "PROXY TCP4 203.0.113.9 127.0.0.1 4000 $pp\r\nlocalhost / 0\r\n" | head -n 1 | tr -d '\r')"
	expect_eq "no header" "" "$(python3 "$SP_CLIENT" send "$pp" 'localhost / 0\r\n')"
	sleep 0.2
	grep -q ' spartan 203\.0\.113\.9 ' "$T/k.log" || fail "the header's address not logged"
	assert_alive
}

test_spartan_reload() {
	sp_start
	kill -HUP "$KPID"
	sleep 1.5
	expect_eq "after SIGHUP" "2 text/gemini; charset=utf-8; lang=en" "$(sp_head /)"
	assert_alive
}

# --render writes DIR/spartan/ with the pages that differ from Gemini's only;
# with Spartan off there is none, and the Gemini pages do not change.
test_spartan_render() {
	SP_PORT=$(free_port)
	write_conf "$T/k.conf" "spartan = { listen = [ \"127.0.0.1:$SP_PORT\" ]; };"
	"$KILNET" -c "$T/k.conf" --render "$T/on" >/dev/null 2>&1 || fail "--render failed"
	[ -f "$T/on/spartan/index.gmi" ] || fail "no spartan/index.gmi"
	grep -q '^=: /search ' "$T/on/spartan/index.gmi" || fail "no prompt line in spartan/index.gmi"
	[ ! -e "$T/on/spartan/members/hackney.gmi" ] || fail "a page like Gemini's written to spartan/"
	write_conf "$T/off.conf"
	"$KILNET" -c "$T/off.conf" --render "$T/off" >/dev/null 2>&1 || fail "--render failed"
	[ ! -e "$T/off/spartan" ] || fail "spartan/ written with Spartan off"
	expect_not_contains "Gemini home with Spartan off" "$(cat "$T/off/gemini/index.gmi")" "Spartan"
	diff <(grep -v Spartan "$T/on/gemini/index.gmi") "$T/off/gemini/index.gmi" >/dev/null ||
		fail "Gemini's home page differs by more than the Spartan link"
}

test_spartan_config() {
	write_conf "$T/k.conf" 'spartan = { listen = [ "127.0.0.1:x" ]; };'
	local out
	out=$("$KILNET" -t -c "$T/k.conf" 2>&1) && fail "a bad address accepted"
	expect_contains "bad address" "$out" "server.spartan.listen[0]"
	write_conf "$T/k2.conf" 'spartan = { listen = [ ]; port = 300; };'
	out=$("$KILNET" -t -c "$T/k2.conf" 2>&1) || fail "an empty listen refused: $out"
	write_conf "$T/k3.conf" 'spartan = { listn = [ ]; };'
	out=$("$KILNET" -t -c "$T/k3.conf" 2>&1) && fail "an unknown key accepted"
	expect_contains "unknown key" "$out" "listn"
}
