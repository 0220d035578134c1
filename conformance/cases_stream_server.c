/* SPDX-License-Identifier: MIT */
/*
 * Cases for a server under test on streams and sinks (spec section 21):
 * the harness is the client of FdTest's streamFds and sinkFds (17.5, 17.6).
 * It opens streams and sinks with raw frames, reads every frame the server
 * sends on them as an event (first response, item, completion, error,
 * credit, final response), claims the FDs that come with carriers as 7.5
 * says, and checks them against the reports the server sends along.
 *
 * Sinks are optional for a server (SINK-1) and so is the extension `sink`
 * (21.8): a case that needs either skips, saying why, when the server
 * declines it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compact.h"
#include "target.h"

enum {
	KIND_RR = RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE,
	KIND_FNF = RFD_RPC_SINGLE_REQUEST_NO_RESPONSE,
	KIND_STREAM = RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE,
	KIND_SINK = 6,
	KIND_BIDI = 7,
	ITEM_FLAGS = RFD_FLAG_NEXT | RFD_FLAG_METADATA, /* 0x120: a first response or an item */
	LAST_FLAGS = ITEM_FLAGS | RFD_FLAG_COMPLETE,    /* 0x160: ... that also ends it */
	SINK_COMPLETE_FLAGS = RFD_FLAG_COMPLETE | RFD_FLAG_METADATA, /* 0x140 */
	FBTHRIFT_INITIAL_N = 101,     /* fbthrift's default: 100 items and the first response */
	QUIET_MS = 300,               /* how long "nothing more comes" is watched */
	MAX_TRACKED = 8,              /* streams and sinks a case has open at once */
	STREAM_RESPONSE_METADATA = 3, /* ResponseRpcMetadata.otherMetadata */
	MAX_ANSWER = 8 * 1024 * 1024, /* a reassembled message the harness accepts */
	FIFO_TYPE = 0x1000,
};

#ifndef FDT_METHOD_SINK_FDS
#define FDT_METHOD_SINK_FDS "sinkFds"
#endif

#define EXT_SINK      "sink"
#define EXT_EXCEPTION "exception"

/* ---- Small things ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct rfd_fd_metadata
fd_claim(int64_t seq, int32_t num)
{
	return (struct rfd_fd_metadata){
	    .present = true, .has_seq = true, .fd_seq = seq, .has_num = true, .num_fds = num};
}

/* Make room in this process for @want FDs, when the hard limit allows. */
static void
raise_own_nofile(rlim_t want)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur >= want)
		return;
	limit.rlim_cur = limit.rlim_max < want ? limit.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &limit);
}

/* {1: i32 count, 2: i32 fdsPerItem}: the arguments of streamFds. */
static void
put_stream_args(struct rfd_buf *out, int32_t count, int32_t per_item)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, count);
	rfd_cw_field_i32(&w, 2, per_item);
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

/* {1: string}: the arguments of sinkFds; {0: string}: a sink item. */
static void
put_string_field(struct rfd_buf *out, int16_t id, const char *text)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_BINARY, id);
	rfd_cw_binary(&w, text, strlen(text));
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

/* ---- A session: one connection and the streams and sinks it has open ---- */

struct tracked {
	uint32_t id;
	bool sink;
	bool first_seen;
	bool ended;
	struct rfd_reassembly ra;
};

struct session {
	struct conf_ctx *ctx;
	struct wire w;
	bool connected;
	struct tracked streams[MAX_TRACKED];
	size_t n_streams;
};

enum event_kind {
	EV_FIRST,     /* a first response (ResponseRpcMetadata) */
	EV_ITEM,      /* a stream item (StreamPayloadMetadata) */
	EV_COMPLETE,  /* a PAYLOAD with COMPLETE and without NEXT */
	EV_FINAL,     /* a sink's final response (StreamPayloadMetadata) */
	EV_ERROR,     /* an ERROR on the stream */
	EV_REQUEST_N, /* a credit for a sink's items */
};

static const char *const event_names[] = {
    [EV_FIRST] = "a first response", [EV_ITEM] = "an item",   [EV_COMPLETE] = "a completion",
    [EV_FINAL] = "a final response", [EV_ERROR] = "an ERROR", [EV_REQUEST_N] = "a REQUEST_N",
};

/* One thing the server sent on a stream or sink, its FDs claimed. */
struct event {
	enum event_kind kind;
	uint32_t stream_id;
	uint16_t flags;
	bool has_metadata;
	struct rfd_buf metadata; /* md and answer point into it */
	struct rfd_buf data;
	struct rfd_response_metadata md;
	bool has_answer; /* otherMetadata holds the extension key (first responses) */
	struct rfd_slice answer;
	struct wire_group fds; /* claimed by md.fd; the event owns them */
	bool fds_matched;
	uint32_t value; /* REQUEST_N's N, ERROR's code */
	struct rfd_response_error error;
	bool error_decoded;
};

static void
event_init(struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
	rfd_buf_init(&ev->metadata);
	rfd_buf_init(&ev->data);
}

static void
event_free(struct event *ev)
{
	case_close_all(ev->fds.fds, ev->fds.n);
	ev->fds.n = 0;
	rfd_buf_free(&ev->metadata);
	rfd_buf_free(&ev->data);
}

static enum conf_result
session_open(struct conf_ctx *ctx, struct session *s, const char *offer)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->ctx = ctx;
	r = wire_connect(&s->w, ctx, ctx->socket_path);
	if (r < 0)
		return conf_fail(ctx, "cannot connect to %s: %s", ctx->socket_path, strerror(-r));
	s->connected = true;
	r = offer ? wire_handshake_offer(&s->w, offer) : wire_handshake(&s->w);
	if (r < 0)
		return conf_fail(ctx, "SETUP was not answered with a setup response (%s)",
		                 strerror(-r));
	return CONF_PASS;
}

static void
session_close(struct session *s)
{
	for (size_t i = 0; i < s->n_streams; i++)
		rfd_reassembly_free(&s->streams[i].ra);
	s->n_streams = 0;
	if (s->connected)
		wire_close(&s->w);
	s->connected = false;
}

static struct tracked *
find_tracked(struct session *s, uint32_t id)
{
	for (size_t i = 0; i < s->n_streams; i++)
		if (s->streams[i].id == id)
			return &s->streams[i];
	return NULL;
}

static void
track(struct session *s, uint32_t id, bool sink)
{
	struct tracked *t = &s->streams[s->n_streams++];

	memset(t, 0, sizeof(*t));
	t->id = id;
	t->sink = sink;
	rfd_reassembly_init(&t->ra, MAX_ANSWER);
}

static enum conf_result
send_buf(struct session *s, const struct rfd_buf *bytes, const int *fds, size_t n_fds,
         const char *what)
{
	int r = wire_send(&s->w, bytes->data, bytes->len, fds, n_fds);

	if (r < 0)
		return conf_fail(s->ctx, "cannot send %s: %s", what, strerror(-r));
	return CONF_PASS;
}

/*
 * Open a stream (REQUEST_STREAM, @kind) or a sink (REQUEST_CHANNEL) for
 * @method with @args and @fds, claimed correctly.  Returns the stream id,
 * or 0 with the failure recorded.
 */
static uint32_t
open_call(struct session *s, uint8_t type, const char *method, int32_t kind, uint32_t initial_n,
          int32_t timeout_ms, const struct rfd_buf *args, const int *fds, size_t n_fds,
          const struct rfd_fd_metadata *claim)
{
	struct rfd_fd_metadata correct = wire_claim(&s->w, (int32_t)n_fds);
	struct wire_stream_request req = {
	    .type = type,
	    .kind = kind,
	    .initial_n = initial_n,
	    .client_timeout_ms = timeout_ms,
	    .method = method,
	    .args = args->data,
	    .args_len = args->len,
	    .claim = claim ? claim : (n_fds ? &correct : NULL),
	};
	struct rfd_buf bytes;
	uint32_t id = wire_stream_id(&s->w);
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_stream_request(&bytes, id, &req);
	result = send_buf(s, &bytes, fds, n_fds, method);
	rfd_buf_free(&bytes);
	if (result != CONF_PASS)
		return 0;
	track(s, id, type == RFD_FRAME_REQUEST_CHANNEL);
	return id;
}

static uint32_t
open_stream(struct session *s, int32_t count, int32_t per_item, uint32_t initial_n,
            int32_t timeout_ms, const int *fds, size_t n_fds)
{
	struct rfd_buf args;
	uint32_t id;

	rfd_buf_init(&args);
	put_stream_args(&args, count, per_item);
	id = open_call(s, RFD_FRAME_REQUEST_STREAM, FDT_METHOD_STREAM_FDS, KIND_STREAM, initial_n,
	               timeout_ms, &args, fds, n_fds, NULL);
	rfd_buf_free(&args);
	return id;
}

static uint32_t
open_sink(struct session *s, const char *tag, const int *fds, size_t n_fds)
{
	struct rfd_buf args;
	uint32_t id;

	rfd_buf_init(&args);
	put_string_field(&args, 1, tag);
	id = open_call(s, RFD_FRAME_REQUEST_CHANNEL, FDT_METHOD_SINK_FDS, KIND_SINK, 2, 0, &args,
	               fds, n_fds, NULL);
	rfd_buf_free(&args);
	return id;
}

static enum conf_result
send_request_n(struct session *s, uint32_t id, uint32_t n)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_request_n(&bytes, id, n);
	result = send_buf(s, &bytes, NULL, 0, "REQUEST_N");
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
send_cancel(struct session *s, uint32_t id)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_cancel(&bytes, id);
	result = send_buf(s, &bytes, NULL, 0, "CANCEL");
	rfd_buf_free(&bytes);
	return result;
}

/* A sink item {0: @tag} with @fds, claimed by @claim (NULL: correctly). */
static enum conf_result
send_sink_item(struct session *s, uint32_t id, const char *tag, const int *fds, size_t n_fds,
               const struct rfd_fd_metadata *claim)
{
	struct rfd_fd_metadata correct = wire_claim(&s->w, (int32_t)n_fds);
	struct rfd_buf bytes, data;
	enum conf_result result;

	rfd_buf_init(&bytes);
	rfd_buf_init(&data);
	put_string_field(&data, 0, tag);
	wire_encode_stream_payload(&bytes, id, ITEM_FLAGS, true, claim ? claim : &correct,
	                           data.data, data.len);
	result = send_buf(s, &bytes, fds, n_fds, "a sink item");
	rfd_buf_free(&bytes);
	rfd_buf_free(&data);
	return result;
}

/* The client's completion of a sink: PAYLOAD COMPLETE|METADATA, metadata 00, no data. */
static enum conf_result
send_sink_complete(struct session *s, uint32_t id)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_stream_payload(&bytes, id, SINK_COMPLETE_FLAGS, true, NULL, NULL, 0);
	result = send_buf(s, &bytes, NULL, 0, "the sink's completion");
	rfd_buf_free(&bytes);
	return result;
}

/* ---- Reading events ---- */

