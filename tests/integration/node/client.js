'use strict';
// wisp's client role (examples/wisp-cat) against a Node `ws` server: echo, fragments from the
// server, a subprotocol, and a close the server starts. argv[2] is wisp-echo's path; wisp-cat
// is found beside it (BUILD/examples/wisp-cat).
const path = require('path');
const { spawn } = require('child_process');
const { WebSocketServer } = require('ws');
const { run, binaryArg, expectEqual, within } = require('./lib');

const cat = path.join(path.dirname(binaryArg()), '..', 'examples', 'wisp-cat');

function listen(onConnection, options = {}) {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options }, () => resolve(wss));
    wss.on('connection', onConnection);
  });
}

// Run wisp-cat with lines on stdin; resolves {code, out (lines), err}.
function runCat(url, lines, args = []) {
  return new Promise((resolve) => {
    const p = spawn(cat, [...args, url]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out: out.split('\n').slice(0, -1), err }));
    p.stdin.end(lines.map((l) => l + '\n').join(''));
  });
}

const checks = [
  ['echo through a ws server', async () => {
    const wss = await listen((ws) => ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary })));
    const lines = ['one', '', 'ünïcødé', 'z'.repeat(200000)];
    const r = await within(20000, 'wisp-cat', runCat(`ws://127.0.0.1:${wss.address().port}/e`, lines));
    wss.close();
    expectEqual(r.code, 0, `exit status (stderr: ${r.err})`);
    expectEqual(JSON.stringify(r.out), JSON.stringify(lines), 'echoed lines');
  }],
  ['fragments and binary from the server', async () => {
    const wss = await listen((ws) => ws.on('message', (m) => {
      const s = m.toString();
      ws.send(s.slice(0, 3), { fin: false });
      ws.send(s.slice(3), { fin: true });
      ws.send(Buffer.from([1, 2, 3, 4]), { binary: true });
    }));
    const r = await within(20000, 'wisp-cat',
      runCat(`ws://127.0.0.1:${wss.address().port}/`, ['abcdef'], ['--expect', '2']));
    wss.close();
    expectEqual(r.code, 0, `exit status (stderr: ${r.err})`);
    expectEqual(JSON.stringify(r.out), JSON.stringify(['abcdef', '[binary 4 bytes]']), 'output');
  }],
  ['subprotocol', async () => {
    const wss = await listen((ws) => ws.on('message', () => ws.send(`proto=${ws.protocol}`)),
      { handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
    const r = await within(20000, 'wisp-cat',
      runCat(`ws://127.0.0.1:${wss.address().port}/`, ['x'], ['--protocol', 'chat']));
    wss.close();
    expectEqual(r.code, 0, `exit status (stderr: ${r.err})`);
    expectEqual(JSON.stringify(r.out), JSON.stringify(['proto=chat']), 'output');
  }],
  ['the server closes with 4002', async () => {
    const wss = await listen((ws) => ws.on('message', () => ws.close(4002, 'enough')));
    const r = await within(20000, 'wisp-cat', runCat(`ws://127.0.0.1:${wss.address().port}/`, ['x']));
    wss.close();
    expectEqual(r.code, 0, `exit status (stderr: ${r.err})`);
    if (!r.err.includes('closed 4002 "enough" by peer')) throw new Error(`stderr: ${r.err}`);
  }],
];

run('client', checks);
