/* SPDX-License-Identifier: MIT */
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "compact.h"
#include "fdsock.h"
#include "harness.h"

#define PROTOCOL_KEY 0xf09f9a80u

enum { READ_CHUNK = 64 * 1024, MAX_FRAME = 0xFFFFFF + 3 };

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wire_init(struct wire *w, struct conf_ctx *ctx, int sock)
{
	memset(w, 0, sizeof(*w));
	w->sock = sock;
	w->ctx = ctx;
	w->next_stream = 1;
	rfd_buf_init(&w->in);
	rfd_buf_init(&w->frame_bytes);
}

int
wire_connect(struct wire *w, struct conf_ctx *ctx, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock;

	wire_init(w, ctx, -1);
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path));
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		close(sock);
		conf_note(ctx, "connect to %s: %s", path, strerror(-r));
		return r;
	}
	w->sock = sock;
	return 0;
}

void
wire_adopt(struct wire *w, struct conf_ctx *ctx, int sock)
{
	wire_init(w, ctx, sock);
}

void
wire_drop_groups(struct wire *w)
{
	for (size_t g = 0; g < w->n_groups; g++)
		for (size_t i = 0; i < w->groups[g].n; i++)
			close(w->groups[g].fds[i]);
	w->n_groups = 0;
}

void
wire_close(struct wire *w)
{
	wire_drop_groups(w);
	if (w->sock >= 0)
		close(w->sock);
	w->sock = -1;
	rfd_buf_free(&w->in);
	rfd_buf_free(&w->frame_bytes);
}

int
wire_send(struct wire *w, const void *bytes, size_t len, const int *fds, size_t n_fds)
{
	const uint8_t *p = bytes;
	size_t sent = 0;

	while (sent < len) {
		struct pollfd pfd = {.fd = w->sock, .events = POLLOUT};
		ssize_t n = rfd_sock_send(w->sock, p + sent, len - sent, sent ? NULL : fds,
		                          sent ? 0 : n_fds);

		if (n == -EAGAIN) {
			if (poll(&pfd, 1, conf_wait_ms(w->ctx)) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0) {
			conf_note(w->ctx, "send: %s", strerror((int)-n));
			return (int)n;
		}
		sent += (size_t)n;
	}
	w->send_seq = rfd_seq_add(w->send_seq, (int64_t)n_fds);
	return 0;
}

int
wire_send_frame(struct wire *w, const struct rfd_frame *frame, const int *fds, size_t n_fds)
{
	struct rfd_buf bytes;
	int r;

	rfd_buf_init(&bytes);
	r = rfd_frame_encode(frame, &bytes);
	if (r == 0)
		r = wire_send(w, bytes.data, bytes.len, fds, n_fds);
	rfd_buf_free(&bytes);
	return r;
}

/* One read: bytes into w->in, FDs into w->groups.  >0 bytes, 0 EOF, <0 error. */
static int
read_some(struct wire *w, int timeout_ms)
{
	struct pollfd pfd = {.fd = w->sock, .events = POLLIN};
	struct rfd_cmsg_result control;
	const char *why = "";
	ssize_t n;

	if (rfd_buf_reserve(&w->in, READ_CHUNK) < 0)
		return -ENOMEM;
	for (;;) {
		n = rfd_sock_recv(w->sock, w->in.data + w->in.len, w->in.cap - w->in.len, 0,
		                  &control, &why);
		if (n != -EAGAIN)
			break;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
	}
	if (n < 0) {
		conf_note(w->ctx, "read: %s (%s)", strerror((int)-n), why);
		return (int)n;
	}
	if (control.pidfd >= 0)
		close(control.pidfd);
	if (control.n_fds) {
		struct wire_group *g;

		if (w->n_groups == sizeof(w->groups) / sizeof(w->groups[0])) {
			/* Too many unclaimed groups: drop the oldest, as orphans. */
			for (size_t i = 0; i < w->groups[0].n; i++)
				close(w->groups[0].fds[i]);
			memmove(&w->groups[0], &w->groups[1],
			        sizeof(w->groups[0]) * (w->n_groups - 1));
			w->n_groups--;
		}
		g = &w->groups[w->n_groups++];
		g->seq = w->recv_seq;
		g->n = control.n_fds;
		memcpy(g->fds, control.fds, control.n_fds * sizeof(int));
		w->recv_seq = rfd_seq_add(w->recv_seq, (int64_t)control.n_fds);
	}
	if (n == 0)
		w->eof = true;
	w->in.len += (size_t)n;
	return (int)n;
}

int
wire_read_frame(struct wire *w, struct rfd_frame *frame, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		size_t frame_len;
		const char *why;
		int r = rfd_frame_split(w->in.data, w->in.len, MAX_FRAME, &frame_len, &why);

		if (r < 0) {
			conf_note(w->ctx, "unreadable frame length: %s", why);
			return -EBADMSG;
		}
		if (r == 1) {
			w->frame_bytes.len = 0;
			if (rfd_buf_append(&w->frame_bytes, w->in.data, frame_len) < 0)
				return -ENOMEM;
			rfd_buf_consume(&w->in, frame_len);
			if (rfd_frame_decode(w->frame_bytes.data + 3, frame_len - 3, frame, &why) <
			    0) {
				conf_note(w->ctx, "malformed frame from the target: %s", why);
				return -EBADMSG;
			}
			return 1;
		}
		if (w->eof)
			return 0;
		{
			long long left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			r = read_some(w, (int)left);
		}
		if (r == 0)
			return 0;
		if (r == -ECONNRESET)
			return 0;
		if (r < 0)
			return r;
	}
}

