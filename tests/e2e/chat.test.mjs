// Browser test of the built-in web client (crates/webchat-api/web/index.html), run by
// scripts/e2e.sh against a real server:  node tests/e2e/chat.test.mjs http://127.0.0.1:PORT
//
// Two people (alice and bob, separate browser contexts) register, log in, join a room and
// chat. Checked on screen and on the wire:
// - register (with the server's field errors), log in, log out, a reload stays logged in;
// - messages both ways, typing notices, presence (who is online);
// - alice goes offline (context.setOffline) while bob writes: she shows "offline", comes
//   back, resumes the socket from her last seq and sees every missed message once, in
//   order; her message written offline waits as pending and is stored once;
// - a silent network drop (no offline event) is caught by the client's own ping;
// - sends over the server's rate limit are refused, shown politely, retried in order;
// - unread counts; history paging with ?before=; resync_required after >1000 missed;
// - a silent access-token refresh; a revoked session returns to the login screen;
// - the chat at phone width (390x844), with the room list as a drawer.
// Screenshots go to target/e2e/. Each wait is bounded (15 s at most).
//
// Environment: E2E_OUT (screenshot dir, default target/e2e), E2E_CHROMIUM (default
// /usr/bin/chromium), E2E_ACCESS_TTL (seconds, set by e2e.sh when the server runs with a
// short --access-ttl: then a refresh must be seen).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const BASE = process.argv[2];
if (!BASE) {
  console.error('usage: node tests/e2e/chat.test.mjs http://127.0.0.1:PORT');
  process.exit(2);
}
const OUT = process.env.E2E_OUT || 'target/e2e';
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const ACCESS_TTL = Number(process.env.E2E_ACCESS_TTL || 0);
const WAIT = 15000;                      // the longest single wait
const RUN = Date.now().toString(36);     // unique names, so the test can run against a used server
const PASSWORD = 'correct-horse-42';

fs.mkdirSync(OUT, { recursive: true });

// Never hang: the whole test has a hard limit.
const watchdog = setTimeout(() => {
  console.error('e2e: FAILED: the test did not finish within 240 s');
  process.exit(1);
}, 240000);
watchdog.unref();

// ---------------------------------------------------------------------------------------
// A tiny step runner: prints one line per check and stops at the first failure.
// ---------------------------------------------------------------------------------------
let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    console.log(`not ok - ${name}`);
    throw Object.assign(err, { step: name });
  }
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
}
function check(cond, message) {
  if (!cond) throw new Error(message);
}

