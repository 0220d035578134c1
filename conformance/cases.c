/* SPDX-License-Identifier: MIT */
#include "cases.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "target.h"

enum { FD_SETTLE_MS = 2000 };

enum conf_result
case_connect(struct conf_ctx *ctx, struct wire *w)
{
	int r = wire_connect(w, ctx, ctx->socket_path);

	if (r < 0)
		return conf_fail(ctx, "cannot connect to %s: %s", ctx->socket_path, strerror(-r));
	r = wire_handshake(w);
	if (r < 0) {
		wire_close(w);
		return conf_fail(ctx, "SETUP was not answered with a setup response (%s)",
		                 strerror(-r));
	}
	return CONF_PASS;
}

uint32_t
case_send_call(struct conf_ctx *ctx, struct wire *w, uint8_t type, const char *method,
               const char *text, const int *fds, size_t n_fds, const struct rfd_fd_metadata *claim)
{
	struct fdt_bytes args = {0};
	struct rfd_fd_metadata correct = wire_claim(w, (int32_t)n_fds);
	struct rfd_buf bytes;
	uint32_t stream_id = wire_stream_id(w);
	int r;

	r = text ? fdt_encode_args(text, &args) : fdt_encode_empty_args(&args);
	if (r < 0) {
		conf_fail(ctx, "cannot encode the arguments: %s", strerror(-r));
		return 0;
	}
	rfd_buf_init(&bytes);
	wire_encode_request(&bytes, type, stream_id, method, args.data, args.len,
	                    claim ? claim : &correct);
	fdt_bytes_free(&args);
	r = wire_send(w, bytes.data, bytes.len, fds, n_fds);
	rfd_buf_free(&bytes);
	if (r < 0) {
		conf_fail(ctx, "cannot send the %s request: %s", method, strerror(-r));
		return 0;
	}
	return stream_id;
}

enum conf_result
case_read_reply(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id, struct wire_reply *reply)
{
	int r = wire_read_reply(w, stream_id, reply, conf_wait_ms(ctx));

	if (r == 1)
		return CONF_PASS;
	wire_reply_free(reply);
	if (r == 0)
		return conf_fail(ctx, "the server closed the connection instead of answering");
	if (r == -ETIMEDOUT)
		return conf_fail(ctx, "no answer on stream %u within %d ms", stream_id,
		                 conf_wait_ms(ctx));
	return conf_fail(ctx, "could not read the answer: %s", strerror(-r));
}

enum conf_result
case_expect_report(struct conf_ctx *ctx, struct wire_reply *reply, struct fdt_report *report)
{
	const char *why = "";

	if (reply->type == RFD_FRAME_ERROR) {
		bool text = reply->error_decoded && reply->error.has_what;

		return conf_fail(ctx, "expected a report, got ERROR 0x%x: %.*s", reply->error_code,
		                 text ? (int)reply->error.what.len : 0,
		                 text ? (const char *)reply->error.what.ptr : "");
	}
	if (reply->md.payload_kind != RFD_PAYLOAD_RESPONSE &&
	    reply->md.payload_kind != RFD_PAYLOAD_NONE)
		return conf_fail(ctx, "expected a report, got an exception");
	if (fdt_decode_report_result(reply->data.data, reply->data.len, report, &why) < 0)
		return conf_fail(ctx, "the FdReport does not decode: %s", why);
	return CONF_PASS;
}

enum conf_result
case_expect_fd_error(struct conf_ctx *ctx, const struct wire_reply *reply)
{
	if (reply->type != RFD_FRAME_ERROR)
		return conf_fail(ctx, "expected ERROR INVALID (0x204), got a PAYLOAD");
	if (reply->error_code != RFD_ERROR_INVALID)
		return conf_fail(ctx, "expected ERROR code 0x204 (INVALID), got 0x%x",
		                 reply->error_code);
	if (!reply->error_decoded)
		return conf_fail(ctx, "the ERROR data is not a Compact ResponseRpcError");
	if (!reply->error.has_code || reply->error.code != RFD_ERROR_CODE_REQUEST_PARSING_FAILURE)
		return conf_fail(ctx,
		                 "ResponseRpcError.code is %d, not REQUEST_PARSING_FAILURE (6)",
		                 reply->error.has_code ? reply->error.code : -1);
	return CONF_PASS;
}

int
case_fd_baseline(const struct conf_ctx *ctx)
{
	return ctx->target_pid > 0 ? target_stable_fds(ctx->target_pid, FD_SETTLE_MS) : -1;
}

bool
case_fd_settled(struct conf_ctx *ctx, int baseline, int *now)
{
	int n;

	if (baseline < 0)
		return true;
	n = target_settle_fds(ctx->target_pid, baseline, FD_SETTLE_MS);
	if (now)
		*now = n;
	if (n > baseline)
		conf_note(ctx, "target had %d FDs open before, %d after", baseline, n);
	return n <= baseline;
}