int
wire_wait_eof(struct wire *w, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (!w->eof) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return 0;
		r = read_some(w, (int)left);
		if (r == 0 || r == -ECONNRESET || r == -EPIPE)
			return 1;
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0)
			return 1;
		w->in.len = 0; /* bytes after the failure are not looked at */
	}
	return 1;
}

bool
wire_take_group(struct wire *w, struct wire_group *out)
{
	if (w->n_groups == 0)
		return false;
	*out = w->groups[0];
	memmove(&w->groups[0], &w->groups[1], sizeof(w->groups[0]) * (w->n_groups - 1));
	w->n_groups--;
	return true;
}

/* ---- Client side ---- */

void
wire_encode_setup(struct rfd_buf *out, uint32_t key, int32_t min_version, int32_t max_version)
{
	static const char agent[] = "rfd-conform";
	struct rfd_setup_metadata md = {
	    .has_min_version = true,
	    .min_version = min_version,
	    .has_max_version = true,
	    .max_version = max_version,
	    .has_agent = true,
	    .agent = {(const uint8_t *)agent, sizeof(agent) - 1},
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
	struct rfd_buf meta;

	rfd_buf_init(&meta);
	rfd_buf_put_u32(&meta, key);
	rfd_setup_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode(&frame, out);
	rfd_buf_free(&meta);
}

int
wire_handshake(struct wire *w)
{
	struct rfd_buf bytes;
	struct rfd_frame frame;
	struct rfd_server_push push;
	const char *why;
	int r;

	rfd_buf_init(&bytes);
	wire_encode_setup(&bytes, PROTOCOL_KEY, 8, 10);
	r = wire_send(w, bytes.data, bytes.len, NULL, 0);
	rfd_buf_free(&bytes);
	if (r < 0)
		return r;
	r = wire_read_frame(w, &frame, conf_wait_ms(w->ctx));
	if (r <= 0) {
		conf_note(w->ctx, "no setup response (%s)", r == 0 ? "EOF" : strerror(-r));
		return r == 0 ? -ECONNRESET : r;
	}
	if (frame.type != RFD_FRAME_METADATA_PUSH ||
	    rfd_server_push_decode(frame.metadata.ptr, frame.metadata.len, &push, &why) < 0 ||
	    push.kind != RFD_PUSH_SETUP_RESPONSE) {
		conf_note(w->ctx, "first frame from the server is %s, not a setup response",
		          rfd_frame_type_name(frame.type));
		return -EPROTO;
	}
	return 0;
}

void
wire_encode_request(struct rfd_buf *out, uint8_t type, uint32_t stream_id, const char *method,
                    const void *args, size_t args_len, const struct rfd_fd_metadata *claim)
{
	struct rfd_request_metadata md = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = {(const uint8_t *)method, strlen(method)},
	    .has_kind = true,
	    .kind = type == RFD_FRAME_REQUEST_FNF ? RFD_RPC_SINGLE_REQUEST_NO_RESPONSE
	                                          : RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE,
	};
	struct rfd_frame frame = {
	    .stream_id = stream_id,
	    .type = type,
	    .has_metadata = true,
	    .data = {args, args_len},
	};
	struct rfd_buf meta;

	if (claim)
		md.fd = *claim;
	rfd_buf_init(&meta);
	rfd_request_metadata_encode(&md, &meta);
	frame.metadata.ptr = meta.data;
	frame.metadata.len = meta.len;
	rfd_frame_encode_fragmented(&frame, RFD_FRAGMENT_DEFAULT, out);
	rfd_buf_free(&meta);
}

