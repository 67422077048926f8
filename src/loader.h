/*
 * loader.h: what the config loader's files share (config.c: the file and the
 * server settings; config_network.c: the dataset; loader.c: the machinery):
 * problems held back to be given in file order, and typed lookups of settings
 * that know their path ("server.gemini.listen[0]") and line. Only they include it.
 */
#ifndef KILNET_LOADER_H
#define KILNET_LOADER_H

#include <libconfig.h>

#include "kilnet.h"

/* Pseudo types for ld_child(): values that may take more than one libconfig type. */
#define T_NUMBER 100	/* integer or float */
#define T_SEQ    101	/* array [ ] or list ( ) */
#define T_REAL   102	/* integer or float, not a time */

enum { OPTIONAL = 0, REQUIRED = 1 };

/* A problem found, held back so that all of them can be given in file order:
 * settings are checked group by group, not line by line. */
struct problem {
	char   *file;
	int     line;
	size_t  file_rank;	/* files in the order they first had a problem */
	size_t  seq;		/* the order found, among equal lines */
	char   *path;
	char   *msg;
};

struct loader {
	struct config  *cfg;
	struct diag    *d;
	struct problem *v;
	size_t          n, cap;
	/* The name of settings read from memory (no file of their own): a
	 * dataset in the state folder, an upload ("": its lines only). */
	const char     *nofile;
};

/* PATH as seen from DIR (a new string). */
char   *ld_resolve(const char *dir, const char *path);
/* The line of the first "\x00" inside a string of a libconfig text, or 0:
 * libconfig decodes it to a NUL byte, which ends the C string there, and the
 * rest of the text would be stored but never checked or served. */
int     ld_nul_escape(const void *text, size_t len);
/* A file name as messages show it. */
char   *ld_display_file(const struct loader *, const char *file);
/* A problem at setting s (its line; path names it), held back until flushed. */
void    ld_report(struct loader *, const config_setting_t *s, const char *path,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Gives every problem held, in file order, to the caller's diag. */
void    ld_flush_problems(struct loader *);
char   *ld_join_path(const char *parent, const char *name);
const char *ld_type_name(int type);
/* 1 when a setting of libconfig type `have` is what `want` (a type or a
 * pseudo type) asks for. */
int     ld_type_matches(int want, int have);
/* Reports the members of group not in known (NULL-terminated). */
void    ld_check_keys(struct loader *, const config_setting_t *group,
	    const char *path, const char *const *known);
/* The member `name` of group, of type `type` (or a pseudo type above); NULL
 * when absent (reported when required) or of another type (reported). *path
 * is set to its whole path, for the caller to free. */
config_setting_t *ld_child(struct loader *, const config_setting_t *group,
	    const char *gpath, const char *name, int required, int type,
	    char **path);
int     ld_check_text(struct loader *, const config_setting_t *s,
	    const char *path, const char *text);
/* A string setting that must be valid text; *out keeps its value if absent. */
int     ld_get_text(struct loader *, const config_setting_t *group,
	    const char *gpath, const char *name, int required, char **out);
void    ld_get_paragraphs(struct loader *, const config_setting_t *group,
	    const char *gpath, const char *name, int nonempty,
	    struct paragraphs *out);

/* Seconds (integer or not, more than 0, at most LD_SECONDS_MAX) into *out_ms,
 * left as it is when the setting is absent (or group NULL). */
#define LD_SECONDS_MAX 86400
void    ld_get_seconds(struct loader *, const config_setting_t *group,
	    const char *gpath, const char *name, int *out_ms);
/* An integer from min to max into *out (hint follows "at least MIN"). */
void    ld_get_int(struct loader *, const config_setting_t *group,
	    const char *gpath, const char *name, int min, int max,
	    const char *hint, int *out);
/* A hostname's syntax (RFC 1123, lower case): 0, or -1 with why. */
int     ld_check_hostname(const char *, const char **why);
/* config_edit.c: server.editors, editing_hostname, max_upload, upload_timeout
 * and state_dir (srv may be NULL: the defaults). After the hostnames. */
void    config_load_editing(struct loader *, const config_setting_t *srv);

/* config_store.c: server.store (srv may be NULL: none, the state folder
 * alone). */
void    config_load_store(struct loader *, const config_setting_t *srv);
/* config_metrics.c: server.metrics and server.log_format (srv may be NULL:
 * the defaults, metrics off and text logs). */
void    config_load_metrics(struct loader *, const config_setting_t *srv);

/* config_network.c: the network group (the dataset) into ld->cfg->net. */
void    config_load_network(struct loader *, const config_setting_t *net);

#endif
