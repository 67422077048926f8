# tests/test_reliability.sh: hostile and broken clients against the real server
# (issue 8): thousands of silent connections, a reader of one byte a second,
# 100 KiB of garbage, a flood from one address (rate limit, connection cap, with
# and without a PROXY header), and TLS alerts and resets mid-handshake. Each case
# checks that the bad client costs its own connection only: others are served
# meanwhile and the server lives (the harness checks it exits 0 on SIGTERM).
# needs: test_reliability_tls_alerts_and_resets openssl

# rel_start [SETTINGS...]: a server on free ports with the default dataset.
rel_start() {
	write_conf "$T/k.conf" "$@"
	start_kilnet k -c "$T/k.conf"
}

rel_home() { echo "gemini://localhost:$GEM_PORT/"; }

# rel_status REQUEST [gemget options]: the first two bytes of the Gemini reply.
rel_status() { gemini "$@" | head -c 2; }

rel_ms() { date +%s%3N; }

# rel_field NAME OUTPUT: NAME=value from a loadgen line.
rel_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# rel_raw_tool: a raw TCP client in Perl (perl-base only) for what no TLS library
# does on purpose: stop halfway through a handshake, reset (SO_LINGER 0), send a
# bare alert record, or catch a client's first flight.
rel_raw_tool() {
	cat >"$T/raw.pl" <<'PERL'
use strict; use warnings; use Socket; use IO::Socket::INET;
my ($mode, $port, $file) = @ARGV;
sub slurp { open(my $f, '<:raw', $_[0]) or die "$_[0]: $!"; local $/; my $d = <$f>; close $f; $d }
sub reset_close { my $s = shift; setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)); close $s; }
sub wait_read { my ($s, $t) = @_; my $r = ''; vec($r, fileno($s), 1) = 1; select($r, undef, undef, $t) }
if ($mode eq 'capture') {	# the first flight of one client, to $file
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
		Listen => 1, ReuseAddr => 1) or die "listen: $!";
	print "ready\n"; STDOUT->flush;
	my $c = $l->accept or die "accept: $!";
	my $got = '';
	while (wait_read($c, 1) > 0) { my $n = sysread($c, my $b, 65536); last unless $n; $got .= $b; }
	open(my $f, '>:raw', $file) or die; print $f $got; close $f;
	exit 0;
}
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
binmode $s;
if ($mode eq 'half-rst') {	# half a ClientHello, then a reset
	my $h = slurp($file);
	syswrite($s, substr($h, 0, int(length($h) / 2)));
	select(undef, undef, undef, 0.05);
	reset_close($s);
} elsif ($mode eq 'hello-rst') {	# a whole ClientHello, the server's first bytes, a reset
	syswrite($s, slurp($file));
	wait_read($s, 3) > 0 or die "no reply to the ClientHello";
	sysread($s, my $b, 1);
	reset_close($s);
} elsif ($mode eq 'alert') {	# a fatal handshake_failure alert instead of a ClientHello
	syswrite($s, "\x15\x03\x03\x00\x02\x02\x28");
	my $n = 0;
	while (wait_read($s, 3) > 0) { my $r = sysread($s, my $b, 4096); last unless $r; $n += $r; }
	print "closed after $n bytes\n";
} elsif ($mode eq 'hello-alert') {	# a ClientHello, then an alert before the Finished
	syswrite($s, slurp($file));
	wait_read($s, 3) > 0 or die "no reply to the ClientHello";
	syswrite($s, "\x15\x03\x03\x00\x02\x02\x28");
	while (wait_read($s, 3) > 0) { my $r = sysread($s, my $b, 4096); last unless $r; }
	print "closed\n";
} else { die "unknown mode $mode" }
PERL
}

# rel_capture_hello FILE: a real ClientHello (openssl s_client's) caught on a port.
rel_capture_hello() {
	local p
	p=$(free_port)
	perl "$T/raw.pl" capture "$p" "$1" >"$T/capture.out" &
	local cpid=$! i
	for i in $(seq 1 100); do grep -q ready "$T/capture.out" 2>/dev/null && break; sleep 0.05; done
	timeout 3 openssl s_client -connect "127.0.0.1:$p" -servername localhost </dev/null \
		>/dev/null 2>&1 || true
	wait "$cpid"
	[ "$(head -c 1 "$1" | od -An -tx1 | tr -d ' ')" = 16 ] || fail "no ClientHello caught"
}

