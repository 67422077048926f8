/* gopher.c: STUB, to be replaced: Gopher selectors -> replies. */
#include "kilnet.h"
void gopher_respond(const struct site *s, const unsigned char *req, size_t len, struct reply *out)
{ (void)s; (void)req; (void)len; out->data = (const unsigned char *)"3Not found\t\terror.host\t1\r\n.\r\n"; out->len = 29; out->owned = NULL; out->status = 3; }
