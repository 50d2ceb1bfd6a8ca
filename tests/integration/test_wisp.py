"""The `wisp` program: options and config files (and their error messages), listeners (port in
use, IPv6, TLS), the echo and broadcast modules, loaded modules (and the ones it must refuse),
/metrics and /healthz, static files, and SIGTERM.

Every server is started on 127.0.0.1 port 0; its port comes from the `wisp listening on
127.0.0.1:PORT` line it prints, and it is stopped by PID. The program comes from $WISP_BIN
(meson sets it), else the newest build*/actors/wisp/wisp next to this source tree.
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import websockets

import wisptest

HOST = wisptest.HOST
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
wisp_binary = wisptest.wisp_binary


def run_wisp(*args, timeout=20, cwd=None):
    """Run wisp to completion (it must not start serving); return (rc, stdout, stderr)."""
    p = subprocess.run([wisp_binary()] + [str(a) for a in args], capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd,
                       preexec_fn=wisptest._die_with_parent)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Wisp(wisptest.WispServer):
    """A running wisp program (see wisptest.WispServer), with its metrics."""

    def metrics(self, path="/metrics"):
        status, headers, body = wisptest.http_get(self.port, path)
        if status != 200:
            raise AssertionError("%s answered %d: %r" % (path, status, body))
        ctype = dict(headers).get("content-type")
        if ctype != "text/plain; version=0.0.4; charset=utf-8":
            raise AssertionError("metrics content type %r" % ctype)
        return parse_metrics(body.decode())


def parse_metrics(text):
    """Prometheus text format 0.0.4 -> {name or name{labels}: value}, checking that every
    sample has a TYPE line for its metric and that counters end in _total."""
    types = {}
    values = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            if kind == "counter" and not name.endswith("_total"):
                raise AssertionError("counter %s does not end in _total" % name)
            continue
        if line.startswith("#"):
            if not line.startswith("# HELP "):
                raise AssertionError("bad comment line %r" % line)
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)', line)
        if not m:
            raise AssertionError("bad sample line %r" % line)
        if m.group(1) not in types:
            raise AssertionError("sample %s before its TYPE line" % m.group(1))
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_cert(d):
    """A self-signed certificate for localhost and 127.0.0.1 in d: cert.pem, key.pem."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
            "cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)


def built_modules():
    rc, out, _ = run_wisp("--list-modules")
    if rc != 0:
        raise AssertionError("--list-modules exited %d" % rc)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


async def recv(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout)


# ---- options ---------------------------------------------------------------------------------

