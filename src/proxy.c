/*
 * proxy.c: the PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text and
 * v2 binary) that a proxy listener expects before the client's first byte. A
 * pure parser: conn.c feeds it the bytes read so far and learns the client's
 * address, that it needs more bytes, or that the connection must be closed.
 * The bytes come from the network before anything is trusted, so every check
 * is strict and nothing is read past len.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "kilnet.h"

/* Spec 2.1: a v1 line is at most 107 bytes, CRLF included. */
#define V1_MAX          107
/* Spec 2.2: the v2 header is 16 bytes, then the address block and TLVs. */
#define V2_HEAD         16
/* Spec 2.2: the address block lengths for TCP over IPv4 and IPv6. */
#define V2_INET_LEN     12
#define V2_INET6_LEN    36

/* The longest address texts v1 can carry: "255.255.255.255" and a full IPv6
 * address with an embedded IPv4 tail. */
#define V1_INET_TEXT    15
#define V1_INET6_TEXT   45

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";

static long	 parse_v1(const unsigned char *, size_t, struct sockaddr_storage *);
static long	 parse_v2(const unsigned char *, size_t, struct sockaddr_storage *);
static int	 prefix_of(const unsigned char *, size_t, const char *);
static int	 v1_token(const unsigned char *, size_t, size_t *, size_t, int);
static int	 v1_port(const unsigned char *, size_t, long *);

long
proxy_parse(const unsigned char *buf, size_t len, struct sockaddr_storage *src)
{
	size_t n;

	if (len == 0)
		return 0;
	/* The first byte tells the versions apart: 'P' or CR. */
	if (buf[0] == v2_sig[0]) {
		n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
		if (memcmp(buf, v2_sig, n) != 0)
			return -1;
		return len < sizeof(v2_sig) ? 0 : parse_v2(buf, len, src);
	}
	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	if (memcmp(buf, v1_sig, n) != 0)
		return -1;
	return len < sizeof(v1_sig) - 1 ? 0 : parse_v1(buf, len, src);
}

/* ---------------------------------------------------------------------- v1 */

/* 1 when the len bytes at p are the start of word (or all of it). */
static int
prefix_of(const unsigned char *p, size_t len, const char *word)
{
	size_t n = strlen(word);

	return memcmp(p, word, len < n ? len : n) == 0;
}

/*
 * The token at *pos up to the next space (or CR when last): its characters
 * must be from the address or port alphabet (kind 'a' IPv4, 'A' IPv6, 'p'
 * port) and at most max long. Returns 1 when the token and its terminator are
 * there (*pos moves past the token, onto the terminator), 0 when the bytes so
 * far fit but end early, -1 when they cannot be a token.
 */
static int
v1_token(const unsigned char *b, size_t len, size_t *pos, size_t max, int kind)
{
	size_t i = *pos;

	for (; i < len; i++) {
		unsigned char c = b[i];
		int ok;

		if (c == ' ' || c == '\r') {
			if (i == *pos)
				return -1;	/* an empty token: two spaces */
			*pos = i;
			return 1;
		}
		if (i - *pos >= max)
			return -1;
		switch (kind) {
		case 'a':
			ok = (c >= '0' && c <= '9') || c == '.';
			break;
		case 'A':
			ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			    (c >= 'A' && c <= 'F') || c == ':' || c == '.';
			break;
		default:
			ok = c >= '0' && c <= '9';
			/* Spec 2.1: no leading zeros; "0" itself is a port. */
			if (ok && i == *pos + 1 && b[*pos] == '0')
				ok = 0;
			break;
		}
		if (!ok)
			return -1;
	}
	return 0;
}

static int
v1_port(const unsigned char *p, size_t n, long *port)
{
	long v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	if (v > 65535)
		return -1;
	*port = v;
	return 0;
}

/*
 * "PROXY TCP4 SRC DST SPORT DPORT\r\n", "PROXY TCP6 ...\r\n" or
 * "PROXY UNKNOWN<anything>\r\n" (spec 2.1: the rest of an UNKNOWN line is
 * ignored). Single spaces, no trailing space, 107 bytes at most.
 */
