/* SPDX-License-Identifier: MIT */
#include "fdqueue.h"

#include <assert.h>
#include <unistd.h>

#include "alloc.h"
#include "cmsg.h"
#include "fault.h"

/* The half of the sequence space that counts as "before". */
#define SEQ_HALF_RANGE ((uint64_t)1 << 62)

int64_t
rfd_seq_add(int64_t seq, int64_t n)
{
	/* Unsigned arithmetic wraps mod 2^64 without overflow; 2^63 divides that. */
	return (int64_t)(((uint64_t)seq + (uint64_t)n) & (uint64_t)INT64_MAX);
}

bool
rfd_seq_before(int64_t a, int64_t b)
{
	uint64_t distance = ((uint64_t)b - (uint64_t)a) & (uint64_t)INT64_MAX;

	return distance != 0 && distance < SEQ_HALF_RANGE;
}

static void
close_fds(const int *fds, size_t n)
{
	assert(fds || n == 0);

	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static size_t
count_owned(const struct rfd_fdgroup *g)
{
	size_t owned = 0;

	assert(g);

	for (size_t i = 0; i < g->n; i++)
		if (g->fds[i] >= 0)
			owned++;
	return owned;
}

static struct rfd_fdgroup *
group_alloc(const int *fds, size_t n, enum rfd_fdgroup_owner owner)
{
	struct rfd_fdgroup *g;

	assert(fds || n == 0);

	if (n > (SIZE_MAX - sizeof(*g)) / sizeof(int))
		return NULL;
	g = rfd_malloc(sizeof(*g) + n * sizeof(int));
	if (!g)
		return NULL;
	g->next = NULL;
	g->seq = -1;
	g->out_start = 0;
	g->out_end = 0;
	g->owner = owner;
	g->n = n;
	for (size_t i = 0; i < n; i++)
		g->fds[i] = fds[i];
	return g;
}

struct rfd_fdgroup *
rfd_fdgroup_new(const int *fds, size_t n)
{
	struct rfd_fdgroup *g = group_alloc(fds, n, RFD_FDGROUP_OWNED);

	if (!g)
		close_fds(fds, n);
	return g;
}

void
rfd_fdgroup_free(struct rfd_fdgroup *g)
{
	if (!g)
		return;
	switch (g->owner) {
	case RFD_FDGROUP_LENT:
		g->owner = RFD_FDGROUP_RETURNED;
		return;
	case RFD_FDGROUP_OWNED:
		close_fds(g->fds, g->n);
		break;
	case RFD_FDGROUP_RETURNED:
		break;
	}
	rfd_free(g);
}

struct rfd_fdgroup *
rfd_fdgroup_lend(const int *fds, size_t n)
{
	return group_alloc(fds, n, RFD_FDGROUP_LENT);
}

bool
rfd_fdgroup_returned(const struct rfd_fdgroup *g)
{
	assert(g);

	return g->owner == RFD_FDGROUP_RETURNED;
}

void
rfd_fdgroup_adopt(struct rfd_fdgroup *g)
{
	assert(g);
	assert(g->owner == RFD_FDGROUP_LENT);

	g->owner = RFD_FDGROUP_OWNED;
}

void
rfd_fdqueue_init(struct rfd_fdqueue *q)
{
	assert(q);

	q->head = NULL;
	q->tail = NULL;
	q->next_seq = 0;
	q->queued_fds = 0;
	q->n_groups = 0;
}

static struct rfd_fdgroup *
pop_head(struct rfd_fdqueue *q)
{
	struct rfd_fdgroup *g = q->head;

	assert(g);

	q->head = g->next;
	if (!q->head)
		q->tail = NULL;
	g->next = NULL;
	q->queued_fds -= g->n;
	q->n_groups--;
	return g;
}

void
rfd_fdqueue_clear(struct rfd_fdqueue *q)
{
	assert(q);

	while (q->head) {
		if (RFD_FAULT(keep_fds_at_eof))
			rfd_free(pop_head(q));
		else
			rfd_fdgroup_free(pop_head(q));
	}
}

void
rfd_fdqueue_push(struct rfd_fdqueue *q, struct rfd_fdgroup *g)
{
	assert(q);
	assert(g);
	assert(g->n > 0);

	g->next = NULL;
	g->seq = q->next_seq;
	q->next_seq = rfd_seq_add(q->next_seq, (int64_t)g->n);
	if (q->tail)
		q->tail->next = g;
	else
		q->head = g;
	q->tail = g;
	q->queued_fds += g->n;
	q->n_groups++;
}

/*
 * The faulty claims of the test variants: the first group of the right size
 * (whatever its sequence number), or the group at @seq with the older ones
 * left queued.
 */
static enum rfd_claim
claim_faulty(struct rfd_fdqueue *q, int64_t seq, int32_t num, struct rfd_fdgroup **out)
{
	struct rfd_fdgroup **link = &q->head, *prev = NULL;

	for (; *link; prev = *link, link = &(*link)->next) {
		struct rfd_fdgroup *g = *link;
		bool wanted = RFD_FAULT(skip_seq_check) ? g->n == (size_t)num : g->seq == seq;

		if (!wanted)
			continue;
		*link = g->next;
		if (q->tail == g)
			q->tail = prev;
		q->queued_fds -= g->n;
		q->n_groups--;
		if (g->n != (size_t)num) {
			rfd_fdgroup_free(g);
			return RFD_CLAIM_WRONG_SIZE;
		}
		*out = g;
		return RFD_CLAIM_OK;
	}
	return RFD_CLAIM_MISSING;
}

enum rfd_claim
rfd_fdqueue_claim(struct rfd_fdqueue *q, int64_t seq, int32_t num, struct rfd_fdgroup **out,
                  size_t *orphans_closed)
{
	struct rfd_fdgroup *g;

	assert(q);
	assert(out);
	assert(orphans_closed);

	*out = NULL;
	*orphans_closed = 0;
	if (seq < 0 || num < 1 || num > RFD_MAX_FDS)
		return RFD_CLAIM_INVALID;

	if (RFD_FAULT(skip_seq_check) || RFD_FAULT(keep_control_frame_fds))
		return claim_faulty(q, seq, num, out);

	while (q->head && rfd_seq_before(q->head->seq, seq)) {
		g = pop_head(q);
		*orphans_closed += count_owned(g);
		rfd_fdgroup_free(g);
	}
	if (!q->head)
		return RFD_CLAIM_MISSING;
	if (q->head->seq != seq)
		return RFD_CLAIM_AHEAD;

	g = pop_head(q);
	if (g->n != (size_t)num) {
		if (RFD_FAULT(leak_after_mismatch))
			rfd_free(g);
		else
			rfd_fdgroup_free(g);
		return RFD_CLAIM_WRONG_SIZE;
	}
	*out = g;
	return RFD_CLAIM_OK;
}
