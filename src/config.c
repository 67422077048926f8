/*
 * config.c: the config loader. Reads the libconfig file (and what it pulls in
 * with @include) into struct config: the server settings here, each with a
 * default, and the dataset (struct network), which has none, in
 * config_network.c; loader.c holds the machinery both use. Every problem is added to
 * a struct diag as "FILE:LINE: SETTING: what is wrong" and loading goes on, so
 * one run names them all. First step of the flow: config -> dataset -> site.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

/* Defaults; conf/kilnet.conf documents the same values. Folders are relative
 * to the config file's folder, like every path in the file. */
#define DEFAULT_HOSTNAME      "localhost"
#define DEFAULT_CERT_DIR      "certs"
#define DEFAULT_CAPSULE       "capsule"
#define DEFAULT_HANDSHAKE_MS  10000
#define DEFAULT_REQUEST_MS    10000
#define DEFAULT_WRITE_MS      30000
#define DEFAULT_MAX_CONN      1024
#define DEFAULT_WORKERS       0
/* Rate limits: a reader follows links at well under 5 pages a second, and a
 * burst of 20 covers a client fetching a page and what it links to. */
#define DEFAULT_RATE          5.0
#define DEFAULT_BURST         20.0
#define DEFAULT_PER_ADDRESS   32
#define DEFAULT_USER          "nobody"
/* A rate above this is a typo; it also keeps the arithmetic far from overflow. */
#define RATE_MAX              1000000.0

#define MAX_CONN_MAX          1000000
/* The same ceiling as the --workers option. */
#define WORKERS_MAX           256

static const char *const default_gemini_listen[] = {
	"0.0.0.0:1965", "[::]:1965", NULL
};
static const char *const default_gopher_listen[] = {
	"0.0.0.0:70", "[::]:70", NULL
};
/* Spartan and Nex are served only where the config (or the command line)
 * says: unset or empty, they are off. */
static const char *const default_off_listen[] = { NULL };
/* Local tools (tests, monitoring on the host) are never limited. */
static const char *const default_allow[] = {
	"127.0.0.0/8", "::1/128", NULL
};

static const char *const top_keys[] = { "server", "network", NULL };
static const char *const server_keys[] = {
	"hostnames", "gemini", "gopher", "spartan", "nex", "cert_dir", "capsule",
	"handshake_timeout", "request_timeout", "write_timeout",
	"max_connections", "workers", "access_log", "anonymise_log",
	"rate_limit", "user", "chroot", "sandbox", "editors",
	"editing_hostname", "max_upload", "upload_timeout", "state_dir", "store",
	"metrics", "log_format", NULL
};
static const char *const gemini_keys[] = {
	"listen", "proxy_listen", "port", NULL
};
static const char *const gopher_keys[] = {
	"listen", "proxy_listen", "port", "description", "geolocation", NULL
};
static const char *const plain_keys[] = {
	"listen", "proxy_listen", "port", NULL
};
static const char *const rate_limit_keys[] = {
	"rate", "burst", "max_per_address", "allow", NULL
};

static int	 parse_listen(const char *, struct listen_addr *, const char **);
static void	 load_hostnames(struct loader *, const config_setting_t *);
static void	 load_listen(struct loader *, const config_setting_t *,
		    const char *, const char *, const char *const *,
		    struct listen_addr **, size_t *);
static int	 parse_cidr(const char *, struct cidr *, char **);
static void	 load_real(struct loader *, const config_setting_t *,
		    const char *, const char *, double, double, double *);
static void	 load_allow(struct loader *, const config_setting_t *,
		    const char *);
static void	 load_rate_limit(struct loader *, const config_setting_t *);
static void	 load_privileges(struct loader *, const config_setting_t *);
static void	 load_port(struct loader *, const config_setting_t *,
		    const char *, int *);
static void	 load_path(struct loader *, const config_setting_t *,
		    const char *, const char *, char **);
static void	 load_int(struct loader *, const config_setting_t *,
		    const char *, int, int, const char *, int *);
static void	 load_server(struct loader *, const config_setting_t *);
static int	 read_config(struct loader *, config_t *);

/* -------------------------------------------------------- value validators */

