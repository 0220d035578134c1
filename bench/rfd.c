/* SPDX-License-Identifier: MIT */
/*
 * rocketfd's side: a server in a child process (rfd_server_run) and clients
 * in this one, blocking calls for latency, asynchronous calls on an epoll
 * loop for throughput and scaling.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "bench.h"

enum {
	MAX_HELD = 4096,
	MAX_EVENTS = 64,
	WARMUP_CALLS = 200,
	LARGE_LIMIT = 160 << 20, /* bytes of one message: room for 64 MiB inline and more */
};

/* What the server reports about itself ("stats"). */
struct server_stats {
	int64_t allocs;
	int64_t heap;
	int64_t rss;
	int64_t held;
};

static const uint8_t call_args[CALL_ARGS];
static const uint8_t call_result[CALL_RESULT];

/* ---- The server process ---- */

/* The stream the server is sending: the bench opens one at a time. */
struct streaming {
	struct rfd_stream *stream;
	uint32_t count;
	uint32_t sent;
	uint32_t fds_per_item;
	int fd; /* sent fds_per_item times per item, RFD_FDS_DUP */
};

struct server_state {
	struct rfd_server *server;
	struct rfd_msg *held[MAX_HELD];
	size_t n_held;
	struct streaming streaming;
};

static struct server_state *serving;

static void
answer(struct rfd_msg *request, const void *data, size_t len)
{
	rfd_reply(request, data, len, NULL, 0, RFD_FDS_DUP);
}

static void
answer_touch(struct rfd_msg *request)
{
	uint64_t size = 0;
	size_t len;
	const uint8_t *data = rfd_msg_data(request, &len);

	if (rfd_msg_fd_count(request) == 1) {
		size_t mapped = 0;

		if (payload_touch_memfd(rfd_msg_fd(request, 0), &mapped) < 0) {
			rfd_reply_error(request, RFD_FAIL_BAD_REQUEST, "not a sealed memfd");
			return;
		}
		size = mapped;
	} else {
		volatile uint8_t sink = payload_touch(data, len);

		(void)sink;
		size = len;
	}
	answer(request, &size, sizeof(size));
}

static void
release_held(struct server_state *state)
{
	while (state->n_held > 0)
		answer(state->held[--state->n_held], call_result, sizeof(call_result));
}

static void
stream_end(struct streaming *s)
{
	rfd_stream_free(s->stream);
	s->stream = NULL;
}

/* Send items while the client gives credit; complete once they are all sent. */
static void
stream_push(struct streaming *s)
{
	int fds[MAX_FDS_PER_CALL];

	for (uint32_t i = 0; i < s->fds_per_item; i++)
		fds[i] = s->fd;
	while (s->stream && s->sent < s->count && rfd_stream_credits(s->stream) > 0) {
		if (rfd_stream_send(s->stream, stream_item, sizeof(stream_item), fds,
		                    s->fds_per_item, RFD_FDS_DUP) < 0)
			stream_end(s);
		else
			s->sent++;
	}
	if (s->stream && s->sent == s->count) {
		rfd_stream_complete(s->stream);
		s->stream = NULL;
	}
}

static void
on_stream_event(void *user, struct rfd_stream *stream, enum rfd_stream_event event)
{
	struct streaming *s = user;

	if (stream != s->stream) {
		rfd_stream_free(stream);
		return;
	}
	if (event == RFD_STREAM_CREDIT)
		stream_push(s);
	else
		stream_end(s);
}

static void
open_stream(struct streaming *s, struct rfd_msg *request)
{
	static const uint8_t empty_struct[] = {0x00};
	struct stream_args args;
	size_t len;
	const uint8_t *data = rfd_msg_data(request, &len);

	if (len != sizeof(args) || s->stream || !rfd_msg_streaming(request)) {
		rfd_reply_error(request, RFD_FAIL_BAD_REQUEST, "bad stream request");
		return;
	}
	memcpy(&args, data, sizeof(args));
	if (args.fds_per_item > MAX_FDS_PER_CALL) {
		rfd_reply_error(request, RFD_FAIL_BAD_REQUEST, "too many FDs per item");
		return;
	}
	if (s->fd < 0)
		s->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	s->count = args.count;
	s->fds_per_item = args.fds_per_item;
	s->sent = 0;
	if (rfd_reply_stream(request, empty_struct, sizeof(empty_struct), NULL, 0, RFD_FDS_DUP,
	                     on_stream_event, s, &s->stream) < 0)
		return;
	stream_push(s);
}

