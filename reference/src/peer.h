/* SPDX-License-Identifier: MIT */
/*
 * The identity of a server connection's peer, taken once when the connection
 * is accepted: the SO_PEERCRED snapshot and a pidfd.  One reference-counted
 * object per connection, shared by the connection and everything that hands
 * the identity out, so that it stays valid after the connection closed and
 * costs no syscall and no allocation per request.  The pidfd is closed when
 * the last reference goes.
 *
 * Where the pidfd comes from:
 *   - SO_PEERPIDFD (Linux 6.5): the process that called connect(), which no
 *     later process with the same pid can be mistaken for: pinned.
 *   - On kernels without it (getsockopt fails with ENOPROTOOPT): the
 *     fallback fbthrift's documentation proposes, pidfd_open() of the
 *     SO_PEERCRED pid, kept only when pid_max is at least RFD_PID_MAX_SAFE
 *     and the SO_PEERCRED read and the pidfd_open() both happened within
 *     RFD_PIDFD_WINDOW_NS on the monotonic clock (a few tries).  Best effort,
 *     never pinned: the pid was captured at connect(), and a client that
 *     died while its connection waited in the backlog may have had its pid
 *     given to another process before the accept.
 *   - SO_PEERPIDFD failing any other way (EINVAL on Linux 6.5 to 6.8 when the
 *     peer has already been reaped, EMFILE...): no pidfd.  Falling back then
 *     would open whatever process has the pid now.
 */
#ifndef RFD_PEER_H
#define RFD_PEER_H

#include <stdbool.h>

#include <rocketfd/rocketfd.h>

enum {
	RFD_PID_MAX_SAFE = 4194304, /* the kernel's highest pid_max: wrapping takes > 1 s */
};

#define RFD_PIDFD_WINDOW_NS 1000000000LL

struct rfd_identity {
	unsigned refs;
	struct rfd_peer cred; /* pid -1 and uid, gid (uid_t)-1 when SO_PEERCRED failed */
	int pidfd;            /* owned; -1 when there is none */
	bool pinned;          /* the pidfd came from SO_PEERPIDFD */
};

/* pid, uid and gid all -1: credentials that could not be read, or none that came. */
extern const struct rfd_peer rfd_peer_unknown;

/* How to take the pidfd: the server's options, and the tests' seams. */
struct rfd_identity_source {
	/*
	 * Act as if SO_PEERPIDFD failed with this errno, without asking the
	 * kernel; 0: ask it.  ENOPROTOOPT forces the fallback.
	 */
	int peer_pidfd_error;
	const char *pid_max_path; /* NULL: /proc/sys/kernel/pid_max */
};

/*
 * The identity of the peer of the connected Unix socket @sock, with one
 * reference.  @source may be NULL for the defaults.  0, or -ENOMEM (nothing
 * is left open then).  A peer whose credentials or pidfd cannot be read
 * still gets an identity, saying so (pid -1, pidfd -1).
 */
int rfd_identity_new(int sock, const struct rfd_identity_source *source, struct rfd_identity **out);

/* One more reference; returns @identity. */
struct rfd_identity *rfd_identity_ref(struct rfd_identity *identity);

/* Drop a reference; the last one closes the pidfd and frees.  NULL is accepted. */
void rfd_identity_unref(struct rfd_identity *identity);

/*
 * The fallback's rule: a pidfd_open() of a pid read at @start_ns, done by
 * @end_ns (CLOCK_MONOTONIC), is kept when @pid_max is at least
 * RFD_PID_MAX_SAFE and the two are less than RFD_PIDFD_WINDOW_NS apart.
 */
bool rfd_pidfd_fallback_ok(long long pid_max, long long start_ns, long long end_ns);

/* The number in the pid_max file at @path (NULL: the kernel's), or a negative errno. */
long long rfd_read_pid_max(const char *path);

#endif
