"""In-place binary upgrade (SIGUSR2): the master re-executes the binary at
the path it was started from, keeps its PID and its listening sockets,
starts the new binary's workers and retires the old ones; nothing is
refused and established connections survive.  A broken new binary, or
one that cannot start its configuration, leaves the old one serving."""

import os
import shutil
import signal
import socket
import unittest

from kstest import KSOCKD, ConnectLoop, KsTestCase, ask, free_port


def replace_file(path, src=None, text=None):
    """Puts a new file at path the way a package upgrade does: written
    aside, then renamed over (a new inode; the running one stays)."""
    tmp = path + ".new"
    if src is not None:
        shutil.copy(src, tmp)
    else:
        with open(tmp, "wb") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return os.stat(path).st_ino


class UpgradeTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.bin = os.path.join(self.tmpdir, "bin", "ksockd")
        os.mkdir(os.path.dirname(self.bin))
        shutil.copy(KSOCKD, self.bin)
        self.first_ino = os.stat(self.bin).st_ino

    def start(self, listeners=None, **kw):
        return self.start_daemon(listeners or [
            {"name": "echo", "handler": "echo"}], binary=self.bin, **kw)

    def exe_ino(self, d):
        return os.stat("/proc/%d/exe" % d.proc.pid).st_ino

    def test_upgrade_under_load(self):
        d = self.start()
        old_workers = d.wait_workers(2)
        dialogue = d.connect("echo")
        self.assertEqual(ask(dialogue, "before"), "before")
        loop = ConnectLoop(d, "echo", threads=4).start()
        loop.wait_ok(100)
        new_ino = replace_file(self.bin, src=KSOCKD)
        mark = d.mark()
        d.send_signal(signal.SIGUSR2)
        d.wait_for_log(r"upgraded to %s \(pid %d\)" % (self.bin, d.proc.pid),
                       since=mark)
        # The same process, now running the new file.
        self.assertTrue(d.running())
        self.assertEqual(self.exe_ino(d), new_ino)
        self.assertEqual(os.readlink("/proc/%d/exe" % d.proc.pid), self.bin)
        loop.wait_ok(100)
        # The established dialogue is still served by its old worker.
        self.assertEqual(ask(dialogue, "after"), "after")
        dialogue.close()
        # Then the old workers are gone, the new ones serve.
        new_workers = d.wait_workers(2, exclude=old_workers)
        self.assertFalse(set(new_workers) & set(old_workers))
        loop.wait_ok(50)
        ok, refused, failed = loop.stop()
        self.assertEqual(refused, 0)
        self.assertEqual(failed, [])
        # And a second upgrade works from the new image too.
        mark = d.mark()
        replace_file(self.bin, src=KSOCKD)
        d.send_signal(signal.SIGUSR2)
        d.wait_for_log(r"upgraded to", since=mark)
        s = d.connect("echo")
        self.assertEqual(ask(s, "third"), "third")

    def test_broken_binary_leaves_the_old_one_serving(self):
        d = self.start()
        dialogue = d.connect("echo")
        self.assertEqual(ask(dialogue, "before"), "before")
        for text, why in ((b"#!/bin/sh\nexit 3\n", r"failed \(status 3\)"),
                          (b"\x7fELF not really", r"failed \(status 127\)")):
            replace_file(self.bin, text=text)
            mark = d.mark()
            d.send_signal(signal.SIGUSR2)
            d.wait_for_log(r"upgrade aborted: .*%s" % why, since=mark)
            self.assertEqual(self.exe_ino(d), self.first_ino)
            s = d.connect("echo")
            self.assertEqual(ask(s, "still"), "still")
        self.assertEqual(ask(dialogue, "after"), "after")

    def test_failed_start_goes_back_to_the_old_binary(self):
        # The new image's configuration adds a listener whose port is
        # taken: `-t` cannot know, the start fails after the exec.
        d = self.start()
        dialogue = d.connect("echo")
        self.assertEqual(ask(dialogue, "before"), "before")
        loop = ConnectLoop(d, "echo", threads=2).start()
        loop.wait_ok(20)
        port = free_port()
        holder = socket.socket()
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        d.write_config(d.listeners + [{"name": "new", "handler": "echo",
                                       "port": port}], **d.daemon_settings)
        replace_file(self.bin, src=KSOCKD)
        mark = d.mark()
        d.send_signal(signal.SIGUSR2)
        d.wait_for_log(r"upgrade failed: .*: going back to the previous "
                       r"binary", since=mark)
        d.wait_for_log(r"the upgrade failed .*: back on the previous binary",
                       since=mark)
        d.wait_for_log(r"the 2 worker\(s\) from before keep serving",
                       since=mark)
        self.assertTrue(d.running())
        self.assertEqual(self.exe_ino(d), self.first_ino)
        loop.wait_ok(20)
        self.assertEqual(ask(dialogue, "during"), "during")
        # Once the port is free, a reload brings the new configuration.
        holder.close()
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reloaded configuration \(2 listeners", since=mark)
        d.parse_addresses(since=mark)
        s = d.connect("new")
        self.assertEqual(ask(s, "new"), "new")
        loop.wait_ok(20)
        ok, refused, failed = loop.stop()
        self.assertEqual(refused, 0)
        self.assertEqual(failed, [])
        self.assertEqual(ask(dialogue, "after"), "after")


if __name__ == "__main__":
    unittest.main(verbosity=2)
