/*
 * site.c: the immutable site. At load, renders every page of the dataset and
 * reads every file under capsule/ into two sorted tables (Gemini paths, Gopher
 * selectors) of responses that are complete before any request; a request is
 * then one bsearch. Also writes the site to a folder (kilnet --render).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>
#include <unistr.h>

#include "kilnet.h"

#define GEMTEXT_MIME    "text/gemini; charset=utf-8; lang=en"
#define ATOM_MIME       "application/atom+xml"
#define SEARCH_PROMPT   "Search the network's members"
/* Capsule files are held in memory; a bigger one is a mistake, not content. */
#define CAPSULE_MAX_FILE (64L * 1024 * 1024)
/* Folders deeper than this are not walked (a guard, not a real limit). */
#define CAPSULE_MAX_DEPTH 32
/* caps.txt: how long clients may keep it, in seconds. */
#define CAPS_EXPIRE     3600

/* A resource while the tables are built. */
struct entry {
	struct resource  r;
	char            *file;     /* capsule file, for warnings; NULL: generated */
	size_t           seq;      /* order added: keeps sorting stable */
	unsigned char   *gmi;      /* capsule gemtext still to convert (Gopher) */
	size_t           gmi_len;
	char            *gmi_path; /* its Gemini path, for relative links */
};

struct table {
	struct entry *v;
	size_t        n, cap;
};

struct loader {
	const struct config *cfg;
	struct diag         *d;
	struct table         gem, goph;
	size_t               seq;
	char               **over;      /* the overlay's files (capsule paths) */
	size_t               n_over;
	int                  collect;   /* walking the overlay for its names */
	int                  shipped;   /* walking the shipped folder */
	const char          *extra_rel; /* an upload being checked */
	const struct render_opts *ro;
};

static struct entry *
table_add(struct loader *L, struct table *t, const char *key)
{
	struct entry *e;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->r.key = xstrdup(key);
	e->seq = L->seq++;
	return e;
}

static void
entry_free(struct entry *e)
{
	free(e->r.key);
	free(e->r.data);
	free(e->file);
	free(e->gmi);
	free(e->gmi_path);
}

/*
 * A Gemini page: "20 MIME\r\n" then the body, ready to write. Pages are
 * allocated to their size: the site is held for as long as it is served, and
 * a buffer's spare capacity would be kept with it, in every worker.
 */
static void
gem_page(struct loader *L, const char *key, const char *mime,
    const void *body, size_t len, const char *file)
{
	struct entry *e = table_add(L, &L->gem, key);
	size_t hlen = strlen("20 \r\n") + strlen(mime);

	e->r.data = xmalloc(hlen + len + 1);
	snprintf((char *)e->r.data, hlen + 1, "20 %s\r\n", mime);
	if (len > 0)
		memcpy(e->r.data + hlen, body, len);
	e->r.data[hlen + len] = '\0';
	e->r.body_off = hlen;
	e->r.len = hlen + len;
	e->r.mime = mime;
	e->r.generated = file == NULL;
	e->file = file != NULL ? xstrdup(file) : NULL;
}

static void
goph_page(struct loader *L, const char *key, char type, const char *mime,
    struct buf *body, const char *file)
{
	struct entry *e = table_add(L, &L->goph, key);

	e->r.gtype = type;
	e->r.mime = mime;
	/* A copy to its size, as gem_page makes; the body is emptied. */
	if (body->data != NULL) {
		e->r.data = xmalloc(body->len + 1);
		memcpy(e->r.data, body->data, body->len + 1);
	}
	e->r.len = body->len;
	buf_free(body);
	e->r.generated = file == NULL;
	e->file = file != NULL ? xstrdup(file) : NULL;
}

/* ------------------------------------------------------------ generated */

static char *
caps_txt(const struct config *cfg)
{
	struct buf c = { 0 };
	const char *desc = cfg->gopher_description != NULL &&
	    *cfg->gopher_description != '\0' ? cfg->gopher_description :
	    cfg->net.name != NULL ? cfg->net.name : KILNET_NAME;

	/* The caps.txt format: a "CAPS" line, then KEY=VALUE lines. */
	buf_adds(&c, "CAPS\r\n\r\n");
	buf_adds(&c, "# Server capabilities, for Gopher clients.\r\n");
	buf_adds(&c, "CapsVersion=1\r\n");
	buf_printf(&c, "ExpireCapsAfter=%d\r\n\r\n", CAPS_EXPIRE);
	buf_adds(&c, "PathDelimeter=/\r\n");  /* sic: the format's spelling */
	buf_adds(&c, "PathIdentity=.\r\n");
	buf_adds(&c, "PathParent=..\r\n");
	buf_adds(&c, "PathParentDouble=FALSE\r\n");
	buf_adds(&c, "PathKeepPreDelimeter=FALSE\r\n\r\n");
	buf_adds(&c, "ServerSoftware=" KILNET_NAME "\r\n");
	buf_adds(&c, "ServerSoftwareVersion=" KILNET_VERSION "\r\n");
	buf_adds(&c, "ServerDescription=");
	for (const char *p = desc; *p != '\0'; p++)
		buf_add(&c, *p == '\r' || *p == '\n' ? " " : p, 1);
	buf_adds(&c, "\r\n");
	if (cfg->gopher_geolocation != NULL && *cfg->gopher_geolocation != '\0') {
		buf_adds(&c, "ServerGeolocationString=");
		for (const char *p = cfg->gopher_geolocation; *p != '\0'; p++)
			buf_add(&c, *p == '\r' || *p == '\n' ? " " : p, 1);
		buf_adds(&c, "\r\n");
	}
	buf_adds(&c, "ServerDefaultEncoding=utf-8\r\n");
	buf_adds(&c, ".\r\n");
	return (char *)c.data;
}

