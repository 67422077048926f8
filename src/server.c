/*
 * server.c: the network side. The master binds the listeners (one set of
 * SO_REUSEPORT sockets per worker slot, kept for its whole life), forks the
 * workers (each with its own libevent loop and its slot's sockets), and on
 * SIGHUP swaps in a new generation of workers serving the reloaded site. Each
 * worker carries every connection through its steps, each with a deadline:
 *
 *   accept -> [PROXY header] -> [peek: Gopher port, TLS or plain?] -> handshake
 *          -> read request -> rate limit -> gemini_respond / gopher_respond
 *          -> write -> close_notify -> close
 *
 * SSL_* is driven from our own event callbacks on the non-blocking socket (no
 * bufferevent): one struct event per connection, carrying both the readiness
 * wait and the current deadline, and a request buffer inside the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kilnet.h"

/* How long the shutdown waits for responses in flight. */
#define DRAIN_MS          2000
/* After close_notify, how long unread client bytes are drained so that close()
 * does not turn into a reset that could destroy the response in flight. */
#define LINGER_MS         1000
/* Connections accepted per wakeup of a listener: bounded so that one busy port
 * does not starve the connections already open. */
#define ACCEPT_BATCH      64
/* After EMFILE/ENFILE, accepting pauses this long instead of spinning. */
#define ACCEPT_BACKOFF_MS 100
/* A worker that dies sooner than this after its start is not restarted: it
 * would die again. */
#define RESPAWN_MIN_MS    1000
/* The master kills workers that have not stopped this long after SIGTERM. */
#define STOP_GRACE_MS     (DRAIN_MS + 3000)
/* A retired worker (after a reload) finishes its connections, each bounded by
 * its own deadlines; past those and this margin the master kills it. */
#define RETIRE_GRACE_MS   3000
/* The master's longest sleep between checks of its deadlines. */
#define MASTER_TICK_MS    250

enum proto { P_GEMINI, P_GOPHER, P_GOPHERS };
static const char *const proto_names[] = { "gemini", "gopher", "gophers" };

enum state { ST_PROXY, ST_PEEK, ST_HANDSHAKE, ST_READ, ST_WRITE, ST_SHUTDOWN,
    ST_LINGER };
static const char *const state_names[] = {
	"PROXY header", "first byte", "handshake", "request", "write",
	"close_notify", "linger"
};

struct worker;

struct listener {
	struct event      ev;
	struct worker    *w;
	int               fd;
	int               gopher;       /* 0: Gemini (TLS), 1: Gopher (autodetect) */
	int               proxy;        /* a PROXY protocol header comes first */
	char              name[64];     /* "127.0.0.1:1965", for messages */
};

struct conn {
	struct event      ev;           /* readiness and deadline, re-armed per wait */
	struct worker    *w;
	struct conn      *prev, *next;  /* the worker's open connections */
	SSL              *ssl;          /* NULL: plain Gopher (or not decided yet) */
	int               fd;
	unsigned char     proto;        /* enum proto */
	unsigned char     state;        /* enum state */
	unsigned char     logged;
	unsigned char     counted;      /* in the rate limiter's connection count */
	long              start;        /* accept time, ms (monotonic) */
	long              deadline;     /* of the current state, ms */
	union {                         /* the client; from the PROXY header if any */
		struct sockaddr          sa;
		struct sockaddr_in       in;
		struct sockaddr_in6      in6;
		struct sockaddr_storage  ss;
	} addr;
	struct reply      reply;
	size_t            sent;
	size_t            len, cap;     /* request bytes read, buffer size */
	unsigned char     buf[];        /* cap bytes; Gopher: added at the first byte */
};

struct worker {
	const struct config  *cfg;
	const struct site    *site;
	struct tls           *tls;
	struct ratelimit     *rl;        /* NULL: no limits configured */
	struct event_base    *base;
	struct listener      *ls;
	size_t                n_ls;
	struct conn          *conns;
	int                   n_conns;
	int                   max_conns;
	int                   paused;    /* listeners off: cap reached or EMFILE */
	int                   stopping;  /* SIGTERM: drain for DRAIN_MS, then exit */
	int                   retiring;  /* SIGUSR2 (reload): finish all, then exit */
	struct event         *sig_term, *sig_int, *sig_retire, *resume_ev;
};

static void  conn_step(struct conn *);
static void  conn_close(struct conn *);

/* ------------------------------------------------------------ small helpers */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
ms_tv(long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

static void
format_addr(const struct sockaddr *sa, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%d", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%d", host, ntohs(s4->sin_port));
	}
}

/* The first OpenSSL error of a failed connection, for the log; the queue is
 * emptied so it does not leak into the next connection's checks. */
