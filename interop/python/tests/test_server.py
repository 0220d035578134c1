"""fdtest_server.py driven with raw frames: SETUP (5), errors of 6.8, claims
(7.5, 11.3), framing errors (4, 11.1), FdTest (17) and the contract (18.1)."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from helpers import PYTHON, SERVER
from peer import Peer, error_of, pipe_is_closed, pipe_is_open, response_of

from rocketfd_py import compact as c
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md

OPEN_CONTENT = b"rocketfd-open-scenario\n"


def start_server(directory, root=True, extra=()):
    path = os.path.join(directory, "s.sock")
    args = [PYTHON, SERVER] + list(extra) + ["--socket", path]
    if root:
        args += ["--root", os.path.join(directory, "root")]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={}, close_fds=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            probe = socket.socket(socket.AF_UNIX)
            probe.connect(path)
            probe.close()
            return process, path
        except OSError:
            probe.close()
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def stop_server(process):
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        status = None
    process.stderr.close()
    return status


class ServerTest(unittest.TestCase):
    root = True

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="rfdpy-server-")
        root = os.path.join(cls.directory, "root")
        os.mkdir(root)
        with open(os.path.join(root, "hello.txt"), "wb") as hello:
            hello.write(OPEN_CONTENT)
        cls.process, cls.path = start_server(cls.directory, cls.root)

    @classmethod
    def tearDownClass(cls):
        status = stop_server(cls.process)
        shutil.rmtree(cls.directory)
        assert status == 0, status

    def setUp(self):
        self.peers = []
        self.fds = []

    def tearDown(self):
        for peer in self.peers:
            peer.close()
        for fd in self.fds:
            os.close(fd)

    def peer(self, setup=True):
        peer = Peer.connect(self.path)
        self.peers.append(peer)
        if setup:
            peer.setup()
            frame = peer.read_frame()
            self.assertEqual(frame.ftype, fr.METADATA_PUSH)
        return peer

    def pipe(self):
        read_end, write_end = os.pipe()
        self.fds.append(read_end)
        return read_end, write_end

    def assertRejected(self, peer, stream_id, code):
        frame = peer.read_frame()
        self.assertEqual((frame.ftype, frame.stream_id), (fr.ERROR, stream_id))
        error_code, error = error_of(frame)
        self.assertEqual(error_code, fr.ERROR_INVALID)
        self.assertEqual((error.get("category"), error.get("code")), (1, code), error)
        return error

    def assertConnectionError(self, peer, code=fr.ERROR_CONNECTION_ERROR):
        frames = peer.read_until_eof()
        self.assertTrue(frames, "no ERROR frame before the close")
        self.assertEqual((frames[-1].ftype, frames[-1].stream_id, frames[-1].error_code), (fr.ERROR, 0, code))

    def echo(self, peer, stream_id, tag, fds=None, seq=0):
        peer.request(stream_id, b"echo", fdtest.encode_tag_args(tag), fds, seq)
        for fd in fds or []:
            os.close(fd)
        message = peer.read_message()
        self.assertEqual((message.ftype, message.stream_id), (fr.PAYLOAD, stream_id))
        return response_of(message, b"echo")


class Setup(ServerTest):
    def _setup_frame(self, metadata, **kwargs):
        return fr.encode_setup(metadata, **kwargs)

    def test_accepts_and_answers_with_version(self):
        for max_version, expected in ((10, 10), (9, 9), (12, 10)):
            peer = self.peer(setup=False)
            peer.send(self._setup_frame(md.encode_setup_metadata(8, max_version)))
            frame = peer.read_frame()
            self.assertEqual(md.decode_server_push(frame.metadata), {"setupResponse": {"version": expected}})

    def test_rejections(self):
        key = fr.PROTOCOL_KEY
        good = md.encode_setup_metadata()
        cases = [
            (self._setup_frame(good, major=2), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(good, minor=1), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(good, metadata_mime=fr.METADATA_MIME_BINARY), fr.ERROR_UNSUPPORTED_SETUP),
            (self._setup_frame(good, data_mime=b"text/plain"), fr.ERROR_UNSUPPORTED_SETUP),
            (self._setup_frame(b""), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(b"\xf0\x9f\x9a"), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(b"\x00\x00\x00\x01" + good[4:]), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(good + b"\x00"), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(key + b"\x35"), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(key + c.encode_struct([(3, c.I32, 8), (4, c.I32, 10), (13, c.BOOL, True)])),
             fr.ERROR_UNSUPPORTED_SETUP),
            (self._setup_frame(md.encode_setup_metadata(11, 12)), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(md.encode_setup_metadata(1, 7)), fr.ERROR_INVALID_SETUP),
            (self._setup_frame(key + c.encode_struct([(3, c.I32, 8)])), fr.ERROR_INVALID_SETUP),
            (fr.encode_keepalive(True), fr.ERROR_CONNECTION_ERROR),
        ]
        for raw, code in cases:
            with self.subTest(raw=raw[:40].hex(), code=code):
                peer = self.peer(setup=False)
                peer.send(raw)
                self.assertConnectionError(peer, code)

    def test_resume_lease_data_and_keepalive_fields_ignored(self):
        # SETUP-21, SETUP-22, FRAME-23: RESUME_ENABLE (with its token), LEASE, SETUP
        # data and zero keepalive fields change nothing.
        good = md.encode_setup_metadata()
        body = struct.pack(">HHII", 1, 0, 0, 0) + struct.pack(">H", 3) + b"tok"
        body += bytes([len(fr.METADATA_MIME)]) + fr.METADATA_MIME + bytes([len(fr.DATA_MIME)]) + fr.DATA_MIME
        body += struct.pack(">I", len(good))[1:] + good + b"setup data"
        flags = fr.FLAG_METADATA | fr.FLAG_RESUME_ENABLE | fr.FLAG_LEASE
        raw = struct.pack(">I", len(body) + 6)[1:] + struct.pack(">IH", 0, fr.SETUP << 10 | flags) + body
        for setup in (raw, fr.encode_setup(good, data=b"\x00 ignored")):
            peer = self.peer(setup=False)
            peer.send(setup)
            frame = peer.read_frame()
            self.assertEqual(md.decode_server_push(frame.metadata), {"setupResponse": {"version": 10}})

    def test_min_above_max_answered_with_max(self):
        # 5.4: 9..8 passes step 8 and gets version 8.
        peer = self.peer(setup=False)
        peer.setup(9, 8)
        frame = peer.read_frame()
        self.assertEqual(md.decode_server_push(frame.metadata), {"setupResponse": {"version": 8}})

    def test_malformed_setup_is_a_connection_error(self):
        # 5.4 step 2: a SETUP too short, or a MIME type running past the frame.
        good = fr.encode_setup(md.encode_setup_metadata())
        short = struct.pack(">I", 6 + 10)[1:] + good[3:9] + b"\x00" * 10
        past = struct.pack(">I", 6 + 13)[1:] + good[3:9] + good[9:21] + b"\x40"
        for raw in (short, past):
            peer = self.peer(setup=False)
            peer.send(raw)
            self.assertConnectionError(peer, fr.ERROR_CONNECTION_ERROR)

    def test_first_frame_not_setup_closes_its_fds(self):
        read_end, write_end = self.pipe()
        peer = self.peer(setup=False)
        peer.request(1, b"inspect", fdtest.encode_tag_args(b"x"), [write_end], 0)
        os.close(write_end)
        self.assertConnectionError(peer, fr.ERROR_CONNECTION_ERROR)
        self.assertTrue(pipe_is_closed(read_end))

    def test_second_setup(self):
        peer = self.peer()
        peer.setup()
        self.assertConnectionError(peer, fr.ERROR_INVALID_SETUP)

    def test_requests_in_the_same_write_as_setup(self):
        peer = self.peer(setup=False)
        request = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, md.encode_request_metadata(b"echo", 0),
                                    fdtest.encode_tag_args(b"early"))[0]
        peer.send(fr.encode_setup(md.encode_setup_metadata()) + request)
        self.assertEqual(peer.read_frame().ftype, fr.METADATA_PUSH)
        _, result = response_of(peer.read_message(), b"echo")
        self.assertEqual(result, {"success": b"early"})


class Rejections(ServerTest):
    def _meta(self, **fields):
        base = {1: (c.I32, 2), 2: (c.BINARY, b"echo"), 3: (c.I32, 0)}
        for field_id, value in fields.items():
            field_id = int(field_id[1:])
            if value is None:
                base.pop(field_id, None)
            else:
                base[field_id] = value
        return c.encode_struct([(field_id, ttype, value) for field_id, (ttype, value) in sorted(base.items())])

    def test_codes(self):
        args = fdtest.encode_tag_args(b"t")
        cases = [
            (self._meta(f1=(c.I32, 0)), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f1=None), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f2=None), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f3=None), fr.REQUEST_RESPONSE, args, md.CODE_WRONG_RPC_KIND),
            (self._meta(f3=(c.I32, 1)), fr.REQUEST_RESPONSE, args, md.CODE_WRONG_RPC_KIND),
            (self._meta(f2=(c.BINARY, b"FdTest.echo")), fr.REQUEST_RESPONSE, args, md.CODE_UNKNOWN_METHOD),
            (self._meta(f2=(c.BINARY, b"record")), fr.REQUEST_RESPONSE, args, md.CODE_WRONG_RPC_KIND),
            (self._meta(f3=(c.I32, 4)), fr.REQUEST_STREAM, args, md.CODE_WRONG_RPC_KIND),
            (self._meta(f14=(c.I32, 1)), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f16=(c.I64, 1)), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f17=(c.STRUCT, [])), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f25=(c.STRUCT, [(1, c.I32, 1)])), fr.REQUEST_RESPONSE, args,
             md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(f3=(c.I32, 7)), fr.REQUEST_CHANNEL, args, md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(), fr.REQUEST_RESPONSE, b"\x18", md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(), fr.REQUEST_RESPONSE, args + b"\x00", md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta(), fr.REQUEST_RESPONSE, c.encode_struct([(1, c.I32, 5)]), md.CODE_REQUEST_PARSING_FAILURE),
            (self._meta() + b"\x00", fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            (b"", fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
        ]
        peer = self.peer()
        stream_id = 1
        for meta, ftype, data, code in cases:
            with self.subTest(meta=meta.hex(), ftype=ftype, code=code):
                peer.send(fr.encode_message(ftype, stream_id, 0, meta, data, initial_n=1)[0])
                self.assertRejected(peer, stream_id, code)
            stream_id += 2
        # Accepted as before: checksum NONE, compression NONE, unknown fields.
        peer.request(stream_id, None, args, meta=self._meta(f14=(c.I32, 0), f25=(c.STRUCT, [(1, c.I32, 0)]),
                                                             f99=(c.BINARY, b"x")))
        _, result = response_of(peer.read_message(), b"echo")
        self.assertEqual(result, {"success": b"t"})

    def test_order_of_the_checks(self):
        # META-20: requests that fail several checks get the code of the first (6.8).
        args = fdtest.encode_tag_args(b"t")
        cases = [
            # REQUEST_STREAM for echo with kind 4: step 8.
            (self._meta(f3=(c.I32, 4)), fr.REQUEST_STREAM, args, md.CODE_WRONG_RPC_KIND),
            # REQUEST_STREAM with kind 4 for an unknown method: step 7.
            (self._meta(f2=(c.BINARY, b"nosuch"), f3=(c.I32, 4)), fr.REQUEST_STREAM, args,
             md.CODE_UNKNOWN_METHOD),
            # REQUEST_CHANNEL for an unknown method: step 4.
            (self._meta(f2=(c.BINARY, b"nosuch"), f3=(c.I32, 7)), fr.REQUEST_CHANNEL, args,
             md.CODE_REQUEST_PARSING_FAILURE),
            # A checksum request with a wrong kind: step 4.
            (self._meta(f3=(c.I32, 1), f25=(c.STRUCT, [(1, c.I32, 1)])), fr.REQUEST_RESPONSE, args,
             md.CODE_REQUEST_PARSING_FAILURE),
            # Protocol 0 and a wrong kind: step 3.
            (self._meta(f1=(c.I32, 0), f3=(c.I32, 4)), fr.REQUEST_RESPONSE, args, md.CODE_REQUEST_PARSING_FAILURE),
            # Wrong kind and an unknown method: step 5.
            (self._meta(f2=(c.BINARY, b"nosuch"), f3=(c.I32, 1)), fr.REQUEST_RESPONSE, args,
             md.CODE_WRONG_RPC_KIND),
            # Unknown method and malformed arguments: step 7.
            (self._meta(f2=(c.BINARY, b"nosuch")), fr.REQUEST_RESPONSE, b"\x18", md.CODE_UNKNOWN_METHOD),
            # Compression 0 is no compression (META-14); a kind mismatch then decides.
            (self._meta(f3=(c.I32, 4), f14=(c.I32, 0)), fr.REQUEST_RESPONSE, args, md.CODE_WRONG_RPC_KIND),
        ]
        peer = self.peer()
        stream_id = 1
        for meta, ftype, data, code in cases:
            with self.subTest(meta=meta.hex(), ftype=ftype, code=code):
                peer.send(fr.encode_message(ftype, stream_id, 0, meta, data, initial_n=1)[0])
                self.assertRejected(peer, stream_id, code)
            stream_id += 2

    def test_fields_not_in_the_table_are_not_type_checked(self):
        # META-3 and 6.1: fields 8 and 15 are unknown, whatever their wire type;
        # clientTimeoutMs (5) is known, and a string there is malformed.
        args = fdtest.encode_tag_args(b"t")
        peer = self.peer()
        peer.request(1, None, args, meta=self._meta(f8=(c.I32, 1), f15=(c.BINARY, b"x")))
        _, result = response_of(peer.read_message(), b"echo")
        self.assertEqual(result, {"success": b"t"})
        peer.request(3, None, args, meta=self._meta(f5=(c.BINARY, b"100")))
        self.assertRejected(peer, 3, md.CODE_REQUEST_PARSING_FAILURE)

    def test_rejected_request_fds_closed_before_the_error(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        peer.request(1, b"nosuch", b"\x00", [write_end], 0)
        os.close(write_end)
        self.assertRejected(peer, 1, md.CODE_UNKNOWN_METHOD)
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_record_as_request_response_records_nothing(self):
        peer = self.peer()
        peer.request(1, b"record", fdtest.encode_tag_args(b"nope"), kind=0)
        self.assertRejected(peer, 1, md.CODE_WRONG_RPC_KIND)
        peer.request(3, b"lastRecorded", b"\x00")
        _, result = response_of(peer.read_message(), b"lastRecorded")
        self.assertEqual(result, {"success": {"tag": b"", "fds": []}})

    def test_malformed_metadata_leaves_fds_queued_as_orphans(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        peer.request(1, None, fdtest.encode_tag_args(b"x"), [write_end], meta=b"\x15")
        os.close(write_end)
        self.assertRejected(peer, 1, md.CODE_REQUEST_PARSING_FAILURE)
        self.assertTrue(pipe_is_open(read_end))
        meta, result = self.echo(peer, 3, b"next", [os.open("/dev/null", os.O_RDONLY)], seq=1)
        self.assertEqual(meta["fdMetadata"], {"fdSeqNum": 0, "numFds": 1})
        self.assertTrue(pipe_is_closed(read_end))


class Claims(ServerTest):
    def test_mismatch_answers_invalid_and_closes(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        copy = os.dup(write_end)
        peer.request(1, b"inspect", fdtest.encode_tag_args(b"x"), [write_end, copy], 0, num_fds=1)
        os.close(write_end)
        os.close(copy)
        error = self.assertRejected(peer, 1, md.CODE_REQUEST_PARSING_FAILURE)
        self.assertIn(b"mismatch", error["what_utf8"])
        self.assertTrue(pipe_is_closed(read_end, timeout=0))
        self.assertEqual(response_of(self._inspect(peer, 3, 2), b"inspect")[1]["success"]["tag"], b"ok")

    def _inspect(self, peer, stream_id, seq):
        fd = os.open("/dev/null", os.O_RDONLY)
        peer.request(stream_id, b"inspect", fdtest.encode_tag_args(b"ok"), [fd], seq)
        os.close(fd)
        return peer.read_message()

    def test_echo_round_trip_with_sequence_numbers(self):
        peer = self.peer()
        pipes = [self.pipe() for _ in range(3)]
        inodes = [os.fstat(write_end).st_ino for _, write_end in pipes]
        meta, result = self.echo(peer, 1, b"two", [pipes[0][1], pipes[1][1]], seq=0)
        self.assertEqual(meta["fdMetadata"], {"fdSeqNum": 0, "numFds": 2})
        self.assertEqual([os.fstat(fd).st_ino for fd in peer.groups[-1]], inodes[:2])
        meta, result = self.echo(peer, 3, b"none")
        self.assertNotIn("fdMetadata", meta)
        meta, result = self.echo(peer, 5, b"one", [pipes[2][1]], seq=2)
        self.assertEqual(meta["fdMetadata"], {"fdSeqNum": 2, "numFds": 1})
        peer.close()
        self.peers.remove(peer)
        for read_end, _ in pipes:
            self.assertTrue(pipe_is_closed(read_end))

    def test_inspect_reports_cloexec_as_received(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        peer.request(1, b"inspect", fdtest.encode_tag_args(b"info"), [write_end], 0)
        st = os.fstat(write_end)
        os.close(write_end)
        _, result = response_of(peer.read_message(), b"inspect")
        [info] = result["success"]["fds"]
        self.assertEqual(info, {"dev": fdtest.to_signed64(st.st_dev), "ino": st.st_ino, "type": 0x1000,
                                "cloexec": True, "flags": os.O_WRONLY})
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def test_fragmented_request_with_fds(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        meta = md.encode_request_metadata(b"inspect", 0, 0, 1)
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, meta, fdtest.encode_tag_args(b"f" * 5000),
                                   fragment_size=700)
        self.assertGreater(len(frames), 3)
        for raw in frames[:-1]:
            peer.send(raw)
        peer.send(frames[-1], [write_end])
        os.close(write_end)
        _, result = response_of(peer.read_message(), b"inspect")
        self.assertEqual(len(result["success"]["fds"]), 1)
        self.assertEqual(result["success"]["tag"], b"f" * 5000)

    def test_orphans_from_keepalive(self):
        peer = self.peer()
        read_end, write_end = self.pipe()
        peer.send(fr.encode_keepalive(False), [write_end])
        os.close(write_end)
        time.sleep(0.1)
        self.assertTrue(pipe_is_open(read_end))
        self.assertEqual(response_of(self._inspect_at(peer, 1, 1), b"inspect")[1]["success"]["tag"], b"ok")
        self.assertTrue(pipe_is_closed(read_end, timeout=0))

    def _inspect_at(self, peer, stream_id, seq):
        return self._inspect(peer, stream_id, seq)

    def test_budget(self):
        peer = self.peer()
        fd = os.open("/dev/null", os.O_RDONLY)
        self.fds.append(fd)
        try:
            for _ in range(5):
                peer.send(fr.encode_keepalive(False), [fd] * 253)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertConnectionError(peer)

    def test_oneway_record_and_other_connections(self):
        first = self.peer()
        second = self.peer()
        fd = os.open("/dev/null", os.O_RDONLY)
        first.request(1, b"record", fdtest.encode_tag_args(b"rec"), [fd], 0, kind=1, ftype=fr.REQUEST_FNF)
        first.request(3, b"record", fdtest.encode_tag_args(b"bad"), [fd], 1, kind=1, ftype=fr.REQUEST_FNF,
                      num_fds=2)
        os.close(fd)
        first.request(5, b"lastRecorded", b"\x00")
        _, result = response_of(first.read_message(), b"lastRecorded")
        self.assertEqual(result["success"]["tag"], b"rec")
        self.assertEqual(len(result["success"]["fds"]), 1)
        second.request(1, b"lastRecorded", b"\x00")
        _, result = response_of(second.read_message(), b"lastRecorded")
        self.assertEqual(result["success"], {"tag": b"", "fds": []})


def kernel_has_peer_pidfd():
    left, right = socket.socketpair()
    try:
        os.close(left.getsockopt(socket.SOL_SOCKET, 77))
        return True
    except OSError:
        return False
    finally:
        left.close()
        right.close()


class Whoami(ServerTest):
    def test_answers_the_connecting_process(self):
        """17.7: this process's credentials, pidPinned with SO_PEERPIDFD, the FD closed, none back."""
        peer = self.peer()
        read_end, write_end = self.pipe()
        peer.request(1, b"whoami", b"\x00", [write_end], 0)
        os.close(write_end)
        message = peer.read_message()
        meta, result = response_of(message, b"whoami")
        self.assertEqual(result["success"], {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
                                             "pidPinned": kernel_has_peer_pidfd()})
        self.assertNotIn("fdMetadata", meta)
        self.assertTrue(pipe_is_closed(read_end))


