"""The server side: one ServerConnection per accepted socket, the FdTest
service, and a selectors loop that serves many connections at once."""

import errno
import os
import selectors
import signal
import socket
import stat
import struct
import time

from . import compact
from . import fdsock
from . import fdtest
from . import frame as fr
from . import metadata as md
from .beneath import OpenError, open_beneath
from .fdqueue import DEFAULT_BUDGET, DEFAULT_CAP, FdQueue, QueueError, close_fds
from .outqueue import OutQueue, SendError

MAX_IN_FLIGHT = 256
MAX_QUEUED_CHUNKS = 8    # stream items are made only while the output holds fewer chunks
WRITE_ROUNDS = 16        # make-and-write rounds per event, so one connection cannot starve the others
# Credits a sink's client holds: SINK_WINDOW after the first response, one
# more after each item.  Items beyond them are not detected: a grant the
# server queued may not have reached the client, so the server cannot tell
# an item sent early from one sent within credit.
SINK_WINDOW = 2
UNLIMITED_CREDIT = (1 << 31) - 1
MAX_CONNECTIONS = 1024
READS_PER_EVENT = 16
DRAIN_LIMIT = 1 << 20
DRAIN_READS = 64
ACCEPT_BACKOFF = 0.1
SO_PEERPIDFD = 77

_FRAME_KINDS = {
    fr.REQUEST_RESPONSE: md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE,
    fr.REQUEST_FNF: md.KIND_SINGLE_REQUEST_NO_RESPONSE,
    fr.REQUEST_STREAM: md.KIND_SINGLE_REQUEST_STREAMING_RESPONSE,
    fr.REQUEST_CHANNEL: md.KIND_SINK,
}


class Rejection(Exception):
    """A request that is answered with an ERROR frame instead of being executed (6.8)."""

    def __init__(self, what, error_code=fr.ERROR_INVALID, category=md.CATEGORY_INVALID_REQUEST,
                 code=md.CODE_REQUEST_PARSING_FAILURE):
        super().__init__(what)
        self.what = what
        self.error_code = error_code
        self.category = category
        self.code = code


class ClientEnded(Exception):
    """A sink item with exceptionMetadata: the client's end of the sink (SINK-13)."""


class Credentials:
    """The peer's SO_PEERCRED snapshot taken at accept (CRED-1) and its pidfd (CRED-3)."""

    __slots__ = ("pid", "uid", "gid", "pidfd")

    def __init__(self, sock):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        self.pid, self.uid, self.gid = struct.unpack("3i", raw)
        try:
            self.pidfd = sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
        except OSError:
            self.pidfd = None

    def copy(self):
        """pid, uid, gid, and whether a pidfd from SO_PEERPIDFD pins the pid (17.7)."""
        return (self.pid, self.uid, self.gid, self.pidfd is not None)

    def close(self):
        if self.pidfd is not None:
            close_fds([self.pidfd])
            self.pidfd = None


class Request:
    """A complete, validated request handed to the service.  fds is owned by
    the request: a handler that keeps or forwards them empties the list.
    initial_n is the initial request N of a stream or sink request."""

    __slots__ = ("stream_id", "method", "args", "fds", "credentials", "initial_n")

    def __init__(self, stream_id, method, args, fds, credentials, initial_n=None):
        self.stream_id = stream_id
        self.method = method
        self.args = args
        self.fds = fds
        self.credentials = credentials
        self.initial_n = initial_n

    def take_fds(self):
        fds, self.fds = self.fds, []
        return fds


class Credit:
    """The balance of a stream's credits (21.1), one spent per item: every N
    counts as a whole u32 (STREAM-19), and a balance that reaches 2^31 - 1
    means no limit from then on.  It may start at -1 (an initial request N of
    0, 21.3): the first credit granted then pays for the first response."""

    __slots__ = ("left",)

    def __init__(self, left):
        self.left = min(left, UNLIMITED_CREDIT)

    def add(self, count):
        if self.left < UNLIMITED_CREDIT:
            self.left = min(self.left + count, UNLIMITED_CREDIT)

    def available(self):
        return self.left > 0

    def spend(self):
        if self.left < UNLIMITED_CREDIT:
            self.left -= 1


class ServerStream:
    """A streamFds stream after its first response: items left to send and credits (21.2, 21.3)."""

    __slots__ = ("stream_id", "count", "fds_per_item", "next_index", "credit")

    def __init__(self, stream_id, count, fds_per_item, initial_n):
        self.stream_id = stream_id
        self.count = count
        self.fds_per_item = fds_per_item
        self.next_index = 0
        # The initial request N counts the first response too (STREAM-6).
        self.credit = Credit(initial_n - 1)


class ServerSink:
    """A sinkFds sink between its first response and its terminal frame (21.6, 17.6)."""

    __slots__ = ("stream_id", "tag", "fds_agreed", "infos")

    def __init__(self, stream_id, tag, fds_agreed):
        self.stream_id = stream_id
        self.tag = tag
        self.fds_agreed = fds_agreed
        self.infos = []