static void
handle(void *user, struct rfd_msg *request)
{
	struct server_state *state = user;
	const char *method = rfd_msg_method(request);

	if (strcmp(method, CALL_METHOD) == 0) {
		answer(request, call_result, sizeof(call_result));
	} else if (strcmp(method, STREAM_METHOD) == 0) {
		open_stream(&state->streaming, request);
	} else if (strcmp(method, "touch") == 0) {
		answer_touch(request);
	} else if (strcmp(method, "hold") == 0 && state->n_held < MAX_HELD) {
		state->held[state->n_held++] = request;
	} else if (strcmp(method, "release") == 0) {
		release_held(state);
		answer(request, call_result, sizeof(call_result));
	} else if (strcmp(method, "stats") == 0) {
		struct server_stats stats = {
		    .allocs = alloc_count(),
		    .heap = heap_bytes(),
		    .rss = rss_bytes(),
		    .held = (int64_t)state->n_held,
		};

		answer(request, &stats, sizeof(stats));
	} else {
		rfd_reply_error(request, RFD_FAIL_UNKNOWN_METHOD, "unknown method");
	}
}

static void
on_term(int sig)
{
	rfd_server_stop(serving->server);
}

static void
large_limits(struct rfd_limits *limits)
{
	rfd_limits_init(limits);
	limits->max_message = LARGE_LIMIT;
}

static void
server_main(void *arg, int ready_fd)
{
	const char *path = arg;
	static struct server_state state;
	struct rfd_server_options options;
	int r;

	rfd_server_options_init(&options);
	large_limits(&options.limits);
	options.max_connections = 8192;
	serving = &state;
	state.streaming.fd = -1;
	r = rfd_server_listen(path, &options, handle, &state, &state.server);
	if (r < 0) {
		fprintf(stderr, "rfd-bench: server: listen at %s: %s\n", path, strerror(-r));
		_exit(2);
	}
	signal(SIGTERM, on_term);
	child_ready(ready_fd);
	r = rfd_server_run(state.server, -1);
	for (size_t i = 0; i < state.n_held; i++)
		rfd_msg_free(state.held[i]);
	rfd_stream_free(state.streaming.stream);
	rfd_server_free(state.server);
	_exit(r < 0 ? 4 : 0);
}

struct server {
	struct child child;
	char path[108];
};

static int
server_start(const struct bench_config *config, struct server *server)
{
	socket_path(config, server->path, sizeof(server->path));
	return child_start(&server->child, server_main, server->path);
}

static int
server_stop(struct server *server)
{
	int status = child_stop(&server->child);

	unlink(server->path);
	return status;
}

/* ---- Clients ---- */

static int
client_connect(const struct server *server, rfd_trace_fn *trace, void *trace_user,
               struct rfd_client **out)
{
	struct rfd_client_options options;

	rfd_client_options_init(&options);
	large_limits(&options.limits);
	options.connect_timeout_ms = 10000;
	options.trace = trace;
	options.trace_user = trace_user;
	return rfd_client_connect(server->path, &options, out);
}

/*
 * A blocking call whose reply must be a REPLY; the reply is freed unless @out
 * takes it.  Not inlined: callgrind.sh counts its instructions.
 */
