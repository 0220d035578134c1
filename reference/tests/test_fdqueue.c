/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc.h"
#include "fdqueue.h"
#include "testutil.h"

#define SEQ_MAX     INT64_MAX
#define SEQ_QUARTER ((int64_t)1 << 62)

/* @n distinct FDs, all naming the read end of one pipe. */
static void
open_fds(int *fds, size_t n)
{
	int pipe_fds[2];

	if (pipe(pipe_fds) < 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		fds[i] = fcntl(pipe_fds[0], F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0)
			abort();
	}
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

static size_t
count_open(const int *fds, size_t n)
{
	size_t n_open = 0;

	for (size_t i = 0; i < n; i++)
		if (rfd_test_fd_is_open(fds[i]))
			n_open++;
	return n_open;
}

/* A group of @n fresh FDs whose numbers are copied to @fds. */
static struct rfd_fdgroup *
new_group(int *fds, size_t n)
{
	struct rfd_fdgroup *g;

	open_fds(fds, n);
	g = rfd_fdgroup_new(fds, n);
	if (!g)
		abort();
	return g;
}

static void
test_seq_add_folly_vectors(void)
{
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 2, 3), 0);
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 2, 4), 1);
	CHECK_EQ(rfd_seq_add(SEQ_MAX, 1), 0);
	CHECK_EQ(rfd_seq_add(SEQ_MAX, 4), 3);
}

static void
test_seq_add_around_wrap(void)
{
	CHECK_EQ(rfd_seq_add(0, 0), 0);
	CHECK_EQ(rfd_seq_add(5, 253), 258);
	CHECK_EQ(rfd_seq_add(SEQ_MAX, 0), SEQ_MAX);
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 1, 1), SEQ_MAX);
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 252, 252), SEQ_MAX);
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 252, 253), 0);
	CHECK_EQ(rfd_seq_add(SEQ_MAX - 100, 253), 152);
	/* (2^63 - 1) * 2 = 2^64 - 2, which is 2^63 - 2 modulo 2^63. */
	CHECK_EQ(rfd_seq_add(SEQ_MAX, SEQ_MAX), SEQ_MAX - 1);
	CHECK_EQ(rfd_seq_add(SEQ_QUARTER, SEQ_QUARTER), 0);
	CHECK_EQ(rfd_seq_add(0, -1), SEQ_MAX);
}

static void
test_seq_before(void)
{
	CHECK(rfd_seq_before(0, 1));
	CHECK(!rfd_seq_before(1, 0));
	CHECK(!rfd_seq_before(5, 5));
	CHECK(!rfd_seq_before(0, 0));
	CHECK(rfd_seq_before(SEQ_MAX, 0));
	CHECK(!rfd_seq_before(0, SEQ_MAX));
	CHECK(rfd_seq_before(SEQ_MAX - 2, 1));
	CHECK(!rfd_seq_before(1, SEQ_MAX - 2));
	CHECK(!rfd_seq_before(SEQ_MAX, SEQ_MAX));
	CHECK(rfd_seq_before(SEQ_MAX - 1, SEQ_MAX));
	/* The window is a distance under 2^62, in either direction of the wrap. */
	CHECK(rfd_seq_before(0, SEQ_QUARTER - 1));
	CHECK(!rfd_seq_before(0, SEQ_QUARTER));
	CHECK(rfd_seq_before(SEQ_QUARTER + 1, 0));
	CHECK(!rfd_seq_before(SEQ_QUARTER, 0));
	CHECK(rfd_seq_before(SEQ_MAX - 10, SEQ_QUARTER - 12));
	CHECK(!rfd_seq_before(SEQ_MAX - 10, SEQ_QUARTER - 11));
}

