/*
 * main.c: the command line. Loads the config, applies the command line's
 * overrides, then checks it (-t), exports the site (--render) or serves it.
 * The loading is one function, called again by the server on SIGHUP, so that a
 * reload reads the same file with the same overrides.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static const char usage_text[] =
"usage: kilnet [-c FILE] [-t] [--render DIR] [--gemini ADDR:PORT]...\n"
"              [--gopher ADDR:PORT]... [--spartan ADDR:PORT]...\n"
"              [--nex ADDR:PORT]... [--hostname NAME] [--workers N]\n"
"              [-h | --help] [-V | --version]\n";

static const char help_text[] =
"\n"
"kilnet publishes the Keep it Local Network, a dataset described in a libconfig\n"
"file, over Gemini (TLS, port 1965) and Gopher (plain TCP or TLS, port 70). Every\n"
"page is rendered once at start and served from memory.\n"
"\n"
"Options:\n"
"  -c, --config FILE     read FILE; relative paths inside it start in its folder.\n"
"                        Default: " KILNET_DEFAULT_CONF "\n"
"  -t, --test            check the configuration and the dataset (binds nothing,\n"
"                        reads no certificate), print \"kilnet: configuration OK\"\n"
"                        and exit 0; on errors print every one as\n"
"                        FILE:LINE: SETTING: problem and exit 1.\n"
"      --render DIR      write every page to DIR/gemini/ and DIR/gopher/\n"
"                        (index.gmi and gophermap for folders), DIR/spartan/\n"
"                        (where it differs from Gemini) and DIR/nex/ when\n"
"                        they are served, and exit; serves nothing.\n"
"      --gemini ADDR:PORT\n"
"                        listen for Gemini there instead of the config's\n"
"                        server.gemini.listen and proxy_listen; repeatable. A\n"
"                        numeric address, IPv6 in brackets: [::1]:1965.\n"
"      --gopher ADDR:PORT\n"
"                        the same for Gopher (server.gopher.listen and\n"
"                        proxy_listen).\n"
"      --spartan ADDR:PORT, --nex ADDR:PORT\n"
"                        the same for Spartan and Nex (server.spartan,\n"
"                        server.nex; off unless listened on).\n"
"      --hostname NAME   the public hostname, used in links and certificates,\n"
"                        instead of the first of server.hostnames.\n"
"      --workers N       worker processes, 0 to 256 (default: server.workers;\n"
"                        0 = one per core).\n"
"  -h, --help            this text.\n"
"  -V, --version         the version and the default configuration file.\n"
"\n"
"kilnet runs in the foreground and logs to standard error (or server.access_log).\n"
"SIGTERM or SIGINT stops it: responses in flight finish first. SIGHUP reloads:\n"
"the config, the dataset, capsule/ and the certificates are read again and a new\n"
"site replaces the old one; on an error the old site keeps serving. Started as\n"
"root, the workers switch to server.user (default nobody) and chroot to an\n"
"empty folder (server.chroot, default /var/empty); as another user, ports below\n"
"1024 (Gopher's 70) need CAP_NET_BIND_SERVICE. Either way each worker serves in\n"
"a seccomp filter (server.sandbox) and a forbidden system call stops it, logged\n"
"as a sandbox violation naming the call. Only the master keeps root, and it\n"
"parses only this config: the private keys live in a key process, uploads go\n"
"to an editing process, every site is built by an unprivileged builder, and\n"
"server.metrics (GET /metrics for Prometheus, GET /health) is served by a\n"
"metrics process, each as server.user in a filter of its own (kilnet(8),\n"
"PROCESSES).\n"
"Certificates are read\n"
"from server.cert_dir as NAME.crt and NAME.key for each hostname, and generated\n"
"there (self-signed ECDSA P-256, key mode 0600) when missing.\n"
"\n"
"Editors (server.editors, each the SHA-256 of a client certificate) change the\n"
"dataset and capsule/ from a Gemini client with Titan uploads\n"
"(titan://HOST/network.conf;size=N): checked as -t checks, stored in\n"
"server.state_dir with the last 20 versions, then served as after SIGHUP. Once\n"
"stored there, that dataset is the one kilnet and -t read.\n"
"\n"
"Exit status: 0 on success, 1 on a configuration or start-up error, 2 on a usage\n"
"error.\n"
"\n"
"Examples:\n"
"  check a config after editing it, then publish it to the running server:\n"
"    kilnet -t -c " KILNET_DEFAULT_CONF " && kill -HUP PID\n"
"  serve on loopback, on ports that need no privilege:\n"
"    kilnet -c " KILNET_DEFAULT_CONF " --hostname localhost \\\n"
"           --gemini 127.0.0.1:1965 --gopher 127.0.0.1:7070\n"
"  write the whole site to a folder, to read or diff it:\n"
"    kilnet -c " KILNET_DEFAULT_CONF " --render /tmp/site\n"
"\n"
"More in the manual: kilnet(8), and kilnet.conf(5) for every setting with its\n"
"default and the dataset's structure.\n";

enum { OPT_RENDER = 256, OPT_GEMINI, OPT_GOPHER, OPT_SPARTAN, OPT_NEX, OPT_HOSTNAME, OPT_WORKERS };

static const struct option long_options[] = {
	{ "config",   required_argument, NULL, 'c' },
	{ "test",     no_argument,       NULL, 't' },
	{ "render",   required_argument, NULL, OPT_RENDER },
	{ "gemini",   required_argument, NULL, OPT_GEMINI },
	{ "gopher",   required_argument, NULL, OPT_GOPHER },
	{ "spartan",  required_argument, NULL, OPT_SPARTAN },
	{ "nex",      required_argument, NULL, OPT_NEX },
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
	struct listen_addr  *gemini, *gopher, *spartan, *nex;
	size_t               n_gemini, n_gopher, n_spartan, n_nex;
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
		case OPT_SPARTAN:
			if (add_listen(&cl->spartan, &cl->n_spartan, "--spartan",
			    optarg) == -1)
				return 2;
			break;
		case OPT_NEX:
			if (add_listen(&cl->nex, &cl->n_nex, "--nex", optarg) == -1)
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
			printf("kilnet %s\ndefault configuration: %s\n", KILNET_VERSION,
			    KILNET_DEFAULT_CONF);
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

/* The command line's addresses of one protocol replace the config's. */
static void
replace_listen(struct listen_addr **v, size_t *n, const struct listen_addr *cl,
    size_t n_cl)
{
	if (n_cl == 0)
		return;
	for (size_t i = 0; i < *n; i++)
		free((*v)[i].host);
	free(*v);
	*v = xcalloc(n_cl, sizeof(**v));
	for (size_t i = 0; i < n_cl; i++) {
		(*v)[i] = cl[i];
		(*v)[i].host = xstrdup(cl[i].host);
	}
	*n = n_cl;
}

