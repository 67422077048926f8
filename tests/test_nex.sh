# tests/test_nex.sh: the Nex front end (issue 23 items 2, 3 and 4) over real
# sockets, with the project's own client (tests/lightnet.py) and curl: the home
# page and the member list are directories (text wrapped at 70 columns, "=> "
# links), councils and joining are the Gopher text documents, capsule files are
# sent as they are; hostile paths get a line of text or a close while the
# server keeps serving; a 1,000-member site is crawled by its links, the rate
# limit holds across two workers, and PROXY, reload and --render work.
# needs: test_nex_* python3
# needs: test_nex_curl curl

NX_CLIENT=$ROOT/tests/lightnet.py

nx_start() {
	NX_PORT=$(free_port)
	write_conf "$T/k.conf" "nex = { listen = [ \"127.0.0.1:$NX_PORT\" ]; };" "$@"
	start_kilnet k -c "$T/k.conf" ${NX_WORKERS:+--workers "$NX_WORKERS"}
	wait_port 127.0.0.1 "$NX_PORT" || fail "no Nex listener"
}
nx() { python3 "$NX_CLIENT" nex "$NX_PORT" "$1"; }
nx_send() { python3 "$NX_CLIENT" send "$NX_PORT" "$1"; }

# nx_wrapped WHAT FILE: every line but links holds at most 70 code points.
nx_wrapped() {
	local long
	long=$(grep -v '^=> ' "$2" | LC_ALL=C.UTF-8 awk 'length($0) > 70' | head -n 3)
	[ -z "$long" ] || fail "$1: lines over 70 columns: $long"
}

test_nex_home() {
	nx_start
	nx "" >"$T/home"
	cmp -s "$T/home" <(nx /) || fail "the empty path is not the home page"
	local body
	body=$(cat "$T/home")
	expect_contains "title" "$body" "Keep it Local Network"
	expect_contains "quote" "$body" "> We’re embedding the Keep it Local principles"
	expect_contains "member link" "$body" "=> /members/hackney.txt Hackney Council"
	expect_contains "join link" "$body" "=> /join.txt "
	expect_contains "member list" "$body" "=> /members/ All member councils"
	expect_contains "Gemini" "$body" "=> gemini://localhost:$GEM_PORT/ The same site over Gemini"
	expect_contains "Gopher" "$body" "=> gopher://localhost:$GOPH_PORT/1/ The same site over Gopher"
	expect_not_contains "no search" "$body" "search"
	expect_not_contains "no CR" "$body" $'\r'
	nx_wrapped home "$T/home"
	nx /members/ >"$T/members"
	nx_wrapped members "$T/members"
	expect_contains "member list links" "$(cat "$T/members")" "=> /members/wirral.txt "
	expect_contains "Gemini home links Nex" "$(gemini "gemini://localhost:$GEM_PORT/")" \
		"=> nex://localhost:$NX_PORT/ The same site over Nex"
}

# A council's document is the Gopher one, without Gopher's framing.
test_nex_documents() {
	nx_start
	local p
	for p in /members/hackney.txt /join.txt; do
		nx "$p" >"$T/nex"
		gopher_raw "$p"$'\r\n' | tr -d '\r' | sed '$d' >"$T/goph"
		cmp -s "$T/nex" "$T/goph" || fail "$p is not Gopher's document"
	done
	nx /robots.txt >"$T/robots"
	cmp -s "$T/robots" "$ROOT/capsule/robots.txt" || fail "robots.txt not as it is"
	nx /about.gmi >"$T/about"
	cmp -s "$T/about" "$ROOT/capsule/about.gmi" || fail "about.gmi not as it is"
	expect_eq "a folder without its slash" "$(nx /members/)" "$(nx /members)"
}

test_nex_curl() {
	nx_start
	curl -s "gopher://127.0.0.1:$NX_PORT/0/members/hackney.txt" >"$T/c" || fail "curl failed"
	cmp -s "$T/c" <(nx /members/hackney.txt) || fail "curl read another page"
	expect_contains "curl" "$(head -n 1 "$T/c")" "Hackney Council"
}

