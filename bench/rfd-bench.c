/* SPDX-License-Identifier: MIT */
/*
 * rfd-bench: rocketfd against the raw syscalls and against sd-bus, each
 * figure beside its baseline from the same run.  Targets are reported, never
 * asserted.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef RFD_BENCH_PLOT_SCRIPT
#define RFD_BENCH_PLOT_SCRIPT "plot.gp"
#endif

enum {
	N_FD_COUNTS = 4,
	N_IN_FLIGHT = 3,
	N_SIZES = 3,
	SEVERAL_CONNS = 4,
};

static const size_t fd_counts[N_FD_COUNTS] = {0, 1, 16, 253};

static int
fd_index(int n_fds)
{
	for (int i = 0; i < N_FD_COUNTS; i++)
		if ((int)fd_counts[i] == n_fds)
			return i;
	return -1;
}
static const unsigned in_flights[N_IN_FLIGHT] = {1, 16, 128};
static const size_t large_sizes[N_SIZES] = {64 << 10, 1 << 20, 64 << 20};
static const unsigned scale_conns[] = {1, 10, 100, 1000};

static const struct {
	const char *name;
	const char *what;
} sections[] = {
    {"raw", "raw sendmsg/recvmsg ping-pong, socketpair and socket path, 0 and 1 FDs"},
    {"roundtrip", "rocketfd blocking call with 0, 1, 16, 253 FDs against raw ping-pong"},
    {"pipelined", "rocketfd with 1, 16, 128 calls in flight on 1 and 4 connections, vs raw"},
    {"sdbus", "sd-bus peer-to-peer calls with one FD, blocking and async, vs rocketfd"},
    {"large", "64 KiB, 1 MiB, 64 MiB as a sealed memfd vs inline bytes (rocketfd, sd-bus)"},
    {"stream", "rocketfd stream items with 1, 16, 253 FDs each vs raw one-way sendmsg"},
    {"scaling", "one server, 1 to 1000 connections with a call in flight each, vs raw"},
    {"memory", "heap and RSS per idle connection and per call in flight"},
    {"allocs", "heap allocations per call in steady state (counted by an interposer)"},
};

/* ---- Points: one kind of measurement with its shape ---- */

struct shape {
	enum raw_transport transport;
	unsigned conns;
	unsigned in_flight;
	size_t n_fds;
	size_t size;
	enum payload_way way;
	struct wire_size wire;
};

static int
point_raw_pingpong(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return raw_pingpong(config, s->transport, s->n_fds, &s->wire, out);
}

static int
point_raw_pipelined(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return raw_pipelined(config, s->conns, s->in_flight, s->n_fds, &s->wire, out);
}

static int
point_rfd_roundtrip(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return rfd_roundtrip(config, s->n_fds, out);
}

static int
point_rfd_pipelined(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return rfd_pipelined(config, s->conns, s->in_flight, s->n_fds, out);
}

static int
point_rfd_large(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return rfd_large(config, s->size, s->way, out);
}

static int
point_raw_stream(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return raw_stream(config, s->n_fds, s->size, out);
}

static int
point_rfd_stream(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return rfd_stream(config, s->n_fds, out);
}

static int
point_sd_roundtrip(const struct bench_config *config, const void *params, struct measure *out)
{
	return sdbus_roundtrip(config, out);
}

static int
point_sd_pipelined(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return sdbus_pipelined(config, s->in_flight, out);
}

static int
point_sd_large(const struct bench_config *config, const void *params, struct measure *out)
{
	const struct shape *s = params;

	return sdbus_large(config, s->size, s->way, out);
}

/* The bytes rocketfd puts on the wire for a call with @n_fds FDs, traced once per FD count. */
static struct wire_size
wire_for(const struct bench_config *config, size_t n_fds)
{
	static struct wire_size known[MAX_FDS_PER_CALL + 1];
	struct wire_size *w = &known[n_fds];

	if (!w->request) {
		int r = rfd_wire_size(config, n_fds, w);

		if (r < 0) {
			fprintf(stderr, "rfd-bench: wire size with %zu FDs: %s\n", n_fds,
			        strerror(-r));
			*w = (struct wire_size){.request = 64, .reply = 24};
		}
	}
	return *w;
}