class Framing(ServerTest):
    def test_connection_errors(self):
        header = lambda length, stream, ftype, flags: (struct.pack(">I", length)[1:] +  # noqa: E731
                                                       struct.pack(">IH", stream, ftype << 10 | flags))
        partial_request = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, md.encode_request_metadata(b"echo", 0),
                                            fdtest.encode_tag_args(b"x" * 100), fragment_size=40)[0]
        cases = [
            header(6, 1, fr.CANCEL, 0x01),
            header(6, 1, 0x02, 0),
            header(6, 1, fr.CANCEL, fr.FLAG_METADATA),
            header(6, 0, fr.CANCEL, 0),
            b"\x00\x00\x03\x00\x00\x00",
            fr.encode_payload_frame(fr.EXT, 0, 0, b"", b"", 1),
            fr.encode_error(0, fr.ERROR_CONNECTION_ERROR, b"bye"),
            fr.encode_message(fr.REQUEST_RESPONSE, 2, 0, md.encode_request_metadata(b"echo", 0),
                              fdtest.encode_tag_args(b"x"))[0],
            partial_request + fr.encode_cancel(1),
            partial_request + partial_request,
            partial_request + fr.encode_request_n(1, 1),
            partial_request + fr.encode_error(1, fr.ERROR_CANCELED, b""),
            partial_request + fr.encode_payload_frame(fr.EXT, 1, fr.FLAG_IGNORE, b"", b"", 0),
            header(6, 1, fr.PAYLOAD, 0),
            # FRAME-7 from the frame alone: a flagless continuation fails too.
            partial_request + header(6, 1, fr.PAYLOAD, 0),
            partial_request + header(6, 1, fr.PAYLOAD, fr.FLAG_IGNORE),
        ]
        for raw in cases:
            with self.subTest(raw=raw[:24].hex()):
                peer = self.peer()
                peer.send(raw)
                self.assertConnectionError(peer)

    def test_ignored_frames(self):
        peer = self.peer()
        peer.send(fr.encode_payload_frame(fr.EXT, 0, fr.FLAG_IGNORE, b"", b"x", 9))
        peer.send(fr.encode_request_n(1, 5) + fr.encode_cancel(9) + fr.encode_error(5, fr.ERROR_CANCELED, b""))
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, 11, fr.FLAG_NEXT, b"", b"stray"))
        # FRAME-25: a PAYLOAD with FOLLOWS continuing nothing is ignored on its own and
        # starts no reassembly: the request that follows on that stream is a request.
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, 13, fr.FLAG_FOLLOWS, b"", b"stray"))
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, 13, fr.FLAG_NEXT | fr.FLAG_FOLLOWS, b"", b"stray"))
        peer.send(fr.encode_metadata_push(b"\x00"))
        # FRAME-21, FRAME-23: undefined flag bits and unused values change nothing.
        peer.send(fr.encode_payload_frame(fr.EXT, 0, fr.FLAG_IGNORE | 0x080, b"", b"x", 0xFFFFFFFF))
        peer.send(struct.pack(">I", 10)[1:] + struct.pack(">IH", 1, fr.REQUEST_N << 10 | 0x280) + b"\x00" * 4)
        peer.send(struct.pack(">I", 6)[1:] + struct.pack(">IH", 3, fr.CANCEL << 10 | 0x2e0))
        peer.send(struct.pack(">I", 10)[1:] + struct.pack(">IH", 5, fr.ERROR << 10 | 0x280) + b"\xff" * 4)
        peer.send(struct.pack(">I", 6)[1:] + struct.pack(">IH", 0, fr.METADATA_PUSH << 10 | 0x280) + b"")
        peer.send(fr.encode_keepalive(True, b"ping"))
        frame = peer.read_frame()
        self.assertEqual((frame.ftype, frame.flags, frame.data), (fr.KEEPALIVE, 0, b"ping"))
        _, result = self.echo(peer, 1, b"still")
        self.assertEqual(result["success"], b"still")
        _, result = self.echo(peer, 13, b"thirteen")
        self.assertEqual(result["success"], b"thirteen")

    def test_keepalive_answer(self):
        # FRAME-15 with FRAME-27 and FRAME-21: position 0, data echoed, undefined bits ignored.
        peer = self.peer()
        raw = struct.pack(">I", 18)[1:] + struct.pack(">IH", 0, fr.KEEPALIVE << 10 | fr.FLAG_RESPOND | 0x260)
        peer.send(raw + struct.pack(">Q", 12345) + b"ping")
        frame = peer.read_frame()
        self.assertEqual((frame.ftype, frame.flags, frame.position, frame.data), (fr.KEEPALIVE, 0, 0, b"ping"))
        peer.send(fr.encode_keepalive(False, b"no answer"))
        _, result = self.echo(peer, 1, b"next")
        self.assertEqual(result["success"], b"next")

    def test_high_stream_ids(self):
        # FRAME-24: ids from 2^31 on are ids like any other; an even one still fails (FRAME-13).
        peer = self.peer()
        for stream_id in ((1 << 31) + 1, (1 << 32) - 1):
            _, result = self.echo(peer, stream_id, b"high")
            self.assertEqual(result["success"], b"high")
        peer.request(1 << 31, b"echo", fdtest.encode_tag_args(b"even"))
        self.assertConnectionError(peer)

    def test_request_with_request_flags_of_other_types(self):
        # FRAME-21: COMPLETE, NEXT and IGNORE on a REQUEST_RESPONSE mean nothing.
        peer = self.peer()
        meta = md.encode_request_metadata(b"echo", 0)
        flags = fr.FLAG_COMPLETE | fr.FLAG_NEXT | fr.FLAG_IGNORE
        peer.send(fr.encode_payload_frame(fr.REQUEST_RESPONSE, 1, flags, meta, fdtest.encode_tag_args(b"f")))
        _, result = response_of(peer.read_message(), b"echo")
        self.assertEqual(result["success"], b"f")

    def test_stream_id_free_once_the_answer_is_queued(self):
        # 1.4, 4.6: the id is in use until its answer is queued, not until written.
        # The peer reads nothing while sending requests that reuse one id, so answers
        # pile up unwritten in the server once the socket buffer is full.
        peer = self.peer()
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tag = b"q" * 60000
        request = b"".join(fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, md.encode_request_metadata(b"echo", 0),
                                             fdtest.encode_tag_args(tag)))
        count = 12
        sender = threading.Thread(target=lambda: [peer.send(request) for _ in range(count)])
        sender.start()
        time.sleep(0.5)
        answers = [peer.read_message(timeout=10) for _ in range(count)]
        sender.join()
        for message in answers:
            self.assertEqual((message.ftype, message.stream_id), (fr.PAYLOAD, 1))
            self.assertEqual(response_of(message, b"echo")[1]["success"], tag)

    def _large_echo(self, tag, frames):
        peer = self.peer()
        fd = os.open("/dev/null", os.O_RDONLY)
        sender = threading.Thread(target=peer.send, args=(b"".join(frames), [fd]))
        sender.start()
        message = peer.read_message(timeout=30)
        sender.join()
        os.close(fd)
        meta, result = response_of(message, b"echo")
        self.assertEqual(result["success"], tag)
        self.assertEqual(meta["fdMetadata"], {"fdSeqNum": 0, "numFds": 1})
        self.assertEqual(len(peer.groups), 1)

    def test_large_echo_is_fragmented_both_ways(self):
        tag = b"L" * (17 << 20)
        meta = md.encode_request_metadata(b"echo", 0, 0, 1)
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, meta, fdtest.encode_tag_args(tag))
        self.assertEqual(len(frames), 2)
        self._large_echo(tag, frames)

    def test_32_mib_message(self):
        tag = b"M" * (32 << 20)
        meta = md.encode_request_metadata(b"echo", 0, 0, 1)
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, meta, fdtest.encode_tag_args(tag))
        self.assertEqual(len(frames), 3)
        self._large_echo(tag, frames)

    def test_frame_of_maximum_length(self):
        meta = md.encode_request_metadata(b"echo", 0, 0, 1)
        overhead = 6 + 3 + len(meta) + len(fdtest.encode_tag_args(b""))
        # The varint length of the tag grows by 3 bytes for a 16 MiB tag.
        tag = b"F" * (fr.MAX_FRAME_LENGTH - overhead - 3)
        raw = fr.encode_payload_frame(fr.REQUEST_RESPONSE, 1, 0, meta, fdtest.encode_tag_args(tag))
        self.assertEqual(raw[:3], b"\xff\xff\xff")
        self._large_echo(tag, [raw])


