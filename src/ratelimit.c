/* ratelimit.c: STUB, to be replaced: per-address token buckets. */
#include <sys/socket.h>
#include <stdlib.h>
#include "kilnet.h"
struct ratelimit { int unused; };
struct ratelimit *ratelimit_new(double r, double b, int m, const struct cidr *a, size_t n) { (void)r; (void)b; (void)m; (void)a; (void)n; return xcalloc(1, sizeof(struct ratelimit)); }
void ratelimit_free(struct ratelimit *r) { free(r); }
int cidr_match(const struct cidr *c, size_t n, const struct sockaddr *a) { (void)c; (void)n; (void)a; return 0; }
int ratelimit_take(struct ratelimit *r, const struct sockaddr *a, long now) { (void)r; (void)a; (void)now; return 0; }
int ratelimit_open(struct ratelimit *r, const struct sockaddr *a) { (void)r; (void)a; return 0; }
void ratelimit_close(struct ratelimit *r, const struct sockaddr *a) { (void)r; (void)a; }
