"""Rocket frames as spec section 4 uses them: layouts, checks, fragmentation, reassembly."""

import struct as _struct

SETUP = 0x01
KEEPALIVE = 0x03
REQUEST_RESPONSE = 0x04
REQUEST_FNF = 0x05
REQUEST_STREAM = 0x06
REQUEST_CHANNEL = 0x07
REQUEST_N = 0x08
CANCEL = 0x09
PAYLOAD = 0x0A
ERROR = 0x0B
METADATA_PUSH = 0x0C
EXT = 0x3F

TYPE_NAMES = {
    SETUP: "SETUP", KEEPALIVE: "KEEPALIVE", REQUEST_RESPONSE: "REQUEST_RESPONSE",
    REQUEST_FNF: "REQUEST_FNF", REQUEST_STREAM: "REQUEST_STREAM", REQUEST_CHANNEL: "REQUEST_CHANNEL",
    REQUEST_N: "REQUEST_N", CANCEL: "CANCEL", PAYLOAD: "PAYLOAD", ERROR: "ERROR",
    METADATA_PUSH: "METADATA_PUSH", EXT: "EXT",
}
REQUEST_TYPES = (REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL)

FLAG_IGNORE = 0x200
FLAG_METADATA = 0x100
FLAG_FOLLOWS = 0x080
FLAG_RESPOND = 0x080
FLAG_RESUME_ENABLE = 0x080
FLAG_COMPLETE = 0x040
FLAG_LEASE = 0x040
FLAG_NEXT = 0x020
FLAGS_RESERVED = 0x01F

ERROR_INVALID_SETUP = 0x00000001
ERROR_UNSUPPORTED_SETUP = 0x00000002
ERROR_REJECTED_SETUP = 0x00000003
ERROR_CONNECTION_ERROR = 0x00000101
ERROR_CONNECTION_CLOSE = 0x00000102
ERROR_APPLICATION_ERROR = 0x00000201
ERROR_REJECTED = 0x00000202
ERROR_CANCELED = 0x00000203
ERROR_INVALID = 0x00000204

HEADER_SIZE = 9          # u24 length, u32 stream id, u16 type and flags
MIN_FRAME_LENGTH = 6     # the length field counts stream id and type/flags at least
MAX_FRAME_LENGTH = (1 << 24) - 1
FRAGMENT_PAYLOAD = 0xFFFFFF - 512  # metadata + data bytes per fragment, as fbthrift
DEFAULT_MAX_MESSAGE = 64 << 20

METADATA_MIME = b"application/x-rocket-metadata+compact"
METADATA_MIME_BINARY = b"application/x-rocket-metadata+binary"
DATA_MIME = b"application/x-rocket-payload"
PROTOCOL_KEY = b"\xf0\x9f\x9a\x80"
SETUP_INTERVAL = 0x7FFFFFFF

# Size of the fixed type-specific fields after the 9-byte header.
_FIXED_SIZE = {
    REQUEST_STREAM: 4, REQUEST_CHANNEL: 4, REQUEST_N: 4, ERROR: 4, KEEPALIVE: 8, EXT: 4,
}
_PAYLOAD_TYPES = (REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL, PAYLOAD, EXT)
_NO_METADATA_TYPES = (KEEPALIVE, REQUEST_N, CANCEL, ERROR)
_STREAM_ZERO_TYPES = (SETUP, KEEPALIVE, METADATA_PUSH)
_STREAM_NONZERO_TYPES = REQUEST_TYPES + (REQUEST_N, CANCEL, PAYLOAD)


class FrameError(Exception):
    """A frame breaks section 4: the connection must fail (11.2 item 4)."""

    def __init__(self, requirement, text):
        super().__init__("%s: %s" % (requirement, text))
        self.requirement = requirement
        self.text = text


class Frame:
    """One decoded frame.  metadata is None when the METADATA flag is absent."""

    __slots__ = ("stream_id", "ftype", "flags", "metadata", "data", "initial_n", "error_code",
                 "position", "ext_type", "setup", "size")

    def __init__(self, stream_id, ftype, flags):
        self.stream_id = stream_id
        self.ftype = ftype
        self.flags = flags
        self.metadata = None
        self.data = b""
        self.initial_n = None
        self.error_code = None
        self.position = None
        self.ext_type = None
        self.setup = None
        self.size = 0

    def has(self, flag):
        return bool(self.flags & flag)

    def describe(self):
        parts = ["%s stream=%d flags=0x%03x" % (TYPE_NAMES.get(self.ftype, "type%d" % self.ftype),
                                                self.stream_id, self.flags)]
        if self.metadata is not None:
            parts.append("metadata=%d" % len(self.metadata))
        if self.data:
            parts.append("data=%d" % len(self.data))
        if self.error_code is not None:
            parts.append("code=0x%x" % self.error_code)
        return " ".join(parts)


