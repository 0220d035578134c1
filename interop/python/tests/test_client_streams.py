"""The client core's streams, sinks and the extensions of 21.8, driven by a
scripted server in the same thread."""

import os
import unittest

from peer import pipe_is_closed, pipe_is_open
from test_client import ClientTest

from rocketfd_py import client as cl
from rocketfd_py import compact as c
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md

NEXT = fr.FLAG_NEXT
NEXT_COMPLETE = fr.FLAG_NEXT | fr.FLAG_COMPLETE
QUIET_TIME = 0.2
ERROR_TEXT = "no such luck"


def report(tag, fds):
    infos = []
    for fd in fds:
        st = os.fstat(fd)
        infos.append({"dev": fdtest.to_signed64(st.st_dev), "ino": st.st_ino, "type": 0x1000, "cloexec": True,
                      "flags": 0})
    return fdtest.encode_report_result(tag, infos)


class StreamClientTest(ClientTest):
    def send(self, stream_id, flags, meta, data=b"", fds=None):
        self.server.send(b"".join(fr.encode_message(fr.PAYLOAD, stream_id, flags, meta, data)), fds)
        for fd in fds or []:
            os.close(fd)

    def first_response(self, stream_id, fds=None, seq=0, flags=NEXT, meta=None):
        count = len(fds or [])
        if meta is None:
            meta = md.encode_response_metadata(seq if count else None, count)
        self.send(stream_id, flags, meta, b"\x00", fds)

    def item(self, stream_id, tag, fds=(), seq=0, flags=NEXT, exception=None, data=None):
        meta = md.encode_stream_payload_metadata(seq if fds else None, len(fds), exception)
        self.send(stream_id, flags, meta, report(tag, fds) if data is None else data, list(fds))

    def assertQuiet(self):
        with self.assertRaises(TimeoutError):
            self.server.read_frame(timeout=QUIET_TIME)

    def start_stream(self, count=3, per_item=1, window=2):
        call = self.conn.start_stream("streamFds", fdtest.encode_stream_fds_args(count, per_item), window=window)
        request = self.server.read_message()
        self.assertEqual((request.ftype, request.stream_id, request.flags), (fr.REQUEST_STREAM, call.stream_id,
                                                                              fr.FLAG_METADATA))
        self.assertEqual(request.initial_n, 1 + window)  # STREAM-1
        meta = md.decode_request_metadata(request.metadata)
        self.assertEqual((meta["name"], meta["kind"]), (b"streamFds", 4))
        return call

    def read_request_n(self, stream_id):
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.REQUEST_N, stream_id))
        return frame.initial_n


