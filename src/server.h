/*
 * server.h: the server's runtime, on top of the pure layer (kilnet.h): the
 * rate limits and metrics shared by the workers, the log, TLS and its keys,
 * the master and the processes it forks (builder, editing, store, key and
 * metrics processes, workers), the listening sockets and the sandbox.
 */
#ifndef KILNET_SERVER_H
#define KILNET_SERVER_H

#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "kilnet.h"

typedef struct ssl_st SSL;

/* --------------------------------------------------------------- titan.c */
/* For a request gemini_respond marked (reply.edit): 0 with *e ready, or -1
 * with the reply to give (60, 61, 59 ...) in out. */
int   titan_request(const struct config *, SSL *, const unsigned char *req,
	    size_t len, struct edit_req *e, struct reply *out);

/* ------------------------------------------------------------ editchan.c */
/* Non-blocking: 1 all of out written (then emptied), 0 to wait, -1 broken. */
int   chan_flush(int fd, struct buf *out, size_t *off);
/* Non-blocking: appends what can be read; 0 to wait, -1 closed or broken. */
int   chan_fill(int fd, struct buf *in);

/* -------------------------------------------------------------- ratelimit */
/* Per-address request rates and connection counts, in one table that all
 * workers share (mapped before the fork, updated with atomics, no lock).
 * Addresses are keyed by IPv4 /32, IPv6 /64. */
struct ratelimit;
struct sockaddr;
struct rl_table;
/* In the master, before the first fork: the table every worker counts in,
 * kept across reloads. NULL when it cannot be made (logged). */
struct rl_table  *ratelimit_table_new(void);
void  ratelimit_table_free(struct rl_table *);
/* In a worker: the limits of its config, counted in table t. */
struct ratelimit *ratelimit_new(struct rl_table *t, double rate, double burst,
	    int max_per_address,
	    const struct cidr *allow, size_t n_allow);
void  ratelimit_free(struct ratelimit *);
/* 1 when addr is in an allowed (exempt) range. */
int   cidr_match(const struct cidr *, size_t n, const struct sockaddr *addr);
/* Takes one token for a request from addr at time now_ms; returns 0 when
 * allowed, else the whole seconds (>= 1) until a token is there. */
int   ratelimit_take(struct ratelimit *, const struct sockaddr *addr, long now_ms);
/* A connection from addr opens (-1: over max_per_address, refuse) / closes. */
int   ratelimit_open(struct ratelimit *, const struct sockaddr *addr);
void  ratelimit_close(struct ratelimit *, const struct sockaddr *addr);

/* ---------------------------------------------------------------- metrics */
/* metrics.c: the counters all processes share (mapped by the master before
 * it forks the workers, atomics, no lock), and the Prometheus text of them.
 * Every call takes NULL (no region: -t, --render, a failed map). */
enum metric_proto { MP_GEMINI, MP_TITAN, MP_GOPHER, MP_SPARTAN, MP_NEX, MP_COUNT };
enum metric_refusal { MR_MAX_CONNECTIONS, MR_MAX_PER_ADDRESS };
enum metric_restart { MW_NONE = -1, MW_CRASH = 0, MW_SANDBOX = 1 };
enum metric_edit { ME_STORED, ME_REFUSED, ME_DENIED };
struct metrics;
struct metrics_worker;
/* In the master, before it forks the workers; NULL (logged) when it cannot map. */
struct metrics *metrics_new(void);
void  metrics_free(struct metrics *);
/* In a worker: its slot's counters and a cell of its own for its open
 * connections; metrics_serving once it serves. */
struct metrics_worker *metrics_worker_new(struct metrics *, int slot);
void  metrics_worker_free(struct metrics_worker *);
void  metrics_serving(struct metrics *, int slot);
/* A request answered (proto: enum metric_proto; status as in struct reply),
 * its bytes and its connection's time from accept to close. */
void  metrics_request(struct metrics_worker *, int proto, int status,
	    size_t bytes, long ms);
void  metrics_limited(struct metrics_worker *, int proto);
void  metrics_handshake(struct metrics_worker *, int resumed);
void  metrics_handshake_failed(struct metrics_worker *);
void  metrics_refused(struct metrics_worker *, int reason);
/* A connection of listener kind (enum proto_kind) opens (+1) or closes (-1). */
void  metrics_open(struct metrics_worker *, int kind, int delta);
/* The master: the slots serving, each slot's current worker, a worker reaped
 * (restart: enum metric_restart, why it is started again), the site loaded
 * (at start), a reload's result (why: its first error), the dataset's size. */
