/* proxy.c: STUB, to be replaced: the PROXY protocol header parser. */
#include <sys/socket.h>
#include "kilnet.h"
long proxy_parse(const unsigned char *buf, size_t len, struct sockaddr_storage *src) { (void)buf; (void)len; (void)src; return -1; }
