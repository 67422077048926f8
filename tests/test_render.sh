# tests/test_render.sh: the renderers and the static export (issue 4, items 6-8):
# kilnet --render writes both sites; the seed's every sentence is in each, the
# member lists keep the seed's order, a hostile dataset and a hostile capsule
# render safely, and two renders are byte-identical.

# rt_render OUT CONFIG: renders, keeping stderr in $T/render.err.
rt_render() {
	"$KILNET" --render "$1" -c "$2" 2>"$T/render.err" || {
		cat "$T/render.err"; fail "kilnet --render $2 failed"; return 1; }
}

# The seed's sentences, one a line: each paragraph split after . ? ! (and a
# closing quote) before a space.
rt_seed_sentences() {
	perl -CSD -Mutf8 -ne 'chomp; next unless /\S/;
		print "$_\n" for split /(?<=[.?!])\s+|(?<=[.?!][”’])\s+/' \
	    "$ROOT/tests/data/keep-it-local.txt"
}

# rt_unwrap FILE...: Gopher menus and documents back to prose, a paragraph a
# line: menu fields and the "i" type dropped, dot-stuffing undone, wrapped
# lines joined with one space; an item's display is a line of its own.
rt_unwrap() {
	perl -CSD -ne '
		sub flush { print "$p\n" if $p ne ""; $p = "" }
		s/\r?\n\z//;
		if ($ARGV =~ m{(gophermap|\.gmi)\z}) {
			if ($_ ne ".") {
				my ($d) = split /\t/;
				my $t = substr($d, 0, 1);
				$d = substr($d, 1);
				if ($t ne "i") { flush(); print "$d\n"; }
				elsif ($d eq "") { flush(); }
				else { $p .= ($p eq "" ? "" : " ") . $d; }
			}
		} elsif ($_ ne ".") {
			s/^\.\././;
			if ($_ eq "") { flush(); } else { $p .= ($p eq "" ? "" : " ") . $_; }
		}
		flush() if eof;
	' "$@"
}

# rt_expect_sentences WHAT TEXTFILE: every seed sentence is in TEXTFILE.
rt_expect_sentences() {
	local what=$1 file=$2 s missing=0 n=0
	while IFS= read -r s; do
		n=$((n + 1))
		grep -qF -- "$s" "$file" && continue
		echo "FAIL: $what: not found: $s"
		missing=$((missing + 1))
	done < <(rt_seed_sentences)
	[ "$n" -gt 50 ] || fail "only $n sentences read from the seed"
	[ "$missing" -eq 0 ] || fail "$what: $missing of $n sentences missing"
}

# rt_check_menu FILE: RFC 1436 menu lines: CRLF, five TAB-separated fields
# with a numeric port, "i" text within the wrap column, ".\r\n" at the end.
rt_check_menu() {
	LC_ALL=C.UTF-8 perl -CSD -ne '
		$n++;
		$last = $_;
		if (!/\r\n\z/) { print "line $n: no CRLF\n"; $bad++; }
		s/\r?\n\z//;
		next if $_ eq "." && eof;
		my @f = split /\t/, $_, -1;
		if (@f != 4) { print "line $n: ", scalar(@f), " fields: $_\n"; $bad++; next; }
		if ($f[3] !~ /^[0-9]+\z/) { print "line $n: port $f[3]\n"; $bad++; }
		if ($f[0] =~ /^i/ && length($f[0]) - 1 > 70) {
			print "line $n: info text over 70 code points\n"; $bad++;
		}
		END {
			if ($last ne ".\r\n") { print "no final .CRLF line\n"; $bad++; }
			exit($bad ? 1 : 0);
		}
	' "$1" || fail "$1: not a well-formed Gopher menu"
}

# rt_check_document FILE: a text document: CRLF lines of at most 70 code
# points (after undoing dot-stuffing), no lone "." before the final ".\r\n".
rt_check_document() {
	LC_ALL=C.UTF-8 perl -CSD -ne '
		$n++;
		$last = $_;
		if (!/\r\n\z/) { print "line $n: no CRLF\n"; $bad++; }
		s/\r?\n\z//;
		next if eof;
		if ($_ eq ".") { print "line $n: a lone dot ends the document early\n"; $bad++; }
		if (/^\.(?!\.)/) { print "line $n: a dot line not stuffed\n"; $bad++; }
		s/^\.\././;
		if (length($_) > 70) { print "line $n: ", length($_), " code points\n"; $bad++; }
		END {
			if ($last ne ".\r\n") { print "no final .CRLF line\n"; $bad++; }
			exit($bad ? 1 : 0);
		}
	' "$1" || fail "$1: not a well-formed Gopher text document"
}

