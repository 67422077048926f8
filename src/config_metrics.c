/*
 * config_metrics.c: the settings of what operators watch: server.metrics
 * (where the metrics process listens for Prometheus and health checks; off
 * unless it lists an address) and server.log_format (the logs as the lines
 * they always were, or one JSON object a line).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/util.h>
#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

static const char *const metrics_keys[] = { "listen", NULL };

/* "ADDR:PORT" or "[V6ADDR]:PORT", numeric, the port 1 to 65535, into *la
 * (libevent's parser: config.c's is its own, and config.c calls this file). */
static int
metrics_parse_listen(const char *s, struct listen_addr *la)
{
	struct sockaddr_storage ss;
	int len = (int)sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	const void *a;
	int port;

	memset(&ss, 0, sizeof(ss));
	/* (libevent's parser would skip leading spaces.) */
	if (strpbrk(s, " \t") != NULL ||
	    evutil_parse_sockaddr_port(s, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		a = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		a = &in6->sin6_addr;
		port = ntohs(in6->sin6_port);
	} else {
		return -1;
	}
	if (port == 0 || inet_ntop(ss.ss_family, a, host, sizeof(host)) == NULL)
		return -1;
	la->host = xstrdup(host);
	la->port = port;
	la->proxy = 0;
	return 0;
}

/* server.metrics.listen: "ADDR:PORT" each, no duplicates. */
static void
load_metrics_listen(struct loader *ld, const config_setting_t *grp,
    const char *gpath)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s;
	char *path;
	int n;

	s = ld_child(ld, grp, gpath, "listen", OPTIONAL, T_SEQ, &path);
	if (s == NULL) {
		free(path);
		return;
	}
	n = config_setting_length(s);
	cfg->metrics_listen = xcalloc((size_t)n + 1, sizeof(*cfg->metrics_listen));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char *epath = xasprintf("%s[%d]", path, i);
		struct listen_addr la;
		size_t j;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			ld_report(ld, e, epath, "expected a string \"ADDR:PORT\", found %s",
			    ld_type_name(config_setting_type(e)));
		} else if (ld_check_text(ld, e, epath, config_setting_get_string(e))
		    == -1) {
			;
		} else if (metrics_parse_listen(config_setting_get_string(e), &la) == -1) {
			ld_report(ld, e, epath, "expected \"ADDR:PORT\" with a numeric "
			    "address and a port from 1 to 65535, e.g. \"127.0.0.1:9165\" "
			    "or \"[::1]:9165\"");
		} else {
			for (j = 0; j < cfg->n_metrics_listen; j++)
				if (cfg->metrics_listen[j].port == la.port &&
				    strcmp(cfg->metrics_listen[j].host, la.host) == 0)
					break;
			if (j < cfg->n_metrics_listen) {
				ld_report(ld, e, epath, "duplicate listen address \"%s\"",
				    config_setting_get_string(e));
				free(la.host);
			} else {
				cfg->metrics_listen[cfg->n_metrics_listen++] = la;
			}
		}
		free(epath);
	}
	free(path);
}

void
config_load_metrics(struct loader *ld, const config_setting_t *srv)
{
	config_setting_t *grp, *s;
	char *path;

	if (srv == NULL)
		return;
	grp = ld_child(ld, srv, "server", "metrics", OPTIONAL, CONFIG_TYPE_GROUP,
	    &path);
	if (grp != NULL) {
		ld_check_keys(ld, grp, path, metrics_keys);
		load_metrics_listen(ld, grp, path);
	}
	free(path);
	s = ld_child(ld, srv, "server", "log_format", OPTIONAL, CONFIG_TYPE_STRING,
	    &path);
	if (s != NULL) {
		const char *v = config_setting_get_string(s);

		if (strcmp(v, "json") == 0)
			ld->cfg->log_json = 1;
		else if (strcmp(v, "text") != 0)
			ld_report(ld, s, path, "must be \"text\" (one line a message, "
			    "the default) or \"json\" (one JSON object a line)");
	}
	free(path);
}

void
config_free_metrics(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_metrics_listen; i++)
		free(cfg->metrics_listen[i].host);
	free(cfg->metrics_listen);
	cfg->metrics_listen = NULL;
	cfg->n_metrics_listen = 0;
}
