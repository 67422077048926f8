# tests/test_gopher.sh: Gopher requests against the real server over plain TCP (and
# TLS on the same port), one case per rule of issue 6 items 1-4 and 7: framing,
# selectors, traversal, Gopher+, search, URL: pages, caps.txt, deadlines, and the
# real clients curl and lynx. Replies are kept in files: menus end in CRLF, which
# command substitution would eat.
# needs: test_gopher_curl curl
# needs: test_gopher_lynx lynx

GOPH_COUNCILS=("Bradford Metropolitan District Council" "Bristol City Council"
	"Calderdale Council" "Hackney Council" "Kirklees Council" "Lewisham Council"
	"Newcastle City Council" "Oldham Council" "Rotherham Council"
	"South Gloucestershire Council" "Wirral Council")

# goph_start [SETTINGS...]: a server on free ports with the default dataset.
goph_start() {
	write_conf "$T/k.conf" "$@"
	start_kilnet k -c "$T/k.conf"
}

# goph_send FILE FORMAT: sends printf FORMAT (so "\0" and "\xHH" work) and writes
# the reply to FILE.
goph_send() {
	local f=$1 fmt=$2
	exec 5<>"/dev/tcp/127.0.0.1/$GOPH_PORT" || return 1
	# shellcheck disable=SC2059
	printf "$fmt" >&5
	timeout 10 cat <&5 >"$f"
	exec 5<&-
}

# goph_get FILE REQUEST: the reply to REQUEST (sent as given) in FILE.
goph_get() { gopher_raw "$2" >"$1"; }

# goph_flat FILE: the text on one line, runs of blanks, CR and LF made one space
# (documents are wrapped at 70 columns, so phrases may cross lines).
goph_flat() { tr -s ' \r\n\t' '    ' <"$1" | tr -s ' '; }

# goph_check_menu WHAT FILE: RFC 1436 menu lines: each is TYPE+DISPLAY, SELECTOR,
# HOST and a numeric PORT separated by TABs and ends in CRLF; the menu ends ".\r\n".
goph_check_menu() {
	local what=$1 f=$2 tail3
	[ -s "$f" ] || { fail "$what: empty reply"; return 1; }
	tail3=$(tail -c 3 "$f" | od -An -tx1 | tr -d ' \n')
	[ "$tail3" = 2e0d0a ] || { fail "$what: does not end with .CRLF (ends $tail3)"; return 1; }
	LC_ALL=C awk -v what="$what" '
	BEGIN { bad = 0; done = 0 }
	{
		if (done) { print what ": line " NR " after the terminator"; bad = 1; next }
		if (substr($0, length($0)) != "\r") {
			print what ": line " NR " does not end with CRLF: " $0; bad = 1; next
		}
		line = substr($0, 1, length($0) - 1)
		if (line == ".") { done = 1; next }
		if (index(line, "\r")) { print what ": line " NR " holds a CR"; bad = 1; next }
		n = split(line, f, "\t")
		if (n != 4) {
			print what ": line " NR " has " n " TAB-separated fields: " line; bad = 1; next
		}
		if (f[1] !~ /^[!-~]/) { print what ": line " NR " has no item type"; bad = 1 }
		if (f[4] !~ /^[0-9]+$/) { print what ": line " NR ": port not numeric: " f[4]; bad = 1 }
		if (f[2] ~ /[\001-\037]/ || f[3] !~ /^[A-Za-z0-9.:-]+$/) {
			print what ": line " NR ": bad selector or host"; bad = 1
		}
	}
	END { if (!done) { print what ": no terminator line"; bad = 1 }; exit bad }' "$f" ||
		{ fail "$what: malformed menu"; return 1; }
}

# goph_type FILE: the item type of the reply's first line.
goph_type() { head -c 1 "$1"; }

# goph_expect_error WHAT FILE: a well-formed menu whose first line is type 3, with a
# 1 line back to this server's root.
goph_expect_error() {
	goph_check_menu "$1" "$2"
	expect_eq "$1: first item type" 3 "$(goph_type "$2")"
	grep -q $'^1[^\t]*\t\tlocalhost\t'"$GOPH_PORT"$'\r$' "$2" ||
		{ fail "$1: no link home"; cat -A "$2"; return 1; }
}

