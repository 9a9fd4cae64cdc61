"""UDP listeners (issue #5): the datagram API through the dgram test plugin
(tests/plugins/dgram.c), multicast on the loopback interface, config errors
of udp listeners (ksockd -t), a datagram flood next to a TCP dialogue, and
the bundled services (echo, daytime, time, chargen, discard) over UDP.

A udp listener runs ONE handler coroutine: a command that waits for
another datagram (`ask`) must target a different listener than the one
that received it.  Every wait is a socket timeout or wait_for_log; the
retry loops below resend on a short timeout within a bounded total."""

import errno
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from kstest import (PLUGIN_BUILD_DIR, KsTestCase, assert_time_between,
                    bad_output, plugin_so, recv_line, run_ksockd)

DGRAM = plugin_so("dgram")
EPOCH_1900 = 2208988800  # seconds from 1900-01-01 to 1970-01-01 (RFC 868)
RING = bytes(range(32, 127))  # chargen's 95 printable characters
ETOOLONG_TEXT = "line or datagram too long"
MCAST4 = "239.255.77.1"
MCAST6 = "ff15::7701"


def udp(name, handler=DGRAM, address="127.0.0.1", port=0, **kw):
    """A udp listener entry (kstest's defaults only fit tcp and unix)."""
    l = {"name": name, "protocol": "udp", "address": address, "port": port,
         "handler": handler}
    l.update(kw)
    return l


