/* SPDX-License-Identifier: MIT */
/*
 * The connection core without sockets: two cores talking through memory, and
 * a hand-driven peer that writes frames and FD groups a real peer might (or
 * should not) send.  The FDs are real, so every test also checks that each
 * one ends up closed or handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "conn.h"
#include "frame.h"
#include "metadata.h"
#include "testutil.h"

/* ---- What the cores report ---- */

struct events {
	int ready;
	int failed;
	int failed_err;
	struct rfd_msg *requests[16];
	int n_requests;
	struct rfd_msg *replies[16];
	int reply_status[16];
	uint32_t reply_stream[16];
	int n_replies;
	/* Client: what streams delivered, in order (msg NULL: an end). */
	struct rfd_msg *stream_msgs[300];
	int stream_status[300];
	uint32_t stream_ids[300];
	int n_stream;
	/* Server: stream events; client: sink credit. */
	int events[16];
	uint32_t event_ids[16];
	int n_events;
	/* Server: what sinks delivered, in order (msg NULL: the end of the client's side). */
	struct rfd_msg *sink_msgs[300];
	int sink_status[300];
	uint32_t sink_ids[300];
	int n_sink;
};

static void
on_ready(void *user)
{
	((struct events *)user)->ready++;
}

static void
on_request(void *user, struct rfd_msg *request)
{
	struct events *ev = user;

	if (ev->n_requests < 16)
		ev->requests[ev->n_requests++] = request;
	else
		rfd_msg_free(request);
}

static void
on_reply(void *user, uint32_t stream_id, int status, struct rfd_msg *reply)
{
	struct events *ev = user;

	if (ev->n_replies < 16) {
		ev->reply_stream[ev->n_replies] = stream_id;
		ev->reply_status[ev->n_replies] = status;
		ev->replies[ev->n_replies++] = reply;
	} else {
		rfd_msg_free(reply);
	}
}

static void
on_stream(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct events *ev = user;

	if (ev->n_stream < 300) {
		ev->stream_ids[ev->n_stream] = stream_id;
		ev->stream_status[ev->n_stream] = status;
		ev->stream_msgs[ev->n_stream++] = msg;
	} else {
		rfd_msg_free(msg);
	}
}

static void
on_stream_event(void *user, uint32_t stream_id, enum rfd_conn_stream_event event)
{
	struct events *ev = user;

	if (ev->n_events < 16) {
		ev->event_ids[ev->n_events] = stream_id;
		ev->events[ev->n_events++] = (int)event;
	}
}

static void
on_sink(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct events *ev = user;

	if (ev->n_sink < 300) {
		ev->sink_ids[ev->n_sink] = stream_id;
		ev->sink_status[ev->n_sink] = status;
		ev->sink_msgs[ev->n_sink++] = msg;
	} else {
		rfd_msg_free(msg);
	}
}

static void
on_failed(void *user, int err, const char *why)
{
	struct events *ev = user;

	ev->failed++;
	ev->failed_err = err;
}

static const struct rfd_conn_callbacks callbacks = {
    .ready = on_ready,
    .request = on_request,
    .reply = on_reply,
    .stream = on_stream,
    .stream_event = on_stream_event,
    .sink = on_sink,
    .failed = on_failed,
};

static void
events_free(struct events *ev)
{
	for (int i = 0; i < ev->n_requests; i++)
		rfd_msg_free(ev->requests[i]);
	for (int i = 0; i < ev->n_replies; i++)
		rfd_msg_free(ev->replies[i]);
	for (int i = 0; i < ev->n_stream; i++)
		rfd_msg_free(ev->stream_msgs[i]);
	for (int i = 0; i < ev->n_sink; i++)
		rfd_msg_free(ev->sink_msgs[i]);
	memset(ev, 0, sizeof(*ev));
}

/* ---- Moving bytes ---- */

/* What the kernel does with a sent FD: the receiver gets its own copy. */
static void
dup_all(const int *fds, size_t n, int *copies)
{
	for (size_t i = 0; i < n; i++)
		copies[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
}

/*
 * Deliver everything @from has queued to @to, write by write, FDs with their
 * chunk; a copy of the bytes goes to @tap when it is not NULL.
 */
static void
pump_tap(struct rfd_conn *from, struct rfd_conn *to, struct rfd_buf *tap)
{
	struct rfd_out_chunk chunk;

	while (rfd_conn_out_peek(from, &chunk)) {
		int copies[RFD_MAX_FDS];
		size_t len = chunk.len;

		dup_all(chunk.fds, chunk.n_fds, copies);
		if (tap)
			rfd_buf_append(tap, chunk.bytes, chunk.len);
		rfd_conn_recv_fds(to, copies, chunk.n_fds);
		rfd_conn_recv_bytes(to, chunk.bytes, chunk.len);
		rfd_conn_out_advance(from, len);
	}
}

static void
pump(struct rfd_conn *from, struct rfd_conn *to)
{
	pump_tap(from, to, NULL);
}

/* All of @conn's output, with the FDs it sends closed (they are counted in *n_fds). */
static void
drain(struct rfd_conn *conn, struct rfd_buf *bytes, size_t *n_fds)
{
	struct rfd_out_chunk chunk;

	if (n_fds)
		*n_fds = 0;
	while (rfd_conn_out_peek(conn, &chunk)) {
		rfd_buf_append(bytes, chunk.bytes, chunk.len);
		if (n_fds)
			*n_fds += chunk.n_fds;
		rfd_conn_out_advance(conn, chunk.len);
	}
}

/* Decode the frame at *pos of @bytes; false at the end. */
static bool
next_frame(const struct rfd_buf *bytes, size_t *pos, struct rfd_frame *frame)
{
	size_t frame_len;
	const char *why;

	if (rfd_frame_split(bytes->data + *pos, bytes->len - *pos, 1 << 25, &frame_len, &why) != 1)
		return false;
	if (rfd_frame_decode(bytes->data + *pos + 3, frame_len - 3, frame, &why) < 0)
		return false;
	*pos += frame_len;
	return true;
}

static int
open_null(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* ---- A hand-driven client ---- */

struct raw_peer {
	struct rfd_buf out;
	int64_t fd_seq;
};

static void
raw_setup(struct rfd_buf *out, uint32_t key, int32_t min_version, int32_t max_version, bool binary)
{
	struct rfd_setup_metadata md = {
	    .has_min_version = true,
	    .min_version = min_version,
	    .has_max_version = true,
	    .max_version = max_version,
	    .encode_metadata_using_binary = binary,
	};
	struct rfd_buf meta;
	struct rfd_frame frame = {
	    .type = RFD_FRAME_SETUP,
	    .version_major = 1,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .metadata_mime = {(const uint8_t *)"application/x-rocket-metadata+compact", 37},
	    .data_mime = {(const uint8_t *)"application/x-rocket-payload", 28},
	    .has_metadata = true,
	};

	rfd_buf_init(&meta);
	rfd_buf_put_u32(&meta, key);
	rfd_setup_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, out);
	rfd_buf_free(&meta);
}

/* A request frame of RpcKind @kind claiming @num FDs with fdSeqNum @seq (num 0: no fdMetadata). */
static void
raw_request_of_kind(struct rfd_buf *out, uint8_t type, int32_t kind, uint32_t stream_id,
                    const char *method, int32_t num, int64_t seq)
{
	struct rfd_request_metadata md = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = {(const uint8_t *)method, strlen(method)},
	    .has_kind = true,
	    .kind = kind,
	    .fd = {.present = num != 0,
	           .has_seq = num != 0,
	           .fd_seq = seq,
	           .has_num = num != 0,
	           .num_fds = num},
	};
	struct rfd_buf meta;
	struct rfd_frame frame = {.stream_id = stream_id, .type = type, .has_metadata = true};

	if (type == RFD_FRAME_REQUEST_STREAM || type == RFD_FRAME_REQUEST_CHANNEL)
		frame.u32 = 1; /* initial request n */
	rfd_buf_init(&meta);
	rfd_request_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, out);
	rfd_buf_free(&meta);
}

/* As raw_request_of_kind(), with kind 1 for REQUEST_FNF and 0 for every other frame type. */
static void
raw_request(struct rfd_buf *out, uint8_t type, uint32_t stream_id, const char *method, int32_t num,
            int64_t seq)
{
	raw_request_of_kind(out, type, type == RFD_FRAME_REQUEST_FNF ? 1 : 0, stream_id, method,
	                    num, seq);
}

static void
give_fds(struct rfd_conn *conn, size_t n)
{
	int fds[RFD_MAX_FDS + 8];

	for (size_t i = 0; i < n; i++)
		fds[i] = open_null();
	rfd_conn_recv_fds(conn, fds, n);
}

static void
give(struct rfd_conn *conn, struct rfd_buf *bytes)
{
	rfd_conn_recv_bytes(conn, bytes->data, bytes->len);
	bytes->len = 0;
}

/* A server core that has accepted a well-formed SETUP; its answer is discarded. */
static struct rfd_conn *
ready_server(struct events *ev, const struct rfd_limits *limits)
{
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, limits, &callbacks, ev);
	struct rfd_buf bytes;

	rfd_buf_init(&bytes);
	raw_setup(&bytes, 0xf09f9a80, 8, 10, false);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	rfd_buf_free(&bytes);
	return server;
}

/* The ERROR frame the server wrote on @stream_id; its code and ResponseRpcError. */
static bool
find_error(const struct rfd_buf *bytes, uint32_t stream_id, uint32_t *code,
           struct rfd_response_error *error)
{
	struct rfd_frame frame;
	const char *why;
	size_t pos = 0;

	while (next_frame(bytes, &pos, &frame)) {
		if (frame.type != RFD_FRAME_ERROR || frame.stream_id != stream_id)
			continue;
		*code = frame.u32;
		if (error)
			return rfd_response_error_decode(frame.data.ptr, frame.data.len, error,
			                                 &why) == 0;
		return true;
	}
	return false;
}

/* ---- Tests ---- */

static void
test_handshake_and_round_trip(void)
{
	struct events client_ev = {0}, server_ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &client_ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);
	int fds[2] = {open_null(), open_null()};
	struct rfd_fdgroup *group = rfd_fdgroup_new(fds, 2);
	uint32_t stream = 0;

	REQUIRE(client && server && group);
	CHECK_EQ(rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "inspect", "ab", 2, 0, group,
	                               &stream),
	         0);
	CHECK_EQ(stream, 1);
	pump(client, server);
	CHECK_EQ(server_ev.ready, 1);
	REQUIRE(server_ev.n_requests == 1);
	CHECK(strcmp(rfd_msg_method(server_ev.requests[0]), "inspect") == 0);
	CHECK_EQ(rfd_msg_fd_count(server_ev.requests[0]), 2);
	CHECK_EQ(rfd_conn_in_flight(server), 1);

	fds[0] = open_null();
	group = rfd_fdgroup_new(fds, 1);
	CHECK_EQ(rfd_conn_send_reply(server, 1, "xyz", 3, group), 0);
	CHECK_EQ(rfd_conn_in_flight(server), 0);
	pump(server, client);
	CHECK_EQ(client_ev.ready, 1);
	REQUIRE(client_ev.n_replies == 1);
	CHECK_EQ(client_ev.reply_status[0], 0);
	CHECK_EQ(rfd_msg_kind(client_ev.replies[0]), RFD_MSG_REPLY);
	CHECK_EQ(rfd_msg_fd_count(client_ev.replies[0]), 1);
	CHECK_EQ(rfd_conn_in_flight(client), 0);

	events_free(&client_ev);
	events_free(&server_ev);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

static void
test_setup_response_bytes(void)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);
	struct rfd_buf bytes;
	struct rfd_frame frame;
	struct rfd_server_push push;
	const char *why;
	size_t pos = 0;

	rfd_buf_init(&bytes);
	raw_setup(&bytes, 0xf09f9a80, 8, 9, false);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	REQUIRE(bytes.len > 9);
	/* stream 0, METADATA_PUSH << 10 | METADATA: 0x3100 */
	CHECK_EQ(rfd_get_u32(bytes.data + 3), 0);
	CHECK_EQ(rfd_get_u16(bytes.data + 7), 0x3100);
	REQUIRE(next_frame(&bytes, &pos, &frame));
	CHECK_EQ(rfd_server_push_decode(frame.metadata.ptr, frame.metadata.len, &push, &why), 0);
	CHECK_EQ(push.kind, RFD_PUSH_SETUP_RESPONSE);
	CHECK_EQ(push.version, 9);
	CHECK_EQ(ev.ready, 1);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
check_setup_refused(uint32_t key, int32_t min_version, int32_t max_version, bool binary,
                    uint32_t expected_code)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	raw_setup(&bytes, key, min_version, max_version, binary);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 0, &code, NULL));
	CHECK_EQ(code, expected_code);
	CHECK_EQ(ev.failed, 1);
	CHECK_EQ(ev.ready, 0);
	CHECK(rfd_conn_error(server) < 0);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_setup_refusals(void)
{
	check_setup_refused(0x12345678, 8, 10, false, RFD_ERROR_INVALID_SETUP);
	check_setup_refused(0xf09f9a80, 3, 7, false, RFD_ERROR_INVALID_SETUP);
	check_setup_refused(0xf09f9a80, 11, 12, false, RFD_ERROR_INVALID_SETUP);
	check_setup_refused(0xf09f9a80, 8, 10, true, RFD_ERROR_UNSUPPORTED_SETUP);
	check_setup_refused(0xf09f9a80, 0, 7, false, RFD_ERROR_INVALID_SETUP);
}

static void
test_first_frame_must_be_setup(void)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	give_fds(server, 1); /* FDs sent ahead of a bad first frame are closed with it */
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "echo", 1, 0);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 0, &code, NULL));
	CHECK_EQ(code, RFD_ERROR_CONNECTION_ERROR);
	CHECK_EQ(ev.failed, 1);
	CHECK_EQ(ev.n_requests, 0);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* A request whose FDs do not match: ERROR INVALID, FDs closed, the connection goes on. */
static void
check_mismatch(size_t delivered, int32_t claimed, int64_t seq)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_response_error error;
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	if (delivered)
		give_fds(server, delivered);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "echo", claimed, seq);
	give(server, &bytes);
	CHECK_EQ(ev.n_requests, 0);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 1, &code, &error));
	CHECK_EQ(code, RFD_ERROR_INVALID);
	CHECK(error.has_code && error.code == RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
	CHECK(error.has_category && error.category == RFD_ERROR_CATEGORY_INVALID_REQUEST);
	CHECK(error.has_what && error.what.len > 0);
	CHECK_EQ(rfd_conn_error(server), 0);

	/* The next request, claiming what comes next, is served. */
	bytes.len = 0;
	give_fds(server, 1);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 3, "echo", 1, (int64_t)delivered);
	give(server, &bytes);
	CHECK_EQ(ev.n_requests, 1);
	CHECK_EQ(ev.n_requests ? rfd_msg_fd_count(ev.requests[0]) : 0, 1);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);

	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_request_fd_mismatches(void)
{
	check_mismatch(1, 2, 0);   /* fewer FDs than claimed */
	check_mismatch(3, 2, 0);   /* more FDs than claimed */
	check_mismatch(0, 1, 0);   /* none arrived */
	check_mismatch(1, 1, 7);   /* sequence number ahead of what arrived */
	check_mismatch(1, 1, -1);  /* negative sequence number */
	check_mismatch(1, 254, 0); /* over the limit */
	check_mismatch(1, -3, 0);  /* negative count */
}

static void
test_oneway_mismatch_is_silent(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;
	uint32_t code;

	rfd_buf_init(&bytes);
	give_fds(server, 2);
	raw_request(&bytes, RFD_FRAME_REQUEST_FNF, 1, "record", 1, 0);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	CHECK(!find_error(&bytes, 1, &code, NULL));
	CHECK_EQ(bytes.len, 0);
	CHECK_EQ(ev.n_requests, 0);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);
	CHECK_EQ(rfd_conn_error(server), 0);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_orphans_older_than_a_claim_are_closed(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;
	int pipe_fds[2];
	char c;

	rfd_buf_init(&bytes);
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	/* Two FDs nobody claims (say they came with a KEEPALIVE), then a request for seq 2. */
	rfd_conn_recv_fds(server, &pipe_fds[1], 1);
	give_fds(server, 1);
	CHECK_EQ(rfd_conn_queued_fds(server), 2);
	give_fds(server, 1);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "echo", 1, 2);
	give(server, &bytes);
	REQUIRE(ev.n_requests == 1);
	CHECK_EQ(rfd_msg_fd_count(ev.requests[0]), 1);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0); /* the orphan write end was closed */
	close(pipe_fds[0]);
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_queued_fds_closed_at_eof(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	int pipe_fds[2];
	char c;

	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	rfd_conn_recv_fds(server, &pipe_fds[1], 1);
	rfd_conn_recv_bytes(server, (const uint8_t *)"\x00\x00", 2); /* half a frame */
	rfd_conn_recv_eof(server);
	CHECK_EQ(ev.failed, 1);
	CHECK_EQ(ev.failed_err, -ECONNRESET);
	CHECK(strstr(rfd_conn_error_text(server), "middle of a frame") != NULL);
	CHECK(strstr(rfd_conn_error_text(server), "truncated") != NULL);
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0);
	close(pipe_fds[0]);
	rfd_conn_free(server);
}

