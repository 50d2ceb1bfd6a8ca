"""The opening handshake: subprotocols, on_upgrade refusals, malformed requests over raw sockets,
plain HTTP routes, the connection limit and the handshake deadline (slowloris)."""

import asyncio
import json
import socket
import time

import websockets

import wisptest
from wisptest import RawWS, Server, http_exchange, http_get, upgrade_request


class HandshakeTest(wisptest.ServerTestCase):

    # ---- subprotocols ----------------------------------------------------------------------

    def proto(self, offer, extra_headers=None):
        """Connect to /proto offering `offer`; return (client-side protocol, server-side
        protocol, response headers)."""
        async def go():
            kw = {}
            if offer is not None:
                kw["subprotocols"] = offer
            if extra_headers:
                kw["extra_headers"] = extra_headers
            async with wisptest.ws_connect(self.server, "/proto", **kw) as ws:
                await ws.send("which?")
                server_side = await asyncio.wait_for(ws.recv(), 5)
                return ws.subprotocol, server_side, ws.response_headers
        return wisptest.run(go(), 15)

    def test_protocol_single(self):
        client, server, _ = self.proto(["chat"])
        self.assertEqual(client, "chat")
        self.assertEqual(server, "chat")

    def test_protocol_route_preference(self):
        client, server, _ = self.proto(["x", "superchat", "chat"])
        self.assertEqual(client, "superchat")
        self.assertEqual(server, "superchat")

    def test_protocol_route_preference_over_client_order(self):
        # server.h: the route's protocols are "in order of preference" and the default pick is
        # "the first of the route's protocols the client offered".
        client, server, _ = self.proto(["chat", "superchat"])
        self.assertEqual(client, "superchat")
        self.assertEqual(server, "superchat")

    def test_protocol_chosen_by_on_upgrade(self):
        client, server, headers = self.proto(["chat", "special"])
        self.assertEqual(client, "special")
        self.assertEqual(server, "special")
        self.assertEqual(headers.get("X-Wisp-Test"), "1")

    def test_protocol_only_special(self):
        client, server, headers = self.proto(["special"])
        self.assertEqual(client, "special")
        self.assertEqual(headers.get("X-Wisp-Test"), "1")

    def test_protocol_none_offered(self):
        client, server, headers = self.proto(None)
        self.assertIsNone(client)
        self.assertEqual(server, "(none)")
        self.assertIsNone(headers.get("Sec-WebSocket-Protocol"))
        self.assertIsNone(headers.get("X-Wisp-Test"))

    def test_protocol_no_match(self):
        client, server, headers = self.proto(["x", "y"])
        self.assertIsNone(client)
        self.assertEqual(server, "(none)")
        self.assertIsNone(headers.get("Sec-WebSocket-Protocol"))

    def test_protocol_case_sensitive(self):
        client, server, _ = self.proto(["Chat", "CHAT"])
        self.assertIsNone(client)

    # ---- on_upgrade refusal ------------------------------------------------------------------

    def test_reject_without_header(self):
        async def go():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                async with wisptest.ws_connect(self.server, "/reject"):
                    pass
            self.assertEqual(cm.exception.status_code, 403)
        wisptest.run(go(), 10)
        # raw: the refusal closes the connection
        with wisptest.connect(self.server.port) as s:
            s.sendall(upgrade_request("/reject", self.server.port))
            r = wisptest.read_response(s)
            self.assertEqual(r.status, 403)
            wisptest.wait_eof(s, 5)

    def test_reject_wrong_value(self):
        r = http_exchange(self.server.port, upgrade_request("/reject", self.server.port,
                                                            headers=[("X-Allow", "no")]))
        self.assertEqual(r.status, 403)

    def test_accept_with_header(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/reject",
                                           extra_headers={"X-Allow": "yes"}) as ws:
                await ws.send("allowed")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "allowed")
        wisptest.run(go(), 10)

    # ---- malformed upgrades ------------------------------------------------------------------

    def expect_status(self, request, status):
        r = http_exchange(self.server.port, request)
        self.assertEqual(r.status, status, "answer %d %r to %r" % (r.status, r.body, request))
        return r

    def test_missing_key(self):
        self.expect_status(upgrade_request("/echo", self.server.port,
                                           omit={"sec-websocket-key"}), 400)

    def test_bad_key(self):
        self.expect_status(upgrade_request("/echo", self.server.port, key="c2hvcnQ="), 400)

    def test_version_8(self):
        r = self.expect_status(upgrade_request("/echo", self.server.port, version="8"), 426)
        self.assertEqual(r.header("sec-websocket-version"), "13")

    def test_missing_version(self):
        self.expect_status(upgrade_request("/echo", self.server.port,
                                           omit={"sec-websocket-version"}), 400)

    def test_missing_host(self):
        self.expect_status(upgrade_request("/echo", self.server.port, omit={"host"}), 400)

    def test_http10(self):
        self.expect_status(upgrade_request("/echo", self.server.port, http="HTTP/1.0"), 400)

    def test_post_upgrade(self):
        r = self.expect_status(upgrade_request("/echo", self.server.port, method="POST"), 405)
        self.assertEqual(r.header("allow"), "GET")

    def test_oversize_head(self):
        req = upgrade_request("/echo", self.server.port,
                              headers=[("X-Filler-%d" % i, "f" * 100) for i in range(90)])
        self.assertGreater(len(req), 8192)
        self.expect_status(req, 431)

    def test_garbage(self):
        with wisptest.connect(self.server.port) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64)
            try:
                data = wisptest.wait_eof(s, 5)[1]
            except ConnectionResetError:
                data = b""
            if data:
                self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:60])

    def test_upgrade_unknown_path(self):
        self.expect_status(upgrade_request("/nope", self.server.port), 404)

    # ---- plain HTTP ----------------------------------------------------------------------------

    def test_plain_get_ws_route(self):
        status, headers, _ = http_get(self.server.port, "/echo")
        self.assertEqual(status, 426)
        self.assertIn(("sec-websocket-version", "13"), headers)

    def test_plain_get_unknown(self):
        status, _, _ = http_get(self.server.port, "/nope")
        self.assertEqual(status, 404)

    def test_health(self):
        status, headers, body = http_get(self.server.port, "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"ok")
        self.assertIn(("content-type", "text/plain"), headers)

    def test_health_with_query(self):
        status, _, body = http_get(self.server.port, "/health?x=1")
        self.assertEqual((status, body), (200, b"ok"))

    def test_stats_json(self):
        s = self.stats()
        for k in ("opened", "closed", "closed_by_why", "closed_codes", "throttled",
                  "unthrottled", "dropped", "max_buffered", "shutdown_calls"):
            self.assertIn(k, s)

    def test_http_after_upgrades(self):
        # The server keeps serving plain HTTP and WebSocket side by side.
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                status, _, body = await asyncio.get_running_loop().run_in_executor(
                    None, http_get, self.server.port, "/health")
                self.assertEqual((status, body), (200, b"ok"))
                await ws.send("x")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "x")
        wisptest.run(go(), 10)


