/*
 * editor.c: the master's side of editing. A worker sends what an editor asked
 * (editchan.c frames, titan.c); here it is answered: the dataset's source and
 * its versions are read, and an upload is checked exactly as `kilnet -t`
 * checks a config (a whole generation is built from it), then stored without
 * loss and served:
 *
 *   STATE/.upload-XXXXXX   written and fsync'd
 *   (built: a refusal is a 59 with the first problem, and nothing changed)
 *   STATE/versions/T-seed.conf    the dataset before the first edit, kept
 *   rename -> STATE/network.conf, fsync STATE: the new dataset, whole
 *   STATE/versions/T-EDITOR.conf  a link to it; the last 20 are kept
 *   the new generation replaces the old, as on SIGHUP
 *
 * A crash at any step leaves the old dataset or the new one, never a mix:
 * config_load reads STATE/network.conf when it is there. Capsule files are
 * replaced the same way, in their own folder, never through a symbolic link.
 * Every upload is logged (and appended to STATE/audit.log) with the editor's
 * fingerprint, the path, the size and the result.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kilnet.h"

#define VERSIONS_KEPT 20
#define VERSIONS_DIR  "versions"
#define TEXT_MIME     "text/plain; charset=utf-8"

static void
reply(struct buf *out, uint32_t id, int status, const char *meta,
    const void *body, size_t len)
{
	struct chan_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.code = (uint32_t)status;
	m.part[0] = (const unsigned char *)meta;
	m.n[0] = strlen(meta);
	m.part[1] = body;
	m.n[1] = body != NULL ? len : 0;
	chan_pack(out, &m);
}

/* Test-only (KILNET_TEST_STORE_DELAY_MS): a pause between the steps of a
 * store, so that a test can kill the master inside each one. */
static void
pause_step(const struct editor_env *env)
{
	if (env->pause_ms > 0)
		usleep((useconds_t)env->pause_ms * 1000);
}

/* The whole file NAME in folder dirfd (AT_FDCWD: a path); flags: more
 * open(2) flags (O_NOFOLLOW in the capsule). */
static int
read_all_at(int dirfd, const char *name, int flags, struct buf *out)
{
	char tmp[65536];
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | flags);

	if (fd == -1)
		return -1;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(out, tmp, (size_t)n);
	close(fd);
	if (out->data == NULL)
		buf_add(out, "", 0);
	return n < 0 ? -1 : 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* data, whole and on disk, in a new file NAME (made in folder dirfd). */
static int
write_new(int dirfd, const char *name, const void *data, size_t len, int mode)
{
	const unsigned char *p = data;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd == -1)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			unlinkat(dirfd, name, 0);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		unlinkat(dirfd, name, 0);
		return -1;
	}
	return 0;
}

static void
audit(const struct editor_env *env, const char *fp, const char *path,
    size_t size, int status, const char *meta)
{
	char stamp[32], *dir = env->cfg->state_dir, *file, *line;
	time_t t = time(NULL);
	struct tm tm;
	int fd;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	line = xasprintf("%s editor=%s path=%s size=%zu result=%d %s\n", stamp, fp,
	    path, size, status, meta);
	log_info("titan: %.*s", (int)strlen(line) - 1, line);
	file = xasprintf("%s/audit.log", dir);
	if ((fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) != -1) {
		if (write(fd, line, strlen(line)) < 0)
			log_warn("%s: %s", file, strerror(errno));
		close(fd);
	}
	free(file);
	free(line);
}