# rt_check_utf8 DIR: every file there is valid UTF-8 (no sequence was cut).
rt_check_utf8() {
	local f
	while IFS= read -r f; do
		iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1 || fail "$f: not valid UTF-8"
	done < <(find "$1" -type f)
}

# The councils in the seed's order: the text line before each "..., said:".
rt_seed_councils() {
	awk '/, said:$/ { print p1 } NF { p1 = $0 }' \
	    "$ROOT/tests/data/keep-it-local.txt"
}

test_render_seed_gemini() {
	rt_render "$T/site" "$ROOT/conf/kilnet.conf"
	for p in index.gmi members/index.gmi join.gmi members/bradford.gmi; do
		[ -s "$T/site/gemini/$p" ] || fail "gemini/$p not written"
	done
	[ "$(ls "$T/site/gemini/members" | wc -l)" -eq 12 ] || fail "11 member pages + index"
	cat $(find "$T/site/gemini" -name '*.gmi' | sort) >"$T/all.gmi"
	rt_expect_sentences "Gemini pages" "$T/all.gmi"
}

test_render_seed_gopher() {
	rt_render "$T/site" "$ROOT/conf/kilnet.conf"
	local g=$T/site/gopher
	for p in gophermap members/gophermap join.txt members/bradford.txt caps.txt; do
		[ -s "$g/$p" ] || fail "gopher/$p not written"
	done
	rt_unwrap "$g/gophermap" "$g/members/gophermap" "$g/join.txt" "$g"/members/*.txt \
	    >"$T/all.txt"
	rt_expect_sentences "Gopher documents and menus" "$T/all.txt"
	rt_check_menu "$g/gophermap"
	rt_check_menu "$g/members/gophermap"
	for f in "$g/join.txt" "$g"/members/*.txt "$g/caps.txt"; do rt_check_document "$f"; done
	rt_check_utf8 "$T/site"
}

test_render_member_order() {
	rt_render "$T/site" "$ROOT/conf/kilnet.conf"
	local want gem goph
	want=$(rt_seed_councils)
	[ "$(printf '%s\n' "$want" | wc -l)" -eq 11 ] || fail "11 councils in the seed"
	gem=$(sed -n 's|^=> /members/[a-z0-9-]*\.gmi \(.*\) (.*)$|\1|p' \
	    "$T/site/gemini/members/index.gmi")
	expect_eq "Gemini member list" "$want" "$gem"
	goph=$(tr -d '\r' <"$T/site/gopher/members/gophermap" |
	    sed -n 's|^0\([^\t]*\) ([^\t]*)\t/members/[a-z0-9-]*\.txt\t.*|\1|p')
	expect_eq "Gopher member menu" "$want" "$goph"
	# Spokespeople come with their council, and each page names its role.
	expect_contains "Gemini list" "$(cat "$T/site/gemini/members/index.gmi")" \
	    "=> /members/bradford.gmi Bradford Metropolitan District Council (Cllr Susan Hinchcliffe)"
	expect_contains "member page" "$(cat "$T/site/gemini/members/bradford.gmi")" \
	    "Cllr Susan Hinchcliffe, Leader of Bradford Council, said:"
}

test_render_home_links() {
	GEM_PORT=1965 GOPH_PORT=7070 write_conf "$T/k.conf"
	rt_render "$T/site" "$T/k.conf"
	local home menu
	home=$(cat "$T/site/gemini/index.gmi")
	expect_contains "members link" "$home" "=> /members/ "
	expect_contains "member link" "$home" "=> /members/wirral.gmi Wirral Council"
	expect_contains "join link" "$home" "=> /join.gmi "
	expect_contains "search link" "$home" "=> /search "
	expect_contains "gopher link" "$home" "=> gopher://localhost:7070/1/ "
	expect_contains "convener" "$home" "Locality"
	expect_contains "partner" "$home" "Lloyds Bank Foundation"
	expect_eq "heading" "# Keep it Local Network" "$(head -n 1 "$T/site/gemini/index.gmi")"
	menu=$(tr -d '\r' <"$T/site/gopher/gophermap")
	expect_contains "gemini link" "$menu" "$(printf 'hThe same site over Gemini\tURL:gemini://localhost/\tlocalhost\t7070')"
	expect_contains "member list" "$menu" "$(printf '\t/members\tlocalhost\t7070')"
	expect_contains "search item" "$menu" "$(printf '7Search the network')"
	expect_contains "member document" "$menu" "$(printf '0Wirral Council\t/members/wirral.txt\tlocalhost\t7070')"
	expect_contains "caps" "$(cat "$T/site/gopher/caps.txt")" "PathDelimeter=/"
}

test_render_identical() {
	rt_render "$T/a" "$ROOT/conf/kilnet.conf"
	rt_render "$T/b" "$ROOT/conf/kilnet.conf"
	diff -r "$T/a" "$T/b" || fail "two renders differ"
	rt_render "$T/a" "$ROOT/conf/kilnet.conf"   # over an earlier render
	diff -r "$T/a" "$T/b" || fail "a render over an old one differs"
	[ "$(stat -c %a "$T/a/gemini/index.gmi")" = 644 ] || fail "file mode not 0644"
	[ "$(stat -c %a "$T/a/gemini/members")" = 755 ] || fail "folder mode not 0755"
}

test_render_hostile_dataset() {
	DATASET=$ROOT/tests/data/hostile-network.conf write_conf "$T/k.conf"
	rt_render "$T/site" "$T/k.conf"
	local f
	# Text that looks like markup stays text: it starts with a space.
	if grep -h 'TXTEVIL' "$T"/site/gemini/*.gmi "$T"/site/gemini/members/*.gmi |
	    grep -E '^(=>|#|\*|>|```)' | grep -v '^> > TXTEVIL quoted' |
	    grep -v '^=> /members/[a-z0-9-]*\.gmi ' | grep -v '^=> https://example.org/join'; then
		fail "dataset text became gemtext markup"
	fi
	# ... except where it is meant to be a quote line or a heading.
	grep -q '^> > TXTEVIL quoted' "$T/site/gemini/index.gmi" || fail "quote line lost"
	grep -q '^ # TXTEVIL Spokes, => role, said:$' "$T/site/gemini/members/markup.gmi" ||
	    fail "said: line not escaped"
	# Statement lines are quote lines, whatever they start with.
	if grep -h 'STMEVIL' "$T"/site/gemini/members/*.gmi | grep -v '^> '; then
		fail "a statement line is not a quote line"
	fi
	grep -q '^```' -r "$T/site/gemini" && fail "a preformatting toggle got through"
	for f in $(find "$T/site/gopher" -name gophermap); do rt_check_menu "$f"; done
	for f in "$T/site/gopher/join.txt" "$T"/site/gopher/members/*.txt; do rt_check_document "$f"; done
	rt_check_utf8 "$T/site"
	# Dot lines are stuffed, and long words are cut at 70 code points.
	grep -q $'^\\.\\.\r$' "$T/site/gopher/members/markup.txt" || fail "'.' not stuffed"
	grep -q $'^\\.\\.STMEVIL dot' "$T/site/gopher/members/markup.txt" || fail "'.x' not stuffed"
	grep -q $'^PneumonoultramicroscopicsilicovolcanoconiosisPneumonoultramicroscopics\r$' \
	    "$T/site/gopher/members/markup.txt" || fail "long word not cut at 70"
	# A mark stays with its letter: no line starts with a combining acute.
	if grep -rq $'^\xcc\x81' "$T/site/gopher"; then fail "a combining mark was cut off"; fi
}

test_render_capsule() {
	local c=$T/cap
	mkdir -p "$c/sub" "$c/.git" "$c/members"
	printf 'User-agent: *\n.dot line\n' >"$c/robots.txt"
	printf 'secret\n' >"$c/.hidden.txt"
	printf 'secret\n' >"$c/.git/config"
	printf 'shadowed\n' >"$c/index.gmi"
	printf 'extra\n' >"$c/members/extra.txt"
	ln -s /etc/passwd "$c/passwd.txt"
	ln -s /etc "$c/etc"
	ln -s ../robots.txt "$c/sub/robots-link.txt"
	printf '\x89PNG\r\n\x1a\n\x00\x01binary' >"$c/sub/pic.png"
	printf '# Sub\n' >"$c/sub/index.gmi"
	printf 'Other\n' >"$c/sub/other.gmi"
	{
		printf '# A page\n\nSome text.\n'
		printf '=> other.gmi Tab\there\n'
		printf '=> /members/ The members\n'
		printf '=> /members/bradford.gmi Bradford\n'
		printf '=> https://example.org/ Web\n'
		printf '=> gopher://other.example:7070/0/x.txt Elsewhere\n'
		printf '=> missing.gmi Gone\n'
		printf '=> ../robots.txt Robots\n'
		printf '```\n\tpre\tformatted\r\n```\n'
	} >"$c/sub/page.gmi"
	CAPSULE=$c write_conf "$T/k.conf"
	rt_render "$T/site" "$T/k.conf"
	local g=$T/site/gopher m err
	err=$(cat "$T/render.err")
	for p in robots.txt sub/page.gmi sub/index.gmi members/extra.txt sub/robots-link.txt; do
		[ -f "$T/site/gemini/$p" ] || fail "gemini/$p missing"
	done
	[ -f "$T/site/gemini/sub/index.gmi" ] || fail "folder index missing"
	for p in .hidden.txt .git passwd.txt etc; do
		[ -e "$T/site/gemini/$p" ] && fail "gemini/$p served"
		[ -e "$g/$p" ] && fail "gopher/$p served"
	done
	expect_contains "symlink warning" "$err" "passwd.txt: leads outside the capsule"
	expect_contains "shadow warning" "$err" "index.gmi: shadowed by a generated page"
	expect_eq "generated home wins" "# Keep it Local Network" "$(head -n 1 "$T/site/gemini/index.gmi")"
	cmp "$c/sub/pic.png" "$g/sub/pic.png" || fail "binary file changed over Gopher"
	rt_check_document "$g/robots.txt"
	grep -q $'^\\.\\.dot line\r$' "$g/robots.txt" || fail "capsule text not dot-stuffed"
	rt_check_menu "$g/sub/page.gmi"
	rt_check_menu "$g/sub/gophermap"
	m=$(tr -d '\r' <"$g/sub/page.gmi")
	expect_contains "TAB in link text" "$m" "$(printf '1Tab here\t/sub/other.gmi\tlocalhost\t%s' "$GOPH_PORT")"
	expect_contains "folder link" "$m" "$(printf '1The members\t/members\tlocalhost\t%s' "$GOPH_PORT")"
	expect_contains "generated page" "$m" "$(printf '0Bradford\t/members/bradford.txt\tlocalhost\t%s' "$GOPH_PORT")"
	expect_contains "web link" "$m" "$(printf 'hWeb\tURL:https://example.org/\tlocalhost')"
	expect_contains "gopher link" "$m" "$(printf '0Elsewhere\t/x.txt\tother.example\t7070')"
	expect_contains "missing page" "$m" "$(printf 'iGone\t')"
	expect_contains "relative .." "$m" "$(printf '0Robots\t/robots.txt\tlocalhost')"
	expect_contains "preformatted" "$m" "$(printf 'i pre formatted\t')"
}

# The export never writes through a symlink planted in the output folder.
test_render_export_no_escape() {
	mkdir -p "$T/site/gemini" "$T/elsewhere"
	ln -s "$T/elsewhere" "$T/site/gemini/members"
	if "$KILNET" --render "$T/site" -c "$ROOT/conf/kilnet.conf" 2>"$T/err"; then
		fail "render wrote through a symlink"
	fi
	[ -z "$(ls "$T/elsewhere")" ] || fail "files written outside the output folder"
}

# Search results as both renderers lay them out, through the running server.
test_render_search() {
	write_conf "$T/k.conf"
	start_kilnet k -c "$T/k.conf"
	local out B=gemini://localhost:$GEM_PORT
	out=$(gemini "$B/search?ROTHERHAM")
	expect_contains "hit link" "$out" "=> /members/rotherham.gmi Rotherham Council"
	expect_contains "sentence as a quote" "$out" \
	    "> “The Keep it Local principles are an important part of our agenda for Rotherham,"
	expect_contains "count" "$out" "1 member matches."
	out=$(gemini "$B/search?%C2%A3300%20MILLION")
	expect_contains "multi-byte query" "$out" "=> /members/rotherham.gmi Rotherham Council"
	out=$(gemini "$B/search?hinchcliffe")
	expect_contains "spokesperson" "$out" "> Cllr Susan Hinchcliffe"
	out=$(gemini "$B/search?zzzz")
	expect_contains "no hit" "$out" "No member matches “zzzz”."
	expect_contains "try again" "$out" "=> /search "
	gopher_raw $'/search\tlocal by default\r\n' >"$T/search.menu"
	out=$(cat "$T/search.menu")
	rt_check_menu "$T/search.menu"
	expect_contains "gopher hit" "$out" \
	    "$(printf '0Hackney Council\t/members/hackney.txt\tlocalhost\t%s' "$GOPH_PORT")"
	expect_contains "gopher sentence" "$out" "local by default"
}
