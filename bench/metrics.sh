#!/usr/bin/env bash
# bench/metrics.sh: what the metrics cost a request (issue 22). Two kilnet
# instances (--workers 1, on core 0; the load generator on core 1), the same
# but for server.metrics: off (the workers count nothing) and on (every request
# counted in the shared region, and its metrics process scraped once a second
# meanwhile, as Prometheus would, faster). Full Gemini handshakes and Gopher
# requests at c=16, ROUNDS rounds with the two taking turns; CPU is the
# scheduler time of each instance's whole process tree (master, worker, key
# process, metrics process); a ratio is the median of the per-round ratios.
# Run by make bench (bench/run.sh); alone: bash bench/metrics.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/lib.sh"
W=$(mktemp -d /tmp/kilnet-metrics-bench.XXXXXX)
PIDS=
trap '[ -n "$PIDS" ] && kill $PIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
ROUNDS=${METRICS_ROUNDS:-8}
SCALE=${BENCH_SCALE:-1}
GEM_N=$(( 1500 * SCALE )) GOPH_N=$(( 15000 * SCALE ))
SRV_PIN= CLI_PIN=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV_PIN="taskset -c 0"; CLI_PIN="taskset -c 1"
fi
make -s kilnet bench/bin/loadgen >/dev/null || { echo "metrics: cannot build"; exit 1; }
LOADGEN=$ROOT/bench/bin/loadgen

port() { echo $(( 20000 + RANDOM % 10000 )); }
wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# The scheduler time (ns) of PID and its children, every thread.
tree_ns() {
	local sum=0 p t v
	for p in "$1" $(pgrep -P "$1"); do
		for t in /proc/"$p"/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null || continue
			sum=$(( sum + v ))
		done
	done
	echo "$sum"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$W/localhost.key" -out "$W/localhost.crt" 2>/dev/null || { echo "metrics: openssl failed"; exit 1; }

declare -A GEM GOPH PID
MPORT=$(port)
for v in off on; do
	GEM[$v]=$(port) GOPH[$v]=$(port)
	set -- "workers = 1;"
	[ "$v" = on ] && set -- "$@" "metrics = { listen = [ \"127.0.0.1:$MPORT\" ]; };"
	kilnet_conf "$W/$v.conf" "${GEM[$v]}" "${GOPH[$v]}" "$W" "$ROOT/conf/network.conf" "$@"
	$SRV_PIN "$ROOT/kilnet" -c "$W/$v.conf" >"$W/$v.log" 2>&1 &
	PID[$v]=$!
	PIDS="$PIDS $!"
	wait_port "${GEM[$v]}" && wait_port "${GOPH[$v]}" || { echo "metrics: kilnet ($v) does not serve"; cat "$W/$v.log"; exit 1; }
done
wait_port "$MPORT" || { echo "metrics: no metrics listener"; exit 1; }
# Scraped once a second while it serves (curl's own time is not counted).
( while :; do curl -s -o /dev/null "http://127.0.0.1:$MPORT/metrics"; sleep 1; done ) &
PIDS="$PIDS $!"

# run V KIND N: one round against instance V; its ns a request (or "-").
run() {
	local v=$1 kind=$2 n=$3 c0 c1 out r
	local -a args=(--gemini --port "${GEM[$v]}" --request "gemini://localhost:${GEM[$v]}/" --expect "20 ")
	[ "$kind" = gopher ] && args=(--gopher --port "${GOPH[$v]}" --request "")
	c0=$(tree_ns "${PID[$v]}")
	out=$($CLI_PIN "$LOADGEN" "${args[@]}" -c 16 -n "$n" --seconds 60 2>&1 | tail -n 1)
	c1=$(tree_ns "${PID[$v]}")
	r=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$out")
	if [ "${r:-0}" -gt 0 ] && [[ $out == *" errors=0 "* ]]; then
		echo $(( (c1 - c0) / r ))
	else
		echo -
	fi
}

declare -A RND
for kind in gemini gopher; do
	n=$GEM_N
	[ "$kind" = gopher ] && n=$GOPH_N
	for v in off on; do run "$v" "$kind" $((n / 5)) >/dev/null; done	# warm up
	for r in $(seq 1 "$ROUNDS"); do
		for v in off on; do RND[$kind|$v|$r]=$(run "$v" "$kind" "$n"); done
	done
done
kill -0 "${PID[on]}" "${PID[off]}" 2>/dev/null || echo "metrics: a kilnet died (see its log)"
SCRAPED=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
    awk '/^kilnet_requests_total/ { n += $2 } END { print n + 0 }')

# median_ratio KIND: the median over the rounds of on's ns a request / off's.
median_ratio() {
	local r a b
	for r in $(seq 1 "$ROUNDS"); do
		a=${RND[$1|on|$r]} b=${RND[$1|off|$r]}
		[ "$a" = - ] || [ "$b" = - ] && continue
		awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f\n", a / b }'
	done | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else
	    printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# mean_us KIND V: the mean over the rounds of V's µs a request.
mean_us() {
	local r
	for r in $(seq 1 "$ROUNDS"); do echo "${RND[$1|$2|$r]}"; done |
	    awk '$1 != "-" { s += $1; n++ } END { if (n) printf "%.1f", s / n / 1000; else print "-" }'
}
# check NAME RATIO LIMIT
check() {
	awk -v n="$1" -v v="$2" -v l="$3" 'BEGIN { if (v == "-") { printf "NOT MET  %s: no measurement\n", n; exit }
	    if (v <= l) printf "MET      %s: %sx (<= %sx)\n", n, v, l
	    else printf "NOT MET  %s: %sx (<= %sx; off by %.2fx)\n", n, v, l, v / l }'
}

echo "Metrics (issue 22): kilnet with server.metrics on (every request counted in the"
echo "shared region, scraped once a second) against off, CPU of the whole process"
echo "tree a request; $ROUNDS rounds of $GEM_N Gemini full handshakes and $GOPH_N Gopher"
echo "requests at c=16, taking turns; ratios: the median of the per-round ratios:"
printf '%-28s | %12s | %12s\n' scenario "off µs/req" "on µs/req"
printf '%-28s | %12s | %12s\n' "gemini full c=16, metrics" "$(mean_us gemini off)" "$(mean_us gemini on)"
printf '%-28s | %12s | %12s\n' "gopher c=16, metrics" "$(mean_us gopher off)" "$(mean_us gopher on)"
echo "(the scraped kilnet_requests_total at the end: $SCRAPED)"
check "Gemini full c=16: metrics on vs off CPU/req" "$(median_ratio gemini)" 1.02
check "Gopher c=16: metrics on vs off CPU/req" "$(median_ratio gopher)" 1.02
