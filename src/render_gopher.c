/*
 * render_gopher.c: the dataset as Gopher menus and text documents (RFC 1436),
 * and capsule gemtext pages converted into menus. Called at load by site.c,
 * except for search results. Text is wrapped at GOPHER_WRAP_COLUMNS code points;
 * TAB, CR and LF never reach a menu field; document lines starting with "." are
 * doubled so they cannot end the document early (RFC 1436, section 3.8).
 * Menus that list members stay small at any size of network, as the gemtext
 * pages do (kilnet.h, RENDER_*_MAX).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kilnet.h"

/*
 * "i" lines need a selector, host and port that nobody should follow; this is
 * the form most servers in use send (an empty selector, "error.host", port 1),
 * so clients that do not know "i" show a harmless item.
 */
#define INFO_FIELDS "\t\terror.host\t1\r\n"

#define SEARCH_SEL  "/search"
#define MEMBERS_SEL "/members"
#define JOIN_SEL    "/join.txt"
#define ROOT_SEL    "/"
/* Pages after the first: MEMBERS_PAGE "N", SEARCH_PAGE "N?QUERY" (ids are
 * [a-z0-9-]: no member document is /members/page/N). */
#define MEMBERS_PAGE "/members/page/"
#define SEARCH_PAGE  "/search/page/"

/* Adds s with TAB, CR and LF (the menu's field and line separators) as spaces. */
static void
add_field(struct buf *out, const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (*p == '\t' || *p == '\r' || *p == '\n') {
			buf_add(out, s, (size_t)(p - s));
			buf_adds(out, " ");
			s = p + 1;
		}
	}
	buf_add(out, s, (size_t)(p - s));
}

void
render_gopher_item(struct buf *out, char type, const char *display,
    const char *selector, const char *host, int port)
{
	buf_add(out, &type, 1);
	add_field(out, display);
	buf_adds(out, "\t");
	add_field(out, selector);
	buf_adds(out, "\t");
	add_field(out, host);
	buf_printf(out, "\t%d\r\n", port);
}

static void
info_emit(void *arg, const char *line, size_t len)
{
	struct buf *out = arg;

	buf_adds(out, "i");
	buf_add(out, line, len);
	buf_adds(out, INFO_FIELDS);
}

/* Copy of s with TAB, CR and LF as spaces, so the wrapper sees one line. */
static char *
one_line(const char *s)
{
	char *c = xstrdup(s);

	for (char *p = c; *p != '\0'; p++)
		if (*p == '\t' || *p == '\r' || *p == '\n')
			*p = ' ';
	return c;
}

void
render_gopher_info(struct buf *out, const char *text, const struct render_opts *o)
{
	char *c = one_line(text);

	(void)o;
	wrap_text(c, GOPHER_WRAP_COLUMNS, info_emit, out);
	free(c);
}

static void
info_blank(struct buf *out)
{
	buf_adds(out, "i" INFO_FIELDS);
}

static void
info_paragraphs(struct buf *out, const struct paragraphs *p,
    const struct render_opts *o)
{
	for (size_t i = 0; i < p->n; i++) {
		render_gopher_info(out, p->v[i], o);
		info_blank(out);
	}
}

