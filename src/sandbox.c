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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "kilnet.h"

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
static const struct {
	int          nr;
	const char  *who;
} allowed[] = {
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
#if defined(__SANITIZE_ADDRESS__)
	/* Sanitizer builds only (make asan; the tests): the ASan/UBSan runtime. */
	{ SCMP_SYS(sched_yield),     "sanitizer runtime: spin locks" },
	{ SCMP_SYS(sigaltstack),     "sanitizer runtime: its signal stack" },
	{ SCMP_SYS(readlink),        "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(fstat),           "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(newfstatat),      "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(lseek),           "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(pread64),         "sanitizer runtime: reports (symbolizing)" },
	{ SCMP_SYS(gettid),          "sanitizer runtime: reports" },
	{ SCMP_SYS(prctl),           "sanitizer runtime" },
#endif
};

static int
build_filter(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i].nr, 0);
	/* conn.c: SO_LINGER resets a client too slow to take its response. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
		    SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET), SCMP_A2(SCMP_CMP_EQ, SO_LINGER));
	/* conn.c: TCP_CORK holds a TLS 1.3 ticket, response and close_notify
	 * for one segment. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
		    SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP), SCMP_A2(SCMP_CMP_EQ, TCP_CORK));
	/* libc malloc: anonymous memory, never executable. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
#if defined(__SANITIZE_ADDRESS__)
	/* Sanitizer builds: a report reads the binary and /proc to symbolize;
	 * reading only (nothing opened for writing, nothing created). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
#endif
	return rc;
}

/* Test only (tests/test_sandbox.sh): with KILNET_TEST_SANDBOX_PROBE set to
 * open, socket or execve, a worker makes that forbidden call a while after it
 * entered the filter (long enough that the master counts it as a crash, not
 * a worker that cannot start), so that a test can see the filter bite. */
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

int
sandbox_enter(const struct config *cfg, struct sandbox_board *b, int slot,
    struct event_base *base)
{
	static struct event *probe;
	const char *call = getenv("KILNET_TEST_SANDBOX_PROBE");
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc;

	if (!cfg->sandbox)
		return 0;
	if (call != NULL && *call != '\0') {
		struct timeval tv = ms_tv(1500);

		if ((probe = evtimer_new(base, probe_cb, (void *)call)) != NULL)
			evtimer_add(probe, &tv);
	}
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
	if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL) {
		log_error("sandbox: cannot make a seccomp filter (out of memory)");
		return -1;
	}
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) == 0 && (rc = build_filter(ctx)) == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		log_error("sandbox: cannot load the seccomp filter: %s (server.sandbox "
		    "= false serves without it)", strerror(-rc));
		return -1;
	}
	return 0;
}
