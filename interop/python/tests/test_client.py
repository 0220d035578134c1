"""The client core driven by a scripted server in the same thread: frames a
client must ignore, refuse or answer (4.5, 4.6, 4.8) and how it reads
responses (6.9)."""

import os
import shutil
import socket
import struct
import tempfile
import unittest

from helpers import unhex
from peer import Peer, pipe_is_closed, pipe_is_open

from rocketfd_py import client as cl
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md


def header(length, stream_id, ftype, flags):
    return struct.pack(">I", length)[1:] + struct.pack(">IH", stream_id, ftype << 10 | flags)


class ClientTest(unittest.TestCase):
    offer = cl.DEFAULT_OFFER

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="rfdpy-client-")
        path = os.path.join(self.directory, "s.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.conn = cl.ClientConnection(path, offer=self.offer)
        sock, _ = self.listener.accept()
        self.server = Peer(sock)
        self.setup_frame = self.server.read_frame()
        self.assertEqual(self.setup_frame.ftype, fr.SETUP)
        self.server.send(fr.encode_metadata_push(md.encode_setup_response(10)))
        self.pipes = []

    def tearDown(self):
        self.conn.close()
        self.server.close()
        self.listener.close()
        for read_end in self.pipes:
            os.close(read_end)
        shutil.rmtree(self.directory)

    def pipe(self):
        read_end, write_end = os.pipe()
        self.pipes.append(read_end)
        return read_end, write_end

    def start_echo(self, tag, fds=()):
        call = self.conn.start_call("echo", fdtest.encode_tag_args(tag), fds)
        message = self.server.read_message()
        self.assertEqual((message.ftype, message.stream_id), (fr.REQUEST_RESPONSE, call.stream_id))
        return call

    def respond(self, stream_id, tag, meta, fds=None):
        frames = fr.encode_message(fr.PAYLOAD, stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE, meta,
                                   fdtest.encode_string_result(tag))
        self.server.send(b"".join(frames), fds)
        for fd in fds or []:
            os.close(fd)

    def finish(self, call):
        return self.conn.wait(call, 2.0)


class Frames(ClientTest):
    def test_request_from_the_server_fails_the_connection(self):
        # FRAME-28: the FD that came with it is closed at once, the call fails.
        call = self.start_echo(b"x")
        read_end, write_end = self.pipe()
        meta = md.encode_request_metadata(b"echo", 0, 0, 1)
        self.server.send(fr.encode_message(fr.REQUEST_RESPONSE, 2, 0, meta, fdtest.encode_tag_args(b"s"))[0],
                         [write_end])
        os.close(write_end)
        self.finish(call)
        self.assertEqual(call.failure, cl.CONNECTION)
        self.assertIn("FRAME-28", call.error)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        frames = self.server.read_until_eof()
        self.assertEqual([(f.ftype, f.error_code) for f in frames], [(fr.ERROR, fr.ERROR_CONNECTION_ERROR)])

    def test_every_request_type_and_setup_fail_the_connection(self):
        for raw in (fr.encode_payload_frame(fr.REQUEST_FNF, 3, 0, b"", b""),
                    fr.encode_payload_frame(fr.REQUEST_STREAM, 5, 0, b"", b"", 1),
                    fr.encode_payload_frame(fr.REQUEST_CHANNEL, 7, 0, b"", b"", 1),
                    fr.encode_setup(md.encode_setup_metadata())):
            with self.subTest(raw=raw[:12].hex()):
                self.tearDown()
                self.setUp()
                call = self.start_echo(b"x")
                self.server.send(raw)
                self.finish(call)
                self.assertEqual(call.failure, cl.CONNECTION)
                self.assertIn("FRAME-28", call.error)

    def test_stray_payload_with_follows_is_ignored_alone(self):
        # FRAME-25: a PAYLOAD with FOLLOWS on a stream not in flight starts no
        # reassembly; its FD stays queued and becomes an orphan at the next claim.
        read_end, write_end = self.pipe()
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, 99, fr.FLAG_FOLLOWS, b"", b"x"), [write_end])
        os.close(write_end)
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, 99, fr.FLAG_FOLLOWS | fr.FLAG_NEXT, b"", b"y"))
        call = self.start_echo(b"after")
        fd = os.open("/dev/null", os.O_RDONLY)
        self.respond(call.stream_id, b"after", md.encode_response_metadata(1, 1), [fd])
        self.finish(call)
        self.assertTrue(call.ok, call.error)
        self.assertEqual(len(call.fds), 1)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        call.release()

    def test_flagless_continuation_fails(self):
        # FRAME-7 is decided from the frame alone.
        call = self.start_echo(b"x")
        frames = fr.encode_message(fr.PAYLOAD, call.stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE,
                                   md.encode_response_metadata(), fdtest.encode_string_result(b"x" * 600),
                                   fragment_size=256)
        self.server.send(frames[0] + header(6, call.stream_id, fr.PAYLOAD, 0))
        self.finish(call)
        self.assertEqual(call.failure, cl.CONNECTION)
        self.assertIn("FRAME-7", call.error)

    def test_keepalive_answered(self):
        # FRAME-26, FRAME-27: answered without RESPOND, position 0, same data.
        call = self.start_echo(b"k")
        self.server.send(header(6 + 8 + 4, 0, fr.KEEPALIVE, fr.FLAG_RESPOND) + struct.pack(">Q", 77) + b"ping")
        self.server.send(fr.encode_keepalive(False, b"quiet"))
        self.conn.pump(0.2)
        frame = self.server.read_frame()
        self.assertEqual((frame.ftype, frame.flags, frame.position, frame.data), (fr.KEEPALIVE, 0, 0, b"ping"))
        self.respond(call.stream_id, b"k", md.encode_response_metadata())
        self.assertTrue(self.finish(call).ok)

    def test_no_cancel_after_a_timeout(self):
        # FRAME-29: the timed-out call's stream is abandoned, no CANCEL is written,
        # and its late answer's FD is claimed and closed (FD-CARRY-5).
        late = self.start_echo(b"late")
        self.conn.wait(late, 0.05)
        self.assertEqual(late.failure, cl.TIMEOUT)
        read_end, write_end = self.pipe()
        self.respond(late.stream_id, b"late", md.encode_response_metadata(0, 1), [write_end])
        call = self.start_echo(b"next")
        self.respond(call.stream_id, b"next", md.encode_response_metadata())
        self.assertTrue(self.finish(call).ok)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.conn.close()
        self.assertEqual(self.server.read_until_eof(), [])

    def test_undefined_flags_on_frames_to_the_client(self):
        # FRAME-21: REQUEST_N, CANCEL, ERROR on an unknown stream, EXT with IGNORE,
        # all with undefined bits, change nothing.
        call = self.start_echo(b"f")
        self.server.send(header(10, call.stream_id, fr.REQUEST_N, 0x280) + b"\x00" * 4)
        self.server.send(header(6, call.stream_id, fr.CANCEL, 0x2e0))
        self.server.send(header(10, 1001, fr.ERROR, 0x280) + b"\xff" * 4)
        self.server.send(fr.encode_payload_frame(fr.EXT, 0, fr.FLAG_IGNORE | 0x080, b"", b"", 7))
        meta = md.encode_response_metadata()
        self.server.send(fr.encode_payload_frame(fr.PAYLOAD, call.stream_id,
                                                 fr.FLAG_NEXT | fr.FLAG_COMPLETE | fr.FLAG_IGNORE, meta,
                                                 fdtest.encode_string_result(b"f")))
        self.finish(call)
        self.assertTrue(call.ok, call.error)


