/* SPDX-License-Identifier: MIT */

/* Before cmsg.h: its fallback SCM_PIDFD must not shadow the system's. */
#include <sys/socket.h>

#include "cmsg.h"
#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/*
 * The walk keeps going after the first problem so that FDs in later cmsgs are
 * still found and closed; only the first problem is reported, except that
 * MSG_CTRUNC wins over any other because it says FDs were lost.
 */
struct parse_state {
	struct rfd_cmsg_result *out;
	unsigned allow;
	int error;
	const char *why;
};

static void
fail(struct parse_state *st, int error, const char *why)
{
	assert(st);

	if (st->error)
		return;
	st->error = error;
	st->why = why;
}

static void
result_init(struct rfd_cmsg_result *out)
{
	assert(out);

	out->n_fds = 0;
	out->has_creds = false;
	out->pid = 0;
	out->uid = 0;
	out->gid = 0;
	out->pidfd = -1;
}

static void
result_close_fds(struct rfd_cmsg_result *out)
{
	assert(out);

	for (size_t i = 0; i < out->n_fds; i++)
		close(out->fds[i]);
	if (out->pidfd >= 0)
		close(out->pidfd);
	result_init(out);
}

/* Payloads are read with memcpy: a fuzzer or a caller may pass unaligned data. */
static int
payload_fd(const uint8_t *payload, size_t index)
{
	int fd;

	memcpy(&fd, payload + index * sizeof(int), sizeof(int));
	return fd;
}

static void
take_rights(struct parse_state *st, const uint8_t *payload, size_t payload_len)
{
	struct rfd_cmsg_result *out = st->out;
	size_t n = payload_len / sizeof(int);

	if (payload_len % sizeof(int) != 0)
		fail(st, -EBADMSG, "SCM_RIGHTS payload is not a whole number of FDs");

	for (size_t i = 0; i < n; i++) {
		int fd = payload_fd(payload, i);

		if (fd < 0) {
			fail(st, -EBADMSG, "negative FD in SCM_RIGHTS");
			continue;
		}
		if (out->n_fds == RFD_MAX_FDS) {
			fail(st, -E2BIG, "more than 253 FDs in one read");
			close(fd);
			continue;
		}
		out->fds[out->n_fds++] = fd;
	}
}

static void
take_pidfd(struct parse_state *st, const uint8_t *payload, size_t payload_len)
{
	struct rfd_cmsg_result *out = st->out;
	size_t n = payload_len / sizeof(int);

	if (!(st->allow & RFD_CMSG_ALLOW_PIDFD))
		fail(st, -EPROTO, "SCM_PIDFD without SO_PASSPIDFD");
	if (payload_len != sizeof(int))
		fail(st, -EBADMSG, "SCM_PIDFD payload is not one FD");

	for (size_t i = 0; i < n; i++) {
		int fd = payload_fd(payload, i);

		if (fd < 0) {
			fail(st, -EBADMSG, "negative FD in SCM_PIDFD");
			continue;
		}
		if (out->pidfd >= 0) {
			fail(st, -EBADMSG, "more than one pidfd");
			close(fd);
			continue;
		}
		out->pidfd = fd;
	}
}

static void
take_credentials(struct parse_state *st, const uint8_t *payload, size_t payload_len)
{
	struct rfd_cmsg_result *out = st->out;
	struct ucred creds;

	if (!(st->allow & RFD_CMSG_ALLOW_CREDENTIALS)) {
		fail(st, -EPROTO, "SCM_CREDENTIALS without SO_PASSCRED");
		return;
	}
	if (payload_len != sizeof(creds)) {
		fail(st, -EBADMSG, "SCM_CREDENTIALS payload is not a struct ucred");
		return;
	}
	if (out->has_creds) {
		fail(st, -EBADMSG, "more than one SCM_CREDENTIALS");
		return;
	}
	memcpy(&creds, payload, sizeof(creds));
	out->has_creds = true;
	out->pid = creds.pid;
	out->uid = creds.uid;
	out->gid = creds.gid;
}

static void
take_cmsg(struct parse_state *st, const struct cmsghdr *hdr, const uint8_t *payload,
          size_t payload_len)
{
	assert(hdr);

	if (hdr->cmsg_level != SOL_SOCKET) {
		fail(st, -EPROTO, "control message of a level other than SOL_SOCKET");
		return;
	}
	switch (hdr->cmsg_type) {
	case SCM_RIGHTS:
		take_rights(st, payload, payload_len);
		break;
	case SCM_CREDENTIALS:
		take_credentials(st, payload, payload_len);
		break;
	case SCM_PIDFD:
		take_pidfd(st, payload, payload_len);
		break;
	default:
		fail(st, -EPROTO, "unexpected SOL_SOCKET control message type");
		break;
	}
}

/*
 * Walk every cmsg within @controllen.  A cmsg_len that runs past the end is
 * clamped to the bytes present (that is what macOS hands back with
 * MSG_CTRUNC) and its whole FDs are taken so that they get closed; it is an
 * error unless MSG_CTRUNC explains it.
 *
 * A cmsg_len shorter than the header gives no way to find the next cmsg, so
 * the walk stops there: FDs before it are closed, bytes after it are left
 * alone.  Guessing where a header might start would mean reading arbitrary
 * bytes as FD numbers, and closing a number that is not an FD we received
 * would close one that another part of the process owns.  The same holds for
 * a cmsg_len that understates: its cmsg ends where it says, and what follows
 * is read as the next header.
 */
static void
walk(struct parse_state *st, const uint8_t *control, size_t controllen)
{
	const size_t header_len = CMSG_LEN(0);
	size_t offset = 0;

	while (controllen - offset >= header_len) {
		size_t room = controllen - offset;
		struct cmsghdr hdr;
		size_t len;

		memcpy(&hdr, control + offset, sizeof(hdr));
		len = hdr.cmsg_len;
		if (len < header_len) {
			fail(st, -EBADMSG, "cmsg_len shorter than a cmsg header");
			return;
		}
		if (len > room) {
			fail(st, -EBADMSG, "cmsg_len runs past the control data");
			len = room;
		}
		take_cmsg(st, &hdr, control + offset + header_len, len - header_len);

		if (CMSG_ALIGN(len) >= room)
			return;
		offset += CMSG_ALIGN(len);
	}
	if (offset < controllen)
		fail(st, -EBADMSG, "control data ends inside a cmsg header");
}

int
rfd_cmsg_parse(const void *control, size_t controllen, int msg_flags, unsigned allow,
               struct rfd_cmsg_result *out, const char **why)
{
	struct parse_state st = {.out = out, .allow = allow};

	assert(out);
	assert(control || controllen == 0);

	result_init(out);
	if ((msg_flags & MSG_CTRUNC) && !RFD_FAULT(ignore_ctrunc))
		fail(&st, -ENOBUFS, "control data truncated (MSG_CTRUNC): FDs were lost");
	walk(&st, control, controllen);

	if (st.error)
		result_close_fds(out);
	if (why)
		*why = st.why;
	return st.error;
}
