/* SPDX-License-Identifier: MIT */
/*
 * The connection core, sans I/O: bytes and FD groups in, messages and bytes
 * with FD groups out.  It knows the SETUP handshake, frames, fragments, RPC
 * metadata and which FDs belong to which message; it makes no syscall but
 * close().  The same core serves the client, the server and the fuzzers.
 *
 * Input: rfd_conn_recv_fds() for each FD group a read delivered, before the
 * bytes of that read; then rfd_conn_recv_bytes() (or in_space/in_commit).
 * Output: rfd_conn_out_peek() gives the next chunk to write, with the FDs
 * that must go with it; rfd_conn_out_advance() says how much was written.
 */
#ifndef RFD_CONN_H
#define RFD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocketfd/rocketfd.h>

#include "buf.h"
#include "fdqueue.h"

enum rfd_role {
	RFD_ROLE_CLIENT,
	RFD_ROLE_SERVER,
};

/* The kind of a request a client sends (streams and sinks have functions of their own). */
enum rfd_request_kind {
	RFD_REQUEST_RESPONSE, /* REQUEST_RESPONSE frame */
	RFD_REQUEST_ONEWAY,   /* REQUEST_FNF frame */
};

/* What the peer did on a stream or sink (see stream_event). */
enum rfd_conn_stream_event {
	RFD_CONN_STREAM_CREDIT,    /* REQUEST_N: more items may be sent */
	RFD_CONN_STREAM_CANCELLED, /* CANCEL: the stream is forgotten, nothing more is sent */
};

/* The message object behind the public struct rfd_msg. */
struct rfd_msg {
	enum rfd_msg_kind kind;
	uint32_t stream_id;
	struct rfd_fdgroup *fds; /* NULL when none came */
	uint8_t call_kind;       /* requests: enum rfd_call_kind, from the frame type */
	uint8_t extensions;      /* requests: the extensions agreed on the connection */
	struct rfd_msg *next;    /* for whoever queues messages (the client's stream buffers) */
	const char *method;      /* in block[], NUL-terminated */
	const char *error_text;  /* in block[], NUL-terminated */
	uint32_t error_code;
	struct rfd_peer peer;
	uint64_t connection;
	/* Server side: the connection to answer on, and what rfd_msg_free() tells it. */
	void *origin;
	void (*release)(struct rfd_msg *msg);
	size_t data_len;
	uint8_t *data; /* in block[] */
	uint8_t block[];
};

/*
 * What the core reports, synchronously, from rfd_conn_recv_*().  Ownership of
 * every message passes to the callee.
 */
