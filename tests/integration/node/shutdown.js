'use strict';
// Graceful shutdown: on SIGTERM (and SIGINT) wisp-echo closes every connection with 1001 and
// exits 0, also when a peer never answers its close frame.
const crypto = require('crypto');
const net = require('net');
const { HOST, startServer, connect, echo, expectEqual, within, run, binaryArg } =
  require('./lib');

const binary = binaryArg();
let last;

async function expectCleanExit(srv, ms) {
  const { code, signal } = await within(ms, 'wisp-echo to exit', srv.exited);
  if (code !== 0) {
    throw new Error(`wisp-echo exited with code ${code}, signal ${signal}` +
                    (srv.stderr().trim() ? `; stderr: ${srv.stderr().trim()}` : ''));
  }
}

function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
}

async function shutdownWith(sig, clients) {
  const srv = last = await startServer(binary);
  const socks = await Promise.all(Array.from({ length: clients }, () => connect(srv.url('/'))));
  await Promise.all(socks.map((ws, i) => echo(ws, `before ${sig} ${i}`)));
  process.kill(srv.proc.pid, sig);
  const closes = await within(10000, 'every client to see the close',
                              Promise.all(socks.map((ws) => ws.closed)));
  const wrong = closes.filter((c) => c.code !== 1001);
  if (wrong.length) {
    throw new Error(`${wrong.length} of ${clients} clients got close code ${wrong[0].code} ` +
                    `(${JSON.stringify(wrong[0].reason)}), not 1001`);
  }
  await expectCleanExit(srv, 10000);
  if (!(await refused(srv.port))) throw new Error('the port still accepts after the exit');
}

// A raw client that completes the opening handshake and then ignores everything it receives
// (in particular the server's close frame) without closing TCP.
function deafClient(port) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const s = net.connect(port, HOST, () => {
      s.write(`GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
              `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
              'Sec-WebSocket-Version: 13\r\n\r\n');
    });
    let head = '';
    s.on('data', (d) => {
      if (head === null) return; // deaf from now on
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        if (!/^HTTP\/1\.1 101 /.test(head)) reject(new Error(`no 101: ${head.split('\r\n')[0]}`));
        head = null;
        resolve(s);
      }
    });
    s.on('error', () => { /* the server may reset it at the end */ });
  });
}

run('shutdown', [
  ['SIGTERM: 50 clients get 1001, exit 0', () => shutdownWith('SIGTERM', 50), 25000],
  ['SIGINT: 5 clients get 1001, exit 0', () => shutdownWith('SIGINT', 5), 25000],
  ['SIGTERM with no client connected: exit 0', async () => {
    const srv = last = await startServer(binary);
    process.kill(srv.proc.pid, 'SIGTERM');
    await expectCleanExit(srv, 5000);
  }],
  ['a peer that never answers the close does not keep it alive', async () => {
    const srv = last = await startServer(binary);
    const deaf = await deafClient(srv.port);
    const ws = await connect(srv.url('/'));
    await echo(ws, 'hello');
    process.kill(srv.proc.pid, 'SIGTERM');
    const c = await within(10000, 'the close', ws.closed);
    expectEqual(c.code, 1001, 'close code of the well-behaved client');
    // close_timeout_ms (5 s) or the shutdown deadline (5 s) ends the deaf one.
    await expectCleanExit(srv, 15000);
    deaf.destroy();
  }, 25000],
], { diagnostics: () => last && last.report() });
