/* render_gopher.c: STUB, to be replaced: dataset -> gophermaps and documents. */
#include "kilnet.h"
void render_gopher_root(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gopher_members(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gopher_member(const struct network *n, const struct member *m, const struct render_opts *o, struct buf *out) { (void)n; (void)m; (void)o; (void)out; }
void render_gopher_join(const struct network *n, const struct render_opts *o, struct buf *out) { (void)n; (void)o; (void)out; }
void render_gopher_item(struct buf *out, char type, const char *display, const char *selector, const char *host, int port) { buf_printf(out, "%c%s\t%s\t%s\t%d\r\n", type, display, selector, host, port); }
void render_gopher_info(struct buf *out, const char *text, const struct render_opts *o) { (void)o; render_gopher_item(out, 'i', text, "", "error.host", 1); }
void render_gopher_from_gemtext(const unsigned char *g, size_t len, const struct render_opts *o, struct buf *out) { (void)g; (void)len; (void)o; (void)out; }
void render_gopher_search(const struct render_opts *o, const char *q, const struct search_hit *h, size_t n, struct buf *out) { (void)o; (void)q; (void)h; (void)n; (void)out; }