struct rfd_conn_callbacks {
	/* The handshake completed (client: the server's SETUP answer; server: SETUP accepted). */
	void (*ready)(void *user);
	/* Server: a request (REQUEST or ONEWAY). */
	void (*request)(void *user, struct rfd_msg *request);
	/*
	 * Client: the reply for @stream_id, or a negative errno with @reply NULL
	 * (-EBADFD when its FDs did not match, -EPROTO when it could not be read).
	 * Never called for a call abandoned with rfd_conn_abandon().
	 */
	void (*reply)(void *user, uint32_t stream_id, int status, struct rfd_msg *reply);
	/*
	 * Client: a message of the stream opened on @stream_id with
	 * rfd_conn_send_stream(): its first response (kind REPLY, EXCEPTION or
	 * ERROR), then its items (STREAM_ITEM).  A message of kind EXCEPTION or
	 * ERROR is its last.  Otherwise it ends with a call without a message:
	 * @status 0 when it completed, or a negative errno when it broke the
	 * streaming contract (-EBADFD: an item's FDs did not match; -EPROTO:
	 * a frame out of place), and then the connection fails at once.  An
	 * item that is neither a result nor an exception (metadata unreadable,
	 * payloadMetadata empty) ends it with -EPROTO, its FDs closed, and the
	 * connection goes on: without COMPLETE the stream is sent CANCEL and
	 * abandoned.  Never called for a stream abandoned with
	 * rfd_conn_abandon().
	 *
	 * The same for a sink opened with rfd_conn_send_sink(): its first
	 * response (kind REPLY, EXCEPTION or ERROR), then its final response
	 * (REPLY, EXCEPTION or ERROR), which is its last message.  Or it ends
	 * without one (@msg NULL): -EPROTO when a message broke the agreement on
	 * FDs or the final response is neither a result nor an exception (the
	 * connection goes on), -EPROTO when the server broke the protocol or
	 * -EBADFD when the FDs of a message did not match (then the connection
	 * fails at once).
	 *
	 * A declared exception with FDs that the client did not offer the
	 * extension exception for fails its call, stream or sink with -EPROTO
	 * (its FDs closed), and the connection goes on.
	 */
	void (*stream)(void *user, uint32_t stream_id, int status, struct rfd_msg *msg);
	/*
	 * Server: the client granted credit on, or cancelled, a stream opened with
	 * rfd_conn_stream_open().  Client: the server granted credit on a sink
	 * (RFD_CONN_STREAM_CREDIT).
	 */
	void (*stream_event)(void *user, uint32_t stream_id, enum rfd_conn_stream_event event);
	/*
	 * Server: an item of the sink opened on @stream_id with
	 * rfd_conn_sink_open() (kind STREAM_ITEM, @status 0), or the end of the
	 * client's side (@msg NULL): @status 0 when it completed (the sink waits
	 * for rfd_conn_sink_finish() or another end), or the sink is over:
	 * -ECANCELED (the client's ERROR 0x203 or CANCEL), -EREMOTEIO (another
	 * ERROR, or an exception, from the client), -EBADFD (an item's FDs did
	 * not match) or -EPROTO (an item without credit, with FDs outside the
	 * agreement, or unreadable), for which the client was sent ERROR 0x204.
	 */
	void (*sink)(void *user, uint32_t stream_id, int status, struct rfd_msg *msg);
	/* The connection failed; nothing more will be reported. */
	void (*failed)(void *user, int err, const char *why);
	/* Optional: a line per frame read or written (see rfd_trace_fn). */
	rfd_trace_fn *trace;
	void *trace_user;
};

struct rfd_conn;

/*
 * A new connection core.  A client's SETUP frame is queued at once, and
 * offers every extension (RFD_EXTENSION_*) the core implements; a server
 * accepts every one it implements.
 */
struct rfd_conn *rfd_conn_new(enum rfd_role role, const struct rfd_limits *limits,
                              const struct rfd_conn_callbacks *callbacks, void *user);

/* The same, offering (client) or accepting (server) only @extensions. */
struct rfd_conn *rfd_conn_new_with_extensions(enum rfd_role role, const struct rfd_limits *limits,
                                              unsigned extensions,
                                              const struct rfd_conn_callbacks *callbacks,
                                              void *user);

/* Close every FD the core owns (queued, unsent) and free it.  No callback runs. */
void rfd_conn_free(struct rfd_conn *conn);

/* ---- Input ---- */

/*
 * A group of @n FDs that one read delivered; the core owns them from here on,
 * whatever it returns.  Over the per-message cap or the budget the connection
 * fails (returns the error).
 */
int rfd_conn_recv_fds(struct rfd_conn *conn, const int *fds, size_t n);

/* Bytes that arrived; frames are processed and callbacks run.  Returns 0 or the failure. */
int rfd_conn_recv_bytes(struct rfd_conn *conn, const uint8_t *bytes, size_t len);

/*
 * Zero-copy input: room for at least @want bytes to read into (0: the core
 * chooses, a few KiB while no frame is partly read, 64 KiB otherwise), then
 * commit what was read.  A commit that leaves no partial frame shrinks the
 * input buffer back to a few KiB.
 */
