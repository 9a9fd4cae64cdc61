"""The ksock client tool against ksockd, openssl s_server and gnutls-serv:
the seed's dialogue over TCP and Unix sockets, half-close, TLS with
verification (and its failures), client certificates, and the exit
statuses (0 ok, 1 usage, 2 network, 3 TLS, 4 timeout).  `ksock --udp`
against a Python UDP server thread and ksockd's UDP echo."""

import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tlscerts
from kstest import BUILDDIR, KsTestCase, bad_output, free_port

KSOCK = os.environ.get("KSOCK") or os.path.join(BUILDDIR, "ksock")
GREETING = "Please enter your name"
CLOSED = "Server closed a connection"
RUN_TIMEOUT = 30
C = None


def setUpModule():
    global C
    C = tlscerts.certs()


def ksock_raw(args, input=b"", stdin=None, timeout=RUN_TIMEOUT):
    """Runs ksock to completion: (exit status, stdout bytes, stderr text)."""
    kw = {"input": input} if stdin is None else {"stdin": stdin}
    p = subprocess.run([KSOCK] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, **kw)
    err = p.stderr.decode("utf-8", "replace")
    pat = bad_output(err)
    if pat is not None:
        raise AssertionError("ksock stderr contains %r:\n%s" % (pat, err))
    return p.returncode, p.stdout, err


def ksock(args, input=b"", stdin=None, timeout=RUN_TIMEOUT):
    """Runs ksock to completion: (exit status, stdout, stderr) as text."""
    rc, out, err = ksock_raw(args, input, stdin, timeout)
    return rc, out.decode("utf-8", "replace"), err


