/*
 * worker.c: one worker process. It serves its slot's listening sockets from its
 * own libevent loop: accepts (conn.c carries each connection from there),
 * pauses while full, and ends on SIGTERM (drain, then exit) or SIGUSR2 (a
 * reload retired it: finish what is open, then exit).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "server.h"
#include "worker.h"

/* How long the shutdown waits for responses in flight. */
#define DRAIN_MS          2000
/* Connections accepted per wakeup of a listener: bounded so that one busy port
 * does not starve the connections already open. */
#define ACCEPT_BATCH      64
/* After EMFILE/ENFILE, accepting pauses this long instead of spinning. */
#define ACCEPT_BACKOFF_MS 100

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
		int fd;

		if (w->n_conns >= w->max_conns) {
			/* Full: new connections wait in the kernel's queue until
			 * one closes (counted once for each time it fills). */
			metrics_refused(w->mw, MR_MAX_CONNECTIONS);
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
		conn_accept(w, l, fd, &a.sa, alen);
	}
}

static void
conn_gone(struct worker *w)
{
	if (w->stopping || w->retiring) {
		if (w->n_conns == 0)
			event_base_loopbreak(w->base);
	} else if (w->paused && w->n_conns < w->max_conns && w->resume_ev != NULL &&
	    !event_pending(w->resume_ev, EV_TIMEOUT, NULL)) {
		w->paused = 0;
		listeners_enable(w, 1);
	}
}

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
worker_listen(struct worker *w, const struct wsock *socks, size_t n)
{
	w->n_ls = n;
	w->ls = xcalloc(n ? n : 1, sizeof(*w->ls));
	for (size_t i = 0; i < n; i++) {
		struct listener *l = &w->ls[i];

		l->kind = socks[i].kind;
		l->proxy = socks[i].proxy;
		l->w = w;
		l->fd = socks[i].fd;
		snprintf(l->name, sizeof(l->name), "%s", socks[i].name);
		event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
	}
	listeners_enable(w, 1);
}


/* Editing: frames from the editing process, each the reply to one connection's request. */
static void
chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct chan_msg m;
	size_t used;
	int r, broken;

	(void)what;
	broken = chan_fill(fd, &w->chan_in) == -1;
	while ((r = chan_unpack(w->chan_in.data, w->chan_in.len, CHAN_MAX, &m,
	    &used)) == 1) {
		conn_edit_reply(w, m.id, &m);
		chan_consume(&w->chan_in, used);
	}
	if (r == -1 || broken) {
		/* The master went away (or spoke nonsense): no reply will come. */
		event_del(w->chan_ev);
		if (w->chan_wev != NULL)
			event_del(w->chan_wev);
		close(w->chan_fd);
		w->chan_fd = -1;
		conn_edit_reply(w, 0, NULL);
	}
}

static void
chan_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)what;
	if (chan_flush(fd, &w->chan_out, &w->chan_off) == 0)
		event_add(w->chan_wev, NULL);
}

static uint32_t
edit_send(struct worker *w, const struct edit_req *e)
{
	uint32_t id;

	if (w->chan_fd == -1)
		return 0;
	if (++w->chan_next == 0)
		w->chan_next = 1;
	id = w->chan_next;
	titan_send(e, id, &w->chan_out);
	if (chan_flush(w->chan_fd, &w->chan_out, &w->chan_off) == 0)
		event_add(w->chan_wev, NULL);
	return id;
}

static const struct conn_owner owner = { conn_gone, edit_send };

/* One worker: its own event loop on its slot's sockets; returns its exit
 * status. The signals it handles are blocked by the caller and unblocked here,
 * once the loop can take them. */
