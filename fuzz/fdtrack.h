/* SPDX-License-Identifier: MIT */
/*
 * Real FDs for the code under test, and an account of every close() of them.
 *
 * A pool of descriptors (duplicates of one /dev/null, all above stderr) is
 * opened once per process.  A run hands them out with fdtrack_issue(); each
 * is a distinct open FD that nothing else in the process uses.  close() is
 * interposed: while a run is on, closing an issued FD is recorded (the
 * descriptor itself stays open, to be issued again in the next run, so a
 * million runs open no FD), closing one twice aborts, and closing any other
 * number aborts without touching it.  Outside a run close() is the real one.
 */
#ifndef RFD_FUZZ_FDTRACK_H
#define RFD_FUZZ_FDTRACK_H

#include <stdbool.h>
#include <stddef.h>

enum {
	FDTRACK_POOL_SIZE = 1024,
};

/* Open the pool (and raise RLIMIT_NOFILE if it must).  Aborts if it cannot. */
void fdtrack_init(void);

/* Start a run: nothing issued, nothing closed. */
void fdtrack_begin(void);
/* End it: close() is the real one again. */
void fdtrack_end(void);

/* A pool FD not issued yet in this run, or -1 when the pool is used up. */
int fdtrack_issue(void);
/* How many more fdtrack_issue() can hand out in this run. */
size_t fdtrack_available(void);

/* Whether @fd was issued in this run. */
bool fdtrack_issued(int fd);
/* How many times @fd was closed in this run (0 or 1: a second close aborts). */
unsigned fdtrack_closes(int fd);

/* The FDs issued in this run, in order. */
size_t fdtrack_count(void);
int fdtrack_fd(size_t index);

#endif
