"""Writes the seed corpora, fuzz/seeds/<target>/, from the captures in captures/ and from
frames built with xpra 3.1.3's own encoders and compressors.

Run with Debian's python (it has xpra, rencode and lz4):  /usr/bin/python3 make_seeds.py
Each seed starts with the parameter bytes its target reads first (see the target's doc).
"""
import os
import shutil
import struct
import sys

import rencode
from xpra.net.bencode import bencode
from xpra.net.compression import lz4_compress, zcompress
from xpra.net.header import FLAGS_RENCODE, pack_header

HERE = os.path.dirname(os.path.abspath(__file__))
CAP = os.path.join(HERE, "captures")


def cap(name):
    with open(os.path.join(CAP, name), "rb") as f:
        return f.read()


def frame(flags, level, index, payload):
    return pack_header(flags, level, index, len(payload)) + payload


def rframe(packet, comp=None, level=1):
    data = rencode.dumps(packet)
    if comp == "zlib":
        cl, data = zcompress(data, level)
        return frame(FLAGS_RENCODE, cl, 0, data)
    if comp == "lz4":
        cl, data = lz4_compress(data, level)
        return frame(FLAGS_RENCODE, cl, 0, data)
    return frame(FLAGS_RENCODE, 0, 0, data)


def bframe(packet):
    return frame(0, 0, 0, bencode(packet))


def rencodeplus(v):
    """rencodeplus (xpra 4.3+, which Debian's 3.1.3 lacks): rencode but binary `len/bytes`."""
    if isinstance(v, bytes):
        return b"%d/" % len(v) + v
    if isinstance(v, list):
        return bytes([192 + len(v)]) + b"".join(rencodeplus(x) for x in v)
    if isinstance(v, dict):
        return bytes([102 + len(v)]) + b"".join(rencodeplus(k) + rencodeplus(x) for k, x in v.items())
    return rencode.dumps(v)


# The captured client hello's first capabilities: real keys and values, small enough to mutate.
_info = cap("xpra-info-hello.bin")
import zlib  # noqa: E402

INFO_PAYLOAD = zlib.decompress(_info[8:])
_attach = rencode.loads(zlib.decompress(cap("xpra-attach-hello-rencode-zlib.bin")[8:]))
CAPS = dict(list(_attach[1].items())[:40])
HELLO = [b"hello", CAPS]
PIXELS = bytes(range(256)) * 8
DRAW = [b"draw", 1, 0, 0, 32, 32, b"rgb24", b"", 7, 96, {b"lz4": 1}]

# One direction of a session after authentication, as the gate and decoder see it.
cl, zpixels = zcompress(PIXELS, 6)
SERVER_STREAM = (
    frame(0, cl, 7, zpixels)  # a chunk: pixels sent ahead of the draw that holds them
    + rframe(DRAW)
    + rframe([b"ping", 123456789, 0, b""])
    + rframe([b"info-response", {b"server": {b"pid": 1}, b"proxy": b"x" * 200}], "zlib")
    + rframe([b"cursor", b"png", b"z" * 300], "lz4")
    + rframe([b"disconnect", b"server shutdown"])
)
CLIENT_STREAM = (
    rframe([b"ping_echo", 123456789, 0, 0, 0, 0])
    + bframe([b"damage-sequence", 1, 1, 32, 32, 500])
    + rframe(HELLO, "zlib")
    + rframe([b"disconnect", b"client exit"], "lz4", 3)
)
XPRA_FRAMES = {
    "info-hello": _info,
    "attach-hello-rencode-zlib": cap("xpra-attach-hello-rencode-zlib.bin"),
    "attach-hello-bencode-lz4": cap("xpra-attach-hello-bencode-lz4.bin"),
    "hello-rencode": rframe(HELLO),
    "hello-bencode": bframe(HELLO),
    "hello-lz4": rframe(HELLO, "lz4"),
    "hello-rencodeplus": frame(0x10, 0, 0, rencodeplus([b"hello", {b"version": b"4.4", b"k": b"\x00\xff"}])),
    "server-stream": SERVER_STREAM,
    "client-stream": CLIENT_STREAM,
}

WS_FRAMES = {"chromium": cap("chromium-ws-frames.bin")}


