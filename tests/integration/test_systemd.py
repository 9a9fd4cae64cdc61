"""systemd: the unit and sysusers entry (`systemd-analyze verify` on the
built unit, pointed at this build's daemon and a real config, and a dry
run of systemd-sysusers; both work offline, without a running systemd),
the example socket unit, socket activation through systemd-socket-activate
(by FileDescriptorName= and by address), and the Type=notify messages
(READY, RELOADING with MONOTONIC_USEC, READY, STOPPING, STATUS)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from kstest import (BUILDDIR, KSOCKD, SRCDIR, Daemon, KsTestCase, ask,
                    free_port, run_ksockd)

UNIT = os.path.join(BUILDDIR, "systemd", "ksockd.service")
SOCKET_UNIT = os.path.join(SRCDIR, "systemd", "ksockd.socket")
ACTIVATE = shutil.which("systemd-socket-activate")
SYSUSERS = os.path.join(SRCDIR, "systemd", "ksockd-sysusers.conf")


def rewrite_exec(value, conf):
    """Points an Exec*= command line at this build's binary and config."""
    words = []
    for w in value.split():
        bare = w.lstrip("-@:+!")
        prefix = w[:len(w) - len(bare)]
        if bare.endswith("/ksockd"):
            w = prefix + KSOCKD
        elif bare.endswith("ksockd.conf"):
            w = conf
        words.append(w)
    return " ".join(words)


class SystemdTest(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="kstest-systemd-")
        self.d = Daemon([{"name": "hello", "handler": "hello"}],
                        tmpdir=self.tmpdir)
        with open(UNIT) as f:
            self.unit_text = f.read()

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def write_service(self):
        """The built unit, pointed at this build's daemon and config, in
        the test's directory; returns its path."""
        lines = []
        for line in self.unit_text.splitlines():
            m = re.match(r"^(ExecStart|ExecStartPre|ExecStartPost)=(.*)$",
                         line)
            if m:
                line = "%s=%s" % (m.group(1),
                                  rewrite_exec(m.group(2), self.d.conf_path))
            lines.append(line)
        unit = os.path.join(self.tmpdir, "ksockd.service")
        with open(unit, "w") as f:
            f.write("\n".join(lines) + "\n")
        return unit

    def verify(self, unit):
        """systemd-analyze verify: no complaint about a ksockd unit."""
        env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_PAGER="",
                   SYSTEMD_COLORS="0")
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual([l for l in out.splitlines() if "ksockd" in l], [],
                         out)
        self.assertEqual(p.returncode, 0, out)

    def settings(self):
        out = {}
        for line in self.unit_text.splitlines():
            m = re.match(r"^([A-Za-z]+)=(.*)$", line)
            if m:
                out.setdefault(m.group(1), []).append(m.group(2))
        return out

    @unittest.skipIf(shutil.which("systemd-analyze") is None,
                     "systemd-analyze is not installed")
    def test_verify(self):
        self.verify(self.write_service())

    def test_unit_settings(self):
        s = self.settings()
        for key in ("ExecStart", "ExecStartPre", "ExecReload", "Type"):
            self.assertIn(key, s)
        self.assertIn("-t", s["ExecStartPre"][0].split())
        self.assertRegex(s["ExecReload"][0], r"HUP")
        self.assertIn(s["Type"][0], ("notify", "simple"))
        self.assertNotIn("@", self.unit_text.replace("@.service", ""),
                         "unsubstituted @VARIABLE@")
        # systemd must give the daemon more than its own default
        # shutdown_timeout (30 s) before it kills it.
        if "TimeoutStopSec" in s:
            self.assertGreater(int(s["TimeoutStopSec"][0].rstrip("s")), 30)

    def test_exec_start_pre_command(self):
        # The unit's config check, run against a real config, succeeds.
        words = rewrite_exec(self.settings()["ExecStartPre"][0],
                             self.d.conf_path).split()
        self.assertEqual(words[0].lstrip("-@:+!"), KSOCKD)
        rc, out = run_ksockd(words[1:])
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)

    @unittest.skipIf(shutil.which("systemd-analyze") is None,
                     "systemd-analyze is not installed")
    def test_verify_socket_unit(self):
        # The example socket unit next to the service it activates.
        self.write_service()
        sock = os.path.join(self.tmpdir, "ksockd.socket")
        shutil.copy(SOCKET_UNIT, sock)
        self.verify(sock)

    @unittest.skipIf(shutil.which("systemd-sysusers") is None,
                     "systemd-sysusers is not installed")
    def test_sysusers(self):
        root = os.path.join(self.tmpdir, "root")
        os.mkdir(root)
        p = subprocess.run(["systemd-sysusers", "--dry-run", "--root", root,
                            SYSUSERS], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"(?i)creating user 'ksockd'")
        self.assertNotRegex(out, r"(?i)ignoring|failed")


