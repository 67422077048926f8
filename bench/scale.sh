#!/usr/bin/env bash
# bench/scale.sh: what a larger network costs. For the default dataset (11
# members) and generated ones of 1,000 and 10,000 (bench/gen-dataset.sh): load
# and render time (kilnet -t, median of 5), the largest page and the home pages
# (kilnet --render), a worker's RSS once serving (steady) and its high-water
# mark after the requests (peak), and CPU per request (the scheduler time of
# the worker and of the key process, which makes its signatures, over full
# Gemini handshakes at c=8, 8 rounds with the sizes taking turns; a ratio is
# the median of the per-round ratios) for the home page and a member page.
# Run by make bench (bench/run.sh); alone: bash bench/scale.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/lib.sh"
W=$(mktemp -d /tmp/kilnet-scale.XXXXXX)
KPIDS=
trap '[ -n "$KPIDS" ] && kill $KPIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
REQS=${SCALE_REQUESTS:-12000}
# As in bench/run.sh: the servers on core 0, the client on core 1.
SRV_PIN= CLI_PIN=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV_PIN="taskset -c 0"; CLI_PIN="taskset -c 1"
fi
ROUNDS=${SCALE_ROUNDS:-24}
make -s kilnet bench/bin/loadgen >/dev/null || { echo "scale: cannot build"; exit 1; }

