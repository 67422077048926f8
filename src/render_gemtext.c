/*
 * render_gemtext.c: the dataset as gemtext pages (home, member list, one page
 * per member, joining, search results). Called once at load by site.c, except
 * for search results. Dataset text is escaped so it is never read as markup.
 * Pages that list members stay small at any size of network (kilnet.h,
 * RENDER_*_MAX): the home page lists the first members, the member list and
 * search results are cut into pages linked by next and previous links.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kilnet.h"

#define SEARCH_PATH  "/search"
#define MEMBERS_PATH "/members/"
#define JOIN_PATH    "/join.gmi"
#define FEED_PATH    "/atom.xml"
/* Pages after the first: MEMBERS_PAGE "N.gmi", SEARCH_PAGE "N?QUERY". Ids are
 * [a-z0-9-], so no member page can be /members/page/N.gmi. */
#define MEMBERS_PAGE "/members/page/"
#define SEARCH_PAGE  "/search/page/"

/* A line break inside a value would start a new line of any type: never. */
static void
add_one_line_n(struct buf *out, const char *s, size_t n)
{
	const char *end = s + n, *p;

	for (p = s; p < end; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t') {
			buf_add(out, s, (size_t)(p - s));
			buf_adds(out, " ");
			s = p + 1;
		}
	}
	buf_add(out, s, (size_t)(end - s));
}

static void
add_one_line(struct buf *out, const char *s)
{
	add_one_line_n(out, s, strlen(s));
}

/*
 * Gemtext decides a line's type by its first characters, with no whitespace
 * skipped (gemini spec, 5.4/5.5): "=>", "#", "* ", ">", "```". A single leading
 * space makes any of them a plain text line, keeps the words exactly as they
 * are for reading, copying and search, and every client shows it. An invisible
 * character (ZWSP, BOM) would also work but hides inside the text and breaks
 * searching for it; a visible mark would change the text.
 */
void
render_gemtext_text_line(const char *s, struct buf *out)
{
	if (strncmp(s, "=>", 2) == 0 || s[0] == '#' || s[0] == '*' ||
	    s[0] == '>' || strncmp(s, "```", 3) == 0)
		buf_adds(out, " ");
	add_one_line(out, s);
	buf_adds(out, "\n");
}

static void
heading(struct buf *out, const char *level, const char *s)
{
	buf_adds(out, level);
	buf_adds(out, " ");
	add_one_line(out, s);
	buf_adds(out, "\n");
}

static void
quote_line_n(struct buf *out, const char *s, size_t n)
{
	buf_adds(out, "> ");
	add_one_line_n(out, s, n);
	buf_adds(out, "\n");
}

static void
quote_line(struct buf *out, const char *s)
{
	quote_line_n(out, s, strlen(s));
}

/* A URL in a link line ends at the first whitespace: encode any there. */
static void
link_line(struct buf *out, const char *url, const char *label)
{
	buf_adds(out, "=> ");
	for (const char *p = url; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			buf_printf(out, "%%%02X", (unsigned char)*p);
		else
			buf_add(out, p, 1);
	}
	if (label != NULL && *label != '\0') {
		buf_adds(out, " ");
		add_one_line(out, label);
	}
	buf_adds(out, "\n");
}

static void
paragraphs(struct buf *out, const struct paragraphs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		render_gemtext_text_line(p->v[i], out);
		buf_adds(out, "\n");
	}
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* A hostname that is an IPv6 literal needs brackets in a URL. */
static void
host_port(struct buf *out, const char *host, int port, int default_port)
{
	if (strchr(host, ':') != NULL)
		buf_printf(out, "[%s]", host);
	else
		buf_adds(out, host);
	if (port > 0 && port != default_port)
		buf_printf(out, ":%d", port);
}

/* "Locality convenes the Keep it Local Network", unless the name has its own. */
static const char *
the(const char *name)
{
	return name != NULL && strncasecmp(name, "the ", 4) != 0 ? "the " : "";
}

static void
convener_line(const struct network *n, struct buf *out)
{
	struct buf b = { 0 };

	if (n->convener == NULL)
		return;
	buf_printf(&b, "%s convenes %s%s", n->convener, the(n->name),
	    or_empty(n->name));
	if (n->partner != NULL)
		buf_printf(&b, " in partnership with %s", n->partner);
	buf_adds(&b, ".");
	render_gemtext_text_line((char *)b.data, out);
	buf_adds(out, "\n");
	buf_free(&b);
}

/*
 * On the member list, a member with a date gets it at the start of its link
 * text: the gemsub convention ("=> URL YYYY-MM-DD Title"), so Gemini feed
 * readers can subscribe to the list and see which statements are new.
 */
