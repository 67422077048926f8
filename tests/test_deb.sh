# tests/test_deb.sh: the Debian package (debian/; make deb builds it into
# build/deb/). The version is written once, in the Makefile: debian/changelog
# and kilnet -V agree with it. make deb-check builds the package and runs
# test_deb_package on it: installed in a scratch root, an overlay of this
# system in mount, PID and network namespaces of its own (nothing it does
# reaches the system, and it has no network: the package must install from
# the .deb and what is installed already), it checks the config, serves by
# hand (Spartan and Nex on the shipped ports), passes systemd-analyze and
# hardening-check, and removes and purges.
# make test skips it: it needs the built package (make deb: a clean build
# with dpkg-buildpackage, the unit tests and lintian, about 20 s) and
# debhelper, lintian and devscripts, which make deps does not install.

# The version of the Makefile's VERSION, debian/changelog's top entry and the
# binary's -V are one.
test_deb_version_agrees() {
	local make_v deb_v bin_v
	make_v=$(sed -n 's/^VERSION *= *//p' "$ROOT/Makefile")
	deb_v=$(sed -n '1s/^kilnet (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")
	bin_v=$("$KILNET" -V | sed -n '1s/^kilnet //p')
	[ -n "$make_v" ] || { fail "no VERSION in the Makefile"; return 1; }
	expect_eq "debian/changelog's version (a native package: no revision)" "$make_v" "$deb_v"
	expect_eq "kilnet -V" "$make_v" "$bin_v"
	# The source package is native (3.0 (native)): its version has no "-N".
	expect_eq "debian/source/format" "3.0 (native)" "$(cat "$ROOT/debian/source/format")"
}

# The check itself, run inside the scratch root (as root, in its own network
# namespace: every port is free there). Prints "ok ..." or "FAIL ..." a line,
# exits 1 if any failed.
deb_inside() {
	cat <<-'EOF'
	#!/bin/bash
	set -u
	export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
	. "$ROOT/tests/lib.sh"
	mkdir -p "$T"
	bad=0
	ok() { echo "ok   $*"; }
	no() { echo "FAIL $*"; bad=1; }
	conf=/etc/kilnet/kilnet.conf unit=/lib/systemd/system/kilnet.service

	apt-get install -y -q "$DEB" >"$T/install.log" 2>&1 &&
	    ok "apt-get install $(basename "$DEB")" ||
	    { no "apt-get install"; cat "$T/install.log"; exit 1; }
	for f in /usr/sbin/kilnet /usr/share/man/man8/kilnet.8.gz \
	    /usr/share/man/man5/kilnet.conf.5.gz "$conf" /etc/kilnet/network.conf \
	    /etc/kilnet/capsule/about.gmi "$unit"; do
		[ -e "$f" ] || no "not installed: $f"
	done
	c=$(dpkg-query -W -f='${Conffiles}\n' kilnet | awk 'NF { print $1 }' | sort | tr '\n' ' ')
	[ "$c" = "$(cd / && find etc/kilnet -type f | sed 's|^|/|' | sort | tr '\n' ' ')" ] &&
	    ok "conffiles: $c" || no "conffiles: $c"
	# Enabled the Debian way: the postinst's deb-systemd-helper made the
	# symlink and keeps its state (no systemd runs here: nothing started).
	[ "$(readlink /etc/systemd/system/multi-user.target.wants/kilnet.service)" = "$unit" ] &&
	    [ -e /var/lib/systemd/deb-systemd-helper-enabled/kilnet.service.dsh-also ] &&
	    ok "enabled by deb-systemd-helper (multi-user.target.wants)" ||
	    no "the unit is not enabled"

	out=$(kilnet -t -c "$conf" 2>&1)
	[ "$out" = "kilnet: configuration OK" ] && ok "kilnet -t -c $conf" ||
	    no "kilnet -t -c $conf: $out"

	# Started by hand, as root, with the installed config: it serves the
	# home page over all four protocols (workers chrooted, as nobody),
	# Gemini and Gopher on the ports given, Spartan and Nex on the config's
	# own, 300 and 1900: the package ships them on.
	ip link set lo up
	GEM_PORT=11965 GOPH_PORT=17070
	kilnet -c "$conf" --gemini "127.0.0.1:$GEM_PORT" --gopher "127.0.0.1:$GOPH_PORT" \
	    >"$T/kilnet.log" 2>&1 &
	pid=$!
	if wait_port 127.0.0.1 "$GEM_PORT" && wait_port 127.0.0.1 "$GOPH_PORT" &&
	    wait_port 127.0.0.1 300 && wait_port 127.0.0.1 1900; then
		out=$(gemini "gemini://localhost:$GEM_PORT/" 2>&1)
		[[ $out == "20 text/gemini"* && $out == *"# Keep it Local Network"* ]] &&
		    ok "Gemini home page" || no "Gemini home page: $(head -c 300 <<<"$out")"
		out=$(gopher_raw $'\r\n' 2>&1)
		[[ $out == i*"Keep it Local"* && $out == *$'\r\n.\r' ]] &&
		    ok "Gopher root menu" || no "Gopher root menu: $(head -c 300 <<<"$out")"
		out=$(gopher_raw $'localhost / 0\r\n' 300 2>&1)
		[[ $out == "2 text/gemini"* && $out == *"# Keep it Local Network"* ]] &&
		    ok "Spartan home page on port 300" || no "Spartan home page: $(head -c 300 <<<"$out")"
		out=$(gopher_raw $'/\n' 1900 2>&1)
		[[ $out == "Keep it Local Network"* && $out == *"=> spartan://localhost/ "* ]] &&
		    ok "Nex home directory on port 1900" || no "Nex home directory: $(head -c 300 <<<"$out")"
		w=$(pgrep -P "$pid" | head -n 1)
		[ -n "$w" ] && [ "$(awk '/^Uid:/ { print $3 }' "/proc/$w/status")" = \
		    "$(id -u nobody)" ] && ok "a worker runs as nobody" || no "no worker as nobody"
	else
		no "kilnet did not listen"; cat "$T/kilnet.log"
	fi
	kill -TERM "$pid"; wait "$pid"; st=$?
	[ "$st" = 0 ] && ok "stopped on SIGTERM" || no "exit status $st on SIGTERM"
	[ -s /var/lib/kilnet/localhost.key ] && ok "certificate made in /var/lib/kilnet" ||
	    no "no certificate in /var/lib/kilnet"

	out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ] &&
	    ok "systemd-analyze verify" || no "systemd-analyze verify: $out"
	out=$(systemd-analyze security --offline=yes "$unit" 2>&1)
	e=$(sed -n 's/.*Overall exposure level for kilnet.service: \([0-9.]*\).*/\1/p' <<<"$out")
	if [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e <= 2.0) }'; then
		ok "systemd-analyze security: exposure $e"
	else
		no "systemd-analyze security: exposure ${e:-?}, at most 2.0 expected"
		grep '✗' <<<"$out"
	fi

	# Every hardening-check but one must pass. Control flow integrity (the
	# IBT and SHSTK properties) cannot, on a system whose C library's start
	# files (Scrt1.o, crti.o) carry neither: the linker drops the properties
	# from every program linked with them. Debian 12's are so; it is allowed
	# only when a trivial program built with -fcf-protection lacks it too,
	# and kilnet's own code must then show -fcf-protection's endbr64.
	out=$(hardening-check /usr/sbin/kilnet 2>&1); rc=$?
	if [ "$rc" = 0 ]; then
		ok "hardening-check: every check"
	elif [ "$(grep -c ': no' <<<"$out")" = 1 ] &&
	    grep -q 'Control flow integrity: no' <<<"$out" &&
	    ! printf 'int main(void) { return 0; }\n' | cc -x c -fcf-protection \
	        -Wl,-z,cet-report=error -o /dev/null - 2>/dev/null &&
	    [ "$(objdump -d /usr/sbin/kilnet | grep -c endbr64)" -gt 100 ]; then
		ok "hardening-check: every check but control flow integrity, which" \
		    "this C library's start files rule out (kilnet's code has endbr64)"
	else
		no "hardening-check"
	fi
	echo "$out" | sed 's/^/     | /'

	apt-get remove -y -q kilnet >"$T/remove.log" 2>&1 || { no "apt-get remove"; cat "$T/remove.log"; }
	st=$(dpkg-query -W -f='${Status}' kilnet 2>/dev/null)
	[ "$st" = "deinstall ok config-files" ] && [ ! -e /usr/sbin/kilnet ] &&
	    [ -f "$conf" ] && [ -f /etc/kilnet/capsule/about.gmi ] &&
	    ok "apt-get remove: binary gone, conffiles left ($st)" ||
	    no "apt-get remove: status '$st', $(ls /etc/kilnet 2>&1)"
	apt-get purge -y -q kilnet >"$T/purge.log" 2>&1 || { no "apt-get purge"; cat "$T/purge.log"; }
	st=$(dpkg-query -W -f='${Status}' kilnet 2>/dev/null)
	[ -z "$st" ] || [ "$st" = "unknown ok not-installed" ] || no "after purge: status '$st'"
	[ ! -e /etc/kilnet ] && ok "apt-get purge: /etc/kilnet gone" || no "after purge: $(find /etc/kilnet)"
	[ ! -e /var/lib/kilnet ] && ok "apt-get purge: /var/lib/kilnet gone" ||
	    no "after purge: /var/lib/kilnet is still there"
	[ ! -e /etc/systemd/system/multi-user.target.wants/kilnet.service ] &&
	    ok "apt-get purge: no longer enabled" || no "after purge: still enabled"
	exit $bad
	EOF
}

