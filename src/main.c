/*
 * main.c: the command line. Loads the config, applies the command line's
 * overrides, then checks it (-t), exports the site (--render) or serves it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kilnet.h"

static const char usage_text[] =
"usage: kilnet [-c FILE] [-t] [--render DIR] [--gemini ADDR:PORT]...\n"
"              [--gopher ADDR:PORT]... [--hostname NAME] [--workers N]\n"
"              [-h | --help] [-V | --version]\n";

static const char help_text[] =
"\n"
"kilnet publishes the Keep it Local Network, a dataset described in a libconfig\n"
"file, over Gemini (TLS, port 1965) and Gopher (plain TCP or TLS, port 70). Every\n"
"page is rendered once at start and served from memory.\n"
"\n"
"Options:\n"
"  -c, --config FILE     read FILE (default: " KILNET_DEFAULT_CONF "). Relative paths\n"
"                        inside it are relative to its folder.\n"
"  -t, --test            check the configuration and the dataset, print\n"
"                        \"kilnet: configuration OK\" and exit 0; on errors print\n"
"                        each as FILE:LINE: SETTING: problem and exit 1.\n"
"      --render DIR      write every page to DIR/gemini/ and DIR/gopher/ (index.gmi\n"
"                        and gophermap for folders) and exit; serves nothing.\n"
"      --gemini ADDR:PORT\n"
"                        listen for Gemini there instead of the config's\n"
"                        server.gemini.listen; repeatable; IPv6 as [::1]:1965.\n"
"      --gopher ADDR:PORT\n"
"                        the same for Gopher (server.gopher.listen).\n"
"      --hostname NAME   the public hostname, used in links and certificates,\n"
"                        instead of the first of server.hostnames.\n"
"      --workers N       worker processes (default: server.workers, 0 = one per\n"
"                        core).\n"
"  -h, --help            this text.\n"
"  -V, --version         the version.\n"
"\n"
"kilnet runs in the foreground and logs to standard error (or server.access_log).\n"
"SIGTERM or SIGINT stops it. Certificates are read from server.cert_dir as\n"
"NAME.crt and NAME.key for each hostname, and generated there (self-signed ECDSA\n"
"P-256, key mode 0600) when missing.\n"
"\n"
"Exit status: 0 on success, 1 on a configuration or start-up error, 2 on a usage\n"
"error.\n"
"\n"
"Examples:\n"
"  kilnet -t -c conf/kilnet.conf\n"
"  kilnet -c conf/kilnet.conf --hostname localhost \\\n"
"         --gemini 127.0.0.1:1965 --gopher 127.0.0.1:7070\n"
"  kilnet -c conf/kilnet.conf --render /tmp/site\n";

enum { OPT_RENDER = 256, OPT_GEMINI, OPT_GOPHER, OPT_HOSTNAME, OPT_WORKERS };

static const struct option long_options[] = {
	{ "config",   required_argument, NULL, 'c' },
	{ "test",     no_argument,       NULL, 't' },
	{ "render",   required_argument, NULL, OPT_RENDER },
	{ "gemini",   required_argument, NULL, OPT_GEMINI },
	{ "gopher",   required_argument, NULL, OPT_GOPHER },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "workers",  required_argument, NULL, OPT_WORKERS },
	{ "help",     no_argument,       NULL, 'h' },
	{ "version",  no_argument,       NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* What the command line asks for, applied over the config file's settings. */
struct cmdline {
	const char          *config;
	int                  test;
	const char          *render;
	struct listen_addr  *gemini, *gopher;
	size_t               n_gemini, n_gopher;
	const char          *hostname;
	int                  workers;   /* -1: as configured */
};

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "kilnet: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%sTry 'kilnet --help' for more.\n", usage_text);
	return 2;
}

static int
add_listen(struct listen_addr **v, size_t *n, const char *opt, const char *arg)
{
	struct listen_addr la;

	if (config_parse_listen(arg, &la) == -1) {
		fprintf(stderr, "kilnet: %s %s: expected ADDR:PORT with a numeric "
		    "address, e.g. 127.0.0.1:1965 or [::1]:1965\n", opt, arg);
		return -1;
	}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = la;
	return 0;
}

