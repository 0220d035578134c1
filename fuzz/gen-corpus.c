/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the fuzz targets, from what the reference
 * emits: a client core and a server core talking through memory give the
 * frames (SETUP, setup response, requests and replies with FDs, errors,
 * fragments), the metadata encoders give every struct kind, and scripts for
 * fuzz-conn replay those bytes with the FD groups where a kernel would put
 * them.  Usage: fuzz-gen-corpus DIR (DIR/fuzz-frame, DIR/fuzz-metadata, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cmsg-script.h"
#include "compact.h"
#include "conn-script.h"
#include "conn.h"
#include "frame.h"
#include "metadata.h"

enum {
	SCRIPT_CAP = 1 << 16,
	BYTES_OP_MAX = 4095,
	FRAME_OPTIONS = 0x3F, /* reassembly limit 504 bytes */
	FRAME_REFRAGMENT = 0x18,
};

static const char *out_dir;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
write_file(const char *target, const char *name, const void *bytes, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static int
open_null(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("/dev/null");
	return fd;
}

static struct rfd_fdgroup *
null_group(size_t n)
{
	int fds[RFD_MAX_FDS];

	for (size_t i = 0; i < n; i++)
		fds[i] = open_null();
	return rfd_fdgroup_new(fds, n);
}

/* ---- Two cores talking ---- */

struct events {
	struct rfd_msg *msgs[16];
	int n;
};

static void
keep(struct events *ev, struct rfd_msg *msg)
{
	if (ev->n < 16)
		ev->msgs[ev->n++] = msg;
	else
		rfd_msg_free(msg);
}

static void
on_request(void *user, struct rfd_msg *msg)
{
	keep(user, msg);
}

static void
on_reply(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	if (msg)
		keep(user, msg);
}

static const struct rfd_conn_callbacks callbacks = {
    .request = on_request,
    .reply = on_reply,
};

static void
free_events(struct events *ev)
{
	for (int i = 0; i < ev->n; i++)
		rfd_msg_free(ev->msgs[i]);
	ev->n = 0;
}

/* One write of a core: its bytes and how many FDs went with them. */
struct chunk {
	uint8_t *bytes;
	size_t len;
	size_t n_fds;
};

struct chunks {
	struct chunk c[32];
	int n;
};

/* Take every chunk @conn has to write, closing the FDs it sends. */
static void
take_output(struct rfd_conn *conn, struct chunks *out)
{
	struct rfd_out_chunk chunk;

	out->n = 0;
	while (out->n < 32 && rfd_conn_out_peek(conn, &chunk)) {
		struct chunk *c = &out->c[out->n++];

		c->bytes = malloc(chunk.len);
		if (!c->bytes)
			die("malloc");
		memcpy(c->bytes, chunk.bytes, chunk.len);
		c->len = chunk.len;
		c->n_fds = chunk.n_fds;
		rfd_conn_out_advance(conn, chunk.len);
	}
}

static void
free_chunks(struct chunks *chunks)
{
	for (int i = 0; i < chunks->n; i++)
		free(chunks->c[i].bytes);
	chunks->n = 0;
}

/* Deliver @chunks to @to as a kernel would: each chunk's FDs (copies) before its bytes. */
static void
deliver(const struct chunks *chunks, struct rfd_conn *to)
{
	for (int i = 0; i < chunks->n; i++) {
		int fds[RFD_MAX_FDS];

		for (size_t k = 0; k < chunks->c[i].n_fds; k++)
			fds[k] = open_null();
		rfd_conn_recv_fds(to, fds, chunks->c[i].n_fds);
		rfd_conn_recv_bytes(to, chunks->c[i].bytes, chunks->c[i].len);
	}
}

static void
append(struct rfd_buf *b, const void *bytes, size_t len)
{
	if (rfd_buf_append(b, bytes, len) < 0)
		die("rfd_buf_append");
}

/* ---- fuzz-conn scripts ---- */

struct script {
	uint8_t b[SCRIPT_CAP];
	size_t len;
};

static void
s_u8(struct script *s, uint8_t v)
{
	if (s->len == SCRIPT_CAP) {
		fprintf(stderr, "script too long\n");
		exit(1);
	}
	s->b[s->len++] = v;
}

static void
s_u16(struct script *s, uint16_t v)
{
	s_u8(s, (uint8_t)(v >> 8));
	s_u8(s, (uint8_t)v);
}

static void
s_u32(struct script *s, uint32_t v)
{
	s_u16(s, (uint16_t)(v >> 16));
	s_u16(s, (uint16_t)v);
}

static void
s_u64(struct script *s, uint64_t v)
{
	s_u32(s, (uint32_t)(v >> 32));
	s_u32(s, (uint32_t)v);
}

static void
s_raw(struct script *s, const void *bytes, size_t len)
{
	for (size_t i = 0; i < len; i++)
		s_u8(s, ((const uint8_t *)bytes)[i]);
}

static void
s_init(struct script *s, uint8_t options)
{
	s->len = 0;
	s_u8(s, options);
}

static void
s_limits(struct script *s, uint8_t cap, uint8_t budget, uint8_t in_flight, uint8_t max_frame,
         uint8_t max_message)
{
	s_u8(s, cap);
	s_u8(s, budget);
	s_u8(s, in_flight);
	s_u8(s, max_frame);
	s_u8(s, max_message);
}

static void
op_bytes(struct script *s, const uint8_t *bytes, size_t len)
{
	while (len) {
		size_t n = len > BYTES_OP_MAX ? BYTES_OP_MAX : len;

		s_u8(s, CONN_OP(CONN_OP_BYTES, n >> 8));
		s_u8(s, (uint8_t)n);
		s_raw(s, bytes, n);
		bytes += n;
		len -= n;
	}
}

static void
op_fds(struct script *s, size_t n)
{
	s_u8(s, CONN_OP(CONN_OP_FDS, n >> 8 & 1));
	s_u8(s, (uint8_t)n);
}

/* A script's reads: every chunk's FD group, then its bytes. */
static void
op_chunks(struct script *s, const struct chunks *chunks)
{
	for (int i = 0; i < chunks->n; i++) {
		if (chunks->c[i].n_fds)
			op_fds(s, chunks->c[i].n_fds);
		op_bytes(s, chunks->c[i].bytes, chunks->c[i].len);
	}
}

struct frame_op {
	uint8_t kind;
	uint8_t stream;
	uint8_t claim;
	uint8_t pieces;
	int8_t rel_num, rel_seq; /* for CONN_CLAIM_RELATIVE */
	uint8_t fragment;
	const char *data;
};

static void
op_frame(struct script *s, const struct frame_op *f)
{
	size_t len = f->data ? strlen(f->data) : 0;

	s_u8(s, CONN_OP_FRAME);
	s_u8(s, f->kind);
	s_u8(s, f->stream);
	s_u8(s, f->claim);
	s_u8(s, f->pieces);
	if ((f->claim & CONN_CLAIM_MASK) == CONN_CLAIM_RELATIVE) {
		s_u8(s, (uint8_t)f->rel_num);
		s_u8(s, (uint8_t)f->rel_seq);
	}
	s_u8(s, f->fragment);
	s_u8(s, (uint8_t)len);
	s_raw(s, f->data, len);
}

static void
op_frame_raw_claim(struct script *s, uint8_t kind, uint8_t stream, int32_t num, int64_t seq)
{
	s_u8(s, CONN_OP_FRAME);
	s_u8(s, kind);
	s_u8(s, stream);
	s_u8(s, CONN_CLAIM_RAW);
	s_u8(s, 0);
	s_u32(s, (uint32_t)num);
	s_u64(s, (uint64_t)seq);
	s_u8(s, 0);
	s_u8(s, 0);
}

static void
op_write(struct script *s, uint16_t n)
{
	s_u8(s, CONN_OP_WRITE);
	s_u16(s, n);
}

static void
op(struct script *s, uint8_t code)
{
	s_u8(s, code);
}

static void
op_request(struct script *s, bool oneway, const char *method, const char *args, uint8_t n_fds)
{
	s_u8(s, CONN_OP_SEND);
	s_u8(s, oneway);
	s_u8(s, (uint8_t)strlen(method));
	s_raw(s, method, strlen(method));
	s_u8(s, (uint8_t)strlen(args));
	s_raw(s, args, strlen(args));
	s_u8(s, n_fds);
	s_u32(s, 1000);
}

static void
op_answer(struct script *s, uint8_t which, uint8_t answer, const char *data, uint8_t n_fds)
{
	s_u8(s, CONN_OP_SEND);
	s_u8(s, which);
	s_u8(s, answer);
	s_u8(s, (uint8_t)strlen(data));
	s_raw(s, data, strlen(data));
	if (answer % 3 == 0)
		s_u8(s, n_fds);
}

/* A client's stream request asking for @initial_n. */
static void
op_stream_request(struct script *s, const char *method, const char *args, uint8_t n_fds,
                  uint8_t initial_n)
{
	s_u8(s, CONN_OP(CONN_OP_SEND, 2));
	s_u8(s, 0);
	s_u8(s, (uint8_t)strlen(method));
	s_raw(s, method, strlen(method));
	s_u8(s, (uint8_t)strlen(args));
	s_raw(s, args, strlen(args));
	s_u8(s, n_fds);
	s_u32(s, 1000);
	s_u8(s, initial_n);
}

enum { CALL_OPEN, CALL_ITEM, CALL_COMPLETE, CALL_EXCEPTION, CALL_ERROR };

/* A server's stream call: a first response, an item (with @n_fds), or an end. */
static void
op_stream_call(struct script *s, uint8_t which, uint8_t call, const char *data, uint8_t n_fds)
{
	s_u8(s, CONN_OP(CONN_OP_SEND, 2));
	s_u8(s, which);
	s_u8(s, call);
	if (call == CALL_OPEN || call == CALL_ITEM || call == CALL_EXCEPTION) {
		s_u8(s, (uint8_t)strlen(data));
		s_raw(s, data, strlen(data));
	}
	if (call == CALL_OPEN || call == CALL_ITEM)
		s_u8(s, n_fds);
}

/* A client's sink request. */
static void
op_sink_request(struct script *s, const char *method, const char *args, uint8_t n_fds)
{
	s_u8(s, CONN_OP(CONN_OP_SEND, 4));
	s_u8(s, 0);
	s_u8(s, (uint8_t)strlen(method));
	s_raw(s, method, strlen(method));
	s_u8(s, (uint8_t)strlen(args));
	s_raw(s, args, strlen(args));
	s_u8(s, n_fds);
	s_u32(s, 1000);
}

/* A client's sink item with @n_fds FDs. */
static void
op_sink_item(struct script *s, uint8_t which, const char *data, uint8_t n_fds)
{
	s_u8(s, CONN_OP_SINK);
	s_u8(s, which);
	s_u8(s, 0);
	s_u8(s, (uint8_t)strlen(data));
	s_raw(s, data, strlen(data));
	s_u8(s, n_fds);
}

static void
op_sink_complete(struct script *s, uint8_t which)
{
	s_u8(s, CONN_OP_SINK);
	s_u8(s, which);
	s_u8(s, 1);
}

enum { SINK_OPEN, SINK_REQUEST_N, SINK_FINISH, SINK_EXCEPTION, SINK_END_EXCEPTION };

/* A server's sink call: @arg is REQUEST_N's n, or the FD count of the others. */
static void
op_sink_call(struct script *s, uint8_t which, uint8_t call, const char *data, uint8_t arg)
{
	s_u8(s, CONN_OP_SINK);
	s_u8(s, which);
	s_u8(s, call);
	if (call != SINK_REQUEST_N) {
		s_u8(s, (uint8_t)strlen(data));
		s_raw(s, data, strlen(data));
	}
	s_u8(s, arg);
}

static void
op_request_n(struct script *s, uint8_t which, uint8_t n)
{
	s_u8(s, CONN_OP_REQUEST_N);
	s_u8(s, which);
	s_u8(s, n);
}

static void
op_free(struct script *s, uint8_t which, uint8_t take)
{
	s_u8(s, CONN_OP_FREE);
	s_u8(s, which);
	s_u8(s, take);
}

static void
save_script(const char *name, const struct script *s)
{
	write_file("fuzz-conn", name, s->b, s->len);
}

/* ---- Real traffic ---- */

/* What a client core writes: SETUP, then a request with @n_fds FDs. */
static void
client_request(struct chunks *out, const char *method, const void *args, size_t args_len,
               size_t n_fds, bool oneway)
{
	struct events ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &ev);

	rfd_conn_send_request(client, oneway ? RFD_REQUEST_ONEWAY : RFD_REQUEST_RESPONSE, method,
	                      args, args_len, 1000, n_fds ? null_group(n_fds) : NULL, NULL);
	take_output(client, out);
	rfd_conn_free(client);
}

/* What a client core writes: SETUP, then a stream request with @n_fds FDs. */
static void
client_stream(struct chunks *out, const char *method, const void *args, size_t args_len,
              size_t n_fds, uint32_t initial_n)
{
	struct events ev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &ev);

	rfd_conn_send_stream(client, method, args, args_len, 1000, initial_n,
	                     n_fds ? null_group(n_fds) : NULL, NULL);
	take_output(client, out);
	rfd_conn_free(client);
}