static int
parse_listen(const char *s, struct listen_addr *la, const char **why)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *colon, *h, *p;
	char host[INET6_ADDRSTRLEN + 1];
	size_t hlen;
	long port = 0;
	int af;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			*why = "expected \"[V6ADDR]:PORT\", e.g. \"[::1]:1965\"";
			return -1;
		}
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
		af = AF_INET6;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			*why = "expected \"ADDR:PORT\", e.g. \"127.0.0.1:1965\" or "
			    "\"[::1]:1965\"";
			return -1;
		}
		h = s;
		hlen = (size_t)(colon - s);
		af = AF_INET;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "expected a numeric address before the port, e.g. "
		    "\"0.0.0.0:1965\" or \"[::]:1965\"";
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (inet_pton(af, host, addr) != 1) {
		*why = af == AF_INET6 ? "not a numeric IPv6 address in the brackets" :
		    "not a numeric IPv4 address (write IPv6 as \"[::1]:1965\"; "
		    "host names are not resolved)";
		return -1;
	}
	p = colon + 1;
	if (*p == '\0') {
		*why = "the port is missing after the ':'";
		return -1;
	}
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || port > 65535) {
			*why = "the port must be a number from 1 to 65535";
			return -1;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	la->host = xstrdup(host);
	la->port = (int)port;
	la->proxy = 0;
	return 0;
}

int
config_parse_listen(const char *s, struct listen_addr *la)
{
	const char *why;

	return parse_listen(s, la, &why);
}



/* ---------------------------------------------------------- server settings */

static void
load_hostnames(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s = NULL;
	char *path = NULL;
	int n;

	if (srv != NULL)
		s = ld_child(ld, srv, "server", "hostnames", OPTIONAL, T_SEQ, &path);
	if (s == NULL) {
		cfg->hosts = xcalloc(1, sizeof(*cfg->hosts));
		cfg->hosts[0].name = xstrdup(DEFAULT_HOSTNAME);
		cfg->n_hosts = 1;
		free(path);
		return;
	}
	n = config_setting_length(s);
	if (n == 0)
		ld_report(ld, s, path, "is empty; name at least one hostname, the "
		    "public one first");
	cfg->hosts = xcalloc((size_t)n, sizeof(*cfg->hosts));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char *epath = xasprintf("%s[%d]", path, i);
		const char *v, *why;
		int j;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			ld_report(ld, e, epath, "expected a string, found %s",
			    ld_type_name(config_setting_type(e)));
			goto next;
		}
		v = config_setting_get_string(e);
		if (ld_check_text(ld, e, epath, v) == -1)
			goto next;
		if (ld_check_hostname(v, &why) == -1) {
			ld_report(ld, e, epath, "%s", why);
			goto next;
		}
		for (j = 0; j < i; j++) {
			config_setting_t *o = config_setting_get_elem(s,
			    (unsigned)j);
			const char *ov = config_setting_get_string(o);

			if (ov != NULL && strcmp(ov, v) == 0)
				break;
		}
		if (j < i) {
			ld_report(ld, e, epath, "duplicate hostname \"%s\" (also "
			    "%s[%d] on line %d)", v, path, j,
			    (int)config_setting_source_line(
			    config_setting_get_elem(s, (unsigned)j)));
			goto next;
		}
		cfg->hosts[cfg->n_hosts++].name = xstrdup(v);
next:
		free(epath);
	}
	free(path);
}

/*
 * KEY "listen" or "proxy_listen" of a protocol's group, appended to *vp
 * (proxy_listen after listen: the first plain address gives the public port).
 * The default plain listeners stand only when neither key is given, so a
 * server behind a proxy opens no public port by surprise; an empty "listen"
 * is then allowed too.
 */
static void
load_listen(struct loader *ld, const config_setting_t *group,
    const char *gpath, const char *key, const char *const *defaults,
    struct listen_addr **vp, size_t *np)
{
	config_setting_t *s = NULL, *px = NULL;
	int proxy = strcmp(key, "proxy_listen") == 0, have_proxy = 0;
	char *path = NULL;
	int n;