/* The bytes of a stream item with @n_fds FDs, traced once per FD count. */
static size_t
item_size_for(const struct bench_config *config, size_t n_fds)
{
	static size_t known[MAX_FDS_PER_CALL + 1];

	if (!known[n_fds]) {
		int r = rfd_stream_wire_size(config, n_fds, &known[n_fds]);

		if (r < 0) {
			fprintf(stderr, "rfd-bench: stream item size with %zu FDs: %s\n", n_fds,
			        strerror(-r));
			known[n_fds] = 32;
		}
	}
	return known[n_fds];
}

/* ---- Rows ---- */

static const char *
fds_text(size_t n)
{
	static char text[4][24];
	static int next;
	char *out = text[next++ % 4];

	snprintf(out, sizeof(text[0]), "%zu FD%s", n, n == 1 ? "" : "s");
	return out;
}

static const char *
series_name(const char *what, enum pin_mode mode)
{
	static char text[8][48];
	static int next;
	char *out = text[next++ % 8];

	snprintf(out, sizeof(text[0]), "%s, %s", what, pin_mode_name(mode));
	return out;
}

static struct row *
latency_row(const char *section, const char *label, enum pin_mode mode, const struct measure *m)
{
	struct row *row = report_row(section, label, pin_mode_name(mode));

	row->unit = "us";
	if (m->error) {
		row_fail(row, m);
		return row;
	}
	row->value = m->p50_us;
	row->p99 = m->p99_us;
	row->extra = m->calls_per_s;
	row->extra_unit = "calls/s";
	return row;
}

static struct row *
rate_row(const char *section, const char *label, enum pin_mode mode, const struct measure *m,
         double fds_per_call)
{
	struct row *row = report_row(section, label, pin_mode_name(mode));

	row->unit = "calls/s";
	if (m->error) {
		row_fail(row, m);
		return row;
	}
	row->value = m->calls_per_s;
	row->p99 = m->p99_us;
	if (fds_per_call > 0) {
		row->extra = m->calls_per_s * fds_per_call;
		row->extra_unit = "FDs/s";
	}
	return row;
}

static void
baseline(struct row *row, const char *label, const struct measure *m, bool rate)
{
	row_set_baseline(row, label, m->error ? NAN : rate ? m->calls_per_s : m->p50_us);
}

static double
p50_or_nan(const struct measure *m)
{
	return m->error ? NAN : m->p50_us;
}

static double
rate_or_nan(const struct measure *m)
{
	return m->error ? NAN : m->calls_per_s;
}

/* ---- Sections ---- */

static void
section_raw(const struct bench_config *config, enum pin_mode mode)
{
	static const char section[] = "raw ping-pong (the limit)";

	for (size_t n = 0; n <= 1; n++) {
		struct shape pair = {.transport = RAW_SOCKETPAIR, .n_fds = n};
		struct shape path = {.transport = RAW_PATH, .n_fds = n};
		struct point points[2] = {{.fn = point_raw_pingpong, .params = &pair},
		                          {.fn = point_raw_pingpong, .params = &path}};
		char label[LABEL_SIZE], base[LABEL_SIZE];
		struct row *row;

		pair.wire = path.wire = wire_for(config, n);
		measure_group(config, points, 2);
		snprintf(label, sizeof(label), "raw socketpair, %s, %zu+%zu B", fds_text(n),
		         pair.wire.request, pair.wire.reply);
		latency_row(section, label, mode, &points[0].result);
		snprintf(label, sizeof(label), "raw socket path, %s, %zu+%zu B", fds_text(n),
		         pair.wire.request, pair.wire.reply);
		snprintf(base, sizeof(base), "raw socketpair, %s", fds_text(n));
		row = latency_row(section, label, mode, &points[1].result);
		baseline(row, base, &points[0].result, false);
	}
}

