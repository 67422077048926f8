/*
 * child.c: what a new child process of the master does first: close every
 * descriptor that is not its own, so that no process holds another's
 * channels or sockets. Apart from util.c because it keeps the access log's
 * descriptor (log.c), and log.c allocates with util.c.
 */
#include <unistd.h>

#include "kilnet.h"

void
fd_close_all_but(const int *keep, size_t n)
{
	int v[8], k = 0, lo = 3, logfd = log_access_fd();

	for (size_t i = 0; i < n && k < 7; i++)
		if (keep[i] > 2)
			v[k++] = keep[i];
	if (logfd > 2)
		v[k++] = logfd;
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (int i = 0; i < k; i++) {
		if (v[i] > lo)
			close_range((unsigned)lo, (unsigned)v[i] - 1, 0);
		if (v[i] + 1 > lo)
			lo = v[i] + 1;
	}
	close_range((unsigned)lo, ~0U, 0);
}