/* Pages of the member list, as the renderers cut it. */
static void
gem_list_page(void *arg, const char *key, struct buf *body)
{
	gem_page(arg, key, GEMTEXT_MIME, body->data, body->len, NULL);
}

static void
goph_list_page(void *arg, const char *key, struct buf *body)
{
	goph_page(arg, key, '1', NULL, body, NULL);
}

/*
 * The generated Gemini pages. at[i] gets the index in L->gem of member i's
 * page, for the search index, which is built before the table is sorted.
 */
static void
render_gemini_generated(struct loader *L, const struct network *n, size_t *at)
{
	const struct render_opts *ro = L->ro;
	struct buf b = { 0 };
	struct entry *e;
	char *key;

	render_gemtext_home(n, ro, &b);
	gem_page(L, "/", GEMTEXT_MIME, b.data, b.len, NULL);
	b.len = 0;
	render_gemtext_members(n, ro, gem_list_page, L);
	render_gemtext_join(n, ro, &b);
	gem_page(L, "/join.gmi", GEMTEXT_MIME, b.data, b.len, NULL);
	b.len = 0;
	if (render_atom_feed(n, ro, &b) == 0)
		gem_page(L, "/atom.xml", ATOM_MIME, b.data, b.len, NULL);
	for (size_t i = 0; i < n->n_members; i++) {
		b.len = 0;
		render_gemtext_member(n, &n->members[i], ro, &b);
		key = xasprintf("/members/%s.gmi", n->members[i].id);
		at[i] = L->gem.n;
		gem_page(L, key, GEMTEXT_MIME, b.data, b.len, NULL);
		free(key);
	}
	buf_free(&b);

	/* /search with no query: the prompt; the front end renders results. */
	e = table_add(L, &L->gem, "/search");
	e->r.data = (unsigned char *)xstrdup("10 " SEARCH_PROMPT "\r\n");
	e->r.len = e->r.body_off = strlen((char *)e->r.data);
	e->r.mime = GEMTEXT_MIME;
	e->r.generated = e->r.search = 1;
}

/* The generated Gopher pages; the member documents come from the batch. */
static void
render_gopher_generated(struct loader *L, const struct network *n,
    const char *caps, struct doc_batch *batch)
{
	const struct render_opts *ro = L->ro;
	struct buf b = { 0 }, *docs;
	char *key;

	render_gopher_root(n, ro, &b);
	goph_page(L, "", '1', NULL, &b, NULL);
	render_gopher_members(n, ro, goph_list_page, L);
	render_gopher_join(n, ro, &b);
	goph_page(L, "/join.txt", '0', "text/plain; charset=utf-8", &b, NULL);
	docs = render_docs_finish(batch);
	for (size_t i = 0; i < n->n_members; i++) {
		key = xasprintf("/members/%s.txt", n->members[i].id);
		goph_page(L, key, '0', "text/plain; charset=utf-8", &docs[i], NULL);
		free(key);
	}
	free(docs);
	/* /search with no query: a hint and the search item. */
	render_gopher_search(ro, "", NULL, &b);
	goph_page(L, "/search", '7', NULL, &b, NULL);
	L->goph.v[L->goph.n - 1].r.search = 1;
	buf_adds(&b, caps);
	goph_page(L, "caps.txt", '0', "text/plain; charset=utf-8", &b, NULL);
	buf_adds(&b, caps);
	goph_page(L, "/caps.txt", '0', "text/plain; charset=utf-8", &b, NULL);
}

/* -------------------------------------------------------------- capsule */

/* A plain text file as a Gopher document: CRLF, dot-stuffed, terminated. */
static void
gopher_text(const unsigned char *p, size_t len, struct buf *out)
{
	const unsigned char *end = p + len, *nl;

	while (p < end) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0 && p[0] == '.')
			buf_adds(out, ".");
		buf_add(out, p, n);
		buf_adds(out, "\r\n");
		p = nl != NULL ? nl + 1 : end;
	}
	buf_adds(out, ".\r\n");
}

/* Gopher keys of a capsule .gmi wait for the whole table, then convert. */
static void
goph_gmi(struct loader *L, const char *key, const unsigned char *data,
    size_t len, const char *gem_path, const char *file)
{
	struct entry *e = table_add(L, &L->goph, key);

	e->r.gtype = '1';
	e->r.mime = NULL;
	e->gmi = xmalloc(len + 1);
	memcpy(e->gmi, data, len);
	e->gmi_len = len;
	e->gmi_path = xstrdup(gem_path);
	e->file = xstrdup(file);
}

