/* SPDX-License-Identifier: MIT */
#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

enum {
	FRAME_TYPE_SHIFT = 10,
	FRAME_FLAGS_MASK = 0x3FF,
	FRAME_TYPE_COUNT = 64,
	/* Stream id and type/flags: the part every frame has after its length. */
	FRAME_HEADER_SIZE = 6,
	FRAME_WITH_U32_SIZE = 10,
	KEEPALIVE_FIXED_SIZE = 14,
	/* Versions, keepalive, max lifetime and the two MIME length bytes. */
	SETUP_FIXED_SIZE = 20,
	METADATA_LENGTH_SIZE = 3,
	RESUME_TOKEN_MAX = 0xFFFF,
	MIME_TYPE_MAX = 0xFF,
};

/* The flags each type defines.  0x80 is RESUME_ENABLE on SETUP, RESPOND on KEEPALIVE. */
enum {
	SETUP_FLAGS = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE,
	KEEPALIVE_FLAGS = RFD_FLAG_FOLLOWS,
	REQUEST_FLAGS = RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS,
	CHANNEL_FLAGS = REQUEST_FLAGS | RFD_FLAG_COMPLETE,
	PAYLOAD_FLAGS = CHANNEL_FLAGS | RFD_FLAG_NEXT,
	EXT_FLAGS = RFD_FLAG_IGNORE | RFD_FLAG_METADATA,
};

/* RSocket's 31-bit and 63-bit fields keep their top bit at zero. */
#define TOP_BIT_32 UINT32_C(0x80000000)
#define TOP_BIT_64 UINT64_C(0x8000000000000000)

enum stream_rule {
	STREAM_ANY,
	STREAM_ZERO,
	STREAM_NONZERO,
};

struct frame_rule {
	const char *name;
	/* Bytes after the length field that every frame of the type has. */
	uint8_t fixed_size;
	uint16_t allowed_flags;
	enum stream_rule stream;
	bool carries_metadata;
	/* Known to RSocket but never sent by fbthrift, whose reader rejects it. */
	bool unsupported;
};

/*
 * ERROR and EXT take any stream id: 0 is a connection error, and fbthrift
 * itself sends stream-level codes such as INVALID on stream 0 when it closes
 * a connection, so the code says nothing reliable about the stream id.
 */
static const struct frame_rule frame_rules[FRAME_TYPE_COUNT] = {
    [RFD_FRAME_SETUP] = {.name = "SETUP",
                         .fixed_size = SETUP_FIXED_SIZE,
                         .allowed_flags = SETUP_FLAGS,
                         .stream = STREAM_ZERO,
                         .carries_metadata = true},
    [RFD_FRAME_LEASE] = {.name = "LEASE", .unsupported = true},
    [RFD_FRAME_KEEPALIVE] = {.name = "KEEPALIVE",
                             .fixed_size = KEEPALIVE_FIXED_SIZE,
                             .allowed_flags = KEEPALIVE_FLAGS,
                             .stream = STREAM_ZERO},
    [RFD_FRAME_REQUEST_RESPONSE] = {.name = "REQUEST_RESPONSE",
                                    .fixed_size = FRAME_HEADER_SIZE,
                                    .allowed_flags = REQUEST_FLAGS,
                                    .stream = STREAM_NONZERO,
                                    .carries_metadata = true},
    [RFD_FRAME_REQUEST_FNF] = {.name = "REQUEST_FNF",
                               .fixed_size = FRAME_HEADER_SIZE,
                               .allowed_flags = REQUEST_FLAGS,
                               .stream = STREAM_NONZERO,
                               .carries_metadata = true},
    [RFD_FRAME_REQUEST_STREAM] = {.name = "REQUEST_STREAM",
                                  .fixed_size = FRAME_WITH_U32_SIZE,
                                  .allowed_flags = REQUEST_FLAGS,
                                  .stream = STREAM_NONZERO,
                                  .carries_metadata = true},
    [RFD_FRAME_REQUEST_CHANNEL] = {.name = "REQUEST_CHANNEL",
                                   .fixed_size = FRAME_WITH_U32_SIZE,
                                   .allowed_flags = CHANNEL_FLAGS,
                                   .stream = STREAM_NONZERO,
                                   .carries_metadata = true},
    [RFD_FRAME_REQUEST_N] = {.name = "REQUEST_N",
                             .fixed_size = FRAME_WITH_U32_SIZE,
                             .stream = STREAM_NONZERO},
    [RFD_FRAME_CANCEL] = {.name = "CANCEL",
                          .fixed_size = FRAME_HEADER_SIZE,
                          .stream = STREAM_NONZERO},
    [RFD_FRAME_PAYLOAD] = {.name = "PAYLOAD",
                           .fixed_size = FRAME_HEADER_SIZE,
                           .allowed_flags = PAYLOAD_FLAGS,
                           .stream = STREAM_NONZERO,
                           .carries_metadata = true},
    [RFD_FRAME_ERROR] = {.name = "ERROR", .fixed_size = FRAME_WITH_U32_SIZE, .stream = STREAM_ANY},
    [RFD_FRAME_METADATA_PUSH] = {.name = "METADATA_PUSH",
                                 .fixed_size = FRAME_HEADER_SIZE,
                                 .allowed_flags = RFD_FLAG_METADATA,
                                 .stream = STREAM_ZERO,
                                 .carries_metadata = true},
    [RFD_FRAME_RESUME] = {.name = "RESUME", .unsupported = true},
    [RFD_FRAME_RESUME_OK] = {.name = "RESUME_OK", .unsupported = true},
    [RFD_FRAME_EXT] = {.name = "EXT",
                       .fixed_size = FRAME_WITH_U32_SIZE,
                       .allowed_flags = EXT_FLAGS,
                       .stream = STREAM_ANY,
                       .carries_metadata = true},
};

