/* SPDX-License-Identifier: MIT */
/*
 * The client and server over a real listening socket, the server in a child
 * process: FDs both ways, payload sizes, calls in flight, timeouts, and the
 * pipe-EOF check that FDs the server was given are closed; blocking calls
 * that wait in recvmsg() (replies in pieces, timeouts, a socket someone
 * made non-blocking), and the server reading what follows a message with
 * FDs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "testutil.h"

static char socket_path[108];
static pid_t server_pid = -1;

/* ---- The server, in the child ---- */

static struct rfd_msg *held; /* a request answered later */
static uint32_t last_note_fds;

static void
answer_count(struct rfd_msg *request)
{
	uint32_t n = (uint32_t)rfd_msg_fd_count(request);

	rfd_reply(request, &n, sizeof(n), NULL, 0, RFD_FDS_DUP);
}

static void
handle(void *user, struct rfd_msg *request)
{
	const char *method = rfd_msg_method(request);
	int fds[RFD_MAX_FDS];
	size_t n = rfd_msg_fd_count(request), len;
	const uint8_t *data = rfd_msg_data(request, &len);

	if (strcmp(method, "echo") == 0) {
		for (size_t i = 0; i < n; i++)
			fds[i] = rfd_msg_take_fd(request, i);
		rfd_reply(request, data, len, fds, n, RFD_FDS_TAKE);
	} else if (strcmp(method, "count") == 0) {
		answer_count(request);
	} else if (strcmp(method, "hold") == 0) {
		rfd_msg_free(held);
		held = request;
	} else if (strcmp(method, "release") == 0) {
		if (held)
			answer_count(held);
		held = NULL;
		answer_count(request);
	} else if (strcmp(method, "drop") == 0) {
		rfd_msg_free(request);
	} else if (strcmp(method, "fail") == 0) {
		rfd_reply_error(request, RFD_FAIL_INTERNAL, "failed on purpose");
	} else if (strcmp(method, "note") == 0) {
		last_note_fds = (uint32_t)n;
		rfd_msg_free(request);
	} else if (strcmp(method, "last_note") == 0) {
		rfd_reply(request, &last_note_fds, sizeof(last_note_fds), NULL, 0, RFD_FDS_DUP);
	} else if (strcmp(method, "whoami") == 0) {
		const struct rfd_peer *peer = rfd_msg_peer(request);
		int32_t ids[3] = {peer->pid, (int32_t)peer->uid, (int32_t)peer->gid};

		rfd_reply(request, ids, sizeof(ids), NULL, 0, RFD_FDS_DUP);
	} else if (strcmp(method, "open_fds") == 0) {
		/* How many FDs the server process has open, to check it leaks none. */
		uint32_t count = (uint32_t)rfd_test_count_fds();

		rfd_reply(request, &count, sizeof(count), NULL, 0, RFD_FDS_DUP);
	} else {
		rfd_reply_error(request, RFD_FAIL_UNKNOWN_METHOD, "unknown method");
	}
}

static struct rfd_server *child_server;

static void
on_term(int sig)
{
	rfd_server_stop(child_server);
}

static void
run_server(int ready_fd)
{
	struct rfd_server_options options;
	int r;

	rfd_server_options_init(&options);
	r = rfd_server_listen(socket_path, &options, handle, NULL, &child_server);
	if (r < 0) {
		fprintf(stderr, "server: listen: %s\n", strerror(-r));
		_exit(3);
	}
	signal(SIGTERM, on_term);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
	r = rfd_server_run(child_server, -1);
	rfd_msg_free(held);
	rfd_server_free(child_server);
	_exit(r < 0 ? 4 : 0);
}

static void
start_server(void)
{
	int ready[2];
	char c;

	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-test-%d.sock", (int)getpid());
	if (pipe2(ready, O_CLOEXEC) < 0)
		abort();
	server_pid = fork();
	if (server_pid == 0) {
		close(ready[0]);
		run_server(ready[1]);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "server did not start\n");
		exit(1);
	}
	close(ready[0]);
}

static void
stop_server(void)
{
	int status;

	kill(server_pid, SIGTERM);
	waitpid(server_pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(access(socket_path, F_OK) < 0); /* the socket file was removed */
}

/* ---- Helpers ---- */

static struct rfd_client *
connect_client(void)
{
	struct rfd_client *client = NULL;
	int r = rfd_client_connect(socket_path, NULL, &client);

	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "connect: %s", strerror(-r));
	return client;
}

