/*
 * etcd.c: the store process's client of etcd's v3 JSON gateway. Calls are
 * POSTs of a JSON object on a connection of their own, run to the end on an
 * event base of their own (so that a call never runs the store process's
 * other callbacks inside it); the watch is a long POST on the store
 * process's base whose answer streams one JSON object per message.
 * libevent's HTTP client does the HTTP, OpenSSL the TLS (server checked
 * against the CA and the endpoint's name or address, our certificate
 * sent), jansson the JSON.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "etcd.h"
#include "server.h"

/* A call's limit: a live member answers a put in milliseconds; one that has
 * lost its quorum never does. */
#define ETCD_CALL_MS   2000
/* The largest answer taken: a store process's read asks at most 8 parts of
 * CHUNK_PART_MAX (4 MiB, 5.4 MiB in base64); a listing of keys far less. */
#define ETCD_ANSWER_MAX (16u << 20)

struct endpoint {
	char     *url;       /* as configured, for messages */
	char     *host;      /* as written: the Host header, the name checked */
	char      addr[INET6_ADDRSTRLEN];	/* resolved */
	uint16_t  port;
	int       tls;
};

struct etcd {
	struct event_base      *base;    /* the store process's: the watch */
	struct event_base      *cbase;   /* calls */
	SSL_CTX                *ssl;
	struct endpoint        *ep;
	size_t                  n_ep, cur;
	/* The watch. */
	struct evhttp_connection *wcon;
	struct evhttp_request  *wreq;
	struct buf              wbuf;
	etcd_watch_fn           wfn;
	void                   *warg;
	int                     wclosed;
	struct event           *wdone;   /* ETCD_W_CLOSED, outside libevent's callback */
};

/* ------------------------------------------------------------------ JSON */

json_t *
etcd_bytes(const void *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	json_t *j;

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	j = json_string(out);
	free(out);
	return j;
}

json_t *
etcd_str(const char *s)
{
	return etcd_bytes(s, strlen(s));
}

json_t *
etcd_rev(int64_t r)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)r);
	return json_string(s);
}

int64_t
etcd_int(const json_t *j)
{
	if (json_is_integer(j))
		return json_integer_value(j);
	if (json_is_string(j))
		return strtoll(json_string_value(j), NULL, 10);
	return 0;
}

unsigned char *
etcd_unbytes(const json_t *j, size_t *n)
{
	const char *s = json_string_value(j);
	size_t len, pad = 0;
	unsigned char *out;
	int r;

	*n = 0;
	if (s == NULL)
		return NULL;
	len = strlen(s);
	if (len % 4 != 0)
		return NULL;
	out = xmalloc(len / 4 * 3 + 1);
	if (len == 0) {
		out[0] = '\0';
		return out;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	pad = (s[len - 1] == '=') + (len > 1 && s[len - 2] == '=');
	if ((r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len)) < 0 ||
	    (size_t)r < pad) {
		free(out);
		return NULL;
	}
	*n = (size_t)r - pad;
	out[*n] = '\0';
	return out;
}

char *
etcd_prefix_end(const char *prefix)
{
	char *e = xstrdup(prefix);
	size_t n = strlen(e);

	/* The prefix's last byte plus one (a '/' becomes '0'). */
	while (n > 0 && (unsigned char)e[n - 1] == 0xff)
		e[--n] = '\0';
	if (n > 0)
		e[n - 1] = (char)((unsigned char)e[n - 1] + 1);
	return e;
}

/* ------------------------------------------------------------- endpoints */