static void
add_capsule_file(struct loader *L, const char *rel, const char *file,
    const unsigned char *data, size_t len)
{
	const char *mime = mime_for(rel);
	const char *base = strrchr(rel, '/');
	char *key = xasprintf("/%s", rel);
	char type = gopher_type_for(mime);
	struct buf b = { 0 };
	int index;

	base = base != NULL ? base + 1 : rel;
	index = strcmp(base, "index.gmi") == 0;

	gem_page(L, key, mime, data, len, file);
	if (index) {
		/* "/dir/index.gmi" answers for "/dir/" too. */
		char *folder = xstrdup(key);

		folder[strlen(key) - strlen("index.gmi")] = '\0';

		gem_page(L, folder, mime, data, len, file);
		folder[strlen(folder) - 1] = '\0';  /* Gopher: "/dir", root "" */
		goph_gmi(L, folder, data, len, key, file);
		free(folder);
	}
	if (type == '1')
		goph_gmi(L, key, data, len, key, file);
	else {
		if (type == '0')
			gopher_text(data, len, &b);
		else
			buf_add(&b, data, len);
		goph_page(L, key, type, mime, &b, file);
	}
	free(key);
}

/* A name a URL and a selector can carry: UTF-8, no control bytes or "\". */
static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	if (u8_check((const uint8_t *)name, n) != NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			return 0;
	return 1;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * rel below the folder rootfd, never outside it: a symbolic link may lead
 * anywhere inside (RESOLVE_BENEATH), and one that leads out fails with
 * EXDEV. The walk opens everything this way, relative to folders opened
 * before: the process that walks may have given up the right to reach them
 * by their paths (the unprivileged builder, site_src).
 */
static int
open_beneath(int rootfd, const char *rel, int flags)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how,
	    sizeof(how));
}

static int
read_fd(int fd, unsigned char **data, size_t *len)
{
	struct buf b = { 0 };
	unsigned char chunk[65536];
	ssize_t r;

	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			buf_free(&b);
			return -1;
		}
		buf_add(&b, chunk, (size_t)r);
		if (b.len > (size_t)CAPSULE_MAX_FILE) {
			buf_free(&b);
			errno = EFBIG;
			return -1;
		}
	}
	buf_add(&b, NULL, 0);
	*data = b.data;
	*len = b.len;
	return 0;
}

/* Is rel ("a/b.gmi") one of the capsule paths that something above it
 * replaces (the overlay over the shipped folder, an upload over both)? */
static int
replaced(const struct loader *L, const char *rel)
{
	if (L->extra_rel != NULL && strcmp(rel, L->extra_rel) == 0)
		return 1;
	return L->shipped && L->n_over > 0 && bsearch(&rel, L->over, L->n_over,
	    sizeof(*L->over), cmp_str) != NULL;
}

