/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the Compact protocol reader and writer and the RPC metadata
 * decoders and encoders.
 *
 * Input: a selector byte, then the bytes to decode.  Selector % 8:
 *   0 RequestRpcMetadata   1 ResponseRpcMetadata   2 StreamPayloadMetadata
 *   3 ResponseRpcError     4 RequestSetupMetadata  5 ServerPushMetadata
 *   6 rfd_cr_skip() of one value, its type in the next byte
 *   7 any struct, read value by value and written back with the writer
 *
 * What decodes is encoded, decoded again and must give the same values; a
 * second encoding must give the same bytes as the first.
 */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "compact.h"
#include "fuzz.h"
#include "metadata.h"

enum {
	SELECT_REQUEST,
	SELECT_RESPONSE,
	SELECT_STREAM_PAYLOAD,
	SELECT_ERROR,
	SELECT_SETUP,
	SELECT_SERVER_PUSH,
	SELECT_SKIP,
	SELECT_WALK,
	SELECT_COUNT,
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

/* Optional values: equal when both absent, or both present with the same value. */
#define SAME_OPTIONAL(has_a, a, has_b, b) ((has_a) == (has_b) && (!(has_a) || (a) == (b)))
#define SAME_OPTIONAL_SLICE(has_a, a, has_b, b)                                                    \
	((has_a) == (has_b) && (!(has_a) || slice_equal((a), (b))))

static bool
same_fd_metadata(const struct rfd_fd_metadata *a, const struct rfd_fd_metadata *b)
{
	return a->present == b->present &&
	       SAME_OPTIONAL(a->has_seq, a->fd_seq, b->has_seq, b->fd_seq) &&
	       SAME_OPTIONAL(a->has_num, a->num_fds, b->has_num, b->num_fds);
}

/*
 * One struct kind: how to decode it, encode it, compare two decodings and
 * check that its slices point into the input.
 */
union decoded {
	struct rfd_request_metadata request;
	struct rfd_response_metadata response;
	struct rfd_response_error error;
	struct rfd_setup_metadata setup;
	struct rfd_server_push push;
};

struct kind {
	const char *name;
	int (*decode)(const uint8_t *bytes, size_t len, union decoded *m, const char **why);
	int (*encode)(const union decoded *m, struct rfd_buf *out);
	bool (*same)(const union decoded *a, const union decoded *b);
	bool (*inside)(const union decoded *m, const uint8_t *bytes, size_t len);
};

static int
decode_request(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_request_metadata_decode(bytes, len, &m->request, why);
}

static int
encode_request(const union decoded *m, struct rfd_buf *out)
{
	return rfd_request_metadata_encode(&m->request, out);
}

static bool
same_request(const union decoded *da, const union decoded *db)
{
	const struct rfd_request_metadata *a = &da->request, *b = &db->request;

	return SAME_OPTIONAL(a->has_protocol, a->protocol, b->has_protocol, b->protocol) &&
	       SAME_OPTIONAL_SLICE(a->has_name, a->name, b->has_name, b->name) &&
	       SAME_OPTIONAL(a->has_kind, a->kind, b->has_kind, b->kind) &&
	       SAME_OPTIONAL(a->has_client_timeout, a->client_timeout_ms, b->has_client_timeout,
	                     b->client_timeout_ms) &&
	       same_fd_metadata(&a->fd, &b->fd);
}

static bool
inside_request(const union decoded *m, const uint8_t *bytes, size_t len)
{
	return slice_inside(m->request.name, bytes, len);
}

static int
decode_response(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_response_metadata_decode(bytes, len, &m->response, why);
}

static int
encode_response(const union decoded *m, struct rfd_buf *out)
{
	return rfd_response_metadata_encode(&m->response, out);
}

static int
decode_stream_payload(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_stream_payload_metadata_decode(bytes, len, &m->response, why);
}

static int
encode_stream_payload(const union decoded *m, struct rfd_buf *out)
{
	return rfd_stream_payload_metadata_encode(&m->response, out);
}

static bool
same_response(const union decoded *da, const union decoded *db)
{
	const struct rfd_response_metadata *a = &da->response, *b = &db->response;

	return a->payload_kind == b->payload_kind &&
	       SAME_OPTIONAL_SLICE(a->has_ex_name, a->ex_name, b->has_ex_name, b->ex_name) &&
	       SAME_OPTIONAL_SLICE(a->has_ex_what, a->ex_what, b->has_ex_what, b->ex_what) &&
	       SAME_OPTIONAL_SLICE(a->has_extensions, a->extensions, b->has_extensions,
	                           b->extensions) &&
	       same_fd_metadata(&a->fd, &b->fd);
}

static bool
inside_response(const union decoded *m, const uint8_t *bytes, size_t len)
{
	return slice_inside(m->response.ex_name, bytes, len) &&
	       slice_inside(m->response.ex_what, bytes, len) &&
	       slice_inside(m->response.extensions, bytes, len);
}

static int
decode_error(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_response_error_decode(bytes, len, &m->error, why);
}

static int
encode_error(const union decoded *m, struct rfd_buf *out)
{
	return rfd_response_error_encode(&m->error, out);
}

static bool
same_error(const union decoded *da, const union decoded *db)
{
	const struct rfd_response_error *a = &da->error, *b = &db->error;

	return SAME_OPTIONAL_SLICE(a->has_name, a->name, b->has_name, b->name) &&
	       SAME_OPTIONAL_SLICE(a->has_what, a->what, b->has_what, b->what) &&
	       SAME_OPTIONAL(a->has_category, a->category, b->has_category, b->category) &&
	       SAME_OPTIONAL(a->has_code, a->code, b->has_code, b->code);
}

static bool
inside_error(const union decoded *m, const uint8_t *bytes, size_t len)
{
	return slice_inside(m->error.name, bytes, len) && slice_inside(m->error.what, bytes, len);
}

static int
decode_setup(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_setup_metadata_decode(bytes, len, &m->setup, why);
}

static int
encode_setup(const union decoded *m, struct rfd_buf *out)
{
	return rfd_setup_metadata_encode(&m->setup, out);
}

static bool
same_setup(const union decoded *da, const union decoded *db)
{
	const struct rfd_setup_metadata *a = &da->setup, *b = &db->setup;

	return SAME_OPTIONAL(a->has_min_version, a->min_version, b->has_min_version,
	                     b->min_version) &&
	       SAME_OPTIONAL(a->has_max_version, a->max_version, b->has_max_version,
	                     b->max_version) &&
	       SAME_OPTIONAL_SLICE(a->has_agent, a->agent, b->has_agent, b->agent) &&
	       SAME_OPTIONAL_SLICE(a->has_extensions, a->extensions, b->has_extensions,
	                           b->extensions) &&
	       a->encode_metadata_using_binary == b->encode_metadata_using_binary;
}

static bool
inside_setup(const union decoded *m, const uint8_t *bytes, size_t len)
{
	return slice_inside(m->setup.agent, bytes, len) &&
	       slice_inside(m->setup.extensions, bytes, len);
}

static int
decode_push(const uint8_t *bytes, size_t len, union decoded *m, const char **why)
{
	return rfd_server_push_decode(bytes, len, &m->push, why);
}

static int
encode_push(const union decoded *m, struct rfd_buf *out)
{
	return rfd_server_push_encode(&m->push, out);
}

static bool
same_push(const union decoded *da, const union decoded *db)
{
	const struct rfd_server_push *a = &da->push, *b = &db->push;

	return a->kind == b->kind &&
	       SAME_OPTIONAL(a->has_version, a->version, b->has_version, b->version);
}

static bool
inside_nothing(const union decoded *m, const uint8_t *bytes, size_t len)
{
	return true;
}

static const struct kind kinds[] = {
    [SELECT_REQUEST] = {"RequestRpcMetadata", decode_request, encode_request, same_request,
                        inside_request},
    [SELECT_RESPONSE] = {"ResponseRpcMetadata", decode_response, encode_response, same_response,
                         inside_response},
    [SELECT_STREAM_PAYLOAD] = {"StreamPayloadMetadata", decode_stream_payload,
                               encode_stream_payload, same_response, inside_response},
    [SELECT_ERROR] = {"ResponseRpcError", decode_error, encode_error, same_error, inside_error},
    [SELECT_SETUP] = {"RequestSetupMetadata", decode_setup, encode_setup, same_setup, inside_setup},
    [SELECT_SERVER_PUSH] = {"ServerPushMetadata", decode_push, encode_push, same_push,
                            inside_nothing},
};

static void
check_kind(const struct kind *k, const uint8_t *bytes, size_t len)
{
	union decoded first, second;
	struct rfd_buf once, twice;
	const char *why = NULL;
	int r;

	r = k->decode(bytes, len, &first, &why);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG && why, "%s: decode failed with %d and no reason", k->name,
		           r);
		return;
	}
	FUZZ_CHECK(why == NULL, "%s: decoded, yet with a reason: %s", k->name, why);
	FUZZ_CHECK(k->inside(&first, bytes, len), "%s: a decoded string points outside the input",
	           k->name);

	rfd_buf_init(&once);
	rfd_buf_init(&twice);
	r = k->encode(&first, &once);
	FUZZ_CHECK(r == 0, "%s: what decoded does not encode: %d", k->name, r);
	r = k->decode(once.data, once.len, &second, &why);
	FUZZ_CHECK(r == 0, "%s: the encoding does not decode: %s", k->name, why ? why : "?");
	FUZZ_CHECK(k->same(&first, &second), "%s: decode(encode(m)) differs from m", k->name);
	r = k->encode(&second, &twice);
	FUZZ_CHECK(r == 0 && twice.len == once.len && memcmp(twice.data, once.data, once.len) == 0,
	           "%s: encoding is not stable", k->name);
	rfd_buf_free(&once);
	rfd_buf_free(&twice);
}

