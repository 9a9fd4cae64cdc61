"""Command line: -V, -h, -t with good and bad configurations, failed
starts.  Each bad config is written here line by line, so the expected
FILE:LINE of its error is known."""

import os
import re
import shutil
import socket
import tempfile
import unittest

from kstest import PLUGIN_BUILD_DIR, bad_output, plugin_so, run_ksockd

HEAD = [
    'daemon: {',                                        # 1
    '  plugin_dir = "%s";' % PLUGIN_BUILD_DIR,          # 2
    '  log_level = "debug";',                           # 3
    '};',                                               # 4
    'listeners = (',                                    # 5
]
FIRST_LISTENER = len(HEAD) + 1                          # 6


def listener(name, handler="hello", address="127.0.0.1", port=0, extra=""):
    """One listener entry on one line."""
    return ('  { name = "%s"; protocol = "tcp"; address = "%s"; port = %d; '
            'handler = "%s"; %s}' % (name, address, port, handler, extra))


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="kstest-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def run_ok(self, args, timeout=30):
        rc, out = run_ksockd(args, timeout=timeout)
        self.assertIsNone(bad_output(out), out)
        return rc, out

    def write(self, lines, name="ksockd.conf"):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def config(self, entries, name="ksockd.conf"):
        """HEAD, the listener lines joined by commas, the closing ");"."""
        body = [e + ("," if i + 1 < len(entries) else "")
                for i, e in enumerate(entries)]
        return self.write(HEAD + body + [");"], name)

    def assert_bad(self, path, line, pattern=None, start_too=True):
        """`ksockd -t` exits 1 naming PATH:LINE; so does a real start."""
        rc, out = self.run_ok(["-t", "-c", path])
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:%d: " % (path, line), out)
        if pattern is not None:
            self.assertRegex(out, pattern)
        self.assertNotIn("configuration OK", out)
        if start_too:
            rc, out2 = self.run_ok(["-f", "-c", path])
            self.assertEqual(rc, 1, out2)
            self.assertIn("%s:%d: " % (path, line), out2)
            self.assertNotRegex(out2, r"ready \(")
        return out

    # -- informational options --

    def test_version(self):
        rc, out = self.run_ok(["-V"])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out.strip(), r"^ksockd \d+\.\d+\.\d+\b")

    def test_help(self):
        rc, out = self.run_ok(["-h"])
        self.assertEqual(rc, 0, out)
        for opt in ("-c", "-f", "-t", "-V", "-h"):
            self.assertIn(opt, out)

    def test_bad_option(self):
        rc, out = self.run_ok(["-Q"])
        self.assertNotEqual(rc, 0, out)

    def test_missing_config_file(self):
        path = os.path.join(self.tmpdir, "nonexistent.conf")
        rc, out = self.run_ok(["-t", "-c", path])
        self.assertEqual(rc, 1, out)
        self.assertIn(path, out)

    # -- -t --

    def test_good_config(self):
        path = self.config([
            listener("a"),
            listener("b", handler="echo", address="::1"),
            '  { name = "u"; protocol = "unix"; address = "%s"; '
            'handler = "hello"; options = { greeting = "hi"; }; }' %
            os.path.join(self.tmpdir, "u.sock"),
        ])
        rc, out = self.run_ok(["-t", "-c", path])
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)
        self.assertIn(path, out)
        # -t binds nothing: the unix socket must not appear.
        self.assertFalse(os.path.exists(os.path.join(self.tmpdir, "u.sock")))

    def test_syntax_error(self):
        path = self.write(HEAD + [
            listener("a") + ",",                 # 6
            '  { name = "b"; port = = 5; }',     # 7
            ");",
        ])
        self.assert_bad(path, FIRST_LISTENER + 1)

    def test_unknown_key(self):
        path = self.config([listener("a"),
                            listener("b", extra="bogus_key = 1; ")])
        self.assert_bad(path, FIRST_LISTENER + 1, r"bogus_key")

    def test_unknown_daemon_key(self):
        lines = list(HEAD)
        lines.insert(3, '  no_such_setting = 5;')   # line 4
        lines.append(listener("a"))
        lines.append(");")
        path = self.write(lines)
        self.assert_bad(path, 4, r"no_such_setting")

    def test_wrong_type(self):
        path = self.write(HEAD + [
            '  { name = "a"; protocol = "tcp"; address = "127.0.0.1"; '
            'port = "80"; handler = "hello"; }',     # 6
            ");",
        ])
        self.assert_bad(path, FIRST_LISTENER, r"port")

    def test_out_of_range(self):
        path = self.config([listener("a", port=70000)])
        self.assert_bad(path, FIRST_LISTENER, r"port")

    def test_bad_protocol(self):
        path = self.config([listener("a").replace('"tcp"', '"sctp"')])
        self.assert_bad(path, FIRST_LISTENER, r"protocol|sctp")

    def test_duplicate_name(self):
        path = self.config([listener("a", address="127.0.0.1"),
                            listener("a", address="127.0.0.2")])
        self.assert_bad(path, FIRST_LISTENER + 1, r"(?i)duplicate|already")

    def test_duplicate_address(self):
        path = self.config([listener("a", port=47123),
                            listener("b", port=47123)])
        self.assert_bad(path, FIRST_LISTENER + 1)

    def test_missing_handler_key(self):
        path = self.config([
            listener("a"),
            '  { name = "b"; protocol = "tcp"; address = "127.0.0.1"; '
            'port = 0; }'])
        self.assert_bad(path, FIRST_LISTENER + 1, r"handler")

    def test_missing_handler_file(self):
        path = self.config([listener("a", handler="no_such_plugin")])
        self.assert_bad(path, FIRST_LISTENER, r"no_such_plugin")

    def test_not_a_shared_object(self):
        fake = os.path.join(self.tmpdir, "x.so")
        with open(fake, "w") as f:
            f.write("this is not an ELF file\n")
        path = self.config([listener("a"), listener("b", handler=fake)])
        self.assert_bad(path, FIRST_LISTENER + 1, re.escape(fake))

    def test_wrong_abi(self):
        path = self.config([listener("a", handler=plugin_so("wrongabi"))])
        self.assert_bad(path, FIRST_LISTENER, r"(?i)abi")

    def test_failing_init(self):
        path = self.config([listener("a"),
                            listener("b", handler=plugin_so("failinit"))])
        self.assert_bad(path, FIRST_LISTENER + 1, r"accept must be true")

    def test_failing_init_accepted(self):
        path = self.config([listener(
            "a", handler=plugin_so("failinit"),
            extra="options = { accept = true; }; ")])
        rc, out = self.run_ok(["-t", "-c", path])
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)

    def test_no_handle_hook(self):
        path = self.config([listener("a", handler=plugin_so("nohandle"))])
        self.assert_bad(path, FIRST_LISTENER)

    def test_plugin_option_error(self):
        path = self.config([listener(
            "a", extra='options = { greeting = 5; }; ')])
        self.assert_bad(path, FIRST_LISTENER, r"greeting")

    def test_all_errors_reported(self):
        path = self.config([
            listener("a", extra="bogus_one = 1; "),           # 6
            listener("b", handler="no_such_plugin"),          # 7
            listener("c", extra="bogus_two = 2; "),           # 8
        ])
        out = self.assert_bad(path, FIRST_LISTENER, start_too=False)
        self.assertIn("%s:%d: " % (path, FIRST_LISTENER + 1), out)
        self.assertIn("%s:%d: " % (path, FIRST_LISTENER + 2), out)

    # -- failed starts --

    def test_port_in_use(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        path = self.config([listener("busy", port=port)])
        rc, out = self.run_ok(["-t", "-c", path])
        self.assertEqual(rc, 0, out)  # -t does not bind
        rc, out = self.run_ok(["-f", "-c", path])
        self.assertEqual(rc, 1, out)
        self.assertIn("busy", out)
        self.assertIn(str(port), out)
        self.assertRegex(out, r"(?i)in use")
        self.assertNotRegex(out, r"ready \(")


if __name__ == "__main__":
    unittest.main(verbosity=2)
