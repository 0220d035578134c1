/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "frame.h"
#include "testutil.h"

enum { HEX_MAX = 512 };

#define SLICE(lit)                                                                                 \
	{                                                                                          \
		(const uint8_t *)(lit), sizeof(lit) - 1                                            \
	}

/*
 * A frame worked out by hand: the struct the codec should encode into @hex
 * (length field included) and decode @hex back into.
 */
struct vector {
	const char *name;
	const char *hex;
	struct rfd_frame frame;
};

static const struct vector vectors[] = {
    {
        /* fbthrift-wire.md section 4: metadata and data are opaque here. */
        "request_response_worked_example",
        "00 00 24  00 00 00 01  11 00  00 00 12"
        "  15 04 18 04 64 65 6d 6f 15 00  0c 2c 16 00 15 02 00  00"
        "  1c 18 04 6b 74 68 78 00 00",
        {
            .stream_id = 1,
            .type = RFD_FRAME_REQUEST_RESPONSE,
            .flags = RFD_FLAG_METADATA,
            .has_metadata = true,
            .metadata = SLICE("\x15\x04\x18\x04\x64\x65\x6d\x6f\x15\x00"
                              "\x0c\x2c\x16\x00\x15\x02\x00\x00"),
            .data = SLICE("\x1c\x18\x04\x6b\x74\x68\x78\x00\x00"),
        },
    },
    {
        /* fbthrift's client SETUP: protocol key, then compact {3: 8, 4: 10}. */
        "setup_fbthrift_client",
        "00 00 61  00 00 00 00  05 00  00 01 00 00  7f ff ff ff  7f ff ff ff"
        "  25 61 70 70 6c 69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74 2d"
        "     6d 65 74 61 64 61 74 61 2b 63 6f 6d 70 61 63 74"
        "  1c 61 70 70 6c 69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74 2d"
        "     70 61 79 6c 6f 61 64"
        "  00 00 09  f0 9f 9a 80 35 10 15 14 00",
        {
            .type = RFD_FRAME_SETUP,
            .flags = RFD_FLAG_METADATA,
            .version_major = 1,
            .version_minor = 0,
            .keepalive_ms = 0x7FFFFFFF,
            .max_lifetime_ms = 0x7FFFFFFF,
            .metadata_mime = SLICE("application/x-rocket-metadata+compact"),
            .data_mime = SLICE("application/x-rocket-payload"),
            .has_metadata = true,
            .metadata = SLICE("\xf0\x9f\x9a\x80\x35\x10\x15\x14\x00"),
        },
    },
    {
        /* RESUME_ENABLE (0x80) and LEASE (0x40): token with a u16 length. */
        "setup_resume_token_and_lease",
        "00 00 1c  00 00 00 00  04 c0  00 01 00 02  00 00 01 f4  00 00 ea 60"
        "  00 03 74 6f 6b  01 61  01 62  7a",
        {
            .type = RFD_FRAME_SETUP,
            .flags = RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE,
            .version_major = 1,
            .version_minor = 2,
            .keepalive_ms = 500,
            .max_lifetime_ms = 60000,
            .resume_token = SLICE("tok"),
            .metadata_mime = SLICE("a"),
            .data_mime = SLICE("b"),
            .data = SLICE("z"),
        },
    },
    {
        /* The setup response: compact ServerPushMetadata {1: {1: 10}}, no length field. */
        "metadata_push_setup_response",
        "00 00 0b  00 00 00 00  31 00  1c 15 14 00 00",
        {
            .type = RFD_FRAME_METADATA_PUSH,
            .flags = RFD_FLAG_METADATA,
            .has_metadata = true,
            .metadata = SLICE("\x1c\x15\x14\x00\x00"),
        },
    },
    {
        "payload_next_complete_metadata",
        "00 00 14  00 00 00 01  29 60  00 00 05  7c 1c 00 00 00  08 00 02 6f 6b 00",
        {
            .stream_id = 1,
            .type = RFD_FRAME_PAYLOAD,
            .flags = RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
            .has_metadata = true,
            .metadata = SLICE("\x7c\x1c\x00\x00\x00"),
            .data = SLICE("\x08\x00\x02\x6f\x6b\x00"),
        },
    },
    {
        "payload_complete_only_empty",
        "00 00 06  00 00 00 0f  28 40",
        {
            .stream_id = 15,
            .type = RFD_FRAME_PAYLOAD,
            .flags = RFD_FLAG_COMPLETE,
        },
    },
    {
        "error_invalid",
        "00 00 0f  00 00 00 03  2c 00  00 00 02 04  1c 15 0c 00 00",
        {
            .stream_id = 3,
            .type = RFD_FRAME_ERROR,
            .u32 = RFD_ERROR_INVALID,
            .data = SLICE("\x1c\x15\x0c\x00\x00"),
        },
    },
    {
        "error_connection_level",
        "00 00 0c  00 00 00 00  2c 00  00 00 00 01  6e 6f",
        {
            .type = RFD_FRAME_ERROR,
            .u32 = RFD_ERROR_INVALID_SETUP,
            .data = SLICE("no"),
        },
    },
    {
        /* What fbthrift's client sends: RESPOND, position 0, no data. */
        "keepalive_respond",
        "00 00 0e  00 00 00 00  0c 80  00 00 00 00 00 00 00 00",
        {
            .type = RFD_FRAME_KEEPALIVE,
            .flags = RFD_FLAG_FOLLOWS,
        },
    },
    {
        "keepalive_position_and_data",
        "00 00 10  00 00 00 00  0c 00  01 02 03 04 05 06 07 08  68 69",
        {
            .type = RFD_FRAME_KEEPALIVE,
            .last_position = 0x0102030405060708ull,
            .data = SLICE("hi"),
        },
    },
    {
        "request_fnf",
        "00 00 0c  00 00 00 05  15 00  00 00 02 61 62  63",
        {
            .stream_id = 5,
            .type = RFD_FRAME_REQUEST_FNF,
            .flags = RFD_FLAG_METADATA,
            .has_metadata = true,
            .metadata = SLICE("ab"),
            .data = SLICE("c"),
        },
    },
    {
        "request_stream",
        "00 00 0b  00 00 00 07  18 00  7f ff ff ff  78",
        {
            .stream_id = 7,
            .type = RFD_FRAME_REQUEST_STREAM,
            .u32 = 0x7FFFFFFF,
            .data = SLICE("x"),
        },
    },
    {
        /* Empty but present metadata keeps its flag and a zero length. */
        "request_channel_complete_empty_metadata",
        "00 00 0d  00 00 00 09  1d 40  00 00 00 01  00 00 00",
        {
            .stream_id = 9,
            .type = RFD_FRAME_REQUEST_CHANNEL,
            .flags = RFD_FLAG_METADATA | RFD_FLAG_COMPLETE,
            .u32 = 1,
            .has_metadata = true,
        },
    },
    {
        "request_n",
        "00 00 0a  00 00 00 0b  20 00  00 00 00 10",
        {
            .stream_id = 11,
            .type = RFD_FRAME_REQUEST_N,
            .u32 = 16,
        },
    },
    {
        "cancel",
        "00 00 06  00 00 00 0d  24 00",
        {
            .stream_id = 13,
            .type = RFD_FRAME_CANCEL,
        },
    },
    {
        "ext_ignore_metadata",
        "00 00 0f  00 00 00 00  ff 00  00 00 0f b0  00 00 01 6d  64",
        {
            .type = RFD_FRAME_EXT,
            .flags = RFD_FLAG_IGNORE | RFD_FLAG_METADATA,
            .u32 = 0xFB0,
            .has_metadata = true,
            .metadata = SLICE("m"),
            .data = SLICE("d"),
        },
    },
};

