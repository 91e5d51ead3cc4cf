#!/usr/bin/env python3
"""Write the committed seed corpora fuzz/corpus/<target>/seed-*.

Run from anywhere: python3 fuzz/gen_seeds.py. Deterministic, so re-running
gives the same files. Layouts of the inputs are described in each target.
"""
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def header(op, length, fin=True, mask=None, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    m = 0x80 if mask else 0
    if length < 126:
        out = bytes([b0, m | length])
    elif length < 65536:
        out = bytes([b0, m | 126]) + struct.pack(">H", length)
    else:
        out = bytes([b0, m | 127]) + struct.pack(">Q", length)
    return out + (mask or b"")


def frame(op, payload, fin=True, mask=None, rsv=0):
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header(op, len(payload), fin, mask, rsv) + payload


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def frames_seeds(target, mask):
    close = struct.pack(">H", 1000) + b"bye"
    long_text = ("κόσμε " * 100).encode()
    seeds = {
        # [faults, config, stream...]; see fuzz/src/messages.rs
        "hello": bytes([0, 0]) + frame(1, b"Hello", mask=mask),
        "fragments-ping": bytes([0, 0])
        + frame(1, b"Hel", fin=False, mask=mask)
        + frame(9, b"ping", mask=mask)
        + frame(0, b"lo", mask=mask)
        + frame(2, bytes(range(200)), mask=mask),
        "close": bytes([3, 0x10]) + frame(8, close, mask=mask) + frame(1, b"late", mask=mask),
        "close-empty-pong": bytes([0x80 | 2, 0]) + frame(10, b"p", mask=mask) + frame(8, b"", mask=mask),
        "too-big": bytes([1, 0x04]) + frame(2, bytes(300), mask=mask),
        "direct-read": bytes([0x40 | 5, 0x02]) + frame(1, long_text, mask=mask) + frame(9, b"", mask=mask),
        "bad-utf8": bytes([0, 0]) + frame(1, b"ok\xed\xa0\x80", mask=mask),
        "leftover": bytes([7, 0x31]) + frame(1, b"a", mask=mask) * 20,
        "wrong-mask": bytes([0, 0]) + frame(1, b"x", mask=None if mask else MASK),
        "reserved": bytes([0, 0]) + frame(3, b"", mask=mask) + frame(1, b"", mask=mask, rsv=4),
        "truncated": bytes([0, 0]) + frame(2, bytes(50), mask=mask)[:30],
        "huge-length": bytes([0, 0]) + header(2, 1 << 62, mask=mask),
        "message-limit": bytes([0, 0x0C])
        + frame(2, b"a" * 60, fin=False, mask=mask)
        + frame(0, b"b" * 60, mask=mask),
    }
    for name, data in seeds.items():
        write(target, name, data)


def deflate(data, wbits=15, level=6):
    """Raw DEFLATE with the trailing 00 00 ff ff removed (RFC 7692 §7.2.1)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_seeds():
    # [offer, faults, config, frames...]; see fuzz/src/deflate.rs
    close = frame(8, struct.pack(">H", 1000), mask=MASK)
    hello = deflate(b"Hello, Hello, Hello")
    two = deflate(b"first message")
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    shared = [c.compress(b"context " * 10) + c.flush(zlib.Z_SYNC_FLUSH),
              c.compress(b"context " * 10) + c.flush(zlib.Z_SYNC_FLUSH)]
    shared = [m[:-4] for m in shared]
    frag = deflate("κόσμε ".encode() * 40)
    seeds = {
        "hello": bytes([0, 0, 0]) + frame(1, hello, mask=MASK, rsv=4) + frame(9, b"p", mask=MASK)
        + frame(2, b"plain", mask=MASK) + close,
        "context-takeover": bytes([0, 5, 0]) + frame(2, shared[0], mask=MASK, rsv=4)
        + frame(2, shared[1], mask=MASK, rsv=4) + close,
        "no-context-takeover": bytes([0x06, 0, 0]) + frame(1, two, mask=MASK, rsv=4)
        + frame(1, two, mask=MASK, rsv=4) + close,
        "fragmented": bytes([0x01, 0x40 | 3, 0x02]) + frame(1, frag[:20], fin=False, mask=MASK, rsv=4)
        + frame(10, b"", mask=MASK) + frame(0, frag[20:], mask=MASK) + close,
        "window-9": bytes([0x80, 0, 0]) + frame(1, deflate(b"small window " * 30, wbits=9), mask=MASK, rsv=4) + close,
        "server-window-10": bytes([0x18 | 0x40, 0, 0]) + frame(1, hello, mask=MASK, rsv=4) + close,
        "bomb": bytes([0, 0, 0]) + frame(2, deflate(bytes(1 << 20), level=9), mask=MASK, rsv=4),
        "bomb-small-limit": bytes([0, 0, 0x04]) + frame(2, deflate(bytes(5000), level=9), mask=MASK, rsv=4),
        "bad-data": bytes([0, 0, 0]) + frame(2, b"\xff\xff\xff\xff", mask=MASK, rsv=4),
        "compressed-ping": bytes([0, 0, 0]) + frame(9, hello, mask=MASK, rsv=4),
        "rsv1-continuation": bytes([0, 0, 0]) + frame(2, hello, fin=False, mask=MASK, rsv=4)
        + frame(0, hello, mask=MASK, rsv=4),
    }
    for name, data in seeds.items():
        write("read_frames_deflate", name, data)


def main():
    for name, data in {
        "text": bytes([0x81, 0x05]),
        "masked": bytes([0x81, 0x85]) + MASK,
        "len16": bytes([0x82, 0x7E, 0x01, 0x00]),
        "len64-masked": bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + MASK,
        "nonminimal": bytes([0x82, 0x7E, 0x00, 0x7D]),
        "overflow": bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        "short": bytes([0x89]),
        "frame": frame(1, b"Hello", mask=MASK) + b"rest",
    }.items():
        write("frame_header", name, data)

    frames_seeds("read_frames_server", MASK)
    frames_seeds("read_frames_client", None)
    deflate_seeds()

    good = (
        b"GET /chat?user=ann HTTP/1.1\r\nHost: server.example.com\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    for name, data in {
        "rfc-example": good,
        "pipelined-frame": good + frame(1, b"Hello", mask=MASK),
        "deny": good.replace(b"/chat", b"/deny"),
        "version-8": good.replace(b"Version: 13", b"Version: 8"),
        "post": good.replace(b"GET", b"POST", 1),
        "no-key": good.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
        "bad-key": good.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25jZQ"),
        "lists": b"GET / HTTP/1.1\r\nhost: h\r\nupgrade: h2c, WebSocket\r\n"
        b"connection: keep-alive,  upgrade\r\nsec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        b"sec-websocket-version:13\r\n\r\n",
        "http10": b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        "plain-http": b"GET /index.html HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
        "truncated": good[:60],
    }.items():
        write("handshake_request", name, data)

    ok = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: $ACCEPT\r\n\r\n"
    )
    for name, data in {
        "ok": ok,
        "ok-with-frames": ok + frame(1, b"Hello") + frame(9, b"") + frame(8, struct.pack(">H", 1001)),
        "wrong-accept": ok.replace(b"$ACCEPT", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "extension": ok.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        "protocol": ok.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n"),
        "refused": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno thanks",
        "no-length": b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy",
        "short": b"HTTP/1.1 101 Switching",
    }.items():
        write("handshake_response", name, data)

    for name, (mask, offset, start, split, data) in {
        "empty": (MASK, 0, 0, 0, b""),
        "odd": (MASK, 3, 1, 2, bytes(range(37))),
        "long": (b"\x01\x02\x03\x04", 1 << 33, 7, 100, bytes(range(256)) * 2),
        "aligned": (b"\xff\x00\xff\x00", 4, 8, 64, b"x" * 65),
    }.items():
        write(
            "cipher_differential",
            name,
            mask + struct.pack("<Q", offset) + bytes([start, split]) + data,
        )


if __name__ == "__main__":
    main()
