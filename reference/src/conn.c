/* SPDX-License-Identifier: MIT */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "fault.h"
#include "frame.h"
#include "metadata.h"
#include "streams.h"

#define PROTOCOL_KEY 0xf09f9a80u

static const char METADATA_MIME[] = "application/x-rocket-metadata+compact";
static const char DATA_MIME[] = "application/x-rocket-payload";
static const char CLIENT_AGENT[] = "rocketfd/0.1";

enum {
	VERSION_MIN = 8,
	VERSION_MAX = 10,
	MAX_REASSEMBLIES = 8,     /* fragmented messages being received at once */
	IN_READ_SIZE = 64 * 1024, /* room to read into while a frame is partly read */
	IN_IDLE_SIZE = 4 * 1024,  /* room otherwise, and what the input buffer shrinks back to */
	IN_AHEAD_MAX = 1 << 20,   /* room a frame's length alone may reserve */
	OUT_COMPACT_AT = 1 << 20, /* written bytes kept at the front before compacting */
	ERROR_TEXT_SIZE = 256,
	/*
	 * Stream messages go into the output while less than this waits there
	 * to be written, and fewer than OUT_QUEUE_FD_MESSAGES messages with
	 * FDs; past that they wait in the stream queue, unstamped.
	 */
	OUT_QUEUE_BELOW = 64 * 1024,
	OUT_QUEUE_FD_MESSAGES = 2,
	STREAM_QUEUE_MAX = 4,     /* messages one stream may have waiting */
	CREDITS_MAX = 0x7FFFFFFF, /* a stream's credits saturate here, as RSocket's 2^31-1 */
	SINK_INITIAL_N = 2,       /* a sink's first and final response, as fbthrift asks */
	EXTENSIONS_IMPLEMENTED = RFD_EXTENSION_SINK | RFD_EXTENSION_EXCEPTION,
};

_Static_assert((int)RFD_EXT_SINK == (int)RFD_EXTENSION_SINK &&
                   (int)RFD_EXT_EXCEPTION == (int)RFD_EXTENSION_EXCEPTION,
               "the extension bits of metadata.h are those of rocketfd.h");

/* What a stream or sink message waiting for room in the output is. */
enum pending_type {
	PENDING_ITEM,          /* an item of a stream (server) or a sink (client) */
	PENDING_COMPLETE,      /* a stream's completion */
	PENDING_EXCEPTION,     /* a declared exception that ends a stream or a sink */
	PENDING_ERROR,         /* an ERROR that ends a stream or a sink */
	PENDING_FINAL,         /* a sink's final response */
	PENDING_SINK_COMPLETE, /* the client's completion of a sink's items */
};

/*
 * A stream message waiting in the stream queue.  Its FDs get their
 * fdSeqNum only when it goes into the output, so that one dropped here
 * leaves the sequence of the others intact.
 */
struct pending {
	struct pending *next;
	uint32_t stream_id;
	uint8_t type;
	uint32_t error_code;
	struct rfd_fdgroup *fds;
	size_t data_len;
	const char *name; /* exception name, in block[] */
	const char *what; /* exception or error text, in block[] */
	uint8_t block[];
};

struct rfd_conn {
	enum rfd_role role;
	struct rfd_limits limits;
	struct rfd_conn_callbacks cb;
	void *user;

	int error;
	char error_text[ERROR_TEXT_SIZE];
	char reason[ERROR_TEXT_SIZE]; /* detail of the message being failed */
	bool setup_done;
	unsigned extensions;      /* client: offered; server: accepted if offered */
	unsigned peer_extensions; /* server: what the client offered */

	struct rfd_buf in;
	struct rfd_fdqueue received;
	struct rfd_reassembly reassembly[MAX_REASSEMBLIES];

	struct rfd_buf out;
	size_t out_head;   /* bytes of out already written */
	uint64_t out_base; /* stream offset of out.data[0] */
	bool out_mid;      /* the last write ended inside a chunk */
	/* FD groups to send, each with its message's bytes (out_start, out_end) alone. */
	struct rfd_fdgroup *marks;
	struct rfd_fdgroup *marks_tail;
	size_t n_marks;
	int64_t send_seq;        /* fdSeqNum of the next FDs to send */
	struct pending *pending; /* the stream queue, oldest first */
	struct pending *pending_tail;
	size_t pending_fds; /* FDs of the messages in the stream queue */

	struct rfd_streams streams;
	size_t n_abandoned;     /* client: abandoned streams in streams */
	uint32_t abandon_clock; /* client: the order of the next stream abandoned */
	uint32_t next_stream_id;
	struct rfd_buf scratch; /* metadata being encoded */
};

/* ---- Messages ---- */

struct rfd_msg *
rfd_msg_alloc(size_t data_len, size_t text_len)
{
	struct rfd_msg *msg;

	if (data_len > SIZE_MAX / 2 || text_len > SIZE_MAX / 2)
		return NULL;
	msg = rfd_malloc(sizeof(*msg) + data_len + text_len);
	if (!msg)
		return NULL;
	memset(msg, 0, sizeof(*msg));
	msg->data = msg->block;
	msg->data_len = data_len;
	msg->method = "";
	msg->error_text = "";
	return msg;
}

/* Copy @s into the message's block after the data; returns the copy. */
static const char *
msg_put_text(struct rfd_msg *msg, size_t *offset, const uint8_t *s, size_t len)
{
	char *text = (char *)msg->block + msg->data_len + *offset;

	if (len)
		memcpy(text, s, len);
	text[len] = '\0';
	*offset += len + 1;
	return text;
}

/* ---- Tracing ---- */

static void
trace_frame(const struct rfd_conn *conn, char direction, const struct rfd_frame *frame)
{
	char line[200];

	if (!conn->cb.trace)
		return;
	snprintf(
	    line, sizeof(line), "%c %s stream %" PRIu32 " flags 0x%03x%s metadata %zu data %zu",
	    direction, rfd_frame_type_name(frame->type), frame->stream_id, frame->flags,
	    frame->type == RFD_FRAME_ERROR ? " error" : "", frame->metadata.len, frame->data.len);
	conn->cb.trace(conn->cb.trace_user, line);
}

/* ---- Failure ---- */

static void
close_marks(struct rfd_conn *conn)
{
	while (conn->marks) {
		struct rfd_fdgroup *mark = conn->marks;

		conn->marks = mark->next;
		rfd_fdgroup_free(mark);
	}
	conn->marks_tail = NULL;
	conn->n_marks = 0;
}

static void
pending_free(struct pending *p)
{
	rfd_fdgroup_free(p->fds);
	rfd_free(p);
}

static size_t
pending_fd_count(const struct pending *p)
{
	return p->fds ? p->fds->n : 0;
}

static void
close_pending(struct rfd_conn *conn)
{
	while (conn->pending) {
		struct pending *p = conn->pending;

		conn->pending = p->next;
		pending_free(p);
	}
	conn->pending_tail = NULL;
	conn->pending_fds = 0;
}

static void
forget_streams(struct rfd_conn *conn)
{
	rfd_streams_free(&conn->streams);
	conn->n_abandoned = 0;
}

static void
release_input(struct rfd_conn *conn)
{
	rfd_fdqueue_clear(&conn->received);
	for (int i = 0; i < MAX_REASSEMBLIES; i++) {
		rfd_reassembly_free(&conn->reassembly[i]);
		rfd_reassembly_init(&conn->reassembly[i], conn->limits.max_message);
	}
}

static int queue_error_frame(struct rfd_conn *conn, uint32_t stream_id, uint32_t code,
                             const char *what);
static void pull_pending(struct rfd_conn *conn);

/*
 * Fail the connection: every FD it owns is closed, unsent output dropped, and
 * an ERROR frame with @code queued when the output is at a frame boundary
 * (0: none).  The owner of the connection writes what is queued and closes.
 */
static void __attribute__((format(printf, 4, 5)))
fail(struct rfd_conn *conn, int err, uint32_t code, const char *fmt, ...)
{
	va_list ap;

	assert(err < 0);
	if (conn->error)
		return;

	conn->error = err;
	va_start(ap, fmt);
	vsnprintf(conn->error_text, sizeof(conn->error_text), fmt, ap);
	va_end(ap);

	release_input(conn);
	close_marks(conn);
	close_pending(conn);
	forget_streams(conn);
	/*
	 * Unsent output is dropped whole: its FDs are closed above, so messages
	 * that claim them must not go out either.  After a partial write the
	 * peer sees a cut frame and EOF; otherwise it gets an ERROR frame.
	 */
	conn->out_base += conn->out_head;
	conn->out.len = 0;
	conn->out_head = 0;
	if (!conn->out_mid && code)
		queue_error_frame(conn, 0, code, conn->error_text);
	if (conn->cb.failed)
		conn->cb.failed(conn->user, err, conn->error_text);
}

void
rfd_conn_fail(struct rfd_conn *conn, int err, const char *why)
{
	bool peer_gone = err == -ECONNRESET || err == -EPIPE;

	fail(conn, err, peer_gone ? 0 : RFD_ERROR_CONNECTION_ERROR, "%s", why);
}

/* ---- Output ---- */

static int
queue_frame(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	size_t start = conn->out.len;
	int r = rfd_frame_encode(frame, &conn->out);

	trace_frame(conn, '>', frame);
	if (r < 0)
		conn->out.len = start;
	return r;
}

static int
queue_error_frame(struct rfd_conn *conn, uint32_t stream_id, uint32_t code, const char *what)
{
	struct rfd_frame frame = {.stream_id = stream_id, .type = RFD_FRAME_ERROR, .u32 = code};

	frame.data.ptr = (const uint8_t *)what;
	frame.data.len = strlen(what);
	return queue_frame(conn, &frame);
}

/* An ERROR frame with @code whose data is @error, Compact-encoded. */
static int
queue_error(struct rfd_conn *conn, uint32_t stream_id, uint32_t code,
            const struct rfd_response_error *error)
{
	struct rfd_frame frame = {.stream_id = stream_id, .type = RFD_FRAME_ERROR, .u32 = code};
	int r;

	conn->scratch.len = 0;
	r = rfd_response_error_encode(error, &conn->scratch);
	if (r < 0)
		return r;
	frame.data.ptr = conn->scratch.data;
	frame.data.len = conn->scratch.len;
	return queue_frame(conn, &frame);
}

/*
 * An ERROR frame answering a request, with a Compact ResponseRpcError as
 * its data, as fbthrift's server sends them.
 */
static int
queue_request_error(struct rfd_conn *conn, uint32_t stream_id, uint32_t code, int32_t category,
                    int32_t error_code, const char *what)
{
	struct rfd_response_error error = {
	    .has_what = true,
	    .what = {(const uint8_t *)what, strlen(what)},
	    .has_category = true,
	    .category = category,
	    .has_code = true,
	    .code = error_code,
	};

	return queue_error(conn, stream_id, code, &error);
}

/*
 * Queue a frame that carries a message, with its FDs.  @fds is owned from
 * the call on.  @frame's metadata must already hold the fdMetadata stamped
 * with conn->send_seq when @fds is not NULL.
 */
static int
queue_message(struct rfd_conn *conn, const struct rfd_frame *frame, struct rfd_fdgroup *fds)
{
	size_t start = conn->out.len;
	int r;

	trace_frame(conn, '>', frame);
	/*
	 * Limitation: fragments are cut at a frame size of 0xFFFFFF - 512, where
	 * fbthrift counts that limit in payload bytes: valid Rocket, but not
	 * byte-identical to fbthrift above 16 MiB.
	 */
	r = rfd_frame_encode_fragmented(frame, RFD_FRAGMENT_DEFAULT, &conn->out);
	if (r < 0) {
		conn->out.len = start;
		rfd_fdgroup_free(fds);
		return r;
	}
	if (!fds)
		return 0;

	fds->next = NULL;
	fds->out_start = conn->out_base + start;
	fds->out_end = conn->out_base + conn->out.len;
	if (conn->marks_tail)
		conn->marks_tail->next = fds;
	else
		conn->marks = fds;
	conn->marks_tail = fds;
	conn->n_marks++;
	conn->send_seq = rfd_seq_add(conn->send_seq, (int64_t)fds->n);
	return 0;
}

static void
stamp_fds(const struct rfd_conn *conn, const struct rfd_fdgroup *fds, struct rfd_fd_metadata *md)
{
	memset(md, 0, sizeof(*md));
	if (!fds || fds->n == 0)
		return;
	md->present = true;
	md->has_seq = true;
	md->fd_seq = conn->send_seq;
	md->has_num = true;
	md->num_fds = (int32_t)fds->n;
}

bool
rfd_conn_out_peek(const struct rfd_conn *conn, struct rfd_out_chunk *chunk)
{
	size_t pending = conn->out.len - conn->out_head;

	if (pending == 0)
		return false;
	chunk->bytes = conn->out.data + conn->out_head;
	chunk->len = pending;
	chunk->fds = NULL;
	chunk->n_fds = 0;
	if (conn->marks) {
		uint64_t head = conn->out_base + conn->out_head;

		/* Earlier messages go first, on their own; then the message with its FDs. */
		if (head < conn->marks->out_start) {
			chunk->len = (size_t)(conn->marks->out_start - head);
			return true;
		}
		chunk->len = (size_t)(conn->marks->out_end - head);
		chunk->fds = conn->marks->fds;
		chunk->n_fds = conn->marks->n;
	}
	return true;
}

