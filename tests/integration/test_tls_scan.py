"""The default TLS settings as clients and a scanner see them, and OCSP
stapling (`ocsp_response`): openssl s_client, gnutls-cli and testssl
(Debian's testssl.sh) against a real daemon.  Certificates come from
tlscerts.py, OCSP responses from `openssl ocsp` acting as the test CA's
responder.

These tools are what the file is about, so a missing one fails it rather
than skipping it; scripts/dev.sh installs them all."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import tlscerts
from kstest import KSOCKD, Daemon, KsTestCase, Raw, free_port

TOOLS = ("openssl", "gnutls-cli", "certtool", "testssl")
GREETING = b"Please enter your name"
# ksockd's default priority before the AEAD-only one: GnuTLS's NORMAL set
# less TLS 1.0 and 1.1, CBC suites included.
OLD_DEFAULT = "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:%SERVER_PRECEDENCE"
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


class OcspTest(ScanCase):
    def setUp(self):
        super().setUp()
        r = os.path.join(self.tmpdir, "ocsp")
        os.mkdir(r)
        self.rsa1 = tlscerts.ocsp_response(C.rsa_cert,
                                           os.path.join(r, "rsa1.der"))
        self.rsa2 = tlscerts.ocsp_response(C.rsa_cert,
                                           os.path.join(r, "rsa2.der"),
                                           days=30)
        self.ec = tlscerts.ocsp_response(C.ec_cert, os.path.join(r, "ec.der"))
        self.b = tlscerts.ocsp_response(C.b_cert, os.path.join(r, "b.der"))
        # The file the "staple" listener reads, renewed by the reload test.
        self.live = os.path.join(r, "live.der")
        shutil.copy(self.rsa1, self.live)
        self.d = self.start_daemon([
            tls_listener("staple", ocsp_response=self.live,
                         port=free_port()),
            tls_listener("none"),
            tls_listener("dual", cert=[C.rsa_cert, C.ec_cert],
                         key=[C.rsa_key, C.ec_key],
                         ocsp_response=["", self.ec],
                         sni=[{"name": "b.example", "certificate": C.b_cert,
                               "key": C.b_key, "ocsp_response": self.b}]),
        ])

    def staple(self, name, *args, hostname="localhost"):
        """The OCSP response gnutls-cli received (b"" for none)."""
        with tempfile.NamedTemporaryFile(dir=self.tmpdir) as f:
            out = self.assertHello(self.d, name, "--save-ocsp", f.name,
                                   *args, hostname=hostname)
            got = f.read()
        # gnutls-cli lists the OCSP status among the session's options
        # when a response came (and checked it against the CA).
        self.assertEqual("OCSP status request" in out, got != b"", out)
        return got

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_openssl_status(self):
        for version in ("-tls1_2", "-tls1_3"):
            rc, out, got = s_client(self.d, "staple", "-status", version)
            self.assertEqual(rc, 0, out)
            self.assertIn("OCSP Response Status: successful", out)
            self.assertIn("Cert Status: good", out)
            rc, out, got = s_client(self.d, "none", "-status", version)
            self.assertEqual(rc, 0, out)
            self.assertIn("OCSP response: no response sent", out)
            self.assertNotIn("OCSP Response Status", out)

    def test_gnutls_cli_status(self):
        for prio in ("NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"):
            self.assertEqual(self.staple("staple", "--priority", prio),
                             self.read(self.rsa1), prio)
            self.assertEqual(self.staple("none", "--priority", prio), b"",
                             prio)

    def test_paired_by_position(self):
        # ["", ec]: the ECDSA certificate's response, none for the RSA one.
        tls12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:"
        self.assertEqual(self.staple("dual", "--priority",
                                     tls12 + "+ECDHE-ECDSA"),
                         self.read(self.ec))
        self.assertEqual(self.staple("dual", "--priority",
                                     tls12 + "+ECDHE-RSA"), b"")

    def test_sni_entry(self):
        got = self.staple("dual", "--sni-hostname", "b.example",
                          "--verify-hostname", "b.example")
        self.assertEqual(got, self.read(self.b))

    def test_reload_serves_new_response(self):
        self.assertEqual(self.staple("staple"), self.read(self.rsa1))
        # A renewed file: the next generation staples it.
        shutil.copy(self.rsa2, self.live + ".new")
        os.replace(self.live + ".new", self.live)
        mark = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        self.d.wait_for_log(r"reloaded configuration", since=mark)
        self.d.parse_addresses(since=mark)
        self.assertEqual(self.staple("staple"), self.read(self.rsa2))
        rc, out, got = s_client(self.d, "staple", "-status")
        self.assertIn("OCSP Response Status: successful", out)
        # One that is not for the certificate fails the reload, and the
        # running generation keeps its response.
        shutil.copy(self.ec, self.live + ".new")
        os.replace(self.live + ".new", self.live)
        mark = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        self.d.wait_for_log(r"reload failed", since=mark)
        self.assertTrue(self.d.log_has(re.escape(self.live), since=mark))
        self.assertEqual(self.staple("staple"), self.read(self.rsa2))


class OcspConfigTest(KsTestCase):
    """ksockd -t: a bad ocsp_response exits 1 naming the file."""

    def check(self, tls, *fragments, rc=1, cwd=None):
        d = Daemon([{"name": "t", "handler": "hello", "tls": tls}],
                   tmpdir=tempfile.mkdtemp(dir=self.tmpdir))
        try:
            p = subprocess.run([KSOCKD, "-t", "-c", d.conf_path], cwd=cwd,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, rc, out)
            if rc != 0:
                self.assertRegex(out, r"(?m)^%s:\d+: listener \"t\": tls" %
                                 re.escape(d.conf_path))
            for frag in fragments:
                self.assertIn(frag, out)
            return out
        finally:
            d.cleanup()

    def response(self, cert, name, **kw):
        return tlscerts.ocsp_response(cert, os.path.join(self.tmpdir, name),
                                      **kw)

    def tls(self, ocsp, **more):
        g = {"certificate": C.rsa_cert, "key": C.rsa_key,
             "ocsp_response": ocsp}
        g.update(more)
        return g

    def test_missing_file(self):
        missing = os.path.join(self.tmpdir, "nope.der")
        self.check(self.tls(missing), "ocsp_response %s: No such file" %
                   missing)

    def test_unreadable(self):
        self.check(self.tls(self.tmpdir), "ocsp_response %s: Is a directory"
                   % self.tmpdir)

    def test_not_der(self):
        junk = os.path.join(self.tmpdir, "junk.der")
        with open(junk, "w") as f:
            f.write("not an OCSP response\n")
        self.check(self.tls(junk), "ocsp_response %s for certificate %s: "
                   % (junk, C.rsa_cert))

    def test_for_another_certificate(self):
        other = self.response(C.b_cert, "b.der")
        self.check(self.tls(other), "ocsp_response %s for certificate %s: "
                   "it is not for this certificate" % (other, C.rsa_cert))
        # Paired by position: the ECDSA certificate's response given for
        # the RSA one.
        ecr = self.response(C.ec_cert, "ec.der")
        self.check({"certificate": [C.rsa_cert, C.ec_cert],
                    "key": [C.rsa_key, C.ec_key],
                    "ocsp_response": [ecr, ""]},
                   "ocsp_response %s for certificate %s: it is not for this "
                   "certificate" % (ecr, C.rsa_cert))

    def test_revoked(self):
        # GnuTLS takes only a response it could staple: not a revoked
        # certificate's (nor, the same check, an expired one).
        revoked = self.response(C.rsa_cert, "revoked.der", revoked=True)
        self.check(self.tls(revoked), "ocsp_response %s for certificate %s: "
                   "it has expired" % (revoked, C.rsa_cert))

    def test_sni_entry(self):
        other = self.response(C.rsa_cert, "rsa.der")
        sni = [{"name": "b.example", "certificate": C.b_cert,
                "key": C.b_key, "ocsp_response": other}]
        self.check(self.tls(other, sni=sni),
                   "ocsp_response %s for certificate %s: it is not for "
                   "this certificate" % (other, C.b_cert))
        sni[0]["ocsp_response"] = ""
        self.check(self.tls(other, sni=sni),
                   "sni #1: ocsp_response must not be empty")

    def test_shape(self):
        r = self.response(C.rsa_cert, "rsa.der")
        pair = "ocsp_response and certificate must be both strings or " \
            "lists of the same length"
        self.check(self.tls([r]), pair)
        self.check(self.tls(r, certificate=[C.rsa_cert, C.ec_cert],
                            key=[C.rsa_key, C.ec_key]), pair)
        self.check(self.tls([r], certificate=[C.rsa_cert, C.ec_cert],
                            key=[C.rsa_key, C.ec_key]), pair)
        self.check(self.tls(Raw('( "%s", 1 )' % r),
                            certificate=[C.rsa_cert, C.ec_cert],
                            key=[C.rsa_key, C.ec_key]),
                   "ocsp_response #2 must be a string")
        self.check(self.tls(7), "ocsp_response must be a string or a list "
                   "of strings")
        self.check(self.tls(""), "ocsp_response must not be empty")

    def test_relative_paths_from_config_dir(self):
        tmp = tempfile.mkdtemp(dir=self.tmpdir)
        os.mkdir(os.path.join(tmp, "tls"))
        self.response(C.rsa_cert, os.path.join(tmp, "tls", "rsa.der"))
        self.response(C.b_cert, os.path.join(tmp, "tls", "b.der"))
        d = Daemon([{"name": "t", "handler": "hello",
                     "tls": {"certificate": [C.rsa_cert, C.ec_cert],
                             "key": [C.rsa_key, C.ec_key],
                             "ocsp_response": ["tls/rsa.der", ""],
                             "sni": [{"name": "b.example",
                                      "certificate": C.b_cert,
                                      "key": C.b_key,
                                      "ocsp_response": "tls/b.der"}]}}],
                   tmpdir=tmp)
        try:
            p = subprocess.run([KSOCKD, "-t", "-c", d.conf_path], cwd="/",
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout)
        finally:
            d.cleanup()


class TestsslTest(ScanCase):
    """testssl on the checks the issue is about: LUCKY13 (-L) and the
    server defaults (-S), where OCSP stapling is reported per certificate.
    --nodns none: the target is an address and there is no network."""

    def setUp(self):
        super().setUp()
        self.resp = tlscerts.ocsp_response(
            C.rsa_cert, os.path.join(self.tmpdir, "rsa.der"))
        self.d = self.start_daemon([
            tls_listener("default", cert=[C.rsa_cert, C.ec_cert],
                         key=[C.rsa_key, C.ec_key],
                         ocsp_response=[self.resp, ""]),
            tls_listener("old", priority=OLD_DEFAULT),
        ])

    def run_testssl(self, name, *checks):
        """The findings of a testssl run, {id: finding dict}."""
        host, port = self.d.address(name)
        out = os.path.join(self.tmpdir, "%s.json" % name)
        p = subprocess.run(
            ["testssl", "--quiet", "--color", "0", "--warnings", "off",
             "--nodns", "none", "--openssl", shutil.which("openssl"),
             "--jsonfile", out] + list(checks) + ["%s:%d" % (host, port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=self.tmpdir, timeout=600)
        text = p.stdout.decode("utf-8", "replace")
        with open(out) as f:
            findings = {x["id"]: x for x in json.load(f)}
        self.assertIn("scanTime", findings, text)  # it ran to the end
        # The exit status counts the checks that could not be done, each
        # a WARN finding.  Allowed: this openssl has no GOST engine, and
        # the session resumption checks of -S race their own s_client
        # (stdin is empty, it may leave before the TLS 1.3 ticket comes).
        warned = {k for k, x in findings.items()
                  if x["severity"] in ("WARN", "FATAL")}
        self.assertLessEqual(warned, {"engine_problem",
                                      "sessionresumption_ticket",
                                      "sessionresumption_ID"}, text)
        return findings, text

    def test_default_listener(self):
        f, text = self.run_testssl("default", "-L", "-S")
        self.assertEqual(f["LUCKY13"]["severity"], "OK", text)
        self.assertEqual(f["LUCKY13"]["finding"], "not vulnerable", text)
        # Per certificate: offered for the RSA one, which has a response.
        stapling = {}
        for i in (1, 2):
            size = f["cert_keySize <cert#%d>" % i]["finding"]
            stapling[size.split()[0]] = \
                f["OCSP_stapling <cert#%d>" % i]["finding"]
        self.assertEqual(stapling, {"RSA": "offered", "EC": "not offered"},
                         text)

    def test_old_default_flagged(self):
        # The check works: NORMAL's CBC suites are what it reports.
        f, text = self.run_testssl("old", "-L")
        self.assertEqual(f["LUCKY13"]["finding"],
                         "potentially vulnerable, uses TLS CBC ciphers", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