/* LIMIT-3: a read with more FDs than the cap fails the connection; so does a full budget. */
static void
test_fd_budget_and_cap(void)
{
	struct events ev = {0};
	struct rfd_limits limits;
	struct rfd_conn *server;
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_limits_init(&limits);
	limits.fd_budget = 10;
	limits.max_fds_per_msg = 4;

	server = ready_server(&ev, &limits);
	give_fds(server, 4);
	give_fds(server, 4);
	CHECK_EQ(rfd_conn_error(server), 0);
	give_fds(server, 4); /* 12 queued > 10 */
	CHECK_EQ(rfd_conn_error(server), -E2BIG);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);
	rfd_buf_init(&bytes);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 0, &code, NULL));
	CHECK_EQ(code, RFD_ERROR_CONNECTION_ERROR);
	rfd_conn_free(server);

	memset(&ev, 0, sizeof(ev));
	server = ready_server(&ev, &limits);
	give_fds(server, 5); /* over the per-message cap */
	CHECK_EQ(rfd_conn_error(server), -E2BIG);
	CHECK_EQ(ev.failed, 1);
	give_fds(server, 2); /* FDs after the failure are closed at once */
	rfd_conn_free(server);
	rfd_buf_free(&bytes);
}

/* LIMIT-12: over the limit of requests in flight, ERROR 0x202 with category 2 and code 1. */
static void
test_in_flight_limit(void)
{
	struct events ev = {0};
	struct rfd_limits limits;
	struct rfd_conn *server;
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_limits_init(&limits);
	limits.max_in_flight = 2;
	server = ready_server(&ev, &limits);
	rfd_buf_init(&bytes);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "a", 0, 0);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 3, "b", 0, 0);
	give(server, &bytes);
	give_fds(server, 1);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 5, "c", 1, 0);
	give(server, &bytes);
	CHECK_EQ(ev.n_requests, 2);
	CHECK_EQ(rfd_conn_queued_fds(server),
	         0); /* the rejected request's FD was claimed and closed */
	drain(server, &bytes, NULL);
	{
		struct rfd_response_error error;

		CHECK(find_error(&bytes, 5, &code, &error));
		CHECK_EQ(code, RFD_ERROR_REJECTED);
		CHECK(error.has_category && error.category == RFD_ERROR_CATEGORY_LOADSHEDDING);
		CHECK(error.has_code && error.code == RFD_ERROR_CODE_OVERLOAD);
	}
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* A REQUEST_STREAM of the wrong kind is declined with its FDs claimed and closed. */
static void
test_declined_features_close_fds(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	give_fds(server, 1);
	raw_request(&bytes, RFD_FRAME_REQUEST_STREAM, 1, "stream", 1, 0);
	give(server, &bytes);
	CHECK_EQ(ev.n_requests, 0);
	CHECK_EQ(rfd_conn_queued_fds(server), 0);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 1, &code, NULL));
	CHECK_EQ(code, RFD_ERROR_INVALID);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* FD-SEND-3, FD-SEND-4, FD-SEND-6; OWN-6: a chunk's FDs stay open until the write is done. */
static void
test_fds_go_with_the_end_of_their_message(void)
{
	struct events ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &ev);
	struct rfd_out_chunk chunk;
	struct rfd_buf bytes;
	struct rfd_frame frame;
	size_t pos = 0, setup_len, a_len;
	int fd = open_null();

	REQUIRE(client);
	rfd_buf_init(&bytes);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "a", NULL, 0, 0, NULL, NULL);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "b", NULL, 0, 0,
	                      rfd_fdgroup_new(&fd, 1), NULL);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "c", NULL, 0, 0, NULL, NULL);

	/* SETUP and a go first, on their own; then b alone with its FD; c after. */
	REQUIRE(rfd_conn_out_peek(client, &chunk));
	CHECK_EQ(chunk.n_fds, 0);
	rfd_buf_append(&bytes, chunk.bytes, chunk.len);
	REQUIRE(next_frame(&bytes, &pos, &frame));
	setup_len = pos;
	REQUIRE(next_frame(&bytes, &pos, &frame));
	a_len = pos - setup_len;
	CHECK(a_len > 0);
	CHECK_EQ(pos, chunk.len);
	rfd_conn_out_advance(client, chunk.len);

	REQUIRE(rfd_conn_out_peek(client, &chunk));
	CHECK_EQ(chunk.n_fds, 1);
	bytes.len = 0;
	pos = 0;
	rfd_buf_append(&bytes, chunk.bytes, chunk.len);
	REQUIRE(next_frame(&bytes, &pos, &frame));
	CHECK_EQ(pos, chunk.len); /* exactly b's frame */

	/* A partial write sends the FDs once: the rest of b and c go without them. */
	rfd_conn_out_advance(client, 5);
	REQUIRE(rfd_conn_out_peek(client, &chunk));
	CHECK_EQ(chunk.n_fds, 0);
	CHECK_EQ(chunk.len, rfd_conn_out_pending(client));
	rfd_buf_free(&bytes);
	rfd_conn_free(client);
}

static void
test_abandoned_reply_fds_are_closed(void)
{
	struct events client_ev = {0}, server_ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &client_ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);
	int pipe_fds[2];
	uint32_t first, second;
	char c;

	REQUIRE(client && server);
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "slow", NULL, 0, 0, NULL, &first);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "fast", NULL, 0, 0, NULL, &second);
	pump(client, server);
	REQUIRE(server_ev.n_requests == 2);
	rfd_conn_abandon(client, first);

	/* The late reply carries a pipe write end; the next reply carries another FD. */
	rfd_conn_send_reply(server, first, NULL, 0, rfd_fdgroup_new(&pipe_fds[1], 1));
	c = (char)open_null();
	{
		int fd = c;

		rfd_conn_send_reply(server, second, NULL, 0, rfd_fdgroup_new(&fd, 1));
	}
	pump(server, client);
	REQUIRE(client_ev.n_replies == 1);
	CHECK_EQ(client_ev.reply_stream[0], second);
	CHECK_EQ(client_ev.reply_status[0], 0);
	CHECK_EQ(rfd_msg_fd_count(client_ev.replies[0]), 1);
	CHECK_EQ(rfd_conn_queued_fds(client), 0);
	CHECK_EQ(rfd_conn_in_flight(client), 0);
	CHECK_EQ(read(pipe_fds[0], &c, 1), 0);
	close(pipe_fds[0]);

	events_free(&client_ev);
	events_free(&server_ev);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

static void
test_reply_mismatch_fails_only_that_call(void)
{
	struct events client_ev = {0}, server_ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &client_ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);
	struct rfd_buf bytes;
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .fd = {.present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 2},
	};
	struct rfd_frame frame = {
	    .stream_id = 1,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	    .has_metadata = true,
	};
	uint32_t stream;

	REQUIRE(client && server);
	rfd_buf_init(&bytes);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "x", NULL, 0, 0, NULL, &stream);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "y", NULL, 0, 0, NULL, NULL);
	pump(client, server);
	pump(server, client); /* the setup response */

	/* A reply claiming 2 FDs, with 1 delivered. */
	rfd_response_metadata_encode(&md, &bytes);
	frame.metadata.ptr = bytes.data;
	frame.metadata.len = bytes.len;
	{
		struct rfd_buf wire;

		rfd_buf_init(&wire);
		rfd_frame_encode(&frame, &wire);
		give_fds(client, 1);
		give(client, &wire);
		rfd_buf_free(&wire);
	}
	REQUIRE(client_ev.n_replies == 1);
	CHECK_EQ(client_ev.reply_status[0], -EBADFD);
	CHECK(client_ev.replies[0] == NULL);
	CHECK(strstr(rfd_conn_reason(client), "expected 2 FDs") != NULL);
	CHECK_EQ(rfd_conn_queued_fds(client), 0);
	CHECK_EQ(rfd_conn_error(client), 0);

	/* The other call still completes, with FDs counted from 1. */
	{
		int fd = open_null();

		rfd_conn_send_reply(server, 3, NULL, 0, rfd_fdgroup_new(&fd, 1));
	}
	rfd_conn_send_reply(server, 1, NULL, 0, NULL); /* answered already: dropped */
	pump(server, client);
	/* The server's own counter started at 0: its FD claims seq 0, and the client has seen
	 * 1 FD already, so it mismatches: what a peer that sent FDs the server never counted
	 * gets.  Here that shows the client checks the sequence number, not just the count. */
	REQUIRE(client_ev.n_replies == 2);
	CHECK_EQ(client_ev.reply_status[1], -EBADFD);
	CHECK(strstr(rfd_conn_reason(client), "have fdSeqNum 1") != NULL);
	/* Newer than the claim: left queued for a later claim, closed at the latest with the core.
	 */
	CHECK_EQ(rfd_conn_queued_fds(client), 1);

	events_free(&client_ev);
	events_free(&server_ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

static void
test_keepalive_is_answered(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE,
	                              .flags = RFD_FLAG_FOLLOWS,
	                              .data = {(const uint8_t *)"ping", 4}};
	struct rfd_buf bytes;
	struct rfd_frame frame;
	size_t pos = 0;

	rfd_buf_init(&bytes);
	rfd_frame_encode(&keepalive, &bytes);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	REQUIRE(next_frame(&bytes, &pos, &frame));
	CHECK_EQ(frame.type, RFD_FRAME_KEEPALIVE);
	CHECK_EQ(frame.flags & RFD_FLAG_FOLLOWS, 0);
	CHECK(frame.data.len == 4 && memcmp(frame.data.ptr, "ping", 4) == 0);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_fragmented_request_with_fds(void)
{
	struct events client_ev = {0}, server_ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &client_ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);
	size_t size = RFD_FRAGMENT_DEFAULT + 1000;
	uint8_t *args = malloc(size);
	int fd = open_null();
	size_t len = 0;

	REQUIRE(client && server && args);
	for (size_t i = 0; i < size; i++)
		args[i] = (uint8_t)(i >> 3);
	CHECK_EQ(rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "big", args, size, 0,
	                               rfd_fdgroup_new(&fd, 1), NULL),
	         0);
	pump(client, server);
	REQUIRE(server_ev.n_requests == 1);
	CHECK_EQ(rfd_msg_fd_count(server_ev.requests[0]), 1);
	rfd_msg_data(server_ev.requests[0], &len);
	CHECK_EQ(len, size);
	CHECK(len == size && memcmp(rfd_msg_data(server_ev.requests[0], NULL), args, size) == 0);
	free(args);
	events_free(&client_ev);
	events_free(&server_ev);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

static void
test_allocation_failures_leak_nothing(void)
{
	bool every_site = false;

	/* Every allocation of a request/reply exchange fails once, in turn. */
	for (long site = 0; site < 400 && !every_site; site++) {
		struct events client_ev = {0}, server_ev = {0};
		struct rfd_conn *client, *server;
		int fds[2] = {open_null(), open_null()};
		struct rfd_fdgroup *group;
		long made;

		rfd_alloc_fail_at(site);
		client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &client_ev);
		server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);
		group = rfd_fdgroup_new(fds, 2);
		if (client && group)
			rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "m", "x", 1, 0, group,
			                      NULL);
		else
			rfd_fdgroup_free(group);
		if (client && server) {
			pump(client, server);
			for (int i = 0; i < server_ev.n_requests; i++) {
				int fd = open_null();

				rfd_conn_send_reply(server, server_ev.requests[i]->stream_id, "y",
				                    1, rfd_fdgroup_new(&fd, 1));
			}
			pump(server, client);
		}
		made = rfd_alloc_fail_at(-1);
		events_free(&client_ev);
		events_free(&server_ev);
		rfd_conn_free(client);
		rfd_conn_free(server);
		every_site = made <= site;
	}
	CHECK(every_site);
}

static void
test_second_setup_and_bad_stream_ids_fail_the_connection(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	raw_setup(&bytes, 0xf09f9a80, 8, 10, false);
	give(server, &bytes);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 0, &code, NULL));
	CHECK_EQ(code, RFD_ERROR_INVALID_SETUP);
	CHECK(rfd_conn_error(server) < 0);
	rfd_conn_free(server);

	for (int i = 0; i < 2; i++) {
		memset(&ev, 0, sizeof(ev));
		server = ready_server(&ev, NULL);
		bytes.len = 0;
		raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "a", 0, 0);
		/* An even stream id, or a stream still in use. */
		raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, i == 0 ? 2 : 1, "b", 0, 0);
		give(server, &bytes);
		CHECK_EQ(ev.n_requests, 1);
		CHECK_EQ(rfd_conn_error(server), -EPROTO);
		drain(server, &bytes, NULL);
		CHECK(find_error(&bytes, 0, &code, NULL));
		CHECK_EQ(code, RFD_ERROR_CONNECTION_ERROR);
		events_free(&ev);
		rfd_conn_free(server);
	}
	rfd_buf_free(&bytes);
}

/*
 * FRAME-13: a request frame on a stream in use, or on an even stream, fails
 * the connection at that frame even when it is only the first fragment of
 * its request: no reassembly starts, and the FDs queued for it are closed.
 */
static void
test_fragmented_request_on_stream_in_use_fails_at_once(void)
{
	static const uint8_t types[] = {RFD_FRAME_REQUEST_RESPONSE, RFD_FRAME_REQUEST_FNF,
	                                RFD_FRAME_REQUEST_STREAM, RFD_FRAME_REQUEST_CHANNEL};
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	for (size_t i = 0; i < 2 * sizeof(types); i++) {
		struct events ev = {0};
		struct rfd_conn *server = ready_server(&ev, NULL);
		bool even = i >= sizeof(types);
		size_t start;
		int fd = open_null();

		bytes.len = 0;
		raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "a", 0, 0);
		give(server, &bytes);
		REQUIRE(ev.n_requests == 1); /* stream 1 is in use until it is answered */
		rfd_conn_recv_fds(server, &fd, 1);
		start = bytes.len;
		raw_request(&bytes, types[i % sizeof(types)], even ? 4 : 1, "b", 1, 0);
		bytes.data[start + 8] |= 0x80; /* FOLLOWS, in the low byte of type and flags */
		give(server, &bytes);
		CHECK_EQ(rfd_conn_error(server), -EPROTO);
		CHECK(strstr(rfd_conn_error_text(server), "even or still in use") != NULL);
		CHECK(!rfd_test_fd_is_open(fd));
		CHECK_EQ(rfd_conn_queued_fds(server), 0);
		drain(server, &bytes, NULL);
		CHECK(find_error(&bytes, 0, &code, NULL));
		CHECK_EQ(code, RFD_ERROR_CONNECTION_ERROR);
		events_free(&ev);
		rfd_conn_free(server);
	}
	rfd_buf_free(&bytes);
}

static void
test_wrong_kind_is_refused_with_code_9(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_response_error error;
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	/* A REQUEST_STREAM: kind 0 does not match it, and no method streams anyway. */
	give_fds(server, 1);
	raw_request(&bytes, RFD_FRAME_REQUEST_STREAM, 1, "inspect", 1, 0);
	give(server, &bytes);
	CHECK_EQ(ev.n_requests, 0);
	CHECK_EQ(rfd_conn_queued_fds(server), 0); /* claimed, then closed */
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 1, &code, &error));
	CHECK_EQ(code, RFD_ERROR_INVALID);
	CHECK(error.has_code && error.code == RFD_ERROR_CODE_WRONG_RPC_KIND);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_other_frame_inside_a_fragmented_message_fails(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_frame first = {.stream_id = 1,
	                          .type = RFD_FRAME_REQUEST_RESPONSE,
	                          .flags = RFD_FLAG_FOLLOWS,
	                          .has_metadata = true,
	                          .metadata = {(const uint8_t *)"\x15", 1}};
	struct rfd_frame cancel = {.stream_id = 1, .type = RFD_FRAME_CANCEL};
	struct rfd_buf bytes;

	rfd_buf_init(&bytes);
	rfd_frame_encode(&first, &bytes);
	rfd_frame_encode(&cancel, &bytes);
	give(server, &bytes);
	CHECK_EQ(rfd_conn_error(server), -EPROTO);
	CHECK(strstr(rfd_conn_error_text(server), "fragmented") != NULL);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
test_reply_on_unknown_stream_leaves_fds_queued(void)
{
	struct events ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);
	struct rfd_buf meta, wire;
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .fd = {.present = true, .has_seq = true, .has_num = true, .num_fds = 1},
	};
	struct rfd_frame frame = {.stream_id = 41,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	                          .has_metadata = true};

	REQUIRE(client && server);
	pump(client, server);
	pump(server, client);
	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	rfd_response_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, &wire);
	give_fds(client, 1);
	give(client, &wire);
	CHECK_EQ(ev.n_replies, 0);
	CHECK_EQ(rfd_conn_queued_fds(client), 1); /* an orphan for a later claim or the close */
	CHECK_EQ(rfd_conn_error(client), 0);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
	events_free(&ev);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

/* LIMIT-7: a receiver configured with a lower maximum frame length fails on a longer frame. */
static void
test_frame_over_configured_maximum(void)
{
	struct events ev = {0};
	struct rfd_limits limits;
	struct rfd_conn *server;
	struct rfd_buf bytes;
	uint8_t big[600] = {0};

	rfd_limits_init(&limits);
	limits.max_frame = 512;
	server = ready_server(&ev, &limits);
	rfd_buf_init(&bytes);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, (const char *)memset(big, 'm', 599), 0,
	            0);
	give(server, &bytes);
	CHECK_EQ(rfd_conn_error(server), -EMSGSIZE);
	CHECK_EQ(ev.n_requests, 0);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* META-15: a request that failed inside the server: ERROR 0x203 with category 0. */