/* A bounds-checked reader over the bytes of one frame. */
struct cursor {
	const uint8_t *p;
	size_t left;
};

static void
set_why(const char **why, const char *reason)
{
	if (why)
		*why = reason;
}

static const struct frame_rule *
rule_for(uint8_t type)
{
	if (type >= FRAME_TYPE_COUNT || !frame_rules[type].name)
		return NULL;
	return &frame_rules[type];
}

static bool
is_payload_type(uint8_t type)
{
	switch (type) {
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_PAYLOAD:
		return true;
	default:
		return false;
	}
}

/* The types whose metadata, when present, is preceded by a u24 length. */
static bool
has_metadata_length(uint8_t type)
{
	return is_payload_type(type) || type == RFD_FRAME_SETUP || type == RFD_FRAME_EXT;
}

/* 0x80 is FOLLOWS only on the payload-carrying types (RESPOND or RESUME_ENABLE elsewhere). */
static bool
frame_follows(const struct rfd_frame *f)
{
	assert(f);
	return is_payload_type(f->type) && (f->flags & RFD_FLAG_FOLLOWS);
}

static bool
cursor_take(struct cursor *c, size_t n, const uint8_t **out)
{
	assert(c);
	assert(out);
	if (c->left < n)
		return false;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return true;
}

static struct rfd_slice
cursor_rest(struct cursor *c)
{
	struct rfd_slice rest = {c->p, c->left};

	assert(c);
	c->p += c->left;
	c->left = 0;
	return rest;
}

/* A u8 or u16 length followed by that many bytes. */
static bool
cursor_take_counted(struct cursor *c, size_t length_size, struct rfd_slice *out)
{
	const uint8_t *p;
	size_t n;

	assert(c);
	assert(out);
	if (!cursor_take(c, length_size, &p))
		return false;
	n = length_size == 1 ? p[0] : rfd_get_u16(p);
	if (!cursor_take(c, n, &p))
		return false;
	out->ptr = p;
	out->len = n;
	return true;
}

/*
 * The checks on the first six bytes that fail a connection (FRAME-3 to
 * FRAME-6).  Flags a type does not define, other than these, are cleared by
 * the decoder (FRAME-21); stream ids are whole u32 values (FRAME-24).
 */
