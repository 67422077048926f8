/*
 * loadgen.c: the bench's load generator (bench/run.sh drives it). One process,
 * one edge-triggered epoll loop, many non-blocking connections to a server on
 * loopback: Gemini over TLS 1.3 (a new handshake per request, or --resume with a
 * session ticket from an earlier connection), or Gopher, Spartan or Nex over
 * plain TCP (one request a connection; they differ only in the request line). With
 * --idle N it first opens N connections and holds them silent (TLS: after the
 * handshake), measures normal requests while they are held, and counts how many
 * the server closes. Bounded by a request count and by time. Prints one
 * key=value line: requests, errors, resumed, elapsed, req/s, p50, p99, ...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_REQUEST     2048    /* a request line: Gemini's limit is 1024 + CRLF */
#define HEAD_KEEP       32      /* response bytes kept to check --expect */
#define SESSION_POOL    256     /* resumable sessions kept for --resume */
#define SCAN_NS         (250 * 1000000ULL)  /* how often deadlines are checked */
#define EPOLL_BATCH     512

enum state { S_HANDSHAKE, S_WRITE, S_READ, S_HELD };
enum phase { PH_IDLE_SETUP, PH_SETTLE, PH_GO, PH_LOAD, PH_HOLD, PH_DONE };

/* --ready-file: the longest wait for the caller to remove it. */
#define GO_WAIT_NS      (10ULL * 1000000000ULL)

struct conn {
	int            fd;          /* -1: slot free */
	SSL           *ssl;
	unsigned char  idle;        /* 1: one of the --idle connections */
	unsigned char  state;
	unsigned char  headlen;
	size_t         woff;        /* request bytes written (plain) */
	size_t         got;         /* response bytes read */
	uint64_t       t0;          /* when the connection was started (ns) */
	char           head[HEAD_KEEP];
	struct conn   *next_free;
};

/* The protocols: Gemini over TLS, the others over plain TCP. */
enum mode { M_NONE, M_GEMINI, M_GOPHER, M_SPARTAN, M_NEX };
static const char *const mode_names[] = { "", "gemini", "gopher", "spartan", "nex" };

static struct {
	enum mode      mode;
	int            tls;
	int            resume;
	int            single_use;  /* --resume never offers a ticket twice */
	struct sockaddr_storage addr;
	socklen_t      addrlen;
	const char    *sni;
	char           req[MAX_REQUEST + 3];
	size_t         reqlen;
	long           conc, total, idle_n, idle_setup;
	double         max_seconds, timeout, hold, settle;
	const char    *expect;
	size_t         min_bytes;
	const char    *ready_file;
	const char    *save;        /* write the first response here (-n 1) */
} opt;

static struct {
	long      started, done_ok, errors, resumed, inflight;
	long      idle_started, idle_inflight, idle_open, idle_held, idle_failed;
	long      idle_closed, idle_data;
	long      ticket_fresh, ticket_reused;  /* --resume: tickets offered */
	double    idle_close_max;       /* seconds from established to closed, max */
	uint32_t *lat_us;               /* one per successful request */
	uint64_t  t_load, t_last_done, t_held;
	int       err_kinds[4];         /* connect, handshake/io, short/mismatch, timeout */
} st;

static SSL_CTX      *ctx;
static int           ep;
static struct conn  *slots;
static long          nslots;
static struct conn  *free_list;
static SSL_SESSION  *pool[SESSION_POOL];
static int           npool;
static SSL_SESSION  *last_session;
static unsigned char scratch[65536];
static unsigned char *saved;
static size_t        nsaved;
static volatile sig_atomic_t stop;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
die(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(2);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* TLS 1.3 tickets arrive after the handshake; keep the newest for --resume. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION *copy;

	(void)ssl;
	/* its own copy: the object in the pool is changed when it is resumed */
	if ((copy = SSL_SESSION_dup(sess)) != NULL) {
		if (last_session != NULL)
			SSL_SESSION_free(last_session);
		last_session = copy;
	}
	if (npool == SESSION_POOL) {
		SSL_SESSION_free(pool[0]);
		memmove(pool, pool + 1, (SESSION_POOL - 1) * sizeof(pool[0]));
		npool--;
	}
	pool[npool++] = sess;   /* the reference the callback hands over */
	return 1;
}

