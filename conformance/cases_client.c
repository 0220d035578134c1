/* SPDX-License-Identifier: MIT */
/*
 * Cases for a client under test (spec 18.2 to 18.4): the harness is the
 * server, and the runner starts the client with the scenario each case
 * names before the case begins.  Each case plays the harness's side of its
 * scenario, checks the client's frames against the sender rules (serve.c),
 * checks the client's FD handling through harness pipes, and ends with the
 * client's exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "serve.h"
#include "target.h"

#define OPEN_CONTENT "rocketfd-open-scenario\n"
#define REJECTED     "rejected by harness"

enum {
	LARGE_TAG_BYTES = 17825792, /* 17 MiB */
	IN_FLIGHT = 16,
	CTRUNC_SENT = 5,
	CTRUNC_ROOM = 2,
};

/* The scenario's end after its last answer, or the failure so far. */
static enum conf_result
finish(struct serve_conn *c, enum conf_result result, long long deadline)
{
	if (result == CONF_PASS)
		return serve_finish(c, c->ctx, deadline);
	serve_close(c);
	return result;
}

/* Expect @method(@tag) with @n_fds FDs and answer it as a conforming server. */
static enum conf_result
expect_and_answer(struct serve_conn *c, const char *method, const char *tag, size_t n_fds)
{
	struct serve_request req;
	enum conf_result result = serve_expect(c, &req, method, tag, n_fds);

	if (result != CONF_PASS)
		return result;
	result = serve_answer(c, &req);
	serve_request_free(&req);
	return result;
}

/* The probe; when it arrives, @readers must all be closed. */
static enum conf_result
probe_after_closed(struct serve_conn *c, const int *readers, size_t n, const char *consequence)
{
	struct serve_request req;
	enum conf_result result = serve_expect_probe(c, &req);

	if (result != CONF_PASS)
		return result;
	result = serve_check_pipes(c->ctx, readers, n, true, "when the probe arrives", consequence);
	if (result == CONF_PASS)
		result = serve_answer(c, &req);
	serve_request_free(&req);
	return result;
}

/* One call answered normally: the whole scenario of echo-0, inspect-1, inspect-253, echo-2. */
static enum conf_result
one_call(struct conf_ctx *ctx, const char *method, const char *tag, size_t n_fds)
{
	long long deadline = serve_deadline(ctx);
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result != CONF_PASS)
		return result;
	result = expect_and_answer(&c, method, tag, n_fds);
	if (result == CONF_PASS && c.w.recv_seq != (int64_t)n_fds)
		result = conf_fail(ctx, "%lld FDs arrived on the connection, %zu expected",
		                   (long long)c.w.recv_seq, n_fds);
	return finish(&c, result, deadline);
}

static enum conf_result
echo_0(struct conf_ctx *ctx)
{
	return one_call(ctx, FDT_METHOD_ECHO, "echo-0", 0);
}

static enum conf_result
inspect_1(struct conf_ctx *ctx)
{
	return one_call(ctx, FDT_METHOD_INSPECT, "inspect-1", 1);
}

static enum conf_result
inspect_253(struct conf_ctx *ctx)
{
	return one_call(ctx, FDT_METHOD_INSPECT, "inspect-253", 253);
}

static enum conf_result
echo_2(struct conf_ctx *ctx)
{
	return one_call(ctx, FDT_METHOD_ECHO, "echo-2", 2);
}

/* No byte of the refused inspect and no FD may arrive before echo("after"). */
static enum conf_result
inspect_254(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);
	int r;

	if (result != CONF_PASS)
		return result;
	/* The refused call may have used up stream id 1 before failing. */
	c.skip_allowed = true;
	r = serve_next_request(&c, &req);
	if (r != 1) {
		result = serve_missing(&c, r, "echo(\"after\") with 0 FDs");
	} else if (strcmp(req.method, FDT_METHOD_INSPECT) == 0) {
		result = conf_fail(ctx,
		                   "LIMIT-1: an inspect request with %zu FDs reached the "
		                   "harness on stream %u",
		                   req.fds.n, req.stream_id);
		serve_request_free(&req);
	} else {
		result = serve_check_request(&c, &req, FDT_METHOD_ECHO, "after", 0);
	}
	if (result == CONF_PASS) {
		result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS && c.w.recv_seq != 0)
		result = conf_fail(ctx, "LIMIT-1: %lld FDs reached the harness",
		                   (long long)c.w.recv_seq);
	return finish(&c, result, deadline);
}

