"""Echo server built on the Python `websockets` library, for interop tests.

Usage: echo_server.py [PORT] [--lifetime SECONDS] [--compression none|deflate]
                      [--server-no-context-takeover] [--client-no-context-takeover]
                      [--server-max-window-bits N] [--client-max-window-bits N]
(PORT 0, the default, lets the OS pick a free port.)

Listens on 127.0.0.1 only, echoes every text and binary message with its
type, and lets `websockets` answer pings and echo the close frame (it echoes
both code and reason).

Compression (RFC 7692 permessage-deflate) is off by default, so clients see
plain RFC 6455 frames. `--compression deflate` accepts it with the
`websockets` defaults (`compression="deflate"`: server and client windows of
2^12 bytes); any of the four parameter flags instead configures a
`ServerPerMessageDeflateFactory` with exactly those settings (a flag that is
absent leaves that parameter to the client's offer). `websockets` compresses
every message it sends once the extension is agreed. Prints one line
`listening on 127.0.0.1:PORT` on stdout once it accepts connections, so the
caller learns the port. Stops by itself after --lifetime seconds (default
300) so a forgotten server cannot linger.
"""

import argparse
import asyncio
import logging
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


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
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--server-no-context-takeover", action="store_true")
    parser.add_argument("--client-no-context-takeover", action="store_true")
    parser.add_argument("--server-max-window-bits", type=int, choices=range(9, 16))
    parser.add_argument("--client-max-window-bits", type=int, choices=range(8, 16))
    parser.add_argument("--tls-cert", help="serve wss:// with this PEM certificate chain")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    args = parser.parse_args()
    variant = (
        args.server_no_context_takeover
        or args.client_no_context_takeover
        or args.server_max_window_bits is not None
        or args.client_max_window_bits is not None
    )
    if variant and args.compression != "deflate":
        parser.error("deflate parameters need --compression deflate")
    compression = dict(compression=None)
    if variant:
        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=args.server_no_context_takeover,
            client_no_context_takeover=args.client_no_context_takeover,
            server_max_window_bits=args.server_max_window_bits,
            client_max_window_bits=args.client_max_window_bits,
            compress_settings={"memLevel": 5},
        )
        compression = dict(compression=None, extensions=[factory])
    elif args.compression == "deflate":
        compression = dict(compression="deflate")
    tls = {}
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls = dict(ssl=context)
    async with serve(
        echo,
        "127.0.0.1",
        args.port,
        **compression,
        **tls,
        max_size=64 * 2**20,
        ping_interval=None,
        open_timeout=10,
        close_timeout=5,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port} (compression: {args.compression})", flush=True)
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
