"""Shared helpers for wisp's integration tests.

Every test starts its own wisp-test-server on 127.0.0.1 with --port 0, reads the port from the
single `listening on 127.0.0.1:PORT` line, and stops it by PID (SIGTERM, then SIGKILL in a
finally). Every wait is bounded. Run with Debian's interpreter: /usr/bin/python3 (it has
python3-websockets 10.4).

The server binary comes from $WISP_TEST_SERVER (meson sets it), else the first
build*/tests/integration/wisp-test-server found next to this source tree.

The tests of the wisp program (actors/wisp) use WispServer and WispTestCase the same way: the
program comes from $WISP_BIN (meson sets it), else the newest build*/actors/wisp/wisp; it
listens on 127.0.0.1 port 0 and prints a `wisp listening on 127.0.0.1:PORT` line a listener.
"""

import asyncio
import base64
import ctypes
import faulthandler
import glob
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import websockets

HOST = "127.0.0.1"

# Close "why" ids: enum wisp_close_why in wisp/server.h.
WHY_NORMAL = 0
WHY_PROTOCOL = 1
WHY_BAD_UTF8 = 2
WHY_TOO_BIG = 3
WHY_TIMEOUT = 4
WHY_CLOSE_TIMEOUT = 5
WHY_BACKPRESSURE = 6
WHY_SHUTDOWN = 7
WHY_ABNORMAL = 8
WHY_NO_MEMORY = 9
WHY_IO_ERROR = 10

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def server_binary():
    path = os.environ.get("WISP_TEST_SERVER")
    if path:
        return path
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    found = sorted(glob.glob(os.path.join(root, "build*", "tests", "integration",
                                          "wisp-test-server")), key=os.path.getmtime)
    if not found:
        raise RuntimeError("wisp-test-server not found: set WISP_TEST_SERVER")
    return found[-1]


def wisp_binary():
    """The wisp program: $WISP_BIN, else the newest executable build*/actors/wisp/wisp next to
    this source tree."""
    path = os.environ.get("WISP_BIN")
    if path:
        return path
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    found = [p for p in glob.glob(os.path.join(root, "build*", "actors", "wisp", "wisp"))
             if os.path.isfile(p) and os.access(p, os.X_OK)]
    if not found:
        raise RuntimeError("the wisp program was not found: set WISP_BIN")
    return max(found, key=os.path.getmtime)


# ---- the server process ----------------------------------------------------------------------

_live_servers = []  # for the watchdog: servers to kill if the whole file overruns


