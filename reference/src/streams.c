/* SPDX-License-Identifier: MIT */
#include "streams.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>

#include "alloc.h"

enum { STREAMS_MIN_CAPACITY = 16 };

static size_t
slot_of(uint32_t id, size_t capacity)
{
	/* Client ids step by 2: mix the bits so they do not crowd half the table. */
	return (size_t)((id * 2654435761u) >> 7) & (capacity - 1);
}

void
rfd_streams_init(struct rfd_streams *t)
{
	t->slots = NULL;
	t->capacity = 0;
	t->count = 0;
}

void
rfd_streams_free(struct rfd_streams *t)
{
	rfd_free(t->slots);
	rfd_streams_init(t);
}

struct rfd_stream_entry *
rfd_streams_find(const struct rfd_streams *t, uint32_t id)
{
	assert(t);

	if (t->count == 0 || id == 0)
		return NULL;
	for (size_t i = slot_of(id, t->capacity);; i = (i + 1) & (t->capacity - 1)) {
		if (t->slots[i].id == id)
			return &t->slots[i];
		if (t->slots[i].id == 0)
			return NULL;
	}
}

static void
place(struct rfd_stream_entry *slots, size_t capacity, const struct rfd_stream_entry *entry)
{
	size_t i = slot_of(entry->id, capacity);

	while (slots[i].id != 0)
		i = (i + 1) & (capacity - 1);
	slots[i] = *entry;
}

static int
grow(struct rfd_streams *t)
{
	size_t capacity = t->capacity ? t->capacity * 2 : STREAMS_MIN_CAPACITY;
	struct rfd_stream_entry *slots = rfd_calloc(capacity, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->capacity; i++)
		if (t->slots[i].id != 0)
			place(slots, capacity, &t->slots[i]);
	rfd_free(t->slots);
	t->slots = slots;
	t->capacity = capacity;
	return 0;
}

int
rfd_streams_insert(struct rfd_streams *t, const struct rfd_stream_entry *entry)
{
	assert(t);
	assert(entry);
	assert(entry->id != 0);

	/* Keep the load at most one half, so probes stay short and always end. */
	if ((t->count + 1) * 2 > t->capacity) {
		int r = grow(t);

		if (r < 0)
			return r;
	}
	place(t->slots, t->capacity, entry);
	t->count++;
	return 0;
}

void
rfd_streams_remove(struct rfd_streams *t, uint32_t id)
{
	struct rfd_stream_entry *hit = rfd_streams_find(t, id);
	size_t hole, i;

	if (!hit)
		return;
	hole = (size_t)(hit - t->slots);
	t->slots[hole].id = 0;
	t->count--;

	/* Backward-shift deletion: move later members of the probe run into the hole. */
	for (i = (hole + 1) & (t->capacity - 1); t->slots[i].id != 0;
	     i = (i + 1) & (t->capacity - 1)) {
		size_t home = slot_of(t->slots[i].id, t->capacity);
		bool movable = (i > hole) ? (home <= hole || home > i) : (home <= hole && home > i);

		if (movable) {
			t->slots[hole] = t->slots[i];
			t->slots[i].id = 0;
			hole = i;
		}
	}
}
