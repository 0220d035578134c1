/* SPDX-License-Identifier: MIT */

/* Before fdsock.h: cmsg.h's fallback SCM_PIDFD must not shadow the system's. */
#include <sys/socket.h>

#include "fdsock.h"
#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

_Static_assert(CMSG_SPACE(RFD_MAX_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred)) +
                       CMSG_SPACE(sizeof(int)) <=
                   RFD_CONTROL_SIZE,
               "RFD_CONTROL_SIZE must hold 253 FDs, credentials and a pidfd");

static void
put_rights(struct msghdr *msg, void *control, const int *fds, size_t n_fds)
{
	struct cmsghdr *cmsg;

	assert(msg);
	assert(control);
	assert(fds);

	msg->msg_control = control;
	msg->msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
	cmsg = CMSG_FIRSTHDR(msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
	memcpy(CMSG_DATA(cmsg), fds, n_fds * sizeof(int));
}

ssize_t
rfd_sock_send(int sock, const uint8_t *bytes, size_t len, const int *fds, size_t n_fds)
{
	union {
		struct cmsghdr align;
		uint8_t bytes[CMSG_SPACE(RFD_MAX_FDS * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = (void *)bytes, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t sent;

	assert(bytes || len == 0);
	assert(fds || n_fds == 0);

	if (n_fds > RFD_MAX_FDS || (n_fds > 0 && len == 0))
		return -EINVAL;
	if (n_fds > 0) {
		memset(&control, 0, sizeof(control));
		put_rights(&msg, &control, fds, n_fds);
	}

	do
		sent = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (sent < 0 && errno == EINTR);
	return sent < 0 ? -errno : sent;
}

static void
result_empty(struct rfd_cmsg_result *out)
{
	assert(out);

	out->n_fds = 0;
	out->has_creds = false;
	out->pidfd = -1;
}

static ssize_t
receive(int sock, uint8_t *bytes, size_t cap, unsigned allow, bool wait,
        struct rfd_cmsg_result *out, const char **why)
{
	union {
		struct cmsghdr align;
		uint8_t bytes[RFD_CONTROL_SIZE];
	} control;
	struct iovec iov = {.iov_base = bytes, .iov_len = cap};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = &control,
	    .msg_controllen = sizeof(control.bytes),
	};
	int flags = (RFD_FAULT(no_cloexec) ? 0 : MSG_CMSG_CLOEXEC) | (wait ? 0 : MSG_DONTWAIT);
	ssize_t received;
	int r;

	assert(bytes || cap == 0);
	assert(out);

	do
		received = recvmsg(sock, &msg, flags);
	while (received < 0 && errno == EINTR && !wait);
	if (received < 0) {
		r = -errno;
		result_empty(out);
		if (why)
			*why = "recvmsg() failed";
		return r;
	}

	r = rfd_cmsg_parse(&control, msg.msg_controllen, msg.msg_flags, allow, out, why);
	if (r < 0)
		return r;
	return received;
}

ssize_t
rfd_sock_recv(int sock, uint8_t *bytes, size_t cap, unsigned allow, struct rfd_cmsg_result *out,
              const char **why)
{
	return receive(sock, bytes, cap, allow, false, out, why);
}

ssize_t
rfd_sock_recv_wait(int sock, uint8_t *bytes, size_t cap, unsigned allow,
                   struct rfd_cmsg_result *out, const char **why)
{
	return receive(sock, bytes, cap, allow, true, out, why);
}
