/* SPDX-License-Identifier: MIT */
/*
 * The input of fuzz-conn: a script for one connection core.
 *
 *   options byte   CONN_OPT_*
 *   limits         with CONN_OPT_LIMITS, 5 bytes: max_fds_per_msg C (1 + b % 253),
 *                  fd_budget (2 * C + 4 * b, at most 4096), max_in_flight
 *                  (1 + b % 32), max_frame (0: default, else 64 * b),
 *                  max_message (0: default, else 256 * b)
 *   fail index     with CONN_OPT_ALLOC_FAIL, a u16: that allocation of the
 *                  library fails
 *   extensions     with CONN_OPT_EXTENSIONS, a byte: bits 0-1 the extensions
 *                  (RFD_EXTENSION_*) the core offers (client) or accepts
 *                  (server), bits 2-3 those the SETUP frames the script
 *                  gives a server offer; without it, both and both
 *   then steps, each an op byte: low nibble the op (CONN_OP_*), high nibble
 *   an argument, then the op's own bytes:
 *
 *   BYTES      u8 n; n + 256 * arg bytes of input, to rfd_conn_recv_bytes()
 *   BYTES_ZC   the same through rfd_conn_in_space() / rfd_conn_in_commit()
 *   FDS        u8 n; a group of n + 256 * (arg & 1) FDs to rfd_conn_recv_fds()
 *   FRAME      a frame built from a description (below), fed in pieces
 *   WRITE      u16 n; write n << (arg & 7) bytes of the next chunk (0: all of it);
 *              with arg bit 3, no u16: a write that takes nothing (EAGAIN)
 *   DRAIN      write everything
 *   SEND       client: u8 kind (bit 0: one-way), u8 method length, method,
 *              u8 args length, args, u8 FD count, i32 timeout, and with arg
 *              bit 1 a stream (REQUEST_STREAM) whose u8 initial request n
 *              follows, with arg bit 2 (and not bit 1) a sink
 *              (REQUEST_CHANNEL of kind 6).  Server: u8 which open request (bit 7: a raw stream
 *              id), u8 answer (% 3: 0 reply, 1 exception, 2 error with
 *              failure (b / 3) % 5), u8 data length, data, and for a reply u8
 *              FD count; with arg bit 1 a stream call instead: answer % 5 is
 *              0 first response, 1 item, 2 complete, 3 exception, 4 error,
 *              then for 0, 1 and 3 u8 data length and data, for 0 and 1 u8
 *              FD count.  With arg bit 0 the length counts 4096 zero bytes a
 *              unit (no data bytes), up to 4 MiB of such bytes a run
 *   ABANDON    u8 which call (client); a stream is sent CANCEL, a sink ERROR
 *   REQUEST_N  u8 which call, u8 n (client)
 *   SINK       client: u8 which call, u8 what: bit 0 the completion, else an
 *              item: u8 data length, data, u8 FD count.  Server: u8 which
 *              open request (bit 7: a raw stream id), u8 what % 5: 0 the
 *              sink's first response, 1 REQUEST_N (u8 n), 2 the final
 *              response, 3 a declared exception instead of any answer, 4 a
 *              declared exception that ends a stream or a sink; each but 1
 *              with u8 data length, data and u8 FD count.  With arg bit 0
 *              the data length counts big units, as for SEND
 *   FREE       u8 which held message, u8 how many of its FDs to take first
 *   EOF        rfd_conn_recv_eof()
 *   FAIL       rfd_conn_fail(), with -ECONNRESET when arg bit 0 is set, else -EIO
 *
 * FRAME: u8 kind (CONN_FRAME_*); u8 stream (bit 7: raw id b & 0x7f; else a
 * client's b-th call, a server's b-th open request with bit 6, or else the
 * new odd id 1 + 2 * (b & 0x3f)); u8 claim (CONN_CLAIM_*, and the metadata variant
 * in bits 5-7); u8 pieces (CONN_PIECES_*: the bytes go in that many reads,
 * an FD group of that size arrives before the last read, the request's RPC
 * kind is wrong, or a PAYLOAD has NEXT without COMPLETE; a REQUEST_CHANNEL
 * asks for a sink, kind 6, initial request n 2); the claim's own
 * bytes; a REQUEST_N asks for 1 + the data length; u8 fragment (frames of at most
 * 16 + (b & 0x7f) bytes, 0: whole; CONN_FRAGMENT_FIRST_ONLY: the first
 * fragment alone); u8 data length and the data.
 */
#ifndef RFD_FUZZ_CONN_SCRIPT_H
#define RFD_FUZZ_CONN_SCRIPT_H

