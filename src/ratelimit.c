/*
 * ratelimit.c: per-address limits, one table for all workers. Each client
 * address (IPv4 by /32, IPv6 by /64, since one host commonly holds a whole
 * /64) has a request rate limit and a count of open connections. conn.c asks
 * before each request and at each accept/close; addresses in the allow list
 * skip both.
 *
 * The table is mapped shared by the master before the first fork, so every
 * worker (also those forked after a reload) counts in it, and a client gets
 * the configured rate whatever the number of workers. It is updated with C11
 * atomics only: no lock, so no worker ever waits for another on the request
 * path. Open addressing, a short probe window, and the least recently used
 * entry in the window is taken over when the window is full. So a request
 * costs a hash, a few compares and one or two atomic operations, never an
 * allocation, and a flood of new addresses costs memory bounded by RL_SLOTS.
 *
 * Races are settled on the lenient side. Two workers may take over one slot
 * at once, or one may count in an entry another has just given to a new
 * address: a limit is then briefly approximate (an address may get a few
 * requests or a connection more, or one less), but every access stays inside
 * the table, and a connection count never goes below 0 or wraps.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* 64K entries of 32 bytes: 2 MiB shared by all workers, touched only as
 * addresses come. */
#define RL_SLOTS    65536
/* Entries are never moved, so a key is always within this many slots of its
 * hash; a lookup compares at most this many keys. */
#define RL_WINDOW   8
/* Tries at taking a slot when other workers take the same ones meanwhile. */
#define RL_CLAIMS   4
/* The bucket in nanoseconds, in 64 bits with room for sums: a rate slower
 * than one request in 73 years (or such a burst) is that. */
#define RL_NS_MAX   ((int64_t)1 << 61)
/* Keys are 64 bits: an IPv6 address's /64, and IPv4 a.b.c.d as if it were
 * the /64 ff00:0:AABB:CCDD::/64 (its bytes in hex). The stored word is ~key,
 * so that 0 marks a free slot; the one key whose word would be 0,
 * ffff:ffff:ffff:ffff::/64, shares the key of the /64 below it. All of these
 * are multicast, never a source address (RFC 4291 2.7): no client shares a
 * key with another, even with an address claimed by a PROXY header. */
#define RL_KEY_V4   0xff00000000000000ULL
#define RL_KEY_NONE UINT64_MAX

/* The table is shared between processes: its atomics must be plain
 * instructions, not a lock inside one process's memory. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 &&
    ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are not lock-free here");

/* One address. Each field is a word of its own, updated alone: there is no
 * lock to change two at once. */
struct rl_entry {
	_Atomic uint64_t key;     /* ~key (see RL_KEY_V4); 0: a free slot */
	_Atomic int64_t  used;    /* CLOCK_MONOTONIC ms at the last use */
	_Atomic int64_t  tat;     /* GCRA's theoretical arrival time, ns */
	_Atomic uint32_t conns;   /* open connections */
	uint32_t         pad;
};

/* The shared mapping: never written after the fork but through atomics. */
struct rl_table {
	uint64_t        seed;     /* random, the same in every worker */
	int             owned;    /* mapped by ratelimit_new (no master's) */
	_Alignas(64) struct rl_entry slots[RL_SLOTS];
};

/* One worker's view: its config's limits on the shared table. */
struct ratelimit {
	struct rl_table *t;
	int64_t          t_ns;     /* ns between requests at the rate; 0: off */
	int64_t          tau_ns;   /* burst * t_ns: how far ahead tat may run */
	int              max_conns;
	struct cidr     *allow;
	size_t           n_allow;
};

static int	 addr_bytes(const struct sockaddr *, unsigned char *, int *);
static int	 prefix_eq(const unsigned char *, const unsigned char *, int);
static uint64_t	 mix(uint64_t);
static int	 addr_key(const struct ratelimit *, const struct sockaddr *,
		    uint64_t *);
static struct rl_entry *lookup(struct ratelimit *, uint64_t, long, int);
static void	 conns_down(struct rl_entry *);

struct rl_table *
ratelimit_table_new(void)
{
	struct rl_table *t;

	/* Shared and anonymous: inherited by each fork, zero-filled (every
	 * slot free), and pages are only allocated when first touched. */
	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED) {
		log_error("cannot map the rate limit table: %s", strerror(errno));
		return NULL;
	}
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ (uint64_t)now_ms() ^
		    0x9e3779b97f4a7c15ULL;
	return t;
}

void
ratelimit_table_free(struct rl_table *t)
{
	if (t != NULL)
		munmap(t, sizeof(*t));
}

