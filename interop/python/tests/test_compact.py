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
        # Elements of a bool list are one byte each: 1 true, 2 false, 0 false (6.1).
        blob = unhex("19 41 01 02 00 01 00")
        self.assertEqual(c.decode_struct(blob, {}), {})
        schema = {1: ("flags", c.LIST, (c.BOOL, None))}
        self.assertEqual(c.decode_struct(blob, schema), {"flags": [True, False, False, True]})

    def test_float_is_four_bytes(self):
        # Type 13 is fbthrift's 4-byte float, skipped by its size (6.1).
        blob = unhex("1d 3f c0 00 00 0c 2c 16 02 15 02 00 00")
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {"fdMetadata": {"fdSeqNum": 1, "numFds": 1}})
        self.assertEqual(c.decode_struct(unhex("19 2d 3f c0 00 00 40 00 00 00 00"), {}), {})
        self.assertEqual(c.decode_struct(unhex("1d 3f c0 00 00 00"), {1: ("f", c.FLOAT, None)}), {"f": 1.5})

    def test_doubles_are_big_endian(self):
        self.assertEqual(c.encode_struct([(1, c.DOUBLE, 1.5)]), unhex("17 3f f8 00 00 00 00 00 00 00"))
        self.assertEqual(c.decode_struct(unhex("17 3f f8 00 00 00 00 00 00 00"), {1: ("d", c.DOUBLE, None)}),
                         {"d": 1.5})

    def test_empty_collections_of_every_type(self):
        for elem_type in range(1, 14):
            self.assertEqual(c.decode_struct(bytes([0x19, elem_type, 0]), {}), {}, elem_type)

    def test_negative_field_ids_are_unknown(self):
        # Long header: type i32, id -1 (zigzag 01), value 5; then fdMetadata.
        blob = unhex("05 01 0a") + c.encode_struct([(22, c.STRUCT, md.fd_metadata_fields(3, 1))])
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {"fdMetadata": {"fdSeqNum": 3, "numFds": 1}})

    def test_repeated_field_replaces_whole(self):
        first = md.fd_metadata_fields(7, 2)
        second = [(2, c.I32, 1)]
        blob = c.encode_struct([(22, c.STRUCT, first)])[:-1] + c.encode_struct([(22, c.STRUCT, second)])
        # The second fdMetadata has only numFds: fdSeqNum of the first is not merged in.
        self.assertEqual(blob.count(b"\x0c\x2c"), 2)
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {"fdMetadata": {"numFds": 1}})

    def test_nesting_depth_32(self):
        # META-2: an unknown field nested 32 deep (the outer struct is depth 1) is skipped.
        blob = b"\x1c" * 31 + b"\x00" * 31 + b"\x0c\x2c\x16\x00\x15\x02\x00\x00"
        self.assertEqual(c.decode_struct(blob, FD_ONLY), {"fdMetadata": {"fdSeqNum": 0, "numFds": 1}})


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
        # 14 and 15 are not types (6.1), in a field header, a list, a map, even an empty list.
        for code in (14, 15):
            with self.assertRaises(c.DecodeError):
                c.decode_struct(bytes([0x10 | code, 0]), {})
            with self.assertRaises(c.DecodeError):
                c.decode_struct(bytes([0x19, 0x10 | code, 0, 0]), {})
            with self.assertRaises(c.DecodeError):
                c.decode_struct(bytes([0x19, code, 0]), {})
            with self.assertRaises(c.DecodeError):
                c.decode_struct(bytes([0x1b, 0x01, 0x50 | code, 0, 0, 0]), {})
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 00 00"), {})  # an empty list of type 0

    def test_bad_bool_element(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 11 03 00"), {})
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 11 03 00"), {1: ("flags", c.LIST, (c.BOOL, None))})

    def test_list_size_beyond_bytes(self):
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("19 f5 ff ff ff ff 0f 00"), {})
        with self.assertRaises(c.DecodeError):
            c.decode_struct(unhex("1b ff ff 03 55 00"), {})


