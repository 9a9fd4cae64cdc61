"""Integration-test harness for ksockd (python3 standard library only).

Every test_*.py imports this.  `make check` runs each file with python3 and
sets these variables (AM_TESTS_ENVIRONMENT); run by hand, they default to
an in-tree build next to this file:

  KSOCKD               the daemon binary
  KS_PLUGIN_BUILD_DIR  the bundled plugins (plugins/.libs)
  KS_TEST_PLUGIN_DIR   the test plugins (tests/plugins/.libs)
  KS_SRCDIR, KS_BUILDDIR

A Daemon writes a config into a temporary directory, starts `ksockd -f -c`,
captures its log through a reader thread and learns the listening addresses
from the log.  Waiting is event-driven: the reader thread notifies a
Condition per log line; data waits are socket timeouts.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("KS_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("KS_BUILDDIR") or SRCDIR
KSOCKD = os.environ.get("KSOCKD") or os.path.join(BUILDDIR, "ksockd")
PLUGIN_BUILD_DIR = os.environ.get("KS_PLUGIN_BUILD_DIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
TEST_PLUGIN_DIR = os.environ.get("KS_TEST_PLUGIN_DIR") or os.path.join(
    BUILDDIR, "tests", "plugins", ".libs")

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
SOCK_TIMEOUT = 10.0

# Anything of these in a daemon's output fails the test that ran it.
BAD_PATTERNS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "Segmentation fault",
    "SUMMARY: ",
    "Assertion",
    "stack smashing",
    "double free",
    "free(): ",
)

# A worker that died without being told to: a crash unless the test
# caused it on purpose (Daemon.crashes_expected).
WORKER_DIED_RE = re.compile(
    r"worker #\d+ of generation \d+ \(pid \d+\) "
    r"(killed by|exited with status|stopped without being told)")

_LISTEN_RE = re.compile(
    r"listener (\S+) listening on (tcp|udp|unix) (.+?)\s*$")


def _sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"AddressSanitizer" in f.read()
    except OSError:
        return False


# Built with ASan: its allocator keeps freed memory in quarantine, so RSS
# says nothing about what the daemon holds (tests that measure RSS say so
# in other ways there).
SANITIZED = _sanitized(KSOCKD)


def plugin_so(name):
    """Absolute path of a test plugin, e.g. test_plugin("api")."""
    return os.path.join(TEST_PLUGIN_DIR, name + ".so")


def raise_nofile():
    """Raises RLIMIT_NOFILE's soft limit to the hard limit (children
    started afterwards inherit it).  Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    want = min(want, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (for tests that need the same
    port across a reload or a conflict)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- libconfig text ---------------------------------------------------------

class Raw:
    """A value written into the config verbatim (for deliberately bad
    configs: Raw('"80"') as a port, Raw(';') ...)."""

    def __init__(self, text):
        self.text = text


def cfg_string(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def cfg_value(v):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**31 <= v < 2**31 else "%dL" % v
    if isinstance(v, float):
        r = repr(v)
        return r if any(c in r for c in ".eE") else r + ".0"
    if isinstance(v, str):
        return cfg_string(v)
    if isinstance(v, dict):
        return "{ " + " ".join(
            "%s = %s;" % (k, cfg_value(x)) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        scalar = all(not isinstance(x, (dict, list, tuple)) for x in v)
        open_, close = ("[", "]") if scalar else ("(", ")")
        return open_ + " " + ", ".join(cfg_value(x) for x in v) + " " + close
    raise TypeError("no libconfig form for %r" % (v,))


# ---- socket helpers ---------------------------------------------------------

def recv_line(sock, keepends=False, limit=1 << 22):
    """Reads one LF-terminated line without reading past it (MSG_PEEK), so
    several helpers can share a socket.  Strips LF or CRLF unless keepends.
    Raises EOFError (with the partial line) if the peer closes first."""
    got = b""
    while True:
        data = sock.recv(65536, socket.MSG_PEEK)
        if not data:
            raise EOFError("connection closed after %r" % got)
        nl = data.find(b"\n")
        take = len(data) if nl < 0 else nl + 1
        chunk = sock.recv(take)
        got += chunk
        if nl >= 0 and len(chunk) == take:
            break
        if len(got) > limit:
            raise AssertionError("line longer than %d bytes" % limit)
    if keepends:
        return got
    if got.endswith(b"\r\n"):
        return got[:-2]
    return got[:-1]


def recv_exact(sock, n):
    """Reads exactly n bytes; EOFError if the peer closes first."""
    parts = []
    while n > 0:
        data = sock.recv(min(n, 1 << 20))
        if not data:
            raise EOFError("connection closed with %d bytes missing" % n)
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def recv_until_eof(sock, limit=1 << 28):
    """Reads until the peer closes its write side; returns what came."""
    parts = []
    total = 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(parts)
        parts.append(data)
        total += len(data)
        if total > limit:
            raise AssertionError("more than %d bytes before EOF" % limit)


def connect_from(addr, source="127.0.0.1", timeout=30):
    """A client socket bound to `source` (127.0.0.2 and friends: other
    sources on loopback) connected to addr.  A connection the daemon
    refuses so fast that connect() already sees the reset is returned
    too: sending or reading on it fails."""
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    try:
        s.connect(addr)
    except ConnectionResetError:
        pass
    return s


def closed_by_daemon(s):
    """True once the daemon has closed (EOF or reset) without a byte."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def tls_client_hello():
    """The bytes of a TLS ClientHello (Python's ssl, no verification),
    with the in-memory TLS object and its BIOs to go on with:
    (hello, tls, incoming, outgoing)."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read(), tls, inc, out


def set_linger_rst(sock):
    """SO_LINGER 0: close() then sends RST instead of FIN."""
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))


def children(pid):
    """The pids of a process's children, from /proc (sorted)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(out)


def proc_status(pid):
    """/proc/PID/status as a dict of strings ({"Uid": "0 0 0 0", ...})."""
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def run_ksockd(args, timeout=30, input=None):
    """Runs ksockd with args to completion (for -t, -V, failing starts).
    Returns (exit status, combined stdout+stderr text)."""
    p = subprocess.run([KSOCKD] + list(args), stdin=subprocess.DEVNULL
                       if input is None else None, input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def bad_output(text):
    """The first sanitizer/crash marker in text, or None."""
    for pat in BAD_PATTERNS:
        if pat in text:
            return pat
    return None


# ---- the daemon -------------------------------------------------------------

class Daemon:
    """One ksockd process with its own config in a temporary directory.

    listeners: dicts of listener settings; defaults fill in protocol "tcp",
    address 127.0.0.1 and port 0 (tcp) or DIR/NAME.sock (unix).  handler
    is a bundled plugin name or an absolute path.  daemon_settings go into
    the `daemon` group (plugin_dir, log_level "debug", shutdown_timeout 5
    and workers 2 unless given: two worker processes whatever the machine,
    so that every test runs the multi-process daemon the same way; a test
    that needs one process's state across connections asks for 1).
    env: extra environment variables for the daemon."""

    def __init__(self, listeners, tmpdir=None, env=None, binary=None,
                 **daemon_settings):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="kstest-")
        self.own_tmpdir = tmpdir is None
        self.conf_path = os.path.join(self.tmpdir, "ksockd.conf")
        self.log_path = os.path.join(self.tmpdir, "ksockd.log")
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.proc = None
        self.reader = None
        self.addresses = {}
        self.clients = []
        self.listener_lines = {}
        self.env = dict(os.environ, **(env or {}))
        self.binary = binary or KSOCKD
        self.crashes_expected = False
        self.write_config(listeners, **daemon_settings)

    # -- config --

    def config_text(self, listeners, **daemon_settings):
        d = {"plugin_dir": PLUGIN_BUILD_DIR, "log_level": "debug",
             "shutdown_timeout": 5, "workers": 2}
        d.update(daemon_settings)
        lines = ["# written by kstest.py", "daemon: {"]
        for k, v in d.items():
            lines.append("  %s = %s;" % (k, cfg_value(v)))
        lines += ["};", "listeners = ("]
        self.listener_lines = {}
        for i, lst in enumerate(listeners):
            l = dict(lst)
            l.setdefault("protocol", "tcp")
            if l["protocol"] == "tcp":
                l.setdefault("address", "127.0.0.1")
                l.setdefault("port", 0)
            else:
                l.setdefault("address",
                             os.path.join(self.tmpdir, l["name"] + ".sock"))
            # one listener per line: its line number is easy to predict
            body = " ".join("%s = %s;" % (k, cfg_value(v))
                            for k, v in l.items() if v is not None)
            sep = "," if i + 1 < len(listeners) else ""
            lines.append("  { %s }%s" % (body, sep))
            self.listener_lines[l["name"]] = len(lines)
        lines.append(");")
        return "\n".join(lines) + "\n"

    def write_config(self, listeners, **daemon_settings):
        self.listeners = [dict(l) for l in listeners]
        self.daemon_settings = dict(daemon_settings)
        text = self.config_text(listeners, **daemon_settings)
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)  # a reload never sees half a file
        return text

    def write_config_text(self, text):
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)

    # -- process --

    def start(self, wait_ready=True, args=(), prefix=(), journal=False):
        """prefix: a command that runs the daemon (systemd-socket-activate
        ... for instance).  journal: stderr is a pipe that JOURNAL_STREAM
        names, as journald's stream is under systemd."""
        raise_nofile()
        self.logf = open(self.log_path, "w")
        out, env = subprocess.PIPE, self.env
        if journal:
            r, out = os.pipe()
            st = os.fstat(out)
            env = dict(env, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        self.proc = subprocess.Popen(
            list(prefix) + [self.binary, "-f", "-c", self.conf_path] +
            list(args),
            stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, cwd=self.tmpdir, env=env)
        if journal:
            os.close(out)
            self.proc.stdout = os.fdopen(r, "rb")
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_for_log(r"ready \(", timeout=READY_TIMEOUT)
            self.parse_addresses()
        return self

    def _read_log(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.logf.write(line + "\n")
                self.logf.flush()
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def parse_addresses(self, since=0):
        with self.cond:
            lines = self.lines[since:]
        for line in lines:
            m = _LISTEN_RE.search(line)
            if not m:
                continue
            name, proto, addr = m.groups()
            if proto == "unix":
                self.addresses[name] = addr
            else:
                host, _, port = addr.rpartition(":")
                self.addresses[name] = (host.strip("[]"), int(port))
        return self.addresses

    def mark(self):
        """The current log position, for wait_for_log(since=...)."""
        with self.cond:
            return len(self.lines)

    def wait_for_log(self, regex, timeout=10.0, since=0, flags=0):
        """Waits until a log line from index `since` on matches regex;
        returns the match.  Fails if the daemon's output ends first."""
        rx = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        pos = since
        with self.cond:
            while True:
                while pos < len(self.lines):
                    m = rx.search(self.lines[pos])
                    pos += 1
                    if m:
                        return m
                if self.eof:
                    raise AssertionError(
                        "ksockd exited (status %s) before logging /%s/\n%s" %
                        (self.proc.poll(), regex, self.log_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "no log line /%s/ within %.1f s\n%s" %
                        (regex, timeout, self.log_tail()))
                self.cond.wait(left)

    def log_has(self, regex, since=0, flags=0):
        rx = re.compile(regex, flags)
        with self.cond:
            return any(rx.search(l) for l in self.lines[since:])

    def log_text(self):
        with self.cond:
            return "\n".join(self.lines)

    def log_tail(self, n=60):
        with self.cond:
            return "\n".join("  | " + l for l in self.lines[-n:])

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def worker_pids(self):
        """The pids of the master's children now (its workers, and for
        a moment a configuration check), sorted."""
        return children(self.proc.pid)

    def wait_workers(self, n, timeout=READY_TIMEOUT, exclude=()):
        """Waits until the master has exactly n worker processes (none of
        them in `exclude`, e.g. ones that are draining) and returns their
        pids."""
        deadline = time.monotonic() + timeout
        while True:
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) == n:
                return pids
            if time.monotonic() > deadline:
                raise AssertionError("%d worker processes, not %d, after "
                                     "%.0f s\n%s" % (len(pids), n, timeout,
                                                     self.log_tail()))
            with self.cond:
                self.cond.wait(0.05)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process (and the end of its output)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("ksockd did not exit within %.0f s\n%s" %
                                 (timeout, self.log_tail()))
        self.reader.join(timeout)
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT,
             close_clients=False, expect=0):
        """Signals the daemon, waits for it and checks its exit status."""
        if close_clients:
            self.close_clients()
        if self.running():
            self.send_signal(sig)
        rc = self.wait(timeout)
        if expect is not None and rc != expect:
            raise AssertionError("ksockd exited with status %s (expected %s)"
                                 "\n%s" % (rc, expect, self.log_tail()))
        return rc

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def assert_clean_log(self):
        """No sanitizer report, crash message, worker that died (unless
        crashes_expected) or death by a signal."""
        text = self.log_text()
        pat = bad_output(text)
        if pat is not None:
            raise AssertionError("ksockd log contains %r:\n%s" %
                                 (pat, self.log_tail(200)))
        m = WORKER_DIED_RE.search(text)
        if m and not self.crashes_expected:
            raise AssertionError("a worker died: %r\n%s" %
                                 (m.group(0), self.log_tail(200)))
        if self.proc is not None and self.proc.returncode is not None \
                and self.proc.returncode < 0:
            raise AssertionError("ksockd died by signal %d\n%s" %
                                 (-self.proc.returncode, self.log_tail()))

    def cleanup(self):
        self.close_clients()
        self.kill()
        if self.reader is not None:
            self.reader.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if getattr(self, "logf", None) is not None:
            self.logf.close()
        if self.own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- clients --

    def address(self, name):
        if name not in self.addresses:
            raise AssertionError("no listener %r in %r" %
                                 (name, self.addresses))
        return self.addresses[name]

    def connect(self, name, timeout=SOCK_TIMEOUT, track=True, **sockopts):
        """A connected client socket (timeout 10 s) to listener `name`."""
        addr = self.address(name)
        if isinstance(addr, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
        if "rcvbuf" in sockopts:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                         sockopts["rcvbuf"])
        s.settimeout(timeout)
        try:
            s.connect(addr)
        except BaseException:
            s.close()
            raise
        if track:
            self.clients.append(s)
        return s

    def udp(self, name, timeout=SOCK_TIMEOUT, track=True):
        """An unconnected UDP client socket of the family of listener
        `name` (timeout 10 s); send with sock.sendto(data, d.address(name))."""
        addr = self.address(name)
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        if track:
            self.clients.append(s)
        return s

    def close_clients(self):
        for s in self.clients:
            try:
                s.close()
            except OSError:
                pass
        self.clients = []


class KsTestCase(unittest.TestCase):
    """Base class: start_daemon() daemons are stopped (SIGTERM, exit 0
    expected) and their logs checked in tearDown; a failed test prints
    their logs."""

    def setUp(self):
        self.daemons = []
        self.tmpdir = tempfile.mkdtemp(prefix="kstest-")

    def start_daemon(self, listeners, subdir=None, wait_ready=True, env=None,
                     binary=None, journal=False, **daemon_settings):
        d_dir = os.path.join(self.tmpdir, subdir or "d%d" % len(self.daemons))
        os.mkdir(d_dir)
        d = Daemon(listeners, tmpdir=d_dir, env=env, binary=binary,
                   **daemon_settings)
        self.daemons.append(d)
        d.start(wait_ready=wait_ready, journal=journal)
        return d

    def tearDown(self):
        try:
            for d in self.daemons:
                if d.running():
                    d.stop(close_clients=True)
                d.assert_clean_log()
        finally:
            for d in self.daemons:
                d.cleanup()
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def run(self, result=None):
        # Print the daemons' logs when this test fails, after tearDown.
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        ret = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for i, d in enumerate(getattr(self, "daemons", [])):
                sys.stderr.write("---- ksockd log %d of %s (last 150 lines)"
                                 " ----\n%s\n" % (i, self.id(),
                                                  d.log_tail(150)))
        return ret

    # -- dialogue helpers --

    def assertLine(self, sock, expected, msg=None):
        got = recv_line(sock)
        if isinstance(expected, str):
            expected = expected.encode()
        self.assertEqual(got, expected, msg)
        return got

    def assertEOF(self, sock, msg=None):
        data = recv_until_eof(sock)
        self.assertEqual(data, b"", msg)



# ---- load while the daemon changes ------------------------------------------

def ask(sock, line):
    """Sends one line and returns the reply line (str)."""
    if isinstance(line, str):
        line = line.encode()
    sock.sendall(line + b"\n")
    return recv_line(sock).decode("utf-8", "replace")


class ConnectLoop:
    """Threads that connect to one listener over and over, each time
    running `dialogue(sock)` (default: one line to an echo-like handler),
    until stop().  Counts completed dialogues, refused connection attempts
    and failures (reset, EOF, timeout), for tests that change the daemon
    (reload, crash, upgrade) under load and must lose nothing."""

    def __init__(self, d, name, threads=4, dialogue=None):
        self.addr = d.address(name)
        self.dialogue = dialogue or self.echo
        self.nthreads = threads
        self.cond = threading.Condition()
        self.ok = 0
        self.refused = 0
        self.failed = []
        self.running = False
        self.threads = []

    @staticmethod
    def echo(sock):
        if ask(sock, "ping") != "ping":
            raise AssertionError("wrong reply")

    def _one(self):
        fam = socket.AF_UNIX if isinstance(self.addr, str) else (
            socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect(self.addr)
            self.dialogue(s)
            s.shutdown(socket.SHUT_WR)
            recv_until_eof(s)
        finally:
            s.close()

    def _run(self):
        while True:
            with self.cond:
                if not self.running:
                    return
            try:
                self._one()
                outcome = "ok"
            except (ConnectionRefusedError, FileNotFoundError):
                outcome = "refused"
            except (OSError, EOFError, AssertionError) as e:
                outcome = repr(e)
            with self.cond:
                if outcome == "ok":
                    self.ok += 1
                elif outcome == "refused":
                    self.refused += 1
                else:
                    self.failed.append(outcome)
                self.cond.notify_all()

    def start(self):
        self.running = True
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def wait_ok(self, n, timeout=60):
        """Waits until n more dialogues have completed."""
        with self.cond:
            want = self.ok + n
            deadline = time.monotonic() + timeout
            while self.ok < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("only %d of %d dialogues in %.0f s "
                                         "(refused %d, failed %r)" %
                                         (self.ok, want, timeout,
                                          self.refused, self.failed[-5:]))
                self.cond.wait(left)

    def stop(self):
        with self.cond:
            self.running = False
        for t in self.threads:
            t.join(60)
        return self.ok, self.refused, self.failed


def assert_time_between(tc, value, before, after, msg=None):
    """For the daytime and time services: value (whole seconds since 1970)
    was read by test case tc between the times before and after -- an
    ordering, whatever the machine's speed.  A second of slack each side
    for the truncation to seconds."""
    tc.assertGreaterEqual(value, int(before) - 1, msg)
    tc.assertLessEqual(value, after + 1, msg)