static void
test_internal_failure_answer(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_response_error error;
	struct rfd_buf bytes;
	uint32_t code = 0;

	rfd_buf_init(&bytes);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "m", 0, 0);
	give(server, &bytes);
	REQUIRE(ev.n_requests == 1);
	CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_INTERNAL, "broke"), 0);
	drain(server, &bytes, NULL);
	CHECK(find_error(&bytes, 1, &code, &error));
	CHECK_EQ(code, RFD_ERROR_CANCELED);
	CHECK(error.has_category && error.category == RFD_ERROR_CATEGORY_INTERNAL_ERROR);
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* SETUP-21: RESUME_ENABLE (its token skipped) and LEASE are accepted and ignored. */
static void
test_setup_with_resume_enable_and_lease_is_accepted(void)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);
	struct rfd_setup_metadata md = {.has_max_version = true, .max_version = 10};
	struct rfd_frame setup = {
	    .type = RFD_FRAME_SETUP,
	    .flags = RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE,
	    .version_major = 1,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .resume_token = {(const uint8_t *)"token", 5},
	    .metadata_mime = {(const uint8_t *)"application/x-rocket-metadata+compact", 37},
	    .data_mime = {(const uint8_t *)"application/x-rocket-payload", 28},
	    .has_metadata = true,
	};
	struct rfd_buf meta, bytes;
	struct rfd_frame frame;
	size_t pos = 0;

	REQUIRE(server);
	rfd_buf_init(&meta);
	rfd_buf_init(&bytes);
	rfd_buf_put_u32(&meta, 0xf09f9a80);
	rfd_setup_metadata_encode(&md, &meta);
	setup.metadata.ptr = meta.data;
	setup.metadata.len = meta.len;
	REQUIRE(rfd_frame_encode(&setup, &bytes) == 0);
	give(server, &bytes);
	CHECK_EQ(rfd_conn_error(server), 0);
	CHECK_EQ(ev.ready, 1);
	drain(server, &bytes, NULL);
	REQUIRE(next_frame(&bytes, &pos, &frame));
	CHECK_EQ(frame.type, RFD_FRAME_METADATA_PUSH);
	rfd_buf_free(&meta);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

static void
put_payload(struct rfd_buf *out, uint32_t stream_id, uint16_t flags)
{
	struct rfd_frame frame = {.stream_id = stream_id,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = flags,
	                          .data = {(const uint8_t *)"zz", 2}};

	rfd_frame_encode(&frame, out);
}

/* FRAME-25: at a server, a PAYLOAD continuing no request starts no reassembly. */
static void
test_server_ignores_payload_with_follows(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;

	rfd_buf_init(&bytes);
	give_fds(server, 1);
	put_payload(&bytes, 1, RFD_FLAG_FOLLOWS | RFD_FLAG_NEXT);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "after", 0, 0);
	give(server, &bytes);
	CHECK_EQ(rfd_conn_error(server), 0);
	REQUIRE(ev.n_requests == 1);
	CHECK(strcmp(rfd_msg_method(ev.requests[0]), "after") == 0);
	CHECK_EQ(rfd_conn_queued_fds(server), 1);
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* A client past its handshake, with @n request-response calls in flight (streams 1, 3, ...). */
static struct rfd_conn *
ready_client(struct events *ev, int n)
{
	struct events server_ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, ev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &server_ev);

	if (client && server) {
		for (int i = 0; i < n; i++)
			rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "m", NULL, 0, 0, NULL,
			                      NULL);
		pump(client, server);
		pump(server, client);
	}
	events_free(&server_ev);
	rfd_conn_free(server);
	return client;
}

/* FRAME-25: at a client, only a stream in flight or abandoned reassembles. */
static void
test_client_ignores_payload_with_follows_on_untracked_stream(void)
{
	struct events ev = {0};
	struct rfd_conn *client = ready_client(&ev, 1);
	struct rfd_frame error = {.stream_id = 41, .type = RFD_FRAME_ERROR, .u32 = 0x204};
	struct rfd_buf bytes;

	REQUIRE(client && ev.ready == 1);
	rfd_buf_init(&bytes);
	put_payload(&bytes, 41, RFD_FLAG_FOLLOWS | RFD_FLAG_NEXT);
	rfd_frame_encode(&error, &bytes);
	give(client, &bytes);
	CHECK_EQ(rfd_conn_error(client), 0);
	CHECK_EQ(ev.n_replies, 0);

	/* On stream 1, in flight, the same frame starts a reassembly. */
	put_payload(&bytes, 1, RFD_FLAG_FOLLOWS | RFD_FLAG_NEXT);
	error.stream_id = 1;
	rfd_frame_encode(&error, &bytes);
	give(client, &bytes);
	CHECK_EQ(rfd_conn_error(client), -EPROTO);
	CHECK(strstr(rfd_conn_error_text(client), "fragmented") != NULL);
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(client);
}

/* FRAME-28: a request frame at a client fails the connection at its first fragment. */
static void
test_client_fails_on_first_request_fragment(void)
{
	static const uint8_t types[] = {RFD_FRAME_REQUEST_RESPONSE, RFD_FRAME_REQUEST_FNF,
	                                RFD_FRAME_REQUEST_STREAM, RFD_FRAME_REQUEST_CHANNEL};

	for (size_t i = 0; i < sizeof(types); i++) {
		struct events ev = {0};
		struct rfd_conn *client = ready_client(&ev, 1);
		struct rfd_frame frame = {.stream_id = 1,
		                          .type = types[i],
		                          .flags = RFD_FLAG_FOLLOWS,
		                          .u32 = 1,
		                          .data = {(const uint8_t *)"x", 1}};
		struct rfd_buf bytes;
		int fd = open_null();

		REQUIRE(client);
		rfd_buf_init(&bytes);
		rfd_frame_encode(&frame, &bytes);
		rfd_conn_recv_fds(client, &fd, 1);
		give(client, &bytes);
		CHECK_EQ(rfd_conn_error(client), -EPROTO);
		CHECK(!rfd_test_fd_is_open(fd));
		CHECK_EQ(rfd_conn_queued_fds(client), 0);
		CHECK_EQ(ev.failed, 1);
		events_free(&ev);
		rfd_buf_free(&bytes);
		rfd_conn_free(client);
	}
}

/* ERR-16: EOF with fragments of an unfinished message buffered is a truncation. */
static void
test_eof_inside_fragmented_message_is_truncation(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_frame first = {.stream_id = 1,
	                          .type = RFD_FRAME_REQUEST_RESPONSE,
	                          .flags = RFD_FLAG_FOLLOWS,
	                          .data = {(const uint8_t *)"x", 1}};
	struct rfd_buf bytes;

	rfd_buf_init(&bytes);
	rfd_frame_encode(&first, &bytes);
	give(server, &bytes);
	CHECK_EQ(rfd_conn_error(server), 0);
	rfd_conn_recv_eof(server);
	CHECK_EQ(rfd_conn_error(server), -ECONNRESET);
	CHECK(strstr(rfd_conn_error_text(server), "truncated") != NULL);
	rfd_conn_free(server);

	server = ready_server(&ev, NULL);
	rfd_conn_recv_eof(server);
	CHECK(strstr(rfd_conn_error_text(server), "truncated") == NULL);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/* Give @client a response on @stream_id with @kind and one FD claimed with fdSeqNum @seq. */
static void
give_response_with_fd(struct rfd_conn *client, uint32_t stream_id, enum rfd_payload_kind kind,
                      int64_t seq, int fd)
{
	struct rfd_response_metadata md = {
	    .payload_kind = kind,
	    .fd = {.present = true, .has_seq = true, .fd_seq = seq, .has_num = true, .num_fds = 1},
	};
	struct rfd_frame frame = {.stream_id = stream_id,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	                          .has_metadata = true,
	                          .data = {(const uint8_t *)"\x00", 1}};
	struct rfd_buf meta, wire;

	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	rfd_response_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, &wire);
	rfd_conn_recv_fds(client, &fd, 1);
	give(client, &wire);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
}

/* META-21: an empty payloadMetadata fails the call after its FDs were claimed and closed. */
static void
test_empty_payload_metadata_fails_the_call(void)
{
	struct events ev = {0};
	struct rfd_conn *client = ready_client(&ev, 2);
	int fd = open_null();

	REQUIRE(client);
	give_response_with_fd(client, 1, RFD_PAYLOAD_EMPTY, 0, fd);
	REQUIRE(ev.n_replies == 1);
	CHECK_EQ(ev.reply_status[0], -EPROTO);
	CHECK(ev.replies[0] == NULL);
	CHECK(strstr(rfd_conn_reason(client), "payloadMetadata") != NULL);
	CHECK(!rfd_test_fd_is_open(fd));
	CHECK_EQ(rfd_conn_queued_fds(client), 0);
	CHECK_EQ(rfd_conn_error(client), 0);

	/* META-22: an absent one is a result; the FD counter moved past the closed FD. */
	fd = open_null();
	give_response_with_fd(client, 3, RFD_PAYLOAD_NONE, 1, fd);
	REQUIRE(ev.n_replies == 2);
	CHECK_EQ(ev.reply_status[1], 0);
	REQUIRE(ev.replies[1] != NULL);
	CHECK_EQ(rfd_msg_kind(ev.replies[1]), RFD_MSG_REPLY);
	CHECK_EQ(rfd_msg_fd_count(ev.replies[1]), 1);
	events_free(&ev);
	rfd_conn_free(client);
}

/*
 * META-20: a REQUEST_STREAM of kind 4 reaches the application, which knows
 * the methods: an unknown method is code 10 (step 7), a plain reply (the
 * method does not stream) code 9 (step 8), bad arguments code 6 (step 9).
 * A declared exception is a valid first response of a stream (below).
 */
static void
test_stream_request_answers_follow_the_table(void)
{
	enum { UNKNOWN, REPLY, BAD_ARGS, N_ANSWERS };
	static const int32_t want_code[N_ANSWERS] = {RFD_ERROR_CODE_UNKNOWN_METHOD,
	                                             RFD_ERROR_CODE_WRONG_RPC_KIND,
	                                             RFD_ERROR_CODE_REQUEST_PARSING_FAILURE};

	for (int answer = 0; answer < N_ANSWERS; answer++) {
		struct events ev = {0};
		struct rfd_conn *server = ready_server(&ev, NULL);
		struct rfd_response_error error;
		struct rfd_buf bytes;
		struct rfd_frame frame;
		uint32_t code = 0;
		size_t pos = 0;
		int fd;

		rfd_buf_init(&bytes);
		give_fds(server, 1);
		raw_request_of_kind(&bytes, RFD_FRAME_REQUEST_STREAM, 4, 1, "echo", 1, 0);
		give(server, &bytes);
		REQUIRE(ev.n_requests == 1);
		CHECK(rfd_msg_streaming(ev.requests[0]));
		CHECK_EQ(rfd_msg_call_kind(ev.requests[0]), RFD_CALL_STREAM);
		CHECK_EQ(rfd_msg_kind(ev.requests[0]), RFD_MSG_REQUEST);
		CHECK_EQ(rfd_msg_fd_count(ev.requests[0]), 1);
		CHECK_EQ(rfd_conn_in_flight(server), 1);

		fd = open_null();
		if (answer == UNKNOWN)
			CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_UNKNOWN_METHOD, "no"), 0);
		else if (answer == BAD_ARGS)
			CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_BAD_REQUEST, "args"), 0);
		else
			CHECK_EQ(rfd_conn_send_reply(server, 1, "\x00", 1, rfd_fdgroup_new(&fd, 1)),
			         0);
		if (answer != REPLY)
			close(fd);
		CHECK(!rfd_test_fd_is_open(fd));
		CHECK_EQ(rfd_conn_in_flight(server), 0);

		drain(server, &bytes, NULL);
		CHECK(find_error(&bytes, 1, &code, &error));
		CHECK_EQ(code, RFD_ERROR_INVALID);
		CHECK(error.has_code && error.code == want_code[answer]);
		while (next_frame(&bytes, &pos, &frame))
			CHECK(frame.type != RFD_FRAME_PAYLOAD);
		events_free(&ev);
		rfd_buf_free(&bytes);
		rfd_conn_free(server);
	}
}

/* A request-response on a stream id a stream request used before is answered normally. */
static void
test_stream_marker_ends_with_the_request(void)
{
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf bytes;
	struct rfd_frame frame;
	size_t pos = 0;
	bool payload = false;

	rfd_buf_init(&bytes);
	raw_request_of_kind(&bytes, RFD_FRAME_REQUEST_STREAM, 4, 1, "m", 0, 0);
	give(server, &bytes);
	REQUIRE(ev.n_requests == 1);
	CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_UNKNOWN_METHOD, "no"), 0);
	raw_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, "m", 0, 0);
	give(server, &bytes);
	REQUIRE(ev.n_requests == 2);
	CHECK(!rfd_msg_streaming(ev.requests[1]));
	CHECK_EQ(rfd_msg_call_kind(ev.requests[1]), RFD_CALL_RESPONSE);
	drain(server, &bytes, NULL);
	bytes.len = 0;
	CHECK_EQ(rfd_conn_send_reply(server, 1, "\x00", 1, NULL), 0);
	drain(server, &bytes, NULL);
	while (next_frame(&bytes, &pos, &frame))
		payload |= frame.type == RFD_FRAME_PAYLOAD && frame.stream_id == 1;
	CHECK(payload);
	events_free(&ev);
	rfd_buf_free(&bytes);
	rfd_conn_free(server);
}

/*
 * A connection that fails after a partial write sends nothing more: the
 * messages still queued claim FDs that failing closed.
 */
static void
test_failure_after_partial_write_drops_the_rest(void)
{
	struct events ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &ev);
	struct rfd_out_chunk chunk;
	int fds[2] = {open_null(), open_null()};

	REQUIRE(client);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "a", NULL, 0, 0,
	                      rfd_fdgroup_new(&fds[0], 1), NULL);
	rfd_conn_send_request(client, RFD_REQUEST_RESPONSE, "b", NULL, 0, 0,
	                      rfd_fdgroup_new(&fds[1], 1), NULL);
	REQUIRE(rfd_conn_out_peek(client, &chunk));
	rfd_conn_out_advance(client, chunk.len / 2); /* SETUP, cut in the middle */
	rfd_conn_fail(client, -EPIPE, "write failed");
	CHECK_EQ(rfd_conn_out_pending(client), 0);
	CHECK(!rfd_conn_out_peek(client, &chunk));
	rfd_conn_free(client);
}

/* ---- Streams ---- */

/* A client core and a server core past their handshake. */
struct pair {
	struct events cev;
	struct events sev;
	struct rfd_conn *client;
	struct rfd_conn *server;
};

static bool
pair_open(struct pair *p, const struct rfd_limits *client_limits)
{
	memset(p, 0, sizeof(*p));
	p->client = rfd_conn_new(RFD_ROLE_CLIENT, client_limits, &callbacks, &p->cev);
	p->server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &p->sev);
	if (!p->client || !p->server)
		return false;
	pump(p->client, p->server);
	pump(p->server, p->client);
	return p->cev.ready == 1 && p->sev.ready == 1;
}

static void
pair_close(struct pair *p)
{
	events_free(&p->cev);
	events_free(&p->sev);
	rfd_conn_free(p->client);
	rfd_conn_free(p->server);
}

/* Open a stream of @initial_n credits and deliver its request; the server's msg is freed. */
static uint32_t
pair_stream(struct pair *p, uint32_t initial_n)
{
	uint32_t id = 0;

	CHECK_EQ(rfd_conn_send_stream(p->client, "s", "\x00", 1, 0, initial_n, NULL, &id), 0);
	pump(p->client, p->server);
	for (int i = 0; i < p->sev.n_requests; i++)
		rfd_msg_free(p->sev.requests[i]);
	p->sev.n_requests = 0;
	return id;
}

static struct rfd_fdgroup *
null_group(size_t n)
{
	int fds[RFD_MAX_FDS];

	for (size_t i = 0; i < n; i++)
		fds[i] = open_null();
	return rfd_fdgroup_new(fds, n);
}

/* A pipe whose write end goes into a group; *read_end tells when every copy of it is closed. */
static struct rfd_fdgroup *
pipe_group(int *read_end)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return NULL;
	*read_end = p[0];
	return rfd_fdgroup_new(&p[1], 1);
}

static bool
write_end_closed(int read_end)
{
	char c;

	return read(read_end, &c, 1) == 0;
}

/* The frames of @tap on @stream_id, into @frames; how many. */
static int
frames_on(const struct rfd_buf *tap, uint32_t stream_id, struct rfd_frame *frames, int cap)
{
	struct rfd_frame frame;
	size_t pos = 0;
	int n = 0;

	while (next_frame(tap, &pos, &frame))
		if (frame.stream_id == stream_id && n < cap)
			frames[n++] = frame;
	return n;
}

static bool
bytes_are(struct rfd_slice slice, const char *hex)
{
	uint8_t want[256];
	size_t n = rfd_test_hex(hex, want, sizeof(want));

	return slice.len == n && memcmp(slice.ptr, want, n) == 0;
}

/*
 * The whole exchange: REQUEST_STREAM with FDs and clientTimeoutMs, a first
 * response and items with 1 and 253 FDs, byte for byte; the server stops at
 * zero credit and goes on after REQUEST_N; completion.
 */
