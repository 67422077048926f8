/*
 * loader.c: the config loader's machinery, for config.c (server settings) and
 * config_network.c (the dataset): problems are held back and given in file
 * order, every lookup of a setting knows its path and line, and unknown keys,
 * wrong types and text that is not valid are reported the same way everywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

static int	 problem_cmp(const void *, const void *);

/* ------------------------------------------------------------ paths, names */

/* PATH as seen from DIR: absolute paths stay; "." adds nothing, so a config
 * in the working folder gives paths without a "./" in front. */
char *
ld_resolve(const char *dir, const char *path)
{
	size_t n;

	if (path[0] == '/' || strcmp(dir, ".") == 0)
		return xstrdup(path);
	n = strlen(dir);
	if (n > 0 && dir[n - 1] == '/')
		return xasprintf("%s%s", dir, path);
	return xasprintf("%s/%s", dir, path);
}

/* libconfig names the main file NULL (it reads a stream, see read_config) and
 * an included file as written in @include, relative to the config's folder. */
int
ld_nul_escape(const void *text, size_t len)
{
	const unsigned char *p = text, *end = p + len;
	int line = 1, in_str = 0;

	for (; p < end; p++) {
		if (*p == '\n')
			line++;
		if (in_str) {
			if (*p == '"') {
				in_str = 0;
			} else if (*p == '\\' && p + 1 < end) {
				if (p[1] == 'x' && end - p >= 4 && p[2] == '0' && p[3] == '0')
					return line;
				p++;
			}
		} else if (*p == '"') {
			in_str = 1;
		} else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
			while (p + 1 < end && p[1] != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			for (p += 2; p + 1 < end && !(p[0] == '*' && p[1] == '/'); p++)
				line += *p == '\n';
			p++;
		}
	}
	return 0;
}

char *
ld_display_file(const struct loader *ld, const char *f)
{
	if (f == NULL)
		return xstrdup(ld->nofile != NULL ? ld->nofile : ld->cfg->file);
	return ld_resolve(ld->cfg->dir, f);
}

void
ld_report(struct loader *ld, const config_setting_t *s, const char *path,
    const char *fmt, ...)
{
	va_list ap;
	char *file, *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);

	file = ld_display_file(ld, config_setting_source_file(s));
	if (ld->n == ld->cap) {
		ld->cap = ld->cap ? ld->cap * 2 : 16;
		ld->v = xrealloc(ld->v, ld->cap * sizeof(*ld->v));
	}
	ld->v[ld->n].file_rank = ld->n;
	for (size_t i = 0; i < ld->n; i++)
		if (strcmp(ld->v[i].file, file) == 0) {
			ld->v[ld->n].file_rank = ld->v[i].file_rank;
			break;
		}
	ld->v[ld->n].file = file;
	ld->v[ld->n].line = (int)config_setting_source_line(s);
	ld->v[ld->n].seq = ld->n;
	ld->v[ld->n].path = xstrdup(path);
	ld->v[ld->n].msg = msg;
	ld->n++;
}

static int
problem_cmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;

	if (p->file_rank != q->file_rank)
		return p->file_rank < q->file_rank ? -1 : 1;
	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Hands the problems to the caller's diag, in the order of the file. */
void
ld_flush_problems(struct loader *ld)
{
	if (ld->n > 0)
		qsort(ld->v, ld->n, sizeof(*ld->v), problem_cmp);
	for (size_t i = 0; i < ld->n; i++) {
		struct problem *p = &ld->v[i];

		diag_add(ld->d, p->file, p->line, p->path, "%s", p->msg);
		free(p->file);
		free(p->path);
		free(p->msg);
	}
	free(ld->v);
	ld->v = NULL;
	ld->n = ld->cap = 0;
}

char *
ld_join_path(const char *parent, const char *name)
{
	if (parent == NULL || *parent == '\0')
		return xstrdup(name);
	return xasprintf("%s.%s", parent, name);
}