enum { N_VECTORS = sizeof(vectors) / sizeof(vectors[0]) };

static bool
slice_equal(struct rfd_slice a, struct rfd_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void
check_frame_equal(const struct rfd_frame *got, const struct rfd_frame *want, const char *name)
{
	if (got->stream_id != want->stream_id || got->type != want->type ||
	    got->flags != want->flags || got->u32 != want->u32 ||
	    got->version_major != want->version_major ||
	    got->version_minor != want->version_minor || got->keepalive_ms != want->keepalive_ms ||
	    got->max_lifetime_ms != want->max_lifetime_ms ||
	    got->last_position != want->last_position || got->has_metadata != want->has_metadata)
		rfd_test_fail(__FILE__, __LINE__, "%s: fixed fields differ (type %u flags 0x%x)",
		              name, got->type, got->flags);
	if (!slice_equal(got->resume_token, want->resume_token) ||
	    !slice_equal(got->metadata_mime, want->metadata_mime) ||
	    !slice_equal(got->data_mime, want->data_mime) ||
	    !slice_equal(got->metadata, want->metadata) || !slice_equal(got->data, want->data))
		rfd_test_fail(__FILE__, __LINE__, "%s: slices differ", name);
}

/* The length of the opaque bytes at the end of a frame, which a truncation can shorten. */
static size_t
opaque_tail_len(const struct rfd_frame *f)
{
	return f->type == RFD_FRAME_METADATA_PUSH ? f->metadata.len : f->data.len;
}

static void
test_type_names(void)
{
	CHECK(strcmp(rfd_frame_type_name(RFD_FRAME_SETUP), "SETUP") == 0);
	CHECK(strcmp(rfd_frame_type_name(RFD_FRAME_REQUEST_RESPONSE), "REQUEST_RESPONSE") == 0);
	CHECK(strcmp(rfd_frame_type_name(RFD_FRAME_METADATA_PUSH), "METADATA_PUSH") == 0);
	CHECK(strcmp(rfd_frame_type_name(RFD_FRAME_LEASE), "LEASE") == 0);
	CHECK(strcmp(rfd_frame_type_name(RFD_FRAME_EXT), "EXT") == 0);
	CHECK(strcmp(rfd_frame_type_name(0), "UNKNOWN") == 0);
	CHECK(strcmp(rfd_frame_type_name(0x10), "UNKNOWN") == 0);
	CHECK(strcmp(rfd_frame_type_name(0xFF), "UNKNOWN") == 0);
}

static void
test_vectors_encode(void)
{
	for (size_t i = 0; i < N_VECTORS; i++) {
		const struct vector *v = &vectors[i];
		uint8_t want[HEX_MAX];
		size_t want_len = rfd_test_hex(v->hex, want, sizeof(want));
		struct rfd_buf out;

		rfd_buf_init(&out);
		CHECK_EQ(rfd_frame_encode(&v->frame, &out), 0);
		if (out.len != want_len || memcmp(out.data, want, want_len) != 0)
			rfd_test_fail(__FILE__, __LINE__, "%s: encoded %zu bytes, want %zu",
			              v->name, out.len, want_len);
		CHECK_EQ(rfd_get_u24(want) + 3, want_len);
		rfd_buf_free(&out);
	}
}

static void
test_vectors_decode(void)
{
	for (size_t i = 0; i < N_VECTORS; i++) {
		const struct vector *v = &vectors[i];
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(v->hex, bytes, sizeof(bytes));
		const char *why = NULL;
		struct rfd_frame f;
		size_t frame_len = 0;

		CHECK_EQ(rfd_frame_split(bytes, len, RFD_FRAGMENT_DEFAULT, &frame_len, &why), 1);
		CHECK_EQ(frame_len, len);
		if (rfd_frame_decode(bytes + 3, len - 3, &f, &why) != 0) {
			rfd_test_fail(__FILE__, __LINE__, "%s: rejected: %s", v->name, why);
			continue;
		}
		check_frame_equal(&f, &v->frame, v->name);
	}
}

static void
test_worked_example_all_39_bytes(void)
{
	static const uint8_t metadata[18] = {0x15, 0x04, 0x18, 0x04, 0x64, 0x65, 0x6d, 0x6f, 0x15,
	                                     0x00, 0x0c, 0x2c, 0x16, 0x00, 0x15, 0x02, 0x00, 0x00};
	static const uint8_t data[9] = {0x1c, 0x18, 0x04, 0x6b, 0x74, 0x68, 0x78, 0x00, 0x00};
	struct rfd_frame f = {
	    .stream_id = 1,
	    .type = RFD_FRAME_REQUEST_RESPONSE,
	    .has_metadata = true,
	    .metadata = {metadata, sizeof(metadata)},
	    .data = {data, sizeof(data)},
	};
	uint8_t want[39];
	struct rfd_buf out;

	CHECK_EQ(rfd_test_hex("00 00 24 00 00 00 01 11 00 00 00 12"
	                      " 15 04 18 04 64 65 6d 6f 15 00 0c 2c 16 00 15 02 00 00"
	                      " 1c 18 04 6b 74 68 78 00 00",
	                      want, sizeof(want)),
	         39);
	rfd_buf_init(&out);
	REQUIRE(rfd_frame_encode(&f, &out) == 0);
	CHECK_EQ(out.len, 39);
	CHECK_MEM(out.data, want, 39);
	rfd_buf_free(&out);
}

/* The METADATA flag on the wire follows has_metadata (and is always set on METADATA_PUSH). */
static void
test_encode_sets_metadata_flag_from_content(void)
{
	struct rfd_frame push = {.type = RFD_FRAME_METADATA_PUSH, .metadata = SLICE("\x01")};
	struct rfd_frame payload = {.stream_id = 1,
	                            .type = RFD_FRAME_PAYLOAD,
	                            .flags = RFD_FLAG_NEXT | RFD_FLAG_METADATA,
	                            .data = SLICE("\x02")};
	uint8_t want[20];
	struct rfd_buf out;

	rfd_buf_init(&out);
	REQUIRE(rfd_frame_encode(&push, &out) == 0);
	REQUIRE(rfd_frame_encode(&payload, &out) == 0);
	CHECK_EQ(rfd_test_hex("00 00 07 00 00 00 00 31 00 01  00 00 07 00 00 00 01 28 20 02", want,
	                      sizeof(want)),
	         20);
	CHECK_EQ(out.len, 20);
	CHECK_MEM(out.data, want, 20);
	rfd_buf_free(&out);
}

/*
 * Every truncation of a valid frame, with its length field rewritten to
 * match, is either rejected or (when only opaque trailing bytes were cut)
 * decodes with exactly those bytes missing.  Each truncated frame sits in a
 * heap block of its own size, so ASan sees any read past its end.
 */
static void
test_truncation_at_every_length(void)
{
	for (size_t i = 0; i < N_VECTORS; i++) {
		const struct vector *v = &vectors[i];
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(v->hex, bytes, sizeof(bytes));
		size_t body_len = len - 3;
		size_t tail_start = body_len - opaque_tail_len(&v->frame);

		for (size_t k = 0; k < body_len; k++) {
			uint8_t *copy = malloc(k ? k : 1);
			const char *why = NULL;
			struct rfd_frame f;
			int r;

			REQUIRE(copy);
			memcpy(copy, bytes + 3, k);
			r = rfd_frame_decode(copy, k, &f, &why);
			if (k < tail_start) {
				if (r != -EBADMSG || !why)
					rfd_test_fail(__FILE__, __LINE__,
					              "%s cut to %zu: r = %d, want -EBADMSG",
					              v->name, k, r);
			} else if (r != 0 || opaque_tail_len(&f) != k - tail_start) {
				rfd_test_fail(__FILE__, __LINE__,
				              "%s cut to %zu in its tail: r = %d", v->name, k, r);
			}
			free(copy);
		}
		for (size_t k = 0; k < len; k++) {
			size_t frame_len = 0;

			if (rfd_frame_split(bytes, k, RFD_FRAGMENT_DEFAULT, &frame_len, NULL) != 0)
				rfd_test_fail(__FILE__, __LINE__, "%s: split of %zu bytes", v->name,
				              k);
		}
	}
}

struct rejection {
	const char *hex; /* without the length field */
	const char *reason_word;
};

static const struct rejection rejections[] = {
    {"00 00 00 01 10", "header"},
    {"", "header"},
    {"00 00 00 00 00 00", "unknown frame type"},
    {"00 00 00 01 40 00", "unknown frame type"},
    {"00 00 00 00 08 00 00 00 00 01 00 00 00 01", "unsupported"},
    {"00 00 00 00 34 00 00 01 00 00", "unsupported"},
    {"00 00 00 00 38 00 00 00 00 00 00 00 00 00", "unsupported"},
    {"00 00 00 01 28 21", "reserved flag bits"},
    {"00 00 00 01 28 30", "reserved flag bits"},
    {"00 00 00 01 25 00", "METADATA flag on a frame type"},
    {"00 00 00 01 2d 00 00 00 02 04", "METADATA flag on a frame type"},
    {"00 00 00 01 21 00 00 00 00 01", "METADATA flag on a frame type"},
    {"00 00 00 00 0d 00 00 00 00 00 00 00 00 00", "METADATA flag on a frame type"},
    {"00 00 00 01 04 00 00 01 00 00 7f ff ff ff 7f ff ff ff 00 00", "non-zero stream id"},
    {"00 00 00 01 0c 00 00 00 00 00 00 00 00 00", "non-zero stream id"},
    {"00 00 00 03 31 00", "non-zero stream id"},
    {"00 00 00 00 10 00", "stream id 0"},
    {"00 00 00 00 14 00", "stream id 0"},
    {"00 00 00 00 18 00 00 00 00 01", "stream id 0"},
    {"00 00 00 00 1c 00 00 00 00 01", "stream id 0"},
    {"00 00 00 00 20 00 00 00 00 01", "stream id 0"},
    {"00 00 00 00 24 00", "stream id 0"},
    {"00 00 00 00 28 20", "stream id 0"},
    {"00 00 00 01 20 00 00 00 00", "fixed part"},
    {"00 00 00 01 18 00 00 00", "fixed part"},
    {"00 00 00 01 2c 00 00 02", "fixed part"},
    {"00 00 00 01 fc 00 00 00", "fixed part"},
    {"00 00 00 00 0c 80 00 00 00 00 00 00 00", "fixed part"},
    {"00 00 00 00 04 00 00 01 00 00 7f ff ff ff 7f ff ff ff 00", "fixed part"},
    {"00 00 00 01 11 00 00 00", "too short for its metadata length"},
    {"00 00 00 01 29 20", "too short for its metadata length"},
    {"00 00 00 01 11 00 00 00 05 61 62", "metadata length past the end"},
    {"00 00 00 01 19 00 00 00 00 01 00 00 01", "metadata length past the end"},
    {"00 00 00 00 05 00 00 01 00 00 7f ff ff ff 7f ff ff ff 00 00 ff ff ff",
     "metadata length past the end"},
    {"00 00 00 01 28 00", "neither NEXT nor COMPLETE"},
    {"00 00 00 01 29 00 00 00 00", "neither NEXT nor COMPLETE"},
    {"00 00 00 00 04 00 00 01 00 00 7f ff ff ff 7f ff ff ff 05 61 62", "metadata MIME type"},
    {"00 00 00 00 04 00 00 01 00 00 7f ff ff ff 7f ff ff ff 01 61 03 62", "data MIME type"},
    {"00 00 00 00 04 00 00 01 00 00 7f ff ff ff 7f ff ff ff 01 61", "data MIME type"},
    {"00 00 00 00 04 80 00 01 00 00 7f ff ff ff 7f ff ff ff 00 05 61 62", "resume token"},
    {"00 00 00 00 04 80 00 01 00 00 7f ff ff ff 7f ff ff ff 00 03 61 62", "resume token"},
    {"00 00 00 00 04 80 00 01 00 00 7f ff ff ff 7f ff ff ff 01 00 00 00", "resume token"},
    {"00 00 00 01 20 00 00 00 00 01 00", "trailing bytes after a REQUEST_N"},
    {"00 00 00 01 24 00 00", "trailing bytes after a CANCEL"},
};

static void
test_every_rejection_reason(void)
{
	for (size_t i = 0; i < sizeof(rejections) / sizeof(rejections[0]); i++) {
		const struct rejection *rej = &rejections[i];
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(rej->hex, bytes, sizeof(bytes));
		uint8_t *copy = malloc(len ? len : 1);
		const char *why = NULL;
		struct rfd_frame f;
		int r;

		REQUIRE(copy);
		memcpy(copy, bytes, len);
		r = rfd_frame_decode(copy, len, &f, &why);
		if (r != -EBADMSG || !why || !strstr(why, rej->reason_word))
			rfd_test_fail(__FILE__, __LINE__, "\"%s\": r = %d, why \"%s\", want \"%s\"",
			              rej->hex, r, why ? why : "(none)", rej->reason_word);
		free(copy);
	}
}

/*
 * Frames a receiver processes although RSocket reserves something in them:
 * undefined flag bits read as clear (FRAME-21), stream ids of 2^31 and
 * above (FRAME-24), unused fixed-field values (FRAME-23).
 */
struct acceptance {
	const char *hex; /* without the length field */
	uint8_t type;
	uint16_t flags; /* as decoded */
	uint32_t stream_id;
	uint32_t u32;
};

static const struct acceptance acceptances[] = {
    {"00 00 00 01 10 20", RFD_FRAME_REQUEST_RESPONSE, 0, 1, 0},
    {"00 00 00 01 12 00", RFD_FRAME_REQUEST_RESPONSE, 0, 1, 0},
    {"00 00 00 01 10 c0", RFD_FRAME_REQUEST_RESPONSE, RFD_FLAG_FOLLOWS, 1, 0},
    {"00 00 00 01 20 c0 00 00 00 01", RFD_FRAME_REQUEST_N, 0, 1, 1},
    {"00 00 00 01 26 e0", RFD_FRAME_CANCEL, 0, 1, 0},
    {"00 00 00 01 2e 80 00 00 02 04", RFD_FRAME_ERROR, 0, 1, 0x204},
    {"00 00 00 00 0c 40 00 00 00 00 00 00 00 00", RFD_FRAME_KEEPALIVE, 0, 0, 0},
    {"00 00 00 00 0e e0 00 00 00 00 00 00 00 00", RFD_FRAME_KEEPALIVE, RFD_FLAG_FOLLOWS, 0, 0},
    {"00 00 00 00 33 00", RFD_FRAME_METADATA_PUSH, RFD_FLAG_METADATA, 0, 0},
    {"00 00 00 00 32 e0 61", RFD_FRAME_METADATA_PUSH, 0, 0, 0},
    {"00 00 00 01 fc e0 00 00 00 05", RFD_FRAME_EXT, 0, 1, 5},
    {"00 00 00 01 18 40 00 00 00 01", RFD_FRAME_REQUEST_STREAM, 0, 1, 1},
    {"80 00 00 01 10 00", RFD_FRAME_REQUEST_RESPONSE, 0, 0x80000001u, 0},
    {"ff ff ff ff 24 00", RFD_FRAME_CANCEL, 0, 0xffffffffu, 0},
    {"80 00 00 00 28 60", RFD_FRAME_PAYLOAD, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE, 0x80000000u, 0},
    {"00 00 00 01 20 00 00 00 00 00", RFD_FRAME_REQUEST_N, 0, 1, 0},
    {"00 00 00 01 20 00 80 00 00 01", RFD_FRAME_REQUEST_N, 0, 1, 0x80000001u},
    {"00 00 00 01 18 00 00 00 00 00", RFD_FRAME_REQUEST_STREAM, 0, 1, 0},
    {"00 00 00 01 1c 00 ff ff ff ff", RFD_FRAME_REQUEST_CHANNEL, 0, 1, 0xffffffffu},
    {"00 00 00 01 2c 00 00 00 00 00", RFD_FRAME_ERROR, 0, 1, 0},
    {"00 00 00 01 fc 00 00 00 00 00", RFD_FRAME_EXT, 0, 1, 0},
    {"00 00 00 01 fc 00 80 00 00 01", RFD_FRAME_EXT, 0, 1, 0x80000001u},
    {"00 00 00 00 0c 00 80 00 00 00 00 00 00 00", RFD_FRAME_KEEPALIVE, 0, 0, 0},
};

static void
test_undefined_flags_and_values_accepted(void)
{
	for (size_t i = 0; i < sizeof(acceptances) / sizeof(acceptances[0]); i++) {
		const struct acceptance *a = &acceptances[i];
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(a->hex, bytes, sizeof(bytes));
		const char *why = NULL;
		struct rfd_frame f;
		int r = rfd_frame_decode(bytes, len, &f, &why);

		if (r != 0 || f.type != a->type || f.flags != a->flags ||
		    f.stream_id != a->stream_id || f.u32 != a->u32)
			rfd_test_fail(__FILE__, __LINE__,
			              "\"%s\": r = %d (%s), type %u flags %#x stream %u u32 %u",
			              a->hex, r, why ? why : "", f.type, f.flags, f.stream_id,
			              f.u32);
	}
}

static void
test_metadata_push_without_metadata_flag(void)
{
	uint8_t bytes[HEX_MAX];
	size_t len = rfd_test_hex("00 00 00 00 30 00 f0 9f", bytes, sizeof(bytes));
	struct rfd_frame f;

	CHECK_EQ(rfd_frame_decode(bytes, len, &f, NULL), 0);
	CHECK_EQ(f.type, RFD_FRAME_METADATA_PUSH);
	CHECK(!f.has_metadata);
	CHECK_EQ(f.metadata.len, 0);
}

static void
test_setup_reserved_values_accepted(void)
{
	const char *setups[] = {
	    "00 00 00 00 04 00 00 01 00 00 00 00 00 00 7f ff ff ff 00 00",
	    "00 00 00 00 04 00 00 01 00 00 80 00 00 01 7f ff ff ff 00 00",
	    "00 00 00 00 04 00 00 01 00 00 7f ff ff ff 00 00 00 00 00 00",
	    "00 00 00 00 04 00 00 01 00 00 7f ff ff ff ff ff ff ff 00 00",
	};

	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(setups[i], bytes, sizeof(bytes));
		struct rfd_frame f;

		CHECK_EQ(rfd_frame_decode(bytes, len, &f, NULL), 0);
		CHECK_EQ(f.type, RFD_FRAME_SETUP);
	}
}

