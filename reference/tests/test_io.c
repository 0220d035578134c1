/* SPDX-License-Identifier: MIT */
/*
 * A connection core on a real socket (io.c): FDs that go out at once are
 * sent without copies and only the ones that must wait are duplicated;
 * reads stop once the socket is drained, or after FDs for a level-triggered
 * caller; a read can wait for bytes; the input buffer gives back what a
 * large message needed; and a call with an FD costs the allocations it
 * must.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "alloc.h"
#include "conn.h"
#include "io.h"
#include "testutil.h"

enum {
	MAX_MSGS = 8,
	READS = 64,
	BIG = 1 << 20,
	IDLE_BOUND = 4096, /* what an input buffer may keep between frames */
};

/* ---- One end of a socketpair with its core ---- */

struct side {
	int sock;
	struct rfd_conn *conn;
	struct rfd_msg *msgs[MAX_MSGS]; /* requests (server) or replies (client) */
	int n_msgs;
	int failed_err;
};

static void
keep_msg(struct side *side, struct rfd_msg *msg)
{
	if (side->n_msgs < MAX_MSGS)
		side->msgs[side->n_msgs++] = msg;
	else
		rfd_msg_free(msg);
}

static void
on_request(void *user, struct rfd_msg *request)
{
	keep_msg(user, request);
}

static void
on_reply(void *user, uint32_t stream_id, int status, struct rfd_msg *reply)
{
	if (reply)
		keep_msg(user, reply);
}

static void
on_failed(void *user, int err, const char *why)
{
	((struct side *)user)->failed_err = err;
}

static const struct rfd_conn_callbacks callbacks = {
    .request = on_request,
    .reply = on_reply,
    .failed = on_failed,
};

static void
free_msgs(struct side *side)
{
	for (int i = 0; i < side->n_msgs; i++)
		rfd_msg_free(side->msgs[i]);
	side->n_msgs = 0;
}

/* A client core and a server core on the two ends of a socketpair, SETUP exchanged. */
static bool
pair_open(struct side *client, struct side *server, const struct rfd_limits *limits)
{
	int socks[2];

	memset(client, 0, sizeof(*client));
	memset(server, 0, sizeof(*server));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, socks) < 0)
		return false;
	client->sock = socks[0];
	server->sock = socks[1];
	client->conn = rfd_conn_new(RFD_ROLE_CLIENT, limits, &callbacks, client);
	server->conn = rfd_conn_new(RFD_ROLE_SERVER, limits, &callbacks, server);
	if (!client->conn || !server->conn)
		return false;
	rfd_io_flush(client->sock, client->conn);
	rfd_io_read(server->sock, server->conn, 0, READS);
	rfd_io_flush(server->sock, server->conn);
	rfd_io_read(client->sock, client->conn, 0, READS);
	return rfd_conn_ready(client->conn) && rfd_conn_ready(server->conn);
}

static void
pair_close(struct side *client, struct side *server)
{
	free_msgs(client);
	free_msgs(server);
	rfd_conn_free(client->conn);
	rfd_conn_free(server->conn);
	close(client->sock);
	close(server->sock);
}

/* Write what @from has queued and read it at @to until @to holds @n_msgs messages. */
static void
pump_until(struct side *from, struct side *to, int n_msgs)
{
	for (int i = 0; i < 100000 && to->n_msgs < n_msgs; i++) {
		if (rfd_io_flush(from->sock, from->conn) < 0)
			return;
		if (rfd_io_read(to->sock, to->conn, 0, READS) < 0)
			return;
	}
}

/* The client's send path (client.c): lend the FDs, queue, write at once, settle. */
static int
send_lent(struct side *client, const void *args, size_t len, const int *fds, size_t n_fds)
{
	struct rfd_fdgroup *group;
	uint32_t id;
	int r = rfd_fds_lend(fds, n_fds, &group);
	int kept;

	if (r < 0)
		return r;
	r = rfd_conn_send_request(client->conn, RFD_REQUEST_RESPONSE, "call", args, len, 0, group,
	                          &id);
	if (r == 0)
		r = rfd_io_flush(client->sock, client->conn);
	kept = rfd_fds_settle(client->conn, group);
	return r < 0 ? r : kept;
}

/* Queue a request of @len bytes that cannot all be written now; 0 when bytes stay queued. */
static int
fill_socket(struct side *client, uint8_t *big, size_t len)
{
	uint32_t id;
	int r = rfd_conn_send_request(client->conn, RFD_REQUEST_RESPONSE, "big", big, len, 0, NULL,
	                              &id);

	if (r == 0)
		r = rfd_io_flush(client->sock, client->conn);
	if (r == 0 && rfd_conn_out_pending(client->conn) == 0)
		r = -EAGAIN;
	return r;
}

