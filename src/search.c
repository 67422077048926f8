/* search.c: STUB, to be replaced: the member search index. */
#include "kilnet.h"
struct search_index *search_build(const struct network *n) { (void)n; return NULL; }
int search_run(const struct search_index *s, const char *q, size_t ql, struct search_hit *h, size_t max) { (void)s; (void)q; (void)ql; (void)h; (void)max; return 0; }
void search_free(struct search_index *s) { (void)s; }