static long
parse_v1(const unsigned char *b, size_t len, struct sockaddr_storage *src)
{
	unsigned char saddr[sizeof(struct in6_addr)], daddr[sizeof(saddr)];
	char text[V1_INET6_TEXT + 1];
	size_t pos = sizeof(v1_sig) - 1, start[4], tlen[4], limit;
	long sport, dport;
	int af, r;

	limit = len < V1_MAX ? len : V1_MAX;
	/* The protocol word: "TCP4 ", "TCP6 " or "UNKNOWN". */
	if (!prefix_of(b + pos, limit - pos, "TCP4 ") &&
	    !prefix_of(b + pos, limit - pos, "TCP6 ") &&
	    !prefix_of(b + pos, limit - pos, "UNKNOWN"))
		return -1;
	if (limit - pos < 5)
		return 0;
	if (b[pos] == 'U') {
		pos += strlen("UNKNOWN");
		if (limit <= pos)
			return 0;
		if (b[pos] != ' ' && b[pos] != '\r')
			return -1;
		/* Anything up to the CRLF; a lone CR or LF is not a line end. */
		for (; pos < limit; pos++) {
			if (b[pos] == '\n')
				return -1;
			if (b[pos] != '\r')
				continue;
			if (pos + 1 >= limit)
				return len >= V1_MAX ? -1 : 0;
			if (b[pos + 1] != '\n')
				return -1;
			if (src != NULL) {
				memset(src, 0, sizeof(*src));
				src->ss_family = AF_UNSPEC;
			}
			return (long)(pos + 2);
		}
		return len >= V1_MAX ? -1 : 0;
	}
	af = b[pos + 3] == '4' ? AF_INET : AF_INET6;
	pos += 5;
	/* SRC DST SPORT DPORT, each followed by one space but the last, which
	 * the CRLF ends. */
	for (int t = 0; t < 4; t++) {
		size_t max = t >= 2 ? 5 :
		    af == AF_INET ? V1_INET_TEXT : V1_INET6_TEXT;
		int kind = t >= 2 ? 'p' : af == AF_INET ? 'a' : 'A';

		start[t] = pos;
		r = v1_token(b, limit, &pos, max, kind);
		if (r == 0)
			return len >= V1_MAX ? -1 : 0;
		if (r == -1)
			return -1;
		tlen[t] = pos - start[t];
		if ((t < 3) != (b[pos] == ' '))
			return -1;	/* a space ends the first three only */
		if (t < 2) {
			memcpy(text, b + start[t], tlen[t]);
			text[tlen[t]] = '\0';
			if (inet_pton(af, text, t == 0 ? saddr : daddr) != 1)
				return -1;
		}
		pos++;
	}
	/* pos is past the CR now. */
	if (pos >= limit)
		return len >= V1_MAX ? -1 : 0;
	if (b[pos] != '\n')
		return -1;
	if (v1_port(b + start[2], tlen[2], &sport) == -1 ||
	    v1_port(b + start[3], tlen[3], &dport) == -1)
		return -1;
	if (src != NULL) {
		memset(src, 0, sizeof(*src));
		if (af == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)src;

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, saddr, 4);
			sin->sin_port = htons((unsigned short)sport);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)src;

			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, saddr, 16);
			sin6->sin6_port = htons((unsigned short)sport);
		}
	}
	return (long)(pos + 1);
}

/* ---------------------------------------------------------------------- v2 */

/*
 * Spec 2.2: signature, version/command, family/transport, a 16-bit length,
 * then the address block and TLVs, which we skip (none carries anything we
 * use). Checked as the bytes arrive, so a bad header fails on its first bad
 * byte.
 */
static long
parse_v2(const unsigned char *b, size_t len, struct sockaddr_storage *src)
{
	size_t total;
	int cmd, fam = 0;

	if (len > 12) {
		/* Version 2 in the high nibble; command LOCAL (0) or PROXY (1). */
		if ((b[12] >> 4) != 2 || (b[12] & 0x0f) > 1)
			return -1;
		cmd = b[12] & 0x0f;
	} else
		return 0;
	if (len > 13 && cmd == 1) {
		/* PROXY: UNSPEC, or TCP over IPv4 (0x11) or IPv6 (0x21). UNIX
		 * sockets and datagrams are not what a TCP listener sees. */
		fam = b[13];
		if (fam != 0x00 && fam != 0x11 && fam != 0x21)
			return -1;
	}
	if (len < V2_HEAD)
		return 0;
	total = V2_HEAD + ((size_t)b[14] << 8 | b[15]);
	if (total > PROXY_MAX_HEADER)
		return -1;
	if (cmd == 1 && fam == 0x11 && total < V2_HEAD + V2_INET_LEN)
		return -1;
	if (cmd == 1 && fam == 0x21 && total < V2_HEAD + V2_INET6_LEN)
		return -1;
	if (len < total)
		return 0;
	if (src == NULL)
		return (long)total;
	memset(src, 0, sizeof(*src));
	/* LOCAL (a health check from the proxy itself) and UNSPEC: the
	 * connection's own address stands. */
	if (cmd == 0 || fam == 0x00) {
		src->ss_family = AF_UNSPEC;
	} else if (fam == 0x11) {
		struct sockaddr_in *sin = (struct sockaddr_in *)src;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, b + V2_HEAD, 4);
		/* src addr, dst addr, then src port (network order). */
		memcpy(&sin->sin_port, b + V2_HEAD + 8, 2);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)src;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, b + V2_HEAD, 16);
		memcpy(&sin6->sin6_port, b + V2_HEAD + 32, 2);
	}
	return (long)total;
}