/* The command line wins over the file: tools outside the repo rely on it. */
static void
apply_cmdline(const struct cmdline *cl, struct config *cfg)
{
	replace_listen(&cfg->gemini_listen, &cfg->n_gemini_listen, cl->gemini,
	    cl->n_gemini);
	replace_listen(&cfg->gopher_listen, &cfg->n_gopher_listen, cl->gopher,
	    cl->n_gopher);
	replace_listen(&cfg->spartan_listen, &cfg->n_spartan_listen, cl->spartan,
	    cl->n_spartan);
	replace_listen(&cfg->nex_listen, &cfg->n_nex_listen, cl->nex, cl->n_nex);
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
	for (size_t i = 0; i < cl->n_spartan; i++)
		free(cl->spartan[i].host);
	for (size_t i = 0; i < cl->n_nex; i++)
		free(cl->nex[i].host);
	free(cl->gemini);
	free(cl->gopher);
	free(cl->spartan);
	free(cl->nex);
}

/* Reports collected messages: at start to stderr as they are (a compiler's
 * "FILE:LINE: ..." lines); on a reload through the log, one line each, since
 * the server's stderr may be a journal that wants its prefix. */
static void
report(const struct diag *d, int reloading, int errors, const char *prefix)
{
	if (!reloading) {
		diag_print(d, prefix);
		return;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (errors)
			log_error("%s", d->msgs[i]);
		else
			log_warn("%s", d->msgs[i]);
	}
}

/*
 * Every config comes from here, at start and on each SIGHUP: the config file
 * with the command line over it. For -t and --render the site is built here
 * too, from the dataset an editor stored if there is one; a server builds
 * its sites in an unprivileged child (build.c), and reads here only the
 * operator's files (the seed dataset, CONFIG_SEED). On failure every problem
 * is reported and *g is left empty; nothing half-built escapes.
 */
static int
load(const struct cmdline *cl, struct generation *g, int serving, int reloading)
{
	struct diag d = { 0 };

	memset(g, 0, sizeof(*g));
	g->cfg = xcalloc(1, sizeof(*g->cfg));
	if (config_load_with(cl->config, serving ? CONFIG_SEED : NULL, g->cfg,
	    &d) == -1) {
		report(&d, reloading, 1, NULL);
		if (reloading)
			log_error("%s: %zu error%s", cl->config, d.n, d.n == 1 ? "" : "s");
		else
			fprintf(stderr, "kilnet: %s: %zu error%s, nothing served\n",
			    cl->config, d.n, d.n == 1 ? "" : "s");
		goto fail;
	}
	apply_cmdline(cl, g->cfg);
	if (serving)
		return 0;
	/* The site is rendered for -t too: a dataset that cannot render is an error. */
	g->site = site_build(g->cfg, &d);
	report(&d, reloading, g->site == NULL, "kilnet: ");
	if (g->site == NULL)
		goto fail;
	diag_clear(&d);
	return 0;
fail:
	diag_clear(&d);
	generation_free(g);
	return -1;
}

/* The server's reload callback (SIGHUP, and an editor's stored upload): the
 * same sources, read again. */
static int
reload(void *arg, struct generation *out)
{
	return load(arg, out, 1, 1);
}

int
main(int argc, char **argv)
{
	struct cmdline cl;
	struct generation g = { 0 };
	struct diag d = { 0 };
	int rc;

	if ((rc = parse_cmdline(argc, argv, &cl)) != 0) {
		free_cmdline(&cl);
		return rc;
	}
	if (cl.test || cl.render != NULL) {
		if (load(&cl, &g, 0, 0) == -1) {
			rc = 1;
		} else if (cl.test) {
			printf("kilnet: configuration OK\n");
			rc = 0;
		} else {
			rc = site_export(g.site, cl.render, &d) == 0 ? 0 : 1;
			diag_print(&d, "kilnet: ");
		}
	} else if (load(&cl, &g, 1, 0) == -1) {
		rc = 1;
	} else {
		log_init(g.cfg->access_log, g.cfg->log_anonymise, 0);
		log_set_json(g.cfg->log_json);
		rc = server_run(&g, reload, &cl);
	}
	diag_clear(&d);
	generation_free(&g);
	free_cmdline(&cl);
	return rc;
}