void
rfd_conn_out_advance(struct rfd_conn *conn, size_t written)
{
	struct rfd_out_chunk chunk;

	if (written == 0 || !rfd_conn_out_peek(conn, &chunk))
		return;
	assert(written <= chunk.len);

	if (chunk.fds && !(RFD_FAULT(resend_after_partial) && written < chunk.len)) {
		struct rfd_fdgroup *mark = conn->marks;

		/* The kernel holds its own references now: drop ours, never resend. */
		conn->marks = mark->next;
		if (!conn->marks)
			conn->marks_tail = NULL;
		conn->n_marks--;
		rfd_fdgroup_free(mark);
	}
	conn->out_mid = written < chunk.len;
	conn->out_head += written;
	if (conn->out_head == conn->out.len) {
		conn->out_base += conn->out.len;
		conn->out.len = 0;
		conn->out_head = 0;
	} else if (conn->out_head >= OUT_COMPACT_AT && conn->out_head * 2 >= conn->out.len) {
		conn->out_base += conn->out_head;
		rfd_buf_consume(&conn->out, conn->out_head);
		conn->out_head = 0;
	}
	pull_pending(conn);
}

size_t
rfd_conn_out_pending(const struct rfd_conn *conn)
{
	return conn->out.len - conn->out_head;
}

static int
queue_setup(struct rfd_conn *conn)
{
	struct rfd_setup_metadata setup = {
	    .has_min_version = true,
	    .min_version = VERSION_MIN,
	    .has_max_version = true,
	    .max_version = VERSION_MAX,
	    .has_agent = true,
	    .agent = {(const uint8_t *)CLIENT_AGENT, sizeof(CLIENT_AGENT) - 1},
	};
	char offer[RFD_EXTENSIONS_TEXT_SIZE];
	struct rfd_frame frame = {
	    .type = RFD_FRAME_SETUP,
	    .version_major = 1,
	    .version_minor = 0,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .metadata_mime = {(const uint8_t *)METADATA_MIME, sizeof(METADATA_MIME) - 1},
	    .data_mime = {(const uint8_t *)DATA_MIME, sizeof(DATA_MIME) - 1},
	    .has_metadata = true,
	};
	int r;

	/* EXT-1: the key only when something is offered. */
	setup.extensions.len = rfd_extensions_format(conn->extensions, offer, sizeof(offer));
	setup.extensions.ptr = (const uint8_t *)offer;
	setup.has_extensions = setup.extensions.len > 0;
	conn->scratch.len = 0;
	r = rfd_buf_put_u32(&conn->scratch, PROTOCOL_KEY);
	if (r < 0)
		return r;
	r = rfd_setup_metadata_encode(&setup, &conn->scratch);
	if (r < 0)
		return r;
	frame.metadata.ptr = conn->scratch.data;
	frame.metadata.len = conn->scratch.len;
	return queue_frame(conn, &frame);
}

static int
queue_setup_response(struct rfd_conn *conn, int32_t version)
{
	struct rfd_server_push push = {
	    .kind = RFD_PUSH_SETUP_RESPONSE,
	    .has_version = true,
	    .version = version,
	};
	struct rfd_frame frame = {
	    .type = RFD_FRAME_METADATA_PUSH,
	    .flags = RFD_FLAG_METADATA,
	    .has_metadata = true,
	};
	int r;

	conn->scratch.len = 0;
	r = rfd_server_push_encode(&push, &conn->scratch);
	if (r < 0)
		return r;
	frame.metadata.ptr = conn->scratch.data;
	frame.metadata.len = conn->scratch.len;
	return queue_frame(conn, &frame);
}

/* ---- FD claims ---- */

/*
 * Take the FDs a complete message claims.  Returns 0 with *out the group (or
 * NULL when it claims none), or -EBADFD with conn->reason saying why.
 */
static int
claim_fds(struct rfd_conn *conn, const struct rfd_fd_metadata *md, struct rfd_fdgroup **out)
{
	struct rfd_fdgroup *group = NULL;
	size_t orphans = 0;
	int64_t head_seq;
	size_t head_n;

	*out = NULL;
	if (!md->present || !md->has_num || md->num_fds == 0)
		return 0;
	if (md->num_fds < 0 || (unsigned)md->num_fds > conn->limits.max_fds_per_msg) {
		snprintf(conn->reason, sizeof(conn->reason), "numFds %" PRId32 " is outside 1..%u",
		         md->num_fds, conn->limits.max_fds_per_msg);
		return -EBADFD;
	}
	if (!md->has_seq || md->fd_seq < 0) {
		snprintf(conn->reason, sizeof(conn->reason),
		         "numFds %" PRId32 " without a valid fdSeqNum", md->num_fds);
		return -EBADFD;
	}

	switch (rfd_fdqueue_claim(&conn->received, md->fd_seq, md->num_fds, &group, &orphans)) {
	case RFD_CLAIM_OK:
		*out = group;
		return 0;
	case RFD_CLAIM_WRONG_SIZE:
		snprintf(conn->reason, sizeof(conn->reason),
		         "expected %" PRId32 " FDs with fdSeqNum %" PRId64
		         ", but a different number arrived (closed)",
		         md->num_fds, md->fd_seq);
		return -EBADFD;
	case RFD_CLAIM_AHEAD:
		head_seq = conn->received.head->seq;
		head_n = conn->received.head->n;
		snprintf(conn->reason, sizeof(conn->reason),
		         "expected %" PRId32 " FDs with fdSeqNum %" PRId64
		         ", but the next FDs received have fdSeqNum %" PRId64 " (%zu FDs)",
		         md->num_fds, md->fd_seq, head_seq, head_n);
		return -EBADFD;
	case RFD_CLAIM_MISSING:
		snprintf(conn->reason, sizeof(conn->reason),
		         "expected %" PRId32 " FDs with fdSeqNum %" PRId64 ", but none arrived",
		         md->num_fds, md->fd_seq);
		return -EBADFD;
	case RFD_CLAIM_INVALID:
	default:
		snprintf(conn->reason, sizeof(conn->reason), "invalid FD claim");
		return -EBADFD;
	}
}

/* ---- Calls and streams ---- */

static bool
abandoned_stream(const struct rfd_stream_entry *entry)
{
	return entry->kind != RFD_ENTRY_RESPONSE && entry->state == RFD_ENTRY_ABANDONED;
}

static void drop_pending(struct rfd_conn *conn, uint32_t stream_id);

/* Stop tracking the call, stream or sink on @stream_id; its messages still queued are dropped. */
static void
forget(struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);

	if (!entry)
		return;
	if (entry->queued)
		drop_pending(conn, stream_id);
	if (abandoned_stream(entry))
		conn->n_abandoned--;
	rfd_streams_remove(&conn->streams, stream_id);
}

/* The extensions both sides agreed on: a server's accepted and offered, a client's offered. */
static unsigned
agreed(const struct rfd_conn *conn)
{
	if (conn->role == RFD_ROLE_SERVER)
		return conn->extensions & conn->peer_extensions;
	return conn->extensions;
}

/*
 * Credits plus @n, whole u32 values (STREAM-19), saturating: a balance that
 * reaches 2^31 - 1 is no limit from then on (21.1), and stays there.
 */
static uint32_t
add_credits(uint32_t credits, uint32_t n)
{
	return credits >= CREDITS_MAX || n >= CREDITS_MAX - credits ? CREDITS_MAX : credits + n;
}

/* A message of @entry took one of its credits, unless there is no limit. */
static void
spend_credit(struct rfd_stream_entry *entry)
{
	assert(entry->credits > 0);
	if (entry->credits < CREDITS_MAX)
		entry->credits--;
}

/* ---- Input: server side ---- */

/* The ERROR frame and ResponseRpcError of each failure. */
static const struct {
	uint32_t frame_code;
	int32_t category;
	int32_t code;
} failures[] = {
    [RFD_FAIL_BAD_REQUEST] = {RFD_ERROR_INVALID, RFD_ERROR_CATEGORY_INVALID_REQUEST,
                              RFD_ERROR_CODE_REQUEST_PARSING_FAILURE},
    [RFD_FAIL_WRONG_KIND] = {RFD_ERROR_INVALID, RFD_ERROR_CATEGORY_INVALID_REQUEST,
                             RFD_ERROR_CODE_WRONG_RPC_KIND},
    [RFD_FAIL_UNKNOWN_METHOD] = {RFD_ERROR_INVALID, RFD_ERROR_CATEGORY_INVALID_REQUEST,
                                 RFD_ERROR_CODE_UNKNOWN_METHOD},
    [RFD_FAIL_OVERLOADED] = {RFD_ERROR_REJECTED, RFD_ERROR_CATEGORY_LOADSHEDDING,
                             RFD_ERROR_CODE_OVERLOAD},
    [RFD_FAIL_INTERNAL] = {RFD_ERROR_CANCELED, RFD_ERROR_CATEGORY_INTERNAL_ERROR,
                           RFD_ERROR_CODE_UNKNOWN},
};

static int
queue_failure(struct rfd_conn *conn, uint32_t stream_id, enum rfd_failure failure, const char *what)
{
	return queue_request_error(conn, stream_id, failures[failure].frame_code,
	                           failures[failure].category, failures[failure].code, what);
}

/* Answer a request that will not be served; a one-way request gets nothing. */
static void
reject_request(struct rfd_conn *conn, const struct rfd_frame *frame, enum rfd_failure failure,
               const char *what)
{
	if (frame->type == RFD_FRAME_REQUEST_FNF)
		return;
	if (queue_failure(conn, frame->stream_id, failure, what) < 0)
		fail(conn, -ENOMEM, 0, "out of memory answering a request");
}

/* The RpcKind each request frame type must carry. */
static int32_t
expected_kind(uint8_t type)
{
	switch (type) {
	case RFD_FRAME_REQUEST_FNF:
		return RFD_RPC_SINGLE_REQUEST_NO_RESPONSE;
	case RFD_FRAME_REQUEST_STREAM:
		return RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE;
	case RFD_FRAME_REQUEST_CHANNEL:
		return RFD_RPC_SINK;
	default:
		return RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE;
	}
}

/*
 * Why the request cannot be served (and *failure how to say so), or NULL when
 * it can: steps 3 to 5 of the table of 6.8.  Steps 7 and 8 (unknown method,
 * a method of another kind) are the application's.
 * Limitation: compression, checksums, interactions and bidirectional
 * streams (REQUEST_CHANNEL of kind 7) are not implemented; such requests
 * are refused with ERROR INVALID after their FDs were claimed and closed.
 */
static const char *
declined_request(const struct rfd_frame *frame, const struct rfd_request_metadata *md,
                 enum rfd_failure *failure)
{
	*failure = RFD_FAIL_BAD_REQUEST;
	if (!md->has_name)
		return "request metadata has no method name";
	if (!md->has_protocol || md->protocol != RFD_PROTOCOL_COMPACT)
		return "only the Compact protocol (2) is supported";
	if (md->uses_compression)
		return "compressed requests are not supported";
	if (md->uses_interaction)
		return "interactions are not supported";
	if (md->uses_checksum)
		return "checksums are not supported";
	if (frame->type == RFD_FRAME_REQUEST_CHANNEL && md->has_kind &&
	    md->kind == RFD_RPC_BIDIRECTIONAL_STREAM)
		return "bidirectional streams are not supported";

	*failure = RFD_FAIL_WRONG_KIND;
	if (!md->has_kind || md->kind != expected_kind(frame->type))
		return "the request's kind does not match its frame type";
	return NULL;
}

/*
 * Track the request on @frame's stream until it is answered, or a stream
 * with the credits of its initial request n until it ends.  0 or -ENOMEM.
 */
static int
open_request(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry entry = {.id = frame->stream_id, .state = RFD_ENTRY_OPEN};

	if (frame->type == RFD_FRAME_REQUEST_FNF)
		return 0;
	/*
	 * A stream's balance (21.1): its first response, which goes whatever
	 * the initial request n (STREAM-2), is paid from it at once; with an
	 * initial request n of 0 the first REQUEST_N pays for it.
	 */
	if (frame->type == RFD_FRAME_REQUEST_STREAM) {
		entry.kind = RFD_ENTRY_STREAM;
		entry.owed = frame->u32 == 0;
		entry.credits = entry.owed ? 0 : add_credits(0, frame->u32 - 1);
	}
	/* A sink's initial request n grants its first and final response: no item. */
	if (frame->type == RFD_FRAME_REQUEST_CHANNEL)
		entry.kind = RFD_ENTRY_SINK;
	return rfd_streams_insert(&conn->streams, &entry);
}