void  metrics_slots(struct metrics *, int n_slots);
void  metrics_worker_started(struct metrics *, int slot, pid_t);
void  metrics_worker_gone(struct metrics *, int slot, pid_t, int restart);
void  metrics_site_loaded(struct metrics *);
void  metrics_reload(struct metrics *, int ok, const char *why);
void  metrics_members(struct metrics *, size_t);
/* The editing process: an upload's result (enum metric_edit). */
void  metrics_edit(int result);
/* The metrics process: its view of the region is read only (0, or -1
 * logged); the text exposition format (0.0.4) of every family;
 * 1 when every worker serves and the last reload succeeded, else 0, with
 * the one-line reason in why ("ok" when healthy). */
int   metrics_read_only(struct metrics *);
void  metrics_write(struct metrics *, struct buf *out);
int   metrics_health(struct metrics *, char *why, size_t size);

/* -------------------------------------------------------------------- log */
void  log_init(const char *access_log, int anonymise, int worker_id);
/* s as one field of a log line: every byte outside printable ASCII, the
 * space, '"' and '\\' as \xHH (a new string). For what a client or an
 * editor sent (a path, a name) in any line the server writes. */
char *log_escape(const char *s, size_t len);
/* The access log's descriptor (2, or a file's; -1: off), kept by children. */
int   log_access_fd(void);
/* statefile.c: the whole of fd / of file NAME in folder dirfd (0, -1 with
 * errno); data whole and fsync'd in a new file NAME (removed on failure);
 * folder NAME in dirfd (made first when make). */
int   sf_read_fd(int fd, struct buf *out);
int   sf_read_at(int dirfd, const char *name, struct buf *out);
int   sf_write_new(int dirfd, const char *name, const void *data, size_t len,
	    int mode);
int   sf_open_dir(int dirfd, const char *name, int make);
/* The versions in folder vfd (STATE/versions), "STAMP-WHO.conf", oldest first
 * (their names start with the time); sf_free_names frees the list. */
size_t sf_list_versions(int vfd, char ***out);
void  sf_free_names(char **v, size_t n);
/* 1 when s is a version's name as the editing process makes them: nothing
 * else in versions/ is read or written. */
int   sf_version_ok(const char *s);
/* child.c: in a new child, every descriptor closed but 0, 1, 2, the access
 * log and keep[0..n-1]: no process holds another's channels (a
 * builder the key process's, an editing process a listening socket). */
