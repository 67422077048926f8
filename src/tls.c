/* tls.c: STUB, to be replaced: OpenSSL contexts, certificates, SNI. */
#include "kilnet.h"
struct tls *tls_setup(const struct config *c, struct diag *d) { (void)c; diag_add(d, NULL, 0, NULL, "tls not written yet"); return NULL; }
void tls_free(struct tls *t) { (void)t; }
