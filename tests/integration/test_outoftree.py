"""A third-party plugin built against an installed ksockd: `make install
DESTDIR=...`, then cc with `pkg-config --cflags ksockd`, then the daemon
loads it by absolute path."""

import os
import shutil
import subprocess
import tempfile
import unittest

from kstest import BUILDDIR, KsTestCase

PLUGIN_SOURCE = r"""
#include <ksockd/plugin.h>

static int
hi_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	char *line;
	size_t len;
	int rc;

	while ((rc = ks_read_line(in, &line, &len)) == KS_OK) {
		ks_write_str(out, "Hi ");
		ks_write(out, line, len);
		ks_write_str(out, "\n");
	}
	return rc == KS_EOF ? 0 : rc;
}

KS_PLUGIN_DEFINE(.name = "hi", .version = "1", .handle = hi_handle);
"""


def clean_env(**extra):
    """The environment without make's jobserver and recursion variables,
    which `make check` leaves behind."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                        "DESTDIR")}
    env.update(extra)
    return env


def run(cmd, env=None, timeout=600):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env or clean_env(), timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


@unittest.skipIf(shutil.which("pkg-config") is None, "pkg-config missing")
class OutOfTreeTest(KsTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="kstest-install-")
        rc, out = run(["make", "-C", BUILDDIR, "install",
                       "DESTDIR=" + cls.dest])
        if rc != 0:
            shutil.rmtree(cls.dest, ignore_errors=True)
            raise AssertionError("make install failed:\n" + out[-5000:])
        pcs = []
        for root, _, files in os.walk(cls.dest):
            if "ksockd.pc" in files:
                pcs.append(os.path.join(root, "ksockd.pc"))
        if len(pcs) != 1:
            raise AssertionError("expected one installed ksockd.pc: %r" % pcs)
        cls.pcdir = os.path.dirname(pcs[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def pkg_config(self, *args):
        env = clean_env(PKG_CONFIG_PATH=self.pcdir,
                        PKG_CONFIG_LIBDIR=self.pcdir,
                        PKG_CONFIG_SYSROOT_DIR=self.dest)
        rc, out = run(["pkg-config"] + list(args) + ["ksockd"], env=env)
        self.assertEqual(rc, 0, out)
        return out.strip()

    def build_plugin(self):
        src = os.path.join(self.tmpdir, "hi.c")
        so = os.path.join(self.tmpdir, "hi.so")
        with open(src, "w") as f:
            f.write(PLUGIN_SOURCE)
        cflags = self.pkg_config("--cflags").split()
        cc = os.environ.get("CC_FOR_PLUGIN") or shutil.which("cc") or "gcc"
        rc, out = run([cc, "-shared", "-fPIC", "-std=gnu11", "-Wall",
                       "-Wextra", "-Werror", "-Wno-unused-parameter"] +
                      cflags + ["-o", so, src])
        self.assertEqual(rc, 0, out)
        return so

    def test_header_installed(self):
        cflags = self.pkg_config("--cflags")
        incdirs = [f[2:] for f in cflags.split() if f.startswith("-I")]
        self.assertTrue(any(os.path.isfile(os.path.join(
            d, "ksockd", "plugin.h")) for d in incdirs), cflags)
        self.assertTrue(all(d.startswith(self.dest) for d in incdirs),
                        "include path outside the install: " + cflags)

    def test_plugindir(self):
        plugindir = self.pkg_config("--variable=plugindir")
        # pkg-config may or may not put the sysroot in front of a variable.
        if not plugindir.startswith(self.dest):
            plugindir = self.dest + plugindir
        for name in ("hello", "echo", "discard", "chargen", "daytime",
                     "time"):
            self.assertTrue(os.path.isfile(
                os.path.join(plugindir, name + ".so")), plugindir)
        # ... and plugindir is the pkglibdir next to the .pc's libdir.
        libdir = self.pkg_config("--variable=libdir")
        if not libdir.startswith(self.dest):
            libdir = self.dest + libdir
        self.assertEqual(os.path.normpath(plugindir),
                         os.path.normpath(os.path.join(libdir, "ksockd")))

    def test_build_and_serve(self):
        so = self.build_plugin()
        d = self.start_daemon([{"name": "hi", "handler": so}])
        s = d.connect("hi")
        s.sendall(b"there\nyou\n")
        self.assertLine(s, b"Hi there")
        self.assertLine(s, b"Hi you")
        s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
