/* SPDX-License-Identifier: MIT */
/*
 * Sinks and FDs on exceptions over real sockets: the server in a child
 * process, both client APIs, FDs on the request, the first response, every
 * item and the final response; the extensions sink and exception offered or
 * not; credit, cancellation, servers that end a sink early, peers that go
 * away, FdTest's sinkFds; and servers that break the agreement on FDs
 * (played by hand on a socket pair).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

enum {
	BOTH = RFD_EXTENSION_SINK | RFD_EXTENSION_EXCEPTION,
	MAX_INOS = 1024,
};

/* How the server ends a sink. */
enum end {
	END_FINISH,    /* the final response, after the client's completion */
	END_EXCEPTION, /* a declared exception, after the client's completion */
	END_ERROR,     /* an ERROR, after the client's completion */
	END_EARLY,     /* the final response after end_after items, before the completion */
	END_FREE,      /* rfd_sink_free() after the completion */
	END_DIE,       /* the server process exits after end_after items */
	END_HANG,      /* nothing: the sink stays open */
};

/* The args of "sink", in host order: the test talks to its own child. */
struct sink_args {
	uint32_t window;    /* credits (0: the library's default) */
	uint32_t end;       /* enum end */
	uint32_t final_fds; /* FDs on the final response or the exception */
	uint32_t end_after; /* END_EARLY, END_DIE: after this many items */
	uint32_t delay_ms;  /* the callback sleeps this long at the first item */
};

/* What "stats" answers. */
struct stats {
	uint32_t items;     /* sink items received */
	uint32_t live;      /* sinks the server holds */
	uint32_t open_fds;  /* FDs the server process has open */
	uint32_t cancelled; /* sinks the client cancelled */
	uint32_t closed;    /* sinks ended by their connection closing */
	uint32_t refused;   /* FDs on a final response or exception refused (-EOPNOTSUPP) */
	uint32_t failed;    /* sinks failed for another reason */
};

static char socket_path[108];
static pid_t server_pid = -1;

/* ---- The server, in the child ---- */

struct served {
	struct served *next;
	struct rfd_sink *sink;
	struct sink_args args;
	uint32_t items;
	uint64_t inos[MAX_INOS];
	size_t n_inos;
};

static struct served *served;
static struct stats counters;

static void
served_forget(struct served *s)
{
	struct served **link = &served;

	while (*link != s)
		link = &(*link)->next;
	*link = s->next;
	counters.live--;
	free(s);
}

/* @n fresh pipe read ends whose write ends are closed. */
static void
make_read_ends(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ends[2];

		if (pipe2(ends, O_CLOEXEC) < 0)
			abort();
		close(ends[1]);
		fds[i] = ends[0];
	}
}

/* The final response (the inodes of every FD the items brought), or another end. */
static void
end_sink(struct served *s)
{
	size_t n = s->args.final_fds;
	size_t len = s->n_inos * sizeof(s->inos[0]);
	int fds[RFD_MAX_FDS];
	int r = 0;

	make_read_ends(fds, n);
	switch (s->args.end) {
	case END_FINISH:
	case END_EARLY:
		r = rfd_sink_finish(s->sink, len ? s->inos : NULL, len, fds, n, RFD_FDS_TAKE);
		if (r == -EOPNOTSUPP) {
			counters.refused++;
			rfd_sink_finish(s->sink, len ? s->inos : NULL, len, NULL, 0, RFD_FDS_DUP);
		}
		break;
	case END_EXCEPTION:
		r = rfd_sink_exception(s->sink, "SinkError", "no more", "\x1c\x00\x00", 3, fds, n,
		                       RFD_FDS_TAKE);
		if (r == -EOPNOTSUPP) {
			counters.refused++;
			rfd_sink_exception(s->sink, "SinkError", "no more", "\x1c\x00\x00", 3, NULL,
			                   0, RFD_FDS_DUP);
		}
		break;
	case END_ERROR:
		rfd_sink_error(s->sink, "the sink broke");
		break;
	case END_DIE:
		/* Let what is queued go, then vanish. */
		usleep(100000);
		_exit(0);
	default:
		rfd_sink_free(s->sink);
		break;
	}
	served_forget(s);
}

static void
take_item(struct served *s, struct rfd_msg *item)
{
	if (s->items == 0 && s->args.delay_ms)
		usleep(s->args.delay_ms * 1000);
	for (size_t i = 0; i < rfd_msg_fd_count(item) && s->n_inos < MAX_INOS; i++) {
		struct stat st;

		if (fstat(rfd_msg_fd(item, i), &st) == 0)
			s->inos[s->n_inos++] = (uint64_t)st.st_ino;
	}
	rfd_msg_free(item);
	s->items++;
	counters.items++;
	if ((s->args.end == END_EARLY || s->args.end == END_DIE) && s->items == s->args.end_after)
		end_sink(s);
}

static void
on_sink(void *user, struct rfd_sink *sink, int status, struct rfd_msg *item)
{
	struct served *s = user;

	if (item) {
		take_item(s, item);
		return;
	}
	if (status == 0) {
		if (s->args.end != END_HANG)
			end_sink(s);
		return;
	}
	if (status == -ECANCELED)
		counters.cancelled++;
	else if (status == -ENOTCONN)
		counters.closed++;
	else
		counters.failed++;
	rfd_sink_free(sink);
	served_forget(s);
}

