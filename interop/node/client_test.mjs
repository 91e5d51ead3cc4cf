// Interop checks of a WebSocket echo server (wsproto's) with the Node `ws`
// client.
//
// Usage: node client_test.mjs ws://127.0.0.1:PORT/ [--compression none|deflate]
//          [--server-no-context-takeover] [--client-no-context-takeover]
//          [--server-max-window-bits N] [--client-max-window-bits N]
//          [--expect-params PARAMS] [--handshake-only]
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
//
// permessage-deflate (RFC 7692) is off by default. `--compression deflate`
// offers it (`threshold: 0`, so ws compresses every message, even under no
// context takeover; each fragment of a fragmented message is compressed
// with a sync flush, §7.2.1); the four parameter flags go into the offer as
// ws's `serverNoContextTakeover`, `clientNoContextTakeover`,
// `serverMaxWindowBits` and `clientMaxWindowBits` (§7.1). The "extension
// negotiation" check prints what ws agreed to, in the format of wsproto's
// echo_client (`none`, or e.g. `server_no_context_takeover
// server_max_window_bits=10 client_max_window_bits=15`), and compares it with
// `--expect-params`; with deflate it fails unless the extension was agreed
// (or `--expect-params none` says the offer must be declined).
// `--handshake-only` stops after the negotiation check and closes (for
// servers that do not echo).
// With deflate, all the checks above run compressed, and more follow, which
// count bytes on the TCP socket: a 100 KiB JSON-like text, whole and in 4
// fragments, must cross the wire compressed both ways; 20 similar messages
// show whether the server used context takeover (it must not under
// server_no_context_takeover, and wsproto should when it was allowed and the
// window holds the previous message); on a fresh connection, empty messages
// right after compressed ones must echo (replacing the two empty-message
// checks of the main connection, whose compression context a bad empty
// message would spoil for every later check; compressed, an empty message
// is one 0x00 byte, §7.2.3.6); and an offer the server cannot honour
// (`server_max_window_bits=8`: zlib cannot compress with a 256-byte window)
// must be declined, leaving an uncompressed but working connection
// (§7.1.2.1).

