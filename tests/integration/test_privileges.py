"""Privileges: started as root with daemon.user and daemon.group, the
master binds (a port below 1024 included) and the workers run as that
user and group, supplementary groups included; the master stays root, to
bind new ports and read root-only keys on a reload.  A unix listener's
socket file gets its mode, user and group."""

import grp
import os
import pwd
import socket
import stat
import unittest

from kstest import KsTestCase, ask, plugin_so, proc_status


def free_low_port():
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise unittest.SkipTest("no free port below 1024")


@unittest.skipIf(os.geteuid() != 0, "needs root")
class PrivilegesTest(KsTestCase):
    def setUp(self):
        super().setUp()
        self.nobody = pwd.getpwnam("nobody")
        self.group = grp.getgrgid(self.nobody.pw_gid)
        # The workers must reach the test plugin as nobody.
        os.chmod(self.tmpdir, 0o755)

    def test_workers_drop_to_the_user(self):
        port = free_low_port()
        d = self.start_daemon([
            {"name": "proc", "handler": plugin_so("proc"), "port": port},
            {"name": "sock", "protocol": "unix", "handler": "echo",
             "mode": "0660", "user": "nobody", "group": self.group.gr_name},
        ], user="nobody", group=self.group.gr_name)
        self.assertEqual(d.address("proc"), ("127.0.0.1", port))
        for pid in d.wait_workers(2):
            st = proc_status(pid)
            self.assertEqual(st["Uid"].split(), [str(self.nobody.pw_uid)] * 4)
            self.assertEqual(st["Gid"].split(), [str(self.group.gr_gid)] * 4)
            self.assertEqual(
                sorted(int(g) for g in st["Groups"].split()),
                sorted({self.group.gr_gid} |
                       {g.gr_gid for g in grp.getgrall()
                        if "nobody" in g.gr_mem}))
        # The master keeps root: it binds and reads keys on a reload.
        self.assertEqual(proc_status(d.proc.pid)["Uid"].split()[0], "0")
        # Served below 1024, by a worker that is nobody.
        s = d.connect("proc")
        self.assertEqual(ask(s, "ids"), "ids %d %d" % (self.nobody.pw_uid,
                                                       self.group.gr_gid))
        path = d.address("sock")
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual((st.st_uid, st.st_gid),
                         (self.nobody.pw_uid, self.group.gr_gid))
        u = d.connect("sock")
        self.assertEqual(ask(u, "unix"), "unix")

    def test_mode_and_owner_follow_a_reload(self):
        d = self.start_daemon([
            {"name": "sock", "protocol": "unix", "handler": "echo",
             "mode": "0600"}])
        path = d.address("sock")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        d.write_config([{"name": "sock", "protocol": "unix", "handler": "echo",
                         "mode": "0640", "group": self.group.gr_name}],
                       **d.daemon_settings)
        mark = d.mark()
        d.send_signal(1)
        d.wait_for_log(r"reloaded configuration", since=mark)
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        self.assertEqual(st.st_gid, self.group.gr_gid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
