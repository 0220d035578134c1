/* SPDX-License-Identifier: MIT */
/*
 * The Compact protocol codec.  Byte vectors were worked out by hand from
 * fbthrift's CompactProtocol-inl.h and, except for double and float (which
 * Apache Thrift writes little-endian and fbthrift big-endian), checked
 * against Apache Thrift 0.17's Python TCompactProtocol.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "buf.h"
#include "compact.h"
#include "testutil.h"

enum { HEX_MAX = 512 };

#define CHECK_HEX(bytes, len, hex) check_hex(__FILE__, __LINE__, (bytes), (len), (hex))
#define CHECK_WHY(why, want)       check_why(__FILE__, __LINE__, (why), (want))

static void
check_hex(const char *file, int line, const uint8_t *got, size_t len, const char *hex)
{
	uint8_t want[HEX_MAX];
	char text[3 * HEX_MAX + 1] = "";
	size_t n = rfd_test_hex(hex, want, sizeof(want));

	if (n == len && (n == 0 || memcmp(got, want, n) == 0))
		return;
	for (size_t i = 0; i < len && i < HEX_MAX; i++)
		snprintf(text + 3 * i, 4, "%02x ", got[i]);
	rfd_test_fail(file, line, "got %zu bytes [%s], want [%s]", len, text, hex);
}

static void
check_why(const char *file, int line, const char *why, const char *want)
{
	if (!why || strcmp(why, want) != 0)
		rfd_test_fail(file, line, "reason \"%s\", want \"%s\"", why ? why : "(none)", want);
}

/* Reads one struct by skipping it whole; returns 0 or -EBADMSG with *why. */
static int
skip_struct_bytes(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_cr r;
	int ret;

	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_skip(&r, RFD_CT_STRUCT);
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	*why = rfd_cr_error(&r);
	return ret;
}

static int
skip_hex(const char *hex, uint8_t type, const char **why)
{
	uint8_t bytes[HEX_MAX];
	size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));
	struct rfd_cr r;
	int ret;

	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_skip(&r, type);
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	*why = rfd_cr_error(&r);
	return ret;
}

/* 2. Varints and zigzag */

static const struct {
	int32_t value;
	const char *hex;
} i32_vectors[] = {
    {0, "00"},
    {1, "02"},
    {-1, "01"},
    {63, "7e"},
    {64, "80 01"},
    {-64, "7f"},
    {-65, "81 01"},
    {127, "fe 01"},
    {128, "80 02"},
    {INT32_MAX, "fe ff ff ff 0f"},
    {INT32_MIN, "ff ff ff ff 0f"},
};

static const struct {
	int64_t value;
	const char *hex;
} i64_vectors[] = {
    {0, "00"},
    {-1, "01"},
    {INT32_MAX, "fe ff ff ff 0f"},
    {(int64_t)INT32_MAX + 1, "80 80 80 80 10"},
    {INT64_MAX, "fe ff ff ff ff ff ff ff ff 01"},
    {INT64_MIN, "ff ff ff ff ff ff ff ff ff 01"},
};

static void
test_i32_zigzag_varints(void)
{
	for (size_t i = 0; i < sizeof(i32_vectors) / sizeof(i32_vectors[0]); i++) {
		struct rfd_buf b;
		struct rfd_cw w;
		struct rfd_cr r;
		int32_t value;

		rfd_buf_init(&b);
		rfd_cw_init(&w, &b);
		rfd_cw_i32(&w, i32_vectors[i].value);
		CHECK_EQ(rfd_cw_finish(&w), 0);
		CHECK_HEX(b.data, b.len, i32_vectors[i].hex);

		rfd_cr_init(&r, b.data, b.len);
		CHECK_EQ(rfd_cr_i32(&r, &value), 0);
		CHECK_EQ(value, i32_vectors[i].value);
		CHECK_EQ(rfd_cr_finish(&r), 0);
		rfd_buf_free(&b);
	}
}

static void
test_i64_zigzag_varints(void)
{
	for (size_t i = 0; i < sizeof(i64_vectors) / sizeof(i64_vectors[0]); i++) {
		struct rfd_buf b;
		struct rfd_cw w;
		struct rfd_cr r;
		int64_t value;

		rfd_buf_init(&b);
		rfd_cw_init(&w, &b);
		rfd_cw_i64(&w, i64_vectors[i].value);
		CHECK_EQ(rfd_cw_finish(&w), 0);
		CHECK_HEX(b.data, b.len, i64_vectors[i].hex);

		rfd_cr_init(&r, b.data, b.len);
		CHECK_EQ(rfd_cr_i64(&r, &value), 0);
		CHECK(value == i64_vectors[i].value);
		CHECK_EQ(rfd_cr_finish(&r), 0);
		rfd_buf_free(&b);
	}
}

static void
test_i16_and_byte(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	int16_t a, c;
	int8_t d;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_i16(&w, INT16_MIN);
	rfd_cw_i16(&w, INT16_MAX);
	rfd_cw_byte(&w, -128);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "ff ff 03 fe ff 03 80");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_i16(&r, &a), 0);
	CHECK_EQ(rfd_cr_i16(&r, &c), 0);
	CHECK_EQ(rfd_cr_byte(&r, &d), 0);
	CHECK_EQ(a, INT16_MIN);
	CHECK_EQ(c, INT16_MAX);
	CHECK_EQ(d, -128);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