const char *
ld_type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP:
		return "a group { ... }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number with a decimal point";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean (true or false)";
	case CONFIG_TYPE_ARRAY:
		return "an array [ ... ]";
	case CONFIG_TYPE_LIST:
		return "a list ( ... )";
	case T_NUMBER:
		return "a number of seconds";
	case T_SEQ:
		return "a list [ ... ]";
	case T_REAL:
		return "a number";
	}
	return "a value of unknown type";
}

int
ld_type_matches(int want, int have)
{
	switch (want) {
	case CONFIG_TYPE_INT:
		return have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
	case T_NUMBER:
	case T_REAL:
		return have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64 ||
		    have == CONFIG_TYPE_FLOAT;
	case T_SEQ:
		return have == CONFIG_TYPE_ARRAY || have == CONFIG_TYPE_LIST;
	}
	return want == have;
}

/* ---------------------------------------------------------- generic checks */

/* A misspelt key would otherwise be ignored and its default used in silence. */
void
ld_check_keys(struct loader *ld, const config_setting_t *group, const char *path,
    const char *const *known)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		struct buf list = { 0 };
		size_t k;
		char *p;

		if (name == NULL)
			continue;
		for (k = 0; known[k] != NULL; k++)
			if (strcmp(known[k], name) == 0)
				break;
		if (known[k] != NULL)
			continue;
		for (k = 0; known[k] != NULL; k++)
			buf_printf(&list, "%s%s", k ? ", " : "", known[k]);
		p = ld_join_path(path, name);
		ld_report(ld, s, p, "unknown setting (known here: %s)", list.data);
		free(p);
		buf_free(&list);
	}
}

/*
 * The setting NAME in GROUP when it is there with the right type, else NULL;
 * a missing required setting and a wrong type are reported. *pathp gets the
 * setting's readable path (the caller frees it). With pathp NULL the path is
 * built only for a report: a dataset of 10,000 members has 100,000 settings
 * that are nearly always right.
 */
config_setting_t *
ld_child(struct loader *ld, const config_setting_t *group, const char *gpath,
    const char *name, int required, int type, char **pathp)
{
	config_setting_t *s = config_setting_get_member(group, name);
	const config_setting_t *at = s;
	char *path = NULL;
	int bad;

	if (pathp != NULL)
		*pathp = path = ld_join_path(gpath, name);
	bad = s == NULL ? required : !ld_type_matches(type, config_setting_type(s));
	if (bad && path == NULL)
		path = ld_join_path(gpath, name);
	if (s == NULL) {
		/* A missing setting has no line; its group's is the best hint. */
		at = group;
		if (required)
			ld_report(ld, at, path, "missing; this setting is required");
	} else if (bad) {
		ld_report(ld, at, path, "expected %s, found %s", ld_type_name(type),
		    ld_type_name(config_setting_type(s)));
	}
	if (pathp == NULL)
		free(path);
	return s == NULL || bad ? NULL : s;
}

int
ld_check_text(struct loader *ld, const config_setting_t *s, const char *path,
    const char *v)
{
	const char *why;

	if (dataset_check_text(v, &why) == 0)
		return 0;
	ld_report(ld, s, path, "%s", why);
	return -1;
}

/* A string setting that must be valid text; *out keeps its value if absent. */
int
ld_get_text(struct loader *ld, const config_setting_t *group, const char *gpath,
    const char *name, int required, char **out)
{
	config_setting_t *s;
	const char *v, *why;
	char *path;

	s = ld_child(ld, group, gpath, name, required, CONFIG_TYPE_STRING, NULL);
	if (s == NULL)
		return -1;
	v = config_setting_get_string(s);
	if (dataset_check_text(v, &why) == -1) {
		path = ld_join_path(gpath, name);
		ld_report(ld, s, path, "%s", why);
		free(path);
		return -1;
	}
	free(*out);
	*out = xstrdup(v);
	return 0;
}