/* The first response echoes the request's FDs, and its data is their count. */
static void
open_sink(struct rfd_msg *request)
{
	int fds[RFD_MAX_FDS];
	size_t len, n = rfd_msg_fd_count(request);
	const uint8_t *data = rfd_msg_data(request, &len);
	struct served *s = calloc(1, sizeof(*s));
	uint32_t count = (uint32_t)n;

	if (!s || len != sizeof(s->args)) {
		free(s);
		rfd_reply_error(request, RFD_FAIL_BAD_REQUEST, "bad sink args");
		return;
	}
	memcpy(&s->args, data, sizeof(s->args));
	for (size_t i = 0; i < n; i++)
		fds[i] = rfd_msg_take_fd(request, i);
	if (rfd_reply_sink(request, &count, sizeof(count), fds, n, RFD_FDS_TAKE, s->args.window,
	                   on_sink, s, &s->sink) < 0) {
		free(s);
		return;
	}
	s->next = served;
	served = s;
	counters.live++;
}

/* A declared exception with as many FDs as the request asks, or none when refused. */
static void
reply_exception(struct rfd_msg *request)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(request, &len);
	uint32_t n = 0;
	int fds[RFD_MAX_FDS];

	if (len == sizeof(n))
		memcpy(&n, data, sizeof(n));
	make_read_ends(fds, n);
	if (rfd_reply_exception_fds(request, "E", "with FDs", "\x1c\x00\x00", 3, fds, n,
	                            RFD_FDS_TAKE) == -EOPNOTSUPP) {
		counters.refused++;
		rfd_reply_exception(request, "E", "with FDs", "\x1c\x00\x00", 3);
	}
}

/* A stream ended at once by a declared exception with FDs. */
static void
stream_exception(struct rfd_msg *request)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(request, &len);
	struct rfd_stream *stream;
	uint32_t n = 0;
	int fds[RFD_MAX_FDS];

	if (len == sizeof(n))
		memcpy(&n, data, sizeof(n));
	if (rfd_reply_stream(request, "\x00", 1, NULL, 0, RFD_FDS_DUP, NULL, NULL, &stream) < 0)
		return;
	make_read_ends(fds, n);
	if (rfd_stream_exception(stream, "E", "with FDs", "\x1c\x00\x00", 3, fds, n,
	                         RFD_FDS_TAKE) == -EOPNOTSUPP) {
		counters.refused++;
		rfd_stream_exception(stream, "E", "with FDs", "\x1c\x00\x00", 3, NULL, 0,
		                     RFD_FDS_DUP);
	}
}

static void
handle(void *user, struct rfd_msg *request)
{
	const char *method = rfd_msg_method(request);
	enum rfd_call_kind kind = rfd_msg_call_kind(request);
	size_t len, n = rfd_msg_fd_count(request);
	const uint8_t *data = rfd_msg_data(request, &len);
	int fds[RFD_MAX_FDS];

	if (strcmp(method, "sink") == 0 && kind == RFD_CALL_SINK) {
		open_sink(request);
	} else if (strcmp(method, "exception") == 0 && kind == RFD_CALL_RESPONSE) {
		reply_exception(request);
	} else if (strcmp(method, "stream_exception") == 0 && kind == RFD_CALL_STREAM) {
		stream_exception(request);
	} else if (strcmp(method, "echo") == 0) {
		for (size_t i = 0; i < n; i++)
			fds[i] = rfd_msg_take_fd(request, i);
		rfd_reply(request, data, len, fds, n, RFD_FDS_TAKE);
	} else if (strcmp(method, "stats") == 0) {
		counters.open_fds = (uint32_t)rfd_test_count_fds();
		rfd_reply(request, &counters, sizeof(counters), NULL, 0, RFD_FDS_DUP);
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
	/* Every sink heard -ENOTCONN and was freed. */
	_exit(r < 0 ? 4 : served ? 5 : 0);
}

/* ---- Helpers ---- */

static struct rfd_client *
connect_offering(const char *path, unsigned extensions)
{
	struct rfd_client_options options;
	struct rfd_client *client = NULL;
	int r;

	rfd_client_options_init(&options);
	options.extensions = extensions;
	r = rfd_client_connect(path, &options, &client);
	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "connect: %s", strerror(-r));
	return client;
}

static struct rfd_client *
connect_to(const char *path)
{
	return connect_offering(path, BOTH);
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

/* Server state once the connections of earlier looks are gone (it sees their EOF in its time). */
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

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Pipes for an item: the write ends go (TAKE), the read ends stay in @readers. */
static void
make_pipes(int *readers, int *writers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ends[2];

		if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0)
			abort();
		readers[i] = ends[0];
		writers[i] = ends[1];
	}
}

static void
close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int
open_blocking(struct rfd_client *client, const struct sink_args *args, const int *fds, size_t n_fds,
              struct rfd_msg **first, uint32_t *id)
{
	return rfd_client_sink(client, "sink", args, sizeof(*args), fds, n_fds, RFD_FDS_DUP, 5000,
	                       first, id);
}

/* Push an item with @n pipe write ends; their read ends go to @readers. */
static int
push_pipes(struct rfd_client *client, uint32_t id, int *readers, size_t n, int timeout_ms)
{
	int writers[RFD_MAX_FDS];

	make_pipes(readers, writers, n);
	return rfd_client_sink_push(client, id, "\x08\x00\x00\x00", 4, writers, n, RFD_FDS_TAKE,
	                            timeout_ms);
}

/* The final report of "sink": the inode of every FD the items brought, in order. */
static void
check_final_inos(const struct rfd_msg *final, const int *readers, size_t n)
{
	size_t len;
	const uint8_t *data = rfd_msg_data(final, &len);

	CHECK_EQ(len, n * sizeof(uint64_t));
	for (size_t i = 0; i < n && (i + 1) * sizeof(uint64_t) <= len; i++) {
		struct stat st;
		uint64_t ino;

		memcpy(&ino, data + i * sizeof(ino), sizeof(ino));
		CHECK(fstat(readers[i], &st) == 0 && (uint64_t)st.st_ino == ino);
	}
}