# rel_conns: the number of connections open on the Gemini port (server side).
rel_conns() { ss -Htn state established "sport = :$GEM_PORT" | wc -l; }

# --- silent connections

test_reliability_2000_silent_connections() {
	ulimit -n 8192
	rel_start 'handshake_timeout = 2.0;' 'request_timeout = 2.0;' 'max_connections = 4000;'
	# plain TCP connections to the Gemini port that never send a byte, held by the
	# load tool (its "gopher" mode sends nothing on an idle connection)
	"$ROOT/bench/bin/loadgen" --gopher --port "$GEM_PORT" --idle 2000 -n 0 --hold 10 \
		--settle 0.5 --ready-file "$T/ready" >"$T/idle.out" 2>&1 &
	local lpid=$! i
	for i in $(seq 1 200); do [ -f "$T/ready" ] && break; sleep 0.05; done
	[ -f "$T/ready" ] || fail "the idle set was not ready"
	local t0 t1
	t0=$(rel_ms)
	# a normal request is answered meanwhile, on each protocol
	expect_eq "Gemini served meanwhile" 20 "$(rel_status "$(rel_home)")"
	expect_contains "Gopher served meanwhile" "$(gopher_raw $'\r\n')" "Keep it Local"
	t1=$(rel_ms)
	[ $((t1 - t0)) -le 1500 ] || fail "normal requests took $((t1 - t0)) ms"
	wait "$lpid" || { cat "$T/idle.out"; fail "loadgen failed"; }
	local out
	out=$(cat "$T/idle.out")
	echo "$out"
	expect_eq "held" 2000 "$(rel_field held "$out")"
	expect_eq "closed by the server" 2000 "$(rel_field closed_by_server "$out")"
	local max
	max=$(rel_field idle_close_max_s "$out")
	awk -v m="$max" 'BEGIN { exit !(m >= 1.5 && m <= 4.5) }' \
		|| fail "silent connections closed after up to $max s (handshake_timeout 2 s)"
	expect_eq "served afterwards" 20 "$(rel_status "$(rel_home)")"
	assert_alive
}

# --- slow readers

# A response larger than every socket buffer, to a client that takes one byte a
# second: the write deadline cuts it (with a reset: nothing stays queued for it).
# The client cannot tell soon (its buffers hold hours of reading at that pace),
# so the server's side is checked: the connection is gone on time while the
# slow client still runs.
rel_slow_reader() {
	local proto=$1 port=$2 plain=$3 req=$4 t0 t1 i
	t0=$(rel_ms)
	"$TESTBIN/gemget" $plain --read-slow 1000 --read-size 1 --rcvbuf 4096 --timeout 30 \
		127.0.0.1 "$port" "$req" >"$T/got-$proto" 2>/dev/null &
	local cpid=$!
	# others are served meanwhile
	sleep 0.5
	expect_eq "served during the slow read ($proto)" 20 "$(rel_status "$(rel_home)")"
	for i in $(seq 1 160); do
		grep -q "$proto: write deadline" "$T/k.log" && break
		sleep 0.05
	done
	t1=$(rel_ms)
	grep -q "$proto: write deadline" "$T/k.log" || fail "$proto: write deadline not logged"
	[ $((t1 - t0)) -ge 1500 ] || fail "$proto: cut after $((t1 - t0)) ms, before write_timeout"
	[ $((t1 - t0)) -le 6000 ] || fail "$proto: cut after $((t1 - t0)) ms (write_timeout 2 s)"
	sleep 0.2
	expect_eq "$proto: connections left" 0 \
		"$(ss -Htn state established "sport = :$port" | wc -l)"
	kill -0 "$cpid" 2>/dev/null || fail "$proto: the slow client ended first"
	kill "$cpid" 2>/dev/null
	wait "$cpid" 2>/dev/null || true
	[ "$(stat -c %s "$T/got-$proto")" -lt 100000 ] || fail "$proto: read too much"
}

