/*
 * fuzz_spartan.c: libFuzzer target for the Spartan front end: any bytes as a
 * request (the line, its content length, the data block as far as it came;
 * conn.c hands over at most SPARTAN_MAX_REQUEST bytes).
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
	long need;

	if (site == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size > SPARTAN_MAX_REQUEST)
		size = SPARTAN_MAX_REQUEST;
	/* What conn.c reads: through the LF, then the data block it asks for. */
	if (memchr(data, '\n', size) != NULL) {
		size_t line = (size_t)((const uint8_t *)memchr(data, '\n', size) -
		    data) + 1;

		need = spartan_need(data, line);
		if (need > (long)SPARTAN_MAX_REQUEST)
			abort();
		if (need < (long)line)
			size = line;
		else if ((size_t)need < size)
			size = (size_t)need;
	}
	memset(&r, 0, sizeof(r));
	spartan_respond(site, data, size, &r);
	/* A status line of one digit 2-5, a space, and CRLF. */
	if (r.data == NULL || r.len < 4 || r.data[0] < '2' || r.data[0] > '5' ||
	    r.data[1] != ' ' || r.status != r.data[0] - '0' ||
	    memchr(r.data, '\n', r.len) == NULL)
		abort();
	reply_free(&r);
	return 0;
}
