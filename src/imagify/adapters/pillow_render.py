"""Inspecting uploads and rendering thumbnails with Pillow.

Shared by the in-process renderer and the AWS Lambda function, so it imports only the
standard library, Pillow and pillow-heif (whose HEIF opener registers at import, in every
decode worker and in the function alike).
"""

from __future__ import annotations

import io
import mmap
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import pillow_heif
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from imagify.adapters import image_checks
from imagify.adapters.image_checks import BadStructure

# We enforce our own pixel limit from the header in inspect_image, before anything is
# decoded; Pillow's global limit would only get in the way of a larger configured one.
Image.MAX_IMAGE_PIXELS = None
# HEIC/HEIF by pillow-heif; AVIF by Pillow's own plugin (libavif), so not registered here.
pillow_heif.register_heif_opener(thumbnails=False)

SUPPORTED = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "HEIF")
# MPO is how Pillow names a multi-picture JPEG (many phone cameras write them).
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}
# Thumbnail formats by the names the domain uses, and the original's default.
OUTPUTS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
_DEFAULT_OUTPUT = {"PNG": "PNG", "WEBP": "WEBP", "GIF": "PNG"}  # else JPEG
# Formats with a strong signature, opened only to name them in a 415 message.
_OTHER_FORMATS = ["BMP", "TIFF", "ICO", "ICNS", "PSD", "JPEG2000", "QOI", "DDS"]
# What Pillow raises on a file it cannot identify, decode or encode.
DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
    struct.error, zlib.error,
)  # fmt: skip

JPEG_QUALITY = 85
WEBP_QUALITY = 85
# libwebp's method 5 adds trellis quantization to method 4's rate-distortion search: at the
# same quality, 2% fewer bytes on photos and up to 20% on noisy ones, for about 13% more
# encode time (a noisy 400 px encode: 15.6 -> 17.6 ms); method 6 can cost twice as much
# again for under 1% more.
WEBP_METHOD = 5
# AVIF's scale is not JPEG's: 60 looks like JPEG 85 at about half the bytes. Speed 8 keeps
# a 400 px encode near 40 ms on one core (speed 6, libavif's default, takes five times that).
AVIF_QUALITY = 60
AVIF_SPEED = 8
# Flattened behind transparent pixels for a format without alpha (JPEG).
MATTE = (255, 255, 255)
REDUCING_GAP = 2.0
# JPEGs are decoded at 1/2..1/8 scale (DCT scaling, a box filter that costs nothing) down to
# at least this many times the thumbnail, then Lanczos does the rest. At 2.0 a 12 MP photo
# would decode at 1/4 scale for a 200 px thumbnail; at 1.5 it decodes at 1/8, a quarter of
# the pixels, and Lanczos still has a 1.5x or larger step to antialias.
JPEG_DRAFT_GAP = 1.5
# A JPEG upload keeps the upright decode its check made (at 1/2, 1/4 or 1/8 scale) when
# that is at least this high: thumbnails up to PREVIEW_HEIGHT / PREVIEW_GAP (400 px) render
# from it, a fraction of the original's decode. Stored at high quality with the original's
# own chroma subsampling (a preview cannot hold more colour detail than its original had),
# so the thumbnails made from it cannot be told from those made from the original.
PREVIEW_HEIGHT = 600
PREVIEW_QUALITY = 95
PREVIEW_SCALES = (8, 4, 2)  # the smallest decode that is PREVIEW_HEIGHT high is kept
# Previews are not counted in an owner's storage usage, so one is kept only while it is at
# most this share of its original's bytes (a camera photo's is about a quarter; a q30
# original's would be half as large again as the original itself).
PREVIEW_MAX_SHARE = 0.5
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ORIENTATION_TAG = 0x0112


class UnsupportedImageFormat(Exception):
    """An image, but not JPEG, PNG, WebP, GIF, HEIC or AVIF."""


class InvalidImage(Exception):
    """Empty, truncated, corrupt or not an image at all."""


