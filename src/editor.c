/*
 * editor.c: the editing process. One per generation, forked by the master
 * before that generation's workers; it gives up root (server.user, chroot),
 * keeps only the state folder (read and write), the capsule folder and the
 * seed dataset (read), and enters a filter of its own (sandbox.c). Each
 * worker has a socketpair to it (editchan.c frames, titan.c): an editor's
 * request arrives there, checked for certificate and size by the worker.
 *
 * An upload is checked by a child of its own (fork), exactly as `kilnet -t`
 * checks a dataset: the whole site is built from it. The child has a
 * deadline (EDIT_CHECK_MS): a dataset that takes libconfig a minute is
 * refused with a 59, and uploads from other editors are checked meanwhile.
 * A good upload is stored without loss, in the state folder only:
 *
 *   STATE/.upload-XXXXXX        written and fsync'd, then checked
 *   STATE/versions/STAMP-seed.conf  the dataset before the first edit, once
 *   STATE/.pending              what the store is about to do (inode, editor)
 *   rename -> STATE/network.conf, fsync STATE: the new dataset, whole
 *   STATE/versions/STAMP-WHO.conf  a link to it; the last VERSIONS_KEPT kept
 *   STATE/audit.log             one line
 *   .pending removed
 *
 * A crash before the rename leaves the old dataset and no trace of the new
 * one; after it, the next start (or store) finds .pending naming the inode
 * that is now network.conf and finishes the version and the audit line, so
 * that the dataset, /versions/ and audit.log always agree. Capsule files go
 * to STATE/capsule (an overlay over capsule/, site.c) the same way.
 *
 * Then the master is told (ED_STORED); it builds the new site in an
 * unprivileged builder (build.c), swaps the workers and says ED_LIVE, and
 * only then does the editor get its 30: the page it is sent to is served.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define VERSIONS_KEPT 20
#define VERSIONS_DIR  "versions"
#define PENDING       ".pending"
#define LOCK_FILE     ".lock"
#define TEXT_MIME     "text/plain; charset=utf-8"
/* An upload's check (parse and build) may take this long; past it, a 59
 * and nothing stored. libconfig checks duplicate names in quadratic time:
 * 30,000 settings take it 5 s, the 10,000-member dataset 0.4 s. */
#define EDIT_CHECK_MS 5000
/* The longest an editing process waits with nothing to do. */
#define EDIT_TICK_MS  1000

struct wchan {
	int         fd;
	struct buf  in, out;
	size_t      off;
};

/* An upload being checked by a child. */
struct check {
	pid_t          pid;
	int            fd;          /* its answer: "STATUS META\n" */
	long           deadline;
	struct buf     res;
	int            w;           /* whose: the worker channel, its id */
	uint32_t       id;
	char           fp[65];
	char          *path;
	unsigned char *body;
	size_t         len;
	char          *tmp;         /* dataset: the upload, written before */
	char           base[24];    /* server.store: the revision it was based on */
};

/* server.store: an upload sent to the store process, awaiting its word. */
struct remote {
	uint32_t  rid;
	int       w;
	uint32_t  id;
	char      fp[65];
	char     *path;
	size_t    len;
	char     *meta;             /* the 30's, once live */
};

/* A stored upload waiting for the master to go live with it. */
struct waiting {
	uint32_t  tag;
	int       w;
	uint32_t  id;
	char     *meta;
};

struct ed {
	const struct config *cfg;
	const struct site   *site;
	int                  state_fd, capsule_fd, seed_fd, ctl;
	struct wchan        *w;
	size_t               n_w;
	struct check        *c;
	size_t               n_c;
	struct waiting      *wait;
	size_t               n_wait;
	uint32_t             next_tag;
	int                  retired;
	long                 pause_ms;
	long                 check_ms;      /* EDIT_CHECK_MS */
	/* server.store: the channel to the store process (-1: none now) */
	int                  shared, store_fd;
	struct buf           sin, sout;
	size_t               soff;
	struct remote       *r;
	size_t               n_r;
	uint32_t             next_rid;
};

static void
reply(struct ed *e, int w, uint32_t id, int status, const char *meta,
    const void *body, size_t len)
{
	struct chan_msg m;

	if (w < 0 || (size_t)w >= e->n_w || e->w[w].fd == -1)
		return;
	memset(&m, 0, sizeof(m));
	m.id = id;
	m.code = (uint32_t)status;
	m.part[0] = (const unsigned char *)meta;
	m.n[0] = strlen(meta);
	m.part[1] = body;
	m.n[1] = body != NULL ? len : 0;
	chan_pack(&e->w[w].out, &m);
}

/* Test builds only (KILNET_TEST_STORE_DELAY_MS): a pause between the steps
 * of a store, so that a test can kill the editing process inside each. */
static void
pause_step(const struct ed *e)
{
	if (e->pause_ms > 0)
		usleep((useconds_t)e->pause_ms * 1000);
}

