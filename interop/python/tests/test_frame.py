"""Frames of section 4: round trips, the checks FRAME-1 to FRAME-6, fragmentation."""

import struct
import unittest

import helpers  # noqa: F401  (puts rocketfd_py on sys.path)
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md


def reassemble(frames):
    """Feeds frames through a FrameBuffer and PartialMessage as a receiver does."""
    buffer = fr.FrameBuffer()
    buffer.feed(b"".join(frames))
    partial = None
    messages = []
    while True:
        raw = buffer.next_frame()
        if raw is None:
            break
        frame = fr.parse_frame(raw)
        if partial is None:
            if frame.has(fr.FLAG_FOLLOWS):
                partial = fr.PartialMessage(frame)
                continue
            messages.append(fr.Message.from_frame(frame))
            continue
        assert frame.ftype == fr.PAYLOAD and frame.stream_id == partial.stream_id
        partial.append(frame)
        if not frame.has(fr.FLAG_FOLLOWS):
            messages.append(fr.Message.from_partial(partial))
            partial = None
    assert partial is None and len(buffer) == 0
    return messages


class RoundTrips(unittest.TestCase):
    def test_payload_frames(self):
        cases = [
            (fr.REQUEST_RESPONSE, 1, 0, b"meta", b"data", None),
            (fr.REQUEST_FNF, 3, 0, b"", b"data", None),
            (fr.REQUEST_STREAM, 5, 0, b"m", b"", 7),
            (fr.REQUEST_CHANNEL, 7, fr.FLAG_COMPLETE, b"m", b"d", 1),
            (fr.PAYLOAD, 9, fr.FLAG_NEXT | fr.FLAG_COMPLETE, b"m" * 300, b"d" * 300, None),
            (fr.PAYLOAD, 11, fr.FLAG_COMPLETE, b"", b"", None),
        ]
        for ftype, stream_id, flags, meta, data, initial_n in cases:
            raw = fr.encode_payload_frame(ftype, stream_id, flags, meta, data, initial_n)
            frame = fr.parse_frame(raw)
            self.assertEqual((frame.ftype, frame.stream_id), (ftype, stream_id))
            self.assertEqual(frame.metadata, meta if meta else None)
            self.assertEqual(frame.data, data)
            self.assertEqual(frame.flags & ~fr.FLAG_METADATA, flags)
            self.assertEqual(frame.has(fr.FLAG_METADATA), bool(meta))
            if initial_n is not None:
                self.assertEqual(frame.initial_n, initial_n)

    def test_control_frames(self):
        frame = fr.parse_frame(fr.encode_error(3, fr.ERROR_REJECTED, b"why"))
        self.assertEqual((frame.stream_id, frame.error_code, frame.data), (3, fr.ERROR_REJECTED, b"why"))
        frame = fr.parse_frame(fr.encode_keepalive(True, b"ping", 5))
        self.assertEqual((frame.position, frame.data, frame.has(fr.FLAG_RESPOND)), (5, b"ping", True))
        frame = fr.parse_frame(fr.encode_metadata_push(b"\x00"))
        self.assertEqual(frame.metadata, b"\x00")
        frame = fr.parse_frame(fr.encode_payload_frame(fr.EXT, 0, fr.FLAG_IGNORE, b"", b"x", 42))
        self.assertEqual((frame.ext_type, frame.data), (42, b"x"))

    def test_setup_with_resume_token(self):
        raw = bytearray(fr.encode_setup(md.encode_setup_metadata()))
        # Insert a resume token of 3 bytes after the lifetime and set RESUME_ENABLE.
        raw[7:9] = struct.pack(">H", fr.SETUP << 10 | fr.FLAG_METADATA | fr.FLAG_RESUME_ENABLE)
        raw[21:21] = b"\x00\x03tok"
        raw[0:3] = struct.pack(">I", len(raw) - 3)[1:]
        frame = fr.parse_frame(bytes(raw))
        self.assertEqual(frame.setup.resume_token, b"tok")
        self.assertEqual(frame.setup.metadata_mime, fr.METADATA_MIME)
        self.assertEqual(frame.metadata[:4], fr.PROTOCOL_KEY)