static uint32_t
reply_u32(const struct rfd_msg *reply)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(reply, &len);
	uint32_t v = UINT32_MAX;

	if (len == sizeof(v))
		memcpy(&v, data, sizeof(v));
	return v;
}

static bool
same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return false;
	if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino)
		return false;
#ifdef SYS_kcmp
	{
		long r = syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, a, b);

		if (r >= 0)
			return r == 0;
	}
#endif
	return true;
}

static uint32_t
server_open_fds(struct rfd_client *client)
{
	struct rfd_msg *reply = NULL;
	uint32_t n = 0;

	if (rfd_client_call(client, "open_fds", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply) == 0)
		n = reply_u32(reply);
	rfd_msg_free(reply);
	return n;
}

/* ---- Tests ---- */

static void
echo_n_fds(struct rfd_client *client, size_t n)
{
	int fds[RFD_MAX_FDS];
	struct rfd_msg *reply = NULL;
	int r;

	for (size_t i = 0; i < n; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	r = rfd_client_call(client, "echo", "hi", 2, fds, n, RFD_FDS_DUP, 5000, &reply);
	CHECK_EQ(r, 0);
	if (r == 0) {
		CHECK_EQ(rfd_msg_kind(reply), RFD_MSG_REPLY);
		CHECK_EQ(rfd_msg_fd_count(reply), n);
		for (size_t i = 0; i < n && i < rfd_msg_fd_count(reply); i++) {
			int fd = rfd_msg_fd(reply, i);

			CHECK(same_file(fd, fds[i]));
			CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		}
	}
	rfd_msg_free(reply);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void
test_fds_both_ways(void)
{
	struct rfd_client *client = connect_client();
	uint32_t server_fds;

	REQUIRE(client);
	server_fds = server_open_fds(client);
	echo_n_fds(client, 0);
	echo_n_fds(client, 1);
	echo_n_fds(client, 2);
	echo_n_fds(client, 253);
	echo_n_fds(client, 3);
	CHECK_EQ(server_open_fds(client), server_fds);
	rfd_client_free(client);
}

static void
test_too_many_fds_is_a_clean_error(void)
{
	struct rfd_client *client = connect_client();
	int fds[RFD_MAX_FDS + 1];
	struct rfd_msg *reply = NULL;
	int before;

	REQUIRE(client);
	for (size_t i = 0; i < RFD_MAX_FDS + 1; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	before = rfd_test_count_fds();
	CHECK_EQ(rfd_client_call(client, "echo", NULL, 0, fds, RFD_MAX_FDS + 1, RFD_FDS_DUP, 5000,
	                         &reply),
	         -E2BIG);
	CHECK_EQ(rfd_test_count_fds(), before);
	/* Taken FDs are closed even though the call was refused. */
	CHECK_EQ(rfd_client_call(client, "echo", NULL, 0, fds, RFD_MAX_FDS + 1, RFD_FDS_TAKE, 5000,
	                         &reply),
	         -E2BIG);
	CHECK_EQ(rfd_test_count_fds(), before - (RFD_MAX_FDS + 1));
	/* The connection is still good. */
	echo_n_fds(client, 1);
	rfd_client_free(client);
}

static void
test_server_closes_received_fds(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	int pipe_fds[2];
	char c;

	REQUIRE(client);
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	CHECK_EQ(
	    rfd_client_call(client, "count", NULL, 0, &pipe_fds[1], 1, RFD_FDS_TAKE, 5000, &reply),
	    0);
	CHECK_EQ(reply ? reply_u32(reply) : 0, 1);
	rfd_msg_free(reply);
	/* OWN-2: the server closed its copy before it answered: EOF is there already. */
	{
		struct pollfd pfd = {.fd = pipe_fds[0], .events = POLLIN};

		CHECK_EQ(poll(&pfd, 1, 0), 1);
	}
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0);
	close(pipe_fds[0]);
	rfd_client_free(client);
}

static void
test_payload_sizes(void)
{
	static const size_t sizes[] = {1, 100, 4095, 4096, 65537, 1 << 20, 5 << 20};
	struct rfd_client *client = connect_client();
	int sndbuf = 4096;
	uint8_t *payload = malloc(5 << 20);

	REQUIRE(client);
	REQUIRE(payload);
	setsockopt(rfd_client_fd(client), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (size_t i = 0; i < (5 << 20); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct rfd_msg *reply = NULL;
		size_t len = 0;
		const uint8_t *data;
		int r;

		/* Both processes run under valgrind in that stage: far slower. */
		r = rfd_client_call(client, "echo", payload, sizes[s], &fd, 1, RFD_FDS_TAKE,
		                    rfd_test_under_valgrind() ? 120000 : 10000, &reply);
		CHECK_EQ(r, 0);
		if (r < 0)
			continue;
		data = rfd_msg_data(reply, &len);
		CHECK_EQ(len, sizes[s]);
		CHECK(len == sizes[s] && memcmp(data, payload, len) == 0);
		CHECK_EQ(rfd_msg_fd_count(reply), 1);
		rfd_msg_free(reply);
	}
	free(payload);
	rfd_client_free(client);
}

struct tally {
	int done;
	int ok;
	size_t fds;
};

static void
count_reply(void *user, int status, struct rfd_msg *reply)
{
	struct tally *tally = user;

	tally->done++;
	if (status == 0 && rfd_msg_kind(reply) == RFD_MSG_REPLY) {
		tally->ok++;
		tally->fds += rfd_msg_fd_count(reply);
	}
	rfd_msg_free(reply);
}

static void
test_many_calls_in_flight(void)
{
	struct rfd_client *client = connect_client();
	struct tally tally = {0};
	enum { CALLS = 200 };

	REQUIRE(client);
	for (int i = 0; i < CALLS; i++) {
		int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
		              open("/dev/null", O_RDONLY | O_CLOEXEC)};

		CHECK_EQ(rfd_client_call_async(client, "echo", &i, sizeof(i), fds, (size_t)(i % 3),
		                               RFD_FDS_DUP, 10000, count_reply, &tally, NULL),
		         0);
		close(fds[0]);
		close(fds[1]);
	}
	while (tally.done < CALLS) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};

		if (poll(&pfd, 1, 5000) <= 0)
			break;
		if (rfd_client_process(client, pfd.revents) < 0)
			break;
	}
	CHECK_EQ(tally.done, CALLS);
	CHECK_EQ(tally.ok, CALLS);
	CHECK_EQ(tally.fds, (CALLS / 3) * 3 + 1); /* 0, 1, 2 FDs in turn: 66*3 + (0+1) */
	rfd_client_free(client);
}