static void
test_stream_round_trip_with_fds(void)
{
	struct pair p;
	struct rfd_request_metadata request;
	struct rfd_frame frames[8];
	struct rfd_buf tap;
	const char *why;
	uint32_t id = 0;
	int r, read_end = -1;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	CHECK_EQ(rfd_conn_send_stream(p.client, "streamFds", "\x00", 1, 250, 3, null_group(2), &id),
	         0);
	CHECK_EQ(id, 1);
	CHECK_EQ(rfd_conn_stream_request(p.client, id, 1), -EINVAL); /* before the first response */
	pump_tap(p.client, p.server, &tap);
	REQUIRE(frames_on(&tap, id, frames, 8) == 1);
	CHECK_EQ(rfd_get_u16(tap.data + tap.len - frames[0].data.len - frames[0].metadata.len - 9),
	         0x1900);
	CHECK_EQ(frames[0].type, RFD_FRAME_REQUEST_STREAM);
	CHECK_EQ(frames[0].u32, 3);
	CHECK_EQ(rfd_request_metadata_decode(frames[0].metadata.ptr, frames[0].metadata.len,
	                                     &request, &why),
	         0);
	CHECK(request.has_kind && request.kind == 4);
	CHECK(request.has_client_timeout && request.client_timeout_ms == 250);
	CHECK(request.fd.has_num && request.fd.num_fds == 2 && request.fd.fd_seq == 0);
	REQUIRE(p.sev.n_requests == 1);
	CHECK_EQ(rfd_msg_call_kind(p.sev.requests[0]), RFD_CALL_STREAM);
	CHECK_EQ(rfd_msg_fd_count(p.sev.requests[0]), 2);

	CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x00", 1, NULL), -ENOENT); /* not open yet */
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, pipe_group(&read_end)), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 2);
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x0c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x0c\x00\x00", 3, null_group(253)), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 0);
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x0c\x00\x00", 3, null_group(1)), -EAGAIN);
	CHECK_EQ(rfd_conn_in_flight(p.server), 1);

	tap.len = 0;
	pump_tap(p.server, p.client, &tap);
	REQUIRE(frames_on(&tap, id, frames, 8) == 3);
	/* The worked examples of the wire notes: flags 0x2920 (NEXT, METADATA). */
	CHECK_EQ(frames[0].flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT);
	CHECK(bytes_are(frames[0].metadata, "7c 1c 00 00 25 02 3c 16 00 15 02 00 00"));
	CHECK(bytes_are(frames[0].data, "00"));
	CHECK_EQ(frames[1].flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT);
	CHECK(bytes_are(frames[1].metadata, "3c 1c 00 00 00"));
	CHECK(bytes_are(frames[2].metadata, "3c 1c 00 00 2c 16 02 15 fa 03 00 00"));

	REQUIRE(p.cev.n_stream == 3);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[0]), RFD_MSG_REPLY);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[0]), 1);
	close(rfd_msg_take_fd(p.cev.stream_msgs[0], 0));
	CHECK(write_end_closed(read_end)); /* the server closed its copy once it was written */
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[1]), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[1]), 0);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[2]), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[2]), 253);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);

	/* REQUEST_N: the server hears of it and sends again. */
	CHECK_EQ(rfd_conn_stream_request(p.client, id, 0), -EINVAL);
	CHECK_EQ(rfd_conn_stream_request(p.client, 7, 1), -ENOENT);
	CHECK_EQ(rfd_conn_stream_request(p.client, id, 2), 0);
	tap.len = 0;
	pump_tap(p.client, p.server, &tap);
	REQUIRE(frames_on(&tap, id, frames, 8) == 1);
	CHECK_EQ(frames[0].type, RFD_FRAME_REQUEST_N);
	CHECK_EQ(frames[0].u32, 2);
	REQUIRE(p.sev.n_events == 1);
	CHECK_EQ(p.sev.events[0], RFD_CONN_STREAM_CREDIT);
	CHECK_EQ(p.sev.event_ids[0], id);
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 2);
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x0c\x00\x00", 3, null_group(1)), 0);
	CHECK_EQ(rfd_conn_stream_complete(p.server, id), 0);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	CHECK_EQ(rfd_conn_stream_complete(p.server, id), -ENOENT);

	tap.len = 0;
	pump_tap(p.server, p.client, &tap);
	REQUIRE(frames_on(&tap, id, frames, 8) == 2);
	CHECK(bytes_are(frames[0].metadata, "3c 1c 00 00 2c 16 fc 03 15 02 00 00")); /* seq 254 */
	r = tap.len >= 9 ? memcmp(tap.data + tap.len - 9, "\x00\x00\x06\x00\x00\x00\x01\x28\x40", 9)
	                 : -1;
	CHECK_EQ(r, 0); /* PAYLOAD COMPLETE, no metadata, no data */
	REQUIRE(p.cev.n_stream == 5);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[3]), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[3]), 1);
	CHECK(p.cev.stream_msgs[4] == NULL);
	CHECK_EQ(p.cev.stream_status[4], 0);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	close(read_end);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * STREAM-10, STREAM-11, STREAM-13, FD-CARRY-5: CANCEL at a server: the items
 * waiting in its stream queue are dropped, their FDs closed; those already in
 * the output go out; nothing more is sent.  The client reads and closes what
 * comes on the cancelled stream, and the FDs of the next call still match.
 */
static void
test_stream_cancel_drops_queued_items(void)
{
	struct pair p;
	struct rfd_frame frames[8];
	struct rfd_buf tap;
	int read_ends[4] = {-1, -1, -1, -1};
	uint32_t id, call;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	id = pair_stream(&p, 10);
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, NULL), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(rfd_conn_stream_send(p.server, id, "\x0c\x00\x00", 3,
		                              pipe_group(&read_ends[i])),
		         0);
	/* Two messages with FDs fill the output; the other two wait, unstamped. */
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 2);

	rfd_conn_abandon(p.client, id);
	CHECK_EQ(rfd_conn_abandoned(p.client), 1);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	tap.len = 0;
	pump_tap(p.client, p.server, &tap);
	REQUIRE(frames_on(&tap, id, frames, 8) == 1);
	CHECK_EQ(frames[0].type, RFD_FRAME_CANCEL);
	REQUIRE(p.sev.n_events == 1);
	CHECK_EQ(p.sev.events[0], RFD_CONN_STREAM_CANCELLED);
	CHECK(!write_end_closed(read_ends[0]));
	CHECK(!write_end_closed(read_ends[1]));
	CHECK(write_end_closed(read_ends[2]));
	CHECK(write_end_closed(read_ends[3]));
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 0);
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "x", 1, NULL), -ENOENT);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);

	tap.len = 0;
	pump_tap(p.server, p.client, &tap);
	CHECK_EQ(frames_on(&tap, id, frames, 8), 3); /* first response, 2 items, no end */
	CHECK(write_end_closed(read_ends[0]));
	CHECK(write_end_closed(read_ends[1]));
	CHECK_EQ(p.cev.n_stream, 0);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 1); /* no final frame came: still remembered */

	/* The next call's FDs are claimed at the right sequence number. */
	CHECK_EQ(rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "echo", NULL, 0, 0,
	                               null_group(1), &call),
	         0);
	pump(p.client, p.server);
	REQUIRE(p.sev.n_requests == 1);
	CHECK_EQ(rfd_conn_send_reply(p.server, call, "\x00", 1, null_group(2)), 0);
	pump(p.server, p.client);
	REQUIRE(p.cev.n_replies == 1);
	CHECK_EQ(p.cev.reply_status[0], 0);
	CHECK_EQ(rfd_msg_fd_count(p.cev.replies[0]), 2);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	for (int i = 0; i < 4; i++)
		close(read_ends[i]);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/* Give @client a PAYLOAD of a stream, with @kind's metadata claiming @num FDs at @seq. */
static void
give_stream_payload(struct rfd_conn *client, uint32_t stream_id, uint16_t flags, bool first,
                    enum rfd_payload_kind kind, int32_t num, int64_t seq)
{
	struct rfd_response_metadata md = {
	    .payload_kind = kind,
	    .has_ex_name = true,
	    .ex_name = {(const uint8_t *)"E", 1},
	    .has_ex_what = true,
	    .ex_what = {(const uint8_t *)"what", 4},
	    .fd = {.present = num != 0,
	           .has_seq = num != 0,
	           .fd_seq = seq,
	           .has_num = num != 0,
	           .num_fds = num},
	};
	struct rfd_frame frame = {.stream_id = stream_id,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = flags,
	                          .has_metadata = !(flags & RFD_FLAG_NEXT) ? false : true,
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
	give(client, &wire);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
}

enum violation {
	V_FD_COUNT,
	V_FD_SEQ,
	V_PAST_CREDIT,
	V_ITEM_FIRST,
	V_REQUEST_N,
	V_COMPLETE_FIRST,
	V_COMPRESSED_ITEM,
	N_VIOLATIONS,
};

static const struct {
	int err;
	const char *reason;
} violations[N_VIOLATIONS] = {
    [V_FD_COUNT] = {-EBADFD, "expected 2 FDs"},
    [V_FD_SEQ] = {-EBADFD, "fdSeqNum 5"},
    [V_PAST_CREDIT] = {-EPROTO, "no credit"},
    [V_ITEM_FIRST] = {-EPROTO, "before the first response"},
    [V_REQUEST_N] = {-EPROTO, "REQUEST_N"},
    [V_COMPLETE_FIRST] = {-EPROTO, "completed before its first response"},
    [V_COMPRESSED_ITEM] = {-EPROTO, "compressed"},
};

/*
 * STREAM-12, STREAM-17, STREAM-18: a stream that breaks the contract (FDs
 * that do not match, an item past the credit, REQUEST_N from the server, an
 * end or an item before the first response, a compressed item) fails with
 * the reason, and so does the connection.
 */
static void
check_violation(enum violation v)
{
	struct pair p;
	uint16_t next = RFD_FLAG_NEXT;
	uint32_t id;
	int fd = open_null();

	REQUIRE(pair_open(&p, NULL));
	id = pair_stream(&p, 2);
	if (v != V_ITEM_FIRST && v != V_REQUEST_N && v != V_COMPLETE_FIRST)
		give_stream_payload(p.client, id, next, true, RFD_PAYLOAD_RESPONSE, 0, 0);
	rfd_conn_recv_fds(p.client, &fd, 1);
	switch (v) {
	case V_FD_COUNT:
		give_stream_payload(p.client, id, next, false, RFD_PAYLOAD_RESPONSE, 2, 0);
		break;
	case V_FD_SEQ:
		give_stream_payload(p.client, id, next, false, RFD_PAYLOAD_RESPONSE, 1, 5);
		break;
	case V_PAST_CREDIT:
		give_stream_payload(p.client, id, next, false, RFD_PAYLOAD_RESPONSE, 1, 0);
		give_stream_payload(p.client, id, next, false, RFD_PAYLOAD_RESPONSE, 0, 0);
		break;
	case V_ITEM_FIRST:
		give_stream_payload(p.client, id, next, false, RFD_PAYLOAD_RESPONSE, 1, 0);
		break;
	case V_REQUEST_N: {
		struct rfd_frame frame = {.stream_id = id, .type = RFD_FRAME_REQUEST_N, .u32 = 5};
		struct rfd_buf wire;

		rfd_buf_init(&wire);
		rfd_frame_encode(&frame, &wire);
		give(p.client, &wire);
		rfd_buf_free(&wire);
		break;
	}
	case V_COMPLETE_FIRST:
		give_stream_payload(p.client, id, RFD_FLAG_COMPLETE, true, RFD_PAYLOAD_NONE, 0, 0);
		break;
	default: {
		/* StreamPayloadMetadata {1: compression ZLIB, 3: responseMetadata, 5: 1 FD at 0} */
		struct rfd_frame frame = {.stream_id = id,
		                          .type = RFD_FRAME_PAYLOAD,
		                          .flags = next,
		                          .has_metadata = true};
		uint8_t md[32];
		struct rfd_buf wire;

		frame.metadata.ptr = md;
		frame.metadata.len = rfd_test_hex("15 02 2c 1c 00 00 2c 16 00 15 02 00 00", md, 32);
		rfd_buf_init(&wire);
		rfd_frame_encode(&frame, &wire);
		give(p.client, &wire);
		rfd_buf_free(&wire);
		break;
	}
	}
	REQUIRE(p.cev.n_stream >= 1);
	CHECK(p.cev.stream_msgs[p.cev.n_stream - 1] == NULL);
	CHECK_EQ(p.cev.stream_status[p.cev.n_stream - 1], violations[v].err);
	CHECK_EQ(p.cev.failed, 1);
	CHECK_EQ(rfd_conn_error(p.client), violations[v].err);
	if (!strstr(rfd_conn_error_text(p.client), violations[v].reason))
		rfd_test_fail(__FILE__, __LINE__, "violation %d: reason \"%s\"", v,
		              rfd_conn_error_text(p.client));
	CHECK(strstr(rfd_conn_error_text(p.client), "stream 1") != NULL);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	/* Closed with the connection, or (past the credit) held by the item it came with. */
	CHECK(rfd_test_fd_is_open(fd) == (v == V_PAST_CREDIT));
	pair_close(&p);
}

static void
test_stream_contract_violations_fail_the_connection(void)
{
	for (int v = 0; v < N_VIOLATIONS; v++)
		check_violation((enum violation)v);
}

/*
 * The ends of a stream as the client sees them: a first response with
 * COMPLETE, an item with COMPLETE, a declared exception, an error, and an
 * exception instead of the first response.
 */
static void
test_stream_ends(void)
{
	struct pair p;
	struct rfd_frame frames[8];
	struct rfd_buf tap;
	uint32_t a, b, c, d, e;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	a = pair_stream(&p, 5);
	b = pair_stream(&p, 5);
	c = pair_stream(&p, 5);
	d = pair_stream(&p, 5);
	e = pair_stream(&p, 5);

	give_stream_payload(p.client, a, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, true,
	                    RFD_PAYLOAD_RESPONSE, 0, 0);
	REQUIRE(p.cev.n_stream == 2);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[0]), RFD_MSG_REPLY);
	CHECK(p.cev.stream_msgs[1] == NULL && p.cev.stream_status[1] == 0);
	CHECK(p.cev.stream_ids[1] == a);

	CHECK_EQ(rfd_conn_stream_open(p.server, b, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_exception(p.server, b, "E", "bad", "\x1c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_stream_open(p.server, c, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_error(p.server, c, RFD_ERROR_APPLICATION_ERROR, "broke"), 0);
	CHECK_EQ(rfd_conn_send_exception(p.server, d, "E", "first", "\x1c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_stream_open(p.server, e, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_send(p.server, e, "\x0c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_in_flight(p.server), 2);
	pump_tap(p.server, p.client, &tap);
	give_stream_payload(p.client, e, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, false,
	                    RFD_PAYLOAD_RESPONSE, 0, 0);

	REQUIRE(frames_on(&tap, b, frames, 8) == 2);
	CHECK_EQ(frames[1].flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	CHECK(bytes_are(frames[1].metadata, "3c 2c 18 01 45 18 03 62 61 64 1c 1c 00 00 00 00 00"));
	REQUIRE(frames_on(&tap, c, frames, 8) == 2);
	CHECK_EQ(frames[1].type, RFD_FRAME_ERROR);
	CHECK_EQ(frames[1].u32, RFD_ERROR_APPLICATION_ERROR);
	CHECK(bytes_are(frames[1].data, "28 05 62 72 6f 6b 65 00"));
	REQUIRE(frames_on(&tap, d, frames, 8) == 1);
	CHECK_EQ(frames[0].flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);

	/* b: REPLY, EXCEPTION; c: REPLY, ERROR; d: EXCEPTION; e: REPLY, ITEM, ITEM, end. */
	REQUIRE(p.cev.n_stream == 11);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[3]), RFD_MSG_EXCEPTION);
	CHECK(strcmp(rfd_msg_error_text(p.cev.stream_msgs[3]), "bad") == 0);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[5]), RFD_MSG_ERROR);
	CHECK_EQ(rfd_msg_error_code(p.cev.stream_msgs[5]), RFD_ERROR_APPLICATION_ERROR);
	CHECK(strcmp(rfd_msg_error_text(p.cev.stream_msgs[5]), "broke") == 0);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[6]), RFD_MSG_EXCEPTION);
	CHECK(strcmp(rfd_msg_error_text(p.cev.stream_msgs[6]), "first") == 0);
	CHECK_EQ(p.cev.stream_ids[6], d);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[8]), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[9]), RFD_MSG_STREAM_ITEM);
	CHECK(p.cev.stream_msgs[10] == NULL && p.cev.stream_status[10] == 0);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	CHECK_EQ(rfd_conn_in_flight(p.server), 2); /* a and e: the server has not ended them */
	CHECK_EQ(rfd_conn_error(p.client), 0);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/* The server's side of the first response: credit before it, CANCEL before it, wrong kind. */
static void
test_stream_open_refusals(void)
{
	struct pair p;
	struct rfd_frame cancel = {.type = RFD_FRAME_CANCEL};
	struct rfd_frame request_n = {.type = RFD_FRAME_REQUEST_N, .u32 = 4};
	struct rfd_response_error error;
	struct rfd_buf wire;
	uint32_t id, call, code = 0;
	int read_end = -1;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&wire);
	id = pair_stream(&p, 1);
	request_n.stream_id = id;
	rfd_frame_encode(&request_n, &wire);
	give(p.server, &wire);
	CHECK_EQ(p.sev.n_events, 0); /* no stream to tell yet */
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 4);

	id = pair_stream(&p, 1);
	cancel.stream_id = id;
	rfd_frame_encode(&cancel, &wire);
	give(p.server, &wire);
	CHECK_EQ(p.sev.n_events, 0);
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, pipe_group(&read_end)), -ECANCELED);
	CHECK(write_end_closed(read_end));
	close(read_end);
	CHECK_EQ(rfd_conn_in_flight(p.server), 1);

	CHECK_EQ(
	    rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "m", NULL, 0, 0, NULL, &call), 0);
	pump(p.client, p.server);
	CHECK_EQ(rfd_conn_stream_open(p.server, call, "\x00", 1, null_group(1)), -EINVAL);
	CHECK_EQ(rfd_conn_stream_open(p.server, call, "\x00", 1, NULL), -ENOENT);
	drain(p.server, &wire, NULL);
	CHECK(find_error(&wire, call, &code, &error));
	CHECK_EQ(code, RFD_ERROR_INVALID);
	CHECK(error.has_code && error.code == RFD_ERROR_CODE_WRONG_RPC_KIND);
	rfd_buf_free(&wire);
	pair_close(&p);
}

/*
 * STREAM-13: abandoned streams do not count against max_in_flight, and at
 * most that many are remembered: the oldest is forgotten, and what comes for
 * it is then ignored (its FDs stay queued, orphans for the next claim).
 */