class Checks(unittest.TestCase):
    def _header(self, length, stream_id, ftype, flags, body=b""):
        return struct.pack(">I", length)[1:] + struct.pack(">IH", stream_id, ftype << 10 | flags) + body

    def assertFrameError(self, raw, requirement):
        with self.assertRaises(fr.FrameError) as caught:
            fr.parse_frame(raw)
        self.assertEqual(caught.exception.requirement, requirement)

    def test_frame_1_lengths(self):
        self.assertFrameError(b"\x00\x00\x05" + b"\x00" * 5, "FRAME-1")
        self.assertFrameError(self._header(6, 1, fr.REQUEST_N, 0), "FRAME-1")
        self.assertFrameError(self._header(8, 1, fr.PAYLOAD, fr.FLAG_METADATA | fr.FLAG_NEXT, b"\x00\x00"),
                              "FRAME-1")
        self.assertFrameError(self._header(10, 1, fr.PAYLOAD, fr.FLAG_METADATA | fr.FLAG_NEXT, b"\x00\x00\x02\x00"),
                              "FRAME-1")
        self.assertFrameError(self._header(6 + 12, 0, fr.SETUP, 0, b"\x00" * 12), "FRAME-1")
        buffer = fr.FrameBuffer()
        buffer.feed(b"\x00\x00\x02")
        with self.assertRaises(fr.FrameError):
            buffer.next_frame()

    def test_frame_3_reserved_flags(self):
        for bit in (1, 2, 4, 8, 16):
            self.assertFrameError(self._header(6, 1, fr.CANCEL, bit), "FRAME-3")

    def test_frame_4_unknown_types(self):
        for ftype in (0x00, 0x02, 0x0D, 0x0E, 0x10, 0x3E):
            self.assertFrameError(self._header(6, 1, ftype, 0), "FRAME-4")

    def test_frame_5_metadata_on_control_frames(self):
        self.assertFrameError(self._header(6, 1, fr.CANCEL, fr.FLAG_METADATA), "FRAME-5")
        self.assertFrameError(self._header(14, 0, fr.KEEPALIVE, fr.FLAG_METADATA, b"\x00" * 8), "FRAME-5")
        self.assertFrameError(self._header(10, 1, fr.ERROR, fr.FLAG_METADATA, b"\x00" * 4), "FRAME-5")
        self.assertFrameError(self._header(10, 1, fr.REQUEST_N, fr.FLAG_METADATA, b"\x00" * 4), "FRAME-5")

    def test_frame_6_stream_ids(self):
        self.assertFrameError(self._header(14, 1, fr.KEEPALIVE, 0, b"\x00" * 8), "FRAME-6")
        self.assertFrameError(self._header(6, 1, fr.METADATA_PUSH, fr.FLAG_METADATA), "FRAME-6")
        for ftype in (fr.REQUEST_RESPONSE, fr.REQUEST_FNF, fr.CANCEL, fr.PAYLOAD):
            self.assertFrameError(self._header(6, 0, ftype, fr.FLAG_NEXT if ftype == fr.PAYLOAD else 0), "FRAME-6")

    def test_frame_7_decided_from_the_frame_alone(self):
        # A PAYLOAD with none of NEXT, COMPLETE, FOLLOWS fails, continuation or not.
        self.assertFrameError(self._header(6, 1, fr.PAYLOAD, 0), "FRAME-7")
        self.assertFrameError(self._header(6, 1, fr.PAYLOAD, fr.FLAG_IGNORE), "FRAME-7")
        for flags in (fr.FLAG_NEXT, fr.FLAG_COMPLETE, fr.FLAG_FOLLOWS):
            self.assertEqual(fr.parse_frame(self._header(6, 1, fr.PAYLOAD, flags)).flags, flags)

    def test_frame_21_undefined_bits_are_kept_but_mean_nothing(self):
        cases = [
            (fr.CANCEL, 1, 0x080 | fr.FLAG_IGNORE | fr.FLAG_COMPLETE | fr.FLAG_NEXT, b""),
            (fr.REQUEST_N, 1, 0x080 | fr.FLAG_IGNORE, b"\x00\x00\x00\x00"),
            (fr.ERROR, 3, 0x080 | fr.FLAG_IGNORE, b"\xff\xff\xff\xff"),
            (fr.KEEPALIVE, 0, fr.FLAG_IGNORE | fr.FLAG_COMPLETE | fr.FLAG_NEXT, b"\xff" * 8),
            (fr.REQUEST_RESPONSE, 1, fr.FLAG_IGNORE | fr.FLAG_COMPLETE | fr.FLAG_NEXT, b""),
            (fr.METADATA_PUSH, 0, fr.FLAG_IGNORE | 0x080, b"\x00"),
            (fr.EXT, 1, fr.FLAG_IGNORE | 0x080 | fr.FLAG_NEXT, b"\xff\xff\xff\xff"),
        ]
        for ftype, stream_id, flags, body in cases:
            with self.subTest(ftype=ftype):
                frame = fr.parse_frame(self._header(6 + len(body), stream_id, ftype, flags, body))
                self.assertEqual((frame.ftype, frame.flags), (ftype, flags))
        # A METADATA_PUSH without METADATA carries no metadata (4.3).
        push = fr.parse_frame(self._header(8, 0, fr.METADATA_PUSH, 0, b"\x1c\x00"))
        self.assertIsNone(push.metadata)

    def test_frame_23_unused_fixed_values(self):
        frames = [
            self._header(14, 0, fr.KEEPALIVE, 0, b"\xff" * 8),
            self._header(10, 1, fr.REQUEST_N, 0, b"\x00" * 4),
            self._header(10, 1, fr.REQUEST_N, 0, b"\xff" * 4),
            self._header(10, 1, fr.REQUEST_STREAM, 0, b"\xff" * 4),
            self._header(10, 1, fr.EXT, fr.FLAG_IGNORE, b"\x00" * 4),
            self._header(10, 1, fr.ERROR, 0, b"\x00" * 4),
            fr.encode_setup(b"", major=1, minor=0)[:13] + b"\x00" * 8 + fr.encode_setup(b"")[21:],
        ]
        for raw in frames:
            fr.parse_frame(raw)

    def test_frame_24_high_stream_ids(self):
        for stream_id in (1 << 31, (1 << 31) + 1, (1 << 32) - 1):
            frame = fr.parse_frame(fr.encode_payload_frame(fr.REQUEST_RESPONSE, stream_id, 0, b"m", b""))
            self.assertEqual(frame.stream_id, stream_id)

    def test_frame_22_senders_set_only_defined_flags(self):
        defined = {
            fr.SETUP: fr.FLAG_METADATA | fr.FLAG_RESUME_ENABLE | fr.FLAG_LEASE,
            fr.KEEPALIVE: fr.FLAG_RESPOND,
            fr.REQUEST_RESPONSE: fr.FLAG_METADATA | fr.FLAG_FOLLOWS,
            fr.REQUEST_FNF: fr.FLAG_METADATA | fr.FLAG_FOLLOWS,
            fr.REQUEST_STREAM: fr.FLAG_METADATA | fr.FLAG_FOLLOWS,
            fr.CANCEL: 0, fr.ERROR: 0, fr.REQUEST_N: 0,
            fr.PAYLOAD: fr.FLAG_METADATA | fr.FLAG_FOLLOWS | fr.FLAG_COMPLETE | fr.FLAG_NEXT,
            fr.METADATA_PUSH: fr.FLAG_METADATA,
        }
        frames = [fr.encode_setup(b"\xf0\x9f\x9a\x80\x00"), fr.encode_keepalive(True, b"x"),
                  fr.encode_keepalive(False), fr.encode_cancel(1), fr.encode_error(1, 1, b"x"),
                  fr.encode_request_n(1, 1), fr.encode_metadata_push(b"\x00")]
        for ftype in (fr.REQUEST_RESPONSE, fr.REQUEST_FNF, fr.REQUEST_STREAM):
            frames += fr.encode_message(ftype, 1, 0, b"m" * 10, b"d" * 600, fragment_size=256)
        frames += fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT | fr.FLAG_COMPLETE, b"m" * 10, b"d" * 600,
                                    fragment_size=256)
        for raw in frames:
            frame = fr.parse_frame(raw)
            self.assertEqual(frame.flags & ~defined[frame.ftype], 0, frame.describe())
        keepalive = fr.parse_frame(fr.encode_keepalive(False, b"data"))
        self.assertEqual(keepalive.position, 0)  # FRAME-27

    def test_frame_2_senders_set_no_reserved_bit(self):
        raw = fr.encode_payload_frame(fr.PAYLOAD, 1, 0xFFFF & ~fr.FLAGS_RESERVED & 0x3FF, b"m", b"d")
        self.assertEqual(struct.unpack(">H", raw[7:9])[0] & fr.FLAGS_RESERVED, 0)


