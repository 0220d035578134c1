/* SPDX-License-Identifier: MIT */
/* A growable byte buffer with big-endian writers, the unit all encoders write into. */
#ifndef RFD_BUF_H
#define RFD_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rfd_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* A view of bytes owned by someone else, typically the input buffer. */
struct rfd_slice {
	const uint8_t *ptr;
	size_t len;
};

void rfd_buf_init(struct rfd_buf *b);
void rfd_buf_free(struct rfd_buf *b);

/* rfd_buf_reserve() when the room is not there: grows the buffer. */
int rfd_buf_grow(struct rfd_buf *b, size_t extra);

/*
 * Make room for @extra more bytes.  Returns 0 or -ENOMEM (the buffer is
 * unchanged).  Inline, like the writers below: encoders append a byte or a
 * varint at a time, and the room is almost always there.
 */
static inline int
rfd_buf_reserve(struct rfd_buf *b, size_t extra)
{
	return extra <= b->cap - b->len ? 0 : rfd_buf_grow(b, extra);
}

/* Each returns 0 or -ENOMEM; on failure nothing was appended. */
static inline int
rfd_buf_append(struct rfd_buf *b, const void *bytes, size_t n)
{
	int r = rfd_buf_reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, bytes, n);
	b->len += n;
	return 0;
}

/* Append the @n low bytes of @v, most significant first. */
static inline int
rfd_buf_put_be(struct rfd_buf *b, uint64_t v, size_t n)
{
	int r = rfd_buf_reserve(b, n);

	if (r < 0)
		return r;
	for (size_t i = n; i > 0; i--)
		b->data[b->len++] = (uint8_t)(v >> (8 * (i - 1)));
	return 0;
}

static inline int
rfd_buf_put_u8(struct rfd_buf *b, uint8_t v)
{
	return rfd_buf_put_be(b, v, 1);
}

static inline int
rfd_buf_put_u16(struct rfd_buf *b, uint16_t v)
{
	return rfd_buf_put_be(b, v, 2);
}

static inline int
rfd_buf_put_u24(struct rfd_buf *b, uint32_t v)
{
	return rfd_buf_put_be(b, v & 0xFFFFFF, 3);
}

static inline int
rfd_buf_put_u32(struct rfd_buf *b, uint32_t v)
{
	return rfd_buf_put_be(b, v, 4);
}

static inline int
rfd_buf_put_u64(struct rfd_buf *b, uint64_t v)
{
	return rfd_buf_put_be(b, v, 8);
}

/* Overwrite three bytes at @offset with @v, big-endian (for lengths known only later). */
void rfd_buf_patch_u24(struct rfd_buf *b, size_t offset, uint32_t v);

/* Drop the first @n bytes (n <= len). */
void rfd_buf_consume(struct rfd_buf *b, size_t n);

/*
 * Make the capacity exactly @cap bytes, which must hold the bytes there
 * (cap >= len; 0 frees an empty buffer).  Returns 0 or -ENOMEM (the buffer
 * is unchanged).
 */
int rfd_buf_set_capacity(struct rfd_buf *b, size_t cap);

/* Big-endian readers; the caller has checked that the bytes are there. */
static inline uint16_t
rfd_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rfd_get_u24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t
rfd_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
rfd_get_u64(const uint8_t *p)
{
	return (uint64_t)rfd_get_u32(p) << 32 | rfd_get_u32(p + 4);
}

#endif
