/*
 * spartan_test.c: spartan.c and nex.c through spartan_respond and
 * nex_respond on the site of the shipped config with both protocols on: the
 * request line's framing and fields, the content length and the data block
 * (spartan_need), the host, decoding and normalising, redirects, the search;
 * Nex's paths, directories and refusals.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* The shipped config with Spartan and Nex listening: on there (ports 300 and
 * 1900), and put on here should it ever turn them off. */
static struct site *
light_site(void)
{
	static struct config cfg;
	static struct site *site;
	struct diag d = { 0 };

	if (site != NULL)
		return site;
	if (config_load(KILNET_ROOT "/conf/kilnet.conf", &cfg, &d) == -1) {
		diag_print(&d, "unit: ");
		exit(2);
	}
	if (cfg.n_spartan_listen == 0) {
		cfg.spartan_listen = xcalloc(1, sizeof(*cfg.spartan_listen));
		cfg.spartan_listen[0].host = xstrdup("127.0.0.1");
		cfg.spartan_listen[0].port = 300;
		cfg.n_spartan_listen = 1;
	}
	if (cfg.n_nex_listen == 0) {
		cfg.nex_listen = xcalloc(1, sizeof(*cfg.nex_listen));
		cfg.nex_listen[0].host = xstrdup("127.0.0.1");
		cfg.nex_listen[0].port = 1900;
		cfg.n_nex_listen = 1;
	}
	config_finish(&cfg);
	if ((site = site_build(&cfg, &d)) == NULL) {
		diag_print(&d, "unit: ");
		exit(2);
	}
	diag_clear(&d);
	return site;
}

#define PAGE "2 text/gemini; charset=utf-8; lang=en"

static const struct {
	const char *req;
	const char *head;	/* the reply's first line, CRLF cut */
	const char *has;	/* NULL, or bytes somewhere in the reply */
} sp_cases[] = {
	{ "localhost / 0\r\n", PAGE, "=: /search Search the network's members" },
	{ "localhost / 0\n", PAGE, NULL },
	{ "localhost / 0\r\nignored", PAGE, NULL },
	{ "LocalHost. / 0\r\n", PAGE, NULL },
	{ "localhost:300 / 0\r\n", PAGE, NULL },
	{ "localhost /members/hackney.gmi 0\r\n", PAGE, "Hackney Council" },
	{ "localhost /members/%68ackney.gmi 0\r\n", PAGE, "Hackney Council" },
	{ "localhost /members/../join.gmi 0\r\n", "3 /join.gmi", NULL },
	{ "localhost /members 0\r\n", "3 /members/", NULL },
	{ "localhost /a/../ 0\r\n", "3 /", NULL },
	{ "localhost /nothing 0\r\n", "4 Not found", NULL },
	{ "localhost /search 0\r\n", PAGE, "=: /search " },
	{ "localhost /search 7\r\nhackney", PAGE, "/members/hackney.gmi" },
	{ "localhost /search?hackney 0\r\n", PAGE, "/members/hackney.gmi" },
	{ "localhost /search?%68ackney 0\r\n", PAGE, "/members/hackney.gmi" },
	{ "localhost /search/page/2 0\r\n", "3 /search", NULL },
	{ "localhost /search/page/2?council 0\r\n", PAGE, NULL },
	{ "localhost /join.gmi 5\r\nhello", PAGE, NULL },
	{ "localhost /search 2\r\n\xff\xfe", "4 Search query is not valid UTF-8 text", NULL },
	{ "localhost /search?%00 0\r\n", "4 Search query is not valid UTF-8 text", NULL },
	{ "localhost /search 8\r\nhack", "4 Data block shorter than its content length", NULL },
	{ "", "4 Empty request: send HOST PATH CONTENT-LENGTH", NULL },
	{ "\r\n", "4 Empty request: send HOST PATH CONTENT-LENGTH", NULL },
	{ "localhost / 0", "4 Request line must end with CRLF", NULL },
	{ "localhost / x\r\n", "4 Content length is not a number", NULL },
	{ "localhost / -0\r\n", "4 Content length is not a number", NULL },
	{ "localhost / \r\n", "4 Content length is not a number", NULL },
	{ "localhost / 1234567890\r\n", "4 Content length is not a number", NULL },
	{ "localhost / 257\r\n", "4 Data block too large (at most 256 bytes here)", NULL },
	{ "localhost /\t 0\r\n", "4 Request line is not printable ASCII", NULL },
	{ "localhost /\xc3\xa9 0\r\n", "4 Request line is not printable ASCII", NULL },
	{ "localhost  / 0\r\n", "4 Request line must be HOST PATH CONTENT-LENGTH", NULL },
	{ "localhost / 0 0\r\n", "4 Request line must be HOST PATH CONTENT-LENGTH", NULL },
	{ "example.org / 0\r\n", "4 Host not served here", NULL },
	{ "localhost:x / 0\r\n", "4 Host not served here", NULL },
	{ "localhost: / 0\r\n", "4 Host not served here", NULL },
	{ "localhost * 0\r\n", "4 Path must be absolute", NULL },
	{ "localhost /%00 0\r\n", "4 Percent-encoded NUL in path", NULL },
};