test_nex_hostile() {
	nx_start 'request_timeout = 1.0;'
	local long
	long=$(head -c 1100 /dev/zero | tr '\0' a)
	while IFS='|' read -r req want; do
		expect_eq "$req" "$want" "$(nx_send "$req" | head -n 1)"
	done <<-EOF
	/../../../etc/passwd\n|Not found. The home page is at /.
	/%2e%2e/%2e%2e/etc/passwd\n|Not found. The home page is at /.
	/nope\n|Not found. The home page is at /.
	/%00\n|Bad request: send a path and a newline.
	/\x1b[2J\n|Bad request: send a path and a newline.
	/members/../join.txt\n|Become a Keep it Local Council
	/join.txt|Become a Keep it Local Council
	/join.txt\r\n|Become a Keep it Local Council
	EOF
	expect_eq "long path" "Bad request: the path is longer than 1024 bytes." \
		"$(nx_send "/$long\n" | head -n 1)"
	expect_eq "no LF at all" "Bad request: the path is longer than 1024 bytes." \
		"$(nx_send "$long$long" | head -n 1)"
	expect_eq "binary" "Bad request: send a path and a newline." \
		"$(nx_send '\x16\x03\x01\x00\x05hello\n' | head -n 1)"
	# silent: closed by the server at its deadline (its log says so; the
	# client's timeout only keeps a hung server from hanging the test)
	python3 - "$NX_PORT" >"$T/cport" <<-'PY' || fail "silent client held open"
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
	print(s.getsockname()[1])
	assert s.recv(100) == b""
	PY
	grep -q "127\.0\.0\.1:$(cat "$T/cport") nex: first byte deadline passed" "$T/k.log" ||
		fail "the silent client was not closed at the deadline"
	assert_alive
	expect_contains "still serving" "$(nx /)" "Keep it Local Network"
	grep -q ' nex 127\.0\.0\.1 - "/" 0 ' "$T/k.log" || fail "no access log line for a Nex request"
}

test_nex_crawl_1000() {
	sc_dataset || return 1
	DATASET=$T/net.conf nx_start
	python3 "$NX_CLIENT" crawl-nex "$NX_PORT" >"$T/crawl" || { grep FAIL "$T/crawl" | head; fail "crawl failed"; }
	sed -n 's|^page /members/\([a-z0-9-]*\)\.txt$|\1|p' "$T/crawl" | sort >"$T/reached"
	cmp -s "$T/ids" "$T/reached" || fail "members reached: $(wc -l <"$T/reached") of $(wc -l <"$T/ids")"
	grep -q '^page /members/page/2/$' "$T/crawl" || fail "the member list's second page not reached"
	nx /members/page/2/ >"$T/p2"
	[ "$(wc -c <"$T/p2")" -le 8192 ] || fail "a page of the member list over 8 KB"
	nx_wrapped "page 2" "$T/p2"
	nx / >"$T/home"
	[ "$(wc -c <"$T/home")" -le 2048 ] || fail "the home page over 2 KB"
}

test_nex_rate_across_workers() {
	NX_WORKERS=2 nx_start "$LIMITS_RATE"
	limits_flood nex 40 nx_rate_one
	local served
	served=$(grep -c '^page$' "$T/nex.out" || true)
	grep -q '^(no reply)$' "$T/nex.out" || fail "no connection closed over the rate"
	[ -z "$(grep -v -E '^(page|\(no reply\))$' "$T/nex.out")" ] || fail "replies neither the page nor a close"
	limits_expect nex "$served"
	expect_eq "workers that answered" 2 \
		"$(grep -oE ' w[0-9]+ nex 127\.0\.0\.1 ' "$T/k.log" | sort -u | wc -l)"
}
nx_rate_one() { [[ $(nx /) == *"Keep it Local"* ]] && echo page; true; }

test_nex_proxy() {
	NX_PORT=$(free_port)
	local pp
	pp=$(free_port)
	write_conf "$T/k.conf" "nex = { listen = [ \"127.0.0.1:$NX_PORT\" ]; proxy_listen = [ \"127.0.0.1:$pp\" ]; };"
	start_kilnet k -c "$T/k.conf"
	wait_port 127.0.0.1 "$pp" || fail "no PROXY listener"
	expect_contains "through the proxy" \
		"$(python3 "$NX_CLIENT" send "$pp" "PROXY TCP4 203.0.113.8 127.0.0.1 4000 $pp\r\n/join.txt\n")" \
		"Become a Keep it Local Council"
	expect_eq "no header" "" "$(python3 "$NX_CLIENT" send "$pp" '/join.txt\n')"
	sleep 0.2
	grep -q ' nex 203\.0\.113\.8 ' "$T/k.log" || fail "the header's address not logged"
	assert_alive
}

test_nex_reload() {
	nx_start
	kill -HUP "$KPID"
	sleep 1.5
	expect_contains "after SIGHUP" "$(nx /)" "Keep it Local Network"
	assert_alive
}

test_nex_render() {
	NX_PORT=$(free_port)
	write_conf "$T/k.conf" "nex = { listen = [ \"127.0.0.1:$NX_PORT\" ]; };"
	"$KILNET" -c "$T/k.conf" --render "$T/on" >/dev/null 2>&1 || fail "--render failed"
	local f
	for f in index members/index members/hackney.txt join.txt robots.txt; do
		[ -f "$T/on/nex/$f" ] || fail "no nex/$f"
	done
	grep -q '^=> /members/hackney.txt ' "$T/on/nex/index" || fail "nex/index has no member link"
	write_conf "$T/off.conf"
	"$KILNET" -c "$T/off.conf" --render "$T/off" >/dev/null 2>&1 || fail "--render failed"
	[ ! -e "$T/off/nex" ] || fail "nex/ written with Nex off"
}
