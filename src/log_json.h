/*
 * log_json.h: what log.c asks of log_json.c, and nothing else includes: the
 * JSON lines of server.log_format = "json".
 */
#ifndef KILNET_LOG_JSON_H
#define KILNET_LOG_JSON_H

#include <stddef.h>

#include "server.h"

/* One message's line (ending in a newline, malloc'd); NULL out of memory. */
char *log_json_message(const char *level, const char *process, const char *msg);
/* One request's line: addr as the log shows the client, reqlen the request's
 * bytes without their line terminator. */
char *log_json_access(const struct access_rec *, const char *addr, int worker,
	    size_t reqlen);

#endif
