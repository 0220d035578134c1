#!/usr/bin/env python3
"""FdTest client under test (spec/fd-passing.md sections 18.2 and 18.4).

Runs one scenario against the server at --socket and exits 0 when it observed
everything the scenario requires, 1 when it observed anything else, and 2
when it could not run the scenario (CONTRACT-10).
"""

import argparse
import fcntl
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rocketfd_py import SPEC_VERSION  # noqa: E402
from rocketfd_py import client as cl  # noqa: E402
from rocketfd_py import compact  # noqa: E402
from rocketfd_py import fdtest  # noqa: E402
from rocketfd_py import frame as fr  # noqa: E402
from rocketfd_py import metadata as md  # noqa: E402
from rocketfd_py.fdqueue import close_fds  # noqa: E402
from rocketfd_py.log import Log  # noqa: E402

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CANNOT_RUN = 2

S_IFCHR = 0x2000
OPEN_CONTENT = b"rocketfd-open-scenario\n"
LARGE_TAG_SIZE = 17825792
CALL_TIMEOUT = 5.0
LATE_TIMEOUT = 0.5
STREAM_TIMEOUT = 0.5


class CannotRun(Exception):
    pass


def short(tag):
    if len(tag) <= 40:
        return tag.decode("utf-8", "replace")
    return "%s...(%d bytes)" % (tag[:16].decode("utf-8", "replace"), len(tag))


class Scenario:
    """What every scenario needs: connections, calls with event lines, checks."""

    def __init__(self, socket_path, log, deadline):
        self.socket_path = socket_path
        self.log = log
        self.deadline = deadline
        self.ok = True
        self.connections = []
        self.owned_fds = []

    # -------------------------------------------------------------- resources

    def connect(self):
        try:
            conn = cl.ClientConnection(self.socket_path, self.log)
        except cl.ConnectError as error:
            raise CannotRun(str(error)) from None
        self.connections.append(conn)
        return conn

    def devnull(self):
        return os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)

    def keep(self, fd):
        self.owned_fds.append(fd)
        return fd

    @staticmethod
    def identity(fd):
        st = os.fstat(fd)
        return fdtest.to_signed64(st.st_dev), fdtest.to_signed64(st.st_ino)

    def cleanup(self):
        for conn in self.connections:
            conn.close()
        close_fds(self.owned_fds)
        self.owned_fds = []

    def remaining(self, limit=CALL_TIMEOUT):
        return max(0.05, min(limit, self.deadline - time.monotonic()))

    # ------------------------------------------------------------------ calls

    def start(self, conn, method, args, fds=(), kind=md.KIND_SINGLE_REQUEST_SINGLE_RESPONSE, label=""):
        fds = list(fds)
        self.log.info("call %s %sfds=%d" % (method, label, len(fds)))
        return conn.start_call(method, args, fds, kind)

    def finish(self, conn, call, timeout=None, label=""):
        conn.wait(call, self.remaining() if timeout is None else timeout)
        method = call.method.decode()
        if call.ok:
            value = call.value
            shown = short(value) if isinstance(value, bytes) else "report" if value is not None else "-"
            self.log.info("result %s %s%s fds=%d" % (method, label, shown, len(call.fds)))
        else:
            self.log.info("error %s %s%s: %s" % (method, label, call.failure, call.error))
        return call

    def echo(self, conn, tag, fds=(), timeout=None):
        label = "tag=%s " % short(tag)
        call = self.start(conn, "echo", fdtest.encode_tag_args(tag), fds, label=label)
        return self.finish(conn, call, timeout, label=label)

    def inspect(self, conn, tag, fds=()):
        label = "tag=%s " % short(tag)
        return self.finish(conn, self.start(conn, "inspect", fdtest.encode_tag_args(tag), fds, label=label),
                           label=label)

    def start_stream(self, conn, count, fds_per_item):
        self.log.info("call streamFds count=%d fdsPerItem=%d fds=0" % (count, fds_per_item))
        return conn.start_stream("streamFds", fdtest.encode_stream_fds_args(count, fds_per_item))

    def first_response(self, conn, call, timeout=None):
        """Waits for a stream's or sink's first response; True when it came."""
        conn.wait_first(call, self.remaining() if timeout is None else timeout)
        method = call.method.decode()
        if call.first_ok:
            self.log.info("first-response %s stream=%d fds=%d" % (method, call.stream_id, len(call.first_fds)))
            return True
        self.log.info("error %s %s: %s" % (method, call.failure, call.error))
        return False

    def next_item(self, conn, call):
        item = conn.next_item(call, self.remaining())
        method = call.method.decode()
        if item is not None:
            value, fds = item
            tag = value.get("tag", b"?") if isinstance(value, dict) else value
            self.log.info("item %s tag=%s fds=%d" % (method, short(tag), len(fds)))
        elif call.ok:
            self.log.info("end %s stream=%d" % (method, call.stream_id))
        elif call.done:
            self.log.info("error %s %s: %s" % (method, call.failure, call.error))
        else:
            self.log.info("error %s: no item within the time left" % method)
        return item

    def probe(self, conn):
        call = self.echo(conn, b"probe")
        self.check("probe succeeds", call.ok and call.value == b"probe", call.error)
        call.release()

    # ----------------------------------------------------------------- checks

    def check(self, what, condition, detail=""):
        if condition:
            self.log.info("check %s ok" % what)
        else:
            self.ok = False
            self.log.info("check %s FAILED%s" % (what, (": " + detail) if detail else ""))
        return condition

    def check_success(self, call, expected_value, expected_fds):
        if not self.check("%s succeeds" % call.method.decode(), call.ok, call.error):
            return False
        self.check("%s returns %s" % (call.method.decode(), short(expected_value)), call.value == expected_value,
                   "got %r" % (short(call.value) if isinstance(call.value, bytes) else call.value))
        return self.check("%s brings %d FDs" % (call.method.decode(), expected_fds), len(call.fds) == expected_fds,
                          "got %d" % len(call.fds))

    def check_names(self, what, fd, expected_identity):
        got = self.identity(fd)
        return self.check("%s dev/ino" % what, got == expected_identity,
                          "got %r, expected %r" % (got, expected_identity))

    def check_cloexec(self, what, fd):
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        return self.check("%s FD_CLOEXEC" % what, bool(flags & fcntl.FD_CLOEXEC))

    def check_fails(self, call, failure=None, text=None):
        method = call.method.decode()
        if not self.check("%s fails" % method, call.done and not call.ok,
                          "it succeeded" if call.ok else "not done"):
            return False
        if failure is not None:
            self.check("%s fails with %s" % (method, failure), call.failure == failure,
                       "failed with %s: %s" % (call.failure, call.error))
        if text is not None:
            self.check("%s error says %r" % (method, text), text.lower() in call.error.lower(), call.error)
        return True