static int
parse_endpoint(const char *url, struct endpoint *ep, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme, *host;
	struct addrinfo hints, *ai = NULL;
	char port[8];
	int p, rc;

	memset(ep, 0, sizeof(*ep));
	if (u == NULL || (scheme = evhttp_uri_get_scheme(u)) == NULL ||
	    (host = evhttp_uri_get_host(u)) == NULL || *host == '\0' ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		snprintf(err, errlen, "%s: not an http:// or https:// URL", url);
		if (u != NULL)
			evhttp_uri_free(u);
		return -1;
	}
	ep->tls = strcmp(scheme, "https") == 0;
	p = evhttp_uri_get_port(u);
	ep->port = (uint16_t)(p > 0 ? p : 2379);
	ep->url = xstrdup(url);
	/* An IPv6 literal comes without its brackets. */
	ep->host = xstrdup(host);
	evhttp_uri_free(u);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", ep->port);
	if ((rc = getaddrinfo(ep->host, port, &hints, &ai)) != 0 || ai == NULL) {
		snprintf(err, errlen, "%s: %s", url, gai_strerror(rc));
		return -1;
	}
	if (ai->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
		    ep->addr, sizeof(ep->addr));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
		    ep->addr, sizeof(ep->addr));
	freeaddrinfo(ai);
	return 0;
}

static int
pem_into_ctx(SSL_CTX *ctx, const char *ca, const char *cert, const char *key,
    char *err, size_t errlen)
{
	BIO *b;
	X509 *x;
	EVP_PKEY *k;
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	int n = 0;

	if (ca != NULL) {
		b = BIO_new_mem_buf(ca, -1);
		while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			X509_STORE_add_cert(st, x);
			X509_free(x);
			n++;
		}
		BIO_free(b);
		ERR_clear_error();
		if (n == 0) {
			snprintf(err, errlen, "store.ca: no certificate in it");
			return -1;
		}
	}
	if (cert != NULL) {
		b = BIO_new_mem_buf(cert, -1);
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
			X509_free(x);
			snprintf(err, errlen, "store.cert: not a certificate");
			return -1;
		}
		X509_free(x);
		/* A chain after it, if any, goes too. */
	}
	if (key != NULL) {
		b = BIO_new_mem_buf(key, -1);
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		if (k == NULL || SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			EVP_PKEY_free(k);
			snprintf(err, errlen, "store.key: not the key of store.cert");
			return -1;
		}
		EVP_PKEY_free(k);
	}
	return 0;
}

struct etcd *
etcd_new(struct event_base *base, char *const *urls, size_t n,
    const char *ca_pem, const char *cert_pem, const char *key_pem,
    char *err, size_t errlen)
{
	struct etcd *e = xcalloc(1, sizeof(*e));
	int tls = 0;

	e->base = base;
	e->ep = xcalloc(n, sizeof(*e->ep));
	for (size_t i = 0; i < n; i++) {
		if (parse_endpoint(urls[i], &e->ep[i], err, errlen) == -1) {
			e->n_ep = i + 1;
			etcd_free(e);
			return NULL;
		}
		e->n_ep = i + 1;
		tls |= e->ep[i].tls;
	}
	if ((e->cbase = event_base_new()) == NULL) {
		snprintf(err, errlen, "cannot make an event base");
		etcd_free(e);
		return NULL;
	}
	if (tls) {
		if ((e->ssl = SSL_CTX_new(TLS_client_method())) == NULL) {
			snprintf(err, errlen, "cannot make a TLS context");
			etcd_free(e);
			return NULL;
		}
		SSL_CTX_set_min_proto_version(e->ssl, TLS1_2_VERSION);
		SSL_CTX_set_verify(e->ssl, SSL_VERIFY_PEER, NULL);
		if (ca_pem == NULL)
			SSL_CTX_set_default_verify_paths(e->ssl);
		if (pem_into_ctx(e->ssl, ca_pem, cert_pem, key_pem, err, errlen) == -1) {
			etcd_free(e);
			return NULL;
		}
	}
	return e;
}

void
etcd_free(struct etcd *e)
{
	if (e == NULL)
		return;
	etcd_watch_stop(e);
	for (size_t i = 0; i < e->n_ep; i++) {
		free(e->ep[i].url);
		free(e->ep[i].host);
	}
	free(e->ep);
	if (e->cbase != NULL)
		event_base_free(e->cbase);
	if (e->ssl != NULL)
		SSL_CTX_free(e->ssl);
	free(e);
}

/* A connection to endpoint ep on base: TLS when it says https, the server's
 * certificate checked for the endpoint's name or address. */
