/*
 * child.c: what a new child process of the master does first: close every
 * descriptor that is not its own, so that no process holds another's
 * channels or sockets. Apart from util.c because it keeps the access log's
 * descriptor (log.c), and log.c allocates with util.c.
 */
#include <unistd.h>

#include "server.h"

void
fd_close_all_but(const int *keep, size_t n)
{
	int lo = 3, logfd = log_access_fd();

	/* The kept descriptors in ascending order, each found afresh: any
	 * number of them (the metrics process keeps all its listeners), and no
	 * allocation in a process just forked. */
	for (;;) {
		int next = -1;

		for (size_t i = 0; i <= n; i++) {
			int fd = i < n ? keep[i] : logfd;

			if (fd >= lo && (next == -1 || fd < next))
				next = fd;
		}
		if (next == -1)
			break;
		if (next > lo)
			close_range((unsigned)lo, (unsigned)next - 1, 0);
		lo = next + 1;
	}
	close_range((unsigned)lo, ~0U, 0);
}