int
case_pipes(int *readers, int *writers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = wire_pipe(&readers[i], &writers[i]);

		if (r < 0) {
			case_close_all(readers, i);
			case_close_all(writers, i);
			return r;
		}
	}
	return 0;
}

void
case_close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int
case_all_eof(struct conf_ctx *ctx, const int *readers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!wire_expect_eof(readers[i], conf_wait_ms(ctx)))
			return (int)i;
	return -1;
}

bool
case_closed_now(int read_end)
{
	struct pollfd pfd = {.fd = read_end, .events = POLLIN};
	char byte;

	if (poll(&pfd, 1, 0) <= 0)
		return false;
	return read(read_end, &byte, 1) == 0;
}

bool
case_utf8_text(const uint8_t *bytes, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	while (i < len) {
		uint8_t lead = bytes[i++];
		size_t more;

		if (lead < 0x80)
			continue;
		if (lead >= 0xC2 && lead <= 0xDF)
			more = 1;
		else if ((lead & 0xF0) == 0xE0)
			more = 2;
		else if (lead >= 0xF0 && lead <= 0xF4)
			more = 3;
		else
			return false;
		if (len - i < more)
			return false;
		for (; more > 0; more--)
			if ((bytes[i++] & 0xC0) != 0x80)
				return false;
	}
	return true;
}

/* Take the group @claim names, closing older ones, as a receiver of the spec does. */
static void
claim_group(struct wire *w, struct wire_reply *reply)
{
	const struct rfd_fd_metadata *claim = &reply->md.fd;

	reply->fds.n = 0;
	reply->fds_matched = !claim->present || !claim->has_num || claim->num_fds == 0;
	if (reply->fds_matched || !claim->has_seq)
		return;
	while (w->n_groups && rfd_seq_before(w->groups[0].seq, claim->fd_seq)) {
		struct wire_group orphan;

		wire_take_group(w, &orphan);
		conf_note(w->ctx, "closing %zu FDs (seq %lld) that no answer claimed", orphan.n,
		          (long long)orphan.seq);
		case_close_all(orphan.fds, orphan.n);
	}
	if (w->n_groups && w->groups[0].seq == claim->fd_seq) {
		wire_take_group(w, &reply->fds);
		reply->fds_matched = (int64_t)reply->fds.n == claim->num_fds;
	}
}

static enum conf_result
answer_error_on_zero(struct conf_ctx *ctx, const struct rfd_frame *frame, uint32_t stream_id)
{
	return conf_fail(ctx,
	                 "instead of answering stream %u the server failed the connection: ERROR "
	                 "0x%x on stream 0: %.*s",
	                 stream_id, frame->u32,
	                 (int)(frame->data.len > 200 ? 200 : frame->data.len),
	                 (const char *)frame->data.ptr);
}

/* The answer is complete as @frame: keep its parts, decode its metadata, claim its FDs. */
static enum conf_result
answer_complete(struct conf_ctx *ctx, struct wire *w, const struct rfd_frame *frame,
                struct case_answer *answer)
{
	struct wire_reply *reply = &answer->reply;
	const char *why = "";

	reply->type = frame->type;
	answer->flags = frame->flags;
	if (rfd_buf_append(&reply->data, frame->data.ptr, frame->data.len) < 0)
		return conf_fail(ctx, "out of memory");
	if (frame->type == RFD_FRAME_ERROR) {
		reply->error_code = frame->u32;
		reply->error_decoded = rfd_response_error_decode(reply->data.data, reply->data.len,
		                                                 &reply->error, &why) == 0;
		return CONF_PASS;
	}
	if (!frame->has_metadata)
		return conf_fail(ctx, "the PAYLOAD answering stream %u has no metadata",
		                 frame->stream_id);
	if (rfd_response_metadata_decode(frame->metadata.ptr, frame->metadata.len, &reply->md,
	                                 &why) < 0)
		return conf_fail(ctx,
		                 "the ResponseRpcMetadata answering stream %u does not decode: %s",
		                 frame->stream_id, why);
	claim_group(w, reply);
	return CONF_PASS;
}

/* One frame while waiting for @stream_id: 1 when the answer is complete, 0 to go on. */
static int
answer_frame(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id, bool strict,
             struct rfd_reassembly *ra, const struct rfd_frame *frame, struct case_answer *answer,
             enum conf_result *result)
{
	struct rfd_frame whole;
	const char *why = "";
	int r;