int rfd_conn_in_space(struct rfd_conn *conn, size_t want, uint8_t **space, size_t *room);
int rfd_conn_in_commit(struct rfd_conn *conn, size_t len);
/* Bytes the input buffer has room for (for tests). */
size_t rfd_conn_in_capacity(const struct rfd_conn *conn);

/* The peer closed its side.  Fails the connection with -ECONNRESET. */
void rfd_conn_recv_eof(struct rfd_conn *conn);

/* Fail the connection from outside (e.g. a read error): FDs closed, callbacks told. */
void rfd_conn_fail(struct rfd_conn *conn, int err, const char *why);

/* ---- Output ---- */

struct rfd_out_chunk {
	const uint8_t *bytes;
	size_t len;
	const int *fds; /* to send with these bytes, in the same sendmsg */
	size_t n_fds;
};

/* The next chunk to write; false when nothing waits. */
bool rfd_conn_out_peek(const struct rfd_conn *conn, struct rfd_out_chunk *chunk);

/*
 * @written bytes of the peeked chunk were written (written >= 1 means its FDs
 * went too: the core closes its copies and never sends them again).
 */
void rfd_conn_out_advance(struct rfd_conn *conn, size_t written);

/* Bytes waiting to be written. */
size_t rfd_conn_out_pending(const struct rfd_conn *conn);

/*
 * Client: queue a request.  @fds (may be NULL) is owned by the core from the
 * call on, whatever happens.  Returns 0 with *stream_id set, -EAGAIN when too
 * many requests are in flight, -E2BIG, -ENOMEM, or the connection's failure.
 */
int rfd_conn_send_request(struct rfd_conn *conn, enum rfd_request_kind kind, const char *method,
                          const void *args, size_t args_len, int32_t timeout_ms,
                          struct rfd_fdgroup *fds, uint32_t *stream_id);

/*
 * Client: open a stream (REQUEST_STREAM, kind 4) with @initial_n credits
 * (1..2^31-1; the first response takes one of them, as in fbthrift).  @fds
 * as for send_request; @timeout_ms is sent as clientTimeoutMs when positive.
 * Returns as rfd_conn_send_request(), or -EINVAL for a bad @initial_n.
 */
int rfd_conn_send_stream(struct rfd_conn *conn, const char *method, const void *args,
                         size_t args_len, int32_t timeout_ms, uint32_t initial_n,
                         struct rfd_fdgroup *fds, uint32_t *stream_id);

/*
 * Client: grant @n more items on a stream whose first response came
 * (REQUEST_N).  Credits in flight never pass 2^31-1: @n is cut to fit.
 * 0, -ENOENT (no such live stream), -EINVAL (@n is 0 or the first response
 * has not come: fbthrift's server closes on an early REQUEST_N), -ENOMEM.
 */
int rfd_conn_stream_request(struct rfd_conn *conn, uint32_t stream_id, uint32_t n);

/*
 * Client: open a sink (REQUEST_CHANNEL, kind 6, initial request n 2).  The
 * first response comes through the stream callback; items then go with
 * rfd_conn_sink_send() as the server's REQUEST_N allow, and
 * rfd_conn_sink_complete() ends them.  Arguments and returns as
 * rfd_conn_send_request().
 */
int rfd_conn_send_sink(struct rfd_conn *conn, const char *method, const void *args, size_t args_len,
                       int32_t timeout_ms, struct rfd_fdgroup *fds, uint32_t *stream_id);

/*
 * Client: an item of a sink: PAYLOAD NEXT with StreamPayloadMetadata
 * (responseMetadata, and fdMetadata when @fds), @fds owned from the call
 * on.  Items wait in the stream queue, unstamped, as a server's stream
 * items do.  -ENOENT when the sink is not open for items (no first response
 * yet, completed, ended), -EOPNOTSUPP for FDs its server did not accept,
 * -EAGAIN when rfd_conn_sink_credits() is 0; or the connection's failure.
 */