static void
test_abandoned_streams_are_bounded(void)
{
	struct rfd_limits limits;
	struct pair p;
	uint32_t ids[3];
	int fd;

	rfd_limits_init(&limits);
	limits.max_in_flight = 2;
	REQUIRE(pair_open(&p, &limits));
	for (int i = 0; i < 3; i++) {
		ids[i] = pair_stream(&p, 4);
		rfd_conn_abandon(p.client, ids[i]);
		CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	}
	CHECK_EQ(rfd_conn_abandoned(p.client), 2);

	/* The oldest is forgotten: its first response is ignored, the FD left queued. */
	fd = open_null();
	rfd_conn_recv_fds(p.client, &fd, 1);
	give_stream_payload(p.client, ids[0], RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE, 1, 0);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 1);
	/* The newest is read: first response, an item with an FD (the orphan goes too), the end. */
	give_stream_payload(p.client, ids[2], RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE, 0, 0);
	fd = open_null();
	rfd_conn_recv_fds(p.client, &fd, 1);
	give_stream_payload(p.client, ids[2], RFD_FLAG_NEXT, false, RFD_PAYLOAD_RESPONSE, 1, 1);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	CHECK(!rfd_test_fd_is_open(fd));
	CHECK_EQ(rfd_conn_abandoned(p.client), 2);
	give_stream_payload(p.client, ids[2], RFD_FLAG_COMPLETE, false, RFD_PAYLOAD_NONE, 0, 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 1);
	/* An ERROR ends the other. */
	{
		struct rfd_frame error = {
		    .stream_id = ids[1], .type = RFD_FRAME_ERROR, .u32 = 0x203};
		struct rfd_buf wire;

		rfd_buf_init(&wire);
		rfd_frame_encode(&error, &wire);
		give(p.client, &wire);
		rfd_buf_free(&wire);
	}
	CHECK_EQ(rfd_conn_abandoned(p.client), 0);
	CHECK_EQ(p.cev.n_stream, 0);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	pair_close(&p);
}

/*
 * Messages queued behind a full output keep their order, the end last; the
 * stream takes no more items once its end is queued.
 */
static void
test_stream_queue_keeps_order(void)
{
	struct pair p;
	struct rfd_frame frames[12];
	struct rfd_buf tap;
	uint32_t id;
	int n;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	id = pair_stream(&p, 20);
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, NULL), 0);
	for (int i = 0; i < 6; i++) {
		uint8_t item[3] = {0x15, (uint8_t)(2 * i), 0};

		CHECK_EQ(rfd_conn_stream_send(p.server, id, item, 3, null_group(1 + (size_t)i)), 0);
		if (rfd_conn_stream_credits(p.server, id) == 0)
			break;
	}
	CHECK_EQ(rfd_conn_stream_credits(p.server, id), 0); /* 2 in the output, 4 queued */
	CHECK_EQ(rfd_conn_stream_send(p.server, id, "x", 1, NULL), -EAGAIN);
	CHECK_EQ(rfd_conn_stream_complete(p.server, id), 0);
	CHECK_EQ(rfd_conn_stream_complete(p.server, id), -ENOENT); /* ending */
	CHECK_EQ(rfd_conn_in_flight(p.server), 1);
	pump_tap(p.server, p.client, &tap);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	n = frames_on(&tap, id, frames, 12);
	REQUIRE(n == 8);
	for (int i = 0; i < 6; i++) {
		struct rfd_response_metadata md;
		const char *why;

		CHECK(frames[1 + i].data.len == 3 && frames[1 + i].data.ptr[1] == 2 * i);
		CHECK_EQ(rfd_stream_payload_metadata_decode(frames[1 + i].metadata.ptr,
		                                            frames[1 + i].metadata.len, &md, &why),
		         0);
		CHECK_EQ(md.fd.num_fds, 1 + i);
		CHECK_EQ(md.fd.fd_seq, i * (i + 1) / 2);
	}
	CHECK_EQ(frames[7].flags, RFD_FLAG_COMPLETE);
	REQUIRE(p.cev.n_stream == 8);
	CHECK(p.cev.stream_msgs[7] == NULL && p.cev.stream_status[7] == 0);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * LIMIT-14: the stream queue of a connection takes no item while its items
 * hold fd_budget FDs or more, whichever streams they belong to: a client
 * that stops reading holds the server's FDs below fd_budget + 3 * 253.  The
 * queue takes items again once the output has gone out.
 */
static void
test_stream_queue_fd_budget(void)
{
	struct pair p;
	uint32_t a, b, c;
	int read_end = -1;

	REQUIRE(pair_open(&p, NULL));
	a = pair_stream(&p, 50);
	b = pair_stream(&p, 50);
	c = pair_stream(&p, 50);
	CHECK_EQ(rfd_conn_stream_open(p.server, a, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_open(p.server, b, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_open(p.server, c, "\x00", 1, NULL), 0);

	/* Two items of 253 FDs fill the output; four more wait, 1012 FDs: a's share is spent. */
	for (int i = 0; i < 6; i++)
		CHECK_EQ(rfd_conn_stream_send(p.server, a, "i", 1, null_group(RFD_MAX_FDS)), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, a), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, b), 4);
	/* One more item of b passes the budget of 1024: then no stream takes any. */
	CHECK_EQ(rfd_conn_stream_send(p.server, b, "i", 1, null_group(RFD_MAX_FDS)), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, b), 0);
	CHECK_EQ(rfd_conn_stream_credits(p.server, c), 0);
	CHECK_EQ(rfd_conn_stream_send(p.server, c, "i", 1, pipe_group(&read_end)), -EAGAIN);
	CHECK(write_end_closed(read_end)); /* the core owned the FDs it refused */
	close(read_end);
	CHECK_EQ(rfd_conn_stream_send(p.server, c, "i", 1, NULL), -EAGAIN);
	/* Completions and errors still end streams. */
	CHECK_EQ(rfd_conn_stream_complete(p.server, c), 0);

	pump(p.server, p.client);
	CHECK_EQ(rfd_conn_stream_credits(p.server, a), 4);
	CHECK_EQ(rfd_conn_stream_credits(p.server, b), 4);
	REQUIRE(p.cev.n_stream == 3 + 7 + 1);
	CHECK(p.cev.stream_msgs[10] == NULL && p.cev.stream_ids[10] == c);
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	pair_close(&p);
}

/* Every allocation of a stream exchange fails once, in turn: nothing leaks, no FD stays open. */
static void
test_stream_allocation_failures_leak_nothing(void)
{
	bool every_site = false;

	for (long site = 0; site < 400 && !every_site; site++) {
		struct events cev = {0}, sev = {0};
		struct rfd_conn *client, *server;
		uint32_t id = 0;
		long made;

		rfd_alloc_fail_at(site);
		client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &cev);
		server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &sev);
		if (client && server) {
			rfd_conn_send_stream(client, "s", "x", 1, 0, 3, null_group(2), &id);
			pump(client, server);
			rfd_conn_stream_open(server, id, "\x00", 1, null_group(1));
			for (int i = 0; i < 5; i++)
				rfd_conn_stream_send(server, id, "i", 1, null_group(2));
			pump(server, client);
			rfd_conn_stream_request(client, id, 3);
			pump(client, server);
			rfd_conn_stream_send(server, id, "j", 1, null_group(1));
			rfd_conn_stream_exception(server, id, "E", "w", "\x00", 1, NULL);
			rfd_conn_abandon(client, id);
			pump(server, client);
			pump(client, server);
		}
		made = rfd_alloc_fail_at(-1);
		events_free(&cev);
		events_free(&sev);
		rfd_conn_free(client);
		rfd_conn_free(server);
		every_site = made <= site;
	}
	CHECK(every_site);
}

/* Give @client an item on @stream_id whose StreamPayloadMetadata is @hex. */
static void
give_item_metadata(struct rfd_conn *client, uint32_t stream_id, uint16_t flags, const char *hex)
{
	struct rfd_frame frame = {.stream_id = stream_id,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = flags,
	                          .has_metadata = true,
	                          .data = {(const uint8_t *)"\x00", 1}};
	uint8_t md[64];
	struct rfd_buf wire;

	frame.metadata.ptr = md;
	frame.metadata.len = rfd_test_hex(hex, md, sizeof(md));
	rfd_buf_init(&wire);
	rfd_frame_encode(&frame, &wire);
	give(client, &wire);
	rfd_buf_free(&wire);
}

/*
 * STREAM-20, STREAM-21: an item with an empty payloadMetadata union, or
 * metadata that does not decode, fails its stream and not the connection:
 * its FDs are closed and, without COMPLETE, the stream is cancelled and kept
 * abandoned; a claim that fails on the abandoned stream keeps the connection
 * too, and the FDs of the next call still match.
 */
static void
test_stream_item_neither_result_nor_exception(void)
{
	struct pair p;
	struct rfd_frame frames[4];
	struct rfd_buf tap;
	uint32_t a, b, c, call;
	int fds[2] = {open_null(), open_null()};

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	a = pair_stream(&p, 5);
	b = pair_stream(&p, 5);
	c = pair_stream(&p, 5);
	give_stream_payload(p.client, a, RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE, 0, 0);
	give_stream_payload(p.client, b, RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE, 0, 0);
	give_stream_payload(p.client, c, RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE, 0, 0);
	REQUIRE(p.cev.n_stream == 3);

	/* a: an empty union (3c 00) with an FD, no COMPLETE: CANCEL, abandoned. */
	rfd_conn_recv_fds(p.client, &fds[0], 1);
	give_item_metadata(p.client, a, RFD_FLAG_NEXT, "3c 00 2c 16 00 15 02 00 00");
	REQUIRE(p.cev.n_stream == 4);
	CHECK(p.cev.stream_msgs[3] == NULL && p.cev.stream_status[3] == -EPROTO);
	CHECK(strstr(rfd_conn_reason(p.client), "payloadMetadata") != NULL);
	CHECK(!rfd_test_fd_is_open(fds[0]));
	CHECK_EQ(rfd_conn_abandoned(p.client), 1);
	pump_tap(p.client, p.server, &tap);
	REQUIRE(frames_on(&tap, a, frames, 4) == 1);
	CHECK_EQ(frames[0].type, RFD_FRAME_CANCEL);
	/* Crossing the CANCEL: an item whose claim fails (fdSeqNum 5, not 1), then the end. */
	rfd_conn_recv_fds(p.client, &fds[1], 1);
	give_stream_payload(p.client, a, RFD_FLAG_NEXT, false, RFD_PAYLOAD_RESPONSE, 1, 5);
	CHECK(!rfd_test_fd_is_open(fds[1]));
	give_stream_payload(p.client, a, RFD_FLAG_COMPLETE, false, RFD_PAYLOAD_NONE, 0, 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 0);

	/* b: metadata that does not decode, with COMPLETE: no CANCEL. */
	give_item_metadata(p.client, b, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, "3c 1c 00");
	REQUIRE(p.cev.n_stream == 5);
	CHECK(p.cev.stream_msgs[4] == NULL && p.cev.stream_status[4] == -EPROTO);
	CHECK(strstr(rfd_conn_reason(p.client), "unreadable stream item metadata") != NULL);
	/* c: an empty union with COMPLETE. */
	give_item_metadata(p.client, c, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, "3c 00 00");
	REQUIRE(p.cev.n_stream == 6);
	CHECK_EQ(p.cev.stream_status[5], -EPROTO);
	tap.len = 0;
	pump_tap(p.client, p.server, &tap);
	CHECK_EQ(frames_on(&tap, b, frames, 4), 0);
	CHECK_EQ(frames_on(&tap, c, frames, 4), 0);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);

	/* The connection goes on: the FDs of a reply match, at fdSeqNum 2. */
	CHECK_EQ(
	    rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "m", NULL, 0, 0, NULL, &call), 0);
	fds[0] = open_null();
	rfd_conn_recv_fds(p.client, &fds[0], 1);
	give_stream_payload(p.client, call, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, true,
	                    RFD_PAYLOAD_RESPONSE, 1, 2);
	REQUIRE(p.cev.n_replies == 1 && p.cev.replies[0]);
	CHECK_EQ(p.cev.reply_status[0], 0);
	CHECK_EQ(rfd_msg_fd_count(p.cev.replies[0]), 1);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * STREAM-2, STREAM-6, STREAM-19: an initial request n of 0 still gets the
 * first response, which leaves the stream one credit short: the first
 * REQUEST_N pays for it; a credit with the top bit set is no limit.
 */
