'use strict';
// wisp-echo's command line: help, strict option parsing, a port in use, and that the limits
// it takes reach the server.
const { spawnSync } = require('child_process');
const net = require('net');
const crypto = require('crypto');
const { HOST, startServer, stopServer, connect, echo, expectEqual, closeAndWait, within, run,
        binaryArg } = require('./lib');

const binary = binaryArg();
let last;

function runOnce(args) {
  const r = spawnSync(binary, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) throw r.error;
  return r;
}

// The option must be refused: status 1, a message on stderr, nothing on stdout.
function refused(args) {
  const r = runOnce(args);
  if (r.status !== 1) {
    throw new Error(`${JSON.stringify(args)}: status ${r.status}, signal ${r.signal}, ` +
                    `stdout ${JSON.stringify(r.stdout)}`);
  }
  if (!r.stderr.trim()) throw new Error(`${JSON.stringify(args)}: no message on stderr`);
  if (r.stdout !== '') throw new Error(`${JSON.stringify(args)}: wrote to stdout: ${r.stdout}`);
  return r.stderr;
}

const BAD = [
  ['--port', 'abc'], ['--port', ''], ['--port', '70000'], ['--port', '65536'], ['--port', '-1'],
  ['--port', '+80'], ['--port', '80x'], ['--port', ' 80'], ['--port', '0x50'],
  ['--port', '99999999999999999999999'], ['--workers', '-1'], ['--workers', '1.5'],
  ['--workers', '100000'], ['--max-conns', '4294967296'], ['--max-message', '0'],
  ['--max-message', '10Q'], ['--max-message', '1KK'], ['--max-message', 'K'],
  ['--send-cap', '0'], ['--send-cap', '99999999999999999999G'], ['--idle-ms', '-5'],
  ['--idle-ms', '5s'], ['--handshake-ms', '0'], ['--handshake-ms', '10K'], ['--path', 'echo'],
  ['--path', ''], ['--host', ''], ['--bogus'], ['--port'], ['extra-argument'], ['-x'],
];

run('cli', [
  ['--help prints the usage and exits 0', () => {
    const r = runOnce(['--help']);
    expectEqual(r.status, 0, 'status');
    if (!/^Usage: wisp-echo/.test(r.stdout)) throw new Error(`stdout: ${r.stdout}`);
    for (const o of ['--host', '--port', '--workers', '--path', '--max-conns', '--max-message',
                     '--send-cap', '--idle-ms', '--handshake-ms']) {
      if (!r.stdout.includes(o)) throw new Error(`--help does not mention ${o}`);
    }
  }],
  [`${BAD.length} bad command lines exit 1 with a message`, () => {
    for (const args of BAD) refused(args);
  }],
  ['a port in use: exit 1 naming the problem', async () => {
    const srv = last = await startServer(binary);
    const msg = refused(['--host', HOST, '--port', String(srv.port)]);
    if (!/in use/i.test(msg)) throw new Error(`message does not say "in use": ${msg.trim()}`);
    const ws = await connect(srv.url('/'));
    await echo(ws, 'the first server is unharmed');
    await closeAndWait(ws, 1000);
    await stopServer(srv);
  }],
  ['a host name that does not resolve: exit 1', () => {
    refused(['--host', 'no-such-host.invalid', '--port', '0']);
  }],
  ['--max-message 1K: 1024 bytes echo, 1025 close with 1009', async () => {
    const srv = last = await startServer(binary, ['--max-message', '1K']);
    const ws = await connect(srv.url('/'));
    await echo(ws, crypto.randomBytes(1024));
    ws.send(crypto.randomBytes(1025));
    expectEqual((await within(5000, 'the close', ws.closed)).code, 1009, 'close code');
    await stopServer(srv);
  }],
  ['--max-conns 2: the third connection gets 503', async () => {
    const srv = last = await startServer(binary, ['--max-conns', '2']);
    const a = await connect(srv.url('/'));
    const b = await connect(srv.url('/'));
    const third = await connect(srv.url('/')).then(() => 'accepted', (e) => e.message);
    if (!/503/.test(third)) throw new Error(`third connection: ${third}`);
    await echo(a, 'a still works');
    await echo(b, 'b still works');
    await stopServer(srv);
  }],
  ['--idle-ms 300: an idle client is pinged', async () => {
    const srv = last = await startServer(binary, ['--idle-ms', '300']);
    const ws = await connect(srv.url('/'));
    await within(3000, 'a ping', new Promise((resolve) => ws.once('ping', resolve)));
    await echo(ws, 'ws answered the ping itself');
    await stopServer(srv);
  }],
  ['--handshake-ms 300: a silent TCP client is dropped', async () => {
    const srv = last = await startServer(binary, ['--handshake-ms', '300']);
    const s = net.connect(srv.port, HOST);
    s.on('error', () => {});
    const t0 = Date.now();
    await within(3000, 'the server to drop a silent client',
                 new Promise((resolve) => s.on('close', resolve)));
    if (Date.now() - t0 < 200) throw new Error(`dropped after ${Date.now() - t0} ms already`);
    await stopServer(srv);
  }],
  ['--path /only: that path echoes, others are refused', async () => {
    const srv = last = await startServer(binary, ['--path', '/only']);
    const ws = await connect(srv.url('/only'));
    await echo(ws, 'on the path');
    const other = await connect(srv.url('/elsewhere')).then(() => 'accepted', (e) => e.message);
    if (!/unexpected HTTP 4\d\d/.test(other)) throw new Error(`other path: ${other}`);
    await stopServer(srv);
  }],
  ['--workers 0 means one per CPU', async () => {
    const srv = last = await startServer(binary, ['--workers', '0']);
    const cpus = require('os').availableParallelism ? require('os').availableParallelism()
                                                    : require('os').cpus().length;
    expectEqual(srv.workers, cpus, 'workers on the listening line');
    await stopServer(srv);
  }],
], { diagnostics: () => last && last.report() });
