/* SPDX-License-Identifier: MIT */
/*
 * rocketfd: Thrift RPC calls that carry file descriptors, over fbthrift's
 * Rocket transport on Unix domain sockets.  Linux only.
 *
 * Conventions.  Functions return 0 (or a positive count) on success and a
 * negative errno on failure.  The errors with a meaning of their own:
 *   -EBADFD     the FDs that arrived do not match what the message claimed
 *               (count or sequence number); the message was dropped and its
 *               FDs closed
 *   -ENOBUFS    FDs were lost in transit (the receiver's control buffer was
 *               truncated, e.g. at its RLIMIT_NOFILE): the connection failed
 *   -EPROTO     the peer broke the protocol (a frame, metadata or control
 *               message this library refuses); the connection failed
 *   -EMSGSIZE   a frame or message over the configured limits
 *   -E2BIG      more FDs than one message may carry (253, or a lower cap)
 *   -ETIMEDOUT  a call's deadline passed
 *   -ECONNRESET the peer closed the connection
 *   -ECANCELED  the call was cancelled, or its client was freed
 * A call the server answered with an error completes with status 0 and a
 * reply of kind RFD_MSG_ERROR (rfd_msg_error_code(), rfd_msg_error_text()).
 * rfd_client_error() gives a human-readable reason for the last failure.
 *
 * File descriptors.  Every FD has one owner.  When sending, the caller
 * chooses: RFD_FDS_DUP, the library duplicates them and the caller keeps its
 * own; or RFD_FDS_TAKE, the library owns them from the moment of the call,
 * whatever it returns, and closes them once sent or dropped.  Received FDs
 * belong to the rfd_msg that brought them until taken with rfd_msg_take_fd();
 * rfd_msg_free() closes the rest.  Every FD the library creates or receives
 * has FD_CLOEXEC set.
 *
 * Threads.  A client, or a server with everything it handed out (requests,
 * streams and sinks included), is used from one thread at a time;
 * rfd_server_stop() alone may be called from any thread or from a signal
 * handler.
 */
#ifndef ROCKETFD_H
#define ROCKETFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RFD_EXPORT __attribute__((visibility("default")))

enum {
	RFD_MAX_FDS = 253, /* SCM_MAX_FD: at most this many FDs per message */
};

enum rfd_fd_mode {
	RFD_FDS_DUP = 0,
	RFD_FDS_TAKE = 1,
};

/*
 * FDs where fbthrift passes none, in the spec's extensions (section 21.8),
 * used only when both peers agreed: a client offers them in its SETUP, a
 * server accepts them in each sink's first response.
 */
enum rfd_extension {
	/* FDs on the items of a sink (client to server, once the server accepted) and on
	 * its final response (server to client, when the client offered). */
	RFD_EXTENSION_SINK = 1 << 0,
	/* FDs on a declared exception (server to client, when the client offered). */
	RFD_EXTENSION_EXCEPTION = 1 << 1,
};

/* Limits a receiver enforces against its peer.  See rfd_limits_init() for the defaults. */
struct rfd_limits {
	size_t max_frame;         /* bytes in one frame, length field included */
	size_t max_message;       /* bytes of metadata and data of one reassembled message */
	unsigned max_fds_per_msg; /* 1..253 */
	/*
	 * FDs received but not yet claimed by a message; and the FDs of stream
	 * and sink items waiting in the library for the socket: past it no
	 * item is taken (rfd_stream_credits() and rfd_client_sink_credits()
	 * say 0) until the peer reads, so a peer that stops reading holds a
	 * connection to fewer than fd_budget + 3 * 253 such FDs, whatever the
	 * number of its streams.
	 */
	size_t fd_budget;
	unsigned max_in_flight; /* requests in progress on one connection */
};

RFD_EXPORT void rfd_limits_init(struct rfd_limits *limits);

/*
 * Frame tracing, for tools and debugging: called with one line describing
 * each frame read ("<") or written (">"), e.g. "> REQUEST_RESPONSE stream 1
 * flags 0x100 metadata 18 data 8".  Called from the thread using the client
 * or server.
 */
typedef void rfd_trace_fn(void *user, const char *line);

/*
 * Credentials of a peer process: those the kernel captured when it connected
 * (SO_PEERCRED, rfd_msg_peer()), or those it attached to the bytes of one
 * request (SCM_CREDENTIALS, rfd_msg_sender()).  pid is as this process's pid
 * namespace sees it (0: not visible there), -1 when unknown.
 */
struct rfd_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/*
 * A received message: a request (server side), or a reply or stream item
 * (client side), with the bytes and FDs it carries.
 */
struct rfd_msg;

enum rfd_msg_kind {
	RFD_MSG_REQUEST,   /* a request that expects an answer (or a stream) */
	RFD_MSG_ONEWAY,    /* a one-way request: free it when done */
	RFD_MSG_REPLY,     /* a successful reply, or a stream's first response: the result struct */
	RFD_MSG_EXCEPTION, /* a declared exception: data is the result struct */
	RFD_MSG_ERROR,     /* an error the server raised: see rfd_msg_error_* */
	RFD_MSG_STREAM_ITEM, /* an item of a stream, or a sink's at its server: data is {0: item} */
};