static void
test_timeout_then_late_reply_fds_are_closed(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	int pipe_fds[2];
	char c;

	REQUIRE(client);
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	/* The server holds this call; it times out here. */
	CHECK_EQ(rfd_client_call(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, 100, &reply),
	         -ETIMEDOUT);
	/* The held call is answered late, with no FDs; then FDs must still match. */
	CHECK_EQ(rfd_client_call(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	rfd_msg_free(reply);
	CHECK_EQ(
	    rfd_client_call(client, "echo", NULL, 0, &pipe_fds[1], 1, RFD_FDS_TAKE, 5000, &reply),
	    0);
	CHECK_EQ(reply ? rfd_msg_fd_count(reply) : 0, 1);
	rfd_msg_free(reply);
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0);
	close(pipe_fds[0]);
	rfd_client_free(client);
}

static void
test_errors_and_dropped_requests(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;

	REQUIRE(client);
	CHECK_EQ(rfd_client_call(client, "fail", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_kind(reply) == RFD_MSG_ERROR);
	CHECK(reply && rfd_msg_error_code(reply) == 0x203);
	CHECK(reply && strcmp(rfd_msg_error_text(reply), "failed on purpose") == 0);
	rfd_msg_free(reply);

	CHECK_EQ(rfd_client_call(client, "drop", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_kind(reply) == RFD_MSG_ERROR);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

static void
test_oneway_with_fds(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	int fds[3];

	REQUIRE(client);
	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_EQ(rfd_client_oneway(client, "note", NULL, 0, fds, 3, RFD_FDS_TAKE, 5000), 0);
	CHECK_EQ(rfd_client_call(client, "last_note", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	CHECK_EQ(reply ? reply_u32(reply) : 0, 3);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

/* CRED-1, CRED-2: each request carries the credentials taken when its connection was accepted. */
static void
test_requests_carry_peer_credentials(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	int32_t ids[3] = {0};
	size_t len = 0;

	REQUIRE(client);
	CHECK_EQ(rfd_client_call(client, "whoami", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	if (reply && rfd_msg_data(reply, &len) && len == sizeof(ids))
		memcpy(ids, rfd_msg_data(reply, NULL), sizeof(ids));
	CHECK_EQ(ids[0], getpid());
	CHECK_EQ(ids[1], getuid());
	CHECK_EQ(ids[2], getgid());
	rfd_msg_free(reply);
	rfd_client_free(client);
}

static bool
kernel_has_peer_pidfd(void)
{
	int sv[2], fd = -1;
	socklen_t len = sizeof(fd);
	bool has;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	has = getsockopt(sv[0], SOL_SOCKET, 77 /* SO_PEERPIDFD */, &fd, &len) == 0;
	if (fd >= 0)
		close(fd);
	close(sv[0]);
	close(sv[1]);
	return has;
}

/*
 * CRED-3: the server takes a pidfd of each peer at accept where the kernel
 * has SO_PEERPIDFD, and (CRED-5) closes it with the connection.
 */
static void
test_server_holds_a_pidfd_per_connection(void)
{
	struct rfd_client *client = connect_client(), *other;
	uint32_t before, during;
	int per_connection = kernel_has_peer_pidfd() ? 2 : 1;

	REQUIRE(client);
	before = server_open_fds(client);
	other = connect_client();
	REQUIRE(other);
	during = server_open_fds(client);
	CHECK_EQ(during, before + per_connection);
	rfd_client_free(other);
	for (int i = 0; i < 100 && server_open_fds(client) != before; i++)
		usleep(10000);
	CHECK_EQ(server_open_fds(client), before);
	rfd_client_free(client);
}

static void
on_alarm(int sig)
{
}

/* EINTR: signals arriving every millisecond do not cut a blocking call short. */
static void
test_signals_do_not_interrupt_a_call(void)
{
	struct rfd_client *client = connect_client();
	struct sigaction action = {.sa_handler = on_alarm}; /* no SA_RESTART */
	struct itimerval every_ms = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
	struct rfd_msg *reply = NULL;
	struct timespec t0, t1;
	long elapsed_ms;

	REQUIRE(client);
	if (rfd_test_under_valgrind()) {
		/* A signal a millisecond starves a program under valgrind: it never gets on. */
		rfd_test_skip("too slow under valgrind (runs in the other stages)");
		rfd_client_free(client);
		return;
	}
	sigaction(SIGALRM, &action, NULL);
	setitimer(ITIMER_REAL, &every_ms, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Held by the server: only the deadline may end it. */
	CHECK_EQ(rfd_client_call(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, 300, &reply),
	         -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(elapsed_ms >= 290);
	/* And the connection still works, the held call answered late and discarded. */
	CHECK_EQ(rfd_client_call(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

/* ---- Blocking calls that wait in recvmsg() ---- */

static long long
ms_since(const struct timespec *since, clockid_t clock)
{
	struct timespec now;

	clock_gettime(clock, &now);
	return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static int
connect_raw(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(addr.sun_path, socket_path, strlen(socket_path));
	if (sock >= 0 && connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(sock);
		return -1;
	}
	return sock;
}

static bool
write_all(int fd, const uint8_t *bytes, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, bytes, len);

		if (n <= 0)
			return false;
		bytes += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * In a child: relay bytes (no FDs) between @near, the client's end being
 * @client, and a new connection to the server; what the server sends goes
 * on in pieces of @piece bytes with @pause_ms between them.  Ends at EOF on
 * either side.
 */
static pid_t
start_slow_relay(int near, int client, size_t piece, int pause_ms)
{
	pid_t child;

	fflush(NULL);
	child = fork();
	if (child != 0)
		return child;
	close(client);
	int far = connect_raw();
	struct pollfd pfds[2] = {{.fd = near, .events = POLLIN}, {.fd = far, .events = POLLIN}};
	uint8_t bytes[4096];

	if (far < 0)
		_exit(2);
	for (;;) {
		ssize_t n;

		if (poll(pfds, 2, -1) < 0)
			_exit(3);
		if (pfds[0].revents) {
			n = read(near, bytes, sizeof(bytes));
			if (n <= 0)
				_exit(0);
			if (!write_all(far, bytes, (size_t)n))
				_exit(4);
		}
		if (pfds[1].revents) {
			n = read(far, bytes, sizeof(bytes));
			if (n <= 0)
				_exit(0);
			for (ssize_t at = 0; at < n; at += (ssize_t)piece) {
				size_t len = (size_t)(n - at) < piece ? (size_t)(n - at) : piece;

				if (at > 0)
					usleep((useconds_t)pause_ms * 1000);
				if (!write_all(near, bytes + at, len))
					_exit(5);
			}
		}
	}
}

static void
stop_relay(pid_t relay)
{
	int status;

	REQUIRE(waitpid(relay, &status, 0) == relay);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A reply that comes in pieces with pauses still completes a blocking call,
 * also when a pause outlasts the read's own timeout (half the call's here).
 */
static void
test_reply_in_pieces_with_pauses(void)
{
	static const struct {
		size_t piece;
		int pause_ms;
		int timeout_ms;
	} shapes[] = {
	    {3, 20, 5000},   /* many pieces */
	    {12, 700, 1200}, /* one pause longer than the first wait of 600 ms */
	};
	bool slow = rfd_test_under_valgrind();

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct rfd_client *client = NULL;
		struct rfd_msg *reply = NULL;
		struct timespec start;
		int sv[2], r;
		pid_t relay;

		REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		relay = start_slow_relay(sv[1], sv[0], shapes[i].piece, shapes[i].pause_ms);
		close(sv[1]);
		REQUIRE(relay > 0);
		REQUIRE(rfd_client_adopt(sv[0], NULL, &client) == 0);
		clock_gettime(CLOCK_MONOTONIC, &start);
		r = rfd_client_call(client, "count", NULL, 0, NULL, 0, RFD_FDS_DUP,
		                    slow ? 60000 : shapes[i].timeout_ms, &reply);
		CHECK_EQ(r, 0);
		CHECK_EQ(reply ? reply_u32(reply) : UINT32_MAX, 0);
		/* The reply took two pieces at least, so at least one pause. */
		CHECK(ms_since(&start, CLOCK_MONOTONIC) >= shapes[i].pause_ms);
		rfd_msg_free(reply);
		rfd_client_free(client);
		stop_relay(relay);
	}
}

/* A call's timeout ends a blocking call waiting in recvmsg() on time, and not before. */
static void
test_timeout_while_waiting_in_recv(void)
{
	static const int timeouts[] = {150, 400, 1000};
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;

	REQUIRE(client);
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
		struct timespec start;
		long long took;

		clock_gettime(CLOCK_MONOTONIC, &start);
		CHECK_EQ(rfd_client_call(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, timeouts[i],
		                         &reply),
		         -ETIMEDOUT);
		took = ms_since(&start, CLOCK_MONOTONIC);
		CHECK(took >= timeouts[i] - 1);
		/* As with poll(): late only by what scheduling costs. */
		if (!rfd_test_under_valgrind())
			CHECK(took <= timeouts[i] + 100);
	}
	/* The connection still works; the held call is answered late and discarded. */
	CHECK_EQ(rfd_client_call(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	CHECK_EQ(reply ? reply_u32(reply) : UINT32_MAX, 0);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

/*
 * Someone else set O_NONBLOCK on the client's socket (some event loops do
 * that to the FDs they watch): blocking calls still wait without spinning,
 * and still time out.
 */
static void
test_blocking_call_on_a_socket_made_non_blocking(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	struct timespec start, cpu;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int flags;

	REQUIRE(client);
	REQUIRE(fd >= 0);
	flags = fcntl(rfd_client_fd(client), F_GETFL);
	CHECK(flags >= 0 && !(flags & O_NONBLOCK));
	REQUIRE(fcntl(rfd_client_fd(client), F_SETFL, flags | O_NONBLOCK) == 0);

	clock_gettime(CLOCK_MONOTONIC, &start);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	CHECK_EQ(rfd_client_call(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, 500, &reply),
	         -ETIMEDOUT);
	CHECK(ms_since(&start, CLOCK_MONOTONIC) >= 499);
	if (!rfd_test_under_valgrind())
		CHECK(ms_since(&cpu, CLOCK_PROCESS_CPUTIME_ID) < 100);

	CHECK_EQ(rfd_client_call(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	rfd_msg_free(reply);
	CHECK_EQ(rfd_client_call(client, "count", NULL, 0, &fd, 1, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK_EQ(reply ? reply_u32(reply) : UINT32_MAX, 1);
	rfd_msg_free(reply);
	rfd_client_free(client);
	close(fd);
}

/* The socket waits in blocking calls, yet rfd_client_process() never blocks. */
static void
test_process_does_not_block(void)
{
	struct rfd_client *client = connect_client();
	struct tally tally = {0};
	struct rfd_msg *reply = NULL;
	struct timespec start;
	uint32_t id;

	REQUIRE(client);
	CHECK_EQ(rfd_client_call_async(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, -1,
	                               count_reply, &tally, &id),
	         0);
	/* Nothing to read: a read that blocked would never return (the alarm ends the test). */
	alarm(10);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rfd_client_process(client, POLLIN | POLLOUT), 0);
	alarm(0);
	CHECK(ms_since(&start, CLOCK_MONOTONIC) < 1000);
	CHECK_EQ(tally.done, 0);
	CHECK_EQ(rfd_client_cancel(client, id), 0);
	CHECK_EQ(tally.done, 1);
	CHECK_EQ(rfd_client_call(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply),
	         0);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

/*
 * A request with FDs followed at once by others, some with FDs and some
 * without, between blocking calls with FDs: the server answers each without
 * waiting for a new event, whether it reads on after FDs or not.
 */
static void
test_server_reads_what_follows_fds(void)
{
	struct rfd_client *client = connect_client();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t server_fds;

	REQUIRE(client);
	REQUIRE(fd >= 0);
	server_fds = server_open_fds(client);
	for (int round = 0; round < 40; round++) {
		struct tally tally = {0};
		struct timespec start;

		/* Calls one at a time first, so the server may stop reading after FDs. */
		for (int i = 0; i < round % 8; i++) {
			struct rfd_msg *reply = NULL;

			CHECK_EQ(rfd_client_call(client, "count", NULL, 0, &fd, 1, RFD_FDS_DUP,
			                         5000, &reply),
			         0);
			rfd_msg_free(reply);
		}
		for (int i = 0; i <= round % 3 + 1; i++)
			CHECK_EQ(rfd_client_call_async(client, "count", NULL, 0, &fd,
			                               (size_t)(i == 0 || round % 2), RFD_FDS_DUP,
			                               5000, count_reply, &tally, NULL),
			         0);
		clock_gettime(CLOCK_MONOTONIC, &start);
		while (tally.done <= round % 3 + 1 && ms_since(&start, CLOCK_MONOTONIC) < 5000) {
			struct pollfd pfd = {.fd = rfd_client_fd(client),
			                     .events = rfd_client_events(client)};

			if (poll(&pfd, 1, 1000) < 0 || rfd_client_process(client, pfd.revents) < 0)
				break;
		}
		CHECK_EQ(tally.ok, round % 3 + 2);
		/* Promptly: not at a timeout, nor at the next call. */
		CHECK(ms_since(&start, CLOCK_MONOTONIC) < 1000);
	}
	CHECK_EQ(server_open_fds(client), server_fds);
	rfd_client_free(client);
	close(fd);
}

static void
test_connect_errors(void)
{
	struct rfd_client *client = NULL;
	char long_path[200];

	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	CHECK_EQ(rfd_client_connect(long_path, NULL, &client), -ENAMETOOLONG);
	CHECK_EQ(rfd_client_connect("/nonexistent/rfd.sock", NULL, &client), -ENOENT);
	CHECK(client == NULL);
}

/* ---- Connecting ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A server whose accept queue is full: rfd_client_connect() gives up with
 * -ETIMEDOUT after connect_timeout_ms instead of waiting in connect() for
 * ever, and leaves no FD behind.
 */
static void
test_connect_to_a_full_accept_queue_times_out(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct rfd_client_options options;
	struct rfd_client *client = NULL;
	int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), queued[8];
	size_t n = 0;
	long long start;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/rfd-test-full-%d.sock", (int)getpid());
	unlink(addr.sun_path);
	REQUIRE(listener >= 0);
	REQUIRE(bind(listener, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	REQUIRE(listen(listener, 0) == 0);
	/* Fill the queue: connections nobody accepts, until the kernel says EAGAIN. */
	while (n < 8) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		REQUIRE(s >= 0);
		if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			CHECK_EQ(errno, EAGAIN);
			close(s);
			break;
		}
		queued[n++] = s;
	}
	REQUIRE(n < 8);
	rfd_client_options_init(&options);
	options.connect_timeout_ms = 300;
	start = now_ms();
	CHECK_EQ(rfd_client_connect(addr.sun_path, &options, &client), -ETIMEDOUT);
	CHECK(client == NULL);
	CHECK(now_ms() - start >= 290 && now_ms() - start < 2000);
	for (size_t i = 0; i < n; i++)
		close(queued[i]);
	close(listener);
	unlink(addr.sun_path);
}

/* ---- Blocking calls from callbacks ---- */

struct nested {
	struct rfd_client *client;
	int pipe_read; /* the read end of the pipe whose write end the nested call takes */
	int pipe_write;
	int call, oneway, process, stream_next;
	bool ran;
};

static void
call_from_callback(void *user, int status, struct rfd_msg *reply)
{
	struct nested *n = user;
	struct rfd_msg *inner = NULL;

	rfd_msg_free(reply);
	if (status != 0)
		return;
	n->ran = true;
	n->call = rfd_client_call(n->client, "echo", "x", 1, &n->pipe_write, 1, RFD_FDS_TAKE, 1000,
	                          &inner);
	n->pipe_write = -1; /* taken, whatever the call did */
	rfd_msg_free(inner);
	n->oneway = rfd_client_oneway(n->client, "echo", "x", 1, NULL, 0, RFD_FDS_DUP, 1000);
	n->process = rfd_client_process(n->client, POLLIN);
	n->stream_next = rfd_client_stream_next(n->client, 12345, 0, &inner);
}

/*
 * A blocking call from inside a callback would read the socket under the
 * read that runs the callback: it is refused with -EDEADLK, sending nothing
 * and closing the FDs it was to take, and the connection goes on (a second
 * reply read in the same pass as the first is still delivered whole).
 */
static void
test_blocking_call_from_a_callback_is_refused(void)
{
	struct rfd_client *client = connect_client();
	struct tally tally = {0};
	struct nested n = {.client = client};
	struct rfd_msg *reply = NULL;
	int ends[2];
	char byte;

	REQUIRE(client && pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0);
	n.pipe_read = ends[0];
	n.pipe_write = ends[1];
	CHECK_EQ(rfd_client_call_async(client, "echo", "a", 1, NULL, 0, RFD_FDS_DUP, 5000,
	                               call_from_callback, &n, NULL),
	         0);
	CHECK_EQ(rfd_client_call_async(client, "echo", "c", 1, NULL, 0, RFD_FDS_DUP, 5000,
	                               count_reply, &tally, NULL),
	         0);
	/* Both replies are likely read in one pass: the nested call must not disturb the second. */
	usleep(100000);
	while (!n.ran || tally.done < 1) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};

		REQUIRE(poll(&pfd, 1, 5000) > 0);
		REQUIRE(rfd_client_process(client, pfd.revents) == 0);
	}
	CHECK_EQ(n.call, -EDEADLK);
	CHECK_EQ(n.oneway, -EDEADLK);
	CHECK_EQ(n.process, -EDEADLK);
	CHECK_EQ(n.stream_next, -ENOENT); /* no such stream: that comes first */
	CHECK(strstr(rfd_client_error(client), "from a callback") != NULL);
	CHECK_EQ(tally.ok, 1);
	/* The refused call closed the write end it was to take: the pipe reads EOF. */
	CHECK_EQ(read(n.pipe_read, &byte, 1), 0);
	CHECK_EQ(rfd_client_call(client, "echo", "d", 1, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_kind(reply) == RFD_MSG_REPLY);
	rfd_msg_free(reply);
	close(n.pipe_read);
	rfd_client_free(client);
}

/* ---- A server in the caller's edge-triggered loop ---- */

static void
echo_handler(void *user, struct rfd_msg *request)
{
	int *handled = user;
	size_t n = rfd_msg_fd_count(request);
	int fds[1];

	if (n > 1)
		n = 1;
	for (size_t i = 0; i < n; i++)
		fds[i] = rfd_msg_fd(request, i);
	(*handled)++;
	rfd_reply(request, "\x00", 1, fds, n, RFD_FDS_DUP);
}

/* The child: rounds of a call with an FD and one without, back to back; exits with the stalls. */
static void
two_calls_per_round(const char *path, int rounds)
{
	struct rfd_client *client = NULL;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), stalls = 0;

	if (fd < 0 || rfd_client_connect(path, NULL, &client) < 0)
		_exit(100);
	for (int round = 0; round < rounds; round++) {
		struct tally tally = {0};
		int waited = 0;

		rfd_client_call_async(client, "echo", "\x00", 1, &fd, 1, RFD_FDS_DUP, -1,
		                      count_reply, &tally, NULL);
		rfd_client_call_async(client, "echo", "\x00", 1, NULL, 0, RFD_FDS_DUP, -1,
		                      count_reply, &tally, NULL);
		while (tally.done < 2 && waited < 1000) {
			struct pollfd pfd = {.fd = rfd_client_fd(client),
			                     .events = rfd_client_events(client)};
			int r = poll(&pfd, 1, 50);

			rfd_client_process(client, r > 0 ? pfd.revents : 0);
			waited += 50;
		}
		if (tally.ok < 2) {
			stalls++;
			break;
		}
	}
	rfd_client_free(client);
	close(fd);
	_exit(stalls);
}

/*
 * rfd_server_fd() watched edge-triggered, rfd_server_run(server, 0) at each
 * event: a request with FDs followed at once by one without is answered
 * without another event (the server must not leave input behind for a
 * level-triggered wake-up that such a loop never sees).
 */
static void
test_server_in_an_edge_triggered_loop(void)
{
	char path[108];
	struct rfd_server *server = NULL;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	int handled = 0, status = 0, ep = epoll_create1(EPOLL_CLOEXEC), done[2];
	pid_t child;

	snprintf(path, sizeof(path), "/tmp/rfd-test-et-%d.sock", (int)getpid());
	REQUIRE(ep >= 0 && pipe2(done, O_CLOEXEC) == 0);
	REQUIRE(rfd_server_listen(path, NULL, echo_handler, &handled, &server) == 0);
	fflush(NULL);
	child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		close(done[0]);
		two_calls_per_round(path, 30);
	}
	close(done[1]);
	ev.data.u32 = 0;
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, rfd_server_fd(server), &ev), 0);
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, done[0], &ev), 0);
	for (bool live = true; live;) {
		struct epoll_event out[2];
		int n = epoll_wait(ep, out, 2, 10000);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			if (out[i].data.u32 == 1)
				live = false; /* the child has gone */
		for (int i = 0; i < n; i++)
			if (out[i].data.u32 == 0)
				rfd_server_run(server, 0);
	}
	REQUIRE(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK_EQ(handled, 60);
	rfd_server_free(server);
	close(done[0]);
	close(ep);
	unlink(path);
}

static const struct rfd_test tests[] = {
    {"fds_both_ways", test_fds_both_ways},
    {"server_in_an_edge_triggered_loop", test_server_in_an_edge_triggered_loop},
    {"connect_to_a_full_accept_queue_times_out", test_connect_to_a_full_accept_queue_times_out},
    {"blocking_call_from_a_callback_is_refused", test_blocking_call_from_a_callback_is_refused},
    {"too_many_fds_is_a_clean_error", test_too_many_fds_is_a_clean_error},
    {"server_closes_received_fds", test_server_closes_received_fds},
    {"payload_sizes", test_payload_sizes},
    {"many_calls_in_flight", test_many_calls_in_flight},
    {"timeout_then_late_reply_fds_are_closed", test_timeout_then_late_reply_fds_are_closed},
    {"errors_and_dropped_requests", test_errors_and_dropped_requests},
    {"oneway_with_fds", test_oneway_with_fds},
    {"requests_carry_peer_credentials", test_requests_carry_peer_credentials},
    {"server_holds_a_pidfd_per_connection", test_server_holds_a_pidfd_per_connection},
    {"signals_do_not_interrupt_a_call", test_signals_do_not_interrupt_a_call},
    {"reply_in_pieces_with_pauses", test_reply_in_pieces_with_pauses},
    {"timeout_while_waiting_in_recv", test_timeout_while_waiting_in_recv},
    {"blocking_call_on_a_socket_made_non_blocking",
     test_blocking_call_on_a_socket_made_non_blocking},
    {"process_does_not_block", test_process_does_not_block},
    {"server_reads_what_follows_fds", test_server_reads_what_follows_fds},
    {"connect_errors", test_connect_errors},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	int status;

	signal(SIGPIPE, SIG_IGN);
	start_server();
	status = rfd_test_main(argc, argv, tests);
	stop_server();
	return rfd_test_failures ? EXIT_FAILURE : status;
}
