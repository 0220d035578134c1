/* SPDX-License-Identifier: MIT */
/*
 * The peer anchor: sd-bus method calls peer to peer over a socketpair (no
 * bus daemon), the server in a child process.  A call carries the same
 * CALL_ARGS bytes (as "ay") and one FD ("h"), and is answered with a
 * uint64, like rocketfd's CALL_RESULT.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bench.h"

#define OBJECT_PATH "/org/rocketfd/Bench"
#define INTERFACE   "org.rocketfd.Bench"

enum {
	WARMUP_CALLS = 200,
	CALL_TIMEOUT_US = (uint64_t)CALL_TIMEOUT_MS * 1000,
};

static const uint8_t call_args[CALL_ARGS];

/* ---- The server process ---- */

static int
method_call(sd_bus_message *m, void *user, sd_bus_error *error)
{
	const void *data;
	size_t size;
	int fd, r;

	r = sd_bus_message_read_array(m, 'y', &data, &size);
	if (r >= 0)
		r = sd_bus_message_read(m, "h", &fd);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "t", (uint64_t)0);
}

static int
method_touch_inline(sd_bus_message *m, void *user, sd_bus_error *error)
{
	const void *data;
	size_t size;
	volatile uint8_t sink;
	int r = sd_bus_message_read_array(m, 'y', &data, &size);

	if (r < 0)
		return r;
	sink = payload_touch(data, size);
	(void)sink;
	return sd_bus_reply_method_return(m, "t", (uint64_t)size);
}

static int
method_touch_memfd(sd_bus_message *m, void *user, sd_bus_error *error)
{
	size_t size = 0;
	int fd, r;

	r = sd_bus_message_read(m, "h", &fd);
	if (r >= 0)
		r = payload_touch_memfd(fd, &size);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, "t", (uint64_t)size);
}

/* The server's heap and RSS before it opened its buses (the many-connection server sets them). */
static int64_t heap_at_start, rss_at_start;

static int
method_stats(sd_bus_message *m, void *user, sd_bus_error *error)
{
	return sd_bus_reply_method_return(m, "xxxxx", (int64_t)alloc_count(), (int64_t)heap_bytes(),
	                                  (int64_t)rss_bytes(), heap_at_start, rss_at_start);
}