def _stream_tag(stream_id):
    """The output tag of the frames of a stream or sink, which CANCEL or the
    client's ERROR drop while none of their bytes is written."""
    return ("streaming", stream_id)


def _make_pipe_read_ends(count):
    """count read ends of new close-on-exec pipes whose write ends are closed
    (17.5); on failure closes what it made and raises OSError."""
    read_ends = []
    try:
        for _ in range(count):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            read_ends.append(read_end)
            os.close(write_end)
    except OSError:
        close_fds(read_ends)
        raise
    return read_ends


class ServerConnection:
    """One accepted connection: framing, SETUP, claims, dispatch, output."""

    def __init__(self, sock, conn_id, service, log, cap=DEFAULT_CAP, budget=DEFAULT_BUDGET,
                 max_message=fr.DEFAULT_MAX_MESSAGE, max_in_flight=MAX_IN_FLIGHT):
        self.sock = sock
        self.conn_id = conn_id
        self.service = service
        self.log = log
        self.cap = cap
        self.max_message = max_message
        self.max_in_flight = max_in_flight
        self.fd_queue = FdQueue(cap, budget)
        self.out = OutQueue()
        self.frames = fr.FrameBuffer()
        # Limitation: the number of messages reassembled at once is not bounded
        # (4.5 allows a bound); each is bounded by max_message only.
        self.partial = {}
        self.in_use = set()      # stream ids from a request's first frame until its answer is queued (1.4)
        self.in_flight = set()   # complete request-response, stream and sink requests among them
        self.streams = {}        # stream id -> ServerStream, until its terminal frame is queued
        self.sinks = {}          # stream id -> ServerSink, while the sink is open
        self.offered = frozenset()  # extensions the client offered in SETUP (21.8)
        self.setup_done = False
        self.closed = False
        self.last_recorded = (b"", [])
        self.credentials = Credentials(sock)

    # ------------------------------------------------------------------ input

    def on_read(self, data, fds):
        """Processes one read: its FDs become a group before any of its bytes (FD-RECV-5)."""
        if fds:
            try:
                self.fd_queue.append(fds)
            except QueueError as error:
                self.fail(str(error))
                return
            self.log.trace("conn=%d fds group=%r" % (self.conn_id, self.fd_queue.snapshot()))
        self.frames.feed(data)
        try:
            while not self.closed:
                raw = self.frames.next_frame()
                if raw is None:
                    break
                frame = fr.parse_frame(raw)
                self.log.trace("conn=%d recv %s" % (self.conn_id, frame.describe()))
                self._on_frame(frame)
        except fr.FrameError as error:
            self.fail(str(error))

    def on_eof(self):
        truncated = len(self.frames) > 0 or bool(self.partial)
        if truncated:
            self.log.warn("conn=%d eof truncated: partial frame or message discarded (ERR-16)" % self.conn_id)
        else:
            self.log.info("conn=%d eof" % self.conn_id)
        self.close()

    def _on_frame(self, frame):
        if not self.setup_done:
            if frame.ftype != fr.SETUP:
                self.fail("first frame is %s, not SETUP" % fr.TYPE_NAMES[frame.ftype])
                return
            self._on_setup(frame)
            return
        ftype = frame.ftype
        if ftype == fr.SETUP:
            self.fail("second SETUP frame", fr.ERROR_INVALID_SETUP)
            return
        if frame.stream_id and frame.stream_id in self.partial and ftype != fr.PAYLOAD:
            raise fr.FrameError("FRAME-11", "%s on stream %d while its message is being reassembled"
                                % (fr.TYPE_NAMES[ftype], frame.stream_id))
        if ftype in fr.REQUEST_TYPES:
            self._on_request_frame(frame)
        elif ftype == fr.PAYLOAD:
            self._on_payload(frame)
        elif ftype == fr.KEEPALIVE:
            if frame.has(fr.FLAG_RESPOND):
                self.out.push([fr.encode_keepalive(False, frame.data)])
        elif ftype == fr.ERROR:
            if frame.stream_id == 0:
                raise fr.FrameError("FRAME-20", "peer sent ERROR 0x%x: %s" % (
                    frame.error_code, frame.data.decode("utf-8", "replace")))
            if frame.stream_id in self.sinks:
                self._end_sink(frame.stream_id, "the client's ERROR 0x%x" % frame.error_code)
        elif ftype == fr.REQUEST_N:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.credit.add(frame.initial_n)
        elif ftype == fr.CANCEL:
            self._on_cancel(frame.stream_id)
        elif ftype == fr.EXT:
            if not frame.has(fr.FLAG_IGNORE):
                raise fr.FrameError("FRAME-17", "EXT frame without IGNORE")
        # Other REQUEST_N, CANCEL and ERROR frames, METADATA_PUSH: nothing to do (FRAME-18, FRAME-19).

    def _on_setup(self, frame):
        info = frame.setup
        if (info.major, info.minor) != (1, 0):
            self.fail("SETUP version %d.%d, not 1.0" % (info.major, info.minor), fr.ERROR_INVALID_SETUP)
            return
        if info.metadata_mime == fr.METADATA_MIME_BINARY or (info.metadata_mime, info.data_mime) != (
                fr.METADATA_MIME, fr.DATA_MIME):
            self.fail("unsupported MIME types %r, %r" % (info.metadata_mime, info.data_mime),
                      fr.ERROR_UNSUPPORTED_SETUP)
            return
        blob = frame.metadata
        if blob is None or len(blob) < 4 or blob[:4] != fr.PROTOCOL_KEY:
            self.fail("bad protocol key", fr.ERROR_INVALID_SETUP)
            return
        try:
            setup = md.decode_setup_metadata(blob[4:])
        except compact.DecodeError as error:
            self.fail("malformed RequestSetupMetadata: %s" % error, fr.ERROR_INVALID_SETUP)
            return
        if setup.get("encodeMetadataUsingBinary"):
            self.fail("binary metadata is not supported", fr.ERROR_UNSUPPORTED_SETUP)
            return
        min_version = setup.get("minVersion", 0)
        max_version = setup.get("maxVersion", 0)
        if min_version > md.MAX_ROCKET_VERSION or max_version < md.MIN_ROCKET_VERSION:
            self.fail("no common version in %d..%d" % (min_version, max_version), fr.ERROR_INVALID_SETUP)
            return
        version = min(max_version, md.MAX_ROCKET_VERSION)
        self.offered = md.extension_names(setup.get("clientMetadata", {}).get("otherMetadata"))
        self.setup_done = True
        self.out.push([fr.encode_metadata_push(md.encode_setup_response(version))])
        self.log.info("conn=%d setup version=%d offered=%s" % (
            self.conn_id, version, b",".join(sorted(self.offered)).decode() or "-"))

    def _on_request_frame(self, frame):
        stream_id = frame.stream_id
        if stream_id % 2 == 0:
            raise fr.FrameError("FRAME-13", "request on even stream %d" % stream_id)
        if stream_id in self.in_use:
            raise fr.FrameError("FRAME-13", "request on stream %d, which is still in use" % stream_id)
        self.in_use.add(stream_id)
        if frame.has(fr.FLAG_FOLLOWS):
            self._start_partial(frame)
        else:
            self._on_message(fr.Message.from_frame(frame))

    def _start_partial(self, frame):
        partial = fr.PartialMessage(frame)
        if partial.size() > self.max_message:
            raise fr.FrameError("LIMIT-9", "message beyond %d bytes" % self.max_message)
        self.partial[frame.stream_id] = partial

    def _on_payload(self, frame):
        partial = self.partial.get(frame.stream_id)
        if partial is None:
            if frame.stream_id not in self.sinks:
                # Continues nothing: ignored on its own, FOLLOWS or not (FRAME-18, FRAME-25).
                return
            if frame.has(fr.FLAG_FOLLOWS):
                self._start_partial(frame)
            else:
                self._on_sink_message(fr.Message.from_frame(frame))
            return
        partial.append(frame)
        if partial.size() > self.max_message:
            raise fr.FrameError("LIMIT-9", "message beyond %d bytes" % self.max_message)
        if not frame.has(fr.FLAG_FOLLOWS):
            del self.partial[frame.stream_id]
            message = fr.Message.from_partial(partial)
            if message.ftype == fr.PAYLOAD:
                self._on_sink_message(message)
            else:
                self._on_message(message)

    # --------------------------------------------------------------- dispatch

    def _on_message(self, msg):
        """A complete request: the checks of 6.8 in the order of its table
        (META-20), the claim as its step 2, then execution."""
        stream_id = msg.stream_id
        if msg.ftype in (fr.REQUEST_RESPONSE, fr.REQUEST_STREAM, fr.REQUEST_CHANNEL):
            self.in_flight.add(stream_id)
        fds = []
        try:
            if msg.metadata is None:
                raise Rejection("request without metadata")
            try:
                meta = md.decode_request_metadata(msg.metadata)
            except compact.DecodeError as error:
                raise Rejection("malformed RequestRpcMetadata: %s" % error) from None
            num_fds, fd_seq_num = md.fd_claim_args(meta)
            claim = self.fd_queue.claim(num_fds, fd_seq_num)
            if claim.orphans_closed:
                self.log.info("conn=%d closed %d orphan FDs (ORPHAN-1)" % (self.conn_id, claim.orphans_closed))
            if not claim.ok:
                raise Rejection(claim.reason)
            fds = claim.fds
            request = self._validate(msg, meta, fds)
            fds = []
            self.service.handle(self, request)
            close_fds(request.take_fds())
        except Rejection as rejection:
            close_fds(fds)
            self._reject(msg, rejection)
        except Exception as error:  # a failure inside the server (META-15)
            close_fds(fds)
            self.log.error("conn=%d stream=%d internal error: %r" % (self.conn_id, stream_id, error))
            self._reject(msg, Rejection("internal error: %s" % error, fr.ERROR_CANCELED,
                                        md.CATEGORY_INTERNAL_ERROR, md.CODE_UNKNOWN))
        if msg.ftype == fr.REQUEST_FNF:
            self.in_use.discard(stream_id)

    def _validate(self, msg, meta, fds):
        """Steps 3 to 9 of 6.8, in order; returns a Request that owns fds."""
        if meta.get("protocol") != md.PROTOCOL_COMPACT:
            raise Rejection("protocol %r is not 2 (Compact)" % meta.get("protocol"))
        name = meta.get("name")
        if name is None:
            raise Rejection("request without a method name")
        if meta.get("compression"):
            raise Rejection("compressed requests are not supported")
        if "interactionId" in meta or "interactionCreate" in meta:
            raise Rejection("interactions are not supported")
        if meta.get("checksum", {}).get("algorithm"):
            raise Rejection("checksums are not supported")
        kind = meta.get("kind")
        if msg.ftype == fr.REQUEST_CHANNEL and kind == md.KIND_BIDIRECTIONAL_STREAM:
            raise Rejection("bidirectional streams are not supported")
        if kind is None or kind != _FRAME_KINDS[msg.ftype]:
            raise Rejection("kind %r does not match %s" % (kind, fr.TYPE_NAMES[msg.ftype]),
                            code=md.CODE_WRONG_RPC_KIND)
        if msg.ftype != fr.REQUEST_FNF and len(self.in_flight - {msg.stream_id}) >= self.max_in_flight:
            raise Rejection("too many requests in flight", fr.ERROR_REJECTED, md.CATEGORY_LOADSHEDDING,
                            md.CODE_OVERLOAD)
        if name not in fdtest.METHOD_KINDS:
            raise Rejection("unknown method %r" % name.decode("utf-8", "replace"),
                            code=md.CODE_UNKNOWN_METHOD)
        if fdtest.METHOD_KINDS[name] != kind:
            raise Rejection("method %s is not of kind %d" % (name.decode(), kind), code=md.CODE_WRONG_RPC_KIND)
        try:
            args = compact.decode_struct(msg.data, fdtest.ARG_SCHEMAS[name])
        except compact.DecodeError as error:
            raise Rejection("malformed arguments of %s: %s" % (name.decode(), error)) from None
        refused = fdtest.refused_args(name, args)
        if refused is not None:
            raise Rejection(refused)
        return Request(msg.stream_id, name, args, fds, self.credentials.copy(), msg.initial_n)

    def _reject(self, msg, rejection):
        """Answers a request that is not executed; the FDs are already closed (OWN-3)."""
        self.log.warn("conn=%d stream=%d rejected: %s" % (self.conn_id, msg.stream_id, rejection.what))
        if msg.ftype == fr.REQUEST_FNF:
            return
        data = md.encode_response_rpc_error(rejection.what, rejection.category, rejection.code)
        self._push(msg.stream_id, [fr.encode_error(msg.stream_id, rejection.error_code, data)])

    # ----------------------------------------------------------------- output

    def _release(self, stream_id):
        """The final frame of a request's answer is queued: from now on its
        stream id is free again (1.4, 4.6), whether or not it is written yet."""
        self.in_use.discard(stream_id)
        self.in_flight.discard(stream_id)

    def _push(self, stream_id, frames):
        """Queues the final frame(s) of a request's answer, without FDs."""
        self.out.push(frames)
        self._release(stream_id)

    def _queue_payload(self, stream_id, flags, encode_metadata, data, fds=(), tag=None):
        """Queues one PAYLOAD message; takes fds.  encode_metadata(seq, num_fds)
        gives its metadata once it is stamped (outqueue)."""
        fds = list(fds)

        def build(seq):
            self.log.trace("conn=%d send PAYLOAD stream=%d flags=0x%03x fds=%d seq=%r"
                           % (self.conn_id, stream_id, flags, len(fds), seq))
            return fr.encode_message(fr.PAYLOAD, stream_id, flags, encode_metadata(seq, len(fds)), data)
        self.out.push_message(build, fds, tag=tag)

    def respond(self, stream_id, data, fds=None, exception=None):
        """Queues a response; takes fds, which the sendmsg carries (FD-SEND-1)."""
        self._queue_payload(stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE,
                            lambda seq, count: md.encode_response_metadata(seq, count, exception), data, fds or ())
        self._release(stream_id)

    # ---------------------------------------------------------------- streams

    def open_stream(self, stream_id, count, fds_per_item, initial_n):
        """Sends a stream's first response, without FD (SVC-STREAM-1); its items
        follow from produce() as credits allow."""
        tag = _stream_tag(stream_id)
        flags = fr.FLAG_NEXT if count else fr.FLAG_NEXT | fr.FLAG_COMPLETE
        self._queue_payload(stream_id, flags, lambda seq, num: md.encode_response_metadata(seq, num),
                            compact.encode_struct([]), tag=tag)
        if not count:
            self._release(stream_id)
            return
        self.streams[stream_id] = ServerStream(stream_id, count, fds_per_item, initial_n)

    def can_produce(self):
        return any(stream.credit.available() for stream in self.streams.values())

    # Limitation: a stream whose credits are spent waits for REQUEST_N as long
    # as the connection lives (STREAM-7 asks for at least 30 s); there is no
    # credit timeout.
    def produce(self):
        """Queues stream items as credits allow, one per stream in turn, while
        the output holds fewer than MAX_QUEUED_CHUNKS chunks, so that the
        pipes of an item exist only shortly before it is written."""
        progress = True
        while progress and not self.closed:
            progress = False
            for stream in list(self.streams.values()):
                if len(self.out) >= MAX_QUEUED_CHUNKS:
                    return
                if stream.credit.available():
                    self._send_item(stream)
                    progress = True

    def _send_item(self, stream):
        """Item next_index of a streamFds stream: fdsPerItem new pipe read ends
        and their report (17.5); the last item carries COMPLETE (STREAM-4)."""
        stream_id = stream.stream_id
        index = stream.next_index
        try:
            fds = _make_pipe_read_ends(stream.fds_per_item)
        except OSError as error:
            self._fail_stream(stream_id, "cannot make item %d: %s" % (index, os.strerror(error.errno)))
            return
        infos = [fdtest.fd_info(fd) for fd in fds]
        data = fdtest.encode_report_result(str(index).encode(), infos)
        last = index == stream.count - 1
        flags = fr.FLAG_NEXT | (fr.FLAG_COMPLETE if last else 0)
        self._queue_payload(stream_id, flags, md.encode_stream_payload_metadata, data, fds,
                            tag=_stream_tag(stream_id))
        stream.next_index += 1
        stream.credit.spend()
        if last:
            del self.streams[stream_id]
            self._release(stream_id)

    def _fail_stream(self, stream_id, what):
        """Ends a stream after its first response with ERROR APPLICATION_ERROR (21.2)."""
        self.log.warn("conn=%d stream=%d failed: %s" % (self.conn_id, stream_id, what))
        self.streams.pop(stream_id, None)
        data = md.encode_stream_rpc_error(what)
        self._push(stream_id, [fr.encode_error(stream_id, fr.ERROR_APPLICATION_ERROR, data)])

    def _on_cancel(self, stream_id):
        """CANCEL: nothing more is sent on the stream, items not yet begun are
        dropped with their FDs (STREAM-10, STREAM-11); on a sink it acts as the
        client's ERROR (21.6)."""
        if stream_id in self.sinks:
            self._end_sink(stream_id, "CANCEL")
            return
        stream = self.streams.pop(stream_id, None)
        closed = self.out.drop(_stream_tag(stream_id))
        if stream is not None or closed:
            self.log.info("conn=%d stream=%d cancelled: dropped items with %d FDs" % (self.conn_id, stream_id, closed))
            self._release(stream_id)

    # ------------------------------------------------------------------ sinks

    def open_sink(self, stream_id, tag):
        """Sends a sink's first response, with the extension answer (EXT-3), and
        its first credits (SINK-3, SINK-4).  COMPLETE on the REQUEST_CHANNEL is
        not looked at: the items end with the client's completion (SINK-11)."""
        accepted = [md.EXT_SINK] if md.EXT_SINK in self.offered else []
        sink = ServerSink(stream_id, tag, bool(accepted))
        self.sinks[stream_id] = sink
        self._queue_payload(stream_id, fr.FLAG_NEXT,
                            lambda seq, num: md.encode_response_metadata(seq, num, extensions=accepted),
                            compact.encode_struct([]), tag=_stream_tag(stream_id))
        self._grant(sink, SINK_WINDOW)

    def _grant(self, sink, count):
        self.out.push([fr.encode_request_n(sink.stream_id, count)], tag=_stream_tag(sink.stream_id))

    def _on_sink_message(self, msg):
        """A complete PAYLOAD on an open sink: an item (claimed first,
        FD-CARRY-3) or the client's completion (SINK-6)."""
        sink = self.sinks[msg.stream_id]
        if not msg.has(fr.FLAG_NEXT):
            self._complete_sink(sink)
            return
        fds = []
        try:
            if msg.metadata is None:
                raise Rejection("sink item without metadata")
            try:
                meta = md.decode_stream_payload_metadata(msg.metadata)
            except compact.DecodeError as error:
                raise Rejection("malformed StreamPayloadMetadata of a sink item: %s" % error) from None
            num_fds, fd_seq_num = md.fd_claim_args(meta)
            claim = self.fd_queue.claim(num_fds, fd_seq_num)
            if claim.orphans_closed:
                self.log.info("conn=%d closed %d orphan FDs (ORPHAN-1)" % (self.conn_id, claim.orphans_closed))
            if not claim.ok:
                raise Rejection(claim.reason)
            fds = claim.fds
            value = self._check_sink_item(sink, meta, msg.data, fds)
        except ClientEnded as ended:
            close_fds(fds)
            self._end_sink(sink.stream_id, "an item with exceptionMetadata (SINK-13): %s" % ended)
            return
        except Rejection as rejection:
            close_fds(fds)
            self._fail_sink(sink, rejection)
            return
        sink.infos.extend(fdtest.fd_info(fd) for fd in fds)
        close_fds(fds)
        self.log.info("conn=%d sink=%d item %s fds=%d" % (self.conn_id, sink.stream_id, _printable(value), len(fds)))
        if msg.has(fr.FLAG_COMPLETE):
            self._complete_sink(sink)
        else:
            self._grant(sink, 1)

    def _check_sink_item(self, sink, meta, data, fds):
        """The checks of a claimed sink item, in this order: the client's
        exception item (SINK-13, whatever its FDs), FDs outside the agreement
        (EXT-7), a payloadMetadata that is no result (SINK-12; absent is a
        result), data that is not {0: string} (SVC-SINK-4; an empty struct is
        not), FDs that take the sink past 253 in all (SVC-SINK-5; the FDs of
        earlier items are closed already, so the sink holds only this item's).
        Returns the item's value, or raises ClientEnded or Rejection."""
        payload_meta = meta.get("payloadMetadata", {"responseMetadata": {}})
        if "exceptionMetadata" in payload_meta:
            what = payload_meta["exceptionMetadata"].get("what_utf8", b"")
            raise ClientEnded(_printable(what))
        if fds and not sink.fds_agreed:
            raise Rejection("sink item with %d FDs without the extension sink (EXT-7)" % len(fds))
        if "responseMetadata" not in payload_meta:
            raise Rejection("sink item whose payloadMetadata has no member known (SINK-12)")
        try:
            item = compact.decode_struct(data, fdtest.SINK_SCHEMAS[b"sinkFds"][1])
        except compact.DecodeError as error:
            raise Rejection("sink item whose data is not {0: string}: %s" % error,
                            fr.ERROR_APPLICATION_ERROR) from None
        if "success" not in item:
            raise Rejection("sink item whose data has no field 0", fr.ERROR_APPLICATION_ERROR)
        if len(sink.infos) + len(fds) > fdtest.MAX_SINK_FDS:
            raise Rejection("sink items with %d FDs in all, more than %d (SVC-SINK-5)"
                            % (len(sink.infos) + len(fds), fdtest.MAX_SINK_FDS), fr.ERROR_APPLICATION_ERROR)
        return item["success"]

    def _complete_sink(self, sink):
        """The final response of 17.6, without FD, ends the sink (SINK-7, SVC-SINK-1)."""
        del self.sinks[sink.stream_id]
        data = fdtest.encode_report_result(sink.tag, sink.infos)
        self._queue_payload(sink.stream_id, fr.FLAG_NEXT | fr.FLAG_COMPLETE, md.encode_stream_payload_metadata,
                            data, tag=_stream_tag(sink.stream_id))
        self._release(sink.stream_id)
        self.log.info("conn=%d sink=%d completed fds=%d" % (self.conn_id, sink.stream_id, len(sink.infos)))

    def _fail_sink(self, sink, rejection):
        """No final response: ERROR INVALID with a ResponseRpcError (1, 6) for
        the item's framing (SINK-10, SINK-12, EXT-7), ERROR APPLICATION_ERROR
        with a StreamRpcError when the method cannot read the item or report
        its FDs (SVC-SINK-4, SVC-SINK-5)."""
        self.log.warn("conn=%d sink=%d failed: %s" % (self.conn_id, sink.stream_id, rejection.what))
        del self.sinks[sink.stream_id]
        if rejection.error_code == fr.ERROR_APPLICATION_ERROR:
            data = md.encode_stream_rpc_error(rejection.what)
        else:
            data = md.encode_response_rpc_error(rejection.what, md.CATEGORY_INVALID_REQUEST,
                                                md.CODE_REQUEST_PARSING_FAILURE)
        self._push(sink.stream_id, [fr.encode_error(sink.stream_id, rejection.error_code, data)])

    def _end_sink(self, stream_id, why):
        """SINK-9: the client gave up; nothing more is sent on the sink."""
        del self.sinks[stream_id]
        self.out.drop(_stream_tag(stream_id))
        self._release(stream_id)
        self.log.info("conn=%d sink=%d ended by %s" % (self.conn_id, stream_id, why))

    # Limitation: there is no backpressure.  A peer that sends requests without
    # reading the answers makes the output queue (and the FDs of echo answers)
    # grow until the socket drains or the connection fails.
    def flush(self):
        """Returns True when everything queued has been written."""
        if self.closed:
            return True
        try:
            return self.out.flush(self.sock)
        except SendError as error:
            self.fail(error.text)
            return True

    # ---------------------------------------------------------------- failure

    def fail(self, text, code=fr.ERROR_CONNECTION_ERROR):
        """Fails the connection (11.1): everything it owns is closed, an ERROR
        frame goes out when no frame is partly written, the socket closes."""
        if self.closed:
            return
        self.log.warn("conn=%d failed: %s" % (self.conn_id, text))
        partly_written = self.out.partly_written()
        self.out.discard()
        if not partly_written:
            try:
                self.sock.send(fr.encode_error(0, code, text.encode("utf-8")), fdsock.SEND_FLAGS)
            except OSError:
                pass
        self.close(drain=True)

    def close(self, drain=False):
        if self.closed:
            return
        self.closed = True
        if drain:
            self._drain()
        self.partial.clear()
        self.streams.clear()
        self.sinks.clear()
        self.out.discard()
        self.fd_queue.close_all()
        self.credentials.close()
        self.sock.close()

    def _drain(self):
        """Reads what the peer already sent, closing any FDs, so that the close
        reaches the peer as EOF after our ERROR frame rather than as a reset."""
        drained = 0
        for _ in range(DRAIN_READS):
            try:
                result = fdsock.receive(self.sock, self.cap)
            except fdsock.ReceiveError:
                continue
            except OSError:
                return
            if not result or not result[0]:
                return
            close_fds(result[1])
            drained += len(result[0])
            if drained >= DRAIN_LIMIT:
                return


