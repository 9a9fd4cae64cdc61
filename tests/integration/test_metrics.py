"""The metrics' values, scraped from the bundled metrics plugin with a real
HTTP client under workers = 2 and parsed by prometheus_client: the
counters equal the traffic a test made, summed over both workers; limit
refusals and TLS failures show up by reason; a crashed worker's counts
stay, and so do everyone's over a reload and a binary upgrade; the
certificate gauge; datagrams."""

import http.client
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
from kstest import (KSOCKD, PLUGIN_BUILD_DIR, SRCDIR, Daemon, KsTestCase,
                    ask, closed_by_daemon, connect_from, plugin_so,
                    recv_until_eof, run_ksockd, tls_client_hello)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - dev.sh installs it
    text_string_to_metric_families = None

METRICS = {"name": "metrics", "handler": "metrics"}


def run_ksockd_conf(tmpdir, text):
    """`ksockd -t` on a file of text (with the built plugins)."""
    path = os.path.join(tmpdir, "check.conf")
    with open(path, "w") as f:
        f.write('daemon = { plugin_dir = "%s"; };\n' % PLUGIN_BUILD_DIR + text)
    return run_ksockd(["-t", "-c", path])


def scrape(d):
    """{(sample name, ((label, value), ...)): value} of one GET /metrics,
    through prometheus_client's parser (which rejects a malformed text)."""
    host, port = d.address("metrics")
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        assert r.status == 200, (r.status, body)
    finally:
        c.close()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, metric, **labels):
    return m[(metric, tuple(sorted(labels.items())))]