import { randomBytes, createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const TIMEOUT_MS = 10_000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

class Mismatch extends Error {}

/** A `ws` client whose events are queued, so checks can await them in order. */
class Conn {
  static open(url, perMessageDeflate = DEFLATE) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate,
        ca: CA,
        handshakeTimeout: TIMEOUT_MS,
        maxPayload: 64 * 1024 * 1024,
      });
      const timer = setTimeout(() => reject(new Mismatch('handshake timed out')), TIMEOUT_MS);
      const conn = new Conn(ws);
      ws.once('upgrade', (res) => {
        conn.extensionsHeader = res.headers['sec-websocket-extensions'] ?? 'absent';
      });
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
  const { hostname, port, pathname, protocol } = new URL(url);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return new Promise((resolve, reject) => {
    const secure = protocol === 'wss:';
    const sock = secure
      ? tls.connect({ host: hostname, port: Number(port), servername: hostname, ca: CA })
      : net.connect({ host: hostname, port: Number(port) });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let code = null;
    const fail = (why) => {
      sock.destroy();
      reject(new Mismatch(why));
    };
    sock.setTimeout(TIMEOUT_MS, () => fail(code === null ? 'timed out' : `sent close ${code} but kept TCP open`));
    sock.on('error', (err) => fail(err.message));
    sock.on(secure ? 'secureConnect' : 'connect', () => {
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

// ---- permessage-deflate (RFC 7692) ------------------------------------------

/** The parameters ws agreed to, or null. */
function deflateParams(conn) {
  return conn.ws._extensions['permessage-deflate']?.params ?? null;
}

/** Negotiated parameters in the format of wsproto's echo_client. */
function formatParams(p) {
  if (!p) return 'none';
  const parts = [];
  if (p.server_no_context_takeover) parts.push('server_no_context_takeover');
  if (p.client_no_context_takeover) parts.push('client_no_context_takeover');
  parts.push(`server_max_window_bits=${p.server_max_window_bits ?? 15}`);
  parts.push(`client_max_window_bits=${p.client_max_window_bits ?? 15}`);
  return parts.join(' ');
}

function negotiation(conn, wantDeflate, expect) {
  const p = deflateParams(conn);
  const shown = `${formatParams(p)} (Sec-WebSocket-Extensions: ${conn.extensionsHeader})`;
  if (wantDeflate && !p && expect !== 'none') {
    throw new Mismatch(`permessage-deflate not negotiated: ${shown}`);
  }
  if (!wantDeflate && conn.ws.extensions) throw new Mismatch(`nothing offered, yet ${shown}`);
  if (expect !== undefined && expect !== formatParams(p)) {
    throw new Mismatch(`expected ${JSON.stringify(expect)}, negotiated ${shown}`);
  }
  return shown;
}

/** JSON-like records (ids, names, numbers, tags, some non-ASCII):
 * compressible the way API traffic is, not one repeated string. */
function jsonText(minLen, seed) {
  let x = seed >>> 0 || 1;
  const rnd = (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % n;
  };
  const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
  const tags = ['alpha', 'beta', 'gamma', 'δέλτα', 'ε✓', 'zeta'];
  const records = [];
  let size = 0;
  while (size < minLen) {
    const r = `{"id":${records.length},"user":"${names[rnd(8)]}${rnd(1000)}",` +
      `"score":${rnd(100)}.${String(rnd(1000)).padStart(3, '0')},"active":${rnd(2) === 0},` +
      `"tags":["${tags[rnd(6)]}","${tags[rnd(6)]}"],"note":"naïve café #${rnd(10000)}"}`;
    records.push(r);
    size += Buffer.byteLength(r) + 1;
  }
  return `[${records.join(',')}]`;
}

/** Run `exchange` and return the bytes that crossed the TCP socket each way
 * (frame headers included; the peer sends nothing but echoes). */
async function onTheWire(conn, exchange) {
  const sock = conn.ws._socket;
  const [read, written] = [sock.bytesRead, sock.bytesWritten];
  await exchange();
  return { sent: sock.bytesWritten - written, received: sock.bytesRead - read };
}

/** Echo `message` (sent in `parts` if given); it must cross the wire
 * compressed both ways: ws's deflater, then wsproto's inflater and deflater. */
async function compressedEcho(conn, message, parts) {
  const size = Buffer.byteLength(message);
  const { sent, received } = await onTheWire(conn, () =>
    (parts ? fragmented(conn, parts, message, false) : echo(conn, message)));
  if (sent * 2 > size) throw new Mismatch(`ws sent ${sent} bytes for ${size}: not compressed`);
  if (received * 2 > size) {
    throw new Mismatch(`the echo of ${size} bytes took ${received} bytes on the wire: not compressed`);
  }
  const how = parts ? ` sent in ${parts.length} fragments,` : '';
  const pct = (n) => ((n * 100) / size).toFixed(1);
  return `${size} bytes${how} echoed; on the wire ${sent} B sent (${pct(sent)}%), ` +
    `${received} B received (${pct(received)}%)`;
}

/** Messages that differ only in a counter: with context takeover the
 * server's repeats can refer to the previous message; with
 * server_no_context_takeover they must not (RFC 7692 §7.1.1.1). */
async function similarMessages(conn, params, count = 20) {
  let x = 0x2545f491;
  const body = Array.from({ length: 128 }, () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x.toString(16).padStart(8, '0');
  }).join('');
  const sizes = [];
  for (let i = 0; i < count; i++) {
    const { received } = await onTheWire(conn, () => echo(conn, `{"seq":${i},"body":"${body}"}`));
    sizes.push(received);
  }
  const [first, later] = [sizes[0], sizes.slice(1)];
  const [min, max] = [Math.min(...later), Math.max(...later)];
  const reused = max * 2 < first;
  const detail = `server's echoes: first ${first} B, later ${min}..${max} B on the wire ` +
    `(${reused ? 'context reused' : 'each alone'})`;
  const bits = params.server_max_window_bits ?? 15;
  if (params.server_no_context_takeover && min * 4 < first * 3) {
    throw new Mismatch(`server_no_context_takeover agreed, yet ${detail}`);
  }
  if (!params.server_no_context_takeover && bits >= 12 && !reused) {
    throw new Mismatch(`context takeover allowed with a 2^${bits} window, yet ${detail}`);
  }
  return `${count} echoes; ${detail}`;
}

/** On a fresh connection: empty messages right after compressed ones.
 * Compressed, an empty message is one 0x00 byte (RFC 7692 §7.2.3.6); an
 * empty payload with RSV1 would leave the receiver's inflater mid-block. */
async function emptyAfterCompressed(url) {
  const conn = await Conn.open(url);
  try {
    const sequence = [
      'Hello, compressed world! '.repeat(4), '', '', Buffer.alloc(0),
      'Hello again, compressed world!'.repeat(3),
    ];
    for (const [i, m] of sequence.entries()) {
      try {
        await echo(conn, m);
      } catch (err) {
        throw new Mismatch(`message ${i} (${describe(m)}): ${err.message}`);
      }
    }
    return `${sequence.length} messages echoed: compressed, 2 empty texts, empty binary, compressed`;
  } finally {
    conn.ws.terminate();
  }
}

/** An offer the server cannot honour must be declined (RFC 7692 §7.1.2.1:
 * server_max_window_bits=8, which zlib cannot compress with). */
async function declinedOffer(url) {
  const conn = await Conn.open(url, { threshold: 0, serverMaxWindowBits: 8 });
  try {
    if (deflateParams(conn)) throw new Mismatch(`server accepted ${formatParams(deflateParams(conn))}`);
    const message = jsonText(10_000, 3);
    await echo(conn, message);
    return `offer 'permessage-deflate; server_max_window_bits=8; client_max_window_bits' declined ` +
      `(Sec-WebSocket-Extensions: ${conn.extensionsHeader}); ` +
      `${Buffer.byteLength(message)} bytes echoed uncompressed`;
  } finally {
    conn.ws.terminate();
  }
}

async function main(url, opts) {
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
  if (conn) await run('extension negotiation', () => negotiation(conn, opts.deflate, opts.expect));
  if (conn && opts.handshakeOnly) {
    await run('close 4000 "bye"', () => close(conn));
    console.log(`client_test: ${passed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  }
  const params = conn ? deflateParams(conn) : null;
  if (conn) {
    const unicode = 'héllo wörld — 你好, мир 🌍🚀 ∑∞ ﷽';
    await run('text ascii', () => echo(conn, 'Hello, interop!'));
    await run('text unicode', () => echo(conn, unicode));
    await run('text 96 KiB unicode', () => echo(conn, 'ж€🌍'.repeat(Math.floor((96 * 1024) / 9))));
    await run('binary random 1000 B', () => echo(conn, randomBytes(1000)));
    await run('binary length boundaries 125/126/65535/65536', () =>
      echoMany(conn, [125, 126, 65535, 65536].map((n) => randomBytes(n))));
    await run('binary 1 MiB', () => echo(conn, randomBytes(1 << 20)));
    if (!params) {
      // With deflate, empty messages get a fresh connection of their own
      // ('deflate: empty messages after compressed ones' below), so that a
      // broken empty message cannot spoil every later check here.
      await run('empty text', () => echo(conn, ''));
      await run('empty binary', () => echo(conn, Buffer.alloc(0)));
    }
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
    if (params) {
      const big = jsonText(100 * 1024, 1);
      await run('deflate: 100 KiB JSON text', () => compressedEcho(conn, big));
      const q = Math.floor(big.length / 4);
      const parts = [big.slice(0, q), big.slice(q, 2 * q), big.slice(2 * q, 3 * q), big.slice(3 * q)];
      await run('deflate: 100 KiB JSON text in 4 fragments', () => compressedEcho(conn, big, parts));
      await run('deflate: 20 similar messages (context takeover)', () => similarMessages(conn, params));
    }
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
  if (opts.deflate) {
    await run('deflate: empty messages after compressed ones', () => emptyAfterCompressed(url));
    await run('deflate: unusable offer declined', () => declinedOffer(url));
  }

  console.log(`client_test: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

const USAGE = 'usage: node client_test.mjs ws://127.0.0.1:PORT/ [--compression none|deflate] ' +
  '[--server-no-context-takeover] [--client-no-context-takeover] ' +
  '[--server-max-window-bits N] [--client-max-window-bits N] [--expect-params PARAMS] [--handshake-only]';

/** The command line: URL, compression settings, expected parameters. */
function parseArgs(args) {
  const opts = { url: null, deflate: false, expect: undefined, handshakeOnly: false };
  const offer = { threshold: 0 };
  let variant = false;
  const bits = (value, min) => {
    variant = true;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > 15) {
      throw new Error(`window bits must be ${min} to 15, not ${value}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    switch (arg) {
      case '--compression': {
        const v = args[++i];
        if (v !== 'none' && v !== 'deflate') throw new Error('--compression takes none or deflate');
        opts.deflate = v === 'deflate';
        break;
      }
      case '--server-no-context-takeover': offer.serverNoContextTakeover = variant = true; break;
      case '--client-no-context-takeover': offer.clientNoContextTakeover = variant = true; break;
      case '--server-max-window-bits': offer.serverMaxWindowBits = bits(args[++i], 8); break;
      case '--client-max-window-bits': offer.clientMaxWindowBits = bits(args[++i], 9); break;
      case '--expect-params': opts.expect = args[++i]; break;
      case '--handshake-only': opts.handshakeOnly = true; break;
      case '--ca-file': opts.caFile = args[++i]; break;
      default:
        if (arg.startsWith('--') || opts.url !== null) throw new Error(`unexpected argument ${arg}`);
        opts.url = arg;
    }
  }
  if (opts.url === null) throw new Error('no URL given');
  if (variant && !opts.deflate) throw new Error('deflate parameters need --compression deflate');
  return { opts, perMessageDeflate: opts.deflate ? offer : false };
}

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`client_test: ${err.message}\n${USAGE}`);
  process.exit(2);
}
/** The perMessageDeflate option of every connection (false: not offered). */
const DEFLATE = parsed.perMessageDeflate;
/** With --ca-file: the CA trusted for wss:// URLs (undefined: Node's default roots). */
const CA = parsed.opts.caFile ? readFileSync(parsed.opts.caFile) : undefined;
// A last-resort bound on the whole run, so nothing can keep it alive.
setTimeout(() => {
  console.log('FAIL client_test: whole run exceeded 120 s');
  process.exit(1);
}, 120_000).unref();
process.exitCode = await main(parsed.opts.url, parsed.opts);
process.exit();
