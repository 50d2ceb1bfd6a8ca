"""The low-level frame hooks, zero-copy sends, a second (IPv6) listener on the same runtime, and
running out of file descriptors."""

import asyncio
import os
import socket
import time
import unittest

import websockets

import wisptest
from wisptest import OP_CONT, OP_TEXT, RawWS


def ref_pattern(n):
    return bytes((i * 13 + 5) & 0xFF for i in range(n))


class HooksTest(wisptest.ServerTestCase):

    def test_on_frame_drops_and_alters(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/hooks") as ws:
                await ws.send("drop this")      # never reaches on_text
                await ws.send("alter me")       # reaches on_text as "altered"
                await ws.send("plain")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "altered")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "plain")
        wisptest.run(go(), 20)

    def test_on_frame_sees_pieces_and_messages_are_reassembled(self):
        c = RawWS(self.server.port, "/hooks")
        try:
            c.send_frame(OP_TEXT, b"abc", fin=False)
            c.send_frame(OP_CONT, b"def", fin=False)
            c.send_frame(OP_CONT, b"ghi", fin=True)
            fin, op, payload = c.read_frame(5)
            self.assertEqual((fin, op, payload), (True, OP_TEXT, b"abcdefghi"))
        finally:
            c.rst()

    def test_on_send_frame_drops(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/hooks") as ws:
                await ws.send("secret: not echoed")
                await ws.send("public")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "public")
        wisptest.run(go(), 20)

    def test_send_ref_without_copy_is_released_once(self):
        before = self.stats()["released"]

        async def go():
            async with wisptest.ws_connect(self.server, "/ref") as ws:
                for n in (0, 10, 300000, 4 << 20):
                    await ws.send("ref %d" % n)
                    got = await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(len(got), n)
                    self.assertTrue(got == ref_pattern(n), "payload of %d bytes differs" % n)
        wisptest.run(go(), 30)
        wisptest.stats_wait(self.server, lambda s: s["released"] == before + 4, timeout=5,
                            what="one release per zero-copy send")

    def test_send_ref_released_when_the_peer_vanishes(self):
        before = self.stats()["released"]
        c = RawWS(self.server.port, "/ref", rcvbuf=4096)
        c.send_frame(OP_TEXT, b"ref 4194304")
        wisptest.stats_wait(self.server, lambda s: s["opened"] > s["closed"], timeout=5,
                            what="the connection to be open")
        c.rst()  # gone mid-send: the queued reference must still be released
        wisptest.stats_wait(self.server, lambda s: s["released"] == before + 1, timeout=10,
                            what="the reference released after the reset")

    def test_second_listener_on_ipv6(self):
        port6 = self.stats()["port6"]
        if not port6:
            self.skipTest("no IPv6 loopback here")

        async def go():
            async with websockets.connect("ws://[::1]:%d/echo" % port6, open_timeout=10,
                                          ping_interval=None) as ws:
                await ws.send("over ipv6")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "over ipv6")
        wisptest.run(go(), 20)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in ticks of 10 ms


class FdLimitTest(unittest.TestCase):

    def test_emfile_backs_off_and_recovers(self):
        # 48 descriptors: after a dozen for the runtime, the rest run out fast. The connection
        # limit is set higher, so it is EMFILE, not the limit, that stops accepting.
        srv = wisptest.Server("--max-conns", 1000, nofile=48).start()
        held = []
        try:
            for _ in range(80):
                held.append(socket.create_connection((wisptest.HOST, srv.port), timeout=5))
            fds = "/proc/%d/fd" % srv.proc.pid
            wisptest.wait_until(lambda: len(os.listdir(fds)) >= 48, 10, 0.05,
                                "the server to use all 48 descriptors")
            # Out of descriptors: accepting pauses (backs off) instead of spinning.
            t0, c0 = time.monotonic(), cpu_seconds(srv.proc.pid)
            time.sleep(1.0)
            busy = (cpu_seconds(srv.proc.pid) - c0) / (time.monotonic() - t0)
            self.assertLess(busy, 0.3, "the server used %.0f%% of a CPU while out of fds"
                            % (busy * 100))
            self.assertIsNone(srv.proc.poll(), "the server died")
            for s in held:
                s.close()
            held = []
            # Descriptors come back as those connections end; accepting resumes.
            wisptest.wait_until(lambda: wisptest.http_get(srv.port, "/health", 2)[0] == 200,
                                15, 0.2, "/health to answer again")
        finally:
            for s in held:
                s.close()
            self.assertEqual(srv.stop(10), 0)


if __name__ == "__main__":
    wisptest.main(budget=100)