class Responses(ClientTest):
    def test_absent_payload_metadata_is_a_result(self):
        # META-22, with the FD claimed.
        call = self.start_echo(b"pm-absent")
        read_end, write_end = self.pipe()
        self.respond(call.stream_id, b"pm-absent", unhex("cc 16 00 15 02 00 00"), [write_end])
        self.finish(call)
        self.assertTrue(call.ok, call.error)
        self.assertEqual(call.value, b"pm-absent")
        self.assertEqual(len(call.fds), 1)
        self.assertTrue(pipe_is_open(read_end))
        call.release()

    def test_empty_payload_metadata_fails_and_closes_the_fds(self):
        # META-21 and OWN-3: claimed, then closed before the failure is reported.
        for meta in ("7c 00 5c 16 00 15 02 00 00", "7c 3c 00 00 5c 16 00 15 02 00 00"):
            with self.subTest(meta=meta):
                self.tearDown()
                self.setUp()
                call = self.start_echo(b"pm-empty")
                read_end, write_end = self.pipe()
                self.respond(call.stream_id, b"pm-empty", unhex(meta), [write_end])
                self.finish(call)
                self.assertEqual(call.failure, cl.NO_RESULT)
                self.assertEqual(call.fds, [])
                self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_two_members_are_malformed_and_claim_nothing(self):
        call = self.start_echo(b"pm-two")
        read_end, write_end = self.pipe()
        self.respond(call.stream_id, b"pm-two", unhex("7c 1c 00 1c 00 00 5c 16 00 15 02 00 00"), [write_end])
        self.finish(call)
        self.assertEqual(call.failure, cl.MALFORMED)
        self.assertTrue(pipe_is_open(read_end))
        self.assertFalse(self.conn.closed)

    def test_malformed_result_closes_the_fds(self):
        # OWN-3 for a response the client rejects after its claim.
        call = self.start_echo(b"bad")
        read_end, write_end = self.pipe()
        frame = fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE,
                                        md.encode_response_metadata(0, 1), b"\x18")
        self.server.send(frame, [write_end])
        os.close(write_end)
        self.finish(call)
        self.assertEqual(call.failure, cl.MALFORMED)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_error_data_that_is_not_a_response_rpc_error(self):
        # META-18: the data as text; a ResponseRpcError without what_utf8 gives "".
        for data, text in ((b"plain words", "plain words"), (md.encode_response_rpc_error(None, 1, 6), "")):
            call = self.start_echo(b"e")
            self.server.send(fr.encode_error(call.stream_id, 0x7FFFFFFF, data))
            self.finish(call)
            self.assertEqual(call.failure, cl.RPC_ERROR)
            self.assertTrue(call.error.endswith(": " + text), call.error)
        self.assertFalse(self.conn.closed)


if __name__ == "__main__":
    unittest.main()