/* ---- A full FD table ---- */

struct fd_table {
	struct rlimit saved;
	int fillers[256];
	int n_fillers;
};

static int
highest_open_fd(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *entry;
	int highest = -1;

	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.' && atoi(entry->d_name) > highest)
			highest = atoi(entry->d_name);
	closedir(dir);
	return highest;
}

/* Valgrind only emulates RLIMIT_NOFILE: the tests that fill the FD table skip there. */
static bool
fd_table_fillable(void)
{
	if (!rfd_test_under_valgrind())
		return true;
	rfd_test_skip("valgrind only emulates RLIMIT_NOFILE");
	return false;
}

/* Lower the soft RLIMIT_NOFILE to the open FDs and take every free slot below it. */
static bool
fd_table_fill(struct fd_table *t)
{
	struct rlimit limit;
	int fd = -1;

	t->n_fillers = 0;
	if (getrlimit(RLIMIT_NOFILE, &t->saved) < 0)
		return false;
	limit = t->saved;
	limit.rlim_cur = (rlim_t)highest_open_fd() + 1;
	if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
		return false;
	while (t->n_fillers < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		t->fillers[t->n_fillers++] = fd;
	return fd < 0 && errno == EMFILE;
}

static void
fd_table_restore(struct fd_table *t)
{
	while (t->n_fillers > 0)
		close(t->fillers[--t->n_fillers]);
	setrlimit(RLIMIT_NOFILE, &t->saved);
}

/* Whether @write_end and @read_end are the two ends of one pipe: a byte goes through. */
static bool
same_pipe(int write_end, int read_end)
{
	char c = 0;

	return write(write_end, "x", 1) == 1 && read(read_end, &c, 1) == 1 && c == 'x';
}

/* ---- Lent FDs ---- */

static void
test_lent_fds_need_no_spare_slot(void)
{
	struct side client, server;
	struct fd_table table;
	int pipe_fds[2];
	bool full;
	int r;

	if (!fd_table_fillable())
		return;
	REQUIRE(pair_open(&client, &server, NULL));
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);

	/* Nothing queued ahead: the caller's own FD goes out, no copy is made. */
	full = fd_table_fill(&table);
	r = send_lent(&client, "args", 4, &pipe_fds[1], 1);
	fd_table_restore(&table);
	CHECK(full);
	CHECK_EQ(r, 0);
	CHECK_EQ(rfd_conn_out_pending(client.conn), 0);
	CHECK(rfd_test_fd_is_open(pipe_fds[1]));

	pump_until(&client, &server, 1);
	REQUIRE(server.n_msgs == 1);
	REQUIRE(rfd_msg_fd_count(server.msgs[0]) == 1);
	close(pipe_fds[1]);
	CHECK(same_pipe(rfd_msg_fd(server.msgs[0], 0), pipe_fds[0]));

	pair_close(&client, &server);
	close(pipe_fds[0]);
}

static void
test_lent_fds_that_must_wait_are_copied(void)
{
	struct side client, server;
	uint8_t *big = calloc(1, BIG);
	int pipe_fds[2];
	char c;

	REQUIRE(big);
	REQUIRE(pair_open(&client, &server, NULL));
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);

	CHECK_EQ(fill_socket(&client, big, BIG), 0);
	CHECK_EQ(send_lent(&client, "args", 4, &pipe_fds[1], 1), 0);
	CHECK_EQ(rfd_conn_error(client.conn), 0);
	/* The caller keeps its FD and may close it at once: the queued call holds a copy. */
	CHECK(rfd_test_fd_is_open(pipe_fds[1]));
	close(pipe_fds[1]);

	pump_until(&client, &server, 2);
	REQUIRE(server.n_msgs == 2);
	REQUIRE(rfd_msg_fd_count(server.msgs[1]) == 1);
	CHECK(same_pipe(rfd_msg_fd(server.msgs[1], 0), pipe_fds[0]));
	/* Once sent the copy was closed: with the received FD gone, the pipe has no writer. */
	free_msgs(&server);
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0);

	pair_close(&client, &server);
	close(pipe_fds[0]);
	free(big);
}

