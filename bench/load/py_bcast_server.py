#!/usr/bin/python3
"""A WebSocket broadcast server for testing wisp-load --broadcast (python3-websockets 10.x).

Every message a connection sends goes to every other connection (not back to the sender), in
order: the contract wisp-load's broadcast mode checks. Any path is accepted.

Usage: /usr/bin/python3 py_bcast_server.py --port PORT [--host 127.0.0.1] [--greet]
           [--join-delay S] [--fault drop|dup|corrupt|echo --fault-at K]
Prints "listening PORT" on stdout once it accepts connections; runs until killed.

For testing wisp-load itself:
  --greet         send the text "*hello" to each new connection before it joins (as
                  wisp-test-server's /chat sends "*joined"): allowed, counted as other=
  --join-delay S  a connection joins the group S seconds after its upgrade, so early
                  messages miss it (wisp-load's sync phase must absorb that)
  --fault KIND    misbehave on the K-th relayed message (--fault-at, default 200), towards
                  the first receiver only: drop it (a gap), dup (send it twice), corrupt (change
                  its last byte), echo (also send it back to the sender)
"""
import argparse
import asyncio
import sys

import websockets

args = None
members = {}  # connection -> its outgoing queue, in join order
relayed = 0


async def writer(ws, q):
    """One writer per connection keeps each receiver's messages in relay order."""
    try:
        while True:
            await ws.send(await q.get())
    except websockets.ConnectionClosed:
        pass


def corrupt(msg):
    last = msg[-1:]
    if isinstance(msg, str):
        return msg[:-1] + ("y" if last == "x" else "x")
    return msg[:-1] + (b"y" if last == b"x" else b"x")


def relay(sender, msg):
    global relayed
    relayed += 1
    targets = [ws for ws in members if ws is not sender]
    fault = args.fault if relayed == args.fault_at else None
    if fault == "echo" and sender in members:
        members[sender].put_nowait(msg)
    for i, ws in enumerate(targets):
        if i == 0 and fault == "drop":
            continue
        members[ws].put_nowait(corrupt(msg) if i == 0 and fault == "corrupt" else msg)
        if i == 0 and fault == "dup":
            members[ws].put_nowait(msg)


async def handler(ws, path=None):
    q = asyncio.Queue()
    task = asyncio.ensure_future(writer(ws, q))
    if args.greet:
        q.put_nowait("*hello")
    if args.join_delay:
        await asyncio.sleep(args.join_delay)
    members[ws] = q
    try:
        async for msg in ws:
            relay(ws, msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        members.pop(ws, None)
        task.cancel()


async def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--greet", action="store_true")
    ap.add_argument("--join-delay", type=float, default=0.0)
    ap.add_argument("--fault", choices=("drop", "dup", "corrupt", "echo"))
    ap.add_argument("--fault-at", type=int, default=200)
    args = ap.parse_args()
    async with websockets.serve(handler, args.host, args.port, ping_interval=None,
                                max_size=None, max_queue=None, compression=None,
                                backlog=4096):
        print(f"listening {args.port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