/* Plain (not zigzag) varints: binary lengths and collection sizes at 127 and 128. */
static void
test_unsigned_varint_boundary(void)
{
	static uint8_t text[128];
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_slice s;
	uint8_t elem_type;
	uint32_t n;

	memset(text, 'a', sizeof(text));
	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_binary(&w, text, 127);
	rfd_cw_binary(&w, text, 128);
	rfd_cw_list_begin(&w, RFD_CT_BYTE, 128);
	for (int i = 0; i < 128; i++)
		rfd_cw_byte(&w, (int8_t)i);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(b.len == 1 + 127 + 2 + 128 + 3 + 128);
	CHECK_HEX(b.data, 1, "7f");
	CHECK_HEX(b.data + 128, 2, "80 01");
	CHECK_HEX(b.data + 258, 3, "f3 80 01");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK_EQ(s.len, 127);
	CHECK(s.ptr == b.data + 1);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK_EQ(s.len, 128);
	CHECK(s.ptr == b.data + 130);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_BYTE);
	CHECK_EQ(n, 128);
	for (uint32_t i = 0; i < n; i++) {
		int8_t v;

		CHECK_EQ(rfd_cr_byte(&r, &v), 0);
		CHECK_EQ(v, (int8_t)i);
	}
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

static const struct {
	const char *hex;
	enum { AS_I16, AS_I32, AS_I64, AS_BINARY } as;
	const char *why; /* NULL: accepted */
} varint_cases[] = {
    {"ff ff ff ff 0f", AS_I32, NULL},
    {"80 80 80 80 80 00", AS_I32, "varint longer than its type allows"},
    {"ff ff ff ff 1f", AS_I32, "varint value out of range for its type"},
    {"ff ff ff ff 10", AS_I32, "varint value out of range for its type"},
    {"80 00", AS_I32, "varint with a redundant trailing zero byte"},
    {"81 80 00", AS_I32, "varint with a redundant trailing zero byte"},
    {"80", AS_I32, "truncated varint"},
    {"", AS_I32, "truncated varint"},
    {"ff ff ff ff ff ff ff ff ff 01", AS_I64, NULL},
    {"ff ff ff ff ff ff ff ff ff 02", AS_I64, "varint value out of range for its type"},
    {"ff ff ff ff ff ff ff ff ff 81 00", AS_I64, "varint longer than its type allows"},
    {"80 80 80 80 80 80 80 80 80 80 01", AS_I64, "varint longer than its type allows"},
    {"80 80 80 80 80 80 80 80 80 00", AS_I64, "varint with a redundant trailing zero byte"},
    {"fe ff 03", AS_I16, NULL},
    {"fe ff 04", AS_I16, "varint value out of range for its type"},
    {"80 80 80 01", AS_I16, "varint longer than its type allows"},
    {"80 80 80 80 08", AS_BINARY, "negative size"},
    {"ff ff ff ff 0f", AS_BINARY, "negative size"},
    {"80 80 80 80 80 01", AS_BINARY, "varint longer than its type allows"},
};

static void
test_overlong_and_overflowing_varints(void)
{
	for (size_t i = 0; i < sizeof(varint_cases) / sizeof(varint_cases[0]); i++) {
		uint8_t bytes[16];
		size_t len = rfd_test_hex(varint_cases[i].hex, bytes, sizeof(bytes));
		struct rfd_cr r;
		struct rfd_slice s;
		int16_t v16;
		int32_t v32;
		int64_t v64;
		int ret = 0;

		rfd_cr_init(&r, bytes, len);
		switch (varint_cases[i].as) {
		case AS_I16:
			ret = rfd_cr_i16(&r, &v16);
			break;
		case AS_I32:
			ret = rfd_cr_i32(&r, &v32);
			break;
		case AS_I64:
			ret = rfd_cr_i64(&r, &v64);
			break;
		case AS_BINARY:
			ret = rfd_cr_binary(&r, &s);
			break;
		}
		if (ret == 0)
			ret = rfd_cr_finish(&r);
		if (!varint_cases[i].why) {
			CHECK_EQ(ret, 0);
			continue;
		}
		CHECK_EQ(ret, -EBADMSG);
		CHECK_WHY(rfd_cr_error(&r), varint_cases[i].why);
		CHECK(rfd_cr_remaining(&r) <= len);
	}
}

/* 3. Field headers */

static void
test_field_header_short_and_long_forms(void)
{
	static const int16_t ids[] = {1, 16, 32, 5, -1, 0};
	static const uint8_t types[] = {RFD_CT_I32, RFD_CT_I32, RFD_CT_I32,
	                                RFD_CT_I32, RFD_CT_I32, RFD_CT_BYTE};
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	int32_t value;
	int8_t byte;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, 1);       /* delta 1: short */
	rfd_cw_field_i32(&w, 16, 2);      /* delta 15: short */
	rfd_cw_field_i32(&w, 32, 3);      /* delta 16: long */
	rfd_cw_field_i32(&w, 5, 4);       /* backward: long */
	rfd_cw_field_i32(&w, -1, 5);      /* negative: long */
	rfd_cw_field(&w, RFD_CT_BYTE, 0); /* delta 1 from -1: short */
	rfd_cw_byte(&w, -1);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "15 02 f5 04 05 40 06 05 0a 08 05 01 0a 13 ff 00");

	rfd_cr_init(&r, b.data, b.len);
	REQUIRE(rfd_cr_struct_begin(&r) == 0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		REQUIRE(rfd_cr_field(&r, &f) == 1);
		CHECK_EQ(f.id, ids[i]);
		CHECK_EQ(f.type, types[i]);
		if (f.type == RFD_CT_I32) {
			CHECK_EQ(rfd_cr_i32(&r, &value), 0);
			CHECK_EQ(value, (int32_t)i + 1);
		} else {
			CHECK_EQ(rfd_cr_byte(&r, &byte), 0);
			CHECK_EQ(byte, -1);
		}
	}
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

