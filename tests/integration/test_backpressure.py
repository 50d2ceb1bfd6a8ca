"""Back pressure both ways: a client that never reads (the server throttles, stays under its send
cap and its memory stays bounded), and a slow actor (the server stops reading, loses nothing)."""

import asyncio
import os
import socket
import threading
import time

import wisptest
from wisptest import OP_BINARY, OP_TEXT, RawWS, frame

CAP = 4 << 20
HIGH = 1 << 20
LOW = 256 << 10
SIZE = 65536


def pattern(n):
    return bytes((i * 7 + 1) & 0xFF for i in range(n))


class FloodTest(wisptest.ServerTestCase):
    server_args = ("--send-cap", CAP, "--high", HIGH, "--low", LOW)

    def test_never_reading_client(self):
        srv = self.server
        before = self.stats()
        rss0 = srv.rss_bytes()
        # a small receive buffer so the kernel soaks up little and wisp must buffer/throttle
        c = RawWS(srv.port, "/flood", rcvbuf=64 << 10)
        try:
            c.send_frame(OP_TEXT, b"go 100000 65536")
            wisptest.stats_wait(srv, lambda s: s["throttled"] > before["throttled"],
                                timeout=15, what="throttled")
            # The kernel's socket buffers absorb some megabytes first, so the flood may pause
            # and resume a few times; wait until it stays paused (throttled, for 1 s).

            def settled():
                s = self.stats()
                last[2] = s
                key = (s["throttled"], s["unthrottled"])
                now = time.monotonic()
                if key != last[0]:
                    last[0], last[1] = key, now
                    return False
                paused = (s["throttled"] - before["throttled"]
                          == s["unthrottled"] - before["unthrottled"] + 1)
                return paused and now - last[1] >= 1.0 and s

            last = [None, 0.0, None]
            try:
                wisptest.wait_until(settled, 10, 0.1, "the flood to stay paused")
            except AssertionError:
                self.fail("the flood did not settle in the throttled state (on_throttled count "
                          "= on_unthrottled count + 1) within 10 s: stats before %s, now %s"
                          % ({k: before[k] for k in ("throttled", "unthrottled")},
                             {k: last[2][k] for k in ("throttled", "unthrottled",
                                                      "max_buffered")}))
            # Not reading for a while longer: nothing may grow past the cap.
            peak_rss = srv.rss_bytes()
            for _ in range(10):
                time.sleep(0.1)
                peak_rss = max(peak_rss, srv.rss_bytes())
            paused = self.stats()
            self.assertLessEqual(paused["max_buffered"], CAP)
            self.assertGreaterEqual(paused["max_buffered"], HIGH)
            self.assertLess(peak_rss, CAP * 2 + (64 << 20),
                            "RSS %d MiB (at start %d MiB)" % (peak_rss >> 20, rss0 >> 20))
            print("never-reader: RSS %d MiB at start, peak %d MiB; max_buffered %d"
                  % (rss0 >> 20, peak_rss >> 20, paused["max_buffered"]))

            # Now read: the flood drains, on_unthrottled comes, the flood resumes.
            stop = threading.Event()
            got = {"bytes": 0, "msgs": 0, "err": None}

            def reader():
                try:
                    while not stop.is_set():
                        f = c.read_frame(10)
                        if f is None:
                            break
                        got["bytes"] += len(f[2])
                        if f[0]:
                            got["msgs"] += 1
                        if got["msgs"] == 1 and f[1] == OP_BINARY and len(f[2]) == SIZE:
                            if f[2] != pattern(SIZE):
                                got["err"] = "flood payload differs from the pattern"
                except Exception as e:   # reported below
                    got["err"] = repr(e)

            t = threading.Thread(target=reader, daemon=True)
            t.start()
            wisptest.stats_wait(srv, lambda s: s["unthrottled"] > paused["unthrottled"],
                                timeout=15, what="unthrottled after reading")
            # More than the cap went through: the flood resumed after the pause.
            wisptest.wait_until(lambda: got["bytes"] > 2 * CAP or got["err"], 15,
                                what="the flood to resume")
            stop.set()
            t.join(12)
            self.assertIsNone(got["err"])
            self.assertLessEqual(self.stats()["max_buffered"], CAP)
        finally:
            c.rst()

    def test_blast_drops_over_cap(self):
        # /flood "blast" ignores WISP_SEND_PRESSURE: over the cap, sends fail with WISP_EFULL
        # (WISP_OVERFLOW_DROP) and buffered bytes never pass the cap.
        before = self.stats()
        c = RawWS(self.server.port, "/flood", rcvbuf=64 << 10)
        try:
            c.send_frame(OP_TEXT, b"blast 1000 65536")
            s = wisptest.stats_wait(self.server, lambda s: s["dropped"] > before["dropped"],
                                    timeout=15, what="drops")
            self.assertLessEqual(s["max_buffered"], CAP)
            # At most a cap's worth is queued and a few MiB sit in the kernel's socket buffers;
            # everything else was dropped.
            room = (CAP + (8 << 20)) // SIZE
            wisptest.stats_wait(self.server,
                                lambda s: s["dropped"] - before["dropped"] >= 1000 - room,
                                timeout=10, what="most of the blast dropped")
        finally:
            c.rst()

    def test_reading_client_gets_everything(self):
        n = 300

        async def go():
            async with wisptest.ws_connect(self.server, "/flood") as ws:
                await ws.send("go %d %d" % (n, SIZE))
                expect = pattern(SIZE)
                for i in range(n):
                    m = await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(len(m), SIZE, "message %d" % i)
                    self.assertTrue(m == expect, "message %d differs" % i)
                done = await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(done, "done %d 0" % n)
        wisptest.run(go(), 40)


