/*
 * config_test.c: the config loader's problems, as FILE:LINE: SETTING: what is
 * wrong, every one in one run and in file order (config.c, config_network.c,
 * loader.c, dataset.c): small configs written to temporary files. And the
 * pure checks under them: listen addresses, member ids, dataset text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/*
 * A config: line 2 is the server setting of the case, line 5 the network's
 * name, line 9 the member's fields before its statement. The dataset is
 * valid as it stands.
 */
static char *
config_text(const char *server, const char *name, const char *member)
{
	return xasprintf(
	    "server = {\n"					/* 1 */
	    "  %s\n"						/* 2 */
	    "};\n"						/* 3 */
	    "network = {\n"					/* 4 */
	    "  %s\n"						/* 5 */
	    "  introduction = [ \"An introduction.\" ];\n"	/* 6 */
	    "  convener = \"Convener\";\n"			/* 7 */
	    "  members = (\n"					/* 8 */
	    "    { %s\n"					/* 9 */
	    "      statement = [ \"Statement one.\" ]; }\n"	/* 10 */
	    "  );\n"						/* 11 */
	    "  join = { heading = \"Join\"; text = [ \"How to join.\" ]; label = \"Join\";\n"
	    "           url = \"https://example.org/join\"; };\n"	/* 13 */
	    "};\n",
	    server, name, member);
}

#define NAME   "name = \"Test Network\";"
#define MEMBER "id = \"one\"; name = \"Council One\"; spokesperson = \"Cllr One\"; role = \"Leader\";"

static const struct {
	const char *what;
	const char *server, *name, *member;
	const char *want;	/* the messages, one a line, FILE for the path */
} cases[] = {
	{ "a valid config", "workers = 1;", NAME, MEMBER, "" },
	{ "an empty server group", "", NAME, MEMBER, "" },
	{ "port 0", "gemini = { port = 0; };", NAME, MEMBER,
	  "FILE:2: server.gemini.port: must be a port number from 1 to 65535, not 0" },
	{ "port 65536", "gopher = { port = 65536; };", NAME, MEMBER,
	  "FILE:2: server.gopher.port: must be a port number from 1 to 65535, not 65536" },
	{ "a timeout of 0", "request_timeout = 0;", NAME, MEMBER,
	  "FILE:2: server.request_timeout: must be more than 0 seconds" },
	{ "negative workers", "workers = -2;", NAME, MEMBER,
	  "FILE:2: server.workers: must be at least 0 (0: one per core)" },
	{ "no connections", "max_connections = 0;", NAME, MEMBER,
	  "FILE:2: server.max_connections: must be at least 1" },
	{ "a misspelt setting", "max_conections = 10;", NAME, MEMBER,
	  "FILE:2: server.max_conections: unknown setting (known here: hostnames, "
	  "gemini, gopher, spartan, nex, cert_dir, capsule, handshake_timeout, "
	  "request_timeout, "
	  "write_timeout, max_connections, workers, access_log, anonymise_log, "
	  "rate_limit, user, chroot, sandbox, editors, editing_hostname, max_upload, "
	  "upload_timeout, state_dir, store, metrics, log_format)" },
	{ "a string for a number", "workers = \"two\";", NAME, MEMBER,
	  "FILE:2: server.workers: expected an integer, found a string" },
	{ "a duplicate hostname", "hostnames = [ \"localhost\", \"localhost\" ];", NAME,
	  MEMBER, "FILE:2: server.hostnames[1]: duplicate hostname \"localhost\" "
	  "(also server.hostnames[0] on line 2)" },
	{ "an upper-case hostname", "hostnames = [ \"Example.org\" ];", NAME, MEMBER,
	  "FILE:2: server.hostnames[0]: has upper-case letters; write hostnames in "
	  "lower case" },
	{ "a host name to listen on", "gemini = { listen = [ \"localhost:1965\" ]; };",
	  NAME, MEMBER, "FILE:2: server.gemini.listen[0]: not a numeric IPv4 address "
	  "(write IPv6 as \"[::1]:1965\"; host names are not resolved)" },
	{ "no listen address", "gopher = { listen = [ ]; };", NAME, MEMBER,
	  "FILE:2: server.gopher.listen: is empty; give at least one address, e.g. "
	  "[ \"0.0.0.0:70\" ]" },
	{ "an address range", "rate_limit = { allow = [ \"10.0.0.1/8\" ]; };", NAME,
	  MEMBER, "FILE:2: server.rate_limit.allow[0]: has address bits set after the "
	  "/8 prefix; the range is written \"10.0.0.0/8\"" },
	{ "a syntax error", "workers = ;", NAME, MEMBER, "FILE:2: syntax error" },
	/* the dataset */
	{ "an empty name", "", "name = \"\";", MEMBER, "FILE:5: network.name: is empty" },
	{ "a TAB in the name", "", "name = \"Test\\tNetwork\";", MEMBER,
	  "FILE:5: network.name: contains a TAB character (U+0009); use a space" },
	{ "a blank name", "", "name = \"   \";", MEMBER,
	  "FILE:5: network.name: is blank (only spaces)" },
	{ "no name", "", "", MEMBER, "FILE:4: network.name: missing; this setting is required" },
	{ "an upper-case id", "", NAME,
	  "id = \"One\"; name = \"Council One\"; spokesperson = \"Cllr One\"; role = \"Leader\";",
	  "FILE:9: network.members[0].id: may hold only lower-case letters a-z, digits "
	  "and '-' (it becomes part of a path)" },
	{ "a bad date", "", NAME, MEMBER " joined = \"2023-02-29\";",
	  "FILE:9: network.members[0].joined: not a date: February 2023 has 28 days" },
	{ "an empty spokesperson", "", NAME,
	  "id = \"one\"; name = \"Council One\"; spokesperson = \"\"; role = \"Leader\";",
	  "FILE:9: network.members[0].spokesperson: is empty" },
	/* every problem of a file, in file order */
	{ "three at once", "workers = -1;", "name = \"\";",
	  "id = \"-one\"; name = \"Council One\"; spokesperson = \"Cllr One\"; role = \"Leader\";",
	  "FILE:2: server.workers: must be at least 0 (0: one per core)\n"
	  "FILE:5: network.name: is empty\n"
	  "FILE:9: network.members[0].id: must start with a lower-case letter or a digit" },
};

