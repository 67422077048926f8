/*
 * listeners.c: the listening sockets. The master opens them (one SO_REUSEPORT
 * socket per address per worker slot), keeps them for its whole life, and hands
 * each worker its share; a reload keeps what it can.
 *
 * With SO_REUSEPORT the kernel hashes each new connection to one socket of the
 * group and queues it there until accepted; closing a socket resets what is
 * queued on it. So no socket is closed while its address is served: on a
 * reload the new worker i is given the same sockets (and what is queued there)
 * while the old worker i closes its copies and finishes its connections. A
 * reload to fewer workers keeps the surplus sockets too: each is served by a
 * remaining worker (socket j by worker j mod N), and a classic BPF program on
 * the group steers new connections to the first N sockets only, so the
 * surplus ones carry nothing new and nothing queued on them is lost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

/* Opens a listening (or, with do_listen 0, only bound) socket. reuseport: the
 * workers' sockets share the port; the master's check socket must not, so that
 * it fails on a port anyone already holds. */
static int
open_socket(const struct listen_addr *la, int reuseport, int do_listen)
{
	union {
		struct sockaddr_in   in;
		struct sockaddr_in6  in6;
	} a;
	socklen_t alen;
	int fd, one = 1, e;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, la->host, &a.in.sin_addr) == 1) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons((unsigned short)la->port);
		alen = sizeof(a.in);
	} else if (inet_pton(AF_INET6, la->host, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((unsigned short)la->port);
		alen = sizeof(a.in6);
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(a.in.sin_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
	    /* Inherited by accepted sockets: a response must not wait for the
	     * client's delayed ACK of the session ticket written before it. */
	    (do_listen &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) ||
	    (a.in.sin_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&a, alen) == -1 ||
	    (do_listen && listen(fd, SOMAXCONN) == -1)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
listen_name(const struct listen_addr *la, char *out, size_t size)
{
	if (strchr(la->host, ':') != NULL)
		snprintf(out, size, "[%s]:%d", la->host, la->port);
	else
		snprintf(out, size, "%s:%d", la->host, la->port);
}

/* What to do next when a listen address cannot be bound, by errno. */
static const char *
listen_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "; another program (or another kilnet) holds that port: "
		    "stop it, or choose another address";
	case EACCES:
		return "; ports below 1024 need root or CAP_NET_BIND_SERVICE (the "
		    "systemd unit gives it), or choose a port from 1024 up";
	case EADDRNOTAVAIL:
		return "; no interface of this machine has that address: use "
		    "0.0.0.0, [::] or one that 'ip addr' lists";
	case EAFNOSUPPORT:
		return "; IPv6 is off on this machine: remove the [::] addresses";
	default:
		return "";
	}
}

static const char *
listen_setting(int kind, int proxy)
{
	static const char *const plain[] = {
		"server.gemini.listen or --gemini", "server.gopher.listen or --gopher",
		"server.spartan.listen or --spartan", "server.nex.listen or --nex"
	};
	static const char *const behind[] = {
		"server.gemini.proxy_listen", "server.gopher.proxy_listen",
		"server.spartan.proxy_listen", "server.nex.proxy_listen"
	};

	return proxy ? behind[kind] : plain[kind];
}

/* The i-th address of cfg in the workers' listener order (Gemini, Gopher,
 * Spartan, Nex), and its protocol in *kind. */
static const struct listen_addr *
nth_listen(const struct config *cfg, size_t i, int *kind)
{
	const struct listen_addr *v[] = { cfg->gemini_listen, cfg->gopher_listen,
	    cfg->spartan_listen, cfg->nex_listen };
	size_t n[] = { cfg->n_gemini_listen, cfg->n_gopher_listen,
	    cfg->n_spartan_listen, cfg->n_nex_listen };

	for (int k = 0; k < 4; k++) {
		if (i < n[k]) {
			*kind = k;
			return &v[k][i];
		}
		i -= n[k];
	}
	return NULL;
}

static int
same_addr(const struct listen_addr *a, const struct listen_addr *b)
{
	unsigned char x[16], y[16];
	int fa = strchr(a->host, ':') ? AF_INET6 : AF_INET;
	int fb = strchr(b->host, ':') ? AF_INET6 : AF_INET;

	if (a->port != b->port || fa != fb)
		return 0;
	if (inet_pton(fa, a->host, x) != 1 || inet_pton(fb, b->host, y) != 1)
		return strcmp(a->host, b->host) == 0;
	return memcmp(x, y, fa == AF_INET6 ? 16 : 4) == 0;
}

static void
lsock_free(struct lsock *l)
{
	for (int s = 0; s < l->n_fd; s++)
		if (l->fd[s] != -1)
			close(l->fd[s]);
	free(l->la.host);
	free(l->fd);
}

void
listeners_free(struct listen_set *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		lsock_free(&ls->v[i]);
	free(ls->v);
	memset(ls, 0, sizeof(*ls));
}

/*
 * Steers new connections on l's group to its first n_slots sockets (the
 * group numbers sockets in the order they listened, which is slot order here,
 * and none is closed before the group goes): index = source port mod n_slots.
 * The program reads the TCP header behind a plain IPv4 (20 bytes) or IPv6 (40)
 * header; a SYN with IP options or extension headers gets another index, still
 * a served socket. With no surplus the program is removed (the kernel's hash).
 */
static void
lsock_steer(const struct lsock *l, int n_slots)
{
	unsigned int ip_len = strchr(l->la.host, ':') ? 40 : 20;
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, (unsigned int)SKF_NET_OFF + ip_len),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (unsigned int)n_slots),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { .len = 3, .filter = code };
	char name[64];
	int dummy = 0;

	if (l->n_fd <= n_slots) {
		/* ENOENT: none attached, the usual case. */
		setsockopt(l->fd[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &dummy,
		    sizeof(dummy));
		return;
	}
	if (setsockopt(l->fd[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)) == -1) {
		listen_name(&l->la, name, sizeof(name));
		log_warn("%s: cannot steer connections away from the %d surplus "
		    "socket%s (%s); they are still served", name, l->n_fd - n_slots,
		    l->n_fd - n_slots == 1 ? "" : "s", strerror(errno));
	}
}

