/* SPDX-License-Identifier: MIT */
/*
 * A small test framework: CHECK macros that record failures and go on,
 * TEST() registration through a table in each test file, and an FD-leak
 * check around every test (the set of open FDs before and after must match).
 */
#ifndef RFD_TESTUTIL_H
#define RFD_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern int rfd_test_failures;

void rfd_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			rfd_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ != check_b_)                                                          \
			rfd_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,        \
			              check_a_, check_b_);                                         \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                         \
	do {                                                                                       \
		if (memcmp((a), (b), (n)) != 0)                                                    \
			rfd_test_fail(__FILE__, __LINE__, "memcmp(%s, %s, %s) != 0", #a, #b, #n);  \
	} while (0)

/* Stop the current test when a check it depends on failed. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			rfd_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                   \
			return;                                                                    \
		}                                                                                  \
	} while (0)

struct rfd_test {
	const char *name;
	void (*fn)(void);
};

/*
 * Run every test in @tests (NULL-terminated), each with an FD-leak check.
 * Prints one line per test and a closing "N passed, N failed" line; returns
 * the process exit status.  With argv[1], runs only the tests whose name
 * contains it.
 */
int rfd_test_main(int argc, char **argv, const struct rfd_test *tests);

/* True when the tests run under valgrind (ci/valgrind sets RFD_UNDER_VALGRIND). */
bool rfd_test_under_valgrind(void);

/* Mark the current test skipped, with the reason; it counts as neither passed nor failed. */
void rfd_test_skip(const char *why);

/* Number of open FDs in this process (from /proc/self/fd). */
int rfd_test_count_fds(void);

/* True when @fd is open in this process. */
bool rfd_test_fd_is_open(int fd);

/* True when the pipe whose read end is @fd has no writer left and nothing to read. */
bool rfd_test_reads_eof(int fd);

/* rfd_test_reads_eof(), waiting up to 2 s for the last writer to go. */
bool rfd_test_closed_soon(int fd);

/* True when @fd is a pipe end. */
bool rfd_test_is_fifo(int fd);

/* Parse hex text ("00 0a ff", spaces ignored) into @out; returns the byte count. */
size_t rfd_test_hex(const char *hex, uint8_t *out, size_t cap);

#endif
