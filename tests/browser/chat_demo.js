// The chat demo page (actors/www) in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Starts the server, opens the page twice, joins as alice and bob in a fresh
// room, checks presence on both sides, sends a message from alice and waits for it on both
// pages (escaped, never parsed as HTML), closes alice's page and waits for bob's leave notice,
// then saves a screenshot of bob's page and stops the server with SIGTERM (exit status 0).
//
//   node chat_demo.js
//
// Environment:
//   WISP_BIN        the `wisp` program, started as
//                   $WISP_BIN --listen 127.0.0.1:0 --route /chat=chat --static /=REPO/actors/www
//                   and expected to print "wisp listening on 127.0.0.1:PORT" once it listens.
//   WISP_DEMO_CMD   instead of WISP_BIN: a shell command line that takes the same arguments
//                   (they are appended) and prints the same line, e.g. a stand-in server
//                   written in another language: WISP_DEMO_CMD="/usr/bin/python3 /tmp/demo.py".
//   WISP_ARTIFACTS  where to save chat-bob.png (default: $TMPDIR/wisp-browser); printed.
//   CHROMIUM        the browser (default /usr/bin/chromium). Playwright's own browsers are never
//                   downloaded or used.
//   WISP_BROWSER_BUDGET_MS  the whole run's time limit (default 60000): past it the server is
//                   killed and the test fails.
// Everything happens on 127.0.0.1; a request the page makes anywhere else fails the test.
// Exit status: 0 passed, 1 failed.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const WWW = path.join(REPO, 'actors', 'www');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.WISP_ARTIFACTS || path.join(os.tmpdir(), 'wisp-browser');
const BUDGET_MS = Number(process.env.WISP_BROWSER_BUDGET_MS || 60000);
const STEP_MS = 10000; // any single wait

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(2)}s] ${msg}`);

// ---- the server -------------------------------------------------------------------------------

function serverCommand() {
  const args = ['--listen', '127.0.0.1:0', '--route', '/chat=chat', '--static', `/=${WWW}`];
  if (process.env.WISP_DEMO_CMD)
    return ['/bin/sh', ['-c', `exec ${process.env.WISP_DEMO_CMD} "$@"`, 'sh', ...args]];
  if (!process.env.WISP_BIN)
    throw new Error('set WISP_BIN to the wisp program (or WISP_DEMO_CMD to a stand-in)');
  return [process.env.WISP_BIN, args];
}

// Start the server; resolves with { proc, port, exited } once it printed its listening line.
function startServer() {
  const [cmd, args] = serverCommand();
  log(`starting ${cmd} ${args.join(' ')}`);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  readline.createInterface({ input: proc.stderr }).on('line', (l) => console.error(`server: ${l}`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not say it listens within 10 s')), STEP_MS);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening (status ${code}, signal ${signal})`));
    });
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      console.log(`server: ${line}`);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), exited });
      }
    });
  });
}

async function stopServer(server) {
  process.kill(server.proc.pid, 'SIGTERM');
  let timer;
  const result = await Promise.race([
    server.exited,
    new Promise((resolve) => { timer = setTimeout(() => resolve(null), STEP_MS); }),
  ]);
  clearTimeout(timer);
  if (!result) {
    process.kill(server.proc.pid, 'SIGKILL');
    throw new Error('the server did not exit within 10 s of SIGTERM');
  }
  if (result.code !== 0)
    throw new Error(`the server exited with status ${result.code} (signal ${result.signal}) after SIGTERM`);
  log('server stopped: exit status 0');
}

// ---- the pages --------------------------------------------------------------------------------

// A page of the demo in its own browser context (its own storage), recording anything wrong.
async function openPage(browser, base, who, problems) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const origin = new URL(base).origin;
  page.on('request', (req) => {
    if (!req.url().startsWith('data:') && new URL(req.url()).origin !== origin)
      problems.push(`${who}: request outside the test server: ${req.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`${who}: page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${who}: console error: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`${who}: ${res.status()} for ${res.url()}`);
  });
  await page.goto(base, { waitUntil: 'load' });
  return { who, context, page };
}

async function join({ page, who }, room, name) {
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join-button');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected');
  if (!(await page.isHidden('#join')) || !(await page.isVisible('#chat')))
    throw new Error(`${who}: the join form should give way to the chat once joined`);
  log(`${who} connected`);
}

// Every .msg as "from: text", in order.
const messagesOf = ({ page }) => page.$$eval('#messages .msg', (ms) => ms.map(
  (m) => `${m.querySelector('.from').textContent}: ${m.querySelector('.text').textContent}`));

// Wait until #members lists exactly these names (in any order).
async function waitMembers({ page, who }, names) {
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('#members li')].map((li) => li.textContent).sort();
      return JSON.stringify(got) === JSON.stringify([...want].sort());
    }, names);
  } catch (err) {
    const got = await page.$$eval('#members li', (lis) => lis.map((li) => li.textContent));
    throw new Error(`${who}: #members is ${JSON.stringify(got)}, want ${JSON.stringify(names)}`);
  }
  log(`${who} sees ${names.join(', ')}`);
}

