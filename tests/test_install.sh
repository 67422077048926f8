# tests/test_install.sh: make install into a scratch DESTDIR (its own build folder,
# so the repo's build/ and ./kilnet stay as they are), the tree it leaves, the
# installed binary and example config serving for real, the man pages (mandoc
# -Tlint), the systemd unit, make uninstall; and that --help, kilnet.8 and
# kilnet.conf.5 keep up with the options and settings the code knows.
# needs: test_install_man_lint mandoc
# needs: test_install_low_port_capability setpriv
# needs: test_install_no_test_hooks strings

# install_into PREFIX: make install DESTDIR=$T/root with that prefix; the log in
# $T/install.log. The parent make's flags (make test T=...) stay out of it. The
# build folder, one per prefix, is shared by the tests of one run (beside their
# own folders), so the binary is compiled once, not once a test.
install_into() {
	local prefix=$1
	IBUILD_DIR=$(dirname "$T")/install-build$prefix
	(cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make -j4 install DESTDIR="$T/root" PREFIX="$prefix" IBUILD="$IBUILD_DIR") \
	    >"$T/install.log" 2>&1 || { tail -n 30 "$T/install.log"; fail "make install failed"; return 1; }
}

uninstall_from() {
	(cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make uninstall DESTDIR="$T/root" PREFIX="$1") \
	    >"$T/uninstall.log" 2>&1 || { cat "$T/uninstall.log"; fail "make uninstall failed"; return 1; }
}

# The files (mode and path) install is meant to leave under PREFIX=/usr.
expected_tree() {
	{
		echo "755 usr/sbin/kilnet"
		echo "644 usr/share/man/man8/kilnet.8"
		echo "644 usr/share/man/man5/kilnet.conf.5"
		echo "644 usr/lib/systemd/system/kilnet.service"
		echo "644 usr/share/kilnet/kilnet.conf"
		echo "644 usr/share/kilnet/network.conf"
		(cd "$ROOT" && find capsule -type f) | sed 's|^|644 usr/share/kilnet/|'
	} | sort
}

test_install_tree() {
	install_into /usr
	local got want
	got=$(cd "$T/root" && find . ! -type d -printf '%m %P\n' | sort)
	want=$(expected_tree)
	expect_eq "installed files and modes" "$want" "$got"
	got=$(cd "$T/root" && find . -type d ! -perm 755 -printf '%m %P\n')
	expect_eq "folders not 0755" "" "$got"
	# Every object was built in $T/build, none in the repo's build/.
	grep -- ' -o ' "$T/install.log" | grep -v -- "-o $IBUILD_DIR/" && fail "built outside IBUILD"
	# The pages and the unit got the paths of the prefix: /usr's are identity.
	cmp "$ROOT/kilnet.8" "$T/root/usr/share/man/man8/kilnet.8" || fail "kilnet.8 changed for PREFIX=/usr"
	cmp "$ROOT/contrib/kilnet.service" "$T/root/usr/lib/systemd/system/kilnet.service" ||
		fail "kilnet.service changed for PREFIX=/usr"
	return 0
}