static void
test_push_and_claim_in_order(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *g[3], *out;
	int fds[6];
	size_t orphans = 99;

	rfd_fdqueue_init(&q);
	g[0] = new_group(fds, 1);
	g[1] = new_group(fds + 1, 2);
	g[2] = new_group(fds + 3, 3);
	for (int i = 0; i < 3; i++)
		rfd_fdqueue_push(&q, g[i]);
	CHECK_EQ(g[0]->seq, 0);
	CHECK_EQ(g[1]->seq, 1);
	CHECK_EQ(g[2]->seq, 3);
	CHECK_EQ(q.next_seq, 6);
	CHECK_EQ(q.queued_fds, 6);
	CHECK_EQ(q.n_groups, 3);

	CHECK_EQ(rfd_fdqueue_claim(&q, 0, 1, &out, &orphans), RFD_CLAIM_OK);
	CHECK(out == g[0]);
	CHECK_EQ(orphans, 0);
	CHECK_EQ(q.queued_fds, 5);
	CHECK_EQ(q.n_groups, 2);
	rfd_fdgroup_free(out);

	CHECK_EQ(rfd_fdqueue_claim(&q, 1, 2, &out, &orphans), RFD_CLAIM_OK);
	CHECK(out == g[1]);
	REQUIRE(out);
	CHECK_EQ(out->n, 2);
	CHECK_EQ(out->fds[0], fds[1]);
	CHECK_EQ(out->fds[1], fds[2]);
	CHECK(out->next == NULL);
	rfd_fdgroup_free(out);

	CHECK_EQ(rfd_fdqueue_claim(&q, 3, 3, &out, &orphans), RFD_CLAIM_OK);
	CHECK(out == g[2]);
	CHECK_EQ(count_open(fds + 3, 3), 3);
	rfd_fdgroup_free(out);
	CHECK_EQ(count_open(fds, 6), 0);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ(q.queued_fds, 0);
	CHECK_EQ(q.n_groups, 0);
	CHECK_EQ(q.next_seq, 6);
}

static void
test_orphans_older_than_claim_closed(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *g2, *out;
	int fds[5];
	size_t orphans = 0;

	rfd_fdqueue_init(&q);
	rfd_fdqueue_push(&q, new_group(fds, 2));
	rfd_fdqueue_push(&q, new_group(fds + 2, 1));
	g2 = new_group(fds + 3, 2);
	rfd_fdqueue_push(&q, g2);

	CHECK_EQ(rfd_fdqueue_claim(&q, 3, 2, &out, &orphans), RFD_CLAIM_OK);
	CHECK(out == g2);
	CHECK_EQ(orphans, 3);
	CHECK_EQ(count_open(fds, 3), 0);
	CHECK_EQ(count_open(fds + 3, 2), 2);
	CHECK_EQ(q.n_groups, 0);
	CHECK_EQ(q.queued_fds, 0);
	rfd_fdgroup_free(out);
}

static void
test_claim_across_wrap(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *g, *out;
	int fds[7];
	size_t orphans = 0;

	rfd_fdqueue_init(&q);
	q.next_seq = SEQ_MAX - 1;
	g = new_group(fds, 3);
	rfd_fdqueue_push(&q, g);
	CHECK_EQ(g->seq, SEQ_MAX - 1);
	CHECK_EQ(q.next_seq, 1);
	g = new_group(fds + 3, 4);
	rfd_fdqueue_push(&q, g);
	CHECK_EQ(g->seq, 1);
	CHECK_EQ(q.next_seq, 5);

	/* A claim from before the wrap sees the head as newer. */
	CHECK_EQ(rfd_fdqueue_claim(&q, SEQ_MAX - 5, 1, &out, &orphans), RFD_CLAIM_AHEAD);
	CHECK_EQ(q.n_groups, 2);
	CHECK_EQ(count_open(fds, 7), 7);

	/* The claim after the wrap closes the group from before it. */
	CHECK_EQ(rfd_fdqueue_claim(&q, 1, 4, &out, &orphans), RFD_CLAIM_OK);
	CHECK(out == g);
	CHECK_EQ(orphans, 3);
	CHECK_EQ(count_open(fds, 3), 0);
	CHECK_EQ(count_open(fds + 3, 4), 4);
	rfd_fdgroup_free(out);
}

static void
test_wrong_size_closes_group(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *out = (struct rfd_fdgroup *)&q;
	int fds[3];
	size_t orphans = 99;

	rfd_fdqueue_init(&q);
	rfd_fdqueue_push(&q, new_group(fds, 2));
	rfd_fdqueue_push(&q, new_group(fds + 2, 1));

	CHECK_EQ(rfd_fdqueue_claim(&q, 0, 3, &out, &orphans), RFD_CLAIM_WRONG_SIZE);
	CHECK(out == NULL);
	CHECK_EQ(orphans, 0);
	CHECK_EQ(count_open(fds, 2), 0);
	CHECK_EQ(count_open(fds + 2, 1), 1);
	CHECK_EQ(q.n_groups, 1);
	CHECK_EQ(q.queued_fds, 1);

	CHECK_EQ(rfd_fdqueue_claim(&q, 2, 1, &out, &orphans), RFD_CLAIM_OK);
	rfd_fdgroup_free(out);
}