static void
test_lent_fds_failing_to_copy_fail_the_connection(void)
{
	struct side client, server;
	struct fd_table table;
	uint8_t *big;
	bool full;
	int fd, r;

	if (!fd_table_fillable())
		return;
	big = calloc(1, BIG);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(big && fd >= 0);
	REQUIRE(pair_open(&client, &server, NULL));

	CHECK_EQ(fill_socket(&client, big, BIG), 0);
	full = fd_table_fill(&table);
	r = send_lent(&client, "args", 4, &fd, 1);
	fd_table_restore(&table);
	CHECK(full);
	CHECK_EQ(r, -EMFILE);
	CHECK_EQ(rfd_conn_error(client.conn), -EMFILE);
	CHECK_EQ(client.failed_err, -EMFILE);
	CHECK(rfd_test_fd_is_open(fd));

	pair_close(&client, &server);
	close(fd);
	free(big);
}

static void
test_lent_fds_of_a_refused_call_stay_the_callers(void)
{
	struct rfd_limits limits;
	struct side client, server;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int bad;

	rfd_limits_init(&limits);
	limits.max_in_flight = 1;
	REQUIRE(fd >= 0);
	REQUIRE(pair_open(&client, &server, &limits));
	bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(bad);

	CHECK_EQ(send_lent(&client, "one", 3, &fd, 1), 0);
	CHECK_EQ(send_lent(&client, "two", 3, &fd, 1), -EAGAIN);
	CHECK_EQ(send_lent(&client, "three", 5, &bad, 1), -EBADF);
	CHECK_EQ(rfd_conn_error(client.conn), 0);
	CHECK(rfd_test_fd_is_open(fd));

	pair_close(&client, &server);
	CHECK(rfd_test_fd_is_open(fd));
	close(fd);
}

/* The same through the public client: RFD_FDS_DUP with no FD slot to spare. */

static pid_t server_pid;
static char socket_path[108];
static struct rfd_server *child_server;

static void
count_fds(void *user, struct rfd_msg *request)
{
	uint32_t n = (uint32_t)rfd_msg_fd_count(request);

	rfd_reply(request, &n, sizeof(n), NULL, 0, RFD_FDS_DUP);
}

static void
stop_child(int sig)
{
	rfd_server_stop(child_server);
}

static bool
start_server(void)
{
	int ready[2];
	char c;

	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-test-io-%d.sock", (int)getpid());
	if (pipe2(ready, O_CLOEXEC) < 0)
		return false;
	server_pid = fork();
	if (server_pid == 0) {
		close(ready[0]);
		if (rfd_server_listen(socket_path, NULL, count_fds, NULL, &child_server) < 0)
			_exit(3);
		signal(SIGTERM, stop_child);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		close(ready[1]);
		rfd_server_run(child_server, -1);
		rfd_server_free(child_server);
		_exit(0);
	}
	close(ready[1]);
	c = 0;
	if (server_pid < 0 || read(ready[0], &c, 1) != 1)
		c = 0;
	close(ready[0]);
	return c == 'r';
}

static void
stop_server(void)
{
	int status = 0;

	kill(server_pid, SIGTERM);
	waitpid(server_pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_client_dup_call_with_a_full_fd_table(void)
{
	struct rfd_client *client = NULL;
	struct rfd_msg *reply = NULL;
	struct fd_table table;
	uint32_t n = 0;
	size_t len = 0;
	const uint8_t *data;
	bool full;
	int fd, r;

	if (!fd_table_fillable())
		return;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(start_server());
	r = rfd_client_connect(socket_path, NULL, &client);
	CHECK_EQ(r, 0);
	if (r == 0) {
		full = fd_table_fill(&table);
		r = rfd_client_call(client, "count", NULL, 0, &fd, 1, RFD_FDS_DUP, 5000, &reply);
		fd_table_restore(&table);
		CHECK(full);
		CHECK_EQ(r, 0);
		data = reply ? rfd_msg_data(reply, &len) : NULL;
		if (len == sizeof(n))
			memcpy(&n, data, sizeof(n));
		CHECK_EQ(n, 1);
		CHECK(rfd_test_fd_is_open(fd));
	}
	rfd_msg_free(reply);
	rfd_client_free(client);
	stop_server();
	close(fd);
}

/* ---- Reads ---- */

static void
test_short_read_without_fds_ends_the_reads(void)
{
	struct side client, server;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t id;

	REQUIRE(fd >= 0);
	REQUIRE(pair_open(&client, &server, NULL));

	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "call", "a", 1, 0, NULL, &id),
	    0);
	CHECK_EQ(rfd_io_flush(client.sock, client.conn), 0);
	/* One read took all there was, and said so: no read left to find EAGAIN. */
	CHECK_EQ(rfd_io_read(server.sock, server.conn, 0, 1), 0);
	CHECK_EQ(server.n_msgs, 1);

	/* A read that brought FDs may have stopped at their message: read on. */
	CHECK_EQ(send_lent(&client, "b", 1, &fd, 1), 0);
	CHECK_EQ(rfd_io_read(server.sock, server.conn, 0, 1), 1);
	CHECK_EQ(server.n_msgs, 2);
	CHECK_EQ(rfd_io_read(server.sock, server.conn, 0, 1), 0);

	pair_close(&client, &server);
	close(fd);
}