static int
parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	char *end;
	long n;
	int c;

	memset(cl, 0, sizeof(*cl));
	cl->config = KILNET_DEFAULT_CONF;
	cl->workers = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:thV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c':
			cl->config = optarg;
			break;
		case 't':
			cl->test = 1;
			break;
		case OPT_RENDER:
			cl->render = optarg;
			break;
		case OPT_GEMINI:
			if (add_listen(&cl->gemini, &cl->n_gemini, "--gemini", optarg) == -1)
				return 2;
			break;
		case OPT_GOPHER:
			if (add_listen(&cl->gopher, &cl->n_gopher, "--gopher", optarg) == -1)
				return 2;
			break;
		case OPT_HOSTNAME:
			if (*optarg == '\0' || strpbrk(optarg, "/:@ \t\r\n") != NULL)
				return usage_error("--hostname %s: not a hostname", optarg);
			cl->hostname = optarg;
			break;
		case OPT_WORKERS:
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 0 || n > 256)
				return usage_error("--workers %s: expected a number from 0 "
				    "(one per core) to 256", optarg);
			cl->workers = (int)n;
			break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			exit(0);
		case 'V':
			printf("kilnet %s\n", KILNET_VERSION);
			exit(0);
		case ':':
			return usage_error("%s needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (cl->test && cl->render)
		return usage_error("%s: -t and --render do not go together", "-t");
	return 0;
}

/* The command line wins over the file: tools outside the repo rely on it. */
static void
apply_cmdline(const struct cmdline *cl, struct config *cfg)
{
	if (cl->n_gemini > 0) {
		for (size_t i = 0; i < cfg->n_gemini_listen; i++)
			free(cfg->gemini_listen[i].host);
		free(cfg->gemini_listen);
		cfg->gemini_listen = xcalloc(cl->n_gemini, sizeof(*cfg->gemini_listen));
		for (size_t i = 0; i < cl->n_gemini; i++) {
			cfg->gemini_listen[i] = cl->gemini[i];
			cfg->gemini_listen[i].host = xstrdup(cl->gemini[i].host);
		}
		cfg->n_gemini_listen = cl->n_gemini;
	}
	if (cl->n_gopher > 0) {
		for (size_t i = 0; i < cfg->n_gopher_listen; i++)
			free(cfg->gopher_listen[i].host);
		free(cfg->gopher_listen);
		cfg->gopher_listen = xcalloc(cl->n_gopher, sizeof(*cfg->gopher_listen));
		for (size_t i = 0; i < cl->n_gopher; i++) {
			cfg->gopher_listen[i] = cl->gopher[i];
			cfg->gopher_listen[i].host = xstrdup(cl->gopher[i].host);
		}
		cfg->n_gopher_listen = cl->n_gopher;
	}
	if (cl->hostname != NULL) {
		free(cfg->hosts[0].name);
		free(cfg->hosts[0].cert);
		free(cfg->hosts[0].key);
		cfg->hosts[0].name = xstrdup(cl->hostname);
		cfg->hosts[0].cert = cfg->hosts[0].key = NULL;
	}
	if (cl->workers >= 0)
		cfg->workers = cl->workers;
	config_finish(cfg);
}

static void
free_cmdline(struct cmdline *cl)
{
	for (size_t i = 0; i < cl->n_gemini; i++)
		free(cl->gemini[i].host);
	for (size_t i = 0; i < cl->n_gopher; i++)
		free(cl->gopher[i].host);
	free(cl->gemini);
	free(cl->gopher);
}

int
main(int argc, char **argv)
{
	struct cmdline cl;
	struct config cfg;
	struct diag d = { 0 };
	struct site *site = NULL;
	struct tls *tls = NULL;
	int rc;

	if ((rc = parse_cmdline(argc, argv, &cl)) != 0) {
		free_cmdline(&cl);
		return rc;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (config_load(cl.config, &cfg, &d) == -1) {
		diag_print(&d, NULL);
		fprintf(stderr, "kilnet: %s: %zu error%s, nothing served\n", cl.config,
		    d.n, d.n == 1 ? "" : "s");
		rc = 1;
		goto out;
	}
	apply_cmdline(&cl, &cfg);

	/* The site is rendered for -t too: a dataset that cannot render is an error. */
	site = site_build(&cfg, &d);
	diag_print(&d, "kilnet: ");
	if (site == NULL) {
		rc = 1;
		goto out;
	}
	diag_clear(&d);

	if (cl.test) {
		printf("kilnet: configuration OK\n");
		rc = 0;
	} else if (cl.render != NULL) {
		rc = site_export(site, cl.render, &d) == 0 ? 0 : 1;
		diag_print(&d, "kilnet: ");
	} else {
		log_init(cfg.access_log, cfg.log_anonymise, 0);
		if ((tls = tls_setup(&cfg, &d)) == NULL) {
			diag_print(&d, "kilnet: ");
			rc = 1;
			goto out;
		}
		rc = server_run(&cfg, site, tls);
	}
out:
	diag_clear(&d);
	tls_free(tls);
	site_free(site);
	config_free(&cfg);
	free_cmdline(&cl);
	return rc;
}
