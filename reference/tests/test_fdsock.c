/* SPDX-License-Identifier: MIT */

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdsock.h"
#include "testutil.h"

enum {
	RECV_CAP = 65536,
};

static uint8_t recv_buf[RECV_CAP];

static void
make_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
}

static void
close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* @n pipes; each read end is its own inode, so a mix-up shows. */
static void
make_pipes(int *read_ends, int *write_ends, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int p[2];

		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			abort();
		read_ends[i] = p[0];
		write_ends[i] = p[1];
	}
}

static void
make_read_ends(int *read_ends, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int write_end;

		make_pipes(&read_ends[i], &write_end, 1);
		close(write_end);
	}
}

/* kcmp() is often filtered in containers; then fstat identity has to do. */
static bool
kcmp_differs(int a, int b)
{
	long r =
	    syscall(SYS_kcmp, (long)getpid(), (long)getpid(), (long)KCMP_FILE, (long)a, (long)b);

	if (r < 0 && (errno == ENOSYS || errno == EPERM))
		return false;
	return r != 0;
}

static bool
same_open_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && !kcmp_differs(a, b);
}

static bool
has_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	return flags >= 0 && (flags & FD_CLOEXEC);
}

/* True when every write end of the pipe is closed, in every process. */
static bool
pipe_at_eof(int read_end)
{
	char c;

	return read(read_end, &c, 1) == 0;
}

static void
close_result(struct rfd_cmsg_result *out)
{
	close_fds(out->fds, out->n_fds);
	out->n_fds = 0;
	if (out->pidfd >= 0)
		close(out->pidfd);
	out->pidfd = -1;
}

static void
round_trip(size_t n)
{
	static const uint8_t payload[] = "sixteen bytes ok";
	struct rfd_cmsg_result out;
	int *sent = calloc(n + 1, sizeof(int));
	int sv[2];

	REQUIRE(sent);
	make_pair(sv);
	make_read_ends(sent, n);

	CHECK_EQ(rfd_sock_send(sv[0], payload, 16, sent, n), 16);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 16);
	CHECK_MEM(recv_buf, payload, 16);
	CHECK_EQ(out.n_fds, n);
	CHECK_EQ(out.pidfd, -1);
	CHECK(!out.has_creds);
	for (size_t i = 0; i < out.n_fds && i < n; i++) {
		CHECK(out.fds[i] != sent[i]);
		CHECK(has_cloexec(out.fds[i]));
		CHECK(same_open_file(out.fds[i], sent[i]));
	}
	if (n >= 2)
		CHECK(!same_open_file(out.fds[0], sent[1]));

	close_result(&out);
	close_fds(sent, n);
	close_fds(sv, 2);
	free(sent);
}

static void
test_round_trip_0_fds(void)
{
	round_trip(0);
}

static void
test_round_trip_1_fd(void)
{
	round_trip(1);
}

static void
test_round_trip_2_fds(void)
{
	round_trip(2);
}

static void
test_round_trip_253_fds(void)
{
	round_trip(253);
}

/* Socket -1 would make the kernel answer EBADF: EINVAL proves it was not asked. */
static void
test_254_fds_refused_before_kernel(void)
{
	int fds[254];
	int sv[2];

	for (size_t i = 0; i < 254; i++)
		fds[i] = STDERR_FILENO;
	CHECK_EQ(rfd_sock_send(-1, (const uint8_t *)"x", 1, fds, 254), -EINVAL);
	CHECK_EQ(rfd_sock_send(-1, (const uint8_t *)"x", 1, fds, 253), -EBADF);

	make_pair(sv);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"x", 1, fds, 254), -EINVAL);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &(struct rfd_cmsg_result){0}, NULL),
	         -EAGAIN);
	close_fds(sv, 2);
}

/* FD-SEND-5: FDs never go in a sendmsg with no data byte. */
static void
test_fds_without_bytes_refused(void)
{
	struct rfd_cmsg_result out;
	int fd = STDERR_FILENO;
	int sv[2];

	CHECK_EQ(rfd_sock_send(-1, NULL, 0, &fd, 1), -EINVAL);

	make_pair(sv);
	CHECK_EQ(rfd_sock_send(sv[0], NULL, 0, &fd, 1), -EINVAL);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), -EAGAIN);
	CHECK_EQ(out.n_fds, 0);
	CHECK_EQ(out.pidfd, -1);
	close_fds(sv, 2);
}