	if (group != NULL) {
		s = ld_child(ld, group, gpath, key, OPTIONAL, T_SEQ, &path);
		px = config_setting_get_member(group, "proxy_listen");
	}
	have_proxy = !proxy && px != NULL &&
	    ld_type_matches(T_SEQ, config_setting_type(px)) &&
	    config_setting_length(px) > 0;
	if (s == NULL && (proxy || have_proxy)) {
		free(path);
		return;
	}
	if (s == NULL && defaults[0] == NULL) {
		free(path);
		return;
	}
	if (s == NULL) {
		for (n = 0; defaults[n] != NULL; n++)
			;
		*vp = xcalloc((size_t)n, sizeof(**vp));
		for (int i = 0; i < n; i++) {
			const char *why;

			if (parse_listen(defaults[i], &(*vp)[*np], &why) == 0)
				(*np)++;
		}
		free(path);
		return;
	}
	n = config_setting_length(s);
	if (n == 0 && !proxy && !have_proxy && defaults[0] != NULL)
		ld_report(ld, s, path, "is empty; give at least one address, "
		    "e.g. [ \"%s\" ]", defaults[0]);
	*vp = xrealloc(*vp, (*np + (size_t)n) * sizeof(**vp));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char *epath = xasprintf("%s[%d]", path, i);
		struct listen_addr la;
		const char *why;
		size_t j;

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			ld_report(ld, e, epath, "expected a string \"ADDR:PORT\", "
			    "found %s", ld_type_name(config_setting_type(e)));
		else if (ld_check_text(ld, e, epath, config_setting_get_string(e))
		    == -1)
			;
		else if (parse_listen(config_setting_get_string(e), &la, &why)
		    == -1)
			ld_report(ld, e, epath, "%s", why);
		else {
			for (j = 0; j < *np; j++)
				if ((*vp)[j].port == la.port &&
				    strcmp((*vp)[j].host, la.host) == 0)
					break;
			if (j < *np) {
				ld_report(ld, e, epath, "duplicate listen address "
				    "\"%s\"", config_setting_get_string(e));
				free(la.host);
			} else {
				la.proxy = proxy;
				(*vp)[(*np)++] = la;
			}
		}
		free(epath);
	}
	free(path);
}

static void
load_port(struct loader *ld, const config_setting_t *group, const char *gpath,
    int *out)
{
	config_setting_t *s;
	char *path;
	long long v;

	s = ld_child(ld, group, gpath, "port", OPTIONAL, CONFIG_TYPE_INT, &path);
	if (s != NULL) {
		v = config_setting_get_int64(s);
		if (v < 1 || v > 65535)
			ld_report(ld, s, path, "must be a port number from 1 to "
			    "65535, not %lld", v);
		else
			*out = (int)v;
	}
	free(path);
}

/* One protocol's group (server.gemini, .gopher, .spartan, .nex; NULL when
 * absent): its keys, its public port, and its listen and proxy_listen
 * addresses. */
static void
load_protocol(struct loader *ld, const config_setting_t *group,
    const char *gpath, const char *const *keys, const char *const *defaults,
    int *port, struct listen_addr **vp, size_t *np)
{
	if (group != NULL) {
		ld_check_keys(ld, group, gpath, keys);
		load_port(ld, group, gpath, port);
	}
	load_listen(ld, group, gpath, "listen", defaults, vp, np);
	load_listen(ld, group, gpath, "proxy_listen", defaults, vp, np);
}

/* A folder or file name, kept resolved against the config's folder. */
static void
load_path(struct loader *ld, const config_setting_t *srv, const char *name,
    const char *def, char **out)
{
	char *v = NULL;

	if (srv != NULL)
		ld_get_text(ld, srv, "server", name, OPTIONAL, &v);
	*out = ld_resolve(ld->cfg->dir, v != NULL ? v : def);
	free(v);
}

static void
load_int(struct loader *ld, const config_setting_t *srv, const char *name,
    int min, int max, const char *hint, int *out)
{
	if (srv != NULL)
		ld_get_int(ld, srv, "server", name, min, max, hint, out);
}

/*
 * "ADDR/BITS", or a lone address for just that host. The bits after the prefix
 * must be 0: "10.0.0.1/8" is more likely a typo than a way to write 10.0.0.0/8.
 * *why is allocated (the message names the range meant).
 */
