/*
 * worker.h: what the worker's two files share, and nothing else includes: a
 * worker (worker.c: its event loop, listeners and signals) and the connections
 * it carries (conn.c). The master hands a worker its sockets as struct wsock.
 */
#ifndef KILNET_WORKER_H
#define KILNET_WORKER_H

#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "kilnet.h"

struct worker;
struct conn;

struct listener {
	struct event      ev;
	struct worker    *w;
	int               fd;
	int               gopher;       /* 0: Gemini (TLS), 1: Gopher (autodetect) */
	int               proxy;        /* a PROXY protocol header comes first */
	char              name[64];     /* "127.0.0.1:1965", for messages */
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

/* conn.c: takes an accepted socket (closed on failure) and starts serving it. */
void  conn_accept(struct worker *, const struct listener *, int fd,
	    const struct sockaddr *, socklen_t);
void  conn_close_all(struct worker *);
/* worker.c: a connection closed; the worker may accept again, or end. */
void  worker_conn_gone(struct worker *);

#endif