static void
member_link(struct buf *out, const struct member *m, int with_spokesperson)
{
	char *url = xasprintf(MEMBERS_PATH "%s.gmi", m->id);
	const char *date = with_spokesperson ? render_atom_date(m) : "";
	char *label = with_spokesperson && m->spokesperson != NULL ?
	    xasprintf("%s%s%s (%s)", date, *date ? " " : "", m->name,
		m->spokesperson) :
	    xasprintf("%s%s%s", date, *date ? " " : "", m->name);

	link_line(out, url, label);
	free(url);
	free(label);
}

void
render_count(struct buf *out, size_t n)
{
	char digits[32];
	int len = snprintf(digits, sizeof(digits), "%zu", n);

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf_adds(out, ",");
		buf_add(out, &digits[i], 1);
	}
}

void
render_query(struct buf *out, const char *q)
{
	for (const unsigned char *p = (const unsigned char *)q; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~')
			buf_add(out, p, 1);
		else
			buf_printf(out, "%%%02X", *p);
	}
}

/* Appends a's bytes to out. */
static void
add_buf(struct buf *out, const struct buf *a)
{
	buf_add(out, a->data, a->len);
}

/* The home page down to its member links. */
static void
home_head(const struct network *n, struct buf *out)
{
	heading(out, "#", or_empty(n->name));
	buf_adds(out, "\n");
	paragraphs(out, &n->introduction);
	if (n->quote != NULL) {
		quote_line(out, n->quote);
		if (n->quote_by != NULL) {
			char *by = xasprintf("- %s", n->quote_by);

			render_gemtext_text_line(by, out);
			free(by);
		}
		buf_adds(out, "\n");
	}
	paragraphs(out, &n->background);
	convener_line(n, out);
	paragraphs(out, &n->members_intro);

	heading(out, "##", "Member councils");
	buf_adds(out, "\n");
}

/* After the member links; when they are not all there, the link to the list
 * says how many there are. */
static void
home_tail(const struct network *n, const struct render_opts *o, int all,
    struct buf *out)
{
	struct buf s = { 0 };

	buf_adds(out, "\n");
	if (all)
		buf_adds(&s, "All member councils and their spokespeople");
	else {
		buf_adds(&s, "All ");
		render_count(&s, n->n_members);
		buf_adds(&s, " member councils and their spokespeople");
	}
	link_line(out, MEMBERS_PATH, (char *)s.data);
	buf_free(&s);
	link_line(out, JOIN_PATH, n->join_heading != NULL ? n->join_heading :
	    "Joining the network");
	link_line(out, SEARCH_PATH, "Search the network's members");
	if (*render_atom_latest(n) != '\0')
		link_line(out, FEED_PATH, "Atom feed of the members' statements");
	buf_adds(out, "\n");
	if (n->url != NULL)
		link_line(out, n->url, "The network's web page");
	s.len = 0;
	buf_adds(&s, "gopher://");
	host_port(&s, o->hostname, o->gopher_port, 70);
	buf_adds(&s, "/1/");
	link_line(out, (char *)s.data, "The same site over Gopher");
	/* Spartan and Nex only when served (their ports are 0 otherwise). */
	if (o->spartan_port > 0) {
		s.len = 0;
		render_site_url(&s, "spartan", o);
		link_line(out, (char *)s.data, "The same site over Spartan");
	}
	if (o->nex_port > 0) {
		s.len = 0;
		render_site_url(&s, "nex", o);
		link_line(out, (char *)s.data, "The same site over Nex");
	}
	buf_free(&s);
}

void
render_site_url(struct buf *out, const char *scheme, const struct render_opts *o)
{
	buf_printf(out, "%s://", scheme);
	if (strcmp(scheme, "gemini") == 0)
		host_port(out, o->hostname, o->gemini_port, 1965);
	else if (strcmp(scheme, "spartan") == 0)
		host_port(out, o->hostname, o->spartan_port, 300);
	else if (strcmp(scheme, "nex") == 0)
		host_port(out, o->hostname, o->nex_port, 1900);
	else
		host_port(out, o->hostname, o->gopher_port, 70);
	buf_adds(out, "/");
}

/* As many member links as fit between head and tail in budget bytes. */
static size_t
home_links(const struct network *n, size_t fixed, size_t budget,
    struct buf *links)
{
	size_t k, before;

	links->len = 0;
	for (k = 0; k < n->n_members; k++) {
		before = links->len;
		member_link(links, &n->members[k], 0);
		if (fixed + links->len > budget) {
			links->len = before;
			break;
		}
	}
	return k;
}

/*
 * Every member when the page stays under RENDER_HOME_MAX (the default dataset:
 * 11), else the first ones that fit and the count on the link to the list.
 */
