# tests/test_trust.sh: who holds what. Started as root: the editing process runs as
# server.user in a filter of its own; no root process opens a file an editor wrote
# (strace of the whole tree over an edit, a capsule upload and a reload); an upload
# that takes libconfig minutes gets its 59 within 10 s while the master restarts a
# killed worker and another editor's upload gets its own answer; a killed editing
# process is replaced. Uses the Titan helpers of tests/test_titan.sh.

# trust_editor_pid: the pid of the last editing process the master started.
# (The ports listen before it starts: waited for, 2 s at most.)
trust_editor_pid() {
	local p n
	for n in $(seq 1 40); do
		p=$(sed -n 's/.*editing process started (pid \([0-9]*\)).*/\1/p' "$T/k.log" | tail -n 1)
		[ -n "$p" ] && break
		sleep 0.05
	done
	echo "$p"
}

# trust_status PID FIELD: a field of /proc/PID/status.
trust_status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

trust_need_root() {
	[ "$(id -u)" = 0 ] && return 0
	echo "skipped: needs root (the process model only applies then)"
	return 1
}

test_trust_editor_unprivileged() {
	trust_need_root || return 0
	tit_setup
	WORKERS=2 tit_start
	local ed uid
	ed=$(trust_editor_pid)
	[ -n "$ed" ] && kill -0 "$ed" || fail "no editing process logged"
	uid=$(id -u "$(id -un nobody)")
	expect_eq "editing process uid" "$uid" "$(trust_status "$ed" Uid)"
	expect_eq "editing process CapEff" "0000000000000000" "$(trust_status "$ed" CapEff)"
	expect_eq "editing process NoNewPrivs" "1" "$(trust_status "$ed" NoNewPrivs)"
	expect_eq "editing process Seccomp" "2" "$(trust_status "$ed" Seccomp)"
	# it holds no private key: no key file is open in it, and its root is
	# the empty folder
	expect_eq "editing process root" "/var/empty" "$(readlink "/proc/$ed/root")"
	! ls -l "/proc/$ed/fd" 2>/dev/null | grep -q '\.key$' || fail "a key file open in the editing process"
	# and it is the one that stores: an upload goes live
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "upload" "30 $B/members/testshire.gmi" "$T/w/up"
	expect_eq "stored by server.user" "$uid" "$(stat -c %u "$S/network.conf")"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	# only the master keeps root
	local p bad=
	for p in $(pgrep -P "$KPID"); do
		[ "$(trust_status "$p" Uid)" = 0 ] && bad="$bad $p"
	done
	[ -z "$bad" ] || fail "children still root:$bad"
}

# strace -f of the whole server over an edit, a capsule upload and a SIGHUP: every
# open of a file under the state folder is made by a process that had left root.
test_trust_no_root_reads_editor_files() {
	trust_need_root || return 0
	command -v strace >/dev/null || { echo "skipped: no strace"; return 0; }
	tit_setup
	local real=$KILNET master
	write_conf "$T/k.conf" "editors = [ \"$ED_FP\" ];" 'upload_timeout = 1.0;' \
		"state_dir = \"$S\";"
	B="gemini://localhost:$GEM_PORT"
	# LeakSanitizer cannot run under ptrace: the ASan build's leak check is
	# the other tests' job
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 KILNET=strace start_kilnet k -f -qq -y -o "$T/st.log" \
		-e trace=open,openat,openat2,setuid,setresuid,setreuid,clone,clone3,fork,vfork \
		"$real" -c "$T/k.conf"
	master=$(pgrep -P "$KPID" | head -n 1)
	tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
	tit_expect "upload" "30 $B/members/testshire.gmi" "$T/w/up"
	printf '# Over Titan\n' >"$T/w/p.gmi"
	tit_upload "$T/w/up2" /p.gmi "$T/w/p.gmi"
	tit_expect "capsule upload" "30 $B/p.gmi" "$T/w/up2"
	kill -HUP "$master"
	tit_wait_ids "after the reload" "$NEW_IDS" 3000
	sleep 0.5
	# strace ends with the master it traces
	kill -TERM "$master"
	wait "$KPID" 2>/dev/null || true
	touch "$T/.stopped-$KPID"
	python3 - "$T/st.log" "$S" <<'PY' || fail "a root process opened what an editor wrote"
import re, sys
log, state = sys.argv[1], sys.argv[2].rstrip('/')
# Two passes: a child's lines may come before its parent's clone returns.
calls = []            # (index, pid, name, args, ret), index = where the call began
pending = {}
line_re = re.compile(r'^(\d+)\s+(.*)$')
for idx, raw in enumerate(open(log, errors='replace')):
    m = line_re.match(raw.rstrip('\n'))
    if not m:
        continue
    pid, rest = int(m.group(1)), m.group(2)
    if rest.endswith('<unfinished ...>'):
        pending[pid] = (idx, rest[:-len('<unfinished ...>')])
        continue
    r = re.match(r'<\.\.\. (\w+) resumed>(.*)$', rest)
    start = idx
    if r:
        start, head = pending.pop(pid, (idx, r.group(1) + '('))
        rest = head + r.group(2)
    c = re.match(r'(\w+)\((.*)\)\s+=\s+(-?\d+)', rest)
    if c:
        calls.append((start, pid, c.group(1), c.group(2), int(c.group(3))))
first = min((c[0], c[1]) for c in calls)[1]
parent, setuid_at = {}, {}
for start, pid, name, args, ret in calls:
    if name in ('clone', 'clone3', 'fork', 'vfork') and ret > 0:
        parent[ret] = (pid, start)
    elif name in ('setuid', 'setresuid', 'setreuid') and ret == 0:
        uid = re.match(r'\s*(-?\d+)', args)
        if uid and int(uid.group(1)) != 0:
            setuid_at.setdefault(pid, start)
def privileged(pid, at):
    if pid in setuid_at and setuid_at[pid] < at:
        return False
    if pid in parent:
        return privileged(*parent[pid])
    return pid == first or pid not in parent
bad, opens_unpriv = [], 0
for start, pid, name, args, ret in calls:
    if name not in ('open', 'openat', 'openat2') or ret < 0:
        continue
    d = re.match(r'(?:AT_FDCWD|\d+)(?:<([^>]*)>)?,\s*"((?:[^"\\]|\\.)*)"', args)
    o = re.match(r'"((?:[^"\\]|\\.)*)"', args)
    if d:
        base, rel = d.group(1), d.group(2)
        path = rel if rel.startswith('/') or base is None else base + '/' + rel
    elif o:
        path = o.group(1)
    else:
        continue
    path = re.sub(r'/\.$', '', path)
    if path.startswith(state + '/'):
        if privileged(pid, start):
            bad.append('%d %s(%s)' % (pid, name, args))
        else:
            opens_unpriv += 1
for b in bad[:10]:
    print('FAIL: root opened: ' + b[:300])
if opens_unpriv == 0:
    print('FAIL: no unprivileged open under the state folder: the trace saw no store')
sys.exit(1 if bad or opens_unpriv == 0 else 0)
PY
}

