/*
 * keysign.c: the workers' side of the key process. tlsctx.c gives each TLS
 * context its certificate and a "remote" key made here: the certificate's
 * public key with a method of ours, whose signing asks the key process
 * (keyproc.c) over the worker's own socket, naming the key by the SHA-256 of
 * the certificate's SubjectPublicKeyInfo. A worker thus serves full
 * handshakes without ever holding a private key.
 *
 * The wait is a blocking round trip (send, then recv with SO_RCVTIMEO, set
 * before the sandbox): a signature takes tens of microseconds in the key
 * process, less than the rest of a handshake, and the loop is paused only that
 * long. OpenSSL's async jobs (SSL_MODE_ASYNC) would let the loop run on
 * meanwhile, at the cost of a fibre and its stack per handshake and a second
 * wait per connection, for a gain smaller than one signature. Resumed
 * handshakes sign nothing and never come here.
 */

/*
 * EC_KEY_METHOD and RSA_METHOD are deprecated in OpenSSL 3, and they are still
 * the only way to make a key whose private operation happens elsewhere
 * without writing a provider: OpenSSL 3 takes the legacy code path for a key
 * whose method is not its own ("foreign"), and that path calls the method's
 * sign. This file alone uses them.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "server.h"
#include "keyproc.h"

/* How long a worker waits for a signature at most: the key process answers
 * in well under a millisecond, and the master writes an abort into every
 * worker's socket when it dies; this only bounds a key process that is alive
 * but stuck (stopped, starved). */
#define KEYSIGN_WAIT_MS  500

static int             ks_fd = -1;
static uint32_t        ks_next;
static int             ec_idx = -1, rsa_idx = -1;
static EC_KEY_METHOD  *ec_meth;
static RSA_METHOD     *rsa_meth;

void
keysign_use(int fd)
{
	struct timeval tv = ms_tv(KEYSIGN_WAIT_MS);

	ks_fd = fd;
	/* Set now: the sandbox allows no setsockopt of these. */
	if (fd != -1 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1))
		log_error("the key process's socket: %s", strerror(errno));
}

/* ---------------------------------------------------------- the round trip */

/* Asks the key process; the signature's length in out, or -1. */
static int
ks_ask(int op, int padding, const unsigned char *id, const unsigned char *in,
    size_t n, unsigned char *out, size_t max)
{
	struct ks_req rq;
	struct ks_rep rp;
	const char *why;
	long deadline;
	ssize_t r;

	if (id == NULL || n > KEYSIGN_MAX) {
		why = "no such key";
		goto fail;
	}
	if (ks_fd == -1) {
		why = "no key process";
		goto fail;
	}
	/* An abort, or a late reply, left from an earlier request. */
	while (recv(ks_fd, &rp, sizeof(rp), MSG_DONTWAIT) > 0)
		;
	memset(&rq, 0, KS_REQ_HEAD);
	if (++ks_next == 0)
		ks_next = 1;
	rq.id = ks_next;
	rq.op = (uint8_t)op;
	rq.padding = (uint8_t)padding;
	rq.len = (uint16_t)n;
	memcpy(rq.key, id, KEY_ID_LEN);
	memcpy(rq.data, in, n);
	deadline = now_ms() + KEYSIGN_WAIT_MS;
	while ((r = send(ks_fd, &rq, KS_REQ_HEAD + n, MSG_NOSIGNAL)) == -1 &&
	    errno == EINTR && now_ms() < deadline)
		;
	if (r != (ssize_t)(KS_REQ_HEAD + n)) {
		why = strerror(errno);
		goto fail;
	}
	for (;;) {
		r = recv(ks_fd, &rp, sizeof(rp), 0);
		if (r == -1 && errno == EINTR && now_ms() < deadline)
			continue;
		if (r == -1) {
			why = errno == EAGAIN ? "timed out" : strerror(errno);
			goto fail;
		}
		if (r == 0) {
			why = "the key process's socket was closed";
			goto fail;
		}
		if ((size_t)r < KS_REP_HEAD)
			continue;
		if (rp.status == KS_ABORT) {
			why = "the key process ended";
			goto fail;
		}
		if (rp.id == rq.id)
			break;
		/* A reply to an earlier request that gave up waiting. */
		if (now_ms() >= deadline) {
			why = "timed out";
			goto fail;
		}
	}
	if (rp.status != KS_OK || rp.len > max || (size_t)r != KS_REP_HEAD + rp.len) {
		why = "refused";
		goto fail;
	}
	memcpy(out, rp.sig, rp.len);
	return rp.len;
fail:
	log_warn("no signature from the key process for a handshake: %s", why);
	return -1;
}

/* ------------------------------------------------------------- ex_data: id */