static const struct {
	const char *req;
	long        need;
} need_cases[] = {
	{ "localhost / 0\r\n", 15 },
	{ "localhost /search 7\r\n", 21 + 7 },
	{ "localhost /search 256\n", 22 + 256 },
	{ "localhost /search 257\r\n", -1 },
	{ "localhost /search x\r\n", -1 },
	{ "localhost\r\n", -1 },
	{ "\r\n", -1 },
};

static const struct {
	const char *req;
	const char *serves;	/* the Nex path whose bytes come back, or NULL */
	const char *text;	/* else the reply */
} nex_cases[] = {
	{ "\n", "/", NULL },
	{ "", "/", NULL },
	{ "/\r\n", "/", NULL },
	{ "/members\n", "/members/", NULL },
	{ "members/\n", "/members/", NULL },
	{ "/members/hackney.txt\n", "/members/hackney.txt", NULL },
	{ "/members/%68ackney.txt\n", "/members/hackney.txt", NULL },
	{ "/../../join.txt\n", "/join.txt", NULL },
	{ "/join.txt?x\n", "/join.txt", NULL },
	{ "/robots.txt\n", "/robots.txt", NULL },
	{ "/search\n", NULL, "Not found. The home page is at /.\n" },
	{ "/members/hackney.gmi\n", NULL, "Not found. The home page is at /.\n" },
	{ "/%00\n", NULL, "Bad request: send a path and a newline.\n" },
	{ "/a\x01\n", NULL, "Bad request: send a path and a newline.\n" },
};

void
unit_spartan(void)
{
	const struct site *s = light_site();

	for (size_t i = 0; i < sizeof(sp_cases) / sizeof(sp_cases[0]); i++) {
		struct reply r = { 0 };
		char *name = unit_quote(sp_cases[i].req, strlen(sp_cases[i].req)), *head;

		spartan_respond(s, (const unsigned char *)sp_cases[i].req,
		    strlen(sp_cases[i].req), &r);
		head = unit_reply_head(&r);
		if (r.len == 0 || r.status != r.data[0] - '0')
			unit_ok(name, 0, "status %d for a reply starting %c", r.status,
			    r.len ? r.data[0] : '-');
		else if (sp_cases[i].has == NULL)
			unit_str(name, head, sp_cases[i].head);
		else
			unit_ok(name, strcmp(head, sp_cases[i].head) == 0 &&
			    memmem(r.data, r.len, sp_cases[i].has,
			    strlen(sp_cases[i].has)) != NULL,
			    "head \"%s\", or no \"%s\" in the reply", head,
			    sp_cases[i].has);
		free(head);
		free(name);
		reply_free(&r);
	}
	for (size_t i = 0; i < sizeof(need_cases) / sizeof(need_cases[0]); i++) {
		char *name = xasprintf("spartan_need %s", need_cases[i].req);

		unit_long(name, spartan_need((const unsigned char *)need_cases[i].req,
		    strlen(need_cases[i].req)), need_cases[i].need);
		free(name);
	}
}

void
unit_nex(void)
{
	const struct site *s = light_site();

	for (size_t i = 0; i < sizeof(nex_cases) / sizeof(nex_cases[0]); i++) {
		struct reply r = { 0 };
		const struct resource *res;
		char *name = unit_quote(nex_cases[i].req, strlen(nex_cases[i].req));

		nex_respond(s, (const unsigned char *)nex_cases[i].req,
		    strlen(nex_cases[i].req), &r);
		if (nex_cases[i].serves == NULL)
			unit_mem(name, r.data, r.len, nex_cases[i].text,
			    strlen(nex_cases[i].text));
		else if ((res = site_nex(s, nex_cases[i].serves)) == NULL)
			unit_ok(name, 0, "the site has no %s", nex_cases[i].serves);
		else
			unit_mem(name, r.data, r.len, res->data, res->len);
		free(name);
		reply_free(&r);
	}
}