static const char *
ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_error();

	if (e == 0)
		snprintf(buf, size, "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* ------------------------------------------------------------ listeners */

/* Opens a listening (or, with do_listen 0, only bound) socket. reuseport: the
 * workers' sockets share the port; the master's check socket must not, so that
 * it fails on a port anyone already holds. */
static int
open_socket(const struct listen_addr *la, int reuseport, int do_listen)
{
	union {
		struct sockaddr_in   in;
		struct sockaddr_in6  in6;
	} a;
	socklen_t alen;
	int fd, one = 1, e;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, la->host, &a.in.sin_addr) == 1) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons((unsigned short)la->port);
		alen = sizeof(a.in);
	} else if (inet_pton(AF_INET6, la->host, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((unsigned short)la->port);
		alen = sizeof(a.in6);
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(a.in.sin_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
	    /* Inherited by accepted sockets: a response must not wait for the
	     * client's delayed ACK of the session ticket written before it. */
	    (do_listen &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) ||
	    (a.in.sin_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&a, alen) == -1 ||
	    (do_listen && listen(fd, SOMAXCONN) == -1)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
listen_name(const struct listen_addr *la, char *out, size_t size)
{
	if (strchr(la->host, ':') != NULL)
		snprintf(out, size, "[%s]:%d", la->host, la->port);
	else
		snprintf(out, size, "%s:%d", la->host, la->port);
}

/* What to do next when a listen address cannot be bound, by errno. */
static const char *
listen_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "; another program (or another kilnet) holds that port: "
		    "stop it, or choose another address";
	case EACCES:
		return "; ports below 1024 need root or CAP_NET_BIND_SERVICE (the "
		    "systemd unit gives it), or choose a port from 1024 up";
	case EADDRNOTAVAIL:
		return "; no interface of this machine has that address: use "
		    "0.0.0.0, [::] or one that 'ip addr' lists";
	case EAFNOSUPPORT:
		return "; IPv6 is off on this machine: remove the [::] addresses";
	default:
		return "";
	}
}

static const char *
listen_setting(int gopher, int proxy)
{
	if (proxy)
		return gopher ? "server.gopher.proxy_listen"
		    : "server.gemini.proxy_listen";
	return gopher ? "server.gopher.listen or --gopher"
	    : "server.gemini.listen or --gemini";
}

static void
listeners_enable(struct worker *w, int on)
{
	for (size_t i = 0; i < w->n_ls; i++) {
		if (w->ls[i].fd == -1)
			continue;
		if (on)
			event_add(&w->ls[i].ev, NULL);
		else
			event_del(&w->ls[i].ev);
	}
}

static void
listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->n_ls; i++) {
		if (w->ls[i].fd == -1)
			continue;
		event_del(&w->ls[i].ev);
		close(w->ls[i].fd);
		w->ls[i].fd = -1;
	}
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->paused && !w->stopping && !w->retiring && w->n_conns < w->max_conns) {
		w->paused = 0;
		listeners_enable(w, 1);
	}
}

/* ------------------------------------------------------------ connections */

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char addr[80];

	(void)fd;
	if (what & EV_TIMEOUT) {
		format_addr(&c->addr.sa, addr, sizeof(addr));
		log_info("%s %s: %s deadline passed after %ld ms, closing", addr,
		    proto_names[c->proto], state_names[c->state], now_ms() - c->start);
		/* A client too slow to take its response: reset, so the kernel drops
		 * what is queued for it now, instead of keeping an orphaned socket
		 * that trickles megabytes to the same slow reader. */
		if (c->state == ST_WRITE || c->state == ST_SHUTDOWN)
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER,
			    &(struct linger){ .l_onoff = 1, .l_linger = 0 },
			    sizeof(struct linger));
		conn_close(c);
		return;
	}
	conn_step(c);
}

/* Waits until fd is ready for `what` or the current deadline passes. */
static void
conn_wait(struct conn *c, short what)
{
	struct timeval tv = ms_tv(c->deadline - now_ms());

	event_assign(&c->ev, c->w->base, c->fd, what, conn_cb, c);
	if (event_add(&c->ev, &tv) == -1)
		conn_close(c);
}

static void
conn_log(struct conn *c)
{
	const char *sni = c->ssl ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name)
	    : NULL;

	if (c->logged)
		return;
	c->logged = 1;
	log_access(proto_names[c->proto], &c->addr.sa, sni, c->buf, c->len,
	    c->reply.status, c->sent, now_ms() - c->start);
}

static void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->state >= ST_WRITE)
		conn_log(c);
	event_del(&c->ev);
	if (c->counted)
		ratelimit_close(w->rl, &c->addr.sa);
	reply_free(&c->reply);
	SSL_free(c->ssl);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	w->n_conns--;
	if (w->stopping || w->retiring) {
		if (w->n_conns == 0)
			event_base_loopbreak(w->base);
	} else if (w->paused && w->n_conns < w->max_conns && w->resume_ev != NULL &&
	    !event_pending(w->resume_ev, EV_TIMEOUT, NULL)) {
		w->paused = 0;
		listeners_enable(w, 1);
	}
}

/* Gives a Gopher connection its request buffer once the client has sent
 * something: a silent connection costs only the small header. */
static struct conn *
conn_grow(struct conn *c)
{
	struct conn *n;

	n = realloc(c, sizeof(*c) + GOPHER_MAX_REQUEST);
	if (n == NULL)
		return NULL;
	n->cap = GOPHER_MAX_REQUEST;
	if (n->prev)
		n->prev->next = n;
	else
		n->w->conns = n;
	if (n->next)
		n->next->prev = n;
	return n;
}

/* Maps an SSL_ERROR_WANT_* to the readiness to wait for; 0: a real failure. */
static short
ssl_want(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return EV_READ;
	case SSL_ERROR_WANT_WRITE:
		return EV_WRITE;
	default:
		return 0;
	}
}

/* Closes after a failure, logging it unless the client simply went away (a
 * reset or an EOF is routine, and not worth a line per connection). */
static void
conn_fail(struct conn *c, const char *what)
{
	char addr[80], why[160];

	if (ERR_peek_error() == 0 && (errno == ECONNRESET || errno == EPIPE ||
	    errno == 0)) {
		conn_close(c);
		return;
	}
	format_addr(&c->addr.sa, addr, sizeof(addr));
	log_info("%s %s: %s: %s", addr, proto_names[c->proto], what,
	    ssl_reason(why, sizeof(why)));
	conn_close(c);
}

/* Over the rate limit: a reply that costs no page work, one small buffer.
 * Gemini has a status for it (44 SLOW DOWN, META: seconds to wait); Gopher has
 * none, so it gets the error menu line (type 3) that clients show. */
static void
conn_limited(struct conn *c, int wait)
{
	char addr[80];
	char *p = malloc(96);
	int n;

	format_addr(&c->addr.sa, addr, sizeof(addr));
	log_info("%s %s: rate limit: told to wait %d s", addr, proto_names[c->proto],
	    wait);
	if (p == NULL)
		return;		/* no reply: the connection just closes */
	if (c->proto == P_GEMINI) {
		n = snprintf(p, 96, "44 %d\r\n", wait);
		c->reply.status = 44;
	} else {
		n = snprintf(p, 96, "3rate limit: try again in %d s\t\terror.host\t1\r\n"
		    ".\r\n", wait);
		c->reply.status = 3;
	}
	c->reply.owned = (unsigned char *)p;
	c->reply.data = c->reply.owned;
	c->reply.len = (size_t)n;
}

