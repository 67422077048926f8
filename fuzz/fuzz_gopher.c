/*
 * fuzz_gopher.c: libFuzzer target for the Gopher front end: any bytes as a
 * selector line (selectors, search queries after a TAB, URL: links, traversal).
 */
#include <string.h>

#include "fuzz.h"

static struct site *site;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	site = fuzz_site();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply r;

	if (site == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	size = fuzz_request_len(data, size, GOPHER_MAX_REQUEST);
	memset(&r, 0, sizeof(r));
	gopher_respond(site, data, size, &r);
	/* Served (0) or a type 3 error; either way some bytes. */
	if ((r.status != 0 && r.status != 3) || r.len == 0 || r.data == NULL)
		abort();
	reply_free(&r);
	return 0;
}
