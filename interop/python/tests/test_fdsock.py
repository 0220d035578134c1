"""FD passing on real Unix sockets: receiving (7.4, 11.2, 13), sending (7.3),
and the reads-versus-claims example of section 7.6."""

import errno
import fcntl
import os
import socket
import unittest

from helpers import fd_is_open

from rocketfd_py import fdsock
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.log import Quiet
from rocketfd_py.outqueue import OutQueue, SendError
from rocketfd_py.server import FdTestService, ServerConnection

SO_PASSRIGHTS = 83


def open_fds():
    return set(int(name) for name in os.listdir("/proc/self/fd"))


class Receiving(unittest.TestCase):
    def setUp(self):
        self.left, self.right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def tearDown(self):
        self.left.close()
        self.right.close()

    def test_received_fds_have_cloexec(self):
        read_end, write_end = os.pipe()
        os.set_inheritable(write_end, True)
        fdsock.send(self.left, [b"x"], [write_end])
        data, fds = fdsock.receive(self.right)
        self.assertEqual(data, b"x")
        self.assertEqual(len(fds), 1)
        self.assertTrue(fcntl.fcntl(fds[0], fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        self.assertEqual(os.fstat(fds[0]).st_ino, os.fstat(write_end).st_ino)
        for fd in fds + [read_end, write_end]:
            os.close(fd)

    def test_nothing_to_read(self):
        self.right.setblocking(False)
        self.assertIsNone(fdsock.receive(self.right))

    def test_eof(self):
        self.left.close()
        self.assertEqual(fdsock.receive(self.right), (b"", []))

    def test_ctrunc_closes_installed_fds(self):
        read_end, write_end = os.pipe()
        fdsock.send(self.left, [b"y"], [write_end] * 5)
        before = open_fds()
        with self.assertRaises(fdsock.ReceiveError) as caught:
            fdsock.receive(self.right, ancbufsize=socket.CMSG_SPACE(2 * 4))
        self.assertIn("MSG_CTRUNC", caught.exception.text)
        self.assertTrue(caught.exception.fds_lost)
        self.assertEqual(open_fds(), before)
        os.close(read_end)
        os.close(write_end)

    def test_unexpected_control_message(self):
        with self.assertRaises(fdsock.ReceiveError):
            fdsock.parse_control([(socket.SOL_SOCKET, fdsock.SCM_CREDENTIALS, b"\x00" * 12)], 0)

    def test_ragged_rights_closes_whole_fds(self):
        read_end, write_end = os.pipe()
        copy = os.dup(write_end)
        data = copy.to_bytes(4, "little", signed=True) + b"\x01\x02"
        with self.assertRaises(fdsock.ReceiveError):
            fdsock.parse_control([(socket.SOL_SOCKET, socket.SCM_RIGHTS, data)], 0)
        self.assertFalse(fd_is_open(copy))
        os.close(read_end)
        os.close(write_end)

    def test_several_rights_messages_make_one_group(self):
        fds = [os.dup(0), os.dup(0), os.dup(0)]
        ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in fds[:2])),
                   (socket.SOL_SOCKET, socket.SCM_RIGHTS, fds[2].to_bytes(4, "little"))]
        self.assertEqual(fdsock.parse_control(ancdata, 0), fds)
        for fd in fds:
            os.close(fd)

    def test_control_space(self):
        self.assertEqual(fdsock.control_space(), 1032)


class FakeSocket:
    """Records each sendmsg; takes at most `limit` bytes per call."""

    def __init__(self, limit=1 << 30, error=None):
        self.calls = []
        self.limit = limit
        self.error = error

    def sendmsg(self, buffers, ancillary, flags):
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))
        data = b"".join(bytes(buffer) for buffer in buffers)
        taken = min(len(data), self.limit)
        fds = []
        for _, _, payload in ancillary:
            fds += [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]
        self.calls.append((data[:taken], fds, flags))
        return taken


def fixed(data):
    """A message builder that ignores the stamp."""
    return lambda seq: [data]


