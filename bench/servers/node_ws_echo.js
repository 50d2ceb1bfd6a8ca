#!/usr/bin/env node
// node_ws_echo: a WebSocket echo server on Node's `ws` package, a peer baseline for wisp's
// server benchmarks. Each complete message is sent back as it came (text as text, binary as
// binary). No permessage-deflate; ws validates UTF-8 and answers pings and closes itself.
//
//   node node_ws_echo.js [--host 127.0.0.1] --port P      (P = 0 picks a free port)
//
// prints "listening P" on stdout once it accepts connections, exits 0 on SIGTERM/SIGINT.
// Needs `npm install` in this folder (bench/servers/install.sh does it).
'use strict';

const { WebSocketServer } = require('ws');

const MAX_MSG = 16 * 1024 * 1024; // the same cap as lws_echo
const PAUSE_ABOVE = 4 * 1024 * 1024; // stop reading a client that does not read its echoes

function usage() {
  process.stderr.write('usage: node_ws_echo.js [--host ADDR] --port PORT\n');
  process.exit(2);
}

let host = '127.0.0.1';
let port = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--host' && i + 1 < argv.length) host = argv[++i];
  else if (argv[i] === '--port' && i + 1 < argv.length) port = Number(argv[++i]);
  else usage();
}
if (port === null || !Number.isInteger(port) || port < 0 || port > 65535) usage();

const wss = new WebSocketServer({
  host,
  port,
  perMessageDeflate: false,
  maxPayload: MAX_MSG,
  clientTracking: true,
});

wss.on('connection', (ws) => {
  const drained = () => {
    if (ws.isPaused && ws.bufferedAmount < PAUSE_ABOVE / 4) ws.resume();
  };
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary }, drained);
    if (!ws.isPaused && ws.bufferedAmount > PAUSE_ABOVE) ws.pause();
  });
  ws.on('error', () => {}); // a broken client only ends its own connection
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

wss.on('error', (err) => {
  process.stderr.write(`node_ws_echo: ${err.message}\n`);
  process.exit(1);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
