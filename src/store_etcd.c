/*
 * store_etcd.c: the store process (server.store), one per instance, for as
 * long as the instance runs. It alone talks to etcd. It gives up root
 * (server.user, chroot) and keeps only the state folder (sandbox.c's
 * SANDBOX_STORE: Landlock, its own seccomp filter).
 *
 * etcd holds the network's edited state, under the prefix P:
 *
 *   P m/dataset             the dataset: a manifest (JSON: size, SHA-256,
 *                           its parts' SHA-256 in order)
 *   P m/capsule/PATH        each capsule file an editor uploaded: a manifest
 *   P m/versions/NAME       the last VERSIONS_KEPT versions: manifests
 *   P b/SHA256              a part, at most CHUNK_PART_MAX bytes (chunk.c),
 *                           kept once whatever holds it
 *   P a/STAMP               the audit trail, one record a key
 *
 * A store writes the parts it lacks first (each a request of its own, so
 * that a 10 MB dataset fits etcd's 1.5 MiB request limit), then one
 * transaction that compares the dataset's revision with the one the
 * editor's text was based on and that every part is there, and puts the
 * manifests: a store is whole or absent, and of two editors on the same
 * revision one wins. Parts no manifest names are removed after a store.
 *
 * The state folder is this instance's copy (the mirror), in the files the
 * builder and the editing process read without etcd: network.conf,
 * capsule/, versions/, and store.rev (the dataset's revision, written after
 * network.conf). A watch on P m/ tells of every change; each is followed
 * by a full comparison of the manifests with the copy (by SHA-256, so only
 * what changed is fetched) and the master is told to reload. With etcd
 * gone the copy serves, through restarts too; when etcd is back a fresh
 * read catches up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "etcd.h"
#include "server.h"

#define VERSIONS_KEPT  20
#define AUDIT_KEPT     1000
/* A transaction takes at most 128 operations (etcd's --max-txn-ops): the
 * parts' checks, three puts and a margin. */
#define PARTS_MAX      100
/* Without etcd, another try this often. */
#define RETRY_MS       1000
/* A store that lost a part to a concurrent clean-up writes it again. */
#define STORE_TRIES    3
/* Parts a request: etcd takes at most 1.5 MiB of keys and values in one
 * (--max-request-bytes); an answer is not bounded so. */
#define PUT_BATCH      (1u << 20)
#define FETCH_BATCH    8
#define STATE_VERSIONS "versions"
#define STATE_LOCAL    "versions-local"

struct schan {
	int           fd;
	struct buf    in, out;
	size_t        off;
	struct event *ev;
};

/* A capsule file of the copy and the SHA-256 it has. */
struct capfile {
	char *path;
	char  sha[65];
};

struct st {
	const struct config *cfg;
	struct event_base   *base;
	struct etcd         *etcd;
	const char          *pfx;
	int                  state_fd, seed_fd, ctl;
	int                  online, ready_sent;
	int64_t              synced;        /* the revision the copy matches */
	int64_t              ds_rev;        /* the dataset's, in store.rev */
	char                 ds_sha[65];    /* network.conf's */
	struct capfile      *cap;
	size_t               n_cap;
	struct event        *ctl_ev, *retry_ev, *sync_ev;
	struct schan        *ch;
	size_t               n_ch;
	char                 err[256];
};

struct manifest {
	char     *key;          /* after the prefix */
	int64_t   mod_rev;
	size_t    size;
	char      sha[65];
	char    (*parts)[65];
	size_t    n_parts;
};

/* ---------------------------------------------------------------- helpers */

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static char *
key(const struct st *s, const char *rest)
{
	return xasprintf("%s%s", s->pfx, rest);
}

static json_t *
op_put(const char *k, const void *v, size_t n)
{
	return json_pack("{s:{s:o,s:o}}", "request_put", "key", etcd_str(k),
	    "value", etcd_bytes(v, n));
}

static json_t *
cmp_rev(const char *k, const char *target, const char *result, int64_t rev)
{
	return json_pack("{s:o,s:s,s:s,s:o}", "key", etcd_str(k), "target", target,
	    "result", result, strcmp(target, "MOD") == 0 ? "mod_revision" :
	    "create_revision", etcd_rev(rev));
}

static void
manifest_free(struct manifest *m)
{
	free(m->key);
	free(m->parts);
	memset(m, 0, sizeof(*m));
}

static void
manifests_free(struct manifest *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		manifest_free(&v[i]);
	free(v);
}