class Streams(StreamClientTest):
    def test_items_credits_and_end(self):
        # STREAM-1, STREAM-5, STREAM-8: no REQUEST_N before the first response,
        # one after each item taken, none after the end; item FDs handed over.
        call = self.start_stream()
        self.assertQuiet()
        self.first_response(call.stream_id)
        self.assertTrue(self.conn.wait_first(call, 2).first_arrived)
        self.assertQuiet()
        inos = []
        for index, seq in ((0, 0), (1, 1)):
            _, fd = self.pipe()
            inos.append(os.fstat(fd).st_ino)
            self.item(call.stream_id, str(index).encode(), [fd], seq)
        value, fds = self.conn.next_item(call, 2)
        self.assertEqual((value["tag"], [os.fstat(fd).st_ino for fd in fds]), (b"0", inos[:1]))
        self.assertEqual(value["fds"][0]["ino"], inos[0])
        os.close(fds[0])
        self.assertEqual(self.read_request_n(call.stream_id), 1)
        self.item(call.stream_id, b"2", flags=NEXT_COMPLETE)
        value, fds = self.conn.next_item(call, 2)
        self.assertEqual(value["tag"], b"1")
        os.close(fds[0])
        # Item 1 was taken before item 2 was read: its credit crosses the end.
        self.assertEqual(self.read_request_n(call.stream_id), 1)
        value, fds = self.conn.next_item(call, 2)
        self.assertEqual((value["tag"], fds), (b"2", []))
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertTrue(call.ok)
        self.assertQuiet()  # no REQUEST_N once the stream ended
        self.assertNotIn(call.stream_id, self.conn.calls)

    def test_completion_frame_ends_the_stream(self):
        # STREAM-5: COMPLETE without NEXT is the end, with no item.
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.item(call.stream_id, b"0")
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE))
        self.assertEqual(self.conn.next_item(call, 2)[0]["tag"], b"0")
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertTrue(call.ok, call.error)

    def test_first_response_with_complete(self):
        call = self.start_stream(count=0)
        self.first_response(call.stream_id, flags=NEXT_COMPLETE)
        self.conn.wait_first(call, 2)
        self.assertTrue(call.ok)
        self.assertIsNone(self.conn.next_item(call, 0.1))

    def test_fds_on_the_first_response(self):
        call = self.start_stream()
        read_end, write_end = self.pipe()
        self.first_response(call.stream_id, [write_end], 0)
        self.conn.wait_first(call, 2)
        self.assertEqual(len(call.first_fds), 1)
        self.assertTrue(pipe_is_open(read_end))
        call.release()
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_request_n_from_the_server_fails_the_connection(self):
        # STREAM-18, and a REQUEST_N on a request-response call stays ignored (FRAME-18).
        echo = self.start_echo(b"e")
        self.server.send(fr.encode_request_n(echo.stream_id, 3))
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.server.send(fr.encode_request_n(call.stream_id, 5))
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, cl.CONTRACT)
        self.assertTrue(self.conn.closed)
        self.assertEqual(echo.failure, cl.CONNECTION)
        frames = [frame for frame in self.server.read_until_eof() if frame.ftype != fr.REQUEST_N]
        self.assertEqual([(f.ftype, f.stream_id, f.error_code) for f in frames],
                         [(fr.ERROR, 0, fr.ERROR_CONNECTION_ERROR)])

    def test_first_message_without_next(self):
        # STREAM-18: a stream that starts with its end.
        call = self.start_stream()
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE))
        self.conn.wait_first(call, 2)
        self.assertEqual(call.failure, cl.CONTRACT)
        self.assertTrue(self.conn.closed)

    def test_item_beyond_the_credits(self):
        # STREAM-17: window 1 grants one item; a second one fails the stream and the connection.
        call = self.start_stream(window=1)
        self.first_response(call.stream_id)
        read_ends = []
        for index in range(2):
            read_end, write_end = self.pipe()
            read_ends.append(read_end)
            self.item(call.stream_id, str(index).encode(), [write_end], index)
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.CONTRACT)
        self.assertTrue(self.conn.closed)
        self.assertTrue(pipe_is_closed(read_ends[1], timeout=0))
        call.release()
        self.assertTrue(pipe_is_closed(read_ends[0], timeout=0))

    def test_claim_failure_fails_the_connection(self):
        # STREAM-12: an item with fdSeqNum 5 instead of 0.
        call = self.start_stream()
        self.first_response(call.stream_id)
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"0", [write_end], 5)
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, cl.FD_MISMATCH)
        self.assertTrue(self.conn.closed)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_timeout_sends_cancel_and_late_frames_are_claimed(self):
        # STREAM-13, STREAM-14, FD-CARRY-5: CANCEL at once; the late first response,
        # item and completion are claimed and closed; then the id is free.
        call = self.start_stream()
        self.conn.wait_first(call, 0.05)
        self.assertEqual(call.failure, cl.TIMEOUT)
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.CANCEL, call.stream_id))
        read_ends = []
        write_ends = []
        for _ in range(3):
            read_end, write_end = self.pipe()
            read_ends.append(read_end)
            write_ends.append(write_end)
        self.first_response(call.stream_id, write_ends[:1], 0)
        self.item(call.stream_id, b"0", write_ends[1:], 1)
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE))
        echo = self.start_echo(b"gap")
        self.respond(echo.stream_id, b"gap", md.encode_response_metadata())
        self.assertTrue(self.finish(echo).ok)
        for read_end in read_ends:
            self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(self.conn.abandoned, {})
        self.assertQuiet()  # no REQUEST_N on the abandoned stream

    def test_the_timeout_covers_the_first_response_only(self):
        # STREAM-15.
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.conn.wait_first(call, 0.05)
        self.conn.pump(0.2)
        self.item(call.stream_id, b"0", flags=NEXT_COMPLETE)
        self.assertEqual(self.conn.next_item(call, 2)[0]["tag"], b"0")
        self.assertTrue(call.ok, call.error)
        self.assertQuiet()

    def test_cancel(self):
        # STREAM-13, STREAM-14: CANCEL, no REQUEST_N after it, items that crossed
        # it closed, an ERROR ends the abandoned stream.
        call = self.start_stream(window=2)
        self.first_response(call.stream_id)
        self.item(call.stream_id, b"0")
        self.conn.next_item(call, 2)
        self.assertEqual(self.read_request_n(call.stream_id), 1)
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"1", [write_end])
        self.conn.pump(0.1)
        self.conn.cancel(call)
        self.assertEqual(call.failure, cl.CANCELLED)
        self.assertEqual(len(call.items), 0)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))  # taken by the stream, closed at the cancel
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.CANCEL, call.stream_id))
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"2", [write_end], 1)
        self.server.send(fr.encode_error(call.stream_id, fr.ERROR_CANCELED, md.encode_stream_rpc_error("bye")))
        echo = self.start_echo(b"after")
        fd = os.open("/dev/null", os.O_RDONLY)
        self.respond(echo.stream_id, b"after", md.encode_response_metadata(2, 1), [fd])
        self.assertTrue(self.finish(echo).ok, echo.error)
        echo.release()
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(self.conn.abandoned, {})
        self.assertQuiet()

    def test_error_after_items(self):
        # 21.2, 6.5: a StreamRpcError's what_utf8; items that came before stay available.
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.item(call.stream_id, b"0")
        self.server.send(fr.encode_error(call.stream_id, fr.ERROR_APPLICATION_ERROR,
                                         md.encode_stream_rpc_error(ERROR_TEXT, md.STREAM_CODE_CREDIT_TIMEOUT)))
        self.assertEqual(self.conn.next_item(call, 2)[0]["tag"], b"0")
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, cl.RPC_ERROR)
        self.assertIn(ERROR_TEXT, call.error)
        self.assertFalse(self.conn.closed)

    def test_item_that_is_no_result_cancels_the_stream(self):
        # An item whose payloadMetadata is an empty union: the stream fails, its FD is
        # closed, CANCEL is sent and the connection stays (a choice, see the README).
        call = self.start_stream()
        self.first_response(call.stream_id)
        read_end, write_end = self.pipe()
        meta = c.encode_struct([(3, c.STRUCT, []), (5, c.STRUCT, md.fd_metadata_fields(0, 1))])
        self.send(call.stream_id, NEXT, meta, report(b"0", []), [write_end])
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, cl.NO_RESULT)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.CANCEL, call.stream_id))
        self.assertFalse(self.conn.closed)


