/* SPDX-License-Identifier: MIT */
/*
 * Cases for a server under test: the harness is the client.  Each case
 * names the requirements it checks; spec/fd-passing.md has their text.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cases.h"
#include "target.h"

#define PROTOCOL_KEY 0xf09f9a80u

/* ---- SETUP ---- */

static enum conf_result
setup_accepted(struct conf_ctx *ctx)
{
	struct rfd_buf bytes;
	struct rfd_frame frame;
	struct rfd_server_push push;
	struct wire w;
	const char *why;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect");
	rfd_buf_init(&bytes);
	wire_encode_setup(&bytes, PROTOCOL_KEY, 8, 10);
	r = wire_send(&w, bytes.data, bytes.len, NULL, 0);
	rfd_buf_free(&bytes);
	if (r == 0)
		r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));
	if (r <= 0) {
		wire_close(&w);
		return conf_fail(ctx, "no frame after SETUP (%s)", r == 0 ? "EOF" : strerror(-r));
	}
	if (frame.type != RFD_FRAME_METADATA_PUSH || frame.stream_id != 0) {
		wire_close(&w);
		return conf_fail(ctx, "first frame is %s on stream %u, not METADATA_PUSH on 0",
				 rfd_frame_type_name(frame.type), frame.stream_id);
	}
	r = rfd_server_push_decode(frame.metadata.ptr, frame.metadata.len, &push, &why);
	wire_close(&w);
	if (r < 0)
		return conf_fail(ctx, "ServerPushMetadata does not decode: %s", why);
	if (push.kind != RFD_PUSH_SETUP_RESPONSE || !push.has_version)
		return conf_fail(ctx, "no setupResponse with a version");
	if (push.version < 8 || push.version > 10)
		return conf_fail(ctx, "setupResponse.version %d is outside 8..10", push.version);
	return CONF_PASS;
}

/* Send @bytes (with @fds) as the first thing on a connection; expect ERROR @code on 0, then EOF. */
static enum conf_result
expect_setup_refused(struct conf_ctx *ctx, const struct rfd_buf *bytes, uint32_t code,
		     const int *fds, size_t n_fds)
{
	struct rfd_frame frame;
	struct wire w;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect");
	r = wire_send(&w, bytes->data, bytes->len, fds, n_fds);
	if (r == 0)
		r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));
	if (r <= 0) {
		wire_close(&w);
		return conf_fail(ctx, "no ERROR frame before %s",
				 r == 0 ? "the connection closed" : "the deadline");
	}
	if (frame.type != RFD_FRAME_ERROR || frame.stream_id != 0) {
		wire_close(&w);
		return conf_fail(ctx, "expected ERROR on stream 0, got %s on stream %u",
				 rfd_frame_type_name(frame.type), frame.stream_id);
	}
	if (code && frame.u32 != code) {
		wire_close(&w);
		return conf_fail(ctx, "ERROR code is 0x%x, expected 0x%x", frame.u32, code);
	}
	r = wire_wait_eof(&w, conf_wait_ms(ctx));
	wire_close(&w);
	return r ? CONF_PASS : conf_fail(ctx, "the server did not close the connection");
}

static enum conf_result
setup_without_key(struct conf_ctx *ctx)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_setup(&bytes, 0x00000001, 8, 10);
	result = expect_setup_refused(ctx, &bytes, RFD_ERROR_INVALID_SETUP, NULL, 0);
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
setup_no_common_version(struct conf_ctx *ctx)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_setup(&bytes, PROTOCOL_KEY, 11, 12);
	result = expect_setup_refused(ctx, &bytes, RFD_ERROR_INVALID_SETUP, NULL, 0);
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
setup_must_come_first(struct conf_ctx *ctx)
{
	struct fdt_bytes args = {0};
	struct rfd_fd_metadata claim = {.present = true, .has_seq = true, .has_num = true,
					.num_fds = 1};
	struct rfd_buf bytes;
	enum conf_result result;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_fail(ctx, "pipe");
	fdt_encode_args("first", &args);
	rfd_buf_init(&bytes);
	wire_encode_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, args.data,
			    args.len, &claim);
	fdt_bytes_free(&args);
	result = expect_setup_refused(ctx, &bytes, 0, &writer, 1);
	rfd_buf_free(&bytes);
	close(writer);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the FD sent with the refused frame was not closed");
	close(reader);
	return result;
}

/* ---- Calls and FDs ---- */

