"""A corpus of hostile images, built from small real ones (nothing downloaded).

Each builder returns the file's bytes. `CORPUS` names every one with what the upload check
must answer: its status and a phrase of its detail.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

BIG = 7000  # a size every lie declares: 49 M pixels, under the default pixel limit


def _noise(size: tuple[int, int], mode: str = "RGB", seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))


def _saved(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# JPEG


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0/SOF2) declaring width x height."""
    for sof in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(sof)
        if at > 0:
            return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]
    raise AssertionError("no frame header")


def scan_bomb_jpeg(scans: int = 3000) -> bytes:
    """A progressive JPEG declaring 7000x7000 followed by thousands of empty scans."""
    base = _saved(_noise((16, 16)), "JPEG", progressive=True, quality=90)
    # A DC refinement scan of the first component with no data: legal, and a full pass.
    empty = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x10"
    return _with_size(base[:-2], BIG, BIG) + empty * scans + b"\xff\xd9"


def baseline_scan_bomb_jpeg(scans: int = 3000) -> bytes:
    """A baseline JPEG followed by thousands of scans of all its components: libjpeg refuses
    a second scan of a single-scan JPEG, so this must fail fast, not cost a pass each."""
    base = _saved(_noise((256, 256)), "JPEG", quality=90)
    every = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return base[:-2] + every * scans + b"\xff\xd9"


def lying_jpeg() -> bytes:
    """A JPEG whose frame header says 7000x7000 and whose scan data covers 16x16."""
    return _with_size(_saved(_noise((16, 16)), "JPEG", quality=90), BIG, BIG)