RFD_EXPORT enum rfd_msg_kind rfd_msg_kind(const struct rfd_msg *msg);
/* The method name of a request; "" for replies. */
RFD_EXPORT const char *rfd_msg_method(const struct rfd_msg *msg);
/* The payload: the args struct of a request, the result struct of a reply (Compact protocol). */
RFD_EXPORT const uint8_t *rfd_msg_data(const struct rfd_msg *msg, size_t *len);
RFD_EXPORT size_t rfd_msg_fd_count(const struct rfd_msg *msg);
/* The FD at @index, still owned by the message; -1 once taken or out of range. */
RFD_EXPORT int rfd_msg_fd(const struct rfd_msg *msg, size_t index);
/* Take the FD at @index: the caller owns it now.  -1 once taken or out of range. */
RFD_EXPORT int rfd_msg_take_fd(struct rfd_msg *msg, size_t index);
/* For RFD_MSG_ERROR: the Rocket error code; for RFD_MSG_EXCEPTION: 0. */
RFD_EXPORT uint32_t rfd_msg_error_code(const struct rfd_msg *msg);
/* For RFD_MSG_ERROR and RFD_MSG_EXCEPTION: the server's text, or "". */
RFD_EXPORT const char *rfd_msg_error_text(const struct rfd_msg *msg);
/*
 * For requests: the peer that made the connection, read when it was
 * accepted, valid for the request's whole life (after the connection closed
 * too).  For other messages: pid, uid and gid all -1.
 */
RFD_EXPORT const struct rfd_peer *rfd_msg_peer(const struct rfd_msg *msg);
/*
 * For requests: a pidfd of the peer process that made the connection, owned
 * by the library and valid for the request's whole life (duplicate it with
 * F_DUPFD_CLOEXEC to keep it longer), or -1 when there is none.  Decisions
 * about the peer process rest on it (rfd_pidfd_alive(),
 * rfd_pidfd_read_proc()), never on the pid, which another process may have
 * by now.
 */
RFD_EXPORT int rfd_msg_peer_pidfd(const struct rfd_msg *msg);
/*
 * Whether that pidfd is pinned: taken with SO_PEERPIDFD (Linux 6.5), it names
 * the process that called connect() and no other.  False when there is no
 * pidfd or when it is the best-effort pidfd_open() of the pid that kernels
 * without SO_PEERPIDFD leave (see rfd_server_options.pidfd_fallback): that
 * process may have exited before the accept and its pid gone to another.
 */
RFD_EXPORT bool rfd_msg_peer_pinned(const struct rfd_msg *msg);
/*
 * For requests on a server with pass_credentials: in *out, the credentials
 * the kernel attached to the read that delivered the request's last byte,
 * which are those of the process that wrote it (it may not be the one that
 * connected: sockets can be passed on and inherited).  0, -ENODATA when
 * pass_credentials is off or no credentials came, -EINVAL for NULL.
 */
RFD_EXPORT int rfd_msg_sender(const struct rfd_msg *msg, struct rfd_peer *out);
/* The interaction a request asks for, from its frame type. */
enum rfd_call_kind {
	RFD_CALL_RESPONSE, /* REQUEST_RESPONSE: rfd_reply(), or an exception or error */
	RFD_CALL_ONEWAY,   /* REQUEST_FNF: no answer; rfd_msg_free() */
	RFD_CALL_STREAM,   /* REQUEST_STREAM: rfd_reply_stream(), or an exception or error */
	RFD_CALL_SINK, /* REQUEST_CHANNEL (a sink): rfd_reply_sink(), or an exception or error */
};

/*
 * For requests: what it asks for.  A handler answers a method whose kind
 * differs with RFD_FAIL_WRONG_KIND without running it.  RFD_CALL_RESPONSE
 * for messages that are not requests.
 */
RFD_EXPORT enum rfd_call_kind rfd_msg_call_kind(const struct rfd_msg *request);
/* For requests: rfd_msg_call_kind() is RFD_CALL_STREAM. */
RFD_EXPORT bool rfd_msg_streaming(const struct rfd_msg *msg);
/*
 * For requests: the extensions (RFD_EXTENSION_*) agreed on the connection it
 * came on, which decide where the server may attach FDs:
 * RFD_EXTENSION_EXCEPTION to declared exceptions, RFD_EXTENSION_SINK to a
 * sink's final response (and the client's sink items then carry FDs).  0
 * for messages that are not requests.
 */
RFD_EXPORT unsigned rfd_msg_extensions(const struct rfd_msg *request);
/* For requests: the connection it came on, unique for the server's life (never 0). */
RFD_EXPORT uint64_t rfd_msg_connection(const struct rfd_msg *msg);
/* Release the message and close every FD not taken.  NULL is accepted. */
RFD_EXPORT void rfd_msg_free(struct rfd_msg *msg);

/* ---- Peer processes ------------------------------------------------------------------- */

/* 1 while the process of @pidfd runs, 0 once it has exited, or a negative errno (-EBADF). */
RFD_EXPORT int rfd_pidfd_alive(int pidfd);