class OptionsTest(unittest.TestCase):

    def assert_fails(self, args, *needles, rc=1, cwd=None):
        code, out, err = run_wisp(*args, cwd=cwd)
        self.assertEqual(code, rc, "wisp %s: exit %d, stderr: %s" % (args, code, err))
        self.assertEqual(out, "", "wisp %s printed on stdout: %r" % (args, out))
        errors = [l for l in err.splitlines() if l.startswith("wisp: error: ")]
        self.assertEqual(len(errors), 1, "wisp %s: expected one error line: %r" % (args, err))
        for n in needles:
            self.assertIn(n, err, "wisp %s" % (args,))
        return err

    def test_help_lists_every_option_with_defaults(self):
        rc, out, err = run_wisp("--help")
        self.assertEqual(rc, 0, err)
        for opt in ("--listen ADDR:PORT", "--listen-tls", "--cert FILE", "--key FILE",
                    "--route PATH=MODULE[:ARG]", "--static URLPATH=DIR", "--module FILE.so",
                    "--workers N", "--max-conns", "--max-message", "--send-cap", "--overflow",
                    "--idle-ms", "--handshake-ms", "--close-ms", "--mailbox-limit",
                    "--log-level", "--config FILE", "--list-modules", "--version",
                    "--metrics-path", "--no-metrics", "--health-path", "--no-health"):
            self.assertIn(opt, out)
        self.assertIn("127.0.0.1:8080", out)
        self.assertIn("(default 16M)", out)
        self.assertIn("(default info)", out)
        for line in out.splitlines():
            self.assertLessEqual(len(line), 80, line)

    def test_version(self):
        rc, out, _ = run_wisp("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^wisp \d+\.\d+\.\d+ \(module ABI \d+\)\n$")

    def test_bad_options(self):
        cases = [
            (["--bogus"], "unknown option '--bogus'"),
            (["stray"], "unexpected argument 'stray'"),
            (["--workers"], "'--workers' needs a value"),
            (["--workers", "x"], "--workers: invalid value 'x'"),
            (["--workers", "-1"], "--workers: invalid value '-1'"),
            (["--workers", "2000"], "from 0 to 1024"),
            (["--workers", " 2"], "invalid value ' 2'"),
            (["--max-message", "0"], "--max-message: invalid value '0'"),
            (["--max-message", "4G"], "--max-message: invalid value '4G'"),
            (["--max-message", "1T"], "--max-message: invalid value '1T'"),
            (["--idle-ms", "5s"], "--idle-ms: invalid value '5s'"),
            (["--max-conns", "99999999999"], "--max-conns: invalid value"),
            (["--recv-buffers", "100"], "power of two"),
            (["--overflow", "maybe"], "expected close or drop"),
            (["--log-level", "loud"], "expected error, warn, info or debug"),
            (["--listen", "8080"], "expected ADDR:PORT"),
            (["--listen", "127.0.0.1:65536"], "invalid port '65536'"),
            (["--listen", "127.0.0.1:"], "invalid port ''"),
            (["--listen", ":8080"], "no address"),
            (["--listen", "::1:8080"], "in brackets"),
            (["--listen", "[::1]8080"], "[IPV6]:PORT"),
            (["--route", "echo"], "expected PATH=MODULE[:ARG]"),
            (["--route", "chat=echo"], "bad path 'chat'"),
            (["--route", "/a*=echo"], "'*' may only end a prefix path"),
            (["--route", "/a=bad name"], "bad module name 'bad name'"),
            (["--route", "/a=echo:"], "nothing after ':'"),
            (["--static", "/files"], "expected URLPATH=DIR"),
            (["--metrics-path", "metrics"], "bad path 'metrics'"),
            (["--no-metrics=1"], "takes no value"),
            (["--help=x"], "takes no value"),
            (["--send-cap", "1K", "--send-high", "2K", "--route", "/a=echo"],
             "--send-low (512) <= --send-high (2048) <= --send-cap (1024)"),
            (["--listen-tls", "127.0.0.1:0", "--route", "/a=echo"],
             "--listen-tls needs --cert FILE and --key FILE"),
            (["--cert", "c.pem", "--key", "k.pem", "--route", "/a=echo"], "there is none"),
            ([], "no route"),
            (["--route", "/a=nope"], "unknown module 'nope'", "--route /a=nope"),
            (["--route", "/a=echo:x"], "the module 'echo' could not mount /a"),
            (["--route", "/a=broadcast:x"], "the module 'broadcast' could not mount /a"),
            (["--route", "/a=echo", "--route", "/a=broadcast"],
             "route path clash: '/a' is routed by --route /a=echo and by --route /a=broadcast"),
            (["--route", "/metrics=echo"], "route path clash", "--no-metrics"),
            (["--route", "/healthz=echo"], "route path clash", "--no-health"),
            (["--metrics-path", "/x", "--health-path", "/x", "--route", "/a=echo"],
             "both '/x'"),
            (["--listen", "192.0.2.1:0", "--route", "/a=echo"],   # not a local address
             "cannot listen on 192.0.2.1:0"),
            (["--config", "/nonexistent/wisp.conf"], "cannot read '/nonexistent/wisp.conf'"),
        ]
        for args, *needles in cases:
            with self.subTest(args=args):
                self.assert_fails(args, *needles)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind((HOST, 0))
            s.listen()
            port = s.getsockname()[1]
            err = self.assert_fails(["--listen", "%s:%d" % (HOST, port), "--route", "/e=echo"],
                                    "cannot listen on 127.0.0.1:%d" % port, "in use")
            # the second listener is the one in use: still one message, and nothing on stdout
            self.assert_fails(["--listen", "%s:0" % HOST, "--listen", "%s:%d" % (HOST, port),
                               "--route", "/e=echo"], "127.0.0.1:%d" % port)
        self.assertNotIn("listening", err)

    def test_missing_or_bad_certificate(self):
        d = tempfile.mkdtemp(prefix="wisp-cert-")
        try:
            missing = os.path.join(d, "missing.pem")
            self.assert_fails(["--listen-tls", "%s:0" % HOST, "--cert", missing, "--key", missing,
                               "--route", "/e=echo"], "--cert", missing,
                              "No such file or directory")
            junk = os.path.join(d, "junk.pem")
            with open(junk, "w") as f:
                f.write("not a certificate\n")
            self.assert_fails(["--listen-tls", "%s:0" % HOST, "--cert", junk, "--key", junk,
                               "--route", "/e=echo"], "cannot listen on 127.0.0.1:0 (tls)", junk)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_list_modules(self):
        rc, out, err = run_wisp("--list-modules")
        self.assertEqual(rc, 0, err)
        names = [line.split()[0] for line in out.splitlines()]
        self.assertIn("echo", names)
        self.assertIn("broadcast", names)
        self.assertEqual(len(names), len(set(names)))
        for line in out.splitlines():
            self.assertGreater(len(line.split(None, 1)), 1, "no description: %r" % line)