/* inspect with @n pipe write ends; the report describes them and the server closes them all. */
static enum conf_result
inspect_n(struct conf_ctx *ctx, size_t n)
{
	int *readers = calloc(n + 1, sizeof(int)), *writers = calloc(n + 1, sizeof(int));
	struct fdt_report report = {0};
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	int baseline = case_fd_baseline(ctx), open_reader;
	uint32_t stream;

	if (!readers || !writers || case_pipes(readers, writers, n) < 0) {
		free(readers);
		free(writers);
		return conf_skip(ctx, "the harness cannot make %zu pipes", n);
	}
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		goto out;
	stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT, "inspect",
				writers, n, NULL);
	case_close_all(writers, n);
	if (!stream) {
		result = CONF_FAIL;
		goto out_wire;
	}
	result = case_read_reply(ctx, &w, stream, &reply);
	if (result != CONF_PASS)
		goto out_wire;
	result = case_expect_report(ctx, &reply, &report);
	wire_reply_free(&reply);
	if (result != CONF_PASS)
		goto out_wire;

	if (report.n_fds != n) {
		result = conf_fail(ctx, "the report lists %zu FDs, %zu were sent", report.n_fds, n);
	} else {
		for (size_t i = 0; i < n && result == CONF_PASS; i++) {
			struct stat st;

			fstat(readers[i], &st);
			if (report.fds[i].type != S_IFIFO)
				result = conf_fail(ctx, "FD %zu: type 0%o, not a FIFO", i,
						   (unsigned)report.fds[i].type);
			else if ((report.fds[i].flags & O_ACCMODE) != O_WRONLY)
				result = conf_fail(ctx, "FD %zu: not write-only: flags 0x%x", i,
						   (unsigned)report.fds[i].flags);
			else if (!report.fds[i].cloexec)
				result = conf_fail(ctx, "FD %zu arrived without FD_CLOEXEC", i);
			else if ((uint64_t)report.fds[i].ino != (uint64_t)st.st_ino)
				result = conf_fail(ctx, "FD %zu names another pipe (ino %lld)", i,
						   (long long)report.fds[i].ino);
		}
	}
	if (result == CONF_PASS) {
		open_reader = case_all_eof(ctx, readers, n);
		if (open_reader >= 0)
			result = conf_fail(ctx,
					   "the write end of pipe %d is still open after the "
					   "answer: the server kept an FD",
					   open_reader);
	}
out_wire:
	wire_close(&w);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
out:
	fdt_report_free(&report);
	case_close_all(readers, n);
	case_close_all(writers, n);
	free(readers);
	free(writers);
	return result;
}

static enum conf_result
inspect_one(struct conf_ctx *ctx)
{
	return inspect_n(ctx, 1);
}

static enum conf_result
inspect_max(struct conf_ctx *ctx)
{
	return inspect_n(ctx, 253);
}

static enum conf_result
echo_no_fds(struct conf_ctx *ctx)
{
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	char *text = NULL;
	const char *why = "";
	uint32_t stream;

	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "plain", NULL,
				0, NULL);
	result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
	if (result == CONF_PASS) {
		if (reply.type != RFD_FRAME_PAYLOAD)
			result = conf_fail(ctx, "expected a PAYLOAD, got ERROR 0x%x", reply.error_code);
		else if (reply.md.fd.present && reply.md.fd.has_num && reply.md.fd.num_fds != 0)
			result = conf_fail(ctx, "a reply with no FDs claims %d", reply.md.fd.num_fds);
		else if (fdt_decode_string_result(reply.data.data, reply.data.len, &text, &why) < 0)
			result = conf_fail(ctx, "the result does not decode: %s", why);
		else if (strcmp(text, "plain") != 0)
			result = conf_fail(ctx, "echo answered \"%s\"", text);
		wire_reply_free(&reply);
	}
	free(text);
	wire_close(&w);
	return result;
}

/* echo with @n FDs: the same open files come back, numbered by the server's own counter. */
static enum conf_result
echo_fds_back(struct conf_ctx *ctx)
{
	static const size_t counts[] = {2, 1, 3};
	enum conf_result result;
	struct wire w;
	int64_t expected_seq = 0;

	result = case_connect(ctx, &w);
	for (size_t c = 0; result == CONF_PASS && c < sizeof(counts) / sizeof(counts[0]); c++) {
		int fds[3];
		struct wire_reply reply;
		uint32_t stream;

		for (size_t i = 0; i < counts[c]; i++)
			fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "back",
					fds, counts[c], NULL);
		result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
		if (result == CONF_PASS) {
			const struct rfd_fd_metadata *md = &reply.md.fd;

			if (reply.type != RFD_FRAME_PAYLOAD)
				result = conf_fail(ctx, "echo got ERROR 0x%x", reply.error_code);
			else if (!md->present || !md->has_num || md->num_fds != (int32_t)counts[c])
				result = conf_fail(ctx, "the reply's fdMetadata claims %d FDs, not %zu",
						   md->has_num ? md->num_fds : -1, counts[c]);
			else if (!md->has_seq || md->fd_seq != expected_seq)
				result = conf_fail(ctx, "fdSeqNum is %lld, expected %lld",
						   (long long)(md->has_seq ? md->fd_seq : -1),
						   (long long)expected_seq);
			else if (!reply.fds_matched)
				result = conf_fail(ctx, "the FDs that arrived do not match the claim");
			for (size_t i = 0; result == CONF_PASS && i < counts[c]; i++) {
				struct stat mine, theirs;

				fstat(fds[i], &mine);
				fstat(reply.fds.fds[i], &theirs);
				if (mine.st_ino != theirs.st_ino || mine.st_dev != theirs.st_dev)
					result = conf_fail(ctx, "FD %zu came back as another file", i);
				else if (!(fcntl(reply.fds.fds[i], F_GETFD) & FD_CLOEXEC))
					conf_note(ctx, "(our own receive sets FD_CLOEXEC)");
			}
			wire_reply_free(&reply);
		}
		case_close_all(fds, counts[c]);
		expected_seq += (int64_t)counts[c];
	}
	wire_close(&w);
	return result;
}