/*
 * Read /proc/PID/@name of the process of @pidfd into @buf, NUL-terminated and
 * cut at @size - 1 bytes: a file ("comm", "status", "cmdline") or the target
 * of a link ("exe", "cwd").  PID is the pidfd's own, from its fdinfo, and
 * the process is checked to be still running after the read, so what was
 * read is that process's and never another's that was given its pid.
 * Returns the bytes read, -ESRCH once the process has exited (or is in a pid
 * namespace /proc cannot see), -EBADF when @pidfd is no pidfd, -ENOENT when
 * @name does not exist or /proc is not mounted, -EINVAL for a @name that is
 * absolute or holds "..", or another negative errno.
 */
RFD_EXPORT int rfd_pidfd_read_proc(int pidfd, const char *name, char *buf, size_t size);

/* ---- Client ---------------------------------------------------------------------------- */

struct rfd_client;

struct rfd_client_options {
	/* How long rfd_client_connect() waits for room in the accept queue, then for the SETUP
	 * answer. */
	int connect_timeout_ms;
	struct rfd_limits limits;
	rfd_trace_fn *trace; /* may be NULL */
	void *trace_user;
	/*
	 * The extensions (RFD_EXTENSION_*) offered in SETUP; by default both.
	 * Without RFD_EXTENSION_EXCEPTION a declared exception that comes with
	 * FDs fails its call with -EPROTO, the FDs closed; without
	 * RFD_EXTENSION_SINK so does a sink's final response with FDs, and sink
	 * items take no FDs.
	 */
	unsigned extensions;
};

RFD_EXPORT void rfd_client_options_init(struct rfd_client_options *options);

/*
 * Connect to the server listening at @path and perform the SETUP handshake.
 * @options may be NULL for the defaults.
 */
RFD_EXPORT int rfd_client_connect(const char *path, const struct rfd_client_options *options,
                                  struct rfd_client **out);

/*
 * Wrap an already connected Unix stream socket, which the client then owns
 * (even on failure).  The client clears the socket's O_NONBLOCK (a file
 * status flag, shared with every dup of it): every send and receive it
 * makes says MSG_DONTWAIT, and its blocking calls wait in recvmsg() with an
 * SO_RCVTIMEO it sets and remembers, so nobody else may change that option.
 * If something sets O_NONBLOCK again later (an event loop watching the FD
 * may), blocking calls fall back to poll().
 */
RFD_EXPORT int rfd_client_adopt(int sock, const struct rfd_client_options *options,
                                struct rfd_client **out);

/*
 * Close the connection.  Calls still in flight complete with -ECANCELED
 * (their callbacks run from here).  Every FD the client owns is closed.
 */
RFD_EXPORT void rfd_client_free(struct rfd_client *client);

/* The reason for the last failure on this client, for people. */
RFD_EXPORT const char *rfd_client_error(const struct rfd_client *client);

/*
 * Blocking call of @method with the args struct @args and @n_fds FDs.
 * Waits at most @timeout_ms (-1: no limit).  On success *reply is the
 * reply (kind REPLY, EXCEPTION or ERROR) and the caller frees it.
 */
RFD_EXPORT int rfd_client_call(struct rfd_client *client, const char *method, const void *args,
                               size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                               int timeout_ms, struct rfd_msg **reply);

/* Blocking one-way call: returns once the request has been written to the socket. */
RFD_EXPORT int rfd_client_oneway(struct rfd_client *client, const char *method, const void *args,
                                 size_t args_len, const int *fds, size_t n_fds,
                                 enum rfd_fd_mode mode, int timeout_ms);

/*
 * Asynchronous API, for any event loop: poll rfd_client_fd() for the events
 * rfd_client_events() asks for, waking at the latest after
 * rfd_client_timeout() ms, and call rfd_client_process() with what poll
 * returned.  Callbacks run from rfd_client_process() and rfd_client_free().
 * @status is 0 with a reply the callback owns, or a negative errno with
 * @reply NULL.  A callback may start new asynchronous calls and cancel
 * calls, but must not free the client; a blocking call (rfd_client_call(),
 * rfd_client_oneway(), the blocking stream and sink functions) or
 * rfd_client_process() made from a callback fails with -EDEADLK, sending
 * nothing (its FDs are closed as its mode says).
 */
typedef void rfd_reply_fn(void *user, int status, struct rfd_msg *reply);

RFD_EXPORT int rfd_client_call_async(struct rfd_client *client, const char *method,
                                     const void *args, size_t args_len, const int *fds,
                                     size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                                     rfd_reply_fn *callback, void *user, uint32_t *call_id);
/* Queue a one-way call; it is written as rfd_client_process() makes progress. */
RFD_EXPORT int rfd_client_oneway_async(struct rfd_client *client, const char *method,
                                       const void *args, size_t args_len, const int *fds,
                                       size_t n_fds, enum rfd_fd_mode mode);
/*
 * Give up on a call, a stream or a sink: its callback runs now with
 * -ECANCELED; a late reply is discarded.  A stream is sent CANCEL, a sink
 * ERROR 0x203 (its items not yet written are dropped, their FDs closed),
 * and what still comes on either is read and discarded, its FDs closed; a
 * blocking stream's or sink's messages not yet taken are freed.  0, or
 * -ENOENT for an id the client does not know.
 */