static int
hex64(const char *s)
{
	if (s == NULL || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* A manifest's JSON (the value of an m/ key) into m; -1 when it is not one. */
static int
manifest_parse(const unsigned char *v, size_t n, struct manifest *m)
{
	json_t *j = json_loadb((const char *)v, n, 0, NULL), *parts;
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	size_t i;

	parts = json_object_get(j, "parts");
	if (j == NULL || !hex64(sha) || !json_is_array(parts) ||
	    json_array_size(parts) > PARTS_MAX) {
		json_decref(j);
		return -1;
	}
	memcpy(m->sha, sha, 65);
	m->size = (size_t)etcd_int(json_object_get(j, "size"));
	m->n_parts = json_array_size(parts);
	m->parts = xcalloc(m->n_parts + 1, sizeof(*m->parts));
	for (i = 0; i < m->n_parts; i++) {
		const char *p = json_string_value(json_array_get(parts, i));

		if (!hex64(p))
			break;
		memcpy(m->parts[i], p, 65);
	}
	json_decref(j);
	return i == m->n_parts ? 0 : -1;
}

static char *
manifest_json(size_t size, const char *sha, char (*parts)[65], size_t n,
    const char *who)
{
	json_t *a = json_array(), *j;
	char *out;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(parts[i]));
	j = json_pack("{s:I,s:s,s:o}", "size", (json_int_t)size, "sha256", sha,
	    "parts", a);
	if (who != NULL)
		json_object_set_new(j, "who", json_string(who));
	out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return out;
}

/* ---------------------------------------------------------------- reading */

/* The keys (and values unless keys_only) in [k, end); the header revision
 * in *rev. 0, or -1 with s->err. */
static int
range(struct st *s, const char *k, const char *end, int keys_only, json_t **kvs,
    int64_t *rev)
{
	json_t *req = json_pack("{s:o}", "key", etcd_str(k)), *resp;

	if (end != NULL)
		json_object_set_new(req, "range_end", etcd_str(end));
	if (keys_only)
		json_object_set_new(req, "keys_only", json_true());
	*kvs = NULL;
	if (etcd_call(s->etcd, "/v3/kv/range", req, &resp, s->err,
	    sizeof(s->err)) == -1)
		return -1;
	if (rev != NULL)
		*rev = etcd_int(json_object_get(json_object_get(resp, "header"),
		    "revision"));
	*kvs = json_incref(json_object_get(resp, "kvs"));
	if (*kvs == NULL)
		*kvs = json_array();
	json_decref(resp);
	return 0;
}

/* The key of kv after the prefix (a new string), or NULL. */
static char *
kv_name(const struct st *s, const json_t *kv)
{
	size_t n, l = strlen(s->pfx);
	unsigned char *k = etcd_unbytes(json_object_get(kv, "key"), &n);

	if (k == NULL || n < l || memcmp(k, s->pfx, l) != 0 ||
	    strlen((char *)k) != n) {
		free(k);
		return NULL;
	}
	memmove(k, k + l, n - l + 1);
	return (char *)k;
}

/* Every manifest under P m/; the revision read at in *rev. */
static int
read_manifests(struct st *s, struct manifest **out, size_t *n, int64_t *rev)
{
	char *k = key(s, "m/"), *end = etcd_prefix_end(k);
	json_t *kvs, *kv;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	rc = range(s, k, end, 0, &kvs, rev);
	free(k);
	free(end);
	if (rc == -1)
		return -1;
	*out = xcalloc(json_array_size(kvs) + 1, sizeof(**out));
	json_array_foreach(kvs, i, kv) {
		struct manifest m = { 0 };
		size_t vn;
		unsigned char *v = etcd_unbytes(json_object_get(kv, "value"), &vn);

		m.key = kv_name(s, kv);
		m.mod_rev = etcd_int(json_object_get(kv, "mod_revision"));
		if (m.key == NULL || v == NULL || manifest_parse(v, vn, &m) == -1) {
			log_warn("store: %s: not a manifest; ignored", m.key != NULL ?
			    m.key : "a key");
			manifest_free(&m);
		} else {
			(*out)[(*n)++] = m;
		}
		free(v);
	}
	json_decref(kvs);
	return 0;
}

/* A manifest's file, whole and checked: each part by its name, the whole by
 * its SHA-256. The parts come FETCH_BATCH to a request (a transaction of
 * ranges, a read); they are named by their content, so any member's copy
 * will do. 0, or -1 with s->err. */
static int
fetch(struct st *s, const struct manifest *m, struct buf *out)
{
	char sha[65];

	for (size_t i = 0; i < m->n_parts; i += FETCH_BATCH) {
		size_t n = m->n_parts - i < FETCH_BATCH ? m->n_parts - i : FETCH_BATCH;
		json_t *ops = json_array(), *req, *resp, *r;

		for (size_t j = 0; j < n; j++) {
			char *k = xasprintf("%sb/%s", s->pfx, m->parts[i + j]);

			json_array_append_new(ops, json_pack("{s:{s:o,s:b}}",
			    "request_range", "key", etcd_str(k), "serializable", 1));
			free(k);
		}
		req = json_pack("{s:o}", "success", ops);
		if (etcd_call(s->etcd, "/v3/kv/txn", req, &resp, s->err,
		    sizeof(s->err)) == -1)
			return -1;
		r = json_object_get(resp, "responses");
		for (size_t j = 0; j < n; j++) {
			json_t *kv = json_array_get(json_object_get(json_object_get(
			    json_array_get(r, j), "response_range"), "kvs"), 0);
			size_t len = 0;
			unsigned char *v = etcd_unbytes(json_object_get(kv, "value"), &len);

			if (v != NULL)
				sha256_hex(v, len, sha);
			if (v == NULL || strcmp(sha, m->parts[i + j]) != 0) {
				snprintf(s->err, sizeof(s->err), "%s: part %s is missing "
				    "or damaged", m->key, m->parts[i + j]);
				free(v);
				json_decref(resp);
				return -1;
			}
			buf_add(out, v, len);
			free(v);
		}
		json_decref(resp);
	}
	if (out->data == NULL)
		buf_add(out, "", 0);
	sha256_hex(out->data, out->len, sha);
	if (strcmp(sha, m->sha) != 0 || out->len != m->size) {
		snprintf(s->err, sizeof(s->err), "%s: its parts do not make the file "
		    "it names", m->key);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- the copy */

/* data into folder dfd as name, whole or not at all. */
static int
put_file(int dfd, const char *name, const void *data, size_t len)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), ".mirror-%08lx", (unsigned long)random());
	if (sf_write_new(dfd, tmp, data, len, 0600) == -1)
		return -1;
	if (renameat(dfd, tmp, dfd, name) == -1) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	fsync(dfd);
	return 0;
}

static void
write_rev(struct st *s, int64_t rev)
{
	char t[32];

	snprintf(t, sizeof(t), "%lld\n", (long long)rev);
	if (put_file(s->state_fd, STATE_REVISION, t, strlen(t)) == -1)
		log_warn("store: %s/" STATE_REVISION ": %s", s->cfg->state_dir,
		    strerror(errno));
	s->ds_rev = rev;
}

static int
mirror_dataset(struct st *s, const void *text, size_t len, const char *sha,
    int64_t rev)
{
	if (put_file(s->state_fd, STATE_DATASET, text, len) == -1) {
		snprintf(s->err, sizeof(s->err), "%s/" STATE_DATASET ": %s",
		    s->cfg->state_dir, strerror(errno));
		return -1;
	}
	memcpy(s->ds_sha, sha, 65);
	write_rev(s, rev);
	return 0;
}