static struct evhttp_connection *
connect_to(struct etcd *e, struct event_base *base, const struct endpoint *ep)
{
	struct bufferevent *bev;
	struct evhttp_connection *c;
	SSL *ssl;

	if (!ep->tls) {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	} else {
		struct in6_addr a6;
		struct in_addr a4;

		if ((ssl = SSL_new(e->ssl)) == NULL)
			return NULL;
		if (inet_pton(AF_INET, ep->host, &a4) == 1 ||
		    inet_pton(AF_INET6, ep->host, &a6) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ep->host);
		} else {
			SSL_set_tlsext_host_name(ssl, ep->host);
			SSL_set1_host(ssl, ep->host);
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			SSL_free(ssl);
			return NULL;
		}
		/* etcd may close without close_notify after an answer. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	}
	if (bev == NULL)
		return NULL;
	c = evhttp_connection_base_bufferevent_new(base, NULL, bev, ep->addr, ep->port);
	if (c == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	evhttp_connection_set_retries(c, 0);
	return c;
}

static void
add_headers(struct evhttp_request *r, const struct endpoint *ep, const char *body,
    size_t n)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r);
	char host[300];

	if (strchr(ep->host, ':') != NULL)
		snprintf(host, sizeof(host), "[%s]:%u", ep->host, ep->port);
	else
		snprintf(host, sizeof(host), "%s:%u", ep->host, ep->port);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Content-Type", "application/json");
	/* A member without a leader says so at once (503 "no leader"), and
	 * ends a watch: the next member is asked, instead of a wait of
	 * seconds for a request that cannot be served. */
	evhttp_add_header(h, "Grpc-Metadata-hasleader", "true");
	evbuffer_add(evhttp_request_get_output_buffer(r), body, n);
}

/* ------------------------------------------------------------------ calls */

struct call {
	struct event_base *base;
	int                done, code;
	struct buf         body;
	char               why[128];
};

static void
call_done(struct evhttp_request *r, void *arg)
{
	struct call *c = arg;
	struct evbuffer *in;

	if (c->done)
		return;
	c->done = 1;
	if (r == NULL || (c->code = evhttp_request_get_response_code(r)) == 0) {
		snprintf(c->why, sizeof(c->why), "no answer");
	} else {
		in = evhttp_request_get_input_buffer(r);
		if (evbuffer_get_length(in) > ETCD_ANSWER_MAX) {
			snprintf(c->why, sizeof(c->why), "an answer over %u bytes",
			    ETCD_ANSWER_MAX);
			c->code = 0;
		} else {
			size_t n = evbuffer_get_length(in);

			buf_add(&c->body, evbuffer_pullup(in, -1), n);
		}
	}
	event_base_loopbreak(c->base);
}

static void
call_error(enum evhttp_request_error err, void *arg)
{
	struct call *c = arg;

	if (c->done)
		return;
	c->done = 1;
	snprintf(c->why, sizeof(c->why), "%s", err == EVREQ_HTTP_TIMEOUT ?
	    "timed out" : err == EVREQ_HTTP_EOF ? "the connection closed" :
	    "the connection failed");
	event_base_loopbreak(c->base);
}

static void
call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	(void)fd;
	(void)what;
	if (!c->done) {
		c->done = 1;
		snprintf(c->why, sizeof(c->why), "no answer within %d ms", ETCD_CALL_MS);
	}
	event_base_loopbreak(c->base);
}

/* One try on one endpoint: 1 a 200 (body in c), 0 etcd answered otherwise
 * (its message in err: not worth another endpoint unless it is unavailable),
 * -1 no answer. */
