"""Signals: graceful stop (SIGTERM, SIGINT) bounded by shutdown_timeout, and
reload (SIGHUP), including a broken configuration on reload."""

import os
import re
import signal
import socket
import time
import unittest

from kstest import (KsTestCase, free_port, plugin_so, recv_line,
                    recv_until_eof)

GREETING = b"Please enter your name"


def connect_refused(addr):
    """True if a connection to addr is refused right away."""
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(addr)
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        return False


class StopTest(KsTestCase):
    def open_mid_dialogue(self, d, n):
        socks = []
        for i in range(n):
            s = d.connect("hello")
            self.assertLine(s, GREETING)
            s.sendall(b"Name%d\n" % i)
            self.assertLine(s, b"Hello, Name%d!" % i)
            s.sendall(b"Half a na")  # mid-line when the signal comes
            socks.append(s)
        return socks

    def graceful(self, sig, signame, nconns):
        d = self.start_daemon([
            {"name": "hello", "handler": "hello"},
            {"name": "hello-unix", "protocol": "unix", "handler": "hello"},
        ], shutdown_timeout=2)
        addr = d.address("hello")
        upath = d.address("hello-unix")
        socks = self.open_mid_dialogue(d, nconns)
        mark = d.mark()
        t0 = time.monotonic()
        d.send_signal(sig)
        d.wait_for_log(r"received %s: stopping \(%d connections? open\)" %
                       (signame, nconns), since=mark)
        # The listening sockets are gone at once.
        self.assertTrue(connect_refused(addr), "new connection accepted")
        self.assertTrue(connect_refused(upath), "unix connection accepted")
        # The server closes the open connections once the grace period
        # is over (the handlers wait for input that never comes).
        for s in socks:
            recv_until_eof(s)
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.0, "closed before shutdown_timeout")
        self.assertLess(elapsed, 2.0 + 30.0, "shutdown_timeout never ended")
        self.assertEqual(d.wait(), 0, d.log_tail())
        d.wait_for_log(r"\bstopped\b", since=mark)
        self.assertFalse(os.path.exists(upath), "unix socket left behind")

    def test_sigterm_with_connections(self):
        self.graceful(signal.SIGTERM, "SIGTERM", 3)

    def test_sigint_with_connection(self):
        self.graceful(signal.SIGINT, "SIGINT", 1)

    def test_sigterm_idle(self):
        # With nothing open the stop does not wait for shutdown_timeout,
        # which is far longer than any stop on a loaded machine.
        d = self.start_daemon([{"name": "hello", "handler": "hello"}],
                              shutdown_timeout=120)
        t0 = time.monotonic()
        d.stop()
        self.assertLess(time.monotonic() - t0, 60.0)
        d.wait_for_log(r"received SIGTERM: stopping \(0 connections open\)")
        d.wait_for_log(r"\bstopped\b")

    def test_handler_finishes_in_grace_period(self):
        d = self.start_daemon([{"name": "api", "handler": plugin_so("api")}],
                              shutdown_timeout=120)
        s = d.connect("api")
        mark = d.mark()
        s.sendall(b"sleep 500\n")
        d.wait_for_log(r"api: sleeping 500 ms", since=mark)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(recv_line(s), b"slept")
        # Once the handler has returned there is nothing left to wait for:
        # the daemon exits long before shutdown_timeout.
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")
        self.assertEqual(d.wait(), 0, d.log_tail())
        self.assertLess(time.monotonic() - t0, 60.0)
        d.wait_for_log(r"\bstopped\b", since=mark)

    def test_handler_canceled_after_grace_period(self):
        d = self.start_daemon([{"name": "api", "handler": plugin_so("api")}],
                              shutdown_timeout=1)
        s = d.connect("api")
        mark = d.mark()
        s.sendall(b"sleep 60000\n")
        d.wait_for_log(r"api: sleeping 60000 ms", since=mark)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        data = recv_until_eof(s)  # ks_sleep returns KS_ECANCELED
        self.assertNotIn(b"slept", data)
        self.assertEqual(d.wait(), 0, d.log_tail())
        # After the grace period, long before the 60 s sleep would end.
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.5, "canceled before shutdown_timeout")
        self.assertLess(elapsed, 30.0)
        d.wait_for_log(r"\bstopped\b", since=mark)


class ReloadTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.gone_port = free_port()
        self.d = self.start_daemon(self.listeners("Old greeting", True))

    def listeners(self, greeting, with_gone, with_extra=False):
        l = [{"name": "hello", "handler": "hello", "port": self.port,
              "options": {"greeting": greeting}}]
        if with_gone:
            l.append({"name": "gone", "handler": "echo",
                      "port": self.gone_port})
        if with_extra:
            l.append({"name": "extra", "handler": "echo"})
        return l

    def reload(self):
        mark = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        self.d.wait_for_log(r"(?i)reloaded", since=mark)
        self.d.parse_addresses(since=mark)
        return mark

    def test_reload(self):
        d = self.d
        old = d.connect("hello")
        self.assertLine(old, b"Old greeting")
        gone_addr = d.address("gone")
        d.write_config(self.listeners("New greeting", False, True))
        self.reload()
        new = d.connect("hello")
        self.assertLine(new, b"New greeting")
        new.sendall(b"New\n")
        self.assertLine(new, b"Hello, New!")
        # The old connection keeps its generation and goes on working.
        old.sendall(b"Bob\n")
        self.assertLine(old, b"Hello, Bob!")
        # A removed listener stops accepting, an added one starts.
        self.assertTrue(connect_refused(gone_addr))
        e = d.connect("extra")
        e.sendall(b"echoed\n")
        self.assertLine(e, b"echoed")
        self.assertEqual(d.address("hello"), ("127.0.0.1", self.port))

    def test_reload_broken_config(self):
        d = self.d
        old = d.connect("hello")
        self.assertLine(old, b"Old greeting")
        text = d.config_text(self.listeners("Broken greeting", True))
        lines = text.splitlines()
        bad_line = d.listener_lines["hello"]
        lines[bad_line - 1] = lines[bad_line - 1].replace(
            'handler = "hello";', 'handler = "hello"; port = = 1;')
        d.write_config_text("\n".join(lines) + "\n")
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"%s:%d: " % (re.escape(d.conf_path), bad_line),
                       since=mark)
        # Still the old configuration, on old and new connections.
        s = d.connect("hello")
        self.assertLine(s, b"Old greeting")
        old.sendall(b"Still\n")
        self.assertLine(old, b"Hello, Still!")
        g = d.connect("gone")
        g.sendall(b"still here\n")
        self.assertLine(g, b"still here")
        self.assertFalse(d.log_has(r"(?i)reloaded", since=mark))
        # A fixed file reloads fine afterwards.
        d.write_config(self.listeners("Fixed greeting", True))
        self.reload()
        s = d.connect("hello")
        self.assertLine(s, b"Fixed greeting")

    def test_reload_bad_plugin_options(self):
        # Valid syntax, but the plugin rejects its options: keep the old.
        d = self.d
        l = self.listeners("x", True)
        l[0]["options"] = {"greeting": "x", "no_such_option": 1}
        d.write_config(l)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"%s:%d: .*no_such_option" %
                       (re.escape(d.conf_path), d.listener_lines["hello"]),
                       since=mark)
        s = d.connect("hello")
        self.assertLine(s, b"Old greeting")

    def test_repeated_reloads(self):
        d = self.d
        for i in range(5):
            d.write_config(self.listeners("Greeting %d" % i, True))
            self.reload()
            s = d.connect("hello")
            self.assertLine(s, b"Greeting %d" % i)
            s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