/*
 * A ticket is used once when the pool has one (RFC 8446 C.4: clients should
 * not reuse a ticket); when it is empty (the server sent none after the last
 * resumptions) the newest one is reused, from a copy: OpenSSL's client changes
 * the session it resumes, and a second use of the same object fails.
 */
static void
pick_session(SSL *ssl)
{
	SSL_SESSION *s;

	if (npool > 0) {
		s = pool[--npool];
		st.ticket_fresh++;
	} else if (!opt.single_use && last_session != NULL &&
	    (s = SSL_SESSION_dup(last_session)) != NULL)
		st.ticket_reused++;
	else
		return;
	SSL_set_session(ssl, s);
	SSL_SESSION_free(s);
}

static void
setup_tls(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_set1_groups_list(ctx, "X25519") != 1)
		die("X25519 unavailable");
	/* The bench measures servers: no chain verification, no cache lookups. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (opt.resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	} else
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	return 0;
}

/* Numeric addresses only (and "localhost"): this tool never resolves names. */
static void
set_addr(const char *host, long port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&opt.addr;
	char h[64];
	size_t n;

	memset(&opt.addr, 0, sizeof(opt.addr));
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	n = strlen(host);
	if (n >= sizeof(h))
		die("--host: too long");
	memcpy(h, host, n + 1);
	if (h[0] == '[' && n > 2 && h[n - 1] == ']') {
		h[n - 1] = '\0';
		memmove(h, h + 1, n - 1);
	}
	if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*s6);
	} else
		die("--host: expected a numeric address (127.0.0.1, ::1) or localhost");
	if (!is_loopback(&opt.addr))
		die("--host: refusing a non-loopback address (127.0.0.0/8 and ::1 only)");
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
release(struct conn *c, int clean)
{
	if (c->ssl != NULL) {
		/*
		 * A session whose connection was not shut down is marked not
		 * resumable by SSL_free; the server's EOF was a clean end here, so
		 * say so without sending anything.
		 */
		if (clean)
			SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->next_free = free_list;
	free_list = c;
}

static void
fail(struct conn *c, int kind)
{
	ERR_clear_error();
	if (c->idle) {
		st.idle_inflight--;
		st.idle_failed++;
	} else {
		st.inflight--;
		st.errors++;
		st.err_kinds[kind]++;
	}
	release(c, 0);
}

static void
finish(struct conn *c)
{
	uint64_t t = now_ns();
	int ok = c->got >= opt.min_bytes && c->got > 0;

	if (ok && opt.expect != NULL) {
		size_t n = strlen(opt.expect);
		if (n > c->headlen)
			n = c->headlen;
		ok = strncmp(c->head, opt.expect, n) == 0 && c->headlen > 0;
	}
	if (!ok) {
		fail(c, 2);
		return;
	}
	if (c->ssl != NULL && SSL_session_reused(c->ssl))
		st.resumed++;
	if (opt.save != NULL) {
		FILE *f = fopen(opt.save, "wb");
		if (f == NULL || fwrite(saved, 1, nsaved, f) != nsaved || fclose(f) != 0)
			die("--save: cannot write the file");
	}
	st.lat_us[st.done_ok++] = (uint32_t)((t - c->t0) / 1000);
	st.t_last_done = t;
	st.inflight--;
	release(c, 1);
}

/* An idle connection the server closed (or reset). */
static void
idle_closed(struct conn *c)
{
	double held = (double)(now_ns() - c->t0) / 1e9;

	ERR_clear_error();
	st.idle_closed++;
	st.idle_open--;
	if (held > st.idle_close_max)
		st.idle_close_max = held;
	release(c, 0);
}

/* Bytes from the server: a held connection should get none (they are counted);
 * a normal one keeps the head of its response. */
static void
received(struct conn *c, const unsigned char *p, size_t n)
{
	if (c->state == S_HELD) {
		st.idle_data++;
		return;
	}
	if (c->headlen < HEAD_KEEP) {
		size_t k = HEAD_KEEP - c->headlen;
		if (k > n)
			k = n;
		memcpy(c->head + c->headlen, p, k);
		c->headlen += (unsigned char)k;
	}
	c->got += n;
	if (opt.save != NULL) {
		if ((saved = realloc(saved, nsaved + n)) == NULL)
			die("out of memory");
		memcpy(saved + nsaved, p, n);
		nsaved += n;
	}
}

static void
held(struct conn *c)
{
	st.idle_inflight--;
	st.idle_open++;
	st.idle_held++;
	c->state = S_HELD;
	c->t0 = now_ns();   /* from here on: when the silence began */
}

static void
drive_tls(struct conn *c)
{
	int r, e;

	for (;;) {
		switch (c->state) {
		case S_HANDSHAKE:
			r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				if (c->idle)
					held(c);
				else
					c->state = S_WRITE;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			fail(c, e == SSL_ERROR_SYSCALL && errno == ECONNREFUSED ? 0 : 1);
			return;
		case S_WRITE:
			r = SSL_write(c->ssl, opt.req, (int)opt.reqlen);
			if (r > 0) {
				c->state = S_READ;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			fail(c, 1);
			return;
		case S_READ:
		case S_HELD:
			r = SSL_read(c->ssl, scratch, sizeof(scratch));
			if (r > 0) {
				received(c, scratch, (size_t)r);
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			if (c->state == S_HELD) {
				idle_closed(c);
				return;
			}
			/* close_notify, a bare EOF, or a reset after the response */
			if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL &&
			    c->got > 0)) {
				ERR_clear_error();
				finish(c);
			} else
				fail(c, 1);
			return;
		}
	}
}

static void
drive_plain(struct conn *c)
{
	ssize_t r;

	for (;;) {
		switch (c->state) {
		case S_HANDSHAKE:   /* plain: the connect finished (or failed) */
			if (c->idle) {
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err != 0) {
					fail(c, 0);
					return;
				}
				held(c);
			} else
				c->state = S_WRITE;
			continue;
		case S_WRITE:
			r = send(c->fd, opt.req + c->woff, opt.reqlen - c->woff,
			    MSG_NOSIGNAL);
			if (r >= 0) {
				c->woff += (size_t)r;
				if (c->woff == opt.reqlen)
					c->state = S_READ;
				continue;
			}
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail(c, errno == ECONNREFUSED ? 0 : 1);
			return;
		case S_READ:
		case S_HELD:
			r = recv(c->fd, scratch, sizeof(scratch), 0);
			if (r > 0) {
				received(c, scratch, (size_t)r);
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (c->state == S_HELD)
				idle_closed(c);
			else if (r == 0 || c->got > 0)
				finish(c);
			else
				fail(c, errno == ECONNREFUSED ? 0 : 1);
			return;
		}
	}
}

static void
drive(struct conn *c)
{
	if (opt.tls)
		drive_tls(c);
	else
		drive_plain(c);
}

static void
start_conn(int idle)
{
	struct conn *c = free_list;
	struct epoll_event ev;
	int fd, one = 1;

	if (c == NULL)
		die("out of connection slots");
	if (idle) {
		st.idle_started++;
		st.idle_inflight++;
	} else {
		st.started++;
		st.inflight++;
	}
	free_list = c->next_free;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->idle = (unsigned char)idle;
	c->state = S_HANDSHAKE;
	c->t0 = now_ns();
	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		c->fd = open("/dev/null", O_RDONLY);   /* so that release() can close */
		fail(c, 0);
		return;
	}
	c->fd = fd;
	/*
	 * The TLS Finished and the request leave in two writes: with Nagle, the
	 * second waits for a delayed ACK (40 ms) from servers that send nothing
	 * after a resumed handshake.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) == -1 &&
	    errno != EINPROGRESS) {
		fail(c, 0);
		return;
	}
	if (opt.tls) {
		if ((c->ssl = SSL_new(ctx)) == NULL) {
			fail(c, 1);
			return;
		}
		SSL_set_fd(c->ssl, fd);
		SSL_set_connect_state(c->ssl);
		if (opt.sni != NULL && *opt.sni != '\0')
			SSL_set_tlsext_host_name(c->ssl, opt.sni);
		if (opt.resume)
			pick_session(c->ssl);
	}
	/* Edge-triggered: ADD reports what is already ready, so nothing is lost. */
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		fail(c, 0);
}

