/* SPDX-License-Identifier: MIT */
#include "cases.h"

#include <errno.h>
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
case_read_reply(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id,
		struct wire_reply *reply)
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
		return conf_fail(ctx, "ResponseRpcError.code is %d, not REQUEST_PARSING_FAILURE (6)",
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