# ---- config files ----------------------------------------------------------------------------

class ConfigTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="wisp-conf-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, text, name="wisp.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_values_applied_and_command_line_adds_and_overrides(self):
        conf = self.write(
            "# a comment\n"
            "\n"
            "listen = 127.0.0.1:0\n"
            "   route = /echo=echo   \n"
            "\tmax-message = 1K\n"
            "metrics-path = /m1\n"
            "no-health\n"
            "workers = 1\n"
            "log-level = debug\n")
        # after --config: one more route, another metrics path, a quieter log
        with Wisp("--config", conf, "--route", "/b=broadcast", "--metrics-path", "/m2",
                  "--log-level", "warn", listeners=1, defaults=False) as srv:
            async def go():
                async with wisptest.ws_connect(srv, "/echo") as ws:
                    await ws.send("x" * 1024)
                    self.assertEqual(await recv(ws), "x" * 1024)
                    await ws.send("x" * 1025)   # over max-message from the file
                    with self.assertRaises(websockets.ConnectionClosed):
                        await recv(ws)
                    self.assertEqual(ws.close_code, 1009)
                async with wisptest.ws_connect(srv, "/b") as ws:
                    await ws.send("alone")
            wisptest.run(go(), 20)
            self.assertEqual(wisptest.http_get(srv.port, "/m1")[0], 404)
            self.assertEqual(srv.metrics("/m2")["wisp_workers"], 1)
            self.assertEqual(wisptest.http_get(srv.port, "/healthz")[0], 404)
            self.assertEqual(srv.stop(), 0)
        self.assertNotIn("wisp: info:", srv.stderr())
        self.assertNotIn("wisp: debug:", srv.stderr())

    def test_config_after_options_overrides_them(self):
        conf = self.write("workers = 1\n")
        with Wisp("--workers", "2", "--route", "/e=echo", "--config", conf) as srv:
            self.assertEqual(srv.metrics()["wisp_workers"], 1)

    def test_errors_name_the_file_and_line(self):
        cases = [
            ("listen = 127.0.0.1:0\n# fine\nbogus = 1\n", ":3: unknown option 'bogus'"),
            ("\nworkers = many\n", ":2: workers: invalid value 'many'"),
            ("no-health = yes\n", ":1: no-health is a flag and takes no value"),
            ("route\n", ":1: route needs a value"),
            ("route =\n", ":1: route needs a value"),
            ("config = other.conf\n", ":1: 'config' works on the command line only"),
            ("route = /a=echo\nroute = /a=echo\n", "route path clash", ":1 and by ", ":2"),
            ("route = /x=nope\n", ":1: unknown module 'nope'"),
            ("listen = 1.2.3.4\n", ":1: listen: '1.2.3.4': expected ADDR:PORT"),
        ]
        for text, *needles in cases:
            with self.subTest(text=text):
                conf = self.write(text)
                rc, out, err = run_wisp("--config", conf)
                self.assertEqual(rc, 1, err)
                self.assertIn(conf, err)
                for n in needles:
                    self.assertIn(n, err)
                self.assertEqual(len([l for l in err.splitlines()
                                      if l.startswith("wisp: error:")]), 1, err)