class SetupInfo:
    __slots__ = ("major", "minor", "keepalive", "lifetime", "resume_token", "metadata_mime",
                 "data_mime")


# ---------------------------------------------------------------------------
# Encoding


def _header(body_length, stream_id, ftype, flags):
    length = body_length + 6
    if length > MAX_FRAME_LENGTH:
        raise ValueError("frame of %d bytes does not fit the 24-bit length" % length)
    return _struct.pack(">I", length)[1:] + _struct.pack(">IH", stream_id, ftype << 10 | flags)


def _payload_part(metadata, data):
    if metadata:
        return _struct.pack(">I", len(metadata))[1:] + bytes(metadata) + bytes(data)
    return bytes(data)


def encode_payload_frame(ftype, stream_id, flags, metadata=b"", data=b"", initial_n=None):
    """REQUEST_*, PAYLOAD or EXT; METADATA is set exactly when metadata is non-empty."""
    flags &= ~FLAG_METADATA
    if metadata:
        flags |= FLAG_METADATA
    fixed = b""
    if ftype in (REQUEST_STREAM, REQUEST_CHANNEL, EXT):
        fixed = _struct.pack(">I", initial_n or 0)
    body = fixed + _payload_part(metadata, data)
    return _header(len(body), stream_id, ftype, flags) + body


def encode_setup(setup_metadata, data=b"", metadata_mime=METADATA_MIME, data_mime=DATA_MIME,
                 major=1, minor=0, flags=0):
    """SETUP as 5.1 lays it out; setup_metadata includes the protocol key."""
    body = _struct.pack(">HHII", major, minor, SETUP_INTERVAL, SETUP_INTERVAL)
    body += bytes([len(metadata_mime)]) + metadata_mime + bytes([len(data_mime)]) + data_mime
    if setup_metadata:
        flags |= FLAG_METADATA
    body += _payload_part(setup_metadata, data)
    return _header(len(body), 0, SETUP, flags) + body


def encode_error(stream_id, code, data=b""):
    if isinstance(data, str):
        data = data.encode("utf-8")
    body = _struct.pack(">I", code) + data
    return _header(len(body), stream_id, ERROR, 0) + body


def encode_keepalive(respond=False, data=b"", position=0):
    body = _struct.pack(">Q", position) + data
    return _header(len(body), 0, KEEPALIVE, FLAG_RESPOND if respond else 0) + body


def encode_request_n(stream_id, count):
    return _header(4, stream_id, REQUEST_N, 0) + _struct.pack(">I", count)


def encode_cancel(stream_id):
    return _header(0, stream_id, CANCEL, 0)


def encode_metadata_push(metadata):
    return _header(len(metadata), 0, METADATA_PUSH, FLAG_METADATA) + metadata


def encode_message(ftype, stream_id, flags, metadata, data, initial_n=None, fragment_size=FRAGMENT_PAYLOAD):
    """Encodes one message as a list of frames, fragmented as 4.5 says when the
    metadata and data exceed fragment_size bytes.

    flags: the message's own flags (NEXT, COMPLETE for a PAYLOAD); FOLLOWS and
    METADATA are managed here.
    """
    metadata = bytes(metadata or b"")
    data = memoryview(bytes(data or b""))
    flags &= ~(FLAG_FOLLOWS | FLAG_METADATA)
    if len(metadata) + len(data) <= fragment_size:
        return [encode_payload_frame(ftype, stream_id, flags, metadata, data, initial_n)]

    frames = []
    meta_pos = data_pos = 0
    first = True
    while first or meta_pos < len(metadata) or data_pos < len(data):
        meta_slice = metadata[meta_pos:meta_pos + fragment_size]
        meta_pos += len(meta_slice)
        data_slice = data[data_pos:data_pos + fragment_size - len(meta_slice)]
        data_pos += len(data_slice)
        last = meta_pos >= len(metadata) and data_pos >= len(data)
        frame_type = ftype if first else PAYLOAD
        frame_flags = _fragment_flags(ftype, flags, first, last)
        frames.append(encode_payload_frame(frame_type, stream_id, frame_flags, meta_slice, data_slice,
                                           initial_n if first else None))
        first = False
    return frames