/* RFD_IO_LEVEL: a read that brought FDs ends the reads too; the next call takes what is left. */
static void
test_level_read_stops_after_fds(void)
{
	struct side client, server;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t id;

	REQUIRE(fd >= 0);
	REQUIRE(pair_open(&client, &server, NULL));

	CHECK_EQ(send_lent(&client, "a", 1, &fd, 1), 0);
	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "call", "b", 1, 0, NULL, &id),
	    0);
	CHECK_EQ(rfd_io_flush(client.sock, client.conn), 0);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_LEVEL, NULL), 0);
	CHECK_EQ(server.n_msgs, 1);
	CHECK_EQ(server.n_msgs >= 1 ? rfd_msg_fd_count(server.msgs[0]) : 0, 1);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_LEVEL, NULL), 0);
	CHECK_EQ(server.n_msgs, 2);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_LEVEL, NULL), 0);
	CHECK_EQ(server.n_msgs, 2);

	/* Without the flag, the same two messages take one call. */
	CHECK_EQ(send_lent(&client, "c", 1, &fd, 1), 0);
	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "call", "d", 1, 0, NULL, &id),
	    0);
	CHECK_EQ(rfd_io_flush(client.sock, client.conn), 0);
	CHECK_EQ(rfd_io_read(server.sock, server.conn, 0, READS), 0);
	CHECK_EQ(server.n_msgs, 4);

	pair_close(&client, &server);
	close(fd);
}

static long long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static bool
set_blocking(int sock, bool blocking, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	int flags = fcntl(sock, F_GETFL);

	if (flags < 0)
		return false;
	flags = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
	return fcntl(sock, F_SETFL, flags) == 0 &&
	       setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
}

/* RFD_IO_WAIT: the first read waits for bytes, until SO_RCVTIMEO passes. */
static void
test_waiting_read(void)
{
	struct side client, server;
	struct timespec start;
	uint32_t id;
	pid_t child;
	int status;

	REQUIRE(pair_open(&client, &server, NULL));
	REQUIRE(set_blocking(server.sock, true, 100));

	/* Nothing comes: the read ends at its timeout, not before. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_WAIT, NULL),
	         RFD_IO_NOTHING_CAME);
	CHECK(elapsed_ms(&start) >= 90);
	CHECK_EQ(server.n_msgs, 0);
	CHECK_EQ(rfd_conn_error(server.conn), 0);

	/* A request written 200 ms later, by a child, ends the wait. */
	REQUIRE(set_blocking(server.sock, true, 5000));
	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "call", "a", 1, 0, NULL, &id),
	    0);
	fflush(NULL);
	child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		usleep(200 * 1000);
		_exit(rfd_io_flush(client.sock, client.conn) == 0 ? 0 : 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_WAIT, NULL), 0);
	CHECK(elapsed_ms(&start) >= 150);
	CHECK_EQ(server.n_msgs, 1);
	REQUIRE(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* With O_NONBLOCK the read cannot wait: it says so at once. */
	REQUIRE(set_blocking(server.sock, false, 5000));
	clock_gettime(CLOCK_MONOTONIC, &start);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_WAIT, NULL),
	         RFD_IO_NOTHING_CAME);
	CHECK(elapsed_ms(&start) < 1000);
	CHECK_EQ(rfd_conn_error(server.conn), 0);

	pair_close(&client, &server);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

/* A signal ends a waiting read (EINTR is not retried there), and the connection stays good. */
static void
test_waiting_read_ends_at_a_signal(void)
{
	struct sigaction action = {.sa_handler = on_alarm}, saved;
	struct itimerval once = {{0, 0}, {0, 100 * 1000}};
	struct side client, server;
	struct timespec start;
	long long took;
	uint32_t id;

	REQUIRE(pair_open(&client, &server, NULL));
	REQUIRE(set_blocking(server.sock, true, 5000));
	sigaction(SIGALRM, &action, &saved);
	setitimer(ITIMER_REAL, &once, NULL);
	clock_gettime(CLOCK_MONOTONIC, &start);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_WAIT, NULL),
	         RFD_IO_NOTHING_CAME);
	took = elapsed_ms(&start);
	sigaction(SIGALRM, &saved, NULL);
	CHECK(took >= 90 && took < 4000);
	CHECK_EQ(rfd_conn_error(server.conn), 0);

	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "call", "a", 1, 0, NULL, &id),
	    0);
	CHECK_EQ(rfd_io_flush(client.sock, client.conn), 0);
	CHECK_EQ(rfd_io_read_sender(server.sock, server.conn, 0, READS, RFD_IO_WAIT, NULL), 0);
	CHECK_EQ(server.n_msgs, 1);

	pair_close(&client, &server);
}