# ---- one server: echo, broadcast, metrics, health ------------------------------------------------

class ServerTest(wisptest.WispTestCase):
    server_class = Wisp
    server_args = ("--route", "/echo=echo", "--route", "/b=broadcast",
                   "--route", "/b2=broadcast", "--route", "/b3=broadcast",
                   "--log-level", "debug")

    def test_listening_lines(self):
        hosts = [(h, tls) for h, _, tls in self.server.listeners]
        self.assertEqual(hosts, [("127.0.0.1", False)])
        err = self.server.stderr()
        self.assertIn("wisp: info: route /echo: module echo", err)
        self.assertIn("wisp: info: listening on 127.0.0.1:%d" % self.server.port, err)

    def test_echo(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                for m in ("hello", "€😀", b"\x00\x01binary", "", b"", "x" * 100000):
                    await ws.send(m)
                    self.assertEqual(await recv(ws), m)
                await ws.close(1000, "bye")
                self.assertEqual(ws.close_code, 1000)
        wisptest.run(go(), 20)

    def test_ipv6_listener(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError as e:
            self.skipTest("no IPv6 loopback: %s" % e)
        with Wisp("--listen", "%s:0" % HOST, "--listen", "[::1]:0", "--route", "/echo=echo") as srv:
            self.assertEqual([h for h, _, _ in srv.listeners], ["127.0.0.1", "[::1]"])

            async def go():
                async with websockets.connect("ws://[::1]:%d/echo" % srv.listeners[1][1],
                                              open_timeout=10, ping_interval=None) as ws:
                    await ws.send("v6")
                    self.assertEqual(await recv(ws), "v6")
            wisptest.run(go(), 20)
            self.assertEqual(srv.stop(), 0, srv.stderr())

    def test_unrouted_path_is_404(self):
        self.assertEqual(wisptest.http_get(self.server.port, "/nowhere")[0], 404)

    def test_broadcast_reaches_the_others_not_the_sender(self):
        async def go():
            conns = [await wisptest.ws_connect(self.server, "/b") for _ in range(3)]
            other_route = await wisptest.ws_connect(self.server, "/b2")
            a, b, c = conns
            try:
                # Membership is in place once a connection is open; still, resend until both
                # receivers have one (each copy they get is the sender's, unchanged).
                got = {}
                for i in range(50):
                    await a.send("hi %d" % i)
                    for name, ws in (("b", b), ("c", c)):
                        if name not in got:
                            try:
                                got[name] = await asyncio.wait_for(ws.recv(), 0.2)
                            except asyncio.TimeoutError:
                                pass
                    if len(got) == 2:
                        break
                self.assertEqual(sorted(got), ["b", "c"], "receivers never got a broadcast")
                self.assertRegex(got["b"], r"^hi \d+$")
                sent = i + 1
                # drain what the resends produced, in order
                for ws, first in ((b, got["b"]), (c, got["c"])):
                    n = int(first.split()[1])
                    while n < sent - 1:
                        n += 1
                        self.assertEqual(await recv(ws), "hi %d" % n)
                # binary from b: a and c get it exactly, b does not
                payload = os.urandom(70000)
                await b.send(payload)
                self.assertEqual(await recv(a), payload)
                self.assertEqual(await recv(c), payload)
                # the sender got none of its own messages, the other route nothing at all
                for ws in (a, b, other_route):
                    with self.assertRaises(asyncio.TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.5)
            finally:
                for ws in conns + [other_route]:
                    await ws.close()
        wisptest.run(go(), 40)

    def test_metrics_move_with_traffic(self):
        before = self.server.metrics()
        for name in ("wisp_connections", "wisp_connections_accepted_total",
                     "wisp_connections_refused_total", "wisp_handshake_failures_total",
                     "wisp_websockets_opened_total", "wisp_messages_received_total",
                     "wisp_received_bytes_total", "wisp_messages_sent_total",
                     "wisp_sent_bytes_total", "wisp_messages_dropped_total",
                     "wisp_throttled_total", "wisp_actors", "wisp_mailbox_messages",
                     "wisp_mailbox_max_depth", "wisp_ring_overflows_total",
                     "wisp_recv_buffer_waits_total", "wisp_published_messages_total",
                     "wisp_topics", "wisp_workers", 'wisp_build_info{version="%s"}'
                     % run_wisp("--version")[1].split()[1], "process_start_time_seconds",
                     'wisp_websockets_closed_total{code="1000"}',
                     'wisp_websockets_closed_total{code="1001"}',
                     'wisp_websockets_closed_total{code="4xxx"}',
                     'wisp_websockets_closed_total{code="other"}'):
            self.assertIn(name, before)
        self.assertEqual(before["wisp_workers"], 2)
        self.assertAlmostEqual(before["process_start_time_seconds"], time.time(), delta=600)

        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send("count me")
                self.assertEqual(await recv(ws), "count me")
                await ws.close(1000)
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.close(4321)
        wisptest.run(go(), 20)

        def moved():
            m = self.server.metrics()
            ok = (m["wisp_messages_received_total"] >= before["wisp_messages_received_total"] + 1
                  and m["wisp_received_bytes_total"] >= before["wisp_received_bytes_total"] + 8
                  and m["wisp_messages_sent_total"] >= before["wisp_messages_sent_total"] + 1
                  and m["wisp_sent_bytes_total"] >= before["wisp_sent_bytes_total"] + 8
                  and m["wisp_websockets_opened_total"] >= before["wisp_websockets_opened_total"]
                  + 2
                  and m["wisp_connections_accepted_total"]
                  >= before["wisp_connections_accepted_total"] + 2
                  and m['wisp_websockets_closed_total{code="1000"}']
                  >= before['wisp_websockets_closed_total{code="1000"}'] + 1
                  and m['wisp_websockets_closed_total{code="4xxx"}']
                  >= before['wisp_websockets_closed_total{code="4xxx"}'] + 1)
            return m if ok else None
        wisptest.wait_until(moved, 10, what="the counters to move")

    def test_metrics_count_broadcasts(self):
        before = self.server.metrics()["wisp_published_messages_total"]

        async def go():
            async with wisptest.ws_connect(self.server, "/b3") as a, \
                    wisptest.ws_connect(self.server, "/b3") as b:
                await a.send("to b")
                self.assertEqual(await recv(b), "to b")
                await b.send(b"to a")
                self.assertEqual(await recv(a), b"to a")
        wisptest.run(go(), 20)
        wisptest.wait_until(
            lambda: self.server.metrics()["wisp_published_messages_total"] >= before + 2,
            10, what="wisp_published_messages_total to move")

    def test_health(self):
        status, headers, body = wisptest.http_get(self.server.port, "/healthz")
        self.assertEqual((status, body), (200, b"ok"))
        r = wisptest.http_exchange(self.server.port,
                                   b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0"
                                   b"\r\n\r\n")
        self.assertEqual(r.status, 405)
        r = wisptest.http_exchange(self.server.port,
                                   b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(r.status, 405)

    def test_websocket_on_metrics_path_is_refused(self):
        with self.assertRaises(AssertionError):
            wisptest.RawWS(self.server.port, "/metrics")


# ---- shutdown --------------------------------------------------------------------------------

class ShutdownTest(unittest.TestCase):

    def test_sigterm_closes_clients_with_1001_and_exits_0(self):
        with Wisp("--route", "/echo=echo", "--route", "/b=broadcast") as srv:
            clients = [wisptest.RawWS(srv.port, p) for p in ("/echo", "/echo", "/b")]
            try:
                clients[0].send_frame(wisptest.OP_TEXT, b"still here")
                self.assertEqual(clients[0].read_message(), (wisptest.OP_TEXT, b"still here"))
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)
                for c in clients:
                    c.expect_close(1001, timeout=10)
                rc = srv.proc.wait(15)
                self.assertEqual(rc, 0, srv.stderr())
                self.assertLess(time.monotonic() - t0, 10)
            finally:
                for c in clients:
                    c.close()
        self.assertIn("wisp: info: stopped", srv.stderr())

    def test_sigint_with_a_silent_client_exits_0(self):
        with Wisp("--route", "/echo=echo", "--close-ms", "500") as srv:
            c = wisptest.RawWS(srv.port, "/echo")
            try:
                srv.signal(signal.SIGINT)
                self.assertEqual(c.read_close(10)[0], 1001)   # and never answer it
                self.assertEqual(srv.proc.wait(15), 0, srv.stderr())
            finally:
                c.close()


# ---- TLS -----------------------------------------------------------------------------------------

@unittest.skipUnless(shutil.which("openssl"), "no openssl command")
class TLSTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="wisp-tls-")
        make_cert(cls.pki)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, ignore_errors=True)

    def test_tls_and_plain_listeners(self):
        cert, key = os.path.join(self.pki, "cert.pem"), os.path.join(self.pki, "key.pem")
        with Wisp("--listen-tls", "%s:0" % HOST, "--listen", "%s:0" % HOST, "--cert", cert,
                  "--key", key, "--route", "/echo=echo") as srv:
            self.assertEqual([tls for _, _, tls in srv.listeners], [True, False])
            ctx = ssl.create_default_context(cafile=cert)

            async def go():
                async with websockets.connect("wss://localhost:%d/echo" % srv.tls_port(),
                                              ssl=ctx, open_timeout=10,
                                              ping_interval=None) as ws:
                    await ws.send("over tls")
                    self.assertEqual(await recv(ws), "over tls")
                    await ws.close(1000)
                async with wisptest.ws_connect(srv, "/echo") as ws:
                    await ws.send("plain")
                    self.assertEqual(await recv(ws), "plain")
            wisptest.run(go(), 30)
            self.assertEqual(srv.stop(), 0, srv.stderr())


