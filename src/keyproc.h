/*
 * keyproc.h: what the key process (keyproc.c) and the workers' remote keys
 * (keysign.c) share, and nothing else includes: one signing request and its
 * reply, each one SOCK_SEQPACKET message on the worker's own socketpair.
 */
#ifndef KILNET_KEYPROC_H
#define KILNET_KEYPROC_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* The largest input (a digest, or an RSA block) and signature: an RSA key of
 * 16384 bits. */
#define KEYSIGN_MAX     2048

enum { KS_ECDSA = 1, KS_RSA = 2 };             /* ks_req.op */
enum { KS_OK = 0, KS_FAIL = 1, KS_ABORT = 2 };  /* ks_rep.status */

struct ks_req {
	uint32_t       id;          /* the worker's: the reply carries it back */
	uint8_t        op;
	uint8_t        padding;     /* KS_RSA: RSA_PKCS1_PADDING or RSA_NO_PADDING */
	uint16_t       len;         /* of data */
	unsigned char  key[KEY_ID_LEN];
	unsigned char  data[KEYSIGN_MAX];
};
#define KS_REQ_HEAD offsetof(struct ks_req, data)

/* id 0 with KS_ABORT: written by the master when the key process died, so
 * that a worker waiting for a reply stops waiting. */
struct ks_rep {
	uint32_t       id;
	uint16_t       status;
	uint16_t       len;         /* of sig */
	unsigned char  sig[KEYSIGN_MAX];
};
#define KS_REP_HEAD offsetof(struct ks_rep, sig)

/* keysign.c, in a worker: fd is its end of its pair to the key process
 * (blocking, with SO_RCVTIMEO and SO_SNDTIMEO set); -1: none, and every
 * signature fails. */
void  keysign_use(int fd);

#endif
