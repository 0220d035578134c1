/* SPDX-License-Identifier: MIT */
/*
 * rfd-bench: what rocketfd costs over the raw syscalls and against sd-bus,
 * every figure measured beside its baseline in the same run.
 *
 * Shapes shared by every module.  A call carries CALL_ARGS bytes of
 * arguments and n FDs to the server, which closes the FDs and answers with
 * CALL_RESULT bytes and no FD: the hand-over pattern of FD passing.  The raw
 * baselines move the same byte counts (what rocketfd puts on the wire, read
 * from its frame trace) with the same FDs.
 */
#ifndef RFD_BENCH_H
#define RFD_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum {
	CALL_ARGS = 32,
	CALL_RESULT = 8,
	CALL_TIMEOUT_MS = 10000,
	MAX_FDS_PER_CALL = 253,
	MAX_SAMPLES = 1 << 20,
	LABEL_SIZE = 64,
	MAX_ROUNDS = 32,
};

#define CALL_METHOD   "call"
#define STREAM_METHOD "stream"

/*
 * A stream item carries this struct, {0: binary of 8 bytes} in Compact, and
 * n FDs, from the server to the client, which closes them.
 */
extern const uint8_t stream_item[12];

/* What a stream request asks for (its args, raw bytes). */
struct stream_args {
	uint32_t count;
	uint32_t fds_per_item;
};

/*
 * Items the sender may have sent ahead of their consumption: the stream's
 * credit window, and the raw sender's.  Fewer with many FDs per item: the
 * kernel refuses to hold more FDs in flight than RLIMIT_NOFILE.
 */
unsigned stream_window(size_t n_fds);

/* ---- Configuration ---- */

enum pin_mode {
	PIN_ONE_CORE, /* client and server on the same core */
	PIN_NONE,     /* wherever the scheduler puts them */
	PIN_MODES,
};

struct bench_config {
	double duration_s; /* per measured point */
	long iterations;   /* > 0: exactly this many calls per point instead of a duration */
	unsigned rounds;   /* 1..MAX_ROUNDS alternating rounds per point (see measure_group()) */
	bool quick;
	const char *only; /* one section, or NULL for all */
	int only_fds;     /* the round trip with this many FDs only; -1: all */
	const char *json_path;
	const char *plot_path;
	const char *plot_script;
	bool modes[PIN_MODES];
	int core;                 /* the core of PIN_ONE_CORE */
	unsigned idle_conns;      /* connections for the idle-memory figure */
	unsigned held_calls;      /* calls in flight for the per-call memory figure */
	unsigned max_scale_conns; /* the largest server-scaling point */
	const char *socket_dir;
};

const char *pin_mode_name(enum pin_mode mode);
int pin_apply(const struct bench_config *config, enum pin_mode mode);

/* ---- Timing and samples ---- */

uint64_t now_ns(void);

/* How long to run a point: until @deadline_ns and at least @min_calls, or exactly
 * config->iterations. */
struct run_budget {
	uint64_t deadline_ns;
	long min_calls;
	long exact_calls; /* > 0: stop after exactly this many */
};

void run_budget_start(struct run_budget *budget, const struct bench_config *config, double scale);
bool run_budget_more(const struct run_budget *budget, long done);

struct samples {
	uint64_t *ns;
	size_t n;
	size_t cap;
};

int samples_init(struct samples *s, size_t cap);
void samples_free(struct samples *s);
void samples_reset(struct samples *s);
void samples_add(struct samples *s, uint64_t ns);
/* The @q quantile (0..1) in microseconds; NAN without samples.  Sorts the samples. */
double samples_quantile_us(struct samples *s, double q);

/* What one measured point produced. */
struct measure {
	double p50_us;
	double p99_us;
	double calls_per_s;
	long calls;
	double seconds;
	int error; /* negative errno when the point could not be measured */
	char why[128];
};

void measure_from(struct measure *m, struct samples *s, long calls, uint64_t elapsed_ns);
void measure_fail(struct measure *m, int err, const char *what);

/*
 * A point measured in rounds: the points of a group run in turn, the order
 * reversed every round, each for its share of the duration, so that a
 * figure and its baseline see the same machine.  The result holds the
 * median of the rounds' p50, p99 and calls/s.
 */
typedef int point_fn(const struct bench_config *config, const void *params, struct measure *out);

struct point {
	point_fn *fn;
	const void *params;
	struct measure result;
};

void measure_group(const struct bench_config *config, struct point *points, size_t n);

/* ---- Processes ---- */

struct child {
	pid_t pid;
};

typedef void child_main_fn(void *arg, int ready_fd);

/*
 * Fork a child that runs @fn (which must not return) and wait for it to
 * write one byte to @ready_fd.  The child dies with the parent.
 */
int child_start(struct child *child, child_main_fn *fn, void *arg);
/* Ask the child to stop (SIGTERM) and reap it; its exit status, or a negative errno. */
int child_stop(struct child *child);
/* Tell the parent the child is ready, and close @ready_fd. */
void child_ready(int ready_fd);

int raise_fd_limit(size_t wanted);
/* Resident set size of this process, in bytes. */
long rss_bytes(void);
/* Heap bytes in use (malloc arenas and mmapped chunks). */
long heap_bytes(void);
void socket_path(const struct bench_config *config, char *out, size_t size);

/* ---- Heap allocation counter (counting malloc interposer) ---- */

