"""The Compact protocol subset of section 6.1: encoding, skipping, refusing."""

import unittest

from helpers import unhex

from rocketfd_py import compact as c
from rocketfd_py import metadata as md

FD_ONLY = {22: ("fdMetadata", c.STRUCT, md.FD_METADATA)}


class Varints(unittest.TestCase):
    def test_section_6_1_examples(self):
        self.assertEqual(c.varint(300), b"\xac\x02")
        self.assertEqual(c.varint(c.zigzag(1)), b"\x02")
        self.assertEqual(c.varint(c.zigzag(-1)), b"\x01")
        self.assertEqual(c.varint(c.zigzag(10)), b"\x14")
        self.assertEqual(c.varint(c.zigzag(22, 16)), b"\x2c")

    def test_zigzag_round_trip(self):
        for value in (0, 1, -1, 2, -2, 63, -64, 2**31 - 1, -2**31, 2**63 - 1, -2**63):
            self.assertEqual(c.unzigzag(c.zigzag(value)), value)
            self.assertEqual(c.Reader(c.varint(c.zigzag(value))).integer(c.I64), value)

    def test_zigzag_range(self):
        with self.assertRaises(ValueError):
            c.zigzag(2**31, 32)
        with self.assertRaises(ValueError):
            c.zigzag(2**63)

    def test_overlong_and_oversized_varints(self):
        with self.assertRaises(c.DecodeError):
            c.Reader(b"\xff" * 10 + b"\x01").varint()
        with self.assertRaises(c.DecodeError):
            c.Reader(b"\xff" * 9 + b"\x7f").varint()  # 70 bits
        with self.assertRaises(c.DecodeError):
            c.Reader(b"\x80\x80").varint()  # truncated

    def test_i32_out_of_range(self):
        with self.assertRaises(c.DecodeError):
            c.Reader(c.varint(c.zigzag(2**31))).integer(c.I32)


class FieldHeaders(unittest.TestCase):
    def test_long_headers(self):
        # Section 6.1: field 22 after field 3 is "0c 2c"; field 0 string is "08 00".
        blob = c.encode_struct([(3, c.I32, 0), (22, c.STRUCT, [])])
        self.assertEqual(blob, unhex("35 00 0c 2c 00 00"))
        self.assertEqual(c.encode_struct([(0, c.BINARY, b"")]), unhex("08 00 00 00"))

    def test_bools_in_headers(self):
        self.assertEqual(c.encode_struct([(1, c.BOOL, True), (2, c.BOOL, False)]), unhex("11 12 00"))
        schema = {1: ("a", c.BOOL, None), 2: ("b", c.BOOL, None)}
        self.assertEqual(c.decode_struct(unhex("11 12 00"), schema), {"a": True, "b": False})

    def test_descending_ids_use_long_form(self):
        blob = c.encode_struct([(5, c.I32, 1), (2, c.I32, 2)])
        self.assertEqual(blob, unhex("55 02 05 04 04 00"))
        schema = {5: ("five", c.I32, None), 2: ("two", c.I32, None)}
        self.assertEqual(c.decode_struct(blob, schema), {"five": 1, "two": 2})


class Skipping(unittest.TestCase):
    """META-2: unknown fields of every type, at any depth, are skipped."""

    def _with_unknown(self, unknown_fields):
        return c.encode_struct(unknown_fields + [(22, c.STRUCT, md.fd_metadata_fields(4, 2))])

    def test_every_type(self):
        unknown = [
            (1, c.BOOL, True), (2, c.BOOL, False), (3, c.BYTE, -5), (4, c.I16, -300), (5, c.I32, 70000),
            (6, c.I64, -2**40), (7, c.DOUBLE, 1.5), (8, c.BINARY, b"\x00\xffbytes"),
            (9, c.LIST, (c.I32, list(range(20)))), (10, c.SET, (c.BINARY, [b"a", b"b"])),
            (11, c.MAP, (c.BINARY, c.STRUCT, [(b"k", [(1, c.I32, 1)]), (b"l", [])])),
            (12, c.STRUCT, [(1, c.LIST, (c.BOOL, [True, False, True])), (2, c.MAP, (c.I32, c.BOOL, [(1, True)]))]),
            (13, c.MAP, (c.I32, c.I32, [])), (14, c.LIST, (c.STRUCT, [])),
        ]
        decoded = c.decode_struct(self._with_unknown(unknown), FD_ONLY)
        self.assertEqual(decoded, {"fdMetadata": {"fdSeqNum": 4, "numFds": 2}})

    def test_unknown_inside_known(self):
        inner = [(1, c.I64, 9), (2, c.I32, 3), (7, c.STRUCT, [(1, c.STRUCT, [(1, c.BINARY, b"deep")])])]
        blob = c.encode_struct([(22, c.STRUCT, inner)])
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {"fdMetadata": {"fdSeqNum": 9, "numFds": 3}})

    def test_deep_nesting_without_recursion(self):
        depth = 5000
        blob = b"\x1c" * depth + b"\x00" * (depth + 1)  # field 1 (struct) nested 5000 times
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {})
        deep_lists = b"\x19" + b"\x19" * depth + b"\x09" + b"\x00"  # list of list of ... empty list
        self.assertEqual(c.decode_struct(deep_lists, FD_ONLY), {})

    def test_bool_list_bytes(self):
        # Elements of a bool list are one byte each, whatever their value.
        blob = unhex("19 31 01 02 01 00")
        self.assertEqual(c.decode_struct(blob, {}), {})


class Refusing(unittest.TestCase):
    """META-3: not exactly one struct is malformed."""

    def test_truncated(self):
        blob = c.encode_struct([(22, c.STRUCT, md.fd_metadata_fields(0, 1))])
        for cut in range(len(blob)):
            with self.assertRaises(c.DecodeError, msg="cut at %d" % cut):
                c.decode_struct(blob[:cut], FD_ONLY)

    def test_trailing_bytes(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("00 00"), FD_ONLY)

    def test_wrong_type_of_known_field(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("0c 2c 15 00 00 00"), FD_ONLY)  # fdSeqNum as i32
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("05 2c 02 00"), FD_ONLY)  # fdMetadata as i32

    def test_unknown_type_codes(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("1d 00"), {})
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 1d 00 00"), {})

    def test_list_size_beyond_bytes(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 f5 ff ff ff ff 0f 00"), {})
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("1b ff ff 03 55 00"), {})


if __name__ == "__main__":
    unittest.main()