static int
check_header(uint8_t type, uint16_t flags, uint32_t stream_id, const struct frame_rule **rule_out,
             const char **why)
{
	const struct frame_rule *rule = rule_for(type);

	assert(rule_out);
	if (!rule) {
		set_why(why, "unknown frame type");
		return -EBADMSG;
	}
	if (rule->unsupported) {
		set_why(why,
		        "unsupported frame type (LEASE and resumption are not used by fbthrift)");
		return -EBADMSG;
	}
	if (flags & RFD_FLAG_RESERVED_MASK) {
		set_why(why, "reserved flag bits set");
		return -EBADMSG;
	}
	if ((flags & RFD_FLAG_METADATA) && !rule->carries_metadata) {
		set_why(why, "METADATA flag on a frame type that carries no metadata");
		return -EBADMSG;
	}
	if (rule->stream == STREAM_ZERO && stream_id != 0) {
		set_why(why, "non-zero stream id on a connection-level frame");
		return -EBADMSG;
	}
	if (rule->stream == STREAM_NONZERO && stream_id == 0) {
		set_why(why, "stream id 0 on a stream-level frame");
		return -EBADMSG;
	}
	*rule_out = rule;
	return 0;
}

/*
 * What a sender may not write beyond what a receiver refuses: flags the type
 * does not define (FRAME-22).  Stream ids of 2^31 and above stay writable: a
 * server answers on the id of the request (FRAME-14), and a client's ids
 * wrap below 2^31 before they reach the encoder (FRAME-12).
 */
static int
check_sendable_flags(const struct frame_rule *rule, uint16_t flags)
{
	assert(rule);
	return flags & ~rule->allowed_flags ? -EINVAL : 0;
}

/* A 31-bit count that RSocket requires to be positive. */
static int
check_positive_u31(uint32_t value, const char *zero_reason, const char *top_bit_reason,
                   const char **why)
{
	if (value == 0) {
		set_why(why, zero_reason);
		return -EBADMSG;
	}
	if (value & TOP_BIT_32) {
		set_why(why, top_bit_reason);
		return -EBADMSG;
	}
	return 0;
}

/* The checks on field values, shared by the decoder and the encoder. */
/* FRAME-7, decided from the frame alone: every PAYLOAD has NEXT, COMPLETE or FOLLOWS. */
static int
check_payload_flags(const struct rfd_frame *f, const char **why)
{
	assert(f);
	if (f->type == RFD_FRAME_PAYLOAD &&
	    !(f->flags & (RFD_FLAG_NEXT | RFD_FLAG_COMPLETE | RFD_FLAG_FOLLOWS))) {
		set_why(why, "PAYLOAD with neither NEXT nor COMPLETE nor FOLLOWS");
		return -EBADMSG;
	}
	return 0;
}

/*
 * The values RSocket reserves in fixed fields.  Only the encoder checks them:
 * a receiver never fails a connection over them (FRAME-23).
 */
static int
check_values(const struct rfd_frame *f, const char **why)
{
	int r;

	assert(f);
	switch (f->type) {
	case RFD_FRAME_SETUP:
		r = check_positive_u31(f->keepalive_ms, "SETUP keepalive interval of 0",
		                       "SETUP keepalive interval has the reserved top bit set",
		                       why);
		if (r < 0)
			return r;
		return check_positive_u31(f->max_lifetime_ms, "SETUP max lifetime of 0",
		                          "SETUP max lifetime has the reserved top bit set", why);
	case RFD_FRAME_KEEPALIVE:
		if (f->last_position & TOP_BIT_64) {
			set_why(why, "KEEPALIVE last position has the reserved top bit set");
			return -EBADMSG;
		}
		return 0;
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
		return check_positive_u31(f->u32, "initial request n of 0",
		                          "initial request n has the reserved top bit set", why);
	case RFD_FRAME_REQUEST_N:
		return check_positive_u31(f->u32, "REQUEST_N of 0",
		                          "REQUEST_N has the reserved top bit set", why);
	case RFD_FRAME_PAYLOAD:
		return check_payload_flags(f, why);
	case RFD_FRAME_ERROR:
		if (f->u32 == 0) {
			set_why(why, "ERROR code 0 is reserved");
			return -EBADMSG;
		}
		return 0;
	case RFD_FRAME_EXT:
		return check_positive_u31(f->u32, "EXT extended type 0 is reserved",
		                          "EXT extended type has the reserved top bit set", why);
	default:
		return 0;
	}
}

