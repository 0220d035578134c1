#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hold the library's Compact metadata codec against Apache Thrift 0.17.

Property-based and seeded.  For every metadata struct the library writes
(FdMetadata, RequestRpcMetadata, ResponseRpcMetadata, StreamPayloadMetadata,
ResponseRpcError, RequestSetupMetadata, ServerPushMetadata) it generates
random values and checks both directions:

  ours -> Apache   the library encodes (through rfd-codec-driver), Apache's
                   compiled subset IDL decodes, every field must equal the
                   value asked for, and Apache's re-encoding must give the
                   same bytes;
  Apache -> ours   Apache encodes a random struct that also holds fields the
                   library does not know (of every Compact type), the library
                   decodes, and every field it reports must equal Apache's.

Apache's pure-Python protocol is the reference; when the C extension
(fastbinary) is present, its encoding and decoding must agree with it too.

Exit status: 0 all agree, 1 a disagreement, 2 usage error, 77 skipped
(python3-thrift or the generated code is missing).
"""

import argparse
import random
import subprocess
import sys

SKIP = 77
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_EDGES = [0, 1, -1, 2, -2, 63, 64, -64, -65, 127, 128, 8191, 8192, 2**28, -(2**28),
               INT32_MAX, INT32_MIN]
INT64_EDGES = INT32_EDGES + [2**31, -(2**31) - 1, 2**62, INT64_MAX, INT64_MIN,
                             INT64_MAX - 252]
BYTE_KEYS = {"name", "ex_name", "ex_what", "what", "agent"}
MAX_REPORTED = 10
MAX_SHOWN = 300

T = None  # the generated module, imported in main()


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


class Values:
    """Random values with a bias towards the edges of each encoding."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def chance(self, p=0.5):
        return self.rng.random() < p

    def i32(self):
        if self.chance(0.3):
            return self.rng.choice(INT32_EDGES)
        v = self.rng.getrandbits(self.rng.randint(1, 31))
        return -v - 1 if self.chance() else v

    def i64(self):
        if self.chance(0.3):
            return self.rng.choice(INT64_EDGES)
        v = self.rng.getrandbits(self.rng.randint(1, 63))
        return -v - 1 if self.chance() else v

    def maybe(self, make, p=0.6):
        return make() if self.chance(p) else None

    def data(self):
        r = self.rng.random()
        if r < 0.05:
            n = self.rng.randint(128, 20000)
        elif r < 0.15:
            n = self.rng.choice([0, 1, 127, 128, 255, 256])
        else:
            n = self.rng.randint(0, 40)
        return self.rng.randbytes(n)

    def small_map(self):
        return {self.data()[:20]: self.data() for _ in range(self.rng.randint(0, 4))}

    def bool(self):
        return self.chance()

    def pick(self, choices):
        return self.rng.choice(choices)


# Apache encoding and decoding

def encode(obj, accelerated=False):
    from thrift.protocol import TCompactProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer()
    cls = TCompactProtocol.TCompactProtocolAccelerated if accelerated \
        else TCompactProtocol.TCompactProtocol
    obj.write(cls(buf))
    return buf.getvalue()


def decode(cls, data, accelerated=False):
    from thrift.protocol import TCompactProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer(data)
    proto = TCompactProtocol.TCompactProtocolAccelerated if accelerated \
        else TCompactProtocol.TCompactProtocol
    obj = cls()
    obj.read(proto(buf))
    if buf.cstringio_buf.tell() != len(data):
        raise ValueError(f"{len(data) - buf.cstringio_buf.tell()} bytes after the struct")
    return obj


def have_accelerated():
    try:
        from thrift.protocol import fastbinary  # noqa: F401
    except ImportError:
        return False
    return True


def shown(value):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"... ({len(text)} chars)"


def diff(expected, got, path="struct"):
    """Field paths where two generated objects differ, recursively."""
    if type(expected) is not type(got) or not hasattr(expected, "__dict__"):
        return [] if expected == got else [f"{path}: expected {shown(expected)}, "
                                           f"got {shown(got)}"]
    problems = []
    for key in expected.__dict__:
        problems += diff(expected.__dict__[key], got.__dict__[key], f"{path}.{key}")
    return problems


