'use strict';
// Fragmented messages, ping/pong and the close handshake between the Node ws client and
// wisp-echo.
const crypto = require('crypto');
const { startServer, stopServer, connect, next, expectMessage, expectEqual, closeAndWait,
        within, run, binaryArg } = require('./lib');

const binary = binaryArg();
let srv;
let ws;

function nextPong(sock, ms = 10000) {
  return within(ms, 'a pong', new Promise((resolve) => sock.once('pong', resolve)));
}

// Send chunks as one fragmented message (fin only on the last) and expect it back whole.
async function fragmented(chunks, isBinary) {
  chunks.forEach((c, i) => ws.send(c, { binary: isBinary, fin: i === chunks.length - 1 }));
  const whole = Buffer.concat(chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c))));
  expectMessage(await next(ws), whole, isBinary);
}

async function closeWith(code, reason, expectCode, expectReason) {
  const c = await closeAndWait(await connect(srv.url('/')), code, reason);
  expectEqual(c.code, expectCode, 'close code from wisp-echo');
  expectEqual(c.reason, expectReason, 'close reason from wisp-echo');
}

run('control', [
  ['start wisp-echo', async () => {
    srv = await startServer(binary);
    ws = await connect(srv.url('/'));
  }],
  ['fragmented text (3 frames)', () => fragmented(['Hel', 'lo, ', 'world'], false)],
  ['fragmented text splitting a UTF-8 character', () =>
    fragmented([Buffer.from([0x61, 0xe2]), Buffer.from([0x82]), Buffer.from([0xac, 0x62])],
               false)],
  ['fragmented binary (3 x 100 KiB)', () =>
    fragmented([0, 1, 2].map(() => crypto.randomBytes(100 * 1024)), true)],
  ['fragmented binary with empty first and last frames', () =>
    fragmented([Buffer.alloc(0), crypto.randomBytes(1000), Buffer.alloc(0)], true)],
  ['1000 fragments of 10 bytes', () =>
    fragmented(Array.from({ length: 1000 }, () => crypto.randomBytes(10)), true)],
  ['ping between the fragments of a message', async () => {
    const a = crypto.randomBytes(5000);
    const b = crypto.randomBytes(5000);
    const pong = nextPong(ws);
    ws.send(a, { binary: true, fin: false });
    ws.ping(Buffer.from('in between'));
    ws.send(b, { binary: true, fin: true });
    expectEqual((await pong).toString(), 'in between', 'pong payload');
    expectMessage(await next(ws), Buffer.concat([a, b]), true);
  }],
  ['ping with a payload gets a pong with it', async () => {
    const pong = nextPong(ws);
    ws.ping(Buffer.from('are you there?'));
    expectEqual((await pong).toString(), 'are you there?', 'pong payload');
  }],
  ['empty ping', async () => {
    const pong = nextPong(ws);
    ws.ping();
    expectEqual((await pong).length, 0, 'pong length');
  }],
  ['125-byte binary ping', async () => {
    const p = crypto.randomBytes(125);
    const pong = nextPong(ws);
    ws.ping(p);
    if (!(await pong).equals(p)) throw new Error('pong payload differs');
  }],
  ['still echoing after all that', async () => {
    ws.send('after', { binary: false });
    expectMessage(await next(ws), Buffer.from('after'), false);
  }],
  ['client close 1000 with a reason', () => closeWith(1000, 'normal', 1000, 'normal')],
  ['client close 4001 with a reason', () => closeWith(4001, 'custom ✓', 4001, 'custom ✓')],
  ['client close 1000 without a reason', () => closeWith(1000, undefined, 1000, '')],
  ['client close without a code (1005)', () => closeWith(undefined, undefined, 1005, '')],
  ['client close with a 123-byte reason', () =>
    closeWith(3000, 'r'.repeat(123), 3000, 'r'.repeat(123))],
  ['the first connection closes cleanly', async () => {
    const c = await closeAndWait(ws, 1000);
    expectEqual(c.code, 1000, 'close code');
  }],
  ['SIGTERM: exit 0', () => stopServer(srv)],
], { diagnostics: () => srv && srv.report() });
