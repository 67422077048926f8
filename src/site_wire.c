/*
 * site_wire.c: the built site as bytes, and back. The process that builds the
 * site (unprivileged: it parses the dataset and the capsule files) writes it;
 * the master reads it with no parser but this one's length-prefixed records,
 * and takes it only whole and well-formed (kilnet.h, site_wire_read).
 *
 * The format, version 2. Integers are little-endian and fixed-width: u8, u32,
 * u64. A str is a u32 length and that many bytes, none of them NUL (a C
 * string without its NUL; the length UINT32_MAX is never a string's: the
 * writer gives it to what it cannot carry, so that the read fails); an opt is
 * a u8, 1 when a str follows, 0 for NULL.
 *
 *   site     = "KILNSITE" u32:version
 *              opt:hostname opt:network_name opt:caps opt:edit_host
 *              u32:gemini_port u32:gopher_port    ro; ro.hostname is hostname
 *              u32:spartan_port u32:nex_port      (0: not served)
 *              u64:n str...                       hosts
 *              u64:n u32...                       ports
 *              u64:n str...                       the MIME types, each once
 *              u64:n resource...                  the Gemini table, by key
 *              u64:n resource...                  the Gopher table, by key
 *              u64:n resource...                  the Spartan table, by key
 *              u64:n resource...                  the Nex table, by key
 *              u8:has_index [index]               search.c: search_wire_*
 *   resource = str:key u32:mime (0: NULL, i: the i-th MIME type)
 *              u8:gtype u8:flags (1: generated, 2: search)
 *              u64:len, len bytes, u64:body_off
 *
 * Nothing follows the site. Besides the bytes, the reader checks what the
 * front ends rely on: keys strictly in order (a lookup is a bsearch), the
 * body within its page, ports that are ports. Resource data and MIME types
 * are copied into the new site's own memory (site.mimes holds the MIME types,
 * which a built site keeps as static strings).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

#define WIRE_MAGIC     "KILNSITE"
#define WIRE_MAGIC_LEN 8
#define WIRE_VERSION   2
/* The fewest bytes a record takes: a bound on a count, before anything is
 * allocated for it. */
#define WIRE_MIN_STR   4
#define WIRE_MIN_RES   (4 + 4 + 1 + 1 + 8 + 8)
#define WIRE_MAX_PORT  65535
#define RES_GENERATED  1
#define RES_SEARCH     2

/*
 * A field added to struct site or struct resource needs its place on the wire,
 * or a site that crossed it would come without: these stop the build until the
 * format (and then these sizes, LP64) is brought up to date.
 */
#if UINTPTR_MAX == UINT64_MAX && SIZE_MAX == UINT64_MAX
_Static_assert(sizeof(struct site) == 168,
    "struct site changed: update site_wire.c's format");
_Static_assert(sizeof(struct resource) == 56,
    "struct resource changed: update site_wire.c's format");
#endif

static void
put_opt(struct buf *out, const char *s)
{
	wire_put_u8(out, s != NULL);
	if (s != NULL)
		wire_put_str(out, s);
}

/* The MIME types of a site, each once, in the order the tables use them. */
struct mimes {
	const char **v;
	size_t       n;
};

/* Its number on the wire: 0 for NULL, else its place from 1 (added if new). */
static uint32_t
mime_number(struct mimes *m, const char *mime)
{
	size_t i;

	if (mime == NULL)
		return 0;
	/* A handful of types: by address first (the same static string), then
	 * by value. */
	for (i = 0; i < m->n && m->v[i] != mime; i++)
		;
	if (i == m->n)
		for (i = 0; i < m->n && strcmp(m->v[i], mime) != 0; i++)
			;
	if (i == m->n) {
		m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
		m->v[m->n++] = mime;
	}
	return (uint32_t)(i + 1);
}

static void
put_table(struct buf *out, const struct resource *v, size_t n,
    const uint32_t *mime)
{
	wire_put_u64(out, n);
	for (size_t i = 0; i < n; i++) {
		const struct resource *r = &v[i];

		wire_put_str(out, r->key);
		wire_put_u32(out, mime[i]);
		wire_put_u8(out, (uint8_t)r->gtype);
		wire_put_u8(out, (uint8_t)((r->generated ? RES_GENERATED : 0) |
		    (r->search ? RES_SEARCH : 0)));
		wire_put_u64(out, r->len);
		buf_add(out, r->data, r->len);
		wire_put_u64(out, r->body_off);
	}
}

