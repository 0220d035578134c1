/* SPDX-License-Identifier: MIT */
/* Starting, watching and stopping the implementation under test. */
#ifndef RFD_CONFORM_TARGET_H
#define RFD_CONFORM_TARGET_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

struct target {
	char **argv; /* the command, split without a shell; NULL: not launched by us */
	pid_t pid;
	char log_path[256]; /* its stdout and stderr */
};

/*
 * Split @command at white space, honouring '...' and "..." quoting (no other
 * shell syntax).  Returns a NULL-terminated vector, or NULL on a syntax error.
 */
char **target_split_command(const char *command);
void target_free_argv(char **argv);

/*
 * Start @argv with @extra arguments appended, output to @log_path, all other
 * FDs closed, in a process group of its own.  Returns the pid or a negative errno.
 */
pid_t target_start(char *const argv[], const char *const extra[], const char *log_path);

/*
 * Lower @pid's soft RLIMIT_NOFILE so that it can open only @room more FDs
 * (judged by its open FD count); *saved receives the old limit.  0 or -errno.
 */
int target_limit_fds(pid_t pid, int room, struct rlimit *saved);
int target_restore_fds(pid_t pid, const struct rlimit *saved);

/* SIGTERM, then SIGKILL after @grace_ms.  Returns the wait status, or -1. */
int target_stop(pid_t pid, int grace_ms);

/* Wait up to @timeout_ms for @pid to exit by itself.  Returns its wait status or -1. */
int target_wait(pid_t pid, int timeout_ms);

/* Poll until something accepts connections at @path, up to @timeout_ms; 0 or -ETIMEDOUT. */
int target_wait_listening(const char *path, pid_t pid, int timeout_ms);

/* How many FDs @pid has open (from /proc), or -1. */
int target_count_fds(pid_t pid);

/* @pid's open FD count once it stopped changing (at most @timeout_ms), or -1. */
int target_stable_fds(pid_t pid, int timeout_ms);

/*
 * Wait up to @timeout_ms for @pid's open FD count to come back to @expected
 * or below (closing may trail the answer).  Returns the last count seen.
 */
int target_settle_fds(pid_t pid, int expected, int timeout_ms);

/* The last @max_bytes of the log, for failure reports. */
void target_log_tail(const char *log_path, char *out, size_t max_bytes);

#endif