static void
test_partial_send_carries_fds_once(void)
{
	enum { PAYLOAD = 8 * 4096 };
	static uint8_t payload[PAYLOAD];
	struct rfd_cmsg_result out;
	size_t sent = 0, received = 0, fds_seen = 0;
	ssize_t first, r;
	int fds[2];
	int sv[2];
	int sndbuf = 4096;

	for (size_t i = 0; i < PAYLOAD; i++)
		payload[i] = (uint8_t)(i * 7 + i / 251);
	make_pair(sv);
	make_read_ends(fds, 2);
	REQUIRE(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);

	first = rfd_sock_send(sv[0], payload, PAYLOAD, fds, 2);
	CHECK(first > 0 && first < PAYLOAD);
	if (first > 0)
		sent = (size_t)first;

	for (int rounds = 0; rounds < 10000 && received < PAYLOAD; rounds++) {
		if (sent < PAYLOAD) {
			r = rfd_sock_send(sv[0], payload + sent, PAYLOAD - sent, NULL, 0);
			if (r > 0)
				sent += (size_t)r;
			else
				CHECK_EQ(r, -EAGAIN);
		}
		r = rfd_sock_recv(sv[1], recv_buf + received, RECV_CAP - received, 0, &out, NULL);
		if (r == -EAGAIN)
			continue;
		REQUIRE(r > 0);
		if (out.n_fds > 0) {
			CHECK_EQ(received, 0);
			CHECK_EQ(out.n_fds, 2);
			if (out.n_fds == 2) {
				CHECK(same_open_file(out.fds[0], fds[0]));
				CHECK(same_open_file(out.fds[1], fds[1]));
			}
			fds_seen += out.n_fds;
			close_result(&out);
		}
		received += (size_t)r;
	}
	CHECK_EQ(sent, PAYLOAD);
	CHECK_EQ(received, PAYLOAD);
	CHECK_MEM(recv_buf, payload, PAYLOAD);
	CHECK_EQ(fds_seen, 2);

	close_fds(fds, 2);
	close_fds(sv, 2);
}

/*
 * The fact the FD queue rests on: a read merges an FD-less chunk with the
 * FD-carrying chunk after it, and stops after the FD-carrying chunk.
 */
static void
test_kernel_merges_chunk_before_fds(void)
{
	struct rfd_cmsg_result out;
	int fds[2];
	int sv[2];

	make_pair(sv);
	make_read_ends(fds, 2);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"AAAA", 4, NULL, 0), 4);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"BBBB", 4, &fds[0], 1), 4);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"CCCC", 4, NULL, 0), 4);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"DDDD", 4, &fds[1], 1), 4);

	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 8);
	CHECK_MEM(recv_buf, "AAAABBBB", 8);
	CHECK_EQ(out.n_fds, 1);
	if (out.n_fds == 1)
		CHECK(same_open_file(out.fds[0], fds[0]));
	close_result(&out);

	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 8);
	CHECK_MEM(recv_buf, "CCCCDDDD", 8);
	CHECK_EQ(out.n_fds, 1);
	if (out.n_fds == 1)
		CHECK(same_open_file(out.fds[0], fds[1]));
	close_result(&out);

	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), -EAGAIN);
	close_fds(fds, 2);
	close_fds(sv, 2);
}

/* Two FD-carrying writes are never merged into one read. */
static void
test_fd_chunks_not_merged(void)
{
	struct rfd_cmsg_result out;
	int fds[2];
	int sv[2];

	make_pair(sv);
	make_read_ends(fds, 2);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"EEEE", 4, &fds[0], 1), 4);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"FFFF", 4, &fds[1], 1), 4);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 4);
	CHECK_EQ(out.n_fds, 1);
	close_result(&out);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 4);
	CHECK_EQ(out.n_fds, 1);
	close_result(&out);
	close_fds(fds, 2);
	close_fds(sv, 2);
}

enum ctrunc_child_status {
	CHILD_OK = 0,
	CHILD_NO_FREE_FDS = 10,
	CHILD_SETRLIMIT,
	CHILD_NOT_ENOBUFS,
	CHILD_RESULT_NOT_EMPTY,
	CHILD_INSTALLED_FD_OPEN,
	CHILD_FD_COUNT_CHANGED,
	CHILD_WRITE_END_ALIVE,
};