/*
 * Many large echo replies with FDs, read only once all are sent, so that the
 * server's writes come back partial: each reply's FDs must arrive once.
 */
static enum conf_result
fds_sent_once(struct conf_ctx *ctx)
{
	enum { CALLS = 24, TAG_SIZE = 60000 };
	uint32_t streams[CALLS];
	char *tag = malloc(TAG_SIZE + 1);
	enum conf_result result;
	struct wire w;
	int small = 4096;

	if (!tag)
		return conf_skip(ctx, "out of memory");
	memset(tag, 'x', TAG_SIZE);
	tag[TAG_SIZE] = '\0';
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		setsockopt(w.sock, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (int i = 0; result == CONF_PASS && i < CALLS; i++) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		streams[i] = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO,
					    tag, &fd, 1, NULL);
		close(fd);
		if (!streams[i])
			result = CONF_FAIL;
	}
	for (int i = 0; result == CONF_PASS && i < CALLS; i++) {
		struct wire_reply reply;

		result = case_read_reply(ctx, &w, streams[i], &reply);
		if (result != CONF_PASS)
			break;
		if (reply.type != RFD_FRAME_PAYLOAD)
			result = conf_fail(ctx, "echo %d got ERROR 0x%x", i, reply.error_code);
		else if (!reply.fds_matched || reply.fds.n != 1)
			result = conf_fail(ctx, "echo %d: its FD did not arrive exactly once as claimed",
					   i);
		wire_reply_free(&reply);
	}
	if (result == CONF_PASS && w.n_groups != 0)
		result = conf_fail(ctx, "%zu more FD groups arrived than the replies claimed: FDs "
					"were sent twice",
				   w.n_groups);
	wire_close(&w);
	free(tag);
	return result;
}

/* A request whose claim does not match what arrived: ERROR INVALID, FDs closed, connection kept. */
static enum conf_result
mismatch(struct conf_ctx *ctx, size_t sent, int32_t claimed, int64_t seq_offset,
	 bool with_seq)
{
	int readers[4], writers[4];
	struct rfd_fd_metadata claim;
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	uint32_t stream;
	int baseline = case_fd_baseline(ctx);

	if (case_pipes(readers, writers, sent) < 0)
		return conf_skip(ctx, "pipes");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		case_close_all(readers, sent);
		case_close_all(writers, sent);
		return result;
	}
	claim = (struct rfd_fd_metadata){.present = true, .has_seq = with_seq,
					 .fd_seq = w.send_seq + seq_offset, .has_num = true,
					 .num_fds = claimed};
	stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT, "wrong",
				writers, sent, &claim);
	case_close_all(writers, sent);
	result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
	if (result == CONF_PASS) {
		result = case_expect_fd_error(ctx, &reply);
		wire_reply_free(&reply);
	}

	/* The connection goes on: a correct request with a fresh FD is served. */
	if (result == CONF_PASS) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct fdt_report report = {0};

		stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT,
					"after", &fd, 1, NULL);
		close(fd);
		result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
		if (result == CONF_PASS) {
			result = case_expect_report(ctx, &reply, &report);
			if (result == CONF_PASS && report.n_fds != 1)
				result = conf_fail(ctx, "after the mismatch, a correct request got a "
							"report of %zu FDs", report.n_fds);
			wire_reply_free(&reply);
		}
		fdt_report_free(&report);
	}
	/* Every FD of the failed request is closed, at the latest now. */
	if (result == CONF_PASS) {
		int open_reader = case_all_eof(ctx, readers, sent);

		if (open_reader >= 0)
			result = conf_fail(ctx, "FD %d of the mismatched request was never closed",
					   open_reader);
	}
	wire_close(&w);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	case_close_all(readers, sent);
	return result;
}

