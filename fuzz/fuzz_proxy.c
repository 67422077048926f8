/*
 * fuzz_proxy.c: libFuzzer target for the PROXY protocol parser. Besides memory
 * errors it checks the parser's contract on every prefix of the input, each
 * copied to a buffer of exactly its length (so ASan sees a read past len):
 * the answers go 0 ... 0 then stay at one header length or at -1; a result
 * never exceeds the bytes given or PROXY_MAX_HEADER; with PROXY_MAX_HEADER
 * bytes the answer is final.
 */
#include <sys/socket.h>

#include <string.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	size_t n = size < PROXY_MAX_HEADER + 1 ? size : PROXY_MAX_HEADER + 1;
	long r, final = 0;

	for (size_t k = 0; k <= n; k++) {
		unsigned char *b = malloc(k ? k : 1);

		memcpy(b, data, k);
		memset(&ss, 0xa5, sizeof(ss));
		r = proxy_parse(b, k, &ss);
		free(b);
		if (r < -1 || r > (long)k || r > PROXY_MAX_HEADER)
			abort();
		if (final != 0 && r != final)
			abort();	/* a verdict changed with more bytes */
		if (r > 0 && ss.ss_family != AF_INET && ss.ss_family != AF_INET6 &&
		    ss.ss_family != AF_UNSPEC)
			abort();
		if (r != 0)
			final = r;
		if (k >= PROXY_MAX_HEADER && r == 0)
			abort();	/* no header is that long */
	}
	/* The whole input gives the same verdict as its first bytes. */
	if (proxy_parse(data, size, NULL) != final && !(final == 0 &&
	    size <= n))
		abort();
	return 0;
}