static void
item(struct buf *out, char type, const char *display, const char *selector,
    const struct render_opts *o)
{
	render_gopher_item(out, type, display, selector, o->hostname, o->gopher_port);
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* ------------------------------------------------------------ documents */

/* A text document line: CRLF, and a leading "." doubled (RFC 1436, 3.8). */
static void
doc_emit(void *arg, const char *line, size_t len)
{
	struct buf *out = arg;

	if (len > 0 && line[0] == '.')
		buf_adds(out, ".");
	buf_add(out, line, len);
	buf_adds(out, "\r\n");
}

static void
doc_para(struct buf *out, const char *text)
{
	char *c = one_line(text);

	wrap_text(c, GOPHER_WRAP_COLUMNS, doc_emit, out);
	free(c);
}

static void
doc_blank(struct buf *out)
{
	buf_adds(out, "\r\n");
}

static void
doc_end(struct buf *out)
{
	buf_adds(out, ".\r\n");
}

void
render_gopher_member(const struct network *n, const struct member *m,
    const struct render_opts *o, struct buf *out)
{
	char *s;

	(void)o;
	doc_para(out, m->name);
	doc_blank(out);
	if (m->role != NULL && *m->role != '\0')
		s = xasprintf("%s, %s, said:", or_empty(m->spokesperson), m->role);
	else
		s = xasprintf("%s said:", or_empty(m->spokesperson));
	doc_para(out, s);
	free(s);
	doc_blank(out);
	for (size_t i = 0; i < m->statement.n; i++) {
		doc_para(out, m->statement.v[i]);
		doc_blank(out);
	}
	s = xasprintf("A member of the %s.", or_empty(n->name));
	doc_para(out, s);
	free(s);
	doc_end(out);
}

void
render_gopher_join(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	(void)o;
	doc_para(out, n->join_heading != NULL ? n->join_heading :
	    "Joining the network");
	doc_blank(out);
	for (size_t i = 0; i < n->join_text.n; i++) {
		doc_para(out, n->join_text.v[i]);
		doc_blank(out);
	}
	if (n->join_url != NULL) {
		char *s = xasprintf("%s:", n->join_label != NULL ? n->join_label :
		    "Link");

		doc_para(out, s);
		free(s);
		doc_para(out, n->join_url);
	}
	doc_end(out);
}

/* ---------------------------------------------------------------- menus */

static void
url_item(struct buf *out, const char *display, const char *url,
    const struct render_opts *o)
{
	char *sel = xasprintf("URL:%s", url);

	item(out, 'h', display, sel, o);
	free(sel);
}

/* The root menu down to its member items. */
static void
root_head(const struct network *n, const struct render_opts *o, struct buf *out)
{
	render_gopher_info(out, or_empty(n->name), o);
	info_blank(out);
	info_paragraphs(out, &n->introduction, o);
	if (n->quote != NULL) {
		render_gopher_info(out, n->quote, o);
		if (n->quote_by != NULL) {
			char *by = xasprintf("- %s", n->quote_by);

			render_gopher_info(out, by, o);
			free(by);
		}
		info_blank(out);
	}
	if (n->convener != NULL) {
		const char *the = n->name != NULL &&
		    strncasecmp(n->name, "the ", 4) != 0 ? "the " : "";
		char *s = n->partner != NULL ?
		    xasprintf("%s convenes %s%s in partnership with %s.",
			n->convener, the, or_empty(n->name), n->partner) :
		    xasprintf("%s convenes %s%s.", n->convener, the,
			or_empty(n->name));

		render_gopher_info(out, s, o);
		info_blank(out);
		free(s);
	}
	/* The background and the text above the member list are on the member
	 * menu: "i" lines cost 16 bytes of dummy fields each, and the root stays
	 * small for slow links (under 2 KB with the default dataset). */
	item(out, '1', "Member councils", MEMBERS_SEL, o);
}

/* After the member items; when they are not all there, an item to the list
 * says how many there are. */
static void
root_tail(const struct network *n, const struct render_opts *o, int all,
    struct buf *out)
{
	struct buf url = { 0 };

	if (!all) {
		buf_adds(&url, "All ");
		render_count(&url, n->n_members);
		buf_adds(&url, " member councils");
		item(out, '1', (char *)url.data, MEMBERS_SEL, o);
		url.len = 0;
	}
	item(out, '0', n->join_heading != NULL ? n->join_heading :
	    "Joining the network", JOIN_SEL, o);
	item(out, '7', "Search the network's members", SEARCH_SEL, o);
	info_blank(out);
	if (n->url != NULL)
		url_item(out, "The network's web page", n->url, o);
	/* The same link twice under two names carries nothing. */
	if (n->join_url != NULL && (n->url == NULL ||
	    strcmp(n->url, n->join_url) != 0))
		url_item(out, n->join_label != NULL ? n->join_label :
		    "Join the network", n->join_url, o);
	buf_adds(&url, "gemini://");
	if (strchr(o->hostname, ':') != NULL)
		buf_printf(&url, "[%s]", o->hostname);
	else
		buf_adds(&url, o->hostname);
	if (o->gemini_port > 0 && o->gemini_port != 1965)
		buf_printf(&url, ":%d", o->gemini_port);
	buf_adds(&url, "/");
	url_item(out, "The same site over Gemini", (char *)url.data, o);
	if (o->spartan_port > 0) {
		url.len = 0;
		render_site_url(&url, "spartan", o);
		url_item(out, "The same site over Spartan", (char *)url.data, o);
	}
	if (o->nex_port > 0) {
		url.len = 0;
		render_site_url(&url, "nex", o);
		url_item(out, "The same site over Nex", (char *)url.data, o);
	}
	buf_free(&url);
	doc_end(out);
}

static void
member_item(struct buf *out, const struct member *m, int with_spokesperson,
    const struct render_opts *o)
{
	char *sel = xasprintf(MEMBERS_SEL "/%s.txt", m->id);
	char *disp = with_spokesperson && m->spokesperson != NULL ?
	    xasprintf("%s (%s)", m->name, m->spokesperson) : xstrdup(m->name);

	item(out, '0', disp, sel, o);
	free(sel);
	free(disp);
}

/* As many member items as fit between head and tail in budget bytes. */
static size_t
root_items(const struct network *n, const struct render_opts *o, size_t fixed,
    size_t budget, struct buf *items)
{
	size_t k, before;

	items->len = 0;
	for (k = 0; k < n->n_members; k++) {
		before = items->len;
		member_item(items, &n->members[k], 0, o);
		if (fixed + items->len > budget) {
			items->len = before;
			break;
		}
	}
	return k;
}

/*
 * Every member when the menu stays under RENDER_HOME_MAX (the default dataset:
 * 11), else the first ones that fit and an item with the count.
 */
void
render_gopher_root(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	const size_t budget = RENDER_HOME_MAX - RENDER_HEADER_ROOM;
	struct buf head = { 0 }, tail = { 0 }, items = { 0 };

	root_head(n, o, &head);
	root_tail(n, o, 1, &tail);
	if (root_items(n, o, head.len + tail.len, budget, &items) <
	    n->n_members) {
		tail.len = 0;
		root_tail(n, o, 0, &tail);
		root_items(n, o, head.len + tail.len, budget, &items);
	}
	buf_add(out, head.data, head.len);
	buf_add(out, items.data, items.len);
	buf_add(out, tail.data, tail.len);
	buf_free(&head);
	buf_free(&tail);
	buf_free(&items);
}

/* ------------------------------------------------------------ member menu */

/* The selector of page p (from 1) of the member menu. */
static void
members_sel(struct buf *out, size_t p)
{
	if (p <= 1)
		buf_adds(out, MEMBERS_SEL);
	else
		buf_printf(out, MEMBERS_PAGE "%zu", p);
}

/* Page p of pages (pages 0: the whole list on one page, as it always was). */
static void
members_head(const struct network *n, size_t p, size_t pages,
    const struct render_opts *o, struct buf *out)
{
	struct buf s = { 0 };

	if (p > 1) {
		buf_printf(&s, "Member councils, page %zu of %zu", p, pages);
		render_gopher_info(out, (char *)s.data, o);
		info_blank(out);
		buf_free(&s);
		return;
	}
	render_gopher_info(out, "Member councils", o);
	info_blank(out);
	info_paragraphs(out, &n->background, o);
	info_paragraphs(out, &n->members_intro, o);
	if (pages > 0) {
		render_count(&s, n->n_members);
		buf_printf(&s, " member councils; page 1 of %zu.", pages);
		render_gopher_info(out, (char *)s.data, o);
		info_blank(out);
	}
	buf_free(&s);
}

static void
page_item(struct buf *out, size_t p, size_t pages, const char *what,
    const struct render_opts *o)
{
	struct buf sel = { 0 };
	char *label = xasprintf("%s (%zu of %zu)", what, p, pages);

	members_sel(&sel, p);
	item(out, '1', label, (char *)sel.data, o);
	free(label);
	buf_free(&sel);
}

static void
members_foot(const struct network *n, size_t p, size_t pages,
    const struct render_opts *o, struct buf *out)
{
	info_blank(out);
	if (pages > 0 && p < pages)
		page_item(out, p + 1, pages, "Next page", o);
	if (pages > 0 && p > 1)
		page_item(out, p - 1, pages, "Previous page", o);
	if (n->join_heading != NULL)
		item(out, '0', n->join_heading, JOIN_SEL, o);
	item(out, '7', "Search the network's members", SEARCH_SEL, o);
	item(out, '1', or_empty(n->name), ROOT_SEL, o);
	doc_end(out);
}

/* Bytes the first page (or any other) takes besides its items, at most:
 * numbers as wide as they can be (no more pages than members). */
static size_t
members_frame(const struct network *n, int first, const struct render_opts *o)
{
	struct buf b = { 0 };
	size_t most = n->n_members + 1, len;

	members_head(n, first ? 1 : most, most, o, &b);
	members_foot(n, first ? 1 : most - 1, most, o, &b);
	len = b.len;
	buf_free(&b);
	return len;
}

void
render_gopher_members(const struct network *n, const struct render_opts *o,
    render_page_fn page, void *arg)
{
	struct buf all = { 0 }, b = { 0 }, sel = { 0 };
	size_t *off = xcalloc(n->n_members + 1, sizeof(*off));
	size_t *first = xcalloc(n->n_members + 1, sizeof(*first)), pages;

	for (size_t i = 0; i < n->n_members; i++) {
		off[i] = all.len;
		member_item(&all, &n->members[i], 1, o);
	}
	off[n->n_members] = all.len;
	members_head(n, 1, 0, o, &b);
	members_foot(n, 1, 0, o, &b);
	if (b.len + all.len <= RENDER_PAGE_MAX - RENDER_HEADER_ROOM) {
		/* One page, as the menu always was. */
		b.len = 0;
		members_head(n, 1, 0, o, &b);
		buf_add(&b, all.data, all.len);
		members_foot(n, 1, 0, o, &b);
		page(arg, MEMBERS_SEL, &b);
	} else {
		pages = render_cut_pages(off, n->n_members, members_frame(n, 1, o),
		    members_frame(n, 0, o), first);
		for (size_t p = 0; p < pages; p++) {
			b.len = sel.len = 0;
			members_head(n, p + 1, pages, o, &b);
			buf_add(&b, all.data + off[first[p]],
			    off[first[p + 1]] - off[first[p]]);
			members_foot(n, p + 1, pages, o, &b);
			members_sel(&sel, p + 1);
			page(arg, (char *)sel.data, &b);
		}
	}
	buf_free(&all);
	buf_free(&b);
	buf_free(&sel);
	free(off);
	free(first);
}

/* ---------------------------------------------------------------- search */

/* A type 1 item to page p of the results: "/search?QUERY" for page 1,
 * "/search/page/N?QUERY" after it (a menu item cannot carry a TAB). */
static void
search_item(struct buf *out, const char *query, size_t p, size_t pages,
    const char *what, const struct render_opts *o)
{
	struct buf sel = { 0 };
	char *label = xasprintf("%s (%zu of %zu)", what, p, pages);

	if (p <= 1)
		buf_adds(&sel, SEARCH_SEL "?");
	else
		buf_printf(&sel, SEARCH_PAGE "%zu?", p);
	render_query(&sel, query);
	item(out, '1', label, (char *)sel.data, o);
	free(label);
	buf_free(&sel);
}

/*
 * What a hit takes, at most: its item, exactly, and its sentence as "i" lines
 * (17 bytes each besides the text). Wrapping is not run here, per hit of every
 * page before the one asked; the count of lines is bounded instead: two lines
 * in a row hold more than 60 code points, unless a run of spaces was cut.
 */
static size_t
search_cost(const struct search_hit *h, const struct render_opts *o)
{
	size_t item_len, lines = h->sentence_len / 30 + 2, port = 1;

	for (int p = o->gopher_port; p >= 10; p /= 10)
		port++;
	item_len = strlen("0\t" MEMBERS_SEL "/.txt\t\t\r\n") + strlen(h->name) +
	    strlen(h->id) + strlen(o->hostname) + port;
	return item_len + h->sentence_len + (lines + 1) * strlen("i" INFO_FIELDS);
}

void
render_gopher_search_page(const struct render_opts *o, const char *query,
    size_t page, struct search_page *sp)
{
	render_search_frame(o, query, page, render_gopher_search, search_cost, sp);
}

static void
search_count(const struct search_page *sp, const struct render_opts *o,
    struct buf *out)
{
	struct buf s = { 0 };

	if (sp->total == 0) {
		render_gopher_info(out, "No member matches.", o);
		return;
	}
	render_count(&s, sp->total);
	buf_printf(&s, " member%s match%s", sp->total == 1 ? "" : "s",
	    sp->total == 1 ? "es" : "");
	if (sp->page > sp->pages)
		buf_printf(&s, ", on %zu page%s: there is no page %zu", sp->pages,
		    sp->pages == 1 ? "" : "s", sp->page);
	else if (sp->pages > 1)
		buf_printf(&s, "; page %zu of %zu", sp->page, sp->pages);
	buf_adds(&s, ".");
	render_gopher_info(out, (char *)s.data, o);
	buf_free(&s);
}

void
render_gopher_search(const struct render_opts *o, const char *query,
    const struct search_page *sp, struct buf *out)
{
	char *s;

	if (query == NULL || *query == '\0' || sp == NULL) {
		render_gopher_info(out, "Type a word or a name to search the "
		    "network's members: their councils, spokespeople and "
		    "statements.", o);
		info_blank(out);
		item(out, '7', "Search the network's members", SEARCH_SEL, o);
		item(out, '1', "Home", ROOT_SEL, o);
		doc_end(out);
		return;
	}
	s = xasprintf("Search: “%s”", query);
	render_gopher_info(out, s, o);
	free(s);
	info_blank(out);
	search_count(sp, o, out);
	info_blank(out);
	for (size_t i = 0; i < sp->n; i++) {
		const struct search_hit *h = &sp->hits[i];

		s = xasprintf(MEMBERS_SEL "/%s.txt", h->id);
		item(out, '0', h->name, s, o);
		free(s);
		s = xasprintf("%.*s", (int)h->sentence_len, h->sentence);
		render_gopher_info(out, s, o);
		free(s);
		info_blank(out);
	}
	if (sp->page < sp->pages)
		search_item(out, query, sp->page + 1, sp->pages, "Next page", o);
	if (sp->page > 1 && sp->page <= sp->pages)
		search_item(out, query, sp->page - 1, sp->pages, "Previous page", o);
	if (sp->page > sp->pages && sp->pages > 0)
		search_item(out, query, sp->pages, sp->pages, "Last page", o);
	item(out, '7', sp->total == 0 ? "Try another search" : "Search again",
	    SEARCH_SEL, o);
	item(out, '1', "Home", ROOT_SEL, o);
	doc_end(out);
}

/* ---------------------------------------------------- gemtext -> menus */

/* What a link in a capsule page points at, as a Gopher item. */
struct target {
	char  type;      /* 0: not served here */
	char *selector;
	char *host;
	int   port;
};

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
static size_t
scheme_len(const char *u)
{
	size_t i = 0;

	if (!isalpha((unsigned char)u[0]))
		return 0;
	while (isalnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' ||
	    u[i] == '.')
		i++;
	return u[i] == ':' ? i : 0;
}

/* Splits "host[:port]" or "[v6]:port" off the front of an authority+path. */
static const char *
split_authority(const char *p, char **host, int *port)
{
	const char *end = p + strcspn(p, "/?#"), *colon = NULL, *h0 = p, *h1;

	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL)
			return NULL;
		h0 = p + 1;
		h1 = rb;
		if (rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		h1 = colon != NULL ? colon : end;
	}
	if (memchr(p, '@', (size_t)(end - p)) != NULL)
		return NULL;
	*port = 0;
	if (colon != NULL && colon + 1 < end) {
		long v = 0;

		for (const char *q = colon + 1; q < end; q++) {
			if (!isdigit((unsigned char)*q) || (v = v * 10 + (*q - '0')) > 65535)
				return NULL;
		}
		*port = (int)v;
	}
	*host = xmalloc((size_t)(h1 - h0) + 1);
	memcpy(*host, h0, (size_t)(h1 - h0));
	(*host)[h1 - h0] = '\0';
	return end;
}

