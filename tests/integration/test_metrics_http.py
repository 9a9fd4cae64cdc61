"""The metrics plugin's HTTP side: what a Prometheus server (or curl) sees
on a `handler = "metrics"` listener.  http.client for the ordinary
exchanges, raw sockets for keep-alive, pipelining and hostile input.  The
metrics text itself is the daemon's (ks_metrics_text): here it only has
to parse as the Prometheus text format."""

import http.client
import socket
import unittest

from prometheus_client.parser import text_string_to_metric_families

import kstest
from kstest import recv_exact, recv_line, recv_until_eof

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def request(method="GET", path="/metrics", version="HTTP/1.1", headers=(),
            body=b""):
    """The bytes of one request (CRLF line ends)."""
    lines = ["%s %s %s" % (method, path, version)] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock, head=False):
    """One response from sock: (status, {lower-case name: value}, body).
    Reads exactly the response's bytes, so that the next one can follow
    on the same socket."""
    version, status, _reason = recv_line(sock).decode().split(" ", 2)
    if version != "HTTP/1.1":
        raise AssertionError("status line of version %r" % version)
    headers = {}
    while True:
        line = recv_line(sock).decode()
        if not line:
            break
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers["content-length"])
    return int(status), headers, b"" if head else recv_exact(sock, n)


