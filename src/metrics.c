/*
 * metrics.c: the server's counters, in one region that every process shares
 * (mapped by the master before it forks the workers, so that they, the editing
 * process and the metrics process all inherit it), and their Prometheus text.
 *
 *   workers         -> requests, bytes, durations, handshakes, limits (their
 *                      slot's block), open connections (their own cell)
 *   editing process -> edits
 *   master          -> worker restarts, reloads, which worker serves each
 *                      slot, the dataset's size
 *   metrics process -> reads it all (metrics_write, metrics_health)
 *
 * Everything is a C11 atomic, updated with relaxed operations: no lock, and a
 * request costs a few uncontended additions. Counters live per worker slot, so
 * that two workers on two cores never write the same cache line; a slot's
 * counters outlive its workers (a restart, a reload), so every counter starts
 * at 0 only when kilnet does. Open connections are a gauge, and a worker
 * killed with connections open would leave its count behind: so each worker
 * process counts them in a cell of its own, which the master empties when it
 * reaps that process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* server.workers is at most 256 (config.c). */
#define SLOTS        256
/* Worker processes alive at once: a slot's serving worker and those that
 * reloads retired and that still finish their connections. */
#define CELLS        1024
/* Gemini and Titan statuses are two digits; Spartan's one; Gopher and Nex
 * are ok (0) or error (1). */
#define STATUSES     100
/* The duration histogram's upper bounds, in ms (Prometheus's default
 * buckets, 5 ms to 10 s), and the +Inf bucket after them. */
static const long bucket_ms[] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
    5000, 10000 };
#define BUCKETS      (sizeof(bucket_ms) / sizeof(bucket_ms[0]) + 1)
/* The last reload's failure, one line, as /health gives it. */
#define WHY_MAX      200

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2 &&
    ATOMIC_CHAR_LOCK_FREE == 2, "the shared counters need lock-free atomics");

/* One worker slot's counters: written by its workers only. */
struct slot {
	_Atomic uint64_t  requests[MP_COUNT][STATUSES];
	_Atomic uint64_t  bytes[MP_COUNT];
	_Atomic uint64_t  limited[MP_COUNT];
	_Atomic uint64_t  duration[MP_COUNT][BUCKETS];   /* not cumulative */
	_Atomic uint64_t  duration_ms[MP_COUNT];
	_Atomic uint64_t  handshakes[2];                 /* full, resumed */
	_Atomic uint64_t  handshake_failures;
	_Atomic uint64_t  refused[2];                    /* enum metric_refusal */
} __attribute__((aligned(64)));

/* One worker process's open connections, by listener kind. */
struct cell {
	_Atomic int32_t   pid;                           /* 0: free */
	_Atomic int64_t   open[4];                       /* enum proto_kind */
} __attribute__((aligned(64)));

struct metrics {
	/* The master's. */
	_Atomic uint64_t  restarts[2];                   /* crash, sandbox */
	_Atomic uint64_t  reloads[2];                    /* ok, failed */
	_Atomic int64_t   last_reload_ms;                /* CLOCK_REALTIME */
	_Atomic uint64_t  members;
	_Atomic int32_t   n_slots;                       /* serving now */
	_Atomic int32_t   high_slot;                     /* slots ever used */
	_Atomic int32_t   slot_pid[SLOTS];               /* its current worker */
	_Atomic int32_t   slot_ready[SLOTS];             /* the worker serving */
	/* The last reload's result; why is written between two changes of
	 * why_seq (odd while it changes), so that a reader never takes half. */
	_Atomic int32_t   reload_failed;
	_Atomic uint32_t  why_seq;
	_Atomic char      why[WHY_MAX];
	/* The editing process's. */
	_Atomic uint64_t  edits[3];                      /* enum metric_edit */
	struct cell       cells[CELLS];
	struct slot       slots[SLOTS];
};

/* A worker's part. */
struct metrics_worker {
	struct slot      *s;
	struct cell      *c;                             /* NULL: no cell free */
};