/* The encoder keeps refusing what a conforming sender never writes (FRAME-22, FRAME-23). */
static void
test_encoder_keeps_sender_rules(void)
{
	struct rfd_frame bad[] = {
	    {.type = RFD_FRAME_REQUEST_RESPONSE, .stream_id = 1, .flags = RFD_FLAG_NEXT},
	    {.type = RFD_FRAME_CANCEL, .stream_id = 1, .flags = RFD_FLAG_FOLLOWS},
	    {.type = RFD_FRAME_REQUEST_N, .stream_id = 1, .u32 = 0},
	    {.type = RFD_FRAME_ERROR, .stream_id = 1, .u32 = 0},
	    {.type = RFD_FRAME_EXT, .stream_id = 1, .u32 = 0},
	};
	struct rfd_buf out;

	rfd_buf_init(&out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rfd_frame_encode(&bad[i], &out) != -EINVAL)
			rfd_test_fail(__FILE__, __LINE__, "frame %zu was encoded", i);
	CHECK_EQ(out.len, 0);

	/* FRAME-14: an answer goes on its request's stream id, whatever its top bit. */
	CHECK_EQ(rfd_frame_encode(&(struct rfd_frame){.type = RFD_FRAME_PAYLOAD,
	                                              .stream_id = 0x80000001u,
	                                              .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE},
	                          &out),
	         0);
	REQUIRE(out.len == 9);
	CHECK(memcmp(out.data, "\x00\x00\x06\x80\x00\x00\x01\x28\x60", 9) == 0);
	rfd_buf_free(&out);
}

