"""Interop checks of a WebSocket echo server (wsproto's) with the Python
`websockets` client.

Usage: client_test.py ws://127.0.0.1:PORT/ [--compression none|deflate]
           [--server-no-context-takeover] [--client-no-context-takeover]
           [--server-max-window-bits N] [--client-max-window-bits N]
           [--expect-params PARAMS] [--handshake-only]

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

permessage-deflate (RFC 7692): off by default (`compression=None`).
`--compression deflate` offers it with the `websockets` defaults
(`permessage-deflate; client_max_window_bits`); any of the four parameter
flags instead configures a `ClientPerMessageDeflateFactory` that offers
exactly those parameters (§7.1). The "extension negotiation" check prints
what was agreed, as seen by `websockets` (`ws.protocol.extensions`), in the
format of wsproto's echo_client (`none`, or e.g.
`server_no_context_takeover server_max_window_bits=10 client_max_window_bits=15`),
and compares it with `--expect-params`; with deflate it fails unless the
extension was agreed. With deflate, all the checks above run compressed
(fragmented messages are compressed across their frames, §7.2.1), and more
follow: a 100 KiB JSON-like text, whole and in 4 fragments, must come back
in frames with RSV1 set and under half its size (the server compressed it);
20 similar messages show whether the server used context takeover (it must
not when server_no_context_takeover was agreed, and wsproto should when it
was allowed and the window holds the previous message); on a fresh
connection, empty messages right after compressed ones must echo (these
replace the two empty-message checks of the main connection, whose
compression context a bad empty message would spoil for every later check;
compressed, an empty message is one 0x00 byte, §7.2.3.6); and on a fresh
connection an offer the server cannot honour
(`server_max_window_bits=8`: zlib cannot compress with a 256-byte window)
must be declined, leaving an uncompressed but working connection (§7.1.2.1).
`--expect-params none` with deflate expects the offer to be declined.
`--handshake-only` stops after the negotiation check and closes (for
servers that do not echo).
"""

import argparse
import asyncio
import base64
import hashlib
import os
import random
import socket
import ssl
import struct
import sys
import time
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)

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
    async with connect(url, **OPTIONS) as ws:
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


# With --ca-file: the TLS context of every connection (wss:// URLs).
SSL_CONTEXT = None


def open_raw(parsed):
    """A socket to the server, wrapped in TLS for a wss:// URL."""
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=TIMEOUT)
    if parsed.scheme == "wss":
        return SSL_CONTEXT.wrap_socket(sock, server_hostname=parsed.hostname)
    return sock


def raw_unmasked_frame(url):
    """Handshake by hand on a plain socket, then send an unmasked text frame
    (RFC 6455 §5.1: the server must fail the connection, close 1002)."""
    parsed = urllib.parse.urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    with open_raw(parsed) as sock:
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


# Connection options shared by every connection; the compression settings
# are added from the command line in client_options().
CLIENT_OPTIONS = dict(
    compression=None,
    max_size=64 * 2**20,
    open_timeout=TIMEOUT,
    close_timeout=5,
    ping_interval=None,
)
# CLIENT_OPTIONS plus the compression settings; set by __main__.
OPTIONS = CLIENT_OPTIONS


def client_options(args):
    """CLIENT_OPTIONS for the command line's compression settings."""
    variant = (
        args.server_no_context_takeover
        or args.client_no_context_takeover
        or args.server_max_window_bits is not None
        or args.client_max_window_bits is not None
    )
    if variant:
        factory = ClientPerMessageDeflateFactory(
            server_no_context_takeover=args.server_no_context_takeover,
            client_no_context_takeover=args.client_no_context_takeover,
            server_max_window_bits=args.server_max_window_bits,
            client_max_window_bits=args.client_max_window_bits or True,
            compress_settings={"memLevel": 5},
        )
        return dict(CLIENT_OPTIONS, compression=None, extensions=[factory])
    if args.compression == "deflate":
        return dict(CLIENT_OPTIONS, compression="deflate")
    return dict(CLIENT_OPTIONS)


# ---- permessage-deflate (RFC 7692) -------------------------------------------


