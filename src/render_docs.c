/*
 * render_docs.c: the Gopher member documents, rendered on a second thread
 * while the caller renders everything else. Wrapping statements at 70 columns
 * (libunistring's line breaking) is the largest part of rendering a big
 * network: a quarter of `kilnet -t` at 10,000 members. The rest of the site
 * does not depend on these documents, so the two run side by side, and when
 * the caller is done with its part it takes documents from the same counter
 * until none is left. Nothing is shared but the read-only network and that
 * counter; each document goes to its own buffer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kilnet.h"

struct doc_batch {
	const struct network     *net;
	const struct render_opts *ro;
	struct buf               *docs;	/* one per member, in member order */
	atomic_size_t             next;
	pthread_t                 thread;
	int                       threaded;
};

static void
render_some(struct doc_batch *b)
{
	size_t i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->net->n_members)
		render_gopher_member(b->net, &b->net->members[i], b->ro,
		    &b->docs[i]);
}

static void *
thread_main(void *arg)
{
	render_some(arg);
	return NULL;
}

struct doc_batch *
render_docs_start(const struct network *net, const struct render_opts *ro)
{
	struct doc_batch *b = xcalloc(1, sizeof(*b));

	b->net = net;
	b->ro = ro;
	b->docs = xcalloc(net->n_members > 0 ? net->n_members : 1,
	    sizeof(*b->docs));
	atomic_init(&b->next, 0);
	/* Not worth a thread for a small network; without one, the caller does all. */
	if (net->n_members >= RENDER_DOCS_THREAD_MIN)
		b->threaded = pthread_create(&b->thread, NULL, thread_main, b) == 0;
	return b;
}

struct buf *
render_docs_finish(struct doc_batch *b)
{
	struct buf *docs;

	render_some(b);
	if (b->threaded)
		pthread_join(b->thread, NULL);
	docs = b->docs;
	free(b);
	return docs;
}