# ---------------------------------------------------------------------------
# Scenarios of 18.4


def scenario_echo_0(s):
    conn = s.connect()
    call = s.echo(conn, b"echo-0")
    s.check_success(call, b"echo-0", 0)
    call.release()


def scenario_inspect_1(s):
    conn = s.connect()
    fd = s.devnull()
    identity = s.identity(fd)
    call = s.inspect(conn, b"inspect-1", [fd])
    if s.check("inspect succeeds", call.ok, call.error):
        report = call.value
        s.check("tag inspect-1", report.get("tag") == b"inspect-1", repr(report.get("tag")))
        infos = report.get("fds", [])
        if s.check("one FdInfo", len(infos) == 1, "got %d" % len(infos)):
            s.check("dev/ino of the FD sent", (infos[0].get("dev"), infos[0].get("ino")) == identity,
                    "got %r, expected %r" % ((infos[0].get("dev"), infos[0].get("ino")), identity))
            s.check("type 0x2000", infos[0].get("type") == S_IFCHR, "got %r" % infos[0].get("type"))
    call.release()


def _devnull_fds(s, count):
    """/dev/null once and count - 1 duplicates, all close-on-exec (EXEC-2)."""
    first = s.devnull()
    fds = [first]
    try:
        fds += [fcntl.fcntl(first, fcntl.F_DUPFD_CLOEXEC, 0) for _ in range(count - 1)]
    except OSError:
        close_fds(fds)
        raise
    return fds