port() { echo $(( 20000 + RANDOM % 10000 )); }
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# The worker's CPU time in ns, from the scheduler (/proc/PID/task/*/schedstat):
# to the nanosecond, where utime+stime count 10 ms ticks.
cpu_ns() {
	local sum=0 t v
	for t in /proc/"$1"/task/*/schedstat; do
		read -r v _ <"$t" 2>/dev/null || continue
		sum=$(( sum + v ))
	done
	echo "$sum"
}

# measure_cpu N URL KIND: one round of requests against N's server; adds to
# its sums, and keeps the round's ns a request (RND[N|KIND|round]).
declare -A NS RQ BAD RND
measure_cpu() {
	local n=$1 url=$2 key="$1|$3" c0 c1 out r
	c0=$(( $(cpu_ns "${WPID[$n]}") + $(cpu_ns "${KEYPID[$n]}") ))
	out=$($CLI_PIN "$ROOT/bench/bin/loadgen" --gemini --port "${PORT[$n]}" --sni localhost \
	    --request "$url" --expect "20 " -c 8 -n "$ROUND" 2>&1 | tail -n 1)
	c1=$(( $(cpu_ns "${WPID[$n]}") + $(cpu_ns "${KEYPID[$n]}") ))
	r=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$out")
	[ "${r:-0}" -gt 0 ] && [[ $out == *" errors=0 "* ]] || { BAD[$key]=1; return; }
	NS[$key]=$(( ${NS[$key]:-0} + c1 - c0 ))
	RQ[$key]=$(( ${RQ[$key]:-0} + r ))
	RND[$key|$ROUNDNO]=$(( (c1 - c0) / r ))
}
per_req() {   # KEY: µs of CPU a request
	[ -z "${BAD[$1]:-}" ] && [ "${RQ[$1]:-0}" -gt 0 ] || { echo "-"; return; }
	awk -v t="${NS[$1]}" -v n="${RQ[$1]}" 'BEGIN {printf "%.1f", t / 1000 / n}'
}
# ratio KIND: the median over the rounds of 10,000 members' CPU a request
# against 11 members' in the same round.
ratio() {
	local r
	[ -z "${BAD[10000|$1]:-}" ] && [ -z "${BAD[11|$1]:-}" ] || { echo "-"; return; }
	for r in $(seq 1 "$ROUNDS"); do
		awk -v a="${RND[10000|$1|$r]}" -v b="${RND[11|$1|$r]}" 'BEGIN {printf "%.4f\n", a / b}'
	done | sort -n | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m}'
}

declare -A LOAD BIG FEED HOME GHOME STEADY PEAK FILE PORT WPID KEYPID KP MEMBER
SIZES="11 1000 10000"
for n in $SIZES; do
	d=$W/$n
	mkdir -p "$d/certs"
	if [ "$n" = 11 ]; then
		ds=$ROOT/conf/network.conf
	else
		ds=$d/network.conf
		bash "$ROOT/bench/gen-dataset.sh" "$n" >"$ds"
	fi
	FILE[$n]=$(( $(stat -c %s "$ds") / 1024 ))
	p=$(port)
	PORT[$n]=$p
	kilnet_conf "$d/k.conf" "$p" "$((p + 1))" "$d/certs" "$ds" "workers = 1;"
	times=()
	for _ in 1 2 3 4 5; do
		t0=$(ms_now); "$ROOT/kilnet" -t -c "$d/k.conf" >/dev/null 2>&1; times+=($(( $(ms_now) - t0 )))
	done
	LOAD[$n]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
	"$ROOT/kilnet" --render "$d/site" -c "$d/k.conf" >/dev/null 2>&1
	BIG[$n]=$(find "$d/site" -type f ! -name atom.xml -printf '%s\n' | sort -n | tail -n 1)
	FEED[$n]=$(stat -c %s "$d/site/gemini/atom.xml" 2>/dev/null || echo -)
	HOME[$n]=$(stat -c %s "$d/site/gemini/index.gmi")
	GHOME[$n]=$(stat -c %s "$d/site/gopher/gophermap")
	m=$(find "$d/site/gemini/members" -name '*.gmi' ! -name index.gmi | head -n 1)
	MEMBER[$n]=/members/$(basename "$m")
	$SRV_PIN "$ROOT/kilnet" -c "$d/k.conf" >"$d/log" 2>&1 &
	KP[$n]=$!
	KPIDS="${KPIDS:-} $!"
	for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.05; done
	sleep 0.5
	# the worker, and the key process (src/keyproc.c: its title kilnet-keys)
	KEYPID[$n]=$(pgrep -P "${KP[$n]}" -x kilnet-keys | head -n 1)
	WPID[$n]=$(pgrep -P "${KP[$n]}" | grep -vx "${KEYPID[$n]:-none}" | head -n 1)
	STEADY[$n]=$(( $(status_kb "${WPID[$n]}" VmRSS) / 1024 ))
	"$ROOT/bench/bin/loadgen" --gemini --port "$p" --sni localhost --request "gemini://localhost:$p/" \
	    -c 8 -n 200 >/dev/null 2>&1	# warm up
done
# The servers take turns, round by round, so that a busy second of the
# machine does not land on one size only.
ROUND=$(( REQS / ROUNDS ))
for ROUNDNO in $(seq 1 "$ROUNDS"); do
	for n in $SIZES; do
		measure_cpu "$n" "gemini://localhost:${PORT[$n]}/" home
		measure_cpu "$n" "gemini://localhost:${PORT[$n]}${MEMBER[$n]}" member
	done
done
for n in $SIZES; do
	PEAK[$n]=$(( $(status_kb "${WPID[$n]}" VmHWM) / 1024 ))
	kill "${KP[$n]}"; wait "${KP[$n]}" 2>/dev/null
done
KPIDS=

echo "Cost by size of network (generated datasets: bench/gen-dataset.sh; CPU: full"
echo "Gemini handshakes at c=8, $REQS requests in $ROUNDS rounds taking turns, the worker's"
echo "and the key process's scheduler time; the ratios: the median of the per-round ratios):"
printf '%-8s | %9s | %9s | %10s | %10s | %11s | %10s | %10s | %8s | %8s\n' members "file KiB" "-t ms" "largest B" "feed B" "home B g/G" "RSS MiB" "peak MiB" "µs home" "µs member"
for n in 11 1000 10000; do
	printf '%-8s | %9s | %9s | %10s | %10s | %11s | %10s | %10s | %8s | %8s\n' "$n" "${FILE[$n]}" "${LOAD[$n]}" \
	    "${BIG[$n]}" "${FEED[$n]}" "${HOME[$n]}/${GHOME[$n]}" "${STEADY[$n]}" "${PEAK[$n]}" \
	    "$(per_req "$n|home")" "$(per_req "$n|member")"
done
check() {   # WHAT VALUE LIMIT UNIT
	local ok
	ok=$(awk -v v="$2" -v l="$3" 'BEGIN {print (v != "-" && v + 0 <= l + 0) ? "MET    " : "NOT MET"}')
	echo "$ok  $1: $2$4 (<= $3$4)"
}
check "10,000 members: load and render (kilnet -t)" "${LOAD[10000]}" 500 " ms"
check "10,000 members: steady RSS per worker vs the dataset file" \
    "$(awk -v r="${STEADY[10000]}" -v f="${FILE[10000]}" 'BEGIN {printf "%.2f", r * 1024 / f}')" 4 x
check "10,000 members: largest page (the feed apart)" "${BIG[10000]}" 8192 " B"
check "10,000 members: Atom feed" "${FEED[10000]}" 32768 " B"
check "10,000 members: Gemini home page" "${HOME[10000]}" 2047 " B"
check "10,000 members: Gopher root" "${GHOME[10000]}" 2047 " B"
check "CPU per request, home page, 10,000 vs 11 members" "$(ratio home)" 1.05 x
check "CPU per request, member page, 10,000 vs 11 members" "$(ratio member)" 1.05 x
