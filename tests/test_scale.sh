# tests/test_scale.sh: pages that stay small as the network grows (issue 14, items
# 2 and 3). A dataset of 1,000 members from bench/gen-dataset.sh is served, and the
# member list and search results are walked page by page over both protocols, as a
# reader would, following the next links: every member is reached exactly once,
# every page is at most 8 KB, and each previous link leads back. Both home pages
# stay under 2 KB with the count and the link to the list; the feed carries the
# newest entries in at most 32 KB. And with the default dataset every page stays
# byte for byte what it was (tests/data/render-11, the generated pages of
# `kilnet --render` with conf/kilnet.conf).
#
# rt_check_menu (tests/test_render.sh) and fd_need_xmllint (tests/test_feeds.sh)
# come from the other test files, which the runner reads too.
#
# After an intended change to the default pages, rewrite the snapshot with
#   UPDATE_EXPECTED=1 make test-quick T=scale_default
# and read the diff before committing it.
# needs: test_scale_feed xmllint

SC_MEMBERS=1000
SC_HOME_MAX=2048
SC_PAGE_MAX=8192
SC_FEED_MAX=32768
SC_SNAPSHOT=$ROOT/tests/data/render-11

# sc_dataset: $T/net.conf, SC_MEMBERS generated members; their ids, sorted, in
# $T/ids.
sc_dataset() {
	bash "$ROOT/bench/gen-dataset.sh" "$SC_MEMBERS" >"$T/net.conf" ||
		{ fail "bench/gen-dataset.sh failed"; return 1; }
	sed -n 's/^ *id = "\([a-z0-9-]*\)";$/\1/p' "$T/net.conf" | sort >"$T/ids"
}

# sc_start: kilnet serving the generated dataset.
sc_start() {
	sc_dataset || return 1
	DATASET=$T/net.conf write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
}

# sc_get_gemini PATH FILE: the whole response (header and body) for PATH.
sc_get_gemini() {
	gemini "gemini://localhost:$GEM_PORT$1" >"$2" || { fail "gemini $1: no answer"; return 1; }
}

# sc_get_gopher SELECTOR-LINE FILE: the whole reply to the line (sent as given).
sc_get_gopher() {
	gopher_raw "$1" >"$2" || { fail "gopher $(printf '%q' "$1"): no answer"; return 1; }
}

# sc_max WHAT FILE MAX: FILE holds at most MAX bytes.
sc_max() {
	local n
	n=$(wc -c <"$2")
	[ "$n" -le "$3" ] || fail "$1: $n bytes, more than $3"
}

# sc_expect_ids WHAT FILE: FILE lists every generated member once (in any order).
sc_expect_ids() {
	local dups
	dups=$(sort "$2" | uniq -d | head -n 3)
	[ -z "$dups" ] || fail "$1: reached more than once: $dups"
	expect_eq "$1: members reached" "$(wc -l <"$T/ids")" "$(sort -u "$2" | wc -l)"
	cmp -s "$T/ids" <(sort -u "$2") || fail "$1: not the generated members"
}

# sc_walk_gemini WHAT START OUT: from the path START, follows each page's "Next
# page" link to the last, checking every page (status 20, size, the previous link
# back to the page before); the member ids linked go to OUT, the pages walked to
# $T/walked.
sc_walk_gemini() {
	local what=$1 url=$2 out=$3 prev= back next n=0
	: >"$out"
	: >"$T/walked"
	while [ -n "$url" ]; do
		n=$((n + 1))
		[ "$n" -le 500 ] || { fail "$what: more than 500 pages"; return 1; }
		echo "$url" >>"$T/walked"
		sc_get_gemini "$url" "$T/page" || return 1
		expect_eq "$what: $url status" "20 text/gemini; charset=utf-8; lang=en" \
		    "$(head -n 1 "$T/page" | tr -d '\r')" || return 1
		sc_max "$what: $url" "$T/page" "$SC_PAGE_MAX"
		sed -n 's|^=> /members/\([a-z0-9-]*\)\.gmi .*|\1|p' "$T/page" >>"$out"
		back=$(sed -n 's|^=> \([^ ]*\) Previous page .*|\1|p' "$T/page")
		expect_eq "$what: previous link of $url" "$prev" "$back"
		next=$(sed -n 's|^=> \([^ ]*\) Next page .*|\1|p' "$T/page")
		prev=$url
		url=$next
	done
}