/*
 * What a server core answers to a stream request: the setup response, a
 * first response with @n_fds FDs, items of @n_fds FDs while the credit
 * lasts, and the completion.
 */
static void
server_stream(const struct chunks *request, size_t n_fds, struct chunks *out)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);

	deliver(request, server);
	for (int i = 0; i < ev.n; i++) {
		uint32_t stream = ev.msgs[i]->stream_id;

		rfd_conn_stream_open(server, stream, "\x00", 1, n_fds ? null_group(n_fds) : NULL);
		while (rfd_conn_stream_credits(server, stream) > 0)
			rfd_conn_stream_send(server, stream, "\x15\x02\x00", 3,
			                     n_fds ? null_group(n_fds) : NULL);
		rfd_conn_stream_complete(server, stream);
	}
	take_output(server, out);
	free_events(&ev);
	rfd_conn_free(server);
}

/*
 * A client core's sink with @n_fds FDs on its request: in @request SETUP and
 * the request; in @items, after a server core's first response and credit
 * for 3, two items with 1 and 2 FDs and the completion.
 */
static void
client_sink(struct chunks *request, struct chunks *items, size_t n_fds)
{
	struct events cev = {0}, sev = {0};
	struct rfd_conn *client = rfd_conn_new(RFD_ROLE_CLIENT, NULL, &callbacks, &cev);
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &sev);
	struct chunks answer;
	uint32_t id = 0;

	rfd_conn_send_sink(client, "sinkFds", "\x18\x01s\x00", 4, 1000,
	                   n_fds ? null_group(n_fds) : NULL, &id);
	take_output(client, request);
	deliver(request, server);
	rfd_conn_sink_open(server, id, "\x00", 1, NULL);
	rfd_conn_sink_request(server, id, 3);
	take_output(server, &answer);
	deliver(&answer, client);
	rfd_conn_sink_send(client, id, "\x08\x00\x01a\x00", 5, null_group(1));
	rfd_conn_sink_send(client, id, "\x08\x00\x01b\x00", 5, null_group(2));
	rfd_conn_sink_complete(client, id);
	take_output(client, items);
	free_chunks(&answer);
	free_events(&cev);
	free_events(&sev);
	rfd_conn_free(client);
	rfd_conn_free(server);
}

/*
 * What a server core answers to a sink request: the setup response, the
 * first response with its answer to the offer, and credit for @credits.
 */
static void
server_sink(const struct chunks *request, uint32_t credits, struct chunks *out)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);

	deliver(request, server);
	for (int i = 0; i < ev.n; i++) {
		rfd_conn_sink_open(server, ev.msgs[i]->stream_id, "\x00", 1, NULL);
		rfd_conn_sink_request(server, ev.msgs[i]->stream_id, credits);
	}
	take_output(server, out);
	free_events(&ev);
	rfd_conn_free(server);
}