static void
test_stream_credit_edges(void)
{
	struct rfd_frame request_n = {.type = RFD_FRAME_REQUEST_N, .u32 = 1};
	struct events ev = {0};
	struct rfd_conn *server = ready_server(&ev, NULL);
	struct rfd_buf wire;
	uint32_t id = 1;

	rfd_buf_init(&wire);
	raw_request_of_kind(&wire, RFD_FRAME_REQUEST_STREAM, 4, 1, "s", 0, 0);
	wire.data[9] = wire.data[10] = wire.data[11] = wire.data[12] = 0; /* initial request n 0 */
	give(server, &wire);
	REQUIRE(ev.n_requests == 1);
	CHECK_EQ(rfd_conn_stream_open(server, id, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_stream_credits(server, id), 0);
	request_n.stream_id = id;
	rfd_frame_encode(&request_n, &wire);
	give(server, &wire);
	CHECK_EQ(rfd_conn_stream_credits(server, id), 0); /* paid for the first response */
	rfd_frame_encode(&request_n, &wire);
	give(server, &wire);
	CHECK_EQ(rfd_conn_stream_credits(server, id), 1);
	CHECK_EQ(rfd_conn_stream_send(server, id, "\x0c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_stream_credits(server, id), 0);
	/* REQUEST_N 0x80000002, written by hand: a conforming sender never sets the top bit. */
	wire.len = rfd_test_hex("00 00 0a 00 00 00 01 20 00 80 00 00 02", wire.data, wire.cap);
	give(server, &wire);
	CHECK_EQ(rfd_conn_stream_credits(server, id), 4); /* no limit but the stream queue's */
	CHECK_EQ(rfd_conn_error(server), 0);
	rfd_buf_free(&wire);
	events_free(&ev);
	rfd_conn_free(server);
}

/*
 * STREAM-19, STREAM-6 at the edges of a u32: an initial request n of 2^31
 * or more is no limit from the start, and stays so whatever items and
 * REQUEST_N follow; 2^31 - 1 and 0 count as any other value.  Items with an
 * FD each fill the output (2) and the stream queue (4), then REQUEST_N
 * comes, then the output drains: the stream takes items again.  Counted in
 * a 32-bit number without saturation, 0xFFFFFFFF - 1 - 6 + 8 wraps to 0 and
 * the stream would stall for good.
 */
static void
test_stream_credit_saturation(void)
{
	static const struct {
		uint32_t initial_n;
		uint32_t request_n;
		unsigned credits; /* once the output drained */
	} cases[] = {
	    {0xFFFFFFFF, 8, 4},          {0xFFFFFFFF, 0x7FFFFFFF, 4},
	    {0xFFFFFFFF, 0xFFFFFFFF, 4}, {0x80000000, 8, 4},
	    {0x80000000, 0xFFFFFFFF, 4}, {0x7FFFFFFF, 0xFFFFFFFF, 4},
	    {7, 0x7FFFFFFF - 2, 4},      {7, 1, 1},
	    {0, 0xFFFFFFFF, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rfd_frame request_n = {
		    .stream_id = 1, .type = RFD_FRAME_REQUEST_N, .u32 = cases[i].request_n};
		uint32_t n = cases[i].initial_n;
		struct events ev = {0};
		struct rfd_conn *server = ready_server(&ev, NULL);
		struct rfd_buf wire;
		int sent = 0;

		rfd_buf_init(&wire);
		raw_request_of_kind(&wire, RFD_FRAME_REQUEST_STREAM, 4, 1, "s", 0, 0);
		wire.data[9] = (uint8_t)(n >> 24); /* the initial request n, after the header */
		wire.data[10] = (uint8_t)(n >> 16);
		wire.data[11] = (uint8_t)(n >> 8);
		wire.data[12] = (uint8_t)n;
		give(server, &wire);
		REQUIRE(ev.n_requests == 1);
		CHECK_EQ(rfd_conn_stream_open(server, 1, "\x00", 1, NULL), 0);
		while (sent < 10 && rfd_conn_stream_credits(server, 1) > 0) {
			CHECK_EQ(rfd_conn_stream_send(server, 1, "i", 1, null_group(1)), 0);
			sent++;
		}
		CHECK_EQ(sent, n == 0 ? 0 : 6);
		rfd_frame_encode(&request_n, &wire);
		give(server, &wire);
		drain(server, &wire, NULL);
		if (rfd_conn_stream_credits(server, 1) != cases[i].credits)
			rfd_test_fail(__FILE__, __LINE__,
			              "initial request n 0x%x, REQUEST_N 0x%x: %u credits, not %u",
			              n, cases[i].request_n, rfd_conn_stream_credits(server, 1),
			              cases[i].credits);
		CHECK_EQ(rfd_conn_error(server), 0);
		rfd_buf_free(&wire);
		events_free(&ev);
		rfd_conn_free(server);
	}
}

/* ---- Extensions and sinks ---- */

enum { BOTH = RFD_EXTENSION_SINK | RFD_EXTENSION_EXCEPTION };

static bool
pair_open_with(struct pair *p, unsigned client_offers, unsigned server_accepts)
{
	memset(p, 0, sizeof(*p));
	p->client =
	    rfd_conn_new_with_extensions(RFD_ROLE_CLIENT, NULL, client_offers, &callbacks, &p->cev);
	p->server = rfd_conn_new_with_extensions(RFD_ROLE_SERVER, NULL, server_accepts, &callbacks,
	                                         &p->sev);
	if (!p->client || !p->server)
		return false;
	pump(p->client, p->server);
	pump(p->server, p->client);
	return p->cev.ready == 1 && p->sev.ready == 1;
}

/* Whether @bytes holds exactly the bytes of @hex. */
static bool
buf_is(const struct rfd_buf *bytes, const char *hex)
{
	uint8_t want[512];
	size_t n = rfd_test_hex(hex, want, sizeof(want));

	return bytes->len == n && memcmp(bytes->data, want, n) == 0;
}

/* Open a sink "s" and deliver its request; the server's msg is freed. */
static uint32_t
pair_sink(struct pair *p)
{
	uint32_t id = 0;

	CHECK_EQ(rfd_conn_send_sink(p->client, "s", "\x00", 1, 0, NULL, &id), 0);
	pump(p->client, p->server);
	for (int i = 0; i < p->sev.n_requests; i++) {
		CHECK_EQ(rfd_msg_call_kind(p->sev.requests[i]), RFD_CALL_SINK);
		rfd_msg_free(p->sev.requests[i]);
	}
	p->sev.n_requests = 0;
	return id;
}

/* A sink open for items: its first response delivered, @credits granted. */
static uint32_t
flowing_sink(struct pair *p, uint32_t credits)
{
	uint32_t id = pair_sink(p);

	CHECK_EQ(rfd_conn_sink_open(p->server, id, "\x00", 1, NULL), 0);
	if (credits)
		CHECK_EQ(rfd_conn_sink_request(p->server, id, credits), 0);
	pump(p->server, p->client);
	return id;
}

/* The metadata of a SETUP frame (after the protocol key) that @conn wrote first. */
static bool
setup_metadata(struct rfd_conn *conn, struct rfd_buf *frame_bytes, struct rfd_slice *md)
{
	struct rfd_frame frame;
	size_t pos = 0;

	drain(conn, frame_bytes, NULL);
	if (!next_frame(frame_bytes, &pos, &frame) || frame.type != RFD_FRAME_SETUP ||
	    frame.metadata.len < 4)
		return false;
	*md = (struct rfd_slice){frame.metadata.ptr + 4, frame.metadata.len - 4};
	return true;
}

/*
 * EXT-1 and appendix A.12: the SETUP offering sink and exception, byte for
 * byte as the frame and metadata encoders write it; the core's own SETUP is
 * the same with its agent in ClientMetadata, and sends the key only when it
 * offers something.
 */
static void
test_setup_offer_bytes(void)
{
	static const char a12[] =
	    "00 00 82 00 00 00 00 05 00 00 01 00 00 7f ff ff ff 7f ff ff ff 25 61 70 70 6c 69 63 61"
	    "74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74 2d 6d 65 74 61 64 61 74 61 2b 63 6f 6d 70 61 63"
	    "74 1c 61 70 70 6c 69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74 2d 70 61 79 6c 6f 61"
	    "64 00 00 2a f0 9f 9a 80 35 10 15 14 5c 3b 01 88 0c 72 6f 63 6b 65 74 66 64 2e 66 64 73"
	    "0e 73 69 6e 6b 2c 65 78 63 65 70 74 69 6f 6e 00 00";
	/* RequestSetupMetadata {3: 8, 4: 10, 9: {1: "rocketfd/0.1", 3: {"rocketfd.fds": ...}}} */
	static const char core_both[] =
	    "35 10 15 14 5c 18 0c 72 6f 63 6b 65 74 66 64 2f 30 2e 31 2b 01 88 0c 72 6f 63 6b 65 74"
	    "66 64 2e 66 64 73 0e 73 69 6e 6b 2c 65 78 63 65 70 74 69 6f 6e 00 00";
	static const char core_sink[] =
	    "35 10 15 14 5c 18 0c 72 6f 63 6b 65 74 66 64 2f 30 2e 31 2b 01 88 0c 72 6f 63 6b 65 74"
	    "66 64 2e 66 64 73 04 73 69 6e 6b 00 00";
	static const char core_none[] =
	    "35 10 15 14 5c 18 0c 72 6f 63 6b 65 74 66 64 2f 30 2e 31 00 00";
	static const struct {
		unsigned offer;
		const char *hex;
	} cores[] = {{BOTH, core_both}, {RFD_EXTENSION_SINK, core_sink}, {0, core_none}};
	struct rfd_setup_metadata md = {
	    .has_min_version = true,
	    .min_version = 8,
	    .has_max_version = true,
	    .max_version = 10,
	    .has_extensions = true,
	    .extensions = {(const uint8_t *)"sink,exception", 14},
	};
	struct rfd_frame frame = {
	    .type = RFD_FRAME_SETUP,
	    .version_major = 1,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .metadata_mime = {(const uint8_t *)"application/x-rocket-metadata+compact", 37},
	    .data_mime = {(const uint8_t *)"application/x-rocket-payload", 28},
	    .has_metadata = true,
	};
	struct rfd_buf meta, wire;

	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	rfd_buf_put_u32(&meta, 0xf09f9a80);
	REQUIRE(rfd_setup_metadata_encode(&md, &meta) == 0);
	frame.metadata = (struct rfd_slice){meta.data, meta.len};
	REQUIRE(rfd_frame_encode(&frame, &wire) == 0);
	CHECK(buf_is(&wire, a12));
	rfd_buf_free(&meta);

	for (size_t i = 0; i < sizeof(cores) / sizeof(cores[0]); i++) {
		struct events ev = {0};
		struct rfd_conn *client = rfd_conn_new_with_extensions(
		    RFD_ROLE_CLIENT, NULL, cores[i].offer, &callbacks, &ev);
		struct rfd_slice got;

		REQUIRE(client);
		CHECK_EQ(rfd_conn_extensions(client), cores[i].offer);
		wire.len = 0;
		CHECK(setup_metadata(client, &wire, &got) && bytes_are(got, cores[i].hex));
		rfd_conn_free(client);
	}
	rfd_buf_free(&wire);
}

/* A server core given a SETUP whose RequestSetupMetadata is @hex. */
static struct rfd_conn *
server_with_setup(struct events *ev, const char *hex, unsigned accepts)
{
	struct rfd_conn *server =
	    rfd_conn_new_with_extensions(RFD_ROLE_SERVER, NULL, accepts, &callbacks, ev);
	struct rfd_frame frame = {
	    .type = RFD_FRAME_SETUP,
	    .version_major = 1,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .metadata_mime = {(const uint8_t *)"application/x-rocket-metadata+compact", 37},
	    .data_mime = {(const uint8_t *)"application/x-rocket-payload", 28},
	    .has_metadata = true,
	};
	uint8_t md[256] = {0xf0, 0x9f, 0x9a, 0x80};
	struct rfd_buf wire;

	frame.metadata = (struct rfd_slice){md, 4 + rfd_test_hex(hex, md + 4, sizeof(md) - 4)};
	rfd_buf_init(&wire);
	rfd_frame_encode(&frame, &wire);
	give(server, &wire);
	drain(server, &wire, NULL);
	rfd_buf_free(&wire);
	return server;
}

/*
 * EXT-2 at a server: names split at commas, blanks and empty names ignored,
 * unknown names ignored, the last entry of a repeated key; an otherMetadata
 * that is not a map of strings is no offer, and no reason to refuse SETUP.
 * The server accepts only what it implements and was offered (EXT-4).
 */
static void
test_server_reads_the_offer(void)
{
#define KEY "0c 72 6f 63 6b 65 74 66 64 2e 66 64 73"
	static const struct {
		const char *hex;
		unsigned accepts;
		unsigned agreed;
	} cases[] = {
	    /* No clientMetadata, none with otherMetadata. */
	    {"35 10 15 14 00", BOTH, 0},
	    {"35 10 15 14 5c 18 01 78 00 00", BOTH, 0},
	    /* " sink ,,\texception\t, future-name" */
	    {"35 10 15 14 5c 3b 01 88 " KEY
	     " 20 20 73 69 6e 6b 20 2c 2c 09 65 78 63 65 70 74 69 6f 6e 09 2c 20 66 75 74 75 72 65 "
	     "2d 6e 61 6d 65 00 00",
	     BOTH, BOTH},
	    {"35 10 15 14 5c 3b 01 88 " KEY " 09 65 78 63 65 70 74 69 6f 6e 00 00", BOTH,
	     RFD_EXTENSION_EXCEPTION},
	    /* "sink,exception" offered, the server accepting sink only. */
	    {"35 10 15 14 5c 3b 01 88 " KEY " 0e 73 69 6e 6b 2c 65 78 63 65 70 74 69 6f 6e 00 00",
	     RFD_EXTENSION_SINK, RFD_EXTENSION_SINK},
	    /* Names compared exactly: "Sink", "sinks". */
	    {"35 10 15 14 5c 3b 01 88 " KEY " 0a 53 69 6e 6b 2c 73 69 6e 6b 73 00 00", BOTH, 0},
	    /* The key twice: the last entry counts; another key is skipped. */
	    {"35 10 15 14 5c 3b 03 88 01 78 04 73 69 6e 6b " KEY " 04 73 69 6e 6b " KEY
	     " 09 65 78 63 65 70 74 69 6f 6e 00 00",
	     BOTH, RFD_EXTENSION_EXCEPTION},
	    /* map<string, i32>, an i32, a list: not a map of strings. */
	    {"35 10 15 14 5c 3b 01 85 " KEY " 02 00 00", BOTH, 0},
	    {"35 10 15 14 5c 35 02 00 00", BOTH, 0},
	    {"35 10 15 14 5c 39 18 04 73 69 6e 6b 00 00", BOTH, 0},
	    /* clientMetadata twice: the second replaces the first whole. */
	    {"35 10 15 14 5c 3b 01 88 " KEY " 04 73 69 6e 6b 00 0c 12 00 00", BOTH, 0},
	};
#undef KEY

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct events ev = {0};
		struct rfd_conn *server = server_with_setup(&ev, cases[i].hex, cases[i].accepts);

		REQUIRE(server);
		if (ev.ready != 1 || rfd_conn_extensions(server) != cases[i].agreed)
			rfd_test_fail(__FILE__, __LINE__, "case %zu: ready %d, extensions %u", i,
			              ev.ready, rfd_conn_extensions(server));
		rfd_conn_free(server);
	}
}

/*
 * Appendix A.13 byte for byte, a client that offers sink alone: the
 * request, the first response answering sink, the credit, the item "one"
 * with one FD, the completion; and the cancellation of another sink.
 */
static void
test_sink_vectors(void)
{
	static const char request[] =
	    "00 00 24 00 00 00 01 1d 00 00 00 00 02 00 00 0e 15 04 18 07 73 69 6e 6b 46 64 73 15 0c"
	    "00 18 06 73 69 6e 6b 2d 32 00";
	static const char first[] =
	    "00 00 24 00 00 00 01 29 20 00 00 1a 3b 01 88 0c 72 6f 63 6b 65 74 66 64 2e 66 64 73 04"
	    "73 69 6e 6b 4c 1c 00 00 00 00";
	static const char credit[] = "00 00 0a 00 00 00 01 20 00 00 00 00 01";
	static const char item[] = "00 00 1b 00 00 00 01 29 20 00 00 0b 3c 1c 00 00 2c 16 00 15 02"
	                           "00 00 08 00 03 6f 6e 65 00";
	static const char completion[] = "00 00 0a 00 00 00 01 29 40 00 00 01 00";
	static const char cancel[] = "00 00 0a 00 00 00 01 2c 00 00 00 02 03";
	struct pair p;
	struct rfd_buf tap;
	uint32_t id = 0;

	REQUIRE(pair_open_with(&p, RFD_EXTENSION_SINK, BOTH));
	rfd_buf_init(&tap);
	CHECK_EQ(rfd_conn_send_sink(p.client, "sinkFds", "\x18\x06sink-2\x00", 9, 0, NULL, &id), 0);
	CHECK_EQ(id, 1);
	pump_tap(p.client, p.server, &tap);
	CHECK(buf_is(&tap, request));
	REQUIRE(p.sev.n_requests == 1);
	CHECK_EQ(rfd_msg_call_kind(p.sev.requests[0]), RFD_CALL_SINK);
	CHECK(!rfd_msg_streaming(p.sev.requests[0]));
	CHECK_EQ(rfd_msg_extensions(p.sev.requests[0]), RFD_EXTENSION_SINK);
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, NULL), -ENOENT); /* no first response */

	tap.len = 0;
	CHECK_EQ(rfd_conn_sink_open(p.server, id, "\x00", 1, NULL), 0);
	CHECK_EQ(rfd_conn_sink_credits(p.server, id), 0);
	pump_tap(p.server, p.client, &tap);
	CHECK(buf_is(&tap, first));
	REQUIRE(p.cev.n_stream == 1);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[0]), RFD_MSG_REPLY);
	CHECK(rfd_conn_sink_agreed(p.client, id));
	CHECK_EQ(rfd_conn_sink_credits(p.client, id), 0);
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, NULL), -EAGAIN);

	tap.len = 0;
	CHECK_EQ(rfd_conn_sink_request(p.server, id, 0), -EINVAL);
	CHECK_EQ(rfd_conn_sink_request(p.server, id, 1), 0);
	CHECK_EQ(rfd_conn_sink_credits(p.server, id), 1);
	pump_tap(p.server, p.client, &tap);
	CHECK(buf_is(&tap, credit));
	REQUIRE(p.cev.n_events == 1);
	CHECK_EQ(p.cev.events[0], RFD_CONN_STREAM_CREDIT);
	CHECK_EQ(rfd_conn_sink_credits(p.client, id), 1);

	tap.len = 0;
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "\x08\x00\x03one\x00", 7, null_group(1)), 0);
	CHECK_EQ(rfd_conn_sink_credits(p.client, id), 0);
	pump_tap(p.client, p.server, &tap);
	CHECK(buf_is(&tap, item));
	REQUIRE(p.sev.n_sink == 1);
	CHECK_EQ(rfd_msg_kind(p.sev.sink_msgs[0]), RFD_MSG_STREAM_ITEM);
	CHECK_EQ(rfd_msg_fd_count(p.sev.sink_msgs[0]), 1);
	CHECK_EQ(rfd_conn_sink_credits(p.server, id), 0);

	tap.len = 0;
	CHECK_EQ(rfd_conn_sink_complete(p.client, id), 0);
	CHECK_EQ(rfd_conn_sink_complete(p.client, id), -ENOENT);
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, NULL), -ENOENT);
	pump_tap(p.client, p.server, &tap);
	CHECK(buf_is(&tap, completion));
	REQUIRE(p.sev.n_sink == 2);
	CHECK(p.sev.sink_msgs[1] == NULL && p.sev.sink_status[1] == 0);
	CHECK_EQ(rfd_conn_sink_request(p.server, id, 1), -ENOENT); /* completed: no more credit */
	CHECK_EQ(rfd_conn_in_flight(p.client), 1);
	pair_close(&p);

	REQUIRE(pair_open_with(&p, RFD_EXTENSION_SINK, BOTH));
	id = flowing_sink(&p, 0);
	tap.len = 0;
	rfd_conn_abandon(p.client, id);
	pump_tap(p.client, p.server, &tap);
	CHECK(buf_is(&tap, cancel));
	REQUIRE(p.sev.n_sink == 1);
	CHECK(p.sev.sink_msgs[0] == NULL && p.sev.sink_status[0] == -ECANCELED);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * A whole sink with FDs both ways: items with 0, 1 and 253 FDs go as the
 * server grants credit, none beyond it (-EAGAIN); the final response
 * carries FDs under the extension sink, its metadata byte for byte.
 */
static void
test_sink_round_trip_with_fds(void)
{
	static const size_t per_item[] = {0, 1, 253, 1};
	struct pair p;
	struct rfd_frame frames[4];
	struct rfd_buf tap;
	uint32_t id;
	int read_end = -1;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	id = flowing_sink(&p, 3);
	REQUIRE(p.cev.n_stream == 1);
	CHECK(rfd_conn_sink_agreed(p.client, id));
	CHECK_EQ(rfd_conn_sink_credits(p.client, id), 3);
	for (size_t i = 0; i < 3; i++)
		CHECK_EQ(rfd_conn_sink_send(p.client, id, "\x08\x00\x01i\x00", 5,
		                            per_item[i] ? null_group(per_item[i]) : NULL),
		         0);
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, null_group(1)), -EAGAIN);
	pump(p.client, p.server);
	REQUIRE(p.sev.n_sink == 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(rfd_msg_kind(p.sev.sink_msgs[i]), RFD_MSG_STREAM_ITEM);
		CHECK_EQ(rfd_msg_fd_count(p.sev.sink_msgs[i]), per_item[i]);
	}
	CHECK_EQ(rfd_conn_queued_fds(p.server), 0);

	CHECK_EQ(rfd_conn_sink_request(p.server, id, 1), 0);
	pump(p.server, p.client);
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "\x08\x00\x01j\x00", 5, null_group(1)), 0);
	CHECK_EQ(rfd_conn_sink_complete(p.client, id), 0);
	pump(p.client, p.server);
	REQUIRE(p.sev.n_sink == 5);
	CHECK_EQ(rfd_msg_fd_count(p.sev.sink_msgs[3]), 1);
	CHECK(p.sev.sink_msgs[4] == NULL && p.sev.sink_status[4] == 0);

	/* The final response with an FD: the server's first FDs, fdSeqNum 0. */
	CHECK_EQ(rfd_conn_sink_finish(p.server, id, "\x0c\x00\x00", 3, pipe_group(&read_end)), 0);
	CHECK_EQ(rfd_conn_sink_finish(p.server, id, "\x0c\x00\x00", 3, NULL), -ENOENT);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	pump_tap(p.server, p.client, &tap);
	REQUIRE(frames_on(&tap, id, frames, 4) == 1);
	CHECK_EQ(frames[0].flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	CHECK(bytes_are(frames[0].metadata, "3c 1c 00 00 2c 16 00 15 02 00 00"));
	REQUIRE(p.cev.n_stream == 2);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[1]), RFD_MSG_REPLY);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[1]), 1);
	CHECK(write_end_closed(read_end) == false);
	rfd_msg_free(p.cev.stream_msgs[1]);
	p.cev.stream_msgs[1] = NULL;
	CHECK(write_end_closed(read_end));
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	close(read_end);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * EXT-5, EXT-6: without the client's offer the server attaches no FDs to
 * exceptions and final responses (-EOPNOTSUPP, FDs closed, nothing sent),
 * and its first response answers nothing, so the client sends no FDs on
 * items; the same when the server does not accept sink.
 */