static void
test_field_id_extremes(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	const char *why;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, INT16_MAX, 0);
	rfd_cw_field_i32(&w, INT16_MIN, 0);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "05 fe ff 03 00 05 ff ff 03 00 00");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.id, INT16_MAX);
	CHECK_EQ(rfd_cr_skip_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.id, INT16_MIN);
	rfd_buf_free(&b);

	/* A short header after id 32767 would name id 32768. */
	CHECK_EQ(skip_hex("05 fe ff 03 00 15 00 00", RFD_CT_STRUCT, &why), -EBADMSG);
	CHECK_WHY(why, "field id delta goes past 32767");
	/* An id over 16 bits in the long form. */
	CHECK_EQ(skip_hex("05 80 80 04 00 00", RFD_CT_STRUCT, &why), -EBADMSG);
	CHECK_WHY(why, "varint value out of range for its type");
	CHECK_EQ(skip_hex("05 80 80 80 01 00 00", RFD_CT_STRUCT, &why), -EBADMSG);
	CHECK_WHY(why, "varint longer than its type allows");
}

/* 4. Bools */

static void
test_bool_fields(void)
{
	static const int16_t ids[] = {1, 2, 20, -3};
	static const bool values[] = {true, false, true, false};
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	for (size_t i = 0; i < 4; i++)
		rfd_cw_field_bool(&w, ids[i], values[i]);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "11 12 01 28 02 05 00");

	rfd_cr_init(&r, b.data, b.len);
	REQUIRE(rfd_cr_struct_begin(&r) == 0);
	for (size_t i = 0; i < 4; i++) {
		REQUIRE(rfd_cr_field(&r, &f) == 1);
		CHECK_EQ(f.type, RFD_CT_BOOL);
		CHECK_EQ(f.id, ids[i]);
		CHECK_EQ(f.bool_value, values[i]);
		/* The value is in the header: skipping consumes nothing. */
		CHECK_EQ(rfd_cr_skip_field(&r, &f), 0);
	}
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

static void
test_bool_elements(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	uint8_t elem_type;
	uint32_t n;
	bool v;
	const char *why;
	uint8_t bytes[8];
	size_t len;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_list_begin(&w, RFD_CT_BOOL, 3);
	rfd_cw_bool(&w, true);
	rfd_cw_bool(&w, false);
	rfd_cw_bool(&w, true);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "31 01 02 01");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_BOOL);
	CHECK_EQ(n, 3);
	CHECK_EQ(rfd_cr_bool(&r, &v), 0);
	CHECK_EQ(v, true);
	CHECK_EQ(rfd_cr_bool(&r, &v), 0);
	CHECK_EQ(v, false);
	CHECK_EQ(rfd_cr_bool(&r, &v), 0);
	CHECK_EQ(v, true);
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);

	/* Element type 2 also means bool; an element 0 reads as false. */
	len = rfd_test_hex("22 01 00", bytes, sizeof(bytes));
	rfd_cr_init(&r, bytes, len);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_BOOL);
	CHECK_EQ(rfd_cr_bool(&r, &v), 0);
	CHECK_EQ(v, true);
	CHECK_EQ(rfd_cr_bool(&r, &v), 0);
	CHECK_EQ(v, false);

	CHECK_EQ(skip_hex("21 01 03", RFD_CT_LIST, &why), -EBADMSG);
	CHECK_WHY(why, "bool element is not 0, 1 or 2");
}

/* 5. Containers */

static void
test_list_and_set_forms(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	uint8_t elem_type;
	uint32_t n;
	int32_t v;
	struct rfd_slice s;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_list_begin(&w, RFD_CT_BYTE, 14);
	for (int i = 0; i < 14; i++)
		rfd_cw_byte(&w, (int8_t)i);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "e3 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d");
	rfd_buf_free(&b);

	rfd_cw_init(&w, &b);
	rfd_cw_set_begin(&w, RFD_CT_I32, 15);
	for (int i = 0; i < 15; i++)
		rfd_cw_i32(&w, i);
	rfd_cw_list_begin(&w, RFD_CT_BINARY, 0);
	rfd_cw_set_begin(&w, RFD_CT_BINARY, 1);
	rfd_cw_string(&w, "x");
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len,
	          "f5 0f 00 02 04 06 08 0a 0c 0e 10 12 14 16 18 1a 1c  08  18 01 78");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_set_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_I32);
	CHECK_EQ(n, 15);
	for (uint32_t i = 0; i < n; i++) {
		CHECK_EQ(rfd_cr_i32(&r, &v), 0);
		CHECK_EQ(v, (int32_t)i);
	}
	CHECK_EQ(rfd_cr_set_end(&r), 0);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_BINARY);
	CHECK_EQ(n, 0);
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_set_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK(s.len == 1 && s.ptr[0] == 'x');
	/* Ending the set as a list is refused. */
	CHECK_EQ(rfd_cr_list_end(&r), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "end of a struct or container that is not open");
	rfd_buf_free(&b);

	/* A long-form header may carry a size under 15. */
	rfd_cr_init(&r, (const uint8_t *)"\xf3\x01\x07", 3);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(n, 1);
}

