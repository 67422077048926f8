/*
 * sandbox.c: what a worker gives up before it serves. Started as root, it
 * leaves root for server.user and the file system for an empty folder
 * (server.chroot); then, once it holds all it serves (site, keys, sockets, log
 * descriptor, event loop), it enters a seccomp filter that allows only the
 * system calls serving makes (server.sandbox). privs_resolve runs in the
 * master (at start and on each reload), so that a missing user or folder is an
 * error then, not a dying worker later.
 *
 * A call outside the list raises SIGSYS; the handler leaves the call's number
 * on a board the master shares (mapped before the fork) and ends the worker;
 * the master, reaping it, names the call in its log and starts a new worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "server.h"

/* The chroot of workers started as root when server.chroot is not set: the
 * folder OpenSSH's privilege separation made the custom for this. */
#define EMPTY_DIR       "/var/empty"
/* Workers per board: server.workers is at most 256. */
#define BOARD_SLOTS     256
/* The exit status of a worker the filter stopped (the master reads the board). */
#define VIOLATION_EXIT  159

struct sandbox_board {
	struct {
		atomic_int  pid;
		atomic_int  nr;
	} slot[BOARD_SLOTS];
};

/* Started as root, workers switch to server.user; the user must exist now,
 * not at the first fork (then the error would be a dying worker). */
int
privs_resolve(const struct config *cfg, struct privs *p)
{
	const char *user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	struct passwd *pw;
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->master = getpid();
	p->sandbox = cfg->sandbox;
	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_error("server.user: no such user: %s", user);
		return -1;
	}
	if (cfg->chroot_dir == NULL) {
		/* The default: an empty folder that only root can change, so
		 * that a worker finds nothing there and can put nothing there. */
		if (mkdir(EMPTY_DIR, 0755) == -1 && errno != EEXIST) {
			log_error("cannot make the workers' empty root %s (server.chroot): "
			    "%s; set server.chroot to an existing folder", EMPTY_DIR,
			    strerror(errno));
			return -1;
		}
		if (stat(EMPTY_DIR, &st) == -1 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != 0 || (st.st_mode & 022) != 0) {
			log_error("%s (the workers' root, server.chroot) must be a "
			    "folder owned by root that no one else can write", EMPTY_DIR);
			return -1;
		}
		p->chroot = EMPTY_DIR;
	} else if (*cfg->chroot_dir != '\0') {
		if (stat(cfg->chroot_dir, &st) == -1) {
			log_error("server.chroot: %s: %s", cfg->chroot_dir,
			    strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			log_error("server.chroot: %s: not a folder", cfg->chroot_dir);
			return -1;
		}
		p->chroot = cfg->chroot_dir;
	}
	p->drop = 1;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	return 0;
}

/* Sockets are bound and keys read (by the master): from here on a worker needs
 * neither root nor the files outside its chroot. */
