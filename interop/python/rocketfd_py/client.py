"""The client side: one connection, calls with FDs, poll-driven I/O.

Calls are started with start_call(), start_stream() or start_sink() and
driven with wait(), wait_first(), next_item(), send_item() and complete();
several may be in flight.  Every FD a call sends is owned by the connection
from the call that takes it on; every FD a response, stream item or sink's
final response brings is owned by the Call until the caller takes it
(Call.take_fds(), next_item()).
"""

import collections
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
STREAM_WINDOW = 2           # stream items the client is ready to hold at once (STREAM-1)
SINK_INITIAL_N = 2          # the first and the final response of a sink (SINK-2)
UNLIMITED_CREDIT = (1 << 31) - 1
DEFAULT_OFFER = (md.EXT_SINK, md.EXT_EXCEPTION)

# Why a call failed.
LOCAL = "local"                # refused before anything was sent (LIMIT-1, EXT-6)
TIMEOUT = "timeout"            # gave up waiting; the stream is abandoned (11.6, STREAM-14)
RPC_ERROR = "rpc-error"        # ERROR frame on the call's stream (META-18)
DECLARED = "declared"          # the declared exception (META-19)
APPLICATION = "application"    # an undeclared exception
FD_MISMATCH = "fd-mismatch"    # the claim failed (ERR-13, STREAM-12)
MALFORMED = "malformed"        # response metadata or result not decodable
NO_RESULT = "no-result"        # payloadMetadata with no member known: neither result nor exception (META-21)
PROTOCOL = "protocol"          # FDs outside the agreement of 21.8 (EXT-7), or a frame the call cannot take
CONTRACT = "contract"          # a stream or sink broke its contract: REQUEST_N, an item beyond credits,
                               # a misplaced PAYLOAD (STREAM-17, STREAM-18)
CANCELLED = "cancelled"        # the caller gave up on a stream or sink
CONNECTION = "connection"      # the connection failed (ERR-2, ERR-15)


class Call:
    """One call.  done is set once it succeeded or failed."""

    __slots__ = ("method", "kind", "stream_id", "done", "value", "fds", "failure", "error",
                 "exception", "num_fds_sent", "rpc_error")

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
        self.rpc_error = None   # (ERROR code, category, code) of an ERROR that ended the call

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


class StreamCall(Call):
    """A stream (21.2): its first response, then items until its end.  done is
    set at the end of the stream or when it fails; items received before
    stay in items until the caller takes them."""

    __slots__ = ("first_arrived", "first_ok", "first_value", "first_fds", "items", "granted", "received")

    def __init__(self, method, num_fds_sent, window):
        super().__init__(method, md.KIND_SINGLE_REQUEST_STREAMING_RESPONSE, num_fds_sent)
        self.first_arrived = False
        self.first_ok = False               # the first response was a result
        self.first_value = None
        self.first_fds = []
        self.items = collections.deque()   # (value, fds), in order
        self.granted = window              # items the server may send: initial N - 1 + every REQUEST_N
        self.received = 0

    def release(self):
        super().release()
        close_fds(self.first_fds)
        self.first_fds = []
        while self.items:
            close_fds(self.items.popleft()[1])


class SinkCall(Call):
    """A sink (21.6): first response, items sent within the server's credits,
    completion, final response (value and fds once done)."""

    __slots__ = ("first_arrived", "first_ok", "first_value", "first_fds", "accepted", "balance", "sent",
                 "completed")

    def __init__(self, method, num_fds_sent):
        super().__init__(method, md.KIND_SINK, num_fds_sent)
        self.first_arrived = False
        self.first_ok = False         # the first response was a result
        self.first_value = None
        self.first_fds = []
        self.accepted = frozenset()   # extensions the first response accepted (EXT-3)
        self.balance = 0              # 21.1: the N of every REQUEST_N received minus the items sent
        self.sent = 0
        self.completed = False

    def release(self):
        super().release()
        close_fds(self.first_fds)
        self.first_fds = []