# ---- loaded modules ----------------------------------------------------------------------------

MODULE_SOURCES = {
    "nosym": "int not_a_module = 1;\n",
    "small": "#include <stdint.h>\n"
             "__attribute__((visibility(\"default\"))) const struct { uint32_t a, s; "
             "const char *n; } wisp_module_v1 = {1, 12, \"small\"};\n",
    "badname": "#include <wisp/module.h>\n"
               "static int m(struct wisp_runtime *rt, struct wisp_route *r, const char *a, "
               "void **i) { return 0; }\n"
               "WISP_MODULE_DEFINE(.name = \"bad name!\", .mount = m);\n",
    "taken": "#include <wisp/module.h>\n"
             "static int m(struct wisp_runtime *rt, struct wisp_route *r, const char *a, "
             "void **i) { return 0; }\n"
             "WISP_MODULE_DEFINE(.name = \"echo\", .mount = m);\n",
    "failing": "#include <errno.h>\n#include <stdio.h>\n#include <wisp/module.h>\n"
               "static int m(struct wisp_runtime *rt, struct wisp_route *r, const char *a, "
               "void **i) { fprintf(stderr, \"failing: no way\\n\"); return -EPERM; }\n"
               "WISP_MODULE_DEFINE(.name = \"failing\", .mount = m);\n",
    "empty": "#include <wisp/module.h>\n"
             "static int m(struct wisp_runtime *rt, struct wisp_route *r, const char *a, "
             "void **i) { return 0; }\n"
             "WISP_MODULE_DEFINE(.name = \"empty\", .mount = m);\n",
}