// ---------------------------------------------------------------------------------------
// One person in a browser context, with everything the page does on the wire recorded.
// ---------------------------------------------------------------------------------------
const people = [];
async function person(browser, name, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  // A switch to hide the browser's online/offline events from the page, to test a network
  // that dies without the browser noticing (only the client's own ping can tell).
  await context.addInitScript(() => {
    for (const type of ['online', 'offline']) {
      window.addEventListener(type, (e) => { if (window.__e2eSilentNetwork) e.stopImmediatePropagation(); }, true);
    }
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const who = {
    name, context, page,
    email: `${name}-${RUN}@example.com`,
    username: `${name}_${RUN}`.slice(0, 32),
    sockets: [],              // every WebSocket the page opened, with its frames
    refreshes: [],            // status of each POST /api/login/refresh/
    pageErrors: [],
  };
  page.on('pageerror', (err) => who.pageErrors.push(String(err)));
  page.on('websocket', (ws) => {
    const rec = { url: ws.url(), sent: [], received: [], closed: false, openedAt: Date.now() };
    who.sockets.push(rec);
    const parse = (p) => { try { return JSON.parse(p); } catch (_) { return { raw: String(p) }; } };
    ws.on('framesent', (f) => rec.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => rec.received.push(parse(f.payload)));
    ws.on('close', () => { rec.closed = true; });
  });
  page.on('response', (res) => {
    if (res.url().includes('/api/login/refresh')) who.refreshes.push(res.status());
  });
  people.push(who);
  return who;
}

const tid = (id) => `[data-testid="${id}"]`;

// A direct call to the HTTP API (to set up data the way another client would). Waits out
// the server's send rate limit (429 with Retry-After) like a polite client.
async function http(method, urlPath, token, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  for (let attempt = 0; ; attempt += 1) {
    const res = await fetch(BASE + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status === 429 && attempt < 20) {
      const secs = Number(res.headers.get('retry-after')) || 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(secs, 5) * 1000));
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${urlPath} answered ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

// Many messages in a room fast, within the per-user send rate: a crowd of helper users,
// each posting one burst.
async function crowdPost(roomName, count) {
  const perUser = 35;
  const users = Math.ceil(count / perUser);
  let next = 0;
  async function worker() {
    for (;;) {
      const u = next; next += 1;
      if (u >= users) return;
      const email = `crowd${u}-${RUN}@example.com`;
      await http('POST', '/api/users/register/', null, { email, username: `crowd${u}_${RUN}`, password: PASSWORD });
      const token = (await http('POST', '/api/users/login/', null, { email, password: PASSWORD })).access;
      await http('POST', `/api/room/${roomName}/`, token);
      for (let i = u * perUser; i < Math.min(count, (u + 1) * perUser); i += 1) {
        await http('POST', `/api/rooms/${roomName}/messages/`, token, { content: `bulk ${i + 1} ${RUN}` });
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  // A token of one of them, to write more.
  return (await http('POST', '/api/users/login/', null, { email: `crowd0-${RUN}@example.com`, password: PASSWORD })).access;
}

async function register(who) {
  const { page } = who;
  await page.goto(BASE);
  await page.click(tid('tab-register'));
  await page.fill(tid('register-email'), who.email);
  await page.fill(tid('register-username'), who.username);
  await page.fill(tid('register-password'), PASSWORD);
  await page.click(tid('register-submit'));
  await page.waitForSelector(tid('chat-view'), { state: 'visible' });
  await waitText(page, tid('current-user'), who.username);
}

async function login(who) {
  const { page } = who;
  await page.waitForSelector(tid('auth-view'), { state: 'visible' });
  await page.click(tid('tab-login'));
  await page.fill(tid('login-email'), who.email);
  await page.fill(tid('login-password'), PASSWORD);
  await page.click(tid('login-submit'));
  await page.waitForSelector(tid('chat-view'), { state: 'visible' });
  await waitText(page, tid('current-user'), who.username);
}

async function join(who, room) {
  const { page } = who;
  await page.fill(tid('room-name-input'), room);
  await page.click(tid('join-button'));
  await waitText(page, tid('room-title'), room);
  await page.waitForSelector(`${tid('room-item')}[data-room="${room}"]`);
}

async function openRoom(who, room) {
  await who.page.click(`${tid('room-item')}[data-room="${room}"] button`);
  await waitText(who.page, tid('room-title'), room);
}

async function say(who, text) {
  await who.page.fill(tid('composer-input'), text);
  await who.page.press(tid('composer-input'), 'Enter');
}

async function waitText(page, selector, text, timeout = WAIT) {
  await page.waitForFunction(([s, t]) => {
    const node = document.querySelector(s);
    return node && node.textContent.includes(t);
  }, [selector, text], { timeout });
}

// The message list as the person sees it.
async function messages(who) {
  return who.page.$$eval(`${tid('message-list')} ${tid('message')}`, (items) => items.map((li) => ({
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    state: li.dataset.state,
    sender: li.dataset.sender,
    text: li.querySelector('[data-testid="message-body"]').textContent,
  })));
}

// Waits until `text` is in the list exactly as a sent (stored) message.
async function waitForMessage(who, text, timeout = WAIT) {
  try {
    await who.page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="message-list"] [data-testid="message"]')]
      .some((li) => li.dataset.state === 'sent' && li.dataset.seq && li.querySelector('[data-testid="message-body"]').textContent === t),
    text, { timeout });
  } catch (err) {
    const have = (await messages(who)).map((m) => `${m.seq ?? '-'}:${m.state}:${m.text}`).join(' | ');
    throw new Error(`${who.name} never saw "${text}" as a sent message; the list holds: ${have}`);
  }
}

function assertOrderedOnce(list, texts, who) {
  const seqs = list.filter((m) => m.seq !== null).map((m) => m.seq);
  for (let i = 1; i < seqs.length; i += 1) {
    check(seqs[i] > seqs[i - 1], `${who}: messages out of order or duplicated by seq: ${seqs.join(',')}`);
  }
  let last = -1;
  for (const t of texts) {
    const hits = list.filter((m) => m.text === t);
    check(hits.length === 1, `${who}: "${t}" appears ${hits.length} times (want exactly once)`);
    const at = list.indexOf(hits[0]);
    check(at > last, `${who}: "${t}" is out of order`);
    last = at;
  }
}

async function connState(who) {
  return who.page.getAttribute(tid('connection-status'), 'data-state');
}

async function shot(who, file) {
  await who.page.screenshot({ path: path.join(OUT, file) });
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------
async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    await scenario(browser);
  } catch (err) {
    // Pictures of every page as it was when the check failed.
    for (const who of people) {
      await who.page.screenshot({ path: path.join(OUT, `failure-${who.name}.png`) }).catch(() => {});
      // And what went over the wire, to tell a client bug from a server one.
      fs.writeFileSync(path.join(OUT, `failure-${who.name}-sockets.json`), json(who.sockets.map((s) => ({
        url: s.url.replace(/token=[^&]+/, 'token=…'), sent: s.sent, received: s.received, closed: s.closed,
      })), null, 1));
    }
    throw err;
  } finally {
    await browser.close().catch(() => {});
  }
}

async function scenario(browser) {
  const alice = await person(browser, 'alice');
  const bob = await person(browser, 'bob');
  const room = `e2e-${RUN}`;
  const side = `side-${RUN}`;

  await step('the web client is served at / and shows the login form', async () => {
    const res = await alice.page.goto(BASE);
    check(res.status() === 200, `GET / answered ${res.status()}`);
    check((res.headers()['content-type'] || '').startsWith('text/html'), `GET / is ${res.headers()['content-type']}, not HTML`);
    await alice.page.waitForSelector(tid('login-form'), { state: 'visible' });
    await shot(alice, 'login-desktop.png');
  });

  await step('registration shows the server\'s field errors', async () => {
    const { page } = alice;
    await page.click(tid('tab-register'));
    await page.fill(tid('register-email'), 'not-an-email');
    await page.fill(tid('register-username'), 'x');
    await page.fill(tid('register-password'), 'short');
    await page.click(tid('register-submit'));
    await page.waitForFunction(() => [...document.querySelectorAll('#register-form .field-error')]
      .filter((p) => p.textContent.trim()).length >= 3);
    await page.waitForSelector(tid('auth-error'), { state: 'visible' });
  });

  await step('alice and bob register (and are logged in)', async () => {
    await register(alice);
    await register(bob);
  });

  await step('a reload keeps alice logged in', async () => {
    await alice.page.reload();
    await alice.page.waitForSelector(tid('chat-view'), { state: 'visible' });
    await waitText(alice.page, tid('current-user'), alice.username);
  });

  await step('alice logs out, a wrong password is refused, then she logs in', async () => {
    const { page } = alice;
    await page.click(tid('logout-button'));
    await page.waitForSelector(tid('auth-view'), { state: 'visible' });
    await page.click(tid('tab-login'));
    await page.fill(tid('login-email'), alice.email);
    await page.fill(tid('login-password'), 'wrong-password');
    await page.click(tid('login-submit'));
    await page.waitForSelector(tid('auth-error'), { state: 'visible' });
    const said = (await page.textContent(tid('auth-error'))).trim();
    check(said.length > 0, 'no error shown for a wrong password');
    await login(alice);
  });

  await step('both join one room and see each other online', async () => {
    await join(alice, room);
    await join(bob, room);
    await alice.page.waitForSelector(`${tid('participant')}[data-user="${bob.username}"][data-online="true"]`);
    await bob.page.waitForSelector(`${tid('participant')}[data-user="${alice.username}"][data-online="true"]`);
    for (const who of [alice, bob]) {
      await who.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state === 'online');
    }
  });

  await step('they chat both ways', async () => {
    await say(alice, `Hello Bob ${RUN}`);
    await waitForMessage(bob, `Hello Bob ${RUN}`);
    await waitForMessage(alice, `Hello Bob ${RUN}`);
    await say(bob, `Hi Alice ${RUN}`);
    await waitForMessage(alice, `Hi Alice ${RUN}`);
    await waitForMessage(bob, `Hi Alice ${RUN}`);
    for (const who of [alice, bob]) {
      assertOrderedOnce(await messages(who), [`Hello Bob ${RUN}`, `Hi Alice ${RUN}`], who.name);
    }
  });

  await step('bob typing shows on alice\'s screen, then fades', async () => {
    // Type like a person (a key every 150 ms) until alice sees it; the client sends at most
    // one notice per ~2 s, so this may take a couple of seconds.
    await bob.page.click(tid('composer-input'));
    const seen = () => alice.page.evaluate((u) => document.querySelector('[data-testid="typing-indicator"]').textContent
      .includes(`${u} is typing`), bob.username);
    const until = Date.now() + 8000;
    while (!(await seen()) && Date.now() < until) await bob.page.keyboard.type('x', { delay: 0 }).then(() => bob.page.waitForTimeout(150));
    check(await seen(), `alice never saw "${bob.username} is typing…"`);
    await bob.page.fill(tid('composer-input'), '');
    await alice.page.waitForFunction(() => document.querySelector('[data-testid="typing-indicator"]').textContent.trim() === '',
      undefined, { timeout: 8000 });
  });

  await step('alice goes offline, bob writes, alice comes back and gets every missed message once, in order', async () => {
    const before = await messages(alice);
    const lastSeq = Math.max(...before.map((m) => m.seq ?? 0));
    const socketsBefore = alice.sockets.length;

    await alice.context.setOffline(true);
    // The client notices (offline event, or its ping going unanswered) and says so.
    await alice.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state !== 'online');
    const shown = (await alice.page.textContent(tid('connection-status'))).trim();

    // Written while offline: pending, and sent later with the same client_msg_id.
    const offlineText = `written offline ${RUN}`;
    await say(alice, offlineText);
    await alice.page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="message"]')]
      .some((li) => li.dataset.state === 'pending' && li.textContent.includes(t)), offlineText);

    const missed = [1, 2, 3].map((i) => `missed ${i} ${RUN}`);
    for (const t of missed) await say(bob, t);
    for (const t of missed) await waitForMessage(bob, t);
    await alice.page.waitForTimeout(1000);
    const during = await messages(alice);
    check(!during.some((m) => missed.includes(m.text)), 'alice received messages while offline: the test did not cut her off');

    await alice.context.setOffline(false);
    await alice.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state === 'online');
    for (const t of missed) await waitForMessage(alice, t);
    await waitForMessage(alice, offlineText);
    await waitForMessage(bob, offlineText);

    const after = await messages(alice);
    assertOrderedOnce(after, [`Hello Bob ${RUN}`, `Hi Alice ${RUN}`, ...missed], 'alice');
    assertOrderedOnce(after, [offlineText], 'alice');
    check(!after.some((m) => m.state !== 'sent'), 'alice still has unsent messages after reconnecting');
    assertOrderedOnce(await messages(bob), [`Hello Bob ${RUN}`, `Hi Alice ${RUN}`, ...missed, offlineText], 'bob');

    // On the wire: a new socket whose first frame resumed the room from the last seq alice
    // had, and whose replay (before the room's `ready`) brought the missed messages.
    const fresh = alice.sockets.slice(socketsBefore).filter((s) => s.sent.length > 0);
    check(fresh.length >= 1, 'alice opened no new WebSocket after coming back online');
    const resumed = fresh.find((s) => s.sent[0].type === 'resume' && s.sent[0].rooms && s.sent[0].rooms[room] !== undefined);
    check(resumed, `no new socket started with a resume frame for ${room}: first frames ${json(fresh.map((s) => s.sent[0]))}`);
    check(resumed.sent[0].rooms[room] === lastSeq, `resume point ${resumed.sent[0].rooms[room]}, want ${lastSeq}`);
    const readyAt = resumed.received.findIndex((f) => f.type === 'ready' && f.room === room);
    const replayed = resumed.received.slice(0, readyAt).filter((f) => f.type === 'message' && f.room === room).map((f) => f.content);
    check(missed.every((t) => replayed.includes(t)), `the replay before ready held ${json(replayed)}, want all of ${json(missed)}`);
    // Exactly one copy of the offline message went into the log (one client_msg_id, one seq).
    const offlineSends = alice.sockets.flatMap((s) => s.sent).filter((f) => f.type === 'message' && f.content === offlineText);
    check(new Set(offlineSends.map((f) => f.client_msg_id)).size === 1, 'the offline message was resent with a new client_msg_id');
    console.log(`    status while offline: "${shown}"; resumed from seq ${lastSeq}; ${offlineSends.length} send(s) of the offline message`);
  });

  await step('a silent network drop is caught by the client\'s ping; a message sent into the dead socket arrives once', async () => {
    await bob.page.evaluate(() => { window.__e2eSilentNetwork = true; });
    await bob.context.setOffline(true);
    // Bob's client still believes it is connected, so this goes into the dead socket.
    const lost = `into the void ${RUN}`;
    await say(bob, lost);
    const missed = `while bob was cut off ${RUN}`;
    await say(alice, missed);
    await waitForMessage(alice, missed);
    // An unanswered ping (after 5 s of silence, 4 s to answer) ends the socket.
    await bob.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state !== 'online',
      undefined, { timeout: WAIT });
    await bob.context.setOffline(false);
    await bob.page.evaluate(() => { window.__e2eSilentNetwork = false; });
    await bob.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state === 'online');
    await waitForMessage(bob, missed);
    await waitForMessage(bob, lost);
    await waitForMessage(alice, lost);
    assertOrderedOnce(await messages(bob), [missed], 'bob');
    assertOrderedOnce(await messages(bob), [lost], 'bob');
    assertOrderedOnce(await messages(alice), [missed], 'alice');
    assertOrderedOnce(await messages(alice), [lost], 'alice');
    const sends = bob.sockets.flatMap((s) => s.sent).filter((f) => f.type === 'message' && f.content === lost);
    check(new Set(sends.map((f) => f.client_msg_id)).size === 1, 'the message was resent with a new client_msg_id');
    console.log(`    ${sends.length} send(s) of the message written into the dead socket, one client_msg_id`);
  });

  await step('sends over the rate limit are refused politely, retried, and stored once in order', async () => {
    // Alice's send budget (shared by all her sessions) is drained by another session of hers
    // posting into a side room as fast as it can, while she writes in the chat.
    const flood = `flood-${RUN}`;
    const token = (await http('POST', '/api/users/login/', null, { email: alice.email, password: PASSWORD })).access;
    await http('POST', `/api/room/${flood}/`, token);
    let stop = false;
    const drain = (async () => {
      const until = Date.now() + 3000;
      while (!stop && Date.now() < until) {
        const res = await fetch(`${BASE}/api/rooms/${flood}/messages/`, {
          method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ content: 'drain' }),
        });
        await res.arrayBuffer();
      }
    })();
    try {
      await alice.page.waitForTimeout(400);
      const texts = Array.from({ length: 30 }, (_, i) => `burst ${i + 1} ${RUN}`);
      await alice.page.evaluate((all) => {
        const input = document.querySelector('[data-testid="composer-input"]');
        for (const t of all) { input.value = t; document.querySelector('[data-testid="composer"]').requestSubmit(); }
      }, texts);
      await waitText(alice.page, tid('chat-notice'), 'a little fast');
      await drain;
      await waitForMessage(bob, texts[texts.length - 1]);
      await waitForMessage(alice, texts[texts.length - 1]);
      assertOrderedOnce(await messages(bob), texts, 'bob');
      const mine = await messages(alice);
      assertOrderedOnce(mine, texts, 'alice');
      check(!mine.some((m) => m.state !== 'sent'), 'alice still has unsent messages');
      const refused = alice.sockets.flatMap((sock) => sock.received).filter((f) => f.type === 'error' && f.code === 'rate_limited');
      console.log(`    ${refused.length} sends refused with rate_limited and retried`);
    } finally {
      stop = true;
      await drain;
    }
  });

  await step('a message in another room shows as unread', async () => {
    await join(alice, side);
    await openRoom(alice, room);
    await join(bob, side);
    await say(bob, `psst ${RUN}`);
    await waitForMessage(bob, `psst ${RUN}`);
    await alice.page.waitForFunction((r) => {
      const b = document.querySelector(`[data-testid="room-item"][data-room="${r}"] [data-testid="room-unread"]`);
      return b && b.textContent.trim() === '1';
    }, side);
    await openRoom(alice, side);
    await waitForMessage(alice, `psst ${RUN}`);
    await alice.page.waitForFunction((r) => !document.querySelector(`[data-testid="room-item"][data-room="${r}"] [data-testid="room-unread"]`), side);
    await openRoom(alice, room);
    await openRoom(bob, room);
  });

  await step('history: a room opens on its newest page and pages back on scroll', async () => {
    const hist = `hist-${RUN}`;
    const total = 70;
    const texts = Array.from({ length: total }, (_, i) => `history ${i + 1} ${RUN}`);
    // Bob fills the room over the HTTP API before alice looks at it.
    const token = (await http('POST', '/api/users/login/', null, { email: bob.email, password: PASSWORD })).access;
    await http('POST', `/api/room/${hist}/`, token);
    for (const content of texts) await http('POST', `/api/rooms/${hist}/messages/`, token, { content });
    await join(alice, hist);
    await waitForMessage(alice, texts[total - 1]);
    const first = await messages(alice);
    check(!first.some((m) => m.text === texts[0]), 'the whole history came at once: no paging');
    check(first.length >= 20, `the first view holds only ${first.length} messages`);
    await alice.page.waitForSelector(tid('load-older'), { state: 'visible' });
    // Scrolling to the top asks for the page before the oldest message shown.
    for (let i = 0; i < 5 && !(await messages(alice)).some((m) => m.text === texts[0]); i += 1) {
      await alice.page.$eval(tid('message-scroller'), (node) => { node.scrollTop = 0; });
      await alice.page.waitForTimeout(400);
    }
    await waitForMessage(alice, texts[0]);
    assertOrderedOnce(await messages(alice), texts, 'alice');
    await alice.page.waitForSelector(tid('load-older'), { state: 'hidden' });
    await openRoom(alice, room);
  });

  await step('after more than 1000 missed messages (resync_required) a room reloads its newest page', async () => {
    const hist = `hist-${RUN}`;
    const socketsBefore = alice.sockets.length;
    await alice.context.setOffline(true);
    await alice.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state !== 'online');
    const crowdToken = await crowdPost(hist, 1010);
    const last = `the end of the flood ${RUN}`;
    await http('POST', `/api/rooms/${hist}/messages/`, crowdToken, { content: last });
    await alice.context.setOffline(false);
    await alice.page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').dataset.state === 'online');
    await openRoom(alice, hist);
    await waitForMessage(alice, last);
    const list = await messages(alice);
    const seqs = list.map((m) => m.seq);
    for (let i = 1; i < seqs.length; i += 1) check(seqs[i] === seqs[i - 1] + 1, `a gap or repeat after resync: ${seqs[i - 1]} then ${seqs[i]}`);
    check(list.length < 300, `alice loaded ${list.length} messages: the whole gap instead of the newest page`);
    const frames = alice.sockets.slice(socketsBefore).flatMap((sock) => sock.received);
    check(frames.some((f) => f.type === 'resync_required' && f.room === hist), 'the server sent no resync_required');
    await openRoom(alice, room);
  });

  if (ACCESS_TTL > 0) {
    await step(`the access token (${ACCESS_TTL} s) is refreshed silently and the session goes on`, async () => {
      const deadline = Date.now() + WAIT;
      while (!alice.refreshes.length && Date.now() < deadline) await alice.page.waitForTimeout(250);
      check(alice.refreshes.length > 0, 'alice never refreshed her access token');
      for (const who of [alice, bob]) {
        check(who.refreshes.every((s) => s === 200), `${who.name}: a refresh failed: ${who.refreshes.join(',')}`);
      }
      await say(alice, `after refresh ${RUN}`);
      await waitForMessage(bob, `after refresh ${RUN}`);
      console.log(`    refreshes: alice ${alice.refreshes.length}, bob ${bob.refreshes.length}`);
    });
  }

  await step('desktop screenshots', async () => {
    await shot(alice, 'chat-desktop-alice.png');
    await shot(bob, 'chat-desktop-bob.png');
  });

  const phone = await person(browser, 'phone', {
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
  });
  phone.email = bob.email; phone.username = bob.username;   // bob again, on his phone

  await step('at phone width (390x844) bob logs in and the chat is usable', async () => {
    const { page } = phone;
    await page.goto(BASE);
    await shot(phone, 'login-phone.png');
    await login(phone);
    await page.waitForSelector(tid('room-title'), { state: 'visible' });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `the page is ${width} px wide at a 390 px viewport (horizontal scrolling)`);
    // The room list is a drawer: closed at first, opened by the ☰ button.
    const closed = await page.locator(tid('sidebar')).boundingBox();
    check(!closed || closed.x + closed.width <= 1, `the sidebar covers the chat at phone width (x=${closed && closed.x})`);
    await page.click(tid('sidebar-toggle'));
    await page.waitForFunction(() => {
      const r = document.querySelector('[data-testid="sidebar"]').getBoundingClientRect();
      return r.x >= 0 && r.right <= window.innerWidth;
    });
    await page.waitForSelector(`${tid('room-item')}[data-room="${room}"]`, { state: 'visible' });
    // Bob has read none of the flood in the history room on any device: still unread here.
    const unread = await page.textContent(`${tid('room-item')}[data-room="hist-${RUN}"] ${tid('room-unread')}`, { timeout: 5000 })
      .catch(() => null);
    check(Number(unread) > 1000, `the history room shows ${unread ?? 'no'} unread messages on bob's phone, want over 1000`);
    await page.waitForTimeout(300);   // the drawer's slide-in
    await shot(phone, 'rooms-phone.png');
    await page.click(`${tid('room-item')}[data-room="${room}"] button`);
    await waitText(page, tid('room-title'), room);
    await page.waitForFunction(() => document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().right <= 1);
    await waitForMessage(phone, `missed 3 ${RUN}`);
    for (const id of ['composer-input', 'send-button', 'message-list']) {
      const box = await page.locator(tid(id)).boundingBox();
      check(box && box.x >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844, `${id} is not inside the phone screen`);
    }
    await page.fill(tid('composer-input'), `from my phone ${RUN}`);
    await page.tap(tid('send-button'));
    await waitForMessage(phone, `from my phone ${RUN}`);
    await waitForMessage(alice, `from my phone ${RUN}`);
    await waitForMessage(bob, `from my phone ${RUN}`);
    await shot(phone, 'chat-phone.png');
  });

  await step('a revoked session (password changed elsewhere) sends bob back to the login screen', async () => {
    const token = (await http('POST', '/api/users/login/', null, { email: bob.email, password: PASSWORD })).access;
    await http('POST', '/api/users/me/password/', token, { old_password: PASSWORD, new_password: `${PASSWORD}-new` });
    // The server closes the other sessions' sockets with 4401; both of bob's pages log out.
    for (const who of [bob, phone]) {
      await who.page.waitForSelector(tid('auth-view'), { state: 'visible' });
      await waitText(who.page, tid('auth-error'), 'log in again');
      check(await who.page.evaluate(() => localStorage.getItem('webchat.auth') === null), `${who.name} kept its tokens`);
    }
    // alice is not affected.
    check(await connState(alice) === 'online', 'alice lost her connection');
  });

  await step('no uncaught errors in any page', async () => {
    for (const who of people) check(!who.pageErrors.length, `${who.name}: ${who.pageErrors.join('; ')}`);
  });
}

const json = (v, ...rest) => JSON.stringify(v, ...rest);

const started = Date.now();
try {
  await main();
  console.log(`e2e: ${passed} passed, 0 failed (${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${OUT}/)`);
  process.exit(0);
} catch (err) {
  console.log(`e2e: FAILED${err.step ? ` at "${err.step}"` : ''}: ${err.message}`);
  console.log(`e2e: ${passed} passed, 1 failed (screenshots and WebSocket frames of every page in ${OUT}/failure-*)`);
  process.exit(1);
}
