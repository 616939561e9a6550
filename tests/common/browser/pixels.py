#!/usr/bin/python3
"""Pixel checks for the browser tests, with python3-pil (installed for xpra anyway).

    pixels.py stats PNG X Y W H
        Prints `key value` lines about that region of PNG: size, colours (distinct RGB
        values), white / dark / mid (fractions of pixels with every channel >= 224, <= 64,
        or neither), and the most common colour (`top R,G,B FRACTION`).
    pixels.py compare A.png AX AY B.png BX BY W H [TOLERANCE]
        Compares the W x H region at (AX, AY) of A with the one at (BX, BY) of B and prints
        `match F`: the fraction of pixels whose channels all differ by at most TOLERANCE
        (default 48, enough for a lossy encoding of the same picture); `ink N`, the pixels
        that are not near-white in A or B (a clock's hands and ticks), and `ink_match F`, the
        fraction of those that match (a picture shifted by a pixel scores low here even
        where `match` is high); and `mean_diff D`, the mean largest channel difference.
    pixels.py grab DISPLAY X Y W H OUT.png
        Saves that region of the X display (e.g. `:42`) as OUT.png.

A region reaching past the image is an error (exit 2), never silently clipped.
"""
import sys

from PIL import Image


def region(path, x, y, w, h):
    im = Image.open(path).convert("RGB")
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > im.width or y + h > im.height:
        print("region %dx%d+%d+%d is not inside %s (%dx%d)"
              % (w, h, x, y, path, im.width, im.height), file=sys.stderr)
        sys.exit(2)
    return im.crop((x, y, x + w, y + h))


def stats(path, x, y, w, h):
    im = region(path, x, y, w, h)
    px = list(im.getdata())
    n = len(px)
    white = sum(1 for p in px if min(p) >= 224)
    dark = sum(1 for p in px if max(p) <= 64)
    counts = im.getcolors(1 << 24)
    top_count, top = max(counts)
    print("size %dx%d" % (w, h))
    print("colours %d" % len(counts))
    print("white %.4f" % (white / n))
    print("dark %.4f" % (dark / n))
    print("mid %.4f" % ((n - white - dark) / n))
    print("top %d,%d,%d %.4f" % (top[0], top[1], top[2], top_count / n))


def compare(a, ax, ay, b, bx, by, w, h, tolerance=48):
    pa = list(region(a, ax, ay, w, h).getdata())
    pb = list(region(b, bx, by, w, h).getdata())
    same = total = ink = ink_same = 0
    for p, q in zip(pa, pb):
        d = max(abs(p[0] - q[0]), abs(p[1] - q[1]), abs(p[2] - q[2]))
        total += d
        same += d <= tolerance
        if min(p) < 224 or min(q) < 224:
            ink += 1
            ink_same += d <= tolerance
    print("match %.4f" % (same / len(pa)))
    print("ink %d" % ink)
    print("ink_match %.4f" % (ink_same / ink if ink else 1.0))
    print("mean_diff %.2f" % (total / len(pa)))


def grab(display, x, y, w, h, out):
    from PIL import ImageGrab

    ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display).convert("RGB").save(out)
    print("saved %s" % out)


def main(argv):
    if len(argv) >= 6 and argv[0] == "stats":
        stats(argv[1], *map(int, argv[2:6]))
    elif len(argv) >= 9 and argv[0] == "compare":
        tol = int(argv[9]) if len(argv) > 9 else 48
        compare(argv[1], int(argv[2]), int(argv[3]), argv[4], int(argv[5]), int(argv[6]),
                int(argv[7]), int(argv[8]), tol)
    elif len(argv) == 7 and argv[0] == "grab":
        grab(argv[1], *map(int, argv[2:6]), argv[6])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
