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

/* The kind of a request a client sends. */
enum rfd_request_kind {
	RFD_REQUEST_RESPONSE, /* REQUEST_RESPONSE frame */
	RFD_REQUEST_ONEWAY,   /* REQUEST_FNF frame */
};

/* The message object behind the public struct rfd_msg. */
struct rfd_msg {
	enum rfd_msg_kind kind;
	uint32_t stream_id;
	struct rfd_fdgroup *fds; /* NULL when none came */
	bool streaming;          /* a request that came as REQUEST_STREAM (kind 4) */
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
	/* The connection failed; nothing more will be reported. */
	void (*failed)(void *user, int err, const char *why);
	/* Optional: a line per frame read or written (see rfd_trace_fn). */
	rfd_trace_fn *trace;
	void *trace_user;
};

struct rfd_conn;

/* A new connection core.  A client's SETUP frame is queued at once. */
struct rfd_conn *rfd_conn_new(enum rfd_role role, const struct rfd_limits *limits,
                              const struct rfd_conn_callbacks *callbacks, void *user);

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

/* Zero-copy input: room for at least @want bytes to read into, then commit what was read. */
int rfd_conn_in_space(struct rfd_conn *conn, size_t want, uint8_t **space, size_t *room);
int rfd_conn_in_commit(struct rfd_conn *conn, size_t len);

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

/* Client: forget a request; its reply, when it comes, is read and its FDs closed. */
void rfd_conn_abandon(struct rfd_conn *conn, uint32_t stream_id);

/*
 * Server: answer the request on @stream_id.  @fds as for send_request.
 * -ENOENT when no request is open on that stream (its FDs are closed).
 */
int rfd_conn_send_reply(struct rfd_conn *conn, uint32_t stream_id, const void *data, size_t len,
                        struct rfd_fdgroup *fds);
int rfd_conn_send_exception(struct rfd_conn *conn, uint32_t stream_id, const char *name,
                            const char *what, const void *data, size_t len);
int rfd_conn_send_error(struct rfd_conn *conn, uint32_t stream_id, enum rfd_failure failure,
                        const char *what);

/* ---- State ---- */

/* 0 while usable, else the negative errno it failed with. */
int rfd_conn_error(const struct rfd_conn *conn);
/* Why it failed, or "". */
const char *rfd_conn_error_text(const struct rfd_conn *conn);
/* Why the last reply or request was failed on its own (-EBADFD, -EPROTO), for people. */
const char *rfd_conn_reason(const struct rfd_conn *conn);
bool rfd_conn_ready(const struct rfd_conn *conn);
/* Requests in progress (server: being handled; client: awaiting replies, abandoned included). */
size_t rfd_conn_in_flight(const struct rfd_conn *conn);
/* FDs received and not yet claimed. */
size_t rfd_conn_queued_fds(const struct rfd_conn *conn);

/* A message with room for @data_len data bytes and @text_len bytes of strings (NULs included). */
struct rfd_msg *rfd_msg_alloc(size_t data_len, size_t text_len);

#endif
