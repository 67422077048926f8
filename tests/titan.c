/*
 * titan.c: the test suite's Titan (and Gemini) client. Connects over TLS (any
 * server certificate accepted), optionally presents a client certificate, sends
 * one request line and, for Titan, a body (whole or cut short), then copies the
 * raw response to stdout as received, until the server closes the connection.
 *
 * The body is sent while watching for an early answer: a server that refuses an
 * upload (59, 60, 61...) may reply and close before reading the body, so a write
 * that fails (EPIPE, ECONNRESET) only stops the sending, and what came back is
 * still read and printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define EX_OK     0   /* a response header came */
#define EX_FAIL   1   /* connection or TLS error, or no response header */
#define EX_USAGE  2

#define ALARM_SECONDS 20

#define CLIENT_NAME "titan"
#include "client.h"

static const char usage_text[] =
"usage: titan --port P [--host ADDR] [--sni NAME] [--cert FILE --key FILE]\n"
"             [--url URL] [--file FILE | --data STRING] [--size N] [--send N]\n"
"             [--hold MS] [--timeout S]\n";

static const char help_text[] =
"\n"
"Connects to ADDR (default 127.0.0.1) port P over TLS (the server's certificate\n"
"is not checked), sends URL and CRLF, then the body when --file or --data gives\n"
"one, and writes the response to standard output byte for byte, until the\n"
"server closes the connection. Without a body it is a plain Gemini request.\n"
"\n"
"Options:\n"
"  --port P          the server's port (required).\n"
"  --host ADDR       the address to connect to (default 127.0.0.1).\n"
"  --sni NAME        server name sent in the handshake (default localhost).\n"
"  --cert FILE, --key FILE\n"
"                    present this client certificate (PEM) and its key.\n"
"  --url URL         the request line (default gemini://SNI:P/). The text\n"
"                    \";size=AUTO\" in it becomes \";size=N\", N the body's length\n"
"                    (or --size).\n"
"  --file FILE       the body is the content of FILE.\n"
"  --data STRING     the body is STRING (as given, no escapes).\n"
"  --size N          the number put in place of \";size=AUTO\" (default: the\n"
"                    body's length); the body sent is unchanged.\n"
"  --send N          send only the first N bytes of the body.\n"
"  --hold MS         after sending, keep the connection open MS milliseconds\n"
"  --timeout S       give up after S seconds (default 20)\n"
"                    without sending before reading the response (default 0).\n"
"  -h, --help        this text.\n"
"\n"
"The whole exchange is limited to 20 seconds.\n"
"Exit status: 0 a response header (a line ending in LF) was received, 1 a\n"
"connection or TLS error or no header, 2 a usage error.\n";

enum { O_PORT = 256, O_HOST, O_SNI, O_CERT, O_KEY, O_URL, O_FILE, O_DATA,
    O_SIZE, O_SEND, O_HOLD, O_TIMEOUT };

static const struct option options[] = {
	{ "port", required_argument, NULL, O_PORT },
	{ "host", required_argument, NULL, O_HOST },
	{ "sni",  required_argument, NULL, O_SNI },
	{ "cert", required_argument, NULL, O_CERT },
	{ "key",  required_argument, NULL, O_KEY },
	{ "url",  required_argument, NULL, O_URL },
	{ "file", required_argument, NULL, O_FILE },
	{ "data", required_argument, NULL, O_DATA },
	{ "size", required_argument, NULL, O_SIZE },
	{ "send", required_argument, NULL, O_SEND },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "help", no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* What the response looked like so far: the exit status depends on a header. */
static size_t received;
static int    saw_newline;

static void
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "titan: %s%s%s\n%s", what, arg ? ": " : "", arg ? arg : "",
	    usage_text);
	exit(EX_USAGE);
}

/* A non-negative decimal number, or a usage error naming the option. */
static long long
parse_count(const char *opt, const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < 0)
		usage_error(opt, s);
	return v;
}

