/* SPDX-License-Identifier: MIT */
/*
 * The harness's own end of a connection: raw frames and raw control
 * messages, written exactly as a case asks, so that it can send what no
 * correct peer would.  Blocking I/O with deadlines.
 */
#ifndef RFD_CONFORM_WIRE_H
#define RFD_CONFORM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fdqueue.h"
#include "frame.h"
#include "metadata.h"

struct conf_ctx;

/* One received FD group, as the harness's kernel delivered it. */
struct wire_group {
	int64_t seq;
	size_t n;
	int fds[253];
};

struct wire {
	int sock;
	struct conf_ctx *ctx;
	struct rfd_buf in;
	struct rfd_buf frame_bytes;   /* the bytes of the last frame read */
	struct wire_group groups[16]; /* received and not yet taken, oldest first */
	size_t n_groups;
	int64_t recv_seq; /* FDs received so far */
	int64_t send_seq; /* FDs sent so far: the next fdSeqNum to claim */
	uint32_t next_stream;
	bool eof;
};

/* Connect to @path (0 or a negative errno).  wire_close() closes every FD it holds. */
int wire_connect(struct wire *w, struct conf_ctx *ctx, const char *path);
/* Adopt an accepted socket (client role). */
void wire_adopt(struct wire *w, struct conf_ctx *ctx, int sock);
void wire_close(struct wire *w);

/*
 * Write @len bytes with @n_fds FDs in one SCM_RIGHTS cmsg attached to the
 * first sendmsg (the FDs stay the caller's).  Loops on partial writes,
 * never resending the FDs.  Adds @n_fds to send_seq.  0 or a negative errno.
 */
int wire_send(struct wire *w, const void *bytes, size_t len, const int *fds, size_t n_fds);

/* Encode @frame and send it with the FDs. */
int wire_send_frame(struct wire *w, const struct rfd_frame *frame, const int *fds, size_t n_fds);

/*
 * Read until a whole frame is there (or the deadline, or EOF) and decode it.
 * FD groups that arrive are appended to w->groups.  Returns 1 with *frame
 * (its slices valid until the next read), 0 at EOF, -ETIMEDOUT, or -EBADMSG
 * with the reason noted in the context.
 */
int wire_read_frame(struct wire *w, struct rfd_frame *frame, int timeout_ms);

/* Wait until the peer closes the connection (EOF or reset): 1, or 0 on timeout. */
int wire_wait_eof(struct wire *w, int timeout_ms);

/* Take the oldest received group (false when none); the caller owns its FDs. */
bool wire_take_group(struct wire *w, struct wire_group *out);

/* Close every FD of the received groups. */
void wire_drop_groups(struct wire *w);

/* ---- Client-side conveniences (the harness playing the client) ---- */

/* Send fbthrift's SETUP (key, versions 8..10) and read the setup response: 0 or failure noted. */
int wire_handshake(struct wire *w);

/* A SETUP frame as fbthrift's client writes it, appended to @out. */
void wire_encode_setup(struct rfd_buf *out, uint32_t key, int32_t min_version, int32_t max_version);

/*
 * A request frame appended to @out: @type REQUEST_RESPONSE or REQUEST_FNF,
 * Compact RequestRpcMetadata with @method, and, when @claim is not NULL,
 * that fdMetadata (written as given, however wrong).
 */
void wire_encode_request(struct rfd_buf *out, uint8_t type, uint32_t stream_id, const char *method,
                         const void *args, size_t args_len, const struct rfd_fd_metadata *claim);

/*
 * The flag bits of @flags that a frame of @type does not define (the table
 * of 4.4; the reserved bits 0x01F are not counted here): 0 when none, or
 * for a type the table does not list.
 */
uint16_t wire_undefined_flags(uint8_t type, uint16_t flags);

/* The next odd stream id. */
uint32_t wire_stream_id(struct wire *w);

/* fdMetadata for @n FDs at the connection's next sequence number. */
struct rfd_fd_metadata wire_claim(const struct wire *w, int32_t n);

/*
 * A reply as the harness reads it: the frame's kind and, for a PAYLOAD,
 * the decoded ResponseRpcMetadata, its data, and the FDs claimed.
 */
