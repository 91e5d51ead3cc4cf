"""Interop checks of a WebSocket echo server (wsproto's) with the Python
`websockets` client.

Usage: client_test.py ws://127.0.0.1:PORT/

Prints one line per check (`ok   name: detail` or `FAIL name: why`), then
`client_test: N passed, M failed`; exit status 1 on any failure. Every step
has a time-out, so a silent server fails the run instead of hanging it.

Positive checks share one connection: text (ASCII, multi-byte), binary at
each payload-length encoding boundary (RFC 6455 §5.2), 1 MiB, empty
messages, fragmented messages (§5.4; `websockets` sends one frame per item
of an iterable, then an empty final continuation), a text message whose
UTF-8 characters are split across fragments, a pipelined burst, ping/pong
with payload (§5.5.3) and the close handshake with code 4000 (§7.4.2).
Negative checks each use a fresh connection: invalid UTF-8 in a text frame
(single and fragmented) must be answered with close 1007 (§8.1), and an
unmasked client frame (written over a raw socket, since `websockets` always
masks) with close 1002 (§5.1).
"""

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import time
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0  # seconds, for every single step
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Mismatch(Exception):
    """The server answered, but not with what was expected."""


def describe(data):
    kind = "text" if isinstance(data, str) else "binary"
    return f"{kind} of {len(data.encode() if isinstance(data, str) else data)} bytes"


def expect_equal(want, got, what="echo"):
    if type(want) is not type(got):
        raise Mismatch(f"{what}: sent {describe(want)}, got {describe(got)}")
    if want != got:
        if len(want) != len(got):
            raise Mismatch(f"{what}: sent {describe(want)}, got {describe(got)}")
        at = next(i for i, (a, b) in enumerate(zip(want, got)) if a != b)
        raise Mismatch(f"{what}: {describe(want)} differs first at index {at}")


async def echo(ws, message, sent=None):
    """Send `message` (or `sent`, e.g. fragments of it) and expect `message` back."""
    await asyncio.wait_for(ws.send(message if sent is None else sent), TIMEOUT)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    expect_equal(message, got)
    return f"{describe(message)} echoed"


async def echo_many(ws, messages):
    for m in messages:
        await echo(ws, m)
    return f"{len(messages)} echoes"


async def fragmented_text(ws):
    parts = ["frag", "mented ", "→ text ", "✓"]
    return await echo(ws, "".join(parts), sent=iter(parts)) + f" from {len(parts)} fragments"


async def fragmented_binary(ws):
    parts = [os.urandom(n) for n in (1, 125, 126, 4000, 70000)]

    async def chunks():
        for p in parts:
            yield p

    return await echo(ws, b"".join(parts), sent=chunks()) + f" from {len(parts)} fragments"


async def split_utf8(ws):
    # "café €" with the two-byte é and the three-byte € cut across frames:
    # the server must validate UTF-8 across fragment boundaries, not per frame.
    whole = "café €"
    raw = whole.encode()
    cuts = [raw[:4], raw[4:7], raw[7:8], raw[8:]]
    await asyncio.wait_for(ws.send(cuts, text=True), TIMEOUT)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    expect_equal(whole, got)
    return f"characters split over {len(cuts)} fragments echoed"


async def burst(ws, count=100):
    messages = [f"burst #{i} ✓" for i in range(count)]
    for m in messages:
        await asyncio.wait_for(ws.send(m), TIMEOUT)
    for i, want in enumerate(messages):
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        expect_equal(want, got, what=f"message {i}")
    return f"{count} echoes in order"


async def ping(ws):
    payload = b"interop-ping\x00\xff" + os.urandom(32)
    # websockets resolves the waiter only for a pong carrying exactly this
    # payload, so a wrong payload shows up as a time-out.
    waiter = await asyncio.wait_for(ws.ping(payload), TIMEOUT)
    try:
        latency = await asyncio.wait_for(waiter, TIMEOUT)
    except asyncio.TimeoutError:
        raise Mismatch(f"no pong with the {len(payload)} byte payload within {TIMEOUT}s")
    return f"pong carries the {len(payload)} byte payload ({latency * 1000:.1f} ms)"


async def close(ws):
    started = time.monotonic()
    await asyncio.wait_for(ws.close(4000, "bye"), TIMEOUT)
    elapsed = time.monotonic() - started
    proto = ws.protocol
    if proto.close_rcvd is None:
        raise Mismatch("no close frame came back")
    if proto.close_rcvd.code != 4000:
        raise Mismatch(f"close echoed with code {proto.close_rcvd.code}, want 4000")
    # close_timeout is 5 s: a server that never closes TCP makes close() wait
    # that long and then abort.
    if elapsed >= 4.0:
        raise Mismatch(f"close took {elapsed:.1f}s: server did not close TCP")
    return (
        f"server echoed code 4000 reason {proto.close_rcvd.reason!r}, "
        f"closed TCP in {elapsed * 1000:.1f} ms"
    )