/* Record a failure of the case and return -1, for the readers that return a count. */
static int __attribute__((format(printf, 2, 3))) event_fail(struct session *s, const char *fmt, ...)
{
	char reason[sizeof(s->ctx->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	conf_fail(s->ctx, "%s", reason);
	return -1;
}

/* Take the group @claim names, closing older ones, as a receiver of the spec does. */
static void
claim_fds(struct session *s, struct event *ev)
{
	const struct rfd_fd_metadata *claim = &ev->md.fd;

	ev->fds.n = 0;
	ev->fds_matched = !claim->present || !claim->has_num || claim->num_fds == 0;
	if (ev->fds_matched || !claim->has_seq)
		return;
	while (s->w.n_groups && rfd_seq_before(s->w.groups[0].seq, claim->fd_seq)) {
		struct wire_group orphan;

		wire_take_group(&s->w, &orphan);
		conf_note(s->ctx, "closing %zu FDs (seq %lld) that no message claimed", orphan.n,
		          (long long)orphan.seq);
		case_close_all(orphan.fds, orphan.n);
	}
	if (s->w.n_groups && s->w.groups[0].seq == claim->fd_seq) {
		wire_take_group(&s->w, &ev->fds);
		ev->fds_matched = (int64_t)ev->fds.n == claim->num_fds;
	}
}

static enum conf_result
decode_payload(struct session *s, struct tracked *t, const struct rfd_frame *f, struct event *ev)
{
	const char *why = "";
	int r;

	ev->flags = f->flags;
	ev->has_metadata = f->has_metadata;
	if (rfd_buf_append(&ev->metadata, f->metadata.ptr, f->metadata.len) < 0 ||
	    rfd_buf_append(&ev->data, f->data.ptr, f->data.len) < 0)
		return conf_fail(s->ctx, "the harness is out of memory");
	if (!(f->flags & RFD_FLAG_NEXT)) {
		ev->kind = EV_COMPLETE;
		return CONF_PASS;
	}
	if (!f->has_metadata)
		return conf_fail(s->ctx, "a PAYLOAD with NEXT on stream %u has no metadata", t->id);
	if (!t->first_seen) {
		ev->kind = EV_FIRST;
		t->first_seen = true;
		r = rfd_response_metadata_decode(ev->metadata.data, ev->metadata.len, &ev->md,
		                                 &why);
		if (r == 0)
			ev->has_answer =
			    wire_extension_value(ev->metadata.data, ev->metadata.len,
			                         STREAM_RESPONSE_METADATA, &ev->answer) == 1;
	} else {
		ev->kind = t->sink ? EV_FINAL : EV_ITEM;
		r = rfd_stream_payload_metadata_decode(ev->metadata.data, ev->metadata.len, &ev->md,
		                                       &why);
	}
	if (r < 0)
		return conf_fail(s->ctx, "the metadata of %s on stream %u does not decode: %s",
		                 event_names[ev->kind], t->id, why);
	claim_fds(s, ev);
	return CONF_PASS;
}

/* One frame on a tracked stream: 1 with *ev complete, 0 for a fragment, -1 on failure. */
static int
on_stream_frame(struct session *s, struct tracked *t, const struct rfd_frame *f, struct event *ev)
{
	struct rfd_frame whole;
	const char *why = "";
	int r;

	ev->stream_id = t->id;
	switch (f->type) {
	case RFD_FRAME_ERROR:
		ev->kind = EV_ERROR;
		ev->value = f->u32;
		if (rfd_buf_append(&ev->data, f->data.ptr, f->data.len) < 0)
			return event_fail(s, "the harness is out of memory");
		ev->error_decoded =
		    rfd_response_error_decode(ev->data.data, ev->data.len, &ev->error, &why) == 0;
		t->ended = true;
		return 1;
	case RFD_FRAME_REQUEST_N:
		if (!t->sink)
			return event_fail(s,
			                  "the server sent REQUEST_N on stream %u: a stream's "
			                  "credits come from the client only (21.1)",
			                  t->id);
		ev->kind = EV_REQUEST_N;
		ev->value = f->u32;
		return 1;
	case RFD_FRAME_PAYLOAD:
		r = rfd_reassembly_add(&t->ra, f, &whole, &why);
		if (r < 0)
			return event_fail(s, "the message on stream %u cannot be reassembled: %s",
			                  t->id, why);
		if (r == 0)
			return 0;
		if (decode_payload(s, t, &whole, ev) != CONF_PASS)
			return -1;
		if (whole.flags & RFD_FLAG_COMPLETE)
			t->ended = true;
		return 1;
	default:
		return event_fail(s, "the server sent %s on stream %u (FRAME-14)",
		                  rfd_frame_type_name(f->type), t->id);
	}
}

/*
 * The next event on any stream of @s within @timeout_ms: 1 with *ev (release
 * it with event_free), 0 when nothing came in time, -1 with the failure
 * recorded (the server failed or closed the connection, or sent a frame on
 * a stream the harness did not open).
 */
static int
next_event(struct session *s, int timeout_ms, struct event *ev)
{
	long long deadline = now_ms() + timeout_ms;

	event_init(ev);
	for (;;) {
		struct rfd_frame f;
		struct tracked *t;
		long long left = deadline - now_ms();
		int r = left > 0 ? wire_read_frame(&s->w, &f, (int)left) : -ETIMEDOUT;

		if (r == -ETIMEDOUT)
			return 0;
		if (r == 0)
			return event_fail(s, "the server closed the connection");
		if (r < 0)
			return event_fail(s, "cannot read from the server: %s", strerror(-r));
		if (f.stream_id == 0 && f.type == RFD_FRAME_ERROR)
			return event_fail(
			    s,
			    "the server failed the connection: ERROR 0x%x on stream 0: "
			    "%.*s",
			    f.u32, (int)(f.data.len > 200 ? 200 : f.data.len),
			    (const char *)f.data.ptr);
		if (f.stream_id == 0)
			continue; /* KEEPALIVE, METADATA_PUSH: nothing to do with streams */
		t = find_tracked(s, f.stream_id);
		if (!t)
			return event_fail(
			    s,
			    "the server sent %s on stream %u, which the harness did not "
			    "open (FRAME-14)",
			    rfd_frame_type_name(f.type), f.stream_id);
		r = on_stream_frame(s, t, &f, ev);
		if (r != 0)
			return r;
	}
}

/* The next event, which must come within the case's wait and be on stream @id. */
static enum conf_result
expect_event(struct session *s, uint32_t id, const char *awaited, struct event *ev)
{
	int r = next_event(s, conf_wait_ms(s->ctx), ev);

	if (r < 0) {
		event_free(ev);
		return CONF_FAIL;
	}
	if (r == 0) {
		event_free(ev);
		return conf_fail(s->ctx, "no %s on stream %u within %d ms", awaited, id,
		                 conf_wait_ms(s->ctx));
	}
	if (ev->stream_id != id) {
		enum event_kind kind = ev->kind;
		uint32_t other = ev->stream_id;

		event_free(ev);
		return conf_fail(s->ctx, "expected %s on stream %u, got %s on stream %u", awaited,
		                 id, event_names[kind], other);
	}
	return CONF_PASS;
}

/* Nothing at all arrives for @ms: @what names the rule that something would break. */
static enum conf_result
expect_quiet(struct session *s, int ms, const char *what)
{
	struct event ev;
	int r = next_event(s, ms, &ev);
	enum conf_result result = CONF_PASS;

	if (r < 0)
		result = CONF_FAIL;
	else if (r == 1)
		result = conf_fail(s->ctx, "%s arrived on stream %u: %s", event_names[ev.kind],
		                   ev.stream_id, what);
	event_free(&ev);
	return result;
}

/* ---- Checking what arrived ---- */

/* An ERROR @code with ResponseRpcError {category, code}, and no stream event before it. */
static enum conf_result
expect_rpc_error(struct session *s, uint32_t id, const char *what, uint32_t code, int32_t category,
                 int32_t rpc_code)
{
	struct event ev;
	enum conf_result result = expect_event(s, id, "ERROR", &ev);

	if (result != CONF_PASS)
		return result;
	if (ev.kind != EV_ERROR)
		result = conf_fail(s->ctx, "%s: expected ERROR 0x%x (category %d, code %d), got %s",
		                   what, code, category, rpc_code, event_names[ev.kind]);
	else if (ev.value != code)
		result =
		    conf_fail(s->ctx, "%s: expected ERROR 0x%x, got 0x%x", what, code, ev.value);
	else if (!ev.error_decoded || !ev.error.has_category || ev.error.category != category ||
	         !ev.error.has_code || ev.error.code != rpc_code)
		result = conf_fail(s->ctx,
		                   "%s: the ERROR's data is not a ResponseRpcError with category "
		                   "%d and code %d",
		                   what, category, rpc_code);
	event_free(&ev);
	return result;
}

/* A first response of streamFds or sinkFds: the flags of STREAM-2, data 00, no FD. */
static enum conf_result
check_first(struct session *s, const struct event *ev, bool may_complete)
{
	const char *what = s->streams[0].sink ? "the sink's first response" : "the first response";

	if (ev->kind == EV_ERROR)
		return conf_fail(
		    s->ctx, "expected %s, got ERROR 0x%x: %.*s", what, ev->value,
		    ev->error_decoded && ev->error.has_what ? (int)ev->error.what.len : 0,
		    ev->error_decoded && ev->error.has_what ? (const char *)ev->error.what.ptr
		                                            : "");
	if (ev->kind != EV_FIRST)
		return conf_fail(s->ctx, "expected %s, got %s", what, event_names[ev->kind]);
	if (ev->flags != ITEM_FLAGS && !(may_complete && ev->flags == LAST_FLAGS))
		return conf_fail(s->ctx, "%s has flags 0x%03x, expected NEXT|METADATA (0x120)%s",
		                 what, ev->flags, may_complete ? " or with COMPLETE (0x160)" : "");
	if (ev->md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return conf_fail(s->ctx, "%s's payloadMetadata is not responseMetadata", what);
	if (ev->md.uses_compression || ev->md.uses_checksum)
		return conf_fail(s->ctx, "%s sets compression or checksum (META-8)", what);
	if (ev->data.len != 1 || ev->data.data[0] != 0)
		return conf_fail(s->ctx, "%s's data is %zu bytes, not the empty initial result 00",
		                 what, ev->data.len);
	if (ev->fds.n || (ev->md.fd.has_num && ev->md.fd.num_fds != 0))
		return conf_fail(s->ctx, "%s carries FDs; streamFds and sinkFds send none with it",
		                 what);
	return CONF_PASS;
}

static enum conf_result
expect_first(struct session *s, uint32_t id, bool may_complete, struct event *ev)
{
	enum conf_result result = expect_event(s, id, "first response", ev);

	if (result == CONF_PASS)
		result = check_first(s, ev, may_complete);
	if (result != CONF_PASS)
		event_free(ev);
	return result;
}

/* One received FD against its FdInfo: the same pipe, a read end whose write end is closed. */
static enum conf_result
check_item_fd(struct conf_ctx *ctx, int fd, const struct fdt_fdinfo *info, unsigned item, size_t k)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct stat st;
	char byte;

	if (fstat(fd, &st) < 0)
		return conf_fail(ctx, "item %u, FD %zu: fstat failed: %s", item, k,
		                 strerror(errno));
	if ((int64_t)st.st_dev != info->dev || (int64_t)st.st_ino != info->ino)
		return conf_fail(ctx,
		                 "item %u, FD %zu names dev %llu ino %llu, its report says dev "
		                 "%lld ino %lld (SVC-STREAM-1)",
		                 item, k, (unsigned long long)st.st_dev,
		                 (unsigned long long)st.st_ino, (long long)info->dev,
		                 (long long)info->ino);
	if (!S_ISFIFO(st.st_mode) || info->type != FIFO_TYPE)
		return conf_fail(ctx, "item %u, FD %zu is not a pipe (type 0x%x)", item, k,
		                 (unsigned)info->type);
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY || (info->flags & O_ACCMODE) != O_RDONLY)
		return conf_fail(ctx, "item %u, FD %zu is not a pipe's read end", item, k);
	if (!info->cloexec)
		return conf_fail(ctx,
		                 "item %u, FD %zu: the server's own FD lacked FD_CLOEXEC when it "
		                 "was described (EXEC-2: pipes are made with O_CLOEXEC)",
		                 item, k);
	if (poll(&pfd, 1, 0) != 1 || read(fd, &byte, 1) != 0)
		return conf_fail(ctx,
		                 "item %u, FD %zu: the pipe's write end is still open somewhere: "
		                 "the server closes it before it sends the item (SVC-STREAM-1)",
		                 item, k);
	return CONF_PASS;
}

/* Item @index of streamFds(_, @per_item): flags, metadata, its FDs against its report. */
static enum conf_result
check_item(struct session *s, const struct event *ev, unsigned index, size_t per_item)
{
	struct fdt_report report = {0};
	enum conf_result result = CONF_PASS;
	const char *why = "";
	char tag[16];

	if (ev->kind != EV_ITEM)
		return conf_fail(s->ctx, "expected item %u, got %s", index, event_names[ev->kind]);
	if (ev->flags != ITEM_FLAGS && ev->flags != LAST_FLAGS)
		return conf_fail(s->ctx,
		                 "item %u has flags 0x%03x, expected NEXT|METADATA (0x120), with "
		                 "COMPLETE (0x160) on a last item (STREAM-3)",
		                 index, ev->flags);
	if (ev->md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return conf_fail(s->ctx, "item %u: payloadMetadata is not responseMetadata", index);
	if (ev->md.uses_compression || ev->md.uses_checksum)
		return conf_fail(s->ctx, "item %u sets compression or checksum (STREAM-3)", index);
	if (!ev->fds_matched || ev->fds.n != per_item)
		return conf_fail(s->ctx,
		                 "item %u: %zu FDs claimed by its fdMetadata (numFds %d, fdSeqNum "
		                 "%lld), %zu expected (FD-SEND-8, FD-SEND-9)",
		                 index, ev->fds.n, ev->md.fd.has_num ? ev->md.fd.num_fds : 0,
		                 ev->md.fd.has_seq ? (long long)ev->md.fd.fd_seq : -1LL, per_item);
	if (fdt_decode_report_result(ev->data.data, ev->data.len, &report, &why) < 0)
		return conf_fail(s->ctx, "item %u's data is not {0: FdReport}: %s", index, why);
	snprintf(tag, sizeof(tag), "%u", index);
	if (strcmp(report.tag, tag) != 0)
		result = conf_fail(s->ctx, "item %u's report has the tag \"%s\", not \"%s\"", index,
		                   report.tag, tag);
	else if (report.n_fds != per_item)
		result = conf_fail(s->ctx, "item %u's report lists %zu FDs, not %zu", index,
		                   report.n_fds, per_item);
	for (size_t k = 0; result == CONF_PASS && k < per_item; k++)
		result = check_item_fd(s->ctx, ev->fds.fds[k], &report.fds[k], index, k);
	fdt_report_free(&report);
	return result;
}

static enum conf_result
expect_item(struct session *s, uint32_t id, unsigned index, size_t per_item, bool *last)
{
	struct event ev;
	enum conf_result result = expect_event(s, id, "item", &ev);

	if (result != CONF_PASS)
		return result;
	result = check_item(s, &ev, index, per_item);
	if (last)
		*last = ev.flags == LAST_FLAGS;
	event_free(&ev);
	return result;
}

/* The normal end of a stream whose last item (or first response) did not end it: `28 40`. */
static enum conf_result
expect_completion(struct session *s, uint32_t id)
{
	struct event ev;
	enum conf_result result = expect_event(s, id, "completion", &ev);

	if (result != CONF_PASS)
		return result;
	if (ev.kind != EV_COMPLETE)
		result = conf_fail(s->ctx, "expected the end of the stream, got %s (STREAM-4)",
		                   event_names[ev.kind]);
	else if (ev.flags != RFD_FLAG_COMPLETE || ev.has_metadata || ev.data.len)
		result = conf_fail(s->ctx,
		                   "the completion has flags 0x%03x, %zu metadata and %zu data "
		                   "bytes; STREAM-4 asks for `28 40`, COMPLETE alone, empty",
		                   ev.flags, ev.metadata.len, ev.data.len);
	event_free(&ev);
	return result;
}

/* Items @from to @to - 1 of streamFds(_, @per_item), then the end when @end_after. */
static enum conf_result
expect_items(struct session *s, uint32_t id, unsigned from, unsigned to, size_t per_item,
             bool end_after)
{
	enum conf_result result = CONF_PASS;
	bool last = false;

	for (unsigned i = from; result == CONF_PASS && i < to; i++) {
		if (last)
			return conf_fail(s->ctx,
			                 "item %u had COMPLETE, %u items were due (STREAM-4)",
			                 i - 1, to);
		result = expect_item(s, id, i, per_item, &last);
	}
	if (result != CONF_PASS)
		return result;
	if (last && !end_after)
		return conf_fail(s->ctx, "item %u had COMPLETE, more items were due", to - 1);
	if (end_after && !last)
		result = expect_completion(s, id);
	return result;
}

/* After the end: no FD is left that no message claimed (FD-CARRY-1, FD-SEND-10). */
static enum conf_result
no_stray_fds(struct session *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->w.n_groups; i++)
		n += s->w.groups[i].n;
	if (n == 0)
		return CONF_PASS;
	wire_drop_groups(&s->w);
	return conf_fail(s->ctx,
	                 "%zu FDs arrived that no message's fdMetadata claimed (FD-CARRY-1, "
	                 "FD-SEND-10)",
	                 n);
}

/* echo("probe") on @s, answered before anything else on a stream it opened. */
static enum conf_result
probe(struct session *s)
{
	struct case_answer a;
	enum conf_result result;
	uint32_t id = case_send_call(s->ctx, &s->w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO,
	                             "probe", NULL, 0, NULL);

	if (!id)
		return CONF_FAIL;
	result = case_read_answer(s->ctx, &s->w, id, false, conf_wait_ms(s->ctx), &a);
	if (result != CONF_PASS)
		return result;
	if (a.reply.type != RFD_FRAME_PAYLOAD)
		result = conf_fail(s->ctx, "the probe echo(\"probe\") failed");
	case_answer_free(&a);
	return result;
}

/* The server's FD count, once it settled, with the connection's own state set up. */
static int
settled_baseline(struct session *s)
{
	if (s->ctx->target_pid <= 0 || probe(s) != CONF_PASS)
		return -1;
	return case_fd_baseline(s->ctx);
}

static enum conf_result
fds_back(struct session *s, int baseline, const char *when)
{
	int now = 0;

	if (baseline < 0 || case_fd_settled(s->ctx, baseline, &now))
		return CONF_PASS;
	return conf_fail(s->ctx,
	                 "the server had %d FDs open before the stream and %d %s: it keeps FDs "
	                 "of a stream that ended (STREAM-11)",
	                 baseline, now, when);
}

/* ==== 21.2 Streams ==== */

/* streamFds(@count, @per_item) with fbthrift's credits, checked item by item, then leaks. */
static enum conf_result
stream_items(struct conf_ctx *ctx, int32_t count, int32_t per_item)
{
	struct session s;
	struct event first;
	enum conf_result result;
	int baseline = -1;
	uint32_t id;

	raise_own_nofile((rlim_t)per_item * 4 + 256);
	result = session_open(ctx, &s, NULL);
	if (result == CONF_PASS)
		baseline = settled_baseline(&s);
	id = result == CONF_PASS ? open_stream(&s, count, per_item, FBTHRIFT_INITIAL_N, 0, NULL, 0)
	                         : 0;
	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, count == 0, &first);
	if (result == CONF_PASS) {
		bool ended = first.flags == LAST_FLAGS;

		event_free(&first);
		if (!ended)
			result = expect_items(&s, id, 0, (unsigned)count, (size_t)per_item, true);
	}
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "nothing follows the end of a stream (STREAM-4)");
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	if (result == CONF_PASS)
		result = fds_back(&s, baseline, "after it ended");
	session_close(&s);
	return result;
}

