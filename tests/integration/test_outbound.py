"""Outbound connections (ks_connect, ks_tls_upgrade) through the relay test
plugin (tests/plugins/relay.c): a client connects to a relay listener,
which connects to a target (another ksockd, openssl s_server, or a python
socket), reports `CONNECTED alpn=...` or `ERROR ...`, then relays bytes
both ways.  Only loopback addresses are used."""

import os
import select
import shutil
import socket
import subprocess
import threading
import time
import unittest

import tlscerts
from kstest import (KsTestCase, free_port, plugin_so, recv_line,
                    recv_until_eof, set_linger_rst)

# ks_strerror() texts (daemon/net/chan.c).
ERESOLVE_TEXT = "name resolution failed"
ETIMEDOUT_TEXT = "timed out"
EIO_TEXT = "socket error"
ETLS_TEXT = "TLS handshake or certificate verification failed"
ECONNREFUSED = 111

C = None  # the certificate set, for the TLS tests only


def relay(name, host, port, **opts):
    # A connect timeout no loopback connect on a loaded machine comes near
    # (the plugin's default is 5 s), unless the test is about it.
    o = {"host": host, "port": str(port), "timeout": 30.0}
    o.update(opts)
    return {"name": name, "handler": plugin_so("relay"), "options": o}


def tls_relay(name, port, host="127.0.0.1", **opts):
    o = {"tls": True, "ca_file": C.ca, "server_name": "localhost"}
    o.update(opts)
    return relay(name, host, port, **o)


def tls_target(name, handler="echo", cert=None, key=None, **tls):
    g = {"certificate": cert or C.rsa_cert, "key": key or C.rsa_key}
    g.update(tls)
    return {"name": name, "handler": handler, "tls": g}


def pump(sock, data, chunk=65536):
    """Sends data on a thread (so the caller can read meanwhile), then
    half-closes; returns the thread and a list that holds any error."""
    errors = []

    def run():
        try:
            for i in range(0, len(data), chunk):
                sock.sendall(data[i:i + chunk])
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:  # reported by the caller
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


class RelayCase(KsTestCase):
    def tearDown(self):
        # Relays (started last) first: a target stopped under an open
        # relay connection would wait out its shutdown_timeout.
        self.daemons.reverse()
        super().tearDown()

    def open(self, d, name, expect="CONNECTED alpn=-"):
        s = d.connect(name)
        self.assertLine(s, expect)
        return s

    def first_line(self, d, name):
        s = d.connect(name)
        try:
            return recv_line(s).decode("utf-8", "replace"), s
        except EOFError:
            return "", s

    def assertError(self, d, name, regex):
        line, s = self.first_line(d, name)
        self.assertRegex(line, regex)
        self.assertEqual(recv_until_eof(s), b"")
        return line

    def roundtrip(self, s, data):
        t, errors = pump(s, data)
        got = recv_until_eof(s)
        t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(got), len(data))
        self.assertTrue(got == data, "relayed data differs")


