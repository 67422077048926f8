/*
 * etcd.h: a client of etcd's v3 JSON gateway (/v3/kv/..., /v3/watch) over
 * libevent's HTTP client, with TLS and client certificates where the
 * endpoints say https, and failover between the endpoints. Used by the
 * store process only (store_etcd.c).
 */
#ifndef KILNET_ETCD_H
#define KILNET_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct etcd;

/* The endpoints ("https://127.0.0.1:2379"), resolved now (the store process
 * resolves before it gives up its files), and the TLS material as PEM text
 * (NULL for plain http). NULL with err on a bad endpoint or bad PEM. */
struct etcd *etcd_new(struct event_base *base, char *const *urls, size_t n,
    const char *ca_pem, const char *cert_pem, const char *key_pem,
    char *err, size_t errlen);
void         etcd_free(struct etcd *);

/*
 * One POST of req (a JSON object, taken) to path ("/v3/kv/range"), waited
 * for up to ETCD_CALL_MS, tried on each endpoint in turn from the last that
 * answered. 0 and *resp (the answer's JSON, the caller's) on a 200; -1 with
 * err when no endpoint answered or etcd refused (its message).
 */
int  etcd_call(struct etcd *, const char *path, json_t *req, json_t **resp,
         char *err, size_t errlen);

/* JSON helpers for the gateway: bytes are base64, int64 values strings. */
json_t  *etcd_bytes(const void *p, size_t n);
json_t  *etcd_str(const char *s);
json_t  *etcd_rev(int64_t);
int64_t  etcd_int(const json_t *);
/* A base64 field's bytes, NUL-terminated (not counted in *n); NULL when
 * it is missing or not base64. */
unsigned char *etcd_unbytes(const json_t *, size_t *n);
/* The key just past every key that starts with prefix (its range end). */
char    *etcd_prefix_end(const char *prefix);

/*
 * A watch of [key, end) from start_rev, on base. fn is called with each
 * message's header revision and: ETCD_W_EVENTS (changes from rev on),
 * ETCD_W_COMPACTED (start_rev is gone: read afresh), ETCD_W_CLOSED (the
 * stream ended: watch again). After ETCD_W_CLOSED the watch is over.
 */
enum { ETCD_W_CREATED = 1, ETCD_W_EVENTS, ETCD_W_COMPACTED, ETCD_W_CLOSED };
typedef void (*etcd_watch_fn)(void *arg, int what, int64_t rev);
int  etcd_watch(struct etcd *, const char *key, const char *end,
         int64_t start_rev, etcd_watch_fn fn, void *arg);
void etcd_watch_stop(struct etcd *);

#endif