def ws(opcode, payload, fin=True, key=b"\x37\xfa\x21\x3d", length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


WS_FRAMES["fragments-ping-close"] = (
    ws(2, INFO_PAYLOAD[:100], fin=False)
    + ws(9, b"are you there")
    + ws(0, INFO_PAYLOAD[100:400], fin=False)
    + ws(10, b"")
    + ws(0, INFO_PAYLOAD[400:500])
    + ws(8, struct.pack(">H", 1001) + "going \u00e9".encode())
)
WS_FRAMES["big-header"] = ws(2, b"\x00" * 64, length=70000)
WS_FRAMES["xpra-in-ws"] = ws(2, _info)

HTTP = {n[:-5]: cap(n) for n in sorted(os.listdir(CAP)) if n.endswith(".http")}
HTTP["options-star"] = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
HTTP["http10-head"] = b"HEAD /sub HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
HTTP["absolute-form"] = b"GET http://h/app.js?echo-headers HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip;q=1\r\nAccept-Language: fr-CH, fr;q=0.9\r\n\r\n"
HTTP["traversal"] = b"GET /%2e%2e/outside/passwd HTTP/1.1\r\nHost: h\r\n\r\n"
HTTP["post-body"] = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"

SEEDS = {
    # [limit, cut lo, cut hi, step] + stream
    "xpra_frame": {n: bytes([6, 0x40, 0, 7]) + f for n, f in XPRA_FRAMES.items()},
    # [limit, cut lo, cut hi, step] + stream
    "xpra_gate": {n: bytes([4, 0x30, 0, 15]) + f for n, f in XPRA_FRAMES.items()},
    # [flags, cut lo, cut hi] + item
    "xpra_rencode": {
        "info-hello": b"\x00\x10\x00" + INFO_PAYLOAD,
        "hello-caps": b"\x00\x20\x00" + rencode.dumps(HELLO),
        "draw": b"\x00\x05\x00" + rencode.dumps(DRAW),
        "numbers": b"\x00\x03\x00" + rencode.dumps([0, -1, 43, 44, -32, -33, 2**40, -2**63, 2**64, 1.5, 0.1, True, None]),
        "rencodeplus": b"\x01\x09\x00" + rencodeplus([b"hello", {b"k": b"\x00\xff" * 40}]),
    },
    # [cut lo, cut hi] + item
    "xpra_bencode": {
        "hello-caps": b"\x20\x00" + bencode(HELLO),
        "draw": b"\x05\x00" + bencode(DRAW),
        "unicode": b"\x03\x00" + b"lu5:h\xc3\xa9lloi-42ei18446744073709551616ee",
    },
    # [mode, limit, n lo, n hi, cut lo, cut hi] + payload (mode 0) or data (mode 1)
    "xpra_compress": {
        "zlib-info": bytes([0, 3, 96, 0, 0x40, 0]) + _info[8:],
        "lz4-hello": bytes([0, 4, 96, 0, 0x20, 1]) + lz4_compress(rencode.dumps(HELLO), 1)[1],
        "zlib-bomb": bytes([0, 2, 96, 0, 9, 0]) + zcompress(b"\x00" * 100000, 9)[1],
        "lz4-bomb": bytes([0, 2, 96, 0, 9, 0]) + lz4_compress(b"\x00" * 100000, 1)[1],
        "round-trip": bytes([3, 0, 50, 0, 30, 0]) + INFO_PAYLOAD[:600],
    },
    # [knobs, cut lo, cut hi] + request
    "http_request": {n: bytes([i & 0x1f, 0x20, 0]) + r for i, (n, r) in enumerate(HTTP.items())},
    # [plus] + path
    "http_path": {
        "index": b"\x00/",
        "dir-no-slash": b"\x00/sub",
        "encoded": b"\x01/sub/p%61ge.html",
        "link-inside": b"\x00/inside",
        "link-outside": b"\x00/outside/passwd",
        "dotdot": b"\x00/sub/%2e%2E/index.html",
        "fifo": b"\x00/fifo",
        "hidden": b"\x00/.hidden",
        "separator": b"\x00/sub%2fpage.html",
    },
    "http_tokens": {
        "websockify": b"# targets\n\nvnc1: 127.0.0.1:5901\r\n  vnc2:\t[::1]:5902  \ndesk-3: desktop.example:14500\nweird:tok: 10.0.0.1:1\n",
        "bad-line": b"ok: 1.2.3.4:5\nno separator\n",
    },
    # [limit, cut lo, cut hi, step, mask offset] + frames
    "ws_decoder": {n: bytes([6, 0x10, 0, 5, 1]) + f for n, f in WS_FRAMES.items()},
    "sniff": {
        "xpra": _info[:64],
        "tls": bytes.fromhex("16030100f4010000f00303") + b"\x00" * 32,
        "http": HTTP["chromium-upgrade"][:64],
        "ssh": b"SSH-2.0-OpenSSH_9.2p1\r\n",
        "post": b"POST",
    },
    # The first bytes from a balancer: haproxy 2.6's own headers, then what our encoder and
    # the spec's other families give.
    "proxy_protocol": {
        "haproxy-v2-crc32c-unique-id": cap("haproxy-send-proxy-v2-crc32c-unique-id.bin"),
        "haproxy-v1-tcp6": cap("haproxy-send-proxy-tcp6.bin"),
        "v1-tcp4": b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 14500\r\nPx",
        "v1-unknown": b"PROXY UNKNOWN\r\n",
        "v2-local": b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
        "v2-tcp6": b"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + bytes(15) + b"\x01"
        + bytes(15) + b"\x01\x9c\x40\x38\x94",
        "v2-unix": b"\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\xd8" + b"/run/a".ljust(108, b"\0")
        + b"/run/b".ljust(108, b"\0"),
        "direct-client": b"PxxxxxxxHELLO",
    },
    "multifile": {
        "entries": b"# comment\n\n  alice|pw one|1000|1001|:10, tcp://bob:x@h:1/|A=1;B=b=c;|compression=0  \r\ncarol|pw2\r"
        b"dave|pw3|daemon||:11\n",
        "displays": b"u|p|nobody|nogroup|tcp://[::1]:14500/,tcp:host,:0\n",
        "root": b"u|pw|root|1000|:1\n",
    },
}


def main():
    for target, seeds in SEEDS.items():
        d = os.path.join(HERE, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes", file=sys.stderr)


main()