struct ratelimit *
ratelimit_new(struct rl_table *t, double rate, double burst, int max_per_address,
    const struct cidr *allow, size_t n_allow)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	double tn, tau;

	if (rate > 0) {
		/* A bucket smaller than one token could never serve a request. */
		tn = 1e9 / rate;
		rl->t_ns = tn < 1 ? 1 : tn > (double)RL_NS_MAX ? RL_NS_MAX :
		    (int64_t)tn;
		tau = (burst >= 1 ? burst : 1) * (double)rl->t_ns;
		rl->tau_ns = tau > (double)RL_NS_MAX ? RL_NS_MAX : (int64_t)tau;
		if (rl->tau_ns < rl->t_ns)
			rl->tau_ns = rl->t_ns;
	}
	rl->max_conns = max_per_address > 0 ? max_per_address : 0;
	if (n_allow > 0) {
		rl->allow = xcalloc(n_allow, sizeof(*rl->allow));
		memcpy(rl->allow, allow, n_allow * sizeof(*allow));
		rl->n_allow = n_allow;
	}
	/* Without a master's table (none could be mapped), one of its own. */
	if (t == NULL && (rl->t_ns > 0 || rl->max_conns > 0)) {
		if ((t = ratelimit_table_new()) == NULL) {
			ratelimit_free(rl);
			return NULL;
		}
		t->owned = 1;
	}
	rl->t = t;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	if (rl->t != NULL && rl->t->owned)
		ratelimit_table_free(rl->t);
	free(rl->allow);
	free(rl);
}

/*
 * The address as 4 or 16 bytes in *fam's family; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4 clients) is
 * IPv4. 0, or -1 for other families.
 */
static int
addr_bytes(const struct sockaddr *sa, unsigned char *out, int *fam)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*fam = AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(out, a + 12, 4);
			*fam = AF_INET;
		} else {
			memcpy(out, a, 16);
			*fam = AF_INET6;
		}
		return 0;
	}
	return -1;
}

static int
prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

int
cidr_match(const struct cidr *v, size_t n, const struct sockaddr *sa)
{
	unsigned char a[16], m[16];
	int fam;

	if (n == 0 || addr_bytes(sa, a, &fam) == -1)
		return 0;
	/* An IPv4 client also matches a range written as ::ffff:a.b.c.d/N. */
	memset(m, 0, 10);
	m[10] = m[11] = 0xff;
	memcpy(m + 12, a, 4);
	for (size_t i = 0; i < n; i++) {
		if (v[i].family == fam && prefix_eq(v[i].addr, a, v[i].bits))
			return 1;
		if (fam == AF_INET && v[i].family == AF_INET6 &&
		    prefix_eq(v[i].addr, m, v[i].bits))
			return 1;
	}
	return 0;
}

/* splitmix64's finaliser: every key bit reaches every slot bit. */
static uint64_t
mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* sa's /32 or /64 as the word stored in its entry (never 0); -1 when the
 * address is exempt, has no IP family, or there is no table. */
static int
addr_key(const struct ratelimit *rl, const struct sockaddr *sa, uint64_t *key)
{
	unsigned char a[16];
	uint64_t k = 0;
	int fam;

	if (rl == NULL || rl->t == NULL || addr_bytes(sa, a, &fam) == -1 ||
	    cidr_match(rl->allow, rl->n_allow, sa))
		return -1;
	for (int i = 0; i < (fam == AF_INET ? 4 : 8); i++)
		k = k << 8 | a[i];
	if (fam == AF_INET)
		k |= RL_KEY_V4;
	else if (k == RL_KEY_NONE)
		k--;
	*key = ~k;
	return 0;
}

/*
 * The entry of key (a stored word from addr_key) at time now (ms). When there
 * is none: NULL, or with create a new one (no requests yet, no connections),
 * in a free slot of the window or over its least recently used entry, one
 * without open connections when there is one (forgetting those would let its
 * address open more). NULL too when other workers kept taking the slots.
 */
