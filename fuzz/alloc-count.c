/* SPDX-License-Identifier: MIT */
/*
 * The library's allocation wrappers (alloc.h) for fuzz targets: they count
 * live blocks and bytes, so a target can demand that a run ends with nothing
 * allocated, a leak check that works in AFL++'s persistent mode where
 * LeakSanitizer only looks at exit; and the input can choose one allocation
 * to fail.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fuzz.h"

/* Kept in front of every block: its size, padded to keep the block aligned. */
union block_header {
	size_t size;
	max_align_t align;
};

static size_t live_bytes;
static size_t live_blocks;
static long alloc_count;
static long fail_index = -1;
static bool failed;
static bool held;

static bool
should_fail(void)
{
	if (held || alloc_count++ != fail_index)
		return false;
	failed = true;
	return true;
}

static void *
block_user(union block_header *h, size_t size)
{
	h->size = size;
	live_bytes += size;
	live_blocks++;
	return h + 1;
}

static union block_header *
block_header_of(void *ptr)
{
	return (union block_header *)ptr - 1;
}

void *
rfd_malloc(size_t size)
{
	union block_header *h;

	if (should_fail() || size > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + size);
	return h ? block_user(h, size) : NULL;
}

void *
rfd_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = rfd_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *
rfd_realloc(void *ptr, size_t size)
{
	union block_header *h;
	size_t old;

	if (!ptr)
		return rfd_malloc(size);
	if (should_fail() || size > SIZE_MAX - sizeof(*h))
		return NULL;
	h = block_header_of(ptr);
	old = h->size;
	h = realloc(h, sizeof(*h) + size);
	if (!h)
		return NULL;
	live_bytes -= old;
	live_blocks--;
	return block_user(h, size);
}

void
rfd_free(void *ptr)
{
	union block_header *h;

	if (!ptr)
		return;
	h = block_header_of(ptr);
	live_bytes -= h->size;
	live_blocks--;
	free(h);
}

long
rfd_alloc_fail_at(long n)
{
	long made = alloc_count;

	fuzz_alloc_fail_at(n);
	return made;
}

size_t
fuzz_alloc_live_bytes(void)
{
	return live_bytes;
}

size_t
fuzz_alloc_live_blocks(void)
{
	return live_blocks;
}

void
fuzz_alloc_fail_at(long n)
{
	alloc_count = 0;
	fail_index = n;
	failed = false;
}

bool
fuzz_alloc_failed(void)
{
	return failed;
}

void
fuzz_alloc_hold(bool hold)
{
	held = hold;
}
