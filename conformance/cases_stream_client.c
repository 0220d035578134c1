/* SPDX-License-Identifier: MIT */
/*
 * Cases for a client under test on streams and sinks (spec section 21 and
 * the scenarios of 18.4 that use streamFds and sinkFds): the harness is the
 * server.  It sends stream items carrying harness pipe read ends (18.3), so
 * that it can tell whether the client closed each of them, and follows the
 * client's credits unless a scenario says otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"
#include "compact.h"
#include "serve.h"

#define METHOD_STREAM_FDS "streamFds"
#define METHOD_SINK_FDS   "sinkFds"
#define EXT_SINK          "sink"
#define EXT_EXCEPTION     "exception"

enum {
	TIMEOUT_CALL_MS = 500, /* the stream-timeout scenario's timeout */
	SLOW_ITEMS_MS = 1000,  /* how late stream-timeout's second stream sends its items */
	SETTLE_MS = 200,       /* sink-2: how long the harness lets early items arrive */
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

/* Whether the client exited with status 2: it says so when it cannot run the scenario. */
static bool
cannot_run(struct conf_ctx *ctx)
{
	int status = 0;

	return serve_client_exited(ctx, &status) == 1 && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 2;
}

/* The stream request streamFds(@count, @per_item), as the scenario says; its stream id in *id. */
static enum conf_result
expect_stream(struct serve_conn *c, int32_t count, int32_t per_item, uint32_t *id)
{
	struct serve_request req;
	enum conf_result result = serve_expect(c, &req, METHOD_STREAM_FDS, NULL, 0);

	if (result != CONF_PASS)
		return result;
	*id = req.stream_id;
	if (req.count != count || req.per_item != per_item)
		result = conf_fail(c->ctx,
		                   "expected streamFds(%d, %d), the client asked for "
		                   "streamFds(%d, %d)",
		                   count, per_item, req.count, req.per_item);
	else if (req.n_frames != 1)
		result = conf_fail(c->ctx,
		                   "the streamFds request came in %zu fragments; it fits one "
		                   "frame",
		                   req.n_frames);
	serve_request_free(&req);
	return result;
}

/*
 * Item @index of a stream carrying the harness pipe read ends @readers (n):
 * its report describes them as the harness holds them, then they are sent
 * and the harness's copies closed (set to -1).  @claim NULL: correct.
 */
static enum conf_result
send_item(struct serve_conn *c, uint32_t id, unsigned index, int *readers, size_t n,
          const struct rfd_fd_metadata *claim, bool last)
{
	struct fdt_fdinfo infos[8];
	char tag[16];
	struct fdt_report report = {.tag = tag, .n_fds = n, .fds = n ? infos : NULL};
	enum conf_result result = CONF_PASS;

	snprintf(tag, sizeof(tag), "%u", index);
	for (size_t k = 0; k < n; k++)
		if (fdt_describe_fd(readers[k], &infos[k]) < 0)
			result = conf_fail(c->ctx, "the harness cannot describe its own pipe");
	if (result == CONF_PASS)
		result = serve_stream_item(c, id, &report, readers, n, claim, last);
	case_close_all(readers, n);
	return result;
}

/* Item @index, sent once the client has given credit for it. */
static enum conf_result
send_item_with_credit(struct serve_conn *c, uint32_t id, unsigned index, int *readers, size_t n,
                      bool last)
{
	char awaited[96];
	enum conf_result result;

	snprintf(awaited, sizeof(awaited), "the client's credit for item %u (REQUEST_N, STREAM-1)",
	         index);
	result = serve_wait(c, SERVE_WAIT_CREDIT, id, 0, false, awaited);
	if (result == CONF_PASS)
		result = send_item(c, id, index, readers, n, NULL, last);
	return result;
}

/* The probe; when it arrives, the read ends of @writers (labelled from @first) are closed. */
static enum conf_result
probe_after_read_ends_closed(struct serve_conn *c, const int *writers, size_t n, size_t first,
                             const char *consequence)
{
	struct serve_request req;
	enum conf_result result = serve_expect_probe(c, &req);

	if (result != CONF_PASS)
		return result;
	result =
	    serve_check_read_ends(c->ctx, writers, n, first, "when the probe arrives", consequence);
	if (result == CONF_PASS)
		result = serve_answer(c, &req);
	serve_request_free(&req);
	return result;
}

/* ---- stream-3x2 ---- */

