/*
 * gopher_test.c: gopher.c's selector parsing, through gopher_respond on the
 * site of the shipped config: where the line ends (CRLF, a lone LF, none),
 * the TAB and what follows it (a search query, a Gopher+ marker), the bytes
 * refused, decoding once and normalising, the lookups that forgive a slash,
 * the URL: convention, and what an error menu echoes of a bad selector.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

enum { SERVES, FIRST_LINE, HAS };

static const struct {
	const char *req;
	int         kind;
	const char *want;	/* SERVES: the selector whose bytes come back;
				 * FIRST_LINE: the reply's first line, CRLF cut;
				 * HAS: bytes somewhere in the reply */
} cases[] = {
	/* where the line ends */
	{ "\r\n", SERVES, "" },
	{ "\n", SERVES, "" },
	{ "", SERVES, "" },			/* closed after an empty selector */
	{ "/\r\n", SERVES, "" },
	{ "/members\r\n", SERVES, "/members" },
	{ "/members\n", SERVES, "/members" },
	{ "/members", SERVES, "/members" },	/* closed without a line end */
	{ "/members\r\nmore", SERVES, "/members" },
	/* lookups: a trailing slash, no leading one, percent-encoding, dots */
	{ "/members/\r\n", SERVES, "/members" },
	{ "members\r\n", SERVES, "/members" },
	{ "//members\r\n", SERVES, "/members" },
	{ "/members/hackney.txt\r\n", SERVES, "/members/hackney.txt" },
	{ "/members/%68ackney.txt\r\n", SERVES, "/members/hackney.txt" },
	{ "/members/../join.txt\r\n", SERVES, "/join.txt" },
	{ "/../../join.txt\r\n", SERVES, "/join.txt" },
	{ "caps.txt\r\n", SERVES, "caps.txt" },
	{ "/caps.txt\r\n", SERVES, "caps.txt" },
	{ "/Members\r\n", FIRST_LINE, "3'/Members' does not exist\t\terror.host\t1" },
	{ "/nothing\r\n", FIRST_LINE, "3'/nothing' does not exist\t\terror.host\t1" },
	/* bytes refused, as sent and once decoded */
	{ "/a\x01" "b\r\n", FIRST_LINE,
	  "3Bad selector '/a?b': control character\t\terror.host\t1" },
	{ "/\xff\r\n", FIRST_LINE,
	  "3Bad selector '/?': not valid UTF-8\t\terror.host\t1" },
	{ "/a\\b\r\n", FIRST_LINE,
	  "3Bad selector '/a\\b': backslashes are not allowed\t\terror.host\t1" },
	{ "/a%5cb\r\n", FIRST_LINE,
	  "3Bad selector '/a%5cb': backslashes are not allowed\t\terror.host\t1" },
	{ "/a%00b\r\n", FIRST_LINE, "3Bad selector '/a%00b': NUL byte\t\terror.host\t1" },
	{ "/a%0d%0a\r\n", FIRST_LINE,
	  "3Bad selector '/a%0d%0a': control character\t\terror.host\t1" },
	{ "/%ff\r\n", FIRST_LINE,
	  "3Bad selector '/%ff': not valid UTF-8\t\terror.host\t1" },
	/* the echo of a long selector is cut after 48 code points */
	{ "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
	  FIRST_LINE, "3'/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' does not "
	  "exist\t\terror.host\t1" },
	{ "/\xc3\xa9\xc3\xa9\xc3\xa9\r\n", FIRST_LINE,
	  "3'/\xc3\xa9\xc3\xa9\xc3\xa9' does not exist\t\terror.host\t1" },
	/* Gopher+ markers after the TAB: served as plain Gopher */
	{ "/members\t+\r\n", SERVES, "/members" },
	{ "/members\t$\r\n", SERVES, "/members" },
	{ "/members\t!\r\n", SERVES, "/members" },
	{ "/members\t+text/plain\r\n", SERVES, "/members" },
	/* a query after the TAB: only a search takes it */
	{ "/members\tignored\r\n", SERVES, "/members" },
	{ "/search\thackney\r\n", HAS, "Hackney Council" },
	{ "/search\thackney\t+\r\n", HAS, "Hackney Council" },
	{ "/search\r\n", FIRST_LINE, "iSearch the member councils: their names, "
	  "spokespeople and statements.\t\terror.host\t1" },
	{ "/search\t   \r\n", FIRST_LINE, "iSearch the member councils: their names, "
	  "spokespeople and statements.\t\terror.host\t1" },
	{ "/search\ta\x01\r\n", FIRST_LINE,
	  "3Bad search query: control character\t\terror.host\t1" },
	{ "/search\t\xff\r\n", FIRST_LINE,
	  "3Bad search query: not valid UTF-8\t\terror.host\t1" },
	{ "/search?hackney\r\n", HAS, "Hackney Council" },
	{ "/search/page/2?council\r\n", HAS, "council" },
	{ "/search/page/0?council\r\n", FIRST_LINE,
	  "3'/search/page/0?council' does not exist\t\terror.host\t1" },
	{ "/search?%00\r\n", FIRST_LINE, "3Bad search query: NUL byte\t\terror.host\t1" },
	/* URL: links, for clients without a web browser */
	{ "URL:https://example.org/\r\n", HAS,
	  "<meta http-equiv=\"refresh\" content=\"0; url=https://example.org/\">" },
	{ "URL:https://e.org/?a=<b>&c=\"d'\r\n", HAS,
	  "url=https://e.org/?a=&lt;b&gt;&amp;c=&quot;d&#39;\">" },
	{ "URL:javascript:alert(1)\r\n", FIRST_LINE,
	  "3Bad URL: selector: scheme not allowed\t\terror.host\t1" },
	{ "URL:JavaScript:alert(1)\r\n", FIRST_LINE,
	  "3Bad URL: selector: scheme not allowed\t\terror.host\t1" },
	{ "URL:data:text/html,x\r\n", FIRST_LINE,
	  "3Bad URL: selector: scheme not allowed\t\terror.host\t1" },
	{ "URL:example.org\r\n", FIRST_LINE,
	  "3Bad URL: selector: no URL scheme\t\terror.host\t1" },
	{ "URL:1http://x/\r\n", FIRST_LINE,
	  "3Bad URL: selector: no URL scheme\t\terror.host\t1" },
	{ "URL:https:\r\n", FIRST_LINE,
	  "3Bad URL: selector: no URL scheme\t\terror.host\t1" },
};