/* Each FD of @msg a FIFO that reads EOF, FD_CLOEXEC set. */
static void
check_read_ends(const struct rfd_msg *msg, size_t n)
{
	CHECK_EQ(rfd_msg_fd_count(msg), n);
	for (size_t i = 0; i < rfd_msg_fd_count(msg); i++) {
		int fd = rfd_msg_fd(msg, i);

		CHECK(rfd_test_is_fifo(fd));
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK(rfd_test_reads_eof(fd));
	}
}

/* ---- Tests ---- */

/*
 * The blocking API: FDs on the request (echoed on the first response), 0, 1
 * and 253 FDs per item, each received by the server and closed there, and
 * FDs on the final response; the server holds nothing after.
 */
static void
test_blocking_sink_with_fds(void)
{
	static const size_t per_item[] = {0, 1, 253};
	uint32_t baseline = server_stats().open_fds;
	struct rfd_client *client = connect_to(socket_path);
	int *readers = calloc(2 * RFD_MAX_FDS, sizeof(*readers));

	REQUIRE(client && readers);
	for (size_t k = 0; k < sizeof(per_item) / sizeof(per_item[0]); k++) {
		struct sink_args args = {.window = 2, .end = END_FINISH, .final_fds = 2};
		int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
		              open("/dev/null", O_RDONLY | O_CLOEXEC)};
		struct rfd_msg *first = NULL, *final = NULL;
		size_t n = per_item[k];
		uint32_t id = 0;

		CHECK_EQ(open_blocking(client, &args, fds, 2, &first, &id), 0);
		close_all(fds, 2);
		REQUIRE(first);
		CHECK_EQ(rfd_msg_kind(first), RFD_MSG_REPLY);
		CHECK_EQ(msg_u32(first), 2);
		CHECK_EQ(rfd_msg_fd_count(first), 2);
		rfd_msg_free(first);
		CHECK_EQ(rfd_client_sink_fds(client, id), 1);
		CHECK_EQ(push_pipes(client, id, readers, n, 5000), 0);
		CHECK_EQ(push_pipes(client, id, readers + n, n, 5000), 0);
		CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
		REQUIRE(final);
		CHECK_EQ(rfd_msg_kind(final), RFD_MSG_REPLY);
		check_final_inos(final, readers, 2 * n);
		check_read_ends(final, 2);
		rfd_msg_free(final);
		for (size_t i = 0; i < 2 * n; i++)
			CHECK(
			    rfd_test_reads_eof(readers[i])); /* the server closed each on arrival */
		close_all(readers, 2 * n);
		CHECK_EQ(rfd_client_sink_close(client, id, 0, &final), -ENOENT);
		CHECK_EQ(rfd_client_in_flight(client), 0);
	}
	free(readers);
	rfd_client_free(client);
	CHECK_EQ(server_stats_settled(baseline).open_fds, baseline);
	CHECK_EQ(server_stats().live, 0);
}

struct collected {
	struct rfd_msg *msgs[8];
	int n;
	int credits; /* RFD_SINK_CREDIT calls */
	int ends;
	int status;
};