static enum conf_result
stream_3x2(struct conf_ctx *ctx)
{
	enum { ITEMS = 3, PER_ITEM = 2 };
	long long deadline = serve_deadline(ctx);
	int readers[ITEMS * PER_ITEM], writers[ITEMS * PER_ITEM];
	struct serve_conn c;
	enum conf_result result;
	uint32_t id = 0;

	if (serve_read_end_pipes(readers, writers, ITEMS * PER_ITEM) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, ITEMS, PER_ITEM, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(&c, id, NULL, NULL, 0);
	for (unsigned i = 0; result == CONF_PASS && i < ITEMS; i++)
		result = send_item_with_credit(&c, id, i, &readers[i * PER_ITEM], PER_ITEM,
		                               i == ITEMS - 1);
	if (result == CONF_PASS)
		result = probe_after_read_ends_closed(&c, writers, ITEMS * PER_ITEM, 1,
		                                      "the client kept an FD of an item it "
		                                      "consumed");
	if (result == CONF_PASS && serve_stream_find(&c, id)->cancelled)
		result =
		    conf_fail(ctx, "the client sent CANCEL on a stream that it consumed to its "
		                   "end (STREAM-14 asks for CANCEL only when it stops early)");
	case_close_all(readers, ITEMS * PER_ITEM);
	case_close_all(writers, ITEMS * PER_ITEM);
	return finish(&c, result, deadline);
}

/* ---- stream-cancel ---- */

/* The data of the harness's KEEPALIVE in stream-cancel. */
static const uint8_t cancel_ping[] = {'c', 'a', 'n', 'c', 'e', 'l'};

/* After the CANCEL: items 1 and 2 as if they had crossed it, the end, and a KEEPALIVE. */
static enum conf_result
send_crossing_items(struct serve_conn *c, uint32_t id, int *readers)
{
	struct rfd_frame ping = {
	    .type = RFD_FRAME_KEEPALIVE,
	    .flags = RFD_FLAG_FOLLOWS, /* RESPOND */
	    .data = {cancel_ping, sizeof(cancel_ping)},
	};
	enum conf_result result = send_item(c, id, 1, &readers[1], 1, NULL, false);

	if (result == CONF_PASS)
		result = send_item(c, id, 2, &readers[2], 2, NULL, false);
	if (result == CONF_PASS)
		result = serve_stream_complete(c, id);
	if (result == CONF_PASS)
		result = serve_send_frame(c, &ping, NULL, 0, "a KEEPALIVE with RESPOND");
	return result;
}

static enum conf_result
stream_cancel(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[4], writers[4];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	size_t answers;
	uint32_t id = 0;

	if (serve_read_end_pipes(readers, writers, 4) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 5, 1, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(&c, id, NULL, NULL, 0);
	if (result == CONF_PASS)
		result = send_item_with_credit(&c, id, 0, &readers[0], 1, false);
	if (result == CONF_PASS)
		result =
		    serve_wait(&c, SERVE_WAIT_CANCEL, id, 0, false,
		               "a CANCEL for the stream the client stops consuming (STREAM-14)");
	answers = c.n_keepalive_answers;
	if (result == CONF_PASS)
		result = send_crossing_items(&c, id, readers);
	if (result == CONF_PASS)
		result = serve_wait(&c, SERVE_WAIT_KEEPALIVE, 0, answers, true,
		                    "the client's answer to a KEEPALIVE with RESPOND (FRAME-26)");
	if (result == CONF_PASS)
		result =
		    serve_check_read_ends(ctx, &writers[1], 3, 2,
		                          "when the client answered the KEEPALIVE sent after them",
		                          "the client did not claim and close the FDs of items "
		                          "that came after its CANCEL (STREAM-13, FD-CARRY-5)");
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "after", 1);
	if (result == CONF_PASS) {
		result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS)
		result = probe_after_read_ends_closed(&c, writers, 1, 1,
		                                      "the client kept the FD of the item it "
		                                      "consumed before cancelling");
	case_close_all(readers, 4);
	case_close_all(writers, 4);
	return finish(&c, result, deadline);
}

/* ---- stream-bad-seq ---- */

static enum conf_result
stream_bad_seq(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = {
	    .present = true, .has_seq = true, .fd_seq = 5, .has_num = true, .num_fds = 1};
	long long deadline = serve_deadline(ctx);
	int reader, writer;
	struct serve_conn c;
	enum conf_result result;
	uint32_t id = 0;

	if (serve_read_end_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 2, 1, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(&c, id, NULL, NULL, 0);
	if (result == CONF_PASS)
		result = serve_wait(&c, SERVE_WAIT_CREDIT, id, 0, false, "the client's credit");
	if (result == CONF_PASS)
		result = send_item(&c, id, 0, &reader, 1, &claim, false);
	if (result == CONF_PASS)
		result = serve_expect_close(&c, "after a stream item with fdSeqNum 5 instead of 0, "
		                                "which fails the stream and the connection "
		                                "(STREAM-12)");
	serve_close(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result =
		    finish(&c,
		           probe_after_read_ends_closed(&c, &writer, 1, 1,
		                                        "the client kept the FD of an item "
		                                        "whose claim failed (STREAM-12, ERR-1)"),
		           deadline);
	if (reader >= 0)
		close(reader);
	close(writer);
	return result;
}

/* ---- stream-contract ---- */

static enum conf_result
stream_contract(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int reader, writer;
	struct serve_conn c;
	struct rfd_buf bytes;
	enum conf_result result;
	uint32_t id = 0;

	if (serve_read_end_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 2, 1, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(&c, id, NULL, NULL, 0);
	if (result == CONF_PASS) {
		rfd_buf_init(&bytes);
		wire_encode_request_n(&bytes, id, 5);
		result = serve_send_bytes(&c, bytes.data, bytes.len, NULL, 0);
		rfd_buf_free(&bytes);
	}
	/* The client may have closed the connection already: the item is best effort. */
	if (result == CONF_PASS && send_item(&c, id, 0, &reader, 1, NULL, false) != CONF_PASS)
		ctx->reason[0] = '\0';
	if (reader >= 0)
		close(reader);
	if (result == CONF_PASS)
		result = serve_expect_close(&c, "after a REQUEST_N from the server on a stream, "
		                                "which fails the stream and the connection "
		                                "(STREAM-18)");
	serve_close(&c);
	if (result == CONF_PASS)
		result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result =
		    finish(&c,
		           probe_after_read_ends_closed(&c, &writer, 1, 1,
		                                        "the client kept the FD of an item "
		                                        "that came on a broken stream (ERR-1)"),
		           deadline);
	close(writer);
	return result;
}

/* ---- stream-timeout ---- */

/* The timed-out stream answered late: first response with R1, an item with R2 and R3, the end. */
static enum conf_result
answer_late(struct serve_conn *c, uint32_t id, int *readers)
{
	enum conf_result result = serve_stream_first(c, id, NULL, &readers[0], 1);

	close(readers[0]);
	readers[0] = -1;
	if (result == CONF_PASS)
		result = send_item(c, id, 0, &readers[1], 2, NULL, false);
	if (result == CONF_PASS)
		result = serve_stream_complete(c, id);
	return result;
}

/* The second stream: the first response at once, its two items only after a pause. */
static enum conf_result
answer_slowly(struct serve_conn *c, int *readers)
{
	enum conf_result result;
	uint32_t id = 0;

	result = expect_stream(c, 2, 1, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(c, id, NULL, NULL, 0);
	if (result == CONF_PASS)
		poll(NULL, 0, SLOW_ITEMS_MS);
	for (unsigned i = 0; result == CONF_PASS && i < 2; i++)
		result = send_item_with_credit(c, id, i, &readers[i], 1, false);
	if (result == CONF_PASS)
		result = serve_stream_complete(c, id);
	return result;
}

static enum conf_result
stream_timeout(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[5], writers[5];
	struct serve_request gap, next;
	struct serve_conn c;
	enum conf_result result;
	uint32_t id = 0;

	if (serve_read_end_pipes(readers, writers, 5) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 1, 2, &id);
	if (result == CONF_PASS)
		result = serve_expect(&c, &gap, FDT_METHOD_ECHO, "gap", 0);
	if (result == CONF_PASS && !serve_stream_find(&c, id)->cancelled)
		result = conf_fail(ctx, "echo(\"gap\") arrived, but no CANCEL for the stream whose "
		                        "first response timed out (STREAM-14)");
	if (result == CONF_PASS)
		result = answer_late(&c, id, readers);
	if (result == CONF_PASS)
		result = serve_answer(&c, &gap);
	if (result == CONF_PASS || gap.tag)
		serve_request_free(&gap);
	if (result == CONF_PASS)
		result = serve_expect(&c, &next, FDT_METHOD_ECHO, "next", 1);
	if (result == CONF_PASS) {
		result = serve_check_read_ends(ctx, writers, 3, 1, "when echo(\"next\") arrives",
		                               "the client did not claim and close the FDs of a "
		                               "stream that timed out (STREAM-13, FD-CARRY-5)");
		if (result == CONF_PASS)
			result = serve_answer(&c, &next);
		serve_request_free(&next);
	}
	if (result == CONF_PASS)
		result = answer_slowly(&c, &readers[3]);
	if (result == CONF_PASS)
		result =
		    probe_after_read_ends_closed(&c, &writers[3], 2, 4,
		                                 "the client kept an FD of an item of the slow "
		                                 "stream");
	case_close_all(readers, 5);
	case_close_all(writers, 5);
	return finish(&c, result, deadline);
}

/* ---- stream-bad-item ---- */

/* The data of the harness's KEEPALIVE in stream-bad-item. */
static const uint8_t bad_item_ping[] = {'b', 'a', 'd', '-', 'i', 't', 'e', 'm'};

/*
 * Item 0 of stream-bad-item: `29 20` with R1, correctly claimed, and the
 * report of 17.5, but a payloadMetadata union with no member (`3c 00`).
 */
static enum conf_result
send_empty_union_item(struct serve_conn *c, uint32_t id, int *reader)
{
	struct rfd_fd_metadata claim = wire_claim(&c->w, 1);
	struct fdt_fdinfo info;
	struct fdt_report report = {.tag = (char *)"0", .n_fds = 1, .fds = &info};
	struct fdt_bytes data = {0};
	struct rfd_frame frame = {
	    .stream_id = id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_METADATA,
	    .has_metadata = true,
	};
	struct rfd_buf metadata;
	struct rfd_cw w;
	enum conf_result result = CONF_PASS;

	rfd_buf_init(&metadata);
	rfd_cw_init(&w, &metadata);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 3);
	rfd_cw_struct_begin(&w);
	rfd_cw_struct_end(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 5);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i64(&w, 1, claim.fd_seq);
	rfd_cw_field_i32(&w, 2, claim.num_fds);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	if (rfd_cw_finish(&w) < 0 || fdt_describe_fd(*reader, &info) < 0 ||
	    fdt_encode_report_result(&report, &data) < 0)
		result = conf_fail(c->ctx, "the harness cannot build item 0");
	frame.metadata = (struct rfd_slice){metadata.data, metadata.len};
	frame.data = (struct rfd_slice){data.data, data.len};
	if (result == CONF_PASS)
		result = serve_send_frame(c, &frame, reader, 1,
		                          "item 0 with an empty payloadMetadata union");
	if (result == CONF_PASS)
		serve_stream_find(c, id)->used++;
	close(*reader);
	*reader = -1;
	fdt_bytes_free(&data);
	rfd_buf_free(&metadata);
	return result;
}

/* After the CANCEL: item 1 with R2 claimed at fdSeqNum 5 (1 is right), the end, a KEEPALIVE. */
static enum conf_result
send_bad_seq_after_cancel(struct serve_conn *c, uint32_t id, int *reader)
{
	struct rfd_fd_metadata claim = {
	    .present = true, .has_seq = true, .fd_seq = 5, .has_num = true, .num_fds = 1};
	struct rfd_frame ping = {
	    .type = RFD_FRAME_KEEPALIVE,
	    .flags = RFD_FLAG_FOLLOWS, /* RESPOND */
	    .data = {bad_item_ping, sizeof(bad_item_ping)},
	};
	enum conf_result result = send_item(c, id, 1, reader, 1, &claim, false);

	if (result == CONF_PASS)
		result = serve_stream_complete(c, id);
	if (result == CONF_PASS)
		result = serve_send_frame(c, &ping, NULL, 0, "a KEEPALIVE with RESPOND");
	return result;
}

static enum conf_result
stream_bad_item(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	size_t answers;
	uint32_t id = 0;

	if (serve_read_end_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 3, 1, &id);
	if (result == CONF_PASS)
		result = serve_stream_first(&c, id, NULL, NULL, 0);
	if (result == CONF_PASS)
		result = serve_wait(&c, SERVE_WAIT_CREDIT, id, 0, false,
		                    "the client's credit for item 0 (REQUEST_N, STREAM-1)");
	if (result == CONF_PASS)
		result = send_empty_union_item(&c, id, &readers[0]);
	if (result == CONF_PASS)
		result =
		    serve_wait(&c, SERVE_WAIT_CANCEL, id, 0, false,
		               "a CANCEL for the stream whose item 0 was neither a result nor an "
		               "exception, before any other request (STREAM-20, STREAM-14)");
	answers = c.n_keepalive_answers;
	if (result == CONF_PASS)
		result = send_bad_seq_after_cancel(&c, id, &readers[1]);
	if (result == CONF_PASS)
		result = serve_wait(&c, SERVE_WAIT_KEEPALIVE, 0, answers, true,
		                    "the client's answer to a KEEPALIVE with RESPOND, on the same "
		                    "connection (STREAM-20, STREAM-21, FRAME-26)");
	if (result == CONF_PASS)
		result =
		    serve_check_read_ends(ctx, writers, 2, 1,
		                          "when the client answered the KEEPALIVE sent after "
		                          "them",
		                          "the client did not close the FD of the item that "
		                          "failed its stream (STREAM-20), or did not claim that "
		                          "of the item after its CANCEL (FD-CARRY-5)");
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, FDT_METHOD_ECHO, "after", 1);
	if (result == CONF_PASS) {
		result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS) {
		result = serve_expect_probe(&c, &req);
		if (result == CONF_PASS) {
			result = serve_answer(&c, &req);
			serve_request_free(&req);
		}
	}
	case_close_all(readers, 2);
	case_close_all(writers, 2);
	return finish(&c, result, deadline);
}

/* ---- sink-2 ---- */

/* The next sink item: @tag with one FD, described into *info and closed. */
static enum conf_result
take_item(struct serve_conn *c, uint32_t id, const char *tag, struct fdt_fdinfo *info)
{
	struct serve_sink_event ev;
	enum conf_result result = serve_sink_next(c, id, &ev);

	if (result != CONF_PASS)
		return result;
	if (ev.complete)
		result =
		    conf_fail(c->ctx, "the client completed the sink before sending \"%s\"", tag);
	else if (strcmp(ev.tag, tag) != 0)
		result = conf_fail(c->ctx, "expected the sink item \"%s\", the client sent \"%s\"",
		                   tag, ev.tag);
	else if (ev.fds.n != 1)
		result =
		    conf_fail(c->ctx, "the sink item \"%s\" carries %zu FDs, not 1", tag, ev.fds.n);
	else if (fdt_describe_fd(ev.fds.fds[0], info) < 0)
		result = conf_fail(c->ctx, "the harness cannot describe the FD of \"%s\"", tag);
	case_close_all(ev.fds.fds, ev.fds.n);
	return result;
}

static enum conf_result
sink_2(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct fdt_fdinfo infos[2];
	struct fdt_report report = {.tag = (char *)"sink-2", .n_fds = 2, .fds = infos};
	struct serve_sink_event end;
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result = serve_connect(ctx, deadline, &c);
	uint32_t id = 0;

	/* Sinks are optional: a client that cannot run the scenario says so with status 2. */
	if (result != CONF_PASS && cannot_run(ctx))
		return conf_skip(ctx, "the client exited with status 2 without connecting: it "
		                      "cannot run sink-2 (sinks are optional)");
	if (result != CONF_PASS)
		return result;
	if (!c.has_offer ||
	    !wire_extension_named((struct rfd_slice){(const uint8_t *)c.offer, strlen(c.offer)},
	                          EXT_SINK)) {
		serve_close(&c);
		return conf_skip(ctx,
		                 "the client's SETUP does not offer the extension sink (EXT-1): "
		                 "the scenario runs only with a client that does");
	}
	result = serve_expect(&c, &req, METHOD_SINK_FDS, "sink-2", 0);
	if (result == CONF_PASS) {
		id = req.stream_id;
		serve_request_free(&req);
		result = serve_stream_first(&c, id, EXT_SINK, NULL, 0);
	}
	if (result == CONF_PASS)
		result = serve_sink_credit(&c, id, 1);
	if (result == CONF_PASS)
		result = take_item(&c, id, "one", &infos[0]);
	/* An item the client sent without credit must not pass for one sent with the next. */
	if (result == CONF_PASS)
		result = serve_settle(&c, SETTLE_MS);
	if (result == CONF_PASS)
		result = serve_sink_credit(&c, id, 1);
	if (result == CONF_PASS)
		result = take_item(&c, id, "two", &infos[1]);
	if (result == CONF_PASS)
		result = serve_sink_next(&c, id, &end);
	if (result == CONF_PASS && !end.complete) {
		case_close_all(end.fds.fds, end.fds.n);
		result =
		    conf_fail(ctx, "the client sent a third item (\"%s\") on the sink", end.tag);
	}
	if (result == CONF_PASS)
		result = serve_sink_final(&c, id, &report);
	return finish(&c, result, deadline);
}

/* ---- sink-first-complete ---- */

/*
 * A first response of stream or sink @id that the client must refuse:
 * PAYLOAD NEXT|METADATA and @flags, ResponseRpcMetadata {7: payloadMetadata,
 * 12: FdMetadata}, data `00`, carrying *reader claimed correctly.  The
 * payloadMetadata union is responseMetadata with @result_member, else
 * empty (`7c 00`).  The harness's copy of *reader is closed.
 */
static enum conf_result
send_odd_first(struct serve_conn *c, uint32_t id, uint16_t flags, bool result_member, int *reader,
               const char *what)
{
	static const uint8_t empty_result[] = {0x00};
	struct rfd_fd_metadata claim = wire_claim(&c->w, 1);
	struct rfd_frame frame = {
	    .stream_id = id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_METADATA | flags,
	    .has_metadata = true,
	    .data = {empty_result, sizeof(empty_result)},
	};
	struct rfd_buf metadata;
	struct rfd_cw w;
	enum conf_result result = CONF_PASS;

	rfd_buf_init(&metadata);
	rfd_cw_init(&w, &metadata);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 7);
	rfd_cw_struct_begin(&w);
	if (result_member) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 1);
		rfd_cw_struct_begin(&w);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 12);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i64(&w, 1, claim.fd_seq);
	rfd_cw_field_i32(&w, 2, claim.num_fds);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	if (rfd_cw_finish(&w) < 0)
		result = conf_fail(c->ctx, "the harness cannot build %s", what);
	frame.metadata = (struct rfd_slice){metadata.data, metadata.len};
	if (result == CONF_PASS)
		result = serve_send_frame(c, &frame, reader, 1, what);
	if (result == CONF_PASS)
		serve_stream_find(c, id)->first_sent = true;
	close(*reader);
	*reader = -1;
	rfd_buf_free(&metadata);
	return result;
}

