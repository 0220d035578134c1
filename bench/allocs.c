/* SPDX-License-Identifier: MIT */
/*
 * A counting malloc: defined in the executable, these interpose on the C
 * library's allocator for the whole process (the library, libsystemd and
 * the C library itself), count each allocation call and hand it to glibc's
 * own entry points.  Sanitizer builds keep their own allocator and count
 * nothing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

#if COUNTING

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *ptr);

void *memalign(size_t alignment, size_t size);
void *valloc(size_t size);
void *pvalloc(size_t size);

static atomic_long allocations;

static void
count(void)
{
	atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *
malloc(size_t size)
{
	count();
	return __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
	count();
	return __libc_calloc(n, size);
}

void *
realloc(void *ptr, size_t size)
{
	count();
	return __libc_realloc(ptr, size);
}

void
free(void *ptr)
{
	__libc_free(ptr);
}

void *
memalign(size_t alignment, size_t size)
{
	count();
	return __libc_memalign(alignment, size);
}

void *
aligned_alloc(size_t alignment, size_t size)
{
	count();
	return __libc_memalign(alignment, size);
}

int
posix_memalign(void **out, size_t alignment, size_t size)
{
	void *ptr;

	if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0)
		return EINVAL;
	count();
	ptr = __libc_memalign(alignment, size);
	if (!ptr && size)
		return ENOMEM;
	*out = ptr;
	return 0;
}

void *
valloc(size_t size)
{
	count();
	return __libc_memalign(4096, size);
}

void *
pvalloc(size_t size)
{
	count();
	return __libc_memalign(4096, (size + 4095) & ~(size_t)4095);
}

long
alloc_count(void)
{
	return atomic_load_explicit(&allocations, memory_order_relaxed);
}

#else

long
alloc_count(void)
{
	return -1;
}

#endif
