"""fdtest_client.py scenarios (18.4): against fdtest_server.py where the
server behaves, and against the scripted FakeServer where it misbehaves."""

import os
import shutil
import subprocess
import tempfile
import unittest

from fakeserver import FakeServer
from helpers import CLIENT, PYTHON
from test_server import OPEN_CONTENT, start_server, stop_server

SERVED_BY_OUR_SERVER = ["echo-0", "inspect-1", "inspect-253", "inspect-254", "echo-2", "record-1", "open",
                        "open-missing", "many-in-flight", "echo-large", "stream-3x2", "stream-cancel", "sink-2"]
SERVED_BY_FAKE = ["error-invalid", "setup-rejected", "bad-count", "bad-seq", "stale-seq", "orphan-fds",
                  "late-response", "eof-with-fds", "many-in-flight", "ctrunc", "passrights-off", "keepalive",
                  "server-request", "payload-metadata", "stream-cancel", "stream-bad-seq", "stream-contract",
                  "stream-timeout", "stream-bad-item", "exception-fds", "sink-first-complete",
                  "stream-bad-first"]


def run_client(path, scenario, timeout=20):
    result = subprocess.run([PYTHON, CLIENT, "--socket", path, "--scenario", scenario],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env={})
    return result.returncode, result.stderr.decode("utf-8", "replace")


class AgainstOurServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="rfdpy-e2e-")
        root = os.path.join(cls.directory, "root")
        os.mkdir(root)
        with open(os.path.join(root, "hello.txt"), "wb") as hello:
            hello.write(OPEN_CONTENT)
        cls.process, cls.path = start_server(cls.directory)

    @classmethod
    def tearDownClass(cls):
        status = stop_server(cls.process)
        shutil.rmtree(cls.directory)
        assert status == 0, status

    def test_scenarios(self):
        for scenario in SERVED_BY_OUR_SERVER:
            with self.subTest(scenario=scenario):
                status, stderr = run_client(self.path, scenario)
                self.assertEqual(status, 0, stderr[-3000:])
                self.assertNotIn("FAILED", stderr)
                for line in stderr.splitlines():
                    self.assertRegex(line, r"^(info|warn|error|trace) fdtest_client: [a-z-]+( |$)")


    def test_sink_first_complete_against_a_server_that_behaves(self):
        # CONTRACT-10: a normal first response is something else than the
        # scenario lists (status 1); the client gives the sink up (SINK-8).
        status, stderr = run_client(self.path, "sink-first-complete")
        self.assertEqual(status, 1, stderr[-3000:])
        self.assertIn("check sinkFds fails with protocol FAILED", stderr)
        self.assertIn("cancel sinkFds", stderr)
        self.assertIn("check after FD is /dev/null dev/ino ok", stderr)

    def test_stream_bad_first_against_a_server_that_behaves(self):
        # CONTRACT-10: a first response that is a result is something else
        # than the scenario lists (status 1); the stream, given up or already
        # at its end (its items may come in the same read), does not fail
        # with no-result, and the connection goes on.
        status, stderr = run_client(self.path, "stream-bad-first")
        self.assertEqual(status, 1, stderr[-3000:])
        self.assertIn("check no streamFds first response FAILED", stderr)
        self.assertRegex(stderr, r"check streamFds fails (with no-result )?FAILED")
        self.assertIn("check after FD is /dev/null dev/ino ok", stderr)
        self.assertIn("check probe succeeds ok", stderr)


class AgainstMisbehavingServer(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="rfdpy-fake-")

    def tearDown(self):
        shutil.rmtree(self.directory)

    def test_scenarios(self):
        for scenario in SERVED_BY_FAKE:
            with self.subTest(scenario=scenario):
                path = os.path.join(self.directory, scenario + ".sock")
                try:
                    server = FakeServer(path, scenario)
                except OSError:
                    self.assertEqual(scenario, "passrights-off")
                    continue  # SO_PASSRIGHTS needs Linux 6.16
                server.start()
                status, stderr = run_client(path, scenario)
                failures = server.join()
                self.assertEqual(failures, [], stderr[-3000:])
                self.assertEqual(status, 0, stderr[-3000:])


class CannotRun(unittest.TestCase):
    """CONTRACT-10: status 2, after connecting, when the server declines what
    sink-2 or sink-first-complete needs."""

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="rfdpy-fake-")

    def tearDown(self):
        shutil.rmtree(self.directory)

    def test_sink_scenarios(self):
        for scenario, behaviour in (("sink-2", "sink-declined"), ("sink-2", "sink-unaccepted"),
                                    ("sink-first-complete", "sink-declined")):
            with self.subTest(scenario=scenario, behaviour=behaviour):
                path = os.path.join(self.directory, "%s.%s.sock" % (scenario, behaviour))
                server = FakeServer(path, scenario, behaviour)
                server.start()
                status, stderr = run_client(path, scenario)
                self.assertEqual(server.join(), [], stderr[-3000:])
                self.assertEqual(status, 2, stderr[-3000:])
                self.assertIn("cannot-run", stderr)


class Arguments(unittest.TestCase):
    def test_exit_statuses(self):
        self.assertEqual(subprocess.run([PYTHON, CLIENT, "--help"], capture_output=True).returncode, 0)
        self.assertEqual(subprocess.run([PYTHON, CLIENT, "--socket", "/nonexistent/x.sock", "--scenario",
                                         "no-such"], capture_output=True).returncode, 2)
        status, stderr = run_client("/nonexistent/x.sock", "echo-0")
        self.assertEqual(status, 2, stderr)


if __name__ == "__main__":
    unittest.main()
