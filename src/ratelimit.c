/*
 * ratelimit.c: per-address limits, one table per worker (workers share
 * nothing, so no lock). Each client address (IPv4 by /32, IPv6 by /64, since
 * one host commonly holds a whole /64) has a token bucket for requests and a
 * count of open connections. server.c asks before each request and at each
 * accept/close; addresses in the allow list skip both.
 *
 * The table is allocated once: open addressing, a short probe window, and the
 * least recently used entry in the window is overwritten when the window is
 * full. So a request costs a hash and a few compares, never an allocation, and
 * a flood of new addresses costs memory bounded by RL_SLOTS.
 */
#include <sys/random.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

/* 64K entries of 40 bytes: 2.5 MB a worker, touched only as addresses come. */
#define RL_SLOTS    65536
/* Entries are never moved, so a key is always within this many slots of its
 * hash; a lookup compares at most this many keys. */
#define RL_WINDOW   8

struct rl_entry {
	uint64_t  key;       /* IPv4 address, or the /64 of an IPv6 address */
	uint64_t  used;      /* table clock at the last use; 0: free slot */
	double    tokens;
	long      last_ms;   /* when tokens were last refilled */
	uint32_t  conns;     /* open connections */
	uint8_t   v6;        /* key is an IPv6 /64 */
};

struct ratelimit {
	double           rate, burst;
	int              max_conns;
	struct cidr     *allow;
	size_t           n_allow;
	uint64_t         seed;     /* random: hash collisions cannot be planned */
	uint64_t         clock;    /* counts uses, for least recently used */
	struct rl_entry *slots;    /* NULL when every limit is off */
};

static int	 addr_bytes(const struct sockaddr *, unsigned char *, int *);
static int	 prefix_eq(const unsigned char *, const unsigned char *, int);
static uint64_t	 mix(uint64_t);
static struct rl_entry *lookup(struct ratelimit *, const struct sockaddr *);

/* Interim: each worker still keeps its own table (see ratelimit_new). */
struct rl_table {
	int unused;
};

struct rl_table *
ratelimit_table_new(void)
{
	return xcalloc(1, sizeof(struct rl_table));
}

void
ratelimit_table_free(struct rl_table *t)
{
	free(t);
}

struct ratelimit *
ratelimit_new(struct rl_table *t, double rate, double burst, int max_per_address,
    const struct cidr *allow, size_t n_allow)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	(void)t;
	rl->rate = rate > 0 ? rate : 0;
	/* A bucket smaller than one token could never serve a request. */
	rl->burst = burst >= 1 ? burst : 1;
	rl->max_conns = max_per_address > 0 ? max_per_address : 0;
	if (n_allow > 0) {
		rl->allow = xcalloc(n_allow, sizeof(*rl->allow));
		memcpy(rl->allow, allow, n_allow * sizeof(*allow));
		rl->n_allow = n_allow;
	}
	if (getrandom(&rl->seed, sizeof(rl->seed), 0) != sizeof(rl->seed))
		rl->seed = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ULL;
	if (rl->rate > 0 || rl->max_conns > 0)
		rl->slots = xcalloc(RL_SLOTS, sizeof(*rl->slots));
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->allow);
	free(rl->slots);
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

/*
 * The entry for sa's /32 or /64, created (bucket full, no connections) when
 * new; NULL when the address is exempt, has no IP family, or limits are off.
 */
static struct rl_entry *
lookup(struct ratelimit *rl, const struct sockaddr *sa)
{
	struct rl_entry *e, *free_e = NULL, *old = NULL;
	unsigned char a[16];
	uint64_t key = 0;
	size_t h;
	int fam;

	if (rl == NULL || rl->slots == NULL || addr_bytes(sa, a, &fam) == -1 ||
	    cidr_match(rl->allow, rl->n_allow, sa))
		return NULL;
	for (int i = 0; i < (fam == AF_INET ? 4 : 8); i++)
		key = key << 8 | a[i];
	h = (size_t)mix(key ^ rl->seed ^ (fam == AF_INET6)) & (RL_SLOTS - 1);
	rl->clock++;
	for (size_t i = 0; i < RL_WINDOW; i++) {
		e = &rl->slots[(h + i) & (RL_SLOTS - 1)];
		if (e->used == 0) {
			if (free_e == NULL)
				free_e = e;
			continue;
		}
		if (e->key == key && e->v6 == (fam == AF_INET6)) {
			e->used = rl->clock;
			return e;
		}
		/* An entry with open connections is kept when another can go:
		 * forgetting it would let that address open more. */
		if (old == NULL || (old->conns > 0 && e->conns == 0) ||
		    ((old->conns > 0) == (e->conns > 0) && e->used < old->used))
			old = e;
	}
	e = free_e != NULL ? free_e : old;
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->v6 = fam == AF_INET6;
	e->used = rl->clock;
	e->tokens = rl->burst;
	e->last_ms = -1;
	return e;
}

int
ratelimit_take(struct ratelimit *rl, const struct sockaddr *sa, long now_ms)
{
	struct rl_entry *e;
	double wait;

	if (rl == NULL || rl->rate <= 0 || (e = lookup(rl, sa)) == NULL)
		return 0;
	if (e->last_ms >= 0 && now_ms > e->last_ms) {
		e->tokens += (double)(now_ms - e->last_ms) * rl->rate / 1000.0;
		if (e->tokens > rl->burst)
			e->tokens = rl->burst;
	}
	/* A clock that went back refills nothing but is the new reference. */
	e->last_ms = now_ms;
	if (e->tokens >= 1.0) {
		e->tokens -= 1.0;
		return 0;
	}
	/* Whole seconds, rounded up: "44 0" would invite an instant retry. */
	wait = (1.0 - e->tokens) / rl->rate;
	if (wait < 1.0)
		return 1;
	if (wait > 86400.0)
		return 86400;
	return (int)wait + ((double)(int)wait < wait);
}

int
ratelimit_open(struct ratelimit *rl, const struct sockaddr *sa)
{
	struct rl_entry *e;

	if (rl == NULL || rl->max_conns <= 0 || (e = lookup(rl, sa)) == NULL)
		return 0;
	if (e->conns >= (uint32_t)rl->max_conns)
		return -1;
	e->conns++;
	return 0;
}

void
ratelimit_close(struct ratelimit *rl, const struct sockaddr *sa)
{
	struct rl_entry *e;

	if (rl == NULL || rl->max_conns <= 0 || (e = lookup(rl, sa)) == NULL)
		return;
	/* 0 when the entry was reused for another address meanwhile. */
	if (e->conns > 0)
		e->conns--;
}
