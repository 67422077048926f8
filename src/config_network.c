/*
 * config_network.c: the dataset part of the config loader: the network group
 * (the network's text, its members, how to join) into struct network, with
 * dataset.c's content rules and every problem named by file, line and setting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

static const char *const network_keys[] = {
	"name", "url", "introduction", "quote", "background", "convener",
	"partner", "members_intro", "members", "join", "updated", NULL
};
static const char *const quote_keys[] = { "text", "by", NULL };
static const char *const member_keys[] = {
	"id", "name", "spokesperson", "role", "statement", "joined", "updated",
	NULL
};
static const char *const join_keys[] = {
	"heading", "text", "label", "url", NULL
};

/* The links out of the capsule: an absolute URL, scheme first (RFC 3986 3.1),
 * and no spaces, which no link line could carry. */
static int
check_url(const char *s)
{
	const char *p = s;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return -1;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || p[1] == '\0')
		return -1;
	return strchr(s, ' ') == NULL ? 0 : -1;
}

/* ------------------------------------------------------------------ dataset */

/* ISO 8601 calendar date, the extended form "YYYY-MM-DD" of a day that exists
 * (proleptic Gregorian: 2024-02-29 is one, 2023-02-29 is not). */
static int
check_date(const char *s, const char **why)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, max;

	for (int i = 0; i < DATE_LEN; i++) {
		int digit = s[i] >= '0' && s[i] <= '9';

		if (s[i] == '\0' || ((i == 4 || i == 7) ? s[i] != '-' : !digit)) {
			*why = "expected a date \"YYYY-MM-DD\", e.g. \"2024-05-01\"";
			return -1;
		}
	}
	if (s[DATE_LEN] != '\0') {
		*why = "expected a date \"YYYY-MM-DD\", e.g. \"2024-05-01\"";
		return -1;
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1) {
		*why = "the year must be 0001 or later";
		return -1;
	}
	if (m < 1 || m > 12) {
		*why = "not a date: the month must be 01 to 12";
		return -1;
	}
	max = days[m - 1];
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		max = 29;
	if (d < 1 || d > max) {
		static const char *const month[] = { "January", "February",
			"March", "April", "May", "June", "July", "August",
			"September", "October", "November", "December" };
		static char msg[64];

		/* Loading runs in one thread, before any worker starts. */
		if (m == 2)
			snprintf(msg, sizeof(msg), "not a date: February %04d "
			    "has %d days", y, max);
		else
			snprintf(msg, sizeof(msg), "not a date: %s has %d days",
			    month[m - 1], max);
		*why = d < 1 ? "not a date: the day must be 01 or later" : msg;
		return -1;
	}
	return 0;
}

/* An optional date setting; out (DATE_LEN + 1 bytes) stays "" when absent. */
static void
get_date(struct loader *ld, const config_setting_t *group, const char *gpath,
    const char *name, char *out)
{
	config_setting_t *s;
	const char *why;
	char *path;

	s = ld_child(ld, group, gpath, name, OPTIONAL, CONFIG_TYPE_STRING, NULL);
	if (s == NULL)
		return;
	if (check_date(config_setting_get_string(s), &why) == -1) {
		path = ld_join_path(gpath, name);
		ld_report(ld, s, path, "%s", why);
		free(path);
	} else {
		memcpy(out, config_setting_get_string(s), DATE_LEN + 1);
	}
}

static void
load_member(struct loader *ld, const config_setting_t *s, const char *mpath,
    struct member *m)
{
	config_setting_t *id;
	char *path;
	const char *why;

	ld_check_keys(ld, s, mpath, member_keys);
	m->line = (int)config_setting_source_line(s);
	id = ld_child(ld, s, mpath, "id", REQUIRED, CONFIG_TYPE_STRING, &path);
	if (id != NULL && ld_check_text(ld, id, path, config_setting_get_string(id))
	    == 0) {
		if (dataset_check_id(config_setting_get_string(id), &why) == -1)
			ld_report(ld, id, path, "%s", why);
		else
			m->id = xstrdup(config_setting_get_string(id));
	}
	free(path);
	ld_get_text(ld, s, mpath, "name", REQUIRED, &m->name);
	ld_get_text(ld, s, mpath, "spokesperson", REQUIRED, &m->spokesperson);
	ld_get_text(ld, s, mpath, "role", REQUIRED, &m->role);
	ld_get_paragraphs(ld, s, mpath, "statement", 1, &m->statement);
	get_date(ld, s, mpath, "joined", m->joined);
	get_date(ld, s, mpath, "updated", m->updated);
}

/*
 * The ids seen so far, for the duplicate check: open addressing over member
 * indexes (-1: empty), at most half full. A check against every earlier id
 * was quadratic, 50 million comparisons for 10,000 members.
 */
struct id_set {
	int    *slot;
	size_t  mask;
};

