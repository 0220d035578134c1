"""Mutated byte streams into the server and client connection cores: no
exception may escape and no FD may be left open."""

import os
import random
import socket
import tempfile
import unittest

from test_vectors import A1, A5, A6_REQUEST, A6_RESPONSE, A7, A8, A9_LAST_RECORDED, A9_RECORD, A9_KEEPALIVE

from helpers import unhex

from rocketfd_py import client as cl
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.log import Quiet
from rocketfd_py.server import FdTestService, ServerConnection

ITERATIONS = 1500


def open_fds():
    return set(os.listdir("/proc/self/fd"))


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
        setup = fr.encode_setup(md.encode_setup_metadata())
        requests = [unhex(A1), unhex(A6_REQUEST), unhex(A9_RECORD), unhex(A9_LAST_RECORDED), unhex(A9_KEEPALIVE),
                    b"".join(fr.encode_message(fr.REQUEST_RESPONSE, 11, 0, md.encode_request_metadata(b"echo", 0),
                                               fdtest.encode_tag_args(b"z" * 300), fragment_size=64))]
        before = open_fds()
        for _ in range(ITERATIONS):
            left, right = socket.socketpair()
            conn = ServerConnection(right, 1, FdTestService(None, Quiet()), Quiet())
            stream = (setup if rng.random() < 0.9 else b"") + b"".join(rng.sample(requests, rng.randint(1, 3)))
            stream = mutate(rng, stream)
            fds = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(rng.randint(0, 3))]
            cut = rng.randint(0, len(stream))
            conn.on_read(stream[:cut], fds)
            if not conn.closed:
                conn.on_read(stream[cut:], [])
            if not conn.closed:
                conn.flush()
                conn.on_eof()
            left.close()
        self.assertEqual(open_fds(), before)


class ClientCore(unittest.TestCase):
    def test_mutated_responses(self):
        rng = random.Random(5678)
        responses = [unhex(A5), unhex(A6_RESPONSE), unhex(A7), unhex(A8), unhex(A9_KEEPALIVE),
                     fr.encode_metadata_push(md.encode_setup_response(10))]
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
                stream = mutate(rng, b"".join(rng.sample(responses, rng.randint(1, 4))))
                fds = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(rng.randint(0, 2))]
                conn.on_read(stream, fds)
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