class PlainRelayTest(RelayCase):
    def setUp(self):
        super().setUp()
        self.target = self.start_daemon([
            {"name": "echo", "handler": "echo"},
            {"name": "daytime", "handler": "daytime"},
            {"name": "hello", "handler": "hello"},
        ], subdir="target")
        self.echo_port = self.target.address("echo")[1]
        self.closed_port = free_port()
        self.d = self.start_daemon([
            relay("echo", "127.0.0.1", self.echo_port),
            relay("localhost", "localhost", self.echo_port),
            relay("daytime", "127.0.0.1",
                  self.target.address("daytime")[1]),
            relay("hello", "127.0.0.1", self.target.address("hello")[1]),
            relay("nohost", "no-such-host.invalid", self.echo_port),
            relay("refused", "127.0.0.1", self.closed_port),
        ], subdir="relay")

    def test_echo(self):
        s = self.open(self.d, "echo")
        s.sendall(b"hello\n")
        self.assertLine(s, "hello")
        s.sendall(b"again\r\n")
        self.assertLine(s, "again")

    def test_dialogue(self):
        s = self.open(self.d, "hello")
        self.assertLine(s, "Please enter your name")
        s.sendall(b"Alice\n")
        self.assertLine(s, "Hello, Alice!")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def test_one_megabyte_both_ways(self):
        data = os.urandom(1 << 20)
        s = self.open(self.d, "echo")
        self.roundtrip(s, data)

    def test_client_half_close(self):
        # The client's EOF reaches the target as EOF; what the target sends
        # afterwards still arrives, then the relay's EOF.
        s = self.open(self.d, "echo")
        s.sendall(b"x" * 100000 + b"\nlast line\n")
        s.shutdown(socket.SHUT_WR)
        got = recv_until_eof(s)
        self.assertEqual(got, b"x" * 100000 + b"\nlast line\n")

    def test_peer_close_reaches_client(self):
        # daytime closes first; the client, which still has its write side
        # open, sees the line and then EOF.
        s = self.open(self.d, "daytime")
        line = recv_line(s)
        self.assertTrue(line, "empty daytime line")
        self.assertEqual(recv_until_eof(s), b"")

    def test_localhost_resolved(self):
        # A name, resolved off the loop; if it yields ::1 first, that is
        # refused and the next address (127.0.0.1) is tried.
        s = self.open(self.d, "localhost")
        s.sendall(b"via name\n")
        self.assertLine(s, "via name")

    def test_unresolvable(self):
        self.assertError(self.d, "nohost",
                         r"^ERROR connect: %s errno=-?\d+$" % ERESOLVE_TEXT)
        # The daemon carries on.
        self.open(self.d, "echo")

    def test_refused(self):
        self.assertError(self.d, "refused", r"^ERROR connect: %s errno=%d$"
                         % (EIO_TEXT, ECONNREFUSED))
        self.open(self.d, "echo")

    def test_concurrent(self):
        n = 40
        errors = []
        lock = threading.Lock()

        def one(i):
            try:
                s = self.d.connect("echo", track=False)
                try:
                    if recv_line(s) != b"CONNECTED alpn=-":
                        raise AssertionError("no CONNECTED")
                    data = (b"%d " % i) * 5000
                    t, errs = pump(s, data)
                    got = recv_until_eof(s)
                    t.join(30)
                    if errs or got != data:
                        raise AssertionError("bad echo %r" % errs)
                finally:
                    s.close()
            except Exception as e:  # noqa: BLE001 (reported below)
                with lock:
                    errors.append("%d: %r" % (i, e))

        threads = [threading.Thread(target=one, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_client_reset_mid_relay(self):
        # A client that vanishes must not leave the relay hanging: the
        # target gets EOF and the daemon stops cleanly afterwards.
        s = self.open(self.d, "echo")
        s.sendall(b"y" * 50000)
        set_linger_rst(s)
        s.close()
        self.d.close_clients()
        self.d.stop()


class SocketOptionsTest(RelayCase):
    def test_outbound_socket_gets_listener_options(self):
        # keep_alive on the relay's listener reaches its outbound socket:
        # the kernel then shows a keepalive timer on it (ss -o).
        target = self.start_daemon([{"name": "echo", "handler": "echo"}],
                                   subdir="target")
        port = target.address("echo")[1]
        r = relay("ka", "127.0.0.1", port)
        r["keep_alive"] = True
        d = self.start_daemon([r], subdir="relay")
        s = self.open(d, "ka")
        s.sendall(b"ping\n")
        self.assertLine(s, "ping")
        out = subprocess.run(
            ["ss", "-tno", "state", "established",
             "( dport = :%d )" % port],
            stdout=subprocess.PIPE, universal_newlines=True,
            timeout=10).stdout
        self.assertIn("timer:(keepalive", out, out)


class ConnectTimeoutTest(RelayCase):
    """A loopback listener whose accept queue is full drops SYNs, so a
    connect to it stays pending: ks_connect's timeout must end it."""

    def setUp(self):
        super().setUp()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.fillers = []
        for _ in range(16):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
            if not self.connected_soon(c):
                break
        else:
            self.skipTest("could not fill the accept queue")
        # Make sure a fresh connect really stalls here.
        probe = socket.socket()
        probe.settimeout(2.0)
        try:
            probe.connect(("127.0.0.1", self.port))
            stalls = False
        except socket.timeout:
            stalls = True
        finally:
            probe.close()
        if not stalls:
            self.skipTest("connects to a full queue complete here")
        self.d = self.start_daemon([
            relay("slow", "127.0.0.1", self.port, timeout=1.0),
        ])

    @staticmethod
    def connected_soon(c, wait=2.0):
        """True if the non-blocking connect of c completes within `wait`
        (a stall is what is looked for: loopback connects to a queue with
        room complete at once)."""
        _, w, _ = select.select([], [c], [], wait)
        return bool(w) and c.getsockopt(socket.SOL_SOCKET,
                                        socket.SO_ERROR) == 0

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for c in self.fillers:
                c.close()
            self.lsock.close()

    def test_timeout(self):
        t0 = time.monotonic()
        self.assertError(self.d, "slow", r"^ERROR connect: %s errno=\d+$"
                         % ETIMEDOUT_TEXT)
        took = time.monotonic() - t0
        # Not before the 1 s (with slack for the timer); the upper bound
        # only catches a timeout that never fires.
        self.assertGreater(took, 0.8)
        self.assertLess(took, 30.0)


class TlsRelayTest(RelayCase):
    @classmethod
    def setUpClass(cls):
        global C
        C = tlscerts.certs()

    def setUp(self):
        super().setUp()
        self.target = self.start_daemon([
            tls_target("echo"),
            tls_target("hello", handler="hello"),
            tls_target("expired", cert=C.expired_cert, key=C.expired_key),
            tls_target("wrongcert", cert=C.wrong_cert, key=C.wrong_key),
            tls_target("mtls", client_ca=C.client_ca,
                       verify_client="require"),
            tls_target("alpn", alpn=["kst/1"]),
        ], subdir="target")
        port = {n: self.target.address(n)[1] for n in (
            "echo", "hello", "expired", "wrongcert", "mtls", "alpn")}
        self.d = self.start_daemon([
            tls_relay("ok", port["echo"]),
            tls_relay("byname", port["echo"], host="localhost"),
            tls_relay("hello", port["hello"]),
            tls_relay("wrongname", port["echo"],
                      server_name="wrong.example"),
            tls_relay("untrusted", port["echo"], ca_file=C.client_ca),
            tls_relay("expired", port["expired"]),
            tls_relay("wrongcert", port["wrongcert"]),
            tls_relay("insecure", port["echo"], ca_file=C.client_ca,
                      insecure=True),
            tls_relay("mtls", port["mtls"], cert_file=C.client_cert,
                      key_file=C.client_key),
            tls_relay("mtls-nocert", port["mtls"]),
            tls_relay("mtls-untrusted", port["mtls"],
                      cert_file=C.untrusted_cert,
                      key_file=C.untrusted_key),
            tls_relay("alpn", port["alpn"], alpn="kst/1"),
            tls_relay("alpn-list", port["alpn"], alpn="kst/9,kst/1"),
            tls_relay("alpn-none", port["alpn"]),
            relay("plain-to-tls", "127.0.0.1", port["echo"]),
            relay("noname-ok", "localhost", port["echo"], tls=True,
                  ca_file=C.ca),
            relay("noname-wrong", "127.0.0.1", port["wrongcert"],
                  tls=True, ca_file=C.ca),
        ], subdir="relay")

    def tls_error(self, name):
        mark = self.d.mark()
        self.assertError(self.d, name, r"^ERROR tls: %s$" % ETLS_TEXT)
        # The reason is logged (at info level).
        self.d.wait_for_log(r"TLS", since=mark)

    def test_verified(self):
        s = self.open(self.d, "ok")
        s.sendall(b"over tls\n")
        self.assertLine(s, "over tls")

    def test_verified_by_name(self):
        s = self.open(self.d, "byname")
        s.sendall(b"over tls\n")
        self.assertLine(s, "over tls")

    def test_one_megabyte_over_tls(self):
        data = os.urandom(1 << 20)
        s = self.open(self.d, "ok")
        self.roundtrip(s, data)

    def test_dialogue(self):
        s = self.open(self.d, "hello")
        self.assertLine(s, "Please enter your name")
        s.sendall(b"Alice\n")
        self.assertLine(s, "Hello, Alice!")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"")

    def test_wrong_host_name(self):
        self.tls_error("wrongname")

    def test_certificate_for_another_name(self):
        self.tls_error("wrongcert")

    def test_verified_without_server_name(self):
        s = self.open(self.d, "noname-ok")
        s.sendall(b"checked\n")
        self.assertLine(s, "checked")

    # KNOWN BUG (reported): with server_name unset, ks_tls_upgrade checks
    # the chain only, not the name.  Drop the decorator once fixed.
    def test_host_name_verified_without_server_name(self):
        # Without server_name the host given to ks_connect is the name to
        # verify ("including the host name" in plugin.h).
        self.tls_error("noname-wrong")

    def test_untrusted_ca(self):
        self.tls_error("untrusted")

    def test_expired(self):
        self.tls_error("expired")

    def test_insecure(self):
        mark = self.d.mark()
        s = self.open(self.d, "insecure")
        self.d.wait_for_log(r"warn: .*verification disabled", since=mark)
        s.sendall(b"unchecked\n")
        self.assertLine(s, "unchecked")

    def test_mutual_tls(self):
        s = self.open(self.d, "mtls")
        s.sendall(b"with cert\n")
        self.assertLine(s, "with cert")

    def assertRefusedByServer(self, name):
        # In TLS 1.3 the client finishes its handshake before the server
        # has checked the client certificate: the refusal may come as a
        # handshake error or as the end of the relayed stream.
        line, s = self.first_line(self.d, name)
        if line.startswith("ERROR tls: "):
            self.assertEqual(recv_until_eof(s), b"")
            return
        self.assertEqual(line, "CONNECTED alpn=-")
        try:
            s.sendall(b"should not echo\n")
            got = recv_until_eof(s)
        except ConnectionError:
            got = b""
        self.assertNotIn(b"should not echo", got)

    def test_mutual_tls_without_cert(self):
        self.assertRefusedByServer("mtls-nocert")

    def test_mutual_tls_untrusted_cert(self):
        self.assertRefusedByServer("mtls-untrusted")

    def test_alpn(self):
        s = self.open(self.d, "alpn", "CONNECTED alpn=kst/1")
        s.sendall(b"alpn\n")
        self.assertLine(s, "alpn")
        self.open(self.d, "alpn-list", "CONNECTED alpn=kst/1")
        self.open(self.d, "alpn-none", "CONNECTED alpn=-")

    def test_plain_client_to_tls_server(self):
        # No upgrade: the relay's bytes are not a ClientHello, the server
        # gives up and the relay passes on its EOF.
        s = self.open(self.d, "plain-to-tls")
        s.sendall(b"not tls\n")
        s.shutdown(socket.SHUT_WR)
        got = recv_until_eof(s)
        self.assertNotIn(b"not tls", got)


@unittest.skipIf(shutil.which("openssl") is None, "no openssl")
class OpensslTargetTest(RelayCase):
    """openssl s_server as the target (-rev: replies each line reversed)."""

    @classmethod
    def setUpClass(cls):
        global C
        C = tlscerts.certs()

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.srv = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port,
             "-cert", C.ec_cert, "-key", C.ec_key, "-rev", "-naccept", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        # s_server prints ACCEPT once it listens.
        self.srv_out = []
        for raw in self.srv.stdout:
            self.srv_out.append(raw)
            if raw.startswith(b"ACCEPT"):
                break
        else:
            self.fail("openssl s_server did not start: %r" %
                      b"".join(self.srv_out))

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if self.srv.poll() is None:
                self.srv.kill()
            self.srv.wait()
            self.srv.stdout.close()

    def test_reverse(self):
        d = self.start_daemon([tls_relay("r", self.port, alpn="kst/1")])
        s = self.open(d, "r")
        s.sendall(b"hello openssl\n")
        self.assertLine(s, "lssnepo olleh")


if __name__ == "__main__":
    unittest.main(verbosity=2)