static void
test_sink_extensions_not_agreed(void)
{
	static const struct {
		unsigned offer;
		unsigned accept;
	} cases[] = {{0, BOTH}, {BOTH, 0}, {RFD_EXTENSION_EXCEPTION, BOTH}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pair p;
		struct rfd_frame frames[4];
		struct rfd_response_metadata md;
		struct rfd_buf tap;
		const char *why;
		uint32_t id, call;
		int read_end = -1;
		bool exception_ok = cases[i].offer & cases[i].accept & RFD_EXTENSION_EXCEPTION;

		REQUIRE(pair_open_with(&p, cases[i].offer, cases[i].accept));
		rfd_buf_init(&tap);
		CHECK_EQ(rfd_conn_extensions(p.server), cases[i].offer & cases[i].accept);
		CHECK_EQ(rfd_conn_send_sink(p.client, "s", "\x00", 1, 0, NULL, &id), 0);
		CHECK_EQ(rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "m", NULL, 0, 0,
		                               NULL, &call),
		         0);
		pump(p.client, p.server);
		REQUIRE(p.sev.n_requests == 2);
		CHECK_EQ(rfd_msg_extensions(p.sev.requests[0]), cases[i].offer & cases[i].accept);
		CHECK_EQ(rfd_conn_sink_open(p.server, id, "\x00", 1, NULL), 0);
		CHECK_EQ(rfd_conn_sink_request(p.server, id, 2), 0);
		pump_tap(p.server, p.client, &tap);
		REQUIRE(frames_on(&tap, id, frames, 4) == 2);
		CHECK_EQ(rfd_response_metadata_decode(frames[0].metadata.ptr,
		                                      frames[0].metadata.len, &md, &why),
		         0);
		CHECK_EQ(md.has_extensions, exception_ok);
		CHECK(!rfd_conn_sink_agreed(p.client, id));

		CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, pipe_group(&read_end)),
		         -EOPNOTSUPP);
		CHECK(write_end_closed(read_end));
		close(read_end);
		CHECK_EQ(rfd_conn_sink_credits(p.client, id), 2);
		CHECK_EQ(rfd_conn_sink_finish(p.server, id, "x", 1, pipe_group(&read_end)),
		         -EOPNOTSUPP);
		CHECK(write_end_closed(read_end));
		close(read_end);
		CHECK_EQ(rfd_conn_send_exception(p.server, call, "E", "w", "x", 1,
		                                 pipe_group(&read_end)),
		         exception_ok ? 0 : -EOPNOTSUPP);
		if (!exception_ok)
			CHECK(write_end_closed(read_end));
		CHECK_EQ(rfd_conn_in_flight(p.server), exception_ok ? 1 : 2);
		/* Without FDs both still go. */
		CHECK_EQ(rfd_conn_sink_finish(p.server, id, "\x0c\x00\x00", 3, NULL), 0);
		if (!exception_ok)
			CHECK_EQ(rfd_conn_send_exception(p.server, call, "E", "w", "x", 1, NULL),
			         0);
		pump(p.server, p.client);
		CHECK_EQ(p.cev.n_stream, 2);
		REQUIRE(p.cev.n_replies == 1);
		CHECK_EQ(rfd_msg_kind(p.cev.replies[0]), RFD_MSG_EXCEPTION);
		CHECK_EQ(rfd_msg_fd_count(p.cev.replies[0]), exception_ok ? 1 : 0);
		events_free(&p.cev);
		CHECK(write_end_closed(read_end));
		close(read_end);
		CHECK_EQ(rfd_conn_in_flight(p.client), 0);
		rfd_buf_free(&tap);
		pair_close(&p);
	}
}

/*
 * EXT-7, EXT-8 at a client: a declared exception with FDs fails its call,
 * stream or sink with -EPROTO and its FDs closed, unless the client offered
 * exception (then they come with it); a sink's final response with FDs
 * likewise needs the offer of sink.  The connection goes on.
 */
static void
test_client_refuses_unagreed_fds(void)
{
	enum { CALL, STREAM_FIRST, STREAM_ITEM, SINK_EXCEPTION, SINK_FINAL, N_WHERE };

	for (int offer = 0; offer < 2; offer++) {
		for (int where = 0; where < N_WHERE; where++) {
			struct pair p;
			enum rfd_payload_kind kind = where == SINK_FINAL
			                                 ? RFD_PAYLOAD_RESPONSE
			                                 : RFD_PAYLOAD_DECLARED_EXCEPTION;
			bool item =
			    where == STREAM_ITEM || where == SINK_EXCEPTION || where == SINK_FINAL;
			struct rfd_msg *last;
			uint32_t id = 0;
			int fd = open_null(), status;

			REQUIRE(pair_open_with(&p, offer ? BOTH : 0, BOTH));
			if (where == CALL)
				CHECK_EQ(rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "m",
				                               NULL, 0, 0, NULL, &id),
				         0);
			else if (where == STREAM_FIRST || where == STREAM_ITEM)
				id = pair_stream(&p, 5);
			else
				id = pair_sink(&p);
			if (item)
				give_stream_payload(p.client, id, RFD_FLAG_NEXT, true,
				                    RFD_PAYLOAD_RESPONSE, 0, 0);
			rfd_conn_recv_fds(p.client, &fd, 1);
			give_stream_payload(p.client, id, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, !item,
			                    kind, 1, 0);
			CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
			CHECK_EQ(rfd_conn_error(p.client), 0);
			CHECK_EQ(rfd_conn_in_flight(p.client), 0);
			if (where == CALL) {
				REQUIRE(p.cev.n_replies == 1);
				last = p.cev.replies[0];
				status = p.cev.reply_status[0];
			} else {
				REQUIRE(p.cev.n_stream >= 1);
				last = p.cev.stream_msgs[p.cev.n_stream - 1];
				status = p.cev.stream_status[p.cev.n_stream - 1];
			}
			if (offer) {
				CHECK_EQ(status, 0);
				CHECK(last && rfd_msg_fd_count(last) == 1);
				CHECK(rfd_test_fd_is_open(fd));
			} else {
				CHECK_EQ(status, -EPROTO);
				CHECK(last == NULL);
				CHECK(!rfd_test_fd_is_open(fd));
				CHECK(strstr(rfd_conn_reason(p.client), "did not offer") != NULL);
			}
			pair_close(&p);
			CHECK(!rfd_test_fd_is_open(fd));
		}
	}
}

/*
 * STREAM-14, SINK-8: a message that ends a call at the client without
 * COMPLETE (an exception item, a declared exception whose FDs the client
 * did not agree to, EXT-7) leaves the stream or sink open at the server: the
 * client cancels it and keeps it abandoned, closing the FDs of what still
 * comes (STREAM-13).  With COMPLETE nothing is sent.
 */
static void
test_ended_without_complete_is_cancelled(void)
{
	enum { EXCEPTION_ITEM, UNAGREED_ITEM, UNAGREED_FIRST, SINK_FIRST, COMPLETE_ITEM, N_CASES };

	for (int c = 0; c < N_CASES; c++) {
		bool sink = c == SINK_FIRST, first = c == UNAGREED_FIRST || sink;
		struct rfd_frame frames[4];
		struct rfd_buf tap;
		struct pair p;
		uint32_t id;
		int fd = open_null(), late = open_null();

		REQUIRE(
		    pair_open_with(&p, c == EXCEPTION_ITEM || c == COMPLETE_ITEM ? BOTH : 0, BOTH));
		rfd_buf_init(&tap);
		id = sink ? pair_sink(&p) : pair_stream(&p, 5);
		if (!first)
			give_stream_payload(p.client, id, RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE,
			                    0, 0);
		rfd_conn_recv_fds(p.client, &fd, 1);
		give_stream_payload(p.client, id,
		                    RFD_FLAG_NEXT | (c == COMPLETE_ITEM ? RFD_FLAG_COMPLETE : 0),
		                    first, RFD_PAYLOAD_DECLARED_EXCEPTION, 1, 0);
		REQUIRE(p.cev.n_stream >= 1);
		if (c == EXCEPTION_ITEM || c == COMPLETE_ITEM) {
			CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[p.cev.n_stream - 1]),
			         RFD_MSG_EXCEPTION);
		} else {
			CHECK(p.cev.stream_msgs[p.cev.n_stream - 1] == NULL);
			CHECK_EQ(p.cev.stream_status[p.cev.n_stream - 1], -EPROTO);
			CHECK(!rfd_test_fd_is_open(fd));
		}
		CHECK_EQ(rfd_conn_abandoned(p.client), c == COMPLETE_ITEM ? 0 : 1);
		CHECK_EQ(rfd_conn_in_flight(p.client), 0);
		pump_tap(p.client, p.server, &tap);
		if (c == COMPLETE_ITEM) {
			CHECK_EQ(frames_on(&tap, id, frames, 4), 0);
		} else {
			REQUIRE(frames_on(&tap, id, frames, 4) == 1);
			CHECK_EQ(frames[0].type, sink ? RFD_FRAME_ERROR : RFD_FRAME_CANCEL);
			CHECK(!sink || frames[0].u32 == RFD_ERROR_CANCELED);
			/* An item crossing the cancellation: read as an item, its FD closed. */
			rfd_conn_recv_fds(p.client, &late, 1);
			give_stream_payload(p.client, id, RFD_FLAG_NEXT, false,
			                    RFD_PAYLOAD_RESPONSE, 1, 1);
			CHECK(!rfd_test_fd_is_open(late));
			give_stream_payload(p.client, id, RFD_FLAG_COMPLETE, false,
			                    RFD_PAYLOAD_NONE, 0, 0);
			CHECK_EQ(rfd_conn_abandoned(p.client), 0);
		}
		CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
		CHECK_EQ(rfd_conn_error(p.client), 0);
		rfd_buf_free(&tap);
		pair_close(&p);
		if (rfd_test_fd_is_open(late))
			close(late);
	}
}

/* Give @server a sink item on @stream_id claiming @num FDs at @seq. */
static void
give_sink_item(struct rfd_conn *server, uint32_t stream_id, int32_t num, int64_t seq)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .fd = {.present = num != 0,
	           .has_seq = true,
	           .fd_seq = seq,
	           .has_num = true,
	           .num_fds = num},
	};
	struct rfd_frame frame = {.stream_id = stream_id,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT,
	                          .has_metadata = true,
	                          .data = {(const uint8_t *)"\x08\x00\x00\x00", 4}};
	struct rfd_buf meta, wire;

	rfd_buf_init(&meta);
	rfd_buf_init(&wire);
	rfd_stream_payload_metadata_encode(&md, &meta);
	frame.metadata = (struct rfd_slice){meta.data, meta.len};
	rfd_frame_encode(&frame, &wire);
	give(server, &wire);
	rfd_buf_free(&meta);
	rfd_buf_free(&wire);
}

/*
 * EXT-7, SINK-10 at a server: a sink item with FDs outside the agreement,
 * whose FDs do not match its claim, or without credit fails the sink with
 * ERROR 0x204 (1, 6), its FDs closed; the connection goes on, and later
 * frames on the failed sink are ignored.
 */
static void
test_sink_items_refused_by_the_server(void)
{
	enum { UNAGREED, MISMATCH, NO_CREDIT, N_HOW };
	static const int want[N_HOW] = {-EPROTO, -EBADFD, -EPROTO};

	for (int how = 0; how < N_HOW; how++) {
		struct pair p;
		struct rfd_response_error error;
		struct rfd_buf wire;
		uint32_t id, code = 0;
		int fds[2] = {open_null(), open_null()};

		REQUIRE(pair_open_with(&p, how == UNAGREED ? 0 : BOTH, BOTH));
		rfd_buf_init(&wire);
		id = flowing_sink(&p, how == NO_CREDIT ? 1 : 5);
		if (how == NO_CREDIT) {
			give_sink_item(p.server, id, 0, 0);
			rfd_conn_recv_fds(p.server, fds, 1);
			give_sink_item(p.server, id, 1, 0);
		} else {
			rfd_conn_recv_fds(p.server, fds, how == MISMATCH ? 2 : 1);
			give_sink_item(p.server, id, 1, 0);
		}
		REQUIRE(p.sev.n_sink >= 1);
		CHECK(p.sev.sink_msgs[p.sev.n_sink - 1] == NULL);
		CHECK_EQ(p.sev.sink_status[p.sev.n_sink - 1], want[how]);
		CHECK(!rfd_test_fd_is_open(fds[0]));
		if (how == MISMATCH)
			CHECK(!rfd_test_fd_is_open(fds[1]));
		else
			close(fds[1]);
		CHECK_EQ(rfd_conn_queued_fds(p.server), 0);
		CHECK_EQ(rfd_conn_in_flight(p.server), 0);
		drain(p.server, &wire, NULL);
		CHECK(find_error(&wire, id, &code, &error));
		CHECK_EQ(code, RFD_ERROR_INVALID);
		CHECK(error.has_category && error.category == RFD_ERROR_CATEGORY_INVALID_REQUEST);
		CHECK(error.has_code && error.code == RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
		CHECK_EQ(rfd_conn_sink_finish(p.server, id, "x", 1, NULL), -ENOENT);
		/* A later item on the failed sink is ignored, its FD left for the next claim. */
		give_sink_item(p.server, id, 0, 0);
		CHECK_EQ(rfd_conn_error(p.server), 0);
		CHECK_EQ(p.sev.n_sink, how == NO_CREDIT ? 2 : 1);
		rfd_buf_free(&wire);
		pair_close(&p);
	}
}

/*
 * The client cancels mid-sink, items with FDs queued behind a full output:
 * those still queued are dropped and their FDs closed, those in the output
 * go, then ERROR 0x203; the server hears -ECANCELED; a final response that
 * crossed the cancellation is read and its FDs closed; the FDs of the next
 * call still match.
 */
static void
test_sink_cancel_drops_queued_items(void)
{
	struct pair p;
	struct rfd_frame frames[8];
	struct rfd_buf tap;
	int read_ends[4] = {-1, -1, -1, -1}, final_end = -1;
	uint32_t id, call;
	int n;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	id = flowing_sink(&p, 10);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(rfd_conn_sink_send(p.client, id, "\x08\x00\x00\x00", 4,
		                            pipe_group(&read_ends[i])),
		         0);
	/* Two items with FDs fill the output; two wait, unstamped. */
	CHECK_EQ(rfd_conn_sink_credits(p.client, id), 2);
	/* The server ends the sink meanwhile, with an FD on its final response. */
	CHECK_EQ(rfd_conn_sink_finish(p.server, id, "\x0c\x00\x00", 3, pipe_group(&final_end)), 0);

	rfd_conn_abandon(p.client, id);
	CHECK(!write_end_closed(read_ends[0]));
	CHECK(!write_end_closed(read_ends[1]));
	CHECK(write_end_closed(read_ends[2]));
	CHECK(write_end_closed(read_ends[3]));
	CHECK_EQ(rfd_conn_sink_send(p.client, id, "x", 1, NULL), -ENOENT);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 1);
	pump_tap(p.client, p.server, &tap);
	n = frames_on(&tap, id, frames, 8);
	REQUIRE(n == 3);
	CHECK_EQ(frames[2].type, RFD_FRAME_ERROR);
	CHECK_EQ(frames[2].u32, RFD_ERROR_CANCELED);
	CHECK_EQ(frames[2].data.len, 0);
	/* The server had ended the sink: the items and the ERROR are ignored. */
	CHECK_EQ(p.sev.n_sink, 0);
	CHECK_EQ(rfd_conn_queued_fds(p.server), 2);

	pump(p.server, p.client);
	CHECK(write_end_closed(final_end));
	CHECK_EQ(p.cev.n_stream, 1); /* the first response only */
	CHECK_EQ(rfd_conn_queued_fds(p.client), 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 0);

	/* The next call's FDs are claimed at their sequence number; the orphans go. */
	CHECK_EQ(rfd_conn_send_request(p.client, RFD_REQUEST_RESPONSE, "echo", NULL, 0, 0,
	                               null_group(1), &call),
	         0);
	pump(p.client, p.server);
	REQUIRE(p.sev.n_requests == 1);
	CHECK_EQ(rfd_msg_fd_count(p.sev.requests[0]), 1);
	CHECK_EQ(rfd_conn_queued_fds(p.server), 0);
	CHECK(write_end_closed(read_ends[0]));
	CHECK(write_end_closed(read_ends[1]));
	CHECK_EQ(rfd_conn_send_reply(p.server, call, "\x00", 1, null_group(2)), 0);
	pump(p.server, p.client);
	REQUIRE(p.cev.n_replies == 1);
	CHECK_EQ(rfd_msg_fd_count(p.cev.replies[0]), 2);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	for (int i = 0; i < 4; i++)
		close(read_ends[i]);
	close(final_end);
	rfd_buf_free(&tap);
	pair_close(&p);
}

/*
 * A server that ends a sink before the client completed it: the client
 * takes the final response, drops the items still queued (FDs closed) and
 * takes no more; a CANCEL or an ERROR from the client ends the sink at the
 * server, before and after its first response.
 */