void
render_gemtext_home(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	const size_t budget = RENDER_HOME_MAX - RENDER_HEADER_ROOM;
	struct buf head = { 0 }, tail = { 0 }, links = { 0 };

	home_head(n, &head);
	home_tail(n, o, 1, &tail);
	if (home_links(n, head.len + tail.len, budget, &links) < n->n_members) {
		tail.len = 0;
		home_tail(n, o, 0, &tail);
		home_links(n, head.len + tail.len, budget, &links);
	}
	add_buf(out, &head);
	add_buf(out, &links);
	add_buf(out, &tail);
	buf_free(&head);
	buf_free(&tail);
	buf_free(&links);
}

/* ------------------------------------------------------------ member list */

/* Where page p (from 1) of the member list is. */
static void
members_key(struct buf *out, size_t p)
{
	if (p <= 1)
		buf_adds(out, MEMBERS_PATH);
	else
		buf_printf(out, MEMBERS_PAGE "%zu.gmi", p);
}

/* Page p of pages (pages 0: the whole list on one page, as it always was). */
static void
members_head(const struct network *n, size_t p, size_t pages, struct buf *out)
{
	char *title;

	if (p > 1) {
		title = xasprintf("%s: member councils, page %zu of %zu",
		    or_empty(n->name), p, pages);
		heading(out, "#", title);
		free(title);
		buf_adds(out, "\n");
		return;
	}
	title = xasprintf("%s: member councils", or_empty(n->name));
	/* gemsub: the first "#" heading names the feed, a "##" right after
	 * it is its subtitle. */
	heading(out, "#", title);
	free(title);
	heading(out, "##", "Each council that joined, with its spokesperson");
	buf_adds(out, "\n");
	paragraphs(out, &n->members_intro);
	if (pages > 0) {
		render_count(out, n->n_members);
		buf_printf(out, " member councils; page 1 of %zu.\n\n", pages);
	}
}

static void
page_link(struct buf *out, size_t p, size_t pages, const char *what)
{
	struct buf key = { 0 };
	char *label = xasprintf("%s (%zu of %zu)", what, p, pages);

	members_key(&key, p);
	link_line(out, (char *)key.data, label);
	free(label);
	buf_free(&key);
}

static void
members_foot(const struct network *n, size_t p, size_t pages, struct buf *out)
{
	buf_adds(out, "\n");
	if (pages > 0 && p < pages)
		page_link(out, p + 1, pages, "Next page");
	if (pages > 0 && p > 1)
		page_link(out, p - 1, pages, "Previous page");
	if (n->join_heading != NULL)
		link_line(out, JOIN_PATH, n->join_heading);
	link_line(out, SEARCH_PATH, "Search the network's members");
	link_line(out, "/", or_empty(n->name));
}

/* Bytes the first page (or any other) takes besides its links, at most:
 * numbers as wide as they can be (no more pages than members). */
static size_t
members_frame(const struct network *n, int first)
{
	struct buf b = { 0 };
	size_t most = n->n_members + 1, len;

	members_head(n, first ? 1 : most, most, &b);
	members_foot(n, first ? 1 : most - 1, most, &b);
	len = b.len;
	buf_free(&b);
	return len;
}

/* Each member's line of the list, one after the other; off[i] is where
 * member i's starts, off[n] the end. */
static void
members_lines(const struct network *n, struct buf *all, size_t *off)
{
	for (size_t i = 0; i < n->n_members; i++) {
		off[i] = all->len;
		member_link(all, &n->members[i], 1);
	}
	off[n->n_members] = all->len;
}

void
render_gemtext_members(const struct network *n, const struct render_opts *o,
    render_page_fn page, void *arg)
{
	struct buf all = { 0 }, b = { 0 }, key = { 0 };
	size_t *off = xcalloc(n->n_members + 1, sizeof(*off));
	size_t *first = xcalloc(n->n_members + 1, sizeof(*first)), pages;

	(void)o;
	members_lines(n, &all, off);
	members_head(n, 1, 0, &b);
	members_foot(n, 1, 0, &b);
	if (b.len + all.len <= RENDER_PAGE_MAX - RENDER_HEADER_ROOM) {
		/* One page, as the list always was. */
		b.len = 0;
		members_head(n, 1, 0, &b);
		add_buf(&b, &all);
		members_foot(n, 1, 0, &b);
		page(arg, MEMBERS_PATH, &b);
	} else {
		pages = render_cut_pages(off, n->n_members, members_frame(n, 1),
		    members_frame(n, 0), first);
		for (size_t p = 0; p < pages; p++) {
			b.len = key.len = 0;
			members_head(n, p + 1, pages, &b);
			buf_add(&b, all.data + off[first[p]],
			    off[first[p + 1]] - off[first[p]]);
			members_foot(n, p + 1, pages, &b);
			members_key(&key, p + 1);
			page(arg, (char *)key.data, &b);
		}
	}
	buf_free(&all);
	buf_free(&b);
	buf_free(&key);
	free(off);
	free(first);
}