test_install_binary_runs() {
	install_into /usr
	local bin=$T/root/usr/sbin/kilnet share=$T/root/usr/share/kilnet out version
	version=$(sed -n 's/^VERSION *= *//p' "$ROOT/Makefile")
	[ -n "$version" ] || { fail "no VERSION in the Makefile"; return 1; }
	out=$("$bin" -V)
	expect_eq "-V" "kilnet $version
default configuration: /etc/kilnet/kilnet.conf" "$out"
	out=$("$bin" --help)
	expect_contains "--help names the installed default" "$out" "Default: /etc/kilnet/kilnet.conf"
	out=$("$bin" -t -c "$share/kilnet.conf" 2>&1)
	expect_eq "-t on the installed example" "kilnet: configuration OK" "$out"
	grep -qx '  cert_dir = "/var/lib/kilnet";' "$share/kilnet.conf" ||
		fail "example config: cert_dir is not the unit's state folder"
	grep -qx '  capsule = "capsule";' "$share/kilnet.conf" ||
		fail "example config: capsule is not the folder beside it"
	# The example serves all four protocols on their own ports (issue 23 item
	# 5): its home page links Spartan and Nex with no port in the URL
	# (rendered, not bound: port 300 needs root).
	"$bin" --render "$T/site" -c "$share/kilnet.conf" 2>"$T/render.err" ||
		{ cat "$T/render.err"; fail "--render with the installed example failed"; }
	out=$(cat "$T/site/gemini/index.gmi")
	expect_contains "example: Spartan on its port" "$out" "=> spartan://localhost/ The same site over Spartan"
	expect_contains "example: Nex on its port" "$out" "=> nex://localhost/ The same site over Nex"
	# Without -c it looks where the unit and the manual say, and says so.
	local rc=0
	out=$("$bin" -t 2>&1) || rc=$?
	if [ -e /etc/kilnet/kilnet.conf ]; then return 0; fi
	expect_eq "exit status without a config" 1 "$rc"
	expect_contains "names the default path" "$out" "/etc/kilnet/kilnet.conf"
}

# The KILNET_TEST_* environment hooks (#ifdef KILNET_TEST_HOOKS) are in the
# test builds only: the installed binary has none of their names.
test_install_no_test_hooks() {
	install_into /usr
	local bin=$T/root/usr/sbin/kilnet hooks
	hooks=$(strings -a "$bin" | grep KILNET_TEST_ || true)
	expect_eq "KILNET_TEST_ strings in the installed binary" "" "$hooks"
	# The test build has them, so the check above can fail.
	strings -a "$KILNET" | grep -q KILNET_TEST_SANDBOX_PROBE ||
		fail "$KILNET has no KILNET_TEST_SANDBOX_PROBE: is the check above still looking?"
	grep -F -- '-DKILNET_TEST_HOOKS' "$T/install.log" && fail "the install build defines KILNET_TEST_HOOKS"
	return 0
}

# Set up as kilnet.8 says (copy the example to a config folder), on free ports
# and a scratch certificate folder: the installed tree serves the site.
test_install_example_serves() {
	install_into /usr
	mkdir -p "$T/etc" "$T/state"
	cp -R "$T/root/usr/share/kilnet/." "$T/etc/"
	sed -i "s|^  cert_dir = .*|  cert_dir = \"$T/state\";|" "$T/etc/kilnet.conf"
	GEM_PORT=$(free_port) GOPH_PORT=$(free_port)
	local sp=$(free_port) nx=$(free_port)
	KILNET="$T/root/usr/sbin/kilnet" start_kilnet inst -c "$T/etc/kilnet.conf" --workers 1 \
	    --gemini "127.0.0.1:$GEM_PORT" --gopher "127.0.0.1:$GOPH_PORT" \
	    --spartan "127.0.0.1:$sp" --nex "127.0.0.1:$nx"
	local out
	out=$(gemini "gemini://localhost:$GEM_PORT/")
	expect_contains "Gemini home page" "$out" "20 text/gemini"
	expect_contains "Gemini home page" "$out" "Keep it Local"
	local page
	page=$(cd "$ROOT/capsule" && find . -name '*.gmi' -printf '%P\n' | sort | head -n 1)
	if [ -n "$page" ]; then
		out=$(gemini "gemini://localhost:$GEM_PORT/$page")
		expect_contains "capsule/$page, installed beside the config" "$out" "20 text/gemini"
	fi
	out=$(gopher_raw $'\r\n')
	expect_contains "Gopher root menu" "$out" "Keep it Local"
	expect_contains "Gopher root links Spartan" "$out" "URL:spartan://localhost:$sp/"
	out=$(gopher_raw $'localhost / 0\r\n' "$sp")
	expect_contains "Spartan home page" "$out" $'2 text/gemini; charset=utf-8; lang=en\r\n# Keep it Local'
	out=$(gopher_raw $'/\n' "$nx")
	expect_contains "Nex home directory" "$out" "Keep it Local Network"
	expect_contains "Nex links Gemini" "$out" "=> gemini://localhost:$GEM_PORT/ "
	[ -s "$T/state/localhost.crt" ] && [ -s "$T/state/localhost.key" ] ||
		fail "no certificate generated in cert_dir"
	expect_eq "key mode" 600 "$(stat -c %a "$T/state/localhost.key")"
}