static int
parse_cidr(const char *s, struct cidr *c, char **why)
{
	char host[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/'), *p;
	size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned char masked[16];
	int max, bits = 0;

	memset(c, 0, sizeof(*c));
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, host, c->addr) == 1)
		c->family = AF_INET6;
	else
		goto bad;
	max = c->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		bits = max;
	else {
		p = slash + 1;
		if (*p == '\0' || (*p == '0' && p[1] != '\0'))
			goto bad_bits;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9' || bits > max)
				goto bad_bits;
			bits = bits * 10 + (*p - '0');
		}
		if (bits > max)
			goto bad_bits;
	}
	c->bits = bits;
	memcpy(masked, c->addr, sizeof(masked));
	for (int i = 0; i < 16; i++) {
		int keep = bits - i * 8;

		masked[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 :
		    (unsigned char)(0xff00 >> keep);
	}
	if (memcmp(masked, c->addr, (size_t)max / 8) != 0) {
		inet_ntop(c->family, masked, net, sizeof(net));
		*why = xasprintf("has address bits set after the /%d prefix; "
		    "the range is written \"%s/%d\"", bits, net, bits);
		return -1;
	}
	return 0;
bad:
	*why = xstrdup("not an address range; expected e.g. \"192.0.2.0/24\", "
	    "\"2001:db8::/32\" or a single address");
	return -1;
bad_bits:
	*why = xasprintf("the prefix length after '/' must be a number from 0 "
	    "to %d", max);
	return -1;
}

/* A number (integer or not) within [min, max]; *out keeps its default when
 * the setting is absent or wrong. */
static void
load_real(struct loader *ld, const config_setting_t *group, const char *gpath,
    const char *name, double min, double max, double *out)
{
	config_setting_t *s;
	char *path;
	double v;

	s = ld_child(ld, group, gpath, name, OPTIONAL, T_REAL, &path);
	if (s != NULL) {
		v = config_setting_type(s) == CONFIG_TYPE_FLOAT ?
		    config_setting_get_float(s) :
		    (double)config_setting_get_int64(s);
		if (!(v >= min))
			ld_report(ld, s, path, "must be at least %.10g", min);
		else if (v > max)
			ld_report(ld, s, path, "must be at most %.10g", max);
		else
			*out = v;
	}
	free(path);
}

/* The exempt ranges; an empty list exempts nobody. */
static void
load_allow(struct loader *ld, const config_setting_t *rl, const char *gpath)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s = NULL;
	char *path = NULL, *why;
	int n;

	if (rl != NULL)
		s = ld_child(ld, rl, gpath, "allow", OPTIONAL, T_SEQ, &path);
	free(path);
	if (s == NULL) {
		for (n = 0; default_allow[n] != NULL; n++)
			;
		cfg->allow = xcalloc((size_t)n, sizeof(*cfg->allow));
		for (int i = 0; i < n; i++)
			if (parse_cidr(default_allow[i],
			    &cfg->allow[cfg->n_allow], &why) == 0)
				cfg->n_allow++;
			else
				free(why);
		return;
	}
	n = config_setting_length(s);
	cfg->allow = xcalloc((size_t)n, sizeof(*cfg->allow));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char *epath = xasprintf("%s.allow[%d]", gpath, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			ld_report(ld, e, epath, "expected a string \"ADDR/BITS\", "
			    "found %s", ld_type_name(config_setting_type(e)));
		else if (ld_check_text(ld, e, epath, config_setting_get_string(e))
		    == -1)
			;
		else if (parse_cidr(config_setting_get_string(e),
		    &cfg->allow[cfg->n_allow], &why) == -1) {
			ld_report(ld, e, epath, "%s", why);
			free(why);
		} else
			cfg->n_allow++;
		free(epath);
	}
}

/* server.rate_limit = { rate; burst; max_per_address; allow; } */
static void
load_rate_limit(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *rl = NULL;
	char *path = NULL;

	cfg->rate = DEFAULT_RATE;
	cfg->burst = DEFAULT_BURST;
	cfg->max_per_address = DEFAULT_PER_ADDRESS;
	if (srv != NULL)
		rl = ld_child(ld, srv, "server", "rate_limit", OPTIONAL,
		    CONFIG_TYPE_GROUP, &path);
	if (rl != NULL) {
		ld_check_keys(ld, rl, path, rate_limit_keys);
		load_real(ld, rl, path, "rate", 0, RATE_MAX, &cfg->rate);
		/* One request takes one token: a smaller bucket serves none. */
		load_real(ld, rl, path, "burst", 1, RATE_MAX, &cfg->burst);
		ld_get_int(ld, rl, path, "max_per_address", 0, MAX_CONN_MAX,
		    " (0: no limit)", &cfg->max_per_address);
	}
	load_allow(ld, rl, "server.rate_limit");
	free(path);
}

