/*
 * search.c: the member search index, built once at load, and the search
 * itself, run per request. Each member's statement sentences, spokesperson,
 * role and name are fields; a query matches a field when the field's text,
 * casefolded with NFKC, contains the query casefolded the same way.
 *
 * The index keeps little of its own. A field is a span of the member's
 * Gemini page, which holds the same bytes (the statement as quote lines, the
 * name, the "said:" line) for as long as the site is served; and most text
 * (ASCII, curly quotes, £, dashes) casefolds to its ASCII lower case, so it
 * is matched in place, one byte lowered at a time. Only a field whose folded
 * form differs (É, ß, ﬁ, NBSP...) keeps a folded copy. At 10,000 members
 * that keeps a worker's search memory to its field table, and skips
 * libunistring's folding for nearly every field at load.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "kilnet.h"

/* Field.folded when the text folds to its own ASCII lower case. */
#define NO_FOLD UINT32_MAX

struct field {
	const char *text;     /* in the member's page, not NUL-terminated */
	uint32_t    len;
	uint32_t    folded;   /* offset of a uint32_t length and the folded bytes
			       * in search_index.folded, or NO_FOLD */
};

struct entry {
	uint32_t    names;    /* "ID\0NAME\0" at this offset in names */
	uint32_t    first;    /* its fields: fields[first .. first + n - 1] */
	uint32_t    n;
};

struct search_index {
	struct entry  *entries;
	size_t         n;
	struct field  *fields;
	size_t         n_fields, cap_fields;
	struct buf     folded;
	struct buf     names;
	char         **copies;   /* text not found in its page (the pages hold
				  * it all: none, in practice) */
	size_t         n_copies;
	/* While building: the member's page, and where its statement was
	 * last found in it. */
	const char    *page, *cursor;
	size_t         page_len;
};