/* A version into versions/: a link to network.conf when it is that text. */
static int
mirror_version(struct st *s, const char *name, const void *text, size_t len,
    const char *sha)
{
	int vfd = sf_open_dir(s->state_fd, STATE_VERSIONS, 1), rc = -1;

	if (vfd == -1)
		return -1;
	if (strcmp(sha, s->ds_sha) == 0 &&
	    linkat(s->state_fd, STATE_DATASET, vfd, name, 0) == 0)
		rc = 0;
	else if (text != NULL)
		rc = put_file(vfd, name, text, len);
	if (rc == 0)
		fsync(vfd);
	close(vfd);
	return rc;
}

/* The folder of capsule path P in the copy's overlay, made as needed,
 * never through a link; its last segment in *leaf. */
static int
capsule_dir(struct st *s, const char *p, const char **leaf)
{
	char *copy = xstrdup(p + 1), *seg, *slash;
	int dfd = sf_open_dir(s->state_fd, STATE_CAPSULE, 1), next;

	for (seg = copy; dfd != -1 && (slash = strchr(seg, '/')) != NULL;
	    seg = slash + 1) {
		*slash = '\0';
		next = (strcmp(seg, "..") == 0 || strcmp(seg, ".") == 0 ||
		    *seg == '\0') ? -1 : sf_open_dir(dfd, seg, 1);
		close(dfd);
		dfd = next;
	}
	*leaf = p + 1 + (size_t)(seg - copy);
	free(copy);
	return dfd;
}

static struct capfile *
cap_find(struct st *s, const char *path)
{
	for (size_t i = 0; i < s->n_cap; i++)
		if (strcmp(s->cap[i].path, path) == 0)
			return &s->cap[i];
	return NULL;
}

static int
mirror_capsule(struct st *s, const char *path, const void *data, size_t len,
    const char *sha)
{
	const char *leaf;
	struct capfile *c;
	int dfd, rc;

	if (path[0] != '/' || strstr(path, "/.") != NULL || strstr(path, "//") ||
	    (dfd = capsule_dir(s, path, &leaf)) == -1 || *leaf == '\0') {
		snprintf(s->err, sizeof(s->err), "capsule%s: cannot be written in "
		    "the state folder", path);
		return -1;
	}
	rc = put_file(dfd, leaf, data, len);
	close(dfd);
	if (rc == -1) {
		snprintf(s->err, sizeof(s->err), "capsule%s: %s", path, strerror(errno));
		return -1;
	}
	if ((c = cap_find(s, path)) == NULL) {
		s->cap = xrealloc(s->cap, (s->n_cap + 1) * sizeof(*s->cap));
		c = &s->cap[s->n_cap++];
		c->path = xstrdup(path);
	}
	memcpy(c->sha, sha, 65);
	return 0;
}

/* The SHA-256 of the copy's capsule file path ("" when it has none). */
static void
capsule_sha(struct st *s, const char *path, char out[65])
{
	struct capfile *c = cap_find(s, path);
	struct buf b = { 0 };
	const char *leaf;
	int dfd;

	out[0] = '\0';
	if (c != NULL) {
		memcpy(out, c->sha, 65);
		return;
	}
	if ((dfd = capsule_dir(s, path, &leaf)) == -1)
		return;
	if (sf_read_at(dfd, leaf, &b) == 0) {
		sha256_hex(b.data, b.len, out);
		s->cap = xrealloc(s->cap, (s->n_cap + 1) * sizeof(*s->cap));
		s->cap[s->n_cap].path = xstrdup(path);
		memcpy(s->cap[s->n_cap++].sha, out, 65);
	}
	buf_free(&b);
	close(dfd);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The copy made to match the manifests: the dataset, the capsule files,
 * the versions (fetched when missing, removed when etcd has dropped them).
 * *changed: whether the site may differ. 0, or -1 with s->err.
 */
static int
mirror_all(struct st *s, struct manifest *v, size_t n, int *changed)
{
	char **loc;
	size_t n_loc;
	int vfd, rc = 0;

	*changed = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct buf b = { 0 };

		if (strcmp(v[i].key, "m/dataset") == 0) {
			if (strcmp(v[i].sha, s->ds_sha) != 0) {
				rc = fetch(s, &v[i], &b);
				if (rc == 0)
					rc = mirror_dataset(s, b.data, b.len, v[i].sha,
					    v[i].mod_rev);
				*changed = 1;
			} else if (v[i].mod_rev != s->ds_rev) {
				write_rev(s, v[i].mod_rev);
			}
		} else if (strncmp(v[i].key, "m/capsule/", 10) == 0) {
			char sha[65];
			const char *path = v[i].key + 9;

			capsule_sha(s, path, sha);
			if (strcmp(sha, v[i].sha) != 0) {
				rc = fetch(s, &v[i], &b);
				if (rc == 0)
					rc = mirror_capsule(s, path, b.data, b.len, v[i].sha);
				*changed = 1;
			}
		}
		buf_free(&b);
	}
	if (rc == -1)
		return -1;
	/* The versions: after the dataset, so that the current one is a link. */
	if ((vfd = sf_open_dir(s->state_fd, STATE_VERSIONS, 1)) == -1)
		return 0;
	n_loc = sf_list_versions(vfd, &loc);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *name;
		struct buf b = { 0 };

		if (strncmp(v[i].key, "m/versions/", 11) != 0)
			continue;
		name = v[i].key + 11;
		if (!sf_version_ok(name) || (n_loc > 0 &&
		    bsearch(&name, loc, n_loc, sizeof(*loc), cmp_str) != NULL))
			continue;
		if (strcmp(v[i].sha, s->ds_sha) == 0)
			rc = mirror_version(s, name, NULL, 0, v[i].sha);
		else if ((rc = fetch(s, &v[i], &b)) == 0)
			rc = mirror_version(s, name, b.data, b.len, v[i].sha);
		buf_free(&b);
	}
	for (size_t i = 0; i < n_loc && rc == 0; i++) {
		char *k = xasprintf("m/versions/%s", loc[i]);
		size_t j;

		for (j = 0; j < n && strcmp(v[j].key, k) != 0; j++)
			;
		if (j == n)
			unlinkat(vfd, loc[i], 0);
		free(k);
	}
	for (size_t i = 0; i < n_loc; i++)
		free(loc[i]);
	free(loc);
	close(vfd);
	return rc;
}

