/*
 * config_edit.c: the settings for editing the network from a Gemini client
 * (Titan uploads, titan.c and editor.c): who may edit (server.editors, the
 * SHA-256 of each editor's client certificate), the hostname that asks for
 * certificates (server.editing_hostname), the upload's size and deadline, and
 * the state folder where the edited dataset and its earlier versions live.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "kilnet.h"
#include "loader.h"

#define DEFAULT_MAX_UPLOAD    (1024 * 1024)
/* The largest upload anyone could mean: a dataset of 10,000 members is 11 MB. */
#define MAX_UPLOAD_MAX        (256 * 1024 * 1024)
#define DEFAULT_UPLOAD_MS     60000
#define DEFAULT_STATE_DIR     "state"

/* "AB:cd:..." -> 64 lower-case hex digits in out (65 bytes); -1 if not a SHA-256. */
static int
parse_fingerprint(const char *s, char *out)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		char c = *s;

		if (c == ':' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n == 64)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

static void
load_editors(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s;
	char *path;
	int n;

	s = ld_child(ld, srv, "server", "editors", OPTIONAL, T_SEQ, &path);
	if (s == NULL) {
		free(path);
		return;
	}
	n = config_setting_length(s);
	cfg->editors = xcalloc((size_t)n + 1, sizeof(*cfg->editors));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		char *epath = xasprintf("%s[%d]", path, i), fp[65];

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			ld_report(ld, e, epath, "expected a string (a certificate's "
			    "SHA-256, 64 hex digits), found %s",
			    ld_type_name(config_setting_type(e)));
		else if (parse_fingerprint(config_setting_get_string(e), fp) == -1)
			ld_report(ld, e, epath, "is not a SHA-256 fingerprint (64 hex "
			    "digits, colons allowed), e.g. the output of: openssl x509 "
			    "-in editor.crt -outform DER | sha256sum");
		else
			cfg->editors[cfg->n_editors++] = xstrdup(fp);
		free(epath);
	}
	free(path);
}

/* server.editing_hostname: served like the others (its own certificate), and
 * the only one whose handshake asks for a client certificate. */
static void
load_editing_host(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	config_setting_t *s;
	const char *why;
	char *path, *v = NULL;
	size_t i;

	s = ld_child(ld, srv, "server", "editing_hostname", OPTIONAL,
	    CONFIG_TYPE_STRING, &path);
	if (s == NULL || ld_get_text(ld, srv, "server", "editing_hostname",
	    OPTIONAL, &v) == -1) {
		free(path);
		return;
	}
	if (ld_check_hostname(v, &why) == -1) {
		ld_report(ld, s, path, "%s", why);
		free(v);
		free(path);
		return;
	}
	for (i = 0; i < cfg->n_hosts; i++)
		if (strcmp(cfg->hosts[i].name, v) == 0)
			break;
	if (i == 0 && cfg->n_hosts > 0)
		ld_report(ld, s, path, "is the public hostname; name another one "
		    "(e.g. \"edit.%s\"), or leave it out to edit on the public "
		    "hostname", v);
	if (i == cfg->n_hosts) {
		cfg->hosts = xrealloc(cfg->hosts, (cfg->n_hosts + 1) *
		    sizeof(*cfg->hosts));
		memset(&cfg->hosts[i], 0, sizeof(cfg->hosts[i]));
		cfg->hosts[i].name = xstrdup(v);
		cfg->n_hosts++;
	}
	cfg->hosts[i].editing = 1;
	cfg->editing_host = v;
	free(path);
}

void
config_load_editing(struct loader *ld, const config_setting_t *srv)
{
	struct config *cfg = ld->cfg;
	char *v = NULL;

	cfg->max_upload = DEFAULT_MAX_UPLOAD;
	cfg->upload_timeout_ms = DEFAULT_UPLOAD_MS;
	if (srv != NULL) {
		load_editors(ld, srv);
		load_editing_host(ld, srv);
		ld_get_int(ld, srv, "server", "max_upload", 1, MAX_UPLOAD_MAX, "",
		    &cfg->max_upload);
		ld_get_seconds(ld, srv, "server", "upload_timeout",
		    &cfg->upload_timeout_ms);
		ld_get_text(ld, srv, "server", "state_dir", OPTIONAL, &v);
	}
	cfg->state_dir = ld_resolve(cfg->dir, v != NULL ? v : DEFAULT_STATE_DIR);
	free(v);
	/* Editors and no editing hostname: the public one asks for certificates. */
	if (cfg->n_editors > 0 && cfg->editing_host == NULL && cfg->n_hosts > 0)
		cfg->hosts[0].editing = 1;
}

int
config_is_editor(const struct config *cfg, const char *fp)
{
	for (size_t i = 0; i < cfg->n_editors; i++)
		if (strcmp(cfg->editors[i], fp) == 0)
			return 1;
	return 0;
}

void
config_free_editing(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_editors; i++)
		free(cfg->editors[i]);
	free(cfg->editors);
	free(cfg->editing_host);
	free(cfg->state_dir);
	free(cfg->dataset_file);
}
