#!/usr/bin/env python3
"""FdTest server under test (spec/fd-passing.md section 18.1)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rocketfd_py import SPEC_VERSION  # noqa: E402
from rocketfd_py.log import Log  # noqa: E402
from rocketfd_py.server import Server  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="fdtest_server.py",
        description="Serves the FdTest service of spec/fd-passing.md (version %s) on a Unix socket, "
                    "passing file descriptors over fbthrift's Rocket transport. Stops on SIGTERM or "
                    "SIGINT, removing its socket file." % SPEC_VERSION)
    parser.add_argument("--socket", required=True, metavar="PATH",
                        help="Unix socket path to create and listen on (at most 107 bytes; must not exist)")
    parser.add_argument("--root", metavar="DIR",
                        help="directory that FdTest.open resolves paths beneath; without it open fails "
                             "with EACCES")
    parser.add_argument("--trace", action="store_true", help="log every frame decoded")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = Log("fdtest_server", tracing=args.trace)
    try:
        server = Server(args.socket, args.root, log)
    except ValueError as error:
        log.error("refusing socket path: %s" % error)
        return 2
    try:
        server.run()
    except OSError as error:
        log.error("cannot serve: %s" % error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