static enum conf_result
record_1(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result != CONF_PASS)
		return result;
	result = expect_and_answer(&c, FDT_METHOD_LAST, NULL, 0);
	if (result == CONF_PASS)
		result = expect_and_answer(&c, FDT_METHOD_RECORD, "record-1", 1);
	if (result == CONF_PASS)
		result = expect_and_answer(&c, FDT_METHOD_LAST, NULL, 0);
	return finish(&c, result, deadline);
}

/* A read-only FD at offset 0 of a regular file holding exactly @content, or -errno. */
static int
open_scenario_file(const char *content)
{
	char path[64];
	size_t len = strlen(content);
	int memfd = memfd_create("rfd-conform-open", MFD_CLOEXEC), fd;

	if (memfd < 0)
		return -errno;
	if (write(memfd, content, len) != (ssize_t)len) {
		close(memfd);
		return -EIO;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(memfd);
	return fd;
}

static enum conf_result
open_file(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	int fd = open_scenario_file(OPEN_CONTENT);

	if (fd < 0)
		return conf_skip(ctx, "the harness cannot make the file it hands out: %s",
		                 strerror(-fd));
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_OPEN, "hello.txt", 0);
	if (result == CONF_PASS) {
		result = serve_reply_string(&c, req.stream_id, "hello.txt", strlen("hello.txt"),
		                            &fd, 1, NULL);
		serve_request_free(&req);
	}
	close(fd);
	return finish(&c, result, deadline);
}

static enum conf_result
open_missing(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result != CONF_PASS)
		return result;
	result = serve_expect(&c, &req, FDT_METHOD_OPEN, "missing.txt", 0);
	if (result == CONF_PASS) {
		result = serve_reply_fdtest_error(&c, req.stream_id,
		                                  "missing.txt: No such file or directory", ENOENT);
		serve_request_free(&req);
	}
	return finish(&c, result, deadline);
}

static enum conf_result
error_invalid(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result != CONF_PASS)
		return result;
	result = serve_expect(&c, &req, FDT_METHOD_ECHO, "error-invalid", 0);
	if (result == CONF_PASS) {
		result = serve_reply_invalid(&c, req.stream_id, REJECTED);
		serve_request_free(&req);
	}
	if (result == CONF_PASS)
		result = expect_and_answer(&c, FDT_METHOD_ECHO, "after", 0);
	return finish(&c, result, deadline);
}

/* SETUP answered with ERROR INVALID_SETUP; the client must give up without connecting again. */
static enum conf_result
setup_rejected(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_conn c;
	enum conf_result result = serve_accept(ctx, deadline, &c);
	int32_t version;

	if (result == CONF_PASS)
		result = serve_read_setup(&c, &version);
	if (result == CONF_PASS)
		result = serve_send_connection_error(&c, RFD_ERROR_INVALID_SETUP, REJECTED);
	serve_hang_up(&c);
	return result == CONF_PASS ? serve_finish(NULL, ctx, deadline) : result;
}

/* The first echo answered with @n_pipes harness pipes and @claim; then echo("after"). */
static enum conf_result
mismatched_answer(struct conf_ctx *ctx, const char *tag, size_t n_pipes,
                  const struct rfd_fd_metadata *claim, const char *consequence)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;

	if (serve_pipes(readers, writers, n_pipes) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, tag, 1);
	if (result == CONF_PASS) {
		result = serve_reply_string(&c, req.stream_id, tag, strlen(tag), writers, n_pipes,
		                            claim);
		serve_request_free(&req);
	}
	case_close_all(writers, n_pipes);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "after", 1);
	if (result == CONF_PASS) {
		result = serve_check_pipes(ctx, readers, n_pipes, true,
		                           "when echo(\"after\") arrives", consequence);
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	case_close_all(readers, n_pipes);
	return finish(&c, result, deadline);
}

static enum conf_result
bad_count(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = {
	    .present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 1};

	return mismatched_answer(ctx, "bad-count", 2, &claim,
	                         "the client kept FDs of a response whose group had another size "
	                         "than numFds (FD-ASSOC-5, OWN-3)");
}

