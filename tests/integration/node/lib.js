'use strict';
// Shared pieces of the Node interop tests: start wisp-echo on a free port, open ws clients,
// wait for events with deadlines, and run a list of named checks with a summary.
//
// Every script is run as `node SCRIPT.js PATH/TO/wisp-echo` and exits 0 only if every check
// passed. The server is always killed by PID when the script ends, whatever happens.

const { spawn } = require('child_process');
const WebSocket = require('ws');

const HOST = '127.0.0.1';
const LISTENING = /^wisp-echo listening on (\S+):(\d+) \((\d+) workers?\)$/;

const servers = new Set();

function killAll() {
  for (const s of servers) {
    if (s.exitCode === null && s.signalCode === null) {
      try { process.kill(s.pid, 'SIGKILL'); } catch (_) { /* already gone */ }
    }
  }
}
process.on('exit', killAll);

// Reject after ms with a message naming what was awaited.
function within(ms, what, promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Start wisp-echo with extra arguments; resolves once it printed its listening line.
// The result: { proc, port, workers, url(path), stderr(), exited (a promise of {code, signal}) }.
function startServer(binary, args = []) {
  const argv = ['--host', HOST, '--port', '0', '--workers', '2', ...args];
  const proc = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.add(proc);
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { err += d; });
  const ready = new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      const m = LISTENING.exec(line);
      if (!m) {
        reject(new Error(`unexpected first line from wisp-echo: ${JSON.stringify(line)}`));
        return;
      }
      if (m[1] !== HOST) {
        reject(new Error(`wisp-echo says it listens on ${m[1]}, not ${HOST}`));
        return;
      }
      resolve({ port: Number(m[2]), workers: Number(m[3]) });
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`wisp-echo exited before listening (code ${code}, signal ${signal}): ` +
                       err.trim())));
  });
  return within(10000, 'wisp-echo listening line', ready).then(({ port, workers }) => ({
    // What went wrong on the server side, for failure reports.
    report: () => {
      const lines = [];
      if ((proc.exitCode !== null && proc.exitCode !== 0) || proc.signalCode !== null) {
        lines.push(`wisp-echo exited (code ${proc.exitCode}, signal ${proc.signalCode})`);
      }
      if (err.trim()) lines.push(`wisp-echo stderr:\n${err.trim()}`);
      return lines.join('\n');
    },
    proc,
    port,
    workers,
    exited,
    stdout: () => out,
    stderr: () => err,
    url: (path = '/') => `ws://${HOST}:${port}${path}`,
  }));
}

// SIGTERM the server and expect a clean exit (status 0) within ms: also catches crashes and,
// under sanitizers, leaks and errors at shutdown after the traffic a script sent.
async function stopServer(srv, ms = 10000) {
  process.kill(srv.proc.pid, 'SIGTERM');
  const { code, signal } = await within(ms, 'wisp-echo to exit after SIGTERM', srv.exited);
  if (code !== 0) {
    throw new Error(`wisp-echo exited with code ${code}, signal ${signal} after SIGTERM` +
                    (srv.stderr().trim() ? `; stderr: ${srv.stderr().trim().slice(0, 4000)}` : ''));
  }
}

// Open a client; resolves with the open WebSocket. Messages are queued from the start so none
// is lost between awaits: use next(ws) to take the next one.
function connect(url, options = {}) {
  const ws = new WebSocket(url, { handshakeTimeout: 10000, ...options });
  ws.inbox = [];
  ws.waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    const w = ws.waiters.shift();
    if (w) w.resolve(m); else ws.inbox.push(m);
  });
  ws.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      for (const w of ws.waiters.splice(0)) {
        w.reject(new Error(`connection closed (${code} ${reason}) while waiting for a message`));
      }
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
  ws.on('error', () => { /* reported through open or close */ });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`unexpected HTTP ${res.statusCode} to the upgrade`)));
  });
}

// The next message of ws ({data: Buffer, isBinary}).
function next(ws, ms = 10000) {
  if (ws.inbox.length) return Promise.resolve(ws.inbox.shift());
  if (ws.readyState !== WebSocket.OPEN) {
    return Promise.reject(new Error('connection not open while waiting for a message'));
  }
  return within(ms, 'a message', new Promise((resolve, reject) => {
    ws.waiters.push({ resolve, reject });
  }));
}

// Send and wait for the answer; checks that it came back byte for byte with the same type.
async function echo(ws, payload, { binary, ms = 20000 } = {}) {
  const sent = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const isBinary = binary !== undefined ? binary : Buffer.isBuffer(payload);
  ws.send(payload, { binary: isBinary });
  const m = await next(ws, ms);
  expectMessage(m, sent, isBinary);
}

function expectMessage(m, sent, isBinary) {
  if (m.isBinary !== isBinary) {
    throw new Error(`sent ${isBinary ? 'binary' : 'text'}, got ${m.isBinary ? 'binary' : 'text'}`);
  }
  if (m.data.length !== sent.length) {
    throw new Error(`sent ${sent.length} bytes, got ${m.data.length}`);
  }
  if (!m.data.equals(sent)) {
    let i = 0;
    while (m.data[i] === sent[i]) i++;
    throw new Error(`${sent.length} bytes came back changed from offset ${i}`);
  }
}

function expectEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// Close with code/reason and wait for the server's answer.
async function closeAndWait(ws, code, reason, ms = 10000) {
  if (code === undefined) ws.close(); else ws.close(code, reason);
  return within(ms, 'the close handshake', ws.closed);
}

// Run the checks in order, each under its own deadline, the whole script under a watchdog.
// checks: [[name, async fn, timeoutMs?], ...]. Exits the process with 0 or 1. After a failure,
// diagnostics() (if given) may return text to print, e.g. the server's stderr.
async function run(title, checks, { watchdogMs = 55000, diagnostics } = {}) {
  const watchdog = setTimeout(() => {
    console.log(`FAIL ${title}: the whole script took over ${watchdogMs} ms`);
    killAll();
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();
  let failed = 0;
  for (const [name, fn, ms = 30000] of checks) {
    const t0 = Date.now();
    try {
      await within(ms, name, Promise.resolve().then(fn));
      console.log(`ok   ${title}: ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${title}: ${name}: ${e && e.message ? e.message : e}`);
    }
  }
  if (failed && diagnostics) {
    const text = diagnostics();
    if (text) console.log(text.replace(/^/gm, `     ${title}: `));
  }
  killAll();
  console.log(`${title}: ${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

function binaryArg() {
  const b = process.argv[2];
  if (!b) {
    console.error(`usage: node ${process.argv[1]} PATH/TO/wisp-echo`);
    process.exit(2);
  }
  return b;
}

module.exports = {
  HOST, WebSocket, startServer, stopServer, connect, next, echo, expectMessage, expectEqual,
  closeAndWait, within, run, binaryArg, killAll,
};
