/*
 * server.c: the network side. Binds the listeners, forks the workers (each with
 * its own libevent loop and its own SO_REUSEPORT sockets), and carries every
 * connection through its steps, each with a deadline:
 *
 *   accept -> [peek: Gopher port, TLS or plain?] -> handshake -> read request
 *          -> gemini_respond / gopher_respond -> write -> close_notify -> close
 *
 * SSL_* is driven from our own event callbacks on the non-blocking socket (no
 * bufferevent): one struct event per connection, carrying both the readiness
 * wait and the current deadline, and a request buffer inside the connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

enum proto { P_GEMINI, P_GOPHER, P_GOPHERS };
static const char *const proto_names[] = { "gemini", "gopher", "gophers" };

enum state { ST_PEEK, ST_HANDSHAKE, ST_READ, ST_WRITE, ST_SHUTDOWN, ST_LINGER };
static const char *const state_names[] = {
	"first byte", "handshake", "request", "write", "close_notify", "linger"
};

struct worker;

struct listener {
	struct event      ev;
	struct worker    *w;
	int               fd;
	int               gopher;       /* 0: Gemini (TLS), 1: Gopher (autodetect) */
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
	long              start;        /* accept time, ms (monotonic) */
	long              deadline;     /* of the current state, ms */
	union {
		struct sockaddr      sa;
		struct sockaddr_in   in;
		struct sockaddr_in6  in6;
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
	struct event_base    *base;
	struct listener      *ls;
	size_t                n_ls;
	struct conn          *conns;
	int                   n_conns;
	int                   max_conns;
	int                   paused;    /* listeners off: cap reached or EMFILE */
	int                   stopping;
	struct event         *sig_term, *sig_int, *resume_ev;
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

static const char *
listen_setting(int gopher)
{
	return gopher ? "server.gopher.listen or --gopher"
	    : "server.gemini.listen or --gemini";
}

/* Every address is bound once, all at the same time, by the master: a port in
 * use or two overlapping addresses are reported before anything is served. */
static int
check_addresses(const struct config *cfg)
{
	size_t n = cfg->n_gemini_listen + cfg->n_gopher_listen, i;
	int *fds = xcalloc(n, sizeof(*fds)), rc = 0;
	char name[64];

	for (i = 0; i < n; i++) {
		int gopher = i >= cfg->n_gemini_listen;
		const struct listen_addr *la = gopher ?
		    &cfg->gopher_listen[i - cfg->n_gemini_listen] : &cfg->gemini_listen[i];

		if ((fds[i] = open_socket(la, 0, 0)) == -1) {
			listen_name(la, name, sizeof(name));
			fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s\n",
			    name, listen_setting(gopher), strerror(errno));
			rc = -1;
		}
	}
	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
	free(fds);
	if (n == 0) {
		fprintf(stderr, KILNET_NAME ": nothing to listen on (server.gemini.listen, "
		    "server.gopher.listen)\n");
		rc = -1;
	}
	return rc;
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
	if (w->paused && !w->stopping && w->n_conns < w->max_conns) {
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
	if (w->stopping) {
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

static void
conn_respond(struct conn *c)
{
	struct worker *w = c->w;

	if (c->proto == P_GEMINI)
		gemini_respond(w->site, SSL_get_servername(c->ssl,
		    TLSEXT_NAMETYPE_host_name), c->buf, c->len, &c->reply);
	else
		gopher_respond(w->site, c->buf, c->len, &c->reply);
	c->state = ST_WRITE;
	c->deadline = now_ms() + w->cfg->write_timeout_ms;
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
			if ((grown = conn_grow(c)) == NULL) {
				conn_fail(c, "out of memory");
				return;
			}
			c = grown;
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
conn_new(struct worker *w, int fd, int gopher, const struct sockaddr *sa,
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
		if ((c = conn_new(w, fd, l->gopher, &a.sa, alen)) == NULL) {
			log_warn("%s: out of memory, connection refused", l->name);
			close(fd);
			continue;
		}
		/* The client's first flight is often here already: no wait for it. */
		if (c->state == ST_PEEK)
			conn_wait(c, EV_READ);
		else
			conn_step(c);
	}
}

/* ------------------------------------------------------------ workers */

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = ms_tv(DRAIN_MS);

	(void)what;
	if (w->stopping)
		return;
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

static int
worker_listen(struct worker *w)
{
	const struct config *cfg = w->cfg;
	size_t i;

	w->n_ls = cfg->n_gemini_listen + cfg->n_gopher_listen;
	w->ls = xcalloc(w->n_ls, sizeof(*w->ls));
	for (i = 0; i < w->n_ls; i++)
		w->ls[i].fd = -1;
	for (i = 0; i < w->n_ls; i++) {
		struct listener *l = &w->ls[i];
		const struct listen_addr *la;

		l->gopher = i >= cfg->n_gemini_listen;
		la = l->gopher ? &cfg->gopher_listen[i - cfg->n_gemini_listen]
		    : &cfg->gemini_listen[i];
		l->w = w;
		listen_name(la, l->name, sizeof(l->name));
		if ((l->fd = open_socket(la, 1, 1)) == -1) {
			log_error("cannot listen on %s (%s): %s", l->name,
			    listen_setting(l->gopher), strerror(errno));
			return -1;
		}
		event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
	}
	listeners_enable(w, 1);
	return 0;
}

/* One worker: its own event loop and sockets; returns its exit status. The
 * signals it handles are blocked by the caller and unblocked here, once the
 * loop can take them. */
static int
worker_run(const struct config *cfg, const struct site *site, struct tls *tls,
    int id, const sigset_t *oldmask)
{
	struct event_config *ec;
	struct worker w;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.site = site;
	w.tls = tls;
	w.max_conns = cfg->max_connections > 0 ? cfg->max_connections : 1024;
	log_init(cfg->access_log, cfg->log_anonymise, id);

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
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		return 1;
	}
	w.sig_term = evsignal_new(w.base, SIGTERM, stop_cb, &w);
	w.sig_int = evsignal_new(w.base, SIGINT, stop_cb, &w);
	w.resume_ev = evtimer_new(w.base, resume_cb, &w);
	if (w.sig_term == NULL || w.sig_int == NULL || w.resume_ev == NULL ||
	    event_add(w.sig_term, NULL) == -1 || event_add(w.sig_int, NULL) == -1) {
		log_error("cannot set up signal handling");
		rc = 1;
	} else if (worker_listen(&w) == -1) {
		rc = 1;
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (rc == 0)
		event_base_dispatch(w.base);

	listeners_close(&w);
	if (w.n_conns > 0)
		log_info("closing %d connection%s still open", w.n_conns,
		    w.n_conns == 1 ? "" : "s");
	w.stopping = 0;		/* no loopbreak from the closes below */
	while (w.conns != NULL)
		conn_close(w.conns);
	if (w.sig_term)
		event_free(w.sig_term);
	if (w.sig_int)
		event_free(w.sig_int);
	if (w.resume_ev)
		event_free(w.resume_ev);
	free(w.ls);
	event_base_free(w.base);
	return rc;
}

/* ------------------------------------------------------------ master */

struct child {
	pid_t  pid;      /* 0: not running */
	long   started;
};

static pid_t
spawn(const struct config *cfg, const struct site *site, struct tls *tls, int id,
    const sigset_t *oldmask, int *is_child, int *child_rc)
{
	pid_t pid = fork();

	if (pid == 0) {
		*is_child = 1;
		*child_rc = worker_run(cfg, site, tls, id, oldmask);
	} else if (pid == -1) {
		log_error("fork: %s", strerror(errno));
	}
	return pid;
}

static void
signal_children(struct child *ch, int n, int sig)
{
	for (int i = 0; i < n; i++)
		if (ch[i].pid > 0)
			kill(ch[i].pid, sig);
}

/* The master only watches: it forwards SIGTERM/SIGINT, reaps the workers and
 * restarts one that died unexpectedly. Returns from a forked child too, with
 * *is_child set, so that the child unwinds through main's cleanup. */
static int
master_run(const struct config *cfg, const struct site *site, struct tls *tls,
    int n, const sigset_t *set, const sigset_t *oldmask, int *is_child)
{
	struct child *ch = xcalloc((size_t)n, sizeof(*ch));
	int running = 0, stopping = 0, rc = 0, child_rc = 0, i;
	long stop_at = 0;

	for (i = 0; i < n && rc == 0; i++) {
		ch[i].pid = spawn(cfg, site, tls, i + 1, oldmask, is_child, &child_rc);
		if (*is_child) {
			free(ch);
			return child_rc;
		}
		if (ch[i].pid == -1) {
			ch[i].pid = 0;
			rc = 1;
			stopping = 1;
			stop_at = now_ms();
			signal_children(ch, n, SIGTERM);
		} else {
			ch[i].started = now_ms();
			running++;
		}
	}
	log_info("%d workers started", running);
	while (running > 0) {
		struct timespec ts = { 1, 0 };
		siginfo_t si;
		int sig, st;
		pid_t pid;

		sig = sigtimedwait(set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				log_info("signal %d: stopping the workers", sig);
				stopping = 1;
				stop_at = now_ms();
				signal_children(ch, n, SIGTERM);
			}
		}
		if (stopping && now_ms() - stop_at > STOP_GRACE_MS) {
			log_warn("workers still running %d ms after the signal: killing "
			    "them", STOP_GRACE_MS);
			signal_children(ch, n, SIGKILL);
			stop_at = now_ms();
			rc = 1;
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < n && ch[i].pid != pid; i++)
				;
			if (i == n)
				continue;
			ch[i].pid = 0;
			running--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && stopping)
				continue;
			if (WIFSIGNALED(st))
				log_error("worker %d (pid %d) killed by signal %d", i + 1,
				    (int)pid, WTERMSIG(st));
			else
				log_error("worker %d (pid %d) exited with status %d", i + 1,
				    (int)pid, WEXITSTATUS(st));
			if (stopping) {
				rc = 1;
			} else if (now_ms() - ch[i].started < RESPAWN_MIN_MS) {
				log_error("worker %d died at start: stopping", i + 1);
				rc = 1;
				stopping = 1;
				stop_at = now_ms();
				signal_children(ch, n, SIGTERM);
			} else {
				ch[i].pid = spawn(cfg, site, tls, i + 1, oldmask, is_child,
				    &child_rc);
				if (*is_child) {
					free(ch);
					return child_rc;
				}
				if (ch[i].pid > 0) {
					ch[i].started = now_ms();
					running++;
					log_info("worker %d restarted (pid %d)", i + 1,
					    (int)ch[i].pid);
				} else {
					ch[i].pid = 0;
				}
			}
		}
	}
	free(ch);
	return rc;
}

int
server_run(const struct config *cfg, const struct site *site, struct tls *tls)
{
	sigset_t set, oldmask;
	int n = cfg->workers, is_child = 0, rc;
	long cores;

	signal(SIGPIPE, SIG_IGN);
	if (check_addresses(cfg) == -1)
		return 1;
	if (n <= 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores > 0 ? (int)cores : 1;
	}
	/* Blocked from here: a signal arriving before a loop can take it waits. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &oldmask);
	if (n == 1) {
		rc = worker_run(cfg, site, tls, 1, &oldmask);
	} else {
		rc = master_run(cfg, site, tls, n, &set, &oldmask, &is_child);
		if (!is_child)
			sigprocmask(SIG_SETMASK, &oldmask, NULL);
	}
	if (!is_child)
		log_info("stopped");
	return rc;
}
