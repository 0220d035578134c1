"""The sending side of a connection: the FD counter and the queue of unwritten bytes.

A message that carries FDs is one chunk holding all its frames; it is written
alone, FDs attached to the sendmsg that starts at its first unwritten byte and
runs to its end (FD-SEND-1, -3, -4).  Chunks without FDs may share a sendmsg.

fdSeqNum is stamped when a message is about to be written (1.4): its frames
are built from the counter right before the sendmsg that carries its FDs, and
the counter moves on only once the kernel has taken a byte of it.  A message
of which no byte was written therefore carries no stamp yet and can still be
dropped (a stream item after CANCEL, STREAM-10) without breaking the
numbering of the messages behind it (FD-SEND-9).
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
    """One message's bytes.  build is set while an FD-carrying message is not
    stamped: build(seq) returns its frames with fdSeqNum seq."""

    __slots__ = ("data", "pos", "fds", "on_written", "tag", "build", "seq")

    def __init__(self, data, fds, on_written, tag, build=None):
        self.data = memoryview(data) if data is not None else None
        self.pos = 0
        self.fds = list(fds) if fds else None
        self.on_written = on_written
        self.tag = tag
        self.build = build
        self.seq = None

    def stamp(self, seq):
        """The bytes of this message with fdSeqNum seq (built again only when seq changed)."""
        if self.seq != seq or self.data is None:
            frames = self.build(seq)
            self.data = memoryview(frames[0] if len(frames) == 1 else b"".join(frames))
            self.seq = seq
        return self.data


class OutQueue:
    """Owns the FDs of every queued chunk until a sendmsg takes them (OWN-4, OWN-5)."""

    def __init__(self, closer=os.close):
        self.counter = 0
        self.chunks = collections.deque()
        self.closer = closer

    def __bool__(self):
        return bool(self.chunks)

    def __len__(self):
        return len(self.chunks)

    def push(self, frames, on_written=None, tag=None):
        """Queues one message without FDs (its frames back to back, FRAME-9)."""
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.chunks.append(Chunk(data, None, on_written, tag))

    def push_message(self, build, fds=(), on_written=None, tag=None):
        """Queues one message; takes the FDs.  build(seq) returns its frames,
        seq being its fdSeqNum, or None when it carries no FD (FD-SEND-10)."""
        if not fds:
            self.push(build(None), on_written, tag)
            return
        self.chunks.append(Chunk(None, fds, on_written, tag, build))

    def partly_written(self):
        return bool(self.chunks) and self.chunks[0].pos > 0

    def flush(self, sock):
        """Writes as much as the socket takes.  Returns True when the queue is
        empty.  Raises SendError when a write fails for good."""
        while self.chunks:
            head = self.chunks[0]
            if head.fds:
                seq = self.counter
                data = head.stamp(seq)
                taken = self._send(sock, [data[head.pos:]], head.fds)
                if not taken:
                    return False
                # The kernel has the FDs once at least one byte was taken (OWN-4);
                # the rest of the message follows without them (FD-SEND-6).
                self.counter = seq_add(seq, len(head.fds))
                fds, head.fds, head.build = head.fds, None, None
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
        while self.chunks and self.chunks[0].data is not None and self.chunks[0].pos >= len(self.chunks[0].data):
            chunk = self.chunks.popleft()
            if chunk.on_written is not None:
                chunk.on_written()
        return not self.chunks or self.chunks[0].pos == 0

    def drop(self, tag):
        """Drops the queued chunks with this tag of which no byte was written,
        closing their FDs (OWN-5); a chunk already begun is finished (FRAME-9).
        Returns the number of FDs closed."""
        kept = collections.deque()
        count = 0
        for chunk in self.chunks:
            if chunk.tag == tag and chunk.pos == 0:
                if chunk.fds:
                    count += len(chunk.fds)
                    close_fds(chunk.fds, self.closer)
                continue
            kept.append(chunk)
        self.chunks = kept
        return count

    def discard(self):
        """Drops every unwritten chunk and closes the FDs they still own (OWN-5, ERR-1)."""
        count = 0
        while self.chunks:
            chunk = self.chunks.popleft()
            if chunk.fds:
                count += len(chunk.fds)
                close_fds(chunk.fds, self.closer)
        return count
