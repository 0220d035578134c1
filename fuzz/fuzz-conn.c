/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the connection core (conn.h) on either side, driven by a
 * script (see conn-script.h) of reads split at chosen points, FD groups,
 * frames built from descriptions, API calls, partial writes and EOF.
 *
 * The FDs are real (fdtrack.h).  Beside the core runs a model of the input
 * side written from the protocol's rules: it sees the same bytes and groups,
 * decodes the same frames, applies each message's FD claim to its own queue
 * of groups, and so knows which group every message must get and which
 * groups must be closed.  After every step the target checks that model
 * against the core (queued FD count, the FDs each delivered message carries,
 * every FD closed that should be and none that should not, no FD closed
 * twice), the requests in flight, the callbacks' order, and the memory held.
 * Streams are modelled too, on both sides: a client's first response,
 * items, credit, completion, abandoned streams (claimed and closed, at most
 * max_in_flight remembered) and contract violations; a server's credit,
 * REQUEST_N, CANCEL and the return of every stream call.  So are sinks: a
 * client's first response with its answer to the offer of extensions, its
 * credit, items, completion and final response; a server's items (claimed,
 * refused outside the agreement or the credit), completion and ends; and the
 * agreement on FDs both ways (messages with FDs outside it are refused, their
 * FDs closed).  What the core
 * writes is decoded too: every frame must decode, and every FD group must
 * go with the message that claims it, with the right count and sequence
 * number, in the order the groups are written (a stream's items are
 * stamped only when they leave its queue).  At the end everything is freed
 * and every FD must have been closed exactly once, with no allocation left.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compact.h"
#include "conn-script.h"
#include "conn.h"
#include "fdtrack.h"
#include "frame.h"
#include "fuzz.h"
#include "metadata.h"

#define PROTOCOL_KEY 0xf09f9a80u

static const char METADATA_MIME[] = "application/x-rocket-metadata+compact";
static const char DATA_MIME[] = "application/x-rocket-payload";

enum {
	MAX_GROUPS = FDTRACK_POOL_SIZE,
	MAX_HELD = 64,
	MAX_CALLS = 512,
	MAX_REASSEMBLIES = 8,
	FD_MAP_SIZE = 1 << 16,
	MEMORY_BASE = 2 << 20,
	MEMORY_PER_BYTE = 64,
	MEMORY_PER_FD = 256,
	DRAIN_MAX_WRITES = 4096,
	FRAGMENT_BASE = 16,
	TRACE_LINE_MAX = 200,
	FAILURES = RFD_FAIL_INTERNAL + 1,
	BIG_UNIT = 4096,      /* a SEND with the big flag has 4096 zero bytes per length unit */
	BIG_BUDGET = 4 << 20, /* big bytes per run: past the core's 1 MiB compaction, yet fast */
	BUDGET_MAX = 4096,
	STREAM_QUEUE_MAX = 4, /* the core's: messages one stream may have waiting */
};

/* ---- Byte buffers of the harness's own (plain malloc, never failed) ---- */

