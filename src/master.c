/*
 * master.c: the master process. It binds the listeners (listeners.c), forks
 * one worker per slot (worker.c), and then only watches: it reloads on SIGHUP
 * (a whole new generation of config, site and TLS, then new workers, while the
 * old ones finish what they have), forwards SIGTERM/SIGINT, reaps the workers
 * and restarts one that died. Each worker has a socketpair to it, on which
 * an editor's upload arrives (checked for size and editor by the worker, see
 * titan.c) to be stored and served (editor.c): the one thing the master
 * takes from a worker, and only from an editor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kilnet.h"

/* After close_notify a connection may linger this long (conn.c). */
#define LINGER_MS         1000
/* A worker that dies sooner than this after its start is not restarted: it
 * would die again. */
#define RESPAWN_MIN_MS    1000
/* The master kills workers that have not stopped this long after SIGTERM
 * (the workers' drain, 2 s, and a margin). */
#define STOP_GRACE_MS     5000
/* A retired worker (after a reload) finishes its connections, each bounded by
 * its own deadlines; past those and this margin the master kills it. */
#define RETIRE_GRACE_MS   3000
/* The master's longest sleep between checks of its deadlines. */
#define MASTER_TICK_MS    250

struct child {
	pid_t  pid;
	int    slot;
	int    retiring;     /* 0, 1: told to retire, 2: SIGUSR2 sent */
	long   started;
	long   retire_by;    /* retiring: killed if still running then */
	int    chan;         /* the master's end of its socketpair; -1: none */
	struct buf in, out;  /* frames read from it, and replies to write */
	size_t off;
};

struct master {
	struct server_gen  *g;
	server_reload_fn    reload;
	void               *reload_arg;
	const sigset_t     *oldmask;
	struct privs        privs;
	struct lsocks       ls;
	struct rl_table    *limits;  /* shared by every worker, kept across reloads */
	struct sandbox_board *board; /* where a worker's filter names a call */
	struct keyproc     *keys;    /* the key process (keyproc.c) */
	int                 n_slots;
	struct child       *ch;
	size_t              n_ch, cap_ch;
	int                 stopping, rc;
	int                 installed;  /* a new generation: swap the workers */
	int                 sigfd;
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

/* Forks the worker for one slot. Returns 0 (in the master, or in the child
 * with m->is_child set once the worker is done) or -1. */
static void
child_forget(struct child *c)
{
	if (c->chan != -1)
		close(c->chan);
	c->chan = -1;
	buf_free(&c->in);
	buf_free(&c->out);
	c->off = 0;
}

static int
spawn(struct master *m, int slot)
{
	int sv[2], kfd;
	pid_t pid;

	if (m->n_ch == m->cap_ch) {
		m->cap_ch = m->cap_ch ? 2 * m->cap_ch : 8;
		m->ch = xrealloc(m->ch, m->cap_ch * sizeof(*m->ch));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("socketpair: %s", strerror(errno));
		sv[0] = sv[1] = -1;
	}
	kfd = keyproc_worker_new(m->keys);
	if ((pid = fork()) == -1) {
		keyproc_worker_started(m->keys, -1);
		log_error("fork: %s", strerror(errno));
		if (sv[0] != -1) {
			close(sv[0]);
			close(sv[1]);
		}
		return -1;
	}
	if (pid == 0) {
		struct wsock *socks;
		size_t n;

		/* Only this slot's sockets stay open in the worker, and only
		 * its own end of its own channel. */
		n = lsocks_take(&m->ls, slot, m->n_slots, &socks);
		lsocks_free(&m->ls);
		for (size_t k = 0; k < m->n_ch; k++)
			child_forget(&m->ch[k]);
		free(m->ch);
		m->ch = NULL;
		m->n_ch = m->cap_ch = 0;
		if (m->sigfd != -1)
			close(m->sigfd);
		if (sv[0] != -1)
			close(sv[0]);
		/* Its own socket to the key process, and no other. */
		keyproc_child(m->keys, kfd);
		m->keys = NULL;
		m->is_child = 1;
		m->child_rc = worker_run(m->g, socks, n, slot + 1, m->oldmask,
		    &m->privs, m->limits, m->board, sv[1]);
		free(socks);
		return 0;
	}
	keyproc_worker_started(m->keys, pid);
	if (sv[1] != -1) {
		close(sv[1]);
		fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	}
	memset(&m->ch[m->n_ch], 0, sizeof(m->ch[m->n_ch]));
	m->ch[m->n_ch].chan = sv[0];
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
	lsocks_free(&m->ls);
	for (size_t k = 0; k < m->n_ch; k++)
		kill(m->ch[k].pid, SIGTERM);
}

/* A connection's longest life in an old worker: how long it may finish. */
static long
retire_bound(const struct config *old)
{
	return (old->handshake_timeout_ms > old->request_timeout_ms ?
	    old->handshake_timeout_ms : old->request_timeout_ms) +
	    (old->upload_timeout_ms > old->write_timeout_ms ?
	    old->upload_timeout_ms : old->write_timeout_ms) + LINGER_MS +
	    RETIRE_GRACE_MS;
}

/* A new generation replaces the one serving: the workers are swapped at the
 * loop's next turn (master_swap). -1: it cannot be (and ng is freed). */
static int
master_install(struct master *m, struct server_gen *ng)
{
	long bound = retire_bound(m->g->cfg);
	struct diag d = { 0 };
	struct privs np;

	/* The new keys first: a key that does not match its certificate fails
	 * the reload before anything else changes. */
	if (privs_resolve(ng->cfg, &np) == -1 ||
	    keyproc_reload(m->keys, ng->tls, &np, &d) == -1 ||
	    lsocks_build(&m->ls, ng->cfg, slots_for(ng->cfg)) == -1) {
		for (size_t i = 0; i < d.n; i++)
			log_error("%s", d.msgs[i]);
		diag_clear(&d);
		server_gen_free(ng);
		log_error("reload failed: still serving the previous site");
		return -1;
	}
	m->n_slots = slots_for(ng->cfg);
	tls_keep_sessions(ng->tls, m->g->tls);
	server_gen_free(m->g);
	*m->g = *ng;
	memset(ng, 0, sizeof(*ng));
	m->privs = np;
	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].retiring)
			continue;	/* retired by an earlier reload */
		m->ch[k].retiring = 1;
		m->ch[k].retire_by = now_ms() + bound;
	}
	m->installed = 1;
	return 0;
}

