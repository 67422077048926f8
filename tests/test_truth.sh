# tests/test_truth.sh: editing answers that tell the truth, each case the request of
# a hostile editor that showed a defect: a 30 only for what the site serves, the
# redirect re-encoded, messages that name the upload's line and files that exist,
# no NUL or C0/C1 control character in any text, audit lines that cannot be
# forged, the audit trail and the versions in step with the dataset after a kill at
# any step, versions in time order with the seed first, and permanent errors as 59
# or 51. Uses the Titan helpers of tests/test_titan.sh.

truth_no_overlay_file() { [ -z "$(find "$S/capsule" -type f 2>/dev/null)" ] || fail "$1: a file was stored: $(find "$S/capsule" -type f)"; }

test_truth_capsule_30_only_when_served() {
	tit_setup
	tit_start 'max_upload = 70000000;'
	printf 'x\n' >"$T/w/x.txt"
	local p
	for p in /x%ff.txt /index.gmi /members /caps.txt; do
		tit_upload "$T/w/r" "$p" "$T/w/x.txt"
		tit_expect_status "$p" 59 "$T/w/r"
	done
	truth_no_overlay_file "names the site cannot serve"
	# over the capsule's 64 MiB limit for a file
	head -c $((65 * 1024 * 1024)) /dev/zero >"$T/w/big.bin"
	tit_upload "$T/w/r" /big.bin "$T/w/big.bin"
	tit_expect_status "a 65 MiB file" 59 "$T/w/r"
	truth_no_overlay_file "a file over the limit"
	# and a good one still gets its 30, and is served
	tit_upload "$T/w/r" /fine.txt "$T/w/x.txt"
	tit_expect "a good file" "30 $B/fine.txt" "$T/w/r"
	tit_get "$T/w/g" /fine.txt
	tit_expect_status "served" 20 "$T/w/g"
}

test_truth_redirect_reencoded() {
	tit_setup
	tit_start
	printf 'x\n' >"$T/w/x.txt"
	local p h
	for p in /q%3Fx.txt /h%23x.txt /sp%20ace.txt /p%2541.txt /caf%C3%A9.txt; do
		tit_upload "$T/w/r" "$p" "$T/w/x.txt"
		tit_expect "$p" "30 $B$p" "$T/w/r"
		# the URL it names is the file
		tit "$T/w/g" --url "$B$p"
		h=$(tit_head "$T/w/g")
		[[ $h == "20 "* ]] || fail "$p: the redirect's target answers $(printf '%q' "$h")"
	done
}

test_truth_messages_name_the_upload() {
	tit_setup
	tit_start
	local line
	line=$(grep -n '^network = {' "$T/network.conf" | cut -d: -f1)
	sed "${line}a\\  foo = 1;" "$T/network.conf" >"$T/w/bad.conf"
	tit_upload "$T/w/r" /network.conf "$T/w/bad.conf"
	[[ $(tit_head "$T/w/r") == "59 $((line + 1)): network.foo: unknown setting"* ]] ||
		fail "unknown setting: $(tit_head "$T/w/r")"
	# a NUL byte and a C1 control: refused, with the line
	sed 's|name = "Bradford Metropolitan District Council"|name = "Brad\\x00ford Metropolitan District Council"|' \
		"$T/network.conf" >"$T/w/nul.conf"
	line=$(grep -n 'Brad\\x00ford' "$T/w/nul.conf" | cut -d: -f1)
	tit_upload "$T/w/r" /network.conf "$T/w/nul.conf"
	tit_expect "a NUL" "59 $line: a NUL byte (\\x00) in a string" "$T/w/r"
	python3 -c 'import sys; s=open(sys.argv[1],encoding="utf-8").read(); open(sys.argv[2],"w",encoding="utf-8").write(s.replace("Bradford Metropolitan District Council", "Brad\u009bford", 1))' \
		"$T/network.conf" "$T/w/c1.conf"
	tit_upload "$T/w/r" /network.conf "$T/w/c1.conf"
	tit_expect_status "a C1 control" 59 "$T/w/r"
	expect_contains "a C1 control" "$(tit_head "$T/w/r")" "C1 control character"
	[ ! -e "$S/network.conf" ] || fail "a refused upload was stored"
	# kilnet -t refuses both, naming the file and the line
	local out
	out=$(DATASET=$T/w/nul.conf; write_conf "$T/t.conf" 'state_dir = "none";'; "$KILNET" -t -c "$T/t.conf" 2>&1) && fail "-t took a NUL"
	expect_contains "-t and a NUL" "$out" "$T/w/nul.conf:$line: a NUL byte"
	out=$(DATASET=$T/w/c1.conf; write_conf "$T/t.conf" 'state_dir = "none";'; "$KILNET" -t -c "$T/t.conf" 2>&1) && fail "-t took a C1 control"
	expect_contains "-t and a C1 control" "$out" "c1.conf:"
	expect_contains "-t and a C1 control" "$out" "C1 control character"
}

# A stored dataset broken by hand, a state_dir relative to a config in a subfolder:
# kilnet -t names the file as it can be opened from where kilnet runs.
test_truth_stored_dataset_path() {
	tit_setup
	mkdir -p "$T/conf" "$T/state"
	write_conf "$T/conf/k.conf" 'state_dir = "../state";'
	printf 'network = { foo = 1; };\n' >"$T/state/network.conf"
	local out
	out=$(cd "$T" && "$KILNET" -t -c conf/k.conf 2>&1) && fail "-t took a broken stored dataset"
	expect_contains "-t" "$out" "conf/../state/network.conf:1:"
	expect_not_contains "-t" "$out" "conf/conf/"
}