RFD_EXPORT int rfd_client_cancel(struct rfd_client *client, uint32_t call_id);

RFD_EXPORT int rfd_client_fd(const struct rfd_client *client);
/* POLLIN, plus POLLOUT while bytes wait to be written. */
RFD_EXPORT short rfd_client_events(const struct rfd_client *client);
/* Milliseconds until the nearest call deadline, or -1. */
RFD_EXPORT int rfd_client_timeout(const struct rfd_client *client);
/* Do what can be done without blocking; a negative errno means the connection failed. */
RFD_EXPORT int rfd_client_process(struct rfd_client *client, short revents);
/* Requests written or queued whose replies have not arrived, open streams and sinks included. */
RFD_EXPORT size_t rfd_client_in_flight(const struct rfd_client *client);

/*
 * Streams (REQUEST_STREAM): the server answers with a first response, then
 * sends items, each with up to 253 FDs, as the client gives it credit.
 *
 * Credit.  @credits (0: 100, fbthrift's default) is the window of items the
 * server may send ahead of their consumption.  The request asks for
 * @credits + 1 (one more for the first response, as fbthrift does); once
 * half the window (rounded up) is consumed, the library asks for that many
 * again with REQUEST_N.  An item is consumed when it is handed over: given
 * to the callback (asynchronous streams) or returned by
 * rfd_client_stream_next() (blocking streams).  At most 2^31 - 2: more
 * fails with -EINVAL, and rfd_client_error() says why.
 *
 * @timeout_ms bounds the wait for the first response only, and is sent as
 * clientTimeoutMs; items then take as long as they take.  A stream that
 * times out or is cancelled is sent CANCEL; frames that still come for it
 * are read, their FDs closed.
 *
 * What a stream delivers, in order: its first response, kind RFD_MSG_REPLY
 * (the stream is open; data is the initial result struct, the empty struct
 * 00 for a plain stream<T>), or instead RFD_MSG_EXCEPTION or RFD_MSG_ERROR
 * (the call failed: nothing follows).  Then its items, kind
 * RFD_MSG_STREAM_ITEM, data {0: T}, with their FDs.  Then its end: a
 * message of kind RFD_MSG_EXCEPTION (a declared exception ended it) or
 * RFD_MSG_ERROR (the server ended it with an error), or no message with
 * status 0 (it completed) or a negative errno: -ETIMEDOUT, -ECANCELED
 * (rfd_client_cancel(), rfd_client_free()), -EBADFD (an item's FDs did
 * not match what it claimed), -EPROTO (the server broke the streaming
 * contract: an item past the credit, a frame out of place), both of which
 * fail the connection too, or the connection's failure.  -EPROTO also ends
 * a stream, the connection going on, whose item was neither a result nor an
 * exception (its metadata unreadable, or its payloadMetadata empty: the
 * stream is cancelled, its FDs closed) or brought FDs with a declared
 * exception that the client did not offer the extension exception for.
 */

/*
 * Called with each message of a stream (@status 0, @msg owned by the
 * callee), and at its end with @msg NULL (see above).  The end is the last
 * call; so is a message of kind RFD_MSG_EXCEPTION or RFD_MSG_ERROR.
 */
typedef void rfd_stream_fn(void *user, uint32_t stream_id, int status, struct rfd_msg *msg);

/* Open a stream; *stream_id (may be NULL) names it for rfd_client_cancel(). */
RFD_EXPORT int rfd_client_stream_async(struct rfd_client *client, const char *method,
                                       const void *args, size_t args_len, const int *fds,
                                       size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                                       unsigned credits, rfd_stream_fn *callback, void *user,
                                       uint32_t *stream_id);

/*
 * Blocking: open a stream and wait for its first response.  0 with *first
 * (the caller's): RFD_MSG_REPLY, and the stream is open under *stream_id
 * (read it with rfd_client_stream_next(), end it early with
 * rfd_client_cancel()); or RFD_MSG_EXCEPTION or RFD_MSG_ERROR, and it is
 * over.  A negative errno: it failed, and is over.  The data of the first
 * response and of items is not decoded here: one the caller cannot decode
 * is for it to end with rfd_client_cancel() (spec STREAM-20).
 */
RFD_EXPORT int rfd_client_stream(struct rfd_client *client, const char *method, const void *args,
                                 size_t args_len, const int *fds, size_t n_fds,
                                 enum rfd_fd_mode mode, int timeout_ms, unsigned credits,
                                 struct rfd_msg **first, uint32_t *stream_id);

/*
 * The next message of a blocking stream, waiting at most @timeout_ms (-1: no
 * limit).  1 with *msg (the caller's): an item, or the end by
 * RFD_MSG_EXCEPTION or RFD_MSG_ERROR; 0: it completed; a negative errno: it
 * failed.  Unless an item came, the stream is over and its id forgotten,
 * except with -ETIMEDOUT: nothing came in time and the stream goes on (a
 * timeout of 0 still takes what has already arrived).  -ENOENT: no such
 * stream; -ECANCELED: a callback cancelled it while this call waited.
 */