/* The whole of a file, binary; NULL (and a message) on error. */
static unsigned char *
read_file(const char *path, size_t *len)
{
	unsigned char *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY);

	if (fd == -1) {
		fprintf(stderr, "titan: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL) {
				fprintf(stderr, "titan: out of memory\n");
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "titan: %s: %s\n", path, strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

/* The request line: url with every ";size=AUTO" made ";size=SIZE", then CRLF. */
static char *
make_request_line(const char *url, unsigned long long size, size_t *len)
{
	static const char token[] = ";size=AUTO";
	char num[32];
	size_t tl = sizeof(token) - 1, nl, cap, n = 0;
	const char *p = url, *hit;
	char *out;

	nl = (size_t)snprintf(num, sizeof(num), ";size=%llu", size);
	cap = strlen(url) + 3;
	for (hit = strstr(p, token); hit != NULL; hit = strstr(hit + tl, token))
		cap += nl;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	while ((hit = strstr(p, token)) != NULL) {
		memcpy(out + n, p, (size_t)(hit - p));
		n += (size_t)(hit - p);
		memcpy(out + n, num, nl);
		n += nl;
		p = hit + tl;
	}
	memcpy(out + n, p, strlen(p));
	n += strlen(p);
	out[n++] = '\r';
	out[n++] = '\n';
	out[n] = '\0';
	*len = n;
	return out;
}

/* Copies response bytes to stdout, noting whether a header has come: from the
 * first LF on, even a timeout ends with EX_OK. */
static void
print_response(const void *p, size_t n)
{
	if (memchr(p, '\n', n) != NULL) {
		saw_newline = 1;
		timeout_status = EX_OK;
	}
	received += n;
	write_stdout(p, n);
}

/* Waits until fd is ready for events (or the alarm ends the process). */
static void
wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	while (poll(&p, 1, -1) == -1 && errno == EINTR)
		;
}

/* Reading: one non-blocking SSL_read. Returns 1 when bytes came (printed), 0
 * when none are there yet, -1 at the end of the response (closed, close_notify
 * or an error). */
static int
read_some(SSL *ssl, int *want_write)
{
	char buf[16384];
	int r, err;

	*want_write = 0;
	r = SSL_read(ssl, buf, (int)sizeof(buf));
	if (r > 0) {
		print_response(buf, (size_t)r);
		return 1;
	}
	err = SSL_get_error(ssl, r);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want_write = 1;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify: answered with ours (one try, non-blocking). */
		SSL_shutdown(ssl);
		ERR_clear_error();
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno != 0 && errno != EPIPE && errno != ECONNRESET)
			fprintf(stderr, "titan: read: %s\n", strerror(errno));
		ERR_clear_error();
		return -1;
	default:
		/* OpenSSL 3 reports an end without close_notify this way. */
		fprintf(stderr, "titan: the connection ended without close_notify "
		    "(SSL error %d)\n", err);
		print_ssl_errors();
		return -1;
	}
}

/*
 * Sends out[0..len) (request line and body) and then reads the response.
 * Sending stops early when the server answers (its first bytes arrive) or when
 * a write fails: the server may refuse an upload before reading its body.
 */
static void
exchange(SSL *ssl, int fd, const unsigned char *out, size_t len, long long hold_ms)
{
	size_t off = 0;
	int answered = 0, ended = 0, ww;

	while (off < len && !answered && !ended) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
		int r;

		while (poll(&p, 1, -1) == -1 && errno == EINTR)
			;
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			/* The server's TLS 1.3 session tickets come here too:
			 * read_some consumes them and reports no data. */
			r = read_some(ssl, &ww);
			if (r == 1)
				answered = 1;
			else if (r == -1)
				ended = 1;
			if (answered || ended)
				break;
		}
		if (!(p.revents & POLLOUT))
			continue;
		{
			size_t chunk = len - off > 16384 ? 16384 : len - off;
			int w = SSL_write(ssl, out + off, (int)chunk);
			int err;

			if (w > 0) {
				off += (size_t)w;
				continue;
			}
			err = SSL_get_error(ssl, w);
			if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
				continue;
			/* EPIPE, ECONNRESET: the server has closed; what it
			 * sent before is read below. */
			if (err == SSL_ERROR_SYSCALL && errno != 0 && errno != EPIPE &&
			    errno != ECONNRESET)
				fprintf(stderr, "titan: write: %s\n", strerror(errno));
			ERR_clear_error();
			fprintf(stderr, "titan: sending stopped after %zu of %zu bytes\n",
			    off, len);
			break;
		}
	}
	if (answered && off < len)
		fprintf(stderr, "titan: the server answered after %zu of %zu bytes\n",
		    off, len);
	if (hold_ms > 0 && !ended)
		sleep_ms(hold_ms);
	while (!ended) {
		int r = read_some(ssl, &ww);

		if (r == -1)
			break;
		if (r == 0)
			wait_fd(fd, ww ? POLLOUT : POLLIN);
	}
}