/* Allocation calls (malloc, calloc, realloc, aligned forms) so far; -1 when not counted. */
long alloc_count(void);

/* ---- Results ---- */

enum target_kind {
	TARGET_NONE,
	TARGET_RATIO_AT_MOST,  /* ratio <= threshold */
	TARGET_RATIO_AT_LEAST, /* ratio >= threshold */
	TARGET_VALUE_AT_MOST,  /* value <= threshold */
};

struct row {
	char section[48];
	char label[LABEL_SIZE];
	const char *mode; /* "pinned", "unpinned", or "" */
	double value;
	const char *unit;
	double p99; /* NAN when not a latency */
	double extra;
	const char *extra_unit; /* NULL without an extra figure */
	char baseline[LABEL_SIZE];
	double baseline_value;
	double ratio; /* value / baseline_value; NAN without a baseline */
	enum target_kind target;
	double threshold;
	int met; /* -1: no target or not measured */
	char note[128];
};

/* A new row (zeroed, figures NAN) added to the report. */
struct row *report_row(const char *section, const char *label, const char *mode);
void row_set_baseline(struct row *row, const char *label, double value);
void row_set_target(struct row *row, enum target_kind kind, double threshold);
void row_fail(struct row *row, const struct measure *m);

void report_print(const struct bench_config *config, FILE *out);
int report_write_json(const struct bench_config *config, const char *path);
void report_meta(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Rows whose measurement failed (a sanitizer build's missing counts excepted). */
size_t report_failures(void);
void report_free(void);

/* A point of the plot: @panel (1..5), x group, series, value. */
void plot_point(int panel, const char *group, const char *series, double value);
int plot_render(const struct bench_config *config, const char *path);

/* ---- Sections ---- */

/* Wire sizes of a rocketfd call with n FDs, as traced. */
struct wire_size {
	size_t request;
	size_t reply;
};

int rfd_wire_size(const struct bench_config *config, size_t n_fds, struct wire_size *out);

/* Raw sendmsg/recvmsg baselines. */
enum raw_transport {
	RAW_SOCKETPAIR,
	RAW_PATH,
};

int raw_pingpong(const struct bench_config *config, enum raw_transport transport, size_t n_fds,
                 const struct wire_size *wire, struct measure *out);
int raw_pipelined(const struct bench_config *config, unsigned conns, unsigned in_flight,
                  size_t n_fds, const struct wire_size *wire, struct measure *out);
/*
 * Items of @item_bytes with @n_fds FDs each, sent one way over a socketpair
 * by a child process as fast as a window of stream_window() items allows,
 * received (FDs closed) here: items/s in calls_per_s.
 */
int raw_stream(const struct bench_config *config, size_t n_fds, size_t item_bytes,
               struct measure *out);

/* rocketfd. */
int rfd_roundtrip(const struct bench_config *config, size_t n_fds, struct measure *out);
int rfd_pipelined(const struct bench_config *config, unsigned conns, unsigned in_flight,
                  size_t n_fds, struct measure *out);
/* The bytes of one stream item frame with @n_fds FDs, as traced. */
int rfd_stream_wire_size(const struct bench_config *config, size_t n_fds, size_t *item_bytes);
/* A stream of items with @n_fds FDs each, from the server to an asynchronous client: items/s. */
int rfd_stream(const struct bench_config *config, size_t n_fds, struct measure *out);
enum payload_way {
	PAYLOAD_INLINE,
	PAYLOAD_MEMFD,
};
int rfd_large(const struct bench_config *config, size_t size, enum payload_way way,
              struct measure *out);

struct memory_figures {
	double server_heap_per_conn;
	double server_rss_per_conn;
	double client_heap_per_conn;
	double client_rss_per_conn;
	double server_heap_per_call;
	double client_heap_per_call;
	unsigned conns;
	unsigned calls;
};

int rfd_memory(const struct bench_config *config, struct memory_figures *out);

struct alloc_figures {
	double client_per_call;
	double server_per_call;
	long calls;
};

int rfd_allocs(const struct bench_config *config, size_t n_fds, bool async,
               struct alloc_figures *out);

/* sd-bus peer to peer over a socketpair. */
int sdbus_roundtrip(const struct bench_config *config, struct measure *out);
int sdbus_pipelined(const struct bench_config *config, unsigned in_flight, struct measure *out);
int sdbus_large(const struct bench_config *config, size_t size, enum payload_way way,
                struct measure *out);
int sdbus_allocs(const struct bench_config *config, struct alloc_figures *out);

struct sdbus_memory {
	double server_heap_per_conn;
	double server_rss_per_conn;
	double client_heap_per_conn;
	double client_rss_per_conn;
	unsigned conns;
};

/* Heap and RSS per idle sd-bus peer connection (each made one call), both sides. */
int sdbus_memory(const struct bench_config *config, struct sdbus_memory *out);

/* ---- Large payloads, shared by rocketfd and sd-bus ---- */

/* Calls before the measured ones (none in a quick run: 64 MiB calls are slow). */
int large_warmup(const struct bench_config *config);

/* A sealed memfd holding @size bytes of @bytes; the caller owns it. */
int payload_memfd(const uint8_t *bytes, size_t size);
/* Read one byte per page of a payload, as a server that uses it would. */
uint8_t payload_touch(const uint8_t *bytes, size_t size);
/* Check a received memfd is sealed, map it and touch it; 0 or a negative errno. */
int payload_touch_memfd(int fd, size_t *size);

#endif
