/*
 * titan_test.c: titan.c's editing request lines past the certificate check
 * (titan_parse): the Titan parameters (;size=N;mime=T;token=X), the paths an
 * upload may name, and the pages only editors read; and titan_reply, which
 * turns the master's answer into the client's reply.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define MAX_UPLOAD 65536

static const struct {
	const char *req;
	const char *want;	/* "STORE path mime=T size=N", "READ path", or
				 * the refusal's header */
} cases[] = {
	{ "titan://localhost/network.conf;size=10;mime=text/plain\r\n",
	  "STORE /network.conf mime=text/plain size=10" },
	{ "titan://localhost/network.conf;size=10\r\n", "STORE /network.conf mime= size=10" },
	{ "titan://localhost/network.conf;mime=text%2Fplain;size=3\r\n",
	  "STORE /network.conf mime=text/plain size=3" },
	{ "titan://localhost/network.conf;size=10;token=secret\r\n",
	  "STORE /network.conf mime= size=10" },
	{ "titan://localhost:1965/about.gmi;size=5\r\n", "STORE /about.gmi mime= size=5" },
	{ "titan://localhost/new/page.gmi;size=65536\r\n",
	  "STORE /new/page.gmi mime= size=65536" },
	{ "titan://localhost/caf%C3%A9.gmi;size=1\r\n", "STORE /caf\xc3\xa9.gmi mime= size=1" },
	{ "TITAN://localhost/about.gmi;size=1\r\n", "STORE /about.gmi mime= size=1" },
	/* the parameters */
	{ "titan://localhost/network.conf\r\n", "59 Titan upload without ;size=N" },
	{ "titan://localhost/network.conf;mime=text/plain\r\n",
	  "59 Titan upload without ;size=N" },
	{ "titan://localhost/network.conf;size=\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;size=abc\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;size=-1\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;size=10x\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;colour=red;size=1\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;size=1;mime=%00\r\n",
	  "59 Titan parameters are ;size=N;mime=TYPE;token=T" },
	{ "titan://localhost/network.conf;size=0\r\n",
	  "59 An empty upload (size=0) deletes nothing here" },
	{ "titan://localhost/network.conf;size=65537\r\n",
	  "59 Upload of 65537 bytes is over the limit of 65536 (server.max_upload)" },
	{ "titan://localhost/network.conf;size=99999999999999999999\r\n",
	  "59 Upload of 18446744073709551615 bytes is over the limit of 65536 "
	  "(server.max_upload)" },
	/* the paths */
	{ "titan://localhost/;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/.hidden;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/dir/.git/config;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/dir/;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/a/../network.conf;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost//network.conf;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/a%5cb;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/a%01b;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost/%00;size=1\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
	{ "titan://localhost:99999/x;size=1\r\n", "59 Malformed URL" },
	/* the pages editors read */
	{ "gemini://localhost/network.conf\r\n", "READ /network.conf" },
	{ "gemini://localhost/versions/\r\n", "READ /versions/" },
	{ "gemini://localhost/versions/3\r\n", "READ /versions/3" },
	{ "gemini://localhost/versions/../network.conf\r\n",
	  "59 Not an editable path: /network.conf or a capsule file" },
};

static void
parse_cases(void)
{
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_upload = MAX_UPLOAD;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct edit_req e;
		struct reply r = { 0 };
		char *got, *name = unit_quote(cases[i].req, strlen(cases[i].req));

		if (titan_parse(&cfg, (const unsigned char *)cases[i].req,
		    strlen(cases[i].req), &e, &r) == 0) {
			if (e.op == CHAN_STORE)
				got = xasprintf("STORE %s mime=%s size=%zu%s", e.path,
				    e.mime, e.size, e.body == NULL ? " (no body)" : "");
			else
				got = xasprintf("READ %s%s", e.path, e.mime[0] ? " mime?" : "");
			edit_req_free(&e);
		} else {
			got = unit_reply_head(&r);
			if (r.len < 2 || memcmp(r.data + r.len - 2, "\r\n", 2) != 0) {
				free(got);
				got = xstrdup("(a refusal without CRLF)");
			}
		}
		unit_str(name, got, cases[i].want);
		free(got);
		free(name);
		reply_free(&r);
	}
}

static void
reply_cases(void)
{
	static const struct {
		const char *name;
		uint32_t    code;
		const char *meta, *body, *want;
	} t[] = {
		{ "a stored upload", 30, "gemini://localhost/", "", "30 gemini://localhost/\r\n" },
		{ "a page with its body", 20, "text/plain", "hello", "20 text/plain\r\nhello" },
		{ "no body but for 2x", 59, "bad dataset", "ignored", "59 bad dataset\r\n" },
		{ "line breaks in meta", 59, "line 3:\nbad\r", "", "59 line 3: bad \r\n" },
		{ "a code out of range", 5, "odd", "", "40 odd\r\n" },
		{ "a code above 69", 70, "odd", "", "40 odd\r\n" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct chan_msg m;
		struct reply r = { 0 };

		memset(&m, 0, sizeof(m));
		m.code = t[i].code;
		m.part[0] = (const unsigned char *)t[i].meta;
		m.n[0] = strlen(t[i].meta);
		m.part[1] = (const unsigned char *)t[i].body;
		m.n[1] = strlen(t[i].body);
		titan_reply(&m, &r);
		unit_mem(t[i].name, r.data, r.len, t[i].want, strlen(t[i].want));
		reply_free(&r);
	}
}

void
unit_titan(void)
{
	parse_cases();
	reply_cases();
}