static void
audit(struct ed *e, const char *fp, const char *path, size_t size, int status,
    const char *meta)
{
	char stamp[32], *line, *p, *m;
	time_t t = time(NULL);
	struct tm tm;
	int fd;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The path and the meta carry an editor's bytes: escaped, so that no
	 * line can be broken or another forged (log_escape). */
	p = log_escape(path, strlen(path));
	m = log_escape(meta, strlen(meta));
	line = xasprintf("%s editor=%.64s path=%s size=%zu result=%d %s\n", stamp,
	    fp, p, size, status, m);
	log_info("titan: %.*s", (int)strlen(line) - 1, line);
	metrics_edit(status == 30 ? ME_STORED : ME_REFUSED);
	/* server.store: the trail is etcd's too (a store's record goes in its
	 * own transaction, store_etcd.c). */
	if (e->shared && e->store_fd != -1 && status != 30) {
		struct chan_msg c;
		char *rec = xasprintf("%d %zu %s", status, size, meta);

		memset(&c, 0, sizeof(c));
		c.code = CHAN_AUDIT;
		memcpy(c.fp, fp, strnlen(fp, 64));
		c.part[0] = (const unsigned char *)path;
		c.n[0] = strlen(path);
		c.part[1] = (const unsigned char *)rec;
		c.n[1] = strlen(rec);
		chan_pack(&e->sout, &c);
		free(rec);
	}
	fd = openat(e->state_fd, "audit.log", O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd != -1) {
		if (write(fd, line, strlen(line)) < 0 || fsync(fd) == -1)
			log_warn("audit.log: %s", strerror(errno));
		close(fd);
	}
	free(p);
	free(m);
	free(line);
}

/* "gemini://HOST[:PORT]PATH", the path percent-encoded (a capsule name may
 * hold '?', '#', '%', a space or any UTF-8). */
static char *
public_url(const struct ed *e, const char *path)
{
	const struct site *s = e->site;
	size_t cap = 3 * strlen(path) + 1;
	char *enc = xmalloc(cap), *u;

	if (url_encode_path(path, strlen(path), enc, cap) == -1)
		enc[0] = '\0';
	if (s->ro.gemini_port == 1965)
		u = xasprintf("gemini://%s%s", s->hostname, enc);
	else
		u = xasprintf("gemini://%s:%d%s", s->hostname, s->ro.gemini_port, enc);
	free(enc);
	return u;
}

/* The first member page the new site has that the old one lacks or shows
 * otherwise; "/" when none (the change is elsewhere). */
static const char *
changed_page(const struct site *old, const struct site *nu)
{
	for (size_t i = 0; i < nu->n_gemini; i++) {
		const struct resource *r = &nu->gemini[i], *o;
		size_t n = strlen(r->key);

		if (strncmp(r->key, "/members/", 9) != 0 ||
		    strchr(r->key + 9, '/') != NULL || n < 9 + 5 ||
		    strcmp(r->key + n - 4, ".gmi") != 0)
			continue;
		o = site_gemini(old, r->key);
		if (o == NULL || o->len != r->len || memcmp(o->data, r->data, r->len))
			return r->key;
	}
	return "/";
}

/* The first problem that is not a warning, for the meta line. */
static const char *
first_error(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->msgs[i], "warning: ", 9) != 0)
			return d->msgs[i];
	return d->n > 0 ? d->msgs[0] : "the upload could not be checked";
}

/* ---------------------------------------------------------------- versions */

/*
 * A new version's name: "YYYYMMDDTHHMMSS.UUUUUUZ-WHO.conf". The microseconds
 * keep the order of two stores in one second (the seed, kept just before the
 * first edit, sorts first); a clash gets a later stamp.
 */
static char *
version_name(int vfd, const char *who)
{
	struct timespec ts;
	char stamp[40], *name;
	struct tm tm;
	struct stat st;

	clock_gettime(CLOCK_REALTIME, &ts);
	for (;;) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
		name = xasprintf("%s.%06ldZ-%s.conf", stamp, ts.tv_nsec / 1000, who);
		if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return name;
		free(name);
		if ((ts.tv_nsec += 1000) >= 1000000000L) {
			ts.tv_nsec -= 1000000000L;
			ts.tv_sec++;
		}
	}
}

/* 1 when a version of the seed is kept already. */
static int
has_seed(int vfd)
{
	char **v;
	size_t n = sf_list_versions(vfd, &v), l;
	int found = 0;

	for (size_t i = 0; i < n && !found; i++)
		found = (l = strlen(v[i])) > 10 && strcmp(v[i] + l - 10, "-seed.conf") == 0;
	sf_free_names(v, n);
	return found;
}

/* A version linked to STATE/network.conf (unless one is already: a store
 * killed after its link), then the oldest past the limit go. */
