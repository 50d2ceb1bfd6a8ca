"""wisp's client role (through examples/wisp-cat) against servers written with Python's
websockets: echo, fragmented messages, subprotocols, close codes both ways, refusals, and
failures before the connection opens."""

import asyncio
import http
import os
import socket
import subprocess
import threading
import time
import unittest

import websockets

import wisptest

CAT = os.environ.get("WISP_CAT")


class PyServer:
    """A websockets server on 127.0.0.1:free port, in a thread with its own event loop."""

    def __init__(self, handler, **kw):
        self.handler = handler
        self.kw = kw
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(self.handler, "127.0.0.1", 0, **self.kw)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.server.wait_closed()
        self.loop.run_until_complete(main())

    def __enter__(self):
        self.thread.start()
        if not self.ready.wait(10):
            raise AssertionError("python server did not start")
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(10)


def cat(url, lines, *args, timeout=20):
    """Run wisp-cat with the lines on stdin; (exit status, stdout lines, stderr)."""
    p = subprocess.run([CAT, *args, url], input="".join(l + "\n" for l in lines).encode(),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode().splitlines(), p.stderr.decode()


async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)


@unittest.skipUnless(CAT, "WISP_CAT not set")
class ClientTest(unittest.TestCase):

    def test_echo_against_python(self):
        with PyServer(echo) as s:
            lines = ["hello", "", "héllo wörld €", "x" * 100000]
            rc, out, err = cat("ws://127.0.0.1:%d/any?q=1" % s.port, lines)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, lines)
            self.assertIn("closed 1000", err)

    def test_name_resolution(self):
        with PyServer(echo) as s:
            rc, out, err = cat("ws://localhost:%d/" % s.port, ["by name"])
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, ["by name"])

    def test_fragmented_and_binary_from_server(self):
        async def h(ws, path=None):
            async for m in ws:
                await ws.send([m[:2], m[2:4], m[4:]])  # three fragments
                await ws.send(b"\x00\x01\x02")
        with PyServer(h) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["abcdefgh"], "--expect", "2")
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, ["abcdefgh", "[binary 3 bytes]"])

    def test_request_hook_headers_and_response_hook(self):
        seen = {}

        async def h(ws, path=None):
            seen["auth"] = ws.request_headers.get("Authorization")
            seen["x"] = ws.request_headers.get("X-Trace")
            async for m in ws:
                await ws.send(m)
        with PyServer(h, subprotocols=["chat"]) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["h"], "--header",
                               "Authorization: Bearer abc", "--header", "X-Trace:42",
                               "--protocol", "chat")
            self.assertEqual(rc, 0, err)
        self.assertEqual(seen, {"auth": "Bearer abc", "x": "42"})
        self.assertIn("connected (HTTP 101, subprotocol chat)", err)

    def test_handshake_deadline(self):
        # A server that accepts TCP and never answers the upgrade.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        try:
            t0 = time.monotonic()
            rc, out, err = cat("ws://127.0.0.1:%d/" % port, ["x"], "--timeout", "700")
            took = time.monotonic() - t0
        finally:
            srv.close()
        self.assertEqual(rc, 1)
        self.assertIn("did not open in time", err)
        self.assertLess(took, 5)

    def test_tls_client_to_a_plain_server(self):
        with PyServer(echo) as s:
            rc, out, err = cat("wss://127.0.0.1:%d/" % s.port, ["x"], "--timeout", "3000")
        self.assertEqual(rc, 1)
        self.assertIn("TLS", err)

    def test_subprotocol(self):
        seen = {}

        async def h(ws, path=None):
            seen["proto"] = ws.subprotocol
            async for m in ws:
                await ws.send("%s:%s" % (ws.subprotocol, m))
        with PyServer(h, subprotocols=["chat"]) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["m"], "--protocol", "chat")
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, ["chat:m"])

    def test_server_initiated_close(self):
        async def h(ws, path=None):
            await ws.recv()
            await ws.close(4001, "go away")
        with PyServer(h) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["first"])
            self.assertEqual(rc, 0, err)
            self.assertIn('closed 4001 "go away" by peer', err)

    def test_client_close_code_reaches_server(self):
        got = {}

        async def h(ws, path=None):
            try:
                async for m in ws:
                    await ws.send(m)
            finally:
                got["code"], got["reason"] = ws.close_code, ws.close_reason
        with PyServer(h) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["a"])
            self.assertEqual(rc, 0, err)
        self.assertEqual(got, {"code": 1000, "reason": "bye"})

    def test_refused_upgrade(self):
        async def h(ws, path=None):
            pass

        async def refuse(path, headers):
            return http.HTTPStatus.FORBIDDEN, [], b"no\n"
        with PyServer(h, process_request=refuse) as s:
            rc, out, err = cat("ws://127.0.0.1:%d/" % s.port, ["x"])
            self.assertEqual(rc, 1)
            self.assertIn("status 403", err)

    def test_connection_refused(self):
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]  # bound, not listening: connect is refused
            rc, out, err = cat("ws://127.0.0.1:%d/" % port, [])
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect", err)

    def test_unknown_host(self):
        rc, out, err = cat("ws://no-such-host.invalid/", [])
        self.assertEqual(rc, 1)

    def test_not_websocket(self):
        # A plain TCP server that answers HTTP 200: the client must refuse it.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]

        def answer():
            c, _ = srv.accept()
            c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            c.close()
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        rc, out, err = cat("ws://127.0.0.1:%d/" % port, ["x"])
        srv.close()
        self.assertEqual(rc, 1)
        self.assertIn("status 200", err)

    def test_wss_against_python(self):
        import shutil
        import ssl
        import tempfile
        from test_tls import make_pki
        if not shutil.which("openssl"):
            self.skipTest("no openssl command")
        d = tempfile.mkdtemp(prefix="wisp-client-tls-")
        try:
            make_pki(d)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
            with PyServer(echo, ssl=ctx) as s:
                rc, out, err = cat("wss://localhost:%d/" % s.port, ["secure", "z" * 50000],
                                   "--ca", os.path.join(d, "ca.pem"))
                self.assertEqual(rc, 0, err)
                self.assertEqual(out, ["secure", "z" * 50000])
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_against_wisp_server(self):
        srv = wisptest.Server(workers=2).start()
        try:
            rc, out, err = cat("ws://127.0.0.1:%d/echo" % srv.port, ["to wisp", "y" * 70000])
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, ["to wisp", "y" * 70000])
        finally:
            self.assertEqual(srv.stop(10), 0)


if __name__ == "__main__":
    wisptest.main(budget=100)