# An upload of 100,000 settings in one group: libconfig takes about a minute. It is
# refused within 10 s and nothing is stored; meanwhile a killed worker is replaced
# within 1 s and a second editor's good upload gets its 30.
test_trust_check_deadline() {
	tit_setup
	tit_cert ed2
	local fp2 t0 t1 w ok=0 n
	fp2=$(tit_fp "$T/ed2.crt")
	WORKERS=2 TIT_EDITORS="[ \"$ED_FP\", \"$fp2\" ]" tit_start 'max_upload = 2097152;'
	python3 - "$T/network.conf" >"$T/w/big.conf" <<'PY'
import sys
src = open(sys.argv[1]).read()
j = src.index('{', src.index('network'))
sys.stdout.write(src[:j + 1] + '\n' + ''.join('  x%d = 1;\n' % k for k in range(100000)) + src[j + 1:])
PY
	t0=$(tit_ms)
	tit_upload "$T/w/big" /network.conf "$T/w/big.conf" &
	local up=$!
	sleep 1
	# a worker other than the one that holds the big upload's connection
	local busy
	busy=$(ss -Htnp state established "sport = :$GEM_PORT" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
	w=$(workers_of "$KPID" | grep -vxF "${busy:-none}" | head -n 1)
	[ -n "$w" ] || fail "no idle worker to kill"
	kill -KILL "$w"
	t1=$(tit_ms)
	for n in $(seq 1 40); do
		if [ -n "$(workers_of "$KPID" | grep -vx "$w")" ] &&
		    "$TESTBIN/gemget" 127.0.0.1 "$GEM_PORT" "gemini://localhost:$GEM_PORT/" >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.025
	done
	[ $ok = 1 ] || fail "no worker served within 1 s of the kill"
	[ $(( $(tit_ms) - t1 )) -le 1000 ] || fail "the worker came back after $(( $(tit_ms) - t1 )) ms"
	# the second editor, while the first upload is being checked
	tit "$T/w/up2" --sni localhost --cert "$T/ed2.crt" --key "$T/ed2.key" \
		--url "titan://localhost:$GEM_PORT/network.conf;size=AUTO;mime=text/plain" --file "$T/w/new.conf"
	tit_expect "second editor" "30 $B/members/testshire.gmi" "$T/w/up2"
	wait "$up" || true
	[ $(( $(tit_ms) - t0 )) -le 10000 ] || fail "the big upload took $(( $(tit_ms) - t0 )) ms"
	tit_expect_status "the big upload" 59 "$T/w/big"
	expect_contains "its reason" "$(tit_head "$T/w/big")" "could not be checked within"
	# what is stored is the second editor's text, not the big one
	cmp -s "$S/network.conf" "$T/w/new.conf" || fail "the stored dataset is not the good upload"
	assert_alive
}

test_trust_editor_killed() {
	trust_need_root || return 0
	tit_setup
	WORKERS=2 tit_start
	local ed ed2 n
	ed=$(trust_editor_pid)
	sleep 1.2	# past the start, when a process that dies is not restarted
	kill -KILL "$ed"
	for n in $(seq 1 40); do
		ed2=$(trust_editor_pid)
		[ -n "$ed2" ] && [ "$ed2" != "$ed" ] && break
		sleep 0.05
	done
	[ "$ed2" != "$ed" ] || fail "the editing process was not restarted"
	expect_contains "logged" "$(cat "$T/k.log")" "editing process (pid $ed) killed by signal 9"
	# the new workers reach the new editing process
	for n in $(seq 1 40); do
		tit_upload "$T/w/up" /network.conf "$T/w/new.conf"
		[ "$(tit_head "$T/w/up")" = "30 $B/members/testshire.gmi" ] && break
		sleep 0.1
	done
	tit_expect "upload after the restart" "30 $B/members/testshire.gmi" "$T/w/up"
	tit_wait_ids "after the upload" "$NEW_IDS" 1000
	assert_alive
}
