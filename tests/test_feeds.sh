# tests/test_feeds.sh: the dataset's dates (issue 9, item 4): /atom.xml, a valid
# Atom 1.0 feed with one entry for the network page and one per member, and the
# gemsub form of /members/ (a "#" title, a "##" subtitle, link lines whose text
# starts with the date), so Gemini feed readers can subscribe to either.
# needs: test_feeds_atom_default xmllint
# needs: test_feeds_atom_served xmllint
# needs: test_feeds_member_dates xmllint
# needs: test_feeds_hostile xmllint

ATOM_NS=http://www.w3.org/2005/Atom

# fd_dataset FILE: the default dataset with dates for three members and
# markup characters in a name and a statement (escaping in the feed).
fd_dataset() {
	sed -e 's/^\( *\)id = "bradford";/&\n\1joined = "2019-03-01";/' \
	    -e 's/^\( *\)id = "hackney";/&\n\1joined = "2019-02-14"; updated = "2025-06-30";/' \
	    -e 's/^\( *\)id = "oldham";/&\n\1updated = "2024-02-29";/' \
	    -e 's/name = "Oldham Council";/name = "Oldham <Council> \& “Partners”";/' \
	    -e 's/As a co-operative council who/As a <b>co-operative<\/b> \& \\"open\\" council who/' \
	    "$ROOT/conf/network.conf" >"$1"
}

# fd_xpath FILE EXPR: the string value of an XPath over the feed (Atom elements
# by local name, the feed has a default namespace).
fd_xpath() { xmllint --xpath "$2" "$1" 2>/dev/null; }

# fd_entry FILE ID CHILD: the text of CHILD of the entry whose id is ID.
fd_entry() {
	fd_xpath "$1" "string(//*[local-name()='entry'][*[local-name()='id']='$2']/*[local-name()='$3'])"
}

fd_need_xmllint() {
	command -v xmllint >/dev/null || { fail "xmllint is missing (Debian package libxml2-utils; make deps installs it)"; return 1; }
}