/* What a server core answers to @request: the setup response, then its reply to each request. */
static void
server_answer(const struct chunks *request, size_t reply_fds, int answer, struct chunks *out)
{
	struct events ev = {0};
	struct rfd_conn *server = rfd_conn_new(RFD_ROLE_SERVER, NULL, &callbacks, &ev);

	deliver(request, server);
	for (int i = 0; i < ev.n; i++) {
		uint32_t stream = ev.msgs[i]->stream_id;

		if (rfd_msg_kind(ev.msgs[i]) != RFD_MSG_REQUEST)
			continue;
		if (answer == 0)
			rfd_conn_send_reply(server, stream, "\x18\x02ok\x00", 5,
			                    reply_fds ? null_group(reply_fds) : NULL);
		else if (answer == 1)
			rfd_conn_send_exception(server, stream, "FdTestError", "no such file",
			                        "\x1c\x18\x04nope\x00\x00", 8, NULL);
		else
			rfd_conn_send_error(server, stream, RFD_FAIL_UNKNOWN_METHOD, "no method");
	}
	take_output(server, out);
	free_events(&ev);
	rfd_conn_free(server);
}

/* ---- fuzz-frame ---- */

static void
frame_file(const char *name, const struct rfd_buf *frames, uint8_t options, uint8_t refragment)
{
	struct rfd_buf b;

	rfd_buf_init(&b);
	append(&b, &options, 1);
	append(&b, &refragment, 1);
	append(&b, frames->data, frames->len);
	write_file("fuzz-frame", name, b.data, b.len);
	rfd_buf_free(&b);
}

static void
chunks_to_buf(const struct chunks *chunks, struct rfd_buf *b)
{
	for (int i = 0; i < chunks->n; i++)
		append(b, chunks->c[i].bytes, chunks->c[i].len);
}

static void
encode(const struct rfd_frame *f, struct rfd_buf *b)
{
	if (rfd_frame_encode(f, b) < 0) {
		fprintf(stderr, "cannot encode a %s frame\n", rfd_frame_type_name(f->type));
		exit(1);
	}
}

static void
gen_frames(struct rfd_buf *all)
{
	static const uint8_t big[700] = {1, 2, 3};
	struct chunks req, reply;
	struct rfd_buf b;
	struct rfd_frame f;

	rfd_buf_init(&b);
	client_request(&req, "inspect", "\x19\x1c\x00", 3, 1, false);
	chunks_to_buf(&req, &b);
	frame_file("setup-and-request-fd", &b, FRAME_OPTIONS, FRAME_REFRAGMENT);
	append(all, b.data, b.len);
	b.len = 0;

	server_answer(&req, 2, 0, &reply);
	chunks_to_buf(&reply, &b);
	frame_file("setup-response-and-reply-fds", &b, FRAME_OPTIONS, FRAME_REFRAGMENT);
	append(all, b.data, b.len);
	b.len = 0;
	free_chunks(&reply);

	server_answer(&req, 0, 1, &reply);
	chunks_to_buf(&reply, &b);
	frame_file("exception", &b, FRAME_OPTIONS, 0);
	b.len = 0;
	free_chunks(&reply);

	server_answer(&req, 0, 2, &reply);
	chunks_to_buf(&reply, &b);
	frame_file("error-unknown-method", &b, FRAME_OPTIONS, 0);
	append(all, b.data, b.len);
	b.len = 0;
	free_chunks(&reply);
	free_chunks(&req);

	client_request(&req, "record", "", 0, 0, true);
	chunks_to_buf(&req, &b);
	frame_file("oneway", &b, 0, 0);
	b.len = 0;
	free_chunks(&req);

	/* A request too big for frames of 64 bytes, fragmented as the reference does. */
	f = (struct rfd_frame){.stream_id = 3,
	                       .type = RFD_FRAME_REQUEST_RESPONSE,
	                       .has_metadata = true,
	                       .metadata = {(const uint8_t *)"\x15\x04\x18\x01m\x00", 6},
	                       .data = {big, 200}};
	rfd_frame_encode_fragmented(&f, 64, &b);
	frame_file("fragments", &b, FRAME_OPTIONS, 0x30);
	frame_file("fragments-over-limit", &b, 0x10, 0);
	append(all, b.data, b.len);
	b.len = 0;
	f.type = RFD_FRAME_PAYLOAD;
	f.flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE;
	f.data.len = sizeof(big);
	rfd_frame_encode_fragmented(&f, 100, &b);
	frame_file("payload-fragments", &b, 0, 0);
	b.len = 0;

	f = (struct rfd_frame){.type = RFD_FRAME_KEEPALIVE,
	                       .flags = RFD_FLAG_FOLLOWS,
	                       .data = {(const uint8_t *)"ping", 4}};
	encode(&f, &b);
	f = (struct rfd_frame){.stream_id = 1, .type = RFD_FRAME_REQUEST_N, .u32 = 10};
	encode(&f, &b);
	f = (struct rfd_frame){.stream_id = 1, .type = RFD_FRAME_CANCEL};
	encode(&f, &b);
	f = (struct rfd_frame){.type = RFD_FRAME_ERROR,
	                       .u32 = RFD_ERROR_CONNECTION_ERROR,
	                       .data = {(const uint8_t *)"bye", 3}};
	encode(&f, &b);
	f = (struct rfd_frame){.stream_id = 5,
	                       .type = RFD_FRAME_REQUEST_STREAM,
	                       .u32 = 1,
	                       .has_metadata = true,
	                       .metadata = {(const uint8_t *)"\x15\x04\x18\x01s\x15\x08\x00", 8}};
	encode(&f, &b);
	f.type = RFD_FRAME_REQUEST_CHANNEL;
	f.flags = RFD_FLAG_COMPLETE;
	encode(&f, &b);
	f = (struct rfd_frame){.stream_id = 7,
	                       .type = RFD_FRAME_EXT,
	                       .flags = RFD_FLAG_IGNORE,
	                       .u32 = 9,
	                       .has_metadata = true,
	                       .metadata = {(const uint8_t *)"x", 1}};
	encode(&f, &b);
	f = (struct rfd_frame){.type = RFD_FRAME_METADATA_PUSH,
	                       .has_metadata = true,
	                       .metadata = {(const uint8_t *)"\x2c\x00\x00", 3}};
	encode(&f, &b);
	frame_file("control-frames", &b, FRAME_OPTIONS, FRAME_REFRAGMENT);
	append(all, b.data, b.len);
	frame_file("every-type", all, FRAME_OPTIONS, FRAME_REFRAGMENT);
	rfd_buf_free(&b);
}

/* ---- fuzz-metadata ---- */

static void
metadata_file(const char *name, uint8_t selector, const struct rfd_buf *bytes)
{
	struct rfd_buf b;

	rfd_buf_init(&b);
	append(&b, &selector, 1);
	append(&b, bytes->data, bytes->len);
	write_file("fuzz-metadata", name, b.data, b.len);
	rfd_buf_free(&b);
}

static void
gen_metadata_responses(struct rfd_buf *b)
{
	static const struct {
		const char *name;
		enum rfd_payload_kind kind;
	} kinds[] = {
	    {"response", RFD_PAYLOAD_RESPONSE},
	    {"response-declared-exception", RFD_PAYLOAD_DECLARED_EXCEPTION},
	    {"response-app-unknown-exception", RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION},
	    {"response-other-exception", RFD_PAYLOAD_OTHER_EXCEPTION},
	};
	struct rfd_response_metadata response = {
	    .has_ex_name = true,
	    .ex_name = {(const uint8_t *)"FdTestError", 11},
	    .has_ex_what = true,
	    .ex_what = {(const uint8_t *)"missing.txt", 11},
	    .fd = {.present = true, .has_seq = true, .fd_seq = 7, .has_num = true, .num_fds = 2},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char name[64];

		response.payload_kind = kinds[i].kind;
		b->len = 0;
		rfd_response_metadata_encode(&response, b);
		metadata_file(kinds[i].name, 1, b);
		b->len = 0;
		rfd_stream_payload_metadata_encode(&response, b);
		snprintf(name, sizeof(name), "stream-%s", kinds[i].name);
		metadata_file(name, 2, b);
	}
}