static void
walk(struct loader *L, int rootfd, const char *disp, const char *rel, int depth)
{
	char *dir = *rel ? xasprintf("%s/%s", disp, rel) : xstrdup(disp);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *dp = NULL;
	int dfd;

	if ((dfd = open_beneath(rootfd, rel, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (dp = fdopendir(dfd)) == NULL) {
		diag_add(L->d, NULL, 0, NULL, "warning: %s: %s; not served", dir,
		    strerror(errno));
		if (dfd != -1)
			close(dfd);
		free(dir);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;  /* dotfiles, dot-folders, "." and ".." */
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	/* Sorted: the same capsule gives the same tables and warnings. */
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);

	for (size_t i = 0; i < n; i++) {
		char *full = xasprintf("%s/%s", dir, names[i]);
		char *r = *rel ? xasprintf("%s/%s", rel, names[i]) :
		    xstrdup(names[i]);
		unsigned char *data;
		size_t len;
		struct stat st, lst;
		int fd = -1;

		if (!name_ok(names[i])) {
			diag_add(L->d, NULL, 0, NULL, "warning: %s: a name with "
			    "control characters, a backslash or invalid UTF-8; "
			    "not served", full);
		} else if (fstatat(dirfd(dp), names[i], &lst,
		    AT_SYMLINK_NOFOLLOW) == -1 ||
		    ((fd = open_beneath(rootfd, r, O_PATH)) == -1 && errno != EXDEV) ||
		    (fd != -1 && fstat(fd, &st) == -1)) {
			diag_add(L->d, NULL, 0, NULL, "warning: %s: %s; not served",
			    full, strerror(errno));
		} else if (fd == -1) {
			diag_add(L->d, NULL, 0, NULL, "warning: %s: leads outside "
			    "the capsule folder %s; not served", full, disp);
		} else if (S_ISDIR(st.st_mode)) {
			/* A folder reached through a symlink could loop. */
			if (S_ISLNK(lst.st_mode))
				diag_add(L->d, NULL, 0, NULL, "warning: %s: a "
				    "symlink to a folder; not followed", full);
			else if (depth >= CAPSULE_MAX_DEPTH)
				diag_add(L->d, NULL, 0, NULL, "warning: %s: "
				    "folders nested too deep; not served", full);
			else
				walk(L, rootfd, disp, r, depth + 1);
		} else if (!S_ISREG(st.st_mode)) {
			/* Sockets, FIFOs, devices: nothing to serve. */
		} else if (L->collect) {
			/* The overlay: its files replace the shipped ones. */
			L->over = xrealloc(L->over, (L->n_over + 1) *
			    sizeof(*L->over));
			L->over[L->n_over++] = xstrdup(r);
		} else if (replaced(L, r)) {
			/* An upload or the overlay has this file. */
		} else {
			close(fd);
			if ((fd = open_beneath(rootfd, r, O_RDONLY | O_NONBLOCK)) == -1 ||
			    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
			    read_fd(fd, &data, &len) == -1) {
				diag_add(L->d, NULL, 0, NULL, "warning: %s: %s; "
				    "not served", full, strerror(errno ? errno : EINVAL));
			} else {
				add_capsule_file(L, r, full, data, len);
				free(data);
			}
		}
		if (fd != -1)
			close(fd);
		free(full);
		free(r);
		free(names[i]);
	}
	closedir(dp);
	free(names);
	free(dir);
}

/* An upload being checked: served only as a file in the capsule would be
 * (the same name rules and size limit as the walk's). */
static void
add_extra(struct loader *L, const struct site_src *src)
{
	char *copy = xstrdup(L->extra_rel), *seg, *next;
	int ok = *copy != '\0';

	for (seg = copy; ok && seg != NULL; seg = next) {
		if ((next = strchr(seg, '/')) != NULL)
			*next++ = '\0';
		ok = *seg != '\0' && *seg != '.' && name_ok(seg);
	}
	free(copy);
	if (!ok)
		diag_add(L->d, NULL, 0, NULL, "warning: %s: a name with control "
		    "characters, a backslash or invalid UTF-8; not served",
		    src->extra_path);
	else if (src->extra_len > (size_t)CAPSULE_MAX_FILE)
		diag_add(L->d, NULL, 0, NULL, "warning: %s: %s; not served",
		    src->extra_path, strerror(EFBIG));
	else
		add_capsule_file(L, L->extra_rel, src->extra_path, src->extra,
		    src->extra_len);
}

/* A folder given by the caller (>= 0) or opened by its path; *disp: its
 * name in messages (the real path when it can be had). -1: none. */
static int
capsule_root(int given, const char *path, const char *name, char **disp)
{
	char real[PATH_MAX];
	int fd;

	*disp = NULL;
	if (given >= 0) {
		*disp = xstrdup(name != NULL ? name : path != NULL ? path : "capsule");
		return given;
	}
	if (path == NULL || (fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	*disp = xstrdup(realpath(path, real) != NULL ? real : path);
	return fd;
}

/*
 * The capsule: the editors' overlay (STATE/capsule) over the shipped folder,
 * and an upload being checked over both. A file of the overlay replaces the
 * shipped file of the same path.
 */
static void
load_capsule(struct loader *L, const struct site_src *src)
{
	const struct config *cfg = L->cfg;
	char *over_path = cfg->state_dir != NULL ?
	    xasprintf("%s/" STATE_CAPSULE, cfg->state_dir) : NULL;
	char *disp, *odisp;
	struct stat st;
	int fd, ofd;

	if (src != NULL && src->extra_path != NULL)
		L->extra_rel = src->extra_path + 1;
	ofd = capsule_root(src != NULL ? src->overlay_fd : -1,
	    src != NULL && src->overlay_fd >= 0 ? NULL : over_path,
	    over_path, &odisp);
	if (ofd != -1) {
		L->collect = 1;
		walk(L, ofd, odisp, "", 0);
		L->collect = 0;
		if (L->n_over > 1)
			qsort(L->over, L->n_over, sizeof(*L->over), cmp_str);
	}
	errno = 0;
	fd = capsule_root(src != NULL ? src->capsule_fd : -1,
	    cfg->capsule_dir, cfg->capsule_dir, &disp);
	if (cfg->capsule_dir != NULL && (fd == -1 || fstat(fd, &st) == -1 ||
	    !S_ISDIR(st.st_mode))) {
		diag_add(L->d, NULL, 0, NULL, "warning: capsule folder %s: %s; "
		    "serving the generated pages only", cfg->capsule_dir,
		    errno ? strerror(errno) : "not a folder");
	} else if (fd != -1) {
		L->shipped = 1;
		walk(L, fd, disp, "", 0);
		L->shipped = 0;
	}
	if (ofd != -1)
		walk(L, ofd, odisp, "", 0);
	if (L->extra_rel != NULL)
		add_extra(L, src);
	if (fd != -1 && (src == NULL || fd != src->capsule_fd))
		close(fd);
	if (ofd != -1 && (src == NULL || ofd != src->overlay_fd))
		close(ofd);
	for (size_t i = 0; i < L->n_over; i++)
		free(L->over[i]);
	free(L->over);
	L->over = NULL;
	L->n_over = 0;
	free(disp);
	free(odisp);
	free(over_path);
}

/* ---------------------------------------------------------------- tables */

static int
cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->r.key, y->r.key);

	if (c != 0)
		return c;
	if (x->r.generated != y->r.generated)
		return y->r.generated - x->r.generated;  /* generated first */
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
has_msg(const struct diag *d, const char *msg)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->msgs[i], msg) == 0)
			return 1;
	return 0;
}

/* Sorts by key; of equal keys the first (a generated page) wins. */
static void
table_finish(struct loader *L, struct table *t)
{
	size_t w = 0;

	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_entry);
	for (size_t i = 0; i < t->n; i++) {
		if (w > 0 && strcmp(t->v[w - 1].r.key, t->v[i].r.key) == 0) {
			char *msg = xasprintf("warning: %s: shadowed by %s",
			    t->v[i].file != NULL ? t->v[i].file : t->v[i].r.key,
			    t->v[w - 1].r.generated ? "a generated page" :
			    t->v[w - 1].file);

			/* One file has a key in each table: warn once. */
			if (!has_msg(L->d, msg))
				diag_add(L->d, NULL, 0, NULL, "%s", msg);
			free(msg);
			entry_free(&t->v[i]);
			continue;
		}
		t->v[w++] = t->v[i];
	}
	t->n = w;
}

