"""Mutated byte streams into the server and client connection cores: no
exception may escape and no FD may be left open."""

import os
import random
import socket
import tempfile
import unittest

from test_vectors import (A1, A5, A6_REQUEST, A6_RESPONSE, A7, A8, A9_CANCEL, A9_KEEPALIVE, A9_LAST_RECORDED,
                          A9_RECORD, A9_REQUEST_N, A11_COMPLETION, A11_FIRST_RESPONSE, A11_ITEM_0, A11_REQUEST,
                          A13_CANCELLATION, A13_COMPLETION, A13_CREDIT, A13_FIRST_RESPONSE, A13_ITEM_ONE,
                          A13_REQUEST)

from helpers import unhex

from rocketfd_py import client as cl
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.fdqueue import close_fds
from rocketfd_py.log import Quiet
from rocketfd_py.server import FdTestService, ServerConnection

ITERATIONS = 1500


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def on_stream(vector, stream_id):
    """A frame of appendix A moved to another stream id."""
    raw = unhex(vector)
    return raw[:3] + stream_id.to_bytes(4, "big") + raw[7:]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.5 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.7 and data:
            del data[rng.randrange(len(data)):]
        elif choice < 0.85:
            position = rng.randrange(len(data) + 1)
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif data:
            start = rng.randrange(len(data))
            data[start:start] = data[start:start + rng.randint(1, 16)]
    return bytes(data)


class ServerCore(unittest.TestCase):
    def test_mutated_requests(self):
        rng = random.Random(1234)
        setups = [fr.encode_setup(md.encode_setup_metadata()),
                  fr.encode_setup(md.encode_setup_metadata(offer=[md.EXT_SINK]))]
        requests = [unhex(A1), unhex(A6_REQUEST), unhex(A9_RECORD), unhex(A9_LAST_RECORDED), unhex(A9_KEEPALIVE),
                    b"".join(fr.encode_message(fr.REQUEST_RESPONSE, 11, 0, md.encode_request_metadata(b"echo", 0),
                                               fdtest.encode_tag_args(b"z" * 300), fragment_size=64)),
                    on_stream(A11_REQUEST, 13), on_stream(A9_REQUEST_N, 13), on_stream(A9_CANCEL, 13),
                    on_stream(A13_REQUEST, 15), on_stream(A13_ITEM_ONE, 15), on_stream(A13_COMPLETION, 15),
                    on_stream(A13_CANCELLATION, 15)]
        before = open_fds()
        for _ in range(ITERATIONS):
            left, right = socket.socketpair()
            conn = ServerConnection(right, 1, FdTestService(None, Quiet()), Quiet())
            setup = rng.choice(setups) if rng.random() < 0.9 else b""
            stream = setup + b"".join(rng.sample(requests, rng.randint(1, 4)))
            stream = mutate(rng, stream)
            fds = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(rng.randint(0, 3))]
            cut = rng.randint(0, len(stream))
            conn.on_read(stream[:cut], fds)
            if not conn.closed:
                conn.on_read(stream[cut:], [])
            if not conn.closed:
                conn.produce()
                conn.flush()
                conn.on_eof()
            left.close()
        self.assertEqual(open_fds(), before)


class ClientCore(unittest.TestCase):
    def test_mutated_responses(self):
        rng = random.Random(5678)
        responses = [unhex(A5), unhex(A6_RESPONSE), unhex(A7), unhex(A8), unhex(A9_KEEPALIVE),
                     fr.encode_metadata_push(md.encode_setup_response(10)),
                     on_stream(A11_FIRST_RESPONSE, 7), on_stream(A11_ITEM_0, 7), on_stream(A11_COMPLETION, 7),
                     on_stream(A9_REQUEST_N, 7), on_stream(A13_FIRST_RESPONSE, 9), on_stream(A13_CREDIT, 9),
                     on_stream(A11_ITEM_0, 9), on_stream(A8, 9)]
        before = open_fds()
        directory = tempfile.mkdtemp(prefix="rfdpy-fuzz-")
        path = os.path.join(directory, "s.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(8)
        try:
            for _ in range(ITERATIONS // 3):
                conn = cl.ClientConnection(path)
                accepted, _ = listener.accept()
                calls = [conn.start_call(method, b"\x00") for method in (b"echo", b"inspect", b"open")]
                calls.append(conn.start_stream(b"streamFds", b"\x00"))
                calls.append(conn.start_sink(b"sinkFds", b"\x00"))
                stream = mutate(rng, b"".join(rng.sample(responses, rng.randint(1, 4))))
                fds = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(rng.randint(0, 2))]
                conn.on_read(stream, fds)
                if not calls[3].done:
                    item = conn.next_item(calls[3], 0)
                    if item is not None:
                        close_fds(item[1])
                if rng.random() < 0.3:
                    conn.cancel(calls[3 + rng.randrange(2)])
                for call in calls:
                    call.release()
                conn.close()
                accepted.close()
        finally:
            listener.close()
            os.unlink(path)
            os.rmdir(directory)
        self.assertEqual(open_fds(), before)


if __name__ == "__main__":
    unittest.main()