async def expect_close_code(url, send, want, what):
    """On a fresh connection, `send` something bad and expect close `want`."""
    async with connect(url, **CLIENT_OPTIONS) as ws:
        await asyncio.wait_for(send(ws), TIMEOUT)
        try:
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            raise Mismatch(f"server echoed {describe(got)} instead of closing")
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                raise Mismatch(f"connection dropped without a close frame ({exc})")
            if exc.rcvd.code != want:
                raise Mismatch(f"close code {exc.rcvd.code}, want {want}")
            return f"{what}: server closed with {want} ({exc.rcvd.reason!r})"


def raw_unmasked_frame(url):
    """Handshake by hand on a plain socket, then send an unmasked text frame
    (RFC 6455 §5.1: the server must fail the connection, close 1002)."""
    parsed = urllib.parse.urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((parsed.hostname, parsed.port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        request = (
            f"GET {parsed.path or '/'} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk or len(buf) > 16384:
                raise Mismatch(f"bad handshake answer {buf[:200]!r}")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise Mismatch(f"handshake answered {lines[0]!r}")
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        if headers.get("sec-websocket-accept") != accept:
            raise Mismatch(f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
        sock.sendall(b"\x81\x05hello")  # FIN + text, MASK bit clear
        while len(rest) < 2:
            chunk = sock.recv(4096)
            if not chunk:
                raise Mismatch("connection closed without a close frame")
            rest += chunk
        b0, b1 = rest[0], rest[1]
        length = b1 & 0x7F
        if b0 != 0x88 or b1 & 0x80 or length < 2 or length > 125:
            raise Mismatch(f"expected an unmasked close frame, got header {rest[:2].hex()}")
        while len(rest) < 2 + length:
            chunk = sock.recv(4096)
            if not chunk:
                raise Mismatch("close frame cut short")
            rest += chunk
        (code,) = struct.unpack("!H", rest[2:4])
        if code != 1002:
            raise Mismatch(f"close code {code}, want 1002")
        # The server must then close TCP (RFC 6455 §7.1.1), not wait for us.
        sock.settimeout(3.0)
        try:
            while sock.recv(4096):
                pass
        except socket.timeout:
            raise Mismatch("server sent close 1002 but kept the TCP connection open")
        return f"server closed with 1002 ({rest[4:2 + length].decode(errors='replace')!r})"


CLIENT_OPTIONS = dict(
    compression=None,
    max_size=64 * 2**20,
    open_timeout=TIMEOUT,
    close_timeout=5,
    ping_interval=None,
)


async def main(url):
    results = []

    async def run(name, coro):
        try:
            detail = await asyncio.wait_for(coro, 4 * TIMEOUT)
            results.append(True)
            print(f"ok   {name}: {detail}", flush=True)
        except Exception as exc:  # any failure is reported as this check's FAIL line
            results.append(False)
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)

    unicode = "héllo wörld — 你好, мир 🌍🚀 ∑∞ ﷽"
    try:
        ws = await connect(url, **CLIENT_OPTIONS)
    except Exception as exc:  # refused, timed out, bad handshake...
        print(f"FAIL handshake: {type(exc).__name__}: {exc}")
        print("client_test: 0 passed, 1 failed")
        return 1
    print(f"ok   handshake: HTTP 101 from {url}", flush=True)
    results.append(True)

    await run("text ascii", echo(ws, "Hello, interop!"))
    await run("text unicode", echo(ws, unicode))
    await run("text 96 KiB unicode", echo(ws, "ж€🌍" * (96 * 1024 // 9)))
    await run("binary random 1000 B", echo(ws, os.urandom(1000)))
    await run(
        "binary length boundaries 125/126/65535/65536",
        echo_many(ws, [os.urandom(n) for n in (125, 126, 65535, 65536)]),
    )
    await run("binary 1 MiB", echo(ws, os.urandom(2**20)))
    await run("empty text", echo(ws, ""))
    await run("empty binary", echo(ws, b""))
    await run("fragmented text", fragmented_text(ws))
    await run("fragmented binary", fragmented_binary(ws))
    await run("UTF-8 split across fragments", split_utf8(ws))
    await run("burst of 100 pipelined", burst(ws))
    await run("ping/pong payload", ping(ws))
    await run('close 4000 "bye"', close(ws))

    await run(
        "invalid UTF-8 text -> 1007",
        expect_close_code(
            url, lambda ws: ws.send(b"\xce\xba\xff\xfe", text=True), 1007, "0xff in a text frame"
        ),
    )
    await run(
        "invalid UTF-8 across fragments -> 1007",
        expect_close_code(
            url,
            # A UTF-16 surrogate (ED A0 80) is never valid UTF-8; its first
            # byte ends the first fragment.
            lambda ws: ws.send([b"ok \xed", b"\xa0\x80"], text=True),
            1007,
            "surrogate split over 2 fragments",
        ),
    )
    await run("unmasked client frame -> 1002", asyncio.to_thread(raw_unmasked_frame, url))

    passed = sum(results)
    failed = len(results) - passed
    print(f"client_test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: client_test.py ws://127.0.0.1:PORT/", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
