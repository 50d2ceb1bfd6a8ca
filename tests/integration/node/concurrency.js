'use strict';
// 1,000 clients connected at the same time, each echoing 5 messages of its own, then closing.
const crypto = require('crypto');
const { startServer, stopServer, connect, echo, expectEqual, closeAndWait, run,
        binaryArg } = require('./lib');

const CLIENTS = 1000;
const MESSAGES = 5;
const binary = binaryArg();
let srv;
let clients = [];

run('concurrency', [
  ['start wisp-echo', async () => { srv = await startServer(binary); }],
  [`${CLIENTS} clients connect at once`, async () => {
    const opened = await Promise.allSettled(
      Array.from({ length: CLIENTS }, () => connect(srv.url('/'))));
    clients = opened.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const failed = opened.filter((r) => r.status === 'rejected');
    if (failed.length) {
      throw new Error(`${failed.length} of ${CLIENTS} did not connect; first: ` +
                      `${failed[0].reason && failed[0].reason.message}`);
    }
  }],
  [`each echoes ${MESSAGES} messages (all clients at once)`, async () => {
    const results = await Promise.allSettled(clients.map(async (ws, i) => {
      for (let k = 0; k < MESSAGES; k++) {
        if (k % 2 === 0) {
          await echo(ws, `client ${i} message ${k} ${'.'.repeat((i * 7 + k) % 300)}`);
        } else {
          await echo(ws, crypto.randomBytes(1 + ((i * 13 + k * 101) % 4000)));
        }
      }
    }));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) {
      throw new Error(`${failed.length} of ${clients.length} clients failed; first: ` +
                      `${failed[0].reason && failed[0].reason.message}`);
    }
  }, 40000],
  ['all close with 1000', async () => {
    const closes = await Promise.allSettled(clients.map((ws) => closeAndWait(ws, 1000, 'bye')));
    const bad = closes.filter((r) => r.status === 'rejected' || r.value.code !== 1000);
    if (bad.length) {
      const b = bad[0];
      throw new Error(`${bad.length} closes went wrong; first: ` +
                      (b.status === 'rejected' ? b.reason.message : `code ${b.value.code}`));
    }
  }],
  ['the server still echoes', async () => {
    const ws = await connect(srv.url('/'));
    await echo(ws, 'still here');
    expectEqual((await closeAndWait(ws, 1000)).code, 1000, 'close code');
  }],
  ['SIGTERM: exit 0', () => stopServer(srv)],
], { diagnostics: () => srv && srv.report() });
