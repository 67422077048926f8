/*
 * log.c: the server's two logs. Messages (errors, warnings, notices about
 * connections) always go to stderr as "kilnet[wID]: LEVEL: text". The access
 * log, one line per request, goes to stderr, to a file opened in append mode,
 * or nowhere ("off"):
 *
 *   2024-05-01T12:00:00Z w1 gemini 127.0.0.1 localhost "gemini://localhost/" 20 1719 3ms
 *
 * time (UTC), worker, protocol, client address (cut to /24 or /48 when
 * anonymised), SNI host or "-", the request (CRLF stripped, quotes, backslashes
 * and every byte outside printable ASCII escaped), status, bytes sent, duration.
 * Each line is one write(2), so workers appending to the same file or pipe never
 * interleave within a line.
 *
 * With server.log_format = "json" both logs are one JSON object a line, made
 * by jansson (log_json.c), so that no request can break a line or forge a
 * field; the same fields, named.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "log_json.h"

/* The longest request either protocol reads and the longest hostname, each
 * byte escaped as \xHH, plus room for every other field. */
#define LOG_LINE_MAX ((GOPHER_MAX_REQUEST + 255) * 4 + 256)

static int  access_fd = 2;     /* -1: access log off */
static int  anonymise;
static int  worker_id;
static int  json;               /* server.log_format = "json" */
static char process[16];        /* the process's title; "": master, worker */
/* Where the first error logged goes while a caller holds it (log_hold_error). */
static char   *held;
static size_t  held_size;

void
log_init(const char *path, int anon, int id)
{
	anonymise = anon;
	worker_id = id;
	if (access_fd > 2)
		close(access_fd);
	access_fd = 2;
	if (path == NULL || strcmp(path, "stderr") == 0 || strcmp(path, "-") == 0)
		return;
	if (strcmp(path, "off") == 0) {
		access_fd = -1;
		return;
	}
	access_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (access_fd == -1) {
		access_fd = 2;
		log_error("access log %s: %s; logging requests to stderr", path,
		    strerror(errno));
	}
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;		/* a log that cannot be written must not stop serving */
		}
		p += w;
		n -= (size_t)w;
	}
}

void
log_set_json(int on)
{
	json = on;
}

void
log_process(const char *title)
{
	snprintf(process, sizeof(process), "%s", title);
	prctl(PR_SET_NAME, process);
}

void
log_hold_error(char *buf, size_t size)
{
	held = size > 0 ? buf : NULL;
	held_size = size;
	if (held != NULL)
		held[0] = '\0';
}

/* The process as the JSON log names it. */
static const char *
process_name(char *buf, size_t size)
{
	if (process[0] != '\0')
		return process;
	if (worker_id == 0)
		return "master";
	snprintf(buf, size, "worker %d", worker_id);
	return buf;
}

void
log_msg(const char *level, const char *fmt, ...)
{
	char line[2048], who[32], *out;
	va_list ap;
	int n, m;

	n = json ? 0 : snprintf(line, sizeof(line), KILNET_NAME "[w%d]: %s: ",
	    worker_id, level);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	if (held != NULL && held[0] == '\0' && strcmp(level, "error") == 0) {
		/* One line: a message is one, but what it quotes may not be. */
		snprintf(held, held_size, "%s", line + n);
		for (char *p = held; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;	/* truncated */
	if (json) {
		line[n] = '\0';
		if ((out = log_json_message(level, process_name(who, sizeof(who)),
		    line)) != NULL) {
			write_all(2, out, strlen(out));
			free(out);
		}
		return;
	}
	line[n++] = '\n';
	write_all(2, line, (size_t)n);
}

/* Formats the client address, cut to its /24 or /48 when anonymising. */
static void
format_addr(const struct sockaddr *sa, char *out, size_t size)
{
	if (sa != NULL && sa->sa_family == AF_INET) {
		struct in_addr a = ((const struct sockaddr_in *)sa)->sin_addr;

		if (anonymise)
			a.s_addr &= htonl(0xffffff00u);
		if (inet_ntop(AF_INET, &a, out, (socklen_t)size) != NULL)
			return;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (anonymise)
			memset(a.s6_addr + 6, 0, 10);
		if (inet_ntop(AF_INET6, &a, out, (socklen_t)size) != NULL)
			return;
	}
	snprintf(out, size, "-");
}

/* The time is formatted once per second, not once per request. */
static const char *
iso_time(void)
{
	static char    text[32];
	static time_t  last = -1;
	time_t         now = time(NULL);
	struct tm      tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
		last = now;
	}
	return text;
}

int
log_access_fd(void)
{
	return access_fd;
}

char *
log_escape(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = xmalloc(4 * len + 1), *o = out;

	/* One field of a line: no byte that ends a line or a field, or that a
	 * terminal takes as a command (C0, DEL, and every byte above ASCII: a
	 * C1 control is one in UTF-8 too), stays as it is. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
			*o++ = (char)c;
		} else {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static size_t
escape_request(char *out, const unsigned char *req, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	/* The line terminator is the protocol's, not part of the request. */
	if (len > 0 && req[len - 1] == '\n')
		len--;
	if (len > 0 && req[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = req[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			out[n++] = (char)c;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	return n;
}

void
log_access(const struct access_rec *r)
{
	char line[LOG_LINE_MAX];
	char addr[INET6_ADDRSTRLEN];
	const unsigned char *req = r->req;
	const char *sni = r->sni;
	size_t n, reqlen = r->reqlen;
	char *out;
	int m;

	if (access_fd == -1)
		return;
	if (reqlen > GOPHER_MAX_REQUEST)
		reqlen = GOPHER_MAX_REQUEST;
	format_addr(r->client, addr, sizeof(addr));
	if (json) {
		/* The request without its line terminator, as in the text log. */
		if (reqlen > 0 && req[reqlen - 1] == '\n')
			reqlen--;
		if (reqlen > 0 && req[reqlen - 1] == '\r')
			reqlen--;
		if ((out = log_json_access(r, addr, worker_id, reqlen)) != NULL) {
			write_all(access_fd, out, strlen(out));
			free(out);
		}
		return;
	}
	m = snprintf(line, sizeof(line), "%s w%d %s %s ", iso_time(), worker_id,
	    r->proto, addr);
	if (m < 0)
		return;
	n = (size_t)m;
	/* A hostname from SNI is checked by OpenSSL, but escape it all the same. */
	if (sni == NULL || *sni == '\0')
		line[n++] = '-';
	else
		n += escape_request(line + n, (const unsigned char *)sni,
		    strnlen(sni, 255));
	line[n++] = ' ';
	line[n++] = '"';
	n += escape_request(line + n, req, reqlen);
	line[n++] = '"';
	m = snprintf(line + n, sizeof(line) - n, " %d %zu %ldms\n", r->status,
	    r->bytes, r->ms);
	if (m < 0)
		return;
	n += (size_t)m;
	write_all(access_fd, line, n);
}
