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

#include "server.h"

struct worker;
struct conn;

struct listener {
	struct event      ev;
	struct worker    *w;
	int               fd;
	int               kind;         /* enum proto_kind */
	int               proxy;        /* a PROXY protocol header comes first */
	char              name[64];     /* "127.0.0.1:1965", for messages */
};

/* What a connection asks of the worker that carries it. The worker hands
 * these in (worker_run), so that conn.c calls no function of worker.c's:
 * the worker drives the connections, never the other way round. */
struct conn_owner {
	/* A connection closed: the worker may accept again, or end. */
	void     (*gone)(struct worker *);
	/* Queues an editing request to the editing process; its id, or 0
	 * when there is none to ask. */
	uint32_t (*edit_send)(struct worker *, const struct edit_req *);
};

struct worker {
	const struct conn_owner *owner;
	const struct config  *cfg;
	const struct site    *site;
	struct tlsctx           *tls;
	struct ratelimit     *rl;        /* NULL: no limits configured */
	struct metrics_worker *mw;       /* its counters (NULL: none) */
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
	/* Editing: the socketpair to the editing process (-1: none), frames queued to
	 * it and read from it, and the id of the next request. */
	int                   chan_fd;
	struct event         *chan_ev, *chan_wev;
	struct buf            chan_out, chan_in;
	size_t                chan_off;
	uint32_t              chan_next;
};

/* conn.c: takes an accepted socket (closed on failure) and starts serving it. */
void  conn_accept(struct worker *, const struct listener *, int fd,
	    const struct sockaddr *, socklen_t);
void  conn_close_all(struct worker *);
/* conn.c: the editing process's reply to connection id's editing request arrived
 * (m NULL: the master is gone, every request fails). */
void  conn_edit_reply(struct worker *, uint32_t id, const struct chan_msg *m);

#endif
