"""Appendix A of spec/fd-passing.md, byte for byte, in both directions."""

import unittest

from helpers import unhex

from rocketfd_py import compact as c
from rocketfd_py import fdtest
from rocketfd_py import frame as fr
from rocketfd_py import metadata as md
from rocketfd_py.fdqueue import INT64_MAX

A1 = """
0000  00 00 24 00 00 00 01 11 00 00 00 12 15 04 18 04
0010  64 65 6d 6f 15 00 0c 2c 16 00 15 02 00 00 1c 18
0020  04 6b 74 68 78 00 00
"""

A2 = """
0000  00 00 84 00 00 00 00 05 00 00 01 00 00 7f ff ff
0010  ff 7f ff ff ff 25 61 70 70 6c 69 63 61 74 69 6f
0020  6e 2f 78 2d 72 6f 63 6b 65 74 2d 6d 65 74 61 64
0030  61 74 61 2b 63 6f 6d 70 61 63 74 1c 61 70 70 6c
0040  69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74
0050  2d 70 61 79 6c 6f 61 64 00 00 2c f0 9f 9a 80 35
0060  10 15 14 5c 18 17 52 6f 63 6b 65 74 43 6c 69 65
0070  6e 74 43 68 61 6e 6e 65 6c 2e 63 70 70 18 06 64
0080  65 76 62 6f 78 00 00
"""

A3 = """
0000  00 00 61 00 00 00 00 05 00 00 01 00 00 7f ff ff
0010  ff 7f ff ff ff 25 61 70 70 6c 69 63 61 74 69 6f
0020  6e 2f 78 2d 72 6f 63 6b 65 74 2d 6d 65 74 61 64
0030  61 74 61 2b 63 6f 6d 70 61 63 74 1c 61 70 70 6c
0040  69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74
0050  2d 70 61 79 6c 6f 61 64 00 00 09 f0 9f 9a 80 35
0060  10 15 14 00
"""

A4 = "00 00 0b 00 00 00 00 31 00 1c 15 14 00 00"

A5 = """
0000  00 00 1c 00 00 00 01 29 60 00 00 0b 7c 1c 00 00
0010  5c 16 00 15 02 00 00 08 00 04 6b 74 68 78 00
"""

A6_REQUEST = """
0000  00 00 25 00 00 00 03 11 00 00 00 15 15 04 18 07
0010  69 6e 73 70 65 63 74 15 00 0c 2c 16 0e 15 02 00
0020  00 18 04 6b 74 68 78 00
"""

A6_RESPONSE = """
0000  00 00 28 00 00 00 03 29 60 00 00 05 7c 1c 00 00
0010  00 0c 00 18 04 6b 74 68 78 19 1c 16 0a 16 08 15
0020  80 80 01 11 15 84 80 04 00 00 00
"""

A6_EMPTY_REPORT = "0c 00 18 00 19 0c 00 00"

A7 = """
0000  00 00 74 00 00 00 05 29 60 00 00 3e 7c 2c 18 0b
0010  46 64 54 65 73 74 45 72 72 6f 72 18 26 6d 69 73
0020  73 69 6e 67 2e 74 78 74 3a 20 4e 6f 20 73 75 63
0030  68 20 66 69 6c 65 20 6f 72 20 64 69 72 65 63 74
0040  6f 72 79 1c 1c 00 00 00 00 00 1c 18 26 6d 69 73
0050  73 69 6e 67 2e 74 78 74 3a 20 4e 6f 20 73 75 63
0060  68 20 66 69 6c 65 20 6f 72 20 64 69 72 65 63 74
0070  6f 72 79 15 04 00 00
"""

A8 = """
0000  00 00 34 00 00 00 01 2c 00 00 00 02 04 28 23 66
0010  64 20 6d 69 73 6d 61 74 63 68 3a 20 77 61 6e 74
0020  20 31 20 61 74 20 73 65 71 20 30 2c 20 67 6f 74
0030  20 32 15 02 15 0c 00
"""

A8_REJECTED = "28 13 72 65 6a 65 63 74 65 64 20 62 79 20 68 61 72 6e 65 73 73 15 02 15 0c 00"

A9_RECORD = ("00 00 28 00 00 00 07 15 00 00 00 14 15 04 18 06 72 65 63 6f 72 64 15 02 0c 2c 16 02 15 02 00 00 "
             "18 08 72 65 63 6f 72 64 2d 31 00")
