/*
 * spartan.c: one Spartan request -> one reply, a pure function of the bytes
 * read and the immutable site, like gemini.c. Spartan (spartan.mozz.us):
 *
 *   request  = HOST SP PATH SP CONTENT-LENGTH CRLF [data block]
 *   response = "2 MIME" | "3 PATH" | "4 MESSAGE" | "5 MESSAGE", CRLF, [body]
 *
 * The request line is ASCII; the path is absolute, percent-decoded once and
 * normalised as Gemini's (url.c), and a path that normalising changes is
 * redirected ("3 /path": Spartan redirects stay on the site). Every page is
 * the Gemini page with Spartan's header (site.c built them at load, the
 * search link as a "=:" prompt line). The only input taken is the search's:
 * the data block, or else a URL's query string (a link between pages of
 * results carries the query there, as on Gemini). Data sent to a page that
 * takes none is read and ignored: the page is served.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unistr.h>

#include "kilnet.h"

#define SEARCH_HEADER "2 text/gemini; charset=utf-8; lang=en\r\n"

#define R_EMPTY     "4 Empty request: send HOST PATH CONTENT-LENGTH\r\n"
#define R_NOLF      "4 Request line must end with CRLF\r\n"
#define R_TOOLONG   "4 Request line longer than 1024 bytes\r\n"
#define R_ASCII     "4 Request line is not printable ASCII\r\n"
#define R_FIELDS    "4 Request line must be HOST PATH CONTENT-LENGTH\r\n"
#define R_LENGTH    "4 Content length is not a number\r\n"
#define R_TOOBIG    "4 Data block too large (at most 256 bytes here)\r\n"
#define R_SHORT     "4 Data block shorter than its content length\r\n"
#define R_HOST      "4 Host not served here\r\n"
#define R_PATH      "4 Path must be absolute\r\n"
#define R_PATHNUL   "4 Percent-encoded NUL in path\r\n"
#define R_QUERY     "4 Search query is not valid UTF-8 text\r\n"
#define R_LONGREDIR "4 Redirect path would be too long\r\n"
#define R_NOTFOUND  "4 Not found\r\n"
#define R_NOMEM     "5 Server out of memory, try again\r\n"

struct sp_req {
	const char          *host, *path, *query;  /* in line[], NUL-terminated */
	size_t               clen;                 /* content length */
	const unsigned char *data;                 /* clen bytes */
};

static void         answer(struct reply *, const char *);
static const char  *parse(const unsigned char *, size_t, char *,
			struct sp_req *);
static int          host_served(const struct site *, const char *);
static void         redirect(struct reply *, const char *, size_t,
			const char *);
static void         serve(const struct site *, const struct sp_req *,
			struct reply *);
static void         search(const struct site *, const char *, size_t,
			size_t, struct reply *);

/* The status is the header's first digit. */
static void
answer(struct reply *out, const char *lit)
{
	out->data = (const unsigned char *)lit;
	out->len = strlen(lit);
	out->owned = NULL;
	out->status = lit[0] - '0';
}

/* The line's length through its LF; 0 when there is none. */
static size_t
line_len(const unsigned char *req, size_t len)
{
	const unsigned char *lf = memchr(req, '\n', len);

	return lf != NULL ? (size_t)(lf - req) + 1 : 0;
}