static enum conf_result
mismatch_more_than_claimed(struct conf_ctx *ctx)
{
	return mismatch(ctx, 2, 1, 0, true);
}

static enum conf_result
mismatch_fewer_than_claimed(struct conf_ctx *ctx)
{
	return mismatch(ctx, 1, 2, 0, true);
}

static enum conf_result
mismatch_none_arrived(struct conf_ctx *ctx)
{
	return mismatch(ctx, 0, 1, 0, true);
}

static enum conf_result
mismatch_seq_ahead(struct conf_ctx *ctx)
{
	return mismatch(ctx, 1, 1, 5, true);
}

static enum conf_result
mismatch_no_seq(struct conf_ctx *ctx)
{
	return mismatch(ctx, 1, 1, 0, false);
}

static enum conf_result
mismatch_negative_count(struct conf_ctx *ctx)
{
	return mismatch(ctx, 1, -1, 0, true);
}

static enum conf_result
mismatch_over_limit(struct conf_ctx *ctx)
{
	return mismatch(ctx, 1, 254, 0, true);
}

/* FDs sent with a frame that carries none, then a request claiming the next sequence number. */
static enum conf_result
orphans_closed_at_next_claim(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE, .flags = RFD_FLAG_FOLLOWS};
	struct fdt_report report = {0};
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	int reader, writer, fd;
	uint32_t stream;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "pipe");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	if (wire_send_frame(&w, &keepalive, &writer, 1) < 0)
		result = conf_fail(ctx, "cannot send KEEPALIVE");
	close(writer);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	stream = result == CONF_PASS ? case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE,
						      FDT_METHOD_INSPECT, "claims-1", &fd, 1, NULL)
				     : 0;
	close(fd);
	if (result == CONF_PASS)
		result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
	if (result == CONF_PASS) {
		result = case_expect_report(ctx, &reply, &report);
		if (result == CONF_PASS && report.n_fds != 1)
			result = conf_fail(ctx, "the request got %zu FDs, claimed 1", report.n_fds);
		if (result == CONF_PASS && report.fds[0].type != S_IFCHR)
			result = conf_fail(ctx, "the request got the orphan FD instead of its own");
		wire_reply_free(&reply);
	}
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the orphan FD sent with KEEPALIVE is still open");
	fdt_report_free(&report);
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
oneway_mismatch_silent(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = {.present = true, .has_seq = true, .has_num = true,
					.num_fds = 3};
	struct rfd_frame frame;
	enum conf_result result;
	struct wire w;
	int reader, writer;
	uint32_t stream;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "pipe");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "wrong", &writer,
				1, &claim);
	close(writer);
	if (!stream)
		result = CONF_FAIL;
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the FD of the mismatched one-way request was not closed");
	/* Nothing may answer a one-way request: a short wait must see no frame on its stream. */
	if (result == CONF_PASS) {
		int r = wire_read_frame(&w, &frame, 200);

		if (r == 1 && frame.stream_id == stream)
			result = conf_fail(ctx, "the server answered a one-way request with %s",
					   rfd_frame_type_name(frame.type));
		else if (r == 0)
			result = conf_fail(ctx, "the server closed the connection");
	}
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
record_then_last_recorded(struct conf_ctx *ctx)
{
	int readers[2], writers[2];
	struct fdt_report report = {0};
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	uint32_t stream;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "pipes");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS) {
		if (!case_send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "noted",
				    writers, 2, NULL))
			result = CONF_FAIL;
		case_close_all(writers, 2);
	}
	if (result == CONF_PASS) {
		stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_LAST, NULL,
					NULL, 0, NULL);
		result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
	}
	if (result == CONF_PASS) {
		result = case_expect_report(ctx, &reply, &report);
		wire_reply_free(&reply);
		if (result == CONF_PASS && (strcmp(report.tag, "noted") != 0 || report.n_fds != 2))
			result = conf_fail(ctx, "lastRecorded gave tag \"%s\" with %zu FDs",
					   report.tag, report.n_fds);
	}
	if (result == CONF_PASS && case_all_eof(ctx, readers, 2) >= 0)
		result = conf_fail(ctx, "the FDs given to record were not closed");
	fdt_report_free(&report);
	wire_close(&w);
	case_close_all(readers, 2);
	case_close_all(writers, 2);
	return result;
}