def _die_with_parent():
    # The server gets SIGKILL if this test process dies, whatever the reason.
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """A running wisp-test-server. Use as a context manager, or call start()/stop()/kill().
    Subclasses for other programs override command() and read_listening()."""

    def __init__(self, *args, workers=2, start_timeout=10.0, nofile=None, cwd=None):
        self.args = [str(a) for a in args]
        self.nofile = nofile  # RLIMIT_NOFILE for the server, or None to inherit
        self.workers = workers
        self.start_timeout = start_timeout
        self.cwd = cwd        # the server's working directory, or None to inherit
        self.proc = None
        self.port = None
        self.exit_info = None
        self._err = None

    def command(self):
        """The command line that starts the server."""
        return [server_binary(), "--port", "0", "--workers", str(self.workers)] + self.args

    def read_listening(self):
        """Read what the server prints once it listens, and set self.port."""
        line = self._read_line(self.start_timeout)
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            raise AssertionError("unexpected first line from the server: %r; stderr: %s"
                                 % (line, self.stderr()))
        self.port = int(m.group(1))
        if not 0 < self.port < 65536:
            raise AssertionError("bad port %d" % self.port)

    def start(self):
        cmd = self.command()
        self._err = tempfile.TemporaryFile()
        def preexec():
            _die_with_parent()
            if self.nofile is not None:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.cwd,
                                     preexec_fn=preexec)
        _live_servers.append(self)
        try:
            self.read_listening()
        except BaseException:
            self.kill()
            raise
        return self

    def _read_line(self, timeout):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not print its listening line within %.0f s; "
                                     "stderr: %s" % (timeout, self.stderr()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 1)
                if not chunk:
                    raise AssertionError("server exited before listening (rc %s); stderr: %s"
                                         % (self.proc.wait(5), self.stderr()))
                buf += chunk
        return buf.decode()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        if self._err is None:
            return ""
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; return the exit status (None: it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._finish()
        return self.proc.returncode

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._finish()

    def _finish(self):
        if self in _live_servers:
            _live_servers.remove(self)
        if self.proc.stdout:
            self.proc.stdout.close()
        m = re.search(r"exiting: opened (\d+) closed (\d+) shutdown_calls (\d+)", self.stderr())
        if m:
            self.exit_info = {"opened": int(m.group(1)), "closed": int(m.group(2)),
                              "shutdown_calls": int(m.group(3))}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        return False

    # ---- queries --------------------------------------------------------------------------

    def url(self, path):
        return "ws://%s:%d%s" % (HOST, self.port, path)

    def stats(self):
        status, _, body = http_get(self.port, "/stats")
        if status != 200:
            raise AssertionError("/stats answered %d" % status)
        return json.loads(body)

    def rss_bytes(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


WISP_LISTEN_RE = re.compile(r"wisp listening on (\S+):(\d+)( \(tls\))?\n")


class WispServer(Server):
    """A running wisp program (actors/wisp). It prints one `wisp listening on HOST:PORT` line
    per listener (` (tls)` after a TLS one); listeners says how many to read (default: one per
    --listen/--listen-tls). With defaults, --listen 127.0.0.1:0 is added when args have no
    listener, and --workers when they do not say. port is the first plain listener's (else the
    first TLS one's); listeners lists them all as (host, port, tls)."""

    def __init__(self, *args, listeners=None, workers=2, start_timeout=15.0, cwd=None,
                 defaults=True):
        args = [str(a) for a in args]
        if defaults and "--listen" not in args and "--listen-tls" not in args:
            args = ["--listen", "%s:0" % HOST] + args
        if defaults and "--workers" not in args:
            args += ["--workers", str(workers)]
        super().__init__(*args, workers=workers, start_timeout=start_timeout, cwd=cwd)
        self.listeners_expected = listeners or (args.count("--listen") +
                                                args.count("--listen-tls"))
        self.listeners = []  # (host, port, tls)

    def command(self):
        return [wisp_binary()] + self.args

    def read_listening(self):
        for _ in range(self.listeners_expected):
            line = self._read_line(self.start_timeout)
            m = WISP_LISTEN_RE.fullmatch(line)
            if not m:
                raise AssertionError("unexpected line from wisp: %r; stderr: %s"
                                     % (line, self.stderr()))
            self.listeners.append((m.group(1), int(m.group(2)), bool(m.group(3))))
        plain = [l for l in self.listeners if not l[2]]
        self.port = (plain or self.listeners)[0][1]

    def _finish(self):
        # Keep the stderr text, close its file: a test may start many servers.
        super()._finish()
        if self._err is not None and not self._err.closed:
            self._err_text = Server.stderr(self)
            self._err.close()

    def stderr(self):
        if self._err is not None and self._err.closed:
            return self._err_text
        return super().stderr()

    def tls_port(self):
        return [l[1] for l in self.listeners if l[2]][0]


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    """Poll fn() until it returns something truthy; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def stats_wait(server, pred, timeout=10.0, what="stats"):
    """Poll /stats until pred(stats) holds; return those stats."""
    box = {}

    def check():
        box["s"] = server.stats()
        return pred(box["s"])

    try:
        wait_until(check, timeout, 0.05, what)
    except AssertionError as e:
        raise AssertionError("%s; last stats: %s" % (e, box.get("s"))) from None
    return box["s"]


def why_count(stats, why):
    return stats["closed_why_ids"].get(str(why), 0)


def code_count(stats, code):
    return stats["closed_codes"].get(str(code), 0)


# ---- raw sockets: HTTP --------------------------------------------------------------------------

def connect(port, timeout=5.0, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path, port, key=None, headers=(), method="GET", version="13", omit=(),
                    http="HTTP/1.1"):
    """An upgrade request head; omit names headers (lowercase) to leave out."""
    h = [("Host", "%s:%d" % (HOST, port)), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
         ("Sec-WebSocket-Key", key or new_key()), ("Sec-WebSocket-Version", version)]
    h = [(n, v) for n, v in h if n.lower() not in omit] + list(headers)
    lines = ["%s %s %s" % (method, path, http)] + ["%s: %s" % nv for nv in h]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HTTPResponse:
    def __init__(self, status, headers, body, rest=b""):
        self.status = status
        self.headers = headers  # list of (lowercase name, value)
        self.body = body
        self.rest = rest        # bytes after the head of a 101 (the first frames)

    def header(self, name):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return None


def read_response(sock, timeout=5.0, upgrade=False):
    """Read a response head (and, unless upgrade, its body: Content-Length or to EOF)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise AssertionError("connection closed before a full response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.fullmatch(r"HTTP/1\.1 (\d{3})(?: .*)?", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    status = int(m.group(1))
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    resp = HTTPResponse(status, headers, b"")
    if upgrade and status == 101:
        resp.rest = rest
        return resp
    length = resp.header("content-length")
    if length is not None:
        while len(rest) < int(length):
            chunk = _recv(sock, deadline)
            if not chunk:
                break
            rest += chunk
        resp.body = rest[:int(length)]
    else:
        while True:
            chunk = _recv(sock, deadline)
            if not chunk:
                break
            rest += chunk
        resp.body = rest
    return resp


def _recv(sock, deadline, n=65536):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    sock.settimeout(left)
    try:
        return sock.recv(n)
    except ConnectionResetError:
        return b""


def http_exchange(port, request, timeout=5.0):
    """Send raw request bytes, read one response; return HTTPResponse."""
    with connect(port, timeout) as s:
        s.sendall(request)
        return read_response(s, timeout)


def http_get(port, path, timeout=5.0):
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, HOST, port)).encode()
    r = http_exchange(port, req, timeout)
    return r.status, r.headers, r.body


def wait_eof(sock, timeout):
    """Read (discarding) until EOF; return the seconds it took and the bytes read. Fails on
    timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    got = b""
    while True:
        try:
            chunk = _recv(sock, deadline)
        except socket.timeout:
            raise AssertionError("no EOF within %.1f s (read %d bytes)" % (timeout, len(got)))
        if not chunk:
            return time.monotonic() - t0, got
        got += chunk


# ---- raw sockets: WebSocket frames -----------------------------------------------------------

def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """Encode one client frame. length overrides the announced payload length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
        else websockets.utils.apply_mask(payload, key)
    return head + key + masked


def close_frame(code=None, reason=b"", mask=True):
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload, mask=mask)


