"""The client side: one connection, calls with FDs, poll-driven I/O.

Calls are started with start_call() and completed with wait(); several may be
in flight.  Every FD a call sends is owned by the connection from
start_call() on; every FD a response brings is owned by the Call until the
caller takes it with Call.take_fds().
"""

import select
import socket
import time

from . import compact
from . import fdsock
from . import fdtest
from . import frame as fr
from . import metadata as md
from .fdqueue import DEFAULT_BUDGET, DEFAULT_CAP, MAX_FDS_PER_MESSAGE, FdQueue, QueueError, close_fds
from .log import Quiet
from .outqueue import OutQueue, SendError

MAX_STREAM_ID = (1 << 31) - 1
READS_PER_POLL = 64
CONNECT_TIMEOUT = 5.0

# Why a call failed.
LOCAL = "local"                # refused before anything was sent (LIMIT-1)
TIMEOUT = "timeout"            # gave up waiting; the stream is abandoned (11.6)
RPC_ERROR = "rpc-error"        # ERROR frame on the call's stream (META-18)
DECLARED = "declared"          # the declared exception (META-19)
APPLICATION = "application"    # an undeclared exception
FD_MISMATCH = "fd-mismatch"    # the response's claim failed (ERR-13)
MALFORMED = "malformed"        # response metadata or result not decodable
NO_RESULT = "no-result"        # payloadMetadata with no member known: neither result nor exception (META-21)
CONNECTION = "connection"      # the connection failed (ERR-2, ERR-15)


class Call:
    """One call.  done is set once it succeeded or failed."""

    __slots__ = ("method", "kind", "stream_id", "done", "value", "fds", "failure", "error",
                 "exception", "num_fds_sent")

    def __init__(self, method, kind, num_fds_sent):
        self.method = method
        self.kind = kind
        self.stream_id = None
        self.done = False
        self.value = None
        self.fds = []
        self.failure = None
        self.error = ""
        self.exception = None
        self.num_fds_sent = num_fds_sent

    @property
    def ok(self):
        return self.done and self.failure is None

    def succeed(self, value):
        if self.done:
            return
        self.value = value
        self.done = True

    def fail(self, failure, text):
        if self.done:
            return
        self.failure = failure
        self.error = text
        self.done = True

    def take_fds(self):
        fds, self.fds = self.fds, []
        return fds

    def release(self):
        """Closes the received FDs the caller did not take (OWN-1)."""
        close_fds(self.take_fds())


class ConnectError(Exception):
    pass