static enum conf_result
bad_seq(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = {
	    .present = true, .has_seq = true, .fd_seq = 5, .has_num = true, .num_fds = 1};

	return mismatched_answer(ctx, "bad-seq", 1, &claim,
	                         "the client kept a group older than a claim's fdSeqNum (ORPHAN-1, "
	                         "FD-ASSOC-6)");
}

static enum conf_result
stale_seq(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata stale = {
	    .present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 1};
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	int reader, writer;

	if (serve_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_and_answer(&c, FDT_METHOD_ECHO, "first", 1);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "stale", 1);
	if (result == CONF_PASS) {
		result = serve_reply_string(&c, req.stream_id, "stale", strlen("stale"), &writer, 1,
		                            &stale);
		serve_request_free(&req);
	}
	close(writer);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "after", 1);
	if (result == CONF_PASS) {
		result = serve_check_pipes(ctx, &reader, 1, false, "when echo(\"after\") arrives",
		                           "a claim whose fdSeqNum was older than the queue's head "
		                           "took or closed a queued group (FD-ASSOC-6, ORPHAN-4)");
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS)
		result = probe_after_closed(&c, &reader, 1,
		                            "the claim of \"after\" did not close the older group "
		                            "(ORPHAN-1)");
	close(reader);
	return finish(&c, result, deadline);
}

static enum conf_result
orphan_fds(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;

	if (serve_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "orphan", 1);
	if (result == CONF_PASS) {
		result = serve_send_keepalive(&c, writers, 2);
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = probe_after_closed(&c, readers, 2,
		                            "FDs that came with a KEEPALIVE were not closed as "
		                            "orphans by the next claim (FD-CARRY-4, ORPHAN-1)");
	case_close_all(readers, 2);
	return finish(&c, result, deadline);
}

/* The late-response scenario; *cancels gets the CANCEL frames the client sent on the stream. */
static enum conf_result
late_response_run(struct conf_ctx *ctx, size_t *cancels, uint32_t *late_stream)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request late, gap, next;
	struct serve_conn c;
	enum conf_result result;

	if (serve_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &late, FDT_METHOD_ECHO, "late", 1);
	if (result == CONF_PASS) {
		*late_stream = late.stream_id;
		result = serve_expect(&c, &gap, FDT_METHOD_ECHO, "gap", 0);
		if (result == CONF_PASS) {
			result = serve_reply_string(&c, late.stream_id, "late", strlen("late"),
			                            writers, 2, NULL);
			if (result == CONF_PASS)
				result = serve_answer(&c, &gap);
			serve_request_free(&gap);
		}
		serve_request_free(&late);
	}
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = serve_expect(&c, &next, FDT_METHOD_ECHO, "next", 1);
	if (result == CONF_PASS) {
		result = serve_check_pipes(ctx, readers, 2, true, "when echo(\"next\") arrives",
		                           "the client did not claim and close the FDs of the "
		                           "response to its abandoned call (FD-CARRY-5)");
		if (result == CONF_PASS)
			result = serve_answer(&c, &next);
		serve_request_free(&next);
	}
	case_close_all(readers, 2);
	result = finish(&c, result, deadline);
	*cancels = c.n_cancels;
	return result;
}

static enum conf_result
late_response(struct conf_ctx *ctx)
{
	uint32_t late_stream = 0;
	size_t cancels = 0;

	return late_response_run(ctx, &cancels, &late_stream);
}

/* FRAME-29 (SHOULD): the timed-out request-response call is abandoned without a CANCEL. */
static enum conf_result
late_response_no_cancel(struct conf_ctx *ctx)
{
	uint32_t late_stream = 0;
	size_t cancels = 0;
	enum conf_result result = late_response_run(ctx, &cancels, &late_stream);

	if (result != CONF_PASS)
		return result;
	if (cancels > 0)
		return conf_fail(ctx,
		                 "FRAME-29: the client sent %zu CANCEL frame(s) for its "
		                 "request-response calls (the timed-out call was on stream %u)",
		                 cancels, late_stream);
	return CONF_PASS;
}

