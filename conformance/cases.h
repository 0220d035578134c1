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

/* Every pipe in @readers sees EOF within the case's wait; the index of the first that does not, or -1. */
int case_all_eof(struct conf_ctx *ctx, const int *readers, size_t n);

#endif
