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

/* Whose the FDs of a group are. */
enum rfd_fdgroup_owner {
	RFD_FDGROUP_OWNED,    /* whoever holds the group: freeing it closes them */
	RFD_FDGROUP_LENT,     /* a lender's: freeing the group closes none and hands it back */
	RFD_FDGROUP_RETURNED, /* lent, and handed back: the lender frees it */
};

struct rfd_fdgroup {
	struct rfd_fdgroup *next; /* the receive FIFO, or the sender's list of groups to send */
	int64_t seq;
	/* Sending: the stream offsets [out_start, out_end) of the bytes the FDs go with. */
	uint64_t out_start;
	uint64_t out_end;
	enum rfd_fdgroup_owner owner;
	size_t n;
	int fds[]; /* -1 marks a released slot */
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

/*
 * Close every FD the group still owns and free it.  A lent group is not
 * freed but handed back to its lender; a returned one is freed, closing
 * nothing.  NULL is accepted.
 */
void rfd_fdgroup_free(struct rfd_fdgroup *g);

/*
 * A group naming @fds, which stay the lender's: whoever holds the group may
 * send them, and freeing it closes none of them.  The lender keeps the group
 * too: rfd_fdgroup_returned() tells whether the holder has freed it, which
 * hands it back, and then rfd_fdgroup_free() frees it.  While it is held the
 * lender may make it an ordinary group, by writing FDs of its own into it
 * and calling rfd_fdgroup_adopt().  NULL on allocation failure (nothing is
 * closed).
 */
struct rfd_fdgroup *rfd_fdgroup_lend(const int *fds, size_t n);

/* True once the holder of a lent group has freed it. */
bool rfd_fdgroup_returned(const struct rfd_fdgroup *g);

/* A lent group whose slots now hold FDs the group owns (or -1) becomes an ordinary one. */
void rfd_fdgroup_adopt(struct rfd_fdgroup *g);

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
