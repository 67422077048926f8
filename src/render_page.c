/*
 * render_page.c: how what grows with the network (the member list, search
 * results; in gemtext and as Gopher menus) is cut into pages of at most
 * RENDER_PAGE_MAX bytes. Both renderers use it with their own sizes and frames.
 */
#include <stddef.h>
#include <string.h>

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

void
render_search_frame(const struct render_opts *o, const char *query, size_t page,
    void (*render)(const struct render_opts *, const char *,
    const struct search_page *, struct buf *),
    size_t (*cost)(const struct search_hit *, const struct render_opts *),
    struct search_page *sp)
{
	struct search_page frame;
	struct buf b = { 0 };
	const size_t budget = RENDER_PAGE_MAX - RENDER_HEADER_ROOM;

	/* The page without its hits, its numbers as wide as they go: what is
	 * left of the budget is for the hits. */
	memset(&frame, 0, sizeof(frame));
	frame.page = SEARCH_MAX_PAGE - 1;
	frame.pages = SEARCH_MAX_PAGE;
	frame.total = (size_t)SEARCH_MAX_PAGE * SEARCH_PAGE_HITS;
	render(o, query, &frame, &b);
	memset(sp, 0, offsetof(struct search_page, hits));
	sp->page = page;
	sp->budget = budget > b.len ? budget - b.len : 0;
	sp->cost = cost;
	sp->ro = o;
	buf_free(&b);
}