/* Guess for a selector when the caller does not say what is served. */
static char
guess_type(const char *sel)
{
	const char *mime;
	size_t n = strlen(sel);

	if (n == 0 || sel[n - 1] == '/' || strcmp(sel, MEMBERS_SEL) == 0)
		return '1';
	if (strcmp(sel, SEARCH_SEL) == 0)
		return '7';
	mime = mime_for(sel);
	return gopher_type_for(mime);
}

/*
 * A path on this site over Gemini -> its selector over Gopher. Folders lose
 * their trailing slash ("/members/" -> "/members", "/" -> ""), and a generated
 * .gmi page is a .txt document over Gopher (/members/x.gmi -> /members/x.txt).
 */
static void
local_target(const char *path, char (*lookup)(void *, const char *), void *arg,
    struct target *t)
{
	size_t n = strlen(path);
	char *sel = xstrdup(path);

	if (n > 0 && sel[n - 1] == '/')
		sel[--n] = '\0';
	if (lookup == NULL) {
		if (n > 4 && strcmp(sel + n - 4, ".gmi") == 0 &&
		    (strncmp(sel, MEMBERS_SEL "/", 9) == 0 ||
		    strcmp(sel, "/join.gmi") == 0))
			memcpy(sel + n - 4, ".txt", 4);
		t->type = guess_type(sel);
		t->selector = sel;
		return;
	}
	if ((t->type = lookup(arg, sel)) == 0 && n > 4 &&
	    strcmp(sel + n - 4, ".gmi") == 0) {
		memcpy(sel + n - 4, ".txt", 4);
		t->type = lookup(arg, sel);
	}
	t->selector = sel;
}

