/* SPDX-License-Identifier: MIT */
/*
 * The harness as the FdTest server of a client under test (spec 18.3): it
 * accepts the client's connections, checks its SETUP and every request
 * against the sender rules, answers as a conforming server or with a
 * deliberate fault, keeps harness pipes for leak checks, and judges the
 * client's exit status.
 *
 * Functions returning enum conf_result record the reason of a failure or a
 * skip in the context (conf_fail, conf_skip); CONF_PASS means "go on".
 *
 * Reads on a connection never go past the end of the frame being read, so
 * every FD group is pinned to the one frame whose bytes it came with: that
 * is how the sender rules FD-SEND-3 and FD-CARRY-1 become observable.
 */
#ifndef RFD_CONFORM_SERVE_H
#define RFD_CONFORM_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "fdtest.h"
#include "harness.h"
#include "wire.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

/* Received FD groups a connection can hold: the capacity of struct wire's groups. */
enum { SERVE_MAX_GROUPS = 16 };

/* A request being reassembled from its fragments. */
struct serve_message {
	bool active;
	uint32_t stream_id;
	uint8_t type;
	size_t n_frames;
	bool has_metadata;
	struct rfd_buf metadata;
	struct rfd_buf data;
	uint32_t initial_n; /* REQUEST_STREAM, REQUEST_CHANNEL: the initial request N */
	uint16_t flags;     /* of the first frame */
};

/* Streams and sinks a connection can have open at once (spec section 21). */
enum { SERVE_MAX_STREAMS = 8, SERVE_MAX_SINK_EVENTS = 8 };

/* A stream or sink the client opened, as the harness serves it. */
struct serve_stream {
	uint32_t id;
	bool sink;
	bool first_sent;      /* the harness sent the first response */
	bool cancelled;       /* the client's CANCEL (stream) or ERROR (sink) arrived */
	uint32_t cancel_code; /* sink: the code of the client's ERROR */
	bool completed;       /* sink: the client's completion arrived */
	bool
	    accepted_sink; /* sink: the harness accepted the extension sink in its first response */
	uint64_t granted;  /* stream: items the client gave credit for; sink: the harness did */
	uint64_t used;     /* stream: items the harness sent; sink: items the client sent */
	size_t n_request_n; /* REQUEST_N frames the client sent on the stream */
};

/* What the client sent on a sink: an item (its FDs owned here) or its completion. */
struct serve_sink_event {
	uint32_t stream_id;
	bool complete;
	char tag[64];          /* the item's {0: string}, cut to fit */
	struct wire_group fds; /* claimed by the item's fdMetadata */
};

struct serve_request;

/* The harness's end of one connection from the client under test. */
struct serve_conn {
	struct wire w; /* socket, input bytes, received groups, send counter */
	struct conf_ctx *ctx;
	long long deadline; /* CLOCK_MONOTONIC ms: the case gives up waiting here */
	uint64_t frame_no;  /* frames begun on this connection */
	uint64_t group_frame[SERVE_MAX_GROUPS]; /* the frame each of w.groups came with */
	bool frame_held;                        /* w.in holds the last frame returned */
	uint32_t next_stream;                   /* the stream id FRAME-12 requires next */
	bool skip_allowed; /* the next request may also skip one id (a call failed locally) */
	struct serve_message msg;
	struct fdt_report recorded;  /* the last `record`, answered by lastRecorded */
	const char *forbid_requests; /* non-NULL: a request frame fails the case with this reason */
	uint32_t peer_error;         /* code of an ERROR frame the client sent on stream 0 */
	char peer_error_text[96];
	int32_t setup_min, setup_max; /* the version range of the client's SETUP (0 when absent) */
	size_t n_cancels;             /* CANCEL frames the client sent */
	uint32_t cancel_stream;       /* the stream of the first of them */
	size_t n_keepalive_answers;   /* KEEPALIVE frames without RESPOND the client sent */
	uint8_t keepalive_data[64];   /* the data of the last of them (at most 64 bytes kept) */
	size_t keepalive_len;         /* its whole length */
	/* Streams and sinks (section 21): */
	struct serve_stream streams[SERVE_MAX_STREAMS];
	size_t n_streams;
	struct serve_sink_event sink_events[SERVE_MAX_SINK_EVENTS]; /* arrived, not yet taken */
	size_t n_sink_events;
	bool has_offer; /* the SETUP offered extensions (21.8) */
	char offer[64]; /* the offer's value, cut to fit */
	struct serve_request
	    *held; /* a request that came while the case waited for another thing */
};

