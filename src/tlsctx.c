/*
 * tlsctx.c: the OpenSSL side of the server. One SSL_CTX per configured host, each
 * with its certificate (generated self-signed on first start when missing:
 * Gemini clients pin it, TOFU), picked by SNI during the handshake. No context
 * holds a private key: each holds its certificate's public key as a remote key
 * (keysign.c) whose signatures the key process makes (keyproc.c), and this
 * file reads no key file; a pair it generates is made in a child process that
 * writes the files and ends, so that the key is never in this one. Sessions
 * live in a cache all workers share (sesscache.c), mapped here before the
 * workers fork: a TLS 1.3 ticket is then only a session's identifier, and any
 * worker, and any host context, resumes it. A reload carries the cache over to
 * the new contexts (tlsctx_keep_sessions).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "server.h"

/* Clients pin the certificate (TOFU), so it must outlive the capsule. */
#define CERT_DAYS        (20 * 365 + 5)
/* How long a session can be resumed (tickets say so to clients). */
#define SESSION_LIFETIME (12 * 60 * 60)
/* Sessions the shared cache holds (about 640 bytes each, touched as used). */
#define SESSION_SLOTS    16384
/* Resumption must work whichever host context a connection ends up in. */
#define SESSION_ID_CTX   "kilnet"

/* What the key process needs of a host (keyproc.c): the key file, and the
 * public key it must match. */
struct tlsctx_key {
	char               *file;
	unsigned char      *spki;       /* the certificate's SubjectPublicKeyInfo */
	size_t              spki_len;
};

struct tlsctx {
	SSL_CTX           **ctx;        /* one per host, same order as cfg->hosts */
	char              **names;
	struct tlsctx_key     *keys;       /* one per host */
	size_t              n;
	struct sesscache   *cache;      /* shared by all workers: made before fork */
};

static void
add_ssl_error(struct diag *d, const char *file, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		diag_add(d, file, 0, NULL, "%s (%s)", what, buf);
	} else {
		diag_add(d, file, 0, NULL, "%s", what);
	}
	ERR_clear_error();
}

/* ------------------------------------------------------ certificate creation */

