/*
 * wrap_test.c: wrap.c's wrapping of UTF-8 prose at a column (70 for Gopher,
 * RFC 1436 clients): breaks after spaces only, code points not bytes, a word
 * longer than the line cut at the column but never inside a UTF-8 sequence or
 * between a letter and its combining mark, and a blank line kept.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Each line emitted, in brackets: "[one][two]". */
static void
collect(void *arg, const char *line, size_t len)
{
	struct buf *b = arg;

	buf_adds(b, "[");
	buf_add(b, line, len);
	buf_adds(b, "]");
}

static char *
wrapped(const char *text, int columns)
{
	struct buf b = { 0 };

	wrap_text(text, columns, collect, &b);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

/* n copies of s */
static char *
rep(const char *s, size_t n)
{
	struct buf b = { 0 };

	for (size_t i = 0; i < n; i++)
		buf_adds(&b, s);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

void
unit_wrap(void)
{
	static const struct {
		const char *text;
		int         columns;
		const char *want;
	} t[] = {
		{ "", 70, "[]" },				/* a blank line stays */
		{ "   ", 70, "[]" },
		{ "hello world", 70, "[hello world]" },
		{ "  hello", 70, "[hello]" },			/* no leading space */
		{ "hello  ", 70, "[hello]" },
		{ "the quick brown fox jumps", 10, "[the quick][brown fox][jumps]" },
		{ "the quick brown fox", 9, "[the quick][brown fox]" },	/* exactly full */
		{ "ab cd", 2, "[ab][cd]" },
		{ "a  b", 1, "[a][b]" },			/* spaces at a break go */
		{ "abcdef", 3, "[abc][def]" },			/* a long word is cut */
		{ "abcdefg hi", 3, "[abc][def][g][hi]" },
		{ "well-known words", 12, "[well-known][words]" },	/* no break at '-' */
		{ "a\xc2\xa0" "b c", 3, "[a\xc2\xa0" "b][c]" },	/* NBSP holds */
		{ "\xc3\xa9\xc3\xa9\xc3\xa9 \xc3\xa9", 3,
		  "[\xc3\xa9\xc3\xa9\xc3\xa9][\xc3\xa9]" },	/* code points */
		{ "\xe2\x80\x9cQuoted,\xe2\x80\x9d she said.", 10,
		  "[\xe2\x80\x9cQuoted,\xe2\x80\x9d][she said.]" },
		{ "abce\xcc\x81" "fg", 4, "[abc][e\xcc\x81" "fg]" },	/* é stays whole */
		{ "word", 0, "[w][o][r][d]" },			/* 0 columns: 1 */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got = wrapped(t[i].text, t[i].columns);
		char *q = unit_quote(t[i].text, strlen(t[i].text));
		char *name = xasprintf("\"%s\" at %d", q, t[i].columns);

		unit_str(name, got, t[i].want);
		free(name);
		free(q);
		free(got);
	}

	/* At 70 columns, the width of Gopher text. */
	{
		char *seventy = rep("x", 70), *text, *want, *got;

		/* 70 and a space: one full line */
		text = xasprintf("%s more", seventy);
		want = xasprintf("[%s][more]", seventy);
		got = wrapped(text, GOPHER_WRAP_COLUMNS);
		unit_str("a word of 70, then another", got, want);
		free(text), free(want), free(got);

		/* 71: the word is cut at 70 */
		text = xasprintf("%sy", seventy);
		want = xasprintf("[%s][y]", seventy);
		got = wrapped(text, GOPHER_WRAP_COLUMNS);
		unit_str("a word of 71", got, want);
		free(text), free(want), free(got);
		free(seventy);

		/* words of 9 and a space: 7 words (69 columns) a line */
		text = rep("abcdefghi ", 14);
		got = wrapped(text, GOPHER_WRAP_COLUMNS);
		want = xasprintf("[%s][%s]", "abcdefghi abcdefghi abcdefghi abcdefghi "
		    "abcdefghi abcdefghi abcdefghi", "abcdefghi abcdefghi abcdefghi "
		    "abcdefghi abcdefghi abcdefghi abcdefghi");
		unit_str("14 words of 9 at 70", got, want);
		free(text), free(want), free(got);

		/* 70 two-byte letters are 70 columns, not 140 */
		seventy = rep("\xc3\xa9", 70);
		text = xasprintf("%s \xc3\xa9", seventy);
		want = xasprintf("[%s][\xc3\xa9]", seventy);
		got = wrapped(text, GOPHER_WRAP_COLUMNS);
		unit_str("70 letters of 2 bytes", got, want);
		free(text), free(want), free(got), free(seventy);

		/* 69 letters, then e and its combining acute at the cut */
		seventy = rep("a", 69);
		text = xasprintf("%se\xcc\x81zz", seventy);
		want = xasprintf("[%s][e\xcc\x81zz]", seventy);
		got = wrapped(text, GOPHER_WRAP_COLUMNS);
		unit_str("a combining mark at column 71", got, want);
		free(text), free(want), free(got), free(seventy);
	}
}