struct bytes {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static void
bytes_append(struct bytes *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (b->cap - b->len < len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *grown;

		while (cap - b->len < len)
			cap *= 2;
		grown = realloc(b->data, cap);
		FUZZ_CHECK(grown, "out of memory");
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void
bytes_consume(struct bytes *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* ---- The state of one run ---- */

enum fd_origin {
	FD_RECEIVED = 1, /* given to rfd_conn_recv_fds() */
	FD_SENDING,      /* given to send_request / send_reply */
};

struct fd_info {
	uint8_t origin;
	int group; /* index in run.groups or run.sends */
	int held;  /* the held message that owns it, or -1 */
	bool taken;
};

enum group_state {
	GROUP_QUEUED,     /* received, not claimed */
	GROUP_ORPHANED,   /* older than a claim: must be closed */
	GROUP_MISMATCHED, /* claimed with another count: must be closed */
	GROUP_TAKEN,      /* claimed by a message: delivered with it, or closed */
	GROUP_DELIVERED,  /* in a message the harness holds or held */
	GROUP_DROPPED,    /* refused or cleared by a failed connection: must be closed */
};

struct group {
	int64_t seq;
	size_t n;
	size_t first; /* in run.group_fds */
	uint8_t state;
};

/*
 * A group given to the core to send.  Its fdSeqNum is the count of FDs
 * written before it: the core stamps a stream item's FDs only when the item
 * leaves its stream queue, so groups may go out in another order than given.
 */
struct send_group {
	size_t n;
	size_t first;   /* in run.send_fds */
	int64_t seq;    /* once written: the fdSeqNum it must carry */
	uint64_t start; /* stream offsets of the chunk that carried it */
	uint64_t end;
	bool written;
	bool dropped; /* closed without being written */
};

struct held {
	struct rfd_msg *msg;
	uint32_t stream;
	int group; /* -1: no FDs */
};

/* A client's call as the model sees it. */
struct call {
	uint32_t stream;
	bool abandoned;
	bool is_stream;
	bool is_sink;
	bool started;   /* a stream's or sink's first response came */
	bool agreed;    /* a sink's first response accepted the extension sink */
	bool completed; /* a sink's completion was queued */
	/* A stream's: items the server may still send; a sink's: items the client may still send.
	 */
	uint32_t credits;
	uint32_t order; /* when it was abandoned */
};

enum srv_state {
	SRV_OPEN,      /* a request the application holds */
	SRV_CANCELLED, /* the same, after CANCEL */
	SRV_FLOWING,   /* a stream past its first response */
	SRV_ENDING,    /* a stream whose end was given, until it is written */
};

/* A server's request, stream or sink as the model sees it. */
struct srv {
	uint32_t stream;
	bool is_stream;
	bool is_sink;
	bool completed; /* a sink's client completed it */
	uint8_t state;
	uint32_t credits; /* a sink's items the client may send */
	/* A stream's balance (21.1): initial request n - 1, plus each REQUEST_N, minus its items.
	 */
	int64_t balance;
};

enum outcome {
	OUT_NONE,   /* metadata read, no FDs claimed */
	OUT_UNREAD, /* metadata did not decode: nothing claimed */
	OUT_OK,     /* the claimed group was taken */
	OUT_FAIL,   /* the claim failed */
};

/* A message the model saw complete during the current call. */
struct model_msg {
	uint32_t stream;
	uint8_t outcome;
	int group;
	bool refused; /* its FDs came outside the agreement, or it ends a sink: no message */
};

/* A message the core delivered during the current call. */
struct delivery {
	uint32_t stream;
	int status;
	int group;
};

struct run {
	enum rfd_role role;
	struct rfd_limits limits;
	unsigned extensions; /* the core's: offered (client) or accepted (server) */
	unsigned offer;      /* server: what the script's SETUP frames offer */
	unsigned peer_offer; /* server: what the first frame, a SETUP, offered */
	struct rfd_conn *conn;
	int error; /* the core's error before the current step */
	bool ready_seen;
	bool failed_seen;
	int failed_err;
	size_t frames_traced;
	uint64_t input_total;
	size_t big_total;

	int fd_index[FD_MAP_SIZE]; /* FD -> index in fds[] + 1 */
	struct fd_info fds[FDTRACK_POOL_SIZE];

	struct group groups[MAX_GROUPS];
	size_t n_groups;
	size_t queue_head; /* groups[queue_head..] are the queued ones */
	int64_t next_seq;
	int group_fds[FDTRACK_POOL_SIZE];
	size_t n_group_fds;

	struct send_group sends[MAX_GROUPS];
	size_t n_sends;
	size_t written_order[MAX_GROUPS]; /* indexes in sends, in the order written */
	size_t n_written;
	int64_t send_seq;
	int send_fds[FDTRACK_POOL_SIZE];
	size_t n_send_fds;

	struct held held[MAX_HELD];
	size_t n_held;
	struct call calls[MAX_CALLS]; /* client: calls awaiting replies or items, abandoned too */
	size_t n_calls;
	struct call
	    tracked[MAX_CALLS]; /* client: the model's calls as it reads the step's frames */
	size_t n_tracked;
	uint32_t abandon_clock;
	struct srv open[MAX_CALLS]; /* server: requests not yet answered, and streams */
	size_t n_open;
	int cancel_events; /* server: CANCELLED events of the step, and the model's */
	int model_cancels;

	struct model_msg *model_msgs;
	size_t n_model_msgs, cap_model_msgs;
	struct delivery *deliveries;
	size_t n_deliveries, cap_deliveries;

	/* The model's copy of the input side. */
	struct bytes pending;
	struct rfd_reassembly reassembly[MAX_REASSEMBLIES];
	bool first_frame_done;

	/* What the core wrote. */
	struct bytes wire;
	uint64_t wire_base;      /* stream offset of wire.data[0] */
	uint64_t wire_total;     /* bytes written so far */
	uint64_t wire_failed_at; /* bytes written when the core failed */
	size_t wire_next_written;
	bool wire_first_done;
	uint64_t wire_message_start; /* stream offset of the message being reassembled */
	struct rfd_reassembly wire_reassembly;
};

static struct run run;

/* The arguments or data of big messages, large enough to push the output past 1 MiB. */
static uint8_t big_zeros[255 * BIG_UNIT];

/* FUZZ_CONN_LOG=1 in the environment prints every step, for reading a crash. */
static bool log_steps;
/*
 * FUZZ_WORKAROUNDS, a comma-separated list, lets fuzzing go past known bugs
 * while they are open: "no-alloc-fail" ignores the inputs' allocation
 * failures; "lenient-after-failure" does not check the FD claims of what is
 * written after the connection failed.
 */
static bool no_alloc_fail;
static bool lenient_after_failure;

static void log_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
log_step(const char *fmt, ...)
{
	va_list ap;

	if (!log_steps)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- Small helpers ---- */

static int64_t
seq_add(int64_t seq, size_t n)
{
	return (int64_t)(((uint64_t)seq + n) & (uint64_t)INT64_MAX);
}

static bool
seq_before(int64_t a, int64_t b)
{
	uint64_t distance = ((uint64_t)b - (uint64_t)a) & (uint64_t)INT64_MAX;

	return distance != 0 && distance < (uint64_t)1 << 62;
}

static struct fd_info *
info_of(int fd)
{
	FUZZ_CHECK(fd >= 0 && fd < FD_MAP_SIZE && run.fd_index[fd] > 0,
	           "FD %d is not one the harness handed out", fd);
	return &run.fds[run.fd_index[fd] - 1];
}

static int
issue_fd(enum fd_origin origin, int group)
{
	int fd = fdtrack_issue();
	struct fd_info *info;

	if (fd < 0)
		return -1;
	FUZZ_CHECK(fd < FD_MAP_SIZE, "pool FD %d too high", fd);
	run.fd_index[fd] = (int)fdtrack_count();
	info = &run.fds[fdtrack_count() - 1];
	info->origin = (uint8_t)origin;
	info->group = group;
	info->held = -1;
	info->taken = false;
	return fd;
}

static bool
group_all_closed(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fdtrack_closes(fds[i]) != 1)
			return false;
	return true;
}

static size_t
model_queued(void)
{
	size_t n = 0;

	for (size_t i = run.queue_head; i < run.n_groups; i++)
		n += run.groups[i].n;
	return n;
}

static void *
grow_array(void *array, size_t *cap, size_t elem_size)
{
	void *grown;

	*cap = *cap ? *cap * 2 : 64;
	grown = realloc(array, *cap * elem_size);
	FUZZ_CHECK(grown, "out of memory");
	return grown;
}

/* ---- Callbacks ---- */

static void
on_ready(void *user)
{
	FUZZ_CHECK(!run.failed_seen, "ready after failed");
	FUZZ_CHECK(!run.ready_seen, "ready twice");
	run.ready_seen = true;
}

static void
on_failed(void *user, int err, const char *why)
{
	FUZZ_CHECK(!run.failed_seen, "failed twice");
	FUZZ_CHECK(err < 0 && why && why[0], "failed with %d and reason '%s'", err,
	           why ? why : "NULL");
	run.failed_seen = true;
	run.failed_err = err;
}

static void
on_trace(void *user, const char *line)
{
	log_step("  core: %s", line);
	FUZZ_CHECK(line && (line[0] == '<' || line[0] == '>') && strlen(line) < TRACE_LINE_MAX,
	           "odd trace line");
	if (line[0] == '<')
		run.frames_traced++;
}

/* The group a delivered message's FDs form: they must be one received group, whole and in order. */
static int
delivered_group(const struct rfd_msg *msg)
{
	size_t n = rfd_msg_fd_count(msg);
	const struct fd_info *info;
	const struct group *g;

	if (n == 0)
		return -1;
	info = info_of(rfd_msg_fd(msg, 0));
	FUZZ_CHECK(info->origin == FD_RECEIVED, "a message delivered an FD the harness sent");
	g = &run.groups[info->group];
	FUZZ_CHECK(g->n == n, "a message delivered %zu FDs of a group of %zu", n, g->n);
	for (size_t i = 0; i < n; i++) {
		int fd = rfd_msg_fd(msg, i);

		FUZZ_CHECK(fd == run.group_fds[g->first + i],
		           "a message's FDs are not one received group in order");
		FUZZ_CHECK(fdtrack_closes(fd) == 0, "a message delivered a closed FD %d", fd);
		FUZZ_CHECK(info_of(fd)->held < 0, "FD %d delivered twice", fd);
	}
	return info->group;
}

static void
record_delivery(uint32_t stream, int status, int group)
{
	if (run.n_deliveries == run.cap_deliveries)
		run.deliveries =
		    grow_array(run.deliveries, &run.cap_deliveries, sizeof(*run.deliveries));
	run.deliveries[run.n_deliveries++] = (struct delivery){stream, status, group};
}

static void
hold_message(struct rfd_msg *msg, uint32_t stream, int group)
{
	size_t len;

	FUZZ_CHECK(rfd_msg_data(msg, &len) && rfd_msg_method(msg) && rfd_msg_error_text(msg),
	           "message without data or strings");
	FUZZ_CHECK(rfd_msg_fd(msg, rfd_msg_fd_count(msg)) == -1, "FD past the end");
	if (run.n_held == MAX_HELD) {
		rfd_msg_free(msg);
		return;
	}
	run.held[run.n_held] = (struct held){msg, stream, group};
	for (size_t i = 0; i < rfd_msg_fd_count(msg); i++)
		info_of(rfd_msg_fd(msg, i))->held = (int)run.n_held;
	run.n_held++;
}

static struct srv *
find_open(uint32_t stream)
{
	for (size_t i = 0; i < run.n_open; i++)
		if (run.open[i].stream == stream)
			return &run.open[i];
	return NULL;
}

/* A request not yet answered (its answer may be given) at @stream? */
static bool
stream_is_open(uint32_t stream)
{
	const struct srv *srv = find_open(stream);

	return srv && (srv->state == SRV_OPEN || srv->state == SRV_CANCELLED);
}

static void
remove_open(uint32_t stream)
{
	struct srv *srv = find_open(stream);

	if (srv)
		*srv = run.open[--run.n_open];
}

static void
on_request(void *user, struct rfd_msg *msg)
{
	enum rfd_msg_kind kind = rfd_msg_kind(msg);
	int group;

	FUZZ_CHECK(run.role == RFD_ROLE_SERVER, "a client got a request");
	FUZZ_CHECK(run.ready_seen && !run.failed_seen, "request before ready or after failed");
	FUZZ_CHECK(kind == RFD_MSG_REQUEST || kind == RFD_MSG_ONEWAY, "request of kind %d", kind);
	FUZZ_CHECK(msg->stream_id % 2 == 1, "request on stream %u", msg->stream_id);
	group = delivered_group(msg);
	FUZZ_CHECK((rfd_msg_call_kind(msg) == RFD_CALL_ONEWAY) == (kind == RFD_MSG_ONEWAY),
	           "request of kind %d as call kind %d", kind, rfd_msg_call_kind(msg));
	if (kind == RFD_MSG_REQUEST) {
		/* A stream ending on this id: the core forgot it, as it takes a new request. */
		if (find_open(msg->stream_id) && find_open(msg->stream_id)->state == SRV_ENDING)
			remove_open(msg->stream_id);
		FUZZ_CHECK(!find_open(msg->stream_id), "second request on open stream %u delivered",
		           msg->stream_id);
		FUZZ_CHECK(run.n_open < MAX_CALLS, "too many open requests");
		bool sink = rfd_msg_call_kind(msg) == RFD_CALL_SINK;

		run.open[run.n_open++] = (struct srv){
		    .stream = msg->stream_id,
		    .is_stream = rfd_msg_call_kind(msg) == RFD_CALL_STREAM,
		    .is_sink = sink,
		    .state = SRV_OPEN,
		    /* A stream's are set by the model from the frame; a sink has none yet. */
		    .credits = sink ? 0 : UINT32_MAX,
		};
		FUZZ_CHECK(rfd_msg_extensions(msg) == (run.extensions & run.peer_offer),
		           "a request says extensions %u were agreed, the model %u",
		           rfd_msg_extensions(msg), run.extensions & run.peer_offer);
	}
	record_delivery(msg->stream_id, 0, group);
	hold_message(msg, msg->stream_id, group);
}

static struct call *
find_call(uint32_t stream)
{
	for (size_t i = 0; i < run.n_calls; i++)
		if (run.calls[i].stream == stream)
			return &run.calls[i];
	return NULL;
}

static void
on_reply(void *user, uint32_t stream, int status, struct rfd_msg *msg)
{
	struct call *call = find_call(stream);
	int group = -1;

	FUZZ_CHECK(run.role == RFD_ROLE_CLIENT, "a server got a reply");
	FUZZ_CHECK(run.ready_seen && !run.failed_seen, "reply before ready or after failed");
	FUZZ_CHECK(call, "reply for stream %u, which has no call", stream);
	FUZZ_CHECK(!call->abandoned, "reply for abandoned stream %u", stream);
	FUZZ_CHECK(!call->is_stream, "reply for stream %u, which is a stream", stream);
	FUZZ_CHECK((status == 0) == (msg != NULL), "reply status %d with message %p", status,
	           (void *)msg);
	FUZZ_CHECK(status == 0 || status == -EBADFD || status == -EPROTO, "reply status %d",
	           status);
	if (msg) {
		enum rfd_msg_kind kind = rfd_msg_kind(msg);

		FUZZ_CHECK(kind == RFD_MSG_REPLY || kind == RFD_MSG_EXCEPTION ||
		               kind == RFD_MSG_ERROR,
		           "reply of kind %d", kind);
		FUZZ_CHECK(msg->stream_id == stream, "reply message on another stream");
		group = delivered_group(msg);
	}
	record_delivery(stream, status, group);
	if (msg)
		hold_message(msg, stream, group);
}

static void
on_stream(void *user, uint32_t stream, int status, struct rfd_msg *msg)
{
	struct call *call = find_call(stream);
	int group = -1;

	FUZZ_CHECK(run.role == RFD_ROLE_CLIENT, "a server got a stream message");
	FUZZ_CHECK(run.ready_seen && !run.failed_seen,
	           "stream message before ready or after failed");
	FUZZ_CHECK(call && (call->is_stream || call->is_sink),
	           "stream message for stream %u, which has no stream or sink", stream);
	FUZZ_CHECK(!call->abandoned, "stream message for abandoned stream %u", stream);
	FUZZ_CHECK(status == 0 || (msg == NULL && (status == -EBADFD || status == -EPROTO)),
	           "stream status %d with message %p", status, (void *)msg);
	if (msg) {
		enum rfd_msg_kind kind = rfd_msg_kind(msg);

		FUZZ_CHECK(kind == RFD_MSG_REPLY || kind == RFD_MSG_EXCEPTION ||
		               kind == RFD_MSG_ERROR || kind == RFD_MSG_STREAM_ITEM,
		           "stream message of kind %d", kind);
		FUZZ_CHECK(msg->stream_id == stream, "stream message on another stream");
		group = delivered_group(msg);
	}
	record_delivery(stream, status, group);
	if (msg)
		hold_message(msg, stream, group);
}

static void
on_stream_event(void *user, uint32_t stream, enum rfd_conn_stream_event event)
{
	const struct srv *srv = find_open(stream);
	const struct call *call = find_call(stream);

	if (run.role == RFD_ROLE_CLIENT) {
		FUZZ_CHECK(call && call->is_sink && !call->abandoned &&
		               event == RFD_CONN_STREAM_CREDIT,
		           "a client got stream event %d for stream %u, no sink of its own", event,
		           stream);
		return;
	}
	FUZZ_CHECK(srv && srv->state == SRV_FLOWING,
	           "stream event %d for stream %u, which is not flowing", event, stream);
	FUZZ_CHECK(event == RFD_CONN_STREAM_CREDIT || event == RFD_CONN_STREAM_CANCELLED,
	           "stream event %d", event);
	if (event == RFD_CONN_STREAM_CANCELLED)
		run.cancel_events++;
}

/* A server's sink: an item, or the end of the client's side. */
static void
on_sink(void *user, uint32_t stream, int status, struct rfd_msg *msg)
{
	const struct srv *srv = find_open(stream);
	int group = -1;

	FUZZ_CHECK(run.role == RFD_ROLE_SERVER, "a client got a sink item");
	FUZZ_CHECK(run.ready_seen && !run.failed_seen, "sink item before ready or after failed");
	FUZZ_CHECK(srv && srv->is_sink && srv->state == SRV_FLOWING,
	           "sink message for stream %u, which is no sink taking items", stream);
	FUZZ_CHECK(msg ? status == 0
	               : status == 0 || status == -ECANCELED || status == -EREMOTEIO ||
	                     status == -EBADFD || status == -EPROTO,
	           "sink status %d with message %p", status, (void *)msg);
	if (msg) {
		FUZZ_CHECK(rfd_msg_kind(msg) == RFD_MSG_STREAM_ITEM && msg->stream_id == stream,
		           "sink message of kind %d", rfd_msg_kind(msg));
		group = delivered_group(msg);
	}
	record_delivery(stream, status, group);
	if (msg)
		hold_message(msg, stream, group);
}

static const struct rfd_conn_callbacks callbacks = {
    .ready = on_ready,
    .request = on_request,
    .reply = on_reply,
    .stream = on_stream,
    .stream_event = on_stream_event,
    .sink = on_sink,
    .failed = on_failed,
    .trace = on_trace,
};

/* ---- The model of the input side ---- */

static void
add_model_msg(uint32_t stream, enum outcome outcome, int group)
{
	if (run.n_model_msgs == run.cap_model_msgs)
		run.model_msgs =
		    grow_array(run.model_msgs, &run.cap_model_msgs, sizeof(*run.model_msgs));
	run.model_msgs[run.n_model_msgs++] =
	    (struct model_msg){stream, (uint8_t)outcome, group, false};
}

/* A message whose claim took @group (or none) that is refused: no message, its FDs closed. */
static void
add_refused_msg(uint32_t stream, enum outcome outcome, int group)
{
	add_model_msg(stream, outcome, group);
	run.model_msgs[run.n_model_msgs - 1].refused = true;
}

/* The agreement on FDs as a server sees it: its own and the client's offer. */
static unsigned
model_agreed(void)
{
	return run.role == RFD_ROLE_SERVER ? run.extensions & run.peer_offer : run.extensions;
}

/* FDs a client claimed with a message outside the agreement (EXT-7). */
static bool
model_unagreed(const struct rfd_response_metadata *md, bool sink_final)
{
	if (md->payload_kind == RFD_PAYLOAD_DECLARED_EXCEPTION)
		return !(run.extensions & RFD_EXTENSION_EXCEPTION);
	return sink_final && !(run.extensions & RFD_EXTENSION_SINK);
}

/* The rules: older groups are orphans; the group at the claimed seq must have the claimed size. */
static enum outcome
model_claim(const struct rfd_fd_metadata *md, int *group_out)
{
	struct group *g;

	*group_out = -1;
	if (!md->present || !md->has_num || md->num_fds == 0)
		return OUT_NONE;
	if (md->num_fds < 0 || (unsigned)md->num_fds > run.limits.max_fds_per_msg || !md->has_seq ||
	    md->fd_seq < 0)
		return OUT_FAIL;
	while (run.queue_head < run.n_groups &&
	       seq_before(run.groups[run.queue_head].seq, md->fd_seq))
		run.groups[run.queue_head++].state = GROUP_ORPHANED;
	if (run.queue_head == run.n_groups || run.groups[run.queue_head].seq != md->fd_seq)
		return OUT_FAIL;
	g = &run.groups[run.queue_head++];
	if (g->n != (size_t)md->num_fds) {
		g->state = GROUP_MISMATCHED;
		return OUT_FAIL;
	}
	g->state = GROUP_TAKEN;
	*group_out = (int)(g - run.groups);
	return OUT_OK;
}

/* The call a client tracks on @stream (in flight or abandoned) at this point of the step. */
static struct call *
model_tracked(uint32_t stream)
{
	for (size_t i = 0; i < run.n_tracked; i++)
		if (run.tracked[i].stream == stream)
			return &run.tracked[i];
	return NULL;
}

/* The call's final frame came: the client stops tracking it. */
static void
model_untrack(uint32_t stream)
{
	struct call *call = model_tracked(stream);

	if (call)
		*call = run.tracked[--run.n_tracked];
}

static bool
payload_exception(enum rfd_payload_kind kind)
{
	return kind == RFD_PAYLOAD_DECLARED_EXCEPTION ||
	       kind == RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION || kind == RFD_PAYLOAD_OTHER_EXCEPTION;
}

enum { NO_LIMIT = 0x7FFFFFFF };

/* Credits saturate at 2^31 - 1, as RSocket's, and then stay: no limit (21.1). */
static uint32_t
credits_add(uint32_t credits, uint32_t n)
{
	return credits >= NO_LIMIT || n >= NO_LIMIT - credits ? NO_LIMIT : credits + n;
}

static void
credits_spend(uint32_t *credits)
{
	if (*credits < NO_LIMIT)
		(*credits)--;
}

/* A stream's balance plus @n, a whole u32 (STREAM-19): from 2^31 - 1 on, no limit. */
static int64_t
balance_add(int64_t balance, uint32_t n)
{
	return balance >= NO_LIMIT || balance + n >= NO_LIMIT ? NO_LIMIT : balance + n;
}

/* A stream's first response has ResponseRpcMetadata, its later messages StreamPayloadMetadata. */
static bool
model_decode_stream(const struct rfd_frame *f, bool first, struct rfd_response_metadata *md)
{
	const char *why;

	if (first)
		return rfd_response_metadata_decode(f->metadata.ptr, f->metadata.len, md, &why) ==
		       0;
	return rfd_stream_payload_metadata_decode(f->metadata.ptr, f->metadata.len, md, &why) == 0;
}

/*
 * A PAYLOAD of a stream at a client.  An abandoned stream's FDs are claimed
 * and closed; a live stream's message is the first response, an item, an
 * exception or the completion; anything out of place (a frame or metadata it
 * cannot read, an item past the credit, FDs that do not match) breaks the
 * contract: the stream ends with an error, and the connection fails.
 */
/* Past the bound, the stream or sink of @calls abandoned first is forgotten. */
static void
forget_oldest_abandoned(struct call *calls, size_t *n)
{
	size_t abandoned = 0, oldest = SIZE_MAX;

	for (size_t i = 0; i < *n; i++) {
		const struct call *c = &calls[i];

		if ((!c->is_stream && !c->is_sink) || !c->abandoned)
			continue;
		abandoned++;
		if (oldest == SIZE_MAX ||
		    run.abandon_clock - c->order > run.abandon_clock - calls[oldest].order)
			oldest = i;
	}
	if (abandoned > run.limits.max_in_flight)
		calls[oldest] = calls[--*n];
}

/*
 * The client stops reading a stream or sink after @f, which ended its call:
 * without COMPLETE it is cancelled and abandoned (STREAM-14, SINK-8), and
 * what comes next on it are items.
 */
static void
model_stop_reading(struct call *call, const struct rfd_frame *f)
{
	if (f->flags & RFD_FLAG_COMPLETE) {
		model_untrack(f->stream_id);
		return;
	}
	call->abandoned = true;
	call->started = true;
	call->order = run.abandon_clock++;
	forget_oldest_abandoned(run.tracked, &run.n_tracked);
}

/*
 * STREAM-20: a first response or an item that is neither a result nor an
 * exception fails its stream or sink, the connection going on; without
 * COMPLETE the stream is cancelled (the sink ended) and abandoned.
 */
static void
model_item_refused(struct call *call, const struct rfd_frame *f, enum outcome outcome, int group)
{
	add_refused_msg(f->stream_id, outcome, group);
	model_stop_reading(call, f);
}

/* A PAYLOAD on an abandoned stream or sink: its FDs are claimed and closed; its last ends it. */
static void
model_drain(struct call *call, const struct rfd_frame *f)
{
	bool first = !call->started, last = f->flags & RFD_FLAG_COMPLETE;
	struct rfd_response_metadata md;
	enum outcome outcome = OUT_NONE;
	int group = -1;

	if ((f->flags & RFD_FLAG_NEXT) && model_decode_stream(f, first, &md)) {
		outcome = model_claim(&md.fd, &group);
		last |= payload_exception(md.payload_kind);
	}
	call->started = true;
	if (last)
		model_untrack(f->stream_id);
	add_model_msg(f->stream_id, outcome, group);
}

static void
model_stream_payload(struct call *call, const struct rfd_frame *f)
{
	uint32_t stream = f->stream_id;
	bool first = !call->started, next = f->flags & RFD_FLAG_NEXT;
	struct rfd_response_metadata md;
	enum outcome outcome = OUT_NONE;
	bool last, complete;
	int group = -1;

	if (call->abandoned) {
		model_drain(call, f);
		return;
	}
	if (next && !model_decode_stream(f, first, &md)) {
		model_item_refused(call, f, OUT_UNREAD, -1);
		return;
	}
	if (!next || !model_decode_stream(f, first, &md) ||
	    (first && md.item_fields && md.payload_kind == RFD_PAYLOAD_NONE)) {
		/* The completion (or, before the first response, a violation). */
		model_untrack(stream);
		add_model_msg(stream, next ? OUT_UNREAD : OUT_NONE, -1);
		return;
	}
	outcome = model_claim(&md.fd, &group);
	last = payload_exception(md.payload_kind);
	if (outcome == OUT_OK && model_unagreed(&md, false)) {
		model_item_refused(call, f, outcome, group);
		return;
	}
	if (outcome != OUT_FAIL && md.payload_kind == RFD_PAYLOAD_EMPTY) {
		model_item_refused(call, f, outcome, group);
		return;
	}
	if (outcome == OUT_FAIL || md.uses_compression || md.uses_checksum ||
	    md.payload_kind == RFD_PAYLOAD_EMPTY || (!first && !last && call->credits == 0)) {
		model_untrack(stream);
		add_model_msg(stream, outcome, group);
		return;
	}
	complete = !last && (f->flags & RFD_FLAG_COMPLETE);
	add_model_msg(stream, outcome, group);
	if (last) {
		model_stop_reading(call, f);
	} else if (complete) {
		model_untrack(stream);
	} else {
		call->started = true;
		credits_spend(&call->credits);
	}
	if (complete)
		add_model_msg(stream, OUT_NONE, -1);
}

/*
 * A PAYLOAD on a sink at a client: its first response (with the answer to
 * the offer) or its final response, an exception or an error.  A frame out
 * of place, metadata it cannot read, FDs that do not match break the
 * contract (the connection fails); FDs outside the agreement, or a first
 * response that ends the sink with a result, fail the sink.
 */
static void
model_sink_payload(struct call *call, const struct rfd_frame *f)
{
	uint32_t stream = f->stream_id;
	bool first = !call->started;
	struct rfd_response_metadata md;
	enum outcome outcome;
	bool exception;
	int group = -1;

	if (call->abandoned) {
		model_drain(call, f);
		return;
	}
	if (!(f->flags & RFD_FLAG_NEXT) || (!first && !(f->flags & RFD_FLAG_COMPLETE))) {
		model_untrack(stream);
		add_model_msg(stream, OUT_NONE, -1);
		return;
	}
	if (!model_decode_stream(f, first, &md)) {
		model_item_refused(call, f, OUT_UNREAD, -1);
		return;
	}
	outcome = model_claim(&md.fd, &group);
	exception = payload_exception(md.payload_kind);
	/* EXT-7 (with FDs only), STREAM-20, SINK-14 (a first response ending the sink with a
	 * result). */
	if ((outcome == OUT_OK && model_unagreed(&md, !first)) ||
	    (outcome != OUT_FAIL && (md.payload_kind == RFD_PAYLOAD_EMPTY ||
	                             (first && !exception && (f->flags & RFD_FLAG_COMPLETE))))) {
		model_item_refused(call, f, outcome, group);
		return;
	}
	add_model_msg(stream, outcome, group);
	if (outcome == OUT_FAIL || md.uses_compression || md.uses_checksum ||
	    md.payload_kind == RFD_PAYLOAD_EMPTY || (f->flags & RFD_FLAG_COMPLETE)) {
		model_untrack(stream);
		return;
	}
	if (!first || exception) {
		model_stop_reading(call, f);
		return;
	}
	call->started = true;
	call->agreed = (run.extensions & RFD_EXTENSION_SINK) && md.has_extensions &&
	               (rfd_extensions_parse(md.extensions) & RFD_EXTENSION_SINK);
}

/*
 * A PAYLOAD from the client on a sink taking items at a server: an item (its
 * FDs claimed first), the completion, or an exception that ends the sink;
 * an item out of place fails the sink.
 */
static void
model_sink_item(const struct rfd_frame *f)
{
	uint32_t stream = f->stream_id;
	struct srv *srv = find_open(stream);
	struct rfd_response_metadata md;
	enum outcome outcome;
	const char *why;
	int group = -1;

	/* Ended while the item's fragments came: the item is ignored. */
	if (!srv || !srv->is_sink || srv->state != SRV_FLOWING || srv->completed)
		return;
	if (!(f->flags & RFD_FLAG_NEXT)) {
		if (f->flags & RFD_FLAG_COMPLETE)
			srv->completed = true;
		else
			remove_open(stream);
		add_model_msg(stream, OUT_NONE, -1);
		return;
	}
	if (rfd_stream_payload_metadata_decode(f->metadata.ptr, f->metadata.len, &md, &why) < 0) {
		remove_open(stream);
		add_model_msg(stream, OUT_UNREAD, -1);
		return;
	}
	outcome = model_claim(&md.fd, &group);
	if (outcome == OUT_FAIL) {
		remove_open(stream);
		add_model_msg(stream, OUT_FAIL, -1);
		return;
	}
	if (payload_exception(md.payload_kind) ||
	    (group >= 0 && !(model_agreed() & RFD_EXTENSION_SINK)) || md.uses_compression ||
	    md.uses_checksum || md.payload_kind == RFD_PAYLOAD_EMPTY || srv->credits == 0) {
		remove_open(stream);
		add_refused_msg(stream, outcome, group);
		return;
	}
	credits_spend(&srv->credits);
	add_model_msg(stream, outcome, group);
	if (f->flags & RFD_FLAG_COMPLETE) {
		srv->completed = true;
		add_model_msg(stream, OUT_NONE, -1);
	}
}

/* A request at a server: a stream request delivered gets its initial request n as credits. */
static void
model_request(const struct rfd_frame *f)
{
	struct rfd_request_metadata request;
	enum outcome outcome;
	struct srv *srv;
	const char *why;
	int group = -1;

	if (rfd_request_metadata_decode(f->metadata.ptr, f->metadata.len, &request, &why) < 0) {
		add_model_msg(f->stream_id, OUT_UNREAD, -1);
		return;
	}
	outcome = model_claim(&request.fd, &group);
	add_model_msg(f->stream_id, outcome, group);
	srv = find_open(f->stream_id);
	if (f->type == RFD_FRAME_REQUEST_STREAM && srv && srv->credits == UINT32_MAX) {
		srv->credits = 0;
		srv->balance = balance_add(-1, f->u32); /* the first response goes whatever it is */
	}
}

/*
 * A complete message: the claim of a carrier (a request at a server; a
 * response with NEXT on a tracked call at a client), or nothing.
 */
static void
model_message(const struct rfd_frame *f)
{
	struct rfd_response_metadata response;
	enum outcome outcome;
	struct call *call;
	const char *why;
	int group = -1;

	if (run.role == RFD_ROLE_SERVER) {
		if (f->type == RFD_FRAME_PAYLOAD)
			model_sink_item(f);
		else
			model_request(f);
		return;
	}
	if (f->type != RFD_FRAME_PAYLOAD)
		return; /* fails the connection */
	call = model_tracked(f->stream_id);
	if (!call)
		return; /* ignored */
	if (call->is_stream) {
		model_stream_payload(call, f);
		return;
	}
	if (call->is_sink) {
		model_sink_payload(call, f);
		return;
	}
	model_untrack(f->stream_id);
	if (!(f->flags & RFD_FLAG_NEXT) ||
	    rfd_response_metadata_decode(f->metadata.ptr, f->metadata.len, &response, &why) < 0) {
		add_model_msg(f->stream_id, OUT_UNREAD, -1);
		return;
	}
	outcome = model_claim(&response.fd, &group);
	if (outcome == OUT_OK && model_unagreed(&response, false))
		add_refused_msg(f->stream_id, outcome, group);
	else
		add_model_msg(f->stream_id, outcome, group);
}

/* The client's ERROR (or CANCEL) on a sink at a server: before the answer it is dropped. */
static void
model_sink_error(struct srv *srv)
{
	uint32_t stream = srv->stream;

	if (srv->state == SRV_OPEN) {
		srv->state = SRV_CANCELLED;
	} else if (srv->state == SRV_FLOWING) {
		remove_open(stream);
		add_model_msg(stream, OUT_NONE, -1);
	} else if (srv->state == SRV_ENDING) {
		remove_open(stream);
	}
}

/* CANCEL and REQUEST_N: a server's stream ends or gets credit; a client's stream breaks. */
static void
model_flow_frame(const struct rfd_frame *f)
{
	struct call *call;
	struct srv *srv;

	if (run.role == RFD_ROLE_CLIENT) {
		call = model_tracked(f->stream_id);
		/* A sink's credit, unless it was abandoned or completed. */
		if (f->type == RFD_FRAME_REQUEST_N && call && call->is_sink) {
			if (!call->abandoned && !call->completed && f->u32)
				call->credits = credits_add(call->credits, f->u32);
			return;
		}
		if (f->type != RFD_FRAME_REQUEST_N || !call || !call->is_stream || call->abandoned)
			return;
		model_untrack(f->stream_id);
		add_model_msg(f->stream_id, OUT_NONE, -1);
		return;
	}
	srv = find_open(f->stream_id);
	/* CANCEL ends a sink as the client's ERROR does; REQUEST_N is ignored. */
	if (srv && srv->is_sink) {
		if (f->type == RFD_FRAME_CANCEL)
			model_sink_error(srv);
		return;
	}
	if (!srv || !srv->is_stream) {
		if (srv && f->type == RFD_FRAME_CANCEL && srv->state == SRV_OPEN)
			srv->state = SRV_CANCELLED;
		return;
	}
	if (f->type == RFD_FRAME_REQUEST_N) {
		if (srv->state == SRV_OPEN || srv->state == SRV_FLOWING)
			srv->balance = balance_add(srv->balance, f->u32);
		return;
	}
	if (srv->state == SRV_OPEN) {
		srv->state = SRV_CANCELLED;
	} else if (srv->state == SRV_FLOWING || srv->state == SRV_ENDING) {
		if (srv->state == SRV_FLOWING)
			run.model_cancels++;
		remove_open(f->stream_id);
	}
}

static struct rfd_reassembly *
model_reassembly(uint32_t stream, bool start)
{
	struct rfd_reassembly *idle = NULL;

	for (int i = 0; i < MAX_REASSEMBLIES; i++) {
		struct rfd_reassembly *r = &run.reassembly[i];

		if (r->active && r->stream_id == stream)
			return r;
		if (!r->active && !idle)
			idle = r;
	}
	return start ? idle : NULL;
}

static void
model_reset_reassembly(struct rfd_reassembly *r)
{
	rfd_reassembly_free(r);
	rfd_reassembly_init(r, run.limits.max_message);
}

/*
 * A PAYLOAD that continues no message and answers nothing (a server's, but
 * on a sink taking items, or a client's on a stream it does not track) is
 * ignored and starts nothing.
 */
static bool
model_ignored_payload(const struct rfd_frame *f)
{
	const struct srv *srv;

	if (f->type != RFD_FRAME_PAYLOAD || model_reassembly(f->stream_id, false))
		return false;
	if (run.role == RFD_ROLE_CLIENT)
		return !model_tracked(f->stream_id);
	srv = find_open(f->stream_id);
	return !srv || !srv->is_sink || srv->state != SRV_FLOWING || srv->completed;
}

static void
model_payload_frame(const struct rfd_frame *f)
{
	bool follows = f->flags & RFD_FLAG_FOLLOWS;
	struct rfd_reassembly *r;
	struct rfd_frame whole;
	const char *why;
	int ret;

	if (model_ignored_payload(f))
		return;
	r = model_reassembly(f->stream_id, follows);
	if (!r) {
		if (!follows)
			model_message(f);
		return;
	}
	ret = rfd_reassembly_add(r, f, &whole, &why);
	if (ret < 0)
		model_reset_reassembly(r);
	if (ret != 1)
		return;
	model_message(&whole);
	model_reset_reassembly(r);
}

/* The extensions a server's first frame, a SETUP, offers. */
static void
model_setup(const struct rfd_frame *f)
{
	struct rfd_setup_metadata md;
	const char *why;

	if (run.role == RFD_ROLE_SERVER && f->type == RFD_FRAME_SETUP && f->metadata.len >= 4 &&
	    rfd_setup_metadata_decode(f->metadata.ptr + 4, f->metadata.len - 4, &md, &why) == 0 &&
	    md.has_extensions)
		run.peer_offer = rfd_extensions_parse(md.extensions);
}

static void
model_frame(const struct rfd_frame *f)
{
	if (!run.first_frame_done) {
		run.first_frame_done = true;
		model_setup(f);
		return;
	}
	switch (f->type) {
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_PAYLOAD:
		model_payload_frame(f);
		break;
	case RFD_FRAME_ERROR:
		if (run.role == RFD_ROLE_CLIENT && f->stream_id != 0 &&
		    model_tracked(f->stream_id)) {
			model_untrack(f->stream_id);
			add_model_msg(f->stream_id, OUT_NONE, -1);
		} else if (run.role == RFD_ROLE_SERVER && f->stream_id != 0 &&
		           find_open(f->stream_id) && find_open(f->stream_id)->is_sink) {
			model_sink_error(find_open(f->stream_id));
		}
		break;
	case RFD_FRAME_CANCEL:
	case RFD_FRAME_REQUEST_N:
		model_flow_frame(f);
		break;
	default:
		break;
	}
}

/* Decode the complete frames of the model's input copy; at most @limit of them. */
static size_t
model_frames(size_t limit)
{
	size_t pos = 0, n = 0;

	if (run.pending.len == 0)
		return 0;
	fuzz_alloc_hold(true);
	while (n < limit) {
		struct rfd_frame f;
		const char *why;
		size_t frame_len;

		if (rfd_frame_split(run.pending.data + pos, run.pending.len - pos,
		                    run.limits.max_frame, &frame_len, &why) != 1)
			break;
		if (rfd_frame_decode(run.pending.data + pos + RFD_FRAME_LENGTH_SIZE,
		                     frame_len - RFD_FRAME_LENGTH_SIZE, &f, &why) < 0)
			break;
		model_frame(&f);
		pos += frame_len;
		n++;
	}
	fuzz_alloc_hold(false);
	bytes_consume(&run.pending, pos);
	return n;
}

/* Find the model message a delivery is, from *cursor on, and check they agree. */
static void
match_delivery(const struct delivery *d, size_t *cursor)
{
	for (size_t i = *cursor; i < run.n_model_msgs; i++) {
		struct model_msg *m = &run.model_msgs[i];
		bool fits;

		if (m->stream != d->stream)
			continue;
		if (m->refused)
			fits = d->status < 0 && d->group < 0;
		else if (d->group >= 0)
			fits = m->outcome == OUT_OK && m->group == d->group;
		else if (d->status == 0)
			fits = m->outcome == OUT_NONE;
		else if (d->status == -EBADFD)
			fits = m->outcome == OUT_FAIL;
		else
			fits = m->outcome != OUT_FAIL;
		if (!fits)
			continue;
		if (d->group >= 0)
			run.groups[d->group].state = GROUP_DELIVERED;
		*cursor = i + 1;
		return;
	}
	fuzz_fail("stream %u: delivered with status %d and %s, which the model does not "
	          "expect",
	          d->stream, d->status, d->group >= 0 ? "FDs" : "no FDs");
}

/* After a call that read bytes: bring the model up to date and hold the core to it. */
static void
model_after_read(void)
{
	size_t cursor = 0, n;

	if (run.error)
		return;
	n = model_frames(rfd_conn_error(run.conn) ? run.frames_traced : SIZE_MAX);
	FUZZ_CHECK(n == run.frames_traced, "the core read %zu frames, the model %zu",
	           run.frames_traced, n);
	for (size_t i = 0; i < run.n_deliveries; i++)
		match_delivery(&run.deliveries[i], &cursor);
	if (run.role == RFD_ROLE_CLIENT) {
		memcpy(run.calls, run.tracked, run.n_tracked * sizeof(run.calls[0]));
		run.n_calls = run.n_tracked;
	} else {
		FUZZ_CHECK(run.cancel_events == run.model_cancels,
		           "%d streams heard CANCEL, the model %d", run.cancel_events,
		           run.model_cancels);
	}
}

/* ---- Invariants ---- */

static bool
group_must_be_closed(uint8_t state)
{
	return state == GROUP_ORPHANED || state == GROUP_MISMATCHED || state == GROUP_TAKEN ||
	       state == GROUP_DROPPED;
}

static void
check_fds(void)
{
	bool failed = rfd_conn_error(run.conn) != 0;

	for (size_t i = 0; i < fdtrack_count(); i++) {
		int fd = fdtrack_fd(i);
		const struct fd_info *info = &run.fds[i];
		unsigned closes = fdtrack_closes(fd);

		if (info->taken)
			continue;
		if (info->held >= 0) {
			FUZZ_CHECK(closes == 0, "FD %d closed while its message is held", fd);
			continue;
		}
		if (failed) {
			FUZZ_CHECK(closes == 1, "FD %d still open after the connection failed", fd);
			continue;
		}
		if (info->origin != FD_RECEIVED)
			continue;
		if (run.groups[info->group].state == GROUP_QUEUED)
			FUZZ_CHECK(closes == 0, "queued FD %d was closed", fd);
		else if (group_must_be_closed(run.groups[info->group].state))
			FUZZ_CHECK(closes == 1, "FD %d of a %s group is still open", fd,
			           run.groups[info->group].state == GROUP_ORPHANED ? "orphaned"
			           : run.groups[info->group].state == GROUP_TAKEN  ? "claimed"
			                                                           : "refused");
	}
}

static void
check_in_flight(void)
{
	size_t in_flight = rfd_conn_in_flight(run.conn);

	if (rfd_conn_error(run.conn)) {
		FUZZ_CHECK(in_flight == 0, "%zu requests in flight after failure", in_flight);
		return;
	}
	FUZZ_CHECK(in_flight <= run.limits.max_in_flight, "%zu requests in flight, limit %u",
	           in_flight, run.limits.max_in_flight);
	if (run.role == RFD_ROLE_SERVER) {
		size_t settled = 0;

		/* A stream ending is forgotten once its end went into the output. */
		for (size_t i = 0; i < run.n_open; i++) {
			const struct srv *srv = &run.open[i];
			unsigned credits = rfd_conn_stream_credits(run.conn, srv->stream);
			/* An initial request N of 0 starts the balance at -1 (21.3): no credit. */
			int64_t allowed =
			    srv->state == SRV_FLOWING && srv->balance > 0 ? srv->balance : 0;

			settled += srv->state != SRV_ENDING;
			FUZZ_CHECK(credits <= allowed && credits <= STREAM_QUEUE_MAX,
			           "stream %u offers %u credits, the model's balance is %lld",
			           srv->stream, credits, (long long)srv->balance);
			credits = rfd_conn_sink_credits(run.conn, srv->stream);
			FUZZ_CHECK(credits ==
			               (srv->is_sink && srv->state == SRV_FLOWING && !srv->completed
			                    ? srv->credits
			                    : 0),
			           "sink %u has %u credits, the model %u", srv->stream, credits,
			           srv->credits);
		}
		FUZZ_CHECK(in_flight >= settled && in_flight <= run.n_open,
		           "%zu in flight, %zu requests and streams open, %zu ending", in_flight,
		           settled, run.n_open - settled);
		/* Every stream ending was forgotten: the model forgets them too. */
		for (size_t i = 0; in_flight == settled && i < run.n_open;)
			if (run.open[i].state == SRV_ENDING)
				run.open[i] = run.open[--run.n_open];
			else
				i++;
	} else {
		size_t abandoned = 0;

		for (size_t i = 0; i < run.n_calls; i++) {
			const struct call *c = &run.calls[i];
			bool open = c->is_sink && !c->abandoned && c->started && !c->completed;

			abandoned += (c->is_stream || c->is_sink) && c->abandoned;
			FUZZ_CHECK(rfd_conn_sink_credits(run.conn, c->stream) <=
			               (open ? c->credits : 0),
			           "sink %u offers %u credits, the model %u", c->stream,
			           rfd_conn_sink_credits(run.conn, c->stream), c->credits);
			FUZZ_CHECK(!c->is_sink || c->abandoned ||
			               rfd_conn_sink_agreed(run.conn, c->stream) == c->agreed,
			           "sink %u: the core and the model disagree on its agreement",
			           c->stream);
		}
		FUZZ_CHECK(in_flight == run.n_calls - abandoned, "%zu in flight, %zu calls waiting",
		           in_flight, run.n_calls - abandoned);
		FUZZ_CHECK(rfd_conn_abandoned(run.conn) == abandoned &&
		               abandoned <= run.limits.max_in_flight,
		           "%zu abandoned streams remembered, the model %zu",
		           rfd_conn_abandoned(run.conn), abandoned);
	}
}

static void
check_invariants(void)
{
	int error = rfd_conn_error(run.conn);
	size_t memory_bound;

	FUZZ_CHECK(run.error == 0 || error == run.error, "error changed from %d to %d", run.error,
	           error);
	FUZZ_CHECK((error != 0) == run.failed_seen && (!error || error == run.failed_err),
	           "error %d, failed callback %s with %d", error,
	           run.failed_seen ? "ran" : "not run", run.failed_err);
	FUZZ_CHECK(!error || rfd_conn_error_text(run.conn)[0], "failed without a reason");
	if (error) {
		FUZZ_CHECK(rfd_conn_queued_fds(run.conn) == 0, "FDs queued after failure");
		for (size_t i = run.queue_head; i < run.n_groups; i++)
			run.groups[i].state = GROUP_DROPPED;
		run.queue_head = run.n_groups;
		if (run.wire_failed_at == UINT64_MAX)
			run.wire_failed_at = run.wire_total;
	} else {
		FUZZ_CHECK(rfd_conn_queued_fds(run.conn) == model_queued(),
		           "the core has %zu FDs queued, the model %zu",
		           rfd_conn_queued_fds(run.conn), model_queued());
		FUZZ_CHECK(model_queued() <= run.limits.fd_budget, "queued FDs over the budget");
		FUZZ_CHECK(rfd_conn_ready(run.conn) == run.ready_seen, "ready state differs");
	}
	check_fds();
	check_in_flight();
	memory_bound =
	    MEMORY_BASE + MEMORY_PER_BYTE * run.input_total + MEMORY_PER_FD * fdtrack_count();
	FUZZ_CHECK(fuzz_alloc_live_bytes() <= memory_bound, "%zu bytes allocated, bound %zu",
	           fuzz_alloc_live_bytes(), memory_bound);
}

/* Every step: note the error before it, run it, update the model, check. */
static void
step_begin(void)
{
	run.error = rfd_conn_error(run.conn);
	run.frames_traced = 0;
	run.n_deliveries = 0;
	run.n_model_msgs = 0;
	run.n_tracked = run.n_calls;
	memcpy(run.tracked, run.calls, run.n_calls * sizeof(run.calls[0]));
	run.cancel_events = 0;
	run.model_cancels = 0;
}

/* ---- Input steps ---- */

static void
feed(const uint8_t *bytes, size_t len, bool zero_copy)
{
	int r;

	step_begin();
	log_step("read %zu bytes%s", len, zero_copy ? " (in_space)" : "");
	run.input_total += len;
	if (!run.error)
		bytes_append(&run.pending, bytes, len);
	if (zero_copy) {
		uint8_t *space = NULL;
		size_t room = 0;

		r = rfd_conn_in_space(run.conn, len, &space, &room);
		if (r == 0) {
			FUZZ_CHECK(room >= len, "in_space gave %zu bytes for %zu", room, len);
			memcpy(space, bytes, len);
			r = rfd_conn_in_commit(run.conn, len);
		} else if (!run.error) {
			FUZZ_CHECK(r == -ENOMEM && fuzz_alloc_failed(), "in_space failed: %d", r);
			rfd_conn_fail(run.conn, r, "no room to read into");
		}
	} else {
		r = rfd_conn_recv_bytes(run.conn, bytes, len);
	}
	FUZZ_CHECK(r == rfd_conn_error(run.conn), "recv returned %d, error is %d", r,
	           rfd_conn_error(run.conn));
	model_after_read();
	check_invariants();
}

static void
give_fds(size_t n)
{
	int fds[2 * RFD_MAX_FDS + 8];
	size_t queued = model_queued();
	struct group *g;
	int r;

	if (n > fdtrack_available())
		n = fdtrack_available();
	if (n > sizeof(fds) / sizeof(fds[0]))
		n = sizeof(fds) / sizeof(fds[0]);
	step_begin();
	if (n == 0) {
		r = rfd_conn_recv_fds(run.conn, fds, 0);
		FUZZ_CHECK(r == run.error, "an empty group returned %d", r);
		return;
	}
	g = &run.groups[run.n_groups];
	g->first = run.n_group_fds;
	g->n = n;
	g->seq = run.next_seq;
	g->state = GROUP_QUEUED;
	for (size_t i = 0; i < n; i++) {
		fds[i] = issue_fd(FD_RECEIVED, (int)run.n_groups);
		run.group_fds[run.n_group_fds++] = fds[i];
	}
	r = rfd_conn_recv_fds(run.conn, fds, n);
	log_step("FD group of %zu at seq %lld: %d", n, (long long)g->seq, r);
	run.n_groups++;
	if (run.error) {
		FUZZ_CHECK(r == run.error, "FDs after failure returned %d", r);
		g->state = GROUP_DROPPED;
	} else if (r == -ENOMEM && fuzz_alloc_failed()) {
		g->state = GROUP_DROPPED;
	} else if (n > run.limits.max_fds_per_msg || queued + n > run.limits.fd_budget) {
		FUZZ_CHECK(r == -E2BIG, "a group over the cap or budget returned %d", r);
		g->state = GROUP_DROPPED;
	} else if (r < 0) {
		FUZZ_CHECK(r == -ENOMEM && fuzz_alloc_failed(), "recv_fds returned %d", r);
		g->state = GROUP_DROPPED;
	} else {
		run.next_seq = seq_add(run.next_seq, n);
	}
	if (g->state == GROUP_DROPPED)
		FUZZ_CHECK(group_all_closed(run.group_fds + g->first, n),
		           "a refused group was not closed");
	check_invariants();
}

/* ---- Frames built from a description ---- */

struct claim {
	bool present;
	bool has_seq;
	bool has_num;
	int64_t seq;
	int32_t num;
	bool empty_first;
};

struct frame_desc {
	uint8_t kind;
	uint8_t variant;
	uint32_t stream;
	struct claim claim;
	uint8_t pieces;
	size_t pieces_fds;
	bool wrong_kind;
	uint8_t fragment;
	bool first_fragment_only;
	const uint8_t *data;
	size_t data_len;
};

/* bit 7: a raw id; a client: else one of its calls; a server: bit 6, an open request, else a new
 * odd id. */
static uint32_t
pick_stream(uint8_t b)
{
	if (b & 0x80)
		return b & 0x7f;
	if (run.role == RFD_ROLE_CLIENT)
		return run.n_calls ? run.calls[b % run.n_calls].stream : 1;
	if ((b & 0x40) && run.n_open)
		return run.open[b % run.n_open].stream;
	return 1 + 2 * (uint32_t)(b & 0x3f);
}

static void
read_claim(struct fuzz_input *in, uint8_t b, size_t pieces_fds, struct claim *c)
{
	bool queued = run.queue_head < run.n_groups;
	int64_t base = queued ? run.groups[run.queue_head].seq : run.next_seq;

	memset(c, 0, sizeof(*c));
	switch (b & CONN_CLAIM_MASK) {
	case CONN_CLAIM_NONE:
		return;
	case CONN_CLAIM_HEAD:
		c->seq = base;
		c->num = queued ? (int32_t)run.groups[run.queue_head].n
		                : (int32_t)(pieces_fds ? pieces_fds : 1);
		break;
	case CONN_CLAIM_RELATIVE:
		c->num = (int8_t)fuzz_u8(in);
		c->seq = base + (int8_t)fuzz_u8(in);
		break;
	default:
		c->num = (int32_t)fuzz_u32(in);
		c->seq = (int64_t)fuzz_u64(in);
		break;
	}
	c->present = true;
	c->has_seq = !(b & CONN_CLAIM_NO_SEQ);
	c->has_num = !(b & CONN_CLAIM_NO_NUM);
	c->empty_first = b & CONN_CLAIM_EMPTY_FIRST;
}

static void
put_claim(struct rfd_cw *w, int16_t id, const struct claim *c)
{
	if (c->empty_first) {
		rfd_cw_field(w, RFD_CT_STRUCT, id);
		rfd_cw_struct_begin(w);
		rfd_cw_struct_end(w);
	}
	if (!c->present)
		return;
	rfd_cw_field(w, RFD_CT_STRUCT, id);
	rfd_cw_struct_begin(w);
	if (c->has_seq)
		rfd_cw_field_i64(w, 1, c->seq);
	if (c->has_num)
		rfd_cw_field_i32(w, 2, c->num);
	rfd_cw_struct_end(w);
}

static void
put_empty_struct(struct rfd_cw *w, int16_t id)
{
	rfd_cw_field(w, RFD_CT_STRUCT, id);
	rfd_cw_struct_begin(w);
	rfd_cw_struct_end(w);
}

/* RequestRpcMetadata, written field by field so that every variant can be had. */
static void
put_request_metadata(struct rfd_buf *out, const struct frame_desc *d, int32_t rpc_kind)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, d->variant == CONN_VARIANT_BINARY ? 0 : 2);
	if (d->variant != CONN_VARIANT_NO_NAME)
		rfd_cw_field_string(&w, 2, "m");
	rfd_cw_field_i32(&w, 3, d->wrong_kind ? rpc_kind + 1 : rpc_kind);
	if (d->variant == CONN_VARIANT_COMPRESSION)
		rfd_cw_field_i32(&w, 14, 1);
	if (d->variant == CONN_VARIANT_INTERACTION)
		rfd_cw_field_i64(&w, 16, 7);
	put_claim(&w, 22, &d->claim);
	if (d->variant == CONN_VARIANT_BAD_VERSION) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 25);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i32(&w, 1, 1); /* a checksum algorithm other than NONE */
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
}

/* otherMetadata {"rocketfd.fds": @names} as field @id. */
static void
put_extensions(struct rfd_cw *w, int16_t id, const char *names)
{
	rfd_cw_field(w, RFD_CT_MAP, id);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
	rfd_cw_string(w, RFD_EXTENSIONS_KEY);
	rfd_cw_string(w, names);
}

/* ResponseRpcMetadata (@stream_payload false) or StreamPayloadMetadata. */
static void
put_response_metadata(struct rfd_buf *out, const struct frame_desc *d, bool stream_payload)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (d->variant == CONN_VARIANT_BINARY)
		put_extensions(&w, stream_payload ? 2 : 3, "sink,exception");
	if (d->variant == CONN_VARIANT_BAD_VERSION && !stream_payload)
		put_extensions(&w, 3, "exception");
	if (d->variant == CONN_VARIANT_COMPRESSION)
		rfd_cw_field_i32(&w, stream_payload ? 1 : 6, 1);
	rfd_cw_field(&w, RFD_CT_STRUCT, stream_payload ? 3 : 7);
	rfd_cw_struct_begin(&w);
	if (d->variant == CONN_VARIANT_BAD_VERSION && stream_payload) {
		/* An empty union: neither a result nor an exception. */
	} else if (d->kind == CONN_FRAME_EXCEPTION || d->kind == CONN_FRAME_APP_EXCEPTION ||
	           d->kind == CONN_FRAME_STREAM_EXCEPTION) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 2);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_string(&w, 1, "E");
		rfd_cw_field_string(&w, 2, "what");
		rfd_cw_field(&w, RFD_CT_STRUCT, 3);
		rfd_cw_struct_begin(&w);
		put_empty_struct(&w, d->kind == CONN_FRAME_APP_EXCEPTION ? 6 : 1);
		rfd_cw_struct_end(&w);
		rfd_cw_struct_end(&w);
	} else {
		put_empty_struct(&w, 1);
	}
	rfd_cw_struct_end(&w);
	put_claim(&w, stream_payload ? 5 : 12, &d->claim);
	if (d->variant == CONN_VARIANT_INTERACTION)
		put_empty_struct(&w, stream_payload ? 6 : 14);
	rfd_cw_struct_end(&w);
}