/* The request written in @pieces writes, its FD with the piece @fd_piece (0-based). */
static enum conf_result
split_request(struct conf_ctx *ctx, size_t pieces, size_t fd_piece, bool with_setup)
{
	struct fdt_bytes args = {0};
	struct fdt_report report = {0};
	struct rfd_fd_metadata claim = {.present = true, .has_seq = true, .fd_seq = 0,
					.has_num = true, .num_fds = 1};
	struct wire_reply reply;
	struct rfd_buf bytes;
	enum conf_result result = CONF_PASS;
	struct wire w;
	size_t setup_len = 0, step, pos = 0;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "pipe");
	if (with_setup) {
		if (wire_connect(&w, ctx, ctx->socket_path) < 0)
			result = conf_fail(ctx, "cannot connect");
	} else {
		result = case_connect(ctx, &w);
	}
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	rfd_buf_init(&bytes);
	if (with_setup)
		wire_encode_setup(&bytes, PROTOCOL_KEY, 8, 10);
	setup_len = bytes.len;
	fdt_encode_args("split", &args);
	wire_encode_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, args.data,
			    args.len, &claim);
	fdt_bytes_free(&args);
	w.next_stream = 3;

	step = (bytes.len - setup_len) / pieces;
	for (size_t i = 0; i < pieces && result == CONF_PASS; i++) {
		size_t end = i + 1 == pieces ? bytes.len : setup_len + step * (i + 1);
		bool fds_here = i == fd_piece;

		if (i == 0 && with_setup)
			pos = 0;
		if (wire_send(&w, bytes.data + pos, end - pos, fds_here ? &writer : NULL,
			      fds_here ? 1 : 0) < 0)
			result = conf_fail(ctx, "cannot write piece %zu", i);
		pos = end;
		/* Separate reads at the server: each piece on its own. */
		poll(NULL, 0, 20);
	}
	rfd_buf_free(&bytes);
	close(writer);
	if (result == CONF_PASS && with_setup) {
		struct rfd_frame frame;

		if (wire_read_frame(&w, &frame, conf_wait_ms(ctx)) != 1 ||
		    frame.type != RFD_FRAME_METADATA_PUSH)
			result = conf_fail(ctx, "no setup response");
	}
	if (result == CONF_PASS)
		result = case_read_reply(ctx, &w, 1, &reply);
	if (result == CONF_PASS) {
		result = case_expect_report(ctx, &reply, &report);
		if (result == CONF_PASS && report.n_fds != 1)
			result = conf_fail(ctx, "the report lists %zu FDs, 1 was sent", report.n_fds);
		wire_reply_free(&reply);
	}
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the FD was not closed after the answer");
	fdt_report_free(&report);
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
fds_with_first_piece(struct conf_ctx *ctx)
{
	return split_request(ctx, 4, 0, false);
}

static enum conf_result
fds_with_last_piece(struct conf_ctx *ctx)
{
	return split_request(ctx, 4, 3, false);
}

static enum conf_result
fds_batched_with_setup(struct conf_ctx *ctx)
{
	return split_request(ctx, 1, 0, true);
}

/* FDs then a partial frame, then the harness goes away: every FD is closed, the server lives on. */
static enum conf_result
peer_vanishes(struct conf_ctx *ctx, bool mid_frame)
{
	struct fdt_bytes args = {0};
	struct rfd_fd_metadata claim;
	struct rfd_buf bytes;
	enum conf_result result;
	struct wire w, again;
	int readers[3], writers[3];
	int baseline = case_fd_baseline(ctx);

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "pipes");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		case_close_all(readers, 3);
		case_close_all(writers, 3);
		return result;
	}
	claim = wire_claim(&w, 3);
	rfd_buf_init(&bytes);
	fdt_encode_args("gone", &args);
	wire_encode_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, args.data,
			    args.len, &claim);
	fdt_bytes_free(&args);
	/* Half the request with its FDs, or FDs with a frame that claims none. */
	if (mid_frame) {
		wire_send(&w, bytes.data, bytes.len / 2, writers, 3);
	} else {
		struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};

		wire_send_frame(&w, &keepalive, writers, 3);
	}
	rfd_buf_free(&bytes);
	case_close_all(writers, 3);
	wire_close(&w);

	{
		int open_reader = case_all_eof(ctx, readers, 3);

		if (open_reader >= 0)
			result = conf_fail(ctx, "FD %d was still open after the client left",
					   open_reader);
	}
	case_close_all(readers, 3);
	if (result == CONF_PASS) {
		result = case_connect(ctx, &again);
		if (result == CONF_PASS)
			wire_close(&again);
		else
			conf_fail(ctx, "the server no longer accepts connections");
	}
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	return result;
}

static enum conf_result
peer_vanishes_mid_frame(struct conf_ctx *ctx)
{
	return peer_vanishes(ctx, true);
}

static enum conf_result
peer_vanishes_after_fds(struct conf_ctx *ctx)
{
	return peer_vanishes(ctx, false);
}

/*
 * The server at its FD limit: of 5 FDs only 2 can be installed and the
 * kernel reports MSG_CTRUNC.  The server closes what arrived and the
 * connection; another connection is unaffected.
 */