/* A struct with a field of every type, containers of containers, and long field ids. */
static void
gen_compact_every_type(struct rfd_buf *b)
{
	struct rfd_cw w;

	rfd_cw_init(&w, b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_bool(&w, 1, true);
	rfd_cw_field_bool(&w, 2, false);
	rfd_cw_field(&w, RFD_CT_BYTE, 3);
	rfd_cw_byte(&w, -5);
	rfd_cw_field(&w, RFD_CT_I16, 4);
	rfd_cw_i16(&w, -300);
	rfd_cw_field_i32(&w, 5, 70000);
	rfd_cw_field_i64(&w, 6, -1);
	rfd_cw_field(&w, RFD_CT_DOUBLE, 7);
	rfd_cw_double(&w, 1.5);
	rfd_cw_field(&w, RFD_CT_FLOAT, 8);
	rfd_cw_float(&w, -2.25f);
	rfd_cw_field_string(&w, 9, "text");
	rfd_cw_field(&w, RFD_CT_LIST, 10);
	rfd_cw_list_begin(&w, RFD_CT_BOOL, 3);
	rfd_cw_bool(&w, true);
	rfd_cw_bool(&w, false);
	rfd_cw_bool(&w, true);
	rfd_cw_field(&w, RFD_CT_SET, 11);
	rfd_cw_set_begin(&w, RFD_CT_I32, 16);
	for (int i = 0; i < 16; i++)
		rfd_cw_i32(&w, i * 1000);
	rfd_cw_field(&w, RFD_CT_MAP, 12);
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_LIST, 1);
	rfd_cw_string(&w, "k");
	rfd_cw_list_begin(&w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, 1);
	rfd_cw_struct_end(&w);
	rfd_cw_field(&w, RFD_CT_MAP, 13);
	rfd_cw_map_begin(&w, RFD_CT_STOP, RFD_CT_STOP, 0);
	rfd_cw_field_i32(&w, 300, 3);
	rfd_cw_field_i32(&w, -2, 4);
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

static void
gen_metadata(void)
{
	struct rfd_request_metadata request = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = {(const uint8_t *)"inspect", 7},
	    .has_kind = true,
	    .kind = RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE,
	    .has_client_timeout = true,
	    .client_timeout_ms = 5000,
	    .fd = {.present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 1},
	};
	struct rfd_response_error error = {
	    .has_name = true,
	    .name = {(const uint8_t *)"TApplicationException", 21},
	    .has_what = true,
	    .what = {(const uint8_t *)"FDs did not match", 17},
	    .has_category = true,
	    .category = RFD_ERROR_CATEGORY_INVALID_REQUEST,
	    .has_code = true,
	    .code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE,
	};
	struct rfd_setup_metadata setup = {
	    .has_min_version = true,
	    .min_version = 8,
	    .has_max_version = true,
	    .max_version = 10,
	    .has_agent = true,
	    .agent = {(const uint8_t *)"rocketfd/0.1", 12},
	};
	struct rfd_server_push push = {
	    .kind = RFD_PUSH_SETUP_RESPONSE, .has_version = true, .version = 10};
	struct rfd_buf b;

	rfd_buf_init(&b);
	rfd_request_metadata_encode(&request, &b);
	metadata_file("request-fd", 0, &b);
	metadata_file("walk-request-fd", 7, &b);
	b.len = 0;
	request.fd.fd_seq = 0x7FFFFFFFFFFFFFFF;
	request.fd.num_fds = 253;
	rfd_request_metadata_encode(&request, &b);
	metadata_file("request-253-fds-max-seq", 0, &b);
	b.len = 0;
	request.fd = (struct rfd_fd_metadata){0};
	request.kind = RFD_RPC_SINGLE_REQUEST_NO_RESPONSE;
	rfd_request_metadata_encode(&request, &b);
	metadata_file("request-oneway", 0, &b);
	b.len = 0;
	append(&b,
	       "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00\xc5\x01\x02\x0c\x2c\x16\x00\x15\x02"
	       "\x00\x00",
	       21);
	metadata_file("request-compression-fd", 0, &b);

	gen_metadata_responses(&b);

	b.len = 0;
	rfd_response_error_encode(&error, &b);
	metadata_file("response-error", 3, &b);
	b.len = 0;
	rfd_setup_metadata_encode(&setup, &b);
	metadata_file("setup", 4, &b);
	metadata_file("walk-setup", 7, &b);
	b.len = 0;
	setup.has_extensions = true;
	setup.extensions = (struct rfd_slice){(const uint8_t *)"sink,exception", 14};
	rfd_setup_metadata_encode(&setup, &b);
	metadata_file("setup-offer", 4, &b);
	b.len = 0;
	setup.has_extensions = false;
	setup.encode_metadata_using_binary = true;
	rfd_setup_metadata_encode(&setup, &b);
	metadata_file("setup-binary", 4, &b);
	/* The answer of a sink's first response, then one among other keys. */
	b.len = 0;
	rfd_response_metadata_encode(
	    &(struct rfd_response_metadata){.payload_kind = RFD_PAYLOAD_RESPONSE,
	                                    .has_extensions = true,
	                                    .extensions = {(const uint8_t *)"sink", 4}},
	    &b);
	metadata_file("response-answer", 1, &b);
	b.len = 0;
	append(&b,
	       "\x3b\x02\x88\x01\x61\x01\x62\x0c\x72\x6f\x63\x6b\x65\x74\x66\x64\x2e"
	       "\x66\x64\x73\x09\x65\x78\x63\x65\x70\x74\x69\x6f\x6e\x4c\x1c\x00\x00\x00",
	       35);
	metadata_file("response-answer-among-keys", 1, &b);
	b.len = 0;
	rfd_server_push_encode(&push, &b);
	metadata_file("push-setup-response", 5, &b);
	b.len = 0;
	push.kind = RFD_PUSH_STREAM_HEADERS;
	rfd_server_push_encode(&push, &b);
	metadata_file("push-stream-headers", 5, &b);
	b.len = 0;
	push.kind = RFD_PUSH_DRAIN_COMPLETE;
	rfd_server_push_encode(&push, &b);
	metadata_file("push-drain-complete", 5, &b);

	b.len = 0;
	gen_compact_every_type(&b);
	metadata_file("walk-every-type", 7, &b);
	metadata_file("request-unknown-fields", 0, &b);
	b.len = 0;
	append(&b, "\x0c", 1);
	gen_compact_every_type(&b);
	metadata_file("skip-struct", 6, &b);
	rfd_buf_free(&b);
}

/* ---- fuzz-cmsg ---- */

struct cmsg_desc {
	uint8_t b[4096];
	size_t len;
};

static void
c_init(struct cmsg_desc *d, uint8_t options)
{
	d->len = 0;
	d->b[d->len++] = options;
}

static void
c_u8(struct cmsg_desc *d, uint8_t v)
{
	d->b[d->len++] = v;
}

/* A cmsg of @payload bytes (FD slots when a multiple of 4 and short). */
static void
c_cmsg(struct cmsg_desc *d, uint8_t head, size_t payload)
{
	c_u8(d, head);
	if (payload % 4 == 0 && payload / 4 < CMSG_SIZE_LONG) {
		c_u8(d, (uint8_t)(payload / 4));
	} else {
		c_u8(d, (uint8_t)(CMSG_SIZE_LONG | payload >> 8));
		c_u8(d, (uint8_t)payload);
	}
}

static void
c_save(const char *name, const struct cmsg_desc *d)
{
	write_file("fuzz-cmsg", name, d->b, d->len);
}

