"""Topics, broadcast and emit across two workers (wisp/pubsub.h), through the test server's
/ps routes (see pubsub_routes.c for the command protocol): delivery, per-publisher order, no
duplicates, unsubscribe under load, automatic unsubscribe on close, subscriptions made by
another actor with a first message, slow subscribers under both overflow policies while 1,000
others keep receiving, and the statistics."""

import asyncio
import json
import urllib.request

import wisptest

N_MANY = 1000


def pstats(server):
    with urllib.request.urlopen("http://127.0.0.1:%d/pstats" % server.port, timeout=5) as r:
        return json.loads(r.read())


async def command(ws, text, expect_prefix):
    """Send a command and return its reply (skipping nothing: callers use it on quiet
    connections)."""
    await ws.send(text)
    reply = await asyncio.wait_for(ws.recv(), 10)
    if not reply.startswith(expect_prefix):
        raise AssertionError("%r answered %r" % (text, reply))
    return reply


async def recv_n(ws, n, timeout=30):
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(ws.recv(), timeout))
    return out


async def no_message(ws, seconds=0.3):
    try:
        m = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message %r" % (m,))


class PubSubTest(wisptest.ServerTestCase):
    # The slow subscriber reads its close frame only after 1,000 others got everything, which
    # can take longer than the default 5 s close timeout on a sanitizer build: wait long enough
    # that the server never gives up first (the test must not depend on the machine's speed).
    server_args = ("--close-ms", "120000")

    @classmethod
    def setUpClass(cls):
        cls.nofile = wisptest.raise_nofile(2 * N_MANY + 256)
        super().setUpClass()

    def conn(self, path="/ps", **kw):
        return wisptest.ws_connect(self.server, path, **kw)

    def test_publish_reaches_subscribers_only(self):
        async def go():
            async with self.conn() as a, self.conn() as b, self.conn() as c:
                await command(a, "sub news", "ok sub news")
                await command(b, "sub news", "ok sub news")
                await command(a, "sub news", "ok sub news")  # twice is one subscription
                self.assertEqual(await command(c, "count news", "count"), "count news 2")
                await c.send("pub news hello")
                self.assertEqual(await a.recv(), "hello")
                self.assertEqual(await b.recv(), "hello")
                await no_message(a)
                await no_message(c)
                await c.send("pub nobody-listens x")  # no subscriber: nothing, no error
                await no_message(c)
                # binary-safe names and payload sizes from empty to several fragments
                await c.send("pubn news 3 200000")
                for ws in (a, b):
                    got = await recv_n(ws, 3)
                    self.assertEqual([m.split(" ")[1] for m in got], ["0", "1", "2"])
                    self.assertTrue(all(len(m) == 200000 for m in got))
        wisptest.run(go())

    def test_bad_topics_and_limits(self):
        async def go():
            async with self.conn() as a:
                await a.send("unsub never")
                self.assertEqual(await a.recv(), "err unsub never -2")  # -ENOENT
                await a.send("sub " + "t" * 256)
                self.assertTrue((await a.recv()).endswith(" -22"))  # -EINVAL: over 255
                await a.send("sub " + "t" * 255)
                self.assertTrue((await a.recv()).startswith("ok sub"))
                for i in range(1023):
                    await a.send("sub many-%d" % i)
                replies = await recv_n(a, 1023)
                self.assertTrue(all(r.startswith("ok sub") for r in replies))
                await a.send("sub one-too-many")
                self.assertEqual(await a.recv(), "err sub one-too-many -28")  # -ENOSPC
        wisptest.run(go())

    def test_order_per_publisher_and_no_duplicates(self):
        """4 connection publishers and 2 actor publishers flood one topic; 20 subscribers on both
        workers get every message exactly once, each publisher's in order."""
        n_subs, n_msgs = 20, 400

        async def go():
            subs = [await self.conn().__aenter__() for _ in range(n_subs)]
            pubs = [await self.conn().__aenter__() for _ in range(4)]
            try:
                for s in subs:
                    await command(s, "sub flood", "ok sub flood")
                for i, p in enumerate(pubs):
                    await command(p, "sub p%d-ack" % i, "ok sub")
                for i, p in enumerate(pubs):
                    await p.send("pubn flood %d 64" % n_msgs)
                await pubs[0].send("actorpub flood %d" % n_msgs)
                await pubs[1].send("actorpub flood %d" % n_msgs)
                total = 4 * n_msgs + 2 * n_msgs

                async def check(s):
                    got = await recv_n(s, total)
                    per = {}
                    for m in got:
                        who, seq = m.split(" ")[:2]
                        per.setdefault(who, []).append(int(seq))
                    return per

                results = await asyncio.gather(*(check(s) for s in subs))
                for per in results:
                    # 4 connection publishers share the prefix "flood": each seq 4 times,
                    # and within each publisher increasing: count per seq
                    counts = {}
                    for seq in per["flood"]:
                        counts[seq] = counts.get(seq, 0) + 1
                    self.assertEqual(set(counts.values()), {4})
                    self.assertEqual(sorted(counts), list(range(n_msgs)))
                    # the two actor publishers also share a prefix: each seq twice, and the
                    # sequence is a merge of two increasing runs
                    self.assertEqual(sorted(per["actor"]), sorted(list(range(n_msgs)) * 2))
                    self.assertTrue(is_merge_of_increasing(per["actor"], 2))
                    self.assertTrue(is_merge_of_increasing(per["flood"], 4))
                for s in subs:
                    await no_message(s, 0.2)
            finally:
                for w in subs + pubs:
                    await w.close()
        wisptest.run(go(), 120)

    def test_one_publisher_strict_order(self):
        async def go():
            subs = [await self.conn().__aenter__() for _ in range(10)]
            pub = await self.conn().__aenter__()
            try:
                for s in subs:
                    await command(s, "sub strict", "ok sub strict")
                await pub.send("pubn strict 2000 16")
                for s in subs:
                    got = await recv_n(s, 2000)
                    self.assertEqual([int(m.split(" ")[1]) for m in got], list(range(2000)))
            finally:
                for w in subs + [pub]:
                    await w.close()
        wisptest.run(go(), 60)

    def test_unsubscribe_stops_delivery_under_load(self):
        """A subscriber leaves while a publisher floods: after the unsubscribe's answer, nothing
        more arrives; repeated join/leave cycles never duplicate or reorder."""
        async def go():
            async with self.conn() as sub, self.conn() as pub:
                for cycle in range(20):
                    topic = "churn%d" % cycle  # a new topic each time: made and freed
                    await command(sub, "sub " + topic, "ok sub")
                    await pub.send("pubn %s 200 32" % topic)
                    await asyncio.sleep(0.005 * (cycle % 4))
                    await sub.send("unsub " + topic)
                    seqs = []
                    while True:
                        m = await asyncio.wait_for(sub.recv(), 10)
                        if m == "ok unsub " + topic:
                            break
                        seqs.append(int(m.split(" ")[1]))
                    # what came is the start of the batch: in order, no gap, no duplicate
                    self.assertEqual(seqs, list(range(len(seqs))))
                    await command(pub, "count " + topic, "count %s 0" % topic)
                    await no_message(sub, 0.1)
        wisptest.run(go(), 120)

    def test_close_unsubscribes(self):
        async def go():
            async with self.conn() as watcher:
                conns = [await self.conn().__aenter__() for _ in range(30)]
                for i, c in enumerate(conns):
                    await command(c, "sub gone", "ok sub gone")
                self.assertEqual(await command(watcher, "count gone", "count"), "count gone 30")
                for c in conns[:20]:
                    await c.close()
                # killed without a close handshake too
                for c in conns[20:]:
                    c.transport.abort()

                async def zero():
                    while True:
                        r = await command(watcher, "count gone", "count")
                        if r == "count gone 0":
                            return
                        await asyncio.sleep(0.05)
                await asyncio.wait_for(zero(), 10)
                await watcher.send("pub gone anyone")
                await no_message(watcher)
        wisptest.run(go())

    def test_subscribe_to_with_first_message(self):
        """Another actor subscribes the connection with a first message and publishes right
        after: the first message comes first, the publish after it, nothing is missed."""
        async def go():
            conns = [await self.conn().__aenter__() for _ in range(10)]
            try:
                for i, c in enumerate(conns):
                    await c.send("subto room%d" % (i % 3))
                for i, c in enumerate(conns):
                    t = "room%d" % (i % 3)
                    first = await asyncio.wait_for(c.recv(), 10)
                    self.assertEqual(first, "welcome " + t)
                    self.assertEqual(await asyncio.wait_for(c.recv(), 10), "after " + t)
            finally:
                for c in conns:
                    await c.close()
        wisptest.run(go())

    def test_broadcast_and_emit(self):
        async def go():
            async with self.conn() as a, self.conn() as b, self.conn() as c, \
                    self.conn("/ps-drop") as other_route:
                # each connection joined its route's group before its 101 went out
                await a.send("bcast from-a")
                self.assertEqual(await b.recv(), "from-a")
                self.assertEqual(await c.recv(), "from-a")
                await no_message(a)
                await no_message(other_route)
                await b.send("emit to-all")
                for ws in (a, b, c):
                    self.assertEqual(await ws.recv(), "to-all")
                await no_message(other_route)
        wisptest.run(go())

    def slow_subscriber_case(self, path, n_msgs=300, size=1024):
        """One raw subscriber that never reads and N_MANY websockets subscribers that do; a
        publisher sends n_msgs of size bytes. Returns the raw socket's connection."""
        if self.nofile < N_MANY + 128:
            self.skipTest("RLIMIT_NOFILE %d too low" % self.nofile)
        topic = "slow" + path.replace("/", "-")
        slow = wisptest.RawWS(self.server.port, path, rcvbuf=4096)
        for t in (topic, "fill" + topic):
            slow.send_frame(wisptest.OP_TEXT, ("sub " + t).encode())
            op, payload = slow.read_message()
            self.assertEqual(payload, ("ok sub " + t).encode())

        async def go():
            sem = asyncio.Semaphore(100)

            async def one():
                async with sem:
                    ws = await self.conn(path, open_timeout=30).__aenter__()
                    await command(ws, "sub " + topic, "ok sub")
                return ws
            subs = await asyncio.gather(*(one() for _ in range(N_MANY)))
            try:
                async with self.conn(path) as pub:
                    # 4 MiB for the slow one alone: more than the kernel's socket buffers
                    # (about 3 MB on loopback) and its 256 KiB send cap together, so it is
                    # over its cap while the crowd's messages are published
                    await pub.send("pubn fill%s 64 65536" % topic)
                    await pub.send("pubn %s %d %d" % (topic, n_msgs, size))

                    async def check(ws):
                        got = await recv_n(ws, n_msgs, 60)
                        return [int(m.split(" ")[1]) for m in got]
                    results = await asyncio.gather(*(check(ws) for ws in subs))
                    for seqs in results:
                        self.assertEqual(seqs, list(range(n_msgs)))
            finally:
                await asyncio.gather(*(ws.close() for ws in subs))
        wisptest.run(go(), 240)
        return slow

    def test_slow_subscriber_closed_under_close_policy(self):
        before = pstats(self.server)
        slow = self.slow_subscriber_case("/ps-close")
        # it was closed with 1008 once its queue passed 256 KiB; reading now, we find the data
        # that fit, then the close frame (the server waits for our answer for --close-ms,
        # longer than the crowd can take even under TSan, so it never hangs up first)
        code = None
        while True:
            m = slow.read_message(timeout=10)
            if m is None:
                break
            op, payload = m
            if op == wisptest.OP_CLOSE:
                code = int.from_bytes(payload[:2], "big")
                break
        slow.sock.close()
        self.assertEqual(code, 1008)
        wisptest.wait_until(
            lambda: pstats(self.server)["closes"]["1008"] > before["closes"]["1008"],
            what="1008 counted")

    def test_slow_subscriber_drops_under_drop_policy(self):
        before = pstats(self.server)
        slow = self.slow_subscriber_case("/ps-drop")
        after = pstats(self.server)
        self.assertGreater(after["dropped"], before["dropped"])
        # still open and told: it reads what was kept, then answers its drop count
        slow.send_frame(wisptest.OP_TEXT, b"drops")
        while True:
            m = slow.read_message(timeout=10)
            self.assertIsNotNone(m, "the slow subscriber was closed under the drop policy")
            op, payload = m
            if payload.startswith(b"drops "):
                self.assertGreater(int(payload.split()[1]), 0)
                break
        slow.sock.close()

    def test_statistics(self):
        before = pstats(self.server)

        async def go():
            async with self.conn() as a, self.conn() as b:
                await command(a, "sub st", "ok sub st")
                await b.send("pub st 12345")
                self.assertEqual(await a.recv(), "12345")
        wisptest.run(go())
        wisptest.wait_until(lambda: pstats(self.server)["closes"]["1000"]
                            >= before["closes"]["1000"] + 2, what="closes counted")
        after = pstats(self.server)
        self.assertGreaterEqual(after["opened"], before["opened"] + 2)
        self.assertGreaterEqual(after["accepted"], before["accepted"] + 2)
        self.assertGreaterEqual(after["messages_in"], before["messages_in"] + 2)
        self.assertGreaterEqual(after["bytes_out"], before["bytes_out"] + 5)
        self.assertGreater(after["published"], before["published"])
        self.assertGreater(after["http_requests"], before["http_requests"])
        self.assertGreaterEqual(after["actors"], 1)


def is_merge_of_increasing(seq, k):
    """Whether seq can be split into k strictly increasing subsequences where each value
    0..n-1 appears once per run (greedy: each value goes to a run whose last value is
    value - 1)."""
    runs = [-1] * k
    for v in seq:
        for i in range(k):
            if runs[i] == v - 1:
                runs[i] = v
                break
        else:
            return False
    return True


if __name__ == "__main__":
    wisptest.main()
