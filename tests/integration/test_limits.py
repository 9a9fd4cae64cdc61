"""Resource exhaustion: the daemon runs out of file descriptors while
clients keep connecting.  It must log the condition (rate-limited), pause
accepting instead of spinning, keep serving the connections it has, and
accept the waiting clients once descriptors are free again."""

import os
import resource
import socket
import time
import unittest

import kstest


class FdExhaustion(kstest.KsTestCase):
    def test_emfile_pauses_and_recovers(self):
        # One worker: the point is what a process does when it runs out
        # (with two, the other would simply take the connections).
        d = self.start_daemon([{"name": "hello", "handler": "hello"}],
                              workers=1)
        pid, = d.wait_workers(1)
        in_use = len(os.listdir("/proc/%d/fd" % pid))
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Room for exactly 5 more descriptors in the daemon.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 5, hard))

        # (accept() fails with EMFILE as soon as no descriptor is free,
        # even with nobody waiting: the message may come with the 5th.)
        mark = d.mark()
        served = []
        for _ in range(5):
            s = d.connect("hello")
            self.assertLine(s, "Please enter your name")
            served.append(s)
        t0 = time.monotonic()
        # These queue in the kernel's backlog: accept() fails with EMFILE.
        waiting = [d.connect("hello") for _ in range(10)]
        d.wait_for_log(r"accept: Too many open files: every listener of "
                       r"this worker pauses", since=mark)

        # The connections it already has keep working meanwhile.
        served[0].sendall(b"still here\n")
        self.assertLine(served[0], "Hello, still here!")
        # A second of exhaustion is about ten looks for free descriptors
        # (the daemon looks every 0.1 s).  The wait is the subject.
        time.sleep(1.0)

        # Free descriptors: the queued clients get served.
        for s in served:
            s.shutdown(socket.SHUT_WR)
            self.assertEOF(s)
            s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 64, hard))
        exhausted = time.monotonic() - t0
        for s in waiting:
            self.assertLine(s, "Please enter your name")
            s.sendall(b"late\n")
            self.assertLine(s, "Hello, late!")
        # One message per 5 s window (one window more for the edges), not
        # one per failed accept().  The bound follows how long the
        # exhaustion lasted, so a slow machine's longer one is no failure.
        allowed = int(exhausted // 5.0) + 2
        self.assertLessEqual(
            sum("every listener of this worker pauses" in l
                for l in d.lines[mark:]), allowed,
            "%.1f s of exhaustion" % exhausted)


if __name__ == "__main__":
    unittest.main()
