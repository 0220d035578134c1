/* SPDX-License-Identifier: MIT */
/*
 * The calls a connection has open, by stream id: an open-addressing hash
 * table of small entries.  A request-response call has one entry until it is
 * answered; a stream or a sink keeps its entry, with its credits, until its
 * final frame.
 */
#ifndef RFD_STREAMS_H
#define RFD_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which interaction the stream id carries. */
enum rfd_entry_kind {
	RFD_ENTRY_RESPONSE = 0, /* REQUEST_RESPONSE */
	RFD_ENTRY_STREAM,       /* REQUEST_STREAM */
	RFD_ENTRY_SINK,         /* REQUEST_CHANNEL of kind SINK */
};

enum rfd_entry_state {
	RFD_ENTRY_OPEN = 1,  /* awaiting its answer (client) / being handled (server) */
	RFD_ENTRY_FLOWING,   /* a stream or sink past its first response */
	RFD_ENTRY_ENDING,    /* server: the stream's or sink's final frame waits to be written */
	RFD_ENTRY_ABANDONED, /* client: nobody waits; late frames are read, their FDs closed */
	RFD_ENTRY_CANCELLED, /* server: the client sent CANCEL before the answer; it is dropped */
};

struct rfd_stream_entry {
	uint32_t id; /* 0: free slot */
	uint8_t kind;
	uint8_t state;
	bool started;    /* a stream's first response was sent (server) or received (client) */
	bool completed;  /* a sink's completion was queued (client) or received (server) */
	bool agreed;     /* client: the sink's first response accepted the extension sink */
	bool owed;       /* server: a stream's first response went without credit */
	uint16_t queued; /* messages of this stream waiting in the connection's stream queue */
	/* A stream's items the server may still send; a sink's the client may still send. */
	uint32_t credits;
	uint32_t order; /* client: when it was abandoned, to forget the oldest first */
};

struct rfd_streams {
	struct rfd_stream_entry *slots;
	size_t capacity; /* a power of two, or 0 */
	size_t count;
};

void rfd_streams_init(struct rfd_streams *t);
void rfd_streams_free(struct rfd_streams *t);

/* The entry of @id, or NULL.  The pointer is valid until the next insert or remove. */
struct rfd_stream_entry *rfd_streams_find(const struct rfd_streams *t, uint32_t id);

/* Add a copy of @entry, whose id is non-zero and not present.  Returns 0 or -ENOMEM. */
int rfd_streams_insert(struct rfd_streams *t, const struct rfd_stream_entry *entry);

void rfd_streams_remove(struct rfd_streams *t, uint32_t id);

#endif
