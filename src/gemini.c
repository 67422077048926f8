/*
 * gemini.c: one Gemini request line -> one reply, a pure function of the bytes
 * read and the immutable site. conn.c reads the line and sends what we answer;
 * every byte served already sits in the site table, except search results and
 * redirects, which are built here per request. Results come a page at a time:
 * "/search?QUERY", then "/search/page/N?QUERY".
 *
 * Order of checks: the framing of the line (CRLF, length), its bytes (BOM,
 * UTF-8, controls), the URL's syntax (libevent's RFC 3986 parser) and the
 * Gemini rules on top (absolute, no userinfo, no fragment), then whether this
 * server serves it (scheme, host, port), then the path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <unistr.h>

#include "kilnet.h"

/* The port a gemini:// URL without one means (the Gemini specification). */
#define GEMINI_DEFAULT_PORT 1965
#define SEARCH_HEADER "20 text/gemini; charset=utf-8; lang=en\r\n"

/* Static replies: whole headers, so they need no allocation. */
#define R_EMPTY     "59 Empty request: send an absolute gemini:// URL\r\n"
#define R_NOCRLF    "59 Request must end with CRLF\r\n"
#define R_BARELF    "59 Request must end with CRLF, not a bare LF\r\n"
#define R_TOOLONG   "59 Request URL longer than 1024 bytes\r\n"
#define R_BOM       "59 Request must not start with a byte order mark\r\n"
#define R_UTF8      "59 Request is not valid UTF-8\r\n"
#define R_CONTROL   "59 Control character in request\r\n"
#define R_SPACE     "59 Spaces in a URL must be percent-encoded\r\n"
#define R_MALFORMED "59 Malformed URL\r\n"
#define R_RELATIVE  "59 Relative URL: send an absolute gemini:// URL\r\n"
#define R_NOHOST    "59 URL has no host\r\n"
#define R_USERINFO  "59 URLs with userinfo are not accepted\r\n"
#define R_FRAGMENT  "59 URLs with a fragment are not accepted\r\n"
#define R_PATHNUL   "59 Percent-encoded NUL in path\r\n"
#define R_QUERYNUL  "59 Percent-encoded NUL in query\r\n"
#define R_QUERYUTF8 "59 Query is not valid UTF-8\r\n"
#define R_QUERYCTL  "59 Control character in query\r\n"
#define R_LONGREDIR "59 Redirect URL would be longer than 1024 bytes\r\n"
#define R_SCHEME    "53 Only gemini:// URLs are served here\r\n"
#define R_IPHOST    "53 IP address hosts are not served here\r\n"
#define R_HOST      "53 Host not served here\r\n"
#define R_PORT      "53 Port not served here\r\n"
#define R_NOTFOUND  "51 Not found\r\n"
#define R_NOMEM     "40 Server out of memory, try again\r\n"
#define R_NOTITAN   "53 Uploads (titan://) are not enabled here\r\n"

static void         answer(struct reply *, const unsigned char *, size_t);
static const char  *check_line(const unsigned char *, size_t, char *,
			size_t *);
static const char  *check_bytes(const char *, size_t);
static int          host_served(const struct site *, const char *);
static int          port_served(const struct site *, int);
static void         redirect(struct reply *, const struct evhttp_uri *,
			const char *, size_t);
static void         serve_path(const struct site *, const struct evhttp_uri *,
			struct reply *);
static void         search(const struct site *, const char *, size_t,
			struct reply *);
static int          editing(const struct site *, const struct evhttp_uri *,
			const char *, const char *, struct reply *);

#define ANSWER(out, lit) answer((out), (const unsigned char *)(lit), sizeof(lit) - 1)

/* The status is the header's first two digits, whichever reply it is. */
static void
answer(struct reply *out, const unsigned char *data, size_t len)
{
	out->data = data;
	out->len = len;
	out->owned = NULL;
	out->status = 0;
	if (len >= 2 && data[0] >= '0' && data[0] <= '9' &&
	    data[1] >= '0' && data[1] <= '9')
		out->status = (data[0] - '0') * 10 + (data[1] - '0');
}

