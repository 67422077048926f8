/*
 * gopher.c: the Gopher front end (RFC 1436). Turns the bytes of one request line
 * into a reply: a prebuilt menu or document from the site table, search results,
 * the HTML page behind a URL: selector, or an error menu. Pure: no I/O, no
 * globals; conn.c reads the line and writes what this returns. Results come
 * a page at a time: "/search" or "/search/page/N" with the query after a TAB
 * (a type 7 item), or after a "?" (the type 1 items linking the pages: a menu
 * item cannot carry a TAB).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unistr.h>

#include "kilnet.h"

/* Code points of a bad selector echoed in an error line: the menu stays readable
 * (RFC 1436 menus are read on 70-column screens). */
#define GOPHER_ECHO_MAX   48

/* RFC 1436 has no error reply; type 3 lines carry these dummy fields by habit. */
#define ERR_HOST "error.host"
#define ERR_PORT 1

struct request {
	const unsigned char *sel;	/* the selector, not NUL-terminated */
	size_t               sel_len;
	const unsigned char *query;	/* after the first TAB, up to the next; NULL if none */
	size_t               query_len;
	int                  too_long;	/* the buffer filled before any LF */
};

static void	 parse_line(const unsigned char *, size_t, struct request *);
static int	 is_gopher_plus(const unsigned char *, size_t);
static const char *check_bytes(const unsigned char *, size_t);
static const struct resource *lookup(const struct site *, const char *);
static void	 echo_selector(const unsigned char *, size_t, char *, size_t);
static void	 reply_owned(struct reply *, struct buf *, int);
static void	 error_menu(const struct site *, struct reply *, const char *);
static const char *decode_selector(const char *, char *);
static int	 search_link(const struct site *, const char *, struct reply *);
static void	 search_reply(const struct site *, const struct resource *,
		    const unsigned char *, size_t, size_t, struct reply *);
static void	 search_hint(const struct site *, const struct resource *,
		    struct reply *);
static void	 url_page(const struct site *, const char *, struct reply *);
static void	 html_escape(struct buf *, const char *);

void
gopher_respond(const struct site *s, const unsigned char *req, size_t len,
    struct reply *out)
{
	struct request		 rq;
	const struct resource	*r;
	const char		*why;
	char			 raw[GOPHER_MAX_SELECTOR + 1];
	char			 norm[GOPHER_MAX_SELECTOR + 2];
	char			 echo[GOPHER_ECHO_MAX * 4 + 8];
	char			*msg;
	size_t			 page;

	memset(out, 0, sizeof(*out));
	parse_line(req, len, &rq);

	if (rq.too_long || rq.sel_len > GOPHER_MAX_SELECTOR) {
		msg = xasprintf("Selector too long (at most %d bytes)",
		    GOPHER_MAX_SELECTOR);
		error_menu(s, out, msg);
		free(msg);
		return;
	}
	echo_selector(rq.sel, rq.sel_len, echo, sizeof(echo));
	if ((why = check_bytes(rq.sel, rq.sel_len)) != NULL) {
		msg = xasprintf("Bad selector '%s': %s", echo, why);
		error_menu(s, out, msg);
		free(msg);
		return;
	}
	memcpy(raw, rq.sel, rq.sel_len);
	raw[rq.sel_len] = '\0';

	/* The h-type convention: clients without a web browser get a page that
	 * sends a browser on to the URL. The URL is taken as sent, never decoded. */
	if (strncmp(raw, "URL:", 4) == 0) {
		url_page(s, raw + 4, out);
		return;
	}

	/* No selector here holds a backslash; a client sending one is probing for
	 * a DOS-style path, before or after decoding. */
	if (strchr(raw, '\\') != NULL) {
		msg = xasprintf("Bad selector '%s': backslashes are not allowed",
		    echo);
		error_menu(s, out, msg);
		free(msg);
		return;
	}
	/* A link between pages of results: "/search/page/N?QUERY". */
	if (rq.query == NULL && strchr(raw, '?') != NULL &&
	    search_link(s, raw, out))
		return;
	/* Some clients percent-encode selectors; decode exactly once. */
	if ((why = decode_selector(raw, norm)) != NULL) {
		msg = xasprintf("Bad selector '%s': %s", echo, why);
		error_menu(s, out, msg);
		free(msg);
		return;
	}