/* Metadata (with its u24 length when the METADATA flag is set), then data to the end. */
static int
decode_payload(struct cursor *c, struct rfd_frame *f, const char **why)
{
	const uint8_t *p;
	size_t metadata_len;

	assert(c);
	assert(f);
	if (f->flags & RFD_FLAG_METADATA) {
		if (!cursor_take(c, METADATA_LENGTH_SIZE, &p)) {
			set_why(why, "frame too short for its metadata length");
			return -EBADMSG;
		}
		metadata_len = rfd_get_u24(p);
		if (!cursor_take(c, metadata_len, &p)) {
			set_why(why, "metadata length past the end of the frame");
			return -EBADMSG;
		}
		f->has_metadata = true;
		f->metadata.ptr = p;
		f->metadata.len = metadata_len;
	}
	f->data = cursor_rest(c);
	return 0;
}

static int
decode_setup(struct cursor *c, struct rfd_frame *f, const char **why)
{
	const uint8_t *p;

	assert(c);
	assert(f);
	if (!cursor_take(c, 12, &p)) {
		set_why(why, "frame shorter than its fixed part");
		return -EBADMSG;
	}
	f->version_major = rfd_get_u16(p);
	f->version_minor = rfd_get_u16(p + 2);
	f->keepalive_ms = rfd_get_u32(p + 4);
	f->max_lifetime_ms = rfd_get_u32(p + 8);

	if ((f->flags & RFD_FLAG_FOLLOWS) && !cursor_take_counted(c, 2, &f->resume_token)) {
		set_why(why, "SETUP resume token past the end of the frame");
		return -EBADMSG;
	}
	if (!cursor_take_counted(c, 1, &f->metadata_mime)) {
		set_why(why, "SETUP metadata MIME type past the end of the frame");
		return -EBADMSG;
	}
	if (!cursor_take_counted(c, 1, &f->data_mime)) {
		set_why(why, "SETUP data MIME type past the end of the frame");
		return -EBADMSG;
	}
	return decode_payload(c, f, why);
}

static int
decode_body(struct cursor *c, struct rfd_frame *f, const char **why)
{
	const uint8_t *p;

	assert(c);
	assert(f);
	switch (f->type) {
	case RFD_FRAME_SETUP:
		return decode_setup(c, f, why);
	case RFD_FRAME_KEEPALIVE:
		if (!cursor_take(c, 8, &p))
			break;
		f->last_position = rfd_get_u64(p);
		f->data = cursor_rest(c);
		return 0;
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_PAYLOAD:
		return decode_payload(c, f, why);
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_EXT:
		if (!cursor_take(c, 4, &p))
			break;
		f->u32 = rfd_get_u32(p);
		return decode_payload(c, f, why);
	case RFD_FRAME_REQUEST_N:
		if (!cursor_take(c, 4, &p))
			break;
		f->u32 = rfd_get_u32(p);
		if (c->left) {
			set_why(why, "trailing bytes after a REQUEST_N frame");
			return -EBADMSG;
		}
		return 0;
	case RFD_FRAME_CANCEL:
		if (c->left) {
			set_why(why, "trailing bytes after a CANCEL frame");
			return -EBADMSG;
		}
		return 0;
	case RFD_FRAME_ERROR:
		if (!cursor_take(c, 4, &p))
			break;
		f->u32 = rfd_get_u32(p);
		f->data = cursor_rest(c);
		return 0;
	case RFD_FRAME_METADATA_PUSH:
		/* Without the METADATA flag the bytes after the header mean nothing. */
		if (f->flags & RFD_FLAG_METADATA) {
			f->has_metadata = true;
			f->metadata = cursor_rest(c);
		}
		return 0;
	default:
		set_why(why, "unknown frame type");
		return -EBADMSG;
	}
	set_why(why, "frame shorter than its fixed part");
	return -EBADMSG;
}

int
rfd_frame_split(const uint8_t *bytes, size_t len, size_t max_frame, size_t *frame_len,
                const char **why)
{
	size_t length;

	if ((!bytes && len) || !frame_len)
		return -EINVAL;
	if (len < RFD_FRAME_LENGTH_SIZE)
		return 0;

	length = rfd_get_u24(bytes);
	if (length < FRAME_HEADER_SIZE) {
		set_why(why, "frame length below the 6-byte minimum");
		return -EBADMSG;
	}
	if (length + RFD_FRAME_LENGTH_SIZE > max_frame) {
		set_why(why, "frame longer than the maximum frame size");
		return -EMSGSIZE;
	}
	if (len < length + RFD_FRAME_LENGTH_SIZE)
		return 0;
	*frame_len = length + RFD_FRAME_LENGTH_SIZE;
	return 1;
}