/*
 * The sockets for cfg's addresses and n_slots workers, replacing *cur: an
 * address already open keeps its sockets (all of them, even beyond n_slots:
 * see the top of the file), a new one is checked (bound once, without
 * SO_REUSEPORT, so that a port held by anyone else fails) and opened, and the
 * sockets of addresses no longer configured are closed. On an error nothing
 * changes. The order is the workers' listener order: Gemini, Gopher, Spartan, Nex.
 */
int
listeners_build(struct listen_set *cur, const struct config *cfg, int n_slots)
{
	size_t n = cfg->n_gemini_listen + cfg->n_gopher_listen +
	    cfg->n_spartan_listen + cfg->n_nex_listen, i, j;
	struct lsock *ls = xcalloc(n ? n : 1, sizeof(*ls));
	long *from = xcalloc(n ? n : 1, sizeof(*from));
	long *match = xcalloc(cur->n ? cur->n : 1, sizeof(*match));
	int *check = xcalloc(n ? n : 1, sizeof(*check));
	char name[64];
	int rc = 0, s;

	for (j = 0; j < cur->n; j++)
		match[j] = -1;
	for (i = 0; i < n; i++) {
		const struct listen_addr *la;

		la = nth_listen(cfg, i, &ls[i].kind);
		ls[i].la = *la;
		ls[i].la.host = xstrdup(la->host);
		from[i] = -1;
		for (j = 0; j < cur->n; j++) {
			if (match[j] == -1 && same_addr(&cur->v[j].la, la)) {
				match[j] = (long)i;
				from[i] = (long)j;
				break;
			}
		}
		ls[i].n_fd = n_slots;
		if (from[i] != -1 && cur->v[from[i]].n_fd > n_slots)
			ls[i].n_fd = cur->v[from[i]].n_fd;
		ls[i].fd = xcalloc((size_t)ls[i].n_fd, sizeof(int));
		for (s = 0; s < ls[i].n_fd; s++)
			ls[i].fd[s] = -1;
	}
	if (n == 0) {
		fprintf(stderr, KILNET_NAME ": nothing to listen on (server.gemini.listen, "
		    "server.gopher.listen)\n");
		rc = -1;
	}
	/* All new addresses bound at the same time: overlaps show too. */
	for (i = 0; i < n; i++) {
		check[i] = -1;
		if (from[i] != -1)
			continue;
		if ((check[i] = open_socket(&ls[i].la, 0, 0)) == -1) {
			listen_name(&ls[i].la, name, sizeof(name));
			fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s%s\n",
			    name, listen_setting(ls[i].kind, ls[i].la.proxy),
			    strerror(errno), listen_hint(errno));
			rc = -1;
		}
	}
	for (i = 0; i < n; i++)
		if (check[i] != -1)
			close(check[i]);
	/* Kept sockets first, in their order; new ones listen after them, so the
	 * group's numbering stays the slot order. */
	for (i = 0; i < n && rc == 0; i++) {
		for (s = 0; s < ls[i].n_fd && rc == 0; s++) {
			if (from[i] != -1 && s < cur->v[from[i]].n_fd) {
				ls[i].fd[s] = cur->v[from[i]].fd[s];
				continue;
			}
			if ((ls[i].fd[s] = open_socket(&ls[i].la, 1, 1)) == -1) {
				listen_name(&ls[i].la, name, sizeof(name));
				fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s%s\n",
				    name, listen_setting(ls[i].kind, ls[i].la.proxy),
				    strerror(errno), listen_hint(errno));
				rc = -1;
			}
		}
	}
	if (rc == 0) {
		/* Kept sockets now belong to the new set; the rest are closed. */
		for (j = 0; j < cur->n; j++)
			if (match[j] != -1)
				for (s = 0; s < cur->v[j].n_fd; s++)
					cur->v[j].fd[s] = -1;
		listeners_free(cur);
		cur->v = ls;
		cur->n = n;
		for (i = 0; i < n; i++)
			lsock_steer(&ls[i], n_slots);
	} else {
		for (i = 0; i < n; i++) {
			for (s = 0; s < ls[i].n_fd; s++)
				if (from[i] != -1 && s < cur->v[from[i]].n_fd)
					ls[i].fd[s] = -1;	/* borrowed */
			lsock_free(&ls[i]);
		}
		free(ls);
	}
	free(from);
	free(match);
	free(check);
	return rc;
}