static void
section_roundtrip(const struct bench_config *config, enum pin_mode mode)
{
	static const char section[] = "round trip (blocking call), p50";

	for (int i = 0; i < N_FD_COUNTS; i++) {
		size_t n = fd_counts[i];
		struct shape shape = {.transport = RAW_PATH, .n_fds = n};
		struct point points[2] = {{.fn = point_raw_pingpong, .params = &shape},
		                          {.fn = point_rfd_roundtrip, .params = &shape}};
		const struct measure *raw = &points[0].result, *rfd = &points[1].result;
		char label[LABEL_SIZE], base[LABEL_SIZE];
		struct row *row;

		if (config->only_fds >= 0 && (size_t)config->only_fds != n)
			continue;
		shape.wire = wire_for(config, n);
		measure_group(config, points, 2);
		snprintf(label, sizeof(label), "raw socket path, %s", fds_text(n));
		latency_row(section, label, mode, raw);
		snprintf(base, sizeof(base), "%s", label);
		snprintf(label, sizeof(label), "rocketfd call, %s", fds_text(n));
		row = latency_row(section, label, mode, rfd);
		baseline(row, base, raw, false);
		if (n == 1)
			row_set_target(row, TARGET_RATIO_AT_MOST, 1.2);
		plot_point(1, fds_text(n), series_name("raw", mode), p50_or_nan(raw));
		plot_point(1, fds_text(n), series_name("rocketfd", mode), p50_or_nan(rfd));
	}
}

static void
section_pipelined(const struct bench_config *config, enum pin_mode mode)
{
	static const char section[] = "pipelined throughput";

	for (int c = 0; c < 2; c++) {
		for (int k = 0; k < N_IN_FLIGHT; k++) {
			struct shape shape = {
			    .conns = c ? SEVERAL_CONNS : 1, .in_flight = in_flights[k], .n_fds = 1};
			struct point points[2] = {{.fn = point_raw_pipelined, .params = &shape},
			                          {.fn = point_rfd_pipelined, .params = &shape}};
			const struct measure *raw = &points[0].result, *rfd = &points[1].result;
			char label[LABEL_SIZE], group[32];
			struct row *row;

			shape.wire = wire_for(config, 1);
			measure_group(config, points, 2);
			snprintf(label, sizeof(label), "rocketfd, %u in flight x %u conn%s, 1 FD",
			         shape.in_flight, shape.conns, shape.conns == 1 ? "" : "s");
			row = rate_row(section, label, mode, rfd, 1);
			baseline(row, "raw pipelined, same shape", raw, true);
			row_set_target(row, TARGET_RATIO_AT_LEAST, 0.7);
			snprintf(group, sizeof(group), "%ux%u", shape.in_flight, shape.conns);
			plot_point(2, group, series_name("raw", mode), rate_or_nan(raw));
			plot_point(2, group, series_name("rocketfd", mode), rate_or_nan(rfd));
		}
	}
}

static void
section_sdbus(const struct bench_config *config, enum pin_mode mode)
{
	static const char section[] = "sd-bus peer to peer (socketpair), 1 FD";
	struct shape shape = {.transport = RAW_PATH, .n_fds = 1, .conns = 1};
	struct point points[3] = {{.fn = point_raw_pingpong, .params = &shape},
	                          {.fn = point_rfd_roundtrip, .params = &shape},
	                          {.fn = point_sd_roundtrip, .params = &shape}};
	const struct measure *raw = &points[0].result, *rfd = &points[1].result,
	                     *sd = &points[2].result;
	struct row *row;

	shape.wire = wire_for(config, 1);
	measure_group(config, points, 3);
	row = latency_row(section, "sd-bus blocking call, p50", mode, sd);
	baseline(row, "raw socket path, 1 FD", raw, false);
	row = latency_row(section, "rocketfd blocking call, p50", mode, rfd);
	baseline(row, "raw socket path, 1 FD", raw, false);
	row = latency_row(section, "rocketfd blocking call, p50", mode, rfd);
	baseline(row, "sd-bus blocking call", sd, false);
	row_set_target(row, TARGET_RATIO_AT_MOST, 1.0);
	plot_point(1, fds_text(1), series_name("sd-bus", mode), p50_or_nan(sd));

	for (int k = 0; k < N_IN_FLIGHT; k++) {
		struct point async[3] = {{.fn = point_raw_pipelined, .params = &shape},
		                         {.fn = point_rfd_pipelined, .params = &shape},
		                         {.fn = point_sd_pipelined, .params = &shape}};
		char label[LABEL_SIZE], base[LABEL_SIZE], group[32];

		shape.in_flight = in_flights[k];
		measure_group(config, async, 3);
		snprintf(label, sizeof(label), "sd-bus async, %u in flight", in_flights[k]);
		row = rate_row(section, label, mode, &async[2].result, 1);
		baseline(row, "raw pipelined, same shape", &async[0].result, true);
		snprintf(base, sizeof(base), "%s", label);
		snprintf(label, sizeof(label), "rocketfd async, %u in flight", in_flights[k]);
		row = rate_row(section, label, mode, &async[1].result, 1);
		baseline(row, base, &async[2].result, true);
		row_set_target(row, TARGET_RATIO_AT_LEAST, 1.0);
		snprintf(group, sizeof(group), "%ux1", in_flights[k]);
		plot_point(2, group, series_name("sd-bus", mode), rate_or_nan(&async[2].result));
	}
}