static enum rfd_call_kind
call_kind_of(uint8_t frame_type)
{
	switch (frame_type) {
	case RFD_FRAME_REQUEST_FNF:
		return RFD_CALL_ONEWAY;
	case RFD_FRAME_REQUEST_STREAM:
		return RFD_CALL_STREAM;
	case RFD_FRAME_REQUEST_CHANNEL:
		return RFD_CALL_SINK;
	default:
		return RFD_CALL_RESPONSE;
	}
}

static void
handle_request(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	bool oneway = frame->type == RFD_FRAME_REQUEST_FNF;
	struct rfd_request_metadata md;
	enum rfd_failure failure;
	struct rfd_fdgroup *fds;
	struct rfd_msg *msg;
	const char *why = "out of memory";
	size_t offset = 0;
	int r;

	r = rfd_request_metadata_decode(frame->metadata.ptr, frame->metadata.len, &md, &why);
	if (r < 0) {
		snprintf(conn->reason, sizeof(conn->reason), "unreadable request metadata: %s",
		         why);
		reject_request(conn, frame, RFD_FAIL_BAD_REQUEST, conn->reason);
		return;
	}
	r = claim_fds(conn, &md.fd, &fds);
	if (r < 0) {
		reject_request(conn, frame, RFD_FAIL_BAD_REQUEST, conn->reason);
		return;
	}

	why = declined_request(frame, &md, &failure);
	if (!why && !oneway && conn->streams.count >= conn->limits.max_in_flight) {
		why = "too many requests in flight";
		failure = RFD_FAIL_OVERLOADED;
	}
	if (why) {
		rfd_fdgroup_free(fds);
		reject_request(conn, frame, failure, why);
		return;
	}

	msg = rfd_msg_alloc(frame->data.len, md.name.len + 1);
	if (!msg || open_request(conn, frame) < 0) {
		rfd_free(msg);
		rfd_fdgroup_free(fds);
		fail(conn, -ENOMEM, RFD_ERROR_CONNECTION_ERROR,
		     "out of memory receiving a request");
		return;
	}
	msg->kind = oneway ? RFD_MSG_ONEWAY : RFD_MSG_REQUEST;
	msg->call_kind = (uint8_t)call_kind_of(frame->type);
	msg->extensions = (uint8_t)agreed(conn);
	msg->stream_id = frame->stream_id;
	msg->fds = fds;
	if (frame->data.len)
		memcpy(msg->data, frame->data.ptr, frame->data.len);
	msg->method = msg_put_text(msg, &offset, md.name.ptr, md.name.len);
	conn->cb.request(conn->user, msg);
}

/* ---- Input: client side ---- */

static void
deliver_reply(struct rfd_conn *conn, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	bool wanted = entry && entry->state == RFD_ENTRY_OPEN;

	forget(conn, stream_id);
	if (wanted && conn->cb.reply) {
		conn->cb.reply(conn->user, stream_id, status, msg);
		return;
	}
	/* Abandoned or unknown: the reply is read, its FDs closed. */
	rfd_msg_free(msg);
}

static enum rfd_msg_kind
reply_kind(enum rfd_payload_kind kind)
{
	switch (kind) {
	case RFD_PAYLOAD_NONE:
	case RFD_PAYLOAD_RESPONSE:
		return RFD_MSG_REPLY;
	case RFD_PAYLOAD_DECLARED_EXCEPTION:
		return RFD_MSG_EXCEPTION;
	default:
		return RFD_MSG_ERROR;
	}
}

static bool
is_exception(enum rfd_payload_kind kind)
{
	return kind == RFD_PAYLOAD_DECLARED_EXCEPTION ||
	       kind == RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION || kind == RFD_PAYLOAD_OTHER_EXCEPTION;
}

/* Why a response whose FDs were claimed fails its call, or NULL when it does not. */
static const char *
declined_reply(const struct rfd_response_metadata *md)
{
	if (md->uses_compression || md->uses_checksum)
		return "compressed or checksummed responses are not supported";
	if (md->payload_kind == RFD_PAYLOAD_EMPTY)
		return "the response's payloadMetadata has no member this client knows: "
		       "neither a result nor an exception";
	return NULL;
}

/*
 * Why the FDs that came with a message are outside the agreement of the
 * extensions (EXT-7), or NULL when they may come: a declared exception
 * carries FDs only when the client offered exception, a sink's final
 * response only when it offered sink.
 */
static const char *
unagreed_fds(const struct rfd_conn *conn, const struct rfd_response_metadata *md, bool sink_final)
{
	if (md->payload_kind == RFD_PAYLOAD_DECLARED_EXCEPTION)
		return conn->extensions & RFD_EXTENSION_EXCEPTION
		           ? NULL
		           : "a declared exception came with FDs, and this client did not "
		             "offer the extension exception (closed)";
	if (sink_final && !(conn->extensions & RFD_EXTENSION_SINK))
		return "the sink's final response came with FDs, and this client did not offer the "
		       "extension sink (closed)";
	return NULL;
}

/* The message a PAYLOAD with NEXT carries, with @fds; NULL (the connection failed) when out of
 * memory. */
static struct rfd_msg *
reply_message(struct rfd_conn *conn, const struct rfd_frame *frame,
              const struct rfd_response_metadata *md, struct rfd_fdgroup *fds)
{
	struct rfd_msg *msg = rfd_msg_alloc(frame->data.len, md->ex_what.len + 1);
	size_t offset = 0;

	if (!msg) {
		rfd_fdgroup_free(fds);
		fail(conn, -ENOMEM, 0, "out of memory receiving a reply");
		return NULL;
	}
	msg->kind = reply_kind(md->payload_kind);
	msg->stream_id = frame->stream_id;
	msg->fds = fds;
	if (frame->data.len)
		memcpy(msg->data, frame->data.ptr, frame->data.len);
	msg->error_text = msg_put_text(msg, &offset, md->ex_what.ptr, md->ex_what.len);
	return msg;
}

static void
notify_stream(struct rfd_conn *conn, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	if (conn->cb.stream)
		conn->cb.stream(conn->user, stream_id, status, msg);
	else
		rfd_msg_free(msg);
}

/*
 * The stream on @stream_id broke the streaming contract (conn->reason says
 * how): it fails with @err, and so does the connection, as fbthrift's client
 * closes it, which closes every FD still queued.
 */
static void
stream_violation(struct rfd_conn *conn, uint32_t stream_id, int err)
{
	forget(conn, stream_id);
	notify_stream(conn, stream_id, err, NULL);
	fail(conn, err, RFD_ERROR_CONNECTION_ERROR, "stream %" PRIu32 ": %s", stream_id,
	     conn->reason);
}

/*
 * The client stops reading the stream or sink of @frame, whose call that
 * message ended: without COMPLETE the server has not ended it, so it is
 * cancelled (CANCEL, or ERROR 0x203 on a sink: STREAM-14, SINK-8) and kept
 * abandoned, to close the FDs of what still comes (STREAM-13).
 */
static void
stop_reading(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);

	if (!entry || (frame->flags & RFD_FLAG_COMPLETE)) {
		forget(conn, frame->stream_id);
		return;
	}
	/* What still comes are items, whatever this message stood for. */
	entry->started = true;
	rfd_conn_abandon(conn, frame->stream_id);
}

/*
 * A message of the stream or sink of @frame broke the agreement on FDs
 * (EXT-7): @fds are closed and it fails with -EPROTO, without the message.
 * The connection goes on.
 */
static void
stream_refused(struct rfd_conn *conn, const struct rfd_frame *frame, struct rfd_fdgroup *fds,
               const char *why)
{
	rfd_fdgroup_free(fds);
	snprintf(conn->reason, sizeof(conn->reason), "%s", why);
	stop_reading(conn, frame);
	notify_stream(conn, frame->stream_id, -EPROTO, NULL);
}

/*
 * STREAM-20: a first response, an item, or a sink's final response that is
 * neither a result nor an exception (conn->reason says why), or a sink's
 * first response that ends it with a result (SINK-14), fails its stream or
 * sink, not the connection: @fds are closed, and a message without COMPLETE
 * leaves its stream cancelled (its sink ended with ERROR 0x203) and kept
 * abandoned, so that what still comes on it is read and its FDs closed.
 */
static void
item_refused(struct rfd_conn *conn, const struct rfd_frame *frame, struct rfd_fdgroup *fds)
{
	rfd_fdgroup_free(fds);
	stop_reading(conn, frame);
	notify_stream(conn, frame->stream_id, -EPROTO, NULL);
}

/* A stream's first response has ResponseRpcMetadata; its items have StreamPayloadMetadata. */
static int
decode_stream_metadata(const struct rfd_frame *frame, bool first, struct rfd_response_metadata *md,
                       const char **why)
{
	if (first)
		return rfd_response_metadata_decode(frame->metadata.ptr, frame->metadata.len, md,
		                                    why);
	return rfd_stream_payload_metadata_decode(frame->metadata.ptr, frame->metadata.len, md,
	                                          why);
}

/*
 * A PAYLOAD on a stream nobody waits for: its FDs are claimed and closed at
 * once, so that the FDs of later messages still match (FD-CARRY-5), and the
 * stream is forgotten at its last frame.  A mismatch here fails nothing.
 */
static void
drain_abandoned(struct rfd_conn *conn, const struct rfd_frame *frame,
                struct rfd_stream_entry *entry)
{
	struct rfd_response_metadata md;
	struct rfd_fdgroup *fds = NULL;
	bool last = frame->flags & RFD_FLAG_COMPLETE;
	const char *why;

	if ((frame->flags & RFD_FLAG_NEXT) &&
	    decode_stream_metadata(frame, !entry->started, &md, &why) == 0) {
		claim_fds(conn, &md.fd, &fds);
		rfd_fdgroup_free(fds);
		last |= is_exception(md.payload_kind);
	}
	entry->started = true;
	if (last)
		forget(conn, frame->stream_id);
}

/* Hand a stream's message over; after an item with COMPLETE, the end too. */
static void
deliver_stream(struct rfd_conn *conn, const struct rfd_frame *frame, struct rfd_stream_entry *entry,
               struct rfd_msg *msg)
{
	uint32_t stream_id = frame->stream_id;
	bool last = msg->kind == RFD_MSG_EXCEPTION || msg->kind == RFD_MSG_ERROR;
	bool complete = !last && (frame->flags & RFD_FLAG_COMPLETE);

	if (last) {
		stop_reading(conn, frame);
	} else if (complete) {
		forget(conn, stream_id);
	} else {
		entry->started = true;
		entry->state = RFD_ENTRY_FLOWING;
		spend_credit(entry);
	}
	notify_stream(conn, stream_id, 0, msg);
	if (complete)
		notify_stream(conn, stream_id, 0, NULL);
}

/*
 * A PAYLOAD on a stream: the first response, an item, an exception that
 * ends it, or its completion.  The FDs are claimed before anything else is
 * checked; an FD mismatch or a frame out of place fails the stream and the
 * connection.
 */
static void
handle_stream_payload(struct rfd_conn *conn, const struct rfd_frame *frame,
                      struct rfd_stream_entry *entry)
{
	uint32_t stream_id = frame->stream_id;
	bool first = !entry->started;
	struct rfd_response_metadata md;
	struct rfd_fdgroup *fds = NULL;
	const char *why = "out of memory";
	struct rfd_msg *msg;
	int r;

	if (entry->state == RFD_ENTRY_ABANDONED) {
		drain_abandoned(conn, frame, entry);
		return;
	}
	if (!(frame->flags & RFD_FLAG_NEXT)) {
		if (!first) {
			forget(conn, stream_id);
			notify_stream(conn, stream_id, 0, NULL);
			return;
		}
		snprintf(conn->reason, sizeof(conn->reason),
		         "the stream completed before its first response");
		stream_violation(conn, stream_id, -EPROTO);
		return;
	}

	r = decode_stream_metadata(frame, first, &md, &why);
	if (r < 0) {
		snprintf(conn->reason, sizeof(conn->reason), "unreadable %s: %s",
		         first ? "first response metadata" : "stream item metadata", why);
		item_refused(conn, frame, NULL);
		return;
	}
	if (first && md.item_fields && md.payload_kind == RFD_PAYLOAD_NONE) {
		snprintf(conn->reason, sizeof(conn->reason),
		         "a stream item (StreamPayloadMetadata) came before the first response");
		stream_violation(conn, stream_id, -EPROTO);
		return;
	}
	r = claim_fds(conn, &md.fd, &fds);
	if (r < 0) {
		stream_violation(conn, stream_id, r);
		return;
	}
	why = fds ? unagreed_fds(conn, &md, false) : NULL;
	if (why) {
		stream_refused(conn, frame, fds, why);
		return;
	}
	if (md.payload_kind == RFD_PAYLOAD_EMPTY) {
		snprintf(conn->reason, sizeof(conn->reason), "%s", declined_reply(&md));
		item_refused(conn, frame, fds);
		return;
	}
	why = declined_reply(&md);
	if (!why && !first && !is_exception(md.payload_kind) && entry->credits == 0)
		why = "an item came with no credit left: the server sent more items than asked for";
	if (why) {
		rfd_fdgroup_free(fds);
		snprintf(conn->reason, sizeof(conn->reason), "%s", why);
		stream_violation(conn, stream_id, -EPROTO);
		return;
	}