static void
gen_cmsg(void)
{
	const uint8_t rights = CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_RIGHTS, CMSG_LEN_NATURAL);
	const uint8_t creds = CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_CREDENTIALS, CMSG_LEN_NATURAL);
	const uint8_t pidfd = CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_PIDFD, CMSG_LEN_NATURAL);
	const uint8_t ucred[12] = {0xd2, 0x04, 0, 0, 0xe8, 0x03, 0, 0, 0x64, 0, 0, 0};
	struct cmsg_desc d;

	c_init(&d, 0);
	c_cmsg(&d, rights, 4);
	c_save("one-fd", &d);

	c_init(&d, 0);
	c_cmsg(&d, rights, 253 * 4);
	c_save("253-fds", &d);

	c_init(&d, 0);
	c_cmsg(&d, rights, 200 * 4);
	c_cmsg(&d, rights, 54 * 4);
	c_save("254-fds-in-two", &d);

	c_init(&d, 0);
	c_cmsg(&d, rights, 2 * 4);
	c_cmsg(&d, rights, 3 * 4);
	c_save("two-rights", &d);

	c_init(&d, CMSG_OPT_ALLOW_CREDENTIALS);
	c_cmsg(&d, creds, sizeof(ucred));
	memcpy(d.b + d.len, ucred, sizeof(ucred));
	d.len += sizeof(ucred);
	c_cmsg(&d, rights, 4);
	c_save("credentials-then-fd", &d);
	d.b[0] = 0;
	c_save("credentials-not-enabled", &d);

	c_init(&d, CMSG_OPT_ALLOW_PIDFD | CMSG_OPT_ALLOW_CREDENTIALS);
	c_cmsg(&d, rights, 2 * 4);
	c_cmsg(&d, pidfd, 4);
	c_save("fds-and-pidfd", &d);
	d.b[0] = 0;
	c_save("pidfd-not-enabled", &d);
	d.b[0] = CMSG_OPT_ALLOW_PIDFD;
	c_cmsg(&d, pidfd, 4);
	c_save("two-pidfds", &d);

	c_init(&d, CMSG_OPT_CTRUNC);
	c_cmsg(&d, rights, 2 * 4);
	c_save("ctrunc", &d);

	/* Cut in the middle of the last FD slot, as macOS leaves it with MSG_CTRUNC. */
	c_init(&d, CMSG_OPT_CTRUNC | CMSG_OPT_ADJUST);
	c_u8(&d, (uint8_t)-6);
	c_cmsg(&d, rights, 4);
	c_cmsg(&d, rights, 3 * 4);
	c_save("ctrunc-cut-slot", &d);

	/* cmsg_len 8: shorter than a header; the walk stops there. */
	c_init(&d, 0);
	c_cmsg(&d, rights, 2 * 4);
	c_cmsg(&d, CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_RIGHTS, CMSG_LEN_BYTE), 0);
	c_u8(&d, 8);
	c_save("short-cmsg-len", &d);

	/* cmsg_len running past the control data. */
	c_init(&d, CMSG_OPT_ADJUST);
	c_u8(&d, (uint8_t)-40);
	c_cmsg(&d, rights, 20 * 4);
	c_save("cmsg-len-past-end", &d);

	c_init(&d, 0);
	c_cmsg(&d, rights, 10);
	c_u8(&d, 0xaa);
	c_u8(&d, 0xbb);
	c_cmsg(&d, rights, 4);
	c_save("payload-not-multiple-of-4", &d);

	c_init(&d, 0);
	c_cmsg(&d, rights | CMSG_HEAD_NEGATIVE, 3 * 4);
	c_u8(&d, 0x02);
	c_save("negative-fd", &d);

	c_init(&d, CMSG_OPT_ADJUST);
	c_u8(&d, 8);
	c_cmsg(&d, rights, 4);
	c_save("trailing-bytes", &d);

	c_init(&d, CMSG_OPT_ALLOW_CREDENTIALS | 3 << CMSG_OPT_ALIGN_SHIFT);
	c_cmsg(&d, creds, sizeof(ucred));
	memcpy(d.b + d.len, ucred, sizeof(ucred));
	d.len += sizeof(ucred);
	c_cmsg(&d, rights, 3 * 4);
	c_save("unaligned-buffer", &d);

	c_init(&d, CMSG_OPT_ALLOW_CREDENTIALS | CMSG_OPT_ALLOW_PIDFD);
	c_cmsg(&d, rights, 4);
	c_cmsg(&d, CMSG_HEAD(CMSG_LEVEL_IP, CMSG_TYPE_RAW8, CMSG_LEN_NATURAL), 4);
	c_u8(&d, 2); /* IP_TTL */
	c_u8(&d, 64);
	c_u8(&d, 0);
	c_u8(&d, 0);
	c_u8(&d, 0);
	c_cmsg(&d, rights, 2 * 4);
	c_save("other-level", &d);

	c_init(&d, CMSG_OPT_ALLOW_CREDENTIALS | CMSG_OPT_ALLOW_PIDFD);
	c_cmsg(&d, CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_TIMESTAMP, CMSG_LEN_NATURAL), 16);
	for (int i = 0; i < 16; i++)
		c_u8(&d, 0);
	c_cmsg(&d, rights, 4);
	c_save("timestamp", &d);

	/* An understated cmsg_len: its cmsg ends early; the next header follows. */
	c_init(&d, 0);
	c_cmsg(&d, CMSG_HEAD(CMSG_LEVEL_SOCKET, CMSG_TYPE_RIGHTS, CMSG_LEN_DELTA), 4 * 4);
	c_u8(&d, (uint8_t)-12);
	c_cmsg(&d, rights, 4);
	c_save("cmsg-len-understated", &d);

	c_init(&d, CMSG_OPT_CTRUNC);
	c_save("ctrunc-no-control-data", &d);
}

/* ---- fuzz-conn ---- */

/* Streams at a server: credit, REQUEST_N, the stream queue, CANCEL, the ends. */
static void
gen_conn_server_streams(void)
{
	struct chunks req;
	struct script s;

	/* A real client's stream request with 2 FDs asking for 3: first response and 2 items. */
	client_stream(&req, "streamFds", "\x15\x06\x15\x02\x00", 5, 2, 3);
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_EOF_AT_END);
	op_chunks(&s, &req);
	op_stream_call(&s, 0, CALL_OPEN, "\x00", 1);
	op_stream_call(&s, 0, CALL_ITEM, "\x15\x00\x00", 2);
	op_stream_call(&s, 0, CALL_ITEM, "\x15\x02\x00", 0);
	op_stream_call(&s, 0, CALL_ITEM, "\x15\x04\x00", 1); /* no credit: -EAGAIN */
	op_write(&s, 7);
	op_frame(&s,
	         &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0x40, .data = "xy"});
	op_stream_call(&s, 0, CALL_ITEM, "\x15\x04\x00", 3);
	op_stream_call(&s, 0, CALL_ITEM, "\x15\x06\x00", 1);
	op_write(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 0x40});
	op_stream_call(&s, 0, CALL_COMPLETE, "", 0); /* cancelled: -ENOENT */
	op(&s, CONN_OP_DRAIN);
	op_free(&s, 0, 1);
	save_script("server-stream-credit-cancel", &s);
	free_chunks(&req);

	/* The output fills: items wait in the stream queue, unstamped; the end waits behind them.
	 */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3,
	                                .data = "\x00\x00\x00"}); /* asks for 4 */
	op_frame(&s,
	         &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0x40, .data = "12345"});
	op_stream_call(&s, 0, CALL_OPEN, "\x00", 0);
	for (int i = 0; i < 6; i++)
		op_stream_call(&s, 0, CALL_ITEM, "\x15\x00\x00", (uint8_t)(1 + i));
	op_stream_call(&s, 0, CALL_COMPLETE, "", 0);
	op_write(&s, 3);
	op_write(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 0x40});
	op_write(&s, 0);
	op(&s, CONN_OP_DRAIN);
	save_script("server-stream-queue-cancel", &s);

	/* Exceptions and errors, before and after the first response; answers of the wrong kind. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_FREE_MSGS_FIRST);
	for (uint8_t stream = 1; stream <= 4; stream++)
		op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM, .stream = stream});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 5});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 4});
	op_stream_call(&s, 0x83, CALL_OPEN, "\x00", 0);
	op_stream_call(&s, 0x83, CALL_EXCEPTION, "\x1c\x00\x00", 0);
	op_stream_call(&s, 0x85, CALL_OPEN, "\x00", 0);
	op_stream_call(&s, 0x85, CALL_ERROR, "", 0);
	op_answer(&s, 0x87, 1, "\x1c\x00\x00", 0);
	op_stream_call(&s, 0x89, CALL_OPEN, "\x00", 1); /* cancelled: -ECANCELED */
	op_stream_call(&s, 0x8b, CALL_OPEN, "\x00", 1); /* not a stream: -EINVAL */
	op(&s, CONN_OP_DRAIN);
	save_script("server-stream-ends", &s);
}

