# tests/test_titan.sh: Titan uploads against the real server over TLS, through the C
# client tests/titan.c: the editors' certificates (none 60, unlisted 61), the upload
# limits (max_upload 59 before the body, a body cut short dropped at upload_timeout
# with nothing written), a dataset kilnet -t refuses (59 LINE: ...), a good dataset
# or capsule file stored and served (30 to the changed page), what a restart and
# kilnet -t then read, kill -9 of the master at each step of a store, the dataset's
# source and its versions for editors, and editing_hostname (the public name asks no
# certificate and answers Titan with 53).
#
# Every test works on its own copies of the dataset ($T/network.conf) and of the
# capsule ($T/capsule): uploads never reach the repository's files.
# needs: test_titan_* openssl python3

# tit_setup: the copies, the editor's certificate (ED_FP its SHA-256, lower-case
# hex), S (the state folder tit_start configures) and the member ids before
# (OLD_IDS) and after (NEW_IDS) the 12th council of tit_add_member.
tit_setup() {
	mkdir -p "$T/w" "$T/capsule"
	cp "$ROOT/conf/network.conf" "$T/network.conf"
	cp -R "$ROOT/capsule/." "$T/capsule/"
	export DATASET=$T/network.conf CAPSULE=$T/capsule
	tit_cert ed
	ED_FP=$(tit_fp "$T/ed.crt")
	S=$T/state
	OLD_IDS=$(sed -n 's/^      id = "\([a-z0-9-]*\)";$/\1/p' "$T/network.conf" | LC_ALL=C sort)
	NEW_IDS=$(printf '%s\ntestshire\n' "$OLD_IDS" | LC_ALL=C sort)
	[ "$(printf '%s\n' "$OLD_IDS" | wc -l)" -eq 11 ] || fail "tit_setup: expected 11 ids in conf/network.conf"
	tit_add_member "$T/network.conf" "$T/w/new.conf" testshire "Testshire County Council"
}

# tit_cert NAME: a self-signed client certificate $T/NAME.crt and key $T/NAME.key.
tit_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/$1.key" -out "$T/$1.crt" -days 30 -subj "/CN=$1" 2>/dev/null
}

# tit_fp CERT: the SHA-256 of the certificate (DER), 64 lower-case hex digits.
tit_fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# tit_start [SETTINGS...]: a server with the editor listed ($TIT_EDITORS when set),
# upload_timeout 1 s and the state in $S (no state_dir line when TIT_NO_STATE_DIR=1),
# its config $TIT_CONF (default $T/k.conf). Sets B, the public base URL.
tit_start() {
	local conf=${TIT_CONF:-$T/k.conf} sd=()
	[ "${TIT_NO_STATE_DIR:-0}" = 1 ] || sd=("state_dir = \"${TIT_STATE_DIR:-$S}\";")
	mkdir -p "$(dirname "$conf")"
	write_conf "$conf" "editors = ${TIT_EDITORS:-[ \"$ED_FP\" ]};" 'upload_timeout = 1.0;' \
		${sd[@]+"${sd[@]}"} "$@"
	start_kilnet k -c "$conf"
	B="gemini://localhost:$GEM_PORT"
}

# tit_add_member IN OUT ID NAME: IN with one more council at the end of its members.
tit_add_member() {
	python3 - "$@" <<'PY'
import sys
src, dst, mid, name = sys.argv[1:5]
text = open(src, 'rb').read()
end = text.rindex(b'\n  );')        # the end of the members list
member = ('''
    {
      id = "%s";
      name = "%s";
      spokesperson = "Cllr Tess Tester";
      role = "Leader of %s";
      statement = [
        "\u201cWe keep it local: every service we can, commissioned close to home.\u201d"
      ];
    }''' % (mid, name, name)).encode('utf-8')
open(dst, 'wb').write(text[:end] + b',' + member + text[end:])
PY
}

# tit_break IN OUT LINE TEXT: IN with its line LINE replaced by TEXT.
tit_break() {
	awk -v n="$3" -v t="$4" 'NR == n { print t; next } { print }' "$1" >"$2"
}

# tit OUT [titan options...]: the client against the Gemini port; the response to
# OUT, the client's messages to OUT.err (shown when it failed). Never fails: the
# tests check the header.
tit() {
	local o=$1 rc=0
	shift
	"$TESTBIN/titan" --port "$GEM_PORT" "$@" >"$o" 2>"$o.err" || rc=$?
	if [ $rc -ne 0 ]; then
		echo "  (titan $* exited $rc)"
		sed 's/^/    /' "$o.err" | head -n 5
	fi
	return 0
}