A9_LAST_RECORDED = ("00 00 1d 00 00 00 09 11 00 00 00 13 15 04 18 0c 6c 61 73 74 52 65 63 6f 72 64 65 64 15 00 "
                    "00 00")
A9_EMPTY_REPORT = "00 00 16 00 00 00 09 29 60 00 00 05 7c 1c 00 00 00 0c 00 18 00 19 0c 00 00"
A9_KEEPALIVE = "00 00 0e 00 00 00 00 0c 00 00 00 00 00 00 00 00 00"
A9_KEEPALIVE_RESPOND = "00 00 0e 00 00 00 00 0c 80 00 00 00 00 00 00 00 00"
A9_REQUEST_N = "00 00 0a 00 00 00 01 20 00 00 00 00 05"
A9_CANCEL = "00 00 06 00 00 00 01 24 00"
A9_CONNECTION_ERROR = ("00 00 1e 00 00 00 00 2c 00 00 00 01 01 66 64 73 20 6c 6f 73 74 3a 20 4d 53 47 5f 43 54 52 "
                       "55 4e 43")
A9_INVALID_SETUP = ("00 00 1a 00 00 00 00 2c 00 00 00 00 01 62 61 64 20 70 72 6f 74 6f 63 6f 6c 20 6b 65 79")
A9_FD_METADATA_MAX = "16 fe ff ff ff ff ff ff ff ff 01 15 fa 03 00"
A9_FD_METADATA_NEGATIVE = "16 01 15 02 00"

A11_REQUEST = """
0000  00 00 22 00 00 00 01 19 00 00 00 00 65 00 00 10
0010  15 04 18 09 73 74 72 65 61 6d 46 64 73 15 08 00
0020  15 04 15 02 00
"""

A11_FIRST_RESPONSE = """
0000  00 00 17 00 00 00 01 29 20 00 00 0d 7c 1c 00 00
0010  25 02 3c 16 00 15 02 00 00 00
"""

A11_ITEM_0 = """
0000  00 00 2a 00 00 00 01 29 20 00 00 0b 3c 1c 00 00
0010  2c 16 02 15 02 00 00 0c 00 18 01 30 19 1c 16 1c
0020  16 aa f7 06 15 80 40 11 15 00 00 00 00
"""

A11_COMPLETION = "00 00 06 00 00 00 01 28 40"

A12 = """
0000  00 00 82 00 00 00 00 05 00 00 01 00 00 7f ff ff
0010  ff 7f ff ff ff 25 61 70 70 6c 69 63 61 74 69 6f
0020  6e 2f 78 2d 72 6f 63 6b 65 74 2d 6d 65 74 61 64
0030  61 74 61 2b 63 6f 6d 70 61 63 74 1c 61 70 70 6c
0040  69 63 61 74 69 6f 6e 2f 78 2d 72 6f 63 6b 65 74
0050  2d 70 61 79 6c 6f 61 64 00 00 2a f0 9f 9a 80 35
0060  10 15 14 5c 3b 01 88 0c 72 6f 63 6b 65 74 66 64
0070  2e 66 64 73 0e 73 69 6e 6b 2c 65 78 63 65 70 74
0080  69 6f 6e 00 00
"""

A13_REQUEST = ("00 00 24 00 00 00 01 1d 00 00 00 00 02 00 00 0e 15 04 18 07 73 69 6e 6b 46 64 73 15 0c 00 "
               "18 06 73 69 6e 6b 2d 32 00")
A13_FIRST_RESPONSE = ("00 00 24 00 00 00 01 29 20 00 00 1a 3b 01 88 0c 72 6f 63 6b 65 74 66 64 2e 66 64 73 04 "
                      "73 69 6e 6b 4c 1c 00 00 00 00")
A13_CREDIT = "00 00 0a 00 00 00 01 20 00 00 00 00 01"
A13_ITEM_ONE = "00 00 1b 00 00 00 01 29 20 00 00 0b 3c 1c 00 00 2c 16 00 15 02 00 00 08 00 03 6f 6e 65 00"
A13_COMPLETION = "00 00 0a 00 00 00 01 29 40 00 00 01 00"
A13_CANCELLATION = "00 00 0a 00 00 00 01 2c 00 00 00 02 03"

