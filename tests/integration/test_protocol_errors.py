"""Protocol violations: each closes the connection with the right code (1002, 1007, 1009), and the
server then closes TCP. The server runs with --max-msg 1024 (frame and message limit)."""

import asyncio
import struct

import websockets

import wisptest
from wisptest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS,
                      close_frame, frame)

MAX = 1024


class ProtocolErrorTest(wisptest.ServerTestCase):
    server_args = ("--max-msg", MAX, "--close-ms", 2000)

    def violate(self, data, code, why=None, path="/echo"):
        """Send data on a fresh connection; expect a close with code, then EOF; check /stats."""
        before = self.stats()
        with RawWS(self.server.port, path) as c:
            c.send(data)
            c.expect_close(code)
        if why is not None:
            wisptest.stats_wait(
                self.server,
                lambda s: wisptest.why_count(s, why) > wisptest.why_count(before, why)
                and wisptest.code_count(s, code) > wisptest.code_count(before, code),
                what="a close with why %d and code %d" % (why, code))

    # ---- 1007 ------------------------------------------------------------------------------

    def test_invalid_utf8_text(self):
        self.violate(frame(OP_TEXT, b"ok \xff\xfe"), 1007, wisptest.WHY_BAD_UTF8)

    def test_overlong_and_surrogate_utf8(self):
        self.violate(frame(OP_TEXT, b"\xc0\xaf"), 1007)         # overlong '/'
        self.violate(frame(OP_TEXT, b"\xed\xa0\x80"), 1007)     # UTF-16 surrogate

    def test_invalid_utf8_in_later_fragment(self):
        self.violate(frame(OP_TEXT, "fine €".encode(), fin=False)
                     + frame(OP_CONT, b"\x80\x80", fin=True), 1007, wisptest.WHY_BAD_UTF8)

    def test_truncated_utf8_at_message_end(self):
        self.violate(frame(OP_TEXT, "€".encode()[:2]), 1007)

    def test_invalid_utf8_close_reason(self):
        # server.h: WISP_WHY_BAD_UTF8 covers "a text message or close reason" (sent 1007).
        self.violate(close_frame(1000, b"\xff"), 1007)

    # ---- 1009 ------------------------------------------------------------------------------

    def test_frame_over_limit(self):
        self.violate(frame(OP_BINARY, b"z" * (MAX + 1)), 1009, wisptest.WHY_TOO_BIG)

    def test_frame_header_over_limit(self):
        # Only the header announcing a huge frame: refused without waiting for the payload.
        self.violate(frame(OP_BINARY, b"", length=1 << 40), 1009, wisptest.WHY_TOO_BIG)

    def test_message_over_limit_in_fragments(self):
        self.violate(frame(OP_BINARY, b"a" * 600, fin=False) + frame(OP_CONT, b"b" * 600),
                     1009, wisptest.WHY_TOO_BIG)

    def test_at_limit_is_fine(self):
        with RawWS(self.server.port, "/echo") as c:
            c.send_frame(OP_BINARY, b"q" * MAX)
            self.assertEqual(c.read_message(), (OP_BINARY, b"q" * MAX))
            c.send_frame(OP_TEXT, b"a" * 512, fin=False)
            c.send_frame(OP_CONT, b"b" * 512)
            self.assertEqual(c.read_message(), (OP_TEXT, b"a" * 512 + b"b" * 512))
            c.send(close_frame(1000))
            c.expect_close(1000, answer=False)

    def test_websockets_client_too_big(self):
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send(b"x" * (MAX + 100))
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                self.assertEqual(ws.close_code, 1009)
        wisptest.run(go(), 15)

    # ---- 1002 ------------------------------------------------------------------------------

    def test_unmasked_frame(self):
        self.violate(frame(OP_TEXT, b"hello", mask=False), 1002, wisptest.WHY_PROTOCOL)

    def test_reserved_opcodes(self):
        for op in (0x3, 0x7, 0xB, 0xF):
            with self.subTest(opcode=op):
                self.violate(frame(op, b"x"), 1002, wisptest.WHY_PROTOCOL)

    def test_rsv_bits(self):
        for rsv in (1, 2, 4):
            with self.subTest(rsv=rsv):
                self.violate(frame(OP_TEXT, b"x", rsv=rsv), 1002)

    def test_control_frame_too_long(self):
        self.violate(frame(OP_PING, b"p" * 126), 1002)

    def test_fragmented_control_frame(self):
        self.violate(frame(OP_PING, b"p", fin=False), 1002)

    def test_unexpected_continuation(self):
        self.violate(frame(OP_CONT, b"orphan"), 1002)

    def test_new_message_inside_fragmented_one(self):
        self.violate(frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), 1002)

    def test_bad_close_codes(self):
        for code in (999, 1004, 1005, 1006, 1015, 2999, 5000):
            with self.subTest(code=code):
                self.violate(close_frame(code), 1002)

    def test_one_byte_close_payload(self):
        self.violate(frame(OP_CLOSE, b"\x03"), 1002)

    def test_non_minimal_length(self):
        # 5 bytes announced with the 16-bit length form
        self.violate(struct.pack("!BBH", 0x82, 0x80 | 126, 5) + b"\0\0\0\0" + b"hello", 1002)

    def test_server_still_serves(self):
        # After all those failures the server still echoes.
        async def go():
            async with wisptest.ws_connect(self.server, "/echo") as ws:
                await ws.send("still here")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still here")
        wisptest.run(go(), 10)

    def test_no_answer_to_our_close_after_error(self):
        # The server sent 1002 and we never answer: it closes TCP after close_timeout_ms.
        with RawWS(self.server.port, "/echo") as c:
            c.send(frame(OP_TEXT, b"x", mask=False))
            code, _ = c.read_close()
            self.assertEqual(code, 1002)
            took, _ = wisptest.wait_eof(c.sock, 8)
            self.assertLess(took, 6)


if __name__ == "__main__":
    wisptest.main(budget=100)
