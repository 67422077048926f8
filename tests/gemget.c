/*
 * gemget.c: the test suite's Gemini (and Gopher) client. Sends one request over
 * TLS or plain TCP, copies the raw response to stdout, and tells through its exit
 * status how the server ended the connection (close_notify or not), so the tests
 * can check the bytes and the TLS behaviour in one call.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Exit statuses the tests rely on. */
#define EX_CLEAN    0   /* the server sent close_notify (or, plain: closed) */
#define EX_FAIL     1   /* connect or handshake failed */
#define EX_USAGE    2
#define EX_NOTIFY   3   /* the connection ended without close_notify */
#define EX_TIMEOUT  4

#define CLIENT_NAME "gemget"
#include "client.h"

static const char usage_text[] =
"usage: gemget [--sni NAME | --no-sni] [--no-crlf] [--slow MS] [--cert-out FILE]\n"
"              [--sess-in FILE] [--sess-out FILE] [--tls12 | --tls13]\n"
"              [--client-cert FILE --client-key FILE] [--timeout SEC] [--plain]\n"
"              [--read-slow MS] [--read-size N] [--rcvbuf N] [--bind ADDR]\n"
"              [--first BYTES] HOST PORT REQUEST\n";

static const char help_text[] =
"\n"
"Connects to HOST PORT (an address such as 127.0.0.1 or ::1, or a name), does a\n"
"TLS handshake (no certificate verification: Gemini uses TOFU), sends REQUEST\n"
"followed by CRLF, and writes every byte of the response to standard output.\n"
"REQUEST may hold C escapes: \\r \\n \\t \\\\ \\xHH.\n"
"\n"
"Options:\n"
"  --sni NAME         server name sent in the handshake (default: localhost).\n"
"  --no-sni           send no server name.\n"
"  --no-crlf          do not append CRLF to REQUEST.\n"
"  --slow MS          send REQUEST one byte every MS milliseconds.\n"
"  --cert-out FILE    write the server's certificate (PEM) to FILE.\n"
"  --sess-out FILE    save the TLS session (PEM) to FILE at the end.\n"
"  --sess-in FILE     offer the session in FILE; prints \"resumed\" or\n"
"                     \"not resumed\" on standard error.\n"
"  --tls12, --tls13   only that TLS version.\n"
"  --client-cert FILE, --client-key FILE\n"
"                     present a client certificate.\n"
"  --timeout SEC      give up after SEC seconds in all (default: 15).\n"
"  --plain            no TLS: plain TCP (Gopher).\n"
"  --read-slow MS     wait MS milliseconds after each read of the response.\n"
"  --read-size N      read at most N bytes at a time (default 16384).\n"
"  --rcvbuf N         set the socket's receive buffer (SO_RCVBUF) to N bytes.\n"
"  --bind ADDR        connect from the local address ADDR (e.g. 127.0.0.2).\n"
"  --first BYTES      send BYTES (C escapes as in REQUEST) on the connection\n"
"                     before anything else (before TLS): a PROXY header.\n"
"  -h, --help         this text.\n"
"\n"
"Exit status: 0 the server ended with a TLS close_notify (--plain: it closed the\n"
"connection), 1 connect or handshake failure, 2 usage error, 3 the connection\n"
"ended without close_notify (or was reset), 4 timeout.\n";

enum { O_SNI = 256, O_NOSNI, O_NOCRLF, O_SLOW, O_CERTOUT, O_SESSIN, O_SESSOUT,
    O_TLS12, O_TLS13, O_TIMEOUT, O_PLAIN, O_CCERT, O_CKEY, O_READSLOW,
    O_READSIZE, O_RCVBUF, O_BIND, O_FIRST };

