"""Structural checks of untrusted PNG bytes, made before any pixel is decoded.

Every chunk's length fits the file; with `deep` (the upload check) every CRC is verified
and the pixel data is inflated in bounded steps, keeping nothing, while the byte that
starts each scanline is checked to be a filter type a decoder accepts. Text chunks are
refused past what Pillow would inflate, and animations past MAX_FRAMES. Standard library
only, like image_checks.
"""

from __future__ import annotations

import struct
import zlib

from imagify.adapters import image_checks

# PngImagePlugin's defaults, used when Pillow is not importable (the checks' own tests).
MAX_TEXT_CHUNK = 1024 * 1024
MAX_TEXT_MEMORY = 64 * MAX_TEXT_CHUNK


def check_png(data: bytes, deep: bool = False) -> image_checks.Layout:
    bad, name = image_checks.BadStructure, image_checks.chunk_name
    max_chunk, max_memory = _text_limits()
    pos, size = 8, len(data)
    layout: image_checks.Layout | None = None
    inflater = zlib.decompressobj() if deep else None
    filters: _FilterTypes | None = None
    text_memory = frames = declared_frames = inflated = expected = 0
    while True:
        if pos + 12 > size:
            raise bad("the PNG is truncated: it ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if length > size - body - 4:
            raise bad(f"the PNG is truncated inside its {name(kind)} chunk")
        chunk = data[body : body + length]
        if deep:
            (crc,) = struct.unpack_from(">I", data, body + length)
            if zlib.crc32(chunk, zlib.crc32(kind)) != crc:
                raise bad(f"the PNG's {name(kind)} chunk fails its checksum")
        pos = body + length + 4
        if layout is None:
            layout = png_header(kind, chunk)
            scanlines = _png_scanlines(chunk)
            expected, filters = sum(n * rows for n, rows in scanlines), _FilterTypes(scanlines)
        elif kind == b"IDAT":
            if inflater is not None and filters is not None:
                inflated += _inflate_pixels(inflater, chunk, filters)
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            text_memory += _text_length(kind, chunk, max_chunk)
            if text_memory > max_memory:
                raise bad(
                    f"the PNG's text chunks hold more than {max_memory} bytes, "
                    "more than the renderer reads"
                )
        elif kind == b"acTL" and length >= 4:
            (declared_frames,) = struct.unpack_from(">I", chunk)
        elif kind == b"fcTL":
            frames += 1
        elif kind == b"IEND":
            break
        if max(frames, declared_frames) > image_checks.MAX_FRAMES:
            raise bad(f"the PNG has more than {image_checks.MAX_FRAMES} animation frames")
    if inflater is not None and (not inflater.eof or inflated < expected):
        assert layout is not None
        raise bad(
            f"the PNG's pixel data is shorter than its declared {layout.width}x{layout.height}: "
            "truncated or lying about its size"
        )
    assert layout is not None
    return layout


def _png_scanlines(ihdr: bytes) -> list[tuple[int, int]]:
    """(bytes per filtered scanline, scanlines) the IHDR promises, for each of the 7 passes
    if interlaced."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    bits = depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    passes = [(0, 0, 1, 1)]
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    scanlines = []
    for x0, y0, dx, dy in passes:
        w, h = _ceil(max(0, width - x0), dx), _ceil(max(0, height - y0), dy)
        if w and h:
            scanlines.append((1 + _ceil(w * bits, 8), h))
    return scanlines


class _FilterTypes:
    """Checks, as the pixel data inflates, the byte that starts every scanline: a filter
    type from 0 to 4, or the decoder refuses the image when it renders."""

    def __init__(self, scanlines: list[tuple[int, int]]) -> None:
        self._left = list(reversed(scanlines))  # (row length, rows left), the next one last
        self._skip = 0  # bytes before the next filter byte

    def feed(self, data: bytes) -> None:
        at = self._skip
        while self._left and at < len(data):
            length, rows = self._left[-1]
            count = min(rows, _ceil(len(data) - at, length))
            if max(data[at : at + count * length : length]) > 4:
                raise image_checks.BadStructure("the PNG's pixel data has a scanline with an invalid filter type")
            at += count * length
            if count == rows:
                self._left.pop()
            else:
                self._left[-1] = (length, rows - count)
        self._skip = max(0, at - len(data))


def png_header(kind: bytes, chunk: bytes) -> image_checks.Layout:
    if kind != b"IHDR" or len(chunk) != 13:
        raise image_checks.BadStructure("the PNG does not start with a valid IHDR header")
    width, height, depth, colour = struct.unpack_from(">IIBB", chunk)
    if width == 0 or height == 0:
        raise image_checks.BadStructure("the PNG declares a zero width or height")
    bands = 1 if colour in (0, 3) and depth <= 8 else 4  # Pillow keeps RGB as 4 bytes a pixel
    return image_checks.Layout("PNG", width, height, bands)


def _inflate_pixels(inflater: zlib._Decompress, data: bytes, filters: _FilterTypes) -> int:
    """Bytes inflated from `data`, in bounded steps, each checked by `filters`, keeping none."""
    inflated = 0
    try:
        while data and not inflater.eof:
            pixels = inflater.decompress(data, image_checks.INFLATE_STEP)
            filters.feed(pixels)
            inflated += len(pixels)
            data = inflater.unconsumed_tail
    except zlib.error as e:
        raise image_checks.BadStructure(f"the PNG's pixel data is corrupt: {e}") from None
    return inflated


def _text_length(kind: bytes, chunk: bytes, max_chunk: int) -> int:
    """Bytes of text the chunk holds once inflated; refuses what Pillow refuses to inflate."""
    bad, name = image_checks.BadStructure, image_checks.chunk_name
    keyword, _, rest = chunk.partition(b"\0")
    if kind == b"tEXt":
        return len(rest)
    if kind == b"zTXt":
        compressed = rest[1:]
    else:  # iTXt: flag, method, language\0, translated keyword\0, text
        if len(rest) < 2:
            return 0
        flag, rest = rest[0], rest[2:]
        text = rest.split(b"\0", 2)[-1]
        if not flag:
            return len(text)
        compressed = text
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, max_chunk)
    except zlib.error as e:
        raise bad(f"the PNG's {name(kind)} text chunk is corrupt: {e}") from None
    if inflater.unconsumed_tail:
        raise bad(
            f"the PNG has a text chunk ({name(kind)}) that inflates to more than {max_chunk} "
            "bytes (a decompression bomb)"
        )
    return len(text)


def _text_limits() -> tuple[int, int]:
    """Pillow's limits as configured now, so a chunk the renderer refuses is refused here."""
    try:
        from PIL import PngImagePlugin
    except ImportError:
        return MAX_TEXT_CHUNK, MAX_TEXT_MEMORY
    return PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
