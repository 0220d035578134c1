/* SPDX-License-Identifier: MIT */
/* Helpers the cases share: connecting, calling FdTest methods raw, leak checks. */
#ifndef RFD_CONFORM_CASES_H
#define RFD_CONFORM_CASES_H

#include "fdtest.h"
#include "harness.h"
#include "wire.h"

/* Connect to the server under test and complete SETUP; CONF_PASS or a failure recorded. */
enum conf_result case_connect(struct conf_ctx *ctx, struct wire *w);

/*
 * Send FdTest @method with the args {1: @text} (NULL: empty args) and @n_fds
 * FDs in one write.  @claim NULL: the correct fdMetadata; otherwise sent as
 * given.  @type REQUEST_RESPONSE or REQUEST_FNF.  Returns the stream id, or 0
 * with the failure recorded.
 */
uint32_t case_send_call(struct conf_ctx *ctx, struct wire *w, uint8_t type, const char *method,
                        const char *text, const int *fds, size_t n_fds,
                        const struct rfd_fd_metadata *claim);

/* Read the answer on @stream_id; CONF_PASS with *reply filled, or a failure recorded. */
enum conf_result case_read_reply(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id,
                                 struct wire_reply *reply);

/* A successful call of inspect/lastRecorded: its FdReport. */
enum conf_result case_expect_report(struct conf_ctx *ctx, struct wire_reply *reply,
                                    struct fdt_report *report);

/* An ERROR INVALID answer carrying ResponseRpcError code REQUEST_PARSING_FAILURE. */
enum conf_result case_expect_fd_error(struct conf_ctx *ctx, const struct wire_reply *reply);

/* The target's open FD count now (-1: unknown, the harness did not launch it). */
int case_fd_baseline(const struct conf_ctx *ctx);

/* The target's FD count returned to @baseline (waiting a little); true when unknown. */
bool case_fd_settled(struct conf_ctx *ctx, int baseline, int *now);

/* N pipes: read ends kept in @readers, write ends in @writers. */
int case_pipes(int *readers, int *writers, size_t n);
void case_close_all(int *fds, size_t n);

/* Every pipe in @readers sees EOF within the case's wait; the index of the first that does not, or
 * -1. */
int case_all_eof(struct conf_ctx *ctx, const int *readers, size_t n);

/* True when every copy of the pipe's write end is closed at this moment (no waiting). */
bool case_closed_now(int read_end);

/* Non-empty, valid UTF-8: what a "text saying why" must be. */
bool case_utf8_text(const uint8_t *bytes, size_t len);

/*
 * An answer as case_read_answer() reads it: the reply (fragments
 * reassembled, FDs claimed), the flags of its first and of its last frame,
 * how many frames it took, and whether a frame of another stream came
 * between its fragments; stray_fds counts the FDs that arrived while it
 * was read and that it did not claim.
 */
struct case_answer {
	uint32_t stream_id;
	struct wire_reply reply;
	uint16_t first_flags;
	uint16_t flags;
	size_t n_frames;
	bool interleaved;
	int64_t stray_fds;
};

/* case_read_answer()'s @stream_id for "the first answer on whichever stream". */
#define CASE_ANY_STREAM 0u

/*
 * Read frames until the answer on @stream_id is complete, within
 * @timeout_ms.  An ERROR on stream 0 fails the case (the server failed the
 * connection); with @strict so does a PAYLOAD or ERROR on any other stream
 * (the server answered something it was not asked, such as a one-way
 * request).  CONF_PASS with *answer filled (release it with
 * case_answer_free), or a failure recorded.
 */
enum conf_result case_read_answer(struct conf_ctx *ctx, struct wire *w, uint32_t stream_id,
                                  bool strict, int timeout_ms, struct case_answer *answer);
void case_answer_free(struct case_answer *answer);

/*
 * An ERROR @code on the request's stream whose data is a ResponseRpcError
 * with a non-empty what_utf8, @category and @rpc_code, and no FD with it.
 * @what names the request in the reason.
 */
enum conf_result case_expect_rpc_error(struct conf_ctx *ctx, const struct case_answer *answer,
                                       const char *what, uint32_t code, int32_t category,
                                       int32_t rpc_code);

#endif
