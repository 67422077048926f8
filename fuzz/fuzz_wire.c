/*
 * fuzz_wire.c: libFuzzer target for the site wire format (site_wire.c, and
 * search.c's part of it): any bytes as the site the master is handed. A read
 * that fails must say why; a site that reads must be one the front ends can
 * serve: each resource found by its key, its pages and searches answered over
 * every protocol, and written again it must read again, to the same bytes.
 */
#include <string.h>

#include "fuzz.h"

/* Requests a site is asked, past its own pages: searches that match much,
 * little, and folded text, and a later page of results. */
static const char *const gemini_paths[] = {
	"/search?e", "/search?%C3%A9", "/search/page/2?a", "/search", "/",
};
static const char *const gopher_lines[] = {
	"/search\te\r\n", "/search\t%C3%A9\r\n", "/search/page/2?a\r\n", "\r\n",
};
/* Pages asked of each table: enough to reach each kind of resource in a
 * small input, few enough to keep a run fast. */
#define FUZZ_WIRE_PAGES 16

static void
ask_gemini(const struct site *s, const char *path)
{
	char req[GEMINI_MAX_REQUEST + 1];
	struct reply r;
	int n;

	n = snprintf(req, sizeof(req), "gemini://%s%s\r\n", s->hostname, path);
	if (n < 0)
		abort();
	memset(&r, 0, sizeof(r));
	gemini_respond(s, s->hostname, (const unsigned char *)req,
	    fuzz_request_len((const uint8_t *)req, strlen(req),
	    GEMINI_MAX_REQUEST), &r);
	reply_free(&r);
}

static void
ask_gopher(const struct site *s, const char *line)
{
	struct reply r;

	memset(&r, 0, sizeof(r));
	gopher_respond(s, (const unsigned char *)line,
	    fuzz_request_len((const uint8_t *)line, strlen(line),
	    GOPHER_MAX_REQUEST), &r);
	reply_free(&r);
}

/* A Spartan request for path, with a search query as its data block. */
static void
ask_spartan(const struct site *s, const char *path)
{
	char req[SPARTAN_MAX_REQUEST + 1];
	struct reply r;
	int n;

	n = snprintf(req, sizeof(req), "%s %s 1\r\ne", s->hostname, path);
	if (n < 0)
		abort();
	memset(&r, 0, sizeof(r));
	spartan_respond(s, (const unsigned char *)req, strlen(req), &r);
	reply_free(&r);
}

static void
ask_nex(const struct site *s, const char *path)
{
	char line[NEX_MAX_REQUEST + 1];
	struct reply r;

	snprintf(line, sizeof(line), "%s\n", path);
	memset(&r, 0, sizeof(r));
	nex_respond(s, (const unsigned char *)line, fuzz_request_len(
	    (const uint8_t *)line, strlen(line), NEX_MAX_REQUEST), &r);
	reply_free(&r);
}

static void
check_site(const struct site *s)
{
	struct buf a = { 0 }, b = { 0 };
	struct site *again;
	char err[128], line[GOPHER_MAX_REQUEST + 1];

	if (s->hostname == NULL || s->ro.hostname != s->hostname)
		abort();
	/* Every key finds its own resource: the tables are in order. */
	for (size_t i = 0; i < s->n_gemini; i++)
		if (site_gemini(s, s->gemini[i].key) != &s->gemini[i])
			abort();
	for (size_t i = 0; i < s->n_gopher; i++)
		if (site_gopher(s, s->gopher[i].key) != &s->gopher[i])
			abort();
	for (size_t i = 0; i < s->n_spartan; i++)
		if (site_spartan(s, s->spartan[i].key) != &s->spartan[i])
			abort();
	for (size_t i = 0; i < s->n_nex; i++)
		if (site_nex(s, s->nex[i].key) != &s->nex[i])
			abort();
	for (size_t i = 0; i < s->n_gemini && i < FUZZ_WIRE_PAGES; i++)
		ask_gemini(s, s->gemini[i].key);
	for (size_t i = 0; i < s->n_spartan && i < FUZZ_WIRE_PAGES; i++)
		ask_spartan(s, s->spartan[i].key);
	for (size_t i = 0; i < s->n_nex && i < FUZZ_WIRE_PAGES; i++)
		ask_nex(s, s->nex[i].key);
	ask_spartan(s, "/search");
	for (size_t i = 0; i < s->n_gopher && i < FUZZ_WIRE_PAGES; i++) {
		snprintf(line, sizeof(line), "%s\r\n", s->gopher[i].key);
		ask_gopher(s, line);
	}
	for (size_t i = 0; i < sizeof(gemini_paths) / sizeof(gemini_paths[0]); i++)
		ask_gemini(s, gemini_paths[i]);
	for (size_t i = 0; i < sizeof(gopher_lines) / sizeof(gopher_lines[0]); i++)
		ask_gopher(s, gopher_lines[i]);

	/* Written again, it reads again; and that, written, is the same. */
	site_wire_write(s, &a);
	if ((again = site_wire_read(a.data, a.len, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_wire: a site read does not read again: %s\n",
		    err);
		abort();
	}
	site_wire_write(again, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	site_free(again);
	buf_free(&a);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct site *s;
	char err[128];

	err[0] = '\0';
	if ((s = site_wire_read(data, size, err, sizeof(err))) == NULL) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	check_site(s);
	site_free(s);
	return 0;
}
