"""The hostile-client suite, part two: the PROXY protocol and the access
lists.  Real sockets on loopback, 127.0.0.2 and friends as second
sources.  Each case checks that the daemon stays up (tearDown), that a
normal dialogue still works, and what the client got."""

import socket
import ssl
import struct
import unittest

import kstest

API = kstest.plugin_so("api")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd=1, fam=0x11, addrs=b"", tlvs=b""):
    body = addrs + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) \
        + body


def v2_inet(src, dst, sport, dport, tlvs=b""):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!HH", sport, dport)
    return v2(fam=0x11, addrs=addrs, tlvs=tlvs)


def v2_inet6(src, dst, sport, dport, tlvs=b""):
    addrs = socket.inet_pton(socket.AF_INET6, src) + \
        socket.inet_pton(socket.AF_INET6, dst) + \
        struct.pack("!HH", sport, dport)
    return v2(fam=0x21, addrs=addrs, tlvs=tlvs)


connect_from = kstest.connect_from
closed_by_daemon = kstest.closed_by_daemon


class ProxyProtocol(kstest.KsTestCase):
    def setUp(self):
        super().setUp()
        import tlscerts
        certs = tlscerts.certs()
        self.d = self.start_daemon([
            {"name": "api", "handler": API},
            {"name": "pp", "handler": API, "proxy_protocol": True,
             "proxy_protocol_from": ["127.0.0.1", "::1"],
             "handshake_timeout": 3},
            {"name": "pp-strict", "handler": API, "proxy_protocol": True,
             "proxy_protocol_from": ["127.0.0.2"]},
            {"name": "pp-acl", "handler": API, "proxy_protocol": True,
             "proxy_protocol_from": ["127.0.0.0/8"],
             "deny": ["203.0.113.0/24"], "max_connections_per_source": 2},
            {"name": "pp-tls", "handler": API, "proxy_protocol": True,
             "proxy_protocol_from": ["127.0.0.1"],
             "tls": {"certificate": certs.ec_cert, "key": certs.ec_key}},
        ])

    def info(self, s):
        return kstest.ask(s, "info")

    def assertServed(self):
        s = self.d.connect("api")
        self.assertEqual(kstest.ask(s, "quit"), "bye")
        s.close()

    def test_v1_tcp4_replaces_the_peer(self):
        s = connect_from(self.d.address("pp"))
        s.sendall(b"PROXY TCP4 203.0.113.7 198.51.100.1 4242 80\r\n")
        self.assertEqual(self.info(s),
                         "peer=203.0.113.7:4242 local=198.51.100.1:80 "
                         "listener=pp")
        s.close()

    def test_v1_tcp6_and_unknown(self):
        s = connect_from(self.d.address("pp"))
        s.sendall(b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\n")
        self.assertEqual(self.info(s), "peer=[2001:db8::1]:1000 "
                         "local=[2001:db8::2]:443 listener=pp")
        s.close()
        s = connect_from(self.d.address("pp"))
        s.sendall(b"PROXY UNKNOWN whatever\r\n")
        peer = self.info(s)
        self.assertTrue(peer.startswith("peer=127.0.0.1:%d " %
                                        s.getsockname()[1]), peer)
        s.close()

    def test_v2_with_tlvs_and_local(self):
        tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x00" + b"\xea\x00\x05hello"
        s = connect_from(self.d.address("pp"))
        s.sendall(v2_inet("192.0.2.9", "192.0.2.10", 5555, 25, tlvs))
        self.assertEqual(self.info(s), "peer=192.0.2.9:5555 "
                         "local=192.0.2.10:25 listener=pp")
        s.close()
        s = connect_from(self.d.address("pp"))
        s.sendall(v2_inet6("2001:db8::7", "2001:db8::8", 7, 8))
        self.assertEqual(self.info(s), "peer=[2001:db8::7]:7 "
                         "local=[2001:db8::8]:8 listener=pp")
        s.close()
        # LOCAL (a health check of the proxy): the connection's own.
        s = connect_from(self.d.address("pp"))
        s.sendall(v2(cmd=0, fam=0, addrs=b"", tlvs=b"\x04\x00\x00"))
        self.assertTrue(self.info(s).startswith("peer=127.0.0.1:"))
        s.close()

    def test_header_and_client_data_in_one_segment(self):
        """What follows the header in the same read is the handler's."""
        s = connect_from(self.d.address("pp"))
        s.sendall(b"PROXY TCP4 203.0.113.8 198.51.100.1 1 2\r\ninfo\n")
        self.assertEqual(kstest.recv_line(s).decode(),
                         "peer=203.0.113.8:1 local=198.51.100.1:2 "
                         "listener=pp")
        s.close()

    def test_tls_clienthello_behind_the_header(self):
        """The header and the ClientHello in one segment: the TLS phase
        reads the ClientHello from the input buffer the PROXY phase
        filled, and the handshake completes."""
        hello, tls, inc, out = kstest.tls_client_hello()
        self.assertTrue(hello.startswith(b"\x16\x03"))
        s = connect_from(self.d.address("pp-tls"))
        s.sendall(v2_inet("198.51.100.77", "192.0.2.1", 999, 443) + hello)
        while True:
            data = s.recv(65536)
            self.assertTrue(data, "closed during the handshake")
            inc.write(data)
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    s.sendall(pending)
        s.sendall(out.read())

        def recv_tls_line():
            buf = b""
            while not buf.endswith(b"\n"):
                try:
                    buf += tls.read(4096)
                except ssl.SSLWantReadError:
                    pending = out.read()
                    if pending:
                        s.sendall(pending)
                    data = s.recv(65536)
                    self.assertTrue(data)
                    inc.write(data)
            return buf
        tls.write(b"info\n")
        s.sendall(out.read())
        self.assertEqual(recv_tls_line(), b"peer=198.51.100.77:999 "
                         b"local=192.0.2.1:443 listener=pp-tls\n")
        s.close()

    def refused(self, name, data, log, source="127.0.0.1"):
        mark = self.d.mark()
        s = connect_from(self.d.address(name), source)
        if data:
            try:
                s.sendall(data)
            except OSError:
                pass
        self.assertTrue(closed_by_daemon(s))
        s.close()
        self.d.wait_for_log(log, since=mark)
        self.assertServed()

    def test_junk_is_refused(self):
        self.refused("pp", b"GET / HTTP/1.1\r\n\r\n",
                     r"PROXY header refused: ")
        # a TLS ClientHello without a header: no guessing
        self.refused("pp", b"\x16\x03\x01\x02\x00\x01",
                     r"PROXY header refused: ")

    def test_oversized_v1_and_v2(self):
        self.refused("pp", b"PROXY TCP4 " + b"1" * 200,
                     r"PROXY header refused: ")
        self.refused("pp", V2_SIG + b"\x21\x11\xff\xff",
                     r"PROXY header refused: ")

    def test_truncated_header(self):
        # the client gives up half-way
        mark = self.d.mark()
        s = connect_from(self.d.address("pp"))
        s.sendall(b"PROXY TCP4 203.0.113.7 ")
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(closed_by_daemon(s))
        s.close()
        self.d.wait_for_log(r"PROXY header: closed before it was complete",
                            since=mark)
        # the client stalls half-way: handshake_timeout (3 s) ends it
        mark = self.d.mark()
        s = connect_from(self.d.address("pp"), timeout=60)
        s.sendall(V2_SIG[:7])
        self.assertTrue(closed_by_daemon(s))
        s.close()
        self.d.wait_for_log(r"PROXY header timed out", since=mark)
        self.assertServed()

    def test_untrusted_sender_is_closed_before_a_byte_is_read(self):
        self.refused("pp-strict",
                     b"PROXY TCP4 203.0.113.7 198.51.100.1 4242 80\r\n",
                     r"listener pp-strict: refused 127\.0\.0\.1: not in "
                     r"proxy_protocol_from \(no allow rule matches\)")

    def test_proxied_address_denied_by_the_acl(self):
        self.refused("pp-acl",
                     b"PROXY TCP4 203.0.113.7 198.51.100.1 4242 80\r\n",
                     r"listener pp-acl: refused 203\.0\.113\.7: denied by "
                     r"203\.0\.113\.0/24")

    def test_per_source_limits_count_the_proxied_address(self):
        """All connections come from the proxy (127.0.0.1); the limit
        counts the clients the headers name."""
        addr = self.d.address("pp-acl")
        held = []
        for _ in range(2):
            s = connect_from(addr)
            s.sendall(b"PROXY TCP4 192.0.2.50 198.51.100.1 1 2\r\n")
            self.assertTrue(self.info(s).startswith("peer=192.0.2.50:1 "))
            held.append(s)
        s = connect_from(addr)
        s.sendall(b"PROXY TCP4 192.0.2.50 198.51.100.1 3 2\r\n")
        self.assertTrue(closed_by_daemon(s))
        s.close()
        other = connect_from(addr)
        other.sendall(b"PROXY TCP4 192.0.2.51 198.51.100.1 4 2\r\n")
        self.assertTrue(self.info(other).startswith("peer=192.0.2.51:4 "))
        for s in held + [other]:
            s.close()


class AccessLists(kstest.KsTestCase):
    def ok(self, addr, source):
        s = connect_from(addr, source)
        try:
            return kstest.ask(s, "x") == "x"
        except (OSError, EOFError):
            return False
        finally:
            s.close()

    def test_ipv4_allow_deny_most_specific_wins(self):
        d = self.start_daemon([
            {"name": "only2", "handler": "echo", "allow": ["127.0.0.2"]},
            {"name": "nest", "handler": "echo",
             "deny": ["127.0.0.0/8"], "allow": ["127.0.0.3", "127.0.1.0/24"]},
            {"name": "tie", "handler": "echo",
             "allow": ["127.0.0.4/32"], "deny": ["127.0.0.4"]},
        ])
        mark = d.mark()
        self.assertFalse(self.ok(d.address("only2"), "127.0.0.1"))
        self.assertTrue(self.ok(d.address("only2"), "127.0.0.2"))
        self.assertTrue(self.ok(d.address("nest"), "127.0.0.3"))
        self.assertTrue(self.ok(d.address("nest"), "127.0.1.9"))
        self.assertFalse(self.ok(d.address("nest"), "127.0.0.2"))
        self.assertFalse(self.ok(d.address("tie"), "127.0.0.4"))
        d.wait_for_log(r"listener nest: refused 127\.0\.0\.2: denied by "
                       r"127\.0\.0\.0/8", since=mark)
        d.wait_for_log(r"listener only2: refused 127\.0\.0\.1: denied by "
                       r"\(no allow rule matches\)", since=mark)

    def test_ipv6(self):
        d = self.start_daemon([
            {"name": "v6", "handler": "echo", "address": "::1",
             "deny": ["::/0"], "allow": ["::1/128"]},
            {"name": "v6deny", "handler": "echo", "address": "::1",
             "deny": ["::1"]},
        ])
        self.assertTrue(self.ok(d.address("v6"), "::1"))
        self.assertFalse(self.ok(d.address("v6deny"), "::1"))
        # (IPv4-mapped peers exist only on dual-stack sockets passed by
        # systemd: ksockd binds [::] IPv6-only; tests/unit/test_acl.c
        # matches them.)

    def test_bad_cidrs_fail_the_config(self):
        d = kstest.Daemon([{"name": "x", "handler": "echo",
                            "allow": ["10.1.2.3/24", "300.1.1.1"],
                            "deny": ["::1/129"]}],
                          tmpdir=self.tmpdir)
        rc, out = kstest.run_ksockd(["-t", "-c", d.conf_path])
        self.assertEqual(rc, 1, out)
        self.assertIn("10.1.2.0/24", out)  # the suggestion
        self.assertIn("300.1.1.1", out)
        self.assertIn("::1/129", out)
        d2 = kstest.Daemon([{"name": "y", "handler": "echo",
                             "proxy_protocol": True}],
                           tmpdir=self.tmpdir)
        rc, out = kstest.run_ksockd(["-t", "-c", d2.conf_path])
        self.assertEqual(rc, 1, out)
        self.assertIn("proxy_protocol needs proxy_protocol_from", out)


if __name__ == "__main__":
    unittest.main()