/*
 * Runs in a forked child: lower RLIMIT_NOFILE so that exactly two FD slots
 * are free, then receive five FDs.  The kernel installs two and sets
 * MSG_CTRUNC; rfd_sock_recv() must close those two.
 */
static int
ctrunc_child(int sock, const int *read_ends, size_t n)
{
	struct rfd_cmsg_result out;
	struct rlimit old_limit, low_limit;
	int free_slots[2], n_free = 0;
	int before;
	ssize_t r;

	for (int fd = 0; n_free < 2 && fd < 1 << 16; fd++)
		if (!rfd_test_fd_is_open(fd))
			free_slots[n_free++] = fd;
	if (n_free < 2)
		return CHILD_NO_FREE_FDS;
	before = rfd_test_count_fds();

	if (getrlimit(RLIMIT_NOFILE, &old_limit) < 0)
		return CHILD_SETRLIMIT;
	low_limit = old_limit;
	low_limit.rlim_cur = (rlim_t)free_slots[1] + 1;
	if (setrlimit(RLIMIT_NOFILE, &low_limit) < 0)
		return CHILD_SETRLIMIT;
	r = rfd_sock_recv(sock, recv_buf, RECV_CAP, 0, &out, NULL);
	if (setrlimit(RLIMIT_NOFILE, &old_limit) < 0)
		return CHILD_SETRLIMIT;

	if (r != -ENOBUFS)
		return CHILD_NOT_ENOBUFS;
	if (out.n_fds != 0 || out.pidfd != -1)
		return CHILD_RESULT_NOT_EMPTY;
	if (rfd_test_fd_is_open(free_slots[0]) || rfd_test_fd_is_open(free_slots[1]))
		return CHILD_INSTALLED_FD_OPEN;
	if (rfd_test_count_fds() != before)
		return CHILD_FD_COUNT_CHANGED;
	for (size_t i = 0; i < n; i++)
		if (!pipe_at_eof(read_ends[i]))
			return CHILD_WRITE_END_ALIVE;
	return CHILD_OK;
}

static void
test_ctrunc_from_rlimit_closes_installed(void)
{
	int read_ends[5], write_ends[5];
	int sv[2];
	int status;
	pid_t child;

	/* valgrind only emulates RLIMIT_NOFILE: the kernel would not truncate. */
	if (rfd_test_under_valgrind()) {
		rfd_test_skip("needs the kernel's RLIMIT_NOFILE (runs under ASan instead)");
		return;
	}
	make_pair(sv);
	make_pipes(read_ends, write_ends, 5);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"x", 1, write_ends, 5), 1);
	close_fds(write_ends, 5);

	fflush(NULL);
	child = fork();
	REQUIRE(child >= 0);
	if (child == 0)
		_exit(ctrunc_child(sv[1], read_ends, 5));

	REQUIRE(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), CHILD_OK);
	/* Whatever the child did, no write end survives it here either. */
	for (size_t i = 0; i < 5; i++)
		CHECK(pipe_at_eof(read_ends[i]));
	close_fds(read_ends, 5);
	close_fds(sv, 2);
}

static void
test_passcred_allowed(void)
{
	struct rfd_cmsg_result out;
	int read_end, write_end;
	int sv[2];
	int on = 1;

	make_pair(sv);
	make_pipes(&read_end, &write_end, 1);
	REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);

	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"c", 1, &read_end, 1), 1);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, RFD_CMSG_ALLOW_CREDENTIALS, &out, NULL),
	         1);
	CHECK(out.has_creds);
	CHECK_EQ(out.pid, getpid());
	CHECK_EQ(out.uid, getuid());
	CHECK_EQ(out.gid, getgid());
	CHECK_EQ(out.n_fds, 1);
	if (out.n_fds == 1)
		CHECK(same_open_file(out.fds[0], read_end));
	close_result(&out);

	/* Credentials come with FD-less reads too. */
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"d", 1, NULL, 0), 1);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, RFD_CMSG_ALLOW_CREDENTIALS, &out, NULL),
	         1);
	CHECK(out.has_creds);
	CHECK_EQ(out.n_fds, 0);

	close(read_end);
	close(write_end);
	close_fds(sv, 2);
}

