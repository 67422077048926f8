/*
 * render_page.c: how a list that grows with the network (the member list, in
 * gemtext and as a Gopher menu) is cut into pages of at most RENDER_PAGE_MAX
 * bytes. Both renderers use it with their own line sizes and page frames.
 */
#include "kilnet.h"

size_t
render_cut_pages(const size_t *off, size_t n, size_t frame1, size_t frame,
    size_t *first)
{
	const size_t budget = RENDER_PAGE_MAX - RENDER_HEADER_ROOM;
	size_t p = 0, i = 0;

	while (i < n) {
		size_t f = p == 0 ? frame1 : frame;
		size_t avail = budget > f ? budget - f : 0, j = i + 1;

		/* At least one item a page, however long. */
		while (j < n && off[j + 1] - off[i] <= avail)
			j++;
		first[p++] = i;
		i = j;
	}
	first[p] = n;
	return p;
}