static int
cmp_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entry *)elem)->r.key);
}

/*
 * A capsule "dir/index.gmi" whose folder is a generated page goes too: it would
 * answer beside the page that shadows it, and an export would write both to
 * the same file.
 */
static void
drop_shadowed_index(struct table *t, int gopher)
{
	static const char idx[] = "/index.gmi";
	size_t w = 0, n, ni = strlen(idx);
	char *drop = xcalloc(t->n, 1);

	for (size_t i = 0; i < t->n; i++) {
		const struct entry *e = &t->v[i], *f;
		char *folder;

		n = strlen(e->r.key);
		if (e->file == NULL || n < ni || strcmp(e->r.key + n - ni, idx) != 0)
			continue;
		/* Gemini "/dir/", Gopher "/dir" (and "" for the root). */
		folder = xstrdup(e->r.key);
		folder[n - ni + (gopher ? 0 : 1)] = '\0';
		f = bsearch(folder, t->v, t->n, sizeof(*t->v), cmp_key);
		free(folder);
		drop[i] = f != NULL && f->r.generated;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (drop[i])
			entry_free(&t->v[i]);
		else
			t->v[w++] = t->v[i];
	}
	t->n = w;
	free(drop);
}

/* For the gemtext converter: what a selector is, or 0 when not served. */
static char
goph_lookup(void *arg, const char *selector)
{
	const struct table *t = arg;
	const struct entry *e = bsearch(selector, t->v, t->n, sizeof(*t->v),
	    cmp_key);

	return e != NULL ? e->r.gtype : 0;
}

static void
convert_gemtext(struct loader *L)
{
	for (size_t i = 0; i < L->goph.n; i++) {
		struct entry *e = &L->goph.v[i];
		struct buf b = { 0 };

		if (e->gmi == NULL)
			continue;
		render_gopher_from_gemtext_at(e->gmi, e->gmi_len, e->gmi_path,
		    goph_lookup, &L->goph, L->ro, &b);
		e->r.data = b.data;
		e->r.len = b.len;
		free(e->gmi);
		e->gmi = NULL;
	}
}

static struct resource *
table_export(struct table *t, size_t *n)
{
	struct resource *v = xcalloc(t->n, sizeof(*v));

	for (size_t i = 0; i < t->n; i++) {
		v[i] = t->v[i].r;
		free(t->v[i].file);
		free(t->v[i].gmi);
		free(t->v[i].gmi_path);
	}
	*n = t->n;
	free(t->v);
	t->v = NULL;
	return v;
}

static int
add_port(struct site *s, int port)
{
	for (size_t i = 0; i < s->n_ports; i++)
		if (s->ports[i] == port)
			return 0;
	s->ports = xrealloc(s->ports, (s->n_ports + 1) * sizeof(*s->ports));
	s->ports[s->n_ports++] = port;
	return 1;
}

/* For the search index: the Gemini page of member m (the body only). */
struct member_pages {
	const struct loader  *L;
	const struct network *net;
	const size_t         *at;
};

static const char *
member_page(void *arg, const struct member *m, size_t *len)
{
	const struct member_pages *mp = arg;
	const struct resource *r = &mp->L->gem.v[mp->at[m - mp->net->members]].r;

	*len = r->len - r->body_off;
	return (const char *)r->data + r->body_off;
}

/* ------------------------------------------------------ Spartan and Nex */

static int
is_gemtext(const struct resource *r)
{
	return r->mime != NULL && strncmp(r->mime, "text/gemini", 11) == 0;
}

/* A resource of data (malloc'd, len bytes, a NUL after them) under key. */
static void
res_set(struct resource *out, const struct resource *from, const char *key,
    unsigned char *data, size_t len, size_t body_off)
{
	memset(out, 0, sizeof(*out));
	out->key = xstrdup(key);
	out->mime = from->mime;
	out->gtype = from->gtype;
	out->generated = from->generated;
	out->search = from->search;
	out->data = data;
	out->len = len;
	out->body_off = body_off;
}

/*
 * Spartan serves Gemini's table with Spartan's header ("2 MIME" for "20
 * MIME"); the generated pages that link to the search prompt say "=:" there
 * instead (render_spartan_from_gemtext). The same keys in the same order.
 */
static void
build_spartan(struct site *s)
{
	s->spartan = xcalloc(s->n_gemini, sizeof(*s->spartan));
	for (size_t i = 0; i < s->n_gemini; i++) {
		const struct resource *r = &s->gemini[i];
		const unsigned char *body = r->data + r->body_off;
		size_t blen = r->len - r->body_off;
		struct buf conv = { 0 };
		size_t hlen = strlen("2 \r\n") + (r->mime ? strlen(r->mime) : 0);
		unsigned char *p;

		if (r->search) {
			/* Gemini's 10 prompt: on Spartan, a page with a prompt line. */
			buf_adds(&conv, "# " SEARCH_PROMPT "\n\n=: /search "
			    SEARCH_PROMPT "\n");
			body = conv.data;
			blen = conv.len;
		} else if (r->generated && is_gemtext(r) &&
		    render_spartan_from_gemtext(body, blen, &s->ro, &conv)) {
			body = conv.data;
			blen = conv.len;
		}
		p = xmalloc(hlen + blen + 1);
		snprintf((char *)p, hlen + 1, "2 %s\r\n", r->mime ? r->mime : "");
		memcpy(p + hlen, body, blen);
		p[hlen + blen] = '\0';
		res_set(&s->spartan[s->n_spartan++], r, r->key, p, hlen + blen, hlen);
		buf_free(&conv);
	}
}