static void
keep_version(int vfd, int state_fd, const char *who)
{
	char *name, **v;
	struct stat cur, st;
	int have = 0;
	size_t n = sf_list_versions(vfd, &v);

	if (fstatat(state_fd, STATE_DATASET, &cur, AT_SYMLINK_NOFOLLOW) == 0)
		for (size_t i = 0; i < n && !have; i++)
			have = fstatat(vfd, v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_ino == cur.st_ino && st.st_dev == cur.st_dev;
	sf_free_names(v, n);
	name = version_name(vfd, who);
	if (!have && linkat(state_fd, STATE_DATASET, vfd, name, 0) == -1)
		log_warn("versions/%s: %s", name, strerror(errno));
	free(name);
	n = sf_list_versions(vfd, &v);
	for (size_t i = 0; i + VERSIONS_KEPT < n; i++)
		unlinkat(vfd, v[i], 0);
	sf_free_names(v, n);
	fsync(vfd);
}

/*
 * What a store killed midway left: temp files, and a .pending record. When
 * the record names the inode that STATE/network.conf now is, the rename was
 * done and the bookkeeping was not: it is done now (a version, an audit
 * line). Else the store did not happen, and the record goes.
 */
static void
recover(struct ed *e)
{
	struct buf b = { 0 };
	unsigned long long ino = 0;
	unsigned long size = 0;
	char fp[65] = "", who[9];
	struct stat st;
	int vfd;

	if (sf_read_at(e->state_fd, PENDING, &b) == 0 && b.len > 0 &&
	    sscanf((const char *)b.data, "%llu %lu %64[0-9a-f]", &ino, &size, fp) == 3 &&
	    fstatat(e->state_fd, STATE_DATASET, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (unsigned long long)st.st_ino == ino) {
		if ((vfd = sf_open_dir(e->state_fd, VERSIONS_DIR, 1)) != -1) {
			memcpy(who, fp, 8);
			who[8] = '\0';
			keep_version(vfd, e->state_fd, who);
			close(vfd);
		}
		audit(e, fp, "/" STATE_DATASET, size, 30,
		    "stored (its bookkeeping finished after a restart)");
	}
	buf_free(&b);
	unlinkat(e->state_fd, PENDING, 0);
	fsync(e->state_fd);
}

/* Files named PREFIX* in folder dirfd (temp files of a store killed midway;
 * called under the lock, so none is in use). */
static void
remove_stale(int dirfd, const char *prefix)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = fd != -1 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dp == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd, de->d_name, 0);
	closedir(dp);
}

/* Stores are one at a time across editing processes (a reload makes a new
 * one while the old finishes): a lock on STATE/.lock. */
static int
store_lock(struct ed *e)
{
	int fd = openat(e->state_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);

	if (fd != -1 && flock(fd, LOCK_EX) == -1) {
		close(fd);
		fd = -1;
	}
	if (fd != -1)
		recover(e);
	return fd;
}

static void
store_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}

/* ------------------------------------------------------------------ checks */

/* A line of the upload that starts with @include: a dataset names no other
 * file (it could make the check read one, and its text the reply). */
static int
include_line(const unsigned char *p, size_t n)
{
	int line = 1;

	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		while (j < n && (p[j] == ' ' || p[j] == '\t'))
			j++;
		if (n - j >= 8 && memcmp(p + j, "@include", 8) == 0)
			return line;
		while (j < n && p[j] != '\n')
			j++;
		i = j;
		line++;
	}
	return 0;
}

/* The dataset being served, into cfg->net: STATE/network.conf when an
 * editor stored one, else the seed (parsed by the master, inherited). */
static int
current_dataset(struct ed *e, struct config *cfg, struct diag *d)
{
	struct buf b = { 0 };
	char *name;
	int rc;

	if (sf_read_at(e->state_fd, STATE_DATASET, &b) == -1)
		return errno == ENOENT ? 0 : -1;
	name = xasprintf("%s/" STATE_DATASET, cfg->state_dir);
	rc = config_read_dataset(cfg, b.data, b.len, name, d);
	free(name);
	buf_free(&b);
	return rc;
}

/*
 * In the checker child: builds the site an upload would make, and says
 * what the editor is to be told: "30 PAGE" (the page to send the editor to)
 * or "59 PROBLEM". A capsule file passes only when the site serves it, as
 * uploaded: not a name the site cannot serve, not shadowed by a generated
 * page, not over the capsule's size limit.
 */