def truncated_jpeg() -> bytes:
    """A real 640x480 JPEG cut off at two thirds: no end of image."""
    data = _saved(_noise((640, 480)), "JPEG", quality=90)
    return data[: len(data) * 2 // 3]


def many_scan_jpeg() -> bytes:
    """A legitimate progressive JPEG (libjpeg's default script): it must pass."""
    return _saved(_noise((640, 480)), "JPEG", progressive=True, quality=85)


# PNG


def _png(size: tuple[int, int] = (16, 16), mode: str = "RGB") -> bytes:
    return _saved(_noise(size, mode), "PNG")


def _before_iend(png: bytes, *chunks: bytes) -> bytes:
    at = png.rindex(b"IEND") - 4
    return png[:at] + b"".join(chunks) + png[at:]


def ztxt_bomb_png(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A PNG with a zTXt chunk after IDAT that inflates to 64 MiB."""
    text = zlib.compress(b"\0" * inflated, 9)
    return _before_iend(_png(), png_chunk(b"zTXt", b"Comment\0\0" + text))


def itxt_bomb_png(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A PNG with a compressed iTXt chunk after IDAT that inflates to 64 MiB."""
    text = zlib.compress(b"a" * inflated, 9)
    return _before_iend(_png(), png_chunk(b"iTXt", b"Comment\0\x01\x00en\0\0" + text))


def many_text_chunks_png() -> bytes:
    """A PNG with 80 text chunks of 1 MiB each: more text than Pillow reads in total."""
    text = zlib.compress(b"b" * (1024 * 1024 - 16), 9)
    chunk = png_chunk(b"zTXt", b"Comment\0\0" + text)
    return _before_iend(_png(), *[chunk] * 80)


def lying_png() -> bytes:
    """A PNG whose IHDR says 7000x7000 over the pixel data of 16x16 (valid checksums)."""
    png = _png()
    ihdr = png[16:29]
    header = png_chunk(b"IHDR", struct.pack(">II", BIG, BIG) + ihdr[8:])
    return png[:8] + header + png[33:]


def bad_crc_png() -> bytes:
    png = bytearray(_png())
    png[png.rindex(b"IEND") - 6] ^= 0xFF  # inside the last IDAT's checksum
    return bytes(png)


def decompression_bomb_png() -> bytes:
    """12000x12000 of one colour in a few hundred KB: 144 M pixels."""
    side = 12000
    row = b"\0" * (1 + side)  # filter byte, then greys
    raw = zlib.compress(row * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")


def frame_bomb_apng(frames: int = 1500) -> bytes:
    """An APNG of 1500 frames of 16x16."""
    png = _png()
    ihdr_end = 33
    first_idat = png.index(b"IDAT") - 4
    idat_length = struct.unpack(">I", png[first_idat : first_idat + 4])[0]
    pixels = png[first_idat + 8 : first_idat + 8 + idat_length]

    def fctl(seq: int) -> bytes:
        return png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, 16, 16, 0, 0, 1, 10, 0, 0))

    chunks = [png_chunk(b"acTL", struct.pack(">II", frames, 0)), fctl(0), png_chunk(b"IDAT", pixels)]
    seq = 1
    for _ in range(frames - 1):
        chunks.append(fctl(seq))
        chunks.append(png_chunk(b"fdAT", struct.pack(">I", seq + 1) + pixels))
        seq += 2
    return png[:ihdr_end] + b"".join(chunks) + png_chunk(b"IEND", b"")


# WebP


def _riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def _vp8l(size: tuple[int, int] = (16, 16)) -> bytes:
    """The VP8L chunk body of a lossless WebP."""
    data = _saved(_noise(size, "RGBA"), "WEBP", lossless=True)
    assert data[12:16] == b"VP8L", data[12:16]
    length = struct.unpack("<I", data[16:20])[0]
    return data[20 : 20 + length]


def lying_webp() -> bytes:
    """A lossless WebP whose VP8L header says 7000x7000 over the data of 16x16."""
    body = bytearray(_vp8l())
    bits = struct.unpack("<I", body[1:5])[0]
    bits = (bits & ~0xFFFFFFF) | (BIG - 1) | ((BIG - 1) << 14)
    body[1:5] = struct.pack("<I", bits)
    return _riff(riff_chunk(b"VP8L", bytes(body)))


def bad_filter_png() -> bytes:
    """A PNG whose CRCs and sizes are right but one scanline's filter type is 7 (0..4 exist)."""
    width, height = 64, 48
    rows = bytearray()
    for y in range(height):
        rows += bytes([7 if y == 30 else 0]) + bytes((x * 3 + y) % 256 for x in range(width * 3))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(rows))) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def truncated_webp() -> bytes:
    data = _saved(_noise((256, 256)), "WEBP", quality=80)
    return data[: len(data) // 2]


def canvas_lie_webp() -> bytes:
    """An extended WebP whose canvas says 7000x7000 around an image of 16x16."""
    vp8x = struct.pack("<B3x", 0x10) + (BIG - 1).to_bytes(3, "little") * 2
    return _riff(riff_chunk(b"VP8X", vp8x), riff_chunk(b"VP8L", _vp8l()))


def frame_bomb_webp(frames: int = 1500) -> bytes:
    """An animated WebP of 1500 frames of 16x16."""
    vp8x = struct.pack("<B3x", 0x02 | 0x10) + (15).to_bytes(3, "little") * 2
    anim = struct.pack("<IH", 0, 0)
    frame_header = b"\0" * 6 + (15).to_bytes(3, "little") * 2 + (10).to_bytes(3, "little") + b"\0"
    frame = riff_chunk(b"ANMF", frame_header + riff_chunk(b"VP8L", _vp8l()))
    return _riff(riff_chunk(b"VP8X", vp8x), riff_chunk(b"ANIM", anim), frame * frames)


@dataclass(frozen=True)
class Hostile:
    name: str
    build: object  # () -> bytes
    status: int  # what the upload check answers
    says: str  # a phrase of its detail
    renders: bool = False  # the renderer decodes it (only the upload check is stricter)

    def data(self) -> bytes:
        return self.build()  # type: ignore[operator,no-any-return]


CORPUS = [
    Hostile("jpeg-scan-bomb", scan_bomb_jpeg, 400, "scans"),
    Hostile("jpeg-baseline-scan-bomb", baseline_scan_bomb_jpeg, 400, "corrupt"),
    Hostile("jpeg-size-lie", lying_jpeg, 400, "too short for its declared 7000x7000"),
    Hostile("jpeg-truncated", truncated_jpeg, 400, "truncated"),
    Hostile("png-ztxt-bomb", ztxt_bomb_png, 400, "text chunk (zTXt)"),
    Hostile("png-itxt-bomb", itxt_bomb_png, 400, "text chunk (iTXt)"),
    Hostile("png-text-flood", many_text_chunks_png, 400, "text chunks"),
    Hostile("png-size-lie", lying_png, 400, "shorter than its declared 7000x7000"),
    Hostile("png-bad-filter", bad_filter_png, 400, "invalid filter type"),
    Hostile("png-bad-crc", bad_crc_png, 400, "checksum", renders=True),
    Hostile("png-decompression-bomb", decompression_bomb_png, 413, "pixels"),
    Hostile("apng-frame-bomb", frame_bomb_apng, 400, "frames"),
    Hostile("webp-frame-bomb", frame_bomb_webp, 400, "frames"),
    Hostile("webp-truncated", truncated_webp, 400, "truncated"),
    Hostile("webp-canvas-lie", canvas_lie_webp, 400, "canvas"),
]


# GIF, HEIF and AVIF


def frame_bomb_gif(frames: int = 1500) -> bytes:
    """A GIF of 1500 frames of 16x16."""
    im = [_noise((16, 16), seed=i).convert("P") for i in range(3)]
    data = _saved(im[0], "GIF", save_all=True, append_images=im[1:], duration=10)
    head_end = data.index(b"\x21\xf9")  # the first frame's graphic control extension
    frame = data[head_end : len(data) - 1]  # extension, descriptor and image data, no trailer
    return data[:head_end] + frame * frames + b"\x3b"


def _gif_with_frame_size(width: int, height: int) -> bytes:
    data = _saved(_noise((16, 16)).convert("P"), "GIF")
    at = data.index(b"\x2c", 13 + 3 * 256 if data[10] & 0x80 else 13)
    return data[: at + 5] + struct.pack("<HH", width, height) + data[at + 9 :]


def screen_lie_gif() -> bytes:
    """A GIF whose screen says 16x16 and whose frame says 60000x60000: Pillow grows to the frame."""
    return _gif_with_frame_size(60000, 60000)


# An AVIF whose 'ispe' is larger than its AV1 frame is not in the corpus: libavif scales the
# frame to the declared size, so it is a large image made from few bytes, bounded by the
# pixel limit and the decode memory budget like a 7000x7000 PNG of one colour.


def _ispe(data: bytes, width: int, height: int) -> bytes:
    at = data.index(b"ispe")
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _saved(_noise((64, 48)), "HEIF", quality=50)


def size_lie_heic() -> bytes:
    """A HEIC whose 'ispe' declares 60000x60000 over the data of 64x48."""
    return _ispe(_heic(), 60000, 60000)


def box_overflow_heic() -> bytes:
    """A HEIC whose 'meta' box declares more bytes than the file holds."""
    data = _heic()
    at = data.index(b"meta") - 4
    return data[:at] + struct.pack(">I", len(data) * 4) + data[at + 4 :]


CORPUS += [
    Hostile("gif-frame-bomb", frame_bomb_gif, 400, "frames"),
    Hostile("gif-screen-lie", screen_lie_gif, 413, "pixels"),
    Hostile("heic-size-lie", size_lie_heic, 413, "pixels"),
    Hostile("heic-box-overflow", box_overflow_heic, 400, "box"),
]
BY_NAME = {h.name: h for h in CORPUS}