# sc_walk_gopher WHAT FIRST-LINE FIRST-SELECTOR OUT: the same over Gopher, from
# the request FIRST-LINE, whose page the next page's previous item names as
# FIRST-SELECTOR; the links between pages are type 1 items.
sc_walk_gopher() {
	local what=$1 line=$2 prev=$3 out=$4 sel back next n=0
	: >"$out"
	: >"$T/walked"
	sel=$prev
	while [ -n "$line" ]; do
		n=$((n + 1))
		[ "$n" -le 500 ] || { fail "$what: more than 500 pages"; return 1; }
		echo "$sel" >>"$T/walked"
		sc_get_gopher "$line" "$T/page" || return 1
		sc_max "$what: $sel" "$T/page" "$SC_PAGE_MAX"
		rt_check_menu "$T/page"
		tr -d '\r' <"$T/page" |
		    sed -n 's|^0[^\t]*\t/members/\([a-z0-9-]*\)\.txt\t.*|\1|p' >>"$out"
		back=$(tr -d '\r' <"$T/page" | sed -n 's|^1Previous page [^\t]*\t\([^\t]*\)\t.*|\1|p')
		[ "$n" -eq 1 ] || expect_eq "$what: previous item of $sel" "$prev" "$back"
		next=$(tr -d '\r' <"$T/page" | sed -n 's|^1Next page [^\t]*\t\([^\t]*\)\t.*|\1|p')
		prev=$sel
		sel=$next
		line=${next:+$next$'\r\n'}
	done
}

# The member list over Gemini: /members/, then /members/page/N.gmi.
test_scale_members_gemini() {
	sc_start
	sc_walk_gemini "member list" /members/ "$T/gem.ids"
	sc_expect_ids "Gemini member list" "$T/gem.ids"
	[ "$(wc -l <"$T/walked")" -gt 1 ] || fail "1,000 members on one page"
	expect_eq "second page" /members/page/2.gmi "$(sed -n 2p "$T/walked")"
	grep -q '^1,000 member councils; page 1 of [0-9]*\.$' <(gemini "gemini://localhost:$GEM_PORT/members/") ||
		fail "the first page does not say how many members and pages"
	# Past the last page there is nothing.
	expect_eq "page past the last" "51 Not found" \
	    "$(gemini "gemini://localhost:$GEM_PORT/members/page/$(($(wc -l <"$T/walked") + 1)).gmi" | tr -d '\r')"
}

# The member menu over Gopher: /members, then /members/page/N.
test_scale_members_gopher() {
	sc_start
	sc_walk_gopher "member menu" $'/members\r\n' /members "$T/goph.ids"
	sc_expect_ids "Gopher member menu" "$T/goph.ids"
	expect_eq "second page" /members/page/2 "$(sed -n 2p "$T/walked")"
}

# Both home pages stay under 2 KB, list the first members, and give the count
# with the link to the whole list.
test_scale_home_pages() {
	sc_start
	local first
	first=$(sed -n '0,/^ *id = "\([a-z0-9-]*\)";$/s//\1/p' "$T/net.conf")
	sc_get_gemini / "$T/home.gmi"
	[ "$(wc -c <"$T/home.gmi")" -lt "$SC_HOME_MAX" ] || fail "Gemini home: $(wc -c <"$T/home.gmi") bytes"
	expect_contains "Gemini home: count and list" "$(cat "$T/home.gmi")" \
	    "=> /members/ All 1,000 member councils and their spokespeople"
	expect_contains "Gemini home: first member" "$(cat "$T/home.gmi")" "=> /members/$first.gmi "
	sc_get_gopher $'\r\n' "$T/root"
	[ "$(wc -c <"$T/root")" -lt "$SC_HOME_MAX" ] || fail "Gopher root: $(wc -c <"$T/root") bytes"
	rt_check_menu "$T/root"
	expect_contains "Gopher root: count and list" "$(tr -d '\r' <"$T/root")" \
	    "$(printf '1All 1,000 member councils\t/members\tlocalhost\t%s' "$GOPH_PORT")"
	expect_contains "Gopher root: first member" "$(tr -d '\r' <"$T/root")" \
	    "$(printf '\t/members/%s.txt\tlocalhost' "$first")"
}