def scrape_until(d, cond, timeout=60):
    """Scrapes until cond(metrics) holds (a connection's close reaches the
    counters a moment after the client saw its end): the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(d)
        if cond(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.02)


class MetricsTest(KsTestCase):

    def setUp(self):
        if text_string_to_metric_families is None:
            self.skipTest("python3-prometheus-client is not installed")
        super().setUp()

    def test_counters_equal_the_traffic_summed_over_workers(self):
        d = self.start_daemon([{"name": "echo", "handler": "echo"},
                               METRICS], workers=2)
        workers = d.wait_workers(2)
        # Held open together, so that both workers take some.
        socks, total = [], 0
        for i in range(40):
            s = d.connect("echo")
            payload = b"y" * (i + 1) + b"\n"
            s.sendall(payload)
            total += len(payload)
            socks.append((s, payload))
        for s, payload in socks:
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), payload)
            s.close()
        m = scrape_until(d, lambda m: value(
            m, "ksockd_connections_closed_total", listener="echo",
            reason="eof") >= 40)
        echo = dict(listener="echo")
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               **echo), 40)
        self.assertEqual(value(m, "ksockd_connections_closed_total",
                               reason="eof", **echo), 40)
        for reason in ("timeout", "limit", "error", "shutdown"):
            self.assertEqual(value(m, "ksockd_connections_closed_total",
                                   reason=reason, **echo), 0)
        self.assertEqual(value(m, "ksockd_connections_active", **echo), 0)
        self.assertEqual(value(m, "ksockd_received_bytes_total", **echo),
                         total)
        self.assertEqual(value(m, "ksockd_sent_bytes_total", **echo), total)
        self.assertEqual(value(m, "ksockd_handler_returns_total", **echo), 40)
        self.assertEqual(value(m, "ksockd_handler_errors_total", **echo), 0)
        # the scrape itself is a connection of the metrics listener
        self.assertGreaterEqual(value(m, "ksockd_connections_active",
                                      listener="metrics"), 1)
        self.assertEqual(value(m, "ksockd_workers"), 2)
        self.assertEqual(value(m, "ksockd_config_generation"), 1)
        # sampled once a second by each worker
        m = scrape_until(d, lambda m: value(
            m, "ksockd_workers_resident_bytes") > 0)
        self.assertGreater(value(m, "ksockd_workers_resident_bytes"), 100000)
        # Who accepted what, from the workers' own debug lines: the sum
        # the metrics show is over both.
        # (The log is read by a thread of the harness: wait for it.)
        accepted_re = re.compile(r"ksockd\[(\d+)\]: debug: \[echo echo "
                                 r"[^\]]*\] accepted")
        deadline = time.monotonic() + 60
        while len(accepted_re.findall(d.log_text())) < 40 and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        per_pid = {}
        for pid in accepted_re.findall(d.log_text()):
            per_pid[int(pid)] = per_pid.get(int(pid), 0) + 1
        self.assertEqual(sum(per_pid.values()), 40)
        self.assertTrue(set(per_pid) <= set(workers), (per_pid, workers))

    def refused(self, d, name):
        """A connection the listener resets at once (the reset may even
        beat connect() back)."""
        s = connect_from(d.address(name))
        self.assertTrue(closed_by_daemon(s))
        s.close()

    def test_refusals_and_tls_failures_by_reason(self):
        c = tlscerts.certs()
        d = self.start_daemon([
            {"name": "denied", "handler": "echo", "deny": ["127.0.0.0/8"]},
            {"name": "one", "handler": "echo",
             "max_connections_per_source": 1},
            {"name": "tls", "handler": "echo",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
            METRICS], workers=2)
        self.refused(d, "denied")
        held = d.connect("one")
        self.assertEqual(ask(held, "held"), "held")
        self.refused(d, "one")
        s = d.connect("tls")
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        recv_until_eof(s)
        s.close()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.ca)
        t = ctx.wrap_socket(d.connect("tls"), server_hostname="localhost")
        t.sendall(b"fine\n")
        self.assertEqual(t.recv(10), b"fine\n")
        t.close()
        m = scrape_until(d, lambda m: value(
            m, "ksockd_tls_handshake_failures_total", listener="tls",
            reason="protocol") >= 1 and value(
            m, "ksockd_connections_refused_total", listener="one",
            reason="max_connections_per_source") >= 1)
        self.assertEqual(value(m, "ksockd_connections_refused_total",
                               listener="denied", reason="acl"), 1)
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="denied"), 0)
        self.assertEqual(value(m, "ksockd_connections_refused_total",
                               listener="one",
                               reason="max_connections_per_source"), 1)
        self.assertEqual(value(m, "ksockd_connections_refused_total",
                               listener="one", reason="acl"), 0)
        self.assertEqual(value(m, "ksockd_tls_handshake_failures_total",
                               listener="tls", reason="protocol"), 1)
        for reason in ("timeout", "alert", "certificate"):
            self.assertEqual(value(m, "ksockd_tls_handshake_failures_total",
                                   listener="tls", reason=reason), 0)
        self.assertEqual(value(m, "ksockd_tls_handshakes_total",
                               listener="tls"), 1)
        m = scrape_until(d, lambda m: value(
            m, "ksockd_connections_closed_total", listener="tls",
            reason="error") >= 1)
        self.assertEqual(value(m, "ksockd_connections_closed_total",
                               listener="tls", reason="error"), 1)
        held.close()

    def test_tls_failure_reasons(self):
        """Each reason of ksockd_tls_handshake_failures_total from a client
        doing that."""
        c = tlscerts.certs()
        d = self.start_daemon([
            {"name": "tls", "handler": "echo",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
            # (a timeout of its own: the others' handshakes get the
            # default 10 s, whatever the machine's load)
            {"name": "silent", "handler": "echo", "handshake_timeout": 1,
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
            {"name": "mtls", "handler": "echo",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key,
                     "client_ca": c.client_ca, "verify_client": "require"}},
            METRICS])
        # eof: connects and goes
        s = d.connect("tls")
        s.close()
        # protocol: not TLS at all
        s = d.connect("tls")
        s.sendall(b"hello?\r\n")
        recv_until_eof(s)
        s.close()
        # timeout: says nothing for handshake_timeout
        s = d.connect("silent")
        self.assertEqual(recv_until_eof(s), b"")
        s.close()
        # alert: a ClientHello, then a fatal alert record (what a client
        # that gives up sends; real ones may close before it leaves)
        hello, _, _, _ = tls_client_hello()
        s = d.connect("tls")
        s.sendall(hello + bytes([21, 3, 3, 0, 2, 2, 40]))
        try:
            recv_until_eof(s)
        except ConnectionResetError:
            pass
        s.close()
        # certificate: a client certificate client_ca did not sign
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.ca)
        ctx.load_cert_chain(c.untrusted_cert, c.untrusted_key)
        raw, t = d.connect("mtls"), None
        try:
            t = ctx.wrap_socket(raw, server_hostname="localhost")
            t.sendall(b"x\n")
            t.recv(10)
        except (ssl.SSLError, ConnectionError):
            pass
        (t or raw).close()

        def reason(m, listener, r):
            return value(m, "ksockd_tls_handshake_failures_total",
                         listener=listener, reason=r)
        m = scrape_until(d, lambda m: reason(m, "mtls", "certificate") >= 1
                         and reason(m, "tls", "alert") >= 1)
        for r in ("eof", "protocol", "alert"):
            self.assertEqual(reason(m, "tls", r), 1, r)
        for r in ("timeout", "certificate"):
            self.assertEqual(reason(m, "tls", r), 0, r)
        self.assertEqual(reason(m, "silent", "timeout"), 1)
        self.assertEqual(reason(m, "mtls", "certificate"), 1)
        self.assertEqual(value(m, "ksockd_timeouts_total", listener="silent",
                               kind="handshake"), 1)
        self.assertEqual(value(m, "ksockd_tls_handshakes_total",
                               listener="tls"), 0)

    def test_a_crashed_worker_keeps_its_counts(self):
        d = self.start_daemon([{"name": "echo", "handler": "echo"},
                               {"name": "proc", "handler": plugin_so("proc")},
                               METRICS], workers=2)
        d.crashes_expected = True
        for i in range(10):
            s = d.connect("echo")
            self.assertEqual(ask(s, "n%d" % i), "n%d" % i)
            s.close()
        scrape_until(d, lambda m: value(
            m, "ksockd_connections_closed_total", listener="echo",
            reason="eof") >= 10)
        # Crash the worker this connection lands on: whichever it is,
        # what it counted moves to the totals.
        s = d.connect("proc")
        pid = int(ask(s, "pid").split()[1])
        mark = d.mark()
        s.sendall(b"crash\n")
        d.wait_for_log(r"\(pid %d\) killed by SIGSEGV" % pid, since=mark)
        d.wait_for_log(r"starting a new worker", since=mark)
        s.close()
        d.wait_workers(2, exclude=[pid])
        m = scrape(d)
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="echo"), 10)
        self.assertEqual(value(m, "ksockd_connections_closed_total",
                               listener="echo", reason="eof"), 10)
        self.assertEqual(value(m, "ksockd_received_bytes_total",
                               listener="echo"), sum(
            len("n%d\n" % i) for i in range(10)))
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="proc"), 1)
        # the crashed connection was never closed by a worker
        self.assertEqual(value(m, "ksockd_connections_active",
                               listener="proc"), 0)
        self.assertEqual(value(m, "ksockd_worker_crashes_total",
                               signal="SIGSEGV"), 1)
        self.assertEqual(value(m, "ksockd_worker_crashes_total",
                               signal="exit"), 0)
        self.assertEqual(value(m, "ksockd_worker_starts_total"), 3)

    def test_reload_keeps_counts_and_changes_listeners(self):
        listeners = [{"name": "echo", "handler": "echo"},
                     {"name": "old", "handler": "echo"}, METRICS]
        d = self.start_daemon(listeners, workers=2)
        for i in range(5):
            s = d.connect("echo")
            self.assertEqual(ask(s, "a"), "a")
            s.close()
        scrape_until(d, lambda m: value(
            m, "ksockd_connections_closed_total", listener="echo",
            reason="eof") >= 5)
        started = value(scrape(d), "ksockd_start_time_seconds")
        d.write_config([{"name": "echo", "handler": "echo"},
                        {"name": "new", "handler": "echo"}, METRICS],
                       workers=2)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reloaded configuration", since=mark)
        d.parse_addresses(since=mark)
        m = scrape_until(d, lambda m: value(
            m, "ksockd_config_generation") == 2)
        self.assertEqual(value(m, "ksockd_reloads_total", result="ok"), 1)
        self.assertEqual(value(m, "ksockd_reloads_total", result="failed"),
                         0)
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="echo"), 5)
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="new"), 0)
        self.assertNotIn(("ksockd_connections_accepted_total",
                          (("listener", "old"),)), m)
        self.assertEqual(value(m, "ksockd_start_time_seconds"), started)
        # a reload that fails is counted too
        d.write_config_text("daemon = { workers = \"many\"; };\n")
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reload failed", since=mark)
        m = scrape(d)
        self.assertEqual(value(m, "ksockd_reloads_total", result="failed"),
                         1)
        self.assertEqual(value(m, "ksockd_config_generation"), 2)

    def test_upgrade_keeps_counts(self):
        binary = os.path.join(self.tmpdir, "bin", "ksockd")
        os.mkdir(os.path.dirname(binary))
        shutil.copy(KSOCKD, binary)
        d = self.start_daemon([{"name": "echo", "handler": "echo"},
                               METRICS], workers=2, binary=binary)
        for i in range(7):
            s = d.connect("echo")
            self.assertEqual(ask(s, "u"), "u")
            s.close()
        before = scrape_until(d, lambda m: value(
            m, "ksockd_connections_closed_total", listener="echo",
            reason="eof") >= 7)
        tmp = binary + ".new"
        shutil.copy(KSOCKD, tmp)
        os.rename(tmp, binary)
        mark = d.mark()
        d.send_signal(signal.SIGUSR2)
        d.wait_for_log(r"upgraded to", since=mark)
        m = scrape_until(d, lambda m: value(
            m, "ksockd_config_generation") == 2)
        self.assertEqual(value(m, "ksockd_connections_accepted_total",
                               listener="echo"), 7)
        self.assertEqual(value(m, "ksockd_start_time_seconds"),
                         value(before, "ksockd_start_time_seconds"))

    def test_certificate_not_after(self):
        cert, key = tlscerts.server_cert("gauge", 40)
        d = self.start_daemon([
            {"name": "tls", "handler": "hello",
             "tls": {"certificate": cert, "key": key}}, METRICS])
        not_after = ssl.cert_time_to_seconds(
            ssl._ssl._test_decode_cert(cert)["notAfter"])
        m = scrape(d)
        self.assertEqual(value(m, "ksockd_tls_certificate_not_after_seconds",
                               listener="tls", name="localhost"), not_after)
        self.assertGreater(not_after - time.time(), 39 * 86400)

    def test_curl_scrape(self):
        """What an operator types first: curl, and the text parses."""
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        d = self.start_daemon([{"name": "echo", "handler": "echo"},
                               METRICS])
        s = d.connect("echo")
        self.assertEqual(ask(s, "c"), "c")
        s.close()
        url = "http://%s:%d/metrics" % d.address("metrics")
        deadline = time.monotonic() + 60
        while True:
            p = subprocess.run([curl, "-sS", "--fail", "-D", "-", url],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            head, body = p.stdout.decode().split("\r\n\r\n", 1)
            if 'ksockd_connections_closed_total{listener="echo",' \
                    'reason="eof"} 1' in body or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertRegex(head, r"^HTTP/1.1 200 OK")
        self.assertIn("Content-Type: text/plain; version=0.0.4; "
                      "charset=utf-8", head)
        fams = {f.name for f in text_string_to_metric_families(body)}
        self.assertIn("ksockd_connections_accepted", fams)
        self.assertIn('ksockd_connections_closed_total{listener="echo",'
                      'reason="eof"} 1\n', body)

    def test_every_family_is_documented(self):
        """The METRICS section of ksockd.conf(5) names each family the
        text has, and no other."""
        c = tlscerts.certs()
        d = self.start_daemon([
            {"name": "tls", "handler": "hello",
             "tls": {"certificate": c.rsa_cert, "key": c.rsa_key}},
            METRICS])
        host, port = d.address("metrics")
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        conn.close()
        served = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
        with open(os.path.join(SRCDIR, "doc", "ksockd.conf.5")) as f:
            page = f.read()
        section = page.split("\n.SH METRICS\n", 1)[1].split("\n.SH ", 1)[0]
        documented = set(re.findall(r"^\.B (ksockd_\w+)$", section, re.M))
        self.assertEqual(served, documented)
        for fam in served:
            self.assertRegex(body, r"# HELP %s \S" % fam)

    def test_fd_reserve_keeps_the_metrics_reachable(self):
        """Under `prlimit --nofile=48`, clients holding every descriptor
        pause the other listeners; the metrics listener (fd_reserve, at
        most 2 connections) still answers, and shows the pause."""
        os.mkdir(os.path.join(self.tmpdir, "nofile"))
        d = Daemon([{"name": "hello", "handler": "hello", "backlog": 512,
                     "max_connections_per_source": 0},
                    dict(METRICS, fd_reserve=True, max_connections=2,
                         max_connections_per_source=0)],
                   tmpdir=os.path.join(self.tmpdir, "nofile"), workers=1)
        self.daemons.append(d)
        d.start(prefix=["prlimit", "--nofile=48"])
        mark = d.mark()
        held = [d.connect("hello", timeout=60) for _ in range(100)]
        d.wait_for_log(r"every listener of this worker pauses.*"
                       r"fd_reserve listeners go on", since=mark)
        m = scrape(d)
        self.assertGreaterEqual(value(m, "ksockd_fd_pauses_total"), 1)
        accepted = value(m, "ksockd_connections_accepted_total",
                         listener="hello")
        self.assertGreater(accepted, 0)
        self.assertLess(accepted, 100)
        # again, on a kept-alive connection and a second one at once
        host, port = d.address("metrics")
        c1 = http.client.HTTPConnection(host, port, timeout=30)
        c2 = http.client.HTTPConnection(host, port, timeout=30)
        for c in (c1, c2, c1):
            c.request("GET", "/metrics")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        c1.close()
        c2.close()
        for s in held:
            s.close()
        d.wait_for_log(r"descriptors available again", since=mark)

    def test_fd_reserve_needs_max_connections(self):
        rc, out = run_ksockd_conf(self.tmpdir, """
            listeners = ( { name = "m"; address = "127.0.0.1"; port = 0;
                            handler = "metrics"; fd_reserve = true; } );""")
        self.assertNotEqual(rc, 0)
        self.assertIn('listener "m": fd_reserve needs max_connections', out)

    def test_datagrams(self):
        d = self.start_daemon([
            {"name": "udp", "protocol": "udp", "handler": "echo",
             "address": "127.0.0.1", "port": 0}, METRICS])
        u = d.udp("udp")
        for i in range(5):
            u.sendto(b"dgram %d" % i, d.address("udp"))
            self.assertEqual(u.recv(100), b"dgram %d" % i)
        m = scrape_until(d, lambda m: value(
            m, "ksockd_datagrams_sent_total", listener="udp") >= 5)
        self.assertEqual(value(m, "ksockd_datagrams_received_total",
                               listener="udp"), 5)
        self.assertEqual(value(m, "ksockd_datagrams_sent_total",
                               listener="udp"), 5)
        self.assertEqual(value(m, "ksockd_received_bytes_total",
                               listener="udp"), 35)


if __name__ == "__main__":
    unittest.main(verbosity=2)