/* A complete request, its FDs claimed as 7.5 says. */
struct serve_request {
	uint32_t stream_id;
	uint8_t type; /* RFD_FRAME_REQUEST_RESPONSE or RFD_FRAME_REQUEST_FNF */
	char method[32];
	char *tag; /* argument 1 (NUL-terminated copy); NULL for lastRecorded */
	size_t tag_len;
	struct rfd_fd_metadata claim; /* as the client sent it */
	size_t n_frames;              /* 1, or the number of fragments */
	struct wire_group fds;        /* the request owns them until taken (slots set to -1) */
	/* Streams and sinks: */
	uint32_t initial_n; /* the initial request N of REQUEST_STREAM or REQUEST_CHANNEL */
	int32_t count;      /* streamFds's arguments */
	int32_t per_item;
	int32_t client_timeout_ms; /* RequestRpcMetadata 5, or 0 */
};

/* When a case must have its verdict: a little before the runner's own deadline. */
long long serve_deadline(const struct conf_ctx *ctx);

/* Accept the client's next connection (noting it if the client exited instead). */
enum conf_result serve_accept(struct conf_ctx *ctx, long long deadline, struct serve_conn *c);

/*
 * Read the client's first frame and check it against SETUP-1 to SETUP-7;
 * *version is what the setup response must announce (SETUP-19).
 */
enum conf_result serve_read_setup(struct serve_conn *c, int32_t *version);

/* The setup response of 5.5 announcing @version: 0 or a negative errno, nothing recorded. */
int serve_send_setup_response(struct serve_conn *c, int32_t version);

/* serve_read_setup(), then the setup response of 5.5. */
enum conf_result serve_setup(struct serve_conn *c);

/* serve_accept(), then serve_setup(). */
enum conf_result serve_connect(struct conf_ctx *ctx, long long deadline, struct serve_conn *c);

/* Close the connection and every FD it holds. */
void serve_close(struct serve_conn *c);

/*
 * Close the connection after reading, without looking at them, the bytes the
 * client has already sent, so that it sees EOF rather than a reset.
 */
void serve_hang_up(struct serve_conn *c);

/*
 * The next complete request, every frame before it and the request itself
 * checked against the sender rules of 18.3.  Returns 1 with *req, 0 when
 * the client closed the connection, -ETIMEDOUT at the deadline, or -EPROTO
 * with the failure recorded.
 */
int serve_next_request(struct serve_conn *c, struct serve_request *req);

/*
 * The case's failure for a serve_next_request() result @r other than 1,
 * naming what the harness waited for (CONF_FAIL; the reason is recorded).
 */
enum conf_result serve_missing(struct serve_conn *c, int r, const char *awaited);

/*
 * @req must be @method with the tag @tag (NULL: any) and @n_fds FDs; record
 * travels as REQUEST_FNF, every other method as REQUEST_RESPONSE.  On
 * failure @req has been freed.
 */
enum conf_result serve_check_request(struct serve_conn *c, struct serve_request *req,
                                     const char *method, const char *tag, size_t n_fds);

/* serve_next_request(), then serve_check_request(); on failure @req is freed. */
enum conf_result serve_expect(struct serve_conn *c, struct serve_request *req, const char *method,
                              const char *tag, size_t n_fds);

/* The probe of 18.3: echo("probe") without FDs. */
enum conf_result serve_expect_probe(struct serve_conn *c, struct serve_request *req);

/* Close the request's FDs that were not taken and free its tag. */
void serve_request_free(struct serve_request *req);

/*
 * Answer @req as a conforming FdTest server does (section 17): inspect,
 * echo (with the request's FDs), record (stored, no answer), lastRecorded.
 * The request's FDs are closed afterwards.
 */
enum conf_result serve_answer(struct serve_conn *c, struct serve_request *req);

/*
 * A success PAYLOAD on @stream with the result struct @result and @n_fds FDs
 * in one sendmsg (fragmented when it does not fit one frame).  @claim NULL:
 * the correct FdMetadata (none without FDs); otherwise written as given.
 * The FDs stay the caller's.
 */