int
rfd_frame_decode(const uint8_t *bytes, size_t len, struct rfd_frame *f, const char **why)
{
	const struct frame_rule *rule;
	struct cursor c = {bytes, len};
	uint16_t type_and_flags;
	int r;

	if ((!bytes && len) || !f)
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	if (len < FRAME_HEADER_SIZE) {
		set_why(why, "frame shorter than its 6-byte header");
		return -EBADMSG;
	}

	f->stream_id = rfd_get_u32(bytes);
	type_and_flags = rfd_get_u16(bytes + 4);
	f->type = (uint8_t)(type_and_flags >> FRAME_TYPE_SHIFT);
	f->flags = type_and_flags & FRAME_FLAGS_MASK;
	r = check_header(f->type, f->flags, f->stream_id, &rule, why);
	if (r < 0)
		return r;
	f->flags &= rule->allowed_flags;
	if (len < rule->fixed_size) {
		set_why(why, "frame shorter than its fixed part");
		return -EBADMSG;
	}

	c.p += FRAME_HEADER_SIZE;
	c.left -= FRAME_HEADER_SIZE;
	r = decode_body(&c, f, why);
	if (r < 0)
		return r;
	return check_payload_flags(f, why);
}

/* The flags as written: the METADATA flag follows the frame's content, not f->flags. */
static uint16_t
wire_flags(const struct rfd_frame *f)
{
	assert(f);
	if (f->type == RFD_FRAME_METADATA_PUSH)
		return f->flags | RFD_FLAG_METADATA;
	if (has_metadata_length(f->type)) {
		uint16_t flags = (uint16_t)(f->flags & ~RFD_FLAG_METADATA);

		return f->has_metadata ? flags | RFD_FLAG_METADATA : flags;
	}
	return f->flags;
}

static size_t
payload_size(const struct rfd_frame *f)
{
	assert(f);
	return (f->has_metadata ? METADATA_LENGTH_SIZE + f->metadata.len : 0) + f->data.len;
}

/* Bytes after the length field.  The caller has bounded every slice by the u24 maximum. */
static size_t
body_size(const struct rfd_frame *f)
{
	size_t size;

	assert(f);
	switch (f->type) {
	case RFD_FRAME_SETUP:
		size = SETUP_FIXED_SIZE + f->metadata_mime.len + f->data_mime.len + payload_size(f);
		if (f->flags & RFD_FLAG_FOLLOWS)
			size += 2 + f->resume_token.len;
		return size;
	case RFD_FRAME_KEEPALIVE:
		return KEEPALIVE_FIXED_SIZE + f->data.len;
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_PAYLOAD:
		return FRAME_HEADER_SIZE + payload_size(f);
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_EXT:
		return FRAME_WITH_U32_SIZE + payload_size(f);
	case RFD_FRAME_REQUEST_N:
		return FRAME_WITH_U32_SIZE;
	case RFD_FRAME_CANCEL:
		return FRAME_HEADER_SIZE;
	case RFD_FRAME_ERROR:
		return FRAME_WITH_U32_SIZE + f->data.len;
	case RFD_FRAME_METADATA_PUSH:
		return FRAME_HEADER_SIZE + f->metadata.len;
	default:
		return 0;
	}
}

static bool
slice_ok(struct rfd_slice s)
{
	return s.ptr || s.len == 0;
}

static int
check_encodable(const struct rfd_frame *f)
{
	const struct frame_rule *rule;
	int r;

	assert(f);
	if (!slice_ok(f->metadata) || !slice_ok(f->data) || !slice_ok(f->resume_token) ||
	    !slice_ok(f->metadata_mime) || !slice_ok(f->data_mime))
		return -EINVAL;
	r = check_header(f->type, wire_flags(f), f->stream_id, &rule, NULL);
	if (r < 0)
		return -EINVAL;
	r = check_sendable_flags(rule, wire_flags(f));
	if (r < 0)
		return r;
	r = check_values(f, NULL);
	if (r < 0)
		return -EINVAL;
	if (f->type == RFD_FRAME_SETUP &&
	    (f->resume_token.len > RESUME_TOKEN_MAX || f->metadata_mime.len > MIME_TYPE_MAX ||
	     f->data_mime.len > MIME_TYPE_MAX))
		return -EINVAL;
	if (f->metadata.len > RFD_FRAME_LENGTH_MAX || f->data.len > RFD_FRAME_LENGTH_MAX)
		return -EMSGSIZE;
	if (body_size(f) > RFD_FRAME_LENGTH_MAX)
		return -EMSGSIZE;
	return 0;
}