static void
test_map_forms(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	uint8_t key_type, value_type, elem_type;
	uint32_t n;
	struct rfd_slice s;
	int32_t v;
	int16_t v16;
	bool k, bv;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_I32, 0);
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_I32, 2);
	rfd_cw_string(&w, "a");
	rfd_cw_i32(&w, 1);
	rfd_cw_string(&w, "bc");
	rfd_cw_i32(&w, -2);
	rfd_cw_map_begin(&w, RFD_CT_BOOL, RFD_CT_BOOL, 2);
	rfd_cw_bool(&w, true);
	rfd_cw_bool(&w, false);
	rfd_cw_bool(&w, false);
	rfd_cw_bool(&w, true);
	rfd_cw_map_begin(&w, RFD_CT_I32, RFD_CT_LIST, 1);
	rfd_cw_i32(&w, 7);
	rfd_cw_list_begin(&w, RFD_CT_I16, 2);
	rfd_cw_i16(&w, 1);
	rfd_cw_i16(&w, -1);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len,
	          "00  02 85 01 61 02 02 62 63 03  02 11 01 02 02 01  01 59 0e 24 02 01");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_map_begin(&r, &key_type, &value_type, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(key_type, RFD_CT_STOP);
	CHECK_EQ(value_type, RFD_CT_STOP);
	CHECK_EQ(rfd_cr_map_end(&r), 0);

	CHECK_EQ(rfd_cr_map_begin(&r, &key_type, &value_type, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(key_type, RFD_CT_BINARY);
	CHECK_EQ(value_type, RFD_CT_I32);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK(s.len == 1 && memcmp(s.ptr, "a", 1) == 0);
	CHECK_EQ(rfd_cr_i32(&r, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK(s.len == 2 && memcmp(s.ptr, "bc", 2) == 0);
	CHECK_EQ(rfd_cr_i32(&r, &v), 0);
	CHECK_EQ(v, -2);
	CHECK_EQ(rfd_cr_map_end(&r), 0);

	CHECK_EQ(rfd_cr_map_begin(&r, &key_type, &value_type, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(key_type, RFD_CT_BOOL);
	CHECK_EQ(value_type, RFD_CT_BOOL);
	CHECK_EQ(rfd_cr_bool(&r, &k), 0);
	CHECK_EQ(rfd_cr_bool(&r, &bv), 0);
	CHECK(k && !bv);
	CHECK_EQ(rfd_cr_bool(&r, &k), 0);
	CHECK_EQ(rfd_cr_bool(&r, &bv), 0);
	CHECK(!k && bv);
	CHECK_EQ(rfd_cr_map_end(&r), 0);

	CHECK_EQ(rfd_cr_map_begin(&r, &key_type, &value_type, &n), 0);
	CHECK_EQ(key_type, RFD_CT_I32);
	CHECK_EQ(value_type, RFD_CT_LIST);
	CHECK_EQ(rfd_cr_i32(&r, &v), 0);
	CHECK_EQ(v, 7);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_I16);
	CHECK_EQ(n, 2);
	CHECK_EQ(rfd_cr_i16(&r, &v16), 0);
	CHECK_EQ(v16, 1);
	CHECK_EQ(rfd_cr_i16(&r, &v16), 0);
	CHECK_EQ(v16, -1);
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_map_end(&r), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

static void
test_double_and_float_are_big_endian(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	uint8_t elem_type;
	uint32_t n;
	double d;
	float x;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_DOUBLE, 1);
	rfd_cw_double(&w, 1.0);
	rfd_cw_field(&w, RFD_CT_FLOAT, 2);
	rfd_cw_float(&w, 1.0f);
	rfd_cw_field(&w, RFD_CT_LIST, 3);
	rfd_cw_list_begin(&w, RFD_CT_DOUBLE, 1);
	rfd_cw_double(&w, -2.5);
	rfd_cw_field(&w, RFD_CT_LIST, 4);
	rfd_cw_list_begin(&w, RFD_CT_FLOAT, 1);
	rfd_cw_float(&w, -2.5f);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len,
	          "17 3f f0 00 00 00 00 00 00  1d 3f 80 00 00"
	          "  19 17 c0 04 00 00 00 00 00 00  19 1d c0 20 00 00  00");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.type, RFD_CT_DOUBLE);
	CHECK_EQ(rfd_cr_double(&r, &d), 0);
	CHECK(d == 1.0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.type, RFD_CT_FLOAT);
	CHECK_EQ(rfd_cr_float(&r, &x), 0);
	CHECK(x == 1.0f);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_DOUBLE);
	CHECK_EQ(rfd_cr_double(&r, &d), 0);
	CHECK(d == -2.5);
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(rfd_cr_list_begin(&r, &elem_type, &n), 0);
	CHECK_EQ(elem_type, RFD_CT_FLOAT);
	CHECK_EQ(rfd_cr_float(&r, &x), 0);
	CHECK(x == -2.5f);
	CHECK_EQ(rfd_cr_list_end(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

/* 6. Skipping */

/* A struct with a field of every type, nested containers among them, then field 100 = 42. */
static void
write_every_type(struct rfd_cw *w)
{
	rfd_cw_struct_begin(w);
	rfd_cw_field_bool(w, 1, true);
	rfd_cw_field(w, RFD_CT_BYTE, 2);
	rfd_cw_byte(w, -5);
	rfd_cw_field(w, RFD_CT_I16, 3);
	rfd_cw_i16(w, -300);
	rfd_cw_field_i32(w, 4, 70000);
	rfd_cw_field_i64(w, 5, INT64_MIN);
	rfd_cw_field(w, RFD_CT_DOUBLE, 6);
	rfd_cw_double(w, 3.5);
	rfd_cw_field_string(w, 7, "xyz");
	rfd_cw_field(w, RFD_CT_LIST, 8);
	rfd_cw_list_begin(w, RFD_CT_I32, 2);
	rfd_cw_i32(w, 1);
	rfd_cw_i32(w, 2);
	rfd_cw_field(w, RFD_CT_SET, 9);
	rfd_cw_set_begin(w, RFD_CT_BINARY, 1);
	rfd_cw_string(w, "a");
	rfd_cw_field(w, RFD_CT_MAP, 10);
	rfd_cw_map_begin(w, RFD_CT_BOOL, RFD_CT_BOOL, 1);
	rfd_cw_bool(w, true);
	rfd_cw_bool(w, false);
	rfd_cw_field(w, RFD_CT_STRUCT, 11);
	rfd_cw_struct_begin(w);
	rfd_cw_field_bool(w, 1, false);
	rfd_cw_field(w, RFD_CT_LIST, 2);
	rfd_cw_list_begin(w, RFD_CT_STRUCT, 2);
	rfd_cw_struct_begin(w);
	rfd_cw_struct_end(w);
	rfd_cw_struct_begin(w);
	rfd_cw_field_bool(w, 30, true);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
	rfd_cw_field(w, RFD_CT_FLOAT, 12);
	rfd_cw_float(w, 1.5f);
	rfd_cw_field(w, RFD_CT_MAP, 13);
	rfd_cw_map_begin(w, RFD_CT_I32, RFD_CT_DOUBLE, 0);
	rfd_cw_field(w, RFD_CT_LIST, 14);
	rfd_cw_list_begin(w, RFD_CT_BOOL, 2);
	rfd_cw_bool(w, true);
	rfd_cw_bool(w, false);
	rfd_cw_field(w, RFD_CT_MAP, 15);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_LIST, 1);
	rfd_cw_string(w, "k");
	rfd_cw_list_begin(w, RFD_CT_MAP, 1);
	rfd_cw_map_begin(w, RFD_CT_I16, RFD_CT_STRUCT, 1);
	rfd_cw_i16(w, 9);
	rfd_cw_struct_begin(w);
	rfd_cw_field(w, RFD_CT_SET, 1);
	rfd_cw_set_begin(w, RFD_CT_FLOAT, 1);
	rfd_cw_float(w, 0.0f);
	rfd_cw_struct_end(w);
	rfd_cw_field(w, RFD_CT_LIST, 16);
	rfd_cw_list_begin(w, RFD_CT_LIST, 1);
	rfd_cw_list_begin(w, RFD_CT_LIST, 1);
	rfd_cw_list_begin(w, RFD_CT_BYTE, 1);
	rfd_cw_byte(w, 1);
	rfd_cw_field(w, RFD_CT_MAP, 17);
	rfd_cw_map_begin(w, RFD_CT_DOUBLE, RFD_CT_MAP, 1);
	rfd_cw_double(w, 0.5);
	rfd_cw_map_begin(w, RFD_CT_I64, RFD_CT_BINARY, 1);
	rfd_cw_i64(w, -7);
	rfd_cw_string(w, "");
	rfd_cw_field_bool(w, 20, false);
	rfd_cw_field_i32(w, 100, 42);
	rfd_cw_struct_end(w);
}

static void
test_skip_every_type(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	int32_t value = 0;
	int16_t last_id = 0;
	const char *why;
	int ret;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	write_every_type(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);

	rfd_cr_init(&r, b.data, b.len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		last_id = f.id;
		if (f.id == 100 && f.type == RFD_CT_I32)
			ret = rfd_cr_i32(&r, &value);
		else
			ret = rfd_cr_skip_field(&r, &f);
	}
	CHECK_EQ(ret, 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	CHECK_EQ(value, 42);
	CHECK_EQ(last_id, 100);

	CHECK_EQ(skip_struct_bytes(b.data, b.len, &why), 0);
	CHECK(why == NULL);
	rfd_buf_free(&b);
}

/* Every proper prefix of a valid struct must fail cleanly; the copy is exactly as long as the
 * prefix. */
static void
check_every_prefix_fails(const uint8_t *bytes, size_t len,
                         int (*decode)(const uint8_t *, size_t, const char **))
{
	const char *why;

	CHECK_EQ(decode(bytes, len, &why), 0);
	for (size_t n = 0; n < len; n++) {
		uint8_t *prefix = n ? malloc(n) : NULL;

		if (n)
			REQUIRE(prefix);
		if (n)
			memcpy(prefix, bytes, n);
		why = NULL;
		if (decode(prefix, n, &why) != -EBADMSG || !why)
			rfd_test_fail(__FILE__, __LINE__, "prefix of %zu of %zu bytes accepted", n,
			              len);
		free(prefix);
	}
}

static void
test_truncation_at_every_offset(void)
{
	struct rfd_buf b;
	struct rfd_cw w;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	write_every_type(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	check_every_prefix_fails(b.data, b.len, skip_struct_bytes);
	rfd_buf_free(&b);
}

/* 7. Limits */

static void
test_depth_limit(void)
{
	uint8_t bytes[4 * RFD_COMPACT_MAX_DEPTH + 8];
	struct rfd_buf b;
	struct rfd_cw w;
	const char *why;
	size_t len;

	/* 32 nested structs, then 33. */
	for (int depth = RFD_COMPACT_MAX_DEPTH; depth <= RFD_COMPACT_MAX_DEPTH + 1; depth++) {
		len = 0;
		for (int i = 1; i < depth; i++)
			bytes[len++] = 0x1c;
		for (int i = 0; i < depth; i++)
			bytes[len++] = 0x00;
		if (depth == RFD_COMPACT_MAX_DEPTH) {
			CHECK_EQ(skip_struct_bytes(bytes, len, &why), 0);
		} else {
			CHECK_EQ(skip_struct_bytes(bytes, len, &why), -EBADMSG);
			CHECK_WHY(why, "structs and containers nested too deeply");
		}
	}

	/* A struct holding 31 nested lists, then 32. */
	for (int lists = RFD_COMPACT_MAX_DEPTH - 1; lists <= RFD_COMPACT_MAX_DEPTH; lists++) {
		len = 0;
		bytes[len++] = 0x19;
		for (int i = 1; i < lists; i++)
			bytes[len++] = 0x19;
		bytes[len++] = 0x03;
		bytes[len++] = 0x00;
		if (lists < RFD_COMPACT_MAX_DEPTH) {
			CHECK_EQ(skip_struct_bytes(bytes, len, &why), 0);
		} else {
			CHECK_EQ(skip_struct_bytes(bytes, len, &why), -EBADMSG);
			CHECK_WHY(why, "structs and containers nested too deeply");
		}
	}

	/* Maps whose values are maps. */
	len = 0;
	bytes[len++] = 0x1b;
	for (int i = 1; i < RFD_COMPACT_MAX_DEPTH; i++) {
		bytes[len++] = 0x01;
		bytes[len++] = 0x3b;
		bytes[len++] = 0x00;
	}
	bytes[len++] = 0x00;
	CHECK_EQ(skip_struct_bytes(bytes, len, &why), -EBADMSG);
	CHECK_WHY(why, "structs and containers nested too deeply");

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	for (int i = 0; i < RFD_COMPACT_MAX_DEPTH; i++) {
		rfd_cw_struct_begin(&w);
		rfd_cw_field(&w, RFD_CT_STRUCT, 1);
	}
	CHECK_EQ(w.error, 0);
	rfd_cw_struct_begin(&w);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);
	rfd_buf_free(&b);
}

static const struct {
	const char *hex;
	uint8_t type;
	const char *why; /* NULL: accepted */
} length_cases[] = {
    {"04 61 62 63 64", RFD_CT_BINARY, NULL},
    {"05 61 62 63 64", RFD_CT_BINARY, "binary length larger than the bytes left"},
    {"fe ff ff ff 07 61", RFD_CT_BINARY, "binary length larger than the bytes left"},
    {"a3 00 01 02 03 04 05 06 07 08 09", RFD_CT_LIST, NULL},
    {"a3 00 01 02 03 04 05 06 07 08", RFD_CT_LIST, "list or set size larger than the bytes left"},
    {"a5 00 01 02 03 04 05 06 07 08", RFD_CT_LIST, "list or set size larger than the bytes left"},
    {"aa 00 01 02 03 04 05 06 07 08", RFD_CT_SET, "list or set size larger than the bytes left"},
    {"ac 00 00 00 00 00 00 00 00 00", RFD_CT_LIST, "list or set size larger than the bytes left"},
    {"ac 00 00 00 00 00 00 00 00 00 00", RFD_CT_LIST, NULL},
    {"27 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", RFD_CT_LIST, NULL},
    {"27 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", RFD_CT_LIST,
     "list or set size larger than the bytes left"},
    {"2d 00 00 00 00 00 00 00", RFD_CT_LIST, "list or set size larger than the bytes left"},
    {"f3 fe ff ff ff 07 00 00 00", RFD_CT_LIST, "list or set size larger than the bytes left"},
    {"03 33 00 00 00 00 00 00", RFD_CT_MAP, NULL},
    {"03 33 00 00 00 00 00", RFD_CT_MAP, "map size larger than the bytes left"},
    {"01 57 00 00 00 00 00 00 00 00", RFD_CT_MAP, "map size larger than the bytes left"},
    {"01 75 00 00 00 00 00 00 00 00", RFD_CT_MAP, "map size larger than the bytes left"},
    {"01 57 00 00 00 00 00 00 00 00 00", RFD_CT_MAP, NULL},
    {"fe ff ff ff 07 11 01", RFD_CT_MAP, "map size larger than the bytes left"},
    {"01", RFD_CT_MAP, "truncated map header"},
    {"", RFD_CT_LIST, "truncated list or set header"},
    {"f3", RFD_CT_LIST, "truncated varint"},
    {"00 00 00 00 00 00 00", RFD_CT_DOUBLE, "truncated double"},
    {"00 00 00", RFD_CT_FLOAT, "truncated float"},
    {"", RFD_CT_BYTE, "truncated byte"},
    {"", RFD_CT_BOOL, "truncated bool"},
    {"", RFD_CT_STRUCT, "truncated struct: no stop byte"},
};

static void
test_lengths_larger_than_input(void)
{
	for (size_t i = 0; i < sizeof(length_cases) / sizeof(length_cases[0]); i++) {
		const char *why;
		int ret = skip_hex(length_cases[i].hex, length_cases[i].type, &why);

		if (!length_cases[i].why) {
			if (ret != 0)
				rfd_test_fail(__FILE__, __LINE__, "case %zu [%s] rejected: %s", i,
				              length_cases[i].hex, why);
			continue;
		}
		CHECK_EQ(ret, -EBADMSG);
		CHECK_WHY(why, length_cases[i].why);
	}
}

static const struct {
	const char *hex;
	uint8_t type;
	const char *why;
} bad_type_cases[] = {
    {"1e 00", RFD_CT_STRUCT, "unknown field type"},
    {"0f 02 00", RFD_CT_STRUCT, "unknown field type"},
    {"10", RFD_CT_STRUCT, "stop byte with a field id delta"},
    {"10", RFD_CT_LIST, "unknown list or set element type"},
    {"00", RFD_CT_LIST, "unknown list or set element type"},
    {"1e 00", RFD_CT_SET, "unknown list or set element type"},
    {"01 e5 00 00", RFD_CT_MAP, "unknown map key or value type"},
    {"01 50 00 00", RFD_CT_MAP, "unknown map key or value type"},
    {"00", RFD_CT_STOP, "skip of an unknown type"},
    {"00", 14, "skip of an unknown type"},
    {"00 00", RFD_CT_STRUCT, "trailing bytes after the struct"},
};

static void
test_invalid_types(void)
{
	for (size_t i = 0; i < sizeof(bad_type_cases) / sizeof(bad_type_cases[0]); i++) {
		const char *why;

		CHECK_EQ(skip_hex(bad_type_cases[i].hex, bad_type_cases[i].type, &why), -EBADMSG);
		CHECK_WHY(why, bad_type_cases[i].why);
	}
}

static void
test_reader_misuse_and_sticky_error(void)
{
	static const uint8_t bytes[] = {0x15, 0x02, 0x00};
	struct rfd_cr r;
	struct rfd_cr_field f;
	int32_t v = 99;

	rfd_cr_init(&r, bytes, sizeof(bytes));
	CHECK_EQ(rfd_cr_field(&r, &f), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "field read outside a struct");
	/* Once failed, every call fails, zeroes its output and keeps the first reason. */
	CHECK_EQ(rfd_cr_i32(&r, &v), -EBADMSG);
	CHECK_EQ(v, 0);
	CHECK_EQ(rfd_cr_struct_begin(&r), -EBADMSG);
	CHECK_EQ(rfd_cr_finish(&r), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "field read outside a struct");
	CHECK_EQ(rfd_cr_fail(&r, "other"), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "field read outside a struct");

	rfd_cr_init(&r, bytes, sizeof(bytes));
	CHECK_EQ(rfd_cr_map_end(&r), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "end of a struct or container that is not open");

	rfd_cr_init(&r, bytes, sizeof(bytes));
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(rfd_cr_finish(&r), -EBADMSG);
	CHECK_WHY(rfd_cr_error(&r), "a struct or container was not ended");

	rfd_cr_init(&r, NULL, 0);
	CHECK_EQ(rfd_cr_remaining(&r), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
}

static void
test_writer_errors(void)
{
	static const uint8_t dummy[1];
	struct rfd_buf b;
	struct rfd_cw w;

	rfd_buf_init(&b);

	/* -ENOMEM sticks: later calls that could allocate write nothing. */
	rfd_cw_init(&w, &b);
	rfd_alloc_fail_at(0);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, 5);
	rfd_alloc_fail_at(-1);
	rfd_cw_field_i32(&w, 2, 6);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), -ENOMEM);
	CHECK_EQ(b.len, 0);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_BOOL_TRUE, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STOP, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, (enum rfd_compact_type)14, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_field_i32(&w, 1, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_list_begin(&w, RFD_CT_STOP, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_list_begin(&w, RFD_CT_BYTE, (uint32_t)INT32_MAX + 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_map_begin(&w, RFD_CT_STOP, RFD_CT_I32, 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_binary(&w, dummy, (size_t)INT32_MAX + 1);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);

	rfd_cw_init(&w, &b);
	rfd_cw_string(&w, NULL);
	CHECK_EQ(rfd_cw_finish(&w), -EINVAL);
	CHECK_EQ(b.len, 0);

	/* An empty map needs no types. */
	rfd_cw_init(&w, &b);
	rfd_cw_map_begin(&w, RFD_CT_STOP, RFD_CT_STOP, 0);
	rfd_cw_binary(&w, NULL, 0);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "00 00");
	rfd_buf_free(&b);
}

/* 8. The FdTest structs, written and read the way compact.h shows. */

struct fd_info {
	int64_t dev;
	int64_t ino;
	int32_t type;
	bool cloexec;
	int32_t flags;
};

struct fd_report {
	struct rfd_slice tag;
	size_t n_fds;
	struct fd_info fds[4];
};

static const struct fd_info sample_fds[] = {
    {2049, 131, 0100000, true, 2},
    {5, -1, 0140000, false, 0},
};

static const char sample_report_hex[] = "18 02 68 69 19 2c"
                                        "  16 82 20 16 86 02 15 80 80 04 11 15 04 00"
                                        "  16 0a 16 01 15 80 80 06 12 15 00 00"
                                        "  00";

static int
read_fd_info(struct rfd_cr *r, struct fd_info *info)
{
	struct rfd_cr_field f;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (f.id == 1 && f.type == RFD_CT_I64)
			ret = rfd_cr_i64(r, &info->dev);
		else if (f.id == 2 && f.type == RFD_CT_I64)
			ret = rfd_cr_i64(r, &info->ino);
		else if (f.id == 3 && f.type == RFD_CT_I32)
			ret = rfd_cr_i32(r, &info->type);
		else if (f.id == 4 && f.type == RFD_CT_BOOL)
			info->cloexec = f.bool_value;
		else if (f.id == 5 && f.type == RFD_CT_I32)
			ret = rfd_cr_i32(r, &info->flags);
		else
			ret = rfd_cr_skip_field(r, &f);
	}
	return ret;
}

static int
read_fd_list(struct rfd_cr *r, struct fd_report *report)
{
	uint8_t elem_type;
	uint32_t n;
	int ret;

	ret = rfd_cr_list_begin(r, &elem_type, &n);
	if (ret < 0)
		return ret;
	if (elem_type != RFD_CT_STRUCT)
		return rfd_cr_fail(r, "FdReport.fds is not a list of structs");
	if (n > sizeof(report->fds) / sizeof(report->fds[0]))
		return rfd_cr_fail(r, "FdReport.fds has too many elements");
	for (uint32_t i = 0; i < n; i++) {
		ret = read_fd_info(r, &report->fds[i]);
		if (ret < 0)
			return ret;
	}
	report->n_fds = n;
	return rfd_cr_list_end(r);
}

static int
read_fd_report(const uint8_t *bytes, size_t len, struct fd_report *report, const char **why)
{
	struct rfd_cr r;
	struct rfd_cr_field f;
	int ret;

	memset(report, 0, sizeof(*report));
	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id == 1 && f.type == RFD_CT_BINARY)
			ret = rfd_cr_binary(&r, &report->tag);
		else if (f.id == 2 && f.type == RFD_CT_LIST)
			ret = read_fd_list(&r, report);
		else
			ret = rfd_cr_skip_field(&r, &f);
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	*why = rfd_cr_error(&r);
	return ret;
}

static int
read_fd_report_only(const uint8_t *bytes, size_t len, const char **why)
{
	struct fd_report report;

	return read_fd_report(bytes, len, &report, why);
}

static void
test_fd_report_round_trip(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct fd_report report;
	const char *why;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 1, "hi");
	rfd_cw_field(&w, RFD_CT_LIST, 2);
	rfd_cw_list_begin(&w, RFD_CT_STRUCT, 2);
	for (size_t i = 0; i < 2; i++) {
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i64(&w, 1, sample_fds[i].dev);
		rfd_cw_field_i64(&w, 2, sample_fds[i].ino);
		rfd_cw_field_i32(&w, 3, sample_fds[i].type);
		rfd_cw_field_bool(&w, 4, sample_fds[i].cloexec);
		rfd_cw_field_i32(&w, 5, sample_fds[i].flags);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	CHECK_HEX(b.data, b.len, sample_report_hex);

	REQUIRE(read_fd_report(b.data, b.len, &report, &why) == 0);
	CHECK(report.tag.len == 2 && memcmp(report.tag.ptr, "hi", 2) == 0);
	REQUIRE(report.n_fds == 2);
	for (size_t i = 0; i < 2; i++) {
		CHECK(report.fds[i].dev == sample_fds[i].dev);
		CHECK(report.fds[i].ino == sample_fds[i].ino);
		CHECK_EQ(report.fds[i].type, sample_fds[i].type);
		CHECK_EQ(report.fds[i].cloexec, sample_fds[i].cloexec);
		CHECK_EQ(report.fds[i].flags, sample_fds[i].flags);
	}
	check_every_prefix_fails(b.data, b.len, read_fd_report_only);
	rfd_buf_free(&b);
}

static void
test_result_structs(void)
{
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	struct rfd_slice s;

	/* Field 0, the return value, always takes the long form. */
	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 0, "ok");
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "08 00 02 6f 6b 00");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.id, 0);
	CHECK_EQ(f.type, RFD_CT_BINARY);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK(s.len == 2 && memcmp(s.ptr, "ok", 2) == 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);

	/* A declared exception in field 1. */
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_binary(&w, 1, "no", 2);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, "1c 18 02 6e 6f 00 00");

	rfd_cr_init(&r, b.data, b.len);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(f.id, 1);
	CHECK_EQ(f.type, RFD_CT_STRUCT);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK(s.len == 2 && memcmp(s.ptr, "no", 2) == 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
	rfd_buf_free(&b);
}