test_install_man_lint() {
	command -v mandoc >/dev/null || { fail "mandoc is missing: run make deps"; return 1; }
	install_into /usr
	local m8=$T/root/usr/share/man/man8/kilnet.8 m5=$T/root/usr/share/man/man5/kilnet.conf.5
	local out rc=0
	# mandoc looks for the pages an Xr names in the system's manual folders and
	# in the working folder, not in DESTDIR: lint copies that sit side by side.
	# (It may add notes about the host's own manual database; only messages
	# about these two pages count.)
	mkdir -p "$T/lint"
	cp "$m8" "$m5" "$T/lint/"
	out=$(cd "$T/lint" && mandoc -Tlint kilnet.8 kilnet.conf.5 2>&1) || rc=$?
	expect_eq "mandoc -Tlint status" 0 "$rc" || { echo "$out"; return 1; }
	out=$(grep -E '^mandoc: kilnet\.(8|conf\.5):' <<<"$out" || true)
	expect_eq "mandoc -Tlint messages" "" "$out"
	if command -v man >/dev/null && command -v groff >/dev/null; then
		for m in "$m8" "$m5"; do
			out=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
			expect_eq "man -l $(basename "$m") warnings" "" "$out"
		done
	fi
	# The rendered text, overstrike (bold) taken out.
	out=$(mandoc -Tutf8 "$m8" 2>/dev/null | sed 's/.\x08//g')
	expect_contains "kilnet.8 SIGNALS" "$out" "SIGHUP"
	out=$(mandoc -Tutf8 "$m5" 2>/dev/null | sed 's/.\x08//g')
	expect_contains "kilnet.conf.5 dataset" "$out" "DATASET"
}

test_install_systemd_unit() {
	install_into /usr
	local unit=$T/root/usr/lib/systemd/system/kilnet.service d
	for d in 'ExecStart=/usr/sbin/kilnet -c /etc/kilnet/kilnet.conf' \
	    'ExecStartPre=/usr/sbin/kilnet -t -c /etc/kilnet/kilnet.conf' \
	    'ExecReload=/bin/kill -HUP $MAINPID' 'DynamicUser=yes' 'StateDirectory=kilnet' \
	    'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
	    'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE'; do
		grep -qxF -- "$d" "$unit" || fail "unit lacks: $d"
	done
	if ! command -v systemd-analyze >/dev/null; then
		echo "systemd-analyze not installed: verify skipped"; return 0
	fi
	# verify wants the commands to exist: point them into DESTDIR, and the
	# Documentation= man pages at the installed ones.
	sed "s|/usr/sbin/kilnet|$T/root/usr/sbin/kilnet|g" "$unit" >"$T/kilnet.service"
	local out rc=0
	out=$(MANPATH="$T/root/usr/share/man" SYSTEMD_LOG_LEVEL=notice \
	    systemd-analyze verify "$T/kilnet.service" 2>&1) || rc=$?
	expect_eq "systemd-analyze verify status" 0 "$rc" || { echo "$out"; return 1; }
	expect_eq "systemd-analyze verify messages" "" "$out"
	# The sandbox's own score (0 best, 10 worst; "OK" is below 4): at most 2.0.
	out=$(systemd-analyze security --offline=yes "$T/kilnet.service" 2>/dev/null |
	    sed -n 's/.*Overall exposure level for kilnet.service: \([0-9.]*\).*/\1/p') || true
	if [ -n "$out" ]; then
		echo "exposure $out"
		awk -v e="$out" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure level $out, expected 2.0 or less"
	fi
}

