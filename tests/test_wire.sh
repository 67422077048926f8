# tests/test_wire.sh: the site on the wire (src/site_wire.c). tests/bin/wire_roundtrip
# builds a config's site, writes it with site_wire_write and reads it back with
# site_wire_read; it compares the two field by field, their replies to every page
# and to searches over both protocols, and the read site written again with the
# bytes it was read from. Here the two exports (site_export) are compared too, and
# the replies once more. Run on the shipped config, on 1,000 generated members, and
# on the hostile dataset with a capsule of every kind of file, editing on, and a
# search index that holds copies. The ASan run uses the ASan build of the program.

# wire_bin: the program of the build under test.
wire_bin() {
	case $KILNET in
	*-asan) echo "$TESTBIN/wire_roundtrip-asan" ;;
	*) echo "$TESTBIN/wire_roundtrip" ;;
	esac
}

# wire_roundtrip CONFIG [OPTIONS...]: the round trip into $T/wire, the exports and
# the replies compared.
wire_roundtrip() {
	local conf=$1 bin; shift
	bin=$(wire_bin)
	[ -x "$bin" ] || { fail "$bin is missing (make $bin)"; return 1; }
	rm -rf "$T/wire"; mkdir -p "$T/wire"
	"$bin" "$@" "$conf" "$T/wire" >"$T/wire.out" 2>&1 || {
		cat "$T/wire.out"; fail "wire_roundtrip $conf: the sites differ"; return 1; }
	cat "$T/wire.out"
	[ -f "$T/wire/built/gemini/index.gmi" ] || fail "no export of the built site"
	diff -r "$T/wire/built" "$T/wire/read" || fail "the exports differ"
	cmp "$T/wire/built.replies" "$T/wire/read.replies" || fail "the replies differ"
	grep -q 'searches with results' "$T/wire.out" || fail "no search compared"
}

test_wire_default() {
	wire_roundtrip "$ROOT/conf/kilnet.conf" -p
	grep -q 'none of the [0-9]* proper prefixes reads' "$T/wire.out" || fail "prefixes not tried"
	# The search (brief: "council") answers with the same results from both.
	grep -qF 'gemini://localhost/search?council' "$T/wire/read.replies" ||
		fail "the search for council was not asked"
	grep -q '^=> /members/hackney.gmi' "$T/wire/read.replies" || fail "no search hit in the replies"
}

test_wire_1000_members() {
	bash "$ROOT/bench/gen-dataset.sh" 1000 >"$T/net.conf"
	DATASET=$T/net.conf write_conf "$T/k.conf"
	wire_roundtrip "$T/k.conf"
	[ "$(find "$T/wire/read/gemini/members" -name '*.gmi' | wc -l)" -ge 1000 ] ||
		fail "fewer than 1,000 member pages in the read site"
	grep -qF '/search/page/4?e' "$T/wire/read.replies" || fail "no later page of results asked"
}

# Everything a site can hold: capsule files of each type (binary, empty, no
# extension, folder indexes), more hostnames, ports, editing, folded search text,
# and (-c) search fields that are copies.
test_wire_hostile() {
	local c=$T/cap
	mkdir -p "$c/sub/deeper" "$c/members"
	printf 'User-agent: *\n.dot line\n' >"$c/robots.txt"
	printf '\x89PNG\r\n\x1a\n\x00\x01binary' >"$c/sub/pic.png"
	printf 'GIF89a\x00\x00' >"$c/sub/anim.gif"
	: >"$c/empty.txt"
	: >"$c/empty.bin"
	printf 'no extension\n' >"$c/README"
	printf '<p>html</p>\n' >"$c/page.html"
	printf '# Sub\n=> deeper/ Deeper\n' >"$c/sub/index.gmi"
	printf '# Deeper\n=> ../pic.png Picture\n' >"$c/sub/deeper/index.gmi"
	printf 'extra\n' >"$c/members/extra.txt"
	printf '{"a": 1}\n' >"$c/data.json"
	mkdir -p "$T/certs"
	# Nothing listens: the ports are only the site's (its links, the ports it
	# accepts in URLs), so any will do.
	cat >"$T/k.conf" <<-EOF
	server = {
	  hostnames = [ "localhost", "other.example", "edit.example" ];
	  gemini = { listen = [ "127.0.0.1:1965", "[::1]:11965" ]; port = 1966; };
	  gopher = { listen = [ "127.0.0.1:7070" ]; description = "A description";
	    geolocation = "Somewhere"; };
	  cert_dir = "$T/certs";
	  capsule = "$c";
	  editors = [ "$(printf 'a%.0s' $(seq 64))" ];
	  editing_hostname = "edit.example";
	};
	@include "$ROOT/tests/data/hostile-network.conf"
	EOF
	wire_roundtrip "$T/k.conf"
	wire_roundtrip "$T/k.conf" -c -p
	cmp "$c/sub/pic.png" "$T/wire/read/gopher/sub/pic.png" || fail "binary file changed"
	grep -q 'edit.example/network.conf' "$T/wire/read.replies" || fail "editing not asked"
}