	msg = reply_message(conn, frame, &md, fds);
	if (!msg)
		return;
	if (!first && msg->kind == RFD_MSG_REPLY)
		msg->kind = RFD_MSG_STREAM_ITEM;
	deliver_stream(conn, frame, entry, msg);
}

/* Why a PAYLOAD is out of place on a sink at its client, or NULL. */
static const char *
misplaced_sink_payload(const struct rfd_frame *frame, bool first)
{
	if (!(frame->flags & RFD_FLAG_NEXT))
		return first ? "the sink completed before its first response"
		             : "the sink's final response has no NEXT flag";
	if (!first && !(frame->flags & RFD_FLAG_COMPLETE))
		return "a sink's server sent a PAYLOAD without COMPLETE after the first response";
	return NULL;
}

/*
 * A PAYLOAD on a sink: its first response (which holds the answer to the
 * offer of extensions), or its final response, an exception or an error.
 * FDs are claimed first; a mismatch or a frame out of place fails the sink
 * and the connection, FDs outside the agreement the sink alone.
 */
static void
handle_sink_response(struct rfd_conn *conn, const struct rfd_frame *frame,
                     struct rfd_stream_entry *entry)
{
	uint32_t stream_id = frame->stream_id;
	bool first = !entry->started;
	struct rfd_response_metadata md;
	struct rfd_fdgroup *fds = NULL;
	const char *why = "out of memory";
	struct rfd_msg *msg;
	int r;

	if (entry->state == RFD_ENTRY_ABANDONED) {
		drain_abandoned(conn, frame, entry);
		return;
	}
	why = misplaced_sink_payload(frame, first);
	if (why) {
		snprintf(conn->reason, sizeof(conn->reason), "%s", why);
		stream_violation(conn, stream_id, -EPROTO);
		return;
	}
	r = decode_stream_metadata(frame, first, &md, &why);
	if (r < 0) {
		snprintf(conn->reason, sizeof(conn->reason), "unreadable %s: %s",
		         first ? "first response metadata" : "final response metadata", why);
		item_refused(conn, frame, NULL);
		return;
	}
	r = claim_fds(conn, &md.fd, &fds);
	if (r < 0) {
		stream_violation(conn, stream_id, r);
		return;
	}
	why = fds ? unagreed_fds(conn, &md, !first) : NULL;
	if (why) {
		stream_refused(conn, frame, fds, why);
		return;
	}
	if (md.payload_kind == RFD_PAYLOAD_EMPTY) {
		snprintf(conn->reason, sizeof(conn->reason), "%s", declined_reply(&md));
		item_refused(conn, frame, fds);
		return;
	}
	if (first && !is_exception(md.payload_kind) && (frame->flags & RFD_FLAG_COMPLETE)) {
		/* SINK-14: the claim was made, so only the sink fails. */
		snprintf(conn->reason, sizeof(conn->reason),
		         "the sink's first response ended it without a final response");
		item_refused(conn, frame, fds);
		return;
	}
	why = declined_reply(&md);
	if (why) {
		rfd_fdgroup_free(fds);
		snprintf(conn->reason, sizeof(conn->reason), "%s", why);
		stream_violation(conn, stream_id, -EPROTO);
		return;
	}

	msg = reply_message(conn, frame, &md, fds);
	if (!msg)
		return;
	if (first && msg->kind == RFD_MSG_REPLY) {
		entry->started = true;
		entry->state = RFD_ENTRY_FLOWING;
		entry->agreed = (conn->extensions & RFD_EXTENSION_SINK) && md.has_extensions &&
		                (rfd_extensions_parse(md.extensions) & RFD_EXTENSION_SINK);
	} else {
		stop_reading(conn, frame);
	}
	notify_stream(conn, stream_id, 0, msg);
}

static void
handle_reply(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);
	struct rfd_response_metadata md;
	struct rfd_fdgroup *fds = NULL;
	struct rfd_msg *msg;
	const char *why = "out of memory";
	int r;

	/* A stream neither in flight nor abandoned: ignored, its FDs left queued. */
	if (!entry)
		return;
	if (entry->kind == RFD_ENTRY_STREAM) {
		handle_stream_payload(conn, frame, entry);
		return;
	}
	if (entry->kind == RFD_ENTRY_SINK) {
		handle_sink_response(conn, frame, entry);
		return;
	}
	/* Without NEXT a PAYLOAD carries no value and no FDs. */
	if (!(frame->flags & RFD_FLAG_NEXT)) {
		snprintf(conn->reason, sizeof(conn->reason), "the response carried no value");
		deliver_reply(conn, frame->stream_id, -EPROTO, NULL);
		return;
	}

	r = rfd_response_metadata_decode(frame->metadata.ptr, frame->metadata.len, &md, &why);
	if (r < 0) {
		snprintf(conn->reason, sizeof(conn->reason), "unreadable response metadata: %s",
		         why);
		deliver_reply(conn, frame->stream_id, -EPROTO, NULL);
		return;
	}
	r = claim_fds(conn, &md.fd, &fds);
	if (r < 0) {
		deliver_reply(conn, frame->stream_id, r, NULL);
		return;
	}
	why = fds ? unagreed_fds(conn, &md, false) : NULL;
	if (!why)
		why = declined_reply(&md);
	if (why) {
		rfd_fdgroup_free(fds);
		snprintf(conn->reason, sizeof(conn->reason), "%s", why);
		deliver_reply(conn, frame->stream_id, -EPROTO, NULL);
		return;
	}
	msg = reply_message(conn, frame, &md, fds);
	if (msg)
		deliver_reply(conn, frame->stream_id, 0, msg);
}

/* An ERROR on a call's stream: the call's answer, or the end of a stream or a sink. */
static void
handle_stream_error(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);
	struct rfd_response_error error;
	struct rfd_slice text = frame->data;
	struct rfd_msg *msg;
	const char *why = "out of memory";
	size_t offset = 0;
	bool stream;

	if (!entry)
		return;
	stream = entry->kind != RFD_ENTRY_RESPONSE;
	if (stream && entry->state == RFD_ENTRY_ABANDONED) {
		forget(conn, frame->stream_id);
		return;
	}
	/* ResponseRpcError before a stream's first response, StreamRpcError after: both hold
	 * what_utf8 in 2. */
	if (rfd_response_error_decode(frame->data.ptr, frame->data.len, &error, &why) == 0)
		text = error.has_what ? error.what : (struct rfd_slice){NULL, 0};

	msg = rfd_msg_alloc(0, text.len + 1);
	if (!msg) {
		fail(conn, -ENOMEM, 0, "out of memory receiving an error");
		return;
	}
	msg->kind = RFD_MSG_ERROR;
	msg->stream_id = frame->stream_id;
	msg->error_code = frame->u32;
	msg->error_text = msg_put_text(msg, &offset, text.ptr, text.len);
	if (!stream) {
		deliver_reply(conn, frame->stream_id, 0, msg);
		return;
	}
	forget(conn, frame->stream_id);
	notify_stream(conn, frame->stream_id, 0, msg);
}

/* ---- Input: sinks at the server ---- */

static void
notify_sink(struct rfd_conn *conn, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	if (conn->cb.sink)
		conn->cb.sink(conn->user, stream_id, status, msg);
	else
		rfd_msg_free(msg);
}

/*
 * The sink on @stream_id fails here (SINK-10): the client gets ERROR 0x204
 * with ResponseRpcError (1, 6) and @why, and no final response; the
 * handler hears @err.  The connection goes on.
 */
static void
fail_sink(struct rfd_conn *conn, uint32_t stream_id, int err, const char *why)
{
	if (why != conn->reason)
		snprintf(conn->reason, sizeof(conn->reason), "%s", why);
	forget(conn, stream_id);
	if (queue_failure(conn, stream_id, RFD_FAIL_BAD_REQUEST, conn->reason) < 0) {
		fail(conn, -ENOMEM, 0, "out of memory failing a sink");
		return;
	}
	notify_sink(conn, stream_id, err, NULL);
}

/* Why a sink item whose FDs were claimed is refused, or NULL. */
static const char *
refused_sink_item(const struct rfd_conn *conn, const struct rfd_stream_entry *entry,
                  const struct rfd_response_metadata *md, bool has_fds)
{
	if (has_fds && !(agreed(conn) & RFD_EXTENSION_SINK))
		return "a sink item came with FDs, and the extension sink was not agreed (closed)";
	if (md->uses_compression || md->uses_checksum)
		return "compressed or checksummed sink items are not supported";
	if (md->payload_kind == RFD_PAYLOAD_EMPTY)
		return "a sink item's payloadMetadata has no member this server knows";
	if (entry->credits == 0)
		return "a sink item came without credit";
	return NULL;
}

/* The client ended its side of the sink on @stream_id with an exception or an ERROR. */
static void
sink_ended_by_client(struct rfd_conn *conn, uint32_t stream_id, int err)
{
	forget(conn, stream_id);
	notify_sink(conn, stream_id, err, NULL);
}

/*
 * A PAYLOAD from the client on a sink that takes items: an item (its FDs
 * claimed before anything else is checked), the completion, or an
 * exception that ends it.  An item that cannot be taken fails the sink.
 */
static void
handle_sink_item(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	uint32_t stream_id = frame->stream_id;
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	bool complete = frame->flags & RFD_FLAG_COMPLETE;
	struct rfd_response_metadata md;
	struct rfd_fdgroup *fds = NULL;
	const char *why = "out of memory";
	struct rfd_msg *msg;
	int r;

	/* It may have ended while the item's fragments came: then the item is ignored. */
	if (!entry || entry->kind != RFD_ENTRY_SINK || entry->state != RFD_ENTRY_FLOWING ||
	    entry->completed)
		return;
	if (!(frame->flags & RFD_FLAG_NEXT)) {
		if (!complete) {
			fail_sink(conn, stream_id, -EPROTO,
			          "a PAYLOAD on a sink had neither NEXT nor COMPLETE");
			return;
		}
		entry->completed = true;
		notify_sink(conn, stream_id, 0, NULL);
		return;
	}
	r = rfd_stream_payload_metadata_decode(frame->metadata.ptr, frame->metadata.len, &md, &why);
	if (r < 0) {
		snprintf(conn->reason, sizeof(conn->reason), "unreadable sink item metadata: %s",
		         why);
		fail_sink(conn, stream_id, -EPROTO, conn->reason);
		return;
	}
	r = claim_fds(conn, &md.fd, &fds);
	if (r < 0) {
		fail_sink(conn, stream_id, r, conn->reason);
		return;
	}
	if (is_exception(md.payload_kind)) {
		rfd_fdgroup_free(fds);
		sink_ended_by_client(conn, stream_id, -EREMOTEIO);
		return;
	}
	why = refused_sink_item(conn, entry, &md, fds != NULL);
	if (why) {
		rfd_fdgroup_free(fds);
		fail_sink(conn, stream_id, -EPROTO, why);
		return;
	}

	msg = rfd_msg_alloc(frame->data.len, 0);
	if (!msg) {
		rfd_fdgroup_free(fds);
		fail(conn, -ENOMEM, 0, "out of memory receiving a sink item");
		return;
	}
	msg->kind = RFD_MSG_STREAM_ITEM;
	msg->stream_id = stream_id;
	msg->fds = fds;
	if (frame->data.len)
		memcpy(msg->data, frame->data.ptr, frame->data.len);
	spend_credit(entry);
	entry->completed = complete;
	notify_sink(conn, stream_id, 0, msg);
	/* An item with COMPLETE is the last; the handler may have ended the sink meanwhile. */
	entry = rfd_streams_find(&conn->streams, stream_id);
	if (complete && entry && entry->kind == RFD_ENTRY_SINK && entry->state == RFD_ENTRY_FLOWING)
		notify_sink(conn, stream_id, 0, NULL);
}

/* ---- Input: both sides ---- */

static void
handle_message(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	if (conn->role == RFD_ROLE_CLIENT)
		handle_reply(conn, frame);
	else if (frame->type == RFD_FRAME_PAYLOAD)
		handle_sink_item(conn, frame);
	else
		handle_request(conn, frame);
}

static struct rfd_reassembly *
find_reassembly(struct rfd_conn *conn, uint32_t stream_id, bool start)
{
	struct rfd_reassembly *idle = NULL;

	for (int i = 0; i < MAX_REASSEMBLIES; i++) {
		struct rfd_reassembly *r = &conn->reassembly[i];

		if (r->active && r->stream_id == stream_id)
			return r;
		if (!r->active && !idle)
			idle = r;
	}
	return start ? idle : NULL;
}

/*
 * A PAYLOAD that continues no message and answers nothing: at a server one on
 * a stream with no request being reassembled and no sink taking items, at a
 * client one on a stream neither in flight nor abandoned (FRAME-18).  It is
 * ignored on its own, starts no reassembly (FRAME-25), and its FDs, if any,
 * stay queued.
 */
