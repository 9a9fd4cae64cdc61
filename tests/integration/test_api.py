"""The plugin API through the real daemon, driven via the `api` test plugin
(tests/plugins/api.c, which documents its command protocol)."""

import hashlib
import os
import random
import select
import socket
import struct
import threading
import time
import unittest

from kstest import (Daemon, KsTestCase, plugin_so, recv_exact, recv_line,
                    recv_until_eof, run_ksockd)

API = plugin_so("api")
OPTIONS = {"greeting": "hi", "n": 42, "flag": True, "ratio": 0.25}


class ApiTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            {"name": "api", "handler": API, "options": OPTIONS},
            {"name": "api-unix", "protocol": "unix", "handler": API},
            {"name": "api-short", "handler": API, "max_line_length": 64},
        ])

    def conn(self, name="api"):
        return self.d.connect(name)

    def cmd(self, s, line, expect):
        s.sendall(line + b"\n")
        self.assertLine(s, expect)

    def assertNothingYet(self, s):
        """Nothing has arrived on s (its handler is still suspended)."""
        r, _, _ = select.select([s], [], [], 0)
        if r:
            self.fail("the sleeping handler already sent %r" %
                      s.recv(100, socket.MSG_PEEK))

    # -- reading --

    def test_exact(self):
        s = self.conn()
        data = bytes(range(256)) * 4 + b"\n\n\r\n"
        s.sendall(b"exact %d\n" % len(data) + data)
        self.assertLine(s, b"got %d %d" % (len(data), sum(data) % 256))
        # Split across sends: read_exact waits for the rest.
        s.sendall(b"exact 10\nabcd")
        s.sendall(b"efghij")
        self.assertLine(s, b"got 10 %d" % (sum(b"abcdefghij") % 256))
        s.sendall(b"exact 0\n")
        self.assertLine(s, b"got 0 0")

    def test_exact_large(self):
        s = self.conn()
        data = os.urandom(3 * 1024 * 1024)
        s.sendall(b"exact %d\n" % len(data) + data)
        self.assertLine(s, b"got %d %d" % (len(data), sum(data) % 256))

    def test_exact_eof(self):
        s = self.conn()
        s.sendall(b"exact 10\nabc")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"exact status=-1\n")

    def test_peek(self):
        s = self.conn()
        s.sendall(b"peek 5\nHELLOworld\n")
        line = recv_line(s)
        self.assertTrue(line.startswith(b"peek HELLO buffered="), line)
        self.assertGreaterEqual(int(line.split(b"=")[1]), 5)
        # Still readable after the peek, and consumed only then.
        self.assertLine(s, b"some 5 HELLO")
        self.assertLine(s, b"unknown world")

    def test_peek_waits(self):
        s = self.conn()
        s.sendall(b"peek 6\nab")
        s.sendall(b"cdef")
        self.assertTrue(recv_line(s).startswith(b"peek abcdef buffered="))
        self.assertLine(s, b"some 6 abcdef")

    def test_peek_too_large(self):
        s = self.conn()
        self.cmd(s, b"peek 100000000", b"peek status=-8")  # KS_EINVAL
        self.cmd(s, b"quit", b"bye")

    def test_some(self):
        s = self.conn()
        s.sendall(b"some\nxyz")
        self.assertLine(s, b"some 3 xyz")
        s.sendall(b"some\n")
        s.sendall(b"late")
        self.assertLine(s, b"some 4 late")
        s.sendall(b"some\n\x00\x01\\")
        self.assertLine(s, b"some 3 \\x00\\x01\\x5c")

    def test_skip_and_buffered(self):
        s = self.conn()
        s.sendall(b"skip 3\nxyzabc\n")
        self.assertLine(s, b"after skip abc")
        s.sendall(b"buffered\n")
        self.assertLine(s, b"buffered 0")

    def test_read_ints(self):
        s = self.conn()
        s.sendall(b"u8\n\xfe")
        self.assertLine(s, b"254")
        s.sendall(b"u16\n\x12\x34")
        self.assertLine(s, b"4660")
        s.sendall(b"u32\n\xde\xad\xbe\xef")
        self.assertLine(s, b"3735928559")
        s.sendall(b"u64\n\x01\x02\x03\x04\x05\x06\x07\x08")
        self.assertLine(s, b"%d" % 0x0102030405060708)
        # An integer split over two sends.
        s.sendall(b"u32\n\x00\x00")
        s.sendall(b"\x01\x00")
        self.assertLine(s, b"256")

    def test_write_ints(self):
        s = self.conn()
        s.sendall(b"w8 255\n")
        self.assertEqual(recv_exact(s, 1), b"\xff")
        s.sendall(b"w16 4660\n")
        self.assertEqual(recv_exact(s, 2), b"\x12\x34")
        s.sendall(b"w32 3735928559\n")
        self.assertEqual(recv_exact(s, 4), b"\xde\xad\xbe\xef")
        s.sendall(b"w64 %d\n" % (2**64 - 2))
        self.assertEqual(recv_exact(s, 8), struct.pack("!Q", 2**64 - 2))
        self.cmd(s, b"quit", b"bye")

    def test_read_line_too_long(self):
        s = self.conn("api-short")
        s.sendall(b"readlong\n" + b"a" * 100 + b"\nok\n")
        self.assertLine(s, b"toolong")
        self.assertLine(s, b"next ok")
        s.sendall(b"readlong\n" + b"b" * 64 + b"\nok2\n")
        self.assertLine(s, b"short 64")
        self.assertLine(s, b"next ok2")

    def test_eof_with_partial_line(self):
        s = self.conn()
        s.sendall(b"tail\nl1\r\nabc")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"line l1\neof partial=abc\n")

    def test_clean_eof(self):
        s = self.conn()
        s.sendall(b"tail\nl1\n")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"line l1\neof partial=\n")

    # -- time and coroutines --

    def test_sleep(self):
        s = self.conn()
        t0 = time.monotonic()
        self.cmd(s, b"sleep 200", b"slept")
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)

    def test_sleep_does_not_block_others(self):
        # Another client is served while a handler sleeps: its reply comes
        # before the sleeper's, which is far off (the stop at tearDown
        # cancels it).
        s = self.conn()
        mark = self.d.mark()
        s.sendall(b"sleep 60000\n")
        self.d.wait_for_log(r"api: sleeping 60000 ms", since=mark)
        o = self.conn()
        self.cmd(o, b"quit", b"bye")
        self.assertNothingYet(s)

    def test_spawn(self):
        s = self.conn()
        self.cmd(s, b"spawn", b"spawned")
        self.assertLine(s, b"from spawn")
        self.d.wait_for_log(r"api: spawn write status=0 ")

    def test_spawn_outlives_handler(self):
        # The handler returns at once; the connection stays open until the
        # spawned coroutine has written and returned.
        s = self.conn()
        s.sendall(b"spawn\nquit\n")
        self.assertEqual(recv_until_eof(s),
                         b"spawned\nbye\nfrom spawn\n")

    # -- connection info --

    def test_info_tcp(self):
        s = self.conn()
        host, port = self.d.address("api")
        s.sendall(b"info\n")
        self.assertLine(s, b"peer=127.0.0.1:%d local=127.0.0.1:%d "
                        b"listener=api" % (s.getsockname()[1], port))

    def test_info_unix(self):
        s = self.conn("api-unix")
        s.sendall(b"info\n")
        line = recv_line(s).decode()
        peer, local, lst = line.split(" ")
        self.assertTrue(peer.startswith("peer=unix:"), line)
        self.assertEqual(local, "local=unix:" + self.d.address("api-unix"))
        self.assertEqual(lst, "listener=api-unix")

    # -- writing --

    def test_big_write(self):
        n = 5 * 1024 * 1024
        s = self.conn()
        s.sendall(b"big %d\n" % n)
        data = recv_exact(s, n + 5)
        self.assertEqual(data[n:], b"\nend\n")
        self.assertEqual(data[:n].count(b"x"), n)
        self.cmd(s, b"quit", b"bye")

    def test_big_write_slow_reader(self):
        # While one client does not read a 20 MB reply (the handler is
        # suspended at the high-water mark), others are served: a daemon
        # blocked on that write would never answer o, as s only reads on
        # once o has its answer.
        n = 20 * 1024 * 1024
        s = self.conn()
        s.sendall(b"big %d\n" % n)
        recv_exact(s, 1000)
        o = self.conn()
        self.cmd(o, b"info",
                 b"peer=127.0.0.1:%d local=127.0.0.1:%d listener=api" %
                 (o.getsockname()[1], self.d.address("api")[1]))
        data = recv_exact(s, n - 1000 + 5)
        self.assertEqual(data[-5:], b"\nend\n")

    def test_flush(self):
        s = self.conn()
        s.sendall(b"flush\n")
        self.assertLine(s, b"flushing")
        self.assertLine(s, b"flushed")

    def test_shutdown(self):
        s = self.conn()
        mark = self.d.mark()
        s.sendall(b"shutdown\n")
        self.assertEqual(recv_until_eof(s), b"")  # our read side: EOF
        s.sendall(b"one\ntwo\n")  # the server still reads
        s.shutdown(socket.SHUT_WR)
        self.d.wait_for_log(r"api: after shutdown line 2: two", since=mark)
        self.d.wait_for_log(r"api: after shutdown got 2 lines, read "
                            r"status=-1", since=mark)
        self.d.wait_for_log(r"api: write after shutdown status=-5",
                            since=mark)

    def test_close(self):
        s = self.conn()
        mark = self.d.mark()
        s.sendall(b"close\n")
        self.assertEqual(recv_until_eof(s), b"")
        self.d.wait_for_log(r"api: write after close status=-5", since=mark)
        self.d.wait_for_log(r"api: read after close status=-5", since=mark)
        # The spawned coroutine runs on after the close, but cannot write.
        self.d.wait_for_log(r"api: spawn after close write status=-5",
                            since=mark)

    def test_copy(self):
        s = self.conn()
        data = os.urandom(4 * 1024 * 1024)
        mark = self.d.mark()
        errors = []

        def sender():
            try:
                s.sendall(b"copy\n" + data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=sender)
        t.start()
        got = recv_until_eof(s)
        t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(hashlib.sha256(got).digest(),
                         hashlib.sha256(data).digest())
        self.d.wait_for_log(r"api: copied %d bytes status=0" % len(data),
                            since=mark)

    # -- timeouts, status codes, options --

    def test_conn_timeout(self):
        s = self.conn()
        self.cmd(s, b"timeout 0.5", b"timeout set")
        t0 = time.monotonic()
        self.assertLine(s, b"ERROR status=-3")  # KS_ETIMEDOUT
        self.assertEqual(recv_until_eof(s), b"")
        # Not before the 0.5 s (with slack for the timer); the upper bound
        # only catches a timeout that never fires.
        took = time.monotonic() - t0
        self.assertGreater(took, 0.3)
        self.assertLess(took, 30.0)

    def test_strerror(self):
        s = self.conn()
        s.sendall(b"err\n")
        names = {}
        for code in list(range(0, -10, -1)) + [-100]:
            line = recv_line(s).decode()
            c, _, name = line.partition(" ")
            self.assertEqual(int(c), code)
            self.assertTrue(name and name != "(null)", line)
            names[code] = name
        self.assertLine(s, b"end")
        self.assertEqual(len(set(names[c] for c in range(-1, -10, -1))), 9,
                         names)

    def test_options(self):
        s = self.conn()
        self.cmd(s, b"opts", b"opts greeting=hi n=42 flag=1 ratio=0.25")
        u = self.conn("api-unix")
        self.cmd(u, b"opts", b"opts greeting=api ready n=7 flag=0 ratio=0.5")

    def test_option_errors(self):
        cases = [
            ({"n": "forty-two"}, r"\bn\b.*expected|expected.*\bn\b"),
            ({"flag": 3}, r"flag"),
            ({"ratio": "half"}, r"ratio"),
            ({"greeting": 5}, r"greeting"),
            ({"colour": "blue"}, r"unknown option colour"),
            ({"reject": True}, r"rejected on request"),
        ]
        for opts, pattern in cases:
            with self.subTest(opts=opts):
                d = Daemon([{"name": "a", "handler": API},
                            {"name": "b", "handler": API, "options": opts}],
                           tmpdir=self.tmpdir)
                rc, out = run_ksockd(["-t", "-c", d.conf_path])
                self.assertEqual(rc, 1, out)
                self.assertIn("%s:%d: " % (d.conf_path,
                                           d.listener_lines["b"]), out)
                self.assertRegex(out, pattern)

    def test_return_value(self):
        s = self.conn()
        self.cmd(s, b"ret 3", b"returning")
        self.assertEqual(recv_until_eof(s), b"")

    def test_quit_and_unknown(self):
        s = self.conn()
        self.cmd(s, b"frobnicate now", b"unknown frobnicate now")
        s.sendall(b"quit\n")
        self.assertEqual(recv_until_eof(s), b"bye\n")

    def test_many_clients_mixed(self):
        rng = random.Random(7)
        socks = [self.conn() for _ in range(20)]
        for i, s in enumerate(socks):
            s.sendall(b"sleep %d\n" % rng.randrange(10, 100))
        for s in socks:
            self.assertLine(s, b"slept")
            self.cmd(s, b"spawn", b"spawned")
            self.assertLine(s, b"from spawn")

    def test_init_fini(self):
        self.d.wait_for_log(r"api: init")
        self.d.stop(close_clients=True)
        self.d.wait_for_log(r"api: fini")


if __name__ == "__main__":
    unittest.main(verbosity=2)
