/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "alloc.h"
#include "buf.h"
#include "testutil.h"

static void
test_big_endian_writers(void)
{
	struct rfd_buf b;
	uint8_t expect[18];

	rfd_buf_init(&b);
	CHECK_EQ(rfd_buf_put_u8(&b, 0x01), 0);
	CHECK_EQ(rfd_buf_put_u16(&b, 0x0203), 0);
	CHECK_EQ(rfd_buf_put_u24(&b, 0x040506), 0);
	CHECK_EQ(rfd_buf_put_u32(&b, 0x0708090a), 0);
	CHECK_EQ(rfd_buf_put_u64(&b, 0x0b0c0d0e0f101112ull), 0);
	CHECK_EQ(rfd_test_hex("01 0203 040506 0708090a 0b0c0d0e0f101112", expect, sizeof(expect)),
	         18);
	CHECK_EQ(b.len, 18);
	CHECK_MEM(b.data, expect, 18);
	CHECK_EQ(rfd_get_u16(b.data + 1), 0x0203);
	CHECK_EQ(rfd_get_u24(b.data + 3), 0x040506);
	CHECK_EQ(rfd_get_u32(b.data + 6), 0x0708090a);
	CHECK(rfd_get_u64(b.data + 10) == 0x0b0c0d0e0f101112ull);

	rfd_buf_patch_u24(&b, 3, 0xabcdef);
	CHECK_EQ(rfd_get_u24(b.data + 3), 0xabcdef);
	rfd_buf_free(&b);
}

static void
test_consume_and_growth(void)
{
	struct rfd_buf b;
	uint8_t bytes[1000];

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	rfd_buf_init(&b);
	for (int i = 0; i < 100; i++)
		REQUIRE(rfd_buf_append(&b, bytes, sizeof(bytes)) == 0);
	CHECK_EQ(b.len, 100000);
	CHECK(b.cap >= b.len);
	rfd_buf_consume(&b, 999);
	CHECK_EQ(b.len, 99001);
	CHECK_EQ(b.data[0], 999 % 256);
	rfd_buf_consume(&b, b.len + 5);
	CHECK_EQ(b.len, 0);
	rfd_buf_free(&b);
	CHECK(b.data == NULL);
}

static void
test_allocation_failure_leaves_buffer_unchanged(void)
{
	struct rfd_buf b;

	rfd_buf_init(&b);
	REQUIRE(rfd_buf_put_u32(&b, 7) == 0);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_buf_reserve(&b, 1 << 20), -ENOMEM);
	rfd_alloc_fail_at(-1);
	CHECK_EQ(b.len, 4);
	CHECK_EQ(rfd_get_u32(b.data), 7);
	CHECK_EQ(rfd_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	rfd_buf_free(&b);
}

static void
test_set_capacity_exactly(void)
{
	struct rfd_buf b;

	rfd_buf_init(&b);
	CHECK_EQ(rfd_buf_set_capacity(&b, 70000), 0);
	CHECK_EQ(b.cap, 70000);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(rfd_buf_append(&b, "abcdef", 6), 0);
	CHECK_EQ(b.cap, 70000);

	/* Shrinking keeps the bytes. */
	CHECK_EQ(rfd_buf_set_capacity(&b, 6), 0);
	CHECK_EQ(b.cap, 6);
	CHECK_EQ(b.len, 6);
	CHECK_MEM(b.data, "abcdef", 6);

	rfd_buf_consume(&b, 6);
	CHECK_EQ(rfd_buf_set_capacity(&b, 0), 0);
	CHECK(b.data == NULL);
	CHECK_EQ(b.cap, 0);
	CHECK_EQ(rfd_buf_set_capacity(&b, 0), 0);
	rfd_buf_free(&b);
}

static void
test_set_capacity_failure_leaves_buffer_unchanged(void)
{
	struct rfd_buf b;
	uint8_t *data;

	rfd_buf_init(&b);
	CHECK_EQ(rfd_buf_set_capacity(&b, 4096), 0);
	CHECK_EQ(rfd_buf_append(&b, "xyz", 3), 0);
	data = b.data;
	for (size_t cap = 16; cap <= 8192; cap *= 512) {
		rfd_alloc_fail_at(0);
		CHECK_EQ(rfd_buf_set_capacity(&b, cap), -ENOMEM);
		CHECK_EQ(rfd_alloc_fail_at(-1), 1);
		CHECK(b.data == data);
		CHECK_EQ(b.cap, 4096);
		CHECK_EQ(b.len, 3);
		CHECK_MEM(b.data, "xyz", 3);
	}
	rfd_buf_free(&b);
}

static const struct rfd_test tests[] = {
    {"big_endian_writers", test_big_endian_writers},
    {"consume_and_growth", test_consume_and_growth},
    {"set_capacity_exactly", test_set_capacity_exactly},
    {"set_capacity_failure_leaves_buffer_unchanged",
     test_set_capacity_failure_leaves_buffer_unchanged},
    {"allocation_failure_leaves_buffer_unchanged", test_allocation_failure_leaves_buffer_unchanged},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
