/* SPDX-License-Identifier: MIT */
/* The set of streams a connection has open: an open-addressing hash table keyed by stream id. */
#ifndef RFD_STREAMS_H
#define RFD_STREAMS_H

#include <stddef.h>
#include <stdint.h>

enum rfd_stream_state {
	RFD_STREAM_OPEN = 1,
	RFD_STREAM_ABANDONED, /* client: nobody waits for the reply any more */
	RFD_STREAM_CANCELLED, /* server: the client sent CANCEL; the reply is dropped */
};

struct rfd_stream {
	uint32_t id; /* 0: free slot */
	uint8_t state;
};

struct rfd_streams {
	struct rfd_stream *slots;
	size_t capacity; /* a power of two, or 0 */
	size_t count;
};

void rfd_streams_init(struct rfd_streams *t);
void rfd_streams_free(struct rfd_streams *t);

/* The stream with @id, or NULL.  The pointer is valid until the next insert or remove. */
struct rfd_stream *rfd_streams_find(const struct rfd_streams *t, uint32_t id);

/* Add @id (non-zero, not present) in @state.  Returns 0 or -ENOMEM. */
int rfd_streams_insert(struct rfd_streams *t, uint32_t id, uint8_t state);

void rfd_streams_remove(struct rfd_streams *t, uint32_t id);

#endif