enum conf_result serve_reply(struct serve_conn *c, uint32_t stream, const uint8_t *result,
                             size_t len, const int *fds, size_t n_fds,
                             const struct rfd_fd_metadata *claim);

/* echo's result {0: @text} of @len bytes, as serve_reply(). */
enum conf_result serve_reply_string(struct serve_conn *c, uint32_t stream, const char *text,
                                    size_t len, const int *fds, size_t n_fds,
                                    const struct rfd_fd_metadata *claim);

/* The declared exception FdTestError {@message, @errnum} (appendix A.7). */
enum conf_result serve_reply_fdtest_error(struct serve_conn *c, uint32_t stream,
                                          const char *message, int32_t errnum);

/* An ERROR frame on @stream: ResponseRpcError {what_utf8 @what, category 1, code 6}. */
enum conf_result serve_reply_invalid(struct serve_conn *c, uint32_t stream, const char *what);

/* An ERROR frame on stream 0 with @code and the UTF-8 text @text. */
enum conf_result serve_send_connection_error(struct serve_conn *c, uint32_t code, const char *text);

/* A KEEPALIVE (no RESPOND, position 0, no data) with @n_fds FDs in one sendmsg. */
enum conf_result serve_send_keepalive(struct serve_conn *c, const int *fds, size_t n_fds);

/* @frame, encoded whole, with @n_fds FDs in one sendmsg; @what names it in a failure. */
enum conf_result serve_send_frame(struct serve_conn *c, const struct rfd_frame *frame,
                                  const int *fds, size_t n_fds, const char *what);

/*
 * A success PAYLOAD (NEXT, COMPLETE) on @stream whose ResponseRpcMetadata is
 * the raw @metadata, however wrong, with echo's result {0: @text} and @n_fds
 * FDs in one sendmsg.
 */
enum conf_result serve_reply_raw_metadata(struct serve_conn *c, uint32_t stream,
                                          const uint8_t *metadata, size_t metadata_len,
                                          const char *text, const int *fds, size_t n_fds);

/*
 * Read the client's frames until it sends a KEEPALIVE without RESPOND
 * (FRAME-26), which must carry @data; a request before it fails the case.
 */
enum conf_result serve_expect_keepalive_answer(struct serve_conn *c, const uint8_t *data,
                                               size_t len);

/* @len raw bytes with @n_fds FDs in one sendmsg (then continued without FDs). */
enum conf_result serve_send_bytes(struct serve_conn *c, const void *bytes, size_t len,
                                  const int *fds, size_t n_fds);

/*
 * The client must now close the connection without sending another
 * request: frames are read until EOF.  An ERROR frame it sends on stream 0
 * first is kept in c->peer_error.  @what names the situation for the reason.
 */
enum conf_result serve_expect_close(struct serve_conn *c, const char *what);

/*
 * The end of every scenario: the client closes @c (NULL: no connection is
 * open) without another request, opens no other connection, and exits
 * with status 0 before the deadline (CONTRACT-10, CONTRACT-12, CONTRACT-13).
 * Closes @c.
 */
enum conf_result serve_finish(struct serve_conn *c, struct conf_ctx *ctx, long long deadline);

/*
 * Harness pipes (18.3): @n pipes, read ends non-blocking in @readers (kept
 * by the harness), write ends in @writers (to be sent, then closed).
 * 0 or a negative errno.
 */
int serve_pipes(int *readers, int *writers, size_t n);

/* "Wk is closed": 1 when a read of @reader returns EOF, 0 when it would block, or -errno. */
int serve_pipe_closed(int reader);

/*
 * Every pipe of @readers is closed (@closed true) or open (false) right now;
 * otherwise the case fails with "W<k> is <state> @when: @consequence".
 */
enum conf_result serve_check_pipes(struct conf_ctx *ctx, const int *readers, size_t n, bool closed,
                                   const char *when, const char *consequence);

/*
 * 1 when the client under test has exited, with *status as waitpid() reports
 * it; 0 while it runs or when the harness did not start it; a negative errno.
 */
int serve_client_exited(const struct conf_ctx *ctx, int *status);

/* ---- Streams and sinks (spec section 21) ---- */

/* The stream or sink @id the client opened on @c, or NULL. */
struct serve_stream *serve_stream_find(struct serve_conn *c, uint32_t id);

