/*
 * chunk.c: where a stored file is cut into parts (store_etcd.c keeps each
 * part once, under its SHA-256). The cuts depend on the bytes around them
 * (a gear hash, as content-defined chunking does), not on their offsets, so
 * that one council's edit changes the part it is in and leaves the others
 * shared with the versions before it. Sizes: a typical part is the file's
 * size over CHUNK_TARGET_PARTS, rounded to a power of two, between
 * CHUNK_MIN_AVG and CHUNK_MAX_AVG; none is below a quarter of that or above
 * CHUNK_PART_MAX (etcd takes at most 1.5 MiB a request, and a part goes in
 * base64).
 */
#include <stdint.h>

#include "kilnet.h"

#define CHUNK_TARGET_PARTS 32
#define CHUNK_MIN_AVG      (64u << 10)
#define CHUNK_MAX_AVG      (256u << 10)

/* The gear table: 256 fixed pseudo-random words (splitmix64 from 0), so that
 * every instance and every version cuts alike. */
static uint64_t
gear(unsigned char b)
{
	static uint64_t t[256];
	static int made;

	if (!made) {
		uint64_t x = 0;

		for (int i = 0; i < 256; i++) {
			uint64_t z = (x += 0x9e3779b97f4a7c15ULL);

			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			t[i] = z ^ (z >> 31);
		}
		made = 1;
	}
	return t[b];
}

size_t
chunk_avg(size_t n)
{
	size_t avg = CHUNK_MIN_AVG;

	while (avg < CHUNK_MAX_AVG && avg * CHUNK_TARGET_PARTS < n)
		avg <<= 1;
	return avg;
}

size_t
chunk_cut(const unsigned char *p, size_t n, size_t *ends, size_t max)
{
	size_t avg = chunk_avg(n), min = avg / 4, lim = avg * 4, k = 0, start = 0;
	uint64_t mask = 0;
	int bits = 0;

	if (lim > CHUNK_PART_MAX)
		lim = CHUNK_PART_MAX;
	while (((size_t)1 << bits) < avg)
		bits++;
	/* The top bits: each depends on the last 64 bytes. */
	mask = bits > 0 ? ~(uint64_t)0 << (64 - bits) : 0;
	while (start < n && k < max) {
		size_t i = start, end = n;
		uint64_t h = 0;

		if (n - start > min) {
			end = n - start > lim ? start + lim : n;
			for (i = start + min; i < end; i++) {
				h = (h << 1) + gear(p[i]);
				if ((h & mask) == 0) {
					end = i + 1;
					break;
				}
			}
		}
		ends[k++] = end;
		start = end;
	}
	return start < n ? 0 : k;
}
