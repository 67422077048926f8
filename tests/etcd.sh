# tests/etcd.sh: an etcd cluster on loopback for the tests (etcd 3.4, Debian's
# etcd-server and etcd-client). A test file sources it (". "$ROOT/tests/etcd.sh"")
# and says "# needs: test_NAME etcd etcdctl openssl curl"; it uses lib.sh's free_port
# and fail.
#
#   etcd_certs DIR                 a CA, the members' certificate, kilnet's client one
#   etcd_cluster_start DIR [N [ETCD-FLAGS...]]
#                                  N members (3), certificates made when DIR has none;
#                                  returns once every member is healthy
#   etcd_member_kill I             kill -9, reaped
#   etcd_member_start I [nowait]   again on its data dir (--initial-cluster-state
#                                  existing); waits until it is healthy unless nowait
#   etcd_cluster_stop              SIGTERM to every member, each waited for (the
#                                  leader last: about 1.1 s)
#   etcd_leader                    the number of the member that leads now
#   etcd_running                   the numbers of the members that run ("1 3")
#   etcd_cluster_resume            every stopped or killed member again; waits healthy
#   etcd_wait_healthy [SECONDS [I...]]   every member, or those named, healthy
#   etcdctl_ ARGS...               etcdctl with the endpoints and kilnet's certificate
#   etcd_api PATH [JSON [I [CURL-OPTIONS...]]]
#                                  curl POST of JSON to /v3/PATH (the JSON gateway) of
#                                  member I (1), the answer on stdout
#   etcd_b64 STRING                base64 of STRING, as the gateway wants keys and values
#
# Exported: ETCD_ENDPOINTS (https://127.0.0.1:P,... every member), ETCD_URL_I (member
# I's client URL), ETCD_PEER_URL_I, ETCD_PID_I (its pid; empty while it is down),
# ETCD_N, ETCD_DIR, and the files ETCD_CACERT, ETCD_CERT, ETCD_KEY (the CA and
# kilnet's client certificate and key, for kilnet's configuration).
#
# Files in DIR: etcd-ca.crt/.key, etcd-member.crt/.key (server and peer: SAN
# IP:127.0.0.1, DNS:localhost; serverAuth and clientAuth, as the gateway inside
# etcd dials its own gRPC port with it), kilnet-etcd.crt/.key (clientAuth), all
# EC P-256; etcdI.data (member I's data), etcdI.log (its log, appended on each
# start: DIR=$T puts them in the runner's report of a failed test).
#
# The members run on short raft timers (ETCD_HEARTBEAT_MS, 25; ETCD_ELECTION_MS,
# 250) with --pre-vote (without it, a member back from a stop could bump the term,
# unseat a fresh leader and lose its own start for 5 s): a new cluster is healthy
# 0.5 to 1.2 s after etcd_cluster_start (with certificates), a stopped one 0.2 s
# after etcd_cluster_resume. The members are killed (SIGKILL) when the shell that
# started them exits: by an EXIT trap (a trap the test set before is kept, and run
# after it), and besides each runs under setpriv --pdeathsig KILL (killed when that
# shell ends, even when a test sets its own EXIT trap afterwards, replacing etcd's).
# Start them from the test's own shell, not inside $(...) or a pipeline. They are
# not in $T/.servers: cleanup_servers would count a member killed on purpose as a
# crash.
#
# A write sent just after the leader was killed is lost with it: the follower that
# takes it forwards it to the dead leader, and it times out (etcdctl: "context
# deadline exceeded" after 5 s; the gateway: 503 "etcdserver: request timed out"
# after 5.5 s) although a new leader is there 0.3 s later. A test that kills the
# leader waits first: etcd_wait_healthy 10 $(etcd_running).

ETCD_HEARTBEAT_MS=${ETCD_HEARTBEAT_MS:-25}
ETCD_ELECTION_MS=${ETCD_ELECTION_MS:-250}