static void
put_setup_metadata(struct rfd_buf *out, uint8_t variant)
{
	struct rfd_cw w;

	rfd_buf_put_u32(out, variant == CONN_VARIANT_COMPRESSION ? 0x12345678u : PROTOCOL_KEY);
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 3, variant == CONN_VARIANT_BAD_VERSION ? 11 : 8);
	rfd_cw_field_i32(&w, 4, variant == CONN_VARIANT_BAD_VERSION ? 12 : 10);
	rfd_cw_field(&w, RFD_CT_STRUCT, 9);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 1, "fuzz");
	if (run.offer) {
		char names[RFD_EXTENSIONS_TEXT_SIZE];

		rfd_extensions_format(run.offer, names, sizeof(names));
		put_extensions(&w, 3, names);
	}
	rfd_cw_struct_end(&w);
	if (variant == CONN_VARIANT_BINARY)
		rfd_cw_field_bool(&w, 13, true);
	rfd_cw_struct_end(&w);
}

static void
put_server_push(struct rfd_buf *out, uint8_t variant)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (variant == CONN_VARIANT_BINARY) {
		put_empty_struct(&w, 2);
	} else if (variant == CONN_VARIANT_NO_NAME) {
		put_empty_struct(&w, 3);
	} else {
		rfd_cw_field(&w, RFD_CT_STRUCT, 1);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i32(&w, 1, variant == CONN_VARIANT_BAD_VERSION ? 7 : 10);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
}