static const char *
size_text(size_t size)
{
	static char text[4][24];
	static int next;
	char *out = text[next++ % 4];

	if (size >= 1 << 20)
		snprintf(out, sizeof(text[0]), "%zu MiB", size >> 20);
	else
		snprintf(out, sizeof(text[0]), "%zu KiB", size >> 10);
	return out;
}

static struct row *
large_row(const char *label, enum pin_mode mode, const struct measure *m, size_t size)
{
	struct row *row =
	    report_row("large payload, time per call p50", label, pin_mode_name(mode));

	row->unit = "ms";
	if (m->error) {
		row_fail(row, m);
		return row;
	}
	row->value = m->p50_us / 1000;
	row->p99 = m->p99_us;
	row->extra = (double)size / (m->p50_us / 1e6) / (1 << 20);
	row->extra_unit = "MiB/s";
	return row;
}

static void
large_base(struct row *row, const char *label, const struct measure *m)
{
	row_set_baseline(row, label, m->error ? NAN : m->p50_us / 1000);
}

static void
section_large(const struct bench_config *config, enum pin_mode mode)
{
	for (int s = 0; s < N_SIZES; s++) {
		const char *size = size_text(large_sizes[s]);
		struct shape inl = {.size = large_sizes[s], .way = PAYLOAD_INLINE};
		struct shape memfd = {.size = large_sizes[s], .way = PAYLOAD_MEMFD};
		struct point points[4] = {{.fn = point_rfd_large, .params = &inl},
		                          {.fn = point_rfd_large, .params = &memfd},
		                          {.fn = point_sd_large, .params = &inl},
		                          {.fn = point_sd_large, .params = &memfd}};
		const struct measure *rfd_inline = &points[0].result,
		                     *rfd_memfd = &points[1].result, *sd_inline = &points[2].result,
		                     *sd_memfd = &points[3].result;
		char label[LABEL_SIZE], base[LABEL_SIZE];

		measure_group(config, points, 4);
		snprintf(label, sizeof(label), "rocketfd sealed memfd, %s", size);
		snprintf(base, sizeof(base), "rocketfd inline, %s", size);
		large_base(large_row(label, mode, rfd_memfd, inl.size), base, rfd_inline);
		snprintf(label, sizeof(label), "rocketfd inline, %s", size);
		snprintf(base, sizeof(base), "sd-bus inline, %s", size);
		large_base(large_row(label, mode, rfd_inline, inl.size), base, sd_inline);
		snprintf(label, sizeof(label), "rocketfd sealed memfd, %s", size);
		snprintf(base, sizeof(base), "sd-bus sealed memfd, %s", size);
		large_base(large_row(label, mode, rfd_memfd, inl.size), base, sd_memfd);
		snprintf(label, sizeof(label), "sd-bus sealed memfd, %s", size);
		snprintf(base, sizeof(base), "sd-bus inline, %s", size);
		large_base(large_row(label, mode, sd_memfd, inl.size), base, sd_inline);

		plot_point(3, size, series_name("rocketfd memfd", mode),
		           p50_or_nan(rfd_memfd) / 1000);
		plot_point(3, size, series_name("rocketfd inline", mode),
		           p50_or_nan(rfd_inline) / 1000);
		plot_point(3, size, series_name("sd-bus memfd", mode), p50_or_nan(sd_memfd) / 1000);
		plot_point(3, size, series_name("sd-bus inline", mode),
		           p50_or_nan(sd_inline) / 1000);
	}
}