static void
test_sink_ends(void)
{
	struct pair p;
	struct rfd_frame cancel = {.type = RFD_FRAME_CANCEL};
	struct rfd_frame request_n = {.type = RFD_FRAME_REQUEST_N, .u32 = 3};
	struct rfd_buf wire;
	int read_ends[4] = {-1, -1, -1, -1}, dropped = -1;
	uint32_t a, b, c, d, e;

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&wire);
	a = flowing_sink(&p, 10);
	for (int i = 0; i < 4; i++)
		rfd_conn_sink_send(p.client, a, "\x08\x00\x00\x00", 4, pipe_group(&read_ends[i]));
	CHECK_EQ(rfd_conn_sink_finish(p.server, a, "\x0c\x00\x00", 3, NULL), 0);
	pump(p.server, p.client);
	REQUIRE(p.cev.n_stream == 2);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[1]), RFD_MSG_REPLY);
	CHECK(write_end_closed(read_ends[2]) && write_end_closed(read_ends[3]));
	CHECK_EQ(rfd_conn_sink_send(p.client, a, "x", 1, NULL), -ENOENT);
	CHECK_EQ(rfd_conn_sink_complete(p.client, a), -ENOENT);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	pump(p.client, p.server); /* the two items already written: ignored */
	CHECK_EQ(p.sev.n_sink, 0);

	/* An exception and an error end a sink; a REQUEST_N on a sink is ignored. */
	b = flowing_sink(&p, 1);
	c = flowing_sink(&p, 1);
	request_n.stream_id = b;
	rfd_frame_encode(&request_n, &wire);
	give(p.server, &wire);
	CHECK_EQ(rfd_conn_sink_credits(p.server, b), 1);
	CHECK_EQ(rfd_conn_stream_exception(p.server, b, "E", "bad", "\x1c\x00\x00", 3, NULL), 0);
	CHECK_EQ(rfd_conn_stream_error(p.server, c, RFD_ERROR_APPLICATION_ERROR, "broke"), 0);
	CHECK_EQ(rfd_conn_stream_complete(p.server, c), -ENOENT); /* not a stream */
	pump(p.server, p.client);
	REQUIRE(p.cev.n_stream == 6);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[4]), RFD_MSG_EXCEPTION);
	CHECK(strcmp(rfd_msg_error_text(p.cev.stream_msgs[4]), "bad") == 0);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[5]), RFD_MSG_ERROR);
	CHECK_EQ(rfd_msg_error_code(p.cev.stream_msgs[5]), RFD_ERROR_APPLICATION_ERROR);
	CHECK(strcmp(rfd_msg_error_text(p.cev.stream_msgs[5]), "broke") == 0);

	/* CANCEL after the first response ends it as ERROR 0x203 does; before it, drops it. */
	d = flowing_sink(&p, 1);
	cancel.stream_id = d;
	rfd_frame_encode(&cancel, &wire);
	give(p.server, &wire);
	REQUIRE(p.sev.n_sink == 1);
	CHECK(p.sev.sink_msgs[0] == NULL && p.sev.sink_status[0] == -ECANCELED);
	e = pair_sink(&p);
	rfd_conn_abandon(p.client, e);
	pump(p.client, p.server);
	CHECK_EQ(rfd_conn_sink_open(p.server, e, "\x00", 1, pipe_group(&dropped)), -ECANCELED);
	CHECK(write_end_closed(dropped));
	close(dropped);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	CHECK_EQ(p.sev.n_sink, 1);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	for (int i = 0; i < 4; i++)
		close(read_ends[i]);
	rfd_buf_free(&wire);
	pair_close(&p);
}

/*
 * The server's answers to sink requests (6.8): a method that is no sink
 * answers WRONG_RPC_KIND (step 8), a sink method to another request too; a
 * REQUEST_CHANNEL of kind 7 is declined (step 4, code 6) and one of kind 0
 * is of the wrong kind (step 5, code 9), each with its FD closed; an
 * exception with FDs may answer a sink request instead of a first response.
 */
static void
test_sink_request_answers(void)
{
	static const struct {
		int32_t kind;
		int32_t code;
	} declined[] = {{7, RFD_ERROR_CODE_REQUEST_PARSING_FAILURE},
	                {0, RFD_ERROR_CODE_WRONG_RPC_KIND}};
	struct pair p;
	struct rfd_response_error error;
	struct rfd_buf wire;
	uint32_t id, call, code = 0;
	int read_end = -1;

	for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
		struct events ev = {0};
		struct rfd_conn *server = ready_server(&ev, NULL);

		rfd_buf_init(&wire);
		give_fds(server, 1);
		raw_request_of_kind(&wire, RFD_FRAME_REQUEST_CHANNEL, declined[i].kind, 1,
		                    "sinkFds", 1, 0);
		give(server, &wire);
		CHECK_EQ(ev.n_requests, 0);
		CHECK_EQ(rfd_conn_queued_fds(server), 0);
		drain(server, &wire, NULL);
		CHECK(find_error(&wire, 1, &code, &error));
		CHECK_EQ(code, RFD_ERROR_INVALID);
		CHECK(error.has_code && error.code == declined[i].code);
		rfd_buf_free(&wire);
		rfd_conn_free(server);
	}

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&wire);
	id = pair_sink(&p);
	CHECK_EQ(rfd_conn_stream_open(p.server, id, "\x00", 1, NULL), -EINVAL);
	call = pair_stream(&p, 2);
	CHECK_EQ(rfd_conn_sink_open(p.server, call, "\x00", 1, null_group(1)), -EINVAL);
	pump_tap(p.server, p.client, &wire);
	CHECK(find_error(&wire, id, &code, &error) && code == RFD_ERROR_INVALID &&
	      error.code == RFD_ERROR_CODE_WRONG_RPC_KIND);
	CHECK(find_error(&wire, call, &code, &error) && code == RFD_ERROR_INVALID &&
	      error.code == RFD_ERROR_CODE_WRONG_RPC_KIND);
	id = pair_sink(&p);
	CHECK_EQ(rfd_conn_send_reply(p.server, id, "\x00", 1, NULL), 0);
	wire.len = 0;
	pump_tap(p.server, p.client, &wire);
	CHECK(find_error(&wire, id, &code, &error) && error.code == RFD_ERROR_CODE_WRONG_RPC_KIND);
	CHECK_EQ(p.cev.n_stream, 3);
	id = pair_sink(&p);
	CHECK_EQ(rfd_conn_send_exception(p.server, id, "E", "first", "\x1c\x00\x00", 3,
	                                 pipe_group(&read_end)),
	         0);
	CHECK_EQ(rfd_conn_in_flight(p.server), 0);
	pump(p.server, p.client);
	REQUIRE(p.cev.n_stream == 4);
	CHECK_EQ(rfd_msg_kind(p.cev.stream_msgs[3]), RFD_MSG_EXCEPTION);
	CHECK_EQ(rfd_msg_fd_count(p.cev.stream_msgs[3]), 1);
	CHECK_EQ(rfd_conn_in_flight(p.client), 0);
	close(read_end);
	rfd_buf_free(&wire);
	pair_close(&p);
}

/*
 * STREAM-20 on first responses: a stream's first response with an empty
 * payloadMetadata union, or a sink's whose metadata does not decode, fails
 * the call and not the connection: the FDs claimed are closed, the stream is
 * cancelled (the sink ended with ERROR 0x203) and kept abandoned, and what
 * still comes on it is read and its FDs closed.
 */
static void
test_first_response_neither_result_nor_exception(void)
{
	struct rfd_frame frames[4];
	struct rfd_buf tap;
	struct pair p;
	uint32_t stream, sink;
	int fds[2] = {open_null(), open_null()};

	REQUIRE(pair_open(&p, NULL));
	rfd_buf_init(&tap);
	stream = pair_stream(&p, 5);
	sink = pair_sink(&p);

	rfd_conn_recv_fds(p.client, &fds[0], 1);
	give_stream_payload(p.client, stream, RFD_FLAG_NEXT, true, RFD_PAYLOAD_EMPTY, 1, 0);
	REQUIRE(p.cev.n_stream == 1);
	CHECK(p.cev.stream_msgs[0] == NULL && p.cev.stream_status[0] == -EPROTO);
	CHECK(!rfd_test_fd_is_open(fds[0]));
	/* An item the server sent before it saw the CANCEL: claimed, closed. */
	rfd_conn_recv_fds(p.client, &fds[1], 1);
	give_stream_payload(p.client, stream, RFD_FLAG_NEXT, false, RFD_PAYLOAD_RESPONSE, 1, 1);
	CHECK(!rfd_test_fd_is_open(fds[1]));
	CHECK_EQ(p.cev.n_stream, 1);

	give_item_metadata(p.client, sink, RFD_FLAG_NEXT, "7c 1c");
	REQUIRE(p.cev.n_stream == 2);
	CHECK(p.cev.stream_msgs[1] == NULL && p.cev.stream_status[1] == -EPROTO);
	CHECK(strstr(rfd_conn_reason(p.client), "unreadable first response metadata") != NULL);
	CHECK_EQ(rfd_conn_abandoned(p.client), 2);

	pump_tap(p.client, p.server, &tap);
	REQUIRE(frames_on(&tap, stream, frames, 4) == 1);
	CHECK_EQ(frames[0].type, RFD_FRAME_CANCEL);
	REQUIRE(frames_on(&tap, sink, frames, 4) == 1);
	CHECK_EQ(frames[0].type, RFD_FRAME_ERROR);
	CHECK_EQ(frames[0].u32, RFD_ERROR_CANCELED);
	give_stream_payload(p.client, stream, RFD_FLAG_COMPLETE, false, RFD_PAYLOAD_NONE, 0, 0);
	CHECK_EQ(rfd_conn_abandoned(p.client), 1);
	CHECK_EQ(rfd_conn_error(p.client), 0);
	rfd_buf_free(&tap);
	pair_close(&p);
}

enum sink_violation {
	SV_FINAL_NOT_COMPLETE,
	SV_FINAL_MISMATCH,
	SV_FIRST_COMPLETE,
	SV_COMPLETE_FIRST,
	N_SINK_VIOLATIONS,
};

/*
 * STREAM-12 at a sink's client: a final response whose FDs do not match, a
 * PAYLOAD after the first response without COMPLETE, a completion before the
 * first response: the sink fails and so does the connection.  A first
 * response that ends the sink with a result fails the sink alone (SINK-14).
 */
static void
test_sink_contract_violations(void)
{
	static const int want[N_SINK_VIOLATIONS] = {-EPROTO, -EBADFD, -EPROTO, -EPROTO};
	static const int want_conn[N_SINK_VIOLATIONS] = {-EPROTO, -EBADFD, 0, -EPROTO};

	for (int v = 0; v < N_SINK_VIOLATIONS; v++) {
		struct pair p;
		uint32_t id;
		int fd = open_null();

		REQUIRE(pair_open(&p, NULL));
		id = pair_sink(&p);
		if (v == SV_FINAL_NOT_COMPLETE || v == SV_FINAL_MISMATCH)
			give_stream_payload(p.client, id, RFD_FLAG_NEXT, true, RFD_PAYLOAD_RESPONSE,
			                    0, 0);
		rfd_conn_recv_fds(p.client, &fd, 1);
		if (v == SV_FINAL_NOT_COMPLETE)
			give_stream_payload(p.client, id, RFD_FLAG_NEXT, false,
			                    RFD_PAYLOAD_RESPONSE, 1, 0);
		else if (v == SV_FINAL_MISMATCH)
			give_stream_payload(p.client, id, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, false,
			                    RFD_PAYLOAD_RESPONSE, 2, 0);
		else if (v == SV_FIRST_COMPLETE)
			give_stream_payload(p.client, id, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, true,
			                    RFD_PAYLOAD_RESPONSE, 1, 0);
		else
			give_stream_payload(p.client, id, RFD_FLAG_COMPLETE, true, RFD_PAYLOAD_NONE,
			                    0, 0);
		REQUIRE(p.cev.n_stream >= 1);
		CHECK(p.cev.stream_msgs[p.cev.n_stream - 1] == NULL);
		CHECK_EQ(p.cev.stream_status[p.cev.n_stream - 1], want[v]);
		CHECK_EQ(rfd_conn_error(p.client), want_conn[v]);
		CHECK(!rfd_test_fd_is_open(fd));
		if (v == SV_FIRST_COMPLETE)
			CHECK_EQ(rfd_conn_in_flight(p.client), 0);
		pair_close(&p);
	}
}

/* Every allocation of a sink exchange fails once, in turn: nothing leaks, no FD stays open. */
static void
test_sink_allocation_failures_leak_nothing(void)
{
	bool every_site = false;

	for (long site = 0; site < 600 && !every_site; site++) {
		struct events cev = {0}, sev = {0};
		struct rfd_conn *client, *server;
		uint32_t id = 0, other = 0;
		long made;

		rfd_alloc_fail_at(site);
		client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &cev);
		server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &sev);
		if (client && server) {
			rfd_conn_send_sink(client, "s", "x", 1, 0, null_group(2), &id);
			rfd_conn_send_sink(client, "t", "x", 1, 0, NULL, &other);
			pump(client, server);
			rfd_conn_sink_open(server, id, "\x00", 1, null_group(1));
			rfd_conn_sink_request(server, id, 6);
			rfd_conn_send_exception(server, other, "E", "w", "\x00", 1, null_group(1));
			pump(server, client);
			for (int i = 0; i < 5; i++)
				rfd_conn_sink_send(client, id, "i", 1, null_group(2));
			rfd_conn_sink_complete(client, id);
			pump(client, server);
			rfd_conn_sink_finish(server, id, "f", 1, null_group(1));
			rfd_conn_abandon(client, id);
			pump(server, client);
			pump(client, server);
		}
		made = rfd_alloc_fail_at(-1);
		events_free(&cev);
		events_free(&sev);
		rfd_conn_free(client);
		rfd_conn_free(server);
		every_site = made <= site;
	}
	CHECK(every_site);
}

static const struct rfd_test tests[] = {
    {"failure_after_partial_write_drops_the_rest", test_failure_after_partial_write_drops_the_rest},
    {"frame_over_configured_maximum", test_frame_over_configured_maximum},
    {"internal_failure_answer", test_internal_failure_answer},
    {"second_setup_and_bad_stream_ids_fail_the_connection",
     test_second_setup_and_bad_stream_ids_fail_the_connection},
    {"fragmented_request_on_stream_in_use_fails_at_once",
     test_fragmented_request_on_stream_in_use_fails_at_once},
    {"wrong_kind_is_refused_with_code_9", test_wrong_kind_is_refused_with_code_9},
    {"other_frame_inside_a_fragmented_message_fails",
     test_other_frame_inside_a_fragmented_message_fails},
    {"reply_on_unknown_stream_leaves_fds_queued", test_reply_on_unknown_stream_leaves_fds_queued},
    {"handshake_and_round_trip", test_handshake_and_round_trip},
    {"setup_response_bytes", test_setup_response_bytes},
    {"setup_refusals", test_setup_refusals},
    {"first_frame_must_be_setup", test_first_frame_must_be_setup},
    {"request_fd_mismatches", test_request_fd_mismatches},
    {"oneway_mismatch_is_silent", test_oneway_mismatch_is_silent},
    {"orphans_older_than_a_claim_are_closed", test_orphans_older_than_a_claim_are_closed},
    {"queued_fds_closed_at_eof", test_queued_fds_closed_at_eof},
    {"fd_budget_and_cap", test_fd_budget_and_cap},
    {"in_flight_limit", test_in_flight_limit},
    {"declined_features_close_fds", test_declined_features_close_fds},
    {"fds_go_with_the_end_of_their_message", test_fds_go_with_the_end_of_their_message},
    {"abandoned_reply_fds_are_closed", test_abandoned_reply_fds_are_closed},
    {"reply_mismatch_fails_only_that_call", test_reply_mismatch_fails_only_that_call},
    {"keepalive_is_answered", test_keepalive_is_answered},
    {"fragmented_request_with_fds", test_fragmented_request_with_fds},
    {"allocation_failures_leak_nothing", test_allocation_failures_leak_nothing},
    {"setup_with_resume_enable_and_lease_is_accepted",
     test_setup_with_resume_enable_and_lease_is_accepted},
    {"server_ignores_payload_with_follows", test_server_ignores_payload_with_follows},
    {"client_ignores_payload_with_follows_on_untracked_stream",
     test_client_ignores_payload_with_follows_on_untracked_stream},
    {"client_fails_on_first_request_fragment", test_client_fails_on_first_request_fragment},
    {"eof_inside_fragmented_message_is_truncation",
     test_eof_inside_fragmented_message_is_truncation},
    {"empty_payload_metadata_fails_the_call", test_empty_payload_metadata_fails_the_call},
    {"stream_request_answers_follow_the_table", test_stream_request_answers_follow_the_table},
    {"stream_marker_ends_with_the_request", test_stream_marker_ends_with_the_request},
    {"stream_round_trip_with_fds", test_stream_round_trip_with_fds},
    {"stream_cancel_drops_queued_items", test_stream_cancel_drops_queued_items},
    {"stream_contract_violations_fail_the_connection",
     test_stream_contract_violations_fail_the_connection},
    {"stream_ends", test_stream_ends},
    {"stream_open_refusals", test_stream_open_refusals},
    {"abandoned_streams_are_bounded", test_abandoned_streams_are_bounded},
    {"stream_queue_keeps_order", test_stream_queue_keeps_order},
    {"stream_queue_fd_budget", test_stream_queue_fd_budget},
    {"stream_allocation_failures_leak_nothing", test_stream_allocation_failures_leak_nothing},
    {"stream_item_neither_result_nor_exception", test_stream_item_neither_result_nor_exception},
    {"stream_credit_edges", test_stream_credit_edges},
    {"stream_credit_saturation", test_stream_credit_saturation},
    {"ended_without_complete_is_cancelled", test_ended_without_complete_is_cancelled},
    {"setup_offer_bytes", test_setup_offer_bytes},
    {"server_reads_the_offer", test_server_reads_the_offer},
    {"sink_vectors", test_sink_vectors},
    {"sink_round_trip_with_fds", test_sink_round_trip_with_fds},
    {"sink_extensions_not_agreed", test_sink_extensions_not_agreed},
    {"client_refuses_unagreed_fds", test_client_refuses_unagreed_fds},
    {"sink_items_refused_by_the_server", test_sink_items_refused_by_the_server},
    {"sink_cancel_drops_queued_items", test_sink_cancel_drops_queued_items},
    {"sink_ends", test_sink_ends},
    {"sink_request_answers", test_sink_request_answers},
    {"first_response_neither_result_nor_exception",
     test_first_response_neither_result_nor_exception},
    {"sink_contract_violations", test_sink_contract_violations},
    {"sink_allocation_failures_leak_nothing", test_sink_allocation_failures_leak_nothing},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
