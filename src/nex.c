/*
 * nex.c: one Nex request -> one reply, a pure function of the bytes read and
 * the immutable site, like gopher.c. Nex (nightfall.city/nex): the client
 * sends a path, which may be empty, and a newline; the server sends the
 * document as it is and closes. An empty path or one ending in "/" is a
 * directory, plain text whose "=> " lines are links (site.c rendered them at
 * load, render_nex.c). The path is percent-decoded once and normalised as
 * Gemini's (url.c), so nothing outside the site is reached; Nex has no
 * redirect, so the normalised path is served, and no status, so a path not
 * served gets a one-line text that says so.
 */
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

static const char r_notfound[] = "Not found. The home page is at /.\n";
static const char r_bad[] = "Bad request: send a path and a newline.\n";
static const char r_toolong[] = "Bad request: the path is longer than 1024 bytes.\n";

static void
text(struct reply *out, const char *s, size_t n)
{
	out->data = (const unsigned char *)s;
	out->len = n;
	out->owned = NULL;
	out->status = 3;
}

#define TEXT(out, lit) text((out), (lit), sizeof(lit) - 1)

void
nex_respond(const struct site *s, const unsigned char *req, size_t len,
    struct reply *out)
{
	const unsigned char *lf = memchr(req, '\n', len);
	char raw[NEX_MAX_REQUEST + 1], norm[NEX_MAX_REQUEST + 4];
	const struct resource *r;
	size_t n, dlen, nlen;
	char *dec, *q;

	memset(out, 0, sizeof(*out));
	/* Without a newline: the client closed after its path, or the buffer
	 * filled (too long). */
	n = lf != NULL ? (size_t)(lf - req) : len;
	if (lf == NULL && len >= NEX_MAX_REQUEST) {
		TEXT(out, r_toolong);
		return;
	}
	if (n > 0 && req[n - 1] == '\r')
		n--;
	if (n > GOPHER_MAX_SELECTOR) {
		TEXT(out, r_toolong);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (req[i] < 0x20 || req[i] == 0x7F) {
			TEXT(out, r_bad);
			return;
		}
	memcpy(raw, req, n);
	raw[n] = '\0';
	/* A query means nothing here; the path is what is asked. */
	if ((q = strchr(raw, '?')) != NULL)
		*q = '\0';
	if (url_decode(raw, &dec, &dlen) != 0) {
		TEXT(out, r_bad);
		return;
	}
	nlen = url_normalise_path(dec, dlen, norm);
	free(dec);
	if ((r = site_nex(s, norm)) == NULL && norm[nlen - 1] != '/') {
		/* a directory asked without its slash */
		norm[nlen] = '/';
		norm[nlen + 1] = '\0';
		r = site_nex(s, norm);
	}
	if (r == NULL) {
		TEXT(out, r_notfound);
		return;
	}
	out->data = r->data;
	out->len = r->len;
	out->status = 0;
}