/* Selectors of up to 1024 bytes are looked up; longer ones, or a line that
 * fills the buffer with no LF, are refused as too long. */
static void
length_cases(const struct site *s)
{
	static const struct {
		size_t      sel;	/* bytes of selector */
		int         lf;		/* ends in CRLF */
		const char *head;
	} t[] = {
		{ 1024, 1, "3'/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' does "
		  "not exist\t\terror.host\t1" },
		{ 1025, 1, "3Selector too long (at most 1024 bytes)\t\terror.host\t1" },
		{ 2047, 1, "3Selector too long (at most 1024 bytes)\t\terror.host\t1" },
		{ GOPHER_MAX_REQUEST, 0,
		  "3Selector too long (at most 1024 bytes)\t\terror.host\t1" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = t[i].sel + (t[i].lf ? 2 : 0);
		char *req = xmalloc(len), *name, *head;
		struct reply r = { 0 };

		req[0] = '/';
		memset(req + 1, 'x', t[i].sel - 1);
		if (t[i].lf)
			memcpy(req + t[i].sel, "\r\n", 2);
		gopher_respond(s, (unsigned char *)req, len, &r);
		head = unit_reply_head(&r);
		name = xasprintf("a selector of %zu bytes%s", t[i].sel,
		    t[i].lf ? "" : ", no line end");
		unit_str(name, head, t[i].head);
		free(name);
		free(head);
		reply_free(&r);
		free(req);
	}
}

void
unit_gopher(void)
{
	const struct site *s = unit_site();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r = { 0 };
		const struct resource *res;
		char *name = unit_quote(cases[i].req, strlen(cases[i].req)), *head;

		gopher_respond(s, (const unsigned char *)cases[i].req,
		    strlen(cases[i].req), &r);
		/* Served or an error menu; either way bytes, and type 3 for errors. */
		if (r.len == 0 || (r.status == 3) != (r.data[0] == '3')) {
			unit_ok(name, 0, "status %d for a reply starting %c", r.status,
			    r.len ? r.data[0] : '-');
		} else switch (cases[i].kind) {
		case SERVES:
			if ((res = site_gopher(s, cases[i].want)) == NULL)
				unit_ok(name, 0, "the site has no %s", cases[i].want);
			else
				unit_mem(name, r.data, r.len, res->data + res->body_off,
				    res->len - res->body_off);
			break;
		case FIRST_LINE:
			head = unit_reply_head(&r);
			unit_str(name, head, cases[i].want);
			free(head);
			break;
		default:
			unit_ok(name, r.data != NULL && memmem(r.data, r.len,
			    cases[i].want, strlen(cases[i].want)) != NULL,
			    "no \"%s\" in the reply", cases[i].want);
			break;
		}
		free(name);
		reply_free(&r);
	}
	length_cases(s);
}