/* ASCII lower case, every other byte as it is (UTF-8 sequences untouched). */
static inline unsigned char
lower(unsigned char c)
{
	return (unsigned char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/*
 * No language-specific folding: the content is English whatever the server's
 * locale, and the same query must give the same answer on every machine (a
 * Turkish locale would fold "I" differently).
 */
static uint8_t *
fold(const char *s, size_t n, size_t *outlen)
{
	return u8_casefold((const uint8_t *)s, n, NULL, UNINORM_NFKC, NULL, outlen);
}

/*
 * Characters that casefolding and NFKC leave as they are, that have no case,
 * and that never combine with a neighbour (combining class 0, no canonical
 * composition): a text of these and ASCII folds to its ASCII lower case.
 * They are the punctuation the dataset is written with.
 */
static int
fold_invariant(ucs4_t c)
{
	switch (c) {
	case 0x00A3:	/* £ */
	case 0x00AB:	/* « */
	case 0x00BB:	/* » */
	case 0x2013:	/* – */
	case 0x2014:	/* — */
	case 0x2018:	/* ‘ */
	case 0x2019:	/* ’ */
	case 0x201C:	/* “ */
	case 0x201D:	/* ” */
	case 0x20AC:	/* € */
		return 1;
	}
	return 0;
}

/* 1 when s folds to its ASCII lower case without asking libunistring. */
static int
folds_to_lower(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	ucs4_t c;
	int l;

	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((l = u8_mbtoucr(&c, p, (size_t)(end - p))) < 0 ||
		    !fold_invariant(c))
			return 0;
		p += l;
	}
	return 1;
}

/* The folded form of s, kept only when it is not s in ASCII lower case. */
static uint32_t
fold_field(struct search_index *s, const char *text, size_t n)
{
	uint8_t *f;
	size_t flen, i;
	uint32_t off, len32;

	if (folds_to_lower(text, n))
		return NO_FOLD;
	/* Not valid UTF-8 (the loader does not let it through): as it is. */
	if ((f = fold(text, n, &flen)) == NULL)
		return NO_FOLD;
	if (flen == n) {
		for (i = 0; i < n && f[i] == lower((unsigned char)text[i]); i++)
			;
		if (i == n) {
			free(f);
			return NO_FOLD;
		}
	}
	off = (uint32_t)s->folded.len;
	len32 = (uint32_t)flen;
	buf_add(&s->folded, &len32, sizeof(len32));
	buf_add(&s->folded, f, flen);
	free(f);
	return off;
}

/*
 * text in hay, or NULL. The text is where it is looked for or close after
 * it (the next paragraph, the name on the heading): a scan for its first
 * byte, then one compare, beats memmem's set-up for a long needle.
 */
static const char *
find(const char *hay, size_t hlen, const char *text, size_t n)
{
	const char *end = hay + hlen, *p = hay;

	while (n > 0 && (size_t)(end - p) >= n &&
	    (p = memchr(p, text[0], (size_t)(end - p) - n + 1)) != NULL) {
		if (memcmp(p, text, n) == 0)
			return p;
		p++;
	}
	return NULL;
}

/* The same bytes as text, in the member's page (from `from` on, when not
 * NULL, then anywhere in it) if they are there, else a copy of them. */
static const char *
in_page(struct search_index *s, const char *from, const char *text, size_t n,
    int *found)
{
	const char *at;
	char *c;

	*found = 1;
	if (from != NULL && (at = find(from,
	    s->page_len - (size_t)(from - s->page), text, n)) != NULL)
		return at;
	if (s->page != NULL && (at = find(s->page, s->page_len, text, n)) != NULL)
		return at;
	*found = 0;
	s->copies = xrealloc(s->copies, (s->n_copies + 1) * sizeof(*s->copies));
	c = s->copies[s->n_copies++] = xmalloc(n + 1);
	memcpy(c, text, n);
	c[n] = '\0';
	return c;
}

/* text: n bytes of the member's page (or a copy). */
static void
add_field(struct search_index *s, struct entry *e, const char *text, size_t n)
{
	struct field *f;

	while (n > 0 && *text == ' ')
		text++, n--;
	while (n > 0 && text[n - 1] == ' ')
		n--;
	if (n == 0)
		return;
	if (s->n_fields == s->cap_fields) {
		s->cap_fields = s->cap_fields ? s->cap_fields * 2 : 1024;
		s->fields = xrealloc(s->fields, s->cap_fields * sizeof(*s->fields));
	}
	f = &s->fields[s->n_fields++];
	f->text = text;
	f->len = (uint32_t)n;
	f->folded = fold_field(s, text, n);
	e->n++;
}

/* Closing marks that may follow a sentence's final punctuation. */
static size_t
closing_len(const char *p)
{
	static const char *const closers[] = { "\"", "'", ")", "”", "’", "»" };

	for (size_t i = 0; i < sizeof(closers) / sizeof(closers[0]); i++)
		if (strncmp(p, closers[i], strlen(closers[i])) == 0)
			return strlen(closers[i]);
	return 0;
}

/* A sentence ends at ".", "!" or "?" (and any closing quotes) before a space.
 * para is the dataset's; the fields are spans of its copy in the page. */
static void
add_sentences(struct search_index *s, struct entry *e, const char *para)
{
	const char *start = para, *p = para;
	size_t c, len = strlen(para);
	int found;
	const char *at = in_page(s, s->cursor, para, len, &found);

	if (found)
		s->cursor = at + len;  /* the next paragraph comes after it */
	while (*p != '\0') {
		if (*p == '.' || *p == '!' || *p == '?') {
			const char *q = p + 1;

			while ((c = closing_len(q)) > 0)
				q += c;
			if (*q == ' ') {
				add_field(s, e, at + (start - para), (size_t)(q - start));
				start = p = q + 1;
				continue;
			}
		}
		p++;
	}
	add_field(s, e, at + (start - para), (size_t)(p - start));
}

/* A field that is a whole string of the dataset. */
static void
add_text(struct search_index *s, struct entry *e, const char *text)
{
	size_t n = strlen(text);
	int found;

	add_field(s, e, in_page(s, NULL, text, n, &found), n);
}

struct search_index *
search_build(const struct network *n,
    const char *(*page)(void *arg, const struct member *, size_t *len),
    void *arg)
{
	struct search_index *s = xcalloc(1, sizeof(*s));

	s->entries = xcalloc(n->n_members, sizeof(*s->entries));
	s->n = n->n_members;
	for (size_t i = 0; i < n->n_members; i++) {
		const struct member *m = &n->members[i];
		struct entry *e = &s->entries[i];

		e->names = (uint32_t)s->names.len;
		buf_add(&s->names, m->id, strlen(m->id) + 1);
		buf_add(&s->names, m->name, strlen(m->name) + 1);
		e->first = (uint32_t)s->n_fields;
		s->page = s->cursor = page(arg, m, &s->page_len);
		/*
		 * Statement sentences first: a result shows the first field that
		 * matches, and a sentence says more than the name beside it.
		 */
		for (size_t j = 0; j < m->statement.n; j++)
			add_sentences(s, e, m->statement.v[j]);
		if (m->spokesperson != NULL)
			add_text(s, e, m->spokesperson);
		if (m->role != NULL)
			add_text(s, e, m->role);
		add_text(s, e, m->name);
	}
	s->page = s->cursor = NULL;
	/* Exactly what is used: the index stays as long as the site. */
	if (s->n_fields > 0)
		s->fields = xrealloc(s->fields, s->n_fields * sizeof(*s->fields));
	if (s->folded.len > 0)
		s->folded.data = xrealloc(s->folded.data, s->folded.len);
	if (s->names.len > 0)
		s->names.data = xrealloc(s->names.data, s->names.len + 1);
	return s;
}

/*
 * The first byte from p that is c in either case (c a lower-case letter), or
 * NULL. Eight bytes at a time: OR-ing 0x20 into each lowers a letter, and a
 * zero byte of (word ^ c...) marks a candidate (the test may also flag a byte
 * after the first match, which the byte loop then sorts out).
 */
static const unsigned char *
find_letter(const unsigned char *p, const unsigned char *end, unsigned char c)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	const uint64_t pat = ones * c, case_bit = ones * 0x20;
	uint64_t x;

	for (; end - p >= 8; p += 8) {
		memcpy(&x, p, sizeof(x));
		x = (x | case_bit) ^ pat;
		if (((x - ones) & ~x & highs) != 0)
			break;
	}
	for (; p < end; p++)
		if ((*p | 0x20) == c)
			return p;
	return NULL;
}

