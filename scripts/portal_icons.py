"""Draw the portal's app icons (flat: brand blue, a white open book) as PNG with zlib/struct.

Run: python scripts/portal_icons.py lmsd/portal/static/icons  (the PNGs there were made so)."""
import struct
import sys
import zlib
from pathlib import Path

BLUE = (0x1D, 0x4F, 0x91)
WHITE = (255, 255, 255)
SLOPE = 0.06 / 0.29
LEFT = [(0.18, 0.30), (0.47, 0.36), (0.47, 0.74), (0.18, 0.68)]
RIGHT = [(1 - x, y) for x, y in LEFT]


def inside(poly, x, y):
    hit = False
    for i in range(len(poly)):
        (x1, y1), (x2, y2) = poly[i], poly[i - 1]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def on_line(x, y):
    # three lines of "text" on each page, parallel to the page's top edge
    for side in (0, 1):
        lx = x if side == 0 else 1 - x
        if not 0.23 <= lx <= 0.43:
            continue
        for base in (0.41, 0.49, 0.57):
            yy = base + SLOPE * (lx - 0.18)
            if yy <= y <= yy + 0.028:
                return True
    return False


def colour(x, y, scale, rounded):
    """(r, g, b, a) of the point (x, y) in the unit square."""
    if rounded:
        r = 0.18
        cx, cy = min(max(x, r), 1 - r), min(max(y, r), 1 - r)
        if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
            return (0, 0, 0, 0)
    gx, gy = 0.5 + (x - 0.5) / scale, 0.5 + (y - 0.5) / scale
    if (inside(LEFT, gx, gy) or inside(RIGHT, gx, gy)) and not on_line(gx, gy):
        return (*WHITE, 255)
    return (*BLUE, 255)


def draw(size, scale, rounded, samples=3):
    rows = []
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(samples):
                for sx in range(samples):
                    c = colour((px + (sx + 0.5) / samples) / size, (py + (sy + 0.5) / samples) / size, scale, rounded)
                    for i in range(3):
                        acc[i] += c[i] * c[3]
                    acc[3] += c[3]
            n = samples * samples
            a = acc[3] / n
            rgb = [round(acc[i] / acc[3]) if acc[3] else 0 for i in range(3)]
            row += bytes([*rgb, round(a)])
        rows.append(bytes(row))
    return png(size, b"".join(rows))


def png(size, raw):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


out = Path(sys.argv[1])
for name, size, scale, rounded in (
    ("icon-192.png", 192, 1.0, True), ("icon-512.png", 512, 1.0, True),
    ("maskable-192.png", 192, 0.8, False), ("maskable-512.png", 512, 0.8, False),
):
    (out / name).write_bytes(draw(size, scale, rounded))
    print(name)