class Unions(unittest.TestCase):
    """6.1: a union has at most one field; two are malformed, none is empty."""

    def test_payload_metadata(self):
        decode = md.decode_response_metadata
        self.assertEqual(decode(unhex("7c 1c 00 00 00")), {"payloadMetadata": {"responseMetadata": {}}})
        self.assertEqual(decode(unhex("7c 00 00")), {"payloadMetadata": {}})
        self.assertEqual(decode(unhex("7c 3c 00 00 00")), {"payloadMetadata": {}})  # only unknown field 3
        for blob in ("7c 1c 00 1c 00 00 00", "7c 3c 00 1c 00 00 00", "7c 1c 00 1c 00 00 00",
                     "7c 1c 00 15 02 00 00", "7c 3c 00 15 02 00 00"):
            with self.assertRaises(c.DecodeError, msg=blob):
                decode(unhex(blob))

    def test_repeated_member_is_two_fields(self):
        with self.assertRaises(c.DecodeError):
            md.decode_response_metadata(unhex("7c 1c 00 0c 02 00 00 00"))

    def test_exception_metadata_union(self):
        base = "7c 2c 18 01 45 18 01 77 1c {} 00 00 00"
        decoded = md.decode_response_metadata(unhex(base.format("1c 00 00")))
        self.assertEqual(decoded["payloadMetadata"]["exceptionMetadata"]["metadata"], {"declaredException": {}})
        with self.assertRaises(c.DecodeError):
            md.decode_response_metadata(unhex(base.format("1c 00 5c 00 00")))

    def test_unions_not_in_the_table_are_not_checked(self):
        # compressionSetupRequest (RequestSetupMetadata 14) is a union whose fields are unknown.
        blob = c.encode_struct([(3, c.I32, 8), (4, c.I32, 10),
                                (14, c.STRUCT, [(1, c.STRUCT, []), (2, c.I32, 1)])])
        self.assertEqual(md.decode_setup_metadata(blob), {"minVersion": 8, "maxVersion": 10,
                                                          "compressionSetupRequest": {}})


class KnownFields(unittest.TestCase):
    """META-3: only the fields of the table of 6.1 are type-checked."""

    def _request(self, extra):
        return c.encode_struct([(1, c.I32, 2), (2, c.BINARY, b"echo"), (3, c.I32, 0)] + extra)

    def test_ignored_fields_are_unknown(self):
        for extra in ([(8, c.I32, 1)], [(15, c.BINARY, b"x")], [(11, c.BINARY, b"crc")], [(99, c.I32, 1)]):
            with self.subTest(extra=extra):
                self.assertEqual(md.decode_request_metadata(self._request(extra))["name"], b"echo")
        setup = c.encode_struct([(3, c.I32, 8), (4, c.I32, 10), (9, c.STRUCT, [(2, c.I32, 5), (3, c.I32, 1)])])
        self.assertEqual(md.decode_setup_metadata(setup)["clientMetadata"], {})
        push = c.encode_struct([(1, c.STRUCT, [(1, c.I32, 10), (2, c.I32, 1), (5, c.BINARY, b"")])])
        self.assertEqual(md.decode_server_push(push), {"setupResponse": {"version": 10}})

    def test_known_fields_are_checked(self):
        for extra in ([(5, c.BINARY, b"100")], [(14, c.BINARY, b"")], [(16, c.I32, 1)], [(17, c.I32, 1)],
                      [(25, c.I32, 0)], [(25, c.STRUCT, [(1, c.I64, 1)])], [(22, c.STRUCT, [(2, c.I64, 1)])]):
            with self.subTest(extra=extra):
                with self.assertRaises(c.DecodeError):
                    md.decode_request_metadata(self._request(extra))
        with self.assertRaises(c.DecodeError):
            md.decode_setup_metadata(c.encode_struct([(9, c.STRUCT, [(1, c.I32, 5)])]))
        with self.assertRaises(c.DecodeError):
            md.decode_response_rpc_error(c.encode_struct([(3, c.I64, 1)]))
        for fields in ([(6, c.BINARY, b"")], [(14, c.I32, 0)], [(12, c.I32, 0)]):
            with self.assertRaises(c.DecodeError):
                md.decode_response_metadata(c.encode_struct(fields))