static void
gen_conn_server_sinks(void)
{
	struct chunks req, items;
	struct script s;
	const uint8_t item = CONN_PIECES_WRONG_KIND; /* PAYLOAD NEXT without COMPLETE */
	const uint8_t open = 0x40;                   /* the first open request */

	/* A real client's sink: request with an FD, items with 1 and 2 FDs, completion. */
	client_sink(&req, &items, 1);
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_EOF_AT_END);
	op_chunks(&s, &req);
	op_sink_call(&s, open, SINK_OPEN, "\x00", 0);
	op_sink_call(&s, open, SINK_REQUEST_N, "", 3);
	op(&s, CONN_OP_DRAIN);
	op_chunks(&s, &items);
	op_sink_call(&s, open, SINK_FINISH, "\x0c\x00\x00", 2);
	op(&s, CONN_OP_DRAIN);
	op_free(&s, 1, 1);
	save_script("server-sink-real-client", &s);
	free_chunks(&items);
	free_chunks(&req);

	/*
	 * The client offers exception alone: item FDs are refused; items past the
	 * credit, whose FDs do not match, an exception, CANCEL and ERROR end sinks.
	 */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_EXTENSIONS);
	s_u8(&s, 3 | RFD_EXTENSION_EXCEPTION << 2);
	for (uint8_t stream = 1; stream <= 19; stream += 2)
		op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CHANNEL, .stream = stream / 2});
	for (uint8_t stream = 1; stream <= 11; stream += 2) {
		op_sink_call(&s, 0x80 | stream, SINK_OPEN, "\x00", 0);
		op_sink_call(&s, 0x80 | stream, SINK_REQUEST_N, "", stream == 3 ? 1 : 2);
	}
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0x81,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3}); /* FDs not agreed */
	op_frame(&s, &(struct frame_op){
	                 .kind = CONN_FRAME_STREAM_PAYLOAD, .stream = 0x83, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0x83,
	                                .pieces = item}); /* past the credit */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0x85,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 2,
	                                .pieces = item | 1 << 3}); /* FDs do not match */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_EXCEPTION, .stream = 0x87});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 0x89});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_ERROR, .stream = 0x8b});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 0x8d});
	op_sink_call(&s, 0x8d, SINK_OPEN, "\x00", 1); /* cancelled before: -ECANCELED */
	op_sink_call(&s, 0x8f, SINK_EXCEPTION, "\x1c\x00\x00", 2);
	op_sink_call(&s, 0x91, SINK_OPEN, "\x00", 0);
	op_sink_call(&s, 0x91, SINK_FINISH, "\x0c\x00\x00", 1); /* sink not agreed */
	op_sink_call(&s, 0x91, SINK_END_EXCEPTION, "\x1c\x00\x00", 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 10});
	op_sink_call(&s, 0x95, SINK_OPEN, "\x00", 0); /* not a sink: -EINVAL */
	op(&s, CONN_OP_DRAIN);
	save_script("server-sink-refusals", &s);

	/* No offer at all: no FDs on exceptions; a stream's exception too. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_EXTENSIONS);
	s_u8(&s, 3);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 0});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM, .stream = 1});
	op_sink_call(&s, 0x81, SINK_EXCEPTION, "\x1c\x00\x00", 1);
	op_sink_call(&s, 0x81, SINK_EXCEPTION, "\x1c\x00\x00", 0);
	op_stream_call(&s, 0x83, CALL_OPEN, "\x00", 0);
	op_sink_call(&s, 0x83, SINK_END_EXCEPTION, "\x1c\x00\x00", 3);
	op_sink_call(&s, 0x83, SINK_END_EXCEPTION, "\x1c\x00\x00", 0);
	op(&s, CONN_OP_DRAIN);
	save_script("server-exceptions-not-offered", &s);

	/* Fragmented items with FDs, credit that runs out, the completion, items after it. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_FREE_MSGS_FIRST);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CHANNEL,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 | 2 << 3,
	                                .fragment = 8,
	                                .data = "a sink request in fragments"});
	op_sink_call(&s, open, SINK_OPEN, "\x00", 1);
	op_sink_call(&s, open, SINK_REQUEST_N, "", 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = open,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 3 | 3 << 3,
	                                .fragment = 4,
	                                .data = "an item in fragments"});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = open});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = open,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3}); /* the last item, with COMPLETE */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = open,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3}); /* after it: ignored */
	op_write(&s, 5);
	op_sink_call(&s, open, SINK_FINISH, "\x0c\x00\x00", 3);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CHANNEL, .stream = 7, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 9});
	op(&s, CONN_OP_DRAIN);
	op_free(&s, 0, 1);
	save_script("server-sink-fragments-and-completion", &s);
}