static enum conf_result
stream_items_0(struct conf_ctx *ctx)
{
	return stream_items(ctx, 3, 0);
}

static enum conf_result
stream_items_1(struct conf_ctx *ctx)
{
	return stream_items(ctx, 2, 1);
}

static enum conf_result
stream_items_3(struct conf_ctx *ctx)
{
	return stream_items(ctx, 3, 3);
}

static enum conf_result
stream_items_253(struct conf_ctx *ctx)
{
	return stream_items(ctx, 2, 253);
}

static enum conf_result
stream_no_items(struct conf_ctx *ctx)
{
	return stream_items(ctx, 0, 1);
}

/* Two streams at once: each item's FDs are its own, whatever the interleaving. */
static enum conf_result
stream_two_at_once(struct conf_ctx *ctx)
{
	static const int32_t per_item[2] = {1, 2};
	enum { COUNT = 3 };
	unsigned next_item[2] = {0, 0};
	bool first_seen[2] = {false, false}, ended[2] = {false, false};
	struct session s;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t ids[2] = {0, 0};

	if (result == CONF_PASS) {
		ids[0] = open_stream(&s, COUNT, per_item[0], FBTHRIFT_INITIAL_N, 0, NULL, 0);
		ids[1] = ids[0]
		             ? open_stream(&s, COUNT, per_item[1], FBTHRIFT_INITIAL_N, 0, NULL, 0)
		             : 0;
		if (!ids[1])
			result = CONF_FAIL;
	}
	while (result == CONF_PASS && !(ended[0] && ended[1])) {
		struct event ev;
		int r = next_event(&s, conf_wait_ms(ctx), &ev);
		size_t k;

		if (r <= 0) {
			result =
			    r < 0 ? CONF_FAIL
			          : conf_fail(ctx, "the two streams did not both end within %d ms",
			                      conf_wait_ms(ctx));
			event_free(&ev);
			break;
		}
		k = ev.stream_id == ids[0] ? 0 : 1;
		if (!first_seen[k]) {
			first_seen[k] = true;
			result = check_first(&s, &ev, false);
		} else if (ev.kind == EV_COMPLETE || ended[k]) {
			result = ended[k]
			             ? conf_fail(ctx, "a frame after the end of stream %u", ids[k])
			             : CONF_PASS;
			ended[k] = true;
		} else {
			result = check_item(&s, &ev, next_item[k]++, (size_t)per_item[k]);
			ended[k] = ev.flags == LAST_FLAGS;
		}
		if (result == CONF_PASS && ended[k] && next_item[k] != COUNT)
			result = conf_fail(ctx, "stream %u ended after %u items, not %d", ids[k],
			                   next_item[k], COUNT);
		event_free(&ev);
	}
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/* streamFds with FDs on its request: both closed before the first response (SVC-STREAM-3). */
static enum conf_result
stream_request_fds(struct conf_ctx *ctx)
{
	int readers[2], writers[2];
	struct session s;
	struct event first;
	enum conf_result result;
	uint32_t id = 0;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = session_open(ctx, &s, NULL);
	if (result == CONF_PASS)
		id = open_stream(&s, 1, 0, FBTHRIFT_INITIAL_N, 0, writers, 2);
	case_close_all(writers, 2);
	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		for (size_t i = 0; result == CONF_PASS && i < 2; i++)
			if (!case_closed_now(readers[i]))
				result =
				    conf_fail(ctx,
				              "FD %zu of the streamFds request was still open when "
				              "the first response arrived (SVC-STREAM-3)",
				              i);
	}
	if (result == CONF_PASS)
		result = expect_items(&s, id, 0, 1, 0, true);
	session_close(&s);
	case_close_all(readers, 2);
	return result;
}

/* A streamFds request whose claim fails: ERROR 0x204 (1, 6), its FDs closed (ERR-10). */
static enum conf_result
stream_claim_mismatch(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim;
	int readers[2], writers[2];
	struct session s;
	struct rfd_buf args;
	enum conf_result result;
	uint32_t id = 0;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = session_open(ctx, &s, NULL);
	rfd_buf_init(&args);
	put_stream_args(&args, 2, 1);
	claim = fd_claim(s.w.send_seq, 1);
	if (result == CONF_PASS)
		id = open_call(&s, RFD_FRAME_REQUEST_STREAM, FDT_METHOD_STREAM_FDS, KIND_STREAM,
		               FBTHRIFT_INITIAL_N, 0, &args, writers, 2, &claim);
	rfd_buf_free(&args);
	case_close_all(writers, 2);
	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_rpc_error(&s, id, "streamFds with 2 FDs claiming 1",
		                          RFD_ERROR_INVALID, RFD_ERROR_CATEGORY_INVALID_REQUEST,
		                          RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
	for (size_t i = 0; result == CONF_PASS && i < 2; i++)
		if (!case_closed_now(readers[i]))
			result =
			    conf_fail(ctx,
			              "FD %zu of the refused streamFds was still open when its "
			              "ERROR arrived (OWN-3)",
			              i);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "a refused stream request gets no first response");
	if (result == CONF_PASS)
		result = probe(&s);
	session_close(&s);
	case_close_all(readers, 2);
	return result;
}

/* A request that a server must refuse before any first response, with a pipe write end. */
struct refused_stream {
	const char *what;
	uint8_t type;
	const char *method;
	int32_t kind;
	int32_t count, per_item; /* streamFds arguments, when args is NULL */
	const char *args;        /* raw argument bytes */
	size_t args_len;
	int32_t rpc_code; /* 0: a one-way request, which gets nothing */
};

static enum conf_result
refused(struct session *s, const struct refused_stream *r)
{
	struct rfd_buf args, bytes;
	struct rfd_fd_metadata claim = fd_claim(s->w.send_seq, 1);
	enum conf_result result;
	int reader, writer;
	uint32_t id;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(s->ctx, "the harness cannot make a pipe");
	rfd_buf_init(&args);
	if (r->args)
		rfd_buf_append(&args, r->args, r->args_len);
	else
		put_stream_args(&args, r->count, r->per_item);
	if (r->type == RFD_FRAME_REQUEST_STREAM || r->type == RFD_FRAME_REQUEST_CHANNEL) {
		id = open_call(s, r->type, r->method, r->kind,
		               r->type == RFD_FRAME_REQUEST_CHANNEL ? 2 : FBTHRIFT_INITIAL_N, 0,
		               &args, &writer, 1, &claim);
		result = id ? CONF_PASS : CONF_FAIL;
	} else {
		id = wire_stream_id(&s->w);
		rfd_buf_init(&bytes);
		wire_encode_request(&bytes, r->type, id, r->method, args.data, args.len, &claim);
		result = send_buf(s, &bytes, &writer, 1, r->what);
		rfd_buf_free(&bytes);
		if (r->rpc_code)
			track(s, id, false);
	}
	rfd_buf_free(&args);
	close(writer);
	if (result == CONF_PASS && r->rpc_code)
		result = expect_rpc_error(s, id, r->what, RFD_ERROR_INVALID,
		                          RFD_ERROR_CATEGORY_INVALID_REQUEST, r->rpc_code);
	if (result == CONF_PASS && !r->rpc_code)
		result = probe(s);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(s->ctx)))
		result =
		    conf_fail(s->ctx, "%s: the FD sent with it was never closed (OWN-3)", r->what);
	close(reader);
	return result;
}

static enum conf_result
refused_all(struct conf_ctx *ctx, const char *offer, const struct refused_stream *list, size_t n)
{
	struct session s;
	enum conf_result result = session_open(ctx, &s, offer);

	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		result = refused(&s, &list[i]);
		if (result == CONF_FAIL && strncmp(ctx->reason, list[i].what, strlen(list[i].what)))
			conf_note(ctx, "while checking %s", list[i].what);
	}
	if (result == CONF_PASS)
		result = expect_quiet(&s, QUIET_MS, "a refused request gets nothing but its ERROR");
	if (result == CONF_PASS)
		result = probe(&s);
	session_close(&s);
	return result;
}

#define STREAM_ARGS(what_, count_, per_)                                                           \
	{                                                                                          \
		.what = what_, .type = RFD_FRAME_REQUEST_STREAM, .method = FDT_METHOD_STREAM_FDS,  \
		.kind = KIND_STREAM, .count = count_, .per_item = per_,                            \
		.rpc_code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE                                 \
	}

static enum conf_result
stream_bad_args(struct conf_ctx *ctx)
{
	static const struct refused_stream list[] = {
	    STREAM_ARGS("streamFds(-1, 1)", -1, 1),
	    STREAM_ARGS("streamFds(1, -1)", 1, -1),
	    STREAM_ARGS("streamFds(1, 254)", 1, 254),
	    {.what = "streamFds whose argument 1 is a string",
	     .type = RFD_FRAME_REQUEST_STREAM,
	     .method = FDT_METHOD_STREAM_FDS,
	     .kind = KIND_STREAM,
	     .args = "\x18\x01x\x00",
	     .args_len = 4,
	     .rpc_code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE},
	};

	return refused_all(ctx, NULL, list, sizeof(list) / sizeof(list[0]));
}