# tit_upload OUT PATH FILE [titan options...]: the editor uploads FILE to PATH
# (mime text/gemini for .gmi, else text/plain), URL host and SNI $TIT_HOST
# (default localhost).
tit_upload() {
	local o=$1 path=$2 file=$3 mime=text/plain host=${TIT_HOST:-localhost}
	shift 3
	case $path in *.gmi) mime=text/gemini ;; esac
	tit "$o" --sni "$host" --cert "$T/ed.crt" --key "$T/ed.key" \
		--url "titan://$host:$GEM_PORT$path;size=AUTO;mime=$mime" --file "$file" "$@"
}

# tit_get OUT PATH [titan options...]: a Gemini request for PATH on localhost.
tit_get() {
	local o=$1 path=$2
	shift 2
	tit "$o" --url "gemini://localhost:$GEM_PORT$path" "$@"
}
tit_get_ed() { local o=$1 path=$2; shift 2; tit_get "$o" "$path" --cert "$T/ed.crt" --key "$T/ed.key" "$@"; }

# tit_head FILE: the response's header line without CRLF.
tit_head() { head -n 1 "$1" | tr -d '\r\n'; }
# tit_body FILE OUT: the response's body (after the header line), byte for byte.
tit_body() {
	local n
	n=$(head -n 1 "$1" | wc -c)
	tail -c +$((n + 1)) "$1" >"$2"
}