	if ((r = lookup(s, norm)) == NULL &&
	    (page = site_search_page(norm)) > 1 &&
	    (r = site_gopher(s, "/search")) != NULL && r->search) {
		search_reply(s, r, rq.query, rq.query_len, page, out);
		return;
	}
	if (r == NULL) {
		msg = xasprintf("'%s' does not exist", echo);
		error_menu(s, out, msg);
		free(msg);
		return;
	}
	if (r->search) {
		search_reply(s, r, rq.query, rq.query_len, 1, out);
		return;
	}
	/* Prebuilt bytes, sent as they are: no copy on the hot path. */
	out->data = r->data + r->body_off;
	out->len = r->len - r->body_off;
	out->status = 0;
}

/*
 * A selector as sent -> its decoded, normalised form in norm (which holds
 * GOPHER_MAX_SELECTOR + 2 bytes). NULL, or why the selector is refused.
 */
static const char *
decode_selector(const char *raw, char *norm)
{
	const char	*why;
	char		*dec;
	size_t		 dlen;

	switch (url_decode(raw, &dec, &dlen)) {
	case -2:
		return "server out of memory, try again";
	case -1:
		return "NUL byte";
	}
	why = check_bytes((unsigned char *)dec, dlen);
	if (why == NULL && memchr(dec, '\\', dlen) != NULL)
		why = "backslashes are not allowed";
	if (why == NULL && dlen > GOPHER_MAX_SELECTOR)
		why = "too long";
	if (why == NULL)
		url_normalise_path(dec, dlen, norm);
	free(dec);
	return why;
}

/*
 * raw is "PATH?QUERY": when PATH is a search page and nothing is served
 * under the whole selector (a capsule file may have a "?" in its name),
 * answers with that page of results for QUERY, decoded once, and returns 1.
 */
static int
search_link(const struct site *s, const char *raw, struct reply *out)
{
	const struct resource	*r;
	char			 path[GOPHER_MAX_SELECTOR + 1];
	char			 norm[GOPHER_MAX_SELECTOR + 2];
	const char		*qm = strchr(raw, '?');
	char			*q;
	size_t			 page, qlen;

	if (decode_selector(raw, norm) == NULL && lookup(s, norm) != NULL)
		return 0;
	memcpy(path, raw, (size_t)(qm - raw));
	path[qm - raw] = '\0';
	if (decode_selector(path, norm) != NULL ||
	    (page = site_search_page(norm)) == 0 ||
	    (r = site_gopher(s, "/search")) == NULL || !r->search)
		return 0;
	switch (url_decode(qm + 1, &q, &qlen)) {
	case -2:
		error_menu(s, out, "Server out of memory: try again");
		return 1;
	case -1:
		error_menu(s, out, "Bad search query: NUL byte");
		return 1;
	}
	search_reply(s, r, (unsigned char *)q, qlen, page, out);
	free(q);
	return 1;
}

/*
 * The line ends at the first LF, with or without a CR before it (RFC 1436 asks
 * for CRLF; many clients send a lone LF). No LF and a full buffer: too long. No
 * LF and a short read: the client closed after its selector, serve it.
 */