static enum conf_result
stream_wrong_kind(struct conf_ctx *ctx)
{
	static const struct refused_stream list[] = {
	    {.what = "streamFds as REQUEST_RESPONSE with kind 0",
	     .type = RFD_FRAME_REQUEST_RESPONSE,
	     .method = FDT_METHOD_STREAM_FDS,
	     .kind = KIND_RR,
	     .count = 1,
	     .per_item = 1,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	    {.what = "streamFds as REQUEST_STREAM with kind 0",
	     .type = RFD_FRAME_REQUEST_STREAM,
	     .method = FDT_METHOD_STREAM_FDS,
	     .kind = KIND_RR,
	     .count = 1,
	     .per_item = 1,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	    {.what = "streamFds as REQUEST_STREAM without kind",
	     .type = RFD_FRAME_REQUEST_STREAM,
	     .method = FDT_METHOD_STREAM_FDS,
	     .kind = -1,
	     .count = 1,
	     .per_item = 1,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	    {.what = "streamFds as REQUEST_FNF with kind 1",
	     .type = RFD_FRAME_REQUEST_FNF,
	     .method = FDT_METHOD_STREAM_FDS,
	     .kind = KIND_FNF,
	     .count = 1,
	     .per_item = 1},
	};

	return refused_all(ctx, NULL, list, sizeof(list) / sizeof(list[0]));
}

/* ==== 21.3 Credits ==== */

/* streamFds(5, 1) fed with credits step by step: never an item beyond them (STREAM-6). */
static enum conf_result
stream_credits(struct conf_ctx *ctx)
{
	static const char beyond[] = "an item beyond the client's credits (STREAM-6)";
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = result == CONF_PASS ? open_stream(&s, 5, 1, 2, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_items(&s, id, 0, 1, 1, false);
	}
	if (result == CONF_PASS)
		result = expect_quiet(&s, QUIET_MS, beyond);
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 2);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 1, 3, 1, false);
	if (result == CONF_PASS)
		result = expect_quiet(&s, QUIET_MS, beyond);
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 5);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 3, 5, 1, true);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/* initialRequestN 1 pays for the first response only: no item before a REQUEST_N. */
static enum conf_result
stream_credit_first_only(struct conf_ctx *ctx)
{
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = result == CONF_PASS ? open_stream(&s, 2, 1, 1, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_quiet(&s, QUIET_MS,
		                      "an item although the initial request N of 1 paid for the "
		                      "first response only (STREAM-6)");
	}
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 1);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 0, 1, 1, false);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "an item beyond the client's credits (STREAM-6)");
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 1);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 1, 2, 1, true);
	session_close(&s);
	return result;
}

/* REQUEST_N sent right behind the request, before the first response can exist (STREAM-9). */
static enum conf_result
stream_request_n_early(struct conf_ctx *ctx)
{
	struct wire_stream_request req = {
	    .type = RFD_FRAME_REQUEST_STREAM,
	    .kind = KIND_STREAM,
	    .initial_n = 1,
	    .method = FDT_METHOD_STREAM_FDS,
	};
	struct session s;
	struct event first;
	struct rfd_buf args, bytes;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = wire_stream_id(&s.w);

	rfd_buf_init(&args);
	rfd_buf_init(&bytes);
	put_stream_args(&args, 3, 1);
	req.args = args.data;
	req.args_len = args.len;
	wire_encode_stream_request(&bytes, id, &req);
	wire_encode_request_n(&bytes, id, 3);
	if (result == CONF_PASS)
		result = send_buf(&s, &bytes, NULL, 0, "REQUEST_STREAM and REQUEST_N in one write");
	rfd_buf_free(&args);
	rfd_buf_free(&bytes);
	if (result == CONF_PASS) {
		track(&s, id, false);
		result = expect_first(&s, id, false, &first);
	}
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_items(&s, id, 0, 3, 1, true);
	}
	session_close(&s);
	return result;
}

/* clientTimeoutMs elapses while the stream waits for credit: it goes on (STREAM-16, STREAM-7). */
static enum conf_result
stream_timeout_first_only(struct conf_ctx *ctx)
{
	enum { TIMEOUT_MS = 200, WAIT_MS = 1000 };
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = result == CONF_PASS ? open_stream(&s, 3, 1, 2, TIMEOUT_MS, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_items(&s, id, 0, 1, 1, false);
	}
	if (result == CONF_PASS)
		result = expect_quiet(&s, WAIT_MS,
		                      "while the stream had no credit and its clientTimeoutMs of "
		                      "200 ms elapsed, it must stay open and silent (STREAM-7, "
		                      "STREAM-16)");
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 10);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 1, 3, 1, true);
	session_close(&s);
	return result;
}

/* initialRequestN 0: the first response still goes, and leaves the balance at -1 (STREAM-2, -6). */
static enum conf_result
stream_initial_n_0(struct conf_ctx *ctx)
{
	static const char beyond[] = "an item beyond the client's credits (STREAM-6)";
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = result == CONF_PASS ? open_stream(&s, 2, 1, 0, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS) {
		result = expect_first(&s, id, false, &first);
		if (result == CONF_FAIL)
			conf_note(ctx, "the first response is due whatever the initial request N, "
			               "0 included (STREAM-2)");
	}
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_quiet(&s, QUIET_MS,
		                      "an item although the initial request N was 0 (STREAM-6)");
	}
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 1);
	if (result == CONF_PASS)
		result = expect_quiet(&s, QUIET_MS,
		                      "an item after REQUEST_N 1, which only paid for the first "
		                      "response that the initial request N of 0 left unpaid "
		                      "(STREAM-6)");
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 1);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 0, 1, 1, false);
	if (result == CONF_PASS)
		result = expect_quiet(&s, QUIET_MS, beyond);
	if (result == CONF_PASS)
		result = send_request_n(&s, id, 1);
	if (result == CONF_PASS)
		result = expect_items(&s, id, 1, 2, 1, true);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/* Credits with the top bit set are whole u32 values: past 2^31 - 1, no limit (STREAM-19). */
static enum conf_result
stream_credit_top_bit(struct conf_ctx *ctx)
{
	const uint32_t initial_top = 0x80000001u, request_top = 0x80000002u;
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id = result == CONF_PASS ? open_stream(&s, 3, 1, initial_top, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_items(&s, id, 0, 3, 1, true);
		if (result == CONF_FAIL)
			conf_note(ctx,
			          "initial request N 0x%x is a credit of 2^31 + 1, no limit, not "
			          "1 (STREAM-19)",
			          (unsigned)initial_top);
	}
	id = result == CONF_PASS ? open_stream(&s, 3, 1, 1, 0, NULL, 0) : 0;
	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = send_request_n(&s, id, request_top);
	}
	if (result == CONF_PASS) {
		result = expect_items(&s, id, 0, 3, 1, true);
		if (result == CONF_FAIL)
			conf_note(ctx,
			          "REQUEST_N 0x%x is a credit of 2^31 + 2, no limit, not 2 "
			          "(STREAM-19)",
			          (unsigned)request_top);
	}
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/* ==== 21.4 Cancellation ==== */

/* CANCEL when the server has no credit left: nothing more, and its FDs released (STREAM-10). */
static enum conf_result
stream_cancel(struct conf_ctx *ctx)
{
	struct session s;
	struct event first;
	enum conf_result result = session_open(ctx, &s, NULL);
	int baseline = result == CONF_PASS ? settled_baseline(&s) : -1;
	uint32_t id = result == CONF_PASS ? open_stream(&s, 10, 2, 3, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = expect_items(&s, id, 0, 2, 2, false);
	}
	if (result == CONF_PASS)
		result = send_cancel(&s, id);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS,
		                 "the server sent on a stream after the client's CANCEL, with no "
		                 "credit left (STREAM-10)");
	if (result == CONF_PASS)
		result = probe(&s);
	if (result == CONF_PASS)
		result = fds_back(&s, baseline, "after its CANCEL, the connection still open");
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/*
 * CANCEL while items may be on their way: those that come before the probe's
 * answer are claimed and closed, none after it, and the server releases
 * every FD of the stream (STREAM-10, STREAM-11).  With @at_once, the CANCEL
 * goes in the same write as the request.
 */
static enum conf_result
stream_cancel_racing(struct conf_ctx *ctx, bool at_once)
{
	struct session s;
	enum conf_result result = session_open(ctx, &s, NULL);
	int baseline = result == CONF_PASS ? settled_baseline(&s) : -1;
	uint32_t id =
	    result == CONF_PASS ? open_stream(&s, 1000, 2, FBTHRIFT_INITIAL_N, 0, NULL, 0) : 0;
	uint32_t probe_id = 0;
	unsigned items = 0;
	bool answered = false;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	while (result == CONF_PASS && !at_once && items == 0) {
		struct event ev;

		result = expect_event(&s, id, "first response or item", &ev);
		if (result == CONF_PASS && ev.kind == EV_ITEM)
			items++;
		event_free(&ev);
	}
	if (result == CONF_PASS)
		result = send_cancel(&s, id);
	if (result == CONF_PASS) {
		probe_id = case_send_call(ctx, &s.w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO,
		                          "probe", NULL, 0, NULL);
		result = probe_id ? CONF_PASS : CONF_FAIL;
	}
	if (result == CONF_PASS)
		track(&s, probe_id, false);
	/* Items the server wrote before it processed the CANCEL come before the probe's answer. */
	while (result == CONF_PASS && !answered) {
		struct event ev;
		int r = next_event(&s, conf_wait_ms(ctx), &ev);

		if (r <= 0)
			result = r < 0 ? CONF_FAIL
			               : conf_fail(ctx, "the probe sent after the CANCEL was not "
			                                "answered within the case's wait");
		else if (ev.stream_id == probe_id)
			answered = true;
		else if (ev.kind == EV_ITEM)
			items++;
		event_free(&ev);
	}
	conf_note(ctx, "%u items arrived before the probe's answer", items);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS,
		                 "the server went on sending on a stream after it had processed "
		                 "its CANCEL and answered a later request (STREAM-10)");
	if (result == CONF_PASS)
		result = fds_back(&s, baseline, "after its CANCEL, the connection still open");
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

static enum conf_result
stream_cancel_in_flight(struct conf_ctx *ctx)
{
	return stream_cancel_racing(ctx, false);
}

static enum conf_result
stream_cancel_at_once(struct conf_ctx *ctx)
{
	return stream_cancel_racing(ctx, true);
}

/* The client vanishes in the middle of a stream: the server releases it all and serves on. */
static enum conf_result
stream_peer_gone(struct conf_ctx *ctx)
{
	int baseline = case_fd_baseline(ctx);
	struct session s, next;
	struct event ev;
	enum conf_result result = session_open(ctx, &s, NULL);
	uint32_t id =
	    result == CONF_PASS ? open_stream(&s, 1000, 3, FBTHRIFT_INITIAL_N, 0, NULL, 0) : 0;

	if (result == CONF_PASS && !id)
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = expect_first(&s, id, false, &ev);
	if (result == CONF_PASS)
		event_free(&ev);
	session_close(&s);
	if (result == CONF_PASS && baseline >= 0 && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server keeps FDs of a stream whose client closed the "
		                        "connection in its middle (STREAM-11, ERR-1)");
	if (result == CONF_PASS) {
		result = session_open(ctx, &next, NULL);
		if (result == CONF_PASS)
			result = probe(&next);
		session_close(&next);
	}
	return result;
}

/* ==== 21.6 Sinks ==== */

/*
 * The answer to the sink request on @id: CONF_PASS with *first (the first
 * response) when the server serves sinks, CONF_SKIP when it declines them
 * as SINK-1 says, CONF_FAIL otherwise.
 */
static enum conf_result
read_sink_first(struct session *s, uint32_t id, struct event *first)
{
	enum conf_result result = expect_event(s, id, "first response", first);

	if (result != CONF_PASS)
		return result;
	if (first->kind == EV_ERROR && first->value == RFD_ERROR_INVALID && first->error_decoded &&
	    first->error.has_code && first->error.code == RFD_ERROR_CODE_REQUEST_PARSING_FAILURE) {
		event_free(first);
		return conf_skip(s->ctx, "the server declines sinks: it answers sinkFds with ERROR "
		                         "0x204 (1, 6) as SINK-1 allows");
	}
	result = check_first(s, first, false);
	if (result != CONF_PASS)
		event_free(first);
	return result;
}

/* Open sinkFds(@tag) on @s and read its answer as read_sink_first() does. */
static enum conf_result
start_sink(struct session *s, const char *tag, const int *fds, size_t n_fds, uint32_t *id,
           struct event *first)
{
	*id = open_sink(s, tag, fds, n_fds);
	if (!*id)
		return CONF_FAIL;
	return read_sink_first(s, *id, first);
}

/* The sink's credit: the REQUEST_N that comes when the server has none to spare yet. */
static enum conf_result
await_credit(struct session *s, uint32_t id, uint32_t *credits)
{
	while (*credits == 0) {
		struct event ev;
		enum conf_result result = expect_event(s, id, "REQUEST_N (SINK-4)", &ev);

		if (result != CONF_PASS)
			return result;
		if (ev.kind != EV_REQUEST_N)
			result = conf_fail(s->ctx,
			                   "while the harness waited for credit for its next "
			                   "item, the server sent %s on the sink",
			                   event_names[ev.kind]);
		else if (ev.value == 0)
			result =
			    conf_fail(s->ctx, "the server sent REQUEST_N 0 on the sink (SINK-4)");
		else
			*credits = ev.value;
		event_free(&ev);
		if (result != CONF_PASS)
			return result;
	}
	return CONF_PASS;
}

