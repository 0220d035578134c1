/* SPDX-License-Identifier: MIT */
/*
 * Streams over real sockets: the server in a child process, both client
 * APIs, FDs on the request, the first response and every item; credit, the
 * ends of a stream, cancellation, timeouts, peers that go away, and servers
 * that break the streaming contract (played by hand on a socket pair).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "fdsock.h"
#include "fdtest.h"
#include "fdtest_service.h"
#include "frame.h"
#include "log.h"
#include "metadata.h"
#include "testserver.h"
#include "testutil.h"

/* How the server ends a stream after its items. */
enum end {
	END_COMPLETE,
	END_EXCEPTION,
	END_ERROR,
	END_FREE, /* rfd_stream_free() without an end */
	END_HANG, /* nothing: the stream stays open */
	END_DIE,  /* the server process exits */
};

/* The args of "stream", in host order: the test talks to its own child. */
struct stream_args {
	uint32_t count;
	uint32_t fds_per_item;
	uint32_t end;
	uint32_t delay_ms; /* the handler sleeps this long before the first response */
};

/* What "stats" answers. */
struct stats {
	uint32_t sent;      /* items the last stream opened has sent */
	uint32_t live;      /* streams the server holds */
	uint32_t open_fds;  /* FDs the server process has open */
	uint32_t cancelled; /* streams ended by CANCEL */
	uint32_t closed;    /* streams ended by their connection closing */
};

static char socket_path[108];
static pid_t server_pid = -1;

/* ---- The server, in the child ---- */

struct served {
	struct served *next;
	struct rfd_stream *stream;
	struct stream_args args;
	uint32_t sent;
};

static struct served *served;
static struct served *last_opened;
static struct stats counters;
static struct rfd_msg *held;

static void
served_forget(struct served *s)
{
	struct served **link = &served;

	while (*link != s)
		link = &(*link)->next;
	*link = s->next;
	if (last_opened == s)
		last_opened = NULL;
	counters.live--;
	free(s);
}

/* An item: its index, with fresh pipe read ends whose write ends are closed. */
static int
send_item(struct served *s)
{
	int fds[RFD_MAX_FDS];
	uint32_t n = s->args.fds_per_item;

	for (uint32_t i = 0; i < n; i++) {
		int ends[2];

		if (pipe2(ends, O_CLOEXEC) < 0)
			abort();
		close(ends[1]);
		fds[i] = ends[0];
	}
	return rfd_stream_send(s->stream, &s->sent, sizeof(s->sent), fds, n, RFD_FDS_TAKE);
}

static void
push(struct served *s)
{
	while (s->sent < s->args.count && rfd_stream_credits(s->stream) > 0) {
		if (send_item(s) < 0)
			return;
		s->sent++;
		if (last_opened == s)
			counters.sent = s->sent;
	}
	if (s->sent < s->args.count)
		return;
	switch (s->args.end) {
	case END_COMPLETE:
		rfd_stream_complete(s->stream);
		break;
	case END_EXCEPTION:
		rfd_stream_exception(s->stream, "StreamError", "items ran out", "\x1c\x00\x00", 3,
		                     NULL, 0, RFD_FDS_DUP);
		break;
	case END_ERROR:
		rfd_stream_error(s->stream, "the stream broke");
		break;
	case END_FREE:
		rfd_stream_free(s->stream);
		break;
	case END_DIE:
		/* Let what is queued go, then vanish. */
		usleep(100000);
		_exit(0);
	default:
		return;
	}
	served_forget(s);
}

static void
on_event(void *user, struct rfd_stream *stream, enum rfd_stream_event event)
{
	struct served *s = user;

	if (event == RFD_STREAM_CREDIT) {
		push(s);
		return;
	}
	if (event == RFD_STREAM_CANCELLED)
		counters.cancelled++;
	else
		counters.closed++;
	rfd_stream_free(stream);
	served_forget(s);
}

/* The first response echoes the request's FDs, and its data is their count. */
static void
open_stream(struct rfd_msg *request)
{
	int fds[RFD_MAX_FDS];
	size_t len, n = rfd_msg_fd_count(request);
	const uint8_t *data = rfd_msg_data(request, &len);
	struct served *s = calloc(1, sizeof(*s));
	uint32_t count = (uint32_t)n;

	if (!s || len != sizeof(s->args)) {
		free(s);
		rfd_reply_error(request, RFD_FAIL_BAD_REQUEST, "bad stream args");
		return;
	}
	memcpy(&s->args, data, sizeof(s->args));
	if (s->args.delay_ms)
		usleep(s->args.delay_ms * 1000);
	for (size_t i = 0; i < n; i++)
		fds[i] = rfd_msg_take_fd(request, i);
	if (rfd_reply_stream(request, &count, sizeof(count), fds, n, RFD_FDS_TAKE, on_event, s,
	                     &s->stream) < 0) {
		free(s);
		return;
	}
	s->next = served;
	served = s;
	last_opened = s;
	counters.live++;
	counters.sent = 0;
	push(s);
}

static void
handle(void *user, struct rfd_msg *request)
{
	const char *method = rfd_msg_method(request);
	size_t len, n = rfd_msg_fd_count(request);
	const uint8_t *data = rfd_msg_data(request, &len);
	int fds[RFD_MAX_FDS];

	if (strcmp(method, "stream") == 0 && rfd_msg_call_kind(request) == RFD_CALL_STREAM) {
		open_stream(request);
	} else if (strcmp(method, "echo") == 0) {
		for (size_t i = 0; i < n; i++)
			fds[i] = rfd_msg_take_fd(request, i);
		rfd_reply(request, data, len, fds, n, RFD_FDS_TAKE);
	} else if (strcmp(method, "slow_echo") == 0) {
		usleep(400000);
		for (size_t i = 0; i < n; i++)
			fds[i] = rfd_msg_take_fd(request, i);
		rfd_reply(request, data, len, fds, n, RFD_FDS_TAKE);
	} else if (strcmp(method, "stats") == 0) {
		counters.open_fds = (uint32_t)rfd_test_count_fds();
		rfd_reply(request, &counters, sizeof(counters), NULL, 0, RFD_FDS_DUP);
	} else if (strcmp(method, "hold") == 0) {
		rfd_msg_free(held);
		held = request;
	} else {
		rfd_reply_error(request, RFD_FAIL_UNKNOWN_METHOD, "unknown method");
	}
}