/* The region of this process: set by metrics_new in the master before it
 * forks its workers, inherited by every child, never changed after; the
 * editing process counts through it (metrics_edit). */
static struct metrics *region;

struct metrics *
metrics_new(void)
{
	struct metrics *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		log_error("cannot map the metrics' shared memory: %s", strerror(errno));
		return NULL;
	}
	region = m;
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (region == m)
		region = NULL;
	munmap(m, sizeof(*m));
}

int
metrics_read_only(struct metrics *m)
{
	if (m == NULL || mprotect(m, sizeof(*m), PROT_READ) == 0)
		return 0;
	log_error("metrics: cannot make the shared counters read only: %s",
	    strerror(errno));
	return -1;
}

/* ------------------------------------------------------------ the workers */

struct metrics_worker *
metrics_worker_new(struct metrics *m, int slot)
{
	struct metrics_worker *w;
	pid_t pid = getpid();

	if (m == NULL || slot < 0 || slot >= SLOTS)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->s = &m->slots[slot];
	for (size_t i = 0; i < CELLS && w->c == NULL; i++) {
		int32_t free_pid = 0;

		if (atomic_compare_exchange_strong(&m->cells[i].pid, &free_pid, pid))
			w->c = &m->cells[i];
	}
	if (w->c == NULL)
		log_warn("metrics: no cell free for this worker's open connections "
		    "(%d in use): kilnet_connections_open leaves them out", CELLS);
	return w;
}

void
metrics_worker_free(struct metrics_worker *w)
{
	free(w);
}

void
metrics_serving(struct metrics *m, int slot)
{
	if (m != NULL && slot >= 0 && slot < SLOTS)
		atomic_store(&m->slot_ready[slot], (int32_t)getpid());
}

#define ADD(p, n) atomic_fetch_add_explicit((p), (n), memory_order_relaxed)

void
metrics_request(struct metrics_worker *w, int proto, int status, size_t bytes,
    long ms)
{
	size_t b;

	if (w == NULL)
		return;
	if (proto == MP_GOPHER || proto == MP_NEX)
		status = status != 0;
	if (status < 0 || status >= STATUSES)
		status = 0;
	ADD(&w->s->requests[proto][status], 1);
	ADD(&w->s->bytes[proto], bytes);
	if (ms < 0)
		ms = 0;
	for (b = 0; b < BUCKETS - 1 && ms > bucket_ms[b]; b++)
		;
	ADD(&w->s->duration[proto][b], 1);
	ADD(&w->s->duration_ms[proto], (uint64_t)ms);
}

void
metrics_limited(struct metrics_worker *w, int proto)
{
	if (w != NULL)
		ADD(&w->s->limited[proto], 1);
}

void
metrics_handshake(struct metrics_worker *w, int resumed)
{
	if (w != NULL)
		ADD(&w->s->handshakes[resumed ? 1 : 0], 1);
}

void
metrics_handshake_failed(struct metrics_worker *w)
{
	if (w != NULL)
		ADD(&w->s->handshake_failures, 1);
}

void
metrics_refused(struct metrics_worker *w, int reason)
{
	if (w != NULL)
		ADD(&w->s->refused[reason], 1);
}

void
metrics_open(struct metrics_worker *w, int kind, int delta)
{
	if (w != NULL && w->c != NULL)
		ADD(&w->c->open[kind], delta);
}

/* ----------------------------------------------- the master, the editor */

void
metrics_slots(struct metrics *m, int n)
{
	if (m == NULL)
		return;
	if (n > SLOTS)
		n = SLOTS;
	atomic_store(&m->n_slots, n);
	if (n > atomic_load(&m->high_slot))
		atomic_store(&m->high_slot, n);
}

void
metrics_worker_started(struct metrics *m, int slot, pid_t pid)
{
	if (m != NULL && slot >= 0 && slot < SLOTS)
		atomic_store(&m->slot_pid[slot], (int32_t)pid);
}

