/*
 * fuzz_escape.c: libFuzzer target for the escapers and the wrapper, which put
 * dataset text into gemtext lines and Gopher menus. Text that the config would
 * accept (dataset_check_text) must come out as exactly one line that is not
 * markup, one menu line with its three TABs, and wrapped lines that are valid
 * UTF-8, never start with a space, and lose or add nothing but spaces. (A line
 * may end in one: a word cut at the column keeps the space after it.) Any bytes go through the
 * gemtext-to-Gopher converter used for capsule pages.
 */
#include <string.h>

#include <unistr.h>

#include "fuzz.h"

struct wrapped {
	struct buf text;
	int        bad;
};

static void
count(const unsigned char *p, size_t n, int c, size_t *k)
{
	*k = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] == c)
			(*k)++;
}

static void
emit(void *arg, const char *line, size_t len)
{
	struct wrapped *w = arg;

	if (u8_check((const uint8_t *)line, len) != NULL ||
	    memchr(line, '\n', len) != NULL ||
	    (len > 0 && line[0] == ' '))
		w->bad = 1;
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ')
			buf_add(&w->text, &line[i], 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_opts ro = { "localhost", 1965, 70, 0, 0 };
	struct buf out = { 0 };
	struct wrapped w = { { 0 }, 0 };
	const char *why;
	char *s;
	size_t k, nospace = 0;
	int columns;

	render_gopher_from_gemtext(data, size, &ro, &out);
	buf_free(&out);

	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	size = strlen(s);	/* a C string: text ends at a NUL, as in a config */
	if (dataset_check_text(s, &why) == -1) {
		free(s);
		return 0;
	}

	render_gemtext_text_line(s, &out);
	count(out.data, out.len, '\n', &k);
	if (k != 1 || out.data[out.len - 1] != '\n' || out.data[0] == '#' ||
	    out.data[0] == '*' || out.data[0] == '>' ||
	    (out.len >= 2 && memcmp(out.data, "=>", 2) == 0) ||
	    (out.len >= 3 && memcmp(out.data, "```", 3) == 0))
		abort();
	buf_free(&out);

	render_gopher_item(&out, '1', s, "/members/", "localhost", 70);
	count(out.data, out.len, '\t', &k);
	if (k != 3 || out.len < 2 || memcmp(out.data + out.len - 2, "\r\n", 2))
		abort();
	count(out.data, out.len, '\n', &k);
	if (k != 1)
		abort();
	buf_free(&out);

	render_gopher_info(&out, s, &ro);
	if (out.len < 2 || memcmp(out.data + out.len - 2, "\r\n", 2) != 0 ||
	    out.data[0] != 'i')
		abort();
	buf_free(&out);

	/* The first byte picks the width, so narrow columns get tried too. */
	columns = 1 + (unsigned char)s[0] % 80;
	wrap_text(s, columns, emit, &w);
	for (size_t i = 0; i < size; i++)
		if (s[i] != ' ')
			nospace++;
	if (w.bad || w.text.len != nospace)
		abort();
	for (size_t i = 0, j = 0; i < size; i++)
		if (s[i] != ' ' && w.text.data[j++] != (unsigned char)s[i])
			abort();
	buf_free(&w.text);
	free(s);
	return 0;
}