static void
collect(void *user, uint32_t id, int status, struct rfd_msg *msg)
{
	struct collected *c = user;

	if (!msg && status == RFD_SINK_CREDIT) {
		c->credits++;
		return;
	}
	if (msg && c->n < 8) {
		c->msgs[c->n++] = msg;
		if (c->n > 1 || rfd_msg_kind(msg) != RFD_MSG_REPLY)
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
process_once(struct rfd_client *client, int timeout_ms)
{
	struct pollfd pfd = {.fd = rfd_client_fd(client), .events = rfd_client_events(client)};

	if (poll(&pfd, 1, timeout_ms) < 0)
		return -errno;
	return rfd_client_process(client, pfd.revents);
}

/*
 * The asynchronous API: items go while there is credit (-EAGAIN without,
 * nothing sent), the callback hears of new credit, and the sink ends with
 * an exception carrying FDs, an error, or the server dropping it.
 */
static void
test_async_sink_ends(void)
{
	static const struct {
		enum end end;
		enum rfd_msg_kind kind;
		uint32_t code;
		size_t fds;
		const char *text;
	} cases[] = {
	    {END_FINISH, RFD_MSG_REPLY, 0, 1, ""},
	    {END_EXCEPTION, RFD_MSG_EXCEPTION, 0, 3, "no more"},
	    {END_ERROR, RFD_MSG_ERROR, 0x201, 0, "the sink broke"},
	    {END_FREE, RFD_MSG_ERROR, 0x203, 0, "the server dropped the sink without ending it"},
	};
	struct rfd_client *client = connect_to(socket_path);

	REQUIRE(client);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct sink_args args = {.window = 1, .end = cases[k].end, .final_fds = 3};
		struct collected c = {0};
		int readers[3], writer[1], sent = 0;
		uint32_t id = 0;

		if (cases[k].end == END_FINISH)
			args.final_fds = 1;
		CHECK_EQ(rfd_client_sink_async(client, "sink", &args, sizeof(args), NULL, 0,
		                               RFD_FDS_DUP, 5000, collect, &c, &id),
		         0);
		CHECK_EQ(rfd_client_sink_send(client, id, "x", 1, NULL, 0, RFD_FDS_DUP), -ENOENT);
		while (!c.ends && sent < 3) {
			int r;

			if (rfd_client_sink_credits(client, id) == 0) {
				if (c.n == 1)
					CHECK_EQ(rfd_client_sink_send(client, id, "x", 1, NULL, 0,
					                              RFD_FDS_DUP),
					         -EAGAIN);
				if (process_once(client, 5000) < 0)
					break;
				continue;
			}
			make_pipes(&readers[sent], writer, 1);
			r = rfd_client_sink_send(client, id, "\x08\x00\x00\x00", 4, writer, 1,
			                         RFD_FDS_TAKE);
			CHECK_EQ(r, 0);
			sent++;
		}
		CHECK_EQ(sent, 3);
		CHECK(c.credits >= 3);
		CHECK_EQ(rfd_client_sink_finish(client, id), 0);
		CHECK_EQ(rfd_client_sink_finish(client, id), -ENOENT);
		while (!c.ends && process_once(client, 5000) >= 0)
			;
		CHECK_EQ(c.ends, 1);
		REQUIRE(c.n == 2);
		CHECK_EQ(rfd_msg_kind(c.msgs[0]), RFD_MSG_REPLY);
		CHECK_EQ(rfd_msg_kind(c.msgs[1]), cases[k].kind);
		CHECK_EQ(rfd_msg_error_code(c.msgs[1]), cases[k].code);
		CHECK(strcmp(rfd_msg_error_text(c.msgs[1]), cases[k].text) == 0);
		check_read_ends(c.msgs[1], cases[k].fds);
		if (cases[k].end == END_FINISH)
			check_final_inos(c.msgs[1], readers, 3);
		for (int i = 0; i < 3; i++)
			CHECK(rfd_test_closed_soon(readers[i]));
		close_all(readers, 3);
		CHECK_EQ(rfd_client_cancel(client, id), -ENOENT);
		collected_free(&c);
	}
	CHECK_EQ(rfd_client_in_flight(client), 0);
	rfd_client_free(client);
}

/*
 * Credit: with a window of 2 and a server that stalls on the first item,
 * the third push waits for the credit that comes once the server took the
 * first two, and a push that cannot wait long enough gives up (-ETIMEDOUT),
 * its FDs closed.
 */
static void
test_client_blocks_at_zero_credit(void)
{
	struct sink_args args = {.window = 2, .end = END_FINISH, .delay_ms = 400};
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL, *final = NULL;
	int readers[5];
	uint32_t id = 0;
	long long start;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
	rfd_msg_free(first);
	CHECK_EQ(push_pipes(client, id, &readers[0], 1, 5000), 0);
	CHECK_EQ(push_pipes(client, id, &readers[1], 1, 5000), 0);
	CHECK_EQ(rfd_client_sink_credits(client, id), 0);
	start = now_ms();
	CHECK_EQ(push_pipes(client, id, &readers[2], 1, 50), -ETIMEDOUT);
	CHECK(rfd_test_reads_eof(readers[2])); /* the FD given to the push that failed is closed */
	CHECK_EQ(push_pipes(client, id, &readers[3], 1, 5000), 0);
	CHECK(now_ms() - start >= 250);
	CHECK_EQ(push_pipes(client, id, &readers[4], 1, 5000), 0);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
	REQUIRE(final);
	CHECK_EQ(rfd_msg_kind(final), RFD_MSG_REPLY);
	{
		int got[4] = {readers[0], readers[1], readers[3], readers[4]};

		check_final_inos(final, got, 4);
	}
	rfd_msg_free(final);
	close_all(readers, 5);
	rfd_client_free(client);
}

/*
 * The extensions not agreed: a client that offers nothing gets no answer to
 * its sink, may put no FD on items (-EOPNOTSUPP, TAKE FDs closed), and gets
 * no FD with the final response or an exception (the server's attempts are
 * refused); one that offers exception alone gets FDs with exceptions only.
 */
static void
test_extensions_not_offered(void)
{
	static const unsigned offers[] = {0, RFD_EXTENSION_EXCEPTION, RFD_EXTENSION_SINK};

	for (size_t k = 0; k < sizeof(offers) / sizeof(offers[0]); k++) {
		struct sink_args args = {.window = 4, .end = END_FINISH, .final_fds = 2};
		struct rfd_client *client = connect_offering(socket_path, offers[k]);
		bool sink = offers[k] & RFD_EXTENSION_SINK;
		bool exception = offers[k] & RFD_EXTENSION_EXCEPTION;
		uint32_t refused = server_stats().refused, want_refused = refused, n = 2, id = 0;
		struct rfd_msg *first = NULL, *final = NULL, *reply = NULL;
		int readers[1], writers[1];

		REQUIRE(client);
		CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
		rfd_msg_free(first);
		CHECK_EQ(rfd_client_sink_fds(client, id), sink);
		make_pipes(readers, writers, 1);
		CHECK_EQ(rfd_client_sink_push(client, id, "x", 1, writers, 1, RFD_FDS_TAKE, 5000),
		         sink ? 0 : -EOPNOTSUPP);
		if (!sink)
			CHECK(rfd_test_reads_eof(readers[0]));
		CHECK_EQ(rfd_client_sink_push(client, id, "y", 1, NULL, 0, RFD_FDS_DUP, 5000), 0);
		CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
		REQUIRE(final);
		CHECK_EQ(rfd_msg_kind(final), RFD_MSG_REPLY);
		CHECK_EQ(rfd_msg_fd_count(final), sink ? 2 : 0);
		want_refused += !sink;
		rfd_msg_free(final);
		CHECK(rfd_test_closed_soon(readers[0]));
		close(readers[0]);

		CHECK_EQ(rfd_client_call(client, "exception", &n, sizeof(n), NULL, 0, RFD_FDS_DUP,
		                         5000, &reply),
		         0);
		REQUIRE(reply);
		CHECK_EQ(rfd_msg_kind(reply), RFD_MSG_EXCEPTION);
		check_read_ends(reply, exception ? 2 : 0);
		rfd_msg_free(reply);
		want_refused += !exception;
		CHECK_EQ(server_stats().refused, want_refused);
		rfd_client_free(client);
	}
}

/*
 * FDs on declared exceptions (the extension exception): on a call, on a
 * stream and at the end of a sink, each delivered with the exception, the
 * read ends of pipes whose write ends the server closed.
 */
static void
test_exceptions_with_fds(void)
{
	struct rfd_client *client = connect_to(socket_path);
	struct sink_args args = {.window = 1, .end = END_EXCEPTION, .final_fds = 253};
	struct rfd_msg *msg = NULL;
	uint32_t n = 253, id = 0;
	int r;

	REQUIRE(client);
	CHECK_EQ(
	    rfd_client_call(client, "exception", &n, sizeof(n), NULL, 0, RFD_FDS_DUP, 5000, &msg),
	    0);
	REQUIRE(msg);
	CHECK_EQ(rfd_msg_kind(msg), RFD_MSG_EXCEPTION);
	CHECK(strcmp(rfd_msg_error_text(msg), "with FDs") == 0);
	check_read_ends(msg, 253);
	rfd_msg_free(msg);

	n = 1;
	CHECK_EQ(rfd_client_stream(client, "stream_exception", &n, sizeof(n), NULL, 0, RFD_FDS_DUP,
	                           5000, 1, &msg, &id),
	         0);
	REQUIRE(msg);
	CHECK_EQ(rfd_msg_kind(msg), RFD_MSG_REPLY);
	rfd_msg_free(msg);
	r = rfd_client_stream_next(client, id, 5000, &msg);
	CHECK_EQ(r, 1);
	REQUIRE(msg);
	CHECK_EQ(rfd_msg_kind(msg), RFD_MSG_EXCEPTION);
	check_read_ends(msg, 1);
	rfd_msg_free(msg);

	CHECK_EQ(open_blocking(client, &args, NULL, 0, &msg, &id), 0);
	rfd_msg_free(msg);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &msg), 0);
	REQUIRE(msg);
	CHECK_EQ(rfd_msg_kind(msg), RFD_MSG_EXCEPTION);
	check_read_ends(msg, 253);
	rfd_msg_free(msg);
	CHECK_EQ(server_stats().live, 0);
	rfd_client_free(client);
}