/* server.user, server.chroot and server.sandbox: what the workers become
 * (the first two when started as root). Checked here as text only; whether the user exists is a matter for
 * the machine that runs the server, not for "kilnet -t" elsewhere. */
static void
load_privileges(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	const config_setting_t *s;
	char *v = NULL, *path = NULL;

	cfg->user = xstrdup(DEFAULT_USER);
	cfg->sandbox = 1;
	if (srv == NULL)
		return;
	if (ld_get_text(ld, srv, "server", "user", OPTIONAL, &cfg->user) == 0 &&
	    strpbrk(cfg->user, ":/ ") != NULL)
		ld_report(ld, config_setting_get_member(srv, "user"), "server.user",
		    "is not a user name (no ':', '/' or spaces)");
	/* "" turns the chroot off; unset, the default empty folder is used. */
	s = ld_child(ld, srv, "server", "chroot", OPTIONAL, CONFIG_TYPE_STRING, &path);
	if (s != NULL && *config_setting_get_string(s) == '\0')
		cfg->chroot_dir = xstrdup("");
	else if (s != NULL && ld_get_text(ld, srv, "server", "chroot", OPTIONAL, &v) == 0)
		cfg->chroot_dir = ld_resolve(cfg->dir, v);
	free(v);
	free(path);
	s = ld_child(ld, srv, "server", "sandbox", OPTIONAL, CONFIG_TYPE_BOOL, &path);
	if (s != NULL)
		cfg->sandbox = config_setting_get_bool(s);
	free(path);
}

static void
load_server(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *gem = NULL, *gop = NULL, *spa = NULL, *nex = NULL, *s;
	char *path, *v;

	if (srv != NULL) {
		ld_check_keys(ld, srv, "server", server_keys);
		gem = ld_child(ld, srv, "server", "gemini", OPTIONAL,
		    CONFIG_TYPE_GROUP, &path);
		free(path);
		gop = ld_child(ld, srv, "server", "gopher", OPTIONAL,
		    CONFIG_TYPE_GROUP, &path);
		free(path);
		spa = ld_child(ld, srv, "server", "spartan", OPTIONAL,
		    CONFIG_TYPE_GROUP, &path);
		free(path);
		nex = ld_child(ld, srv, "server", "nex", OPTIONAL,
		    CONFIG_TYPE_GROUP, &path);
		free(path);
	}
	load_hostnames(ld, srv);

	load_protocol(ld, gem, "server.gemini", gemini_keys, default_gemini_listen,
	    &cfg->gemini_port, &cfg->gemini_listen, &cfg->n_gemini_listen);
	load_protocol(ld, gop, "server.gopher", gopher_keys, default_gopher_listen,
	    &cfg->gopher_port, &cfg->gopher_listen, &cfg->n_gopher_listen);
	if (gop != NULL) {
		ld_get_text(ld, gop, "server.gopher", "description", OPTIONAL,
		    &cfg->gopher_description);
		/* "" is the documented way to say "no geolocation". */
		s = ld_child(ld, gop, "server.gopher", "geolocation", OPTIONAL,
		    CONFIG_TYPE_STRING, &path);
		if (s != NULL && *config_setting_get_string(s) != '\0' &&
		    ld_check_text(ld, s, path, config_setting_get_string(s)) == 0)
			cfg->gopher_geolocation =
			    xstrdup(config_setting_get_string(s));
		free(path);
	}
	load_protocol(ld, spa, "server.spartan", plain_keys, default_off_listen,
	    &cfg->spartan_port, &cfg->spartan_listen, &cfg->n_spartan_listen);
	load_protocol(ld, nex, "server.nex", plain_keys, default_off_listen,
	    &cfg->nex_port, &cfg->nex_listen, &cfg->n_nex_listen);

	load_path(ld, srv, "cert_dir", DEFAULT_CERT_DIR, &cfg->cert_dir);
	load_path(ld, srv, "capsule", DEFAULT_CAPSULE, &cfg->capsule_dir);

	cfg->handshake_timeout_ms = DEFAULT_HANDSHAKE_MS;
	cfg->request_timeout_ms = DEFAULT_REQUEST_MS;
	cfg->write_timeout_ms = DEFAULT_WRITE_MS;
	ld_get_seconds(ld, srv, "server", "handshake_timeout", &cfg->handshake_timeout_ms);
	ld_get_seconds(ld, srv, "server", "request_timeout", &cfg->request_timeout_ms);
	ld_get_seconds(ld, srv, "server", "write_timeout", &cfg->write_timeout_ms);

	cfg->max_connections = DEFAULT_MAX_CONN;
	cfg->workers = DEFAULT_WORKERS;
	load_int(ld, srv, "max_connections", 1, MAX_CONN_MAX, "",
	    &cfg->max_connections);
	load_int(ld, srv, "workers", 0, WORKERS_MAX, " (0: one per core)",
	    &cfg->workers);
	load_rate_limit(ld, srv);
	load_privileges(ld, srv);
	config_load_editing(ld, srv);
	config_load_store(ld, srv);
	config_load_metrics(ld, srv);

	if (srv == NULL)
		return;
	v = NULL;
	if (ld_get_text(ld, srv, "server", "access_log", OPTIONAL, &v) == 0) {
		/* A log file really named "off" or "stderr" is "./off". */
		if (strcmp(v, "stderr") == 0)
			cfg->access_log = NULL;
		else if (strcmp(v, "off") == 0)
			cfg->access_log = xstrdup("off");
		else
			cfg->access_log = ld_resolve(cfg->dir, v);
	}
	free(v);
	s = ld_child(ld, srv, "server", "anonymise_log", OPTIONAL,
	    CONFIG_TYPE_BOOL, &path);
	if (s != NULL)
		cfg->log_anonymise = config_setting_get_bool(s);
	free(path);
}

