"""Nothing in a configuration file can take the daemon down.  Each hazard
that made libconfig 1.5 exit the process, block or read for ever, or
silently wrap a number, is sent in on SIGHUP while clients connect in a
loop: the daemon logs a clear FILE:LINE error, keeps its configuration,
refuses and drops nothing; `ksockd -t` reports the same errors."""

import os
import re
import signal
import unittest

from kstest import ConnectLoop, KsTestCase, ask, run_ksockd

INCLUDE_HAZARDS = [
    # (what to @include, how the error ends)
    ("dir", r'cannot include "{path}": is a directory, not a regular file'),
    ("fifo", r'cannot include "{path}": is a FIFO, not a regular file'),
    ("/dev/zero", r'cannot include "{path}": is a character device, not a '
                  r'regular file'),
]


class ConfigHazards(KsTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([{"name": "echo", "handler": "echo"}])
        self.good = open(self.d.conf_path).read()
        self.loop = ConnectLoop(self.d, "echo", threads=3).start()
        self.loop.wait_ok(20)

    def tearDown(self):
        ok, refused, failed = self.loop.stop()
        try:
            self.assertEqual(refused, 0)
            self.assertEqual(failed, [])
        finally:
            super().tearDown()

    def hazard(self, text, errors):
        """Writes text as the configuration, reloads, and checks that the
        reload failed with exactly `errors` (regexes matched against the
        lines after "FILE:LINE: " in order), that the daemon still serves
        the old configuration, and that -t says the same."""
        d = self.d
        d.write_config_text(text)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reload failed", since=mark, timeout=60)
        with d.cond:
            lines = d.lines[mark:]
        got = [m.group(1) for m in (re.search(r"(%s:\d+: .*)$" %
                                              re.escape(d.conf_path), l)
                                    for l in lines) if m]
        self.assertEqual(len(got), len(errors), "\n".join(lines))
        for line, rx in zip(got, errors):
            self.assertRegex(line, rx)
        self.assertTrue(d.running())
        self.loop.wait_ok(20)
        s = d.connect("echo")
        self.assertEqual(ask(s, "still"), "still")
        rc, out = run_ksockd(["-t", "-c", d.conf_path], timeout=60)
        self.assertEqual(rc, 1, out)
        checked = re.findall(r"^(%s:\d+: .*)$" % re.escape(d.conf_path), out,
                             re.M)
        self.assertEqual(checked, got, out)
        d.write_config_text(self.good)

    def with_include(self, path):
        return self.good.replace("listeners = (",
                                 '@include "%s"\nlisteners = (' % path, 1)

    def include_line(self):
        return self.good.splitlines().index("listeners = (") + 1

    def test_include_of_a_directory_fifo_or_device(self):
        # Absolute: a relative @include is relative to the working
        # directory, and `-t` runs elsewhere than the daemon.
        os.mkdir(os.path.join(self.d.tmpdir, "dir"))
        os.mkfifo(os.path.join(self.d.tmpdir, "fifo"))
        for name, err in INCLUDE_HAZARDS:
            path = os.path.join(self.d.tmpdir, name)
            self.hazard(self.with_include(path), [
                r":%d: %s$" % (self.include_line(),
                                err.format(path=re.escape(path)))])

    def test_integers_that_would_wrap(self):
        text = self.good.replace('handler = "echo";',
                                 'handler = "echo"; backlog = 4294967297;', 1)
        self.hazard(text, [r"integer 4294967297 does not fit in 32 bits "
                           r"\(libconfig would read it as 1\)"])
        text = self.good.replace('handler = "echo";',
                                 'handler = "echo"; backlog = 0x100000000;', 1)
        self.hazard(text, [r"integer 0x100000000 does not fit in 32 bits"])
        # In range for libconfig, out of range for the key: shown as is.
        text = self.good.replace('handler = "echo";',
                                 'handler = "echo"; backlog = 2147483647;', 1)
        self.hazard(text, [r"backlog 2147483647 out of range \(1\.\.65535\)"])

    def test_huge_strings(self):
        huge = "x" * (10 * 1024 * 1024)
        text = self.good.replace('handler = "echo";',
                                 'handler = "echo"; name2 = "%s";' % huge, 1)
        d = self.d
        d.write_config_text(text)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"%s: larger than 4 MiB" % re.escape(d.conf_path),
                       since=mark, timeout=60)
        d.wait_for_log(r"reload failed", since=mark, timeout=60)
        rc, out = run_ksockd(["-t", "-c", d.conf_path], timeout=60)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s: larger than 4 MiB" % d.conf_path, out)
        d.write_config_text(self.good)
        # Within the file's limit, a string longer than 64 KiB.
        long_ = "y" * (100 * 1024)
        self.hazard(self.good.replace(
            'handler = "echo";',
            'handler = "echo"; options = { s = "%s"; };' % long_, 1),
            [r"string of 102400 bytes|longer than 64 KiB"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
