"""Many connections at once, pipelining, interleaved dialogues."""

import asyncio
import socket
import threading
import time
import unittest

from kstest import KsTestCase, raise_nofile, recv_line

GREETING = b"Please enter your name\n"


class ConcurrencyTest(KsTestCase):
    def setUp(self):
        super().setUp()
        raise_nofile()
        self.d = self.start_daemon([
            {"name": "hello", "handler": "hello", "backlog": 2048},
            {"name": "hello-unix", "protocol": "unix", "handler": "hello",
             "backlog": 2048},
        ])

    async def open(self, name):
        addr = self.d.address(name)
        if isinstance(addr, str):
            return await asyncio.open_unix_connection(addr)
        return await asyncio.open_connection(*addr)

    def many_at_once(self, name, n):
        async def client(i, opened, go):
            r, w = await self.open(name)
            try:
                self.assertEqual(await r.readline(), GREETING)
                opened.append(i)
                if len(opened) == n:
                    go.set()
                # Every connection is open before any dialogue starts.
                await go.wait()
                w.write(b"client%d\n" % i)
                await w.drain()
                self.assertEqual(await r.readline(), b"Hello, client%d!\n" % i)
                w.write_eof()
                self.assertEqual(await r.read(), b"")
            finally:
                w.close()
            return i

        async def run():
            opened = []
            go = asyncio.Event()
            return await asyncio.wait_for(asyncio.gather(
                *(client(i, opened, go) for i in range(n))), 120)

        done = asyncio.run(run())
        self.assertEqual(sorted(done), list(range(n)))

    def test_1000_concurrent_tcp(self):
        self.many_at_once("hello", 1000)

    def test_1000_concurrent_unix(self):
        self.many_at_once("hello-unix", 1000)

    def test_pipelined_lines(self):
        n = 20000
        s = self.d.connect("hello")
        self.assertEqual(recv_line(s, keepends=True), GREETING)
        payload = b"".join(b"n%d\n" % i for i in range(n))
        errors = []

        # Write from a thread while reading here: the replies are larger
        # than the socket buffers.
        def sender():
            try:
                s.sendall(payload)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=sender)
        t.start()
        expected = b"".join(b"Hello, n%d!\n" % i for i in range(n))
        got = bytearray()
        while len(got) < len(expected):
            data = s.recv(1 << 20)
            if not data:
                break
            got += data
        t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(bytes(got), expected)

    def test_interleaved_dialogues(self):
        conns, lines = 50, 100

        async def client(i):
            r, w = await self.open("hello")
            try:
                self.assertEqual(await r.readline(), GREETING)
                for j in range(lines):
                    w.write(b"c%d-l%d\n" % (i, j))
                    await w.drain()
                    self.assertEqual(await r.readline(),
                                     b"Hello, c%d-l%d!\n" % (i, j))
            finally:
                w.close()
            return i

        async def run():
            return await asyncio.wait_for(asyncio.gather(
                *(client(i) for i in range(conns))), 120)

        t0 = time.monotonic()
        done = asyncio.run(run())
        self.assertEqual(sorted(done), list(range(conns)))
        self.assertLess(time.monotonic() - t0, 60)

    def test_churn(self):
        # Short-lived connections one after another: nothing accumulates.
        for i in range(300):
            s = self.d.connect("hello", track=False)
            try:
                self.assertEqual(recv_line(s, keepends=True), GREETING)
                s.sendall(b"x%d\n" % i)
                self.assertEqual(recv_line(s), b"Hello, x%d!" % i)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(s.recv(1), b"")
            finally:
                s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