MISSING_TEXT = b"missing.txt: No such file or directory"
FIFO_INFO = {"dev": 14, "ino": 56789, "type": 0x1000, "cloexec": True, "flags": 0}


class AppendixAEncoding(unittest.TestCase):
    def test_a1_request_with_one_fd(self):
        meta = md.encode_request_metadata(b"demo", 0, fd_seq_num=0, num_fds=1)
        data = c.encode_struct([(1, c.STRUCT, [(1, c.BINARY, b"kthx")])])
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 1, 0, meta, data)
        self.assertEqual(frames, [unhex(A1)])
        self.assertEqual(len(frames[0]), 39)

    def test_a2_fbthrift_setup(self):
        meta = md.encode_setup_metadata(8, 10, agent=b"RocketClientChannel.cpp", hostname=b"devbox")
        self.assertEqual(fr.encode_setup(meta), unhex(A2))
        self.assertEqual(len(unhex(A2)), 135)

    def test_a3_minimal_setup(self):
        self.assertEqual(fr.encode_setup(md.encode_setup_metadata()), unhex(A3))
        self.assertEqual(len(unhex(A3)), 100)

    def test_a4_setup_response(self):
        self.assertEqual(fr.encode_metadata_push(md.encode_setup_response(10)), unhex(A4))

    def test_a5_echo_response_with_one_fd(self):
        meta = md.encode_response_metadata(fd_seq_num=0, num_fds=1)
        frames = fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT | fr.FLAG_COMPLETE, meta,
                                   fdtest.encode_string_result(b"kthx"))
        self.assertEqual(frames, [unhex(A5)])
        self.assertEqual(md.encode_response_metadata(), unhex("7c 1c 00 00 00"))

    def test_a6_inspect_request_seq_7(self):
        meta = md.encode_request_metadata(b"inspect", 0, fd_seq_num=7, num_fds=1)
        frames = fr.encode_message(fr.REQUEST_RESPONSE, 3, 0, meta, fdtest.encode_tag_args(b"kthx"))
        self.assertEqual(frames, [unhex(A6_REQUEST)])

    def test_a6_inspect_report(self):
        info = {"dev": 5, "ino": 4, "type": 0x2000, "cloexec": True, "flags": 0x8002}
        frames = fr.encode_message(fr.PAYLOAD, 3, fr.FLAG_NEXT | fr.FLAG_COMPLETE, md.encode_response_metadata(),
                                   fdtest.encode_report_result(b"kthx", [info]))
        self.assertEqual(frames, [unhex(A6_RESPONSE)])
        self.assertEqual(fdtest.encode_report_result(b"", []), unhex(A6_EMPTY_REPORT))

    def test_a7_declared_exception(self):
        meta = md.encode_response_metadata(exception=(b"FdTestError", MISSING_TEXT))
        data = fdtest.encode_error_result(MISSING_TEXT, 2)
        frames = fr.encode_message(fr.PAYLOAD, 5, fr.FLAG_NEXT | fr.FLAG_COMPLETE, meta, data)
        self.assertEqual(frames, [unhex(A7)])
        self.assertEqual(len(frames[0]), 119)

    def test_a8_claim_failure_error(self):
        data = md.encode_response_rpc_error("fd mismatch: want 1 at seq 0, got 2", 1, 6)
        self.assertEqual(fr.encode_error(1, fr.ERROR_INVALID, data), unhex(A8))
        self.assertEqual(md.encode_response_rpc_error("rejected by harness", 1, 6), unhex(A8_REJECTED))

    def test_a9_other_frames(self):
        record = fr.encode_message(fr.REQUEST_FNF, 7, 0, md.encode_request_metadata(b"record", 1, 1, 1),
                                   fdtest.encode_tag_args(b"record-1"))
        self.assertEqual(record, [unhex(A9_RECORD)])
        last = fr.encode_message(fr.REQUEST_RESPONSE, 9, 0, md.encode_request_metadata(b"lastRecorded", 0),
                                 c.encode_struct([]))
        self.assertEqual(last, [unhex(A9_LAST_RECORDED)])
        empty = fr.encode_message(fr.PAYLOAD, 9, fr.FLAG_NEXT | fr.FLAG_COMPLETE, md.encode_response_metadata(),
                                  fdtest.encode_report_result(b"", []))
        self.assertEqual(empty, [unhex(A9_EMPTY_REPORT)])
        self.assertEqual(fr.encode_keepalive(False), unhex(A9_KEEPALIVE))
        self.assertEqual(fr.encode_keepalive(True), unhex(A9_KEEPALIVE_RESPOND))
        self.assertEqual(fr.encode_request_n(1, 5), unhex(A9_REQUEST_N))
        self.assertEqual(fr.encode_cancel(1), unhex(A9_CANCEL))
        self.assertEqual(fr.encode_error(0, fr.ERROR_CONNECTION_ERROR, "fds lost: MSG_CTRUNC"),
                         unhex(A9_CONNECTION_ERROR))
        self.assertEqual(fr.encode_error(0, fr.ERROR_INVALID_SETUP, "bad protocol key"), unhex(A9_INVALID_SETUP))
        self.assertEqual(md.encode_fd_metadata(INT64_MAX, 253), unhex(A9_FD_METADATA_MAX))
        self.assertEqual(md.encode_fd_metadata(-1, 1), unhex(A9_FD_METADATA_NEGATIVE))


    def test_a11_stream(self):
        request = fr.encode_message(fr.REQUEST_STREAM, 1, 0, md.encode_request_metadata(b"streamFds", 4),
                                    fdtest.encode_stream_fds_args(2, 1), initial_n=101)
        self.assertEqual(request, [unhex(A11_REQUEST)])
        item = fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT, md.encode_stream_payload_metadata(1, 1),
                                 fdtest.encode_report_result(b"0", [FIFO_INFO]))
        self.assertEqual(item, [unhex(A11_ITEM_0)])
        self.assertEqual(len(item[0]), 45)
        self.assertEqual(fr.encode_payload_frame(fr.PAYLOAD, 1, fr.FLAG_COMPLETE), unhex(A11_COMPLETION))

    def test_a12_setup_with_an_offer(self):
        meta = md.encode_setup_metadata(offer=[md.EXT_SINK, md.EXT_EXCEPTION])
        self.assertEqual(fr.encode_setup(meta), unhex(A12))
        self.assertEqual(len(unhex(A12)), 133)

    def test_a13_sink(self):
        request = fr.encode_message(fr.REQUEST_CHANNEL, 1, 0, md.encode_request_metadata(b"sinkFds", 6),
                                    fdtest.encode_tag_args(b"sink-2"), initial_n=2)
        self.assertEqual(request, [unhex(A13_REQUEST)])
        first = fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT, md.encode_response_metadata(extensions=[md.EXT_SINK]),
                                  c.encode_struct([]))
        self.assertEqual(first, [unhex(A13_FIRST_RESPONSE)])
        self.assertEqual(fr.encode_request_n(1, 1), unhex(A13_CREDIT))
        item = fr.encode_message(fr.PAYLOAD, 1, fr.FLAG_NEXT, md.encode_stream_payload_metadata(0, 1),
                                 fdtest.encode_string_result(b"one"))
        self.assertEqual(item, [unhex(A13_ITEM_ONE)])
        completion = fr.encode_payload_frame(fr.PAYLOAD, 1, fr.FLAG_COMPLETE, md.EMPTY_STREAM_PAYLOAD_METADATA)
        self.assertEqual(completion, unhex(A13_COMPLETION))
        self.assertEqual(fr.encode_error(1, fr.ERROR_CANCELED), unhex(A13_CANCELLATION))


