/*
 * keyproc.c: the key process, and the master's handle on it. The key process
 * is the one process that holds private keys: the workers' TLS contexts hold
 * the certificates and remote keys (keysign.c) whose signatures are made here,
 * one request and one reply on each worker's own socketpair (keyproc.h).
 *
 *   master --(control: key files' bytes, new workers' sockets)--> key process
 *   worker --(its own pair: "sign this with key ID")------------> key process
 *
 * The master reads each key file as raw bytes (read(2), never parsed there),
 * sends them and wipes its buffer at once, so that no key is in its memory
 * when it forks anything. The key process parses and checks each against its
 * certificate's public key, and answers the batch as a whole: a problem
 * refuses the start, or the reload (the old generation serves on). Keys are
 * named by the SHA-256 of the certificate's SubjectPublicKeyInfo; a reload's
 * keys join those of the generation serving, which stay for its retiring
 * workers (one generation back), so a key rotated in place still signs for
 * the handshakes those workers have in flight.
 *
 * The key process closes every descriptor but its sockets, switches user and
 * root as a worker does (privs_drop) and enters a seccomp filter of its own.
 * The master keeps a copy of the key process's end of every live worker's
 * pair: a key process restarted after a crash inherits them all, and the
 * master's "abort" written into each wakes any worker still waiting for the
 * dead one. Only the full handshakes in flight then fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "server.h"
#include "keyproc.h"

/* Its process title (what ps and pgrep show). */
#define KP_TITLE         "kilnet-keys"
/* Key files are read whole: a PEM RSA key of 16384 bits is about 13 KB. */
#define KEY_FILE_MAX     (64 * 1024)
/* A certificate's SubjectPublicKeyInfo: RSA 16384 is about 2 KB. */
#define SPKI_MAX         8192
/* One control message: a key file's name, its certificate's public key and
 * the file's bytes (within the sockets' default buffer, 208 KB). */
#define CTL_MAX          (sizeof(struct kp_ctl) + PATH_MAX + SPKI_MAX + KEY_FILE_MAX)
/* The key process's answer to a batch: its problems, a line each. */
#define ANSWER_MAX       8192
/* How long the master waits for the key process to take and check a batch
 * (parsing and comparing a few keys: milliseconds). */
#define ANSWER_WAIT_MS   5000
/* A key process that dies sooner than this after its start is not restarted:
 * it would die again (as for workers, master.c). */
#define RESPAWN_MIN_MS   1000
/* At the end: how long the key process has to exit once its control socket
 * is closed, before SIGKILL. */
#define STOP_WAIT_MS     2000
/* The exit status of a key process its filter stopped. */
#define VIOLATION_EXIT   159

/* Master -> key process. CTL_KEY: one key (flags: KEY_*), then its file's
 * name, the certificate's SubjectPublicKeyInfo and the file's bytes; CTL_COMMIT
 * (flags 1: refuse) ends a batch and is answered (struct kp_answer and the
 * problems' text); CTL_FD carries a new worker's socket (SCM_RIGHTS). */
enum { CTL_KEY = 1, CTL_COMMIT, CTL_FD };
/* What a key that fails its checks does: MUST refuses the batch (start,
 * reload); TRY is reported and the rest goes on (a restart, with the files as
 * they are now); QUIET is skipped (a restart: the previous generation's, whose
 * files may hold newer keys by now). */
enum { KEY_MUST = 0, KEY_TRY = 1, KEY_QUIET = 2 };

struct kp_ctl {
	uint32_t  type, flags, file_len, spki_len, pem_len;
};
struct kp_answer {
	uint32_t  refused;
};

/* --------------------------------------------------------- the master's side */

/* A key as the master knows it: where it is and which it must be; never its
 * bytes. */
struct kp_key {
	char           *file;
	unsigned char  *spki;
	size_t          spki_len;
};
struct kp_set {
	struct kp_key  *v;
	size_t          n;
};
/* The key process's end of a worker's pair; pid 0 while it forks. */
struct kp_worker {
	pid_t           pid;
	int             fd;
};

struct keyproc {
	pid_t             pid;       /* -1: not running */
	int               ctl;       /* the master's end of the control socket */
	long              started;
	struct privs      privs;     /* user and chroot: the copies below */
	char             *user, *chroot;
	struct kp_set     cur, prev; /* the generation serving, and the one before */
	struct kp_worker *w;
	size_t            n_w, cap_w;
	int               wend;      /* a new worker's end, until it is forked */
	atomic_int       *board;     /* shared: the call the filter stopped */
};

static void  kp_main(struct keyproc *, int ctl) __attribute__((noreturn));

static void
set_free(struct kp_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].file);
		free(s->v[i].spki);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void
