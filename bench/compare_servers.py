"""Servers for bench/compare: starting and stopping ksockd and its peers
(the libev floor, Node.js, socat, nginx, stunnel) on loopback, their TLS
credentials, and the process helpers.  Split from bench/compare so each
file stays readable; a new kind of server is one start function here and
one SERVERS entry.
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
TLS_NAME = "localhost"
# key type -> (description, certtool options)
TLS_KEYS = {
    "ecdsa": ("ECDSA P-256", ["--key-type=ecdsa", "--curve=secp256r1"]),
    "rsa": ("RSA-2048", ["--key-type=rsa", "--bits=2048"]),
}


# ---- processes ---------------------------------------------------------------

class Failure(Exception):
    pass


def log(msg):
    sys.stderr.write("compare: %s\n" % msg)
    sys.stderr.flush()


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_net_has(table, port, state):
    want = ":%04X" % port
    try:
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(want) and fields[3] == state:
                    return True
    except OSError:
        pass
    return False


def tcp_listening(port):
    """Whether something listens on 127.0.0.1:port (from /proc/net/tcp, so
    no connection is made)."""
    return _proc_net_has("/proc/net/tcp", port, "0A")


def udp_bound(port):
    """Whether an unconnected UDP socket is bound to port (state 07 in
    /proc/net/udp): no datagram is sent, which would start a socat child."""
    return _proc_net_has("/proc/net/udp", port, "07")


def unix_listening(path):
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


class Proc:
    """A child in its own process group, output to a log file."""

    def __init__(self, argv, logpath, cwd=None, name=None):
        self.name = name or os.path.basename(argv[0])
        self.argv = argv
        self.logpath = logpath
        self.logf = open(logpath, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=self.logf, stderr=subprocess.STDOUT,
                                  cwd=cwd, start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for(self, check, what, timeout=READY_TIMEOUT):
        """Polls check() (a value or None) until it gives a value."""
        deadline = time.monotonic() + timeout
        while True:
            v = check()
            if v:
                return v
            if not self.alive():
                raise Failure("%s exited (status %s) before %s:\n%s" % (
                    self.name, self.p.returncode, what, self.log_text()[-2000:]))
            if time.monotonic() > deadline:
                raise Failure("%s: no %s within %.0f s:\n%s" % (
                    self.name, what, timeout, self.log_text()[-2000:]))
            time.sleep(0.02)

    def wait_log(self, regex, timeout=READY_TIMEOUT):
        rx = re.compile(regex, re.M)
        return self.wait_for(lambda: rx.search(self.log_text()),
                             "/%s/ in its output" % regex, timeout)

    def stop(self):
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT.
        Returns the exit status (negative: a signal)."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (forked children) goes too.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.p.poll() is None:
            self.p.wait(STOP_TIMEOUT)
        self.logf.close()
        return self.p.returncode


class Running:
    """A started server: where to connect, which PIDs to measure, and the
    processes to stop afterwards (helpers such as an upstream included)."""

    def __init__(self, procs, pids, host=None, port=None, path=None,
                 crash_ok=()):
        self.procs = procs
        self.pids = pids
        self.host = host
        self.port = port
        self.path = path
        # names of processes whose death by a signal while stopping is only
        # a warning (stunnel's threaded shutdown): the run was over by then
        self.crash_ok = crash_ok
        self.warnings = []

    def target_args(self):
        if self.path is not None:
            return ["-U", self.path]
        return ["-H", self.host, "-p", str(self.port)]

    def crashed(self):
        return [p for p in self.procs if not p.alive()]

    def stop(self):
        bad = []
        for p in reversed(self.procs):
            rc = p.stop()
            # 128+15: socat reports death by SIGTERM as its exit status
            if rc not in (0, None, -signal.SIGTERM, 128 + signal.SIGTERM):
                msg = "%s exited with status %s" % (p.name, rc)
                if p.name in self.crash_ok and rc is not None and rc < 0:
                    self.warnings.append(msg + " when stopped after the run")
                else:
                    bad.append(msg)
        return bad


# ---- TLS credentials -----------------------------------------------------------

def make_tls_creds(ctx, tmp, keys):
    """A CA and a server certificate (localhost, 127.0.0.1) per key type,
    both of that key type, made with certtool in tmp.  Returns
    {key type: {"ca": path, "cert": path, "key": path}}."""
    if ctx.certtool is None:
        raise Failure("certtool (gnutls-bin) not found: no TLS scenarios")
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    ca_t = os.path.join(d, "ca.tmpl")
    srv_t = os.path.join(d, "server.tmpl")
    with open(ca_t, "w") as f:
        f.write('cn = "ksockd bench CA"\nca\ncert_signing_key\n'
                'expiration_days = 2\n')
    with open(srv_t, "w") as f:
        f.write('cn = "%s"\ndns_name = "%s"\nip_address = "127.0.0.1"\n'
                'tls_www_server\nsigning_key\nencryption_key\n'
                'expiration_days = 2\n' % (TLS_NAME, TLS_NAME))
    creds = {}
    for key in keys:
        opts = TLS_KEYS[key][1]
        c = {n: os.path.join(d, "%s-%s.pem" % (key, n))
             for n in ("ca-key", "ca", "key", "cert")}
        steps = [
            ["--generate-privkey"] + opts + ["--outfile", c["ca-key"]],
            ["--generate-self-signed", "--load-privkey", c["ca-key"],
             "--template", ca_t, "--outfile", c["ca"]],
            ["--generate-privkey"] + opts + ["--outfile", c["key"]],
            ["--generate-certificate", "--load-privkey", c["key"],
             "--load-ca-certificate", c["ca"], "--load-ca-privkey",
             c["ca-key"], "--template", srv_t, "--outfile", c["cert"]],
        ]
        for st in steps:
            try:
                p = subprocess.run([ctx.certtool, "--no-text"] + st,
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60)
            except subprocess.TimeoutExpired:
                raise Failure("certtool %s: no result within 60 s" % st[0])
            if p.returncode != 0:
                raise Failure("certtool %s failed: %s" % (
                    " ".join(st), p.stdout.decode("utf-8", "replace")[-500:]))
        creds[key] = c
    return creds


# ---- the servers --------------------------------------------------------------

def start_ksockd(ctx, transport, tmp, cred=None, workers=1, alog=False):
    """ksockd with `workers` worker processes (1 unless a scenario of the
    workers dimension asks for more, so that the other scenarios compare one
    event loop with one event loop); alog: with an access log (a line per
    connection, written by the master) and a metrics listener."""
    if transport not in ("tcp", "unix", "tls", "udp"):
        raise Failure("ksockd: no %s transport here yet" % transport)
    conf = os.path.join(tmp, "ksockd.conf")
    sock = os.path.join(tmp, "echo.sock")
    if transport in ("tcp", "tls"):
        tls = ""
        if transport == "tls":
            # TLS 1.3 only, like the peers; tickets on (the default)
            tls = (' tls = { certificate = "%s"; key = "%s"; priority = '
                   '"NORMAL:-VERS-ALL:+VERS-TLS1.3:%%SERVER_PRECEDENCE"; '
                   'session_tickets = true; };' % (cred["cert"], cred["key"]))
        lst = ('{ name = "echo"; protocol = "tcp"; address = "127.0.0.1"; '
               'port = 0; handler = "echo"; backlog = 4096;%s }' % tls)
    elif transport == "udp":
        # rate_limit = 0: the echo plugin's default (100 replies/s per
        # source address) would throttle a benchmark whose flows all come
        # from 127.0.0.1.
        lst = ('{ name = "echo"; protocol = "udp"; address = "127.0.0.1"; '
               'port = 0; handler = "echo"; options = { rate_limit = 0; }; }')
    else:
        lst = ('{ name = "echo"; protocol = "unix"; address = "%s"; '
               'handler = "echo"; backlog = 4096; }' % sock)
    extra = ""
    if alog:
        extra = 'access_log = "%s"; ' % os.path.join(tmp, "access.log")
        lst += (',\n  { name = "metrics"; address = "127.0.0.1"; port = 0; '
                'handler = "metrics"; }')
    # log_level info: the only way to learn the ephemeral port; ksockd logs
    # nothing per connection at that level, and the log goes to a file.
    with open(conf, "w") as f:
        f.write('daemon: { plugin_dir = "%s"; log_level = "info"; '
                'shutdown_timeout = 2; workers = %d; %s};\n'
                'listeners = (\n  %s\n);\n' %
                (os.path.join(ctx.builddir, "plugins", ".libs"), workers,
                 extra, lst))
    p = Proc([ctx.ksockd, "-f", "-c", conf], os.path.join(tmp, "ksockd.log"),
             cwd=tmp, name="ksockd")
    try:
        p.wait_log(r"ready \(")
        m = re.search(r"listener echo listening on (tcp|unix|udp) (\S+)",
                      p.log_text())
        if not m:
            raise Failure("ksockd: no listening line:\n" + p.log_text())
        # the workers must exist before the first sample of CPU and RSS
        p.wait_for(lambda: len(children(p.pid)) >= workers, "its workers")
        if m.group(1) == "unix":
            return Running([p], [p.pid], path=m.group(2))
        host, _, port = m.group(2).rpartition(":")
        return Running([p], [p.pid], host=host.strip("[]"), port=int(port))
    except BaseException:
        p.stop()
        raise


def start_echo_libev(ctx, transport, tmp, name="echo-libev", cred=None):
    if transport == "unix":
        path = os.path.join(tmp, "echo-libev.sock")
        argv = [ctx.echo_libev, "-U", path]
    elif transport in ("tcp", "udp"):
        # -u: a UDP socket on the same port as the TCP listener, which
        # stays idle in the udp scenarios
        argv = [ctx.echo_libev, "-H", "127.0.0.1", "-p", "0"] + (
            ["-u"] if transport == "udp" else [])
    else:
        raise Failure("echo-libev: no %s transport" % transport)
    p = Proc(argv, os.path.join(tmp, name + ".log"), name=name)
    try:
        m = p.wait_log(r"^listening on (%s) (\S+)$" % (
            "udp" if transport == "udp" else "tcp|unix"))
        if m.group(1) == "unix":
            return Running([p], [p.pid], path=m.group(2))
        host, _, port = m.group(2).rpartition(":")
        return Running([p], [p.pid], host=host, port=int(port))
    except BaseException:
        p.stop()
        raise


def start_node(ctx, transport, tmp, cred=None):
    if transport != "tcp":
        raise Failure("node: no %s transport" % transport)
    p = Proc([ctx.node, os.path.join(HERE, "node-echo.js"), "0"],
             os.path.join(tmp, "node.log"), name="node")
    try:
        m = p.wait_log(r"^listening on tcp (\S+):(\d+)$")
        return Running([p], [p.pid], host=m.group(1), port=int(m.group(2)))
    except BaseException:
        p.stop()
        raise


def start_socat(ctx, transport, tmp, cred=None):
    # Echo through a pipe: the forked child relays socket -> pipe -> socket.
    # EXEC:cat would add a process and two more pipes per connection and
    # measure cat as much as socat.
    if transport == "tcp":
        port = free_port()
        addr = "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay," \
               "backlog=4096" % port
        check = lambda: tcp_listening(port)
    elif transport == "unix":
        path = os.path.join(tmp, "socat.sock")
        addr = "UNIX-LISTEN:%s,fork,unlink-early,backlog=4096" % path
        check = lambda: unix_listening(path)
    elif transport == "udp":
        # UDP4-LISTEN,fork: on a datagram from a new source the parent
        # forks a child that connects the socket to that source and echoes
        # its datagrams through the pipe; the parent binds a new socket for
        # the next source (reuseaddr lets both share the port).  That is a
        # working echo for one flow only: datagrams of other flows already
        # queued on the socket go to the child, which echoes them to the
        # wrong flow (merged through the pipe), and a flow that lost its
        # datagram gets a child only when it retries (ksock-bench: after
        # 200 ms), so 50 flows started together need seconds to settle and
        # see wrong echoes and refusals until then.  The udp scenarios
        # therefore compare socat at 1 flow only.  UDP4-RECVFROM,fork forks
        # a child per datagram (about 2,000 datagrams/s here): no peer.
        port = free_port(socket.SOCK_DGRAM)
        addr = "UDP4-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % port
        check = lambda: udp_bound(port)
    else:
        raise Failure("socat: no %s transport" % transport)
    p = Proc([ctx.socat, addr, "PIPE"], os.path.join(tmp, "socat.log"),
             name="socat")
    try:
        p.wait_for(check, "a listening socket")
    except BaseException:
        p.stop()
        raise
    if transport == "unix":
        return Running([p], [p.pid], path=path)
    return Running([p], [p.pid], host="127.0.0.1", port=port)


def start_nginx(ctx, transport, tmp, cred=None, workers=2):
    """nginx stream proxy in front of echo-libev.  It holds two sockets per
    client connection (client and upstream), and one worker could not hold
    10,000 proxied connections within a 20,000 descriptor limit: two
    workers, reuseport.  Over tcp only nginx's processes are measured (the
    idle scenario counts the proxy's memory); over tls (`listen ... ssl`,
    TLS 1.3 only, session tickets on, no session cache: nginx's defaults
    besides the protocol) the whole server side is, echo-libev included,
    with the same two workers."""
    if transport not in ("tcp", "tls"):
        raise Failure("nginx: no %s transport" % transport)
    up = start_echo_libev(ctx, "tcp", tmp, name="nginx-upstream")
    try:
        port = free_port()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        nofile = hard if hard != resource.RLIM_INFINITY else 65536
        lines = []
        if os.path.exists(NGINX_STREAM_MODULE):
            lines.append("load_module %s;" % NGINX_STREAM_MODULE)
        lines += [
            "worker_processes %d;" % workers,
            "worker_rlimit_nofile %d;" % nofile,
            "pid %s;" % os.path.join(tmp, "nginx.pid"),
            "error_log %s warn;" % os.path.join(tmp, "nginx-error.log"),
            "events { worker_connections %d; multi_accept on; }" % (
                nofile - 64),
            "stream {",
            "  upstream echo { server 127.0.0.1:%d; }" % up.port,
            "  server {",
            "    listen 127.0.0.1:%d%s reuseport backlog=4096;" % (
                port, " ssl" if transport == "tls" else ""),
            "    proxy_pass echo;",
            "    tcp_nodelay on;",
        ]
        if transport == "tls":
            lines += [
                "    ssl_certificate %s;" % cred["cert"],
                "    ssl_certificate_key %s;" % cred["key"],
                "    ssl_protocols TLSv1.3;",
                "    ssl_session_tickets on;",
            ]
        lines += ["  }", "}"]
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        p = Proc([ctx.nginx, "-p", tmp + "/", "-e",
                  os.path.join(tmp, "nginx-error.log"), "-c", "nginx.conf",
                  "-g", "daemon off;"], os.path.join(tmp, "nginx.log"),
                 name="nginx")
        try:
            p.wait_for(lambda: tcp_listening(port), "a listening socket")
            # the workers must exist before the first sample of RSS
            p.wait_for(lambda: len(children(p.pid)) >= workers,
                       "its workers")
        except BaseException:
            p.stop()
            raise
        pids = [p.pid] + (up.pids if transport == "tls" else [])
        return Running(up.procs + [p], pids, host="127.0.0.1", port=port)
    except BaseException:
        up.stop()
        raise


def start_stunnel(ctx, transport, tmp, cred=None):
    """stunnel4 in front of echo-libev: one process, a thread per
    connection (Debian's build), TLS 1.3 only, its default session cache
    and tickets.  Logging at warning level: at its default (notice) it logs
    every connection, which the other servers do not."""
    if transport != "tls":
        raise Failure("stunnel: no %s transport" % transport)
    up = start_echo_libev(ctx, "tcp", tmp, name="stunnel-upstream")
    try:
        port = free_port()
        conf = os.path.join(tmp, "stunnel.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "foreground = yes",
                "pid = %s" % os.path.join(tmp, "stunnel.pid"),
                "syslog = no",
                "debug = warning",
                "socket = l:TCP_NODELAY=1",
                "socket = r:TCP_NODELAY=1",
                "[echo]",
                "accept = 127.0.0.1:%d" % port,
                "connect = 127.0.0.1:%d" % up.port,
                "cert = %s" % cred["cert"],
                "key = %s" % cred["key"],
                "sslVersionMin = TLSv1.3",
                "sslVersionMax = TLSv1.3",
            ]) + "\n")
        p = Proc([ctx.stunnel, conf], os.path.join(tmp, "stunnel.log"),
                 cwd=tmp, name="stunnel")
        try:
            p.wait_for(lambda: tcp_listening(port), "a listening socket")
        except BaseException:
            p.stop()
            raise
        return Running(up.procs + [p], [p.pid] + up.pids, host="127.0.0.1",
                       port=port, crash_ok=("stunnel",))
    except BaseException:
        up.stop()
        raise


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


class ServerDef:
    def __init__(self, name, start, needs, describe, notes=None):
        self.name = name
        self.start = start
        self.needs = needs        # context attributes that must be set
        self.describe = describe
        # transport -> what differs there, added to the description when
        # a report has scenarios over that transport
        self.notes = notes or {}


def start_ksockd_2w(ctx, transport, tmp, cred=None):
    return start_ksockd(ctx, transport, tmp, cred=cred, workers=2)


def start_ksockd_alog(ctx, transport, tmp, cred=None):
    return start_ksockd(ctx, transport, tmp, cred=cred, alog=True)


def start_nginx_1w(ctx, transport, tmp, cred=None):
    return start_nginx(ctx, transport, tmp, cred=cred, workers=1)


SERVERS = {
    "ksockd": ServerDef("ksockd", start_ksockd, ["ksockd"],
                        "ksockd, `echo` plugin (ks_copy), one worker "
                        "process (`workers = 1`) under its master",
                        notes={"udp": "a `protocol = \"udp\"` listener, the "
                               "echo plugin's handle_dgram with "
                               "`rate_limit = 0` (no per-source limit); the "
                               "core reads a batch of datagrams with one "
                               "recvmmsg and replies with one sendmsg "
                               "each"}),
    "ksockd-2w": ServerDef("ksockd-2w", start_ksockd_2w, ["ksockd"],
                           "ksockd, `echo` plugin, two worker processes "
                           "(`workers = 2`) accepting on one shared "
                           "listening socket (EPOLLEXCLUSIVE)"),
    "ksockd-alog": ServerDef("ksockd-alog", start_ksockd_alog, ["ksockd"],
                             "ksockd as `ksockd`, plus an access log "
                             "(`access_log`, text: a line per connection "
                             "through the master) and a metrics listener "
                             "(not scraped)"),
    "echo-libev": ServerDef("echo-libev", start_echo_libev, ["echo_libev"],
                            "bench/echo-libev: minimal libev echo, one loop, "
                            "read once / write back (the floor)",
                            notes={"udp": "`-u`: per readiness one recvfrom "
                                   "and one sendto back to the sender"}),
    "node": ServerDef("node", start_node, ["node"],
                      "Node.js `net` echo (bench/node-echo.js: "
                      "socket.pipe(socket), noDelay)"),
    "socat": ServerDef("socat", start_socat, ["socat"],
                       "socat `TCP-LISTEN:PORT,fork,reuseaddr,nodelay PIPE`: "
                       "a forked process per connection, echo through a "
                       "pipe. Its server CPU is a lower bound: /proc counts "
                       "CPU time per process in 10 ms clock ticks, and each "
                       "of its many light processes loses up to one (badly "
                       "so at 1000 connections)",
                       notes={"udp": "`UDP4-LISTEN:PORT,fork,reuseaddr "
                              "PIPE`: a forked child per source address, "
                              "its socket connected to that source; "
                              "compared at 1 flow only, as it mixes up "
                              "flows that start together"}),
    "nginx": ServerDef("nginx", start_nginx, ["nginx", "echo_libev"],
                       "nginx stream proxy -> echo-libev, 2 workers "
                       "(reuseport); two sockets per connection; only "
                       "nginx's RSS counted"),
    "nginx-1w": ServerDef("nginx-1w", start_nginx_1w, ["nginx", "echo_libev"],
                          "nginx stream proxy -> echo-libev as `nginx`, "
                          "but one worker: what a second worker costs "
                          "nginx, for comparison with ksockd's"),
    "stunnel": ServerDef("stunnel", start_stunnel, ["stunnel", "echo_libev"],
                         "stunnel4 (OpenSSL) terminating TLS 1.3 -> "
                         "echo-libev: one process, a thread per connection, "
                         "default session cache and tickets, log level "
                         "warning (its default logs every connection); "
                         "server CPU = stunnel + echo-libev"),
    "nginx-ssl": ServerDef("nginx-ssl", start_nginx, ["nginx", "echo_libev"],
                           "nginx stream `listen ... ssl` (OpenSSL), TLS 1.3 "
                           "only, `ssl_session_tickets on`, no session "
                           "cache -> echo-libev; 2 workers (reuseport) as in "
                           "the idle scenario, so it may use both cores "
                           "where ksockd uses one; server CPU = nginx "
                           "master and workers + echo-libev"),
}


