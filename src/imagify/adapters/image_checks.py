"""Structural checks of untrusted JPEG, PNG and WebP bytes (GIF, HEIF and AVIF in
gif_heif_checks), made before any pixel is decoded.

Each check reads what a decoder will later parse (markers, chunks, headers) and refuses what
no real encoder writes: thousands of JPEG scans, scan data too short for the declared size,
text chunks Pillow would refuse to inflate, thousands of frames, containers whose sizes do
not add up. Standard library only: the Lambda function ships this module beside
pillow_render.py.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass

from imagify.adapters import gif_heif_checks  # refers back to this module only when called

MAX_JPEG_SCANS = 100  # libjpeg's progressive script writes 10, jpegtran/mozjpeg a few dozen
MAX_FRAMES = 1000
INFLATE_STEP = 1024 * 1024  # bytes inflated (and dropped) at a time
# PngImagePlugin's defaults, used when Pillow is not importable (the checks' own tests).
MAX_TEXT_CHUNK = 1024 * 1024
MAX_TEXT_MEMORY = 64 * MAX_TEXT_CHUNK

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_JPEG_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_SOS = re.compile(rb"\xff\xda")  # re's literal search beats bytes.find on JPEG data
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadStructure(ValueError):
    """The file's structure is broken or hostile; the message says which part and why."""


@dataclass(frozen=True)
class Layout:
    """What the headers say: format, stored size, bytes per decoded pixel."""

    format: str  # "JPEG", "PNG", "WEBP", "GIF", "HEIF" or "AVIF"
    width: int
    height: int
    bands: int


def check(data: bytes, deep: bool = False) -> Layout:
    """The layout of a JPEG, PNG, WebP, GIF, HEIC or AVIF whose structure can be decoded as declared.

    `deep` also verifies every PNG chunk's CRC and inflates its pixel data (in bounded steps,
    keeping nothing): the upload check, which must not accept what every render would refuse.
    """
    if data[:2] == b"\xff\xd8":
        return check_jpeg(data)
    if data[:8] == PNG_SIGNATURE:
        return check_png(data, deep)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return check_webp(data)
    if gif_heif_checks.is_gif(data):
        return gif_heif_checks.check_gif(data)
    if gif_heif_checks.is_isobmff(data):
        return gif_heif_checks.check_isobmff(data)
    raise BadStructure("the file is not a JPEG, PNG, WebP, GIF, HEIC or AVIF image")


def layout(data: bytes) -> Layout:
    """What the headers alone say, without the checks that read the whole file."""
    if data[:2] == b"\xff\xd8":
        (_, width, height, components), _ = _jpeg_headers(data)
        return Layout("JPEG", width, height, 1 if len(components) == 1 else 4)
    if data[:8] == PNG_SIGNATURE and len(data) >= 33:
        return _png_header(data[12:16], data[16:29])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind, length = data[12:16], struct.unpack_from("<I", data, 16)[0]
        if kind == b"VP8X":
            width = 1 + int.from_bytes(data[24:27], "little")
            return Layout("WEBP", width, 1 + int.from_bytes(data[27:30], "little"), 4)
        width, height, _ = _bitstream_size(kind, 20, length, data)
        return Layout("WEBP", width, height, 4)
    if gif_heif_checks.is_gif(data):  # both read the whole file: frames and boxes can lie
        return gif_heif_checks.check_gif(data)
    if gif_heif_checks.is_isobmff(data):
        return gif_heif_checks.check_isobmff(data)
    raise BadStructure("the file is not a JPEG, PNG, WebP, GIF, HEIC or AVIF image")


def checked_whole(data: bytes) -> bool:
    """Whether layout() of this file already made every structural check (GIF, HEIF, AVIF)."""
    return gif_heif_checks.is_gif(data) or gif_heif_checks.is_isobmff(data)


def decode_bytes(layout: Layout, scale: int = 1) -> int:
    """Estimated bytes of the decoded pixels, at 1/`scale` of the stored size."""
    return _ceil(layout.width, scale) * _ceil(layout.height, scale) * layout.bands


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


# JPEG


def check_jpeg(data: bytes) -> Layout:
    sof, sos = _jpeg_headers(data)
    kind, width, height, components = sof
    if width == 0 or height == 0:
        raise BadStructure("the JPEG declares a zero width or height")
    # The last end-of-image (a multi-picture JPEG's later pictures count with the first:
    # lenient, and the search is O(1) instead of a pass over the data).
    end = data.rfind(b"\xff\xd9")
    end = len(data) if end < sos else end
    # libjpeg refuses a second scan of a sequential JPEG whose first scan holds every
    # component ("didn't expect more than one scan"): only the others are searched. In
    # entropy-coded data every 0xFF is stuffed (FF 00) or a restart marker: FF DA is a scan.
    multi_scan = kind in _JPEG_PROGRESSIVE or data[sos + 4] < len(components)
    scans = 1
    if multi_scan:
        scans = sum(1 for _ in itertools.islice(_SOS.finditer(data, sos, end), MAX_JPEG_SCANS + 1))
    if scans > MAX_JPEG_SCANS:
        raise BadStructure(
            f"the JPEG has more than {MAX_JPEG_SCANS} scans, more than any encoder writes "
            "(a scan bomb: each scan costs a pass over the whole image)"
        )
    if kind not in _JPEG_ARITHMETIC:
        # Huffman coding spends at least one bit on every 8x8 block in some DC scan.
        hmax = max(h for h, _ in components)
        vmax = max(v for _, v in components)
        blocks = sum(
            _ceil(_ceil(width * h, hmax), 8) * _ceil(_ceil(height * v, vmax), 8)
            for h, v in components
        )
        if end - sos < blocks // 8:
            raise BadStructure(
                f"the JPEG's data is too short for its declared {width}x{height}: "
                "truncated or lying about its size"
            )
    return Layout("JPEG", width, height, 1 if len(components) == 1 else 4)


