/*
 * wire_roundtrip.c: the site wire format's test (tests/test_wire.sh) and
 * measure. Builds the site of a config as kilnet does (config_load,
 * config_finish, site_build), writes it with site_wire_write, reads it back
 * with site_wire_read, and compares the two sites field by field, their
 * replies to every page and to searches (gemini_respond, gopher_respond), and
 * the bytes of the read site written again. It exports both sites
 * (site_export) into OUT/built and OUT/read, and writes the replies to
 * OUT/built.replies and OUT/read.replies and the bytes to OUT/site.wire, for
 * the test to compare too. Linked with the server's objects (the Makefile).
 *
 *   wire_roundtrip [-cp] [-r ROUNDS] CONFIG OUT
 *
 * -c: the search index is built again, the text of every other member left
 * in no page, so that the index holds copies (the built one holds none).
 * -p: no proper prefix of the bytes reads as a site.
 * -r: writes and reads ROUNDS times and prints the fastest of each, and the
 * size. Exit status 0 when the two sites are the same, 1 when not (each
 * difference printed), 2 when something failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/kilnet.h"

static int differences;

static void
differ(const char *what, const char *key)
{
	if (differences++ < 20)
		fprintf(stderr, "wire_roundtrip: differs: %s%s%s\n", what,
		    key != NULL ? " of " : "", key != NULL ? key : "");
}

static int
str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void
compare_table(const char *what, const struct resource *a, size_t na,
    const struct resource *b, size_t nb)
{
	if (na != nb) {
		differ(what, "(the number of resources)");
		return;
	}
	for (size_t i = 0; i < na; i++) {
		const struct resource *x = &a[i], *y = &b[i];

		if (!str_eq(x->key, y->key))
			differ("key", x->key);
		if (!str_eq(x->mime, y->mime))
			differ("mime", x->key);
		if (x->gtype != y->gtype)
			differ("gtype", x->key);
		if (x->len != y->len || (x->len > 0 &&
		    memcmp(x->data, y->data, x->len) != 0))
			differ("data", x->key);
		if (x->body_off != y->body_off)
			differ("body_off", x->key);
		if (x->generated != y->generated)
			differ("generated", x->key);
		if (x->search != y->search)
			differ("search", x->key);
	}
}

/* Every field of struct site; the index through its replies (below). */
static void
compare_sites(const struct site *a, const struct site *b)
{
	compare_table("Gemini table", a->gemini, a->n_gemini, b->gemini,
	    b->n_gemini);
	compare_table("Gopher table", a->gopher, a->n_gopher, b->gopher,
	    b->n_gopher);
	if ((a->search == NULL) != (b->search == NULL))
		differ("search index", NULL);
	if (!str_eq(a->ro.hostname, b->ro.hostname) ||
	    b->ro.hostname != b->hostname)
		differ("ro.hostname", NULL);
	if (a->ro.gemini_port != b->ro.gemini_port)
		differ("ro.gemini_port", NULL);
	if (a->ro.gopher_port != b->ro.gopher_port)
		differ("ro.gopher_port", NULL);
	if (!str_eq(a->hostname, b->hostname))
		differ("hostname", NULL);
	if (!str_eq(a->network_name, b->network_name))
		differ("network_name", NULL);
	if (a->n_hosts != b->n_hosts)
		differ("n_hosts", NULL);
	for (size_t i = 0; i < a->n_hosts && i < b->n_hosts; i++)
		if (!str_eq(a->hosts[i], b->hosts[i]))
			differ("hosts", a->hosts[i]);
	if (a->n_ports != b->n_ports)
		differ("n_ports", NULL);
	for (size_t i = 0; i < a->n_ports && i < b->n_ports; i++)
		if (a->ports[i] != b->ports[i])
			differ("ports", NULL);
	if (!str_eq(a->caps, b->caps))
		differ("caps", NULL);
	if (!str_eq(a->edit_host, b->edit_host))
		differ("edit_host", NULL);
}

/* ---------------------------------------------------------------- replies */

struct requests {
	char   **v;   /* each with its line end */
	int     *gopher;
	size_t   n;
};

