/*
 * gemini_test.c: gemini.c's request parsing, through gemini_respond on the
 * site of the shipped config (hostname localhost, ports 1965): the framing of
 * the line, its bytes, the URL's form, whether it is served here, and the
 * path's normalisation (a redirect) and lookup. Each case is one request line
 * and the header it must get.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const struct {
	const char *req;
	const char *head;	/* the reply's first line, CRLF cut */
} cases[] = {
	/* framing (spec section 2) */
	{ "", "59 Empty request: send an absolute gemini:// URL" },
	{ "\r\n", "59 Empty request: send an absolute gemini:// URL" },
	{ "gemini://localhost/", "59 Request must end with CRLF" },
	{ "gemini://localhost/\n", "59 Request must end with CRLF, not a bare LF" },
	/* bytes */
	{ "\xef\xbb\xbfgemini://localhost/\r\n",
	  "59 Request must not start with a byte order mark" },
	{ "gemini://localhost/\x01\r\n", "59 Control character in request" },
	{ "gemini://localhost/\x7f\r\n", "59 Control character in request" },
	{ "gemini://localhost/a b\r\n", "59 Spaces in a URL must be percent-encoded" },
	{ "gemini://localhost/\xff\r\n", "59 Request is not valid UTF-8" },
	{ "gemini://localhost/\xc3\r\n", "59 Request is not valid UTF-8" },
	/* the URL's form */
	{ "/\r\n", "59 Relative URL: send an absolute gemini:// URL" },
	{ "localhost/\r\n", "59 Relative URL: send an absolute gemini:// URL" },
	{ "gemini://user@localhost/\r\n", "59 URLs with userinfo are not accepted" },
	{ "gemini://localhost/#top\r\n", "59 URLs with a fragment are not accepted" },
	{ "gemini://localhost:99999/\r\n", "59 Malformed URL" },
	{ "gemini:///\r\n", "59 URL has no host" },
	/* served here? */
	{ "https://localhost/\r\n", "53 Only gemini:// URLs are served here" },
	{ "gopher://localhost/\r\n", "53 Only gemini:// URLs are served here" },
	{ "titan://localhost/x;size=1\r\n", "53 Uploads (titan://) are not enabled here" },
	{ "gemini://example.org/\r\n", "53 Host not served here" },
	{ "gemini://[::1]/\r\n", "53 IP address hosts are not served here" },
	{ "gemini://localhost:1966/\r\n", "53 Port not served here" },
	{ "gemini://LOCALHOST/\r\n", "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost./\r\n", "20 text/gemini; charset=utf-8; lang=en" },
	{ "GEMINI://localhost/\r\n", "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost:1965/\r\n", "20 text/gemini; charset=utf-8; lang=en" },
	/* paths: one URL for each resource */
	{ "gemini://localhost\r\n", "31 gemini://localhost/" },
	{ "gemini://localhost:1965\r\n", "31 gemini://localhost:1965/" },
	{ "gemini://localhost/./\r\n", "31 gemini://localhost/" },
	{ "gemini://localhost//members/\r\n", "31 gemini://localhost/members/" },
	{ "gemini://localhost/members\r\n", "31 gemini://localhost/members/" },
	{ "gemini://localhost/members/../join.gmi\r\n", "31 gemini://localhost/join.gmi" },
	{ "gemini://localhost/../../etc/passwd\r\n", "31 gemini://localhost/etc/passwd" },
	{ "gemini://localhost/%2e%2e/x\r\n", "31 gemini://localhost/x" },
	{ "gemini://localhost/a%20b/../\r\n", "31 gemini://localhost/" },
	{ "gemini://localhost/%00\r\n", "59 Percent-encoded NUL in path" },
	{ "gemini://localhost/members/\r\n", "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost/members/hackney.gmi\r\n",
	  "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost/members/%68ackney.gmi\r\n",
	  "20 text/gemini; charset=utf-8; lang=en" },	/* decoded once */
	{ "gemini://localhost/members/Hackney.gmi\r\n", "51 Not found" },
	{ "gemini://localhost/nothing-here\r\n", "51 Not found" },
	{ "gemini://localhost/robots.txt\r\n", "20 text/plain; charset=utf-8" },
	{ "gemini://localhost/about.gmi?ignored\r\n", "20 text/gemini; charset=utf-8" },
	/* search: the query, the pages */
	{ "gemini://localhost/search\r\n", "10 Search the network's members" },
	{ "gemini://localhost/search?hackney\r\n",
	  "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost/search?%00\r\n", "59 Percent-encoded NUL in query" },
	{ "gemini://localhost/search?%0a\r\n", "59 Control character in query" },
	{ "gemini://localhost/search?%ff\r\n", "59 Query is not valid UTF-8" },
	{ "gemini://localhost/search/page/2\r\n", "31 gemini://localhost/search" },
	{ "gemini://localhost/search/page/2?council\r\n",
	  "20 text/gemini; charset=utf-8; lang=en" },
	{ "gemini://localhost/search/page/02?council\r\n", "51 Not found" },
	{ "gemini://localhost/search/page/1?council\r\n", "51 Not found" },
};

/* Requests of 1024 bytes of URL pass the length check; 1025 do not. */
static void
length_cases(const struct site *s)
{
	static const struct {
		size_t      urllen;
		const char *head;
	} t[] = {
		{ 1024, "51 Not found" },
		{ 1025, "59 Request URL longer than 1024 bytes" },
		{ 2000, "59 Request URL longer than 1024 bytes" },
	};
	const char *prefix = "gemini://localhost/";

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *req = xmalloc(t[i].urllen + 2), *name, *head;
		struct reply r = { 0 };

		memcpy(req, prefix, strlen(prefix));
		memset(req + strlen(prefix), 'a', t[i].urllen - strlen(prefix));
		memcpy(req + t[i].urllen, "\r\n", 2);
		gemini_respond(s, "localhost", (unsigned char *)req, t[i].urllen + 2, &r);
		head = unit_reply_head(&r);
		name = xasprintf("a URL of %zu bytes", t[i].urllen);
		unit_str(name, head, t[i].head);
		free(name);
		free(head);
		reply_free(&r);
		free(req);
	}
}

void
unit_gemini(void)
{
	const struct site *s = unit_site();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r = { 0 };
		char *head, *name = unit_quote(cases[i].req, strlen(cases[i].req));
		int status;

		gemini_respond(s, "localhost", (const unsigned char *)cases[i].req,
		    strlen(cases[i].req), &r);
		head = unit_reply_head(&r);
		/* The status must be the header's own two digits. */
		status = strlen(head) >= 2 ? (head[0] - '0') * 10 + head[1] - '0' : -1;
		if (status != r.status)
			unit_ok(name, 0, "status %d, header %s", r.status, head);
		else
			unit_str(name, head, cases[i].head);
		free(head);
		free(name);
		reply_free(&r);
	}
	length_cases(s);
}
