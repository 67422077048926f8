/*
 * fuzz_config.c: libFuzzer target for the config loader: the input is written
 * to a file that config_load reads (libconfig's parser, then every setting's
 * checks), then freed. Inputs with @include are skipped: an include can name
 * any file, a device that blocks included; the config is the operator's, and
 * what matters here is that no file content crashes the loader.
 */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/kilnet-fuzz-config.XXXXXX";

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/k.conf", dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct diag d = { 0 };
	FILE *fp;

	if (path[0] == '\0')
		LLVMFuzzerInitialize(NULL, NULL);
	if (memmem(data, size, "@include", 8) != NULL)
		return 0;
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, fp) != size)
		abort();
	fclose(fp);
	if (config_load(path, &cfg, &d) == 0) {
		config_finish(&cfg);
		config_free(&cfg);
	} else if (d.n == 0)
		abort();	/* failed without saying why */
	diag_clear(&d);
	return 0;
}
