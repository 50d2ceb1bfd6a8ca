// The wisp chat demo: join a room over a WebSocket on /chat, show who is there and what they
// say, reconnect with backoff when the connection drops. Protocol: actors/chat.h.
// Everything from the network is shown with textContent, never parsed as HTML.
'use strict';

const MAX_NAME_BYTES = 32;    // room and member names (chat.h)
const MAX_TEXT_BYTES = 4096;  // one message's text
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);
const utf8Length = (s) => new TextEncoder().encode(s).length;

const chat = {
  room: '',        // the room we asked for
  asked: '',       // the name we asked for ('' lets the server pick a guest name)
  you: '',         // the name the server gave us
  ws: null,
  attempt: 0,      // reconnection attempts since the last successful open
  retryTimer: 0,
  leaving: false,  // the user left: do not reconnect
};

// ---- status, members, messages ---------------------------------------------------------------

function setStatus(state, text) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text || state;
}

function setConnected(on) {
  $('input').disabled = !on;
  $('send').disabled = !on;
  if (on) $('input').focus();
}

function setMembers(names) {
  const list = $('members');
  list.replaceChildren();
  for (const name of [...names].sort((a, b) => a.localeCompare(b))) {
    const li = document.createElement('li');
    li.textContent = name;
    if (name === chat.you) li.classList.add('me');
    list.append(li);
  }
}

// Append li to #messages, keeping the view at the bottom if it was there.
function appendItem(li) {
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(li);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function addMessage(from, text, ts) {
  const li = document.createElement('li');
  li.className = from === chat.you ? 'msg mine' : 'msg';
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(who, body);
  if (Number.isFinite(ts)) {
    const when = new Date(ts);
    const time = document.createElement('time');
    time.dateTime = when.toISOString();
    time.title = when.toLocaleString();
    time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(time);
  }
  appendItem(li);
}

function addNotice(text, isError) {
  const li = document.createElement('li');
  li.className = isError ? 'notice error' : 'notice';
  li.textContent = text;
  appendItem(li);
}

// ---- the protocol -----------------------------------------------------------------------------

function onServerMessage(event) {
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return addNotice('The server sent something that is not JSON.', true);
  }
  switch (msg.type) {
    case 'welcome': // first, once per connection: start from the room's history
      chat.you = String(msg.you);
      $('you').textContent = chat.you;
      $('room-name').textContent = String(msg.room);
      $('messages').replaceChildren();
      for (const m of msg.history || []) addMessage(String(m.from), String(m.text), m.ts);
      addNotice(`You joined ${msg.room} as ${chat.you}.`);
      setMembers(msg.members || []);
      break;
    case 'join':
      if (msg.name !== chat.you) addNotice(`${msg.name} joined.`);
      setMembers(msg.members || []);
      break;
    case 'leave':
      addNotice(`${msg.name} left.`);
      setMembers(msg.members || []);
      break;
    case 'message':
      addMessage(String(msg.from), String(msg.text), msg.ts);
      break;
    case 'error':
      addNotice(`Not sent: ${msg.error}`, true);
      break;
    default:
      break; // newer servers may say more: ignore what we do not know
  }
}

function connect() {
  clearTimeout(chat.retryTimer);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  let url = `${scheme}${location.host}/chat?room=${encodeURIComponent(chat.room)}`;
  if (chat.asked) url += `&name=${encodeURIComponent(chat.asked)}`;
  setStatus(chat.attempt ? 'reconnecting' : 'connecting');

  const ws = new WebSocket(url);
  chat.ws = ws;
  ws.onopen = () => {
    chat.attempt = 0;
    setStatus('connected');
    setConnected(true);
  };
  ws.onmessage = onServerMessage;
  ws.onclose = (event) => {
    if (chat.ws !== ws) return; // an old socket we already replaced
    chat.ws = null;
    setConnected(false);
    if (chat.leaving) return setStatus('disconnected');
    if (event.reason) addNotice(`Connection closed: ${event.reason}`, true);
    // Exponential backoff with jitter, so a restarted server is not stormed by every page.
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** chat.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    chat.attempt++;
    setStatus('reconnecting', `reconnecting in ${Math.ceil(delay / 1000)} s`);
    chat.retryTimer = setTimeout(connect, delay);
  };
}

// ---- the forms --------------------------------------------------------------------------------

// Why a room or name cannot be used, or '' (the server refuses the same things with 400).
function nameProblem(what, value, required) {
  if (!value) return required ? `Please choose a ${what}.` : '';
  if (utf8Length(value) > MAX_NAME_BYTES) return `The ${what} is too long (${MAX_NAME_BYTES} bytes at most).`;
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value)) return `The ${what} has invalid characters.`;
  return '';
}

$('join').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  const room = $('room').value.trim();
  const problem = nameProblem('room', room, true) || nameProblem('name', name, false);
  $('join-error').textContent = problem;
  if (problem) return;
  try {
    localStorage.setItem('wisp-chat', JSON.stringify({ name, room }));
  } catch { /* storage disabled: fine */ }
  Object.assign(chat, { room, asked: name, you: '', attempt: 0, leaving: false });
  $('join').hidden = true;
  $('chat').hidden = false;
  $('messages').replaceChildren();
  $('members').replaceChildren();
  connect();
});

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('input');
  const text = input.value;
  if (!text.trim()) return;
  if (utf8Length(text) > MAX_TEXT_BYTES) {
    return addNotice(`Too long: ${MAX_TEXT_BYTES} bytes at most.`, true);
  }
  if (!chat.ws || chat.ws.readyState !== WebSocket.OPEN) {
    return addNotice('Not connected: wait a moment and try again.', true);
  }
  chat.ws.send(JSON.stringify({ type: 'message', text }));
  input.value = ''; // what we said appears when the server echoes it
});

$('leave').addEventListener('click', () => {
  chat.leaving = true;
  clearTimeout(chat.retryTimer);
  if (chat.ws) chat.ws.close(1000, 'left');
  else setStatus('disconnected');
  $('chat').hidden = true;
  $('join').hidden = false;
  $('name').focus();
});

// Prefill the join form: ?room=...&name=... in the page's URL, else the last choice.
(function prefill() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem('wisp-chat')) || {};
  } catch { /* nothing saved */ }
  const params = new URLSearchParams(location.search);
  $('name').value = params.get('name') ?? saved.name ?? '';
  $('room').value = params.get('room') ?? saved.room ?? 'lobby';
  $('name').focus();
})();