/* The items of @tags (with @fds[i] FDs each, @n_fds[i] of them), each when there is credit. */
struct sink_item {
	const char *tag;
	const int *fds;
	size_t n_fds;
};

static enum conf_result
send_items(struct session *s, uint32_t id, const struct sink_item *items, size_t n)
{
	uint32_t credits = 0;
	enum conf_result result = CONF_PASS;

	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		result = await_credit(s, id, &credits);
		if (result == CONF_PASS)
			result =
			    send_sink_item(s, id, items[i].tag, items[i].fds, items[i].n_fds, NULL);
		credits--;
	}
	return result;
}

/* The final response, after REQUEST_N frames the server may still send: its report. */
static enum conf_result
expect_final(struct session *s, uint32_t id, const char *tag, size_t n_fds,
             struct fdt_report *report)
{
	enum conf_result result;
	struct event ev;
	const char *why = "";

	for (;;) {
		result = expect_event(s, id, "final response", &ev);
		if (result != CONF_PASS)
			return result;
		if (ev.kind != EV_REQUEST_N)
			break;
		event_free(&ev);
	}
	if (ev.kind != EV_FINAL)
		result = conf_fail(s->ctx,
		                   "the sink's completion was answered by %s, not a final "
		                   "response (SINK-7)",
		                   event_names[ev.kind]);
	else if (ev.flags != LAST_FLAGS)
		result =
		    conf_fail(s->ctx,
		              "the final response has flags 0x%03x, not NEXT|COMPLETE|METADATA "
		              "(SINK-7)",
		              ev.flags);
	else if (ev.md.payload_kind != RFD_PAYLOAD_RESPONSE &&
	         ev.md.payload_kind != RFD_PAYLOAD_NONE)
		result = conf_fail(s->ctx, "the final response's payloadMetadata is neither "
		                           "responseMetadata nor absent (SINK-7)");
	else if (ev.fds.n || (ev.md.fd.has_num && ev.md.fd.num_fds != 0))
		result =
		    conf_fail(s->ctx, "sinkFds's final response carries FDs (SVC-SINK-1, EXT-5)");
	else if (fdt_decode_report_result(ev.data.data, ev.data.len, report, &why) < 0)
		result = conf_fail(s->ctx, "the final response is not {0: FdReport}: %s", why);
	else if (strcmp(report->tag, tag) != 0)
		result =
		    conf_fail(s->ctx, "the final report's tag is \"%s\", not \"%s\" (SVC-SINK-1)",
		              report->tag, tag);
	else if (report->n_fds != n_fds)
		result = conf_fail(s->ctx,
		                   "the final report lists %zu FDs, %zu came with the items "
		                   "(SVC-SINK-1)",
		                   report->n_fds, n_fds);
	event_free(&ev);
	return result;
}

/* sinkFds with @items: the whole sink up to its final report. */
static enum conf_result
sink_run(struct session *s, const char *tag, const struct sink_item *items, size_t n, size_t n_fds,
         struct fdt_report *report)
{
	struct event first;
	uint32_t id;
	enum conf_result result = start_sink(s, tag, NULL, 0, &id, &first);

	if (result != CONF_PASS)
		return result;
	event_free(&first);
	result = send_items(s, id, items, n);
	if (result == CONF_PASS)
		result = send_sink_complete(s, id);
	if (result == CONF_PASS)
		result = expect_final(s, id, tag, n_fds, report);
	if (result == CONF_PASS)
		result =
		    expect_quiet(s, QUIET_MS, "nothing follows a sink's final response (SINK-7)");
	return result;
}

/* sinkFds without items, or declined: either is conforming (SINK-1, SINK-3, SINK-7). */
static enum conf_result
sink_served_or_declined(struct conf_ctx *ctx)
{
	struct fdt_report report = {0};
	struct session s;
	enum conf_result result = session_open(ctx, &s, NULL);

	if (result == CONF_PASS)
		result = sink_run(&s, "no-items", NULL, 0, 0, &report);
	if (result == CONF_SKIP) {
		conf_note(ctx, "%s", ctx->reason);
		ctx->reason[0] = '\0';
		result = probe(&s);
	}
	fdt_report_free(&report);
	session_close(&s);
	return result;
}

static enum conf_result
sink_items_no_fds(struct conf_ctx *ctx)
{
	static const struct sink_item items[] = {
	    {"one", NULL, 0}, {"two", NULL, 0}, {"three", NULL, 0}};
	struct fdt_report report = {0};
	struct session s;
	enum conf_result result = session_open(ctx, &s, NULL);

	if (result == CONF_PASS)
		result = sink_run(&s, "no-fds", items, 3, 0, &report);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	fdt_report_free(&report);
	session_close(&s);
	return result;
}

/* sinkFds with FDs on its request: closed before the first response (SVC-SINK-3). */
static enum conf_result
sink_request_fds(struct conf_ctx *ctx)
{
	int readers[2], writers[2];
	struct session s;
	struct event first;
	enum conf_result result;
	uint32_t id = 0;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = session_open(ctx, &s, NULL);
	if (result == CONF_PASS)
		result = start_sink(&s, "request-fds", writers, 2, &id, &first);
	case_close_all(writers, 2);
	if (result == CONF_PASS) {
		event_free(&first);
		for (size_t i = 0; result == CONF_PASS && i < 2; i++)
			if (!case_closed_now(readers[i]))
				result = conf_fail(
				    ctx,
				    "FD %zu of the sinkFds request was still open when its "
				    "first response arrived (SVC-SINK-3)",
				    i);
	}
	if (result == CONF_PASS)
		result = send_sink_complete(&s, id);
	if (result == CONF_PASS) {
		struct fdt_report report = {0};

		result = expect_final(&s, id, "request-fds", 0, &report);
		fdt_report_free(&report);
	}
	session_close(&s);
	case_close_all(readers, 2);
	return result;
}

/* The client's ERROR 0x203 ends the sink: no final response, nothing kept (SINK-9). */
static enum conf_result
sink_cancel(struct conf_ctx *ctx)
{
	static const struct sink_item items[] = {{"before-cancel", NULL, 0}};
	struct session s;
	struct event first;
	struct rfd_buf bytes;
	enum conf_result result = session_open(ctx, &s, NULL);
	int baseline = result == CONF_PASS ? settled_baseline(&s) : -1;
	uint32_t id = 0;

	if (result == CONF_PASS)
		result = start_sink(&s, "cancelled", NULL, 0, &id, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = send_items(&s, id, items, 1);
	}
	if (result == CONF_PASS) {
		rfd_buf_init(&bytes);
		wire_encode_error(&bytes, id, RFD_ERROR_CANCELED, NULL, 0);
		result = send_buf(&s, &bytes, NULL, 0, "ERROR 0x203 on the sink");
		rfd_buf_free(&bytes);
	}
	while (result == CONF_PASS) {
		struct event ev;
		int r = next_event(&s, QUIET_MS, &ev);

		if (r < 0)
			result = CONF_FAIL;
		else if (r == 1 && ev.kind != EV_REQUEST_N)
			result =
			    conf_fail(ctx,
			              "after the client's ERROR 0x203 on the sink the server sent "
			              "%s on it (SINK-9)",
			              event_names[ev.kind]);
		event_free(&ev);
		if (r == 0)
			break;
	}
	if (result == CONF_PASS)
		result = probe(&s);
	if (result == CONF_PASS)
		result = fds_back(&s, baseline, "after the client cancelled the sink");
	session_close(&s);
	return result;
}

/* Skips when the server declines sinks; otherwise leaves a sink served to its end. */
static enum conf_result
require_sinks(struct conf_ctx *ctx)
{
	struct fdt_report report = {0};
	struct session s;
	enum conf_result result = session_open(ctx, &s, NULL);

	if (result == CONF_PASS)
		result = sink_run(&s, "probe-sinks", NULL, 0, 0, &report);
	fdt_report_free(&report);
	session_close(&s);
	return result;
}