# goph_selector FILE PATTERN: the selector of the first type-0 line whose display
# matches PATTERN.
goph_selector() {
	LC_ALL=C awk -F'\t' -v p="$2" '/^0/ && index($1, p) { print $2; exit }' "$1"
}

# --------------------------------------------------------------- menus served

test_gopher_root_exact() {
	goph_start
	mkdir -p "$T/site"
	"$KILNET" --render "$T/site" -c "$T/k.conf" >/dev/null
	[ -f "$T/site/gopher/gophermap" ] || { fail "--render wrote no gopher/gophermap"; return 1; }
	local req
	for req in $'\r\n' $'/\r\n' $'\n' $'\t+\r\n'; do
		goph_get "$T/root" "$req"
		cmp "$T/site/gopher/gophermap" "$T/root" ||
			{ fail "root menu for $(printf '%q' "$req") differs from the rendered one"; return 1; }
	done
	goph_check_menu "root" "$T/root"
	local flat
	flat=$(goph_flat "$T/root")
	expect_contains "root: introduction" "$flat" "More and more local authorities"
	grep -q $'^1[^\t]*\t/members\tlocalhost\t'"$GOPH_PORT"$'\r$' "$T/root" ||
		fail "root: no 1 item to /members"
	grep -q $'^7[^\t]*\t/search\tlocalhost\t'"$GOPH_PORT"$'\r$' "$T/root" ||
		fail "root: no 7 search item"
	grep -q $'^h[^\t]*\tURL:' "$T/root" || fail "root: no h URL: link"
	grep -q '^i' "$T/root" || fail "root: no i lines"
	expect_eq "root: member documents" 11 "$(grep -c $'^0[^\t]*\t/members/[a-z0-9-]*\\.txt\t' "$T/root")"
}

test_gopher_members_menu() {
	goph_start
	goph_get "$T/m" $'/members\r\n'
	goph_check_menu "/members" "$T/m"
	local c
	for c in "${GOPH_COUNCILS[@]}"; do
		grep -q "^0$c" "$T/m" || grep -q "^0.*$c" "$T/m" || { fail "/members: no item for $c"; return 1; }
	done
	expect_eq "/members: type 0 items" 11 \
		"$(grep -c $'^0[^\t]*\t/members/[a-z0-9-]*\\.txt\tlocalhost\t'"$GOPH_PORT"$'\r$' "$T/m")"
	# Clients spell the same selector differently: all land on the same menu.
	local req
	for req in $'members\r\n' $'/members/\r\n' $'/%6dembers\r\n' $'//members\r\n' \
	    $'/members/./\r\n' $'/members/../members\r\n' $'/x/../../members\r\n'; do
		goph_get "$T/m2" "$req"
		cmp "$T/m" "$T/m2" || { fail "$(printf '%q' "$req") is not the member menu"; return 1; }
	done
}

test_gopher_member_documents() {
	goph_start
	goph_get "$T/m" $'/members\r\n'
	local sels sel n=0 width
	sels=$(LC_ALL=C awk -F'\t' '/^0/ && $2 ~ /^\/members\// { print $2 }' "$T/m")
	for sel in $sels; do
		goph_get "$T/doc" "$sel"$'\r\n'
		[ -s "$T/doc" ] || { fail "$sel: empty"; return 1; }
		[ "$(goph_type "$T/doc")" != 3 ] || { fail "$sel: error reply"; head -n 2 "$T/doc"; return 1; }
		[ "$(tail -c 3 "$T/doc" | od -An -tx1 | tr -d ' \n')" = 2e0d0a ] ||
			{ fail "$sel: does not end with .CRLF"; return 1; }
		width=$(tr -d '\r' <"$T/doc" | LC_ALL=C.UTF-8 wc -L)
		[ "$width" -le 70 ] || { fail "$sel: a line is $width columns wide"; return 1; }
		n=$((n + 1))
	done
	expect_eq "member documents served" 11 "$n"
	sel=$(goph_selector "$T/m" Hackney)
	goph_get "$T/doc" "$sel"$'\r\n'
	expect_contains "Hackney document" "$(goph_flat "$T/doc")" "fairer, safer and more sustainable Hackney"
	expect_contains "Hackney document" "$(goph_flat "$T/doc")" "Philip Glanville"
}

