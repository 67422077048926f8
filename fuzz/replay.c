/*
 * replay.c: runs a fuzz target's LLVMFuzzerTestOneInput on each file given
 * (folders: each file in them), without libFuzzer, so "make test" replays the
 * corpora and every crash once found with the normal compiler and the ASan
 * build. Prints one line per file and exits 1 if any cannot be read.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"

/* Targets without set-up leave this weak symbol NULL. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
run_file(const char *path)
{
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, n;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			data = xrealloc(data, cap);
		}
		n = fread(data + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	/* An exact-size copy, so ASan sees a read past the end. */
	unsigned char *exact = xmalloc(len ? len : 1);
	memcpy(exact, data, len);
	free(data);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	printf("replayed %s (%zu bytes)\n", path, len);
	return 0;
}

static int
run_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, rc = 0;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		if ((n = scandir(path, &names, NULL, alphasort)) < 0) {
			fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			if (names[i]->d_name[0] != '.') {
				char *p = xasprintf("%s/%s", path, names[i]->d_name);

				if (run_path(p) == -1)
					rc = -1;
				free(p);
			}
			free(names[i]);
		}
		free(names);
		return rc;
	}
	return run_file(path);
}

int
main(int argc, char **argv)
{
	int rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i]) == -1)
			rc = 1;
	return rc;
}
