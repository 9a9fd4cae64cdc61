"""The echo service (RFC 862): bulk data, socat, half-close."""

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import unittest

from kstest import KsTestCase, recv_exact, recv_until_eof


class EchoTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            {"name": "echo", "handler": "echo"},
            {"name": "echo-unix", "protocol": "unix", "handler": "echo"},
        ])

    def bulk(self, name, size):
        data = os.urandom(size)
        s = self.d.connect(name)
        errors = []

        # Send from a thread while this one reads: neither side's buffers
        # could hold 10 MB.
        def sender():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=sender)
        t.start()
        got = recv_until_eof(s)
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(data).hexdigest())

    def test_10mb_tcp(self):
        self.bulk("echo", 10 * 1024 * 1024)

    def test_10mb_unix(self):
        self.bulk("echo-unix", 10 * 1024 * 1024)

    def test_small_roundtrips(self):
        s = self.d.connect("echo")
        for i in range(50):
            msg = b"ping %d\n" % i
            s.sendall(msg)
            self.assertEqual(recv_exact(s, len(msg)), msg)

    def test_half_close(self):
        # We shut our write side down; everything sent before still comes
        # back, then EOF.
        s = self.d.connect("echo")
        payload = b"first part\n" + bytes(range(256)) * 100
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), payload)

    def test_immediate_eof(self):
        s = self.d.connect("echo")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    @unittest.skipIf(shutil.which("socat") is None, "socat is not installed")
    def test_socat(self):
        host, port = self.d.address("echo")
        data = b"".join(b"line %d\n" % i for i in range(1000))
        p = subprocess.run(
            ["socat", "-t", "20", "-", "TCP:%s:%d" % (host, port)],
            input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)


if __name__ == "__main__":
    unittest.main(verbosity=2)
