#!/usr/bin/python3
"""A WebSocket echo server for testing wisp-load (Debian's python3-websockets 10.x).

Usage: /usr/bin/python3 py_echo_server.py --port PORT [--host 127.0.0.1]
Prints "listening PORT" on stdout once it accepts connections; runs until killed.
"""
import argparse
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    async with websockets.serve(echo, args.host, args.port, ping_interval=None,
                                max_size=None, max_queue=None, compression=None,
                                backlog=4096):
        print(f"listening {args.port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
