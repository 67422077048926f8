/*
 * master.c: the master process. It binds the listeners (listeners.c), forks
 * one worker per slot (worker.c), and then only watches: it reloads on SIGHUP
 * (a whole new generation of config, site and TLS, then new workers, while the
 * old ones finish what they have), forwards SIGTERM/SIGINT, reaps the workers
 * and restarts one that died. It parses only the operator's config: every
 * site is built by an unprivileged child (build.c) and taken as site_wire
 * records, so that nothing an editor wrote is parsed as root. Each
 * generation has an editing process (editor.c), forked before its workers;
 * each worker has a socketpair to it, whose other end the master hands over
 * (SCM_RIGHTS) and does not keep. From the editing process the master takes
 * one fixed-size word, "stored" (struct ed_ctl): it then builds and swaps in
 * a new generation, as on SIGHUP, and answers "live". What operators watch
 * the master writes into the counters all processes share (metrics.c): the
 * worker serving each slot, restarts, reloads and why the last one failed;
 * the metrics process (metricsproc.c) serves them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* A worker that dies sooner than this after its start is not restarted: it
 * would die again. */
#define RESPAWN_MIN_MS    1000
/* The master kills workers that have not stopped this long after SIGTERM
 * (the workers' drain, 2 s, and a margin). */
#define STOP_GRACE_MS     5000
/* A retired worker (after a reload) finishes its connections, each bounded by
 * its own deadlines; past those and this margin the master kills it. */
#define RETIRE_GRACE_MS   3000
/* How long the first build waits for the store process's first read. */
#define STORE_READY_MS    10000
/* A store process that died at once is started again after this. */
#define STORE_AGAIN_MS    5000
/* The master's longest sleep between checks of its deadlines. */
#define MASTER_TICK_MS    250

struct child {
	pid_t  pid;
	int    slot;
	int    retiring;     /* 0, 1: told to retire, 2: SIGUSR2 sent */
	long   started;
	long   retire_by;    /* retiring: killed if still running then */
};

/* An editing process: one per generation; the last one not retired is the
 * current generation's. */
struct edproc {
	pid_t  pid;
	int    ctl;          /* SOCK_SEQPACKET to it */
	int    retired;      /* a newer generation serves */
	long   started;
};

/* A store the editing process told of, waiting to go live. */
struct livewait {
	pid_t     ed;
	uint32_t  tag;
	int       in_build;  /* the build under way started after it */
};

struct master {
	struct generation  *g;
	server_reload_fn    reload;
	void               *reload_arg;
	const sigset_t     *oldmask;
	struct privs        privs;
	struct listen_set       ls;
	struct rl_table    *limits;  /* shared by every worker, kept across reloads */
	struct sandbox_board *board; /* where a worker's filter names a call */
	struct keyproc     *keys;    /* the key process (keyproc.c) */
	struct metrics     *metrics; /* the shared counters (metrics.c) */
	struct metricsproc *mproc;   /* the metrics process (metricsproc.c) */
	char                reload_why[200];  /* a reload's first error */
	int                 n_slots;
	struct child       *ch;
	size_t              n_ch, cap_ch;
	int                 stopping, rc;
	int                 installed;  /* a new generation: swap the workers */
	int                 sigfd;
	long                stop_at;
	int                 is_child, child_rc;   /* in a forked worker */
	struct edproc      *ed;
	size_t              n_ed;
	struct livewait    *lw;
	size_t              n_lw;
	pid_t               store_pid; /* the store process (server.store); 0: none */
	int                 store_ctl; /* SOCK_SEQPACKET to it */
	long                store_started, store_again;
	struct build        build;     /* the next generation's site */
	int                 building, rebuild;
	struct generation   next;      /* its config, while it builds */
};

/*
 * The state folder belongs to the editing process's user (server.user when
 * started as root): made when missing, and given to that user when it is
 * not theirs (a folder of an older kilnet, whose master stored as root).
 * Nothing in it is opened here but folders.
 */