static void
add_request(struct requests *q, int gopher, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_request(struct requests *q, int gopher, const char *fmt, ...)
{
	va_list ap;

	q->v = xrealloc(q->v, (q->n + 1) * sizeof(*q->v));
	q->gopher = xrealloc(q->gopher, (q->n + 1) * sizeof(*q->gopher));
	va_start(ap, fmt);
	q->v[q->n] = xvasprintf(fmt, ap);
	va_end(ap);
	q->gopher[q->n++] = gopher;
}

/* Searches that match one member, many (pages of them), none, and text that
 * only its folded form matches (the hostile dataset's). */
static const char *const queries[] = {
	"council", "the", "e", "a", "local%20partnerships", "zzqqxj",
	"%C3%A9", "%C3%BCn%C3%AF", "%C3%91AME", "txtevil", "STMEVIL", "%E2%80%99",
};

static void
make_requests(const struct site *s, struct requests *q)
{
	const char *h = s->hostname;

	for (size_t i = 0; i < s->n_gemini; i++)
		add_request(q, 0, "gemini://%s%s\r\n", h, s->gemini[i].key);
	for (size_t i = 0; i < s->n_gopher; i++)
		add_request(q, 1, "%s\r\n", s->gopher[i].key);
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		add_request(q, 0, "gemini://%s/search?%s\r\n", h, queries[i]);
		add_request(q, 1, "/search\t%s\r\n", queries[i]);
		for (int p = 2; p <= 4; p++) {
			add_request(q, 0, "gemini://%s/search/page/%d?%s\r\n", h,
			    p, queries[i]);
			add_request(q, 1, "/search/page/%d?%s\r\n", p, queries[i]);
		}
	}
	add_request(q, 0, "gemini://%s:%d/\r\n", h, s->ro.gemini_port);
	add_request(q, 0, "gemini://%s:1/\r\n", h);
	add_request(q, 0, "gemini://elsewhere.example/\r\n");
	for (size_t i = 0; i < s->n_hosts; i++)
		add_request(q, 0, "gemini://%s/\r\n", s->hosts[i]);
	if (s->edit_host != NULL) {
		add_request(q, 0, "gemini://%s/network.conf\r\n", s->edit_host);
		add_request(q, 0, "gemini://%s/versions/\r\n", s->edit_host);
	}
	add_request(q, 1, "/no/such/selector\r\n");
}

static void
respond(const struct site *s, const struct requests *q, size_t i,
    struct reply *r)
{
	const unsigned char *req = (const unsigned char *)q->v[i];

	memset(r, 0, sizeof(*r));
	if (q->gopher[i])
		gopher_respond(s, req, strlen(q->v[i]), r);
	else
		gemini_respond(s, s->hostname, req, strlen(q->v[i]), r);
}

static void
record(FILE *fp, const char *req, const struct reply *r)
{
	fprintf(fp, "%s%d %d %zu\n", req, r->status, r->edit, r->len);
	if (r->len > 0)
		fwrite(r->data, 1, r->len, fp);
	fputc('\n', fp);
}

/* Each request to both sites; the replies to files and compared. */
static int
compare_replies(const struct site *a, const struct site *b, const char *out)
{
	struct requests q = { 0 };
	char *fa = xasprintf("%s/built.replies", out);
	char *fb = xasprintf("%s/read.replies", out);
	FILE *pa = fopen(fa, "w"), *pb = fopen(fb, "w");
	size_t searches = 0;

	if (pa == NULL || pb == NULL) {
		fprintf(stderr, "wire_roundtrip: %s: %s\n", out, strerror(errno));
		return -1;
	}
	make_requests(a, &q);
	for (size_t i = 0; i < q.n; i++) {
		struct reply x, y;

		respond(a, &q, i, &x);
		respond(b, &q, i, &y);
		record(pa, q.v[i], &x);
		record(pb, q.v[i], &y);
		if (x.status != y.status || x.edit != y.edit || x.len != y.len ||
		    (x.len > 0 && memcmp(x.data, y.data, x.len) != 0))
			differ("the reply to", q.v[i]);
		if (strstr(q.v[i], "search") != NULL && x.len > 200)
			searches++;
		reply_free(&x);
		reply_free(&y);
		free(q.v[i]);
	}
	printf("wire_roundtrip: %zu requests compared, %zu of them searches "
	    "with results\n", q.n, searches);
	free(q.v);
	free(q.gopher);
	fclose(pa);
	fclose(pb);
	free(fa);
	free(fb);
	return 0;
}

/* --------------------------------------------------------------- building */

/* -c: every other member's page is none, so its fields are copies. */
struct half_pages {
	const struct site    *site;
	const struct network *net;
};

static const char *
half_page(void *arg, const struct member *m, size_t *len)
{
	const struct half_pages *hp = arg;
	const struct resource *r;
	char *key;

	*len = 0;
	if ((m - hp->net->members) % 2 == 1)
		return NULL;
	key = xasprintf("/members/%s.gmi", m->id);
	r = site_gemini(hp->site, key);
	free(key);
	if (r == NULL)
		return NULL;
	*len = r->len - r->body_off;
	return (const char *)r->data + r->body_off;
}