/* ------------------------------------------------------------------ loading */

/*
 * libconfig 1.5 (Debian 12) joins its include folder in front of every
 * @include path, absolute ones too, so config_set_include_dir would break
 * "@include "/abs/network.conf"". Instead the file is opened from the caller's
 * working folder and parsed from inside the config's folder, where libconfig
 * opens relative includes; the working folder is restored after. The loader
 * runs before workers start (or in one process on reload), so the brief
 * change of folder is seen by nobody else.
 */
static int
read_config(struct loader *ld, config_t *lc)
{
	struct config *cfg = ld->cfg;
	struct stat st;
	FILE *fp;
	int cwd, ok, chdir_ok;
	char *file;

	if ((fp = fopen(cfg->file, "r")) == NULL) {
		diag_add(ld->d, cfg->file, 0, NULL, "cannot read: %s",
		    strerror(errno));
		return -1;
	}
	/* libconfig's scanner exits the process when reading a folder fails. */
	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		diag_add(ld->d, cfg->file, 0, NULL, "is a folder, not a config "
		    "file");
		fclose(fp);
		return -1;
	}
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	chdir_ok = cwd != -1 && chdir(cfg->dir) == 0;
	if (!chdir_ok)
		config_set_include_dir(lc, cfg->dir);
	ok = config_read(lc, fp);
	fclose(fp);
	if (chdir_ok && fchdir(cwd) == -1) {
		diag_add(ld->d, cfg->file, 0, NULL, "cannot return to the working "
		    "folder: %s", strerror(errno));
		ok = 0;
	}
	if (cwd != -1)
		close(cwd);
	if (ok == CONFIG_FALSE && config_error_text(lc) != NULL) {
		file = ld_display_file(ld, config_error_file(lc));
		if (config_error_type(lc) == CONFIG_ERR_PARSE &&
		    strstr(config_error_text(lc), "include") != NULL)
			diag_add(ld->d, file, config_error_line(lc), NULL,
			    "%s (@include paths start in the folder %s)",
			    config_error_text(lc), cfg->dir);
		else
			diag_add(ld->d, file, config_error_line(lc), NULL, "%s",
			    config_error_text(lc));
		free(file);
	}
	return ok == CONFIG_TRUE ? 0 : -1;
}

/*
 * A dataset apart from the config (the edited one in the state folder, or an
 * upload being checked): a libconfig text that holds the network group and
 * nothing else, read from memory. Its settings carry no file name; their
 * problems name `display`, given as it is (not resolved again against the
 * config's folder), or only their line when display is "".
 */