def free_udp_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def udp_socket(host, timeout=10.0, bind_port=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    if bind_port is not None:
        try:
            s.bind((host, bind_port))
        except OSError:
            s.close()
            raise
    return s


def exchange(sock, addr, payload, timeout=10.0):
    """Sends one datagram, returns (reply, its source)."""
    if isinstance(payload, str):
        payload = payload.encode()
    sock.settimeout(timeout)
    sock.sendto(payload, addr)
    return sock.recvfrom(65536)


def no_reply(sock, addr, payload, wait=0.5):
    """True if nothing answers payload within `wait` seconds (a short wait
    is the point: the check is that nothing comes)."""
    sock.sendto(payload, addr)
    sock.settimeout(wait)
    try:
        sock.recvfrom(65536)
    except socket.timeout:
        return True
    return False


def retry_exchange(sock, addr, payload, total=15.0, step=0.3):
    """Resends payload every `step` seconds until a reply comes (the
    datagram or its answer may be dropped meanwhile); bounded by `total`."""
    deadline = time.monotonic() + total
    while time.monotonic() < deadline:
        sock.sendto(payload, addr)
        sock.settimeout(step)
        try:
            return sock.recvfrom(65536)[0]
        except socket.timeout:
            continue
    raise AssertionError("no answer to %r within %.0f s" % (payload, total))


class UdpCase(KsTestCase):
    def call(self, d, name, payload, sock=None, timeout=10.0):
        """Sends payload to listener `name`; returns the reply text."""
        s = sock or d.udp(name)
        data, src = exchange(s, d.address(name), payload, timeout)
        self.assertEqual(src[:2], d.address(name), "reply from elsewhere")
        return data.decode("utf-8", "replace")


# ---- A. the datagram API through the dgram test plugin ----------------------

class DgramTest(UdpCase):
    def setUp(self):
        super().setUp()
        # `wait` bounds the wait for an outbound answer: generous, but for
        # "mute", whose test is about that timeout.
        self.d = self.start_daemon([
            udp("u4", options={"tag": "A", "wait": 30.0}),
            udp("u6", address="::1", options={"wait": 30.0}),
            udp("peer4"),
            udp("peer6", address="::1"),
            udp("small", max_datagram_size=100),
            {"name": "tcp", "handler": DGRAM, "options": {"wait": 30.0}},
            {"name": "mute", "handler": DGRAM, "options": {"wait": 0.5}},
        ])
        self.p4 = self.d.address("peer4")[1]
        self.p6 = self.d.address("peer6")[1]

    def test_echo_ipv4(self):
        self.assertEqual(self.call(self.d, "u4", "echo hello"), "hello")

    def test_echo_ipv6(self):
        self.assertEqual(self.call(self.d, "u6", "echo hello six"),
                         "hello six")

    def test_info(self):
        s = self.d.udp("u4")
        text = self.call(self.d, "u4", "info", sock=s)
        port = self.d.address("u4")[1]
        self.assertRegex(text, r"^peer=127\.0\.0\.1:%d local=127\.0\.0\.1:%d "
                         r"reply_from=127\.0\.0\.1:0 if=\d+ flags=0$"
                         % (s.getsockname()[1], port))
        s6 = self.d.udp("u6")
        text = self.call(self.d, "u6", "info", sock=s6)
        self.assertRegex(text, r"^peer=\[::1\]:%d local=\[::1\]:%d "
                         r"reply_from=\[::1\]:0 " % (s6.getsockname()[1],
                                                     self.d.address("u6")[1]))

    def test_largest_reply(self):
        s = self.d.udp("u4")
        data, _ = exchange(s, self.d.address("u4"), "big 65507")
        self.assertEqual(len(data), 65507)
        self.assertEqual(data, b"x" * 65507)

    def test_too_long_reply(self):
        text = self.call(self.d, "u4", "big 65508")
        self.assertEqual(text, "send: %s errno=%d" % (ETOOLONG_TEXT,
                                                      errno.EMSGSIZE))
        self.assertEqual(self.call(self.d, "u4", "echo still"), "still")

    def test_truncated_datagram(self):
        m = self.d.mark()
        s = self.d.udp("small")
        data, _ = exchange(s, self.d.address("small"), b"y" * 65507)
        self.assertEqual(data, b"truncated 65507 100")
        self.d.wait_for_log(r"warn: .*datagram of 65507 bytes from "
                            r"127\.0\.0\.1:%d exceeds max_datagram_size 100"
                            % s.getsockname()[1], since=m)
        # 100 bytes fit exactly; the listener carries on.
        cmd = b"echo " + b"z" * 95
        self.assertEqual(exchange(s, self.d.address("small"), cmd)[0],
                         b"z" * 95)

    def test_spawned_reply_after_immediate_one(self):
        s = self.d.udp("u4")
        addr = self.d.address("u4")
        s.sendto(b"later 1 second", addr)
        s.sendto(b"echo first", addr)
        self.assertEqual(s.recvfrom(100)[0], b"first")
        self.assertEqual(s.recvfrom(100)[0], b"second")

    def ask(self, cmd, host, port, text="echo hi"):
        return self.call(self.d, "u4", "%s %s %d %s" % (cmd, host, port, text))

    def test_ask_ipv4(self):
        self.assertEqual(self.ask("ask", "127.0.0.1", self.p4), "answer hi")
        self.assertEqual(self.ask("askany", "127.0.0.1", self.p4),
                         "answer hi")

    def test_ask_ipv6(self):
        self.assertEqual(self.ask("ask", "::1", self.p6), "answer hi")
        self.assertEqual(self.ask("askany", "::1", self.p6), "answer hi")
        # From the IPv6 listener to the IPv4 one.
        text = self.call(self.d, "u6", "ask 127.0.0.1 %d echo across"
                         % self.p4)
        self.assertEqual(text, "answer across")

    def test_ask_by_name(self):
        # The daemon takes getaddrinfo's first answer (AI_ADDRCONFIG), as
        # python does here: aim at the peer of that family.
        fam = socket.getaddrinfo("localhost", 7, 0, socket.SOCK_DGRAM, 0,
                                 socket.AI_ADDRCONFIG)[0][0]
        port = self.p6 if fam == socket.AF_INET6 else self.p4
        self.assertEqual(self.ask("ask", "localhost", port), "answer hi")
        self.assertEqual(self.ask("askany", "localhost", port), "answer hi")

    def test_ask_closed_port(self):
        closed = free_udp_port()
        self.assertEqual(self.ask("ask", "127.0.0.1", closed),
                         "error socket error errno=%d" % errno.ECONNREFUSED)
        self.assertEqual(self.call(self.d, "u4", "echo after"), "after")

    def test_stream_side(self):
        c = self.d.connect("tcp")
        c.sendall(b"udp 127.0.0.1 %d echo x\n" % self.p4)
        self.assertLine(c, "answer x")
        c.sendall(b"udp ::1 %d echo y\n" % self.p6)
        self.assertLine(c, "answer y")
        c.sendall(b"udp 127.0.0.1 %d echo z\n" % free_udp_port())
        self.assertLine(c, "error socket error errno=%d" % errno.ECONNREFUSED)
        c.sendall(b"nonsense\n")
        self.assertLine(c, "error usage")

    def test_stream_side_timeout(self):
        # A peer that never answers: the outbound receive times out (the
        # listener's `wait` option, 0.5 s).
        c = self.d.connect("mute")
        with udp_socket("127.0.0.1") as mute:
            mute.bind(("127.0.0.1", 0))
            c.sendall(b"udp 127.0.0.1 %d echo w\n" % mute.getsockname()[1])
            self.assertLine(c, "error timed out errno=0")
            self.assertEqual(mute.recvfrom(100)[0], b"echo w")

    def test_close_under_a_waiting_coroutine(self):
        # One coroutine waits on an outbound TCP peer or UDP socket, another
        # closes it: the waiter gets KS_ECLOSED (and the sanitizer build
        # catches any use of freed memory).
        host, port = self.d.address("tcp")
        c = self.d.connect("tcp")
        c.sendall(b"peerclose %s %d\ndgramclose\n" % (host.encode(), port))
        self.assertEqual(recv_line(c), b"reader: channel closed")
        self.assertEqual(recv_line(c), b"reader: channel closed")

    def test_handler_return_restarts(self):
        m = self.d.mark()
        s = self.d.udp("u4")
        s.sendto(b"return", self.d.address("u4"))
        self.d.wait_for_log(r"warn: listener u4: datagram handler returned",
                            since=m)
        data = retry_exchange(s, self.d.address("u4"), b"echo again")
        self.assertEqual(data, b"again")
        self.d.wait_for_log(r"\[dgram u4 -\] datagram handler started",
                            since=m)

    def test_sigterm(self):
        self.assertEqual(self.call(self.d, "u6", "echo bye"), "bye")
        m = self.d.mark()
        self.d.stop()
        self.assertTrue(self.d.log_has(r"stopped: .*datagrams in", since=m),
                        self.d.log_tail())

    def test_sigterm_releases_port_at_once(self):
        # A reply still pending (a spawned coroutine sleeping) holds up
        # the stop for shutdown_timeout, but not the socket: the port is
        # free as soon as the stop begins, for a restarted daemon.
        s = self.d.udp("u4")
        addr = self.d.address("u4")
        s.sendto(b"later 30 never", addr)
        self.assertEqual(exchange(s, addr, "echo sync")[0], b"sync")
        m = self.d.mark()
        self.d.send_signal(signal.SIGTERM)
        self.d.wait_for_log(r"received SIGTERM: stopping \(1 ", since=m)
        self.assertTrue(self.d.running())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            b.bind(addr)  # no SO_REUSEADDR: fails if still bound
        # A second signal cancels the sleeper: no wait for the timeout.
        self.d.send_signal(signal.SIGTERM)
        self.d.wait()


class ReloadTest(UdpCase):
    def listeners(self, tag):
        return [udp("u", port=self.port, options={"tag": tag}),
                udp("u6", address="::1", port=self.port6,
                    options={"tag": tag})]

    def setUp(self):
        super().setUp()
        self.port = free_udp_port()
        self.port6 = free_udp_port("::1")
        self.d = self.start_daemon(self.listeners("A"))

    def reload(self, expect=r"reloaded configuration"):
        m = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        self.d.wait_for_log(expect, since=m)

    def test_reload_switches_generation(self):
        old = self.d.udp("u")
        addr = self.d.address("u")
        old.sendto(b"later 1 from the old generation", addr)
        # Answered by the same coroutine: the `later` was taken by now.
        self.assertEqual(exchange(old, addr, "echo sync")[0], b"sync")
        self.assertEqual(self.call(self.d, "u", "tag"), "A")
        self.d.write_config(self.listeners("B"))
        self.reload()
        self.assertEqual(self.call(self.d, "u", "tag"), "B")
        self.assertEqual(self.call(self.d, "u6", "tag"), "B")
        old.settimeout(10)
        self.assertEqual(old.recvfrom(100)[0],
                         b"from the old generation")

    def test_reload_dropping_listener_keeps_pending_replies(self):
        # The listener goes away with the reload; a request its handler
        # already took still gets its answer, from the same address.
        old = self.d.udp("u")
        addr = self.d.address("u")
        old.sendto(b"later 1 still answered", addr)
        self.assertEqual(exchange(old, addr, "echo sync")[0], b"sync")
        self.d.write_config([udp("u6", address="::1", port=self.port6,
                                 options={"tag": "B"})])
        self.reload()
        self.assertTrue(self.d.log_has(r"listener u closed"))
        old.settimeout(10)
        data, src = old.recvfrom(100)
        self.assertEqual(data, b"still answered")
        self.assertEqual(src, addr)
        self.assertEqual(self.call(self.d, "u6", "tag"), "B")

    def test_bad_reload_keeps_serving(self):
        self.d.write_config_text("daemon: { log_level = ; \n")
        self.reload(r"reload failed")
        self.assertEqual(self.call(self.d, "u", "tag"), "A")
        self.assertEqual(self.call(self.d, "u6", "echo fine"), "fine")


class MulticastTest(UdpCase):
    def test_ipv4_group_on_loopback(self):
        d = self.start_daemon([udp("m", address="0.0.0.0",
                                   multicast_groups=[MCAST4],
                                   multicast_interface="lo")])
        port = d.address("m")[1]
        with udp_socket("127.0.0.1") as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         socket.inet_aton("127.0.0.1"))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            data, src = exchange(s, (MCAST4, port), "info")
        text = data.decode()
        # Never a reply from the group address: from lo's address.
        self.assertEqual(src, ("127.0.0.1", port))
        self.assertIn(" local=%s:%d " % (MCAST4, port), text)
        self.assertIn(" reply_from=127.0.0.1:0 ", text)
        self.assertTrue(text.endswith(" flags=1"), text)  # multicast

    @staticmethod
    def ipv6_multicast_interface():
        """lo if IPv6 multicast works there (often it has no route for
        ff00::/8), else the first interface that takes a group datagram
        (it loops back to local members), else None."""
        for name in ["lo"] + [n for _, n in socket.if_nameindex()
                              if n != "lo"]:
            idx = socket.if_nametoindex(name)
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as p:
                p.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                             idx)
                try:
                    # Port 9 (discard): nobody here joins this group.
                    p.sendto(b"", (MCAST6, 9, 0, idx))
                except OSError:
                    continue
            return name, idx
        return None

    def test_ipv6_group(self):
        found = self.ipv6_multicast_interface()
        if found is None:
            self.skipTest("no interface carries IPv6 multicast here")
        ifname, idx = found
        d = self.start_daemon([udp("m", address="::",
                                   multicast_groups=[MCAST6],
                                   multicast_interface=ifname)])
        port = d.address("m")[1]
        with udp_socket("::") as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            s.sendto(b"info", (MCAST6, port, 0, idx))
            data, src = s.recvfrom(65536)
        text = data.decode()
        # Never a reply from the group address.
        self.assertFalse(src[0].lower().startswith("ff"), src)
        self.assertEqual(src[1], port)
        self.assertIn(" local=[%s]:%d " % (MCAST6, port), text)