static enum conf_result
eof_with_fds(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;

	if (serve_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "eof", 0);
	if (result == CONF_PASS) {
		/* The length field of a 19-byte frame and the stream id: 7 bytes of it. */
		uint8_t partial[7] = {0x00, 0x00, 0x10};

		partial[3] = (uint8_t)(req.stream_id >> 24);
		partial[4] = (uint8_t)(req.stream_id >> 16);
		partial[5] = (uint8_t)(req.stream_id >> 8);
		partial[6] = (uint8_t)req.stream_id;
		result = serve_send_bytes(&c, partial, sizeof(partial), writers, 2);
		serve_request_free(&req);
	}
	case_close_all(writers, 2);
	serve_hang_up(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS) {
		result = probe_after_closed(&c, readers, 2,
		                            "the client did not close the FDs queued when the "
		                            "connection ended (ORPHAN-2)");
		result = finish(&c, result, deadline);
	}
	case_close_all(readers, 2);
	return result;
}

/* Index of the call "mif-<i>" whose tag @req carries, or -1. */
static int
in_flight_index(const struct serve_request *req)
{
	char expected[16];

	for (int i = 0; i < IN_FLIGHT; i++) {
		snprintf(expected, sizeof(expected), "mif-%d", i);
		if (req->tag && strcmp(req->tag, expected) == 0)
			return i;
	}
	return -1;
}

static enum conf_result
many_in_flight(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request reqs[IN_FLIGHT];
	bool seen[IN_FLIGHT] = {false};
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);
	size_t arrived = 0;

	while (result == CONF_PASS && arrived < IN_FLIGHT) {
		struct serve_request *req = &reqs[arrived];
		int i;

		result = serve_expect(&c, req, FDT_METHOD_ECHO, NULL, 1);
		if (result != CONF_PASS)
			break;
		arrived++;
		i = in_flight_index(req);
		if (i < 0 || seen[i])
			result = conf_fail(ctx,
			                   "request %zu of 16 has the tag \"%.40s\": not one of "
			                   "mif-0 to mif-15 not seen before",
			                   arrived, req->tag);
		else if (req->claim.fd_seq != (int64_t)arrived - 1)
			result = conf_fail(ctx, "request %zu of 16 has fdSeqNum %lld", arrived,
			                   (long long)req->claim.fd_seq);
		else
			seen[i] = true;
	}
	while (result == CONF_PASS && arrived > 0) {
		result = serve_answer(&c, &reqs[arrived - 1]);
		serve_request_free(&reqs[--arrived]);
	}
	while (arrived > 0)
		serve_request_free(&reqs[--arrived]);
	return finish(&c, result, deadline);
}

static bool
all_x(const char *tag, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (tag[i] != 'x')
			return false;
	return true;
}

static enum conf_result
echo_large(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, NULL, 1);
	if (result != CONF_PASS)
		return finish(&c, result, deadline);
	if (req.n_frames < 2)
		result = conf_fail(ctx, "FRAME-8: the request arrived as one frame");
	else if (req.tag_len != LARGE_TAG_BYTES || !all_x(req.tag, req.tag_len))
		result = conf_fail(ctx, "the tag is %zu bytes, not %d bytes of 'x'", req.tag_len,
		                   LARGE_TAG_BYTES);
	else
		conf_note(ctx, "the request arrived in %zu fragments", req.n_frames);
	if (result == CONF_PASS)
		result = serve_answer(&c, &req);
	serve_request_free(&req);
	return finish(&c, result, deadline);
}

/*
 * The client's first connection loses FDs to MSG_CTRUNC: it must close that
 * connection.  Returns with the client's RLIMIT_NOFILE restored.
 */
static enum conf_result
truncate_fds(struct conf_ctx *ctx, struct serve_conn *c, const int *writers)
{
	struct serve_request req;
	struct rlimit saved;
	enum conf_result result = serve_expect(c, &req, FDT_METHOD_ECHO, "ctrunc", 0);
	int r;

	if (result != CONF_PASS)
		return result;
	r = serve_limit_fds(ctx->target_pid, CTRUNC_ROOM, &saved);
	if (r < 0) {
		serve_request_free(&req);
		return conf_skip(ctx, "cannot lower the client's RLIMIT_NOFILE: %s", strerror(-r));
	}
	result = serve_reply_string(c, req.stream_id, "ctrunc", strlen("ctrunc"), writers,
	                            CTRUNC_SENT, NULL);
	serve_request_free(&req);
	if (result == CONF_PASS)
		result = serve_expect_close(c, "after FDs of a response were lost to MSG_CTRUNC "
		                               "(ERR-6)");
	target_restore_fds(ctx->target_pid, &saved);
	if (result != CONF_PASS || c->peer_error == RFD_ERROR_CONNECTION_ERROR)
		return result;
	if (ctx->strict)
		return conf_fail(ctx, "ERR-3 (SHOULD): the client closed the connection without "
		                      "sending ERROR CONNECTION_ERROR (0x101) first");
	conf_note(ctx, "ERR-3 (SHOULD): no ERROR CONNECTION_ERROR (0x101) before the close");
	return CONF_PASS;
}