class MetricsHttp(kstest.KsTestCase):
    def setUp(self):
        super().setUp()
        self.conns = []
        self.d = self.start_daemon([
            {"name": "m", "handler": "metrics", "max_line_length": 1024},
            {"name": "m-unix", "protocol": "unix", "handler": "metrics"},
            {"name": "m-path", "handler": "metrics",
             "options": {"path": "/custom/path"}},
        ])

    def tearDown(self):
        # Before the daemon stops: an open keep-alive connection would
        # hold its worker until shutdown_timeout.
        for c in self.conns:
            c.close()
        super().tearDown()

    def http(self, name="m"):
        host, port = self.d.address(name)
        c = http.client.HTTPConnection(host, port, timeout=kstest.SOCK_TIMEOUT)
        self.conns.append(c)
        return c

    def get(self, c, method="GET", path="/metrics", headers=None):
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r, r.read()

    def assertMetrics(self, headers, body):
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        self.assertEqual(int(headers["content-length"]), len(body))
        families = list(text_string_to_metric_families(body.decode()))
        self.assertTrue(families, body)
        for f in families:
            self.assertTrue(f.name.startswith("ksockd_"), f.name)

    def assertCloses(self, sock):
        """The daemon closes (after what it already sent was read)."""
        self.assertEqual(recv_until_eof(sock), b"")

    def refused(self, data, status, **kw):
        """data gets one answer of `status`, saying it closes, then EOF."""
        s = self.d.connect("m")
        s.sendall(data)
        got, headers, body = read_response(s, **kw)
        self.assertEqual(got, status, body)
        self.assertEqual(headers.get("connection"), "close")
        self.assertCloses(s)
        return headers, body

    # -- the document --

    def test_get(self):
        r, body = self.get(self.http())
        self.assertEqual(r.status, 200)
        self.assertMetrics({k.lower(): v for k, v in r.getheaders()}, body)
        self.assertIsNotNone(r.getheader("Date"))
        self.assertIsNone(r.getheader("Connection"))  # 1.1: stays open

    def test_query_ignored(self):
        r, body = self.get(self.http(), path="/metrics?name[]=up&x")
        self.assertEqual(r.status, 200)
        self.assertMetrics({k.lower(): v for k, v in r.getheaders()}, body)

    def test_head(self):
        # HEAD then GET on one socket: had HEAD sent a body, the GET's
        # status line would not come next.
        s = self.d.connect("m")
        s.sendall(request("HEAD") + request("GET"))
        status, headers, body = read_response(s, head=True)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        self.assertGreater(int(headers["content-length"]), 0)
        status, headers, body = read_response(s)
        self.assertEqual(status, 200)
        self.assertMetrics(headers, body)

    def test_unix_listener(self):
        s = self.d.connect("m-unix")
        s.sendall(request())
        status, headers, body = read_response(s)
        self.assertEqual(status, 200)
        self.assertMetrics(headers, body)

    def test_custom_path(self):
        c = self.http("m-path")
        r, body = self.get(c, path="/custom/path?q")
        self.assertEqual(r.status, 200)
        self.assertMetrics({k.lower(): v for k, v in r.getheaders()}, body)
        r, _ = self.get(c, path="/metrics")
        self.assertEqual(r.status, 404)

    # -- everything else --

    def test_not_found(self):
        c = self.http()
        for path in ("/", "/metrics/", "/metricsx", "/Metrics", "/x?/metrics",
                     "*"):
            r, body = self.get(c, path=path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(body, b"Not Found\n")
        r, body = self.get(c, "POST", "/nope")
        self.assertEqual(r.status, 404)

    def test_method_not_allowed(self):
        c = self.http()
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "get"):
            r, body = self.get(c, method)
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.getheader("Allow"), "GET, HEAD")
        # The connection survived all of them.
        r, body = self.get(c)
        self.assertEqual(r.status, 200)

    # -- connections --

    def test_keep_alive_three_requests(self):
        c = self.http()
        r, _ = self.get(c)
        sock = c.sock
        self.assertIsNotNone(sock)
        for path in ("/metrics", "/nope"):
            r, _ = self.get(c, path=path)
            self.assertIs(c.sock, sock, "http.client had to reconnect")
        self.assertEqual(r.status, 404)

    def test_http10_closes(self):
        s = self.d.connect("m")
        s.sendall(request(version="HTTP/1.0"))
        status, headers, body = read_response(s)
        self.assertEqual(status, 200)
        self.assertEqual(headers["connection"], "close")
        self.assertMetrics(headers, body)
        self.assertCloses(s)

    def test_http10_keep_alive(self):
        s = self.d.connect("m")
        for _ in range(2):
            s.sendall(request(version="HTTP/1.0",
                              headers=["Connection: Keep-Alive"]))
            status, headers, body = read_response(s)
            self.assertEqual(status, 200)
            self.assertEqual(headers["connection"], "keep-alive")
        s.sendall(request(version="HTTP/1.0"))
        status, headers, _ = read_response(s)
        self.assertEqual(headers["connection"], "close")
        self.assertCloses(s)

    def test_connection_close_token_list(self):
        s = self.d.connect("m")
        s.sendall(request(headers=["connection: TE, Close"]))
        status, headers, _ = read_response(s)
        self.assertEqual(status, 200)
        self.assertEqual(headers["connection"], "close")
        self.assertCloses(s)

    def test_pipelined_in_order(self):
        s = self.d.connect("m")
        s.sendall(request(path="/nope") + request() + request("DELETE") +
                  request(headers=["Connection: close"]))
        self.assertEqual(read_response(s)[0], 404)
        self.assertEqual(read_response(s)[0], 200)
        self.assertEqual(read_response(s)[0], 405)
        status, headers, _ = read_response(s)
        self.assertEqual((status, headers["connection"]), (200, "close"))
        self.assertCloses(s)

    def test_body_is_skipped(self):
        s = self.d.connect("m")
        body = bytes(range(256)) * 200  # 51200 bytes, CR and LF among them
        s.sendall(request("POST", "/nope", headers=[
            "Content-Length: %d" % len(body)], body=body) + request())
        self.assertEqual(read_response(s)[0], 404)
        status, headers, got = read_response(s)
        self.assertEqual(status, 200)
        self.assertMetrics(headers, got)

    # -- refused requests: an answer, then the connection closes --

    def test_garbage(self):
        self.refused(b"\x16\x03\x01\x00\xa5hello\r\n\r\n", 400)
        self.refused(b"GET /metrics\r\n\r\n", 400)  # HTTP/0.9
        self.refused(b"GET  /metrics HTTP/1.1\r\n\r\n", 400)
        self.refused(request(version="HTTP/1.x"), 400)

    def test_other_versions(self):
        self.refused(request(version="HTTP/2.0"), 505)
        self.refused(request(version="HTTP/1.2"), 505)

    def test_header_without_colon(self):
        self.refused(request(headers=["Host: x", "no colon here"]), 400)
        self.refused(request(headers=["Host : x"]), 400)
        self.refused(request(headers=["X: a", " folded"]), 400)

    def test_header_count(self):
        s = self.d.connect("m")
        s.sendall(request(headers=["X-H%d: v" % i for i in range(100)]))
        self.assertEqual(read_response(s)[0], 200)
        self.refused(request(headers=["X-H%d: v" % i for i in range(101)]),
                     431)

    def test_long_lines(self):
        # The listener's max_line_length is 1024.
        self.refused(request(path="/" + "a" * 2000), 414)
        self.refused(request(headers=["X: " + "b" * 2000]), 431)
        s = self.d.connect("m")
        s.sendall(request(path="/metrics?" + "c" * 900))
        self.assertEqual(read_response(s)[0], 200)

    def test_bodies_refused(self):
        self.refused(request(headers=["Content-Length: 65537"]), 413)
        self.refused(request(headers=["Content-Length: 99999999999999999999"
                                      "999"]), 400)
        self.refused(request(headers=["Content-Length: 1",
                                      "Content-Length: 2"], body=b"x"), 400)
        self.refused(request(headers=["Transfer-Encoding: chunked"],
                             body=b"0\r\n\r\n"), 501)

    def test_head_refused_has_no_body(self):
        s = self.d.connect("m")
        s.sendall(request("HEAD", headers=["Transfer-Encoding: chunked"]))
        status, headers, _ = read_response(s, head=True)
        self.assertEqual(status, 501)
        self.assertCloses(s)  # no body bytes before the EOF

    def test_end_of_input_ends_quietly(self):
        mark = self.d.mark()
        for data in (b"", b"GET /metr", b"GET /metrics HTTP/1.1\r\nHost"):
            s = self.d.connect("m")
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            self.assertCloses(s)
        self.d.wait_for_log(r"\[metrics m .*\] connection ends: end of "
                            r"input", since=mark)