def scenario_inspect_253(s):
    conn = s.connect()
    fds = _devnull_fds(s, 253)
    identity = s.identity(fds[0])
    call = s.inspect(conn, b"inspect-253", fds)
    if s.check("inspect succeeds", call.ok, call.error):
        report = call.value
        s.check("tag inspect-253", report.get("tag") == b"inspect-253", repr(report.get("tag")))
        infos = report.get("fds", [])
        s.check("253 FdInfo", len(infos) == 253, "got %d" % len(infos))
        wrong = [i for i, info in enumerate(infos) if (info.get("dev"), info.get("ino")) != identity]
        s.check("every FdInfo names /dev/null", not wrong, "entries %r differ" % wrong[:8])
    call.release()


def scenario_inspect_254(s):
    conn = s.connect()
    fds = _devnull_fds(s, 254)
    call = s.start(conn, "inspect", fdtest.encode_tag_args(b"inspect-254"), fds, label="tag=inspect-254 ")
    s.finish(conn, call, label="tag=inspect-254 ")
    s.check_fails(call, cl.LOCAL)
    after = s.echo(conn, b"after")
    s.check_success(after, b"after", 0)
    after.release()


def scenario_echo_2(s):
    conn = s.connect()
    fd_a = s.devnull()
    read_end, fd_b = os.pipe()
    s.keep(read_end)
    os.set_inheritable(fd_a, True)
    os.set_inheritable(fd_b, True)
    identities = [s.identity(fd_a), s.identity(fd_b)]
    call = s.echo(conn, b"echo-2", [fd_a, fd_b])
    if s.check_success(call, b"echo-2", 2):
        for name, fd, identity in zip(("first FD (A)", "second FD (B)"), call.fds, identities):
            s.check_names(name, fd, identity)
            s.check_cloexec(name, fd)
    call.release()


def _report_call(s, conn, label):
    call = s.start(conn, "lastRecorded", compact.encode_struct([]), label=label)
    return s.finish(conn, call, label=label)


def scenario_record_1(s):
    conn = s.connect()
    first = _report_call(s, conn, "first ")
    if s.check("first lastRecorded succeeds", first.ok, first.error):
        s.check("first report is empty", first.value.get("tag", b"") == b"" and not first.value.get("fds"),
                repr(first.value))
    fd = s.devnull()
    identity = s.identity(fd)
    record = s.start(conn, "record", fdtest.encode_tag_args(b"record-1"), [fd],
                     kind=md.KIND_SINGLE_REQUEST_NO_RESPONSE, label="tag=record-1 ")
    s.finish(conn, record, label="tag=record-1 ")
    s.check("record sent", record.ok, record.error)
    second = _report_call(s, conn, "second ")
    if s.check("second lastRecorded succeeds", second.ok, second.error):
        report = second.value
        s.check("second report tag record-1", report.get("tag") == b"record-1", repr(report.get("tag")))
        infos = report.get("fds", [])
        if s.check("second report has one entry", len(infos) == 1, "got %d" % len(infos)):
            s.check("entry names /dev/null", (infos[0].get("dev"), infos[0].get("ino")) == identity,
                    "got %r" % ((infos[0].get("dev"), infos[0].get("ino")),))
    first.release()
    second.release()


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def scenario_open(s):
    conn = s.connect()
    call = s.finish(conn, s.start(conn, "open", fdtest.encode_path_args(b"hello.txt"), label="path=hello.txt "))
    if s.check_success(call, b"hello.txt", 1):
        fd = call.fds[0]
        s.check_cloexec("opened file", fd)
        content = _read_all(fd)
        s.check("content is the 23 bytes of the scenario", content == OPEN_CONTENT, repr(content[:64]))
    call.release()


def scenario_open_missing(s):
    conn = s.connect()
    call = s.finish(conn, s.start(conn, "open", fdtest.encode_path_args(b"missing.txt"),
                                  label="path=missing.txt "))
    if s.check_fails(call, cl.DECLARED):
        error = (call.exception or {}).get("error") or {}
        s.check("FdTestError errnum 2", error.get("errnum") == 2, repr(error))
        s.check("no FD", not call.fds, "got %d" % len(call.fds))
    call.release()


def scenario_error_invalid(s):
    conn = s.connect()
    first = s.echo(conn, b"error-invalid")
    s.check_fails(first, cl.RPC_ERROR, "rejected by harness")
    after = s.echo(conn, b"after")
    s.check_success(after, b"after", 0)
    first.release()
    after.release()