/* ---- Any struct, value by value ---- */

/*
 * Reads a value with the reader, writes it with the writer, and appends a
 * record of it to @trace, so that two walks can be compared.
 */
struct walk {
	struct rfd_cr r;
	struct rfd_cw w;
	struct rfd_buf *trace;
};

static void
trace_put(struct walk *k, const void *bytes, size_t len)
{
	FUZZ_CHECK(rfd_buf_append(k->trace, bytes, len) == 0, "out of memory");
}

static int walk_value(struct walk *k, uint8_t type);

static int
walk_struct(struct walk *k)
{
	struct rfd_cr_field f;
	int ret = rfd_cr_struct_begin(&k->r);

	if (ret < 0)
		return ret;
	rfd_cw_struct_begin(&k->w);
	trace_put(k, "{", 1);
	while ((ret = rfd_cr_field(&k->r, &f)) > 0) {
		trace_put(k, &f.type, sizeof(f.type));
		trace_put(k, &f.id, sizeof(f.id));
		if (f.type == RFD_CT_BOOL) {
			trace_put(k, &f.bool_value, sizeof(f.bool_value));
			rfd_cw_field_bool(&k->w, f.id, f.bool_value);
			continue;
		}
		rfd_cw_field(&k->w, f.type, f.id);
		ret = walk_value(k, f.type);
		if (ret < 0)
			return ret;
	}
	if (ret < 0)
		return ret;
	rfd_cw_struct_end(&k->w);
	trace_put(k, "}", 1);
	return 0;
}

