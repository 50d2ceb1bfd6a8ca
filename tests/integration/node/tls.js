'use strict';
// wss:// interop: Node's ws client against `wisp-echo --cert --key`, and wisp-cat (wisp's
// client) against a Node ws server over https, with a CA and a server certificate made here by
// the openssl command. argv[2] is wisp-echo's path (wisp-cat is in BUILD/examples).
const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const { execFileSync, spawn } = require('child_process');
const { WebSocketServer } = require('ws');
const { run, binaryArg, startServer, connect, expectEqual, within, next } = require('./lib');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-node-tls-'));
const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
  '-days', '2', '-subj', '/CN=wisp node test CA');
ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr',
  '-subj', '/CN=localhost');
fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
  '-out', 'srv.pem', '-days', '2', '-extfile', 'ext');
const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

let srv;
const open = (url, opts = {}) => connect(url, { ca, maxPayload: 0, ...opts });

const cat = path.join(path.dirname(binaryArg()), '..', 'examples', 'wisp-cat');

const checks = [
  ['wisp-cat against a Node wss server', async () => {
    const server = https.createServer({
      key: fs.readFileSync(path.join(dir, 'srv.key')),
      cert: fs.readFileSync(path.join(dir, 'srv.pem')),
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`tls:${m}`)));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const r = await within(20000, 'wisp-cat', new Promise((resolve) => {
      const p = spawn(cat, ['--ca', path.join(dir, 'ca.pem'),
        `wss://localhost:${server.address().port}/`]);
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; });
      p.on('close', (code) => resolve({ code, out, err }));
      p.stdin.end('one\ntwo\n');
    }));
    wss.close();
    server.close();
    expectEqual(r.code, 0, `exit status (stderr: ${r.err})`);
    expectEqual(r.out, 'tls:one\ntls:two\n', 'output');
  }],
  ['start wisp-echo with TLS', async () => {
    srv = await startServer(binaryArg(),
      ['--cert', path.join(dir, 'srv.pem'), '--key', path.join(dir, 'srv.key')]);
  }],
  ['echo over wss', async () => {
    const ws = await within(5000, 'open', open(`wss://localhost:${srv.port}/tls`));
    for (const m of ['hello over tls', Buffer.alloc(300000, 7)]) {
      ws.send(m);
      const got = await next(ws);
      expectEqual(Buffer.compare(Buffer.from(got.data), Buffer.from(m)), 0, 'echo');
    }
    ws.close(1000);
    expectEqual((await within(5000, 'close', ws.closed)).code, 1000, 'close code');
  }],
  ['an untrusted server is refused by the client', async () => {
    let refused = false;
    try {
      const ws = await within(5000, 'open', open(`wss://localhost:${srv.port}/`, { ca: undefined }));
      ws.terminate();
    } catch (e) {
      refused = /self.signed|unable to verify|certificate/i.test(String(e && e.message));
    }
    expectEqual(refused, true, 'verification failure');
  }],
  ['SIGTERM closes a wss client with 1001', async () => {
    const ws = await within(5000, 'open', open(`wss://localhost:${srv.port}/`));
    srv.proc.kill('SIGTERM');
    expectEqual((await within(10000, 'close', ws.closed)).code, 1001, 'close code');
    const { code } = await within(10000, 'exit', srv.exited);
    expectEqual(code, 0, 'exit status');
  }],
];

run('tls', checks, { diagnostics: () => (srv ? srv.report() : '') });
