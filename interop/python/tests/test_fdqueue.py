"""Sequence arithmetic (7.2, A.10) and the claim procedure (7.5)."""

import itertools
import unittest

from helpers import RecordingCloser

from rocketfd_py.fdqueue import (AT, INT64_MAX, NEWER, OLDER, FdQueue, QueueError, seq_add, seq_age,
                                 seq_dist)

TWO_62 = 1 << 62
TWO_63 = 1 << 63


class SequenceArithmetic(unittest.TestCase):
    def test_addition_vectors(self):
        vectors = [
            (0, 1, 1), (0, 253, 253), (INT64_MAX - 2, 3, 0), (INT64_MAX - 2, 4, 1), (INT64_MAX, 1, 0),
            (INT64_MAX, 4, 3), (9223372036854775555, 253, 0), (INT64_MAX, 253, 252),
        ]
        self.assertEqual(INT64_MAX - 252, 9223372036854775555)
        for seq, count, expected in vectors:
            self.assertEqual(seq_add(seq, count), expected, (seq, count))

    def test_comparison_vectors(self):
        vectors = [
            (0, 0, 0, AT), (0, 3, 3, OLDER), (5, 3, TWO_63 - 2, NEWER), (INT64_MAX - 1, 1, 3, OLDER),
            (1, INT64_MAX - 1, TWO_63 - 3, NEWER), (0, TWO_62 - 1, TWO_62 - 1, OLDER), (0, TWO_62, TWO_62, NEWER),
        ]
        self.assertEqual(TWO_62, 4611686018427387904)
        for group, claim, dist, age in vectors:
            self.assertEqual(seq_dist(group, claim), dist, (group, claim))
            self.assertEqual(seq_age(group, claim), age, (group, claim))


def queue_from(groups, closer):
    """A queue holding groups [(seq, count)]: FDs are fake numbers 1000 + i."""
    queue = FdQueue(closer=closer)
    numbers = itertools.count(1000)
    for seq, count in groups:
        queue.received = seq
        queue.append([next(numbers) for _ in range(count)])
    return queue


class ClaimVectors(unittest.TestCase):
    """The table of section 7.5, row by row."""

    ABSENT = None
    ROWS = [
        # queue before, numFds, fdSeqNum, ok, taken group, queue after, closed groups
        ([(0, 1)], 1, 0, True, (0, 1), [], []),
        ([(0, 2)], 1, 0, False, None, [], [0]),
        ([(0, 1)], 1, 5, False, None, [], [0]),
        ([(1, 1)], 1, 0, False, None, [(1, 1)], []),
        ([(0, 2), (2, 1)], 1, 2, True, (2, 1), [], [0]),
        ([], 1, 0, False, None, [], []),
        ([(0, 1)], 0, 7, True, None, [(0, 1)], []),
        ([(0, 1)], None, 0, True, None, [(0, 1)], []),
        ([(0, 1)], 254, 0, False, None, [(0, 1)], []),
        ([(0, 1)], 1, None, False, None, [(0, 1)], []),
        ([(0, 1)], 1, -1, False, None, [(0, 1)], []),
        ([(0, 3)], 1, 1, False, None, [], [0]),
        ([(INT64_MAX - 1, 3), (1, 2)], 2, 1, True, (1, 2), [], [INT64_MAX - 1]),
    ]

    def test_rows(self):
        for before, num_fds, fd_seq_num, ok, taken, after, closed_groups in self.ROWS:
            with self.subTest(before=before, num_fds=num_fds, fd_seq_num=fd_seq_num):
                closer = RecordingCloser()
                queue = queue_from(before, closer)
                fds_of = {seq: list(fds) for seq, fds in queue.groups}
                claim = queue.claim(num_fds, fd_seq_num)
                self.assertEqual(claim.ok, ok, claim.reason)
                self.assertEqual(claim.fds, fds_of[taken[0]] if taken else [])
                self.assertEqual(queue.snapshot(), after)
                self.assertEqual(closer.closed, [fd for seq in closed_groups for fd in fds_of[seq]])

    def test_queue_counts_follow_groups(self):
        queue = FdQueue(closer=RecordingCloser())
        queue.append([1, 2])
        queue.append([])
        queue.append([3])
        self.assertEqual(queue.snapshot(), [(0, 2), (2, 1)])
        self.assertEqual(queue.received, 3)
        self.assertEqual(queue.queued, 3)

    def test_received_count_wraps(self):
        queue = FdQueue(closer=RecordingCloser())
        queue.received = INT64_MAX - 1
        queue.append([1, 2, 3])
        queue.append([4])
        self.assertEqual(queue.snapshot(), [(INT64_MAX - 1, 3), (1, 1)])
        claim = queue.claim(1, 1)
        self.assertTrue(claim.ok)
        self.assertEqual(claim.orphans_closed, 3)


class Limits(unittest.TestCase):
    def test_cap(self):
        closer = RecordingCloser()
        queue = FdQueue(cap=4, budget=8, closer=closer)
        with self.assertRaises(QueueError):
            queue.append(list(range(5)))
        self.assertEqual(queue.close_all(), 5)
        self.assertEqual(sorted(closer.closed), list(range(5)))

    def test_claim_above_cap(self):
        queue = FdQueue(cap=4, budget=8, closer=RecordingCloser())
        queue.append([1, 2, 3, 4])
        self.assertFalse(queue.claim(5, 0).ok)
        self.assertEqual(queue.snapshot(), [(0, 4)])

    def test_budget(self):
        queue = FdQueue(cap=253, budget=506, closer=RecordingCloser())
        queue.append(list(range(253)))
        queue.append(list(range(253)))
        with self.assertRaises(QueueError):
            queue.append([1])

    def test_configuration_bounds(self):
        for cap, budget in ((0, 10), (254, 1024), (253, 505), (253, 4097)):
            with self.assertRaises(ValueError):
                FdQueue(cap=cap, budget=budget)


if __name__ == "__main__":
    unittest.main()