int
worker_run(const struct generation *g, const struct wsock *socks, size_t n_socks,
    int id, const sigset_t *oldmask, const struct privs *p, struct rl_table *limits,
    struct sandbox_board *board, struct metrics *metrics, int chan_fd)
{
	const struct config *cfg = g->cfg;
	struct event_config *ec;
	struct worker w;
	sigset_t late;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.owner = &owner;
	w.cfg = cfg;
	w.site = g->site;
	w.tls = g->tls;
	w.max_conns = cfg->max_connections > 0 ? cfg->max_connections : 1024;
	w.chan_fd = chan_fd;
	/* Opened before the chroot and the change of user: the file may be
	 * outside the one and not writable by the other. */
	log_init(cfg->access_log, cfg->log_anonymise, id);
	log_set_json(cfg->log_json);
	/* SIGHUP is the master's; one sent to the process group must not end a
	 * worker (its default action). */
	signal(SIGHUP, SIG_IGN);
	if (privs_drop(p) == -1) {
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
	    (w.rl = ratelimit_new(limits, cfg->rate, cfg->burst, cfg->max_per_address,
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
	/* Counted only where someone reads the counts: with no metrics
	 * listener the request path does no atomic work at all. */
	if (cfg->n_metrics_listen > 0)
		w.mw = metrics_worker_new(metrics, id - 1);
	w.sig_term = evsignal_new(w.base, SIGTERM, stop_cb, &w);
	w.sig_int = evsignal_new(w.base, SIGINT, stop_cb, &w);
	w.sig_retire = evsignal_new(w.base, SIGUSR2, retire_cb, &w);
	w.resume_ev = evtimer_new(w.base, resume_cb, &w);
	if (w.chan_fd != -1) {
		evutil_make_socket_nonblocking(w.chan_fd);
		w.chan_ev = event_new(w.base, w.chan_fd, EV_READ | EV_PERSIST,
		    chan_cb, &w);
		w.chan_wev = event_new(w.base, w.chan_fd, EV_WRITE, chan_write_cb,
		    &w);
		if (w.chan_ev == NULL || w.chan_wev == NULL ||
		    event_add(w.chan_ev, NULL) == -1) {
			log_error("cannot watch the editing channel");
			rc = 1;
		}
	}
	if (w.sig_term == NULL || w.sig_int == NULL || w.sig_retire == NULL ||
	    w.resume_ev == NULL || event_add(w.sig_term, NULL) == -1 ||
	    event_add(w.sig_int, NULL) == -1 || event_add(w.sig_retire, NULL) == -1) {
		log_error("cannot set up signal handling");
		rc = 1;
	} else if (rc == 0) {
#ifdef KILNET_TEST_HOOKS
		/* Test only (tests/test_metrics.sh): a worker that takes
		 * KILNET_TEST_WORKER_DELAY_MS to start serving, so that a test
		 * sees /health while a slot has none. */
		if (getenv("KILNET_TEST_WORKER_DELAY_MS") != NULL) {
			long ms = atol(getenv("KILNET_TEST_WORKER_DELAY_MS"));
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
#endif
		worker_listen(&w, socks, n_socks);
		/* It holds all it serves now: from here on, only serving. */
		if (sandbox_enter(cfg, board, id - 1, w.base) == -1)
			rc = 1;
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (rc == 0) {
		metrics_serving(metrics, id - 1);
		event_base_dispatch(w.base);
	}

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
		for (size_t i = 0; i < n_socks; i++)
			close(socks[i].fd);
	if (w.n_conns > 0)
		log_info("closing %d connection%s still open", w.n_conns,
		    w.n_conns == 1 ? "" : "s");
	w.stopping = w.retiring = 0;	/* no loopbreak from the closes below */
	conn_close_all(&w);
	if (w.sig_term)
		event_free(w.sig_term);
	if (w.sig_int)
		event_free(w.sig_int);
	if (w.sig_retire)
		event_free(w.sig_retire);
	if (w.resume_ev)
		event_free(w.resume_ev);
	if (w.chan_ev)
		event_free(w.chan_ev);
	if (w.chan_wev)
		event_free(w.chan_wev);
	if (w.chan_fd != -1)
		close(w.chan_fd);
	buf_free(&w.chan_out);
	buf_free(&w.chan_in);
	ratelimit_free(w.rl);
	metrics_worker_free(w.mw);
	free(w.ls);
	event_base_free(w.base);
	return rc;
}