/* Nothing came on sink @id after its first response, up to the moment @when names (SINK-14). */
static enum conf_result
sink_left_alone(struct serve_conn *c, uint32_t id, const char *when)
{
	const struct serve_stream *st = serve_stream_find(c, id);
	const char *sent = NULL;

	for (size_t i = 0; i < c->n_sink_events; i++)
		if (c->sink_events[i].stream_id == id)
			sent = c->sink_events[i].complete ? "its completion" : "an item";
	if (st->cancelled)
		sent = "an ERROR";
	if (!sent)
		return CONF_PASS;
	return conf_fail(c->ctx,
	                 "%s, the client had sent %s on the sink whose first response had "
	                 "COMPLETE and a result; it must send nothing more on it (SINK-14)",
	                 when, sent);
}

/* What a client may not have sent on stream @id by the time @when says. */
typedef enum conf_result quiet_check_fn(struct serve_conn *c, uint32_t id, const char *when);

/*
 * echo("after") with a /dev/null FD: @quiet holds for stream @id, and
 * @writer's read end is closed (else the case fails saying @kept); answered.
 */
static enum conf_result
expect_echo_after(struct serve_conn *c, uint32_t id, int writer, quiet_check_fn *quiet,
                  const char *kept)
{
	static const char when[] = "when echo(\"after\") arrives";
	struct serve_request req;
	enum conf_result result = serve_expect(c, &req, FDT_METHOD_ECHO, "after", 1);

	if (result != CONF_PASS)
		return result;
	result = quiet(c, id, when);
	if (result == CONF_PASS)
		result = serve_check_read_ends(c->ctx, &writer, 1, 1, when, kept);
	if (result == CONF_PASS)
		result = serve_answer(c, &req);
	serve_request_free(&req);
	return result;
}