def _printable(raw):
    """A path as text for people: undecodable bytes and control characters
    (a NUL included) escaped, so that the message is clean UTF-8."""
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(char if char.isprintable() else "\\x%02x" % ord(char) if ord(char) < 256
                   else "\\u%04x" % ord(char) for char in text)


class FdTestService:
    """The methods of section 17.

    Limitation: handlers run synchronously on the event loop; an open() on a
    slow file system delays every connection.  open() never blocks on FIFOs or
    devices (17.4 rule 6).
    """

    def __init__(self, root_fd, log):
        self.root_fd = root_fd
        self.log = log

    def handle(self, conn, request):
        handler = getattr(self, "_" + request.method.decode())
        handler(conn, request)

    def _inspect(self, conn, request):
        infos = [fdtest.fd_info(fd) for fd in request.fds]
        close_fds(request.take_fds())
        conn.respond(request.stream_id, fdtest.encode_report_result(request.args.get("tag", b""), infos))

    def _echo(self, conn, request):
        conn.respond(request.stream_id, fdtest.encode_string_result(request.args.get("tag", b"")),
                     request.take_fds())

    def _record(self, conn, request):
        infos = [fdtest.fd_info(fd) for fd in request.fds]
        close_fds(request.take_fds())
        conn.last_recorded = (request.args.get("tag", b""), infos)

    def _lastRecorded(self, conn, request):
        close_fds(request.take_fds())
        tag, infos = conn.last_recorded
        conn.respond(request.stream_id, fdtest.encode_report_result(tag, infos))

    def _open(self, conn, request):
        close_fds(request.take_fds())
        path = request.args.get("path", b"")
        try:
            if self.root_fd is None:
                raise OpenError(errno.EACCES, "no root directory: %s" % os.strerror(errno.EACCES))
            fd = open_beneath(self.root_fd, path)
        except OpenError as error:
            message = "%s: %s" % (_printable(path), os.strerror(error.errnum))
            self.log.info("conn=%d open %r failed: %s" % (conn.conn_id, path, error.text))
            conn.respond(request.stream_id, fdtest.encode_error_result(message, error.errnum),
                         exception=(fdtest.EXCEPTION_NAME, message))
            return
        conn.respond(request.stream_id, fdtest.encode_string_result(path), [fd])

    def _streamFds(self, conn, request):
        """17.5: the request's FDs are closed before the first response (SVC-STREAM-3)."""
        close_fds(request.take_fds())
        conn.open_stream(request.stream_id, request.args.get("count", 0), request.args.get("fdsPerItem", 0),
                         request.initial_n)

    def _sinkFds(self, conn, request):
        """17.6: the request's FDs are closed before the first response (SVC-SINK-3)."""
        close_fds(request.take_fds())
        conn.open_sink(request.stream_id, request.args.get("tag", b""))

    def _whoami(self, conn, request):
        """17.7: the snapshot taken at accept, whoever wrote this request; no FD back."""
        close_fds(request.take_fds())
        pid, uid, gid, pinned = request.credentials
        conn.respond(request.stream_id, fdtest.encode_peer_info_result(pid, uid, gid, pinned))


