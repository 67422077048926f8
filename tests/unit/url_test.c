/*
 * url_test.c: url.c's helpers, which both front ends put every request path
 * through: percent-decoding once, resolving dot segments (RFC 3986 5.2.4),
 * percent-encoding a path for a redirect.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static void
decode_cases(void)
{
	static const struct {
		const char *in;
		int         rc;
		const char *out;
	} t[] = {
		{ "abc", 0, "abc" },
		{ "", 0, "" },
		{ "%41%42", 0, "AB" },
		{ "%4a%4B", 0, "JK" },			/* either case of hex */
		{ "a+b", 0, "a+b" },			/* '+' is no space here */
		{ "%2F", 0, "/" },
		{ "%2e%2e", 0, ".." },
		{ "%e2%80%99", 0, "\xe2\x80\x99" },	/* decoded once only: */
		{ "%2541", 0, "%41" },
		{ "%", 0, "%" },			/* not an escape: kept */
		{ "%4", 0, "%4" },
		{ "%zz", 0, "%zz" },
		{ "%00", -1, NULL },			/* a NUL would cut the path */
		{ "a%00b", -1, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *out = NULL, *name = xasprintf("url_decode(\"%s\")", t[i].in);
		size_t len = 0;
		int rc = url_decode(t[i].in, &out, &len);

		if (t[i].rc != 0)
			unit_long(name, rc, t[i].rc);
		else if (rc != 0)
			unit_ok(name, 0, "returned %d", rc);
		else
			unit_mem(name, out, len, t[i].out, strlen(t[i].out));
		free(out);
		free(name);
	}
}

static void
normalise_cases(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "", "/" },
		{ "/", "/" },
		{ "a", "/a" },
		{ "/a", "/a" },
		{ "/a/", "/a/" },
		{ "//a//b", "/a/b" },
		{ "/a/./b", "/a/b" },
		{ "/a/../b", "/b" },
		{ "/../a", "/a" },			/* ".." at the root stays there */
		{ "/a/b/..", "/a/" },
		{ "/a/b/../../..", "/" },
		{ "/a/.", "/a/" },
		{ "/./", "/" },
		{ "/.hidden", "/.hidden" },
		{ "/...", "/..." },			/* three dots: a name */
		{ "/a/..b", "/a/..b" },
		{ "/members/../../etc/passwd", "/etc/passwd" },
		{ "/members/hackney.gmi", "/members/hackney.gmi" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *name = xasprintf("url_normalise_path(\"%s\")", t[i].in);
		size_t n = url_normalise_path(t[i].in, strlen(t[i].in), out);

		unit_mem(name, out, n, t[i].out, strlen(t[i].out));
		free(name);
	}
}

static void
encode_cases(void)
{
	static const struct {
		const char *in;
		size_t      cap;
		int         rc;
		const char *out;
	} t[] = {
		{ "/a b", 64, 6, "/a%20b" },
		{ "/\xc3\xa9", 64, 7, "/%C3%A9" },
		{ "/a?b#c", 64, 8, "/a%3Fb%23c" },
		{ "/%", 64, 4, "/%25" },
		{ "/\x7f", 64, 4, "/%7F" },
		{ "/~u/x-y_z.gmi", 64, 13, "/~u/x-y_z.gmi" },
		{ "/!$&'()*+,;=:@", 64, 14, "/!$&'()*+,;=:@" },
		{ "/abc", 5, 4, "/abc" },		/* just fits, with the NUL */
		{ "/abc", 4, -1, NULL },		/* one short */
		{ "/ ", 4, -1, NULL },			/* "/%20" needs 5 */
	};
	char out[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *name = xasprintf("url_encode_path(\"%s\", cap %zu)", t[i].in,
		    t[i].cap);
		int rc = url_encode_path(t[i].in, strlen(t[i].in), out, t[i].cap);

		if (t[i].rc < 0 || rc < 0)
			unit_long(name, rc, t[i].rc);
		else
			unit_mem(name, out, (size_t)rc, t[i].out, strlen(t[i].out));
		free(name);
	}
}

void
unit_url(void)
{
	decode_cases();
	normalise_cases();
	encode_cases();
}
