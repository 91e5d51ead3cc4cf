// Interop checks of a WebSocket echo server (wsproto's) with the Node `ws`
// client.
//
// Usage: node client_test.mjs ws://127.0.0.1:PORT/
//
// Prints one line per check (`ok   name: detail` or `FAIL name: why`), then
// `client_test: N passed, M failed`; exit status 1 on any failure. Every wait
// has a time-out, so a silent server fails the run instead of hanging it.
//
// Positive checks share one connection: text (ASCII, multi-byte), binary at
// each payload-length encoding boundary (RFC 6455 §5.2), 1 MiB, empty
// messages, fragmented messages (§5.4, `send(chunk, { fin: false })`), a text
// message whose UTF-8 characters are split across fragments, a pipelined
// burst, ping/pong with payload (§5.5.3) and the close handshake with code
// 4000 (§7.4.2). Negative checks each use a fresh connection: invalid UTF-8
// in a text frame, single and fragmented, must be answered with close 1007
// (§8.1), and the server must fail fast, on the first fragment that cannot
// be the start of valid UTF-8; a frame with RSV1 set and no negotiated
// extension (written over a raw socket, since `ws` never does that) must be
// answered with close 1002 (§5.2).

import { randomBytes, createHash } from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';

const TIMEOUT_MS = 10_000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

class Mismatch extends Error {}

/** A `ws` client whose events are queued, so checks can await them in order. */
class Conn {
  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        handshakeTimeout: TIMEOUT_MS,
        maxPayload: 64 * 1024 * 1024,
      });
      const timer = setTimeout(() => reject(new Mismatch('handshake timed out')), TIMEOUT_MS);
      const conn = new Conn(ws);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(conn);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.events = [];
    this.waiters = [];
    ws.on('message', (data, isBinary) =>
      this.push({ type: 'message', data: isBinary ? data : data.toString('utf8'), isBinary }));
    ws.on('pong', (data) => this.push({ type: 'pong', data }));
    ws.on('close', (code, reason) => this.push({ type: 'close', code, reason: reason.toString() }));
    ws.on('error', (error) => this.push({ type: 'error', error }));
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(event);
    else this.events.push(event);
  }

  /** The next event (message, pong, close, error), or a time-out failure. */
  next(what) {
    if (this.events.length > 0) return Promise.resolve(this.events.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Mismatch(`no ${what} within ${TIMEOUT_MS} ms`));
      }, TIMEOUT_MS);
      const waiter = (event) => {
        clearTimeout(timer);
        resolve(event);
      };
      this.waiters.push(waiter);
    });
  }

  /** The next data message; anything else is a failure. */
  async message() {
    const ev = await this.next('message');
    if (ev.type === 'message') return ev.data;
    throw new Mismatch(`expected a message, got ${describeEvent(ev)}`);
  }

  send(data, options = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(err) : resolve()));
    });
  }
}

function describeEvent(ev) {
  switch (ev.type) {
    case 'message': return describe(ev.data);
    case 'close': return `close ${ev.code} ${JSON.stringify(ev.reason)}`;
    case 'error': return `error: ${ev.error.message}`;
    default: return ev.type;
  }
}

function describe(data) {
  return typeof data === 'string'
    ? `text of ${Buffer.byteLength(data)} bytes`
    : `binary of ${data.length} bytes`;
}

function expectEqual(want, got, what = 'echo') {
  if (typeof want !== typeof got) {
    throw new Mismatch(`${what}: sent ${describe(want)}, got ${describe(got)}`);
  }
  const a = typeof want === 'string' ? Buffer.from(want) : want;
  const b = typeof got === 'string' ? Buffer.from(got) : got;
  if (a.length !== b.length) {
    throw new Mismatch(`${what}: sent ${describe(want)}, got ${describe(got)}`);
  }
  if (!a.equals(b)) {
    let at = 0;
    while (a[at] === b[at]) at++;
    throw new Mismatch(`${what}: ${describe(want)} differs first at byte ${at}`);
  }
}

async function echo(conn, message) {
  await conn.send(message);
  expectEqual(message, await conn.message());
  return `${describe(message)} echoed`;
}

async function echoMany(conn, messages) {
  for (const m of messages) await echo(conn, m);
  return `${messages.length} echoes`;
}

