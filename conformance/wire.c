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
