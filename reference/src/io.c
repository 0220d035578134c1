/* SPDX-License-Identifier: MIT */
#include "io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "fdsock.h"

static void
fail_write(struct rfd_conn *conn, ssize_t err, size_t n_fds)
{
	char why[160];

	switch (err) {
	case -EPIPE:
	case -ECONNRESET:
		rfd_conn_fail(conn, -ECONNRESET, "peer closed the connection");
		return;
	case -EPERM:
		if (n_fds) {
			rfd_conn_fail(conn, -EPERM,
			              "peer refuses file descriptors (SO_PASSRIGHTS is off?)");
			return;
		}
		break;
	case -ETOOMANYREFS:
		rfd_conn_fail(conn, -ETOOMANYREFS,
		              "too many file descriptors in flight for this user (ETOOMANYREFS)");
		return;
	default:
		break;
	}
	snprintf(why, sizeof(why), "write failed: %s", strerror((int)-err));
	rfd_conn_fail(conn, (int)err, why);
}

int
rfd_io_flush(int sock, struct rfd_conn *conn)
{
	struct rfd_out_chunk chunk;

	while (rfd_conn_out_peek(conn, &chunk)) {
		ssize_t n = rfd_sock_send(sock, chunk.bytes, chunk.len, chunk.fds, chunk.n_fds);

		if (n == -EAGAIN)
			return 0;
		if (n < 0) {
			fail_write(conn, n, chunk.n_fds);
			return rfd_conn_error(conn);
		}
		rfd_conn_out_advance(conn, (size_t)n);
	}
	return rfd_conn_error(conn);
}

static void
note_sender(const struct rfd_cmsg_result *control, struct rfd_peer *sender)
{
	if (!sender)
		return;
	sender->pid = control->has_creds ? control->pid : -1;
	sender->uid = control->has_creds ? control->uid : (uid_t)-1;
	sender->gid = control->has_creds ? control->gid : (gid_t)-1;
}

/*
 * A read of a Unix stream socket stops short of @room only when the queue
 * ran out, or at a message that brought FDs or came from another writer
 * (those two come with a control message), or at urgent data no peer of
 * ours sends.  So a short read without one took everything queued at that
 * moment, and whatever is left or comes later keeps the socket readable for
 * poll and epoll.  Stopping there spares the read that would say EAGAIN.
 * After one with a control message, more may be queued already: only a
 * level-triggered poller is sure to report it (RFD_IO_LEVEL).
 */
static bool
drained(ssize_t n, size_t room, const struct rfd_cmsg_result *control, unsigned flags)
{
	assert(control);

	if ((size_t)n >= room)
		return false;
	if (flags & RFD_IO_LEVEL)
		return true;
	return control->n_fds == 0 && !control->has_creds && control->pidfd < 0;
}

static void
fail_read(struct rfd_conn *conn, ssize_t err, const char *why)
{
	char text[200];

	if (err == -ENOBUFS || err == -EPROTO || err == -EBADMSG || err == -E2BIG)
		snprintf(text, sizeof(text), "file descriptors were lost: %s", why);
	else
		snprintf(text, sizeof(text), "read failed: %s", strerror((int)-err));
	rfd_conn_fail(conn, err == -EBADMSG || err == -E2BIG ? -EPROTO : (int)err, text);
}

int
rfd_io_read(int sock, struct rfd_conn *conn, unsigned allow, int max_reads)
{
	return rfd_io_read_sender(sock, conn, allow, max_reads, 0, NULL);
}

