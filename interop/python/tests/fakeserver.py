"""A scripted FdTest server that misbehaves as the scenarios of 18.4 say, for
testing fdtest_client.py without the conformance harness."""

import errno
import os
import resource
import socket
import struct
import threading
import time

from peer import Peer, pipe_is_closed, pipe_is_open

import helpers  # noqa: F401  (puts rocketfd_py on sys.path)
from rocketfd_py import compact as c
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from helpers import unhex

SO_PASSRIGHTS = 83
NEXT = fr.FLAG_NEXT
NEXT_COMPLETE = fr.FLAG_NEXT | fr.FLAG_COMPLETE


def read_end_is_closed(write_end, timeout=2.0):
    """18.3: Rk is closed once a write of one byte to Wk fails with EPIPE."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.write(write_end, b"x")
        except BrokenPipeError:
            return True
        except BlockingIOError:
            pass
        except OSError as error:
            if error.errno == errno.EPIPE:
                return True
            raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


class ScenarioFailure(Exception):
    pass


class FakeServer:
    def __init__(self, path, scenario, behaviour=None):
        self.path = path
        self.scenario = scenario
        self.behaviour = behaviour or scenario  # how the server misbehaves, when one scenario has several
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.listener.settimeout(8)
        if scenario == "passrights-off":
            # On the listener, so that the socket the client connects to refuses FDs
            # from its first byte: set on the accepted socket, it would be too late
            # for a request the client wrote before the accept.
            self.listener.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
        self.failures = []
        self.other_frames = []  # frames other than requests that request() skipped
        self.pending = []       # requests that next_frame() skipped, for request()
        self.pipes = []
        self.peers = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def join(self):
        self.thread.join(15)
        self.listener.close()
        for peer in self.peers:
            peer.close()
        for fd in self.pipes:
            os.close(fd)
        return self.failures

    def check(self, what, condition):
        if not condition:
            self.failures.append(what)

    def _run(self):
        try:
            getattr(self, "_" + self.behaviour.replace("-", "_"))()
        except Exception as error:  # reported through failures
            self.failures.append("fake server: %r" % (error,))

    # ---------------------------------------------------------------- helpers

    def accept(self, setup=True):
        sock, _ = self.listener.accept()
        peer = Peer(sock)
        self.peers.append(peer)
        if setup:
            frame = peer.read_frame()
            self.check("SETUP first", frame is not None and frame.ftype == fr.SETUP)
            peer.send(fr.encode_metadata_push(md.encode_setup_response(10)))
        return peer

    def pipe(self):
        read_end, write_end = os.pipe()
        self.pipes.append(read_end)
        return read_end, write_end

    def request(self, peer):
        """The next request message, with (numFds, fdSeqNum) and the FDs it claimed."""
        while True:
            message = self.pending.pop(0) if self.pending else peer.read_message()
            if message is None:
                raise ScenarioFailure("EOF while waiting for a request")
            if isinstance(message, fr.Message) and message.ftype in fr.REQUEST_TYPES:
                break
            self.other_frames.append(message)
        meta = md.decode_request_metadata(message.metadata)
        num_fds, seq = md.fd_claim_args(meta)
        fds = peer.take_fds() if num_fds else []
        self.check("numFds matches the FDs received", len(fds) == (num_fds or 0))
        args = c.decode_struct(message.data, fdtest.ARG_SCHEMAS[meta["name"]])
        return message.stream_id, meta["name"], args, seq, fds

    def respond(self, peer, stream_id, result, fds=(), seq=None, num_fds=None, meta=None):
        fds = list(fds)
        count = len(fds) if num_fds is None else num_fds
        if meta is None:
            meta = md.encode_response_metadata(seq, count)
        frames = fr.encode_message(fr.PAYLOAD, stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE, meta, result)
        peer.send(b"".join(frames), fds or None)

    def echo_back(self, peer, seq=0):
        stream_id, _, args, _, fds = self.request(peer)
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, seq)
        for fd in fds:
            os.close(fd)
        return args["tag"]

    def send_pipes(self, peer, count, data, meta_seq=None, num_fds=None, stream_id=1, result=None):
        reads, writes = zip(*(self.pipe() for _ in range(count)))
        if result is None:
            peer.send(data, list(writes))
        else:
            self.respond(peer, stream_id, result, writes, meta_seq, num_fds)
        for fd in writes:
            os.close(fd)
        return reads

    def read_end(self):
        """A harness pipe read end Rk (18.3): returns (Rk to send, Wk kept non-blocking)."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.pipes.append(write_end)
        return read_end, write_end

    def send_payload(self, peer, stream_id, flags, meta, data, fds=()):
        peer.send(b"".join(fr.encode_message(fr.PAYLOAD, stream_id, flags, meta, data)), list(fds) or None)
        for fd in fds:
            os.close(fd)

    def first_response(self, peer, stream_id, fds=(), seq=None):
        meta = md.encode_response_metadata(seq if fds else None, len(fds))
        self.send_payload(peer, stream_id, NEXT, meta, c.encode_struct([]), fds)

    def stream_item(self, peer, stream_id, index, count, seq, flags=NEXT):
        """Item index of streamFds carrying count harness read ends; returns their write ends."""
        pairs = [self.read_end() for _ in range(count)]
        reads = [read_end for read_end, _ in pairs]
        data = fdtest.encode_report_result(str(index).encode(), [fdtest.fd_info(fd) for fd in reads])
        self.send_payload(peer, stream_id, flags, md.encode_stream_payload_metadata(seq, count), data, reads)
        return [write_end for _, write_end in pairs]

    def completion(self, peer, stream_id):
        peer.send(fr.encode_payload_frame(fr.PAYLOAD, stream_id, fr.FLAG_COMPLETE))

    def next_frame(self, peer, ftype):
        """Reads until a frame of type ftype, keeping the others in other_frames."""
        while True:
            message = peer.read_message()
            if message is None:
                raise ScenarioFailure("EOF while waiting for %s" % fr.TYPE_NAMES[ftype])
            if message.ftype == ftype:
                return message
            if message.ftype in fr.REQUEST_TYPES:
                self.pending.append(message)
            else:
                self.other_frames.append(message)

    def probe_checks(self, peer, what, condition):
        stream_id, _, args, _, _ = self.request(peer)
        self.check("%s at the probe" % what, condition())
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]))

    # -------------------------------------------------------------- scenarios

    def _stream_cancel(self):
        peer = self.accept()
        stream_id, name, args, _, _ = self.request(peer)
        self.check("streamFds(5, 1)", (name, args) == (b"streamFds", {"count": 5, "fdsPerItem": 1}))
        self.first_response(peer, stream_id)
        w1 = self.stream_item(peer, stream_id, 0, 1, 0)
        self.next_frame(peer, fr.CANCEL)
        cancel_at = len(self.other_frames)
        later = self.stream_item(peer, stream_id, 1, 1, 1) + self.stream_item(peer, stream_id, 2, 2, 2)
        self.completion(peer, stream_id)
        peer.send(fr.encode_keepalive(True, b"cancel"))
        answer = self.next_frame(peer, fr.KEEPALIVE)
        self.check("the KEEPALIVE answered", answer.data == b"cancel")
        self.check("R2 to R4 closed by the KEEPALIVE's answer", all(read_end_is_closed(w) for w in later))
        stream_id, _, args, seq, fds = self.request(peer)
        self.check("'after' at fdSeqNum 0", seq == 0)
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 4)
        for fd in fds:
            os.close(fd)
        self.probe_checks(peer, "R1 closed", lambda: read_end_is_closed(w1[0]))
        after_cancel = self.other_frames[cancel_at:] + peer.read_until_eof()
        self.check("no REQUEST_N after the CANCEL", not any(f.ftype == fr.REQUEST_N for f in after_cancel))

    def _stream_fails(self, misbehave):
        peer = self.accept()
        stream_id, _, _, _, _ = self.request(peer)
        self.first_response(peer, stream_id)
        w1 = misbehave(peer, stream_id)
        frames = peer.read_until_eof()
        self.check("no request after streamFds", not any(frame.ftype in fr.REQUEST_TYPES for frame in frames))
        self.probe_checks(self.accept(), "R1 closed", lambda: read_end_is_closed(w1[0]))

    def _stream_bad_seq(self):
        self._stream_fails(lambda peer, stream_id: self.stream_item(peer, stream_id, 0, 1, 5))

    def _stream_contract(self):
        def misbehave(peer, stream_id):
            peer.send(fr.encode_request_n(stream_id, 5))
            return self.stream_item(peer, stream_id, 0, 1, 0)
        self._stream_fails(misbehave)

    def _stream_bad_item(self):
        peer = self.accept()
        stream_id, name, args, _, _ = self.request(peer)
        self.check("streamFds(3, 1)", (name, args) == (b"streamFds", {"count": 3, "fdsPerItem": 1}))
        self.first_response(peer, stream_id)
        r1, w1 = self.read_end()
        meta = c.encode_struct([(3, c.STRUCT, []), (5, c.STRUCT, md.fd_metadata_fields(0, 1))])
        self.send_payload(peer, stream_id, NEXT, meta, fdtest.encode_report_result(b"0", [fdtest.fd_info(r1)]), [r1])
        self.next_frame(peer, fr.CANCEL)
        self.check("the CANCEL before echo('after')", not self.pending)
        cancel_at = len(self.other_frames)
        late = [w1] + self.stream_item(peer, stream_id, 1, 1, 5)
        self.completion(peer, stream_id)
        peer.send(fr.encode_keepalive(True, b"bad-item"))
        answer = self.next_frame(peer, fr.KEEPALIVE)
        self.check("the KEEPALIVE answered", answer.data == b"bad-item")
        self.check("R1 and R2 closed by the KEEPALIVE's answer", all(read_end_is_closed(w) for w in late))
        stream_id, name, args, seq, fds = self.request(peer)
        self.check("echo('after') at fdSeqNum 0 with 1 FD", (name, args, seq, len(fds)) == (b"echo", {"tag": b"after"},
                                                                                           0, 1))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 2)
        for fd in fds:
            os.close(fd)
        self.probe_checks(peer, "the connection kept", lambda: True)
        after_cancel = self.other_frames[cancel_at:] + peer.read_until_eof()
        self.check("no REQUEST_N after the CANCEL", not any(f.ftype == fr.REQUEST_N for f in after_cancel))

    def _sink_declined(self):
        """sink-2 against a server without sinks (SINK-1): the client exits with 2 (CONTRACT-10)."""
        peer = self.accept()
        stream_id, name, _, _, _ = self.request(peer)
        self.check("sinkFds", name == b"sinkFds")
        error = md.encode_response_rpc_error("sinks are not supported", 1, 6)
        peer.send(fr.encode_error(stream_id, fr.ERROR_INVALID, error))
        peer.read_until_eof()

    def _sink_unaccepted(self):
        """sink-2 against a server that does not accept sink (21.8): the client
        gives the sink up with ERROR 0x203 (SINK-8) and exits with 2."""
        peer = self.accept()
        stream_id, _, _, _, _ = self.request(peer)
        self.first_response(peer, stream_id)
        peer.send(fr.encode_request_n(stream_id, 2))
        frames = peer.read_until_eof()
        on_sink = [(f.ftype, getattr(f, "error_code", None)) for f in frames if f.stream_id == stream_id]
        self.check("only ERROR 0x203 on the sink", on_sink == [(fr.ERROR, fr.ERROR_CANCELED)])

    def _sink_first_complete(self):
        """A sink's first response with COMPLETE, a result and R1 (SINK-14)."""
        peer = self.accept()
        stream_id, name, args, _, fds = self.request(peer)
        self.check("sinkFds('sink-first-complete') without FDs",
                   (name, args, fds) == (b"sinkFds", {"tag": b"sink-first-complete"}, []))
        r1, w1 = self.read_end()
        meta = md.encode_response_metadata(0, 1)
        self.send_payload(peer, stream_id, NEXT_COMPLETE, meta, c.encode_struct([]), [r1])
        echo_stream, name, args, seq, fds = self.request(peer)
        self.check("echo('after') at fdSeqNum 0 with 1 FD", (name, args, seq, len(fds)) == (b"echo", {"tag": b"after"},
                                                                                           0, 1))
        self.check("R1 closed when echo('after') arrives", read_end_is_closed(w1, timeout=0))
        self.respond(peer, echo_stream, fdtest.encode_string_result(args["tag"]), fds, 1)
        for fd in fds:
            os.close(fd)
        self.probe_checks(peer, "the connection kept", lambda: True)
        frames = self.other_frames + peer.read_until_eof()
        self.check("nothing on the sink after its first response", not any(f.stream_id == stream_id for f in frames))

    def _stream_bad_first(self):
        """A stream's first response with an empty payloadMetadata and R1
        (STREAM-20), then, after the CANCEL, item 0 with R2 and the end."""
        peer = self.accept()
        stream_id, name, args, _, fds = self.request(peer)
        self.check("streamFds(2, 1) without FDs",
                   (name, args, fds) == (b"streamFds", {"count": 2, "fdsPerItem": 1}, []))
        r1, w1 = self.read_end()
        # ResponseRpcMetadata {7: payloadMetadata with no member, 12: FdMetadata {0, 1}}.
        self.send_payload(peer, stream_id, NEXT, unhex("7c 00 5c 16 00 15 02 00 00"), b"\x00", [r1])
        cancel = self.next_frame(peer, fr.CANCEL)
        self.check("the CANCEL on the stream", cancel.stream_id == stream_id)
        self.check("the CANCEL before echo('after')", not self.pending)
        w2 = self.stream_item(peer, stream_id, 0, 1, 1)[0]
        self.completion(peer, stream_id)
        echo_stream, name, args, seq, fds = self.request(peer)
        self.check("echo('after') at fdSeqNum 0 with 1 FD", (name, args, seq, len(fds)) == (b"echo", {"tag": b"after"},
                                                                                           0, 1))
        self.check("R1 closed when echo('after') arrives", read_end_is_closed(w1, timeout=0))
        self.respond(peer, echo_stream, fdtest.encode_string_result(args["tag"]), fds, 2)
        for fd in fds:
            os.close(fd)
        self.probe_checks(peer, "R2 closed", lambda: read_end_is_closed(w2, timeout=0))
        frames = self.other_frames + peer.read_until_eof()
        self.check("no REQUEST_N on the stream",
                   not any(f.ftype == fr.REQUEST_N and f.stream_id == stream_id for f in frames))

    def _stream_timeout(self):
        peer = self.accept()
        late_stream, _, args, _, _ = self.request(peer)
        self.check("streamFds(1, 2)", args == {"count": 1, "fdsPerItem": 2})
        gap_stream, _, gap_args, _, _ = self.request(peer)
        self.check("CANCEL for the first stream before gap",
                   any(f.ftype == fr.CANCEL and f.stream_id == late_stream for f in self.other_frames))
        r1, w1 = self.read_end()
        self.first_response(peer, late_stream, [r1], 0)
        late = [w1] + self.stream_item(peer, late_stream, 0, 2, 1)
        self.completion(peer, late_stream)
        self.respond(peer, gap_stream, fdtest.encode_string_result(gap_args["tag"]))
        stream_id, _, args, _, fds = self.request(peer)
        self.check("R1 to R3 closed when next arrives", all(read_end_is_closed(w) for w in late))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 3)
        for fd in fds:
            os.close(fd)
        slow_stream, _, _, _, _ = self.request(peer)
        self.first_response(peer, slow_stream)
        time.sleep(1.0)
        slow = self.stream_item(peer, slow_stream, 0, 1, 4) + self.stream_item(peer, slow_stream, 1, 1, 5)
        self.completion(peer, slow_stream)
        self.probe_checks(peer, "R4 and R5 closed", lambda: all(read_end_is_closed(w) for w in slow))
        peer.read_until_eof()

    def _exception_fds(self):
        peer = self.accept()
        stream_id, name, args, _, _ = self.request(peer)
        self.check("open(exception-fds)", (name, args) == (b"open", {"path": b"exception-fds"}))
        read_end, write_end = self.pipe()
        message = b"exception-fds: injected"
        meta = md.encode_response_metadata(0, 1, exception=(fdtest.EXCEPTION_NAME, message))
        self.send_payload(peer, stream_id, NEXT_COMPLETE, meta, fdtest.encode_error_result(message, 2), [write_end])
        self.probe_checks(peer, "W1 closed", lambda: pipe_is_closed(read_end))
        peer.read_until_eof()

    def _error_invalid(self):
        peer = self.accept()
        stream_id, _, _, _, _ = self.request(peer)
        error = md.encode_response_rpc_error("rejected by harness", 1, 6)
        peer.send(fr.encode_error(stream_id, fr.ERROR_INVALID, error))
        self.echo_back(peer)
        peer.read_until_eof()

    def _setup_rejected(self):
        peer = self.accept(setup=False)
        peer.read_frame()
        peer.send(fr.encode_error(0, fr.ERROR_INVALID_SETUP, b"rejected by harness"))
        peer.sock.close()
        self.peers.remove(peer)

    def _bad_count(self):
        peer = self.accept()
        stream_id, _, args, _, fds = self.request(peer)
        reads = self.send_pipes(peer, 2, None, 0, 1, stream_id, fdtest.encode_string_result(args["tag"]))
        stream_id, _, args, seq, fds2 = self.request(peer)
        self.check("W1 and W2 closed", all(pipe_is_closed(read_end) for read_end in reads))
        self.check("second request at fdSeqNum 1", seq == 1)
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds2, 2)
        for fd in fds + fds2:
            os.close(fd)
        peer.read_until_eof()

    def _bad_seq(self):
        peer = self.accept()
        stream_id, _, args, _, fds = self.request(peer)
        reads = self.send_pipes(peer, 1, None, 5, 1, stream_id, fdtest.encode_string_result(args["tag"]))
        stream_id, _, args, seq, fds2 = self.request(peer)
        self.check("W1 closed", pipe_is_closed(reads[0]))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds2, 1)
        for fd in fds + fds2:
            os.close(fd)
        peer.read_until_eof()

    def _stale_seq(self):
        peer = self.accept()
        self.echo_back(peer, 0)
        stream_id, _, args, _, fds = self.request(peer)
        reads = self.send_pipes(peer, 1, None, 0, 1, stream_id, fdtest.encode_string_result(args["tag"]))
        stream_id, _, args, _, fds2 = self.request(peer)
        self.check("W1 open when 'after' arrives", pipe_is_open(reads[0]))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds2, 2)
        stream_id, _, args, _, _ = self.request(peer)
        self.check("W1 closed at the probe", pipe_is_closed(reads[0]))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]))
        for fd in fds + fds2:
            os.close(fd)
        peer.read_until_eof()

    def _orphan_fds(self):
        peer = self.accept()
        stream_id, _, args, _, fds = self.request(peer)
        reads = self.send_pipes(peer, 2, fr.encode_keepalive(False))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 2)
        stream_id, _, args, _, _ = self.request(peer)
        self.check("W1 and W2 closed at the probe", all(pipe_is_closed(read_end) for read_end in reads))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]))
        for fd in fds:
            os.close(fd)
        peer.read_until_eof()

    def _late_response(self):
        peer = self.accept()
        late_stream, _, late_args, _, late_fds = self.request(peer)
        gap_stream, _, gap_args, _, _ = self.request(peer)
        reads = self.send_pipes(peer, 2, None, 0, 2, late_stream, fdtest.encode_string_result(late_args["tag"]))
        self.respond(peer, gap_stream, fdtest.encode_string_result(gap_args["tag"]))
        stream_id, _, args, seq, fds = self.request(peer)
        self.check("W1 and W2 closed when 'next' arrives", all(pipe_is_closed(read_end) for read_end in reads))
        self.check("'next' at fdSeqNum 1", seq == 1)
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 2)
        for fd in late_fds + fds:
            os.close(fd)
        others = self.other_frames + peer.read_until_eof()
        self.check("no CANCEL for the request-response call (FRAME-29)",
                   not any(frame.ftype == fr.CANCEL for frame in others))

    def _eof_with_fds(self):
        peer = self.accept()
        stream_id, _, _, _, _ = self.request(peer)
        partial = struct.pack(">I", 16)[1:] + struct.pack(">I", stream_id)
        reads = self.send_pipes(peer, 2, partial)
        peer.sock.close()
        self.peers.remove(peer)
        second = self.accept()
        stream_id, _, args, _, _ = self.request(second)
        self.check("W1 and W2 closed at the probe", all(pipe_is_closed(read_end) for read_end in reads))
        self.respond(second, stream_id, fdtest.encode_string_result(args["tag"]))
        second.read_until_eof()

    def _many_in_flight(self):
        peer = self.accept()
        requests = [self.request(peer) for _ in range(16)]
        self.check("fdSeqNum 0..15 in arrival order", [req[3] for req in requests] == list(range(16)))
        self.check("16 distinct odd stream ids", len({req[0] for req in requests}) == 16
                   and all(req[0] % 2 for req in requests))
        for seq, (stream_id, _, args, _, fds) in enumerate(reversed(requests)):
            self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, seq)
            for fd in fds:
                os.close(fd)
        peer.read_until_eof()

    def _passrights_off(self):
        peer = self.accept(setup=False)
        self.listener.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 1)
        frames = peer.read_until_eof()
        self.check("no request on the first connection",
                   not any(frame.ftype in fr.REQUEST_TYPES for frame in frames))
        second = self.accept()
        stream_id, _, args, _, _ = self.request(second)
        self.respond(second, stream_id, fdtest.encode_string_result(args["tag"]))
        second.read_until_eof()

    def _ctrunc(self):
        peer = self.accept()
        pid = struct.unpack("3i", peer.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
        stream_id, _, args, _, _ = self.request(peer)
        used = set(int(name) for name in os.listdir("/proc/%d/fd" % pid))
        free_seen = 0
        number = 0
        while free_seen < 2:
            if number not in used:
                free_seen += 1
            number += 1
        original = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (number, original[1]))
        try:
            reads = self.send_pipes(peer, 5, None, 0, 5, stream_id, fdtest.encode_string_result(args["tag"]))
            frames = peer.read_until_eof()
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, original)
        self.check("ERROR 0x101 before the close", any(
            frame.ftype == fr.ERROR and frame.stream_id == 0 and frame.error_code == fr.ERROR_CONNECTION_ERROR
            for frame in frames))
        second = self.accept()
        stream_id, _, args, _, _ = self.request(second)
        self.check("W1 to W5 closed at the probe", all(pipe_is_closed(read_end) for read_end in reads))
        self.respond(second, stream_id, fdtest.encode_string_result(args["tag"]))
        second.read_until_eof()

    def _keepalive(self):
        peer = self.accept()
        stream_id, _, args, _, _ = self.request(peer)
        peer.send(fr.encode_keepalive(True, b"keepalive"))
        frame = peer.read_frame()
        self.check("a KEEPALIVE answer", frame is not None and frame.ftype == fr.KEEPALIVE)
        if frame is not None and frame.ftype == fr.KEEPALIVE:
            self.check("without RESPOND", not frame.has(fr.FLAG_RESPOND))
            self.check("last received position 0 (FRAME-27)", frame.position == 0)
            self.check("the same 9 data bytes", frame.data == b"keepalive")
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]))
        peer.read_until_eof()

    def _server_request(self):
        peer = self.accept()
        self.request(peer)
        read_end, write_end = self.pipe()
        meta = md.encode_request_metadata(b"echo", 0, 0, 1)
        request = fr.encode_message(fr.REQUEST_RESPONSE, 2, 0, meta, fdtest.encode_tag_args(b"from-server"))
        peer.send(b"".join(request), [write_end])
        os.close(write_end)
        frames = peer.read_until_eof()
        self.check("no request after server-request", not any(frame.ftype in fr.REQUEST_TYPES for frame in frames))
        self.check("ERROR 0x101 before the close", any(
            frame.ftype == fr.ERROR and frame.stream_id == 0 and frame.error_code == fr.ERROR_CONNECTION_ERROR
            for frame in frames))
        second = self.accept()
        stream_id, _, args, _, _ = self.request(second)
        self.check("W1 closed at the probe", pipe_is_closed(read_end))
        self.respond(second, stream_id, fdtest.encode_string_result(args["tag"]))
        second.read_until_eof()

    def _payload_metadata(self):
        peer = self.accept()
        stream_id, _, args, _, fds = self.request(peer)
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds,
                     meta=unhex("cc 16 00 15 02 00 00"))
        for fd in fds:
            os.close(fd)
        stream_id, _, args, _, _ = self.request(peer)
        read_1, write_1 = self.pipe()
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), [write_1],
                     meta=unhex("7c 00 5c 16 02 15 02 00 00"))
        os.close(write_1)
        stream_id, _, args, _, _ = self.request(peer)
        read_2, write_2 = self.pipe()
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), [write_2],
                     meta=unhex("7c 1c 00 1c 00 00 5c 16 04 15 02 00 00"))
        os.close(write_2)
        stream_id, _, args, _, fds = self.request(peer)
        self.check("W1 closed when 'after' arrives", pipe_is_closed(read_1))
        self.check("W2 open when 'after' arrives", pipe_is_open(read_2))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]), fds, 3)
        for fd in fds:
            os.close(fd)
        stream_id, _, args, _, _ = self.request(peer)
        self.check("W2 closed at the probe", pipe_is_closed(read_2))
        self.respond(peer, stream_id, fdtest.encode_string_result(args["tag"]))
        peer.read_until_eof()
