/*
 * generation.c: a generation is what serves between two reloads: the config,
 * the site rendered from it and the TLS contexts (struct server_gen). main.c
 * builds one; master.c swaps them; editor.c builds one from an upload and
 * drops it when it cannot be stored.
 */
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

void
server_gen_free(struct server_gen *g)
{
	tls_free(g->tls);
	site_free(g->site);
	if (g->cfg != NULL) {
		config_free(g->cfg);
		free(g->cfg);
	}
	memset(g, 0, sizeof(*g));
}