/* ----------------------------------------------------------------- writes */

/* The operations in ops, as one request (a transaction without compares);
 * ops emptied. 0, or -1 with s->err. */
static int
run_ops(struct st *s, json_t *ops)
{
	json_t *req = json_pack("{s:O}", "success", ops), *resp = NULL;
	int rc = etcd_call(s->etcd, "/v3/kv/txn", req, &resp, s->err, sizeof(s->err));

	json_decref(resp);
	json_array_clear(ops);
	return rc;
}

/* The parts of text stored (those etcd lacks), their names in *parts. */
static int
put_parts(struct st *s, const unsigned char *text, size_t len,
    char (**parts)[65], size_t *n)
{
	size_t ends[PARTS_MAX + 1], k, start = 0;
	char *bk = key(s, "b/"), *bend = etcd_prefix_end(bk);
	json_t *have = NULL, *kv, *ops;
	size_t batched = 0, n_have = 0, j;
	char **names, *name;
	int rc = 0;

	*parts = NULL;
	*n = 0;
	if ((k = chunk_cut(text, len, ends, PARTS_MAX)) == 0 && len > 0) {
		snprintf(s->err, sizeof(s->err), "the file is too large to be stored "
		    "in etcd: more than %d parts of %u KiB", PARTS_MAX,
		    CHUNK_PART_MAX >> 10);
		free(bk);
		free(bend);
		return -2;
	}
	if (range(s, bk, bend, 1, &have, NULL) == -1) {
		free(bk);
		free(bend);
		return -1;
	}
	/* The names of the parts etcd has, decoded once. */
	names = xcalloc(json_array_size(have) + 1, sizeof(*names));
	json_array_foreach(have, j, kv)
		if ((name = kv_name(s, kv)) != NULL)
			names[n_have++] = name;
	*parts = xcalloc(k + 1, sizeof(**parts));
	ops = json_array();
	for (size_t i = 0; i < k && rc == 0; i++) {
		size_t plen = ends[i] - start;
		int found = 0;

		sha256_hex(text + start, plen, (*parts)[i]);
		/* A part the file has twice is written once (a key twice in
		 * one transaction is refused). */
		for (j = 0; j < i && !found; j++)
			found = strcmp((*parts)[j], (*parts)[i]) == 0;
		for (j = 0; j < n_have && !found; j++)
			found = strcmp(names[j] + 2, (*parts)[i]) == 0;
		/* The parts etcd lacks, PUT_BATCH bytes to a request (each
		 * request is one commit on every member). */
		if (!found) {
			char *pk = xasprintf("%s%s", bk, (*parts)[i]);

			if (batched + plen > PUT_BATCH) {
				rc = run_ops(s, ops);
				batched = 0;
			}
			json_array_append_new(ops, op_put(pk, text + start, plen));
			batched += plen;
			free(pk);
		}
		start = ends[i];
	}
	if (rc == 0 && json_array_size(ops) > 0)
		rc = run_ops(s, ops);
	json_decref(ops);
	json_decref(have);
	for (j = 0; j < n_have; j++)
		free(names[j]);
	free(names);
	free(bk);
	free(bend);
	*n = k;
	return rc;
}

/* A version's name: "YYYYMMDDTHHMMSS.UUUUUUZ-WHO.conf", as editor.c makes. */
static char *
version_name(const char *who)
{
	struct timespec ts;
	char stamp[40];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	return xasprintf("%s.%06ldZ-%s.conf", stamp, ts.tv_nsec / 1000, who);
}

/*
 * The transaction: compares (the caller's, then one per part: it is still
 * there), the puts. 1 stored (*rev: its revision), 0 a compare failed
 * (*cur: the dataset's revision now), -1 etcd unreachable (s->err). mine,
 * a key the puts make and nothing else does: when the compares fail
 * because an earlier try of this same store did get through (its answer
 * lost with a member), it is there, and the store is done.
 */
static int
txn(struct st *s, json_t *cmp, char (*parts)[65], size_t n, json_t *puts,
    const char *mine, int64_t *rev, int64_t *cur)
{
	char *dk = key(s, "m/dataset");
	json_t *req, *resp, *kv, *r;
	int ok;

	for (size_t i = 0; i < n; i++) {
		char *pk = xasprintf("%sb/%s", s->pfx, parts[i]);

		json_array_append_new(cmp, cmp_rev(pk, "CREATE", "GREATER", 0));
		free(pk);
	}
	req = json_pack("{s:o,s:o,s:[{s:{s:o}},{s:{s:o}}]}", "compare", cmp,
	    "success", puts, "failure", "request_range", "key", etcd_str(dk),
	    "request_range", "key", etcd_str(mine));
	free(dk);
	if (etcd_call(s->etcd, "/v3/kv/txn", req, &resp, s->err, sizeof(s->err)) == -1)
		return -1;
	ok = json_is_true(json_object_get(resp, "succeeded"));
	*rev = etcd_int(json_object_get(json_object_get(resp, "header"), "revision"));
	r = json_object_get(resp, "responses");
	kv = json_array_get(json_object_get(json_object_get(json_array_get(r, 0),
	    "response_range"), "kvs"), 0);
	*cur = etcd_int(json_object_get(kv, "mod_revision"));
	kv = json_array_get(json_object_get(json_object_get(json_array_get(r, 1),
	    "response_range"), "kvs"), 0);
	if (!ok && kv != NULL) {
		*rev = etcd_int(json_object_get(kv, "mod_revision"));
		ok = 1;
	}
	json_decref(resp);
	return ok;
}

