/*
 * chunk_test.c: chunk.c's cuts of a file into the parts etcd keeps: every
 * part within its bounds, the parts adding up to the file, the same cuts for
 * the same bytes, an edit in the middle of a large file leaving most parts
 * as they were (the point of cutting by content), and too many parts refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define MAXP 400

/* A dataset-like text of n bytes: numbered lines, pseudo-random words. */
static unsigned char *
text(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n + 64);
	size_t i = 0;
	unsigned x = seed * 2654435761u + 1;

	while (i < n) {
		int l = snprintf((char *)p + i, 64, "      name = \"Council %08x\";\n",
		    x = x * 1103515245u + 12345u);

		i += (size_t)l;
	}
	return p;
}

/* The parts of p as "start:len" strings, for counting shared ones. */
static size_t
parts(const unsigned char *p, size_t n, size_t *ends, char **sig)
{
	size_t k = chunk_cut(p, n, ends, MAXP), start = 0;

	for (size_t i = 0; i < k; i++) {
		/* A part by its bytes: a cheap hash and its length. */
		unsigned long h = 5381;

		for (size_t j = start; j < ends[i]; j++)
			h = h * 33 + p[j];
		sig[i] = malloc(40);
		snprintf(sig[i], 40, "%lx:%zu", h, ends[i] - start);
		start = ends[i];
	}
	return k;
}

void
unit_chunk(void)
{
	size_t n = 10u << 20, ends[MAXP], ends2[MAXP], k, k2, start = 0, shared = 0;
	unsigned char *a = text(n, 1), *b;
	char *sa[MAXP], *sb[MAXP];
	int bounds = 1;

	k = parts(a, n, ends, sa);
	unit_ok("a 10 MB file is cut in a few dozen parts", k >= 16 && k <= 100,
	    "%zu parts", k);
	for (size_t i = 0; i < k; i++) {
		size_t len = ends[i] - start;

		if (len > CHUNK_PART_MAX || (i + 1 < k && len < chunk_avg(n) / 4))
			bounds = 0;
		start = ends[i];
	}
	unit_ok("every part within its bounds", bounds, "a part of the wrong size");
	unit_long("the parts make the whole file", (long)(k > 0 ? ends[k - 1] : 0),
	    (long)n);
	k2 = chunk_cut(a, n, ends2, MAXP);
	unit_ok("the same bytes, the same cuts", k2 == k &&
	    memcmp(ends, ends2, k * sizeof(*ends)) == 0, "cut otherwise");

	/* 40 bytes inserted in the middle: the parts before and (after a
	 * part or two) after it are the same bytes as before. */
	b = malloc(n + 40);
	memcpy(b, a, n / 2);
	memcpy(b + n / 2, "      name = \"Testshire County Council\";\n", 40);
	memcpy(b + n / 2 + 40, a + n / 2, n - n / 2);
	k2 = parts(b, n + 40, ends2, sb);
	for (size_t i = 0; i < k2; i++)
		for (size_t j = 0; j < k; j++)
			if (strcmp(sb[i], sa[j]) == 0) {
				shared++;
				break;
			}
	unit_ok("an edit in the middle changes at most 3 parts", k2 >= shared &&
	    k2 - shared <= 3, "%zu of %zu parts new", k2 - shared, k2);
	for (size_t i = 0; i < k; i++)
		free(sa[i]);
	for (size_t i = 0; i < k2; i++)
		free(sb[i]);

	unit_long("a small file is one part", (long)chunk_cut(a, 1000, ends, MAXP), 1);
	unit_long("an empty file has no part", (long)chunk_cut(a, 0, ends, MAXP), 0);
	unit_long("more parts than allowed: refused", (long)chunk_cut(a, n, ends, 4), 0);
	free(a);
	free(b);
}