static enum conf_result
ctrunc_fails_connection(struct conf_ctx *ctx)
{
	int readers[5], writers[5];
	struct fdt_report report = {0};
	struct wire_reply reply;
	struct rlimit saved;
	enum conf_result result;
	struct wire victim, bystander;
	int fd, r;
	uint32_t stream;

	if (case_pipes(readers, writers, 5) < 0)
		return conf_skip(ctx, "pipes");
	result = case_connect(ctx, &bystander);
	if (result != CONF_PASS)
		goto out;
	result = case_connect(ctx, &victim);
	if (result != CONF_PASS) {
		wire_close(&bystander);
		goto out;
	}
	r = target_limit_fds(ctx->target_pid, 2, &saved);
	if (r < 0) {
		result = conf_skip(ctx, "cannot lower the target's RLIMIT_NOFILE: %s",
				   strerror(-r));
		goto out_wires;
	}
	stream = case_send_call(ctx, &victim, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT,
				"truncated", writers, 5, NULL);
	case_close_all(writers, 5);
	if (!stream)
		result = CONF_FAIL;
	if (result == CONF_PASS && !wire_wait_eof(&victim, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the connection that lost FDs was not closed");
	target_restore_fds(ctx->target_pid, &saved);
	if (result == CONF_PASS) {
		int open_reader = case_all_eof(ctx, readers, 5);

		if (open_reader >= 0)
			result = conf_fail(ctx, "FD %d that arrived before the truncation was kept",
					   open_reader);
	}
	if (result == CONF_PASS) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		stream = case_send_call(ctx, &bystander, RFD_FRAME_REQUEST_RESPONSE,
					FDT_METHOD_INSPECT, "bystander", &fd, 1, NULL);
		close(fd);
		result = stream ? case_read_reply(ctx, &bystander, stream, &reply) : CONF_FAIL;
		if (result == CONF_PASS) {
			result = case_expect_report(ctx, &reply, &report);
			wire_reply_free(&reply);
		}
		if (result == CONF_FAIL)
			conf_note(ctx, "another connection was affected");
	}
out_wires:
	wire_close(&victim);
	wire_close(&bystander);
out:
	fdt_report_free(&report);
	case_close_all(readers, 5);
	case_close_all(writers, 5);
	return result;
}

/*
 * FDs that no message claims, 253 at a time: the server bounds how many it
 * holds and closes the connection; its FD table does not grow.
 */
static enum conf_result
unclaimed_fds_are_bounded(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	int copies[253];
	enum conf_result result;
	struct wire w;
	int reader, writer, baseline = case_fd_baseline(ctx);
	bool closed = false;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "pipe");
	for (size_t i = 0; i < 253; i++)
		copies[i] = writer;
	result = case_connect(ctx, &w);
	/* 64 x 253 FDs is more than any sane budget, and more than RLIMIT_NOFILE allows. */
	for (int round = 0; result == CONF_PASS && round < 64 && !closed; round++) {
		if (wire_send_frame(&w, &keepalive, copies, 253) < 0)
			closed = true;
		else if (wire_wait_eof(&w, 1))
			closed = true;
	}
	close(writer);
	if (result == CONF_PASS && !closed && !wire_wait_eof(&w, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "16192 unclaimed FDs later the connection is still open");
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the unclaimed FDs were not all closed");
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	wire_close(&w);
	close(reader);
	return result;
}

/* ---- open: the privilege-separation pattern ---- */

static enum conf_result
call_open(struct conf_ctx *ctx, const char *path, struct fdt_open_result *out, int *fd)
{
	struct wire_reply reply;
	enum conf_result result;
	struct wire w;
	const char *why = "";
	uint32_t stream;

	*fd = -1;
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	stream = case_send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_OPEN, path, NULL, 0,
				NULL);
	result = stream ? case_read_reply(ctx, &w, stream, &reply) : CONF_FAIL;
	if (result == CONF_PASS) {
		if (reply.type != RFD_FRAME_PAYLOAD)
			result = conf_fail(ctx, "open(\"%s\") got ERROR 0x%x, not a result", path,
					   reply.error_code);
		else if (fdt_decode_open_result(reply.data.data, reply.data.len, out, &why) < 0)
			result = conf_fail(ctx, "open's result does not decode: %s", why);
		else if (!out->failed && reply.fds.n == 1 && reply.fds_matched)
			*fd = reply.fds.fds[0], reply.fds.n = 0;
		else if (!out->failed)
			result = conf_fail(ctx, "open(\"%s\") succeeded without exactly one FD",
					   path);
		else if (reply.md.payload_kind != RFD_PAYLOAD_DECLARED_EXCEPTION)
			result = conf_fail(ctx, "an FdTestError must travel as a declared "
						"exception");
		wire_reply_free(&reply);
	}
	wire_close(&w);
	return result;
}