	if (frame->stream_id == 0 && frame->type == RFD_FRAME_ERROR) {
		*result = answer_error_on_zero(ctx, frame, stream_id);
		return 1;
	}
	if (stream_id == CASE_ANY_STREAM && frame->stream_id != 0 &&
	    (frame->type == RFD_FRAME_PAYLOAD || frame->type == RFD_FRAME_ERROR))
		stream_id = answer->stream_id = frame->stream_id;
	if (frame->stream_id != stream_id) {
		if (ra->active)
			answer->interleaved = true;
		if (strict &&
		    (frame->type == RFD_FRAME_PAYLOAD || frame->type == RFD_FRAME_ERROR)) {
			*result = conf_fail(
			    ctx,
			    "while waiting for the answer on stream %u, the server "
			    "sent %s on stream %u, which it was not asked to answer",
			    stream_id, rfd_frame_type_name(frame->type), frame->stream_id);
			return 1;
		}
		conf_note(ctx, "skipping %s on stream %u", rfd_frame_type_name(frame->type),
		          frame->stream_id);
		return 0;
	}
	if (frame->type != RFD_FRAME_PAYLOAD && frame->type != RFD_FRAME_ERROR) {
		*result = conf_fail(ctx, "stream %u was answered with %s, not PAYLOAD or ERROR",
		                    stream_id, rfd_frame_type_name(frame->type));
		return 1;
	}
	if (answer->n_frames++ == 0)
		answer->first_flags = frame->flags;
	if (frame->type == RFD_FRAME_ERROR && !ra->active) {
		*result = answer_complete(ctx, w, frame, answer);
		return 1;
	}
	r = rfd_reassembly_add(ra, frame, &whole, &why);
	if (r < 0) {
		*result = conf_fail(ctx, "the answer on stream %u cannot be reassembled: %s",
		                    stream_id, why);
		return 1;
	}
	if (r == 0)
		return 0;
	*result = answer_complete(ctx, w, &whole, answer);
	return 1;
}

enum conf_result
case_read_answer(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id, bool strict,
                 int timeout_ms, struct case_answer *answer)
{
	enum { MAX_ANSWER = 80 * 1024 * 1024 };
	struct rfd_reassembly ra;
	enum conf_result result = CONF_PASS;
	int64_t received_before = w->recv_seq;

	memset(answer, 0, sizeof(*answer));
	answer->stream_id = stream_id;
	rfd_buf_init(&answer->reply.data);
	rfd_reassembly_init(&ra, MAX_ANSWER);
	for (;;) {
		struct rfd_frame frame;
		int r = wire_read_frame(w, &frame, timeout_ms);

		if (r == 0) {
			result = conf_fail(ctx,
			                   "the server closed the connection instead of "
			                   "answering stream %u",
			                   stream_id);
			break;
		}
		if (r == -ETIMEDOUT) {
			result = conf_fail(ctx, "no answer on stream %u within %d ms", stream_id,
			                   timeout_ms);
			break;
		}
		if (r < 0) {
			result = conf_fail(ctx, "could not read the answer on stream %u: %s",
			                   stream_id, strerror(-r));
			break;
		}
		if (answer_frame(ctx, w, answer->stream_id, strict, &ra, &frame, answer, &result))
			break;
	}
	rfd_reassembly_free(&ra);
	answer->stray_fds = (w->recv_seq - received_before) - (int64_t)answer->reply.fds.n;
	if (result != CONF_PASS)
		case_answer_free(answer);
	return result;
}

void
case_answer_free(struct case_answer *answer)
{
	wire_reply_free(&answer->reply);
}

enum conf_result
case_expect_rpc_error(struct conf_ctx *ctx, const struct case_answer *answer, const char *what,
                      uint32_t code, int32_t category, int32_t rpc_code)
{
	const struct wire_reply *reply = &answer->reply;
	const struct rfd_response_error *e = &reply->error;

	if (reply->type != RFD_FRAME_ERROR)
		return conf_fail(ctx,
		                 "%s: expected ERROR 0x%x (category %d, code %d), got a PAYLOAD: "
		                 "the request was served",
		                 what, code, category, rpc_code);
	if (reply->error_code != code)
		return conf_fail(ctx, "%s: expected ERROR code 0x%x, got 0x%x", what, code,
		                 reply->error_code);
	if (!reply->error_decoded)
		return conf_fail(ctx, "%s: the ERROR's data is not a Compact ResponseRpcError",
		                 what);
	if (!e->has_category || e->category != category)
		return conf_fail(ctx, "%s: ResponseRpcError.category is %d, expected %d", what,
		                 e->has_category ? e->category : -1, category);
	if (!e->has_code || e->code != rpc_code)
		return conf_fail(ctx, "%s: ResponseRpcError.code is %d, expected %d", what,
		                 e->has_code ? e->code : -1, rpc_code);
	/* FdTest's texts may hold any bytes (17.1): only their presence is checked. */
	if (!e->has_what || e->what.len == 0)
		return conf_fail(ctx, "%s: ResponseRpcError.what_utf8 is missing or empty", what);
	if (answer->stray_fds != 0)
		return conf_fail(ctx, "%s: %lld FDs arrived with the ERROR frame", what,
		                 (long long)answer->stray_fds);
	return CONF_PASS;
}