void
site_wire_write(const struct site *s, struct buf *out)
{
	struct mimes m = { 0 };
	uint32_t *gem_mime = xcalloc(s->n_gemini, sizeof(*gem_mime));
	uint32_t *goph_mime = xcalloc(s->n_gopher, sizeof(*goph_mime));
	uint32_t *spa_mime = xcalloc(s->n_spartan, sizeof(*spa_mime));
	uint32_t *nex_mime = xcalloc(s->n_nex, sizeof(*nex_mime));
	size_t size = 0;

	for (size_t i = 0; i < s->n_gemini; i++) {
		gem_mime[i] = mime_number(&m, s->gemini[i].mime);
		size += WIRE_MIN_RES + strlen(s->gemini[i].key) + s->gemini[i].len;
	}
	for (size_t i = 0; i < s->n_gopher; i++) {
		goph_mime[i] = mime_number(&m, s->gopher[i].mime);
		size += WIRE_MIN_RES + strlen(s->gopher[i].key) + s->gopher[i].len;
	}
	for (size_t i = 0; i < s->n_spartan; i++) {
		spa_mime[i] = mime_number(&m, s->spartan[i].mime);
		size += WIRE_MIN_RES + strlen(s->spartan[i].key) + s->spartan[i].len;
	}
	for (size_t i = 0; i < s->n_nex; i++) {
		nex_mime[i] = mime_number(&m, s->nex[i].mime);
		size += WIRE_MIN_RES + strlen(s->nex[i].key) + s->nex[i].len;
	}
	/* The tables at once (the rest is small, or reserved by search.c): a
	 * buffer that doubled its way to the site's 20 MB at 10,000 members
	 * would copy it about twice over. */
	wire_reserve(out, size + 4096);

	buf_add(out, WIRE_MAGIC, WIRE_MAGIC_LEN);
	wire_put_u32(out, WIRE_VERSION);
	put_opt(out, s->hostname);
	put_opt(out, s->network_name);
	put_opt(out, s->caps);
	put_opt(out, s->edit_host);
	/* Negative ports become ones no read accepts. */
	wire_put_u32(out, (uint32_t)s->ro.gemini_port);
	wire_put_u32(out, (uint32_t)s->ro.gopher_port);
	wire_put_u32(out, (uint32_t)s->ro.spartan_port);
	wire_put_u32(out, (uint32_t)s->ro.nex_port);
	wire_put_u64(out, s->n_hosts);
	for (size_t i = 0; i < s->n_hosts; i++)
		wire_put_str(out, s->hosts[i]);
	wire_put_u64(out, s->n_ports);
	for (size_t i = 0; i < s->n_ports; i++)
		wire_put_u32(out, (uint32_t)s->ports[i]);
	wire_put_u64(out, m.n);
	for (size_t i = 0; i < m.n; i++)
		wire_put_str(out, m.v[i]);
	put_table(out, s->gemini, s->n_gemini, gem_mime);
	put_table(out, s->gopher, s->n_gopher, goph_mime);
	put_table(out, s->spartan, s->n_spartan, spa_mime);
	put_table(out, s->nex, s->n_nex, nex_mime);
	wire_put_u8(out, s->search != NULL);
	if (s->search != NULL)
		search_wire_write(s->search, s->gemini, s->n_gemini, out);
	free(m.v);
	free(gem_mime);
	free(goph_mime);
	free(spa_mime);
	free(nex_mime);
}

/* ------------------------------------------------------------------ read */

static char *
get_opt(struct wire *w)
{
	uint8_t has = wire_u8(w);

	if (has > 1)
		return wire_fail(w, "an optional string marked neither 0 nor 1");
	return has ? wire_str(w) : NULL;
}

static int
get_port(struct wire *w)
{
	uint32_t port = wire_u32(w);

	if (port > WIRE_MAX_PORT)
		wire_fail(w, "a port above 65535");
	return w->err == NULL ? (int)port : 0;
}

/* The MIME types into one block, s->mimes; mime[i] the (i+1)-th. */
static const char **
get_mimes(struct wire *w, struct site *s, size_t *n)
{
	size_t count = wire_count(w, wire_u64(w), WIRE_MIN_STR), total = 0, len;
	const char **at = xcalloc(count, sizeof(*at));
	size_t *lens = xcalloc(count, sizeof(*lens));
	char *p;

	*n = 0;
	for (size_t i = 0; i < count; i++) {
		if ((at[i] = wire_str_at(w, &len)) == NULL)
			break;
		lens[i] = len;
		total += len + 1;  /* at most the bytes read: no overflow */
	}
	if (w->err != NULL || count == 0) {
		free(lens);
		return at;
	}
	p = s->mimes = xmalloc(total);
	for (size_t i = 0; i < count; i++) {
		memcpy(p, at[i], lens[i]);
		p[lens[i]] = '\0';
		at[i] = p;
		p += lens[i] + 1;
	}
	free(lens);
	*n = count;
	return at;
}