/* A list of paragraphs, each a string of valid text. NONEMPTY: at least one. */
void
ld_get_paragraphs(struct loader *ld, const config_setting_t *group,
    const char *gpath, const char *name, int nonempty, struct paragraphs *out)
{
	config_setting_t *s;
	char *path;
	int n;

	s = ld_child(ld, group, gpath, name, nonempty, T_SEQ, &path);
	if (s == NULL) {
		free(path);
		return;
	}
	n = config_setting_length(s);
	if (n == 0 && nonempty)
		ld_report(ld, s, path, "is empty; write at least one paragraph");
	out->v = xcalloc((size_t)n, sizeof(*out->v));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e), *why = NULL;
		char *epath;

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			why = ld_type_name(config_setting_type(e));
		else if (dataset_check_text(v, &why) == 0) {
			out->v[out->n++] = xstrdup(v);
			continue;
		}
		epath = xasprintf("%s[%d]", path, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			ld_report(ld, e, epath, "expected a string (one paragraph), "
			    "found %s", why);
		else
			ld_report(ld, e, epath, "%s", why);
		free(epath);
	}
	free(path);
}

/* RFC 1035 2.3.4: 63 bytes a label, 255 a name on the wire (253 as text). */
#define HOSTNAME_MAX          253
#define LABEL_MAX             63

/* Hostnames go into certificate file names, SNI matching and links: only
 * the letters, digits, dots and hyphens of RFC 1123 names, in lower case. */
int
ld_check_hostname(const char *s, const char **why)
{
	size_t label = 0;
	const char *p;

	if (strlen(s) > HOSTNAME_MAX) {
		*why = "is longer than 253 bytes";
		return -1;
	}
	for (p = s; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0) {
				*why = "has an empty label (\"..\", or a '.' at "
				    "an end)";
				return -1;
			}
			if (p[-1] == '-') {
				*why = "has a label that ends with '-'";
				return -1;
			}
			if (*p == '\0')
				return 0;
			label = 0;
			continue;
		}
		if (*p >= 'A' && *p <= 'Z') {
			*why = "has upper-case letters; write hostnames in lower "
			    "case";
			return -1;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    (*p == '-' && label > 0))) {
			*why = "is not a hostname (letters a-z, digits, '-' and "
			    "'.' only, e.g. \"example.org\")";
			return -1;
		}
		if (++label > LABEL_MAX) {
			*why = "has a label longer than 63 bytes";
			return -1;
		}
	}
}

/*
 * A number of seconds (an integer or not) into milliseconds. A deadline beyond
 * a day is a typo (milliseconds for seconds), and the bound keeps the
 * millisecond value far from INT_MAX.
 */
void
ld_get_seconds(struct loader *ld, const config_setting_t *group,
    const char *gpath, const char *name, int *out_ms)
{
	config_setting_t *s;
	char *path;
	double v, ms;
	long long r;

	if (group == NULL)
		return;
	s = ld_child(ld, group, gpath, name, OPTIONAL, T_NUMBER, &path);
	if (s != NULL) {
		v = config_setting_type(s) == CONFIG_TYPE_FLOAT ?
		    config_setting_get_float(s) :
		    (double)config_setting_get_int64(s);
		if (!(v > 0))
			ld_report(ld, s, path, "must be more than 0 seconds");
		else if (v > LD_SECONDS_MAX)
			ld_report(ld, s, path, "must be at most %d seconds (a day)",
			    LD_SECONDS_MAX);
		else {
			/* Round up: 0.0001 s is a short deadline, not none. */
			ms = v * 1000.0;
			r = (long long)ms;
			if ((double)r < ms)
				r++;
			*out_ms = (int)r;
		}
	}
	free(path);
}

void
ld_get_int(struct loader *ld, const config_setting_t *group,
    const char *gpath, const char *name, int min, int max, const char *hint,
    int *out)
{
	config_setting_t *s;
	char *path;
	long long v;

	s = ld_child(ld, group, gpath, name, OPTIONAL, CONFIG_TYPE_INT, &path);
	if (s != NULL) {
		v = config_setting_get_int64(s);
		if (v < min)
			ld_report(ld, s, path, "must be at least %d%s", min, hint);
		else if (v > max)
			ld_report(ld, s, path, "must be at most %d", max);
		else
			*out = (int)v;
	}
	free(path);
}
