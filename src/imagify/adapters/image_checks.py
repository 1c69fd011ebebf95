"""Structural checks of untrusted JPEG and WebP bytes (PNG in png_checks, GIF, HEIF and
AVIF in gif_heif_checks), made before any pixel is decoded.

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
from dataclasses import dataclass

from imagify.adapters import gif_heif_checks, png_checks  # they refer back to this module only when called

MAX_JPEG_SCANS = 100  # libjpeg's progressive script writes 10, jpegtran/mozjpeg a few dozen
MAX_FRAMES = 1000
INFLATE_STEP = 1024 * 1024  # bytes inflated (and dropped) at a time

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
        return png_checks.check_png(data, deep)
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
        return png_checks.png_header(data[12:16], data[16:29])
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


def chunk_name(kind: bytes) -> str:
    """A PNG or RIFF chunk's four-letter name, as a message shows it."""
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
        raise BadStructure(f"the WebP starts with a {chunk_name(kind)} chunk, not VP8, VP8L or VP8X")
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
            raise BadStructure(f"the WebP's {chunk_name(kind)} chunk runs past the end of the file")
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