# A query that every member matches ("council": every generated name has it),
# over Gemini: pages of at most 8 KB, the next links carry the query and the
# page, and every member is on one page.
test_scale_search_gemini() {
	sc_start
	sc_walk_gemini "search" "/search?council" "$T/hits"
	sc_expect_ids "Gemini search pages" "$T/hits"
	local pages
	pages=$(wc -l <"$T/walked")
	[ "$pages" -gt 1 ] || fail "1,000 results on one page"
	expect_eq "second page" "/search/page/2?council" "$(sed -n 2p "$T/walked")"
	sc_get_gemini "/search/page/2?council" "$T/p2"
	grep -q "^1,000 members match; page 2 of $pages\.$" "$T/p2" || fail "page 2 does not say where it is"
	# The query is kept as typed, encoded in the links.
	sc_get_gemini "/search?COUNCIL%20" "$T/q"
	grep -q '^=> /search/page/2?COUNCIL%20 Next page' "$T/q" || fail "query not carried to the next page"
	# Past the last page: the count and a link back; a page without a query is
	# the search itself.
	sc_get_gemini "/search/page/$((pages + 1))?council" "$T/past"
	grep -q "there is no page $((pages + 1))" "$T/past" || fail "page past the last"
	grep -q "^=> /search/page/$pages?council Last page" "$T/past" || fail "no link to the last page"
	expect_eq "page without a query" "31 gemini://localhost:$GEM_PORT/search" \
	    "$(gemini "gemini://localhost:$GEM_PORT/search/page/2" | tr -d '\r')"
	expect_eq "page 1 has one name" "51 Not found" \
	    "$(gemini "gemini://localhost:$GEM_PORT/search/page/1?council" | tr -d '\r')"
	expect_eq "no leading zero" "51 Not found" \
	    "$(gemini "gemini://localhost:$GEM_PORT/search/page/02?council" | tr -d '\r')"
}

# The same over Gopher: the first page is a type 7 search (the query after a
# TAB); the pages after it are type 1 items carrying the query after a "?".
test_scale_search_gopher() {
	sc_start
	sc_walk_gopher "search" $'/search\tcouncil\r\n' '/search?council' "$T/hits"
	sc_expect_ids "Gopher search pages" "$T/hits"
	[ "$(wc -l <"$T/walked")" -gt 1 ] || fail "1,000 results on one page"
	expect_eq "second page" "/search/page/2?council" "$(sed -n 2p "$T/walked")"
	# The first page's link form and the TAB form give the same page; a page
	# asked with a TAB works too.
	sc_get_gopher $'/search\tcouncil\r\n' "$T/a"
	sc_get_gopher $'/search?council\r\n' "$T/b"
	cmp -s "$T/a" "$T/b" || fail "/search?council differs from /search TAB council"
	sc_get_gopher $'/search/page/2\tcouncil\r\n' "$T/c"
	sc_get_gopher $'/search/page/2?council\r\n' "$T/d"
	cmp -s "$T/c" "$T/d" || fail "page 2 by TAB differs from page 2 by ?"
	# A query with spaces, a "?" and UTF-8 survives the links.
	sc_get_gopher $'/search\tthe council?\r\n' "$T/e"
	grep -q $'^iSearch: “the council?”\t' "$T/e" || fail "query not echoed"
	# Without a query: how to search.
	sc_get_gopher $'/search/page/2\r\n' "$T/f"
	grep -q $'^7Search the members\t/search\t' "$T/f" || fail "page 2 without a query"
}

# The feed: at most 32 KB, the newest entries first, the newest of the dataset in.
test_scale_feed() {
	fd_need_xmllint
	sc_start
	local newest dates
	sc_get_gemini /atom.xml "$T/feed"
	sc_max "feed" "$T/feed" "$SC_FEED_MAX"
	tail -n +2 "$T/feed" >"$T/atom.xml"
	xmllint --noout "$T/atom.xml" || { fail "feed is not well-formed XML"; return 1; }
	dates=$(grep -o '<updated>[^<]*</updated>' "$T/atom.xml" | tail -n +2 | sed 's/<[^>]*>//g')
	[ "$(printf '%s\n' "$dates" | wc -l)" -gt 10 ] || fail "fewer than 10 entries"
	expect_eq "entries newest first" "$(printf '%s\n' "$dates" | sort -r)" "$dates"
	newest=$(grep -o '\(joined\|updated\) = "[0-9-]*"' "$T/net.conf" | sed 's/.*"\(.*\)"/\1/' | sort | tail -n 1)
	expect_eq "newest entry" "${newest}T00:00:00Z" "$(printf '%s\n' "$dates" | head -n 1)"
}

