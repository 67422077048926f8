/* gemini.c: STUB, to be replaced: Gemini requests -> replies. */
#include "kilnet.h"
void gemini_respond(const struct site *s, const char *sni, const unsigned char *req, size_t len, struct reply *out)
{ (void)s; (void)sni; (void)req; (void)len; out->data = (const unsigned char *)"51 Not found\r\n"; out->len = 14; out->owned = NULL; out->status = 51; }