test_install_uninstall() {
	install_into /usr
	uninstall_from /usr
	local left
	left=$(cd "$T/root" && find . ! -type d -printf '%P\n')
	expect_eq "files left after uninstall" "" "$left"
	[ ! -e "$T/root/usr/share/kilnet" ] || fail "usr/share/kilnet left behind"
	# A second uninstall has nothing to do and does not fail.
	uninstall_from /usr
}

# Another prefix: the binary's default config, the unit and the pages follow it.
test_install_prefix() {
	install_into /opt/kilnet
	local r=$T/root/opt/kilnet out
	out=$("$r/sbin/kilnet" -V | sed -n 2p)
	expect_eq "default config" "default configuration: /opt/kilnet/etc/kilnet/kilnet.conf" "$out"
	grep -qxF 'ExecStart=/opt/kilnet/sbin/kilnet -c /opt/kilnet/etc/kilnet/kilnet.conf' \
	    "$r/lib/systemd/system/kilnet.service" || fail "unit paths not rewritten"
	grep -qF '/opt/kilnet/etc/kilnet/kilnet.conf' "$r/share/man/man8/kilnet.8" ||
		fail "kilnet.8 paths not rewritten"
	grep -qF '/opt/kilnet/share/kilnet' "$r/share/man/man5/kilnet.conf.5" ||
		fail "kilnet.conf.5 paths not rewritten"
	uninstall_from /opt/kilnet
	[ -z "$(find "$T/root" ! -type d)" ] || fail "files left after uninstall"
}

# Every long option main.c knows is in --help and in kilnet.8.
test_install_docs_options() {
	local names help n
	names=$(sed -n '/long_options\[\] = {/,/^};/p' "$ROOT/src/main.c" | grep -o '{ "[a-z-]*"' | tr -d '{" ')
	[ -n "$names" ] || { fail "no options found in src/main.c"; return 1; }
	help=$("$KILNET" --help)
	for n in $names; do
		expect_contains "--help" "$help" "--$n"
		grep -qF "Fl Fl $n" "$ROOT/kilnet.8" || fail "kilnet.8 lacks --$n"
	done
	# Short options: in the getopt string.
	local short
	short=$(grep -o 'getopt_long([^"]*"[^"]*"' "$ROOT/src/main.c" | sed 's/.*"\(.*\)"/\1/' | tr -d ':')
	for n in $(grep -o . <<<"$short"); do
		expect_contains "--help" "$help" "-$n,"
		grep -qE "^\.It Fl $n( |$)" "$ROOT/kilnet.8" || fail "kilnet.8 lacks -$n"
	done
	local wide
	wide=$(awk 'length($0) > 80' <<<"$help")
	expect_eq "--help lines over 80 columns" "" "$wide"
}

# Every setting config.c accepts is described in kilnet.conf.5.
test_install_docs_settings() {
	local keys k
	keys=$(awk '/_keys\[\] = \{/ && !/top_keys/ { on = 1 } on { print } on && /\};/ { on = 0 }' \
	    "$ROOT/src/config.c" | grep -o '"[a-z_]*"' | tr -d '"' | sort -u)
	[ -n "$keys" ] || { fail "no settings found in src/config.c"; return 1; }
	for k in $keys; do
		grep -qE "(^\.| )Ic (server\.)?$k( |$)" "$ROOT/kilnet.conf.5" ||
			fail "kilnet.conf.5 does not describe the setting $k"
	done
}

