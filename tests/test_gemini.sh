# tests/test_gemini.sh: Gemini requests against the real server over TLS, one case
# per rule of issue 5 item 3 (framing, URL checks, 53s, redirects, not found,
# traversal) and item 5 (search). Each case checks the exact status line.

GEMT_HOME_HEADER='20 text/gemini; charset=utf-8; lang=en'

# gemt_start [SETTINGS...]: a server on free ports with the default dataset; sets B,
# the base URL of the site.
gemt_start() {
	write_conf "$T/k.conf" "$@"
	start_kilnet k -c "$T/k.conf"
	B="gemini://localhost:$GEM_PORT"
}

# gemt_status REQUEST [gemget options]: the response's header line without CRLF.
# Fails when gemget does (no close_notify, connection error).
gemt_status() {
	local out
	out=$(gemini "$@") || { echo "FAIL: gemget exited $? for $(printf '%q' "$1")"; return 1; }
	printf '%s\n' "$out" | head -n 1 | tr -d '\r'
}

# gemt_expect WHAT EXPECTED-HEADER REQUEST [gemget options]
gemt_expect() {
	local what=$1 want=$2 got
	shift 2
	got=$(gemt_status "$@")
	expect_eq "$what" "$want" "$got"
}

# gemt_expect_status WHAT NN REQUEST: only the two-digit status is checked.
gemt_expect_status() {
	local what=$1 want=$2 got
	shift 2
	got=$(gemt_status "$@")
	expect_eq "$what" "$want" "${got:0:2}"
}

# gemt_never_leaks REQUEST: the answer is only ever 31, 51 or 59, redirects on this
# server (followed) end in 51, 59 or the home page, and nothing holds a line of
# /etc/passwd.
gemt_never_leaks() {
	local req=$1 out head i
	for i in 1 2 3 4 5; do
		out=$(gemini "$req") || { echo "FAIL: gemget failed for $req"; return 1; }
		expect_not_contains "$req leaks /etc/passwd" "$out" "root:"
		head=$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')
		case $head in
		"31 $B/"*) req=${head#31 } ;;
		51\ *|59\ *) return 0 ;;
		*)
			if [ "$head" = "$GEMT_HOME_HEADER" ] && [ "$req" != "$1" ] &&
			    [ "$req" = "$B/" ]; then
				return 0
			fi
			fail "$req answered $(printf '%q' "$head")"; return 1 ;;
		esac
	done
	fail "$1: redirect loop"
}

# --------------------------------------------------------------- pages served

test_gemini_home() {
	gemt_start
	local out
	out=$(gemini "$B/")
	expect_eq "home header" "$GEMT_HOME_HEADER"$'\r' "$(printf '%s\n' "$out" | head -n 1)"
	expect_contains "home names the network" "$out" "Keep it Local"
}

test_gemini_member_pages() {
	gemt_start
	local list ids id n=0 out
	list=$(gemini "$B/members/")
	expect_eq "members header" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$list" | head -n 1 | tr -d '\r')"
	ids=$(printf '%s\n' "$list" | grep '^=>' | grep -o 'members/[a-z0-9-]*\.gmi' | sort -u |
		sed 's|members/||; s|\.gmi$||')
	for id in $ids; do
		out=$(gemini "$B/members/$id.gmi")
		expect_eq "member $id" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
		[ "$(printf '%s\n' "$out" | wc -l)" -gt 3 ] || fail "member $id: page too short"
		n=$((n + 1))
	done
	expect_eq "member pages linked from /members/" 11 "$n"
}

test_gemini_join() {
	gemt_start
	gemt_expect "join page" "$GEMT_HOME_HEADER" "$B/join.gmi"
}

test_gemini_robots_txt() {
	gemt_start
	local out
	out=$(gemini "$B/robots.txt")
	expect_eq "robots.txt header" "20 text/plain" \
		"$(printf '%s\n' "$out" | head -n 1 | tr -d '\r' | cut -d';' -f1)"
	expect_contains "robots.txt body" "$out" "User-agent"
}

test_gemini_not_found() {
	gemt_start
	gemt_expect "unknown page" "51 Not found" "$B/no-such-page.gmi"
	gemt_expect "unknown member" "51 Not found" "$B/members/nowhere.gmi"
}

