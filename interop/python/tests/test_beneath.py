"""FdTest.open path rules (17.4), checked against expected errnos and, where
the kernel has it, against openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)."""

import ctypes
import errno
import fcntl
import os
import shutil
import socket
import stat
import tempfile
import unittest

from helpers import fd_is_open

from rocketfd_py.beneath import OpenError, open_beneath

SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08

OK = 0
CASES = [
    (b"hello.txt", OK),
    (b"", errno.ENOENT),
    (b"a\0b", errno.EINVAL),
    (b"/etc/hostname", errno.EXDEV),
    (b"../outside.txt", errno.EXDEV),
    (b"sub/../hello.txt", OK),
    (b"sub/../../outside.txt", errno.EXDEV),
    (b"sub/./inner.txt", OK),
    (b"sub//inner.txt", OK),
    (b"./hello.txt", OK),
    (b"escape", errno.EXDEV),
    (b"sub/escape2", errno.EXDEV),
    (b"abs", errno.EXDEV),
    (b"null", errno.EXDEV),
    (b"fifo", errno.EINVAL),
    (b"fifolink", errno.EINVAL),
    (b"sock", errno.EINVAL),
    (b"sub", errno.EINVAL),
    (b".", errno.EINVAL),
    (b"sub/..", errno.EINVAL),
    (b"missing", errno.ENOENT),
    (b"missing/x", errno.ENOENT),
    (b"missing/../hello.txt", errno.ENOENT),
    (b"hello.txt/x", errno.ENOTDIR),
    (b"hello.txt/", errno.ENOTDIR),
    (b"hello.txt/.", errno.ENOTDIR),
    (b"hello.txt/..", errno.ENOTDIR),
    (b"loop1", errno.ELOOP),
    (b"dangling", errno.ENOENT),
    (b"dirlink/inner.txt", OK),
    (b"dirlink/../hello.txt", OK),
    (b"sub/up", OK),
    (b"sub/deep/../../hello.txt", OK),
    (b"dirlink/", errno.EINVAL),
    # Stated in 0.2 (17.4 rules 5 and 6).
    (b"dirlink", errno.EINVAL),
    (b"sub/", errno.EINVAL),
    (b"longtarget", errno.ENAMETOOLONG),
    (b"chain2", OK),                # chain2 ... chain41: 40 symbolic links followed
    (b"chain1", errno.ELOOP),       # 41
    (b"x" * 256, errno.ENAMETOOLONG),
    (b"sub/" + b"./" * 2100 + b"inner.txt", errno.ENAMETOOLONG),
    (b"sub/" + b"./" * 2000 + b"inner.txt", OK),
]


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2_oracle(dir_fd, path):
    """errno of openat2(O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), EINVAL
    for a non-regular result, 0 for a regular file; None when unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    how = OpenHow(os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(path),
                      ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        error = ctypes.get_errno()
        return None if error == errno.ENOSYS else error
    try:
        return OK if stat.S_ISREG(os.fstat(fd).st_mode) else errno.EINVAL
    finally:
        os.close(fd)


class OpenBeneath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.top = tempfile.mkdtemp(prefix="rfdpy-beneath-")
        root = os.path.join(cls.top, "root")
        os.mkdir(root)
        with open(os.path.join(cls.top, "outside.txt"), "w") as outside:
            outside.write("outside\n")
        with open(os.path.join(root, "hello.txt"), "w") as hello:
            hello.write("hello\n")
        os.makedirs(os.path.join(root, "sub", "deep"))
        with open(os.path.join(root, "sub", "inner.txt"), "w") as inner:
            inner.write("inner\n")
        links = {
            "sub/up": "../hello.txt", "escape": "../outside.txt", "sub/escape2": "../../outside.txt",
            "abs": "/etc/hostname", "null": "/dev/null", "loop1": "loop2", "loop2": "loop1",
            "dangling": "nothere", "dirlink": "sub", "fifolink": "fifo",
        }
        links["longtarget"] = "y" * 256
        for number in range(41):
            links["chain%d" % number] = "chain%d" % (number + 1)
        links["chain41"] = "hello.txt"
        for name, target in links.items():
            os.symlink(target, os.path.join(root, name))
        os.mkfifo(os.path.join(root, "fifo"))
        cls.listener = socket.socket(socket.AF_UNIX)
        cls.listener.bind(os.path.join(root, "sock"))
        cls.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    @classmethod
    def tearDownClass(cls):
        os.close(cls.root_fd)
        cls.listener.close()
        shutil.rmtree(cls.top)

    def _ours(self, path):
        try:
            fd = open_beneath(self.root_fd, path)
        except OpenError as error:
            return error.errnum, None
        return OK, fd

    def test_rules(self):
        before = set(os.listdir("/proc/self/fd"))
        for path, expected in CASES:
            with self.subTest(path=path[:40]):
                got, fd = self._ours(path)
                self.assertEqual(got, expected, "%r: got %s" % (path[:60], errno.errorcode.get(got, got)))
                if fd is not None:
                    st = os.fstat(fd)
                    self.assertTrue(stat.S_ISREG(st.st_mode))
                    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                    self.assertEqual(flags & os.O_ACCMODE, os.O_RDONLY)
                    self.assertEqual(os.lseek(fd, 0, os.SEEK_CUR), 0)
                    os.close(fd)
        self.assertEqual(set(os.listdir("/proc/self/fd")), before, "an FD leaked")

    def test_agrees_with_openat2(self):
        if openat2_oracle(self.root_fd, b"hello.txt") is None:
            self.skipTest("openat2 is not available")
        for path, _ in CASES:
            if b"\0" in path or not path:
                continue
            with self.subTest(path=path[:40]):
                got, fd = self._ours(path)
                if fd is not None:
                    os.close(fd)
                self.assertEqual(got, openat2_oracle(self.root_fd, path))

    def test_result_is_cloexec_and_not_a_leak_of_root(self):
        got, fd = self._ours(b"hello.txt")
        self.assertEqual(got, OK)
        self.assertFalse(os.get_inheritable(fd))
        self.assertEqual(os.read(fd, 100), b"hello\n")
        os.close(fd)
        self.assertTrue(fd_is_open(self.root_fd))


if __name__ == "__main__":
    unittest.main()
