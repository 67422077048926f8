/*
 * proxy_test.c: proxy.c's PROXY protocol parser (HAProxy's proxy-protocol.txt),
 * v1 lines and v2 headers: what a complete header gives (its length and the
 * client's address), that a prefix asks for more, and what is refused.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* The verdict as text: "more", "bad", "N unspec" or "N ADDR PORT". */
static char *
verdict(const unsigned char *b, size_t len)
{
	struct sockaddr_storage ss;
	char addr[INET6_ADDRSTRLEN] = "?";
	long r;

	memset(&ss, 0xa5, sizeof(ss));
	r = proxy_parse(b, len, &ss);
	if (r == 0)
		return xstrdup("more");
	if (r < 0)
		return xstrdup("bad");
	if (ss.ss_family == AF_UNSPEC)
		return xasprintf("%ld unspec", r);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		return xasprintf("%ld %s %u", r, addr, ntohs(s4->sin_port));
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		return xasprintf("%ld [%s] %u", r, addr, ntohs(s6->sin6_port));
	}
	return xasprintf("%ld family %d", r, ss.ss_family);
}

#define TCP4 "PROXY TCP4 192.0.2.1 198.51.100.2 56324 1965\r\n"

static void
v1_cases(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ TCP4, "46 192.0.2.1 56324" },
		{ TCP4 "gemini://localhost/\r\n", "46 192.0.2.1 56324" },
		{ "PROXY TCP6 2001:db8::1 2001:db8::2 4000 70\r\n", "44 [2001:db8::1] 4000" },
		{ "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", "37 [::ffff:192.0.2.1] 1" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", "36 1.2.3.4 0" },
		{ "PROXY UNKNOWN\r\n", "15 unspec" },
		{ "PROXY UNKNOWN 1.2.3.4 ignored whatever\r\n", "40 unspec" },
		/* a prefix: more bytes needed */
		{ "", "more" },
		{ "P", "more" },
		{ "PROXY", "more" },
		{ "PROXY TC", "more" },
		{ "PROXY TCP4 192.0.2.1", "more" },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 1965", "more" },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 1965\r", "more" },
		{ "PROXY UNKNOWN", "more" },
		/* not a header */
		{ "GET / HTTP/1.0\r\n", "bad" },
		{ "gemini://localhost/\r\n", "bad" },
		{ "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "bad" },
		{ "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "bad" },
		{ "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "bad" },	/* two spaces */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "bad" },	/* trailing space */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bad" },	/* no CR */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "bad" },
		{ "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "bad" },
		{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad" },
		{ "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad" },	/* v6 in TCP4 */
		{ "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad" },	/* leading zero */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "bad" },	/* a field short */
		{ "PROXY UNKNOWN\n", "bad" },
		{ "PROXY UNKNOWNX\r\n", "bad" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].in);
		/* an exact-size copy: a read past len is ASan's to see */
		unsigned char *b = xmalloc(n ? n : 1);
		char *got, *name = unit_quote(t[i].in, n);

		memcpy(b, t[i].in, n);
		got = verdict(b, n);
		unit_str(name, got, t[i].want);
		free(got);
		free(name);
		free(b);
	}
}

/* An UNKNOWN line may take 107 bytes with its CRLF (spec 2.1), no more. */
static void
v1_length_cases(void)
{
	static const struct {
		size_t      len;
		int         crlf;
		const char *want;
	} t[] = {
		{ 107, 1, "107 unspec" },
		{ 108, 1, "bad" },
		{ 106, 0, "more" },
		{ 107, 0, "bad" },		/* the line can end no more */
	};
	char line[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got, *name;

		memset(line, 'x', sizeof(line));
		memcpy(line, "PROXY UNKNOWN ", 14);
		if (t[i].crlf)
			memcpy(line + t[i].len - 2, "\r\n", 2);
		got = verdict((unsigned char *)line, t[i].len);
		name = xasprintf("UNKNOWN line of %zu bytes%s", t[i].len,
		    t[i].crlf ? "" : " without CRLF");
		unit_str(name, got, t[i].want);
		free(got);
		free(name);
	}
}

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A v2 header: signature, version/command, family, length, then len bytes
 * of address block (addr, or zeros). Returns its size. */
