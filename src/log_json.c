/*
 * log_json.c: the JSON lines of server.log_format = "json" (log.c decides
 * where they go). Each line is one object made by jansson, never by pasting
 * strings: a quote, a backslash, a CR or LF or an escape sequence in a
 * request is escaped by the encoder (and everything outside ASCII written as
 * \uXXXX, so that a terminal showing the log takes nothing as a command). JSON
 * strings are Unicode: bytes that are not UTF-8 become U+FFFD there, and then
 * the field's exact bytes follow in base64 beside it ("request_base64").
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <unistr.h>

#include "server.h"
#include "log_json.h"

/* The encoder's settings: one line, fields in the order they are added, and
 * ASCII only. */
#define JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)

/* Now as RFC 3339 in UTC with milliseconds: 2026-12-02T03:04:05.678Z. */
static void
rfc3339_ms(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}

/* p as a JSON string: itself when it is UTF-8, else with U+FFFD for each
 * byte that is not (*lossy set). NULL out of memory. */
static json_t *
json_bytes(const unsigned char *p, size_t n, int *lossy)
{
	static const unsigned char repl[] = { 0xef, 0xbf, 0xbd };
	struct buf b = { 0 };
	json_t *j;

	*lossy = 0;
	if (u8_check(p, n) == NULL)
		return json_stringn((const char *)p, n);
	for (size_t i = 0; i < n;) {
		ucs4_t uc;
		int l = u8_mbtoucr(&uc, p + i, n - i);

		if (l < 1) {
			buf_add(&b, repl, sizeof(repl));
			i++;
		} else {
			buf_add(&b, p + i, (size_t)l);
			i += (size_t)l;
		}
	}
	*lossy = 1;
	j = json_stringn(b.len > 0 ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return j;
}

/* Adds key: the string s (len bytes), and key_base64 when it was not UTF-8. */
static void
set_bytes(json_t *o, const char *key, const void *s, size_t len)
{
	int lossy;
	json_t *j = json_bytes(s, len, &lossy);
	unsigned char *b64;
	char name[64];

	json_object_set_new(o, key, j != NULL ? j : json_null());
	if (!lossy)
		return;
	b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock(b64, s, (int)len);
	snprintf(name, sizeof(name), "%s_base64", key);
	json_object_set_new(o, name, json_string((const char *)b64));
	free(b64);
}

/* The object as one line with its newline; NULL when it cannot be made. */
static char *
line_of(json_t *o)
{
	char *s = json_dumps(o, JSON_FLAGS), *line;
	size_t n;

	json_decref(o);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	free(s);
	return line;
}

char *
log_json_message(const char *level, const char *process, const char *msg)
{
	char t[40];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	rfc3339_ms(t, sizeof(t));
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "level", json_string(level));
	set_bytes(o, "process", process, strlen(process));
	set_bytes(o, "message", msg, strlen(msg));
	return line_of(o);
}

char *
log_json_access(const struct access_rec *r, const char *addr, int worker,
    size_t reqlen)
{
	static const char *const protos[MP_COUNT] = {
		"gemini", "titan", "gopher", "spartan", "nex"
	};
	char t[40];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	rfc3339_ms(t, sizeof(t));
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "client", json_string(addr));
	json_object_set_new(o, "protocol", json_string(r->mproto >= 0 &&
	    r->mproto < MP_COUNT ? protos[r->mproto] : r->proto));
	json_object_set_new(o, "tls", json_boolean(r->tls));
	if (r->sni != NULL && *r->sni != '\0')
		set_bytes(o, "host", r->sni, strnlen(r->sni, 255));
	else
		json_object_set_new(o, "host", json_null());
	set_bytes(o, "request", r->req, reqlen);
	json_object_set_new(o, "status", json_integer(r->status));
	json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(o, "duration_ms", json_integer(r->ms));
	json_object_set_new(o, "resumed", json_boolean(r->resumed));
	json_object_set_new(o, "worker", json_integer(worker));
	return line_of(o);
}
