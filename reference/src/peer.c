/* SPDX-License-Identifier: MIT */
/* The peer's identity taken at accept, and the pidfd helpers of the public API. */

/* Before cmsg.h: its fallback SO_PEERPIDFD must not shadow the system's. */
#include <sys/socket.h>

#include "peer.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cmsg.h" /* SO_PEERPIDFD */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define PID_MAX_PATH "/proc/sys/kernel/pid_max"

enum {
	FALLBACK_TRIES = 3,
	NUMBER_TEXT_MAX = 32,
	FDINFO_TEXT_MAX = 1024,
};

const struct rfd_peer rfd_peer_unknown = {.pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1};

/* ---- The identity ---- */

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
read_cred(int sock, struct rfd_peer *cred)
{
	struct ucred ucred;
	socklen_t len = sizeof(ucred);

	assert(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &ucred, &len) < 0) {
		*cred = rfd_peer_unknown;
		return -errno;
	}
	cred->pid = ucred.pid;
	cred->uid = ucred.uid;
	cred->gid = ucred.gid;
	return 0;
}

/* The pidfd SO_PEERPIDFD gives, or a negative errno (-ENOPROTOOPT: the kernel has no such option).
 */
static int
read_peer_pidfd(int sock)
{
	socklen_t len;
	int fd = -1;

	len = sizeof(fd);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) < 0)
		return -errno;
	return fd;
}

static int
open_pidfd(pid_t pid)
{
	long fd;

	if (pid <= 0)
		return -ESRCH;
	fd = syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : (int)fd;
}

long long
rfd_read_pid_max(const char *path)
{
	char text[NUMBER_TEXT_MAX], *end;
	long long value;
	ssize_t n;
	int fd, r;

	fd = open(path ? path : PID_MAX_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	text[n] = '\0';
	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || end == text || (*end && *end != '\n') || value <= 0)
		return -EINVAL;
	return value;
}

bool
rfd_pidfd_fallback_ok(long long pid_max, long long start_ns, long long end_ns)
{
	return pid_max >= RFD_PID_MAX_SAFE && end_ns >= start_ns &&
	       end_ns - start_ns < RFD_PIDFD_WINDOW_NS;
}

/*
 * Read the credentials and pidfd_open() their pid, within the window of the
 * fallback's rule.  The pidfd, or a negative errno (-ERANGE when pid_max is
 * too low for the rule, -ETIME when every try took too long).  *cred is
 * filled either way.
 */
static int
fallback_pidfd(int sock, const char *pid_max_path, struct rfd_peer *cred)
{
	long long pid_max = rfd_read_pid_max(pid_max_path);
	int r = read_cred(sock, cred);

	assert(cred);

	if (r < 0)
		return r;
	if (pid_max < 0)
		return (int)pid_max;
	if (pid_max < RFD_PID_MAX_SAFE)
		return -ERANGE;
	for (int i = 0; i < FALLBACK_TRIES; i++) {
		long long start = now_ns();
		int fd;

		r = read_cred(sock, cred);
		if (r < 0)
			return r;
		fd = open_pidfd(cred->pid);
		if (fd < 0)
			return fd;
		if (rfd_pidfd_fallback_ok(pid_max, start, now_ns()))
			return fd;
		close(fd);
	}
	return -ETIME;
}

int
rfd_identity_new(int sock, const struct rfd_identity_source *source, struct rfd_identity **out)
{
	static const struct rfd_identity_source defaults = {0};
	struct rfd_identity *identity;
	int fd;

	assert(out);

	*out = NULL;
	if (!source)
		source = &defaults;
	identity = rfd_calloc(1, sizeof(*identity));
	if (!identity)
		return -ENOMEM;
	identity->refs = 1;

	fd = source->peer_pidfd_error ? -source->peer_pidfd_error : read_peer_pidfd(sock);
	if (fd >= 0) {
		identity->pinned = true;
		read_cred(sock, &identity->cred);
	} else if (fd == -ENOPROTOOPT) {
		fd = fallback_pidfd(sock, source->pid_max_path, &identity->cred);
	} else {
		read_cred(sock, &identity->cred);
	}
	identity->pidfd = fd >= 0 ? fd : -1;
	*out = identity;
	return 0;
}

struct rfd_identity *
rfd_identity_ref(struct rfd_identity *identity)
{
	assert(identity);
	assert(identity->refs > 0);

	identity->refs++;
	return identity;
}

void
rfd_identity_unref(struct rfd_identity *identity)
{
	if (!identity)
		return;
	assert(identity->refs > 0);
	if (--identity->refs > 0)
		return;
	if (identity->pidfd >= 0)
		close(identity->pidfd);
	rfd_free(identity);
}

/* ---- Helpers of the public API ---- */

int
rfd_pidfd_alive(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int n;

	if (pidfd < 0)
		return -EBADF;
	do
		n = poll(&p, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	/* A pidfd is readable once its process has exited; POLLHUP once it was reaped. */
	return (p.revents & (POLLIN | POLLHUP)) ? 0 : 1;
}

/*
 * The pid of @pidfd's process as this process's /proc sees it (the "Pid:"
 * line of its fdinfo), -ESRCH once it has exited and been reaped or when it
 * is in no pid namespace /proc can see, -EBADF when @pidfd is no pidfd.
 */
static int
pidfd_pid(int pidfd)
{
	char path[64], text[FDINFO_TEXT_MAX], *line;
	ssize_t n;
	long pid;
	int fd, r;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return fcntl(pidfd, F_GETFD) < 0 ? -EBADF : -ENOENT; /* no FD, or no /proc */
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	text[n] = '\0';
	line = strstr(text, "\nPid:");
	if (!line)
		return -EBADF;
	pid = strtol(line + strlen("\nPid:"), NULL, 10);
	return pid > 0 && pid <= INT_MAX ? (int)pid : -ESRCH;
}

/*
 * Read the file, or the target of the link, @name below @dir into @buf: the
 * byte count, or a negative errno.
 */
static int
read_entry(int dir, const char *name, char *buf, size_t size)
{
	struct stat st;
	size_t used = 0;
	ssize_t n;
	int fd, r = 0;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		n = readlinkat(dir, name, buf, size - 1);
		return n < 0 ? -errno : (int)n;
	}
	fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	while (used < size - 1) {
		n = read(fd, buf + used, size - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	return r < 0 ? r : (int)used;
}

/*
 * Limitation: this needs /proc mounted for this process's pid namespace;
 * without it the read fails with -ENOENT (or -ESRCH), and never reads
 * another process's entry.
 */
int
rfd_pidfd_read_proc(int pidfd, const char *name, char *buf, size_t size)
{
	char path[64];
	int pid, dir, n, alive;

	if (pidfd < 0 || !name || !*name || name[0] == '/' || strstr(name, "..") || !buf ||
	    size == 0 || size > INT_MAX)
		return -EINVAL;
	buf[0] = '\0';
	pid = pidfd_pid(pidfd);
	if (pid < 0)
		return pid;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read_entry(dir, name, buf, size);
	close(dir);
	/* Running after the read: the pid was still the pidfd's process's when it was read. */
	alive = rfd_pidfd_alive(pidfd);
	if (alive <= 0)
		n = alive < 0 ? alive : -ESRCH;
	if (n < 0) {
		buf[0] = '\0';
		return n;
	}
	buf[n] = '\0';
	return n;
}
