"""The only socket I/O of the package: sendmsg with SCM_RIGHTS, recvmsg with
MSG_CMSG_CLOEXEC, and the parsing of the control messages a read returned
(spec sections 3, 7.3, 7.4, 11.2, 13, 14).  MSG_PEEK is never used.
"""

import array
import os
import socket

from .fdqueue import MAX_FDS_PER_MESSAGE, close_fds

RECV_SIZE = 256 * 1024
SEND_FLAGS = socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT
RECV_FLAGS = socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT
SCM_CREDENTIALS = getattr(socket, "SCM_CREDENTIALS", 2)
SCM_PIDFD = 4
MAX_SUN_PATH = 107
INT_SIZE = array.array("i").itemsize


def control_space(cap=MAX_FDS_PER_MESSAGE):
    """Control buffer for a read: room for cap FDs (FD-RECV-1); no other
    control message is enabled on our sockets."""
    return socket.CMSG_SPACE(INT_SIZE * cap)


class ReceiveError(Exception):
    """A read that fails the connection: MSG_CTRUNC or a bad control message.

    fds_lost: FDs may have been dropped, so no later claim can be trusted (ERR-2).
    """

    def __init__(self, text, fds_lost=True):
        super().__init__(text)
        self.text = text
        self.fds_lost = fds_lost


def _fds_of(cdata):
    whole = len(cdata) - len(cdata) % INT_SIZE
    fds = array.array("i")
    fds.frombytes(bytes(cdata[:whole]))
    return list(fds), len(cdata) % INT_SIZE != 0


# Limitation: SO_PASSCRED and SO_PASSPIDFD are never enabled, so SCM_CREDENTIALS
# and SCM_PIDFD are treated as control messages we did not ask for (ERR-7):
# the connection fails, and the pidfd is closed.
def parse_control(ancdata, msg_flags):
    """Returns the FDs of every SCM_RIGHTS control message of one read, in order.

    Raises ReceiveError, after closing every FD found in any control message,
    on MSG_CTRUNC (ERR-6), on a control message we did not enable (ERR-7) and
    on a malformed one (ERR-8).
    """
    fds = []
    problem = None
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype in (socket.SCM_RIGHTS, SCM_PIDFD):
            found, ragged = _fds_of(cdata)
            fds.extend(found)
            if ctype != socket.SCM_RIGHTS:
                problem = problem or "FDs lost: unexpected SCM_PIDFD control message"
            elif ragged:
                problem = problem or "FDs lost: malformed SCM_RIGHTS control message (%d bytes)" % len(cdata)
        else:
            problem = problem or "FDs lost: unexpected control message level %d type %d" % (level, ctype)
    if msg_flags & socket.MSG_CTRUNC:
        problem = "FDs lost: MSG_CTRUNC (%d FDs installed before the truncation, all closed)" % len(fds)
    if problem:
        close_fds(fds)
        raise ReceiveError(problem)
    return fds


def receive(sock, cap=MAX_FDS_PER_MESSAGE, bufsize=RECV_SIZE, ancbufsize=None):
    """One recvmsg.  Returns (data, fds), data b"" at EOF, or None when the
    socket has nothing to read.  The caller owns the returned FDs.
    """
    if ancbufsize is None:
        ancbufsize = control_space(cap)
    # Limitation: if CPython's recvmsg itself raises after the kernel installed
    # FDs (MemoryError while building the result), those FDs are never returned
    # to us and stay open; the caller sees the exception and fails the connection.
    try:
        data, ancdata, msg_flags, _ = sock.recvmsg(bufsize, ancbufsize, RECV_FLAGS)
    except (BlockingIOError, InterruptedError):
        return None
    return data, parse_control(ancdata, msg_flags)


def send(sock, buffers, fds=None):
    """One sendmsg of buffers with fds in one SCM_RIGHTS control message
    (FD-SEND-1, FD-SEND-2).  Returns the bytes taken, or None on EAGAIN/EINTR.
    Raises OSError for any other failure.
    """
    ancillary = []
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    try:
        return sock.sendmsg(buffers, ancillary, SEND_FLAGS)
    except (BlockingIOError, InterruptedError):
        return None


def check_socket_path(path):
    """TRANSPORT-2: a path that does not fit sun_path with its NUL is refused."""
    raw = os.fsencode(path)
    if not raw:
        raise ValueError("empty socket path")
    if b"\0" in raw:
        raise ValueError("socket path contains a NUL byte")
    if len(raw) > MAX_SUN_PATH:
        raise ValueError("socket path of %d bytes does not fit sun_path (at most %d)" % (len(raw), MAX_SUN_PATH))
    return raw
