/*
 * metrics_test.c: metrics.c's shared counters as the metrics process reads
 * them: sums over the workers' slots, the statuses' labels, the histogram's
 * cumulative buckets, the open connections' gauge that a reaped worker's
 * cell leaves, every family with its HELP and TYPE, and /health's verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static char *
text_of(struct metrics *m)
{
	struct buf b = { 0 };

	metrics_write(m, &b);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

/* The line of series s in the text, its value; "" when absent. */
static const char *
value_of(const char *text, const char *s, char *out, size_t size)
{
	size_t n = strlen(s);

	for (const char *p = text; *p != '\0';) {
		const char *e = strchr(p, '\n');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len > n + 1 && strncmp(p, s, n) == 0 && p[n] == ' ') {
			snprintf(out, size, "%.*s", (int)(len - n - 1), p + n + 1);
			return out;
		}
		p += len + (e != NULL);
	}
	snprintf(out, size, "%s", "");
	return out;
}

static void
expect_value(const char *text, const char *series, const char *want)
{
	char got[64], *name = xasprintf("metrics: %s", series);

	unit_str(name, value_of(text, series, got, sizeof(got)), want);
	free(name);
}

/* Every sample's family has its "# HELP" and "# TYPE" before it. */
static void
families_cases(const char *text)
{
	char family[128];
	int ok = 1, types = 0;

	for (const char *p = text; *p != '\0' && ok;) {
		const char *e = strchr(p, '\n');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (strncmp(p, "# TYPE ", 7) == 0) {
			types++;
		} else if (*p != '#') {
			size_t k = strcspn(p, "{ ");
			char *help, *type;

			snprintf(family, sizeof(family), "%.*s", (int)k, p);
			/* A histogram's samples: _bucket, _sum, _count. */
			if (strncmp(family, "kilnet_request_duration_seconds_", 32) == 0)
				family[31] = '\0';
			help = xasprintf("# HELP %s ", family);
			type = xasprintf("# TYPE %s ", family);
			ok = strstr(text, help) != NULL && strstr(text, type) != NULL &&
			    strstr(text, type) < p;
			if (!ok)
				unit_ok("metrics: HELP and TYPE before each family", 0,
				    "%s has none", family);
			free(help);
			free(type);
		}
		p += len + (e != NULL);
	}
	if (ok)
		unit_ok("metrics: HELP and TYPE before each family", 1, "%s", "");
	unit_long("metrics: families", types, 14);
}