/* A table into *v, *n; its resources counted in *n as soon as they hold
 * anything, so that site_free frees what a failure leaves. */
static void
get_table(struct wire *w, struct resource **v, size_t *n,
    const char **mimes, size_t n_mimes)
{
	size_t count = wire_count(w, wire_u64(w), WIRE_MIN_RES);

	*v = xcalloc(count, sizeof(**v));
	for (size_t i = 0; i < count && w->err == NULL; i++) {
		struct resource *r = &(*v)[i];
		const unsigned char *data;
		uint32_t mime;
		uint64_t len, off;
		uint8_t flags;

		*n = i + 1;
		if ((r->key = wire_str(w)) == NULL)
			return;
		if (i > 0 && strcmp((*v)[i - 1].key, r->key) >= 0) {
			wire_fail(w, "keys out of order");
			return;
		}
		mime = wire_u32(w);
		r->gtype = (char)wire_u8(w);
		flags = wire_u8(w);
		len = wire_u64(w);
		if ((data = wire_take(w, len)) == NULL)
			return;
		off = wire_u64(w);
		if (w->err != NULL)
			return;
		if (mime > n_mimes) {
			wire_fail(w, "a MIME type not in the list");
			return;
		}
		if ((flags & ~(RES_GENERATED | RES_SEARCH)) != 0) {
			wire_fail(w, "unknown resource flags");
			return;
		}
		if (off > len) {
			wire_fail(w, "a body that starts past its page");
			return;
		}
		r->mime = mime > 0 ? mimes[mime - 1] : NULL;
		r->generated = (flags & RES_GENERATED) != 0;
		r->search = (flags & RES_SEARCH) != 0;
		/* NUL-terminated, as the built pages are. */
		r->data = xmalloc((size_t)len + 1);
		memcpy(r->data, data, (size_t)len);
		r->data[len] = '\0';
		r->len = (size_t)len;
		r->body_off = (size_t)off;
	}
}

struct site *
site_wire_read(const unsigned char *p, size_t n, char *err, size_t errlen)
{
	struct wire w = { .p = p, .n = n };
	struct site *s = xcalloc(1, sizeof(*s));
	const unsigned char *magic;
	const char **mimes = NULL;
	size_t n_mimes = 0, count;
	uint8_t has_index;

	magic = wire_take(&w, WIRE_MAGIC_LEN);
	if (magic == NULL || memcmp(magic, WIRE_MAGIC, WIRE_MAGIC_LEN) != 0) {
		wire_fail(&w, "not a kilnet site");
		goto fail;
	}
	if (wire_u32(&w) != WIRE_VERSION) {
		wire_fail(&w, "a site of another version");
		goto fail;
	}
	s->hostname = get_opt(&w);
	if (w.err == NULL && s->hostname == NULL)
		wire_fail(&w, "no hostname");
	s->network_name = get_opt(&w);
	s->caps = get_opt(&w);
	s->edit_host = get_opt(&w);
	s->ro.hostname = s->hostname;
	s->ro.gemini_port = get_port(&w);
	s->ro.gopher_port = get_port(&w);
	s->ro.spartan_port = get_port(&w);
	s->ro.nex_port = get_port(&w);

	count = wire_count(&w, wire_u64(&w), WIRE_MIN_STR);
	s->hosts = xcalloc(count, sizeof(*s->hosts));
	for (size_t i = 0; i < count && w.err == NULL; i++)
		if ((s->hosts[i] = wire_str(&w)) != NULL)
			s->n_hosts++;
	count = wire_count(&w, wire_u64(&w), 4);
	s->ports = xcalloc(count, sizeof(*s->ports));
	for (size_t i = 0; i < count && w.err == NULL; i++)
		s->ports[s->n_ports++] = get_port(&w);

	mimes = get_mimes(&w, s, &n_mimes);
	get_table(&w, &s->gemini, &s->n_gemini, mimes, n_mimes);
	get_table(&w, &s->gopher, &s->n_gopher, mimes, n_mimes);
	get_table(&w, &s->spartan, &s->n_spartan, mimes, n_mimes);
	get_table(&w, &s->nex, &s->n_nex, mimes, n_mimes);
	if ((has_index = wire_u8(&w)) > 1)
		wire_fail(&w, "an index marked neither 0 nor 1");
	if (w.err == NULL && has_index)
		s->search = search_wire_read(&w, s->gemini, s->n_gemini);
	if (w.err == NULL && w.off != w.n)
		wire_fail(&w, "bytes after the site");
	if (w.err != NULL)
		goto fail;
	free(mimes);
	return s;
fail:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s (byte %zu of %zu)", w.err, w.off, w.n);
	free(mimes);
	site_free(s);
	return NULL;
}