/** Send `parts` as one fragmented message; expect `whole` back. */
async function fragmented(conn, parts, whole, binary) {
  for (let i = 0; i < parts.length; i++) {
    await conn.send(parts[i], { binary, fin: i === parts.length - 1 });
  }
  expectEqual(whole, await conn.message());
  return `${describe(whole)} echoed from ${parts.length} fragments`;
}

async function burst(conn, count = 100) {
  const messages = Array.from({ length: count }, (_, i) => `burst #${i} ✓`);
  // Queue everything before reading: the server sees many frames per read.
  const sent = messages.map((m) => conn.send(m));
  await Promise.all(sent);
  for (let i = 0; i < count; i++) expectEqual(messages[i], await conn.message(), `message ${i}`);
  return `${count} echoes in order`;
}

async function ping(conn) {
  const payload = Buffer.concat([Buffer.from('interop-ping\x00'), Buffer.from([0xff]), randomBytes(32)]);
  conn.ws.ping(payload);
  const ev = await conn.next('pong');
  if (ev.type !== 'pong') throw new Mismatch(`expected a pong, got ${describeEvent(ev)}`);
  if (!ev.data.equals(payload)) {
    throw new Mismatch(`pong payload ${ev.data.toString('hex')} differs from ${payload.toString('hex')}`);
  }
  return `pong carries the ${payload.length} byte payload`;
}

async function close(conn) {
  const started = Date.now();
  conn.ws.close(4000, 'bye');
  // `ws` emits 'close' once the TCP connection is gone, with the code the
  // server sent back; if the server never closed TCP, ws would wait 30 s.
  const ev = await conn.next('close');
  const elapsed = Date.now() - started;
  if (ev.type !== 'close') throw new Mismatch(`expected the close echo, got ${describeEvent(ev)}`);
  if (ev.code !== 4000) throw new Mismatch(`close echoed with code ${ev.code}, want 4000`);
  return `server echoed code 4000 reason ${JSON.stringify(ev.reason)}, closed TCP in ${elapsed} ms`;
}

/** On a fresh connection, `send` something bad and expect close `want`. */
async function expectClose(url, send, want, what) {
  const conn = await Conn.open(url);
  try {
    await send(conn);
    // An 'error' event (ws reports the peer's close reason as one in some
    // versions) may precede 'close'; skip a few.
    for (let i = 0; i < 4; i++) {
      const ev = await conn.next('close frame');
      if (ev.type === 'error') continue;
      if (ev.type !== 'close') throw new Mismatch(`expected close ${want}, got ${describeEvent(ev)}`);
      if (ev.code !== want) throw new Mismatch(`close code ${ev.code}, want ${want}`);
      return `${what}: server closed with ${want} (${JSON.stringify(ev.reason)})`;
    }
    throw new Mismatch('only errors, no close');
  } finally {
    conn.ws.terminate();
  }
}

/** Handshake by hand on a plain socket, send `frame`, return the close code
 * the server answers with, after checking it then closes TCP (§7.1.1). */