static void
put_response_error(struct rfd_buf *out)
{
	struct rfd_response_error error = {
	    .has_what = true,
	    .what = {(const uint8_t *)"nope", 4},
	    .has_category = true,
	    .category = RFD_ERROR_CATEGORY_INVALID_REQUEST,
	    .has_code = true,
	    .code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE,
	};

	rfd_response_error_encode(&error, out);
}

static const uint8_t frame_types[CONN_FRAME_COUNT] = {
    [CONN_FRAME_REQUEST] = RFD_FRAME_REQUEST_RESPONSE,
    [CONN_FRAME_ONEWAY] = RFD_FRAME_REQUEST_FNF,
    [CONN_FRAME_STREAM] = RFD_FRAME_REQUEST_STREAM,
    [CONN_FRAME_CHANNEL] = RFD_FRAME_REQUEST_CHANNEL,
    [CONN_FRAME_REPLY] = RFD_FRAME_PAYLOAD,
    [CONN_FRAME_EXCEPTION] = RFD_FRAME_PAYLOAD,
    [CONN_FRAME_APP_EXCEPTION] = RFD_FRAME_PAYLOAD,
    [CONN_FRAME_STREAM_PAYLOAD] = RFD_FRAME_PAYLOAD,
    [CONN_FRAME_ERROR] = RFD_FRAME_ERROR,
    [CONN_FRAME_CONN_ERROR] = RFD_FRAME_ERROR,
    [CONN_FRAME_KEEPALIVE] = RFD_FRAME_KEEPALIVE,
    [CONN_FRAME_CANCEL] = RFD_FRAME_CANCEL,
    [CONN_FRAME_REQUEST_N] = RFD_FRAME_REQUEST_N,
    [CONN_FRAME_PUSH] = RFD_FRAME_METADATA_PUSH,
    [CONN_FRAME_SETUP] = RFD_FRAME_SETUP,
    [CONN_FRAME_EXT] = RFD_FRAME_EXT,
    [CONN_FRAME_STREAM_EXCEPTION] = RFD_FRAME_PAYLOAD,
    [CONN_FRAME_COMPLETE] = RFD_FRAME_PAYLOAD,
};