// Wait until #messages holds a .msg from `from` whose .text is exactly `text`.
async function waitMessage({ page, who }, from, text) {
  try {
    await page.waitForFunction(([f, t]) => [...document.querySelectorAll('#messages .msg')].some(
      (m) => m.querySelector('.from')?.textContent === f && m.querySelector('.text')?.textContent === t),
    [from, text]);
  } catch (err) {
    const got = await page.$eval('#messages', (el) => el.innerText);
    throw new Error(`${who}: no message ${JSON.stringify(text)} from ${from}; #messages has:\n${got}`);
  }
  log(`${who} got ${from}'s message`);
}

async function waitNotice({ page, who }, pattern) {
  try {
    await page.waitForFunction((src) => [...document.querySelectorAll('#messages .notice')].some(
      (n) => new RegExp(src).test(n.textContent)), pattern.source);
  } catch (err) {
    const got = await page.$eval('#messages', (el) => el.innerText);
    throw new Error(`${who}: no notice matching ${pattern}; #messages has:\n${got}`);
  }
  log(`${who} sees a notice matching ${pattern}`);
}

// ---- the test ---------------------------------------------------------------------------------

async function main(cleanup) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  const server = await startServer();
  cleanup.server = server;
  const base = `http://127.0.0.1:${server.port}/`;
  log(`server listening on port ${server.port}`);

  // The page and its assets come with the right types.
  for (const [file, type] of [['', 'text/html'], ['chat.js', 'javascript'], ['chat.css', 'text/css']]) {
    const res = await fetch(base + file);
    const ct = res.headers.get('content-type') || '';
    if (res.status !== 200 || !ct.includes(type)) throw new Error(`GET /${file}: ${res.status} ${ct}`);
    await res.arrayBuffer();
  }

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--disable-extensions', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-default-apps', '--mute-audio'],
  });
  cleanup.browser = browser;
  log(`browser: Chromium ${browser.version()}`);

  const problems = [];
  const room = `test-${process.pid}-${Date.now() % 100000}`;
  const alice = await openPage(browser, base, 'alice', problems);
  const bob = await openPage(browser, base, 'bob', problems);
  if ((await alice.page.title()) !== 'wisp chat') throw new Error('the page title is not "wisp chat"');

  await join(alice, room, 'alice');
  await waitMembers(alice, ['alice']);
  await join(bob, room, 'bob');
  await waitMembers(bob, ['alice', 'bob']);
  await waitMembers(alice, ['alice', 'bob']);
  await waitNotice(alice, /^bob joined/);

  // Markup in a message must come out as text.
  const text = `hello bob <b>not bold</b> <img src=x onerror="window.pwned=1"> & "quotes" é 🎉`;
  await alice.page.fill('#input', text);
  await alice.page.click('#send');
  await waitMessage(bob, 'alice', text);
  await waitMessage(alice, 'alice', text);
  for (const p of [alice, bob]) {
    const injected = await p.page.evaluate(() =>
      window.pwned === 1 || document.querySelector('#messages b, #messages img') !== null);
    if (injected) throw new Error(`${p.who}: the message text was parsed as HTML`);
  }
  if ((await alice.page.inputValue('#input')) !== '') throw new Error('alice: #input was not cleared');

  await bob.page.fill('#input', 'hi alice');
  await bob.page.press('#input', 'Enter'); // the form submits with Enter too
  await waitMessage(alice, 'bob', 'hi alice');
  await waitMessage(bob, 'bob', 'hi alice');

  // bob's connection drops: the page says so, comes back by itself, and shows the room's
  // history once (the server may call him bob-2 if it sees him back before it saw him go).
  const before = await messagesOf(bob);
  await bob.page.evaluate(() => chat.ws.close(4000, 'test drop'));
  await bob.page.waitForFunction(() => /^reconnecting/.test(document.getElementById('status').textContent));
  log('bob is reconnecting');
  await bob.page.waitForFunction(() => document.getElementById('status').textContent === 'connected');
  const bobName = await bob.page.textContent('#you');
  await waitMembers(bob, ['alice', bobName]);
  const after = await messagesOf(bob);
  if (JSON.stringify(after) !== JSON.stringify(before))
    throw new Error(`bob: after reconnecting #messages is ${JSON.stringify(after)}, want ${JSON.stringify(before)}`);
  log(`bob is back as ${bobName} with the same ${after.length} messages`);

  // alice closes her page: bob is told, and the list shrinks.
  await alice.context.close();
  log('alice closed her page');
  await waitNotice(bob, /^alice left/);
  await waitMembers(bob, [bobName]);

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'chat-bob.png');
  await bob.page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);

  await browser.close();
  cleanup.browser = null;
  await stopServer(server);
  cleanup.server = null;

  // 4xx/5xx answers, console errors, stray requests: all reported together.
  if (problems.length) throw new Error(`problems seen in the pages:\n  ${problems.join('\n  ')}`);
}

const cleanup = { server: null, browser: null, aborted: false };
async function abort(why) {
  if (cleanup.aborted) return; // the first reason is the one that counts
  cleanup.aborted = true;
  console.error(`FAIL: ${why}`);
  if (cleanup.server) {
    try { process.kill(cleanup.server.proc.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  if (cleanup.browser) await Promise.race([cleanup.browser.close().catch(() => {}),
                                           new Promise((r) => setTimeout(r, 3000))]);
  process.exit(1);
}

const watchdog = setTimeout(() => abort(`over the ${BUDGET_MS} ms budget`), BUDGET_MS);
main(cleanup).then(() => {
  clearTimeout(watchdog);
  log('PASS');
}, (err) => abort(err.stack || err));
