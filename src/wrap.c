/*
 * wrap.c: wraps UTF-8 prose at a column for Gopher (menus' "i" lines and text
 * documents, RFC 1436 clients show 70 columns). Columns are code points; a line
 * never ends inside a UTF-8 sequence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unictype.h>
#include <unilbrk.h>
#include <unistr.h>

#include "kilnet.h"

/*
 * Lines break only after a run of spaces, and only where UAX #14 (through
 * libunistring) allows it: a reader, or a test, rejoins the lines with one
 * space and gets the text back. UAX #14 would also break after a hyphen or a
 * dash ("day-" / "to-day"), which a rejoin cannot undo, so those are not used.
 */
static int
break_before(const char *s, const char *brk, size_t i)
{
	return i > 0 && s[i - 1] == ' ' && brk[i] == UC_BREAK_POSSIBLE;
}

/* Bytes of the code point at s[i] (1 for a byte that starts none). */
static size_t
cp_len(const char *s, size_t n, size_t i, ucs4_t *uc)
{
	int l;

	if ((unsigned char)s[i] < 0x80) {	/* most text: skip the decoder */
		*uc = (unsigned char)s[i];
		return 1;
	}
	l = u8_mbtouc(uc, (const uint8_t *)s + i, n - i);
	return l > 0 ? (size_t)l : 1;
}

static void
emit_trimmed(const char *s, size_t start, size_t end,
    void (*emit)(void *, const char *, size_t), void *arg)
{
	while (end > start && s[end - 1] == ' ')
		end--;
	emit(arg, s + start, end - start);
}

void
wrap_text(const char *text, int columns,
    void (*emit)(void *arg, const char *line, size_t len), void *arg)
{
	size_t n = strlen(text), start = 0, i, lastbrk, j, prev;
	char *brk;
	int cps, emitted = 0;
	ucs4_t uc;

	if (columns < 1)
		columns = 1;
	brk = xmalloc(n + 1);
	if (n > 0)
		u8_possible_linebreaks((const uint8_t *)text, n, "UTF-8", brk);
	while (start < n && text[start] == ' ')
		start++;
	while (start < n) {
		i = start;
		cps = 0;
		lastbrk = 0;
		while (i < n && cps < columns) {
			if (i > start && break_before(text, brk, i))
				lastbrk = i;
			i += cp_len(text, n, i, &uc);
			cps++;
		}
		if (i >= n) {
			emit_trimmed(text, start, n, emit, arg);
			emitted = 1;
			break;
		}
		/* Exactly full: the next character is a space we may break at. */
		for (j = i; j < n && text[j] == ' '; j++)
			;
		if (j > i && (j == n || break_before(text, brk, j))) {
			emit_trimmed(text, start, i, emit, arg);
			start = j;
		} else if (i > start && break_before(text, brk, i)) {
			emit_trimmed(text, start, i, emit, arg);
			start = i;
		} else if (lastbrk > start) {
			emit_trimmed(text, start, lastbrk, emit, arg);
			start = lastbrk;
		} else {
			/*
			 * A word longer than the line: cut it at the column, but
			 * keep a combining mark with the character it belongs to.
			 */
			j = i;
			cp_len(text, n, j, &uc);
			while (j > start && uc_combining_class(uc) != 0) {
				prev = j - 1;
				while (prev > start && (text[prev] & 0xc0) == 0x80)
					prev--;
				j = prev;
				cp_len(text, n, j, &uc);
			}
			if (j == start)
				j = i;  /* all marks: a cut is unavoidable */
			emit(arg, text + start, j - start);
			start = j;
		}
		emitted = 1;
		while (start < n && text[start] == ' ')
			start++;
	}
	if (!emitted)
		emit(arg, "", 0);  /* a blank line stays a blank line */
	free(brk);
}