static void
chown_tree(int dfd, uid_t uid, gid_t gid, int depth)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = fd != -1 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dp == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		fchownat(dirfd(dp), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
		if (depth < 8 && (sub = openat(dirfd(dp), de->d_name, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
			chown_tree(sub, uid, gid, depth + 1);
			close(sub);
		}
	}
	closedir(dp);
}

static int
state_prepare(const struct config *cfg, const struct privs *p)
{
	struct stat st;
	int fd;

	if (cfg->state_dir == NULL)
		return 0;
	if (stat(cfg->state_dir, &st) == -1) {
		if (cfg->n_editors == 0)
			return 0;
		if (mkdir(cfg->state_dir, 0700) == -1 && errno != EEXIST) {
			log_error("cannot make the state folder %s (server.state_dir): %s",
			    cfg->state_dir, strerror(errno));
			return -1;
		}
		if (stat(cfg->state_dir, &st) == -1)
			return -1;
	}
	if (!p->drop || (st.st_uid == p->uid && st.st_gid == p->gid))
		return 0;
	if ((fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fchown(fd, p->uid, p->gid) == -1) {
		log_error("cannot give the state folder %s to %s: %s", cfg->state_dir,
		    p->user, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	chown_tree(fd, p->uid, p->gid, 0);
	close(fd);
	return 0;
}

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
/* The current generation's editing process, or NULL (editing is off). */
static struct edproc *
editor_current(struct master *m)
{
	for (size_t i = m->n_ed; i-- > 0;)
		if (!m->ed[i].retired)
			return &m->ed[i];
	return NULL;
}

static void
editor_tell(struct edproc *e, uint32_t type, uint32_t tag, int fd)
{
	struct ed_ctl c = { type, tag };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, sizeof(c) };
	struct msghdr mh;
	struct cmsghdr *cm;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	}
	if (sendmsg(e->ctl, &mh, MSG_NOSIGNAL) == -1)
		log_warn("editing process (pid %d): %s", (int)e->pid, strerror(errno));
}

static void master_reload(struct master *m, const char *why);

/* A channel between editing process e and the store process: one end to
 * each (SCM_RIGHTS); the master keeps neither. */
static void
store_link(struct master *m, struct edproc *e)
{
	int sv[2];

	if (m->store_pid <= 0 || e->retired)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("socketpair: %s", strerror(errno));
		return;
	}
	editor_tell(e, ED_STORE, 0, sv[0]);
	{
		struct edproc st = { m->store_pid, m->store_ctl, 0, 0 };

		editor_tell(&st, ST_EDITOR, 0, sv[1]);
	}
	close(sv[0]);
	close(sv[1]);
}

/* In a new editing or store process: every descriptor but its channel to
 * the master (ctl) closed, the master's tables let go, the signal mask as
 * it was before the master's. */
static void
helper_child(struct master *m, int ctl)
{
	metricsproc_child(m->mproc);
	m->mproc = NULL;
	fd_close_all_but(&ctl, 1);
	m->keys = NULL;	/* its descriptors went just now */
	free(m->ch);
	m->ch = NULL;
	m->n_ch = m->cap_ch = 0;
	free(m->ed);
	m->ed = NULL;
	m->n_ed = 0;
	free(m->lw);
	m->lw = NULL;
	m->n_lw = 0;
	m->store_pid = 0;
	buf_free(&m->build.in);
	generation_free(&m->next);
	sigprocmask(SIG_SETMASK, m->oldmask, NULL);
	m->is_child = 1;
}

/* Forks the current generation's editing process (none when no editor is
 * configured). 0 in the master, or in the child with m->is_child set. */
static int
editor_spawn(struct master *m)
{
	int sv[2];
	pid_t pid;

	if (m->g->cfg->n_editors == 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1) {
		log_error("cannot start the editing process: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		helper_child(m, sv[1]);
		m->child_rc = editor_main(m->g->cfg, m->g->site, &m->privs, sv[1]);
		return 0;
	}
	close(sv[1]);
	m->ed = xrealloc(m->ed, (m->n_ed + 1) * sizeof(*m->ed));
	m->ed[m->n_ed].pid = pid;
	m->ed[m->n_ed].ctl = sv[0];
	m->ed[m->n_ed].retired = 0;
	m->ed[m->n_ed].started = now_ms();
	m->n_ed++;
	log_info("editing process started (pid %d)", (int)pid);
	store_link(m, &m->ed[m->n_ed - 1]);
	return 0;
}

/*
 * The store process (server.store): forked at start, before the first build
 * (which waits for its first read of etcd, store_ready), and again if it
 * dies. It takes from the master only channels to the editing processes;
 * the master takes from it fixed-size words: ready, changed (a reload).
 */
static int
store_spawn(struct master *m)
{
	int sv[2];
	pid_t pid;

	if (m->g->cfg->n_store_etcd == 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1) {
		log_error("cannot start the store process: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		helper_child(m, sv[1]);
		m->child_rc = store_main(m->g->cfg, &m->privs, sv[1]);
		return 0;
	}
	close(sv[1]);
	m->store_pid = pid;
	m->store_ctl = sv[0];
	m->store_started = now_ms();
	log_info("store process started (pid %d): etcd at %s%s", (int)pid,
	    m->g->cfg->store_etcd[0], m->g->cfg->n_store_etcd > 1 ? " and others" : "");
	for (size_t k = 0; k < m->n_ed; k++)
		store_link(m, &m->ed[k]);
	return 0;
}

static void
store_stop(struct master *m)
{
	if (m->store_pid <= 0)
		return;
	kill(m->store_pid, SIGTERM);
	waitpid(m->store_pid, NULL, 0);
	close(m->store_ctl);
	m->store_pid = 0;
}

/* Its first read of etcd (or its word that etcd is not there), waited for
 * up to STORE_READY_MS: the first site is built from the copy it made. */
static void
store_ready(struct master *m)
{
	long until = now_ms() + STORE_READY_MS;
	struct pollfd p = { m->store_ctl, POLLIN, 0 };
	struct ed_ctl c;

	while (m->store_pid > 0 && now_ms() < until) {
		if (poll(&p, 1, (int)(until - now_ms())) <= 0)
			continue;
		if (recv(m->store_ctl, &c, sizeof(c), 0) != (ssize_t)sizeof(c))
			break;
		if (c.type == ST_READY)
			return;
	}
	log_warn("the store process said nothing within %d ms: serving the copy "
	    "in %s", STORE_READY_MS, m->g->cfg->state_dir);
}

/* The store process's word: "changed" (etcd holds another dataset or
 * capsule file): a reload. */
static void
store_heard(struct master *m)
{
	struct ed_ctl c;
	ssize_t n = recv(m->store_ctl, &c, sizeof(c), MSG_DONTWAIT);

	if (n == (ssize_t)sizeof(c) && c.type == ST_CHANGED)
		master_reload(m, "etcd changed (server.store)");
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
	sv[0] = sv[1] = -1;
	if (editor_current(m) != NULL &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
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
		n = listeners_take(&m->ls, slot, m->n_slots, &socks);
		listeners_free(&m->ls);
		for (size_t k = 0; k < m->n_ed; k++)
			close(m->ed[k].ctl);
		free(m->ed);
		m->ed = NULL;
		m->n_ed = 0;
		free(m->lw);
		m->lw = NULL;
		m->n_lw = 0;
		if (m->build.fd != -1)
			close(m->build.fd);
		if (m->store_pid > 0)
			close(m->store_ctl);
		m->store_pid = 0;
		buf_free(&m->build.in);
		generation_free(&m->next);
		/* The seed dataset stays in the master (the editing process of a
		 * later restart needs it); a worker serves the site only. */
		network_free(&m->g->cfg->net);
		malloc_trim(0);
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
		metricsproc_child(m->mproc);
		m->mproc = NULL;
		m->is_child = 1;
		m->child_rc = worker_run(m->g, socks, n, slot + 1, m->oldmask,
		    &m->privs, m->limits, m->board, m->metrics, sv[1]);
		free(socks);
		return 0;
	}
	keyproc_worker_started(m->keys, pid);
	metrics_worker_started(m->metrics, slot, pid);
	if (sv[1] != -1) {
		close(sv[1]);
		/* The editing process's end goes to it; the master keeps none. */
		editor_tell(editor_current(m), ED_WORKER, 0, sv[0]);
		close(sv[0]);
	}
	memset(&m->ch[m->n_ch], 0, sizeof(m->ch[m->n_ch]));
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
	listeners_free(&m->ls);
	for (size_t k = 0; k < m->n_ch; k++)
		kill(m->ch[k].pid, SIGTERM);
	for (size_t k = 0; k < m->n_ed; k++)
		kill(m->ed[k].pid, SIGTERM);
	if (m->building) {
		build_cancel(&m->build);
		generation_free(&m->next);
		m->building = 0;
	}
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

/* A reload that did not happen: said, and counted with its first error (the
 * operator's config, a key, a port), which /health gives. */
static void
reload_failed(struct master *m)
{
	char why[sizeof(m->reload_why)];

	snprintf(why, sizeof(why), "%s", m->reload_why[0] != '\0' ? m->reload_why :
	    "see the log");
	log_hold_error(NULL, 0);
	log_error("reload failed: still serving the previous site");
	metrics_reload(m->metrics, 0, why);
}

/* A new generation replaces the one serving: the workers are swapped at the
 * loop's next turn (master_swap). -1: it cannot be (and ng is freed). */
static int
master_install(struct master *m, struct generation *ng)
{
	long bound = retire_bound(m->g->cfg);
	struct diag d = { 0 };
	struct privs np;

	/* The new keys first: a key that does not match its certificate fails
	 * the reload before anything else changes. */
	if (privs_resolve(ng->cfg, &np) == -1 ||
	    keyproc_reload(m->keys, ng->tls, &np, &d) == -1 ||
	    listeners_build(&m->ls, ng->cfg, slots_for(ng->cfg)) == -1 ||
	    metricsproc_reload(m->mproc, ng->cfg, &np) == -1) {
		for (size_t i = 0; i < d.n; i++)
			log_error("%s", d.msgs[i]);
		diag_clear(&d);
		generation_free(ng);
		reload_failed(m);
		return -1;
	}
	m->n_slots = slots_for(ng->cfg);
	metrics_slots(m->metrics, m->n_slots);
	tlsctx_keep_sessions(ng->tls, m->g->tls);
	generation_free(m->g);
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

/* The new workers first (the sockets are shared, so whichever accepts a
 * queued connection serves it, and none waits for a worker to start), then
 * the ones marked retiring are told to finish (SIGUSR2). */
static void
start_then_retire(struct master *m)
{
	ensure_workers(m, 0);
	if (m->is_child)
		return;
	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].retiring == 1) {
			kill(m->ch[k].pid, SIGUSR2);
			m->ch[k].retiring = 2;
		}
	}
}

/* The stores the build that ended was for: told ED_LIVE or ED_FAILED. */
static void
answer_stores(struct master *m, uint32_t word)
{
	for (size_t i = 0; i < m->n_lw;) {
		if (!m->lw[i].in_build) {
			i++;
			continue;
		}
		for (size_t k = 0; k < m->n_ed; k++)
			if (m->ed[k].pid == m->lw[i].ed)
				editor_tell(&m->ed[k], word, m->lw[i].tag, -1);
		m->lw[i] = m->lw[--m->n_lw];
	}
}

/* After master_install: the new generation's editing process, then its
 * workers (the sockets are shared, so whichever accepts a queued connection
 * serves it, and none waits for a worker to start), then the old ones are
 * told to finish; the stores that this generation serves are live. */
static void
master_swap(struct master *m)
{
	struct edproc *old = editor_current(m);
	size_t n_old = m->n_ed;

	m->installed = 0;
	if (old != NULL)
		old->retired = 1;
	for (size_t k = 0; k < n_old; k++)
		m->ed[k].retired = 1;
	if (editor_spawn(m) == -1 || m->is_child)
		return;
	start_then_retire(m);
	if (m->is_child)
		return;
	/* The old editing processes answer what they have, then end. */
	for (size_t k = 0; k < n_old; k++)
		editor_tell(&m->ed[k], ED_RETIRE, 0, -1);
	answer_stores(m, ED_LIVE);
	log_hold_error(NULL, 0);
	log_set_json(m->g->cfg->log_json);
	metrics_reload(m->metrics, 1, NULL);
	metrics_members(m->metrics, search_members(m->g->site->search));
	log_info("reloaded: %zu pages (%zu Gemini, %zu Gopher), %d worker%s",
	    m->g->site->n_gemini + m->g->site->n_gopher, m->g->site->n_gemini,
	    m->g->site->n_gopher, m->n_slots, m->n_slots == 1 ? "" : "s");
}

/*
 * SIGHUP, or a store: the new generation's config (parsed here: the
 * operator's files), then its site from the builder, awaited in the loop
 * (master_built). One build at a time; asked again meanwhile, another
 * follows it.
 */
static void
master_reload(struct master *m, const char *why)
{
	struct privs np;

	if (m->building) {
		m->rebuild = 1;
		return;
	}
	m->rebuild = 0;
	log_hold_error(m->reload_why, sizeof(m->reload_why));
	log_info("%s: reloading %s", why, m->g->cfg->file);
	for (size_t i = 0; i < m->n_lw; i++)
		m->lw[i].in_build = 1;
	if (m->reload(m->reload_arg, &m->next) == -1 ||
	    privs_resolve(m->next.cfg, &np) == -1 ||
	    build_start(&m->build, m->next.cfg, &np, 1) == -1) {
		generation_free(&m->next);
		reload_failed(m);
		answer_stores(m, ED_FAILED);
		return;
	}
	m->building = 1;
}

/* The builder is done: the generation is installed, or none and the old
 * serves (and the stores waiting are told it failed). */
static void
master_built(struct master *m, struct site *site)
{
	struct diag d = { 0 };

	m->building = 0;
	if (site != NULL) {
		m->next.site = site;
		if ((m->next.tls = tlsctx_setup(m->next.cfg, &d)) == NULL) {
			for (size_t i = 0; i < d.n; i++)
				log_error("%s", d.msgs[i]);
		}
		diag_clear(&d);
	}
	if (site == NULL || m->next.tls == NULL) {
		generation_free(&m->next);
		reload_failed(m);
		answer_stores(m, ED_FAILED);
	} else if (master_install(m, &m->next) == 0) {
		master_swap(m);
		if (m->is_child)
			return;
	}
	if (m->rebuild || m->n_lw > 0)
		master_reload(m, "a store or a signal during the last reload");
}

/* The editing process's word: "stored" (a reload follows). */
static void
editor_heard(struct master *m, size_t k)
{
	struct ed_ctl c;
	ssize_t n = recv(m->ed[k].ctl, &c, sizeof(c), MSG_DONTWAIT);

	if (n != (ssize_t)sizeof(c) || c.type != ED_STORED)
		return;		/* its end is read by the reaper */
	m->lw = xrealloc(m->lw, (m->n_lw + 1) * sizeof(*m->lw));
	m->lw[m->n_lw].ed = m->ed[k].pid;
	m->lw[m->n_lw].tag = c.tag;
	m->lw[m->n_lw].in_build = 0;
	m->n_lw++;
	master_reload(m, "an editor's upload was stored");
}

/* A worker of the current generation for each slot anew (the editing
 * process was replaced: the new workers have channels to the new one). */
static void
replace_workers(struct master *m)
{
	long bound = retire_bound(m->g->cfg);

	for (size_t k = 0; k < m->n_ch; k++) {
		if (m->ch[k].retiring)
			continue;
		m->ch[k].retiring = 1;
		m->ch[k].retire_by = now_ms() + bound;
	}
	start_then_retire(m);
}

/* An editing process ended: the current one is started again (unless it
 * died at once), and its workers with it; an old one was done. */
static void
editor_reaped(struct master *m, size_t k, int st)
{
	struct edproc e = m->ed[k];

	close(e.ctl);
	m->ed[k] = m->ed[--m->n_ed];
	if (m->stopping || e.retired)
		return;
	if (WIFSIGNALED(st))
		log_error("editing process (pid %d) killed by signal %d",
		    (int)e.pid, WTERMSIG(st));
	else
		log_error("editing process (pid %d) exited with status %d",
		    (int)e.pid, WEXITSTATUS(st));
	/* Stores it was waiting to see live are live with the next build. */
	if (now_ms() - e.started < RESPAWN_MIN_MS) {
		log_error("the editing process died at start: editing is off "
		    "until the next reload");
		return;
	}
	if (editor_spawn(m) == -1 || m->is_child)
		return;
	replace_workers(m);
}

static void
master_reap(struct master *m)
{
	struct child c;
	char call[64];
	pid_t pid;
	size_t k;
	int st, r, restart;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if ((r = keyproc_reaped(m->keys, pid, st)) != 0) {
			/* -1: it cannot be restarted (logged) */
			if (r == -1 && !m->stopping) {
				m->rc = 1;
				master_stop(m, 0);
			}
			continue;
		}
		if (m->store_pid > 0 && pid == m->store_pid) {
			close(m->store_ctl);
			m->store_pid = 0;
			if (m->stopping)
				continue;
			log_error("the store process (pid %d) %s %d; started again%s",
			    (int)pid, WIFSIGNALED(st) ? "was killed by signal" :
			    "exited with status", WIFSIGNALED(st) ? WTERMSIG(st) :
			    WEXITSTATUS(st), now_ms() - m->store_started < RESPAWN_MIN_MS ?
			    " in a few seconds" : "");
			m->store_again = now_ms() + (now_ms() - m->store_started <
			    RESPAWN_MIN_MS ? STORE_AGAIN_MS : 0);
			continue;
		}
		if (metricsproc_reaped(m->mproc, pid, st, !m->stopping))
			continue;
		if (m->building && pid == m->build.pid) {
			m->build.reaped = 1;
			m->build.status = st;
			continue;
		}
		for (k = 0; k < m->n_ed && m->ed[k].pid != pid; k++)
			;
		if (k < m->n_ed) {
			editor_reaped(m, k, st);
			if (m->is_child)
				return;
			continue;
		}
		for (k = 0; k < m->n_ch && m->ch[k].pid != pid; k++)
			;
		if (k == m->n_ch)
			continue;
		keyproc_worker_gone(m->keys, pid);
		c = m->ch[k];
		m->ch[k] = m->ch[--m->n_ch];
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && (m->stopping || c.retiring)) {
			metrics_worker_gone(m->metrics, c.slot, pid, MW_NONE);
			continue;
		}
		/* Counted as a restart when ensure_workers starts it again. */
		restart = m->stopping || c.retiring ||
		    now_ms() - c.started < RESPAWN_MIN_MS ? MW_NONE : MW_CRASH;
		if (sandbox_violation(m->board, c.slot, pid, call, sizeof(call))) {
			log_error("worker %d (pid %d): sandbox violation: system call %s "
			    "is not allowed (server.sandbox); the worker was stopped",
			    c.slot + 1, (int)pid, call);
			if (restart == MW_CRASH)
				restart = MW_SANDBOX;
		} else if (WIFSIGNALED(st))
			log_error("worker %d (pid %d) killed by signal %d", c.slot + 1,
			    (int)pid, WTERMSIG(st));
		else
			log_error("worker %d (pid %d) exited with status %d", c.slot + 1,
			    (int)pid, WEXITSTATUS(st));
		metrics_worker_gone(m->metrics, c.slot, pid, restart);
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
 * Waits for a signal (one of wait_set, blocked), an editing process's word
 * or the builder's site, up to ts. Returns the signal taken, or 0. The
 * signals come through a signalfd, so that one poll covers the rest too;
 * without one, sigtimedwait, and no editing.
 */
static int
master_wait(struct master *m, const sigset_t *wait_set, const struct timespec *ts)
{
	struct signalfd_siginfo ssi;
	struct pollfd *fds;
	size_t n = 0, n_ed = m->n_ed;
	pid_t *eds;
	siginfo_t si;
	int sig = 0;

	if (m->sigfd == -1)
		return sigtimedwait(wait_set, &si, ts) > 0 ? si.si_signo : 0;
	fds = xcalloc(m->n_ed + 3, sizeof(*fds));
	eds = xcalloc(m->n_ed + 1, sizeof(*eds));
	fds[n].fd = m->sigfd;
	fds[n++].events = POLLIN;
	fds[n].fd = m->building ? m->build.fd : -1;
	fds[n++].events = POLLIN;
	fds[n].fd = m->store_pid > 0 ? m->store_ctl : -1;
	fds[n++].events = POLLIN;
	for (size_t k = 0; k < n_ed; k++) {
		eds[k] = m->ed[k].pid;
		fds[n].fd = m->ed[k].ctl;
		fds[n++].events = POLLIN;
	}
	if (poll(fds, n, (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000)) > 0) {
		/* By pid: a word can start a reload that changes m->ed. */
		for (size_t i = 0; i < n_ed && !m->is_child; i++) {
			if (!(fds[3 + i].revents & POLLIN))
				continue;
			for (size_t k = 0; k < m->n_ed; k++)
				if (m->ed[k].pid == eds[i]) {
					editor_heard(m, k);
					break;
				}
		}
		if (!m->is_child && m->store_pid > 0 && (fds[2].revents & POLLIN))
			store_heard(m);
		if (!m->is_child && (fds[0].revents & POLLIN) &&
		    read(m->sigfd, &ssi, sizeof(ssi)) == (ssize_t)sizeof(ssi))
			sig = (int)ssi.ssi_signo;
	}
	/* The builder at each turn: its pipe, or its deadline. */
	if (!m->is_child && m->building) {
		struct site *site;

		if (build_step(&m->build, &site) == 1)
			master_built(m, site);
	}
	free(fds);
	free(eds);
	return sig;
}

/* The master only watches: it reloads on SIGHUP, forwards SIGTERM/SIGINT,
 * reaps the workers and restarts one that died. Returns from a forked child
 * too, with m->is_child set, so that the child unwinds through main's cleanup. */
static void
master_run(struct master *m, const sigset_t *wait_set)
{
	if (editor_spawn(m) == -1 && !m->is_child)
		log_error("editing is off");
	if (m->is_child)
		return;
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
			if (m->g->cfg->n_store_etcd > 0 && m->store_pid == 0 &&
			    now_ms() >= m->store_again &&
			    (store_spawn(m) == -1 || m->is_child))
				return;
		}
		if (m->stopping && m->n_ch == 0 && m->n_ed == 0)
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
			master_reload(m, "signal 1");
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
			for (size_t k = 0; k < m->n_ed; k++)
				kill(m->ed[k].pid, SIGKILL);
			m->stop_at = now;
			m->rc = 1;
		}
		master_reap(m);
	}
}

