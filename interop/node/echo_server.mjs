// Echo server built on the Node `ws` library, for interop tests.
//
// Usage: node echo_server.mjs [PORT] [--lifetime SECONDS] [--compression none|deflate]
//          [--server-no-context-takeover] [--client-no-context-takeover]
//          [--server-max-window-bits N] [--client-max-window-bits N]
// (PORT 0, the default, lets the OS pick a free port.)
//
// Listens on 127.0.0.1 only and echoes every text and binary message with its
// type; `ws` answers pings itself (autoPong) and echoes the close frame with
// its code and reason.
//
// permessage-deflate (RFC 7692) is off by default, so clients see plain
// RFC 6455 frames. `--compression deflate` accepts it, with `threshold: 0` so
// that every message is compressed (ws leaves messages under `threshold`
// uncompressed when no_context_takeover applies); the four parameter flags
// set `serverNoContextTakeover`, `clientNoContextTakeover`,
// `serverMaxWindowBits` and `clientMaxWindowBits` (ws then imposes them on
// the client's offer, RFC 7692 §7.1). Prints one line
// `listening on 127.0.0.1:PORT` on stdout once it accepts connections, and
// stops by itself after --lifetime seconds (default 300) so a forgotten server
// cannot linger.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
let port = 0;
let lifetime = 300;
let compression = 'none';
let tlsCert = null;
let tlsKey = null;
const deflate = { threshold: 0 };
function bits(value, min) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > 15) {
    console.error(`echo_server: window bits must be ${min} to 15, not ${value}`);
    process.exit(2);
  }
  return n;
}
for (let i = 0; i < args.length; i++) {
  switch (args[i]) {
    case '--lifetime': lifetime = Number(args[++i]); break;
    case '--compression': compression = args[++i]; break;
    case '--tls-cert': tlsCert = args[++i]; break;
    case '--tls-key': tlsKey = args[++i]; break;
    case '--server-no-context-takeover': deflate.serverNoContextTakeover = true; break;
    case '--client-no-context-takeover': deflate.clientNoContextTakeover = true; break;
    case '--server-max-window-bits': deflate.serverMaxWindowBits = bits(args[++i], 9); break;
    case '--client-max-window-bits': deflate.clientMaxWindowBits = bits(args[++i], 8); break;
    default:
      if (args[i].startsWith('--')) {
        console.error(`echo_server: unknown option ${args[i]}`);
        process.exit(2);
      }
      port = Number(args[i]);
  }
}
if (!['none', 'deflate'].includes(compression)) {
  console.error('echo_server: --compression takes none or deflate');
  process.exit(2);
}
if (compression === 'none' && Object.keys(deflate).length > 1) {
  console.error('echo_server: deflate parameters need --compression deflate');
  process.exit(2);
}

// With --tls-cert/--tls-key: wss:// through an https server.
const https_server = tlsCert
  ? https.createServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey) })
  : null;
const server = new WebSocketServer({
  ...(https_server ? { server: https_server } : { host: '127.0.0.1', port }),
  perMessageDeflate: compression === 'deflate' ? deflate : false,
  maxPayload: 64 * 1024 * 1024,
});

const listening = () => {
  const address = (https_server ?? server).address();
  console.log(`listening on 127.0.0.1:${address.port} (compression: ${compression}, tls: ${!!https_server})`);
};
if (https_server) {
  https_server.listen(port, '127.0.0.1', listening);
} else {
  server.on('listening', listening);
}

server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  // A peer failing the connection is logged, never fatal to the server.
  ws.on('error', (err) => console.error(`echo_server: connection error: ${err.message}`));
});

server.on('error', (err) => {
  console.error(`echo_server: ${err.message}`);
  process.exit(1);
});

setTimeout(() => {
  console.error('echo_server: lifetime over, stopping');
  process.exit(0);
}, lifetime * 1000).unref();

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