/* A Gopher text document as plain text: no closing ".", no dot-stuffing,
 * LF line ends (Nex sends documents as they are). */
static void
gopher_unstuff(const unsigned char *p, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		const unsigned char *lf = memchr(p + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - p) : len, n = end - i;

		if (n > 0 && p[i + n - 1] == '\r')
			n--;
		if (n == 1 && p[i] == '.')
			break;		/* the end of the document */
		if (n > 0 && p[i] == '.')
			buf_add(out, p + i + 1, n - 1);
		else
			buf_add(out, p + i, n);
		buf_adds(out, "\n");
		i = end + 1;
	}
}

static int
cmp_resource(const void *a, const void *b)
{
	const struct resource *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return y->generated - x->generated;	/* generated first */
}

/*
 * Nex: the generated gemtext pages that list (the home page, the member list
 * and its pages) as Nex directories, the council and join pages as the
 * Gopher text documents, and everything else (capsule files, the feed) as it
 * is. The search takes input Nex cannot send, so it is left out.
 */
static void
build_nex(struct site *s)
{
	size_t w = 0;

	s->nex = xcalloc(s->n_gemini + 1, sizeof(*s->nex));
	for (size_t i = 0; i < s->n_gemini; i++) {
		const struct resource *r = &s->gemini[i], *g;
		const unsigned char *body = r->data + r->body_off;
		size_t blen = r->len - r->body_off, klen;
		struct buf b = { 0 };
		char *key;

		if (r->search)
			continue;
		if (!r->generated || !is_gemtext(r)) {
			buf_add(&b, body, blen);
			key = xstrdup(r->key);
		} else {
			key = render_nex_path(r->key);
			klen = strlen(key);
			if (klen > 0 && key[klen - 1] != '/' &&
			    (g = site_gopher(s, key)) != NULL && g->gtype == '0')
				gopher_unstuff(g->data, g->len, &b);
			else
				render_nex_from_gemtext(body, blen, &s->ro, &b);
		}
		if (b.data == NULL)
			buf_add(&b, "", 0);
		res_set(&s->nex[s->n_nex], r, key, b.data, b.len, 0);
		s->nex[s->n_nex].gtype = 0;
		s->n_nex++;
		free(key);
	}
	if (s->n_nex > 1)
		qsort(s->nex, s->n_nex, sizeof(*s->nex), cmp_resource);
	/* A capsule file at a generated page's Nex path is shadowed by it. */
	for (size_t i = 0; i < s->n_nex; i++) {
		if (w > 0 && strcmp(s->nex[w - 1].key, s->nex[i].key) == 0) {
			free(s->nex[i].key);
			free(s->nex[i].data);
			continue;
		}
		s->nex[w++] = s->nex[i];
	}
	s->n_nex = w;
}

struct site *
site_build(struct config *cfg, struct diag *d)
{
	return site_build_from(cfg, NULL, d);
}

