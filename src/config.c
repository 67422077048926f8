/* config.c: STUB, to be replaced: libconfig file -> struct config. */
#include <string.h>
#include "kilnet.h"
int config_load(const char *file, struct config *cfg, struct diag *d)
{ (void)cfg; diag_add(d, file, 0, NULL, "config loader not written yet"); return -1; }
void config_finish(struct config *cfg) { (void)cfg; }
void config_free(struct config *cfg) { (void)cfg; }
int config_parse_listen(const char *s, struct listen_addr *la) { (void)s; (void)la; return -1; }