# A query reaches only a search endpoint: elsewhere it is ignored.
test_gemini_query_ignored() {
	gemt_start
	gemt_expect "home with a query" "$GEMT_HOME_HEADER" "$B/?hackney"
	gemt_expect "join with a query" "$GEMT_HOME_HEADER" "$B/join.gmi?x=1"
}

# Scheme and host are case-insensitive; a trailing dot names the same host.
test_gemini_case_and_dot() {
	gemt_start
	gemt_expect "upper-case scheme" "$GEMT_HOME_HEADER" "GEMINI://localhost:$GEM_PORT/"
	gemt_expect "upper-case host" "$GEMT_HOME_HEADER" "gemini://LocalHost:$GEM_PORT/"
	gemt_expect "trailing dot" "$GEMT_HOME_HEADER" "gemini://localhost.:$GEM_PORT/"
}

# ------------------------------------------------------------------ redirects

test_gemini_empty_path() {
	gemt_start
	gemt_expect "no path" "31 $B/" "$B"
	gemt_expect "no path, a query" "31 $B/?x" "$B?x"
}

test_gemini_folder_without_slash() {
	gemt_start
	gemt_expect "/members" "31 $B/members/" "$B/members"
}

test_gemini_empty_segments() {
	gemt_start
	gemt_expect "double slash" "31 $B/members/bradford.gmi" "$B/members//bradford.gmi"
	gemt_expect "leading double slash" "31 $B/join.gmi" "$B//join.gmi"
}

test_gemini_dot_segments() {
	gemt_start
	gemt_expect "/a/../join.gmi" "31 $B/join.gmi" "$B/a/../join.gmi"
	gemt_expect "/./join.gmi" "31 $B/join.gmi" "$B/./join.gmi"
	gemt_expect "/members/." "31 $B/members/" "$B/members/."
	gemt_expect "query kept" "31 $B/search?hackney" "$B/x/../search?hackney"
}

# The redirect's META would exceed 1024 bytes once the path is percent-encoded.
test_gemini_long_redirect() {
	gemt_start
	local url
	url="$B/$(printf '\xc3\xa9%.0s' $(seq 1 300))/."
	gemt_expect "redirect too long" "59 Redirect URL would be longer than 1024 bytes" "$url"
}

# Decoding happens once: %2e is a '.', %2f a '/' once decoded, %252e a literal "%2e".
test_gemini_percent_decoding() {
	gemt_start
	gemt_expect "%2e in a name" "$GEMT_HOME_HEADER" "$B/join%2egmi"
	gemt_expect "%2f between segments" "$GEMT_HOME_HEADER" "$B/members%2f"
	gemt_expect "%2e%2e resolved" "31 $B/join.gmi" "$B/members/%2e%2e/join.gmi"
	gemt_expect "decoded once" "51 Not found" "$B/join%252egmi"
	gemt_expect "decoded NUL" "59 Percent-encoded NUL in path" "$B/join.gmi%00"
}

test_gemini_traversal() {
	gemt_start
	local r
	for r in "/../" "/../../../../etc/passwd" "/%2e%2e/" "/%2e%2e/%2e%2e/etc/passwd" \
		"/..%2f..%2fetc/passwd" "/%2f..%2f..%2fetc%2fpasswd" "/%2F%2E%2E%2Fetc%2Fpasswd" \
		"/capsule/../../etc/passwd" "/members/../../../etc/passwd" \
		"/..\\\\..\\\\etc\\\\passwd" "/%2e%2e%5c%2e%2e%5cetc%5cpasswd" "/.%2e/.%2e/etc/passwd" \
		"/robots.txt/../../../../etc/passwd" "/%252e%252e/etc/passwd"; do
		gemt_never_leaks "$B$r"
	done
	gemt_expect "../ stays at the root" "31 $B/" "$B/../"
	gemt_expect "..%2f..%2f resolved" "31 $B/etc/passwd" "$B/..%2f..%2fetc/passwd"
	gemt_expect "and not served" "51 Not found" "$B/etc/passwd"
}