int
privs_drop(const struct privs *p)
{
	if (!p->drop)
		return 0;
	if (p->chroot != NULL && (chroot(p->chroot) == -1 || chdir("/") == -1)) {
		log_error("cannot chroot to %s (server.chroot): %s", p->chroot,
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

/* ------------------------------------------------------------ seccomp */

struct sandbox_board *
sandbox_board_new(void)
{
	struct sandbox_board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED) {
		log_error("cannot map the sandbox's report board: %s", strerror(errno));
		return NULL;
	}
	return b;
}

void
sandbox_board_free(struct sandbox_board *b)
{
	if (b != NULL)
		munmap(b, sizeof(*b));
}

/* Set once at entry, read by the handler (a signal handler sees no arguments). */
static struct sandbox_board *board;
static int board_slot;
static pid_t board_pid;

/* Async-signal-safe: two stores and _exit. */
static void
sigsys_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (board != NULL) {
		atomic_store(&board->slot[board_slot].nr, si->si_syscall);
		atomic_store(&board->slot[board_slot].pid, board_pid);
	}
	_exit(VIOLATION_EXIT);
}

int
sandbox_violation(struct sandbox_board *b, int slot, pid_t pid, char *name,
    size_t size)
{
	char *s;
	int nr;

	if (b == NULL || slot < 0 || slot >= BOARD_SLOTS ||
	    atomic_load(&b->slot[slot].pid) != pid)
		return 0;
	nr = atomic_load(&b->slot[slot].nr);
	atomic_store(&b->slot[slot].pid, 0);
	s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	snprintf(name, size, "%s (%d)", s != NULL ? s : "unknown", nr);
	free(s);
	return 1;
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer checks at exit through ptrace and /proc, which the filter
 * and the chroot refuse: a sandboxed worker of a sanitizer build ends before
 * it (registered after it, so run before it). The master, and workers run
 * with server.sandbox = false and no chroot, keep the check. */
static void
skip_leak_check(int status, void *arg)
{
	(void)arg;
	_exit(status);
}
#endif

/* ------------------------------------------------------- every filter */

#if defined(__SANITIZE_ADDRESS__)
/* Sanitizer builds only (make asan; the tests): what the ASan/UBSan runtime
 * calls, in any process. */
static const struct sandbox_call sanitizer_calls[] = {
	{ SCMP_SYS(sched_yield),     "sanitizer runtime: spin locks" },
	{ SCMP_SYS(sigaltstack),     "sanitizer runtime: its signal stack" },
	{ SCMP_SYS(readlink),        "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(fstat),           "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(newfstatat),      "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(lseek),           "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(pread64),         "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(gettid),          "sanitizer runtime: reports" },
	{ SCMP_SYS(prctl),           "sanitizer runtime" },
	{ SCMP_SYS(mincore),         "sanitizer runtime" },
};
#endif

static int
allow_all(scmp_filter_ctx ctx, const struct sandbox_call *list, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i].nr, 0);
	return rc;
}

scmp_filter_ctx
sandbox_filter_new(const struct sandbox_call *list, size_t n)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int rc;

	if (ctx == NULL)
		return NULL;
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = allow_all(ctx, list, n);
	/* libc malloc, a thread's stack, OpenSSL: anonymous memory, never
	 * executable. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
#if defined(__SANITIZE_ADDRESS__)
	if (rc == 0)
		rc = allow_all(ctx, sanitizer_calls, sizeof(sanitizer_calls) /
		    sizeof(sanitizer_calls[0]));
	/* A report reads the binary and /proc to symbolize: reading only
	 * (nothing opened for writing, nothing created). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
#endif
	if (rc != 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

int
sandbox_filter_load(scmp_filter_ctx ctx, int rc)
{
	if (ctx == NULL)
		return rc != 0 ? rc : -ENOMEM;
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/*
 * What a serving worker calls: libevent's epoll loop, accept4 and the socket
 * I/O of both protocols, OpenSSL's, libc's allocator and the end of the
 * process. Each entry names who needs it. Found by reading the code and by
 * strace of a worker under Gemini and Gopher load, a search, a reload and a
 * stop (recvfrom, epoll_ctl, write, accept4, close, getpid, sendto, read,
 * epoll_wait, brk, rt_sigaction, munmap, rt_sigreturn, rt_sigprocmask,
 * getrandom, futex, exit_group); the rest are paths that load did not take
 * (deadlines, large pages, a clock without vDSO). The test suite runs under
 * the filter.
 */
static const struct sandbox_call allowed[] = {
	/* the event loop (libevent's epoll backend) */
	{ SCMP_SYS(epoll_wait),      "libevent: waiting" },
	{ SCMP_SYS(epoll_ctl),       "libevent: (re-)arming events" },
	{ SCMP_SYS(gettimeofday),    "libevent: its clock, where no vDSO serves it" },
	{ SCMP_SYS(clock_gettime),   "deadlines, libevent: where no vDSO serves it" },
	{ SCMP_SYS(restart_syscall), "the kernel: a wait interrupted by a signal" },
	{ SCMP_SYS(rt_sigreturn),    "returning from libevent's signal handler" },
	{ SCMP_SYS(rt_sigaction),    "libevent: freeing signal events at the end" },
	{ SCMP_SYS(rt_sigprocmask),  "worker.c: blocking late signals at the end" },
	/* connections */
	{ SCMP_SYS(accept4),         "worker.c: taking connections" },
	{ SCMP_SYS(read),            "OpenSSL's socket BIO; libevent's signal pipe" },
	{ SCMP_SYS(recvfrom),        "conn.c: recv of requests, peeks, drains" },
	{ SCMP_SYS(write),           "OpenSSL's socket BIO; the logs; libevent" },
	{ SCMP_SYS(sendto),          "conn.c: send of Gopher responses; libevent" },
	{ SCMP_SYS(shutdown),        "conn.c: half-close before draining" },
	{ SCMP_SYS(close),           "closing connections and, at the end, all" },
	/* OpenSSL */
	{ SCMP_SYS(getpid),          "OpenSSL: its random generator's fork check" },
	{ SCMP_SYS(getrandom),       "OpenSSL: reseeding its random generator" },
	{ SCMP_SYS(futex),           "OpenSSL and libc: locks (uncontended: rare)" },
	/* memory (malloc, free, realloc; never executable: see the filters) */
	{ SCMP_SYS(brk),             "libc malloc" },
	{ SCMP_SYS(munmap),          "libc free of large blocks" },
	{ SCMP_SYS(mremap),          "libc realloc of large blocks" },
	{ SCMP_SYS(madvise),         "libc free: returning pages" },
	/* the end */
	{ SCMP_SYS(exit_group),      "the end of the worker" },
};

/* The worker's calls, and setsockopt for two options only. */
static int
build_filter(scmp_filter_ctx *out)
{
	scmp_filter_ctx ctx = sandbox_filter_new(allowed,
	    sizeof(allowed) / sizeof(allowed[0]));
	int rc = ctx != NULL ? 0 : -ENOMEM;

	/* conn.c: SO_LINGER resets a client too slow to take its response. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
		    SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET), SCMP_A2(SCMP_CMP_EQ, SO_LINGER));
	/* conn.c: TCP_CORK holds a TLS 1.3 ticket, response and close_notify
	 * for one segment. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
		    SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP), SCMP_A2(SCMP_CMP_EQ, TCP_CORK));
	*out = ctx;
	return rc;
}

#ifdef KILNET_TEST_HOOKS
/* Test only (tests/test_sandbox.sh): with KILNET_TEST_SANDBOX_PROBE set to
 * open, socket or execve, a worker makes that forbidden call a while after it
 * entered the filter (long enough that the master counts it as a crash, not
 * a worker that cannot start), so that a test can see the filter bite. Built
 * into the test builds only (the Makefile's TEST_HOOKS). */
static void
probe_cb(evutil_socket_t fd, short what, void *arg)
{
	const char *call = arg;

	(void)fd;
	(void)what;
	if (strcmp(call, "open") == 0)
		open("/tmp/kilnet-sandbox-probe", O_WRONLY | O_CREAT, 0600);
	else if (strcmp(call, "socket") == 0)
		socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(call, "execve") == 0)
		execve("/bin/true", (char *[]){ "true", NULL }, (char *[]){ NULL });
}
#endif

int
sandbox_enter(const struct config *cfg, struct sandbox_board *b, int slot,
    struct event_base *base)
{
#ifdef KILNET_TEST_HOOKS
	static struct event *probe;
	const char *call = getenv("KILNET_TEST_SANDBOX_PROBE");
#endif
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc;

	if (!cfg->sandbox)
		return 0;
#ifdef KILNET_TEST_HOOKS
	if (call != NULL && *call != '\0') {
		struct timeval tv = ms_tv(1500);

		if ((probe = evtimer_new(base, probe_cb, (void *)call)) != NULL)
			evtimer_add(probe, &tv);
	}
#else
	(void)base;
#endif
	/* glibc loads the time zone at the first gmtime_r (the access log's
	 * time; opening /etc/localtime), and never again: done now, while a
	 * file can still be opened. */
	tzset();
	board = b;
	board_slot = slot;
	board_pid = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1) {
		log_error("sandbox: cannot handle SIGSYS: %s", strerror(errno));
		return -1;
	}
#if defined(__SANITIZE_ADDRESS__)
	on_exit(skip_leak_check, NULL);
#endif
	/* Asked for explicitly, though libseccomp would set it: no exec'd
	 * program could ever gain privileges (set-user-ID) from here on. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_error("sandbox: cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	if ((rc = sandbox_filter_load(ctx, build_filter(&ctx))) != 0) {
		log_error("sandbox: cannot load the seccomp filter: %s (server.sandbox "
		    "= false serves without it)", strerror(-rc));
		return -1;
	}
	return 0;
}

/* ------------------------------------------- the editor and the builder */

/*
 * What the editing process and the site builder call: they read and parse
 * files (libconfig, the capsule walk), the editor writes in the state
 * folder and forks one checker per upload, and the builder renders on a
 * second thread. Nothing here opens a socket, runs a program or changes an
 * identity. Each entry names who needs it.
 */
static const struct sandbox_call role_allowed[] = {
	{ SCMP_SYS(read),            "reading files, pipes and channels" },
	{ SCMP_SYS(write),           "writing files, pipes, channels; the log" },
	{ SCMP_SYS(close),           "closing what was opened" },
	{ SCMP_SYS(openat),          "editor.c: the state folder (Landlock bounds it)" },
	{ SCMP_SYS(openat2),         "site.c: the capsule walk (RESOLVE_BENEATH)" },
	{ SCMP_SYS(newfstatat),      "site.c, editor.c: what a name is" },
	{ SCMP_SYS(fstat),           "libc: fdopendir, stdio" },
	{ SCMP_SYS(lseek),           "editor.c: the seed read again; libc" },
	{ SCMP_SYS(getdents64),      "site.c, editor.c: listing folders" },
	{ SCMP_SYS(fcntl),           "libc: fdopendir" },
	{ SCMP_SYS(mkdirat),         "editor.c: versions/, the capsule overlay" },
	{ SCMP_SYS(unlinkat),        "editor.c: temp files, old versions" },
	{ SCMP_SYS(renameat),        "editor.c: a stored file into place" },
	{ SCMP_SYS(renameat2),       "libc's renameat" },
	{ SCMP_SYS(linkat),          "editor.c: a version is a link" },
	{ SCMP_SYS(faccessat),       "editor.c: is there a stored dataset" },
	{ SCMP_SYS(faccessat2),      "libc's faccessat" },
	{ SCMP_SYS(fsync),           "editor.c: stores that survive a crash" },
	{ SCMP_SYS(flock),           "editor.c: one store at a time" },
	{ SCMP_SYS(poll),            "editor.c: its loop" },
	{ SCMP_SYS(ppoll),           "libc's poll" },
	{ SCMP_SYS(recvmsg),         "editor.c: workers' channels from the master" },
	{ SCMP_SYS(sendto),          "editor.c: telling the master (send)" },
	{ SCMP_SYS(pipe2),           "editor.c: a checker's answer" },
	{ SCMP_SYS(clone),           "editor.c: one checker per upload (fork)" },
	{ SCMP_SYS(clone3),          "render_docs.c: the second render thread" },
	{ SCMP_SYS(wait4),           "editor.c: reaping a checker" },
	{ SCMP_SYS(kill),            "editor.c: a checker past its deadline" },
	{ SCMP_SYS(set_robust_list), "libc: a new thread or child" },
	{ SCMP_SYS(rseq),            "libc: a new thread" },
	{ SCMP_SYS(sched_getaffinity), "libc: a new thread" },
	{ SCMP_SYS(gettid),          "libc: a new thread" },
	{ SCMP_SYS(getpid),          "libc, OpenSSL: their fork checks" },
	{ SCMP_SYS(sysinfo),         "libc qsort: sizes its buffer by the memory" },
	{ SCMP_SYS(getrandom),       "libc: malloc's first use in a thread" },
	{ SCMP_SYS(futex),           "libc, render_docs.c: locks, joining" },
	{ SCMP_SYS(brk),             "libc malloc" },
	{ SCMP_SYS(munmap),          "libc free; a thread's stack" },
	{ SCMP_SYS(mremap),          "libc realloc" },
	{ SCMP_SYS(madvise),         "libc free; malloc_trim" },
	{ SCMP_SYS(clock_gettime),   "deadlines, where no vDSO serves it" },
	{ SCMP_SYS(gettimeofday),    "the clock, where no vDSO serves it" },
	{ SCMP_SYS(clock_nanosleep), "test builds: the pause between store steps" },
	{ SCMP_SYS(nanosleep),       "test builds: the pause between store steps" },
	{ SCMP_SYS(restart_syscall), "the kernel: a wait interrupted by a signal" },
	{ SCMP_SYS(rt_sigaction),    "libc" },
	{ SCMP_SYS(rt_sigprocmask),  "libc: threads, fork" },
	{ SCMP_SYS(rt_sigreturn),    "returning from a signal handler" },
	{ SCMP_SYS(exit),            "the end of a thread" },
	{ SCMP_SYS(exit_group),      "the end of the process" },
};

/*
 * The store process (store_etcd.c) calls what the editing process does
 * (it writes in the state folder), and these besides: it is an HTTP client
 * of etcd, on libevent (epoll) and OpenSSL. socket(2) is allowed for TCP
 * over IPv4 and IPv6 only (below).
 */
static const struct sandbox_call store_allowed[] = {
	{ SCMP_SYS(connect),         "store_etcd.c: to the etcd endpoints" },
	{ SCMP_SYS(getsockopt),      "libevent: a connection's outcome (SO_ERROR)" },
	{ SCMP_SYS(setsockopt),      "libevent: TCP_NODELAY and the like" },
	{ SCMP_SYS(getsockname),     "libevent, OpenSSL: the connection's ends" },
	{ SCMP_SYS(getpeername),     "libevent: the connection's ends" },
	{ SCMP_SYS(recvfrom),        "libevent: reading a connection (recv)" },
	{ SCMP_SYS(shutdown),        "libevent, OpenSSL: closing a connection" },
	{ SCMP_SYS(epoll_create1),   "libevent: its loop" },
	{ SCMP_SYS(epoll_ctl),       "libevent: its loop" },
	{ SCMP_SYS(epoll_wait),      "libevent: its loop" },
	{ SCMP_SYS(epoll_pwait),     "libevent: its loop (libc's epoll_wait)" },
	{ SCMP_SYS(eventfd2),        "libevent: waking its loop" },
	{ SCMP_SYS(readv),           "libevent: evbuffer reads" },
	{ SCMP_SYS(writev),          "libevent: evbuffer writes" },
	{ SCMP_SYS(uname),           "OpenSSL: its first use" },
};

/* Async-signal-safe: the call's number to stderr, then the end. */
static void
role_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[112] = "kilnet: error: sandbox violation in the editing process, "
	    "the store process or the builder: system call ";
	size_t n = strlen(msg);
	int nr = si->si_syscall, d = 1;

	(void)sig;
	(void)ctx;
	while (nr / d >= 10)
		d *= 10;
	for (; d > 0 && n < sizeof(msg) - 2; d /= 10)
		msg[n++] = (char)('0' + (nr / d) % 10);
	msg[n++] = '\n';
	if (write(2, msg, n) < 0)
		_exit(VIOLATION_EXIT);
	_exit(VIOLATION_EXIT);
}