/* The put of an audit record; its key in *kout when kout is not NULL. */
static json_t *
audit_put(struct st *s, const char *fp, const char *path, size_t size,
    int status, const char *meta, char **kout)
{
	struct timespec ts;
	char stamp[48], *k, *v;
	struct tm tm;
	json_t *j, *op;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	k = xasprintf("%sa/%s.%06ldZ-%08lx", s->pfx, stamp, ts.tv_nsec / 1000,
	    (unsigned long)random());
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	j = json_pack("{s:s,s:s,s:s,s:I,s:i,s:s}", "time", stamp, "editor", fp,
	    "path", path, "size", (json_int_t)size, "result", status, "meta", meta);
	v = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	op = op_put(k, v, strlen(v));
	json_decref(j);
	if (kout != NULL)
		*kout = k;
	else
		free(k);
	free(v);
	return op;
}

/* Removes keys [from the oldest] so that at most keep stay under sub. */
static void
prune(struct st *s, const char *sub, size_t keep)
{
	char *k = key(s, sub), *end = etcd_prefix_end(k);
	json_t *kvs, *ops = json_array(), *kv;
	size_t i, n;

	if (range(s, k, end, 1, &kvs, NULL) == 0) {
		n = json_array_size(kvs);
		json_array_foreach(kvs, i, kv) {
			if (i + keep >= n)
				break;
			json_array_append_new(ops, json_pack("{s:{s:O}}",
			    "request_delete_range", "key", json_object_get(kv, "key")));
			if (json_array_size(ops) == 64 || i + keep + 1 >= n)
				run_ops(s, ops);
		}
		json_decref(kvs);
	}
	json_decref(ops);
	free(k);
	free(end);
}

/* Parts that no manifest names go: after a store, from the instance that
 * made it. A store under way elsewhere whose part goes here fails its
 * transaction's check and writes the part again (STORE_TRIES). */
static void
collect_parts(struct st *s)
{
	struct manifest *v;
	size_t n, i, j;
	int64_t rev;
	char *bk = key(s, "b/"), *bend = etcd_prefix_end(bk);
	json_t *kvs, *kv, *ops = json_array();

	if (read_manifests(s, &v, &n, &rev) == -1) {
		free(bk);
		free(bend);
		json_decref(ops);
		return;
	}
	if (range(s, bk, bend, 1, &kvs, NULL) == 0) {
		json_array_foreach(kvs, i, kv) {
			char *name = kv_name(s, kv);
			int used = 0;

			for (j = 0; j < n && !used && name != NULL; j++)
				for (size_t p = 0; p < v[j].n_parts && !used; p++)
					used = strcmp(v[j].parts[p], name + 2) == 0;
			free(name);
			if (!used)
				json_array_append_new(ops, json_pack("{s:{s:O}}",
				    "request_delete_range", "key", json_object_get(kv, "key")));
			if (json_array_size(ops) == 64 ||
			    (i + 1 == json_array_size(kvs) && json_array_size(ops) > 0))
				run_ops(s, ops);
		}
		json_decref(kvs);
	}
	json_decref(ops);
	manifests_free(v, n);
	free(bk);
	free(bend);
}

/* Deletes of the oldest versions, so that with one more there are at most
 * VERSIONS_KEPT, appended to ops. 0, or -1 with s->err. */
static int
old_versions(struct st *s, json_t *ops)
{
	char *k = key(s, "m/versions/"), *end = etcd_prefix_end(k);
	json_t *kvs, *kv;
	size_t i, n;
	int rc = range(s, k, end, 1, &kvs, NULL);

	free(k);
	free(end);
	if (rc == -1)
		return -1;
	n = json_array_size(kvs);
	json_array_foreach(kvs, i, kv) {
		if (i + VERSIONS_KEPT >= n + 1)
			break;
		json_array_append_new(ops, json_pack("{s:{s:O}}",
		    "request_delete_range", "key", json_object_get(kv, "key")));
	}
	json_decref(kvs);
	return 0;
}

/*
 * A dataset upload, checked by the editing process, based on revision base
 * (-1: the copy's). Returns the Gemini status and *meta: 30 stored (and in
 * the copy), 50 another store came first, 59 too large, 40 no etcd.
 */
static int
store_dataset(struct st *s, const char *fp, int64_t base, const unsigned char *text,
    size_t len, char **meta)
{
	char who[9], sha[65], (*parts)[65] = NULL, *name, *mj, *dk, *vk;
	int64_t rev = 0, cur = 0;
	size_t n = 0;
	int r = -1;

	if (base < 0)
		base = s->ds_rev;
	memcpy(who, fp, 8);
	who[8] = '\0';
	sha256_hex(text, len, sha);
	name = version_name(who);
	dk = key(s, "m/dataset");
	vk = xasprintf("%sm/versions/%s", s->pfx, name);
	for (int tries = 0; tries < STORE_TRIES; tries++) {
		json_t *cmp, *puts;

		free(parts);
		if ((r = put_parts(s, text, len, &parts, &n)) < 0)
			break;
		mj = manifest_json(len, sha, parts, n, NULL);
		cmp = json_pack("[o,o]", cmp_rev(dk, "MOD", "EQUAL", base),
		    cmp_rev(vk, "CREATE", "EQUAL", 0));
		puts = json_pack("[o,o,o]", op_put(dk, mj, strlen(mj)),
		    op_put(vk, mj, strlen(mj)), audit_put(s, fp, "/" STATE_DATASET,
		    len, 30, name, NULL));
		free(mj);
		/* The oldest versions past the limit go in the same step: no
		 * instance ever sees more than VERSIONS_KEPT. The list cannot
		 * change meanwhile: only a dataset store changes it, and the
		 * dataset's revision is compared. */
		if (old_versions(s, puts) == -1) {
			json_decref(cmp);
			json_decref(puts);
			r = -1;
			break;
		}
		if ((r = txn(s, cmp, parts, n, puts, vk, &rev, &cur)) != 0 || cur != base)
			break;
	}
	if (r == 1) {
		prune(s, "a/", AUDIT_KEPT);
		collect_parts(s);
		/* The copy now, from the text in hand: the 30 waits for the
		 * reload that serves it, which reads the copy. */
		if (mirror_dataset(s, text, len, sha, rev) == -1 ||
		    mirror_version(s, name, text, len, sha) == -1)
			log_warn("store: stored in etcd, but the copy: %s", s->err);
		*meta = xasprintf("stored at revision %lld", (long long)rev);
		r = 30;
	} else if (r == 0) {
		*meta = xasprintf("the dataset changed since your copy (revision "
		    "%lld, now %lld): another editor stored theirs first; nothing "
		    "was stored: fetch /" STATE_DATASET " again, make your change "
		    "there and upload it", (long long)base, (long long)cur);
		r = 50;
	} else if (r == -2) {
		*meta = xstrdup(s->err);
		r = 59;
	} else {
		*meta = xasprintf("the shared store (etcd) cannot be reached: %s; "
		    "nothing was stored, try again later", s->err);
		s->online = 0;
		r = 40;
	}
	free(parts);
	free(name);
	free(dk);
	free(vk);
	return r;
}

