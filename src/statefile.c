/*
 * statefile.c: files in the state folder, reached only through a folder's
 * descriptor and never through a symbolic link: read whole, written whole
 * and durable under a new name (then renamed into place by the caller).
 * The editing process (editor.c) and the store process (store_etcd.c) use
 * them; neither follows a link an editor could have made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

int
sf_read_fd(int fd, struct buf *out)
{
	char tmp[65536];
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(out, tmp, (size_t)n);
	if (out->data == NULL)
		buf_add(out, "", 0);
	return n < 0 ? -1 : 0;
}

/* The whole file NAME in folder dirfd, never through a symbolic link. */
int
sf_read_at(int dirfd, const char *name, struct buf *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

	if (fd == -1)
		return -1;
	rc = sf_read_fd(fd, out);
	close(fd);
	return rc;
}

/* data, whole and on disk, in a new file NAME in folder dirfd. */
int
sf_write_new(int dirfd, const char *name, const void *data, size_t len, int mode)
{
	const unsigned char *p = data;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, mode);

	if (fd == -1)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			unlinkat(dirfd, name, 0);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		unlinkat(dirfd, name, 0);
		return -1;
	}
	return 0;
}

int
sf_open_dir(int dirfd, const char *name, int make)
{
	if (make && mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---------------------------------------------------------------- versions */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The versions' names, oldest first (they start with the time). */
size_t
sf_list_versions(int vfd, char ***out)
{
	int fd = vfd != -1 ? openat(vfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *dp = fd != -1 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	if (dp == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf"))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return n;
}

void
sf_free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A version's name as version_name makes them: nothing else is read. */
int
sf_version_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 6 || n > 100 || s[0] == '.' || strcmp(s + n - 5, ".conf") != 0)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '.'))
			return 0;
	return 1;
}