/*
 * The client cancels mid-sink, items with FDs in flight: the server hears
 * of it and keeps nothing, nothing leaks on either side, and the next call
 * with FDs on the same connection gets them.
 */
static void
test_cancel_mid_sink(void)
{
	enum { ITEMS = 40, PER_ITEM = 4 };
	struct sink_args args = {.window = 100, .end = END_FINISH};
	struct stats before = server_stats();
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL, *reply = NULL;
	int *readers = calloc(ITEMS * PER_ITEM, sizeof(*readers));
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t id = 0;

	REQUIRE(client && readers);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
	rfd_msg_free(first);
	for (int i = 0; i < ITEMS; i++)
		CHECK_EQ(push_pipes(client, id, readers + i * PER_ITEM, PER_ITEM, 5000), 0);
	CHECK_EQ(rfd_client_cancel(client, id), 0);
	CHECK_EQ(rfd_client_cancel(client, id), -ENOENT);
	CHECK_EQ(rfd_client_sink_push(client, id, "x", 1, NULL, 0, RFD_FDS_DUP, 0), -ENOENT);
	CHECK_EQ(rfd_client_in_flight(client), 0);
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, &fd, 1, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_fd_count(reply) == 1);
	rfd_msg_free(reply);
	close(fd);
	for (int i = 0; i < ITEMS * PER_ITEM; i++)
		CHECK(rfd_test_closed_soon(readers[i]));
	close_all(readers, ITEMS * PER_ITEM);
	free(readers);
	CHECK_EQ(server_stats().cancelled, before.cancelled + 1);
	CHECK_EQ(server_stats().live, 0);
	rfd_client_free(client);
	CHECK_EQ(server_stats_settled(before.open_fds).open_fds, before.open_fds);
}

/*
 * The server ends the sink after two items, before the client completed:
 * the client's next push finds it over (-EPIPE), close gives the final
 * response, the items that crossed it are dropped on both sides with their
 * FDs closed, and the connection goes on.
 */
static void
test_server_ends_sink_early(void)
{
	struct sink_args args = {.window = 100, .end = END_EARLY, .end_after = 2};
	struct stats before = server_stats();
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL, *final = NULL, *reply = NULL;
	int readers[64], fd = open("/dev/null", O_RDONLY | O_CLOEXEC), pushed = 0, r = 0;
	uint32_t id = 0;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
	rfd_msg_free(first);
	while (pushed < 63 && (r = push_pipes(client, id, &readers[pushed], 1, 5000)) == 0) {
		pushed++;
		usleep(10000);
	}
	CHECK(pushed < 63 && pushed >= 2);
	CHECK_EQ(r, -EPIPE);
	CHECK(rfd_test_reads_eof(readers[pushed])); /* the refused push's FD is closed */
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
	REQUIRE(final);
	CHECK_EQ(rfd_msg_kind(final), RFD_MSG_REPLY);
	check_final_inos(final, readers, 2);
	rfd_msg_free(final);
	/* The FDs of late items wait at the server for the next claim, which closes them. */
	CHECK_EQ(rfd_client_call(client, "echo", "e", 1, &fd, 1, RFD_FDS_DUP, 5000, &reply), 0);
	CHECK(reply && rfd_msg_fd_count(reply) == 1);
	rfd_msg_free(reply);
	close(fd);
	for (int i = 0; i <= pushed; i++)
		CHECK(rfd_test_closed_soon(readers[i]));
	close_all(readers, (size_t)pushed + 1);
	CHECK_EQ(server_stats().live, 0);
	rfd_client_free(client);
	CHECK_EQ(server_stats_settled(before.open_fds).open_fds, before.open_fds);
}