static int __attribute__((noinline))
call_checked(struct rfd_client *client, const char *method, const void *args, size_t len,
             const int *fds, size_t n_fds, enum rfd_fd_mode mode, struct rfd_msg **out)
{
	struct rfd_msg *reply = NULL;
	int r =
	    rfd_client_call(client, method, args, len, fds, n_fds, mode, CALL_TIMEOUT_MS, &reply);

	if (r == 0 && rfd_msg_kind(reply) != RFD_MSG_REPLY)
		r = -EPROTO;
	if (r == 0 && out)
		*out = reply;
	else
		rfd_msg_free(reply);
	return r;
}

static int
server_stats(struct rfd_client *client, struct server_stats *stats)
{
	struct rfd_msg *reply = NULL;
	const uint8_t *data;
	size_t len;
	int r = call_checked(client, "stats", NULL, 0, NULL, 0, RFD_FDS_DUP, &reply);

	if (r < 0)
		return r;
	data = rfd_msg_data(reply, &len);
	if (len == sizeof(*stats))
		memcpy(stats, data, sizeof(*stats));
	else
		r = -EPROTO;
	rfd_msg_free(reply);
	return r;
}

static int
open_null(int *fds, size_t n)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fds[i] = fd;
	return fd;
}

/* ---- Wire sizes ---- */

struct wire_trace {
	size_t request;
	size_t reply;
	size_t item; /* a stream item: a PAYLOAD with NEXT but not the stream's first */
	uint32_t item_stream;
};

/* Frame bytes: length (3), stream id and type/flags (6), metadata length (3), metadata, data. */
static void
trace_sizes(void *user, const char *line)
{
	struct wire_trace *t = user;
	char direction, type[32];
	unsigned stream, flags;
	size_t metadata, data;

	if (sscanf(line, "%c %31s stream %u flags %x metadata %zu data %zu", &direction, type,
	           &stream, &flags, &metadata, &data) != 6)
		return;
	if (direction == '>' && strcmp(type, "REQUEST_RESPONSE") == 0)
		t->request = 12 + metadata + data;
	else if (direction == '>' && strcmp(type, "REQUEST_STREAM") == 0)
		t->item_stream = stream;
	else if (direction == '<' && strcmp(type, "PAYLOAD") == 0 && stream != t->item_stream)
		t->reply = 12 + metadata + data;
	else if (direction == '<' && strcmp(type, "PAYLOAD") == 0 && data == sizeof(stream_item))
		t->item = 12 + metadata + data;
}

int
rfd_wire_size(const struct bench_config *config, size_t n_fds, struct wire_size *out)
{
	struct server server;
	struct wire_trace trace = {0};
	struct rfd_client *client = NULL;
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_null(fds, n_fds);
	int r;

	assert(config);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	r = server_start(config, &server);
	if (r < 0) {
		close(null_fd);
		return r;
	}
	r = client_connect(&server, trace_sizes, &trace, &client);
	/* A few calls first: the FD sequence number grows like in a measurement. */
	for (int i = 0; r == 0 && i < 3; i++)
		r = call_checked(client, CALL_METHOD, call_args, sizeof(call_args), fds, n_fds,
		                 RFD_FDS_DUP, NULL);
	rfd_client_free(client);
	server_stop(&server);
	close(null_fd);
	if (r == 0 && (!trace.request || !trace.reply))
		r = -EPROTO;
	out->request = trace.request;
	out->reply = trace.reply;
	return r;
}

/* ---- Round trip ---- */

static int
roundtrip_loop(const struct bench_config *config, struct rfd_client *client, const int *fds,
               size_t n_fds, struct measure *out)
{
	struct run_budget budget;
	struct samples samples;
	uint64_t start;
	long calls = 0;
	int r = 0;

	if (samples_init(&samples, MAX_SAMPLES) < 0)
		return -ENOMEM;
	for (int i = 0; i < WARMUP_CALLS && r == 0; i++)
		r = call_checked(client, CALL_METHOD, call_args, sizeof(call_args), fds, n_fds,
		                 RFD_FDS_DUP, NULL);
	run_budget_start(&budget, config, 1.0);
	start = now_ns();
	while (r == 0 && run_budget_more(&budget, calls)) {
		uint64_t t0 = now_ns();

		r = call_checked(client, CALL_METHOD, call_args, sizeof(call_args), fds, n_fds,
		                 RFD_FDS_DUP, NULL);
		samples_add(&samples, now_ns() - t0);
		calls++;
	}
	if (r == 0)
		measure_from(out, &samples, calls, now_ns() - start);
	else
		measure_fail(out, r, "rocketfd call");
	samples_free(&samples);
	return r;
}

