/*
 * floor.c: the bench's floor server, the least a Gemini (or, with --plain, a
 * Gopher) server can do per request: one edge-triggered epoll loop that accepts,
 * does the TLS 1.3 handshake (x25519, the given ECDSA certificate, one stateless
 * session ticket), reads the request line, writes one fixed response (a file's
 * bytes) once, sends close_notify and closes. No deadlines, no logging, no
 * parsing: what it costs is what OpenSSL and the kernel cost. bench/run.sh
 * compares kilnet's CPU time per request against it.
 *
 * --bufferevent does the same on libevent with bufferevent_openssl instead of
 * the epoll loop and the SSL_* calls: the other I/O model issue 7 asked to
 * measure against kilnet's own event callbacks, on the same TLS context.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_LINE     1026       /* Gemini: 1024 bytes + CRLF */
#define EPOLL_BATCH  256

enum state { S_HANDSHAKE, S_READ, S_WRITE };

struct conn {
	int            fd;
	SSL           *ssl;
	int            state;
	size_t         len;         /* request bytes read */
	size_t         woff;        /* response bytes written (plain) */
	char           line[MAX_LINE];
};

static SSL_CTX       *ctx;
static int            plain;
static int            ep;
static int            lfd;
static char          *resp;
static size_t         resplen;
static volatile sig_atomic_t stop;

static void
die(const char *msg)
{
	fprintf(stderr, "floor: %s\n", msg);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

/* A request line is complete at LF; a longer one is answered all the same. */
static int
line_done(const struct conn *c)
{
	return c->len == MAX_LINE || memchr(c->line, '\n', c->len) != NULL;
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
				c->state = S_READ;
				continue;
			}
			break;
		case S_READ:
			r = SSL_read(c->ssl, c->line + c->len, (int)(MAX_LINE - c->len));
			if (r > 0) {
				c->len += (size_t)r;
				if (line_done(c))
					c->state = S_WRITE;
				continue;
			}
			break;
		default:
			r = SSL_write(c->ssl, resp, (int)resplen);
			if (r > 0) {
				SSL_shutdown(c->ssl);   /* close_notify, not waiting for one */
				conn_close(c);
				return;
			}
			break;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		ERR_clear_error();
		conn_close(c);
		return;
	}
}

static void
drive_plain(struct conn *c)
{
	ssize_t r;

	while (c->state != S_WRITE) {
		r = recv(c->fd, c->line + c->len, MAX_LINE - c->len, 0);
		if (r > 0) {
			c->len += (size_t)r;
			if (line_done(c))
				c->state = S_WRITE;
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
	for (;;) {
		r = send(c->fd, resp + c->woff, resplen - c->woff, MSG_NOSIGNAL);
		if (r > 0) {
			c->woff += (size_t)r;
			if (c->woff == resplen) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
}

static void
accept_all(void)
{
	struct epoll_event ev;
	struct conn *c;
	int fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;     /* EAGAIN, or out of descriptors: try later */
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (!plain) {
			if ((c->ssl = SSL_new(ctx)) == NULL) {
				conn_close(c);
				continue;
			}
			SSL_set_fd(c->ssl, fd);
			SSL_set_accept_state(c->ssl);
		}
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			conn_close(c);
	}
}

static void
load_response(const char *path)
{
	struct stat sb;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &sb) == -1)
		die("cannot open the response file");
	resplen = (size_t)sb.st_size;
	if ((resp = malloc(resplen + 1)) == NULL ||
	    fread(resp, 1, resplen, f) != resplen)
		die("cannot read the response file");
	fclose(f);
	if (resplen == 0)
		die("the response file is empty");
}

static void
setup_tls(const char *cert, const char *key)
{
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1)
		die("cannot set the groups");
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		die("cannot load the certificate");
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		die("cannot load the key");
	/* Stateless tickets, one per handshake; no server-side cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
}

static void
setup_listener(const char *addr, long port)
{
	struct sockaddr_in sin;
	int one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		die("--addr: expected a numeric IPv4 address");
	if ((ntohl(sin.sin_addr.s_addr) >> 24) != 127)
		die("--addr: a bench server listens on loopback only");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1)
		die("socket failed");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("cannot bind");
	if (listen(lfd, 4096) == -1)
		die("listen failed");
}

/* ---------------------------------------------------- --bufferevent */

/* The handshake's end comes as BEV_EVENT_CONNECTED; anything else ends it. */
static void
bev_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	bufferevent_free(bev);
}