test_reliability_slow_reader_cut() {
	mkdir -p "$T/cap"
	head -c 12000000 /dev/urandom >"$T/cap/big.bin"
	CAPSULE=$T/cap rel_start 'write_timeout = 2.0;'
	rel_slow_reader gemini "$GEM_PORT" "" "gemini://localhost:$GEM_PORT/big.bin"
	rel_slow_reader gopher "$GOPH_PORT" --plain "/big.bin"
	expect_eq "served afterwards" 20 "$(rel_status "$(rel_home)")"
	assert_alive
}

# --- garbage

test_reliability_garbage_100k() {
	rel_start
	local junk out rc
	# printable junk (an argument cannot hold NUL) and no CRLF anywhere
	junk=$(head -c 76800 /dev/urandom | base64 -w0)
	[ ${#junk} -ge 102400 ] || fail "junk too short: ${#junk}"
	# over TLS to the Gemini port: 59, then a clean close
	rc=0
	out=$(gemini "$junk" --no-crlf) || rc=$?
	expect_eq "Gemini status" 59 "${out:0:2}"
	expect_eq "close_notify after 59" 0 "$rc"
	# raw bytes to the Gemini port: no TLS, the connection is closed
	rc=0
	"$TESTBIN/gemget" --plain --no-crlf 127.0.0.1 "$GEM_PORT" "$junk" >/dev/null 2>&1 || rc=$?
	[ $rc -ne 4 ] || fail "garbage to the Gemini port was not closed"
	# plain Gopher: a type 3 error menu, then close
	rc=0
	out=$("$TESTBIN/gemget" --plain --no-crlf 127.0.0.1 "$GOPH_PORT" "$junk") || rc=$?
	expect_eq "Gopher closes" 0 "$rc"
	expect_eq "Gopher error line" 3 "${out:0:1}"
	# binary junk with NUL bytes too
	head -c 102400 /dev/urandom | tr -d '\n\r' | timeout 10 "$TESTBIN/gemget" --plain --no-crlf \
		127.0.0.1 "$GOPH_PORT" "$(head -c 2000 /dev/urandom | tr -d '\0\n\r\\')" >/dev/null 2>&1 || true
	expect_eq "Gemini served afterwards" 20 "$(rel_status "$(rel_home)")"
	expect_contains "Gopher served afterwards" "$(gopher_raw $'\r\n')" "Keep it Local"
	assert_alive
}

# --- TLS abuse

test_reliability_tls_alerts_and_resets() {
	rel_raw_tool
	rel_capture_hello "$T/hello"
	rel_start 'max_connections = 8;' 'handshake_timeout = 5.0;'
	local i
	for i in $(seq 1 30); do
		perl "$T/raw.pl" half-rst "$GEM_PORT" "$T/hello" || fail "half-rst $i"
		perl "$T/raw.pl" hello-rst "$GEM_PORT" "$T/hello" || fail "hello-rst $i"
	done
	expect_contains "bare alert" "$(perl "$T/raw.pl" alert "$GEM_PORT")" "closed after"
	expect_contains "alert mid-handshake" "$(perl "$T/raw.pl" hello-alert "$GEM_PORT" "$T/hello")" "closed"
	# on the Gopher port (TLS autodetected) too
	perl "$T/raw.pl" half-rst "$GOPH_PORT" "$T/hello"
	perl "$T/raw.pl" hello-rst "$GOPH_PORT" "$T/hello"
	expect_contains "Gopher port alert" "$(perl "$T/raw.pl" alert "$GOPH_PORT")" "closed after"
	# each cost one connection, now closed: with a cap of 8, a leak of any would
	# hold the next requests until the handshake deadline (5 s)
	local t0 t1
	for i in $(seq 1 20); do
		[ "$(rel_conns)" -eq 0 ] && break
		sleep 0.05
	done
	t0=$(rel_ms)
	for i in $(seq 1 10); do
		expect_eq "served after the abuse ($i)" 20 "$(rel_status "$(rel_home)")"
	done
	t1=$(rel_ms)
	[ $((t1 - t0)) -le 3000 ] || fail "10 requests took $((t1 - t0)) ms: connections held"
	expect_eq "open connections" 0 "$(rel_conns)"
	assert_alive
}

# --- rate limits

# rel_limit_conf [SETTINGS...]: a low rate limit with no exempt address.
rel_limit_start() {
	rel_start 'rate_limit = { rate = 1.0; burst = 3; max_per_address = 0; allow = []; };' "$@"
}

test_reliability_flood_gets_44() {
	rel_limit_start
	local i got=() s
	for i in $(seq 1 8); do
		got+=("$(rel_status "$(rel_home)" --bind 127.0.0.2)")
	done
	echo "flood from 127.0.0.2: ${got[*]}"
	expect_eq "burst served" "20 20 20" "${got[*]:0:3}"
	expect_contains "then told to slow down" "${got[*]:3}" "44"
	s=$(gemini "$(rel_home)" --bind 127.0.0.2 | head -n 1 | tr -d '\r')
	[[ $s =~ ^44\ [1-9][0-9]*$ ]] || fail "44 reply: $(printf '%q' "$s")"
	# another address is served meanwhile
	expect_eq "127.0.0.1 served" 20 "$(rel_status "$(rel_home)")"
	grep -q 'w1 gemini 127.0.0.2 localhost .* 44 ' "$T/k.log" || fail "44 not in the access log"
	grep -q 'rate limit' "$T/k.log" || fail "rate limit not logged"
	# Gopher: a type 3 line, from another flooding address
	local out=
	for i in $(seq 1 6); do
		out=$("$TESTBIN/gemget" --plain --bind 127.0.0.3 127.0.0.1 "$GOPH_PORT" "")
	done
	expect_contains "Gopher limited" "$out" "3rate limit: try again in "
	expect_contains "Gopher error host" "$out" $'\terror.host\t1\r\n.\r'
	expect_contains "Gopher from 127.0.0.1 served" "$(gopher_raw $'\r\n')" "Keep it Local"
	# the bucket refills: served again after the wait
	sleep 1.2
	expect_eq "served after the wait" 20 "$(rel_status "$(rel_home)" --bind 127.0.0.2)"
}

test_reliability_loopback_exempt_by_default() {
	rel_start 'rate_limit = { rate = 1.0; burst = 2; max_per_address = 1; };'
	local i
	for i in $(seq 1 6); do
		expect_eq "loopback request $i" 20 "$(rel_status "$(rel_home)" --bind 127.0.0.2)"
	done
}

test_reliability_connection_cap_per_address() {
	rel_start 'rate_limit = { rate = 0.0; burst = 1; max_per_address = 2; allow = []; };' \
		'handshake_timeout = 5.0;'
	# two silent connections from 127.0.0.2 are all that address may hold
	perl -MIO::Socket::INET -e '
		my @s = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0],
			LocalAddr => "127.0.0.2") or die } 1..2;
		print "open\n"; STDOUT->flush; sleep 4;' "$GEM_PORT" >"$T/held" &
	local hpid=$! i rc=0
	for i in $(seq 1 100); do grep -q open "$T/held" && break; sleep 0.05; done
	sleep 0.2
	gemini "$(rel_home)" --bind 127.0.0.2 >/dev/null 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "a third connection from 127.0.0.2 was served"
	grep -q "127.0.0.2.*too many connections" "$T/k.log" || fail "refusal not logged"
	expect_eq "127.0.0.1 served" 20 "$(rel_status "$(rel_home)")"
	kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null || true
	sleep 0.2
	expect_eq "127.0.0.2 served once its connections closed" 20 \
		"$(rel_status "$(rel_home)" --bind 127.0.0.2)"
}