# tit_expect WHAT EXPECTED-HEADER FILE
tit_expect() { expect_eq "$1" "$2" "$(tit_head "$3")"; }
# tit_expect_status WHAT NN FILE: only the two-digit status.
tit_expect_status() {
	local h
	h=$(tit_head "$3")
	[ "${h:0:2}" = "$2" ] && [[ ${h:2:1} == " " || ${#h} -eq 2 ]] && return 0
	fail "$1: expected status $2, got $(printf '%q' "$h")"
}

tit_ms() { date +%s%3N; }

# tit_ids_gemini / tit_ids_gopher: the member ids on the first page of /members/ and
# in the Gopher member menu, sorted, one a line.
tit_ids_gemini() {
	"$TESTBIN/gemget" 127.0.0.1 "$GEM_PORT" "gemini://localhost:$GEM_PORT/members/" 2>/dev/null |
		grep '^=>' | grep -o 'members/[a-z0-9-]*\.gmi' | sed 's|^members/||; s|\.gmi$||' |
		LC_ALL=C sort -u
}
tit_ids_gopher() {
	gopher_raw $'/members\r\n' 2>/dev/null |
		LC_ALL=C awk -F'\t' '/^0/ && $2 ~ /^\/members\/[a-z0-9-]+\.txt$/ {
			sub(/^\/members\//, "", $2); sub(/\.txt$/, "", $2); print $2 }' |
		LC_ALL=C sort -u
}

# tit_wait_ids WHAT IDS MS: until both /members/ (Gemini) and the Gopher member
# menu list exactly IDS, MS milliseconds at most (one last look after the deadline).
tit_wait_ids() {
	local what=$1 want=$2 deadline g p
	deadline=$(( $(tit_ms) + $3 ))
	while :; do
		g=$(tit_ids_gemini) p=$(tit_ids_gopher)
		[ "$g" = "$want" ] && [ "$p" = "$want" ] && return 0
		[ "$(tit_ms)" -le "$deadline" ] || break
		sleep 0.05
	done
	expect_eq "$what: Gemini /members/" "$want" "$g"
	expect_eq "$what: Gopher /members" "$want" "$p"
}

# tit_snapshot DIR...: each file and symlink under each DIR with its checksum (a
# missing DIR lists nothing; audit.log is left out: every upload, refused or not,
# may add its line there).
tit_snapshot() {
	local d
	for d in "$@"; do
		[ -d "$d" ] || continue
		(cd "$d" && find . \( -type f -o -type l \) ! -path ./audit.log -print0 |
			LC_ALL=C sort -z |
			while IFS= read -r -d '' f; do
				if [ -L "$f" ]; then
					echo "$d/$f -> $(readlink "$f")"
				else
					echo "$d/$f $(sha256sum <"$f" | cut -c1-16)"
				fi
			done)
	done
}

# tit_top_files: the files in $T itself (the config's and the dataset's folder),
# less the test's own (logs, output, the harness's dot files).
tit_top_files() {
	find "$T" -maxdepth 1 \( -type f -o -type l \) ! -name '*.log' ! -name out ! -name '.*' \
		-printf '%f\n' | LC_ALL=C sort
}

# tit_check_state_files: $S holds only network.conf, audit.log and versions/*.conf
# named YYYYMMDDTHHMMSSZ-<8 hex of the editor's fingerprint, or "seed">.conf: no
# temporary file left behind. Two versions stored in the same second (an upload and
# a restore just after it) are told apart by ".NN" after the Z, which is taken too.
tit_check_state_files() {
	local f rel bad=0
	while IFS= read -r -d '' f; do
		rel=${f#"$S"/}
		case $rel in
		network.conf|audit.log|.lock|capsule/*) ;;
		versions/*)
			[[ ${rel#versions/} =~ ^[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-([0-9a-f]{8}|seed)\.conf$ ]] ||
				{ echo "FAIL: state: unexpected version name $rel"; bad=1; }
			;;
		*) echo "FAIL: state: unexpected file $rel"; bad=1 ;;
		esac
	done < <(find "$S" \( -type f -o -type l \) -print0)
	[ $bad -eq 0 ]
}

# ------------------------------------------------------------------ a good upload

# An editor uploads the dataset with a 12th council: 30 to its page, and within a
# second it is on /members/ over Gemini and in the Gopher member menu. The text it
# replaced is kept as the seed version, the upload is in the audit log, the file the
# config includes is untouched.
test_titan_upload_dataset() {
	tit_setup
	tit_start
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "upload reply" "30 $B/members/testshire.gmi" "$T/w/up"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	tit_get "$T/w/page" /members/testshire.gmi
	tit_expect_status "the new member's page" 20 "$T/w/page"
	expect_contains "the new member's page" "$(cat "$T/w/page")" "Testshire County Council"
	cmp "$S/network.conf" "$T/w/new.conf" || fail "state_dir/network.conf is not the upload"
	cmp "$T/network.conf" "$ROOT/conf/network.conf" || fail "the included dataset was changed"

	local seeds name when now
	seeds=$(find "$S/versions" -name '*-seed.conf' -printf '%f\n')
	expect_eq "one seed version" 1 "$(printf '%s' "$seeds" | grep -c . || true)"
	cmp "$S/versions/$seeds" "$T/network.conf" || fail "the seed version is not the replaced text"
	# named by the time of the store (UTC)
	name=$seeds
	when=$(date -u -d "${name:0:4}-${name:4:2}-${name:6:2} ${name:9:2}:${name:11:2}:${name:13:2}" +%s) ||
		fail "version name $name: not a time"
	now=$(date -u +%s)
	[ $((now - when)) -ge -5 ] && [ $((now - when)) -le 120 ] || fail "version $name: not the time of the upload"
	for name in $(find "$S/versions" -type f ! -name '*-seed.conf' -printf '%f\n'); do
		[[ $name == *-"${ED_FP:0:8}".conf ]] || fail "version $name: not named by the editor's fingerprint"
	done
	tit_check_state_files
	[ -f "$S/audit.log" ] || fail "no audit.log"
	grep -i "${ED_FP:0:8}" "$S/audit.log" | grep -q 'network\.conf' ||
		{ cat "$S/audit.log"; fail "audit.log: no line with the editor and the path"; }
}

# ------------------------------------------------------- a dataset kilnet -t refuses

# After a good edit, two broken uploads: a date that does not exist (59 naming its
# line and setting) and a syntax error (59 naming its line). Nothing changes: the
# state folder, the site, the source served to editors.
test_titan_broken_dataset() {
	tit_setup
	tit_start
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "good upload" "30 $B/members/testshire.gmi" "$T/w/up"
	tit_wait_ids "after the good upload" "$NEW_IDS" 1000
	local before l1 l2
	before=$(tit_snapshot "$S" "$T/capsule")

	l1=$(grep -n '^  updated = "' "$T/w/new.conf" | head -n 1 | cut -d: -f1)
	[ -n "$l1" ] || fail "no network updated line"
	tit_break "$T/w/new.conf" "$T/w/bad1.conf" "$l1" '  updated = "2026-02-30";'
	tit_upload "$T/w/r1" /network.conf "$T/w/bad1.conf"
	expect_contains "a day that does not exist" "$(tit_head "$T/w/r1")" "59 $l1: network.updated: "
	[[ $(tit_head "$T/w/r1") == "59 $l1: "* ]] || fail "the 59 does not start with the line: $(tit_head "$T/w/r1")"

	l2=$(grep -n '^      id = "hackney";$' "$T/w/new.conf" | cut -d: -f1)
	[ -n "$l2" ] || fail "no hackney line"
	tit_break "$T/w/new.conf" "$T/w/bad2.conf" "$l2" '      id = hackney;'
	tit_upload "$T/w/r2" /network.conf "$T/w/bad2.conf"
	[[ $(tit_head "$T/w/r2") == "59 $l2: "* ]] ||
		fail "a syntax error on line $l2 answered $(printf '%q' "$(tit_head "$T/w/r2")")"

	sleep 0.3
	expect_eq "state folder and capsule unchanged" "$before" "$(tit_snapshot "$S" "$T/capsule")"
	tit_wait_ids "after the broken uploads" "$NEW_IDS" 0
	tit_get_ed "$T/w/src" /network.conf
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/w/new.conf" || fail "the source served changed"
	"$KILNET" -t -c "$T/k.conf" >"$T/w/t.out" 2>&1 || { cat "$T/w/t.out"; fail "kilnet -t refuses the state"; }
}

# --------------------------------------------------------------- uploads refused

# No certificate 60, an unlisted one 61 (for the dataset and a capsule file), a
# size above max_upload 59 at once with no body sent, a body cut short dropped at
# upload_timeout: nothing written anywhere, the site unchanged. Then the limit
# itself: exactly max_upload bytes are taken.
test_titan_refused() {
	tit_setup
	tit_cert other
	tit_start 'max_upload = 65536;'
	local before url t0 t1 h
	before=$(tit_snapshot "$S" "$T/capsule"; tit_top_files)
	url="titan://localhost:$GEM_PORT/network.conf;size=AUTO;mime=text/plain"

	tit "$T/w/r" --url "$url" --file "$T/w/new.conf"
	tit_expect_status "no client certificate" 60 "$T/w/r"
	tit "$T/w/r" --url "$url" --file "$T/w/new.conf" --cert "$T/other.crt" --key "$T/other.key"
	tit_expect_status "a certificate not in editors" 61 "$T/w/r"
	tit "$T/w/r" --url "titan://localhost:$GEM_PORT/page.gmi;size=AUTO;mime=text/gemini" \
		--data "# hello"
	tit_expect_status "capsule file, no certificate" 60 "$T/w/r"
	tit "$T/w/r" --url "titan://localhost:$GEM_PORT/page.gmi;size=AUTO;mime=text/gemini" \
		--data "# hello" --cert "$T/other.crt" --key "$T/other.key"
	tit_expect_status "capsule file, unlisted certificate" 61 "$T/w/r"

	# above max_upload: 59 before any byte of the body (none is sent; a server that
	# waited for it would drop the connection at upload_timeout, 1 s, unanswered)
	for size in 65537 99999999999; do
		t0=$(tit_ms)
		tit_upload "$T/w/r" /network.conf "$T/w/new.conf" --size "$size" --send 0
		t1=$(tit_ms)
		tit_expect_status "size $size above max_upload" 59 "$T/w/r"
		[ $((t1 - t0)) -lt 1000 ] || fail "size $size: the 59 took $((t1 - t0)) ms"
	done

	# a body that stops short: dropped after upload_timeout (1 s), nothing stored
	for path in /network.conf /short.gmi; do
		t0=$(tit_ms)
		tit_upload "$T/w/r" "$path" "$T/w/new.conf" --send 100
		t1=$(tit_ms)
		h=$(tit_head "$T/w/r")
		[[ $h != 2* && $h != 3* ]] || fail "$path: a body cut short answered $(printf '%q' "$h")"
		[ $((t1 - t0)) -ge 800 ] || fail "$path: a body cut short was dropped after $((t1 - t0)) ms"
		[ $((t1 - t0)) -le 5000 ] || fail "$path: a body cut short held $((t1 - t0)) ms"
	done
	sleep 0.3
	expect_eq "nothing written" "$before" "$(tit_snapshot "$S" "$T/capsule"; tit_top_files)"
	[ ! -e "$S/network.conf" ] || fail "state_dir/network.conf written"
	tit_wait_ids "after refused uploads" "$OLD_IDS" 0
	assert_alive

	# the limit itself: max_upload bytes are taken, one more is not
	head -c 65536 /dev/zero | tr '\0' 'x' >"$T/w/max.gmi"
	tit_upload "$T/w/r" /max.gmi "$T/w/max.gmi"
	tit_expect "exactly max_upload bytes" "30 $B/max.gmi" "$T/w/r"
	cmp "$S/capsule/max.gmi" "$T/w/max.gmi" || fail "max.gmi not stored"
	printf 'x' >>"$T/w/max.gmi"
	tit_upload "$T/w/r" /max2.gmi "$T/w/max.gmi"
	tit_expect_status "max_upload + 1 bytes" 59 "$T/w/r"
	[ ! -e "$T/capsule/max2.gmi" ] || fail "max2.gmi stored"
}

# --------------------------------------------------- kill -9 in the middle of a store

# tit_kill_at MS: a server whose master pauses 300 ms between the steps of a store
# (KILNET_TEST_STORE_DELAY_MS), with a config and state folder of its own; the
# upload starts and the master and its workers are killed (-9) MS ms later. Then
# kilnet starts again on the same config: /members/ is exactly the old list or
# exactly the new one, state/network.conf (when there) is byte for byte the text
# served, and kilnet -t passes. Sets TIT_KILLED to "old" or "new".
tit_kill_at() {
	local ms=$1 conf=$T/k$1.conf st=$T/state$1 master kids up pids ids n
	TIT_KILLED=
	write_conf "$conf" "editors = [ \"$ED_FP\" ];" 'upload_timeout = 1.0;' \
		"state_dir = \"$st\";"
	KILNET_TEST_STORE_DELAY_MS=300 start_kilnet "kill$ms" -c "$conf"
	master=$KPID
	tit_upload "$T/w/kill$ms" /network.conf "$T/w/new.conf" &
	up=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kids=$(pgrep -P "$master" || true)
	kill -KILL "$master"
	[ -z "$kids" ] || kill -KILL $kids 2>/dev/null || true
	wait "$master" 2>/dev/null || true
	touch "$T/.stopped-$master"
	# a worker started after the pgrep (the reload step starts new ones): every
	# process still running on this test's config
	pids=$(pgrep -f -- "$conf" || true)
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	for n in $(seq 1 100); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$GEM_PORT") 2>/dev/null &&
		    ! (exec 3<>"/dev/tcp/127.0.0.1/$GOPH_PORT") 2>/dev/null; then
			break
		fi
		[ "$n" -lt 100 ] || { fail "kill at $ms ms: the ports still accept"; return 1; }
		sleep 0.05
	done
	wait "$up" || true

	start_kilnet "again$ms" -c "$conf"
	ids=$(tit_ids_gemini)
	if [ "$ids" = "$OLD_IDS" ]; then
		TIT_KILLED=old
	elif [ "$ids" = "$NEW_IDS" ]; then
		TIT_KILLED=new
	else
		fail "kill at $ms ms: /members/ lists neither the old list nor the new: $(echo $ids)"
		return 1
	fi
	if [ -e "$st/network.conf" ]; then
		cmp -s "$st/network.conf" "$T/network.conf" || cmp -s "$st/network.conf" "$T/w/new.conf" ||
			{ fail "kill at $ms ms: state_dir/network.conf is neither text"; return 1; }
		# what is served is what is stored
		if [ $TIT_KILLED = old ]; then
			cmp -s "$st/network.conf" "$T/network.conf" ||
				{ fail "kill at $ms ms: the old list served, the new text stored"; return 1; }
		else
			cmp -s "$st/network.conf" "$T/w/new.conf" ||
				{ fail "kill at $ms ms: the new list served, the old text stored"; return 1; }
		fi
	elif [ $TIT_KILLED = new ]; then
		fail "kill at $ms ms: the new list served without state_dir/network.conf"
		return 1
	fi
	"$KILNET" -t -c "$conf" >"$T/w/t$ms.out" 2>&1 ||
		{ cat "$T/w/t$ms.out"; fail "kill at $ms ms: kilnet -t refuses"; return 1; }
	# a store killed midway may leave its temporary file: the next store removes it
	tit_upload "$T/w/again$ms" /network.conf "$T/w/new.conf"
	tit_expect_status "kill at $ms ms: the next upload" 30 "$T/w/again$ms"
	[ -z "$(find "$st" -maxdepth 1 -name '.upload-*')" ] ||
		{ fail "kill at $ms ms: a temporary file left after the next store"; return 1; }
	stop_kilnet "$KPID"
}

test_titan_kill_during_store() {
	tit_setup
	local ms results=()
	for ms in 100 450 800 1150 1500; do
		tit_kill_at "$ms"
		echo "killed at $ms ms: $TIT_KILLED"
		results+=("$ms:$TIT_KILLED")
	done
	# the rename over the old file comes after three pauses at least (write,
	# fsync, save the previous version): at 100 ms nothing can be stored yet
	expect_eq "killed at 100 ms" "100:old" "${results[0]}"
	# and by 1150 or 1500 ms the rename is done (else the test never tried the
	# last steps: too slow a machine, or the delay not applied)
	[[ " ${results[*]} " == *":new "* ]] || fail "no run got as far as the new dataset: ${results[*]}"
}

# ------------------------------------------------------------------ restart, -t

# The edited dataset is what kilnet serves after a restart and what kilnet -t
# checks; the state folder defaults to "state" beside the config file (here in a
# folder of its own, so that it is not the working folder).
test_titan_restart_keeps_edit() {
	tit_setup
	S=$T/etc/state
	TIT_CONF=$T/etc/k.conf TIT_NO_STATE_DIR=1 tit_start
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "upload reply" "30 $B/members/testshire.gmi" "$T/w/up"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	cmp "$S/network.conf" "$T/w/new.conf" || fail "not stored in state beside the config"
	[ ! -e "$T/state" ] || fail "state folder made in the working folder"
	stop_kilnet "$KPID"

	"$KILNET" -t -c "$T/etc/k.conf" >"$T/w/t.out" 2>&1 || { cat "$T/w/t.out"; fail "kilnet -t"; }
	expect_contains "kilnet -t" "$(cat "$T/w/t.out")" "configuration OK"
	start_kilnet k2 -c "$T/etc/k.conf"
	tit_wait_ids "after the restart" "$NEW_IDS" 0
	tit_get_ed "$T/w/src" /network.conf
	tit_expect "source after the restart" "20 text/plain; charset=utf-8" "$T/w/src"
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/w/new.conf" || fail "source after the restart is not the edit"
	cmp "$T/network.conf" "$ROOT/conf/network.conf" || fail "the included dataset was changed"
	stop_kilnet "$KPID"

	# kilnet -t reads the stored dataset, not the one the config includes
	local l
	l=$(grep -n '^  updated = "' "$S/network.conf" | head -n 1 | cut -d: -f1)
	cp "$S/network.conf" "$T/w/kept.conf"
	tit_break "$T/w/kept.conf" "$S/network.conf" "$l" '  updated = "2026-02-30";'
	if "$KILNET" -t -c "$T/etc/k.conf" >"$T/w/t2.out" 2>&1; then
		cat "$T/w/t2.out"; fail "kilnet -t passes a broken state_dir/network.conf"
	fi
	expect_contains "kilnet -t names the stored file's line" "$(cat "$T/w/t2.out")" ":$l: network.updated"
	cp "$T/w/kept.conf" "$S/network.conf"
}

# ------------------------------------------------------------------ capsule files

# A new capsule page is stored and served (30, then 20 with its bytes), and can be
# replaced; "..", its encoded form and a path through a symlink to a folder outside
# the capsule are refused and write nothing anywhere.
test_titan_capsule_files() {
	tit_setup
	mkdir -p "$T/elsewhere"
	ln -s "$T/elsewhere" "$T/capsule/link"
	tit_start
	printf '# A new page\n\nUploaded over Titan: “local”.\n' >"$T/w/new.gmi"
	tit_upload "$T/w/up" /new-page.gmi "$T/w/new.gmi"
	tit_expect "capsule upload" "30 $B/new-page.gmi" "$T/w/up"
	# In the state folder's overlay: the shipped capsule/ is never written.
	cmp "$S/capsule/new-page.gmi" "$T/w/new.gmi" || fail "not stored in the overlay"
	[ ! -e "$T/capsule/new-page.gmi" ] || fail "written into the shipped capsule"
	local deadline h
	deadline=$(( $(tit_ms) + 1000 ))
	while :; do
		tit_get "$T/w/page" /new-page.gmi
		h=$(tit_head "$T/w/page")
		[[ $h == "20 text/gemini"* ]] && break
		[ "$(tit_ms)" -le "$deadline" ] || break
		sleep 0.05
	done
	[[ $h == "20 text/gemini"* ]] || fail "new page: $(printf '%q' "$h")"
	tit_body "$T/w/page" "$T/w/page.body"
	cmp "$T/w/page.body" "$T/w/new.gmi" || fail "the page served is not the upload"

	# replaced
	printf '# The page, again\n' >"$T/w/new2.gmi"
	tit_upload "$T/w/up" /new-page.gmi "$T/w/new2.gmi"
	tit_expect "capsule replace" "30 $B/new-page.gmi" "$T/w/up"
	deadline=$(( $(tit_ms) + 1000 ))
	while :; do
		tit_get "$T/w/page" /new-page.gmi
		tit_body "$T/w/page" "$T/w/page.body"
		cmp -s "$T/w/page.body" "$T/w/new2.gmi" && break
		[ "$(tit_ms)" -le "$deadline" ] || fail "the replaced page is not served"
		sleep 0.05
	done

	# out of the capsule
	local before path
	before=$(tit_snapshot "$T/capsule" "$T/elsewhere"; tit_top_files)
	for path in /../outside.gmi /sub/../../outside.gmi /link/x.gmi /link/../outside.gmi; do
		tit_upload "$T/w/r" "$path" "$T/w/new.gmi"
		tit_expect_status "$path" 59 "$T/w/r"
	done
	for path in /%2e%2e/outside.gmi /%2E%2E/%2e%2e/outside.gmi /link%2fx.gmi; do
		tit_upload "$T/w/r" "$path" "$T/w/new.gmi"
		h=$(tit_head "$T/w/r")
		[[ $h != 2* && $h != 3* ]] || fail "$path answered $(printf '%q' "$h")"
	done
	sleep 0.3
	[ ! -e "$T/outside.gmi" ] || fail "written outside the capsule"
	[ ! -e "$T/elsewhere/x.gmi" ] || fail "written through the symlink"
	[ ! -e "$(dirname "$T")/outside.gmi" ] || fail "written two folders up"
	expect_eq "nothing written by refused paths" "$before" \
		"$(tit_snapshot "$T/capsule" "$T/elsewhere"; tit_top_files)"
}

# ---------------------------------------------------------- source and versions

# /network.conf and /versions/ are for editors only (60, 61); the source is the
# included file byte for byte, then the edit; each version is listed and served;
# uploading the seed's text restores the old site. The editor is listed with
# colons and in capitals (both ignored), beside another fingerprint; the state
# folder is relative to the config's folder.
test_titan_source_and_versions() {
	tit_setup
	tit_cert other
	local colon
	colon=$(openssl x509 -noout -fingerprint -sha256 -in "$T/ed.crt" | cut -d= -f2)
	S=$T/vstate
	TIT_CONF=$T/etc/k.conf TIT_STATE_DIR=../vstate \
		TIT_EDITORS="[ \"$(printf '%064d' 0)\", \"$colon\" ]" tit_start
	local p
	for p in /network.conf /versions/; do
		tit_get "$T/w/r" "$p"
		tit_expect_status "$p without a certificate" 60 "$T/w/r"
		tit_get "$T/w/r" "$p" --cert "$T/other.crt" --key "$T/other.key"
		tit_expect_status "$p with an unlisted certificate" 61 "$T/w/r"
	done
	tit_get_ed "$T/w/src" /network.conf
	tit_expect "source" "20 text/plain; charset=utf-8" "$T/w/src"
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/network.conf" || fail "the source is not the included file"

	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "upload reply" "30 $B/members/testshire.gmi" "$T/w/up"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	[ -f "$S/network.conf" ] || fail "state_dir not relative to the config's folder"
	tit_get_ed "$T/w/src" /network.conf
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/w/new.conf" || fail "the source after the edit is not the upload"

	# the versions page: a link to each version stored, each served
	tit_get_ed "$T/w/v" /versions/
	expect_eq "versions page" "20 text/gemini" "$(tit_head "$T/w/v" | cut -d';' -f1)"
	local linked stored name seed=
	linked=$(sed -n 's/^=>[[:space:]]*\([^[:space:]]*\).*/\1/p' "$T/w/v" | tr -d '\r' |
		grep -E '(^|/)[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[A-Za-z0-9]+\.conf$' |
		grep -E '^(/versions/|gemini://[^/]*/versions/|[^/]*$)' | sed 's|.*/||' | LC_ALL=C sort -u)
	stored=$(find "$S/versions" -type f -printf '%f\n' | LC_ALL=C sort)
	[ -n "$stored" ] || fail "no version stored"
	expect_eq "versions linked" "$stored" "$linked"
	for name in $stored; do
		tit_get_ed "$T/w/one" "/versions/$name"
		expect_eq "version $name" "20 text/plain" "$(tit_head "$T/w/one" | cut -d';' -f1)"
		tit_body "$T/w/one" "$T/w/one.body"
		cmp "$T/w/one.body" "$S/versions/$name" || fail "version $name: not its text"
		[[ $name == *-seed.conf ]] && seed=$name
	done
	[ -n "$seed" ] || fail "no seed version"
	tit_get "$T/w/r" "/versions/$seed"
	tit_expect_status "a version without a certificate" 60 "$T/w/r"

	# restore the seed
	tit_get_ed "$T/w/one" "/versions/$seed"
	tit_body "$T/w/one" "$T/w/seed.conf"
	cmp "$T/w/seed.conf" "$T/network.conf" || fail "the seed is not the included file"
	tit_upload "$T/w/up" /network.conf "$T/w/seed.conf"
	[[ $(tit_head "$T/w/up") == "30 $B/"* ]] || fail "restore answered $(tit_head "$T/w/up")"
	tit_wait_ids "after the restore" "$OLD_IDS" 1000
	cmp "$S/network.conf" "$T/network.conf" || fail "state_dir/network.conf is not the restored text"
	tit_get_ed "$T/w/src" /network.conf
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/network.conf" || fail "the source after the restore"
	tit_check_state_files
}

# ------------------------------------------------------------- editing_hostname

# With editing_hostname, only that name asks for a certificate: the public name's
# handshake carries no CertificateRequest and its Titan answer is 53; uploads go
# through the editing name (its own certificate, SNI and URL host) and change the
# public site.
test_titan_editing_hostname() {
	tit_setup
	tit_start 'editing_hostname = "edit.localhost";'
	[ -f "$T/certs/edit.localhost.crt" ] || fail "no certificate for edit.localhost"
	local out
	out=$(printf 'gemini://localhost:%s/\r\n' "$GEM_PORT" | timeout 10 openssl s_client -msg \
		-ign_eof -connect "127.0.0.1:$GEM_PORT" -servername localhost 2>&1) || true
	expect_contains "public handshake" "$out" "ServerHello"
	expect_contains "public page served" "$out" "20 text/gemini"
	expect_not_contains "public name: no CertificateRequest" "$out" "CertificateRequest"
	out=$(timeout 10 openssl s_client -msg -connect "127.0.0.1:$GEM_PORT" \
		-servername edit.localhost </dev/null 2>&1) || true
	expect_contains "editing name asks for a certificate" "$out" "CertificateRequest"

	TIT_HOST=localhost tit_upload "$T/w/r" /network.conf "$T/w/new.conf"
	tit_expect_status "Titan to the public name" 53 "$T/w/r"
	tit "$T/w/r" --sni edit.localhost \
		--url "titan://edit.localhost:$GEM_PORT/network.conf;size=AUTO;mime=text/plain" \
		--file "$T/w/new.conf"
	tit_expect_status "Titan to the editing name without a certificate" 60 "$T/w/r"
	tit_wait_ids "after refused uploads" "$OLD_IDS" 0

	TIT_HOST=edit.localhost tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	out=$(tit_head "$T/w/up")
	[[ $out == "30 gemini://"*"/members/testshire.gmi" ]] || fail "upload via edit.localhost: $(printf '%q' "$out")"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	tit "$T/w/src" --sni edit.localhost --url "gemini://edit.localhost:$GEM_PORT/network.conf" \
		--cert "$T/ed.crt" --key "$T/ed.key"
	tit_expect "source via edit.localhost" "20 text/plain; charset=utf-8" "$T/w/src"
	tit_body "$T/w/src" "$T/w/src.body"
	cmp "$T/w/src.body" "$T/w/new.conf" || fail "source via edit.localhost"
}