def _fragment_flags(ftype, flags, first, last):
    """Flags of one fragment of a message whose own flags are flags (4.5)."""
    if ftype != PAYLOAD:
        if first:
            return flags if last else flags | FLAG_FOLLOWS
        return FLAG_NEXT if last else FLAG_NEXT | FLAG_FOLLOWS
    if last:
        return flags
    if first and not flags & FLAG_NEXT:
        # Keeps COMPLETE so that the first fragment has NEXT or COMPLETE (FRAME-7).
        return flags | FLAG_FOLLOWS
    return (flags & FLAG_NEXT) | FLAG_FOLLOWS


# ---------------------------------------------------------------------------
# Decoding


def _u24(buf, pos):
    return buf[pos] << 16 | buf[pos + 1] << 8 | buf[pos + 2]


def _parse_payload(frame, body, pos):
    """Splits body[pos:] into metadata (when flagged) and data (FRAME-1)."""
    if frame.flags & FLAG_METADATA:
        if len(body) - pos < 3:
            raise FrameError("FRAME-1", "frame too short for its metadata length")
        meta_len = _u24(body, pos)
        pos += 3
        if meta_len > len(body) - pos:
            raise FrameError("FRAME-1", "metadata length %d exceeds the %d bytes that follow"
                             % (meta_len, len(body) - pos))
        frame.metadata = bytes(body[pos:pos + meta_len])
        pos += meta_len
    frame.data = bytes(body[pos:])


def _parse_setup(frame, body):
    info = SetupInfo()
    if len(body) < 12:
        raise FrameError("FRAME-1", "SETUP too short for its fixed fields")
    info.major, info.minor, info.keepalive, info.lifetime = _struct.unpack_from(">HHII", body, 0)
    pos = 12
    info.resume_token = None
    if frame.flags & FLAG_RESUME_ENABLE:
        if len(body) - pos < 2:
            raise FrameError("FRAME-1", "SETUP too short for its resume token length")
        (token_len,) = _struct.unpack_from(">H", body, pos)
        pos += 2
        if token_len > len(body) - pos:
            raise FrameError("FRAME-1", "SETUP resume token runs past the frame")
        info.resume_token = bytes(body[pos:pos + token_len])
        pos += token_len
    mimes = []
    for _ in range(2):
        if pos >= len(body):
            raise FrameError("FRAME-1", "SETUP too short for its MIME types")
        mime_len = body[pos]
        pos += 1
        if mime_len > len(body) - pos:
            raise FrameError("FRAME-1", "SETUP MIME type runs past the frame")
        mimes.append(bytes(body[pos:pos + mime_len]))
        pos += mime_len
    info.metadata_mime, info.data_mime = mimes
    frame.setup = info
    _parse_payload(frame, body, pos)


def parse_frame(buf):
    """Decodes one whole frame (length field included) and applies the
    context-free checks FRAME-1 to FRAME-7; raises FrameError.

    Flag bits a type does not define are kept in flags but mean nothing
    (FRAME-21): only the bits the type defines are ever tested.  Stream ids
    are whole u32 values (FRAME-24)."""
    length = _u24(buf, 0)
    if length < MIN_FRAME_LENGTH:
        raise FrameError("FRAME-1", "frame length %d below 6" % length)
    stream_id, type_flags = _struct.unpack_from(">IH", buf, 3)
    ftype = type_flags >> 10
    flags = type_flags & 0x3FF
    frame = Frame(stream_id, ftype, flags)
    frame.size = length + 3
    if flags & FLAGS_RESERVED:
        raise FrameError("FRAME-3", "reserved flag bits 0x%03x set" % (flags & FLAGS_RESERVED))
    if ftype not in TYPE_NAMES:
        raise FrameError("FRAME-4", "unknown frame type 0x%02x" % ftype)
    if ftype in _NO_METADATA_TYPES and flags & FLAG_METADATA:
        raise FrameError("FRAME-5", "%s with the METADATA flag" % TYPE_NAMES[ftype])
    if ftype in _STREAM_ZERO_TYPES and stream_id != 0:
        raise FrameError("FRAME-6", "%s on stream %d" % (TYPE_NAMES[ftype], stream_id))
    if ftype in _STREAM_NONZERO_TYPES and stream_id == 0:
        raise FrameError("FRAME-6", "%s on stream 0" % TYPE_NAMES[ftype])
    if ftype == PAYLOAD and not flags & (FLAG_NEXT | FLAG_COMPLETE | FLAG_FOLLOWS):
        raise FrameError("FRAME-7", "PAYLOAD with none of NEXT, COMPLETE and FOLLOWS")

    body = memoryview(buf)[HEADER_SIZE:length + 3]
    fixed = _FIXED_SIZE.get(ftype, 0)
    if len(body) < fixed:
        raise FrameError("FRAME-1", "%s too short for its fixed fields" % TYPE_NAMES[ftype])
    if ftype == SETUP:
        _parse_setup(frame, body)
    elif ftype in (REQUEST_STREAM, REQUEST_CHANNEL):
        (frame.initial_n,) = _struct.unpack_from(">I", body, 0)
        _parse_payload(frame, body, 4)
    elif ftype == EXT:
        (frame.ext_type,) = _struct.unpack_from(">I", body, 0)
        _parse_payload(frame, body, 4)
    elif ftype in _PAYLOAD_TYPES:
        _parse_payload(frame, body, 0)
    elif ftype == REQUEST_N:
        (frame.initial_n,) = _struct.unpack_from(">I", body, 0)
    elif ftype == ERROR:
        (frame.error_code,) = _struct.unpack_from(">I", body, 0)
        frame.data = bytes(body[4:])
    elif ftype == KEEPALIVE:
        (frame.position,) = _struct.unpack_from(">Q", body, 0)
        frame.data = bytes(body[8:])
    elif ftype == METADATA_PUSH:
        if flags & FLAG_METADATA:
            frame.metadata = bytes(body)
        else:
            frame.data = bytes(body)
    return frame