class Fragmentation(unittest.TestCase):
    def test_small_message_is_one_frame(self):
        self.assertEqual(len(fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, b"m", b"d")), 1)

    def test_request_fragments(self):
        meta = bytes(range(200)) * 3
        data = b"d" * 1000
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 5, 0, meta, data, fragment_size=256)
        self.assertGreater(len(frames), 2)
        parsed = [fr.parse_frame(raw) for raw in frames]
        self.assertEqual(parsed[0].ftype, fr.REQUEST_RESPONSE)
        for frame in parsed[1:]:
            self.assertEqual(frame.ftype, fr.PAYLOAD)
            self.assertTrue(frame.has(fr.FLAG_NEXT))
        for frame in parsed[:-1]:
            self.assertTrue(frame.has(fr.FLAG_FOLLOWS))
            self.assertEqual(len(frame.metadata or b"") + len(frame.data), 256)
        self.assertFalse(parsed[-1].has(fr.FLAG_FOLLOWS))
        # Metadata first, then data; METADATA only on fragments with metadata bytes.
        self.assertTrue(all(frame.has(fr.FLAG_METADATA) == bool(frame.metadata) for frame in parsed))
        seen_data = False
        for frame in parsed:
            if seen_data:
                self.assertFalse(frame.metadata)
            seen_data = seen_data or bool(frame.data)
        [message] = reassemble(frames)
        self.assertEqual((message.ftype, message.metadata, message.data), (fr.REQUEST_RESPONSE, meta, data))

    def test_payload_fragments(self):
        frames = fr.encode_message(fr.PAYLOAD, 7, fr.FLAG_NEXT | fr.FLAG_COMPLETE, b"m" * 10, b"x" * 1000,
                                   fragment_size=300)
        parsed = [fr.parse_frame(raw) for raw in frames]
        self.assertEqual(parsed[-1].flags & (fr.FLAG_NEXT | fr.FLAG_COMPLETE | fr.FLAG_FOLLOWS),
                         fr.FLAG_NEXT | fr.FLAG_COMPLETE)
        for frame in parsed[:-1]:
            self.assertEqual(frame.flags & (fr.FLAG_NEXT | fr.FLAG_COMPLETE | fr.FLAG_FOLLOWS),
                             fr.FLAG_NEXT | fr.FLAG_FOLLOWS)
        [message] = reassemble(frames)
        self.assertTrue(message.has(fr.FLAG_NEXT) and message.has(fr.FLAG_COMPLETE))
        self.assertEqual((message.metadata, message.data), (b"m" * 10, b"x" * 1000))

    def test_exact_boundaries(self):
        for total in (255, 256, 257, 512, 513):
            frames = fr.encode_message(fr.REQUEST_FNF, 1, 0, b"", b"z" * total, fragment_size=256)
            self.assertEqual(len(frames), (total + 255) // 256)
            [message] = reassemble(frames)
            self.assertEqual(message.data, b"z" * total)
            self.assertIsNone(message.metadata)

    def test_default_fragment_size_is_fbthrift_s(self):
        data = b"y" * (fr.FRAGMENT_PAYLOAD + 1)
        frames = fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT | fr.FLAG_COMPLETE, b"meta", data)
        self.assertEqual(len(frames), 2)
        self.assertTrue(all(len(raw) - 3 <= fr.MAX_FRAME_LENGTH for raw in frames))
        [message] = reassemble(frames)
        self.assertEqual(message.data, data)


if __name__ == "__main__":
    unittest.main()