def ksock_udp(args, input, replies, wait="0.5"):
    """Runs `ksock --udp -w WAIT ARGS` to completion with input on its
    stdin, which stays open until the output `replies` has come: after its
    EOF ksock only has to see silence for WAIT seconds, whatever the
    machine's speed.  (A line without LF goes out only at that EOF: its
    reply needs a generous WAIT.)  Returns (exit status, stdout bytes,
    stderr text)."""
    p = subprocess.Popen([KSOCK, "--udp", "-w", wait] +
                         [str(a) for a in args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(input)
        p.stdin.flush()
        got = b""
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(got) < len(replies) and p.poll() is None:
            r, _, _ = select.select([p.stdout], [], [],
                                    max(0.0, deadline - time.monotonic()))
            data = os.read(p.stdout.fileno(), 1 << 17) if r else b""
            if not data:
                break
            got += data
        p.stdin.close()
        p.stdin = None  # communicate() then only reads
        rest, err = p.communicate(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    err = err.decode("utf-8", "replace")
    pat = bad_output(err)
    if pat is not None:
        raise AssertionError("ksock stderr contains %r:\n%s" % (pat, err))
    return p.returncode, got + rest, err


class ServerProcess:
    """A TLS test server (openssl s_server, gnutls-serv) whose output is read
    until it says it listens; stopped by PID at cleanup."""

    def __init__(self, argv):
        # Unbuffered: readline() then never pulls a second line into a
        # Python buffer that select() cannot see.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0)
        self.seen = []

    def wait_for(self, text, timeout=20.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not r:
                break
            line = fd.readline().decode("utf-8", "replace")
            if not line:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError("server never printed %r:\n%s" %
                             (text, "".join(self.seen)))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def wait_port(port, timeout=20.0):
    """Poll-connects until 127.0.0.1:port accepts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("nothing listens on port %d" % port)
            select.select([], [], [], 0.05)


class PlainTest(KsTestCase):
    def hello_daemon(self):
        return self.start_daemon([
            {"name": "hello", "handler": "hello"},
            {"name": "uhello", "protocol": "unix", "handler": "hello"},
            {"name": "echo", "handler": "echo"},
            {"name": "daytime", "handler": "daytime"},
        ])

    def check_dialogue(self, args):
        rc, out, err = ksock(args, input=b"Alice\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(),
                         [GREETING, "Hello, Alice!", CLOSED], err)

    def test_hello_tcp(self):
        d = self.hello_daemon()
        self.check_dialogue(["127.0.0.1", d.address("hello")[1]])
        self.check_dialogue(["localhost", d.address("hello")[1]])

    def test_hello_unix(self):
        d = self.hello_daemon()
        self.check_dialogue(["unix:" + d.address("uhello")])

    def test_unterminated_last_line_is_sent(self):
        d = self.hello_daemon()
        rc, out, err = ksock(["127.0.0.1", d.address("hello")[1]],
                             input=b"Bob\nCarol")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [GREETING, "Hello, Bob!",
                                            "Hello, Carol!", CLOSED])

    def test_half_close(self):
        # echo closes only after it has read our EOF: every line comes
        # back after stdin ended, so the read side outlived the half-close.
        d = self.hello_daemon()
        lines = ["line %d" % i for i in range(2000)]
        rc, out, err = ksock(["127.0.0.1", d.address("echo")[1]],
                             input=("\n".join(lines) + "\n").encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), lines + [CLOSED])

    def test_stdin_file_and_devnull(self):
        d = self.hello_daemon()
        port = d.address("hello")[1]
        with open(os.devnull, "rb") as f:
            rc, out, err = ksock(["127.0.0.1", port], stdin=f)
        self.assertEqual((rc, out.splitlines()), (0, [GREETING, CLOSED]), err)
        path = os.path.join(self.tmpdir, "input.txt")
        with open(path, "wb") as f:
            f.write(b"Dave\n")
        with open(path, "rb") as f:
            rc, out, err = ksock(["127.0.0.1", port], stdin=f)
        self.assertEqual(out.splitlines(), [GREETING, "Hello, Dave!", CLOSED])

    def test_server_closes_while_stdin_open(self):
        d = self.hello_daemon()
        p = subprocess.Popen([KSOCK, "127.0.0.1", str(d.address("daytime")[1])],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            # stdin stays open: ksock must end on the server's EOF alone
            out = p.stdout.read()
            err = p.stderr.read()
            rc = p.wait(RUN_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertEqual(lines[1], CLOSED)

    def test_connection_refused(self):
        port = free_port()
        rc, out, err = ksock(["127.0.0.1", port])
        self.assertEqual(rc, 2, err)
        self.assertIn("refused", err)
        rc, out, err = ksock(["unix:" + os.path.join(self.tmpdir, "none")])
        self.assertEqual(rc, 2, err)

    def test_unresolvable(self):
        rc, out, err = ksock(["no-such-host.invalid", "80"])
        self.assertEqual(rc, 2, err)
        self.assertIn("no-such-host.invalid", err)

    def test_usage(self):
        for args in ([], ["localhost"], ["a", "b", "c"], ["--bogus", "h", "1"],
                     ["-t", "x", "h", "1"], ["--cert", "c", "--tls", "h", "1"],
                     ["--ca", "x", "h", "1"]):
            rc, out, err = ksock(args)
            self.assertEqual(rc, 1, (args, err))
        rc, out, err = ksock(["-V"])
        self.assertEqual((rc, out.split()[0]), (0, "ksock"))
        rc, out, err = ksock(["-h"])
        self.assertEqual(rc, 0)
        self.assertIn("usage", out)

    def test_handshake_timeout(self):
        # A listener that never answers: the TLS handshake cannot finish.
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(8)
            t0 = time.monotonic()
            rc, out, err = ksock(["--tls", "--insecure", "-t", "0.5",
                                  "127.0.0.1", srv.getsockname()[1]])
            self.assertEqual(rc, 4, err)
            self.assertIn("timed out", err)
            # Not before the 0.5 s; ksock()'s own limit (30 s) catches a
            # timeout that never fires.
            self.assertGreater(time.monotonic() - t0, 0.4)


class KsockdTlsTest(KsTestCase):
    def tls_daemon(self, **tls):
        g = {"certificate": C.rsa_cert, "key": C.rsa_key}
        g.update(tls)
        return self.start_daemon([{"name": "hello", "handler": "hello",
                                   "tls": g}])

    def test_hello_tls(self):
        d = self.tls_daemon()
        port = d.address("hello")[1]
        rc, out, err = ksock(["--tls", "--ca", C.ca, "-v", "localhost", port],
                             input=b"Alice\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [GREETING, "Hello, Alice!", CLOSED])
        self.assertRegex(err, r"(?m)^TLS: TLS1\.[23] \S+")
        # an address is verified against the certificate's IP SAN
        rc, out, err = ksock(["--tls", "--ca", C.ca, "127.0.0.1", port],
                             input=b"Bob\n")
        self.assertEqual(rc, 0, err)

    def test_untrusted(self):
        d = self.tls_daemon()
        rc, out, err = ksock(["--tls", "localhost", d.address("hello")[1]])
        self.assertEqual(rc, 3, err)
        self.assertIn("TLS handshake", err)

    def test_mtls(self):
        d = self.tls_daemon(client_ca=C.client_ca, verify_client="require")
        port = d.address("hello")[1]
        rc, out, err = ksock(["--tls", "--ca", C.ca, "--cert", C.client_cert,
                              "--key", C.client_key, "localhost", port],
                             input=b"Eve\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [GREETING, "Hello, Eve!", CLOSED])
        # Without a certificate the server refuses.  With TLS 1.3 the
        # client's handshake has finished by then, and the refusal reads
        # as the server closing: only the absent dialogue shows it.
        rc, out, err = ksock(["--tls", "--ca", C.ca, "localhost", port],
                             input=b"Eve\n")
        self.assertNotIn(GREETING, out, err)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "--priority",
                              "NORMAL:-VERS-TLS1.3", "localhost", port],
                             input=b"Eve\n")
        self.assertEqual(rc, 3, err)


@unittest.skipIf(shutil.which("openssl") is None, "no openssl")
class OpensslTest(unittest.TestCase):
    def s_server(self, cert, key, *extra):
        s = ServerProcess(["openssl", "s_server", "-accept", "127.0.0.1:0",
                           "-cert", cert, "-key", key, "-www"] + list(extra))
        self.addCleanup(s.stop)
        line = s.wait_for("ACCEPT")
        return int(line.strip().rsplit(":", 1)[1])

    GET = b"GET / HTTP/1.0\n\n"

    def test_verified(self):
        port = self.s_server(C.rsa_cert, C.rsa_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "-v", "localhost", port],
                             input=self.GET)
        self.assertEqual(rc, 0, err)
        self.assertIn("HTTP/1.0 200 ok", out)
        self.assertEqual(out.splitlines()[-1], CLOSED)
        self.assertRegex(err, r"(?m)^TLS: TLS1\.[23] \S+")

    def test_wrong_host(self):
        port = self.s_server(C.rsa_cert, C.rsa_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "--sni", "wrong.example",
                              "localhost", port], input=self.GET)
        self.assertEqual(rc, 3, err)
        self.assertIn("wrong.example", err)
        self.assertNotIn("200 ok", out)

    def test_expired(self):
        port = self.s_server(C.expired_cert, C.expired_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "localhost", port],
                             input=self.GET)
        self.assertEqual(rc, 3, err)
        self.assertIn("expired", err)

    def test_untrusted_ca(self):
        port = self.s_server(C.rsa_cert, C.rsa_key)
        rc, out, err = ksock(["--tls", "--ca", C.client_ca, "localhost", port],
                             input=self.GET)
        self.assertEqual(rc, 3, err)
        self.assertIn("not trusted", err.lower())

    def test_insecure(self):
        port = self.s_server(C.expired_cert, C.expired_key)
        rc, out, err = ksock(["--tls", "--insecure", "localhost", port],
                             input=self.GET)
        self.assertEqual(rc, 0, err)
        self.assertIn("200 ok", out)
        self.assertIn("warning", err)
        self.assertIn("verification disabled", err)

    def test_client_certificate(self):
        port = self.s_server(C.rsa_cert, C.rsa_key, "-Verify", "1",
                             "-CAfile", C.client_ca)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "--cert", C.client_cert,
                              "--key", C.client_key, "localhost", port],
                             input=self.GET)
        self.assertEqual(rc, 0, err)
        self.assertIn("200 ok", out)


@unittest.skipIf(shutil.which("gnutls-serv") is None, "no gnutls-serv")
class GnutlsServTest(unittest.TestCase):
    def serve(self, cert, key):
        port = free_port()
        s = ServerProcess(["gnutls-serv", "--echo", "-a", "-p", str(port),
                           "--x509certfile", cert, "--x509keyfile", key])
        self.addCleanup(s.stop)
        s.wait_for("...done")
        wait_port(port)
        return port

    def test_echo_verified(self):
        port = self.serve(C.ec_cert, C.ec_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "-v", "localhost", port],
                             input=b"ping\npong\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["ping", "pong", CLOSED])
        self.assertRegex(err, r"(?m)^TLS: TLS1\.[23] \S+")

    def test_wrong_host(self):
        port = self.serve(C.ec_cert, C.ec_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "--sni", "wrong.example",
                              "localhost", port], input=b"ping\n")
        self.assertEqual(rc, 3, err)

    def test_expired(self):
        port = self.serve(C.expired_cert, C.expired_key)
        rc, out, err = ksock(["--tls", "--ca", C.ca, "localhost", port],
                             input=b"ping\n")
        self.assertEqual(rc, 3, err)


# ---- ksock --udp -----------------------------------------------------------

UDP_MAX = 65507  # the largest UDP payload over IPv4
# -w for the runs whose replies come after stdin's EOF: how long ksock
# waits for the next one.  The servers here answer within a millisecond;
# this leaves room for a loaded machine (and each such run ends this long
# after its last reply).
UDP_WAIT = "3"


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class UdpServer:
    """A UDP server thread on host, ephemeral port.  It echoes every
    datagram at once, or with hold=True keeps them for reply()."""

    def __init__(self, host="127.0.0.1", hold=False):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.hold = hold
        self.received = []  # (payload, sender address)
        self.cond = threading.Condition()
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            r, _, _ = select.select([self.sock, self.stop_r], [], [])
            if self.stop_r in r:
                return
            data, addr = self.sock.recvfrom(1 << 17)
            with self.cond:
                self.received.append((data, addr))
                self.cond.notify_all()
            if not self.hold:
                self.sock.sendto(data, addr)

    def payloads(self):
        with self.cond:
            return [d for d, _ in self.received]

    def wait_received(self, n, timeout=RUN_TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.received) >= n,
                                      timeout):
                raise AssertionError("the UDP server got %d of %d datagrams"
                                     % (len(self.received), n))

    def reply(self, i):
        """Echoes the i-th datagram received (hold mode)."""
        with self.cond:
            data, addr = self.received[i]
        self.sock.sendto(data, addr)

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(RUN_TIMEOUT)
        os.close(self.stop_r)
        os.close(self.stop_w)
        self.sock.close()


def closed_udp_port(host="127.0.0.1"):
    """A UDP port nothing listens on (bound a moment ago, then closed)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class UdpTest(unittest.TestCase):
    def server(self, host="127.0.0.1", hold=False):
        srv = UdpServer(host, hold)
        self.addCleanup(srv.close)
        return srv

    def test_udp_lines_ipv4(self):
        srv = self.server()
        rc, out, err = ksock_udp(["-v", "127.0.0.1", srv.port],
                                 b"hello\n\nworld\r\nlast",
                                 b"hello\n\nworld\n", wait=UDP_WAIT)
        self.assertEqual(rc, 0, err)
        # CRLF and LF stripped, the empty line is an empty datagram, the
        # unterminated last line is sent too
        self.assertEqual(srv.payloads(), [b"hello", b"", b"world", b"last"])
        self.assertEqual(out, b"hello\n\nworld\nlast\n")
        self.assertIn("sent 5 bytes", err)
        self.assertIn("sent 0 bytes", err)
        self.assertIn("received 5 bytes from 127.0.0.1:%d" % srv.port, err)

    @unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
    def test_udp_lines_ipv6(self):
        srv = self.server("::1")
        for host in ("::1", "[::1]"):
            rc, out, err = ksock_udp(["-v", host, srv.port],
                                     b"ping\npong\n", b"ping\npong\n")
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, b"ping\npong\n")
            self.assertIn("received 4 bytes from [::1]:%d" % srv.port, err)

    def test_udp_binary(self):
        # every byte but LF, NUL first; a CR inside a line is data
        payload = bytes(b for b in range(256) if b != 10)
        srv = self.server()
        rc, out, err = ksock_udp(["127.0.0.1", srv.port],
                                 payload + b"\na\rb\n", payload + b"\na\rb\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(srv.payloads(), [payload, b"a\rb"])
        self.assertEqual(out, payload + b"\na\rb\n")

    def test_udp_largest_datagram(self):
        big = bytes(ord("a") + i % 26 for i in range(UDP_MAX))
        srv = self.server()
        rc, out, err = ksock_udp(["127.0.0.1", srv.port], big + b"\n",
                                 big + b"\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(srv.payloads(), [big])
        self.assertEqual(out, big + b"\n")

    def test_udp_line_too_long(self):
        # skipped with a message, the next line still goes out, status 1
        srv = self.server()
        rc, out, err = ksock_udp(["127.0.0.1", srv.port],
                                 b"x" * (UDP_MAX + 1) + b"\nnext\n",
                                 b"next\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("line too long for a datagram (%d bytes)"
                      % (UDP_MAX + 1), err)
        self.assertEqual(srv.payloads(), [b"next"])
        self.assertEqual(out, b"next\n")

    def run_held(self, srv, wait):
        """Starts ksock --udp on a holding server, sends two lines, waits
        until both arrived and closes stdin: the Popen."""
        p = subprocess.Popen([KSOCK, "--udp", "-w", str(wait), "127.0.0.1",
                              str(srv.port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self.reap, p)
        p.stdin.write(b"first\nsecond\n")
        p.stdin.flush()
        srv.wait_received(2)
        p.stdin.close()
        p.stdin = None  # communicate() then only reads
        return p

    def reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()

    def test_udp_replies_after_eof(self):
        srv = self.server(hold=True)
        p = self.run_held(srv, UDP_WAIT)
        t0 = time.monotonic()
        srv.reply(0)
        srv.reply(1)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"first\nsecond\n")
        # it waited for silence, then ended on its own
        self.assertLess(time.monotonic() - t0, RUN_TIMEOUT)

    def test_udp_wait_restarts_per_reply(self):
        # -w 6: a reply 3 s after EOF, the next 4 s after that (so at least
        # 7 s after EOF: past the first period, within the one the first
        # reply started): both are printed because every datagram restarts
        # the period.  The second reply is timed from the first, so a late
        # first wake-up only moves it further past the first period; a
        # loaded machine has 3 s of slack before the first reply and 2 s
        # before the second.
        srv = self.server(hold=True)
        p = self.run_held(srv, 6)
        # deliberate delays (what is tested), not synchronisation
        delay = threading.Event()
        delay.wait(3.0)
        first = time.monotonic()
        srv.reply(0)
        delay.wait(max(0.0, first + 4.0 - time.monotonic()))
        self.assertLess(time.monotonic(), first + 6.0,
                        "the test itself overslept")
        self.assertIsNone(p.poll(), "ksock ended before the second reply")
        srv.reply(1)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"first\nsecond\n")

    def test_udp_no_reply(self):
        srv = self.server(hold=True)
        rc, out, err = ksock_raw(["--udp", "-w", "0.2", "127.0.0.1",
                                  srv.port], input=b"anyone?\n")
        self.assertEqual((rc, out), (0, b""), err)
        self.assertEqual(srv.payloads(), [b"anyone?"])
        with open(os.devnull, "rb") as f:
            rc, out, err = ksock_raw(["--udp", "-w", "0", "127.0.0.1",
                                      srv.port], stdin=f)
        self.assertEqual((rc, out), (0, b""), err)

    def test_udp_refused(self):
        hosts = ["127.0.0.1"] + (["::1"] if have_ipv6() else [])
        for host in hosts:
            port = closed_udp_port(host)
            rc, out, err = ksock_raw(["--udp", "-w", "5", host, port],
                                     input=b"hello\n")
            self.assertEqual(rc, 2, (host, err))
            self.assertIn("refused", err)

    def test_udp_usage(self):
        for args in (["--udp", "--tls", "127.0.0.1", "7"],
                     ["--udp", "--tls", "--insecure", "127.0.0.1", "7"],
                     ["--udp", "--ca", "x", "127.0.0.1", "7"],
                     ["--udp", "unix:/nonexistent"],
                     ["--udp", "-w", "x", "127.0.0.1", "7"],
                     ["--udp", "--wait", "-1", "127.0.0.1", "7"],
                     ["-w", "1", "127.0.0.1", "7"],
                     ["--udp", "127.0.0.1"]):
            rc, out, err = ksock_raw(args)
            self.assertEqual(rc, 1, (args, err))
        rc, out, err = ksock_raw(["--udp", "--tls", "127.0.0.1", "7"])
        self.assertIn("--udp", err)

    def test_udp_unresolvable(self):
        rc, out, err = ksock_raw(["--udp", "no-such-host.invalid", "7"])
        self.assertEqual(rc, 2, err)
        self.assertIn("no-such-host.invalid", err)


class KsockdUdpTest(KsTestCase):
    def test_daemon_udp_echo(self):
        # One worker: with two, each datagram goes to either, and the
        # replies may come back in another order.
        d = self.start_daemon([{"name": "uecho", "protocol": "udp",
                                "address": "127.0.0.1", "port": 0,
                                "handler": "echo"}], workers=1)
        port = d.address("uecho")[1]
        rc, out, err = ksock_udp(["-v", "127.0.0.1", port],
                                 b"one\ntwo\x00three\n",
                                 b"one\ntwo\x00three\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"one\ntwo\x00three\n")
        self.assertIn("received 3 bytes from 127.0.0.1:%d" % port, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