uint16_t
wire_undefined_flags(uint8_t type, uint16_t flags)
{
	uint16_t defined;

	switch (type) {
	case RFD_FRAME_SETUP:
		defined = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE;
		break;
	case RFD_FRAME_KEEPALIVE:
		defined = RFD_FLAG_FOLLOWS;
		break;
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
		defined = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS;
		break;
	case RFD_FRAME_REQUEST_CHANNEL:
		defined = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE;
		break;
	case RFD_FRAME_REQUEST_N:
	case RFD_FRAME_CANCEL:
	case RFD_FRAME_ERROR:
		defined = 0;
		break;
	case RFD_FRAME_PAYLOAD:
		defined = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE | RFD_FLAG_NEXT;
		break;
	case RFD_FRAME_METADATA_PUSH:
		defined = RFD_FLAG_METADATA;
		break;
	case RFD_FRAME_EXT:
		defined = RFD_FLAG_IGNORE | RFD_FLAG_METADATA;
		break;
	default:
		return 0;
	}
	return flags & (uint16_t) ~(defined | RFD_FLAG_RESERVED_MASK);
}

uint32_t
wire_stream_id(struct wire *w)
{
	uint32_t id = w->next_stream;

	w->next_stream += 2;
	return id;
}

struct rfd_fd_metadata
wire_claim(const struct wire *w, int32_t n)
{
	struct rfd_fd_metadata md = {0};

	if (n == 0)
		return md;
	md.present = true;
	md.has_seq = true;
	md.fd_seq = w->send_seq;
	md.has_num = true;
	md.num_fds = n;
	return md;
}

/* Take the group a reply claims, closing older ones, as a receiver of the spec does. */
static void
claim_reply_fds(struct wire *w, struct wire_reply *reply)
{
	const struct rfd_fd_metadata *claim = &reply->md.fd;

	reply->fds.n = 0;
	reply->fds_matched = !claim->present || !claim->has_num || claim->num_fds == 0;
	if (reply->fds_matched)
		return;
	while (w->n_groups && rfd_seq_before(w->groups[0].seq, claim->fd_seq)) {
		struct wire_group orphan = {0};

		wire_take_group(w, &orphan);
		conf_note(w->ctx, "closing %zu FDs (seq %lld) that no reply claimed", orphan.n,
		          (long long)orphan.seq);
		for (size_t i = 0; i < orphan.n; i++)
			close(orphan.fds[i]);
	}
	if (w->n_groups && w->groups[0].seq == claim->fd_seq) {
		wire_take_group(w, &reply->fds);
		reply->fds_matched = (int64_t)reply->fds.n == claim->num_fds;
	}
}