int
rfd_io_read_sender(int sock, struct rfd_conn *conn, unsigned allow, int max_reads, unsigned flags,
                   struct rfd_peer *sender)
{
	for (int i = 0; i < max_reads; i++) {
		bool wait = i == 0 && (flags & RFD_IO_WAIT);
		struct rfd_cmsg_result control;
		const char *why = "";
		uint8_t *space;
		size_t room;
		ssize_t n;
		int r;

		r = rfd_conn_in_space(conn, 0, &space, &room);
		if (r < 0) {
			rfd_conn_fail(conn, r, "out of memory reading");
			return rfd_conn_error(conn);
		}
		if (wait)
			n = rfd_sock_recv_wait(sock, space, room, allow, &control, &why);
		else
			n = rfd_sock_recv(sock, space, room, allow, &control, &why);
		if (wait && (n == -EAGAIN || n == -EINTR))
			return RFD_IO_NOTHING_CAME;
		if (n == -EAGAIN)
			return 0;
		if (n < 0) {
			fail_read(conn, n, why);
			return rfd_conn_error(conn);
		}
		if (control.pidfd >= 0)
			close(control.pidfd);
		r = rfd_conn_recv_fds(conn, control.fds, control.n_fds);
		if (r < 0)
			return r;
		if (n == 0) {
			rfd_conn_recv_eof(conn);
			return rfd_conn_error(conn);
		}
		note_sender(&control, sender);
		r = rfd_conn_in_commit(conn, (size_t)n);
		if (r < 0)
			return r;
		if (drained(n, room, &control, flags))
			return 0;
	}
	return 1;
}

/* At most RFD_MAX_FDS, each of them open.  0, -E2BIG, -EINVAL or -EBADF. */
static int
check_fds(const int *fds, size_t n_fds)
{
	if (n_fds > RFD_MAX_FDS)
		return -E2BIG;
	if (!fds)
		return -EINVAL;
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] < 0 || fcntl(fds[i], F_GETFD) < 0)
			return -EBADF;
	return 0;
}

int
rfd_fds_prepare(const int *fds, size_t n_fds, enum rfd_fd_mode mode, struct rfd_fdgroup **out)
{
	int copies[RFD_MAX_FDS];
	size_t i;
	int r;

	*out = NULL;
	if (n_fds == 0)
		return 0;
	r = check_fds(fds, n_fds);
	if (r < 0) {
		rfd_fds_discard(fds, n_fds, mode);
		return r;
	}

	if (mode == RFD_FDS_TAKE) {
		*out = rfd_fdgroup_new(fds, n_fds);
		return *out ? 0 : -ENOMEM;
	}
	for (i = 0; i < n_fds; i++) {
		copies[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (copies[i] < 0) {
			r = -errno;
			while (i > 0)
				close(copies[--i]);
			return r;
		}
	}
	*out = rfd_fdgroup_new(copies, n_fds);
	return *out ? 0 : -ENOMEM;
}

int
rfd_fds_lend(const int *fds, size_t n_fds, struct rfd_fdgroup **out)
{
	int r;

	assert(out);

	*out = NULL;
	if (n_fds == 0)
		return 0;
	r = check_fds(fds, n_fds);
	if (r < 0)
		return r;
	*out = rfd_fdgroup_lend(fds, n_fds);
	return *out ? 0 : -ENOMEM;
}

int
rfd_fds_settle(struct rfd_conn *conn, struct rfd_fdgroup *lent)
{
	char why[160];
	size_t i;
	int r = 0;

	assert(conn);

	if (!lent)
		return 0;
	if (rfd_fdgroup_returned(lent)) {
		rfd_fdgroup_free(lent);
		return 0;
	}
	for (i = 0; i < lent->n && r == 0; i++) {
		int copy = fcntl(lent->fds[i], F_DUPFD_CLOEXEC, 0);

		if (copy < 0)
			r = -errno;
		lent->fds[i] = copy;
	}
	for (; i < lent->n; i++)
		lent->fds[i] = -1;
	rfd_fdgroup_adopt(lent);
	if (r < 0) {
		/*
		 * Limitation: the message is queued and claims these FDs, so
		 * the connection fails, where a duplication failing before
		 * queueing (rfd_fds_prepare()) fails the call alone.
		 */
		snprintf(why, sizeof(why),
		         "cannot keep the FDs of a call waiting to be written: %s", strerror(-r));
		rfd_conn_fail(conn, r, why);
	}
	return r;
}

void
rfd_fds_discard(const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	if (mode != RFD_FDS_TAKE || !fds)
		return;
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Limitation: whole milliseconds, truncated, so a timeout counted from
 * here may end up to 1 ms before its full length has passed.
 */
long long
rfd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