class Extensions(unittest.TestCase):
    """21.8: otherMetadata is read only as a map of strings (EXT-2), and the
    value of rocketfd.fds is split, trimmed and filtered."""

    def _setup(self, other):
        return md.decode_setup_metadata(c.encode_struct([(3, c.I32, 8), (4, c.I32, 10), (9, c.STRUCT, [other])]))

    def test_other_metadata_that_is_not_a_map_of_strings_is_no_offer(self):
        offers = [
            (3, c.BINARY, b"rocketfd.fds=sink"),
            (3, c.MAP, (c.I32, c.BINARY, [(1, b"sink")])),
            (3, c.MAP, (c.BINARY, c.I32, [(b"rocketfd.fds", 1)])),
            (3, c.LIST, (c.BINARY, [b"rocketfd.fds", b"sink"])),
        ]
        for other in offers:
            with self.subTest(other=other):
                client = self._setup(other)["clientMetadata"]
                self.assertNotIn("otherMetadata", client)
                self.assertEqual(md.extension_names(client.get("otherMetadata")), frozenset())

    def test_a_later_field_that_is_not_a_map_cancels_an_earlier_one(self):
        blob = unhex("35 10 15 14 5c 3b 01 88 0c 72 6f 63 6b 65 74 66 64 2e 66 64 73 04 73 69 6e 6b 05 06 02 00 00")
        self.assertEqual(md.decode_setup_metadata(blob)["clientMetadata"], {})

    def test_a_truncated_map_is_still_malformed(self):
        with self.assertRaises(c.DecodeError):
            md.decode_setup_metadata(unhex("5c 3b 02 88 0c 72 6f 63 6b 65 74 66 64 2e 66 64 73 04 73 69 6e 6b 00 00"))

    def test_offer_parsing(self):
        def names(*pairs):
            return md.extension_names(list(pairs))
        key = md.FDS_KEY
        self.assertEqual(names((key, b" sink ,,\texception\t, future-name")), {md.EXT_SINK, md.EXT_EXCEPTION})
        self.assertEqual(names((key, b"sinks,Sink,exception ")), {md.EXT_EXCEPTION})
        self.assertEqual(names((key, b"sink"), (b"other", b"exception")), {md.EXT_SINK})
        self.assertEqual(names((key, b"sink"), (key, b"exception")), {md.EXT_EXCEPTION})  # the last entry
        self.assertEqual(names((key, b"")), frozenset())
        self.assertEqual(names(), frozenset())
        self.assertEqual(md.extension_names(None), frozenset())

    def test_offer_form(self):
        # EXT-1: names once, single commas, no white space; no key without a name.
        self.assertEqual(md.encode_extension_names([b"sink", b"exception", b"sink"]), b"sink,exception")
        self.assertEqual(md.encode_setup_metadata(offer=()), md.encode_setup_metadata())
        self.assertEqual(md.encode_response_metadata(extensions=()), unhex("7c 1c 00 00 00"))


class StreamPayloadMetadata(unittest.TestCase):
    def test_checksum_is_a_known_struct(self):
        # 6.4: field 6 is a Checksum; its algorithm is type-checked, field 2 is unknown.
        decode = md.decode_stream_payload_metadata
        self.assertEqual(decode(c.encode_struct([(6, c.STRUCT, [(1, c.I32, 0)])])), {"checksum": {"algorithm": 0}})
        self.assertEqual(decode(c.encode_struct([(2, c.I32, 5)])), {})
        for fields in ([(6, c.I32, 0)], [(6, c.STRUCT, [(1, c.BINARY, b"")])], [(5, c.I32, 1)]):
            with self.assertRaises(c.DecodeError, msg=fields):
                decode(c.encode_struct(fields))


if __name__ == "__main__":
    unittest.main()