class ItemsThatAreNoResult(StreamClientTest):
    """STREAM-20: a stream item that is neither a result nor an exception fails
    its stream, not the connection; CANCEL unless the item had COMPLETE."""

    def fail_stream(self, send_item, failure, cancel=True):
        """A stream whose first item send_item(stream_id) sends; checks how it failed."""
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.assertTrue(self.conn.wait_first(call, 2).first_ok)
        send_item(call.stream_id)
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, failure, call.error)
        self.assertFalse(self.conn.closed)
        if cancel:
            frame = self.server.read_frame()
            self.assertEqual((frame.ftype, frame.stream_id), (fr.CANCEL, call.stream_id))
            self.assertIn(call.stream_id, self.conn.abandoned)  # STREAM-13
            self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE))
        self.assertQuiet()  # no REQUEST_N, no CANCEL after the terminal frame
        return call

    def test_items(self):
        seq = 0
        closed_by_the_item = []
        orphaned = []
        item_data = report(b"0", [])

        read_end, write_end = self.pipe()
        orphaned.append(read_end)  # its metadata does not decode: not claimed (FD-CARRY-3)
        self.fail_stream(lambda sid: self.send(sid, NEXT, b"\x3c", item_data, [write_end]), cl.MALFORMED)
        seq += 1

        read_end, write_end = self.pipe()
        closed_by_the_item.append(read_end)
        self.fail_stream(lambda sid: self.send(sid, NEXT, md.encode_stream_payload_metadata(seq, 1), b"\x18\x05ab",
                                               [write_end]), cl.MALFORMED)
        seq += 1

        read_end, write_end = self.pipe()
        closed_by_the_item.append(read_end)
        meta = c.encode_struct([(3, c.STRUCT, [(7, c.STRUCT, [])]), (5, c.STRUCT, md.fd_metadata_fields(seq, 1))])
        self.fail_stream(lambda sid: self.send(sid, NEXT, meta, item_data, [write_end]), cl.NO_RESULT)
        seq += 1

        read_end, write_end = self.pipe()
        closed_by_the_item.append(read_end)
        meta = c.encode_struct([(3, c.STRUCT, []), (5, c.STRUCT, md.fd_metadata_fields(seq, 1))])
        call = self.fail_stream(lambda sid: self.send(sid, NEXT_COMPLETE, meta, item_data, [write_end]),
                                cl.NO_RESULT, cancel=False)
        self.assertNotIn(call.stream_id, self.conn.abandoned)  # COMPLETE ended it: no CANCEL
        seq += 1

        for read_end in closed_by_the_item:
            self.assertTrue(pipe_is_closed(read_end, timeout=0))
        # The connection goes on, its numbering aligned; the claim closes the orphan.
        echo = self.start_echo(b"after")
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.respond(echo.stream_id, b"after", md.encode_response_metadata(seq, 1), [fd])
        self.assertTrue(self.finish(echo).ok, echo.error)
        self.assertEqual(len(echo.fds), 1)
        echo.release()
        self.assertTrue(pipe_is_closed(orphaned[0], timeout=0))

    def test_undeclared_exception_without_complete(self):
        # 21.2: it ends the stream at the client, which cancels it.
        exception = [(1, c.BINARY, b"Other"), (2, c.BINARY, b"boom"), (3, c.STRUCT, [(6, c.STRUCT, [])])]
        meta = c.encode_struct([(3, c.STRUCT, [(2, c.STRUCT, exception)])])
        self.fail_stream(lambda sid: self.send(sid, NEXT, meta, b"\x00"), cl.APPLICATION)


