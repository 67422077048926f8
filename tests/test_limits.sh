# tests/test_limits.sh: the per-address limits hold across workers (issue 13
# item 3). Every case runs two workers, so that connections from one address land
# on both (SO_REUSEPORT spreads them by the client's port): with a count per
# worker the address would get twice its rate, or twice max_per_address open.
# Floods are sequential, a new connection each, timed by the test: with rate 1
# and burst 5, at most 5 + 1/s of elapsed time (+ 1 for the clock's ms) may be
# served, and the first 5 must be.

LIMITS_RATE='rate_limit = { rate = 1.0; burst = 5.0; max_per_address = 0; allow = [ ]; };'

# limits_start [SETTINGS...]: two workers on free ports, plus a PROXY listener
# for Gemini ($PGEM_PORT).
limits_start() {
	PGEM_PORT=$(free_port)
	write_conf "$T/k.conf" "$@"
	sed -i "s|gemini = { listen = \[ \"127.0.0.1:$GEM_PORT\" \]; };|gemini = { listen = [ \"127.0.0.1:$GEM_PORT\" ]; proxy_listen = [ \"127.0.0.1:$PGEM_PORT\" ]; };|" \
		"$T/k.conf"
	grep -q proxy_listen "$T/k.conf" || fail "config not rewritten"
	start_kilnet k -c "$T/k.conf" --workers 2
	# (a probe of the PROXY port would be logged as a bad header: the
	# master binds every socket before the workers start, so the plain
	# ports accepting is enough)
}

limits_ms() { date +%s%3N; }

# limits_flood WHAT N CMD...: runs CMD I for I = 1..N in a row (each prints one
# reply line), keeps the lines in $T/WHAT.out and the wall time in LIMITS_MS.
limits_flood() {
	local what=$1 n=$2 i t0 out; shift 2
	: >"$T/$what.out"
	t0=$(limits_ms)
	for i in $(seq 1 "$n"); do
		out=$("$@" "$i")
		echo "${out:-(no reply)}" >>"$T/$what.out"
	done
	LIMITS_MS=$(( $(limits_ms) - t0 ))
}

# limits_expect WHAT SERVED: SERVED (the count of pages in $T/WHAT.out) is
# within what rate 1 and burst 5 allow in LIMITS_MS.
limits_expect() {
	local what=$1 served=$2 max
	max=$(( 5 + LIMITS_MS / 1000 + 1 ))
	echo "$what: $served of $(wc -l <"$T/$what.out") served in $LIMITS_MS ms (at most $max)"
	[ "$served" -le "$max" ] ||
		fail "$what: $served served in $LIMITS_MS ms, at most $max allowed (burst 5, rate 1/s)"
	[ "$served" -ge 5 ] || fail "$what: only $served served, the burst is 5"
}

# limits_gem I: one Gemini request's status line; limits_pgem FROM I: the same
# through the PROXY listener, claiming to come from FROM (with I: FROM.I).
limits_gem() {
	gemini "gemini://localhost:$GEM_PORT/" | head -n 1 | tr -d '\r'
}
limits_pgem() {
	local from=$1
	[ "$from" = each ] && from=198.51.100.$2
	"$TESTBIN/gemget" --first "PROXY TCP4 $from 127.0.0.1 40000 $PGEM_PORT\\r\\n" \
		127.0.0.1 "$PGEM_PORT" "gemini://localhost:$GEM_PORT/" | head -n 1 | tr -d '\r'
}
# limits_goph I: one Gopher request for the root menu; "page" or the first line.
limits_goph() {
	local out
	out=$(gopher_raw $'\r\n')
	if [[ $out == *"Keep it Local"* ]]; then echo page; else printf '%s\n' "${out%%$'\n'*}" | tr -d '\r'; fi
}

# limits_gem_check WHAT: every line of $T/WHAT.out is a 20 or a "44 N".
limits_gem_check() {
	local what=$1 served bad
	served=$(grep -c '^20 ' "$T/$what.out" || true)
	bad=$(grep -v -E '^(20 |44 [1-9][0-9]*$)' "$T/$what.out" || true)
	[ -z "$bad" ] || fail "$what: replies neither 20 nor 44 N: $(printf '%q' "$bad")"
	limits_expect "$what" "$served"
}

test_limits_gemini_rate_across_workers() {
	limits_start "$LIMITS_RATE"
	limits_flood gemini 40 limits_gem
	limits_gem_check gemini
	grep -q '^44 ' "$T/gemini.out" || fail "no 44"
	# both workers answered some of them: the limit was shared, not avoided
	expect_eq "workers that answered" 2 \
		"$(grep -oE ' w[0-9]+ gemini 127\.0\.0\.1 ' "$T/k.log" | sort -u | wc -l)"
	# the bucket refills at 1 a second, whichever worker answers
	sleep 1.2
	expect_eq "served after the wait" 20 "$(limits_gem | head -c 2)"
}

