"""Echo server built on the Python `websockets` library, for interop tests.

Usage: echo_server.py [PORT]   (default 0: the OS picks a free port)

Listens on 127.0.0.1 only, echoes every text and binary message with its
type, and lets `websockets` answer pings and echo the close frame (it echoes
both code and reason). Compression is off so that wsproto, which negotiates
no extension, sees plain RFC 6455 frames. Prints one line
`listening on 127.0.0.1:PORT` on stdout once it accepts connections, so the
caller learns the port. Stops by itself after --lifetime seconds (default
300) so a forgotten server cannot linger.
"""

import argparse
import asyncio
import logging
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed as exc:
        # The peer failing the connection is its business; log, do not crash.
        logging.info("connection closed: %s", exc)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()
    async with serve(
        echo,
        "127.0.0.1",
        args.port,
        compression=None,
        max_size=64 * 2**20,
        ping_interval=None,
        open_timeout=10,
        close_timeout=5,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", flush=True)
        try:
            await asyncio.wait_for(server.serve_forever(), args.lifetime)
        except asyncio.TimeoutError:
            print("echo_server: lifetime over, stopping", file=sys.stderr)


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