/* A content length: 1 to 9 digits (more is far over any limit). */
static long
parse_length(const char *s)
{
	long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * The request line into line (SPARTAN_MAX_LINE + 1 bytes) split into its
 * three fields; NULL, or the reply to give.
 */
static const char *
parse(const unsigned char *req, size_t len, char *line, struct sp_req *rq)
{
	size_t n = line_len(req, len), t;
	char *sp1, *sp2, *q;
	long clen;

	memset(rq, 0, sizeof(*rq));
	if (len == 0)
		return R_EMPTY;
	if (n == 0)
		return len > SPARTAN_MAX_LINE ? R_TOOLONG : R_NOLF;
	t = n - 1;
	/* CRLF, as the specification says; a bare LF (netcat) is taken too. */
	if (t > 0 && req[t - 1] == '\r')
		t--;
	if (t == 0)
		return R_EMPTY;
	if (t > SPARTAN_MAX_LINE)
		return R_TOOLONG;
	for (size_t i = 0; i < t; i++)
		if (req[i] < 0x20 || req[i] > 0x7E)
			return R_ASCII;
	memcpy(line, req, t);
	line[t] = '\0';
	if ((sp1 = strchr(line, ' ')) == NULL ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL || strchr(sp2 + 1, ' ') != NULL ||
	    sp1 == line || sp2 == sp1 + 1)
		return R_FIELDS;
	*sp1 = *sp2 = '\0';
	rq->host = line;
	rq->path = sp1 + 1;
	if ((clen = parse_length(sp2 + 1)) < 0)
		return R_LENGTH;
	if (clen > SPARTAN_MAX_DATA)
		return R_TOOBIG;
	if (len - n < (size_t)clen)
		return R_SHORT;
	rq->clen = (size_t)clen;
	rq->data = req + n;
	if (rq->path[0] != '/')
		return R_PATH;
	if ((q = strchr(sp1 + 1, '?')) != NULL) {
		*q = '\0';
		rq->query = q + 1;
	}
	return NULL;
}

long
spartan_need(const unsigned char *req, size_t len)
{
	char line[SPARTAN_MAX_LINE + 1];
	size_t n = line_len(req, len);
	const unsigned char *sp;
	long clen;
	size_t t, k;

	if (n == 0)
		return -1;
	t = n - 1;
	if (t > 0 && req[t - 1] == '\r')
		t--;
	if (t > SPARTAN_MAX_LINE)
		return -1;
	/* The last field of the line is the length. */
	sp = t > 0 ? memrchr(req, ' ', t) : NULL;
	if (sp == NULL)
		return -1;
	k = t - (size_t)(sp + 1 - req);
	memcpy(line, sp + 1, k);
	line[k] = '\0';
	if ((clen = parse_length(line)) < 0 || clen > SPARTAN_MAX_DATA)
		return -1;
	return (long)n + clen;
}

/* Case-insensitive; one trailing dot names the same host; a ":PORT" (the
 * specification says to leave it out) is let through. */
static int
host_served(const struct site *s, const char *host)
{
	size_t n = strcspn(host, ":");

	if (host[n] == ':' && (host[n + 1] == '\0' ||
	    strspn(host + n + 1, "0123456789") != strlen(host + n + 1)))
		return 0;
	if (n > 0 && host[n - 1] == '.')
		n--;
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strlen(s->hosts[i]) == n && strncasecmp(s->hosts[i], host, n) == 0)
			return 1;
	return 0;
}

/* "3 PATH" to the decoded path, encoded again, with the query as asked. */
static void
redirect(struct reply *out, const char *dpath, size_t dlen, const char *query)
{
	char path[SPARTAN_MAX_LINE + 1];
	int elen;
	char *p;

	if ((elen = url_encode_path(dpath, dlen, path, sizeof(path))) < 0) {
		answer(out, R_LONGREDIR);
		return;
	}
	p = query != NULL ? xasprintf("3 %s?%s\r\n", path, query) :
	    xasprintf("3 %s\r\n", path);
	if (strlen(p) > SPARTAN_MAX_LINE + 4) {
		free(p);
		answer(out, R_LONGREDIR);
		return;
	}
	out->data = (unsigned char *)p;
	out->len = strlen(p);
	out->owned = (unsigned char *)p;
	out->status = 3;
}

/* The search's input: the data block, else the URL's (decoded) query. 1
 * with a malloc'd *q (possibly ""), 0 for none, -1 not acceptable. */
