// chatserv's protocol on the Node `ws` library, the peer of chat-bench.sh.
//
// Usage: node chat_server.mjs [PORT]   (0, the default, picks a free port)
//
// Clients log in with ws://127.0.0.1:PORT/?user=NAME (no user: HTTP 400); a
// second login of a name closes the older connection with 4001; every text
// message reaches every other user as "<msg> -- FROM <user>". Like chatserv
// started with --no-deflate, permessage-deflate is refused. One event loop,
// the idiomatic `ws` broadcast: the line is UTF-8 encoded once into a Buffer
// and that Buffer sent to each client as a text frame (`ws` has no prepared
// frames; a string would be encoded again for every recipient). Prints
// `listening on 127.0.0.1:PORT` once it accepts connections.

import http from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const users = new Map(); // name -> the logged-in WebSocket
const server = http.createServer((req, res) => res.writeHead(426).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (req, socket, head) => {
  const user = new URL(req.url, 'http://x').searchParams.get('user');
  if (!user) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    users.get(user)?.close(4001, 'logged in elsewhere');
    users.set(user, ws);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const line = Buffer.from(`${data} -- FROM ${user}`);
      for (const [name, peer] of users) {
        if (name !== user && peer.readyState === peer.OPEN) peer.send(line, { binary: false });
      }
    });
    ws.on('close', () => {
      if (users.get(user) === ws) users.delete(user);
    });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