static void
check_child(struct ed *e, const struct check *k, int out)
{
	struct config *cfg = (struct config *)e->cfg;	/* this child's copy */
	struct site_src src = { e->capsule_fd, -1, NULL, NULL, 0 };
	const struct resource *r;
	struct diag d = { 0 };
	struct site *s = NULL;
	char *res;
	int line, dataset = strcmp(k->path, "/" STATE_DATASET) == 0, ofd;

	ofd = openat(e->state_fd, STATE_CAPSULE, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	src.overlay_fd = ofd;
	if (dataset && (line = include_line(k->body, k->len)) > 0) {
		res = xasprintf("59 %d: @include is not allowed in an uploaded "
		    "dataset", line);
	} else if (dataset && config_read_dataset(cfg, k->body, k->len, "", &d) == -1) {
		res = xasprintf("59 %s", first_error(&d));
	} else if (!dataset && current_dataset(e, cfg, &d) == -1) {
		res = xasprintf("40 the dataset served now cannot be read: %s",
		    first_error(&d));
	} else {
		if (!dataset) {
			src.extra_path = k->path;
			src.extra = k->body;
			src.extra_len = k->len;
		}
		if ((s = site_build_from(cfg, &src, &d)) == NULL)
			res = xasprintf("59 %s", first_error(&d));
		else if (dataset)
			res = xasprintf("30 %s", changed_page(e->site, s));
		else if ((r = site_gemini(s, k->path)) == NULL || r->generated ||
		    r->len - r->body_off != k->len ||
		    memcmp(r->data + r->body_off, k->body, k->len) != 0 ||
		    (r = site_gopher(s, k->path)) == NULL || r->generated)
			res = xasprintf("59 %s: the site would not serve it%s%s",
			    k->path, d.n > 0 ? ": " : "", d.n > 0 ? d.msgs[d.n - 1] : "");
		else
			res = xasprintf("30 %s", k->path);
	}
	if (write(out, res, strlen(res)) < 0)
		_exit(1);
	_exit(0);
}

static void
check_free(struct check *k)
{
	if (k->fd != -1)
		close(k->fd);
	buf_free(&k->res);
	free(k->path);
	free(k->body);
	if (k->tmp != NULL)
		free(k->tmp);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

static void
start_check(struct ed *e, int w, const struct chan_msg *m, const char *path)
{
	struct check k;
	int p[2];

	memset(&k, 0, sizeof(k));
	k.w = w;
	k.id = m->id;
	memcpy(k.fp, m->fp, 65);
	k.path = xstrdup(path);
	k.len = m->n[2];
	k.body = xmalloc(k.len + 1);
	memcpy(k.body, m->part[2], k.len);
	/* server.store: the revision served when the upload came, which the
	 * editor's text was based on (the store compares it with etcd's). */
	if (e->shared) {
		struct buf b = { 0 };

		if (sf_read_at(e->state_fd, STATE_REVISION, &b) == 0 && b.len > 0 &&
		    b.len < sizeof(k.base))
			snprintf(k.base, sizeof(k.base), "%lld",
			    strtoll((const char *)b.data, NULL, 10));
		buf_free(&b);
	}
	if (pipe2(p, O_CLOEXEC) == -1 || (k.pid = fork()) == -1) {
		reply(e, w, m->id, 40, "the upload cannot be checked now (out of "
		    "processes or descriptors)", NULL, 0);
		audit(e, m->fp, path, k.len, 40, "no process to check it");
		free(k.path);
		free(k.body);
		return;
	}
	if (k.pid == 0) {
		close(p[0]);
		check_child(e, &k, p[1]);
	}
	close(p[1]);
	k.fd = p[0];
	k.deadline = now_ms() + e->check_ms;
	e->c = xrealloc(e->c, (e->n_c + 1) * sizeof(*e->c));
	e->c[e->n_c++] = k;
}

/* ------------------------------------------------------------------ stores */

/* Tells the master that a new dataset or capsule file is stored; the 30
 * goes to the editor once the master has gone live with it (ED_LIVE). */
static void
wait_live(struct ed *e, int w, uint32_t id, char *meta)
{
	struct ed_ctl c = { ED_STORED, ++e->next_tag };

	if (send(e->ctl, &c, sizeof(c), MSG_NOSIGNAL) != (ssize_t)sizeof(c)) {
		reply(e, w, id, 40, "stored, but the server could not be told to "
		    "serve it (it will at its next reload)", NULL, 0);
		free(meta);
		return;
	}
	e->wait = xrealloc(e->wait, (e->n_wait + 1) * sizeof(*e->wait));
	e->wait[e->n_wait].tag = c.tag;
	e->wait[e->n_wait].w = w;
	e->wait[e->n_wait].id = id;
	e->wait[e->n_wait].meta = meta;
	e->n_wait++;
}

static void
store_dataset(struct ed *e, const struct check *k, const char *page)
{
	char tmp[32], who[9], *name, *meta = NULL, *rec;
	struct buf seed = { 0 };
	struct stat st;
	int lock, vfd = -1, status = 40;

	if ((lock = store_lock(e)) == -1) {
		meta = xasprintf("cannot lock the state folder: %s", strerror(errno));
		goto done;
	}
	remove_stale(e->state_fd, ".upload-");
	snprintf(tmp, sizeof(tmp), ".upload-%08lx", (unsigned long)random());
	if (sf_write_new(e->state_fd, tmp, k->body, k->len, 0600) == -1 ||
	    fstatat(e->state_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    (vfd = sf_open_dir(e->state_fd, VERSIONS_DIR, 1)) == -1) {
		meta = xasprintf("cannot write in the state folder: %s",
		    strerror(errno));
		unlinkat(e->state_fd, tmp, 0);
		goto done;
	}
	pause_step(e);
	if (faccessat(e->state_fd, STATE_DATASET, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
	    e->seed_fd != -1 && !has_seed(vfd) &&
	    lseek(e->seed_fd, 0, SEEK_SET) == 0 && sf_read_fd(e->seed_fd, &seed) == 0) {
		name = version_name(vfd, "seed");
		if (sf_write_new(vfd, name, seed.data, seed.len, 0600) == -1)
			log_warn("versions/%s: cannot keep the seed dataset: %s", name,
			    strerror(errno));
		free(name);
		fsync(vfd);
		pause_step(e);
	}
	buf_free(&seed);
	/* What the rename is about to do, for recover() after a crash. */
	rec = xasprintf("%llu %zu %.64s\n", (unsigned long long)st.st_ino, k->len,
	    k->fp);
	unlinkat(e->state_fd, PENDING, 0);
	if (sf_write_new(e->state_fd, PENDING, rec, strlen(rec), 0600) == -1 ||
	    renameat(e->state_fd, tmp, e->state_fd, STATE_DATASET) == -1) {
		meta = xasprintf("cannot store the dataset: %s", strerror(errno));
		unlinkat(e->state_fd, tmp, 0);
		unlinkat(e->state_fd, PENDING, 0);
		free(rec);
		goto done;
	}
	free(rec);
	if (fsync(e->state_fd) == -1)
		log_warn("%s: fsync: %s", e->cfg->state_dir, strerror(errno));
	pause_step(e);
	memcpy(who, k->fp, 8);
	who[8] = '\0';
	keep_version(vfd, e->state_fd, who);
	pause_step(e);
	status = 30;
	meta = public_url(e, page);
	audit(e, k->fp, "/" STATE_DATASET, k->len, status, meta);
	unlinkat(e->state_fd, PENDING, 0);
	fsync(e->state_fd);
done:
	if (vfd != -1)
		close(vfd);
	store_unlock(lock);
	if (status == 30) {
		wait_live(e, k->w, k->id, meta);
		return;
	}
	audit(e, k->fp, "/" STATE_DATASET, k->len, status, meta);
	reply(e, k->w, k->id, status, meta, NULL, 0);
	free(meta);
}

/*
 * The folder of capsule path P ("/a/b.gmi") in the overlay, made where the
 * shipped capsule has that folder (uploads make no folders of their own);
 * never through a symbolic link. Its last segment in *leaf; -1 with *why.
 */
static int
overlay_dir(struct ed *e, const char *p, const char **leaf, const char **why)
{
	char *copy = xstrdup(p + 1), *seg, *slash;
	int dfd = sf_open_dir(e->state_fd, STATE_CAPSULE, 1), next;
	int sfd = openat(e->capsule_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC), snext;

	*why = "the state folder cannot be written";
	for (seg = copy; dfd != -1 && (slash = strchr(seg, '/')) != NULL;
	    seg = slash + 1) {
		*slash = '\0';
		snext = sfd != -1 ? openat(sfd, seg, O_PATH | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC) : -1;
		next = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next == -1 && errno == ENOENT && snext != -1 &&
		    mkdirat(dfd, seg, 0700) == 0)
			next = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
		if (next == -1)
			*why = snext == -1 ? "no such folder in the capsule "
			    "(uploads make no folders)" : "a folder cannot be made";
		if (sfd != -1)
			close(sfd);
		sfd = snext;
		close(dfd);
		dfd = next;
	}
	if (sfd != -1)
		close(sfd);
	*leaf = p + 1 + (size_t)(seg - copy);
	free(copy);
	return dfd;
}

static void
store_capsule(struct ed *e, const struct check *k)
{
	const char *leaf, *why;
	char tmp[32], *meta = NULL;
	int dfd = -1, lock, status = 40;

	if ((lock = store_lock(e)) == -1) {
		meta = xasprintf("cannot lock the state folder: %s", strerror(errno));
		goto done;
	}
	if ((dfd = overlay_dir(e, k->path, &leaf, &why)) == -1) {
		status = 59;
		meta = xasprintf("%s: %s", k->path, why);
		goto done;
	}
	remove_stale(dfd, ".titan-");
	snprintf(tmp, sizeof(tmp), ".titan-%08lx", (unsigned long)random());
	if (sf_write_new(dfd, tmp, k->body, k->len, 0644) == -1) {
		/* A name too long for the file system will stay too long. */
		status = errno == ENAMETOOLONG ? 59 : 40;
		meta = xasprintf("%s: cannot write: %s", k->path, strerror(errno));
		goto done;
	}
	pause_step(e);
	if (renameat(dfd, tmp, dfd, leaf) == -1) {
		status = errno == ENAMETOOLONG ? 59 : 40;
		meta = xasprintf("%s: cannot write: %s", k->path, strerror(errno));
		unlinkat(dfd, tmp, 0);
		goto done;
	}
	fsync(dfd);
	pause_step(e);
	status = 30;
	meta = public_url(e, k->path);
done:
	if (dfd != -1)
		close(dfd);
	store_unlock(lock);
	audit(e, k->fp, k->path, k->len, status, meta);
	if (status == 30) {
		wait_live(e, k->w, k->id, meta);
		return;
	}
	reply(e, k->w, k->id, status, meta, NULL, 0);
	free(meta);
}

/* ----------------------------------------------------- the shared store */

/* server.store: a checked upload to the store process, which writes it in
 * etcd and in the state folder's copy; its word comes in store_in. */
static void
store_remote(struct ed *e, const struct check *k, const char *page)
{
	struct chan_msg c;
	struct remote r;

	if (e->store_fd == -1) {
		const char *m = "the shared store (etcd) is not reachable now "
		    "(the store process is starting again); nothing was stored, "
		    "try again in a moment";

		audit(e, k->fp, k->path, k->len, 40, m);
		reply(e, k->w, k->id, 40, m, NULL, 0);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.rid = ++e->next_rid;
	r.w = k->w;
	r.id = k->id;
	memcpy(r.fp, k->fp, 65);
	r.path = xstrdup(k->path);
	r.len = k->len;
	r.meta = public_url(e, strcmp(k->path, "/" STATE_DATASET) == 0 ? page :
	    k->path);
	memset(&c, 0, sizeof(c));
	c.id = r.rid;
	c.code = CHAN_STORE;
	memcpy(c.fp, k->fp, 65);
	c.part[0] = (const unsigned char *)k->path;
	c.n[0] = strlen(k->path);
	c.part[1] = (const unsigned char *)k->base;
	c.n[1] = strlen(k->base);
	c.part[2] = k->body;
	c.n[2] = k->len;
	chan_pack(&e->sout, &c);
	e->r = xrealloc(e->r, (e->n_r + 1) * sizeof(*e->r));
	e->r[e->n_r++] = r;
}

/* The stores the store process had not answered, when its channel goes. */
static void
store_lost(struct ed *e)
{
	const char *m = "the store process stopped before it answered: the "
	    "upload may not be stored; fetch it again to see";

	if (e->store_fd != -1)
		close(e->store_fd);
	e->store_fd = -1;
	buf_free(&e->sin);
	buf_free(&e->sout);
	e->soff = 0;
	for (size_t i = 0; i < e->n_r; i++) {
		audit(e, e->r[i].fp, e->r[i].path, e->r[i].len, 40, m);
		reply(e, e->r[i].w, e->r[i].id, 40, m, NULL, 0);
		free(e->r[i].path);
		free(e->r[i].meta);
	}
	e->n_r = 0;
}

static void
store_in(struct ed *e)
{
	struct chan_msg m;
	size_t used;
	int r, broken = chan_fill(e->store_fd, &e->sin) == -1;

	while ((r = chan_unpack(e->sin.data, e->sin.len, GEMINI_MAX_REQUEST, &m,
	    &used)) == 1) {
		char *meta = xasprintf("%.*s", (int)m.n[0], (const char *)m.part[0]);
		size_t i;

		chan_consume(&e->sin, used);
		for (i = 0; i < e->n_r && e->r[i].rid != m.id; i++)
			;
		if (i == e->n_r) {
			free(meta);
			continue;
		}
		if (strlen(meta) > GEMINI_MAX_META - 8)
			meta[GEMINI_MAX_META - 8] = '\0';
		if (m.code == 30) {
			audit(e, e->r[i].fp, e->r[i].path, e->r[i].len, 30, meta);
			wait_live(e, e->r[i].w, e->r[i].id, e->r[i].meta);
		} else {
			int st = m.code == 50 || m.code == 59 ? (int)m.code : 40;

			audit(e, e->r[i].fp, e->r[i].path, e->r[i].len, st, meta);
			reply(e, e->r[i].w, e->r[i].id, st, meta, NULL, 0);
			free(e->r[i].meta);
		}
		free(meta);
		free(e->r[i].path);
		e->r[i] = e->r[--e->n_r];
	}
	if (r == -1 || broken)
		store_lost(e);
}

/* A checker child said its word (or ran out of time): answer or store. */
static void
check_done(struct ed *e, size_t i, int timed_out)
{
	struct check *k = &e->c[i];
	char *res, *sp;
	int st = 0;

	if (timed_out)
		kill(k->pid, SIGKILL);
	waitpid(k->pid, &st, 0);
	buf_add(&k->res, "", 0);
	res = (char *)k->res.data;
	if (timed_out) {
		char *m = xasprintf("the upload could not be checked within %ld s "
		    "(too many settings?); nothing was stored", e->check_ms / 1000);

		audit(e, k->fp, k->path, k->len, 59, m);
		reply(e, k->w, k->id, 59, m, NULL, 0);
		free(m);
	} else if (k->res.len < 4 || (sp = strchr(res, ' ')) == NULL ||
	    !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		audit(e, k->fp, k->path, k->len, 40, "the check stopped");
		reply(e, k->w, k->id, 40, "the upload's check stopped; nothing was "
		    "stored", NULL, 0);
	} else if (strncmp(res, "30 ", 3) != 0) {
		int status = atoi(res) == 40 ? 40 : 59;
		char *m = sp + 1;

		if (strlen(m) > GEMINI_MAX_META - 8)
			m[GEMINI_MAX_META - 8] = '\0';
		audit(e, k->fp, k->path, k->len, status, m);
		reply(e, k->w, k->id, status, m, NULL, 0);
	} else if (e->shared) {
		store_remote(e, k, sp + 1);
	} else if (strcmp(k->path, "/" STATE_DATASET) == 0) {
		store_dataset(e, k, sp + 1);
	} else {
		store_capsule(e, k);
	}
	check_free(k);
	e->c[i] = e->c[--e->n_c];
}

/* ------------------------------------------------------------------- reads */

/* The page that lists the stored versions, newest first. */
static void
versions_page(struct ed *e, int w, uint32_t id)
{
	int vfd = sf_open_dir(e->state_fd, VERSIONS_DIR, 0);
	struct buf b = { 0 };
	struct stat st;
	char **v;
	size_t n = sf_list_versions(vfd, &v);

	buf_adds(&b, "# Versions of the dataset\n\n");
	buf_printf(&b, "The last %d stored versions, newest first, each named by "
	    "the time it was stored (UTC) and its editor's certificate (the first "
	    "8 hex digits of its SHA-256; \"seed\": the dataset before the first "
	    "edit). To restore one, upload its text to /" STATE_DATASET ".\n\n",
	    VERSIONS_KEPT);
	if (n == 0)
		buf_adds(&b, "No version is stored yet.\n");
	for (size_t i = n; i-- > 0;)
		if (fstatat(vfd, v[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			buf_printf(&b, "=> /versions/%s %s (%lld bytes)\n", v[i], v[i],
			    (long long)st.st_size);
	reply(e, w, id, 20, "text/gemini; charset=utf-8", b.data, b.len);
	buf_free(&b);
	sf_free_names(v, n);
	if (vfd != -1)
		close(vfd);
}

static void
read_page(struct ed *e, int w, const struct chan_msg *m, const char *path)
{
	struct buf b = { 0 };
	int vfd, ok = -1;

	if (strcmp(path, "/" STATE_DATASET) == 0) {
		ok = sf_read_at(e->state_fd, STATE_DATASET, &b);
		if (ok == -1 && errno == ENOENT && e->seed_fd != -1 &&
		    lseek(e->seed_fd, 0, SEEK_SET) == 0)
			ok = sf_read_fd(e->seed_fd, &b);
	} else if (strcmp(path, "/versions/") == 0) {
		versions_page(e, w, m->id);
		return;
	} else if (strncmp(path, "/versions/", 10) == 0 &&
	    sf_version_ok(path + 10) &&
	    (vfd = sf_open_dir(e->state_fd, VERSIONS_DIR, 0)) != -1) {
		ok = sf_read_at(vfd, path + 10, &b);
		close(vfd);
	}
	if (ok == -1)
		reply(e, w, m->id, 51, "Not found", NULL, 0);
	else
		reply(e, w, m->id, 20, TEXT_MIME, b.data, b.len);
	buf_free(&b);
}

/* One frame from worker channel w. The worker checked the certificate, the
 * size and the path; a worker that lies gets no more than an editor has:
 * an editor's fingerprint, a normalised path without hidden segments. */
static void
handle(struct ed *e, int w, const struct chan_msg *m)
{
	char *path = xasprintf("%.*s", (int)m->n[0], (const char *)m->part[0]);

	if (!config_is_editor(e->cfg, m->fp)) {
		if (m->code == CHAN_STORE)
			metrics_edit(ME_DENIED);
		reply(e, w, m->id, 61, "Not an editor", NULL, 0);
	} else if (strlen(path) != m->n[0] || path[0] != '/' ||
	    strstr(path, "/.") != NULL || strstr(path, "//") != NULL) {
		/* /versions/..conf and the like: not a name anything has. */
		reply(e, w, m->id, m->code == CHAN_READ ? 51 : 59, m->code ==
		    CHAN_READ ? "Not found" : "Not an editable path", NULL, 0);
	} else if (m->code == CHAN_READ) {
		read_page(e, w, m, path);
	} else if (m->code == CHAN_STORE) {
		start_check(e, w, m, path);
	} else {
		reply(e, w, m->id, 59, "Unknown request", NULL, 0);
	}
	free(path);
}

/* --------------------------------------------------------------- the loop */

static void
chan_in(struct ed *e, size_t i)
{
	struct wchan *c = &e->w[i];
	size_t used, max = (size_t)e->cfg->max_upload + 2 * GEMINI_MAX_REQUEST;
	struct chan_msg m;
	int r = 0, broken = chan_fill(c->fd, &c->in) == -1;

	while ((r = chan_unpack(c->in.data, c->in.len, max, &m, &used)) == 1) {
		handle(e, (int)i, &m);
		chan_consume(&c->in, used);
	}
	if (r == -1) {
		log_error("editing: a malformed request from a worker; its channel "
		    "is closed");
		broken = 1;
	}
	if (broken) {
		close(c->fd);
		c->fd = -1;
		buf_free(&c->in);
		buf_free(&c->out);
	}
}

/* A message of the master's: a new worker's channel, a store gone live. */
static int
ctl_in(struct ed *e)
{
	struct ed_ctl c;
	ssize_t n;
	int fd = -1;

	if ((n = ctl_recv(e->ctl, &c, &fd)) <= 0)
		return n == 0 || (errno != EINTR && errno != EAGAIN) ? -1 : 0;
	if (n != (ssize_t)sizeof(c)) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	if (c.type == ED_STORE && fd != -1) {
		if (e->store_fd != -1)
			store_lost(e);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		e->store_fd = fd;
		return 0;
	}
	if (c.type == ED_WORKER && fd != -1) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		e->w = xrealloc(e->w, (e->n_w + 1) * sizeof(*e->w));
		memset(&e->w[e->n_w], 0, sizeof(*e->w));
		e->w[e->n_w++].fd = fd;
		return 0;
	}
	if (fd != -1)
		close(fd);
	if (c.type == ED_RETIRE) {
		e->retired = 1;
		return 0;
	}
	for (size_t i = 0; i < e->n_wait; i++) {
		struct waiting *wt = &e->wait[i];

		if (wt->tag != c.tag)
			continue;
		if (c.type == ED_LIVE)
			reply(e, wt->w, wt->id, 30, wt->meta, NULL, 0);
		else
			reply(e, wt->w, wt->id, 40, "stored, but the server could "
			    "not rebuild the site with it: see its log", NULL, 0);
		free(wt->meta);
		*wt = e->wait[--e->n_wait];
		break;
	}
	return 0;
}

static void
editor_loop(struct ed *e)
{
	for (;;) {
		size_t n = 0, nfd = 2 + e->n_w + e->n_c, live = 0;
		size_t n_w = e->n_w, n_c = e->n_c;
		struct pollfd *fds = xcalloc(nfd, sizeof(*fds));
		pid_t *pids = xcalloc(n_c + 1, sizeof(*pids));
		long now = now_ms(), wait = EDIT_TICK_MS;

		fds[n].fd = e->ctl;
		fds[n++].events = POLLIN;
		for (size_t i = 0; i < e->n_w; i++) {
			fds[n].fd = e->w[i].fd;
			fds[n++].events = POLLIN | (e->w[i].out.len > 0 ? POLLOUT : 0);
			live += e->w[i].fd != -1;
		}
		for (size_t i = 0; i < e->n_c; i++) {
			pids[i] = e->c[i].pid;
			fds[n].fd = e->c[i].fd;
			fds[n++].events = POLLIN;
			if (e->c[i].deadline - now < wait)
				wait = e->c[i].deadline - now;
		}
		fds[n].fd = e->store_fd;
		fds[n++].events = POLLIN | (e->sout.len > 0 ? POLLOUT : 0);
		if ((e->retired && live == 0 && e->n_c == 0 && e->n_wait == 0 &&
		    e->n_r == 0) ||
		    (poll(fds, n, wait < 0 ? 0 : (int)wait) == -1 && errno != EINTR) ||
		    ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    ctl_in(e) == -1)) {
			/* Retired (a new generation serves), its workers gone and
			 * nothing left to answer; or the master is gone. */
			free(fds);
			free(pids);
			return;
		}
		/* What was polled: channels added and checks started or ended
		 * below are not (their slots in fds are others'). */
		for (size_t i = 0; i < n_w; i++) {
			short re = fds[1 + i].revents;

			if (e->w[i].fd == -1)
				continue;
			if (re & POLLOUT)
				chan_flush(e->w[i].fd, &e->w[i].out, &e->w[i].off);
			if (re & (POLLIN | POLLHUP | POLLERR))
				chan_in(e, i);
			if (e->w[i].fd != -1 && e->w[i].out.len > 0)
				chan_flush(e->w[i].fd, &e->w[i].out, &e->w[i].off);
		}
		now = now_ms();
		for (size_t j = 0; j < n_c; j++) {
			short re = fds[1 + n_w + j].revents;
			size_t i;

			for (i = 0; i < e->n_c && e->c[i].pid != pids[j]; i++)
				;
			if (i == e->n_c)
				continue;
			if (re & (POLLIN | POLLHUP | POLLERR)) {
				char tmp[4096];
				ssize_t r = read(e->c[i].fd, tmp, sizeof(tmp));

				if (r > 0 && e->c[i].res.len < 4 * GEMINI_MAX_META)
					buf_add(&e->c[i].res, tmp, (size_t)r);
				else if (r <= 0)
					check_done(e, i, 0);
			} else if (now >= e->c[i].deadline) {
				check_done(e, i, 1);
			}
		}
		if (e->store_fd != -1 && fds[n - 1].fd == e->store_fd &&
		    (fds[n - 1].revents & (POLLIN | POLLHUP | POLLERR)))
			store_in(e);
		if (e->store_fd != -1 && e->sout.len > 0 &&
		    chan_flush(e->store_fd, &e->sout, &e->soff) == -1)
			store_lost(e);
		for (size_t i = 0; i < e->n_w; i++)
			if (e->w[i].fd != -1 && e->w[i].out.len > 0)
				chan_flush(e->w[i].fd, &e->w[i].out, &e->w[i].off);
		free(fds);
		free(pids);
	}
}

int
editor_main(const struct config *cfg, const struct site *site,
    const struct privs *p, int ctl)
{
	struct ed e;
	int rc = 1;

	memset(&e, 0, sizeof(e));
	e.cfg = cfg;
	e.site = site;
	e.ctl = ctl;
	e.seed_fd = -1;
	e.store_fd = -1;
	e.shared = cfg->n_store_etcd > 0;
	log_process("kilnet-edit");
	e.check_ms = EDIT_CHECK_MS;
#ifdef KILNET_TEST_HOOKS
	if (getenv("KILNET_TEST_STORE_DELAY_MS") != NULL)
		e.pause_ms = atol(getenv("KILNET_TEST_STORE_DELAY_MS"));
	/* A test that checks a large dataset beside others, on the sanitizer
	 * build: a longer deadline. */
	if (getenv("KILNET_TEST_CHECK_MS") != NULL)
		e.check_ms = atol(getenv("KILNET_TEST_CHECK_MS"));
#endif
	/* Opened while the paths can be reached (the folders above them may
	 * be root's alone); everything after goes through these. */
	if ((e.state_fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_error("editing: %s (server.state_dir): %s; editing is off",
		    cfg->state_dir, strerror(errno));
		goto out;
	}
	e.capsule_fd = cfg->capsule_dir != NULL ? open(cfg->capsule_dir,
	    O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (cfg->dataset_file != NULL && strcmp(cfg->dataset_file, cfg->file) != 0)
		e.seed_fd = open(cfg->dataset_file, O_RDONLY | O_CLOEXEC);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	tzset();
	{
		int fds[2] = { e.state_fd, e.capsule_fd };

		if (privs_drop(p) == -1 ||
		    sandbox_enter_role(cfg, SANDBOX_EDITOR, fds, 2) == -1)
			goto out;
	}
	/* A store killed midway is finished now; an idle start writes nothing
	 * (not even the lock file). */
	if (faccessat(e.state_fd, PENDING, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (rc = store_lock(&e)) != -1)
		store_unlock(rc);
	rc = 0;
	editor_loop(&e);
out:
	for (size_t i = 0; i < e.n_c; i++) {
		kill(e.c[i].pid, SIGKILL);
		waitpid(e.c[i].pid, NULL, 0);
		check_free(&e.c[i]);
	}
	free(e.c);
	for (size_t i = 0; i < e.n_w; i++) {
		if (e.w[i].fd != -1)
			close(e.w[i].fd);
		buf_free(&e.w[i].in);
		buf_free(&e.w[i].out);
	}
	free(e.w);
	for (size_t i = 0; i < e.n_wait; i++)
		free(e.wait[i].meta);
	free(e.wait);
	if (e.store_fd != -1)
		close(e.store_fd);
	buf_free(&e.sin);
	buf_free(&e.sout);
	for (size_t i = 0; i < e.n_r; i++) {
		free(e.r[i].path);
		free(e.r[i].meta);
	}
	free(e.r);
	return rc;
}
