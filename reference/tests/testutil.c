/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int rfd_test_failures;
static const char *skip_reason;

bool
rfd_test_under_valgrind(void)
{
	const char *v = getenv("RFD_UNDER_VALGRIND");

	return v && *v && strcmp(v, "0") != 0;
}

void
rfd_test_skip(const char *why)
{
	skip_reason = why;
}

void
rfd_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	rfd_test_failures++;
}

int
rfd_test_count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *entry;
	int n = 0;

	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1; /* the directory's own FD */
}

bool
rfd_test_fd_is_open(int fd)
{
	return fd >= 0 && (fcntl(fd, F_GETFD) >= 0 || errno != EBADF);
}

size_t
rfd_test_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*hex && n < cap) {
		unsigned value;

		if (isspace((unsigned char)*hex)) {
			hex++;
			continue;
		}
		if (sscanf(hex, "%2x", &value) != 1)
			break;
		out[n++] = (uint8_t)value;
		hex += 2;
	}
	return n;
}

int
rfd_test_main(int argc, char **argv, const struct rfd_test *tests)
{
	int passed = 0, failed = 0, skipped = 0;

	for (const struct rfd_test *t = tests; t->name; t++) {
		int before_failures = rfd_test_failures;
		int fds_before, fds_after;

		if (argc > 1 && !strstr(t->name, argv[1]))
			continue;

		fds_before = rfd_test_count_fds();
		skip_reason = NULL;
		t->fn();
		fds_after = rfd_test_count_fds();
		if (fds_after != fds_before)
			rfd_test_fail(__FILE__, __LINE__, "%s: FD leak: %d open before, %d after",
			              t->name, fds_before, fds_after);

		if (skip_reason && rfd_test_failures == before_failures) {
			skipped++;
			printf("skip %s: %s\n", t->name, skip_reason);
		} else if (rfd_test_failures == before_failures) {
			passed++;
			printf("ok   %s\n", t->name);
		} else {
			failed++;
			printf("FAIL %s\n", t->name);
		}
		fflush(stdout);
	}
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

bool
rfd_test_reads_eof(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&pfd, 1, 0) == 1 && read(fd, &c, 1) == 0;
}

bool
rfd_test_closed_soon(int fd)
{
	for (int i = 0; i < 200; i++) {
		if (rfd_test_reads_eof(fd))
			return true;
		usleep(10000);
	}
	return false;
}

bool
rfd_test_is_fifo(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}