@unittest.skipUnless(shutil.which("cc"), "no C compiler")
class ModuleTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="wisp-mod-")
        cls.so = {}
        hello = os.path.join(ROOT, "tests", "modules", "hello.c")
        cls.build("hello", hello)
        cls.build("hello99", hello, "-DWISP_MODULE_ABI_VERSION_OVERRIDE=99")
        for name, text in MODULE_SOURCES.items():
            src = os.path.join(cls.dir, name + ".c")
            with open(src, "w") as f:
                f.write(text)
            cls.build(name, src)

    @classmethod
    def build(cls, name, src, *extra):
        out = os.path.join(cls.dir, name + ".so")
        subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-I", os.path.join(ROOT, "include"),
                        *extra, "-o", out, src], check=True, capture_output=True, timeout=60)
        cls.so[name] = out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def refused(self, name, *needles, route="/m=echo"):
        rc, out, err = run_wisp("--module", self.so[name], "--route", route)
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        for n in needles:
            self.assertIn(n, err)
        return err

    def test_hello_module_answers(self):
        with Wisp("--module", self.so["hello"], "--route", "/hello=hello",
                  "--route", "/hi=hello:bonjour") as srv:
            async def go():
                async with wisptest.ws_connect(srv, "/hello") as ws:
                    await ws.send("world")
                    self.assertEqual(await recv(ws), "hello, world")
                    await ws.send("x" * 1000)
                    self.assertEqual(await recv(ws), "hello, " + "x" * 1000)
                async with wisptest.ws_connect(srv, "/hi") as ws:
                    await ws.send("monde")
                    self.assertEqual(await recv(ws), "bonjour, monde")
            wisptest.run(go(), 20)
            self.assertEqual(srv.stop(), 0, srv.stderr())

    def test_relative_module_path_is_the_current_directory(self):
        rc, out, err = run_wisp("--module", "hello.so", "--list-modules", cwd=self.dir)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^hello +answers each text .*\[hello\.so\]$")

    def test_refusals(self):
        self.refused("hello99", "ABI version 99", "ABI version 1")
        self.refused("nosym", "no symbol 'wisp_module_v1'")
        self.refused("small", "is 12 bytes", "at least")
        self.refused("badname", "bad module name 'bad name!'")
        self.refused("taken", "the name 'echo' is taken by a built-in module")
        err = self.refused("failing", "failing: no way", "could not mount /m",
                           route="/m=failing")
        self.assertIn("Operation not permitted", err)
        self.refused("empty", "mounted nothing on /m", route="/m=empty")
        rc, _, err = run_wisp("--module", self.so["hello"], "--module", self.so["hello"],
                              "--route", "/h=hello")
        self.assertEqual(rc, 1)
        self.assertIn("the name 'hello' is taken by the module in %s" % self.so["hello"], err)
        rc, _, err = run_wisp("--module", os.path.join(self.dir, "nothing.so"),
                              "--route", "/h=hello")
        self.assertEqual(rc, 1)
        self.assertIn("cannot load it", err)