/* The metadata of a frame of @d's kind, into @md; false when it has none. */
static bool
put_metadata(const struct frame_desc *d, struct rfd_buf *md)
{
	switch (d->kind) {
	case CONN_FRAME_REQUEST:
		put_request_metadata(md, d, RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE);
		return true;
	case CONN_FRAME_ONEWAY:
		put_request_metadata(md, d, RFD_RPC_SINGLE_REQUEST_NO_RESPONSE);
		return true;
	case CONN_FRAME_STREAM:
		put_request_metadata(md, d, RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE);
		return true;
	case CONN_FRAME_CHANNEL:
		put_request_metadata(md, d, RFD_RPC_SINK);
		return true;
	case CONN_FRAME_REPLY:
	case CONN_FRAME_EXCEPTION:
	case CONN_FRAME_APP_EXCEPTION:
		put_response_metadata(md, d, false);
		return true;
	case CONN_FRAME_STREAM_PAYLOAD:
	case CONN_FRAME_STREAM_EXCEPTION:
		put_response_metadata(md, d, true);
		return true;
	case CONN_FRAME_PUSH:
		put_server_push(md, d->variant);
		return true;
	case CONN_FRAME_SETUP:
		put_setup_metadata(md, d->variant);
		return true;
	case CONN_FRAME_EXT:
		return d->variant != CONN_VARIANT_NORMAL;
	default:
		return false;
	}
}

/* The frame's fixed fields, flags and data. */
static void
fill_frame(const struct frame_desc *d, struct rfd_frame *f, struct rfd_buf *data)
{
	f->type = frame_types[d->kind];
	f->stream_id = d->stream;
	f->data.ptr = d->data;
	f->data.len = d->data_len;
	switch (d->kind) {
	case CONN_FRAME_STREAM:
		f->u32 = 1 + (uint32_t)(d->data_len % 4);
		break;
	case CONN_FRAME_CHANNEL:
		f->u32 = 2;
		break;
	case CONN_FRAME_REQUEST_N:
		f->u32 = 1 + (uint32_t)d->data_len;
		break;
	case CONN_FRAME_REPLY:
	case CONN_FRAME_EXCEPTION:
	case CONN_FRAME_APP_EXCEPTION:
	case CONN_FRAME_STREAM_PAYLOAD:
	case CONN_FRAME_STREAM_EXCEPTION:
		if (d->variant == CONN_VARIANT_NO_NAME)
			f->flags = RFD_FLAG_COMPLETE;
		else if (d->wrong_kind)
			f->flags = RFD_FLAG_NEXT;
		else
			f->flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE;
		break;
	case CONN_FRAME_COMPLETE:
		f->flags = RFD_FLAG_COMPLETE;
		f->data.len = 0;
		break;
	case CONN_FRAME_ERROR:
		f->u32 = d->variant % 2 ? RFD_ERROR_REJECTED : RFD_ERROR_INVALID;
		put_response_error(data);
		f->data.ptr = data->data;
		f->data.len = data->len;
		break;
	case CONN_FRAME_CONN_ERROR:
		f->stream_id = 0;
		f->u32 = RFD_ERROR_CONNECTION_ERROR;
		break;
	case CONN_FRAME_KEEPALIVE:
		f->stream_id = 0;
		f->flags = d->variant == CONN_VARIANT_NORMAL ? RFD_FLAG_FOLLOWS : 0;
		break;
	case CONN_FRAME_PUSH:
		f->stream_id = 0;
		f->data.len = 0;
		break;
	case CONN_FRAME_SETUP:
		f->stream_id = 0;
		f->version_major = 1;
		f->keepalive_ms = 0x7FFFFFFF;
		f->max_lifetime_ms = 0x7FFFFFFF;
		f->metadata_mime.ptr = (const uint8_t *)METADATA_MIME;
		f->metadata_mime.len =
		    d->variant == CONN_VARIANT_NO_NAME ? 5 : sizeof(METADATA_MIME) - 1;
		f->data_mime.ptr = (const uint8_t *)DATA_MIME;
		f->data_mime.len = sizeof(DATA_MIME) - 1;
		if (d->variant == CONN_VARIANT_INTERACTION)
			f->flags = RFD_FLAG_FOLLOWS;
		break;
	case CONN_FRAME_EXT:
		f->u32 = 1;
		f->flags = d->variant == CONN_VARIANT_NORMAL ? RFD_FLAG_IGNORE : 0;
		break;
	default:
		break;
	}
}

static void
keep_first_frame(struct rfd_buf *frames)
{
	const char *why;
	size_t len;

	if (rfd_frame_split(frames->data, frames->len, RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX,
	                    &len, &why) == 1)
		frames->len = len;
}

/* Encode @d into @out; false when the description makes no frame. */
static bool
encode_frame(const struct frame_desc *d, struct rfd_buf *out)
{
	struct rfd_frame f;
	struct rfd_buf md, data;
	bool ok;

	memset(&f, 0, sizeof(f));
	rfd_buf_init(&md);
	rfd_buf_init(&data);
	fill_frame(d, &f, &data);
	if (d->variant == CONN_VARIANT_GARBAGE) {
		if (d->kind == CONN_FRAME_SETUP)
			rfd_buf_put_u32(&md, PROTOCOL_KEY);
		rfd_buf_append(&md, d->data, d->data_len < 3 ? d->data_len : 3);
		f.has_metadata = true;
	} else if (d->variant != CONN_VARIANT_NO_METADATA || d->kind == CONN_FRAME_PUSH) {
		f.has_metadata = put_metadata(d, &md);
	}
	f.metadata.ptr = md.data;
	f.metadata.len = md.len;

	ok = d->fragment && rfd_frame_encode_fragmented(&f, FRAGMENT_BASE + d->fragment, out) == 0;
	if (ok && d->first_fragment_only)
		keep_first_frame(out);
	if (!ok)
		ok = rfd_frame_encode(&f, out) == 0;
	rfd_buf_free(&md);
	rfd_buf_free(&data);
	return ok;
}