static config_setting_t *
read_dataset_text(struct loader *ld, config_t *lc, const void *text, size_t len,
    const char *display)
{
	static const char *const dataset_keys[] = { "network", NULL };
	config_setting_t *root, *net;
	const unsigned char *nul;
	char *path;
	FILE *f;
	int ok, line;

	/* libconfig reads a C string: a NUL byte would end the text there,
	 * and what follows it would be stored but never checked. */
	if ((nul = memchr(text, '\0', len)) != NULL) {
		line = 1;
		for (const unsigned char *p = text; p < nul; p++)
			line += *p == '\n';
		diag_add(ld->d, display, line, NULL, "a NUL byte in the text");
		return NULL;
	}
	if ((line = ld_nul_escape(text, len)) > 0) {
		diag_add(ld->d, display, line, NULL, "a NUL byte (\\x00) in a string");
		return NULL;
	}
	if ((f = fmemopen(len > 0 ? (void *)text : (void *)"", len > 0 ? len : 1,
	    "r")) == NULL) {
		diag_add(ld->d, display, 0, NULL, "cannot read: %s", strerror(errno));
		return NULL;
	}
	ok = config_read(lc, f);
	fclose(f);
	if (ok == CONFIG_FALSE) {
		diag_add(ld->d, display, config_error_line(lc), NULL, "%s",
		    config_error_text(lc));
		return NULL;
	}
	ld->nofile = display;
	root = config_root_setting(lc);
	ld_check_keys(ld, root, NULL, dataset_keys);
	net = ld_child(ld, root, NULL, "network", REQUIRED, CONFIG_TYPE_GROUP,
	    &path);
	free(path);
	return net;
}

/* The dataset file by path, read whole, then as above. */
static config_setting_t *
read_dataset(struct loader *ld, config_t *lc, const char *file)
{
	struct buf b = { 0 };
	char chunk[65536];
	config_setting_t *net;
	ssize_t n;
	int fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		diag_add(ld->d, file, 0, NULL, "cannot read: %s", strerror(errno));
		return NULL;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	if (n < 0) {
		diag_add(ld->d, file, 0, NULL, "cannot read: %s", strerror(errno));
		buf_free(&b);
		return NULL;
	}
	net = read_dataset_text(ld, lc, b.data, b.len, file);
	buf_free(&b);
	return net;
}

/* A "\x00" in a file libconfig read (see ld_nul_escape). */
static void
nul_scan(struct loader *ld, const char *file)
{
	struct buf b = { 0 };
	char chunk[65536];
	ssize_t n;
	int fd, line;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	if ((line = ld_nul_escape(b.data, b.len)) > 0)
		diag_add(ld->d, file, line, NULL, "a NUL byte (\\x00) in a string");
	buf_free(&b);
}

int
config_read_dataset(struct config *cfg, const void *text, size_t len,
    const char *display, struct diag *d)
{
	struct loader ld = { cfg, d, NULL, 0, 0, NULL };
	size_t errors = d->n;
	config_setting_t *net;
	config_t lc;

	network_free(&cfg->net);
	config_init(&lc);
	if ((net = read_dataset_text(&ld, &lc, text, len, display)) != NULL)
		config_load_network(&ld, net);
	config_destroy(&lc);
	ld_flush_problems(&ld);
	if (cfg->gopher_description_net) {
		free(cfg->gopher_description);
		cfg->gopher_description = cfg->net.name != NULL ?
		    xstrdup(cfg->net.name) : NULL;
	}
	if (d->n > errors) {
		network_free(&cfg->net);
		return -1;
	}
	return 0;
}

int
config_load(const char *file, struct config *cfg, struct diag *d)
{
	return config_load_with(file, NULL, cfg, d);
}

int
config_load_with(const char *file, const char *dataset, struct config *cfg,
    struct diag *d)
{
	struct loader ld = { cfg, d, NULL, 0, 0, NULL };
	config_setting_t *root, *srv, *net;
	size_t errors = d->n;
	const char *slash;
	config_t lc, dlc;
	char *path, *edited = NULL;
	int own_dataset;

	memset(cfg, 0, sizeof(*cfg));
	cfg->file = xstrdup(file);
	if ((slash = strrchr(file, '/')) == NULL)
		cfg->dir = xstrdup(".");
	else if (slash == file)
		cfg->dir = xstrdup("/");
	else
		cfg->dir = xasprintf("%.*s", (int)(slash - file), file);