class FirstResponsesThatAreNoResult(StreamClientTest):
    """N18 (README): a first response that is neither a result nor an
    exception fails the call only, as STREAM-20 says for items: its FD
    closed, CANCEL or ERROR 0x203 unless it had COMPLETE, the connection kept."""

    def check(self, start, flags, expected_frame):
        call = start()
        read_end, write_end = self.pipe()
        # ResponseRpcMetadata's payloadMetadata is field 7 (6.3).
        meta = c.encode_struct([(7, c.STRUCT, []), (12, c.STRUCT, md.fd_metadata_fields(0, 1))])
        self.send(call.stream_id, flags, meta, b"\x00", [write_end])
        self.conn.wait_first(call, 2)
        self.assertEqual(call.failure, cl.NO_RESULT, call.error)
        self.assertFalse(call.first_ok)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        if expected_frame is None:
            self.assertQuiet()
            self.assertEqual(self.conn.abandoned, {})
        else:
            frame = self.server.read_frame()
            self.assertEqual((frame.ftype, frame.stream_id, getattr(frame, "error_code", None)),
                             (expected_frame[0], call.stream_id, expected_frame[1]))
            self.assertIn(call.stream_id, self.conn.abandoned)
        self.assertFalse(self.conn.closed)
        echo = self.start_echo(b"after")
        self.respond(echo.stream_id, b"after", md.encode_response_metadata())
        self.assertTrue(self.finish(echo).ok, echo.error)

    def start_sink(self):
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        return call

    def test_stream(self):
        self.check(self.start_stream, NEXT, (fr.CANCEL, None))

    def test_stream_with_complete(self):
        self.check(self.start_stream, NEXT_COMPLETE, None)

    def test_sink(self):
        self.check(self.start_sink, NEXT, (fr.ERROR, fr.ERROR_CANCELED))

    def test_sink_with_complete(self):
        self.check(self.start_sink, NEXT_COMPLETE, None)


class AbandonedClaims(StreamClientTest):
    """STREAM-21: a claim that fails on an abandoned stream or sink keeps the
    connection; what the claim procedure closes is closed."""

    def test_stream(self):
        call = self.start_stream()
        self.first_response(call.stream_id)
        self.conn.wait_first(call, 2)
        self.conn.cancel(call)
        self.assertEqual(self.server.read_frame().ftype, fr.CANCEL)
        # Group 0 (R1) and item 0 claiming fdSeqNum 5: R1 is an orphan, the claim fails.
        r1, w1 = self.pipe()
        self.item(call.stream_id, b"0", [w1], 5)
        # Group 1 (R2, R3) and item 1 claiming 1 FD at 1: the group is closed (7.5 step 6).
        r2, w2 = self.pipe()
        r3, w3 = self.pipe()
        meta = md.encode_stream_payload_metadata(1, 1)
        self.send(call.stream_id, NEXT, meta, report(b"1", []), [w2, w3])
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE))
        echo = self.start_echo(b"after")
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.respond(echo.stream_id, b"after", md.encode_response_metadata(3, 1), [fd])
        self.assertTrue(self.finish(echo).ok, echo.error)
        self.assertEqual(len(echo.fds), 1)
        echo.release()
        self.assertFalse(self.conn.closed)
        for read_end in (r1, r2, r3):
            self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(self.conn.abandoned, {})

    def test_sink(self):
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        self.conn.wait_first(call, 0.05)
        self.assertEqual(call.failure, cl.TIMEOUT)
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.error_code), (fr.ERROR, fr.ERROR_CANCELED))
        r1, w1 = self.pipe()
        self.first_response(call.stream_id, [w1], 4)  # fdSeqNum 4 instead of 0
        r2, w2 = self.pipe()
        self.item(call.stream_id, b"t", [w2], 1, flags=NEXT_COMPLETE)  # the late final response, claimed
        echo = self.start_echo(b"after")
        self.respond(echo.stream_id, b"after", md.encode_response_metadata())
        self.assertTrue(self.finish(echo).ok, echo.error)
        self.assertFalse(self.conn.closed)
        self.assertTrue(pipe_is_closed(r1, timeout=0))
        self.assertTrue(pipe_is_closed(r2, timeout=0))
        self.assertEqual(self.conn.abandoned, {})

    def test_in_flight_still_fails_the_connection(self):
        # STREAM-12 is unchanged for a stream in flight.
        call = self.start_stream()
        self.first_response(call.stream_id)
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"0", [write_end], 3)
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.FD_MISMATCH)
        self.assertTrue(self.conn.closed)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))