/* The client goes away mid-sink: the server hears -ENOTCONN and keeps nothing. */
static void
test_client_gone_mid_sink(void)
{
	struct sink_args args = {.window = 10, .end = END_HANG};
	struct stats before = server_stats();
	struct rfd_client *client = connect_to(socket_path);
	struct rfd_msg *first = NULL;
	int readers[3];
	uint32_t id = 0;

	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
	rfd_msg_free(first);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(push_pipes(client, id, &readers[i], 1, 5000), 0);
	rfd_client_free(client);
	for (int i = 0; i < 3; i++)
		CHECK(rfd_test_closed_soon(readers[i]));
	close_all(readers, 3);
	CHECK_EQ(server_stats_settled(before.open_fds).open_fds, before.open_fds);
	CHECK_EQ(server_stats().closed, before.closed + 1);
	CHECK_EQ(server_stats().live, 0);
}

/* The server goes away mid-sink: the sink fails with the connection, nothing leaks. */
static void
test_server_gone_mid_sink(void)
{
	struct sink_args args = {.window = 10, .end = END_DIE, .end_after = 1};
	struct rfd_msg *first = NULL, *final = NULL;
	struct rfd_client *client;
	char path[108];
	int readers[64], pushed = 0, r = 0, status;
	uint32_t id = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "/tmp/rfd-test-sinks-%d-die.sock", (int)getpid());
	pid = rfd_test_server_fork(path, run_server);
	client = connect_to(path);
	REQUIRE(client);
	CHECK_EQ(open_blocking(client, &args, NULL, 0, &first, &id), 0);
	rfd_msg_free(first);
	while (pushed < 63 && (r = push_pipes(client, id, &readers[pushed], 1, 5000)) == 0) {
		pushed++;
		usleep(20000);
	}
	CHECK(r == -ECONNRESET || r == -EPIPE);
	close(readers[pushed]);
	r = rfd_client_sink_close(client, id, 5000, &final);
	CHECK(r == -ECONNRESET || r == -EPIPE);
	CHECK(final == NULL);
	for (int i = 0; i < pushed; i++)
		CHECK(rfd_test_closed_soon(readers[i]));
	close_all(readers, (size_t)pushed);
	rfd_client_free(client);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(path);
}

/* ---- Servers that break the agreement, played by hand ---- */

/* A client on one end of a socket pair, offering @extensions; the other end in *peer. */
static struct rfd_client *
adopt_pair(unsigned extensions, int *peer)
{
	struct rfd_client_options options;
	struct rfd_client *client = NULL;
	struct rfd_server_push push = {
	    .kind = RFD_PUSH_SETUP_RESPONSE, .has_version = true, .version = 10};
	struct rfd_frame frame = {
	    .type = RFD_FRAME_METADATA_PUSH, .flags = RFD_FLAG_METADATA, .has_metadata = true};
	struct rfd_buf md, wire;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	rfd_client_options_init(&options);
	options.extensions = extensions;
	rfd_buf_init(&md);
	rfd_buf_init(&wire);
	rfd_server_push_encode(&push, &md);
	frame.metadata = (struct rfd_slice){md.data, md.len};
	rfd_frame_encode(&frame, &wire);
	if (write(sv[1], wire.data, wire.len) != (ssize_t)wire.len ||
	    rfd_client_adopt(sv[0], &options, &client) < 0) {
		close(sv[1]);
		sv[1] = -1;
	}
	rfd_buf_free(&md);
	rfd_buf_free(&wire);
	*peer = sv[1];
	return client;
}

/* Write a PAYLOAD on stream 1: a first response (with @answer) or not, with @fds claimed. */
static void
raw_payload(int sock, bool first, uint16_t flags, const char *answer, const int *fds, size_t n)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .has_extensions = answer != NULL,
	    .extensions = {(const uint8_t *)answer, answer ? strlen(answer) : 0},
	    .fd = {.present = n != 0,
	           .has_seq = true,
	           .fd_seq = 0,
	           .has_num = true,
	           .num_fds = (int32_t)n},
	};
	struct rfd_frame frame = {.stream_id = 1,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = flags,
	                          .has_metadata = true,
	                          .data = {(const uint8_t *)"\x00", 1}};
	struct rfd_buf meta, wire;

	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	if (first)
		rfd_response_metadata_encode(&md, &meta);
	else
		rfd_stream_payload_metadata_encode(&md, &meta);
	frame.metadata = (struct rfd_slice){meta.data, meta.len};
	rfd_frame_encode(&frame, &wire);
	CHECK_EQ(rfd_sock_send(sock, wire.data, wire.len, fds, n), (ssize_t)wire.len);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
}

/*
 * A server that accepts no extension (fbthrift's): the client offering sink
 * sends no FD on items (-EOPNOTSUPP, TAKE FDs closed); a final response with
 * an FD it was not offered fails the sink (EXT-7) with the FD closed, and the
 * connection goes on.
 */
