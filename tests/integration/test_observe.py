"""Observing ksockd: the access log (text and JSON, every field, the close
reasons, logrotate's move-then-SIGUSR1, a reload to another file), the
journal's priority prefixes under JOURNAL_STREAM, and the warnings for
certificates about to expire."""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest

import tlscerts
from kstest import (SRCDIR, ConnectLoop, KsTestCase, ask, closed_by_daemon,
                    recv_until_eof, run_ksockd)

TEXT_RE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"listener=(?P<listener>\S+) peer=(?P<peer>\S+) local=(?P<local>\S+) "
    r"duration=(?P<duration>\d+\.\d{3}) bytes_in=(?P<bytes_in>\d+) "
    r"bytes_out=(?P<bytes_out>\d+) tls=(?P<tls>\S+) sni=(?P<sni>\S+) "
    r"alpn=(?P<alpn>\S+) reason=(?P<reason>\S+)$")


def read_lines(*paths):
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                out += f.read().splitlines()
    return out


def wait_lines(paths, n, timeout=60):
    """The lines of the files once there are n of them (the master writes
    what the workers send as it comes: this waits for that, not a
    time)."""
    if isinstance(paths, str):
        paths = [paths]
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(*paths)
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class AccessLogTest(KsTestCase):

    def test_text_lines_field_by_field(self):
        log = os.path.join(self.tmpdir, "access.log")
        d = self.start_daemon([{"name": "echo", "handler": "echo"}],
                              access_log=log)
        host, port = d.address("echo")
        sizes, started = {}, time.time()
        for i in range(25):
            s = d.connect("echo")
            payload = b"x" * (10 * i + 3) + b"\n"
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), payload)
            sizes["%s:%d" % s.getsockname()] = len(payload)
            s.close()
        lines = wait_lines(log, 25)
        self.assertEqual(len(lines), 25, lines)
        seen = set()
        for line in lines:
            m = TEXT_RE.match(line)
            self.assertIsNotNone(m, line)
            f = m.groupdict()
            self.assertIn(f["peer"], sizes, line)
            seen.add(f["peer"])
            self.assertEqual(f["listener"], "echo")
            self.assertEqual(f["local"], "%s:%d" % (host, port))
            self.assertEqual(int(f["bytes_in"]), sizes[f["peer"]])
            self.assertEqual(int(f["bytes_out"]), sizes[f["peer"]])
            self.assertEqual((f["tls"], f["sni"], f["alpn"]), ("-",) * 3)
            self.assertEqual(f["reason"], "eof")
            t = parse_time(f["time"])
            self.assertGreaterEqual(t, started - 1)
            self.assertLessEqual(t, time.time() + 1)
            self.assertLess(float(f["duration"]), 60)
        self.assertEqual(seen, set(sizes))

    def test_json_with_tls_sni_alpn(self):
        c = tlscerts.certs()
        log = os.path.join(self.tmpdir, "access.json")
        d = self.start_daemon(
            [{"name": "tls", "handler": "echo",
              "tls": {"certificate": c.rsa_cert, "key": c.rsa_key,
                      "alpn": ["ksock/1", "x-other"]}}],
            access_log=log, access_log_format="json")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.ca)
        ctx.set_alpn_protocols(["ksock/1"])
        raw = d.connect("tls")
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"secret\n")
        self.assertEqual(s.recv(100), b"secret\n")
        client = "%s:%d" % s.getsockname()
        version = s.version()  # "TLSv1.3"
        s.close()
        lines = wait_lines(log, 1)
        self.assertEqual(len(lines), 1, lines)
        rec = json.loads(lines[0])
        self.assertEqual(list(rec), ["time", "listener", "peer", "local",
                                     "duration", "bytes_in", "bytes_out",
                                     "tls", "sni", "alpn", "reason"])
        self.assertEqual(rec["listener"], "tls")
        self.assertEqual(rec["peer"], client)
        self.assertEqual(rec["local"], "%s:%d" % d.address("tls"))
        self.assertEqual(rec["bytes_in"], 7)
        self.assertEqual(rec["bytes_out"], 7)
        self.assertEqual(rec["tls"], version.replace("v", ""))
        self.assertEqual(rec["sni"], "localhost")
        self.assertEqual(rec["alpn"], "ksock/1")
        self.assertIn(rec["reason"], ("eof", "error"))
        self.assertIsInstance(rec["duration"], float)
        parse_time(rec["time"])

    def test_json_absent_values_are_null(self):
        log = os.path.join(self.tmpdir, "access.json")
        d = self.start_daemon([{"name": "hello", "handler": "hello"}],
                              access_log=log, access_log_format="json")
        s = d.connect("hello")
        s.sendall(b"Ada\n")
        s.shutdown(socket.SHUT_WR)
        recv_until_eof(s)
        s.close()
        rec = json.loads(wait_lines(log, 1)[0])
        self.assertIsNone(rec["tls"])
        self.assertIsNone(rec["sni"])
        self.assertIsNone(rec["alpn"])
        self.assertEqual(rec["bytes_in"], 4)
        self.assertEqual(rec["reason"], "eof")

    def test_close_reasons(self):
        """timeout (idle), error (TLS garbage), limit (an address the
        PROXY header carries is denied), shutdown (open at stop); the
        PROXY listener logs the client the header names."""
        c = tlscerts.certs()
        log = os.path.join(self.tmpdir, "access.log")
        d = self.start_daemon([
            {"name": "idle", "handler": "echo", "idle_timeout": 1},
            {"name": "tls", "handler": "echo",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
            {"name": "proxied", "handler": "echo", "proxy_protocol": True,
             "proxy_protocol_from": ["127.0.0.1/32"],
             "deny": ["192.0.2.0/24"]},
            {"name": "open", "handler": "echo"},
        ], access_log=log)
        s = d.connect("idle")
        self.assertEqual(recv_until_eof(s), b"")  # closed by the timeout
        s.close()
        s = d.connect("tls")
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        recv_until_eof(s)
        s.close()
        s = d.connect("proxied")
        s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 5555 7\r\nhi\n")
        self.assertTrue(closed_by_daemon(s))
        s.close()
        s = d.connect("proxied")
        s.sendall(b"PROXY TCP4 198.51.100.4 127.0.0.1 6666 7\r\nhi\n")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s), b"hi\n")
        s.close()
        wait_lines(log, 4)
        keep = d.connect("open")
        self.assertEqual(ask(keep, "still here"), "still here")
        d.stop()
        lines = wait_lines(log, 5)
        by = {}
        for line in lines:
            f = TEXT_RE.match(line).groupdict()
            by.setdefault(f["listener"], []).append(f)
        self.assertEqual([f["reason"] for f in by["idle"]], ["timeout"])
        self.assertEqual([f["reason"] for f in by["tls"]], ["error"])
        self.assertEqual(by["tls"][0]["tls"], "-")
        reasons = {f["peer"]: f["reason"] for f in by["proxied"]}
        self.assertEqual(reasons, {"192.0.2.9:5555": "limit",
                                   "198.51.100.4:6666": "eof"})
        self.assertEqual([f["reason"] for f in by["open"]], ["shutdown"])
        self.assertEqual(by["open"][0]["bytes_in"], "11")

    def test_logrotate_loses_no_line(self):
        logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
        if not os.path.exists(logrotate):
            self.skipTest("logrotate is not installed")
        log = os.path.join(self.tmpdir, "access.log")
        d = self.start_daemon([{"name": "echo", "handler": "echo"}],
                              access_log=log)
        conf = os.path.join(self.tmpdir, "logrotate.conf")
        with open(conf, "w") as f:
            f.write("%s {\n  rotate 10\n  missingok\n  nocompress\n"
                    "  postrotate\n    kill -USR1 %d\n  endscript\n}\n"
                    % (log, d.proc.pid))
        state = os.path.join(self.tmpdir, "logrotate.state")
        loop = ConnectLoop(d, "echo", threads=4).start()
        try:
            for i in range(3):
                loop.wait_ok(50)
                mark = d.mark()
                subprocess.run([logrotate, "-f", "-s", state, conf],
                               check=True, timeout=60)
                d.wait_for_log(r"SIGUSR1: reopened the access log",
                               since=mark)
            loop.wait_ok(50)
        finally:
            loop.stop()
        served = loop.ok
        files = [log] + ["%s.%d" % (log, i) for i in range(1, 4)]
        lines = wait_lines(files, served)
        self.assertEqual(len(lines), served)
        for i in range(1, 4):
            self.assertGreater(len(read_lines("%s.%d" % (log, i))), 0)
        for line in lines:
            self.assertRegex(line, TEXT_RE)

    def test_stalled_master_costs_lines_not_service(self):
        """A master that cannot write (stopped here, as behind a stalled
        disk): the worker serves on, buffers what the pipe will not take,
        then drops lines, counts them and says so; every line is either in
        the file or counted."""
        import http.client
        log = os.path.join(self.tmpdir, "access.log")
        name = "e" * 1800  # 2 KiB lines: the 2 MiB of pipe and buffer
        d = self.start_daemon([                 # hold about 1100
            {"name": name, "handler": "echo"},
            {"name": "marker", "handler": "echo"},
            {"name": "metrics", "handler": "metrics"}],
            access_log=log, workers=1)
        n = 1500
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            for i in range(n):
                s = d.connect(name, track=False)
                s.sendall(b"z\n")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"z\n")
                s.close()
            d.wait_for_log(r"access log: \d+ bytes wait for the master "
                           r"to write them: dropping lines")
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        # Lines keep their order: once a marker's is in the file, every
        # line before it that was not dropped is there too.  (A marker
        # that closes while the worker's buffer is still full is dropped
        # like any line: then another goes.)
        markers, seen = 0, False
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            s = d.connect("marker")
            mine = "listener=marker peer=%s:%d " % s.getsockname()
            self.assertEqual(ask(s, "m"), "m")
            s.close()
            markers += 1
            wait_until = time.monotonic() + 5
            while not seen and time.monotonic() < wait_until:
                seen = any(mine in l for l in read_lines(log))
                time.sleep(0.02)
        self.assertTrue(seen)
        host, port = d.address("metrics")
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
        c.close()
        dropped = int(re.search(r"^ksockd_access_log_dropped_total (\d+)",
                                body, re.M)[1])
        lines = read_lines(log)
        echo = [l for l in lines if "listener=%s " % name in l]
        marked = [l for l in lines if "listener=marker " in l]
        self.assertGreater(dropped, 0)
        # every line is in the file or counted as dropped
        self.assertEqual(len(echo) + len(marked) + dropped, n + markers)

    def test_shipped_logrotate_config(self):
        """conf/ksockd.logrotate is what logrotate accepts (a dry run on
        a copy naming a file of this test)."""
        logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
        if not os.path.exists(logrotate):
            self.skipTest("logrotate is not installed")
        log = os.path.join(self.tmpdir, "access.log")
        with open(log, "w") as f:
            f.write("a line\n")
        with open(os.path.join(SRCDIR, "conf", "ksockd.logrotate")) as f:
            text = f.read()
        self.assertIn("/var/log/ksockd/access.log {", text)
        conf = os.path.join(self.tmpdir, "ksockd.logrotate")
        with open(conf, "w") as f:
            f.write(text.replace("/var/log/ksockd/access.log", log))
        p = subprocess.run([logrotate, "-d", "-f", "-s",
                            os.path.join(self.tmpdir, "state"), conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("error", out.lower(), out)
        self.assertIn("rotating pattern: %s" % log, out)

    def test_reload_switches_file(self):
        log1 = os.path.join(self.tmpdir, "one.log")
        log2 = os.path.join(self.tmpdir, "two.log")
        listeners = [{"name": "echo", "handler": "echo"}]
        d = self.start_daemon(listeners, access_log=log1)
        s = d.connect("echo")
        self.assertEqual(ask(s, "first"), "first")
        s.close()
        wait_lines(log1, 1)
        d.write_config(listeners, access_log=log2,
                       access_log_format="json")
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reloaded configuration", since=mark)
        d.parse_addresses(since=mark)
        s = d.connect("echo")
        self.assertEqual(ask(s, "second"), "second")
        s.close()
        self.assertEqual(json.loads(wait_lines(log2, 1)[0])["bytes_in"], 7)
        self.assertEqual(len(read_lines(log1)), 1)

    def test_config_errors(self):
        bad = os.path.join(self.tmpdir, "bad.conf")
        with open(bad, "w") as f:
            f.write('daemon = { access_log = "/nonexistent-dir/a.log"; '
                    'access_log_format = "xml"; };\nlisteners = ();\n')
        rc, out = run_ksockd(["-t", "-c", bad])
        self.assertNotEqual(rc, 0)
        self.assertIn("access_log /nonexistent-dir/a.log: directory "
                      "/nonexistent-dir: No such file or directory", out)
        self.assertIn('unknown access_log_format "xml"', out)

    def test_unwritable_file_fails_the_start(self):
        os.mkdir(os.path.join(self.tmpdir, "adir"))
        d = self.start_daemon([{"name": "echo", "handler": "echo"}],
                              wait_ready=False,
                              access_log=os.path.join(self.tmpdir, "adir"))
        self.assertNotEqual(d.wait(), 0)
        self.assertTrue(d.log_has(r"daemon: access_log .*adir: not a "
                                  r"file"))


class JournalTest(KsTestCase):
    """Under systemd stderr is journald's stream and JOURNAL_STREAM names
    it: each line starts with its syslog priority, and has no time."""

    def test_priority_prefixes(self):
        d = self.start_daemon([{"name": "echo", "handler": "echo",
                                "idle_timeout": 0}], journal=True,
                              log_level="info")
        mark = d.mark()
        # a warning: a reload whose file does not parse is an error
        d.write_config_text("daemon = { plugin_dir = 1; };\n")
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"^<3>reload failed", since=mark)
        d.stop()
        lines = [l for l in d.log_text().splitlines() if l]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>")
            self.assertNotRegex(line, r"^<\d>\d{4}-\d\d-\d\dT")
        self.assertTrue(any(re.match(r"^<6>ready \(", l) for l in lines))

    def test_plain_stderr_keeps_timestamps(self):
        d = self.start_daemon([{"name": "echo", "handler": "echo"}],
                              env={"JOURNAL_STREAM": "1:2"},
                              log_level="info")
        d.stop()
        self.assertTrue(d.log_has(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} "
                                  r"ksockd\[\d+\]: info: ready \("))


class CertificateExpiryTest(KsTestCase):

    def test_warnings_at_30_and_7_days(self):
        soon, soon_key = tlscerts.server_cert("soon", 5)
        month, month_key = tlscerts.server_cert("month", 20)
        c = tlscerts.certs()
        d = self.start_daemon([
            {"name": "soon", "handler": "hello",
             "tls": {"certificate": soon, "key": soon_key}},
            {"name": "month", "handler": "hello",
             "tls": {"certificate": month, "key": month_key}},
            {"name": "fine", "handler": "hello",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
        ], log_level="info")
        d.wait_for_log(r"error: listener soon: certificate localhost \(%s\) "
                       r"expires in [45] days, on \d{4}-" % re.escape(soon))
        d.wait_for_log(r"warn: listener month: certificate localhost "
                       r"\(%s\) expires in (19|20) days" % re.escape(month))
        self.assertFalse(d.log_has(r"listener fine: certificate"))
        # a reload checks again
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"listener soon: certificate .* expires", since=mark)


if __name__ == "__main__":
    unittest.main(verbosity=2)