RFD_EXPORT int rfd_client_stream_next(struct rfd_client *client, uint32_t stream_id, int timeout_ms,
                                      struct rfd_msg **msg);

/*
 * Sinks (REQUEST_CHANNEL of kind SINK): the server answers with a first
 * response, the client then sends items as the server gives it credit, and
 * completes; the server answers with a final response.
 *
 * FDs on items go only where the server accepted the extension sink in the
 * first response (rfd_client_sink_fds()); elsewhere sending an item with
 * FDs fails with -EOPNOTSUPP (in TAKE mode they are closed).  The final
 * response carries FDs only when the client offered the extension sink, a
 * declared exception only when it offered exception (rfd_client_options):
 * one that breaks that fails the sink with -EPROTO, its FDs closed.
 *
 * @timeout_ms bounds the wait for the first response only, and is sent as
 * clientTimeoutMs.  A sink that times out or is cancelled is sent ERROR
 * 0x203 CANCELED; items still queued are dropped and their FDs closed, and
 * what the server still sends on it is read and its FDs closed.
 *
 * What a sink delivers, in order: its first response, kind RFD_MSG_REPLY
 * (the sink is open; data is the initial result struct), or instead
 * RFD_MSG_EXCEPTION or RFD_MSG_ERROR (the call failed, nothing follows);
 * then its final response: RFD_MSG_REPLY with data {0: R} and its FDs,
 * RFD_MSG_EXCEPTION or RFD_MSG_ERROR.  A server may end a sink before the
 * client completes it.  Or the sink fails without a message: -ETIMEDOUT,
 * -ECANCELED, -EPROTO (the server broke the protocol or the agreement on
 * FDs), -EBADFD (the final response's FDs did not match what it claimed:
 * the connection fails too), or the connection's failure.
 */

/*
 * With @msg NULL and @status RFD_SINK_CREDIT, an rfd_stream_fn of a sink
 * is told that the server granted credit: rfd_client_sink_credits() is
 * above 0 again.
 */
enum { RFD_SINK_CREDIT = 1 };

/*
 * Open a sink; @callback gets its messages (@status 0, @msg owned by the
 * callee), credit (above), and its end when it fails (@msg NULL, a negative
 * errno).  The final response, an exception or an error is the last call.
 * *sink_id (may be NULL) names it for the calls below and rfd_client_cancel().
 */
RFD_EXPORT int rfd_client_sink_async(struct rfd_client *client, const char *method,
                                     const void *args, size_t args_len, const int *fds,
                                     size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                                     rfd_stream_fn *callback, void *user, uint32_t *sink_id);

/*
 * Send an item: @data is {0: item}, with @n_fds FDs (in TAKE mode the
 * library's whatever this returns).  Takes one credit.  -EAGAIN when
 * rfd_client_sink_credits() is 0 (nothing sent); -EOPNOTSUPP for FDs the
 * server did not accept; -ENOENT when the sink is not open for items (no
 * first response yet, completed, ended or unknown); -EINVAL for bad
 * arguments.
 */
RFD_EXPORT int rfd_client_sink_send(struct rfd_client *client, uint32_t sink_id, const void *data,
                                    size_t len, const int *fds, size_t n_fds,
                                    enum rfd_fd_mode mode);

/* Items rfd_client_sink_send() takes now; 0 for a sink not open for items. */
RFD_EXPORT unsigned rfd_client_sink_credits(const struct rfd_client *client, uint32_t sink_id);

/* 1 when the sink's items may carry FDs (its server accepted the extension sink), 0 when not. */
RFD_EXPORT int rfd_client_sink_fds(const struct rfd_client *client, uint32_t sink_id);

/*
 * No more items: the completion (PAYLOAD COMPLETE) goes after the items
 * sent; the final response follows.  0, or -ENOENT as rfd_client_sink_send().
 */
RFD_EXPORT int rfd_client_sink_finish(struct rfd_client *client, uint32_t sink_id);

/*
 * Blocking: open a sink and wait for its first response, as
 * rfd_client_stream() does: 0 with *first RFD_MSG_REPLY and the sink open
 * under *sink_id, or RFD_MSG_EXCEPTION or RFD_MSG_ERROR and it is over; a
 * negative errno: it failed, and is over.
 */
RFD_EXPORT int rfd_client_sink(struct rfd_client *client, const char *method, const void *args,
                               size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                               int timeout_ms, struct rfd_msg **first, uint32_t *sink_id);

/*
 * Send an item of a blocking sink, waiting up to @timeout_ms (-1: no limit)
 * for credit.  0 once it is queued; -ETIMEDOUT (nothing sent); -EPIPE: the
 * server ended the sink (rfd_client_sink_close() gives its answer); the
 * sink's failure (rfd_client_sink_close() gives it too); other errors as
 * rfd_client_sink_send().  FDs in TAKE mode are the library's whatever this
 * returns.
 */
RFD_EXPORT int rfd_client_sink_push(struct rfd_client *client, uint32_t sink_id, const void *data,
                                    size_t len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                                    int timeout_ms);