class SlowActorTest(wisptest.ServerTestCase):
    server_args = ("--slow-ms", 20, "--slow-mailbox", 8)

    def test_slow_actor_loses_nothing(self):
        # 200 messages of 64 KiB (12.5 MiB, more than the kernel's socket buffers take) to an
        # actor that needs 20 ms for each: wisp must stop reading (TCP pushes back on our
        # sends) and still echo every message, in order.
        n, size = 200, 65536

        async def go():
            async with wisptest.ws_connect(self.server, "/slow") as ws:
                msgs = [b"%05d" % i + b"s" * (size - 5) for i in range(n)]

                async def sender():
                    for m in msgs:
                        await ws.send(m)
                    return time.monotonic()

                t0 = time.monotonic()
                send_task = asyncio.ensure_future(sender())
                for i in range(n):
                    got = await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(got[:5], msgs[i][:5], "echo %d out of order" % i)
                    self.assertTrue(got == msgs[i], "echo %d differs" % i)
                sent_at = await send_task
                return sent_at - t0, time.monotonic() - t0
        send_time, took = wisptest.run(go(), 50)
        print("slow: all sent after %.2f s, all echoed after %.2f s" % (send_time, took))
        self.assertGreaterEqual(took, n * 0.02 * 0.9)
        self.assertGreaterEqual(send_time, 1.0,
                                "all %d messages were taken in %.2f s: the server did not stop "
                                "reading from the slow actor's socket" % (n, send_time))

    def test_slow_actor_text_in_order(self):
        n = 200

        async def go():
            async with wisptest.ws_connect(self.server, "/slow") as ws:
                msgs = ["%04d:" % i + "é" * 100 for i in range(n)]
                for m in msgs:
                    await ws.send(m)
                for i in range(n):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), msgs[i])
        wisptest.run(go(), 30)

    def test_slow_actor_binary_burst(self):
        # Small messages arriving in one burst (many per TCP read) also all come back.
        n = 200
        with RawWS(self.server.port, "/slow") as c:
            c.send(b"".join(frame(OP_BINARY, b"%05d" % i) for i in range(n)))
            for i in range(n):
                self.assertEqual(c.read_message(10), (OP_BINARY, b"%05d" % i))
            c.send(wisptest.close_frame(1000))
            c.expect_close(1000, answer=False)


if __name__ == "__main__":
    wisptest.main(budget=170)