struct site *
site_build_from(struct config *cfg, const struct site_src *src, struct diag *d)
{
	struct member_pages mp;
	struct doc_batch *batch;
	struct site *s;
	struct loader L;
	size_t *at;

	if (cfg->n_hosts == 0 || cfg->hosts[0].name == NULL) {
		diag_add(d, NULL, 0, NULL, "no hostname to serve");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->hostname = xstrdup(cfg->hosts[0].name);
	s->network_name = xstrdup(cfg->net.name != NULL ? cfg->net.name : "");
	s->hosts = xcalloc(cfg->n_hosts, sizeof(*s->hosts));
	for (size_t i = 0; i < cfg->n_hosts; i++)
		s->hosts[s->n_hosts++] = xstrdup(cfg->hosts[i].name);
	s->ro.hostname = s->hostname;
	s->ro.gemini_port = cfg->gemini_port > 0 ? cfg->gemini_port :
	    cfg->n_gemini_listen > 0 ? cfg->gemini_listen[0].port : 1965;
	s->ro.gopher_port = cfg->gopher_port > 0 ? cfg->gopher_port :
	    cfg->n_gopher_listen > 0 ? cfg->gopher_listen[0].port : 70;
	/* Linked to, and tabled, only when served. */
	s->ro.spartan_port = cfg->n_spartan_listen > 0 ? (cfg->spartan_port > 0 ?
	    cfg->spartan_port : cfg->spartan_listen[0].port) : 0;
	s->ro.nex_port = cfg->n_nex_listen > 0 ? (cfg->nex_port > 0 ?
	    cfg->nex_port : cfg->nex_listen[0].port) : 0;
	add_port(s, s->ro.gemini_port);
	for (size_t i = 0; i < cfg->n_gemini_listen; i++)
		add_port(s, cfg->gemini_listen[i].port);
	s->caps = caps_txt(cfg);
	if (cfg->n_editors > 0)
		s->edit_host = xstrdup(cfg->editing_host != NULL ?
		    cfg->editing_host : cfg->hosts[0].name);

	memset(&L, 0, sizeof(L));
	L.cfg = cfg;
	L.d = d;
	L.ro = &s->ro;
	/*
	 * The Gopher member documents render on a second thread while this one
	 * renders the Gemini pages and indexes them for search. The index keeps
	 * pointers into the pages, which stay where they are as the table sorts.
	 */
	batch = render_docs_start(&cfg->net, &s->ro);
	at = xcalloc(cfg->net.n_members + 1, sizeof(*at));
	render_gemini_generated(&L, &cfg->net, at);
	mp.L = &L;
	mp.net = &cfg->net;
	mp.at = at;
	s->search = search_build(&cfg->net, member_page, &mp);
	free(at);
	render_gopher_generated(&L, &cfg->net, s->caps, batch);
	load_capsule(&L, src);
	table_finish(&L, &L.goph);
	drop_shadowed_index(&L.goph, 1);
	convert_gemtext(&L);
	table_finish(&L, &L.gem);
	drop_shadowed_index(&L.gem, 0);
	s->gemini = table_export(&L.gem, &s->n_gemini);
	s->gopher = table_export(&L.goph, &s->n_gopher);
	if (s->ro.spartan_port > 0)
		build_spartan(s);
	if (s->ro.nex_port > 0)
		build_nex(s);
	network_free(&cfg->net);
	/*
	 * What loading left behind (libconfig's tree of the whole file, the
	 * dataset, render buffers) is free now, but its pages stay in the heap,
	 * and each worker forked from here would carry them: with 10,000
	 * members, as much as the site itself. Give them back.
	 */
	malloc_trim(0);
	return s;
}

void
site_free(struct site *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_gemini; i++) {
		free(s->gemini[i].key);
		free(s->gemini[i].data);
	}
	for (size_t i = 0; i < s->n_gopher; i++) {
		free(s->gopher[i].key);
		free(s->gopher[i].data);
	}
	for (size_t i = 0; i < s->n_spartan; i++) {
		free(s->spartan[i].key);
		free(s->spartan[i].data);
	}
	for (size_t i = 0; i < s->n_nex; i++) {
		free(s->nex[i].key);
		free(s->nex[i].data);
	}
	free(s->gemini);
	free(s->gopher);
	free(s->spartan);
	free(s->nex);
	search_free(s->search);
	for (size_t i = 0; i < s->n_hosts; i++)
		free(s->hosts[i]);
	free(s->hosts);
	free(s->ports);
	free(s->hostname);
	free(s->network_name);
	free(s->caps);
	free(s->edit_host);
	free(s->mimes);
	free(s);
}

size_t
site_search_page(const char *path)
{
	static const char page[] = "/search/page/";
	size_t n = 0;
	const char *p;

	if (strcmp(path, "/search") == 0)
		return 1;
	if (strncmp(path, page, strlen(page)) != 0)
		return 0;
	p = path + strlen(page);
	if (*p < '1' || *p > '9')
		return 0;  /* one spelling a page: no leading zero */
	for (; *p >= '0' && *p <= '9'; p++)
		if ((n = n * 10 + (size_t)(*p - '0')) > SEARCH_MAX_PAGE)
			return 0;
	return *p == '\0' && n >= 2 ? n : 0;
}

static int
cmp_res(const void *key, const void *elem)
{
	return strcmp(key, ((const struct resource *)elem)->key);
}

const struct resource *
site_gemini(const struct site *s, const char *path)
{
	if (s == NULL || path == NULL)
		return NULL;
	return bsearch(path, s->gemini, s->n_gemini, sizeof(*s->gemini), cmp_res);
}

const struct resource *
site_gopher(const struct site *s, const char *selector)
{
	if (s == NULL || selector == NULL)
		return NULL;
	return bsearch(selector, s->gopher, s->n_gopher, sizeof(*s->gopher),
	    cmp_res);
}

const struct resource *
site_spartan(const struct site *s, const char *path)
{
	if (s->n_spartan == 0)
		return NULL;
	return bsearch(path, s->spartan, s->n_spartan, sizeof(*s->spartan),
	    cmp_res);
}

const struct resource *
site_nex(const struct site *s, const char *path)
{
	if (s->n_nex == 0)
		return NULL;
	return bsearch(path, s->nex, s->n_nex, sizeof(*s->nex), cmp_res);
}

/* --------------------------------------------------------------- export */

/*
 * A key becomes a relative file path only when every segment is a plain name:
 * keys come from the dataset and the capsule, and nothing may land outside DIR.
 */
static int
safe_relpath(const char *p)
{
	const char *seg = p;

	if (*p == '\0' || *p == '/')
		return 0;
	for (;;) {
		size_t n = strcspn(seg, "/");

		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)seg[i] < 0x20 || seg[i] == '\\')
				return 0;
		if (seg[n] == '\0')
			return 1;
		seg += n + 1;
	}
}