/*
 * Complete a blocking sink (unless the server ended it) and wait up to
 * @timeout_ms for its final response.  0 with *final (the caller's):
 * RFD_MSG_REPLY, RFD_MSG_EXCEPTION or RFD_MSG_ERROR, and the sink is over;
 * -ETIMEDOUT: nothing came in time, the sink is still open (call again, or
 * rfd_client_cancel()); another negative errno: it failed, and is over.
 * -ENOENT: no such sink; -ECANCELED: a callback cancelled it meanwhile.
 */
RFD_EXPORT int rfd_client_sink_close(struct rfd_client *client, uint32_t sink_id, int timeout_ms,
                                     struct rfd_msg **final);

/* ---- Server ---------------------------------------------------------------------------- */

struct rfd_server;

/*
 * Called for each request, in arrival order per connection.  The handler
 * owns @request: it answers it with rfd_reply*() (which frees it), at once
 * or later from the server's thread, or frees a one-way with rfd_msg_free().
 * A request outlives its connection: answering after the client left
 * returns -ENOTCONN and frees it.
 */
typedef void rfd_handler_fn(void *user, struct rfd_msg *request);

/* Called when a connection closes, with its rfd_msg_connection() id. */
typedef void rfd_closed_fn(void *user, uint64_t connection);

struct rfd_server_options {
	mode_t socket_mode;       /* of the socket file; 0 leaves the umask's choice */
	unsigned max_connections; /* more are accepted and closed at once */
	struct rfd_limits limits;
	rfd_closed_fn *closed; /* may be NULL */
	rfd_trace_fn *trace;   /* may be NULL; trace_user is passed to it */
	void *trace_user;
	/*
	 * SO_PASSCRED on the listening socket, inherited by every accepted one:
	 * each request then carries the credentials of its writer
	 * (rfd_msg_sender()).  Off by default.
	 */
	bool pass_credentials;
	/*
	 * Take no pidfd with SO_PEERPIDFD, as on kernels before 6.5, and use
	 * their fallback instead: pidfd_open() of the SO_PEERCRED pid, kept only
	 * where /proc/sys/kernel/pid_max is at least 4194304 and both calls took
	 * less than a second; never pinned.  For testing that path.  Off by default.
	 */
	bool pidfd_fallback;
};

RFD_EXPORT void rfd_server_options_init(struct rfd_server_options *options);

/*
 * Listen at @path (at most 107 bytes).  A stale socket file is replaced
 * only when nothing accepts connections on it; any other file there is an
 * error (-EADDRINUSE).
 */
RFD_EXPORT int rfd_server_listen(const char *path, const struct rfd_server_options *options,
                                 rfd_handler_fn *handler, void *user, struct rfd_server **out);

/*
 * An epoll FD that is readable when rfd_server_run(server, 0) has work; an
 * event loop may watch it level- or edge-triggered.
 */
RFD_EXPORT int rfd_server_fd(const struct rfd_server *server);

/*
 * Serve for up to @timeout_ms (0: only what is ready; -1: until
 * rfd_server_stop()).  Returns 0, or a negative errno on a fatal error.
 */
RFD_EXPORT int rfd_server_run(struct rfd_server *server, int timeout_ms);

/* Make rfd_server_run() return.  Async-signal-safe. */
RFD_EXPORT void rfd_server_stop(struct rfd_server *server);

/* Connections currently open. */
RFD_EXPORT size_t rfd_server_connections(const struct rfd_server *server);

/*
 * Close every connection and the listening socket, remove the socket file,
 * and free the server.  Requests still held by handlers stay valid until
 * answered or freed.
 */
RFD_EXPORT void rfd_server_free(struct rfd_server *server);

/* Answer @request with the result struct @data and @n_fds FDs.  Frees @request. */
RFD_EXPORT int rfd_reply(struct rfd_msg *request, const void *data, size_t len, const int *fds,
                         size_t n_fds, enum rfd_fd_mode mode);

/*
 * Answer with a declared exception: @data is the result struct with the
 * exception in its field; @name and @what describe it.  Frees @request.
 */
RFD_EXPORT int rfd_reply_exception(struct rfd_msg *request, const char *name, const char *what,
                                   const void *data, size_t len);

/*
 * rfd_reply_exception() with @n_fds FDs, which the client receives with the
 * exception.  That needs the extension exception (rfd_msg_extensions()):
 * without it, -EOPNOTSUPP and nothing is sent, @request is not freed and,
 * in TAKE mode, the FDs are closed.  -EINVAL likewise for bad arguments.
 */
RFD_EXPORT int rfd_reply_exception_fds(struct rfd_msg *request, const char *name, const char *what,
                                       const void *data, size_t len, const int *fds, size_t n_fds,
                                       enum rfd_fd_mode mode);

