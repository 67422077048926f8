/*
 * search.c: the member search index, built once at load. Each member's name,
 * spokesperson, role and statement sentences are stored twice: as written (to
 * show) and casefolded with NFKC (to match), so a query costs one casefold and
 * a substring scan per field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "kilnet.h"

struct field {
	char    *text;    /* as written, for the result page */
	uint8_t *folded;  /* casefolded + NFKC, for matching */
	size_t   flen;
};

struct entry {
	char         *id;
	char         *name;
	struct field *fields;
	size_t        n_fields;
};

struct search_index {
	struct entry *entries;
	size_t        n;
};

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

static void
add_field(struct entry *e, const char *s, size_t n)
{
	struct field *f;

	while (n > 0 && (*s == ' '))
		s++, n--;
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n == 0)
		return;
	e->fields = xrealloc(e->fields, (e->n_fields + 1) * sizeof(*e->fields));
	f = &e->fields[e->n_fields];
	f->text = xmalloc(n + 1);
	memcpy(f->text, s, n);
	f->text[n] = '\0';
	if ((f->folded = fold(s, n, &f->flen)) == NULL) {
		/* Not valid UTF-8 (the loader should not let it through): as is. */
		f->folded = (uint8_t *)xstrdup(f->text);
		f->flen = n;
	}
	e->n_fields++;
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

/* A sentence ends at ".", "!" or "?" (and any closing quotes) before a space. */
static void
add_sentences(struct entry *e, const char *para)
{
	const char *start = para, *p = para;
	size_t c;

	while (*p != '\0') {
		if (*p == '.' || *p == '!' || *p == '?') {
			const char *q = p + 1;

			while ((c = closing_len(q)) > 0)
				q += c;
			if (*q == ' ') {
				add_field(e, start, (size_t)(q - start));
				start = p = q + 1;
				continue;
			}
		}
		p++;
	}
	add_field(e, start, (size_t)(p - start));
}

struct search_index *
search_build(const struct network *n)
{
	struct search_index *s = xcalloc(1, sizeof(*s));

	s->entries = xcalloc(n->n_members, sizeof(*s->entries));
	s->n = n->n_members;
	for (size_t i = 0; i < n->n_members; i++) {
		const struct member *m = &n->members[i];
		struct entry *e = &s->entries[i];

		e->id = xstrdup(m->id);
		e->name = xstrdup(m->name);
		/*
		 * Statement sentences first: a result shows the first field that
		 * matches, and a sentence says more than the name beside it.
		 */
		for (size_t j = 0; j < m->statement.n; j++)
			add_sentences(e, m->statement.v[j]);
		if (m->spokesperson != NULL)
			add_field(e, m->spokesperson, strlen(m->spokesperson));
		if (m->role != NULL)
			add_field(e, m->role, strlen(m->role));
		add_field(e, m->name, strlen(m->name));
	}
	return s;
}

int
search_run(const struct search_index *s, const char *query, size_t qlen,
    struct search_hit *hits, size_t max)
{
	uint8_t *q;
	size_t flen, nh = 0;

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
	if (flen == 0) {
		free(q);
		return 0;
	}
	for (size_t i = 0; i < s->n && nh < max; i++) {
		const struct entry *e = &s->entries[i];

		for (size_t j = 0; j < e->n_fields; j++) {
			const struct field *f = &e->fields[j];

			if (memmem(f->folded, f->flen, q, flen) == NULL)
				continue;
			hits[nh].id = e->id;
			hits[nh].name = e->name;
			hits[nh].sentence = f->text;
			nh++;
			break;
		}
	}
	free(q);
	return (int)nh;
}

void
search_free(struct search_index *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->entries[i];

		for (size_t j = 0; j < e->n_fields; j++) {
			free(e->fields[j].text);
			free(e->fields[j].folded);
		}
		free(e->fields);
		free(e->id);
		free(e->name);
	}
	free(s->entries);
	free(s);
}