static void
feed_pieces(const struct rfd_buf *bytes, uint8_t pieces, size_t pieces_fds)
{
	size_t n = pieces ? pieces : 1;

	for (size_t i = 0; i < n; i++) {
		size_t start = bytes->len * i / n, end = bytes->len * (i + 1) / n;

		if (i == n - 1 && pieces_fds)
			give_fds(pieces_fds);
		if (end > start)
			feed(bytes->data + start, end - start, false);
	}
}

static void
op_frame(struct fuzz_input *in)
{
	struct frame_desc d;
	struct rfd_buf bytes;
	uint8_t claim_byte, pieces;
	bool ok;

	memset(&d, 0, sizeof(d));
	d.kind = fuzz_u8(in) % CONN_FRAME_COUNT;
	d.stream = pick_stream(fuzz_u8(in));
	claim_byte = fuzz_u8(in);
	pieces = fuzz_u8(in);
	d.pieces = pieces & CONN_PIECES_READS;
	d.pieces_fds = (pieces & CONN_PIECES_FDS) >> CONN_PIECES_FDS_SHIFT;
	d.wrong_kind = pieces & CONN_PIECES_WRONG_KIND;
	d.variant = claim_byte >> CONN_VARIANT_SHIFT;
	read_claim(in, claim_byte, d.pieces_fds, &d.claim);
	d.fragment = fuzz_u8(in);
	d.first_fragment_only = d.fragment & CONN_FRAGMENT_FIRST_ONLY;
	d.fragment &= ~CONN_FRAGMENT_FIRST_ONLY;
	d.data_len = fuzz_take(in, fuzz_u8(in), &d.data);
	log_step("frame kind %u stream %u variant %u claim %s%d@%lld, %zu data bytes, fragments "
	         "of %u, %u reads, %zu FDs before the last",
	         d.kind, d.stream, d.variant, d.claim.present ? "" : "none ", d.claim.num,
	         (long long)d.claim.seq, d.data_len, d.fragment ? FRAGMENT_BASE + d.fragment : 0,
	         d.pieces, d.pieces_fds);

	fuzz_alloc_hold(true);
	rfd_buf_init(&bytes);
	ok = encode_frame(&d, &bytes);
	fuzz_alloc_hold(false);
	if (ok)
		feed_pieces(&bytes, d.pieces, d.pieces_fds);
	fuzz_alloc_hold(true);
	rfd_buf_free(&bytes);
	fuzz_alloc_hold(false);
}

/* ---- Output ---- */

/* The FD group to send, issued and recorded; NULL when none (or the group could not be made). */
static struct rfd_fdgroup *
make_send_group(size_t n, size_t *index)
{
	struct send_group *s = &run.sends[run.n_sends];
	int fds[RFD_MAX_FDS + 8];
	struct rfd_fdgroup *group;

	*index = SIZE_MAX;
	if (n > fdtrack_available())
		n = fdtrack_available();
	if (n > sizeof(fds) / sizeof(fds[0]))
		n = sizeof(fds) / sizeof(fds[0]);
	if (n == 0 || run.n_sends == MAX_GROUPS)
		return NULL;
	s->first = run.n_send_fds;
	s->n = n;
	s->written = false;
	s->dropped = false;
	s->end = 0;
	for (size_t i = 0; i < n; i++) {
		fds[i] = issue_fd(FD_SENDING, (int)run.n_sends);
		run.send_fds[run.n_send_fds++] = fds[i];
	}
	*index = run.n_sends++;
	group = rfd_fdgroup_new(fds, n);
	if (!group) {
		FUZZ_CHECK(fuzz_alloc_failed() && group_all_closed(fds, n),
		           "a group that could not be made left its FDs open");
		s->dropped = true;
	}
	return group;
}

/* After a send returned @r: the group is the core's to write (its seq stamped when it is), or
 * closed. */
static void
settle_send_group(size_t index, int r)
{
	struct send_group *s;
	bool closed;

	if (index == SIZE_MAX)
		return;
	s = &run.sends[index];
	closed = group_all_closed(run.send_fds + s->first, s->n);
	if (r < 0)
		FUZZ_CHECK(closed, "a refused send left its FDs open");
	s->dropped = closed;
}

static void
check_wire_claim(const struct rfd_fd_metadata *md, uint64_t end)
{
	bool claims = md && md->present && md->has_num && md->num_fds > 0;
	const struct send_group *s = NULL;

	if (lenient_after_failure && end > run.wire_failed_at)
		return;
	if (run.wire_next_written < run.n_written)
		s = &run.sends[run.written_order[run.wire_next_written]];
	if (!claims) {
		FUZZ_CHECK(!s || s->end != end, "FDs went with a message that claims none");
		FUZZ_CHECK(!s || s->end > end, "FDs went with no message");
		return;
	}
	FUZZ_CHECK(s && s->end == end, "a message claims FDs that did not go with its last byte");
	FUZZ_CHECK(s->start >= run.wire_message_start,
	           "the write carrying a message's FDs began before the message");
	FUZZ_CHECK(md->has_seq && md->fd_seq == s->seq && (size_t)md->num_fds == s->n,
	           "a message claims %d FDs at %lld; %zu went, stamped %lld", md->num_fds,
	           (long long)md->fd_seq, s->n, (long long)s->seq);
	run.wire_next_written++;
}

/* A client's PAYLOAD: a sink item, or its completion (COMPLETE, metadata 00, no data). */
static void
wire_sink_payload(const struct rfd_frame *f, uint64_t end)
{
	struct rfd_response_metadata item;
	const char *why = NULL;

	if (!(f->flags & RFD_FLAG_NEXT)) {
		FUZZ_CHECK(f->flags == (RFD_FLAG_COMPLETE | RFD_FLAG_METADATA) &&
		               f->metadata.len == 1 && f->metadata.ptr[0] == 0 && f->data.len == 0,
		           "a client wrote a sink's completion with flags 0x%x, %zu metadata and "
		           "%zu data bytes",
		           f->flags, f->metadata.len, f->data.len);
		check_wire_claim(NULL, end);
		return;
	}
	FUZZ_CHECK(f->flags == (RFD_FLAG_NEXT | RFD_FLAG_METADATA) &&
	               rfd_stream_payload_metadata_decode(f->metadata.ptr, f->metadata.len, &item,
	                                                  &why) == 0 &&
	               item.payload_kind == RFD_PAYLOAD_RESPONSE,
	           "a client wrote a sink item with flags 0x%x whose metadata is wrong: %s",
	           f->flags, why ? why : "not responseMetadata");
	check_wire_claim(&item.fd, end);
}

static void
wire_message(const struct rfd_frame *f, uint64_t end)
{
	struct rfd_request_metadata request;
	struct rfd_response_metadata response;
	const char *why = NULL;

	if (run.role == RFD_ROLE_CLIENT && f->type == RFD_FRAME_PAYLOAD) {
		wire_sink_payload(f, end);
		return;
	}
	if (run.role == RFD_ROLE_CLIENT) {
		FUZZ_CHECK(
		    f->type == RFD_FRAME_REQUEST_RESPONSE || f->type == RFD_FRAME_REQUEST_FNF ||
		        f->type == RFD_FRAME_REQUEST_STREAM || f->type == RFD_FRAME_REQUEST_CHANNEL,
		    "a client wrote a %s", rfd_frame_type_name(f->type));
		FUZZ_CHECK(rfd_request_metadata_decode(f->metadata.ptr, f->metadata.len, &request,
		                                       &why) == 0,
		           "a client wrote request metadata that does not decode: %s", why);
		FUZZ_CHECK(f->type != RFD_FRAME_REQUEST_STREAM || (request.kind == 4 && f->u32 > 0),
		           "a stream request of kind %d asking for %u", request.kind, f->u32);
		FUZZ_CHECK(
		    f->type != RFD_FRAME_REQUEST_CHANNEL ||
		        (request.kind == 6 && f->u32 == 2 && !(f->flags & RFD_FLAG_COMPLETE)),
		    "a sink request of kind %d asking for %u, flags 0x%x", request.kind, f->u32,
		    f->flags);
		check_wire_claim(&request.fd, end);
		return;
	}
	FUZZ_CHECK(f->type == RFD_FRAME_PAYLOAD, "a server wrote a %s",
	           rfd_frame_type_name(f->type));
	if (!(f->flags & RFD_FLAG_NEXT)) {
		/* A stream's completion: no metadata, no data, no FDs. */
		FUZZ_CHECK(!f->has_metadata && f->data.len == 0,
		           "a server wrote COMPLETE on stream %u with a payload", f->stream_id);
		check_wire_claim(NULL, end);
		return;
	}
	FUZZ_CHECK(
	    rfd_response_metadata_decode(f->metadata.ptr, f->metadata.len, &response, &why) == 0,
	    "a server wrote response metadata that does not decode: %s", why);
	/* Every stream item and exception the core writes has a struct in field 3. */
	if (response.item_fields)
		FUZZ_CHECK(rfd_stream_payload_metadata_decode(f->metadata.ptr, f->metadata.len,
		                                              &response, &why) == 0 &&
		               response.payload_kind != RFD_PAYLOAD_NONE,
		           "a server wrote stream item metadata that does not decode: %s", why);
	check_wire_claim(&response.fd, end);
}

static void
wire_frame(const struct rfd_frame *f, uint64_t start, uint64_t end)
{
	struct rfd_frame whole;
	const char *why = NULL;
	int r;

	if (!run.wire_first_done) {
		run.wire_first_done = true;
		if (run.role == RFD_ROLE_CLIENT)
			FUZZ_CHECK(f->type == RFD_FRAME_SETUP || f->type == RFD_FRAME_ERROR,
			           "a client began with %s", rfd_frame_type_name(f->type));
		else
			FUZZ_CHECK(f->type == RFD_FRAME_METADATA_PUSH || f->type == RFD_FRAME_ERROR,
			           "a server began with %s", rfd_frame_type_name(f->type));
		return;
	}
	switch (f->type) {
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_PAYLOAD:
		break;
	default:
		check_wire_claim(NULL, end);
		return;
	}
	FUZZ_CHECK(!run.wire_reassembly.active || run.wire_reassembly.stream_id == f->stream_id,
	           "fragments of two messages interleaved");
	if (!run.wire_reassembly.active)
		run.wire_message_start = start;
	r = rfd_reassembly_add(&run.wire_reassembly, f, &whole, &why);
	FUZZ_CHECK(r >= 0, "written fragments do not reassemble: %s", why ? why : "?");
	if (r == 1) {
		wire_message(&whole, end);
		rfd_reassembly_free(&run.wire_reassembly);
		rfd_reassembly_init(&run.wire_reassembly, SIZE_MAX);
	}
}

/* A write that took nothing (EAGAIN): the same chunk, with the same FDs, must be next. */
static void
write_nothing(void)
{
	struct rfd_out_chunk before, after;

	step_begin();
	if (!rfd_conn_out_peek(run.conn, &before))
		return;
	log_step("write nothing of a %zu-byte chunk with %zu FDs", before.len, before.n_fds);
	rfd_conn_out_advance(run.conn, 0);
	FUZZ_CHECK(rfd_conn_out_peek(run.conn, &after) && after.bytes == before.bytes &&
	               after.len == before.len && after.fds == before.fds &&
	               after.n_fds == before.n_fds,
	           "a write of nothing changed the next chunk");
	for (size_t i = 0; i < after.n_fds; i++)
		FUZZ_CHECK(fdtrack_closes(after.fds[i]) == 0, "a write of nothing closed an FD");
	check_invariants();
}

/* Decode everything complete that the core wrote. */
static void
wire_parse(void)
{
	size_t pos = 0;

	if (run.wire.len == 0)
		return;
	fuzz_alloc_hold(true);
	for (;;) {
		struct rfd_frame f;
		const char *why = NULL;
		size_t frame_len;
		int r =
		    rfd_frame_split(run.wire.data + pos, run.wire.len - pos,
		                    RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX, &frame_len, &why);

		FUZZ_CHECK(r >= 0, "the core wrote a bad frame length: %s", why ? why : "?");
		if (r == 0)
			break;
		r = rfd_frame_decode(run.wire.data + pos + RFD_FRAME_LENGTH_SIZE,
		                     frame_len - RFD_FRAME_LENGTH_SIZE, &f, &why);
		FUZZ_CHECK(r == 0, "the core wrote a frame that does not decode: %s",
		           why ? why : "?");
		wire_frame(&f, run.wire_base + pos, run.wire_base + pos + frame_len);
		pos += frame_len;
	}
	fuzz_alloc_hold(false);
	run.wire_base += pos;
	bytes_consume(&run.wire, pos);
}

static bool
write_chunk(size_t amount)
{
	struct send_group *group = NULL;
	struct rfd_out_chunk chunk;
	size_t written;

	step_begin();
	if (!rfd_conn_out_peek(run.conn, &chunk)) {
		FUZZ_CHECK(rfd_conn_out_pending(run.conn) == 0, "bytes pending but no chunk");
		return false;
	}
	FUZZ_CHECK(chunk.len > 0 && chunk.len <= rfd_conn_out_pending(run.conn),
	           "chunk of %zu bytes, %zu pending", chunk.len, rfd_conn_out_pending(run.conn));
	if (chunk.n_fds) {
		const struct fd_info *info = info_of(chunk.fds[0]);

		FUZZ_CHECK(info->origin == FD_SENDING, "chunk with FDs nobody sent");
		group = &run.sends[info->group];
		FUZZ_CHECK(
		    !group->written && !group->dropped && chunk.n_fds == group->n &&
		        memcmp(chunk.fds, run.send_fds + group->first, group->n * sizeof(int)) == 0,
		    "chunk FDs are not a group sent and not yet written, in order");
		for (size_t i = 0; i < group->n; i++)
			FUZZ_CHECK(fdtrack_closes(chunk.fds[i]) == 0, "chunk carries a closed FD");
	}
	written = amount == 0 || amount > chunk.len ? chunk.len : amount;
	log_step("write %zu of a %zu-byte chunk with %zu FDs", written, chunk.len, chunk.n_fds);
	bytes_append(&run.wire, chunk.bytes, written);
	if (group) {
		group->written = true;
		group->start = run.wire_total;
		group->end = run.wire_total + chunk.len;
		group->seq = run.send_seq;
		run.send_seq = seq_add(run.send_seq, group->n);
		run.written_order[run.n_written++] = (size_t)(group - run.sends);
	}
	run.wire_total += written;
	rfd_conn_out_advance(run.conn, written);
	if (group)
		FUZZ_CHECK(group_all_closed(run.send_fds + group->first, group->n),
		           "FDs still open after the write that sent them");
	wire_parse();
	check_invariants();
	return true;
}