set_of(struct kp_set *s, const struct tlsctx *t)
{
	const unsigned char *spki;
	const char *file;
	size_t len;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; tlsctx_key_of(t, i, &file, &spki, &len) == 0; i++) {
		s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[s->n].file = xstrdup(file);
		s->v[s->n].spki = xmalloc(len);
		memcpy(s->v[s->n].spki, spki, len);
		s->v[s->n].spki_len = len;
		s->n++;
	}
}

static void
privs_copy(struct keyproc *k, const struct privs *p)
{
	free(k->user);
	free(k->chroot);
	k->privs = *p;
	k->user = xstrdup(p->user != NULL ? p->user : "");
	k->chroot = p->chroot != NULL ? xstrdup(p->chroot) : NULL;
	k->privs.user = k->user;
	k->privs.chroot = k->chroot;
}

static int
privs_same(const struct keyproc *k, const struct privs *p)
{
	return k->privs.sandbox == p->sandbox && k->privs.drop == p->drop &&
	    (!p->drop || (k->privs.uid == p->uid &&
	    k->privs.gid == p->gid && (k->chroot == NULL) == (p->chroot == NULL) &&
	    (p->chroot == NULL || strcmp(k->chroot, p->chroot) == 0)));
}

/* A key file's bytes, read raw into a buffer of ours (no stdio, whose buffers
 * we could not wipe); the caller wipes and frees it. */