test_truth_audit_not_forged() {
	tit_setup
	tit_start
	printf 'x\n' >"$T/w/x.txt"
	tit_upload "$T/w/r" "/f%20size=999%20result=59%20FORGED.txt" "$T/w/x.txt"
	tit_upload "$T/w/r" "/g%C2%9B2J%C2%9B31mRED.txt" "$T/w/x.txt"
	tit_upload "$T/w/r" "/h%0A2026-01-01T00:00:00Z%20editor=x.txt" "$T/w/x.txt"
	local n bad
	n=$(wc -l <"$S/audit.log")
	[ "$n" -ge 2 ] || fail "audit.log has $n lines"
	bad=$(grep -Evc '^[0-9TZ:-]+ editor=[0-9a-f]{64} path=[^ ]+ size=[0-9]+ result=[0-9]{2} ' "$S/audit.log" || true)
	expect_eq "audit lines of the right shape" 0 "$bad"
	[ "$(grep -o ' result=' "$S/audit.log" | wc -l)" = "$n" ] || fail "a line with two results: $(cat "$S/audit.log")"
	! LC_ALL=C grep -q $'[\x01-\x1f\x7f\x80-\xff]' <(cut -d' ' -f1-5 "$S/audit.log") ||
		fail "a control or raw byte in audit.log's fields"
	! LC_ALL=C grep -q $'\xc2\x9b' "$T/k.log" || fail "a raw C1 control in the log"
}

test_truth_versions_order() {
	tit_setup
	tit_start
	tit_upload "$T/w/r" /network.conf "$T/w/new.conf"
	tit_expect_status "upload" 30 "$T/w/r"
	tit_get_ed "$T/w/v" /versions/
	local names
	names=$(grep '^=>' "$T/w/v" | awk '{print $2}' | sed 's|.*/||')
	expect_eq "versions, newest first" 2 "$(printf '%s\n' "$names" | wc -l)"
	[[ $(printf '%s\n' "$names" | tail -n 1) == *-seed.conf ]] || fail "the seed is not the oldest: $names"
	[[ $(printf '%s\n' "$names" | head -n 1) == *-"${ED_FP:0:8}".conf ]] || fail "the edit is not the newest: $names"
	# a second upload in the same second sorts after the first
	tit_upload "$T/w/r" /network.conf "$T/network.conf"
	tit_get_ed "$T/w/v" /versions/
	names=$(grep '^=>' "$T/w/v" | awk '{print $2}' | sed 's|.*/||')
	expect_eq "sorted" "$(printf '%s\n' "$names" | LC_ALL=C sort -r)" "$names"
	cmp -s "$S/versions/$(printf '%s\n' "$names" | head -n 1)" "$S/network.conf" || fail "the newest version is not what is stored"
}

test_truth_status_codes() {
	tit_setup
	tit_start
	printf 'x\n' >"$T/w/x.txt"
	tit_upload "$T/w/r" "/$(printf 'n%.0s' $(seq 1 300)).txt" "$T/w/x.txt"
	tit_expect_status "a name too long" 59 "$T/w/r"
	tit_get_ed "$T/w/r" /versions/..conf
	tit_expect_status "/versions/..conf" 51 "$T/w/r"
}

# kill -9 of every process at each step of a store (the test builds pause 300 ms
# between them), then a restart: the dataset served, STATE/network.conf, the
# newest version and the audit trail agree.
test_truth_crash_bookkeeping() {
	tit_setup
	local ms conf st ids stored30 nv newest up
	for ms in 150 450 750 1050 1350; do
		conf=$T/k$ms.conf st=$T/state$ms
		write_conf "$conf" "editors = [ \"$ED_FP\" ];" 'upload_timeout = 1.0;' "state_dir = \"$st\";"
		KILNET_TEST_STORE_DELAY_MS=300 start_kilnet "c$ms" -c "$conf"
		tit_upload "$T/w/c$ms" /network.conf "$T/w/new.conf" &
		up=$!
		sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
		pkill -KILL -f -- "$conf" || true
		wait "$up" || true
		touch "$T/.stopped-$KPID"
		sleep 0.2
		start_kilnet "again$ms" -c "$conf"
		sleep 0.3	# the editing process finishes what the crash left
		ids=$(tit_ids_gemini)
		stored30=$(grep -c 'path=/network.conf .* result=30 ' "$st/audit.log" 2>/dev/null || true)
		nv=$(find "$st/versions" -name '*.conf' ! -name '*-seed.conf' 2>/dev/null | wc -l)
		if [ -e "$st/network.conf" ]; then
			expect_eq "kill at $ms ms: served = stored" "$NEW_IDS" "$ids"
			newest=$(ls "$st/versions" | LC_ALL=C sort | tail -n 1)
			cmp -s "$st/versions/$newest" "$st/network.conf" || fail "kill at $ms ms: the newest version is not what is stored"
			expect_eq "kill at $ms ms: audit lines for the versions" "$nv" "${stored30:-0}"
			expect_eq "kill at $ms ms: one store" 1 "$nv"
		else
			expect_eq "kill at $ms ms: the old served" "$OLD_IDS" "$ids"
			expect_eq "kill at $ms ms: no version" 0 "$nv"
			expect_eq "kill at $ms ms: no stored line" 0 "${stored30:-0}"
		fi
		[ "$(find "$st/versions" -name '*-seed.conf' 2>/dev/null | wc -l)" -le 1 ] || fail "kill at $ms ms: two seeds"
		echo "killed at $ms ms: $([ -e "$st/network.conf" ] && echo new || echo old)"
		stop_kilnet "$KPID"
	done
}