static bool
ignored_payload(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	const struct rfd_stream_entry *entry;

	if (frame->type != RFD_FRAME_PAYLOAD || find_reassembly(conn, frame->stream_id, false))
		return false;
	entry = rfd_streams_find(&conn->streams, frame->stream_id);
	if (conn->role == RFD_ROLE_SERVER)
		return !entry || entry->kind != RFD_ENTRY_SINK ||
		       entry->state != RFD_ENTRY_FLOWING || entry->completed;
	return !entry;
}

static void
handle_payload_frame(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	bool follows = frame->flags & RFD_FLAG_FOLLOWS;
	struct rfd_reassembly *reassembly;
	struct rfd_frame whole;
	const char *why = "out of memory";
	int r;

	if (ignored_payload(conn, frame))
		return;
	reassembly = find_reassembly(conn, frame->stream_id, follows);
	if (!reassembly) {
		if (follows) {
			fail(conn, -EMSGSIZE, RFD_ERROR_CONNECTION_ERROR,
			     "more than %d fragmented messages at once", MAX_REASSEMBLIES);
			return;
		}
		handle_message(conn, frame);
		return;
	}

	r = rfd_reassembly_add(reassembly, frame, &whole, &why);
	if (r < 0) {
		fail(conn, r == -ENOMEM ? -ENOMEM : -EPROTO, RFD_ERROR_CONNECTION_ERROR,
		     "bad fragment on stream %" PRIu32 ": %s", frame->stream_id, why);
		return;
	}
	if (r == 0)
		return;
	handle_message(conn, &whole);
	rfd_reassembly_free(reassembly);
	rfd_reassembly_init(reassembly, conn->limits.max_message);
}

static void
handle_setup(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_setup_metadata md;
	const char *why = "out of memory";
	int32_t version;

	if (frame->type != RFD_FRAME_SETUP) {
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "first frame is %s, not SETUP",
		     rfd_frame_type_name(frame->type));
		return;
	}
	if (frame->version_major != 1 || frame->version_minor != 0) {
		fail(conn, -EPROTO, RFD_ERROR_INVALID_SETUP, "SETUP version %u.%u, not 1.0",
		     frame->version_major, frame->version_minor);
		return;
	}
	if (frame->metadata_mime.len != sizeof(METADATA_MIME) - 1 ||
	    memcmp(frame->metadata_mime.ptr, METADATA_MIME, frame->metadata_mime.len) != 0 ||
	    frame->data_mime.len != sizeof(DATA_MIME) - 1 ||
	    memcmp(frame->data_mime.ptr, DATA_MIME, frame->data_mime.len) != 0) {
		fail(conn, -EPROTO, RFD_ERROR_UNSUPPORTED_SETUP,
		     "SETUP mime types are not the Rocket compact ones");
		return;
	}
	if (frame->metadata.len < 4 || rfd_get_u32(frame->metadata.ptr) != PROTOCOL_KEY) {
		fail(conn, -EPROTO, RFD_ERROR_INVALID_SETUP,
		     "SETUP metadata does not start with the protocol key 0xf09f9a80");
		return;
	}
	if (rfd_setup_metadata_decode(frame->metadata.ptr + 4, frame->metadata.len - 4, &md, &why) <
	    0) {
		fail(conn, -EPROTO, RFD_ERROR_INVALID_SETUP, "unreadable SETUP metadata: %s", why);
		return;
	}
	if (md.encode_metadata_using_binary) {
		fail(conn, -EPROTO, RFD_ERROR_UNSUPPORTED_SETUP,
		     "binary-encoded metadata is not supported");
		return;
	}
	if (!md.has_max_version || md.max_version < VERSION_MIN ||
	    (md.has_min_version && md.min_version > VERSION_MAX)) {
		fail(conn, -EPROTO, RFD_ERROR_INVALID_SETUP,
		     "no Rocket protocol version in common (server supports %d..%d)", VERSION_MIN,
		     VERSION_MAX);
		return;
	}

	if (md.has_extensions)
		conn->peer_extensions = rfd_extensions_parse(md.extensions);
	version = md.max_version < VERSION_MAX ? md.max_version : VERSION_MAX;
	if (queue_setup_response(conn, version) < 0) {
		fail(conn, -ENOMEM, 0, "out of memory answering SETUP");
		return;
	}
	conn->setup_done = true;
	if (conn->cb.ready)
		conn->cb.ready(conn->user);
}

/* An ERROR frame's text, bounded, for error messages. */
static int
printable_length(struct rfd_slice text)
{
	return (int)(text.len > 200 ? 200 : text.len);
}

static const char *
printable(struct rfd_slice text)
{
	return text.len ? (const char *)text.ptr : "";
}

static void
handle_setup_response(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_server_push push;
	const char *why = "out of memory";

	if (frame->type == RFD_FRAME_ERROR) {
		fail(conn, -EPROTO, 0, "server refused SETUP (error 0x%" PRIx32 "): %.*s",
		     frame->u32, printable_length(frame->data), printable(frame->data));
		return;
	}
	if (frame->type != RFD_FRAME_METADATA_PUSH ||
	    rfd_server_push_decode(frame->metadata.ptr, frame->metadata.len, &push, &why) < 0 ||
	    push.kind != RFD_PUSH_SETUP_RESPONSE) {
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR,
		     "server's first frame is not a setup response");
		return;
	}
	if (!push.has_version || push.version < VERSION_MIN || push.version > VERSION_MAX) {
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR,
		     "server chose Rocket protocol version %" PRId32 ", outside %d..%d",
		     push.has_version ? push.version : -1, VERSION_MIN, VERSION_MAX);
		return;
	}
	conn->setup_done = true;
	if (conn->cb.ready)
		conn->cb.ready(conn->user);
}

static void
handle_keepalive(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_frame answer = {.type = RFD_FRAME_KEEPALIVE, .data = frame->data};

	if (!(frame->flags & RFD_FLAG_FOLLOWS)) /* RESPOND */
		return;
	if (queue_frame(conn, &answer) < 0)
		fail(conn, -ENOMEM, 0, "out of memory answering KEEPALIVE");
}

/*
 * An ERROR from the client: it ends a sink (SINK-9), or answers it before
 * its first response, which is then dropped; on anything else it is
 * ignored.
 */
static void
handle_sink_error(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);
	bool flowing;

	if (!entry || entry->kind != RFD_ENTRY_SINK)
		return;
	if (entry->state == RFD_ENTRY_OPEN) {
		entry->state = RFD_ENTRY_CANCELLED;
		return;
	}
	if (entry->state != RFD_ENTRY_FLOWING && entry->state != RFD_ENTRY_ENDING)
		return;
	flowing = entry->state == RFD_ENTRY_FLOWING;
	forget(conn, frame->stream_id);
	if (flowing)
		notify_sink(conn, frame->stream_id,
		            frame->u32 == RFD_ERROR_CANCELED ? -ECANCELED : -EREMOTEIO, NULL);
}

static void
handle_error_frame(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	if (frame->stream_id == 0) {
		/* ERR-3: answered with our own CONNECTION_ERROR while the socket takes writes. */
		fail(conn, -ECONNRESET, RFD_ERROR_CONNECTION_ERROR,
		     "peer closed the connection with error 0x%" PRIx32 ": %.*s", frame->u32,
		     printable_length(frame->data), printable(frame->data));
		return;
	}
	if (conn->role == RFD_ROLE_CLIENT)
		handle_stream_error(conn, frame);
	else
		handle_sink_error(conn, frame);
}

/* Close and forget the messages of @stream_id waiting in the stream queue. */
static void
drop_pending(struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	struct pending **link = &conn->pending;

	if (entry)
		entry->queued = 0;

	conn->pending_tail = NULL;
	while (*link) {
		struct pending *p = *link;

		if (p->stream_id != stream_id) {
			conn->pending_tail = p;
			link = &p->next;
			continue;
		}
		*link = p->next;
		conn->pending_fds -= pending_fd_count(p);
		pending_free(p);
	}
}

/*
 * CANCEL, at a server: a request not yet answered will be answered with
 * nothing; a stream ends at once, its queued messages dropped with their
 * FDs; a sink ends as with the client's ERROR 0x203.  A client ignores
 * CANCEL, as any frame for a stream it does not know.
 * Limitation: a stream's messages already in the output (less than
 * OUT_QUEUE_BELOW bytes, fewer than OUT_QUEUE_FD_MESSAGES with FDs) still go
 * out, like those in the socket's buffer: their FDs are stamped, and the
 * fdSeqNum of every message after them counts on them.
 */
static void
handle_cancel(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);
	bool flowing, sink;

	if (conn->role != RFD_ROLE_SERVER || !entry)
		return;
	if (entry->state == RFD_ENTRY_OPEN) {
		entry->state = RFD_ENTRY_CANCELLED;
		return;
	}
	if (entry->state != RFD_ENTRY_FLOWING && entry->state != RFD_ENTRY_ENDING)
		return;
	flowing = entry->state == RFD_ENTRY_FLOWING;
	sink = entry->kind == RFD_ENTRY_SINK;
	forget(conn, frame->stream_id);
	if (flowing && sink)
		notify_sink(conn, frame->stream_id, -ECANCELED, NULL);
	else if (flowing && conn->cb.stream_event)
		conn->cb.stream_event(conn->user, frame->stream_id, RFD_CONN_STREAM_CANCELLED);
}

/* REQUEST_N on a sink at its client: credit for items, which the client hears of. */
static void
sink_credit(struct rfd_conn *conn, const struct rfd_frame *frame, struct rfd_stream_entry *entry)
{
	if (entry->state == RFD_ENTRY_ABANDONED || entry->completed || frame->u32 == 0)
		return;
	entry->credits = add_credits(entry->credits, frame->u32);
	if (entry->started && conn->cb.stream_event)
		conn->cb.stream_event(conn->user, frame->stream_id, RFD_CONN_STREAM_CREDIT);
}

/*
 * REQUEST_N: at a server, credit for a stream (before its first response
 * too, where fbthrift's server would close the connection).  At a client,
 * on a stream it reads, it breaks the streaming contract, as in fbthrift;
 * on a sink it is credit for items.  Elsewhere it is ignored.
 */
static void
handle_request_n(struct rfd_conn *conn, const struct rfd_frame *frame)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, frame->stream_id);
	uint32_t n;

	if (entry && entry->kind == RFD_ENTRY_SINK && conn->role == RFD_ROLE_CLIENT) {
		sink_credit(conn, frame, entry);
		return;
	}
	if (!entry || entry->kind != RFD_ENTRY_STREAM)
		return;
	if (conn->role == RFD_ROLE_CLIENT) {
		if (entry->state == RFD_ENTRY_ABANDONED)
			return;
		snprintf(conn->reason, sizeof(conn->reason),
		         "the server sent REQUEST_N, which only the client of a stream sends");
		stream_violation(conn, frame->stream_id, -EPROTO);
		return;
	}
	if (entry->state != RFD_ENTRY_OPEN && entry->state != RFD_ENTRY_FLOWING)
		return;
	n = frame->u32;
	if (entry->owed && n > 0) {
		entry->owed = false;
		n--;
	}
	entry->credits = add_credits(entry->credits, n);
	if (entry->state == RFD_ENTRY_FLOWING && conn->cb.stream_event)
		conn->cb.stream_event(conn->user, frame->stream_id, RFD_CONN_STREAM_CREDIT);
}

static void
handle_frame(struct rfd_conn *conn, const uint8_t *bytes, size_t len)
{
	struct rfd_frame frame;
	const char *why = "out of memory";

	if (rfd_frame_decode(bytes, len, &frame, &why) < 0) {
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "malformed frame: %s", why);
		return;
	}
	trace_frame(conn, '<', &frame);
	if (!conn->setup_done) {
		if (conn->role == RFD_ROLE_SERVER)
			handle_setup(conn, &frame);
		else
			handle_setup_response(conn, &frame);
		return;
	}
	if (frame.type != RFD_FRAME_PAYLOAD && frame.stream_id != 0 &&
	    find_reassembly(conn, frame.stream_id, false)) {
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR,
		     "%s on stream %" PRIu32 " in the middle of a fragmented message",
		     rfd_frame_type_name(frame.type), frame.stream_id);
		return;
	}

	switch (frame.type) {
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
		/* FRAME-28: at once, so the FDs that came with it are closed now. */
		if (conn->role == RFD_ROLE_CLIENT) {
			fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "server sent a %s frame",
			     rfd_frame_type_name(frame.type));
			break;
		}
		/* FRAME-13: at the first fragment already, before a reassembly starts. */
		if (frame.stream_id % 2 == 0 || rfd_streams_find(&conn->streams, frame.stream_id)) {
			fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR,
			     "request on stream %" PRIu32 ", which is even or still in use",
			     frame.stream_id);
			break;
		}
		handle_payload_frame(conn, &frame);
		break;
	case RFD_FRAME_PAYLOAD:
		handle_payload_frame(conn, &frame);
		break;
	case RFD_FRAME_ERROR:
		handle_error_frame(conn, &frame);
		break;
	case RFD_FRAME_KEEPALIVE:
		handle_keepalive(conn, &frame);
		break;
	case RFD_FRAME_CANCEL:
		handle_cancel(conn, &frame);
		break;
	case RFD_FRAME_SETUP:
		if (conn->role == RFD_ROLE_SERVER)
			fail(conn, -EPROTO, RFD_ERROR_INVALID_SETUP, "a second SETUP frame");
		else
			fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "server sent SETUP");
		break;
	case RFD_FRAME_REQUEST_N:
		handle_request_n(conn, &frame);
		break;
	case RFD_FRAME_METADATA_PUSH:
		break;
	case RFD_FRAME_EXT:
		if (frame.flags & RFD_FLAG_IGNORE)
			break;
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "unsupported EXT frame");
		break;
	default:
		fail(conn, -EPROTO, RFD_ERROR_CONNECTION_ERROR, "unexpected %s frame",
		     rfd_frame_type_name(frame.type));
		break;
	}
}

