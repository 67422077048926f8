/*
 * metricsproc.c: the metrics process, and the master's handle on it. It
 * serves HTTP/1.1 (libevent's evhttp) on server.metrics.listen:
 *
 *   GET /metrics   every counter of the region all processes share
 *                  (metrics.c), in Prometheus's text format 0.0.4
 *   GET /health    200 "ok" when every worker serves and the last reload
 *                  succeeded, else 503 and the reason, one line
 *
 * The master opens the listening sockets (root may bind any port) and keeps
 * them for the process's restarts; the process closes every other
 * descriptor, switches user and root as a worker does (privs_drop), and
 * enters a seccomp filter of its own before it reads a byte from the
 * network. It only reads the shared region, which the master and the
 * workers write: nothing that keeps root parses what an HTTP client sends.
 * It has the listeners' limits: server.max_connections connections at once
 * (more wait in the kernel's queue), server.request_timeout to send a whole
 * request, from the connection's start or the previous response's end, and
 * server.write_timeout to take the response.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "server.h"

/* A metrics process that dies sooner than this after its start is not
 * started again (until the next reload): it would die again. */
#define RESPAWN_MIN_MS   1000
/* At the end, or when a reload replaces it: how long it may finish the
 * responses in flight before it is killed. */
#define STOP_WAIT_MS     2000
/* A request to it is a request line and a few headers; no body. */
#define MAX_HEADERS      8192
#define MAX_BODY         0
/* When it is told to stop: how long the connections open may finish. */
#define STOP_GRACE_MS    100
/* The exit status of a metrics process its filter stopped. */
#define VIOLATION_EXIT   159

/* What the process is started with: copied from the config, so that a reload
 * can tell whether it changed. */
struct mp_conf {
	struct listen_addr *la;
	size_t              n;
	int                 request_ms, write_ms, max_conns, json;
	struct privs        privs;
	char               *user, *chroot;
};

struct metricsproc {
	pid_t             pid;       /* -1: not running */
	long              started;
	int               off;       /* died at start: off until a reload */
	int              *fd;        /* conf.n listening sockets, the master's */
	struct mp_conf    conf;
	struct metrics   *metrics;
	atomic_int       *board;     /* shared: the call its filter stopped */
	void            (*release)(void *);  /* in the child: the master's */
	void             *release_arg;       /* memory it does not serve with */
};

/* ------------------------------------------------------------- the master */

static void
conf_free(struct mp_conf *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->la[i].host);
	free(c->la);
	free(c->user);
	free(c->chroot);
	memset(c, 0, sizeof(*c));
}

static void
conf_of(struct mp_conf *c, const struct config *cfg, const struct privs *p)
{
	memset(c, 0, sizeof(*c));
	c->n = cfg->n_metrics_listen;
	c->la = xcalloc(c->n ? c->n : 1, sizeof(*c->la));
	for (size_t i = 0; i < c->n; i++) {
		c->la[i] = cfg->metrics_listen[i];
		c->la[i].host = xstrdup(cfg->metrics_listen[i].host);
	}
	c->request_ms = cfg->request_timeout_ms;
	c->write_ms = cfg->write_timeout_ms;
	c->max_conns = cfg->max_connections > 0 ? cfg->max_connections : 1024;
	c->json = cfg->log_json;
	c->privs = *p;
	c->user = xstrdup(p->user != NULL ? p->user : "");
	c->chroot = p->chroot != NULL ? xstrdup(p->chroot) : NULL;
	c->privs.user = c->user;
	c->privs.chroot = c->chroot;
}

static int
same_listen(const struct mp_conf *a, const struct mp_conf *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->la[i].port != b->la[i].port ||
		    strcmp(a->la[i].host, b->la[i].host) != 0)
			return 0;
	return 1;
}

static int
same_conf(const struct mp_conf *a, const struct mp_conf *b)
{
	const struct privs *p = &a->privs, *q = &b->privs;

	return same_listen(a, b) && a->request_ms == b->request_ms &&
	    a->write_ms == b->write_ms && a->max_conns == b->max_conns &&
	    a->json == b->json && p->drop == q->drop && p->sandbox == q->sandbox &&
	    (!p->drop || (p->uid == q->uid && p->gid == q->gid)) &&
	    (a->chroot == NULL) == (b->chroot == NULL) &&
	    (a->chroot == NULL || strcmp(a->chroot, b->chroot) == 0);
}