/* ERR-7: a control message the receiver did not enable is an error, its FDs closed. */
static void
test_passcred_not_allowed(void)
{
	struct rfd_cmsg_result out;
	const char *why = NULL;
	int read_end, write_end;
	int sv[2];
	int on = 1;

	make_pair(sv);
	make_pipes(&read_end, &write_end, 1);
	REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);

	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"c", 1, &write_end, 1), 1);
	close(write_end);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, &why), -EPROTO);
	CHECK(why && strstr(why, "SCM_CREDENTIALS"));
	CHECK_EQ(out.n_fds, 0);
	CHECK(!out.has_creds);
	CHECK(pipe_at_eof(read_end));

	close(read_end);
	close_fds(sv, 2);
}

static bool
is_pidfd_of(int pidfd, pid_t pid)
{
	char path[64], line[128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		int value;

		if (sscanf(line, "Pid:\t%d", &value) == 1)
			found = value == pid;
	}
	fclose(f);
	return found;
}

/* CRED-6: SCM_CREDENTIALS and SCM_PIDFD accepted when enabled; pidfds owned or closed. */
static void
test_passpidfd(void)
{
	struct rfd_cmsg_result out;
	const char *why = NULL;
	int read_end, write_end;
	int sv[2];
	int on = 1;
	int fds_before;

	make_pair(sv);
	if (setsockopt(sv[1], SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on)) < 0) {
		CHECK_EQ(errno, ENOPROTOOPT);
		printf("     skipped: SO_PASSPIDFD not supported by this kernel\n");
		close_fds(sv, 2);
		return;
	}
	make_pipes(&read_end, &write_end, 1);

	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"p", 1, &read_end, 1), 1);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, RFD_CMSG_ALLOW_PIDFD, &out, &why), 1);
	CHECK(out.pidfd >= 0);
	CHECK_EQ(out.n_fds, 1);
	if (out.pidfd >= 0) {
		CHECK(is_pidfd_of(out.pidfd, getpid()));
		CHECK(has_cloexec(out.pidfd));
	}
	close_result(&out);

	/* Not allowed: the pidfd and the FD are both closed. */
	fds_before = rfd_test_count_fds();
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"q", 1, &write_end, 1), 1);
	close(write_end);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, &why), -EPROTO);
	CHECK(why && strstr(why, "SCM_PIDFD"));
	CHECK_EQ(out.pidfd, -1);
	CHECK_EQ(out.n_fds, 0);
	CHECK(pipe_at_eof(read_end));
	CHECK_EQ(rfd_test_count_fds(), fds_before - 1);

	close(read_end);
	close_fds(sv, 2);
}

static void
test_listening_socket_path(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct rfd_cmsg_result out;
	char dir[] = "/tmp/rfd-fdsock-XXXXXX"; /* a mkdtemp() template */
	int listener = -1, client = -1, server = -1;
	int fds[3];

	REQUIRE(mkdtemp(dir));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/sock", dir);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(listener >= 0 && client >= 0);
	CHECK_EQ(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
	CHECK_EQ(listen(listener, 4), 0);
	CHECK_EQ(connect(client, (struct sockaddr *)&addr, sizeof(addr)), 0);
	server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	CHECK(server >= 0);
	make_read_ends(fds, 3);

	CHECK_EQ(rfd_sock_send(client, (const uint8_t *)"request", 7, fds, 2), 7);
	CHECK_EQ(rfd_sock_recv(server, recv_buf, RECV_CAP, 0, &out, NULL), 7);
	CHECK_MEM(recv_buf, "request", 7);
	CHECK_EQ(out.n_fds, 2);
	if (out.n_fds == 2) {
		CHECK(same_open_file(out.fds[0], fds[0]));
		CHECK(same_open_file(out.fds[1], fds[1]));
		CHECK(has_cloexec(out.fds[0]) && has_cloexec(out.fds[1]));
	}
	close_result(&out);

	CHECK_EQ(rfd_sock_send(server, (const uint8_t *)"reply", 5, &fds[2], 1), 5);
	CHECK_EQ(rfd_sock_recv(client, recv_buf, RECV_CAP, 0, &out, NULL), 5);
	CHECK_EQ(out.n_fds, 1);
	if (out.n_fds == 1)
		CHECK(same_open_file(out.fds[0], fds[2]));
	close_result(&out);

	close_fds(fds, 3);
	close(server);
	close(client);
	close(listener);
	CHECK_EQ(unlink(addr.sun_path), 0);
	CHECK_EQ(rmdir(dir), 0);
}

static void
test_send_to_closed_peer(void)
{
	int fd = STDERR_FILENO;
	int sv[2];

	make_pair(sv);
	close(sv[1]);
	/* Without MSG_NOSIGNAL, SIGPIPE would end the test program here. */
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"x", 1, &fd, 1), -EPIPE);
	close(sv[0]);
}