static void
conn_respond(struct conn *c)
{
	struct worker *w = c->w;
	int wait;

	c->state = ST_WRITE;
	c->deadline = now_ms() + w->cfg->write_timeout_ms;
	if (w->rl != NULL && (wait = ratelimit_take(w->rl, &c->addr.sa, now_ms())) > 0) {
		conn_limited(c, wait);
		return;
	}
	if (c->proto == P_GEMINI)
		gemini_respond(w->site, SSL_get_servername(c->ssl,
		    TLSEXT_NAMETYPE_host_name), c->buf, c->len, &c->reply);
	else
		gopher_respond(w->site, c->buf, c->len, &c->reply);
}

/* Counts the connection for its address (max_per_address); 0, or -1 when the
 * address has too many open: the connection is closed at once, which costs
 * less than any reply (and a TLS alert would need a handshake first). */
static int
conn_admit(struct conn *c)
{
	char addr[80];

	if (c->w->rl == NULL)
		return 0;
	if (ratelimit_open(c->w->rl, &c->addr.sa) == -1) {
		format_addr(&c->addr.sa, addr, sizeof(addr));
		log_info("%s %s: too many connections from this address, closing", addr,
		    proto_names[c->proto]);
		conn_close(c);
		return -1;
	}
	c->counted = 1;
	return 0;
}

/*
 * The PROXY protocol header (v1 or v2), before any byte of the client's own.
 * Bytes are peeked, and only a header's bytes are ever consumed: when
 * proxy_parse asks for more, all bytes seen are part of the header (it is
 * longer than they are), so they move into c->buf and the wait is for new
 * bytes (a wait on bytes left in the socket would wake at once, again and
 * again). Returns 1 when the header is read, 0 to wait, -1 closed.
 */
static int
conn_proxy(struct conn *c)
{
	struct sockaddr_storage src;
	char addr[80];
	ssize_t r;
	long n;

	for (;;) {
		r = recv(c->fd, c->buf + c->len, PROXY_MAX_HEADER - c->len, MSG_PEEK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			conn_wait(c, EV_READ);
			return 0;
		}
		if (r <= 0) {
			conn_close(c);
			return -1;
		}
		memset(&src, 0, sizeof(src));
		n = proxy_parse(c->buf, c->len + (size_t)r, &src);
		if (n == 0 && c->len + (size_t)r < PROXY_MAX_HEADER) {
			if (recv(c->fd, c->buf + c->len, (size_t)r, 0) != r)
				break;
			c->len += (size_t)r;
			continue;
		}
		if (n <= (long)c->len || n > (long)(c->len + (size_t)r))
			break;		/* invalid (or a parser out of bounds) */
		if (recv(c->fd, c->buf + c->len, (size_t)n - c->len, 0) !=
		    (ssize_t)((size_t)n - c->len))
			break;
		if (src.ss_family == AF_INET || src.ss_family == AF_INET6)
			memcpy(&c->addr.ss, &src, sizeof(src));
		c->len = 0;
		return 1;
	}
	format_addr(&c->addr.sa, addr, sizeof(addr));
	log_info("%s %s: no valid PROXY protocol header, closing", addr,
	    proto_names[c->proto]);
	conn_close(c);
	return -1;
}

/* Reads until the first LF, a full buffer or the client's end of stream.
 * Returns 1 when the request is complete, 0 to wait (done), -1 closed. */
static int
conn_read(struct conn *c)
{
	for (;;) {
		size_t room = c->cap - c->len, old = c->len;
		ssize_t r;

		if (room == 0)
			return 1;
		if (c->ssl != NULL) {
			int n = SSL_read(c->ssl, c->buf + c->len, (int)room);

			if (n <= 0) {
				short want = ssl_want(c, n);

				if (want) {
					conn_wait(c, want);
					return 0;
				}
				if (SSL_get_error(c->ssl, n) != SSL_ERROR_ZERO_RETURN) {
					conn_fail(c, "reading the request");
					return -1;
				}
				/* The client closed its side: what it sent is the
				 * request (nothing: it just went away). */
				ERR_clear_error();
				if (c->len > 0)
					return 1;
				conn_close(c);
				return -1;
			}
			r = n;
		} else {
			r = recv(c->fd, c->buf + c->len, room, 0);
			if (r == 0) {
				if (c->len > 0)
					return 1;
				conn_close(c);
				return -1;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno == EAGAIN) {
				conn_wait(c, EV_READ);
				return 0;
			}
			if (r < 0) {
				conn_fail(c, "reading the request");
				return -1;
			}
		}
		c->len += (size_t)r;
		if (memchr(c->buf + old, '\n', (size_t)r) != NULL) {
			/* Bytes after the first LF are not part of the request. */
			c->len = (size_t)((unsigned char *)memchr(c->buf + old, '\n',
			    (size_t)r) - c->buf) + 1;
			return 1;
		}
	}
}

/* Returns 1 when everything is written, 0 to wait, -1 closed. */
static int
conn_write(struct conn *c)
{
	while (c->sent < c->reply.len) {
		size_t left = c->reply.len - c->sent;

		if (c->ssl != NULL) {
			int n = SSL_write(c->ssl, c->reply.data + c->sent,
			    left > INT_MAX ? INT_MAX : (int)left);

			if (n <= 0) {
				short want = ssl_want(c, n);

				if (want) {
					conn_wait(c, want);
					return 0;
				}
				conn_fail(c, "writing the response");
				return -1;
			}
			c->sent += (size_t)n;
		} else {
			ssize_t n = send(c->fd, c->reply.data + c->sent, left,
			    MSG_NOSIGNAL);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					conn_wait(c, EV_WRITE);
					return 0;
				}
				conn_fail(c, "writing the response");
				return -1;
			}
			c->sent += (size_t)n;
		}
	}
	return 1;
}

/* After the response: unread bytes from the client (more than its request line)
 * would make close() send a reset, which can destroy the response before the
 * client reads it; so they are drained first, for a short while. Returns 1 when
 * the socket can be closed, 0 to wait. */
