"""Reload under load: twenty SIGHUPs with two workers, while four threads
connect in a loop and ten long-lived dialogues stay open.  The
configuration alternates between two sets of listeners, a TLS listener's
certificate and the kept listener's socket options.  Nothing may be
refused or reset, every dialogue must stay intact, the old workers must
be gone once their dialogues end, and a changed keep_alive must be on the
sockets accepted after the reload (as `ss -o` shows).  An invalid file in
the middle changes nothing."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import unittest

import tlscerts
from kstest import ConnectLoop, KsTestCase, ask, free_port

RELOADS = 20


def der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def keepalive_on(local_port, peer_port):
    """Whether the server's socket of this connection has a keepalive
    timer (ss prints timer:(keepalive,...) for SO_KEEPALIVE sockets)."""
    out = subprocess.run(
        ["ss", "-tnoH", "state", "established",
         "( sport = :%d and dport = :%d )" % (local_port, peer_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
        check=True).stdout.decode()
    if str(local_port) not in out:
        raise AssertionError("ss shows no such connection:\n" + out)
    return "keepalive" in out


@unittest.skipIf(shutil.which("ss") is None, "no ss (iproute2)")
class ReloadUnderLoad(KsTestCase):
    def setUp(self):
        super().setUp()
        self.c = tlscerts.certs()
        self.echo_port = free_port()
        self.tls_port = free_port()
        self.extra_port = {"a": free_port(), "b": free_port()}

    def listeners(self, i):
        """Set "a" for even i, "b" for odd: another extra listener, the
        other certificate, keep_alive and backlog flipped."""
        side = "a" if i % 2 == 0 else "b"
        cert, key = ((self.c.rsa_cert, self.c.rsa_key) if side == "a"
                     else (self.c.ec_cert, self.c.ec_key))
        return [
            {"name": "echo", "handler": "echo", "port": self.echo_port,
             "keep_alive": side == "b", "backlog": 128 if side == "a" else 256},
            {"name": "tls", "handler": "echo", "port": self.tls_port,
             "tls": {"certificate": cert, "key": key}},
            {"name": "extra-" + side, "handler": "echo",
             "port": self.extra_port[side]},
        ], side, cert

    def check_generation(self, d, side, cert):
        # The kept listener's sockets get the options of now.
        s = d.connect("echo")
        self.assertEqual(ask(s, "ka"), "ka")
        self.assertEqual(keepalive_on(self.echo_port, s.getsockname()[1]),
                         side == "b")
        s.close()
        # The TLS listener serves the certificate of now.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.c.ca)
        with socket.create_connection(("127.0.0.1", self.tls_port), 30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                self.assertEqual(t.getpeercert(binary_form=True), der(cert))
                t.sendall(b"tls\n")
                self.assertEqual(t.recv(16), b"tls\n")
        # Only the extra listener of this set accepts.
        other = "b" if side == "a" else "a"
        with socket.create_connection(("127.0.0.1", self.extra_port[side]),
                                      30) as e:
            self.assertEqual(ask(e, "extra"), "extra")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.extra_port[other]),
                                     30).close()

    def reload(self, d):
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reloaded configuration|reload failed", since=mark,
                       timeout=60)
        self.assertFalse(d.log_has(r"reload failed", since=mark),
                         d.log_tail())

    def test_twenty_reloads(self):
        ls, side, cert = self.listeners(0)
        d = self.start_daemon(ls, workers=2, shutdown_timeout=300)
        first = d.wait_workers(2)
        self.check_generation(d, side, cert)
        dialogues = [d.connect("echo", timeout=60) for _ in range(10)]
        for i, s in enumerate(dialogues):
            self.assertEqual(ask(s, "hello %d" % i), "hello %d" % i)
        loop = ConnectLoop(d, "echo", threads=4).start()
        loop.wait_ok(50)

        for i in range(1, RELOADS + 1):
            ls, side, cert = self.listeners(i)
            d.write_config(ls, workers=2, shutdown_timeout=300)
            self.reload(d)
            self.check_generation(d, side, cert)
            for n, s in enumerate(dialogues):
                self.assertEqual(ask(s, "reload %d %d" % (i, n)),
                                 "reload %d %d" % (i, n))
            if i == RELOADS // 2:
                self.invalid_changes_nothing(d, side, cert)
            loop.wait_ok(10)

        loop.wait_ok(50)
        ok, refused, failed = loop.stop()
        self.assertEqual(refused, 0, "connection attempts refused")
        self.assertEqual(failed, [], "dialogues reset or cut")
        # The dialogues held the first generation's workers; once they
        # end, every old worker is gone and only the last two remain.
        for s in dialogues:
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(16), b"")
            s.close()
        last = d.wait_workers(2, timeout=60)
        self.assertFalse(set(last) & set(first))

    def invalid_changes_nothing(self, d, side, cert):
        with open(d.conf_path) as f:
            good = f.read()
        d.write_config_text(good.replace('handler = "echo";',
                                         'handler = "echo"; port = = 1;', 1))
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reload failed", since=mark, timeout=60)
        self.assertTrue(d.log_has(r"%s:\d+: " % re.escape(d.conf_path),
                                  since=mark))
        self.check_generation(d, side, cert)
        d.write_config_text(good)


if __name__ == "__main__":
    unittest.main(verbosity=2)
