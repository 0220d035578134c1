"""The receiver's FD queue and the claim procedure (spec sections 7.1, 7.2, 7.5, 9, 10).

Each read that delivered FDs becomes one group, numbered by the count of FDs
received before it (modulo 2^63).  A complete carrier message claims the group
whose number is its fdSeqNum, after closing older groups as orphans.
"""

import os

SEQ_MASK = (1 << 63) - 1
INT64_MAX = SEQ_MASK
HALF_RANGE = 1 << 62

MAX_FDS_PER_MESSAGE = 253
DEFAULT_CAP = MAX_FDS_PER_MESSAGE
DEFAULT_BUDGET = 1024
MAX_BUDGET = 4096

AT = "at"
OLDER = "older"
NEWER = "newer"


def seq_add(seq, count):
    return (seq + count) & SEQ_MASK


def seq_dist(group_seq, claim_seq):
    return (claim_seq - group_seq) & SEQ_MASK


def seq_age(group_seq, claim_seq):
    """Where a group numbered group_seq stands against a claim at claim_seq."""
    dist = seq_dist(group_seq, claim_seq)
    if dist == 0:
        return AT
    if dist < HALF_RANGE:
        return OLDER
    return NEWER


def close_fds(fds, closer=os.close):
    """Closes every FD in fds, whatever errors occur; returns the first error."""
    first_error = None
    for fd in fds:
        try:
            closer(fd)
        except OSError as error:
            if first_error is None:
                first_error = error
    return first_error


class QueueError(Exception):
    """The queue can no longer be trusted: the connection must fail."""


class Claim:
    """The outcome of one claim: ok with the FDs taken, or failed with a reason."""

    __slots__ = ("ok", "fds", "reason", "orphans_closed", "mismatch_closed")

    def __init__(self, ok, fds=(), reason="", orphans_closed=0, mismatch_closed=0):
        self.ok = ok
        self.fds = list(fds)
        self.reason = reason
        self.orphans_closed = orphans_closed
        self.mismatch_closed = mismatch_closed

    def __repr__(self):
        return "Claim(ok=%r, fds=%r, reason=%r)" % (self.ok, self.fds, self.reason)


class FdQueue:
    """The FIFO of FD groups of one direction of one connection; owns every FD in it."""

    def __init__(self, cap=DEFAULT_CAP, budget=DEFAULT_BUDGET, closer=os.close):
        if not 1 <= cap <= MAX_FDS_PER_MESSAGE:
            raise ValueError("cap must be 1 to 253")
        if not 2 * cap <= budget <= MAX_BUDGET:
            raise ValueError("budget must be between 2 * cap and 4096")
        self.cap = cap
        self.budget = budget
        self.closer = closer
        self.received = 0
        self.groups = []  # [seq, [fds]], head first
        self.queued = 0

    def __len__(self):
        return len(self.groups)

    def snapshot(self):
        """[(seq, count)] head first, for logs and tests."""
        return [(seq, len(fds)) for seq, fds in self.groups]

    def append(self, fds):
        """Takes ownership of the FDs of one read as one group (FD-RECV-2).

        Raises QueueError after taking them when the read exceeds the cap
        (LIMIT-3) or the queue exceeds the budget (ORPHAN-3); the caller then
        fails the connection, which closes the queue.
        """
        if not fds:
            return
        fds = list(fds)
        self.groups.append([self.received, fds])
        self.received = seq_add(self.received, len(fds))
        self.queued += len(fds)
        if len(fds) > self.cap:
            raise QueueError("one read delivered %d FDs, above the cap of %d" % (len(fds), self.cap))
        if self.queued > self.budget:
            raise QueueError("%d unclaimed FDs queued, above the budget of %d" % (self.queued, self.budget))

    def _pop_head(self):
        seq, fds = self.groups.pop(0)
        self.queued -= len(fds)
        return seq, fds

    def claim(self, num_fds, fd_seq_num):
        """The claim procedure of section 7.5; num_fds and fd_seq_num may be None (absent)."""
        if not num_fds:
            return Claim(True)
        if num_fds < 0 or num_fds > MAX_FDS_PER_MESSAGE or num_fds > self.cap:
            return Claim(False, reason="numFds %d out of range 1..%d" % (num_fds, self.cap))
        if fd_seq_num is None or fd_seq_num < 0:
            return Claim(False, reason="numFds %d without a valid fdSeqNum (%r)" % (num_fds, fd_seq_num))

        orphans = 0
        while self.groups and seq_age(self.groups[0][0], fd_seq_num) == OLDER:
            _, fds = self._pop_head()
            orphans += len(fds)
            close_fds(fds, self.closer)

        if not self.groups:
            return Claim(False, reason="fd mismatch: want %d at seq %d, none queued" % (num_fds, fd_seq_num),
                         orphans_closed=orphans)
        head_seq, head_fds = self.groups[0]
        if head_seq != fd_seq_num:
            return Claim(False, reason="fd mismatch: want %d at seq %d, next group is at seq %d"
                         % (num_fds, fd_seq_num, head_seq), orphans_closed=orphans)
        _, fds = self._pop_head()
        if len(fds) != num_fds:
            close_fds(fds, self.closer)
            return Claim(False, reason="fd mismatch: want %d at seq %d, got %d" % (num_fds, fd_seq_num, len(fds)),
                         orphans_closed=orphans, mismatch_closed=len(fds))
        return Claim(True, fds=fds, orphans_closed=orphans)

    def close_all(self):
        """Closes every queued FD (ORPHAN-2, ERR-1); returns how many."""
        count = 0
        while self.groups:
            _, fds = self._pop_head()
            count += len(fds)
            close_fds(fds, self.closer)
        return count
