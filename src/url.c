/*
 * url.c: the URL helpers both front ends share: percent-decoding once, resolving
 * "." / ".." / empty path segments, and percent-encoding a path for a redirect.
 * Pure functions on bytes; they never look at the site or the file system.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "kilnet.h"

int
url_decode(const char *s, char **out, size_t *len)
{
	size_t n = 0;
	char *d;

	/* '+' is a space only in HTML form data, not in Gemini or Gopher URLs. */
	if ((d = evhttp_uridecode(s, 0, &n)) == NULL)
		return -2;
	/* A decoded NUL would end the C string early: what the lookup saw would
	 * differ from what was asked. */
	if (memchr(d, '\0', n) != NULL) {
		free(d);
		return -1;
	}
	*out = d;
	*len = n;
	return 0;
}

size_t
url_normalise_path(const char *in, size_t len, char *out)
{
	size_t i = 0, j, o = 0;

	/* Invariant: out ends with '/' before each segment; only the last segment
	 * of the input can leave it without one. */
	out[o++] = '/';
	while (i < len) {
		if (in[i] == '/') {		/* empty segment (or the leading '/') */
			i++;
			continue;
		}
		for (j = i; j < len && in[j] != '/'; j++)
			;
		if (j - i == 1 && in[i] == '.') {
			/* "." names the folder it is in: nothing to add */
		} else if (j - i == 2 && in[i] == '.' && in[i + 1] == '.') {
			/* RFC 3986 5.2.4: ".." drops the last segment; at the root
			 * there is none, and it stays at the root. */
			if (o > 1) {
				o--;
				while (out[o - 1] != '/')
					o--;
			}
		} else {
			memcpy(out + o, in + i, j - i);
			o += j - i;
			if (j < len)
				out[o++] = '/';
		}
		i = j;
	}
	out[o] = '\0';
	return o;
}

/* RFC 3986 section 3.3: pchar = unreserved / sub-delims / ":" / "@" (plus "/"
 * between segments); everything else is written as %XX. */
static int
path_char_ok(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

int
url_encode_path(const char *in, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (path_char_ok(c)) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= cap || o > INT_MAX)
		return -1;
	out[o] = '\0';
	return (int)o;
}