static int
put_counted(struct rfd_buf *out, size_t length_size, struct rfd_slice s)
{
	int r;

	assert(out);
	r = length_size == 1 ? rfd_buf_put_u8(out, (uint8_t)s.len)
	                     : rfd_buf_put_u16(out, (uint16_t)s.len);
	if (r < 0)
		return r;
	return rfd_buf_append(out, s.ptr, s.len);
}

static int
put_payload(struct rfd_buf *out, const struct rfd_frame *f)
{
	int r;

	assert(out);
	assert(f);
	if (f->has_metadata) {
		r = rfd_buf_put_u24(out, (uint32_t)f->metadata.len);
		if (r < 0)
			return r;
		r = rfd_buf_append(out, f->metadata.ptr, f->metadata.len);
		if (r < 0)
			return r;
	}
	return rfd_buf_append(out, f->data.ptr, f->data.len);
}

static int
put_setup_fields(struct rfd_buf *out, const struct rfd_frame *f)
{
	int r;

	assert(out);
	assert(f);
	r = rfd_buf_put_u16(out, f->version_major);
	if (r >= 0)
		r = rfd_buf_put_u16(out, f->version_minor);
	if (r >= 0)
		r = rfd_buf_put_u32(out, f->keepalive_ms);
	if (r >= 0)
		r = rfd_buf_put_u32(out, f->max_lifetime_ms);
	if (r >= 0 && (f->flags & RFD_FLAG_FOLLOWS))
		r = put_counted(out, 2, f->resume_token);
	if (r >= 0)
		r = put_counted(out, 1, f->metadata_mime);
	if (r >= 0)
		r = put_counted(out, 1, f->data_mime);
	return r;
}

static int
put_body(struct rfd_buf *out, const struct rfd_frame *f)
{
	int r;

	assert(out);
	assert(f);
	switch (f->type) {
	case RFD_FRAME_SETUP:
		r = put_setup_fields(out, f);
		return r < 0 ? r : put_payload(out, f);
	case RFD_FRAME_KEEPALIVE:
		r = rfd_buf_put_u64(out, f->last_position);
		return r < 0 ? r : rfd_buf_append(out, f->data.ptr, f->data.len);
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_PAYLOAD:
		return put_payload(out, f);
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_EXT:
		r = rfd_buf_put_u32(out, f->u32);
		return r < 0 ? r : put_payload(out, f);
	case RFD_FRAME_REQUEST_N:
		return rfd_buf_put_u32(out, f->u32);
	case RFD_FRAME_ERROR:
		r = rfd_buf_put_u32(out, f->u32);
		return r < 0 ? r : rfd_buf_append(out, f->data.ptr, f->data.len);
	case RFD_FRAME_METADATA_PUSH:
		return rfd_buf_append(out, f->metadata.ptr, f->metadata.len);
	default:
		return 0;
	}
}

/* Append one frame that check_encodable accepted. */
static int
put_frame(struct rfd_buf *out, const struct rfd_frame *f)
{
	size_t body;
	int r;

	assert(out);
	assert(f);
	body = body_size(f);
	r = rfd_buf_reserve(out, RFD_FRAME_LENGTH_SIZE + body);
	if (r >= 0)
		r = rfd_buf_put_u24(out, (uint32_t)body);
	if (r >= 0)
		r = rfd_buf_put_u32(out, f->stream_id);
	if (r >= 0)
		r = rfd_buf_put_u16(out, (uint16_t)(f->type << FRAME_TYPE_SHIFT | wire_flags(f)));
	if (r >= 0)
		r = put_body(out, f);
	return r;
}