static enum conf_result
open_regular_file(struct conf_ctx *ctx)
{
	static const char expected[] = "hello from the conformance harness\n";
	struct fdt_open_result result = {0};
	enum conf_result verdict;
	char content[128] = {0};
	int fd;

	verdict = call_open(ctx, "hello.txt", &result, &fd);
	if (verdict == CONF_PASS && result.failed)
		verdict = conf_fail(ctx, "open(\"hello.txt\") failed: %s (errno %d)",
				    result.error.message, result.error.errnum);
	if (verdict == CONF_PASS && pread(fd, content, sizeof(content) - 1, 0) < 0)
		verdict = conf_fail(ctx, "the received FD cannot be read");
	if (verdict == CONF_PASS && strcmp(content, expected) != 0)
		verdict = conf_fail(ctx, "the received FD reads \"%s\"", content);
	if (verdict == CONF_PASS && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		verdict = conf_fail(ctx, "the file was not opened read-only");
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&result);
	return verdict;
}

static enum conf_result
open_refused(struct conf_ctx *ctx, const char *path)
{
	struct fdt_open_result result = {0};
	enum conf_result verdict;
	int fd;

	verdict = call_open(ctx, path, &result, &fd);
	if (verdict == CONF_PASS && !result.failed)
		verdict = conf_fail(ctx, "open(\"%s\") succeeded: it must not", path);
	if (verdict == CONF_PASS && result.error.errnum <= 0)
		verdict = conf_fail(ctx, "FdTestError.errnum is %d, not an errno",
				    result.error.errnum);
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&result);
	return verdict;
}

static enum conf_result
open_outside_root(struct conf_ctx *ctx)
{
	return open_refused(ctx, "../outside.txt");
}

static enum conf_result
open_symlink_escape(struct conf_ctx *ctx)
{
	return open_refused(ctx, "escape");
}

static enum conf_result
open_fifo_does_not_block(struct conf_ctx *ctx)
{
	return open_refused(ctx, "fifo");
}

static enum conf_result
open_directory(struct conf_ctx *ctx)
{
	return open_refused(ctx, "sub");
}

/* ---- The table ---- */