static int
store_capsule(struct st *s, const char *fp, const char *path,
    const unsigned char *body, size_t len, char **meta)
{
	char sha[65], (*parts)[65] = NULL, *mj, *ck;
	int64_t rev = 0, cur = 0;
	size_t n = 0;
	int r = -1;

	sha256_hex(body, len, sha);
	ck = xasprintf("%sm/capsule%s", s->pfx, path);
	for (int tries = 0; tries < STORE_TRIES; tries++) {
		json_t *puts;
		char *ak = NULL;

		free(parts);
		if ((r = put_parts(s, body, len, &parts, &n)) < 0)
			break;
		mj = manifest_json(len, sha, parts, n, NULL);
		puts = json_pack("[o,o]", op_put(ck, mj, strlen(mj)),
		    audit_put(s, fp, path, len, 30, "stored", &ak));
		free(mj);
		r = txn(s, json_array(), parts, n, puts, ak, &rev, &cur);
		free(ak);
		if (r != 0)
			break;
	}
	if (r == 1) {
		prune(s, "a/", AUDIT_KEPT);
		collect_parts(s);
		if (mirror_capsule(s, path, body, len, sha) == -1)
			log_warn("store: stored in etcd, but the copy: %s", s->err);
		*meta = xasprintf("stored at revision %lld", (long long)rev);
		r = 30;
	} else if (r == -2) {
		*meta = xstrdup(s->err);
		r = 59;
	} else {
		*meta = xasprintf("the shared store (etcd) cannot be reached: %s; "
		    "nothing was stored, try again later", r == 0 ? "a part went "
		    "missing while it was stored" : s->err);
		if (r == -1)
			s->online = 0;
		r = 40;
	}
	free(parts);
	free(ck);
	return r;
}

/* ------------------------------------------------------------------ seeds */

/*
 * An empty prefix: this instance's dataset (the copy, else the seed file)
 * becomes etcd's, with a "seed" version, in one transaction that first
 * checks there is no dataset: of two instances starting at once, one seeds.
 */
static void
seed(struct st *s)
{
	struct buf b = { 0 };
	char sha[65], (*parts)[65] = NULL, *mj, *dk = key(s, "m/dataset"), *vk;
	char *name = version_name("seed");
	int64_t rev = 0, cur = 0;
	size_t n = 0;
	int r = -1;

	if (sf_read_at(s->state_fd, STATE_DATASET, &b) == -1) {
		buf_free(&b);
		if (s->seed_fd == -1 || lseek(s->seed_fd, 0, SEEK_SET) != 0 ||
		    sf_read_fd(s->seed_fd, &b) == -1) {
			log_warn("store: etcd holds no dataset under %s and there is "
			    "none here to seed it with; the first upload will", s->pfx);
			buf_free(&b);
			free(dk);
			free(name);
			return;
		}
	}
	vk = xasprintf("%sm/versions/%s", s->pfx, name);
	sha256_hex(b.data, b.len, sha);
	if (put_parts(s, b.data, b.len, &parts, &n) == 0) {
		json_t *cmp, *puts;

		mj = manifest_json(b.len, sha, parts, n, NULL);
		cmp = json_pack("[o]", cmp_rev(dk, "CREATE", "EQUAL", 0));
		puts = json_pack("[o,o]", op_put(dk, mj, strlen(mj)),
		    op_put(vk, mj, strlen(mj)));
		free(mj);
		r = txn(s, cmp, parts, n, puts, vk, &rev, &cur);
	}
	if (r == 1)
		log_info("store: etcd seeded under %s with this instance's dataset "
		    "(revision %lld)", s->pfx, (long long)rev);
	else if (r == 0)
		log_info("store: another instance seeded etcd first");
	else
		log_warn("store: cannot seed etcd: %s", s->err);
	free(parts);
	free(name);
	free(vk);
	free(dk);
	buf_free(&b);
}

/*
 * Versions here that etcd does not hold (kept before this instance used
 * etcd): moved to versions-local/, so that the copy's versions/ is etcd's
 * and nothing is lost.
 */
static void
keep_local_versions(struct st *s, const struct manifest *v, size_t n)
{
	int vfd = sf_open_dir(s->state_fd, STATE_VERSIONS, 0), lfd = -1;
	char **loc;
	size_t n_loc = sf_list_versions(vfd, &loc), moved = 0;

	for (size_t i = 0; i < n_loc; i++) {
		char *k = xasprintf("m/versions/%s", loc[i]);
		size_t j;

		for (j = 0; j < n && strcmp(v[j].key, k) != 0; j++)
			;
		if (j == n && (lfd != -1 ||
		    (lfd = sf_open_dir(s->state_fd, STATE_LOCAL, 1)) != -1) &&
		    renameat(vfd, loc[i], lfd, loc[i]) == 0)
			moved++;
		free(k);
		free(loc[i]);
	}
	free(loc);
	if (moved > 0)
		log_warn("store: %zu version%s kept here before etcd moved to %s/"
		    STATE_LOCAL "/", moved, moved == 1 ? "" : "s", s->cfg->state_dir);
	if (lfd != -1)
		close(lfd);
	if (vfd != -1)
		close(vfd);
}

