/* site.c: STUB, to be replaced: the immutable path -> response table. */
#include "kilnet.h"
struct site *site_build(const struct config *c, struct diag *d) { (void)c; diag_add(d, NULL, 0, NULL, "site not written yet"); return NULL; }
void site_free(struct site *s) { (void)s; }
const struct resource *site_gemini(const struct site *s, const char *p) { (void)s; (void)p; return NULL; }
const struct resource *site_gopher(const struct site *s, const char *p) { (void)s; (void)p; return NULL; }
int site_export(const struct site *s, const char *dir, struct diag *d) { (void)s; (void)dir; (void)d; return -1; }
const char *mime_for(const char *name) { (void)name; return "application/octet-stream"; }