/* The response has left: close_notify straight on the socket, then close. */
static void
bev_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	SSL_shutdown(bufferevent_openssl_get_ssl(bev));
	bufferevent_free(bev);
}

static void
bev_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;

	(void)arg;
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos == -1 && evbuffer_get_length(in) < MAX_LINE)
		return;
	bufferevent_disable(bev, EV_READ);
	/* by reference: the response bytes exist already, as in kilnet */
	evbuffer_add_reference(bufferevent_get_output(bev), resp, resplen, NULL, NULL);
	bufferevent_setcb(bev, NULL, bev_written, bev_event, NULL);
}

static void
bev_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct event_base *base = arg;
	struct bufferevent *bev;
	SSL *ssl;

	(void)l;
	(void)sa;
	(void)salen;
	if ((ssl = SSL_new(ctx)) == NULL) {
		close(fd);
		return;
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	bufferevent_setcb(bev, bev_read, NULL, bev_event, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void
bev_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static int
run_bufferevent(void)
{
	struct event_base *base;
	struct evconnlistener *l;
	struct event *sint, *sterm;

	if ((base = event_base_new()) == NULL)
		die("event_base_new failed");
	/* lfd listens already: a backlog of 0 tells libevent not to listen again */
	l = evconnlistener_new(base, bev_accept, base, LEV_OPT_CLOSE_ON_FREE, 0, lfd);
	sint = evsignal_new(base, SIGINT, bev_stop, base);
	sterm = evsignal_new(base, SIGTERM, bev_stop, base);
	if (l == NULL || sint == NULL || sterm == NULL ||
	    evsignal_add(sint, NULL) == -1 || evsignal_add(sterm, NULL) == -1)
		die("cannot set up the libevent loop");
	event_base_dispatch(base);
	return 0;
}

static const char usage_text[] =
"usage: floor --port N --response FILE [--addr 127.0.0.1]\n"
"             (--cert CRT --key KEY [--bufferevent] | --plain)\n"
"Serves FILE's bytes once per connection, after the request line, then closes.\n"
"--bufferevent drives TLS with libevent's bufferevent_openssl instead of epoll\n"
"and SSL_* calls.\n";

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port",     required_argument, NULL, 'p' },
		{ "addr",     required_argument, NULL, 'a' },
		{ "response", required_argument, NULL, 'r' },
		{ "cert",     required_argument, NULL, 'C' },
		{ "key",      required_argument, NULL, 'K' },
		{ "plain",    no_argument,       NULL, 'P' },
		{ "bufferevent", no_argument,    NULL, 'B' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *addr = "127.0.0.1", *response = NULL, *cert = NULL, *key = NULL;
	struct epoll_event evs[EPOLL_BATCH], ev;
	struct rlimit rl;
	long port = 0;
	int c, bev = 0;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'a': addr = optarg; break;
		case 'r': response = optarg; break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'P': plain = 1; break;
		case 'B': bev = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind < argc || port <= 0 || port > 65535 || response == NULL ||
	    (!plain && (cert == NULL || key == NULL)) || (plain && bev)) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	load_response(response);
	if (!plain)
		setup_tls(cert, key);
	setup_listener(addr, port);
	if (bev)
		return run_bufferevent();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1 failed");
	ev.events = EPOLLIN;    /* level-triggered: accept_all may stop early */
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		die("epoll_ctl failed");

	while (!stop) {
		int n = epoll_wait(ep, evs, EPOLL_BATCH, -1);
		for (int i = 0; i < n; i++) {
			struct conn *cn = evs[i].data.ptr;
			if (cn == NULL)
				accept_all();
			else if (plain)
				drive_plain(cn);
			else
				drive_tls(cn);
		}
	}
	return 0;
}
