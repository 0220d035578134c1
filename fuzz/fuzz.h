/* SPDX-License-Identifier: MIT */
/*
 * What every fuzz target shares: the libFuzzer entry points the drivers call,
 * a reader that turns the input into numbers and byte runs, a check that
 * aborts with a message, and the counting allocator's view of the heap.
 */
#ifndef RFD_FUZZ_H
#define RFD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each target defines the first; the second is optional (a weak default does nothing). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Print "fuzz: <what>" to stderr and abort(): a crash the fuzzer records. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__VA_ARGS__);                                                    \
	} while (0)

/*
 * The input, consumed from the front.  Reads past the end give zeros, so a
 * truncated input is still a valid (shorter) script.
 */
struct fuzz_input {
	const uint8_t *p;
	size_t left;
};

void fuzz_input_init(struct fuzz_input *in, const uint8_t *data, size_t size);
bool fuzz_input_empty(const struct fuzz_input *in);
uint8_t fuzz_u8(struct fuzz_input *in);
uint16_t fuzz_u16(struct fuzz_input *in); /* big-endian, like the wire */
uint32_t fuzz_u32(struct fuzz_input *in);
uint64_t fuzz_u64(struct fuzz_input *in);
/* Up to @n bytes: returns how many there were and points *bytes at them. */
size_t fuzz_take(struct fuzz_input *in, size_t n, const uint8_t **bytes);

/* The counting allocator behind rfd_malloc() and friends (alloc-count.c). */
size_t fuzz_alloc_live_bytes(void);
size_t fuzz_alloc_live_blocks(void);
/* Fail the allocation numbered @n from now on (counting from 0); -1: none. */
void fuzz_alloc_fail_at(long n);
/* Whether the chosen allocation has failed since fuzz_alloc_fail_at(). */
bool fuzz_alloc_failed(void);
/* While held, allocations (the harness's own) are neither counted for failing nor failed. */
void fuzz_alloc_hold(bool hold);

#endif