static int
walk_elements(struct walk *k, uint8_t type, uint32_t n)
{
	int ret = 0;

	trace_put(k, &type, sizeof(type));
	trace_put(k, &n, sizeof(n));
	for (uint32_t i = 0; ret >= 0 && i < n; i++)
		ret = walk_value(k, type);
	return ret;
}

static int
walk_map(struct walk *k)
{
	uint8_t key_type, value_type;
	uint32_t n;
	int ret = rfd_cr_map_begin(&k->r, &key_type, &value_type, &n);

	if (ret < 0)
		return ret;
	rfd_cw_map_begin(&k->w, key_type, value_type, n);
	trace_put(k, &key_type, sizeof(key_type));
	trace_put(k, &value_type, sizeof(value_type));
	trace_put(k, &n, sizeof(n));
	for (uint32_t i = 0; ret >= 0 && i < n; i++) {
		ret = walk_value(k, key_type);
		if (ret >= 0)
			ret = walk_value(k, value_type);
	}
	return ret < 0 ? ret : rfd_cr_map_end(&k->r);
}

static int
walk_collection(struct walk *k, uint8_t kind)
{
	uint8_t elem_type;
	uint32_t n;
	int ret;

	if (kind == RFD_CT_LIST) {
		ret = rfd_cr_list_begin(&k->r, &elem_type, &n);
		if (ret < 0)
			return ret;
		rfd_cw_list_begin(&k->w, elem_type, n);
		ret = walk_elements(k, elem_type, n);
		return ret < 0 ? ret : rfd_cr_list_end(&k->r);
	}
	ret = rfd_cr_set_begin(&k->r, &elem_type, &n);
	if (ret < 0)
		return ret;
	rfd_cw_set_begin(&k->w, elem_type, n);
	ret = walk_elements(k, elem_type, n);
	return ret < 0 ? ret : rfd_cr_set_end(&k->r);
}