static int
conn_drain(struct conn *c)
{
	unsigned char scratch[512];

	for (;;) {
		ssize_t r = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (r > 0) {
			if (c->state != ST_LINGER) {
				c->state = ST_LINGER;
				shutdown(c->fd, SHUT_WR);
				if (c->deadline > now_ms() + LINGER_MS)
					c->deadline = now_ms() + LINGER_MS;
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN && c->state == ST_LINGER) {
			conn_wait(c, EV_READ);
			return 0;
		}
		return 1;	/* EOF, error, or nothing pending */
	}
}

static void
conn_step(struct conn *c)
{
	struct conn *grown;
	unsigned char first;
	ssize_t r;
	int n;

	for (;;) {
		switch (c->state) {
		case ST_PROXY:
			if (c->cap < PROXY_MAX_HEADER) {
				if ((grown = conn_grow(c)) == NULL) {
					conn_fail(c, "out of memory");
					return;
				}
				c = grown;
			}
			if (conn_proxy(c) != 1 || conn_admit(c) == -1)
				return;
			c->state = c->proto == P_GEMINI ? ST_HANDSHAKE : ST_PEEK;
			break;
		case ST_PEEK:
			r = recv(c->fd, &first, 1, MSG_PEEK);
			if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				conn_wait(c, EV_READ);
				return;
			}
			if (r <= 0) {
				conn_close(c);
				return;
			}
			if (c->cap < GOPHER_MAX_REQUEST) {
				if ((grown = conn_grow(c)) == NULL) {
					conn_fail(c, "out of memory");
					return;
				}
				c = grown;
			}
			if (first == 0x16) {	/* a TLS handshake record */
				if ((c->ssl = tls_new(c->w->tls)) == NULL ||
				    !SSL_set_fd(c->ssl, c->fd)) {
					conn_fail(c, "out of memory");
					return;
				}
				c->proto = P_GOPHERS;
				c->state = ST_HANDSHAKE;
				c->deadline = c->start + c->w->cfg->handshake_timeout_ms;
			} else {
				c->state = ST_READ;
			}
			break;
		case ST_HANDSHAKE:
			n = SSL_do_handshake(c->ssl);
			if (n != 1) {
				short want = ssl_want(c, n);

				if (want)
					conn_wait(c, want);
				else if (ERR_peek_error() == 0)
					conn_close(c);	/* gone: a probe, a reset */
				else
					conn_fail(c, "TLS handshake");
				return;
			}
			c->state = ST_READ;
			c->deadline = c->start + c->w->cfg->request_timeout_ms;
			break;
		case ST_READ:
			if (conn_read(c) != 1)
				return;
			conn_respond(c);
			break;
		case ST_WRITE:
			if (conn_write(c) != 1)
				return;
			conn_log(c);
			c->state = ST_SHUTDOWN;
			break;
		case ST_SHUTDOWN:
			if (c->ssl != NULL && (n = SSL_shutdown(c->ssl)) < 0) {
				short want = ssl_want(c, n);

				if (want == EV_WRITE) {
					conn_wait(c, want);
					return;
				}
				/* A peer gone already: nothing more to say to it. */
				ERR_clear_error();
				conn_close(c);
				return;
			}
			/* fall through: close_notify sent (or plain) */
			/* FALLTHROUGH */
		case ST_LINGER:
			if (conn_drain(c) == 1)
				conn_close(c);
			return;
		}
	}
}

static struct conn *
conn_new(struct worker *w, int fd, int gopher, int proxy, const struct sockaddr *sa,
    socklen_t salen)
{
	size_t cap = gopher ? 0 : GEMINI_MAX_REQUEST;
	struct conn *c = malloc(sizeof(*c) + cap);

	if (c == NULL)
		return NULL;
	/* The header only: the buffer stays untouched (and out of RSS) until used. */
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->fd = fd;
	c->cap = cap;
	if (salen > sizeof(c->addr))
		salen = sizeof(c->addr);
	memcpy(&c->addr, sa, salen);
	c->start = now_ms();
	/* Assigned now so that closing before the first wait is safe. */
	event_assign(&c->ev, w->base, fd, EV_READ, conn_cb, c);
	if (gopher) {
		c->proto = P_GOPHER;
		c->state = ST_PEEK;
		c->deadline = c->start + w->cfg->request_timeout_ms;
	} else {
		if ((c->ssl = tls_new(w->tls)) == NULL || !SSL_set_fd(c->ssl, fd)) {
			SSL_free(c->ssl);
			ERR_clear_error();
			free(c);
			return NULL;
		}
		c->proto = P_GEMINI;
		c->state = ST_HANDSHAKE;
		c->deadline = c->start + w->cfg->handshake_timeout_ms;
	}
	/* The header comes within the first state's deadline. */
	if (proxy)
		c->state = ST_PROXY;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	return c;
}

static void
pause_accepting(struct worker *w, long ms)
{
	struct timeval tv = ms_tv(ms);

	w->paused = 1;
	listeners_enable(w, 0);
	if (ms > 0)
		event_add(w->resume_ev, &tv);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct worker *w = l->w;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union {
			struct sockaddr          sa;
			struct sockaddr_storage  ss;
		} a;
		socklen_t alen = sizeof(a);
		struct conn *c;
		int fd;

		if (w->n_conns >= w->max_conns) {
			pause_accepting(w, 0);
			return;
		}
		fd = accept4(lfd, &a.sa, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warn("%s: accept: %s; pausing for %d ms", l->name,
				    strerror(errno), ACCEPT_BACKOFF_MS);
				pause_accepting(w, ACCEPT_BACKOFF_MS);
			}
			return;		/* EAGAIN: all taken */
		}
		if ((c = conn_new(w, fd, l->gopher, l->proxy, &a.sa, alen)) == NULL) {
			log_warn("%s: out of memory, connection refused", l->name);
			close(fd);
			continue;
		}
		/* Behind a proxy, the address to count comes with the header. */
		if (c->state != ST_PROXY && conn_admit(c) == -1)
			continue;
		/* The client's first flight is often here already: no wait for it. */
		if (c->state == ST_PEEK)
			conn_wait(c, EV_READ);
		else
			conn_step(c);
	}
}