/* echo("after") with a /dev/null FD: R1 closed and the sink left alone by then; answered. */
static enum conf_result
expect_after(struct serve_conn *c, uint32_t id, int writer)
{
	return expect_echo_after(c, id, writer, sink_left_alone,
	                         "the client kept the FD claimed with the first response that "
	                         "failed its sink (SINK-14, FD-CARRY-3)");
}

static enum conf_result
sink_first_complete(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	int reader, writer;
	uint32_t id = 0;

	if (serve_read_end_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	/* Sinks are optional: a client that cannot run the scenario says so with status 2. */
	if (result != CONF_PASS && cannot_run(ctx)) {
		close(reader);
		close(writer);
		return conf_skip(ctx, "the client exited with status 2 without connecting: it "
		                      "cannot run sink-first-complete (sinks are optional)");
	}
	if (result == CONF_PASS)
		result = serve_expect(&c, &req, METHOD_SINK_FDS, "sink-first-complete", 0);
	if (result == CONF_PASS) {
		id = req.stream_id;
		serve_request_free(&req);
		result = send_odd_first(&c, id, RFD_FLAG_COMPLETE, true, &reader,
		                        "a first response with COMPLETE and a result");
	}
	if (result == CONF_PASS)
		result = expect_after(&c, id, writer);
	if (result == CONF_PASS)
		result = serve_expect_probe(&c, &req);
	if (result == CONF_PASS) {
		result = sink_left_alone(&c, id, "when the probe arrives");
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	if (result == CONF_PASS)
		result = serve_expect_close(&c, "after the scenario's last answer");
	if (result == CONF_PASS)
		result = sink_left_alone(&c, id, "when the client closed the connection");
	if (reader >= 0)
		close(reader);
	close(writer);
	serve_close(&c);
	return result == CONF_PASS ? serve_finish(NULL, ctx, deadline) : result;
}

/* ---- stream-bad-first ---- */

/*
 * The completion `28 40` of stream @id, sent after the client's CANCEL
 * without serve_stream_complete(): the stream stays open in the harness's
 * books, so that a REQUEST_N the client sends after the completion is still
 * one after its CANCEL, not one that crossed the end.
 */
static enum conf_result
complete_after_cancel(struct serve_conn *c, uint32_t id)
{
	struct rfd_buf bytes;
	enum conf_result result;

	rfd_buf_init(&bytes);
	wire_encode_stream_payload(&bytes, id, RFD_FLAG_COMPLETE, false, NULL, NULL, 0);
	result = serve_send_bytes(c, bytes.data, bytes.len, NULL, 0);
	rfd_buf_free(&bytes);
	return result;
}

/* No REQUEST_N came on stream @id, up to the moment @when names (STREAM-20, STREAM-14). */
static enum conf_result
no_credit_given(struct serve_conn *c, uint32_t id, const char *when)
{
	size_t n = serve_stream_find(c, id)->n_request_n;

	if (n == 0)
		return CONF_PASS;
	return conf_fail(c->ctx,
	                 "%s, the client had sent %zu REQUEST_N on the stream whose first "
	                 "response was neither a result nor an exception; it must give that "
	                 "stream up (STREAM-20, STREAM-14)",
	                 when, n);
}

/*
 * echo("after") with a /dev/null FD: no credit given and R1 closed by then;
 * answered.  R2 may still be on its way: the client can send echo("after")
 * as soon as it has sent its CANCEL, before item 0 arrives.
 */
static enum conf_result
expect_after_bad_first(struct serve_conn *c, uint32_t id, int writer)
{
	return expect_echo_after(c, id, writer, no_credit_given,
	                         "the client did not close the FD claimed with the first response "
	                         "that failed its stream (STREAM-20, FD-CARRY-3)");
}

/*
 * The probe: no credit given, and R2 closed, since the answer to
 * echo("after") came after item 0 on the connection; answered.
 */
static enum conf_result
probe_after_bad_first(struct serve_conn *c, uint32_t id, int writer)
{
	struct serve_request req;
	enum conf_result result = serve_expect_probe(c, &req);

	if (result != CONF_PASS)
		return result;
	result = no_credit_given(c, id, "when the probe arrives");
	if (result == CONF_PASS)
		result = serve_check_read_ends(c->ctx, &writer, 1, 2, "when the probe arrives",
		                               "the client did not claim and close the FD of the "
		                               "item that came after its CANCEL, before the answer "
		                               "to echo(\"after\") (STREAM-13, FD-CARRY-5)");
	if (result == CONF_PASS)
		result = serve_answer(c, &req);
	serve_request_free(&req);
	return result;
}

static enum conf_result
stream_bad_first(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	int readers[2], writers[2];
	struct serve_conn c;
	enum conf_result result;
	uint32_t id = 0;

	if (serve_read_end_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS)
		result = expect_stream(&c, 2, 1, &id);
	if (result == CONF_PASS)
		result = send_odd_first(&c, id, 0, false, &readers[0],
		                        "a first response with an empty payloadMetadata union");
	if (result == CONF_PASS)
		result = serve_wait(&c, SERVE_WAIT_CANCEL, id, 0, false,
		                    "a CANCEL for the stream whose first response was neither a "
		                    "result nor an exception, before any other request (STREAM-20, "
		                    "STREAM-14)");
	if (result == CONF_PASS)
		result = send_item(&c, id, 0, &readers[1], 1, NULL, false);
	if (result == CONF_PASS)
		result = complete_after_cancel(&c, id);
	if (result == CONF_PASS)
		result = expect_after_bad_first(&c, id, writers[0]);
	if (result == CONF_PASS)
		result = probe_after_bad_first(&c, id, writers[1]);
	case_close_all(readers, 2);
	case_close_all(writers, 2);
	return finish(&c, result, deadline);
}

/* ---- exception-fds ---- */

static enum conf_result
exception_fds(struct conf_ctx *ctx)
{
	long long deadline = serve_deadline(ctx);
	struct serve_request req;
	struct serve_conn c;
	enum conf_result result;
	int reader, writer;

	if (serve_pipes(&reader, &writer, 1) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = serve_connect(ctx, deadline, &c);
	if (result == CONF_PASS) {
		conf_note(ctx, "the client %s the extension exception",
		          c.has_offer &&
		                  wire_extension_named(
		                      (struct rfd_slice){(const uint8_t *)c.offer, strlen(c.offer)},
		                      EXT_EXCEPTION)
		              ? "offers"
		              : "does not offer");
		result = serve_expect(&c, &req, FDT_METHOD_OPEN, "exception-fds", 0);
	}
	if (result == CONF_PASS) {
		result = serve_reply_fdtest_error_fds(&c, req.stream_id, "exception-fds: injected",
		                                      ENOENT, &writer, 1);
		serve_request_free(&req);
	}
	close(writer);
	if (result == CONF_PASS)
		result = serve_expect_probe(&c, &req);
	if (result == CONF_PASS) {
		result = serve_check_pipes(ctx, &reader, 1, true, "when the probe arrives",
		                           "the client kept the FD that came with a declared "
		                           "exception (EXT-7, EXT-8, OWN-3)");
		if (result == CONF_PASS)
			result = serve_answer(&c, &req);
		serve_request_free(&req);
	}
	close(reader);
	return finish(&c, result, deadline);
}

/* ---- The table ---- */

#define SCENARIO(name, requirements, sends, run)                                                   \
	{                                                                                          \
		"client/" name, CONF_CLIENT, "18.4", requirements, CONF_MUST, sends, 0, name, run, \
		    NULL                                                                           \
	}

const struct conf_case conf_stream_client_cases[] = {
    SCENARIO("stream-3x2", "STREAM-1,STREAM-5,STREAM-8,FD-ASSOC-4,META-24",
             "serves streamFds(3, 2) with pipe read ends, items within the client's credits, the "
             "last with COMPLETE; expects all 6 closed by the probe and no CANCEL",
             stream_3x2),
    SCENARIO("stream-cancel", "STREAM-13,STREAM-14,FD-CARRY-5,STREAM-8,FRAME-26",
             "sends item 0, waits for CANCEL, then sends 2 more items with 3 pipe read ends and "
             "a KEEPALIVE; expects them closed by the KEEPALIVE's answer, echo(\"after\") aligned",
             stream_cancel),
    SCENARIO("stream-bad-seq", "STREAM-12,ERR-1,FD-ASSOC-6",
             "sends a stream item with fdSeqNum 5 instead of 0; expects the connection closed and "
             "the pipe read end closed by the probe on a new connection",
             stream_bad_seq),
    SCENARIO("stream-contract", "STREAM-18,ERR-1",
             "sends REQUEST_N on the client's stream after its first response, then an item with "
             "a pipe read end; expects the connection closed and the FD closed by the probe",
             stream_contract),
    SCENARIO("stream-timeout", "STREAM-13,STREAM-14,STREAM-15,FD-CARRY-5",
             "answers a timed-out streamFds late with 3 pipe read ends, then a second stream's "
             "items 1 s after its first response; expects the FDs closed and both items taken",
             stream_timeout),
    SCENARIO("stream-bad-item", "STREAM-20,STREAM-21,STREAM-14,FD-CARRY-5,STREAM-8",
             "sends item 0 with an empty payloadMetadata union and a pipe read end, waits for "
             "CANCEL, then item 1 with fdSeqNum 5 instead of 1 and the end; expects both closed, "
             "echo(\"after\") aligned on the same connection",
             stream_bad_item),
    SCENARIO("sink-2", "SINK-2,SINK-5,SINK-6,SINK-8,EXT-1,EXT-2,EXT-6,FD-SEND-9",
             "accepts the extension sink, grants one credit at a time, takes 2 items with 1 FD "
             "each, answers the final report (skipped when the client does not offer sink)",
             sink_2),
    SCENARIO("sink-first-complete", "SINK-14,FD-CARRY-3",
             "answers sinkFds with a first response 29 60 (COMPLETE, a result) carrying a pipe "
             "read end; expects nothing more on the sink, the FD closed by echo(\"after\"), and "
             "the probe on the same connection",
             sink_first_complete),
    SCENARIO("stream-bad-first", "STREAM-20,STREAM-14,FD-CARRY-5",
             "answers streamFds(2, 1) with a first response with an empty payloadMetadata union "
             "and a pipe read end, waits for CANCEL, then item 0 with another and the end; "
             "expects no REQUEST_N, the first closed by echo(\"after\"), aligned, the second by "
             "the probe",
             stream_bad_first),
    SCENARIO("exception-fds", "EXT-7,EXT-8,FD-CARRY-3,OWN-3,META-19",
             "answers open with FdTestError carrying a pipe write end, offered exception or not; "
             "expects it closed by the probe",
             exception_fds),
};

const size_t conf_n_stream_client_cases =
    sizeof(conf_stream_client_cases) / sizeof(conf_stream_client_cases[0]);
