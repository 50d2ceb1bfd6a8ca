"""Many clients at once: 1,000 concurrent echo clients, and a chat room of actors talking to
connections with wisp_conn_send_to()."""

import asyncio
import os
import time

import wisptest

N_CLIENTS = 1000


class ManyClientsTest(wisptest.ServerTestCase):

    @classmethod
    def setUpClass(cls):
        # each client is one socket here and one in the server (which inherits the limit)
        cls.nofile = wisptest.raise_nofile(2 * N_CLIENTS + 256)
        super().setUpClass()

    def test_1000_concurrent_echo_clients(self):
        if self.nofile < N_CLIENTS + 128:
            self.skipTest("RLIMIT_NOFILE %d too low" % self.nofile)
        before = self.stats()

        async def go():
            sem = asyncio.Semaphore(200)  # handshakes in flight at once
            all_open = asyncio.Event()
            opened = [0]
            conns = []

            async def client(i):
                async with sem:
                    ws = await wisptest.ws_connect(self.server, "/echo", open_timeout=30)
                conns.append(ws)
                opened[0] += 1
                if opened[0] == N_CLIENTS:
                    all_open.set()
                # every client is connected before anyone talks
                await asyncio.wait_for(all_open.wait(), 60)
                for j in range(3):
                    msg = "client %d message %d %s" % (i, j, "x" * (i % 50))
                    await ws.send(msg)
                    got = await asyncio.wait_for(ws.recv(), 30)
                    assert got == msg, (got, msg)
                data = os.urandom(i % 3000)
                await ws.send(data)
                assert await asyncio.wait_for(ws.recv(), 30) == data

            t0 = time.monotonic()
            try:
                await asyncio.gather(*(client(i) for i in range(N_CLIENTS)))
                mid = time.monotonic()
                s = await asyncio.get_running_loop().run_in_executor(None, self.stats)
                self.assertGreaterEqual(s["opened"] - before["opened"], N_CLIENTS)
            finally:
                await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
            codes = [ws.close_code for ws in conns]
            self.assertEqual(codes, [1000] * N_CLIENTS)
            return mid - t0, time.monotonic() - mid

        talk, close = wisptest.run(go(), 100)
        print("1000 clients: connect+echo %.2f s, close %.2f s" % (talk, close))
        wisptest.stats_wait(self.server,
                            lambda s: s["closed"] - before["closed"] >= N_CLIENTS,
                            timeout=15, what="all 1000 closed")


class ChatTest(wisptest.ServerTestCase):

    def test_chat_room(self):
        n, m = 20, 20

        async def go():
            conns = []
            try:
                for i in range(n):
                    ws = await wisptest.ws_connect(self.server, "/chat")
                    conns.append(ws)
                    # the room registered us: everything sent after this reaches us
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "*joined")

                async def member(i, ws):
                    async def send():
                        for j in range(m):
                            await ws.send("%d:%d" % (i, j))

                    async def receive():
                        got = []
                        for _ in range((n - 1) * m):
                            got.append(await asyncio.wait_for(ws.recv(), 10))
                        return got

                    _, got = await asyncio.gather(send(), receive())
                    return got

                results = await asyncio.gather(*(member(i, ws) for i, ws in enumerate(conns)))
                # nothing more arrives
                for ws in conns:
                    with self.assertRaises(asyncio.TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.05)
                return results
            finally:
                await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)

        results = wisptest.run(go(), 50)
        for i, got in enumerate(results):
            per_sender = {}
            for text in got:
                s, j = map(int, text.split(":"))
                self.assertNotEqual(s, i, "client %d received its own message %r" % (i, text))
                per_sender.setdefault(s, []).append(j)
            self.assertEqual(sorted(per_sender), [k for k in range(n) if k != i],
                             "client %d: senders" % i)
            for s, js in per_sender.items():
                self.assertEqual(js, list(range(m)),
                                 "client %d: messages of %d out of order or missing" % (i, s))


if __name__ == "__main__":
    wisptest.main(budget=200)