class ClientConnection:
    def __init__(self, path, log=None, cap=DEFAULT_CAP, budget=DEFAULT_BUDGET,
                 max_message=fr.DEFAULT_MAX_MESSAGE):
        self.log = log or Quiet()
        self.cap = cap
        self.max_message = max_message
        self.fd_queue = FdQueue(cap, budget)
        self.out = OutQueue()
        self.frames = fr.FrameBuffer()
        self.partial = {}
        self.calls = {}          # stream id -> Call waiting for its response
        self.abandoned = set()   # stream ids given up on, until their final frame
        self.oneway = []         # one-way calls not yet written
        self.next_stream_id = 1
        self.closed = False
        self.failure_text = ""
        self.setup_version = None
        self.poller = select.poll()
        self.sock = self._connect(path)
        self.poller.register(self.sock, select.POLLIN)
        self.out.push([fr.encode_setup(md.encode_setup_metadata())])
        self.log.info("connected socket=%s" % path)
        self.flush()

    @staticmethod
    def _connect(path):
        try:
            raw = fdsock.check_socket_path(path)
        except ValueError as error:
            raise ConnectError(str(error)) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(raw)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise ConnectError("cannot connect to %s: %s" % (path, error.strerror or error)) from None
        return sock

    # ------------------------------------------------------------------ calls

    def _allocate_stream_id(self):
        """FRAME-12: odd ids from 1 by 2, wrapping after 2^31 - 1, skipping ids in use."""
        candidate = self.next_stream_id
        while candidate in self.calls or candidate in self.abandoned or candidate in self.partial:
            candidate = 1 if candidate + 2 > MAX_STREAM_ID else candidate + 2
        self.next_stream_id = 1 if candidate + 2 > MAX_STREAM_ID else candidate + 2
        return candidate

    def start_call(self, method, args, fds=(), kind=md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE):
        """Queues a request and writes what the socket takes.  Takes ownership of fds."""
        fds = list(fds)
        if isinstance(method, str):
            method = method.encode()
        call = Call(method, kind, len(fds))
        if self.closed:
            close_fds(fds)
            call.fail(CONNECTION, "connection already failed: %s" % self.failure_text)
            return call
        if len(fds) > MAX_FDS_PER_MESSAGE:
            close_fds(fds)
            call.fail(LOCAL, "refused locally: %d FDs, at most %d per message (LIMIT-1)"
                      % (len(fds), MAX_FDS_PER_MESSAGE))
            return call
        stream_id = self._allocate_stream_id()
        call.stream_id = stream_id
        seq = self.out.stamp(len(fds)) if fds else None
        meta = md.encode_request_metadata(method, kind, seq, len(fds))
        if kind == md.KIND_SINGLE_REQUEST_NO_RESPONSE:
            ftype = fr.REQUEST_FNF
            self.oneway.append(call)

            def written():
                self.oneway.remove(call)
                call.succeed(None)
        else:
            ftype = fr.REQUEST_RESPONSE
            self.calls[stream_id] = call
            written = None
        frames = fr.encode_message(ftype, stream_id, 0, meta, args)
        self.out.push(frames, fds, written)
        self.log.trace("send %s stream=%d fds=%d seq=%r" % (fr.TYPE_NAMES[ftype], stream_id, len(fds), seq))
        self.flush()
        return call

    def wait(self, call, timeout):
        """Runs the connection until call is done or timeout seconds passed;
        on timeout the call fails and its stream is abandoned (11.6)."""
        deadline = time.monotonic() + timeout
        while not call.done:
            now = time.monotonic()
            if now >= deadline:
                self.abandon(call, timeout)
                break
            self.pump(deadline - now)
        return call

    def wait_all(self, calls, timeout):
        deadline = time.monotonic() + timeout
        for call in calls:
            self.wait(call, max(0.0, deadline - time.monotonic()))
        return calls

    def abandon(self, call, timeout):
        """Gives up on a call.  No CANCEL is sent for a request-response call
        (FRAME-29): its stream id stays in use until a late answer arrives or
        the connection closes, which a CANCEL would not change."""
        if call.done:
            return
        if self.calls.get(call.stream_id) is call:
            del self.calls[call.stream_id]
            self.abandoned.add(call.stream_id)
        call.fail(TIMEOUT, "timed out after %d ms" % int(timeout * 1000))

    def call(self, method, args, fds=(), kind=md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE, timeout=5.0):
        return self.wait(self.start_call(method, args, fds, kind), timeout)

    # -------------------------------------------------------------------- I/O

    # Limitation: the client never sends KEEPALIVE frames of its own; it only
    # answers those that have RESPOND set.
    def pump(self, timeout):
        """One poll round: writes what is queued, reads and processes what came."""
        if self.closed:
            time.sleep(min(timeout, 0.01))
            return
        events = select.POLLIN
        if self.out:
            events |= select.POLLOUT
        self.poller.modify(self.sock, events)
        for _, revents in self.poller.poll(max(0, int(timeout * 1000)) + 1):
            if revents & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read()
            # Also writes what reading queued (a KEEPALIVE answer, FRAME-26).
            if not self.closed and (revents & select.POLLOUT or self.out):
                self.flush()

    def flush(self):
        if self.closed:
            return
        try:
            self.out.flush(self.sock)
        except SendError as error:
            self.fail(error.text)

    def _read(self):
        for _ in range(READS_PER_POLL):
            if self.closed:
                return
            try:
                result = fdsock.receive(self.sock, self.cap)
            except fdsock.ReceiveError as error:
                self.fail(error.text)
                return
            except OSError as error:
                self._on_eof("read failed: %s" % (error.strerror or error))
                return
            if result is None:
                return
            data, fds = result
            if not data:
                close_fds(fds)
                self._on_eof("connection closed by the server")
                return
            self.on_read(data, fds)

    def on_read(self, data, fds):
        if fds:
            try:
                self.fd_queue.append(fds)
            except QueueError as error:
                self.fail(str(error))
                return
            self.log.trace("fds group queue=%r" % self.fd_queue.snapshot())
        self.frames.feed(data)
        try:
            while not self.closed:
                raw = self.frames.next_frame()
                if raw is None:
                    break
                frame = fr.parse_frame(raw)
                self.log.trace("recv %s" % frame.describe())
                self._on_frame(frame)
        except fr.FrameError as error:
            self.fail(str(error))

    # ----------------------------------------------------------------- frames

    def _on_frame(self, frame):
        ftype = frame.ftype
        stream_id = frame.stream_id
        if stream_id and stream_id in self.partial and ftype != fr.PAYLOAD:
            raise fr.FrameError("FRAME-11", "%s on stream %d while its message is being reassembled"
                                % (fr.TYPE_NAMES[ftype], stream_id))
        if ftype == fr.PAYLOAD:
            self._on_payload(frame)
        elif ftype == fr.ERROR:
            self._on_error(frame)
        elif ftype == fr.METADATA_PUSH:
            self._on_metadata_push(frame)
        elif ftype == fr.KEEPALIVE:
            if frame.has(fr.FLAG_RESPOND):
                self.out.push([fr.encode_keepalive(False, frame.data)])
        elif ftype == fr.EXT:
            if not frame.has(fr.FLAG_IGNORE):
                raise fr.FrameError("FRAME-17", "EXT frame without IGNORE")
        elif ftype == fr.SETUP or ftype in fr.REQUEST_TYPES:
            raise fr.FrameError("FRAME-28", "the server sent a %s frame on stream %d"
                                % (fr.TYPE_NAMES[ftype], stream_id))
        # REQUEST_N and CANCEL are ignored (FRAME-18); FDs that came with them stay queued.

    def _on_metadata_push(self, frame):
        if self.setup_version is not None or frame.metadata is None:
            return
        try:
            push = md.decode_server_push(frame.metadata)
        except compact.DecodeError:
            return
        response = push.get("setupResponse")
        if response is not None:
            self.setup_version = response.get("version")
            self.log.info("setup-response version=%r" % self.setup_version)

    def _on_error(self, frame):
        text = frame.data
        if frame.stream_id == 0:
            raise fr.FrameError("FRAME-20", "server sent ERROR 0x%x on stream 0: %s"
                                % (frame.error_code, text.decode("utf-8", "replace")))
        call = self.calls.pop(frame.stream_id, None)
        if call is None:
            self.abandoned.discard(frame.stream_id)
            return
        what = text.decode("utf-8", "replace")
        try:
            error = md.decode_response_rpc_error(text)
            what = error.get("what_utf8", b"").decode("utf-8", "replace")
        except compact.DecodeError:
            pass
        call.fail(RPC_ERROR, "ERROR 0x%x: %s" % (frame.error_code, what))

    def _on_payload(self, frame):
        stream_id = frame.stream_id
        partial = self.partial.get(stream_id)
        if partial is not None:
            partial.append(frame)
            self._check_size(partial)
            if frame.has(fr.FLAG_FOLLOWS):
                return
            del self.partial[stream_id]
            self._on_response(fr.Message.from_partial(partial))
            return
        if stream_id not in self.calls and stream_id not in self.abandoned:
            # Ignored on its own, FOLLOWS or not (FRAME-18, FRAME-25).
            return
        if frame.has(fr.FLAG_FOLLOWS):
            self.partial[stream_id] = fr.PartialMessage(frame)
            self._check_size(self.partial[stream_id])
            return
        self._on_response(fr.Message.from_frame(frame))

    def _check_size(self, partial):
        if partial.size() > self.max_message:
            raise fr.FrameError("LIMIT-9", "message beyond %d bytes" % self.max_message)

    # Limitation: streams are not implemented.  There is no REQUEST_STREAM call,
    # so StreamPayloadMetadata is never decoded and ERR-14 (failing a stream
    # whose item's claim failed) has nothing to apply to.
    def _on_response(self, msg):
        """A complete response: claim first (FD-CARRY-3, FD-CARRY-5), then decode."""
        stream_id = msg.stream_id
        call = self.calls.pop(stream_id, None)
        self.abandoned.discard(stream_id)
        if not msg.has(fr.FLAG_NEXT):
            if call is not None:
                call.fail(MALFORMED, "response without a payload (COMPLETE only)")
            return
        try:
            if msg.metadata is None:
                raise compact.DecodeError("no metadata")
            meta = md.decode_response_metadata(msg.metadata)
        except compact.DecodeError as error:
            if call is not None:
                call.fail(MALFORMED, "malformed response metadata: %s" % error)
            return
        num_fds, fd_seq_num = md.fd_claim_args(meta)
        claim = self.fd_queue.claim(num_fds, fd_seq_num)
        if claim.orphans_closed:
            self.log.info("orphans closed=%d (ORPHAN-1)" % claim.orphans_closed)
        if call is None:
            close_fds(claim.fds)
            self.log.info("late-response stream=%d fds closed=%d (FD-CARRY-5)" % (stream_id, len(claim.fds)))
            return
        if not claim.ok:
            call.fail(FD_MISMATCH, claim.reason)
            return
        call.fds = claim.fds
        self._decode_result(call, meta, msg.data)
        if not call.ok:
            # A response the client rejects: its FDs are closed before the
            # failure is reported (OWN-3).
            call.release()

    def _decode_result(self, call, meta, data):
        """The table of 6.9: absent payloadMetadata is a result (META-22), an
        empty one is neither result nor exception (META-21)."""
        payload_meta = meta.get("payloadMetadata", {"responseMetadata": {}})
        schema = fdtest.RESULT_SCHEMAS.get(call.method, {})
        if "exceptionMetadata" in payload_meta:
            exception = payload_meta["exceptionMetadata"]
            what = exception.get("what_utf8", b"").decode("utf-8", "replace")
            if "declaredException" in exception.get("metadata", {}):
                try:
                    result = compact.decode_struct(data, schema)
                except compact.DecodeError as error:
                    call.fail(MALFORMED, "malformed exception result: %s" % error)
                    return
                call.exception = {key: value for key, value in result.items() if key != "success"}
                call.fail(DECLARED, "%s: %s" % (exception.get("name_utf8", b"").decode("utf-8", "replace"),
                                                what))
            else:
                call.fail(APPLICATION, "undeclared exception: %s" % what)
            return
        if "responseMetadata" not in payload_meta:
            call.fail(NO_RESULT, "neither a result nor an exception: payloadMetadata has no member known")
            return
        try:
            result = compact.decode_struct(data, schema)
        except compact.DecodeError as error:
            call.fail(MALFORMED, "malformed result: %s" % error)
            return
        if "success" not in result:
            call.fail(MALFORMED, "result without a value")
            return
        call.succeed(result["success"])

    # ---------------------------------------------------------------- failure

    def _on_eof(self, text):
        if len(self.frames) or self.partial:
            text += "; truncated: a partial frame or message was discarded (ERR-16)"
        self._shut(text, send_error=False)

    def fail(self, text):
        """Fails the connection (11.1), telling the server when possible (ERR-3)."""
        self._shut(text, send_error=True)

    def _shut(self, text, send_error):
        if self.closed:
            return
        self.closed = True
        self.failure_text = text
        if send_error or self.calls or self.oneway:
            self.log.warn("connection-failed %s" % text)
        else:
            self.log.info("closed %s" % text)
        partly_written = self.out.partly_written()
        self.out.discard()
        if send_error and not partly_written:
            try:
                self.sock.send(fr.encode_error(0, fr.ERROR_CONNECTION_ERROR, text.encode("utf-8")),
                               fdsock.SEND_FLAGS)
            except OSError:
                pass
        self.fd_queue.close_all()
        self.partial.clear()
        self.poller.unregister(self.sock)
        self.sock.close()
        for call in list(self.calls.values()) + self.oneway:
            call.fail(CONNECTION, "connection failed: %s" % text)
        self.calls.clear()
        self.oneway = []
        self.abandoned.clear()

    def close(self):
        """Closes the connection; calls still waiting fail."""
        self._shut("closed by the client", send_error=False)
