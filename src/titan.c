/*
 * titan.c: a worker's side of editing. gemini.c hands over what it marks as
 * an editing request (a titan:// upload, or a page only editors read); here
 * the client's certificate is checked against server.editors, then the URL's
 * Titan parameters (size, mime) and the path. A request that passes becomes a
 * struct edit_req: conn.c reads an upload's body into it and sends it to the
 * editing process (editchan.c), which checks and stores it (editor.c). Nothing here writes.
 *
 * Titan (gemini://transjovian.org/titan): titan://HOST[:PORT]/PATH;size=N;
 * mime=TYPE[;token=T] CRLF, then exactly N bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server.h"

#define R_NOCERT   "60 Editing needs a client certificate\r\n"
#define R_NOTED    "61 This certificate is not an editor's (server.editors)\r\n"
#define R_NOSIZE   "59 Titan upload without ;size=N\r\n"
#define R_BADPARAM "59 Titan parameters are ;size=N;mime=TYPE;token=T\r\n"
#define R_EMPTY    "59 An empty upload (size=0) deletes nothing here\r\n"
#define R_PATH     "59 Not an editable path: /network.conf or a capsule file\r\n"
#define R_MALFORM  "59 Malformed URL\r\n"

static void
say(struct reply *out, const char *lit)
{
	out->data = (const unsigned char *)lit;
	out->len = strlen(lit);
	out->owned = NULL;
	out->status = (lit[0] - '0') * 10 + (lit[1] - '0');
	out->edit = 0;
}

static void
sayf(struct reply *out, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	say(out, p);
	out->owned = (unsigned char *)p;
}

/* The SHA-256 of the client's certificate (DER) in 64 hex digits; -1: none. */
static int
peer_fingerprint(SSL *ssl, char *fp)
{
	X509 *x = SSL_get1_peer_certificate(ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (x == NULL)
		return -1;
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		X509_free(x);
		return -1;
	}
	X509_free(x);
	for (unsigned int i = 0; i < n; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* A capsule path an upload may name: segments of printable characters, none
 * hidden (".x", which the capsule does not serve), no folder at the end. */
static int
capsule_path_ok(const char *p)
{
	const char *seg = p;

	if (p[0] != '/' || p[1] == '\0' || p[strlen(p) - 1] == '/')
		return 0;
	for (const char *q = p + 1; ; q++) {
		if (*q == '/' || *q == '\0') {
			if (q == seg + 1 || seg[1] == '.')
				return 0;
			if (*q == '\0')
				return 1;
			seg = q;
		} else if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '\\') {
			return 0;
		}
	}
}

/* ";size=N;mime=T;token=X" into e; the reply to give, or NULL. */
static const char *
titan_params(char *params, const struct config *cfg, struct edit_req *e,
    struct reply *out)
{
	char *p, *save = NULL;
	int have_size = 0;

	for (p = strtok_r(params, ";", &save); p != NULL;
	    p = strtok_r(NULL, ";", &save)) {
		if (strncmp(p, "size=", 5) == 0) {
			char *end;
			unsigned long long v;

			if (p[5] < '0' || p[5] > '9')
				return R_BADPARAM;
			v = strtoull(p + 5, &end, 10);
			if (*end != '\0')
				return R_BADPARAM;
			if (v > (unsigned long long)cfg->max_upload) {
				sayf(out, "59 Upload of %llu bytes is over the limit of "
				    "%d (server.max_upload)\r\n", v, cfg->max_upload);
				return "";
			}
			e->size = (size_t)v;
			have_size = 1;
		} else if (strncmp(p, "mime=", 5) == 0) {
			free(e->mime);
			e->mime = NULL;	/* url_decode leaves it alone when it fails */
			if (url_decode(p + 5, &e->mime, &(size_t){ 0 }) != 0)
				return R_BADPARAM;
		} else if (strncmp(p, "token=", 6) != 0) {
			return R_BADPARAM;	/* unknown: better refused than guessed */
		}
	}
	if (!have_size)
		return R_NOSIZE;
	if (e->size == 0)
		return R_EMPTY;
	return NULL;
}

int
titan_request(const struct config *cfg, SSL *ssl, const unsigned char *req,
    size_t len, struct edit_req *e, struct reply *out)
{
	char fp[65];

	memset(e, 0, sizeof(*e));
	if (ssl == NULL || peer_fingerprint(ssl, fp) == -1) {
		say(out, R_NOCERT);
		return -1;
	}
	if (!config_is_editor(cfg, fp)) {
		say(out, R_NOTED);
		return -1;
	}
	if (titan_parse(cfg, req, len, e, out) == -1)
		return -1;
	memcpy(e->fp, fp, sizeof(fp));
	return 0;
}

int
titan_parse(const struct config *cfg, const unsigned char *req, size_t len,
    struct edit_req *e, struct reply *out)
{
	char url[GEMINI_MAX_URL + 1], norm[GEMINI_MAX_URL + 3];
	const unsigned char *lf = memchr(req, '\n', len);
	struct evhttp_uri *uri;
	const char *path, *err = NULL;
	char *semi, *dec = NULL, *raw;
	size_t n, dlen;

	memset(e, 0, sizeof(*e));
	/* gemini.c checked the line's framing and bytes. */
	n = lf != NULL ? (size_t)(lf - req) : len;
	while (n > 0 && (req[n - 1] == '\r' || req[n - 1] == '\n'))
		n--;
	if (n > GEMINI_MAX_URL)
		n = GEMINI_MAX_URL;
	memcpy(url, req, n);
	url[n] = '\0';
	if ((uri = evhttp_uri_parse_with_flags(url, EVHTTP_URI_NONCONFORMANT)) ==
	    NULL) {
		say(out, R_MALFORM);
		return -1;
	}
	e->op = strcasecmp(evhttp_uri_get_scheme(uri), "titan") == 0 ?
	    CHAN_STORE : CHAN_READ;
	path = evhttp_uri_get_path(uri);
	raw = xstrdup(path != NULL ? path : "");
	if (e->op == CHAN_STORE) {
		if ((semi = strchr(raw, ';')) == NULL) {
			err = R_NOSIZE;
		} else {
			*semi = '\0';
			err = titan_params(semi + 1, cfg, e, out);
		}
	}
	if (err == NULL && url_decode(raw, &dec, &dlen) != 0)
		err = R_PATH;
	if (err == NULL) {
		/* Normalised paths only: what is checked is what is written. */
		size_t nlen = url_normalise_path(dec, dlen, norm);

		if (nlen != dlen || memcmp(norm, dec, dlen) != 0 ||
		    memchr(dec, '\\', dlen) != NULL)
			err = R_PATH;
		else if (e->op == CHAN_STORE && strcmp(dec, "/" STATE_DATASET) != 0 &&
		    !capsule_path_ok(dec))
			err = R_PATH;
	}
	free(raw);
	evhttp_uri_free(uri);
	if (err != NULL) {
		free(dec);
		free(e->mime);
		e->mime = NULL;
		if (*err != '\0')
			say(out, err);
		return -1;
	}
	e->path = dec;
	if (e->mime == NULL)
		e->mime = xstrdup("");
	if (e->op == CHAN_STORE)
		e->body = xmalloc(e->size);
	return 0;
}

void
titan_send(const struct edit_req *e, uint32_t id, struct buf *out)
{
	struct chan_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.code = (uint32_t)e->op;
	memcpy(m.fp, e->fp, 64);
	m.part[0] = (const unsigned char *)e->path;
	m.n[0] = strlen(e->path);
	m.part[1] = (const unsigned char *)e->mime;
	m.n[1] = strlen(e->mime);
	m.part[2] = e->body;
	m.n[2] = e->op == CHAN_STORE ? e->size : 0;
	chan_pack(out, &m);
}

/* The master's answer as the client's reply: "SS META\r\n" and the body. */
void
titan_reply(const struct chan_msg *m, struct reply *out)
{
	struct buf b = { 0 };
	int status = m->code >= 10 && m->code <= 69 ? (int)m->code : 40;

	buf_printf(&b, "%d ", status);
	/* The meta line stays one line, whatever the master said. */
	for (size_t i = 0; i < m->n[0] && i < GEMINI_MAX_META; i++) {
		unsigned char c = m->part[0][i];

		buf_add(&b, c < 0x20 || c == 0x7f ? (const unsigned char *)" " : &c, 1);
	}
	buf_adds(&b, "\r\n");
	if (status >= 20 && status <= 29 && m->n[1] > 0)
		buf_add(&b, m->part[1], m->n[1]);
	out->data = b.data;
	out->len = b.len;
	out->owned = b.data;
	out->status = status;
	out->edit = 0;
}

void
edit_req_free(struct edit_req *e)
{
	if (e == NULL)
		return;
	free(e->path);
	free(e->mime);
	free(e->body);
	memset(e, 0, sizeof(*e));
}
