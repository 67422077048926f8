/*
 * unit.h: the unit tests' harness. A suite is a function in tests/unit/NAME_test.c
 * that runs its table of cases; each case ends in one verdict, counted, and a
 * failure prints what was expected and what came. unit.c runs every suite (or
 * those whose names start with argv[1]) and ends with "N passed, N failed".
 *
 * The cases call the modules' entry points (src/kilnet.h), linked from the
 * objects of a build (build/, or build/asan/ for tests/bin/unit-asan),
 * never a copy of their code.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stddef.h>

#include "../../src/server.h"

#ifndef KILNET_ROOT
#define KILNET_ROOT "."
#endif

/* The suites, in the order they run; each is unit_NAME in NAME_test.c. */
#define UNIT_SUITES(X) \
	X(url) X(gemini) X(gopher) X(spartan) X(nex) X(proxy) X(titan) X(wrap) \
	X(render) \
	X(editchan) X(config) X(chunk) X(metrics) X(log_json)

#define UNIT_DECLARE(name) void unit_##name(void);
UNIT_SUITES(UNIT_DECLARE)

/* One case: passed when ok; else the message (printf) says why. */
void unit_ok(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One case: got (glen bytes) must be want (wlen bytes); differences are
 * shown with C escapes. unit_str takes NUL-terminated strings (got may be
 * NULL: then it fails). */
void unit_mem(const char *name, const void *got, size_t glen,
	const void *want, size_t wlen);
void unit_str(const char *name, const char *got, const char *want);
void unit_long(const char *name, long got, long want);

/* The site of the shipped config (conf/kilnet.conf, the default dataset and
 * capsule/), built once, as a worker holds it. */
struct site *unit_site(void);

/* n bytes as a C string literal's text (escapes for the rest of ASCII and
 * beyond), for naming a case by its input; malloc'd. */
char *unit_quote(const void *p, size_t n);

/* The bytes of a reply as a string ("" for none), for comparing. */
char *unit_reply_head(const struct reply *r);  /* up to its first CRLF */

/* A file in the run's scratch folder (removed at the end) holding text;
 * its path, which stays valid until the end. */
const char *unit_file(const char *name, const char *text);

#endif
