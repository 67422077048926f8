/*
 * conn.c: a worker's connection engine. Each accepted connection goes through
 * its steps, each with a deadline:
 *
 *   accept -> [PROXY header] -> [peek: Gopher port, TLS or plain?] -> handshake
 *          -> read request (Spartan: and its data block) -> rate limit
 *          -> gemini_respond / gopher_respond / spartan_respond / nex_respond
 *          -> write -> close_notify -> close
 *
 * SSL_* is driven from our own event callbacks on the non-blocking socket (no
 * bufferevent): one struct event per connection, carrying both the readiness
 * wait and the current deadline, and a request buffer inside the connection.
 * worker.c owns the listeners and hands each accepted socket to conn_accept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server.h"
#include "worker.h"

enum proto { P_GEMINI, P_GOPHER, P_GOPHERS, P_SPARTAN, P_NEX };
static const char *const proto_names[] = { "gemini", "gopher", "gophers",
    "spartan", "nex" };

enum state { ST_PROXY, ST_PEEK, ST_HANDSHAKE, ST_READ, ST_BODY, ST_EDIT,
    ST_WRITE, ST_SHUTDOWN, ST_LINGER };
static const char *const state_names[] = {
	"PROXY header", "first byte", "handshake", "request", "upload body",
	"master's answer", "write", "close_notify", "linger"
};

/* How long an editing request waits for the editing process: a dataset of 10,000
 * members is checked and reloaded in well under a second. */
#define EDIT_WAIT_MS      30000


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
	struct edit_req  *edit;         /* an editing request (titan.c), or NULL */
	uint32_t          edit_id;      /* its id to the editing process, while ST_EDIT */
	size_t            sent;
	size_t            len, cap;     /* request bytes read, buffer size */
	size_t            over;         /* bytes read after the request's LF */
	size_t            need;         /* Spartan: the line and its data block */
	unsigned char     buf[];        /* cap bytes; Gopher: added at the first byte */
};

static void  conn_step(struct conn *);
static void  conn_close(struct conn *);
static void  conn_edit_begin(struct conn *);

/* The request buffer a plain connection gets at its first byte. */
static size_t
conn_cap(const struct conn *c)
{
	switch (c->proto) {
	case P_SPARTAN:
		return SPARTAN_MAX_REQUEST;
	case P_NEX:
		return NEX_MAX_REQUEST;
	default:
		return GOPHER_MAX_REQUEST;
	}
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

/* The protocol a request is counted under (metrics.c): Titan uploads come on
 * Gemini's connections. */
static int
conn_metric_proto(const struct conn *c)
{
	switch (c->proto) {
	case P_GEMINI:
		return c->len >= 8 && strncasecmp((const char *)c->buf, "titan://", 8) == 0 ?
		    MP_TITAN : MP_GEMINI;
	case P_SPARTAN:
		return MP_SPARTAN;
	case P_NEX:
		return MP_NEX;
	default:
		return MP_GOPHER;
	}
}

/* The kind of listener that accepted it (the open connections' gauge). */
static int
conn_kind(const struct conn *c)
{
	switch (c->proto) {
	case P_GEMINI:
		return KIND_GEMINI;
	case P_SPARTAN:
		return KIND_SPARTAN;
	case P_NEX:
		return KIND_NEX;
	default:
		return KIND_GOPHER;
	}
}

static void
conn_log(struct conn *c)
{
	const char *sni = c->ssl ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name)
	    : NULL;
	const unsigned char *lf;
	size_t len = c->len;

	if (c->logged)
		return;
	c->logged = 1;
	/* Spartan's data block (a search query) is not part of what is logged,
	 * as a Gemini query is not either. */
	if (c->proto == P_SPARTAN && (lf = memchr(c->buf, '\n', len)) != NULL)
		len = (size_t)(lf - c->buf) + 1;
	log_access(&(struct access_rec){
		.proto = proto_names[c->proto], .mproto = conn_metric_proto(c),
		.client = &c->addr.sa, .sni = sni, .req = c->buf, .reqlen = len,
		.status = c->reply.status, .bytes = c->sent,
		.ms = now_ms() - c->start, .tls = c->ssl != NULL,
		.resumed = c->ssl != NULL && SSL_session_reused(c->ssl) });
}

