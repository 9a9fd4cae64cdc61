"""daytime (RFC 867), time (RFC 868), chargen (RFC 864), discard (RFC 863)."""

import socket
import struct
import time
import unittest

from kstest import (KsTestCase, assert_time_between, recv_exact, recv_line,
                    recv_until_eof)

# Seconds from 1900-01-01 to 1970-01-01 (RFC 868).
EPOCH_1900 = 2208988800


class ServicesTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            {"name": "daytime", "handler": "daytime"},
            {"name": "time", "handler": "time"},
            {"name": "chargen", "handler": "chargen"},
            {"name": "discard", "handler": "discard"},
        ])

    def test_daytime(self):
        before = time.time()
        s = self.d.connect("daytime")
        data = recv_until_eof(s)
        after = time.time()
        self.assertTrue(data.endswith(b"\r\n"), data)
        self.assertEqual(data.count(b"\n"), 1, data)
        text = data[:-2].decode("ascii")
        parsed = time.strptime(text, "%a %b %d %H:%M:%S %Y")
        assert_time_between(self, time.mktime(parsed), before, after, text)

    def test_time(self):
        before = time.time()
        s = self.d.connect("time")
        data = recv_until_eof(s)
        after = time.time()
        self.assertEqual(len(data), 4, data)
        (value,) = struct.unpack("!I", data)
        assert_time_between(self, value - EPOCH_1900, before, after)

    def check_chargen_lines(self, lines):
        for line in lines:
            self.assertEqual(len(line), 74, line)
            self.assertTrue(line.endswith(b"\r\n"), line)
            self.assertTrue(all(32 <= c <= 126 for c in line[:72]), line)
        for a, b in zip(lines, lines[1:]):
            # Each line is the previous one moved one character along the
            # ring of printable characters.
            self.assertEqual(b[:71], a[1:72])
            self.assertEqual(b[71], 32 + (a[71] - 32 + 1) % 95)

    def test_chargen(self):
        s = self.d.connect("chargen")
        lines = [recv_line(s, keepends=True) for _ in range(200)]
        self.check_chargen_lines(lines)
        s.close()
        # The daemon notices the reader is gone and keeps serving.
        s = self.d.connect("chargen")
        self.check_chargen_lines([recv_line(s, keepends=True)
                                  for _ in range(3)])

    def test_chargen_bulk(self):
        s = self.d.connect("chargen")
        data = recv_exact(s, 74 * 20000)
        lines = [data[i:i + 74] for i in range(0, len(data), 74)]
        self.check_chargen_lines(lines)
        # Line 96 starts where line 1 did: the ring has 95 characters.
        self.assertEqual(lines[95], lines[0])

    def test_discard(self):
        s = self.d.connect("discard")
        s.sendall(b"\xa5" * (1024 * 1024))
        s.sendall(b"lines\nand more lines\n" * 1000)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def test_discard_sends_nothing(self):
        s = self.d.connect("discard")
        s.sendall(b"hello\n")
        s.settimeout(0.3)  # a short wait is the point: nothing must come
        with self.assertRaises(socket.timeout):
            s.recv(1)
        # Nor later: all the daemon sends before its EOF is nothing.
        s.settimeout(10)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
