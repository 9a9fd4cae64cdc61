"""The benchmark tools work: bench/ksock-bench in every TCP mode against
the real daemon, and bench/echo-libev (the floor of bench/compare).

A smoke test, not a timing test: runs are a fraction of a second and only
the shape of the results is checked (operations done, no errors, the
server's CPU and memory sampled), never how fast anything was."""

import json
import os
import re
import signal
import subprocess
import unittest

from kstest import BUILDDIR, KsTestCase, free_port, raise_nofile

KSOCK_BENCH = os.path.join(BUILDDIR, "bench", "ksock-bench")
ECHO_LIBEV = os.path.join(BUILDDIR, "bench", "echo-libev")
RUN_TIMEOUT = 60

JSON_KEYS = (
    "mode", "connections", "duration", "requests", "rps", "mbps", "p50_us",
    "p99_us", "p999_us", "conn_per_s", "handshakes_per_s", "resumed",
    "datagrams_per_s", "lost", "errors", "server_cpu_s",
    "server_cpu_us_per_op", "rss_before_kib", "rss_after_kib",
    "kib_per_conn",
)

SHORT = ["-d", "0.5", "-w", "0.1", "--json", "-q"]


def target(addr):
    if isinstance(addr, str):
        return ["-U", addr]
    return ["-H", addr[0], "-p", str(addr[1])]


class BenchTest(KsTestCase):
    def setUp(self):
        super().setUp()
        for f in (KSOCK_BENCH, ECHO_LIBEV):
            self.assertTrue(os.access(f, os.X_OK), "%s is not built" % f)
        raise_nofile()

    def bench(self, mode, *args, expect=0):
        """Runs ksock-bench; checks its exit status; returns its JSON (or
        None when it printed none and none was expected)."""
        argv = [KSOCK_BENCH, mode] + list(args)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=RUN_TIMEOUT)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, expect, "%s\nstdout: %s\nstderr: %s"
                         % (" ".join(argv), out, err))
        if expect != 0 and not out.strip():
            return None
        r = json.loads(out)
        for k in JSON_KEYS:
            self.assertIn(k, r, "JSON key %r missing: %s" % (k, out))
        self.assertEqual(r["mode"], mode)
        return r

    def assertClean(self, r, pid_given=True):
        self.assertGreater(r["requests"], 0, r)
        self.assertEqual(r["errors"], 0, r)
        if pid_given:
            self.assertGreaterEqual(r["server_cpu_s"], 0, r)
            self.assertGreaterEqual(r["server_cpu_us_per_op"], 0, r)

    def daemon(self):
        d = self.start_daemon([
            {"name": "echo", "handler": "echo"},
            {"name": "echo-unix", "protocol": "unix", "handler": "echo"},
            {"name": "hello", "handler": "hello"},
        ])
        return d, str(d.proc.pid)

    def test_pingpong(self):
        d, pid = self.daemon()
        r = self.bench("pingpong", *target(d.address("echo")), "-c", "4",
                       "--pid", pid, *SHORT)
        self.assertClean(r)
        self.assertEqual(r["connections"], 4)
        self.assertGreater(r["rps"], 0, r)
        self.assertGreater(r["p99_us"], 0, r)
        self.assertGreaterEqual(r["p99_us"], r["p50_us"], r)

    def test_pingpong_unix_pipelined(self):
        d, pid = self.daemon()
        r = self.bench("pingpong", *target(d.address("echo-unix")), "-c",
                       "4", "-P", "4", "-s", "100", "--pid", pid, *SHORT)
        self.assertClean(r)

    def test_stream(self):
        d, pid = self.daemon()
        r = self.bench("stream", *target(d.address("echo")), "-c", "2",
                       "--pid", pid, *SHORT)
        self.assertClean(r)
        self.assertGreater(r["mbps"], 0, r)

    def test_connect_greeting(self):
        d, pid = self.daemon()
        r = self.bench("connect", *target(d.address("hello")), "-c", "4",
                       "--greeting", "--pid", pid, *SHORT)
        self.assertClean(r)
        self.assertGreater(r["conn_per_s"], 0, r)

    def test_idle_memory(self):
        d, pid = self.daemon()
        r = self.bench("idle", *target(d.address("echo")), "-c", "50",
                       "-d", "0.2", "-w", "0", "--json", "-q", "--pid", pid)
        self.assertEqual(r["errors"], 0, r)
        self.assertEqual(r["connections"], 50, r)
        self.assertGreater(r["rss_before_kib"], 0, r)
        self.assertGreater(r["rss_after_kib"], 0, r)
        self.assertIsInstance(r["kib_per_conn"], (int, float), r)

    def test_closed_port(self):
        port = free_port()
        self.bench("pingpong", "-H", "127.0.0.1", "-p", str(port), "-c",
                   "2", "-d", "0.2", "-w", "0", "--json", "-q", expect=2)

    def test_echo_libev_floor(self):
        p = subprocess.Popen([ECHO_LIBEV, "-H", "127.0.0.1", "-p", "0"],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            m = re.match(r"listening on tcp (\S+):(\d+)$", line.strip())
            self.assertIsNotNone(m, "echo-libev printed %r" % line)
            r = self.bench("pingpong", "-H", m.group(1), "-p", m.group(2),
                           "-c", "4", "--pid", str(p.pid), *SHORT)
            self.assertClean(r)
            r = self.bench("stream", "-H", m.group(1), "-p", m.group(2),
                           "-c", "2", *SHORT)
            self.assertClean(r, pid_given=False)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