static int
query_of(const struct sp_req *rq, char **q, size_t *qlen)
{
	if (rq->clen > 0) {
		*q = xmalloc(rq->clen + 1);
		memcpy(*q, rq->data, rq->clen);
		(*q)[rq->clen] = '\0';
		*qlen = rq->clen;
	} else if (rq->query != NULL && rq->query[0] != '\0') {
		if (url_decode(rq->query, q, qlen) != 0)
			return -1;
	} else {
		return 0;
	}
	/* Echoed on the results page: valid UTF-8, no line breaks or NUL. */
	if (u8_check((const uint8_t *)*q, *qlen) != NULL)
		goto bad;
	for (size_t i = 0; i < *qlen; i++)
		if ((unsigned char)(*q)[i] < 0x20 || (*q)[i] == 0x7F)
			goto bad;
	return 1;
bad:
	free(*q);
	*q = NULL;
	return -1;
}

static void
serve(const struct site *s, const struct sp_req *rq, struct reply *out)
{
	char norm[SPARTAN_MAX_LINE + 3];
	const struct resource *r;
	size_t dlen, nlen, page, qlen = 0;
	char *dec, *q = NULL;
	int hasq;

	switch (url_decode(rq->path, &dec, &dlen)) {
	case -1:
		answer(out, R_PATHNUL);
		return;
	case -2:
		answer(out, R_NOMEM);
		return;
	}
	nlen = url_normalise_path(dec, dlen, norm);
	if (nlen != dlen || memcmp(norm, dec, dlen) != 0) {
		free(dec);
		redirect(out, norm, nlen, rq->query);
		return;
	}
	free(dec);
	r = site_spartan(s, norm);
	page = r == NULL ? site_search_page(norm) : 0;
	if ((r != NULL && r->search) || page > 1) {
		if ((hasq = query_of(rq, &q, &qlen)) < 0) {
			answer(out, R_QUERY);
			return;
		}
		if (hasq > 0 && qlen > 0) {
			search(s, q, qlen, r != NULL ? 1 : page, out);
			free(q);
			return;
		}
		free(q);
		if (r == NULL) {
			redirect(out, "/search", strlen("/search"), NULL);
			return;
		}
	}
	if (r == NULL) {
		/* a folder asked without its slash */
		if (norm[nlen - 1] != '/') {
			norm[nlen] = '/';
			norm[nlen + 1] = '\0';
			if (site_spartan(s, norm) != NULL) {
				redirect(out, norm, nlen + 1, NULL);
				return;
			}
		}
		answer(out, R_NOTFOUND);
		return;
	}
	out->data = r->data;
	out->len = r->len;
	out->status = 2;
}

/* A page of results: Gemini's, with Spartan's header and prompt line. */
static void
search(const struct site *s, const char *q, size_t qlen, size_t page,
    struct reply *out)
{
	struct search_page sp;
	struct buf gmi = { 0 }, body = { 0 };

	render_gemtext_search_page(&s->ro, q, page, &sp);
	if (search_run(s->search, q, qlen, &sp) < 0) {
		answer(out, R_QUERY);
		return;
	}
	render_gemtext_search(&s->ro, q, &sp, &gmi);
	buf_adds(&body, SEARCH_HEADER);
	if (!render_spartan_from_gemtext(gmi.data, gmi.len, &s->ro, &body))
		buf_add(&body, gmi.data, gmi.len);
	buf_free(&gmi);
	out->data = body.data;
	out->len = body.len;
	out->owned = body.data;
	out->status = 2;
}

void
spartan_respond(const struct site *s, const unsigned char *req, size_t len,
    struct reply *out)
{
	char line[SPARTAN_MAX_LINE + 1];
	struct sp_req rq;
	const char *err;

	memset(out, 0, sizeof(*out));
	if ((err = parse(req, len, line, &rq)) != NULL)
		answer(out, err);
	else if (!host_served(s, rq.host))
		answer(out, R_HOST);
	else if (s->n_spartan == 0)
		answer(out, R_NOTFOUND);
	else
		serve(s, &rq, out);
}