class FrameBuffer:
    """Accumulates bytes from reads and cuts them into whole frames."""

    def __init__(self, max_frame=MAX_FRAME_LENGTH):
        self.buf = bytearray()
        self.pos = 0
        self.max_frame = max_frame

    def __len__(self):
        return len(self.buf) - self.pos

    def feed(self, data):
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def next_frame(self):
        """The next whole frame's bytes, or None; raises FrameError on a bad length."""
        available = len(self.buf) - self.pos
        if available < 3:
            return None
        length = _u24(self.buf, self.pos)
        if length < MIN_FRAME_LENGTH:
            raise FrameError("FRAME-1", "frame length %d below 6" % length)
        if length > self.max_frame:
            raise FrameError("LIMIT-7", "frame length %d above the maximum of %d" % (length, self.max_frame))
        if available < length + 3:
            return None
        frame = bytes(self.buf[self.pos:self.pos + length + 3])
        self.pos += length + 3
        return frame


class PartialMessage:
    """A message being reassembled from fragments (FRAME-10)."""

    __slots__ = ("stream_id", "ftype", "flags", "metadata", "data", "initial_n", "has_metadata")

    def __init__(self, frame):
        self.stream_id = frame.stream_id
        self.ftype = frame.ftype
        self.flags = frame.flags
        self.initial_n = frame.initial_n
        self.metadata = bytearray(frame.metadata or b"")
        self.data = bytearray(frame.data)
        self.has_metadata = frame.metadata is not None

    def size(self):
        return len(self.metadata) + len(self.data)

    def append(self, frame):
        if frame.metadata is not None:
            self.metadata += frame.metadata
            self.has_metadata = True
        self.data += frame.data
        # NEXT and COMPLETE of the message are those of its last fragment.
        self.flags = (self.flags & ~(FLAG_NEXT | FLAG_COMPLETE | FLAG_FOLLOWS)) | (
            frame.flags & (FLAG_NEXT | FLAG_COMPLETE | FLAG_FOLLOWS))


class Message:
    """One complete logical payload: a request, a response or a stream item."""

    __slots__ = ("stream_id", "ftype", "flags", "metadata", "data", "initial_n")

    def __init__(self, stream_id, ftype, flags, metadata, data, initial_n=None):
        self.stream_id = stream_id
        self.ftype = ftype
        self.flags = flags
        self.metadata = metadata
        self.data = data
        self.initial_n = initial_n

    @classmethod
    def from_frame(cls, frame):
        return cls(frame.stream_id, frame.ftype, frame.flags, frame.metadata, frame.data, frame.initial_n)

    @classmethod
    def from_partial(cls, partial):
        metadata = bytes(partial.metadata) if partial.has_metadata else None
        return cls(partial.stream_id, partial.ftype, partial.flags, metadata, bytes(partial.data),
                   partial.initial_n)

    def has(self, flag):
        return bool(self.flags & flag)