static void
section_stream(const struct bench_config *config, enum pin_mode mode)
{
	static const char section[] = "stream throughput, server to client";

	for (int i = 0; i < N_FD_COUNTS; i++) {
		struct shape shape = {.n_fds = fd_counts[i]};
		struct point points[2] = {{.fn = point_raw_stream, .params = &shape},
		                          {.fn = point_rfd_stream, .params = &shape}};
		const struct measure *raw = &points[0].result, *rfd = &points[1].result;
		char label[LABEL_SIZE], base[LABEL_SIZE];
		struct row *row;

		if (shape.n_fds == 0)
			continue;
		shape.size = item_size_for(config, shape.n_fds);
		measure_group(config, points, 2);
		snprintf(label, sizeof(label), "raw one-way, %s per item, %zu B",
		         fds_text(shape.n_fds), shape.size);
		row = rate_row(section, label, mode, raw, (double)shape.n_fds);
		row->unit = "items/s";
		snprintf(base, sizeof(base), "raw one-way, %s per item", fds_text(shape.n_fds));
		snprintf(label, sizeof(label), "rocketfd stream, %s per item",
		         fds_text(shape.n_fds));
		row = rate_row(section, label, mode, rfd, (double)shape.n_fds);
		row->unit = "items/s";
		baseline(row, base, raw, true);
		plot_point(5, fds_text(shape.n_fds), series_name("raw", mode),
		           rate_or_nan(raw) * (double)shape.n_fds);
		plot_point(5, fds_text(shape.n_fds), series_name("rocketfd", mode),
		           rate_or_nan(rfd) * (double)shape.n_fds);
	}
}

static void
section_scaling(const struct bench_config *config, enum pin_mode mode)
{
	size_t n = sizeof(scale_conns) / sizeof(scale_conns[0]);
	int r = raise_fd_limit(2 * config->max_scale_conns + 256);

	if (r < 0)
		fprintf(stderr, "rfd-bench: cannot raise RLIMIT_NOFILE: %s\n", strerror(-r));
	for (size_t i = 0; i < n && scale_conns[i] <= config->max_scale_conns; i++) {
		struct shape shape = {.conns = scale_conns[i], .in_flight = 1, .n_fds = 1};
		struct point points[2] = {{.fn = point_raw_pipelined, .params = &shape},
		                          {.fn = point_rfd_pipelined, .params = &shape}};
		char label[LABEL_SIZE], group[32];
		struct row *row;

		shape.wire = wire_for(config, 1);
		measure_group(config, points, 2);
		snprintf(label, sizeof(label), "rocketfd, %u conn%s x 1 in flight", shape.conns,
		         shape.conns == 1 ? "" : "s");
		row = rate_row("server scaling, 1 FD per call", label, mode, &points[1].result, 1);
		baseline(row, "raw epoll echo, same connections", &points[0].result, true);
		snprintf(group, sizeof(group), "%u", shape.conns);
		plot_point(4, group, series_name("raw", mode), rate_or_nan(&points[0].result));
		plot_point(4, group, series_name("rocketfd", mode), rate_or_nan(&points[1].result));
	}
}

static struct row *
memory_row(const char *label, double bytes, double rss, const char *base, double base_bytes,
           bool target)
{
	struct row *row = report_row("memory (user space)", label, "");

	row->unit = "KiB";
	row->value = bytes / 1024;
	if (!isnan(rss)) {
		row->extra = rss / 1024;
		row->extra_unit = "KiB RSS";
	}
	if (base)
		row_set_baseline(row, base, base_bytes / 1024);
	if (target)
		row_set_target(row, TARGET_VALUE_AT_MOST, 16);
	return row;
}