void
render_gemtext_member(const struct network *n, const struct member *m,
    const struct render_opts *o, struct buf *out)
{
	char *said;

	(void)o;
	heading(out, "#", m->name);
	buf_adds(out, "\n");
	if (m->role != NULL && *m->role != '\0')
		said = xasprintf("%s, %s, said:", or_empty(m->spokesperson), m->role);
	else
		said = xasprintf("%s said:", or_empty(m->spokesperson));
	render_gemtext_text_line(said, out);
	free(said);
	buf_adds(out, "\n");
	for (size_t i = 0; i < m->statement.n; i++)
		quote_line(out, m->statement.v[i]);
	buf_adds(out, "\n");
	link_line(out, MEMBERS_PATH, "All member councils");
	link_line(out, "/", or_empty(n->name));
}

void
render_gemtext_join(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	(void)o;
	heading(out, "#", n->join_heading != NULL ? n->join_heading :
	    "Joining the network");
	buf_adds(out, "\n");
	paragraphs(out, &n->join_text);
	if (n->join_url != NULL)
		link_line(out, n->join_url, n->join_label);
	buf_adds(out, "\n");
	link_line(out, MEMBERS_PATH, "The member councils");
	link_line(out, "/", or_empty(n->name));
}

/* ------------------------------------------------------------ search */

/* "/search?QUERY" for page 1, "/search/page/N?QUERY" after it. */
static void
search_link(struct buf *out, const char *query, size_t p, size_t pages,
    const char *what)
{
	struct buf url = { 0 };
	char *label = xasprintf("%s (%zu of %zu)", what, p, pages);

	if (p <= 1)
		buf_adds(&url, SEARCH_PATH "?");
	else
		buf_printf(&url, SEARCH_PAGE "%zu?", p);
	render_query(&url, query);
	link_line(out, (char *)url.data, label);
	free(label);
	buf_free(&url);
}

/* What a hit takes: "=> /members/ID.gmi NAME\n> SENTENCE\n\n". */
static size_t
search_cost(const struct search_hit *h, const struct render_opts *o)
{
	(void)o;
	return strlen("=> " MEMBERS_PATH ".gmi \n> \n\n") + strlen(h->id) +
	    strlen(h->name) + h->sentence_len;
}

void
render_gemtext_search_page(const struct render_opts *o, const char *query,
    size_t page, struct search_page *sp)
{
	render_search_frame(o, query, page, render_gemtext_search, search_cost, sp);
}

void
render_gemtext_search(const struct render_opts *o, const char *query,
    const struct search_page *sp, struct buf *out)
{
	const struct search_hit *h;
	char *s;

	(void)o;
	s = xasprintf("Search: %s", query);
	heading(out, "#", s);
	free(s);
	buf_adds(out, "\n");
	if (sp->total == 0) {
		s = xasprintf("No member matches “%s”.", query);
		render_gemtext_text_line(s, out);
		free(s);
		buf_adds(out, "\n");
		link_line(out, SEARCH_PATH, "Try another search");
		link_line(out, "/", "Home");
		return;
	}
	render_count(out, sp->total);
	buf_printf(out, " member%s match%s", sp->total == 1 ? "" : "s",
	    sp->total == 1 ? "es" : "");
	if (sp->page > sp->pages)
		buf_printf(out, ", on %zu page%s: there is no page %zu", sp->pages,
		    sp->pages == 1 ? "" : "s", sp->page);
	else if (sp->pages > 1)
		buf_printf(out, "; page %zu of %zu", sp->page, sp->pages);
	buf_adds(out, ".\n\n");
	for (size_t i = 0; i < sp->n; i++) {
		h = &sp->hits[i];
		s = xasprintf(MEMBERS_PATH "%s.gmi", h->id);
		link_line(out, s, h->name);
		free(s);
		quote_line_n(out, h->sentence, h->sentence_len);
		buf_adds(out, "\n");
	}
	if (sp->page < sp->pages)
		search_link(out, query, sp->page + 1, sp->pages, "Next page");
	if (sp->page > 1 && sp->page <= sp->pages)
		search_link(out, query, sp->page - 1, sp->pages, "Previous page");
	if (sp->page > sp->pages)
		search_link(out, query, sp->pages, sp->pages, "Last page");
	link_line(out, SEARCH_PATH, "Search again");
	link_line(out, "/", "Home");
}