/* In a metrics process just forked: what the workers share (the session
 * cache and its secrets, the rate limits, the sandbox's board) and the key
 * process's sockets are not its to hold. */
static void
metrics_child_release(void *arg)
{
	struct master *m = arg;

	keyproc_child(m->keys, -1);
	m->keys = NULL;
	ratelimit_table_free(m->limits);
	m->limits = NULL;
	sandbox_board_free(m->board);
	m->board = NULL;
	tlsctx_free(m->g->tls);
	m->g->tls = NULL;
	if (m->next.tls != NULL) {
		tlsctx_free(m->next.tls);
		m->next.tls = NULL;
	}
}

int
server_run(struct generation *g, server_reload_fn reload, void *arg)
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
	m.build.fd = -1;
	if (privs_resolve(g->cfg, &m.privs) == -1 || state_prepare(g->cfg, &m.privs) == -1)
		return 1;
	sigprocmask(SIG_SETMASK, NULL, &oldmask);
	/* With server.store, the copy of etcd's state first: the store
	 * process reads it, then the first site is built from it. */
	if (store_spawn(&m) == -1)
		return 1;
	if (m.is_child)
		return m.child_rc;
	store_ready(&m);
	/* The first site, built as every later one is (build.c), and its TLS. */
	if ((g->site = build_run(g->cfg, &m.privs, 0)) == NULL) {
		store_stop(&m);
		return 1;
	}
	malloc_trim(0);
	{
		struct diag d = { 0 };

		if ((g->tls = tlsctx_setup(g->cfg, &d)) == NULL) {
			diag_print(&d, "kilnet: ");
			diag_clear(&d);
			return 1;
		}
		diag_clear(&d);
	}
	/* Blocked from here, before the first socket listens: a client that
	 * sees the port open may signal at once, and a signal arriving before a
	 * loop can take it waits (started in the background by a shell, kilnet
	 * inherits SIGINT ignored: unblocked, it would be lost). SIGUSR2
	 * (retire) is only for workers: blocked so that one sent to a worker
	 * still starting waits for its handler. */
	sigemptyset(&wait_set);
	sigaddset(&wait_set, SIGTERM);
	sigaddset(&wait_set, SIGINT);
	sigaddset(&wait_set, SIGCHLD);
	sigaddset(&wait_set, SIGHUP);
	block = wait_set;
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &oldmask);
	m.sigfd = signalfd(-1, &wait_set, SFD_CLOEXEC | SFD_NONBLOCK);
	if ((m.limits = ratelimit_table_new()) == NULL ||
	    (m.board = sandbox_board_new()) == NULL ||
	    (m.metrics = metrics_new()) == NULL ||
	    listeners_build(&m.ls, g->cfg, slots_for(g->cfg)) == -1) {
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		metrics_free(m.metrics);
		return 1;
	}
	/* The keys go to the key process before anything else forks. */
	if ((m.keys = keyproc_start(g->tls, &m.privs, &d)) == NULL) {
		diag_print(&d, "kilnet: ");
		diag_clear(&d);
		listeners_free(&m.ls);
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		metrics_free(m.metrics);
		return 1;
	}
	m.n_slots = slots_for(g->cfg);
	metrics_site_loaded(m.metrics);
	metrics_members(m.metrics, search_members(g->site->search));
	metrics_slots(m.metrics, m.n_slots);
	/* Its handle always: a reload may turn the metrics listener on. */
	if ((m.mproc = metricsproc_start(g->cfg, &m.privs, m.metrics,
	    metrics_child_release, &m)) == NULL) {
		keyproc_stop(m.keys);
		listeners_free(&m.ls);
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		metrics_free(m.metrics);
		return 1;
	}
	master_run(&m, &wait_set);
	if (m.is_child) {
		/* A worker's copies: its sockets and children went at the fork. */
		metricsproc_child(m.mproc);
		ratelimit_table_free(m.limits);
		sandbox_board_free(m.board);
		metrics_free(m.metrics);
		free(m.ed);
		free(m.lw);
		return m.child_rc;
	}
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (m.sigfd != -1)
		close(m.sigfd);
	for (size_t k = 0; k < m.n_ed; k++)
		close(m.ed[k].ctl);
	free(m.ed);
	free(m.lw);
	if (m.building)
		build_cancel(&m.build);
	generation_free(&m.next);
	listeners_free(&m.ls);
	metricsproc_stop(m.mproc);
	store_stop(&m);
	/* Last: the workers' drain may still have asked for signatures. */
	keyproc_stop(m.keys);
	ratelimit_table_free(m.limits);
	sandbox_board_free(m.board);
	metrics_free(m.metrics);
	free(m.ch);
	log_info("stopped");
	return m.rc;
}