static int
is_our_gemini(const char *host, int port, const struct render_opts *o)
{
	if (strcasecmp(host, o->hostname) != 0)
		return 0;
	return port == (o->gemini_port > 0 ? o->gemini_port : 1965) ||
	    (port == 0 && (o->gemini_port == 1965 || o->gemini_port <= 0));
}

/* A local reference (absolute or relative path) on the page at base. */
static void
resolve_local(const char *ref, const char *base,
    char (*lookup)(void *, const char *), void *arg, struct target *t)
{
	struct buf joined = { 0 };
	char *dec, *norm;
	size_t len, dlen;
	const char *slash;

	len = strcspn(ref, "?#");
	if (ref[0] != '/') {
		slash = strrchr(base, '/');
		if (slash != NULL)
			buf_add(&joined, base, (size_t)(slash - base) + 1);
		else
			buf_adds(&joined, "/");
	}
	buf_add(&joined, ref, len);
	if (joined.len == 0)
		buf_adds(&joined, "/");
	if (url_decode((char *)joined.data, &dec, &dlen) != 0) {
		buf_free(&joined);
		return;
	}
	buf_free(&joined);
	norm = xmalloc(dlen + 2);
	url_normalise_path(dec, dlen, norm);
	free(dec);
	local_target(norm, lookup, arg, t);
	free(norm);
}