/* "gemini://HOST[:PORT]PATH": the public address of a page. */
static char *
public_url(const struct editor_env *env, const char *path)
{
	const struct site *s = env->site;

	if (s->ro.gemini_port == 1965)
		return xasprintf("gemini://%s%s", s->hostname, path);
	return xasprintf("gemini://%s:%d%s", s->hostname, s->ro.gemini_port, path);
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

/* The problem to give the editor: "LINE: SETTING: what is wrong", without
 * the name of the file the upload was checked in. */
static char *
first_problem(const struct diag *d, const char *tmp)
{
	const char *m = d->n > 0 ? d->msgs[0] : "the upload could not be checked";
	size_t n = strlen(tmp);
	char *out;

	if (strncmp(m, tmp, n) == 0 && m[n] == ':')
		m += n + 1;
	out = xasprintf("%s", m);
	if (strlen(out) > GEMINI_MAX_META - 8)
		out[GEMINI_MAX_META - 8] = '\0';
	return out;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The stored versions' file names, oldest first (they start with the time). */
static size_t
list_versions(const char *dir, char ***out)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	if (dp == NULL)
		return 0;
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf"))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return n;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* NAME as a version: "STAMP-WHO.conf" in the versions folder, a new name. */
static char *
version_name(const char *vdir, const char *who)
{
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	char *name = NULL, *path;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 1; ; i++) {
		free(name);
		/* Another in the same second sorts after it: ".02" > "-". */
		name = i == 1 ? xasprintf("%s-%s.conf", stamp, who) :
		    xasprintf("%s.%02d-%s.conf", stamp, i, who);
		path = xasprintf("%s/%s", vdir, name);
		if (access(path, F_OK) == -1) {
			free(path);
			return name;
		}
		free(path);
	}
}

/* Files named PREFIX* in folder dirfd: what a store killed midway left. Only
 * the master stores, one upload at a time, so none of them is in use. */
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

static int
ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

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

static void
store_dataset(const struct editor_env *env, const struct chan_msg *m,
    struct buf *out)
{
	const struct config *cfg = env->cfg;
	char *vdir = xasprintf("%s/" VERSIONS_DIR, cfg->state_dir);
	char *cur = xasprintf("%s/" STATE_DATASET, cfg->state_dir);
	char *tmp = xasprintf("%s/.upload-XXXXXX", cfg->state_dir);
	char *meta = NULL, *url, *name, *vpath, who[9], **v;
	struct server_gen ng;
	struct diag d = { 0 };
	struct buf seed = { 0 };
	int fd, status = 59, line, first_edit;
	size_t nv;

	if ((line = include_line(m->part[2], m->n[2])) > 0) {
		meta = xasprintf("%d: @include is not allowed in an uploaded dataset",
		    line);
		goto done;
	}
	if (ensure_dir(cfg->state_dir) == -1 || ensure_dir(vdir) == -1) {
		status = 40;
		meta = xasprintf("cannot make the state folder %s: %s",
		    cfg->state_dir, strerror(errno));
		goto done;
	}
	if ((fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		remove_stale(fd, ".upload-");
		close(fd);
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		status = 40;
		meta = xasprintf("cannot write in the state folder: %s",
		    strerror(errno));
		goto done;
	}
	close(fd);
	unlink(tmp);
	if (write_new(AT_FDCWD, tmp, m->part[2], m->n[2], 0600) == -1) {
		status = 40;
		meta = xasprintf("cannot write in the state folder: %s",
		    strerror(errno));
		goto done;
	}
	pause_step(env);
	/* Checked as kilnet -t checks: the whole config, site and TLS. */
	if (env->build(env->build_arg, tmp, &ng, &d) == -1) {
		unlink(tmp);
		meta = first_problem(&d, tmp);
		diag_clear(&d);
		goto done;
	}
	diag_clear(&d);
	pause_step(env);
	first_edit = access(cur, F_OK) == -1;
	if (first_edit && cfg->dataset_file != NULL &&
	    read_all_at(AT_FDCWD, cfg->dataset_file, 0, &seed) == 0) {
		name = version_name(vdir, "seed");
		vpath = xasprintf("%s/%s", vdir, name);
		if (write_new(AT_FDCWD, vpath, seed.data, seed.len, 0600) == -1)
			log_warn("%s: cannot keep the seed dataset: %s", vpath,
			    strerror(errno));
		free(vpath);
		free(name);
		buf_free(&seed);
		pause_step(env);
	}
	if (rename(tmp, cur) == -1) {
		status = 40;
		meta = xasprintf("cannot store the dataset: %s", strerror(errno));
		unlink(tmp);
		server_gen_free(&ng);
		goto done;
	}
	if (fsync_dir(cfg->state_dir) == -1)
		log_warn("%s: fsync: %s", cfg->state_dir, strerror(errno));
	pause_step(env);
	/* The new text as a version too; a link costs no copy. */
	memcpy(who, m->fp, 8);
	who[8] = '\0';
	name = version_name(vdir, who);
	vpath = xasprintf("%s/%s", vdir, name);
	if (link(cur, vpath) == -1)
		log_warn("%s: %s", vpath, strerror(errno));
	free(vpath);
	free(name);
	nv = list_versions(vdir, &v);
	for (size_t i = 0; i + VERSIONS_KEPT < nv; i++) {
		vpath = xasprintf("%s/%s", vdir, v[i]);
		unlink(vpath);
		free(vpath);
	}
	free_names(v, nv);
	fsync_dir(vdir);
	pause_step(env);

	free(ng.cfg->dataset_file);
	ng.cfg->dataset_file = xstrdup(cur);
	url = public_url(env, changed_page(env->site, ng.site));
	status = 30;
	meta = url;
done:
	audit(env, m->fp, "/" STATE_DATASET, m->n[2], status, meta);
	reply(out, m->id, status, meta, NULL, 0);
	free(meta);
	free(tmp);
	free(cur);
	free(vdir);
	/* Last: the generation serving now (env->cfg) goes with it. */
	if (status == 30)
		env->install(env->install_arg, &ng);
}

/*
 * The folder of capsule path P ("/a/b.gmi"), opened without following a
 * symbolic link at any step; its last segment in *leaf. -1 with *why.
 */
static int
open_capsule_dir(const char *root, const char *p, const char **leaf,
    const char **why)
{
	char *copy = xstrdup(p + 1), *seg, *slash;
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), next;

	*why = "the capsule folder cannot be opened";
	for (seg = copy; dfd != -1 && (slash = strchr(seg, '/')) != NULL;
	    seg = slash + 1) {
		*slash = '\0';
		next = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next == -1)
			*why = errno == ENOENT ? "no such folder in the capsule "
			    "(uploads make no folders)" : errno == ELOOP ||
			    errno == ENOTDIR ? "a folder in the path is a symbolic "
			    "link or not a folder" : "a folder cannot be opened";
		close(dfd);
		dfd = next;
	}
	*leaf = p + 1 + (size_t)(seg - copy);
	free(copy);
	return dfd;
}

