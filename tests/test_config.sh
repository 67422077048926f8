# tests/test_config.sh: the config loader and the dataset file. Broken configs
# (tests/conf/bad-*.conf, each listing the exact messages it must give as
# "# expect: " lines) must fail with those messages and no others; the shipped
# config must pass from any working folder; conf/network.conf must carry the seed.

# Every broken fixture: exit status 1, each expected message as a whole line of
# stderr, no message that is not expected, and the closing count. All fixtures
# are checked before the test fails, so one run shows every mismatch.
test_config_bad_fixtures() {
	cd "$ROOT"
	local f rc bad=0 n=0 exp line count
	local lsan=${LSAN_OPTIONS:+$LSAN_OPTIONS:}print_suppressions=0:suppressions=$ROOT/tests/conf/lsan-libconfig.supp
	for f in tests/conf/bad-*.conf; do
		n=$((n + 1))
		exp=$(sed -n 's/^# expect: //p' "$f")
		if [ -z "$exp" ]; then
			echo "FAIL: $f has no '# expect: ' line"; bad=$((bad + 1)); continue
		fi
		rc=0
		LSAN_OPTIONS=$lsan "$KILNET" -t -c "$f" >"$T/fixture.stdout" 2>"$T/fixture.stderr" || rc=$?
		local ok=1
		if [ "$rc" != 1 ]; then
			echo "FAIL: $f: exit status $rc, expected 1"; ok=0
		fi
		while IFS= read -r line; do
			grep -Fxq -- "$line" "$T/fixture.stderr" && continue
			echo "FAIL: $f: missing message: $line"; ok=0
		done <<<"$exp"
		while IFS= read -r line; do
			case $line in "kilnet: $f: "*) continue ;; esac
			grep -Fxq -- "$line" <<<"$exp" && continue
			echo "FAIL: $f: unexpected message: $line"; ok=0
		done <"$T/fixture.stderr"
		count=$(grep -c . <<<"$exp")
		if [ "$count" = 1 ]; then
			line="kilnet: $f: 1 error, nothing served"
		else
			line="kilnet: $f: $count errors, nothing served"
		fi
		if ! grep -Fxq -- "$line" "$T/fixture.stderr"; then
			echo "FAIL: $f: no closing line: $line"; ok=0
		fi
		if [ -s "$T/fixture.stdout" ]; then
			echo "FAIL: $f: wrote to stdout: $(head -c 200 "$T/fixture.stdout")"; ok=0
		fi
		[ $ok = 1 ] || { bad=$((bad + 1)); sed 's/^/     stderr: /' "$T/fixture.stderr"; }
	done
	echo "$n fixtures, $bad failed"
	[ "$n" -ge 20 ] || fail "expected at least 20 fixtures, found $n"
	[ $bad = 0 ]
}

# expect_config_ok WHAT DIR CONFIG: `kilnet -t -c CONFIG`, run from DIR, exits 0 and
# says the configuration is OK.
expect_config_ok() {
	local out rc=0
	out=$(cd "$2" && "$KILNET" -t -c "$3" 2>&1) || rc=$?
	expect_eq "exit status ($1)" 0 "$rc"
	expect_eq "output ($1)" "kilnet: configuration OK" "$out"
}

test_config_shipped_ok() {
	expect_config_ok "shipped" "$ROOT" conf/kilnet.conf
}

# Paths in a config (the @include too) start in the config's folder, not the
# working folder.
test_config_other_cwd() {
	expect_config_ok "from /tmp" /tmp "$ROOT/conf/kilnet.conf"
	expect_config_ok "from tests/" "$ROOT/tests" ../conf/kilnet.conf
}

# The messages name an included file as the config names it: relative includes
# under the config's folder, absolute ones as written (libconfig 1.5 would glue
# its include folder in front of an absolute path; the loader must not).
test_config_include_paths() {
	mkdir -p "$T/sub/data"
	cp "$ROOT/tests/conf/broken-network.conf" "$T/sub/data/net.conf"
	printf 'server = { workers = 1; };\n@include "data/net.conf"\n' >"$T/sub/rel.conf"
	printf 'server = { workers = 1; };\n@include "%s"\n' \
	    "$ROOT/tests/conf/broken-network.conf" >"$T/sub/abs.conf"
	local err rc=0
	err=$(cd / && "$KILNET" -t -c "$T/sub/rel.conf" 2>&1 >/dev/null) || rc=$?
	expect_eq "exit status (relative include)" 1 "$rc"
	expect_contains "relative include" "$err" \
	    "$T/sub/data/net.conf:9: network.members[1].name: contains a TAB character (U+0009); use a space"
	rc=0
	err=$(cd "$T/sub" && "$KILNET" -t -c abs.conf 2>&1 >/dev/null) || rc=$?
	expect_eq "exit status (absolute include)" 1 "$rc"
	expect_contains "absolute include" "$err" \
	    "$ROOT/tests/conf/broken-network.conf:10: network.members[1].statement: is empty; write at least one paragraph"
	# The working folder is not where includes are looked for.
	rc=0
	err=$(cd "$T/sub" && "$KILNET" -t -c "$ROOT/tests/conf/bad-include.conf" 2>&1 >/dev/null) || rc=$?
	expect_eq "exit status (from another folder)" 1 "$rc"
	expect_contains "include from another folder" "$err" \
	    "$ROOT/tests/conf/broken-network.conf:9: network.members[1].id: duplicate id"
}