enum {
	CONN_OPT_SERVER = 1 << 0,
	CONN_OPT_HANDSHAKE = 1 << 1, /* a valid SETUP (server) or setup response (client) first */
	CONN_OPT_LIMITS = 1 << 2,
	CONN_OPT_ALLOC_FAIL = 1 << 3,
	CONN_OPT_FREE_MSGS_FIRST = 1 << 4,
	CONN_OPT_EOF_AT_END = 1 << 5,
	CONN_OPT_EXTENSIONS = 1 << 6,
};

enum {
	CONN_OP_BYTES,
	CONN_OP_BYTES_ZC,
	CONN_OP_FDS,
	CONN_OP_FRAME,
	CONN_OP_WRITE,
	CONN_OP_DRAIN,
	CONN_OP_SEND,
	CONN_OP_ABANDON,
	CONN_OP_FREE,
	CONN_OP_EOF,
	CONN_OP_FAIL,
	CONN_OP_REQUEST_N,
	CONN_OP_SINK,
	CONN_OP_COUNT,
};

#define CONN_OP(op, arg) ((op) | (arg) << 4)

enum {
	CONN_FRAME_REQUEST,        /* REQUEST_RESPONSE with RequestRpcMetadata */
	CONN_FRAME_ONEWAY,         /* REQUEST_FNF */
	CONN_FRAME_STREAM,         /* REQUEST_STREAM */
	CONN_FRAME_CHANNEL,        /* REQUEST_CHANNEL of kind 6: a sink */
	CONN_FRAME_REPLY,          /* PAYLOAD with ResponseRpcMetadata, responseMetadata */
	CONN_FRAME_EXCEPTION,      /* the same, declaredException */
	CONN_FRAME_APP_EXCEPTION,  /* the same, appUnknownException */
	CONN_FRAME_STREAM_PAYLOAD, /* PAYLOAD with StreamPayloadMetadata */
	CONN_FRAME_ERROR,          /* ERROR on the stream, ResponseRpcError data */
	CONN_FRAME_CONN_ERROR,     /* ERROR on stream 0 */
	CONN_FRAME_KEEPALIVE,
	CONN_FRAME_CANCEL,
	CONN_FRAME_REQUEST_N,
	CONN_FRAME_PUSH, /* METADATA_PUSH with a ServerPushMetadata */
	CONN_FRAME_SETUP,
	CONN_FRAME_EXT,
	CONN_FRAME_STREAM_EXCEPTION, /* PAYLOAD with StreamPayloadMetadata, declaredException */
	CONN_FRAME_COMPLETE,         /* PAYLOAD COMPLETE, no metadata, no data */
	CONN_FRAME_COUNT,
};

enum {
	CONN_CLAIM_MASK = 3,
	CONN_CLAIM_NONE = 0,
	CONN_CLAIM_HEAD = 1,     /* the oldest queued group, as a correct peer would claim it */
	CONN_CLAIM_RELATIVE = 2, /* int8 count, int8 offset from the oldest queued group's seq */
	CONN_CLAIM_RAW = 3,      /* i32 count, i64 seq */
	CONN_CLAIM_NO_SEQ = 1 << 2,
	CONN_CLAIM_NO_NUM = 1 << 3,
	CONN_CLAIM_EMPTY_FIRST = 1 << 4, /* an empty fdMetadata before the real one */
	CONN_VARIANT_SHIFT = 5,
};

enum {
	CONN_PIECES_READS = 7,
	CONN_PIECES_FDS = 0x78,
	CONN_PIECES_FDS_SHIFT = 3,
	CONN_PIECES_WRONG_KIND = 0x80, /* a PAYLOAD: NEXT without COMPLETE */
	CONN_FRAGMENT_FIRST_ONLY = 0x80,
};

/* Metadata variants (claim byte bits 5-7); for SETUP and METADATA_PUSH their own meaning. */
enum {
	CONN_VARIANT_NORMAL,
	CONN_VARIANT_NO_NAME,     /* request: no method name; response: no NEXT flag */
	CONN_VARIANT_BINARY,      /* request: protocol BINARY; SETUP: encodeMetadataUsingBinary;
	                             response: otherMetadata answering "sink,exception" */
	CONN_VARIANT_COMPRESSION, /* a compression field */
	CONN_VARIANT_INTERACTION, /* request: interactionId; response: checksum */
	CONN_VARIANT_BAD_VERSION, /* SETUP / setup response: a version out of range; request:
	                             checksum; response: otherMetadata answering "exception";
	                             stream payload: an empty payloadMetadata union */
	CONN_VARIANT_NO_METADATA, /* no METADATA flag at all */
	CONN_VARIANT_GARBAGE,     /* three bytes of input as the metadata (SETUP: after the key) */
};

#endif