static void
test_server_without_the_extension(void)
{
	struct rfd_msg *first = NULL, *final = NULL;
	struct rfd_client *client;
	int peer = -1, readers[2], writers[2];
	uint32_t id = 0;

	make_pipes(readers, writers, 2);
	client = adopt_pair(RFD_EXTENSION_EXCEPTION, &peer);
	REQUIRE(client && peer >= 0);
	raw_payload(peer, true, RFD_FLAG_NEXT, NULL, NULL, 0);
	CHECK_EQ(rfd_client_sink(client, "s", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &first, &id), 0);
	CHECK(first && rfd_msg_kind(first) == RFD_MSG_REPLY);
	rfd_msg_free(first);
	CHECK_EQ(rfd_client_sink_fds(client, id), 0);
	CHECK_EQ(rfd_client_sink_push(client, id, "x", 1, &writers[0], 1, RFD_FDS_TAKE, 1000),
	         -EOPNOTSUPP);
	CHECK(rfd_test_reads_eof(readers[0]));
	CHECK(strstr(rfd_client_error(client), "extension sink") != NULL);

	/* The final response brings an FD although the client did not offer sink. */
	raw_payload(peer, false, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, NULL, &writers[1], 1);
	close(writers[1]);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), -EPROTO);
	CHECK(final == NULL);
	CHECK(strstr(rfd_client_error(client), "did not offer the extension sink") != NULL);
	CHECK(rfd_test_reads_eof(readers[1]));
	CHECK_EQ(rfd_client_process(client, 0), 0); /* the connection goes on */
	close_all(readers, 2);
	rfd_client_free(client);
	close(peer);
}

/* The types of the frames the client wrote to @peer so far, in order; returns how many. */
static size_t
written_frame_types(int peer, enum rfd_frame_type *types, size_t max)
{
	uint8_t bytes[4096];
	ssize_t got = recv(peer, bytes, sizeof(bytes), MSG_DONTWAIT);
	size_t at = 0, n = 0;

	while (got > 0 && at + RFD_FRAME_LENGTH_SIZE <= (size_t)got && n < max) {
		size_t len = rfd_get_u24(bytes + at);
		struct rfd_frame f;
		const char *why;

		if (at + RFD_FRAME_LENGTH_SIZE + len > (size_t)got ||
		    rfd_frame_decode(bytes + at + RFD_FRAME_LENGTH_SIZE, len, &f, &why) < 0)
			break;
		types[n++] = f.type;
		at += RFD_FRAME_LENGTH_SIZE + len;
	}
	return n;
}

/*
 * SINK-14: a first response with COMPLETE and a result fails the sink, its
 * FD closed, nothing more sent on the sink, and the connection goes on.
 */
static void
test_first_response_ends_sink(void)
{
	enum rfd_frame_type types[8];
	struct rfd_msg *first = NULL;
	struct rfd_client *client;
	int peer = -1, reader, writer;
	uint32_t id = 0;
	size_t n;

	make_pipes(&reader, &writer, 1);
	client = adopt_pair(BOTH, &peer);
	REQUIRE(client && peer >= 0);
	raw_payload(peer, true, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, "sink", &writer, 1);
	close(writer);
	CHECK_EQ(rfd_client_sink(client, "s", NULL, 0, NULL, 0, RFD_FDS_DUP, 5000, &first, &id),
	         -EPROTO);
	CHECK(first == NULL);
	CHECK(strstr(rfd_client_error(client), "without a final response") != NULL);
	CHECK(rfd_test_reads_eof(reader));
	CHECK_EQ(rfd_client_process(client, 0), 0); /* the connection goes on */
	n = written_frame_types(peer, types, 8);
	CHECK(n >= 2 && types[0] == RFD_FRAME_SETUP && types[n - 1] == RFD_FRAME_REQUEST_CHANNEL);
	close(reader);
	rfd_client_free(client);
	close(peer);
}

/* ---- FdTest's sinkFds ---- */

static int
call_sink_fds(struct rfd_client *client, const char *tag, uint32_t *id)
{
	struct fdt_bytes args;
	struct rfd_msg *first = NULL;
	int r = fdt_encode_args(tag, &args);

	if (r < 0)
		return r;
	r = rfd_client_sink(client, FDT_METHOD_SINK_FDS, args.data, args.len, NULL, 0, RFD_FDS_DUP,
	                    5000, &first, id);
	fdt_bytes_free(&args);
	if (r == 0 && (rfd_msg_kind(first) != RFD_MSG_REPLY || rfd_msg_fd_count(first) != 0))
		r = -EPROTO;
	rfd_msg_free(first);
	return r;
}

static int
push_tagged(struct rfd_client *client, uint32_t id, const char *tag, int *fds, size_t n)
{
	struct fdt_bytes item;
	int r = fdt_encode_bytes_result(tag, strlen(tag), &item);

	if (r < 0)
		return r;
	r = rfd_client_sink_push(client, id, item.data, item.len, fds, n, RFD_FDS_DUP, 5000);
	fdt_bytes_free(&item);
	return r;
}