/*
 * How common a byte is in English prose (0: rare; letters either case): a
 * search looks for its query's rarest byte and compares around it, so it
 * stops less often than at every "e" or space.
 */
static int
byte_rank(unsigned char c)
{
	static const char by_use[] = "zqxjkvbpygfwmucldrhsnioate ";
	const char *p;

	if (c == '\0' || (p = strchr(by_use, lower(c))) == NULL)
		return 0;
	return 1 + (int)(p - by_use);
}

/* ASCII-lowered t contains q (q is folded, so holds no upper case). */
static int
contains_lowered(const unsigned char *t, size_t n, const uint8_t *q, size_t m,
    size_t k)
{
	const unsigned char *end = t + n, *last, *p;
	unsigned char c = q[k];
	int letter = c >= 'a' && c <= 'z';

	if (m > n)
		return 0;
	last = end - m + k;  /* the last place q[k] can be */
	for (p = t + k; p <= last; p++) {
		const unsigned char *s;
		size_t j;

		p = letter ? find_letter(p, last + 1, c) :
		    memchr(p, c, (size_t)(last + 1 - p));
		if (p == NULL)
			return 0;
		s = p - k;
		for (j = 0; j < m && lower(s[j]) == q[j]; j++)
			;
		if (j == m)
			return 1;
	}
	return 0;
}

/* q, folded, m bytes; k: where its rarest byte is. */
static int
field_matches(const struct search_index *s, const struct field *f,
    const uint8_t *q, size_t m, size_t k)
{
	uint32_t flen;

	if (f->folded == NO_FOLD)
		return contains_lowered((const unsigned char *)f->text, f->len,
		    q, m, k);
	memcpy(&flen, s->folded.data + f->folded, sizeof(flen));
	return memmem(s->folded.data + f->folded + sizeof(flen), flen, q, m) !=
	    NULL;
}

/*
 * Hits fill pages in order: a page takes hits while their cost fits its
 * budget (always at least one, at most SEARCH_PAGE_HITS). Only the page asked
 * for is kept, so a request costs one scan and a fixed array, whatever the
 * page or the number of matches.
 */
static void
page_add(struct search_page *sp, const struct search_hit *h, size_t *page,
    size_t *used, size_t *count)
{
	size_t c = sp->cost(h, sp->ro);

	if (*count > 0 && (*used + c > sp->budget || *count == SEARCH_PAGE_HITS)) {
		(*page)++;
		*used = *count = 0;
	}
	*used += c;
	(*count)++;
	if (*page == sp->page)
		sp->hits[sp->n++] = *h;
	sp->total++;
	sp->pages = *page;
}

int
search_run(const struct search_index *s, const char *query, size_t qlen,
    struct search_page *sp)
{
	size_t flen, page = 1, used = 0, count = 0, k = 0;
	uint8_t *q;

