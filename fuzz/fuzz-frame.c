/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: Rocket frame splitting, decoding, encoding, fragmentation and
 * reassembly.
 *
 * Input: two option bytes, then a byte stream of frames.
 *   byte 0  bits 0-5: reassembly size limit, 8 bytes a step (0..504)
 *           bit 6: split with a small maximum frame size (byte 1 + 9)
 *   byte 1  maximum frame size for re-fragmenting what decodes (0: do not)
 *
 * Every frame that decodes must encode back to exactly its bytes and decode
 * again to the same fields; a payload frame, fragmented and reassembled, must
 * come back whole; and the frames of the stream, fed to one reassembly,
 * must give what a model of the reassembly rules predicts.
 */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "fuzz.h"

enum {
	OPT_LIMIT_MASK = 0x3F,
	OPT_LIMIT_STEP = 8,
	OPT_SMALL_SPLIT = 0x40,
	SMALL_SPLIT_BASE = 9,
	FRAGMENT_BASE = 9,
	WHOLE_FRAME_MAX = RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX,
	FIXED_PART_MAX = 10, /* REQUEST_STREAM, REQUEST_CHANNEL: header and a u32 */
};

static bool
slice_equal(struct rfd_slice a, struct rfd_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool
slice_inside(struct rfd_slice s, const uint8_t *bytes, size_t len)
{
	return s.len == 0 ||
	       (s.ptr >= bytes && s.len <= len && s.ptr - bytes <= (long)(len - s.len));
}

static void
check_same_frame(const struct rfd_frame *a, const struct rfd_frame *b, const char *what)
{
	FUZZ_CHECK(a->stream_id == b->stream_id && a->type == b->type && a->flags == b->flags &&
	               a->u32 == b->u32 && a->version_major == b->version_major &&
	               a->version_minor == b->version_minor && a->keepalive_ms == b->keepalive_ms &&
	               a->max_lifetime_ms == b->max_lifetime_ms &&
	               a->last_position == b->last_position && a->has_metadata == b->has_metadata,
	           "%s: fixed fields differ (type %u flags 0x%x / type %u flags 0x%x)", what,
	           a->type, a->flags, b->type, b->flags);
	FUZZ_CHECK(slice_equal(a->resume_token, b->resume_token) &&
	               slice_equal(a->metadata_mime, b->metadata_mime) &&
	               slice_equal(a->data_mime, b->data_mime) &&
	               slice_equal(a->metadata, b->metadata) && slice_equal(a->data, b->data),
	           "%s: %s frame bytes differ", what, rfd_frame_type_name(a->type));
}

static bool
is_payload_type(uint8_t type)
{
	return type == RFD_FRAME_REQUEST_RESPONSE || type == RFD_FRAME_REQUEST_FNF ||
	       type == RFD_FRAME_REQUEST_STREAM || type == RFD_FRAME_REQUEST_CHANNEL ||
	       type == RFD_FRAME_PAYLOAD;
}

/* The flags each type defines (spec 4.3); a receiver treats the others as clear. */
static uint16_t
defined_flags(uint8_t type)
{
	switch (type) {
	case RFD_FRAME_SETUP:
		return RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE;
	case RFD_FRAME_KEEPALIVE:
		return RFD_FLAG_FOLLOWS;
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
		return RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS;
	case RFD_FRAME_REQUEST_CHANNEL:
		return RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE;
	case RFD_FRAME_PAYLOAD:
		return RFD_FLAG_METADATA | RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE | RFD_FLAG_NEXT;
	case RFD_FRAME_METADATA_PUSH:
		return RFD_FLAG_METADATA;
	case RFD_FRAME_EXT:
		return RFD_FLAG_IGNORE | RFD_FLAG_METADATA;
	default:
		return 0;
	}
}

static bool
zero_or_top_bit(uint32_t v)
{
	return v == 0 || (v & 0x80000000u);
}

/*
 * Values RSocket reserves, which a receiver accepts (FRAME-23) and the
 * encoder refuses: a zero or 2^31-and-above count, interval or extended
 * type, a KEEPALIVE position with the top bit, an ERROR code of 0.
 */
static bool
has_reserved_values(const struct rfd_frame *f)
{
	switch (f->type) {
	case RFD_FRAME_SETUP:
		return zero_or_top_bit(f->keepalive_ms) || zero_or_top_bit(f->max_lifetime_ms);
	case RFD_FRAME_KEEPALIVE:
		return f->last_position >> 63;
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_REQUEST_N:
	case RFD_FRAME_EXT:
		return zero_or_top_bit(f->u32);
	case RFD_FRAME_ERROR:
		return f->u32 == 0;
	default:
		return false;
	}
}

/* What a decoded frame must look like, whatever the bytes were. */
static void
check_decoded(const struct rfd_frame *f, const uint8_t *bytes, size_t len)
{
	FUZZ_CHECK(strcmp(rfd_frame_type_name(f->type), "UNKNOWN") != 0,
	           "decoded a frame of unknown type %u", f->type);
	FUZZ_CHECK((f->flags & ~defined_flags(f->type)) == 0,
	           "decoded %s flags 0x%x: not all defined for the type",
	           rfd_frame_type_name(f->type), f->flags);
	FUZZ_CHECK(f->has_metadata == !!(f->flags & RFD_FLAG_METADATA),
	           "has_metadata disagrees with the METADATA flag");
	FUZZ_CHECK(slice_inside(f->metadata, bytes, len) && slice_inside(f->data, bytes, len) &&
	               slice_inside(f->resume_token, bytes, len) &&
	               slice_inside(f->metadata_mime, bytes, len) &&
	               slice_inside(f->data_mime, bytes, len),
	           "a decoded slice points outside the frame");
	if (f->type == RFD_FRAME_PAYLOAD)
		FUZZ_CHECK(f->flags & (RFD_FLAG_NEXT | RFD_FLAG_COMPLETE | RFD_FLAG_FOLLOWS),
		           "PAYLOAD with neither NEXT, COMPLETE nor FOLLOWS decoded");
}

/*
 * A decoded frame encodes (unless it holds reserved values) to bytes that
 * decode to the same fields; to exactly the input when the input's flags
 * were all defined.  A METADATA_PUSH without the METADATA flag, whose bytes
 * mean nothing, encodes as one with the flag and no metadata.
 */
static void
check_round_trip(const struct rfd_frame *f, const uint8_t *whole, size_t whole_len)
{
	uint16_t input_flags = rfd_get_u16(whole + RFD_FRAME_LENGTH_SIZE + 4) & 0x3FF;
	bool bare_push = f->type == RFD_FRAME_METADATA_PUSH && !f->has_metadata;
	struct rfd_frame again, expected = *f;
	struct rfd_buf out;
	const char *why = NULL;
	int r;

	rfd_buf_init(&out);
	r = rfd_frame_encode(f, &out);
	if (has_reserved_values(f)) {
		FUZZ_CHECK(r == -EINVAL, "a %s frame with reserved values encoded: %d",
		           rfd_frame_type_name(f->type), r);
		rfd_buf_free(&out);
		return;
	}
	FUZZ_CHECK(r == 0, "a decoded %s frame does not encode: %d", rfd_frame_type_name(f->type),
	           r);
	if (input_flags == f->flags && !bare_push)
		FUZZ_CHECK(out.len == whole_len && memcmp(out.data, whole, whole_len) == 0,
		           "a decoded %s frame encodes to other bytes (%zu, was %zu)",
		           rfd_frame_type_name(f->type), out.len, whole_len);
	r = rfd_frame_decode(out.data + RFD_FRAME_LENGTH_SIZE, out.len - RFD_FRAME_LENGTH_SIZE,
	                     &again, &why);
	FUZZ_CHECK(r == 0, "re-encoded frame does not decode: %s", why ? why : "?");
	if (bare_push) {
		expected.flags |= RFD_FLAG_METADATA;
		expected.has_metadata = true;
		expected.metadata.len = 0;
		expected.data.len = 0;
	}
	check_same_frame(&expected, &again, "decode(encode(frame))");
	rfd_buf_free(&out);
}

/* Split @bytes into frames no longer than @max_frame and reassemble them into *out. */
static void
reassemble_fragments(const struct rfd_buf *bytes, size_t max_frame, struct rfd_reassembly *r,
                     struct rfd_frame *out)
{
	size_t pos = 0, n_fragments = 0;
	int done = 0;

	while (pos < bytes->len) {
		struct rfd_frame fragment;
		const char *why = NULL;
		size_t frame_len;
		int ret;

		FUZZ_CHECK(!done, "bytes left after the last fragment");
		ret = rfd_frame_split(bytes->data + pos, bytes->len - pos, max_frame, &frame_len,
		                      &why);
		FUZZ_CHECK(ret == 1, "fragment %zu does not split: %d %s", n_fragments, ret,
		           why ? why : "");
		ret = rfd_frame_decode(bytes->data + pos + RFD_FRAME_LENGTH_SIZE,
		                       frame_len - RFD_FRAME_LENGTH_SIZE, &fragment, &why);
		FUZZ_CHECK(ret == 0, "fragment %zu does not decode: %s", n_fragments,
		           why ? why : "");
		FUZZ_CHECK(n_fragments == 0 || fragment.type == RFD_FRAME_PAYLOAD,
		           "continuation fragment of type %u", fragment.type);
		FUZZ_CHECK(n_fragments == 0 || fragment.metadata.len + fragment.data.len > 0,
		           "empty continuation fragment");
		done = rfd_reassembly_add(r, &fragment, out, &why);
		FUZZ_CHECK(done >= 0, "fragment %zu refused: %s", n_fragments, why ? why : "");
		pos += frame_len;
		n_fragments++;
	}
	FUZZ_CHECK(done == 1, "fragments end without a last one");
}

/* A payload frame, fragmented at @max_frame and reassembled, must come back the same. */
static void
check_fragmentation(const struct rfd_frame *f, size_t max_frame)
{
	struct rfd_reassembly r;
	struct rfd_frame whole;
	struct rfd_buf out;
	int ret;

	if (!is_payload_type(f->type) || (f->flags & RFD_FLAG_FOLLOWS))
		return;
	rfd_buf_init(&out);
	ret = rfd_frame_encode_fragmented(f, max_frame, &out);
	if (ret == -EINVAL) {
		FUZZ_CHECK(has_reserved_values(f) ||
		               max_frame < RFD_FRAME_LENGTH_SIZE + FIXED_PART_MAX + 4,
		           "fragmenting at %zu refused", max_frame);
		rfd_buf_free(&out);
		return;
	}
	FUZZ_CHECK(ret == 0, "fragmenting a decoded frame failed: %d", ret);

	rfd_reassembly_init(&r, SIZE_MAX);
	reassemble_fragments(&out, max_frame, &r, &whole);
	check_same_frame(f, &whole, "reassemble(fragment(frame))");
	rfd_reassembly_free(&r);
	rfd_buf_free(&out);
}

/* An independent account of one stream's reassembly, to hold rfd_reassembly_add to. */
struct model {
	bool active;
	uint32_t stream_id;
	uint8_t type;
	uint32_t u32;
	bool has_metadata;
	struct rfd_buf metadata;
	struct rfd_buf data;
	size_t max_size;
};

static void
model_reset(struct model *m)
{
	m->active = false;
	m->has_metadata = false;
	m->metadata.len = 0;
	m->data.len = 0;
}

static bool
model_fits(const struct model *m, const struct rfd_frame *f)
{
	size_t metadata_len = f->has_metadata ? f->metadata.len : 0;

	return m->metadata.len + m->data.len + metadata_len + f->data.len <= m->max_size;
}

static void
model_append(struct model *m, const struct rfd_frame *f)
{
	if (f->has_metadata) {
		FUZZ_CHECK(rfd_buf_append(&m->metadata, f->metadata.ptr, f->metadata.len) == 0,
		           "out of memory");
		m->has_metadata = true;
	}
	FUZZ_CHECK(rfd_buf_append(&m->data, f->data.ptr, f->data.len) == 0, "out of memory");
}

/* The flags a reassembled payload keeps: the last fragment's, as the first fragment's type has
 * them. */
static uint16_t
model_flags(const struct model *m, uint16_t last_flags)
{
	uint16_t kept = 0;

	if (m->type == RFD_FRAME_REQUEST_CHANNEL)
		kept = RFD_FLAG_COMPLETE;
	else if (m->type == RFD_FRAME_PAYLOAD)
		kept = RFD_FLAG_COMPLETE | RFD_FLAG_NEXT;
	return (uint16_t)((last_flags & kept) | (m->has_metadata ? RFD_FLAG_METADATA : 0));
}

static void
check_reassembled(const struct model *m, const struct rfd_frame *last, const struct rfd_frame *out)
{
	struct rfd_slice metadata = {m->metadata.data, m->metadata.len};
	struct rfd_slice data = {m->data.data, m->data.len};

	FUZZ_CHECK(out->type == m->type && out->stream_id == m->stream_id && out->u32 == m->u32,
	           "reassembled frame has type %u stream %u, expected %u %u", out->type,
	           out->stream_id, m->type, m->stream_id);
	FUZZ_CHECK(out->flags == model_flags(m, last->flags),
	           "reassembled flags 0x%x, expected 0x%x", out->flags,
	           model_flags(m, last->flags));
	FUZZ_CHECK(out->has_metadata == m->has_metadata, "reassembled has_metadata differs");
	FUZZ_CHECK(slice_equal(out->metadata, metadata) && slice_equal(out->data, data),
	           "reassembled bytes differ from the fragments joined");
}

static bool
frame_follows(const struct rfd_frame *f)
{
	return is_payload_type(f->type) && (f->flags & RFD_FLAG_FOLLOWS);
}

static void
feed_reassembly(struct rfd_reassembly *r, struct model *m, const struct rfd_frame *f)
{
	struct rfd_frame out;
	const char *why = NULL;
	int ret;

	if (r->active && f->stream_id != r->stream_id) {
		size_t held = r->metadata.len + r->data.len;

		ret = rfd_reassembly_add(r, f, &out, &why);
		FUZZ_CHECK(ret == -EINVAL && r->active && r->metadata.len + r->data.len == held,
		           "a frame of another stream disturbed the reassembly: %d", ret);
		return;
	}
	ret = rfd_reassembly_add(r, f, &out, &why);

	if (!m->active) {
		if (!frame_follows(f)) {
			FUZZ_CHECK(ret == 1, "unfragmented frame not passed through: %d", ret);
			check_same_frame(f, &out, "pass-through");
			return;
		}
		if (!model_fits(m, f)) {
			FUZZ_CHECK(ret == -EBADMSG && !r->active,
			           "first fragment over the limit: %d", ret);
			return;
		}
		FUZZ_CHECK(ret == 0 && r->active, "first fragment refused: %d %s", ret,
		           why ? why : "");
		model_append(m, f);
		m->active = true;
		m->stream_id = f->stream_id;
		m->type = f->type;
		m->u32 = f->u32;
		return;
	}

	if (f->type != RFD_FRAME_PAYLOAD || (f->has_metadata && m->data.len > 0) ||
	    !model_fits(m, f)) {
		FUZZ_CHECK(ret == -EBADMSG && !r->active, "bad continuation accepted: %d", ret);
		model_reset(m);
		return;
	}
	model_append(m, f);
	if (frame_follows(f)) {
		FUZZ_CHECK(ret == 0 && r->active, "continuation refused: %d %s", ret,
		           why ? why : "");
		return;
	}
	FUZZ_CHECK(ret == 1 && !r->active, "last fragment did not complete: %d %s", ret,
	           why ? why : "");
	check_reassembled(m, f, &out);
	model_reset(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in;
	struct rfd_reassembly reassembly;
	struct model model = {0};
	uint8_t options, fragment_option;
	size_t max_split = WHOLE_FRAME_MAX, fragment_max, pos = 0;

	fuzz_input_init(&in, data, size);
	options = fuzz_u8(&in);
	fragment_option = fuzz_u8(&in);
	if (options & OPT_SMALL_SPLIT)
		max_split = SMALL_SPLIT_BASE + (size_t)fragment_option;
	fragment_max = fragment_option ? FRAGMENT_BASE + (size_t)fragment_option : 0;
	model.max_size = (size_t)(options & OPT_LIMIT_MASK) * OPT_LIMIT_STEP;
	rfd_buf_init(&model.metadata);
	rfd_buf_init(&model.data);
	rfd_reassembly_init(&reassembly, model.max_size);

	while (pos < in.left) {
		const uint8_t *whole = in.p + pos;
		struct rfd_frame frame;
		const char *why = NULL;
		size_t frame_len = 0;
		int r = rfd_frame_split(whole, in.left - pos, max_split, &frame_len, &why);

		if (r <= 0) {
			FUZZ_CHECK(r == 0 || why, "split refused without a reason");
			break;
		}
		FUZZ_CHECK(frame_len >= RFD_FRAME_LENGTH_SIZE + 6 && frame_len <= max_split &&
		               frame_len <= in.left - pos,
		           "split gave a frame of %zu bytes", frame_len);
		pos += frame_len;

		r = rfd_frame_decode(whole + RFD_FRAME_LENGTH_SIZE,
		                     frame_len - RFD_FRAME_LENGTH_SIZE, &frame, &why);
		if (r < 0) {
			FUZZ_CHECK(r == -EBADMSG && why, "decode failed with %d and no reason", r);
			continue;
		}
		check_decoded(&frame, whole + RFD_FRAME_LENGTH_SIZE,
		              frame_len - RFD_FRAME_LENGTH_SIZE);
		check_round_trip(&frame, whole, frame_len);
		if (fragment_max && !has_reserved_values(&frame))
			check_fragmentation(&frame, fragment_max);
		feed_reassembly(&reassembly, &model, &frame);
	}

	rfd_reassembly_free(&reassembly);
	rfd_buf_free(&model.metadata);
	rfd_buf_free(&model.data);
	FUZZ_CHECK(fuzz_alloc_live_blocks() == 0, "%zu blocks (%zu bytes) leaked",
	           fuzz_alloc_live_blocks(), fuzz_alloc_live_bytes());
	return 0;
}