int
wire_read_reply(struct wire *w, uint32_t stream_id, struct wire_reply *reply, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	const char *why;

	memset(reply, 0, sizeof(*reply));
	rfd_buf_init(&reply->data);
	for (;;) {
		struct rfd_frame frame;
		long long left = deadline - now_ms();
		int r = left > 0 ? wire_read_frame(w, &frame, (int)left) : -ETIMEDOUT;

		if (r <= 0)
			return r;
		if (frame.stream_id != stream_id ||
		    (frame.type != RFD_FRAME_PAYLOAD && frame.type != RFD_FRAME_ERROR)) {
			conf_note(w->ctx, "skipping %s on stream %u",
			          rfd_frame_type_name(frame.type), frame.stream_id);
			continue;
		}
		reply->type = frame.type;
		if (frame.type == RFD_FRAME_ERROR) {
			reply->error_code = frame.u32;
			reply->error_decoded =
			    rfd_response_error_decode(frame.data.ptr, frame.data.len, &reply->error,
			                              &why) == 0;
			/* The slices point into the frame: keep a copy of the text. */
			rfd_buf_append(&reply->data, frame.data.ptr, frame.data.len);
			if (reply->error_decoded)
				rfd_response_error_decode(reply->data.data, reply->data.len,
				                          &reply->error, &why);
			return 1;
		}
		if (rfd_response_metadata_decode(frame.metadata.ptr, frame.metadata.len, &reply->md,
		                                 &why) < 0) {
			conf_note(w->ctx, "unreadable response metadata: %s", why);
			return -EBADMSG;
		}
		rfd_buf_append(&reply->data, frame.data.ptr, frame.data.len);
		claim_reply_fds(w, reply);
		return 1;
	}
}

void
wire_reply_free(struct wire_reply *reply)
{
	for (size_t i = 0; i < reply->fds.n; i++)
		close(reply->fds.fds[i]);
	reply->fds.n = 0;
	rfd_buf_free(&reply->data);
}

/* ---- Streams and sinks ---- */

enum {
	CLIENT_METADATA_FIELD = 9,   /* RequestSetupMetadata.clientMetadata */
	OTHER_METADATA_FIELD = 3,    /* ClientMetadata.otherMetadata */
	STREAM_PAYLOAD_METADATA = 3, /* StreamPayloadMetadata.payloadMetadata */
	STREAM_FD_METADATA = 5,      /* StreamPayloadMetadata.fdMetadata */
};

/* RequestSetupMetadata {3: min, 4: max, 9: {1: agent, 3: {key: @offer}}}. */
static int
put_setup_offer_metadata(struct rfd_buf *out, const char *offer)
{
	static const char agent[] = "rfd-conform";
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 3, 8);
	rfd_cw_field_i32(&w, 4, 10);
	rfd_cw_field(&w, RFD_CT_STRUCT, CLIENT_METADATA_FIELD);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 1, agent);
	if (offer) {
		rfd_cw_field(&w, RFD_CT_MAP, OTHER_METADATA_FIELD);
		rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
		rfd_cw_string(&w, WIRE_EXTENSIONS_KEY);
		rfd_cw_string(&w, offer);
	}
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

void
wire_encode_setup_offer(struct rfd_buf *out, const char *offer)
{
	struct rfd_frame frame = {
	    .type = RFD_FRAME_SETUP,
	    .version_major = 1,
	    .keepalive_ms = 0x7FFFFFFF,
	    .max_lifetime_ms = 0x7FFFFFFF,
	    .metadata_mime = {(const uint8_t *)"application/x-rocket-metadata+compact", 37},
	    .data_mime = {(const uint8_t *)"application/x-rocket-payload", 28},
	    .has_metadata = true,
	};
	struct rfd_buf meta;

	rfd_buf_init(&meta);
	rfd_buf_put_u32(&meta, PROTOCOL_KEY);
	if (put_setup_offer_metadata(&meta, offer) == 0) {
		frame.metadata.ptr = meta.data;
		frame.metadata.len = meta.len;
		rfd_frame_encode(&frame, out);
	}
	rfd_buf_free(&meta);
}

