/*
 * fuzz_titan.c: libFuzzer target for editing requests, past the certificate
 * check: any bytes as a request line through gemini_respond (with editing on);
 * what it hands to titan_parse must come out as a checked request or a well
 * formed refusal, and a checked request must cross the worker-master channel
 * (editchan.c) unchanged. The bytes are also read as a frame from a worker,
 * which the master must never read past.
 */
#include <string.h>

#include "fuzz.h"

#define MAX_UPLOAD 65536

static struct site *site;
static struct config cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	site = fuzz_site();
	site->edit_host = strdup("localhost");	/* editing on, on the public name */
	cfg.max_upload = MAX_UPLOAD;
	return 0;
}

static void
check_refusal(const struct reply *r)
{
	const unsigned char *crlf;

	if (r->len < 4 || r->data[0] < '1' || r->data[0] > '6' ||
	    r->data[1] < '0' || r->data[1] > '9' || r->data[2] != ' ')
		abort();
	crlf = memmem(r->data, r->len, "\r\n", 2);
	if (crlf == NULL || crlf + 2 != r->data + r->len ||
	    (size_t)(crlf - r->data) > 3 + GEMINI_MAX_META)
		abort();	/* one header line, nothing after it */
}

/* What titan_parse lets through: a normalised absolute path that is the
 * dataset or a capsule file (no hidden segment, no folder), and for an
 * upload a size from 1 to max_upload. */
static void
check_request(const struct edit_req *e)
{
	char norm[GEMINI_MAX_URL + 3];
	size_t n = strlen(e->path);

	if (e->path[0] != '/' || n > GEMINI_MAX_URL ||
	    url_normalise_path(e->path, n, norm) != n || memcmp(norm, e->path, n))
		abort();
	if (e->op == CHAN_STORE) {
		if (e->size == 0 || e->size > MAX_UPLOAD || e->body == NULL)
			abort();
		if (strcmp(e->path, "/network.conf") != 0 &&
		    (strstr(e->path, "/.") != NULL || e->path[n - 1] == '/' ||
		    strchr(e->path, '\\') != NULL))
			abort();
	} else if (e->op != CHAN_READ) {
		abort();
	}
}

/* The request as the master reads it from the channel. */
static void
check_frame(struct edit_req *e)
{
	struct chan_msg m;
	struct buf b = { 0 };
	size_t used;

	memset(e->fp, 'a', 64);
	if (e->body != NULL)
		memset(e->body, 'x', e->size);
	titan_send(e, 7, &b);
	if (chan_unpack(b.data, b.len, MAX_UPLOAD + 2 * GEMINI_MAX_REQUEST, &m,
	    &used) != 1 || used != b.len || m.id != 7 ||
	    m.code != (uint32_t)e->op || memcmp(m.fp, e->fp, 64) != 0 ||
	    m.n[0] != strlen(e->path) || memcmp(m.part[0], e->path, m.n[0]) ||
	    m.n[1] != strlen(e->mime) ||
	    m.n[2] != (e->op == CHAN_STORE ? e->size : 0))
		abort();
	/* Every shorter prefix is a frame still coming. */
	if (chan_unpack(b.data, b.len - 1, MAX_UPLOAD + 2 * GEMINI_MAX_REQUEST,
	    &m, &used) != 0)
		abort();
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = fuzz_request_len(data, size, GEMINI_MAX_REQUEST), used;
	struct edit_req e;
	struct chan_msg m;
	struct reply r;
	unsigned char *copy;

	if (site == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	memset(&r, 0, sizeof(r));
	gemini_respond(site, "localhost", data, n, &r);
	if (r.edit) {
		memset(&r, 0, sizeof(r));
		if (titan_parse(&cfg, data, n, &e, &r) == 0) {
			check_request(&e);
			check_frame(&e);
			edit_req_free(&e);
		} else {
			check_refusal(&r);
		}
	}
	reply_free(&r);

	/* Any bytes from a worker: a frame whose parts lie inside them, or not. */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	for (size_t max = 16; max <= 1 << 20; max <<= 4) {
		int k = chan_unpack(copy, size, max, &m, &used);

		if (k < -1 || k > 1 || (k == 1 && used > size))
			abort();
		for (int i = 0; k == 1 && i < CHAN_PARTS; i++)
			if (m.n[i] > max || m.part[i] < copy ||
			    m.part[i] + m.n[i] > copy + size)
				abort();
	}
	free(copy);
	return 0;
}
