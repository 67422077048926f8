/*
 * fuzz.h: what the fuzz targets share: the libFuzzer entry points, and the
 * site built once from the shipped config (conf/kilnet.conf, found through
 * KILNET_ROOT, the repo's folder, set by the Makefile) for the protocol targets.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/kilnet.h"

#ifndef KILNET_ROOT
#define KILNET_ROOT "."
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The site every request of a run is answered from, like a worker's. A
 * config that does not load is the harness's fault: stop at once. */
static inline struct site *
fuzz_site_with(int light)
{
	static struct config cfg;
	struct diag d = { 0 };
	struct site *site;

	if (config_load(KILNET_ROOT "/conf/kilnet.conf", &cfg, &d) == -1) {
		diag_print(&d, "fuzz: ");
		abort();
	}
	/* Spartan and Nex: on in the shipped config, and on for their targets
	 * whatever it says (a copy with them off still fuzzes them). */
	if (light && cfg.n_spartan_listen == 0) {
		cfg.spartan_listen = xcalloc(1, sizeof(*cfg.spartan_listen));
		cfg.spartan_listen[0].host = xstrdup("127.0.0.1");
		cfg.spartan_listen[0].port = 300;
		cfg.n_spartan_listen = 1;
	}
	if (light && cfg.n_nex_listen == 0) {
		cfg.nex_listen = xcalloc(1, sizeof(*cfg.nex_listen));
		cfg.nex_listen[0].host = xstrdup("127.0.0.1");
		cfg.nex_listen[0].port = 1900;
		cfg.n_nex_listen = 1;
	}
	config_finish(&cfg);
	if ((site = site_build(&cfg, &d)) == NULL) {
		diag_print(&d, "fuzz: ");
		abort();
	}
	diag_clear(&d);
	return site;
}

static inline struct site *
fuzz_site(void)
{
	return fuzz_site_with(0);
}

/* What conn.c hands a front end: at most its buffer (max bytes), and nothing
 * after the first LF. */
static inline size_t
fuzz_request_len(const uint8_t *data, size_t size, size_t max)
{
	const uint8_t *lf;

	if (size > max)
		size = max;
	if ((lf = memchr(data, '\n', size)) != NULL)
		size = (size_t)(lf - data) + 1;
	return size;
}

#endif