	config_init(&lc);
	config_init(&dlc);
	if (read_config(&ld, &lc) == -1) {
		config_destroy(&lc);
		config_destroy(&dlc);
		config_free(cfg);
		return -1;
	}
	root = config_root_setting(&lc);
	ld_check_keys(&ld, root, NULL, top_keys);
	srv = ld_child(&ld, root, NULL, "server", OPTIONAL, CONFIG_TYPE_GROUP,
	    &path);
	free(path);
	load_server(&ld, srv);
	/*
	 * Once an editor has stored a dataset, it is the dataset: the network
	 * group of the config (the seed) waits behind it, also after a restart.
	 */
	if (dataset == NULL) {
		edited = xasprintf("%s/" STATE_DATASET, cfg->state_dir);
		if (access(edited, F_OK) == 0)
			dataset = edited;
	} else if (*dataset == '\0') {
		dataset = NULL;		/* CONFIG_SEED: the config's own */
	}
	own_dataset = dataset != NULL;
	if (own_dataset) {
		net = read_dataset(&ld, &dlc, dataset);
		cfg->dataset_file = xstrdup(dataset);
	} else {
		net = ld_child(&ld, root, NULL, "network", REQUIRED,
		    CONFIG_TYPE_GROUP, &path);
		free(path);
		if (net != NULL)
			cfg->dataset_file = ld_display_file(&ld,
			    config_setting_source_file(net));
	}
	/* The files libconfig read itself: the config and the seed's file. */
	nul_scan(&ld, cfg->file);
	if (!own_dataset && cfg->dataset_file != NULL &&
	    strcmp(cfg->dataset_file, cfg->file) != 0)
		nul_scan(&ld, cfg->dataset_file);
	if (net != NULL)
		config_load_network(&ld, net);
	if (cfg->gopher_description == NULL && cfg->net.name != NULL) {
		cfg->gopher_description = xstrdup(cfg->net.name);
		cfg->gopher_description_net = 1;
	}
	config_destroy(&lc);
	config_destroy(&dlc);
	ld_flush_problems(&ld);
	free(edited);		/* its name was ld.nofile until here */

	if (d->n > errors) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

void
config_finish(struct config *cfg)
{
	if (cfg->gemini_port == 0 && cfg->n_gemini_listen > 0)
		cfg->gemini_port = cfg->gemini_listen[0].port;
	if (cfg->gopher_port == 0 && cfg->n_gopher_listen > 0)
		cfg->gopher_port = cfg->gopher_listen[0].port;
	/* A protocol that is not listened on gets no port, so no page links to
	 * it; a port set in the config but nothing listening is off too. */
	if (cfg->n_spartan_listen == 0)
		cfg->spartan_port = 0;
	else if (cfg->spartan_port == 0)
		cfg->spartan_port = cfg->spartan_listen[0].port;
	if (cfg->n_nex_listen == 0)
		cfg->nex_port = 0;
	else if (cfg->nex_port == 0)
		cfg->nex_port = cfg->nex_listen[0].port;
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		struct host_conf *h = &cfg->hosts[i];

		free(h->cert);
		free(h->key);
		h->cert = xasprintf("%s/%s.crt", cfg->cert_dir, h->name);
		h->key = xasprintf("%s/%s.key", cfg->cert_dir, h->name);
	}
}

static void
listen_free(struct listen_addr *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

void
config_free(struct config *cfg)
{
	free(cfg->file);
	free(cfg->dir);
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		free(cfg->hosts[i].name);
		free(cfg->hosts[i].cert);
		free(cfg->hosts[i].key);
	}
	free(cfg->hosts);
	listen_free(cfg->gemini_listen, cfg->n_gemini_listen);
	listen_free(cfg->gopher_listen, cfg->n_gopher_listen);
	listen_free(cfg->spartan_listen, cfg->n_spartan_listen);
	listen_free(cfg->nex_listen, cfg->n_nex_listen);
	free(cfg->cert_dir);
	free(cfg->capsule_dir);
	free(cfg->access_log);
	free(cfg->gopher_description);
	free(cfg->gopher_geolocation);
	free(cfg->allow);
	free(cfg->user);
	free(cfg->chroot_dir);
	config_free_editing(cfg);
	config_free_store(cfg);
	config_free_metrics(cfg);
	network_free(&cfg->net);
	memset(cfg, 0, sizeof(*cfg));
}
