/* SPDX-License-Identifier: MIT */
#include "target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_ARGS = 64, POLL_STEP_MS = 10 };

char **
target_split_command(const char *command)
{
	char **argv = calloc(MAX_ARGS + 1, sizeof(*argv));
	size_t n = 0;
	const char *p = command;

	if (!argv)
		return NULL;
	while (*p) {
		char word[4096];
		size_t len = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '\'' || *p == '"') {
				char quote = *p++;

				while (*p && *p != quote && len < sizeof(word) - 1)
					word[len++] = *p++;
				if (*p != quote)
					goto bad;
				p++;
			} else if (len < sizeof(word) - 1) {
				word[len++] = *p++;
			} else {
				goto bad;
			}
		}
		if (n == MAX_ARGS)
			goto bad;
		word[len] = '\0';
		argv[n++] = strdup(word);
	}
	if (n == 0)
		goto bad;
	return argv;
bad:
	target_free_argv(argv);
	return NULL;
}

void
target_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* In the child: stdio to the log, nothing else inherited, the limit set, then exec. */
static void __attribute__((noreturn))
exec_target(char *const argv[], const char *const extra[], const char *log_path)
{
	char *args[2 * MAX_ARGS + 1];
	size_t n = 0;
	int null_fd = open("/dev/null", O_RDONLY);
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (null_fd < 0 || log_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 ||
	    dup2(log_fd, 2) < 0)
		_exit(127);
	closefrom(3);
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	for (size_t i = 0; argv[i] && n < MAX_ARGS; i++)
		args[n++] = argv[i];
	for (size_t i = 0; extra && extra[i] && n < 2 * MAX_ARGS; i++)
		args[n++] = (char *)extra[i];
	args[n] = NULL;
	execvp(args[0], args);
	fprintf(stderr, "rfd-conform: cannot run %s: %s\n", args[0], strerror(errno));
	_exit(127);
}

pid_t
target_start(char *const argv[], const char *const extra[], const char *log_path)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0)
		exec_target(argv, extra, log_path);
	return pid;
}

int
target_limit_fds(pid_t pid, int room, struct rlimit *saved)
{
	struct rlimit limit;
	int open_fds = target_count_fds(pid);

	if (open_fds < 0)
		return -ESRCH;
	if (prlimit(pid, RLIMIT_NOFILE, NULL, saved) < 0)
		return -errno;
	limit.rlim_cur = (rlim_t)(open_fds + room);
	limit.rlim_max = saved->rlim_max;
	return prlimit(pid, RLIMIT_NOFILE, &limit, NULL) < 0 ? -errno : 0;
}

int
target_restore_fds(pid_t pid, const struct rlimit *saved)
{
	return prlimit(pid, RLIMIT_NOFILE, saved, NULL) < 0 ? -errno : 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
target_wait(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= deadline)
			return -1;
		poll(NULL, 0, POLL_STEP_MS);
	}
}

int
target_stop(pid_t pid, int grace_ms)
{
	int status;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	status = target_wait(pid, grace_ms);
	if (status != -1)
		return status;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	return target_wait(pid, 5000);
}

int
target_wait_listening(const char *path, pid_t pid, int timeout_ms)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + timeout_ms;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path));
	for (;;) {
		int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int r;

		if (sock < 0)
			return -errno;
		r = connect(sock, (struct sockaddr *)&addr, sizeof(addr));
		close(sock);
		if (r == 0)
			return 0;
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, POLL_STEP_MS);
	}
}

int
target_count_fds(pid_t pid)
{
	char path[64];
	DIR *dir;
	struct dirent *entry;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int
target_stable_fds(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int last = target_count_fds(pid), n;

	/* The readiness probe's connection may still be open: wait for two equal readings. */
	for (;;) {
		poll(NULL, 0, 2 * POLL_STEP_MS);
		n = target_count_fds(pid);
		if (n == last || now_ms() >= deadline)
			return n;
		last = n;
	}
}

int
target_settle_fds(pid_t pid, int expected, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int n;

	while ((n = target_count_fds(pid)) > expected && now_ms() < deadline)
		poll(NULL, 0, POLL_STEP_MS);
	return n;
}

void
target_log_tail(const char *log_path, char *out, size_t max_bytes)
{
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)(max_bytes - 1))
		lseek(fd, size - (off_t)(max_bytes - 1), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, out, max_bytes - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}