static enum conf_result
ctrunc(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[CTRUNC_SENT], writers[CTRUNC_SENT];
	struct serve_conn c;
	enum conf_result result;

	if (ctx->target_pid <= 0)
		return conf_skip(ctx, "needs a client the harness started itself");
	if (serve_pipes(readers, writers, CTRUNC_SENT) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = truncate_fds(ctx, &c, writers);
	case_close_all(writers, CTRUNC_SENT);
	serve_close(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS) {
		result = probe_after_closed(&c, readers, CTRUNC_SENT,
		                            "the client kept FDs of the read that was truncated "
		                            "(ERR-6, ERR-1)");
		result = finish(&c, result, deadline);
	}
	case_close_all(readers, CTRUNC_SENT);
	return result;
}

/* The first connection refuses FDs: no byte of the request may arrive on it. */
static enum conf_result
refuse_fds(struct conf_ctx *ctx, struct serve_conn *c, long long deadline)
{
	int zero = 0, one = 1, early = 0;
	socklen_t len = sizeof(early);
	enum conf_result result = serve_accept(ctx, deadline, c);
	int32_t version;

	if (result == CONF_PASS &&
	    (getsockopt(c->w.sock, SOL_SOCKET, SO_PASSRIGHTS, &early, &len) < 0 ||
	     setsockopt(c->w.sock, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero)) < 0))
		result =
		    conf_fail(ctx, "SO_PASSRIGHTS on the accepted socket: %s", strerror(errno));
	setsockopt(ctx->listen_fd, SOL_SOCKET, SO_PASSRIGHTS, &one, sizeof(one));
	if (result == CONF_PASS)
		result = serve_read_setup(c, &version);
	/* The client may close this connection before the setup response is written. */
	if (result == CONF_PASS)
		serve_send_setup_response(c, version);
	c->forbid_requests = "PASSRIGHTS-2: the client sent a request again after its FDs were "
	                     "refused";
	if (result == CONF_PASS)
		result = serve_expect_close(c, "after its FDs were refused (PASSRIGHTS-1, ERR-9)");
	if (result == CONF_FAIL && early && c->w.recv_seq > 0)
		return conf_skip(ctx,
		                 "the client sent its FDs before the harness could refuse them "
		                 "(it connected before the case began)");
	return result;
}

/* Before the client starts: its first connection must already refuse FDs. */
static void
refuse_fds_on_listener(int listen_fd)
{
	int zero = 0;

	setsockopt(listen_fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));
}

static enum conf_result
passrights_off(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_conn c;
	enum conf_result result;
	int zero = 0;

	if (setsockopt(ctx->listen_fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero)) < 0)
		return conf_skip(ctx, "SO_PASSRIGHTS is not available (Linux 6.16 or later): %s",
		                 strerror(errno));
	result = refuse_fds(ctx, &c, deadline);
	serve_close(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = finish(&c, expect_and_answer(&c, FDT_METHOD_ECHO, "probe", 0), deadline);
	return result;
}

/* SETUP-6 (SHOULD): the echo-0 scenario, its SETUP asking for versions 8 to 10. */
static enum conf_result
setup_versions(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);
	int32_t min, max;

	if (result != CONF_PASS)
		return result;
	min = c.setup_min;
	max = c.setup_max;
	result = finish(&c, expect_and_answer(&c, FDT_METHOD_ECHO, "echo-0", 0), deadline);
	if (result == CONF_PASS && (min != 8 || max != 10))
		result = conf_fail(ctx,
		                   "SETUP-6: the client's SETUP asks for versions %d..%d, not "
		                   "8..10",
		                   min, max);
	return result;
}