test_config_missing_file() {
	local err rc=0
	err=$("$KILNET" -t -c "$T/nope.conf" 2>&1 >/dev/null) || rc=$?
	expect_eq "exit status" 1 "$rc"
	expect_contains "message" "$err" "$T/nope.conf: cannot read: No such file or directory"
	rc=0
	err=$("$KILNET" -t -c "$T" 2>&1 >/dev/null) || rc=$?
	expect_eq "exit status (a folder)" 1 "$rc"
	expect_contains "message (a folder)" "$err" "$T: is a folder, not a config file"
}

# Every server setting has a default: a config holding only the dataset passes.
# The default folders (certs, capsule) are beside the config, not in the working
# folder.
test_config_defaults() {
	mkdir -p "$T/conf/capsule" "$T/conf/certs" "$T/elsewhere"
	printf '@include "%s"\n' "$ROOT/conf/network.conf" >"$T/conf/only-network.conf"
	expect_config_ok "defaults" "$T/elsewhere" ../conf/only-network.conf
}

# The forms each setting may take: integer seconds, "off", an empty geolocation,
# IPv6 listen addresses, several hostnames.
test_config_good_values() {
	mkdir -p "$T/certs" "$T/capsule"
	cat >"$T/k.conf" <<-EOF
	server = {
	  hostnames = [ "example.org", "www.example.org", "localhost" ];
	  gemini = { listen = [ "127.0.0.1:1965", "[::1]:1965" ]; port = 443; };
	  gopher = { listen = [ "[::]:70" ]; description = "A test"; geolocation = ""; };
	  cert_dir = "certs";
	  capsule = "capsule";
	  handshake_timeout = 5;
	  request_timeout = 0.5;
	  write_timeout = 60;
	  max_connections = 1;
	  workers = 256;
	  access_log = "off";
	  anonymise_log = true;
	};
	@include "$ROOT/conf/network.conf"
	EOF
	expect_config_ok "k.conf" "$T" "$T/k.conf"
}

# conf/network.conf carries the seed text in full: each non-empty line of it is a
# whole string in the file, except the attribution lines, which are split into
# spokesperson and role ("<spokesperson>, <role>, said:"), and the quote's "- WHO".
test_config_dataset_has_seed() {
	local net=$ROOT/conf/network.conf seed=$ROOT/tests/data/keep-it-local.txt
	local line missing=0 n=0
	# "<spokesperson>, <role>, said:" for each member, from consecutive settings.
	sed -n 's/^ *spokesperson = "\(.*\)";$/S\1/p; s/^ *role = "\(.*\)";$/R\1/p' "$net" |
	    awk '/^S/ { s = substr($0, 2); next } /^R/ { print s ", " substr($0, 2) ", said:" }' \
	    >"$T/said"
	while IFS= read -r line || [ -n "$line" ]; do
		[ -z "$line" ] && continue
		n=$((n + 1))
		case $line in
		*", said:")
			grep -Fxq -- "$line" "$T/said" && continue ;;
		"- "*)
			grep -Fq -- "by = \"${line#- }\";" "$net" && continue ;;
		*)
			grep -Fq -- "\"$line\"" "$net" && continue ;;
		esac
		echo "FAIL: not in conf/network.conf: $line"; missing=$((missing + 1))
	done <"$seed"
	echo "$n seed lines, $missing missing"
	[ "$n" -ge 50 ] || fail "the seed copy looks short: $n lines"
	[ $missing = 0 ] || return 1

	# The 11 members in the seed's order: ids, and names as the seed gives them
	# (the line before each "said:" line).
	local ids names want_names
	ids=$(grep -oE '\bid = "[^"]*"' "$net" | sed 's/^id = "//; s/"$//' | tr '\n' ' ')
	expect_eq "member ids" "bradford bristol calderdale hackney kirklees lewisham newcastle oldham rotherham south-gloucestershire wirral " "$ids"
	want_names=$(grep -v '^$' "$seed" | grep -B1 ', said:$' | grep -v ', said:$' | grep -v '^--$')
	names=$(sed -n 's/^ *name = "\(.*\)";$/\1/p' "$net" | tail -n +2)
	expect_eq "member names" "$want_names" "$names"
	expect_eq "member count" 11 "$(grep -c . <<<"$names")"
}

# The issue 8 settings in every form they may take: rate limits (integers or
# not, an empty allow list, single addresses, IPv6 ranges), only PROXY listeners
# for Gemini (an empty plain list is then fine), PROXY listeners beside plain
# ones for Gopher, a user, and a chroot folder relative to the config.
test_config_limits_proxy_privileges() {
	mkdir -p "$T/certs" "$T/capsule" "$T/data"
	cat >"$T/k.conf" <<-EOF
	server = {
	  gemini = { listen = [ ]; proxy_listen = [ "127.0.0.1:1966", "[::1]:1966" ]; };
	  gopher = { listen = [ "127.0.0.1:70" ]; proxy_listen = [ "127.0.0.1:71" ]; };
	  cert_dir = "certs";
	  capsule = "capsule";
	  rate_limit = { rate = 0; burst = 1; max_per_address = 0; allow = [ ]; };
	  user = "kilnet";
	  chroot = "data";
	};
	@include "$ROOT/conf/network.conf"
	EOF
	expect_config_ok "k.conf" "$T" "$T/k.conf"
	cat >"$T/k2.conf" <<-EOF
	server = {
	  gemini = { proxy_listen = [ "127.0.0.1:1966" ]; };
	  rate_limit = { rate = 2; burst = 10.5; max_per_address = 100;
	                 allow = [ "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:0:0/96", "0.0.0.0/0" ]; };
	};
	@include "$ROOT/conf/network.conf"
	EOF
	expect_config_ok "k2.conf" "$T" "$T/k2.conf"
}
