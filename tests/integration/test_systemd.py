"""The systemd unit and sysusers entry: `systemd-analyze verify` on the
built unit (pointed at this build's daemon and a real config) and a dry run
of systemd-sysusers.  Both tools work offline, without a running systemd."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from kstest import BUILDDIR, KSOCKD, SRCDIR, Daemon, run_ksockd

UNIT = os.path.join(BUILDDIR, "systemd", "ksockd.service")
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
        env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_PAGER="",
                   SYSTEMD_COLORS="0")
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        about_unit = [l for l in out.splitlines() if "ksockd" in l]
        self.assertEqual(about_unit, [], out)
        self.assertEqual(p.returncode, 0, out)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
