"""Test certificates for the TLS tests, made with certtool (gnutls-bin) at
test time into a temporary directory, once per test process.

    import tlscerts
    c = tlscerts.certs()      # raises unittest.SkipTest without certtool
    c.ca                      # PEM of the CA that signs the server certs
    c.rsa_cert, c.rsa_key     # "localhost", RSA-2048
    c.ec_cert, c.ec_key       # "localhost", ECDSA P-256
    c.b_cert, c.b_key         # "b.example" (for SNI)
    c.expired_cert, c.expired_key
    c.wrong_cert, c.wrong_key # "wrong.example"
    c.client_ca               # the CA for client certificates (ECDSA)
    c.client_cert, c.client_key         # signed by client_ca
    c.untrusted_cert, c.untrusted_key   # self-signed client cert
    c.spare_key               # an RSA key that matches no certificate

Every "localhost" server certificate carries SAN DNS:localhost and
IP:127.0.0.1.  All values are absolute file paths.

    tlscerts.ocsp_response(c.rsa_cert, path, days=7)

writes an OCSP response (DER) for one of the CA's certificates to path, made
with `openssl ocsp` acting as the CA's own responder.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import unittest

CERTTOOL = shutil.which("certtool")
OPENSSL = shutil.which("openssl")

CLIENT_SUBJECT_CN = "kstest client"

_cache = None


class Certs:
    pass


def _run(args, path=None):
    p = subprocess.run([CERTTOOL] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError("certtool %s failed (%d): %s" % (
            " ".join(args), p.returncode,
            p.stderr.decode("utf-8", "replace")))
    if path is not None:
        with open(path, "wb") as f:
            f.write(p.stdout)
    return p.stdout


def _key(d, name, kind):
    path = os.path.join(d, name + ".key")
    if kind == "rsa":
        args = ["--key-type", "rsa", "--bits", "2048"]
    else:
        args = ["--key-type", "ecdsa", "--curve", "secp256r1"]
    _run(["--generate-privkey", "--no-text"] + args + ["--outfile", path])
    return path


def _template(d, name, lines):
    path = os.path.join(d, name + ".tmpl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


_serial = [100]


def _cert(d, name, key, lines, ca=None, ca_key=None):
    """A certificate for key: self-signed without ca, else signed by it."""
    _serial[0] += 1
    tmpl = _template(d, name, ["serial = %d" % _serial[0]] + lines)
    path = os.path.join(d, name + ".pem")
    if ca is None:
        args = ["--generate-self-signed"]
    else:
        args = ["--generate-certificate", "--load-ca-certificate", ca,
                "--load-ca-privkey", ca_key]
    _run(args + ["--load-privkey", key, "--template", tmpl, "--no-text",
                 "--outfile", path])
    return path


def _server_lines(cn, hosts=("localhost",), ips=("127.0.0.1",), days=3650):
    lines = ['cn = "%s"' % cn, 'organization = "ksockd tests"']
    lines += ['dns_name = "%s"' % h for h in hosts]
    lines += ['ip_address = "%s"' % ip for ip in ips]
    lines += ["tls_www_server", "signing_key", "encryption_key"]
    if days is not None:
        lines.append("expiration_days = %d" % days)
    return lines


def _ca_lines(cn):
    return ['cn = "%s"' % cn, 'organization = "ksockd tests"', "ca",
            "cert_signing_key", "crl_signing_key", "expiration_days = 3650"]


def generate(d):
    """Writes the whole set into directory d; returns a Certs."""
    c = Certs()
    c.dir = d
    ca_key = _key(d, "ca", "rsa")
    c.ca = _cert(d, "ca", ca_key, _ca_lines("kstest CA"))
    c.ca_key = ca_key

    c.rsa_key = _key(d, "server-rsa", "rsa")
    c.rsa_cert = _cert(d, "server-rsa", c.rsa_key,
                       _server_lines("localhost"), c.ca, ca_key)
    c.ec_key = _key(d, "server-ec", "ecdsa")
    c.ec_cert = _cert(d, "server-ec", c.ec_key,
                      _server_lines("localhost"), c.ca, ca_key)
    c.b_key = _key(d, "server-b", "ecdsa")
    c.b_cert = _cert(d, "server-b", c.b_key,
                     _server_lines("b.example", hosts=("b.example",),
                                   ips=()), c.ca, ca_key)
    c.wrong_key = _key(d, "server-wrong", "ecdsa")
    c.wrong_cert = _cert(d, "server-wrong", c.wrong_key,
                         _server_lines("wrong.example",
                                       hosts=("wrong.example",), ips=()),
                         c.ca, ca_key)
    c.expired_key = _key(d, "server-expired", "ecdsa")
    c.expired_cert = _cert(
        d, "server-expired", c.expired_key,
        _server_lines("localhost", days=None) +
        ['activation_date = "2020-01-01 00:00:00 UTC"',
         'expiration_date = "2021-01-01 00:00:00 UTC"'], c.ca, ca_key)

    c.client_ca_key = _key(d, "client-ca", "ecdsa")
    c.client_ca = _cert(d, "client-ca", c.client_ca_key,
                        _ca_lines("kstest client CA"))
    client_lines = ['cn = "%s"' % CLIENT_SUBJECT_CN,
                    'organization = "ksockd tests"', "tls_www_client",
                    "signing_key", "expiration_days = 3650"]
    c.client_key = _key(d, "client", "ecdsa")
    c.client_cert = _cert(d, "client", c.client_key, client_lines,
                          c.client_ca, c.client_ca_key)
    c.untrusted_key = _key(d, "client-untrusted", "ecdsa")
    c.untrusted_cert = _cert(d, "client-untrusted", c.untrusted_key,
                             client_lines)

    c.spare_key = _key(d, "spare", "rsa")
    return c


def _openssl(args):
    if OPENSSL is None:
        raise unittest.SkipTest("openssl is not installed")
    p = subprocess.run([OPENSSL] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (
            " ".join(args), p.returncode,
            p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode()


_ocsp_count = [0]


def ocsp_response(cert, path, days=7, revoked=False):
    """Writes to path the DER OCSP response for cert, a certificate of the
    set signed by its CA, that the CA gives as its own responder (`openssl
    ocsp` with an index.txt): status good (or revoked), valid for `days`
    days from now.  Returns path."""
    c = certs()
    _ocsp_count[0] += 1
    d = os.path.join(c.dir, "ocsp%d" % _ocsp_count[0])
    os.mkdir(d)
    serial = _openssl(["x509", "-in", cert, "-noout", "-serial"])
    serial = serial.strip().split("=", 1)[1]
    # V(alid) or R(evoked), expiry, revocation time, serial, file, subject
    # (only the serial and the status matter to `openssl ocsp`).
    entry = ["R", "491231235959Z", "240101000000Z"] if revoked else \
        ["V", "491231235959Z", ""]
    index = os.path.join(d, "index.txt")
    with open(index, "w") as f:
        f.write("\t".join(entry + [serial, "unknown", "/CN=test"]) + "\n")
    req = os.path.join(d, "req.der")
    _openssl(["ocsp", "-issuer", c.ca, "-cert", cert, "-no_nonce",
              "-reqout", req])
    _openssl(["ocsp", "-index", index, "-rsigner", c.ca, "-rkey", c.ca_key,
              "-CA", c.ca, "-reqin", req, "-respout", path,
              "-ndays", str(days)])
    return path


def server_cert(name, days):
    """A "localhost" certificate of the set's CA (ECDSA) that expires in
    `days` days: (cert, key)."""
    c = certs()
    key = _key(c.dir, name, "ecdsa")
    return _cert(c.dir, name, key, _server_lines("localhost", days=days),
                 c.ca, c.ca_key), key


def certs():
    """The certificate set of this process (generated on first use)."""
    global _cache
    if _cache is not None:
        return _cache
    if CERTTOOL is None:
        raise unittest.SkipTest("certtool (gnutls-bin) is not installed")
    d = tempfile.mkdtemp(prefix="kstest-certs-")
    atexit.register(shutil.rmtree, d, True)
    _cache = generate(d)
    return _cache


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.makedirs(out, exist_ok=True)
    c = generate(out)
    for k, v in sorted(vars(c).items()):
        print("%-16s %s" % (k, v))