void
metrics_worker_gone(struct metrics *m, int slot, pid_t pid, int restart)
{
	int32_t p = (int32_t)pid;

	if (m == NULL)
		return;
	/* Its connections went with it. */
	for (size_t i = 0; i < CELLS; i++) {
		if (atomic_load(&m->cells[i].pid) != p)
			continue;
		for (size_t k = 0; k < 4; k++)
			atomic_store(&m->cells[i].open[k], 0);
		atomic_store(&m->cells[i].pid, 0);
		break;
	}
	if (slot >= 0 && slot < SLOTS)
		atomic_compare_exchange_strong(&m->slot_pid[slot], &p, 0);
	if (restart == MW_CRASH || restart == MW_SANDBOX)
		ADD(&m->restarts[restart], 1);
}

void
metrics_site_loaded(struct metrics *m)
{
	struct timespec ts;

	if (m == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	atomic_store(&m->last_reload_ms, (int64_t)ts.tv_sec * 1000 +
	    ts.tv_nsec / 1000000);
	atomic_store(&m->reload_failed, 0);
}

void
metrics_reload(struct metrics *m, int ok, const char *why)
{
	size_t i;

	if (m == NULL)
		return;
	ADD(&m->reloads[ok ? 0 : 1], 1);
	if (ok) {
		metrics_site_loaded(m);
		return;
	}
	atomic_fetch_add(&m->why_seq, 1);
	for (i = 0; why != NULL && why[i] != '\0' && i < WHY_MAX - 1; i++)
		atomic_store_explicit(&m->why[i], why[i], memory_order_relaxed);
	atomic_store_explicit(&m->why[i], '\0', memory_order_relaxed);
	atomic_fetch_add(&m->why_seq, 1);
	atomic_store(&m->reload_failed, 1);
}

void
metrics_members(struct metrics *m, size_t n)
{
	if (m != NULL)
		atomic_store(&m->members, (uint64_t)n);
}

void
metrics_edit(int result)
{
	if (region != NULL && result >= 0 && result < 3)
		ADD(&region->edits[result], 1);
}

/* ---------------------------------------------------- the metrics process */

/* The failure's text, whole (a copy taken while it did not change). */
static void
read_why(struct metrics *m, char *out, size_t size)
{
	uint32_t seq;
	size_t i;

	for (int tries = 0; tries < 100; tries++) {
		seq = atomic_load(&m->why_seq);
		if (seq & 1)
			continue;
		for (i = 0; i + 1 < size && i < WHY_MAX; i++)
			if ((out[i] = atomic_load_explicit(&m->why[i],
			    memory_order_relaxed)) == '\0')
				break;
		out[i < size ? i : size - 1] = '\0';
		if (atomic_load(&m->why_seq) == seq)
			return;
	}
	snprintf(out, size, "(its reason was changing)");
}

int
metrics_health(struct metrics *m, char *why, size_t size)
{
	char reason[WHY_MAX];
	int n = atomic_load(&m->n_slots);

	if (n == 0) {
		snprintf(why, size, "starting: no worker yet");
		return 0;
	}
	for (int s = 0; s < n; s++) {
		int32_t pid = atomic_load(&m->slot_pid[s]);

		if (pid == 0 || atomic_load(&m->slot_ready[s]) != pid) {
			snprintf(why, size, "worker %d is not serving", s + 1);
			return 0;
		}
	}
	if (atomic_load(&m->reload_failed)) {
		read_why(m, reason, sizeof(reason));
		snprintf(why, size, "the last reload failed: %s", reason);
		return 0;
	}
	snprintf(why, size, "ok");
	return 1;
}

static const char *const proto_label[MP_COUNT] = {
	"gemini", "titan", "gopher", "spartan", "nex"
};
static const char *const kind_label[4] = {
	"gemini", "gopher", "spartan", "nex"
};

static void
family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

#define LOAD(p) atomic_load_explicit((p), memory_order_relaxed)

/* A counter of struct slot summed over the slots used: first is its field
 * in slot 0, the others are a struct slot apart. */
static uint64_t
sum(const _Atomic uint64_t *first, int slots)
{
	uint64_t t = 0;

	for (int s = 0; s < slots; s++)
		t += LOAD((const _Atomic uint64_t *)((const char *)first +
		    (size_t)s * sizeof(struct slot)));
	return t;
}
#define SUM(field) sum(&m->slots[0].field, slots)

static void
status_label(char *out, size_t size, int proto, int status)
{
	if (proto == MP_GOPHER || proto == MP_NEX)
		snprintf(out, size, "%s", status ? "error" : "ok");
	else if (proto == MP_SPARTAN)
		snprintf(out, size, "%d", status);
	else
		snprintf(out, size, "%02d", status);
}

void
metrics_write(struct metrics *m, struct buf *out)
{
	int slots = atomic_load(&m->high_slot);
	char st[8];

	if (slots > SLOTS)
		slots = SLOTS;
	family(out, "kilnet_requests_total", "counter", "Requests answered, by "
	    "protocol and status: the two-digit status for Gemini and Titan, the "
	    "status digit for Spartan, ok or error for Gopher and Nex.");
	for (int p = 0; p < MP_COUNT; p++)
		for (int s = 0; s < STATUSES; s++) {
			uint64_t v = SUM(requests[p][s]);

			if (v == 0)
				continue;
			status_label(st, sizeof(st), p, s);
			buf_printf(out, "kilnet_requests_total{protocol=\"%s\",status="
			    "\"%s\"} %llu\n", proto_label[p], st, (unsigned long long)v);
		}
	family(out, "kilnet_tls_handshakes_total", "counter", "TLS handshakes "
	    "completed (Gemini, Titan, Gopher over TLS), full or resumed.");
	buf_printf(out, "kilnet_tls_handshakes_total{kind=\"full\"} %llu\n",
	    (unsigned long long)SUM(handshakes[0]));
	buf_printf(out, "kilnet_tls_handshakes_total{kind=\"resumed\"} %llu\n",
	    (unsigned long long)SUM(handshakes[1]));
	family(out, "kilnet_tls_handshake_failures_total", "counter", "TLS "
	    "handshakes that began and did not complete (an error, a reset, the "
	    "deadline).");
	buf_printf(out, "kilnet_tls_handshake_failures_total %llu\n",
	    (unsigned long long)SUM(handshake_failures));
	family(out, "kilnet_connections_open", "gauge", "Connections open now, by "
	    "the protocol of the listener that accepted them.");
	for (int k = 0; k < 4; k++) {
		int64_t v = 0;

		for (size_t i = 0; i < CELLS; i++)
			if (LOAD(&m->cells[i].pid) != 0)
				v += LOAD(&m->cells[i].open[k]);
		buf_printf(out, "kilnet_connections_open{protocol=\"%s\"} %lld\n",
		    kind_label[k], (long long)(v > 0 ? v : 0));
	}
	family(out, "kilnet_connections_refused_total", "counter", "Connections "
	    "refused: max_per_address, closed at once; max_connections, the times "
	    "a worker was full and left new connections waiting in the queue.");
	buf_printf(out, "kilnet_connections_refused_total{reason=\"max_connections\"} "
	    "%llu\n", (unsigned long long)SUM(refused[MR_MAX_CONNECTIONS]));
	buf_printf(out, "kilnet_connections_refused_total{reason=\"max_per_address\"} "
	    "%llu\n", (unsigned long long)SUM(refused[MR_MAX_PER_ADDRESS]));
	family(out, "kilnet_rate_limited_total", "counter", "Requests over the "
	    "per-address rate limit (Gemini 44, Gopher a type 3 line, Spartan 4, "
	    "Nex a close).");
	for (int p = 0; p < MP_COUNT; p++)
		buf_printf(out, "kilnet_rate_limited_total{protocol=\"%s\"} %llu\n",
		    proto_label[p], (unsigned long long)SUM(limited[p]));
	family(out, "kilnet_response_bytes_total", "counter", "Bytes of responses "
	    "sent (headers and bodies, before TLS).");
	for (int p = 0; p < MP_COUNT; p++)
		buf_printf(out, "kilnet_response_bytes_total{protocol=\"%s\"} %llu\n",
		    proto_label[p], (unsigned long long)SUM(bytes[p]));
	family(out, "kilnet_request_duration_seconds", "histogram", "Time from "
	    "accept to close of each connection that carried a request.");
	for (int p = 0; p < MP_COUNT; p++) {
		uint64_t cum = 0;

		for (size_t b = 0; b < BUCKETS; b++) {
			cum += SUM(duration[p][b]);
			if (b < BUCKETS - 1)
				buf_printf(out, "kilnet_request_duration_seconds_bucket{"
				    "protocol=\"%s\",le=\"%g\"} %llu\n", proto_label[p],
				    (double)bucket_ms[b] / 1000, (unsigned long long)cum);
			else
				buf_printf(out, "kilnet_request_duration_seconds_bucket{"
				    "protocol=\"%s\",le=\"+Inf\"} %llu\n", proto_label[p],
				    (unsigned long long)cum);
		}
		buf_printf(out, "kilnet_request_duration_seconds_sum{protocol=\"%s\"} "
		    "%.3f\n", proto_label[p], (double)SUM(duration_ms[p]) / 1000);
		buf_printf(out, "kilnet_request_duration_seconds_count{protocol=\"%s\"} "
		    "%llu\n", proto_label[p], (unsigned long long)cum);
	}
	family(out, "kilnet_worker_restarts_total", "counter", "Workers started "
	    "again after one died: crash (a signal, an exit), sandbox (stopped by "
	    "its seccomp filter).");
	buf_printf(out, "kilnet_worker_restarts_total{reason=\"crash\"} %llu\n",
	    (unsigned long long)LOAD(&m->restarts[MW_CRASH]));
	buf_printf(out, "kilnet_worker_restarts_total{reason=\"sandbox\"} %llu\n",
	    (unsigned long long)LOAD(&m->restarts[MW_SANDBOX]));
	family(out, "kilnet_reloads_total", "counter", "Reloads (SIGHUP, an "
	    "editor's store), by result.");
	buf_printf(out, "kilnet_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)LOAD(&m->reloads[0]));
	buf_printf(out, "kilnet_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)LOAD(&m->reloads[1]));
	family(out, "kilnet_last_reload_success_timestamp_seconds", "gauge",
	    "When the site serving was loaded (the start, or the last good "
	    "reload), in seconds since the epoch.");
	buf_printf(out, "kilnet_last_reload_success_timestamp_seconds %.3f\n",
	    (double)LOAD(&m->last_reload_ms) / 1000);
	family(out, "kilnet_edits_total", "counter", "Uploads from editors (Titan), "
	    "by result: stored, refused (checked and found wrong), denied (no "
	    "editor's certificate).");
	buf_printf(out, "kilnet_edits_total{result=\"stored\"} %llu\n",
	    (unsigned long long)LOAD(&m->edits[ME_STORED]));
	buf_printf(out, "kilnet_edits_total{result=\"refused\"} %llu\n",
	    (unsigned long long)LOAD(&m->edits[ME_REFUSED]));
	buf_printf(out, "kilnet_edits_total{result=\"denied\"} %llu\n",
	    (unsigned long long)LOAD(&m->edits[ME_DENIED]));
	family(out, "kilnet_dataset_members", "gauge", "Members in the dataset "
	    "served.");
	buf_printf(out, "kilnet_dataset_members %llu\n",
	    (unsigned long long)LOAD(&m->members));
	family(out, "kilnet_build_info", "gauge", "The version of kilnet serving; "
	    "always 1.");
	buf_printf(out, "kilnet_build_info{version=\"%s\"} 1\n", KILNET_VERSION);
}