static void
store_capsule(const struct editor_env *env, const struct chan_msg *m,
    const char *path, struct buf *out)
{
	const struct config *cfg = env->cfg;
	const char *leaf, *why;
	char tmp[32], *meta = NULL;
	struct buf old = { 0 };
	struct server_gen ng;
	struct diag d = { 0 };
	struct stat st;
	int dfd, status = 59, had = 0;

	if ((dfd = open_capsule_dir(cfg->capsule_dir, path, &leaf, &why)) == -1) {
		meta = xasprintf("%s: %s", path, why);
		goto done;
	}
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISREG(st.st_mode)) {
			meta = xasprintf("%s: not a plain file (a symbolic link or a "
			    "folder)", path);
			goto done;
		}
		/* Kept, to be put back if the new site does not build. */
		if (read_all_at(dfd, leaf, O_NOFOLLOW, &old) == -1) {
			status = 40;
			meta = xasprintf("%s: cannot read: %s", path,
			    strerror(errno));
			goto done;
		}
		had = 1;
	}
	remove_stale(dfd, ".titan-");
	snprintf(tmp, sizeof(tmp), ".titan-%08lx", (unsigned long)random());
	if (write_new(dfd, tmp, m->part[2], m->n[2], 0644) == -1) {
		status = 40;
		meta = xasprintf("%s: cannot write: %s", path, strerror(errno));
		goto done;
	}
	pause_step(env);
	if (renameat(dfd, tmp, dfd, leaf) == -1) {
		status = 40;
		meta = xasprintf("%s: cannot write: %s", path, strerror(errno));
		unlinkat(dfd, tmp, 0);
		goto done;
	}
	fsync(dfd);
	pause_step(env);
	if (env->build(env->build_arg, NULL, &ng, &d) == -1) {
		/* The site cannot take it: the old file goes back. */
		meta = first_problem(&d, "");
		diag_clear(&d);
		if (had && write_new(dfd, tmp, old.data, old.len, 0644) == 0)
			renameat(dfd, tmp, dfd, leaf);
		else if (!had)
			unlinkat(dfd, leaf, 0);
		fsync(dfd);
		goto done;
	}
	diag_clear(&d);
	meta = public_url(env, path);
	status = 30;