/*
 * Spec section 2: the request is an absolute URL of at most 1024 bytes followed
 * by CRLF. On success the URL (without CRLF) is copied into url, which holds
 * GEMINI_MAX_URL + 1 bytes, its length into *urllen, and NULL is returned;
 * else the reply to give.
 */
static const char *
check_line(const unsigned char *req, size_t len, char *url, size_t *urllen)
{
	const unsigned char *lf;
	size_t n;

	if (len == 0)
		return R_EMPTY;
	if ((lf = memchr(req, '\n', len)) == NULL)
		return len > GEMINI_MAX_URL + 1 ? R_TOOLONG : R_NOCRLF;
	n = (size_t)(lf - req);
	if (n == 0 || req[n - 1] != '\r')
		return n > GEMINI_MAX_URL + 1 ? R_TOOLONG : R_BARELF;
	n--;
	if (n == 0)
		return R_EMPTY;
	if (n > GEMINI_MAX_URL)
		return R_TOOLONG;
	memcpy(url, req, n);
	url[n] = '\0';
	*urllen = n;
	return NULL;
}

static const char *
check_bytes(const char *url, size_t n)
{
	size_t i;

	if (n >= 3 && memcmp(url, "\xEF\xBB\xBF", 3) == 0)
		return R_BOM;
	/* Controls first: NUL is valid UTF-8 but must not cut the URL short. */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c < 0x20 || c == 0x7F)
			return R_CONTROL;
		if (c == ' ')
			return R_SPACE;
	}
	if (u8_check((const uint8_t *)url, n) != NULL)
		return R_UTF8;
	return NULL;
}

/* Case-insensitive (RFC 3986 3.2.2); one trailing dot names the same host. */
static int
same_host(const char *name, const char *host)
{
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	return strlen(name) == n && strncasecmp(name, host, n) == 0;
}

static int
host_served(const struct site *s, const char *host)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (same_host(s->hosts[i], host))
			return 1;
	return 0;
}

static int
port_served(const struct site *s, int port)
{
	size_t i;

	if (port < 0)
		port = GEMINI_DEFAULT_PORT;
	for (i = 0; i < s->n_ports; i++)
		if (s->ports[i] == port)
			return 1;
	return 0;
}

/*
 * 31 to the same host and port with the decoded path given, encoded again,
 * and the query as asked. The host passed the served check, and the query
 * holds no control bytes, so the header cannot be split.
 */
static void
redirect(struct reply *out, const struct evhttp_uri *uri, const char *dpath,
    size_t dlen)
{
	const char *host = evhttp_uri_get_host(uri);
	const char *query = evhttp_uri_get_query(uri);
	int port = evhttp_uri_get_port(uri);
	char portbuf[16] = "";
	char path[GEMINI_MAX_META + 1];
	size_t hlen = strlen(host), qlen = query ? strlen(query) + 1 : 0;
	size_t meta, len, plen;
	unsigned char *p, *q;
	int elen;

	if ((elen = url_encode_path(dpath, dlen, path, sizeof(path))) < 0) {
		ANSWER(out, R_LONGREDIR);
		return;
	}
	plen = (size_t)elen;
	if (port >= 0)
		snprintf(portbuf, sizeof(portbuf), ":%d", port);
	meta = strlen("gemini://") + hlen + strlen(portbuf) + plen + qlen;
	if (meta > GEMINI_MAX_META) {
		ANSWER(out, R_LONGREDIR);
		return;
	}
	len = 3 + meta + 2;
	if ((p = malloc(len)) == NULL) {
		ANSWER(out, R_NOMEM);
		return;
	}
	q = p;
	q = mempcpy(q, "31 gemini://", strlen("31 gemini://"));
	q = mempcpy(q, host, hlen);
	q = mempcpy(q, portbuf, strlen(portbuf));
	q = mempcpy(q, path, plen);
	if (query != NULL) {
		*q++ = '?';
		q = mempcpy(q, query, qlen - 1);
	}
	memcpy(q, "\r\n", 2);
	answer(out, p, len);
	out->owned = p;
}