/* The data of the harness's KEEPALIVE in the keepalive scenario. */
static const uint8_t keepalive_data[] = {'k', 'e', 'e', 'p', 'a', 'l', 'i', 'v', 'e'};

static enum conf_result
keepalive(struct conf_ctx *ctx)
{
	struct rfd_frame ping = {
	    .type = RFD_FRAME_KEEPALIVE,
	    .flags = RFD_FLAG_FOLLOWS, /* RESPOND */
	    .data = {keepalive_data, sizeof(keepalive_data)},
	};
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);

	if (result != CONF_PASS)
		return result;
	result = serve_expect(&c, &req, FDT_METHOD_ECHO, "keepalive", 0);
	if (result != CONF_PASS)
		return finish(&c, result, deadline);
	result = serve_send_frame(&c, &ping, NULL, 0, "a KEEPALIVE with RESPOND");
	if (result == CONF_PASS)
		result = serve_expect_keepalive_answer(&c, keepalive_data, sizeof(keepalive_data));
	if (result == CONF_PASS)
		result = serve_answer(&c, &req);
	serve_request_free(&req);
	return finish(&c, result, deadline);
}

/* echo's arguments {1: "from-server"} as the harness's own request carries them. */
static const uint8_t from_server_args[] = {0x18, 0x0b, 'f', 'r', 'o', 'm', '-',
                                           's',  'e',  'r', 'v', 'e', 'r', 0x00};

