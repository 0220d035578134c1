/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void
fuzz_input_init(struct fuzz_input *in, const uint8_t *data, size_t size)
{
	assert(in);
	assert(data || size == 0);

	in->p = data;
	in->left = size;
}

bool
fuzz_input_empty(const struct fuzz_input *in)
{
	return in->left == 0;
}

uint8_t
fuzz_u8(struct fuzz_input *in)
{
	uint8_t v;

	if (in->left == 0)
		return 0;
	v = *in->p;
	in->p++;
	in->left--;
	return v;
}

uint16_t
fuzz_u16(struct fuzz_input *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

uint32_t
fuzz_u32(struct fuzz_input *in)
{
	uint32_t hi = fuzz_u16(in);

	return hi << 16 | fuzz_u16(in);
}

uint64_t
fuzz_u64(struct fuzz_input *in)
{
	uint64_t hi = fuzz_u32(in);

	return hi << 32 | fuzz_u32(in);
}

size_t
fuzz_take(struct fuzz_input *in, size_t n, const uint8_t **bytes)
{
	assert(bytes);

	if (n > in->left)
		n = in->left;
	*bytes = in->p;
	in->p += n;
	in->left -= n;
	return n;
}
