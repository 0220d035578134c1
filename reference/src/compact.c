/* SPDX-License-Identifier: MIT */
#include "compact.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

enum {
	VARINT_MAX_BYTES_16 = 3,
	VARINT_MAX_BYTES_32 = 5,
	VARINT_MAX_BYTES_64 = 10,
	FIELD_DELTA_MAX = 15,
	COLLECTION_SHORT_SIZE_MAX = 14,
	COLLECTION_LONG_FORM = 0xF0,
	COLLECTION_LONG_SIZE = 15,
};

static bool
is_value_type(unsigned type)
{
	return type >= RFD_CT_BOOL_TRUE && type <= RFD_CT_FLOAT;
}

static uint8_t
normalize_bool(uint8_t type)
{
	return type == RFD_CT_BOOL_FALSE ? RFD_CT_BOOL : type;
}

/* Zigzag without shifting a negative value: n >= 0 maps to 2n, n < 0 to -2n - 1. */
static uint32_t
zigzag32(int32_t n)
{
	return n < 0 ? ~((uint32_t)n << 1) : (uint32_t)n << 1;
}

static uint64_t
zigzag64(int64_t n)
{
	return n < 0 ? ~((uint64_t)n << 1) : (uint64_t)n << 1;
}

static int32_t
unzigzag32(uint32_t u)
{
	return (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
}

static int64_t
unzigzag64(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Writer */

static void
put(struct rfd_cw *w, const void *bytes, size_t n)
{
	int r;

	assert(w);
	if (w->error)
		return;
	r = rfd_buf_append(w->out, bytes, n);
	if (r < 0)
		w->error = r;
}

static void
put_byte(struct rfd_cw *w, uint8_t byte)
{
	put(w, &byte, 1);
}

static void
put_varint(struct rfd_cw *w, uint64_t v)
{
	uint8_t bytes[VARINT_MAX_BYTES_64];
	size_t n = 0;

	while (v >= 0x80) {
		bytes[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	bytes[n++] = (uint8_t)v;
	put(w, bytes, n);
}

static void
misuse(struct rfd_cw *w)
{
	if (!w->error)
		w->error = -EINVAL;
}

static void
put_field_header(struct rfd_cw *w, uint8_t type, int16_t id)
{
	int16_t last;

	if (w->error)
		return;
	if (w->depth == 0) {
		misuse(w);
		return;
	}

	last = w->last_id[w->depth];
	if (id > last && id - last <= FIELD_DELTA_MAX) {
		put_byte(w, (uint8_t)((id - last) << 4 | type));
	} else {
		put_byte(w, type);
		put_varint(w, zigzag32(id));
	}
	w->last_id[w->depth] = id;
}

static void
put_collection_header(struct rfd_cw *w, enum rfd_compact_type elem_type, uint32_t n)
{
	uint8_t type = normalize_bool((uint8_t)elem_type);

	if (!is_value_type(type) || n > INT32_MAX) {
		misuse(w);
		return;
	}
	if (n <= COLLECTION_SHORT_SIZE_MAX) {
		put_byte(w, (uint8_t)(n << 4 | type));
	} else {
		put_byte(w, COLLECTION_LONG_FORM | type);
		put_varint(w, n);
	}
}

void
rfd_cw_init(struct rfd_cw *w, struct rfd_buf *out)
{
	assert(w);
	assert(out);
	memset(w, 0, sizeof(*w));
	w->out = out;
}

int
rfd_cw_finish(struct rfd_cw *w)
{
	assert(w);
	if (w->error)
		return w->error;
	return w->depth == 0 ? 0 : -EINVAL;
}

void
rfd_cw_struct_begin(struct rfd_cw *w)
{
	assert(w);
	if (w->error)
		return;
	if (w->depth == RFD_COMPACT_MAX_DEPTH) {
		misuse(w);
		return;
	}
	w->depth++;
	w->last_id[w->depth] = 0;
}

void
rfd_cw_struct_end(struct rfd_cw *w)
{
	assert(w);
	if (w->error)
		return;
	if (w->depth == 0) {
		misuse(w);
		return;
	}
	put_byte(w, RFD_CT_STOP);
	w->depth--;
}

void
rfd_cw_field(struct rfd_cw *w, enum rfd_compact_type type, int16_t id)
{
	assert(w);
	if (!is_value_type(type) || type == RFD_CT_BOOL_TRUE || type == RFD_CT_BOOL_FALSE) {
		misuse(w);
		return;
	}
	put_field_header(w, (uint8_t)type, id);
}

void
rfd_cw_field_bool(struct rfd_cw *w, int16_t id, bool value)
{
	assert(w);
	put_field_header(w, value ? RFD_CT_BOOL_TRUE : RFD_CT_BOOL_FALSE, id);
}

void
rfd_cw_bool(struct rfd_cw *w, bool value)
{
	put_byte(w, value ? RFD_CT_BOOL_TRUE : RFD_CT_BOOL_FALSE);
}

void
rfd_cw_byte(struct rfd_cw *w, int8_t value)
{
	put_byte(w, (uint8_t)value);
}

void
rfd_cw_i16(struct rfd_cw *w, int16_t value)
{
	put_varint(w, zigzag32(value));
}

void
rfd_cw_i32(struct rfd_cw *w, int32_t value)
{
	put_varint(w, zigzag32(value));
}

void
rfd_cw_i64(struct rfd_cw *w, int64_t value)
{
	put_varint(w, zigzag64(value));
}

void
rfd_cw_double(struct rfd_cw *w, double value)
{
	uint64_t bits;
	uint8_t bytes[8];

	memcpy(&bits, &value, sizeof(bits));
	for (int i = 0; i < 8; i++)
		bytes[i] = (uint8_t)(bits >> (56 - 8 * i));
	put(w, bytes, sizeof(bytes));
}

void
rfd_cw_float(struct rfd_cw *w, float value)
{
	uint32_t bits;
	uint8_t bytes[4];

	memcpy(&bits, &value, sizeof(bits));
	for (int i = 0; i < 4; i++)
		bytes[i] = (uint8_t)(bits >> (24 - 8 * i));
	put(w, bytes, sizeof(bytes));
}

void
rfd_cw_binary(struct rfd_cw *w, const void *bytes, size_t len)
{
	assert(w);
	if (len > INT32_MAX || (len > 0 && !bytes)) {
		misuse(w);
		return;
	}
	put_varint(w, len);
	put(w, bytes, len);
}

void
rfd_cw_string(struct rfd_cw *w, const char *text)
{
	assert(w);
	if (!text) {
		misuse(w);
		return;
	}
	rfd_cw_binary(w, text, strlen(text));
}

void
rfd_cw_list_begin(struct rfd_cw *w, enum rfd_compact_type elem_type, uint32_t n)
{
	put_collection_header(w, elem_type, n);
}

void
rfd_cw_set_begin(struct rfd_cw *w, enum rfd_compact_type elem_type, uint32_t n)
{
	put_collection_header(w, elem_type, n);
}

void
rfd_cw_map_begin(struct rfd_cw *w, enum rfd_compact_type key_type, enum rfd_compact_type value_type,
                 uint32_t n)
{
	uint8_t key = normalize_bool((uint8_t)key_type);
	uint8_t value = normalize_bool((uint8_t)value_type);

	assert(w);
	if (n > INT32_MAX || (n > 0 && (!is_value_type(key) || !is_value_type(value)))) {
		misuse(w);
		return;
	}
	if (n == 0) {
		put_byte(w, 0);
		return;
	}
	put_varint(w, n);
	put_byte(w, (uint8_t)(key << 4 | value));
}

void
rfd_cw_field_i32(struct rfd_cw *w, int16_t id, int32_t value)
{
	rfd_cw_field(w, RFD_CT_I32, id);
	rfd_cw_i32(w, value);
}

void
rfd_cw_field_i64(struct rfd_cw *w, int16_t id, int64_t value)
{
	rfd_cw_field(w, RFD_CT_I64, id);
	rfd_cw_i64(w, value);
}

void
rfd_cw_field_binary(struct rfd_cw *w, int16_t id, const void *bytes, size_t len)
{
	rfd_cw_field(w, RFD_CT_BINARY, id);
	rfd_cw_binary(w, bytes, len);
}

void
rfd_cw_field_string(struct rfd_cw *w, int16_t id, const char *text)
{
	rfd_cw_field(w, RFD_CT_BINARY, id);
	rfd_cw_string(w, text);
}

/* Reader */

void
rfd_cr_init(struct rfd_cr *r, const uint8_t *bytes, size_t len)
{
	assert(r);
	assert(bytes || len == 0);
	memset(r, 0, sizeof(*r));
	r->p = bytes;
	r->end = bytes ? bytes + len : bytes;
}

const char *
rfd_cr_error(const struct rfd_cr *r)
{
	assert(r);
	return r->why;
}

int
rfd_cr_fail(struct rfd_cr *r, const char *why)
{
	assert(r);
	assert(why);
	if (!r->why)
		r->why = why;
	return -EBADMSG;
}

size_t
rfd_cr_remaining(const struct rfd_cr *r)
{
	assert(r);
	return (size_t)(r->end - r->p);
}

int
rfd_cr_finish(struct rfd_cr *r)
{
	assert(r);
	if (r->why)
		return -EBADMSG;
	if (r->depth > 0)
		return rfd_cr_fail(r, "a struct or container was not ended");
	if (rfd_cr_remaining(r) > 0)
		return rfd_cr_fail(r, "trailing bytes after the struct");
	return 0;
}

/* Consume @n bytes, returning where they start, or fail with @why. */
static int
take(struct rfd_cr *r, size_t n, const char *why, const uint8_t **bytes)
{
	*bytes = NULL;
	if (r->why)
		return -EBADMSG;
	if (rfd_cr_remaining(r) < n)
		return rfd_cr_fail(r, why);
	*bytes = r->p;
	r->p += n;
	return 0;
}

static int
read_varint(struct rfd_cr *r, unsigned max_bytes, unsigned value_bits, uint64_t *out)
{
	uint64_t value = 0;
	const uint8_t *p;
	int ret;

	*out = 0;
	for (unsigned i = 0; i < max_bytes; i++) {
		ret = take(r, 1, "truncated varint", &p);
		if (ret < 0)
			return ret;
		if (i == VARINT_MAX_BYTES_64 - 1 && (*p & 0x7f) > 1)
			return rfd_cr_fail(r, "varint value out of range for its type");
		value |= (uint64_t)(*p & 0x7f) << (7 * i);
		if (*p & 0x80)
			continue;
		if (i > 0 && *p == 0)
			return rfd_cr_fail(r, "varint with a redundant trailing zero byte");
		if (value_bits < 64 && value >> value_bits)
			return rfd_cr_fail(r, "varint value out of range for its type");
		*out = value;
		return 0;
	}
	return rfd_cr_fail(r, "varint longer than its type allows");
}

/* A container size or binary length: a plain (not zigzag) varint in [0, INT32_MAX]. */
static int
read_size(struct rfd_cr *r, uint32_t *n)
{
	uint64_t value;
	int ret;

	*n = 0;
	ret = read_varint(r, VARINT_MAX_BYTES_32, 32, &value);
	if (ret < 0)
		return ret;
	if (value > INT32_MAX)
		return rfd_cr_fail(r, "negative size");
	*n = (uint32_t)value;
	return 0;
}

/* The fewest bytes one value of @type can take. */
static size_t
min_encoded_size(uint8_t type)
{
	switch (type) {
	case RFD_CT_DOUBLE:
		return 8;
	case RFD_CT_FLOAT:
		return 4;
	default:
		return 1;
	}
}

static int
push(struct rfd_cr *r, uint8_t kind)
{
	if (r->why)
		return -EBADMSG;
	if (r->depth == RFD_COMPACT_MAX_DEPTH)
		return rfd_cr_fail(r, "structs and containers nested too deeply");
	r->depth++;
	r->open[r->depth] = kind;
	r->last_id[r->depth] = 0;
	return 0;
}

static int
pop(struct rfd_cr *r, uint8_t kind)
{
	if (r->why)
		return -EBADMSG;
	if (r->depth == 0 || r->open[r->depth] != kind)
		return rfd_cr_fail(r, "end of a struct or container that is not open");
	r->depth--;
	return 0;
}

int
rfd_cr_struct_begin(struct rfd_cr *r)
{
	assert(r);
	return push(r, RFD_CT_STRUCT);
}

static int
read_field_id(struct rfd_cr *r, unsigned delta, int16_t *id)
{
	int32_t next;

	if (delta == 0)
		return rfd_cr_i16(r, id);
	next = (int32_t)r->last_id[r->depth] + (int32_t)delta;
	if (next > INT16_MAX)
		return rfd_cr_fail(r, "field id delta goes past 32767");
	*id = (int16_t)next;
	return 0;
}

int
rfd_cr_field(struct rfd_cr *r, struct rfd_cr_field *f)
{
	const uint8_t *header;
	uint8_t type;
	int ret;

	assert(r);
	assert(f);
	memset(f, 0, sizeof(*f));
	if (r->why)
		return -EBADMSG;
	if (r->depth == 0 || r->open[r->depth] != RFD_CT_STRUCT)
		return rfd_cr_fail(r, "field read outside a struct");
	ret = take(r, 1, "truncated struct: no stop byte", &header);
	if (ret < 0)
		return ret;

	type = *header & 0x0f;
	if (type == RFD_CT_STOP) {
		if (*header != RFD_CT_STOP)
			return rfd_cr_fail(r, "stop byte with a field id delta");
		return pop(r, RFD_CT_STRUCT);
	}
	if (!is_value_type(type))
		return rfd_cr_fail(r, "unknown field type");
	ret = read_field_id(r, *header >> 4, &f->id);
	if (ret < 0) {
		memset(f, 0, sizeof(*f));
		return ret;
	}

	r->last_id[r->depth] = f->id;
	f->type = normalize_bool(type);
	f->bool_value = type == RFD_CT_BOOL_TRUE;
	return 1;
}

int
rfd_cr_skip_field(struct rfd_cr *r, const struct rfd_cr_field *f)
{
	assert(r);
	assert(f);
	if (r->why)
		return -EBADMSG;
	if (f->type == RFD_CT_BOOL)
		return 0;
	return rfd_cr_skip(r, f->type);
}

static int
read_collection_header(struct rfd_cr *r, uint8_t kind, uint8_t *elem_type, uint32_t *n)
{
	const uint8_t *header;
	uint32_t size;
	uint8_t type;
	int ret;

	*elem_type = RFD_CT_STOP;
	*n = 0;
	ret = take(r, 1, "truncated list or set header", &header);
	if (ret < 0)
		return ret;
	size = *header >> 4;
	type = *header & 0x0f;
	if (size == COLLECTION_LONG_SIZE) {
		ret = read_size(r, &size);
		if (ret < 0)
			return ret;
	}
	if (!is_value_type(type))
		return rfd_cr_fail(r, "unknown list or set element type");
	type = normalize_bool(type);
	if (size > rfd_cr_remaining(r) / min_encoded_size(type))
		return rfd_cr_fail(r, "list or set size larger than the bytes left");
	ret = push(r, kind);
	if (ret < 0)
		return ret;
	*elem_type = type;
	*n = size;
	return 0;
}

int
rfd_cr_list_begin(struct rfd_cr *r, uint8_t *elem_type, uint32_t *n)
{
	assert(r);
	assert(elem_type);
	assert(n);
	return read_collection_header(r, RFD_CT_LIST, elem_type, n);
}

int
rfd_cr_set_begin(struct rfd_cr *r, uint8_t *elem_type, uint32_t *n)
{
	assert(r);
	assert(elem_type);
	assert(n);
	return read_collection_header(r, RFD_CT_SET, elem_type, n);
}

int
rfd_cr_map_begin(struct rfd_cr *r, uint8_t *key_type, uint8_t *value_type, uint32_t *n)
{
	const uint8_t *types;
	uint32_t size;
	uint8_t key, value;
	int ret;

	assert(r);
	assert(key_type);
	assert(value_type);
	assert(n);
	*key_type = *value_type = RFD_CT_STOP;
	*n = 0;
	ret = read_size(r, &size);
	if (ret < 0)
		return ret;
	if (size == 0)
		return push(r, RFD_CT_MAP);

	ret = take(r, 1, "truncated map header", &types);
	if (ret < 0)
		return ret;
	key = *types >> 4;
	value = *types & 0x0f;
	if (!is_value_type(key) || !is_value_type(value))
		return rfd_cr_fail(r, "unknown map key or value type");
	key = normalize_bool(key);
	value = normalize_bool(value);
	if (size > rfd_cr_remaining(r) / (min_encoded_size(key) + min_encoded_size(value)))
		return rfd_cr_fail(r, "map size larger than the bytes left");
	ret = push(r, RFD_CT_MAP);
	if (ret < 0)
		return ret;
	*key_type = key;
	*value_type = value;
	*n = size;
	return 0;
}

int
rfd_cr_list_end(struct rfd_cr *r)
{
	assert(r);
	return pop(r, RFD_CT_LIST);
}

int
rfd_cr_set_end(struct rfd_cr *r)
{
	assert(r);
	return pop(r, RFD_CT_SET);
}

int
rfd_cr_map_end(struct rfd_cr *r)
{
	assert(r);
	return pop(r, RFD_CT_MAP);
}

int
rfd_cr_bool(struct rfd_cr *r, bool *value)
{
	const uint8_t *p;
	int ret;

	assert(r);
	assert(value);
	*value = false;
	ret = take(r, 1, "truncated bool", &p);
	if (ret < 0)
		return ret;
	if (*p > RFD_CT_BOOL_FALSE)
		return rfd_cr_fail(r, "bool element is not 0, 1 or 2");
	*value = *p == RFD_CT_BOOL_TRUE;
	return 0;
}

int
rfd_cr_byte(struct rfd_cr *r, int8_t *value)
{
	const uint8_t *p;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = take(r, 1, "truncated byte", &p);
	if (ret < 0)
		return ret;
	*value = (int8_t)*p;
	return 0;
}

int
rfd_cr_i16(struct rfd_cr *r, int16_t *value)
{
	uint64_t u;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = read_varint(r, VARINT_MAX_BYTES_16, 16, &u);
	if (ret < 0)
		return ret;
	*value = (int16_t)unzigzag32((uint32_t)u);
	return 0;
}

int
rfd_cr_i32(struct rfd_cr *r, int32_t *value)
{
	uint64_t u;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = read_varint(r, VARINT_MAX_BYTES_32, 32, &u);
	if (ret < 0)
		return ret;
	*value = unzigzag32((uint32_t)u);
	return 0;
}

int
rfd_cr_i64(struct rfd_cr *r, int64_t *value)
{
	uint64_t u;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = read_varint(r, VARINT_MAX_BYTES_64, 64, &u);
	if (ret < 0)
		return ret;
	*value = unzigzag64(u);
	return 0;
}

int
rfd_cr_double(struct rfd_cr *r, double *value)
{
	const uint8_t *p;
	uint64_t bits;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = take(r, 8, "truncated double", &p);
	if (ret < 0)
		return ret;
	bits = rfd_get_u64(p);
	memcpy(value, &bits, sizeof(bits));
	return 0;
}

int
rfd_cr_float(struct rfd_cr *r, float *value)
{
	const uint8_t *p;
	uint32_t bits;
	int ret;

	assert(r);
	assert(value);
	*value = 0;
	ret = take(r, 4, "truncated float", &p);
	if (ret < 0)
		return ret;
	bits = rfd_get_u32(p);
	memcpy(value, &bits, sizeof(bits));
	return 0;
}

int
rfd_cr_binary(struct rfd_cr *r, struct rfd_slice *value)
{
	uint32_t len;
	int ret;

	assert(r);
	assert(value);
	value->ptr = NULL;
	value->len = 0;
	ret = read_size(r, &len);
	if (ret < 0)
		return ret;
	ret = take(r, len, "binary length larger than the bytes left", &value->ptr);
	if (ret < 0)
		return ret;
	value->len = len;
	return 0;
}

static int
skip_struct(struct rfd_cr *r)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0)
		ret = rfd_cr_skip_field(r, &f);
	return ret;
}

static int
skip_collection(struct rfd_cr *r, uint8_t kind)
{
	uint8_t elem_type;
	uint32_t n;
	int ret;

	ret = read_collection_header(r, kind, &elem_type, &n);
	for (uint32_t i = 0; ret >= 0 && i < n; i++)
		ret = rfd_cr_skip(r, elem_type);
	if (ret < 0)
		return ret;
	return pop(r, kind);
}

static int
skip_map(struct rfd_cr *r)
{
	uint8_t key_type, value_type;
	uint32_t n;
	int ret;

	ret = rfd_cr_map_begin(r, &key_type, &value_type, &n);
	for (uint32_t i = 0; ret >= 0 && i < n; i++) {
		ret = rfd_cr_skip(r, key_type);
		if (ret >= 0)
			ret = rfd_cr_skip(r, value_type);
	}
	if (ret < 0)
		return ret;
	return rfd_cr_map_end(r);
}

int
rfd_cr_skip(struct rfd_cr *r, uint8_t type)
{
	union {
		bool b;
		int8_t i8;
		int16_t i16;
		int32_t i32;
		int64_t i64;
		double d;
		float f;
		struct rfd_slice s;
	} ignored;

	assert(r);
	switch (type) {
	case RFD_CT_BOOL_TRUE:
	case RFD_CT_BOOL_FALSE:
		return rfd_cr_bool(r, &ignored.b);
	case RFD_CT_BYTE:
		return rfd_cr_byte(r, &ignored.i8);
	case RFD_CT_I16:
		return rfd_cr_i16(r, &ignored.i16);
	case RFD_CT_I32:
		return rfd_cr_i32(r, &ignored.i32);
	case RFD_CT_I64:
		return rfd_cr_i64(r, &ignored.i64);
	case RFD_CT_DOUBLE:
		return rfd_cr_double(r, &ignored.d);
	case RFD_CT_FLOAT:
		return rfd_cr_float(r, &ignored.f);
	case RFD_CT_BINARY:
		return rfd_cr_binary(r, &ignored.s);
	case RFD_CT_LIST:
	case RFD_CT_SET:
		return skip_collection(r, type);
	case RFD_CT_MAP:
		return skip_map(r);
	case RFD_CT_STRUCT:
		return skip_struct(r);
	default:
		return rfd_cr_fail(r, "skip of an unknown type");
	}
}