/* Instead of answering, a REQUEST_RESPONSE on stream 2 with the pipe @writer (FRAME-28). */
static enum conf_result
send_server_request(struct serve_conn *c, int writer)
{
	struct rfd_fd_metadata claim = {
	    .present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 1};
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 2, FDT_METHOD_ECHO,
	                    from_server_args, sizeof(from_server_args), &claim);
	result = serve_send_bytes(c, bytes.data, bytes.len, &writer, 1);
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
server_request(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	int reader, writer;

	if (serve_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "server-request", 0);
	if (result == CONF_PASS) {
		result = send_server_request(&c, writer);
		serve_request_free(&req);
	}
	close(writer);
	c.forbid_requests = "FRAME-28: the client sent a request on the connection where it "
	                    "received a request frame, which it must fail";
	if (result == CONF_PASS)
		result = serve_expect_close(&c, "after a REQUEST_RESPONSE from the server "
		                                "(FRAME-28)");
	serve_close(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = finish(&c,
		                probe_after_closed(&c, &reader, 1,
		                                   "the client kept the FD that came with a "
		                                   "request frame from the server (FRAME-28, "
		                                   "ERR-1)"),
		                deadline);
	close(reader);
	return result;
}

/* The ResponseRpcMetadata of the payload-metadata scenario's answers (18.4). */
static const uint8_t pm_absent_md[] = {0xcc, 0x16, 0x00, 0x15, 0x02, 0x00, 0x00};
static const uint8_t pm_empty_md[] = {0x7c, 0x00, 0x5c, 0x16, 0x02, 0x15, 0x02, 0x00, 0x00};
static const uint8_t pm_two_md[] = {0x7c, 0x1c, 0x00, 0x1c, 0x00, 0x00, 0x5c,
                                    0x16, 0x04, 0x15, 0x02, 0x00, 0x00};

/* Expect echo(@tag) with @n_fds FDs and answer it with @metadata, the result @tag, @fds. */
static enum conf_result
answer_with_metadata(struct serve_conn *c, const char *tag, size_t n_fds, const uint8_t *metadata,
                     size_t metadata_len, const int *fds)
{
	struct serve_request req;
	enum conf_result result = serve_expect(c, &req, FDT_METHOD_ECHO, tag, n_fds);

	if (result != CONF_PASS)
		return result;
	result = serve_reply_raw_metadata(c, req.stream_id, metadata, metadata_len, tag,
	                                  fds ? fds : req.fds.fds, 1);
	serve_request_free(&req);
	return result;
}

static enum conf_result
payload_metadata(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;

	if (serve_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = answer_with_metadata(&c, "pm-absent", 1, pm_absent_md,
		                              sizeof(pm_absent_md), NULL);
	if (result == CONF_PASS)
		result = answer_with_metadata(&c, "pm-empty", 0, pm_empty_md, sizeof(pm_empty_md),
		                              &writers[0]);
	if (result == CONF_PASS)
		result = answer_with_metadata(&c, "pm-two", 0, pm_two_md, sizeof(pm_two_md),
		                              &writers[1]);
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "after", 1);
	if (result == CONF_PASS) {
		result =
		    serve_check_pipes(ctx, &readers[0], 1, true, "when echo(\"after\") arrives",
		                      "the client kept the FD of a response with an empty "
		                      "payloadMetadata, which it must claim and close "
		                      "(FD-CARRY-3, OWN-3, META-21)");
		if (result == CONF_PASS)
			result = serve_check_pipes(
			    ctx, &readers[1], 1, false, "when echo(\"after\") arrives",
			    "the client claimed the FD of a response whose payloadMetadata has two "
			    "members, which is malformed metadata (META-3)");
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS)
		result =
		    probe_after_closed(&c, &readers[1], 1,
		                       "the claim of \"after\" did not close the group left by "
		                       "the malformed response (ORPHAN-1)");
	case_close_all(readers, 2);
	return finish(&c, result, deadline);
}

/* CONTRACT-11: the client's standard error, which the runner keeps in target.log, has event lines.
 */
static enum conf_result
event_lines(struct conf_ctx *ctx)
{
	enum conf_result result = echo_0(ctx);
	char path[256], line[512];
	int lines = 0;
	FILE *log;

	if (result != CONF_PASS)
		return result;
	snprintf(path, sizeof(path), "%s/target.log", ctx->work_dir);
	log = fopen(path, "re");
	if (!log)
		return conf_fail(ctx, "the client's output was not captured");
	while (fgets(line, sizeof(line), log))
		if (line[0] != '\n')
			lines++;
	fclose(log);
	/* At least: connected, the call, its result. */
	if (lines < 3)
		return conf_fail(ctx,
		                 "the client wrote %d lines to standard error for connect, call "
		                 "and result",
		                 lines);
	return CONF_PASS;
}

/* ---- The table ---- */

#define SCENARIO(name, requirements, sends, needs, run)                                            \
	{                                                                                          \
		"client/" name, CONF_CLIENT, "18.4", requirements, CONF_MUST, sends, needs, name,  \
		    run, NULL                                                                      \
	}

const struct conf_case conf_client_cases[] = {
    {"client/setup-versions", CONF_CLIENT, "18.3", "SETUP-6", CONF_SHOULD,
     "runs echo-0; expects the SETUP to ask for minVersion 8 and maxVersion 10", 0, "echo-0",
     setup_versions, NULL},
    {"client/event-lines", CONF_CLIENT, "18.2", "CONTRACT-11", CONF_SHOULD,
     "runs echo-0; expects the client's standard error to hold a line per event", 0, "echo-0",
     event_lines, NULL},
    SCENARIO("echo-0",
             "SETUP-1,SETUP-2,SETUP-3,SETUP-4,SETUP-5,SETUP-7,SETUP-23,META-4,META-5,FRAME-12,"
             "FRAME-22,CONTRACT-9,CONTRACT-10,CONTRACT-12,CONTRACT-13",
             "serves echo(\"echo-0\") without FDs, checking SETUP, the request, the single "
             "connection and the exit status",
             0, echo_0),
    SCENARIO("inspect-1", "FD-SEND-1,FD-SEND-8,FD-SEND-9",
             "serves inspect with 1 FD, checking numFds 1, fdSeqNum 0, one group", 0, inspect_1),
    SCENARIO("inspect-253", "FD-SEND-1,FD-SEND-8",
             "serves inspect with 253 FDs, checking they come in one group", 0, inspect_253),
    SCENARIO("inspect-254", "LIMIT-1",
             "expects no byte and no FD of an inspect with 254 FDs, then serves echo(\"after\")", 0,
             inspect_254),
    SCENARIO("echo-2", "EXEC-1,FD-ASSOC-4",
             "echoes 2 FDs (a /dev/null and a pipe write end) back in order", 0, echo_2),
    SCENARIO("record-1", "META-4,FD-SEND-9",
             "serves lastRecorded, record (one-way) with 1 FD, lastRecorded", 0, record_1),
    SCENARIO("open", "FD-ASSOC-4,EXEC-1",
             "answers open(\"hello.txt\") with a read-only FD of a 23-byte file", 0, open_file),
    SCENARIO("open-missing", "META-19",
             "answers open(\"missing.txt\") with the declared exception FdTestError, errnum 2", 0,
             open_missing),
    SCENARIO("error-invalid", "META-18",
             "answers the first echo with ERROR 0x204 \"rejected by harness\", the second "
             "normally",
             0, error_invalid),
    SCENARIO("setup-rejected", "SETUP-8,FRAME-20",
             "answers SETUP with ERROR INVALID_SETUP on stream 0, then closes", 0, setup_rejected),
    SCENARIO("bad-count", "FD-ASSOC-5,ERR-13,OWN-3",
             "answers echo with 2 pipe write ends claiming 1; expects both closed by the next "
             "call",
             0, bad_count),
    SCENARIO("bad-seq", "FD-ASSOC-6,ORPHAN-1",
             "answers echo with a pipe write end claiming fdSeqNum 5 instead of 0; expects it "
             "closed",
             0, bad_seq),
    SCENARIO("stale-seq", "FD-ASSOC-6,ORPHAN-4,ORPHAN-1",
             "answers the second echo with fdSeqNum 0 instead of 1; expects its pipe kept, then "
             "closed by the next claim",
             0, stale_seq),
    SCENARIO("orphan-fds", "FD-CARRY-4,ORPHAN-1,FD-RECV-9",
             "sends 2 pipe write ends with a KEEPALIVE before the echo response; expects them "
             "closed by the probe",
             0, orphan_fds),
    SCENARIO("late-response", "FD-CARRY-5",
             "answers a timed-out echo late with 2 pipe write ends; expects them closed by the "
             "next call",
             0, late_response),
    {"client/late-response-no-cancel", CONF_CLIENT, "18.4", "FRAME-29", CONF_SHOULD,
     "runs late-response; expects no CANCEL for the request-response call that timed out", 0,
     "late-response", late_response_no_cancel, NULL},
    SCENARIO("eof-with-fds", "ERR-15,ERR-16,ORPHAN-2",
             "sends 7 bytes of a response with 2 pipe write ends, closes; expects them closed "
             "by the probe",
             0, eof_with_fds),
    SCENARIO("many-in-flight", "FRAME-12,FD-RECV-7,CONTRACT-14",
             "takes 16 echo calls with 1 FD each, then answers them in reverse order", 0,
             many_in_flight),
    SCENARIO("echo-large", "FRAME-8,FRAME-9,FRAME-10,FD-SEND-4,FD-RECV-6",
             "echoes a 17 MiB tag and 1 FD, fragmented both ways", 0, echo_large),
    SCENARIO("ctrunc", "ERR-6,ERR-2,ERR-3",
             "sends 5 pipe write ends to a client that can install 2 (RLIMIT_NOFILE); expects "
             "the connection closed and all 5 closed",
             CONF_NEEDS_LAUNCH, ctrunc),
    SCENARIO("keepalive", "FRAME-26,FRAME-27",
             "sends KEEPALIVE with RESPOND and 9 bytes before answering echo; expects a "
             "KEEPALIVE back without RESPOND, position 0, the same 9 bytes",
             0, keepalive),
    SCENARIO("server-request", "FRAME-28,ERR-1",
             "answers echo with a REQUEST_RESPONSE on stream 2 carrying a pipe write end; "
             "expects the connection closed, the pipe closed by the probe",
             0, server_request),
    SCENARIO("payload-metadata", "META-22,META-21,META-3,FD-CARRY-3,OWN-3",
             "answers echo without payloadMetadata, with an empty one and with two members, "
             "the last two with pipe write ends; expects the first closed, the second kept "
             "until the next claim",
             0, payload_metadata),
    {"client/passrights-off", CONF_CLIENT, "18.4", "PASSRIGHTS-1,PASSRIGHTS-2,ERR-9,OWN-5",
     CONF_MUST,
     "refuses FDs with SO_PASSRIGHTS=0 on the first connection; expects no byte of the request "
     "there, then serves the probe on a second connection",
     0, "passrights-off", passrights_off, refuse_fds_on_listener},
};

const size_t conf_n_client_cases = sizeof(conf_client_cases) / sizeof(conf_client_cases[0]);