/* ------------------------------------------------------------ workers */

/* Who a worker becomes before it serves, when kilnet was started as root. */
struct privs {
	int          drop;      /* 1: started as root */
	uid_t        uid;
	gid_t        gid;
	const char  *user;      /* for messages; points into the current config */
	pid_t        master;
};

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = ms_tv(DRAIN_MS);

	(void)what;
	if (w->stopping)
		return;
	/* The kernel has completed the handshakes of connections still queued on
	 * our sockets; closing the sockets would reset them, too late for a client
	 * or a proxy to retry elsewhere. Take them first and answer them too. */
	for (size_t i = 0; i < w->n_ls && !w->paused; i++)
		if (w->ls[i].fd != -1)
			accept_cb(w->ls[i].fd, EV_READ, &w->ls[i]);
	log_info("signal %d: stopping (%d connection%s open)", (int)sig, w->n_conns,
	    w->n_conns == 1 ? "" : "s");
	w->stopping = 1;
	listeners_close(w);
	if (w->resume_ev != NULL)
		event_del(w->resume_ev);
	if (w->n_conns == 0)
		event_base_loopbreak(w->base);
	else
		event_base_loopexit(w->base, &tv);
}

/* After a reload: a new worker serves this slot's sockets already; this one
 * stops accepting and exits once its connections are done. Each of them has
 * its deadlines, so that is soon; the master kills a worker that overstays. */
static void
retire_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	(void)sig;
	(void)what;
	if (w->stopping || w->retiring)
		return;
	w->retiring = 1;
	listeners_close(w);
	if (w->resume_ev != NULL)
		event_del(w->resume_ev);
	if (w->n_conns == 0)
		event_base_loopbreak(w->base);
}

static void
worker_listen(struct worker *w, const int *fds)
{
	const struct config *cfg = w->cfg;
	size_t i;

	w->n_ls = cfg->n_gemini_listen + cfg->n_gopher_listen;
	w->ls = xcalloc(w->n_ls ? w->n_ls : 1, sizeof(*w->ls));
	for (i = 0; i < w->n_ls; i++) {
		struct listener *l = &w->ls[i];
		const struct listen_addr *la;

		l->gopher = i >= cfg->n_gemini_listen;
		la = l->gopher ? &cfg->gopher_listen[i - cfg->n_gemini_listen]
		    : &cfg->gemini_listen[i];
		l->proxy = la->proxy;
		l->w = w;
		l->fd = fds[i];
		listen_name(la, l->name, sizeof(l->name));
		event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
	}
	listeners_enable(w, 1);
}

/* Sockets are bound and keys read (by the master): from here on a worker needs
 * neither root nor the files outside its chroot. */
static int
drop_privileges(const struct config *cfg, const struct privs *p)
{
	if (!p->drop)
		return 0;
	if (cfg->chroot_dir != NULL && *cfg->chroot_dir != '\0' &&
	    (chroot(cfg->chroot_dir) == -1 || chdir("/") == -1)) {
		log_error("cannot chroot to %s (server.chroot): %s", cfg->chroot_dir,
		    strerror(errno));
		return -1;
	}
	if (setgroups(1, &p->gid) == -1 || setgid(p->gid) == -1 ||
	    setuid(p->uid) == -1) {
		log_error("cannot switch to user %s (server.user): %s", p->user,
		    strerror(errno));
		return -1;
	}
	if (p->uid != 0 && setuid(0) != -1) {
		log_error("user %s (server.user): root could be regained", p->user);
		return -1;
	}
#if defined(__SANITIZE_ADDRESS__)
	/* The leak checker reads this process through ptrace at exit, which a
	 * process that changed its user refuses; sanitizer builds only. */
	prctl(PR_SET_DUMPABLE, 1);
#endif
	return 0;
}

/* One worker: its own event loop on its slot's sockets; returns its exit
 * status. The signals it handles are blocked by the caller and unblocked here,
 * once the loop can take them. */
static int
worker_run(const struct server_gen *g, const int *fds, int id,
    const sigset_t *oldmask, const struct privs *p)
{
	const struct config *cfg = g->cfg;
	struct event_config *ec;
	struct worker w;
	sigset_t late;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.site = g->site;
	w.tls = g->tls;
	w.max_conns = cfg->max_connections > 0 ? cfg->max_connections : 1024;
	/* Opened before the chroot and the change of user: the file may be
	 * outside the one and not writable by the other. */
	log_init(cfg->access_log, cfg->log_anonymise, id);
	/* SIGHUP is the master's; one sent to the process group must not end a
	 * worker (its default action). */
	signal(SIGHUP, SIG_IGN);
	if (drop_privileges(cfg, p) == -1) {
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		return 1;
	}
	/* A worker does not outlive its master (set after the change of user,
	 * which clears it). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != p->master) {
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		return 0;
	}
	if ((cfg->rate > 0 || cfg->max_per_address > 0) &&
	    (w.rl = ratelimit_new(cfg->rate, cfg->burst, cfg->max_per_address,
	    cfg->allow, cfg->n_allow)) == NULL) {
		log_error("cannot set up the rate limits");
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		return 1;
	}

	if ((ec = event_config_new()) != NULL) {
		/* One process, one thread: no locks; and the changelist turns the
		 * re-arming of one-shot events into fewer epoll_ctl calls. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK |
		    EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		w.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (w.base == NULL) {
		log_error("cannot start an event loop");
		ratelimit_free(w.rl);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		return 1;
	}
	w.sig_term = evsignal_new(w.base, SIGTERM, stop_cb, &w);
	w.sig_int = evsignal_new(w.base, SIGINT, stop_cb, &w);
	w.sig_retire = evsignal_new(w.base, SIGUSR2, retire_cb, &w);
	w.resume_ev = evtimer_new(w.base, resume_cb, &w);
	if (w.sig_term == NULL || w.sig_int == NULL || w.sig_retire == NULL ||
	    w.resume_ev == NULL || event_add(w.sig_term, NULL) == -1 ||
	    event_add(w.sig_int, NULL) == -1 || event_add(w.sig_retire, NULL) == -1) {
		log_error("cannot set up signal handling");
		rc = 1;
	} else {
		worker_listen(&w, fds);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (rc == 0)
		event_base_dispatch(w.base);

	/* Freeing a signal event restores the default action (the end of the
	 * process): a late SIGTERM or SIGUSR2 must not end it that way. */
	sigemptyset(&late);
	sigaddset(&late, SIGTERM);
	sigaddset(&late, SIGINT);
	sigaddset(&late, SIGUSR2);
	sigprocmask(SIG_BLOCK, &late, NULL);
	if (w.ls != NULL)
		listeners_close(&w);
	else
		for (size_t i = 0; i < cfg->n_gemini_listen + cfg->n_gopher_listen; i++)
			close(fds[i]);
	if (w.n_conns > 0)
		log_info("closing %d connection%s still open", w.n_conns,
		    w.n_conns == 1 ? "" : "s");
	w.stopping = w.retiring = 0;	/* no loopbreak from the closes below */
	while (w.conns != NULL)
		conn_close(w.conns);
	if (w.sig_term)
		event_free(w.sig_term);
	if (w.sig_int)
		event_free(w.sig_int);
	if (w.sig_retire)
		event_free(w.sig_retire);
	if (w.resume_ev)
		event_free(w.resume_ev);
	ratelimit_free(w.rl);
	free(w.ls);
	event_base_free(w.base);
	return rc;
}