test_limits_gopher_rate_across_workers() {
	limits_start "$LIMITS_RATE"
	limits_flood gopher 40 limits_goph
	local served bad
	served=$(grep -c '^page$' "$T/gopher.out" || true)
	bad=$(grep -v -E '^(page|3rate limit: try again in [1-9][0-9]* s	+error\.host	1)$' \
		"$T/gopher.out" || true)
	[ -z "$bad" ] || fail "Gopher replies neither the page nor the limit's line: $(printf '%q' "$bad")"
	grep -q '^3rate limit' "$T/gopher.out" || fail "no rate limit line"
	limits_expect gopher "$served"
	expect_eq "workers that answered" 2 \
		"$(grep -oE ' w[0-9]+ gopher 127\.0\.0\.1 ' "$T/k.log" | sort -u | wc -l)"
}

# Behind a proxy, the header's address is what is counted, in both workers.
test_limits_proxy_rate_across_workers() {
	limits_start "$LIMITS_RATE"
	limits_flood proxied 40 limits_pgem 203.0.113.7
	limits_gem_check proxied
	grep -q '^44 ' "$T/proxied.out" || fail "no 44"
	expect_eq "workers that answered 203.0.113.7" 2 \
		"$(grep -oE ' w[0-9]+ gemini 203\.0\.113\.7 ' "$T/k.log" | sort -u | wc -l)"
	# the same flood, each connection claiming another address: none limited
	limits_flood spread 40 limits_pgem each
	expect_eq "claimed addresses served" 40 "$(grep -c '^20 ' "$T/spread.out" || true)"
}

# max_per_address counts the connections open from an address in all workers:
# of 12 held open at once, 4 are kept and the rest closed at once, whichever
# worker took them; once they close, the address may open 4 again.
test_limits_max_per_address_across_workers() {
	limits_start 'rate_limit = { rate = 0.0; burst = 1.0; max_per_address = 4; allow = [ ]; };' \
		'handshake_timeout = 20.0;' 'request_timeout = 20.0;'
	cat >"$T/hold.pl" <<'PERL'
use strict; use warnings; use IO::Socket::INET;
# hold.pl PORT N SECONDS: opens N silent connections, waits, prints how many the
# server still keeps open (not at end of file nor reset).
my ($port, $n, $wait) = @ARGV;
my @s = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port)
	or die "connect: $!" } 1 .. $n;
select(undef, undef, undef, $wait);
my $open = 0;
for my $s (@s) {
	my $r = ''; vec($r, fileno($s), 1) = 1;
	$open++ unless select($r, undef, undef, 0) > 0;
}
print "$open\n";
PERL
	local round open i
	for round in 1 2; do
		open=$(perl "$T/hold.pl" "$GOPH_PORT" 12 2.0)
		echo "round $round: $open of 12 kept open"
		[ "$open" -le 4 ] || fail "round $round: $open connections from one address kept open, max_per_address is 4"
		expect_eq "round $round: connections kept" 4 "$open"
		# until the server has closed its side of them all
		for i in $(seq 1 100); do
			[ -z "$(ss -Htn state established "( sport = :$GOPH_PORT )")" ] && break
			sleep 0.05
		done
	done
	expect_eq "workers that refused some" 2 \
		"$(grep -oE '\[w[0-9]+\]: info: 127\.0\.0\.1:[0-9]+ gopher: too many connections' \
			"$T/k.log" | cut -d] -f1 | sort -u | wc -l)"
	expect_eq "served once they closed" page "$(limits_goph)"
}

# The table outlives a reload: the workers forked for the new config go on
# counting where the old ones were (a reload is no way around a limit).
test_limits_kept_across_reload() {
	limits_start 'rate_limit = { rate = 0.01; burst = 5.0; max_per_address = 0; allow = [ ]; };'
	limits_flood before 8 limits_gem
	expect_eq "before the reload: served" 5 "$(grep -c '^20 ' "$T/before.out" || true)"
	local old i
	old=$(workers_of "$KPID" | sort | tr '\n' ' ')
	kill -HUP "$KPID"
	for i in $(seq 1 100); do
		grep -q 'reloaded: ' "$T/k.log" &&
			[ -z "$(comm -12 <(tr ' ' '\n' <<<"$old" | sed '/^$/d') <(workers_of "$KPID" | sort))" ] && break
		sleep 0.05
	done
	grep -q 'reloaded: ' "$T/k.log" || fail "no reload"
	echo "workers before: $old; after: $(workers_of "$KPID" | sort | tr '\n' ' ')"
	limits_flood after 8 limits_gem
	cat "$T/after.out"
	expect_eq "after the reload: served" 0 "$(grep -c '^20 ' "$T/after.out" || true)"
	expect_eq "after the reload: told to wait about 100 s" 8 \
		"$(grep -cE '^44 (9[0-9]|100)$' "$T/after.out" || true)"
}