/* The server of the tests above, in the child. */
static void
run_server(const char *path)
{
	struct rfd_server *server;
	int r = rfd_server_listen(path, NULL, handle, NULL, &server);

	if (r < 0) {
		fprintf(stderr, "server: listen: %s\n", strerror(-r));
		_exit(3);
	}
	r = rfd_test_serve(server);
	rfd_msg_free(held);
	/* Every stream heard RFD_STREAM_CLOSED and was freed. */
	_exit(r < 0 ? 4 : served ? 5 : 0);
}

/* ---- Helpers ---- */

static struct rfd_client *
connect_to(const char *path)
{
	struct rfd_client *client = NULL;
	int r = rfd_client_connect(path, NULL, &client);

	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "connect: %s", strerror(-r));
	return client;
}

static struct stats
server_stats(void)
{
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *reply = NULL;
	struct stats stats = {0};
	size_t len = 0;

	if (client &&
	    rfd_client_call(client, "stats", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &reply) == 0 &&
	    rfd_msg_data(reply, &len) && len == sizeof(stats))
		memcpy(&stats, rfd_msg_data(reply, NULL), sizeof(stats));
	rfd_msg_free(reply);
	rfd_client_free(client);
	return stats;
}

/*
 * Server state once it has settled: the connections of earlier looks are
 * gone (the server sees their EOF in its own time).
 */
static struct stats
server_stats_settled(uint32_t open_fds)
{
	struct stats stats = server_stats();

	for (int i = 0; i < 200 && stats.open_fds != open_fds; i++) {
		usleep(10000);
		stats = server_stats();
	}
	return stats;
}

static uint32_t
msg_u32(const struct rfd_msg *msg)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(msg, &len);
	uint32_t v = UINT32_MAX;

	if (len == sizeof(v))
		memcpy(&v, data, sizeof(v));
	return v;
}

/* An item as the server sends it: index @index, @n FIFO read ends that read EOF. */
static void
check_item(const struct rfd_msg *item, uint32_t index, size_t n)
{
	CHECK_EQ(rfd_msg_kind(item), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(msg_u32(item), index);
	CHECK_EQ(rfd_msg_fd_count(item), n);
	for (size_t i = 0; i < rfd_msg_fd_count(item); i++) {
		int fd = rfd_msg_fd(item, i);

		CHECK(rfd_test_is_fifo(fd));
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK(rfd_test_reads_eof(fd));
	}
}

static int
open_blocking(struct rfd_client *client, const struct stream_args *args, const int *fds,
              size_t n_fds, int timeout_ms, unsigned credits, struct rfd_msg **first, uint32_t *id)
{
	return rfd_client_stream(client, "stream", args, sizeof(*args), fds, n_fds, RFD_FDS_DUP,
	                         timeout_ms, credits, first, id);
}

/*
 * Read a blocking stream to its end, items @index to @count - 1 of @n FDs;
 * returns how it ended (*last: the message that ended it, if one did).
 */
static int
read_items(struct rfd_client *client, uint32_t id, uint32_t index, uint32_t count, size_t n,
           struct rfd_msg **last)
{
	struct rfd_msg *msg = NULL;
	int r;

	*last = NULL;
	while ((r = rfd_client_stream_next(client, id, 5000, &msg)) == 1) {
		if (rfd_msg_kind(msg) != RFD_MSG_STREAM_ITEM) {
			*last = msg;
			break;
		}
		check_item(msg, index++, n);
		rfd_msg_free(msg);
	}
	CHECK_EQ(index, count);
	return r;
}

/* ---- Tests ---- */

/*
 * The blocking API: FDs on the request (echoed on the first response), 0, 1,
 * several and 253 FDs per item, completion; and the server holds nothing
 * after.
 */
static void
test_blocking_stream_with_fds(void)
{
	static const uint32_t per_item[] = {0, 1, 3, 253};
	uint32_t baseline = server_stats().open_fds;
	struct rfd_client *client = connect_to(socket_path);

	REQUIRE(client);
	for (size_t k = 0; k < sizeof(per_item) / sizeof(per_item[0]); k++) {
		struct stream_args args = {.count = 5, .fds_per_item = per_item[k]};
		int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
		              open("/dev/null", O_RDONLY | O_CLOEXEC)};
		struct rfd_msg *first = NULL, *last = NULL;
		uint32_t id = 0;
		struct stat a, b;

		CHECK_EQ(open_blocking(client, &args, fds, 2, 5000, 2, &first, &id), 0);
		REQUIRE(first);
		CHECK_EQ(rfd_msg_kind(first), RFD_MSG_REPLY);
		CHECK_EQ(msg_u32(first), 2);
		REQUIRE(rfd_msg_fd_count(first) == 2);
		CHECK(fstat(rfd_msg_fd(first, 1), &a) == 0 && fstat(fds[1], &b) == 0 &&
		      a.st_ino == b.st_ino && a.st_dev == b.st_dev);
		rfd_msg_free(first);
		close(fds[0]);
		close(fds[1]);
		CHECK_EQ(read_items(client, id, 0, 5, per_item[k], &last), 0);
		CHECK(last == NULL);
		CHECK_EQ(rfd_client_stream_next(client, id, 0, &last), -ENOENT);
		CHECK_EQ(rfd_client_in_flight(client), 0);
	}
	rfd_client_free(client);
	CHECK_EQ(server_stats_settled(baseline).open_fds, baseline);
	CHECK_EQ(server_stats().live, 0);
}

