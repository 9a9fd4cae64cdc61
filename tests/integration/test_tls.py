"""Server-side TLS: a listener's `tls` group, driven by real clients
(python's ssl module, gnutls-cli, openssl s_client).  Certificates come
from tlscerts.py (certtool at test time)."""

import os
import queue
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import tlscerts
from kstest import (KSOCKD, Daemon, KsTestCase, plugin_so, raise_nofile,
                    recv_until_eof, run_ksockd, set_linger_rst)

GREETING = b"Please enter your name"
C = None  # the certificate set, made in setUpModule


def setUpModule():
    global C
    C = tlscerts.certs()


def tls_group(cert=None, key=None, **settings):
    """A `tls` group; cert/key default to the RSA localhost pair."""
    g = {"certificate": cert or C.rsa_cert, "key": key or C.rsa_key}
    g.update(settings)
    return g


def tls_listener(name, handler="hello", **tls):
    return {"name": name, "handler": handler, "tls": tls_group(**tls)}


def api_listener(name, **tls):
    return tls_listener(name, handler=plugin_so("api"), **tls)


def client_ctx(minv=None, maxv=None, ca=True, cert=None, key=None,
               alpn=None, ciphers=None, check_hostname=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(C.ca if ca is True else ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if not check_hostname:
        ctx.check_hostname = False
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


_open_clients = []


def close_all_clients():
    while _open_clients:
        _open_clients.pop().close()


class TlsClient:
    """An SSLSocket with a line reader (kstest's recv_line peeks, which
    SSL sockets cannot)."""

    def __init__(self, d, name, ctx=None, server_hostname="localhost",
                 session=None, timeout=10.0, handshake=True, strict=False):
        raw = d.connect(name, timeout=timeout, track=False)
        self.port = raw.getsockname()[1]
        # wrap_socket takes the descriptor over: raw is closed after it.
        self.ssl = (ctx or client_ctx()).wrap_socket(
            raw, server_hostname=server_hostname, session=session,
            do_handshake_on_connect=False, suppress_ragged_eofs=not strict)
        self.f = self.ssl.makefile("rb")
        _open_clients.append(self)
        try:
            if handshake:
                self.ssl.do_handshake()
        except BaseException:
            self.close()
            raise

    def line(self):
        got = self.f.readline()
        if not got.endswith(b"\n"):
            raise EOFError("connection closed after %r" % got)
        return got.rstrip(b"\n").rstrip(b"\r")

    def send(self, data):
        self.ssl.sendall(data)

    def cmd(self, text):
        self.send(text.encode() + b"\n")
        return self.line().decode()

    def close(self):
        self.f.close()
        self.ssl.close()
        if self in _open_clients:
            _open_clients.remove(self)


_TLS_RE = re.compile(r"^tls version=(\S+) cipher=(\S+) sni=(\S+) alpn=(\S+)"
                     r" subject=(.*) verified=(-?\d+)$")


def tls_info(c):
    """The api plugin's `tls` reply as a dict."""
    reply = c.cmd("tls")
    m = _TLS_RE.match(reply)
    if m is None:
        raise AssertionError("bad tls reply %r" % reply)
    return dict(zip(("version", "cipher", "sni", "alpn", "subject",
                     "verified"), m.groups()))


def rejected(fn):
    """True if fn (a handshake plus a read) failed the way a rejected TLS
    client sees it: an alert during/after the handshake, or a close."""
    try:
        fn()
    except (ssl.SSLError, EOFError, ConnectionError, OSError):
        return True
    return False


class Interactive:
    """A command-line client on pipes; stdout lines go to a queue."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.q = queue.Queue()
        self.out = []
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        self.errt = threading.Thread(target=self._read_err, daemon=True)
        self.errt.start()

    def _read(self):
        for raw in self.p.stdout:
            self.q.put(raw)
        self.q.put(None)

    def _read_err(self):
        self.err = self.p.stderr.read()

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def expect(self, line, timeout=10.0):
        """Waits for an exact stdout line (other lines are skipped: the
        tools print handshake details there)."""
        want = line if isinstance(line, bytes) else line.encode()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                raw = self.q.get(timeout=max(left, 0.01))
            except queue.Empty:
                raw = False
            if raw is None or raw is False:
                self.kill()
                raise AssertionError(
                    "no line %r (%s); stdout %r, stderr %r" % (
                        want, "EOF" if raw is None else "timeout",
                        b"".join(self.out), self.err))
            self.out.append(raw)
            if raw.rstrip(b"\r\n") == want:
                return

    def finish(self, timeout=15.0):
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("client did not exit; stdout %r stderr %r"
                                 % (b"".join(self.out), self.err))
        self.errt.join(5)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdin.close()


class TlsTestCase(KsTestCase):
    def tearDown(self):
        close_all_clients()
        super().tearDown()

    def hello(self, d, name, ctx=None, server_hostname="localhost",
              session=None):
        """The seed dialogue over TLS; returns the client (still open)."""
        c = TlsClient(d, name, ctx, server_hostname, session)
        self.assertEqual(c.line(), GREETING)
        c.send(b"Alice\n")
        self.assertEqual(c.line(), b"Hello, Alice!")
        c.send(b"Bob\r\n")
        self.assertEqual(c.line(), b"Hello, Bob!")
        return c

    def peer_log(self, d, port, regex, since=0, timeout=10.0):
        """Waits for a log line naming the client at 127.0.0.1:port that
        also matches regex (case-insensitive)."""
        return d.wait_for_log(r"(?i)(?=.*127\.0\.0\.1:%d\b).*%s" % (
            port, regex), timeout=timeout, since=since)


class DialogueTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            tls_listener("rsa"),
            tls_listener("ec", cert=C.ec_cert, key=C.ec_key),
            tls_listener("dual", cert=[C.rsa_cert, C.ec_cert],
                         key=[C.rsa_key, C.ec_key]),
            tls_listener("tls12", priority="NORMAL:-VERS-ALL:+VERS-TLS1.2"),
            {"name": "plain", "handler": "hello"},
        ])

    def check(self, name, version, cert, ctx=None):
        c = self.hello(self.d, name, ctx or client_ctx(version, version))
        self.assertEqual(c.ssl.version(), {
            ssl.TLSVersion.TLSv1_3: "TLSv1.3",
            ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version])
        self.assertEqual(c.ssl.getpeercert(binary_form=True), der(cert))
        c.close()

    def test_tls13_rsa(self):
        self.check("rsa", ssl.TLSVersion.TLSv1_3, C.rsa_cert)

    def test_tls12_rsa(self):
        self.check("rsa", ssl.TLSVersion.TLSv1_2, C.rsa_cert)

    def test_tls13_ecdsa(self):
        self.check("ec", ssl.TLSVersion.TLSv1_3, C.ec_cert)

    def test_tls12_ecdsa(self):
        self.check("ec", ssl.TLSVersion.TLSv1_2, C.ec_cert)

    def test_dual_picks_by_cipher(self):
        # TLS 1.2 suites name the key type: each gets its own certificate.
        v = ssl.TLSVersion.TLSv1_2
        self.check("dual", v, C.ec_cert,
                   client_ctx(v, v, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
        self.check("dual", v, C.rsa_cert,
                   client_ctx(v, v, ciphers="ECDHE-RSA-AES128-GCM-SHA256"))

    def test_dual_tls13(self):
        c = self.hello(self.d, "dual", client_ctx(ssl.TLSVersion.TLSv1_3))
        self.assertIn(c.ssl.getpeercert(binary_form=True),
                      (der(C.rsa_cert), der(C.ec_cert)))

    def test_priority_limits_version(self):
        v12, v13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
        self.check("tls12", v12, C.rsa_cert)
        self.assertTrue(rejected(lambda: self.hello(
            self.d, "tls12", client_ctx(v13, v13))))
        # The listener is still fine.
        self.check("tls12", v12, C.rsa_cert)

    def test_close_notify_both_ways(self):
        # EOF ends the hello session: our close_notify is that EOF, and the
        # daemon answers with its own before closing.
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            c = self.hello(self.d, "rsa", client_ctx(v, v))
            raw = c.ssl.unwrap()
            self.assertEqual(recv_until_eof(raw), b"", v)
            raw.close()

    def test_server_close_sends_close_notify(self):
        # The handler ends first (daytime-like): a strict client must see
        # close_notify, not a bare TCP FIN that could be a truncation.
        d = self.start_daemon([api_listener("api")], subdir="api")
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            c = TlsClient(d, "api", client_ctx(v, v), strict=True)
            self.assertEqual(c.cmd("quit"), "bye")
            self.assertEqual(c.ssl.recv(100), b"", v)
            c.close()

    def test_plain_listener_unaffected(self):
        s = self.d.connect("plain")
        self.assertLine(s, GREETING)
        s.sendall(b"Eve\n")
        self.assertLine(s, b"Hello, Eve!")

    def test_verification_by_client(self):
        # What the client checks: the chain, the name (DNS and IP SANs).
        c = self.hello(self.d, "rsa", server_hostname="localhost")
        c.close()
        ctx = client_ctx()
        raw = self.d.connect("ec", track=False)
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
            pass
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsClient(self.d, "rsa", client_ctx(ca=C.client_ca))
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsClient(self.d, "rsa", server_hostname="b.example")

    @unittest.skipIf(shutil.which("gnutls-cli") is None, "no gnutls-cli")
    def test_gnutls_cli(self):
        host, port = self.d.address("rsa")
        for prio in ("NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"):
            cli = Interactive(["gnutls-cli", "--x509cafile", C.ca,
                               "--priority", prio, "-p", str(port),
                               "localhost"])
            cli.expect(GREETING)
            cli.send(b"Alice\n")
            cli.expect(b"Hello, Alice!")
            cli.send(b"Bob\n")
            cli.expect(b"Hello, Bob!")
            # stdin EOF: gnutls-cli sends close_notify, the session ends.
            self.assertEqual(cli.finish(), 0, cli.err)
            out = b"".join(cli.out)
            self.assertIn(b"The certificate is trusted", out)
            self.assertIn(b"TLS1.2" if "TLS1.2" in prio else b"TLS1.3", out)

    @unittest.skipIf(shutil.which("gnutls-cli") is None, "no gnutls-cli")
    def test_gnutls_cli_pipe(self):
        host, port = self.d.address("ec")
        p = subprocess.run(
            ["gnutls-cli", "--x509cafile", C.ca, "-p", str(port),
             "localhost"], input=b"Alice\nBob\n", stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"\n" + GREETING + b"\nHello, Alice!\nHello, Bob!\n",
                      p.stdout)

    @unittest.skipIf(shutil.which("gnutls-cli") is None, "no gnutls-cli")
    def test_gnutls_cli_old_versions_refused(self):
        # The default priority drops TLS 1.0 and 1.1.
        host, port = self.d.address("rsa")
        p = subprocess.run(
            ["gnutls-cli", "--x509cafile", C.ca, "-p", str(port),
             "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0",
             "localhost"], input=b"Alice\n", stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn(GREETING, p.stdout)
        self.hello(self.d, "rsa").close()

    @unittest.skipIf(shutil.which("openssl") is None, "no openssl")
    def test_openssl_s_client(self):
        host, port = self.d.address("rsa")
        for extra in ([], ["-tls1_2"]):
            cli = Interactive(["openssl", "s_client", "-connect",
                               "127.0.0.1:%d" % port, "-servername",
                               "localhost", "-CAfile", C.ca,
                               "-verify_return_error", "-quiet",
                               "-no_ign_eof"] + extra)
            cli.expect(GREETING)
            cli.send(b"Alice\n")
            cli.expect(b"Hello, Alice!")
            cli.send(b"Bob\n")
            cli.expect(b"Hello, Bob!")
            self.assertEqual(cli.finish(), 0, cli.err)
            self.assertIn(b"verify return:1", cli.err)

    @unittest.skipIf(shutil.which("openssl") is None, "no openssl")
    def test_renegotiation_refused(self):
        # TLS 1.2 client-initiated renegotiation ("R" in s_client) is
        # refused; the daemon keeps serving.
        host, port = self.d.address("rsa")
        cli = Interactive(["openssl", "s_client", "-connect",
                           "127.0.0.1:%d" % port, "-servername", "localhost",
                           "-CAfile", C.ca, "-tls1_2"])
        cli.expect(GREETING)
        cli.send(b"Alice\n")
        cli.expect(b"Hello, Alice!")
        cli.send(b"R\n")
        cli.finish()
        self.assertIn(b"no renegotiation", cli.err + b"".join(cli.out))
        c = self.hello(self.d, "rsa", client_ctx())
        c.close()


class SniAlpnTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        sni = [{"name": "b.example", "certificate": C.b_cert,
                "key": C.b_key}]
        self.d = self.start_daemon([
            tls_listener("sni", sni=sni),
            api_listener("sni-api", sni=sni),
            tls_listener("alpn", alpn=["kst/1", "kst/2"]),
            api_listener("alpn-api", alpn=["kst/1", "kst/2"]),
            api_listener("plain-tls"),
            {"name": "plain-api", "handler": plugin_so("api")},
        ])

    def test_sni_selects_certificate(self):
        c = self.hello(self.d, "sni", server_hostname="b.example")
        cert = c.ssl.getpeercert()
        self.assertIn((("commonName", "b.example"),), cert["subject"])
        self.assertIn(("DNS", "b.example"), cert["subjectAltName"])
        c.close()
        c = self.hello(self.d, "sni", server_hostname="localhost")
        cert = c.ssl.getpeercert()
        self.assertIn((("commonName", "localhost"),), cert["subject"])
        self.assertIn(("IP Address", "127.0.0.1"), cert["subjectAltName"])
        c.close()

    def test_sni_unknown_name_gets_default(self):
        ctx = client_ctx(check_hostname=False)
        c = self.hello(self.d, "sni", ctx, server_hostname="c.example")
        self.assertEqual(c.ssl.getpeercert(binary_form=True),
                         der(C.rsa_cert))

    def test_sni_without_server_name(self):
        # An IP literal as server_hostname: python sends no SNI.
        c = self.hello(self.d, "sni", server_hostname="127.0.0.1")
        self.assertEqual(c.ssl.getpeercert(binary_form=True),
                         der(C.rsa_cert))

    def test_sni_reported_to_handler(self):
        c = TlsClient(self.d, "sni-api", server_hostname="b.example")
        info = tls_info(c)
        self.assertEqual(info["sni"], "b.example")
        c.close()
        c = TlsClient(self.d, "sni-api", server_hostname="127.0.0.1")
        self.assertEqual(tls_info(c)["sni"], "-")

    def test_alpn(self):
        c = self.hello(self.d, "alpn", client_ctx(alpn=["kst/2"]))
        self.assertEqual(c.ssl.selected_alpn_protocol(), "kst/2")
        c.close()
        # The server's order wins.
        c = self.hello(self.d, "alpn", client_ctx(alpn=["kst/2", "kst/1"]))
        self.assertEqual(c.ssl.selected_alpn_protocol(), "kst/1")
        c.close()
        c = self.hello(self.d, "alpn")
        self.assertIsNone(c.ssl.selected_alpn_protocol())

    def test_alpn_reported_to_handler(self):
        c = TlsClient(self.d, "alpn-api", client_ctx(alpn=["kst/2"]))
        info = tls_info(c)
        self.assertEqual(info["alpn"], "kst/2")
        self.assertEqual(info["version"], "TLS1.3")
        self.assertNotEqual(info["cipher"], "-")
        self.assertEqual(info["sni"], "localhost")
        c.close()
        c = TlsClient(self.d, "alpn-api")
        self.assertEqual(tls_info(c)["alpn"], "-")

    def test_handler_tls_info(self):
        v = ssl.TLSVersion.TLSv1_2
        c = TlsClient(self.d, "plain-tls", client_ctx(v, v))
        info = tls_info(c)
        self.assertEqual(info["version"], "TLS1.2")
        self.assertNotEqual(info["cipher"], "-")
        self.assertEqual(info["subject"], "-")
        self.assertEqual(info["verified"], "0")
        # The api plugin's other commands go through TLS as well.
        self.assertRegex(c.cmd("info"),
                         r"^peer=127\.0\.0\.1:%d local=127\.0\.0\.1:\d+ "
                         r"listener=plain-tls$" % c.port)
        self.assertEqual(c.cmd("quit"), "bye")

    def test_plain_connection_tls_info(self):
        s = self.d.connect("plain-api")
        s.sendall(b"tls\n")
        self.assertLine(s, "tls version=- cipher=- sni=- alpn=- subject=- "
                        "verified=0")


class ResumptionTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            tls_listener("hello", session_tickets=True),
            tls_listener("notickets", session_tickets=False),
        ])

    def resume(self, version, name="hello", expect=True):
        ctx = client_ctx(version, version)
        c = self.hello(self.d, name, ctx)
        self.assertFalse(c.ssl.session_reused)
        sess = c.ssl.session
        self.assertIsNotNone(sess)
        c.close()
        c = self.hello(self.d, name, ctx, session=sess)
        self.assertEqual(c.ssl.session_reused, expect, version)
        c.close()

    def test_tickets_off(self):
        # No tickets and no server-side session cache: full handshakes.
        self.resume(ssl.TLSVersion.TLSv1_2, "notickets", False)
        self.resume(ssl.TLSVersion.TLSv1_3, "notickets", False)

    def test_tls12(self):
        self.resume(ssl.TLSVersion.TLSv1_2)

    def test_tls13_ticket(self):
        # The greeting was read, so the ticket that came before it has
        # been processed by the time we take the session.
        self.resume(ssl.TLSVersion.TLSv1_3)

    @unittest.skipIf(shutil.which("gnutls-cli") is None, "no gnutls-cli")
    def test_gnutls_cli_resume(self):
        host, port = self.d.address("hello")
        for prio in ("NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"):
            p = subprocess.run(
                ["gnutls-cli", "--x509cafile", C.ca, "-p", str(port),
                 "--priority", prio, "--resume", "--waitresumption",
                 "localhost"], input=b"Alice\n", stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"This is a resumed session", p.stdout, prio)
            self.assertIn(b"Hello, Alice!", p.stdout)


class MutualTlsTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            api_listener("require", client_ca=C.client_ca,
                         verify_client="require"),
            api_listener("optional", client_ca=C.client_ca,
                         verify_client="optional"),
            api_listener("none", client_ca=C.client_ca,
                         verify_client="none"),
            api_listener("default"),
        ])

    def good(self, **kw):
        return client_ctx(cert=C.client_cert, key=C.client_key, **kw)

    def untrusted(self, **kw):
        return client_ctx(cert=C.untrusted_cert, key=C.untrusted_key, **kw)

    def info(self, name, ctx):
        c = TlsClient(self.d, name, ctx)
        try:
            return tls_info(c)
        finally:
            c.close()

    def assertRejected(self, name, ctx):
        mark = self.d.mark()
        self.assertTrue(rejected(lambda: self.info(name, ctx)),
                        "%s accepted the client" % name)
        self.d.wait_for_log(r"(?i)handshake|certificate", since=mark)

    def test_require(self):
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            info = self.info("require", self.good(minv=v, maxv=v))
            self.assertEqual(info["verified"], "1")
            self.assertIn("CN=" + tlscerts.CLIENT_SUBJECT_CN,
                          info["subject"])
            self.assertRejected("require", client_ctx(v, v))
            self.assertRejected("require", self.untrusted(minv=v, maxv=v))
        # Still serving.
        self.assertEqual(self.info("require", self.good())["verified"], "1")

    def test_optional(self):
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            info = self.info("optional", client_ctx(v, v))
            self.assertEqual((info["verified"], info["subject"]), ("0", "-"))
            info = self.info("optional", self.good(minv=v, maxv=v))
            self.assertEqual(info["verified"], "1")
            self.assertIn("CN=" + tlscerts.CLIENT_SUBJECT_CN,
                          info["subject"])
            info = self.info("optional", self.untrusted(minv=v, maxv=v))
            self.assertEqual(info["verified"], "-1")
            self.assertIn("CN=" + tlscerts.CLIENT_SUBJECT_CN,
                          info["subject"])

    def test_none_does_not_ask(self):
        for name in ("none", "default"):
            info = self.info(name, self.good())
            self.assertEqual((info["verified"], info["subject"]), ("0", "-"))
            info = self.info(name, self.untrusted())
            self.assertEqual((info["verified"], info["subject"]), ("0", "-"))

    @unittest.skipIf(shutil.which("openssl") is None, "no openssl")
    def test_certificate_request_seen_by_openssl(self):
        for name, asked in (("require", True), ("optional", True),
                            ("none", False)):
            host, port = self.d.address(name)
            p = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                 "-servername", "localhost", "-CAfile", C.ca, "-tls1_2",
                 "-cert", C.client_cert, "-key", C.client_key],
                input=b"tls\n", stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, timeout=30)
            out = p.stdout.decode("utf-8", "replace")
            # Printed only when a CertificateRequest came.
            self.assertEqual("Requested Signature Algorithms" in out,
                             asked, out)


class BadInputTest(TlsTestCase):
    def setUp(self):
        super().setUp()
        # Only "short" has the tight handshake_timeout its two tests are
        # about; no handshake on a loaded machine comes near the others'.
        ec = {"cert": C.ec_cert, "key": C.ec_key}
        self.d = self.start_daemon([
            tls_listener("hello", handshake_timeout=60, **ec),
            tls_listener("short", handshake_timeout=1, **ec),
            tls_listener("many", handshake_timeout=120, **ec),
        ])

    def closed_without_greeting(self, s):
        try:
            data = recv_until_eof(s)
        except ConnectionResetError:
            data = b""
        self.assertNotIn(GREETING, data)

    def test_garbage(self):
        mark = self.d.mark()
        s = self.d.connect("hello")
        port = s.getsockname()[1]
        s.sendall(b"\x00\xffgarbage\r\n" * 100)
        self.closed_without_greeting(s)
        self.peer_log(self.d, port, r"handshake", since=mark)
        self.hello(self.d, "hello").close()

    def test_garbage_record_header(self):
        # A plausible handshake record header announcing a huge record.
        mark = self.d.mark()
        s = self.d.connect("hello")
        port = s.getsockname()[1]
        s.sendall(b"\x16\x03\x01\xff\xff" + b"\x01" * 1000)
        s.shutdown(socket.SHUT_WR)
        self.closed_without_greeting(s)
        self.peer_log(self.d, port, r"handshake", since=mark)
        self.hello(self.d, "hello").close()

    def test_plaintext_client(self):
        mark = self.d.mark()
        s = self.d.connect("hello")
        port = s.getsockname()[1]
        s.sendall(b"Alice\n")
        self.closed_without_greeting(s)
        self.peer_log(self.d, port, r"handshake", since=mark)
        self.hello(self.d, "hello").close()

    def test_silent_client_times_out(self):
        mark = self.d.mark()
        t0 = time.monotonic()
        s = self.d.connect("short")
        port = s.getsockname()[1]
        other = self.hello(self.d, "hello")  # unaffected meanwhile
        self.closed_without_greeting(s)
        took = time.monotonic() - t0
        # Not before the 1 s handshake_timeout (with slack for the timer);
        # the upper bound only catches a timeout that never fires.
        self.assertGreater(took, 0.5)
        self.assertLess(took, 30.0)
        self.peer_log(self.d, port, r"time", since=mark)
        other.send(b"Carol\n")
        self.assertEqual(other.line(), b"Hello, Carol!")

    def test_handshake_timeout_leaves_established_alone(self):
        # Only the handshake is bounded: a session idle for longer than
        # handshake_timeout keeps working.  (The sleep is the subject.)
        c = self.hello(self.d, "short")
        time.sleep(2.0)
        c.send(b"Dave\n")
        self.assertEqual(c.line(), b"Hello, Dave!")

    def test_client_aborts_handshake(self):
        # Clients that reject the certificate (wrong CA / name) send an
        # alert mid-handshake: the daemon logs and carries on.
        mark = self.d.mark()
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsClient(self.d, "hello", client_ctx(ca=C.client_ca))
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsClient(self.d, "hello", server_hostname="wrong.example")
        self.d.wait_for_log(r"(?i)handshake", since=mark)
        self.hello(self.d, "hello").close()

    def test_reset_mid_handshake(self):
        for i in range(20):
            c = TlsClient(self.d, "hello", handshake=False)
            c.ssl.setblocking(False)
            try:
                c.ssl.do_handshake()
            except ssl.SSLWantReadError:
                pass
            set_linger_rst(c.ssl)
            c.close()
        self.hello(self.d, "hello").close()

    def test_concurrent_handshakes(self):
        n = 500
        raise_nofile()
        ctx = client_ctx()
        errors = []
        done = []
        lock = threading.Lock()
        go = threading.Event()

        def one(i):
            try:
                go.wait(30)
                c = TlsClient(self.d, "many", ctx, timeout=60.0)
                try:
                    if c.line() != GREETING:
                        raise AssertionError("bad greeting")
                    c.send(b"n%d\n" % i)
                    if c.line() != b"Hello, n%d!" % i:
                        raise AssertionError("bad reply")
                finally:
                    c.close()
                with lock:
                    done.append(i)
            except Exception as e:  # noqa: BLE001 (reported below)
                with lock:
                    errors.append("%d: %r" % (i, e))

        threads = [threading.Thread(target=one, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(done), n)


class ConfigCheckTest(KsTestCase):
    """ksockd -t: TLS problems exit 1 naming the tls group's FILE:LINE."""

    def check_fails(self, tls, *fragments):
        d = Daemon([{"name": "t", "handler": "hello", "tls": tls}],
                   tmpdir=tempfile.mkdtemp(dir=self.tmpdir))
        try:
            rc, out = run_ksockd(["-t", "-c", d.conf_path])
            self.assertEqual(rc, 1, out)
            self.assertRegex(out, r"(?m)^%s:%d: " % (
                re.escape(d.conf_path), d.listener_lines["t"]))
            for frag in fragments:
                self.assertIn(frag, out)
            return out
        finally:
            d.cleanup()

    def test_valid(self):
        d = Daemon([tls_listener("t", sni=[{"name": "b.example",
                                           "certificate": C.b_cert,
                                           "key": C.b_key}],
                                 alpn=["kst/1"], client_ca=C.client_ca,
                                 verify_client="optional",
                                 handshake_timeout=5,
                                 session_tickets=True)],
                   tmpdir=tempfile.mkdtemp(dir=self.tmpdir))
        try:
            rc, out = run_ksockd(["-t", "-c", d.conf_path])
            self.assertEqual(rc, 0, out)
            self.assertIn("configuration OK", out)
        finally:
            d.cleanup()

    def test_missing_certificate_file(self):
        missing = os.path.join(self.tmpdir, "nope.pem")
        self.check_fails(tls_group(cert=missing), "nope.pem")

    def test_missing_key_file(self):
        missing = os.path.join(self.tmpdir, "nope.key")
        self.check_fails(tls_group(key=missing), "nope.key")

    def test_key_mismatch(self):
        self.check_fails(tls_group(key=C.spare_key))

    def test_key_mismatch_second_pair(self):
        self.check_fails(tls_group(cert=[C.rsa_cert, C.ec_cert],
                                   key=[C.rsa_key, C.b_key]))

    def test_bad_priority(self):
        self.check_fails(tls_group(priority="NORMAL:+NO-SUCH-THING"))

    def test_missing_client_ca(self):
        missing = os.path.join(self.tmpdir, "noca.pem")
        self.check_fails(tls_group(client_ca=missing,
                                   verify_client="require"), "noca.pem")

    def test_bad_verify_client(self):
        self.check_fails(tls_group(verify_client="sometimes"))

    def test_not_pem(self):
        junk = os.path.join(self.tmpdir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        self.check_fails(tls_group(cert=junk), "junk.pem")

    def test_relative_paths_from_config_dir(self):
        # Like plugin_dir: relative to the config file's directory, not to
        # the working directory (-t runs from elsewhere here).
        tmp = tempfile.mkdtemp(dir=self.tmpdir)
        os.mkdir(os.path.join(tmp, "tls"))
        for src, dst in ((C.ec_cert, "cert.pem"), (C.ec_key, "key.pem"),
                         (C.client_ca, "ca.pem")):
            shutil.copy(src, os.path.join(tmp, "tls", dst))
        d = Daemon([{"name": "t", "handler": "hello",
                     "tls": {"certificate": "tls/cert.pem",
                             "key": "tls/key.pem",
                             "client_ca": "tls/ca.pem",
                             "verify_client": "optional",
                             "sni": [{"name": "x.example",
                                      "certificate": "tls/cert.pem",
                                      "key": "tls/key.pem"}]}}],
                   tmpdir=tmp)
        try:
            p = subprocess.run([KSOCKD, "-t", "-c", d.conf_path], cwd="/",
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 0, out)
        finally:
            d.cleanup()

    def test_start_fails_too(self):
        d = self.start_daemon([{"name": "t", "handler": "hello",
                                "tls": tls_group(key=C.spare_key)}],
                              wait_ready=False)
        self.assertEqual(d.wait(), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