# The default dataset carries one date, network.updated: the feed dates every
# entry by it, and is valid Atom.
test_feeds_atom_default() {
	fd_need_xmllint
	GEM_PORT=1965 GOPH_PORT=70 write_conf "$T/k.conf"
	"$KILNET" --render "$T/site" -c "$T/k.conf" 2>"$T/err" || { cat "$T/err"; fail "render failed"; return 1; }
	local f=$T/site/gemini/atom.xml
	[ -s "$f" ] || { fail "atom.xml not rendered"; return 1; }
	xmllint --noout "$f" || { fail "atom.xml is not well-formed XML"; return 1; }
	expect_eq "root element" "feed $ATOM_NS" \
	    "$(fd_xpath "$f" 'concat(local-name(/*), " ", namespace-uri(/*))')"
	expect_eq "feed id" "gemini://localhost/atom.xml" "$(fd_xpath "$f" "string(/*/*[local-name()='id'])")"
	expect_eq "feed title" "Keep it Local Network" "$(fd_xpath "$f" "string(/*/*[local-name()='title'])")"
	expect_eq "feed updated" "2026-11-25T00:00:00Z" "$(fd_xpath "$f" "string(/*/*[local-name()='updated'])")"
	expect_eq "feed author" "Locality" "$(fd_xpath "$f" "string(/*/*[local-name()='author']/*[local-name()='name'])")"
	expect_eq "self link" "gemini://localhost/atom.xml" \
	    "$(fd_xpath "$f" "string(/*/*[local-name()='link'][@rel='self']/@href)")"
	expect_eq "entries" 12 "$(fd_xpath "$f" "count(//*[local-name()='entry'])")"
	# every entry has the elements RFC 4287 4.1.2 requires, and a summary
	expect_eq "entries with id, title, updated, link, summary" 12 "$(fd_xpath "$f" \
	    "count(//*[local-name()='entry'][*[local-name()='id'] and *[local-name()='title'] and *[local-name()='updated'] and *[local-name()='link']/@href and *[local-name()='summary']])")"
	expect_eq "dates" "2026-11-25T00:00:00Z" \
	    "$(grep -o '<updated>[^<]*</updated>' "$f" | sort -u | sed 's/<[^>]*>//g')"
	local id
	for id in bradford bristol calderdale hackney kirklees lewisham newcastle oldham rotherham south-gloucestershire wirral; do
		expect_eq "$id entry link" "gemini://localhost/members/$id.gmi" \
		    "$(fd_xpath "$f" "string(//*[local-name()='entry'][*[local-name()='id']='gemini://localhost/members/$id.gmi']/*[local-name()='link']/@href)")"
	done
	expect_eq "network entry" "Keep it Local Network" "$(fd_entry "$f" gemini://localhost/ title)"
	expect_eq "network summary" "More and more local authorities are moving away from bureaucratic commissioning and big outsourcing contracts." \
	    "$(fd_entry "$f" gemini://localhost/ summary)"
	expect_eq "member title" "Wirral Council" "$(fd_entry "$f" gemini://localhost/members/wirral.gmi title)"
	expect_eq "first sentence of the statement" "Joining the Keep it Local movement puts Wirral’s economy first." \
	    "$(fd_entry "$f" gemini://localhost/members/wirral.gmi summary)"
	expect_eq "sentence ending in a closing quote" "This isn’t about altruism or working with local organisations because it’s a nice thing to do." \
	    "$(fd_entry "$f" gemini://localhost/members/bradford.gmi summary)"
	expect_contains "home links the feed" "$(cat "$T/site/gemini/index.gmi")" "=> /atom.xml "
	# the default dataset invents no join dates: no dated member links
	if grep -E '^=> /members/[a-z0-9-]+\.gmi [0-9]{4}-' "$T/site/gemini/members/index.gmi"; then
		fail "member links dated without dates in the dataset"
	fi
}

# Served over Gemini with its MIME type, the same bytes as rendered.
test_feeds_atom_served() {
	fd_need_xmllint
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	gemini "gemini://localhost:$GEM_PORT/atom.xml" >"$T/resp"
	expect_eq "header" $'20 application/atom+xml\r' "$(head -n 1 "$T/resp")"
	tail -n +2 "$T/resp" >"$T/atom.xml"
	xmllint --noout "$T/atom.xml" || fail "served feed is not well-formed"
	expect_eq "feed id with the port" "gemini://localhost:$GEM_PORT/atom.xml" \
	    "$(fd_xpath "$T/atom.xml" "string(/*/*[local-name()='id'])")"
	gemini "gemini://localhost:$GEM_PORT/members/" >"$T/members"
	expect_eq "members header" $'20 text/gemini; charset=utf-8; lang=en\r' "$(head -n 1 "$T/members")"
}

# Dates in the dataset: entries take updated, else joined, else the network's
# date; the member list dates its links (gemsub); text is escaped.
test_feeds_member_dates() {
	fd_need_xmllint
	fd_dataset "$T/net.conf"
	GEM_PORT=1965 GOPH_PORT=70 DATASET=$T/net.conf write_conf "$T/k.conf"
	"$KILNET" --render "$T/site" -c "$T/k.conf" 2>"$T/err" || { cat "$T/err"; fail "render failed"; return 1; }
	local f=$T/site/gemini/atom.xml m=$T/site/gemini/members/index.gmi
	xmllint --noout "$f" || { fail "atom.xml is not well-formed XML"; return 1; }
	expect_eq "feed updated: the latest date" "2026-11-25T00:00:00Z" \
	    "$(fd_xpath "$f" "string(/*/*[local-name()='updated'])")"
	expect_eq "updated wins over joined" "2025-06-30T00:00:00Z" \
	    "$(fd_entry "$f" gemini://localhost/members/hackney.gmi updated)"
	expect_eq "joined" "2019-03-01T00:00:00Z" "$(fd_entry "$f" gemini://localhost/members/bradford.gmi updated)"
	expect_eq "leap day" "2024-02-29T00:00:00Z" "$(fd_entry "$f" gemini://localhost/members/oldham.gmi updated)"
	expect_eq "no date: the network's" "2026-11-25T00:00:00Z" \
	    "$(fd_entry "$f" gemini://localhost/members/bristol.gmi updated)"
	expect_eq "escaped title" "Oldham <Council> & “Partners”" "$(fd_entry "$f" gemini://localhost/members/oldham.gmi title)"
	expect_contains "escaped in the file" "$(cat "$f")" "<title>Oldham &lt;Council&gt; &amp; “Partners”</title>"
	expect_eq "escaped summary" "As a <b>co-operative</b> & \"open\" council who places Thriving Communities at the heart of our own values we believe we share the same vision and mission statement as those in the Keep it Local Network." \
	    "$(fd_entry "$f" gemini://localhost/members/oldham.gmi summary)"
	# gemsub: "#" title, "##" subtitle right after it, dated links
	expect_eq "feed title line" "# Keep it Local Network: member councils" "$(sed -n 1p "$m")"
	case $(sed -n 2p "$m") in "## "?*) ;; *) fail "no ## subtitle on line 2 of /members/" ;; esac
	expect_contains "dated link" "$(cat "$m")" "=> /members/hackney.gmi 2025-06-30 Hackney Council (Philip Glanville)"
	expect_contains "dated link" "$(cat "$m")" "=> /members/bradford.gmi 2019-03-01 Bradford Metropolitan District Council (Cllr Susan Hinchcliffe)"
	expect_contains "undated link" "$(cat "$m")" "=> /members/bristol.gmi Bristol City Council (Marvin Rees)"
	expect_eq "dated links" 3 "$(grep -cE '^=> /members/[a-z0-9-]+\.gmi [0-9]{4}-[0-9]{2}-[0-9]{2} ' "$m")"
}

# No date anywhere: no feed, no link to one.
test_feeds_no_dates() {
	grep -v '^  updated = ' "$ROOT/conf/network.conf" >"$T/net.conf"
	DATASET=$T/net.conf write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	gemini "gemini://localhost:$GEM_PORT/atom.xml" >"$T/resp" || true
	expect_eq "no feed" "51" "$(head -c 2 "$T/resp")"
	gemini "gemini://localhost:$GEM_PORT/" >"$T/home"
	expect_not_contains "no feed link" "$(cat "$T/home")" "/atom.xml"
}

# The hostile dataset with a date: still a well-formed feed, markup escaped.
test_feeds_hostile() {
	fd_need_xmllint
	sed 's/^\(  name = .*\)$/\1\n  updated = "2020-01-31";/' "$ROOT/tests/data/hostile-network.conf" >"$T/net.conf"
	DATASET=$T/net.conf write_conf "$T/k.conf"
	"$KILNET" --render "$T/site" -c "$T/k.conf" 2>"$T/err" || { cat "$T/err"; fail "render failed"; return 1; }
	xmllint --noout "$T/site/gemini/atom.xml" || fail "hostile feed is not well-formed"
	expect_eq "feed title" "# Hostile => Network \`\`\`" \
	    "$(fd_xpath "$T/site/gemini/atom.xml" "string(/*/*[local-name()='title'])")"
}