static void
section_memory(const struct bench_config *config)
{
	struct memory_figures f;
	struct sdbus_memory sd = {0};
	char label[LABEL_SIZE];
	int r = rfd_memory(config, &f);
	int rs = sdbus_memory(config, &sd);

	if (r < 0 || rs < 0) {
		struct measure m;

		measure_fail(&m, r < 0 ? r : rs, r < 0 ? "rocketfd memory" : "sd-bus memory");
		row_fail(memory_row("memory", NAN, NAN, NULL, NAN, false), &m);
		return;
	}
	if (alloc_count() < 0) {
		/* A sanitizer's allocator hides the heap from mallinfo2(): RSS alone is real. */
		f.server_heap_per_conn = f.client_heap_per_conn = NAN;
		f.server_heap_per_call = f.client_heap_per_call = NAN;
		sd.server_heap_per_conn = sd.client_heap_per_conn = NAN;
	}
	snprintf(label, sizeof(label), "rocketfd server, per idle connection (%u)", f.conns);
	memory_row(label, f.server_heap_per_conn, f.server_rss_per_conn, "sd-bus server, same",
	           sd.server_heap_per_conn, true);
	snprintf(label, sizeof(label), "rocketfd client, per idle connection (%u)", f.conns);
	memory_row(label, f.client_heap_per_conn, f.client_rss_per_conn, "sd-bus client, same",
	           sd.client_heap_per_conn, true);
	snprintf(label, sizeof(label), "sd-bus server, per idle connection (%u)", sd.conns);
	memory_row(label, sd.server_heap_per_conn, sd.server_rss_per_conn, NULL, NAN, false);
	snprintf(label, sizeof(label), "sd-bus client, per idle connection (%u)", sd.conns);
	memory_row(label, sd.client_heap_per_conn, sd.client_rss_per_conn, NULL, NAN, false);
	snprintf(label, sizeof(label), "rocketfd server, per call in flight (%u)", f.calls);
	memory_row(label, f.server_heap_per_call, NAN, NULL, NAN, false);
	snprintf(label, sizeof(label), "rocketfd client, per call in flight (%u)", f.calls);
	memory_row(label, f.client_heap_per_call, NAN, NULL, NAN, false);
}

static void
alloc_rows(const char *what, const struct alloc_figures *f, int r, const struct alloc_figures *sd)
{
	char label[LABEL_SIZE];
	struct row *client, *server;

	snprintf(label, sizeof(label), "%s, client", what);
	client = report_row("heap allocations per call", label, "");
	snprintf(label, sizeof(label), "%s, server", what);
	server = report_row("heap allocations per call", label, "");
	client->unit = server->unit = "allocs";
	if (r < 0) {
		struct measure m;

		measure_fail(&m, r, "counting");
		row_fail(client, &m);
		row_fail(server, &m);
		return;
	}
	client->value = f->client_per_call;
	server->value = f->server_per_call;
	if (sd) {
		row_set_baseline(client, "sd-bus blocking, 1 FD, client", sd->client_per_call);
		row_set_baseline(server, "sd-bus blocking, 1 FD, server", sd->server_per_call);
		row_set_target(client, TARGET_VALUE_AT_MOST, 2);
		row_set_target(server, TARGET_VALUE_AT_MOST, 2);
	}
}

static void
section_allocs(const struct bench_config *config)
{
	struct alloc_figures sd = {0}, f = {0};
	int rs = sdbus_allocs(config, &sd), r;

	for (size_t n = 0; n <= 1; n++) {
		char what[LABEL_SIZE];

		r = rfd_allocs(config, n, false, &f);
		snprintf(what, sizeof(what), "rocketfd blocking, %s", fds_text(n));
		alloc_rows(what, &f, r, rs == 0 ? &sd : NULL);
		r = rfd_allocs(config, n, true, &f);
		snprintf(what, sizeof(what), "rocketfd async 16 in flight, %s", fds_text(n));
		alloc_rows(what, &f, r, rs == 0 ? &sd : NULL);
	}
	alloc_rows("sd-bus blocking, 1 FD", &sd, rs, NULL);
}

