/*
 * render_nex.c: a generated gemtext page as a Nex directory. Nex
 * (nightfall.city/nex) sends documents as they are; a directory is plain text
 * in which a line that starts with "=> " is a link. So the page's prose is
 * wrapped at NEX_WRAP_COLUMNS (wrap_text, libunistring's line breaking, as
 * Gopher's), headings and quotes keep their text, and its links stay links,
 * those to this site moved to their Nex paths (render_nex_path). The search
 * needs input, which Nex has no way to send: its link is left out. The link
 * to the Nex site itself becomes one to the Gemini site. Called by site.c
 * once at load.
 */
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

#define MEMBERS_PAGE "/members/page/"

/*
 * Council and join pages ("/members/ID.gmi", "/join.gmi") are Nex text
 * documents at the Gopher documents' paths (".txt"); the member list's later
 * pages ("/members/page/N.gmi") are directories, so they end in "/"; the
 * rest keep their paths.
 */
char *
render_nex_path(const char *path)
{
	size_t n = strlen(path);

	if (n > 4 && strcmp(path + n - 4, ".gmi") == 0) {
		if (strncmp(path, MEMBERS_PAGE, strlen(MEMBERS_PAGE)) == 0)
			return xasprintf("%.*s/", (int)(n - 4), path);
		return xasprintf("%.*s.txt", (int)(n - 4), path);
	}
	return xstrdup(path);
}

struct emit {
	struct buf *out;
	const char *prefix;
};

/* A wrapped line that would start with "=>" is not a link: a space first. */
static void
emit_line(void *arg, const char *line, size_t len)
{
	struct emit *e = arg;

	buf_adds(e->out, e->prefix);
	if (*e->prefix == '\0' && len >= 2 && line[0] == '=' && line[1] == '>')
		buf_adds(e->out, " ");
	buf_add(e->out, line, len);
	buf_adds(e->out, "\n");
}

static void
wrapped(struct buf *out, const char *prefix, const unsigned char *s, size_t n)
{
	struct emit e = { out, prefix };
	char *text = xmalloc(n + 1);

	memcpy(text, s, n);
	text[n] = '\0';
	if (n == 0)
		buf_adds(out, "\n");
	else
		wrap_text(text, NEX_WRAP_COLUMNS - (int)strlen(prefix), emit_line, &e);
	free(text);
}

static int
is_search(const char *url)
{
	size_t n = strlen("/search");

	return strncmp(url, "/search", n) == 0 &&
	    (url[n] == '\0' || url[n] == '?' || url[n] == '/');
}

/* "=> URL TEXT": a link to this site at its Nex path. */
static void
link_line(struct buf *out, const unsigned char *s, size_t n,
    const struct render_opts *o)
{
	size_t i = 2, u;
	char *url, *mapped;
	struct buf self = { 0 };

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (u = i; u < n && s[u] != ' ' && s[u] != '\t'; u++)
		;
	url = xmalloc(u - i + 1);
	memcpy(url, s + i, u - i);
	url[u - i] = '\0';
	while (u < n && (s[u] == ' ' || s[u] == '\t'))
		u++;
	render_site_url(&self, "nex", o);
	if (url[0] == '\0' || is_search(url)) {
		;	/* nothing a Nex client can follow */
	} else if (strcmp(url, (char *)self.data) == 0) {
		buf_adds(out, "=> ");
		render_site_url(out, "gemini", o);
		buf_adds(out, " The same site over Gemini\n");
	} else {
		mapped = url[0] == '/' ? render_nex_path(url) : xstrdup(url);
		buf_printf(out, "=> %s", mapped);
		if (u < n) {
			buf_adds(out, " ");
			buf_add(out, s + u, n - u);
		}
		buf_adds(out, "\n");
		free(mapped);
	}
	buf_free(&self);
	free(url);
}

void
render_nex_from_gemtext(const unsigned char *gmi, size_t len,
    const struct render_opts *o, struct buf *out)
{
	size_t i = 0;
	int pre = 0;

	while (i < len) {
		const unsigned char *lf = memchr(gmi + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - gmi) : len;
		const unsigned char *s = gmi + i;
		size_t n = end - i, h;

		if (n > 0 && s[n - 1] == '\r')
			n--;
		i = end + 1;
		if (n >= 3 && memcmp(s, "```", 3) == 0) {
			pre = !pre;
			continue;
		}
		if (pre) {
			buf_add(out, s, n);
			buf_adds(out, "\n");
		} else if (n >= 2 && s[0] == '=' && s[1] == '>') {
			link_line(out, s, n, o);
		} else if (n >= 1 && s[0] == '#') {
			for (h = 0; h < n && s[h] == '#'; h++)
				;
			while (h < n && (s[h] == ' ' || s[h] == '\t'))
				h++;
			wrapped(out, "", s + h, n - h);
		} else if (n >= 1 && s[0] == '>') {
			h = n >= 2 && s[1] == ' ' ? 2 : 1;
			wrapped(out, "> ", s + h, n - h);
		} else {
			wrapped(out, "", s, n);
		}
	}
}