# --- PROXY protocol listeners

# rel_proxy_start [SETTINGS...]: plain listeners plus a PROXY listener for each
# protocol ($PGEM_PORT, $PGOPH_PORT).
rel_proxy_start() {
	PGEM_PORT=$(free_port) PGOPH_PORT=$(free_port)
	write_conf "$T/k.conf" "$@"
	sed -i -e "s|gemini = { listen = \[ \"127.0.0.1:$GEM_PORT\" \]; };|gemini = { listen = [ \"127.0.0.1:$GEM_PORT\" ]; proxy_listen = [ \"127.0.0.1:$PGEM_PORT\" ]; };|" \
		-e "s|gopher = { listen = \[ \"127.0.0.1:$GOPH_PORT\" \]; };|gopher = { listen = [ \"127.0.0.1:$GOPH_PORT\" ]; proxy_listen = [ \"127.0.0.1:$PGOPH_PORT\" ]; };|" \
		"$T/k.conf"
	grep -q "proxy_listen" "$T/k.conf" || fail "config not rewritten"
	start_kilnet k -c "$T/k.conf"
	wait_port 127.0.0.1 "$PGEM_PORT" && wait_port 127.0.0.1 "$PGOPH_PORT" \
		|| fail "no PROXY listeners"
}

# rel_pgem FROM-ADDR [gemget options]: a Gemini request through the PROXY
# listener, claiming to come from FROM-ADDR; prints the status.
rel_pgem() {
	local from=$1; shift
	"$TESTBIN/gemget" --first "PROXY TCP4 $from 127.0.0.1 40000 $PGEM_PORT\\r\\n" "$@" \
		127.0.0.1 "$PGEM_PORT" "gemini://localhost:$GEM_PORT/" | head -c 2
}

