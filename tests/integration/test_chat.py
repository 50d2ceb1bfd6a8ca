"""The chat module (actors/chat.h) through the wisp program: welcome and history, unique names,
presence, one order for everyone, isolated rooms, killed clients, bad input, limits, and rooms
that stop and are created again while clients join. Two workers, so rooms and their members
run on different threads.

The program comes from $WISP_BIN (meson sets it), else the newest build*/actors/wisp/wisp.
"""

import asyncio
import json
import socket
import struct
import subprocess
import time
import uuid

import websockets

import wisptest
from wisptest import OP_BINARY, OP_CLOSE, OP_TEXT, RawWS

HISTORY = 50


def uniq(prefix="r"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def chat_url(server, room=None, name=None, path="/chat"):
    from urllib.parse import quote
    q = []
    if room is not None:
        q.append("room=" + quote(room, safe=""))
    if name is not None:
        q.append("name=" + quote(name, safe=""))
    return server.url(path + ("?" + "&".join(q) if q else ""))


def connect(server, room=None, name=None, path="/chat"):
    return websockets.connect(chat_url(server, room, name, path), open_timeout=10,
                              close_timeout=5, ping_interval=None, max_size=None)


async def recv_json(ws, timeout=10.0):
    raw = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(raw, str):
        raise AssertionError("binary frame from the chat: %r" % raw[:80])
    return json.loads(raw)


async def join(server, room=None, name=None, path="/chat"):
    """Connect, read the welcome and the joiner's own join event; return (ws, welcome)."""
    ws = await connect(server, room, name, path)
    welcome = await recv_json(ws)
    if welcome.get("type") != "welcome":
        raise AssertionError("first message is not a welcome: %r" % welcome)
    ev = await recv_json(ws)
    if ev != {"type": "join", "name": welcome["you"], "members": ev.get("members")}:
        raise AssertionError("after the welcome, expected the own join: %r" % ev)
    if sorted(ev["members"]) != sorted(welcome["members"]):
        raise AssertionError("own join members %r != welcome members %r"
                             % (ev["members"], welcome["members"]))
    return ws, welcome


async def say(ws, text):
    await ws.send(json.dumps({"type": "message", "text": text}))


async def expect_error(test, ws, sent, error):
    if isinstance(sent, bytes):
        await ws.send(sent)
    else:
        await ws.send(sent)
    msg = await recv_json(ws)
    test.assertEqual(msg, {"type": "error", "error": error}, "answer to %r" % (sent[:100],))


def http_upgrade_status(port, target):
    with wisptest.connect(port) as s:
        s.sendall(wisptest.upgrade_request(target, port))
        return wisptest.read_response(s, 5.0, upgrade=True).status


class ChatTest(wisptest.WispTestCase):
    workers = 2
    server_args = (
        "--log-level", "warn",
        "--route", "/chat=chat:history=%d" % HISTORY,
        "--route", "/chat2=chat",
        "--route", "/small=chat:max_members=3,max_rooms=2,linger=0,history=5",
        "--route", "/quick=chat:linger=0")

    # ---- welcome and history -----------------------------------------------------------------

    def test_welcome_and_history(self):
        room = uniq()

        async def go():
            t0 = int(time.time() * 1000)
            a, wa = await join(self.server, room, "alice")
            self.assertEqual(wa, {"type": "welcome", "you": "alice", "room": room,
                                  "members": ["alice"], "history": []})
            for i in range(60):
                await say(a, "m%d" % i)
            mine = [await recv_json(a) for _ in range(60)]
            self.assertEqual([m["text"] for m in mine], ["m%d" % i for i in range(60)])
            for m in mine:
                self.assertEqual(set(m), {"type", "from", "text", "ts"})
                self.assertEqual((m["type"], m["from"]), ("message", "alice"))
                self.assertIsInstance(m["ts"], int)
                self.assertGreaterEqual(m["ts"], t0 - 5000)
                self.assertLessEqual(m["ts"], int(time.time() * 1000) + 5000)
            b, wb = await join(self.server, room, "bob")
            self.assertEqual(wb["you"], "bob")
            self.assertEqual(wb["room"], room)
            self.assertEqual(sorted(wb["members"]), ["alice", "bob"])
            # The last HISTORY messages, oldest first, as they were published (minus "type").
            self.assertEqual(len(wb["history"]), HISTORY)
            want = [{k: v for k, v in m.items() if k != "type"} for m in mine[-HISTORY:]]
            self.assertEqual(wb["history"], want)
            self.assertEqual(list(wb["history"][0]), ["from", "text", "ts"])
            # Alice sees Bob's join.
            ev = await recv_json(a)
            self.assertEqual((ev["type"], ev["name"]), ("join", "bob"))
            self.assertEqual(sorted(ev["members"]), ["alice", "bob"])
            await b.close()
            self.assertEqual((await recv_json(a))["type"], "leave")
            await a.close()
        wisptest.run(go(), 60)

    def test_texts_round_trip(self):
        room = uniq()
        texts = ["é€😀 \"quoted\" \\ back\\slash /", "line\nbreak\ttab\r\x00nul\x1f\x7f",
                 "\u2028\u2029 separators", "x" * 4096, "€" * 1365, "<script>alert(1)</script>"]

        async def go():
            a, _ = await join(self.server, room, "alice")
            for t in texts:
                await say(a, t)
                raw = await asyncio.wait_for(a.recv(), 10)
                self.assertNotIn("\u2028", raw)  # escaped, safe in JavaScript source
                m = json.loads(raw)
                self.assertEqual(m["text"], t)
            await a.close()
        wisptest.run(go(), 30)

    # ---- names -----------------------------------------------------------------------------

    def test_unique_names(self):
        room = uniq()

        async def go():
            socks = []
            names = []
            for _ in range(3):
                ws, w = await join(self.server, room, "bob")
                socks.append(ws)
                names.append(w["you"])
            self.assertEqual(names, ["bob", "bob-2", "bob-3"])
            # A 32-byte name cut at a character boundary to make room for the suffix.
            long_name = "é" * 16
            ws1, w1 = await join(self.server, room, long_name)
            ws2, w2 = await join(self.server, room, long_name)
            self.assertEqual(w1["you"], long_name)
            self.assertEqual(w2["you"], "é" * 15 + "-2")
            self.assertLessEqual(len(w2["you"].encode()), 32)
            # Without a name, or with an empty one: guest-N, unique too.
            ws3, w3 = await join(self.server, room)
            ws4, w4 = await join(self.server, room, "")
            self.assertRegex(w3["you"], r"^guest-\d+$")
            self.assertRegex(w4["you"], r"^guest-\d+$")
            self.assertNotEqual(w3["you"], w4["you"])
            # Names are case-sensitive and may hold spaces and symbols.
            ws5, w5 = await join(self.server, room, "Bob the 2nd & co")
            self.assertEqual(w5["you"], "Bob the 2nd & co")
            all_names = names + [w1["you"], w2["you"], w3["you"], w4["you"], w5["you"]]
            self.assertEqual(sorted(w5["members"]), sorted(all_names))
            for ws in socks + [ws1, ws2, ws3, ws4, ws5]:
                await ws.close()
        wisptest.run(go(), 30)

    def test_plus_and_percent_decoding(self):
        room = uniq()

        async def go():
            ws = await websockets.connect(
                self.server.url("/chat?name=J%C3%BCrgen+K&room=" + room + "&other=x%ZZ"),
                open_timeout=10, ping_interval=None)
            w = await recv_json(ws)
            self.assertEqual((w["you"], w["room"]), ("Jürgen K", room))
            await ws.close()
            # Default room: lobby.
            ws, w = await join(self.server, None, uniq("n"))
            self.assertEqual(w["room"], "lobby")
            await ws.close()
        wisptest.run(go(), 20)

    def test_bad_name_or_room_refused(self):
        port = self.server.port
        bad = [
            "/chat?name=%ZZ", "/chat?name=%4", "/chat?name=" + "a" * 33,
            "/chat?room=" + "b" * 33, "/chat?name=" + "%C3%A9" * 17, "/chat?name=a%0Ab",
            "/chat?name=%00", "/chat?name=%7F", "/chat?name=%C2%85", "/chat?name=%FF",
            "/chat?name=%C3", "/chat?name=%E2%80%A8", "/chat?room=a%09b",
            "/chat?name=a&name=b", "/chat?room=a&room=a", "/chat?room=%ED%A0%80",
        ]
        for target in bad:
            self.assertEqual(http_upgrade_status(port, target), 400, target)
        for target in ["/chat?name=" + "a" * 32, "/chat?room=" + "b" * 32 + "&name=x",
                       "/chat?name=%C3%A9", "/chat?", "/chat?x", "/chat?name"]:
            with RawWS(port, target) as c:
                op, payload = c.read_message()
                self.assertEqual(op, OP_TEXT)
                self.assertEqual(json.loads(payload)["type"], "welcome")

    # ---- presence --------------------------------------------------------------------------

    def test_presence_20_clients(self):
        room = uniq()
        n = 20

        async def go():
            clients = []
            names = []
            for i in range(n):
                ws, w = await join(self.server, room, "p%02d" % i)
                self.assertEqual(w["you"], "p%02d" % i)
                self.assertEqual(sorted(w["members"]), sorted(names + [w["you"]]))
                clients.append(ws)
                names.append(w["you"])
            # Everyone saw the later joins, in join order, each with the members at that time.
            for i, ws in enumerate(clients):
                for k in range(i + 1, n):
                    ev = await recv_json(ws)
                    self.assertEqual(ev["type"], "join", "client %d" % i)
                    self.assertEqual(ev["name"], names[k])
                    self.assertEqual(sorted(ev["members"]), sorted(names[:k + 1]))
            # Half of them leave, some with a close, some by dropping TCP.
            leaving = clients[n // 2:]
            for k, ws in enumerate(leaving):
                if k % 2:
                    await ws.close()
                else:
                    ws.transport.abort()
            staying = clients[:n // 2]
            seqs = []
            for ws in staying:
                seq = []
                for _ in range(len(leaving)):
                    ev = await recv_json(ws, 15)
                    self.assertEqual(ev["type"], "leave")
                    seq.append((ev["name"], tuple(sorted(ev["members"]))))
                seqs.append(seq)
                self.assertEqual(sorted(s[0] for s in seq), sorted(names[n // 2:]))
                self.assertEqual(list(seq[-1][1]), sorted(names[:n // 2]))
            for s in seqs[1:]:
                self.assertEqual(s, seqs[0], "all members see the same leave sequence")
            # Nothing else arrives.
            for ws in staying:
                try:
                    extra = await asyncio.wait_for(ws.recv(), 0.3)
                    self.fail("unexpected %r" % (extra,))
                except asyncio.TimeoutError:
                    pass
            for ws in staying:
                await ws.close()
        wisptest.run(go(), 90)

    def test_killed_client_leaves(self):
        room = uniq()

        async def go():
            a, _ = await join(self.server, room, "watcher")
            loop = asyncio.get_running_loop()

            def raw_join():
                c = RawWS(self.server.port, "/chat?room=%s&name=victim" % room)
                op, payload = c.read_message(10)
                self.assertEqual(json.loads(payload)["you"], "victim")
                return c
            c = await loop.run_in_executor(None, raw_join)
            ev = await recv_json(a)
            self.assertEqual((ev["type"], ev["name"]), ("join", "victim"))
            c.rst()  # TCP reset: no close frame
            ev = await recv_json(a, 15)
            self.assertEqual(ev, {"type": "leave", "name": "victim", "members": ["watcher"]})
            await a.close()
        wisptest.run(go(), 30)

    # ---- messages --------------------------------------------------------------------------

    def test_everyone_sees_one_order(self):
        room = uniq()
        n, per = 20, 25

        async def go():
            clients = []
            for i in range(n):
                ws, _ = await join(self.server, room, "s%02d" % i)
                clients.append(ws)
            for i, ws in enumerate(clients):  # drain the later joins
                for _ in range(n - 1 - i):
                    self.assertEqual((await recv_json(ws))["type"], "join")

            async def sender(i, ws):
                for k in range(per):
                    await say(ws, "%d:%d" % (i, k))
                    if k % 5 == 0:
                        await asyncio.sleep(0)

            async def reader(ws):
                got = []
                while len(got) < n * per:
                    m = await recv_json(ws, 20)
                    self.assertEqual(m["type"], "message", m)
                    got.append((m["from"], m["text"], m["ts"]))
                return got

            readers = [asyncio.ensure_future(reader(ws)) for ws in clients]
            await asyncio.gather(*(sender(i, ws) for i, ws in enumerate(clients)))
            seqs = await asyncio.gather(*readers)
            first = seqs[0]
            self.assertEqual(len(set(t for _, t, _ in first)), n * per, "duplicates")
            for s in seqs[1:]:
                self.assertEqual(s, first, "every client sees the same sequence")
            last = {}
            prev_ts = 0
            for frm, text, ts in first:
                i, k = map(int, text.split(":"))
                self.assertEqual(frm, "s%02d" % i, "the room's name for the sender")
                self.assertGreater(k, last.get(i, -1), "sender %d reordered" % i)
                last[i] = k
                self.assertGreaterEqual(ts, prev_ts)
                prev_ts = ts
            # A later joiner's history is the tail of that same sequence.
            ws, w = await join(self.server, room, "late")
            self.assertEqual([(h["from"], h["text"], h["ts"]) for h in w["history"]],
                             first[-HISTORY:])
            for c in clients + [ws]:
                await c.close()
        wisptest.run(go(), 120)

    def test_rooms_are_isolated(self):
        r1, r2 = uniq(), uniq()

        async def go():
            a, _ = await join(self.server, r1, "same")
            b, wb = await join(self.server, r2, "same")
            self.assertEqual(wb["members"], ["same"])  # another room: the name is free
            c, wc = await join(self.server, r1, "same", path="/chat2")  # another mount
            self.assertEqual(wc["members"], ["same"])
            self.assertEqual(wc["history"], [])
            await say(a, "in r1")
            await say(b, "in r2")
            await say(c, "in chat2 r1")
            self.assertEqual((await recv_json(a))["text"], "in r1")
            self.assertEqual((await recv_json(b))["text"], "in r2")
            self.assertEqual((await recv_json(c))["text"], "in chat2 r1")
            for ws in (a, b, c):
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
                await ws.close()
        wisptest.run(go(), 30)

    def test_bad_client_messages(self):
        room = uniq()

        async def go():
            a, _ = await join(self.server, room, "alice")
            cases = [
                ("not json", "invalid JSON"),
                ("", "invalid JSON"),
                ("[1,2]", "invalid JSON"),
                ('{"type":"message","text":"x",}', "invalid JSON"),
                ('{"type":"message","text":"x","text":"y"}', "invalid JSON"),
                ('{"type":"message","text":"\\ud800"}', "invalid JSON"),
                ("{}", "missing type"),
                ('{"type":7,"text":"x"}', "missing type"),
                ('{"type":"nope","text":"x"}', "unknown type"),
                ('{"type":"a-very-long-type-name","text":"x"}', "unknown type"),
                ('{"type":"message"}', "missing text"),
                ('{"type":"message","text":null}', "missing text"),
                ('{"type":"message","text":""}', "empty text"),
                (json.dumps({"type": "message", "text": "x" * 4097}),
                 "text too long (max 4096 bytes)"),
                (json.dumps({"type": "message", "text": "€" * 1366}),
                 "text too long (max 4096 bytes)"),
                (b"\x00binary", "binary messages are not supported"),
            ]
            for sent, err in cases:
                await expect_error(self, a, sent, err)
            # Still connected, still in the room; a spoofed "from" is ignored.
            await a.send(json.dumps({"type": "message", "text": "ok", "from": "mallory",
                                     "extra": [1, {"x": None}]}))
            m = await recv_json(a)
            self.assertEqual((m["type"], m["from"], m["text"]), ("message", "alice", "ok"))
            await a.close()
        wisptest.run(go(), 30)

    def test_oversized_frame_closes_1009(self):
        room = uniq()

        async def go():
            a, _ = await join(self.server, room, "big")
            await a.send(json.dumps({"type": "message", "text": "x" * 70000}))
            with self.assertRaises(websockets.ConnectionClosed):
                await asyncio.wait_for(a.recv(), 10)
            self.assertEqual(a.close_code, 1009)
        wisptest.run(go(), 20)

    # ---- limits and the rooms' life ------------------------------------------------------------

    def test_room_full_and_too_many_rooms(self):
        async def go():
            r1, r2, r3 = uniq(), uniq(), uniq()
            members = [(await join(self.server, r1, "m%d" % i, "/small"))[0] for i in range(3)]
            ws = await connect(self.server, r1, "m3", "/small")
            with self.assertRaises(websockets.ConnectionClosed):
                await recv_json(ws)
            self.assertEqual((ws.close_code, ws.close_reason), (1013, "room is full"))
            # max_rooms=2: a second room is fine, a third is refused at the upgrade.
            other, _ = await join(self.server, r2, "x", "/small")
            status = await asyncio.get_running_loop().run_in_executor(
                None, http_upgrade_status, self.server.port, "/small?room=" + r3)
            self.assertEqual(status, 503)
            # Joining an existing room is still fine at the room limit, once there is room in
            # it (the room learns of the departure asynchronously: retry until it has).
            await members[0].close()
            deadline = time.monotonic() + 10
            while True:
                try:
                    again, w = await join(self.server, r1, "m9", "/small")
                    break
                except websockets.ConnectionClosed as e:
                    self.assertEqual((e.rcvd.code, e.rcvd.reason), (1013, "room is full"))
                    self.assertLess(time.monotonic(), deadline, "the leave was never seen")
                    await asyncio.sleep(0.05)
            self.assertEqual(sorted(w["members"]), ["m1", "m2", "m9"])
            # linger=0: once r2 is empty it stops, and a new room can be made.
            await other.close()

            async def third_room():
                try:
                    ws3, _ = await join(self.server, r3, "y", "/small")
                except websockets.InvalidStatusCode as e:
                    self.assertEqual(e.status_code, 503)
                    return None
                return ws3
            deadline = time.monotonic() + 10
            ws3 = None
            while ws3 is None:
                self.assertLess(time.monotonic(), deadline, "r2 never stopped")
                ws3 = await third_room()
                if ws3 is None:
                    await asyncio.sleep(0.05)
            for w_ in members[1:] + [again, ws3]:
                await w_.close()
        wisptest.run(go(), 40)

    def test_empty_room_stops_and_restarts(self):
        # linger=0 on /quick: each time the room empties it stops, and the next join makes a
        # new one; joins racing with the stop must still get in (the JOIN is retried). Clients
        # come and go concurrently for a while; every one gets a welcome.
        room = uniq()
        rounds, parallel = 15, 8

        async def one(i, k):
            ws, w = await join(self.server, room, "c%d" % i, "/quick")
            await say(ws, "hello %d %d" % (i, k))
            while True:
                m = await recv_json(ws)
                if m["type"] == "message" and m["text"] == "hello %d %d" % (i, k):
                    break
            await ws.close()
            return w

        async def go():
            for k in range(rounds):
                ws = await asyncio.gather(*(one(i, k) for i in range(parallel)))
                self.assertEqual(len(ws), parallel)
            # Once everyone has left, the room is gone: a newcomer gets an empty history.
            deadline = time.monotonic() + 10
            while True:
                ws, w = await join(self.server, room, "last", "/quick")
                await ws.close()
                if w["history"] == []:
                    break
                self.assertLess(time.monotonic(), deadline, "the empty room never stopped")
                await asyncio.sleep(0.05)
        wisptest.run(go(), 90)

    def test_concurrent_creation_of_one_room(self):
        # Many connections find no room at once and all spawn one: one registration wins, the
        # others' rooms fail their init and their connections join the winner. Repeated on
        # fresh rooms; with linger=0 the rooms go away afterwards.
        async def go():
            for _ in range(5):
                room = uniq()
                n = 30
                res = await asyncio.gather(*(join(self.server, room, "c", "/quick")
                                             for _ in range(n)))
                names = sorted(w["you"] for _, w in res)
                self.assertEqual(len(set(names)), n)
                self.assertEqual(set(names), {"c"} | {"c-%d" % k for k in range(2, n + 1)})
                # One room: everyone hears the same message once.
                await say(res[0][0], "one room")
                for ws, _ in res:
                    while True:
                        m = await recv_json(ws, 15)
                        if m["type"] == "message":
                            self.assertEqual(m["text"], "one room")
                            break
                await asyncio.gather(*(ws.close() for ws, _ in res))
        wisptest.run(go(), 90)

    def test_history_lingers_by_default(self):
        room = uniq()

        async def go():
            a, _ = await join(self.server, room, "a")
            await say(a, "remember me")
            await recv_json(a)
            await a.close()
            b, w = await join(self.server, room, "b")
            self.assertEqual([h["text"] for h in w["history"]], ["remember me"])
            if w["members"] != ["b"]:
                # b came in before the room saw a go: then b hears a leave
                self.assertEqual(sorted(w["members"]), ["a", "b"])
                self.assertEqual(await recv_json(b),
                                 {"type": "leave", "name": "a", "members": ["b"]})
            await b.close()
        wisptest.run(go(), 20)


class ChatMountArgsTest(wisptest.unittest.TestCase):
    """Bad mount arguments stop the program with status 1 and a message."""

    def test_bad_args(self):
        for arg in ["history=1001", "history=-1", "history=", "history=5x", "bogus=1",
                    "history", "max_members=0", "linger=1,", "max_rooms=99999999999"]:
            proc = subprocess.run([wisptest.wisp_binary(), "--listen", "127.0.0.1:0", "--route",
                                   "/c=chat:" + arg], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=20)
            self.assertEqual(proc.returncode, 1, "%s: %r" % (arg, proc.stderr))
            self.assertIn(b"chat", proc.stderr, arg)


if __name__ == "__main__":
    wisptest.main(budget=200)