# Driver lines

def fields_text(fields):
    words = []
    for key, value in fields.items():
        if isinstance(value, bytes):
            value = value.hex()
        words.append(f"{key}={value}")
    return " ".join(words)


def parse_ok(line):
    """The fields of an "ok k=v ..." answer, or raise with the driver's error."""
    if not line.startswith("ok"):
        raise ValueError(f"driver answered: {line[:200]}")
    fields = {}
    for word in line.split()[1:]:
        key, _, value = word.partition("=")
        fields[key] = value if key in BYTE_KEYS or not value.lstrip("-").isdigit() \
            else int(value)
    return fields


def ok_hex(line):
    if not line.startswith("ok "):
        raise ValueError(f"driver answered: {line[:200]}")
    return bytes.fromhex(line[3:])


# ours -> Apache: what the library's encoder writes, as driver fields and as
# the Apache object that must come out of decoding it.

def gen_fd_fields(v, fields):
    if not v.chance(0.6):
        return None
    fields["fd"] = 1
    fd = T.FdMetadata()
    if v.chance(0.8):
        fields["fd.seq"] = fd.fdSeqNum = v.i64()
    if v.chance(0.8):
        fields["fd.num"] = fd.numFds = v.i32()
    return fd


def ours_fd(v):
    fields, fd = {}, T.FdMetadata()
    if v.chance(0.8):
        fields["fd.seq"] = fd.fdSeqNum = v.i64()
    if v.chance(0.8):
        fields["fd.num"] = fd.numFds = v.i32()
    return fields, fd, T.FdMetadata


def ours_request(v):
    fields, m = {}, T.RequestRpcMetadata()
    if v.chance(0.8):
        fields["protocol"] = m.protocol = v.i32()
    if v.chance(0.8):
        fields["name"] = m.name = v.data()
    if v.chance(0.8):
        fields["kind"] = m.kind = v.i32()
    if v.chance():
        fields["timeout"] = m.clientTimeoutMs = v.i32()
    m.fdMetadata = gen_fd_fields(v, fields)
    return fields, m, T.RequestRpcMetadata


def ours_payload_metadata(v, fields):
    kind = v.pick(["none", "empty", "response", "declared", "app_unknown", "other"])
    fields["payload"] = kind
    if kind == "none":
        return None
    if kind == "empty":
        return T.PayloadMetadata()
    if kind == "response":
        return T.PayloadMetadata(responseMetadata=T.PayloadResponseMetadata())
    base = T.PayloadExceptionMetadataBase()
    if v.chance(0.7):
        fields["ex_name"] = base.name_utf8 = v.data()
    if v.chance(0.7):
        fields["ex_what"] = base.what_utf8 = v.data()
    if kind == "declared":
        base.metadata = T.PayloadExceptionMetadata(
            declaredException=T.PayloadDeclaredExceptionMetadata())
    elif kind == "app_unknown":
        base.metadata = T.PayloadExceptionMetadata(
            appUnknownException=T.PayloadAppUnknownExceptionMetdata())
    return T.PayloadMetadata(exceptionMetadata=base)


def ours_response(v):
    fields = {}
    m = T.ResponseRpcMetadata(payloadMetadata=ours_payload_metadata(v, fields))
    m.fdMetadata = gen_fd_fields(v, fields)
    return fields, m, T.ResponseRpcMetadata


def ours_stream(v):
    fields = {}
    m = T.StreamPayloadMetadata(payloadMetadata=ours_payload_metadata(v, fields))
    m.fdMetadata = gen_fd_fields(v, fields)
    return fields, m, T.StreamPayloadMetadata


def ours_error(v):
    fields, m = {}, T.ResponseRpcError()
    if v.chance(0.7):
        fields["name"] = m.name_utf8 = v.data()
    if v.chance(0.7):
        fields["what"] = m.what_utf8 = v.data()
    if v.chance(0.7):
        fields["category"] = m.category = v.i32()
    if v.chance(0.7):
        fields["code"] = m.code = v.i32()
    return fields, m, T.ResponseRpcError