test_gopher_public_hostname() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf" --hostname gopher.example.net
	goph_get "$T/root" $'\r\n'
	goph_check_menu "root" "$T/root"
	grep -q $'^1[^\t]*\t/members\tgopher.example.net\t'"$GOPH_PORT"$'\r$' "$T/root" ||
		fail "menu lines do not carry the public hostname"
	goph_get "$T/e" $'/nothing\r\n'
	grep -q $'^1[^\t]*\t\tgopher.example.net\t'"$GOPH_PORT"$'\r$' "$T/e" ||
		fail "error menu: home link not on the public hostname"
}

test_gopher_caps() {
	goph_start
	goph_get "$T/caps" $'caps.txt\r\n'
	expect_eq "caps.txt first line" CAPS "$(head -n 1 "$T/caps" | tr -d '\r')"
	local body
	body=$(tr -d '\r' <"$T/caps")
	expect_contains "caps.txt" "$body" "CapsVersion=1"
	expect_contains "caps.txt" "$body" "PathDelimeter=/"
	expect_contains "caps.txt" "$body" "ServerSoftware=kilnet"
	expect_contains "caps.txt" "$(printf '%s' "$body" | tr a-z A-Z)" "UTF-8"
	goph_get "$T/caps2" $'/caps.txt\r\n'
	cmp "$T/caps" "$T/caps2" || fail "/caps.txt differs from caps.txt"
}

# ------------------------------------------------------------------- search

test_gopher_search() {
	goph_start
	goph_get "$T/s" $'/search\thackney\r\n'
	goph_check_menu "search hackney" "$T/s"
	[ "$(goph_type "$T/s")" != 3 ] || { fail "search: error reply"; return 1; }
	grep -q $'^[01][^\t]*Hackney Council[^\t]*\t/members/hackney\\.txt\tlocalhost\t'"$GOPH_PORT" "$T/s" ||
		{ fail "search hackney: no item for Hackney Council"; cat "$T/s"; return 1; }
	grep -qi '^i.*hackney' "$T/s" || fail "search hackney: no matching sentence as i line"
	grep -q 'Wirral' "$T/s" && fail "search hackney: lists Wirral"
	# case-insensitive, UTF-8 query, and one matching nothing: still menus
	goph_get "$T/s2" $'/search\tHACKNEY\r\n'
	grep -q 'Hackney Council' "$T/s2" || fail "search HACKNEY: no Hackney"
	goph_get "$T/s3" $'/search\tzzqxzzqx\r\n'
	goph_check_menu "search nothing" "$T/s3"
	grep -q 'Council' "$T/s3" && fail "search zzqxzzqx lists a council"
	goph_get "$T/s4" $'/search\t\xe2\x80\x98local by default\xe2\x80\x99\r\n'
	goph_check_menu "search UTF-8" "$T/s4"
	grep -q 'Hackney Council' "$T/s4" || fail "search ‘local by default’: no Hackney"
	goph_get "$T/s5" $'/search\tcommunity strategy\n'
	goph_check_menu "search with a space" "$T/s5"
}

test_gopher_search_empty() {
	goph_start
	local req
	for req in $'/search\r\n' $'/search\t\r\n' $'/search\t   \r\n' $'/search\t+\r\n' $'/search\t\t+\r\n'; do
		goph_get "$T/h" "$req"
		goph_check_menu "$(printf '%q' "$req")" "$T/h"
		[ "$(goph_type "$T/h")" != 3 ] || { fail "$(printf '%q' "$req"): error instead of a hint"; return 1; }
		grep -q $'^7[^\t]*\t/search\tlocalhost\t'"$GOPH_PORT"$'\r$' "$T/h" ||
			{ fail "$(printf '%q' "$req"): hint has no 7 item"; return 1; }
		grep -q $'^1[^\t]*\t\tlocalhost\t'"$GOPH_PORT"$'\r$' "$T/h" ||
			{ fail "$(printf '%q' "$req"): hint has no link home"; return 1; }
		grep -q '^i' "$T/h" || { fail "hint without text"; return 1; }
	done
}

test_gopher_search_bad_query() {
	goph_start
	goph_send "$T/e" '/search\thack\001ney\r\n'
	goph_expect_error "control byte in query" "$T/e"
	goph_send "$T/e" '/search\t\377\376\r\n'
	goph_expect_error "invalid UTF-8 in query" "$T/e"
}