# etcd_certs DIR: the certificates, with openssl (EC P-256, ten years).
etcd_certs() {
	local d=$1 c
	mkdir -p "$d" || return 1
	c=$d/etcd-openssl.cnf
	cat >"$c" <<-'EOF'
	[req]
	distinguished_name = dn
	[dn]
	[ca]
	basicConstraints = critical, CA:TRUE
	keyUsage = critical, keyCertSign, cRLSign
	subjectKeyIdentifier = hash
	[member]
	basicConstraints = critical, CA:FALSE
	keyUsage = critical, digitalSignature
	extendedKeyUsage = serverAuth, clientAuth
	subjectAltName = IP:127.0.0.1, DNS:localhost
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	[client]
	basicConstraints = critical, CA:FALSE
	keyUsage = critical, digitalSignature
	extendedKeyUsage = clientAuth
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	EOF
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	if ! { openssl req -x509 -config "$c" -extensions ca "${ec[@]}" -days 3650 \
		-subj "/CN=kilnet test etcd CA" -keyout "$d/etcd-ca.key" -out "$d/etcd-ca.crt" \
		2>"$d/etcd-openssl.err" &&
	    _etcd_leaf "$d" etcd-member member "/CN=etcd" &&
	    _etcd_leaf "$d" kilnet-etcd client "/CN=kilnet"; }; then
		cat "$d/etcd-openssl.err"; fail "etcd_certs: openssl failed"; return 1
	fi
	chmod 600 "$d"/*.key
}

# _etcd_leaf DIR NAME SECTION SUBJECT: NAME.crt and NAME.key, signed by the CA.
_etcd_leaf() {
	local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -new -config "$d/etcd-openssl.cnf" "${ec[@]}" -subj "$4" \
		-keyout "$d/$2.key" -out "$d/$2.csr" 2>>"$d/etcd-openssl.err" &&
	openssl x509 -req -in "$d/$2.csr" -CA "$d/etcd-ca.crt" -CAkey "$d/etcd-ca.key" \
		-set_serial "$((RANDOM << 30 | RANDOM << 15 | RANDOM))" -days 3650 -sha256 \
		-extfile "$d/etcd-openssl.cnf" -extensions "$3" -out "$d/$2.crt" 2>>"$d/etcd-openssl.err" &&
	rm -f "$d/$2.csr"
}

# etcd_cluster_start DIR [N [ETCD-FLAGS...]]: N members (3) on free ports, every
# one https with client certificates required, on clients' and peers' ports; the
# flags are given to each member (on restarts too), e.g. --max-txn-ops=256.
etcd_cluster_start() {
	local d=$1 n=${2:-3} i p
	shift $(($# < 2 ? $# : 2))
	_etcd_flags=("$@")
	[[ $n =~ ^[1-9]$ ]] || { fail "etcd_cluster_start: N is 1 to 9, not $n"; return 1; }
	mkdir -p "$d" || return 1
	d=$(cd "$d" && pwd)
	[ -f "$d/kilnet-etcd.crt" ] || etcd_certs "$d" || return 1
	export ETCD_DIR=$d ETCD_N=$n ETCD_CACERT=$d/etcd-ca.crt ETCD_CERT=$d/kilnet-etcd.crt \
		ETCD_KEY=$d/kilnet-etcd.key ETCD_ENDPOINTS=
	_etcd_cluster='' _etcd_token=kilnet-$$-$RANDOM$RANDOM
	for i in $(seq 1 "$n"); do
		p=$(free_port); export "ETCD_URL_$i=https://127.0.0.1:$p"
		p=$(free_port); export "ETCD_PEER_URL_$i=https://127.0.0.1:$p"
		_etcd_cluster+=${_etcd_cluster:+,}etcd$i=https://127.0.0.1:$p
		ETCD_ENDPOINTS+=${ETCD_ENDPOINTS:+,}$(_etcd_url "$i")
		rm -rf "$d/etcd$i.data"; : >"$d/etcd$i.log"
	done
	_etcd_trap
	# One after the other: a new member first asks its peers whether the cluster is
	# there already, and a peer that listens but does not serve yet (doing the same)
	# holds that question for 2 s.
	for i in $(seq 1 "$n"); do _etcd_launch "$i" new && _etcd_wait_serving "$i" || return 1; done
	etcd_wait_healthy 20
}

# _etcd_log I: member I's log since its last start.
_etcd_log() { tac "$ETCD_DIR/etcd$1.log" | sed '/^--- .* start (/q' | tac; }

# _etcd_wait_serving I: until member I's log says it serves its ports (5 s at most).
_etcd_wait_serving() {
	local _ pid; pid=$(_etcd_pid "$1")
	for _ in $(seq 1 250); do
		_etcd_log "$1" | grep -q 'now serving peer/client' && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	tail -n 5 "$ETCD_DIR/etcd$1.log"
	fail "etcd member $1 does not serve"; return 1
}

_etcd_url() { local v=ETCD_URL_$1; echo "${!v}"; }
# etcd_running: the numbers of the members that run, on one line ("1 3").
etcd_running() {
	local i l=''
	for i in $(seq 1 "${ETCD_N:-0}"); do [ -z "$(_etcd_pid "$i")" ] || l+=${l:+ }$i; done
	echo "$l"
}
_etcd_pid() { local v=ETCD_PID_$1; echo "${!v:-}"; }

# _etcd_launch I STATE: member I in the background, its pid in ETCD_PID_I. The
# environment's ETCD_* variables are taken away: etcd reads ETCD_NAME and the like as
# its flags, and warns about the others (ETCD_URL_1...).
_etcd_launch() {
	local i=$1 url peer env=() v
	url=$(_etcd_url "$i"); v=ETCD_PEER_URL_$i; peer=${!v}
	for v in $(compgen -e); do
		[[ $v == ETCD_* && $v != ETCD_UNSUPPORTED_ARCH ]] && env+=(-u "$v")
	done
	local pre=()
	setpriv --help 2>/dev/null | grep -q -- --pdeathsig && pre=(setpriv --pdeathsig KILL)
	echo "--- $(date '+%F %T.%N') start ($2)" >>"$ETCD_DIR/etcd$i.log"
	env "${env[@]}" "${pre[@]}" etcd --name "etcd$i" --data-dir "$ETCD_DIR/etcd$i.data" \
		--listen-client-urls "$url" --advertise-client-urls "$url" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$_etcd_cluster" --initial-cluster-state "$2" \
		--initial-cluster-token "$_etcd_token" \
		--client-cert-auth --trusted-ca-file "$ETCD_DIR/etcd-ca.crt" \
		--cert-file "$ETCD_DIR/etcd-member.crt" --key-file "$ETCD_DIR/etcd-member.key" \
		--peer-client-cert-auth --peer-trusted-ca-file "$ETCD_DIR/etcd-ca.crt" \
		--peer-cert-file "$ETCD_DIR/etcd-member.crt" --peer-key-file "$ETCD_DIR/etcd-member.key" \
		--heartbeat-interval "$ETCD_HEARTBEAT_MS" --election-timeout "$ETCD_ELECTION_MS" \
		--pre-vote --logger zap --log-outputs stderr "${_etcd_flags[@]}" \
		>>"$ETCD_DIR/etcd$i.log" 2>&1 &
	export "ETCD_PID_$i=$!"
}

# etcd_wait_healthy [SECONDS [I...]]: until etcdctl endpoint health passes for the
# members named (all by default): each answers a quorum read. Fails at once when
# one of them exited. A member that is not ready yet holds the request until its
# timeout: that starts at 250 ms and doubles on each failure up to 2 s.
etcd_wait_healthy() {
	local secs=${1:-10} eps='' i pid end ms=250; shift $(($# > 0 ? 1 : 0))
	[ $# -gt 0 ] || set -- $(seq 1 "$ETCD_N")
	for i in "$@"; do eps+=${eps:+,}$(_etcd_url "$i"); done
	end=$(( ${EPOCHREALTIME/[.,]/} + secs * 1000000 ))
	# first until each says it serves clients (since its last start): a request
	# to a member that is not ready waits, and etcdctl's retries back off
	for i in "$@"; do
		while ! _etcd_log "$i" | grep -q 'serving client traffic'; do
			pid=$(_etcd_pid "$i")
			if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
			[ "${EPOCHREALTIME/[.,]/}" -lt "$end" ] || break
			sleep 0.02
		done
	done
	while :; do
		_etcdctl "$eps" --dial-timeout=${ms}ms --command-timeout=${ms}ms endpoint health \
			>"$ETCD_DIR/.health" 2>&1 && return 0
		for i in "$@"; do
			pid=$(_etcd_pid "$i")
			if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
				tail -n 5 "$ETCD_DIR/etcd$i.log"
				fail "etcd member $i is not running"; return 1
			fi
		done
		if [ "${EPOCHREALTIME/[.,]/}" -gt "$end" ]; then
			cat "$ETCD_DIR/.health"
			fail "etcd members $* not healthy after $secs s"; return 1
		fi
		ms=$((ms < 1000 ? ms * 2 : 2000))
		sleep 0.05
	done
}

# _etcdctl ENDPOINTS ARGS...
_etcdctl() {
	local eps=$1; shift
	ETCDCTL_API=3 etcdctl --endpoints="$eps" --cacert="$ETCD_CACERT" \
		--cert="$ETCD_CERT" --key="$ETCD_KEY" "$@"
}
# etcdctl_ ARGS...: etcdctl against the whole cluster as kilnet (its certificate).
etcdctl_() { _etcdctl "$ETCD_ENDPOINTS" "$@"; }

# etcd_member_kill I: SIGKILL, then reaped (a zombie would still answer kill -0).
etcd_member_kill() {
	local pid; pid=$(_etcd_pid "$1")
	[ -n "$pid" ] || { fail "etcd member $1 is not running"; return 1; }
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	export "ETCD_PID_$1="
	echo "--- $(date '+%F %T.%N') killed" >>"$ETCD_DIR/etcd$1.log"
}

# etcd_member_start I [nowait]: member I again, on its data dir; then, unless nowait,
# waits until it is healthy (it needs a quorum of running members for that).
etcd_member_start() {
	[ -z "$(_etcd_pid "$1")" ] || { fail "etcd member $1 is running"; return 1; }
	_etcd_launch "$1" existing || return 1
	[ "${2:-}" = nowait ] || etcd_wait_healthy 20 "$1"
}

# etcd_cluster_stop: SIGTERM to every running member, each waited for (SIGKILL after
# 10 s). The leader last: a leader stopped beside its followers tries to hand its
# leadership over to one of them, which is stopping too, and waits 5.5 s for that.
# About 1.1 s (a member whose peers still run closes its peer port in 1 s).
etcd_cluster_stop() {
	local i lead
	lead=$(etcd_leader 2>/dev/null) || lead=
	for i in $(seq 1 "${ETCD_N:-0}"); do [ "$i" = "$lead" ] || _etcd_term "$i"; done
	for i in $(seq 1 "${ETCD_N:-0}"); do [ "$i" = "$lead" ] || _etcd_reap "$i" 10; done
	[ -z "$lead" ] || { _etcd_term "$lead"; _etcd_reap "$lead" 10; }
}
_etcd_term() {
	local pid; pid=$(_etcd_pid "$1")
	[ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
}
# _etcd_reap I SECONDS: waits for member I to end, SIGKILL after SECONDS.
_etcd_reap() {
	local pid _; pid=$(_etcd_pid "$1")
	[ -n "$pid" ] || return 0
	for _ in $(seq 1 $(($2 * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "etcd member $1 did not stop on SIGTERM in $2 s: killed"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	export "ETCD_PID_$1="
	echo "--- $(date '+%F %T.%N') stopped" >>"$ETCD_DIR/etcd$1.log"
}

# etcd_leader: the number of the member that leads now (as the running members
# say, asked through the gateway); fails when none does.
etcd_leader() {
	local i out id lead
	for i in $(seq 1 "${ETCD_N:-0}"); do
		[ -n "$(_etcd_pid "$i")" ] || continue
		out=$(ETCD_CURL_TIMEOUT=1 etcd_api maintenance/status '{}' "$i" 2>/dev/null) || continue
		[[ $out =~ \"member_id\":\"([0-9]+)\" ]] || continue
		id=${BASH_REMATCH[1]}
		[[ $out =~ \"leader\":\"([0-9]+)\" ]] || continue
		[ "$id" = "${BASH_REMATCH[1]}" ] && { echo "$i"; return 0; }
	done
	return 1
}

# etcd_cluster_resume: every member that is down started again; waits until all
# are healthy.
etcd_cluster_resume() {
	local i
	for i in $(seq 1 "$ETCD_N"); do
		[ -n "$(_etcd_pid "$i")" ] || _etcd_launch "$i" existing || return 1
	done
	etcd_wait_healthy 20
}

# etcd_api PATH [JSON [I [CURL-OPTIONS...]]]: POST of JSON ({} by default) to
# https://.../v3/PATH on member I (1), as kilnet; the body on stdout, and the status
# of curl (its --max-time is ETCD_CURL_TIMEOUT, 10 s). The gateway takes keys and
# values in base64 (etcd_b64), and answers int64 values as strings.
etcd_api() {
	local path=$1 body=${2:-} i=${3:-1} url
	shift $(($# < 3 ? $# : 3))
	[ -n "$body" ] || body='{}'
	url=$(_etcd_url "$i")
	curl -sS --max-time "${ETCD_CURL_TIMEOUT:-10}" --cacert "$ETCD_CACERT" \
		--cert "$ETCD_CERT" --key "$ETCD_KEY" -H 'Content-Type: application/json' \
		"$@" --data-binary "$body" "$url/v3/$path"
}

# etcd_b64 STRING: STRING in base64, on one line.
etcd_b64() { printf '%s' "$1" | base64 -w0; }

# The EXIT trap: the members killed (SIGKILL: their data is scratch, and a SIGTERM
# costs a second or more), then the trap that was there before, with the same $?.
# In a ( ) subshell, bash's trap -p shows the parent's traps until this shell sets
# one: a reset of a trap nobody uses (SIGRTMAX) first, so that only this shell's own
# EXIT trap is kept (the runner's rm -rf of the scratch folder is the parent's, and
# must not run at the end of a test).
_etcd_trap() {
	local prev save
	save=$(trap -p SIGRTMAX); trap - SIGRTMAX; [ -z "$save" ] || eval "$save"
	prev=$(trap -p EXIT)
	[[ $prev == *_etcd_on_exit* ]] && return 0
	if [ -n "$prev" ]; then
		local -a words; eval "words=($prev)"
		_etcd_prev_trap=${words[2]}
	else
		_etcd_prev_trap=
	fi
	# set +e: the test's set -e would end the trap at the first command that fails
	# shellcheck disable=SC2154
	trap '_etcd_rc=$?; set +e; _etcd_on_exit; _etcd_return $_etcd_rc; eval "$_etcd_prev_trap"' EXIT
}
_etcd_on_exit() {
	local i pid
	for i in $(seq 1 "${ETCD_N:-0}"); do
		pid=$(_etcd_pid "$i")
		[ -z "$pid" ] || { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
	done
}
_etcd_return() { return "$1"; }