class AppendixADecoding(unittest.TestCase):
    def test_a1(self):
        frame = fr.parse_frame(unhex(A1))
        self.assertEqual((frame.ftype, frame.stream_id, frame.flags), (fr.REQUEST_RESPONSE, 1, fr.FLAG_METADATA))
        meta = md.decode_request_metadata(frame.metadata)
        self.assertEqual(meta, {"protocol": 2, "name": b"demo", "kind": 0,
                                "fdMetadata": {"fdSeqNum": 0, "numFds": 1}})
        self.assertEqual(md.fd_claim_args(meta), (1, 0))
        self.assertEqual(frame.data, unhex("1c 18 04 6b 74 68 78 00 00"))

    def test_a2_a3_setup(self):
        for vector, agent in ((A2, b"RocketClientChannel.cpp"), (A3, None)):
            frame = fr.parse_frame(unhex(vector))
            self.assertEqual(frame.ftype, fr.SETUP)
            self.assertEqual((frame.setup.major, frame.setup.minor), (1, 0))
            self.assertEqual(frame.setup.metadata_mime, fr.METADATA_MIME)
            self.assertEqual(frame.setup.data_mime, fr.DATA_MIME)
            self.assertEqual(frame.metadata[:4], fr.PROTOCOL_KEY)
            setup = md.decode_setup_metadata(frame.metadata[4:])
            self.assertEqual((setup["minVersion"], setup["maxVersion"]), (8, 10))
            self.assertEqual(setup.get("clientMetadata", {}).get("agent"), agent)
            self.assertEqual(frame.data, b"")

    def test_a4(self):
        frame = fr.parse_frame(unhex(A4))
        self.assertEqual(frame.ftype, fr.METADATA_PUSH)
        self.assertEqual(md.decode_server_push(frame.metadata), {"setupResponse": {"version": 10}})
        # zstdSupported (2) and lz4Supported (5) are not known fields (6.1): skipped.
        with_fbthrift_fields = unhex("1c 15 14 11 32 00 00")
        self.assertEqual(md.decode_server_push(with_fbthrift_fields)["setupResponse"], {"version": 10})

    def test_a5(self):
        frame = fr.parse_frame(unhex(A5))
        self.assertEqual(frame.flags, fr.FLAG_METADATA | fr.FLAG_NEXT | fr.FLAG_COMPLETE)
        meta = md.decode_response_metadata(frame.metadata)
        self.assertEqual(meta, {"payloadMetadata": {"responseMetadata": {}},
                                "fdMetadata": {"fdSeqNum": 0, "numFds": 1}})
        self.assertEqual(c.decode_struct(frame.data, fdtest.STRING_RESULT), {"success": b"kthx"})

    def test_a6(self):
        request = fr.parse_frame(unhex(A6_REQUEST))
        self.assertEqual(md.fd_claim_args(md.decode_request_metadata(request.metadata)), (1, 7))
        response = fr.parse_frame(unhex(A6_RESPONSE))
        report = c.decode_struct(response.data, fdtest.REPORT_RESULT)["success"]
        self.assertEqual(report, {"tag": b"kthx", "fds": [
            {"dev": 5, "ino": 4, "type": 0x2000, "cloexec": True, "flags": 0x8002}]})
        self.assertEqual(c.decode_struct(unhex(A6_EMPTY_REPORT), fdtest.REPORT_RESULT),
                         {"success": {"tag": b"", "fds": []}})

    def test_a7(self):
        frame = fr.parse_frame(unhex(A7))
        meta = md.decode_response_metadata(frame.metadata)
        exception = meta["payloadMetadata"]["exceptionMetadata"]
        self.assertEqual(exception["name_utf8"], b"FdTestError")
        self.assertEqual(exception["what_utf8"], MISSING_TEXT)
        self.assertIn("declaredException", exception["metadata"])
        result = c.decode_struct(frame.data, fdtest.OPEN_RESULT)
        self.assertEqual(result, {"error": {"message": MISSING_TEXT, "errnum": 2}})

    def test_a8(self):
        frame = fr.parse_frame(unhex(A8))
        self.assertEqual((frame.ftype, frame.stream_id, frame.error_code), (fr.ERROR, 1, fr.ERROR_INVALID))
        self.assertEqual(md.decode_response_rpc_error(frame.data),
                         {"what_utf8": b"fd mismatch: want 1 at seq 0, got 2", "category": 1, "code": 6})

    def test_a9(self):
        record = fr.parse_frame(unhex(A9_RECORD))
        self.assertEqual(record.ftype, fr.REQUEST_FNF)
        meta = md.decode_request_metadata(record.metadata)
        self.assertEqual((meta["kind"], md.fd_claim_args(meta)), (1, (1, 1)))
        keepalive = fr.parse_frame(unhex(A9_KEEPALIVE_RESPOND))
        self.assertTrue(keepalive.has(fr.FLAG_RESPOND))
        self.assertEqual(keepalive.position, 0)
        self.assertEqual(fr.parse_frame(unhex(A9_REQUEST_N)).initial_n, 5)
        self.assertEqual(fr.parse_frame(unhex(A9_CANCEL)).ftype, fr.CANCEL)
        error = fr.parse_frame(unhex(A9_CONNECTION_ERROR))
        self.assertEqual((error.error_code, error.data), (fr.ERROR_CONNECTION_ERROR, b"fds lost: MSG_CTRUNC"))
        self.assertEqual(c.decode_struct(unhex(A9_FD_METADATA_MAX), md.FD_METADATA),
                         {"fdSeqNum": INT64_MAX, "numFds": 253})
        self.assertEqual(c.decode_struct(unhex(A9_FD_METADATA_NEGATIVE), md.FD_METADATA),
                         {"fdSeqNum": -1, "numFds": 1})

    def test_a11(self):
        request = fr.parse_frame(unhex(A11_REQUEST))
        self.assertEqual((request.ftype, request.initial_n), (fr.REQUEST_STREAM, 101))
        self.assertEqual(md.decode_request_metadata(request.metadata),
                         {"protocol": 2, "name": b"streamFds", "kind": 4})
        self.assertEqual(c.decode_struct(request.data, fdtest.ARG_SCHEMAS[b"streamFds"]),
                         {"count": 2, "fdsPerItem": 1})
        first = fr.parse_frame(unhex(A11_FIRST_RESPONSE))
        self.assertEqual(first.flags, fr.FLAG_METADATA | fr.FLAG_NEXT)
        # streamId (9) is not a known field: skipped.
        self.assertEqual(md.decode_response_metadata(first.metadata),
                         {"payloadMetadata": {"responseMetadata": {}}, "fdMetadata": {"fdSeqNum": 0, "numFds": 1}})
        self.assertEqual(first.data, b"\x00")
        item = fr.parse_frame(unhex(A11_ITEM_0))
        meta = md.decode_stream_payload_metadata(item.metadata)
        self.assertEqual(md.fd_claim_args(meta), (1, 1))
        self.assertEqual(c.decode_struct(item.data, fdtest.REPORT_RESULT)["success"],
                         {"tag": b"0", "fds": [FIFO_INFO]})
        # fbthrift's form with an empty otherMetadata (field 2) decodes alike.
        self.assertEqual(md.decode_stream_payload_metadata(unhex("2b 00 1c 1c 00 00 2c 16 02 15 02 00 00")), meta)
        completion = fr.parse_frame(unhex(A11_COMPLETION))
        self.assertEqual((completion.ftype, completion.flags, completion.metadata, completion.data),
                         (fr.PAYLOAD, fr.FLAG_COMPLETE, None, b""))

    def test_a12(self):
        frame = fr.parse_frame(unhex(A12))
        setup = md.decode_setup_metadata(frame.metadata[4:])
        other = setup["clientMetadata"]["otherMetadata"]
        self.assertEqual(other, [(b"rocketfd.fds", b"sink,exception")])
        self.assertEqual(md.extension_names(other), {md.EXT_SINK, md.EXT_EXCEPTION})

    def test_a13(self):
        request = fr.parse_frame(unhex(A13_REQUEST))
        self.assertEqual((request.ftype, request.flags, request.initial_n), (fr.REQUEST_CHANNEL, fr.FLAG_METADATA, 2))
        self.assertEqual(md.decode_request_metadata(request.metadata)["kind"], 6)
        first = fr.parse_frame(unhex(A13_FIRST_RESPONSE))
        meta = md.decode_response_metadata(first.metadata)
        self.assertEqual(md.extension_names(meta["otherMetadata"]), {md.EXT_SINK})
        self.assertEqual(fr.parse_frame(unhex(A13_CREDIT)).initial_n, 1)
        item = fr.parse_frame(unhex(A13_ITEM_ONE))
        self.assertEqual(md.fd_claim_args(md.decode_stream_payload_metadata(item.metadata)), (1, 0))
        self.assertEqual(c.decode_struct(item.data, fdtest.STRING_RESULT), {"success": b"one"})
        completion = fr.parse_frame(unhex(A13_COMPLETION))
        self.assertEqual((completion.flags, completion.metadata, completion.data),
                         (fr.FLAG_METADATA | fr.FLAG_COMPLETE, b"\x00", b""))
        self.assertEqual(md.decode_stream_payload_metadata(completion.metadata), {})
        cancellation = fr.parse_frame(unhex(A13_CANCELLATION))
        self.assertEqual((cancellation.error_code, cancellation.data), (fr.ERROR_CANCELED, b""))

    def test_section_6_6_example(self):
        self.assertEqual(md.encode_fd_metadata(0, 1), unhex("16 00 15 02 00"))


if __name__ == "__main__":
    unittest.main()