static void
link_target(const char *url, const char *base,
    char (*lookup)(void *, const char *), void *arg,
    const struct render_opts *o, struct target *t)
{
	size_t sl = scheme_len(url);
	const char *rest;
	char *host = NULL;
	int port;

	memset(t, 0, sizeof(*t));
	if (sl == 0 && strncmp(url, "//", 2) != 0) {
		resolve_local(url, base, lookup, arg, t);
		return;
	}
	if (sl == 0 || (sl == 6 && strncasecmp(url, "gemini", 6) == 0)) {
		rest = url + (sl ? sl + 1 : 0);
		if (strncmp(rest, "//", 2) == 0 &&
		    (rest = split_authority(rest + 2, &host, &port)) != NULL &&
		    is_our_gemini(host, port, o)) {
			free(host);
			resolve_local(*rest == '/' ? rest : "/", "/", lookup, arg, t);
			if (t->type != 0)
				return;
			free(t->selector);
			memset(t, 0, sizeof(*t));
		} else
			free(host);
		host = NULL;
	} else if (sl == 6 && strncasecmp(url, "gopher", 6) == 0 &&
	    strncmp(url + 7, "//", 2) == 0 &&
	    (rest = split_authority(url + 9, &host, &port)) != NULL &&
	    *host != '\0') {
		/* RFC 4266: gopher://host:port/<type><selector>, encoded. */
		char *dec;
		size_t dlen, len = strcspn(rest, "?#");
		char *path = xmalloc(len + 1);

		memcpy(path, rest, len);
		path[len] = '\0';
		if (url_decode(path, &dec, &dlen) == 0) {
			t->type = dlen >= 2 ? dec[1] : '1';
			t->selector = xstrdup(dlen >= 2 ? dec + 2 : "");
			t->host = host;
			t->port = port ? port : 70;
			free(dec);
			free(path);
			return;
		}
		free(path);
	}
	free(host);
	t->type = 'h';
	t->selector = xasprintf("URL:%s", url);
}