test_reliability_proxy_flood_gets_44() {
	rel_proxy_start 'rate_limit = { rate = 1.0; burst = 3; max_per_address = 0; allow = [ "127.0.0.0/8" ]; };'
	local i got=()
	for i in $(seq 1 7); do got+=("$(rel_pgem 192.0.2.1)"); done
	echo "flood from 192.0.2.1: ${got[*]}"
	expect_eq "burst served" "20 20 20" "${got[*]:0:3}"
	expect_contains "then 44" "${got[*]:3}" "44"
	expect_eq "192.0.2.2 served" 20 "$(rel_pgem 192.0.2.2)"
	# the proxy's own address (loopback, allowed) is not what is limited
	expect_eq "direct loopback served" 20 "$(rel_status "$(rel_home)")"
	grep -q ' gemini 192\.0\.2\.1 localhost .* 44 ' "$T/k.log" || fail "PROXY address not logged"
	grep -q ' gemini 192\.0\.2\.2 localhost .* 20 ' "$T/k.log" || fail "192.0.2.2 not logged"
	# Gopher through its PROXY listener: a v1 header, then the selector
	local out
	out=$("$TESTBIN/gemget" --plain 127.0.0.1 "$PGOPH_PORT" \
		"PROXY TCP4 192.0.2.9 127.0.0.1 40000 $PGOPH_PORT\\r\\n")
	expect_contains "Gopher through PROXY" "$out" "Keep it Local"
	grep -q ' gopher 192\.0\.2\.9 - ' "$T/k.log" || fail "Gopher PROXY address not logged"
}

test_reliability_proxy_header_required_and_not_trusted() {
	rel_proxy_start
	local rc=0 out
	# a PROXY listener refuses a connection without a valid header
	"$TESTBIN/gemget" --timeout 5 127.0.0.1 "$PGEM_PORT" "$(rel_home)" >/dev/null 2>&1 || rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 4 ] || fail "PROXY listener without a header: gemget $rc"
	out=$("$TESTBIN/gemget" --plain --timeout 5 127.0.0.1 "$PGOPH_PORT" "/") || true
	expect_eq "Gopher PROXY listener without a header" "" "$out"
	grep -q "no valid PROXY protocol header" "$T/k.log" || fail "refusal not logged"
	# a listener without proxy never trusts one: over Gopher it is a bad selector
	out=$("$TESTBIN/gemget" --plain 127.0.0.1 "$GOPH_PORT" \
		"PROXY TCP4 192.0.2.7 127.0.0.1 40000 70\\r\\n")
	expect_eq "header on a plain Gopher listener" 3 "${out:0:1}"
	grep -q ' gopher 192\.0\.2\.7 ' "$T/k.log" && fail "a header on a plain listener was trusted"
	# and on the Gemini port it is not TLS: the connection is refused
	rc=0
	"$TESTBIN/gemget" --first "PROXY TCP4 192.0.2.7 127.0.0.1 40000 1965\\r\\n" --timeout 5 \
		127.0.0.1 "$GEM_PORT" "$(rel_home)" >/dev/null 2>&1 || rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 4 ] || fail "header on a plain Gemini listener: gemget $rc"
	expect_eq "served afterwards" 20 "$(rel_status "$(rel_home)")"
	expect_eq "served through PROXY afterwards" 20 "$(rel_pgem 192.0.2.3)"
	assert_alive
}
