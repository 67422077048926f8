/*
 * sandbox.c: what a worker gives up before it serves. Started as root, it
 * leaves root for server.user and the file system for server.chroot.
 * privs_resolve runs in the master (at start and on each reload), so that a
 * missing user or folder is an error then, not a dying worker later.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kilnet.h"

/* Started as root, workers switch to server.user; the user must exist now,
 * not at the first fork (then the error would be a dying worker). */
int
privs_resolve(const struct config *cfg, struct privs *p)
{
	const char *user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	struct passwd *pw;
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->master = getpid();
	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_error("server.user: no such user: %s", user);
		return -1;
	}
	if (cfg->chroot_dir != NULL && *cfg->chroot_dir != '\0') {
		if (stat(cfg->chroot_dir, &st) == -1) {
			log_error("server.chroot: %s: %s", cfg->chroot_dir,
			    strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			log_error("server.chroot: %s: not a folder", cfg->chroot_dir);
			return -1;
		}
	}
	p->drop = 1;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->user = cfg->user != NULL && *cfg->user ? cfg->user : "nobody";
	return 0;
}

/* Sockets are bound and keys read (by the master): from here on a worker needs
 * neither root nor the files outside its chroot. */
int
privs_drop(const struct config *cfg, const struct privs *p)
{
	if (!p->drop)
		return 0;
	if (cfg->chroot_dir != NULL && *cfg->chroot_dir != '\0' &&
	    (chroot(cfg->chroot_dir) == -1 || chdir("/") == -1)) {
		log_error("cannot chroot to %s (server.chroot): %s", cfg->chroot_dir,
		    strerror(errno));
		return -1;
	}
	if (setgroups(1, &p->gid) == -1 || setgid(p->gid) == -1 ||
	    setuid(p->uid) == -1) {
		log_error("cannot switch to user %s (server.user): %s", p->user,
		    strerror(errno));
		return -1;
	}
	if (p->uid != 0 && setuid(0) != -1) {
		log_error("user %s (server.user): root could be regained", p->user);
		return -1;
	}
#if defined(__SANITIZE_ADDRESS__)
	/* The leak checker reads this process through ptrace at exit, which a
	 * process that changed its user refuses; sanitizer builds only. */
	prctl(PR_SET_DUMPABLE, 1);
#endif
	return 0;
}
