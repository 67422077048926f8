/*
 * sesscache.c: the TLS session cache every worker shares, in memory the master
 * maps before the first fork and keeps across reloads (as nginx's
 * "ssl_session_cache shared:" does). With it a TLS 1.3 ticket is only a
 * session's 32-byte identifier instead of the whole sealed session (about 200
 * bytes), and a client sends it back in its ClientHello: about 400 bytes less
 * a resumed view. Any worker resumes a session any other made.
 *
 * Slots are direct-mapped by the identifier (random: OpenSSL makes it); a new
 * session takes its slot whatever was there, so the cache keeps the latest
 * sessions and costs a fixed size. Workers never wait for each other: each
 * slot has a sequence number, odd while it is written; a writer that finds it
 * odd gives up (the session is simply not stored), a reader copies the slot and
 * keeps the copy only when the number was even and unchanged across the copy.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "server.h"

struct sc_slot {
	atomic_uint    seq;                  /* odd while written */
	uint16_t       len;                  /* DER bytes; 0: empty */
	uint8_t        id_len;
	unsigned char  id[SESSCACHE_ID_MAX];
	int64_t        expires;              /* time(NULL) */
	unsigned char  der[SESSCACHE_DER_MAX];
};

struct sesscache {
	size_t          n;                   /* a power of two */
	uint64_t        seed;
	struct sc_slot  slot[];
};

static size_t
cache_bytes(size_t n)
{
	return sizeof(struct sesscache) + n * sizeof(struct sc_slot);
}

struct sesscache *
sesscache_new(size_t n)
{
	struct sesscache *c;
	size_t p = 1;

	while (p < n)
		p <<= 1;
	c = mmap(NULL, cache_bytes(p), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	c->n = p;
	if (getrandom(&c->seed, sizeof(c->seed), 0) != sizeof(c->seed))
		c->seed = (uint64_t)(uintptr_t)c;
	return c;
}

void
sesscache_free(struct sesscache *c)
{
	if (c != NULL)
		munmap(c, cache_bytes(c->n));
}

static struct sc_slot *
slot_for(struct sesscache *c, const unsigned char *id, size_t len)
{
	uint64_t h = c->seed;

	/* FNV-1a over the identifier, mixed with the seed. */
	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 0x100000001b3ULL;
	return &c->slot[h & (c->n - 1)];
}

/* Takes the slot for writing: 0, or -1 when another worker writes it now. */
static int
slot_lock(struct sc_slot *s, unsigned int *seq)
{
	unsigned int v = atomic_load_explicit(&s->seq, memory_order_relaxed);

	if ((v & 1) != 0 || !atomic_compare_exchange_strong(&s->seq, &v, v + 1))
		return -1;
	*seq = v;
	return 0;
}

static void
slot_unlock(struct sc_slot *s, unsigned int seq)
{
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void
sesscache_put(struct sesscache *c, const unsigned char *id, size_t id_len,
    const unsigned char *der, size_t len, int64_t expires)
{
	struct sc_slot *s;
	unsigned int seq;

	if (c == NULL || id_len == 0 || id_len > SESSCACHE_ID_MAX || len == 0 ||
	    len > SESSCACHE_DER_MAX)
		return;
	s = slot_for(c, id, id_len);
	if (slot_lock(s, &seq) == -1)
		return;
	s->id_len = (uint8_t)id_len;
	memcpy(s->id, id, id_len);
	memcpy(s->der, der, len);
	s->len = (uint16_t)len;
	s->expires = expires;
	slot_unlock(s, seq);
}

size_t
sesscache_get(struct sesscache *c, const unsigned char *id, size_t id_len,
    unsigned char *der, int64_t now)
{
	unsigned char sid[SESSCACHE_ID_MAX];
	struct sc_slot *s;
	unsigned int v1, v2;
	size_t len, sid_len;
	int64_t expires;

	if (c == NULL || id_len == 0 || id_len > SESSCACHE_ID_MAX)
		return 0;
	s = slot_for(c, id, id_len);
	v1 = atomic_load_explicit(&s->seq, memory_order_acquire);
	if ((v1 & 1) != 0)
		return 0;
	len = s->len;
	sid_len = s->id_len;
	expires = s->expires;
	if (len > SESSCACHE_DER_MAX || sid_len > SESSCACHE_ID_MAX)
		return 0;
	memcpy(sid, s->id, sid_len);
	memcpy(der, s->der, len);
	atomic_thread_fence(memory_order_acquire);
	v2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if (v1 != v2 || len == 0 || sid_len != id_len ||
	    memcmp(sid, id, id_len) != 0 || expires <= now)
		return 0;
	return len;
}

void
sesscache_remove(struct sesscache *c, const unsigned char *id, size_t id_len)
{
	struct sc_slot *s;
	unsigned int seq;

	if (c == NULL || id_len == 0 || id_len > SESSCACHE_ID_MAX)
		return;
	s = slot_for(c, id, id_len);
	if (slot_lock(s, &seq) == -1)
		return;
	if (s->id_len == id_len && memcmp(s->id, id, id_len) == 0)
		s->len = 0;
	slot_unlock(s, seq);
}
