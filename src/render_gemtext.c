/*
 * render_gemtext.c: the dataset as gemtext pages (home, member list, one page
 * per member, joining, search results). Called once at load by site.c, except
 * for search results. Dataset text is escaped so it is never read as markup.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kilnet.h"

#define SEARCH_PATH  "/search"
#define MEMBERS_PATH "/members/"
#define JOIN_PATH    "/join.gmi"
#define FEED_PATH    "/atom.xml"

/* A line break inside a value would start a new line of any type: never. */
static void
add_one_line(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;

		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		buf_add(out, &c, 1);
	}
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
quote_line(struct buf *out, const char *s)
{
	buf_adds(out, "> ");
	add_one_line(out, s);
	buf_adds(out, "\n");
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
render_gemtext_home(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	struct buf url = { 0 };

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
	for (size_t i = 0; i < n->n_members; i++)
		member_link(out, &n->members[i], 0);
	buf_adds(out, "\n");
	link_line(out, MEMBERS_PATH, "All member councils and their spokespeople");
	link_line(out, JOIN_PATH, n->join_heading != NULL ? n->join_heading :
	    "Joining the network");
	link_line(out, SEARCH_PATH, "Search the network's members");
	if (*render_atom_latest(n) != '\0')
		link_line(out, FEED_PATH, "Atom feed of the members' statements");
	buf_adds(out, "\n");
	if (n->url != NULL)
		link_line(out, n->url, "The network's web page");
	buf_adds(&url, "gopher://");
	host_port(&url, o->hostname, o->gopher_port, 70);
	buf_adds(&url, "/1/");
	link_line(out, (char *)url.data, "The same site over Gopher");
	buf_free(&url);
}

void
render_gemtext_members(const struct network *n, const struct render_opts *o,
    struct buf *out)
{
	char *title = xasprintf("%s: member councils", or_empty(n->name));

	(void)o;
	/* gemsub: the first "#" heading names the feed, a "##" right after
	 * it is its subtitle. */
	heading(out, "#", title);
	free(title);
	heading(out, "##", "Each council that joined, with its spokesperson");
	buf_adds(out, "\n");
	paragraphs(out, &n->members_intro);
	for (size_t i = 0; i < n->n_members; i++)
		member_link(out, &n->members[i], 1);
	buf_adds(out, "\n");
	if (n->join_heading != NULL)
		link_line(out, JOIN_PATH, n->join_heading);
	link_line(out, SEARCH_PATH, "Search the network's members");
	link_line(out, "/", or_empty(n->name));
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

void
render_gemtext_search(const struct render_opts *o, const char *query,
    const struct search_hit *hits, size_t n, struct buf *out)
{
	char *s;

	(void)o;
	s = xasprintf("Search: %s", query);
	heading(out, "#", s);
	free(s);
	buf_adds(out, "\n");
	if (n == 0) {
		s = xasprintf("No member matches “%s”.", query);
		render_gemtext_text_line(s, out);
		free(s);
		buf_adds(out, "\n");
		link_line(out, SEARCH_PATH, "Try another search");
		link_line(out, "/", "Home");
		return;
	}
	buf_printf(out, "%zu member%s match%s.\n\n", n, n == 1 ? "" : "s",
	    n == 1 ? "es" : "");
	for (size_t i = 0; i < n; i++) {
		s = xasprintf(MEMBERS_PATH "%s.gmi", hits[i].id);
		link_line(out, s, hits[i].name);
		free(s);
		quote_line(out, hits[i].sentence);
		buf_adds(out, "\n");
	}
	link_line(out, SEARCH_PATH, "Search again");
	link_line(out, "/", "Home");
}