# --------------------------------------------------------------------- URL:

test_gopher_url_page() {
	goph_start
	goph_get "$T/u" $'URL:https://example.org/?a=<b>&c\r\n'
	local page
	page=$(cat "$T/u")
	expect_contains "URL: page" "$page" "<!DOCTYPE html>"
	expect_contains "URL: page" "$page" 'http-equiv="refresh"'
	expect_contains "URL: page" "$page" 'url=https://example.org/?a=&lt;b&gt;&amp;c"'
	expect_contains "URL: page" "$page" 'href="https://example.org/?a=&lt;b&gt;&amp;c"'
	expect_not_contains "URL: page" "$page" "<b>"
	expect_not_contains "URL: page" "$page" "&c\""
	[ "$(tail -c 3 "$T/u" | od -An -tx1 | tr -d ' \n')" != 2e0d0a ] || fail "URL: page ends with a terminator line"
	goph_get "$T/u" $'URL:gemini://localhost/"\'><script>\r\n'
	page=$(cat "$T/u")
	expect_contains "URL: quotes" "$page" "&quot;&#39;&gt;&lt;script&gt;"
	expect_not_contains "URL: quotes" "$page" "<script>"
	goph_get "$T/u" $'URL:https://example.org/\t+\r\n'
	expect_contains "URL: with Gopher+" "$(cat "$T/u")" 'href="https://example.org/"'
	local bad
	for bad in 'javascript:alert(1)' 'JavaScript:alert(1)' 'data:text/html,<script>x</script>' '' 'no-scheme'; do
		goph_get "$T/e" "URL:$bad"$'\r\n'
		goph_expect_error "URL:$bad" "$T/e"
		expect_not_contains "URL:$bad" "$(cat "$T/e")" "<script>"
	done
	goph_send "$T/e" 'URL:https://example.org/\001x\r\n'
	goph_expect_error "URL: with a control byte" "$T/e"
}

# ------------------------------------------------------ errors and traversal

test_gopher_not_found() {
	goph_start
	goph_get "$T/e" $'/nothing\r\n'
	goph_expect_error "/nothing" "$T/e"
	expect_eq "/nothing: first line" $'3\'/nothing\' does not exist\t\terror.host\t1\r' "$(head -n 1 "$T/e")"
	# the echoed selector is cut short and cleaned of controls
	goph_get "$T/e" "/$(printf 'x%.0s' $(seq 1 1000))"$'\r\n'
	goph_expect_error "long missing selector" "$T/e"
	[ "$(head -n 1 "$T/e" | wc -c)" -lt 200 ] || fail "long selector echoed in full"
	goph_send "$T/e" '/a\rb\033[31m\r\n'
	goph_expect_error "CR and ESC in selector" "$T/e"
	[ "$(head -n 1 "$T/e" | LC_ALL=C tr -d '\t\r' | LC_ALL=C tr -d ' -~' | wc -c)" = 1 ] ||
		{ fail "control bytes echoed"; cat -A "$T/e"; }
	goph_get "$T/e" $'/Members\r\n'
	goph_expect_error "selectors are case-sensitive" "$T/e"
}

test_gopher_traversal() {
	goph_start
	local req
	for req in '/../../etc/passwd' '%2e%2e/%2e%2e/etc/passwd' '..\..\etc\passwd' \
	    '/members/../../../etc/passwd' '/members/%2e%2e/%2e%2e/%2e%2e/etc/passwd' \
	    '%2e%2e%2f%2e%2e%2fetc%2fpasswd' '/..%5c..%5cetc%5cpasswd' '/%252e%252e/etc/passwd' \
	    '../../../../../../../../etc/passwd' '/etc/passwd' '/../conf/kilnet.conf' \
	    '/../src/kilnet.h' '%2e%2e/%2e%2e/../Makefile'; do
		goph_get "$T/t" "$req"$'\r\n'
		goph_expect_error "$req" "$T/t"
		expect_not_contains "$req" "$(cat "$T/t")" "root:"
		expect_not_contains "$req" "$(cat "$T/t")" "server = {"
		expect_not_contains "$req" "$(cat "$T/t")" "#ifndef"
	done
	# dot segments that stay inside the site resolve to its pages
	goph_get "$T/a" $'/members\r\n'
	goph_get "$T/b" $'/../members/../members\r\n'
	cmp "$T/a" "$T/b" || fail "/../members/../members is not the member menu"
	goph_get "$T/b" $'/%2e%2e/members\r\n'
	cmp "$T/a" "$T/b" || fail "/%2e%2e/members is not the member menu"
}