def ours_setup(v):
    fields, m = {}, T.RequestSetupMetadata()
    if v.chance(0.8):
        fields["min"] = m.minVersion = v.i32()
    if v.chance(0.8):
        fields["max"] = m.maxVersion = v.i32()
    if v.chance():
        fields["agent"] = v.data()
        m.clientMetadata = T.ClientMetadata(agent=fields["agent"])
    if v.chance(0.3):
        fields["binary"] = 1
        m.encodeMetadataUsingBinary = True
    return fields, m, T.RequestSetupMetadata


def ours_push(v):
    kind = v.pick(["none", "setup_response", "stream_headers", "drain_complete"])
    fields, m = {"push": kind}, T.ServerPushMetadata()
    if kind == "setup_response":
        m.setupResponse = T.SetupResponse()
        if v.chance(0.8):
            fields["version"] = m.setupResponse.version = v.i32()
    elif kind == "stream_headers":
        m.streamHeadersPush = T.StreamHeadersPush()
    elif kind == "drain_complete":
        m.drainCompletePush = T.DrainCompletePush()
    return fields, m, T.ServerPushMetadata


# Apache -> ours: random structs with unknown fields of every type, and the
# fields the driver must report for them.

def fd_expect(fd, expect):
    if fd is None:
        return
    expect["fd"] = 1
    if fd.fdSeqNum is not None:
        expect["fd.seq"] = fd.fdSeqNum
    if fd.numFds is not None:
        expect["fd.num"] = fd.numFds


def apache_fd(v):
    return v.maybe(lambda: T.FdMetadata(fdSeqNum=v.maybe(v.i64, 0.8), numFds=v.maybe(v.i32, 0.8)))


def apache_checksum(v):
    return T.Checksum(algorithm=v.maybe(lambda: v.pick([0, 1, 2, v.i32()])),
                      checksum=v.maybe(v.i64), salt=v.maybe(v.i64))


def apache_classification(v):
    return v.maybe(lambda: T.ErrorClassification(kind=v.maybe(v.i32), blame=v.maybe(v.i32),
                                                 safety=v.maybe(v.i32)))


def uses_checksum(checksum):
    """A Checksum asks for one unless its algorithm is absent or NONE (0)."""
    return int(checksum is not None and (checksum.algorithm or 0) != 0)


def apache_request(v):
    m = T.RequestRpcMetadata(
        protocol=v.maybe(v.i32, 0.8), name=v.maybe(v.data, 0.8), kind=v.maybe(v.i32, 0.8),
        clientTimeoutMs=v.maybe(v.i32), queueTimeoutMs=v.maybe(v.i32, 0.3),
        priority=v.maybe(v.i32, 0.3), otherMetadata=v.maybe(v.small_map, 0.3),
        crc32c=v.maybe(v.i32, 0.2), loadMetric=v.maybe(v.data, 0.2),
        compression=v.maybe(v.i32, 0.2),
        compressionConfig=v.maybe(lambda: T.CompressionConfig(
            codecConfig=v.maybe(lambda: T.CodecConfig(
                zstdConfig=T.ZstdCompressionCodecConfig(levelPreset=v.maybe(v.i32)))),
            compressionSizeLimit=v.maybe(v.i64)), 0.2),
        interactionId=v.maybe(v.i64, 0.15),
        interactionCreate=v.maybe(lambda: T.InteractionCreate(
            interactionId=v.maybe(v.i64), interactionName=v.maybe(v.data)), 0.15),
        clientId=v.maybe(v.data, 0.2), frameworkMetadata=v.maybe(v.data, 0.2),
        fdMetadata=apache_fd(v),
        loggingContext=v.maybe(lambda: T.LoggingContext(
            logSampleRatio=v.maybe(v.i64), logErrorSampleRatio=v.maybe(v.i64),
            requestId=v.maybe(v.data), routingTarget=v.maybe(v.data),
            requestAttemptId=v.maybe(v.i32)), 0.2),
        checksum=v.maybe(lambda: apache_checksum(v), 0.2),
        checksumResponse=v.maybe(v.bool, 0.2),
        quotaReportConfig=v.maybe(lambda: T.QuotaReportConfig(
            backendId=v.maybe(v.i64),
            reportingHierarchy=v.maybe(lambda: [v.data() for _ in range(v.rng.randint(0, 20))])),
            0.2))
    expect = {}
    for key, value in (("protocol", m.protocol), ("name", m.name), ("kind", m.kind),
                       ("timeout", m.clientTimeoutMs)):
        if value is not None:
            expect[key] = value.hex() if isinstance(value, bytes) else value
    fd_expect(m.fdMetadata, expect)
    expect["uses_compression"] = int((m.compression or 0) != 0)
    expect["uses_interaction"] = int(m.interactionId is not None or m.interactionCreate is not None)
    expect["uses_checksum"] = uses_checksum(m.checksum)
    return m, expect