int
rfd_roundtrip(const struct bench_config *config, size_t n_fds, struct measure *out)
{
	struct server server;
	struct rfd_client *client = NULL;
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_null(fds, n_fds);
	int r;

	assert(config);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	r = server_start(config, &server);
	if (r == 0)
		r = client_connect(&server, NULL, NULL, &client);
	if (r == 0)
		r = roundtrip_loop(config, client, fds, n_fds, out);
	else
		measure_fail(out, r, "rocketfd setup");
	rfd_client_free(client);
	server_stop(&server);
	close(null_fd);
	return r;
}

/* ---- Pipelined: several clients on one epoll loop ---- */

struct driver;

struct slot {
	struct driver *driver;
	unsigned client;
	uint64_t sent_at;
};

struct driver {
	struct rfd_client **clients;
	uint32_t *watched; /* epoll events of each client */
	unsigned conns;
	unsigned in_flight;
	struct slot *slots;
	const int *fds;
	size_t n_fds;
	long outstanding;
	long calls;
	bool measuring;
	bool more;
	int error;
	struct samples samples;
};

static void on_reply(void *user, int status, struct rfd_msg *reply);

static int
driver_send(struct driver *d, struct slot *slot)
{
	int r;

	slot->sent_at = now_ns();
	r = rfd_client_call_async(d->clients[slot->client], CALL_METHOD, call_args,
	                          sizeof(call_args), d->fds, d->n_fds, RFD_FDS_DUP, CALL_TIMEOUT_MS,
	                          on_reply, slot, NULL);
	if (r == 0)
		d->outstanding++;
	return r;
}

static void
on_reply(void *user, int status, struct rfd_msg *reply)
{
	struct slot *slot = user;
	struct driver *d = slot->driver;

	d->outstanding--;
	if (status == 0 && rfd_msg_kind(reply) != RFD_MSG_REPLY)
		status = -EPROTO;
	rfd_msg_free(reply);
	if (status < 0) {
		if (!d->error)
			d->error = status;
		return;
	}
	if (d->measuring)
		samples_add(&d->samples, now_ns() - slot->sent_at);
	d->calls++;
	if (d->more && !d->error) {
		int r = driver_send(d, slot);

		if (r < 0)
			d->error = r;
	}
}

static int
driver_watch(struct driver *d, int epoll_fd, unsigned i, int op)
{
	struct epoll_event ev = {.data.u32 = i};

	ev.events = EPOLLIN | (rfd_client_events(d->clients[i]) & POLLOUT ? EPOLLOUT : 0);
	if (op == EPOLL_CTL_MOD && ev.events == d->watched[i])
		return 0;
	if (epoll_ctl(epoll_fd, op, rfd_client_fd(d->clients[i]), &ev) < 0)
		return -errno;
	d->watched[i] = ev.events;
	return 0;
}

static short
poll_events(uint32_t events)
{
	return (short)((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
	               (events & EPOLLHUP ? POLLHUP : 0) | (events & EPOLLERR ? POLLERR : 0));
}

static int
driver_loop(const struct bench_config *config, struct driver *d, int epoll_fd, uint64_t *elapsed)
{
	struct run_budget budget, warmup;
	uint64_t start = 0;

	run_budget_start(&warmup, config, 0.1);
	warmup.exact_calls = config->iterations > 0 ? WARMUP_CALLS : 0;
	d->more = true;
	while (!d->error) {
		struct epoll_event events[MAX_EVENTS];
		int n;

		if (!d->measuring && !run_budget_more(&warmup, d->calls)) {
			d->measuring = true;
			d->calls = 0;
			samples_reset(&d->samples);
			run_budget_start(&budget, config, 1.0);
			start = now_ns();
		}
		d->more = !d->measuring || run_budget_more(&budget, d->calls);
		if (!d->more && d->outstanding == 0)
			break;
		n = epoll_wait(epoll_fd, events, MAX_EVENTS, 10000);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !d->error; i++) {
			unsigned c = events[i].data.u32;
			int r = rfd_client_process(d->clients[c], poll_events(events[i].events));

			if (r < 0)
				return r;
			r = driver_watch(d, epoll_fd, c, EPOLL_CTL_MOD);
			if (r < 0)
				return r;
		}
	}
	*elapsed = now_ns() - start;
	return d->error;
}