/* Landlock (Linux 5.13 on): only the folders given, the first writable for
 * the editor. Where the kernel has none, the user and the chroot bound the
 * process; said once in the log. */
static int
landlock_only(int role, const int *fds, size_t n)
{
	struct landlock_ruleset_attr ra;
	struct landlock_path_beneath_attr pb;
	uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	uint64_t all = read | LANDLOCK_ACCESS_FS_EXECUTE |
	    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
	    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
	    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
	    LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
	uint64_t write = LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG;
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	int rs, rc = 0;

	if (abi < 1) {
		log_warn("sandbox: the kernel has no Landlock; the %s is bounded by "
		    "its user and chroot only", role == SANDBOX_EDITOR ?
		    "editing process" : role == SANDBOX_STORE ? "store process" :
		    "builder");
		return 0;
	}
	/* Links and renames across folders (a version is a link) need REFER
	 * from ABI 2, truncation is its own right from ABI 3. */
	if (abi >= 2) {
		all |= LANDLOCK_ACCESS_FS_REFER;
		write |= LANDLOCK_ACCESS_FS_REFER;
	}
	/* Newer rights (truncate, ioctl) are not handled: the headers of
	 * Debian 12 stop at ABI 2, and a right not handled stays allowed, which
	 * for these two only touches files already opened for writing. */
	memset(&ra, 0, sizeof(ra));
	ra.handled_access_fs = all;
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0)) == -1) {
		log_error("sandbox: Landlock: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (fds[i] == -1)
			continue;
		memset(&pb, 0, sizeof(pb));
		pb.parent_fd = fds[i];
		pb.allowed_access = read | ((role == SANDBOX_EDITOR ||
		    role == SANDBOX_STORE) && i == 0 ? write : 0);
		rc = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH,
		    &pb, 0);
	}
	if (rc == 0)
		rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
	if (rc != 0)
		log_error("sandbox: Landlock: %s", strerror(errno));
	close(rs);
	return rc;
}

