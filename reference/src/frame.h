/* SPDX-License-Identifier: MIT */
/*
 * Rocket (RSocket 1.0) frames as fbthrift uses them: decoding with a reason
 * for every rejection, encoding, fragmentation and reassembly.  No I/O.
 *
 * On the wire a frame is a u24 big-endian length (not counting itself), a
 * u32 stream id, a u16 (type << 10 | flags), then the type's own fields.
 */
#ifndef RFD_FRAME_H
#define RFD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum rfd_frame_type {
	RFD_FRAME_SETUP = 0x01,
	RFD_FRAME_LEASE = 0x02,
	RFD_FRAME_KEEPALIVE = 0x03,
	RFD_FRAME_REQUEST_RESPONSE = 0x04,
	RFD_FRAME_REQUEST_FNF = 0x05,
	RFD_FRAME_REQUEST_STREAM = 0x06,
	RFD_FRAME_REQUEST_CHANNEL = 0x07,
	RFD_FRAME_REQUEST_N = 0x08,
	RFD_FRAME_CANCEL = 0x09,
	RFD_FRAME_PAYLOAD = 0x0A,
	RFD_FRAME_ERROR = 0x0B,
	RFD_FRAME_METADATA_PUSH = 0x0C,
	RFD_FRAME_RESUME = 0x0D,
	RFD_FRAME_RESUME_OK = 0x0E,
	RFD_FRAME_EXT = 0x3F,
};

enum {
	RFD_FLAG_IGNORE = 0x200,
	RFD_FLAG_METADATA = 0x100,
	RFD_FLAG_FOLLOWS = 0x80,  /* also KEEPALIVE's RESPOND and SETUP's RESUME_ENABLE */
	RFD_FLAG_COMPLETE = 0x40, /* also SETUP's LEASE */
	RFD_FLAG_NEXT = 0x20,
	RFD_FLAG_RESERVED_MASK = 0x1F,
};

/* ERROR frame codes. */
enum {
	RFD_ERROR_INVALID_SETUP = 0x00000001,
	RFD_ERROR_UNSUPPORTED_SETUP = 0x00000002,
	RFD_ERROR_REJECTED_SETUP = 0x00000003,
	RFD_ERROR_CONNECTION_ERROR = 0x00000101,
	RFD_ERROR_CONNECTION_CLOSE = 0x00000102,
	RFD_ERROR_APPLICATION_ERROR = 0x00000201,
	RFD_ERROR_REJECTED = 0x00000202,
	RFD_ERROR_CANCELED = 0x00000203,
	RFD_ERROR_INVALID = 0x00000204,
};

enum {
	RFD_FRAME_LENGTH_SIZE = 3,
	RFD_FRAME_LENGTH_MAX = 0xFFFFFF,
	/* fbthrift fragments payloads whose frame would exceed this many bytes. */
	RFD_FRAGMENT_DEFAULT = 0xFFFFFF - 512,
};

/*
 * A decoded frame.  Slices point into the decoded bytes.  Which fields are
 * meaningful depends on type:
 *   u32: REQUEST_STREAM/REQUEST_CHANNEL initial request n, REQUEST_N n,
 *        ERROR error code.
 *   SETUP: version_major/minor, keepalive_ms, max_lifetime_ms,
 *        resume_token (when the RESUME_ENABLE flag is set), metadata_mime,
 *        data_mime, then metadata/data as a payload.
 *   KEEPALIVE: last_position, data.
 *   ERROR: data (the error's bytes; fbthrift puts a compact ResponseRpcError there).
 *   METADATA_PUSH: metadata is the whole rest of the frame (no length field).
 *   REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL, PAYLOAD:
 *        has_metadata/metadata/data.
 */
struct rfd_frame {
	uint32_t stream_id;
	uint8_t type;
	uint16_t flags;
	uint32_t u32;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t keepalive_ms;
	uint32_t max_lifetime_ms;
	uint64_t last_position;
	struct rfd_slice resume_token;
	struct rfd_slice metadata_mime;
	struct rfd_slice data_mime;
	bool has_metadata;
	struct rfd_slice metadata;
	struct rfd_slice data;
};