def _jpeg_headers(data: bytes) -> tuple[tuple[int, int, int, list[tuple[int, int]]], int]:
    """(frame header, offset of the first scan): the marker segments up to the first SOS."""
    pos, size, sof = 2, len(data), None
    while pos + 4 <= size:
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > size:
            raise BadStructure("the JPEG's headers are truncated")
        if marker == 0xDA:
            if sof is None:
                raise BadStructure("the JPEG has a scan before its frame header")
            return sof, pos
        if marker in _JPEG_SOF:
            if sof is not None:
                raise BadStructure("the JPEG has two frame headers")
            if length < 8:
                raise BadStructure("the JPEG's frame header is truncated")
            height, width, count = struct.unpack_from(">HHB", data, pos + 5)
            if count == 0 or length < 8 + 3 * count:
                raise BadStructure("the JPEG's frame header is truncated")
            components = []
            for i in range(count):
                factors = data[pos + 11 + 3 * i]
                h, v = factors >> 4, factors & 15
                if not (1 <= h <= 4 and 1 <= v <= 4):
                    raise BadStructure("the JPEG's frame header has invalid sampling factors")
                components.append((h, v))
            sof = (marker, width, height, components)
        pos += 2 + length
    raise BadStructure("the JPEG is truncated before its first scan")


# PNG