static void
test_decode_arguments(void)
{
	uint8_t bytes[6] = {0, 0, 0, 1, 0x24, 0};
	struct rfd_frame f;

	CHECK_EQ(rfd_frame_decode(bytes, sizeof(bytes), NULL, NULL), -EINVAL);
	CHECK_EQ(rfd_frame_decode(NULL, 6, &f, NULL), -EINVAL);
	CHECK_EQ(rfd_frame_decode(bytes, sizeof(bytes), &f, NULL), 0);
	CHECK_EQ(rfd_frame_decode(bytes, 5, &f, NULL), -EBADMSG);
}

/* PAYLOAD with FOLLOWS alone is a non-final fragment, which fbthrift can send. */
static void
test_payload_follows_without_next_or_complete(void)
{
	uint8_t bytes[7] = {0, 0, 0, 1, 0x28, 0x80, 0x61};
	const char *why = NULL;
	struct rfd_frame f;

	CHECK_EQ(rfd_frame_decode(bytes, sizeof(bytes), &f, &why), 0);
	CHECK_EQ(f.flags, RFD_FLAG_FOLLOWS);
	CHECK_EQ(f.data.len, 1);
}

static void
test_split_stream_of_frames(void)
{
	struct rfd_buf stream;
	size_t offset = 0, n_frames = 0;

	rfd_buf_init(&stream);
	for (size_t i = 0; i < N_VECTORS; i++) {
		uint8_t bytes[HEX_MAX];
		size_t len = rfd_test_hex(vectors[i].hex, bytes, sizeof(bytes));

		REQUIRE(rfd_buf_append(&stream, bytes, len) == 0);
	}

	while (offset < stream.len) {
		size_t frame_len = 0;
		struct rfd_frame f;
		int r;

		r = rfd_frame_split(stream.data + offset, stream.len - offset, RFD_FRAGMENT_DEFAULT,
		                    &frame_len, NULL);
		if (r != 1)
			break;
		CHECK_EQ(rfd_frame_decode(stream.data + offset + 3, frame_len - 3, &f, NULL), 0);
		CHECK_EQ(f.type, vectors[n_frames].frame.type);
		offset += frame_len;
		n_frames++;
	}
	CHECK_EQ(n_frames, N_VECTORS);
	CHECK_EQ(offset, stream.len);
	rfd_buf_free(&stream);
}