/* ------------------------------------------------------------------- sync */

static void tell_master(struct st *s, uint32_t type);
static void watch_cb(void *arg, int what, int64_t rev);

/* The copy made to match etcd; the master told when the site may change.
 * 0, or -1 (offline: retried). */
static int
sync_now(struct st *s, int notify)
{
	struct manifest *v;
	size_t n;
	int64_t rev;
	int changed = 0, have = 0, first = s->synced == 0;

	if (read_manifests(s, &v, &n, &rev) == -1)
		goto offline;
	for (size_t i = 0; i < n; i++)
		have |= strcmp(v[i].key, "m/dataset") == 0;
	if (!have) {
		manifests_free(v, n);
		seed(s);
		if (read_manifests(s, &v, &n, &rev) == -1)
			goto offline;
	}
	if (first)
		keep_local_versions(s, v, n);
	if (mirror_all(s, v, n, &changed) == -1) {
		manifests_free(v, n);
		log_warn("store: the copy in %s cannot be brought up to date: %s",
		    s->cfg->state_dir, s->err);
		goto offline;
	}
	manifests_free(v, n);
	if (!s->online)
		log_info("store: etcd reached (revision %lld)", (long long)rev);
	s->online = 1;
	s->synced = rev;
	if (changed && notify)
		tell_master(s, ST_CHANGED);
	return 0;
offline:
	if (s->online)
		log_warn("store: etcd cannot be reached: %s; serving the copy in %s",
		    s->err, s->cfg->state_dir);
	s->online = 0;
	return -1;
}

static void
start_watch(struct st *s)
{
	char *k = key(s, "m/"), *end = etcd_prefix_end(k);

	if (etcd_watch(s->etcd, k, end, s->synced + 1, watch_cb, s) == -1) {
		struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };

		evtimer_add(s->retry_ev, &tv);
	}
	free(k);
	free(end);
}

static void
sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct st *s = arg;
	struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };

	(void)fd;
	(void)what;
	if (sync_now(s, 1) == -1) {
		etcd_watch_stop(s->etcd);
		evtimer_add(s->retry_ev, &tv);
		return;
	}
	start_watch(s);
}

static void
watch_cb(void *arg, int what, int64_t rev)
{
	struct st *s = arg;

	(void)rev;
	/* Whatever the word, a fresh comparison (cheap: the manifests) says
	 * what changed; after a compaction or a lost stream, the watch starts
	 * again from it. */
	if (what == ETCD_W_CREATED)
		return;
	if (what != ETCD_W_EVENTS)
		etcd_watch_stop(s->etcd);
	event_active(s->sync_ev, 0, 0);
}

/* ------------------------------------------------------------- channels */

static void
tell_master(struct st *s, uint32_t type)
{
	struct ed_ctl c = { type, 0 };

	if (send(s->ctl, &c, sizeof(c), MSG_NOSIGNAL) == -1)
		log_warn("store: the master cannot be told: %s", strerror(errno));
}

static void chan_cb(evutil_socket_t fd, short what, void *arg);

static void
chan_close(struct st *s, size_t i)
{
	struct schan *c = &s->ch[i];

	event_free(c->ev);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	s->ch[i] = s->ch[--s->n_ch];
}

static void
answer(struct schan *c, uint32_t id, int status, const char *meta)
{
	struct chan_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.code = (uint32_t)status;
	m.part[0] = (const unsigned char *)meta;
	m.n[0] = strlen(meta);
	chan_pack(&c->out, &m);
}

/* One frame of an editing process's: a checked upload to store, or an
 * audit record. */
static void
chan_request(struct st *s, struct schan *c, const struct chan_msg *m)
{
	char *path = xasprintf("%.*s", (int)m->n[0], (const char *)m->part[0]);
	char *meta = NULL;
	int status;

	if (m->code == CHAN_AUDIT) {
		/* part 1: "STATUS SIZE META", as the editing process logged it. */
		char *line = xasprintf("%.*s", (int)m->n[1], (const char *)m->part[1]);
		int st = 0, off = 0;
		unsigned long size = 0;
		json_t *w, *op, *resp = NULL;

		if (sscanf(line, "%d %lu %n", &st, &size, &off) >= 2 && s->online) {
			w = audit_put(s, m->fp, path, size, st, line + off, NULL);
			op = json_incref(json_object_get(w, "request_put"));
			json_decref(w);
			etcd_call(s->etcd, "/v3/kv/put", op, &resp, s->err, sizeof(s->err));
			json_decref(resp);
		}
		free(line);
		free(path);
		return;
	}
	if (m->code != CHAN_STORE || strlen(path) != m->n[0] || path[0] != '/' ||
	    strstr(path, "/.") != NULL || strstr(path, "//") != NULL) {
		answer(c, m->id, 59, "Not an editable path");
		free(path);
		return;
	}
	if (strcmp(path, "/" STATE_DATASET) == 0) {
		char rev[24] = "";
		int64_t base = -1;

		if (m->n[1] > 0 && m->n[1] < sizeof(rev)) {
			memcpy(rev, m->part[1], m->n[1]);
			base = strtoll(rev, NULL, 10);
		}
		status = store_dataset(s, m->fp, base, m->part[2], m->n[2], &meta);
	} else {
		status = store_capsule(s, m->fp, path, m->part[2], m->n[2], &meta);
	}
	answer(c, m->id, status, meta);
	free(meta);
	free(path);
}

