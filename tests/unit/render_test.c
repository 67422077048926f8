/*
 * render_test.c: what the renderers put around dataset text so that it is
 * never read as markup: gemtext text lines, Gopher menu items and "i" lines,
 * Gopher documents (dot-stuffed), capsule gemtext converted to menus, search
 * queries in links; numbers with separators; and how render_page.c cuts a
 * list into pages of at most RENDER_PAGE_MAX bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const struct render_opts ro = { "localhost", 1965, 70, 0, 0 };

#define INFO "\t\terror.host\t1\r\n"

static void
gemtext_line_cases(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "plain text", "plain text\n" },
		{ "", "\n" },
		{ "# not a heading", " # not a heading\n" },
		{ "#", " #\n" },
		{ "=> gemini://evil/ not a link", " => gemini://evil/ not a link\n" },
		{ "=>x", " =>x\n" },
		{ "=", "=\n" },
		{ "* not a list item", " * not a list item\n" },
		{ "*", " *\n" },
		{ "> not a quote", " > not a quote\n" },
		{ "```", " ```\n" },
		{ "``` x", " ``` x\n" },
		{ "``", "``\n" },
		{ " # already spaced", " # already spaced\n" },
		{ "one\ntwo", "one two\n" },		/* one line, always */
		{ "one\r\ntwo", "one  two\n" },
		{ "a\tb", "a b\n" },
		{ "\n# sneaky", " # sneaky\n" },
		{ "mid # and => stay", "mid # and => stay\n" },
		{ "\xe2\x80\x9cquoted\xe2\x80\x9d", "\xe2\x80\x9cquoted\xe2\x80\x9d\n" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = { 0 };
		char *name = unit_quote(t[i].in, strlen(t[i].in));
		char *n2 = xasprintf("gemtext line %s", name);

		render_gemtext_text_line(t[i].in, &b);
		unit_mem(n2, b.data, b.len, t[i].want, strlen(t[i].want));
		buf_free(&b);
		free(n2);
		free(name);
	}
}

static void
gopher_item_cases(void)
{
	static const struct {
		char        type;
		const char *display, *selector, *want;
	} t[] = {
		{ '1', "Members", "/members", "1Members\t/members\tlocalhost\t70\r\n" },
		{ '0', "Tab\there", "/a", "0Tab here\t/a\tlocalhost\t70\r\n" },
		{ '0', "Line\r\nbreak", "/a", "0Line  break\t/a\tlocalhost\t70\r\n" },
		{ '0', "x", "/sel\tx", "0x\t/sel x\tlocalhost\t70\r\n" },
		{ '7', "", "", "7\t\tlocalhost\t70\r\n" },
		{ 'h', "Web", "URL:https://example.org/",
		  "hWeb\tURL:https://example.org/\tlocalhost\t70\r\n" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = { 0 };
		char *name = unit_quote(t[i].display, strlen(t[i].display));
		char *n2 = xasprintf("gopher item %c %s", t[i].type, name);

		render_gopher_item(&b, t[i].type, t[i].display, t[i].selector,
		    "localhost", 70);
		unit_mem(n2, b.data, b.len, t[i].want, strlen(t[i].want));
		buf_free(&b);
		free(n2);
		free(name);
	}
}

static void
gopher_info_cases(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "Some prose.", "iSome prose." INFO },
		{ "", "i" INFO },
		{ "a\tb", "ia b" INFO },
		{ "a\nb", "ia b" INFO },
		/* wrapped at 70 code points, one "i" line each */
		{ "Locality convenes the Keep it Local Network in partnership with Lloyds "
		  "Bank Foundation.",
		  "iLocality convenes the Keep it Local Network in partnership with Lloyds"
		  INFO "iBank Foundation." INFO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = { 0 };
		char *name = unit_quote(t[i].in, strlen(t[i].in));
		char *n2 = xasprintf("gopher info %s", name);

		render_gopher_info(&b, t[i].in, &ro);
		unit_mem(n2, b.data, b.len, t[i].want, strlen(t[i].want));
		buf_free(&b);
		free(n2);
		free(name);
	}
}

/* A member's Gopher document: lines of at most 70 columns, CRLF, a line
 * starting with "." doubled so that it cannot end the document, "." last. */
static void
gopher_document_cases(void)
{
	static char *statement[] = { ".starts with a dot", "..two dots", ". a dot alone" };
	struct member m = {
		.id = "one", .name = "Council One", .spokesperson = "Cllr One",
		.role = "Leader", .statement = { statement, 3 },
	};
	struct network n = { .name = "Test Network", .members = &m, .n_members = 1 };
	struct buf b = { 0 };
	const char *want = "Council One\r\n\r\nCllr One, Leader, said:\r\n\r\n"
	    "..starts with a dot\r\n\r\n...two dots\r\n\r\n.. a dot alone\r\n\r\n"
	    "A member of the Test Network.\r\n.\r\n";

	render_gopher_member(&n, &m, &ro, &b);
	unit_mem("a document's dots", b.data, b.len, want, strlen(want));
	buf_free(&b);
}