/* What serve_wait() waits for. */
enum serve_wait {
	SERVE_WAIT_CREDIT,    /* the client's credit for one more item on stream @id */
	SERVE_WAIT_CANCEL,    /* the client's CANCEL on stream @id */
	SERVE_WAIT_KEEPALIVE, /* more KEEPALIVE answers than @count */
	SERVE_WAIT_SINK,      /* an item or the completion of sink @id */
};

/*
 * Read the client's frames until @what has happened.  A request that
 * completes meanwhile is kept for the next serve_next_request() when
 * @hold_request, and fails the case otherwise ("@awaited" names what the
 * harness waited for).  CONF_PASS, or the failure recorded.
 */
enum conf_result serve_wait(struct serve_conn *c, enum serve_wait what, uint32_t id, size_t count,
                            bool hold_request, const char *awaited);

/*
 * The first response of stream or sink @id: a PAYLOAD NEXT|METADATA whose
 * ResponseRpcMetadata has responseMetadata and, with @answer, otherMetadata
 * {"rocketfd.fds": @answer}; the data `00`; @fds in the same sendmsg,
 * claimed correctly.  On a sink whose @answer names sink, the harness takes
 * item FDs from then on (EXT-6).
 */
enum conf_result serve_stream_first(struct serve_conn *c, uint32_t id, const char *answer,
                                    const int *fds, size_t n_fds);

/*
 * An item of stream @id: PAYLOAD NEXT|METADATA (COMPLETE too with @last),
 * StreamPayloadMetadata {responseMetadata, fdMetadata}, data {0: FdReport
 * @report}, with @fds in one sendmsg.  @claim NULL: correct.  It uses one
 * of the client's credits, whether or not there is one.
 */
enum conf_result serve_stream_item(struct serve_conn *c, uint32_t id,
                                   const struct fdt_report *report, const int *fds, size_t n_fds,
                                   const struct rfd_fd_metadata *claim, bool last);

/* The completion `28 40` of stream @id. */
enum conf_result serve_stream_complete(struct serve_conn *c, uint32_t id);

/*
 * Read and process whatever the client sends within @ms (a request fails the
 * case), so that what it sent before now is judged by the state before now.
 */
enum conf_result serve_settle(struct serve_conn *c, int ms);

/* REQUEST_N @n on sink @id, adding to the client's credit. */
enum conf_result serve_sink_credit(struct serve_conn *c, uint32_t id, uint32_t n);

/* The next item or completion the client sent on sink @id (waiting for it); *ev owns its FDs. */
enum conf_result serve_sink_next(struct serve_conn *c, uint32_t id, struct serve_sink_event *ev);

/* A sink's final response: PAYLOAD NEXT|COMPLETE|METADATA, StreamPayloadMetadata, {0: @report}. */
enum conf_result serve_sink_final(struct serve_conn *c, uint32_t id,
                                  const struct fdt_report *report);

/* The declared exception FdTestError {@message, @errnum} with @fds, claimed correctly. */
enum conf_result serve_reply_fdtest_error_fds(struct serve_conn *c, uint32_t stream,
                                              const char *message, int32_t errnum, const int *fds,
                                              size_t n_fds);

/*
 * Harness pipe read ends (18.3): @n pipes whose read ends go in @readers
 * (to be sent, then closed) and whose write ends, non-blocking, stay in
 * @writers.  0 or a negative errno.
 */
int serve_read_end_pipes(int *readers, int *writers, size_t n);

/* "Rk is closed": 1 when a write of one byte to @writer fails with EPIPE, 0 when it succeeds. */
int serve_read_end_closed(int writer);

/*
 * Every read end of @writers is closed right now; otherwise the case fails
 * with "R<k> is still open @when: @consequence", k counted from @first.
 */
enum conf_result serve_check_read_ends(struct conf_ctx *ctx, const int *writers, size_t n,
                                       size_t first, const char *when, const char *consequence);

/*
 * Set the soft RLIMIT_NOFILE of @pid to the smallest value below which
 * exactly @room FD numbers are free (judged from /proc/PID/fd); *saved gets
 * the old limits.  0 or a negative errno.
 */
int serve_limit_fds(pid_t pid, int room, struct rlimit *saved);

#endif