test_gopher_bad_bytes() {
	goph_start
	goph_send "$T/e" '/mem\0bers\r\n'
	goph_expect_error "NUL in selector" "$T/e"
	goph_send "$T/e" '/mem%%00bers\r\n'
	goph_expect_error "%%00 in selector" "$T/e"
	goph_send "$T/e" '/mem\001bers\r\n'
	goph_expect_error "0x01 in selector" "$T/e"
	goph_send "$T/e" '/members\177\r\n'
	goph_expect_error "DEL in selector" "$T/e"
	goph_send "$T/e" '/members\033\r\n'
	goph_expect_error "ESC in selector" "$T/e"
	goph_send "$T/e" '/\377\376\r\n'
	goph_expect_error "invalid UTF-8" "$T/e"
	goph_send "$T/e" '/%%ff\r\n'
	goph_expect_error "%%ff decodes to invalid UTF-8" "$T/e"
	goph_send "$T/e" '/members%%0a\r\n'
	goph_expect_error "%%0a decodes to LF" "$T/e"
	goph_send "$T/e" '/members\r\r\n'
	goph_expect_error "two CRs" "$T/e"
	assert_alive
}

test_gopher_overlong() {
	goph_start
	local long
	long=$(head -c 3000 /dev/zero | tr '\0' a)
	goph_get "$T/e" "/$long"$'\r\n'
	goph_expect_error "3000-byte selector" "$T/e"
	grep -qi 'too long' "$T/e" || fail "3000-byte selector: not said to be too long"
	assert_alive
	goph_get "$T/e" "/${long:0:1500}"$'\r\n'
	goph_expect_error "1500-byte selector" "$T/e"
	grep -qi 'too long' "$T/e" || fail "1500-byte selector: not said to be too long"
	# the limit is the selector: 1024 bytes is allowed (and missing)
	goph_get "$T/e" "/${long:0:1023}"$'\r\n'
	goph_expect_error "1024-byte selector" "$T/e"
	grep -qi 'too long' "$T/e" && fail "1024-byte selector said to be too long"
	goph_get "$T/m" $'/members\r\n'
	goph_check_menu "after overlong requests" "$T/m"
	assert_alive
}

# ------------------------------------------------------------ framing, Gopher+

test_gopher_line_endings() {
	goph_start
	goph_get "$T/crlf" $'/members\r\n'
	goph_get "$T/lf" $'/members\n'
	cmp "$T/crlf" "$T/lf" || fail "lone LF not accepted"
	# A client that closes its side after the selector, without a line end (perl:
	# bash cannot half-close a socket).
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die "$!\n";
		print $s "/members"; shutdown($s, 1);
		local $/; print scalar <$s>;' "$GOPH_PORT" >"$T/closed"
	cmp "$T/crlf" "$T/closed" || fail "selector without line end before close not served"
}

test_gopher_plus() {
	goph_start
	goph_get "$T/plain" $'/members\r\n'
	local req
	for req in $'/members\t+\r\n' $'/members\t$\r\n' $'/members\t!\r\n' $'/members\t+text/plain\r\n'; do
		goph_get "$T/plus" "$req"
		cmp "$T/plain" "$T/plus" || { fail "$(printf '%q' "$req") is not the plain reply"; return 1; }
	done
	goph_get "$T/plain" $'/search\thackney\r\n'
	goph_get "$T/plus" $'/search\thackney\t+\r\n'
	cmp "$T/plain" "$T/plus" || fail "search with Gopher+ suffix differs"
	goph_get "$T/plain" $'\r\n'
	goph_get "$T/plus" $'\t$\r\n'
	cmp "$T/plain" "$T/plus" || fail "root with \$ differs"
}

# --------------------------------------------------- TLS, deadlines (server.c)