/*
 * Look at the start of a byte stream.  Returns 1 and sets *frame_len (the
 * length field plus the 3 bytes of the field itself) when a whole frame is
 * there, 0 when more bytes are needed, -EMSGSIZE when the length field
 * exceeds @max_frame, -EBADMSG when it is too short to hold any frame.
 */
int rfd_frame_split(const uint8_t *bytes, size_t len, size_t max_frame, size_t *frame_len,
                    const char **why);

/*
 * Decode one frame from @bytes, which start just after the length field and
 * hold exactly the frame.  Returns 0 or -EBADMSG with *why naming the
 * problem: unknown type, reserved flag bits set, a fixed part that does not
 * fit, a metadata length past the end, a stream id of the wrong kind for the
 * type (0 for SETUP, KEEPALIVE, METADATA_PUSH and LEASE; non-zero for
 * requests, REQUEST_N, CANCEL and PAYLOAD), PAYLOAD with neither NEXT nor
 * COMPLETE, the METADATA flag on a type that carries no metadata, and so on.
 */
int rfd_frame_decode(const uint8_t *bytes, size_t len, struct rfd_frame *f, const char **why);

/*
 * Append the frame, length field included, to @out.  The METADATA flag and
 * metadata length are written when has_metadata is set.  Returns 0,
 * -ENOMEM, or -EMSGSIZE when the frame does not fit the u24 length.
 */
int rfd_frame_encode(const struct rfd_frame *f, struct rfd_buf *out);

/*
 * Append a payload-carrying frame (REQUEST_RESPONSE, REQUEST_FNF,
 * REQUEST_STREAM, REQUEST_CHANNEL or PAYLOAD), split into fragments so that
 * no frame exceeds @max_frame bytes including its length field: the first
 * fragment keeps the type with FOLLOWS set; the others are PAYLOAD frames,
 * FOLLOWS on all but the last, the last with the NEXT/COMPLETE flags of the
 * original.  Metadata bytes come first and every fragment has its own
 * metadata length.  Returns 0, -ENOMEM or -EINVAL (@max_frame too small).
 */
int rfd_frame_encode_fragmented(const struct rfd_frame *f, size_t max_frame, struct rfd_buf *out);

/*
 * Reassembly of one stream's fragmented payload.  The first fragment (FOLLOWS
 * set) starts it; PAYLOAD frames on the same stream continue it; the first
 * without FOLLOWS ends it.
 */
struct rfd_reassembly {
	bool active;
	uint32_t stream_id;
	uint8_t type;   /* of the first fragment */
	uint16_t flags; /* of the last fragment, FOLLOWS cleared, METADATA as reassembled */
	uint32_t u32;   /* of the first fragment */
	bool has_metadata;
	struct rfd_buf metadata;
	struct rfd_buf data;
	size_t max_size; /* bound on metadata + data; set before use */
};

void rfd_reassembly_init(struct rfd_reassembly *r, size_t max_size);
void rfd_reassembly_free(struct rfd_reassembly *r);

/*
 * Add a fragment.  Returns 1 when the payload is complete (then *out is the
 * whole payload, its slices pointing into @r's buffers until the next call or
 * rfd_reassembly_free), 0 when more fragments are needed, -ENOMEM, or
 * -EBADMSG with *why (a continuation that is not PAYLOAD, a payload over
 * max_size).  The caller routes frames by stream id: while @r is active it
 * passes only frames of r->stream_id.
 * If @f has no FOLLOWS flag and no reassembly is active, returns 1 with *out
 * a copy of @f (no copying of bytes).
 */
int rfd_reassembly_add(struct rfd_reassembly *r, const struct rfd_frame *f, struct rfd_frame *out,
                       const char **why);

/* A printable name for a frame type, for traces and errors ("UNKNOWN" otherwise). */
const char *rfd_frame_type_name(uint8_t type);

#endif
