"""One line per event on standard error, starting with a level word."""

import sys


class Log:
    def __init__(self, program, tracing=False, stream=None):
        self.program = program
        self.tracing = tracing
        self.stream = stream

    def _write(self, level, text):
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            stream.write("%s %s: %s\n" % (level, self.program, text))
            stream.flush()
        except (OSError, ValueError):
            pass

    def trace(self, text):
        if self.tracing:
            self._write("trace", text)

    def info(self, text):
        self._write("info", text)

    def warn(self, text):
        self._write("warn", text)

    def error(self, text):
        self._write("error", text)


class Quiet(Log):
    """A Log that writes nothing: for tests."""

    def __init__(self):
        super().__init__("quiet")

    def _write(self, level, text):
        pass