const struct conf_case conf_server_cases[] = {
	{"setup/accepted", CONF_SERVER, "3", "SETUP-1", CONF_MUST,
	 "SETUP with key 0xf09f9a80, versions 8..10; expects METADATA_PUSH setupResponse", 0, NULL,
	 setup_accepted},
	{"setup/without-key", CONF_SERVER, "3", "SETUP-2", CONF_MUST,
	 "SETUP whose metadata starts with 0x00000001; expects ERROR INVALID_SETUP and close", 0,
	 NULL, setup_without_key},
	{"setup/no-common-version", CONF_SERVER, "3", "SETUP-3", CONF_MUST,
	 "SETUP with versions 11..12; expects ERROR INVALID_SETUP and close", 0, NULL,
	 setup_no_common_version},
	{"setup/must-come-first", CONF_SERVER, "3", "SETUP-4", CONF_MUST,
	 "REQUEST_RESPONSE with 1 FD before any SETUP; expects ERROR, close, FD closed", 0, NULL,
	 setup_must_come_first},
	{"call/echo-no-fds", CONF_SERVER, "4", "META-1", CONF_MUST,
	 "echo(\"plain\") with no FDs; expects PAYLOAD {0: \"plain\"} claiming no FDs", 0, NULL,
	 echo_no_fds},
	{"fd/inspect-1", CONF_SERVER, "5", "FD-RECV-1", CONF_MUST,
	 "inspect with 1 pipe write end; expects its report and the FD closed after", 0, NULL,
	 inspect_one},
	{"fd/inspect-253", CONF_SERVER, "5", "FD-RECV-1", CONF_MUST,
	 "inspect with 253 pipe write ends; expects 253 reported, all closed", 0, NULL,
	 inspect_max},
	{"fd/echo-back", CONF_SERVER, "5", "FD-SEND-1", CONF_MUST,
	 "echo with 2, 1 and 3 FDs; expects the same files back, fdSeqNum 0, 2, 3", 0, NULL,
	 echo_fds_back},
	{"fd/sent-once", CONF_SERVER, "5", "FD-SEND-2", CONF_MUST,
	 "24 pipelined echo calls with 60 KB tags and 1 FD each, replies read late; expects each "
	 "reply's FD exactly once",
	 0, NULL, fds_sent_once},
	{"fd/record", CONF_SERVER, "5", "SVC-3", CONF_MUST,
	 "record (one-way) with 2 FDs, then lastRecorded; expects their report, FDs closed", 0,
	 NULL, record_then_last_recorded},
	{"fd/first-write", CONF_SERVER, "5", "FD-ASSOC-1", CONF_MUST,
	 "a request in 4 writes, its FD with the first; expects it served", 0, NULL,
	 fds_with_first_piece},
	{"fd/last-write", CONF_SERVER, "5", "FD-ASSOC-1", CONF_MUST,
	 "a request in 4 writes, its FD with the last; expects it served", 0, NULL,
	 fds_with_last_piece},
	{"fd/batched-with-setup", CONF_SERVER, "5", "FD-ASSOC-1", CONF_MUST,
	 "SETUP and a request in one write, the FD on SETUP's first byte (as fbthrift's client)", 0,
	 NULL, fds_batched_with_setup},
	{"fd/orphans", CONF_SERVER, "5", "FD-RECV-2", CONF_MUST,
	 "a pipe write end with KEEPALIVE, then inspect claiming seq 1; expects the orphan closed",
	 0, NULL, orphans_closed_at_next_claim},
	{"limit/unclaimed-budget", CONF_SERVER, "6", "LIMIT-1", CONF_MUST,
	 "253 FDs at a time with KEEPALIVEs, never claimed; expects the connection closed and the "
	 "FDs released",
	 0, NULL, unclaimed_fds_are_bounded},
	{"err/more-than-claimed", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 2 FDs claiming 1; expects ERROR 0x204 code 6, FDs closed, connection kept",
	 0, NULL, mismatch_more_than_claimed},
	{"err/fewer-than-claimed", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 1 FD claiming 2; expects ERROR 0x204, FD closed, connection kept", 0, NULL,
	 mismatch_fewer_than_claimed},
	{"err/none-arrived", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect claiming 1 FD with none sent; expects ERROR 0x204, connection kept", 0, NULL,
	 mismatch_none_arrived},
	{"err/seq-ahead", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 1 FD claiming fdSeqNum 5 ahead; expects ERROR 0x204, FD closed later", 0,
	 NULL, mismatch_seq_ahead},
	{"err/no-seq", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 1 FD, numFds 1 and no fdSeqNum; expects ERROR 0x204", 0, NULL,
	 mismatch_no_seq},
	{"err/negative-count", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 1 FD claiming numFds -1; expects ERROR 0x204", 0, NULL,
	 mismatch_negative_count},
	{"err/count-over-limit", CONF_SERVER, "7", "ERR-1", CONF_MUST,
	 "inspect with 1 FD claiming numFds 254; expects ERROR 0x204", 0, NULL,
	 mismatch_over_limit},
	{"err/oneway-mismatch", CONF_SERVER, "7", "ERR-2", CONF_MUST,
	 "record with 1 FD claiming 3; expects no answer, the FD closed", 0, NULL,
	 oneway_mismatch_silent},
	{"err/vanish-mid-frame", CONF_SERVER, "7", "ERR-3", CONF_MUST,
	 "3 FDs with half a request, then close; expects all 3 closed, server still serving", 0,
	 NULL, peer_vanishes_mid_frame},
	{"err/vanish-after-fds", CONF_SERVER, "7", "ERR-3", CONF_MUST,
	 "3 FDs with KEEPALIVE, then close; expects all 3 closed", 0, NULL,
	 peer_vanishes_after_fds},
	{"err/ctrunc", CONF_SERVER, "7", "ERR-4", CONF_MUST,
	 "5 FDs to a server that can install 2 (RLIMIT_NOFILE); expects the connection closed, "
	 "every FD closed, another connection unaffected",
	 CONF_NEEDS_LAUNCH, NULL, ctrunc_fails_connection},
	{"svc/open", CONF_SERVER, "9", "SVC-5", CONF_MUST,
	 "open(\"hello.txt\"); expects the path and a read-only FD with the file's content", 0,
	 NULL, open_regular_file},
	{"svc/open-outside", CONF_SERVER, "9", "SVC-6", CONF_MUST,
	 "open(\"../outside.txt\"); expects FdTestError", 0, NULL, open_outside_root},
	{"svc/open-symlink", CONF_SERVER, "9", "SVC-6", CONF_MUST,
	 "open(\"escape\"), a symlink out of the root; expects FdTestError", 0, NULL,
	 open_symlink_escape},
	{"svc/open-fifo", CONF_SERVER, "9", "SVC-6", CONF_MUST,
	 "open(\"fifo\"); expects FdTestError at once, never a blocked server", 0, NULL,
	 open_fifo_does_not_block},
	{"svc/open-directory", CONF_SERVER, "9", "SVC-6", CONF_MUST,
	 "open(\"sub\"), a directory; expects FdTestError", 0, NULL, open_directory},
};

const size_t conf_n_server_cases = sizeof(conf_server_cases) / sizeof(conf_server_cases[0]);
