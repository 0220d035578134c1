/* SPDX-License-Identifier: MIT */
#include "buf.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "alloc.h"

enum { BUF_MIN_CAPACITY = 256 };

void
rfd_buf_init(struct rfd_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
rfd_buf_free(struct rfd_buf *b)
{
	rfd_free(b->data);
	rfd_buf_init(b);
}

int
rfd_buf_grow(struct rfd_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *data;

	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;

	cap = b->cap ? b->cap : BUF_MIN_CAPACITY;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;

	data = rfd_realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

void
rfd_buf_patch_u24(struct rfd_buf *b, size_t offset, uint32_t v)
{
	b->data[offset] = (uint8_t)(v >> 16);
	b->data[offset + 1] = (uint8_t)(v >> 8);
	b->data[offset + 2] = (uint8_t)v;
}

void
rfd_buf_consume(struct rfd_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

int
rfd_buf_set_capacity(struct rfd_buf *b, size_t cap)
{
	uint8_t *data;

	assert(cap >= b->len);

	if (cap == b->cap)
		return 0;
	if (cap == 0) {
		rfd_buf_free(b);
		return 0;
	}
	if (cap > b->cap) {
		data = rfd_realloc(b->data, cap);
	} else {
		/*
		 * A new block rather than realloc(), which would keep a large
		 * block mapped at a smaller size: freeing it lets malloc
		 * adapt to such sizes (glibc then serves them from its heap).
		 */
		data = rfd_malloc(cap);
		if (data && b->len)
			memcpy(data, b->data, b->len);
		if (data)
			rfd_free(b->data);
	}
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}
