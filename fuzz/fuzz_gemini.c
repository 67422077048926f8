/*
 * fuzz_gemini.c: libFuzzer target for the Gemini front end: any bytes as a
 * request (URL parsing, normalisation, lookups, search), with and without SNI.
 * Checks what every reply must be: "NN META\r\n" with META at most 1024 bytes.
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

static void
check_reply(const struct reply *r)
{
	const unsigned char *crlf;

	if (r->len < 4 || r->data[0] < '1' || r->data[0] > '6' ||
	    r->data[1] < '0' || r->data[1] > '9')
		abort();
	crlf = memmem(r->data, r->len, "\r\n", 2);
	/* "NN " + META + CRLF (gemini spec 3.1) */
	if (crlf == NULL || (size_t)(crlf - r->data) > 3 + GEMINI_MAX_META)
		abort();
	if (r->status != (r->data[0] - '0') * 10 + (r->data[1] - '0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply r;

	if (site == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	size = fuzz_request_len(data, size, GEMINI_MAX_REQUEST);
	memset(&r, 0, sizeof(r));
	gemini_respond(site, "localhost", data, size, &r);
	check_reply(&r);
	reply_free(&r);
	memset(&r, 0, sizeof(r));
	gemini_respond(site, NULL, data, size, &r);
	check_reply(&r);
	reply_free(&r);
	return 0;
}