struct wire_reply {
	uint8_t type;                    /* RFD_FRAME_PAYLOAD or RFD_FRAME_ERROR */
	uint32_t error_code;             /* ERROR frames */
	struct rfd_response_error error; /* ERROR frames whose data decodes */
	bool error_decoded;
	struct rfd_response_metadata md; /* PAYLOAD frames */
	struct rfd_buf data;
	struct wire_group fds; /* FDs claimed by md.fd, n = 0 when none */
	bool fds_matched;      /* the claim found exactly its group */
};

/*
 * Read frames until the answer on @stream_id arrives (others are noted and
 * skipped).  Claims the reply's FDs from the received groups by its
 * fdMetadata (older groups are closed).  Returns 1, 0 at EOF, or -ETIMEDOUT.
 */
int wire_read_reply(struct wire *w, uint32_t stream_id, struct wire_reply *reply, int timeout_ms);
void wire_reply_free(struct wire_reply *reply);

/* ---- Streams and sinks (spec section 21) ---- */

/* The key of the extension offer and answer (21.8). */
#define WIRE_EXTENSIONS_KEY "rocketfd.fds"

/*
 * A SETUP as wire_encode_setup() writes it, whose ClientMetadata also holds
 * otherMetadata {WIRE_EXTENSIONS_KEY: @offer} (A.12); @offer NULL: no
 * otherMetadata at all.
 */
void wire_encode_setup_offer(struct rfd_buf *out, const char *offer);

/* wire_handshake() with the SETUP of wire_encode_setup_offer(). */
int wire_handshake_offer(struct wire *w, const char *offer);

/* What a stream or sink request puts in its frame and metadata. */
struct wire_stream_request {
	uint8_t type;              /* RFD_FRAME_REQUEST_STREAM or RFD_FRAME_REQUEST_CHANNEL */
	int32_t kind;              /* RpcKind written as given; -1: no kind field */
	uint32_t initial_n;        /* the initial request N */
	int32_t client_timeout_ms; /* > 0: RequestRpcMetadata 5 clientTimeoutMs */
	const char *method;
	const void *args;
	size_t args_len;
	const struct rfd_fd_metadata *claim; /* NULL: no fdMetadata */
};

/* A REQUEST_STREAM or REQUEST_CHANNEL frame (fragmented when it must be) appended to @out. */
void wire_encode_stream_request(struct rfd_buf *out, uint32_t stream_id,
                                const struct wire_stream_request *req);

/* REQUEST_N @n, CANCEL, and ERROR @code with @data: the raw frames of 4.4, appended to @out. */
void wire_encode_request_n(struct rfd_buf *out, uint32_t stream_id, uint32_t n);
void wire_encode_cancel(struct rfd_buf *out, uint32_t stream_id);
void wire_encode_error(struct rfd_buf *out, uint32_t stream_id, uint32_t code, const void *data,
                       size_t len);

/*
 * A PAYLOAD on @stream_id with @flags whose metadata is a StreamPayloadMetadata
 * {3: responseMetadata {}} with @claim (NULL: none) as its fdMetadata, and
 * @data; @metadata false: no metadata at all.  Fragmented when it must be.
 */
void wire_encode_stream_payload(struct rfd_buf *out, uint32_t stream_id, uint16_t flags,
                                bool metadata, const struct rfd_fd_metadata *claim,
                                const void *data, size_t len);

/*
 * The value of WIRE_EXTENSIONS_KEY in the otherMetadata map of a metadata
 * struct, field @field (3 in ResponseRpcMetadata, 3 in ClientMetadata):
 * 1 with *value set (a slice of @bytes) when the field is a map of strings
 * holding the key (its last entry), 0 when it is absent or of another
 * shape (EXT-2), -EBADMSG when @bytes are not one Compact struct.
 */
int wire_extension_value(const uint8_t *bytes, size_t len, int16_t field, struct rfd_slice *value);

/*
 * Whether the comma-separated @value names @name, read as EXT-2 says:
 * items split at commas, spaces and tabs around them ignored.
 */
bool wire_extension_named(struct rfd_slice value, const char *name);

/* ---- Pipes for leak checks ---- */

/* A pipe: the harness keeps read_end, sends write_end (and must close its copy after). */
int wire_pipe(int *read_end, int *write_end);

/* Wait until every copy of the pipe's write end is closed: 1 = EOF seen, 0 = still open. */
int wire_expect_eof(int read_end, int timeout_ms);

#endif
