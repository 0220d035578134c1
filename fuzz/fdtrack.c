/* SPDX-License-Identifier: MIT */
#include "fdtrack.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuzz.h"

enum {
	FIRST_POOL_FD = 3, /* never stdin, stdout or stderr */
	SPARE_FDS = 64,    /* left for the fuzzer's own descriptors */
	FD_MAP_SIZE = 1 << 16,
};

struct pool_entry {
	int fd;
	unsigned closes;
	bool issued;
};

static struct pool_entry pool[FDTRACK_POOL_SIZE];
static size_t pool_size;
static size_t n_issued;
/* FD number -> pool index + 1 (0: not a pool FD). */
static uint16_t fd_to_entry[FD_MAP_SIZE];
static bool armed;

static void
raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return;
	if (limit.rlim_cur >= FDTRACK_POOL_SIZE + SPARE_FDS)
		return;
	limit.rlim_cur = limit.rlim_max < FDTRACK_POOL_SIZE + SPARE_FDS
	                     ? limit.rlim_max
	                     : FDTRACK_POOL_SIZE + SPARE_FDS;
	setrlimit(RLIMIT_NOFILE, &limit);
}

/* At exit the pool goes too, so that a leak checker sees no FD left open. */
static void
close_pool(void)
{
	armed = false;
	for (size_t i = 0; i < pool_size; i++)
		syscall(SYS_close, pool[i].fd);
	pool_size = 0;
}

void
fdtrack_init(void)
{
	int null_fd;

	if (pool_size)
		return;
	atexit(close_pool);
	raise_fd_limit();
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0)
		fuzz_fail("cannot open /dev/null for the FD pool");
	while (pool_size < FDTRACK_POOL_SIZE) {
		int fd = fcntl(null_fd, F_DUPFD_CLOEXEC, FIRST_POOL_FD);

		if (fd < 0)
			break;
		if (fd >= FD_MAP_SIZE) {
			syscall(SYS_close, fd);
			break;
		}
		pool[pool_size].fd = fd;
		fd_to_entry[fd] = (uint16_t)(pool_size + 1);
		pool_size++;
	}
	syscall(SYS_close, null_fd);
	if (pool_size < FDTRACK_POOL_SIZE / 4)
		fuzz_fail("only %zu FDs for the pool: raise the open-file limit", pool_size);
}

void
fdtrack_begin(void)
{
	if (!pool_size)
		fdtrack_init();
	for (size_t i = 0; i < n_issued; i++) {
		pool[i].issued = false;
		pool[i].closes = 0;
	}
	n_issued = 0;
	armed = true;
}

void
fdtrack_end(void)
{
	armed = false;
}

int
fdtrack_issue(void)
{
	if (n_issued == pool_size)
		return -1;
	pool[n_issued].issued = true;
	return pool[n_issued++].fd;
}

size_t
fdtrack_available(void)
{
	return pool_size - n_issued;
}

static struct pool_entry *
entry_of(int fd)
{
	if (fd < 0 || fd >= FD_MAP_SIZE || fd_to_entry[fd] == 0)
		return NULL;
	return &pool[fd_to_entry[fd] - 1];
}

bool
fdtrack_issued(int fd)
{
	struct pool_entry *e = entry_of(fd);

	return e && e->issued;
}

unsigned
fdtrack_closes(int fd)
{
	struct pool_entry *e = entry_of(fd);

	return e ? e->closes : 0;
}

size_t
fdtrack_count(void)
{
	return n_issued;
}

int
fdtrack_fd(size_t index)
{
	return index < n_issued ? pool[index].fd : -1;
}

/* Every close() of the process, the library's included, comes here. */
int
close(int fd)
{
	struct pool_entry *e;

	if (!armed)
		return (int)syscall(SYS_close, fd);
	e = entry_of(fd);
	if (!e || !e->issued)
		fuzz_fail("close(%d): not an FD the harness handed out in this run", fd);
	if (e->closes)
		fuzz_fail("close(%d): closed twice", fd);
	e->closes++;
	return 0;
}