class Sending(unittest.TestCase):
    def test_fd_chunk_is_written_alone(self):
        out = OutQueue(closer=lambda fd: None)
        out.push([b"AAAA"])
        out.push_message(lambda seq: [b"BB", b"BB"], fds=[7])
        out.push([b"CCCC"])
        out.push([b"DDDD"])
        sock = FakeSocket()
        self.assertTrue(out.flush(sock))
        self.assertEqual([(data, fds) for data, fds, _ in sock.calls],
                         [(b"AAAA", []), (b"BBBB", [7]), (b"CCCCDDDD", [])])
        for _, _, flags in sock.calls:
            self.assertTrue(flags & socket.MSG_NOSIGNAL)

    def test_partial_write_sends_fds_once(self):
        closed = []
        out = OutQueue(closer=closed.append)
        out.push_message(fixed(b"0123456789"), fds=[5, 6])
        sock = FakeSocket(limit=4)
        while not out.flush(sock):
            pass
        self.assertEqual([(data, fds) for data, fds, _ in sock.calls],
                         [(b"0123", [5, 6]), (b"4567", []), (b"89", [])])
        self.assertEqual(closed, [5, 6])

    def test_eagain_keeps_fds_for_the_next_attempt(self):
        out = OutQueue(closer=lambda fd: None)
        out.push_message(fixed(b"msg"), fds=[9])
        self.assertFalse(out.flush(FakeSocket(error=errno.EAGAIN)))
        sock = FakeSocket()
        self.assertTrue(out.flush(sock))
        self.assertEqual(sock.calls[0][:2], (b"msg", [9]))

    def test_eperm_is_a_refusal_of_fds(self):
        closed = []
        out = OutQueue(closer=closed.append)
        out.push_message(fixed(b"msg"), fds=[9])
        with self.assertRaises(SendError) as caught:
            out.flush(FakeSocket(error=errno.EPERM))
        self.assertTrue(caught.exception.peer_refuses_fds)
        self.assertIn("does not accept FDs", caught.exception.text)
        self.assertEqual(out.discard(), 1)
        self.assertEqual(closed, [9])

    def _recording(self, out, stamps, name, fds):
        def build(seq):
            stamps.append((name, seq))
            return [name.encode() * 4]
        out.push_message(build, fds)

    def test_stamps_at_write_time_in_write_order(self):
        # 1.4, FD-SEND-9: a message with FDs is built from the counter when it is
        # written; one without FDs is built at once and carries no stamp.
        out = OutQueue(closer=lambda fd: None)
        stamps = []
        for name, count in (("a", 2), ("b", 0), ("c", 1), ("d", 253)):
            self._recording(out, stamps, name, list(range(10, 10 + count)))
        self.assertEqual(stamps, [("b", None)])
        sock = FakeSocket()
        self.assertTrue(out.flush(sock))
        self.assertEqual(stamps, [("b", None), ("a", 0), ("c", 2), ("d", 3)])
        self.assertEqual([len(fds) for _, fds, _ in sock.calls], [2, 0, 1, 253])
        self.assertEqual(out.counter, 256)

    def test_stamp_wraps_modulo_2_63(self):
        out = OutQueue(closer=lambda fd: None)
        out.counter = (1 << 63) - 1
        stamps = []
        self._recording(out, stamps, "w", [3, 4])
        self.assertTrue(out.flush(FakeSocket()))
        self.assertEqual(stamps, [("w", (1 << 63) - 1)])
        self.assertEqual(out.counter, 1)

    def test_eagain_leaves_the_message_unstamped_and_droppable(self):
        # STREAM-10 with FD-SEND-9: a message no byte of which was written can be
        # dropped; the counter has not moved, so the next message takes its number.
        closed = []
        out = OutQueue(closer=closed.append)
        stamps = []
        out.push_message(fixed(b"item"), fds=[5, 6], tag="s1")
        self._recording(out, stamps, "x", [7])
        self.assertFalse(out.flush(FakeSocket(error=errno.EAGAIN)))
        self.assertEqual(out.counter, 0)
        self.assertEqual(out.drop("s1"), 2)
        self.assertEqual(closed, [5, 6])
        sock = FakeSocket()
        self.assertTrue(out.flush(sock))
        self.assertEqual(stamps, [("x", 0)])
        self.assertEqual([(data, fds) for data, fds, _ in sock.calls], [(b"xxxx", [7])])

    def test_drop_finishes_a_begun_message(self):
        # FRAME-9: a chunk whose first bytes are written is completed; later chunks
        # with the same tag are dropped, others kept.
        closed = []
        out = OutQueue(closer=closed.append)
        out.push_message(fixed(b"0123456789"), fds=[5], tag="s1")
        out.push_message(fixed(b"later"), fds=[6], tag="s1")
        out.push([b"other"], tag="s3")
        self.assertFalse(out.flush(FakeSocket(limit=4)))
        self.assertEqual(out.drop("s1"), 1)
        self.assertEqual(closed, [5, 6])
        sock = FakeSocket()
        self.assertTrue(out.flush(sock))
        self.assertEqual([(data, fds) for data, fds, _ in sock.calls], [(b"456789other", [])])

    def test_passrights_off_gives_eperm(self):
        left, right = socket.socketpair()
        try:
            try:
                right.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
            except OSError:
                self.skipTest("SO_PASSRIGHTS is not supported by this kernel")
            out = OutQueue()
            out.push_message(fixed(b"data"), fds=[os.dup(0)])
            with self.assertRaises(SendError) as caught:
                out.flush(left)
            self.assertTrue(caught.exception.peer_refuses_fds)
            out.discard()
            right.setblocking(False)
            self.assertIsNone(fdsock.receive(right))
        finally:
            left.close()
            right.close()