int
wire_handshake_offer(struct wire *w, const char *offer)
{
	struct rfd_buf bytes;
	struct rfd_frame frame;
	struct rfd_server_push push;
	const char *why;
	int r;

	rfd_buf_init(&bytes);
	wire_encode_setup_offer(&bytes, offer);
	r = bytes.len ? wire_send(w, bytes.data, bytes.len, NULL, 0) : -ENOMEM;
	rfd_buf_free(&bytes);
	if (r < 0)
		return r;
	r = wire_read_frame(w, &frame, conf_wait_ms(w->ctx));
	if (r <= 0) {
		conf_note(w->ctx, "no setup response (%s)", r == 0 ? "EOF" : strerror(-r));
		return r == 0 ? -ECONNRESET : r;
	}
	if (frame.type != RFD_FRAME_METADATA_PUSH ||
	    rfd_server_push_decode(frame.metadata.ptr, frame.metadata.len, &push, &why) < 0 ||
	    push.kind != RFD_PUSH_SETUP_RESPONSE) {
		conf_note(w->ctx, "first frame from the server is %s, not a setup response",
		          rfd_frame_type_name(frame.type));
		return -EPROTO;
	}
	return 0;
}

/* A frame of @type_flags on @stream_id: [u32 @prefix], [u24 metadata length, metadata], data. */
static void
put_raw_frame(struct rfd_buf *out, uint32_t stream_id, uint16_t type_flags, const uint32_t *prefix,
              const struct rfd_buf *metadata, const void *data, size_t len)
{
	size_t length = 6 + (prefix ? 4 : 0) + (metadata ? 3 + metadata->len : 0) + len;

	rfd_buf_put_u24(out, (uint32_t)length);
	rfd_buf_put_u32(out, stream_id);
	rfd_buf_put_u16(out, type_flags);
	if (prefix)
		rfd_buf_put_u32(out, *prefix);
	if (metadata) {
		rfd_buf_put_u24(out, (uint32_t)metadata->len);
		rfd_buf_append(out, metadata->data, metadata->len);
	}
	if (len)
		rfd_buf_append(out, data, len);
}

void
wire_encode_stream_request(struct rfd_buf *out, uint32_t stream_id,
                           const struct wire_stream_request *req)
{
	struct rfd_request_metadata md = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = {(const uint8_t *)req->method, strlen(req->method)},
	    .has_kind = req->kind >= 0,
	    .kind = req->kind,
	    .has_client_timeout = req->client_timeout_ms > 0,
	    .client_timeout_ms = req->client_timeout_ms,
	};
	struct rfd_buf meta;

	if (req->claim)
		md.fd = *req->claim;
	rfd_buf_init(&meta);
	rfd_request_metadata_encode(&md, &meta);
	put_raw_frame(out, stream_id, (uint16_t)(req->type << 10 | RFD_FLAG_METADATA),
	              &req->initial_n, &meta, req->args, req->args_len);
	rfd_buf_free(&meta);
}

void
wire_encode_request_n(struct rfd_buf *out, uint32_t stream_id, uint32_t n)
{
	put_raw_frame(out, stream_id, RFD_FRAME_REQUEST_N << 10, &n, NULL, NULL, 0);
}

void
wire_encode_cancel(struct rfd_buf *out, uint32_t stream_id)
{
	put_raw_frame(out, stream_id, RFD_FRAME_CANCEL << 10, NULL, NULL, NULL, 0);
}

void
wire_encode_error(struct rfd_buf *out, uint32_t stream_id, uint32_t code, const void *data,
                  size_t len)
{
	put_raw_frame(out, stream_id, RFD_FRAME_ERROR << 10, &code, NULL, data, len);
}

