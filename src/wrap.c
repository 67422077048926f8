/* wrap.c: STUB, to be replaced: wrapping UTF-8 text at a column. */
#include <string.h>
#include "kilnet.h"
void wrap_text(const char *text, int columns, void (*emit)(void *, const char *, size_t), void *arg) { (void)columns; emit(arg, text, strlen(text)); }
