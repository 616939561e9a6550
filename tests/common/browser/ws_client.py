#!/usr/bin/python3
"""An independent WebSocket client for the deskrelay tests: Debian's python3-websockets
(10.x, asyncio API), not the browser and not the tungstenite code under test.

Connects to URL, sends each --send HEX or --send-file PATH as one binary message (in the order
given; a file holds the raw bytes, for messages too big for a command line), then reads messages
until --expect bytes arrived in all, the peer closes, or --timeout passes. What happened is
printed one event a line, payloads in hex, so the Rust side can check bytes exactly:

    open SUBPROTOCOL_OR_-
    header NAME: VALUE        (each response header of the upgrade)
    recv HEX                  (a binary message)
    text HEX                  (a text message, its UTF-8 bytes)
    close CODE REASON_HEX     (the peer's close frame; CODE 1006 = no close frame)
    timeout                   (--timeout passed with fewer than --expect bytes)
    error MESSAGE             (the upgrade or the connection failed)

Exits 0 in every case above: the test decides what is right. permessage-deflate is off unless
--deflate is given, so what crosses the wire is what was asked for.
"""
import argparse
import asyncio
import sys

import websockets


def emit(*parts):
    print(*parts, flush=True)


async def run(args):
    kwargs = dict(
        subprotocols=args.subprotocol or None,
        max_size=None,
        ping_interval=None,
        open_timeout=args.timeout,
        close_timeout=5,
        compression="deflate" if args.deflate else None,
    )
    headers = []
    for h in args.header or []:
        name, _, value = h.partition(":")
        headers.append((name.strip(), value.strip()))
    if headers:
        kwargs["extra_headers"] = headers
    if args.origin:
        kwargs["origin"] = args.origin
    try:
        ws = await websockets.connect(args.url, **kwargs)
    except Exception as e:
        emit("error", "%s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
        return
    emit("open", ws.subprotocol or "-")
    for name, value in ws.response_headers.raw_items():
        emit("header", "%s: %s" % (name, value))
    try:
        for data in args.messages:
            await ws.send(data)
        got = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while args.expect is None or got < args.expect:
            left = deadline - loop.time()
            if left <= 0:
                emit("timeout")
                break
            try:
                msg = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                emit("timeout")
                break
            if isinstance(msg, bytes):
                emit("recv", msg.hex() or "-")
                got += len(msg)
            else:
                data = msg.encode("utf-8")
                emit("text", data.hex() or "-")
                got += len(data)
    except websockets.ConnectionClosed:
        pass
    except Exception as e:
        emit("error", "%s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
    if ws.open:
        await ws.close()
    await ws.wait_closed()
    emit("close", ws.close_code, (ws.close_reason or "").encode("utf-8").hex() or "-")


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--subprotocol", action="append")
    ap.add_argument("--send", action="append", metavar="HEX", type=bytes.fromhex,
                    dest="messages", default=[])
    ap.add_argument("--send-file", action="append", metavar="PATH", type=read_file,
                    dest="messages")
    ap.add_argument("--expect", type=int, help="stop after this many payload bytes")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--header", action="append", metavar="NAME:VALUE")
    ap.add_argument("--origin")
    ap.add_argument("--deflate", action="store_true")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