/* ------------------------------------------------------------ master */

/*
 * With SO_REUSEPORT the kernel hashes each new connection to one socket of the
 * group and queues it there until accepted; closing a socket resets what is
 * queued on it. So the master opens one socket per address per worker slot and
 * keeps them all while it serves: worker i accepts from slot i's sockets; on a
 * reload the new worker i is given the same sockets (and what is queued there),
 * while the old worker i closes its copies and finishes the connections it has.
 * No connection is refused or reset by a reload.
 */
struct lsock {
	struct listen_addr  la;      /* host owned */
	int                 gopher;
	int                *fd;      /* one per slot; -1: none */
};

struct child {
	pid_t  pid;
	int    slot;
	int    retiring;     /* 0, 1: told to retire, 2: SIGUSR2 sent */
	long   started;
	long   retire_by;    /* retiring: killed if still running then */
};

struct master {
	struct server_gen  *g;
	server_reload_fn    reload;
	void               *reload_arg;
	const sigset_t     *oldmask;
	struct privs        privs;
	struct lsock       *ls;
	size_t              n_ls;
	int                 n_slots;
	struct child       *ch;
	size_t              n_ch, cap_ch;
	int                 stopping, rc;
	long                stop_at;
	int                 is_child, child_rc;   /* in a forked worker */
};

static int
slots_for(const struct config *cfg)
{
	long cores;

	if (cfg->workers > 0)
		return cfg->workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores > 0 ? (int)cores : 1;
}

/* Started as root, workers switch to server.user; the user must exist now,
 * not at the first fork (then the error would be a dying worker). */
static int
resolve_privs(const struct config *cfg, struct privs *p)
{
	const char *user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	struct passwd *pw;
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->master = getpid();
	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_error("server.user: no such user: %s", user);
		return -1;
	}
	if (cfg->chroot_dir != NULL && *cfg->chroot_dir != '\0') {
		if (stat(cfg->chroot_dir, &st) == -1) {
			log_error("server.chroot: %s: %s", cfg->chroot_dir,
			    strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			log_error("server.chroot: %s: not a folder", cfg->chroot_dir);
			return -1;
		}
	}
	p->drop = 1;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	return 0;
}

static int
same_addr(const struct listen_addr *a, const struct listen_addr *b)
{
	unsigned char x[16], y[16];
	int fa = strchr(a->host, ':') ? AF_INET6 : AF_INET;
	int fb = strchr(b->host, ':') ? AF_INET6 : AF_INET;

	if (a->port != b->port || fa != fb)
		return 0;
	if (inet_pton(fa, a->host, x) != 1 || inet_pton(fb, b->host, y) != 1)
		return strcmp(a->host, b->host) == 0;
	return memcmp(x, y, fa == AF_INET6 ? 16 : 4) == 0;
}

static void
lsocks_free(struct lsock *ls, size_t n, int n_slots)
{
	for (size_t i = 0; i < n; i++) {
		for (int s = 0; s < n_slots; s++)
			if (ls[i].fd[s] != -1)
				close(ls[i].fd[s]);
		free(ls[i].la.host);
		free(ls[i].fd);
	}
	free(ls);
}

/*
 * The sockets for cfg's addresses and n_slots workers, replacing m->ls: an
 * address already open keeps its sockets (slot by slot), a new one is checked
 * (bound once, without SO_REUSEPORT, so that a port held by anyone else fails)
 * and opened, and sockets no longer needed are closed. On an error nothing
 * changes. The order is the workers' listener order: Gemini, then Gopher.
 */