void
wire_encode_stream_payload(struct rfd_buf *out, uint32_t stream_id, uint16_t flags, bool metadata,
                           const struct rfd_fd_metadata *claim, const void *data, size_t len)
{
	struct rfd_frame frame = {
	    .stream_id = stream_id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = flags,
	    .has_metadata = metadata,
	    .data = {data, len},
	};
	struct rfd_buf meta;
	struct rfd_cw w;

	rfd_buf_init(&meta);
	if (metadata && (flags & RFD_FLAG_NEXT)) {
		rfd_cw_init(&w, &meta);
		rfd_cw_struct_begin(&w);
		rfd_cw_field(&w, RFD_CT_STRUCT, STREAM_PAYLOAD_METADATA);
		rfd_cw_struct_begin(&w);
		rfd_cw_field(&w, RFD_CT_STRUCT, 1);
		rfd_cw_struct_begin(&w);
		rfd_cw_struct_end(&w);
		rfd_cw_struct_end(&w);
		if (claim && claim->present) {
			rfd_cw_field(&w, RFD_CT_STRUCT, STREAM_FD_METADATA);
			rfd_cw_struct_begin(&w);
			if (claim->has_seq)
				rfd_cw_field_i64(&w, 1, claim->fd_seq);
			if (claim->has_num)
				rfd_cw_field_i32(&w, 2, claim->num_fds);
			rfd_cw_struct_end(&w);
		}
		rfd_cw_struct_end(&w);
		rfd_cw_finish(&w);
	} else if (metadata) {
		rfd_buf_put_u8(&meta, 0); /* the empty StreamPayloadMetadata of a completion */
	}
	frame.metadata = (struct rfd_slice){meta.data, meta.len};
	rfd_frame_encode_fragmented(&frame, RFD_FRAGMENT_DEFAULT, out);
	rfd_buf_free(&meta);
}

/* Read the map<string, string> of the current field, keeping its last @key entry. */
static int
read_string_map(struct rfd_cr *r, const struct rfd_cr_field *f, struct rfd_slice *value,
                bool *found)
{
	uint8_t key_type, value_type;
	uint32_t n;
	int ret;

	if (f->type != RFD_CT_MAP)
		return rfd_cr_skip_field(r, f);
	ret = rfd_cr_map_begin(r, &key_type, &value_type, &n);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < n && ret >= 0; i++) {
		struct rfd_slice k = {NULL, 0}, v = {NULL, 0};

		if (key_type != RFD_CT_BINARY || value_type != RFD_CT_BINARY) {
			ret = rfd_cr_skip(r, key_type);
			if (ret >= 0)
				ret = rfd_cr_skip(r, value_type);
			continue;
		}
		ret = rfd_cr_binary(r, &k);
		if (ret >= 0)
			ret = rfd_cr_binary(r, &v);
		if (ret >= 0 && k.len == strlen(WIRE_EXTENSIONS_KEY) &&
		    memcmp(k.ptr, WIRE_EXTENSIONS_KEY, k.len) == 0) {
			*value = v;
			*found = true;
		}
	}
	return ret < 0 ? ret : rfd_cr_map_end(r);
}

int
wire_extension_value(const uint8_t *bytes, size_t len, int16_t field, struct rfd_slice *value)
{
	struct rfd_cr r;
	struct rfd_cr_field f;
	bool found = false;
	int ret;

	*value = (struct rfd_slice){NULL, 0};
	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0)
		ret = f.id == field ? read_string_map(&r, &f, value, &found)
		                    : rfd_cr_skip_field(&r, &f);
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	if (ret < 0)
		return -EBADMSG;
	return found ? 1 : 0;
}

bool
wire_extension_named(struct rfd_slice value, const char *name)
{
	const uint8_t *p = value.ptr, *end = value.ptr + value.len;

	while (p && p <= end) {
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		const uint8_t *item_end = comma ? comma : end;

		while (p < item_end && (*p == ' ' || *p == '\t'))
			p++;
		while (item_end > p && (item_end[-1] == ' ' || item_end[-1] == '\t'))
			item_end--;
		if ((size_t)(item_end - p) == strlen(name) && memcmp(p, name, strlen(name)) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* ---- Pipes ---- */

int
wire_pipe(int *read_end, int *write_end)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	*read_end = fds[0];
	*write_end = fds[1];
	return 0;
}

int
wire_expect_eof(int read_end, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = {.fd = read_end, .events = POLLIN};
		long long left = deadline - now_ms();
		char byte;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return 0;
		if (read(read_end, &byte, 1) == 0)
			return 1;
	}
}