/* mkdir -p of the folders above the file rel, under base (which exists). */
static int
make_parents(const char *base, const char *rel, struct diag *d)
{
	char *path = xasprintf("%s/%s", base, rel);
	char *p = path + strlen(base) + 1;
	struct stat st;

	while ((p = strchr(p, '/')) != NULL) {
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST) {
			diag_add(d, NULL, 0, NULL, "%s: %s", path, strerror(errno));
			free(path);
			return -1;
		}
		if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
			diag_add(d, NULL, 0, NULL, "%s: not a folder", path);
			free(path);
			return -1;
		}
		chmod(path, 0755);
		*p++ = '/';
	}
	free(path);
	return 0;
}

static int
write_out(const char *base, const char *rel, const unsigned char *data,
    size_t len, struct diag *d)
{
	char *path;
	size_t off = 0;
	int fd;

	if (!safe_relpath(rel)) {
		diag_add(d, NULL, 0, NULL, "%s/%s: not a safe file name; not "
		    "written", base, rel);
		return -1;
	}
	if (make_parents(base, rel, d) == -1)
		return -1;
	path = xasprintf("%s/%s", base, rel);
	/* O_NOFOLLOW: a symlink planted in DIR cannot redirect the write. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		diag_add(d, NULL, 0, NULL, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	fchmod(fd, 0644);
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			diag_add(d, NULL, 0, NULL, "%s: %s", path, strerror(errno));
			close(fd);
			free(path);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) == -1) {
		diag_add(d, NULL, 0, NULL, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

static int
make_dir(const char *path, struct diag *d)
{
	struct stat st;

	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		diag_add(d, NULL, 0, NULL, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		diag_add(d, NULL, 0, NULL, "%s: not a folder", path);
		return -1;
	}
	return 0;
}

/* A Gopher menu for a folder ("", "/members", a capsule index) -> gophermap. */
static int
is_folder_menu(const struct resource *r)
{
	const char *last = strrchr(r->key, '/');

	if (r->gtype != '1')
		return 0;
	last = last != NULL ? last + 1 : r->key;
	return strchr(last, '.') == NULL;
}

/* DIR/spartan/: only the pages whose body differs from Gemini's (the
 * tables share their keys and order). */
static int
export_spartan(const struct site *s, const char *dir, struct diag *d)
{
	char *out = xasprintf("%s/spartan", dir);
	int rc = 0;

	if (make_dir(out, d) == -1) {
		free(out);
		return -1;
	}
	for (size_t i = 0; i < s->n_spartan && i < s->n_gemini; i++) {
		const struct resource *r = &s->spartan[i], *g = &s->gemini[i];
		size_t n = strlen(r->key), len = r->len - r->body_off;
		char *rel;

		if (r->search || (len == g->len - g->body_off &&
		    memcmp(r->data + r->body_off, g->data + g->body_off, len) == 0))
			continue;
		rel = n > 0 && r->key[n - 1] == '/' ?
		    xasprintf("%sindex.gmi", r->key + 1) : xstrdup(r->key + 1);
		if (write_out(out, rel, r->data + r->body_off, len, d) == -1)
			rc = -1;
		free(rel);
	}
	free(out);
	return rc;
}

/* DIR/nex/: every document; a directory's as its folder's "index". */
static int
export_nex(const struct site *s, const char *dir, struct diag *d)
{
	char *out = xasprintf("%s/nex", dir);
	int rc = 0;

	if (make_dir(out, d) == -1) {
		free(out);
		return -1;
	}
	for (size_t i = 0; i < s->n_nex; i++) {
		const struct resource *r = &s->nex[i];
		size_t n = strlen(r->key);
		char *rel = n > 0 && r->key[n - 1] == '/' ?
		    xasprintf("%sindex", r->key + 1) : xstrdup(r->key + 1);

		if (write_out(out, rel, r->data, r->len, d) == -1)
			rc = -1;
		free(rel);
	}
	free(out);
	return rc;
}

int
site_export(const struct site *s, const char *dir, struct diag *d)
{
	char *gem = xasprintf("%s/gemini", dir), *goph = xasprintf("%s/gopher", dir);
	int rc = 0;

	if (make_dir(dir, d) == -1 || make_dir(gem, d) == -1 ||
	    make_dir(goph, d) == -1) {
		free(gem);
		free(goph);
		return -1;
	}
	for (size_t i = 0; i < s->n_gemini; i++) {
		const struct resource *r = &s->gemini[i];
		size_t n = strlen(r->key);
		char *rel;

		if (r->search)
			continue;
		rel = n > 0 && r->key[n - 1] == '/' ?
		    xasprintf("%sindex.gmi", r->key + 1) : xstrdup(r->key + 1);
		if (write_out(gem, rel, r->data + r->body_off,
		    r->len - r->body_off, d) == -1)
			rc = -1;
		free(rel);
	}
	for (size_t i = 0; i < s->n_gopher; i++) {
		const struct resource *r = &s->gopher[i];
		const char *k = r->key[0] == '/' ? r->key + 1 : r->key;
		char *rel;

		if (r->search)
			continue;
		if (is_folder_menu(r))
			rel = *k ? xasprintf("%s/gophermap", k) : xstrdup("gophermap");
		else
			rel = xstrdup(k);
		if (write_out(goph, rel, r->data, r->len, d) == -1)
			rc = -1;
		free(rel);
	}
	free(gem);
	free(goph);
	if (rc == 0 && s->n_spartan > 0)
		rc = export_spartan(s, dir, d);
	if (rc == 0 && s->n_nex > 0)
		rc = export_nex(s, dir, d);
	return rc;
}