static int
call_one(struct etcd *e, const struct endpoint *ep, const char *path,
    const char *body, size_t n, struct call *c)
{
	struct timeval tv = { ETCD_CALL_MS / 1000, (ETCD_CALL_MS % 1000) * 1000 };
	struct evhttp_connection *con = connect_to(e, e->cbase, ep);
	struct evhttp_request *r;
	struct event *t;

	memset(c, 0, sizeof(*c));
	c->base = e->cbase;
	if (con == NULL) {
		snprintf(c->why, sizeof(c->why), "cannot make a connection");
		return -1;
	}
	evhttp_connection_set_timeout_tv(con, &tv);
	r = evhttp_request_new(call_done, c);
	evhttp_request_set_error_cb(r, call_error);
	add_headers(r, ep, body, n);
	t = evtimer_new(e->cbase, call_timeout, c);
	evtimer_add(t, &tv);
	if (evhttp_make_request(con, r, EVHTTP_REQ_POST, path) == -1) {
		snprintf(c->why, sizeof(c->why), "cannot send the request");
		c->done = 1;
	}
	while (!c->done)
		if (event_base_dispatch(e->cbase) == -1)
			break;
	event_free(t);
	evhttp_connection_free(con);
	if (c->code == 200)
		return 1;
	return c->code == 0 ? -1 : 0;
}

/* etcd's own message in an error answer ({"error": ..., "message": ...}). */
static void
etcd_message(const struct call *c, char *err, size_t errlen, const char *url)
{
	json_t *j = json_loadb((const char *)c->body.data, c->body.len, 0, NULL);
	const char *m = j != NULL ? json_string_value(json_object_get(j, "message")) : NULL;

	if (m == NULL && j != NULL)
		m = json_string_value(json_object_get(j, "error"));
	snprintf(err, errlen, "%s: HTTP %d: %s", url, c->code, m != NULL ? m :
	    "(no message)");
	json_decref(j);
}

int
etcd_call(struct etcd *e, const char *path, json_t *req, json_t **resp,
    char *err, size_t errlen)
{
	char *body = json_dumps(req, JSON_COMPACT);
	size_t n = body != NULL ? strlen(body) : 0;
	struct call c;
	int rc = -1;

	json_decref(req);
	*resp = NULL;
	if (body == NULL) {
		snprintf(err, errlen, "cannot encode the request");
		return -1;
	}
	snprintf(err, errlen, "no endpoint");
	for (size_t k = 0; k < e->n_ep && rc == -1; k++) {
		size_t i = (e->cur + k) % e->n_ep;
		int r = call_one(e, &e->ep[i], path, body, n, &c);

		if (r == 1) {
			*resp = json_loadb((const char *)c.body.data, c.body.len, 0, NULL);
			if (*resp == NULL || !json_is_object(*resp)) {
				json_decref(*resp);
				*resp = NULL;
				snprintf(err, errlen, "%s: an answer that is not JSON",
				    e->ep[i].url);
			} else {
				e->cur = i;
				rc = 0;
			}
		} else if (r == 0) {
			etcd_message(&c, err, errlen, e->ep[i].url);
			/* 503 and the like: a member without its quorum or
			 * leader; another may have one. Else etcd's word holds. */
			if (c.code < 500) {
				buf_free(&c.body);
				break;
			}
		} else {
			snprintf(err, errlen, "%s: %s", e->ep[i].url, c.why);
		}
		buf_free(&c.body);
	}
	free(body);
	return rc;
}

/* ------------------------------------------------------------------ watch */

static void
watch_closed(evutil_socket_t fd, short what, void *arg)
{
	struct etcd *e = arg;
	etcd_watch_fn fn = e->wfn;
	void *a = e->warg;

	(void)fd;
	(void)what;
	etcd_watch_stop(e);
	if (fn != NULL)
		fn(a, ETCD_W_CLOSED, 0);
}

/* The end of the stream, from inside libevent's callback: the rest runs
 * from the loop (the connection cannot be freed here). */
static void
watch_end(struct etcd *e)
{
	if (e->wclosed)
		return;
	e->wclosed = 1;
	e->wreq = NULL;		/* libevent frees it after this callback */
	event_active(e->wdone, 0, 0);
}