test_gopher_tls() {
	goph_start
	"$TESTBIN/gemget" --sni localhost 127.0.0.1 "$GOPH_PORT" '/members' >"$T/m" ||
		{ fail "gemget over TLS on the Gopher port exited $?"; return 1; }
	goph_check_menu "/members over TLS" "$T/m"
	goph_get "$T/plain" $'/members\r\n'
	cmp "$T/plain" "$T/m" || fail "/members over TLS differs from plain"
	"$TESTBIN/gemget" --sni localhost 127.0.0.1 "$GOPH_PORT" '' >"$T/r"
	goph_check_menu "root over TLS" "$T/r"
	# and plain still works after TLS clients
	goph_get "$T/plain2" $'/members\r\n'
	cmp "$T/plain" "$T/plain2" || fail "plain after TLS differs"
}

# now in milliseconds
goph_ms() { date +%s%3N; }

test_gopher_idle_client() {
	goph_start 'request_timeout = 1.0;'
	local t0 t1
	exec 6<>"/dev/tcp/127.0.0.1/$GOPH_PORT"
	t0=$(goph_ms)
	# a normal request is answered while the idle one waits
	goph_get "$T/m" $'/members\r\n'
	goph_check_menu "/members beside an idle client" "$T/m"
	timeout 10 cat <&6 >/dev/null || true
	t1=$(goph_ms)
	exec 6<&-
	echo "idle connection closed after $((t1 - t0)) ms"
	[ $((t1 - t0)) -lt 4000 ] || fail "idle client not closed on time ($((t1 - t0)) ms)"
	[ $((t1 - t0)) -ge 500 ] || fail "idle client closed too soon ($((t1 - t0)) ms)"
}

test_gopher_slow_client() {
	goph_start 'request_timeout = 1.0;'
	local t0 t1
	t0=$(goph_ms)
	"$TESTBIN/gemget" --plain --slow 500 --timeout 15 127.0.0.1 "$GOPH_PORT" \
		'/members/hackney.txt-and-then-some-more' >"$T/slow" 2>&1 || true
	t1=$(goph_ms)
	echo "slow client cut after $((t1 - t0)) ms"
	[ $((t1 - t0)) -lt 5000 ] || fail "slow client not cut ($((t1 - t0)) ms)"
	goph_get "$T/m" $'/members\r\n'
	goph_check_menu "/members after a slow client" "$T/m"
}

# ------------------------------------------------------------- real clients

test_gopher_curl() {
	goph_start
	curl -s --max-time 10 "gopher://127.0.0.1:$GOPH_PORT/1/members" >"$T/m"
	local c
	for c in "${GOPH_COUNCILS[@]}"; do
		grep -q "$c" "$T/m" || { fail "curl /1/members: no $c"; return 1; }
	done
	curl -s --max-time 10 "gopher://127.0.0.1:$GOPH_PORT/0/members/hackney.txt" >"$T/d"
	expect_contains "curl member document" "$(goph_flat "$T/d")" "fairer, safer and more sustainable Hackney"
	curl -s --max-time 10 "gopher://127.0.0.1:$GOPH_PORT/" >"$T/r"
	expect_contains "curl root" "$(goph_flat "$T/r")" "More and more local authorities"
	curl -s --max-time 10 "gopher://127.0.0.1:$GOPH_PORT/7/search%09hackney" >"$T/s"
	grep -q 'Hackney Council' "$T/s" || fail "curl search: no Hackney Council"
}

test_gopher_lynx() {
	goph_start
	local out
	out=$(HOME=$T lynx -dump -nostatus "gopher://127.0.0.1:$GOPH_PORT/" 2>&1)
	printf '%s\n' "$out" >"$T/lynx-root"
	expect_contains "lynx root: introduction" "$(printf '%s' "$out" | tr -s ' \n' '  ')" \
		"More and more local authorities are moving away"
	expect_contains "lynx root: member list link" "$out" "gopher://localhost:$GOPH_PORT/1/members"
	expect_contains "lynx root: search link" "$out" "gopher://localhost:$GOPH_PORT/7/search"
	expect_contains "lynx root: member document link" "$out" "gopher://localhost:$GOPH_PORT/0/members/hackney.txt"
	expect_contains "lynx root: council shown" "$out" "Hackney Council"
	out=$(HOME=$T lynx -dump -nostatus "gopher://127.0.0.1:$GOPH_PORT/0/members/hackney.txt" 2>&1)
	expect_contains "lynx member document" "$(printf '%s' "$out" | tr -s ' \n' '  ')" \
		"fairer, safer and more sustainable Hackney"
}
