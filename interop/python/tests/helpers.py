"""Shared helpers of the unit tests."""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)

SERVER = os.path.join(PROJECT, "fdtest_server.py")
CLIENT = os.path.join(PROJECT, "fdtest_client.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def unhex(text):
    """Bytes from a hex dump as the spec writes them: optional 4-digit offsets
    at line starts, then two-digit bytes separated by spaces."""
    out = bytearray()
    for line in text.strip().splitlines():
        line = re.sub(r"^\s*[0-9a-f]{4}\s\s", "", line.strip() + " ")
        out += bytes.fromhex(line)
    return bytes(out)


def fd_is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


class RecordingCloser:
    """A closer for FdQueue tests that records instead of closing."""

    def __init__(self):
        self.closed = []

    def __call__(self, fd):
        self.closed.append(fd)