static void
test_ahead_leaves_group_queued(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *out = (struct rfd_fdgroup *)&q;
	int fds[2];
	size_t orphans = 99;

	rfd_fdqueue_init(&q);
	q.next_seq = 10;
	rfd_fdqueue_push(&q, new_group(fds, 2));

	CHECK_EQ(rfd_fdqueue_claim(&q, 5, 2, &out, &orphans), RFD_CLAIM_AHEAD);
	CHECK(out == NULL);
	CHECK_EQ(orphans, 0);
	CHECK_EQ(q.n_groups, 1);
	CHECK_EQ(q.queued_fds, 2);
	CHECK_EQ(count_open(fds, 2), 2);

	CHECK_EQ(rfd_fdqueue_claim(&q, 10, 2, &out, &orphans), RFD_CLAIM_OK);
	rfd_fdgroup_free(out);
	CHECK_EQ(count_open(fds, 2), 0);
}

static void
test_missing(void)
{
	struct rfd_fdqueue q;
	struct rfd_fdgroup *out = (struct rfd_fdgroup *)&q;
	int fds[2];
	size_t orphans = 99;

	rfd_fdqueue_init(&q);
	CHECK_EQ(rfd_fdqueue_claim(&q, 0, 1, &out, &orphans), RFD_CLAIM_MISSING);
	CHECK(out == NULL);
	CHECK_EQ(orphans, 0);

	/* Everything queued is older than the claim: closed, then missing. */
	rfd_fdqueue_push(&q, new_group(fds, 2));
	CHECK_EQ(rfd_fdqueue_claim(&q, 2, 1, &out, &orphans), RFD_CLAIM_MISSING);
	CHECK_EQ(orphans, 2);
	CHECK_EQ(count_open(fds, 2), 0);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ(q.n_groups, 0);
	CHECK_EQ(q.queued_fds, 0);
}

static void
test_invalid_touches_nothing(void)
{
	static const struct {
		int64_t seq;
		int32_t num;
	} cases[] = {{-1, 1}, {INT64_MIN, 1}, {0, 0}, {0, -1}, {0, 254}, {0, INT32_MAX}};
	struct rfd_fdqueue q;
	struct rfd_fdgroup *out;
	int fds[1];
	size_t orphans;

	rfd_fdqueue_init(&q);
	q.next_seq = 4;
	rfd_fdqueue_push(&q, new_group(fds, 1));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = (struct rfd_fdgroup *)&q;
		orphans = 99;
		CHECK_EQ(rfd_fdqueue_claim(&q, cases[i].seq, cases[i].num, &out, &orphans),
		         RFD_CLAIM_INVALID);
		CHECK(out == NULL);
		CHECK_EQ(orphans, 0);
	}
	CHECK_EQ(q.n_groups, 1);
	CHECK_EQ(q.queued_fds, 1);
	CHECK_EQ(count_open(fds, 1), 1);

	/* 253 is the top of the valid range: the claim reaches the queue. */
	CHECK_EQ(rfd_fdqueue_claim(&q, 4, 253, &out, &orphans), RFD_CLAIM_WRONG_SIZE);
	CHECK_EQ(count_open(fds, 1), 0);
}

static void
test_clear_closes_all(void)
{
	struct rfd_fdqueue q;
	int fds[6];

	rfd_fdqueue_init(&q);
	rfd_fdqueue_push(&q, new_group(fds, 1));
	rfd_fdqueue_push(&q, new_group(fds + 1, 2));
	rfd_fdqueue_push(&q, new_group(fds + 3, 3));
	rfd_fdqueue_clear(&q);
	CHECK_EQ(count_open(fds, 6), 0);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ(q.n_groups, 0);
	CHECK_EQ(q.queued_fds, 0);
	CHECK_EQ(q.next_seq, 6);

	rfd_fdqueue_clear(&q);
	rfd_fdqueue_push(&q, new_group(fds, 1));
	CHECK_EQ(q.head->seq, 6);
	rfd_fdqueue_clear(&q);
}

