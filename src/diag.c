/*
 * diag.c: error messages gathered for one report. The config loader adds every
 * problem it finds, so a user fixes them all after one run, and the caller that
 * knows the context decides where they go.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kilnet.h"

void
diag_add(struct diag *d, const char *file, int line, const char *setting,
    const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;
	char *msg;

	if (file != NULL && *file == '\0' && line > 0)
		buf_printf(&b, "%d: ", line);	/* an upload: its lines only */
	else if (file != NULL && *file == '\0')
		;
	else if (file != NULL && line > 0)
		buf_printf(&b, "%s:%d: ", file, line);
	else if (file != NULL)
		buf_printf(&b, "%s: ", file);
	if (setting != NULL)
		buf_printf(&b, "%s: ", setting);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	buf_adds(&b, msg);
	free(msg);

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->msgs = xrealloc(d->msgs, d->cap * sizeof(*d->msgs));
	}
	d->msgs[d->n++] = (char *)b.data;
}

void
diag_print(const struct diag *d, const char *prefix)
{
	for (size_t i = 0; i < d->n; i++) {
		if (prefix != NULL)
			fprintf(stderr, "%s", prefix);
		fprintf(stderr, "%s\n", d->msgs[i]);
	}
}

void
diag_clear(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = d->cap = 0;
}