static void
test_recv_eagain_then_eof(void)
{
	struct rfd_cmsg_result out;
	int sv[2];

	make_pair(sv);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), -EAGAIN);
	CHECK_EQ(out.n_fds, 0);
	CHECK_EQ(out.pidfd, -1);
	close(sv[0]);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 0);
	CHECK_EQ(out.n_fds, 0);
	close(sv[1]);
}

/* FDs sent just before the peer closes still arrive ahead of EOF. */
static void
test_fds_arrive_before_eof(void)
{
	struct rfd_cmsg_result out;
	int fd;
	int sv[2];

	make_pair(sv);
	make_read_ends(&fd, 1);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"last", 4, &fd, 1), 4);
	close(sv[0]);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 4);
	CHECK_EQ(out.n_fds, 1);
	close_result(&out);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP, 0, &out, NULL), 0);
	close(fd);
	close(sv[1]);
}

/*
 * The flags and control messages fdsock.c hands the kernel, seen by
 * interposing sendmsg() and recvmsg(): this test binary's definitions take
 * the place of libc's for fdsock.o, and pass the calls on as raw syscalls.
 */
static int last_recv_flags = -1;
static size_t last_send_cmsgs;
static size_t last_send_cmsg_len;
static int last_send_cmsg_type;

ssize_t
recvmsg(int sock, struct msghdr *msg, int flags)
{
	last_recv_flags = flags;
	return syscall(SYS_recvmsg, sock, msg, flags);
}

ssize_t
sendmsg(int sock, const struct msghdr *msg, int flags)
{
	last_send_cmsgs = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		last_send_cmsgs++;
		last_send_cmsg_len = c->cmsg_len;
		last_send_cmsg_type = c->cmsg_level == SOL_SOCKET ? c->cmsg_type : -1;
	}
	return syscall(SYS_sendmsg, sock, msg, flags);
}

/* PEEK-1 and EXEC-1: never MSG_PEEK, always MSG_CMSG_CLOEXEC.  FD-SEND-2: one SCM_RIGHTS cmsg. */
static void
test_kernel_sees_the_right_flags_and_one_cmsg(void)
{
	int sv[2], fds[3];
	struct rfd_cmsg_result got;
	const char *why;
	uint8_t buf[16];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"abc", 3, fds, 3), 3);
	CHECK_EQ(last_send_cmsgs, 1);
	CHECK_EQ(last_send_cmsg_type, SCM_RIGHTS);
	CHECK_EQ(last_send_cmsg_len, CMSG_LEN(3 * sizeof(int)));

	CHECK_EQ(rfd_sock_recv(sv[1], buf, sizeof(buf), 0, &got, &why), 3);
	CHECK(last_recv_flags >= 0 && !(last_recv_flags & MSG_PEEK));
	CHECK(last_recv_flags & MSG_CMSG_CLOEXEC);
	CHECK_EQ(got.n_fds, 3);
	for (size_t i = 0; i < got.n_fds; i++)
		close(got.fds[i]);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