static enum conf_result
sink_wrong_kind(struct conf_ctx *ctx)
{
	static const struct refused_stream list[] = {
	    {.what = "sinkFds as REQUEST_RESPONSE with kind 0",
	     .type = RFD_FRAME_REQUEST_RESPONSE,
	     .method = FDT_METHOD_SINK_FDS,
	     .kind = KIND_RR,
	     .args = "\x18\x01x\x00",
	     .args_len = 4,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	    {.what = "sinkFds as REQUEST_STREAM with kind 4",
	     .type = RFD_FRAME_REQUEST_STREAM,
	     .method = FDT_METHOD_SINK_FDS,
	     .kind = KIND_STREAM,
	     .args = "\x18\x01x\x00",
	     .args_len = 4,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	    {.what = "sinkFds as REQUEST_CHANNEL with kind 7 (bidirectional, declined)",
	     .type = RFD_FRAME_REQUEST_CHANNEL,
	     .method = FDT_METHOD_SINK_FDS,
	     .kind = KIND_BIDI,
	     .args = "\x18\x01x\x00",
	     .args_len = 4,
	     .rpc_code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE},
	    {.what = "echo as REQUEST_CHANNEL with kind 6",
	     .type = RFD_FRAME_REQUEST_CHANNEL,
	     .method = FDT_METHOD_ECHO,
	     .kind = KIND_SINK,
	     .args = "\x18\x01x\x00",
	     .args_len = 4,
	     .rpc_code = RFD_ERROR_CODE_WRONG_RPC_KIND},
	};
	enum conf_result result = require_sinks(ctx);

	if (result != CONF_PASS)
		return result;
	return refused_all(ctx, NULL, list, sizeof(list) / sizeof(list[0]));
}

/* ==== 21.8 The extensions ==== */

/* The answer in EXT-1's form: names separated by single commas, no white space, each once. */
static bool
answer_well_formed(struct rfd_slice answer)
{
	const uint8_t *p = answer.ptr, *end = answer.ptr + answer.len;

	if (answer.len == 0)
		return true;
	while (p < end) {
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		const uint8_t *stop = comma ? comma : end;
		struct rfd_slice rest = {stop, (size_t)(end - stop)};
		char name[32];

		if (stop == p || (size_t)(stop - p) >= sizeof(name))
			return false;
		for (const uint8_t *c = p; c < stop; c++)
			if (*c == ' ' || *c == '\t')
				return false;
		memcpy(name, p, (size_t)(stop - p));
		name[stop - p] = '\0';
		if (comma &&
		    (comma + 1 == end ||
		     wire_extension_named((struct rfd_slice){comma + 1, rest.len - 1}, name)))
			return false;
		p = comma ? comma + 1 : end;
	}
	return true;
}

/*
 * On a connection that offered @offer: open sinkFds, and give its first
 * response's answer (*answered false when there is none).  Skips when the
 * server declines sinks.  The sink is completed and its final report read.
 */
static enum conf_result
sink_answer(struct conf_ctx *ctx, const char *offer, bool *answered, char *answer, size_t size)
{
	struct fdt_report report = {0};
	struct session s;
	struct event first;
	uint32_t id = 0;
	enum conf_result result = session_open(ctx, &s, offer);

	*answered = false;
	answer[0] = '\0';
	if (result == CONF_PASS)
		result = start_sink(&s, "answer", NULL, 0, &id, &first);
	if (result == CONF_PASS) {
		*answered = first.has_answer;
		snprintf(answer, size, "%.*s", (int)first.answer.len,
		         (const char *)first.answer.ptr);
		if (first.has_answer && !answer_well_formed(first.answer))
			result =
			    conf_fail(ctx,
			              "the answer \"%s\" is not names separated by single commas, "
			              "without white space, each once (EXT-3, EXT-1)",
			              answer);
		event_free(&first);
	}
	if (result == CONF_PASS)
		result = send_sink_complete(&s, id);
	if (result == CONF_PASS)
		result = expect_final(&s, id, "answer", 0, &report);
	fdt_report_free(&report);
	session_close(&s);
	return result;
}

static bool
answer_names(const char *answer, const char *name)
{
	return wire_extension_named((struct rfd_slice){(const uint8_t *)answer, strlen(answer)},
	                            name);
}

/* The answer to `sink,exception`: well formed, only offered names (EXT-3, EXT-4). */
static enum conf_result
ext_answer(struct conf_ctx *ctx)
{
	char answer[128];
	bool answered;
	enum conf_result result =
	    sink_answer(ctx, EXT_SINK "," EXT_EXCEPTION, &answered, answer, sizeof(answer));

	if (result != CONF_PASS)
		return result;
	if (!answered)
		return conf_skip(ctx, "the server accepts no extension: its sink's first response "
		                      "has no rocketfd.fds answer (21.8 makes them optional)");
	conf_note(ctx, "the server accepts \"%s\"", answer);
	for (const char *p = answer; *p;) {
		size_t n = strcspn(p, ",");

		if (!(n == strlen(EXT_SINK) && strncmp(p, EXT_SINK, n) == 0) &&
		    !(n == strlen(EXT_EXCEPTION) && strncmp(p, EXT_EXCEPTION, n) == 0))
			return conf_fail(ctx,
			                 "the answer \"%s\" names \"%.*s\", which was not offered "
			                 "(EXT-4)",
			                 answer, (int)n, p);
		p += n + (p[n] == ',');
	}
	return CONF_PASS;
}

/* An offer with white space, empty items and an unknown name reads as `sink,exception` (EXT-2). */
static enum conf_result
ext_offer_parsing(struct conf_ctx *ctx)
{
	char answer[128];
	bool answered;
	enum conf_result result = sink_answer(ctx, EXT_SINK, &answered, answer, sizeof(answer));

	if (result != CONF_PASS)
		return result;
	if (!answered || !answer_names(answer, EXT_SINK))
		return conf_skip(ctx, "the server does not accept the extension sink when offered "
		                      "alone (21.8 makes it optional)");
	result = sink_answer(ctx, " sink ,,\texception\t, future-name", &answered, answer,
	                     sizeof(answer));
	if (result != CONF_PASS)
		return result;
	if (!answered || !answer_names(answer, EXT_SINK))
		return conf_fail(
		    ctx,
		    "offered \" sink ,,\\texception\\t, future-name\", the server did not "
		    "accept sink (answer \"%s\"): spaces, tabs and empty items around "
		    "names are ignored (EXT-2)",
		    answer);
	if (answer_names(answer, "future-name"))
		return conf_fail(ctx,
		                 "the server accepted the unknown name future-name (EXT-2, EXT-4)");
	return CONF_PASS;
}

/* Without an offer of sink, no sink answer accepts it (EXT-4), and no FD comes back (EXT-5). */
static enum conf_result
ext_not_offered(struct conf_ctx *ctx)
{
	static const char *const offers[] = {NULL, EXT_EXCEPTION, "sinks,Sink"};
	char answer[128];
	bool answered;
	enum conf_result result = CONF_PASS;

	for (size_t i = 0; result == CONF_PASS && i < sizeof(offers) / sizeof(offers[0]); i++) {
		result = sink_answer(ctx, offers[i], &answered, answer, sizeof(answer));
		if (result == CONF_PASS && answered && answer_names(answer, EXT_SINK))
			result =
			    conf_fail(ctx,
			              "offered %s%s%s, the server accepted sink (answer \"%s\") "
			              "(EXT-4)",
			              offers[i] ? "\"" : "nothing", offers[i] ? offers[i] : "",
			              offers[i] ? "\"" : "", answer);
		if (result == CONF_PASS && !offers[i] && answered && answer[0])
			result = conf_fail(
			    ctx, "offered nothing, the server accepted \"%s\" (EXT-4)", answer);
	}
	return result;
}

/* A sink of @offer whose first response must accept sink: CONF_SKIP when it does not. */
static enum conf_result
start_agreed_sink(struct conf_ctx *ctx, struct session *s, const char *tag, uint32_t *id)
{
	struct event first;
	enum conf_result result = session_open(ctx, s, EXT_SINK);

	if (result == CONF_PASS)
		result = start_sink(s, tag, NULL, 0, id, &first);
	if (result != CONF_PASS)
		return result;
	if (!first.has_answer || !wire_extension_named(first.answer, EXT_SINK))
		result =
		    conf_skip(ctx, "the server does not accept the extension sink (21.8 makes it "
		                   "optional)");
	event_free(&first);
	return result;
}

/* FDs on sink items under the agreement: each reported in order, and closed (SVC-SINK-1, -2). */
static enum conf_result
ext_sink_fds(struct conf_ctx *ctx)
{
	enum { N_PIPES = 3 };
	int readers[N_PIPES], writers[N_PIPES], null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int item_b[3];
	struct sink_item items[4];
	struct fdt_report report = {0};
	const int *sent[5];
	struct session s;
	enum conf_result result;
	uint32_t id = 0;

	if (null_fd < 0 || case_pipes(readers, writers, N_PIPES) < 0) {
		if (null_fd >= 0)
			close(null_fd);
		return conf_skip(ctx, "the harness cannot make pipes");
	}
	item_b[0] = null_fd;
	item_b[1] = writers[1];
	item_b[2] = writers[2];
	items[0] = (struct sink_item){"a", &writers[0], 1};
	items[1] = (struct sink_item){"b", item_b, 3};
	items[2] = (struct sink_item){"c", NULL, 0};
	items[3] = (struct sink_item){"d", &null_fd, 1};
	sent[0] = &writers[0];
	sent[1] = &null_fd;
	sent[2] = &writers[1];
	sent[3] = &writers[2];
	sent[4] = &null_fd;
	result = start_agreed_sink(ctx, &s, "sink-fds", &id);
	if (result == CONF_PASS)
		result = send_items(&s, id, items, 4);
	case_close_all(writers, N_PIPES);
	if (result == CONF_PASS)
		result = send_sink_complete(&s, id);
	if (result == CONF_PASS)
		result = expect_final(&s, id, "sink-fds", 5, &report);
	for (size_t i = 0; result == CONF_PASS && i < 5; i++) {
		struct stat st;

		/* The copies sent are gone from the harness; compare with what stays. */
		if (sent[i] == &null_fd) {
			fstat(null_fd, &st);
		} else {
			size_t k = (size_t)(sent[i] - writers);

			fstat(readers[k], &st);
			if ((int64_t)st.st_ino != report.fds[i].ino ||
			    report.fds[i].type != FIFO_TYPE)
				result = conf_fail(ctx,
				                   "entry %zu of the final report is not the pipe "
				                   "sent with its item (SVC-SINK-1)",
				                   i);
			continue;
		}
		if ((int64_t)st.st_dev != report.fds[i].dev ||
		    (int64_t)st.st_ino != report.fds[i].ino)
			result = conf_fail(ctx,
			                   "entry %zu of the final report is not /dev/null, which "
			                   "came with its item (SVC-SINK-1)",
			                   i);
	}
	for (size_t k = 0; result == CONF_PASS && k < N_PIPES; k++)
		if (!case_closed_now(readers[k]))
			result =
			    conf_fail(ctx,
			              "pipe %zu, sent with a sink item, was still open when the "
			              "final response arrived (SVC-SINK-2)",
			              k);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	fdt_report_free(&report);
	session_close(&s);
	case_close_all(readers, N_PIPES);
	close(null_fd);
	return result;
}

/* The ERROR that fails a sink, after any REQUEST_N still on its way. */
static enum conf_result
expect_sink_failed(struct session *s, uint32_t id, const char *what)
{
	struct event ev;
	enum conf_result result;

	for (;;) {
		result = expect_event(s, id, "ERROR", &ev);
		if (result != CONF_PASS)
			return result;
		if (ev.kind != EV_REQUEST_N)
			break;
		event_free(&ev);
	}
	if (ev.kind != EV_ERROR)
		result = conf_fail(s->ctx, "%s: the server answered with %s, not ERROR 0x204", what,
		                   event_names[ev.kind]);
	else if (ev.value != RFD_ERROR_INVALID || !ev.error_decoded || !ev.error.has_category ||
	         ev.error.category != RFD_ERROR_CATEGORY_INVALID_REQUEST || !ev.error.has_code ||
	         ev.error.code != RFD_ERROR_CODE_REQUEST_PARSING_FAILURE)
		result =
		    conf_fail(s->ctx,
		              "%s: expected ERROR 0x204 with ResponseRpcError (1, 6), got ERROR "
		              "0x%x",
		              what, ev.value);
	event_free(&ev);
	return result;
}

/* Sink item FDs without the agreement: claimed, closed, the sink failed (EXT-7, SINK-10). */
static enum conf_result
ext_sink_fds_unagreed(struct conf_ctx *ctx)
{
	static const char what[] = "a sink item with 1 FD, the extension sink not offered";
	struct session s;
	struct event first;
	int reader, writer;
	uint32_t id = 0, credits = 0;
	enum conf_result result;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = session_open(ctx, &s, NULL);
	if (result == CONF_PASS)
		result = start_sink(&s, "unagreed", NULL, 0, &id, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = await_credit(&s, id, &credits);
	}
	if (result == CONF_PASS)
		result = send_sink_item(&s, id, "unagreed", &writer, 1, NULL);
	close(writer);
	if (result == CONF_PASS)
		result = expect_sink_failed(&s, id, what);
	if (result == CONF_PASS && !case_closed_now(reader))
		result = conf_fail(ctx, "%s: its FD was still open when the ERROR arrived (EXT-7)",
		                   what);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "a failed sink gets no final response (SINK-10)");
	if (result == CONF_PASS)
		result = probe(&s);
	session_close(&s);
	close(reader);
	return result;
}

/* A sink item whose claim fails, under the agreement: ERROR 0x204, FDs closed (SINK-10). */
static enum conf_result
ext_sink_item_mismatch(struct conf_ctx *ctx)
{
	static const char what[] = "a sink item with 2 FDs claiming 1";
	int readers[2], writers[2];
	struct rfd_fd_metadata claim;
	struct session s;
	uint32_t id = 0, credits = 0;
	enum conf_result result;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = start_agreed_sink(ctx, &s, "mismatch", &id);
	if (result == CONF_PASS)
		result = await_credit(&s, id, &credits);
	claim = fd_claim(s.w.send_seq, 1);
	if (result == CONF_PASS)
		result = send_sink_item(&s, id, "mismatch", writers, 2, &claim);
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = expect_sink_failed(&s, id, what);
	for (size_t i = 0; result == CONF_PASS && i < 2; i++)
		if (!case_closed_now(readers[i]))
			result = conf_fail(ctx,
			                   "%s: FD %zu was still open when the ERROR arrived "
			                   "(SINK-10, FD-ASSOC-5)",
			                   what, i);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "a failed sink gets no final response (SINK-10)");
	if (result == CONF_PASS)
		result = probe(&s);
	session_close(&s);
	case_close_all(readers, 2);
	return result;
}

/* ==== 21.6 Sinks: a request with COMPLETE, items that are not results ==== */

/* sinkFds(@tag) as one REQUEST_CHANNEL frame whose flags also have @extra. */
static uint32_t
open_sink_flagged(struct session *s, const char *tag, uint16_t extra)
{
	struct wire_stream_request req = {
	    .type = RFD_FRAME_REQUEST_CHANNEL,
	    .kind = KIND_SINK,
	    .initial_n = 2,
	    .method = FDT_METHOD_SINK_FDS,
	};
	struct rfd_buf args, bytes;
	enum conf_result result;
	uint32_t id = wire_stream_id(&s->w);

	rfd_buf_init(&args);
	rfd_buf_init(&bytes);
	put_string_field(&args, 1, tag);
	req.args = args.data;
	req.args_len = args.len;
	wire_encode_stream_request(&bytes, id, &req);
	/* The u16 of type and flags is at offset 7 (4.1). */
	bytes.data[7] |= (uint8_t)(extra >> 8);
	bytes.data[8] |= (uint8_t)(extra & 0xff);
	result = send_buf(s, &bytes, NULL, 0, "sinkFds with extra flags");
	rfd_buf_free(&args);
	rfd_buf_free(&bytes);
	if (result != CONF_PASS)
		return 0;
	track(s, id, true);
	return id;
}

/* Whether the first response @first of a sink accepts the extension sink. */
static bool
accepts_sink(const struct event *first)
{
	return first->has_answer && wire_extension_named(first->answer, EXT_SINK);
}

/* A REQUEST_CHANNEL with COMPLETE is served as any sink: items until the completion (SINK-11). */
static enum conf_result
sink_channel_complete(struct conf_ctx *ctx)
{
	static const char tag[] = "channel-complete";
	struct fdt_report report = {0};
	struct sink_item item = {"one", NULL, 0};
	struct session s;
	struct event first;
	int reader = -1, writer = -1;
	uint32_t id = 0;
	enum conf_result result = session_open(ctx, &s, EXT_SINK);

	if (result == CONF_PASS) {
		id = open_sink_flagged(&s, tag, RFD_FLAG_COMPLETE);
		result = id ? read_sink_first(&s, id, &first) : CONF_FAIL;
	}
	if (result == CONF_PASS) {
		if (accepts_sink(&first) && wire_pipe(&reader, &writer) == 0) {
			item.fds = &writer;
			item.n_fds = 1;
		}
		event_free(&first);
		result = send_items(&s, id, &item, 1);
		if (result == CONF_FAIL)
			conf_note(ctx,
			          "the request had COMPLETE, which a server does not look at: "
			          "the sink takes items until the client's completion (SINK-11)");
	}
	if (writer >= 0)
		close(writer);
	if (result == CONF_PASS)
		result = send_sink_complete(&s, id);
	if (result == CONF_PASS)
		result = expect_final(&s, id, tag, item.n_fds, &report);
	if (result == CONF_PASS && item.n_fds && !case_closed_now(reader))
		result = conf_fail(ctx, "the pipe sent with the item was still open when the final "
		                        "response arrived (SVC-SINK-2)");
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "nothing follows a sink's final response (SINK-7)");
	fdt_report_free(&report);
	session_close(&s);
	if (reader >= 0)
		close(reader);
	return result;
}

/* What a crafted sink item has in StreamPayloadMetadata field 3, payloadMetadata. */
enum item_payload {
	ITEM_NO_PAYLOAD_METADATA, /* field 3 absent */
	ITEM_RESPONSE,            /* responseMetadata {} */
	ITEM_EMPTY_UNION,         /* a union with no member */
	ITEM_EXCEPTION,           /* exceptionMetadata {name, what}, no metadata member */
};