struct collected {
	struct rfd_msg *msgs[64];
	int n;
	int ends;
	int status;
};

static void
collect(void *user, uint32_t id, int status, struct rfd_msg *msg)
{
	struct collected *c = user;

	if (msg && c->n < 64) {
		c->msgs[c->n++] = msg;
		if (rfd_msg_kind(msg) == RFD_MSG_EXCEPTION || rfd_msg_kind(msg) == RFD_MSG_ERROR)
			c->ends++;
		return;
	}
	rfd_msg_free(msg);
	c->ends++;
	c->status = status;
}

static void
collected_free(struct collected *c)
{
	for (int i = 0; i < c->n; i++)
		rfd_msg_free(c->msgs[i]);
	memset(c, 0, sizeof(*c));
}

static int
run_until_ended(struct rfd_client *client, const struct collected *c)
{
	while (!c->ends) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};
		int r;

		if (poll(&pfd, 1, 5000) <= 0)
			return -ETIMEDOUT;
		r = rfd_client_process(client, pfd.revents);
		if (r < 0 && !c->ends)
			return r;
	}
	return 0;
}

/* The asynchronous API, and each end of a stream: completion, exception, error, dropped. */
static void
test_async_stream_ends(void)
{
	static const struct {
		enum end end;
		enum rfd_msg_kind kind;
		uint32_t code;
		const char *text;
	} cases[] = {
	    {END_COMPLETE, RFD_MSG_STREAM_ITEM, 0, ""},
	    {END_EXCEPTION, RFD_MSG_EXCEPTION, 0, "items ran out"},
	    {END_ERROR, RFD_MSG_ERROR, 0x201, "the stream broke"},
	    {END_FREE, RFD_MSG_ERROR, 0x203, "the server dropped the stream without ending it"},
	};
	struct rfd_client *client = connect_to(socket_path);

	REQUIRE(client);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct stream_args args = {.count = 3, .fds_per_item = 2, .end = cases[k].end};
		struct collected c = {0};
		uint32_t id = 0;
		int last;

		CHECK_EQ(rfd_client_stream_async(client, "stream", &args, sizeof(args), NULL, 0,
		                                 RFD_FDS_DUP, 5000, 1, collect, &c, &id),
		         0);
		CHECK_EQ(run_until_ended(client, &c), 0);
		CHECK_EQ(c.ends, 1);
		REQUIRE(c.n >= 4);
		CHECK_EQ(rfd_msg_kind(c.msgs[0]), RFD_MSG_REPLY);
		for (uint32_t i = 0; i < 3; i++)
			check_item(c.msgs[1 + i], i, 2);
		last = cases[k].end == END_COMPLETE ? 3 : 4;
		CHECK_EQ(c.n, last + 1);
		if (cases[k].end == END_COMPLETE) {
			CHECK_EQ(c.status, 0);
		} else if (c.n == 5) {
			CHECK_EQ(rfd_msg_kind(c.msgs[4]), cases[k].kind);
			CHECK_EQ(rfd_msg_error_code(c.msgs[4]), cases[k].code);
			CHECK(strcmp(rfd_msg_error_text(c.msgs[4]), cases[k].text) == 0);
		}
		CHECK_EQ(rfd_client_cancel(client, id), -ENOENT);
		collected_free(&c);
	}
	CHECK_EQ(rfd_client_in_flight(client), 0);
	rfd_client_free(client);
}

/*
 * Credit: with a window of 2 the server sends 2 items and waits (without
 * spinning) until the client consumes one, which grants one more.
 */
static void
test_server_waits_for_credit(void)
{
	struct rfd_client *client = connect_to(socket_path);
	struct stream_args args = {.count = 10, .fds_per_item = 1};
	struct rfd_msg *first = NULL, *item = NULL, *last = NULL;
	struct stats stats;
	uint32_t id = 0;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, 5000, 2, &first, &id), 0);
	rfd_msg_free(first);
	usleep(200000);
	stats = server_stats();
	CHECK_EQ(stats.sent, 2);
	CHECK_EQ(stats.live, 1);
	/* Half the window consumed: REQUEST_N 1, one more item. */
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &item), 1);
	if (item)
		check_item(item, 0, 1);
	rfd_msg_free(item);
	usleep(200000);
	CHECK_EQ(server_stats().sent, 3);
	CHECK_EQ(read_items(client, id, 1, 10, 1, &last), 0);
	rfd_client_free(client);
}

/*
 * The client cancels mid-stream, items with FDs in flight: the server drops
 * what it queued and frees the stream, nothing leaks on either side, and the
 * next call with FDs on the same connection gets them.
 */
static void
test_cancel_mid_stream(void)
{
	struct stream_args args = {.count = 1000, .fds_per_item = 4, .end = END_COMPLETE};
	struct rfd_msg *first = NULL, *item = NULL, *reply = NULL;
	uint32_t baseline = server_stats().open_fds, cancelled = server_stats().cancelled, id = 0;
	struct rfd_client *client = connect_to(socket_path);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, 5000, 20, &first, &id), 0);
	rfd_msg_free(first);
	for (uint32_t i = 0; i < 3; i++) {
		CHECK_EQ(rfd_client_stream_next(client, id, 5000, &item), 1);
		if (item)
			check_item(item, i, 4);
		rfd_msg_free(item);
		item = NULL;
	}
	CHECK_EQ(rfd_client_cancel(client, id), 0);
	CHECK_EQ(rfd_client_cancel(client, id), -ENOENT);
	CHECK_EQ(rfd_client_stream_next(client, id, 0, &item), -ENOENT);
	CHECK_EQ(rfd_client_in_flight(client), 0);
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, &fd, 1, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_fd_count(reply) == 1);
	rfd_msg_free(reply);
	close(fd);
	CHECK_EQ(server_stats().cancelled, cancelled + 1);
	CHECK_EQ(server_stats().live, 0);
	rfd_client_free(client);
	CHECK_EQ(server_stats_settled(baseline).open_fds, baseline);
}