function rawClose(url, frame) {
  const { hostname, port, pathname } = new URL(url);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: hostname, port: Number(port) });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let code = null;
    const fail = (why) => {
      sock.destroy();
      reject(new Mismatch(why));
    };
    sock.setTimeout(TIMEOUT_MS, () => fail(code === null ? 'timed out' : `sent close ${code} but kept TCP open`));
    sock.on('error', (err) => fail(err.message));
    sock.on('connect', () => {
      sock.write(
        `GET ${pathname || '/'} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 16384) return fail('too much data');
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) return fail(`handshake answered ${head.split('\r\n')[0]}`);
        if (!new RegExp(`^sec-websocket-accept:\\s*${accept.replace(/[+/]/g, '\\$&')}\\s*$`, 'im').test(head)) {
          return fail('wrong or missing Sec-WebSocket-Accept');
        }
        upgraded = true;
        sock.write(frame);
      }
      if (code === null && buf.length >= 4) {
        if (buf[0] !== 0x88 || (buf[1] & 0x80) !== 0) return fail(`expected a close frame, got ${buf.subarray(0, 2).toString('hex')}`);
        code = buf.readUInt16BE(2);
        sock.setTimeout(3000);
      }
    });
    sock.on('end', () => {
      if (code === null) fail('TCP closed without a close frame');
      else {
        sock.destroy();
        resolve(code);
      }
    });
  });
}

/** A masked text frame with `payload` and the given first byte. */
function maskedFrame(firstByte, payload) {
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([Buffer.from([firstByte, 0x80 | body.length]), mask, body]);
}

async function main(url) {
  let passed = 0;
  let failed = 0;
  async function run(name, check) {
    try {
      const detail = await check();
      passed++;
      console.log(`ok   ${name}: ${detail}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}: ${err.constructor.name}: ${err.message}`);
    }
  }

  let conn;
  await run('handshake', async () => {
    conn = await Conn.open(url);
    return `HTTP 101 from ${url}`;
  });
  if (conn) {
    const unicode = 'héllo wörld — 你好, мир 🌍🚀 ∑∞ ﷽';
    await run('text ascii', () => echo(conn, 'Hello, interop!'));
    await run('text unicode', () => echo(conn, unicode));
    await run('text 96 KiB unicode', () => echo(conn, 'ж€🌍'.repeat(Math.floor((96 * 1024) / 9))));
    await run('binary random 1000 B', () => echo(conn, randomBytes(1000)));
    await run('binary length boundaries 125/126/65535/65536', () =>
      echoMany(conn, [125, 126, 65535, 65536].map((n) => randomBytes(n))));
    await run('binary 1 MiB', () => echo(conn, randomBytes(1 << 20)));
    await run('empty text', () => echo(conn, ''));
    await run('empty binary', () => echo(conn, Buffer.alloc(0)));
    await run('fragmented text', () => {
      const parts = ['frag', 'mented ', '→ text ', '✓', ''];
      return fragmented(conn, parts, parts.join(''), false);
    });
    await run('fragmented binary', () => {
      const parts = [1, 125, 126, 4000, 70000].map((n) => randomBytes(n));
      return fragmented(conn, parts, Buffer.concat(parts), true);
    });
    await run('UTF-8 split across fragments', () => {
      // "café €": the two-byte é and three-byte € are cut across frames, so
      // the server must validate UTF-8 across fragment boundaries.
      const raw = Buffer.from('café €');
      const cuts = [raw.subarray(0, 4), raw.subarray(4, 7), raw.subarray(7, 8), raw.subarray(8)];
      return fragmented(conn, cuts, 'café €', false);
    });
    await run('burst of 100 pipelined', () => burst(conn));
    await run('ping/pong payload', () => ping(conn));
    await run('close 4000 "bye"', () => close(conn));
  }

  await run('invalid UTF-8 text -> 1007', () =>
    expectClose(url, (c) => c.send(Buffer.from([0xce, 0xba, 0xff, 0xfe]), { binary: false }), 1007,
      '0xff in a text frame'));
  await run('invalid UTF-8 across fragments -> 1007', () =>
    expectClose(url, async (c) => {
      // A UTF-16 surrogate (ED A0 80) is never valid UTF-8; its first byte
      // ends the first fragment.
      await c.send(Buffer.from('ok \xed', 'latin1'), { binary: false, fin: false });
      await c.send(Buffer.from([0xa0, 0x80]), { binary: false, fin: true });
    }, 1007, 'surrogate split over 2 fragments'));
  await run('invalid UTF-8 fails fast -> 1007', () =>
    // Only the first fragment is ever sent: the server must not wait for the
    // end of the message to see that 0xff can never be UTF-8.
    expectClose(url, (c) => c.send(Buffer.from([0x61, 0xff]), { binary: false, fin: false }), 1007,
      'first fragment already invalid'));
  await run('RSV1 without extension -> 1002', async () => {
    const code = await rawClose(url, maskedFrame(0xc1, 'hello')); // FIN + RSV1 + text
    if (code !== 1002) throw new Mismatch(`close code ${code}, want 1002`);
    return 'server closed with 1002, then closed TCP';
  });

  console.log(`client_test: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (process.argv.length !== 3) {
  console.error('usage: node client_test.mjs ws://127.0.0.1:PORT/');
  process.exit(2);
}
// A last-resort bound on the whole run, so nothing can keep it alive.
setTimeout(() => {
  console.log('FAIL client_test: whole run exceeded 120 s');
  process.exit(1);
}, 120_000).unref();
process.exitCode = await main(process.argv[2]);
process.exit();