int
sandbox_enter_role(const struct config *cfg, int role, const int *fds, size_t n)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc = 0;

	if (!cfg->sandbox)
		return 0;
	tzset();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_error("sandbox: cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (landlock_only(role, fds, n) == -1)
		return -1;
#if defined(__SANITIZE_ADDRESS__)
	on_exit(skip_leak_check, NULL);
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = role_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1 ||
	    (ctx = sandbox_filter_new(role_allowed, sizeof(role_allowed) /
	    sizeof(role_allowed[0]))) == NULL) {
		log_error("sandbox: cannot make a seccomp filter");
		return -1;
	}
	for (size_t i = 0; role == SANDBOX_STORE && i < sizeof(store_allowed) /
	    sizeof(store_allowed[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, store_allowed[i].nr, 0);
	/* store_etcd.c: TCP connections to etcd, no other socket. */
	if (rc == 0 && role == SANDBOX_STORE)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET));
	if (rc == 0 && role == SANDBOX_STORE)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	/* libc stdio: isatty (TCGETS) on a stream's first write. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, TCGETS));
	/* libevent: FIONREAD, what a connection has to read (store process). */
	if (rc == 0 && role == SANDBOX_STORE)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	if ((rc = sandbox_filter_load(ctx, rc)) != 0) {
		log_error("sandbox: cannot load the seccomp filter: %s", strerror(-rc));
		return -1;
	}
	(void)role;
	return 0;
}