int
main(int argc, char **argv)
{
	const char *port = NULL, *host = "127.0.0.1", *sni = "localhost";
	const char *cert = NULL, *key = NULL, *url = NULL, *file = NULL, *data = NULL;
	long long size = -1, send_n = -1, hold_ms = 0, timeout_s = ALARM_SECONDS;
	char tmsg[64];
	unsigned char *body = NULL, *out;
	size_t body_len = 0, line_len, send_len;
	char *line, *default_url = NULL;
	SSL_CTX *ctx;
	SSL *ssl;
	int c, fd, flags;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case O_PORT: port = optarg; break;
		case O_HOST: host = optarg; break;
		case O_SNI:  sni = optarg; break;
		case O_CERT: cert = optarg; break;
		case O_KEY:  key = optarg; break;
		case O_URL:  url = optarg; break;
		case O_FILE: file = optarg; break;
		case O_DATA: data = optarg; break;
		case O_SIZE: size = parse_count("--size", optarg); break;
		case O_SEND: send_n = parse_count("--send", optarg); break;
		case O_HOLD: hold_ms = parse_count("--hold", optarg); break;
		case O_TIMEOUT: timeout_s = parse_count("--timeout", optarg); break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			return EX_OK;
		default:
			fprintf(stderr, "%s", usage_text);
			return EX_USAGE;
		}
	}
	if (optind != argc)
		usage_error("unexpected argument", argv[optind]);
	if (port == NULL)
		usage_error("--port is required", NULL);
	parse_count("--port", port);
	if (file != NULL && data != NULL)
		usage_error("--file and --data exclude each other", NULL);
	if ((cert == NULL) != (key == NULL))
		usage_error("--cert and --key go together", NULL);
	if (file == NULL && data == NULL && (send_n >= 0 || size >= 0))
		usage_error("--send and --size need a body (--file or --data)", NULL);
	if (*sni == '\0')
		sni = NULL;

	snprintf(tmsg, sizeof(tmsg), "titan: timeout (%lld s)\n", timeout_s);
	start_timeout((double)timeout_s, tmsg, EX_FAIL);

	if (url == NULL) {
		size_t n = strlen(sni ? sni : host) + strlen(port) + 32;

		if ((default_url = malloc(n)) == NULL)
			return EX_FAIL;
		snprintf(default_url, n, "gemini://%s:%s/", sni ? sni : host, port);
		url = default_url;
	}
	if (file != NULL) {
		if ((body = read_file(file, &body_len)) == NULL)
			return EX_FAIL;
	} else if (data != NULL) {
		body_len = strlen(data);
		if ((body = malloc(body_len + 1)) == NULL)
			return EX_FAIL;
		memcpy(body, data, body_len);
	}
	line = make_request_line(url, size >= 0 ? (unsigned long long)size :
	    (unsigned long long)body_len, &line_len);
	if (line == NULL)
		return EX_FAIL;
	send_len = body_len;
	if (send_n >= 0 && (unsigned long long)send_n < (unsigned long long)body_len)
		send_len = (size_t)send_n;
	if ((out = malloc(line_len + send_len + 1)) == NULL)
		return EX_FAIL;
	memcpy(out, line, line_len);
	if (send_len > 0)
		memcpy(out + line_len, body, send_len);

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		print_ssl_errors();
		return EX_FAIL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cert != NULL) {
		if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			fprintf(stderr, "titan: cannot load the client certificate %s "
			    "with the key %s\n", cert, key);
			print_ssl_errors();
			return EX_FAIL;
		}
	}
	if ((fd = tcp_connect(host, port, 0, NULL)) == -1)
		return EX_FAIL;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		print_ssl_errors();
		return EX_FAIL;
	}
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	if (tls_handshake(ssl) == -1)
		return EX_FAIL;
	/* The rest non-blocking: sending the body watches for an early answer. */
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		fprintf(stderr, "titan: fcntl: %s\n", strerror(errno));
		return EX_FAIL;
	}
	exchange(ssl, fd, out, line_len + send_len, hold_ms);

	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	free(out);
	free(line);
	free(body);
	free(default_url);
	if (!saw_newline) {
		fprintf(stderr, "titan: no response header (%zu bytes received)\n",
		    received);
		return EX_FAIL;
	}
	return EX_OK;
}