static unsigned char *
read_key_file(const char *file, size_t *len, struct diag *d)
{
	unsigned char *buf;
	struct stat st;
	size_t got = 0;
	ssize_t r = 0;
	int fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		diag_add(d, file, 0, NULL, "cannot read the private key: %s",
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		diag_add(d, file, 0, NULL, "cannot read the private key: %s",
		    strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
		diag_add(d, file, 0, NULL, "cannot read the private key: %s",
		    !S_ISREG(st.st_mode) ? "not a file" : "larger than a key file "
		    "(64 KB)");
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		diag_add(d, file, 0, NULL, "cannot read the private key: %s",
		    r == -1 ? strerror(errno) : "the file changed while read");
		explicit_bzero(buf, got);
		free(buf);
		return NULL;
	}
	*len = got;
	return buf;
}

/* Sends one key of the batch; -1 when its file cannot be read (reported in d
 * unless KEY_QUIET), -2 when the key process cannot be told. The bytes are
 * wiped as soon as the kernel has them. */
static int
send_key(struct keyproc *k, const struct kp_key *key, int flags, struct diag *d)
{
	struct diag quiet = { 0 };
	struct kp_ctl h;
	struct iovec iov[4];
	struct msghdr mh;
	unsigned char *pem;
	size_t len = 0;
	ssize_t r;

	pem = read_key_file(key->file, &len, flags == KEY_QUIET ? &quiet : d);
	diag_clear(&quiet);
	if (pem == NULL)
		return -1;
	memset(&h, 0, sizeof(h));
	h.type = CTL_KEY;
	h.flags = (uint32_t)flags;
	h.file_len = (uint32_t)strlen(key->file);
	h.spki_len = (uint32_t)key->spki_len;
	h.pem_len = (uint32_t)len;
	iov[0] = (struct iovec){ &h, sizeof(h) };
	iov[1] = (struct iovec){ key->file, h.file_len };
	iov[2] = (struct iovec){ key->spki, key->spki_len };
	iov[3] = (struct iovec){ pem, len };
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 4;
	if (h.file_len > PATH_MAX || key->spki_len > SPKI_MAX) {
		r = 0;
		errno = ENAMETOOLONG;
	} else {
		while ((r = sendmsg(k->ctl, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
			;
	}
	explicit_bzero(pem, len);
	free(pem);
	if (r != (ssize_t)(sizeof(h) + h.file_len + key->spki_len + len)) {
		diag_add(d, key->file, 0, NULL, "cannot hand the key to the key "
		    "process: %s", r == -1 ? strerror(errno) : "too long");
		return -2;
	}
	return 0;
}

/* Ends a batch: the key process takes it (0) or refuses it (1), its problems
 * in d; -1 when it does not answer. */
static int
commit(struct keyproc *k, int refuse, struct diag *d)
{
	struct kp_ctl h = { .type = CTL_COMMIT, .flags = refuse ? 1 : 0 };
	char buf[sizeof(struct kp_answer) + ANSWER_MAX + 1], *line, *save;
	struct pollfd pfd = { .fd = k->ctl, .events = POLLIN };
	struct kp_answer a;
	long until = now_ms() + ANSWER_WAIT_MS;
	ssize_t r;

	if (send(k->ctl, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
		diag_add(d, NULL, 0, NULL, "cannot reach the key process: %s",
		    strerror(errno));
		return -1;
	}
	for (;;) {
		r = poll(&pfd, 1, (int)(until - now_ms() > 0 ? until - now_ms() : 0));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			diag_add(d, NULL, 0, NULL, "the key process did not answer in "
			    "%d ms", ANSWER_WAIT_MS);
			/* A late answer must not pass for the next one's: a new
			 * key process (master_reap restarts it). */
			kill(k->pid, SIGKILL);
			return -1;
		}
		r = recv(k->ctl, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	if (r < (ssize_t)sizeof(a)) {
		diag_add(d, NULL, 0, NULL, "the key process ended while it checked "
		    "the keys");
		return -1;
	}
	memcpy(&a, buf, sizeof(a));
	buf[r] = '\0';
	for (line = strtok_r(buf + sizeof(a), "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		diag_add(d, NULL, 0, NULL, "%s", line);
	return a.refused ? 1 : 0;
}

/* Tells the key process about a worker's socket; it learns the others by
 * inheriting them when it starts. */
static void
send_fd(struct keyproc *k, int fd)
{
	struct kp_ctl h = { .type = CTL_FD };
	union {
		struct cmsghdr  h;
		char            buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr mh;
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	/* Lost only if it just died: then its successor inherits the socket. */
	if (sendmsg(k->ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 && errno != EPIPE &&
	    errno != ECONNRESET)
		log_error("cannot hand a worker's socket to the key process: %s",
		    strerror(errno));
}

/* Waits for the key process to end (it does once its control socket
 * closes), bounded; then it is killed. */
static void
halt(struct keyproc *k)
{
	struct timespec tick = { 0, 10 * 1000000L };
	long until = now_ms() + STOP_WAIT_MS;
	int st;

	if (k->ctl != -1)
		close(k->ctl);
	k->ctl = -1;
	if (k->pid == -1)
		return;
	while (waitpid(k->pid, &st, WNOHANG) == 0) {
		if (now_ms() > until) {
			log_warn("key process (pid %d) still running %d ms after it was "
			    "told to stop: killing it", (int)k->pid, STOP_WAIT_MS);
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &st, 0);
			break;
		}
		nanosleep(&tick, NULL);
	}
	k->pid = -1;
}

/*
 * Forks a key process and hands it its keys: the generation serving's
 * (restart 0: each must load, else the start fails; restart 1: each that
 * loads, the others reported), and after a restart the previous generation's
 * too (those still in their files). 0, or -1 (problems in d, no process).
 */
static int
spawn(struct keyproc *k, int restart, struct diag *d)
{
	int sv[2], refuse = 0, r;
	struct timeval tv = ms_tv(ANSWER_WAIT_MS);
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		diag_add(d, NULL, 0, NULL, "cannot make the key process's socket: %s",
		    strerror(errno));
		return -1;
	}
	atomic_store(k->board, -1);
	if ((pid = fork()) == -1) {
		diag_add(d, NULL, 0, NULL, "cannot start the key process: fork: %s",
		    strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		kp_main(k, sv[1]);
	}
	close(sv[1]);
	k->pid = pid;
	k->ctl = sv[0];
	k->started = now_ms();
	/* A key process that stops reading must not stop the master. */
	setsockopt(k->ctl, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Every key is sent, so that every problem is reported at once. */
	for (size_t i = 0; i < k->cur.n && refuse != 2; i++) {
		r = send_key(k, &k->cur.v[i], restart ? KEY_TRY : KEY_MUST, d);
		if (r == -2 || (r == -1 && !restart))
			refuse = r == -2 ? 2 : 1;
	}
	for (size_t i = 0; restart && i < k->prev.n && refuse != 2; i++)
		if (send_key(k, &k->prev.v[i], KEY_QUIET, d) == -2)
			refuse = 2;
	if (refuse == 2 || commit(k, refuse, d) != 0) {
		halt(k);
		return -1;
	}
	return 0;
}

struct keyproc *
keyproc_start(const struct tlsctx *t, const struct privs *p, struct diag *d)
{
	struct keyproc *k = xcalloc(1, sizeof(*k));

	k->pid = -1;
	k->ctl = -1;
	k->wend = -1;
	k->board = mmap(NULL, sizeof(*k->board), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (k->board == MAP_FAILED) {
		diag_add(d, NULL, 0, NULL, "cannot map the key process's report "
		    "board: %s", strerror(errno));
		k->board = NULL;
		keyproc_stop(k);
		return NULL;
	}
	privs_copy(k, p);
	set_of(&k->cur, t);
	if (spawn(k, 0, d) == -1) {
		keyproc_stop(k);
		return NULL;
	}
	log_info("key process started (pid %d): %zu key%s", (int)k->pid, k->cur.n,
	    k->cur.n == 1 ? "" : "s");
	return k;
}

int
keyproc_reload(struct keyproc *k, const struct tlsctx *t, const struct privs *p,
    struct diag *d)
{
	struct diag rd = { 0 };
	struct kp_set ns;
	int refuse = 0, r;

	if (k == NULL)
		return 0;
	if (k->pid == -1) {
		diag_add(d, NULL, 0, NULL, "no key process to take the keys");
		return -1;
	}
	set_of(&ns, t);
	for (size_t i = 0; i < ns.n && refuse != 2; i++)
		if ((r = send_key(k, &ns.v[i], KEY_MUST, d)) < 0 && -r > refuse)
			refuse = -r;
	if (refuse == 2 || commit(k, refuse, d) != 0) {
		set_free(&ns);
		return -1;
	}
	set_free(&k->prev);
	k->prev = k->cur;
	k->cur = ns;
	if (privs_same(k, p))
		return 0;
	/* server.user, server.chroot or server.sandbox changed: a key process
	 * as the new settings say, with the keys it just checked (and the
	 * previous generation's, still in their files). */
	privs_copy(k, p);
	halt(k);
	if (spawn(k, 1, &rd) == -1) {
		for (size_t i = 0; i < rd.n; i++)
			log_error("%s", rd.msgs[i]);
		log_error("the key process could not be started again as %s: full "
		    "handshakes fail", k->user);
	} else {
		for (size_t i = 0; i < rd.n; i++)
			log_warn("%s", rd.msgs[i]);
		log_info("key process restarted as %s (pid %d)",
		    k->privs.drop ? k->user : "the server's user", (int)k->pid);
	}
	diag_clear(&rd);
	return 0;
}

int
keyproc_worker_new(struct keyproc *k)
{
	int sv[2];

	if (k == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("cannot make a worker's socket to the key process: %s",
		    strerror(errno));
		return -1;
	}
	if (k->n_w == k->cap_w) {
		k->cap_w = k->cap_w ? 2 * k->cap_w : 8;
		k->w = xrealloc(k->w, k->cap_w * sizeof(*k->w));
	}
	k->w[k->n_w].pid = 0;
	k->w[k->n_w].fd = sv[0];
	k->n_w++;
	k->wend = sv[1];
	if (k->pid != -1)
		send_fd(k, sv[0]);
	return sv[1];
}

static void
worker_drop(struct keyproc *k, size_t i)
{
	close(k->w[i].fd);
	k->w[i] = k->w[--k->n_w];
}

void
keyproc_worker_started(struct keyproc *k, pid_t pid)
{
	if (k == NULL)
		return;
	if (k->wend != -1)
		close(k->wend);
	k->wend = -1;
	for (size_t i = 0; i < k->n_w; i++) {
		if (k->w[i].pid != 0)
			continue;
		if (pid == -1)
			worker_drop(k, i);	/* the key process sees it hang up */
		else
			k->w[i].pid = pid;
		return;
	}
}

void
keyproc_worker_gone(struct keyproc *k, pid_t pid)
{
	if (k == NULL || pid <= 0)
		return;
	for (size_t i = 0; i < k->n_w; i++) {
		if (k->w[i].pid == pid) {
			worker_drop(k, i);
			return;
		}
	}
}

int
keyproc_reaped(struct keyproc *k, pid_t pid, int status)
{
	struct ks_rep abort_rep;
	struct diag d = { 0 };
	char *name;
	int nr, rc;

	if (k == NULL || pid <= 0 || pid != k->pid)
		return 0;
	nr = atomic_load(k->board);
	if (WIFEXITED(status) && WEXITSTATUS(status) == VIOLATION_EXIT && nr >= 0) {
		name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		log_error("key process (pid %d): sandbox violation: system call %s "
		    "(%d) is not allowed; the key process was stopped", (int)pid,
		    name != NULL ? name : "unknown", nr);
		free(name);
	} else if (WIFSIGNALED(status)) {
		log_error("key process (pid %d) killed by signal %d", (int)pid,
		    WTERMSIG(status));
	} else {
		log_error("key process (pid %d) exited with status %d", (int)pid,
		    WEXITSTATUS(status));
	}
	k->pid = -1;
	close(k->ctl);
	k->ctl = -1;
	/* A worker waiting for the dead one's reply stops waiting: only the
	 * handshakes in flight fail. A worker not waiting drops the abort
	 * before its next request (keysign.c). */
	memset(&abort_rep, 0, KS_REP_HEAD);
	abort_rep.status = KS_ABORT;
	for (size_t i = 0; i < k->n_w; i++)
		send(k->w[i].fd, &abort_rep, KS_REP_HEAD, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (now_ms() - k->started < RESPAWN_MIN_MS) {
		log_error("the key process died at start: stopping");
		return -1;
	}
	rc = spawn(k, 1, &d);
	for (size_t i = 0; i < d.n; i++)
		log_error("%s", d.msgs[i]);
	diag_clear(&d);
	if (rc == -1) {
		log_error("the key process could not be restarted: stopping");
		return -1;
	}
	log_info("key process restarted (pid %d)", (int)k->pid);
	return 1;
}

static void
keyproc_free(struct keyproc *k)
{
	for (size_t i = 0; i < k->n_w; i++)
		close(k->w[i].fd);
	free(k->w);
	set_free(&k->cur);
	set_free(&k->prev);
	free(k->user);
	free(k->chroot);
	if (k->board != NULL)
		munmap(k->board, sizeof(*k->board));
	free(k);
}

void
keyproc_stop(struct keyproc *k)
{
	if (k == NULL)
		return;
	halt(k);
	if (k->wend != -1)
		close(k->wend);
	keyproc_free(k);
}

void
keyproc_child(struct keyproc *k, int keep)
{
	if (k != NULL) {
		for (size_t i = 0; i < k->n_w; i++)
			if (k->w[i].fd == keep)
				k->w[i].fd = -1;
		for (size_t i = 0; i < k->n_w; i++)
			if (k->w[i].fd != -1)
				close(k->w[i].fd);
		k->n_w = 0;
		if (k->ctl != -1)
			close(k->ctl);
		keyproc_free(k);
	}
	keysign_use(keep);
}

/* ------------------------------------------------------ the key process */

/* A key, and a context made ready for each kind of signature it makes
 * (made once: fetching the algorithm costs more than an ECDSA signature). */
struct kp_entry {
	unsigned char  id[KEY_ID_LEN];
	EVP_PKEY      *pkey;
	EVP_PKEY_CTX  *ctx[2];     /* ECDSA or RSA PKCS#1 v1.5; RSA raw (PSS) */
};
struct kp_table {
	struct kp_entry *v;
	size_t           n;
};

struct kp_state {
	struct kp_table  cur, prev;        /* the keys it signs with */
	struct kp_table  batch, batch_prev;/* a batch being handed over */
	int              refuse;           /* a KEY_MUST key failed its checks */
	int              serving;          /* a batch taken: the workers are served */
	struct buf       problems;
	struct pollfd   *fds;              /* [0]: control; then the workers */
	size_t           n_fds, cap_fds;
	unsigned char   *msg;              /* CTL_MAX bytes */
};

static atomic_int *kp_board;

static void
table_add(struct kp_table *t, const unsigned char *id, EVP_PKEY *pkey)
{
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	memcpy(t->v[t->n].id, id, KEY_ID_LEN);
	t->v[t->n].pkey = pkey;
	t->n++;
}

static void
table_free(struct kp_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		EVP_PKEY_CTX_free(t->v[i].ctx[0]);
		EVP_PKEY_CTX_free(t->v[i].ctx[1]);
		EVP_PKEY_free(t->v[i].pkey);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static struct kp_entry *
table_find(const struct kp_table *t, const unsigned char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (memcmp(t->v[i].id, id, KEY_ID_LEN) == 0)
			return &t->v[i];
	return NULL;
}

static void
add_fd(struct kp_state *st, int fd)
{
	if (st->n_fds == st->cap_fds) {
		st->cap_fds = st->cap_fds ? 2 * st->cap_fds : 16;
		st->fds = xrealloc(st->fds, st->cap_fds * sizeof(*st->fds));
	}
	st->fds[st->n_fds].fd = fd;
	st->fds[st->n_fds].events = POLLIN;
	st->fds[st->n_fds].revents = 0;
	st->n_fds++;
}

/* Keys are not encrypted with a passphrase: there is no one to ask. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* One key of a batch: parsed (PEM from memory), checked against the
 * certificate's public key, kept for the commit. */
static void
take_key(struct kp_state *st, const struct kp_ctl *h, const unsigned char *p,
    size_t len)
{
	const unsigned char *spki = p + h->file_len, *q = spki;
	const unsigned char *pem = spki + h->spki_len;
	unsigned char id[KEY_ID_LEN];
	char why[256] = "";
	EVP_PKEY *pub = NULL, *key = NULL;
	const char *problem = NULL;
	BIO *bio;

	if ((size_t)h->file_len + h->spki_len + h->pem_len != len ||
	    h->pem_len > INT_MAX) {
		st->refuse = 1;
		buf_printf(&st->problems, "the master sent a malformed key\n");
		return;
	}
	SHA256(spki, h->spki_len, id);
	if ((pub = d2i_PUBKEY(NULL, &q, (long)h->spki_len)) == NULL) {
		problem = "the certificate's public key cannot be read";
	} else if ((bio = BIO_new_mem_buf(pem, (int)h->pem_len)) == NULL) {
		problem = "out of memory";
	} else {
		key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
		if (key == NULL) {
			if (memmem(pem, h->pem_len, "ENCRYPTED", 9) != NULL)
				problem = "cannot load the private key (it is encrypted: "
				    "kilnet reads unencrypted keys only)";
			else
				problem = "cannot load the private key";
			ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
		} else if (EVP_PKEY_eq(pub, key) != 1) {
			problem = "the key does not match the certificate";
		} else if (!EVP_PKEY_is_a(key, "EC") && !EVP_PKEY_is_a(key, "RSA")) {
			problem = "only ECDSA and RSA keys can be used";
		}
	}
	ERR_clear_error();
	EVP_PKEY_free(pub);
	if (problem == NULL) {
		table_add(h->flags == KEY_QUIET ? &st->batch_prev : &st->batch, id, key);
		return;
	}
	EVP_PKEY_free(key);
	if (h->flags == KEY_MUST)
		st->refuse = 1;
	if (h->flags != KEY_QUIET)
		buf_printf(&st->problems, "%.*s: %s%s%s%s\n", (int)h->file_len,
		    (const char *)p, problem, *why ? " (" : "", why, *why ? ")" : "");
}

/* The end of a batch: taken whole (the generation before the one serving is
 * let go) or refused whole; the master is told which, and why. */
static void
take_commit(struct kp_state *st, int ctl, int refuse)
{
	struct kp_answer a;
	struct buf out = { 0 };

	refuse = refuse || st->refuse;
	if (refuse) {
		table_free(&st->batch);
		table_free(&st->batch_prev);
	} else {
		table_free(&st->prev);
		st->prev = st->cur;
		st->cur = st->batch;
		memset(&st->batch, 0, sizeof(st->batch));
		for (size_t i = 0; i < st->batch_prev.n; i++)
			table_add(&st->prev, st->batch_prev.v[i].id,
			    st->batch_prev.v[i].pkey);	/* no context made yet */
		free(st->batch_prev.v);
		memset(&st->batch_prev, 0, sizeof(st->batch_prev));
		st->serving = 1;
	}
	a.refused = (uint32_t)refuse;
	buf_add(&out, &a, sizeof(a));
	buf_add(&out, st->problems.data, st->problems.len > ANSWER_MAX ? ANSWER_MAX :
	    st->problems.len);
	send(ctl, out.data, out.len, MSG_NOSIGNAL);
	buf_free(&out);
	buf_free(&st->problems);
	st->refuse = 0;
}

/* A message from the master; -1 when the master has gone (time to end). */
static int
control(struct kp_state *st, int ctl)
{
	union {
		struct cmsghdr  h;
		char            buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { st->msg, CTL_MAX };
	struct msghdr mh;
	struct cmsghdr *c;
	struct kp_ctl h;
	int fd = -1;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (mh.msg_flags & MSG_TRUNC) {
		/* Never sent so (CTL_MAX): the batch it was in is refused. */
		st->refuse = 1;
		buf_printf(&st->problems, "the master sent a message too long\n");
	} else if ((size_t)n >= sizeof(h)) {
		memcpy(&h, st->msg, sizeof(h));
		switch (h.type) {
		case CTL_FD:
			if (fd != -1)
				add_fd(st, fd);
			fd = -1;
			break;
		case CTL_KEY:
			take_key(st, &h, st->msg + sizeof(h), (size_t)n - sizeof(h));
			break;
		case CTL_COMMIT:
			take_commit(st, ctl, h.flags != 0);
			break;
		}
	}
	if (fd != -1)
		close(fd);
	explicit_bzero(st->msg, (size_t)n);
	return 0;
}

/* MGF1 (RFC 8017 B.2.1) of seed into out. */
static int
mgf1(const EVP_MD *md, const unsigned char *seed, size_t slen,
    unsigned char *out, size_t olen)
{
	unsigned char h[EVP_MAX_MD_SIZE], c[4];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int hl;
	uint32_t i = 0;
	size_t done = 0;
	int ok = ctx != NULL;

	while (ok && done < olen) {
		c[0] = (unsigned char)(i >> 24);
		c[1] = (unsigned char)(i >> 16);
		c[2] = (unsigned char)(i >> 8);
		c[3] = (unsigned char)i;
		i++;
		ok = EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, seed, slen) &&
		    EVP_DigestUpdate(ctx, c, 4) && EVP_DigestFinal_ex(ctx, h, &hl);
		if (ok) {
			memcpy(out + done, h, olen - done < hl ? olen - done : hl);
			done += olen - done < hl ? olen - done : hl;
		}
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/*
 * A raw RSA operation (RSA_NO_PADDING) is done only on a block encoded for
 * RSA-PSS, RFC 8017 9.1.1: EM = maskedDB || H || 0xbc, with DB = zeros || 0x01
 * || salt, the salt as long as the hash (SHA-256, -384 or -512), as TLS asks
 * (RFC 8446 4.2.3). So a worker taken over can have PSS signatures made, but
 * cannot use the key process to decrypt: a ciphertext has that shape with a
 * chance below 2^-1000.
 */
static int
pss_shaped(const unsigned char *em, size_t len, int bits)
{
	const EVP_MD *mds[] = { EVP_sha256(), EVP_sha384(), EVP_sha512() };
	unsigned char db[KEYSIGN_MAX];
	size_t embits, emlen, msbits, hlen, dblen, ps, i;

	if (bits < 16 || len != ((size_t)bits + 7) / 8 || len > sizeof(db))
		return 0;
	embits = (size_t)bits - 1;
	emlen = (embits + 7) / 8;
	msbits = embits & 7;
	if (emlen < len) {	/* the block is one byte longer: a leading zero */
		if (em[0] != 0)
			return 0;
		em++;
	}
	if (em[emlen - 1] != 0xbc || (msbits && (em[0] & ~(0xff >> (8 - msbits)))))
		return 0;
	for (size_t m = 0; m < sizeof(mds) / sizeof(mds[0]); m++) {
		hlen = (size_t)EVP_MD_get_size(mds[m]);
		if (emlen < 2 * hlen + 2)
			continue;
		dblen = emlen - hlen - 1;
		if (!mgf1(mds[m], em + dblen, hlen, db, dblen))
			return 0;
		for (i = 0; i < dblen; i++)
			db[i] ^= em[i];
		if (msbits)
			db[0] &= (unsigned char)(0xff >> (8 - msbits));
		ps = dblen - hlen - 1;
		for (i = 0; i < ps && db[i] == 0; i++)
			;
		if (i == ps && db[ps] == 0x01)
			return 1;
	}
	return 0;
}

/* One signature; its length in sig, or -1. */
static int
sign(struct kp_entry *e, const struct ks_req *rq, unsigned char *sig)
{
	EVP_PKEY_CTX **ctx;
	size_t len = KEYSIGN_MAX;
	int raw = 0, ok;

	if (rq->op == KS_ECDSA)
		ok = EVP_PKEY_is_a(e->pkey, "EC");
	else if (rq->op == KS_RSA)
		ok = EVP_PKEY_is_a(e->pkey, "RSA") &&
		    (rq->padding == RSA_PKCS1_PADDING || ((raw = rq->padding ==
		    RSA_NO_PADDING) && pss_shaped(rq->data, rq->len,
		    EVP_PKEY_get_bits(e->pkey))));
	else
		ok = 0;
	ctx = &e->ctx[raw];
	if (ok && *ctx == NULL) {
		ok = (*ctx = EVP_PKEY_CTX_new(e->pkey, NULL)) != NULL &&
		    EVP_PKEY_sign_init(*ctx) == 1 && (rq->op != KS_RSA ||
		    EVP_PKEY_CTX_set_rsa_padding(*ctx, rq->padding) == 1);
		if (!ok) {
			EVP_PKEY_CTX_free(*ctx);
			*ctx = NULL;
		}
	}
	ok = ok && EVP_PKEY_sign(*ctx, sig, &len, rq->data, rq->len) == 1;
	ERR_clear_error();
	return ok ? (int)len : -1;
}

/* One request from a worker's socket; -1 when the worker has gone. */
static int
serve(struct kp_state *st, int fd)
{
	struct ks_req rq;
	struct ks_rep rp;
	struct kp_entry *key;
	ssize_t n;
	int len;

	n = recv(fd, &rq, sizeof(rq), MSG_DONTWAIT);
	if (n == 0)
		return -1;
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	memset(&rp, 0, KS_REP_HEAD);
	rp.status = KS_FAIL;
	if ((size_t)n >= KS_REQ_HEAD) {
		rp.id = rq.id;
		if (rq.len == (size_t)n - KS_REQ_HEAD &&
		    ((key = table_find(&st->cur, rq.key)) != NULL ||
		    (key = table_find(&st->prev, rq.key)) != NULL) &&
		    (len = sign(key, &rq, rp.sig)) > 0) {
			rp.status = KS_OK;
			rp.len = (uint16_t)len;
		}
	}
	/* Never blocks: a worker that does not read loses its replies. */
	send(fd, &rp, KS_REP_HEAD + rp.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return 0;
}

/* Closes every descriptor but the sorted keep[0..n-1]. */
static void
close_others(int *keep, size_t n)
{
	unsigned int lo = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (keep[j] < keep[i]) {
				int x = keep[i];

				keep[i] = keep[j];
				keep[j] = x;
			}
	for (size_t i = 0; i <= n; i++) {
		unsigned int hi = i < n ? (unsigned int)keep[i] : ~0U;

		if (hi > lo && close_range(lo, hi - 1, 0) == -1)
			for (unsigned int fd = lo; fd < hi && fd < 65536; fd++)
				close((int)fd);
		if (i < n)
			lo = (unsigned int)keep[i] + 1;
	}
}

/* Async-signal-safe: a store and _exit; the master names the call. */
static void
kp_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (kp_board != NULL)
		atomic_store(kp_board, si->si_syscall);
	_exit(VIOLATION_EXIT);
}

/*
 * What the key process calls, each with who needs it: its loop (poll), its
 * sockets, OpenSSL's signing and key parsing (memory, random numbers, locks),
 * the log and the end. Nothing opens a file, makes a socket or runs a
 * program. Found by reading the code and by strace of the key process over a
 * start, a reload, signatures (ECDSA and RSA) and a stop; the test suite runs
 * under the filter.
 */
static const struct sandbox_call kp_allowed[] = {
	{ SCMP_SYS(poll),            "the loop: waiting for requests and the master" },
	{ SCMP_SYS(ppoll),           "the loop, where libc's poll(2) is ppoll" },
	{ SCMP_SYS(restart_syscall), "the kernel: a wait interrupted (SIGSTOP/SIGCONT)" },
	{ SCMP_SYS(recvfrom),        "signing requests from the workers (recv)" },
	{ SCMP_SYS(sendto),          "signatures to the workers, answers to the master" },
	{ SCMP_SYS(recvmsg),         "the master's messages: keys, workers' sockets "
	                             "(SCM_RIGHTS)" },
	{ SCMP_SYS(close),           "a socket of a worker gone, or one unwanted" },
	{ SCMP_SYS(write),           "log messages to stderr" },
	{ SCMP_SYS(getrandom),       "OpenSSL: seeding its random generator (ECDSA "
	                             "nonces, RSA blinding)" },
	{ SCMP_SYS(getpid),          "OpenSSL: its random generator's fork check" },
	{ SCMP_SYS(futex),           "OpenSSL and libc: locks (uncontended: rare)" },
	{ SCMP_SYS(clock_gettime),   "OpenSSL: reseed times, where no vDSO serves it" },
	{ SCMP_SYS(gettimeofday),    "libc time(), where no vDSO serves it" },
	{ SCMP_SYS(brk),             "libc malloc" },
	{ SCMP_SYS(munmap),          "libc free of large blocks" },
	{ SCMP_SYS(mremap),          "libc realloc of large blocks" },
	{ SCMP_SYS(madvise),         "libc free: returning pages" },
	{ SCMP_SYS(exit_group),      "the end: the master closed the control socket" },
};

static int
kp_sandbox(void)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = kp_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_error("key process: cannot prepare its sandbox: %s", strerror(errno));
		return -1;
	}
	ctx = sandbox_filter_new(kp_allowed, sizeof(kp_allowed) / sizeof(kp_allowed[0]));
	if ((rc = sandbox_filter_load(ctx, 0)) != 0) {
		log_error("key process: cannot load its seccomp filter: %s",
		    strerror(-rc));
		return -1;
	}
	return 0;
}

/* The key process: never returns. */
static void
kp_main(struct keyproc *k, int ctl)
{
	static const int ignored[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR2, SIGPIPE };
	struct kp_state st;
	sigset_t none;
	int *keep;
	size_t n_keep = 0;

	/* Signals to the process group are the master's to act on: the key
	 * process outlives the workers' drain and ends when the master closes
	 * its control socket (or dies: PR_SET_PDEATHSIG). */
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	log_process(KP_TITLE);
	log_init("off", 0, 0);		/* closes the access log */
	memset(&st, 0, sizeof(st));
	add_fd(&st, ctl);
	keep = xcalloc(k->n_w + 4, sizeof(*keep));
	keep[n_keep++] = 0;
	keep[n_keep++] = 1;
	keep[n_keep++] = 2;
	keep[n_keep++] = ctl;
	for (size_t i = 0; i < k->n_w; i++) {
		add_fd(&st, k->w[i].fd);
		keep[n_keep++] = k->w[i].fd;
	}
	/* The listeners, the workers' channels, the signalfd: none of ours. */
	close_others(keep, n_keep);
	free(keep);
	kp_board = k->board;
	if (privs_drop(&k->privs) == -1)
		_exit(1);
	/* Set after the change of user, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != k->privs.master)
		_exit(0);
	if (k->privs.sandbox && kp_sandbox() == -1)
		_exit(1);
	st.msg = xmalloc(CTL_MAX);
	for (;;) {
		/* Requests queued in the sockets it inherited wait until it
		 * holds its keys (a restart). */
		size_t n = st.serving ? st.n_fds : 1;

		if (poll(st.fds, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		/* One request a worker a turn: none waits behind another's. */
		for (size_t i = n; i-- > 1; ) {
			if (st.fds[i].revents == 0)
				continue;
			if (serve(&st, st.fds[i].fd) == -1 ||
			    (st.fds[i].revents & (POLLHUP | POLLERR | POLLNVAL))) {
				close(st.fds[i].fd);
				st.fds[i] = st.fds[--st.n_fds];
			}
		}
		if (st.fds[0].revents != 0 && control(&st, ctl) == -1)
			_exit(0);
	}
}