static int
write_pem_file(const char *path, int mode, int is_key, EVP_PKEY *pkey, X509 *x,
    struct diag *d)
{
	/* The process's own temp name: instances that share cert_dir may
	 * start together (make_pair takes turns, this is the second guard). */
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	FILE *f;
	int fd, ok;

	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1) {
		diag_add(d, tmp, 0, NULL, "cannot create: %s", strerror(errno));
		free(tmp);
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		diag_add(d, tmp, 0, NULL, "%s", strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	ok = is_key ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
	    : PEM_write_X509(f, x);
	if (fclose(f) != 0)
		ok = 0;
	/* Renamed into place only when complete: a crash leaves no half file. */
	if (!ok || rename(tmp, path) == -1) {
		diag_add(d, path, 0, NULL, "cannot write: %s", strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static X509 *
make_cert(const char *host, EVP_PKEY *pkey)
{
	unsigned char buf[16];
	struct in6_addr a6;
	struct in_addr a4;
	X509_NAME *name;
	BIGNUM *serial;
	X509 *x;
	char *san;
	int ok;

	if ((x = X509_new()) == NULL)
		return NULL;
	/* A random positive serial: clients that cache certificates by issuer and
	 * serial must not confuse two generated ones. */
	if (RAND_bytes(buf, sizeof(buf)) != 1)
		goto fail;
	buf[0] &= 0x7f;
	buf[0] |= 0x40;
	serial = BN_bin2bn(buf, sizeof(buf), NULL);
	ok = serial != NULL && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL;
	BN_free(serial);
	if (!ok)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60 * 60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, pkey))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)host, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
		san = xasprintf("IP:%s", host);
	else
		san = xasprintf("DNS:%s", host);
	ok = add_ext(x, NID_subject_alt_name, san) &&
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
	    add_ext(x, NID_key_usage, "critical,digitalSignature") &&
	    add_ext(x, NID_ext_key_usage, "serverAuth") &&
	    add_ext(x, NID_subject_key_identifier, "hash");
	free(san);
	if (!ok || !X509_sign(x, pkey, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* The certificate folder (one level: cert_dir itself) is made when missing. */
static int
make_parent_dir(const char *path, struct diag *d)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int rc = 0;

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0) {
			log_info("created %s", dir);
		} else if (errno != EEXIST) {
			diag_add(d, dir, 0, NULL, "cannot create the certificate folder: %s",
			    strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

/* In the child generate_cert forks: the pair, written to its files. */
static int
make_pair(const struct host_conf *h, struct diag *d)
{
	EVP_PKEY *pkey;
	X509 *x;
	int rc = -1, lock;
	char *lp = xasprintf("%s.lock", h->key);

	/* Two instances sharing cert_dir (behind a proxy they must serve the
	 * same certificate) take turns: the second finds the first's pair and
	 * uses it, never a key of one with a certificate of the other. */
	lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(lp);
	if (lock != -1 && flock(lock, LOCK_EX) == 0 && access(h->key, F_OK) == 0 &&
	    access(h->cert, F_OK) == 0)
		return 0;	/* the lock goes with the process */
	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		add_ssl_error(d, h->key, "cannot generate a P-256 key");
		return -1;
	}
	if ((x = make_cert(h->name, pkey)) == NULL) {
		add_ssl_error(d, h->cert, "cannot make a certificate");
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (write_pem_file(h->key, 0600, 1, pkey, NULL, d) == 0 &&
	    write_pem_file(h->cert, 0644, 0, NULL, x, d) == 0) {
		log_info("%s: generated a self-signed certificate for %s "
		    "(ECDSA P-256, key in %s)", h->cert, h->name, h->key);
		rc = 0;
	}
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/* A new pair, made in a child process (its messages come back on a pipe):
 * the private key never exists in the master, which forks the workers. */
static int
generate_cert(const struct host_conf *h, struct diag *d)
{
	struct diag cd = { 0 };
	struct buf msgs = { 0 };
	char chunk[1024], *line, *save;
	int fds[2], st;
	ssize_t r;
	pid_t pid;

	if (make_parent_dir(h->key, d) == -1)
		return -1;
	if (pipe2(fds, O_CLOEXEC) == -1) {
		diag_add(d, h->key, 0, NULL, "cannot generate a key: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		diag_add(d, h->key, 0, NULL, "cannot generate a key: fork: %s",
		    strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		st = make_pair(h, &cd);
		for (size_t i = 0; i < cd.n; i++) {
			if (write(fds[1], cd.msgs[i], strlen(cd.msgs[i])) == -1 ||
			    write(fds[1], "\n", 1) == -1)
				break;
		}
		_exit(st == 0 ? 0 : 1);
	}
	close(fds[1]);
	while ((r = read(fds[0], chunk, sizeof(chunk))) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			break;
		buf_add(&msgs, chunk, (size_t)r);
	}
	close(fds[0]);
	buf_add(&msgs, "", 1);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	for (line = strtok_r((char *)msgs.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		diag_add(d, NULL, 0, NULL, "%s", line);
	buf_free(&msgs);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
		diag_add(d, h->key, 0, NULL, "cannot generate a key: the process "
		    "making it ended abnormally");
	return -1;
}

/* ------------------------------------------------------------ sessions */

/* OpenSSL made a session (a full handshake, or a TLS 1.3 ticket asked for):
 * into the shared cache. 0: OpenSSL keeps no reference of ours. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	unsigned char der[SESSCACHE_DER_MAX], *p = der;
	const unsigned char *id;
	unsigned int id_len;
	int len = i2d_SSL_SESSION(sess, NULL);

	/* A session too large for a slot (a long certificate chain from a
	 * client) is not kept: that client does a full handshake next time. */
	if (len <= 0 || len > SESSCACHE_DER_MAX || i2d_SSL_SESSION(sess, &p) != len)
		return 0;
	id = SSL_SESSION_get_id(sess, &id_len);
	sesscache_put(t->cache, id, id_len, der, (size_t)len,
	    (int64_t)SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess));
	return 0;
}

static SSL_SESSION *
get_session_cb(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
	/* The context the handshake started in: SNI may not have switched yet. */
	struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	unsigned char der[SESSCACHE_DER_MAX];
	const unsigned char *p = der;
	size_t len;

	*copy = 0;	/* the session returned is the caller's */
	if (id_len <= 0 || (len = sesscache_get(t->cache, id, (size_t)id_len, der,
	    (int64_t)time(NULL))) == 0)
		return NULL;
	return d2i_SSL_SESSION(NULL, &p, (long)len);
}

static void
remove_session_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
	struct tlsctx *t = SSL_CTX_get_app_data(ctx);
	const unsigned char *id;
	unsigned int id_len;

	id = SSL_SESSION_get_id(sess, &id_len);
	sesscache_remove(t->cache, id, id_len);
}

/* ------------------------------------------------------------ contexts */

static int
host_matches(const char *want, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(want, name, len) == 0;
}

/* SNI: switch to the named host's context; an unknown or missing name keeps
 * the first host's certificate (the Gemini front end answers 53 for it). */
static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tlsctx *t = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t len;

	(void)alert;
	if (sni == NULL)
		return SSL_TLSEXT_ERR_OK;
	len = strlen(sni);
	if (len > 0 && sni[len - 1] == '.')
		len--;
	for (size_t i = 1; i < t->n; i++) {
		if (host_matches(sni, len, t->names[i])) {
			if (SSL_set_SSL_CTX(ssl, t->ctx[i]) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			/* SSL_set_SSL_CTX takes the certificate, not the
			 * verify mode: whether to ask for a client's. */
			SSL_set_verify(ssl, SSL_CTX_get_verify_mode(t->ctx[i]),
			    SSL_CTX_get_verify_callback(t->ctx[i]));
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Client certificates are identities, not claims checked against a CA. */
static int
accept_any_cert(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

/* The context's key: the certificate's public key, signing in the key
 * process under the name of its SubjectPublicKeyInfo's SHA-256. */
static int
use_remote_key(SSL_CTX *ctx, const struct host_conf *h, struct tlsctx_key *tk,
    struct diag *d)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	unsigned char id[KEY_ID_LEN], *der = NULL;
	EVP_PKEY *pub = x != NULL ? X509_get0_pubkey(x) : NULL, *remote;
	int len;

	if (pub == NULL ||
	    (len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0) {
		add_ssl_error(d, h->cert, "cannot read the certificate's public key");
		return -1;
	}
	SHA256(der, (size_t)len, id);
	if ((remote = keysign_key(pub, id)) == NULL) {
		diag_add(d, h->key, 0, NULL, "an %s key cannot be used (%s): the key "
		    "process signs with ECDSA and RSA keys only",
		    EVP_PKEY_get0_type_name(pub), h->cert);
		ERR_clear_error();
		OPENSSL_free(der);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, remote) != 1) {
		add_ssl_error(d, h->key, "cannot use the certificate's key");
		EVP_PKEY_free(remote);
		OPENSSL_free(der);
		return -1;
	}
	EVP_PKEY_free(remote);
	tk->file = xstrdup(h->key);
	tk->spki = xmalloc((size_t)len);
	memcpy(tk->spki, der, (size_t)len);
	tk->spki_len = (size_t)len;
	OPENSSL_free(der);
	return 0;
}

static SSL_CTX *
make_ctx(struct tlsctx *t, const struct host_conf *h, struct tlsctx_key *tk,
    struct diag *d)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		add_ssl_error(d, NULL, "cannot make a TLS context");
		return NULL;
	}
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Renegotiation only serves attackers here; an EOF without close_notify
	 * from a client ends its request like a close would. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* A client's last flight (Finished, then its request) arrives in one
	 * segment: one read(2) for all its records, not two per record. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* No dummy ChangeCipherSpec in TLS 1.3 handshakes (RFC 8446 D.4): the
	 * middleboxes it pleases do not sit on Gemini's port, and it costs a
	 * record a view. */
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	/* TLS 1.3 suites with SHA-256 first (the server's preference): their
	 * Finished messages, PSK binders and resumption secrets (so tickets) are
	 * 32 bytes where SHA-384's are 48, about 60 bytes less a view, and
	 * AES-128-GCM costs less CPU than AES-256-GCM. */
	if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256") ||
	    !SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:"
	    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384")) {
		add_ssl_error(d, NULL, "cannot set the TLS groups and ciphers");
		goto fail;
	}
	/* Sessions in the shared cache only (no per-worker copy, no lookup of
	 * one); SSL_OP_NO_TICKET makes TLS 1.3 tickets stateful: the ticket is
	 * the session's identifier, 32 bytes each way instead of about 200. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
	    SSL_SESS_CACHE_NO_INTERNAL | SSL_SESS_CACHE_NO_AUTO_CLEAR);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	SSL_CTX_sess_set_get_cb(ctx, get_session_cb);
	SSL_CTX_sess_set_remove_cb(ctx, remove_session_cb);
	/* TLS 1.3: one ticket a connection, asked for with the response so that
	 * they leave together (conn.c, conn_cork). */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_timeout(ctx, SESSION_LIFETIME);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CTX,
	    sizeof(SESSION_ID_CTX) - 1);
	/* No CertificateRequest: no page uses client certificates, and asking
	 * costs every reader about 100 bytes a full handshake (70 from us, 30
	 * back from a client with nothing to send). Only the editing hostname
	 * asks (server.editors): any certificate is taken, self-signed as
	 * Gemini clients make them, and titan.c checks its fingerprint. */
	if (h->editing)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

	if (access(h->cert, F_OK) == -1 && access(h->key, F_OK) == -1) {
		if (generate_cert(h, d) == -1)
			goto fail;
	} else if (access(h->key, F_OK) == -1) {
		diag_add(d, h->key, 0, NULL, "missing, but %s exists: restore the key, "
		    "or remove both to generate a new pair", h->cert);
		goto fail;
	} else if (access(h->cert, F_OK) == -1) {
		diag_add(d, h->cert, 0, NULL, "missing, but %s exists: restore the "
		    "certificate, or remove both to generate a new pair", h->key);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, h->cert) != 1) {
		add_ssl_error(d, h->cert, "cannot load the certificate");
		goto fail;
	}
	/* The key file itself is read by keyproc.c, and checked against this
	 * certificate in the key process. */
	if (use_remote_key(ctx, h, tk, d) == -1)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tlsctx *
tlsctx_setup(const struct config *cfg, struct diag *d)
{
	struct tlsctx *t = xcalloc(1, sizeof(*t));

	if ((t->cache = sesscache_new(SESSION_SLOTS)) == NULL) {
		diag_add(d, NULL, 0, NULL, "cannot map the TLS session cache: %s",
		    strerror(errno));
		tlsctx_free(t);
		return NULL;
	}
	t->ctx = xcalloc(cfg->n_hosts, sizeof(*t->ctx));
	t->names = xcalloc(cfg->n_hosts, sizeof(*t->names));
	t->keys = xcalloc(cfg->n_hosts, sizeof(*t->keys));
	for (size_t i = 0; i < cfg->n_hosts; i++) {
		const struct host_conf *h = &cfg->hosts[i];

		t->names[i] = xstrdup(h->name);
		t->n = i + 1;
		if (h->cert == NULL || h->key == NULL) {
			diag_add(d, NULL, 0, NULL, "%s: no certificate path", h->name);
			continue;
		}
		t->ctx[i] = make_ctx(t, h, &t->keys[i], d);
	}
	if (t->n == 0)
		diag_add(d, NULL, 0, "server.hostnames", "no host to serve");
	if (d->n > 0) {
		tlsctx_free(t);
		return NULL;
	}
	SSL_CTX_set_tlsext_servername_callback(t->ctx[0], servername_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctx[0], t);
	return t;
}

int
tlsctx_key_of(const struct tlsctx *t, size_t i, const char **file,
    const unsigned char **spki, size_t *spki_len)
{
	if (t == NULL || i >= t->n || t->keys[i].file == NULL)
		return -1;
	*file = t->keys[i].file;
	*spki = t->keys[i].spki;
	*spki_len = t->keys[i].spki_len;
	return 0;
}

void
tlsctx_keep_sessions(struct tlsctx *to, struct tlsctx *from)
{
	sesscache_free(to->cache);
	to->cache = from->cache;
	from->cache = NULL;
}

SSL *
tlsctx_new(struct tlsctx *t)
{
	SSL *ssl = SSL_new(t->ctx[0]);

	if (ssl == NULL)
		ERR_clear_error();
	else
		SSL_set_accept_state(ssl);	/* driven by SSL_do_handshake */
	return ssl;
}

void
tlsctx_free(struct tlsctx *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		SSL_CTX_free(t->ctx[i]);
		free(t->names[i]);
		if (t->keys != NULL) {
			free(t->keys[i].file);
			free(t->keys[i].spki);
		}
	}
	free(t->ctx);
	free(t->names);
	free(t->keys);
	sesscache_free(t->cache);
	free(t);
}