def apache_payload_metadata(v, expect):
    """A PayloadMetadata with exactly one arm (or None), and its fields as the driver reports."""
    arm = v.pick(["absent", "empty", "response", "exception"])
    if arm == "absent":
        expect["payload"] = "none"
        return None
    if arm == "empty":
        # A union with no arm: the library reads it as present but empty.
        expect["payload"] = "empty"
        return T.PayloadMetadata()
    if arm == "response":
        expect["payload"] = "response"
        return T.PayloadMetadata(responseMetadata=T.PayloadResponseMetadata())
    base = T.PayloadExceptionMetadataBase(name_utf8=v.maybe(v.data), what_utf8=v.maybe(v.data))
    union = v.pick([None, "declaredException", "DEPRECATED_proxyException",
                    "appUnknownException", "anyException"])
    expect["payload"] = {"declaredException": "declared",
                         "appUnknownException": "app_unknown"}.get(union, "other")
    if union == "declaredException":
        base.metadata = T.PayloadExceptionMetadata(declaredException=(
            T.PayloadDeclaredExceptionMetadata(errorClassification=apache_classification(v))))
    elif union == "appUnknownException":
        base.metadata = T.PayloadExceptionMetadata(appUnknownException=(
            T.PayloadAppUnknownExceptionMetdata(errorClassification=apache_classification(v))))
    elif union == "DEPRECATED_proxyException":
        base.metadata = T.PayloadExceptionMetadata(
            DEPRECATED_proxyException=T.PayloadProxyExceptionMetadata())
    elif union == "anyException":
        base.metadata = T.PayloadExceptionMetadata(anyException=T.PayloadAnyExceptionMetadata())
    if base.name_utf8 is not None:
        expect["ex_name"] = base.name_utf8.hex()
    if base.what_utf8 is not None:
        expect["ex_what"] = base.what_utf8.hex()
    return T.PayloadMetadata(exceptionMetadata=base)


def apache_response(v):
    expect = {}
    m = T.ResponseRpcMetadata(
        otherMetadata=v.maybe(v.small_map, 0.3), load=v.maybe(v.i64, 0.3),
        crc32c=v.maybe(v.i32, 0.2), compression=v.maybe(v.i32, 0.2),
        payloadMetadata=apache_payload_metadata(v, expect),
        proxiedPayloadMetadata=v.maybe(T.ProxiedPayloadMetadata, 0.2),
        streamId=v.maybe(v.i32, 0.2),
        queueMetadata=v.maybe(lambda: T.QueueMetadata(queueingTimeMs=v.maybe(v.i32),
                                                      queueTimeoutMs=v.maybe(v.i32)), 0.4),
        fdMetadata=apache_fd(v), frameworkMetadata=v.maybe(v.data, 0.2),
        checksum=v.maybe(lambda: apache_checksum(v), 0.2), secondaryLoad=v.maybe(v.i64, 0.2))
    fd_expect(m.fdMetadata, expect)
    expect["uses_compression"] = int((m.compression or 0) != 0)
    expect["uses_checksum"] = uses_checksum(m.checksum)
    return m, expect


def apache_stream(v):
    expect = {}
    m = T.StreamPayloadMetadata(
        compression=v.maybe(v.i32, 0.2), otherMetadata=v.maybe(v.small_map, 0.3),
        payloadMetadata=apache_payload_metadata(v, expect), fdMetadata=apache_fd(v),
        checksum=v.maybe(lambda: apache_checksum(v), 0.2))
    fd_expect(m.fdMetadata, expect)
    expect["uses_compression"] = int((m.compression or 0) != 0)
    expect["uses_checksum"] = uses_checksum(m.checksum)
    return m, expect