void  fd_close_all_but(const int *keep, size_t n);
void  log_msg(const char *level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_info(...)  log_msg("info", __VA_ARGS__)
#define log_warn(...)  log_msg("warning", __VA_ARGS__)
#define log_error(...) log_msg("error", __VA_ARGS__)
/* server.log_format = "json" (both logs one JSON object a line), or text. */
void  log_set_json(int on);
/* The process's title (prctl, what ps shows), which the JSON log names too
 * ("kilnet-keys"); master and workers have none. */
void  log_process(const char *title);
/* The first error logged from now on goes to buf (one line, cut to size),
 * until log_hold_error(NULL, 0): the master's reason for a failed reload. */
void  log_hold_error(char *buf, size_t size);
/* One access-log line: proto "gemini", "gopher", "gophers", "spartan" or "nex"
 * (the text log's), mproto the JSON log's (enum metric_proto); sni may be
 * NULL; req as read (a trailing CRLF is dropped); status as in struct reply. */
struct sockaddr;
struct access_rec {
	const char            *proto;
	int                    mproto;
	const struct sockaddr *client;
	const char            *sni;
	const unsigned char   *req;
	size_t                 reqlen;
	int                    status;
	size_t                 bytes;
	long                   ms;
	int                    tls, resumed;
};
void  log_access(const struct access_rec *);

/* ------------------------------------------------------------ tls, server */
struct tlsctx;
struct tlsctx *tlsctx_setup(const struct config *, struct diag *d);
void        tlsctx_free(struct tlsctx *);
/* A server-side SSL for one connection (SNI picks the host's context during
 * the handshake); NULL when out of memory. Release with SSL_free. */
struct ssl_st;
struct ssl_st *tlsctx_new(struct tlsctx *);

/* A reload: `to` takes over the session cache of `from`, so that clients
 * still resume (from keeps none). */
void        tlsctx_keep_sessions(struct tlsctx *to, struct tlsctx *from);

/* The key process's name for a key: the SHA-256 of its certificate's
 * SubjectPublicKeyInfo (DER). */
#define KEY_ID_LEN  32
/* What the key process needs of host i: its key file and its certificate's
 * SubjectPublicKeyInfo (DER), which the key must match. 0, or -1 past the
 * last host. tlsctx_setup reads no key (keyproc.c does). */
int         tlsctx_key_of(const struct tlsctx *, size_t i, const char **file,
	    const unsigned char **spki, size_t *spki_len);

/* keysign.c: a worker's TLS contexts hold each certificate with a "remote"
 * key: the certificate's public key, whose signatures the key process makes
 * (a blocking round trip on the worker's own socket, keyproc.h). The remote
 * key of pub, named id; NULL when pub is neither an ECDSA nor an RSA key. */
struct evp_pkey_st;
struct evp_pkey_st *keysign_key(struct evp_pkey_st *pub,
	    const unsigned char id[KEY_ID_LEN]);

/* sesscache.c: TLS sessions (DER) by identifier, in memory every worker
 * shares; no lock (a busy slot is skipped). */
#define SESSCACHE_ID_MAX   32
#define SESSCACHE_DER_MAX  600
struct sesscache;
struct sesscache *sesscache_new(size_t slots);   /* NULL: errno */
void        sesscache_free(struct sesscache *);
void        sesscache_put(struct sesscache *, const unsigned char *id,
	    size_t id_len, const unsigned char *der, size_t len, int64_t expires);
/* Copies the session into der (SESSCACHE_DER_MAX bytes); its length, or 0
 * when it is not there (or expired by now). */
size_t      sesscache_get(struct sesscache *, const unsigned char *id,
	    size_t id_len, unsigned char *der, int64_t now);
void        sesscache_remove(struct sesscache *, const unsigned char *id,
	    size_t id_len);

/* ---------------------------------------------------------------- server */
/* One generation of what is served, built whole at start and on each reload. */
struct generation {
	struct config  *cfg;     /* malloc'd; config_free + free */
	struct site    *site;
	struct tlsctx     *tls;
};
/* generation.c: frees the parts that are there and empties *g. */
void        generation_free(struct generation *);
/* The config of a new generation from the same sources as the first (the
 * config file and the command line, the seed dataset): out->cfg only; the
 * master has its site built (build.c) and its TLS set up. Problems are
 * logged. 0, or -1 (and *out empty). */
typedef int (*server_reload_fn)(void *arg, struct generation *out);

/* The editing process (one per generation, forked by the master before its
 * workers): answers the workers' editing requests on their channels, checks
 * and stores uploads in server.state_dir, and tells the master over ctl
 * (SOCK_SEQPACKET, struct ed_ctl) when one is stored. Returns its exit
 * status. */
enum { ED_WORKER = 1, ED_STORED, ED_LIVE, ED_FAILED, ED_RETIRE,
	/* master to editing process: a channel to the store process (etcd) */
	ED_STORE,
	/* the store process (store_etcd.c) and the master: an editing
	 * process's channel (SCM_RIGHTS); the first read done; etcd changed */
	ST_EDITOR, ST_READY, ST_CHANGED };
struct ed_ctl {
	uint32_t  type;   /* ED_WORKER: a worker's channel, as SCM_RIGHTS */
	uint32_t  tag;    /* ED_STORED, and the ED_LIVE/ED_FAILED that answers */
};
/* editchan.c: one word from a SOCK_SEQPACKET control socket, and the
 * descriptor passed with it (SCM_RIGHTS) in *fd, or -1: recvmsg's result. */
ssize_t ctl_recv(int sock, struct ed_ctl *c, int *fd);
struct privs;
/* build.c: the site built by an unprivileged child (it reads what editors
 * wrote; the master reads only its site_wire records). */
struct build {
	pid_t       pid;
	int         fd;         /* the site comes on it (non-blocking) */
	struct buf  in;
	long        deadline;
	int         reaped, status;  /* the master's reaper took its status */
};
/* Forks the builder for cfg (the server settings and the seed dataset the
 * master parsed); it reports its own problems (stderr, or the log when
 * reloading). 0, or -1 (logged). */
int         build_start(struct build *, struct config *, const struct privs *,
	    int reloading);
/* When b->fd is readable or the loop's tick came: 0 still building; 1 done,
 * *out the site or NULL (then the reason was reported). */
int         build_step(struct build *, struct site **out);
void        build_cancel(struct build *);
/* Both, waited for (at start). */
struct site *build_run(struct config *, const struct privs *, int reloading);
int         editor_main(const struct config *, const struct site *,
	    const struct privs *, int ctl);
/* store_etcd.c: the store process (server.store), forked by the master at
 * start: keeps the state folder a copy of etcd's, tells the master over ctl
 * (SOCK_SEQPACKET, struct ed_ctl: ST_READY, ST_CHANGED), stores what the
 * editing processes send on the channels the master hands it (ST_EDITOR).
 * Returns its exit status. */
int         store_main(const struct config *, const struct privs *, int ctl);

/* After close_notify, how long a connection drains unread client bytes so
 * that close() does not turn into a reset that could destroy the response in
 * flight (conn.c); the master's bound on a retiring worker counts it too. */
#define LINGER_MS 1000

/* master.c: binds the listeners, starts the workers and serves until
 * SIGTERM/SIGINT; SIGHUP calls reload and, when it succeeds, replaces the
 * members of *g (the old ones are freed) and swaps the workers. Returns the
 * process exit status; in a worker process too (then *g is the worker's copy,
 * for the caller to free). */
int         server_run(struct generation *g, server_reload_fn reload, void *arg);

/* listeners.c: the listening sockets of one address (fd[0..n_fd-1], one per
 * worker slot, or more after a reload to fewer workers), and all of them. */
struct lsock {
	struct listen_addr  la;      /* host owned */
	int                 kind;    /* enum proto_kind */
	int                *fd;      /* -1: none */
	int                 n_fd;
};
struct listen_set {
	struct lsock       *v;
	size_t              n;
};
/* A listening socket as a worker gets it. */
struct wsock {
	int                 fd;
	int                 kind;    /* enum proto_kind; Gopher autodetects TLS */
	int                 proxy;   /* a PROXY protocol header comes first */
	char                name[64];/* "127.0.0.1:1965", for messages */
};
/* Opens what cfg listens on for n_slots workers into *cur, keeping the sockets
 * of addresses *cur has already; errors go to stderr. 0, or -1 (cur unchanged). */
int         listeners_build(struct listen_set *cur, const struct config *cfg, int n_slots);
void        listeners_free(struct listen_set *);
/* The sockets a worker of `slot` serves, moved out of ls into *out (malloc'd). */
size_t      listeners_take(struct listen_set *ls, int slot, int n_slots, struct wsock **out);
/* One listening socket of its own, not shared by workers (no SO_REUSEPORT,
 * so that a port anyone holds fails): the metrics process's. -1 with the
 * reason on stderr, naming setting. */
int         listen_open(const struct listen_addr *la, const char *setting);

/* metricsproc.c: the metrics process (HTTP: GET /metrics, GET /health on
 * server.metrics.listen), unprivileged and filtered, reading the shared
 * counters (metrics.c). The master opens its sockets and restarts it when it
 * dies. All calls take NULL. */
struct metricsproc;
/* At start, after the key process: its sockets opened and the process
 * forked (none when server.metrics lists no address); release(arg) runs in
 * each new metrics process first, to let go of the master's shared memory it
 * does not serve with. NULL when a socket cannot be opened (reported). */
struct metricsproc *metricsproc_start(const struct config *, const struct privs *,
	    struct metrics *, void (*release)(void *), void *arg);
/* A reload: a process with the new settings when they changed (new
 * addresses bound first); 0, or -1 (reported, the old one serves on). */
int         metricsproc_reload(struct metricsproc *, const struct config *,
	    const struct privs *);
/* Any process reaped: 1 when it was the metrics process (started again when
 * restart, unless it died at start), else 0. */
int         metricsproc_reaped(struct metricsproc *, pid_t, int status, int restart);
/* In another process forked from the master: its sockets closed, mp freed. */
void        metricsproc_child(struct metricsproc *);
/* At the end: the process stopped (waited for, bounded), mp freed. */
void        metricsproc_stop(struct metricsproc *);

/* sandbox.c: a call a process's filter allows, and who needs it. */
struct sandbox_call {
	int          nr;
	const char  *who;
};
/* A seccomp filter that traps every call it does not allow (a call of
 * another architecture kills): the calls of list, anonymous memory that is
 * never executable, and in the sanitizer builds what the runtime calls.
 * The caller adds its own rules with arguments. NULL: out of memory. */
scmp_filter_ctx sandbox_filter_new(const struct sandbox_call *list, size_t n);
/* Loads ctx when rc (the caller's rules) is 0, and frees it; 0, or a
 * negative errno (ctx NULL: -ENOMEM). */
int   sandbox_filter_load(scmp_filter_ctx ctx, int rc);
/* sandbox.c: who a worker becomes before it serves, when started as root. */
struct privs {
	int          drop;      /* 1: started as root */
	uid_t        uid;
	gid_t        gid;
	const char  *user;      /* for messages; points into the current config */
	const char  *chroot;    /* NULL: none; else as user */
	pid_t        master;
	int          sandbox;   /* server.sandbox: the key process's filter too */
};
/* In the master: looks up server.user and checks (or makes) the chroot
 * folder; 0 or -1 (logged). */
int         privs_resolve(const struct config *, struct privs *);
/* In a worker, once it holds its files: chroot and change of user; 0 or -1
 * (logged). */
int         privs_drop(const struct privs *);
/* The board where a worker stopped by its filter leaves the system call's
 * number for the master: mapped once by the master, before any fork. */
struct sandbox_board;
struct sandbox_board *sandbox_board_new(void);
void        sandbox_board_free(struct sandbox_board *);
/* In a worker, once it holds all it serves: enters the seccomp filter (when
 * cfg->sandbox); 0 or -1 (logged). */
struct event_base;
int         sandbox_enter(const struct config *cfg, struct sandbox_board *,
	    int slot, struct event_base *base);
/* The editing process and the site builder: a seccomp filter of their own
 * and, where the kernel has Landlock, no file reached but those below the
 * folders fds[0..n-1], opened before (-1: skipped): the editor may write
 * below fds[0] (the state folder), the rest are read only. 0 or -1. */
enum { SANDBOX_EDITOR = 1, SANDBOX_BUILDER, SANDBOX_STORE };
int         sandbox_enter_role(const struct config *cfg, int role,
	    const int *fds, size_t n);
/* In the master, for a worker of slot (0-based) that ended: 1 and the call's
 * name in name[size] when the filter stopped it, else 0. */
int         sandbox_violation(struct sandbox_board *, int slot, pid_t pid,
	    char *name, size_t size);

/* keyproc.c: the key process, the one process that holds private keys. The
 * master reads each key file's bytes (never parsed there), hands them over and
 * wipes them before it forks anything else; the key process checks each key
 * against its certificate, drops privileges as a worker does (privs), enters a
 * seccomp filter of its own, and signs for the workers, each on its own
 * socketpair. Reloads add keys to the same process; it is restarted when it
 * dies. All calls take NULL (no key process: -t, --render). */
struct keyproc;
/* At start, before any worker (and any other fork): the key process holding
 * the keys of t's hosts. NULL with the problems in d ("FILE: the key does not
 * match the certificate"), and no process left. */
struct keyproc *keyproc_start(const struct tlsctx *t, const struct privs *p,
	    struct diag *d);
/* A reload (SIGHUP, an edit), before the new workers: t's keys join those of
 * the generation serving, which stay for its retiring workers. 0, or -1 with
 * the problems in d and the key process unchanged. */
int         keyproc_reload(struct keyproc *, const struct tlsctx *t,
	    const struct privs *p, struct diag *d);
/* Before a worker's fork: the worker's end of its new pair to the key process
 * (-1: none; its full handshakes then fail). Then keyproc_worker_started with
 * the worker's pid (-1: the fork failed), which closes that end here. */
int         keyproc_worker_new(struct keyproc *);
void        keyproc_worker_started(struct keyproc *, pid_t pid);
/* A worker reaped: its pair goes. */
void        keyproc_worker_gone(struct keyproc *, pid_t pid);
/* Any process reaped: 0 when it was not the key process; 1 it was, and was
 * restarted; -1 it was and cannot be (logged: the master stops). */
int         keyproc_reaped(struct keyproc *, pid_t pid, int status);
/* At the end, once the workers are gone: stops the key process (waited for,
 * bounded) and frees k. */
void        keyproc_stop(struct keyproc *);
/* In a process forked from the master (a worker): closes every key-process
 * socket it inherited but keep (its own, from keyproc_worker_new; -1: none),
 * which becomes its signing socket, and frees k. Before its sandbox. */
void        keyproc_child(struct keyproc *, int keep);

/* worker.c: one worker's life on its sockets (closed by it); exit status. */
int         worker_run(const struct generation *g, const struct wsock *socks,
	    size_t n_socks, int id, const sigset_t *oldmask, const struct privs *p,
	    struct rl_table *limits, struct sandbox_board *board,
	    struct metrics *metrics, int chan_fd);

#endif
