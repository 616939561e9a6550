"""Vectors from the real xpra 3.1.3 and python3-rencode, for src/xpra/python_tests.rs.

`gen`: prints each case as rencode and bencode hex (`-` where xpra's bencode refuses the
value), whole frames as xpra builds them, and zlib/lz4 payloads from xpra.net.compression.
`check`: reads `name frame-hex` lines and says whether xpra decodes each frame to HELLO.
"""
import sys
try:
    import rencode
except ImportError:
    print("skip: /usr/bin/python3 has no rencode module")
    sys.exit(0)
from xpra.net.bencode import bencode
from xpra.net.header import pack_header, unpack_header, FLAGS_RENCODE
from xpra.net.compression import zcompress, lz4_compress, decompress
from xpra.net.packet_encoding import decode

HELLO = ["hello", {
    "version": "3.1.3", "rencode": True, "bencode": False, "desktop_size": [1920, 1080],
    "encodings": ["rgb24", "png", "jpeg", "webp", "h264"], "challenge": True,
    "digest": ["hmac+sha512", "hmac", "xor"], "uuid": "0f3c2a", "dpi": 96,
    "session-name": "t\u00e9st", "screen_sizes": [[":0", 1920, 1080, 508, 286]],
    "big": 2**64, "neg": -70000, "padding": "p" * 300,
}]
CASES = [
    ("ints", [0, 1, 43, 44, -1, -32, -33, 127, 128, -128, -129, 32767, 32768, -32768,
              -32769, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**63 - 1, -2**63]),
    ("bigints", [2**63, -2**63 - 1, 10**40, 10**62]),
    ("bools", [True, False]),
    ("none", [None, {None: None}]),
    ("strings", ["", "a" * 63, "b" * 64, "h\u00e9llo", b"\x00\xff" * 100, "z" * 1000]),
    ("float32", [0.5, -2.25, 1e10]),
    ("float64", [1.1, 1e300, -0.1]),
    ("lists", [[], list(range(63)), list(range(64)), [[[]]], [1, [2, [3, "x"]]]]),
    ("dicts", [{}, {i: i for i in range(24)}, {i: str(i) for i in range(25)},
               {"b": 1, "a": [1, 2], 3: {"x": "y"}}]),
    ("hello", HELLO),
]
PIXELS = bytes(range(256)) * 64
DRAW = ["draw", 1, 0, 0, 64, 64, "rgb24", b"", 0, 256, {}]

def h(b):
    return b.hex() if b is not None else "-"

def norm(v):
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (list, tuple)):
        return tuple(norm(x) for x in v)
    if isinstance(v, dict):
        return {norm(k): norm(x) for k, x in v.items()}
    return v

def frame(flags, level, index, payload):
    return pack_header(flags, level, index, len(payload)) + payload

def gen():
    for name, value in CASES:
        r = rencode.dumps(value, 64 if name == "float64" else 32)
        try:
            b = bencode(value)
        except ValueError:
            b = None
        print("case", name, h(r), h(b))
    data = rencode.dumps(HELLO)
    cl, c = zcompress(data, 1)
    print("frame hello_zlib", h(frame(FLAGS_RENCODE, cl, 0, c)))
    cl, c = lz4_compress(data, 3)
    print("frame hello_lz4", h(frame(FLAGS_RENCODE, cl, 0, c)))
    print("frame hello_bencode", h(frame(0, 0, 0, bencode(HELLO))))
    cl, c = zcompress(PIXELS, 6)
    print("frame draw_chunked", h(frame(0, cl, 7, c) + frame(FLAGS_RENCODE, 0, 0, rencode.dumps(DRAW))))
    print("zlib", h(zcompress(PIXELS, 9)[1]))
    print("lz4", h(lz4_compress(PIXELS, 1)[1]))

def check():
    for line in sys.stdin:
        name, wire = line.split()
        wire = bytes.fromhex(wire)
        _, flags, level, index, size = unpack_header(wire[:8])
        data = wire[8:]
        assert size == len(data) and index == 0, name
        if level:
            data = decompress(data, level)
        packet = decode(data, flags)
        print("ok" if norm(packet) == norm(HELLO) else "bad", name, repr(packet)[:200])

gen() if sys.argv[1] == "gen" else check()
