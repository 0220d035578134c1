/* SPDX-License-Identifier: MIT */
/*
 * The control-message parser: a pure function from the control buffer that
 * recvmsg() filled in to the FDs and credentials it carries.  No syscall
 * other than close() on the error paths.
 */
#ifndef RFD_CMSG_H
#define RFD_CMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <rocketfd/rocketfd.h> /* RFD_MAX_FDS */

/* Debian 12's headers predate these (Linux 6.5). */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* Which ancillary messages besides SCM_RIGHTS the socket asked for. */
enum {
	RFD_CMSG_ALLOW_CREDENTIALS = 1 << 0, /* SO_PASSCRED is on */
	RFD_CMSG_ALLOW_PIDFD = 1 << 1,       /* SO_PASSPIDFD is on */
};

struct rfd_cmsg_result {
	int fds[RFD_MAX_FDS]; /* every SCM_RIGHTS FD, in order, all cmsgs concatenated */
	size_t n_fds;
	bool has_creds;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd; /* from SCM_PIDFD, or -1 */
};

/*
 * Parse @controllen bytes of control data with the msg_flags recvmsg()
 * returned.  Never reads past @controllen, whatever a cmsg_len claims.
 * Walks every cmsg.  On success returns 0 and @out owns every FD found.
 * On any error every FD found (SCM_RIGHTS and SCM_PIDFD alike) is closed,
 * @out holds none (n_fds 0, pidfd -1), and the return is:
 *   -ENOBUFS  MSG_CTRUNC was set: FDs were lost;
 *   -EPROTO   a cmsg of a level or type not allowed by @allow;
 *   -EBADMSG  a malformed cmsg (cmsg_len shorter than its header, a payload
 *             not a multiple of 4 bytes, a truncated credentials struct);
 *   -E2BIG    more than RFD_MAX_FDS FDs in total.
 * *why names the problem.
 */
int rfd_cmsg_parse(const void *control, size_t controllen, int msg_flags, unsigned allow,
                   struct rfd_cmsg_result *out, const char **why);

#endif