@unittest.skipIf(ACTIVATE is None, "systemd-socket-activate is not installed")
class SocketActivationTest(KsTestCase):
    """systemd-socket-activate holds the listening socket and starts ksockd
    at the first connection, with the socket as fd 3 (LISTEN_FDS)."""

    def activated(self, port, fdname, listener):
        d_dir = os.path.join(self.tmpdir, "d%d" % len(self.daemons))
        os.mkdir(d_dir)
        d = Daemon([listener], tmpdir=d_dir)
        self.daemons.append(d)
        args = [ACTIVATE, "-l", "127.0.0.1:%d" % port]
        if fdname is not None:
            args.append("--fdname=" + fdname)
        d.start(wait_ready=False, prefix=args)
        d.wait_for_log(r"Listening on 127\.0\.0\.1:%d" % port)
        # The first connection starts the daemon; it waits in the backlog.
        s = socket.create_connection(("127.0.0.1", port), 30)
        d.clients.append(s)
        d.wait_for_log(r"ready \(")
        d.parse_addresses()
        return d, s

    def test_by_name(self):
        port = free_port()
        # The listener's own address is the same: had ksockd bound it
        # itself, that would fail (systemd's socket holds the port).
        d, s = self.activated(port, "web", {
            "name": "web", "handler": "echo", "port": port})
        self.assertEqual(ask(s, "first"), "first")
        d.wait_for_log(r"listener web: the socket is from systemd as web")
        self.assertTrue(d.log_has(r"listener web listening on tcp "
                                  r"127\.0\.0\.1:%d" % port))
        # Every connection is served, on the one socket.
        for i in range(5):
            c = d.connect("web")
            self.assertEqual(ask(c, "again %d" % i), "again %d" % i)
        # A reload keeps systemd's socket.
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reloaded configuration", since=mark)
        self.assertEqual(ask(d.connect("web"), "reloaded"), "reloaded")
        self.assertEqual(ask(s, "still"), "still")

    def test_by_name_elsewhere(self):
        # The name decides even when the configured address differs.
        port = free_port()
        d, s = self.activated(port, "web", {
            "name": "web", "handler": "echo", "port": free_port()})
        self.assertEqual(ask(s, "named"), "named")
        self.assertEqual(d.address("web"), ("127.0.0.1", port))

    def test_the_example_socket_unit(self):
        # What systemd/ksockd.socket asks for, on a free port: its
        # FileDescriptorName= is the listener's name.
        with open(SOCKET_UNIT) as f:
            unit = f.read()
        name = re.search(r"^FileDescriptorName=(\S+)$", unit, re.M).group(1)
        self.assertRegex(unit, r"(?m)^ListenStream=")
        self.assertRegex(unit, r"(?m)^Service=ksockd\.service$")
        port = free_port()
        d, s = self.activated(port, name, {
            "name": name, "handler": "echo", "port": port})
        self.assertEqual(ask(s, "example"), "example")

    def test_by_address(self):
        port = free_port()
        d, s = self.activated(port, None, {
            "name": "echo", "handler": "echo", "port": port})
        self.assertEqual(ask(s, "by address"), "by address")
        self.assertTrue(d.log_has(r"listener echo: the socket is from "
                                  r"systemd"))


class NotifyTest(KsTestCase):
    """Type=notify: the messages arrive in order on NOTIFY_SOCKET."""

    def test_ready_reloading_ready_stopping(self):
        if "HAVE_SYSTEMD 1" not in open(os.path.join(BUILDDIR,
                                                     "config.h")).read():
            self.skipTest("built without libsystemd")
        path = os.path.join(self.tmpdir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(30)
        self.addCleanup(sock.close)

        def until(word):
            while True:
                msg = sock.recv(4096).decode()
                fields = dict(l.split("=", 1) for l in msg.split("\n") if l)
                if word in fields:
                    return fields

        d = self.start_daemon([{"name": "echo", "handler": "echo"}],
                              env={"NOTIFY_SOCKET": path})
        ready = until("READY")
        self.assertEqual(ready["MAINPID"], str(d.proc.pid))
        status = until("STATUS")
        self.assertRegex(status["STATUS"], r"^2 workers \(generation 1\), "
                         r"\d+ connections, \d+\.\d accepted/s; "
                         r"last reload: never$")
        # Connections for a second or more: the next STATUS has a rate.
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 1.2 or n < 10:
            s = d.connect("echo")
            self.assertEqual(ask(s, "x"), "x")
            s.close()
            n += 1
        d.send_signal(signal.SIGHUP)
        reloading = until("RELOADING")
        self.assertRegex(reloading["MONOTONIC_USEC"], r"^\d+$")
        until("READY")
        status = until("STATUS")
        self.assertRegex(status["STATUS"], r"generation 2\b.*last reload: "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(ok\)")
        rate = float(re.search(r"([\d.]+) accepted/s", status["STATUS"])[1])
        self.assertGreater(rate, 0)
        self.assertLessEqual(rate, n)
        d.stop()
        until("STOPPING")


if __name__ == "__main__":
    unittest.main(verbosity=2)
