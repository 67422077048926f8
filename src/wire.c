/*
 * wire.c: the length-prefixed records that cross from an unprivileged
 * process to the master (site_wire.c's site, search.c's index): fixed-width
 * little-endian integers and strings with their length, written into a
 * buffer and read back with the first failure sticking, so that a reader
 * checks once per record. Nothing here knows what the records hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

void
wire_reserve(struct buf *out, size_t more)
{
	if (out->cap - out->len <= more) {
		out->cap = out->len + more + 1;
		out->data = xrealloc(out->data, out->cap);
	}
}

void
wire_put_u8(struct buf *out, uint8_t v)
{
	buf_add(out, &v, 1);
}

void
wire_put_u32(struct buf *out, uint32_t v)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	buf_add(out, b, sizeof(b));
}

void
wire_put_u64(struct buf *out, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	buf_add(out, b, sizeof(b));
}

void
wire_put_bytes(struct buf *out, const void *p, size_t len)
{
	if (len >= UINT32_MAX) {
		wire_put_u32(out, UINT32_MAX);  /* what no read accepts */
		return;
	}
	wire_put_u32(out, (uint32_t)len);
	buf_add(out, p, len);
}

void
wire_put_str(struct buf *out, const char *s)
{
	if (s == NULL)
		wire_put_u32(out, UINT32_MAX);
	else
		wire_put_bytes(out, s, strlen(s));
}

void *
wire_fail(struct wire *w, const char *why)
{
	if (w->err == NULL)
		w->err = why;
	return NULL;
}

const unsigned char *
wire_take(struct wire *w, uint64_t len)
{
	const unsigned char *p;

	if (w->err != NULL)
		return NULL;
	if (len > w->n - w->off)
		return wire_fail(w, "truncated");
	p = w->p + w->off;
	w->off += (size_t)len;
	return p;
}

uint8_t
wire_u8(struct wire *w)
{
	const unsigned char *p = wire_take(w, 1);

	return p != NULL ? p[0] : 0;
}

uint32_t
wire_u32(struct wire *w)
{
	const unsigned char *p = wire_take(w, 4);
	uint32_t v = 0;

	for (int i = 0; p != NULL && i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

uint64_t
wire_u64(struct wire *w)
{
	const unsigned char *p = wire_take(w, 8);
	uint64_t v = 0;

	for (int i = 0; p != NULL && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t
wire_count(struct wire *w, uint64_t count, size_t min)
{
	if (w->err != NULL)
		return 0;
	if (count > (w->n - w->off) / (min > 0 ? min : 1)) {
		wire_fail(w, "a count larger than the bytes left");
		return 0;
	}
	return (size_t)count;
}

const unsigned char *
wire_bytes_at(struct wire *w, size_t *len)
{
	uint32_t n = wire_u32(w);
	const unsigned char *p;

	*len = 0;
	if (w->err != NULL)
		return NULL;
	if (n == UINT32_MAX)
		return wire_fail(w, "a string the writer could not carry");
	if ((p = wire_take(w, n)) != NULL)
		*len = n;
	return p;
}

const char *
wire_str_at(struct wire *w, size_t *len)
{
	const unsigned char *p = wire_bytes_at(w, len);

	if (p != NULL && memchr(p, '\0', *len) != NULL)
		return wire_fail(w, "a NUL inside a string");
	return (const char *)p;
}

char *
wire_str(struct wire *w)
{
	size_t len;
	const char *p = wire_str_at(w, &len);
	char *s;

	if (p == NULL)
		return NULL;
	s = xmalloc(len + 1);
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* ----------------------------------------------------------------- write */