/*
 * The first response comes after the client gave up (it carries the
 * request's FDs back): the client closes them, and the FDs of the next
 * call still match.  The same for a late reply to a request-response call.
 */
static void
test_timeouts_then_late_answers_with_fds(void)
{
	struct rfd_client *client = connect_to(socket_path);
	struct stream_args args = {.count = 2, .fds_per_item = 3, .delay_ms = 400};
	struct rfd_msg *first = NULL, *reply = NULL;
	int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
	              open("/dev/null", O_RDONLY | O_CLOEXEC)};
	int before = rfd_test_count_fds();
	uint32_t id = 0;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, fds, 2, 100, 4, &first, &id), -ETIMEDOUT);
	CHECK(first == NULL);
	CHECK_EQ(rfd_client_in_flight(client), 0);
	/*
	 * The late answer comes before this echo's, which claims no FDs: had its
	 * FDs been left queued, only the next claim would close them.
	 */
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	rfd_msg_free(reply);
	CHECK_EQ(rfd_test_count_fds(), before);
	CHECK_EQ(rfd_client_call(client, "slow_echo", "s", 1, fds, 2, RFD_FDS_DUP, 100, &reply),
	         -ETIMEDOUT);
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, NULL, 0, RFD_FDS_DUP, 5000, &reply), 0);
	rfd_msg_free(reply);
	CHECK_EQ(rfd_test_count_fds(), before);
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, fds, 2, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_fd_count(reply) == 2);
	rfd_msg_free(reply);
	CHECK_EQ(rfd_test_count_fds(), before);
	close(fds[0]);
	close(fds[1]);
	rfd_client_free(client);
}

/* The client goes away mid-stream: the server hears RFD_STREAM_CLOSED and keeps nothing. */
static void
test_client_gone_mid_stream(void)
{
	struct stream_args args = {.count = 100, .fds_per_item = 2, .end = END_HANG};
	uint32_t baseline = server_stats().open_fds, closed = server_stats().closed;
	struct rfd_client *client = connect_to(socket_path);
	struct collected c = {0};

	REQUIRE(client);
	CHECK_EQ(rfd_client_stream_async(client, "stream", &args, sizeof(args), NULL, 0,
	                                 RFD_FDS_DUP, 5000, 5, collect, &c, NULL),
	         0);
	while (c.n < 3) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};

		if (poll(&pfd, 1, 5000) <= 0 || rfd_client_process(client, pfd.revents) < 0)
			break;
	}
	CHECK(c.n >= 3);
	rfd_client_free(client);
	CHECK_EQ(c.ends, 1);
	CHECK_EQ(c.status, -ECANCELED);
	collected_free(&c);
	CHECK_EQ(server_stats_settled(baseline).open_fds, baseline);
	CHECK_EQ(server_stats().closed, closed + 1);
	CHECK_EQ(server_stats().live, 0);
}

/* The server goes away mid-stream: the stream fails with the connection, nothing leaks. */
static void
test_server_gone_mid_stream(void)
{
	char path[108];
	pid_t pid;
	struct rfd_client *client;
	struct stream_args args = {.count = 4, .fds_per_item = 3, .end = END_DIE};
	struct collected c = {0};
	int status;

	snprintf(path, sizeof(path), "/tmp/rfd-test-streams-%d-die.sock", (int)getpid());
	pid = rfd_test_server_fork(path, run_server);
	client = connect_to(path);
	REQUIRE(client);
	CHECK_EQ(rfd_client_stream_async(client, "stream", &args, sizeof(args), NULL, 0,
	                                 RFD_FDS_DUP, 5000, 10, collect, &c, NULL),
	         0);
	CHECK_EQ(run_until_ended(client, &c), 0);
	CHECK_EQ(c.ends, 1);
	CHECK_EQ(c.status, -ECONNRESET);
	CHECK_EQ(c.n, 5); /* the first response and the 4 items came before */
	collected_free(&c);
	rfd_client_free(client);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(path);
}

/* ---- Servers that break the contract, played by hand ---- */

/* A client on one end of a socket pair; the other end is returned in *peer. */
static struct rfd_client *
adopt_pair(int *peer)
{
	struct rfd_client *client = NULL;
	struct rfd_server_push push = {
	    .kind = RFD_PUSH_SETUP_RESPONSE, .has_version = true, .version = 10};
	struct rfd_frame frame = {
	    .type = RFD_FRAME_METADATA_PUSH, .flags = RFD_FLAG_METADATA, .has_metadata = true};
	struct rfd_buf md, wire;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	rfd_buf_init(&md);
	rfd_buf_init(&wire);
	rfd_server_push_encode(&push, &md);
	frame.metadata.ptr = md.data;
	frame.metadata.len = md.len;
	rfd_frame_encode(&frame, &wire);
	/* The setup response waits in the socket: the adoption finds it there. */
	if (write(sv[1], wire.data, wire.len) != (ssize_t)wire.len ||
	    rfd_client_adopt(sv[0], NULL, &client) < 0) {
		close(sv[1]);
		sv[1] = -1;
	}
	rfd_buf_free(&md);
	rfd_buf_free(&wire);
	*peer = sv[1];
	return client;
}

/* Write a PAYLOAD on stream 1 with @fds; the metadata claims @num at @seq. */
static void
raw_payload(int sock, bool first, int32_t num, int64_t seq, const int *fds, size_t n_fds)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .fd = {.present = num != 0,
	           .has_seq = true,
	           .fd_seq = seq,
	           .has_num = true,
	           .num_fds = num},
	};
	struct rfd_frame frame = {.stream_id = 1,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT,
	                          .has_metadata = true,
	                          .data = {(const uint8_t *)"\x00", 1}};
	struct rfd_buf meta, wire;

	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	if (first)
		rfd_response_metadata_encode(&md, &meta);
	else
		rfd_stream_payload_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, &wire);
	CHECK_EQ(rfd_sock_send(sock, wire.data, wire.len, fds, n_fds), (ssize_t)wire.len);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
}

