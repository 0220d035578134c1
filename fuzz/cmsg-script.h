/* SPDX-License-Identifier: MIT */
/*
 * The input of fuzz-cmsg: a description of a control buffer, from which the
 * target builds the buffer with its own FDs in every slot the parser could
 * read as one.
 *
 *   options byte  CMSG_OPT_*; with CMSG_OPT_ADJUST an int8 follows: below 0,
 *                 cut that many bytes off the end; above 0, append
 *                 (value & 15) bytes of input after the last cmsg's padding
 *   then cmsgs, each:
 *     head byte   level (CMSG_LEVEL_*), type (CMSG_TYPE_*), length mode
 *                 (CMSG_LEN_*), CMSG_HEAD_NEGATIVE
 *     size        u8 p: p < 0x80 means p FD slots (4 * p payload bytes);
 *                 otherwise ((p & 0x7f) << 8 | next byte) payload bytes
 *     then, as the head asks: a u32 level, a u8 or u32 type, an int8 length
 *     delta, a u8 or u64 cmsg_len, a mask byte (slot i holds a negative
 *     number when bit i % 8 is set)
 *     then the payload bytes that are not FD slots, from the input
 *
 * A cmsg's length mode gives cmsg_len; the bytes it covers past the header
 * are its payload.  In SOL_SOCKET cmsgs of type SCM_RIGHTS or SCM_PIDFD every
 * whole 4-byte slot of that payload holds an FD of the target's; the rest
 * comes from the input.  A cmsg_len below the header size ends the buffer.
 */
#ifndef RFD_FUZZ_CMSG_SCRIPT_H
#define RFD_FUZZ_CMSG_SCRIPT_H

enum {
	CMSG_OPT_CTRUNC = 1 << 0,
	CMSG_OPT_ALLOW_CREDENTIALS = 1 << 1,
	CMSG_OPT_ALLOW_PIDFD = 1 << 2,
	CMSG_OPT_OTHER_FLAGS = 1 << 3, /* MSG_EOR | MSG_TRUNC | MSG_OOB as well */
	CMSG_OPT_ALIGN_SHIFT = 4,      /* bits 4-6: the buffer starts this far off alignment */
	CMSG_OPT_ALIGN_MASK = 7,
	CMSG_OPT_ADJUST = 1 << 7,

	CMSG_LEVEL_MASK = 3,
	CMSG_LEVEL_SOCKET = 0,
	CMSG_LEVEL_SOCKET_TOO = 1,
	CMSG_LEVEL_IP = 2,
	CMSG_LEVEL_RAW = 3,

	CMSG_TYPE_SHIFT = 2,
	CMSG_TYPE_MASK = 7,
	CMSG_TYPE_RIGHTS = 0,
	CMSG_TYPE_RIGHTS_TOO = 1,
	CMSG_TYPE_CREDENTIALS = 2,
	CMSG_TYPE_PIDFD = 3,
	CMSG_TYPE_TIMESTAMP = 4,
	CMSG_TYPE_SECURITY = 5,
	CMSG_TYPE_RAW8 = 6,
	CMSG_TYPE_RAW32 = 7,

	CMSG_LEN_SHIFT = 5,
	CMSG_LEN_MASK = 3,
	CMSG_LEN_NATURAL = 0, /* CMSG_LEN(payload size) */
	CMSG_LEN_DELTA = 1,   /* CMSG_LEN(payload size) + int8 */
	CMSG_LEN_BYTE = 2,    /* a u8 */
	CMSG_LEN_RAW = 3,     /* a u64 */

	CMSG_HEAD_NEGATIVE = 1 << 7,

	CMSG_SIZE_LONG = 0x80,
};

#define CMSG_HEAD(level, type, len_mode)                                                           \
	((level) | (type) << CMSG_TYPE_SHIFT | (len_mode) << CMSG_LEN_SHIFT)

#endif