class RawWS:
    """A WebSocket client on a plain socket: sends whatever it is told, parses server frames."""

    def __init__(self, port, path="/echo", headers=(), timeout=5.0, rcvbuf=None):
        self.sock = connect(port, timeout, rcvbuf)
        self.sock.sendall(upgrade_request(path, port, headers=headers))
        resp = read_response(self.sock, timeout, upgrade=True)
        if resp.status != 101:
            self.sock.close()
            raise AssertionError("upgrade to %s answered %d" % (path, resp.status))
        self.response = resp
        self.buf = resp.rest

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, *a, **kw):
        self.sock.sendall(frame(*a, **kw))

    def read_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next server frame, or None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return f
            try:
                chunk = _recv(self.sock, deadline, 1 << 20)
            except socket.timeout:
                raise AssertionError("no frame within %.1f s" % timeout) from None
            if not chunk:
                if self.buf:
                    raise AssertionError("EOF inside a frame (%d bytes)" % len(self.buf))
                return None
            self.buf += chunk

    def _parse(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin = bool(b[0] & 0x80)
        if b[0] & 0x70:
            raise AssertionError("server frame with RSV bits: %#x" % b[0])
        opcode = b[0] & 0x0F
        if b[1] & 0x80:
            raise AssertionError("server sent a masked frame")
        n = b[1] & 0x7F
        off = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            off = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            off = 10
        if len(b) < off + n:
            return None
        payload = b[off:off + n]
        self.buf = b[off + n:]
        return fin, opcode, payload

    def read_message(self, timeout=5.0):
        """(opcode, payload) of the next data message (answering nothing), None at EOF.
        Control frames are returned as they come."""
        parts = []
        op = None
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return None
            fin, opcode, payload = f
            if opcode >= 0x8:
                return opcode, payload
            if opcode != OP_CONT:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def read_close(self, timeout=5.0):
        """Skip frames until a close frame; return (code, reason bytes), code None for an empty
        close payload. Fails at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                raise AssertionError("EOF without a close frame")
            if f[1] == OP_CLOSE:
                p = f[2]
                if len(p) == 0:
                    return None, b""
                return struct.unpack("!H", p[:2])[0], p[2:]

    def expect_close(self, code, timeout=5.0, answer=True, eof_timeout=5.0):
        """Read until the server's close frame, check its code, answer it, then expect EOF."""
        got, reason = self.read_close(timeout)
        if got != code:
            raise AssertionError("server closed with %r (reason %r), expected %d"
                                 % (got, reason, code))
        if answer:
            try:
                self.sock.sendall(close_frame(code))
            except OSError:
                pass
        wait_eof(self.sock, eof_timeout)
        return reason

    def rst(self):
        """Close with a TCP reset."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False


# ---- websockets (asyncio) ----------------------------------------------------------------------

def ws_connect(server, path, **kw):
    """websockets.connect with bounded timeouts, no keep-alive pings, no size limit."""
    opts = dict(open_timeout=10, close_timeout=5, ping_interval=None, max_size=None)
    opts.update(kw)
    return websockets.connect(server.url(path), **opts)


def run(coro, timeout=30.0):
    """Run a coroutine with a hard time bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def raise_nofile(n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- test cases ----------------------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """One server for the whole class, started with server_args; stopping it at the end must be
    clean: exit status 0, and on_closed ran once for every opened connection."""

    server_class = Server
    server_args = ()
    workers = 2
    server_name = "server"  # in the failure messages
    stop_timeout = 10.0     # seconds from SIGTERM to the exit

    @classmethod
    def setUpClass(cls):
        cls.server = cls.server_class(*cls.server_args, workers=cls.workers).start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        try:
            rc = srv.stop(cls.stop_timeout)
            if rc != 0:
                raise AssertionError("%s exit status %r after SIGTERM; stderr:\n%s"
                                     % (cls.server_name, rc, srv.stderr()))
            cls.check_exit(srv)
        finally:
            srv.kill()

    @classmethod
    def check_exit(cls, srv):
        """After exit status 0: on_closed ran once for every opened connection."""
        info = srv.exit_info
        if info is None or info["opened"] != info["closed"]:
            raise AssertionError("on_closed count != opened at exit: %r" % (info,))

    def stats(self):
        return self.server.stats()


class WispTestCase(ServerTestCase):
    """One wisp program for the whole class (server_class: WispServer or a subclass), started
    with server_args (its options: routes...) and workers; it must stay alive through every
    test, and stopping it at the end must give exit status 0 (wisp prints no on_closed count
    to check)."""

    server_class = WispServer
    server_name = "wisp"
    stop_timeout = 15.0

    @classmethod
    def check_exit(cls, srv):
        pass

    def tearDown(self):
        self.assertTrue(self.server.alive(), "wisp died; stderr:\n%s" % self.server.stderr())


def _watchdog(seconds):
    time.sleep(seconds)
    sys.stderr.write("\nwatchdog: test file still running after %d s; killing servers\n"
                     % seconds)
    faulthandler.dump_traceback(all_threads=True)
    for s in list(_live_servers):
        try:
            sys.stderr.write("server %d stderr:\n%s\n" % (s.pid, s.stderr()))
            os.kill(s.pid, signal.SIGKILL)
        except OSError:
            pass
    sys.stderr.flush()
    os._exit(3)


def main(budget=100):
    """unittest.main with a hard budget for the whole file (servers are killed at the end)."""
    threading.Thread(target=_watchdog, args=(budget,), daemon=True).start()
    unittest.main(verbosity=2)