void
unit_metrics(void)
{
	struct metrics *m = metrics_new();
	struct metrics_worker *w1, *w2;
	char why[256], *text;

	if (m == NULL) {
		unit_ok("metrics: the shared region", 0, "not mapped");
		return;
	}
	metrics_slots(m, 2);
	w1 = metrics_worker_new(m, 0);
	w2 = metrics_worker_new(m, 1);
	metrics_request(w1, MP_GEMINI, 20, 100, 3);
	metrics_request(w2, MP_GEMINI, 20, 50, 7);
	metrics_request(w2, MP_GEMINI, 44, 9, 2);
	metrics_request(w1, MP_GOPHER, 3, 10, 0);
	metrics_request(w1, MP_GOPHER, 0, 10, 0);
	metrics_request(w2, MP_NEX, 0, 10, 0);
	metrics_request(w2, MP_SPARTAN, 2, 5, 20000);
	metrics_request(w1, MP_TITAN, 30, 5, 1);
	metrics_limited(w2, MP_GEMINI);
	metrics_handshake(w1, 0);
	metrics_handshake(w2, 1);
	metrics_handshake(w2, 1);
	metrics_handshake_failed(w1);
	metrics_refused(w1, MR_MAX_PER_ADDRESS);
	metrics_open(w1, KIND_GEMINI, 1);
	metrics_open(w1, KIND_GEMINI, 1);
	metrics_open(w1, KIND_GEMINI, -1);
	metrics_open(w1, KIND_NEX, 1);
	metrics_edit(ME_STORED);
	metrics_edit(ME_DENIED);
	metrics_members(m, 11);
	text = text_of(m);
	expect_value(text, "kilnet_requests_total{protocol=\"gemini\",status=\"20\"}", "2");
	expect_value(text, "kilnet_requests_total{protocol=\"gemini\",status=\"44\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"gopher\",status=\"error\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"gopher\",status=\"ok\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"nex\",status=\"ok\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"spartan\",status=\"2\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"titan\",status=\"30\"}", "1");
	expect_value(text, "kilnet_requests_total{protocol=\"gemini\",status=\"59\"}", "");
	expect_value(text, "kilnet_response_bytes_total{protocol=\"gemini\"}", "159");
	expect_value(text, "kilnet_rate_limited_total{protocol=\"gemini\"}", "1");
	expect_value(text, "kilnet_rate_limited_total{protocol=\"nex\"}", "0");
	expect_value(text, "kilnet_tls_handshakes_total{kind=\"full\"}", "1");
	expect_value(text, "kilnet_tls_handshakes_total{kind=\"resumed\"}", "2");
	expect_value(text, "kilnet_tls_handshake_failures_total", "1");
	expect_value(text, "kilnet_connections_refused_total{reason=\"max_per_address\"}", "1");
	expect_value(text, "kilnet_connections_refused_total{reason=\"max_connections\"}", "0");
	expect_value(text, "kilnet_connections_open{protocol=\"gemini\"}", "1");
	expect_value(text, "kilnet_connections_open{protocol=\"nex\"}", "1");
	/* 2 ms and 3 ms are at most 5 ms, 7 ms at most 10: cumulative */
	expect_value(text, "kilnet_request_duration_seconds_bucket{protocol=\"gemini\",le=\"0.005\"}", "2");
	expect_value(text, "kilnet_request_duration_seconds_bucket{protocol=\"gemini\",le=\"0.01\"}", "3");
	expect_value(text, "kilnet_request_duration_seconds_bucket{protocol=\"gemini\",le=\"+Inf\"}", "3");
	expect_value(text, "kilnet_request_duration_seconds_count{protocol=\"gemini\"}", "3");
	expect_value(text, "kilnet_request_duration_seconds_sum{protocol=\"gemini\"}", "0.012");
	expect_value(text, "kilnet_request_duration_seconds_bucket{protocol=\"spartan\",le=\"10\"}", "0");
	expect_value(text, "kilnet_request_duration_seconds_bucket{protocol=\"spartan\",le=\"+Inf\"}", "1");
	expect_value(text, "kilnet_edits_total{result=\"stored\"}", "1");
	expect_value(text, "kilnet_edits_total{result=\"refused\"}", "0");
	expect_value(text, "kilnet_edits_total{result=\"denied\"}", "1");
	expect_value(text, "kilnet_dataset_members", "11");
	expect_value(text, "kilnet_build_info{version=\"" KILNET_VERSION "\"}", "1");
	families_cases(text);
	free(text);

	/* A worker reaped: its open connections go, the restart is counted. */
	metrics_worker_gone(m, 0, getpid(), MW_CRASH);
	text = text_of(m);
	expect_value(text, "kilnet_connections_open{protocol=\"gemini\"}", "0");
	expect_value(text, "kilnet_worker_restarts_total{reason=\"crash\"}", "1");
	expect_value(text, "kilnet_worker_restarts_total{reason=\"sandbox\"}", "0");
	free(text);

	/* Health: every slot's current worker serving, the last reload good. */
	unit_long("health: no worker yet", metrics_health(m, why, sizeof(why)), 0);
	unit_str("health: no worker yet, why", why, "worker 1 is not serving");
	metrics_worker_started(m, 0, getpid());
	metrics_serving(m, 0);
	metrics_health(m, why, sizeof(why));
	unit_str("health: slot 2 has none", why, "worker 2 is not serving");
	metrics_worker_started(m, 1, getpid());
	metrics_serving(m, 1);
	unit_long("health: both serve", metrics_health(m, why, sizeof(why)), 1);
	unit_str("health: both serve, why", why, "ok");
	metrics_reload(m, 0, "k.conf:7: server.workers: expected an integer");
	unit_long("health: a reload failed", metrics_health(m, why, sizeof(why)), 0);
	unit_str("health: a reload failed, why", why,
	    "the last reload failed: k.conf:7: server.workers: expected an integer");
	metrics_reload(m, 1, NULL);
	unit_long("health: the next one succeeded", metrics_health(m, why, sizeof(why)), 1);
	metrics_worker_started(m, 1, getpid() + 1);	/* a replacement, not serving yet */
	unit_long("health: a replacement starting", metrics_health(m, why, sizeof(why)), 0);
	metrics_slots(m, 1);				/* a reload to one worker */
	unit_long("health: slots beyond the workers", metrics_health(m, why, sizeof(why)), 1);
	text = text_of(m);
	expect_value(text, "kilnet_reloads_total{result=\"ok\"}", "1");
	expect_value(text, "kilnet_reloads_total{result=\"failed\"}", "1");
	free(text);

	metrics_worker_free(w1);
	metrics_worker_free(w2);
	metrics_free(m);
}
