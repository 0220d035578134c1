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
    .failed = on_failed,
};

static void
events_free(struct events *ev)
{
	for (int i = 0; i < ev->n_requests; i++)
		rfd_msg_free(ev->requests[i]);
	for (int i = 0; i < ev->n_replies; i++)
		rfd_msg_free(ev->replies[i]);
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

/* Deliver everything @from has queued to @to, write by write, FDs with their chunk. */
static void
pump(struct rfd_conn *from, struct rfd_conn *to)
{
	struct rfd_out_chunk chunk;

	while (rfd_conn_out_peek(from, &chunk)) {
		int copies[RFD_MAX_FDS];
		size_t len = chunk.len;

		dup_all(chunk.fds, chunk.n_fds, copies);
		rfd_conn_recv_fds(to, copies, chunk.n_fds);
		rfd_conn_recv_bytes(to, chunk.bytes, chunk.len);
		rfd_conn_out_advance(from, len);
	}
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

/*
 * Streams are declined with their FDs claimed and closed.  ERR-14 does not
 * apply: the reference implements no streams (README: Limitations).
 */
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
	/* Every allocation of a request/reply exchange fails once, in turn. */
	for (long site = 0; site < 200; site++) {
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
		if (made <= site)
			break; /* every site has failed once */
	}
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
 * the methods: an unknown method is code 10 (step 7); any other answer is
 * code 9 (step 8), as no method streams its response.
 */
static void
test_stream_request_answers_follow_the_table(void)
{
	enum { UNKNOWN, REPLY, EXCEPTION, BAD_ARGS, N_ANSWERS };
	static const int32_t want_code[N_ANSWERS] = {
	    RFD_ERROR_CODE_UNKNOWN_METHOD, RFD_ERROR_CODE_WRONG_RPC_KIND,
	    RFD_ERROR_CODE_WRONG_RPC_KIND, RFD_ERROR_CODE_WRONG_RPC_KIND};

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
		CHECK(ev.requests[0]->streaming);
		CHECK_EQ(rfd_msg_kind(ev.requests[0]), RFD_MSG_REQUEST);
		CHECK_EQ(rfd_msg_fd_count(ev.requests[0]), 1);
		CHECK_EQ(rfd_conn_in_flight(server), 1);

		fd = open_null();
		if (answer == UNKNOWN)
			CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_UNKNOWN_METHOD, "no"), 0);
		else if (answer == BAD_ARGS)
			CHECK_EQ(rfd_conn_send_error(server, 1, RFD_FAIL_BAD_REQUEST, "args"), 0);
		else if (answer == EXCEPTION)
			CHECK_EQ(rfd_conn_send_exception(server, 1, "E", "w", "\x00", 1), 0);
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
	CHECK(!ev.requests[1]->streaming);
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

static const struct rfd_test tests[] = {
    {"failure_after_partial_write_drops_the_rest", test_failure_after_partial_write_drops_the_rest},
    {"frame_over_configured_maximum", test_frame_over_configured_maximum},
    {"internal_failure_answer", test_internal_failure_answer},
    {"second_setup_and_bad_stream_ids_fail_the_connection",
     test_second_setup_and_bad_stream_ids_fail_the_connection},
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
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