static void
process_input(struct rfd_conn *conn)
{
	size_t pos = 0;

	while (!conn->error) {
		size_t frame_len;
		const char *why = "out of memory";
		int r = rfd_frame_split(conn->in.data + pos, conn->in.len - pos,
		                        conn->limits.max_frame, &frame_len, &why);

		if (r == 0)
			break;
		if (r < 0) {
			fail(conn, r == -EMSGSIZE ? -EMSGSIZE : -EPROTO, RFD_ERROR_CONNECTION_ERROR,
			     "bad frame length: %s", why);
			break;
		}
		handle_frame(conn, conn->in.data + pos + RFD_FRAME_LENGTH_SIZE,
		             frame_len - RFD_FRAME_LENGTH_SIZE);
		pos += frame_len;
	}
	if (conn->error)
		conn->in.len = 0;
	else
		rfd_buf_consume(&conn->in, pos);
}

int
rfd_conn_recv_fds(struct rfd_conn *conn, const int *fds, size_t n)
{
	struct rfd_fdgroup *group;

	if (n == 0)
		return conn->error;
	if (conn->error) {
		rfd_fdgroup_free(rfd_fdgroup_new(fds, n));
		return conn->error;
	}
	group = rfd_fdgroup_new(fds, n);
	if (!group) {
		fail(conn, -ENOMEM, 0, "out of memory queueing received FDs");
		return conn->error;
	}
	if (n > conn->limits.max_fds_per_msg) {
		rfd_fdgroup_free(group);
		fail(conn, -E2BIG, RFD_ERROR_CONNECTION_ERROR,
		     "peer sent %zu FDs at once, over the limit of %u", n,
		     conn->limits.max_fds_per_msg);
		return conn->error;
	}
	if (conn->received.queued_fds + n > conn->limits.fd_budget) {
		rfd_fdgroup_free(group);
		fail(conn, -E2BIG, RFD_ERROR_CONNECTION_ERROR,
		     "peer has %zu FDs queued that no message claimed, over the budget of %zu",
		     conn->received.queued_fds + n, conn->limits.fd_budget);
		return conn->error;
	}
	rfd_fdqueue_push(&conn->received, group);
	return 0;
}

/*
 * The input buffer's capacity for the next read: a few KiB between frames;
 * while one is partly read, 64 KiB, or room for the whole frame and a few
 * KiB after it.  A length field alone reserves at most IN_AHEAD_MAX, the
 * rest once that much of the frame came.
 */
static size_t
in_capacity_wanted(const struct rfd_conn *conn)
{
	size_t wanted;

	if (conn->in.len == 0)
		return IN_IDLE_SIZE;
	if (conn->in.len < RFD_FRAME_LENGTH_SIZE)
		return IN_READ_SIZE;
	wanted = RFD_FRAME_LENGTH_SIZE + rfd_get_u24(conn->in.data) + IN_IDLE_SIZE;
	if (wanted > IN_AHEAD_MAX && conn->in.len < IN_AHEAD_MAX)
		wanted = IN_AHEAD_MAX;
	return wanted > IN_READ_SIZE ? wanted : IN_READ_SIZE;
}

static size_t count_reassemblies(const struct rfd_conn *conn);

int
rfd_conn_in_space(struct rfd_conn *conn, size_t want, uint8_t **space, size_t *room)
{
	size_t cap;
	int r;

	if (conn->error)
		return conn->error;
	if (want) {
		r = rfd_buf_reserve(&conn->in, want);
	} else {
		cap = in_capacity_wanted(conn);
		r = cap > conn->in.cap ? rfd_buf_set_capacity(&conn->in, cap) : 0;
	}
	if (r < 0)
		return r;
	*space = conn->in.data + conn->in.len;
	*room = conn->in.cap - conn->in.len;
	return 0;
}

int
rfd_conn_in_commit(struct rfd_conn *conn, size_t len)
{
	if (conn->error)
		return conn->error;
	assert(conn->in.len + len <= conn->in.cap);
	conn->in.len += len;
	process_input(conn);
	/*
	 * No frame nor fragmented message partly read: what a large one needed
	 * goes back (harmless if it cannot).  Limitation: a peer that sends
	 * one large message after another gets the buffer faulted in again for
	 * each (10 to 25% slower at 64 MiB inline, bench/README.md): the
	 * memory of an idle connection comes first.
	 */
	if (conn->in.len == 0 && conn->in.cap > IN_IDLE_SIZE && count_reassemblies(conn) == 0)
		rfd_buf_set_capacity(&conn->in, IN_IDLE_SIZE);
	return conn->error;
}

size_t
rfd_conn_in_capacity(const struct rfd_conn *conn)
{
	return conn->in.cap;
}

int
rfd_conn_recv_bytes(struct rfd_conn *conn, const uint8_t *bytes, size_t len)
{
	uint8_t *space = NULL;
	size_t room = 0;
	int r = rfd_conn_in_space(conn, len, &space, &room);

	if (r < 0) {
		if (!conn->error)
			fail(conn, r, 0, "out of memory receiving bytes");
		return conn->error;
	}
	memcpy(space, bytes, len);
	return rfd_conn_in_commit(conn, len);
}

static size_t
count_reassemblies(const struct rfd_conn *conn)
{
	size_t n = 0;

	for (int i = 0; i < MAX_REASSEMBLIES; i++)
		if (conn->reassembly[i].active)
			n++;
	return n;
}

void
rfd_conn_recv_eof(struct rfd_conn *conn)
{
	size_t unfinished = count_reassemblies(conn);

	if (conn->in.len)
		fail(conn, -ECONNRESET, 0,
		     "connection truncated: peer closed it in the middle of a frame");
	else if (unfinished)
		fail(conn, -ECONNRESET, 0,
		     "connection truncated: peer closed it with %zu fragmented message(s) "
		     "unfinished",
		     unfinished);
	else
		fail(conn, -ECONNRESET, 0, "peer closed the connection");
}

/* ---- Sending messages ---- */

static uint32_t
allocate_stream_id(struct rfd_conn *conn)
{
	uint32_t id;

	do {
		id = conn->next_stream_id;
		conn->next_stream_id = id >= 0x7FFFFFFD ? 1 : id + 2;
	} while (rfd_streams_find(&conn->streams, id));
	return id;
}

/* The checks every send makes first; @fds is closed when one fails. */
static int
check_send(const struct rfd_conn *conn, struct rfd_fdgroup *fds)
{
	if (conn->error) {
		rfd_fdgroup_free(fds);
		return conn->error;
	}
	if (fds && fds->n > RFD_MAX_FDS) {
		rfd_fdgroup_free(fds);
		return -E2BIG;
	}
	return 0;
}

/* A request frame of @type with @initial_n (streams, sinks), tracked as @entry unless one-way. */
static int
queue_request(struct rfd_conn *conn, uint8_t type, uint32_t initial_n,
              struct rfd_stream_entry *entry, const char *method, const void *args, size_t args_len,
              int32_t timeout_ms, struct rfd_fdgroup *fds, uint32_t *stream_id)
{
	bool oneway = type == RFD_FRAME_REQUEST_FNF;
	struct rfd_request_metadata md = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = {(const uint8_t *)method, strlen(method)},
	    .has_kind = true,
	    .kind = expected_kind(type),
	    .has_client_timeout = timeout_ms > 0,
	    .client_timeout_ms = timeout_ms,
	};
	struct rfd_frame frame = {
	    .type = type,
	    .u32 = initial_n,
	    .has_metadata = true,
	    .data = {args, args_len},
	};
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	if (!oneway && rfd_conn_in_flight(conn) >= conn->limits.max_in_flight) {
		rfd_fdgroup_free(fds);
		return -EAGAIN;
	}

	entry->id = allocate_stream_id(conn);
	stamp_fds(conn, fds, &md.fd);
	conn->scratch.len = 0;
	r = rfd_request_metadata_encode(&md, &conn->scratch);
	if (r == 0 && !oneway)
		r = rfd_streams_insert(&conn->streams, entry);
	if (r < 0) {
		rfd_fdgroup_free(fds);
		return r;
	}
	frame.stream_id = entry->id;
	frame.metadata.ptr = conn->scratch.data;
	frame.metadata.len = conn->scratch.len;
	r = queue_message(conn, &frame, fds);
	if (r < 0) {
		forget(conn, entry->id);
		return r;
	}
	if (stream_id)
		*stream_id = entry->id;
	return 0;
}

int
rfd_conn_send_request(struct rfd_conn *conn, enum rfd_request_kind kind, const char *method,
                      const void *args, size_t args_len, int32_t timeout_ms,
                      struct rfd_fdgroup *fds, uint32_t *stream_id)
{
	struct rfd_stream_entry entry = {.kind = RFD_ENTRY_RESPONSE, .state = RFD_ENTRY_OPEN};
	uint8_t type =
	    kind == RFD_REQUEST_ONEWAY ? RFD_FRAME_REQUEST_FNF : RFD_FRAME_REQUEST_RESPONSE;

	return queue_request(conn, type, 0, &entry, method, args, args_len, timeout_ms, fds,
	                     stream_id);
}

int
rfd_conn_send_stream(struct rfd_conn *conn, const char *method, const void *args, size_t args_len,
                     int32_t timeout_ms, uint32_t initial_n, struct rfd_fdgroup *fds,
                     uint32_t *stream_id)
{
	struct rfd_stream_entry entry = {
	    .kind = RFD_ENTRY_STREAM,
	    .state = RFD_ENTRY_OPEN,
	    .credits = initial_n,
	};

	if (!conn->error && (initial_n == 0 || initial_n > CREDITS_MAX)) {
		rfd_fdgroup_free(fds);
		return -EINVAL;
	}
	return queue_request(conn, RFD_FRAME_REQUEST_STREAM, initial_n, &entry, method, args,
	                     args_len, timeout_ms, fds, stream_id);
}

int
rfd_conn_send_sink(struct rfd_conn *conn, const char *method, const void *args, size_t args_len,
                   int32_t timeout_ms, struct rfd_fdgroup *fds, uint32_t *stream_id)
{
	struct rfd_stream_entry entry = {.kind = RFD_ENTRY_SINK, .state = RFD_ENTRY_OPEN};

	return queue_request(conn, RFD_FRAME_REQUEST_CHANNEL, SINK_INITIAL_N, &entry, method, args,
	                     args_len, timeout_ms, fds, stream_id);
}

int
rfd_conn_stream_request(struct rfd_conn *conn, uint32_t stream_id, uint32_t n)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	struct rfd_frame frame = {.stream_id = stream_id, .type = RFD_FRAME_REQUEST_N};
	int r;

	if (conn->error)
		return conn->error;
	if (conn->role != RFD_ROLE_CLIENT || !entry || entry->kind != RFD_ENTRY_STREAM ||
	    entry->state == RFD_ENTRY_ABANDONED)
		return -ENOENT;
	if (n == 0 || !entry->started)
		return -EINVAL;
	frame.u32 = add_credits(entry->credits, n) - entry->credits;
	if (frame.u32 == 0)
		return 0;
	r = queue_frame(conn, &frame);
	if (r < 0)
		return r;
	entry->credits += frame.u32;
	return 0;
}

/* Forget the stream abandoned first, past the bound on abandoned streams. */
static void
forget_oldest_abandoned(struct rfd_conn *conn)
{
	const struct rfd_stream_entry *oldest = NULL;
	uint32_t oldest_age = 0;

	for (size_t i = 0; i < conn->streams.capacity; i++) {
		const struct rfd_stream_entry *entry = &conn->streams.slots[i];
		uint32_t age = conn->abandon_clock - entry->order;

		if (entry->id != 0 && abandoned_stream(entry) && (!oldest || age > oldest_age)) {
			oldest = entry;
			oldest_age = age;
		}
	}
	if (oldest)
		forget(conn, oldest->id);
}

/*
 * Limitation: an abandoned request-response call keeps its id, and counts
 * against max_in_flight, until its reply arrives (it must be read to keep
 * the FD sequence numbers in step); a server that never answers keeps it
 * forever.  Abandoned streams are bounded instead, as their server may
 * rightly send nothing more after CANCEL.
 */
