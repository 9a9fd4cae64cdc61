"""The seed dialogue (hello plugin) over TCP and Unix sockets."""

import shutil
import socket
import subprocess
import unittest

from kstest import KsTestCase, recv_line, recv_until_eof

GREETING = b"Please enter your name"


class HelloTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            {"name": "hello", "handler": "hello"},
            {"name": "hello-unix", "protocol": "unix", "handler": "hello"},
            {"name": "custom", "handler": "hello",
             "options": {"greeting": "Who goes there?"}},
        ])

    def dialogue(self, name):
        s = self.d.connect(name)
        self.assertLine(s, GREETING)
        s.sendall(b"Alice\n")
        self.assertLine(s, b"Hello, Alice!")
        s.sendall(b"Bob\r\n")
        self.assertLine(s, b"Hello, Bob!")
        # EOF ends the session: the server closes after our half-close.
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")
        s.close()

    def test_tcp(self):
        self.dialogue("hello")

    def test_unix(self):
        self.assertTrue(self.d.address("hello-unix").endswith(
            "hello-unix.sock"))
        self.dialogue("hello-unix")

    def test_greeting_ends_with_lf(self):
        s = self.d.connect("hello")
        self.assertEqual(recv_line(s, keepends=True), GREETING + b"\n")

    def test_pipelined(self):
        s = self.d.connect("hello")
        self.assertLine(s, GREETING)
        s.sendall(b"a\nb\r\nc\n")
        self.assertLine(s, b"Hello, a!")
        self.assertLine(s, b"Hello, b!")
        self.assertLine(s, b"Hello, c!")

    def test_unterminated_last_line(self):
        s = self.d.connect("hello")
        self.assertLine(s, GREETING)
        s.sendall(b"Carol")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"Hello, Carol!\n")

    def test_empty_line(self):
        s = self.d.connect("hello")
        self.assertLine(s, GREETING)
        s.sendall(b"\n")
        self.assertLine(s, b"Hello, !")

    def test_custom_greeting(self):
        s = self.d.connect("custom")
        self.assertLine(s, b"Who goes there?")
        s.sendall(b"Dave\n")
        self.assertLine(s, b"Hello, Dave!")

    def test_immediate_close(self):
        # Connect and go away at once; the daemon must not mind.
        s = self.d.connect("hello", track=False)
        s.close()
        self.dialogue("hello")

    @unittest.skipIf(shutil.which("socat") is None, "socat is not installed")
    def test_socat(self):
        host, port = self.d.address("hello")
        p = subprocess.run(
            ["socat", "-t", "20", "-", "TCP:%s:%d" % (host, port)],
            input=b"Alice\nBob\n", stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout,
                         GREETING + b"\nHello, Alice!\nHello, Bob!\n")

    @unittest.skipIf(shutil.which("socat") is None, "socat is not installed")
    def test_socat_unix(self):
        p = subprocess.run(
            ["socat", "-t", "20", "-",
             "UNIX-CONNECT:" + self.d.address("hello-unix")],
            input=b"Eve\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, GREETING + b"\nHello, Eve!\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