static void
chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct st *s = arg;
	struct chan_msg m;
	size_t i, used, max = (size_t)s->cfg->max_upload + 65536;
	int r, broken = 0;

	for (i = 0; i < s->n_ch && s->ch[i].fd != fd; i++)
		;
	if (i == s->n_ch)
		return;
	if (what & EV_READ) {
		broken = chan_fill(fd, &s->ch[i].in) == -1;
		while ((r = chan_unpack(s->ch[i].in.data, s->ch[i].in.len, max, &m,
		    &used)) == 1) {
			chan_request(s, &s->ch[i], &m);
			chan_consume(&s->ch[i].in, used);
		}
		if (r == -1) {
			log_error("store: a malformed frame from an editing process");
			broken = 1;
		}
	}
	/* Answers are small and the channel a socketpair: written now. */
	while (!broken && s->ch[i].out.len > 0) {
		int w = chan_flush(fd, &s->ch[i].out, &s->ch[i].off);

		if (w == -1)
			broken = 1;
		else if (w == 0)
			usleep(1000);
	}
	if (broken)
		chan_close(s, i);
}

/* The master's word: a channel to an editing process (SCM_RIGHTS). */
static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct st *s = arg;
	struct ed_ctl c;
	ssize_t n;
	int cfd = -1;

	(void)fd;
	(void)what;
	if ((n = ctl_recv(s->ctl, &c, &cfd)) <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			event_base_loopbreak(s->base);	/* the master is gone */
		return;
	}
	if (n != (ssize_t)sizeof(c) || c.type != ST_EDITOR || cfd == -1) {
		if (cfd != -1)
			close(cfd);
		return;
	}
	fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
	s->ch = xrealloc(s->ch, (s->n_ch + 1) * sizeof(*s->ch));
	memset(&s->ch[s->n_ch], 0, sizeof(*s->ch));
	s->ch[s->n_ch].fd = cfd;
	s->ch[s->n_ch].ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, chan_cb, s);
	event_add(s->ch[s->n_ch].ev, NULL);
	s->n_ch++;
}

/* ------------------------------------------------------------------- main */

static char *
read_pem(const char *file, const char *what)
{
	int fd = file != NULL ? open(file, O_RDONLY | O_CLOEXEC) : -1;
	struct buf b = { 0 };

	if (file == NULL)
		return NULL;
	if (fd == -1 || sf_read_fd(fd, &b) == -1) {
		log_error("store: %s (server.store.%s): %s", file, what, strerror(errno));
		if (fd != -1)
			close(fd);
		buf_free(&b);
		return NULL;
	}
	close(fd);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

int
store_main(const struct config *cfg, const struct privs *p, int ctl)
{
	struct st s;
	struct buf b = { 0 };
	char *ca, *cert, *key_pem, err[256];
	int rc = 1;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.ctl = ctl;
	s.pfx = cfg->store_prefix;
	s.seed_fd = -1;
	log_process("kilnet-store");
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	if ((s.state_fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_error("store: %s (server.state_dir): %s", cfg->state_dir,
		    strerror(errno));
		tell_master(&s, ST_READY);
		return 1;
	}
	if (cfg->dataset_file != NULL && strcmp(cfg->dataset_file, cfg->file) != 0)
		s.seed_fd = open(cfg->dataset_file, O_RDONLY | O_CLOEXEC);
	/* Read as root (the files may be root's), parsed after the drop. */
	ca = read_pem(cfg->store_ca, "ca");
	cert = read_pem(cfg->store_cert, "cert");
	key_pem = read_pem(cfg->store_key, "key");
	/* The endpoints resolved and the TLS context made before the drop:
	 * the chroot has no resolver or OpenSSL configuration. The PEM text is
	 * the operator's, as the config is. */
	s.base = event_base_new();
	if (s.base != NULL && (cfg->store_ca == NULL || ca != NULL) &&
	    (cfg->store_cert == NULL || cert != NULL) &&
	    (cfg->store_key == NULL || key_pem != NULL)) {
		s.etcd = etcd_new(s.base, cfg->store_etcd, cfg->n_store_etcd, ca,
		    cert, key_pem, err, sizeof(err));
		if (s.etcd == NULL)
			log_error("store: %s", err);
	}
	if (s.etcd != NULL && (privs_drop(p) == -1 ||
	    sandbox_enter_role(cfg, SANDBOX_STORE, &s.state_fd, 1) == -1)) {
		etcd_free(s.etcd);
		s.etcd = NULL;
	}
	if (key_pem != NULL) {
		OPENSSL_cleanse(key_pem, strlen(key_pem));
		free(key_pem);
	}
	free(ca);
	free(cert);
	if (s.etcd == NULL) {
		tell_master(&s, ST_READY);
		goto out;
	}
	/* The copy as it is: what etcd is compared with. */
	if (sf_read_at(s.state_fd, STATE_DATASET, &b) == 0)
		sha256_hex(b.data, b.len, s.ds_sha);
	buf_free(&b);
	if (sf_read_at(s.state_fd, STATE_REVISION, &b) == 0)
		s.ds_rev = strtoll((const char *)b.data, NULL, 10);
	buf_free(&b);
	s.online = 1;	/* so that a first failure is logged */
	s.ctl_ev = event_new(s.base, ctl, EV_READ | EV_PERSIST, ctl_cb, &s);
	s.sync_ev = event_new(s.base, -1, 0, sync_cb, &s);
	s.retry_ev = evtimer_new(s.base, sync_cb, &s);
	event_add(s.ctl_ev, NULL);
	/* The first read before the master builds its first site (it waits
	 * for ST_READY); a store process started again after a crash may find
	 * changes it missed: "changed" then, and the master reloads. */
	if (sync_now(&s, 1) == 0) {
		start_watch(&s);
	} else {
		struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };

		evtimer_add(s.retry_ev, &tv);
	}
	tell_master(&s, ST_READY);
	event_base_dispatch(s.base);
	rc = 0;
out:
	while (s.n_ch > 0)
		chan_close(&s, 0);
	free(s.ch);
	for (size_t i = 0; i < s.n_cap; i++)
		free(s.cap[i].path);
	free(s.cap);
	etcd_free(s.etcd);
	if (s.ctl_ev != NULL)
		event_free(s.ctl_ev);
	if (s.sync_ev != NULL)
		event_free(s.sync_ev);
	if (s.retry_ev != NULL)
		event_free(s.retry_ev);
	if (s.base != NULL)
		event_base_free(s.base);
	close(s.state_fd);
	return rc;
}
