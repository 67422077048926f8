# tests/test_clients.sh: the served site as real clients show it (issue 9, items 5
# and 6). lynx and curl read the Gopher site and their output is compared with
# tests/clients/*.expected, dumps that were read by eye once (ports are written
# GOPHER_PORT, GEMINI_PORT, SPARTAN_PORT and NEX_PORT there); amfora, a Gemini
# client for the terminal, reads the Gemini site under tmux
# (tests/clients/amfora-capture.sh). The server serves all four protocols, as
# the shipped config does, so each home page carries every "same site over"
# link. And what is sent wastes nothing: no trailing spaces, no decorative
# lines, home pages under 2 KB in gemtext, the Gopher root menu, Spartan and Nex.
#
# After an intended change to the pages, rewrite the expected dumps with
#   UPDATE_EXPECTED=1 make test-quick T=clients
# and read the diff before committing it.
# needs: test_clients_lynx_gopher lynx
# needs: test_clients_curl_gopher curl
# needs: test_clients_amfora_gemini amfora tmux

CL_DIR=$ROOT/tests/clients
# The home pages of the default dataset stay below this many bytes.
CL_HOME_MAX=2048

cl_start() {
	SP_PORT=$(free_port) NX_PORT=$(free_port)
	write_conf "$T/k.conf" "spartan = { listen = [ \"127.0.0.1:$SP_PORT\" ]; };" \
	    "nex = { listen = [ \"127.0.0.1:$NX_PORT\" ]; };"
	start_kilnet k -c "$T/k.conf"
	wait_port 127.0.0.1 "$SP_PORT" && wait_port 127.0.0.1 "$NX_PORT" ||
		fail "no Spartan or Nex listener"
}

# cl_compare NAME FILE: FILE (a client's output) with its ports written as names,
# CRs dropped, against tests/clients/NAME.expected.
cl_compare() {
	local name=$1 got=$T/$1.got
	tr -d '\r' <"$2" | sed -e "s/:$GOPH_PORT\\b/:GOPHER_PORT/g" \
	    -e "s/:$GEM_PORT\\b/:GEMINI_PORT/g" -e "s/:$SP_PORT\\b/:SPARTAN_PORT/g" \
	    -e "s/:$NX_PORT\\b/:NEX_PORT/g" -e "s/\\t$GOPH_PORT\$/\\tGOPHER_PORT/" >"$got"
	if [ -n "${UPDATE_EXPECTED:-}" ]; then
		cp "$got" "$CL_DIR/$name.expected"
		echo "wrote $CL_DIR/$name.expected"
		return 0
	fi
	[ -f "$CL_DIR/$name.expected" ] || { fail "$CL_DIR/$name.expected is missing"; return 1; }
	diff -u "$CL_DIR/$name.expected" "$got" ||
		fail "$name: what the client shows differs from tests/clients/$name.expected"
}

# cl_lynx URL: lynx's text dump of URL, 80 columns, UTF-8, no user config.
cl_lynx() {
	HOME=$T LC_ALL=C.UTF-8 timeout 20 lynx -dump -nostatus -width=80 \
	    -display_charset=UTF-8 -assume_charset=UTF-8 "$1"
}

cl_curl() { timeout 20 curl -sS --max-time 10 "$1"; }

test_clients_lynx_gopher() {
	cl_start
	local b=gopher://127.0.0.1:$GOPH_PORT
	cl_lynx "$b/" >"$T/root"
	cl_compare lynx-root "$T/root"
	cl_lynx "$b/1/members" >"$T/members"
	cl_compare lynx-members "$T/members"
	cl_lynx "$b/0/members/hackney.txt" >"$T/hackney"
	cl_compare lynx-hackney "$T/hackney"
	cl_lynx "$b/0/join.txt" >"$T/join"
	cl_compare lynx-join "$T/join"
}