static const sd_bus_vtable bench_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Call", "ayh", "t", method_call, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("TouchInline", "ay", "t", method_touch_inline, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("TouchMemfd", "h", "t", method_touch_memfd, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Stats", "", "xxxxx", method_stats, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* A bus on @fd (owned by the bus from here on), as the server or the client of the pair. */
static int
bus_open(int fd, bool server, sd_bus **out)
{
	sd_bus *bus = NULL;
	sd_id128_t id;
	int r = sd_bus_new(&bus);

	if (r < 0) {
		close(fd);
		return r;
	}
	r = sd_bus_set_fd(bus, fd, fd);
	if (r < 0) {
		close(fd);
		sd_bus_unref(bus);
		return r;
	}
	if (server) {
		r = sd_id128_randomize(&id);
		if (r >= 0)
			r = sd_bus_set_server(bus, 1, id);
	}
	if (r >= 0)
		r = sd_bus_negotiate_fds(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

static void
server_main(void *arg, int ready_fd)
{
	int fd = *(int *)arg;
	sd_bus *bus = NULL;
	int r;

	signal(SIGTERM, SIG_DFL);
	r = bus_open(fd, true, &bus);
	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, OBJECT_PATH, INTERFACE, bench_vtable, NULL);
	if (r < 0) {
		fprintf(stderr, "rfd-bench: sd-bus server: %s\n", strerror(-r));
		_exit(2);
	}
	child_ready(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			break;
	}
	sd_bus_unref(bus);
	_exit(0);
}

struct peer {
	struct child child;
	sd_bus *bus;
};

static int
peer_start(struct peer *peer)
{
	int pair[2], r;

	peer->bus = NULL;
	peer->child.pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return -errno;
	r = child_start(&peer->child, server_main, &pair[1]);
	close(pair[1]);
	if (r < 0) {
		close(pair[0]);
		return r;
	}
	r = bus_open(pair[0], false, &peer->bus);
	if (r < 0)
		child_stop(&peer->child);
	return r;
}

static void
peer_stop(struct peer *peer)
{
	if (peer->bus)
		sd_bus_flush_close_unref(peer->bus);
	peer->bus = NULL;
	child_stop(&peer->child);
}

/* ---- Calls ---- */

static int
new_call(sd_bus *bus, int fd, sd_bus_message **out)
{
	sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(bus, &m, NULL, OBJECT_PATH, INTERFACE, "Call");

	if (r >= 0)
		r = sd_bus_message_append_array(m, 'y', call_args, sizeof(call_args));
	if (r >= 0)
		r = sd_bus_message_append(m, "h", fd);
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	*out = m;
	return 0;
}

/* A blocking call; returns the reply's uint64 in @value. */
static int
call_message(sd_bus *bus, sd_bus_message *m, uint64_t *value)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r = sd_bus_call(bus, m, CALL_TIMEOUT_US, &error, &reply);

	sd_bus_message_unref(m);
	if (r >= 0)
		r = sd_bus_message_read(reply, "t", value);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int
call_once(sd_bus *bus, int fd)
{
	sd_bus_message *m;
	uint64_t value;
	int r = new_call(bus, fd, &m);

	return r < 0 ? r : call_message(bus, m, &value);
}

int
sdbus_roundtrip(const struct bench_config *config, struct measure *out)
{
	struct peer peer = {.child.pid = -1};
	struct run_budget budget;
	struct samples samples;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint64_t start;
	long calls = 0;
	int r;

	assert(config);
	assert(out);

	if (fd < 0)
		return -errno;
	r = samples_init(&samples, MAX_SAMPLES);
	if (r == 0)
		r = peer_start(&peer);
	for (int i = 0; r == 0 && i < WARMUP_CALLS; i++)
		r = call_once(peer.bus, fd);
	run_budget_start(&budget, config, 1.0);
	start = now_ns();
	while (r == 0 && run_budget_more(&budget, calls)) {
		uint64_t t0 = now_ns();

		r = call_once(peer.bus, fd);
		samples_add(&samples, now_ns() - t0);
		calls++;
	}
	if (r == 0)
		measure_from(out, &samples, calls, now_ns() - start);
	else
		measure_fail(out, r, "sd-bus call");
	peer_stop(&peer);
	samples_free(&samples);
	close(fd);
	return r;
}

/* ---- Asynchronous calls, as many in flight ---- */

struct async_slot {
	struct async_run *run;
	uint64_t sent_at;
};

struct async_run {
	sd_bus *bus;
	int fd;
	long outstanding;
	long calls;
	bool measuring;
	bool more;
	int error;
	struct samples samples;
};

static int on_async_reply(sd_bus_message *m, void *user, sd_bus_error *error);

static int
async_send(struct async_run *run, struct async_slot *slot)
{
	sd_bus_message *m;
	int r = new_call(run->bus, run->fd, &m);

	if (r < 0)
		return r;
	slot->sent_at = now_ns();
	r = sd_bus_call_async(run->bus, NULL, m, on_async_reply, slot, CALL_TIMEOUT_US);
	sd_bus_message_unref(m);
	if (r < 0)
		return r;
	run->outstanding++;
	return 0;
}

static int
on_async_reply(sd_bus_message *m, void *user, sd_bus_error *error)
{
	struct async_slot *slot = user;
	struct async_run *run = slot->run;

	run->outstanding--;
	if (sd_bus_message_is_method_error(m, NULL)) {
		run->error = -EPROTO;
		return 0;
	}
	if (run->measuring)
		samples_add(&run->samples, now_ns() - slot->sent_at);
	run->calls++;
	if (run->more && !run->error) {
		int r = async_send(run, slot);

		if (r < 0)
			run->error = r;
	}
	return 0;
}

static int
async_loop(const struct bench_config *config, struct async_run *run, uint64_t *elapsed)
{
	struct run_budget budget, warmup;
	uint64_t start = 0;

	run_budget_start(&warmup, config, 0.1);
	warmup.exact_calls = config->iterations > 0 ? WARMUP_CALLS : 0;
	run->more = true;
	while (!run->error) {
		int r;

		if (!run->measuring && !run_budget_more(&warmup, run->calls)) {
			run->measuring = true;
			run->calls = 0;
			samples_reset(&run->samples);
			run_budget_start(&budget, config, 1.0);
			start = now_ns();
		}
		run->more = !run->measuring || run_budget_more(&budget, run->calls);
		if (!run->more && run->outstanding == 0)
			break;
		r = sd_bus_process(run->bus, NULL);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = sd_bus_wait(run->bus, CALL_TIMEOUT_US);
		if (r < 0 && r != -EINTR)
			return r;
	}
	*elapsed = now_ns() - start;
	return run->error;
}

int
sdbus_pipelined(const struct bench_config *config, unsigned in_flight, struct measure *out)
{
	struct async_run run = {.fd = open("/dev/null", O_RDONLY | O_CLOEXEC)};
	struct async_slot *slots = calloc(in_flight, sizeof(*slots));
	struct peer peer = {.child.pid = -1};
	uint64_t elapsed = 0;
	int r = slots && run.fd >= 0 ? 0 : -ENOMEM;

	assert(config);
	assert(out);

	if (r == 0)
		r = samples_init(&run.samples, MAX_SAMPLES);
	if (r == 0)
		r = peer_start(&peer);
	run.bus = peer.bus;
	for (unsigned i = 0; r == 0 && i < in_flight; i++) {
		slots[i].run = &run;
		r = async_send(&run, &slots[i]);
	}
	if (r == 0)
		r = async_loop(config, &run, &elapsed);
	if (r == 0)
		measure_from(out, &run.samples, run.calls, elapsed);
	else
		measure_fail(out, r, "sd-bus async calls");
	peer_stop(&peer);
	samples_free(&run.samples);
	free(slots);
	if (run.fd >= 0)
		close(run.fd);
	return r;
}

/* ---- Large payloads ---- */

static int
large_call(sd_bus *bus, const uint8_t *payload, size_t size, enum payload_way way)
{
	sd_bus_message *m = NULL;
	uint64_t seen = 0;
	int fd = -1, r;

	r = sd_bus_message_new_method_call(bus, &m, NULL, OBJECT_PATH, INTERFACE,
	                                   way == PAYLOAD_MEMFD ? "TouchMemfd" : "TouchInline");
	if (r >= 0 && way == PAYLOAD_MEMFD) {
		fd = payload_memfd(payload, size);
		r = fd < 0 ? fd : sd_bus_message_append(m, "h", fd);
	} else if (r >= 0) {
		r = sd_bus_message_append_array(m, 'y', payload, size);
	}
	/* The message holds its own copy of the FD. */
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	r = call_message(bus, m, &seen);
	return r < 0 ? r : (seen == size ? 0 : -EPROTO);
}

int
sdbus_large(const struct bench_config *config, size_t size, enum payload_way way,
            struct measure *out)
{
	struct peer peer = {.child.pid = -1};
	struct run_budget budget;
	struct samples samples = {0};
	uint8_t *payload = malloc(size);
	uint64_t start = 0;
	long calls = 0;
	int r = payload ? samples_init(&samples, 4096) : -ENOMEM;

	assert(config);
	assert(out);

	for (size_t i = 0; r == 0 && i < size; i++)
		payload[i] = (uint8_t)(i * 131 + 7);
	if (r == 0)
		r = peer_start(&peer);
	for (int i = 0; r == 0 && i < large_warmup(config); i++)
		r = large_call(peer.bus, payload, size, way);
	if (r == 0) {
		run_budget_start(&budget, config, 1.0);
		budget.min_calls = config->quick ? 1 : 3;
		start = now_ns();
	}
	while (r == 0 && run_budget_more(&budget, calls)) {
		uint64_t t0 = now_ns();

		r = large_call(peer.bus, payload, size, way);
		samples_add(&samples, now_ns() - t0);
		calls++;
	}
	if (r == 0)
		measure_from(out, &samples, calls, now_ns() - start);
	else
		measure_fail(out, r, "sd-bus large payload");
	peer_stop(&peer);
	samples_free(&samples);
	free(payload);
	return r;
}

/* ---- Heap allocations per call ---- */

struct server_stats {
	int64_t allocs;
	int64_t heap;
	int64_t rss;
	int64_t heap_at_start;
	int64_t rss_at_start;
};

static int
server_stats(sd_bus *bus, struct server_stats *stats)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r = sd_bus_call_method(bus, NULL, OBJECT_PATH, INTERFACE, "Stats", &error, &reply, "");

	if (r >= 0)
		r = sd_bus_message_read(reply, "xxxxx", &stats->allocs, &stats->heap, &stats->rss,
		                        &stats->heap_at_start, &stats->rss_at_start);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int
server_allocs(sd_bus *bus, int64_t *count)
{
	struct server_stats stats;
	int r = server_stats(bus, &stats);

	*count = stats.allocs;
	return r;
}

int
sdbus_allocs(const struct bench_config *config, struct alloc_figures *out)
{
	long calls = config->quick ? 2000 : 20000;
	struct peer peer = {.child.pid = -1};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int64_t before = 0, idle = 0, after = 0;
	long mine = 0;
	int r = fd < 0 ? -errno : 0;

	assert(config);
	assert(out);

	if (r == 0 && alloc_count() < 0)
		r = -ENOTSUP;
	if (r == 0)
		r = peer_start(&peer);
	for (int i = 0; r == 0 && i < 1000; i++)
		r = call_once(peer.bus, fd);
	/* Two "Stats" calls in a row: what one costs the server, taken off the window below. */
	if (r == 0)
		r = server_allocs(peer.bus, &before);
	if (r == 0)
		r = server_allocs(peer.bus, &idle);
	mine = alloc_count();
	for (long i = 0; r == 0 && i < calls; i++)
		r = call_once(peer.bus, fd);
	mine = alloc_count() - mine;
	if (r == 0)
		r = server_allocs(peer.bus, &after);
	if (r == 0) {
		out->client_per_call = (double)mine / calls;
		out->server_per_call = (double)(after - idle - (idle - before)) / calls;
		out->calls = calls;
	}
	peer_stop(&peer);
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- Memory per idle connection ---- */

struct many {
	int *fds; /* the server's ends */
	unsigned n;
};

/* Serve @n buses on one poll loop: enough for a few calls on each. */
static void
many_server_main(void *arg, int ready_fd)
{
	const struct many *many = arg;
	struct pollfd *pfds = calloc(many->n, sizeof(*pfds));
	sd_bus **buses = calloc(many->n, sizeof(*buses));

	signal(SIGTERM, SIG_DFL);
	if (!pfds || !buses)
		_exit(2);
	heap_at_start = heap_bytes();
	rss_at_start = rss_bytes();
	for (unsigned i = 0; i < many->n; i++) {
		int r = bus_open(many->fds[i], true, &buses[i]);

		if (r >= 0)
			r = sd_bus_add_object_vtable(buses[i], NULL, OBJECT_PATH, INTERFACE,
			                             bench_vtable, NULL);
		if (r < 0)
			_exit(2);
	}
	child_ready(ready_fd);
	for (;;) {
		for (unsigned i = 0; i < many->n; i++) {
			while (sd_bus_process(buses[i], NULL) > 0)
				;
			pfds[i].fd = sd_bus_get_fd(buses[i]);
			pfds[i].events = (short)sd_bus_get_events(buses[i]);
		}
		if (poll(pfds, many->n, -1) < 0 && errno != EINTR)
			_exit(3);
	}
}

static void
close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int
open_pairs(int *client_fds, int *server_fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int pair[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
			return -errno;
		client_fds[i] = pair[0];
		server_fds[i] = pair[1];
	}
	return 0;
}

/* Every client bus makes one call, so that each connection has been used. */
static int
open_client_buses(int *client_fds, sd_bus **buses, unsigned n, int fd)
{
	for (unsigned i = 0; i < n; i++) {
		int r = bus_open(client_fds[i], false, &buses[i]);

		client_fds[i] = -1;
		if (r >= 0)
			r = call_once(buses[i], fd);
		if (r < 0)
			return r;
	}
	return 0;
}

int
sdbus_memory(const struct bench_config *config, struct sdbus_memory *out)
{
	unsigned n = config->idle_conns;
	int *client_fds = malloc(n * sizeof(int)), *server_fds = malloc(n * sizeof(int));
	sd_bus **buses = calloc(n, sizeof(*buses));
	struct many many = {.fds = server_fds, .n = n};
	struct child child = {.pid = -1};
	struct server_stats stats;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	long heap0 = heap_bytes(), rss0 = rss_bytes();
	int r = client_fds && server_fds && buses && fd >= 0 ? 0 : -ENOMEM;

	assert(config);
	assert(out);

	for (unsigned i = 0; r == 0 && i < n; i++)
		client_fds[i] = server_fds[i] = -1;
	if (r == 0)
		r = raise_fd_limit(2 * (size_t)n + 256);
	if (r == 0)
		r = open_pairs(client_fds, server_fds, n);
	if (r == 0)
		r = child_start(&child, many_server_main, &many);
	if (server_fds)
		close_all(server_fds, n);
	if (r == 0)
		r = open_client_buses(client_fds, buses, n, fd);
	if (r == 0) {
		out->client_heap_per_conn = (double)(heap_bytes() - heap0) / n;
		out->client_rss_per_conn = (double)(rss_bytes() - rss0) / n;
		r = server_stats(buses[0], &stats);
	}
	if (r == 0) {
		out->server_heap_per_conn = (double)(stats.heap - stats.heap_at_start) / n;
		out->server_rss_per_conn = (double)(stats.rss - stats.rss_at_start) / n;
		out->conns = n;
	}
	for (unsigned i = 0; buses && i < n; i++)
		if (buses[i])
			sd_bus_flush_close_unref(buses[i]);
	child_stop(&child);
	if (client_fds)
		close_all(client_fds, n);
	free(client_fds);
	free(server_fds);
	free(buses);
	if (fd >= 0)
		close(fd);
	return r;
}
