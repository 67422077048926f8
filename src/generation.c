/*
 * generation.c: a generation is what serves between two reloads: the config,
 * the site rendered from it and the TLS contexts (struct generation). main.c
 * builds one; master.c swaps them; editor.c builds one from an upload and
 * drops it when it cannot be stored.
 */
#include <stdlib.h>
#include <string.h>

#include "server.h"

void
generation_free(struct generation *g)
{
	tlsctx_free(g->tls);
	site_free(g->site);
	if (g->cfg != NULL) {
		config_free(g->cfg);
		free(g->cfg);
	}
	memset(g, 0, sizeof(*g));
}