def check_png(data: bytes, deep: bool = False) -> Layout:
    max_chunk, max_memory = _text_limits()
    pos, size = 8, len(data)
    layout: Layout | None = None
    inflater = zlib.decompressobj() if deep else None
    filters: _FilterTypes | None = None
    text_memory = frames = declared_frames = inflated = expected = 0
    while True:
        if pos + 12 > size:
            raise BadStructure("the PNG is truncated: it ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if length > size - body - 4:
            raise BadStructure(f"the PNG is truncated inside its {_name(kind)} chunk")
        chunk = data[body : body + length]
        if deep:
            (crc,) = struct.unpack_from(">I", data, body + length)
            if zlib.crc32(chunk, zlib.crc32(kind)) != crc:
                raise BadStructure(f"the PNG's {_name(kind)} chunk fails its checksum")
        pos = body + length + 4
        if layout is None:
            layout = _png_header(kind, chunk)
            scanlines = _png_scanlines(chunk)
            expected, filters = sum(n * rows for n, rows in scanlines), _FilterTypes(scanlines)
        elif kind == b"IDAT":
            if inflater is not None and filters is not None:
                inflated += _inflate_pixels(inflater, chunk, filters)
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            text_memory += _text_length(kind, chunk, max_chunk)
            if text_memory > max_memory:
                raise BadStructure(
                    f"the PNG's text chunks hold more than {max_memory} bytes, "
                    "more than the renderer reads"
                )
        elif kind == b"acTL" and length >= 4:
            (declared_frames,) = struct.unpack_from(">I", chunk)
        elif kind == b"fcTL":
            frames += 1
        elif kind == b"IEND":
            break
        if max(frames, declared_frames) > MAX_FRAMES:
            raise BadStructure(f"the PNG has more than {MAX_FRAMES} animation frames")
    if inflater is not None and (not inflater.eof or inflated < expected):
        assert layout is not None
        raise BadStructure(
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
                raise BadStructure("the PNG's pixel data has a scanline with an invalid filter type")
            at += count * length
            if count == rows:
                self._left.pop()
            else:
                self._left[-1] = (length, rows - count)
        self._skip = max(0, at - len(data))


def _png_header(kind: bytes, chunk: bytes) -> Layout:
    if kind != b"IHDR" or len(chunk) != 13:
        raise BadStructure("the PNG does not start with a valid IHDR header")
    width, height, depth, colour = struct.unpack_from(">IIBB", chunk)
    if width == 0 or height == 0:
        raise BadStructure("the PNG declares a zero width or height")
    bands = 1 if colour in (0, 3) and depth <= 8 else 4  # Pillow keeps RGB as 4 bytes a pixel
    return Layout("PNG", width, height, bands)


def _inflate_pixels(inflater: zlib._Decompress, data: bytes, filters: _FilterTypes) -> int:
    """Bytes inflated from `data`, in bounded steps, each checked by `filters`, keeping none."""
    inflated = 0
    try:
        while data and not inflater.eof:
            pixels = inflater.decompress(data, INFLATE_STEP)
            filters.feed(pixels)
            inflated += len(pixels)
            data = inflater.unconsumed_tail
    except zlib.error as e:
        raise BadStructure(f"the PNG's pixel data is corrupt: {e}") from None
    return inflated


def _text_length(kind: bytes, chunk: bytes, max_chunk: int) -> int:
    """Bytes of text the chunk holds once inflated; refuses what Pillow refuses to inflate."""
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
        raise BadStructure(f"the PNG's {_name(kind)} text chunk is corrupt: {e}") from None
    if inflater.unconsumed_tail:
        raise BadStructure(
            f"the PNG has a text chunk ({_name(kind)}) that inflates to more than {max_chunk} "
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


def _name(kind: bytes) -> str:
    return kind.decode("latin-1").strip()


# WebP


def check_webp(data: bytes) -> Layout:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if end > len(data):
        raise BadStructure(
            f"the WebP is truncated: its RIFF header declares {end} bytes, the file has {len(data)}"
        )
    chunks = list(_riff_chunks(data, 12, end))
    if not chunks:
        raise BadStructure("the WebP has no image chunk")
    kind, body, length = chunks[0]
    if kind in (b"VP8 ", b"VP8L"):
        width, height, _ = _bitstream_size(kind, body, length, data)
        return Layout("WEBP", width, height, 4)
    if kind != b"VP8X" or length < 10:
        raise BadStructure(f"the WebP starts with a {_name(kind)} chunk, not VP8, VP8L or VP8X")
    flags = data[body]
    width = 1 + int.from_bytes(data[body + 4 : body + 7], "little")
    height = 1 + int.from_bytes(data[body + 7 : body + 10], "little")
    frames = [(b, n) for k, b, n in chunks if k == b"ANMF"]
    if len(frames) > MAX_FRAMES:
        raise BadStructure(f"the WebP has more than {MAX_FRAMES} animation frames")
    if flags & 0x02:  # animated
        if not frames:
            raise BadStructure("the animated WebP has no frames")
        for frame_body, frame_length in frames:
            _check_frame(data, frame_body, frame_length, width, height)
    else:
        images = [(k, b, n) for k, b, n in chunks if k in (b"VP8 ", b"VP8L")]
        if not images:
            raise BadStructure("the WebP has no image data")
        if (w_h := _bitstream_size(*images[0], data=data)[:2]) != (width, height):
            raise BadStructure(
                f"the WebP's canvas is {width}x{height} but its image is {w_h[0]}x{w_h[1]}"
            )
    return Layout("WEBP", width, height, 4)


def _riff_chunks(data: bytes, pos: int, end: int):  # type: ignore[no-untyped-def]
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 8 + length > end:
            raise BadStructure(f"the WebP's {_name(kind)} chunk runs past the end of the file")
        yield kind, pos + 8, length
        pos += 8 + length + (length & 1)


def _check_frame(data: bytes, body: int, length: int, width: int, height: int) -> None:
    if length < 16:
        raise BadStructure("the WebP has a truncated animation frame")
    x = 2 * int.from_bytes(data[body : body + 3], "little")
    y = 2 * int.from_bytes(data[body + 3 : body + 6], "little")
    w = 1 + int.from_bytes(data[body + 6 : body + 9], "little")
    h = 1 + int.from_bytes(data[body + 9 : body + 12], "little")
    if x + w > width or y + h > height:
        raise BadStructure(f"a WebP animation frame lies outside its {width}x{height} canvas")
    images = [c for c in _riff_chunks(data, body + 16, body + length) if c[0] in (b"VP8 ", b"VP8L")]
    if not images or _bitstream_size(*images[0], data=data)[:2] != (w, h):
        raise BadStructure("a WebP animation frame's image does not match its declared size")


def _bitstream_size(kind: bytes, body: int, length: int, data: bytes) -> tuple[int, int, bool]:
    if kind == b"VP8L":
        if length < 5 or data[body] != 0x2F:
            raise BadStructure("the WebP's lossless (VP8L) header is invalid")
        (bits,) = struct.unpack_from("<I", data, body + 1)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), bool(bits >> 28 & 1)
    if length < 10 or data[body + 3 : body + 6] != b"\x9d\x01\x2a":
        raise BadStructure("the WebP's lossy (VP8) header is invalid")
    tag = int.from_bytes(data[body : body + 3], "little")
    if tag & 1 or (tag >> 5) > length - 10:  # not a key frame, or a first partition too long
        raise BadStructure("the WebP's lossy (VP8) data is truncated or not a key frame")
    width, height = struct.unpack_from("<HH", data, body + 6)
    width, height = width & 0x3FFF, height & 0x3FFF
    if width == 0 or height == 0:
        raise BadStructure("the WebP declares a zero width or height")
    return width, height, False