static void
test_group_free_skips_released_slots(void)
{
	struct rfd_fdgroup *g;
	int fds[3];

	g = new_group(fds, 3);
	g->fds[1] = -1;
	rfd_fdgroup_free(g);
	CHECK(!rfd_test_fd_is_open(fds[0]));
	CHECK(rfd_test_fd_is_open(fds[1]));
	CHECK(!rfd_test_fd_is_open(fds[2]));
	close(fds[1]);
	rfd_fdgroup_free(NULL);
}

static void
test_group_new_allocation_failure(void)
{
	struct rfd_fdgroup *g;
	int fds[3];

	open_fds(fds, 3);
	rfd_alloc_fail_at(0);
	g = rfd_fdgroup_new(fds, 3);
	CHECK_EQ(rfd_alloc_fail_at(-1), 1);
	CHECK(g == NULL);
	CHECK_EQ(count_open(fds, 3), 0);

	/* The next allocation succeeds and takes its FDs. */
	open_fds(fds, 3);
	g = rfd_fdgroup_new(fds, 3);
	REQUIRE(g);
	CHECK_EQ(g->n, 3);
	CHECK_EQ(g->seq, -1);
	CHECK_EQ(count_open(fds, 3), 3);
	rfd_fdgroup_free(g);
	CHECK_EQ(count_open(fds, 3), 0);
}

static void
test_lent_group_is_handed_back(void)
{
	struct rfd_fdgroup *g;
	int fds[2];

	open_fds(fds, 2);
	g = rfd_fdgroup_lend(fds, 2);
	REQUIRE(g);
	CHECK_EQ(g->n, 2);
	CHECK(!rfd_fdgroup_returned(g));

	/* The holder frees it: the lender's FDs stay open and the group comes back. */
	rfd_fdgroup_free(g);
	CHECK(rfd_fdgroup_returned(g));
	CHECK_EQ(count_open(fds, 2), 2);
	CHECK_EQ(g->fds[0], fds[0]);
	CHECK_EQ(g->fds[1], fds[1]);

	/* The lender frees it for good, closing nothing. */
	rfd_fdgroup_free(g);
	CHECK_EQ(count_open(fds, 2), 2);
	close(fds[0]);
	close(fds[1]);
}

static void
test_adopted_group_owns_its_fds(void)
{
	struct rfd_fdgroup *g;
	int lender[2], copies[2];

	open_fds(lender, 2);
	open_fds(copies, 1);
	g = rfd_fdgroup_lend(lender, 2);
	REQUIRE(g);
	g->fds[0] = copies[0];
	g->fds[1] = -1;
	rfd_fdgroup_adopt(g);
	CHECK(!rfd_fdgroup_returned(g));
	rfd_fdgroup_free(g);
	CHECK(!rfd_test_fd_is_open(copies[0]));
	CHECK_EQ(count_open(lender, 2), 2);
	close(lender[0]);
	close(lender[1]);
}

static void
test_lend_allocation_failure_closes_nothing(void)
{
	int fds[2];

	open_fds(fds, 2);
	rfd_alloc_fail_at(0);
	CHECK(rfd_fdgroup_lend(fds, 2) == NULL);
	CHECK_EQ(rfd_alloc_fail_at(-1), 1);
	CHECK_EQ(count_open(fds, 2), 2);
	close(fds[0]);
	close(fds[1]);
}

static const struct rfd_test tests[] = {
    {"seq_add_folly_vectors", test_seq_add_folly_vectors},
    {"seq_add_around_wrap", test_seq_add_around_wrap},
    {"seq_before", test_seq_before},
    {"push_and_claim_in_order", test_push_and_claim_in_order},
    {"orphans_older_than_claim_closed", test_orphans_older_than_claim_closed},
    {"claim_across_wrap", test_claim_across_wrap},
    {"wrong_size_closes_group", test_wrong_size_closes_group},
    {"ahead_leaves_group_queued", test_ahead_leaves_group_queued},
    {"missing", test_missing},
    {"invalid_touches_nothing", test_invalid_touches_nothing},
    {"clear_closes_all", test_clear_closes_all},
    {"group_free_skips_released_slots", test_group_free_skips_released_slots},
    {"group_new_allocation_failure", test_group_new_allocation_failure},
    {"lent_group_is_handed_back", test_lent_group_is_handed_back},
    {"adopted_group_owns_its_fds", test_adopted_group_owns_its_fds},
    {"lend_allocation_failure_closes_nothing", test_lend_allocation_failure_closes_nothing},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