class Server:
    """Listens on a Unix socket and serves FdTest until SIGTERM or SIGINT."""

    def __init__(self, socket_path, root, log, max_connections=MAX_CONNECTIONS):
        self.socket_path = fdsock.check_socket_path(socket_path)
        self.root = root
        self.log = log
        self.max_connections = max_connections
        self.selector = None
        self.listener = None
        self.socket_identity = None
        self.connections = {}
        self.next_id = 1
        self.stopping = False
        self.accept_paused_until = None
        self.service = None

    def _open_root(self):
        if self.root is None:
            return None
        return os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def run(self):
        root_fd = self._open_root()
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        old_handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.selector = selectors.DefaultSelector()
        try:
            self._listen()
            self.service = FdTestService(root_fd, self.log)
            self.selector.register(wake_read, selectors.EVENT_READ, "wake")
            self.selector.register(self.listener, selectors.EVENT_READ, "listen")
            self.log.info("listening socket=%s root=%s" % (os.fsdecode(self.socket_path), self.root))
            self._loop(wake_read)
        finally:
            for conn in list(self.connections.values()):
                conn.close()
            self.connections.clear()
            self._remove_socket_file()
            self.selector.close()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            wake_read.close()
            wake_write.close()
            if root_fd is not None:
                os.close(root_fd)
        self.log.info("stopped")

    def _on_signal(self, signum, _frame):
        self.stopping = True

    def _listen(self):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind(self.socket_path)
            st = os.stat(self.socket_path, follow_symlinks=False)
            self.socket_identity = (st.st_dev, st.st_ino)
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            self._remove_socket_file()
            raise
        self.listener = listener

    def _remove_socket_file(self):
        """Removes the socket file only if it is still the one we created (CONTRACT-7, -8)."""
        if self.listener is not None:
            self.listener.close()
        if self.socket_identity is None:
            return
        try:
            st = os.stat(self.socket_path, follow_symlinks=False)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == self.socket_identity:
                os.unlink(self.socket_path)
        except OSError:
            pass
        self.socket_identity = None

    def _loop(self, wake_read):
        while not self.stopping:
            timeout = None
            if self.accept_paused_until is not None:
                timeout = max(0.0, self.accept_paused_until - time.monotonic())
                if timeout == 0.0:
                    self.accept_paused_until = None
                    self.selector.register(self.listener, selectors.EVENT_READ, "listen")
                    timeout = None
            for key, mask in self.selector.select(timeout):
                if key.data == "wake":
                    self._drain_wakeup(wake_read)
                elif key.data == "listen":
                    self._accept()
                else:
                    self._on_connection_event(key.data, mask)
                if self.stopping:
                    break

    @staticmethod
    def _drain_wakeup(wake_read):
        try:
            while wake_read.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _accept(self):
        for _ in range(16):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.warn("accept failed: %s; pausing accepts" % os.strerror(error.errno))
                    self.selector.unregister(self.listener)
                    self.accept_paused_until = time.monotonic() + ACCEPT_BACKOFF
                else:
                    self.log.warn("accept failed: %s" % os.strerror(error.errno))
                return
            if len(self.connections) >= self.max_connections:
                self.log.warn("connection limit %d reached: closing a new connection" % self.max_connections)
                sock.close()
                continue
            sock.setblocking(False)
            conn_id = self.next_id
            self.next_id += 1
            try:
                conn = ServerConnection(sock, conn_id, self.service, self.log)
            except OSError as error:
                self.log.warn("conn=%d setup failed: %s" % (conn_id, error))
                sock.close()
                continue
            self.connections[conn_id] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)
            self.log.info("conn=%d accepted pid=%d uid=%d" % (conn_id, conn.credentials.pid, conn.credentials.uid))

    def _on_connection_event(self, conn, mask):
        if mask & selectors.EVENT_READ:
            self._read(conn)
        self._write(conn)
        self._update_interest(conn)

    @staticmethod
    def _write(conn):
        """Makes stream items and writes them, until the socket is full, no
        stream has credit, or WRITE_ROUNDS rounds have run."""
        for _ in range(WRITE_ROUNDS):
            if conn.closed:
                return
            conn.produce()
            if not conn.flush() or not conn.can_produce():
                return

    def _read(self, conn):
        for _ in range(READS_PER_EVENT):
            if conn.closed:
                return
            try:
                result = fdsock.receive(conn.sock, conn.cap)
            except fdsock.ReceiveError as error:
                conn.fail(error.text)
                return
            except OSError as error:
                self.log.warn("conn=%d read failed: %s" % (conn.conn_id, os.strerror(error.errno)))
                conn.close()
                return
            if result is None:
                return
            data, fds = result
            if not data:
                close_fds(fds)
                conn.on_eof()
                return
            conn.on_read(data, fds)
            # Write answers as they are produced, so the peer is never starved.
            if not conn.closed and conn.out:
                conn.flush()

    def _update_interest(self, conn):
        if conn.closed:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            self.connections.pop(conn.conn_id, None)
            return
        events = selectors.EVENT_READ
        if conn.out or conn.can_produce():
            events |= selectors.EVENT_WRITE
        self.selector.modify(conn.sock, events, conn)