class BroadcastTest(UdpCase):
    """A datagram sent to a broadcast address reaches a wildcard listener
    (the kernel loops the sender's own broadcasts back).  Handed out,
    flagged, only with broadcast = true; dropped otherwise, so that one
    forged datagram cannot make every host of a subnet answer."""

    def send_broadcast(self, port):
        s = udp_socket("0.0.0.0")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            s.sendto(b"info", ("255.255.255.255", port))
        except OSError as e:
            s.close()
            self.skipTest("cannot send a broadcast here: %s" % e)
        return s

    def test_broadcast_dropped_unless_enabled(self):
        d = self.start_daemon([
            udp("off", address="0.0.0.0"),
            udp("on", address="0.0.0.0", broadcast=True)])
        with self.send_broadcast(d.address("on")[1]) as s:
            text = s.recvfrom(65536)[0].decode()
        self.assertIn(" local=255.255.255.255:", text)
        self.assertTrue(text.endswith(" flags=2"), text)
        with self.send_broadcast(d.address("off")[1]) as s:
            s.settimeout(0.5)  # the point is that nothing comes
            self.assertRaises(socket.timeout, s.recvfrom, 65536)
            # Not a dead listener: unicast is answered.
            self.assertEqual(exchange(s, ("127.0.0.1", d.address("off")[1]),
                                      "echo up")[0], b"up")
        m = d.mark()
        d.stop()
        self.assertTrue(d.log_has(r"stopped: .* 1 datagrams dropped",
                                  since=m), d.log_tail())