static void
drain(void)
{
	for (int i = 0; i < DRAIN_MAX_WRITES && write_chunk(0); i++)
		;
}

/* ---- API calls ---- */

/* The length of a big message of @units, within what is left of the run's budget. */
static size_t
big_length(uint8_t units)
{
	size_t len = (size_t)units * BIG_UNIT;

	if (len > BIG_BUDGET - run.big_total)
		len = BIG_BUDGET - run.big_total;
	run.big_total += len;
	return len;
}

static void
send_request(struct fuzz_input *in, bool big, bool stream, bool sink)
{
	uint8_t kind = fuzz_u8(in);
	bool oneway = !stream && !sink && (kind & 1);
	char method[16];
	const uint8_t *name, *args;
	size_t name_len = fuzz_take(in, fuzz_u8(in) % sizeof(method), &name);
	size_t args_len = big ? big_length(fuzz_u8(in)) : fuzz_take(in, fuzz_u8(in), &args);
	size_t n_fds = fuzz_u8(in), index;
	int32_t timeout = (int32_t)fuzz_u32(in);
	uint32_t initial_n = stream ? fuzz_u8(in) : 0;
	struct rfd_fdgroup *group;
	bool full;
	uint32_t id = 0;
	int r;

	if (big)
		args = big_zeros;
	memcpy(method, name, name_len);
	method[name_len] = '\0';
	step_begin();
	group = make_send_group(n_fds, &index);
	if (index != SIZE_MAX && !group)
		return;
	n_fds = group ? group->n : 0;
	full = rfd_conn_in_flight(run.conn) >= run.limits.max_in_flight;
	if (stream)
		r = rfd_conn_send_stream(run.conn, method, args, args_len, timeout, initial_n,
		                         group, &id);
	else if (sink)
		r = rfd_conn_send_sink(run.conn, method, args, args_len, timeout, group, &id);
	else
		r = rfd_conn_send_request(run.conn,
		                          oneway ? RFD_REQUEST_ONEWAY : RFD_REQUEST_RESPONSE,
		                          method, args, args_len, timeout, group, &id);
	log_step("send %s '%s' with %zu FDs: %d, stream %u",
	         stream   ? "stream"
	         : sink   ? "sink"
	         : oneway ? "one-way"
	                  : "request",
	         method, n_fds, r, id);
	run.input_total += args_len;
	if (run.error)
		FUZZ_CHECK(r == run.error, "send after failure returned %d", r);
	else if (stream && initial_n == 0)
		FUZZ_CHECK(r == -EINVAL, "a stream asking for 0 returned %d", r);
	else if (n_fds > RFD_MAX_FDS)
		FUZZ_CHECK(r == -E2BIG, "a request with %zu FDs returned %d", n_fds, r);
	else if (!oneway && full)
		FUZZ_CHECK(r == -EAGAIN, "a request over the in-flight limit returned %d", r);
	else
		FUZZ_CHECK(r == 0 || (r == -ENOMEM && fuzz_alloc_failed()), "send_request: %d", r);
	if (r == 0) {
		FUZZ_CHECK(id && id < 0x80000000u && id % 2 == 1, "request on stream %u", id);
		FUZZ_CHECK(!find_call(id), "stream %u given to two calls", id);
		FUZZ_CHECK(run.n_calls < MAX_CALLS, "more calls than the limit allows");
		if (!oneway)
			run.calls[run.n_calls++] = (struct call){.stream = id,
			                                         .is_stream = stream,
			                                         .is_sink = sink,
			                                         .credits = initial_n};
		FUZZ_CHECK(index == SIZE_MAX ||
		               !group_all_closed(run.send_fds + run.sends[index].first, n_fds),
		           "a queued request's FDs were closed");
	}
	settle_send_group(index, r);
	check_invariants();
}

static void
send_answer(struct fuzz_input *in, bool big)
{
	uint8_t which = fuzz_u8(in), answer = fuzz_u8(in);
	const uint8_t *data = big_zeros;
	size_t len = big ? big_length(fuzz_u8(in)) : fuzz_take(in, fuzz_u8(in), &data);
	size_t n_fds = answer % 3 == 0 ? fuzz_u8(in) : 0, index = SIZE_MAX;
	uint32_t stream =
	    (which & 0x80) || !run.n_open ? which & 0x7f : run.open[which % run.n_open].stream;
	bool was_open = stream_is_open(stream);
	struct rfd_fdgroup *group = NULL;
	int r;

	step_begin();
	if (answer % 3 == 0) {
		group = make_send_group(n_fds, &index);
		if (index != SIZE_MAX && !group)
			return;
		n_fds = group ? group->n : 0;
		r = rfd_conn_send_reply(run.conn, stream, data, len, group);
	} else if (answer % 3 == 1) {
		r = rfd_conn_send_exception(run.conn, stream, "E", "what", data, len, NULL);
	} else {
		r = rfd_conn_send_error(run.conn, stream, (enum rfd_failure)(answer / 3 % FAILURES),
		                        "failed");
	}
	log_step("answer %u on stream %u with %zu FDs: %d", answer % 3, stream, n_fds, r);
	run.input_total += len;
	if (run.error) {
		FUZZ_CHECK(r == run.error, "answer after failure returned %d", r);
	} else if (n_fds > RFD_MAX_FDS) {
		FUZZ_CHECK(r == -E2BIG, "a reply with %zu FDs returned %d", n_fds, r);
	} else if (!was_open) {
		FUZZ_CHECK(r == -ENOENT, "answer on stream %u, not open, returned %d", stream, r);
	} else {
		FUZZ_CHECK(r == 0 || (r == -ENOMEM && fuzz_alloc_failed()), "answer: %d", r);
		remove_open(stream);
	}
	settle_send_group(index, r);
	check_invariants();
}

enum stream_call { STREAM_OPEN, STREAM_ITEM, STREAM_COMPLETE, STREAM_EXCEPTION, STREAM_ERROR };

/* What a server's stream call must return, from the model. */
static int
stream_call_expected(const struct srv *srv, enum stream_call call, unsigned credits)
{
	if (call == STREAM_OPEN) {
		if (!srv || (srv->state != SRV_OPEN && srv->state != SRV_CANCELLED))
			return -ENOENT;
		if (srv->state == SRV_CANCELLED)
			return -ECANCELED;
		return srv->is_stream ? 0 : -EINVAL;
	}
	if (!srv || srv->state != SRV_FLOWING)
		return -ENOENT;
	/* Items and the completion are a stream's; an exception or an error ends a sink too. */
	if ((call == STREAM_ITEM || call == STREAM_COMPLETE) && !srv->is_stream)
		return -ENOENT;
	return call == STREAM_ITEM && credits == 0 ? -EAGAIN : 0;
}

/* A server's stream call: first response, item, or an end. */
static void
send_stream_call(struct fuzz_input *in, bool big)
{
	uint8_t which = fuzz_u8(in);
	enum stream_call call = (enum stream_call)(fuzz_u8(in) % 5);
	const uint8_t *data = big_zeros;
	bool has_data = call == STREAM_OPEN || call == STREAM_ITEM || call == STREAM_EXCEPTION;
	size_t len = 0, n_fds = 0, index = SIZE_MAX;
	uint32_t stream =
	    (which & 0x80) || !run.n_open ? which & 0x7f : run.open[which % run.n_open].stream;
	struct srv *srv = find_open(stream);
	unsigned credits = rfd_conn_stream_credits(run.conn, stream);
	struct rfd_fdgroup *group = NULL;
	int r, expected;

	if (has_data)
		len = big ? big_length(fuzz_u8(in)) : fuzz_take(in, fuzz_u8(in), &data);
	if (call == STREAM_OPEN || call == STREAM_ITEM)
		n_fds = fuzz_u8(in);
	step_begin();
	expected = stream_call_expected(srv, call, credits);
	if (n_fds) {
		group = make_send_group(n_fds, &index);
		if (index != SIZE_MAX && !group)
			return;
		n_fds = group ? group->n : 0;
	}
	switch (call) {
	case STREAM_OPEN:
		r = rfd_conn_stream_open(run.conn, stream, data, len, group);
		break;
	case STREAM_ITEM:
		r = rfd_conn_stream_send(run.conn, stream, data, len, group);
		break;
	case STREAM_COMPLETE:
		r = rfd_conn_stream_complete(run.conn, stream);
		break;
	case STREAM_EXCEPTION:
		r = rfd_conn_stream_exception(run.conn, stream, "E", "what", data, len, NULL);
		break;
	default:
		r = rfd_conn_stream_error(run.conn, stream, 0x201, "failed");
		break;
	}
	log_step("stream call %d on stream %u with %zu FDs (credits %u): %d", call, stream, n_fds,
	         credits, r);
	run.input_total += len;
	if (run.error)
		FUZZ_CHECK(r == run.error, "a stream call after failure returned %d", r);
	else if (n_fds > RFD_MAX_FDS)
		FUZZ_CHECK(r == -E2BIG, "a stream message with %zu FDs returned %d", n_fds, r);
	else
		FUZZ_CHECK(r == expected || (r == -ENOMEM && fuzz_alloc_failed()),
		           "stream call %d on stream %u returned %d, not %d", call, stream, r,
		           expected);
	if (!run.error && n_fds <= RFD_MAX_FDS && srv && expected != -ENOENT) {
		if (call == STREAM_OPEN && r == 0) {
			srv->state = SRV_FLOWING;
		} else if (call == STREAM_OPEN) {
			/* Cancelled, not a stream, or out of memory: forgotten. */
			remove_open(stream);
		} else if (call == STREAM_ITEM && r == 0) {
			if (srv->balance < NO_LIMIT)
				srv->balance--;
		} else if (call != STREAM_ITEM && r == 0) {
			srv->state = SRV_ENDING;
		}
	}
	settle_send_group(index, r);
	check_invariants();
}

static void
op_send(struct fuzz_input *in, uint8_t arg)
{
	bool big = arg & 1, stream = arg & 2, sink = !stream && (arg & 4);

	if (run.role == RFD_ROLE_CLIENT)
		send_request(in, big, stream, sink);
	else if (stream)
		send_stream_call(in, big);
	else
		send_answer(in, big);
}

static void
op_abandon(struct fuzz_input *in)
{
	uint8_t which = fuzz_u8(in);

	if (run.role != RFD_ROLE_CLIENT)
		return;
	step_begin();
	if (run.n_calls == 0) {
		rfd_conn_abandon(run.conn, which);
	} else {
		struct call *call = &run.calls[which % run.n_calls];

		rfd_conn_abandon(run.conn, call->stream);
		if (!call->abandoned && (call->is_stream || call->is_sink))
			call->order = run.abandon_clock++;
		call->abandoned = true;
		forget_oldest_abandoned(run.calls, &run.n_calls);
	}
	check_invariants();
}

static void
op_request_n(struct fuzz_input *in)
{
	uint8_t which = fuzz_u8(in), n = fuzz_u8(in);
	struct call *call;
	int r, expected;

	if (run.role != RFD_ROLE_CLIENT)
		return;
	step_begin();
	call = run.n_calls ? &run.calls[which % run.n_calls] : NULL;
	r = rfd_conn_stream_request(run.conn, call ? call->stream : which, n);
	log_step("REQUEST_N %u on stream %u: %d", n, call ? call->stream : which, r);
	if (!call || !call->is_stream || call->abandoned)
		expected = -ENOENT;
	else if (n == 0 || !call->started)
		expected = -EINVAL;
	else
		expected = 0;
	if (run.error)
		FUZZ_CHECK(r == run.error, "REQUEST_N after failure returned %d", r);
	else
		FUZZ_CHECK(r == expected || (r == -ENOMEM && fuzz_alloc_failed()),
		           "REQUEST_N returned %d, not %d", r, expected);
	if (r == 0 && call)
		call->credits = credits_add(call->credits, n);
	check_invariants();
}

enum sink_call { SINK_OPEN, SINK_REQUEST_N, SINK_FINISH, SINK_EXCEPTION, SINK_END_EXCEPTION };

/* What a server's sink call (or exception with FDs) must return, from the model. */
static int
sink_call_expected(const struct srv *srv, enum sink_call call, size_t n_fds, uint8_t n)
{
	bool flowing = srv && srv->state == SRV_FLOWING;
	bool open = srv && (srv->state == SRV_OPEN || srv->state == SRV_CANCELLED);
	unsigned agreed = model_agreed();

	switch (call) {
	case SINK_OPEN:
		if (!open)
			return -ENOENT;
		if (srv->state == SRV_CANCELLED)
			return -ECANCELED;
		return srv->is_sink ? 0 : -EINVAL;
	case SINK_REQUEST_N:
		if (!flowing || !srv->is_sink || srv->completed)
			return -ENOENT;
		return n == 0 ? -EINVAL : 0;
	case SINK_FINISH:
		if (!flowing || !srv->is_sink)
			return -ENOENT;
		return n_fds && !(agreed & RFD_EXTENSION_SINK) ? -EOPNOTSUPP : 0;
	case SINK_EXCEPTION:
		if (n_fds && !(agreed & RFD_EXTENSION_EXCEPTION))
			return -EOPNOTSUPP;
		return open ? 0 : -ENOENT;
	default:
		if (!flowing)
			return -ENOENT;
		return n_fds && !(agreed & RFD_EXTENSION_EXCEPTION) ? -EOPNOTSUPP : 0;
	}
}

/* The model after a sink call that returned @r as it should. */
static void
sink_call_done(struct srv *srv, enum sink_call call, int r, int expected, uint8_t n)
{
	if (!srv || expected == -ENOENT || expected == -EOPNOTSUPP)
		return;
	switch (call) {
	case SINK_OPEN:
		if (r == 0) {
			srv->state = SRV_FLOWING;
			srv->credits = 0;
		} else {
			/* Cancelled, not a sink, or out of memory: forgotten. */
			remove_open(srv->stream);
		}
		break;
	case SINK_REQUEST_N:
		if (r == 0)
			srv->credits = credits_add(srv->credits, n);
		break;
	case SINK_EXCEPTION:
		if (r == 0 || r == -ENOMEM)
			remove_open(srv->stream);
		break;
	default:
		if (r == 0)
			srv->state = SRV_ENDING;
		break;
	}
}

