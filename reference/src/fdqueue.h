/* SPDX-License-Identifier: MIT */
/*
 * FD groups and the receive FIFO.  Each recvmsg() that delivers FDs adds one
 * group; its sequence number is the count of FDs received before it, modulo
 * 2^63.  A message that claims FDs (numFds, fdSeqNum) takes the group whose
 * sequence number matches.  Groups older than a claim belong to no message
 * and are closed at once.  No syscall other than close().
 */
#ifndef RFD_FDQUEUE_H
#define RFD_FDQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rfd_fdgroup {
	struct rfd_fdgroup *next;
	int64_t seq;
	size_t n;
	int fds[]; /* owned by whoever holds the group; -1 marks a released slot */
};

/* Sequence arithmetic modulo 2^63: values stay in [0, INT64_MAX]. */
int64_t rfd_seq_add(int64_t seq, int64_t n);

/* True when @a comes before @b in the sequence space (distance under 2^62). */
bool rfd_seq_before(int64_t a, int64_t b);

/*
 * A new group holding copies of @fds.  The group owns them from here on.
 * On allocation failure returns NULL having closed every one of @fds.
 */
struct rfd_fdgroup *rfd_fdgroup_new(const int *fds, size_t n);

/* Close every FD the group still owns and free it.  NULL is accepted. */
void rfd_fdgroup_free(struct rfd_fdgroup *g);

struct rfd_fdqueue {
	struct rfd_fdgroup *head;
	struct rfd_fdgroup *tail;
	int64_t next_seq;  /* sequence number of the next group to arrive */
	size_t queued_fds; /* FDs in the queue, for the budget */
	size_t n_groups;
};

void rfd_fdqueue_init(struct rfd_fdqueue *q);

/* Close every queued FD (the orphans of a closing connection). */
void rfd_fdqueue_clear(struct rfd_fdqueue *q);

/* Append @g (ownership moves to the queue); sets g->seq and advances next_seq. */
void rfd_fdqueue_push(struct rfd_fdqueue *q, struct rfd_fdgroup *g);

enum rfd_claim {
	RFD_CLAIM_OK = 0,     /* *out is the message's group, now the caller's */
	RFD_CLAIM_MISSING,    /* no group at or after @seq: the FDs never came */
	RFD_CLAIM_WRONG_SIZE, /* the group at @seq has another size: it was closed */
	RFD_CLAIM_AHEAD,      /* the head group is newer than @seq: left queued */
	RFD_CLAIM_INVALID,    /* @seq negative or @num outside 1..253: nothing touched */
};

/*
 * Take the group a message claims with numFds @num and fdSeqNum @seq.
 * Groups older than @seq are closed first; *orphans_closed counts their FDs.
 */
enum rfd_claim rfd_fdqueue_claim(struct rfd_fdqueue *q, int64_t seq, int32_t num,
                                 struct rfd_fdgroup **out, size_t *orphans_closed);

#endif