def inspect_request(stream_id, seq, num_fds, tag):
    meta = md.encode_request_metadata(b"inspect", 0, seq, num_fds)
    return fr.encode_message(fr.REQUEST_RESPONSE, stream_id, 0, meta, fdtest.encode_tag_args(tag))[0]


class ReadsVersusClaims(unittest.TestCase):
    """Section 7.6 with real messages: A and C without FDs, B and D with one each."""

    def _run(self, first_read_size):
        client, server_sock = socket.socketpair()
        pipes = [os.pipe(), os.pipe()]
        try:
            setup = fr.encode_setup(md.encode_setup_metadata())
            messages = [inspect_request(1, None, 0, b"A"), inspect_request(3, 0, 1, b"B"),
                        inspect_request(5, None, 0, b"C"), inspect_request(7, 1, 1, b"D")]
            client.sendall(setup)
            fdsock.send(client, [messages[0]])
            fdsock.send(client, [messages[1]], [pipes[0][1]])
            fdsock.send(client, [messages[2]])
            fdsock.send(client, [messages[3]], [pipes[1][1]])
            client.shutdown(socket.SHUT_WR)
            conn = ServerConnection(server_sock, 1, FdTestService(None, Quiet()), Quiet())
            setup_len = len(setup)
            data, fds = fdsock.receive(server_sock, bufsize=setup_len)
            conn.on_read(data, fds)
            groups = []
            size = first_read_size
            while True:
                data, fds = fdsock.receive(server_sock, bufsize=size)
                if not data:
                    break
                groups.append((len(data), len(fds)))
                conn.on_read(data, fds)
                size = 100
            conn.flush()
            self.assertFalse(conn.closed)
            conn.close()
            inodes = [os.fstat(write_end).st_ino for _, write_end in pipes]
            return groups, self._replies(client), inodes, [len(message) for message in messages]
        finally:
            client.close()
            for read_end, write_end in pipes:
                os.close(read_end)
                os.close(write_end)

    @staticmethod
    def _replies(client):
        buffer = fr.FrameBuffer()
        while True:
            data = client.recv(65536)
            if not data:
                break
            buffer.feed(data)
        replies = {}
        while True:
            raw = buffer.next_frame()
            if raw is None:
                return replies
            frame = fr.parse_frame(raw)
            if frame.ftype == fr.PAYLOAD:
                report = fdtest.c.decode_struct(frame.data, fdtest.REPORT_RESULT)["success"]
                replies[report["tag"]] = [info["ino"] for info in report["fds"]]

    def test_reads_of_100_bytes(self):
        groups, replies, inodes, sizes = self._run(100)
        # Left column of 7.6: "AAAABBBB" + 1 FD, then "CCCCDDDD" + 1 FD.
        self.assertEqual(groups, [(sizes[0] + sizes[1], 1), (sizes[2] + sizes[3], 1)])
        self._check(replies, inodes)

    def test_reads_of_6_then_100_bytes(self):
        a_size = len(inspect_request(1, None, 0, b"A"))
        groups, replies, inodes, sizes = self._run(a_size + 6)
        # Right column of 7.6: "AAAABB" + 1 FD, then "BBCCCCDDDD" + 1 FD.
        self.assertEqual(groups, [(a_size + 6, 1), (sum(sizes) - a_size - 6, 1)])
        self._check(replies, inodes)

    def _check(self, replies, inodes):
        self.assertEqual(replies[b"A"], [])
        self.assertEqual(replies[b"C"], [])
        self.assertEqual(replies[b"B"], [inodes[0]])
        self.assertEqual(replies[b"D"], [inodes[1]])


if __name__ == "__main__":
    unittest.main()
