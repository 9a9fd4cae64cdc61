"""The default TLS settings as clients see them: openssl s_client and
gnutls-cli against a real daemon.  Certificates come from tlscerts.py.

These tools are what the file is about, so a missing one fails it rather
than skipping it; scripts/dev.sh installs them all."""

import re
import shutil
import subprocess
import unittest

import tlscerts
from kstest import KsTestCase

TOOLS = ("openssl", "gnutls-cli", "certtool")
GREETING = b"Please enter your name"
C = None  # the certificate set


def setUpModule():
    global C
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise AssertionError("not installed: %s (scripts/dev.sh deps "
                             "installs them)" % ", ".join(missing))
    C = tlscerts.certs()


def tls_listener(name, cert=None, key=None, port=None, **tls):
    g = {"certificate": cert or C.rsa_cert, "key": key or C.rsa_key}
    g.update(tls)
    lst = {"name": name, "handler": "hello", "tls": g}
    if port is not None:
        lst["port"] = port
    return lst


def ec(name, **tls):
    return tls_listener(name, C.ec_cert, C.ec_key, **tls)


_CIPHER_RE = re.compile(r"(?m)^New, (\S+), Cipher is (\S+)$")


def s_client(d, name, *args, servername="localhost"):
    """openssl s_client through a handshake (stdin is empty, so it closes
    then).  Returns (exit status, stdout, (version, cipher)); the cipher
    is "(NONE)" when the handshake failed."""
    host, port = d.address(name)
    p = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:%d" % (host, port),
         "-servername", servername, "-CAfile", C.ca,
         "-verify_return_error"] + list(args),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    m = _CIPHER_RE.search(out)
    return p.returncode, out, m.groups() if m else (None, None)


def gnutls_cli(d, name, *args, hostname="localhost"):
    """gnutls-cli through the hello dialogue; returns (exit status, stdout,
    stderr) as text."""
    host, port = d.address(name)
    p = subprocess.run(
        ["gnutls-cli", "--x509cafile", C.ca, "-p", str(port)] + list(args) +
        [hostname], input=b"Alice\n", stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, timeout=60)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


class ScanCase(KsTestCase):
    def assertAccepts(self, d, name, cipher, *args):
        rc, out, got = s_client(d, name, *args)
        self.assertEqual(rc, 0, out)
        self.assertEqual(got[1], cipher, out)

    def assertRefuses(self, d, name, *args):
        rc, out, got = s_client(d, name, *args)
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(got[1], "(NONE)", out)
        return out

    def assertHello(self, d, name, *args, **kw):
        rc, out, err = gnutls_cli(d, name, *args, **kw)
        self.assertEqual(rc, 0, err)
        self.assertIn("Hello, Alice!", out)
        return out


