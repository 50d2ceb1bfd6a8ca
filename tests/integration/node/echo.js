'use strict';
// Messages of every length class come back byte for byte, as text and as binary: empty, one
// byte, the largest 7-bit length (125), the smallest 16-bit one (126), 64 KiB (the 64-bit
// length begins at 65536), 1 MiB and 16 MiB (wisp-echo's default message limit).
const crypto = require('crypto');
const { startServer, stopServer, connect, next, echo, expectMessage, closeAndWait,
        expectEqual, run, binaryArg } = require('./lib');

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];

// Exactly n bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters, so that text
// validation on the server sees every kind and some cross frame and buffer boundaries.
function utf8Text(n) {
  const unit = Buffer.from('aé€😀', 'utf8'); // 10 bytes
  const buf = Buffer.alloc(n, 0x78);
  let off = 0;
  while (off + unit.length <= n) {
    unit.copy(buf, off);
    off += unit.length;
  }
  return buf.toString('utf8'); // the tail stays 'x'
}

const binary = binaryArg();
let srv;
let ws;

const checks = [
  ['start wisp-echo', async () => {
    srv = await startServer(binary);
    expectEqual(srv.workers, 2, 'workers on the listening line');
    ws = await connect(srv.url('/'));
  }],
];
for (const n of SIZES) {
  checks.push([`text ${n} B`, async () => {
    const s = utf8Text(n);
    expectEqual(Buffer.byteLength(s), n, 'test text length');
    await echo(ws, s, { binary: false });
  }]);
  checks.push([`binary ${n} B`, () => echo(ws, crypto.randomBytes(n))]);
}
checks.push(
  ['every size pipelined on one connection, in order', async () => {
    const sent = [];
    for (const n of SIZES) {
      sent.push({ data: Buffer.from(utf8Text(n), 'utf8'), isBinary: false });
      sent.push({ data: crypto.randomBytes(n), isBinary: true });
    }
    for (const m of sent) ws.send(m.data, { binary: m.isBinary });
    for (const m of sent) expectMessage(await next(ws, 20000), m.data, m.isBinary);
  }],
  ['any path echoes', async () => {
    const other = await connect(srv.url('/some/other/path?x=1'));
    await echo(other, 'hello from another path');
    const c = await closeAndWait(other, 1000);
    expectEqual(c.code, 1000, 'close code');
  }],
  ['close 1000', async () => {
    const c = await closeAndWait(ws, 1000, 'done');
    expectEqual(c.code, 1000, 'close code');
  }],
);

checks.push(['SIGTERM: exit 0', () => stopServer(srv)]);

run('echo', checks, { diagnostics: () => srv && srv.report() });