class ConnectError(Exception):
    pass


class ClientConnection:
    def __init__(self, path, log=None, cap=DEFAULT_CAP, budget=DEFAULT_BUDGET,
                 max_message=fr.DEFAULT_MAX_MESSAGE, offer=DEFAULT_OFFER):
        self.log = log or Quiet()
        self.cap = cap
        self.max_message = max_message
        self.offered = frozenset(offer)
        self.fd_queue = FdQueue(cap, budget)
        self.out = OutQueue()
        self.frames = fr.FrameBuffer()
        self.partial = {}
        self.calls = {}          # stream id -> Call in flight
        # Limitation: abandoned streams are remembered without bound until their
        # terminal frame or the end of the connection (21.4 allows a bound).
        self.abandoned = {}      # stream id -> Call given up on, until its terminal frame (STREAM-13)
        self.oneway = []         # one-way calls not yet written
        self.next_stream_id = 1
        self.closed = False
        self.failure_text = ""
        self.setup_version = None
        self.poller = select.poll()
        self.sock = self._connect(path)
        self.poller.register(self.sock, select.POLLIN)
        self.out.push([fr.encode_setup(md.encode_setup_metadata(offer=list(offer)))])
        self.log.info("connected socket=%s offer=%s" % (path, b",".join(offer).decode() or "-"))
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

    def _refused(self, call, fds):
        """A call that cannot be sent: its FDs are closed (OWN-5).  True when refused."""
        if self.closed:
            close_fds(fds)
            call.fail(CONNECTION, "connection already failed: %s" % self.failure_text)
            return True
        if len(fds) > MAX_FDS_PER_MESSAGE:
            close_fds(fds)
            call.fail(LOCAL, "refused locally: %d FDs, at most %d per message (LIMIT-1)"
                      % (len(fds), MAX_FDS_PER_MESSAGE))
            return True
        return False

    def _send_request(self, call, ftype, args, fds, initial_n=None, written=None):
        """Queues the request of call on a new stream id; the FDs are stamped when written."""
        stream_id = self._allocate_stream_id()
        call.stream_id = stream_id
        if ftype != fr.REQUEST_FNF:
            self.calls[stream_id] = call

        def build(seq):
            self.log.trace("send %s stream=%d fds=%d seq=%r" % (fr.TYPE_NAMES[ftype], stream_id, len(fds), seq))
            meta = md.encode_request_metadata(call.method, call.kind, seq, len(fds))
            return fr.encode_message(ftype, stream_id, 0, meta, args, initial_n)
        self.out.push_message(build, fds, written)
        self.flush()

    def start_call(self, method, args, fds=(), kind=md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE):
        """Queues a request-response or one-way request and writes what the socket takes.  Takes ownership of fds."""
        fds = list(fds)
        if isinstance(method, str):
            method = method.encode()
        call = Call(method, kind, len(fds))
        if self._refused(call, fds):
            return call
        if kind == md.KIND_SINGLE_REQUEST_NO_RESPONSE:
            self.oneway.append(call)

            def written():
                self.oneway.remove(call)
                call.succeed(None)
            self._send_request(call, fr.REQUEST_FNF, args, fds, written=written)
        else:
            self._send_request(call, fr.REQUEST_RESPONSE, args, fds)
        return call

    def start_stream(self, method, args, fds=(), window=STREAM_WINDOW):
        """Requests a stream with credit for its first response and window
        items (STREAM-1).  Takes ownership of fds."""
        fds = list(fds)
        if isinstance(method, str):
            method = method.encode()
        call = StreamCall(method, len(fds), window)
        if not self._refused(call, fds):
            self._send_request(call, fr.REQUEST_STREAM, args, fds, initial_n=1 + window)
        return call

    def start_sink(self, method, args, fds=()):
        """Requests a sink: REQUEST_CHANNEL without COMPLETE, initial request N 2
        (SINK-2).  Takes ownership of fds."""
        fds = list(fds)
        if isinstance(method, str):
            method = method.encode()
        call = SinkCall(method, len(fds))
        if not self._refused(call, fds):
            self._send_request(call, fr.REQUEST_CHANNEL, args, fds, initial_n=SINK_INITIAL_N)
        return call

    def _run_until(self, condition, timeout):
        """Pumps until condition() holds; False when timeout seconds passed first."""
        deadline = time.monotonic() + timeout
        while not condition():
            now = time.monotonic()
            if now >= deadline:
                return False
            self.pump(deadline - now)
        return True

    def wait(self, call, timeout):
        """Runs the connection until call is done or timeout seconds passed;
        on timeout the call fails and its stream is abandoned (11.6)."""
        if not self._run_until(lambda: call.done, timeout):
            self.abandon(call, timeout)
        return call

    def wait_all(self, calls, timeout):
        deadline = time.monotonic() + timeout
        for call in calls:
            self.wait(call, max(0.0, deadline - time.monotonic()))
        return calls

    def wait_first(self, call, timeout):
        """Waits for the first response of a stream or sink; the timeout covers
        only this wait (STREAM-15).  On timeout the call is abandoned, with
        CANCEL for a stream (STREAM-14) and ERROR CANCELED for a sink (SINK-8)."""
        if not self._run_until(lambda: call.first_arrived or call.done, timeout):
            self.abandon(call, timeout)
        return call

    def abandon(self, call, timeout):
        """Gives up on a call after timeout seconds.  No CANCEL is sent for a
        request-response call (FRAME-29): its stream id stays in use until a
        late answer arrives or the connection closes, which a CANCEL would not
        change."""
        if call.done:
            return
        if call.kind in (md.KIND_SINGLE_REQUEST_STREAMING_RESPONSE, md.KIND_SINK):
            self._give_up(call, TIMEOUT, "timed out after %d ms" % int(timeout * 1000))
            return
        if self.calls.get(call.stream_id) is call:
            del self.calls[call.stream_id]
            self.abandoned[call.stream_id] = call
        call.fail(TIMEOUT, "timed out after %d ms" % int(timeout * 1000))

    def cancel(self, call):
        """Stops consuming a stream or gives up on a sink before its terminal frame."""
        if not call.done:
            self._give_up(call, CANCELLED, "cancelled by the caller")

    def _give_up(self, call, failure, text):
        """STREAM-13, STREAM-14, SINK-8: CANCEL (stream) or ERROR CANCELED (sink);
        the stream stays abandoned until its terminal frame, whose carriers are
        claimed and their FDs closed; items not yet taken are closed too."""
        if self.calls.get(call.stream_id) is call:
            del self.calls[call.stream_id]
            self.abandoned[call.stream_id] = call
            if call.kind == md.KIND_SINK:
                self.out.push([fr.encode_error(call.stream_id, fr.ERROR_CANCELED)])
            else:
                self.out.push([fr.encode_cancel(call.stream_id)])
            self.log.info("cancel %s stream=%d: %s" % (call.method.decode(), call.stream_id, text))
            self.flush()
        call.fail(failure, text)
        if isinstance(call, StreamCall):
            while call.items:
                close_fds(call.items.popleft()[1])

    def call(self, method, args, fds=(), kind=md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE, timeout=5.0):
        return self.wait(self.start_call(method, args, fds, kind), timeout)

    # ---------------------------------------------------------------- streams

    def next_item(self, call, timeout):
        """The next item of a stream as (value, fds), the caller owning fds; None
        at the end of the stream, when it failed, or when no item came within
        timeout seconds (then call.done is still False).  Taking an item grants
        the server one more (REQUEST_N, STREAM-8)."""
        if not self._run_until(lambda: call.items or call.done, timeout) or not call.items:
            return None
        item = call.items.popleft()
        if not call.done and self.calls.get(call.stream_id) is call and not self.closed:
            call.granted += 1
            self.out.push([fr.encode_request_n(call.stream_id, 1)])
            self.flush()
        return item

    # ------------------------------------------------------------------ sinks

    def send_item(self, call, data, fds=(), timeout=5.0):
        """Sends one item of a sink once the server granted credit for it
        (SINK-5); FDs only when its first response accepted the extension
        sink (EXT-6).  Takes ownership of fds.  Returns an error text, or None
        when the item is queued."""
        fds = list(fds)
        problem = None
        if fds and md.EXT_SINK not in call.accepted:
            problem = "refused locally: FDs on a sink item need the extension sink (EXT-6)"
        elif len(fds) > MAX_FDS_PER_MESSAGE:
            problem = "refused locally: %d FDs, at most %d per message (LIMIT-1)" % (len(fds), MAX_FDS_PER_MESSAGE)
        elif call.completed:
            problem = "the sink is already completed"
        elif not self._run_until(lambda: call.done or call.balance > 0, timeout):
            problem = "no credit for an item within %d ms" % int(timeout * 1000)
        elif call.done or self.closed:
            problem = "the sink ended: %s" % (call.error or self.failure_text)
        if problem is not None:
            close_fds(fds)
            return problem
        call.sent += 1
        if call.balance < UNLIMITED_CREDIT:
            call.balance -= 1
        stream_id = call.stream_id

        def build(seq):
            self.log.trace("send PAYLOAD stream=%d sink item fds=%d seq=%r" % (stream_id, len(fds), seq))
            meta = md.encode_stream_payload_metadata(seq, len(fds))
            return fr.encode_message(fr.PAYLOAD, stream_id, fr.FLAG_NEXT, meta, data)
        self.out.push_message(build, fds)
        self.flush()
        return None

    def complete(self, call):
        """Ends a sink's items: PAYLOAD COMPLETE with metadata 00 and no data (SINK-6)."""
        if call.completed or call.done or self.calls.get(call.stream_id) is not call:
            return
        call.completed = True
        self.out.push([fr.encode_payload_frame(fr.PAYLOAD, call.stream_id, fr.FLAG_COMPLETE,
                                               md.EMPTY_STREAM_PAYLOAD_METADATA)])
        self.flush()

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
        elif ftype == fr.REQUEST_N:
            self._on_request_n(frame)
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
        # CANCEL is ignored (FRAME-18); FDs that came with it stay queued.

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

    def _on_request_n(self, frame):
        """Credit for a sink's items (21.6); on a stream call in flight a breach
        of its contract (STREAM-18); ignored elsewhere (FRAME-18)."""
        call = self.calls.get(frame.stream_id)
        if call is None:
            return
        if call.kind == md.KIND_SINK:
            # Every N is a whole u32; a balance that reaches 2^31 - 1 is no limit from then on (SINK-5).
            if call.balance < UNLIMITED_CREDIT:
                call.balance = min(call.balance + frame.initial_n, UNLIMITED_CREDIT)
        elif call.kind == md.KIND_SINGLE_REQUEST_STREAMING_RESPONSE:
            self._contract(call, "the server sent REQUEST_N %d on stream %d (STREAM-18)"
                           % (frame.initial_n, frame.stream_id))

    def _contract(self, call, text):
        """A stream that breaks its contract fails, and then the connection (STREAM-17, STREAM-18)."""
        call.fail(CONTRACT, text)
        self.fail(text)

    def _on_error(self, frame):
        text = frame.data
        if frame.stream_id == 0:
            raise fr.FrameError("FRAME-20", "server sent ERROR 0x%x on stream 0: %s"
                                % (frame.error_code, text.decode("utf-8", "replace")))
        call = self.calls.pop(frame.stream_id, None)
        if call is None:
            self.abandoned.pop(frame.stream_id, None)
            return
        what = text.decode("utf-8", "replace")
        call.rpc_error = (frame.error_code, None, None)
        try:
            error = md.decode_response_rpc_error(text)
            what = error.get("what_utf8", b"").decode("utf-8", "replace")
            call.rpc_error = (frame.error_code, error.get("category"), error.get("code"))
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
            self._on_message(fr.Message.from_partial(partial))
            return
        if stream_id not in self.calls and stream_id not in self.abandoned:
            # Ignored on its own, FOLLOWS or not (FRAME-18, FRAME-25).
            return
        if frame.has(fr.FLAG_FOLLOWS):
            self.partial[stream_id] = fr.PartialMessage(frame)
            self._check_size(self.partial[stream_id])
            return
        self._on_message(fr.Message.from_frame(frame))

    def _check_size(self, partial):
        if partial.size() > self.max_message:
            raise fr.FrameError("LIMIT-9", "message beyond %d bytes" % self.max_message)

    def _on_message(self, msg):
        call = self.calls.get(msg.stream_id)
        abandoned = call is None
        if abandoned:
            call = self.abandoned.get(msg.stream_id)
            if call is None:
                return
        if call.kind == md.KIND_SINGLE_REQUEST_STREAMING_RESPONSE:
            self._on_stream_message(call, msg, abandoned)
        elif call.kind == md.KIND_SINK:
            self._on_sink_message(call, msg, abandoned)
        else:
            self._on_response(call, msg, abandoned)

    def _end(self, call):
        """The terminal frame of call's stream arrived: its id is free again (FRAME-12)."""
        if self.calls.get(call.stream_id) is call:
            del self.calls[call.stream_id]
        elif self.abandoned.get(call.stream_id) is call:
            del self.abandoned[call.stream_id]

    def _claim(self, msg, decode):
        """Decodes a carrier's metadata and performs its claim, before anything
        else is looked at (FD-CARRY-3).  Returns (meta, claim), or (None, text)
        when the metadata is missing or malformed: then nothing is claimed."""
        try:
            if msg.metadata is None:
                raise compact.DecodeError("no metadata")
            meta = decode(msg.metadata)
        except compact.DecodeError as error:
            return None, "malformed metadata: %s" % error
        num_fds, fd_seq_num = md.fd_claim_args(meta)
        claim = self.fd_queue.claim(num_fds, fd_seq_num)
        if claim.orphans_closed:
            self.log.info("orphans closed=%d (ORPHAN-1)" % claim.orphans_closed)
        return meta, claim

    def _on_response(self, call, msg, abandoned):
        """A complete response: claim first (FD-CARRY-3, FD-CARRY-5), then decode."""
        self._end(call)
        if not msg.has(fr.FLAG_NEXT):
            call.fail(MALFORMED, "response without a payload (COMPLETE only)")
            return
        meta, claim = self._claim(msg, md.decode_response_metadata)
        if meta is None:
            call.fail(MALFORMED, "%s of the response" % claim)
            return
        if abandoned:
            close_fds(claim.fds)
            self.log.info("late-response stream=%d fds closed=%d (FD-CARRY-5)" % (msg.stream_id, len(claim.fds)))
            return
        if not claim.ok:
            call.fail(FD_MISMATCH, claim.reason)
            return
        ok, value = self._read_payload(call, meta, msg.data, fdtest.RESULT_SCHEMAS.get(call.method, {}), claim.fds)
        if ok:
            call.fds = claim.fds
            call.succeed(value)

    def _read_payload(self, call, meta, data, schema, fds, needs_value=True):
        """The table of 6.9 for a claimed PAYLOAD: absent payloadMetadata is a
        result (META-22), an empty one is neither result nor exception
        (META-21).  Returns (True, value) for a result, whose fds the caller
        places; otherwise fails call and returns (False, None), the fds closed
        (OWN-3) or, for a declared exception under the extension exception,
        handed over with it (EXT-8)."""
        payload_meta = meta.get("payloadMetadata", {"responseMetadata": {}})
        if "exceptionMetadata" in payload_meta:
            exception = payload_meta["exceptionMetadata"]
            what = exception.get("what_utf8", b"").decode("utf-8", "replace")
            if "declaredException" not in exception.get("metadata", {}):
                return self._reject(call, fds, APPLICATION, "undeclared exception: %s" % what)
            if fds and md.EXT_EXCEPTION not in self.offered:
                return self._reject(call, fds, PROTOCOL, "a declared exception came with %d FDs without the "
                                    "extension exception (EXT-7): %s" % (len(fds), what))
            try:
                result = compact.decode_struct(data, schema)
            except compact.DecodeError as error:
                return self._reject(call, fds, MALFORMED, "malformed exception result: %s" % error)
            call.exception = {key: value for key, value in result.items() if key != "success"}
            call.fds = fds
            call.fail(DECLARED, "%s: %s" % (exception.get("name_utf8", b"").decode("utf-8", "replace"), what))
            return False, None
        if "responseMetadata" not in payload_meta:
            return self._reject(call, fds, NO_RESULT,
                                "neither a result nor an exception: payloadMetadata has no member known")
        try:
            result = compact.decode_struct(data, schema)
        except compact.DecodeError as error:
            return self._reject(call, fds, MALFORMED, "malformed result: %s" % error)
        if needs_value and "success" not in result:
            return self._reject(call, fds, MALFORMED, "result without a value")
        return True, result.get("success")

    @staticmethod
    def _reject(call, fds, failure, text):
        close_fds(fds)
        call.fail(failure, text)
        return False, None

    def _on_stream_message(self, call, msg, abandoned):
        """A PAYLOAD on a stream: the first response, an item or the end (21.1)."""
        first = not call.first_arrived
        if not msg.has(fr.FLAG_NEXT):
            if first and not abandoned:
                self._contract(call, "the first message on stream %d is a PAYLOAD without NEXT (STREAM-18)"
                               % msg.stream_id)
                return
            self._end(call)
            call.succeed(None)
            self.log.trace("end %s stream=%d" % (call.method.decode(), msg.stream_id))
            return
        decode = md.decode_response_metadata if first else md.decode_stream_payload_metadata
        meta, claim = self._claim(msg, decode)
        call.first_arrived = True
        if meta is None:
            self._unreadable(call, msg, claim)
            return
        if abandoned:
            self._late(call, msg, claim, "late-item", msg.has(fr.FLAG_COMPLETE))
            return
        if not claim.ok:
            call.fail(FD_MISMATCH, claim.reason)
            self.fail("claim on stream %d failed (STREAM-12): %s" % (msg.stream_id, claim.reason))
            return
        if not first:
            call.received += 1
            if call.received > call.granted:
                close_fds(claim.fds)
                self._contract(call, "an item beyond the %d credits granted on stream %d (STREAM-17)"
                               % (call.granted, msg.stream_id))
                return
        first_schema, item_schema = fdtest.STREAM_SCHEMAS.get(call.method, ({}, {}))
        ok, value = self._read_payload(call, meta, msg.data, first_schema if first else item_schema, claim.fds,
                                       needs_value=not first)
        if not ok:
            # STREAM-20: the stream fails, the connection goes on.
            self._after_failure(call, msg)
            return
        if first:
            call.first_ok, call.first_value, call.first_fds = True, value, claim.fds
        else:
            call.items.append((value, claim.fds))
        if msg.has(fr.FLAG_COMPLETE):
            self._end(call)
            call.succeed(None)

    def _late(self, call, msg, claim, event, terminal):
        """A carrier on an abandoned stream or sink (STREAM-13, FD-CARRY-5): the
        FDs it claimed are closed; a failed claim has closed what 7.5 closes
        and the connection goes on (STREAM-21).  terminal: the message ends
        the stream or sink, whose id is then free."""
        if claim.ok:
            close_fds(claim.fds)
            self.log.info("%s stream=%d fds closed=%d (STREAM-13)" % (event, msg.stream_id, len(claim.fds)))
        else:
            self.log.info("%s stream=%d claim failed, connection kept (STREAM-21): %s"
                          % (event, msg.stream_id, claim.reason))
        if terminal:
            self._end(call)

    def _unreadable(self, call, msg, text):
        """A stream or sink message whose metadata does not decode: nothing is
        claimed; the call fails and, unless the message ended it, is given up."""
        if self.calls.get(call.stream_id) is call:
            call.fail(MALFORMED, text)
        self._after_failure(call, msg)

    def _after_failure(self, call, msg):
        """A stream or sink failed on a message: ended when the message had
        COMPLETE, otherwise abandoned with CANCEL or ERROR (STREAM-14, SINK-8)."""
        if msg.has(fr.FLAG_COMPLETE):
            self._end(call)
            return
        self._give_up(call, call.failure, call.error)

    def _on_sink_message(self, call, msg, abandoned):
        """A PAYLOAD on a sink: its first response, then its final response (21.1)."""
        first = not call.first_arrived
        complete = msg.has(fr.FLAG_COMPLETE)
        if not abandoned and not (msg.has(fr.FLAG_NEXT) and (first or complete)):
            # STREAM-18: a sink starts with its first response, and after it the
            # server sends nothing but REQUEST_N and a terminal frame.
            self._contract(call, "%s PAYLOAD with flags 0x%03x on sink %d (STREAM-18)"
                           % ("a first" if first else "a", msg.flags, msg.stream_id))
            return
        if not msg.has(fr.FLAG_NEXT):
            if complete:
                self._end(call)
            return
        decode = md.decode_response_metadata if first else md.decode_stream_payload_metadata
        meta, claim = self._claim(msg, decode)
        call.first_arrived = True
        if meta is None:
            self._unreadable(call, msg, claim)
            return
        if abandoned:
            self._late(call, msg, claim, "late-response", complete)
            return
        if not claim.ok:
            call.fail(FD_MISMATCH, claim.reason)
            self.fail("claim on sink %d failed (STREAM-12): %s" % (msg.stream_id, claim.reason))
            return
        first_schema, _, final_schema = fdtest.SINK_SCHEMAS.get(call.method, ({}, {}, {}))
        if first:
            call.accepted = md.extension_names(meta.get("otherMetadata")) & self.offered
            ok, value = self._read_payload(call, meta, msg.data, first_schema, claim.fds, needs_value=False)
            if complete:
                # The sink ends with its first response, nothing more is sent on it
                # and the connection goes on (SINK-14): an exception ends it with
                # that exception (EXT-7, EXT-8), a result fails it, its FDs closed.
                if ok:
                    self._reject(call, claim.fds, PROTOCOL, "the sink's first response has COMPLETE and a "
                                 "result (SINK-14)")
                self._end(call)
            elif ok:
                call.first_ok, call.first_value, call.first_fds = True, value, claim.fds
            else:
                self._after_failure(call, msg)
            return
        self._end(call)
        if claim.fds and md.EXT_SINK not in self.offered and not self._is_exception(meta):
            self._reject(call, claim.fds, PROTOCOL, "the final response came with %d FDs without the extension "
                         "sink (EXT-7)" % len(claim.fds))
            return
        # STREAM-20: a final response that is neither a result nor an exception fails the sink only.
        ok, value = self._read_payload(call, meta, msg.data, final_schema, claim.fds)
        if ok:
            call.fds = claim.fds
            call.succeed(value)

    @staticmethod
    def _is_exception(meta):
        return "exceptionMetadata" in meta.get("payloadMetadata", {})

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