static void
scan_deadlines(uint64_t now)
{
	uint64_t limit = (uint64_t)(opt.timeout * 1e9);

	for (long i = 0; i < nslots; i++) {
		struct conn *c = &slots[i];
		if (c->fd == -1 || c->state == S_HELD)
			continue;
		if (now - c->t0 > limit)
			fail(c, 3);
	}
}

/* Kills every connection still open: the run is over. */
static long
abandon_all(void)
{
	long n = 0;

	for (long i = 0; i < nslots; i++) {
		struct conn *c = &slots[i];
		if (c->fd == -1)
			continue;
		if (c->state != S_HELD && !c->idle)
			n++;
		release(c, 0);
	}
	return n;
}

static void
write_ready(void)
{
	char tmp[4096];
	FILE *f;

	if (opt.ready_file == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.ready_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "held=%ld failed=%ld\n", st.idle_held, st.idle_failed);
	fclose(f);
	rename(tmp, opt.ready_file);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const uint32_t *v, long n, double p)
{
	long i;

	if (n == 0)
		return 0;
	i = (long)(p * (double)n + 0.999999) - 1;   /* nearest rank */
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i] / 1000.0;
}

static const char usage_text[] =
"usage: loadgen (--gemini | --gopher | --spartan | --nex) --port N [--host ADDR]\n"
"               [--sni NAME] [--request LINE] [-c CONCURRENCY] [-n REQUESTS]\n"
"               [--seconds S] [--timeout S] [--resume [--single-use]]\n"
"               [--expect PREFIX] [--min-bytes N]\n"
"               [--idle N [--hold S] [--settle S] [--idle-setup N]\n"
"                [--ready-file F]]\n"
"               [--save FILE]\n"
"Sends requests to a server on loopback and prints one line:\n"
"  mode= conc= requests= errors= resumed= elapsed= rps= p50_ms= p99_ms= ...\n"
"--request is sent with CRLF appended (Nex: LF). Defaults: gemini://SNI/, the\n"
"empty selector (Gopher), \"SNI / 0\" (Spartan: the home page, no data), / (Nex).\n"
"--idle N opens N connections first (TLS: handshake done) and holds them silent\n"
"for --hold seconds (default 15) after all are open, counting those the server\n"
"closes, while the normal requests run. --settle seconds (default 1) after all\n"
"are open, --ready-file is written; the normal requests start once the caller\n"
"removes it (at most 10 s later), or at once without --ready-file.\n"
"--resume offers each new ticket once, then reuses the newest when none is left;\n"
"with --single-use it never reuses one (RFC 8446 C.4) and does a full handshake.\n"
"--save FILE makes one request and writes the whole response to FILE.\n";