static size_t
v2(unsigned char *b, int vc, int fam, size_t len, const unsigned char *addr,
    size_t alen)
{
	memcpy(b, sig, 12);
	b[12] = (unsigned char)vc;
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)(len >> 8);
	b[15] = (unsigned char)len;
	memset(b + 16, 0, len);
	if (addr != NULL)
		memcpy(b + 16, addr, alen < len ? alen : len);
	return 16 + len;
}

static void
v2_cases(void)
{
	/* 192.0.2.1 -> 198.51.100.2, ports 56324 -> 1965 */
	static const unsigned char in4[12] = { 192, 0, 2, 1, 198, 51, 100, 2,
	    0xdc, 0x04, 0x07, 0xad };
	/* 2001:db8::1 -> 2001:db8::2, ports 4000 -> 70 */
	static const unsigned char in6[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1,
	    0x20, 0x01, 0x0d, 0xb8, [31] = 2, 0x0f, 0xa0, 0x00, 0x46 };
	static const struct {
		const char          *name;
		int                  vc, fam;
		size_t               len;	/* the header's length field */
		const unsigned char *addr;
		size_t               alen;
		long                 cut;	/* give only this many bytes; -1: all */
		const char          *want;
	} t[] = {
		{ "PROXY TCP4", 0x21, 0x11, 12, in4, 12, -1, "28 192.0.2.1 56324" },
		{ "PROXY TCP4 with TLVs", 0x21, 0x11, 17, in4, 12, -1, "33 192.0.2.1 56324" },
		{ "PROXY TCP6", 0x21, 0x21, 36, in6, 36, -1, "52 [2001:db8::1] 4000" },
		{ "LOCAL", 0x20, 0x00, 0, NULL, 0, -1, "16 unspec" },
		{ "LOCAL with an address", 0x20, 0x11, 12, in4, 12, -1, "28 unspec" },
		{ "PROXY UNSPEC", 0x21, 0x00, 0, NULL, 0, -1, "16 unspec" },
		{ "the largest header", 0x21, 0x21, 216, in6, 36, -1, "232 [2001:db8::1] 4000" },
		{ "one byte too large", 0x21, 0x21, 217, in6, 36, -1, "bad" },
		{ "version 1", 0x11, 0x11, 12, in4, 12, -1, "bad" },
		{ "command 2", 0x22, 0x11, 12, in4, 12, -1, "bad" },
		{ "UDP over IPv4", 0x21, 0x12, 12, in4, 12, -1, "bad" },
		{ "a UNIX socket", 0x21, 0x31, 216, NULL, 0, -1, "bad" },
		{ "TCP4 block too short", 0x21, 0x11, 8, in4, 8, -1, "bad" },
		{ "TCP6 block too short", 0x21, 0x21, 12, in6, 12, -1, "bad" },
		{ "TCP4, 27 of 28 bytes", 0x21, 0x11, 12, in4, 12, 27, "more" },
		{ "TCP4, the first 16", 0x21, 0x11, 12, in4, 12, 16, "more" },
		{ "the signature alone", 0x21, 0x11, 12, in4, 12, 12, "more" },
		{ "5 bytes of signature", 0x21, 0x11, 12, in4, 12, 5, "more" },
		{ "bad version, 13 bytes", 0x31, 0x11, 12, in4, 12, 13, "bad" },
		{ "bad family, 14 bytes", 0x21, 0x22, 12, in4, 12, 14, "bad" },
	};
	unsigned char b[512];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = v2(b, t[i].vc, t[i].fam, t[i].len, t[i].addr, t[i].alen);
		unsigned char *exact;
		char *got;

		if (t[i].cut >= 0)
			n = (size_t)t[i].cut;
		exact = xmalloc(n);
		memcpy(exact, b, n);
		got = verdict(exact, n);
		unit_str(t[i].name, got, t[i].want);
		free(got);
		free(exact);
	}
	/* A signature that goes wrong is refused at its first bad byte. */
	memcpy(b, sig, 12);
	b[5] = 'X';
	{
		char *got = verdict(b, 6);

		unit_str("signature wrong at byte 6", got, "bad");
		free(got);
	}
}

void
unit_proxy(void)
{
	v1_cases();
	v1_length_cases();
	v2_cases();
}
