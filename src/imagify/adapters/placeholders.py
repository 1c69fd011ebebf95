"""Placeholders from an already decoded image: ThumbHash, dominant colour, aspect ratio.

Made in the decode worker from the upload check's own decode (a JPEG at 1/8 to 1/2 scale),
so a placeholder costs a 100 px box reduction, a hash of it and a median cut of 32 px.
ThumbHash by fast-thumbhash (bindings to the reference `thumbhash` crate of ThumbHash's
author).
"""

from __future__ import annotations

import base64

import fast_thumbhash
from PIL import Image

from imagify.adapters.pillow_render import TRANSPOSE

SIDE = 100  # ThumbHash encodes at most 100x100 pixels
# The dominant colour is found on at most this many pixels a side: median cut costs about
# its number of distinct colours (3.7 ms on a noisy 100x75 photo, 0.3 ms on 32x24).
COLOUR_SIDE = 32
# Modes a box filter reduces as they are (converting to RGBA after the reduction gives the
# same pixels as before it, on a tenth of them); any other is converted first.
_REDUCIBLE = ("RGB", "RGBA", "L", "LA")


def placeholder(im: Image.Image, orientation: int) -> tuple[str, str, float]:
    """(ThumbHash in base64, '#rrggbb', width / height as displayed) of a loaded image
    whose EXIF `orientation` is applied here, so the hash is upright."""
    source = im if im.mode in _REDUCIBLE else im.convert("RGBA")
    # resize() makes only the small image (thumbnail() on a copy would first copy the whole
    # decode, twice the memory the upload check's budget counted).
    small = source.resize(fitted(source.size, SIDE), Image.Resampling.BOX)
    if small.mode != "RGBA":
        small = small.convert("RGBA")
    if orientation in TRANSPOSE:
        small = small.transpose(TRANSPOSE[orientation])
    turned = orientation in (5, 6, 7, 8)
    thumbhash = base64.b64encode(
        bytes(fast_thumbhash.rgba_to_thumb_hash(small.width, small.height, small.tobytes()))
    ).decode()
    width, height = im.size[::-1] if turned else im.size
    return thumbhash, dominant_colour(small), round(width / height, 4)


def fitted(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` scaled down, aspect kept, to fit in `side` x `side` (never up)."""
    w, h = size
    if w <= side and h <= side:
        return w, h
    if w >= h:
        return side, max(1, round(h * side / w))
    return max(1, round(w * side / h)), side


def dominant_colour(im: Image.Image) -> str:
    """The most common of eight median-cut colours, ignoring transparent pixels."""
    im = im.resize(fitted(im.size, COLOUR_SIDE), Image.Resampling.BOX)
    rgb = im.convert("RGB")
    if im.mode == "RGBA":
        alpha = im.getchannel("A").get_flattened_data()
        seen = [p for p, a in zip(rgb.get_flattened_data(), alpha) if a >= 128]
        if not seen:
            return "#000000"
        rgb = Image.new("RGB", (len(seen), 1))
        rgb.putdata(seen)
    palette = rgb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    count, index = max(palette.getcolors() or [(1, 0)])
    r, g, b = palette.getpalette()[index * 3:index * 3 + 3]  # type: ignore[index]
    return f"#{r:02x}{g:02x}{b:02x}"