void
rfd_conn_abandon(struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	struct rfd_frame cancel = {.stream_id = stream_id, .type = RFD_FRAME_CANCEL};
	int r;

	if (conn->role != RFD_ROLE_CLIENT || !entry || entry->state == RFD_ENTRY_ABANDONED)
		return;
	entry->state = RFD_ENTRY_ABANDONED;
	if (entry->kind == RFD_ENTRY_RESPONSE)
		return;
	entry->order = conn->abandon_clock++;
	conn->n_abandoned++;
	/* SINK-8: a sink is cancelled with ERROR 0x203 and no data, after the items written. */
	if (entry->kind == RFD_ENTRY_SINK) {
		drop_pending(conn, stream_id);
		r = queue_error_frame(conn, stream_id, RFD_ERROR_CANCELED, "");
	} else {
		r = queue_frame(conn, &cancel);
	}
	if (r < 0) {
		fail(conn, -ENOMEM, 0, "out of memory cancelling a stream");
		return;
	}
	if (conn->n_abandoned > conn->limits.max_in_flight)
		forget_oldest_abandoned(conn);
}

/*
 * Close the request on @stream_id, not yet answered.  Returns 1 when the
 * answer should be sent, 0 when the client cancelled it, or -ENOENT.
 * *kind is what it asked for.
 */
static int
finish_request(struct rfd_conn *conn, uint32_t stream_id, uint8_t *kind)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);
	bool cancelled;

	if (conn->role != RFD_ROLE_SERVER || !entry ||
	    (entry->state != RFD_ENTRY_OPEN && entry->state != RFD_ENTRY_CANCELLED))
		return -ENOENT;
	cancelled = entry->state == RFD_ENTRY_CANCELLED;
	*kind = entry->kind;
	forget(conn, stream_id);
	return cancelled ? 0 : 1;
}

/* What a WRONG_RPC_KIND answer says when the method is of @method_kind and the request not. */
static const char *
wrong_kind_text(uint8_t request_kind, uint8_t method_kind)
{
	if (request_kind == RFD_ENTRY_STREAM)
		return "the method does not stream its response, "
		       "and the request asked for a stream";
	if (request_kind == RFD_ENTRY_SINK)
		return "the method takes no sink, and the request opened one";
	if (method_kind == RFD_ENTRY_SINK)
		return "the method takes a sink, and the request did not open one";
	return "the method streams its response, and the request did not ask for a stream";
}

static int
send_payload(struct rfd_conn *conn, uint32_t stream_id, const struct rfd_response_metadata *md,
             uint16_t flags, const void *data, size_t len, struct rfd_fdgroup *fds)
{
	struct rfd_frame frame = {
	    .stream_id = stream_id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = flags,
	    .has_metadata = true,
	    .data = {data, len},
	};
	int r;

	conn->scratch.len = 0;
	r = rfd_response_metadata_encode(md, &conn->scratch);
	if (r < 0) {
		rfd_fdgroup_free(fds);
		return r;
	}
	frame.metadata.ptr = conn->scratch.data;
	frame.metadata.len = conn->scratch.len;
	return queue_message(conn, &frame, fds);
}

/*
 * A method that does not stream answers a stream request with an error
 * (6.8 step 8), which the table puts before the later steps.  Handlers see
 * the request's kind through rfd_msg_call_kind() and should not run such a
 * method at all; this keeps the wire right for those that do.
 */
int
rfd_conn_send_reply(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                    struct rfd_fdgroup *fds)
{
	struct rfd_response_metadata md = {.payload_kind = RFD_PAYLOAD_RESPONSE};
	uint8_t kind = RFD_ENTRY_RESPONSE;
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	r = finish_request(conn, stream_id, &kind);
	if (r <= 0 || kind != RFD_ENTRY_RESPONSE) {
		rfd_fdgroup_free(fds);
		return r <= 0 ? r
		              : queue_failure(conn, stream_id, RFD_FAIL_WRONG_KIND,
		                              wrong_kind_text(kind, RFD_ENTRY_RESPONSE));
	}
	stamp_fds(conn, fds, &md.fd);
	return send_payload(conn, stream_id, &md, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, data, len,
	                    fds);
}

/*
 * A declared exception: the answer of a call, or a stream's or sink's
 * instead of its first response.
 */
int
rfd_conn_send_exception(struct rfd_conn *conn, uint32_t stream_id, const char *name,
                        const char *what, const void *data, size_t len, struct rfd_fdgroup *fds)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_DECLARED_EXCEPTION,
	    .has_ex_name = true,
	    .ex_name = {(const uint8_t *)name, strlen(name)},
	    .has_ex_what = true,
	    .ex_what = {(const uint8_t *)what, strlen(what)},
	};
	uint8_t kind;
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	if (fds && !(agreed(conn) & RFD_EXTENSION_EXCEPTION)) {
		rfd_fdgroup_free(fds);
		return -EOPNOTSUPP;
	}
	r = finish_request(conn, stream_id, &kind);
	if (r <= 0) {
		rfd_fdgroup_free(fds);
		return r;
	}
	stamp_fds(conn, fds, &md.fd);
	return send_payload(conn, stream_id, &md, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, data, len,
	                    fds);
}

int
rfd_conn_send_error(struct rfd_conn *conn, uint32_t stream_id, enum rfd_failure failure,
                    const char *what)
{
	uint8_t kind;
	int r;

	if ((unsigned)failure >= sizeof(failures) / sizeof(failures[0]))
		return -EINVAL;
	if (conn->error)
		return conn->error;
	r = finish_request(conn, stream_id, &kind);
	if (r <= 0)
		return r;
	return queue_failure(conn, stream_id, failure, what);
}

/* ---- Sending streams (server) and sinks (both sides) ---- */

/* The stream or sink (@kind) on @stream_id, if it is past its first response and not ending. */
static struct rfd_stream_entry *
flowing_entry(const struct rfd_conn *conn, uint32_t stream_id, uint8_t kind)
{
	struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);

	if (!entry || entry->kind != kind || entry->state != RFD_ENTRY_FLOWING)
		return NULL;
	return entry;
}

/* The stream on @stream_id, if it is open for items. */
static struct rfd_stream_entry *
flowing_stream(const struct rfd_conn *conn, uint32_t stream_id)
{
	return conn->role == RFD_ROLE_SERVER ? flowing_entry(conn, stream_id, RFD_ENTRY_STREAM)
	                                     : NULL;
}

/* A server's sink on @stream_id that its handler may still end. */
static struct rfd_stream_entry *
serving_sink(const struct rfd_conn *conn, uint32_t stream_id)
{
	return conn->role == RFD_ROLE_SERVER ? flowing_entry(conn, stream_id, RFD_ENTRY_SINK)
	                                     : NULL;
}

/* A client's sink on @stream_id that takes items: its first response came, no completion yet. */
static struct rfd_stream_entry *
open_sink(const struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry;

	if (conn->role != RFD_ROLE_CLIENT)
		return NULL;
	entry = flowing_entry(conn, stream_id, RFD_ENTRY_SINK);
	return entry && !entry->completed ? entry : NULL;
}

/* A server's stream or sink on @stream_id that an exception or an error may end. */
static struct rfd_stream_entry *
endable(const struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = flowing_stream(conn, stream_id);

	return entry ? entry : serving_sink(conn, stream_id);
}

/* Whether a message of @type ends its stream or sink (it is forgotten once written). */
static bool
ends_stream(enum pending_type type)
{
	return type != PENDING_ITEM && type != PENDING_SINK_COMPLETE;
}

static bool
output_has_room(const struct rfd_conn *conn)
{
	return rfd_conn_out_pending(conn) < OUT_QUEUE_BELOW &&
	       conn->n_marks < OUT_QUEUE_FD_MESSAGES;
}

/*
 * Items of @entry the stream queue takes now: a few per stream, and none
 * while it holds fd_budget FDs or more.  An item is taken whatever its FDs,
 * so the queue holds fewer than fd_budget + RFD_MAX_FDS of them, and the
 * output at most OUT_QUEUE_FD_MESSAGES messages with FDs beside it.
 * Limitation: the message that ends a stream or a sink (an exception with
 * FDs, a sink's final response) is queued whatever the budget, so a server
 * that ends many streams with FDs while their client does not read holds
 * those FDs too.
 */
static unsigned
queue_room(const struct rfd_conn *conn, const struct rfd_stream_entry *entry)
{
	if (conn->pending_fds >= conn->limits.fd_budget || entry->queued >= STREAM_QUEUE_MAX)
		return 0;
	return STREAM_QUEUE_MAX - entry->queued;
}

/* ERROR with a Compact StreamRpcError {2: what_utf8}. */
static int
queue_stream_error(struct rfd_conn *conn, uint32_t stream_id, uint32_t code, const char *what)
{
	struct rfd_response_error error = {
	    .has_what = true,
	    .what = {(const uint8_t *)what, strlen(what)},
	};

	return queue_error(conn, stream_id, code, &error);
}

/*
 * Write a stream's or sink's message into the output, its FDs stamped now.
 * @fds is owned from the call on.
 */
static int
write_stream_message(struct rfd_conn *conn, uint32_t stream_id, enum pending_type type,
                     const void *data, size_t len, struct rfd_fdgroup *fds, const char *name,
                     const char *what, uint32_t code)
{
	struct rfd_response_metadata md = {.payload_kind = RFD_PAYLOAD_RESPONSE};
	struct rfd_frame frame = {
	    .stream_id = stream_id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT,
	    .has_metadata = true,
	    .data = {data, len},
	};
	int r;

	switch (type) {
	case PENDING_COMPLETE:
		frame.flags = RFD_FLAG_COMPLETE;
		frame.has_metadata = false;
		frame.data = (struct rfd_slice){NULL, 0};
		return queue_frame(conn, &frame);
	case PENDING_ERROR:
		return queue_stream_error(conn, stream_id, code, what);
	case PENDING_EXCEPTION:
		md.payload_kind = RFD_PAYLOAD_DECLARED_EXCEPTION;
		md.has_ex_name = true;
		md.ex_name = (struct rfd_slice){(const uint8_t *)name, strlen(name)};
		md.has_ex_what = true;
		md.ex_what = (struct rfd_slice){(const uint8_t *)what, strlen(what)};
		frame.flags |= RFD_FLAG_COMPLETE;
		break;
	case PENDING_FINAL:
		frame.flags |= RFD_FLAG_COMPLETE;
		break;
	case PENDING_SINK_COMPLETE:
		/* SINK-6: COMPLETE and METADATA, the empty StreamPayloadMetadata 00, no data. */
		md.payload_kind = RFD_PAYLOAD_NONE;
		frame.flags = RFD_FLAG_COMPLETE;
		frame.data = (struct rfd_slice){NULL, 0};
		break;
	default:
		break;
	}
	stamp_fds(conn, fds, &md.fd);
	conn->scratch.len = 0;
	r = rfd_stream_payload_metadata_encode(&md, &conn->scratch);
	if (r < 0) {
		rfd_fdgroup_free(fds);
		return r;
	}
	frame.metadata.ptr = conn->scratch.data;
	frame.metadata.len = conn->scratch.len;
	return queue_message(conn, &frame, fds);
}

static const char *
copy_text(uint8_t *block, size_t *offset, const char *text)
{
	char *copy;

	if (!text)
		return NULL;
	copy = (char *)block + *offset;
	memcpy(copy, text, strlen(text) + 1);
	*offset += strlen(text) + 1;
	return copy;
}

/* Keep a copy of a stream message until the output has room.  @fds is owned from the call on. */
static int
enqueue(struct rfd_conn *conn, struct rfd_stream_entry *entry, enum pending_type type,
        const void *data, size_t len, struct rfd_fdgroup *fds, const char *name, const char *what,
        uint32_t code)
{
	size_t text_len = (name ? strlen(name) + 1 : 0) + (what ? strlen(what) + 1 : 0);
	size_t offset = len;
	struct pending *p = NULL;

	if (len <= SIZE_MAX / 2 - text_len - sizeof(*p))
		p = rfd_malloc(sizeof(*p) + len + text_len);
	if (!p) {
		rfd_fdgroup_free(fds);
		return -ENOMEM;
	}
	memset(p, 0, sizeof(*p));
	p->stream_id = entry->id;
	p->type = (uint8_t)type;
	p->error_code = code;
	p->fds = fds;
	p->data_len = len;
	if (len)
		memcpy(p->block, data, len);
	p->name = copy_text(p->block, &offset, name);
	p->what = copy_text(p->block, &offset, what);
	if (conn->pending_tail)
		conn->pending_tail->next = p;
	else
		conn->pending = p;
	conn->pending_tail = p;
	conn->pending_fds += pending_fd_count(p);
	entry->queued++;
	return 0;
}

/*
 * Send a message of the stream or sink @entry, or queue it behind the others
 * when the output is full.  A last message ends it: it is forgotten once that
 * message is written.  @fds is owned from the call on.
 */