# ---- B. config errors (ksockd -t) ------------------------------------------

HEAD = [
    'daemon: {',                                        # 1
    '  plugin_dir = "%s";' % PLUGIN_BUILD_DIR,          # 2
    '};',                                               # 3
    'listeners = (',                                    # 4
]
LINE = len(HEAD) + 1


def line(extra, proto="udp", address="127.0.0.1", handler=DGRAM):
    return ('  { name = "x"; protocol = "%s"; address = "%s"; port = 0; '
            'handler = "%s"; %s }' % (proto, address, handler, extra))


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="kstest-udpconf-")

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def check(self, entry):
        path = os.path.join(self.tmpdir, "ksockd.conf")
        with open(path, "w") as f:
            f.write("\n".join(HEAD + [entry, ");"]) + "\n")
        rc, out = run_ksockd(["-t", "-c", path])
        self.assertIsNone(bad_output(out), out)
        return path, rc, out

    def assert_bad(self, entry, key, pattern=None):
        path, rc, out = self.check(entry)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:%d: " % (path, LINE), out)
        self.assertIn(key, out)
        if pattern:
            self.assertRegex(out, pattern)
        self.assertNotIn("configuration OK", out)

    def test_good_udp_config(self):
        path, rc, out = self.check(line(
            'reuse_port = true; type_of_service = 16; send_buffer = 65536; '
            'receive_buffer = 65536; broadcast = true; '
            'max_datagram_size = 1500; options = { tag = "t"; };'))
        self.assertEqual(rc, 0, out)
        path, rc, out = self.check(line(
            'multicast_groups = [ "%s" ]; multicast_interface = "lo";'
            % MCAST4, address="0.0.0.0"))
        self.assertEqual(rc, 0, out)
        # Bound to the one group itself is fine too.
        path, rc, out = self.check(line(
            'multicast_groups = [ "%s" ];' % MCAST4, address=MCAST4))
        self.assertEqual(rc, 0, out)

    def test_stream_only_keys(self):
        for extra, key in (("backlog = 16;", "backlog"),
                           ("no_delay = true;", "no_delay"),
                           ("keep_alive = true;", "keep_alive"),
                           ("linger = 5;", "linger"),
                           ("max_line_length = 100;", "max_line_length"),
                           ("idle_timeout = 5.0;", "idle_timeout")):
            with self.subTest(key=key):
                self.assert_bad(line(extra), key,
                                r"%s does not apply to udp" % key)

    def test_tls_on_udp(self):
        self.assert_bad(line('tls = { certificate = "/nonexistent.pem"; '
                             'key = "/nonexistent.key"; };'), "tls",
                        r"tls on a udp listener")

    def test_udp_only_keys_on_tcp(self):
        for extra, key in (("broadcast = true;", "broadcast"),
                           ('multicast_groups = [ "%s" ];' % MCAST4,
                            "multicast_groups"),
                           ('multicast_interface = "lo";',
                            "multicast_interface"),
                           ("max_datagram_size = 1000;", "max_datagram_size")):
            with self.subTest(key=key):
                self.assert_bad(line(extra, proto="tcp", handler="echo"), key,
                                r"%s applies to udp listeners only" % key)

    def test_max_datagram_size_range(self):
        for v in (0, 65536):
            with self.subTest(value=v):
                self.assert_bad(line("max_datagram_size = %d;" % v),
                                "max_datagram_size")

    def test_group_not_multicast(self):
        self.assert_bad(line('multicast_groups = [ "10.1.2.3" ];',
                             address="0.0.0.0"), "multicast_groups",
                        r"10\.1\.2\.3 is not a multicast address")
        self.assert_bad(line('multicast_groups = [ "nonsense" ];',
                             address="0.0.0.0"), "multicast_groups")

    def test_group_family_mismatch(self):
        self.assert_bad(line('multicast_groups = [ "%s" ];' % MCAST6,
                             address="0.0.0.0"), "multicast_groups",
                        r"different families")
        self.assert_bad(line('multicast_groups = [ "%s" ];' % MCAST4,
                             address="::"), "multicast_groups",
                        r"different families")

    def test_unicast_address_with_groups(self):
        self.assert_bad(line('multicast_groups = [ "%s" ];' % MCAST4),
                        "multicast_groups", r"must be 0\.0\.0\.0")

    def test_unknown_interface(self):
        self.assert_bad(line('multicast_groups = [ "%s" ]; '
                             'multicast_interface = "nosuch0";' % MCAST4,
                             address="0.0.0.0"), "multicast_interface",
                        r"nosuch0: no such network interface")

    def test_plugin_without_dgram_hook(self):
        for handler in ("hello", plugin_so("relay")):
            with self.subTest(handler=handler):
                self.assert_bad(line("", handler=handler), "handle_dgram",
                                r"has no handle_dgram hook")


