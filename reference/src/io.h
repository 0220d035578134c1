/* SPDX-License-Identifier: MIT */
/* Moving bytes and FDs between a connection core and its non-blocking socket. */
#ifndef RFD_IO_H
#define RFD_IO_H

#include <stddef.h>

#include <rocketfd/rocketfd.h>

#include "conn.h"
#include "fdqueue.h"

/*
 * Write what @conn has queued until it is all written or the socket is full.
 * Returns 0, or the connection's failure (a write error fails it).
 */
int rfd_io_flush(int sock, struct rfd_conn *conn);

/*
 * Read what the socket has, up to @max_reads reads, into @conn.  Returns 0 when
 * the socket had no more for now (a read that returned EAGAIN, or one short
 * of its room with no control message), 1 when @max_reads was reached, or the
 * connection's failure (EOF and read errors fail it).  @allow as for rfd_cmsg_parse().
 * A read that brought FDs may have stopped at their message, so another
 * follows it: what an edge-triggered event loop needs.
 */
int rfd_io_read(int sock, struct rfd_conn *conn, unsigned allow, int max_reads);

/* How rfd_io_read_sender() reads. */
enum rfd_io_read_flags {
	/*
	 * Stop after any read short of its room, one that brought FDs too
	 * (returning 0): for a caller that waits for readability with a
	 * level-triggered poll or epoll, which reports whatever is still
	 * queued.  Spares the read that would find EAGAIN after a message with
	 * FDs.
	 */
	RFD_IO_LEVEL = 1 << 0,
	/*
	 * The first read waits for bytes (rfd_sock_recv_wait(): a socket without
	 * O_NONBLOCK); the reads after it do not.  When it ends without bytes
	 * (the socket's SO_RCVTIMEO passed, a signal came, or the socket has
	 * O_NONBLOCK after all), the reads end with RFD_IO_NOTHING_CAME.
	 */
	RFD_IO_WAIT = 1 << 1,
};

/* What rfd_io_read_sender() returns when the read of RFD_IO_WAIT brought nothing. */
enum { RFD_IO_NOTHING_CAME = 2 };

/*
 * rfd_io_read() with @flags (enum rfd_io_read_flags), telling which
 * credentials came with each read when @sender is not NULL: before the
 * bytes of a read are processed (and its messages delivered), *sender holds
 * its SCM_CREDENTIALS, or pid -1 when it brought none.
 */
int rfd_io_read_sender(int sock, struct rfd_conn *conn, unsigned allow, int max_reads,
                       unsigned flags, struct rfd_peer *sender);

/*
 * Turn the caller's FDs into a group the library owns, per @mode: RFD_FDS_DUP
 * duplicates them (close-on-exec), RFD_FDS_TAKE takes them.  Every FD must be
 * open (-EBADF otherwise) and there may be at most RFD_MAX_FDS (-E2BIG).  With
 * RFD_FDS_TAKE the caller's FDs are closed on every failure.  *out is NULL
 * when @n_fds is 0.
 */
int rfd_fds_prepare(const int *fds, size_t n_fds, enum rfd_fd_mode mode, struct rfd_fdgroup **out);

/*
 * RFD_FDS_DUP without duplicating, for a message about to be written at
 * once: a lent group (see rfd_fdgroup_lend()) naming the caller's FDs,
 * checked as rfd_fds_prepare() checks them.  Once the write was tried, the
 * group goes to rfd_fds_settle(), whatever happened in between.
 */
int rfd_fds_lend(const int *fds, size_t n_fds, struct rfd_fdgroup **out);

/*
 * After the write: frees @lent once @conn has sent (or dropped) it;
 * otherwise its message still waits to be written, and the caller's FDs in
 * it are replaced with duplicates the group owns.  Returns 0, or the
 * failure of a duplication, which fails @conn (never closing a caller's
 * FD).  NULL is accepted.
 */
int rfd_fds_settle(struct rfd_conn *conn, struct rfd_fdgroup *lent);

/* Close the caller's FDs when @mode is RFD_FDS_TAKE (a call that failed before taking them). */
void rfd_fds_discard(const int *fds, size_t n_fds, enum rfd_fd_mode mode);

/* Monotonic clock in milliseconds. */
long long rfd_now_ms(void);

#endif