static void
test_input_buffer_shrinks_after_a_large_message(void)
{
	struct side client, server;
	uint8_t *big = calloc(1, BIG);
	size_t largest = 0, len = 0;
	uint32_t id;

	REQUIRE(big);
	REQUIRE(pair_open(&client, &server, NULL));
	CHECK(rfd_conn_in_capacity(server.conn) <= IDLE_BOUND);

	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "big", big, BIG, 0, NULL, &id),
	    0);
	for (int i = 0; i < 100000 && server.n_msgs == 0; i++) {
		size_t cap;

		rfd_io_flush(client.sock, client.conn);
		rfd_io_read(server.sock, server.conn, 0, 1);
		cap = rfd_conn_in_capacity(server.conn);
		largest = cap > largest ? cap : largest;
	}
	REQUIRE(server.n_msgs == 1);
	rfd_msg_data(server.msgs[0], &len);
	CHECK_EQ(len, BIG);
	CHECK(largest >= BIG);
	CHECK(rfd_conn_in_capacity(server.conn) <= IDLE_BOUND);

	/* Small messages keep it small. */
	CHECK_EQ(
	    rfd_conn_send_request(client.conn, RFD_REQUEST_RESPONSE, "small", "s", 1, 0, NULL, &id),
	    0);
	pump_until(&client, &server, 2);
	CHECK_EQ(server.n_msgs, 2);
	CHECK(rfd_conn_in_capacity(server.conn) <= IDLE_BOUND);

	pair_close(&client, &server);
	free(big);
}

/* ---- Allocations ---- */

/* One call: the request with @n_fds lent FDs, its handling, the reply and its delivery. */
static void
round_trip(struct side *client, struct side *server, const int *fds, size_t n_fds)
{
	struct rfd_msg *request;

	CHECK_EQ(send_lent(client, "args", 4, fds, n_fds), 0);
	pump_until(client, server, 1);
	REQUIRE(server->n_msgs == 1);
	request = server->msgs[0];
	server->n_msgs = 0;
	CHECK_EQ(rfd_conn_send_reply(server->conn, request->stream_id, "result", 6, NULL), 0);
	rfd_msg_free(request);
	pump_until(server, client, 1);
	free_msgs(client);
}

static void
test_allocations_per_call(void)
{
	struct side client, server;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	long with_fd, without;

	REQUIRE(fd >= 0);
	REQUIRE(pair_open(&client, &server, NULL));
	for (int i = 0; i < 4; i++)
		round_trip(&client, &server, &fd, 1);

	/*
	 * With an FD: the client's group, the server's group of received FDs,
	 * the request and the reply.  Buffers and marks cost nothing more.
	 */
	rfd_alloc_fail_at(-1);
	round_trip(&client, &server, &fd, 1);
	with_fd = rfd_alloc_fail_at(-1);
	round_trip(&client, &server, NULL, 0);
	without = rfd_alloc_fail_at(-1);
	CHECK_EQ(with_fd, 4);
	CHECK_EQ(without, 2);

	pair_close(&client, &server);
	close(fd);
}

static const struct rfd_test tests[] = {
    {"lent_fds_need_no_spare_slot", test_lent_fds_need_no_spare_slot},
    {"lent_fds_that_must_wait_are_copied", test_lent_fds_that_must_wait_are_copied},
    {"lent_fds_failing_to_copy_fail_the_connection",
     test_lent_fds_failing_to_copy_fail_the_connection},
    {"lent_fds_of_a_refused_call_stay_the_callers",
     test_lent_fds_of_a_refused_call_stay_the_callers},
    {"client_dup_call_with_a_full_fd_table", test_client_dup_call_with_a_full_fd_table},
    {"short_read_without_fds_ends_the_reads", test_short_read_without_fds_ends_the_reads},
    {"level_read_stops_after_fds", test_level_read_stops_after_fds},
    {"waiting_read", test_waiting_read},
    {"waiting_read_ends_at_a_signal", test_waiting_read_ends_at_a_signal},
    {"input_buffer_shrinks_after_a_large_message", test_input_buffer_shrinks_after_a_large_message},
    {"allocations_per_call", test_allocations_per_call},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