/* A server's sink call, or a declared exception with FDs. */
static void
server_sink_call(struct fuzz_input *in, bool big)
{
	uint8_t which = fuzz_u8(in);
	enum sink_call call = (enum sink_call)(fuzz_u8(in) % 5);
	const uint8_t *data = big_zeros;
	size_t len = 0, n_fds = 0, index = SIZE_MAX;
	uint8_t n = 0;
	uint32_t stream =
	    (which & 0x80) || !run.n_open ? which & 0x7f : run.open[which % run.n_open].stream;
	struct srv *srv = find_open(stream);
	struct rfd_fdgroup *group = NULL;
	int r, expected;

	if (call == SINK_REQUEST_N) {
		n = fuzz_u8(in);
	} else {
		len = big ? big_length(fuzz_u8(in)) : fuzz_take(in, fuzz_u8(in), &data);
		n_fds = fuzz_u8(in);
	}
	step_begin();
	if (n_fds) {
		group = make_send_group(n_fds, &index);
		if (index != SIZE_MAX && !group)
			return;
		n_fds = group ? group->n : 0;
	}
	expected = sink_call_expected(srv, call, n_fds, n);
	switch (call) {
	case SINK_OPEN:
		r = rfd_conn_sink_open(run.conn, stream, data, len, group);
		break;
	case SINK_REQUEST_N:
		r = rfd_conn_sink_request(run.conn, stream, n);
		break;
	case SINK_FINISH:
		r = rfd_conn_sink_finish(run.conn, stream, data, len, group);
		break;
	case SINK_EXCEPTION:
		r = rfd_conn_send_exception(run.conn, stream, "E", "what", data, len, group);
		break;
	default:
		r = rfd_conn_stream_exception(run.conn, stream, "E", "what", data, len, group);
		break;
	}
	log_step("sink call %d on stream %u with %zu FDs: %d", call, stream, n_fds, r);
	run.input_total += len;
	if (run.error)
		FUZZ_CHECK(r == run.error, "a sink call after failure returned %d", r);
	else if (n_fds > RFD_MAX_FDS)
		FUZZ_CHECK(r == -E2BIG, "a sink message with %zu FDs returned %d", n_fds, r);
	else
		FUZZ_CHECK(r == expected || (r == -ENOMEM && fuzz_alloc_failed()),
		           "sink call %d on stream %u returned %d, not %d", call, stream, r,
		           expected);
	if (!run.error && n_fds <= RFD_MAX_FDS)
		sink_call_done(srv, call, r, expected, n);
	settle_send_group(index, r);
	check_invariants();
}

/* A client's sink call: an item, or the completion. */
static void
client_sink_call(struct fuzz_input *in, bool big)
{
	uint8_t which = fuzz_u8(in), what = fuzz_u8(in);
	struct call *call = run.n_calls ? &run.calls[which % run.n_calls] : NULL;
	uint32_t stream = call ? call->stream : which;
	bool open = call && call->is_sink && !call->abandoned && call->started && !call->completed;
	const uint8_t *data = big_zeros;
	size_t len = 0, n_fds = 0, index = SIZE_MAX;
	struct rfd_fdgroup *group = NULL;
	unsigned credits;
	int r, expected;

	if (!(what & 1)) {
		len = big ? big_length(fuzz_u8(in)) : fuzz_take(in, fuzz_u8(in), &data);
		n_fds = fuzz_u8(in);
	}
	step_begin();
	credits = rfd_conn_sink_credits(run.conn, stream);
	if (what & 1) {
		expected = open ? 0 : -ENOENT;
		r = rfd_conn_sink_complete(run.conn, stream);
	} else {
		group = make_send_group(n_fds, &index);
		if (index != SIZE_MAX && !group)
			return;
		n_fds = group ? group->n : 0;
		expected = !open                    ? -ENOENT
		           : n_fds && !call->agreed ? -EOPNOTSUPP
		           : credits == 0           ? -EAGAIN
		                                    : 0;
		r = rfd_conn_sink_send(run.conn, stream, data, len, group);
	}
	log_step("sink %s on stream %u with %zu FDs (credits %u): %d",
	         what & 1 ? "completion" : "item", stream, n_fds, credits, r);
	run.input_total += len;
	if (run.error)
		FUZZ_CHECK(r == run.error, "a sink call after failure returned %d", r);
	else if (n_fds > RFD_MAX_FDS)
		FUZZ_CHECK(r == -E2BIG, "a sink item with %zu FDs returned %d", n_fds, r);
	else
		FUZZ_CHECK(r == expected || (r == -ENOMEM && fuzz_alloc_failed()),
		           "sink %s on stream %u returned %d, not %d",
		           what & 1 ? "completion" : "item", stream, r, expected);
	if (r == 0 && (what & 1))
		call->completed = true;
	else if (r == 0)
		credits_spend(&call->credits);
	settle_send_group(index, r);
	check_invariants();
}

static void
op_sink(struct fuzz_input *in, uint8_t arg)
{
	if (run.role == RFD_ROLE_CLIENT)
		client_sink_call(in, arg & 1);
	else
		server_sink_call(in, arg & 1);
}

static void
free_held(size_t index, size_t take)
{
	struct held *h = &run.held[index];
	size_t n = rfd_msg_fd_count(h->msg);
	int left[RFD_MAX_FDS];
	size_t n_left = 0;

	for (size_t i = 0; i < take && i < n; i++) {
		int expected = rfd_msg_fd(h->msg, i);
		int fd = rfd_msg_take_fd(h->msg, i);

		FUZZ_CHECK(fd == expected && fd >= 0, "take_fd gave %d, expected %d", fd, expected);
		FUZZ_CHECK(rfd_msg_take_fd(h->msg, i) == -1, "an FD taken twice");
		info_of(fd)->taken = true;
		info_of(fd)->held = -1;
		close(fd);
	}
	for (size_t i = take < n ? take : n; i < n; i++) {
		left[n_left] = rfd_msg_fd(h->msg, i);
		info_of(left[n_left++])->held = -1;
	}
	rfd_msg_free(h->msg);
	FUZZ_CHECK(group_all_closed(left, n_left), "rfd_msg_free left an FD open");
	*h = run.held[--run.n_held];
	if (index == run.n_held)
		return;
	for (size_t i = 0; i < rfd_msg_fd_count(h->msg); i++) {
		int fd = rfd_msg_fd(h->msg, i);

		if (fd >= 0)
			info_of(fd)->held = (int)index;
	}
}

static void
op_free(struct fuzz_input *in)
{
	uint8_t which = fuzz_u8(in), take = fuzz_u8(in);

	if (run.n_held == 0)
		return;
	step_begin();
	free_held(which % run.n_held, take);
	check_invariants();
}

/* ---- The run ---- */

static void
read_limits(struct fuzz_input *in, struct rfd_limits *limits)
{
	uint8_t cap = fuzz_u8(in), budget = fuzz_u8(in), in_flight = fuzz_u8(in);
	uint8_t max_frame = fuzz_u8(in), max_message = fuzz_u8(in);

	limits->max_fds_per_msg = 1 + cap % RFD_MAX_FDS;
	limits->fd_budget = 2 * (size_t)limits->max_fds_per_msg + 4 * (size_t)budget;
	if (limits->fd_budget > BUDGET_MAX)
		limits->fd_budget = BUDGET_MAX;
	limits->max_in_flight = 1 + in_flight % 32;
	if (max_frame)
		limits->max_frame = 64 * (size_t)max_frame;
	if (max_message)
		limits->max_message = 256 * (size_t)max_message;
}

static void
handshake(void)
{
	struct frame_desc d = {.kind = run.role == RFD_ROLE_SERVER ? CONN_FRAME_SETUP
	                                                           : CONN_FRAME_PUSH};
	struct rfd_buf bytes;
	bool ok;

	fuzz_alloc_hold(true);
	rfd_buf_init(&bytes);
	ok = encode_frame(&d, &bytes);
	fuzz_alloc_hold(false);
	FUZZ_CHECK(ok, "cannot encode the handshake");
	feed(bytes.data, bytes.len, false);
	fuzz_alloc_hold(true);
	rfd_buf_free(&bytes);
	fuzz_alloc_hold(false);
}

static void
run_op(struct fuzz_input *in)
{
	uint8_t op = fuzz_u8(in);
	const uint8_t *bytes;
	size_t n;

	switch (op & 0x0f) {
	case CONN_OP_BYTES:
	case CONN_OP_BYTES_ZC:
		n = fuzz_take(in, (size_t)(op >> 4) << 8 | fuzz_u8(in), &bytes);
		feed(bytes, n, (op & 0x0f) == CONN_OP_BYTES_ZC);
		break;
	case CONN_OP_FDS:
		n = fuzz_u8(in);
		give_fds(n | (size_t)(op >> 4 & 1) << 8);
		break;
	case CONN_OP_FRAME:
		op_frame(in);
		break;
	case CONN_OP_WRITE:
		if (op >> 4 & 8)
			write_nothing();
		else
			write_chunk((size_t)fuzz_u16(in) << (op >> 4 & 7));
		break;
	case CONN_OP_DRAIN:
		drain();
		break;
	case CONN_OP_SEND:
		op_send(in, op >> 4);
		break;
	case CONN_OP_REQUEST_N:
		op_request_n(in);
		break;
	case CONN_OP_SINK:
		op_sink(in, op >> 4);
		break;
	case CONN_OP_ABANDON:
		op_abandon(in);
		break;
	case CONN_OP_FREE:
		op_free(in);
		break;
	case CONN_OP_EOF:
		step_begin();
		rfd_conn_recv_eof(run.conn);
		FUZZ_CHECK(rfd_conn_error(run.conn) == (run.error ? run.error : -ECONNRESET),
		           "EOF left error %d", rfd_conn_error(run.conn));
		check_invariants();
		break;
	case CONN_OP_FAIL:
		step_begin();
		rfd_conn_fail(run.conn, op >> 4 & 1 ? -ECONNRESET : -EIO, "harness");
		check_invariants();
		break;
	default:
		break;
	}
}

static void
free_all_held(void)
{
	while (run.n_held)
		free_held(run.n_held - 1, 0);
}

/* Everything freed: every FD closed exactly once, no allocation left. */
static void
check_end(void)
{
	for (size_t i = 0; i < fdtrack_count(); i++)
		FUZZ_CHECK(fdtrack_closes(fdtrack_fd(i)) == 1, "FD %d leaked", fdtrack_fd(i));
	FUZZ_CHECK(fuzz_alloc_live_blocks() == 0, "%zu blocks (%zu bytes) leaked",
	           fuzz_alloc_live_blocks(), fuzz_alloc_live_bytes());
}

static void
run_reset(void)
{
	struct delivery *deliveries = run.deliveries;
	struct model_msg *model_msgs = run.model_msgs;
	size_t cap_deliveries = run.cap_deliveries, cap_model_msgs = run.cap_model_msgs;
	struct bytes pending = run.pending, wire = run.wire;

	/* fd_index is large: only the entries of the last run are cleared. */
	for (size_t i = 0; i < fdtrack_count(); i++)
		run.fd_index[fdtrack_fd(i)] = 0;
	memset(&run, 0, offsetof(struct run, fd_index));
	memset(&run.fds, 0, sizeof(run) - offsetof(struct run, fds));
	run.deliveries = deliveries;
	run.cap_deliveries = cap_deliveries;
	run.model_msgs = model_msgs;
	run.cap_model_msgs = cap_model_msgs;
	run.pending = pending;
	run.pending.len = 0;
	run.wire = wire;
	run.wire.len = 0;
	run.wire_failed_at = UINT64_MAX;
}

static void
read_workarounds(const char *list)
{
	char copy[256], *save = NULL;

	if (!list)
		return;
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (strcmp(name, "no-alloc-fail") == 0)
			no_alloc_fail = true;
		else if (strcmp(name, "lenient-after-failure") == 0)
			lenient_after_failure = true;
		else
			fuzz_fail("FUZZ_WORKAROUNDS: unknown '%s'", name);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdtrack_init();
	log_steps = getenv("FUZZ_CONN_LOG") != NULL;
	read_workarounds(getenv("FUZZ_WORKAROUNDS"));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in;
	uint8_t options;

	fuzz_input_init(&in, data, size);
	options = fuzz_u8(&in);
	run_reset();
	fdtrack_begin();
	run.role = options & CONN_OPT_SERVER ? RFD_ROLE_SERVER : RFD_ROLE_CLIENT;
	rfd_limits_init(&run.limits);
	if (options & CONN_OPT_LIMITS)
		read_limits(&in, &run.limits);
	for (int i = 0; i < MAX_REASSEMBLIES; i++)
		rfd_reassembly_init(&run.reassembly[i], run.limits.max_message);
	rfd_reassembly_init(&run.wire_reassembly, SIZE_MAX);
	if (options & CONN_OPT_ALLOC_FAIL) {
		uint16_t index = fuzz_u16(&in);

		fuzz_alloc_fail_at(no_alloc_fail ? -1 : index);
	} else {
		fuzz_alloc_fail_at(-1);
	}
	run.extensions = RFD_EXTENSION_SINK | RFD_EXTENSION_EXCEPTION;
	run.offer = run.extensions;
	if (options & CONN_OPT_EXTENSIONS) {
		uint8_t b = fuzz_u8(&in);

		run.extensions = b & 3;
		run.offer = b >> 2 & 3;
	}

	run.conn =
	    rfd_conn_new_with_extensions(run.role, &run.limits, run.extensions, &callbacks, NULL);
	if (run.conn) {
		if (options & CONN_OPT_HANDSHAKE)
			handshake();
		while (!fuzz_input_empty(&in))
			run_op(&in);
		if (options & CONN_OPT_EOF_AT_END) {
			step_begin();
			rfd_conn_recv_eof(run.conn);
			check_invariants();
		}
		if (options & CONN_OPT_FREE_MSGS_FIRST)
			free_all_held();
		rfd_conn_free(run.conn);
	} else {
		FUZZ_CHECK(fuzz_alloc_failed(), "rfd_conn_new failed");
	}
	free_all_held();
	fuzz_alloc_fail_at(-1);

	for (int i = 0; i < MAX_REASSEMBLIES; i++)
		rfd_reassembly_free(&run.reassembly[i]);
	rfd_reassembly_free(&run.wire_reassembly);
	check_end();
	fdtrack_end();
	return 0;
}