static void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->state >= ST_WRITE) {
		conn_log(c);
		metrics_request(w->mw, conn_metric_proto(c), c->reply.status, c->sent,
		    now_ms() - c->start);
	}
	/* A handshake the client began (it sent bytes) and that did not end:
	 * an error, a reset, the deadline. A connection that never spoke is a
	 * probe, not a failed handshake. */
	if (c->ssl != NULL && c->state == ST_HANDSHAKE &&
	    BIO_number_read(SSL_get_rbio(c->ssl)) > 0)
		metrics_handshake_failed(w->mw);
	metrics_open(w->mw, conn_kind(c), -1);
	event_del(&c->ev);
	if (c->counted)
		ratelimit_close(w->rl, &c->addr.sa);
	reply_free(&c->reply);
	edit_req_free(c->edit);
	free(c->edit);
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
	w->owner->gone(w);
}

/* Gives a plain connection (Gopher, Spartan, Nex) its request buffer of cap
 * bytes once the client has sent something: a silent connection costs only
 * the small header. */
static struct conn *
conn_grow(struct conn *c, size_t cap)
{
	struct conn *n;

	n = realloc(c, sizeof(*c) + cap);
	if (n == NULL)
		return NULL;
	n->cap = cap;
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
 * none, so it gets the error menu line (type 3) that clients show; Spartan a
 * client error (4) that says how long to wait; Nex has no error at all, so
 * the connection closes with nothing sent. */
static void
conn_limited(struct conn *c, int wait)
{
	char addr[80];
	char *p;
	int n;

	format_addr(&c->addr.sa, addr, sizeof(addr));
	log_info("%s %s: rate limit: told to wait %d s", addr, proto_names[c->proto],
	    wait);
	metrics_limited(c->w->mw, conn_metric_proto(c));
	if (c->proto == P_NEX) {
		c->reply.status = 3;	/* logged as refused; nothing sent */
		return;
	}
	if ((p = malloc(96)) == NULL)
		return;		/* no reply: the connection just closes */
	if (c->proto == P_SPARTAN) {
		n = snprintf(p, 96, "4 Rate limit: try again in %d s\r\n", wait);
		c->reply.status = 4;
	} else if (c->proto == P_GEMINI) {
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

/*
 * A TLS 1.3 response leaves in as few segments as it fits: the session ticket
 * (asked for here, not at the end of the handshake: tlsctx.c sets num_tickets to
 * 0), the response and the close_notify are held by TCP_CORK and go out
 * together, the FIN with them, when the socket is closed or shut down. Three
 * writes were three segments, each with its headers and often its own ACK.
 * TLS 1.2 sends its ticket inside the handshake, and the plain protocols write
 * once anyway.
 */
static void
conn_cork(struct conn *c)
{
	if (c->ssl == NULL || SSL_version(c->ssl) != TLS1_3_VERSION)
		return;
	if (!SSL_new_session_ticket(c->ssl))
		ERR_clear_error();	/* no ticket: the next visit is a full handshake */
	setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &(int){ 1 }, sizeof(int));
}

static void
conn_respond(struct conn *c)
{
	struct worker *w = c->w;
	int wait;

	conn_cork(c);
	c->state = ST_WRITE;
	c->deadline = now_ms() + w->cfg->write_timeout_ms;
	if (w->rl != NULL && (wait = ratelimit_take(w->rl, &c->addr.sa, now_ms())) > 0) {
		conn_limited(c, wait);
		return;
	}
	if (c->proto == P_GEMINI) {
		gemini_respond(w->site, SSL_get_servername(c->ssl,
		    TLSEXT_NAMETYPE_host_name), c->buf, c->len, &c->reply);
		if (c->reply.edit)
			conn_edit_begin(c);
	} else if (c->proto == P_SPARTAN) {
		spartan_respond(w->site, c->buf, c->len, &c->reply);
	} else if (c->proto == P_NEX) {
		nex_respond(w->site, c->buf, c->len, &c->reply);
	} else {
		gopher_respond(w->site, c->buf, c->len, &c->reply);
	}
}

/* ------------------------------------------------------------------ editing */

/* No editing process to answer (gone, or its channel broken): a temporary failure. */
static void
conn_edit_unavailable(struct conn *c)
{
	static const char gone[] = "40 Editing is not available now\r\n";

	c->reply.data = (const unsigned char *)gone;
	c->reply.len = sizeof(gone) - 1;
	c->reply.status = 40;
	c->state = ST_WRITE;
	c->deadline = now_ms() + c->w->cfg->write_timeout_ms;
}

/* The request (and an upload's whole body) goes to the editing process; the reply
 * comes back through conn_edit_reply. */
static void
conn_edit_send(struct conn *c)
{
	if ((c->edit_id = c->w->owner->edit_send(c->w, c->edit)) == 0) {
		conn_edit_unavailable(c);
		return;
	}
	/* The body has gone: the worker holds no copy while it waits. */
	free(c->edit->body);
	c->edit->body = NULL;
	c->state = ST_EDIT;
	c->deadline = now_ms() + EDIT_WAIT_MS;
}

/*
 * An editing request (gemini.c marked it): titan.c checks the certificate,
 * the parameters and the path (a refusal is the reply, sent before any byte
 * of a body is read); an upload's body is read next, within
 * server.upload_timeout, and a body that stops short is dropped with the
 * connection: only a whole body reaches the master.
 */
static void
conn_edit_begin(struct conn *c)
{
	struct edit_req *e = xcalloc(1, sizeof(*e));
	size_t take;

	if (titan_request(c->w->cfg, c->ssl, c->buf, c->len, e, &c->reply) == -1) {
		free(e);
		/* An upload refused here is an edit refused (60, 61: denied). */
		if (conn_metric_proto(c) == MP_TITAN)
			metrics_edit(c->reply.status == 60 || c->reply.status == 61 ?
			    ME_DENIED : ME_REFUSED);
		return;		/* the reply is set: ST_WRITE */
	}
	c->edit = e;
	if (e->op != CHAN_STORE) {
		conn_edit_send(c);
		return;
	}
	take = c->over < e->size ? c->over : e->size;
	memcpy(e->body, c->buf + c->len, take);
	e->got = take;
	c->state = ST_BODY;
	c->deadline = now_ms() + c->w->cfg->upload_timeout_ms;
}

/* Returns 1 when the whole body is read, 0 to wait, -1 closed. */
static int
conn_read_body(struct conn *c)
{
	struct edit_req *e = c->edit;

	while (e->got < e->size) {
		size_t want = e->size - e->got;
		int n = SSL_read(c->ssl, e->body + e->got,
		    want > INT_MAX ? INT_MAX : (int)want);

		if (n <= 0) {
			short w = ssl_want(c, n);

			if (w) {
				conn_wait(c, w);
				return 0;
			}
			ERR_clear_error();
			conn_close(c);	/* short: nothing is stored */
			return -1;
		}
		e->got += (size_t)n;
	}
	return 1;
}

void
conn_edit_reply(struct worker *w, uint32_t id, const struct chan_msg *m)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state != ST_EDIT || (m != NULL && c->edit_id != id))
			continue;
		event_del(&c->ev);
		if (m != NULL) {
			titan_reply(m, &c->reply);
			c->state = ST_WRITE;
			c->deadline = now_ms() + w->cfg->write_timeout_ms;
		} else {
			conn_edit_unavailable(c);
		}
		conn_step(c);
		if (m != NULL)
			return;
	}
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
		metrics_refused(c->w->mw, MR_MAX_PER_ADDRESS);
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
		if (c->need > 0) {
			/* Spartan: the data block, up to its content length. */
			if (c->len >= c->need) {
				c->len = c->need;
				return 1;
			}
			continue;
		}
		if (memchr(c->buf + old, '\n', (size_t)r) != NULL) {
			size_t line = (size_t)((unsigned char *)memchr(c->buf + old,
			    '\n', (size_t)r) - c->buf) + 1;
			long need;

			/* Spartan's data block follows its line (the need is
			 * bounded by SPARTAN_MAX_DATA, within the buffer). */
			if (c->proto == P_SPARTAN &&
			    (need = spartan_need(c->buf, line)) > (long)line) {
				if (c->len >= (size_t)need) {
					c->len = (size_t)need;
					return 1;
				}
				c->need = (size_t)need;
				continue;
			}
			/* Bytes after the first LF are not part of the request
			 * (a Titan upload's body starts there). */
			c->len = line;
			c->over = old + (size_t)r - c->len;
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
				if ((grown = conn_grow(c, GOPHER_MAX_REQUEST)) == NULL) {
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
			if (c->cap < conn_cap(c)) {
				if ((grown = conn_grow(c, conn_cap(c))) == NULL) {
					conn_fail(c, "out of memory");
					return;
				}
				c = grown;
			}
			/* Spartan and Nex are plain text only. */
			if (first == 0x16 && c->proto == P_GOPHER) {	/* a TLS handshake record */
				if ((c->ssl = tlsctx_new(c->w->tls)) == NULL ||
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
			metrics_handshake(c->w->mw, SSL_session_reused(c->ssl));
			c->state = ST_READ;
			c->deadline = c->start + c->w->cfg->request_timeout_ms;
			break;
		case ST_READ:
			if (conn_read(c) != 1)
				return;
			conn_respond(c);
			break;
		case ST_BODY:
			if (conn_read_body(c) != 1)
				return;
			conn_edit_send(c);
			break;
		case ST_EDIT:
			/* Only the deadline: the master's reply wakes it
			 * (conn_edit_reply). */
			conn_wait(c, 0);
			return;
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
conn_new(struct worker *w, int fd, int kind, int proxy, const struct sockaddr *sa,
    socklen_t salen)
{
	size_t cap = kind != KIND_GEMINI ? 0 : GEMINI_MAX_REQUEST;
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
	if (kind != KIND_GEMINI) {
		c->proto = kind == KIND_SPARTAN ? P_SPARTAN : kind == KIND_NEX ?
		    P_NEX : P_GOPHER;
		c->state = ST_PEEK;
		c->deadline = c->start + w->cfg->request_timeout_ms;
	} else {
		if ((c->ssl = tlsctx_new(w->tls)) == NULL || !SSL_set_fd(c->ssl, fd)) {
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
	metrics_open(w->mw, conn_kind(c), 1);
	return c;
}

/* Takes an accepted socket (fd is ours from here: closed on failure) and
 * starts the connection's first step. */
void
conn_accept(struct worker *w, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c;

	if ((c = conn_new(w, fd, l->kind, l->proxy, sa, salen)) == NULL) {
		log_warn("%s: out of memory, connection refused", l->name);
		close(fd);
		return;
	}
	/* Behind a proxy, the address to count comes with the header. */
	if (c->state != ST_PROXY && conn_admit(c) == -1)
		return;
	/* The client's first flight is often here already: no wait for it. */
	if (c->state == ST_PEEK)
		conn_wait(c, EV_READ);
	else
		conn_step(c);
}

/* At the worker's end: every connection still open is closed (and logged). */
void
conn_close_all(struct worker *w)
{
	while (w->conns != NULL)
		conn_close(w->conns);
}