/* s with every "FILE" replaced by path */
static char *
with_path(const char *s, const char *path)
{
	struct buf b = { 0 };
	const char *p;

	while ((p = strstr(s, "FILE")) != NULL) {
		buf_add(&b, s, (size_t)(p - s));
		buf_adds(&b, path);
		s = p + 4;
	}
	buf_adds(&b, s);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

static void
problem_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct diag d = { 0 };
		struct buf got = { 0 };
		char *text = config_text(cases[i].server, cases[i].name, cases[i].member);
		char *fname = xasprintf("case%zu.conf", i);
		const char *path = unit_file(fname, text);
		char *want = with_path(cases[i].want, path);
		int rc;

		memset(&cfg, 0, sizeof(cfg));
		rc = config_load(path, &cfg, &d);
		for (size_t k = 0; k < d.n; k++)
			buf_printf(&got, "%s%s", k ? "\n" : "", d.msgs[k]);
		buf_add(&got, "", 1);
		if ((rc == 0) != (want[0] == '\0'))
			unit_ok(cases[i].what, 0, "config_load returned %d with: %s", rc,
			    (char *)got.data);
		else
			unit_str(cases[i].what, (char *)got.data, want);
		if (rc == 0)
			config_free(&cfg);
		diag_clear(&d);
		buf_free(&got);
		free(want);
		free(fname);
		free(text);
	}
}

/* A missing file and an @include of one say which. */
static void
file_cases(void)
{
	struct config cfg;
	struct diag d = { 0 };
	const char *inc;
	char *want;

	memset(&cfg, 0, sizeof(cfg));
	unit_long("a missing file", config_load("/nonexistent/kilnet.conf", &cfg, &d), -1);
	unit_ok("a missing file: said", d.n == 1 && strstr(d.msgs[0],
	    "/nonexistent/kilnet.conf") != NULL, "messages: %zu, first: %s", d.n,
	    d.n ? d.msgs[0] : "");
	diag_clear(&d);

	inc = unit_file("include.conf", "server = { workers = 1; };\n"
	    "@include \"no-such-network.conf\"\n");
	memset(&cfg, 0, sizeof(cfg));
	config_load(inc, &cfg, &d);
	want = xasprintf("%s:2: cannot open include file", inc);
	unit_ok("a missing include", d.n == 1 && strncmp(d.msgs[0], want,
	    strlen(want)) == 0, "expected \"%s...\", got %zu: %s", want, d.n,
	    d.n ? d.msgs[0] : "");
	free(want);
	diag_clear(&d);
}