class DeclaredExceptions(StreamClientTest):
    """EXT-8 with the offer: the FDs come with the exception, on a response and on a stream item."""

    def _open_error(self, call, fds, seq=0):
        meta = md.encode_response_metadata(seq, len(fds), exception=(b"FdTestError", b"injected"))
        self.send(call.stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(b"injected", 2), fds)

    def test_response(self):
        self.assertIn(md.EXT_EXCEPTION, self.conn.offered)
        call = self.conn.start_call("open", fdtest.encode_path_args(b"x"))
        self.server.read_message()
        read_end, write_end = self.pipe()
        self._open_error(call, [write_end])
        self.finish(call)
        self.assertEqual(call.failure, cl.DECLARED)
        self.assertEqual(call.exception["error"]["errnum"], 2)
        self.assertEqual(len(call.fds), 1)
        self.assertTrue(pipe_is_open(read_end))
        call.release()
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_sink_first_response(self):
        # SINK-14's note: a first response with COMPLETE and a declared exception
        # ends the sink with it, its FD handed over (EXT-8).
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        read_end, write_end = self.pipe()
        self._open_error(call, [write_end])
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.DECLARED, call.error)
        self.assertEqual(len(call.fds), 1)
        self.assertTrue(pipe_is_open(read_end))
        call.release()
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual((self.conn.calls, self.conn.abandoned), ({}, {}))
        self.assertQuiet()
        self.assertFalse(self.conn.closed)

    def test_stream_item(self):
        call = self.start_stream()
        self.first_response(call.stream_id)
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"0", [write_end], flags=NEXT_COMPLETE, exception=(b"FdTestError", b"injected"),
                  data=fdtest.encode_error_result(b"injected", 5))
        self.assertIsNone(self.conn.next_item(call, 2))
        self.assertEqual(call.failure, cl.DECLARED)
        self.assertEqual(len(call.fds), 1)
        call.release()
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(self.conn.calls, {})

    def test_setup_offers_both(self):
        # EXT-1, appendix A.12.
        setup = md.decode_setup_metadata(self.setup_frame.metadata[4:])
        self.assertEqual(setup["clientMetadata"]["otherMetadata"], [(b"rocketfd.fds", b"sink,exception")])


class WithoutOffer(StreamClientTest):
    """EXT-7 without the offer: FDs that come where no agreement allows them are
    closed and the call fails as a protocol error."""

    offer = ()

    def test_setup_has_no_key(self):
        setup = md.decode_setup_metadata(self.setup_frame.metadata[4:])
        self.assertNotIn("clientMetadata", setup)

    def test_declared_exception_with_fds(self):
        call = self.conn.start_call("open", fdtest.encode_path_args(b"x"))
        self.server.read_message()
        read_end, write_end = self.pipe()
        meta = md.encode_response_metadata(0, 1, exception=(b"FdTestError", b"injected"))
        self.send(call.stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(b"injected", 2), [write_end])
        self.finish(call)
        self.assertEqual(call.failure, cl.PROTOCOL)
        self.assertIsNone(call.exception)
        self.assertEqual(call.fds, [])
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertFalse(self.conn.closed)

    def test_declared_exception_without_fds_is_still_declared(self):
        call = self.conn.start_call("open", fdtest.encode_path_args(b"x"))
        self.server.read_message()
        meta = md.encode_response_metadata(exception=(b"FdTestError", b"injected"))
        self.send(call.stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(b"injected", 2))
        self.finish(call)
        self.assertEqual((call.failure, call.exception["error"]["errnum"]), (cl.DECLARED, 2))

    def test_sink_first_response_with_a_declared_exception_and_fds(self):
        # SINK-14's note: the exception ends the sink, its FD closed under EXT-7.
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        read_end, write_end = self.pipe()
        meta = md.encode_response_metadata(0, 1, exception=(b"FdTestError", b"injected"))
        self.send(call.stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(b"injected", 2), [write_end])
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.PROTOCOL, call.error)
        self.assertEqual(call.fds, [])
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual((self.conn.calls, self.conn.abandoned), ({}, {}))
        self.assertQuiet()
        self.assertFalse(self.conn.closed)

    def test_sink_final_response_with_fds(self):
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        self.first_response(call.stream_id)
        self.conn.wait_first(call, 2)
        self.conn.complete(call)
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"t", [write_end], flags=NEXT_COMPLETE)
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.PROTOCOL)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))