static int
is_edit_path(const char *path)
{
	return path != NULL && (strcmp(path, "/" STATE_DATASET) == 0 ||
	    strncmp(path, "/versions/", strlen("/versions/")) == 0);
}

/*
 * Editing (server.editors): Titan uploads, and the pages only editors read
 * (the dataset's source, its versions), go to titan.c, which checks the
 * client's certificate, on the editing hostname; the same pages asked of
 * another hostname are sent there, where a certificate can be asked for.
 * Returns 0 when the request is an ordinary one.
 */
static int
editing(const struct site *s, const struct evhttp_uri *uri, const char *scheme,
    const char *host, struct reply *out)
{
	static char r_titan_host[] = "53 Uploads go to the editing hostname\r\n";
	const char *path = evhttp_uri_get_path(uri);
	int on_edit_host = same_host(s->edit_host, host);
	int port = evhttp_uri_get_port(uri);
	char *to;

	if (strcasecmp(scheme, "titan") == 0) {
		if (!on_edit_host)
			ANSWER(out, r_titan_host);
		else
			out->edit = 1;
		return 1;
	}
	if (!is_edit_path(path))
		return 0;
	if (on_edit_host) {
		out->edit = 1;
		return 1;
	}
	to = port >= 0 ? xasprintf("31 gemini://%s:%d%s\r\n", s->edit_host, port,
	    path) : xasprintf("31 gemini://%s%s\r\n", s->edit_host, path);
	answer(out, (unsigned char *)to, strlen(to));
	out->owned = (unsigned char *)to;
	return 1;
}

/*
 * The path is decoded once and normalised; a path that normalising changes is
 * redirected rather than served, so each resource has one URL, and the lookup
 * only ever sees a clean absolute path into the in-memory site table.
 */
static void
serve_path(const struct site *s, const struct evhttp_uri *uri,
    struct reply *out)
{
	const char *path = evhttp_uri_get_path(uri);
	const char *query;
	const struct resource *r;
	/* normalising adds at most a leading '/'; one more for a trailing '/' */
	char norm[GEMINI_MAX_URL + 3];
	char *dec;
	size_t dlen, nlen, page;

	if (path == NULL || path[0] == '\0') {
		redirect(out, uri, "/", 1);	/* spec: no path means "/" */
		return;
	}
	switch (url_decode(path, &dec, &dlen)) {
	case -1:
		ANSWER(out, R_PATHNUL);
		return;
	case -2:
		ANSWER(out, R_NOMEM);
		return;
	}
	if (dlen > GEMINI_MAX_URL) {		/* decoding never grows it */
		free(dec);
		ANSWER(out, R_TOOLONG);
		return;
	}
	nlen = url_normalise_path(dec, dlen, norm);
	if (nlen != dlen || memcmp(norm, dec, dlen) != 0) {
		free(dec);
		redirect(out, uri, norm, nlen);
		return;
	}
	free(dec);

	query = evhttp_uri_get_query(uri);
	if ((r = site_gemini(s, norm)) == NULL &&
	    (page = site_search_page(norm)) > 1) {
		/* A page of results after the first; without a query, the
		 * search itself (its prompt). */
		if (query != NULL && query[0] != '\0')
			search(s, query, page, out);
		else
			redirect(out, uri, "/search", strlen("/search"));
		return;
	}
	if (r == NULL) {
		/* a folder asked without its slash */
		if (norm[nlen - 1] != '/') {
			norm[nlen] = '/';
			norm[nlen + 1] = '\0';
			if (site_gemini(s, norm) != NULL) {
				redirect(out, uri, norm, nlen + 1);
				return;
			}
		}
		ANSWER(out, R_NOTFOUND);
		return;
	}
	/* A query reaches only a search; other pages ignore it. */
	if (r->search && query != NULL && query[0] != '\0') {
		search(s, query, 1, out);
		return;
	}
	answer(out, r->data, r->len);
}