static void
gen_conn_server(void)
{
	struct chunks req;
	struct script s;

	gen_conn_server_sinks();

	/* A real client: SETUP and a request with one FD, the FD delivered with its bytes. */
	client_request(&req, "inspect", "\x19\x1c\x00", 3, 1, false);
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_EOF_AT_END);
	op_chunks(&s, &req);
	op_answer(&s, 0, 0, "\x18\x02ok\x00", 1);
	op(&s, CONN_OP_DRAIN);
	op_free(&s, 0, 1);
	save_script("server-request-fd-reply-fd", &s);

	/* The same request read in small pieces, the FD with the first one. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_FREE_MSGS_FIRST);
	for (int i = 0; i < req.n; i++) {
		if (req.c[i].n_fds)
			op_fds(&s, req.c[i].n_fds);
		for (size_t pos = 0; pos < req.c[i].len; pos += 7)
			op_bytes(&s, req.c[i].bytes + pos,
			         req.c[i].len - pos < 7 ? req.c[i].len - pos : 7);
	}
	op_answer(&s, 0, 1, "\x1c\x00\x00", 0);
	op_write(&s, 5);
	op(&s, CONN_OP_DRAIN);
	save_script("server-request-in-pieces", &s);
	free_chunks(&req);

	client_request(&req, "record", "\x19\x1c\x00", 3, 3, true);
	s_init(&s, CONN_OPT_SERVER);
	op_chunks(&s, &req);
	op_free(&s, 0, 0);
	op(&s, CONN_OP_EOF);
	save_script("server-oneway-3-fds", &s);
	free_chunks(&req);

	/* Claim mismatches: more claimed than came, fewer, seq ahead, seq behind, none came. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	op_fds(&s, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 2});
	op_fds(&s, 3);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 2});
	op_fds(&s, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 2,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 1,
	                                .rel_seq = 5});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 3,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 1,
	                                .rel_seq = -2});
	op_frame_raw_claim(&s, CONN_FRAME_REQUEST, 4, 1, -1);
	op_frame_raw_claim(&s, CONN_FRAME_REQUEST, 5, 254, 0);
	op_frame_raw_claim(&s, CONN_FRAME_ONEWAY, 6, 1, 0x7FFFFFFFFFFFFFFF);
	op(&s, CONN_OP_DRAIN);
	save_script("server-claim-mismatches", &s);

	/* FDs with non-carriers stay queued, then become orphans of a later claim. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_EOF_AT_END);
	op_fds(&s, 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_KEEPALIVE, .data = "ping"});
	op_fds(&s, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_PUSH});
	op_frame(&s, &(struct frame_op){
	                 .kind = CONN_FRAME_STREAM_PAYLOAD, .stream = 9, .claim = CONN_CLAIM_HEAD});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 10,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 | 2 << 3});
	op_fds(&s, 4);
	op(&s, CONN_OP_DRAIN);
	save_script("server-orphans-and-eof", &s);

	/* A fragmented request whose FDs arrive with its last fragment. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 11,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 5 | 3 << 3,
	                                .fragment = 8,
	                                .data = "a fragmented request's arguments, long enough"});
	op_answer(&s, 0, 0, "\x00", 2);
	op_write(&s, 1);
	op_write(&s, 0);
	op(&s, CONN_OP_DRAIN);
	save_script("server-fragmented-request-fds", &s);

	/* Limits: cap 2, budget 4 + 4, one request in flight. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE | CONN_OPT_LIMITS);
	s_limits(&s, 1, 1, 0, 1, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 12});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 13,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_fds(&s, 2);
	op_fds(&s, 2);
	op_fds(&s, 2);
	op_fds(&s, 2);
	op(&s, CONN_OP_DRAIN);
	save_script("server-limits", &s);

	/* Declined requests still claim their FDs; a CANCEL; a second SETUP. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	for (uint8_t variant = CONN_VARIANT_NO_NAME; variant <= CONN_VARIANT_GARBAGE; variant++)
		op_frame(
		    &s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
		                           .stream = variant,
		                           .claim = CONN_CLAIM_HEAD | variant << CONN_VARIANT_SHIFT,
		                           .pieces = 1 | 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM,
	                                .stream = 20,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CHANNEL, .stream = 21});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 23,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = CONN_PIECES_WRONG_KIND | 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .stream = 22});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 0x40});
	op_answer(&s, 0, 0, "", 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_SETUP});
	op(&s, CONN_OP_DRAIN);
	save_script("server-declined-cancel-second-setup", &s);

	/* Nine fragmented requests left unfinished: one more than a receiver keeps. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	for (uint8_t stream = 30; stream < 39; stream++)
		op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
		                                .stream = stream,
		                                .claim = CONN_CLAIM_HEAD,
		                                .pieces = 1 << 3,
		                                .fragment = CONN_FRAGMENT_FIRST_ONLY | 4,
		                                .data = "arguments"});
	op(&s, CONN_OP_DRAIN);
	save_script("server-nine-unfinished-fragments", &s);

	/* A CANCEL in the middle of a fragmented request. */
	s_init(&s, CONN_OPT_SERVER | CONN_OPT_HANDSHAKE);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST,
	                                .stream = 40,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3,
	                                .fragment = CONN_FRAGMENT_FIRST_ONLY | 4,
	                                .data = "arguments"});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CANCEL, .stream = 40});
	op(&s, CONN_OP_DRAIN);
	save_script("server-cancel-inside-fragments", &s);

	/* Bad handshakes. */
	for (uint8_t variant = CONN_VARIANT_NO_NAME; variant <= CONN_VARIANT_GARBAGE; variant++) {
		char name[64];

		s_init(&s, CONN_OPT_SERVER);
		op_fds(&s, 1);
		op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_SETUP,
		                                .claim = (uint8_t)(variant << CONN_VARIANT_SHIFT)});
		op(&s, CONN_OP_DRAIN);
		snprintf(name, sizeof(name), "server-bad-setup-%u", variant);
		save_script(name, &s);
	}
	s_init(&s, CONN_OPT_SERVER);
	op_fds(&s, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST, .claim = CONN_CLAIM_HEAD});
	op(&s, CONN_OP_DRAIN);
	save_script("server-request-before-setup", &s);

	gen_conn_server_streams();
}

/* Streams at a client: a real server's items, credit, abandoned streams, violations. */
static void
gen_conn_client_streams(void)
{
	struct chunks req, reply;
	struct script s;
	const uint8_t item = CONN_PIECES_WRONG_KIND; /* PAYLOAD NEXT without COMPLETE */

	client_stream(&req, "streamFds", "\x15\x06\x15\x02\x00", 5, 1, 4);
	server_stream(&req, 2, &reply);
	s_init(&s, CONN_OPT_FREE_MSGS_FIRST);
	op_stream_request(&s, "streamFds", "\x15\x06\x15\x02\x00", 1, 4);
	op(&s, CONN_OP_DRAIN);
	op_chunks(&s, &reply);
	save_script("client-stream-real-server", &s);
	free_chunks(&reply);
	free_chunks(&req);

	/* Items with FDs, REQUEST_N, an exception that ends it; a second stream abandoned. */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_stream_request(&s, "s", "", 0, 2);
	op_stream_request(&s, "t", "", 1, 3);
	op(&s, CONN_OP_DRAIN);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3});
	op_request_n(&s, 1, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 2 << 3});
	op_request_n(&s, 1, 3);
	op_write(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3}); /* the last item, with COMPLETE */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	s_u8(&s, CONN_OP_ABANDON);
	s_u8(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 3 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_COMPLETE, .stream = 0});
	op_stream_request(&s, "u", "", 0, 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_EXCEPTION,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op(&s, CONN_OP_DRAIN);
	save_script("client-stream-items-abandon", &s);

	/* One in flight: abandoned streams are not counted, and the oldest is forgotten past one.
	 */
	s_init(&s, CONN_OPT_HANDSHAKE | CONN_OPT_LIMITS);
	s_limits(&s, 8, 8, 0, 0, 0);
	for (int i = 0; i < 3; i++) {
		op_stream_request(&s, "s", "", 0, 5);
		s_u8(&s, CONN_OP_ABANDON);
		s_u8(&s, (uint8_t)i);
	}
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0x81,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0x85,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_ERROR, .stream = 0x85});
	op(&s, CONN_OP_DRAIN);
	save_script("client-abandoned-streams-bound", &s);

	/* Contract violations, each failing the connection. */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_stream_request(&s, "s", "", 0, 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3}); /* past the credit */
	save_script("client-stream-past-credit", &s);

	s_init(&s, CONN_OPT_HANDSHAKE);
	op_stream_request(&s, "s", "", 0, 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3}); /* an item first */
	save_script("client-stream-item-first", &s);

	s_init(&s, CONN_OPT_HANDSHAKE);
	op_stream_request(&s, "s", "", 0, 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 2,
	                                .pieces = item | 1 << 3}); /* FDs do not match */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0});
	save_script("client-stream-fd-mismatch", &s);

	/*
	 * Items neither a result nor an exception (an empty payloadMetadata
	 * union, metadata cut short): each fails its stream, not the connection;
	 * the one without COMPLETE is cancelled, and what follows it is drained.
	 */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_stream_request(&s, "s", "", 0, 4);
	op_stream_request(&s, "t", "", 0, 4);
	op(&s, CONN_OP_DRAIN);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 1, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD | CONN_VARIANT_BAD_VERSION
	                                                               << CONN_VARIANT_SHIFT,
	                                .pieces = item | 1 << 3}); /* an empty union */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 1,
	                                .claim = CONN_VARIANT_GARBAGE << CONN_VARIANT_SHIFT,
	                                .data = "\x3c\x1c"}); /* cut short, COMPLETE */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0x81,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 1,
	                                .rel_seq = 4,
	                                .pieces = item | 1 << 3}); /* its claim fails: drained */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_COMPLETE, .stream = 0x81});
	op_request(&s, false, "echo", "", 1);
	op(&s, CONN_OP_DRAIN);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	save_script("client-stream-items-neither", &s);
}