/* ---- Main ---- */

static bool
wanted(const struct bench_config *config, const char *section)
{
	return !config->only || strcmp(config->only, section) == 0;
}

static void
run_all(const struct bench_config *config)
{
	for (int mode = 0; mode < PIN_MODES; mode++) {
		int r;

		if (!config->modes[mode])
			continue;
		r = pin_apply(config, mode);
		if (r < 0) {
			fprintf(stderr, "rfd-bench: sched_setaffinity (%s): %s\n",
			        pin_mode_name(mode), strerror(-r));
			continue;
		}
		if (wanted(config, "raw"))
			section_raw(config, mode);
		if (wanted(config, "roundtrip"))
			section_roundtrip(config, mode);
		if (wanted(config, "pipelined"))
			section_pipelined(config, mode);
		if (wanted(config, "sdbus"))
			section_sdbus(config, mode);
		if (wanted(config, "large"))
			section_large(config, mode);
		if (wanted(config, "stream"))
			section_stream(config, mode);
		if (wanted(config, "scaling"))
			section_scaling(config, mode);
	}
	pin_apply(config, PIN_NONE);
	if (wanted(config, "memory"))
		section_memory(config);
	if (wanted(config, "allocs"))
		section_allocs(config);
}

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rfd-bench [options]\n"
	    "Measures rocketfd against raw sendmsg/recvmsg and against sd-bus, each figure\n"
	    "beside its baseline from the same run; targets are reported, not asserted.\n\n"
	    "  --help             this text\n"
	    "  --quick            a smoke run of a few seconds (short points, fewer connections)\n"
	    "  --duration SEC     time per measured point (default 1.0; --quick: 0.03)\n"
	    "  --iterations N     exactly N calls per point instead of a duration (one round)\n"
	    "  --rounds N         alternating rounds per point, medians reported (default 5)\n"
	    "  --only SECTION     run one section (baselines it needs are measured too)\n"
	    "  --fds N            the round trip with N FDs only (0, 1, 16 or 253)\n"
	    "  --pin MODE         both (default), one (pinned to one core) or none (unpinned)\n"
	    "  --core N           the core for the pinned runs (default: the first allowed)\n"
	    "  --json FILE        write every figure as JSON\n"
	    "  --plot FILE        draw a PNG with gnuplot\n"
	    "  --plot-script FILE the gnuplot script (default %s)\n"
	    "  --socket-dir DIR   where the listening sockets go (default /tmp)\n\n"
	    "sections:\n",
	    RFD_BENCH_PLOT_SCRIPT);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		fprintf(out, "  %-10s %s\n", sections[i].name, sections[i].what);
}

static bool
known_section(const char *name)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i].name, name) == 0)
			return true;
	return false;
}

static int
first_allowed_core(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			return i;
	return 0;
}