enum bad_server { BAD_COUNT, BAD_SEQ, PAST_CREDIT };

/*
 * A stream item whose FDs do not match its claim, or one past the credit:
 * the stream fails (-EBADFD, -EPROTO), then the connection, and every FD
 * that came is closed.
 */
static void
check_bad_server(enum bad_server how)
{
	struct rfd_client *client;
	struct rfd_msg *first = NULL, *item = NULL;
	int peer = -1, ends[2], want;
	uint32_t id = 0;

	client = adopt_pair(&peer);
	REQUIRE(client && peer >= 0);
	REQUIRE(pipe2(ends, O_CLOEXEC) == 0);
	raw_payload(peer, true, 0, 0, NULL, 0);
	if (how == PAST_CREDIT) {
		raw_payload(peer, false, 0, 0, NULL, 0);
		raw_payload(peer, false, 1, 0, &ends[1], 1);
	} else if (how == BAD_COUNT) {
		raw_payload(peer, false, 2, 0, &ends[1], 1);
	} else {
		raw_payload(peer, false, 1, 3, &ends[1], 1);
	}
	close(ends[1]);
	want = how == PAST_CREDIT ? -EPROTO : -EBADFD;
	CHECK_EQ(
	    rfd_client_stream(client, "s", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, 1, &first, &id), 0);
	CHECK(first && rfd_msg_kind(first) == RFD_MSG_REPLY);
	rfd_msg_free(first);
	CHECK_EQ(id, 1);
	if (how == PAST_CREDIT) {
		CHECK_EQ(rfd_client_stream_next(client, id, 5000, &item), 1);
		rfd_msg_free(item);
	}
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &item), want);
	CHECK(item == NULL);
	CHECK(strstr(rfd_client_error(client), "stream 1") != NULL);
	CHECK(strstr(rfd_client_error(client), how == PAST_CREDIT ? "no credit" : "expected") !=
	      NULL);
	CHECK_EQ(rfd_client_process(client, 0), want);
	CHECK(rfd_test_reads_eof(ends[0])); /* the FD that came was closed */
	close(ends[0]);
	rfd_client_free(client);
	close(peer);
}

static void
test_contract_breaking_server(void)
{
	check_bad_server(BAD_COUNT);
	check_bad_server(BAD_SEQ);
	check_bad_server(PAST_CREDIT);
}

/* ---- FdTest's streamFds ---- */

static int
call_stream_fds(struct rfd_client *client, int32_t count, int32_t fds_per_item, unsigned credits,
                struct rfd_msg **first, uint32_t *id)
{
	struct fdt_bytes args;
	int r = fdt_encode_stream_args(count, fds_per_item, &args);

	if (r < 0)
		return r;
	r = rfd_client_stream(client, FDT_METHOD_STREAM_FDS, args.data, args.len, NULL, 0,
	                      RFD_FDS_DUP, 5000, credits, first, id);
	fdt_bytes_free(&args);
	return r;
}

/* An item of streamFds: tag = its index; one FdInfo per FD, of that very FD (17.2). */
static void
check_fdtest_item(const struct rfd_msg *item, int32_t index, int32_t n)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(item, &len);
	struct fdt_report report;
	const char *why;
	char tag[16];

	CHECK_EQ(rfd_msg_kind(item), RFD_MSG_STREAM_ITEM);
	REQUIRE(fdt_decode_report_result(data, len, &report, &why) == 0);
	snprintf(tag, sizeof(tag), "%d", (int)index);
	CHECK(strcmp(report.tag, tag) == 0);
	CHECK_EQ(report.n_fds, (size_t)n);
	CHECK_EQ(rfd_msg_fd_count(item), (size_t)n);
	for (size_t i = 0; i < report.n_fds && i < rfd_msg_fd_count(item); i++) {
		struct fdt_fdinfo mine;
		int fd = rfd_msg_fd(item, i);

		CHECK_EQ(fdt_describe_fd(fd, &mine), 0);
		CHECK_EQ(report.fds[i].dev, mine.dev);
		CHECK_EQ(report.fds[i].ino, mine.ino);
		CHECK_EQ(report.fds[i].type, S_IFIFO);
		CHECK_EQ(report.fds[i].flags & O_ACCMODE, O_RDONLY);
		CHECK(report.fds[i].cloexec);
		CHECK(rfd_test_reads_eof(fd));
	}
	fdt_report_free(&report);
}