/* After master_install: the new workers first (the sockets are shared, so
 * whichever accepts a queued connection serves it, and none waits for a
 * worker to start), then the old ones are told to finish. */
static void
master_swap(struct master *m)
{
	m->installed = 0;
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

/* SIGHUP: a whole new generation, or (on any error) none and the old serves. */
static void
master_reload(struct master *m)
{
	struct server_gen ng;

	log_info("signal %d: reloading %s", SIGHUP, m->g->cfg->file);
	if (m->reload(m->reload_arg, NULL, &ng, NULL) == -1) {
		log_error("reload failed: still serving the previous site");
		return;
	}
	if (master_install(m, &ng) == 0)
		master_swap(m);
}

static void
install_cb(void *arg, struct server_gen *ng)
{
	master_install(arg, ng);
}

/* Frames from worker k's channel: each an editor's request, answered in
 * turn (a store builds, writes and installs a generation; the new workers
 * start after, in master_wait, so m->ch stays as it is here). */
static void
master_chan(struct master *m, size_t k, short revents)
{
	struct child *c = &m->ch[k];
	struct editor_env env;
	struct chan_msg msg;
	size_t used, max;
	int r = 0, broken = 0;
	const char *pause;

	if (revents & POLLOUT)
		broken = chan_flush(c->chan, &c->out, &c->off) == -1;
	if (!broken && (revents & (POLLIN | POLLHUP | POLLERR)))
		broken = chan_fill(c->chan, &c->in) == -1;
	memset(&env, 0, sizeof(env));
	env.build = m->reload;
	env.build_arg = m->reload_arg;
	env.install = install_cb;
	env.install_arg = m;
	if ((pause = getenv("KILNET_TEST_STORE_DELAY_MS")) != NULL)
		env.pause_ms = atol(pause);
	/* A frame is at most an upload the worker has checked for size: a
	 * worker that sends more is broken, and not given the memory. */
	max = (size_t)m->g->cfg->max_upload + 2 * GEMINI_MAX_REQUEST;
	/* Bytes of a frame still coming stay for the next read. */
	while (!broken && (r = chan_unpack(c->in.data, c->in.len, max, &msg,
	    &used)) == 1) {
		env.cfg = m->g->cfg;
		env.site = m->g->site;
		editor_handle(&env, &msg, &c->out);
		chan_consume(&c->in, used);
	}
	if (r == -1)
		broken = 1;
	/* After a store, the reply waits for the new workers (master_wait):
	 * the editor's next request must find the new site. */
	if (!broken && c->out.len > 0 && !m->installed)
		broken = chan_flush(c->chan, &c->out, &c->off) == -1;
	if (broken) {
		/* Its requests cannot be answered: a new worker takes the slot. */
		if (r == -1 || c->in.len > 0)
			log_error("worker %d (pid %d): a malformed editing request; "
			    "replacing the worker", c->slot + 1, (int)c->pid);
		child_forget(c);
		if (!c->retiring && !m->stopping) {
			c->retiring = 2;
			c->retire_by = now_ms() + retire_bound(m->g->cfg);
			kill(c->pid, SIGUSR2);
		}
	}
}

static void
master_reap(struct master *m)
{
	struct child c;
	char call[64];
	pid_t pid;
	size_t k;
	int st, r;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if ((r = keyproc_reaped(m->keys, pid, st)) != 0) {
			/* -1: it cannot be restarted (logged) */
			if (r == -1 && !m->stopping) {
				m->rc = 1;
				master_stop(m, 0);
			}
			continue;
		}
		for (k = 0; k < m->n_ch && m->ch[k].pid != pid; k++)
			;
		if (k == m->n_ch)
			continue;
		keyproc_worker_gone(m->keys, pid);
		c = m->ch[k];
		child_forget(&m->ch[k]);
		m->ch[k] = m->ch[--m->n_ch];
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && (m->stopping || c.retiring))
			continue;
		if (sandbox_violation(m->board, c.slot, pid, call, sizeof(call)))
			log_error("worker %d (pid %d): sandbox violation: system call %s "
			    "is not allowed (server.sandbox); the worker was stopped",
			    c.slot + 1, (int)pid, call);
		else if (WIFSIGNALED(st))
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

/*
 * Waits for a signal (one of wait_set, blocked) or a worker's frame, up to
 * ts; frames are answered here. Returns the signal taken, or 0. The signals
 * come through a signalfd, so that one poll covers the channels too; without
 * one, sigtimedwait as before, and no editing.
 */
static int
master_wait(struct master *m, const sigset_t *wait_set, const struct timespec *ts)
{
	struct signalfd_siginfo ssi;
	struct pollfd *fds;
	size_t n = 0, *idx;
	siginfo_t si;
	int sig = 0;

	if (m->sigfd == -1)
		return sigtimedwait(wait_set, &si, ts) > 0 ? si.si_signo : 0;
	fds = xcalloc(m->n_ch + 1, sizeof(*fds));
	idx = xcalloc(m->n_ch + 1, sizeof(*idx));
	fds[n].fd = m->sigfd;
	fds[n++].events = POLLIN;
	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].chan == -1)
			continue;
		idx[n] = k;
		fds[n].fd = m->ch[k].chan;
		fds[n++].events = POLLIN | (m->ch[k].out.len > 0 ? POLLOUT : 0);
	}
	if (poll(fds, n, (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000)) > 0) {
		for (size_t i = 1; i < n; i++)
			if (fds[i].revents != 0)
				master_chan(m, idx[i], fds[i].revents);
		if (m->installed && !m->is_child && !m->stopping) {
			master_swap(m);
			for (size_t k = 0; k < m->n_ch && !m->is_child; k++)
				if (m->ch[k].chan != -1 && m->ch[k].out.len > 0 &&
				    chan_flush(m->ch[k].chan, &m->ch[k].out,
				    &m->ch[k].off) == -1)
					child_forget(&m->ch[k]);
		}
		if (!m->is_child && (fds[0].revents & POLLIN) &&
		    read(m->sigfd, &ssi, sizeof(ssi)) == (ssize_t)sizeof(ssi))
			sig = (int)ssi.ssi_signo;
	}
	free(fds);
	free(idx);
	return sig;
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
		long now;
		int sig;

		if (!m->stopping) {
			ensure_workers(m, 1);
			if (m->is_child)
				return;
		}
		if (m->stopping && m->n_ch == 0)
			break;
		sig = master_wait(m, wait_set, &ts);
		if (m->is_child)
			return;		/* a worker forked there, now done */
		if (m->installed && !m->stopping) {
			master_swap(m);
			if (m->is_child)
				return;
		}
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