static const struct option options[] = {
	{ "sni",         required_argument, NULL, O_SNI },
	{ "no-sni",      no_argument,       NULL, O_NOSNI },
	{ "no-crlf",     no_argument,       NULL, O_NOCRLF },
	{ "slow",        required_argument, NULL, O_SLOW },
	{ "cert-out",    required_argument, NULL, O_CERTOUT },
	{ "sess-in",     required_argument, NULL, O_SESSIN },
	{ "sess-out",    required_argument, NULL, O_SESSOUT },
	{ "tls12",       no_argument,       NULL, O_TLS12 },
	{ "tls13",       no_argument,       NULL, O_TLS13 },
	{ "timeout",     required_argument, NULL, O_TIMEOUT },
	{ "plain",       no_argument,       NULL, O_PLAIN },
	{ "client-cert", required_argument, NULL, O_CCERT },
	{ "client-key",  required_argument, NULL, O_CKEY },
	{ "read-slow",   required_argument, NULL, O_READSLOW },
	{ "read-size",   required_argument, NULL, O_READSIZE },
	{ "rcvbuf",      required_argument, NULL, O_RCVBUF },
	{ "bind",        required_argument, NULL, O_BIND },
	{ "first",       required_argument, NULL, O_FIRST },
	{ "help",        no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

struct opts {
	const char *sni;          /* NULL: none */
	int         crlf;
	long        slow_ms;
	const char *cert_out, *sess_in, *sess_out;
	const char *client_cert, *client_key;
	int         version;      /* 0, TLS1_2_VERSION or TLS1_3_VERSION */
	double      timeout;
	int         plain;
	long        read_slow_ms; /* pause after each read */
	long        read_size;    /* bytes per read, at most the buffer */
	long        rcvbuf;       /* SO_RCVBUF; 0: the kernel's */
	const char *bind;         /* local address, or NULL */
	const char *first;        /* sent before anything else, or NULL */
};

static void
die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "gemget: %s%s\n%s", msg, arg ? arg : "", usage_text);
	exit(EX_USAGE);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the C escapes of s into out (at least strlen(s) + 3 bytes). */
static size_t
decode_request(const char *s, unsigned char *out)
{
	size_t n = 0;

	while (*s) {
		if (*s != '\\') {
			out[n++] = (unsigned char)*s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r':  out[n++] = '\r'; s++; break;
		case 'n':  out[n++] = '\n'; s++; break;
		case 't':  out[n++] = '\t'; s++; break;
		case '\\': out[n++] = '\\'; s++; break;
		case 'x':
			if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
				die_usage("bad \\x escape in REQUEST", NULL);
			out[n++] = (unsigned char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 3;
			break;
		default:
			die_usage("unknown escape in REQUEST: \\", s);
		}
	}
	return n;
}

/* Reads the response in pieces of o->read_size, pausing o->read_slow_ms after
 * each: a slow reader, for the server's write deadline. */
static size_t
read_piece(const struct opts *o, size_t cap)
{
	static int first = 1;

	if (!first && o->read_slow_ms > 0)
		sleep_ms(o->read_slow_ms);
	first = 0;
	return o->read_size > 0 && (size_t)o->read_size < cap ? (size_t)o->read_size
	    : cap;
}

/* Sends req (all at once or byte by byte); a failure stops sending only: the
 * server may have answered already, and that is what the caller reads next. */
static void
send_plain(int fd, const unsigned char *req, size_t n, long slow_ms)
{
	size_t off = 0;

	while (off < n) {
		size_t chunk = slow_ms > 0 ? 1 : n - off;
		ssize_t w = send(fd, req + off, chunk, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "gemget: send: %s\n", strerror(errno));
			return;
		}
		off += (size_t)w;
		if (slow_ms > 0 && off < n)
			sleep_ms(slow_ms);
	}
}

static int
run_plain(int fd, const unsigned char *req, size_t n, const struct opts *o)
{
	char buf[16384];
	ssize_t r;

	send_plain(fd, req, n, o->slow_ms);
	for (;;) {
		r = recv(fd, buf, read_piece(o, sizeof(buf)), 0);
		if (r > 0) {
			write_stdout(buf, (size_t)r);
			continue;
		}
		if (r == 0)
			return EX_CLEAN;
		if (errno == EINTR)
			continue;
		fprintf(stderr, "gemget: recv: %s\n", strerror(errno));
		return EX_NOTIFY;
	}
}

static void
send_tls(SSL *ssl, const unsigned char *req, size_t n, long slow_ms)
{
	size_t off = 0;

	while (off < n) {
		int chunk = slow_ms > 0 ? 1 : (int)(n - off);
		int w = SSL_write(ssl, req + off, chunk);

		if (w <= 0) {
			fprintf(stderr, "gemget: write failed after %zu bytes "
			    "(SSL error %d)\n", off, SSL_get_error(ssl, w));
			ERR_clear_error();
			return;
		}
		off += (size_t)w;
		if (slow_ms > 0 && off < n)
			sleep_ms(slow_ms);
	}
}

static void
save_session(SSL *ssl, const char *file)
{
	SSL_SESSION *s = SSL_get1_session(ssl);
	FILE *f;

	if (s == NULL) {
		fprintf(stderr, "gemget: no session to save\n");
		return;
	}
	if ((f = fopen(file, "w")) == NULL) {
		fprintf(stderr, "gemget: %s: %s\n", file, strerror(errno));
	} else {
		PEM_write_SSL_SESSION(f, s);
		fclose(f);
	}
	SSL_SESSION_free(s);
}

static int
save_cert(SSL *ssl, const char *file)
{
	X509 *x = SSL_get1_peer_certificate(ssl);
	FILE *f;

	if (x == NULL) {
		fprintf(stderr, "gemget: the server sent no certificate\n");
		return -1;
	}
	if ((f = fopen(file, "w")) == NULL) {
		fprintf(stderr, "gemget: %s: %s\n", file, strerror(errno));
		X509_free(x);
		return -1;
	}
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	return 0;
}

static SSL_CTX *
make_ctx(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (o->version) {
		SSL_CTX_set_min_proto_version(ctx, o->version);
		SSL_CTX_set_max_proto_version(ctx, o->version);
	}
	if (o->client_cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->client_cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, o->client_key ? o->client_key :
		    o->client_cert, SSL_FILETYPE_PEM) != 1) {
			fprintf(stderr, "gemget: cannot load the client certificate\n");
			print_ssl_errors();
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

static int
run_tls(int fd, const unsigned char *req, size_t n, const struct opts *o)
{
	SSL_CTX *ctx;
	SSL *ssl;
	SSL_SESSION *sess = NULL;
	char buf[16384];
	int r, err, rc;

	if ((ctx = make_ctx(o)) == NULL)
		return EX_FAIL;
	if ((ssl = SSL_new(ctx)) == NULL) {
		SSL_CTX_free(ctx);
		return EX_FAIL;
	}
	SSL_set_fd(ssl, fd);
	if (o->sni != NULL)
		SSL_set_tlsext_host_name(ssl, o->sni);
	if (o->sess_in != NULL) {
		FILE *f = fopen(o->sess_in, "r");

		if (f == NULL) {
			fprintf(stderr, "gemget: %s: %s\n", o->sess_in, strerror(errno));
		} else {
			sess = PEM_read_SSL_SESSION(f, NULL, NULL, NULL);
			fclose(f);
			if (sess == NULL)
				fprintf(stderr, "gemget: %s: not a session\n", o->sess_in);
			else
				SSL_set_session(ssl, sess);
		}
	}
	if (tls_handshake(ssl) == -1) {
		rc = EX_FAIL;
		goto out;
	}
	if (o->sess_in != NULL)
		fprintf(stderr, "%s\n", SSL_session_reused(ssl) ? "resumed" : "not resumed");
	if (o->cert_out != NULL && save_cert(ssl, o->cert_out) == -1) {
		rc = EX_FAIL;
		goto out;
	}
	send_tls(ssl, req, n, o->slow_ms);
	for (;;) {
		r = SSL_read(ssl, buf, (int)read_piece(o, sizeof(buf)));
		if (r > 0) {
			write_stdout(buf, (size_t)r);
			continue;
		}
		err = SSL_get_error(ssl, r);
		if (err == SSL_ERROR_ZERO_RETURN) {
			rc = EX_CLEAN;
			SSL_shutdown(ssl);
		} else {
			fprintf(stderr, "gemget: no close_notify (SSL error %d%s%s)\n",
			    err, err == SSL_ERROR_SYSCALL && errno ? ": " : "",
			    err == SSL_ERROR_SYSCALL && errno ? strerror(errno) : "");
			ERR_clear_error();
			rc = EX_NOTIFY;
		}
		break;
	}
	/* Saved at the end: a TLS 1.3 ticket arrives after the handshake. */
	if (o->sess_out != NULL)
		save_session(ssl, o->sess_out);
out:
	SSL_SESSION_free(sess);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = { .sni = "localhost", .crlf = 1, .timeout = 15 };
	unsigned char *req;
	size_t n;
	char *end;
	int c, fd, rc;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case O_SNI:     o.sni = optarg; break;
		case O_NOSNI:   o.sni = NULL; break;
		case O_NOCRLF:  o.crlf = 0; break;
		case O_CERTOUT: o.cert_out = optarg; break;
		case O_SESSIN:  o.sess_in = optarg; break;
		case O_SESSOUT: o.sess_out = optarg; break;
		case O_TLS12:   o.version = TLS1_2_VERSION; break;
		case O_TLS13:   o.version = TLS1_3_VERSION; break;
		case O_PLAIN:   o.plain = 1; break;
		case O_CCERT:   o.client_cert = optarg; break;
		case O_CKEY:    o.client_key = optarg; break;
		case O_SLOW:
			o.slow_ms = strtol(optarg, &end, 10);
			if (*end || end == optarg || o.slow_ms < 0)
				die_usage("--slow: expected milliseconds: ", optarg);
			break;
		case O_READSLOW:
		case O_READSIZE:
		case O_RCVBUF: {
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < 0)
				die_usage("expected a number: ", optarg);
			if (c == O_READSLOW)
				o.read_slow_ms = v;
			else if (c == O_READSIZE)
				o.read_size = v;
			else
				o.rcvbuf = v;
			break;
		}
		case O_BIND:    o.bind = optarg; break;
		case O_FIRST:   o.first = optarg; break;
		case O_TIMEOUT:
			o.timeout = strtod(optarg, &end);
			if (*end || end == optarg || o.timeout <= 0)
				die_usage("--timeout: expected seconds: ", optarg);
			break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			return 0;
		default:
			fprintf(stderr, "%s", usage_text);
			return EX_USAGE;
		}
	}
	if (argc - optind != 3)
		die_usage("expected HOST PORT REQUEST", NULL);

	start_timeout(o.timeout, "gemget: timeout\n", EX_TIMEOUT);

	req = malloc(strlen(argv[optind + 2]) + 3);
	if (req == NULL)
		return EX_FAIL;
	n = decode_request(argv[optind + 2], req);
	if (o.crlf) {
		req[n++] = '\r';
		req[n++] = '\n';
	}
	fd = tcp_connect(argv[optind], argv[optind + 1], o.rcvbuf, o.bind);
	if (fd == -1) {
		free(req);
		return EX_FAIL;
	}
	if (o.first != NULL) {
		unsigned char *first = malloc(strlen(o.first) + 3);
		size_t fn;

		if (first == NULL)
			return EX_FAIL;
		fn = decode_request(o.first, first);
		send_plain(fd, first, fn, 0);
		free(first);
	}
	rc = o.plain ? run_plain(fd, req, n, &o) : run_tls(fd, req, n, &o);
	close(fd);
	free(req);
	return rc;
}