/*
 * In a new worker of slot `slot` (of n_slots): its sockets, socket s of each
 * address where s mod n_slots is the slot, moved out of ls into *out (the
 * rest stay in ls, for the caller to close). Returns how many.
 */
size_t
listeners_take(struct listen_set *ls, int slot, int n_slots, struct wsock **out)
{
	size_t n = 0, cap = 0;
	struct wsock *v = NULL;

	for (size_t i = 0; i < ls->n; i++) {
		for (int s = slot; s < ls->v[i].n_fd; s += n_slots) {
			if (ls->v[i].fd[s] == -1)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n].fd = ls->v[i].fd[s];
			v[n].kind = ls->v[i].kind;
			v[n].proxy = ls->v[i].la.proxy;
			listen_name(&ls->v[i].la, v[n].name, sizeof(v[n].name));
			ls->v[i].fd[s] = -1;
			n++;
		}
	}
	*out = v;
	return n;
}

int
listen_open(const struct listen_addr *la, const char *setting)
{
	char name[64];
	int fd;

	if ((fd = open_socket(la, 0, 1)) == -1) {
		listen_name(la, name, sizeof(name));
		fprintf(stderr, KILNET_NAME ": cannot listen on %s (%s): %s%s\n", name,
		    setting, strerror(errno), listen_hint(errno));
	}
	return fd;
}