enum { O_GEMINI = 256, O_GOPHER, O_SPARTAN, O_NEX, O_HOST, O_PORT, O_SNI, O_REQUEST, O_SECONDS,
	O_TIMEOUT, O_RESUME, O_EXPECT, O_MINBYTES, O_IDLE, O_HOLD, O_IDLESETUP,
	O_READY, O_SAVE, O_SETTLE, O_SINGLE };

static const struct option long_options[] = {
	{ "gemini",      no_argument,       NULL, O_GEMINI },
	{ "gopher",      no_argument,       NULL, O_GOPHER },
	{ "spartan",     no_argument,       NULL, O_SPARTAN },
	{ "nex",         no_argument,       NULL, O_NEX },
	{ "host",        required_argument, NULL, O_HOST },
	{ "port",        required_argument, NULL, O_PORT },
	{ "sni",         required_argument, NULL, O_SNI },
	{ "request",     required_argument, NULL, O_REQUEST },
	{ "concurrency", required_argument, NULL, 'c' },
	{ "requests",    required_argument, NULL, 'n' },
	{ "seconds",     required_argument, NULL, O_SECONDS },
	{ "timeout",     required_argument, NULL, O_TIMEOUT },
	{ "resume",      no_argument,       NULL, O_RESUME },
	{ "single-use",  no_argument,       NULL, O_SINGLE },
	{ "expect",      required_argument, NULL, O_EXPECT },
	{ "min-bytes",   required_argument, NULL, O_MINBYTES },
	{ "idle",        required_argument, NULL, O_IDLE },
	{ "hold",        required_argument, NULL, O_HOLD },
	{ "settle",      required_argument, NULL, O_SETTLE },
	{ "idle-setup",  required_argument, NULL, O_IDLESETUP },
	{ "ready-file",  required_argument, NULL, O_READY },
	{ "save",        required_argument, NULL, O_SAVE },
	{ "help",        no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static long
num(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s %s: expected a number from %ld to %ld\n",
		    what, s, lo, hi);
		exit(2);
	}
	return v;
}