static int
lsocks_build(struct master *m, const struct config *cfg, int n_slots)
{
	size_t n = cfg->n_gemini_listen + cfg->n_gopher_listen, i, j;
	struct lsock *ls = xcalloc(n ? n : 1, sizeof(*ls));
	long *from = xcalloc(n ? n : 1, sizeof(*from));
	long *match = xcalloc(m->n_ls ? m->n_ls : 1, sizeof(*match));
	int *check = xcalloc(n ? n : 1, sizeof(*check));
	char name[64];
	int rc = 0, s;

	for (j = 0; j < m->n_ls; j++)
		match[j] = -1;
	for (i = 0; i < n; i++) {
		const struct listen_addr *la;

		ls[i].gopher = i >= cfg->n_gemini_listen;
		la = ls[i].gopher ? &cfg->gopher_listen[i - cfg->n_gemini_listen]
		    : &cfg->gemini_listen[i];
		ls[i].la = *la;
		ls[i].la.host = xstrdup(la->host);
		ls[i].fd = xcalloc((size_t)n_slots, sizeof(int));
		for (s = 0; s < n_slots; s++)
			ls[i].fd[s] = -1;
		from[i] = -1;
		for (j = 0; j < m->n_ls; j++) {
			if (match[j] == -1 && same_addr(&m->ls[j].la, la)) {
				match[j] = (long)i;
				from[i] = (long)j;
				break;
			}
		}
	}
	if (n == 0) {
		fprintf(stderr, KILNET_NAME ": nothing to listen on (server.gemini.listen, "
		    "server.gopher.listen)\n");
		rc = -1;
	}
	/* All new addresses bound at the same time: overlaps show too. */
	for (i = 0; i < n; i++) {
		check[i] = -1;
		if (from[i] != -1)
			continue;
		if ((check[i] = open_socket(&ls[i].la, 0, 0)) == -1) {
			listen_name(&ls[i].la, name, sizeof(name));
			fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s%s\n",
			    name, listen_setting(ls[i].gopher, ls[i].la.proxy),
			    strerror(errno), listen_hint(errno));
			rc = -1;
		}
	}
	for (i = 0; i < n; i++)
		if (check[i] != -1)
			close(check[i]);
	for (i = 0; i < n && rc == 0; i++) {
		for (s = 0; s < n_slots && rc == 0; s++) {
			if (from[i] != -1 && s < m->n_slots) {
				ls[i].fd[s] = m->ls[from[i]].fd[s];
				continue;
			}
			if ((ls[i].fd[s] = open_socket(&ls[i].la, 1, 1)) == -1) {
				listen_name(&ls[i].la, name, sizeof(name));
				fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s%s\n",
				    name, listen_setting(ls[i].gopher, ls[i].la.proxy),
				    strerror(errno), listen_hint(errno));
				rc = -1;
			}
		}
	}
	if (rc == 0) {
		/* Kept sockets now belong to the new set; the rest are closed. */
		for (j = 0; j < m->n_ls; j++)
			for (s = 0; s < m->n_slots; s++)
				if (match[j] != -1 && s < n_slots)
					m->ls[j].fd[s] = -1;
		lsocks_free(m->ls, m->n_ls, m->n_slots);
		m->ls = ls;
		m->n_ls = n;
		m->n_slots = n_slots;
	} else {
		for (i = 0; i < n; i++)
			for (s = 0; s < n_slots; s++)
				if (from[i] != -1 && s < m->n_slots)
					ls[i].fd[s] = -1;	/* borrowed */
		lsocks_free(ls, n, n_slots);
	}
	free(from);
	free(match);
	free(check);
	return rc;
}

/* Forks the worker for one slot. Returns 0 (in the master, or in the child
 * with m->is_child set once the worker is done) or -1. */
static int
spawn(struct master *m, int slot)
{
	pid_t pid;

	if (m->n_ch == m->cap_ch) {
		m->cap_ch = m->cap_ch ? 2 * m->cap_ch : 8;
		m->ch = xrealloc(m->ch, m->cap_ch * sizeof(*m->ch));
	}
	if ((pid = fork()) == -1) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		size_t n = m->n_ls;
		int *fds = xcalloc(n ? n : 1, sizeof(int));

		/* Only this slot's sockets stay open in the worker. */
		for (size_t i = 0; i < n; i++) {
			fds[i] = m->ls[i].fd[slot];
			m->ls[i].fd[slot] = -1;
		}
		lsocks_free(m->ls, m->n_ls, m->n_slots);
		m->ls = NULL;
		m->n_ls = 0;
		free(m->ch);
		m->ch = NULL;
		m->n_ch = m->cap_ch = 0;
		m->is_child = 1;
		m->child_rc = worker_run(m->g, fds, slot + 1, m->oldmask, &m->privs);
		free(fds);
		return 0;
	}
	m->ch[m->n_ch].pid = pid;
	m->ch[m->n_ch].slot = slot;
	m->ch[m->n_ch].retiring = 0;
	m->ch[m->n_ch].started = now_ms();
	m->ch[m->n_ch].retire_by = 0;
	m->n_ch++;
	return 0;
}

/* Starts a worker for every slot that has none serving (at start, after a
 * reload, after a crash). -1 when a fork failed. */
static int
ensure_workers(struct master *m, int restart)
{
	int rc = 0;

	for (int s = 0; s < m->n_slots && !m->is_child; s++) {
		size_t k;

		for (k = 0; k < m->n_ch; k++)
			if (m->ch[k].slot == s && !m->ch[k].retiring)
				break;
		if (k < m->n_ch)
			continue;
		if (spawn(m, s) == -1)
			rc = -1;
		else if (restart && !m->is_child)
			log_info("worker %d restarted (pid %d)", s + 1,
			    (int)m->ch[m->n_ch - 1].pid);
	}
	return rc;
}

static void
master_stop(struct master *m, int sig)
{
	if (m->stopping)
		return;
	if (sig != 0)
		log_info("signal %d: stopping the workers", sig);
	m->stopping = 1;
	m->stop_at = now_ms();
	/* Our copies go first, so that a worker's are the last: it takes what is
	 * queued and closes at once, and a connection the kernel completes after
	 * that finds the port closed (refused, which a proxy retries elsewhere)
	 * rather than queued on a socket we close later (reset mid-request). */
	lsocks_free(m->ls, m->n_ls, m->n_slots);
	m->ls = NULL;
	m->n_ls = 0;
	for (size_t k = 0; k < m->n_ch; k++)
		kill(m->ch[k].pid, SIGTERM);
}

