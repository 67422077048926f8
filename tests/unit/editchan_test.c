/*
 * editchan_test.c: editchan.c's frames between a worker and the master: what
 * chan_pack writes chan_unpack reads back whole; a frame cut short asks for
 * more; a frame that is not one, or holds a part over the limit, is refused;
 * and a frame never takes bytes past its own end.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static void
fill(struct chan_msg *m, uint32_t id, uint32_t code, const char *path,
    const char *mime, const void *body, size_t blen)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->code = code;
	memset(m->fp, 'a', 64);
	m->fp[0] = '0';
	m->fp[63] = 'f';
	m->part[0] = (const unsigned char *)path;
	m->n[0] = strlen(path);
	m->part[1] = (const unsigned char *)mime;
	m->n[1] = strlen(mime);
	m->part[2] = body;
	m->n[2] = blen;
}

/* "id code fp path|mime|body" of a frame read back. */
static char *
show(const struct chan_msg *m)
{
	return xasprintf("%u %u %s %.*s|%.*s|%.*s", m->id, m->code, m->fp,
	    (int)m->n[0], (const char *)m->part[0], (int)m->n[1],
	    (const char *)m->part[1], (int)m->n[2], (const char *)m->part[2]);
}

static void
roundtrip_cases(void)
{
	static const struct {
		const char *name;
		uint32_t    id, code;
		const char *path, *mime, *body;
	} t[] = {
		{ "an upload", 7, CHAN_STORE, "/network.conf", "text/plain", "network = {};" },
		{ "a read", 8, CHAN_READ, "/versions/", "", "" },
		{ "a reply", 4294967295u, 30, "gemini://localhost/", "", "" },
		{ "binary body", 1, CHAN_STORE, "/favicon.txt", "", "\x01\x02\x80\xff" },
	};
	const char *fp = "0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaf";

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct chan_msg m, back;
		struct buf b = { 0 };
		size_t used = 0;
		char *want, *got, *name;
		int k;

		fill(&m, t[i].id, t[i].code, t[i].path, t[i].mime, t[i].body,
		    strlen(t[i].body));
		chan_pack(&b, &m);
		want = xasprintf("%u %u %s %s|%s|%s", t[i].id, t[i].code, fp,
		    t[i].path, t[i].mime, t[i].body);
		k = chan_unpack(b.data, b.len, 1024, &back, &used);
		got = k == 1 && used == b.len ? show(&back) :
		    xasprintf("chan_unpack %d, used %zu of %zu", k, used, b.len);
		unit_str(t[i].name, got, want);
		free(got);
		/* Every shorter prefix is a frame still coming. */
		k = 0;
		for (size_t n = 0; n < b.len && k == 0; n++)
			k = chan_unpack(b.data, n, 1024, &back, &used);
		name = xasprintf("%s, cut short", t[i].name);
		unit_long(name, k, 0);
		free(name);
		free(want);
		buf_free(&b);
	}
}

static void
edge_cases(void)
{
	struct chan_msg m, back;
	struct buf b = { 0 }, two = { 0 };
	size_t used = 0, first;
	char *got;
	unsigned char body[100];

	memset(body, 'x', sizeof(body));
	fill(&m, 1, CHAN_STORE, "/a", "", body, sizeof(body));
	chan_pack(&b, &m);
	/* max bounds the parts together (path 2 bytes, body 100). */
	unit_long("parts of 102 bytes, limit 102", chan_unpack(b.data, b.len, 102,
	    &back, &used), 1);
	unit_long("parts of 102 bytes, limit 101", chan_unpack(b.data, b.len, 101,
	    &back, &used), -1);
	unit_long("a part of 100 bytes, limit 99", chan_unpack(b.data, b.len, 99,
	    &back, &used), -1);
	/* The limit holds before the body is there: the header is enough. */
	unit_long("over the limit, header only", chan_unpack(b.data, b.len - 100, 99,
	    &back, &used), -1);
	b.data[0] ^= 0xff;
	unit_long("not a frame (magic)", chan_unpack(b.data, b.len, 1024, &back,
	    &used), -1);
	b.data[0] ^= 0xff;

	/* Two frames back to back: the first, and no byte of the second. */
	first = b.len;
	buf_add(&two, b.data, b.len);
	fill(&m, 2, CHAN_READ, "/network.conf", "", "", 0);
	chan_pack(&two, &m);
	used = 0;
	unit_long("first of two frames", chan_unpack(two.data, two.len, 1024, &back,
	    &used) == 1 ? (long)used : -1, (long)first);
	chan_consume(&two, used);
	got = chan_unpack(two.data, two.len, 1024, &back, &used) == 1 &&
	    used == two.len ? show(&back) : xstrdup("(none)");
	unit_str("second of two frames", got,
	    "2 2 0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaf "
	    "/network.conf||");
	free(got);
	unit_long("nothing at all", chan_unpack(two.data, 0, 1024, &back, &used), 0);
	buf_free(&b);
	buf_free(&two);
}

void
unit_editchan(void)
{
	roundtrip_cases();
	edge_cases();
}