class LimitsTest(wisptest.ServerTestCase):
    server_args = ("--handshake-ms", 500, "--max-conns", 6)

    def test_slowloris(self):
        port = self.server.port
        t0 = time.monotonic()
        slow = wisptest.connect(port, 10)
        slow.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websock")
        silent = wisptest.connect(port, 10)   # never sends a byte

        async def client():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                for i in range(5):
                    await ws.send("ping %d" % i)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "ping %d" % i)
                    await asyncio.sleep(0.2)   # stays open past the handshake deadline
        wisptest.run(client(), 15)

        for s in (slow, silent):
            with s:
                took, data = wisptest.wait_eof(s, 5)
                elapsed = time.monotonic() - t0
                self.assertGreaterEqual(elapsed, 0.4, "closed before the deadline")
                self.assertLess(elapsed, 4.0)
                if data:   # an answer (e.g. 408) is allowed, nothing else
                    self.assertTrue(data.startswith(b"HTTP/1.1 4"), data[:60])

    def test_max_connections(self):
        port = self.server.port

        async def go():
            # Wait for earlier connections of this class to be gone.
            await asyncio.sleep(0.2)
            conns = []
            try:
                for i in range(6):
                    conns.append(await wisptest.ws_connect(self.server, "/echo"))
                # the 7th TCP connection gets 503
                loop = asyncio.get_running_loop()
                r = await loop.run_in_executor(
                    None, http_exchange, port, upgrade_request("/echo", port))
                self.assertEqual(r.status, 503)
                # one leaves: room again
                await conns.pop().close()
                ok = False
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not ok:
                    try:
                        async with wisptest.ws_connect(self.server, "/echo") as ws:
                            await ws.send("in")
                            ok = await asyncio.wait_for(ws.recv(), 5) == "in"
                    except websockets.InvalidStatusCode as e:
                        self.assertEqual(e.status_code, 503)
                        await asyncio.sleep(0.05)
                self.assertTrue(ok, "no room after a connection closed")
            finally:
                for c in conns:
                    await c.close()
        wisptest.run(go(), 30)


if __name__ == "__main__":
    wisptest.main(budget=100)