static int
send_stream_message(struct rfd_conn *conn, struct rfd_stream_entry *entry, enum pending_type type,
                    const void *data, size_t len, struct rfd_fdgroup *fds, const char *name,
                    const char *what, uint32_t code)
{
	uint32_t stream_id = entry->id;
	int r;

	if (conn->pending || !output_has_room(conn)) {
		r = enqueue(conn, entry, type, data, len, fds, name, what, code);
		if (r == 0 && ends_stream(type))
			entry->state = RFD_ENTRY_ENDING;
		return r;
	}
	r = write_stream_message(conn, stream_id, type, data, len, fds, name, what, code);
	if (r == 0 && ends_stream(type))
		forget(conn, stream_id);
	return r;
}

/* Move queued stream messages into the output while it has room. */
static void
pull_pending(struct rfd_conn *conn)
{
	while (conn->pending && !conn->error && output_has_room(conn)) {
		struct pending *p = conn->pending;
		struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, p->stream_id);
		int r;

		assert(entry && entry->queued > 0);
		conn->pending = p->next;
		if (!conn->pending)
			conn->pending_tail = NULL;
		conn->pending_fds -= pending_fd_count(p);
		entry->queued--;
		r = write_stream_message(conn, p->stream_id, p->type, p->block, p->data_len, p->fds,
		                         p->name, p->what, p->error_code);
		p->fds = NULL;
		if (r == 0 && ends_stream(p->type))
			forget(conn, p->stream_id);
		pending_free(p);
		if (r < 0)
			fail(conn, r, 0, "out of memory writing a stream message");
	}
}

/*
 * The first response @md of the stream or sink (@kind) on @stream_id: it is
 * open from here on.  A request of another kind is answered WRONG_RPC_KIND
 * instead (-EINVAL), one the client cancelled is forgotten (-ECANCELED).
 */
static int
open_flowing(struct rfd_conn *conn, uint32_t stream_id, uint8_t kind,
             struct rfd_response_metadata *md, const void *data, size_t len,
             struct rfd_fdgroup *fds)
{
	struct rfd_stream_entry *entry;
	uint8_t request_kind;
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	entry = rfd_streams_find(&conn->streams, stream_id);
	if (conn->role == RFD_ROLE_SERVER && entry && entry->kind == kind &&
	    entry->state == RFD_ENTRY_OPEN) {
		stamp_fds(conn, fds, &md->fd);
		r = send_payload(conn, stream_id, md, RFD_FLAG_NEXT, data, len, fds);
		entry = rfd_streams_find(&conn->streams, stream_id);
		if (r < 0) {
			forget(conn, stream_id);
			return r;
		}
		/* A stream's request paid for its first response (open_request()). */
		entry->started = true;
		entry->state = RFD_ENTRY_FLOWING;
		return 0;
	}
	rfd_fdgroup_free(fds);
	r = finish_request(conn, stream_id, &request_kind);
	if (r <= 0)
		return r == 0 ? -ECANCELED : r;
	r = queue_failure(conn, stream_id, RFD_FAIL_WRONG_KIND,
	                  wrong_kind_text(request_kind, kind));
	return r < 0 ? r : -EINVAL;
}

int
rfd_conn_stream_open(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                     struct rfd_fdgroup *fds)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .has_stream_id = true,
	    .stream_id = (int32_t)stream_id,
	};

	return open_flowing(conn, stream_id, RFD_ENTRY_STREAM, &md, data, len, fds);
}

int
rfd_conn_stream_send(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                     struct rfd_fdgroup *fds)
{
	struct rfd_stream_entry *entry;
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	entry = flowing_stream(conn, stream_id);
	if (!entry || rfd_conn_stream_credits(conn, stream_id) == 0) {
		rfd_fdgroup_free(fds);
		return entry ? -EAGAIN : -ENOENT;
	}
	r = send_stream_message(conn, entry, PENDING_ITEM, data, len, fds, NULL, NULL, 0);
	if (r == 0)
		spend_credit(entry);
	return r;
}

unsigned
rfd_conn_stream_credits(const struct rfd_conn *conn, uint32_t stream_id)
{
	const struct rfd_stream_entry *entry = flowing_stream(conn, stream_id);
	unsigned room;

	if (!entry || conn->error)
		return 0;
	room = queue_room(conn, entry);
	return entry->credits < room ? entry->credits : room;
}

int
rfd_conn_stream_complete(struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = flowing_stream(conn, stream_id);

	if (conn->error)
		return conn->error;
	if (!entry)
		return -ENOENT;
	return send_stream_message(conn, entry, PENDING_COMPLETE, NULL, 0, NULL, NULL, NULL, 0);
}

int
rfd_conn_stream_exception(struct rfd_conn *conn, uint32_t stream_id, const char *name,
                          const char *what, const void *data, size_t len, struct rfd_fdgroup *fds)
{
	struct rfd_stream_entry *entry = endable(conn, stream_id);
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	if (!entry || (fds && !(agreed(conn) & RFD_EXTENSION_EXCEPTION))) {
		rfd_fdgroup_free(fds);
		return entry ? -EOPNOTSUPP : -ENOENT;
	}
	return send_stream_message(conn, entry, PENDING_EXCEPTION, data, len, fds, name, what, 0);
}

int
rfd_conn_stream_error(struct rfd_conn *conn, uint32_t stream_id, uint32_t code, const char *what)
{
	struct rfd_stream_entry *entry = endable(conn, stream_id);

	if (conn->error)
		return conn->error;
	if (!entry)
		return -ENOENT;
	return send_stream_message(conn, entry, PENDING_ERROR, NULL, 0, NULL, NULL, what, code);
}

/* ---- Sinks, server side ---- */

int
rfd_conn_sink_open(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                   struct rfd_fdgroup *fds)
{
	struct rfd_response_metadata md = {.payload_kind = RFD_PAYLOAD_RESPONSE};
	char answer[RFD_EXTENSIONS_TEXT_SIZE];

	/* EXT-3: the extensions accepted, in every sink's first response. */
	md.extensions.len = rfd_extensions_format(agreed(conn), answer, sizeof(answer));
	md.extensions.ptr = (const uint8_t *)answer;
	md.has_extensions = md.extensions.len > 0;
	return open_flowing(conn, stream_id, RFD_ENTRY_SINK, &md, data, len, fds);
}

int
rfd_conn_sink_request(struct rfd_conn *conn, uint32_t stream_id, uint32_t n)
{
	struct rfd_stream_entry *entry = serving_sink(conn, stream_id);
	struct rfd_frame frame = {.stream_id = stream_id, .type = RFD_FRAME_REQUEST_N};
	int r;

	if (conn->error)
		return conn->error;
	if (!entry || entry->completed)
		return -ENOENT;
	if (n == 0)
		return -EINVAL;
	frame.u32 = add_credits(entry->credits, n) - entry->credits;
	if (frame.u32 == 0)
		return 0;
	r = queue_frame(conn, &frame);
	if (r < 0)
		return r;
	entry->credits += frame.u32;
	return 0;
}

int
rfd_conn_sink_finish(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                     struct rfd_fdgroup *fds)
{
	struct rfd_stream_entry *entry = serving_sink(conn, stream_id);
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	if (!entry || (fds && !(agreed(conn) & RFD_EXTENSION_SINK))) {
		rfd_fdgroup_free(fds);
		return entry ? -EOPNOTSUPP : -ENOENT;
	}
	return send_stream_message(conn, entry, PENDING_FINAL, data, len, fds, NULL, NULL, 0);
}

/* ---- Sinks, client side ---- */

int
rfd_conn_sink_send(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                   struct rfd_fdgroup *fds)
{
	struct rfd_stream_entry *entry;
	int r = check_send(conn, fds);

	if (r < 0)
		return r;
	entry = open_sink(conn, stream_id);
	r = !entry ? -ENOENT : fds && !entry->agreed ? -EOPNOTSUPP : 0;
	if (r == 0 && rfd_conn_sink_credits(conn, stream_id) == 0)
		r = -EAGAIN;
	if (r < 0) {
		rfd_fdgroup_free(fds);
		return r;
	}
	r = send_stream_message(conn, entry, PENDING_ITEM, data, len, fds, NULL, NULL, 0);
	if (r == 0)
		spend_credit(entry);
	return r;
}

unsigned
rfd_conn_sink_credits(const struct rfd_conn *conn, uint32_t stream_id)
{
	const struct rfd_stream_entry *entry;
	unsigned room;

	if (conn->error)
		return 0;
	if (conn->role == RFD_ROLE_SERVER) {
		entry = serving_sink(conn, stream_id);
		return entry && !entry->completed ? entry->credits : 0;
	}
	entry = open_sink(conn, stream_id);
	if (!entry)
		return 0;
	room = queue_room(conn, entry);
	return entry->credits < room ? entry->credits : room;
}

bool
rfd_conn_sink_agreed(const struct rfd_conn *conn, uint32_t stream_id)
{
	const struct rfd_stream_entry *entry = rfd_streams_find(&conn->streams, stream_id);

	return conn->role == RFD_ROLE_CLIENT && entry && entry->kind == RFD_ENTRY_SINK &&
	       entry->agreed;
}

int
rfd_conn_sink_complete(struct rfd_conn *conn, uint32_t stream_id)
{
	struct rfd_stream_entry *entry = open_sink(conn, stream_id);
	int r;

	if (conn->error)
		return conn->error;
	if (!entry)
		return -ENOENT;
	r = send_stream_message(conn, entry, PENDING_SINK_COMPLETE, NULL, 0, NULL, NULL, NULL, 0);
	if (r == 0)
		entry->completed = true;
	return r;
}

/* ---- Life cycle and state ---- */

/* Keep configured limits within what the spec allows (1 <= C <= 253, 2C <= B <= 4096). */
static void
clamp_limits(struct rfd_limits *limits)
{
	if (limits->max_fds_per_msg < 1 || limits->max_fds_per_msg > RFD_MAX_FDS)
		limits->max_fds_per_msg = RFD_MAX_FDS;
	if (limits->fd_budget < 2 * (size_t)limits->max_fds_per_msg)
		limits->fd_budget = 2 * (size_t)limits->max_fds_per_msg;
	if (limits->fd_budget > 4096)
		limits->fd_budget = 4096;
	if (limits->max_frame > RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX ||
	    limits->max_frame < 64)
		limits->max_frame = RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX;
	if (limits->max_in_flight == 0)
		limits->max_in_flight = 1;
}

struct rfd_conn *
rfd_conn_new(enum rfd_role role, const struct rfd_limits *limits,
             const struct rfd_conn_callbacks *callbacks, void *user)
{
	return rfd_conn_new_with_extensions(role, limits, EXTENSIONS_IMPLEMENTED, callbacks, user);
}

struct rfd_conn *
rfd_conn_new_with_extensions(enum rfd_role role, const struct rfd_limits *limits,
                             unsigned extensions, const struct rfd_conn_callbacks *callbacks,
                             void *user)
{
	struct rfd_conn *conn = rfd_calloc(1, sizeof(*conn));

	if (!conn)
		return NULL;
	conn->role = role;
	conn->extensions = extensions & EXTENSIONS_IMPLEMENTED;
	if (limits)
		conn->limits = *limits;
	else
		rfd_limits_init(&conn->limits);
	clamp_limits(&conn->limits);
	conn->cb = *callbacks;
	conn->user = user;
	conn->next_stream_id = 1;
	rfd_buf_init(&conn->in);
	rfd_buf_init(&conn->out);
	rfd_buf_init(&conn->scratch);
	rfd_fdqueue_init(&conn->received);
	rfd_streams_init(&conn->streams);
	for (int i = 0; i < MAX_REASSEMBLIES; i++)
		rfd_reassembly_init(&conn->reassembly[i], conn->limits.max_message);

	if (role == RFD_ROLE_CLIENT && queue_setup(conn) < 0) {
		rfd_conn_free(conn);
		return NULL;
	}
	return conn;
}

void
rfd_conn_free(struct rfd_conn *conn)
{
	if (!conn)
		return;
	release_input(conn);
	for (int i = 0; i < MAX_REASSEMBLIES; i++)
		rfd_reassembly_free(&conn->reassembly[i]);
	close_marks(conn);
	close_pending(conn);
	forget_streams(conn);
	rfd_buf_free(&conn->in);
	rfd_buf_free(&conn->out);
	rfd_buf_free(&conn->scratch);
	rfd_free(conn);
}

unsigned
rfd_conn_extensions(const struct rfd_conn *conn)
{
	return agreed(conn);
}

int
rfd_conn_error(const struct rfd_conn *conn)
{
	return conn->error;
}

const char *
rfd_conn_error_text(const struct rfd_conn *conn)
{
	return conn->error ? conn->error_text : "";
}

bool
rfd_conn_ready(const struct rfd_conn *conn)
{
	return conn->setup_done && !conn->error;
}

size_t
rfd_conn_in_flight(const struct rfd_conn *conn)
{
	return conn->streams.count - conn->n_abandoned;
}

size_t
rfd_conn_abandoned(const struct rfd_conn *conn)
{
	return conn->n_abandoned;
}

size_t
rfd_conn_queued_fds(const struct rfd_conn *conn)
{
	return conn->received.queued_fds;
}

const char *
rfd_conn_reason(const struct rfd_conn *conn)
{
	return conn->reason;
}