static void
gen_conn_client_sinks(void)
{
	struct chunks req, items, reply;
	struct script s;
	const uint8_t item = CONN_PIECES_WRONG_KIND; /* PAYLOAD NEXT without COMPLETE */
	const uint8_t answer = CONN_VARIANT_BINARY << CONN_VARIANT_SHIFT; /* accepts sink */

	/* A real server: the first response with its answer and credit for 2. */
	client_sink(&req, &items, 1);
	server_sink(&req, 2, &reply);
	s_init(&s, CONN_OPT_FREE_MSGS_FIRST);
	op_sink_request(&s, "sinkFds", "\x18\x01s\x00", 1);
	op(&s, CONN_OP_DRAIN);
	op_chunks(&s, &reply);
	op_sink_item(&s, 0, "\x08\x00\x01a\x00", 1);
	op_sink_item(&s, 0, "\x08\x00\x01b\x00", 2);
	op_sink_item(&s, 0, "\x08\x00\x01c\x00", 1); /* no credit: -EAGAIN */
	op_write(&s, 9);
	op_sink_complete(&s, 0);
	op(&s, CONN_OP_DRAIN);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3}); /* the final response with an FD */
	save_script("client-sink-real-server", &s);
	free_chunks(&reply);
	free_chunks(&items);
	free_chunks(&req);

	/* No offer: item FDs refused; FDs on the final response and on an exception refused. */
	s_init(&s, CONN_OPT_HANDSHAKE | CONN_OPT_EXTENSIONS);
	s_u8(&s, 0);
	op_sink_request(&s, "s", "", 0);
	op_request(&s, false, "r", "", 0);
	op_frame(&s, &(struct frame_op){
	                 .kind = CONN_FRAME_REPLY, .stream = 0, .claim = answer, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0, .data = "x"});
	op_sink_item(&s, 0, "\x08\x00\x00\x00", 1); /* -EOPNOTSUPP */
	op_sink_item(&s, 0, "\x08\x00\x00\x00", 0);
	op_sink_complete(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_EXCEPTION,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 << 3});
	op(&s, CONN_OP_DRAIN);
	save_script("client-sink-not-offered", &s);

	/* Items queued behind a full output, then cancelled: dropped; the final response drained.
	 */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_sink_request(&s, "s", "", 0);
	op_frame(&s, &(struct frame_op){
	                 .kind = CONN_FRAME_REPLY, .stream = 0, .claim = answer, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0, .data = "1234"});
	for (uint8_t i = 1; i <= 4; i++)
		op_sink_item(&s, 0, "\x08\x00\x00\x00", i);
	op_write(&s, 3);
	s_u8(&s, CONN_OP_ABANDON);
	s_u8(&s, 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 << 3});
	op(&s, CONN_OP_DRAIN);
	save_script("client-sink-cancel-queued", &s);

	/* A server that ends the sink early, and one that answers with an exception and FDs. */
	s_init(&s, CONN_OPT_HANDSHAKE | CONN_OPT_FREE_MSGS_FIRST);
	op_sink_request(&s, "s", "", 0);
	op_sink_request(&s, "t", "", 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0,
	                                .claim = CONN_VARIANT_BAD_VERSION << CONN_VARIANT_SHIFT,
	                                .pieces = item}); /* accepts exception only */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REQUEST_N, .stream = 0, .data = "12"});
	op_sink_item(&s, 0, "\x08\x00\x00\x00", 1); /* -EOPNOTSUPP */
	op_sink_item(&s, 0, "\x08\x00\x00\x00", 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_EXCEPTION,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_sink_item(&s, 0, "\x08\x00\x00\x00", 0); /* over: -ENOENT */
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_EXCEPTION,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 << 3});
	op(&s, CONN_OP_DRAIN);
	save_script("client-sink-ends", &s);

	/* Contract violations: a PAYLOAD without COMPLETE after the first response; a mismatch. */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_sink_request(&s, "s", "", 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = item | 1 << 3});
	save_script("client-sink-final-without-complete", &s);

	s_init(&s, CONN_OPT_HANDSHAKE);
	op_sink_request(&s, "s", "", 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY, .stream = 0, .pieces = item});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_STREAM_PAYLOAD,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 3,
	                                .pieces = 1 << 3});
	save_script("client-sink-final-mismatch", &s);
}

static void
gen_conn_client(void)
{
	struct chunks req, reply;
	struct script s;

	/* A real server's answer: setup response and a reply with two FDs. */
	client_request(&req, "inspect", "\x19\x1c\x00", 3, 1, false);
	server_answer(&req, 2, 0, &reply);
	s_init(&s, 0);
	op_request(&s, false, "inspect", "\x19\x1c\x00", 1);
	op(&s, CONN_OP_DRAIN);
	op_chunks(&s, &reply);
	op_free(&s, 0, 2);
	save_script("client-request-fd-reply-fds", &s);
	free_chunks(&reply);

	server_answer(&req, 0, 1, &reply);
	s_init(&s, CONN_OPT_EOF_AT_END);
	op_request(&s, false, "open", "\x18\x0bmissing.txt\x00", 0);
	op_chunks(&s, &reply);
	save_script("client-exception", &s);
	free_chunks(&reply);

	server_answer(&req, 0, 2, &reply);
	s_init(&s, 0);
	op_request(&s, false, "nosuch", "", 0);
	op_chunks(&s, &reply);
	save_script("client-error-reply", &s);
	free_chunks(&reply);
	free_chunks(&req);

	/* Replies built here: right, wrong count, abandoned, fragmented, partial writes. */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_request(&s, false, "a", "", 2);
	op_request(&s, false, "b", "", 0);
	op_request(&s, false, "c", "", 0);
	op_request(&s, true, "d", "", 1);
	op_write(&s, 3);
	op_write(&s, 200);
	op(&s, CONN_OP_DRAIN);
	s_u8(&s, CONN_OP_ABANDON);
	s_u8(&s, 2);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 2 | 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 1,
	                                .claim = CONN_CLAIM_RELATIVE,
	                                .rel_num = 2,
	                                .pieces = 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_EXCEPTION,
	                                .stream = 2,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0x85,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 1 << 3});
	op_request(&s, false, "e", "", 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD | CONN_VARIANT_NO_NAME
	                                                               << CONN_VARIANT_SHIFT,
	                                .pieces = 1 << 3});
	op(&s, CONN_OP_EOF);
	save_script("client-replies-mismatch-abandoned", &s);

	s_init(&s, CONN_OPT_HANDSHAKE | CONN_OPT_FREE_MSGS_FIRST);
	op_request(&s, false, "big", "", 0);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_REPLY,
	                                .stream = 0,
	                                .claim = CONN_CLAIM_HEAD,
	                                .pieces = 4 | 4 << 3,
	                                .fragment = 10,
	                                .data = "a reply long enough to need several fragments"});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_ERROR, .stream = 0});
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_CONN_ERROR, .data = "bye"});
	save_script("client-fragmented-reply-then-errors", &s);

	/* A write that takes part of the chunk carrying FDs: the rest goes without them. */
	s_init(&s, CONN_OPT_HANDSHAKE);
	op_request(&s, false, "inspect", "\x19\x1c\x00", 2);
	op_request(&s, true, "record", "", 1);
	op_write(&s, 0);
	op(&s, CONN_OP(CONN_OP_WRITE, 8)); /* EAGAIN: the FDs stay for the next write */
	op_write(&s, 5);
	op_write(&s, 1);
	op(&s, CONN_OP_DRAIN);
	save_script("client-partial-writes-of-fd-chunks", &s);

	s_init(&s, 0);
	op_request(&s, false, "x", "", 1);
	op_frame(&s, &(struct frame_op){.kind = CONN_FRAME_PUSH,
	                                .claim = CONN_VARIANT_BAD_VERSION << CONN_VARIANT_SHIFT});
	op(&s, CONN_OP_DRAIN);
	save_script("client-bad-setup-response", &s);

	gen_conn_client_streams();
	gen_conn_client_sinks();
}

int
main(int argc, char **argv)
{
	struct rfd_buf all;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
		die(out_dir);
	rfd_buf_init(&all);
	gen_frames(&all);
	rfd_buf_free(&all);
	gen_metadata();
	gen_cmsg();
	gen_conn_server();
	gen_conn_client();
	return 0;
}