/* SIGHUP: a whole new generation, or (on any error) none and the old serves. */
static void
master_reload(struct master *m)
{
	const struct config *old = m->g->cfg;
	struct server_gen ng;
	struct privs np;
	long bound;

	log_info("signal %d: reloading %s", SIGHUP, old->file);
	/* What an old worker may still need: each connection's longest life. */
	bound = (old->handshake_timeout_ms > old->request_timeout_ms ?
	    old->handshake_timeout_ms : old->request_timeout_ms) +
	    old->write_timeout_ms + LINGER_MS + RETIRE_GRACE_MS;
	if (m->reload(m->reload_arg, &ng) == -1) {
		log_error("reload failed: still serving the previous site");
		return;
	}
	if (resolve_privs(ng.cfg, &np) == -1 ||
	    lsocks_build(m, ng.cfg, slots_for(ng.cfg)) == -1) {
		server_gen_free(&ng);
		log_error("reload failed: still serving the previous site");
		return;
	}
	tls_keep_tickets(ng.tls, m->g->tls);
	server_gen_free(m->g);
	*m->g = ng;
	m->privs = np;
	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].retiring)
			continue;	/* retired by an earlier reload */
		m->ch[k].retiring = 1;
		m->ch[k].retire_by = now_ms() + bound;
	}
	/* The new workers first: the sockets are shared, so whichever accepts a
	 * queued connection serves it, and none waits for a worker to start. */
	ensure_workers(m, 0);
	if (m->is_child)
		return;
	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].retiring == 1) {
			kill(m->ch[k].pid, SIGUSR2);
			m->ch[k].retiring = 2;
		}
	}
	log_info("reloaded: %zu pages (%zu Gemini, %zu Gopher), %d worker%s",
	    m->g->site->n_gemini + m->g->site->n_gopher, m->g->site->n_gemini,
	    m->g->site->n_gopher, m->n_slots, m->n_slots == 1 ? "" : "s");
}

static void
master_reap(struct master *m)
{
	struct child c;
	pid_t pid;
	size_t k;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (k = 0; k < m->n_ch && m->ch[k].pid != pid; k++)
			;
		if (k == m->n_ch)
			continue;
		c = m->ch[k];
		m->ch[k] = m->ch[--m->n_ch];
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && (m->stopping || c.retiring))
			continue;
		if (WIFSIGNALED(st))
			log_error("worker %d (pid %d) killed by signal %d", c.slot + 1,
			    (int)pid, WTERMSIG(st));
		else
			log_error("worker %d (pid %d) exited with status %d", c.slot + 1,
			    (int)pid, WEXITSTATUS(st));
		if (m->stopping) {
			m->rc = 1;
		} else if (!c.retiring && now_ms() - c.started < RESPAWN_MIN_MS) {
			log_error("worker %d died at start: stopping", c.slot + 1);
			m->rc = 1;
			master_stop(m, 0);
		}
	}
}

/* The master only watches: it reloads on SIGHUP, forwards SIGTERM/SIGINT,
 * reaps the workers and restarts one that died. Returns from a forked child
 * too, with m->is_child set, so that the child unwinds through main's cleanup. */
static void
master_run(struct master *m, const sigset_t *wait_set)
{
	if (ensure_workers(m, 0) == -1 && !m->is_child) {
		m->rc = 1;
		master_stop(m, 0);
	}
	if (m->is_child)
		return;
	if (!m->stopping)
		log_info("%d worker%s started", m->n_slots, m->n_slots == 1 ? "" : "s");
	for (;;) {
		struct timespec ts = { 0, MASTER_TICK_MS * 1000000L };
		siginfo_t si;
		long now;
		int sig;

		if (!m->stopping) {
			ensure_workers(m, 1);
			if (m->is_child)
				return;
		}
		if (m->stopping && m->n_ch == 0)
			break;
		sig = sigtimedwait(wait_set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			master_stop(m, sig);
		} else if (sig == SIGHUP && !m->stopping) {
			master_reload(m);
			if (m->is_child)
				return;
		}
		now = now_ms();
		for (size_t k = 0; k < m->n_ch; k++) {
			if (m->ch[k].retiring && now > m->ch[k].retire_by) {
				log_warn("worker %d (pid %d) still running after its "
				    "connections' deadlines: killing it", m->ch[k].slot + 1,
				    (int)m->ch[k].pid);
				kill(m->ch[k].pid, SIGKILL);
				m->ch[k].retire_by = LONG_MAX;
			}
		}
		if (m->stopping && now - m->stop_at > STOP_GRACE_MS) {
			log_warn("workers still running %d ms after the signal: killing "
			    "them", STOP_GRACE_MS);
			for (size_t k = 0; k < m->n_ch; k++)
				kill(m->ch[k].pid, SIGKILL);
			m->stop_at = now;
			m->rc = 1;
		}
		master_reap(m);
	}
}

void
server_gen_free(struct server_gen *g)
{
	tls_free(g->tls);
	site_free(g->site);
	if (g->cfg != NULL) {
		config_free(g->cfg);
		free(g->cfg);
	}
	memset(g, 0, sizeof(*g));
}

int
server_run(struct server_gen *g, server_reload_fn reload, void *arg)
{
	sigset_t block, wait_set, oldmask;
	struct master m;

	/* A client that goes away mid-write costs its connection, not the
	 * process (SSL_write writes with write(2), which raises SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	memset(&m, 0, sizeof(m));
	m.g = g;
	m.reload = reload;
	m.reload_arg = arg;
	m.oldmask = &oldmask;
	if (resolve_privs(g->cfg, &m.privs) == -1 ||
	    lsocks_build(&m, g->cfg, slots_for(g->cfg)) == -1)
		return 1;
	/* Blocked from here: a signal arriving before a loop can take it waits.
	 * SIGUSR2 (retire) is only for workers: blocked so that one sent to a
	 * worker still starting waits for its handler. */
	sigemptyset(&wait_set);
	sigaddset(&wait_set, SIGTERM);
	sigaddset(&wait_set, SIGINT);
	sigaddset(&wait_set, SIGCHLD);
	sigaddset(&wait_set, SIGHUP);
	block = wait_set;
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &oldmask);
	master_run(&m, &wait_set);
	if (m.is_child)
		return m.child_rc;
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	lsocks_free(m.ls, m.n_ls, m.n_slots);
	free(m.ch);
	log_info("stopped");
	return m.rc;
}