def apache_error(v):
    m = T.ResponseRpcError(name_utf8=v.maybe(v.data), what_utf8=v.maybe(v.data),
                           category=v.maybe(v.i32), code=v.maybe(v.i32), load=v.maybe(v.i64, 0.3))
    expect = {}
    for key, value in (("name", m.name_utf8), ("what", m.what_utf8), ("category", m.category),
                       ("code", m.code)):
        if value is not None:
            expect[key] = value.hex() if isinstance(value, bytes) else value
    return m, expect


def apache_setup(v):
    m = T.RequestSetupMetadata(
        opaque=v.maybe(v.small_map, 0.2), interfaceKind=v.maybe(v.i32, 0.2),
        minVersion=v.maybe(v.i32, 0.8), maxVersion=v.maybe(v.i32, 0.8),
        dscpToReflect=v.maybe(v.i32, 0.2), markToReflect=v.maybe(v.i32, 0.2),
        clientMetadata=v.maybe(lambda: T.ClientMetadata(
            agent=v.maybe(v.data), hostname=v.maybe(v.data), otherMetadata=v.maybe(v.small_map))),
        qosUseCaseId=v.maybe(v.i32, 0.2), qosPolicyId=v.maybe(v.i32, 0.2),
        keepAliveTimeoutMs=v.maybe(v.i32, 0.2), encodeMetadataUsingBinary=v.maybe(v.bool, 0.4),
        compressionSetupRequest=v.maybe(lambda: T.CompressionSetupRequest(
            custom=T.CustomCompressionSetupRequest(compressorName=v.maybe(v.data),
                                                   payload=v.maybe(v.data))), 0.2))
    expect = {}
    if m.minVersion is not None:
        expect["min"] = m.minVersion
    if m.maxVersion is not None:
        expect["max"] = m.maxVersion
    if m.clientMetadata is not None and m.clientMetadata.agent is not None:
        expect["agent"] = m.clientMetadata.agent.hex()
    expect["binary"] = int(bool(m.encodeMetadataUsingBinary))
    expect["uses_compression_setup"] = int(m.compressionSetupRequest is not None)
    return m, expect


def apache_push(v):
    arm = v.pick(["none", "setup_response", "stream_headers", "drain_complete"])
    # The library's decoder knows only setupResponse; other arms read as none.
    m, expect = T.ServerPushMetadata(), {"push": "setup_response" if arm == "setup_response"
                                         else "none"}
    if arm == "setup_response":
        m.setupResponse = T.SetupResponse(
            version=v.maybe(v.i32, 0.8), zstdSupported=v.maybe(v.bool),
            compressionSetupResponse=v.maybe(lambda: T.CompressionSetupResponse(
                custom=T.CustomCompressionSetupResponse(compressorName=v.maybe(v.data))), 0.3),
            securityPolicy=v.maybe(lambda: T.SecurityPolicy(authorization=v.maybe(v.i32),
                                                            authWall=v.maybe(v.i32)), 0.3),
            lz4Supported=v.maybe(v.bool))
        if m.setupResponse.version is not None:
            expect["version"] = m.setupResponse.version
    elif arm == "stream_headers":
        m.streamHeadersPush = T.StreamHeadersPush(
            streamId=v.maybe(v.i32), headersPayloadContent=v.maybe(
                lambda: T.HeadersPayloadContent(otherMetadata=v.maybe(v.small_map))))
    elif arm == "drain_complete":
        m.drainCompletePush = T.DrainCompletePush(drainCompleteCode=v.maybe(v.i32))
    return m, expect


OURS = {"fd": ours_fd, "request": ours_request, "response": ours_response,
        "stream": ours_stream, "error": ours_error, "setup": ours_setup, "push": ours_push}
APACHE = {"request": apache_request, "response": apache_response, "stream": apache_stream,
          "error": apache_error, "setup": apache_setup, "push": apache_push}


class Case:
    def __init__(self, label, command, check):
        self.label, self.command, self.check = label, command, check