def scenario_setup_rejected(s):
    conn = s.connect()
    call = s.echo(conn, b"setup-rejected")
    s.check_fails(call)
    call.release()


def _echo_devnull(s, conn, tag):
    fd = s.devnull()
    return s.echo(conn, tag, [fd])


def _check_devnull_result(s, call, tag):
    if s.check_success(call, tag, 1):
        fd = call.fds[0]
        s.check_names("%s FD is /dev/null" % short(tag), fd, s.devnull_identity)


def _devnull_identity(s):
    fd = s.devnull()
    try:
        return s.identity(fd)
    finally:
        os.close(fd)


def _mismatch_then_after(s, tag):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    first = _echo_devnull(s, conn, tag)
    s.check_fails(first, cl.FD_MISMATCH)
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    first.release()
    after.release()


def scenario_bad_count(s):
    _mismatch_then_after(s, b"bad-count")


def scenario_bad_seq(s):
    _mismatch_then_after(s, b"bad-seq")


def scenario_stale_seq(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    first = _echo_devnull(s, conn, b"first")
    _check_devnull_result(s, first, b"first")
    stale = _echo_devnull(s, conn, b"stale")
    s.check_fails(stale, cl.FD_MISMATCH)
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    for call in (first, stale, after):
        call.release()
    s.probe(conn)


def scenario_orphan_fds(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    call = _echo_devnull(s, conn, b"orphan")
    _check_devnull_result(s, call, b"orphan")
    call.release()
    s.probe(conn)


def scenario_late_response(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    late = s.echo(conn, b"late", [s.devnull()], timeout=LATE_TIMEOUT)
    s.check_fails(late, cl.TIMEOUT)
    gap = s.echo(conn, b"gap")
    s.check_success(gap, b"gap", 0)
    nxt = _echo_devnull(s, conn, b"next")
    _check_devnull_result(s, nxt, b"next")
    for call in (late, gap, nxt):
        call.release()


def _fail_then_probe(s, tag, fds=(), failure=None, text=None):
    conn = s.connect()
    call = s.echo(conn, tag, fds)
    s.check_fails(call, failure, text)
    call.release()
    conn.close()
    s.probe(s.connect())


def scenario_eof_with_fds(s):
    _fail_then_probe(s, b"eof", failure=cl.CONNECTION)


def scenario_many_in_flight(s):
    conn = s.connect()
    write_ends = []
    identities = []
    for _ in range(16):
        read_end, write_end = os.pipe()
        s.keep(read_end)
        write_ends.append(write_end)
        identities.append(s.identity(write_end))
    calls = []
    for i, write_end in enumerate(write_ends):
        tag = b"mif-%d" % i
        calls.append(s.start(conn, "echo", fdtest.encode_tag_args(tag), [write_end], label="tag=%s " % tag.decode()))
    for i, call in enumerate(calls):
        s.finish(conn, call, label="tag=mif-%d " % i)
    for i, call in enumerate(calls):
        if s.check_success(call, b"mif-%d" % i, 1):
            s.check_names("mif-%d FD is pipe %d's write end" % (i, i), call.fds[0], identities[i])
        call.release()
    s.check("16 distinct odd stream ids", len({call.stream_id for call in calls}) == 16
            and all(call.stream_id % 2 for call in calls))


def scenario_echo_large(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    tag = b"x" * LARGE_TAG_SIZE
    call = s.echo(conn, tag, [s.devnull()], timeout=s.remaining(limit=9.0))
    _check_devnull_result(s, call, tag)
    call.release()


def scenario_ctrunc(s):
    _fail_then_probe(s, b"ctrunc", failure=cl.CONNECTION, text="FDs lost")


def scenario_passrights_off(s):
    _fail_then_probe(s, b"passrights", [s.devnull()], failure=cl.CONNECTION, text="peer does not accept FDs")


def scenario_keepalive(s):
    conn = s.connect()
    call = s.echo(conn, b"keepalive")
    s.check_success(call, b"keepalive", 0)
    call.release()


def scenario_server_request(s):
    _fail_then_probe(s, b"server-request", failure=cl.CONNECTION)


def scenario_payload_metadata(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    absent = _echo_devnull(s, conn, b"pm-absent")
    _check_devnull_result(s, absent, b"pm-absent")
    empty = s.echo(conn, b"pm-empty")
    s.check_fails(empty, cl.NO_RESULT)
    s.check("pm-empty brings no FD", not empty.fds, "got %d" % len(empty.fds))
    two = s.echo(conn, b"pm-two")
    s.check_fails(two, cl.MALFORMED)
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    for call in (absent, empty, two, after):
        call.release()
    s.probe(conn)


def _check_item(s, what, item, tag, expected_fds):
    """A streamFds item: its tag, its FDs matching its report in order, each
    close-on-exec; the FDs are closed afterwards."""
    value, fds = item
    try:
        s.check("%s tag %s" % (what, tag.decode()), value.get("tag") == tag, repr(value.get("tag")))
        infos = value.get("fds", [])
        s.check("%s brings %d FDs" % (what, expected_fds), len(fds) == expected_fds, "got %d" % len(fds))
        s.check("%s report has %d entries" % (what, expected_fds), len(infos) == expected_fds,
                "got %d" % len(infos))
        for index, (fd, info) in enumerate(zip(fds, infos)):
            s.check_names("%s FD %d" % (what, index), fd, (info.get("dev"), info.get("ino")))
            s.check_cloexec("%s FD %d" % (what, index), fd)
    finally:
        close_fds(fds)


def _take_items(s, conn, call, expected):
    """Takes the items of a streamFds stream, expected FDs each, then its end."""
    for index, fds in enumerate(expected):
        item = s.next_item(conn, call)
        if not s.check("item %d arrives" % index, item is not None, call.error or "no item"):
            return
        _check_item(s, "item %d" % index, item, str(index).encode(), fds)
    extra = s.next_item(conn, call)
    if extra is not None:
        close_fds(extra[1])
    s.check("no item after item %d" % (len(expected) - 1), extra is None)
    s.check("stream ends normally", call.ok, call.error or "it did not end")


def scenario_stream_3x2(s):
    conn = s.connect()
    call = s.start_stream(conn, 3, 2)
    if s.check("streamFds first response", s.first_response(conn, call), call.error):
        s.check("first response brings no FD", not call.first_fds, "got %d" % len(call.first_fds))
        _take_items(s, conn, call, [2, 2, 2])
    call.release()
    s.probe(conn)


def scenario_stream_cancel(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    call = s.start_stream(conn, 5, 1)
    if s.check("streamFds first response", s.first_response(conn, call), call.error):
        item = s.next_item(conn, call)
        if s.check("item 0 arrives", item is not None, call.error):
            _check_item(s, "item 0", item, b"0", 1)
        conn.cancel(call)
        s.check("stream cancelled", call.failure == cl.CANCELLED, "%s: %s" % (call.failure, call.error))
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    s.check("no other item", not call.items, "%d items" % len(call.items))
    for done in (call, after):
        done.release()
    s.probe(conn)


def _stream_fails_then_probe(s, failure=None):
    conn = s.connect()
    call = s.start_stream(conn, 2, 1)
    s.first_response(conn, call)
    item = s.next_item(conn, call)
    if item is not None:
        close_fds(item[1])
    s.check_fails(call, failure)
    call.release()
    conn.close()
    s.probe(s.connect())


def scenario_stream_bad_seq(s):
    _stream_fails_then_probe(s, cl.FD_MISMATCH)


def scenario_stream_contract(s):
    _stream_fails_then_probe(s)


def scenario_stream_timeout(s):
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    late = s.start_stream(conn, 1, 2)
    s.first_response(conn, late, timeout=STREAM_TIMEOUT)
    s.check_fails(late, cl.TIMEOUT)
    gap = s.echo(conn, b"gap")
    s.check_success(gap, b"gap", 0)
    nxt = _echo_devnull(s, conn, b"next")
    _check_devnull_result(s, nxt, b"next")
    slow = s.start_stream(conn, 2, 1)
    if s.check("second streamFds first response", s.first_response(conn, slow, timeout=STREAM_TIMEOUT),
               slow.error):
        _take_items(s, conn, slow, [1, 1])
    for call in (late, gap, nxt, slow):
        call.release()
    s.probe(conn)


def scenario_stream_bad_item(s):
    """STREAM-20, STREAM-21: an item that is no result fails the stream only;
    a failed claim on the abandoned stream keeps the connection."""
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    call = s.start_stream(conn, 3, 1)
    if s.check("streamFds first response", s.first_response(conn, call), call.error):
        item = s.next_item(conn, call)
        if item is not None:
            close_fds(item[1])
        s.check("no item", item is None, "got one")
        s.check_fails(call, cl.NO_RESULT)
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    for done in (call, after):
        done.release()
    s.probe(conn)


def scenario_stream_bad_first(s):
    """STREAM-20: a first response that is neither a result nor an exception
    fails the stream only; the FD claimed with it is closed, the stream given
    up with CANCEL, and the item that crosses the CANCEL claimed and closed."""
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    call = s.start_stream(conn, 2, 1)
    s.check("no streamFds first response", not s.first_response(conn, call), "one came as a result")
    if call.first_ok and not call.done:
        # A first response taken as a result: not what the scenario expects.
        conn.cancel(call)
    s.check_fails(call, cl.NO_RESULT)
    s.check("no FD reaches the caller", not call.first_fds and not call.items,
            "got %d with the first response, %d items" % (len(call.first_fds), len(call.items)))
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    for done in (call, after):
        done.release()
    s.probe(conn)


def scenario_sink_2(s):
    conn = s.connect()
    s.log.info("call sinkFds tag=sink-2 fds=0")
    call = conn.start_sink("sinkFds", fdtest.encode_tag_args(b"sink-2"))
    s.first_response(conn, call)
    if call.rpc_error == (fr.ERROR_INVALID, md.CATEGORY_INVALID_REQUEST, md.CODE_REQUEST_PARSING_FAILURE):
        raise CannotRun("the server declines sinks, as SINK-1 allows: %s" % call.error)
    if not s.check("sinkFds first response", call.first_ok, call.error):
        call.release()
        return
    if md.EXT_SINK not in call.accepted:
        conn.cancel(call)
        call.release()
        raise CannotRun("the server does not accept the extension sink (21.8 allows that)")
    devnull = s.devnull()
    read_end, write_end = os.pipe()
    s.keep(read_end)
    identities = [s.identity(devnull), s.identity(write_end)]
    for tag, fd in ((b"one", devnull), (b"two", write_end)):
        s.log.info("item sinkFds tag=%s fds=1" % tag.decode())
        problem = conn.send_item(call, fdtest.encode_string_result(tag), [fd], timeout=s.remaining())
        s.check("item %s sent" % tag.decode(), problem is None, problem or "")
    conn.complete(call)
    s.finish(conn, call)
    if s.check("sinkFds succeeds", call.ok, call.error):
        report = call.value
        s.check("report tag sink-2", report.get("tag") == b"sink-2", repr(report.get("tag")))
        infos = report.get("fds", [])
        if s.check("report has two entries", len(infos) == 2, "got %d" % len(infos)):
            for name, info, identity in zip(("/dev/null", "pipe write end"), infos, identities):
                got = (info.get("dev"), info.get("ino"))
                s.check("entry names the %s" % name, got == identity, "got %r, expected %r" % (got, identity))
        s.check("final response brings no FD", not call.fds, "got %d" % len(call.fds))
    call.release()


def scenario_sink_first_complete(s):
    """SINK-14: a first response with COMPLETE and a result fails the sink
    only; its FD is closed and nothing more is sent on the sink."""
    conn = s.connect()
    s.devnull_identity = _devnull_identity(s)
    s.log.info("call sinkFds tag=sink-first-complete fds=0")
    call = conn.start_sink("sinkFds", fdtest.encode_tag_args(b"sink-first-complete"))
    s.first_response(conn, call)
    if call.rpc_error == (fr.ERROR_INVALID, md.CATEGORY_INVALID_REQUEST, md.CODE_REQUEST_PARSING_FAILURE):
        raise CannotRun("the server declines sinks, as SINK-1 allows: %s" % call.error)
    if call.first_ok and not call.done:
        # A first response without COMPLETE: not what the scenario expects.
        conn.cancel(call)
    s.check_fails(call, cl.PROTOCOL, "SINK-14")
    s.check("no final response", call.value is None, repr(call.value))
    s.check("no FD reaches the caller", not call.fds and not call.first_fds,
            "got %d" % (len(call.fds) + len(call.first_fds)))
    after = _echo_devnull(s, conn, b"after")
    _check_devnull_result(s, after, b"after")
    for done in (call, after):
        done.release()
    s.probe(conn)


def scenario_exception_fds(s):
    conn = s.connect()
    call = s.finish(conn, s.start(conn, "open", fdtest.encode_path_args(b"exception-fds"),
                                  label="path=exception-fds "))
    if md.EXT_EXCEPTION in conn.offered:
        if s.check_fails(call, cl.DECLARED):
            error = (call.exception or {}).get("error") or {}
            s.check("FdTestError errnum 2", error.get("errnum") == 2, repr(error))
            s.check("the exception brings one FD (EXT-8)", len(call.fds) == 1, "got %d" % len(call.fds))
    else:
        s.check_fails(call, cl.PROTOCOL)
        s.check("no FD reaches the caller", not call.fds, "got %d" % len(call.fds))
    call.release()
    s.probe(conn)


SCENARIOS = {
    "echo-0": scenario_echo_0,
    "inspect-1": scenario_inspect_1,
    "inspect-253": scenario_inspect_253,
    "inspect-254": scenario_inspect_254,
    "echo-2": scenario_echo_2,
    "record-1": scenario_record_1,
    "open": scenario_open,
    "open-missing": scenario_open_missing,
    "error-invalid": scenario_error_invalid,
    "setup-rejected": scenario_setup_rejected,
    "bad-count": scenario_bad_count,
    "bad-seq": scenario_bad_seq,
    "stale-seq": scenario_stale_seq,
    "orphan-fds": scenario_orphan_fds,
    "late-response": scenario_late_response,
    "eof-with-fds": scenario_eof_with_fds,
    "many-in-flight": scenario_many_in_flight,
    "echo-large": scenario_echo_large,
    "ctrunc": scenario_ctrunc,
    "passrights-off": scenario_passrights_off,
    "keepalive": scenario_keepalive,
    "server-request": scenario_server_request,
    "payload-metadata": scenario_payload_metadata,
    "stream-3x2": scenario_stream_3x2,
    "stream-cancel": scenario_stream_cancel,
    "stream-bad-seq": scenario_stream_bad_seq,
    "stream-contract": scenario_stream_contract,
    "stream-timeout": scenario_stream_timeout,
    "stream-bad-item": scenario_stream_bad_item,
    "stream-bad-first": scenario_stream_bad_first,
    "sink-2": scenario_sink_2,
    "exception-fds": scenario_exception_fds,
    "sink-first-complete": scenario_sink_first_complete,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="fdtest_client.py",
        description="Runs one client scenario of spec/fd-passing.md (version %s) section 18.4 against an "
                    "FdTest server. Exit status: 0 everything the scenario requires was observed, 1 "
                    "something else was observed, 2 the scenario could not run." % SPEC_VERSION)
    parser.add_argument("--socket", required=True, metavar="PATH", help="Unix socket of the server")
    parser.add_argument("--scenario", required=True, metavar="NAME", choices=sorted(SCENARIOS),
                        help="one of: %s" % ", ".join(SCENARIOS))
    parser.add_argument("--timeout", type=float, default=9.0, metavar="SECONDS",
                        help="give up on the scenario after this long (default 9)")
    parser.add_argument("--trace", action="store_true", help="log every frame decoded")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = Log("fdtest_client", tracing=args.trace)
    scenario = Scenario(args.socket, log, time.monotonic() + args.timeout)
    log.info("scenario %s" % args.scenario)
    try:
        SCENARIOS[args.scenario](scenario)
    except CannotRun as error:
        log.error("cannot-run %s" % error)
        return EXIT_CANNOT_RUN
    except Exception:  # an unexpected observation or a bug: report it, never hang
        for line in traceback.format_exc().splitlines():
            log.error("exception %s" % line)
        return EXIT_UNEXPECTED
    finally:
        scenario.cleanup()
    status = EXIT_OK if scenario.ok else EXIT_UNEXPECTED
    log.info("done %s status=%d" % (args.scenario, status))
    return status


if __name__ == "__main__":
    sys.exit(main())
