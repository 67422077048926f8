/*
 * fuzz_nex.c: libFuzzer target for the Nex front end: any bytes as a path
 * line (traversal, percent-encoding, controls, no newline).
 */
#include <string.h>

#include "fuzz.h"

static struct site *site;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	site = fuzz_site_with(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply r;

	if (site == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	size = fuzz_request_len(data, size, NEX_MAX_REQUEST);
	memset(&r, 0, sizeof(r));
	nex_respond(site, data, size, &r);
	/* Served (0) or a line of text (3); either way some bytes. */
	if ((r.status != 0 && r.status != 3) || r.len == 0 || r.data == NULL)
		abort();
	reply_free(&r);
	return 0;
}
