/*
 * client.h: what the test suite's clients (tests/gemget.c, tests/titan.c) share:
 * the timeout alarm, pauses, the TCP connection, copying to standard output, the
 * TLS handshake and OpenSSL's error messages. Each client is its own program and
 * includes this once, so the functions here are static.
 *
 * Before including it, a client defines CLIENT_NAME (the "NAME: " of its
 * messages, a string literal) and its exit status EX_FAIL.
 */
#ifndef TESTS_CLIENT_H
#define TESTS_CLIENT_H

#if !defined(CLIENT_NAME) || !defined(EX_FAIL)
#error "define CLIENT_NAME and EX_FAIL before including client.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* What the alarm writes on standard error, and the exit status it ends with (a
 * client may change the status as it goes). */
static const char *timeout_msg;
static size_t timeout_msg_len;
static volatile sig_atomic_t timeout_status;

static void
on_alarm(int sig)
{
	(void)sig;
	if (write(2, timeout_msg, timeout_msg_len) < 0) {
		/* nothing more to do */
	}
	_exit(timeout_status);
}

/* The timeout covers everything, connect included: after seconds, a SIGALRM
 * writes msg and ends the process with status. SIGPIPE is ignored too: a write
 * to a closed connection fails with EPIPE instead. */
static void
start_timeout(double seconds, const char *msg, int status)
{
	struct sigaction sa;
	struct itimerval it;

	timeout_msg = msg;
	timeout_msg_len = strlen(msg);
	timeout_status = status;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)seconds;
	it.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void
sleep_ms(long long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
print_ssl_errors(void)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, CLIENT_NAME ":   %s\n", buf);
	}
}

/* Binds fd (of family) to the local address addr; -1 (and a message) on error. */
static int
bind_local(int fd, int family, const char *addr)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	int r = -1;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (family == AF_INET && inet_pton(AF_INET, addr, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		r = bind(fd, (struct sockaddr *)&a4, sizeof(a4));
	} else if (family == AF_INET6 && inet_pton(AF_INET6, addr, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		r = bind(fd, (struct sockaddr *)&a6, sizeof(a6));
	} else {
		errno = EINVAL;
	}
	if (r == -1)
		fprintf(stderr, CLIENT_NAME ": --bind %s: %s\n", addr, strerror(errno));
	return r;
}

/* A TCP connection to host port (each of its addresses in turn), with
 * TCP_NODELAY; -1 (and a message) on error. rcvbuf > 0 sets SO_RCVBUF; local,
 * when not NULL, is the address to connect from. */
static int
tcp_connect(const char *host, const char *port, long rcvbuf, const char *local)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, CLIENT_NAME ": %s port %s: %s\n", host, port,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		/* Before connect: the window offered to the server follows it. */
		if (rcvbuf > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ (int)rcvbuf },
			    sizeof(int));
		if (local != NULL && bind_local(fd, ai->ai_family, local) == -1) {
			saved = errno;
			close(fd);
			fd = -1;
			break;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int one = 1;

			/* The request must not wait for the ACK of the handshake's
			 * last flight (Nagle), like interactive clients do. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	if (fd == -1)
		fprintf(stderr, CLIENT_NAME ": connect to %s port %s: %s\n", host, port,
		    strerror(saved));
	freeaddrinfo(res);
	return fd;
}

/* Writes all of p[0..n) to standard output, or ends the process (EX_FAIL). */
static void
write_stdout(const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(1, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror(CLIENT_NAME ": stdout");
			exit(EX_FAIL);
		}
		c += w;
		n -= (size_t)w;
	}
}

/* SSL_connect; on failure a message (and OpenSSL's errors), and -1. */
static int
tls_handshake(SSL *ssl)
{
	int r = SSL_connect(ssl);

	if (r == 1)
		return 0;
	fprintf(stderr, CLIENT_NAME ": TLS handshake failed (SSL error %d)\n",
	    SSL_get_error(ssl, r));
	print_ssl_errors();
	return -1;
}

#endif