static const struct rfd_test tests[] = {
    {"i32_zigzag_varints", test_i32_zigzag_varints},
    {"i64_zigzag_varints", test_i64_zigzag_varints},
    {"i16_and_byte", test_i16_and_byte},
    {"unsigned_varint_boundary", test_unsigned_varint_boundary},
    {"overlong_and_overflowing_varints", test_overlong_and_overflowing_varints},
    {"field_header_short_and_long_forms", test_field_header_short_and_long_forms},
    {"field_id_extremes", test_field_id_extremes},
    {"bool_fields", test_bool_fields},
    {"bool_elements", test_bool_elements},
    {"list_and_set_forms", test_list_and_set_forms},
    {"map_forms", test_map_forms},
    {"double_and_float_are_big_endian", test_double_and_float_are_big_endian},
    {"skip_every_type", test_skip_every_type},
    {"truncation_at_every_offset", test_truncation_at_every_offset},
    {"depth_limit", test_depth_limit},
    {"lengths_larger_than_input", test_lengths_larger_than_input},
    {"invalid_types", test_invalid_types},
    {"reader_misuse_and_sticky_error", test_reader_misuse_and_sticky_error},
    {"writer_errors", test_writer_errors},
    {"fd_report_round_trip", test_fd_report_round_trip},
    {"result_structs", test_result_structs},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