# ---- static files ------------------------------------------------------------------------------

class StaticTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if "static" not in built_modules():
            raise unittest.SkipTest("this wisp has no static module")
        cls.dir = tempfile.mkdtemp(prefix="wisp-static-")
        with open(os.path.join(cls.dir, "hello.txt"), "w") as f:
            f.write("hello from disk\n")
        os.mkdir(os.path.join(cls.dir, "sub"))
        with open(os.path.join(cls.dir, "sub", "deep.txt"), "w") as f:
            f.write("deep\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_static_prefix_and_root(self):
        other = tempfile.mkdtemp(prefix="wisp-static2-")
        try:
            with open(os.path.join(other, "index.txt"), "w") as f:
                f.write("root\n")
            with Wisp("--static", "/files=%s" % self.dir, "--static", "/=%s" % other,
                      "--route", "/echo=echo") as srv:
                status, _, body = wisptest.http_get(srv.port, "/files/hello.txt")
                self.assertEqual((status, body), (200, b"hello from disk\n"))
                status, _, body = wisptest.http_get(srv.port, "/files/sub/deep.txt")
                self.assertEqual((status, body), (200, b"deep\n"))
                status, _, body = wisptest.http_get(srv.port, "/index.txt")
                self.assertEqual((status, body), (200, b"root\n"))
                self.assertEqual(wisptest.http_get(srv.port, "/files/nope.txt")[0], 404)
                # exact routes and the monitoring ones still win over "*"
                status, _, body = wisptest.http_get(srv.port, "/healthz")
                self.assertEqual((status, body), (200, b"ok"))

                async def go():
                    async with wisptest.ws_connect(srv, "/echo") as ws:
                        await ws.send("beside files")
                        self.assertEqual(await recv(ws), "beside files")
                wisptest.run(go(), 20)
                self.assertEqual(srv.stop(), 0, srv.stderr())
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_static_missing_directory(self):
        rc, out, err = run_wisp("--static", "/=/nonexistent-wisp-dir")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent-wisp-dir", err)
        self.assertIn("could not mount *", err)


if __name__ == "__main__":
    wisptest.main(budget=240)