class Sinks(StreamClientTest):
    def start_sink(self):
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"sink-2"))
        request = self.server.read_message()
        self.assertEqual((request.ftype, request.flags, request.initial_n),
                         (fr.REQUEST_CHANNEL, fr.FLAG_METADATA, 2))  # SINK-2: no COMPLETE
        meta = md.decode_request_metadata(request.metadata)
        self.assertEqual((meta["name"], meta["kind"]), (b"sinkFds", 6))
        return call

    def accept(self, call, extensions=(md.EXT_SINK,)):
        meta = md.encode_response_metadata(extensions=list(extensions))
        self.first_response(call.stream_id, meta=meta)
        self.conn.wait_first(call, 2)
        self.assertTrue(call.first_arrived)

    def read_item(self):
        message = self.server.read_message()
        self.assertEqual((message.ftype, message.flags & NEXT_COMPLETE), (fr.PAYLOAD, NEXT))
        meta = md.decode_stream_payload_metadata(message.metadata)
        self.assertEqual(meta["payloadMetadata"], {"responseMetadata": {}})
        return meta, c.decode_struct(message.data, fdtest.STRING_RESULT)["success"]

    def test_items_within_credits_completion_and_final_response(self):
        # SINK-5, SINK-6, EXT-6, FD-SEND-9.
        call = self.start_sink()
        self.accept(call)
        self.assertEqual(call.accepted, {md.EXT_SINK})
        self.server.send(fr.encode_request_n(call.stream_id, 1))
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"one"), [fd], timeout=2))
        meta, value = self.read_item()
        self.assertEqual((value, meta["fdMetadata"]), (b"one", {"fdSeqNum": 0, "numFds": 1}))
        self.assertEqual(len(self.server.take_fds()), 1)
        read_end, write_end = self.pipe()
        problem = self.conn.send_item(call, fdtest.encode_string_result(b"early"), [write_end], timeout=0.1)
        self.assertIn("no credit", problem)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertQuiet()
        self.server.send(fr.encode_request_n(call.stream_id, 1))
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"two"), [fd], timeout=2))
        meta, value = self.read_item()
        self.assertEqual((value, meta["fdMetadata"]), (b"two", {"fdSeqNum": 1, "numFds": 1}))
        for fd in self.server.take_fds():
            os.close(fd)
        self.conn.complete(call)
        completion = self.server.read_frame()
        self.assertEqual((completion.ftype, completion.flags, completion.metadata, completion.data),
                         (fr.PAYLOAD, fr.FLAG_METADATA | fr.FLAG_COMPLETE, b"\x00", b""))
        self.send(call.stream_id, NEXT_COMPLETE, md.encode_stream_payload_metadata(),
                  fdtest.encode_report_result(b"sink-2", []))
        self.conn.wait(call, 2)
        self.assertTrue(call.ok, call.error)
        self.assertEqual(call.value, {"tag": b"sink-2", "fds": []})
        self.assertQuiet()  # SINK-8: no CANCEL or REQUEST_N

    def test_balance_reaching_the_limit_means_no_limit(self):
        # SINK-5, 21.1: after one item, REQUEST_N 2^31 - 1 makes the balance
        # 2^31 - 1 (the sum would be 2^31): items go out without counting.
        call = self.start_sink()
        self.accept(call, extensions=())
        self.server.send(fr.encode_request_n(call.stream_id, 1))
        self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"0"), timeout=2))
        self.read_item()
        self.server.send(fr.encode_request_n(call.stream_id, (1 << 31) - 1))
        for index in range(1, 6):
            self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"%d" % index), timeout=2))
            self.assertEqual(self.read_item()[1], b"%d" % index)
        self.assertEqual(call.balance, (1 << 31) - 1)

    def test_request_n_with_the_top_bit_set(self):
        # 21.1: a whole u32, a large credit rather than a masked one.
        call = self.start_sink()
        self.accept(call, extensions=())
        self.server.send(fr.encode_request_n(call.stream_id, 0x80000001))
        for index in range(3):
            self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"%d" % index), timeout=2))
            self.read_item()
        self.assertEqual(call.balance, (1 << 31) - 1)

    def test_final_response_without_payload_metadata(self):
        # 21.6: read as a result, as fbthrift's server sends it.
        call = self.start_sink()
        self.accept(call)
        self.conn.complete(call)
        self.send(call.stream_id, NEXT_COMPLETE, b"\x00", fdtest.encode_report_result(b"sink-2", []))
        self.conn.wait(call, 2)
        self.assertTrue(call.ok, call.error)

    def test_no_fds_without_acceptance(self):
        # EXT-6: the first response did not accept sink.
        call = self.start_sink()
        self.accept(call, extensions=())
        self.server.send(fr.encode_request_n(call.stream_id, 2))
        read_end, write_end = self.pipe()
        problem = self.conn.send_item(call, fdtest.encode_string_result(b"one"), [write_end], timeout=2)
        self.assertIn("EXT-6", problem)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertIsNone(self.conn.send_item(call, fdtest.encode_string_result(b"bare"), timeout=2))
        meta, value = self.read_item()
        self.assertEqual((value, meta.get("fdMetadata")), (b"bare", None))

    def test_answer_names_only_what_was_offered(self):
        # EXT-4 from the receiving side: a name not offered is not taken as accepted.
        self.tearDown()
        self.offer = (md.EXT_EXCEPTION,)
        self.setUp()
        call = self.start_sink()
        self.accept(call, extensions=(md.EXT_SINK, md.EXT_EXCEPTION))
        self.assertEqual(call.accepted, {md.EXT_EXCEPTION})

    def test_giving_up_sends_error_canceled(self):
        # SINK-8, STREAM-13: ERROR 0x203, never CANCEL; the late final response is claimed.
        call = self.start_sink()
        self.accept(call)
        self.conn.wait(call, 0.05)
        self.assertEqual(call.failure, cl.TIMEOUT)
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id, frame.error_code, frame.data),
                         (fr.ERROR, call.stream_id, fr.ERROR_CANCELED, b""))
        read_end, write_end = self.pipe()
        self.item(call.stream_id, b"late", [write_end], flags=NEXT_COMPLETE)
        self.conn.pump(0.2)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(self.conn.abandoned, {})
        self.assertQuiet()

    def test_final_response_that_is_no_result(self):
        # STREAM-20: the sink fails, its FD closed, the connection goes on; no
        # ERROR, since the final response ended the sink.
        seq = 0
        cases = [
            ("empty payloadMetadata", cl.NO_RESULT, True,
             lambda seq: c.encode_struct([(3, c.STRUCT, []), (5, c.STRUCT, md.fd_metadata_fields(seq, 1))]),
             fdtest.encode_report_result(b"t", [])),
            ("data not the result", cl.MALFORMED, True, lambda seq: md.encode_stream_payload_metadata(seq, 1),
             b"\x1c\x18"),
            ("truncated metadata", cl.MALFORMED, False, lambda seq: b"\x1c", fdtest.encode_report_result(b"t", [])),
        ]
        orphans = []
        for what, failure, claimed, meta, data in cases:
            with self.subTest(what=what):
                call = self.start_sink()
                self.accept(call)
                self.conn.complete(call)
                self.server.read_frame()
                read_end, write_end = self.pipe()
                self.send(call.stream_id, NEXT_COMPLETE, meta(seq), data, [write_end])
                self.conn.wait(call, 2)
                self.assertEqual(call.failure, failure, call.error)
                self.assertFalse(self.conn.closed)
                self.assertEqual(call.fds, [])
                self.assertNotIn(call.stream_id, self.conn.calls)
                self.assertNotIn(call.stream_id, self.conn.abandoned)
                if claimed:
                    self.assertTrue(pipe_is_closed(read_end, timeout=0))
                else:
                    orphans.append(read_end)
                seq += 1
        self.assertQuiet()
        echo = self.start_echo(b"after")
        self.respond(echo.stream_id, b"after", md.encode_response_metadata())
        self.assertTrue(self.finish(echo).ok, echo.error)

    def test_first_response_with_a_declared_exception(self):
        # A first response with COMPLETE that carries the declared exception ends the sink.
        call = self.start_sink()
        meta = md.encode_response_metadata(exception=(b"FdTestError", b"no"))
        self.send(call.stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(b"no", 1))
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.DECLARED, call.error)
        self.assertEqual(self.conn.calls, {})
        self.assertEqual(self.conn.abandoned, {})
        self.assertQuiet()  # no ERROR 0x203: the sink had ended

    def test_first_response_with_complete_and_a_result(self):
        # SINK-14: the sink fails, the FD claimed with the first response is
        # closed, nothing more goes out on the sink, the connection stays and
        # its FD numbering goes on (the echo's FD is claimed at fdSeqNum 1).
        cases = [("responseMetadata", lambda seq: md.encode_response_metadata(seq, 1)),
                 ("no payloadMetadata", lambda seq: c.encode_struct([(12, c.STRUCT, md.fd_metadata_fields(seq, 1))]))]
        seq = 0
        for what, meta in cases:
            with self.subTest(what=what):
                call = self.start_sink()
                read_end, write_end = self.pipe()
                self.send(call.stream_id, NEXT_COMPLETE, meta(seq), b"\x00", [write_end])
                seq += 1
                self.conn.wait_first(call, 2)
                self.assertEqual(call.failure, cl.PROTOCOL, call.error)
                self.assertIn("SINK-14", call.error)
                self.assertFalse(call.first_ok)
                self.assertIsNone(call.value)
                self.assertEqual((call.fds, call.first_fds), ([], []))
                self.assertTrue(pipe_is_closed(read_end, timeout=0))
                self.assertEqual((self.conn.calls, self.conn.abandoned), ({}, {}))
                self.assertIsNotNone(self.conn.send_item(call, fdtest.encode_string_result(b"one"), timeout=0.1))
                self.conn.complete(call)
                self.conn.cancel(call)
                self.assertQuiet()  # no item, completion or ERROR on the sink
                self.assertFalse(self.conn.closed)
                echo = self.start_echo(b"after")
                read_end, write_end = self.pipe()
                self.respond(echo.stream_id, b"after", md.encode_response_metadata(seq, 1), [write_end])
                seq += 1
                self.assertTrue(self.finish(echo).ok, echo.error)
                self.assertEqual(len(echo.fds), 1)
                echo.release()
                self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_first_response_with_complete_and_a_result_that_does_not_decode(self):
        # SINK-14 and 6.9: still the sink only; the FD is closed.
        call = self.start_sink()
        read_end, write_end = self.pipe()
        self.send(call.stream_id, NEXT_COMPLETE, md.encode_response_metadata(0, 1), b"\x18", [write_end])
        self.conn.wait_first(call, 2)
        self.assertEqual(call.failure, cl.MALFORMED, call.error)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual((self.conn.calls, self.conn.abandoned), ({}, {}))
        self.assertQuiet()
        self.assertFalse(self.conn.closed)

    def test_error_from_the_server(self):
        call = self.start_sink()
        self.accept(call)
        self.server.send(fr.encode_error(call.stream_id, fr.ERROR_INVALID,
                                         md.encode_response_rpc_error(ERROR_TEXT, 1, 6)))
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.RPC_ERROR)
        self.assertIn(ERROR_TEXT, call.error)
        self.assertIsNotNone(self.conn.send_item(call, b"\x00", timeout=0.1))


