"""fdtest_server.py's streams and sinks driven with raw frames (section 21,
FdTest's streamFds and sinkFds of 17.5 and 17.6)."""

import os
import socket
import stat
import unittest

from peer import Peer, error_of, pipe_is_closed
from test_server import ServerTest

from rocketfd_py import compact as c
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.log import Quiet
from rocketfd_py.server import Credit, FdTestService, ServerConnection

QUIET_TIME = 0.3


def open_fds():
    """The open FDs, without the one listdir itself uses."""
    listing = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return set(int(name) for name in os.listdir(listing)) - {listing}
    finally:
        os.close(listing)
NEXT = fr.FLAG_NEXT
NEXT_COMPLETE = fr.FLAG_NEXT | fr.FLAG_COMPLETE


class StreamTest(ServerTest):
    def stream(self, peer, stream_id, count, per_item, initial_n, fds=None, seq=0):
        peer.request(stream_id, b"streamFds", fdtest.encode_stream_fds_args(count, per_item), fds, seq, kind=4,
                     ftype=fr.REQUEST_STREAM, initial_n=initial_n)

    def first_response(self, peer, stream_id, flags=NEXT):
        message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id, message.flags & NEXT_COMPLETE),
                         (fr.PAYLOAD, stream_id, flags))
        self.assertEqual(message.data, b"\x00")
        meta = md.decode_response_metadata(message.metadata)
        self.assertEqual(meta, {"payloadMetadata": {"responseMetadata": {}}})
        return meta

    def item(self, peer, stream_id, index, per_item, last=False):
        """Reads item index and checks it as 17.5 says; returns its FDs, owned by the caller."""
        message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id, message.flags & NEXT_COMPLETE),
                         (fr.PAYLOAD, stream_id, NEXT_COMPLETE if last else NEXT))
        meta = md.decode_stream_payload_metadata(message.metadata)
        self.assertEqual(meta.get("payloadMetadata"), {"responseMetadata": {}})
        report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual(report["tag"], str(index).encode())
        if not per_item:
            self.assertNotIn("fdMetadata", meta)
            self.assertEqual(report["fds"], [])
            return []
        self.assertEqual(meta["fdMetadata"]["numFds"], per_item)
        fds = peer.groups.pop(0)
        self.assertEqual(len(fds), per_item)  # one group: one sendmsg per item (FD-SEND-1)
        for fd, info in zip(fds, report["fds"]):
            st = os.fstat(fd)
            self.assertEqual((info["dev"], info["ino"]), (fdtest.to_signed64(st.st_dev), st.st_ino))
            self.assertEqual((info["type"], stat.S_IFMT(st.st_mode)), (0x1000, 0x1000))
            self.assertEqual((info["cloexec"], info["flags"] & os.O_ACCMODE), (True, os.O_RDONLY))
            self.assertEqual(os.read(fd, 1), b"")  # the write end is closed
        return fds, meta["fdMetadata"]["fdSeqNum"]

    def assertQuiet(self, peer):
        with self.assertRaises(TimeoutError):
            peer.read_frame(timeout=QUIET_TIME)