def deflate_of(ws):
    """The negotiated PerMessageDeflate extension (`websockets` 17 keeps the
    agreed extensions in `ws.protocol.extensions`), or None."""
    found = [e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
    return found[0] if found else None


def format_params(ext):
    """Negotiated parameters in the format of wsproto's echo_client."""
    if ext is None:
        return "none"
    parts = []
    if ext.remote_no_context_takeover:
        parts.append("server_no_context_takeover")
    if ext.local_no_context_takeover:
        parts.append("client_no_context_takeover")
    parts.append(f"server_max_window_bits={ext.remote_max_window_bits}")
    parts.append(f"client_max_window_bits={ext.local_max_window_bits}")
    return " ".join(parts)


async def negotiation(ws, want_deflate, expect):
    ext = deflate_of(ws)
    answer = ws.response.headers.get("Sec-WebSocket-Extensions", "absent")
    shown = f"{format_params(ext)} (Sec-WebSocket-Extensions: {answer})"
    if want_deflate and ext is None and expect != "none":
        raise Mismatch(f"permessage-deflate not negotiated: {shown}")
    if not want_deflate and ws.protocol.extensions:
        raise Mismatch(f"nothing offered, yet {shown}")
    if expect is not None and expect != format_params(ext):
        raise Mismatch(f"expected {expect!r}, negotiated {shown}")
    return shown


class FrameLog:
    """Records the frames the extension decodes (as they were on the wire:
    RSV1 and compressed length) by wrapping its decode method."""

    def __init__(self, ext):
        self.frames = []
        decode = ext.decode

        def recording_decode(frame, *, max_size=None):
            self.frames.append((frame.opcode, frame.rsv1, len(frame.data)))
            return decode(frame, max_size=max_size)

        ext.decode = recording_decode

    def take(self):
        frames, self.frames = self.frames, []
        return frames


def json_text(min_len, seed):
    """JSON-like records (ids, names, numbers, tags, some non-ASCII):
    compressible the way API traffic is, not one repeated string."""
    rnd = random.Random(seed)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    tags = ["alpha", "beta", "gamma", "δέλτα", "ε✓", "zeta"]
    records = []
    size = 0
    while size < min_len:
        r = (
            f'{{"id":{len(records)},"user":"{rnd.choice(names)}{rnd.randrange(1000)}",'
            f'"score":{rnd.randrange(100)}.{rnd.randrange(1000):03},'
            f'"active":{"true" if rnd.random() < 0.5 else "false"},'
            f'"tags":["{rnd.choice(tags)}","{rnd.choice(tags)}"],'
            f'"note":"naïve café #{rnd.randrange(10000)}"}}'
        )
        records.append(r)
        size += len(r.encode()) + 1
    return "[" + ",".join(records) + "]"


async def compressed_echo(ws, log, message, parts=None):
    """Echo `message` (sent in `parts` if given); the echo must arrive in
    frames whose first has RSV1 set, totalling under half the size."""
    log.take()
    await echo(ws, message, sent=None if parts is None else iter(parts))
    frames = log.take()
    size = len(message.encode())
    wire = sum(n for _, _, n in frames)
    if not frames or not frames[0][1]:
        raise Mismatch(f"echo of {size} bytes arrived uncompressed (RSV1 clear)")
    if wire * 2 > size:
        raise Mismatch(f"echo of {size} bytes took {wire} compressed bytes")
    sent = "" if parts is None else f" sent in {len(parts)} fragments,"
    return (
        f"{size} bytes{sent} echoed in {len(frames)} frame(s) with RSV1, "
        f"{wire} compressed bytes ({wire * 100 / size:.1f}%)"
    )


async def similar_messages(ws, log, ext, count=20):
    """Messages that differ only in a counter: with context takeover the
    server's repeats can refer to the previous message; with
    server_no_context_takeover they must not (RFC 7692 §7.1.1.1)."""
    body = random.Random(7).randbytes(512).hex()
    sizes = []
    for i in range(count):
        log.take()
        await echo(ws, f'{{"seq":{i},"body":"{body}"}}')
        frames = log.take()
        if not frames or not frames[0][1]:
            raise Mismatch(f"message {i} echoed uncompressed")
        sizes.append(sum(n for _, _, n in frames))
    first, later = sizes[0], sizes[1:]
    reused = max(later) * 2 < first
    detail = (
        f"server's echoes: first {first} B, later {min(later)}..{max(later)} B "
        f"compressed ({'context reused' if reused else 'each alone'})"
    )
    if ext.remote_no_context_takeover and min(later) * 4 < first * 3:
        raise Mismatch(f"server_no_context_takeover agreed, yet {detail}")
    if not ext.remote_no_context_takeover and ext.remote_max_window_bits >= 12 and not reused:
        bits = ext.remote_max_window_bits
        raise Mismatch(f"context takeover allowed with a 2^{bits} window, yet {detail}")
    return f"{count} echoes; {detail}"


async def empty_after_compressed(url):
    """On a fresh connection: empty messages right after compressed ones.
    Compressed, an empty message is one 0x00 byte (RFC 7692 §7.2.3.6); an
    empty payload with RSV1 would leave the receiver's inflater mid-block."""
    sequence = ["Hello, compressed world! " * 4, "", "", b"", "Hello again, compressed world!" * 3]
    async with connect(url, **OPTIONS) as ws:
        log = FrameLog(deflate_of(ws))
        for i, message in enumerate(sequence):
            try:
                await echo(ws, message)
            except Exception as exc:
                frames = show_frames(log.take())
                raise Mismatch(f"message {i} ({describe(message)}): {exc}; server frames: {frames}")
        frames = show_frames(log.take())
    return (
        f"{len(sequence)} messages echoed (compressed, 2 empty texts, empty binary, "
        f"compressed); server frames: {frames}"
    )


def show_frames(frames):
    return ", ".join(f"{'RSV1' if rsv1 else 'plain'} {n} B" for _, rsv1, n in frames)


async def declined_offer(url):
    """An offer the server cannot honour must be declined (RFC 7692
    §7.1.2.1: server_max_window_bits=8, which zlib cannot compress with);
    the connection then works uncompressed."""
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=8)
    options = dict(CLIENT_OPTIONS, compression=None, extensions=[factory])
    async with connect(url, **options) as ws:
        if ws.protocol.extensions:
            raise Mismatch(f"server accepted {format_params(deflate_of(ws))}")
        answer = ws.response.headers.get("Sec-WebSocket-Extensions", "absent")
        message = json_text(10_000, 3)
        await echo(ws, message)
    return (
        f"offer 'permessage-deflate; server_max_window_bits=8' declined "
        f"(Sec-WebSocket-Extensions: {answer}); {len(message)} bytes echoed uncompressed"
    )