class ImageTooLarge(Exception):
    """More pixels than allowed, decided from the header."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


def inspect_image(
    stream: BinaryIO,
    max_pixels: int,
    decoded: Callable[[Image.Image, int], None] | None = None,
    previews: bool = True,
) -> tuple[str, int, int]:
    """(content_type, width, height) of an image that rendering can decode.

    The structure is checked as the decoder will parse it first (see image_checks). A JPEG
    is then decoded at 1/8 scale (1/4 or 1/2 for a preview); a PNG is not decoded at all
    (its pixel data was inflated and checked scanline by scanline); WebP, GIF, HEIF and AVIF
    are decoded whole, the only way to know they render. `decoded`, when given, is called
    with the decoded image (a JPEG's reduced, in colour) and its EXIF orientation; with
    `previews` False a JPEG is decoded at 1/8 whatever its size.
    """
    data = contents(stream)
    try:
        # Our own header parse first: hostile structure never reaches Pillow's parsers here.
        layout = image_checks.layout(data)
    except BadStructure as e:
        if image_checks.checked_whole(data):  # GIF, HEIF, AVIF: the layout is their full check
            raise InvalidImage(f"the image is refused: {e}") from None
        layout = None
    if layout is None:
        stream.seek(0)
        try:
            with Image.open(stream, formats=SUPPORTED) as im:
                layout = image_checks.Layout(im.format or "", *im.size, 4)
        except DECODE_ERRORS as e:
            raise _not_supported(stream, e) from None
    width, height = layout.width, layout.height
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )
    try:
        image_checks.check(data, deep=True)
    except BadStructure as e:
        raise InvalidImage(f"the image is refused: {e}") from None
    stream.seek(0)
    try:
        with Image.open(stream, formats=SUPPORTED) as im:
            fmt = im.format or ""
            _check_size(fmt, (width, height), im.size)
            if fmt in ("HEIF", "AVIF"):
                width, height = im.size  # decoded upright: irot/imir are applied
            if fmt in ("JPEG", "MPO"):
                # libjpeg still reads every scan, but at 1/8 scale, or at the scale that
                # leaves a preview PREVIEW_HEIGHT high when the caller wants the pixels
                orientation = im.getexif().get(ORIENTATION_TAG, 1)
                scale = upload_decode_scale(im.size, orientation) if decoded and previews else 8
                im.draft("RGB" if decoded and im.mode != "L" else "L", (max(1, im.width // scale), max(1, im.height // scale)))
                im.load()
                if decoded is not None:
                    decoded(im, orientation)
            elif fmt != "PNG":
                # WebP, GIF, HEIF and AVIF: only their decoder can tell their pixel data is
                # whole (a PNG's was inflated and checked above), and they have no reduced
                # decode in Pillow: decoded whole, within the caller's decode budget.
                im.load()
                if decoded is not None:
                    decoded(im, im.getexif().get(ORIENTATION_TAG, 1))
    except DECODE_ERRORS as e:
        raise InvalidImage(f"the file is not an image or is corrupt/truncated: {e}") from None
    return CONTENT_TYPES[fmt], width, height


def upload_decode_scale(size: tuple[int, int], orientation: int = 1) -> int:
    """The 1/n scale (8, 4 or 2) a JPEG's upload check decodes at: the smallest decode at
    least PREVIEW_HEIGHT high as displayed, else 1/8 (and no preview). libjpeg reads every
    scan whatever the scale, so a larger decode costs the upload little (a 2 MP photo: 9.9
    ms at 1/2 against 7.4 ms at 1/8) and spares each of its first renders the original's
    decode (bench/results.md, the thumbor rows, has the measurements)."""
    shown_height = size[0] if orientation in (5, 6, 7, 8) else size[1]
    return next((n for n in PREVIEW_SCALES if shown_height // n >= PREVIEW_HEIGHT), 8)


def make_preview(im: Image.Image, orientation: int, original_size: int) -> tuple[bytes, int] | None:
    """(JPEG bytes, height) of the upload check's reduced decode `im`, upright, when it is
    a preview worth keeping: PREVIEW_HEIGHT or more as displayed, in colour or grey, and
    at most PREVIEW_MAX_SHARE of the original's `original_size` bytes."""
    upright = im.transpose(TRANSPOSE[orientation]) if orientation in TRANSPOSE else im
    if upright.height < PREVIEW_HEIGHT or upright.mode not in ("RGB", "L"):
        return None
    out = io.BytesIO()
    icc = im.info.get("icc_profile")
    # The original's subsampling (4:2:0 from nearly every camera), 4:4:4 when it has none
    # Pillow can name: its thumbnails are 4:2:0 JPEG or WebP, whose chroma the preview's
    # covers at every height it serves, and 4:2:0 previews are a third smaller.
    sampling = JpegImagePlugin.get_sampling(im)
    if sampling == 1 and orientation in (5, 6, 7, 8):
        sampling = 0  # 4:2:2 halves the width's chroma: turned, that is the displayed height's
    upright.save(
        out, "JPEG", quality=PREVIEW_QUALITY, subsampling=sampling if sampling in (0, 1, 2) else 0,
        **({"icc_profile": icc} if icc else {}),
    )  # fmt: skip
    if out.tell() > original_size * PREVIEW_MAX_SHARE:
        return None  # a low-quality original: its preview would be larger than it is worth
    return out.getvalue(), upright.height


def _check_size(fmt: str, declared: tuple[int, int], opened: tuple[int, int]) -> None:
    """The decoder must see the size our header parse checked against the pixel limit."""
    w, h = declared
    if fmt in ("HEIF", "AVIF"):
        ok = opened in ((w, h), (h, w))  # a 90-degree 'irot' swaps the sides
    elif fmt == "GIF":
        ok = opened[0] <= w and opened[1] <= h  # our layout is the extent of every frame
    else:
        ok = opened == declared
    if not ok:
        raise InvalidImage(f"the image's headers disagree on its size: {w}x{h} or {opened}")


def contents(fp: BinaryIO) -> bytes:
    """The whole file, mapped rather than copied when it is one on disk."""
    if isinstance(fp, io.BytesIO):
        return fp.getvalue()
    if isinstance(fp, (io.BufferedReader, io.FileIO)):
        try:
            return mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)  # type: ignore[return-value]
        except (OSError, ValueError):  # empty, or not a regular file
            pass
    fp.seek(0)
    data = fp.read()
    fp.seek(0)
    return data