class Streams(StreamTest):
    def test_items_fds_and_sequence_numbers(self):
        # SVC-STREAM-1, STREAM-3, STREAM-4, FD-SEND-9: items numbered from the
        # server's counter, the last with COMPLETE.
        peer = self.peer()
        self.stream(peer, 1, 3, 2, initial_n=10)
        self.first_response(peer, 1)
        seqs = []
        for index in range(3):
            fds, seq = self.item(peer, 1, index, 2, last=index == 2)
            seqs.append(seq)
            for fd in fds:
                os.close(fd)
        self.assertEqual(seqs, [0, 2, 4])
        _, result = self.echo(peer, 3, b"after")
        self.assertEqual(result["success"], b"after")

    def test_count_zero_ends_with_the_first_response(self):
        peer = self.peer()
        self.stream(peer, 1, 0, 5, initial_n=1)
        self.first_response(peer, 1, NEXT_COMPLETE)
        _, result = self.echo(peer, 3, b"next")  # nothing else came on stream 1 before
        self.assertEqual(result["success"], b"next")

    def test_items_without_fds(self):
        peer = self.peer()
        self.stream(peer, 1, 2, 0, initial_n=3)
        self.first_response(peer, 1)
        self.assertEqual(self.item(peer, 1, 0, 0), [])
        self.assertEqual(self.item(peer, 1, 1, 0, last=True), [])
        self.assertEqual(peer.groups, [])

    def test_credits(self):
        # STREAM-6: the first response takes one credit; STREAM-7: the stream
        # waits, and goes on with the next REQUEST_N.
        peer = self.peer()
        self.stream(peer, 1, 4, 1, initial_n=2)
        self.first_response(peer, 1)
        close = []
        close += self.item(peer, 1, 0, 1)[0]
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 2))
        close += self.item(peer, 1, 1, 1)[0]
        close += self.item(peer, 1, 2, 1)[0]
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 5))
        close += self.item(peer, 1, 3, 1, last=True)[0]
        peer.send(fr.encode_request_n(1, 5))  # on a stream that has ended: ignored (FRAME-18)
        _, result = self.echo(peer, 3, b"after")
        self.assertEqual(result["success"], b"after")
        for fd in close:
            os.close(fd)

    def test_initial_n_of_one_sends_only_the_first_response(self):
        peer = self.peer()
        self.stream(peer, 1, 2, 1, initial_n=1)
        self.first_response(peer, 1)
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 1))
        fds, _ = self.item(peer, 1, 0, 1)
        os.close(fds[0])

    def test_request_n_right_behind_the_request(self):
        # STREAM-9: a REQUEST_N that arrives with the request counts.
        peer = self.peer()
        request = fr.encode_message(fr.REQUEST_STREAM, 1, 0, md.encode_request_metadata(b"streamFds", 4),
                                    fdtest.encode_stream_fds_args(2, 1), initial_n=1)[0]
        peer.send(request + fr.encode_request_n(1, 2))
        self.first_response(peer, 1)
        for index in range(2):
            fds, _ = self.item(peer, 1, index, 1, last=index == 1)
            os.close(fds[0])

    def test_unlimited_credit(self):
        # 21.1: a sum of credits reaching 2^31 - 1 means no limit; a u32 above it too.
        for initial_n in ((1 << 31) - 1, 0xFFFFFFFF):
            peer = self.peer()
            self.stream(peer, 1, 3, 1, initial_n=initial_n)
            self.first_response(peer, 1)
            for index in range(3):
                fds, _ = self.item(peer, 1, index, 1, last=index == 2)
                os.close(fds[0])

    def test_initial_n_of_zero(self):
        # STREAM-2, STREAM-6, 21.3: the first response does not wait; the
        # balance starts at -1, so the first REQUEST_N 1 pays for the first
        # response and each later one for an item.
        peer = self.peer()
        self.stream(peer, 1, 2, 1, initial_n=0)
        self.first_response(peer, 1)
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 1))
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 1))
        fds, seq = self.item(peer, 1, 0, 1)
        self.assertEqual(seq, 0)
        os.close(fds[0])
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 1))
        fds, seq = self.item(peer, 1, 1, 1, last=True)
        self.assertEqual(seq, 1)
        os.close(fds[0])

    def test_request_n_with_the_top_bit_set(self):
        # STREAM-19: 0x80000002 is a whole u32, a credit beyond 2^31 - 1 (no
        # limit), neither masked to 2 nor refused; FRAME-23 keeps the connection.
        peer = self.peer()
        self.stream(peer, 1, 4, 1, initial_n=1)
        self.first_response(peer, 1)
        self.assertQuiet(peer)
        peer.send(fr.encode_request_n(1, 0x80000002))
        for index in range(4):
            fds, _ = self.item(peer, 1, index, 1, last=index == 3)
            os.close(fds[0])
        _, result = self.echo(peer, 3, b"after")
        self.assertEqual(result["success"], b"after")

    def test_refused_arguments(self):
        # SVC-STREAM-2: ERROR 0x204 (1, 6), no first response, the request's FD closed.
        peer = self.peer()
        stream_id = 1
        for count, per_item in ((-1, 1), (10001, 1), (1, -1), (1, 254)):
            with self.subTest(count=count, per_item=per_item):
                read_end, write_end = self.pipe()
                self.stream(peer, stream_id, count, per_item, initial_n=5, fds=[write_end],
                            seq=(stream_id - 1) // 2)
                os.close(write_end)
                self.assertRejected(peer, stream_id, md.CODE_REQUEST_PARSING_FAILURE)
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
            stream_id += 2
        # Absent arguments count as 0.
        peer.request(stream_id, b"streamFds", b"\x00", kind=4, ftype=fr.REQUEST_STREAM, initial_n=1)
        self.first_response(peer, stream_id, NEXT_COMPLETE)

    def test_request_fds_closed_before_the_first_response(self):
        # SVC-STREAM-3.
        peer = self.peer()
        read_end, write_end = self.pipe()
        self.stream(peer, 1, 1, 0, initial_n=1, fds=[write_end])
        os.close(write_end)
        self.first_response(peer, 1)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_kinds(self):
        # 6.8 steps 5 and 8 (META-12).
        peer = self.peer()
        args = fdtest.encode_stream_fds_args(1, 1)
        peer.request(1, b"streamFds", args, kind=0)
        self.assertRejected(peer, 1, md.CODE_WRONG_RPC_KIND)
        peer.request(3, b"streamFds", args, kind=0, ftype=fr.REQUEST_STREAM, initial_n=5)
        self.assertRejected(peer, 3, md.CODE_WRONG_RPC_KIND)
        peer.request(5, b"echo", fdtest.encode_tag_args(b"x"), kind=4, ftype=fr.REQUEST_STREAM, initial_n=5)
        self.assertRejected(peer, 5, md.CODE_WRONG_RPC_KIND)
        peer.request(7, b"streamFds", args, kind=1, ftype=fr.REQUEST_FNF)
        _, result = self.echo(peer, 9, b"none for the one-way request")
        self.assertEqual(result["success"], b"none for the one-way request")

    def test_stream_id_in_use_until_the_terminal_frame(self):
        # FRAME-13: a request on the id of a stream waiting for credit.
        peer = self.peer()
        self.stream(peer, 1, 2, 0, initial_n=1)
        self.first_response(peer, 1)
        peer.request(1, b"echo", fdtest.encode_tag_args(b"reuse"))
        self.assertConnectionError(peer)

    def test_two_streams_at_once(self):
        peer = self.peer()
        self.stream(peer, 1, 3, 1, initial_n=10)
        self.stream(peer, 3, 3, 2, initial_n=10)
        items = {1: [], 3: []}
        first_seen = set()
        received = 0
        while len(items[1]) + len(items[3]) < 6:
            message = peer.read_message()
            if message.stream_id not in first_seen:
                self.assertEqual(md.decode_response_metadata(message.metadata),
                                 {"payloadMetadata": {"responseMetadata": {}}})
                first_seen.add(message.stream_id)
                continue
            meta = md.decode_stream_payload_metadata(message.metadata)
            report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
            self.assertEqual(meta["fdMetadata"]["fdSeqNum"], received)
            fds = peer.groups.pop(0)
            received += len(fds)
            self.assertEqual([os.fstat(fd).st_ino for fd in fds], [info["ino"] for info in report["fds"]])
            self.assertEqual(len(fds), {1: 1, 3: 2}[message.stream_id])
            items[message.stream_id].append(report["tag"])
            for fd in fds:
                os.close(fd)
        self.assertEqual(items, {1: [b"0", b"1", b"2"], 3: [b"0", b"1", b"2"]})
        self.assertEqual(received, 9)

    def test_cancel(self):
        # STREAM-10: nothing more on the stream; the connection goes on.
        peer = self.peer()
        self.stream(peer, 1, 10, 2, initial_n=3)
        self.first_response(peer, 1)
        for index in range(2):
            for fd in self.item(peer, 1, index, 2)[0]:
                os.close(fd)
        peer.send(fr.encode_cancel(1))
        peer.send(fr.encode_request_n(1, 10))
        _, result = self.echo(peer, 3, b"after")
        self.assertEqual(result["success"], b"after")
        self.assertQuiet(peer)
        # The id is free again once the CANCEL is processed.
        _, result = self.echo(peer, 1, b"again")
        self.assertEqual(result["success"], b"again")


class CreditBalance(unittest.TestCase):
    """21.1, STREAM-6, STREAM-19: the balance, whole u32 values, and 2^31 - 1 as no limit."""

    LIMIT = (1 << 31) - 1

    def spend(self, credit, count):
        sent = 0
        while credit.available() and sent < count:
            credit.spend()
            sent += 1
        return sent

    def test_initial_n_of_zero_starts_at_minus_one(self):
        credit = Credit(0 - 1)
        self.assertFalse(credit.available())
        credit.add(1)
        self.assertFalse(credit.available())  # that credit paid for the first response
        credit.add(2)
        self.assertEqual(self.spend(credit, 10), 2)

    def test_balance_not_sum(self):
        # Credits spent do not count towards the limit: a balance of 2^31 - 2
        # after spending is still a limit.
        credit = Credit(3 - 1)
        self.assertEqual(self.spend(credit, 10), 2)
        credit.add(self.LIMIT - 1)
        self.assertEqual(credit.left, self.LIMIT - 1)
        credit.spend()
        self.assertEqual(credit.left, self.LIMIT - 2)

    def test_reaching_the_limit_means_no_limit(self):
        for start, grant in ((2 - 1, self.LIMIT - 1), (-1, 0xFFFFFFFF), (1 - 1, 0x80000000)):
            with self.subTest(start=start, grant=grant):
                credit = Credit(start)
                credit.add(grant)
                self.assertEqual(credit.left, self.LIMIT)
                self.assertEqual(self.spend(credit, 1000), 1000)
                self.assertEqual(credit.left, self.LIMIT)
                credit.add(5)
                self.assertEqual(credit.left, self.LIMIT)

    def test_initial_n_with_the_top_bit(self):
        for initial_n in (0x80000000, 0x80000001, 0xFFFFFFFF):
            credit = Credit(initial_n - 1)
            self.assertEqual(credit.left, self.LIMIT)
            self.assertEqual(self.spend(credit, 100), 100)


class CancelDropsUnwrittenItems(unittest.TestCase):
    """STREAM-10, STREAM-11 and FD-SEND-9 through the server core: items
    queued behind a full socket are dropped with their FDs on CANCEL, and the
    FD numbering of what follows is that of the items actually written."""

    def test_drop(self):
        client, server_sock = socket.socketpair()
        server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        server_sock.setblocking(False)
        conn = ServerConnection(server_sock, 1, FdTestService(None, Quiet()), Quiet())
        before = open_fds()
        try:
            conn.on_read(fr.encode_setup(md.encode_setup_metadata()), [])
            request = fr.encode_message(fr.REQUEST_STREAM, 1, 0, md.encode_request_metadata(b"streamFds", 4),
                                        fdtest.encode_stream_fds_args(10000, 3), initial_n=0xFFFFFFFF)[0]
            conn.on_read(request, [])
            for _ in range(200):
                conn.produce()
                if not conn.flush():
                    break
            self.assertGreater(len(conn.out), 1, "the socket never filled")
            conn.on_read(fr.encode_cancel(1), [])
            self.assertFalse(conn.streams)
            self.assertLessEqual(len(conn.out), 1)  # at most the item already begun
            read_end, write_end = os.pipe()
            meta = md.encode_request_metadata(b"echo", 0, 0, 1)
            conn.on_read(fr.encode_message(fr.REQUEST_RESPONSE, 3, 0, meta, fdtest.encode_tag_args(b"e"))[0],
                         [write_end])
            peer = Peer(client)
            items = 0
            while True:
                if conn.out:
                    conn.flush()
                message = peer.read_message(timeout=2)
                if message.stream_id == 3:
                    break
                if message.stream_id == 1:
                    items += 1
            fds = peer.take_fds()
            self.assertEqual(len(fds), 3 * (items - 1) + 1)  # the first response has no FD
            response = md.decode_response_metadata(message.metadata)
            self.assertEqual(response["fdMetadata"], {"fdSeqNum": len(fds) - 1, "numFds": 1})
            self.assertEqual(os.fstat(fds[-1]).st_ino, os.fstat(read_end).st_ino)
            for fd in fds + [read_end]:
                os.close(fd)
            peer.close()
        finally:
            conn.close()
            client.close()
        leaked = open_fds() - before
        self.assertEqual({fd: os.readlink("/proc/self/fd/%d" % fd) for fd in leaked}, {})


class Sinks(StreamTest):
    def sink(self, peer, stream_id, tag, flags=0, kind=6, fds=None, seq=0):
        peer.request(stream_id, b"sinkFds", fdtest.encode_tag_args(tag), fds, seq, kind=kind,
                     ftype=fr.REQUEST_CHANNEL, initial_n=2, flags=flags)

    def sink_first_response(self, peer, stream_id):
        message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id, message.flags & NEXT_COMPLETE),
                         (fr.PAYLOAD, stream_id, NEXT))
        self.assertEqual(message.data, b"\x00")
        return md.decode_response_metadata(message.metadata)

    def credit(self, peer, stream_id):
        frame = peer.read_message()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.REQUEST_N, stream_id),
                         error_of(frame) if frame.ftype == fr.ERROR else "")
        self.assertGreaterEqual(frame.initial_n, 1)
        return frame.initial_n

    def send_item(self, peer, stream_id, tag, fds=(), seq=0, fragment_size=fr.FRAGMENT_PAYLOAD, num_fds=None):
        count = len(fds) if num_fds is None else num_fds
        meta = md.encode_stream_payload_metadata(seq, count)
        frames = fr.encode_message(fr.PAYLOAD, stream_id, NEXT, meta, fdtest.encode_string_result(tag),
                                   fragment_size=fragment_size)
        peer.send(b"".join(frames), list(fds) or None)
        for fd in fds:
            os.close(fd)

    def complete(self, peer, stream_id):
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, stream_id, fr.FLAG_COMPLETE, md.EMPTY_STREAM_PAYLOAD_METADATA))

    def final_response(self, peer, stream_id):
        message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id, message.flags & NEXT_COMPLETE),
                         (fr.PAYLOAD, stream_id, NEXT_COMPLETE))
        meta = md.decode_stream_payload_metadata(message.metadata)
        self.assertEqual(meta, {"payloadMetadata": {"responseMetadata": {}}})  # no FD (SVC-SINK-1)
        return c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]

    def offering_peer(self, offer=(md.EXT_SINK,)):
        peer = Peer.connect(self.path)
        self.peers.append(peer)
        peer.setup(offer=offer)
        self.assertEqual(peer.read_frame().ftype, fr.METADATA_PUSH)
        return peer

    def test_items_with_fds(self):
        # SVC-SINK-1, SVC-SINK-2, EXT-3, SINK-4: every FD described in order and
        # closed by the final response; credits granted as items arrive.
        peer = self.offering_peer()
        read_end, request_fd = self.pipe()
        self.sink(peer, 1, b"t", fds=[request_fd])
        os.close(request_fd)
        meta = self.sink_first_response(peer, 1)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))  # SVC-SINK-3
        self.assertEqual(meta["otherMetadata"], [(b"rocketfd.fds", b"sink")])
        credits = self.credit(peer, 1)
        pipes = [self.pipe() for _ in range(4)]
        items = [(b"one", [pipes[0][1]]), (b"none", []), (b"two", [pipes[1][1], pipes[2][1]]),
                 (b"big", [pipes[3][1]])]
        inodes = [os.fstat(fd).st_ino for _, fds in items for fd in fds]
        seq = 1  # after the request's FD
        for tag, fds in items:
            while credits == 0:
                credits += self.credit(peer, 1)
            fragment_size = 100 if tag == b"big" else fr.FRAGMENT_PAYLOAD
            self.send_item(peer, 1, tag * (200 if tag == b"big" else 1), fds, seq, fragment_size)
            seq += len(fds)
            credits -= 1
        self.complete(peer, 1)
        message = peer.read_message()
        while message.ftype == fr.REQUEST_N:
            message = peer.read_message()
        self.assertEqual((message.stream_id, message.flags & NEXT_COMPLETE), (1, NEXT_COMPLETE))
        self.assertEqual(md.decode_stream_payload_metadata(message.metadata),
                         {"payloadMetadata": {"responseMetadata": {}}})
        report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual(report["tag"], b"t")
        self.assertEqual([info["ino"] for info in report["fds"]], inodes)
        self.assertEqual({info["type"] for info in report["fds"]}, {0x1000})
        for read_end, _ in pipes:
            self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_complete_on_the_request_is_not_looked_at(self):
        # SINK-11: a REQUEST_CHANNEL with COMPLETE is served like one without:
        # credit, items (with FDs under sink) and the completion, then the report.
        peer = self.offering_peer()
        self.sink(peer, 1, b"complete", flags=fr.FLAG_COMPLETE)
        self.sink_first_response(peer, 1)
        self.credit(peer, 1)
        self.assertQuiet(peer)  # no final response before the client's completion
        read_end, write_end = self.pipe()
        inode = os.fstat(write_end).st_ino
        self.send_item(peer, 1, b"one", [write_end])
        self.complete(peer, 1)
        message = peer.read_message()
        while message.ftype == fr.REQUEST_N:
            message = peer.read_message()
        self.assertEqual((message.stream_id, message.flags & NEXT_COMPLETE), (1, NEXT_COMPLETE))
        report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual((report["tag"], [info["ino"] for info in report["fds"]]), (b"complete", [inode]))
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_complete_on_the_last_fragment_of_the_request(self):
        # SINK-11, 4.5: where COMPLETE sits on a fragmented request does not matter.
        peer = self.offering_peer()
        meta = md.encode_request_metadata(b"sinkFds", 6)
        frames = fr.encode_message(fr.REQUEST_CHANNEL, 1, 0, meta, fdtest.encode_tag_args(b"f" * 300),
                                   initial_n=2, fragment_size=100)
        self.assertGreater(len(frames), 2)
        last = bytearray(frames[-1])
        last[8] |= fr.FLAG_COMPLETE  # the low byte of the type-and-flags field
        peer.send(b"".join(frames[:-1]) + bytes(last))
        self.sink_first_response(peer, 1)
        self.credit(peer, 1)
        self.complete(peer, 1)
        self.assertEqual(self.final_response(peer, 1), {"tag": b"f" * 300, "fds": []})

    def fail_item(self, stream_id, send, error_code):
        """Opens sink stream_id, lets send(peer) send one item, and expects
        ERROR error_code on the sink, no final response; returns its data."""
        peer = self.offering_peer()
        self.sink(peer, stream_id, b"t")
        self.sink_first_response(peer, stream_id)
        self.credit(peer, stream_id)
        send(peer)
        frame = peer.read_message()
        self.assertEqual((frame.ftype, frame.stream_id, frame.error_code), (fr.ERROR, stream_id, error_code))
        self.complete(peer, stream_id)  # on a sink that is no longer open: ignored
        _, result = self.echo(peer, stream_id + 2, b"after")
        self.assertEqual(result["success"], b"after")
        self.assertQuiet(peer)
        return frame.data

    def test_items_with_bad_metadata(self):
        # SINK-12: ERROR 0x204 (1, 6), no final response; the connection goes on.
        item = fdtest.encode_string_result(b"one")
        cases = {
            "no metadata": fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, b"", item),
            "truncated metadata": fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, b"\x3c", item),
            "payloadMetadata of a wrong type": fr.encode_payload_frame(
                fr.PAYLOAD, 1, NEXT, c.encode_struct([(3, c.I32, 1)]), item),
            "empty payloadMetadata": fr.encode_payload_frame(
                fr.PAYLOAD, 1, NEXT, c.encode_struct([(3, c.STRUCT, [])]), item),
            "unknown payloadMetadata member": fr.encode_payload_frame(
                fr.PAYLOAD, 1, NEXT, c.encode_struct([(3, c.STRUCT, [(9, c.STRUCT, [])])]), item),
        }
        for what, frame in cases.items():
            with self.subTest(what=what):
                data = self.fail_item(1, lambda peer: peer.send(frame), fr.ERROR_INVALID)
                error = md.decode_response_rpc_error(data)
                self.assertEqual((error.get("category"), error.get("code")), (1, 6), error)

    def test_empty_payload_metadata_closes_the_claimed_fd(self):
        # SINK-12, FD-CARRY-3: the item's FD is claimed first, then closed.
        read_end, write_end = self.pipe()
        meta = c.encode_struct([(3, c.STRUCT, []), (5, c.STRUCT, md.fd_metadata_fields(0, 1))])
        frame = fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, meta, fdtest.encode_string_result(b"one"))
        self.fail_item(1, lambda peer: peer.send(frame, [write_end]), fr.ERROR_INVALID)
        os.close(write_end)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_items_whose_data_does_not_decode(self):
        # SVC-SINK-4: ERROR 0x201 with a StreamRpcError, the item's FD closed.
        for what, data in (("truncated struct", b"\x18\x05ab"), ("not a struct", b"\xff\xff"),
                           ("empty struct", b"\x00"), ("field 0 an i32", c.encode_struct([(0, c.I32, 7)]))):
            with self.subTest(what=what):
                read_end, write_end = self.pipe()
                meta = md.encode_stream_payload_metadata(0, 1)
                frame = fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, meta, data)
                error = self.fail_item(1, lambda peer: peer.send(frame, [write_end]), fr.ERROR_APPLICATION_ERROR)
                os.close(write_end)
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
                stream_error = md.decode_response_rpc_error(error)  # a StreamRpcError reads as one (6.5)
                self.assertIn(b"{0: string}" if what != "empty struct" else b"field 0",
                              stream_error.get("what_utf8", b""))

    def send_dup_items(self, peer, counts):
        """Sends one item per count, each with that many duplicates of a new
        pipe's write end; returns the read ends and the inodes sent, in order."""
        read_ends, inodes, seq = [], [], 0
        for index, count in enumerate(counts):
            read_end, write_end = self.pipe()
            fds = [write_end] + [os.dup(write_end) for _ in range(count - 1)]
            read_ends.append(read_end)
            inodes += [os.fstat(write_end).st_ino] * count
            self.send_item(peer, 1, b"item%d" % index, fds, seq)
            seq += count
        return read_ends, inodes

    def test_items_with_253_fds_in_all(self):
        # SVC-SINK-5 at its bound: 253 FDs from all items are reported.
        peer = self.offering_peer()
        self.sink(peer, 1, b"t")
        self.sink_first_response(peer, 1)
        self.credit(peer, 1)  # 2: one for each item
        read_ends, inodes = self.send_dup_items(peer, [200, 53])
        self.complete(peer, 1)
        message = peer.read_message()
        while message.ftype == fr.REQUEST_N:
            message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id, message.flags & NEXT_COMPLETE),
                         (fr.PAYLOAD, 1, NEXT_COMPLETE))
        report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual([info["ino"] for info in report["fds"]], inodes)
        for read_end in read_ends:
            self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_items_with_more_than_253_fds_in_all(self):
        # SVC-SINK-5: the item that passes 253 ends the sink with ERROR 0x201, a
        # StreamRpcError and no final response; every FD of the sink is closed.
        for counts in ([200, 54], [253, 1], [100, 100, 54]):
            with self.subTest(counts=counts):
                peer = self.offering_peer()
                self.sink(peer, 1, b"t")
                self.sink_first_response(peer, 1)
                credits = self.credit(peer, 1)
                self.assertEqual(credits, 2)
                read_ends, _ = self.send_dup_items(peer, counts[:2])
                if len(counts) == 3:
                    self.assertEqual(self.credit(peer, 1), 1)  # after the first item
                    read_end, write_end = self.pipe()
                    fds = [write_end] + [os.dup(write_end) for _ in range(counts[2] - 1)]
                    read_ends.append(read_end)
                    self.send_item(peer, 1, b"item2", fds, sum(counts[:2]))
                message = peer.read_message()
                while message.ftype == fr.REQUEST_N:
                    self.assertEqual(message.stream_id, 1)
                    message = peer.read_message()
                self.assertEqual((message.ftype, message.stream_id, message.error_code),
                                 (fr.ERROR, 1, fr.ERROR_APPLICATION_ERROR))
                what = md.decode_response_rpc_error(message.data).get("what_utf8", b"")
                self.assertIn(b"253", what)
                for read_end in read_ends:
                    self.assertTrue(pipe_is_closed(read_end, timeout=0))
                # The sink is no longer open: its completion is ignored, the connection goes on.
                self.complete(peer, 1)
                _, result = self.echo(peer, 3, b"after", [os.open("/dev/null", os.O_RDONLY)], seq=sum(counts))
                self.assertEqual(result["success"], b"after")
                self.assertQuiet(peer)

    def test_item_without_payload_metadata_is_a_result(self):
        # SINK-12, 21.6: read as a result, as META-22 reads a response.
        peer = self.offering_peer()
        self.sink(peer, 1, b"t")
        self.sink_first_response(peer, 1)
        self.credit(peer, 1)
        read_end, write_end = self.pipe()
        inode = os.fstat(write_end).st_ino
        meta = c.encode_struct([(5, c.STRUCT, md.fd_metadata_fields(0, 1))])
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, meta, fdtest.encode_string_result(b"bare")),
                  [write_end])
        os.close(write_end)
        self.complete(peer, 1)
        message = peer.read_message()
        while message.ftype == fr.REQUEST_N:
            message = peer.read_message()
        report = c.decode_struct(message.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual([info["ino"] for info in report["fds"]], [inode])
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_exception_item_ends_the_sink(self):
        # SINK-13: the client's end, as its ERROR: nothing more on the sink, the
        # claimed FD closed (with or without the agreement), the id free again.
        for offer in ((md.EXT_SINK,), ()):
            with self.subTest(offer=offer):
                peer = self.offering_peer(offer)
                self.sink(peer, 1, b"t")
                self.sink_first_response(peer, 1)
                self.credit(peer, 1)
                read_end, write_end = self.pipe()
                meta = md.encode_stream_payload_metadata(0, 1, exception=(b"Boom", b"generator threw"))
                peer.send(fr.encode_payload_frame(fr.PAYLOAD, 1, NEXT, meta, b"\x00"), [write_end])
                os.close(write_end)
                self.complete(peer, 1)
                _, result = self.echo(peer, 1, b"same id")
                self.assertEqual(result["success"], b"same id")
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
                self.assertQuiet(peer)

    def test_no_answer_without_an_offer_and_fds_refused(self):
        # EXT-3, EXT-4, EXT-7, SINK-10.
        for offer in ((), (md.EXT_EXCEPTION,)):
            with self.subTest(offer=offer):
                peer = self.offering_peer(offer)
                self.sink(peer, 1, b"t")
                self.assertNotIn("otherMetadata", self.sink_first_response(peer, 1))
                self.credit(peer, 1)
                read_end, write_end = self.pipe()
                self.send_item(peer, 1, b"one", [write_end])
                self.assertRejected(peer, 1, md.CODE_REQUEST_PARSING_FAILURE)
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
                # The sink is no longer open: later frames on it are ignored.
                self.send_item(peer, 1, b"two")
                self.complete(peer, 1)
                _, result = self.echo(peer, 3, b"after")
                self.assertEqual(result["success"], b"after")

    def test_item_claim_mismatch(self):
        # SINK-10: ERROR on the sink, both FDs closed, the connection usable.
        peer = self.offering_peer()
        self.sink(peer, 1, b"t")
        self.sink_first_response(peer, 1)
        self.credit(peer, 1)
        read_end, write_end = self.pipe()
        self.send_item(peer, 1, b"one", [write_end, os.dup(write_end)], num_fds=1)
        error = self.assertRejected(peer, 1, md.CODE_REQUEST_PARSING_FAILURE)
        self.assertIn(b"mismatch", error["what_utf8"])
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        meta, result = self.echo(peer, 3, b"after", [os.open("/dev/null", os.O_RDONLY)], seq=2)
        self.assertEqual(result["success"], b"after")

    def test_client_error_and_cancel_end_the_sink(self):
        # SINK-9 and 21.6: ERROR 0x203 or CANCEL from the client, nothing sent after it.
        for end in (fr.encode_error(1, fr.ERROR_CANCELED), fr.encode_cancel(1)):
            with self.subTest(end=end.hex()):
                peer = self.offering_peer()
                self.sink(peer, 1, b"t")
                self.sink_first_response(peer, 1)
                self.credit(peer, 1)
                read_end, write_end = self.pipe()
                self.send_item(peer, 1, b"one", [write_end])
                peer.send(end)
                self.complete(peer, 1)
                peer.request(3, b"echo", fdtest.encode_tag_args(b"after"))
                message = peer.read_message()
                while message.stream_id == 1:
                    self.assertEqual(message.ftype, fr.REQUEST_N)  # a credit written before the end
                    message = peer.read_message()
                self.assertEqual((message.ftype, message.stream_id), (fr.PAYLOAD, 3))
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
                self.assertQuiet(peer)

    def test_kinds(self):
        # META-12, META-14 at a server that implements sinks (6.8 steps 4, 5 and 8).
        peer = self.offering_peer()
        args = fdtest.encode_tag_args(b"t")
        peer.request(1, b"sinkFds", args, kind=0)
        self.assertRejected(peer, 1, md.CODE_WRONG_RPC_KIND)
        peer.request(3, b"sinkFds", args, kind=4, ftype=fr.REQUEST_STREAM, initial_n=2)
        self.assertRejected(peer, 3, md.CODE_WRONG_RPC_KIND)
        peer.request(5, b"sinkFds", args, kind=7, ftype=fr.REQUEST_CHANNEL, initial_n=2)
        self.assertRejected(peer, 5, md.CODE_REQUEST_PARSING_FAILURE)
        peer.request(7, b"echo", args, kind=6, ftype=fr.REQUEST_CHANNEL, initial_n=2)
        self.assertRejected(peer, 7, md.CODE_WRONG_RPC_KIND)
        meta = c.encode_struct([(1, c.I32, 2), (2, c.BINARY, b"sinkFds")])
        peer.request(9, None, args, meta=meta, ftype=fr.REQUEST_CHANNEL, initial_n=2)
        self.assertRejected(peer, 9, md.CODE_WRONG_RPC_KIND)


if __name__ == "__main__":
    unittest.main()