# ---- C. a datagram flood next to a TCP dialogue -----------------------------

class FloodTest(UdpCase):
    FLOOD = 100000
    ROUNDS = 200
    DURING = 10  # round trips that must end while the flood goes on

    def test_tcp_not_starved_by_flood(self):
        d = self.start_daemon([udp("u"), {"name": "tcp", "handler": "echo"}])
        addr = d.address("u")
        sent = [0]
        errors = []
        flooding = threading.Event()

        def blast():
            try:
                with udp_socket("127.0.0.1") as s:
                    # Replies of 16 KB: the handler cannot keep up, the
                    # socket stays readable while the flood goes on.
                    payload = b"big 16384"
                    for _ in range(self.FLOOD):
                        s.sendto(payload, addr)
                        sent[0] += 1
                        if sent[0] == 1000:  # the socket buffer is full
                            flooding.set()
            except OSError as e:  # reported below
                errors.append(e)
            finally:
                flooding.set()

        c = d.connect("tcp")
        t = threading.Thread(target=blast, daemon=True)
        t.start()
        flooding.wait(60)
        rounds = during = 0
        # At least ROUNDS round trips, and on until the flood is over.
        while rounds < self.ROUNDS or t.is_alive():
            c.sendall(b"ping %d\n" % rounds)
            self.assertLine(c, "ping %d" % rounds)
            rounds += 1
            during += t.is_alive()
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(sent[0], self.FLOOD)
        # Ordering, not speed: the dialogue goes on while the datagrams
        # keep coming.  A daemon that served the flood first would answer
        # it only once the flood is over (or whenever the handler caught
        # up with it); a fair one does hundreds of round trips meanwhile,
        # on a loaded machine too.
        self.assertGreaterEqual(during, self.DURING, "%d of %d round trips "
                                "during the flood" % (during, rounds))
        with udp_socket("127.0.0.1") as s:
            self.assertEqual(retry_exchange(s, addr, b"echo alive"),
                             b"alive")
        c.sendall(b"after\n")
        self.assertLine(c, "after")
        # The flood did reach the handler (the kernel drops what the
        # socket buffer cannot hold, so no exact count).
        m = d.mark()
        d.stop(close_clients=True)
        got = int(d.wait_for_log(r"stopped: .* (\d+) datagrams in",
                                 since=m).group(1))
        self.assertGreater(got, 1000)


