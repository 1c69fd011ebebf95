"""Placeholders from an already decoded image: ThumbHash, dominant colour, aspect ratio.

Made in the decode worker from the upload check's own decode (a JPEG at 1/8 scale), so a
placeholder costs a 100 px resize and a hash of it. ThumbHash by fast-thumbhash (bindings to
the reference `thumbhash` crate of ThumbHash's author).
"""

from __future__ import annotations

import base64

import fast_thumbhash
from PIL import Image

from imagify.adapters.pillow_render import TRANSPOSE

SIDE = 100  # ThumbHash encodes at most 100x100 pixels


def placeholder(im: Image.Image, orientation: int) -> tuple[str, str, float]:
    """(ThumbHash in base64, '#rrggbb', width / height as displayed) of a loaded image
    whose EXIF `orientation` is applied here, so the hash is upright."""
    small = im.convert("RGBA") if im.mode != "RGBA" else im.copy()
    small.thumbnail((SIDE, SIDE), Image.Resampling.BOX)
    if orientation in TRANSPOSE:
        small = small.transpose(TRANSPOSE[orientation])
    turned = orientation in (5, 6, 7, 8)
    thumbhash = base64.b64encode(
        bytes(fast_thumbhash.rgba_to_thumb_hash(small.width, small.height, small.tobytes()))
    ).decode()
    width, height = im.size[::-1] if turned else im.size
    return thumbhash, dominant_colour(small), round(width / height, 4)


def dominant_colour(im: Image.Image) -> str:
    """The most common of eight median-cut colours, ignoring transparent pixels."""
    rgb = im.convert("RGB")
    if im.mode == "RGBA":
        seen = [p for p, a in zip(rgb.getdata(), im.getchannel("A").getdata()) if a >= 128]
        if not seen:
            return "#000000"
        rgb = Image.new("RGB", (len(seen), 1))
        rgb.putdata(seen)
    palette = rgb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    count, index = max(palette.getcolors() or [(1, 0)])
    r, g, b = palette.getpalette()[index * 3:index * 3 + 3]  # type: ignore[index]
    return f"#{r:02x}{g:02x}{b:02x}"
