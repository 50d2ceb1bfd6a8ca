"""The pub/sub bridge module (actors/pubsub_bridge.h) through the wisp program: subscribe,
publish and unsubscribe; per-publisher order and exactly-once delivery to 50 subscribers
across two workers; isolated topics (and the prefix that keeps clients out of the chat's
topics); limits and bad requests; a subscriber that stops reading does not hold up the others.

The program comes from $WISP_BIN (meson sets it), else the newest build*/actors/wisp/wisp.
"""

import asyncio
import json
import socket
import subprocess
import time
import uuid

import websockets

import wisptest
from wisptest import OP_CLOSE, OP_TEXT, RawWS


def uniq(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def connect(server, path="/ps"):
    return websockets.connect(server.url(path), open_timeout=10, close_timeout=5,
                              ping_interval=None, max_size=None)


async def recv_raw(ws, timeout=10.0):
    raw = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(raw, str):
        raise AssertionError("binary frame from the bridge: %r" % raw[:80])
    return raw


async def recv_json(ws, timeout=10.0):
    return json.loads(await recv_raw(ws, timeout))


async def request(ws, **msg):
    await ws.send(json.dumps(msg))


async def subscribe(test, ws, topic):
    await request(ws, type="subscribe", topic=topic)
    test.assertEqual(await recv_json(ws), {"type": "subscribed", "topic": topic})


async def unsubscribe(test, ws, topic):
    await request(ws, type="unsubscribe", topic=topic)
    test.assertEqual(await recv_json(ws), {"type": "unsubscribed", "topic": topic})


async def publish(ws, topic, data):
    await request(ws, type="publish", topic=topic, data=data)


async def silent(test, ws, seconds=0.3):
    try:
        extra = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    test.fail("unexpected message %r" % (extra,))


def delivery(topic, data):
    """The exact bytes of a delivery: the bridge's compact form."""
    return '{"type":"message","topic":%s,"data":%s}' % (json.dumps(topic), json.dumps(data))


class BridgeTest(wisptest.WispTestCase):
    workers = 2
    server_args = (
        "--log-level", "warn",
        "--route", "/ps=pubsub",
        "--route", "/ps8=pubsub:max_subs=8",
        "--route", "/slow=pubsub:send_cap=256K",
        "--route", "/raw=pubsub:prefix=",
        "--route", "/chat=chat")

    def test_subscribe_publish_unsubscribe(self):
        t1, t2 = uniq(), uniq()

        async def go():
            async with connect(self.server) as a, connect(self.server) as b:
                await subscribe(self, a, t1)
                await subscribe(self, a, t1)  # again: same answer, one subscription
                await subscribe(self, a, t2)
                await publish(b, t1, "hello")
                self.assertEqual(await recv_raw(a), delivery(t1, "hello"))
                await silent(self, a, 0.2)  # once, although subscribed twice
                # Every string survives, escapes and all; empty data too.
                for data in ["", "é€😀", "\"q\" \\ / \n\t\x00\x1f", "\u2028", "x" * 100000]:
                    await publish(b, t1, data)
                    m = json.loads(await recv_raw(a))
                    self.assertEqual(m, {"type": "message", "topic": t1, "data": data})
                # The publisher gets its own message when it is subscribed.
                await subscribe(self, b, t2)
                await publish(b, t2, "to both")
                self.assertEqual(await recv_raw(a), delivery(t2, "to both"))
                self.assertEqual(await recv_raw(b), delivery(t2, "to both"))
                # Unsubscribed: no more t1, t2 still flows.
                await unsubscribe(self, a, t1)
                await publish(b, t1, "gone")
                await publish(b, t2, "marker")
                self.assertEqual(await recv_raw(a), delivery(t2, "marker"))
                self.assertEqual(await recv_raw(b), delivery(t2, "marker"))
                await silent(self, a)
                # Unsubscribing again is an error; the connection stays usable.
                await request(a, type="unsubscribe", topic=t1)
                self.assertEqual(await recv_json(a), {"type": "error",
                                                      "error": "not subscribed"})
                # Subscribing again works.
                await subscribe(self, a, t1)
                await publish(b, t1, "back")
                self.assertEqual(await recv_raw(a), delivery(t1, "back"))
        wisptest.run(go(), 30)

    def test_order_and_exactly_once(self):
        topic = uniq()
        nsubs, npubs, per = 50, 4, 200

        async def go():
            subs = [await connect(self.server) for _ in range(nsubs)]
            pubs = [await connect(self.server) for _ in range(npubs)]
            for ws in subs:
                await subscribe(self, ws, topic)

            async def publisher(p, ws):
                for k in range(per):
                    await publish(ws, topic, "%d:%d" % (p, k))
                    if k % 20 == 0:
                        await asyncio.sleep(0)

            async def reader(ws):
                got = []
                while len(got) < npubs * per:
                    got.append(await recv_raw(ws, 30))
                return got

            readers = [asyncio.ensure_future(reader(ws)) for ws in subs]
            await asyncio.gather(*(publisher(p, ws) for p, ws in enumerate(pubs)))
            results = await asyncio.gather(*readers)
            for i, got in enumerate(results):
                datas = [json.loads(raw)["data"] for raw in got]
                self.assertEqual(len(set(datas)), npubs * per, "subscriber %d: duplicates" % i)
                last = {}
                for d in datas:
                    p, k = map(int, d.split(":"))
                    self.assertEqual(k, last.get(p, -1) + 1,
                                     "subscriber %d: publisher %d out of order" % (i, p))
                    last[p] = k
                for raw in got:  # the same bytes for everyone
                    self.assertEqual(raw, delivery(topic, json.loads(raw)["data"]))
            for ws in subs:
                await silent(self, ws, 0.05)
            for ws in subs + pubs:
                await ws.close()
        wisptest.run(go(), 120)

    def test_topics_are_isolated(self):
        a_topic, b_topic = uniq(), uniq()

        async def go():
            async with connect(self.server) as a, connect(self.server) as b, \
                    connect(self.server) as p, connect(self.server, "/ps8") as other_mount:
                await subscribe(self, a, a_topic)
                await subscribe(self, b, b_topic)
                await subscribe(self, other_mount, a_topic)  # same prefix: the same topic
                await publish(p, a_topic, "for a")
                await publish(p, b_topic, "for b")
                self.assertEqual(await recv_raw(a), delivery(a_topic, "for a"))
                self.assertEqual(await recv_raw(b), delivery(b_topic, "for b"))
                self.assertEqual(await recv_raw(other_mount), delivery(a_topic, "for a"))
                await silent(self, a)
                await silent(self, b)
                # Topic names are exact: no prefix matching, case-sensitive.
                await publish(p, a_topic + "x", "no")
                await publish(p, a_topic.upper(), "no")
                await silent(self, a)
        wisptest.run(go(), 30)

    def test_prefix_keeps_clients_out_of_chat_topics(self):
        # The chat mount's rooms publish to "chat/0/ROOM"; a bridge client asking for that
        # topic gets "pubsub/chat/0/ROOM" instead and hears nothing, and cannot speak in the
        # room. A mount with prefix= (empty) does reach the runtime's own topic names.
        room = uniq("room")
        topic = "chat/0/" + room

        async def go():
            async with connect(self.server) as spy, connect(self.server, "/raw") as raw:
                await subscribe(self, spy, topic)
                await subscribe(self, raw, topic)
                chat = await websockets.connect(self.server.url("/chat?room=%s&name=c" % room),
                                                open_timeout=10, ping_interval=None)
                welcome = json.loads(await asyncio.wait_for(chat.recv(), 10))
                self.assertEqual(welcome["type"], "welcome")
                joined = json.loads(await recv_raw(raw))  # the unprefixed mount hears it
                self.assertEqual((joined["type"], joined["name"]), ("join", "c"))
                await publish(spy, topic, "spoof")
                await chat.send(json.dumps({"type": "message", "text": "real"}))
                own_join = json.loads(await asyncio.wait_for(chat.recv(), 10))
                self.assertEqual(own_join["type"], "join")
                m = json.loads(await asyncio.wait_for(chat.recv(), 10))
                self.assertEqual((m["from"], m["text"]), ("c", "real"))
                self.assertEqual(json.loads(await recv_raw(raw))["text"], "real")
                self.assertEqual(await recv_raw(spy), delivery(topic, "spoof"))  # its own
                await silent(self, spy)
                await chat.close()
        wisptest.run(go(), 30)

    def test_limits_and_bad_requests(self):
        async def go():
            async with connect(self.server, "/ps8") as ws:
                topics = [uniq() for _ in range(9)]
                for t in topics[:8]:
                    await subscribe(self, ws, t)
                await subscribe(self, ws, topics[0])  # already there: not one more
                await request(ws, type="subscribe", topic=topics[8])
                self.assertEqual(await recv_json(ws), {"type": "error",
                                                       "error": "too many subscriptions (max 8)"})
                await unsubscribe(self, ws, topics[0])
                await subscribe(self, ws, topics[8])

            async with connect(self.server) as ws:
                longest = "t" * (255 - len("pubsub/"))
                await subscribe(self, ws, longest)
                await publish(ws, longest, "edge")
                self.assertEqual(await recv_raw(ws), delivery(longest, "edge"))
                cases = [
                    ("not json", "invalid JSON"),
                    ("[]", "invalid JSON"),
                    ('{"type":"subscribe","topic":"a","topic":"b"}', "invalid JSON"),
                    ('{"type":"subscribe","topic":"a"', "invalid JSON"),
                    ("{}", "missing type"),
                    ('{"type":1}', "missing type"),
                    ('{"type":"dance","topic":"a"}', "unknown type"),
                    ('{"type":"subscribe-everything-now","topic":"a"}', "unknown type"),
                    ('{"type":"subscribe"}', "missing topic"),
                    ('{"type":"subscribe","topic":5}', "missing topic"),
                    ('{"type":"subscribe","topic":""}', "bad topic"),
                    ('{"type":"subscribe","topic":"a\\u0000b"}', "bad topic"),
                    (json.dumps({"type": "subscribe", "topic": longest + "t"}), "bad topic"),
                    (json.dumps({"type": "publish", "topic": "x" * 300, "data": ""}),
                     "bad topic"),
                    ('{"type":"publish","topic":"a"}', "missing data"),
                    ('{"type":"publish","topic":"a","data":{"x":1}}', "missing data"),
                    ('{"type":"unsubscribe","topic":"never"}', "not subscribed"),
                    (b"\x01\x02", "binary messages are not supported"),
                ]
                for sent, err in cases:
                    await ws.send(sent)
                    self.assertEqual(await recv_json(ws), {"type": "error", "error": err},
                                     "answer to %r" % (sent[:80],))
                # Still fine afterwards; other keys are ignored.
                t = uniq()
                await request(ws, type="subscribe", topic=t, extra=[1, {"y": None}])
                self.assertEqual(await recv_json(ws), {"type": "subscribed", "topic": t})
        wisptest.run(go(), 30)

    def test_subscriber_that_stops_reading(self):
        # /slow has send_cap=256K: a subscriber whose peer never reads is closed with 1008
        # once that much waits for it; the others get every message and the publisher is never
        # held up.
        topic = uniq()
        count, size = 512, 16384
        loop_box = {}

        def stalled_subscriber():
            c = RawWS(self.server.port, "/slow", rcvbuf=4096)
            c.send_frame(OP_TEXT, json.dumps({"type": "subscribe", "topic": topic}))
            op, payload = c.read_message(10)
            self.assertEqual(json.loads(payload), {"type": "subscribed", "topic": topic})
            return c

        async def go():
            stalled = await asyncio.get_running_loop().run_in_executor(None, stalled_subscriber)
            loop_box["stalled"] = stalled
            readers = [await connect(self.server, "/slow") for _ in range(5)]
            for ws in readers:
                await subscribe(self, ws, topic)
            pub = await connect(self.server, "/slow")

            # The readers are paced (at most `window` messages ahead of the slowest reader, far
            # below the cap): what goes over the cap is the stalled subscriber alone.
            window = 4
            progress = [0] * len(readers)
            moved = asyncio.Event()

            async def publisher():
                for k in range(count):
                    while min(progress) < k - window:
                        moved.clear()
                        await asyncio.wait_for(moved.wait(), 30)
                    await publish(pub, topic, "%05d:" % k + "x" * (size - 6))

            async def reader(i, ws):
                for k in range(count):
                    m = json.loads(await recv_raw(ws, 30))
                    self.assertEqual(m["data"][:6], "%05d:" % k)
                    progress[i] = k + 1
                    moved.set()
                return True

            tasks = [asyncio.ensure_future(reader(i, ws)) for i, ws in enumerate(readers)]
            t0 = time.monotonic()
            await publisher()
            self.assertTrue(all(await asyncio.gather(*tasks)))
            self.assertLess(time.monotonic() - t0, 60)
            for ws in readers + [pub]:
                await ws.close()

        wisptest.run(go(), 90)
        # The stalled one: what it finally reads is a prefix of the messages, then its close
        # (1008, the send cap) or the end of the connection.
        stalled = loop_box["stalled"]
        try:
            got = 0
            closed = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                f = stalled.read_message(10)
                if f is None:
                    break
                op, payload = f
                if op == OP_CLOSE:
                    closed = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    break
                self.assertEqual(op, OP_TEXT)
                self.assertEqual(json.loads(payload)["data"][:6], "%05d:" % got)
                got += 1
            self.assertLess(got, count, "the stalled subscriber was never cut off")
            self.assertIn(closed, (1008, None))
        finally:
            stalled.close()


class BridgeMountArgsTest(wisptest.unittest.TestCase):
    """Bad mount arguments stop the program with status 1 and a message."""

    def test_bad_args(self):
        for arg in ["max_subs=0", "max_subs=1025", "max_subs=4k", "max_subs=", "bogus=1",
                    "prefix=" + "p" * 65, "send_cap=1K", "send_cap=2G", "send_cap=x",
                    "max_subs=8,", "prefix"]:
            proc = subprocess.run([wisptest.wisp_binary(), "--listen", "127.0.0.1:0", "--route",
                                   "/p=pubsub:" + arg], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=20)
            self.assertEqual(proc.returncode, 1, "%s: %r" % (arg, proc.stderr))
            self.assertIn(b"pubsub", proc.stderr, arg)


if __name__ == "__main__":
    wisptest.main(budget=200)
