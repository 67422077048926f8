/*
 * render_spartan.c: a generated gemtext page as Spartan serves it. Spartan
 * (spartan.mozz.us) reads text/gemini with one more line type, the prompt
 * "=: URL TEXT", where the reader types input that goes out as the request's
 * data block: the link to the search (Gemini's status 10 prompt) becomes one.
 * The link to the Spartan site itself becomes one to the Gemini site, so the
 * "same site over" links name the other protocols. Called by site.c at load,
 * and by spartan.c on the search results it renders.
 */
#include <string.h>

#include "kilnet.h"

#define SEARCH_LINK "=> /search"

/* 1 when line (n bytes, no LF) is a link to url, the URL then a space or
 * the end. */
static int
links_to(const unsigned char *line, size_t n, const char *url)
{
	size_t u = strlen(url);

	return n >= 3 + u && memcmp(line, "=> ", 3) == 0 &&
	    memcmp(line + 3, url, u) == 0 &&
	    (n == 3 + u || line[3 + u] == ' ' || line[3 + u] == '\t');
}

int
render_spartan_from_gemtext(const unsigned char *gmi, size_t len,
    const struct render_opts *o, struct buf *out)
{
	struct buf self = { 0 }, gem = { 0 };
	size_t i = 0, start = out->len;
	int changed = 0, pre = 0;

	render_site_url(&self, "spartan", o);
	render_site_url(&gem, "gemini", o);
	while (i < len) {
		const unsigned char *lf = memchr(gmi + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - gmi) + 1 : len;
		const unsigned char *line = gmi + i;
		size_t n = end - i, t = n;

		if (t > 0 && line[t - 1] == '\n')
			t--;
		if (t > 0 && line[t - 1] == '\r')
			t--;
		if (t >= 3 && memcmp(line, "```", 3) == 0)
			pre = !pre;
		if (!pre && links_to(line, t, "/search")) {
			buf_adds(out, "=:");
			buf_add(out, line + 2, n - 2);
			changed = 1;
		} else if (!pre && links_to(line, t, (char *)self.data)) {
			buf_adds(out, "=> ");
			buf_adds(out, (char *)gem.data);
			buf_adds(out, " The same site over Gemini\n");
			changed = 1;
		} else {
			buf_add(out, line, n);
		}
		i = end;
	}
	buf_free(&self);
	buf_free(&gem);
	if (!changed)
		out->len = start;
	return changed;
}