static struct site *
build(const char *file, int copies)
{
	struct config cfg, cfg2;
	struct diag d = { 0 };
	struct site *s;

	memset(&cfg, 0, sizeof(cfg));
	if (config_load(file, &cfg, &d) == -1) {
		diag_print(&d, "wire_roundtrip: ");
		return NULL;
	}
	config_finish(&cfg);
	s = site_build(&cfg, &d);
	diag_clear(&d);
	config_free(&cfg);
	if (s == NULL || !copies)
		return s;
	/* The dataset again (site_build freed it), for an index of copies. */
	memset(&cfg2, 0, sizeof(cfg2));
	if (config_load(file, &cfg2, &d) == -1) {
		diag_print(&d, "wire_roundtrip: ");
		site_free(s);
		return NULL;
	}
	struct half_pages hp = { s, &cfg2.net };

	search_free(s->search);
	s->search = search_build(&cfg2.net, half_page, &hp);
	diag_clear(&d);
	config_free(&cfg2);
	return s;
}

/* -p: no proper prefix of the bytes reads as a site; each read from an
 * exact-size copy, so that ASan sees a read past its end. */
static void
check_prefixes(const struct buf *w)
{
	char err[256];

	for (size_t n = 0; n < w->len; n++) {
		unsigned char *copy = xmalloc(n);
		struct site *s;

		memcpy(copy, w->data, n);
		err[0] = '\0';
		s = site_wire_read(copy, n, err, sizeof(err));
		free(copy);
		if (s != NULL || err[0] == '\0') {
			differ("a prefix read as a site (or without a reason)",
			    NULL);
			site_free(s);
			return;
		}
	}
	printf("wire_roundtrip: none of the %zu proper prefixes reads\n",
	    w->len);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
write_file(const char *path, const struct buf *b)
{
	FILE *fp = fopen(path, "wb");

	if (fp == NULL || fwrite(b->data, 1, b->len, fp) != b->len ||
	    fclose(fp) != 0) {
		fprintf(stderr, "wire_roundtrip: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct buf w = { 0 }, again = { 0 };
	struct site *built, *read = NULL;
	struct diag d = { 0 };
	double best_w = 1e9, best_r = 1e9, t, t_build;
	int c, copies = 0, prefixes = 0, rounds = 0, rc = 2;
	char err[256], *path;

	while ((c = getopt(argc, argv, "cpr:")) != -1) {
		switch (c) {
		case 'c':
			copies = 1;
			break;
		case 'p':
			prefixes = 1;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	t_build = now_s();
	if ((built = build(argv[optind], copies)) == NULL)
		return 2;
	t_build = now_s() - t_build;

	for (int i = 0; i < (rounds > 0 ? rounds : 1); i++) {
		buf_free(&w);  /* a fresh buffer, as a builder would have */
		t = now_s();
		site_wire_write(built, &w);
		if ((t = now_s() - t) < best_w)
			best_w = t;
		site_free(read);
		t = now_s();
		read = site_wire_read(w.data, w.len, err, sizeof(err));
		if ((t = now_s() - t) < best_r)
			best_r = t;
		if (read == NULL) {
			fprintf(stderr, "wire_roundtrip: site_wire_read: %s\n", err);
			goto out;
		}
	}
	if (rounds > 0)
		printf("wire_roundtrip: %zu bytes (%zu Gemini, %zu Gopher "
		    "resources); write %.3f ms, read %.3f ms (fastest of %d); "
		    "the build took %.1f ms\n", w.len, built->n_gemini,
		    built->n_gopher, best_w * 1e3, best_r * 1e3, rounds,
		    t_build * 1e3);

	path = xasprintf("%s/site.wire", argv[optind + 1]);
	if (write_file(path, &w) == -1) {
		free(path);
		goto out;
	}
	free(path);

	compare_sites(built, read);
	if (prefixes)
		check_prefixes(&w);
	site_wire_write(read, &again);
	if (again.len != w.len || memcmp(again.data, w.data, w.len) != 0)
		differ("the bytes of the read site, written again", NULL);
	if (compare_replies(built, read, argv[optind + 1]) == -1)
		goto out;

	path = xasprintf("%s/built", argv[optind + 1]);
	if (site_export(built, path, &d) == -1) {
		diag_print(&d, "wire_roundtrip: ");
		free(path);
		goto out;
	}
	free(path);
	path = xasprintf("%s/read", argv[optind + 1]);
	if (site_export(read, path, &d) == -1) {
		diag_print(&d, "wire_roundtrip: ");
		free(path);
		goto out;
	}
	free(path);
	rc = differences > 0;
	if (rc)
		fprintf(stderr, "wire_roundtrip: %d differences\n", differences);
out:
	diag_clear(&d);
	buf_free(&w);
	buf_free(&again);
	site_free(built);
	site_free(read);
	return rc;
usage:
	fprintf(stderr, "usage: wire_roundtrip [-cp] [-r ROUNDS] CONFIG OUT\n");
	return 2;
}
