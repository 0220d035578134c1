/* SPDX-License-Identifier: MIT */
/*
 * Preloaded by ci/valgrind-check: lists /proc/self/fd when the program starts
 * and again when it exits normally, and reports every FD open at exit that
 * was not open at the start.  It sees what valgrind does not track (pidfds
 * from SO_PEERPIDFD or pidfd_open, FDs from syscalls valgrind does not wrap).
 * The report goes to the file named by RFD_FD_EXIT_REPORT.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

enum { MAX_TRACKED = 4096 };

static unsigned char open_at_start[MAX_TRACKED];

static int
list_fds(void (*each)(int fd))
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *entry;
	int own;

	if (!dir)
		return -1;
	own = dirfd(dir);
	while ((entry = readdir(dir))) {
		int fd;

		if (entry->d_name[0] == '.')
			continue;
		fd = atoi(entry->d_name);
		if (fd != own)
			each(fd);
	}
	closedir(dir);
	return 0;
}

static void
remember(int fd)
{
	if (fd >= 0 && fd < MAX_TRACKED)
		open_at_start[fd] = 1;
}

static FILE *report;
static long first_not_ours; /* valgrind keeps its own FDs above the client's limit */

static void
report_new(int fd)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	if ((fd >= 0 && fd < MAX_TRACKED && open_at_start[fd]) || fd >= first_not_ours)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	fprintf(report, "pid %d: FD %d open at exit: %s\n", (int)getpid(), fd, target);
}

static void __attribute__((constructor)) at_start(void)
{
	list_fds(remember);
}

static void __attribute__((destructor)) at_exit(void)
{
	const char *path = getenv("RFD_FD_EXIT_REPORT");
	struct rlimit limit;

	if (!path)
		return;
	first_not_ours = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? (long)limit.rlim_cur : LONG_MAX;
	report = fopen(path, "ae");
	if (!report)
		return;
	open_at_start[fileno(report)] = 1;
	list_fds(report_new);
	fclose(report);
}