/* The one page rendered per request: page `page` of the results for a
 * query. */
static void
search(const struct site *s, const char *query, size_t page, struct reply *out)
{
	struct search_page sp;
	struct buf body = { 0 };
	char *q;
	size_t qlen, i;

	switch (url_decode(query, &q, &qlen)) {
	case -1:
		ANSWER(out, R_QUERYNUL);
		return;
	case -2:
		ANSWER(out, R_NOMEM);
		return;
	}
	if (u8_check((const uint8_t *)q, qlen) != NULL) {
		free(q);
		ANSWER(out, R_QUERYUTF8);
		return;
	}
	/* The query is echoed on the results page: no line breaks or escapes. */
	for (i = 0; i < qlen; i++) {
		unsigned char c = (unsigned char)q[i];

		if (c < 0x20 || c == 0x7F) {
			free(q);
			ANSWER(out, R_QUERYCTL);
			return;
		}
	}
	render_gemtext_search_page(&s->ro, q, page, &sp);
	if (search_run(s->search, q, qlen, &sp) < 0) {
		free(q);
		ANSWER(out, R_QUERYUTF8);
		return;
	}
	/* Renderers append to the buffer, so the page lands after the header. */
	buf_adds(&body, SEARCH_HEADER);
	render_gemtext_search(&s->ro, q, &sp, &body);
	free(q);
	answer(out, body.data, body.len);
	out->owned = body.data;
}

void
gemini_respond(const struct site *s, const char *sni, const unsigned char *req,
    size_t len, struct reply *out)
{
	char url[GEMINI_MAX_URL + 1];
	size_t urllen = 0;
	struct evhttp_uri *uri;
	const char *err, *scheme, *host;

	/* The URL's host decides what is served; every host shares one site, so
	 * an SNI naming another host this server serves changes nothing. */
	(void)sni;

	if ((err = check_line(req, len, url, &urllen)) != NULL ||
	    (err = check_bytes(url, urllen)) != NULL) {
		answer(out, (const unsigned char *)err, strlen(err));
		return;
	}
	/* libevent (2.1.12) refuses a port above 65535 as malformed.
	 * NONCONFORMANT: let raw UTF-8 (IRIs, which clients send) through in the
	 * path and query; the bytes were checked above. */
	if ((uri = evhttp_uri_parse_with_flags(url,
	    EVHTTP_URI_NONCONFORMANT)) == NULL) {
		ANSWER(out, R_MALFORMED);
		return;
	}
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	if (scheme == NULL)
		err = R_RELATIVE;
	else if (evhttp_uri_get_userinfo(uri) != NULL)
		err = R_USERINFO;
	else if (evhttp_uri_get_fragment(uri) != NULL)
		err = R_FRAGMENT;
	else if (strcasecmp(scheme, "titan") == 0 && s->edit_host == NULL)
		err = R_NOTITAN;
	else if (strcasecmp(scheme, "gemini") != 0 &&
	    strcasecmp(scheme, "titan") != 0)
		err = R_SCHEME;
	else if (host == NULL || host[0] == '\0')
		err = R_NOHOST;
	else if (host[0] == '[')
		err = R_IPHOST;
	else if (!host_served(s, host))
		err = R_HOST;
	else if (!port_served(s, evhttp_uri_get_port(uri)))
		err = R_PORT;
	if (err != NULL)
		answer(out, (const unsigned char *)err, strlen(err));
	else if (s->edit_host != NULL && editing(s, uri, scheme, host, out))
		;	/* titan.c's, or a reply made */
	else
		serve_path(s, uri, out);
	evhttp_uri_free(uri);
}