static int
parse_args(int argc, char **argv, struct bench_config *config)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"quick", no_argument, NULL, 'q'},
	    {"duration", required_argument, NULL, 'd'},
	    {"iterations", required_argument, NULL, 'n'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"fds", required_argument, NULL, 'f'},
	    {"only", required_argument, NULL, 'o'},
	    {"pin", required_argument, NULL, 'p'},
	    {"core", required_argument, NULL, 'c'},
	    {"json", required_argument, NULL, 'j'},
	    {"plot", required_argument, NULL, 'P'},
	    {"plot-script", required_argument, NULL, 'S'},
	    {"socket-dir", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	bool duration_set = false;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'q':
			config->quick = true;
			break;
		case 'd':
			config->duration_s = strtod(optarg, NULL);
			duration_set = true;
			if (!(config->duration_s > 0 && config->duration_s <= 60))
				return -EINVAL;
			break;
		case 'n':
			config->iterations = strtol(optarg, NULL, 10);
			if (config->iterations <= 0)
				return -EINVAL;
			break;
		case 'r':
			config->rounds = (unsigned)strtoul(optarg, NULL, 10);
			if (config->rounds < 1 || config->rounds > MAX_ROUNDS)
				return -EINVAL;
			break;
		case 'f':
			config->only_fds = atoi(optarg);
			if (fd_index(config->only_fds) < 0)
				return -EINVAL;
			break;
		case 'o':
			if (!known_section(optarg))
				return -EINVAL;
			config->only = optarg;
			break;
		case 'p':
			config->modes[PIN_ONE_CORE] = strcmp(optarg, "none") != 0;
			config->modes[PIN_NONE] = strcmp(optarg, "one") != 0;
			if (strcmp(optarg, "both") && strcmp(optarg, "one") &&
			    strcmp(optarg, "none"))
				return -EINVAL;
			break;
		case 'c':
			config->core = atoi(optarg);
			break;
		case 'j':
			config->json_path = optarg;
			break;
		case 'P':
			config->plot_path = optarg;
			break;
		case 'S':
			config->plot_script = optarg;
			break;
		case 's':
			config->socket_dir = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind != argc)
		return -EINVAL;
	if (config->iterations > 0)
		config->rounds = 1;
	if (config->quick) {
		if (!duration_set)
			config->duration_s = 0.03;
		config->idle_conns = 100;
		config->held_calls = 100;
		config->max_scale_conns = 100;
		config->rounds = 1;
	}
	return 0;
}

static void
describe_machine(const struct bench_config *config)
{
	struct utsname un;
	double load[3] = {0};
	time_t now = time(NULL);
	char when[64];

	uname(&un);
	getloadavg(load, 3);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	report_meta("date", "%s", when);
	report_meta("kernel", "%s %s", un.sysname, un.release);
	report_meta("cpus online", "%ld", sysconf(_SC_NPROCESSORS_ONLN));
	report_meta("load average at start", "%.2f %.2f %.2f", load[0], load[1], load[2]);
	report_meta("duration per point", "%.3f s in %u alternating rounds, medians%s",
	            config->duration_s, config->rounds, config->quick ? " (quick)" : "");
	report_meta("call shape", "%d B args, %d B result, FDs to the server only, RFD_FDS_DUP",
	            CALL_ARGS, CALL_RESULT);
	report_meta("heap allocation counting", "%s",
	            alloc_count() >= 0 ? "on (interposer)" : "off (sanitizer build)");
}

int
main(int argc, char **argv)
{
	struct bench_config config = {
	    .duration_s = 1.0,
	    .rounds = 5,
	    .only_fds = -1,
	    .modes = {true, true},
	    .idle_conns = 1000,
	    .held_calls = 250,
	    .max_scale_conns = 1000,
	    .plot_script = RFD_BENCH_PLOT_SCRIPT,
	    .socket_dir = "/tmp",
	};
	double load[3] = {0};
	int r;

	config.core = first_allowed_core();
	if (parse_args(argc, argv, &config) < 0) {
		usage(stderr);
		return 2;
	}
	/* A watchdog: the run ends by itself whatever happens to a peer. */
	alarm((unsigned)(300 + 200 * config.duration_s));
	describe_machine(&config);
	run_all(&config);
	getloadavg(load, 3);
	report_meta("load average at end", "%.2f %.2f %.2f", load[0], load[1], load[2]);

	report_print(&config, stdout);
	if (config.json_path) {
		r = report_write_json(&config, config.json_path);
		if (r < 0) {
			fprintf(stderr, "rfd-bench: writing %s: %s\n", config.json_path,
			        strerror(-r));
			return 1;
		}
	}
	if (config.plot_path) {
		r = plot_render(&config, config.plot_path);
		if (r < 0) {
			fprintf(stderr, "rfd-bench: plotting to %s: %s\n", config.plot_path,
			        strerror(-r));
			return 1;
		}
	}
	if (report_failures() > 0) {
		fprintf(stderr, "rfd-bench: %zu measurements failed (see the notes in the table)\n",
		        report_failures());
		report_free();
		return 1;
	}
	report_free();
	return 0;
}
