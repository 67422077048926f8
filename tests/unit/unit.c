/*
 * unit.c: the unit tests' runner and helpers (unit.h). Runs the suites of
 * UNIT_SUITES, or those whose names start with argv[1], prints each failed
 * case, and ends with "N passed, N failed"; exit status 1 when any failed.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static int         passed, failed;
static const char *suite;
static char        scratch[] = "/tmp/kilnet-unit.XXXXXX";
static int         have_scratch;
static char      **files;		/* unit_file's paths, freed at the end */
static size_t      n_files;

char *
unit_quote(const void *p, size_t n)
{
	const unsigned char *b = p;
	struct buf q = { 0 };

	for (size_t i = 0; i < n; i++) {
		unsigned char c = b[i];

		if (c == '\n')
			buf_adds(&q, "\\n");
		else if (c == '\r')
			buf_adds(&q, "\\r");
		else if (c == '\t')
			buf_adds(&q, "\\t");
		else if (c == '"' || c == '\\')
			buf_printf(&q, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(&q, "\\x%02x", c);
		else
			buf_add(&q, &c, 1);
	}
	buf_add(&q, "", 1);
	return (char *)q.data;
}

/* bytes with C escapes for anything not printable ASCII, on stdout */
static void
show(const void *p, size_t n)
{
	char *q = unit_quote(p, n < 600 ? n : 600);

	printf("\"%s\"", q);
	if (n > 600)
		printf("... (%zu bytes)", n);
	free(q);
}

static void
failed_head(const char *name)
{
	failed++;
	printf("FAIL %s: %s\n", suite, name);
}

void
unit_ok(const char *name, int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed_head(name);
	fputs("  ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void
unit_mem(const char *name, const void *got, size_t glen, const void *want,
    size_t wlen)
{
	if (got != NULL && glen == wlen && memcmp(got, want, wlen) == 0) {
		passed++;
		return;
	}
	failed_head(name);
	fputs("  expected: ", stdout);
	show(want, wlen);
	fputs("\n  actual:   ", stdout);
	if (got == NULL)
		fputs("(nothing)", stdout);
	else
		show(got, glen);
	putchar('\n');
}

void
unit_str(const char *name, const char *got, const char *want)
{
	unit_mem(name, got, got != NULL ? strlen(got) : 0, want, strlen(want));
}

void
unit_long(const char *name, long got, long want)
{
	unit_ok(name, got == want, "expected %ld, got %ld", want, got);
}

struct site *
unit_site(void)
{
	static struct config cfg;
	static struct site *site;
	struct diag d = { 0 };

	if (site != NULL)
		return site;
	if (config_load(KILNET_ROOT "/conf/kilnet.conf", &cfg, &d) == -1) {
		diag_print(&d, "unit: ");
		exit(2);
	}
	config_finish(&cfg);
	if ((site = site_build(&cfg, &d)) == NULL) {
		diag_print(&d, "unit: ");
		exit(2);
	}
	diag_clear(&d);
	return site;
}

char *
unit_reply_head(const struct reply *r)
{
	const unsigned char *crlf;
	size_t n;

	if (r->data == NULL)
		return xstrdup("");
	crlf = memmem(r->data, r->len, "\r\n", 2);
	n = crlf != NULL ? (size_t)(crlf - r->data) : r->len;
	return xasprintf("%.*s", (int)n, (const char *)r->data);
}

const char *
unit_file(const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (!have_scratch) {
		if (mkdtemp(scratch) == NULL) {
			perror("unit: mkdtemp");
			exit(2);
		}
		have_scratch = 1;
	}
	path = xasprintf("%s/%s", scratch, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) == EOF ||
	    fclose(fp) == EOF) {
		perror(path);
		exit(2);
	}
	files = xrealloc(files, (n_files + 1) * sizeof(*files));
	files[n_files++] = path;
	return path;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	if (remove(path) == -1)
		perror(path);
	return 0;
}

static void
remove_scratch(void)
{
	if (have_scratch)
		nftw(scratch, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void      (*run)(void);
	} suites[] = {
#define UNIT_ENTRY(name) { #name, unit_##name },
		UNIT_SUITES(UNIT_ENTRY)
	};
	const char *only = argc > 1 ? argv[1] : "";
	size_t ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (strncmp(suites[i].name, only, strlen(only)) != 0)
			continue;
		suite = suites[i].name;
		suites[i].run();
		ran++;
	}
	remove_scratch();
	if (ran == 0) {
		printf("unit: no suite is named %s*\n", only);
		failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