def _not_supported(stream: BinaryIO, error: Exception) -> Exception:
    """Tell a real image of another format (415) from something that is no image (400)."""
    stream.seek(0)
    head = stream.read(64)
    if not head:
        return InvalidImage(f"the file is empty: upload {_ACCEPTED}")
    stream.seek(0)
    try:
        with Image.open(stream, formats=_OTHER_FORMATS) as other:
            name = other.format
    except DECODE_ERRORS:
        name = None
    if name:
        article = "an" if name[0] in "AEIOU" else "a"
        return UnsupportedImageFormat(f"the file is {article} {name} image; upload {_ACCEPTED}")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return InvalidImage(
            f"the file is text (SVG, HTML or XML), not an image: upload {_ACCEPTED}"
        )
    if isinstance(error, UnidentifiedImageError):  # its message names the stream object
        return InvalidImage("the file is not an image or is corrupt/truncated")
    return InvalidImage(f"the file is not an image or is corrupt/truncated: {error}")


_ACCEPTED = "JPEG, PNG, WebP, GIF, HEIC or AVIF"


def render_thumbnail(source: bytes | BinaryIO, height: int, output: str | None = None) -> Thumbnail:
    """A thumbnail `height` px high as displayed, upright, without metadata, in `output`
    ('jpeg', 'png', 'webp', 'avif'; None: the original's own format, JPEG for HEIC and
    AVIF, PNG for GIF). An animation is thumbnailed from its first frame."""
    if height < 1:
        raise ValueError(f"height must be at least 1, got {height}")
    if output is not None and output not in OUTPUTS:
        raise ValueError(f"cannot render {output!r}: expected one of {', '.join(OUTPUTS)}")
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    # Scans, frames and text chunks first: what no encoder writes is refused before decoding.
    image_checks.check(source if isinstance(source, bytes) else contents(fp))
    with Image.open(fp, formats=SUPPORTED) as im:
        source_fmt = "JPEG" if im.format == "MPO" else (im.format or "")
        fmt = OUTPUTS[output] if output else _DEFAULT_OUTPUT.get(source_fmt, "JPEG")
        # getexif() parses the header only (a PNG may load; PNG has no shrink-on-load anyway).
        orientation = im.getexif().get(ORIENTATION_TAG, 1)
        turned = orientation in (5, 6, 7, 8)
        shown_w, shown_h = im.size[::-1] if turned else im.size
        out_h = min(height, shown_h)  # never upscale
        out_w = max(1, round(shown_w * out_h / shown_h))
        stored = (out_h, out_w) if turned else (out_w, out_h)
        icc = im.info.get("icc_profile")

        small: Image.Image = im
        if small.mode in ("P", "1") or "transparency" in small.info:
            # resize() of a palette is nearest-neighbour, and a colour key does not survive
            # resampling: go to true colour (with alpha) first.
            true_colour = "L" if small.mode == "1" else "RGB"
            small = small.convert("RGBA" if _has_alpha(small) else true_colour)
        if small.size != stored:
            # The box is one pixel looser on the free side so thumbnail() keeps the
            # constrained side exact; JPEGs are decoded at 1/2..1/8 scale via draft().
            w, h = stored
            box = (w, h + 1) if turned else (w + 1, h)
            if source_fmt == "JPEG" and small is im:
                # draft() is configured once: thumbnail()'s own call below then keeps it.
                im.draft(im.mode, (int(box[0] * JPEG_DRAFT_GAP), int(box[1] * JPEG_DRAFT_GAP)))
            small.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
            if small.size != stored:  # a rounding tie decided the other way
                small = small.resize(stored, Image.Resampling.LANCZOS)
        if orientation in TRANSPOSE:
            small = small.transpose(TRANSPOSE[orientation])
        small.load()
        return _encode(small, fmt, icc)


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def _flatten(im: Image.Image) -> Image.Image:
    """The image over MATTE: what a transparent pixel shows in a format without alpha."""
    rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, MATTE)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _encode(im: Image.Image, fmt: str, icc: bytes | None) -> Thumbnail:
    options: dict[str, object] = {}
    if fmt == "JPEG":
        if _has_alpha(im):
            im = _flatten(im)
        if im.mode not in ("RGB", "L"):
            if im.mode == "CMYK":
                icc = None  # a CMYK profile would mislabel the RGB pixels
            im = im.convert("RGB")
        # Optimized Huffman tables: about 10% smaller than the standard ones for half a
        # millisecond at 400 px; progressive would cost as much again for no fewer bytes.
        options = {"quality": JPEG_QUALITY, "optimize": True, "progressive": False}
    elif fmt == "AVIF":
        if im.mode not in ("RGB", "RGBA"):
            if im.mode == "CMYK":
                icc = None
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        options = {"quality": AVIF_QUALITY, "speed": AVIF_SPEED, "subsampling": "4:2:0"}
    elif fmt == "WEBP":
        if im.mode not in ("RGB", "RGBA"):
            if im.mode == "CMYK":
                icc = None
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        options = {"quality": WEBP_QUALITY, "method": WEBP_METHOD}
    elif fmt == "PNG":
        if im.mode not in ("1", "L", "LA", "I;16", "P", "RGB", "RGBA"):
            if im.mode == "CMYK":
                icc = None
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        options = {"compress_level": 6}
    else:
        raise ValueError(f"cannot render a {fmt or 'unknown'} image")
    # Writers fall back on im.info for some metadata (comment, ICC, transparency): clear
    # it, so EXIF, XMP, GPS and text chunks are never written. Colour keys were turned
    # into alpha before resizing.
    im.info = {}
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return Thumbnail(out.getvalue(), CONTENT_TYPES[fmt], im.width, im.height)