static void
parse_line(const unsigned char *req, size_t len, struct request *rq)
{
	const unsigned char	*lf, *tab, *end, *q, *qend;

	memset(rq, 0, sizeof(*rq));
	rq->sel = (const unsigned char *)"";
	if (req == NULL)
		return;
	lf = len ? memchr(req, '\n', len) : NULL;
	/* The server never hands over more than GOPHER_MAX_REQUEST bytes; a
	 * longer line is too long whoever calls, so no buffer below can overflow. */
	if ((lf == NULL && len >= GOPHER_MAX_REQUEST) ||
	    (lf != NULL && (size_t)(lf - req) >= GOPHER_MAX_REQUEST)) {
		rq->too_long = 1;
		return;
	}
	end = lf != NULL ? lf : req + len;
	if (end > req && end[-1] == '\r')
		end--;
	if (end == req)
		return;

	tab = memchr(req, '\t', (size_t)(end - req));
	rq->sel = req;
	rq->sel_len = (size_t)((tab != NULL ? tab : end) - req);
	if (tab == NULL)
		return;

	/* After the TAB: a search query, then maybe a Gopher+ marker in a field of
	 * its own. A marker alone (no query) is Gopher+ too; a plain server
	 * answers as if it were absent. */
	q = tab + 1;
	qend = memchr(q, '\t', (size_t)(end - q));
	if (qend == NULL)
		qend = end;
	if (is_gopher_plus(q, (size_t)(qend - q)))
		return;
	rq->query = q;
	rq->query_len = (size_t)(qend - q);
}

/* Gopher+ requests end in "+", "!" or "$", or "+" and a view ("+text/plain"). */
static int
is_gopher_plus(const unsigned char *f, size_t n)
{
	if (n == 0 || (f[0] != '+' && f[0] != '!' && f[0] != '$'))
		return 0;
	return n == 1 || (f[0] == '+' && memchr(f, '/', n) != NULL &&
	    memchr(f, ' ', n) == NULL);
}

/* NULL when the bytes may appear in a selector or query, else why not. */
static const char *
check_bytes(const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\0')
			return "NUL byte";
		if (p[i] < 0x20 || p[i] == 0x7f)
			return "control character";
	}
	if (u8_check(p, n) != NULL)
		return "not valid UTF-8";
	return NULL;
}

/*
 * norm starts with "/" (the root is "/") and may end with one. Tries it as it
 * is, then without the trailing slash, then without the leading one: the table
 * holds "/members" but also "caps.txt", and clients disagree on both.
 */
static const struct resource *
lookup(const struct site *s, const char *norm)
{
	const struct resource	*r;
	char			 alt[GOPHER_MAX_SELECTOR + 2];
	size_t			 n = strlen(norm);

	if (n <= 1)
		return site_gopher(s, "");
	if ((r = site_gopher(s, norm)) != NULL)
		return r;
	memcpy(alt, norm, n + 1);
	if (alt[n - 1] == '/') {
		alt[--n] = '\0';
		if ((r = site_gopher(s, alt)) != NULL)
			return r;
	}
	return site_gopher(s, alt + 1);
}

/* A selector made safe to quote in a menu line: controls and broken UTF-8
 * become '?', and long ones are cut (never inside a UTF-8 sequence). */
static void
echo_selector(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	size_t	i = 0, o = 0, cps = 0;
	ucs4_t	uc;
	int	l;

	while (i < n) {
		if (cps == GOPHER_ECHO_MAX || o + 8 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		l = u8_mbtoucr(&uc, p + i, n - i);
		if (l < 0 || uc < 0x20 || uc == 0x7f || (uc >= 0x80 && uc < 0xa0)) {
			out[o++] = '?';
			i += l > 0 ? (size_t)l : 1;
		} else {
			memcpy(out + o, p + i, (size_t)l);
			o += (size_t)l;
			i += (size_t)l;
		}
		cps++;
	}
	out[o] = '\0';
}

static void
reply_owned(struct reply *out, struct buf *b, int status)
{
	out->owned = b->data;
	out->data = b->data;
	out->len = b->len;
	out->status = status;
}

/* RFC 1436 has no error status: a menu whose type 3 line says what went wrong,
 * and a way back home. */
static void
error_menu(const struct site *s, struct reply *out, const char *what)
{
	struct buf	b = { 0 };

	render_gopher_item(&b, '3', what, "", ERR_HOST, ERR_PORT);
	render_gopher_info(&b, "Selectors are case-sensitive; the home menu "
	    "links to every page on this server.", &s->ro);
	render_gopher_item(&b, '1', "Home", "", s->ro.hostname,
	    s->ro.gopher_port);
	buf_adds(&b, ".\r\n");
	reply_owned(out, &b, 3);
}

/* Page `page` of the results for the query p (n bytes; NULL: none). */
static void
search_reply(const struct site *s, const struct resource *r,
    const unsigned char *p, size_t n, size_t page, struct reply *out)
{
	struct search_page	 sp;
	struct buf		 b = { 0 };
	char			 q[GOPHER_MAX_REQUEST + 1];
	const char		*why;
	char			*msg;

	if (p == NULL)
		n = 0;
	while (n > 0 && p[0] == ' ') {
		p++;
		n--;
	}
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n == 0) {
		search_hint(s, r, out);
		return;
	}
	if ((why = check_bytes(p, n)) != NULL) {
		msg = xasprintf("Bad search query: %s", why);
		error_menu(s, out, msg);
		free(msg);
		return;
	}
	if (n > GOPHER_MAX_REQUEST) {
		error_menu(s, out, "Bad search query: too long");
		return;
	}
	memcpy(q, p, n);
	q[n] = '\0';
	render_gopher_search_page(&s->ro, q, page, &sp);
	if (search_run(s->search, q, n, &sp) < 0) {
		error_menu(s, out, "Bad search query: not valid UTF-8");
		return;
	}
	render_gopher_search(&s->ro, q, &sp, &b);
	if (b.len == 0)
		buf_adds(&b, ".\r\n");	/* never an empty reply */
	reply_owned(out, &b, 0);
}