class InFlightLimit(unittest.TestCase):
    """6.8 step 6 driven through the server core with a limit R of 0, so that
    every request-response is beyond it: the load check comes after the kind
    against the frame and before the method lookup, and never applies to a
    one-way request (META-20, LIMIT-12)."""

    def test_step_6(self):
        from rocketfd_py.log import Quiet
        from rocketfd_py.server import FdTestService, ServerConnection
        client, server_sock = socket.socketpair()
        read_end, write_end = os.pipe()
        conn = ServerConnection(server_sock, 1, FdTestService(None, Quiet()), Quiet(), max_in_flight=0)
        try:
            requests = [
                (1, fr.REQUEST_RESPONSE, md.encode_request_metadata(b"echo", 0, 0, 1), [write_end]),
                (3, fr.REQUEST_RESPONSE, md.encode_request_metadata(b"nosuch", 0), None),
                (5, fr.REQUEST_RESPONSE, md.encode_request_metadata(b"echo", 1), None),
                (7, fr.REQUEST_FNF, md.encode_request_metadata(b"record", 1), None),
            ]
            conn.on_read(fr.encode_setup(md.encode_setup_metadata()), [])
            for stream_id, ftype, meta, fds in requests:
                raw = fr.encode_message(ftype, stream_id, 0, meta, fdtest.encode_tag_args(b"r"))[0]
                conn.on_read(raw, [os.dup(fd) for fd in fds or []])
            os.close(write_end)
            conn.flush()
            self.assertFalse(conn.closed)
            self.assertTrue(pipe_is_closed(read_end, timeout=0))  # claimed, then closed (LIMIT-12)
            self.assertEqual(conn.last_recorded[0], b"r")  # the one-way request was executed
            conn.close()
            buffer = fr.FrameBuffer()
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buffer.feed(data)
            answers = {}
            while True:
                raw = buffer.next_frame()
                if raw is None:
                    break
                frame = fr.parse_frame(raw)
                if frame.ftype == fr.ERROR:
                    error = md.decode_response_rpc_error(frame.data)
                    answers[frame.stream_id] = (frame.error_code, error["category"], error["code"])
            self.assertEqual(answers, {
                1: (fr.ERROR_REJECTED, md.CATEGORY_LOADSHEDDING, md.CODE_OVERLOAD),
                3: (fr.ERROR_REJECTED, md.CATEGORY_LOADSHEDDING, md.CODE_OVERLOAD),
                5: (fr.ERROR_INVALID, md.CATEGORY_INVALID_REQUEST, md.CODE_WRONG_RPC_KIND),
            })
        finally:
            conn.close()
            client.close()
            os.close(read_end)