int
rfd_frame_encode(const struct rfd_frame *f, struct rfd_buf *out)
{
	size_t start;
	int r;

	if (!f || !out)
		return -EINVAL;
	r = check_encodable(f);
	if (r < 0)
		return r;

	start = out->len;
	r = put_frame(out, f);
	if (r < 0)
		out->len = start;
	return r;
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * The next fragment of @f, whose first @metadata_done metadata bytes and
 * @data_done data bytes went out in earlier fragments, in a frame of at most
 * @max_frame bytes.  Every fragment carries at least one byte, because
 * @max_frame leaves room for the fixed part, a metadata length and a byte.
 *
 * Flags follow fbthrift: continuations are PAYLOAD frames carrying NEXT (for
 * a PAYLOAD only when the original had it), FOLLOWS on all but the last.
 * Unlike fbthrift, COMPLETE appears on the last fragment only: RSocket says a
 * receiver ignores FOLLOWS when COMPLETE is set, and fbthrift reads the flags
 * of the last fragment anyway.
 */
static struct rfd_frame
next_fragment(const struct rfd_frame *f, size_t max_frame, bool first, size_t metadata_done,
              size_t data_done)
{
	struct rfd_frame fragment = *f;
	size_t room;

	assert(f);
	if (!first) {
		fragment.type = RFD_FRAME_PAYLOAD;
		fragment.flags =
		    f->type == RFD_FRAME_PAYLOAD ? f->flags & RFD_FLAG_NEXT : RFD_FLAG_NEXT;
	}
	fragment.flags = (uint16_t)(fragment.flags & ~(RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE));
	fragment.has_metadata = f->has_metadata && (first || metadata_done < f->metadata.len);

	room = max_frame - RFD_FRAME_LENGTH_SIZE - frame_rules[fragment.type].fixed_size;
	if (fragment.has_metadata)
		room -= METADATA_LENGTH_SIZE;
	fragment.metadata.ptr = f->metadata.ptr ? f->metadata.ptr + metadata_done : NULL;
	fragment.metadata.len = min_size(f->metadata.len - metadata_done, room);
	room -= fragment.metadata.len;
	fragment.data.ptr = f->data.ptr ? f->data.ptr + data_done : NULL;
	fragment.data.len = min_size(f->data.len - data_done, room);

	if (metadata_done + fragment.metadata.len < f->metadata.len ||
	    data_done + fragment.data.len < f->data.len)
		fragment.flags |= RFD_FLAG_FOLLOWS;
	else
		fragment.flags |= f->flags & RFD_FLAG_COMPLETE;
	return fragment;
}

static int
put_fragments(struct rfd_buf *out, const struct rfd_frame *f, size_t max_frame)
{
	size_t metadata_done = 0, data_done = 0;
	struct rfd_frame fragment;
	int r;

	assert(out);
	assert(f);
	do {
		fragment = next_fragment(f, max_frame, metadata_done + data_done == 0,
		                         metadata_done, data_done);
		r = put_frame(out, &fragment);
		if (r < 0)
			return r;
		metadata_done += fragment.metadata.len;
		data_done += fragment.data.len;
	} while (fragment.flags & RFD_FLAG_FOLLOWS);
	return 0;
}

int
rfd_frame_encode_fragmented(const struct rfd_frame *f, size_t max_frame, struct rfd_buf *out)
{
	const struct frame_rule *rule;
	size_t start;
	int r;

	if (!f || !out || !is_payload_type(f->type) || (f->flags & RFD_FLAG_FOLLOWS))
		return -EINVAL;
	if (!slice_ok(f->metadata) || !slice_ok(f->data))
		return -EINVAL;
	max_frame = min_size(max_frame, RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX);
	if (f->metadata.len > SIZE_MAX / 4 || f->data.len > SIZE_MAX / 4)
		return -EMSGSIZE;

	if (RFD_FRAME_LENGTH_SIZE + body_size(f) <= max_frame)
		return rfd_frame_encode(f, out);
	/* Room for a first fragment with a metadata length and one byte. */
	if (max_frame < (size_t)RFD_FRAME_LENGTH_SIZE + frame_rules[f->type].fixed_size +
	                    METADATA_LENGTH_SIZE + 1)
		return -EINVAL;
	if (check_header(f->type, wire_flags(f), f->stream_id, &rule, NULL) < 0 ||
	    check_values(f, NULL) < 0)
		return -EINVAL;

	start = out->len;
	r = put_fragments(out, f, max_frame);
	if (r < 0)
		out->len = start;
	return r;
}

void
rfd_reassembly_init(struct rfd_reassembly *r, size_t max_size)
{
	assert(r);
	memset(r, 0, sizeof(*r));
	rfd_buf_init(&r->metadata);
	rfd_buf_init(&r->data);
	r->max_size = max_size;
}

void
rfd_reassembly_free(struct rfd_reassembly *r)
{
	assert(r);
	rfd_buf_free(&r->metadata);
	rfd_buf_free(&r->data);
	r->active = false;
	r->has_metadata = false;
}

/* Forget the payload in progress; the buffers keep their memory for the next one. */
static void
reassembly_reset(struct rfd_reassembly *r)
{
	assert(r);
	r->active = false;
	r->has_metadata = false;
	r->metadata.len = 0;
	r->data.len = 0;
}

static int
reassembly_append(struct rfd_reassembly *r, const struct rfd_frame *f, const char **why)
{
	size_t metadata_len, held;
	int ret;

	assert(r);
	assert(f);
	if (f->has_metadata && r->data.len > 0) {
		set_why(why, "fragment carries metadata after data");
		return -EBADMSG;
	}
	metadata_len = f->has_metadata ? f->metadata.len : 0;
	held = r->metadata.len + r->data.len;
	if (held > r->max_size || metadata_len > r->max_size - held ||
	    f->data.len > r->max_size - held - metadata_len) {
		set_why(why, "reassembled payload larger than the size limit");
		return -EBADMSG;
	}
	if (f->has_metadata) {
		ret = rfd_buf_append(&r->metadata, f->metadata.ptr, metadata_len);
		if (ret < 0)
			return ret;
		r->has_metadata = true;
	}
	return rfd_buf_append(&r->data, f->data.ptr, f->data.len);
}

/*
 * Hand out the joined payload.  Its flags are those of the last fragment that
 * the first fragment's type defines: a REQUEST_RESPONSE does not inherit the
 * NEXT of its PAYLOAD continuations.
 */
static void
reassembly_finish(struct rfd_reassembly *r, const struct rfd_frame *last, struct rfd_frame *out)
{
	uint16_t flags;

	assert(r);
	assert(last);
	assert(out);
	flags = (uint16_t)(last->flags & frame_rules[r->type].allowed_flags & ~RFD_FLAG_FOLLOWS);
	r->flags = r->has_metadata ? flags | RFD_FLAG_METADATA : flags;
	r->active = false;

	memset(out, 0, sizeof(*out));
	out->stream_id = r->stream_id;
	out->type = r->type;
	out->flags = r->flags;
	out->u32 = r->u32;
	out->has_metadata = r->has_metadata;
	out->metadata.ptr = r->metadata.data;
	out->metadata.len = r->metadata.len;
	out->data.ptr = r->data.data;
	out->data.len = r->data.len;
}

static int
reassembly_start(struct rfd_reassembly *r, const struct rfd_frame *f, const char **why)
{
	int ret;

	assert(r);
	assert(f);
	reassembly_reset(r);
	ret = reassembly_append(r, f, why);
	if (ret < 0) {
		reassembly_reset(r);
		return ret;
	}
	r->active = true;
	r->stream_id = f->stream_id;
	r->type = f->type;
	r->u32 = f->u32;
	return 0;
}

/*
 * fbthrift keeps COMPLETE and FOLLOWS together on the first fragment of a
 * large response and honours FOLLOWS, so FOLLOWS always wins here, although
 * RSocket says COMPLETE overrides it.
 */
int
rfd_reassembly_add(struct rfd_reassembly *r, const struct rfd_frame *f, struct rfd_frame *out,
                   const char **why)
{
	int ret;

	if (!r || !f || !out)
		return -EINVAL;
	if (!r->active) {
		if (!frame_follows(f)) {
			*out = *f;
			return 1;
		}
		return reassembly_start(r, f, why);
	}

	if (f->stream_id != r->stream_id) {
		set_why(why, "fragment for another stream than the one being reassembled");
		return -EINVAL;
	}
	if (f->type != RFD_FRAME_PAYLOAD) {
		set_why(why, "continuation fragment is not a PAYLOAD frame");
		reassembly_reset(r);
		return -EBADMSG;
	}
	ret = reassembly_append(r, f, why);
	if (ret < 0) {
		reassembly_reset(r);
		return ret;
	}
	if (frame_follows(f))
		return 0;
	reassembly_finish(r, f, out);
	return 1;
}

const char *
rfd_frame_type_name(uint8_t type)
{
	const struct frame_rule *rule = rule_for(type);

	return rule ? rule->name : "UNKNOWN";
}