# Every page of the 1,000-member site, as --render writes it, within its limit;
# the Gemini header (39 bytes) counts too.
test_scale_render_sizes() {
	sc_dataset
	DATASET=$T/net.conf GEM_PORT=1965 GOPH_PORT=70 write_conf "$T/k.conf"
	"$KILNET" --render "$T/site" -c "$T/k.conf" 2>"$T/err" || { cat "$T/err"; fail "render failed"; return 1; }
	local f n max
	while read -r n f; do
		case $f in
		*/gemini/atom.xml) max=$((SC_FEED_MAX - 25)) ;;
		*/gemini/*) max=$((SC_PAGE_MAX - 39)) ;;
		*) max=$SC_PAGE_MAX ;;
		esac
		[ "$n" -le "$max" ] || fail "$f: $n bytes"
	done < <(find "$T/site" -type f -printf '%s %p\n')
	[ "$(find "$T/site/gopher/members" -name '*.txt' | wc -l)" -eq "$SC_MEMBERS" ] ||
		fail "not one document per member"
	[ -f "$T/site/gemini/members/page/2.gmi" ] || fail "no second page of the member list"
	for f in "$T"/site/gopher/members/gophermap "$T"/site/gopher/members/page/*/gophermap; do
		rt_check_menu "$f"
	done
}

# The generator: the same bytes for the same N, a dataset kilnet accepts, N
# unique ids.
test_scale_generator() {
	sc_dataset
	bash "$ROOT/bench/gen-dataset.sh" "$SC_MEMBERS" | cmp -s - "$T/net.conf" || fail "two runs differ"
	expect_eq "members" "$SC_MEMBERS" "$(wc -l <"$T/ids")"
	expect_eq "unique ids" "$SC_MEMBERS" "$(sort -u "$T/ids" | wc -l)"
	DATASET=$T/net.conf write_conf "$T/k.conf"
	expect_eq "kilnet -t" "kilnet: configuration OK" "$("$KILNET" -t -c "$T/k.conf" 2>&1)"
	bash "$ROOT/bench/gen-dataset.sh" 0 >/dev/null 2>&1 && fail "N = 0 accepted"
	true
}

# With the default dataset every generated page is what it was, byte for byte.
test_scale_default_site_unchanged() {
	"$KILNET" --render "$T/site" -c "$ROOT/conf/kilnet.conf" 2>"$T/err" ||
		{ cat "$T/err"; fail "render failed"; return 1; }
	local f rel
	if [ -n "${UPDATE_EXPECTED:-}" ]; then
		find "$SC_SNAPSHOT" -type f ! -name .gitattributes -delete
		(cd "$T/site" && find . -type f) | while IFS= read -r f; do
			rel=${f#./*/}
			[ -e "$ROOT/capsule/$rel" ] && continue
			mkdir -p "$(dirname "$SC_SNAPSHOT/$f")"
			cp "$T/site/$f" "$SC_SNAPSHOT/$f"
		done
		echo "wrote $SC_SNAPSHOT"
		return 0
	fi
	[ -f "$SC_SNAPSHOT/gemini/index.gmi" ] || { fail "$SC_SNAPSHOT is missing"; return 1; }
	# Every page of the snapshot, and nothing else but the capsule's files.
	while IFS= read -r f; do
		cmp -s "$SC_SNAPSHOT/$f" "$T/site/$f" && continue
		diff -u "$SC_SNAPSHOT/$f" "$T/site/$f" | head -n 20
		fail "$f differs from the snapshot"
	done < <(cd "$SC_SNAPSHOT" && find . -type f ! -name .gitattributes)
	while IFS= read -r f; do
		rel=${f#./*/}
		[ -e "$SC_SNAPSHOT/$f" ] || [ -e "$ROOT/capsule/$rel" ] || fail "$f: a page the snapshot does not have"
	done < <(cd "$T/site" && find . -type f)
}
