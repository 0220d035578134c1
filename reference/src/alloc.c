/* SPDX-License-Identifier: MIT */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

/*
 * The counters are process-wide on purpose: they exist only for fault
 * injection in tests, which run one scenario at a time.
 */
static _Atomic long alloc_count;
static _Atomic long alloc_fail_index = -1;

static int
should_fail(void)
{
	long index = atomic_fetch_add(&alloc_count, 1);

	return index == atomic_load(&alloc_fail_index);
}

void *
rfd_malloc(size_t size)
{
	if (should_fail())
		return NULL;
	return malloc(size);
}

void *
rfd_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n, size);
}

void *
rfd_realloc(void *ptr, size_t size)
{
	if (should_fail())
		return NULL;
	return realloc(ptr, size);
}

void
rfd_free(void *ptr)
{
	free(ptr);
}

long
rfd_alloc_fail_at(long n)
{
	long made = atomic_exchange(&alloc_count, 0);

	atomic_store(&alloc_fail_index, n);
	return made;
}