static void
gemtext_link(struct buf *out, const char *line, const char *base,
    char (*lookup)(void *, const char *), void *arg,
    const struct render_opts *o)
{
	const char *p = line + 2, *u;
	char *url, *label;
	struct target t;
	size_t ulen;

	p += strspn(p, " \t");
	u = p;
	ulen = strcspn(p, " \t");
	if (ulen == 0) {
		render_gopher_info(out, line, o);
		return;
	}
	url = xmalloc(ulen + 1);
	memcpy(url, u, ulen);
	url[ulen] = '\0';
	p = u + ulen;
	p += strspn(p, " \t");
	label = xstrdup(*p != '\0' ? p : url);
	link_target(url, base, lookup, arg, o, &t);
	if (t.type == 0 || t.selector == NULL)
		render_gopher_info(out, label, o);  /* not served: text only */
	else
		render_gopher_item(out, t.type, label, t.selector,
		    t.host != NULL ? t.host : o->hostname,
		    t.host != NULL ? t.port : o->gopher_port);
	free(t.selector);
	free(t.host);
	free(url);
	free(label);
}

void
render_gopher_from_gemtext_at(const unsigned char *gmi, size_t len,
    const char *path, char (*lookup)(void *arg, const char *selector),
    void *arg, const struct render_opts *o, struct buf *out)
{
	const unsigned char *p = gmi, *end = gmi + len, *nl;
	int pre = 0;

	while (p < end) {
		size_t n;
		char *line;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		line = xmalloc(n + 1);
		memcpy(line, p, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		/* A NUL would cut the line short in C strings: a space. */
		for (size_t i = 0; i < n; i++)
			if (line[i] == '\0')
				line[i] = ' ';
		p = nl != NULL ? nl + 1 : end;

		if (strncmp(line, "```", 3) == 0)
			pre = !pre;
		else if (pre) {
			/* Preformatted text keeps its layout: not wrapped. */
			char *c = one_line(line);

			info_emit(out, c, n);
			free(c);
		}
		else if (strncmp(line, "=>", 2) == 0)
			gemtext_link(out, line, path, lookup, arg, o);
		else if (line[0] == '#')
			render_gopher_info(out, line + strspn(line, "#") +
			    strspn(line + strspn(line, "#"), " \t"), o);
		else
			render_gopher_info(out, line, o);
		free(line);
	}
	doc_end(out);
}

void
render_gopher_from_gemtext(const unsigned char *gmi, size_t len,
    const struct render_opts *o, struct buf *out)
{
	render_gopher_from_gemtext_at(gmi, len, "/", NULL, NULL, o, out);
}