static void
watch_lines(struct etcd *e)
{
	unsigned char *nl;

	while (!e->wclosed && (nl = memchr(e->wbuf.data, '\n', e->wbuf.len)) != NULL) {
		size_t n = (size_t)(nl - e->wbuf.data);
		json_t *j = json_loadb((const char *)e->wbuf.data, n, 0, NULL);
		json_t *res = j != NULL ? json_object_get(j, "result") : NULL;
		int64_t rev = etcd_int(json_object_get(json_object_get(res, "header"),
		    "revision"));

		chan_consume(&e->wbuf, n + 1);
		if (res == NULL) {
			/* {"error": ...}: the stream is over. */
			json_decref(j);
			watch_end(e);
			return;
		}
		if (etcd_int(json_object_get(res, "compact_revision")) > 0)
			e->wfn(e->warg, ETCD_W_COMPACTED, rev);
		else if (json_is_true(json_object_get(res, "canceled")))
			watch_end(e);
		else if (json_array_size(json_object_get(res, "events")) > 0)
			e->wfn(e->warg, ETCD_W_EVENTS, rev);
		else if (json_is_true(json_object_get(res, "created")))
			e->wfn(e->warg, ETCD_W_CREATED, rev);
		json_decref(j);
	}
}

static void
watch_chunk(struct evhttp_request *r, void *arg)
{
	struct etcd *e = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(r);
	size_t n = evbuffer_get_length(in);

	if (e->wclosed)
		return;
	buf_add(&e->wbuf, evbuffer_pullup(in, -1), n);
	evbuffer_drain(in, n);
	if (e->wbuf.len > ETCD_ANSWER_MAX) {
		watch_end(e);
		return;
	}
	watch_lines(e);
}

static void
watch_done(struct evhttp_request *r, void *arg)
{
	struct etcd *e = arg;

	if (r != NULL && evhttp_request_get_response_code(r) == 200 && !e->wclosed) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r);
		size_t n = evbuffer_get_length(in);

		buf_add(&e->wbuf, evbuffer_pullup(in, -1), n);
		buf_add(&e->wbuf, "\n", 1);
		watch_lines(e);
	}
	watch_end(e);
}

static void
watch_error(enum evhttp_request_error err, void *arg)
{
	(void)err;
	watch_end(arg);
}

int
etcd_watch(struct etcd *e, const char *key, const char *end, int64_t start_rev,
    etcd_watch_fn fn, void *arg)
{
	const struct endpoint *ep = &e->ep[e->cur];
	json_t *cr = json_object(), *req = json_object();
	char *body;

	etcd_watch_stop(e);
	json_object_set_new(cr, "key", etcd_str(key));
	json_object_set_new(cr, "range_end", etcd_str(end));
	if (start_rev > 0)
		json_object_set_new(cr, "start_revision", etcd_rev(start_rev));
	json_object_set_new(req, "create_request", cr);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	e->wfn = fn;
	e->warg = arg;
	e->wclosed = 0;
	if (body == NULL || (e->wdone = event_new(e->base, -1, 0, watch_closed,
	    e)) == NULL || (e->wcon = connect_to(e, e->base, ep)) == NULL) {
		free(body);
		etcd_watch_stop(e);
		return -1;
	}
	/* A watch is quiet for as long as nothing changes: no timeout on it
	 * but the connection's; a member gone closes it. */
	evhttp_connection_set_timeout(e->wcon, 3600);
	e->wreq = evhttp_request_new(watch_done, e);
	evhttp_request_set_chunked_cb(e->wreq, watch_chunk);
	evhttp_request_set_error_cb(e->wreq, watch_error);
	add_headers(e->wreq, ep, body, strlen(body));
	free(body);
	if (evhttp_make_request(e->wcon, e->wreq, EVHTTP_REQ_POST, "/v3/watch") == -1) {
		e->wreq = NULL;
		etcd_watch_stop(e);
		return -1;
	}
	return 0;
}

void
etcd_watch_stop(struct etcd *e)
{
	if (e->wcon != NULL)
		evhttp_connection_free(e->wcon);	/* and its request */
	e->wcon = NULL;
	e->wreq = NULL;
	if (e->wdone != NULL)
		event_free(e->wdone);
	e->wdone = NULL;
	buf_free(&e->wbuf);
	e->wfn = NULL;
	e->wclosed = 1;
}