class SinkContract(StreamClientTest):
    """STREAM-18 for sinks: a sink starts with its first response, and after it
    the server sends only REQUEST_N and a terminal frame; anything else fails
    the sink and then the connection."""

    def breach(self, frames):
        call = self.conn.start_sink("sinkFds", fdtest.encode_tag_args(b"t"))
        self.server.read_message()
        echo = self.start_echo(b"bystander")
        for frame in frames(call.stream_id):
            self.server.send(frame)
        self.conn.wait(call, 2)
        self.assertEqual(call.failure, cl.CONTRACT, call.error)
        self.assertTrue(self.conn.closed)
        self.assertEqual(echo.failure, cl.CONNECTION)
        frames = self.server.read_until_eof()
        self.assertEqual([(f.ftype, f.stream_id, f.error_code) for f in frames if f.ftype == fr.ERROR],
                         [(fr.ERROR, 0, fr.ERROR_CONNECTION_ERROR)])

    def first(self, stream_id):
        return fr.encode_message(fr.PAYLOAD, stream_id, NEXT, md.encode_response_metadata(), b"\x00")[0]

    def test_first_message_without_next(self):
        self.breach(lambda sid: [fr.encode_payload_frame(fr.PAYLOAD, sid, fr.FLAG_COMPLETE)])

    def test_payload_without_complete_after_the_first_response(self):
        self.breach(lambda sid: [self.first(sid), fr.encode_message(
            fr.PAYLOAD, sid, NEXT, md.encode_stream_payload_metadata(), fdtest.encode_report_result(b"t", []))[0]])

    def test_completion_without_next_after_the_first_response(self):
        self.breach(lambda sid: [self.first(sid), fr.encode_payload_frame(fr.PAYLOAD, sid, fr.FLAG_COMPLETE)])


if __name__ == "__main__":
    unittest.main()
