"""Cross-node broadcast with Python `websockets` clients, one group per node.

Usage: cross_node.py ws://NODE_A ws://NODE_B
Each of 4 users (2 per node) sends 20 numbered messages; every user must
receive exactly the other users' 60 messages, in per-sender order, and all
users the same order of the messages they share.
"""
import asyncio
import sys

import websockets

N = 20


async def user(url, name, inbox, ready, go):
    async with websockets.connect(f"{url}/?user={name}", compression=None) as ws:
        ready.set()
        await go.wait()

        async def send():
            for i in range(N):
                await ws.send(f"{name}-{i}")
                await asyncio.sleep(0.005)

        sender = asyncio.create_task(send())
        while len(inbox) < 3 * N:
            inbox.append(await asyncio.wait_for(ws.recv(), timeout=10))
        await sender
        try:
            extra = await asyncio.wait_for(ws.recv(), timeout=0.5)
            raise AssertionError(f"{name}: unexpected extra message {extra!r}")
        except asyncio.TimeoutError:
            pass


async def main(a, b):
    names = {"pa1": a, "pa2": a, "pb1": b, "pb2": b}
    inboxes = {n: [] for n in names}
    readies = {n: asyncio.Event() for n in names}
    go = asyncio.Event()
    tasks = [asyncio.create_task(user(u, n, inboxes[n], readies[n], go)) for n, u in names.items()]
    for e in readies.values():
        await e.wait()
    await asyncio.sleep(0.3)
    go.set()
    await asyncio.gather(*tasks)
    common = None
    for name, inbox in inboxes.items():
        senders = {}
        for line in inbox:
            msg, frm = line.rsplit(" -- FROM ", 1)
            assert frm != name, f"{name} got its own message"
            assert msg == f"{frm}-{len(senders.get(frm, []))}", f"{name}: order of {frm}"
            senders.setdefault(frm, []).append(msg)
        assert sorted(senders) == sorted(n for n in names if n != name), senders.keys()
        # The order of the messages not from the two users compared.
        shared = [l for l in inbox if l.rsplit(" -- FROM ", 1)[1] in ("pa1",)]
        if name != "pa1":
            common = common or shared
            assert shared == common
    print("cross-node python: 4 users on 2 nodes, 240 deliveries, ok")


asyncio.run(main(sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")))