test_clients_curl_gopher() {
	cl_start
	local b=gopher://127.0.0.1:$GOPH_PORT
	cl_curl "$b/" >"$T/root"
	cl_compare curl-root "$T/root"
	cl_curl "$b/0/members/rotherham.txt" >"$T/rotherham"
	cl_compare curl-rotherham "$T/rotherham"
	cl_curl "$b/7/search%09co-operative" >"$T/search"
	cl_compare curl-search "$T/search"
}

# amfora under tmux: the home page and one member page as a reader sees them.
test_clients_amfora_gemini() {
	cl_start
	local rc=0
	bash "$CL_DIR/amfora-capture.sh" "localhost:$GEM_PORT" "$T/screens" || rc=$?
	if [ "$rc" = 77 ]; then
		echo "skipped: amfora or tmux is not installed (make deps installs them)"
		return 0
	fi
	[ "$rc" = 0 ] || { fail "amfora-capture.sh exited $rc"; return 1; }
	cl_compare amfora-home "$T/screens/home.screen"
}

# Every page of the default dataset, as --render writes it with all four
# protocols on their default ports (the shipped config; rendered, never bound):
# no line ends in a space or TAB (in a menu: no display text does), no line is
# only decoration (rules of - = * _ ~ #), and the four home pages are under 2 KB.
test_clients_low_bandwidth() {
	GEM_PORT=1965 GOPH_PORT=70 write_conf "$T/k.conf" \
	    'spartan = { listen = [ "127.0.0.1:300" ]; };' 'nex = { listen = [ "127.0.0.1:1900" ]; };'
	"$KILNET" --render "$T/site" -c "$T/k.conf" 2>"$T/err" ||
		{ cat "$T/err"; fail "kilnet --render failed"; return 1; }
	local home root sp nx f bad=0
	home=$(stat -c %s "$T/site/gemini/index.gmi")
	root=$(stat -c %s "$T/site/gopher/gophermap")
	sp=$(stat -c %s "$T/site/spartan/index.gmi")
	nx=$(stat -c %s "$T/site/nex/index")
	echo "home page: $home bytes in gemtext, $root bytes in the Gopher root menu," \
	    "$sp over Spartan, $nx over Nex"
	[ "$home" -lt "$CL_HOME_MAX" ] || fail "gemtext home page: $home bytes, not under $CL_HOME_MAX"
	[ "$root" -lt "$CL_HOME_MAX" ] || fail "Gopher root menu: $root bytes, not under $CL_HOME_MAX"
	[ "$sp" -lt "$CL_HOME_MAX" ] || fail "Spartan home page: $sp bytes, not under $CL_HOME_MAX"
	[ "$nx" -lt "$CL_HOME_MAX" ] || fail "Nex home directory: $nx bytes, not under $CL_HOME_MAX"
	while IFS= read -r f; do
		case $f in *.png|*.jpg|*.gif) continue ;; esac
		if LC_ALL=C grep -nE $'[ \t]\r?$' "$f"; then
			echo "FAIL: $f: a line ends in white space"; bad=$((bad + 1))
		fi
		if LC_ALL=C grep -nE $'^(i|[#>] *)?([-=*_~#] *){3,}(\t.*)?\r?$' "$f"; then
			echo "FAIL: $f: a line of decoration"; bad=$((bad + 1))
		fi
		case $f in
		*/gophermap|*/gopher/*.gmi|*/gopher/*/*.gmi)
			if LC_ALL=C grep -nE $'^[^\t]* \t' "$f"; then
				echo "FAIL: $f: a menu item's text ends in a space"; bad=$((bad + 1))
			fi ;;
		*.gmi)
			# Gemtext: at most one empty line in a row, none at the end.
			if [ -n "$(awk 'prev == "" && $0 == "" && NR > 1 { print NR } { prev = $0 }' "$f")" ] ||
			    [ -z "$(tail -n 1 "$f")" ]; then
				echo "FAIL: $f: empty lines that carry nothing"; bad=$((bad + 1))
			fi ;;
		esac
	done < <(find "$T/site" -type f | sort)
	[ "$bad" -eq 0 ] || fail "$bad pages waste bytes"
}
