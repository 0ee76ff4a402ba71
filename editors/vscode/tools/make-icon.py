#!/usr/bin/env python3
"""Writes images/icon.png, the extension's 128x128 icon (the Marketplace's size), with no
dependencies: a rounded tile with three stacked building blocks, drawn with 4x supersampling
and written with zlib + struct. Run from editors/vscode: python3 tools/make-icon.py"""
import struct
import zlib
from pathlib import Path

SIZE = 128
SS = 4  # samples per pixel side


def rounded(x, y, x0, y0, x1, y1, r):
    """Whether (x, y) is inside the rectangle [x0, x1) x [y0, y1) with corner radius r."""
    if not (x0 <= x < x1 and y0 <= y < y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def tile(x, y):
    # Background: indigo to violet, top-left to bottom-right.
    t = (x + y) / (2 * SIZE)
    return (int(49 + (124 - 49) * t), int(46 + (58 - 46) * t), int(129 + (237 - 129) * t))


BLOCKS = [
    # (x0, y0, x1, y1, colour): a wide base, a middle block, a small top one.
    (22, 80, 106, 104, (255, 255, 255)),
    (34, 52, 94, 76, (255, 190, 92)),
    (48, 24, 80, 48, (94, 234, 212)),
]


def pixel(x, y):
    if not rounded(x, y, 0, 0, SIZE, SIZE, 24):
        return (0, 0, 0, 0)
    for x0, y0, x1, y1, colour in BLOCKS:
        if rounded(x, y, x0, y0, x1, y1, 5):
            return colour + (255,)
    return tile(x, y) + (255,)


def main():
    rows = []
    for py in range(SIZE):
        row = bytearray([0])  # filter: none
        for px in range(SIZE):
            acc = [0, 0, 0, 0]
            for sy in range(SS):
                for sx in range(SS):
                    r, g, b, a = pixel(px + (sx + 0.5) / SS, py + (sy + 0.5) / SS)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = SS * SS
            alpha = acc[3] / n
            if acc[3]:
                row += bytes([round(acc[0] / acc[3]), round(acc[1] / acc[3]), round(acc[2] / acc[3]), round(alpha)])
            else:
                row += bytes(4)
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b'\x89PNG\r\n\x1a\n'
    png += chunk(b'IHDR', struct.pack('>IIBBBBB', SIZE, SIZE, 8, 6, 0, 0, 0))  # 8-bit RGBA
    png += chunk(b'IDAT', zlib.compress(b''.join(rows), 9))
    png += chunk(b'IEND', b'')
    out = Path(__file__).resolve().parent.parent / 'images' / 'icon.png'
    out.write_bytes(png)
    print(f'{out} ({len(png)} bytes)')


if __name__ == '__main__':
    main()
