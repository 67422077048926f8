/* render_gemtext.c: STUB, to be replaced: dataset -> gemtext pages. */
#include "kilnet.h"
void render_gemtext_home(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gemtext_members(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gemtext_member(const struct network *n, const struct member *m, const struct render_opts *o, struct buf *out) { (void)n; (void)m; (void)o; (void)out; }
void render_gemtext_join(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gemtext_text_line(const char *s, struct buf *out) { buf_adds(out, s); }
void render_gemtext_search(const struct render_opts *o, const char *q, const struct search_hit *h, size_t n, struct buf *out) { (void)o; (void)q; (void)h; (void)n; (void)out; }