# ---- D. the bundled services over UDP ---------------------------------------

class ServicesTest(UdpCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            udp("echo", handler="echo"),
            udp("echo6", handler="echo", address="::1"),
            udp("daytime", handler="daytime"),
            udp("time", handler="time"),
            udp("chargen", handler="chargen"),
            udp("discard", handler="discard"),
            udp("limited", handler="echo",
                options={"rate_limit": 5, "rate_burst": 5}),
        ], workers=1)  # chargen's ring and the rate limit are per worker

    def test_echo(self):
        self.assertEqual(self.call(self.d, "echo", "hello"), "hello")
        self.assertEqual(self.call(self.d, "echo6", "hello six"), "hello six")
        s = self.d.udp("echo")
        payload = os.urandom(65507)
        self.assertEqual(exchange(s, self.d.address("echo"), payload)[0],
                         payload)

    def socat(self, target, text):
        """text through socat to target and back.  UDP has no EOF, so
        socat's stdin stays open until the answer is in (however long
        that takes); then its EOF, and socat ends after -t seconds of
        nothing more."""
        if shutil.which("socat") is None:
            self.skipTest("socat is not installed")
        p = subprocess.Popen(["socat", "-t", "0.5", "-", target],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            p.stdin.write(text)
            p.stdin.flush()
            got = b""
            while len(got) < len(text):
                r, _, _ = select.select([p.stdout], [], [], 30)
                data = os.read(p.stdout.fileno(), 65536) if r else b""
                if not data:
                    break
                got += data
            p.stdin.close()
            p.stdin = None  # communicate() then only reads
            rest, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, err)
        return got + rest

    def test_echo_socat(self):
        port = self.d.address("echo")[1]
        self.assertEqual(self.socat("UDP:127.0.0.1:%d" % port,
                                    b"via socat\n"), b"via socat\n")
        port = self.d.address("echo6")[1]
        self.assertEqual(self.socat("UDP6:[::1]:%d" % port, b"six\n"),
                         b"six\n")

    def test_daytime(self):
        before = time.time()
        text = self.call(self.d, "daytime", "what time is it?")
        after = time.time()
        self.assertTrue(text.endswith("\r\n"), text)
        parsed = time.strptime(text[:-2], "%a %b %d %H:%M:%S %Y")
        assert_time_between(self, time.mktime(parsed), before, after, text)

    def test_time(self):
        s = self.d.udp("time")
        before = time.time()
        data, _ = exchange(s, self.d.address("time"), b"")
        after = time.time()
        self.assertEqual(len(data), 4, data)
        (value,) = struct.unpack("!I", data)
        assert_time_between(self, value - EPOCH_1900, before, after)

    def test_chargen(self):
        s = self.d.udp("chargen")
        addr = self.d.address("chargen")
        replies = [exchange(s, addr, b"x")[0] for _ in range(50)]
        lengths = [len(r) for r in replies]
        self.assertTrue(all(0 <= n <= 512 for n in lengths), lengths)
        self.assertGreater(len(set(lengths)), 5, lengths)
        # Reply i starts one character further along the ring than reply
        # i - 1 (empty replies included); its lines are cut chargen lines.
        first = next(i for i, r in enumerate(replies) if r)
        start0 = (replies[first][0] - 32 - first) % 95
        for i, r in enumerate(replies):
            expect = b""
            start = start0 + i
            while len(expect) < len(r):
                expect += bytes(RING[(start + k) % 95] for k in range(72))
                expect += b"\r\n"
                start += 1
            self.assertEqual(r, expect[:len(r)], "reply %d" % i)

    def test_discard(self):
        s = self.d.udp("discard")
        self.assertTrue(no_reply(s, self.d.address("discard"), b"drop me"))
        # The silence is not a dead daemon.
        self.assertEqual(self.call(self.d, "echo", "alive"), "alive")

    def test_loop_protection(self):
        for service in ("echo", "chargen", "daytime", "time"):
            addr = self.d.address(service)
            for src in (7, 19):
                with self.subTest(service=service, source_port=src):
                    try:
                        s = udp_socket("127.0.0.1", bind_port=src)
                    except OSError as e:
                        self.skipTest("cannot bind port %d: %s" % (src, e))
                    with s:
                        self.assertTrue(no_reply(s, addr, b"loop?"),
                                        "%s answered port %d" % (service,
                                                                 src))
            # The same payload from an ephemeral port gets its answer.
            with udp_socket("127.0.0.1") as s:
                exchange(s, addr, b"loop?")

    def test_rate_limit(self):
        s = self.d.udp("limited")
        addr = self.d.address("limited")
        t0 = time.monotonic()
        for i in range(50):
            s.sendto(b"r%d" % i, addr)
        # A request from another source (a bucket of its own) queues
        # behind the 50: once it is answered, every answer to them is in.
        with udp_socket("127.0.0.2", bind_port=0) as other:
            self.assertEqual(exchange(other, addr, b"sync")[0], b"sync")
        span = time.monotonic() - t0
        got = 0
        s.settimeout(0)  # what is there, and no wait
        try:
            while True:
                s.recv(100)
                got += 1
        except BlockingIOError:
            pass
        # The burst of 5, plus what 5 per second refilled meanwhile (one
        # more for the edges): a slow machine's longer span is no failure.
        self.assertGreaterEqual(got, 5)
        self.assertLessEqual(got, 5 + int(5 * span) + 1,
                             "%d answers in %.2f s" % (got, span))
        # The bucket refills: the source is served again.
        self.assertEqual(retry_exchange(s, addr, b"again", total=30),
                         b"again")
        # Other listeners have buckets of their own.
        self.assertEqual(self.call(self.d, "echo", "unaffected"),
                         "unaffected")


if __name__ == "__main__":
    unittest.main(verbosity=2)