static void
test_fdtest_stream_fds(void)
{
	char path[108];
	pid_t pid;
	struct rfd_client *client;
	struct rfd_msg *first = NULL, *msg = NULL, *reply = NULL;
	struct fdt_bytes args;
	int32_t count = 0, per_item = 0, index = 0;
	uint32_t id = 0;
	const char *why;
	int r;

	/* The arguments' codec: {1: i32 count, 2: i32 fdsPerItem}, both ways. */
	REQUIRE(fdt_encode_stream_args(3, 253, &args) == 0);
	CHECK_EQ(args.len, 6);
	CHECK(args.len == 6 && memcmp(args.data, "\x15\x06\x15\xfa\x03\x00", 6) == 0);
	CHECK_EQ(fdt_decode_stream_args(args.data, args.len, &count, &per_item, &why), 0);
	CHECK(count == 3 && per_item == 253);
	fdt_bytes_free(&args);
	CHECK(fdt_decode_stream_args((const uint8_t *)"\x18\x01x\x00", 4, &count, &per_item, &why) <
	      0);

	snprintf(path, sizeof(path), "/tmp/rfd-test-streams-%d-fdtest.sock", (int)getpid());
	pid = rfd_test_server_fork(path, rfd_test_fdtest_server);
	client = connect_to(path);
	REQUIRE(client);

	/* 4 items of 3 FDs, 2 credits at a time; then 253 FDs each; then none. */
	CHECK_EQ(call_stream_fds(client, 4, 3, 2, &first, &id), 0);
	CHECK(first && rfd_msg_kind(first) == RFD_MSG_REPLY && rfd_msg_fd_count(first) == 0);
	CHECK(first && rfd_msg_data(first, NULL)[0] == 0);
	rfd_msg_free(first);
	while ((r = rfd_client_stream_next(client, id, 5000, &msg)) == 1) {
		check_fdtest_item(msg, index++, 3);
		rfd_msg_free(msg);
	}
	CHECK_EQ(r, 0);
	CHECK_EQ(index, 4);
	CHECK_EQ(call_stream_fds(client, 2, 253, 1, &first, &id), 0);
	rfd_msg_free(first);
	for (index = 0; (r = rfd_client_stream_next(client, id, 5000, &msg)) == 1; index++) {
		check_fdtest_item(msg, index, 253);
		rfd_msg_free(msg);
	}
	CHECK(r == 0 && index == 2);
	CHECK_EQ(call_stream_fds(client, 0, 5, 0, &first, &id), 0);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &msg), 0);

	/* Refused before any first response: ERROR 0x204 (6.8 step 9). */
	CHECK_EQ(call_stream_fds(client, 10001, 1, 0, &first, &id), 0);
	CHECK(first && rfd_msg_kind(first) == RFD_MSG_ERROR && rfd_msg_error_code(first) == 0x204);
	rfd_msg_free(first);
	CHECK_EQ(call_stream_fds(client, 1, 254, 0, &first, &id), 0);
	CHECK(first && rfd_msg_kind(first) == RFD_MSG_ERROR && rfd_msg_error_code(first) == 0x204);
	rfd_msg_free(first);
	/* Called as request-response: another kind (step 8). */
	CHECK_EQ(rfd_client_call(client, FDT_METHOD_STREAM_FDS, "\x00", 1, NULL, 0, RFD_FDS_DUP,
	                         5000, &reply),
	         0);
	CHECK(reply && rfd_msg_kind(reply) == RFD_MSG_ERROR && rfd_msg_error_code(reply) == 0x204);
	rfd_msg_free(reply);
	/* Cancelled in the middle; the connection goes on. */
	CHECK_EQ(call_stream_fds(client, 10000, 2, 4, &first, &id), 0);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &msg), 1);
	rfd_msg_free(msg);
	CHECK_EQ(rfd_client_cancel(client, id), 0);
	CHECK_EQ(call_stream_fds(client, 1, 1, 0, &first, &id), 0);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &msg), 1);
	if (msg)
		check_fdtest_item(msg, 0, 1);
	rfd_msg_free(msg);
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &msg), 0);

	rfd_client_free(client);
	rfd_test_server_stop(pid, 0);
}

/* Credits beyond 2^31 - 2 are refused before anything is sent, and the client says why. */
static void
test_credits_out_of_range_say_why(void)
{
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL;
	int ends[2];
	uint32_t id = 0;

	REQUIRE(client);
	REQUIRE(pipe2(ends, O_CLOEXEC) == 0);
	CHECK_EQ(rfd_client_stream(client, "stream", "", 0, &ends[1], 1, RFD_FDS_TAKE, 5000,
	                           0x7FFFFFFF, &first, &id),
	         -EINVAL);
	CHECK(first == NULL);
	CHECK(rfd_test_reads_eof(ends[0])); /* TAKE: the library closed the write end */
	CHECK(strstr(rfd_client_error(client), "credits 2147483647 are out of range") != NULL);
	CHECK_EQ(rfd_client_in_flight(client), 0);
	close(ends[0]);
	rfd_client_free(client);
}

/* How many FDs process @pid has open, from /proc; -1 when it cannot be read. */
static int
fds_of(pid_t pid)
{
	char path[64];
	struct dirent *entry;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* @pid's FD count once it has not changed for 100 ms (at most 5 s). */
static int
settled_fds_of(pid_t pid)
{
	int last = fds_of(pid), n = last;

	for (int i = 0; i < 50; i++) {
		usleep(100000);
		n = fds_of(pid);
		if (n == last)
			break;
		last = n;
	}
	return n;
}

static void
drop_stream_message(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	rfd_msg_free(msg);
}

/*
 * LIMIT-14: a client that opens streamFds(10000, 253) streams and never
 * reads makes the FdTest server hold no more FDs than its budget for
 * unwritten items allows (fd_budget, 1024, plus three items of 253, plus
 * the item being made), however many such streams it opens; the server
 * goes on handing FDs to other clients, and gets its FDs back when the
 * stalled client leaves.  The server may open 16384 FDs, so without the
 * bound it would hold about 4 + 2 items of 253 FDs per stream.
 */
static void
test_stalled_reader_holds_bounded_fds(void)
{
	enum { STREAMS = 8, BOUND = 1024 + 4 * RFD_MAX_FDS };
	struct rfd_client *stalled, *other;
	struct rfd_msg *first = NULL, *item = NULL;
	struct rlimit saved, raised;
	struct fdt_bytes args;
	char path[108];
	int alone, baseline, peak = 0;
	uint32_t id = 0;
	pid_t pid;

	REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	raised = saved;
	raised.rlim_cur = saved.rlim_max < 16384 ? saved.rlim_max : 16384;
	if (raised.rlim_cur < STREAMS * 6 * RFD_MAX_FDS) {
		rfd_test_skip("the hard RLIMIT_NOFILE leaves no room to see an unbounded server");
		return;
	}
	snprintf(path, sizeof(path), "/tmp/rfd-test-streams-%d-stall.sock", (int)getpid());
	REQUIRE(setrlimit(RLIMIT_NOFILE, &raised) == 0);
	pid = rfd_test_server_fork(path, rfd_test_fdtest_server);
	setrlimit(RLIMIT_NOFILE, &saved);
	other = connect_to(path);
	alone = settled_fds_of(pid);
	stalled = connect_to(path);
	REQUIRE(stalled && other);
	baseline = settled_fds_of(pid);

	REQUIRE(fdt_encode_stream_args(10000, RFD_MAX_FDS, &args) == 0);
	for (int i = 0; i < STREAMS; i++)
		CHECK_EQ(rfd_client_stream_async(stalled, FDT_METHOD_STREAM_FDS, args.data,
		                                 args.len, NULL, 0, RFD_FDS_DUP, -1, 10000,
		                                 drop_stream_message, NULL, NULL),
		         0);
	fdt_bytes_free(&args);
	/* Until the count has stopped growing for 200 ms: FDs in flight are few then. */
	for (int i = 0, still = 0; i < 50 && (still < 10 || peak <= baseline + RFD_MAX_FDS); i++) {
		int n = fds_of(pid);

		still = n > peak ? 0 : still + 1;
		peak = n > peak ? n : peak;
		usleep(20000);
	}
	CHECK(peak > baseline + RFD_MAX_FDS); /* it did fill what it may hold */
	if (peak > baseline + BOUND)
		rfd_test_fail(__FILE__, __LINE__,
		              "the server held %d FDs beyond its %d at the start", peak - baseline,
		              baseline);

	/* Another client's stream still gets its FDs. */
	CHECK_EQ(call_stream_fds(other, 1, 3, 1, &first, &id), 0);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_stream_next(other, id, 5000, &item), 1);
	if (item)
		check_fdtest_item(item, 0, 3);
	rfd_msg_free(item);

	rfd_client_free(stalled);
	CHECK_EQ(settled_fds_of(pid), alone); /* its connection, and every FD of its streams */
	rfd_client_free(other);
	rfd_test_server_stop(pid, 0);
}