static void
test_fdtest_sink_fds(void)
{
	struct rfd_client *client;
	struct rfd_msg *final = NULL, *reply = NULL;
	struct fdt_report report;
	char path[108], *tag = NULL;
	const uint8_t *data;
	const char *why;
	int readers[4], writers[4], null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int *many = calloc(2 * 200, sizeof(*many));
	size_t len, tag_len = 0;
	uint32_t id = 0;
	pid_t pid;

	/* The sink item codec: {0: string}, NUL bytes kept. */
	REQUIRE(fdt_decode_sink_item((const uint8_t *)"\x08\x00\x03"
	                                              "a\0b\x00",
	                             7, &tag, &tag_len, &why) == 0);
	CHECK(tag_len == 3 && memcmp(tag, "a\0b", 3) == 0);
	free(tag);
	CHECK(fdt_decode_sink_item((const uint8_t *)"\x18\x01x\x00", 4, &tag, &tag_len, &why) < 0);
	CHECK(tag == NULL);

	snprintf(path, sizeof(path), "/tmp/rfd-test-sinks-%d-fdtest.sock", (int)getpid());
	pid = rfd_test_server_fork(path, rfd_test_fdtest_server);
	client = connect_to(path);
	REQUIRE(client && many && null_fd >= 0);
	make_pipes(readers, writers, 4);

	/* Items with 1, 0 and 3 FDs: all 4 reported, in order, and closed. */
	CHECK_EQ(call_sink_fds(client, "fds", &id), 0);
	CHECK_EQ(rfd_client_sink_fds(client, id), 1);
	CHECK_EQ(push_tagged(client, id, "a", &writers[0], 1), 0);
	CHECK_EQ(push_tagged(client, id, "b", NULL, 0), 0);
	{
		int item[3] = {writers[1], null_fd, writers[2]};

		CHECK_EQ(push_tagged(client, id, "c", item, 3), 0);
	}
	close_all(writers, 3);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
	REQUIRE(final && rfd_msg_kind(final) == RFD_MSG_REPLY);
	CHECK_EQ(rfd_msg_fd_count(final), 0);
	data = rfd_msg_data(final, &len);
	REQUIRE(fdt_decode_report_result(data, len, &report, &why) == 0);
	CHECK(strcmp(report.tag, "fds") == 0);
	REQUIRE(report.n_fds == 4);
	{
		int order[4] = {readers[0], readers[1], null_fd, readers[2]};

		for (int i = 0; i < 4; i++) {
			struct stat st;

			CHECK(fstat(order[i], &st) == 0 &&
			      report.fds[i].ino == (int64_t)st.st_ino &&
			      report.fds[i].dev == (int64_t)st.st_dev);
		}
	}
	CHECK_EQ(report.fds[0].type, S_IFIFO);
	CHECK_EQ(report.fds[0].flags & O_ACCMODE, O_WRONLY);
	CHECK(report.fds[0].cloexec);
	fdt_report_free(&report);
	rfd_msg_free(final);
	for (int i = 0; i < 3; i++)
		CHECK(rfd_test_reads_eof(readers[i]));

	/* Sent as request-response: another kind (6.8 step 8). */
	CHECK_EQ(rfd_client_call(client, FDT_METHOD_SINK_FDS, "\x00", 1, NULL, 0, RFD_FDS_DUP, 5000,
	                         &reply),
	         0);
	CHECK(reply && rfd_msg_kind(reply) == RFD_MSG_ERROR && rfd_msg_error_code(reply) == 0x204);
	rfd_msg_free(reply);

	/* Cancelled in the middle; the connection goes on. */
	CHECK_EQ(call_sink_fds(client, "cancelled", &id), 0);
	CHECK_EQ(push_tagged(client, id, "x", &writers[3], 1), 0);
	close(writers[3]);
	CHECK_EQ(rfd_client_cancel(client, id), 0);
	CHECK(rfd_test_closed_soon(readers[3]));

	/*
	 * Limitation of the service: a report lists at most 253 FDs; items that
	 * bring more fail the sink with an error, their FDs closed.
	 */
	CHECK_EQ(call_sink_fds(client, "too-many", &id), 0);
	make_pipes(many, many + 200, 200);
	CHECK_EQ(push_tagged(client, id, "200", many + 200, 200), 0);
	close_all(many + 200, 200);
	make_pipes(many + 200, many + 300, 100);
	CHECK_EQ(push_tagged(client, id, "100", many + 300, 100), 0);
	close_all(many + 300, 100);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
	CHECK(final && rfd_msg_kind(final) == RFD_MSG_ERROR);
	rfd_msg_free(final);
	for (int i = 0; i < 300; i++)
		CHECK(rfd_test_closed_soon(many[i]));
	close_all(many, 300);
	free(many);

	CHECK_EQ(call_sink_fds(client, "after", &id), 0);
	CHECK_EQ(rfd_client_sink_close(client, id, 5000, &final), 0);
	CHECK(final && rfd_msg_kind(final) == RFD_MSG_REPLY);
	rfd_msg_free(final);
	close_all(readers, 4);
	close(null_fd);
	rfd_client_free(client);
	rfd_test_server_stop(pid, 0);
}

static const struct rfd_test tests[] = {
    {"blocking_sink_with_fds", test_blocking_sink_with_fds},
    {"async_sink_ends", test_async_sink_ends},
    {"client_blocks_at_zero_credit", test_client_blocks_at_zero_credit},
    {"extensions_not_offered", test_extensions_not_offered},
    {"exceptions_with_fds", test_exceptions_with_fds},
    {"cancel_mid_sink", test_cancel_mid_sink},
    {"server_ends_sink_early", test_server_ends_sink_early},
    {"client_gone_mid_sink", test_client_gone_mid_sink},
    {"server_gone_mid_sink", test_server_gone_mid_sink},
    {"server_without_the_extension", test_server_without_the_extension},
    {"first_response_ends_sink", test_first_response_ends_sink},
    {"fdtest_sink_fds", test_fdtest_sink_fds},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	int status;

	signal(SIGPIPE, SIG_IGN);
	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-test-sinks-%d.sock", (int)getpid());
	server_pid = rfd_test_server_fork(socket_path, run_server);
	status = rfd_test_main(argc, argv, tests);
	rfd_test_server_stop(server_pid, 0);
	CHECK(access(socket_path, F_OK) < 0);
	return rfd_test_failures ? EXIT_FAILURE : status;
}