test_deb_package() {
	[ -n "${KILNET_DEB:-}" ] ||
		skip "make deb-check runs it, on the package make deb builds"
	[ "$(id -u)" = 0 ] || skip "needs root: namespaces, mounts, chroot"
	local t missing=
	for t in unshare chroot mount ip apt-get dpkg-query hardening-check systemd-analyze \
	    objdump cc; do
		command -v "$t" >/dev/null || missing+=" $t"
	done
	[ -z "$missing" ] || { fail "not installed:$missing"; return 1; }
	case $KILNET_DEB in /*) ;; *) KILNET_DEB=$ROOT/$KILNET_DEB ;; esac
	[ -f "$KILNET_DEB" ] || { fail "no package at $KILNET_DEB"; return 1; }
	# The scratch root: this system read-only below, the writes in $T/upper.
	mkdir -p "$T/upper" "$T/work" "$T/merged"
	deb_inside >"$T/inside.sh"
	local rc=0
	unshare --mount --pid --net --fork --kill-child bash -c '
		set -e
		m=$1
		mount --make-rprivate /
		mount -t overlay overlay -o "lowerdir=/,upperdir=$2,workdir=$3" "$m"
		mount -t proc proc "$m/proc"
		mount --rbind /dev "$m/dev"
		mount -t sysfs sysfs "$m/sys"
		mount -t tmpfs tmpfs "$m/run"
		mount -t tmpfs tmpfs "$m/tmp"
		cp "$4" "$m/tmp/"
		cp "$5" "$m/tmp/inside.sh"
		exec chroot "$m" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		    ROOT="$6" TESTBIN="$6/tests/bin" T=/tmp/check \
		    DEB="/tmp/$(basename "$4")" bash /tmp/inside.sh
	' deb-check "$T/merged" "$T/upper" "$T/work" "$KILNET_DEB" "$T/inside.sh" "$ROOT" \
	    >"$T/check.log" 2>&1 || rc=$?
	cat "$T/check.log"
	# Kept beside the package, for make deb-check to show.
	cp "$T/check.log" "$(dirname "$KILNET_DEB")/deb-check.log"
	[ "$rc" = 0 ] || fail "the package check failed (status $rc)"
}
