"""A blocking test peer that writes raw frames and FDs and reads them back,
for driving a server under test or playing a (misbehaving) server."""

import os
import select
import socket
import time

import helpers  # noqa: F401  (puts rocketfd_py on sys.path)
from rocketfd_py import compact as c
from rocketfd_py import fdsock
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.fdqueue import close_fds

DEFAULT_TIMEOUT = 5.0


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.sock.setblocking(True)
        self.frames = fr.FrameBuffer()
        self.groups = []  # FDs of each read, in order, owned by the peer
        self.partial = {}
        self.eof = False

    @classmethod
    def connect(cls, path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return cls(sock)

    def close(self):
        close_fds([fd for group in self.groups for fd in group])
        self.groups = []
        self.sock.close()

    # ---------------------------------------------------------------- writing

    def send(self, data, fds=None):
        view = memoryview(data)
        first = True
        while view:
            sent = self.sock.sendmsg([view], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               fdsock.array.array("i", fds).tobytes())] if fds and first else [])
            first = False
            view = view[sent:]

    def setup(self, min_version=8, max_version=10, offer=()):
        self.send(fr.encode_setup(md.encode_setup_metadata(min_version, max_version, offer=offer)))

    def request(self, stream_id, method, args, fds=None, seq=None, kind=0, ftype=fr.REQUEST_RESPONSE,
                num_fds=None, meta=None, initial_n=None, flags=0):
        if meta is None:
            count = len(fds or []) if num_fds is None else num_fds
            meta = md.encode_request_metadata(method, kind, seq if count else None, count)
        frames = fr.encode_message(ftype, stream_id, flags, meta, args, initial_n)
        self.send(b"".join(frames), fds)

    # ---------------------------------------------------------------- reading

    def _read_once(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data within the timeout")
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise TimeoutError("no data within the timeout")
        try:
            data, ancdata, flags, _ = self.sock.recvmsg(1 << 20, fdsock.control_space(), socket.MSG_CMSG_CLOEXEC)
        except ConnectionResetError:
            data, ancdata, flags = b"", [], 0
        fds = fdsock.parse_control(ancdata, flags)
        if fds:
            self.groups.append(fds)
        if not data:
            self.eof = True
        self.frames.feed(data)

    def read_frame(self, timeout=DEFAULT_TIMEOUT):
        """The next frame, or None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.frames.next_frame()
            if raw is not None:
                return fr.parse_frame(raw)
            if self.eof:
                return None
            self._read_once(deadline)

    def read_message(self, timeout=DEFAULT_TIMEOUT):
        """The next complete message or non-payload frame (as a Frame), None at EOF."""
        while True:
            frame = self.read_frame(timeout)
            if frame is None:
                return None
            partial = self.partial.get(frame.stream_id)
            if partial is not None:
                partial.append(frame)
                if frame.has(fr.FLAG_FOLLOWS):
                    continue
                del self.partial[frame.stream_id]
                return fr.Message.from_partial(partial)
            if frame.ftype in fr.REQUEST_TYPES + (fr.PAYLOAD,) and frame.has(fr.FLAG_FOLLOWS):
                self.partial[frame.stream_id] = fr.PartialMessage(frame)
                continue
            if frame.ftype in fr.REQUEST_TYPES + (fr.PAYLOAD,):
                return fr.Message.from_frame(frame)
            return frame

    def read_until_eof(self, timeout=DEFAULT_TIMEOUT):
        frames = []
        while True:
            frame = self.read_frame(timeout)
            if frame is None:
                return frames
            frames.append(frame)

    def take_fds(self):
        fds = [fd for group in self.groups for fd in group]
        self.groups = []
        return fds


def response_of(message, method):
    """(metadata dict, result dict) of a response message."""
    meta = md.decode_response_metadata(message.metadata)
    return meta, c.decode_struct(message.data, fdtest.RESULT_SCHEMAS[method])


def error_of(frame):
    return frame.error_code, md.decode_response_rpc_error(frame.data)


def pipe_is_closed(read_end, timeout=2.0):
    """True once the write ends of the pipe are all closed (read gives EOF)."""
    deadline = time.monotonic() + timeout
    os.set_blocking(read_end, False)
    while True:
        try:
            if os.read(read_end, 1) == b"":
                return True
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def pipe_is_open(read_end):
    os.set_blocking(read_end, False)
    try:
        return os.read(read_end, 1) != b""
    except BlockingIOError:
        return True
