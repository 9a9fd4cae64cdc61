"""The process model: a master and its worker processes.  How many there
are, that a worker blocked in a plugin delays nobody else's connections,
that a crashing worker is logged with what it ran, replaced, and loses
nothing but its own connections, and that repeated crashes back off."""

import os
import re
import select
import signal
import socket
import unittest

from kstest import (ConnectLoop, KsTestCase, ask, plugin_so, proc_status,
                    recv_line, recv_until_eof)


def proc_listener(**kw):
    l = {"name": "proc", "handler": plugin_so("proc")}
    l.update(kw)
    return l


def pid_of(sock):
    reply = ask(sock, "pid")
    m = re.match(r"pid (\d+)$", reply)
    if not m:
        raise AssertionError("not a pid: %r" % reply)
    return int(m.group(1))


def silent(sock):
    """Nothing to read on sock right now."""
    r, _, _ = select.select([sock], [], [], 0)
    return not r


class WorkersTest(KsTestCase):
    def blocked_worker(self, d):
        """A connection whose worker is blocked in the plugin until the
        returned file is created, and that worker's pid."""
        release = os.path.join(d.tmpdir, "release-%d" % len(d.clients))
        s = d.connect("proc")
        pid = pid_of(s)
        s.sendall(("block %s\n" % release).encode())
        d.wait_for_log(r"\[proc proc .*\] proc: blocking until %s" %
                       re.escape(release))
        return s, pid, release

    def test_worker_count(self):
        d = self.start_daemon([proc_listener()], workers=3)
        pids = d.wait_workers(3)
        for pid in pids:
            self.assertEqual(int(proc_status(pid)["PPid"]), d.proc.pid)
        d.wait_for_log(r"ready \(1 listeners, 3 workers\)")

    def test_default_is_one_per_cpu(self):
        d = self.start_daemon([proc_listener()], workers=0)
        n = len(os.sched_getaffinity(0))
        d.wait_workers(min(n, 128))
        d.wait_for_log(r"ready \(1 listeners, %d workers\)" % min(n, 128))

    def test_blocked_worker_delays_nobody(self):
        d = self.start_daemon([proc_listener()], workers=2)
        blocked, blocked_pid, release = self.blocked_worker(d)
        others = set()
        for _ in range(5):
            s = d.connect("proc")
            others.add(pid_of(s))
            self.assertEqual(ask(s, "hello"), "hello")
            s.close()
        # Every one was served by the other worker, while the first one
        # was still blocked: connections land on both.
        self.assertEqual(len(others), 1)
        self.assertNotIn(blocked_pid, others)
        self.assertTrue(silent(blocked), "the blocked worker answered")
        open(release, "w").close()
        self.assertEqual(recv_line(blocked), b"unblocked")
        self.assertEqual(ask(blocked, "after"), "after")

    def test_init_worker_runs_in_each_worker(self):
        d = self.start_daemon([proc_listener()], workers=2)
        a, pid_a, release = self.blocked_worker(d)
        b = d.connect("proc")
        pid_b = pid_of(b)
        self.assertNotEqual(pid_a, pid_b)
        self.assertEqual(ask(b, "init"), "init %d" % pid_b)
        open(release, "w").close()
        self.assertEqual(recv_line(a), b"unblocked")
        self.assertEqual(ask(a, "init"), "init %d" % pid_a)

    def test_crash_loses_only_that_workers_connections(self):
        d = self.start_daemon([proc_listener()], workers=2)
        d.crashes_expected = True
        # One connection on each worker.
        a, pid_a, release = self.blocked_worker(d)
        b = d.connect("proc")
        pid_b = pid_of(b)
        self.assertNotEqual(pid_a, pid_b)
        open(release, "w").close()
        self.assertEqual(recv_line(a), b"unblocked")

        loop = ConnectLoop(d, "proc", threads=4).start()
        loop.wait_ok(50)
        mark = d.mark()
        a.sendall(b"crash\n")
        d.wait_for_log(r"worker #\d of generation 1 \(pid %d\) killed by "
                       r"SIGSEGV at address 0x10 while running plugin proc "
                       r"\(listener proc\)" % pid_a, since=mark)
        # Its connection is gone; the other worker's goes on.
        self.assertEqual(recv_until_eof_or_reset(a), b"")
        self.assertEqual(ask(b, "still"), "still")
        self.assertEqual(pid_of(b), pid_b)
        # The worker count comes back.
        pids = d.wait_workers(2)
        self.assertIn(pid_b, pids)
        self.assertNotIn(pid_a, pids)
        loop.wait_ok(50)
        ok, refused, failed = loop.stop()
        self.assertEqual(refused, 0, "connection attempts refused")
        # Dialogues the crashed worker had accepted die with it; nothing
        # else may fail.
        self.assertLessEqual(len(failed), 4 * 2, failed)

    def test_abort_and_stack_overflow_are_named(self):
        d = self.start_daemon([proc_listener()], workers=1)
        d.crashes_expected = True
        pid, = d.wait_workers(1)
        mark = d.mark()
        d.connect("proc").sendall(b"abort\n")
        d.wait_for_log(r"\(pid %d\) killed by SIGABRT while running plugin "
                       r"proc \(listener proc\)" % pid, since=mark)
        pid, = d.wait_workers(1, exclude=[pid])
        mark = d.mark()
        d.connect("proc").sendall(b"overflow\n")
        d.wait_for_log(r"\(pid %d\) killed by SIGSEGV \(a stack overflow in "
                       r"a handler coroutine\) while running plugin proc "
                       r"\(listener proc\)" % pid, since=mark)
        d.wait_workers(1, exclude=[pid])

    def test_repeated_crashes_back_off(self):
        d = self.start_daemon([proc_listener()], workers=1)
        d.crashes_expected = True
        dead = []
        for expect in (r"starting a new worker #0",
                       r"worker #0 died 2 times in a row: starting it again "
                       r"in 1 s",
                       r"worker #0 died 3 times in a row: starting it again "
                       r"in 2 s"):
            pid, = d.wait_workers(1, exclude=dead)
            mark = d.mark()
            # While no worker runs, the connection waits in the backlog.
            d.connect("proc").sendall(b"crash\n")
            d.wait_for_log(r"\(pid %d\) killed by SIGSEGV" % pid, since=mark)
            d.wait_for_log(expect, since=mark)
            dead.append(pid)
        # And it comes back, serving.
        d.wait_workers(1, exclude=dead)
        s = d.connect("proc")
        self.assertEqual(ask(s, "back"), "back")

    def test_failing_init_worker_stops_the_start(self):
        d = self.start_daemon([proc_listener(
            options={"fail_init_worker": True})], wait_ready=False)
        d.crashes_expected = True
        self.assertEqual(d.wait(), 1)
        self.assertTrue(d.log_has(
            r"listener \"proc\": plugin proc: init_worker failed: refused "
            r"on request"), d.log_tail())
        self.assertTrue(d.log_has(r"exited with status 4 \(a plugin's "
                                  r"init_worker failed\)"))


def recv_until_eof_or_reset(s):
    try:
        return recv_until_eof(s)
    except ConnectionResetError:
        return b""


if __name__ == "__main__":
    unittest.main(verbosity=2)