static void
test_split_results(void)
{
	uint8_t bytes[HEX_MAX];
	size_t len = rfd_test_hex(vectors[0].hex, bytes, sizeof(bytes));
	const char *why = NULL;
	size_t frame_len = 0;

	CHECK_EQ(len, 39);
	CHECK_EQ(rfd_frame_split(bytes, 0, 1000, &frame_len, &why), 0);
	CHECK_EQ(rfd_frame_split(bytes, 2, 1000, &frame_len, &why), 0);
	CHECK_EQ(rfd_frame_split(bytes, 38, 1000, &frame_len, &why), 0);
	CHECK_EQ(rfd_frame_split(bytes, 39, 39, &frame_len, &why), 1);
	CHECK_EQ(frame_len, 39);
	CHECK_EQ(rfd_frame_split(bytes, 100, 1000, &frame_len, &why), 1);
	CHECK_EQ(frame_len, 39);

	/* The maximum counts the length field, as @max_frame of the fragmenter does. */
	why = NULL;
	CHECK_EQ(rfd_frame_split(bytes, 39, 38, &frame_len, &why), -EMSGSIZE);
	CHECK(why && strstr(why, "maximum frame size"));
	why = NULL;
	CHECK_EQ(rfd_frame_split((const uint8_t *)"\xff\xff\xff", 3, RFD_FRAGMENT_DEFAULT,
	                         &frame_len, &why),
	         -EMSGSIZE);
	CHECK(why && strstr(why, "maximum frame size"));
	CHECK_EQ(rfd_frame_split((const uint8_t *)"\xff\xff\xff", 3,
	                         RFD_FRAME_LENGTH_MAX + RFD_FRAME_LENGTH_SIZE, &frame_len, &why),
	         0);

	why = NULL;
	CHECK_EQ(rfd_frame_split((const uint8_t *)"\x00\x00\x05\x00\x00\x00\x01\x24", 8, 1000,
	                         &frame_len, &why),
	         -EBADMSG);
	CHECK(why && strstr(why, "6-byte minimum"));
	why = NULL;
	CHECK_EQ(rfd_frame_split((const uint8_t *)"\x00\x00\x00", 3, 1000, &frame_len, &why),
	         -EBADMSG);
	CHECK(why && strstr(why, "6-byte minimum"));

	CHECK_EQ(rfd_frame_split(NULL, 3, 1000, &frame_len, NULL), -EINVAL);
	CHECK_EQ(rfd_frame_split(bytes, 39, 1000, NULL, NULL), -EINVAL);
}

