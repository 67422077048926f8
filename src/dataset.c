/*
 * dataset.c: the content rules of the network model (struct network, struct
 * member) and its release. config.c reads the values and knows their file and
 * line; the rules here only say what is wrong, so the same rules hold for any
 * future source of a dataset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "kilnet.h"

/* Ids become path segments (/members/<id>.gmi) and Gopher selectors: keep them
 * short enough for any file system and far below the request limits. */
#define DATASET_ID_MAX 64

/*
 * Every C0 control character and DEL gets a reason of its own, so the user
 * learns which invisible byte is there. TAB, CR and LF come first in practice
 * (a pasted paragraph), and each would break a gemtext line or a Gopher field.
 */
#define CTL(hex) "contains a control character (U+00" hex "); remove it"
static const char *const ctl_reason[32] = {
	CTL("00"), CTL("01"), CTL("02"), CTL("03"),
	CTL("04"), CTL("05"), CTL("06"), CTL("07"),
	CTL("08"),
	"contains a TAB character (U+0009); use a space",
	"contains a line break (LF, U+000A); make each paragraph its own "
	    "list element",
	CTL("0B"), CTL("0C"),
	"contains a carriage return (CR, U+000D); make each paragraph its own "
	    "list element",
	CTL("0E"), CTL("0F"),
	CTL("10"), CTL("11"), CTL("12"), CTL("13"),
	CTL("14"), CTL("15"), CTL("16"), CTL("17"),
	CTL("18"), CTL("19"), CTL("1A"), CTL("1B"),
	CTL("1C"), CTL("1D"), CTL("1E"), CTL("1F"),
};
#undef CTL

int
dataset_check_text(const char *s, const char **why)
{
	const unsigned char *p;
	int blank = 1;

	if (*s == '\0') {
		*why = "is empty";
		return -1;
	}
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20) {
			*why = ctl_reason[*p];
			return -1;
		}
		if (*p == 0x7f) {
			*why = "contains a control character (DEL, U+007F); remove it";
			return -1;
		}
		if (*p != ' ')
			blank = 0;
	}
	if (blank) {
		*why = "is blank (only spaces)";
		return -1;
	}
	if (u8_check((const uint8_t *)s, strlen(s)) != NULL) {
		*why = "is not valid UTF-8; save the file as UTF-8";
		return -1;
	}
	/* C1 controls (U+0080 to U+009F, C2 80 to C2 9F in UTF-8): a terminal
	 * takes U+009B as CSI, and no text needs them. */
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			*why = "contains a C1 control character (U+0080 to U+009F); "
			    "remove it";
			return -1;
		}
	return 0;
}

int
dataset_check_id(const char *s, const char **why)
{
	const char *p;

	if (*s == '\0') {
		*why = "is empty";
		return -1;
	}
	if (strlen(s) > DATASET_ID_MAX) {
		*why = "is longer than 64 bytes";
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			continue;
		if (*p == '-' && p != s)
			continue;
		*why = p == s && *p == '-' ?
		    "must start with a lower-case letter or a digit" :
		    "may hold only lower-case letters a-z, digits and '-' "
		    "(it becomes part of a path)";
		return -1;
	}
	return 0;
}

static void
paragraphs_free(struct paragraphs *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

void
network_free(struct network *n)
{
	for (size_t i = 0; i < n->n_members; i++) {
		struct member *m = &n->members[i];

		free(m->id);
		free(m->name);
		free(m->spokesperson);
		free(m->role);
		paragraphs_free(&m->statement);
	}
	free(n->members);
	free(n->name);
	paragraphs_free(&n->introduction);
	free(n->quote);
	free(n->quote_by);
	paragraphs_free(&n->background);
	free(n->convener);
	free(n->partner);
	free(n->url);
	paragraphs_free(&n->members_intro);
	free(n->join_heading);
	paragraphs_free(&n->join_text);
	free(n->join_label);
	free(n->join_url);
	memset(n, 0, sizeof(*n));
}