class MetricsConfig(kstest.KsTestCase):
    def check(self, listener):
        d = kstest.Daemon([listener], tmpdir=self.tmpdir)
        return kstest.run_ksockd(["-t", "-c", d.conf_path])

    def test_udp_listener_refused(self):
        rc, out = self.check({"name": "mu", "protocol": "udp",
                              "address": "127.0.0.1", "port": 0,
                              "handler": "metrics"})
        self.assertEqual(rc, 1, out)
        self.assertIn('listener "mu": plugin metrics has no handle_dgram hook'
                      ' (needed for a udp listener)', out)

    def test_bad_options(self):
        rc, out = self.check({"name": "mp", "handler": "metrics",
                              "options": {"path": "metrics"}})
        self.assertEqual(rc, 1, out)
        self.assertIn('option path: "metrics" must start with "/"', out)
        rc, out = self.check({"name": "mp", "handler": "metrics",
                              "options": {"path": 9100}})
        self.assertEqual(rc, 1, out)
        self.assertIn("option path", out)
        rc, out = self.check({"name": "mp", "handler": "metrics",
                              "options": {"port": 9100}})
        self.assertEqual(rc, 1, out)
        self.assertIn("unknown option port", out)
        rc, out = self.check({"name": "mp", "handler": "metrics",
                              "options": {"path": "/m"}})
        self.assertEqual(rc, 0, out)

    def test_allow_refuses_other_sources(self):
        d = self.start_daemon([
            {"name": "m-acl", "handler": "metrics", "allow": ["10.0.0.0/8"]},
        ])
        mark = d.mark()
        s = kstest.connect_from(d.address("m-acl"), "127.0.0.1")
        try:
            s.sendall(request())
            got = s.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        finally:
            s.close()
        self.assertEqual(got, b"")
        d.wait_for_log(r"listener m-acl: refused 127\.0\.0\.1: denied by "
                       r"\(no allow rule matches\)", since=mark)


if __name__ == "__main__":
    unittest.main(verbosity=2)