static void
test_encode_rejects_invalid_frames(void)
{
	struct rfd_frame cancel0 = {.type = RFD_FRAME_CANCEL};
	struct rfd_frame unknown = {.stream_id = 1, .type = 0x10};
	struct rfd_frame lease = {.type = RFD_FRAME_LEASE};
	struct rfd_frame request_n0 = {.stream_id = 1, .type = RFD_FRAME_REQUEST_N};
	struct rfd_frame payload_no_flags = {.stream_id = 1, .type = RFD_FRAME_PAYLOAD};
	struct rfd_frame error_metadata = {
	    .stream_id = 1, .type = RFD_FRAME_ERROR, .flags = RFD_FLAG_METADATA, .u32 = 0x201};
	struct rfd_frame null_data = {
	    .stream_id = 1, .type = RFD_FRAME_PAYLOAD, .flags = RFD_FLAG_NEXT, .data = {NULL, 4}};
	struct rfd_frame ok = {.stream_id = 1, .type = RFD_FRAME_CANCEL};
	struct rfd_buf out;

	rfd_buf_init(&out);
	CHECK_EQ(rfd_frame_encode(&cancel0, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&unknown, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&lease, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&request_n0, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&payload_no_flags, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&error_metadata, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&null_data, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(NULL, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode(&ok, NULL), -EINVAL);
	CHECK_EQ(out.len, 0);
	CHECK_EQ(rfd_frame_encode(&ok, &out), 0);
	CHECK_EQ(out.len, 9);
	rfd_buf_free(&out);
}

static void
test_encode_size_limit(void)
{
	/* A PAYLOAD body is 6 bytes plus the data; the u24 length allows 0xFFFFFF. */
	size_t fits = RFD_FRAME_LENGTH_MAX - 6;
	uint8_t *data = calloc(1, fits + 1);
	struct rfd_frame f = {.stream_id = 1, .type = RFD_FRAME_PAYLOAD, .flags = RFD_FLAG_NEXT};
	struct rfd_buf out;

	REQUIRE(data);
	rfd_buf_init(&out);
	f.data.ptr = data;
	f.data.len = fits + 1;
	CHECK_EQ(rfd_frame_encode(&f, &out), -EMSGSIZE);
	CHECK_EQ(out.len, 0);
	f.data.len = fits;
	CHECK_EQ(rfd_frame_encode(&f, &out), 0);
	CHECK_EQ(out.len, RFD_FRAME_LENGTH_MAX + 3);
	CHECK_EQ(rfd_get_u24(out.data), RFD_FRAME_LENGTH_MAX);
	rfd_buf_free(&out);
	free(data);
}

static void
test_encode_allocation_failure_leaves_output(void)
{
	static const uint8_t data[300];
	struct rfd_frame f = {.stream_id = 1,
	                      .type = RFD_FRAME_PAYLOAD,
	                      .flags = RFD_FLAG_NEXT,
	                      .data = {data, sizeof(data)}};
	struct rfd_buf out;
	long n;

	rfd_buf_init(&out);
	REQUIRE(rfd_buf_append(&out, "keep", 4) == 0);
	for (n = 0; n < 10; n++) {
		int r;

		out.len = 4;
		rfd_alloc_fail_at(n);
		r = rfd_frame_encode(&f, &out);
		rfd_alloc_fail_at(-1);
		if (r == 0)
			break;
		CHECK_EQ(r, -ENOMEM);
		CHECK_EQ(out.len, 4);
		CHECK_MEM(out.data, "keep", 4);
	}
	CHECK(n > 0 && n < 10);
	CHECK_EQ(out.len, 4 + 3 + 6 + 300);
	rfd_buf_free(&out);
}

/*
 * Feed the concatenated frames in @bytes through split, decode and
 * reassembly; every frame but the last must leave the reassembly waiting.
 * Returns the number of frames, or -1 after recording a failure.
 */
static int
reassemble(const uint8_t *bytes, size_t len, size_t max_frame, struct rfd_reassembly *r,
           struct rfd_frame *out)
{
	size_t offset = 0;
	int n_frames = 0;

	while (offset < len) {
		const char *why = NULL;
		size_t frame_len = 0;
		struct rfd_frame f;
		int ret;

		if (rfd_frame_split(bytes + offset, len - offset, max_frame, &frame_len, &why) !=
		        1 ||
		    rfd_frame_decode(bytes + offset + 3, frame_len - 3, &f, &why) != 0) {
			rfd_test_fail(__FILE__, __LINE__, "fragment %d: %s", n_frames,
			              why ? why : "incomplete");
			return -1;
		}
		offset += frame_len;
		n_frames++;
		ret = rfd_reassembly_add(r, &f, out, &why);
		if (ret != (offset == len ? 1 : 0)) {
			rfd_test_fail(__FILE__, __LINE__, "fragment %d: add = %d (%s)", n_frames,
			              ret, why ? why : "");
			return -1;
		}
	}
	return n_frames;
}

struct fragment_case {
	const char *name;
	struct rfd_frame frame;
	size_t max_frame;
	const char *hex; /* the fragments, worked out by hand */
	uint16_t reassembled_flags;
};

static const struct fragment_case fragment_cases[] = {
    {
        "empty_payload_single_frame",
        {.stream_id = 5, .type = RFD_FRAME_PAYLOAD, .flags = RFD_FLAG_COMPLETE},
        32,
        "00 00 06 00 00 00 05 28 40",
        RFD_FLAG_COMPLETE,
    },
    {
        "one_byte_single_frame",
        {.stream_id = 5, .type = RFD_FRAME_PAYLOAD, .flags = RFD_FLAG_NEXT, .data = SLICE("*")},
        32,
        "00 00 07 00 00 00 05 28 20 2a",
        RFD_FLAG_NEXT,
    },
    {
        /* 3 + 6 + 23 = 32: exactly at the boundary, one frame. */
        "exactly_at_boundary",
        {.stream_id = 5,
         .type = RFD_FRAME_PAYLOAD,
         .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
         .data = SLICE("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                       "\x10\x11\x12\x13\x14\x15\x16")},
        32,
        "00 00 1d 00 00 00 05 28 60"
        " 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16",
        RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
    },
    {
        /* One byte more: 23 bytes with NEXT|FOLLOWS, then 1 with NEXT|COMPLETE. */
        "boundary_plus_one",
        {.stream_id = 5,
         .type = RFD_FRAME_PAYLOAD,
         .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
         .data = SLICE("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                       "\x10\x11\x12\x13\x14\x15\x16\x17")},
        32,
        "00 00 1d 00 00 00 05 28 a0"
        " 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16"
        "00 00 07 00 00 00 05 28 60 17",
        RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
    },
    {
        /* 10 metadata bytes per fragment; continuations carry NEXT as fbthrift's do. */
        "metadata_alone_spanning_three_fragments",
        {.stream_id = 7,
         .type = RFD_FRAME_REQUEST_RESPONSE,
         .has_metadata = true,
         .metadata = SLICE("\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
                           "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8")},
        22,
        "00 00 13 00 00 00 07 11 80 00 00 0a a0 a1 a2 a3 a4 a5 a6 a7 a8 a9"
        "00 00 13 00 00 00 07 29 a0 00 00 0a aa ab ac ad ae af b0 b1 b2 b3"
        "00 00 0e 00 00 00 07 29 20 00 00 05 b4 b5 b6 b7 b8",
        RFD_FLAG_METADATA,
    },
    {
        /* Metadata ends inside fragment 2, which then starts the data. */
        "metadata_and_data_both_spanning",
        {.stream_id = 5,
         .type = RFD_FRAME_PAYLOAD,
         .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
         .has_metadata = true,
         .metadata = SLICE("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"),
         .data = SLICE("\x40\x41\x42\x43\x44\x45\x46\x47\x48\x49\x4a\x4b\x4c\x4d\x4e\x4f"
                       "\x50\x51\x52\x53")},
        22,
        "00 00 13 00 00 00 05 29 a0 00 00 0a 00 01 02 03 04 05 06 07 08 09"
        "00 00 13 00 00 00 05 29 a0 00 00 05 0a 0b 0c 0d 0e 40 41 42 43 44"
        "00 00 13 00 00 00 05 28 a0 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51"
        "00 00 08 00 00 00 05 28 60 52 53",
        RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
    },
    {
        /* The first fragment keeps initial n; NEXT of the continuation is not a REQUEST_STREAM
           flag. */
        "request_stream_keeps_initial_n",
        {.stream_id = 9,
         .type = RFD_FRAME_REQUEST_STREAM,
         .u32 = 3,
         .data = SLICE("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09")},
        20,
        "00 00 11 00 00 00 09 18 80 00 00 00 03 00 01 02 03 04 05 06"
        "00 00 09 00 00 00 09 28 20 07 08 09",
        0,
    },
    {
        /* COMPLETE moves from the first fragment to the last. */
        "request_channel_complete_on_last",
        {.stream_id = 11,
         .type = RFD_FRAME_REQUEST_CHANNEL,
         .flags = RFD_FLAG_COMPLETE,
         .u32 = 1,
         .data = SLICE("\x61\x62\x63\x64\x65\x66\x67\x68")},
        20,
        "00 00 11 00 00 00 0b 1c 80 00 00 00 01 61 62 63 64 65 66 67"
        "00 00 07 00 00 00 0b 28 60 68",
        RFD_FLAG_COMPLETE,
    },
};

static void
test_fragmentation_cases(void)
{
	for (size_t i = 0; i < sizeof(fragment_cases) / sizeof(fragment_cases[0]); i++) {
		const struct fragment_case *c = &fragment_cases[i];
		struct rfd_frame want = c->frame, got;
		uint8_t expect[HEX_MAX];
		size_t expect_len = rfd_test_hex(c->hex, expect, sizeof(expect));
		struct rfd_reassembly r;
		struct rfd_buf out;

		rfd_buf_init(&out);
		CHECK_EQ(rfd_frame_encode_fragmented(&c->frame, c->max_frame, &out), 0);
		if (out.len != expect_len || memcmp(out.data, expect, expect_len) != 0)
			rfd_test_fail(__FILE__, __LINE__, "%s: %zu bytes of fragments, want %zu",
			              c->name, out.len, expect_len);

		rfd_reassembly_init(&r, 1000);
		if (reassemble(out.data, out.len, c->max_frame, &r, &got) > 0) {
			want.flags = c->reassembled_flags;
			check_frame_equal(&got, &want, c->name);
			CHECK(!r.active);
		}
		rfd_reassembly_free(&r);
		rfd_buf_free(&out);
	}
}

static void
test_fragmentation_smallest_max_frame(void)
{
	const struct rfd_frame *f = &fragment_cases[5].frame;
	struct rfd_reassembly r;
	struct rfd_frame got;
	struct rfd_buf out;

	rfd_buf_init(&out);
	/* 3 + 6 + 3 + 1: one byte per fragment. */
	CHECK_EQ(rfd_frame_encode_fragmented(f, 12, &out), -EINVAL);
	CHECK_EQ(out.len, 0);
	REQUIRE(rfd_frame_encode_fragmented(f, 13, &out) == 0);
	rfd_reassembly_init(&r, 35);
	/* 15 fragments of one metadata byte, then 5 of four data bytes. */
	CHECK_EQ(reassemble(out.data, out.len, 13, &r, &got), 20);
	CHECK(slice_equal(got.metadata, f->metadata));
	CHECK(slice_equal(got.data, f->data));
	CHECK_EQ(got.flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	rfd_reassembly_free(&r);
	rfd_buf_free(&out);
}

static void
test_fragmentation_rejects_bad_input(void)
{
	struct rfd_frame cancel = {.stream_id = 1, .type = RFD_FRAME_CANCEL};
	struct rfd_frame follows = fragment_cases[3].frame;
	struct rfd_frame stream0 = fragment_cases[3].frame;
	struct rfd_buf out;

	follows.flags |= RFD_FLAG_FOLLOWS;
	stream0.stream_id = 0;
	rfd_buf_init(&out);
	CHECK_EQ(rfd_frame_encode_fragmented(&cancel, 100, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode_fragmented(&follows, 20, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode_fragmented(&stream0, 20, &out), -EINVAL);
	CHECK_EQ(rfd_frame_encode_fragmented(&fragment_cases[3].frame, 20, NULL), -EINVAL);
	CHECK_EQ(out.len, 0);
	rfd_buf_free(&out);
}

/* fbthrift's threshold, and payloads beyond one u24 frame. */
static void
test_fragmentation_default_max(void)
{
	size_t data_len = 2 * (size_t)RFD_FRAME_LENGTH_MAX + 10;
	uint8_t *data = malloc(data_len);
	struct rfd_frame f = {
	    .stream_id = 3,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	    .has_metadata = true,
	    .metadata = SLICE("meta"),
	};
	struct rfd_reassembly r;
	struct rfd_frame got;
	struct rfd_buf out;

	REQUIRE(data);
	for (size_t i = 0; i < data_len; i++)
		data[i] = (uint8_t)(i % 251);
	f.data.ptr = data;
	f.data.len = data_len;
	rfd_buf_init(&out);
	REQUIRE(rfd_frame_encode_fragmented(&f, RFD_FRAGMENT_DEFAULT, &out) == 0);
	/* First fragment: exactly the maximum, FOLLOWS|METADATA|NEXT. */
	CHECK_EQ(rfd_get_u24(out.data) + 3, RFD_FRAGMENT_DEFAULT);
	CHECK_EQ(rfd_get_u16(out.data + 7), 0x29a0);
	rfd_reassembly_init(&r, data_len + 4);
	CHECK_EQ(reassemble(out.data, out.len, RFD_FRAGMENT_DEFAULT, &r, &got), 3);
	CHECK(slice_equal(got.data, f.data));
	CHECK(slice_equal(got.metadata, f.metadata));
	CHECK_EQ(got.flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	rfd_reassembly_free(&r);

	/* A maximum beyond what the u24 length can say is capped at it. */
	out.len = 0;
	REQUIRE(rfd_frame_encode_fragmented(&f, SIZE_MAX, &out) == 0);
	CHECK_EQ(rfd_get_u24(out.data), RFD_FRAME_LENGTH_MAX);
	rfd_reassembly_init(&r, data_len + 4);
	CHECK_EQ(reassemble(out.data, out.len, RFD_FRAME_LENGTH_MAX + 3, &r, &got), 3);
	CHECK(slice_equal(got.data, f.data));
	rfd_reassembly_free(&r);

	/* Lengths no buffer can have are refused before anything is read. */
	f.data.len = SIZE_MAX / 2;
	f.metadata.len = SIZE_MAX / 2;
	CHECK_EQ(rfd_frame_encode_fragmented(&f, RFD_FRAGMENT_DEFAULT, &out), -EMSGSIZE);
	rfd_buf_free(&out);
	free(data);
}

/* Decode each fragment of fragment_cases[@index] into @frames; returns the count. */
static size_t
decode_fragments(size_t index, uint8_t *bytes, struct rfd_frame *frames, size_t max_frames)
{
	size_t len = rfd_test_hex(fragment_cases[index].hex, bytes, HEX_MAX);
	size_t offset = 0, n = 0;

	while (offset < len && n < max_frames) {
		size_t frame_len = 0;

		if (rfd_frame_split(bytes + offset, len - offset, 1000, &frame_len, NULL) != 1 ||
		    rfd_frame_decode(bytes + offset + 3, frame_len - 3, &frames[n], NULL) != 0)
			break;
		offset += frame_len;
		n++;
	}
	return n;
}

static void
test_reassembly_rejects_wrong_continuation(void)
{
	uint8_t bytes[HEX_MAX];
	struct rfd_frame frames[4], got;
	struct rfd_frame cancel = {.stream_id = 7, .type = RFD_FRAME_CANCEL};
	struct rfd_frame request = {
	    .stream_id = 7, .type = RFD_FRAME_REQUEST_RESPONSE, .data = SLICE("x")};
	struct rfd_reassembly r;
	const char *why = NULL;

	REQUIRE(decode_fragments(4, bytes, frames, 4) == 3);
	rfd_reassembly_init(&r, 1000);

	CHECK_EQ(rfd_reassembly_add(&r, &frames[0], &got, &why), 0);
	CHECK(r.active);
	CHECK_EQ(rfd_reassembly_add(&r, &request, &got, &why), -EBADMSG);
	CHECK(why && strstr(why, "not a PAYLOAD"));
	CHECK(!r.active);

	why = NULL;
	CHECK_EQ(rfd_reassembly_add(&r, &frames[0], &got, &why), 0);
	CHECK_EQ(rfd_reassembly_add(&r, &cancel, &got, &why), -EBADMSG);
	CHECK(why && strstr(why, "not a PAYLOAD"));

	/* A frame without FOLLOWS outside a reassembly passes through. */
	CHECK_EQ(rfd_reassembly_add(&r, &cancel, &got, &why), 1);
	CHECK_EQ(got.type, RFD_FRAME_CANCEL);
	CHECK_EQ(got.stream_id, 7);

	why = NULL;
	CHECK_EQ(rfd_reassembly_add(&r, &frames[0], &got, &why), 0);
	frames[1].stream_id = 9;
	CHECK_EQ(rfd_reassembly_add(&r, &frames[1], &got, &why), -EINVAL);
	CHECK(why && strstr(why, "another stream"));
	CHECK(r.active);
	rfd_reassembly_free(&r);
}

static void
test_reassembly_size_limit(void)
{
	uint8_t bytes[HEX_MAX];
	struct rfd_frame frames[4], got;
	struct rfd_reassembly r;
	const char *why = NULL;
	int last = 0;

	/* 15 metadata and 20 data bytes: a limit of 34 fails on the last fragment. */
	REQUIRE(decode_fragments(5, bytes, frames, 4) == 4);
	rfd_reassembly_init(&r, 34);
	for (int i = 0; i < 4; i++) {
		last = rfd_reassembly_add(&r, &frames[i], &got, &why);
		if (last != 0)
			break;
	}
	CHECK_EQ(last, -EBADMSG);
	CHECK(why && strstr(why, "size limit"));
	CHECK(!r.active);

	r.max_size = 35;
	for (int i = 0; i < 4; i++)
		last = rfd_reassembly_add(&r, &frames[i], &got, &why);
	CHECK_EQ(last, 1);
	CHECK_EQ(got.metadata.len + got.data.len, 35);

	/* Over the limit already in the first fragment. */
	r.max_size = 9;
	CHECK_EQ(rfd_reassembly_add(&r, &frames[0], &got, &why), -EBADMSG);
	CHECK(!r.active);
	rfd_reassembly_free(&r);
}

static void
test_reassembly_rejects_metadata_after_data(void)
{
	struct rfd_frame first = {.stream_id = 3,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT | RFD_FLAG_FOLLOWS,
	                          .data = SLICE("a")};
	struct rfd_frame second = {.stream_id = 3,
	                           .type = RFD_FRAME_PAYLOAD,
	                           .flags = RFD_FLAG_NEXT | RFD_FLAG_METADATA,
	                           .has_metadata = true,
	                           .metadata = SLICE("b")};
	struct rfd_reassembly r;
	const char *why = NULL;
	struct rfd_frame got;

	rfd_reassembly_init(&r, 100);
	CHECK_EQ(rfd_reassembly_add(&r, &first, &got, &why), 0);
	CHECK_EQ(rfd_reassembly_add(&r, &second, &got, &why), -EBADMSG);
	CHECK(why && strstr(why, "metadata after data"));
	rfd_reassembly_free(&r);
}

/* fbthrift's first fragment of a large response carries COMPLETE and FOLLOWS: FOLLOWS wins. */
static void
test_reassembly_follows_with_complete(void)
{
	struct rfd_frame first = {.stream_id = 3,
	                          .type = RFD_FRAME_PAYLOAD,
	                          .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE | RFD_FLAG_FOLLOWS,
	                          .data = SLICE("ab")};
	struct rfd_frame last = {.stream_id = 3,
	                         .type = RFD_FRAME_PAYLOAD,
	                         .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	                         .data = SLICE("c")};
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE, .flags = RFD_FLAG_FOLLOWS};
	struct rfd_reassembly r;
	struct rfd_frame got;

	rfd_reassembly_init(&r, 100);
	CHECK_EQ(rfd_reassembly_add(&r, &first, &got, NULL), 0);
	CHECK_EQ(rfd_reassembly_add(&r, &last, &got, NULL), 1);
	CHECK(slice_equal(got.data, (struct rfd_slice)SLICE("abc")));
	CHECK_EQ(got.flags, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	CHECK_EQ(r.flags, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);

	/* RESPOND on a KEEPALIVE is the same bit as FOLLOWS and starts nothing. */
	CHECK_EQ(rfd_reassembly_add(&r, &keepalive, &got, NULL), 1);
	CHECK(!r.active);
	rfd_reassembly_free(&r);
}

static void
test_reassembly_allocation_failures(void)
{
	uint8_t bytes[HEX_MAX];
	struct rfd_frame frames[4], got;
	long n;

	REQUIRE(decode_fragments(5, bytes, frames, 4) == 4);
	for (n = 0; n < 20; n++) {
		struct rfd_reassembly r;
		int ret = 0, i;

		rfd_reassembly_init(&r, 1000);
		rfd_alloc_fail_at(n);
		for (i = 0; i < 4; i++) {
			ret = rfd_reassembly_add(&r, &frames[i], &got, NULL);
			if (ret != 0)
				break;
		}
		rfd_alloc_fail_at(-1);
		if (ret != 1) {
			CHECK_EQ(ret, -ENOMEM);
			CHECK(!r.active);
		}
		rfd_reassembly_free(&r);
		if (ret == 1)
			break;
	}
	CHECK(n > 0 && n < 20);
}

static const struct rfd_test tests[] = {
    {"type_names", test_type_names},
    {"vectors_encode", test_vectors_encode},
    {"vectors_decode", test_vectors_decode},
    {"worked_example_all_39_bytes", test_worked_example_all_39_bytes},
    {"encode_sets_metadata_flag_from_content", test_encode_sets_metadata_flag_from_content},
    {"truncation_at_every_length", test_truncation_at_every_length},
    {"every_rejection_reason", test_every_rejection_reason},
    {"undefined_flags_and_values_accepted", test_undefined_flags_and_values_accepted},
    {"metadata_push_without_metadata_flag", test_metadata_push_without_metadata_flag},
    {"setup_reserved_values_accepted", test_setup_reserved_values_accepted},
    {"encoder_keeps_sender_rules", test_encoder_keeps_sender_rules},
    {"decode_arguments", test_decode_arguments},
    {"payload_follows_without_next_or_complete", test_payload_follows_without_next_or_complete},
    {"split_stream_of_frames", test_split_stream_of_frames},
    {"split_results", test_split_results},
    {"encode_rejects_invalid_frames", test_encode_rejects_invalid_frames},
    {"encode_size_limit", test_encode_size_limit},
    {"encode_allocation_failure_leaves_output", test_encode_allocation_failure_leaves_output},
    {"fragmentation_cases", test_fragmentation_cases},
    {"fragmentation_smallest_max_frame", test_fragmentation_smallest_max_frame},
    {"fragmentation_rejects_bad_input", test_fragmentation_rejects_bad_input},
    {"fragmentation_default_max", test_fragmentation_default_max},
    {"reassembly_rejects_wrong_continuation", test_reassembly_rejects_wrong_continuation},
    {"reassembly_size_limit", test_reassembly_size_limit},
    {"reassembly_rejects_metadata_after_data", test_reassembly_rejects_metadata_after_data},
    {"reassembly_follows_with_complete", test_reassembly_follows_with_complete},
    {"reassembly_allocation_failures", test_reassembly_allocation_failures},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
