/*
 * render_atom.c: the dataset's dates as an Atom 1.0 feed (RFC 4287), served at
 * /atom.xml over Gemini: one entry for the network's home page and one per
 * member council, each with the date it last changed, newest first, as many
 * as fit RENDER_FEED_MAX bytes (a reader wants what changed, and polls often).
 * Rendered once at load by site.c, like the other pages; nothing here depends
 * on the time of rendering, so two renders of one dataset are byte-identical.
 */
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

#define FEED_PATH    "/atom.xml"
#define MEMBERS_PATH "/members/"

const char *
render_atom_date(const struct member *m)
{
	return m->updated[0] != '\0' ? m->updated : m->joined;
}

/* ISO 8601 dates of one form sort as strings. */
const char *
render_atom_latest(const struct network *n)
{
	const char *d = n->updated;

	for (size_t i = 0; i < n->n_members; i++) {
		const struct member *m = &n->members[i];

		if (strcmp(m->joined, d) > 0)
			d = m->joined;
		if (strcmp(m->updated, d) > 0)
			d = m->updated;
	}
	return d;
}

/*
 * Text for XML character data and double-quoted attributes: the five markup
 * characters as references; control characters (the dataset refuses them, but
 * XML 1.0 cannot carry them at all) and the non-characters U+FFFE and U+FFFF
 * (XML 1.0 section 2.2) are left out.
 */
static void
xml_text(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			buf_adds(out, "&amp;");
			continue;
		case '<':
			buf_adds(out, "&lt;");
			continue;
		case '>':
			buf_adds(out, "&gt;");
			continue;
		case '"':
			buf_adds(out, "&quot;");
			continue;
		case '\'':
			buf_adds(out, "&apos;");
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
			p += 2;
			continue;
		}
		buf_add(out, p, 1);
	}
}

/* "gemini://host[:port]" with an IPv6 literal in brackets. */
static void
site_url(struct buf *out, const struct render_opts *o)
{
	buf_adds(out, "gemini://");
	if (strchr(o->hostname, ':') != NULL)
		buf_printf(out, "[%s]", o->hostname);
	else
		buf_adds(out, o->hostname);
	if (o->gemini_port > 0 && o->gemini_port != 1965)
		buf_printf(out, ":%d", o->gemini_port);
}

static int
sentence_end(const char *p)
{
	static const char *const closers[] = { "”", "’", "\"", "'", ")", NULL };
	size_t k;

	if (*p != '.' && *p != '?' && *p != '!')
		return 0;
	p++;
	for (;;) {
		for (k = 0; closers[k] != NULL; k++)
			if (strncmp(p, closers[k], strlen(closers[k])) == 0)
				break;
		if (closers[k] == NULL)
			break;
		p += strlen(closers[k]);
	}
	return *p == ' ' || *p == '\0';
}

/*
 * The first sentence of a paragraph: up to the first . ? or ! (with any closing
 * quotes) before a space. A statement opens with “ and closes it only at its
 * end, so a sentence cut from it loses the unmatched opening mark.
 */
static void
first_sentence(struct buf *out, const char *para)
{
	static const char open[] = "“", close[] = "”";
	const char *p = para, *end;
	struct buf b = { 0 };

	for (end = p; *end != '\0' && !sentence_end(end); end++)
		;
	if (*end != '\0') {
		end++;
		while (*end != '\0' && *end != ' ')
			end++;
	}
	buf_add(&b, p, (size_t)(end - p));
	buf_add(&b, "", 1);
	p = (const char *)b.data;
	if (strncmp(p, open, strlen(open)) == 0 && strstr(p, close) == NULL)
		p += strlen(open);
	xml_text(out, p);
	buf_free(&b);
}