def case_ours(v, kind, accelerated):
    fields, expected, cls = OURS[kind](v)

    def check(line):
        data = ok_hex(line)
        problems = diff(expected, decode(cls, data))
        if accelerated:
            problems += [f"fastbinary: {p}" for p in diff(expected, decode(cls, data, True))]
        again = encode(expected)
        if again != data:
            problems.append(f"Apache encodes the same value as {shown(again.hex())}")
        return problems, data

    return Case(f"ours->Apache {kind} {fields_text(fields)[:MAX_SHOWN]}",
                f"encode {kind} {fields_text(fields)}".rstrip(), check)


def case_apache(v, kind, accelerated):
    m, expect = APACHE[kind](v)
    data = encode(m)
    if accelerated and encode(m, True) != data:
        fast = encode(m, True).hex()

        def disagree(line):
            return [f"Apache's two encoders disagree: {data.hex()} / {fast}"], data

        return Case(f"Apache->ours {kind}", f"decode {kind} {data.hex()}", disagree)

    def check(line):
        got = parse_ok(line)
        problems = [f"{key}: Apache wrote {shown(expect.get(key))}, ours read {shown(got.get(key))}"
                    for key in sorted(set(expect) | set(got)) if expect.get(key) != got.get(key)]
        return problems, data

    return Case(f"Apache->ours {kind} {shown(m)}", f"decode {kind} {data.hex()}", check)


def run_driver(driver, commands):
    text = "".join(c + "\n" for c in commands)
    done = subprocess.run([driver], input=text, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != len(commands):
        sys.exit(f"thrift_check: {driver} exited with {done.returncode} after {len(lines)} of "
                 f"{len(commands)} answers: {done.stderr.strip()[:500]}")
    return lines


def main():
    global T
    parser = argparse.ArgumentParser(
        description="Check the library's Compact metadata codec against Apache Thrift 0.17, "
                    "both ways, over seeded random values.")
    parser.add_argument("--driver", required=True, help="the rfd-codec-driver program")
    parser.add_argument("--gen", required=True,
                        help="directory holding the Python code thrift-compiler generated from "
                             "interop/thrift/RpcMetadata_subset.thrift")
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    parser.add_argument("--count", type=int, default=500,
                        help="values per struct and direction (default 500)")
    args = parser.parse_args()

    try:
        import thrift  # noqa: F401
        from thrift.protocol import TCompactProtocol  # noqa: F401
    except ImportError:
        skip(f"Apache Thrift's Python library is not installed for {sys.executable} "
             "(Debian: apt-get install python3-thrift)")
    sys.path.insert(0, args.gen)
    try:
        from rpcmetadata_subset import ttypes
    except ImportError:
        skip(f"no generated code in {args.gen}: thrift-compiler was missing when the build "
             "was configured (Debian: apt-get install thrift-compiler, then reconfigure)")
    T = ttypes

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    accelerated = have_accelerated()
    print(f"thrift_check: seed {seed}, {args.count} values per struct and direction; "
          f"Apache Thrift pure Python{' and fastbinary' if accelerated else ''}")
    v = Values(seed)
    cases = []
    for kind in OURS:
        cases += [case_ours(v, kind, accelerated) for _ in range(args.count)]
    for kind in APACHE:
        cases += [case_apache(v, kind, accelerated) for _ in range(args.count)]

    failures = 0
    for case, line in zip(cases, run_driver(args.driver, [c.command for c in cases])):
        try:
            problems, data = case.check(line)
        except Exception as e:  # a decoder refusing the bytes is a finding, not a crash
            problems = [f"{type(e).__name__}: {shown(str(e))}"]
            data = bytes.fromhex(line[3:]) if case.command.startswith("encode") and \
                line.startswith("ok ") else None
        if problems:
            failures += 1
            if failures <= MAX_REPORTED:
                print(f"FAIL {case.label}")
                if data is not None:
                    print(f"     bytes {shown(data.hex())}")
                for p in problems[:5]:
                    print(f"     {p}")

    tally = {}
    for case in cases:
        direction = case.label.split()[0]
        tally[direction] = tally.get(direction, 0) + 1
    print("thrift_check: " + ", ".join(f"{n} {d}" for d, n in tally.items())
          + f": {failures} disagreement{'s' if failures != 1 else ''} (seed {seed})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