static int
driver_run(const struct bench_config *config, struct driver *d, struct measure *out)
{
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	uint64_t elapsed = 0;
	int r = epoll_fd < 0 ? -errno : 0;

	for (unsigned i = 0; i < d->conns && r == 0; i++)
		r = driver_watch(d, epoll_fd, i, EPOLL_CTL_ADD);
	for (unsigned i = 0; i < d->conns * d->in_flight && r == 0; i++) {
		d->slots[i] = (struct slot){.driver = d, .client = i / d->in_flight};
		r = driver_send(d, &d->slots[i]);
	}
	for (unsigned i = 0; i < d->conns && r == 0; i++)
		r = driver_watch(d, epoll_fd, i, EPOLL_CTL_MOD);
	if (r == 0)
		r = driver_loop(config, d, epoll_fd, &elapsed);
	if (r == 0)
		measure_from(out, &d->samples, d->calls, elapsed);
	else
		measure_fail(out, r, "rocketfd pipelined");
	if (epoll_fd >= 0)
		close(epoll_fd);
	return r;
}

int
rfd_pipelined(const struct bench_config *config, unsigned conns, unsigned in_flight, size_t n_fds,
              struct measure *out)
{
	struct driver d = {.conns = conns, .in_flight = in_flight, .n_fds = n_fds};
	struct server server;
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_null(fds, n_fds);
	int r;

	assert(config);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	d.fds = fds;
	d.clients = calloc(conns, sizeof(*d.clients));
	d.watched = calloc(conns, sizeof(*d.watched));
	d.slots = calloc((size_t)conns * in_flight, sizeof(*d.slots));
	r = d.clients && d.watched && d.slots ? 0 : -ENOMEM;
	if (r == 0)
		r = samples_init(&d.samples, MAX_SAMPLES);
	if (r == 0)
		r = server_start(config, &server);
	else
		server.child.pid = -1;
	for (unsigned i = 0; r == 0 && i < conns; i++)
		r = client_connect(&server, NULL, NULL, &d.clients[i]);
	if (r == 0)
		r = driver_run(config, &d, out);
	else
		measure_fail(out, r, "rocketfd pipelined setup");
	for (unsigned i = 0; d.clients && i < conns; i++)
		rfd_client_free(d.clients[i]);
	if (server.child.pid > 0)
		server_stop(&server);
	samples_free(&d.samples);
	free(d.clients);
	free(d.watched);
	free(d.slots);
	close(null_fd);
	return r;
}

/* ---- Streams ---- */

struct stream_run {
	long items;
	long fds;
	int status;
	bool done;
};

static void
on_stream(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct stream_run *run = user;

	if (!msg) {
		run->status = status;
		run->done = true;
		return;
	}
	if (rfd_msg_kind(msg) == RFD_MSG_STREAM_ITEM) {
		run->items++;
		run->fds += (long)rfd_msg_fd_count(msg);
	} else if (rfd_msg_kind(msg) != RFD_MSG_REPLY) {
		run->status = -EPROTO;
		run->done = true;
	}
	rfd_msg_free(msg);
}

