"""The sending side of a connection: the FD counter and the queue of unwritten bytes.

A message that carries FDs is one chunk holding all its frames; it is written
alone, FDs attached to the sendmsg that starts at its first unwritten byte and
runs to its end (FD-SEND-1, -3, -4).  Chunks without FDs may share a sendmsg.
"""

import collections
import errno
import os

from . import fdsock
from .fdqueue import close_fds, seq_add

MAX_GATHER_BUFFERS = 64
MAX_GATHER_BYTES = 4 << 20


class SendError(Exception):
    """A write failed for good (ERR-9); peer_refuses_fds for EPERM (PASSRIGHTS-1)."""

    def __init__(self, error, carried_fds):
        self.errno = error.errno
        self.peer_refuses_fds = error.errno == errno.EPERM and carried_fds
        if self.peer_refuses_fds:
            text = "peer does not accept FDs (sendmsg with SCM_RIGHTS failed with EPERM)"
        else:
            text = "write failed: %s" % os.strerror(error.errno)
        super().__init__(text)
        self.text = text


class Chunk:
    __slots__ = ("data", "pos", "fds", "on_written")

    def __init__(self, data, fds, on_written):
        self.data = memoryview(data)
        self.pos = 0
        self.fds = list(fds) if fds else None
        self.on_written = on_written


class OutQueue:
    """Owns the FDs of every queued chunk until a sendmsg takes them (OWN-4, OWN-5)."""

    def __init__(self, closer=os.close):
        self.counter = 0
        self.chunks = collections.deque()
        self.closer = closer

    def __bool__(self):
        return bool(self.chunks)

    def stamp(self, num_fds):
        """The fdSeqNum for a message of num_fds FDs queued now (FD-SEND-9):
        chunks are written in queue order and never dropped while the
        connection lives, so the count at queueing time is the count at writing."""
        seq = self.counter
        self.counter = seq_add(self.counter, num_fds)
        return seq

    def push(self, frames, fds=None, on_written=None):
        """Queues one message (its frames back to back, FRAME-9); takes the FDs."""
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.chunks.append(Chunk(data, fds, on_written))

    def partly_written(self):
        return bool(self.chunks) and self.chunks[0].pos > 0

    def flush(self, sock):
        """Writes as much as the socket takes.  Returns True when the queue is
        empty.  Raises SendError when a write fails for good."""
        while self.chunks:
            head = self.chunks[0]
            if head.fds:
                taken = self._send(sock, [head.data[head.pos:]], head.fds)
                if not taken:
                    return False
                # The kernel has the FDs once at least one byte was taken (OWN-4);
                # the rest of the message follows without them (FD-SEND-6).
                fds, head.fds = head.fds, None
                close_fds(fds, self.closer)
                head.pos += taken
            else:
                buffers = self._gather()
                taken = self._send(sock, buffers, None)
                if not taken:
                    return False
                self._advance(taken)
            if not self._pop_written():
                return False
        return True

    def _send(self, sock, buffers, fds):
        try:
            return fdsock.send(sock, buffers, fds)
        except OSError as error:
            raise SendError(error, bool(fds)) from None

    def _gather(self):
        buffers = []
        total = 0
        for chunk in self.chunks:
            if chunk.fds or len(buffers) >= MAX_GATHER_BUFFERS or total >= MAX_GATHER_BYTES:
                break
            buffers.append(chunk.data[chunk.pos:])
            total += len(chunk.data) - chunk.pos
        return buffers

    def _advance(self, taken):
        for chunk in self.chunks:
            if taken <= 0:
                break
            step = min(taken, len(chunk.data) - chunk.pos)
            chunk.pos += step
            taken -= step

    def _pop_written(self):
        """Drops fully written chunks; False when the head is still partly unwritten."""
        while self.chunks and self.chunks[0].pos >= len(self.chunks[0].data):
            chunk = self.chunks.popleft()
            if chunk.on_written is not None:
                chunk.on_written()
        return not self.chunks or self.chunks[0].pos == 0

    def discard(self):
        """Drops every unwritten chunk and closes the FDs they still own (OWN-5, ERR-1)."""
        count = 0
        while self.chunks:
            chunk = self.chunks.popleft()
            if chunk.fds:
                count += len(chunk.fds)
                close_fds(chunk.fds, self.closer)
        return count