# A symlink in the capsule folder that leads out of it is not served.
test_gemini_capsule_symlink() {
	mkdir -p "$T/cap/sub"
	printf 'hello\n' >"$T/cap/hello.txt"
	printf 'inside\n' >"$T/cap/sub/in.txt"
	ln -s /etc/passwd "$T/cap/passwd.txt"
	ln -s /etc "$T/cap/etc"
	ln -s ../../../../../../etc/passwd "$T/cap/sub/up.txt"
	CAPSULE=$T/cap gemt_start
	local out
	out=$(gemini "$B/hello.txt")
	expect_eq "a plain capsule file" "20 text/plain" \
		"$(printf '%s\n' "$out" | head -n 1 | tr -d '\r' | cut -d';' -f1)"
	expect_contains "its body" "$out" "hello"
	gemt_expect "symlink to /etc/passwd" "51 Not found" "$B/passwd.txt"
	gemt_expect "symlinked folder" "51 Not found" "$B/etc/passwd"
	gemt_expect "relative symlink up" "51 Not found" "$B/sub/up.txt"
	gemt_never_leaks "$B/sub/../passwd.txt"
}

# ------------------------------------------------------------------- search

test_gemini_search_prompt() {
	gemt_start
	gemt_expect "/search" "10 Search the network's members" "$B/search"
	gemt_expect "/search?" "10 Search the network's members" "$B/search?"
}

test_gemini_search_results() {
	gemt_start
	local out
	out=$(gemini "$B/search?hackney")
	expect_eq "results header" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
	expect_contains "hackney found" "$out" "Hackney"
	expect_contains "with a link" "$out" "members/hackney"
}

test_gemini_search_case_insensitive() {
	gemt_start
	local out
	out=$(gemini "$B/search?HACKNEY")
	expect_eq "results header" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
	expect_contains "HACKNEY finds Hackney" "$out" "Hackney"
}

test_gemini_search_utf8() {
	gemt_start
	local out
	out=$(gemini "$B/search?%C3%A9")
	expect_eq "UTF-8 query" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
	out=$(gemini "$B/search?local%20partnerships")
	expect_eq "two words" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
	out=$(gemini "$B/search?caf\xc3\xa9")
	expect_eq "raw UTF-8 query" "$GEMT_HOME_HEADER" "$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')"
}

test_gemini_search_bad_query() {
	gemt_start
	gemt_expect "%ff" "59 Query is not valid UTF-8" "$B/search?%ff"
	gemt_expect "%00" "59 Percent-encoded NUL in query" "$B/search?a%00b"
	gemt_expect "%0d%0a" "59 Control character in query" "$B/search?a%0d%0a20%20x"
}

# ------------------------------------------------------------ request framing

# url_of_length N: "$B/" and then a's, N bytes in all.
url_of_length() { printf '%s/%s' "$B" "$(printf 'a%.0s' $(seq 1 $(($1 - ${#B} - 1))))"; }

test_gemini_url_1024_bytes() {
	gemt_start
	local url
	url=$(url_of_length 1024)
	expect_eq "URL length" 1024 "${#url}"
	gemt_expect "1024-byte URL accepted" "51 Not found" "$url"
}

