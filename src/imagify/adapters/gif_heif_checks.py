"""Structural checks of untrusted GIF and HEIF/AVIF bytes, made before any decoder runs.

GIF: the logical screen and every frame's rectangle (Pillow grows the canvas to a frame
that overflows the screen, so the pixel limit counts the extent of them all), and the
number of frames. HEIF and AVIF (ISO BMFF): every box's size adds up inside its parent,
the brand is one we decode, and the image sizes the 'ispe' properties declare, of which
the largest is checked against the pixel limit. Standard library only, like image_checks.
"""

from __future__ import annotations

import struct

from imagify.adapters import image_checks

HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc", b"hevx"}
AVIF_BRANDS = {b"avif", b"avis"}
_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}  # boxes we descend into: header bytes to skip
MAX_BOXES = 10_000


def is_gif(data: bytes) -> bool:
    return data[:6] in (b"GIF87a", b"GIF89a")


def is_isobmff(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


# GIF


def check_gif(data: bytes) -> image_checks.Layout:
    """The extent of every frame; refuse truncated blocks and more than MAX_FRAMES frames."""
    bad = image_checks.BadStructure
    if len(data) < 13:
        raise bad("the GIF is shorter than its header")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    frames = 0
    while True:
        if pos >= len(data):
            if frames:  # many encoders and truncated downloads omit the trailer: Pillow copes
                break
            raise bad("the GIF ends before its first frame")
        kind = data[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif kind == 0x2C:  # image descriptor
            if pos + 10 > len(data):
                raise bad("the GIF is truncated inside a frame header")
            left, top, w, h, flags = struct.unpack_from("<HHHHB", data, pos + 1)
            if w == 0 or h == 0:
                raise bad("a GIF frame declares a zero width or height")
            width, height = max(width, left + w), max(height, top + h)
            frames += 1
            if frames > image_checks.MAX_FRAMES:
                raise bad(f"the GIF has more than {image_checks.MAX_FRAMES} animation frames")
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
        else:
            raise bad(f"the GIF has an unknown block 0x{kind:02x} at byte {pos}")
    if width == 0 or height == 0:
        raise bad("the GIF declares a zero width or height")
    return image_checks.Layout("GIF", width, height, 4)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise image_checks.BadStructure("the GIF is truncated inside a data block")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


# HEIF and AVIF


def check_isobmff(data: bytes) -> image_checks.Layout:
    """The largest 'ispe' size of a HEIF or AVIF whose boxes nest as declared."""
    bad = image_checks.BadStructure
    boxes = list(_boxes(data, 0, len(data), 0))
    if not boxes or boxes[0][0] != b"ftyp":
        raise bad("the file does not start with an ISO BMFF 'ftyp' box")
    _, start, end = boxes[0]
    brands = {data[start:start + 4]} | {data[i:i + 4] for i in range(start + 8, end - 3, 4)}
    if brands & AVIF_BRANDS:
        fmt = "AVIF"
    elif brands & HEIF_BRANDS:
        fmt = "HEIF"
    else:
        raise bad(f"the ISO BMFF file is not HEIF or AVIF (brand {data[start:start + 4]!r})")
    sizes = [
        struct.unpack_from(">II", data, body + 4)
        for kind, body, box_end in _boxes(data, 0, len(data), 0, descend=True)
        if kind == b"ispe" and box_end - body >= 12
    ]
    if not sizes:
        raise bad(f"the {fmt} declares no image size ('ispe' property)")
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    if width == 0 or height == 0:
        raise bad(f"the {fmt} declares a zero width or height")
    return image_checks.Layout(fmt, width, height, 4)


def _boxes(data: bytes, pos: int, end: int, depth: int, descend: bool = False):  # type: ignore[no-untyped-def]
    """(type, body start, end) of each box in data[pos:end], and of the boxes inside those
    we descend into when `descend`; refuse a box that overflows its parent."""
    bad = image_checks.BadStructure
    count = 0
    while pos < end:
        count += 1
        if count > MAX_BOXES or depth > 8:
            raise bad("the file has more boxes than any encoder writes")
        if pos + 8 > end:
            raise bad(f"a box header at byte {pos} overflows its parent")
        size, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if size == 1:
            if pos + 16 > end:
                raise bad(f"a box header at byte {pos} overflows its parent")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        box_end = pos + size
        if box_end > end or box_end < body:
            raise bad(f"the {kind.decode('latin-1')!r} box at byte {pos} declares {size} bytes, "
                      "more than its parent holds")
        yield kind, body, box_end
        if descend and kind in _CONTAINERS:
            yield from _boxes(data, body + _CONTAINERS[kind], box_end, depth + 1, descend)
        pos = box_end
