"""Connection lifecycle: peers that vanish mid-message, keep-alive timeouts, and the graceful
shutdown on SIGTERM with live clients."""

import asyncio
import signal
import time

import websockets

import wisptest
from wisptest import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, RawWS, Server, frame


class VanishTest(wisptest.ServerTestCase):

    def vanish(self, how):
        before = self.stats()
        c = RawWS(self.server.port, "/echo")
        c.send_frame(OP_TEXT, b"first")
        self.assertEqual(c.read_message(), (OP_TEXT, b"first"))
        # a binary frame announcing 1000 bytes, of which 10 arrive
        whole = frame(OP_BINARY, b"m" * 1000)
        c.send(whole[:2 + 2 + 4 + 10])
        time.sleep(0.1)
        if how == "rst":
            c.rst()
        else:
            c.close()
        return before

    def test_killed_mid_message_fin(self):
        before = self.vanish("fin")
        s = wisptest.stats_wait(
            self.server,
            lambda s: wisptest.why_count(s, wisptest.WHY_ABNORMAL)
            > wisptest.why_count(before, wisptest.WHY_ABNORMAL)
            and wisptest.code_count(s, 1006) > wisptest.code_count(before, 1006),
            what="an abnormal close with 1006")
        self.assertIn("abnormal", " ".join(s["closed_by_why"]).lower(),
                      "wisp_close_why_str(WISP_WHY_ABNORMAL): %r" % s["closed_by_why"])

    def test_killed_mid_message_rst(self):
        # server.h: a reset is WISP_WHY_IO_ERROR ("the socket failed (reset, ...): 1006"); a
        # reset that lands while no read is pending may also read as a plain EOF (ABNORMAL).
        before = self.vanish("rst")

        def gone(s):
            n = (wisptest.why_count(s, wisptest.WHY_IO_ERROR)
                 + wisptest.why_count(s, wisptest.WHY_ABNORMAL))
            n0 = (wisptest.why_count(before, wisptest.WHY_IO_ERROR)
                  + wisptest.why_count(before, wisptest.WHY_ABNORMAL))
            return n > n0 and wisptest.code_count(s, 1006) > wisptest.code_count(before, 1006)
        s = wisptest.stats_wait(self.server, gone, what="an io-error/abnormal close with 1006")
        print("RST gave: %s" % s["closed_by_why"])

    def test_vanish_during_handshake(self):
        # Half a request head, then gone: no connection was opened, nothing to report, and the
        # server keeps serving.
        before = self.stats()
        s = wisptest.connect(self.server.port)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        s.close()

        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send("ok")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "ok")
        wisptest.run(go(), 10)
        after = self.stats()
        self.assertEqual(after["opened"] - before["opened"], 1)


class KeepAliveTest(wisptest.ServerTestCase):
    server_args = ("--idle-ms", 300, "--pong-ms", 400)

    def test_silent_peer_times_out(self):
        before = self.stats()
        t0 = time.monotonic()
        with RawWS(self.server.port, "/echo") as c:
            f = c.read_frame(5)
            t_ping = time.monotonic() - t0
            self.assertIsNotNone(f, "EOF instead of a keep-alive ping")
            self.assertEqual(f[1], OP_PING)
            self.assertGreaterEqual(t_ping, 0.2)
            # never answer: the server hangs up after the pong timeout
            took, _ = wisptest.wait_eof(c.sock, 5)
            self.assertGreaterEqual(took, 0.25)
        wisptest.stats_wait(
            self.server,
            lambda s: wisptest.why_count(s, wisptest.WHY_TIMEOUT)
            > wisptest.why_count(before, wisptest.WHY_TIMEOUT),
            what="a timeout close")

    def test_answering_peer_stays(self):
        # websockets answers pings by itself: the connection outlives several idle periods.
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await asyncio.sleep(2.0)
                await ws.send("still open")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still open")
        wisptest.run(go(), 15)

    def test_raw_pong_keeps_alive(self):
        with RawWS(self.server.port, "/echo") as c:
            for _ in range(3):
                f = c.read_frame(5)
                self.assertEqual(f[1], OP_PING)
                c.send_frame(OP_PONG, f[2])
            c.send_frame(OP_TEXT, b"alive")
            while True:
                op, data = c.read_message(5)
                if op == OP_PING:
                    c.send_frame(OP_PONG, data)
                    continue
                self.assertEqual((op, data), (OP_TEXT, b"alive"))
                break


class ShutdownTest(wisptest.unittest.TestCase):

    def test_sigterm_with_live_clients(self):
        n = 20
        with Server("--close-ms", 1000, "--handshake-ms", 30000) as srv:
            # a peer that will never answer the server's close, and one stuck in its handshake
            silent = RawWS(srv.port, "/echo")
            half = wisptest.connect(srv.port, 10)
            half.sendall(b"GET /echo HTTP/1.1\r\n")

            async def go():
                conns = [await wisptest.ws_connect(srv, "/echo") for _ in range(n)]
                for i, ws in enumerate(conns):
                    await ws.send("hello %d" % i)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "hello %d" % i)
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)

                async def wait_close(ws):
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 10)
                    except websockets.ConnectionClosed:
                        pass
                    await asyncio.wait_for(ws.wait_closed(), 10)
                    return ws.close_code

                codes = await asyncio.gather(*(wait_close(ws) for ws in conns))
                return codes, t0

            codes, t_sig = wisptest.run(go(), 30)
            self.assertEqual(codes, [1001] * n)
            # the silent peer also got 1001 (and never answers)
            code, _ = silent.read_close(5)
            self.assertEqual(code, 1001)
            try:
                rc = srv.proc.wait(8)
            except Exception:
                self.fail("server still running 8 s after SIGTERM; stderr:\n" + srv.stderr())
            took = time.monotonic() - t_sig
            self.assertEqual(rc, 0, srv.stderr())
            # the silent peer costs close-ms (1 s); the deadline for the rest is 5 s
            self.assertLess(took, 4.5, "exit %.2f s after SIGTERM" % took)
            print("exit %.2f s after SIGTERM" % took)
            srv._finish()
            info = srv.exit_info
            self.assertIsNotNone(info, srv.stderr())
            self.assertEqual(info["opened"], n + 1)
            self.assertEqual(info["closed"], n + 1)
            self.assertEqual(info["shutdown_calls"], n + 1)
            wisptest.wait_eof(silent.sock, 5)
            wisptest.wait_eof(half, 5)
            silent.close()
            half.close()

    def test_sigterm_idle(self):
        with Server() as srv:
            srv.signal(signal.SIGTERM)
            try:
                rc = srv.proc.wait(5)
            except Exception:
                self.fail("idle server still running 5 s after SIGTERM")
            self.assertEqual(rc, 0, srv.stderr())

    def test_sigint(self):
        with Server() as srv:
            async def go():
                async with wisptest.ws_connect(srv, "/echo") as ws:
                    srv.signal(signal.SIGINT)
                    with self.assertRaises(websockets.ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 10)
                    return ws.close_code
            self.assertEqual(wisptest.run(go(), 15), 1001)
            self.assertEqual(srv.proc.wait(8), 0, srv.stderr())


if __name__ == "__main__":
    wisptest.main(budget=100)