static int
walk_scalar(struct walk *k, uint8_t type)
{
	union {
		bool b;
		int8_t i8;
		int16_t i16;
		int32_t i32;
		int64_t i64;
		double d;
		float f;
	} v;
	int ret;

	memset(&v, 0, sizeof(v));
	switch (type) {
	case RFD_CT_BOOL:
		ret = rfd_cr_bool(&k->r, &v.b);
		rfd_cw_bool(&k->w, v.b);
		break;
	case RFD_CT_BYTE:
		ret = rfd_cr_byte(&k->r, &v.i8);
		rfd_cw_byte(&k->w, v.i8);
		break;
	case RFD_CT_I16:
		ret = rfd_cr_i16(&k->r, &v.i16);
		rfd_cw_i16(&k->w, v.i16);
		break;
	case RFD_CT_I32:
		ret = rfd_cr_i32(&k->r, &v.i32);
		rfd_cw_i32(&k->w, v.i32);
		break;
	case RFD_CT_I64:
		ret = rfd_cr_i64(&k->r, &v.i64);
		rfd_cw_i64(&k->w, v.i64);
		break;
	case RFD_CT_DOUBLE:
		ret = rfd_cr_double(&k->r, &v.d);
		rfd_cw_double(&k->w, v.d);
		break;
	case RFD_CT_FLOAT:
		ret = rfd_cr_float(&k->r, &v.f);
		rfd_cw_float(&k->w, v.f);
		break;
	default:
		fuzz_fail("the reader handed out element type %u", type);
	}
	trace_put(k, &v, sizeof(v));
	return ret;
}

static int
walk_value(struct walk *k, uint8_t type)
{
	struct rfd_slice s;
	int ret;

	switch (type) {
	case RFD_CT_BINARY:
		ret = rfd_cr_binary(&k->r, &s);
		if (ret < 0)
			return ret;
		rfd_cw_binary(&k->w, s.ptr, s.len);
		trace_put(k, &s.len, sizeof(s.len));
		trace_put(k, s.ptr, s.len);
		return 0;
	case RFD_CT_LIST:
	case RFD_CT_SET:
		return walk_collection(k, type);
	case RFD_CT_MAP:
		return walk_map(k);
	case RFD_CT_STRUCT:
		return walk_struct(k);
	default:
		return walk_scalar(k, type);
	}
}

/* Walk the struct in @bytes: 0 with its re-encoding in @out and its record in @trace. */
static int
walk(const uint8_t *bytes, size_t len, struct rfd_buf *out, struct rfd_buf *trace)
{
	struct walk k = {.trace = trace};
	int ret;

	rfd_cr_init(&k.r, bytes, len);
	rfd_cw_init(&k.w, out);
	ret = walk_struct(&k);
	if (ret >= 0)
		ret = rfd_cr_finish(&k.r);
	if (ret < 0) {
		FUZZ_CHECK(ret == -EBADMSG && rfd_cr_error(&k.r), "reader failed without a reason");
		return ret;
	}
	ret = rfd_cw_finish(&k.w);
	FUZZ_CHECK(ret == 0, "writer refused what the reader accepted: %d", ret);
	return 0;
}

static int
skip(const uint8_t *bytes, size_t len, uint8_t type)
{
	struct rfd_cr r;
	int ret;

	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_skip(&r, type);
	FUZZ_CHECK(ret <= 0, "skip returned %d", ret);
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	FUZZ_CHECK(ret == 0 || rfd_cr_error(&r), "skip failed without a reason");
	return ret;
}

static void
check_walk(const uint8_t *bytes, size_t len)
{
	struct rfd_buf out1, out2, trace1, trace2;
	int r;

	rfd_buf_init(&out1);
	rfd_buf_init(&out2);
	rfd_buf_init(&trace1);
	rfd_buf_init(&trace2);
	r = walk(bytes, len, &out1, &trace1);
	FUZZ_CHECK((r == 0) == (skip(bytes, len, RFD_CT_STRUCT) == 0),
	           "reading value by value and skipping disagree");
	if (r == 0) {
		r = walk(out1.data, out1.len, &out2, &trace2);
		FUZZ_CHECK(r == 0, "the writer's output does not read back");
		FUZZ_CHECK(trace1.len == trace2.len &&
		               memcmp(trace1.data, trace2.data, trace1.len) == 0,
		           "the writer's output reads back to other values");
		FUZZ_CHECK(out1.len == out2.len && memcmp(out1.data, out2.data, out1.len) == 0,
		           "writing what was read is not stable");
	}
	rfd_buf_free(&out1);
	rfd_buf_free(&out2);
	rfd_buf_free(&trace1);
	rfd_buf_free(&trace2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned select;

	if (size == 0)
		return 0;
	select = data[0] % SELECT_COUNT;
	data++;
	size--;

	if (select == SELECT_SKIP) {
		if (size > 0)
			skip(data + 1, size - 1, data[0] & 0x0f);
	} else if (select == SELECT_WALK) {
		check_walk(data, size);
	} else {
		check_kind(&kinds[select], data, size);
	}
	FUZZ_CHECK(fuzz_alloc_live_blocks() == 0, "%zu blocks (%zu bytes) leaked",
	           fuzz_alloc_live_blocks(), fuzz_alloc_live_bytes());
	return 0;
}