test_gemini_url_1025_bytes() {
	gemt_start
	local url
	url=$(url_of_length 1025)
	expect_eq "URL length" 1025 "${#url}"
	gemt_expect "1025-byte URL refused" "59 Request URL longer than 1024 bytes" "$url"
	url=$(url_of_length $((${#B} + 1 + 3000)))
	gemt_expect "3000-byte URL refused" "59 Request URL longer than 1024 bytes" "$url"
}

test_gemini_bom() {
	gemt_start
	gemt_expect "leading BOM" "59 Request must not start with a byte order mark" "\xef\xbb\xbf$B/"
}

test_gemini_bare_lf() {
	gemt_start
	gemt_expect "LF without CR" "59 Request must end with CRLF, not a bare LF" "$B/\n" --no-crlf
}

test_gemini_invalid_utf8() {
	gemt_start
	gemt_expect "\\xff" "59 Request is not valid UTF-8" "$B/\xff"
	gemt_expect "overlong" "59 Request is not valid UTF-8" "$B/\xc0\xaf"
	gemt_expect "surrogate" "59 Request is not valid UTF-8" "$B/\xed\xa0\x80"
}

test_gemini_control_bytes() {
	gemt_start
	gemt_expect "NUL" "59 Control character in request" "$B/\x00join.gmi"
	gemt_expect "TAB" "59 Control character in request" "$B/\tjoin.gmi"
	gemt_expect "CR inside" "59 Control character in request" "$B/\rjoin.gmi"
	gemt_expect "DEL" "59 Control character in request" "$B/\x7f"
	gemt_expect "space" "59 Spaces in a URL must be percent-encoded" "$B/a b"
}

test_gemini_empty_request() {
	gemt_start
	gemt_expect "CRLF alone" "59 Empty request: send an absolute gemini:// URL" ""
}

test_gemini_relative_url() {
	gemt_start
	gemt_expect "path only" "59 Relative URL: send an absolute gemini:// URL" "/"
	gemt_expect "scheme-relative" "59 Relative URL: send an absolute gemini:// URL" "//localhost:$GEM_PORT/"
	gemt_expect "no authority" "59 URL has no host" "gemini:/join.gmi"
	gemt_expect "empty host" "59 URL has no host" "gemini:///"
}

test_gemini_userinfo() {
	gemt_start
	gemt_expect "userinfo" "59 URLs with userinfo are not accepted" "gemini://me@localhost:$GEM_PORT/"
	gemt_expect "empty userinfo" "59 URLs with userinfo are not accepted" "gemini://@localhost:$GEM_PORT/"
}

test_gemini_fragment() {
	gemt_start
	gemt_expect "fragment" "59 URLs with a fragment are not accepted" "$B/join.gmi#top"
	gemt_expect "empty fragment" "59 URLs with a fragment are not accepted" "$B/#"
}

# ----------------------------------------------------------- not served here

test_gemini_other_scheme() {
	gemt_start
	gemt_expect "https" "53 Only gemini:// URLs are served here" "https://localhost:$GEM_PORT/"
	gemt_expect "gopher" "53 Only gemini:// URLs are served here" "gopher://localhost:$GOPH_PORT/"
}

test_gemini_unknown_host() {
	gemt_start
	gemt_expect "other host" "53 Host not served here" "gemini://example.org:$GEM_PORT/"
	gemt_expect "suffix of ours" "53 Host not served here" "gemini://notlocalhost:$GEM_PORT/"
	gemt_expect "IPv4 literal" "53 Host not served here" "gemini://127.0.0.1:$GEM_PORT/"
	gemt_expect "IPv6 literal" "53 IP address hosts are not served here" "gemini://[::1]:$GEM_PORT/"
}

test_gemini_port_mismatch() {
	gemt_start
	local other=$((GEM_PORT == 65535 ? GEM_PORT - 1 : GEM_PORT + 1))
	gemt_expect "other port" "53 Port not served here" "gemini://localhost:$other/"
	# no port means 1965, which this server does not listen on
	gemt_expect "default port" "53 Port not served here" "gemini://localhost/"
}

# Every bad request above on one server; it still serves the home page after.
test_gemini_survives_bad_requests() {
	gemt_start
	local r
	for r in "" "\xef\xbb\xbf$B/" "$B/\xff" "$B/\x00" "/" "//x/" "gemini://u@localhost/" \
		"$B/#f" "https://x/" "gemini://x/" "gemini://[::1]/" "gemini://[zz]/" "$B/%00" \
		"$B/search?%ff" "$B/search?%" "$B/%" "$B/%%%%" "gemini://localhost:99999999999/" \
		"gemini://localhost:-1/" "gemini://localhost:/" "gemini:" "gemini://" ":" "?" "#" \
		"$B/../../.." "$B/$(printf '%%c3%.0s' $(seq 1 300))" \
		"$B/$(printf '..%%2f%.0s' $(seq 1 150))" "$B/$(printf 'x/%.0s' $(seq 1 500))"; do
		gemini "$r" >/dev/null || fail "no close_notify for $(printf '%q' "$r")"
	done
	gemini "$B/\n" --no-crlf >/dev/null
	gemini "$(printf 'a%.0s' $(seq 1 2000))" >/dev/null
	assert_alive
	gemt_expect "home after all that" "$GEMT_HOME_HEADER" "$B/"
}