static void
listen_cases(void)
{
	static const struct {
		const char *in, *want;	/* "HOST PORT", or "-1" */
	} t[] = {
		{ "127.0.0.1:1965", "127.0.0.1 1965" },
		{ "0.0.0.0:70", "0.0.0.0 70" },
		{ "[::1]:1965", "::1 1965" },
		{ "[::]:70", ":: 70" },
		{ "127.0.0.1:1", "127.0.0.1 1" },
		{ "127.0.0.1:65535", "127.0.0.1 65535" },
		{ "127.0.0.1:0", "-1" },
		{ "127.0.0.1:65536", "-1" },
		{ "127.0.0.1", "-1" },
		{ "127.0.0.1:", "-1" },
		{ ":1965", "-1" },
		{ "localhost:1965", "-1" },
		{ "::1:1965", "-1" },
		{ "[::1]", "-1" },
		{ "[::zz]:1965", "-1" },
		{ "127.0.0.1:19x5", "-1" },
		{ "", "-1" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct listen_addr la;
		char *got, *name = xasprintf("listen \"%s\"", t[i].in);

		memset(&la, 0, sizeof(la));
		if (config_parse_listen(t[i].in, &la) == 0)
			got = xasprintf("%s %d", la.host, la.port);
		else
			got = xstrdup("-1");
		unit_str(name, got, t[i].want);
		free(la.host);
		free(got);
		free(name);
	}
}

static void
dataset_cases(void)
{
	static const struct {
		const char *in, *why;	/* NULL: accepted */
	} id[] = {
		{ "hackney", NULL },
		{ "south-gloucestershire", NULL },
		{ "1st", NULL },
		{ "a-", NULL },
		{ "", "is empty" },
		{ "-a", "must start with a lower-case letter or a digit" },
		{ "Hackney", "may hold only lower-case letters a-z, digits and '-' (it becomes part of a path)" },
		{ "a_b", "may hold only lower-case letters a-z, digits and '-' (it becomes part of a path)" },
		{ "a/b", "may hold only lower-case letters a-z, digits and '-' (it becomes part of a path)" },
		{ "12345678901234567890123456789012345678901234567890123456789012345",
		  "is longer than 64 bytes" },
	}, text[] = {
		{ "Plain text.", NULL },
		{ "\xe2\x80\x9cQuoted\xe2\x80\x9d", NULL },
		{ "", "is empty" },
		{ "  ", "is blank (only spaces)" },
		{ "a\tb", "contains a TAB character (U+0009); use a space" },
		{ "a\nb", "contains a line break (LF, U+000A); make each paragraph its own list element" },
		{ "a\x7f", "contains a control character (DEL, U+007F); remove it" },
		{ "a\x1b", "contains a control character (U+001B); remove it" },
		{ "\xff", "is not valid UTF-8; save the file as UTF-8" },
	};

	for (size_t i = 0; i < sizeof(id) / sizeof(id[0]); i++) {
		const char *why = NULL;
		char *name = xasprintf("id \"%s\"", id[i].in);
		int rc = dataset_check_id(id[i].in, &why);

		unit_str(name, rc == 0 ? "accepted" : why, id[i].why ? id[i].why : "accepted");
		free(name);
	}
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		const char *why = NULL;
		char *q = unit_quote(text[i].in, strlen(text[i].in));
		char *name = xasprintf("text \"%s\"", q);
		int rc = dataset_check_text(text[i].in, &why);

		unit_str(name, rc == 0 ? "accepted" : why,
		    text[i].why ? text[i].why : "accepted");
		free(name);
		free(q);
	}
}

void
unit_config(void)
{
	problem_cases();
	file_cases();
	listen_cases();
	dataset_cases();
}
