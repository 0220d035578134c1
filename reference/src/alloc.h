/* SPDX-License-Identifier: MIT */
/*
 * Every heap allocation of the library goes through these wrappers, so that
 * tests can make any one allocation fail and check that nothing leaks.
 */
#ifndef RFD_ALLOC_H
#define RFD_ALLOC_H

#include <stddef.h>

void *rfd_malloc(size_t size);
void *rfd_calloc(size_t n, size_t size);
void *rfd_realloc(void *ptr, size_t size);
void rfd_free(void *ptr);

/*
 * Test hook: the allocation numbered @n (counting from 0 after this call)
 * fails, and every other succeeds.  A negative @n switches injection off.
 * Returns how many allocations were made since the previous call.
 */
long rfd_alloc_fail_at(long n);

#endif