/* What the streams of test_stalled_reader_resumes() delivered. */
struct resumed {
	int items[4];
	int fds[4];
	int ends;
	int failures;
};

static void
count_resumed(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct resumed *seen = user;
	int which = (int)(stream_id / 2) % 4; /* stream ids 1, 3, 5, 7 */

	if (msg && rfd_msg_kind(msg) == RFD_MSG_STREAM_ITEM) {
		seen->items[which]++;
		seen->fds[which] += (int)rfd_msg_fd_count(msg);
	} else if (!msg) {
		seen->ends++;
		seen->failures += status != 0;
	}
	rfd_msg_free(msg);
}

/*
 * The streams of a client that stopped reading, and so spent the server's
 * budget for unwritten items, all go on to their end once it reads again:
 * each is told when the budget has room for it.
 */
static void
test_stalled_reader_resumes(void)
{
	struct resumed seen = {0};
	struct rfd_client *client;
	struct fdt_bytes args;
	char path[108];
	pid_t pid;

	snprintf(path, sizeof(path), "/tmp/rfd-test-streams-%d-resume.sock", (int)getpid());
	pid = rfd_test_server_fork(path, rfd_test_fdtest_server);
	client = connect_to(path);
	REQUIRE(client);
	REQUIRE(fdt_encode_stream_args(30, RFD_MAX_FDS, &args) == 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(rfd_client_stream_async(client, FDT_METHOD_STREAM_FDS, args.data, args.len,
		                                 NULL, 0, RFD_FDS_DUP, -1, 100, count_resumed,
		                                 &seen, NULL),
		         0);
	fdt_bytes_free(&args);
	usleep(300000); /* the server fills the socket and its budget, then waits */
	while (seen.ends < 4) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};

		if (poll(&pfd, 1, 5000) <= 0 || rfd_client_process(client, pfd.revents) < 0)
			break;
	}
	CHECK_EQ(seen.ends, 4);
	CHECK_EQ(seen.failures, 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(seen.items[i], 30);
		CHECK_EQ(seen.fds[i], 30 * RFD_MAX_FDS);
	}
	rfd_client_free(client);
	rfd_test_server_stop(pid, 0);
}

/* CPU time @pid has used (utime + stime of /proc/PID/stat) in clock ticks, or -1. */
static long
cpu_ticks_of(pid_t pid)
{
	unsigned long utime = 0, stime = 0;
	char path[64], line[1024], *end;
	FILE *stat_file;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat_file = fopen(path, "re");
	if (!stat_file)
		return -1;
	end = fgets(line, sizeof(line), stat_file) ? strrchr(line, ')') : NULL;
	fclose(stat_file);
	/* After the command's ")": state, 10 more numbers, then utime and stime. */
	if (end)
		n = sscanf(end + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
		           &stime);
	return n == 2 ? (long)(utime + stime) : -1;
}

/*
 * Open @n_clients connections to @path, each with 255 streams of
 * streamFds(10000, 0) that wait for credit after their first item, and a
 * call behind them, answered once the server holds them all.
 */
static bool
open_waiting_streams(const char *path, struct rfd_client **clients, int n_clients)
{
	struct fdt_bytes args;
	bool ok = fdt_encode_stream_args(10000, 0, &args) == 0;

	for (int i = 0; i < n_clients && ok; i++) {
		struct rfd_msg *reply = NULL;

		clients[i] = connect_to(path);
		ok = clients[i] != NULL;
		for (int s = 0; s < 255 && ok; s++)
			ok = rfd_client_stream_async(clients[i], FDT_METHOD_STREAM_FDS, args.data,
			                             args.len, NULL, 0, RFD_FDS_DUP, -1, 1,
			                             drop_stream_message, NULL, NULL) == 0;
		ok = ok && rfd_client_call(clients[i], FDT_METHOD_LAST, "\x00", 1, NULL, 0,
		                           RFD_FDS_DUP, 10000, &reply) == 0;
		rfd_msg_free(reply);
	}
	fdt_bytes_free(&args);
	return ok;
}