	sp->total = sp->pages = sp->n = 0;
	if (u8_check((const uint8_t *)query, qlen) != NULL)
		return -1;
	while (qlen > 0 && (*query == ' ' || *query == '\t'))
		query++, qlen--;
	while (qlen > 0 && (query[qlen - 1] == ' ' || query[qlen - 1] == '\t'))
		qlen--;
	if (s == NULL || qlen == 0)
		return 0;
	if ((q = fold(query, qlen, &flen)) == NULL)
		return -1;
	for (size_t i = 1; i < flen; i++)
		if (byte_rank(q[i]) < byte_rank(q[k]))
			k = i;
	for (size_t i = 0; flen > 0 && i < s->n; i++) {
		const struct entry *e = &s->entries[i];

		for (uint32_t j = 0; j < e->n; j++) {
			const struct field *f = &s->fields[e->first + j];
			struct search_hit h;

			if (!field_matches(s, f, q, flen, k))
				continue;
			h.id = (const char *)s->names.data + e->names;
			h.name = h.id + strlen(h.id) + 1;
			h.sentence = f->text;
			h.sentence_len = f->len;
			page_add(sp, &h, &page, &used, &count);
			break;
		}
	}
	free(q);
	return 0;
}

size_t
search_members(const struct search_index *s)
{
	return s != NULL ? s->n : 0;
}

void
search_free(struct search_index *s)
{
	if (s == NULL)
		return;
	free(s->entries);
	free(s->fields);
	buf_free(&s->folded);
	buf_free(&s->names);
	for (size_t i = 0; i < s->n_copies; i++)
		free(s->copies[i]);
	free(s->copies);
	free(s);
}

/* ------------------------------------------------------------------ wire */
/*
 * The index on the wire (site_wire.c has the rest of the format):
 *
 *   index = u32:n_entries u32:n_fields entry...
 *   entry = str:id str:name u32:n field...     the member's fields, in order
 *   field = u32:page [u32:off] u32:len [len bytes] u8:folded [str:folded form]
 *
 * A field's text is len bytes at off in Gemini page `page` (an index into
 * the site's table), or, when page is WIRE_COPY, the len bytes that follow
 * (text that is in no page: a copy). The names and the folded forms are
 * rebuilt in the order search_build made them, so the reader trusts no offset
 * into them; offsets into the pages are checked against each page's length.
 */
#define WIRE_COPY       UINT32_MAX
#define WIRE_MIN_ENTRY  (4 + 4 + 4)
#define WIRE_MIN_FIELD  (4 + 4 + 1)

/* The site's pages by address, to find the one a field points into. */
struct page_at {
	uintptr_t  start;
	size_t     len;
	uint32_t   i;
};

static int
cmp_page_at(const void *a, const void *b)
{
	const struct page_at *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The page holding text[0 .. len - 1]: 1 with *page and *off, or 0. */
static int
page_of(const struct page_at *v, size_t n, const char *text, size_t len,
    uint32_t *page, uint32_t *off)
{
	uintptr_t t = (uintptr_t)text;
	size_t lo = 0, hi = n, at;

	while (lo < hi) {  /* the last page that starts at or before text */
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].start <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	at = (size_t)(t - v[lo - 1].start);
	if (at > v[lo - 1].len || len > v[lo - 1].len - at || at > UINT32_MAX)
		return 0;
	*page = v[lo - 1].i;
	*off = (uint32_t)at;
	return 1;
}

void
search_wire_write(const struct search_index *s, const struct resource *pages,
    size_t n_pages, struct buf *out)
{
	struct page_at *v = xcalloc(n_pages, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < n_pages && i < WIRE_COPY; i++) {
		if (pages[i].data == NULL)
			continue;
		v[n].start = (uintptr_t)pages[i].data;
		v[n].len = pages[i].len;
		v[n++].i = (uint32_t)i;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_page_at);

	/* Room for all but the copies (none, in practice). */
	wire_reserve(out, 8 + s->n * WIRE_MIN_ENTRY + s->names.len +
	    s->n_fields * (WIRE_MIN_FIELD + 4) + s->folded.len);
	wire_put_u32(out, (uint32_t)s->n);
	wire_put_u32(out, (uint32_t)s->n_fields);
	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->entries[i];
		const char *id = (const char *)s->names.data + e->names;

		wire_put_str(out, id);
		wire_put_str(out, id + strlen(id) + 1);
		wire_put_u32(out, e->n);
		for (uint32_t j = 0; j < e->n; j++) {
			const struct field *f = &s->fields[e->first + j];
			uint32_t page, off, flen;

			if (page_of(v, n, f->text, f->len, &page, &off)) {
				wire_put_u32(out, page);
				wire_put_u32(out, off);
				wire_put_u32(out, f->len);
			} else {
				wire_put_u32(out, WIRE_COPY);
				wire_put_bytes(out, f->text, f->len);
			}
			wire_put_u8(out, f->folded != NO_FOLD);
			if (f->folded != NO_FOLD) {
				memcpy(&flen, s->folded.data + f->folded,
				    sizeof(flen));
				wire_put_bytes(out, s->folded.data + f->folded +
				    sizeof(flen), flen);
			}
		}
	}
	free(v);
}

