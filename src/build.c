/*
 * build.c: the site, built by a process that has given up root. The master
 * parses the operator's config (and its seed dataset); what editors wrote
 * (STATE/network.conf, the capsule overlay) is read and parsed only here, in
 * a child that first opens the folders it needs, then drops to server.user
 * (chroot too), keeps only those folders (Landlock) and enters a filter of
 * its own (sandbox.c). It renders the whole site and hands it to the master
 * as site_wire records on a pipe, the only thing the master reads from it.
 * It reports its own problems: to stderr at start, to the log on a reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"

/* A build is the dataset's parse and render: 0.4 s at 10,000 members, and an
 * editor's dataset was checked within a few seconds. Past this it is stuck. */
#define BUILD_DEADLINE_MS 60000

static void
report(const struct diag *d, int reloading, int errors)
{
	for (size_t i = 0; i < d->n; i++) {
		int warning = strncmp(d->msgs[i], "warning: ", 9) == 0;

		if (!reloading)
			fprintf(stderr, "kilnet: %s\n", d->msgs[i]);
		else if (errors && !warning)
			log_error("%s", d->msgs[i]);
		else
			log_warn("%s", warning ? d->msgs[i] + 9 : d->msgs[i]);
	}
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* In the child: the whole build, then the site down the pipe. */
static int
builder(struct config *cfg, const struct privs *p, int out, int reloading)
{
	int state_fd = -1, capsule_fd = -1, fds[2];
	struct site_src src = { -1, -1, NULL, NULL, 0 };
	struct diag d = { 0 };
	struct buf b = { 0 };
	struct site *s;
	char *name;

	if (cfg->state_dir != NULL)
		state_fd = open(cfg->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cfg->capsule_dir != NULL)
		capsule_fd = open(cfg->capsule_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fds[0] = state_fd;
	fds[1] = capsule_fd;
	if (privs_drop(p) == -1 ||
	    sandbox_enter_role(cfg, SANDBOX_BUILDER, fds, 2) == -1)
		return 1;
	if (state_fd != -1) {
		int fd = openat(state_fd, STATE_DATASET, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);

		src.overlay_fd = openat(state_fd, STATE_CAPSULE, O_PATH |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != -1) {
			struct buf t = { 0 };
			char chunk[65536];
			ssize_t n;

			while ((n = read(fd, chunk, sizeof(chunk))) > 0)
				buf_add(&t, chunk, (size_t)n);
			close(fd);
			name = xasprintf("%s/" STATE_DATASET, cfg->state_dir);
			if (n < 0)
				diag_add(&d, name, 0, NULL, "cannot read: %s",
				    strerror(errno));
			else
				config_read_dataset(cfg, t.data, t.len, name, &d);
			buf_free(&t);
			if (d.n > 0) {
				report(&d, reloading, 1);
				if (reloading)
					log_error("%s: %zu error%s", name, d.n,
					    d.n == 1 ? "" : "s");
				else
					fprintf(stderr, "kilnet: %s: %zu error%s, "
					    "nothing served\n", name, d.n,
					    d.n == 1 ? "" : "s");
				free(name);
				return 1;
			}
			free(cfg->dataset_file);
			cfg->dataset_file = name;
		}
	}
	src.capsule_fd = capsule_fd;
	s = site_build_from(cfg, &src, &d);
	report(&d, reloading, s == NULL);
	if (s == NULL)
		return 1;
	site_wire_write(s, &b);
	return write_all(out, b.data, b.len) == 0 ? 0 : 1;
}

int
build_start(struct build *b, struct config *cfg, const struct privs *p,
    int reloading)
{
	int fds[2];

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	if (pipe2(fds, O_CLOEXEC) == -1 || (b->pid = fork()) == -1) {
		log_error("cannot start the site builder: %s", strerror(errno));
		return -1;
	}
	if (b->pid == 0) {
		fd_close_all_but(&fds[1], 1);
		log_process("kilnet-build");
		signal(SIGPIPE, SIG_IGN);
		_exit(builder(cfg, p, fds[1], reloading));
	}
	close(fds[1]);
	b->fd = fds[0];
	fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) | O_NONBLOCK);
	b->deadline = now_ms() + BUILD_DEADLINE_MS;
	return 0;
}

void
build_cancel(struct build *b)
{
	if (b->pid > 0 && !b->reaped) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
	}
	if (b->fd != -1)
		close(b->fd);
	buf_free(&b->in);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

int
build_step(struct build *b, struct site **out)
{
	char chunk[65536], err[128];
	ssize_t n;
	int st;

	*out = NULL;
	for (;;) {
		n = read(b->fd, chunk, sizeof(chunk));
		if (n > 0) {
			buf_add(&b->in, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (now_ms() < b->deadline)
				return 0;
			log_error("the site builder (pid %d) took more than %d s: "
			    "stopped", (int)b->pid, BUILD_DEADLINE_MS / 1000);
			build_cancel(b);
			return 1;
		}
		break;
	}
	/* The end of the pipe: the builder has said all it will. */
	if (b->reaped)
		st = b->status;
	else if (waitpid(b->pid, &st, 0) != b->pid)
		st = -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if ((*out = site_wire_read(b->in.data, b->in.len, err,
		    sizeof(err))) == NULL)
			log_error("the site builder's site is not whole: %s", err);
	} else if (WIFSIGNALED(st)) {
		log_error("the site builder (pid %d) was killed by signal %d",
		    (int)b->pid, WTERMSIG(st));
	}
	b->pid = 0;
	build_cancel(b);
	return 1;
}

struct site *
build_run(struct config *cfg, const struct privs *p, int reloading)
{
	struct build b;
	struct site *s = NULL;

	if (build_start(&b, cfg, p, reloading) == -1)
		return NULL;
	for (;;) {
		struct pollfd pfd = { b.fd, POLLIN, 0 };

		poll(&pfd, 1, 250);
		if (build_step(&b, &s) == 1)
			return s;
	}
}