/* Why a request is answered with an error (the ERROR frame and ResponseRpcError it becomes). */
enum rfd_failure {
	RFD_FAIL_BAD_REQUEST,    /* 0x204 INVALID; INVALID_REQUEST / REQUEST_PARSING_FAILURE */
	RFD_FAIL_WRONG_KIND,     /* 0x204 INVALID; INVALID_REQUEST / WRONG_RPC_KIND */
	RFD_FAIL_UNKNOWN_METHOD, /* 0x204 INVALID; INVALID_REQUEST / UNKNOWN_METHOD */
	RFD_FAIL_OVERLOADED,     /* 0x202 REJECTED; LOADSHEDDING / OVERLOAD */
	RFD_FAIL_INTERNAL,       /* 0x203 CANCELED; INTERNAL_ERROR / UNKNOWN */
};

/*
 * Answer with an error, @what saying why.  Frees @request.  A one-way
 * request gets no answer (the spec forbids one): it is only freed.
 */
RFD_EXPORT int rfd_reply_error(struct rfd_msg *request, enum rfd_failure failure, const char *what);

/*
 * Streams.  A request of kind RFD_CALL_STREAM is answered with
 * rfd_reply_stream(), which sends the first response and gives a stream;
 * items follow with rfd_stream_send() as the client gives credit, and one
 * of rfd_stream_complete(), rfd_stream_exception() and rfd_stream_error()
 * ends it.  Or the request is answered with rfd_reply_exception() or
 * rfd_reply_error() instead of a first response (rfd_reply() would tell the
 * client WRONG_RPC_KIND).  Like a request, a stream outlives its connection:
 * it is valid until ended or freed, whatever the client does.
 */
struct rfd_stream;

enum rfd_stream_event {
	RFD_STREAM_CREDIT,    /* rfd_stream_credits() went from 0 to more: items may be sent */
	RFD_STREAM_CANCELLED, /* the client cancelled the stream: nothing more goes out */
	RFD_STREAM_CLOSED,    /* the connection closed (client gone, or server freed): the same */
};

/*
 * What happened to @stream, called from rfd_server_run(), or with
 * RFD_STREAM_CLOSED from rfd_server_free() too.  It may send on, end or
 * free the stream.  After RFD_STREAM_CANCELLED or RFD_STREAM_CLOSED no
 * other event comes; the stream still needs rfd_stream_free().
 */
typedef void rfd_stream_event_fn(void *user, struct rfd_stream *stream,
                                 enum rfd_stream_event event);

/*
 * Answer a stream request with its first response: @data is the initial
 * result struct (the empty struct 00 for a plain stream<T>, {0: R} for
 * R, stream<T>), with @n_fds FDs.  Frees @request.  0 with *out the stream,
 * which @event (may be NULL) reports on with @user.  -ECANCELED: the client
 * cancelled the call before this answer; -ENOTCONN: the client left; then
 * nothing is sent.  -EINVAL: bad arguments, @request not freed; or a
 * request not of kind RFD_CALL_STREAM, which is answered ERROR 0x204
 * WRONG_RPC_KIND instead and freed.  On failure *out is NULL and, in TAKE
 * mode, the FDs are closed.
 */
RFD_EXPORT int rfd_reply_stream(struct rfd_msg *request, const void *data, size_t len,
                                const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                                rfd_stream_event_fn *event, void *user, struct rfd_stream **out);

/*
 * Send an item: @data is the stream's result struct with the item in field
 * 0 ({0: T}), with @n_fds FDs (ownership as everywhere per @mode: in TAKE
 * mode they are the library's whatever this returns).  Takes one credit.
 * -EAGAIN when rfd_stream_credits() is 0 (nothing sent; wait for
 * RFD_STREAM_CREDIT); -ECANCELED after RFD_STREAM_CANCELLED; -ENOTCONN after
 * RFD_STREAM_CLOSED; -EINVAL for bad arguments.
 */
RFD_EXPORT int rfd_stream_send(struct rfd_stream *stream, const void *data, size_t len,
                               const int *fds, size_t n_fds, enum rfd_fd_mode mode);

/*
 * How many items rfd_stream_send() takes now: the credit the client gave
 * and items did not use, but no more than the few that may wait in the
 * library for the socket, and none while the items of all the connection's
 * streams waiting there hold fd_budget FDs (struct rfd_limits).  0 once the
 * stream is cancelled or closed.  While it is above 0 the next item is taken
 * whatever its FDs: a handler that makes an item's FDs only then never
 * makes FDs it cannot send, and RFD_STREAM_CREDIT tells it when it may go on.
 */
RFD_EXPORT unsigned rfd_stream_credits(const struct rfd_stream *stream);

/*
 * End the stream: it completed (PAYLOAD COMPLETE).  Frees @stream whatever
 * it returns; errors as for rfd_stream_send().
 */
RFD_EXPORT int rfd_stream_complete(struct rfd_stream *stream);

/*
 * End the stream with a declared exception: @data is the stream's result
 * struct with the exception in its declared field id; @name and @what
 * describe it, and @n_fds FDs go with it.  Frees @stream, unless it returns
 * -EINVAL (bad arguments) or -EOPNOTSUPP: FDs need the extension exception
 * (rfd_msg_extensions() of the request); in TAKE mode the FDs are closed
 * then too, and nothing is sent.
 */