/*
 * Close the clients, oldest first or newest first, each once the server has
 * dropped the one before; the server's CPU ticks it took.
 */
static long
close_clients(pid_t pid, struct rfd_client **clients, int n_clients, bool oldest_first)
{
	long before = cpu_ticks_of(pid);
	int fds = fds_of(pid);

	for (int i = 0; i < n_clients; i++) {
		int target = fds - 1;

		rfd_client_free(clients[oldest_first ? i : n_clients - 1 - i]);
		for (int wait = 0; wait < 5000 && (fds = fds_of(pid)) > target; wait++)
			usleep(1000);
	}
	return cpu_ticks_of(pid) - before;
}

/*
 * The FdTest server forgets each stream in constant time: with 48 x 255
 * streams waiting for credit, closing their connections oldest first (their
 * streams were served first) costs the server about what closing them newest
 * first does.  Kept in one list walked from its newest end, the oldest
 * streams would each cost a walk past every newer one.
 */
static void
test_fdtest_teardown_of_many_streams(void)
{
	enum { CLIENTS = 48 };
	struct rfd_client *clients[CLIENTS];
	long newest_first, oldest_first;
	char path[108];
	pid_t pid;

	snprintf(path, sizeof(path), "/tmp/rfd-test-streams-%d-teardown.sock", (int)getpid());
	pid = rfd_test_server_fork(path, rfd_test_fdtest_server);
	REQUIRE(open_waiting_streams(path, clients, CLIENTS));
	newest_first = close_clients(pid, clients, CLIENTS, false);
	REQUIRE(open_waiting_streams(path, clients, CLIENTS));
	oldest_first = close_clients(pid, clients, CLIENTS, true);
	CHECK(newest_first >= 0 && oldest_first >= 0);
	if (oldest_first > 2 * newest_first + 8)
		rfd_test_fail(__FILE__, __LINE__,
		              "the server took %ld CPU ticks to drop 12240 streams oldest first, "
		              "%ld newest first",
		              oldest_first, newest_first);
	rfd_test_server_stop(pid, 0);
}

struct cancel_target {
	struct rfd_client *client;
	uint32_t id;
};

/* An async call's timeout cancels the blocking stream its caller waits on. */
static void
cancel_stream(void *user, int status, struct rfd_msg *reply)
{
	struct cancel_target *target = user;

	rfd_msg_free(reply);
	if (status == -ETIMEDOUT)
		rfd_client_cancel(target->client, target->id);
}

/*
 * rfd_client_stream_next() with a timeout of 0 takes an item that has
 * already arrived, unread on the socket; a stream cancelled by a callback
 * while its caller waits ends that wait with -ECANCELED.
 */
static void
test_blocking_stream_zero_timeout_and_cancel(void)
{
	struct stream_args args = {.count = 2, .fds_per_item = 1};
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL, *item = NULL;
	struct cancel_target target = {.client = client};
	uint32_t id = 0;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, 5000, 1, &first, &id), 0);
	rfd_msg_free(first);
	/* One credit: taking item 0 grants item 1, which then waits in the socket, unread. */
	CHECK_EQ(rfd_client_stream_next(client, id, 5000, &item), 1);
	rfd_msg_free(item);
	item = NULL;
	usleep(200000);
	CHECK_EQ(rfd_client_stream_next(client, id, 0, &item), 1);
	CHECK(item && rfd_msg_kind(item) == RFD_MSG_STREAM_ITEM);
	rfd_msg_free(item);
	item = NULL;

	/* A stream that sends nothing for 5 s, cancelled by a callback after 100 ms. */
	args = (struct stream_args){.count = 1, .end = END_HANG};
	CHECK_EQ(open_blocking(client, &args, NULL, 0, 5000, 1, &first, &target.id), 0);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_call_async(client, "hold", NULL, 0, NULL, 0, RFD_FDS_DUP, 100,
	                               cancel_stream, &target, NULL),
	         0);
	CHECK_EQ(rfd_client_stream_next(client, target.id, 5000, &item), 1);
	rfd_msg_free(item);
	item = NULL;
	CHECK_EQ(rfd_client_stream_next(client, target.id, 5000, &item), -ECANCELED);
	CHECK(item == NULL);
	rfd_client_free(client);
}

static const struct rfd_test tests[] = {
    {"blocking_stream_zero_timeout_and_cancel", test_blocking_stream_zero_timeout_and_cancel},
    {"blocking_stream_with_fds", test_blocking_stream_with_fds},
    {"async_stream_ends", test_async_stream_ends},
    {"server_waits_for_credit", test_server_waits_for_credit},
    {"cancel_mid_stream", test_cancel_mid_stream},
    {"timeouts_then_late_answers_with_fds", test_timeouts_then_late_answers_with_fds},
    {"client_gone_mid_stream", test_client_gone_mid_stream},
    {"server_gone_mid_stream", test_server_gone_mid_stream},
    {"contract_breaking_server", test_contract_breaking_server},
    {"fdtest_stream_fds", test_fdtest_stream_fds},
    {"stalled_reader_holds_bounded_fds", test_stalled_reader_holds_bounded_fds},
    {"stalled_reader_resumes", test_stalled_reader_resumes},
    {"credits_out_of_range_say_why", test_credits_out_of_range_say_why},
    {"fdtest_teardown_of_many_streams", test_fdtest_teardown_of_many_streams},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	int status;

	signal(SIGPIPE, SIG_IGN);
	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-test-streams-%d.sock", (int)getpid());
	server_pid = rfd_test_server_fork(socket_path, run_server);
	status = rfd_test_main(argc, argv, tests);
	rfd_test_server_stop(server_pid, 0);
	CHECK(access(socket_path, F_OK) < 0);
	return rfd_test_failures ? EXIT_FAILURE : status;
}
