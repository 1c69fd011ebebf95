"""render_thumbnail from every input format to every output format: upright, not upscaled,
without metadata, alpha kept where the output has it."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

from imagify.adapters.pillow_render import OUTPUTS, render_thumbnail
from tests.integration.test_pillow_render import BLUE, RED, encode, is_close, marked, opened

pillow_heif.register_heif_opener()
INPUTS = ["JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF"]
WITH_ALPHA = {"PNG", "WEBP", "AVIF", "HEIF"}  # inputs that keep alpha (GIF's is a colour key)
SPY = "SpyCam"


def original(fmt: str, orientation: int = 1, size: tuple[int, int] = (300, 200)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = SPY
    if orientation != 1:
        exif[0x0112] = orientation
    im = marked(size)
    if fmt == "GIF":
        return encode(im.convert("P"), "GIF", comment=SPY.encode())
    return encode(im, fmt, exif=exif, quality=95)


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("fmt", INPUTS)
def test_every_input_renders_in_every_output_at_the_height_without_metadata(fmt: str, output: str) -> None:
    thumb = render_thumbnail(original(fmt), 100, output)

    im = opened(thumb.data)
    assert im.format == OUTPUTS[output] and thumb.content_type == f"image/{output}"
    assert im.size == (thumb.width, thumb.height) == (150, 100)
    assert is_close(im.convert("RGB").getpixel((5, 5)), RED)
    assert is_close(im.convert("RGB").getpixel((145, 95)), BLUE)
    assert SPY.encode() not in thumb.data and not im.getexif()


@pytest.mark.parametrize("output", sorted(OUTPUTS))
# Not HEIF: its orientation is its 'irot'/'imir' boxes, which libheif applies as it decodes;
# an EXIF orientation inside a HEIF is informational (pillow-heif resets it to 1).
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF"])
def test_exif_orientation_is_applied_in_every_output(fmt: str, output: str) -> None:
    thumb = render_thumbnail(original(fmt, orientation=6), 150, output)

    im = opened(thumb.data).convert("RGB")
    assert im.size == (100, 150)
    assert is_close(im.getpixel((95, 5)), RED)  # the stored top-left, turned clockwise
    assert is_close(im.getpixel((5, 145)), BLUE)


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("fmt", INPUTS)
def test_a_small_original_is_never_upscaled(fmt: str, output: str) -> None:
    thumb = render_thumbnail(original(fmt, size=(60, 40)), 400, output)
    assert opened(thumb.data).size == (60, 40)


@pytest.mark.parametrize("output", ["png", "webp", "avif"])
@pytest.mark.parametrize("fmt", sorted(WITH_ALPHA))
def test_alpha_survives_where_the_output_has_it(fmt: str, output: str) -> None:
    im = Image.new("RGBA", (200, 100), (0, 0, 255, 0))
    im.paste((255, 0, 0, 255), (0, 0, 100, 100))
    thumb = render_thumbnail(encode(im, fmt, quality=95) if fmt != "PNG" else encode(im, fmt), 50, output)

    out = opened(thumb.data).convert("RGBA")
    assert out.getpixel((10, 25))[3] > 240 and out.getpixel((90, 25))[3] < 15


def test_alpha_is_flattened_on_white_in_jpeg() -> None:
    im = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    thumb = render_thumbnail(encode(im, "PNG"), 50, "jpeg")
    assert is_close(opened(thumb.data).getpixel((25, 25)), (255, 255, 255))


def test_a_transparent_gif_keeps_its_transparency_in_png() -> None:
    im = Image.new("P", (200, 100), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (100, 0, 200, 100))
    thumb = render_thumbnail(encode(im, "GIF", transparency=1), 50)
    out = opened(thumb.data).convert("RGBA")
    assert thumb.content_type == "image/png"
    assert out.getpixel((10, 25))[3] == 255 and out.getpixel((90, 25))[3] == 0


def test_an_animated_webp_and_apng_are_thumbnailed_from_their_first_frame() -> None:
    frames = [Image.new("RGB", (200, 100), c) for c in (RED, BLUE, BLUE)]
    for fmt in ("WEBP", "PNG"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50)
        thumb = render_thumbnail(data, 50, "png")
        assert is_close(opened(thumb.data).convert("RGB").getpixel((50, 25)), RED), fmt


def test_avif_and_webp_are_smaller_than_jpeg_at_the_configured_quality() -> None:
    photo = Image.effect_mandelbrot((1200, 900), (-2, -1.2, 1, 1.2), 200).convert("RGB")
    data = encode(photo, "JPEG", quality=95)
    sizes = {out: len(render_thumbnail(data, 400, out).data) for out in ("jpeg", "webp", "avif")}
    assert sizes["avif"] < sizes["jpeg"] and sizes["webp"] < sizes["jpeg"], sizes