/* A type 7 item fetched without a query (a client that did not ask, or a
 * link followed by hand): say how to search instead of failing. */
static void
search_hint(const struct site *s, const struct resource *r, struct reply *out)
{
	struct buf	b = { 0 };

	render_gopher_info(&b, "Search the member councils: their names, "
	    "spokespeople and statements. Open the search item below and type "
	    "a word or phrase, for example \"hackney\" or \"community\".", &s->ro);
	render_gopher_item(&b, '7', "Search the members", r->key,
	    s->ro.hostname, s->ro.gopher_port);
	render_gopher_item(&b, '1', "Home", "", s->ro.hostname,
	    s->ro.gopher_port);
	buf_adds(&b, ".\r\n");
	reply_owned(out, &b, 0);
}

/*
 * The "URL:" selector convention (h items): an HTML page that sends a web
 * browser on to the URL. Scripting and inline-data schemes are refused, as
 * the page would run or show them as if they came from this server.
 */
static void
url_page(const struct site *s, const char *url, struct reply *out)
{
	static const char *const refused[] = { "javascript", "data", "vbscript" };
	struct buf	 b = { 0 };
	const char	*p = url;
	size_t		 i, slen;

	if ((*p < 'a' || *p > 'z') && (*p < 'A' || *p > 'Z')) {
		error_menu(s, out, "Bad URL: selector: no URL scheme");
		return;
	}
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || p[1] == '\0') {
		error_menu(s, out, "Bad URL: selector: no URL scheme");
		return;
	}
	slen = (size_t)(p - url);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (slen == strlen(refused[i]) &&
		    strncasecmp(url, refused[i], slen) == 0) {
			error_menu(s, out, "Bad URL: selector: scheme not allowed");
			return;
		}
	}

	buf_adds(&b, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
	    "<meta http-equiv=\"refresh\" content=\"0; url=");
	html_escape(&b, url);
	buf_adds(&b, "\">\n<title>");
	html_escape(&b, s->network_name != NULL ? s->network_name : KILNET_NAME);
	buf_adds(&b, ": link</title>\n</head>\n<body>\n"
	    "<p>This link leads out of Gopher space, to <a href=\"");
	html_escape(&b, url);
	buf_adds(&b, "\">");
	html_escape(&b, url);
	buf_adds(&b, "</a>.</p>\n<p>Your browser should open it in a moment; "
	    "if not, follow the link.</p>\n</body>\n</html>\n");
	reply_owned(out, &b, 0);
}

static void
html_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':  buf_adds(b, "&amp;");  break;
		case '<':  buf_adds(b, "&lt;");   break;
		case '>':  buf_adds(b, "&gt;");   break;
		case '"':  buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&#39;");  break;
		default:   buf_add(b, s, 1);      break;
		}
	}
}