async def main(url, args):
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
        ws = await connect(url, **OPTIONS)
    except Exception as exc:  # refused, timed out, bad handshake...
        print(f"FAIL handshake: {type(exc).__name__}: {exc}")
        print("client_test: 0 passed, 1 failed")
        return 1
    print(f"ok   handshake: HTTP 101 from {url}", flush=True)
    results.append(True)
    deflate = args.compression == "deflate"
    await run("extension negotiation", negotiation(ws, deflate, args.expect_params))
    if args.handshake_only:
        await run('close 4000 "bye"', close(ws))
        return summary(results)
    ext = deflate_of(ws)
    log = FrameLog(ext) if ext is not None else None

    await run("text ascii", echo(ws, "Hello, interop!"))
    await run("text unicode", echo(ws, unicode))
    await run("text 96 KiB unicode", echo(ws, "ж€🌍" * (96 * 1024 // 9)))
    await run("binary random 1000 B", echo(ws, os.urandom(1000)))
    await run(
        "binary length boundaries 125/126/65535/65536",
        echo_many(ws, [os.urandom(n) for n in (125, 126, 65535, 65536)]),
    )
    await run("binary 1 MiB", echo(ws, os.urandom(2**20)))
    if ext is None:
        # With deflate, empty messages get a fresh connection of their own
        # ("deflate: empty messages after compressed ones" below), so that a
        # broken empty message cannot spoil every later check here.
        await run("empty text", echo(ws, ""))
        await run("empty binary", echo(ws, b""))
    await run("fragmented text", fragmented_text(ws))
    await run("fragmented binary", fragmented_binary(ws))
    await run("UTF-8 split across fragments", split_utf8(ws))
    await run("burst of 100 pipelined", burst(ws))
    if ext is not None:
        big = json_text(100 * 1024, 1)
        await run("deflate: 100 KiB JSON text", compressed_echo(ws, log, big))
        q = len(big) // 4
        parts = [big[:q], big[q : 2 * q], big[2 * q : 3 * q], big[3 * q :]]
        await run(
            "deflate: 100 KiB JSON text in 4 fragments", compressed_echo(ws, log, big, parts)
        )
        await run("deflate: 20 similar messages (context takeover)", similar_messages(ws, log, ext))
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
    if deflate:
        await run("deflate: empty messages after compressed ones", empty_after_compressed(url))
        await run("deflate: unusable offer declined", declined_offer(url))
    return summary(results)


def summary(results):
    passed = sum(results)
    failed = len(results) - passed
    print(f"client_test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--server-no-context-takeover", action="store_true")
    parser.add_argument("--client-no-context-takeover", action="store_true")
    parser.add_argument("--server-max-window-bits", type=int, choices=range(8, 16))
    parser.add_argument("--client-max-window-bits", type=int, choices=range(9, 16))
    parser.add_argument("--expect-params")
    parser.add_argument("--handshake-only", action="store_true")
    parser.add_argument("--ca-file", help="trust this PEM CA for wss:// URLs")
    cli = parser.parse_args()
    if cli.ca_file:
        SSL_CONTEXT = ssl.create_default_context(cafile=cli.ca_file)
        CLIENT_OPTIONS["ssl"] = SSL_CONTEXT
    if cli.compression != "deflate" and client_options(cli).get("extensions"):
        parser.error("deflate parameters need --compression deflate")
    OPTIONS = client_options(cli)
    sys.exit(asyncio.run(main(cli.url, cli)))
