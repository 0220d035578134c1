"""FdTest (spec/fdtest.thrift, spec section 17): structs and FdInfo gathering."""

import fcntl
import os
import stat

from . import compact as c

METHOD_KINDS = {
    b"inspect": 0,
    b"echo": 0,
    b"record": 1,
    b"lastRecorded": 0,
    b"open": 0,
    b"whoami": 0,
    b"streamFds": 4,
    b"sinkFds": 6,
}

# 17.5: the bounds of streamFds' arguments (SVC-STREAM-2).
MAX_STREAM_COUNT = 10000
MAX_FDS_PER_ITEM = 253
# 17.6: the FDs a sinkFds report lists at most, from all items (SVC-SINK-5).
MAX_SINK_FDS = 253

FD_INFO = {
    1: ("dev", c.I64, None),
    2: ("ino", c.I64, None),
    3: ("type", c.I32, None),
    4: ("cloexec", c.BOOL, None),
    5: ("flags", c.I32, None),
}

FD_REPORT = {
    1: ("tag", c.BINARY, None),
    2: ("fds", c.LIST, (c.STRUCT, FD_INFO)),
}

FD_TEST_ERROR = {
    1: ("message", c.BINARY, None),
    2: ("errnum", c.I32, None),
}

# 17.7: the caller's credentials as the server took them at accept.
PEER_INFO = {
    1: ("pid", c.I32, None),
    2: ("uid", c.I32, None),
    3: ("gid", c.I32, None),
    4: ("pidPinned", c.BOOL, None),
}

TAG_ARGS = {1: ("tag", c.BINARY, None)}
STREAM_FDS_ARGS = {1: ("count", c.I32, None), 2: ("fdsPerItem", c.I32, None)}
PATH_ARGS = {1: ("path", c.BINARY, None)}
NO_ARGS = {}

REPORT_RESULT = {0: ("success", c.STRUCT, FD_REPORT)}
STRING_RESULT = {0: ("success", c.BINARY, None)}
OPEN_RESULT = {0: ("success", c.BINARY, None), 1: ("error", c.STRUCT, FD_TEST_ERROR)}
PEER_INFO_RESULT = {0: ("success", c.STRUCT, PEER_INFO)}
EMPTY_RESULT = {}

RESULT_SCHEMAS = {
    b"inspect": REPORT_RESULT,
    b"echo": STRING_RESULT,
    b"lastRecorded": REPORT_RESULT,
    b"open": OPEN_RESULT,
    b"whoami": PEER_INFO_RESULT,
}

# Streams: (first response, item).  Sinks: (first response, sink item, final response).
STREAM_SCHEMAS = {
    b"streamFds": (EMPTY_RESULT, REPORT_RESULT),
}
SINK_SCHEMAS = {
    b"sinkFds": (EMPTY_RESULT, STRING_RESULT, REPORT_RESULT),
}

ARG_SCHEMAS = {
    b"inspect": TAG_ARGS,
    b"echo": TAG_ARGS,
    b"record": TAG_ARGS,
    b"lastRecorded": NO_ARGS,
    b"open": PATH_ARGS,
    b"whoami": NO_ARGS,
    b"streamFds": STREAM_FDS_ARGS,
    b"sinkFds": TAG_ARGS,
}


def refused_args(method, args):
    """Why a method refuses arguments that decode (6.8 step 9), or None."""
    if method != b"streamFds":
        return None
    count = args.get("count", 0)
    per_item = args.get("fdsPerItem", 0)
    if not 0 <= count <= MAX_STREAM_COUNT:
        return "streamFds count %d outside 0..%d" % (count, MAX_STREAM_COUNT)
    if not 0 <= per_item <= MAX_FDS_PER_ITEM:
        return "streamFds fdsPerItem %d outside 0..%d" % (per_item, MAX_FDS_PER_ITEM)
    return None

EXCEPTION_NAME = b"FdTestError"


def to_signed64(value):
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def fd_info(fd):
    """The FdInfo of 17.2, read before anything changes the FD."""
    descriptor_flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    status_flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    st = os.fstat(fd)
    return {
        "dev": to_signed64(st.st_dev),
        "ino": to_signed64(st.st_ino),
        "type": stat.S_IFMT(st.st_mode),
        "cloexec": bool(descriptor_flags & fcntl.FD_CLOEXEC),
        "flags": status_flags,
    }


def _fd_info_fields(info):
    return [(1, c.I64, info["dev"]), (2, c.I64, info["ino"]), (3, c.I32, info["type"]),
            (4, c.BOOL, info["cloexec"]), (5, c.I32, info["flags"])]


def report_fields(tag, infos):
    return [(1, c.BINARY, tag), (2, c.LIST, (c.STRUCT, [_fd_info_fields(info) for info in infos]))]


def encode_args(fields):
    return c.encode_struct(fields)


def encode_tag_args(tag):
    return c.encode_struct([(1, c.BINARY, tag)])


def encode_path_args(path):
    return c.encode_struct([(1, c.BINARY, path)])


def encode_stream_fds_args(count, fds_per_item):
    return c.encode_struct([(1, c.I32, count), (2, c.I32, fds_per_item)])


def encode_report_result(tag, infos):
    return c.encode_struct([(0, c.STRUCT, report_fields(tag, infos))])


def encode_string_result(value):
    return c.encode_struct([(0, c.BINARY, value)])


def to_signed32(value):
    """A uid or gid as the i32 with the same bits (17.7)."""
    value &= (1 << 32) - 1
    return value - (1 << 32) if value >> 31 else value


def encode_peer_info_result(pid, uid, gid, pid_pinned):
    return c.encode_struct([(0, c.STRUCT, [(1, c.I32, to_signed32(pid)), (2, c.I32, to_signed32(uid)),
                                           (3, c.I32, to_signed32(gid)), (4, c.BOOL, pid_pinned)])])


def encode_error_result(message, errnum):
    return c.encode_struct([(1, c.STRUCT, [(1, c.BINARY, message), (2, c.I32, errnum)])])