static void
id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* A key copied by OpenSSL keeps its own copy of the name. */
static int
id_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
    long argl, void *argp)
{
	unsigned char *copy;

	(void)to;
	(void)from;
	(void)idx;
	(void)argl;
	(void)argp;
	if (*from_d == NULL)
		return 1;
	copy = xmalloc(KEY_ID_LEN);
	memcpy(copy, *from_d, KEY_ID_LEN);
	*from_d = copy;
	return 1;
}

/* ---------------------------------------------------------------- ECDSA */

static int
ks_ecdsa_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	int n;

	(void)type;
	(void)kinv;
	(void)r;
	/* sig holds ECDSA_size bytes (its callers' contract). */
	n = ks_ask(KS_ECDSA, 0, EC_KEY_get_ex_data(ec, ec_idx), dgst,
	    dlen < 0 ? 0 : (size_t)dlen, sig, (size_t)ECDSA_size(ec));
	if (n < 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static ECDSA_SIG *
ks_ecdsa_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	unsigned char der[256];
	const unsigned char *p = der;
	unsigned int len;

	if (ECDSA_size(ec) > (int)sizeof(der) ||
	    !ks_ecdsa_sign(0, dgst, dlen, der, &len, kinv, r, ec))
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, len);
}

/* *id is the key's once set on it (freed with it: id_free), then NULL. */
static EVP_PKEY *
remote_ec(EVP_PKEY *pub, unsigned char **id)
{
	const EC_KEY *from = EVP_PKEY_get0_EC_KEY(pub);
	EVP_PKEY *pk;
	EC_KEY *ec;

	if (ec_meth == NULL) {
		ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, id_dup, id_free);
		if (ec_idx < 0 ||
		    (ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method())) == NULL)
			return NULL;
		EC_KEY_METHOD_set_sign(ec_meth, ks_ecdsa_sign, NULL, ks_ecdsa_sign_sig);
	}
	if (from == NULL || (pk = EVP_PKEY_new()) == NULL)
		return NULL;
	if ((ec = EC_KEY_dup(from)) == NULL) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	/* The method before EVP_PKEY_assign: that is where OpenSSL marks the
	 * key foreign, and so signs with it through the method. */
	if (!EC_KEY_set_method(ec, ec_meth) || !EC_KEY_set_ex_data(ec, ec_idx, *id)) {
		EC_KEY_free(ec);
		EVP_PKEY_free(pk);
		return NULL;
	}
	*id = NULL;
	if (!EVP_PKEY_assign_EC_KEY(pk, ec)) {
		EC_KEY_free(ec);
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

/* ------------------------------------------------------------------ RSA */

/* The private operation: PKCS#1 v1.5 (TLS 1.2's RSA signatures, a DigestInfo
 * padded in the key process) or a block OpenSSL padded for RSA-PSS (TLS 1.3),
 * which the key process checks is one. */
static int
ks_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
    int padding)
{
	if (flen < 0 || (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING))
		return -1;
	return ks_ask(KS_RSA, padding, RSA_get_ex_data(rsa, rsa_idx), from,
	    (size_t)flen, to, (size_t)RSA_size(rsa));
}

static EVP_PKEY *
remote_rsa(EVP_PKEY *pub, unsigned char **id)
{
	const RSA *from = EVP_PKEY_get0_RSA(pub);
	EVP_PKEY *pk;
	RSA *rsa;

	if (rsa_meth == NULL) {
		rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, id_dup, id_free);
		if (rsa_idx < 0 ||
		    (rsa_meth = RSA_meth_dup(RSA_get_default_method())) == NULL)
			return NULL;
		RSA_meth_set1_name(rsa_meth, "kilnet key process");
		RSA_meth_set_priv_enc(rsa_meth, ks_rsa_priv_enc);
	}
	if (from == NULL || (pk = EVP_PKEY_new()) == NULL)
		return NULL;
	if ((rsa = RSAPublicKey_dup(from)) == NULL) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	if (!RSA_set_method(rsa, rsa_meth) || !RSA_set_ex_data(rsa, rsa_idx, *id)) {
		RSA_free(rsa);
		EVP_PKEY_free(pk);
		return NULL;
	}
	*id = NULL;
	if (!EVP_PKEY_assign_RSA(pk, rsa)) {
		RSA_free(rsa);
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

EVP_PKEY *
keysign_key(EVP_PKEY *pub, const unsigned char id[KEY_ID_LEN])
{
	unsigned char *name = xmalloc(KEY_ID_LEN);
	EVP_PKEY *pk = NULL;

	memcpy(name, id, KEY_ID_LEN);
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_EC:
		pk = remote_ec(pub, &name);
		break;
	case EVP_PKEY_RSA:
		pk = remote_rsa(pub, &name);
		break;
	}
	free(name);	/* NULL once the key holds it */
	return pk;
}