static size_t
id_hash(const char *s)
{
	size_t h = 2166136261u;  /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Adds members[i]'s id; returns the index of the member that has it already,
 * or -1 (then it is added). */
static int
ids_add(struct id_set *ids, const struct member *members, int i)
{
	size_t k = id_hash(members[i].id) & ids->mask;

	for (; ids->slot[k] != -1; k = (k + 1) & ids->mask)
		if (strcmp(members[ids->slot[k]].id, members[i].id) == 0)
			return ids->slot[k];
	ids->slot[k] = i;
	return -1;
}

static void
load_members(struct loader *ld, const config_setting_t *net)
{
	struct network *nw = &ld->cfg->net;
	struct id_set ids;
	config_setting_t *s;
	size_t size = 16;
	char *path;
	int n, j;

	s = ld_child(ld, net, "network", "members", REQUIRED, T_SEQ, &path);
	if (s == NULL) {
		free(path);
		return;
	}
	n = config_setting_length(s);
	if (n == 0)
		ld_report(ld, s, path, "is empty; list at least one member council");
	nw->members = xcalloc((size_t)n, sizeof(*nw->members));
	nw->n_members = (size_t)n;
	while (size < 2 * (size_t)n)
		size *= 2;
	ids.slot = xmalloc(size * sizeof(*ids.slot));
	ids.mask = size - 1;
	memset(ids.slot, 0xff, size * sizeof(*ids.slot));  /* every slot -1 */
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		struct member *m = &nw->members[i];
		char *mpath = xasprintf("%s[%d]", path, i);

		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			ld_report(ld, e, mpath, "expected a group { id = ...; "
			    "name = ...; ... }, found %s",
			    ld_type_name(config_setting_type(e)));
			free(mpath);
			continue;
		}
		load_member(ld, e, mpath, m);
		if (m->id != NULL && (j = ids_add(&ids, nw->members, i)) >= 0) {
			config_setting_t *first;
			char *idpath;

			first = config_setting_get_member(
			    config_setting_get_elem(s, (unsigned)j), "id");
			idpath = xasprintf("%s.id", mpath);
			ld_report(ld, config_setting_get_member(e, "id"), idpath,
			    "duplicate id \"%s\", first used by %s[%d] on line %d",
			    m->id, path, j, (int)config_setting_source_line(first));
			free(idpath);
		}
		free(mpath);
	}
	free(ids.slot);
	free(path);
}

void
config_load_network(struct loader *ld, const config_setting_t *net)
{
	struct network *nw = &ld->cfg->net;
	config_setting_t *s;
	char *path;

	ld_check_keys(ld, net, "network", network_keys);
	ld_get_text(ld, net, "network", "name", REQUIRED, &nw->name);
	get_date(ld, net, "network", "updated", nw->updated);
	if (ld_get_text(ld, net, "network", "url", OPTIONAL, &nw->url) == 0 &&
	    check_url(nw->url) == -1) {
		s = config_setting_get_member(net, "url");
		ld_report(ld, s, "network.url", "is not an absolute URL (e.g. "
		    "\"https://example.org/\")");
	}
	ld_get_paragraphs(ld, net, "network", "introduction", 1,
	    &nw->introduction);

	s = ld_child(ld, net, "network", "quote", OPTIONAL, CONFIG_TYPE_GROUP,
	    &path);
	if (s != NULL) {
		ld_check_keys(ld, s, path, quote_keys);
		ld_get_text(ld, s, path, "text", REQUIRED, &nw->quote);
		ld_get_text(ld, s, path, "by", REQUIRED, &nw->quote_by);
	}
	free(path);

	ld_get_paragraphs(ld, net, "network", "background", 0, &nw->background);
	ld_get_text(ld, net, "network", "convener", REQUIRED, &nw->convener);
	ld_get_text(ld, net, "network", "partner", OPTIONAL, &nw->partner);
	ld_get_paragraphs(ld, net, "network", "members_intro", 0,
	    &nw->members_intro);
	load_members(ld, net);

	s = ld_child(ld, net, "network", "join", REQUIRED, CONFIG_TYPE_GROUP,
	    &path);
	if (s != NULL) {
		ld_check_keys(ld, s, path, join_keys);
		ld_get_text(ld, s, path, "heading", REQUIRED, &nw->join_heading);
		ld_get_paragraphs(ld, s, path, "text", 1, &nw->join_text);
		ld_get_text(ld, s, path, "label", REQUIRED, &nw->join_label);
		if (ld_get_text(ld, s, path, "url", REQUIRED, &nw->join_url) == 0 &&
		    check_url(nw->join_url) == -1)
			ld_report(ld, config_setting_get_member(s, "url"),
			    "network.join.url", "is not an absolute URL (e.g. "
			    "\"https://example.org/\")");
	}
	free(path);
}

