"""Hostile or broken clients: over-long lines, binary garbage, resets,
clients that never read, idle clients, connection storms."""

import random
import select
import time
import unittest

from kstest import KsTestCase, recv_until_eof, set_linger_rst

GREETING = b"Please enter your name"


class BadInputTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            {"name": "hello", "handler": "hello"},
            {"name": "short", "handler": "hello", "max_line_length": 64},
            # The idle timeouts are what the tests on these two are about.
            {"name": "slow", "handler": "hello", "idle_timeout": 3},
            {"name": "idle", "handler": "hello", "idle_timeout": 1},
        ])

    def hello_works(self, name="hello", who=b"Zoe"):
        s = self.d.connect(name)
        self.assertLine(s, GREETING)
        s.sendall(who + b"\n")
        self.assertLine(s, b"Hello, " + who + b"!")
        s.close()

    def test_line_too_long(self):
        s = self.d.connect("short")
        self.assertLine(s, GREETING)
        s.sendall(b"x" * 100 + b"\n")
        self.assertLine(s, b"ERROR line too long")
        self.assertEqual(recv_until_eof(s), b"")
        self.hello_works("short")

    def test_line_at_limit(self):
        s = self.d.connect("short")
        self.assertLine(s, GREETING)
        name = b"n" * 64
        s.sendall(name + b"\n")
        self.assertLine(s, b"Hello, " + name + b"!")
        s.sendall(name + b"\r\n")  # the terminator does not count
        self.assertLine(s, b"Hello, " + name + b"!")
        s.sendall(name + b"m\n")
        self.assertLine(s, b"ERROR line too long")
        self.assertEqual(recv_until_eof(s), b"")

    def test_binary_garbage(self):
        s = self.d.connect("hello")
        self.assertLine(s, GREETING)
        junk = b"\x00\x01\x02\xff\xfe\x00 abc\x00\x7f\x80"
        s.sendall(junk + b"\n")
        self.assertLine(s, b"Hello, " + junk + b"!")
        s.sendall(b"\x00\n")
        self.assertLine(s, b"Hello, \x00!")
        s.sendall(b"Normal\n")
        self.assertLine(s, b"Hello, Normal!")

    def test_random_blob(self):
        rng = random.Random(1234)
        blob = bytes(rng.randrange(256) for _ in range(64 * 1024)) + b"\n"
        lines = blob.split(b"\n")[:-1]
        self.assertLess(max(len(l) for l in lines), 8192)  # seed sanity
        s = self.d.connect("hello")
        self.assertLine(s, GREETING)
        s.sendall(blob)
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            self.assertLine(s, b"Hello, " + line + b"!")
        self.hello_works()

    def test_client_vanishes_mid_line(self):
        for i in range(10):
            s = self.d.connect("hello", track=False)
            self.assertLine(s, GREETING)
            s.sendall(b"half a na")
            set_linger_rst(s)
            s.close()  # RST
        # A reset right after a full line, before the reply is read.
        s = self.d.connect("hello", track=False)
        self.assertLine(s, GREETING)
        s.sendall(b"Gone\n")
        set_linger_rst(s)
        s.close()
        self.hello_works()

    def test_client_never_reads(self):
        # A small receive buffer makes the pile-up reach the daemon soon.
        s = self.d.connect("slow", rcvbuf=32768)
        s.setblocking(False)
        chunk = (b"y" * 1000 + b"\n") * 64
        start = time.monotonic()
        checked_others = False
        closed = False
        while time.monotonic() - start < 60:
            _, w, _ = select.select([], [s], [], 1.0)
            if not w:
                # Blocked for a second: the daemon stopped reading us.  It
                # still serves others (a daemon blocked writing to us would
                # not: we never read).
                if not checked_others:
                    self.hello_works()
                    checked_others = True
                continue
            try:
                s.send(chunk)
            except BlockingIOError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
        self.assertTrue(checked_others, "the client never blocked")
        self.assertTrue(closed, "the daemon never closed the stuck client")
        s.close()
        self.hello_works()

    def test_idle_timeout(self):
        s = self.d.connect("idle")
        self.assertLine(s, GREETING)
        t0 = time.monotonic()
        self.assertLine(s, b"ERROR idle timeout")
        self.assertEqual(recv_until_eof(s), b"")
        elapsed = time.monotonic() - t0
        # Not before the 1 s (with slack for the timer); the upper bound
        # only catches a timeout that never fires.
        self.assertGreater(elapsed, 0.5)
        self.assertLess(elapsed, 30.0)

    def test_activity_resets_idle_timer(self):
        s = self.d.connect("slow")
        self.assertLine(s, GREETING)
        # Four replies a second apart: 4 s in all, longer than the 3 s
        # idle timeout, each gap far below it.  (The delays are the point
        # of the test.)
        for i in range(4):
            time.sleep(1.0)
            s.sendall(b"tick%d\n" % i)
            self.assertLine(s, b"Hello, tick%d!" % i)

    def test_connection_storm(self):
        socks = []
        for i in range(200):
            s = self.d.connect("hello", track=False)
            socks.append(s)
        for i, s in enumerate(socks):
            self.assertLine(s, GREETING)
            if i % 3 == 0:
                s.sendall(b"Unfinished")
            elif i % 3 == 1:
                s.sendall(b"Finished\n")
        for i, s in enumerate(socks):
            if i % 2 == 0:
                set_linger_rst(s)
            s.close()
        self.hello_works()
        self.hello_works("short")


if __name__ == "__main__":
    unittest.main(verbosity=2)