static struct rl_entry *
lookup(struct ratelimit *rl, uint64_t key, long now, int create)
{
	struct rl_table *t = rl->t;
	struct rl_entry *e, *free_e, *old;
	uint64_t k, old_k = 0;
	int64_t used, old_used = 0;
	int busy, old_busy = 0;
	size_t h;

	h = (size_t)mix(key ^ t->seed) & (RL_SLOTS - 1);
	for (int tries = 0; tries < RL_CLAIMS; tries++) {
		free_e = old = NULL;
		for (size_t i = 0; i < RL_WINDOW; i++) {
			e = &t->slots[(h + i) & (RL_SLOTS - 1)];
			k = atomic_load_explicit(&e->key, memory_order_acquire);
			if (k == 0) {
				if (free_e == NULL)
					free_e = e;
				continue;
			}
			used = atomic_load_explicit(&e->used,
			    memory_order_relaxed);
			if (k == key) {
				/* Written only when the ms changed: most
				 * lookups leave the cache line shared. */
				if (create && used != now)
					atomic_store_explicit(&e->used, now,
					    memory_order_relaxed);
				return e;
			}
			busy = atomic_load_explicit(&e->conns,
			    memory_order_relaxed) > 0;
			if (old == NULL || (old_busy && !busy) ||
			    (old_busy == busy && used < old_used)) {
				old = e;
				old_k = k;
				old_used = used;
				old_busy = busy;
			}
		}
		if (!create)
			return NULL;
		/* A free slot is all zeros (slots are never freed): taking
		 * its key is all there is to do. */
		e = free_e != NULL ? free_e : old;
		k = free_e != NULL ? 0 : old_k;
		if (atomic_compare_exchange_strong_explicit(&e->key, &k, key,
		    memory_order_acq_rel, memory_order_acquire)) {
			if (free_e == NULL) {
				/* The old address's counts go. A worker that
				 * looked it up just before may still count
				 * in them: the brief inexactness above. */
				atomic_store_explicit(&e->tat, 0,
				    memory_order_relaxed);
				atomic_store_explicit(&e->conns, 0,
				    memory_order_relaxed);
			}
			atomic_store_explicit(&e->used, now,
			    memory_order_relaxed);
			return e;
		}
		/* Another worker took the slot first, maybe for this very
		 * address; else look again. */
		if (k == key)
			return e;
	}
	return NULL;
}

/*
 * GCRA, the token bucket in one word: tat is when the address's bucket would
 * be full again. A request at now moves it T (1/rate) later, from now when it
 * lies in the past; it is allowed when that leaves tat at most tau (burst
 * requests' worth) ahead of now. One compare-and-swap decides among workers.
 */
int
ratelimit_take(struct ratelimit *rl, const struct sockaddr *sa, long now_ms)
{
	struct rl_entry *e;
	uint64_t key;
	int64_t now, tat, next, wait;

	if (rl == NULL || rl->t_ns == 0 || addr_key(rl, sa, &key) == -1 ||
	    (e = lookup(rl, key, now_ms, 1)) == NULL)
		return 0;
	now = (int64_t)now_ms * 1000000;
	tat = atomic_load_explicit(&e->tat, memory_order_relaxed);
	do {
		next = (tat > now ? tat : now) + rl->t_ns;
		if (next - now > rl->tau_ns) {
			/* Whole seconds, rounded up: "44 0" would invite an
			 * instant retry. */
			wait = next - rl->tau_ns - now;
			if (wait > (int64_t)86400 * 1000000000)
				return 86400;
			wait = (wait + 999999999) / 1000000000;
			return wait < 1 ? 1 : (int)wait;
		}
	} while (!atomic_compare_exchange_weak_explicit(&e->tat, &tat, next,
	    memory_order_relaxed, memory_order_relaxed));
	return 0;
}

int
ratelimit_open(struct ratelimit *rl, const struct sockaddr *sa)
{
	struct rl_entry *e;
	uint64_t key;
	uint32_t n;

	if (rl == NULL || rl->max_conns <= 0 || addr_key(rl, sa, &key) == -1 ||
	    (e = lookup(rl, key, now_ms(), 1)) == NULL)
		return 0;
	/* Counted only while under the limit: the count never passes it, not
	 * even for a moment that another worker could see. */
	n = atomic_load_explicit(&e->conns, memory_order_relaxed);
	do {
		if (n >= (uint32_t)rl->max_conns)
			return -1;
	} while (!atomic_compare_exchange_weak_explicit(&e->conns, &n, n + 1,
	    memory_order_relaxed, memory_order_relaxed));
	/* The slot went to another address meanwhile: that count is not
	 * ours (unless the reset took it back already). */
	if (atomic_load_explicit(&e->key, memory_order_acquire) != key)
		conns_down(e);
	return 0;
}

void
ratelimit_close(struct ratelimit *rl, const struct sockaddr *sa)
{
	struct rl_entry *e;
	uint64_t key;

	if (rl == NULL || rl->max_conns <= 0 || addr_key(rl, sa, &key) == -1 ||
	    (e = lookup(rl, key, 0, 0)) == NULL)
		return;
	conns_down(e);
}

/* One connection fewer; none when the count is 0 already (the entry was
 * given to another address, and maybe back, meanwhile): never below 0. */
static void
conns_down(struct rl_entry *e)
{
	uint32_t n = atomic_load_explicit(&e->conns, memory_order_relaxed);

	while (n > 0 && !atomic_compare_exchange_weak_explicit(&e->conns, &n,
	    n - 1, memory_order_relaxed, memory_order_relaxed))
		;
}
