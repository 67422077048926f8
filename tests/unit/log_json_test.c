/*
 * log_json_test.c: log_json.c's lines, read back with jansson's own parser:
 * one object and one line whatever the request holds (quotes, backslashes,
 * CR, LF, escape sequences, NUL, bytes that are not UTF-8), each field
 * holding what was sent (request_base64 when it was not UTF-8), ASCII only.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include "unit.h"
#include "../../src/log_json.h"

/* The line parsed; NULL (and a failed case) when it is not one object on
 * one line of printable ASCII. */
static json_t *
parsed(const char *what, const char *line)
{
	size_t n = strlen(line);
	json_error_t err;
	json_t *o;

	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e) {
			unit_ok(what, 0, "byte 0x%02x at %zu", (unsigned char)line[i], i);
			return NULL;
		}
	if (n == 0 || line[n - 1] != '\n') {
		unit_ok(what, 0, "no newline at the end");
		return NULL;
	}
	if ((o = json_loads(line, JSON_ALLOW_NUL, &err)) == NULL || !json_is_object(o)) {
		unit_ok(what, 0, "not an object: %s", err.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

void
unit_log_json(void)
{
	static const struct {
		const char *what;
		const char *req;
		size_t      len;
		int         utf8;
	} t[] = {
		{ "quotes and backslashes", "gemini://h/\"a\"\\b", 16, 1 },
		{ "CR, LF", "x\ry\nz", 5, 1 },
		{ "a forged field", "\",\"status\":20,\"x\":\"", 19, 1 },
		{ "ANSI escapes", "\x1b[31mred\x1b]0;t\x07", 14, 1 },
		{ "a NUL", "a\0b", 3, 1 },
		{ "UTF-8", "caf\xc3\xa9 \xe2\x80\xae", 9, 1 },
		{ "not UTF-8", "\xff\xfe \xc0\xaf \xed\xa0\x80", 9, 0 },
		{ "cut short", "ok\xe2\x80", 4, 0 },
		{ "empty", "", 0, 1 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct access_rec r = { .proto = "gopher", .mproto = MP_GOPHER,
		    .client = (struct sockaddr *)&sa, .sni = NULL,
		    .req = (const unsigned char *)t[i].req, .reqlen = t[i].len,
		    .status = 3, .bytes = 42, .ms = 5 };
		char *name = xasprintf("json access line: %s", t[i].what);
		char *line = log_json_access(&r, "192.0.2.1", 2, t[i].len);
		json_t *o = line != NULL ? parsed(name, line) : NULL;
		const char *b64;
		unsigned char raw[64];
		int n;

		if (o == NULL) {
			if (line == NULL)
				unit_ok(name, 0, "no line");
			free(line);
			free(name);
			continue;
		}
		b64 = json_string_value(json_object_get(o, "request_base64"));
		if (t[i].utf8) {
			json_t *rq = json_object_get(o, "request");

			unit_mem(name, json_string_value(rq), json_string_length(rq),
			    t[i].req, t[i].len);
			unit_ok(name, b64 == NULL, "request_base64 %s", b64);
		} else if (b64 == NULL) {
			unit_ok(name, 0, "no request_base64");
		} else {
			n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
			n -= (int)(strlen(b64) > 0 && b64[strlen(b64) - 1] == '=') +
			    (int)(strlen(b64) > 1 && b64[strlen(b64) - 2] == '=');
			unit_mem(name, raw, n > 0 ? (size_t)n : 0, t[i].req, t[i].len);
		}
		free(name);
		name = xasprintf("json access fields: %s", t[i].what);
		unit_ok(name, json_integer_value(json_object_get(o, "status")) == 3 &&
		    json_integer_value(json_object_get(o, "bytes")) == 42 &&
		    json_integer_value(json_object_get(o, "worker")) == 2 &&
		    json_is_null(json_object_get(o, "host")) &&
		    strcmp(json_string_value(json_object_get(o, "protocol")), "gopher") == 0 &&
		    strcmp(json_string_value(json_object_get(o, "client")), "192.0.2.1") == 0 &&
		    strlen(json_string_value(json_object_get(o, "time"))) == 24, "%s", line);
		json_decref(o);
		free(line);
		free(name);
	}
	{
		char *line = log_json_message("error", "worker 1",
		    "a \"quoted\"\nline\\ \x1b[0m \xff");
		json_t *o = line != NULL ? parsed("json message line", line) : NULL;

		if (o != NULL) {
			unit_str("json message: level",
			    json_string_value(json_object_get(o, "level")), "error");
			unit_str("json message: process",
			    json_string_value(json_object_get(o, "process")), "worker 1");
			unit_str("json message: message",
			    json_string_value(json_object_get(o, "message")),
			    "a \"quoted\"\nline\\ \x1b[0m \xef\xbf\xbd");
			json_decref(o);
		}
		free(line);
	}
}
