/*
 * editchan.c: the frames that cross the socketpair between a worker and the
 * editing process (titan.c asks, editor.c answers). A worker holds untrusted
 * bytes and writes no file, so an upload, once its size and its editor are
 * checked, travels to the editing process as one frame; the reply comes back as one.
 * The same machine is at both ends: the header is in host byte order. The
 * editing process and the store process (store_etcd.c) speak the same
 * frames; and the master's fixed-size words to its helpers (struct ed_ctl,
 * a descriptor passed with some) are read here too (ctl_recv).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define CHAN_MAGIC 0x6b656474u	/* "kedt" */

struct chan_hdr {
	uint32_t magic, id, code;
	uint32_t n[CHAN_PARTS];
	char     fp[64];
};

void
chan_pack(struct buf *out, const struct chan_msg *m)
{
	struct chan_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = CHAN_MAGIC;
	h.id = m->id;
	h.code = m->code;
	memcpy(h.fp, m->fp, sizeof(h.fp));
	for (int i = 0; i < CHAN_PARTS; i++)
		h.n[i] = (uint32_t)m->n[i];
	buf_add(out, &h, sizeof(h));
	for (int i = 0; i < CHAN_PARTS; i++)
		if (m->n[i] > 0)
			buf_add(out, m->part[i], m->n[i]);
}

int
chan_unpack(const unsigned char *in, size_t len, size_t max,
    struct chan_msg *m, size_t *used)
{
	struct chan_hdr h;
	size_t total = sizeof(h), off;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, in, sizeof(h));
	if (h.magic != CHAN_MAGIC)
		return -1;
	for (int i = 0; i < CHAN_PARTS; i++) {
		if (h.n[i] > max || total + h.n[i] > max + sizeof(h))
			return -1;
		total += h.n[i];
	}
	if (len < total)
		return 0;
	memset(m, 0, sizeof(*m));
	m->id = h.id;
	m->code = h.code;
	memcpy(m->fp, h.fp, sizeof(h.fp));
	m->fp[64] = '\0';
	off = sizeof(h);
	for (int i = 0; i < CHAN_PARTS; i++) {
		m->part[i] = in + off;
		m->n[i] = h.n[i];
		off += h.n[i];
	}
	*used = total;
	return 1;
}

int
chan_flush(int fd, struct buf *out, size_t *off)
{
	while (*off < out->len) {
		ssize_t n = write(fd, out->data + *off, out->len - *off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		*off += (size_t)n;
	}
	/* An upload's frame is up to server.max_upload: not kept once sent. */
	if (out->cap > 65536)
		buf_free(out);
	out->len = 0;
	*off = 0;
	return 1;
}

int
chan_fill(int fd, struct buf *in)
{
	unsigned char tmp[65536];

	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		buf_add(in, tmp, (size_t)n);
	}
}

void
chan_consume(struct buf *in, size_t used)
{
	memmove(in->data, in->data + used, in->len - used);
	in->len -= used;
}

ssize_t
ctl_recv(int sock, struct ed_ctl *c, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { c, sizeof(*c) };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	if ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(*fd));
	return n;
}