/* StreamPayloadMetadata {3: @payload, 5: @claim when not NULL}. */
static void
put_item_metadata(struct rfd_buf *out, enum item_payload payload,
                  const struct rfd_fd_metadata *claim)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (payload != ITEM_NO_PAYLOAD_METADATA) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 3);
		rfd_cw_struct_begin(&w);
		if (payload == ITEM_RESPONSE) {
			rfd_cw_field(&w, RFD_CT_STRUCT, 1);
			rfd_cw_struct_begin(&w);
			rfd_cw_struct_end(&w);
		} else if (payload == ITEM_EXCEPTION) {
			rfd_cw_field(&w, RFD_CT_STRUCT, 2);
			rfd_cw_struct_begin(&w);
			rfd_cw_field_string(&w, 1, "TApplicationException");
			rfd_cw_field_string(&w, 2, "the client's item generator failed");
			rfd_cw_struct_end(&w);
		}
		rfd_cw_struct_end(&w);
	}
	if (claim) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 5);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i64(&w, 1, claim->fd_seq);
		rfd_cw_field_i32(&w, 2, claim->num_fds);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

/* A sink item PAYLOAD NEXT on @id: @metadata (NULL: no METADATA flag), @data, @fds. */
static enum conf_result
send_crafted_item(struct session *s, uint32_t id, const struct rfd_buf *metadata,
                  const struct rfd_buf *data, const int *fds, size_t n_fds, const char *what)
{
	struct rfd_frame f = {
	    .stream_id = id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | (metadata ? RFD_FLAG_METADATA : 0),
	    .has_metadata = metadata != NULL,
	    .data = {data->data, data->len},
	};
	int r;

	if (metadata)
		f.metadata = (struct rfd_slice){metadata->data, metadata->len};
	r = wire_send_frame(&s->w, &f, fds, n_fds);
	if (r < 0)
		return conf_fail(s->ctx, "cannot send %s: %s", what, strerror(-r));
	return CONF_PASS;
}

/* A sink item that is neither a result nor an exception. */
struct bad_item {
	const char *what;
	bool no_metadata;         /* no METADATA flag */
	const char *raw_metadata; /* metadata bytes as given (malformed), or NULL */
	size_t raw_len;
	enum item_payload payload; /* otherwise: the payloadMetadata written */
	const char *raw_data;      /* data bytes as given, or NULL for {0: "bad"} */
	size_t raw_data_len;
	bool fd;          /* with a pipe write end, when the sink accepted sink */
	bool application; /* the method's failure: ERROR 0x201 (SVC-SINK-4) */
};

/*
 * The ERROR 0x201 that ends a sink whose method failed, after any REQUEST_N
 * on its way; @rule names the requirement for the reason.
 */
static enum conf_result
expect_sink_application_error(struct session *s, uint32_t id, const char *what, const char *rule)
{
	struct event ev;
	enum conf_result result;

	for (;;) {
		result = expect_event(s, id, "ERROR", &ev);
		if (result != CONF_PASS)
			return result;
		if (ev.kind != EV_REQUEST_N)
			break;
		event_free(&ev);
	}
	if (ev.kind != EV_ERROR)
		result = conf_fail(s->ctx, "%s: the server answered with %s, not ERROR 0x201 (%s)",
		                   what, event_names[ev.kind], rule);
	else if (ev.value != RFD_ERROR_APPLICATION_ERROR)
		result = conf_fail(s->ctx,
		                   "%s: expected ERROR 0x201, the method's failure (%s), got ERROR "
		                   "0x%x",
		                   what, rule, ev.value);
	event_free(&ev);
	return result;
}

/* Open a sink, send @bad as its first item: the sink fails, its FD closed (SINK-12, SVC-SINK-4). */
static enum conf_result
refused_item(struct session *s, const struct bad_item *bad)
{
	struct rfd_fd_metadata claim;
	struct rfd_buf metadata, data;
	struct event first;
	int reader = -1, writer = -1;
	uint32_t id = 0, credits = 0;
	bool with_fd = false;
	enum conf_result result = start_sink(s, "bad-item", NULL, 0, &id, &first);

	if (result != CONF_PASS)
		return result;
	with_fd = bad->fd && accepts_sink(&first) && wire_pipe(&reader, &writer) == 0;
	event_free(&first);
	result = await_credit(s, id, &credits);
	claim = wire_claim(&s->w, 1);
	rfd_buf_init(&metadata);
	rfd_buf_init(&data);
	if (bad->raw_metadata)
		rfd_buf_append(&metadata, bad->raw_metadata, bad->raw_len);
	else
		put_item_metadata(&metadata, bad->payload, with_fd ? &claim : NULL);
	if (bad->raw_data)
		rfd_buf_append(&data, bad->raw_data, bad->raw_data_len);
	else
		put_string_field(&data, 0, "bad");
	if (result == CONF_PASS)
		result = send_crafted_item(s, id, bad->no_metadata ? NULL : &metadata, &data,
		                           with_fd ? &writer : NULL, with_fd ? 1 : 0, bad->what);
	rfd_buf_free(&metadata);
	rfd_buf_free(&data);
	if (writer >= 0)
		close(writer);
	if (result == CONF_PASS)
		result = bad->application
		             ? expect_sink_application_error(s, id, bad->what, "SVC-SINK-4")
		             : expect_sink_failed(s, id, bad->what);
	if (result == CONF_PASS && with_fd && !case_closed_now(reader))
		result =
		    conf_fail(s->ctx, "%s: its FD was still open when the ERROR arrived (%s)",
		              bad->what, bad->application ? "SVC-SINK-4" : "SINK-12, FD-CARRY-3");
	if (result == CONF_PASS)
		result = expect_quiet(s, QUIET_MS, "a failed sink gets no final response");
	if (reader >= 0)
		close(reader);
	return result;
}

/* An item without payloadMetadata is a result: reported, and the sink goes on (SINK-12). */
static enum conf_result
item_without_payload_metadata(struct session *s)
{
	static const char tag[] = "no-payload-metadata";
	struct fdt_report report = {0};
	struct rfd_fd_metadata claim;
	struct rfd_buf metadata, data;
	struct event first;
	int reader = -1, writer = -1;
	uint32_t id = 0, credits = 0;
	bool with_fd = false;
	enum conf_result result = start_sink(s, tag, NULL, 0, &id, &first);

	if (result != CONF_PASS)
		return result;
	with_fd = accepts_sink(&first) && wire_pipe(&reader, &writer) == 0;
	event_free(&first);
	result = await_credit(s, id, &credits);
	claim = wire_claim(&s->w, 1);
	rfd_buf_init(&metadata);
	rfd_buf_init(&data);
	put_item_metadata(&metadata, ITEM_NO_PAYLOAD_METADATA, with_fd ? &claim : NULL);
	put_string_field(&data, 0, tag);
	if (result == CONF_PASS)
		result = send_crafted_item(s, id, &metadata, &data, with_fd ? &writer : NULL,
		                           with_fd ? 1 : 0, "a sink item without payloadMetadata");
	rfd_buf_free(&metadata);
	rfd_buf_free(&data);
	if (writer >= 0)
		close(writer);
	if (result == CONF_PASS)
		result = send_sink_complete(s, id);
	if (result == CONF_PASS) {
		result = expect_final(s, id, tag, with_fd ? 1 : 0, &report);
		if (result == CONF_FAIL)
			conf_note(s->ctx,
			          "the sink had one item without payloadMetadata, which is a "
			          "result (SINK-12)");
	}
	if (result == CONF_PASS && with_fd && !case_closed_now(reader))
		result = conf_fail(s->ctx, "the pipe sent with the item without payloadMetadata "
		                           "was still open when the final response arrived "
		                           "(SVC-SINK-2)");
	fdt_report_free(&report);
	if (reader >= 0)
		close(reader);
	return result;
}

static enum conf_result
sink_bad_items(struct conf_ctx *ctx)
{
	static const struct bad_item items[] = {
	    {.what = "a sink item without metadata", .no_metadata = true},
	    {.what = "a sink item whose metadata is a truncated struct",
	     .raw_metadata = "\x3c\x1c",
	     .raw_len = 2},
	    {.what = "a sink item whose payloadMetadata is an empty union",
	     .payload = ITEM_EMPTY_UNION,
	     .fd = true},
	    {.what = "a sink item whose data is a truncated struct",
	     .payload = ITEM_RESPONSE,
	     .raw_data = "\x18\x05\x61",
	     .raw_data_len = 3,
	     .fd = true,
	     .application = true},
	    {.what = "a sink item whose data is the empty struct 00, without field 0",
	     .payload = ITEM_RESPONSE,
	     .raw_data = "\x00",
	     .raw_data_len = 1,
	     .fd = true,
	     .application = true},
	};
	struct session s;
	enum conf_result result = session_open(ctx, &s, EXT_SINK);

	for (size_t i = 0; result == CONF_PASS && i < sizeof(items) / sizeof(items[0]); i++)
		result = refused_item(&s, &items[i]);
	if (result == CONF_PASS)
		result = item_without_payload_metadata(&s);
	if (result == CONF_PASS)
		result = probe(&s);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	return result;
}

/* A client's item with exceptionMetadata ends the sink as its ERROR does (SINK-13). */
static enum conf_result
sink_exception_item(struct conf_ctx *ctx)
{
	static const char what[] = "a sink item with exceptionMetadata";
	struct rfd_buf metadata, data;
	struct session s;
	struct event first;
	uint32_t id = 0, credits = 0;
	enum conf_result result = session_open(ctx, &s, NULL);
	int baseline = result == CONF_PASS ? settled_baseline(&s) : -1;

	if (result == CONF_PASS)
		result = start_sink(&s, "exception-item", NULL, 0, &id, &first);
	if (result == CONF_PASS) {
		event_free(&first);
		result = await_credit(&s, id, &credits);
	}
	rfd_buf_init(&metadata);
	rfd_buf_init(&data);
	put_item_metadata(&metadata, ITEM_EXCEPTION, NULL);
	rfd_buf_append(&data, "\0", 1);
	if (result == CONF_PASS)
		result = send_crafted_item(&s, id, &metadata, &data, NULL, 0, what);
	rfd_buf_free(&metadata);
	rfd_buf_free(&data);
	while (result == CONF_PASS) {
		struct event ev;
		int r = next_event(&s, QUIET_MS, &ev);

		if (r < 0)
			result = CONF_FAIL;
		else if (r == 1 && ev.kind != EV_REQUEST_N)
			result = conf_fail(ctx,
			                   "after %s, which ends the sink as the client's ERROR "
			                   "does, the server sent %s on it (SINK-13)",
			                   what, event_names[ev.kind]);
		event_free(&ev);
		if (r == 0)
			break;
	}
	if (result == CONF_PASS)
		result = probe(&s);
	if (result == CONF_PASS)
		result = fds_back(&s, baseline, "after the client's exception item ended the sink");
	session_close(&s);
	return result;
}

/* ==== 21.8 FDs on sink items: the bound of sinkFds' report (17.6) ==== */

enum {
	BOUND_FIRST_FDS = 200, /* the first item's FDs: within the report's 253 */
	BOUND_SECOND_FDS = 54, /* the second item's: 254 in all */
};

/*
 * Items with 200 and then 54 FDs under the agreement: the second passes 253
 * and ends the sink with ERROR 0x201, every FD of both items closed by then
 * (SVC-SINK-5).  Each item sends one pipe write end many times in one
 * SCM_RIGHTS message, so that the harness holds 4 FDs, not 254.
 */
static enum conf_result
ext_sink_fds_bound(struct conf_ctx *ctx)
{
	static const char what[] = "sink items with 200 and then 54 FDs";
	int readers[2], writers[2], first[BOUND_FIRST_FDS], second[BOUND_SECOND_FDS];
	struct sink_item items[2];
	struct session s;
	uint32_t id = 0;
	enum conf_result result;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	for (size_t i = 0; i < BOUND_FIRST_FDS; i++)
		first[i] = writers[0];
	for (size_t i = 0; i < BOUND_SECOND_FDS; i++)
		second[i] = writers[1];
	items[0] = (struct sink_item){"two-hundred", first, BOUND_FIRST_FDS};
	items[1] = (struct sink_item){"fifty-four", second, BOUND_SECOND_FDS};
	result = start_agreed_sink(ctx, &s, "fds-bound", &id);
	if (result == CONF_PASS)
		result = send_items(&s, id, items, 2);
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = expect_sink_application_error(&s, id, what, "SVC-SINK-5");
	for (size_t k = 0; result == CONF_PASS && k < 2; k++)
		if (!case_closed_now(readers[k]))
			result =
			    conf_fail(ctx,
			              "%s: a copy of the pipe sent with item %zu was still open "
			              "when the ERROR arrived (SVC-SINK-5)",
			              what, k);
	if (result == CONF_PASS)
		result =
		    expect_quiet(&s, QUIET_MS, "a failed sink gets no final response (SVC-SINK-5)");
	if (result == CONF_PASS)
		result = probe(&s);
	if (result == CONF_PASS)
		result = no_stray_fds(&s);
	session_close(&s);
	case_close_all(readers, 2);
	return result;
}

/* ==== 10. Limits ==== */

enum {
	STALLED_STREAMS = MAX_TRACKED,
	STALLED_BOUND = 5120, /* LIMIT-14: FDs held for unwritten items, beyond those before */
	STALLED_WATCH_MS = 1000,
	STALLED_SERVER_FDS = 16384, /* room for a server without the bound to show it */
};

/* Let the launched server open @want FDs, as far as its hard limit allows. */
static void
raise_target_nofile(struct conf_ctx *ctx, rlim_t want)
{
	struct rlimit limit;

	if (prlimit(ctx->target_pid, RLIMIT_NOFILE, NULL, &limit) < 0 || limit.rlim_cur >= want)
		return;
	limit.rlim_cur = limit.rlim_max < want ? limit.rlim_max : want;
	if (prlimit(ctx->target_pid, RLIMIT_NOFILE, &limit, NULL) == 0)
		conf_note(ctx, "the server may open %llu FDs", (unsigned long long)limit.rlim_cur);
}

