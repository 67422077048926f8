/*
 * config_store.c: server.store, where the edited state lives when it is
 * shared by several instances: the etcd endpoints (http:// or https://), the
 * prefix of kilnet's keys, and for https the CA that signed etcd's
 * certificates and kilnet's own client certificate and key. Without the
 * group the state folder alone holds it (editor.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

#define DEFAULT_STORE_PREFIX "/kilnet/"
/* Raft clusters have 3 or 5 members; a list far longer is a mistake. */
#define STORE_ENDPOINTS_MAX  16

static const char *const store_keys[] = {
	"etcd", "prefix", "ca", "cert", "key", NULL
};

static void
load_endpoints(struct loader *ld, const config_setting_t *st, int *tls)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s;
	char *path;
	int n;

	s = ld_child(ld, st, "server.store", "etcd", REQUIRED, T_SEQ, &path);
	if (s == NULL) {
		free(path);
		return;
	}
	n = config_setting_length(s);
	if (n == 0 || n > STORE_ENDPOINTS_MAX)
		ld_report(ld, s, path, "must list from 1 to %d etcd endpoints "
		    "(\"https://127.0.0.1:2379\")", STORE_ENDPOINTS_MAX);
	cfg->store_etcd = xcalloc((size_t)n + 1, sizeof(*cfg->store_etcd));
	for (int i = 0; i < n && n <= STORE_ENDPOINTS_MAX; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		struct evhttp_uri *u = v != NULL ? evhttp_uri_parse(v) : NULL;
		const char *scheme = u != NULL ? evhttp_uri_get_scheme(u) : NULL;
		const char *host = u != NULL ? evhttp_uri_get_host(u) : NULL;
		char *ep = xasprintf("%s[%d]", path, i);

		if (v == NULL)
			ld_report(ld, e, ep, "must be a string (an etcd endpoint)");
		else if (scheme == NULL || host == NULL || *host == '\0' ||
		    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
		    (evhttp_uri_get_path(u) != NULL &&
		    strcmp(evhttp_uri_get_path(u), "") != 0 &&
		    strcmp(evhttp_uri_get_path(u), "/") != 0))
			ld_report(ld, e, ep, "\"%s\" is not an etcd endpoint: write "
			    "\"https://HOST:PORT\" (or http:// for a local test)", v);
		else {
			*tls |= strcmp(scheme, "https") == 0;
			cfg->store_etcd[cfg->n_store_etcd++] = xstrdup(v);
		}
		if (u != NULL)
			evhttp_uri_free(u);
		free(ep);
	}
	free(path);
}

static void
load_file(struct loader *ld, const config_setting_t *st, const char *name,
    char **out)
{
	char *v = NULL;

	if (ld_get_text(ld, st, "server.store", name, OPTIONAL, &v) == 0 && v != NULL)
		*out = ld_resolve(ld->cfg->dir, v);
	free(v);
}

void
config_load_store(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *st;
	char *path, *v = NULL;
	int tls = 0;

	st = srv != NULL ? ld_child(ld, srv, "server", "store", OPTIONAL,
	    CONFIG_TYPE_GROUP, &path) : NULL;
	if (srv != NULL)
		free(path);
	if (st == NULL)
		return;
	ld_check_keys(ld, st, "server.store", store_keys);
	load_endpoints(ld, st, &tls);
	if (ld_get_text(ld, st, "server.store", "prefix", OPTIONAL, &v) == 0 &&
	    v != NULL) {
		config_setting_t *p = config_setting_get_member(st, "prefix");

		if (v[0] != '/' || v[strlen(v) - 1] != '/')
			ld_report(ld, p, "server.store.prefix", "\"%s\": must start "
			    "and end with '/' (\"/kilnet/\")", v);
		cfg->store_prefix = v;
	} else {
		free(v);
		cfg->store_prefix = xstrdup(DEFAULT_STORE_PREFIX);
	}
	load_file(ld, st, "ca", &cfg->store_ca);
	load_file(ld, st, "cert", &cfg->store_cert);
	load_file(ld, st, "key", &cfg->store_key);
	if ((cfg->store_cert == NULL) != (cfg->store_key == NULL))
		ld_report(ld, st, "server.store", "cert and key go together: "
		    "name both, or neither");
	if (tls && cfg->store_ca == NULL)
		ld_report(ld, st, "server.store", "ca: the CA that signed etcd's "
		    "certificates is needed for https:// endpoints");
	if (!tls && (cfg->store_ca != NULL || cfg->store_cert != NULL))
		ld_report(ld, st, "server.store", "ca, cert and key are for "
		    "https:// endpoints; these are http://");
}

void
config_free_store(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_store_etcd; i++)
		free(cfg->store_etcd[i]);
	free(cfg->store_etcd);
	free(cfg->store_prefix);
	free(cfg->store_ca);
	free(cfg->store_cert);
	free(cfg->store_key);
}
