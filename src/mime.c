/*
 * mime.c: MIME types of capsule files, by extension, and the Gopher item type
 * of each. Used at load by site.c
 * (Gemini META, Gopher item types); never on the request path.
 */
#include <string.h>
#include <strings.h>

#include "kilnet.h"

static const struct {
	const char *ext;
	const char *mime;
} types[] = {
	/*
	 * Hand-written gemtext says nothing of its language, so no lang= here;
	 * the generated pages, whose language is known, carry lang=en.
	 */
	{ "gmi",   "text/gemini; charset=utf-8" },
	{ "gemini","text/gemini; charset=utf-8" },
	{ "txt",   "text/plain; charset=utf-8" },
	{ "md",    "text/markdown; charset=utf-8" },
	{ "csv",   "text/csv; charset=utf-8" },
	{ "css",   "text/css; charset=utf-8" },
	{ "html",  "text/html; charset=utf-8" },
	{ "htm",   "text/html; charset=utf-8" },
	{ "xml",   "application/xml" },
	{ "atom",  "application/atom+xml" },
	{ "rss",   "application/rss+xml" },
	{ "json",  "application/json" },
	{ "js",    "text/javascript; charset=utf-8" },
	{ "pdf",   "application/pdf" },
	{ "png",   "image/png" },
	{ "jpg",   "image/jpeg" },
	{ "jpeg",  "image/jpeg" },
	{ "gif",   "image/gif" },
	{ "svg",   "image/svg+xml" },
	{ "webp",  "image/webp" },
	{ "ico",   "image/vnd.microsoft.icon" },
	{ "mp3",   "audio/mpeg" },
	{ "ogg",   "audio/ogg" },
	{ "flac",  "audio/flac" },
	{ "mp4",   "video/mp4" },
	{ "zip",   "application/zip" },
	{ "gz",    "application/gzip" },
	{ "tar",   "application/x-tar" },
};

const char *
mime_for(const char *name)
{
	const char *base = strrchr(name, '/'), *dot;

	base = base != NULL ? base + 1 : name;
	if ((dot = strrchr(base, '.')) != NULL && dot != base) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].mime;
	}
	return "application/octet-stream";
}

/* The RFC 1436 item type (and the common 'h', 'I' additions) for a MIME type;
 * capsule gemtext is offered as a menu, converted at load. */
char
gopher_type_for(const char *mime)
{
	if (strncmp(mime, "text/gemini", 11) == 0)
		return '1';
	if (strncmp(mime, "text/html", 9) == 0)
		return 'h';
	if (strncmp(mime, "text/", 5) == 0)
		return '0';
	if (strcmp(mime, "image/gif") == 0)
		return 'g';
	if (strncmp(mime, "image/", 6) == 0)
		return 'I';
	return '9';
}