static double
secs(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || end == s || !(v > 0) || v > 86400) {
		fprintf(stderr, "loadgen: %s %s: expected seconds\n", what, s);
		exit(2);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	const char *host = "127.0.0.1", *request = NULL;
	long port = 0;
	enum mode mode = M_NONE;
	int c;

	opt.sni = "localhost";
	opt.conc = 1;
	opt.total = 1000;
	opt.max_seconds = 30;
	opt.timeout = 10;
	opt.hold = 15;
	opt.settle = 1;
	opt.idle_setup = 64;
	while ((c = getopt_long(argc, argv, "c:n:h", long_options, NULL)) != -1) {
		switch (c) {
		case O_GEMINI: mode = M_GEMINI; break;
		case O_GOPHER: mode = M_GOPHER; break;
		case O_SPARTAN: mode = M_SPARTAN; break;
		case O_NEX: mode = M_NEX; break;
		case O_HOST: host = optarg; break;
		case O_PORT: port = num(optarg, "--port", 1, 65535); break;
		case O_SNI: opt.sni = optarg; break;
		case O_REQUEST: request = optarg; break;
		case 'c': opt.conc = num(optarg, "-c", 1, 100000); break;
		case 'n': opt.total = num(optarg, "-n", 0, 100000000); break;
		case O_SECONDS: opt.max_seconds = secs(optarg, "--seconds"); break;
		case O_TIMEOUT: opt.timeout = secs(optarg, "--timeout"); break;
		case O_RESUME: opt.resume = 1; break;
		case O_SINGLE: opt.resume = opt.single_use = 1; break;
		case O_EXPECT: opt.expect = optarg; break;
		case O_MINBYTES: opt.min_bytes = (size_t)num(optarg, "--min-bytes", 0, 1L << 30); break;
		case O_IDLE: opt.idle_n = num(optarg, "--idle", 0, 1000000); break;
		case O_HOLD: opt.hold = secs(optarg, "--hold"); break;
		case O_SETTLE: opt.settle = secs(optarg, "--settle"); break;
		case O_IDLESETUP: opt.idle_setup = num(optarg, "--idle-setup", 1, 100000); break;
		case O_READY: opt.ready_file = optarg; break;
		case O_SAVE: opt.save = optarg; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: fputs(usage_text, stderr); exit(2);
		}
	}
	if (optind < argc || mode == M_NONE || port == 0) {
		fputs(usage_text, stderr);
		exit(2);
	}
	opt.mode = mode;
	opt.tls = mode == M_GEMINI;
	if (opt.save != NULL) {
		opt.conc = opt.total = 1;
		opt.idle_n = 0;
	}
	if (opt.resume && !opt.tls)
		die("--resume is for --gemini");
	set_addr(host, port);
	if (request == NULL) {
		switch (mode) {
		case M_GEMINI:
			opt.reqlen = (size_t)snprintf(opt.req, sizeof(opt.req),
			    "gemini://%s/\r\n", opt.sni);
			break;
		case M_SPARTAN:   /* HOST SP PATH SP CONTENT-LENGTH CRLF */
			opt.reqlen = (size_t)snprintf(opt.req, sizeof(opt.req),
			    "%s / 0\r\n", opt.sni);
			break;
		default:
			request = mode == M_NEX ? "/" : "";
			break;
		}
	}
	if (request != NULL) {
		if (strlen(request) > MAX_REQUEST)
			die("--request: too long");
		/* Nex: a path and a newline; the others end their line with CRLF. */
		opt.reqlen = (size_t)snprintf(opt.req, sizeof(opt.req), "%s%s", request,
		    mode == M_NEX ? "\n" : "\r\n");
	}
	if (opt.reqlen >= sizeof(opt.req))
		die("--request: too long");
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[EPOLL_BATCH];
	enum phase ph;
	uint64_t t_ready = 0;
	uint64_t t, load_deadline = 0, hold_deadline = 0, last_scan, t_start;
	long abandoned = 0;

	parse_args(argc, argv);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (opt.tls)
		setup_tls();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1 failed");
	nslots = opt.conc + opt.idle_n;
	slots = calloc((size_t)nslots, sizeof(*slots));
	st.lat_us = malloc(((size_t)opt.total + 1) * sizeof(*st.lat_us));
	if (slots == NULL || st.lat_us == NULL)
		die("out of memory");
	for (long i = nslots - 1; i >= 0; i--) {
		slots[i].fd = -1;
		slots[i].next_free = free_list;
		free_list = &slots[i];
	}

	t_start = last_scan = now_ns();
	ph = opt.idle_n > 0 ? PH_IDLE_SETUP : PH_LOAD;
	if (ph == PH_LOAD) {
		st.t_load = t_start;
		load_deadline = t_start + (uint64_t)(opt.max_seconds * 1e9);
	}
	while (ph != PH_DONE && !stop) {
		t = now_ns();
		if (ph == PH_IDLE_SETUP) {
			while (st.idle_inflight < opt.idle_setup &&
			    st.idle_started < opt.idle_n)
				start_conn(1);
			/* the setup of the idle set is bounded by time too */
			if ((st.idle_started == opt.idle_n && st.idle_inflight == 0) ||
			    t - t_start > (uint64_t)(opt.max_seconds * 1e9)) {
				st.t_held = t;
				hold_deadline = t + (uint64_t)(opt.hold * 1e9);
				ph = PH_SETTLE;
			}
		}
		/*
		 * A connect completes in the kernel before the server accepts it:
		 * give the server time to take the whole set from its accept queue
		 * (and read the last Finished messages) before measuring.
		 */
		if (ph == PH_SETTLE && t - st.t_held >= (uint64_t)(opt.settle * 1e9)) {
			write_ready();
			t_ready = t;
			ph = PH_GO;
		}
		/*
		 * The caller samples the server (RSS) between the ready file and
		 * its removal: a sampler running beside the measured requests
		 * would show in their p99 as if the held set had cost it.
		 */
		if (ph == PH_GO && (opt.ready_file == NULL ||
		    access(opt.ready_file, F_OK) == -1 || t - t_ready > GO_WAIT_NS)) {
			st.t_load = t;
			load_deadline = t + (uint64_t)(opt.max_seconds * 1e9);
			ph = PH_LOAD;
		}
		if (ph == PH_LOAD) {
			while (st.inflight < opt.conc && st.started < opt.total &&
			    t < load_deadline)
				start_conn(0);
			if (st.inflight == 0 && (st.started >= opt.total || t >= load_deadline))
				ph = opt.idle_n > 0 ? PH_HOLD : PH_DONE;
			else if (t >= load_deadline + (uint64_t)(opt.timeout * 1e9))
				ph = opt.idle_n > 0 ? PH_HOLD : PH_DONE;
		}
		if (ph == PH_HOLD && (st.idle_open == 0 || t >= hold_deadline))
			ph = PH_DONE;
		if (ph == PH_DONE)
			break;

		int n = epoll_wait(ep, evs, EPOLL_BATCH, 20);
		for (int i = 0; i < n; i++)
			drive(evs[i].data.ptr);
		t = now_ns();
		if (t - last_scan > SCAN_NS) {
			scan_deadlines(t);
			last_scan = t;
		}
	}
	abandoned = st.inflight;
	abandon_all();

	double elapsed = (double)((st.t_last_done ? st.t_last_done : now_ns()) -
	    st.t_load) / 1e9;
	qsort(st.lat_us, (size_t)st.done_ok, sizeof(*st.lat_us), cmp_u32);
	printf("mode=%s%s conc=%ld requests=%ld errors=%ld resumed=%ld "
	    "elapsed=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f unfinished=%ld "
	    "err_connect=%d err_tls_io=%d err_response=%d err_timeout=%d",
	    mode_names[opt.mode], opt.resume ? "-resume" : "", opt.conc,
	    st.done_ok, st.errors, st.resumed, elapsed,
	    elapsed > 0 ? (double)st.done_ok / elapsed : 0.0,
	    pct_ms(st.lat_us, st.done_ok, 0.50), pct_ms(st.lat_us, st.done_ok, 0.99),
	    abandoned, st.err_kinds[0], st.err_kinds[1], st.err_kinds[2],
	    st.err_kinds[3]);
	if (opt.resume)
		printf(" tickets_fresh=%ld tickets_reused=%ld", st.ticket_fresh,
		    st.ticket_reused);
	if (opt.idle_n > 0)
		printf(" held=%ld closed_by_server=%ld idle_failed=%ld "
		    "idle_close_max_s=%.2f hold_s=%.1f",
		    st.idle_held, st.idle_closed, st.idle_failed, st.idle_close_max,
		    opt.hold);
	printf("\n");
	return stop ? 130 : 0;
}
