"""Echo: message sizes across every length encoding, fragmented input, ping/pong, close codes."""

import asyncio
import os
import struct

import websockets

import wisptest
from wisptest import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS, frame

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def make_text(n):
    """A str of exactly n UTF-8 bytes, with 2-, 3- and 4-byte characters in it."""
    unit = "héllo wörld € 😀 "
    s = unit * (n // len(unit.encode()) + 1)
    b = s.encode()[:n]
    # cut back to a character boundary, pad with ASCII
    while True:
        try:
            t = b.decode()
            break
        except UnicodeDecodeError:
            b = b[:-1]
    return t + "x" * (n - len(t.encode()))


async def recv(ws, n):
    try:
        return await asyncio.wait_for(ws.recv(), 20)
    except websockets.ConnectionClosed as e:
        raise AssertionError("echo of %d bytes: connection closed: %s" % (n, e)) from None


class EchoTest(wisptest.ServerTestCase):
    # The send cap counts frame headers too: with the default cap (16 MiB, equal to the default
    # max message) echoing a 16 MiB message would overflow it (1008). Room for the largest echo:
    server_args = ("--echo-cap", 32 << 20)

    def test_binary_sizes(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                for n in SIZES:
                    data = os.urandom(n)
                    await ws.send(data)
                    got = await recv(ws, n)
                    self.assertIsInstance(got, bytes, "size %d" % n)
                    self.assertEqual(len(got), n)
                    self.assertTrue(got == data, "binary echo of %d bytes differs" % n)
        wisptest.run(go(), 60)

    def test_text_sizes(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                for n in SIZES:
                    text = make_text(n)
                    self.assertEqual(len(text.encode()), n)
                    await ws.send(text)
                    got = await recv(ws, n)
                    self.assertIsInstance(got, str, "size %d" % n)
                    self.assertTrue(got == text, "text echo of %d bytes differs" % n)
        wisptest.run(go(), 60)

    def test_fragmented_input(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send(["frag-one ", "", "frag-two ", "€😀 three"])
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5),
                                 "frag-one frag-two €😀 three")
                parts = [os.urandom(n) for n in (1, 0, 70000, 125, 3)]
                await ws.send(parts)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), b"".join(parts))
        wisptest.run(go(), 20)

    def test_fragmented_raw_utf8_split_and_ping_between(self):
        # A multi-byte character split across fragments, and a ping between the fragments:
        # the pong comes first, then the reassembled message.
        with RawWS(self.server.port, "/echo") as c:
            text = "añ€😀z".encode()
            c.send_frame(OP_TEXT, text[:2], fin=False)      # 'a' + first byte of 'ñ'
            c.send_frame(OP_PING, b"between")
            c.send_frame(OP_CONT, text[2:7], fin=False)
            c.send_frame(OP_CONT, text[7:], fin=True)
            self.assertEqual(c.read_message(), (OP_PONG, b"between"))
            self.assertEqual(c.read_message(), (OP_TEXT, text))
            c.send(wisptest.close_frame(1000))
            c.expect_close(1000, answer=False)

    def test_ping_pong(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                for payload in (b"", b"hello", os.urandom(125)):
                    waiter = await ws.ping(payload)
                    await asyncio.wait_for(waiter, 5)  # resolved by a pong with this payload
        wisptest.run(go(), 20)
        with RawWS(self.server.port, "/echo") as c:
            for payload in (b"", b"abc123", bytes(range(125))):
                c.send_frame(OP_PING, payload)
                self.assertEqual(c.read_frame(), (True, OP_PONG, payload))
            c.send(wisptest.close_frame(1000))
            c.expect_close(1000, answer=False)

    def test_close_codes_echoed(self):
        before = self.stats()

        async def go(code, reason):
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send("hi")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "hi")
                await ws.close(code, reason)
                self.assertEqual(ws.close_code, code, "server answered our %d with %r (%r)"
                                 % (code, ws.close_code, ws.close_reason))

        for code, reason in ((1000, "bye"), (4000, "custom reason"), (3000, ""), (1001, "")):
            wisptest.run(go(code, reason), 15)
        s = wisptest.stats_wait(
            self.server,
            lambda s: all(wisptest.code_count(s, c) > wisptest.code_count(before, c)
                          for c in (1000, 4000, 3000, 1001)),
            what="closes with 1000, 4000, 3000, 1001")
        self.assertGreaterEqual(wisptest.why_count(s, wisptest.WHY_NORMAL),
                                wisptest.why_count(before, wisptest.WHY_NORMAL) + 4)

    def test_close_without_code(self):
        # An empty close frame: on_closed sees 1005; the server answers with a close frame.
        before = self.stats()
        with RawWS(self.server.port, "/echo") as c:
            c.send(wisptest.close_frame(None))
            f = c.read_frame()
            self.assertIsNotNone(f, "EOF instead of a close answer")
            self.assertEqual(f[1], OP_CLOSE)
            self.assertIn(len(f[2]), (0, 2), "close answer payload %r" % f[2])
            if len(f[2]) == 2:
                self.assertNotIn(struct.unpack("!H", f[2])[0], (1005, 1006))
            wisptest.wait_eof(c.sock, 5)
        wisptest.stats_wait(self.server,
                            lambda s: wisptest.code_count(s, 1005)
                            > wisptest.code_count(before, 1005),
                            what="a close with 1005")

    def test_close_after_queued_data(self):
        # Data sent before our close is still echoed before the server's close answer.
        with RawWS(self.server.port, "/echo") as c:
            c.send(frame(OP_BINARY, b"x" * 1000) + frame(OP_TEXT, b"last")
                   + wisptest.close_frame(4001, b"done"))
            self.assertEqual(c.read_message(), (OP_BINARY, b"x" * 1000))
            self.assertEqual(c.read_message(), (OP_TEXT, b"last"))
            c.expect_close(4001, answer=False)

    def test_unknown_close_code_valid_range(self):
        # 4999 is the top of the application range: still valid, echoed.
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.close(4999, "")
                self.assertEqual(ws.close_code, 4999)
        wisptest.run(go(), 15)


if __name__ == "__main__":
    wisptest.main(budget=100)
