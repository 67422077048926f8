/* log.c: STUB, to be replaced: server and access log lines. */
#include <stdio.h>
#include "kilnet.h"
void log_init(const char *a, int an, int w) { (void)a; (void)an; (void)w; }
void log_msg(const char *level, const char *fmt, ...) { va_list ap; va_start(ap, fmt); fprintf(stderr, "kilnet: %s: ", level); vfprintf(stderr, fmt, ap); fputc('\n', stderr); va_end(ap); }