# The configurations shown in kilnet.conf.5 pass kilnet -t.
test_install_docs_examples() {
	awk -v dir="$T" '/^\.Bd -literal/ { n++; f = dir "/ex" n ".conf"; next }
	    /^\.Ed/ { f = ""; next } f { gsub(/\\e/, "\\"); print > f }' "$ROOT/kilnet.conf.5"
	local f net= out
	for f in "$T"/ex*.conf; do
		grep -q '^network = {' "$f" && net=$f
	done
	[ -n "$net" ] || { fail "kilnet.conf.5 shows no dataset"; return 1; }
	mkdir -p "$T/capsule"
	cp "$net" "$T/network.conf"
	for f in "$T"/ex*.conf; do
		grep -q '^server = {' "$f" || continue
		sed -i "s|/var/lib/kilnet|$T/certs|; s|/var/log/kilnet/|$T/|" "$f"
		grep -q '^@include' "$f" || echo '@include "network.conf"' >>"$f"
		out=$("$KILNET" -t -c "$f" 2>&1) || true
		expect_eq "kilnet.conf.5 example $(basename "$f")" "kilnet: configuration OK" "$out" ||
			{ cat "$f"; return 1; }
	done
	# The dataset alone, with the default server settings.
	echo '@include "network.conf"' >"$T/dataset-only.conf"
	out=$("$KILNET" -t -c "$T/dataset-only.conf" 2>&1) || true
	expect_eq "kilnet.conf.5 dataset example" "kilnet: configuration OK" "$out"
}

# A free port below 1024 (on 127.0.0.1), for the test of the capability.
free_low_port() {
	local p
	for _ in $(seq 1 200); do
		p=$(( 600 + RANDOM % 424 ))
		[ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && continue
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
		echo "$p"; return
	done
	return 1
}

# What the systemd unit does (a user that is not root, CAP_NET_BIND_SERVICE as
# an ambient capability, certificates in a folder of its own), done with
# setpriv: the installed binary binds ports below 1024 and serves; without the
# capability it cannot, and says where.
test_install_low_port_capability() {
	if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
		skip "needs root and the user nobody"
	fi
	install_into /usr
	# The user must reach the binary, the config and its certificate folder.
	chmod 711 "$(dirname "$T")" "$T"
	mkdir -p "$T/etc" "$T/state"
	cp -R "$T/root/usr/share/kilnet/." "$T/etc/"
	sed -i "s|^  cert_dir = .*|  cert_dir = \"$T/state\";|" "$T/etc/kilnet.conf"
	chown nobody "$T/state"
	local drop=(--reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	# Spartan's port is below 1024 too, as the shipped 300 is; Nex's is not.
	GEM_PORT=$(free_low_port) GOPH_PORT=$(free_low_port)
	local sp nx
	sp=$(free_low_port) nx=$(free_port)
	local bin=$T/root/usr/sbin/kilnet out rc=0
	local listen=(--gemini "127.0.0.1:$GEM_PORT" --gopher "127.0.0.1:$GOPH_PORT"
	    --spartan "127.0.0.1:$sp" --nex "127.0.0.1:$nx")
	out=$(setpriv "${drop[@]}" "$bin" -c "$T/etc/kilnet.conf" --workers 1 \
	    "${listen[@]}" 2>&1) || rc=$?
	expect_eq "exit status without the capability" 1 "$rc"
	expect_contains "names the address" "$out" "127.0.0.1:$GEM_PORT"
	KILNET=setpriv start_kilnet capable "${drop[@]}" --inh-caps=+net_bind_service \
	    --ambient-caps=+net_bind_service "$bin" -c "$T/etc/kilnet.conf" --workers 1 \
	    "${listen[@]}"
	out=$(gemini "gemini://localhost:$GEM_PORT/")
	expect_contains "Gemini on port $GEM_PORT" "$out" "20 text/gemini"
	out=$(gopher_raw $'\r\n')
	expect_contains "Gopher on port $GOPH_PORT" "$out" "Keep it Local"
	wait_port 127.0.0.1 "$sp" || fail "no Spartan listener on port $sp"
	out=$(gopher_raw $'localhost / 0\r\n' "$sp")
	expect_contains "Spartan on port $sp" "$out" "2 text/gemini"
	expect_eq "certificate owner" nobody "$(stat -c %U "$T/state/localhost.key")"
}