/* 253 FDs with both SO_PASSCRED and SO_PASSPIDFD on: everything fits, every FD is owned. */
static void
test_253_fds_with_credentials_and_pidfd(void)
{
	struct rfd_cmsg_result out;
	const char *why = NULL;
	int fds[RFD_MAX_FDS];
	int sv[2], on = 1, base;

	make_pair(sv);
	if (setsockopt(sv[1], SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on)) < 0) {
		rfd_test_skip("SO_PASSPIDFD not supported by this kernel");
		close_fds(sv, 2);
		return;
	}
	REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);
	base = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < RFD_MAX_FDS; i++)
		fds[i] = base;
	CHECK_EQ(rfd_sock_send(sv[0], (const uint8_t *)"x", 1, fds, RFD_MAX_FDS), 1);
	CHECK_EQ(rfd_sock_recv(sv[1], recv_buf, RECV_CAP,
	                       RFD_CMSG_ALLOW_CREDENTIALS | RFD_CMSG_ALLOW_PIDFD, &out, &why),
	         1);
	CHECK_EQ(out.n_fds, RFD_MAX_FDS);
	CHECK(out.has_creds && out.pid == getpid());
	CHECK(out.pidfd >= 0);
	close_result(&out);
	close(base);
	close_fds(sv, 2);
}

/*
 * ETOOMANYREFS: a sender without CAP_SYS_RESOURCE and CAP_SYS_ADMIN may not
 * have more FDs in flight than its RLIMIT_NOFILE.  CI runs as root, which is
 * exempt, so the child drops every capability first.  The kernel counts the
 * FDs in flight per user, so a root child also becomes a user of its own
 * that nothing else on the machine sends FDs as.
 */
static void
test_too_many_refs_is_reported(void)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct none[2] = {{0}};
	int status;
	pid_t child;

	if (rfd_test_under_valgrind()) {
		rfd_test_skip("valgrind only emulates RLIMIT_NOFILE (runs under ASan instead)");
		return;
	}
	fflush(NULL);
	child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		struct rlimit limit = {.rlim_cur = 64, .rlim_max = 64};
		int fds[RFD_MAX_FDS], sv[2], base;
		ssize_t first, second;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			_exit(10);
		base = open("/dev/null", O_RDONLY | O_CLOEXEC);
		for (size_t i = 0; i < RFD_MAX_FDS; i++)
			fds[i] = base;
		if (geteuid() == 0) {
			uid_t alone = (uid_t)(0x5f000000u + ((unsigned)getpid() & 0xffffu));

			if (setresgid(alone, alone, alone) < 0 ||
			    setresuid(alone, alone, alone) < 0)
				_exit(11);
		}
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0 || syscall(SYS_capset, &header, none) < 0)
			_exit(11);
		/* 253 in flight is over the limit of 64: the next send is refused. */
		first = rfd_sock_send(sv[0], (const uint8_t *)"a", 1, fds, RFD_MAX_FDS);
		second = rfd_sock_send(sv[0], (const uint8_t *)"b", 1, fds, RFD_MAX_FDS);
		_exit(first == 1 && second == -ETOOMANYREFS ? 0 : 12);
	}
	REQUIRE(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

static const struct rfd_test tests[] = {
    {"253_fds_with_credentials_and_pidfd", test_253_fds_with_credentials_and_pidfd},
    {"too_many_refs_is_reported", test_too_many_refs_is_reported},
    {"kernel_sees_the_right_flags_and_one_cmsg", test_kernel_sees_the_right_flags_and_one_cmsg},
    {"round_trip_0_fds", test_round_trip_0_fds},
    {"round_trip_1_fd", test_round_trip_1_fd},
    {"round_trip_2_fds", test_round_trip_2_fds},
    {"round_trip_253_fds", test_round_trip_253_fds},
    {"254_fds_refused_before_kernel", test_254_fds_refused_before_kernel},
    {"fds_without_bytes_refused", test_fds_without_bytes_refused},
    {"partial_send_carries_fds_once", test_partial_send_carries_fds_once},
    {"kernel_merges_chunk_before_fds", test_kernel_merges_chunk_before_fds},
    {"fd_chunks_not_merged", test_fd_chunks_not_merged},
    {"ctrunc_from_rlimit_closes_installed", test_ctrunc_from_rlimit_closes_installed},
    {"passcred_allowed", test_passcred_allowed},
    {"passcred_not_allowed", test_passcred_not_allowed},
    {"passpidfd", test_passpidfd},
    {"listening_socket_path", test_listening_socket_path},
    {"send_to_closed_peer", test_send_to_closed_peer},
    {"recv_eagain_then_eof", test_recv_eagain_then_eof},
    {"fds_arrive_before_eof", test_fds_arrive_before_eof},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