/* One field of the entry being read, appended to s->fields; 0 or -1. */
static int
wire_field(struct wire *w, struct search_index *s, const struct resource *pages,
    size_t n_pages)
{
	struct field *f = &s->fields[s->n_fields];
	uint32_t page = wire_u32(w), off = 0;
	const unsigned char *fb;
	size_t len = 0, flen;
	uint8_t folded;
	char *c;

	if (page == WIRE_COPY) {
		if ((fb = wire_bytes_at(w, &len)) == NULL)
			return -1;
		/* copies grows by doubling: its size is a power of two. */
		if ((s->n_copies & (s->n_copies - 1)) == 0)
			s->copies = xrealloc(s->copies, (s->n_copies ?
			    s->n_copies * 2 : 1) * sizeof(*s->copies));
		c = s->copies[s->n_copies++] = xmalloc(len + 1);
		memcpy(c, fb, len);
		c[len] = '\0';
		f->text = c;
	} else {
		off = wire_u32(w);
		len = wire_u32(w);
		if (w->err != NULL)
			return -1;
		if (page >= n_pages) {
			wire_fail(w, "a search field in no page");
			return -1;
		}
		if (off > pages[page].len || len > pages[page].len - off) {
			wire_fail(w, "a search field past the end of its page");
			return -1;
		}
		f->text = (const char *)pages[page].data + off;
	}
	f->len = (uint32_t)len;
	f->folded = NO_FOLD;
	if ((folded = wire_u8(w)) > 1) {
		wire_fail(w, "a search field marked neither folded nor not");
		return -1;
	}
	if (folded) {
		uint32_t len32;

		if ((fb = wire_bytes_at(w, &flen)) == NULL)
			return -1;
		/* Offsets into folded are u32, and NO_FOLD is none of them. */
		if (flen > UINT32_MAX - 1 - sizeof(len32) - s->folded.len) {
			wire_fail(w, "folded search text too long");
			return -1;
		}
		f->folded = (uint32_t)s->folded.len;
		len32 = (uint32_t)flen;
		buf_add(&s->folded, &len32, sizeof(len32));
		buf_add(&s->folded, fb, flen);
	}
	s->n_fields++;
	return 0;
}

struct search_index *
search_wire_read(struct wire *w, const struct resource *pages, size_t n_pages)
{
	struct search_index *s = xcalloc(1, sizeof(*s));
	size_t n = wire_count(w, wire_u32(w), WIRE_MIN_ENTRY);
	size_t n_fields = wire_count(w, wire_u32(w), WIRE_MIN_FIELD);

	if (w->err != NULL)
		goto fail;
	s->entries = xcalloc(n, sizeof(*s->entries));
	s->n = n;
	s->fields = xcalloc(n_fields, sizeof(*s->fields));
	s->cap_fields = n_fields;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &s->entries[i];
		size_t id_len, name_len;
		const char *id = wire_str_at(w, &id_len);
		const char *name = wire_str_at(w, &name_len);

		e->n = wire_u32(w);
		if (w->err != NULL)
			goto fail;
		/* Offsets into names are u32. */
		if (s->names.len + id_len + name_len + 2 > UINT32_MAX) {
			wire_fail(w, "search names too long");
			goto fail;
		}
		if (e->n > n_fields - s->n_fields) {
			wire_fail(w, "more search fields than the index has");
			goto fail;
		}
		e->names = (uint32_t)s->names.len;
		buf_add(&s->names, id, id_len);
		buf_add(&s->names, "", 1);
		buf_add(&s->names, name, name_len);
		buf_add(&s->names, "", 1);
		e->first = (uint32_t)s->n_fields;
		for (uint32_t j = 0; j < e->n; j++)
			if (wire_field(w, s, pages, n_pages) == -1)
				goto fail;
	}
	if (s->n_fields != n_fields) {
		wire_fail(w, "fewer search fields than the index has");
		goto fail;
	}
	/* Exactly what is used, as search_build keeps it. */
	if (s->folded.len > 0)
		s->folded.data = xrealloc(s->folded.data, s->folded.len);
	if (s->names.len > 0)
		s->names.data = xrealloc(s->names.data, s->names.len + 1);
	return s;
fail:
	search_free(s);
	return NULL;
}