static void
from_gemtext_cases(void)
{
	static const struct {
		const char *name, *gmi, *want;
	} t[] = {
		{ "text", "Hello\n", "iHello" INFO ".\r\n" },
		{ "heading", "## Members\n", "iMembers" INFO ".\r\n" },
		{ "link out", "=> https://example.org/ The web\n",
		  "hThe web\tURL:https://example.org/\tlocalhost\t70\r\n.\r\n" },
		{ "link without a label", "=> https://example.org/\n",
		  "hhttps://example.org/\tURL:https://example.org/\tlocalhost\t70\r\n.\r\n" },
		{ "gopher link", "=> gopher://example.org:7070/0/a.txt A\n",
		  "0A\t/a.txt\texample.org\t7070\r\n.\r\n" },
		{ "an empty link line", "=>\n", "i=>" INFO ".\r\n" },
		{ "preformatted", "```\n  two  spaces\n```\n", "i  two  spaces" INFO ".\r\n" },
		{ "CRLF line ends", "a\r\nb\r\n", "ia" INFO "ib" INFO ".\r\n" },
		{ "a NUL byte", "a\0b\n", "ia b" INFO ".\r\n" },
		{ "no final LF", "last", "ilast" INFO ".\r\n" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = { 0 };
		size_t len = strlen(t[i].gmi);

		if (strcmp(t[i].name, "a NUL byte") == 0)
			len = 4;	/* the NUL inside, not the one after */
		render_gopher_from_gemtext((const unsigned char *)t[i].gmi, len, &ro, &b);
		unit_mem(t[i].name, b.data, b.len, t[i].want, strlen(t[i].want));
		buf_free(&b);
	}
}

static void
query_and_count_cases(void)
{
	static const struct {
		const char *in, *want;
	} q[] = {
		{ "hackney", "hackney" },
		{ "a b", "a%20b" },
		{ "-._~", "-._~" },
		{ "a/b?c&d=e#f", "a%2Fb%3Fc%26d%3De%23f" },
		{ "+%", "%2B%25" },
		{ "\xc3\xa9", "%C3%A9" },
	};
	static const struct {
		size_t      n;
		const char *want;
	} c[] = {
		{ 0, "0" }, { 7, "7" }, { 999, "999" }, { 1000, "1,000" },
		{ 12345, "12,345" }, { 100000, "100,000" }, { 1234567, "1,234,567" },
	};

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		struct buf b = { 0 };
		char *name = xasprintf("query \"%s\"", q[i].in);

		render_query(&b, q[i].in);
		unit_mem(name, b.data, b.len, q[i].want, strlen(q[i].want));
		buf_free(&b);
		free(name);
	}
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct buf b = { 0 };
		char *name = xasprintf("count %zu", c[i].n);

		render_count(&b, c[i].n);
		unit_mem(name, b.data, b.len, c[i].want, strlen(c[i].want));
		buf_free(&b);
		free(name);
	}
}

/* render_cut_pages on n items of the sizes given: the first item of each page. */
static char *
cut(const size_t *sizes, size_t n, size_t frame1, size_t frame)
{
	size_t *off = xcalloc(n + 1, sizeof(*off)), *first = xcalloc(n + 1, sizeof(*first));
	size_t pages;
	struct buf b = { 0 };

	for (size_t i = 0; i < n; i++)
		off[i + 1] = off[i] + sizes[i];
	pages = render_cut_pages(off, n, frame1, frame, first);
	buf_printf(&b, "%zu:", pages);
	for (size_t p = 0; p <= pages; p++)
		buf_printf(&b, " %zu", first[p]);
	buf_add(&b, "", 1);
	free(off);
	free(first);
	return (char *)b.data;
}

static void
paging_cases(void)
{
	/* A page holds RENDER_PAGE_MAX less RENDER_HEADER_ROOM: 8128 bytes. */
	static const size_t k[20] = { 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
	    1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 };
	static const size_t fit[2] = { 4064, 4064 }, over[2] = { 4064, 4065 };
	static const size_t huge[3] = { 9000, 10, 9000 };
	char *got;

	got = cut(k, 0, 0, 0);
	unit_str("no items", got, "0: 0");
	free(got);
	got = cut(k, 8, 0, 0);
	unit_str("8 of 1000 bytes, no frame", got, "1: 0 8");
	free(got);
	got = cut(k, 9, 0, 0);
	unit_str("9 of 1000 bytes, no frame", got, "2: 0 8 9");
	free(got);
	got = cut(k, 20, 500, 300);
	unit_str("20 of 1000 bytes, frames 500 and 300", got, "3: 0 7 14 20");
	free(got);
	got = cut(fit, 2, 0, 0);
	unit_str("two halves that fit exactly", got, "1: 0 2");
	free(got);
	got = cut(over, 2, 0, 0);
	unit_str("one byte over", got, "2: 0 1 2");
	free(got);
	got = cut(huge, 3, 0, 0);
	unit_str("items larger than a page: one each", got, "3: 0 1 2 3");
	free(got);
	got = cut(k, 3, 9000, 9000);
	unit_str("a frame larger than a page", got, "3: 0 1 2 3");
	free(got);
}

void
unit_render(void)
{
	gemtext_line_cases();
	gopher_item_cases();
	gopher_info_cases();
	gopher_document_cases();
	from_gemtext_cases();
	query_and_count_cases();
	paging_cases();
}