int
server_run(struct server_gen *g, server_reload_fn reload, void *arg)
{
	sigset_t block, wait_set, oldmask;
	struct diag d = { 0 };
	struct master m;

	/* A client that goes away mid-write costs its connection, not the
	 * process (SSL_write writes with write(2), which raises SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	memset(&m, 0, sizeof(m));
	m.g = g;
	m.reload = reload;
	m.reload_arg = arg;
	m.oldmask = &oldmask;
	if (privs_resolve(g->cfg, &m.privs) == -1 ||
	    (m.limits = ratelimit_table_new()) == NULL ||
	    (m.board = sandbox_board_new()) == NULL ||
	    lsocks_build(&m.ls, g->cfg, slots_for(g->cfg)) == -1) {
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		return 1;
	}
	/* The keys go to the key process before anything else forks. */
	if ((m.keys = keyproc_start(g->tls, &m.privs, &d)) == NULL) {
		diag_print(&d, "kilnet: ");
		diag_clear(&d);
		lsocks_free(&m.ls);
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		return 1;
	}
	m.n_slots = slots_for(g->cfg);
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
	m.sigfd = signalfd(-1, &wait_set, SFD_CLOEXEC | SFD_NONBLOCK);
	master_run(&m, &wait_set);
	if (m.is_child) {
		/* A worker's copies: its sockets and children went at the fork. */
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		return m.child_rc;
	}
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (m.sigfd != -1)
		close(m.sigfd);
	for (size_t k = 0; k < m.n_ch; k++)
		child_forget(&m.ch[k]);
	lsocks_free(&m.ls);
	/* Last: the workers' drain may still have asked for signatures. */
	keyproc_stop(m.keys);
	ratelimit_table_free(m.limits);
	sandbox_board_free(m.board);
	free(m.ch);
	log_info("stopped");
	return m.rc;
}