done:
	if (dfd != -1)
		close(dfd);
	buf_free(&old);
	audit(env, m->fp, path, m->n[2], status, meta);
	reply(out, m->id, status, meta, NULL, 0);
	free(meta);
	if (status == 30)
		env->install(env->install_arg, &ng);
}

/* The page that lists the stored versions, newest first. */
static void
versions_page(const struct editor_env *env, uint32_t id, struct buf *out)
{
	char *vdir = xasprintf("%s/" VERSIONS_DIR, env->cfg->state_dir), **v;
	size_t n = list_versions(vdir, &v);
	struct buf b = { 0 };

	buf_adds(&b, "# Versions of the dataset\n\n");
	buf_printf(&b, "The last %d stored versions, newest first, each named by "
	    "the time it was stored (UTC) and its editor's certificate (the first "
	    "8 hex digits of its SHA-256; \"seed\": the dataset before the first "
	    "edit). To restore one, upload its text to /" STATE_DATASET ".\n\n",
	    VERSIONS_KEPT);
	if (n == 0)
		buf_adds(&b, "No version is stored yet.\n");
	for (size_t i = n; i-- > 0;) {
		char *p = xasprintf("%s/%s", vdir, v[i]);
		struct stat st;

		if (stat(p, &st) == 0)
			buf_printf(&b, "=> /versions/%s %s (%lld bytes)\n", v[i], v[i],
			    (long long)st.st_size);
		free(p);
	}
	reply(out, id, 20, "text/gemini; charset=utf-8", b.data, b.len);
	buf_free(&b);
	free_names(v, n);
	free(vdir);
}

static int
version_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 6 || n > 100 || s[0] == '.' || strcmp(s + n - 5, ".conf") != 0)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static void
read_page(const struct editor_env *env, const struct chan_msg *m,
    const char *path, struct buf *out)
{
	struct buf b = { 0 };
	char *file = NULL;

	if (strcmp(path, "/" STATE_DATASET) == 0 && env->cfg->dataset_file != NULL)
		file = xstrdup(env->cfg->dataset_file);
	else if (strcmp(path, "/versions/") == 0) {
		versions_page(env, m->id, out);
		return;
	} else if (strncmp(path, "/versions/", 10) == 0 &&
	    version_name_ok(path + 10))
		file = xasprintf("%s/" VERSIONS_DIR "/%s", env->cfg->state_dir,
		    path + 10);
	if (file == NULL || read_all_at(AT_FDCWD, file, 0, &b) == -1)
		reply(out, m->id, 51, "Not found", NULL, 0);
	else
		reply(out, m->id, 20, TEXT_MIME, b.data, b.len);
	buf_free(&b);
	free(file);
}

void
editor_handle(const struct editor_env *env, const struct chan_msg *m,
    struct buf *out)
{
	char *path = xasprintf("%.*s", (int)m->n[0], (const char *)m->part[0]);

	/* The worker checked the certificate; a worker that lies is refused. */
	if (!config_is_editor(env->cfg, m->fp) || strlen(path) != m->n[0] ||
	    path[0] != '/' || strstr(path, "/.") != NULL) {
		reply(out, m->id, 61, "Not an editor", NULL, 0);
	} else if (m->code == CHAN_READ) {
		read_page(env, m, path, out);
	} else if (m->code == CHAN_STORE && strcmp(path, "/" STATE_DATASET) == 0) {
		store_dataset(env, m, out);
	} else if (m->code == CHAN_STORE) {
		store_capsule(env, m, path, out);
	} else {
		reply(out, m->id, 59, "Unknown request", NULL, 0);
	}
	free(path);
}