static void
close_fds(int *fd, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fd != NULL && fd[i] != -1)
			close(fd[i]);
	free(fd);
}

/* The listening sockets of c; NULL (reported) when one cannot be opened. */
static int *
open_fds(const struct mp_conf *c)
{
	int *fd = xcalloc(c->n ? c->n : 1, sizeof(*fd));

	for (size_t i = 0; i < c->n; i++) {
		if ((fd[i] = listen_open(&c->la[i], "server.metrics.listen")) == -1) {
			close_fds(fd, i);
			return NULL;
		}
	}
	return fd;
}

static void  mp_main(struct metricsproc *) __attribute__((noreturn));

static void
spawn(struct metricsproc *mp)
{
	pid_t pid;

	if (mp->conf.n == 0 || mp->off)
		return;
	atomic_store(mp->board, -1);
	if ((pid = fork()) == -1) {
		log_error("cannot start the metrics process: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		mp_main(mp);
	mp->pid = pid;
	mp->started = now_ms();
	log_info("metrics process started (pid %d)", (int)pid);
}

/* Stops the process (SIGTERM: it finishes what it serves), bounded. */
static void
halt(struct metricsproc *mp)
{
	struct timespec tick = { 0, 10 * 1000000L };
	long until = now_ms() + STOP_WAIT_MS;
	int st;

	if (mp->pid == -1)
		return;
	kill(mp->pid, SIGTERM);
	while (waitpid(mp->pid, &st, WNOHANG) == 0) {
		if (now_ms() > until) {
			log_warn("metrics process (pid %d) still running %d ms after it "
			    "was told to stop: killing it", (int)mp->pid, STOP_WAIT_MS);
			kill(mp->pid, SIGKILL);
			waitpid(mp->pid, &st, 0);
			break;
		}
		nanosleep(&tick, NULL);
	}
	mp->pid = -1;
}

struct metricsproc *
metricsproc_start(const struct config *cfg, const struct privs *p,
    struct metrics *m, void (*release)(void *), void *arg)
{
	struct metricsproc *mp = xcalloc(1, sizeof(*mp));

	mp->pid = -1;
	mp->metrics = m;
	mp->release = release;
	mp->release_arg = arg;
	conf_of(&mp->conf, cfg, p);
	mp->board = mmap(NULL, sizeof(*mp->board), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mp->board == MAP_FAILED) {
		log_error("cannot map the metrics process's report board: %s",
		    strerror(errno));
		mp->board = NULL;
	}
	if (mp->board == NULL || (mp->conf.n > 0 && (m == NULL ||
	    (mp->fd = open_fds(&mp->conf)) == NULL))) {
		metricsproc_child(mp);
		return NULL;
	}
	spawn(mp);
	return mp;
}

int
metricsproc_reload(struct metricsproc *mp, const struct config *cfg,
    const struct privs *p)
{
	struct mp_conf c;
	int *fd = NULL, reopen;

	if (mp == NULL)
		return 0;
	conf_of(&c, cfg, p);
	if (same_conf(&c, &mp->conf) && !mp->off) {
		conf_free(&c);
		return 0;
	}
	/* New addresses are bound first: a port that cannot be had fails the
	 * reload, and the process serving goes on. */
	reopen = !same_listen(&c, &mp->conf) || mp->fd == NULL;
	if (reopen && c.n > 0 && (fd = open_fds(&c)) == NULL) {
		conf_free(&c);
		return -1;
	}
	halt(mp);
	if (reopen) {
		close_fds(mp->fd, mp->conf.n);
		mp->fd = fd;
	}
	conf_free(&mp->conf);
	mp->conf = c;
	mp->off = 0;
	spawn(mp);
	return 0;
}

int
metricsproc_reaped(struct metricsproc *mp, pid_t pid, int status, int restart)
{
	char *name;
	int nr;

	if (mp == NULL || pid <= 0 || pid != mp->pid)
		return 0;
	mp->pid = -1;
	nr = atomic_load(mp->board);
	if (WIFEXITED(status) && WEXITSTATUS(status) == VIOLATION_EXIT && nr >= 0) {
		name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		log_error("metrics process (pid %d): sandbox violation: system call "
		    "%s (%d) is not allowed; the metrics process was stopped",
		    (int)pid, name != NULL ? name : "unknown", nr);
		free(name);
	} else if (WIFSIGNALED(status))
		log_error("metrics process (pid %d) killed by signal %d", (int)pid,
		    WTERMSIG(status));
	else if (restart)
		log_error("metrics process (pid %d) exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	if (!restart)
		return 1;
	if (now_ms() - mp->started < RESPAWN_MIN_MS) {
		log_error("the metrics process died at start: metrics are off until "
		    "the next reload");
		/* Closed: a health check is refused at once, rather than left
		 * waiting in a queue nobody takes. */
		close_fds(mp->fd, mp->conf.n);
		mp->fd = NULL;
		mp->off = 1;
		return 1;
	}
	spawn(mp);
	return 1;
}

void
metricsproc_child(struct metricsproc *mp)
{
	if (mp == NULL)
		return;
	close_fds(mp->fd, mp->conf.n);
	conf_free(&mp->conf);
	if (mp->board != NULL)
		munmap(mp->board, sizeof(*mp->board));
	free(mp);
}

void
metricsproc_stop(struct metricsproc *mp)
{
	if (mp == NULL)
		return;
	halt(mp);
	metricsproc_child(mp);
}

/* ---------------------------------------------------- the metrics process */

/* One HTTP connection, known from the bufferevent made for it (bev_new) to
 * the sweep after evhttp let it go. */
struct mconn {
	struct bufferevent  *bev;      /* the one evhttp reads and writes */
	struct event        *deadline;
	struct mconn        *prev, *next;
	struct mstate       *st;
};

struct mstate {
	struct event_base          *base;
	struct evhttp              *http;
	struct evhttp_bound_socket **bound;
	size_t                      n_bound;
	const struct mp_conf       *conf;
	struct metrics             *metrics;
	struct mconn               *conns;
	struct event               *sweep;
	int                         n_conns, paused, stopping;
};

/* How often the connections evhttp let go are looked for (sweep_cb). */
#define SWEEP_MS 100

static void
listeners_on(struct mstate *st, int on)
{
	for (size_t i = 0; i < st->n_bound; i++) {
		struct evconnlistener *l = evhttp_bound_socket_get_listener(st->bound[i]);

		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
	st->paused = !on;
}

static void
arm(struct mconn *c, int ms)
{
	struct timeval tv = ms_tv(ms);

	evtimer_add(c->deadline, &tv);
}

/* Past a deadline: evhttp drops the connection as on its own timeout (when
 * it still has it). */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;

	(void)fd;
	(void)what;
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/*
 * evhttp tells nobody when a connection ends: it frees its bufferevent,
 * which clears the callbacks. bev_new keeps a reference of its own, so the
 * bufferevent (and its socket, already shut down by evhttp) stays until
 * this sweep sees the callbacks gone and drops it: then the connection
 * counts no more (the cap), and its socket is closed by libevent after its
 * events are removed, never before (a closed number taken by a new
 * connection while an old event still names it would lose the new one's).
 */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mstate *st = arg;
	struct timeval tv = ms_tv(SWEEP_MS);
	struct mconn *c, *next;

	(void)fd;
	(void)what;
	for (c = st->conns; c != NULL; c = next) {
		bufferevent_data_cb rcb, wcb;
		bufferevent_event_cb ecb;
		void *cbarg;

		next = c->next;
		bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &cbarg);
		if (rcb != NULL || wcb != NULL || ecb != NULL)
			continue;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			st->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		event_free(c->deadline);
		bufferevent_decref(c->bev);
		free(c);
		st->n_conns--;
	}
	if (st->stopping && st->n_conns == 0)
		event_base_loopbreak(st->base);
	else if (st->paused && !st->stopping && st->n_conns < st->conf->max_conns)
		listeners_on(st, 1);
	if (st->n_conns > 0)
		evtimer_add(st->sweep, &tv);
}

/* evhttp's hook for each new connection: the bufferevent it will use,
 * counted (the cap) and given its deadline. */
static struct bufferevent *
bev_new(struct event_base *base, void *arg)
{
	struct mstate *st = arg;
	struct timeval tv = ms_tv(SWEEP_MS);
	struct mconn *c = xcalloc(1, sizeof(*c));

	if ((c->deadline = evtimer_new(base, deadline_cb, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return NULL;	/* evhttp makes one of its own */
	}
	bufferevent_incref(c->bev);
	c->st = st;
	c->next = st->conns;
	if (st->conns != NULL)
		st->conns->prev = c;
	st->conns = c;
	st->n_conns++;
	arm(c, st->conf->request_ms);
	if (!evtimer_pending(st->sweep, NULL))
		evtimer_add(st->sweep, &tv);
	if (st->n_conns >= st->conf->max_conns)
		listeners_on(st, 0);
	return c->bev;
}

static struct mconn *
conn_of(struct mstate *st, struct evhttp_request *req)
{
	struct evhttp_connection *evc = evhttp_request_get_connection(req);
	struct bufferevent *bev = evc != NULL ?
	    evhttp_connection_get_bufferevent(evc) : NULL;

	for (struct mconn *c = st->conns; c != NULL; c = c->next)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* The response is out: the next request on the connection has its time. */
static void
sent_cb(struct evhttp_request *req, void *arg)
{
	struct mconn *c = arg;

	(void)req;
	arm(c, c->st->conf->request_ms);
}

static void
reply(struct mstate *st, struct evhttp_request *req, int code, const char *why,
    const char *type, struct buf *body)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct mconn *c = conn_of(st, req);

	if (c != NULL) {
		arm(c, st->conf->write_ms);
		evhttp_request_set_on_complete_cb(req, sent_cb, c);
	}
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* HEAD: the length of the body, not the body (evhttp would send it). */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		char len[24];

		snprintf(len, sizeof(len), "%zu", body->len);
		evhttp_add_header(h, "Content-Length", len);
	} else if (out != NULL && body->len > 0) {
		evbuffer_add(out, body->data, body->len);
	}
	evhttp_send_reply(req, code, why, out);
	if (out != NULL)
		evbuffer_free(out);
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct mstate *st = arg;
	struct buf b = { 0 };

	metrics_write(st->metrics, &b);
	reply(st, req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_free(&b);
}

static void
health_cb(struct evhttp_request *req, void *arg)
{
	struct mstate *st = arg;
	struct buf b = { 0 };
	char why[256];
	int ok = metrics_health(st->metrics, why, sizeof(why));

	buf_printf(&b, "%s\n", why);
	reply(st, req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
	    "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

static void
other_cb(struct evhttp_request *req, void *arg)
{
	struct buf b = { 0 };

	buf_adds(&b, "not found: GET /metrics or /health\n");
	reply(arg, req, 404, "Not Found", "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

/* SIGTERM (the end, or a reload that replaces it): no new connections, and
 * STOP_GRACE_MS for the ones open: a response is written at once, so that
 * is for one in flight to leave; a kept-alive connection waiting for its
 * next request (Prometheus keeps one) is closed then. */
static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct mstate *st = arg;
	struct timeval tv = ms_tv(STOP_WAIT_MS / 2);

	(void)sig;
	(void)what;
	if (st->stopping)
		return;
	st->stopping = 1;
	for (size_t i = 0; i < st->n_bound; i++)
		evhttp_del_accept_socket(st->http, st->bound[i]);	/* our copy */
	st->n_bound = 0;
	for (struct mconn *c = st->conns; c != NULL; c = c->next)
		arm(c, STOP_GRACE_MS);
	if (st->n_conns == 0)
		event_base_loopbreak(st->base);
	else
		event_base_loopexit(st->base, &tv);
}

/* Set once, before the filter, for its handler (which sees no arguments). */
static atomic_int *mp_board;

/* Async-signal-safe: a store and _exit; the master names the call. */
static void
mp_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (mp_board != NULL)
		atomic_store(mp_board, si->si_syscall);
	_exit(VIOLATION_EXIT);
}

/*
 * What the metrics process calls, each with who needs it: libevent's loop,
 * evhttp's sockets (evbuffer reads and writes), the shared region (plain
 * memory), the log and the end. Nothing opens a file, makes a socket or
 * runs a program. Found by reading libevent's http.c, buffer.c and
 * listener.c and by strace of the process over scrapes, health checks,
 * HEAD, refused methods, oversized requests, clients cut off by the
 * deadline, a cap reached and a reload that replaced it (epoll_wait,
 * epoll_ctl, accept4, ioctl, readv, writev, shutdown, close, read, write,
 * rt_sigreturn, exit_group); the rest are paths that did not come (a large
 * allocation, a clock without vDSO). The test suite runs under the filter.
 */
static const struct sandbox_call mp_allowed[] = {
	{ SCMP_SYS(epoll_wait),      "libevent: waiting" },
	{ SCMP_SYS(epoll_ctl),       "libevent: (re-)arming events" },
	{ SCMP_SYS(accept4),         "evconnlistener: taking connections" },
	{ SCMP_SYS(read),            "libevent: its signal pipe" },
	{ SCMP_SYS(readv),           "evbuffer: requests" },
	{ SCMP_SYS(write),           "the log; libevent's signal handler (its pipe)" },
	{ SCMP_SYS(writev),          "evbuffer: responses" },
	{ SCMP_SYS(shutdown),        "evhttp: closing a connection" },
	{ SCMP_SYS(close),           "closing connections and, at a stop, listeners" },
	{ SCMP_SYS(gettimeofday),    "libevent: its clock, where no vDSO serves it" },
	{ SCMP_SYS(clock_gettime),   "deadlines, libevent: where no vDSO serves it" },
	{ SCMP_SYS(restart_syscall), "the kernel: a wait interrupted by a signal" },
	{ SCMP_SYS(rt_sigreturn),    "returning from libevent's signal handler" },
	{ SCMP_SYS(brk),             "libc malloc" },
	{ SCMP_SYS(munmap),          "libc free of large blocks" },
	{ SCMP_SYS(mremap),          "libc realloc of large blocks" },
	{ SCMP_SYS(madvise),         "libc free: returning pages" },
	{ SCMP_SYS(exit_group),      "the end" },
};

static int
mp_sandbox(atomic_int *board)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc = 0;

	mp_board = board;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = mp_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_error("metrics process: cannot prepare its sandbox: %s",
		    strerror(errno));
		return -1;
	}
	ctx = sandbox_filter_new(mp_allowed, sizeof(mp_allowed) / sizeof(mp_allowed[0]));
	/* evbuffer: how many bytes a socket has to read (FIONREAD), only. */
	if (ctx != NULL)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	if ((rc = sandbox_filter_load(ctx, rc)) != 0) {
		log_error("metrics process: cannot load its seccomp filter: %s",
		    strerror(-rc));
		return -1;
	}
	return 0;
}

/* The metrics process: never returns. */
static void
mp_main(struct metricsproc *mp)
{
	static const int ignored[] = { SIGHUP, SIGINT, SIGUSR2, SIGPIPE };
	const struct mp_conf *conf = &mp->conf;
	struct event_config *ec;
	struct event *sig_term;
	struct mstate st;
	sigset_t none;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	if (mp->release != NULL)
		mp->release(mp->release_arg);
	log_process("kilnet-metrics");
	log_init("off", 0, 0);		/* closes the access log */
	log_set_json(conf->json);
	fd_close_all_but(mp->fd, conf->n);
	/* It reads the counters: it can change none of them. */
	if (metrics_read_only(mp->metrics) == -1 || privs_drop(&conf->privs) == -1)
		_exit(1);
	/* It does not outlive the master (set after the change of user, which
	 * clears it). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != conf->privs.master)
		_exit(0);
	memset(&st, 0, sizeof(st));
	st.conf = conf;
	st.metrics = mp->metrics;
	if ((ec = event_config_new()) != NULL) {
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
		st.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (st.base == NULL || (st.http = evhttp_new(st.base)) == NULL ||
	    (st.sweep = evtimer_new(st.base, sweep_cb, &st)) == NULL ||
	    (sig_term = evsignal_new(st.base, SIGTERM, stop_cb, &st)) == NULL ||
	    event_add(sig_term, NULL) == -1) {
		log_error("metrics process: cannot start its event loop");
		_exit(1);
	}
	evhttp_set_allowed_methods(st.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(st.http, MAX_HEADERS);
	evhttp_set_max_body_size(st.http, MAX_BODY);
	evhttp_set_bevcb(st.http, bev_new, &st);
	evhttp_set_cb(st.http, "/metrics", metrics_cb, &st);
	evhttp_set_cb(st.http, "/health", health_cb, &st);
	evhttp_set_gencb(st.http, other_cb, &st);
	st.bound = xcalloc(conf->n ? conf->n : 1, sizeof(*st.bound));
	for (size_t i = 0; i < conf->n; i++) {
		if ((st.bound[st.n_bound] = evhttp_accept_socket_with_handle(st.http,
		    mp->fd[i])) == NULL) {
			log_error("metrics process: cannot serve its listening socket");
			_exit(1);
		}
		st.n_bound++;
	}
	/* glibc reads the time zone at its first use (the log's time), never
	 * again: now, while a file can still be opened. */
	tzset();
	/* The master's signals were blocked for its loop; libevent's handler
	 * takes SIGTERM from here. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (conf->privs.sandbox && mp_sandbox(mp->board) == -1)
		_exit(1);
	event_base_dispatch(st.base);
	_exit(0);
}
