// Echo server built on the Node `ws` library, for interop tests.
//
// Usage: node echo_server.mjs [PORT] [--lifetime SECONDS]
// (PORT 0, the default, lets the OS pick a free port.)
//
// Listens on 127.0.0.1 only and echoes every text and binary message with its
// type; `ws` answers pings itself (autoPong) and echoes the close frame with
// its code and reason. permessage-deflate is off so wsproto, which negotiates
// no extension, sees plain RFC 6455 frames. Prints one line
// `listening on 127.0.0.1:PORT` on stdout once it accepts connections, and
// stops by itself after --lifetime seconds (default 300) so a forgotten server
// cannot linger.

import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
let port = 0;
let lifetime = 300;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--lifetime') lifetime = Number(args[++i]);
  else port = Number(args[i]);
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

server.on('listening', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});

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