RFD_EXPORT int rfd_stream_exception(struct rfd_stream *stream, const char *name, const char *what,
                                    const void *data, size_t len, const int *fds, size_t n_fds,
                                    enum rfd_fd_mode mode);

/*
 * End the stream with an error: ERROR 0x201 APPLICATION_ERROR whose data is
 * a StreamRpcError with what_utf8 @what.  Frees @stream whatever it returns
 * but -EINVAL.
 */
RFD_EXPORT int rfd_stream_error(struct rfd_stream *stream, const char *what);

/*
 * Free @stream.  One that was not ended is ended for the client with ERROR
 * 0x203 CANCELED ("the server dropped the stream").  NULL is accepted.
 */
RFD_EXPORT void rfd_stream_free(struct rfd_stream *stream);

/*
 * Sinks.  A request of kind RFD_CALL_SINK is answered with rfd_reply_sink(),
 * which sends the first response and gives a sink; the client's items then
 * come to its callback, each with its FDs, as the library grants credit:
 * @credits items at first (0: 100, fbthrift's default), and as many again
 * each time half of them (rounded up) have reached the callback.  After the
 * client's completion, one of rfd_sink_finish(), rfd_sink_exception() and
 * rfd_sink_error() ends the sink; they may end it early too.  Or the
 * request is answered with rfd_reply_exception*() or rfd_reply_error()
 * instead of a first response.  Like a stream, a sink outlives its
 * connection: it is valid until ended or freed.
 *
 * Items carry FDs only under the extension sink: the library accepts it
 * whenever the client offers it, and fails a sink whose item brings FDs
 * otherwise (the client gets ERROR 0x204), as it fails one whose item's
 * FDs do not match what it claimed, or that comes without credit.
 */
struct rfd_sink;

/*
 * What happened on @sink, called from rfd_server_run() (with -ENOTCONN from
 * rfd_server_free() too).  @item not NULL (@status 0): an item, the
 * callee's, data {0: item}.  @item NULL: @status 0, the client completed
 * the sink: answer it; or a negative errno, the sink ended and nothing
 * more goes out on it: -ECANCELED (the client cancelled it), -EREMOTEIO
 * (the client ended it with an error), -EBADFD (an item's FDs did not
 * match), -EPROTO (an item the client had no right to send: without
 * credit, with FDs not agreed, unreadable), -ENOTCONN (the connection
 * closed).  After a negative status no other call comes; the sink still
 * needs rfd_sink_free().  The callback may end or free the sink.
 */
typedef void rfd_sink_fn(void *user, struct rfd_sink *sink, int status, struct rfd_msg *item);

/*
 * Answer a sink request with its first response: @data is the initial
 * result struct (the empty struct 00 for sink<T, R>), with @n_fds FDs.
 * Frees @request.  0 with *out the sink, reported on to @callback with
 * @user.  Errors as rfd_reply_stream(): -ECANCELED, -ENOTCONN, -EINVAL (a
 * request not of kind RFD_CALL_SINK is answered ERROR 0x204 WRONG_RPC_KIND
 * and freed).
 */
RFD_EXPORT int rfd_reply_sink(struct rfd_msg *request, const void *data, size_t len, const int *fds,
                              size_t n_fds, enum rfd_fd_mode mode, unsigned credits,
                              rfd_sink_fn *callback, void *user, struct rfd_sink **out);

/* Grant the client @n more items now, beyond the library's window.  0, -EINVAL, or as below. */
RFD_EXPORT int rfd_sink_request(struct rfd_sink *sink, unsigned n);

/*
 * End the sink with its final response: @data is {0: R}, with @n_fds FDs,
 * which need the extension sink (rfd_msg_extensions() of the request).
 * Frees @sink, unless it returns -EINVAL (bad arguments) or -EOPNOTSUPP
 * (FDs without the extension; in TAKE mode they are closed, and nothing is
 * sent).  -ECANCELED, -EREMOTEIO, -EBADFD, -EPROTO, -ENOTCONN: the sink had
 * ended (the status its callback got).
 */
RFD_EXPORT int rfd_sink_finish(struct rfd_sink *sink, const void *data, size_t len, const int *fds,
                               size_t n_fds, enum rfd_fd_mode mode);

/*
 * End the sink with a declared exception, as rfd_stream_exception() ends a
 * stream: FDs need the extension exception.  Frees @sink as
 * rfd_sink_finish() does.
 */
RFD_EXPORT int rfd_sink_exception(struct rfd_sink *sink, const char *name, const char *what,
                                  const void *data, size_t len, const int *fds, size_t n_fds,
                                  enum rfd_fd_mode mode);

/*
 * End the sink with ERROR 0x201 APPLICATION_ERROR and a StreamRpcError with
 * what_utf8 @what.  Frees @sink whatever it returns but -EINVAL.
 */
RFD_EXPORT int rfd_sink_error(struct rfd_sink *sink, const char *what);

/*
 * Free @sink.  One that was not ended is ended for the client with ERROR
 * 0x203 CANCELED ("the server dropped the sink").  NULL is accepted.
 */
RFD_EXPORT void rfd_sink_free(struct rfd_sink *sink);

#ifdef __cplusplus
}
#endif

#endif