int rfd_conn_sink_send(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                       struct rfd_fdgroup *fds);
/*
 * Client: items rfd_conn_sink_send() takes now (the credit the server gave,
 * no more than room in the stream queue allows, and none while the stream
 * queues hold the connection's fd_budget of FDs or more: LIMIT-14).
 * Server: the credit it gave that items have not used.  0 for a sink not
 * open for items.
 */
unsigned rfd_conn_sink_credits(const struct rfd_conn *conn, uint32_t stream_id);
/* Client: whether the sink's items may carry FDs (its server accepted the extension sink). */
bool rfd_conn_sink_agreed(const struct rfd_conn *conn, uint32_t stream_id);
/* Client: the end of a sink's items: PAYLOAD COMPLETE|METADATA, metadata 00, after its items. */
int rfd_conn_sink_complete(struct rfd_conn *conn, uint32_t stream_id);

/*
 * Client: forget a call.  Its reply, or a stream's or sink's frames, when
 * they come, are read and their FDs closed.  A stream is sent CANCEL, a sink
 * ERROR 0x203 CANCELED (its items still in the stream queue are dropped and
 * their FDs closed).  Abandoned streams and sinks do not count against
 * max_in_flight; at most max_in_flight of them are remembered, and past that
 * the one abandoned first is forgotten: frames still coming for it are
 * ignored, and their FDs wait in the queue until a later claim closes them
 * as orphans.
 */
void rfd_conn_abandon(struct rfd_conn *conn, uint32_t stream_id);

/*
 * Server: answer the request on @stream_id.  @fds as for send_request.
 * -ENOENT when no request is open on that stream (its FDs are closed).
 */
int rfd_conn_send_reply(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                        struct rfd_fdgroup *fds);
/*
 * A declared exception, with @fds only under the extension exception:
 * -EOPNOTSUPP otherwise (nothing sent, the request still open, @fds closed).
 */
int rfd_conn_send_exception(struct rfd_conn *conn, uint32_t stream_id, const char *name,
                            const char *what, const void *data, size_t len,
                            struct rfd_fdgroup *fds);
int rfd_conn_send_error(struct rfd_conn *conn, uint32_t stream_id, enum rfd_failure failure,
                        const char *what);

/*
 * Server, streams.  The request on @stream_id came as REQUEST_STREAM; it is
 * answered with rfd_conn_stream_open() (or with send_exception/send_error
 * instead of a first response; send_reply answers WRONG_RPC_KIND).  Then
 * items go out while the client gives credit, until one of complete,
 * exception or error ends the stream.  Every function takes @fds as
 * send_request does.  Messages of streams are written in the order they
 * were given; while the output already holds enough bytes or FD messages
 * waiting for the socket, they wait in the core's stream queue, their FDs
 * not yet stamped, so that a CANCEL can still drop them (and close their
 * FDs).  Each returns 0, -ENOENT when no such stream is open (or it is
 * ending), or the connection's failure.
 */

/*
 * The first response: PAYLOAD NEXT with ResponseRpcMetadata (streamId, and
 * fdMetadata when @fds).  -ECANCELED when the client sent CANCEL first (the
 * request is forgotten, nothing sent); -EINVAL when the request did not come
 * as REQUEST_STREAM (answered ERROR 0x204 WRONG_RPC_KIND instead).
 */
int rfd_conn_stream_open(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                         struct rfd_fdgroup *fds);
/*
 * An item: PAYLOAD NEXT with StreamPayloadMetadata (responseMetadata, and
 * fdMetadata when @fds).  -EAGAIN, sending nothing, when
 * rfd_conn_stream_credits() is 0.
 */
int rfd_conn_stream_send(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                         struct rfd_fdgroup *fds);
/*
 * How many items stream_send takes now: the credits the client gave and no
 * item used, but no more than room in the stream's queue allows, and none
 * while the stream queues hold the connection's fd_budget of FDs or more
 * (LIMIT-14: a reader that stalls cannot fill the FD table); 0 for a stream
 * not open.
 */