class Open(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = os.path.join(cls.directory, "root")
        os.mkfifo(os.path.join(root, "fifo"))
        os.mkdir(os.path.join(root, "sub"))
        os.symlink("../outside", os.path.join(root, "escape"))

    def _open(self, peer, stream_id, path):
        peer.request(stream_id, b"open", fdtest.encode_path_args(path))
        message = peer.read_message()
        return md.decode_response_metadata(message.metadata), c.decode_struct(message.data, fdtest.OPEN_RESULT)

    def test_success(self):
        peer = self.peer()
        meta, result = self._open(peer, 1, b"hello.txt")
        self.assertEqual(result, {"success": b"hello.txt"})
        self.assertEqual(meta["fdMetadata"], {"fdSeqNum": 0, "numFds": 1})
        [fd] = peer.take_fds()
        self.assertEqual(os.read(fd, 100), OPEN_CONTENT)
        os.close(fd)

    def test_failures(self):
        peer = self.peer()
        cases = [(b"missing.txt", 2), (b"../x", 18), (b"/etc/passwd", 18), (b"escape", 18), (b"fifo", 22),
                 (b"sub", 22), (b"", 2), (b"a\0b", 22), (b"hello.txt/x", 20)]
        for stream_id, (path, errnum) in enumerate(cases):
            with self.subTest(path=path):
                meta, result = self._open(peer, 2 * stream_id + 1, path)
                exception = meta["payloadMetadata"]["exceptionMetadata"]
                self.assertEqual(exception["name_utf8"], b"FdTestError")
                self.assertIn("declaredException", exception["metadata"])
                self.assertEqual(result["error"]["errnum"], errnum)
                self.assertNotIn("fdMetadata", meta)
                message = result["error"]["message"]
                self.assertEqual(message, exception["what_utf8"])
                self.assertTrue(message.decode("utf-8").isprintable(), message)
        self.assertEqual(peer.groups, [])


class NoRoot(ServerTest):
    root = False

    def test_open_fails_with_eacces(self):
        peer = self.peer()
        peer.request(1, b"open", fdtest.encode_path_args(b"hello.txt"))
        _, result = response_of(peer.read_message(), b"open")
        self.assertEqual(result["error"]["errnum"], 13)


class Contract(unittest.TestCase):
    def test_sigterm_removes_socket_and_exits_0(self):
        directory = tempfile.mkdtemp(prefix="rfdpy-contract-")
        try:
            os.mkdir(os.path.join(directory, "root"))
            process, path = start_server(directory)
            peers = [Peer.connect(path) for _ in range(8)]
            for peer in peers:
                peer.setup()
                self.assertEqual(peer.read_frame().ftype, fr.METADATA_PUSH)
            started = time.monotonic()
            self.assertEqual(stop_server(process), 0)
            self.assertLess(time.monotonic() - started, 5)
            self.assertFalse(os.path.exists(path))
            self.assertEqual(os.listdir(directory), ["root"])
            for peer in peers:
                self.assertEqual(peer.read_until_eof(), [])
                peer.close()
        finally:
            shutil.rmtree(directory)

    def test_overlong_socket_path(self):
        directory = tempfile.mkdtemp(prefix="rfdpy-contract-")
        try:
            path = os.path.join(directory, "s" * (108 - len(directory) - 1))
            self.assertEqual(len(path), 108)
            result = subprocess.run([PYTHON, SERVER, "--socket", path], capture_output=True, timeout=10)
            self.assertEqual(result.returncode, 2)
            self.assertEqual(os.listdir(directory), [])
        finally:
            shutil.rmtree(directory)

    def test_help(self):
        result = subprocess.run([PYTHON, SERVER, "--help"], capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 0)
        self.assertIn(b"--socket", result.stdout)


if __name__ == "__main__":
    unittest.main()
