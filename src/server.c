/* server.c: STUB, to be replaced: listeners, connections, workers. */
#include "kilnet.h"
int server_run(const struct config *c, const struct site *s, struct tls *t) { (void)c; (void)s; (void)t; return 1; }