unsigned rfd_conn_stream_credits(const struct rfd_conn *conn, uint32_t stream_id);
/* The end: PAYLOAD COMPLETE with no metadata and no data. */
int rfd_conn_stream_complete(struct rfd_conn *conn, uint32_t stream_id);
/*
 * The end of a stream or a sink by a declared exception: PAYLOAD
 * NEXT|COMPLETE, StreamPayloadMetadata exceptionMetadata, with @fds only
 * under the extension exception (-EOPNOTSUPP otherwise, nothing sent).
 */
int rfd_conn_stream_exception(struct rfd_conn *conn, uint32_t stream_id, const char *name,
                              const char *what, const void *data, size_t len,
                              struct rfd_fdgroup *fds);
/*
 * The end of a stream or a sink by an ERROR frame with @code (0x201, 0x203)
 * and a Compact StreamRpcError {what_utf8}.
 */
int rfd_conn_stream_error(struct rfd_conn *conn, uint32_t stream_id, uint32_t code,
                          const char *what);

/*
 * Server, sinks.  The request on @stream_id came as REQUEST_CHANNEL of
 * kind 6; it is answered with rfd_conn_sink_open() (or an exception or an
 * error instead), items come to the sink callback as rfd_conn_sink_request()
 * grants them, and rfd_conn_sink_finish(), rfd_conn_stream_exception() or
 * rfd_conn_stream_error() ends it, once the client completed or before.
 * Returns as for streams.
 */

/*
 * The first response: PAYLOAD NEXT with ResponseRpcMetadata (responseMetadata,
 * the extensions accepted in otherMetadata, fdMetadata when @fds), and no
 * credit yet.  -ECANCELED, -EINVAL (not a sink: answered WRONG_RPC_KIND) as
 * rfd_conn_stream_open().
 */
int rfd_conn_sink_open(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                       struct rfd_fdgroup *fds);
/* Grant @n more items (REQUEST_N), until the client completed.  -EINVAL for 0. */
int rfd_conn_sink_request(struct rfd_conn *conn, uint32_t stream_id, uint32_t n);
/*
 * The final response: PAYLOAD NEXT|COMPLETE with StreamPayloadMetadata
 * (responseMetadata, fdMetadata when @fds), @fds only under the extension
 * sink (-EOPNOTSUPP otherwise, nothing sent).
 */
int rfd_conn_sink_finish(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                         struct rfd_fdgroup *fds);

/* ---- State ---- */

/*
 * The extensions in force: a client's offered, a server's accepted among
 * those its client offered.
 */
unsigned rfd_conn_extensions(const struct rfd_conn *conn);
/* 0 while usable, else the negative errno it failed with. */
int rfd_conn_error(const struct rfd_conn *conn);
/* Why it failed, or "". */
const char *rfd_conn_error_text(const struct rfd_conn *conn);
/* Why the last reply or request was failed on its own (-EBADFD, -EPROTO), for people. */
const char *rfd_conn_reason(const struct rfd_conn *conn);
bool rfd_conn_ready(const struct rfd_conn *conn);
/*
 * Requests in progress, streams and sinks included (server: being handled
 * or streaming; client: awaiting replies or items, abandoned
 * request-response calls included, abandoned streams and sinks not).
 */
size_t rfd_conn_in_flight(const struct rfd_conn *conn);
/* Client: abandoned streams and sinks remembered, to read and close what still comes on them. */
size_t rfd_conn_abandoned(const struct rfd_conn *conn);
/* FDs received and not yet claimed. */
size_t rfd_conn_queued_fds(const struct rfd_conn *conn);

/* A message with room for @data_len data bytes and @text_len bytes of strings (NULs included). */
struct rfd_msg *rfd_msg_alloc(size_t data_len, size_t text_len);

#endif
