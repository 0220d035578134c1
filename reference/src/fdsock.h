/* SPDX-License-Identifier: MIT */
/*
 * The only module that calls sendmsg() and recvmsg() on a connection.
 */
#ifndef RFD_FDSOCK_H
#define RFD_FDSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmsg.h"

/*
 * Send @len bytes (len >= 1 when n_fds > 0), with @n_fds FDs (at most
 * RFD_MAX_FDS) in one SCM_RIGHTS cmsg, MSG_NOSIGNAL | MSG_DONTWAIT.
 * Returns the byte count the kernel took (the FDs went with it whenever it
 * is >= 1: never send them again), or a negative errno: -EAGAIN, -EPIPE,
 * -EINVAL (no data byte with FDs, or too many FDs), -ETOOMANYREFS, ...
 * EINTR is retried.  The FDs stay owned by the caller.
 */
ssize_t rfd_sock_send(int sock, const uint8_t *bytes, size_t len, const int *fds, size_t n_fds);

/* Control buffer room: 253 FDs, a credentials cmsg and a pidfd cmsg. */
enum { RFD_CONTROL_SIZE = 1024 + 64 + 64 + 32 };

/*
 * Receive up to @cap bytes with MSG_CMSG_CLOEXEC | MSG_DONTWAIT (never
 * MSG_PEEK) and parse the control data with rfd_cmsg_parse(@allow).
 * Returns the byte count (0 at EOF) with @out owning any FDs that came, or a
 * negative errno (-EAGAIN, -ECONNRESET, or a parse error: then every FD that
 * arrived has been closed and *why says why).  EINTR is retried.
 */
ssize_t rfd_sock_recv(int sock, uint8_t *bytes, size_t cap, unsigned allow,
                      struct rfd_cmsg_result *out, const char **why);

/*
 * rfd_sock_recv() without MSG_DONTWAIT, for a socket without O_NONBLOCK: waits
 * until bytes come, then returns as rfd_sock_recv() does.  Waiting ends with
 * -EAGAIN once the socket's SO_RCVTIMEO has passed, and with -EINTR when a
 * signal came (not retried: the caller works out what is left of its wait).
 */
ssize_t rfd_sock_recv_wait(int sock, uint8_t *bytes, size_t cap, unsigned allow,
                           struct rfd_cmsg_result *out, const char **why);

#endif
