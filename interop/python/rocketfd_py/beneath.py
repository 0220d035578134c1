"""Opening a regular file beneath a root directory, component by component
(spec section 17.4): the semantics of openat2(RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS) built from openat(O_PATH | O_NOFOLLOW), readlinkat and
a reopen through /proc/self/fd, so that nothing outside the root is touched
and no FIFO or device is ever opened for reading.
"""

import errno
import os
import stat

from .fdqueue import close_fds

MAX_SYMLINKS = 40        # Linux's MAXSYMLINKS
PATH_MAX = 4096          # including the terminating NUL
NAME_MAX = 255

O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class OpenError(Exception):
    def __init__(self, errnum, text):
        super().__init__(text)
        self.errnum = errnum
        self.text = text


def _fail(errnum, what):
    raise OpenError(errnum, "%s: %s" % (what, os.strerror(errnum)))


def _components(path):
    """Splits a path into names; a trailing "/" (or "/.") adds "." so that the
    final object must be a directory."""
    names = [name for name in path.split(b"/") if name]
    if path.endswith(b"/") or path.endswith(b"/.") or path == b".":
        names.append(b".")
    return names


def open_beneath(root_fd, path):
    """Returns a new read-only FD (O_CLOEXEC) for the regular file at path
    beneath root_fd; raises OpenError with the errno of 17.4.

    root_fd is borrowed.  Every FD opened here is closed on every path except
    the returned one.
    """
    if not path:
        _fail(errno.ENOENT, "empty path")
    if b"\0" in path:
        _fail(errno.EINVAL, "path contains a NUL byte")
    if path.startswith(b"/"):
        _fail(errno.EXDEV, "absolute path")
    if len(path) >= PATH_MAX:
        _fail(errno.ENAMETOOLONG, "path of %d bytes" % len(path))

    # stack[-1] is the directory the next name is looked up in; stack[0] the root.
    stack = [os.dup(root_fd)]
    final_fd = None
    try:
        final_fd = _walk(stack, _components(path))
        return _reopen_regular(final_fd)
    finally:
        close_fds(stack)
        if final_fd is not None:
            close_fds([final_fd])


def _walk(stack, pending):
    """Resolves the names in pending (consumed from the front); returns an
    O_PATH FD for the final object, owned by the caller."""
    links = 0
    pending = list(reversed(pending))
    while True:
        if not pending:
            # The path resolved to a directory on the stack ("." or "x/..").
            return os.dup(stack[-1])
        name = pending.pop()
        is_last = not pending
        if name == b".":
            if is_last:
                return os.dup(stack[-1])
            continue
        if name == b"..":
            if len(stack) == 1:
                _fail(errno.EXDEV, "\"..\" leaves the root")
            os.close(stack.pop())
            continue
        if len(name) > NAME_MAX:
            _fail(errno.ENAMETOOLONG, "component of %d bytes" % len(name))
        try:
            fd = os.open(name, O_PATH_NOFOLLOW, dir_fd=stack[-1])
        except OSError as error:
            _fail(error.errno, os.fsdecode(name))
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                links += 1
                if links > MAX_SYMLINKS:
                    _fail(errno.ELOOP, "too many symbolic links")
                target = os.readlink(b"", dir_fd=fd)
                if target.startswith(b"/"):
                    _fail(errno.EXDEV, "symbolic link %s is absolute" % os.fsdecode(name))
                if not target:
                    _fail(errno.ENOENT, "empty symbolic link %s" % os.fsdecode(name))
                pending.extend(reversed(_components(target)))
                continue
            if is_last:
                result, fd = fd, None
                return result
            if not stat.S_ISDIR(mode):
                _fail(errno.ENOTDIR, os.fsdecode(name))
            stack.append(fd)
            fd = None
        finally:
            if fd is not None:
                os.close(fd)


# Limitation: the reopen goes through /proc/self/fd; without /proc mounted,
# every open() of a regular file fails with ENOENT.
def _reopen_regular(path_fd):
    """Reopens an O_PATH FD read-only, only when it names a regular file."""
    if not stat.S_ISREG(os.fstat(path_fd).st_mode):
        _fail(errno.EINVAL, "not a regular file")
    try:
        return os.open("/proc/self/fd/%d" % path_fd, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        _fail(error.errno, "reopen")