/*
 * Streams of 253 FDs an item that the client never reads: the server holds
 * a bounded number of FDs for them however many there are (LIMIT-14), and
 * has them all back once the client left.
 */
static enum conf_result
limit_stalled_streams(struct conf_ctx *ctx)
{
	struct session s;
	enum conf_result result;
	int baseline = -1, peak = 0;
	long long until;

	raise_target_nofile(ctx, STALLED_SERVER_FDS);
	result = session_open(ctx, &s, NULL);
	if (result == CONF_PASS)
		baseline = settled_baseline(&s);
	if (result == CONF_PASS && baseline < 0)
		result = conf_skip(ctx, "the server's open FDs cannot be counted");
	for (int i = 0; result == CONF_PASS && i < STALLED_STREAMS; i++)
		if (!open_stream(&s, 10000, 253, 10000, 0, NULL, 0))
			result = CONF_FAIL;
	/* Until the count stopped growing for 200 ms (or a second passed), once it grew. */
	until = now_ms() + STALLED_WATCH_MS;
	for (int still = 0;
	     result == CONF_PASS && now_ms() < until && (still < 10 || peak <= baseline + 253);) {
		int n = target_count_fds(ctx->target_pid);

		still = n > peak ? 0 : still + 1;
		peak = n > peak ? n : peak;
		poll(NULL, 0, 20);
	}
	if (result == CONF_PASS) {
		conf_note(ctx, "the server held %d FDs before the streams, at most %d with them",
		          baseline, peak);
		if (peak - baseline > STALLED_BOUND)
			result =
			    conf_fail(ctx,
			              "with %d streams of streamFds(10000, 253) that the client "
			              "does not read, the server held %d FDs more than before, "
			              "above %d (LIMIT-14)",
			              STALLED_STREAMS, peak - baseline, STALLED_BOUND);
	}
	session_close(&s);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server kept FDs of the streams after their client "
		                        "left (STREAM-11)");
	return result;
}

/* ---- The table ---- */

#define CASE(id, section, requirements, sends, needs, run)                                         \
	{                                                                                          \
		id, CONF_SERVER, section, requirements, CONF_MUST, sends, needs, NULL, run, NULL   \
	}

const struct conf_case conf_stream_server_cases[] = {
    /* 10 Limits */
    {"limit/stalled-streams-fds", CONF_SERVER, "10", "LIMIT-14,STREAM-11", CONF_SHOULD,
     "8 x streamFds(10000, 253) with initial request N 10000, never read; expects the server's "
     "FD count at most 5120 above what it was, and back once the connection closes",
     CONF_NEEDS_LAUNCH, NULL, limit_stalled_streams, NULL},
    /* 17.5 streamFds */
    CASE("stream/bad-args", "17.5", "SVC-STREAM-2,META-11,FD-CARRY-3,OWN-3",
         "streamFds(-1, 1), (1, -1), (1, 254) and with a string argument, each with a pipe write "
         "end; expects ERROR 0x204 (1, 6) and no first response, each FD closed",
         0, stream_bad_args),
    CASE("stream/request-fds", "17.5", "SVC-STREAM-3,OWN-2",
         "streamFds(1, 0) with 2 pipe write ends; expects both closed when the first response "
         "arrives",
         0, stream_request_fds),

    /* 21.2 Streams */
    CASE("stream/items-0", "21.2", "STREAM-2,STREAM-3,STREAM-4,SVC-STREAM-1,FRAME-14",
         "streamFds(3, 0) with initial request N 101; expects the first response 29 20 with data "
         "00, 3 items 29 20 tagged 0 to 2, then the end",
         0, stream_items_0),
    CASE("stream/items-1", "21.2",
         "SVC-STREAM-1,STREAM-3,FD-SEND-8,FD-SEND-9,META-9,EXEC-2,OWN-4,STREAM-11",
         "streamFds(2, 1); expects each item's pipe read end to match its report (dev, ino, FIFO, "
         "read-only, cloexec) and read EOF; the server's FD count back",
         0, stream_items_1),
    CASE("stream/items-3", "21.2", "SVC-STREAM-1,FD-SEND-1,FD-SEND-9,STREAM-11",
         "streamFds(3, 3); expects 3 FDs per item in one group each, matching the reports", 0,
         stream_items_3),
    CASE("stream/items-253", "21.2", "SVC-STREAM-1,FD-SEND-1,FD-SEND-8",
         "streamFds(2, 253); expects 253 FDs per item in one group each, matching the reports", 0,
         stream_items_253),
    CASE("stream/no-items", "21.2", "STREAM-4,SVC-STREAM-1",
         "streamFds(0, 1); expects the first response then the end (COMPLETE on it, or 28 40), "
         "nothing after",
         0, stream_no_items),
    CASE("stream/two-at-once", "21.2", "FD-SEND-9,STREAM-3,FRAME-14",
         "streamFds(3, 1) and streamFds(3, 2) on two streams at once; expects each item's FDs to "
         "match its own report whatever the interleaving",
         0, stream_two_at_once),
    CASE("stream/claim-mismatch", "21.2", "ERR-10,ERR-12,OWN-3",
         "streamFds with 2 pipe write ends claiming 1; expects ERROR 0x204 (1, 6), no first "
         "response, both closed, the connection usable",
         0, stream_claim_mismatch),
    CASE("stream/wrong-kind", "21.2", "META-12,META-16,META-20",
         "streamFds as REQUEST_RESPONSE, as REQUEST_STREAM with kind 0 and without kind, as "
         "REQUEST_FNF, each with an FD; expects ERROR 0x204 (1, 9) or nothing, each FD closed",
         0, stream_wrong_kind),

    /* 21.3 Credits */
    CASE("stream/credits", "21.3", "STREAM-6,STREAM-7",
         "streamFds(5, 1) with initial request N 2, then REQUEST_N 2 and 5; expects 1, 2 and 2 "
         "items, none beyond the credits in 300 ms",
         0, stream_credits),
    CASE("stream/credit-first-only", "21.3", "STREAM-6",
         "streamFds(2, 1) with initial request N 1; expects no item until REQUEST_N 1, then one "
         "per REQUEST_N 1",
         0, stream_credit_first_only),
    CASE("stream/request-n-early", "21.3", "STREAM-9",
         "REQUEST_STREAM streamFds(3, 1) with initial request N 1 and REQUEST_N 3 in one write; "
         "expects 3 items and the end",
         0, stream_request_n_early),
    CASE("stream/timeout-first-only", "21.3", "STREAM-16,STREAM-7",
         "streamFds(3, 1) with clientTimeoutMs 200 and credit for 1 item; waits 1 s, then "
         "REQUEST_N 10; expects the 2 other items and the end",
         0, stream_timeout_first_only),
    CASE("stream/initial-n-0", "21.3", "STREAM-2,STREAM-6",
         "streamFds(2, 1) with initial request N 0; expects the first response, no item until a "
         "second REQUEST_N 1, then one item per REQUEST_N 1",
         0, stream_initial_n_0),
    CASE("stream/credit-top-bit", "21.3", "STREAM-19,FRAME-23",
         "streamFds(3, 1) with initial request N 0x80000001, then streamFds(3, 1) with 1 and "
         "REQUEST_N 0x80000002; expects all 3 items and the end each time",
         0, stream_credit_top_bit),

    /* 21.4 Cancellation */
    CASE("stream/cancel", "21.4", "STREAM-10,STREAM-11,OWN-5",
         "streamFds(10, 2) with credit for 2 items, then CANCEL; expects nothing more on the "
         "stream and the server's FD count back with the connection open",
         0, stream_cancel),
    CASE("stream/cancel-in-flight", "21.4", "STREAM-10,STREAM-11,OWN-5",
         "streamFds(1000, 2) with initial request N 101, CANCEL after the first item, then echo; "
         "expects nothing on the stream after echo's answer, the server's FD count back",
         0, stream_cancel_in_flight),
    CASE("stream/cancel-at-once", "21.4", "STREAM-10,STREAM-11",
         "REQUEST_STREAM streamFds(1000, 2) and CANCEL back to back, then echo; expects nothing "
         "on the stream after echo's answer, the server's FD count back",
         0, stream_cancel_at_once),
    CASE("stream/peer-gone", "21.4", "STREAM-11,ERR-1,ERR-5",
         "streamFds(1000, 3), closes the connection after the first response; expects the "
         "server's FD count back and a new connection served",
         0, stream_peer_gone),

    /* 17.6 sinkFds, 21.6 Sinks */
    CASE("sink/request-fds", "17.6", "SVC-SINK-3,OWN-2",
         "sinkFds with 2 pipe write ends; expects both closed when the first response arrives "
         "(skipped when the server declines sinks)",
         0, sink_request_fds),
    CASE("sink/served-or-declined", "21.6", "SINK-1,SINK-3,SINK-7,SVC-SINK-1",
         "sinkFds(\"no-items\") completed at once; expects ERROR 0x204 (1, 6), or the first "
         "response 29 20 with data 00 and a final report with no FD",
         0, sink_served_or_declined),
    CASE("sink/items", "21.6", "SINK-3,SINK-4,SINK-7,SVC-SINK-1",
         "sinkFds with 3 items without FDs, each sent when a REQUEST_N allows; expects the final "
         "report (skipped when the server declines sinks)",
         0, sink_items_no_fds),
    CASE("sink/cancel", "21.6", "SINK-9",
         "sinkFds with an item, then ERROR 0x203 from the client; expects no final response and "
         "the server's FD count back (skipped when the server declines sinks)",
         0, sink_cancel),
    CASE("sink/wrong-kind", "21.6", "META-12,META-14",
         "sinkFds as REQUEST_RESPONSE, as REQUEST_STREAM, as REQUEST_CHANNEL with kind 7, and echo "
         "with kind 6, each with an FD; expects ERROR 0x204 (1, 9), (1, 9), (1, 6), (1, 9) "
         "(skipped when the server declines sinks)",
         0, sink_wrong_kind),
    CASE(
        "sink/channel-complete", "21.6", "SINK-11",
        "sinkFds as REQUEST_CHANNEL with COMPLETE (1d 40), offering sink; expects REQUEST_N, takes "
        "an item (with a pipe under sink) and the completion, expects the final report (skipped "
        "when the server declines sinks)",
        0, sink_channel_complete),
    CASE("sink/bad-items", "21.6", "SINK-12,SVC-SINK-4,FD-CARRY-3",
         "five sinks with one item each: no metadata, truncated metadata, an empty "
         "payloadMetadata (expects ERROR 0x204 (1, 6)), data a truncated struct, data the empty "
         "struct 00 (expects ERROR 0x201); the last three with a pipe under sink, closed by the "
         "ERROR; then an item without payloadMetadata, taken as a result (skipped when the "
         "server declines sinks)",
         0, sink_bad_items),
    CASE("sink/exception-item", "21.6", "SINK-13,SINK-9",
         "sinkFds with an item whose payloadMetadata is exceptionMetadata; expects nothing on the "
         "sink but REQUEST_N, and the server's FD count back (skipped when the server declines "
         "sinks)",
         0, sink_exception_item),

    /* 21.8 Extensions */
    CASE("ext/answer", "21.8", "EXT-3,EXT-4",
         "offers sink,exception in SETUP; expects the sink's answer, if any, in EXT-1's form and "
         "naming only offered extensions (skipped when there is none)",
         0, ext_answer),
    CASE("ext/offer-parsing", "21.8", "EXT-2,EXT-4",
         "offers \" sink ,,\\texception\\t, future-name\"; expects sink accepted as when offered "
         "alone, future-name not (skipped when sink is not accepted)",
         0, ext_offer_parsing),
    CASE("ext/not-offered", "21.8", "EXT-4,EXT-5",
         "sinkFds without an offer, offering exception, offering sinks,Sink; expects sink never "
         "accepted and no FD on the final responses (skipped when the server declines sinks)",
         0, ext_not_offered),
    CASE("ext/sink-fds", "21.8", "SVC-SINK-1,SVC-SINK-2,EXT-3,STREAM-11",
         "offers sink; sends items with 1, 3, 0 and 1 FDs; expects all 5 reported in order and "
         "the pipes closed by the final response (skipped when sink is not accepted)",
         0, ext_sink_fds),
    CASE("ext/sink-fds-bound", "21.8", "SVC-SINK-5",
         "offers sink; sends an item with 200 copies of a pipe write end, then one with 54 "
         "copies of another; expects ERROR 0x201, no final response, every copy closed by the "
         "ERROR (skipped when sink is not accepted)",
         0, ext_sink_fds_bound),
    CASE("ext/sink-fds-unagreed", "21.8", "EXT-7,SINK-10,FD-CARRY-3",
         "no offer; sends a sink item with a pipe write end; expects ERROR 0x204 (1, 6), the FD "
         "closed, no final response (skipped when the server declines sinks)",
         0, ext_sink_fds_unagreed),
    CASE("ext/sink-item-mismatch", "21.8", "SINK-10,FD-ASSOC-5",
         "offers sink; sends a sink item with 2 FDs claiming 1; expects ERROR 0x204 (1, 6), both "
         "closed, the connection usable (skipped when sink is not accepted)",
         0, ext_sink_item_mismatch),
};

const size_t conf_n_stream_server_cases =
    sizeof(conf_stream_server_cases) / sizeof(conf_stream_server_cases[0]);