/* A stream of @count items with @n_fds FDs each, to its end; adds to *run. */
static int
stream_batch(struct rfd_client *client, uint32_t count, size_t n_fds, struct stream_run *run)
{
	struct stream_args args = {.count = count, .fds_per_item = (uint32_t)n_fds};
	long items = run->items;
	int r;

	run->done = false;
	run->status = 0;
	r = rfd_client_stream_async(client, STREAM_METHOD, &args, sizeof(args), NULL, 0,
	                            RFD_FDS_DUP, CALL_TIMEOUT_MS, stream_window(n_fds), on_stream,
	                            run, NULL);
	while (r == 0 && !run->done) {
		struct pollfd pfd = {.fd = rfd_client_fd(client),
		                     .events = rfd_client_events(client)};

		if (poll(&pfd, 1, CALL_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		r = rfd_client_process(client, pfd.revents);
	}
	if (r == 0)
		r = run->status;
	if (r == 0 && run->items - items != count)
		r = -EPROTO;
	return r;
}

int
rfd_stream_wire_size(const struct bench_config *config, size_t n_fds, size_t *item_bytes)
{
	struct server server;
	struct wire_trace trace = {0};
	struct rfd_client *client = NULL;
	struct stream_run run = {0};
	int r;

	assert(config);
	assert(item_bytes);

	r = server_start(config, &server);
	if (r < 0)
		return r;
	r = client_connect(&server, trace_sizes, &trace, &client);
	/* Items only: the first response comes before them, the COMPLETE after. */
	if (r == 0)
		r = stream_batch(client, 3, n_fds, &run);
	rfd_client_free(client);
	server_stop(&server);
	if (r == 0 && !trace.item)
		r = -EPROTO;
	*item_bytes = trace.item;
	return r;
}

int
rfd_stream(const struct bench_config *config, size_t n_fds, struct measure *out)
{
	long batch = n_fds > 16 ? 200 : 2000;
	struct server server;
	struct rfd_client *client = NULL;
	struct stream_run run = {0};
	struct run_budget budget;
	uint64_t start;
	int r;

	assert(config);
	assert(out);

	r = server_start(config, &server);
	if (r < 0) {
		measure_fail(out, r, "rocketfd setup");
		return r;
	}
	r = client_connect(&server, NULL, NULL, &client);
	if (r == 0)
		r = stream_batch(client, (uint32_t)batch, n_fds, &run);
	run.items = 0;
	run_budget_start(&budget, config, 1.0);
	start = now_ns();
	while (r == 0 && run_budget_more(&budget, run.items)) {
		long count = batch;

		if (budget.exact_calls > 0 && budget.exact_calls - run.items < count)
			count = budget.exact_calls - run.items;
		r = stream_batch(client, (uint32_t)count, n_fds, &run);
	}
	if (r == 0)
		measure_from(out, NULL, run.items, now_ns() - start);
	else
		measure_fail(out, r, "rocketfd stream");
	rfd_client_free(client);
	server_stop(&server);
	return r;
}

/* ---- Large payloads ---- */

static int
large_call(struct rfd_client *client, const uint8_t *payload, size_t size, enum payload_way way)
{
	struct rfd_msg *reply = NULL;
	uint64_t seen = 0;
	const uint8_t *data;
	size_t len;
	int r;

	if (way == PAYLOAD_MEMFD) {
		int fd = payload_memfd(payload, size);

		if (fd < 0)
			return fd;
		r = call_checked(client, "touch", NULL, 0, &fd, 1, RFD_FDS_TAKE, &reply);
	} else {
		r = call_checked(client, "touch", payload, size, NULL, 0, RFD_FDS_DUP, &reply);
	}
	if (r < 0)
		return r;
	data = rfd_msg_data(reply, &len);
	if (len == sizeof(seen))
		memcpy(&seen, data, sizeof(seen));
	rfd_msg_free(reply);
	return seen == size ? 0 : -EPROTO;
}

int
rfd_large(const struct bench_config *config, size_t size, enum payload_way way, struct measure *out)
{
	struct server server;
	struct rfd_client *client = NULL;
	struct run_budget budget;
	struct samples samples = {0};
	uint8_t *payload = malloc(size);
	uint64_t start;
	long calls = 0;
	int r = payload ? samples_init(&samples, 4096) : -ENOMEM;

	assert(config);
	assert(out);

	if (r == 0) {
		for (size_t i = 0; i < size; i++)
			payload[i] = (uint8_t)(i * 131 + 7);
		r = server_start(config, &server);
	}
	if (r == 0) {
		r = client_connect(&server, NULL, NULL, &client);
		for (int i = 0; r == 0 && i < large_warmup(config); i++)
			r = large_call(client, payload, size, way);
		run_budget_start(&budget, config, 1.0);
		budget.min_calls = config->quick ? 1 : 3;
		start = now_ns();
		while (r == 0 && run_budget_more(&budget, calls)) {
			uint64_t t0 = now_ns();

			r = large_call(client, payload, size, way);
			samples_add(&samples, now_ns() - t0);
			calls++;
		}
		if (r == 0)
			measure_from(out, &samples, calls, now_ns() - start);
		rfd_client_free(client);
		server_stop(&server);
	}
	if (r < 0)
		measure_fail(out, r, "rocketfd large payload");
	samples_free(&samples);
	free(payload);
	return r;
}

/* ---- Memory ---- */

static void
hold_done(void *user, int status, struct rfd_msg *reply)
{
	unsigned *done = user;

	(*done)++;
	rfd_msg_free(reply);
}

/* Open @n clients that each made one call. */
static int
open_idle_clients(const struct server *server, struct rfd_client **clients, unsigned n,
                  const int *fd)
{
	for (unsigned i = 0; i < n; i++) {
		int r = client_connect(server, NULL, NULL, &clients[i]);

		if (r == 0)
			r = call_checked(clients[i], CALL_METHOD, call_args, sizeof(call_args), fd,
			                 1, RFD_FDS_DUP, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
measure_idle(const struct server *server, struct rfd_client *control, unsigned n, const int *fd,
             struct memory_figures *out)
{
	struct rfd_client **clients = calloc(n, sizeof(*clients));
	struct server_stats before, after;
	long heap0, rss0;
	int r;

	if (!clients)
		return -ENOMEM;
	r = server_stats(control, &before);
	heap0 = heap_bytes();
	rss0 = rss_bytes();
	if (r == 0)
		r = open_idle_clients(server, clients, n, fd);
	if (r == 0) {
		out->client_heap_per_conn = (double)(heap_bytes() - heap0) / n;
		out->client_rss_per_conn = (double)(rss_bytes() - rss0) / n;
		r = server_stats(control, &after);
	}
	if (r == 0) {
		out->server_heap_per_conn = (double)(after.heap - before.heap) / n;
		out->server_rss_per_conn = (double)(after.rss - before.rss) / n;
		out->conns = n;
	}
	for (unsigned i = 0; i < n; i++)
		rfd_client_free(clients[i]);
	free(clients);
	return r;
}

static int
measure_held(struct rfd_client *client, unsigned n, const int *fd, struct memory_figures *out)
{
	struct server_stats before, after;
	unsigned done = 0;
	long heap0;
	int r = server_stats(client, &before);

	heap0 = heap_bytes();
	for (unsigned i = 0; r == 0 && i < n; i++)
		r = rfd_client_call_async(client, "hold", call_args, sizeof(call_args), fd, 1,
		                          RFD_FDS_DUP, CALL_TIMEOUT_MS, hold_done, &done, NULL);
	if (r == 0)
		out->client_heap_per_call = (double)(heap_bytes() - heap0) / n;
	/* Replies come in order: once "stats" answers, the server holds every call. */
	if (r == 0)
		r = server_stats(client, &after);
	if (r == 0 && after.held != (int64_t)n)
		r = -EPROTO;
	if (r == 0) {
		out->server_heap_per_call = (double)(after.heap - before.heap) / n;
		out->calls = n;
	}
	if (r == 0)
		r = call_checked(client, "release", NULL, 0, NULL, 0, RFD_FDS_DUP, NULL);
	return r == 0 && done != n ? -EPROTO : r;
}

int
rfd_memory(const struct bench_config *config, struct memory_figures *out)
{
	struct server server;
	struct rfd_client *control = NULL;
	int fd[1];
	int null_fd = open_null(fd, 1);
	unsigned held = config->held_calls;
	int r;

	assert(config);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	memset(out, 0, sizeof(*out));
	r = raise_fd_limit(2 * config->idle_conns + 256);
	if (r == 0)
		r = server_start(config, &server);
	if (r < 0) {
		close(null_fd);
		return r;
	}
	r = client_connect(&server, NULL, NULL, &control);
	if (r == 0)
		r = call_checked(control, CALL_METHOD, call_args, sizeof(call_args), fd, 1,
		                 RFD_FDS_DUP, NULL);
	if (r == 0)
		r = measure_idle(&server, control, config->idle_conns, fd, out);
	if (held > 250)
		held = 250; /* under the default max_in_flight of one connection */
	if (r == 0)
		r = measure_held(control, held, fd, out);
	rfd_client_free(control);
	server_stop(&server);
	close(null_fd);
	return r;
}

/* ---- Heap allocations per call ---- */

static int
pipelined_batch(struct rfd_client *client, const int *fds, size_t n_fds, long calls)
{
	unsigned done = 0;
	long sent = 0;
	int r = 0;

	/* 16 in flight, topped up as replies come. */
	while (r == 0 && (sent < calls || done < sent)) {
		while (r == 0 && sent < calls && sent - done < 16) {
			r = rfd_client_call_async(client, CALL_METHOD, call_args, sizeof(call_args),
			                          fds, n_fds, RFD_FDS_DUP, CALL_TIMEOUT_MS,
			                          hold_done, &done, NULL);
			sent++;
		}
		if (r == 0) {
			struct pollfd pfd = {.fd = rfd_client_fd(client),
			                     .events = rfd_client_events(client)};

			if (poll(&pfd, 1, CALL_TIMEOUT_MS) <= 0)
				return -ETIMEDOUT;
			r = rfd_client_process(client, pfd.revents);
		}
	}
	return r;
}

static int
call_batch(struct rfd_client *client, const int *fds, size_t n_fds, bool async, long calls)
{
	int r = 0;

	if (async)
		return pipelined_batch(client, fds, n_fds, calls);
	for (long i = 0; i < calls && r == 0; i++)
		r = call_checked(client, CALL_METHOD, call_args, sizeof(call_args), fds, n_fds,
		                 RFD_FDS_DUP, NULL);
	return r;
}

int
rfd_allocs(const struct bench_config *config, size_t n_fds, bool async, struct alloc_figures *out)
{
	long calls = config->quick ? 2000 : 20000;
	struct server_stats before, idle, after;
	struct server server;
	struct rfd_client *client = NULL;
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_null(fds, n_fds);
	long mine;
	int r;

	assert(config);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	if (alloc_count() < 0) {
		close(null_fd);
		return -ENOTSUP;
	}
	r = server_start(config, &server);
	if (r < 0) {
		close(null_fd);
		return r;
	}
	r = client_connect(&server, NULL, NULL, &client);
	if (r == 0)
		r = call_batch(client, fds, n_fds, async, 1000);
	/* Two "stats" calls in a row: what one costs the server, taken off the window below. */
	if (r == 0)
		r = server_stats(client, &before);
	if (r == 0)
		r = server_stats(client, &idle);
	mine = alloc_count();
	if (r == 0)
		r = call_batch(client, fds, n_fds, async, calls);
	mine = alloc_count() - mine;
	if (r == 0)
		r = server_stats(client, &after);
	if (r == 0) {
		int64_t stats_cost = idle.allocs - before.allocs;

		out->client_per_call = (double)mine / calls;
		out->server_per_call = (double)(after.allocs - idle.allocs - stats_cost) / calls;
		out->calls = calls;
	}
	rfd_client_free(client);
	server_stop(&server);
	close(null_fd);
	return r;
}