class DefaultPriorityTest(ScanCase):
    """The default priority: TLS 1.2 and 1.3, AEAD suites, ECDHE."""

    def setUp(self):
        super().setUp()
        self.d = self.start_daemon([
            tls_listener("rsa"), ec("ec"),
            tls_listener("normal", priority="NORMAL:%SERVER_PRECEDENCE"),
        ])

    def test_cbc_only_clients_refused(self):
        # The LUCKY13 family (CBC with HMAC-SHA1/SHA2), each against the
        # certificate its suite needs, so that only the cipher is wrong.
        for name, suites in (
                ("ec", ["ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA",
                        "ECDHE-ECDSA-AES128-SHA256",
                        "ECDHE-ECDSA-AES256-SHA384"]),
                ("rsa", ["ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA",
                         "ECDHE-RSA-AES128-SHA256", "AES128-SHA",
                         "AES256-SHA256"])):
            for suite in suites:
                out = self.assertRefuses(self.d, name, "-tls1_2", "-cipher",
                                         suite)
                self.assertIn("handshake failure", out, suite)
        self.assertAccepts(self.d, "ec", "TLS_AES_256_GCM_SHA384")

    def test_gnutls_cli_cbc_refused(self):
        rc, out, err = gnutls_cli(
            self.d, "rsa", "--priority",
            "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-CBC:"
            "+AES-128-CBC:-MAC-ALL:+SHA1:+SHA256:+SHA384")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("Hello, Alice!", out)
        self.assertHello(self.d, "rsa")

    def test_non_ecdhe_and_ccm_refused(self):
        # RSA key transport, DHE, and the AEAD suites left out: AES-CCM.
        for name, args in (
                ("rsa", ("-tls1_2", "-cipher", "AES128-GCM-SHA256")),
                ("rsa", ("-tls1_2", "-cipher", "AES256-GCM-SHA384")),
                ("rsa", ("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")),
                ("rsa", ("-tls1_3", "-groups", "ffdhe2048:ffdhe3072")),
                ("ec", ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-CCM")),
                ("rsa", ("-tls1_3", "-ciphersuites",
                         "TLS_AES_128_CCM_SHA256"))):
            self.assertRefuses(self.d, name, *args)

    def test_aead_clients_accepted(self):
        for suite in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                      "TLS_AES_128_GCM_SHA256"):
            self.assertAccepts(self.d, "rsa", suite, "-tls1_3",
                               "-ciphersuites", suite)
        for name, kx in (("rsa", "ECDHE-RSA"), ("ec", "ECDHE-ECDSA")):
            for suite in ("AES256-GCM-SHA384", "CHACHA20-POLY1305",
                          "AES128-GCM-SHA256"):
                self.assertAccepts(self.d, name, kx + "-" + suite,
                                   "-tls1_2", "-cipher", kx + "-" + suite)

    def test_default_clients(self):
        # openssl's and GnuTLS's defaults, TLS 1.3 and 1.2.
        for name in ("rsa", "ec"):
            rc, out, got = s_client(self.d, name)
            self.assertEqual((rc, got[0]), (0, "TLSv1.3"), out)
            rc, out, got = s_client(self.d, name, "-tls1_2")
            self.assertEqual((rc, got[0]), (0, "TLSv1.2"), out)
            self.assertRegex(got[1], r"^ECDHE-(RSA|ECDSA)-.*(GCM|POLY1305)")
            for prio in ("NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"):
                out = self.assertHello(self.d, name, "--priority", prio)
                self.assertRegex(out, r"- Description: \((TLS1\.[23])-X\.509\)"
                                 r"-\(ECDHE-[^)]+\)-\([^)]+\)-\((AES-256-GCM|"
                                 r"CHACHA20-POLY1305|AES-128-GCM)\)")

    def test_server_order_wins(self):
        self.assertAccepts(self.d, "rsa", "ECDHE-RSA-AES256-GCM-SHA384",
                           "-tls1_2", "-cipher",
                           "ECDHE-RSA-AES128-GCM-SHA256:"
                           "ECDHE-RSA-AES256-GCM-SHA384")
        self.assertAccepts(self.d, "rsa", "TLS_AES_256_GCM_SHA384",
                           "-tls1_3", "-ciphersuites",
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")

    def test_old_versions_refused(self):
        # @SECLEVEL=0 lets this openssl speak TLS 1.0 and 1.1 at all: the
        # refusal is the server's.
        for version in ("-tls1", "-tls1_1"):
            out = self.assertRefuses(self.d, "rsa", version, "-cipher",
                                     "DEFAULT:@SECLEVEL=0")
            self.assertIn("protocol version", out, version)
        rc, out, err = gnutls_cli(
            self.d, "ec", "--priority",
            "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("Hello, Alice!", out)

    def test_priority_replaces_default(self):
        # A priority of one's own is used as it is: NORMAL's CBC suites.
        self.assertAccepts(self.d, "normal", "ECDHE-RSA-AES256-SHA",
                           "-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA")
        self.assertRefuses(self.d, "rsa", "-tls1_2", "-cipher",
                           "ECDHE-RSA-AES256-SHA")


if __name__ == "__main__":
    unittest.main(verbosity=2)