static void
entry(struct buf *out, const struct render_opts *o, const char *path,
    const char *title, const char *date, const char *summary)
{
	buf_adds(out, "<entry>\n<id>");
	site_url(out, o);
	xml_text(out, path);
	buf_adds(out, "</id>\n<title>");
	xml_text(out, title);
	buf_printf(out, "</title>\n<updated>%sT00:00:00Z</updated>\n", date);
	buf_adds(out, "<link rel=\"alternate\" type=\"text/gemini\" href=\"");
	site_url(out, o);
	xml_text(out, path);
	buf_adds(out, "\"/>\n");
	if (summary != NULL) {
		buf_adds(out, "<summary>");
		first_sentence(out, summary);
		buf_adds(out, "</summary>\n");
	}
	buf_adds(out, "</entry>\n");
}

/* An entry before it is written: what it links to, and its date. */
struct dated {
	const struct member *m;     /* NULL: the network's home page */
	const char          *date;
	size_t               seq;   /* the dataset's order, among equal dates */
};

/* Newest first; on the same day, the home page, then the dataset's order. */
static int
cmp_dated(const void *a, const void *b)
{
	const struct dated *x = a, *y = b;
	int c = strcmp(y->date, x->date);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
dated_entry(struct buf *out, const struct network *n,
    const struct render_opts *o, const struct dated *d)
{
	char *path;

	if (d->m == NULL) {
		entry(out, o, "/", n->name != NULL ? n->name : "", d->date,
		    n->introduction.n > 0 ? n->introduction.v[0] : NULL);
		return;
	}
	path = xasprintf(MEMBERS_PATH "%s.gmi", d->m->id);
	entry(out, o, path, d->m->name, d->date, d->m->statement.n > 0 ?
	    d->m->statement.v[0] : NULL);
	free(path);
}

int
render_atom_feed(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	static const char end[] = "</feed>\n";
	const size_t budget = RENDER_FEED_MAX - RENDER_HEADER_ROOM;
	const char *latest = render_atom_latest(n);
	const char *name = n->name != NULL ? n->name : "";
	const char *fallback = n->updated[0] != '\0' ? n->updated : latest;
	struct dated *v;
	struct buf e = { 0 };
	size_t start = out->len;

	if (*latest == '\0')
		return -1;
	buf_adds(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n<id>");
	site_url(out, o);
	buf_adds(out, FEED_PATH "</id>\n<title>");
	xml_text(out, name);
	buf_printf(out, "</title>\n<updated>%sT00:00:00Z</updated>\n", latest);
	/* RFC 4287 4.1.1: a feed names an author unless every entry does. */
	buf_adds(out, "<author><name>");
	xml_text(out, n->convener != NULL ? n->convener : name);
	buf_adds(out, "</name></author>\n<link rel=\"self\" "
	    "type=\"application/atom+xml\" href=\"");
	site_url(out, o);
	buf_adds(out, FEED_PATH "\"/>\n<link rel=\"alternate\" "
	    "type=\"text/gemini\" href=\"");
	site_url(out, o);
	buf_adds(out, "/\"/>\n<generator version=\"" KILNET_VERSION "\">"
	    KILNET_NAME "</generator>\n");

	/* Undated members take the network's date (or the latest one). */
	v = xcalloc(n->n_members + 1, sizeof(*v));
	v[0].date = fallback;
	for (size_t i = 0; i < n->n_members; i++) {
		v[i + 1].m = &n->members[i];
		v[i + 1].date = *render_atom_date(&n->members[i]) != '\0' ?
		    render_atom_date(&n->members[i]) : fallback;
		v[i + 1].seq = i + 1;
	}
	qsort(v, n->n_members + 1, sizeof(*v), cmp_dated);
	for (size_t i = 0; i <= n->n_members; i++) {
		e.len = 0;
		dated_entry(&e, n, o, &v[i]);
		if (out->len - start + e.len + strlen(end) > budget)
			break;
		buf_add(out, e.data, e.len);
	}
	buf_adds(out, end);
	buf_free(&e);
	free(v);
	return 0;
}
