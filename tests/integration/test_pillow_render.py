"""The Pillow inspector and renderer, on images made in memory."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import pytest
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

from imagify.adapters.decode_pool import DecodePool
from imagify.adapters.pillow import PillowImageInspector, PillowRenderer
from imagify.adapters.pillow_render import render_thumbnail
from imagify.domain.errors import NotAnImage, RenderFailed, TooLarge, UnsupportedFormat
from imagify.domain.ports import StoredBlob

RED = (255, 0, 0)
BLUE = (0, 0, 255)
MAX_PIXELS = 50_000_000


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def marked(size: tuple[int, int]) -> Image.Image:
    """Blue, with a red block in the stored top-left corner."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    return im


def is_close(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(pixel[:3], colour))


# Rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_thumbnail_is_exactly_the_height_asked_and_keeps_the_aspect_ratio(fmt: str) -> None:
    data = encode(Image.new("RGB", (1000, 750), BLUE), fmt)

    thumb = render_thumbnail(data, 200)

    assert (thumb.width, thumb.height) == (267, 200)
    assert opened(thumb.data).size == (267, 200)
    assert opened(thumb.data).format == fmt
    assert thumb.content_type == f"image/{fmt.lower()}"


@pytest.mark.parametrize("size", [(333, 1000), (1001, 999), (4000, 3), (3, 4000), (17, 31)])
def test_odd_sizes_round_the_width_and_keep_the_height_exact(size: tuple[int, int]) -> None:
    w, h = size
    thumb = render_thumbnail(encode(Image.new("RGB", size, BLUE), "JPEG"), 20)

    expected_h = min(20, h)
    assert (thumb.width, thumb.height) == (max(1, round(w * expected_h / h)), expected_h)
    assert opened(thumb.data).size == (thumb.width, thumb.height)


def test_a_small_original_is_never_upscaled_but_re_encoded() -> None:
    data = encode(Image.new("RGB", (120, 90), BLUE), "PNG")

    thumb = render_thumbnail(data, 400)

    assert (thumb.width, thumb.height) == (120, 90)
    assert opened(thumb.data).format == "PNG"


def test_a_thumbnail_can_be_rendered_from_a_stream() -> None:
    thumb = render_thumbnail(io.BytesIO(encode(Image.new("RGB", (400, 200)), "WEBP")), 100)

    assert (thumb.width, thumb.height) == (200, 100)


def test_a_large_jpeg_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    scales: list[int] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: object) -> object:
        result = draft(self, mode, size)  # type: ignore[arg-type]
        scales.append(self.decoderconfig[0] if self.decoderconfig else 1)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    render_thumbnail(encode(Image.new("RGB", (1600, 1200), BLUE), "JPEG"), 100)

    assert scales and max(scales) >= 4


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(marked((300, 200)), "JPEG", exif=exif, quality=95)


def test_exif_orientation_6_turns_the_thumbnail_clockwise() -> None:
    thumb = render_thumbnail(exif_jpeg(6), 150)

    assert (thumb.width, thumb.height) == (100, 150)
    im = opened(thumb.data).convert("RGB")
    assert im.size == (100, 150)
    assert is_close(im.getpixel((95, 5)), RED)  # stored top-left is now top-right
    assert is_close(im.getpixel((5, 5)), BLUE)
    assert is_close(im.getpixel((5, 145)), BLUE)


def test_exif_orientation_8_turns_the_thumbnail_counter_clockwise() -> None:
    thumb = render_thumbnail(exif_jpeg(8), 150)

    im = opened(thumb.data).convert("RGB")
    assert im.size == (100, 150)
    assert is_close(im.getpixel((5, 145)), RED)  # stored top-left is now bottom-left
    assert is_close(im.getpixel((95, 5)), BLUE)


def test_a_rotated_original_smaller_than_the_height_is_turned_but_not_upscaled() -> None:
    thumb = render_thumbnail(exif_jpeg(6), 1000)

    assert (thumb.width, thumb.height) == (200, 300)


def test_exif_gps_and_xmp_metadata_are_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><secret>here</secret></x:xmpmeta>'
    data = encode(marked((400, 300)), "JPEG", exif=exif, xmp=xmp, comment=b"hello")
    assert opened(data).getexif().get_ifd(0x8825)  # the original does carry GPS

    thumb = render_thumbnail(data, 100)

    im = opened(thumb.data)
    assert not im.getexif()
    assert "exif" not in im.info and "xmp" not in im.info and "comment" not in im.info
    assert b"SpyCam" not in thumb.data and b"secret" not in thumb.data


def test_png_and_webp_exif_is_stripped_too() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    for fmt in ("PNG", "WEBP"):
        thumb = render_thumbnail(encode(marked((400, 300)), fmt, exif=exif), 100)
        assert b"SpyCam" not in thumb.data
        assert not opened(thumb.data).getexif()


def test_a_png_with_transparency_keeps_its_alpha_channel() -> None:
    im = Image.new("RGBA", (400, 200), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (200, 0, 400, 200))

    thumb = render_thumbnail(encode(im, "PNG"), 100)

    out = opened(thumb.data)
    assert out.format == "PNG" and out.mode == "RGBA"
    assert out.getpixel((10, 50))[3] == 0
    assert out.getpixel((190, 50)) == (0, 0, 255, 255)


def test_a_palette_png_with_a_transparent_colour_keeps_its_transparency() -> None:
    im = Image.new("P", (400, 200), 0)
    im.putpalette([255, 255, 255, 0, 0, 255] + [0] * 762)
    im.paste(1, (200, 0, 400, 200))

    thumb = render_thumbnail(encode(im, "PNG", transparency=0), 100)

    out = opened(thumb.data).convert("RGBA")
    assert out.getpixel((10, 50))[3] == 0
    assert out.getpixel((190, 50)) == (0, 0, 255, 255)


def test_a_webp_with_alpha_keeps_it() -> None:
    im = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    im.paste((0, 0, 255, 255), (200, 0, 400, 200))

    thumb = render_thumbnail(encode(im, "WEBP", lossless=True), 100)

    out = opened(thumb.data)
    assert out.format == "WEBP" and out.mode == "RGBA"
    assert out.getpixel((10, 50))[3] == 0


def test_a_cmyk_jpeg_becomes_an_rgb_jpeg() -> None:
    data = encode(Image.new("CMYK", (400, 300), (0, 255, 255, 0)), "JPEG")

    thumb = render_thumbnail(data, 150)

    out = opened(thumb.data)
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (200, 150))
    assert is_close(out.getpixel((100, 75)), RED)


# Inspecting ----------------------------------------------------------------------------


@pytest.fixture
def inspector(decode_pool: DecodePool) -> PillowImageInspector:
    return PillowImageInspector(MAX_PIXELS, decode_pool)


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif"), ("AVIF", "image/avif")],
)
def test_jpeg_png_and_webp_are_identified_by_their_content(
    inspector: PillowImageInspector, fmt: str, content_type: str
) -> None:
    info = inspector.inspect(io.BytesIO(encode(marked((64, 48)), fmt)))

    assert (info.content_type, info.width, info.height) == (content_type, 64, 48)


def test_a_multi_picture_jpeg_from_a_camera_is_a_jpeg(inspector: PillowImageInspector) -> None:
    out = io.BytesIO()
    marked((64, 48)).save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48))])

    assert inspector.inspect(io.BytesIO(out.getvalue())).content_type == "image/jpeg"
    assert opened(render_thumbnail(out.getvalue(), 24).data).format == "JPEG"


def test_a_rotated_jpeg_reports_its_stored_size(inspector: PillowImageInspector) -> None:
    info = inspector.inspect(io.BytesIO(exif_jpeg(6)))

    assert (info.width, info.height) == (300, 200)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_an_image_of_another_format_is_unsupported(
    inspector: PillowImageInspector, fmt: str
) -> None:
    with pytest.raises(UnsupportedFormat, match=fmt):
        inspector.inspect(io.BytesIO(encode(marked((64, 48)), fmt)))


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
        b"<!doctype html><html><body>hi</body></html>",
        b"",
        bytes(range(256)) * 8,
        b"GIF89a",
    ],
    ids=["svg", "html", "empty", "random", "gif-signature-only"],
)
def test_something_that_is_no_image_is_rejected_as_not_an_image(
    inspector: PillowImageInspector, data: bytes
) -> None:
    with pytest.raises(NotAnImage):
        inspector.inspect(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_image_is_rejected_as_not_an_image(
    inspector: PillowImageInspector, fmt: str
) -> None:
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), fmt)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES

    with pytest.raises(NotAnImage, match="truncated"):
        inspector.inspect(io.BytesIO(data[: len(data) * 2 // 3]))


def png_with_broken_pixel_data(data: bytes) -> bytes:
    """Flip bytes inside the first IDAT chunk and fix its CRC, so only inflating can tell."""
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    body = bytearray(data[start + 8 : start + 8 + length])
    for i in range(len(body) // 2, len(body) // 2 + 64):
        body[i] ^= 0xFF
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    return data[: start + 8] + bytes(body) + crc + data[start + 12 + length :]


def test_a_png_whose_pixel_data_is_corrupt_behind_valid_checksums_is_not_an_image(
    inspector: PillowImageInspector,
) -> None:
    good = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "PNG")
    assert inspector.inspect(io.BytesIO(good)).content_type == "image/png"

    # zlib notices first, or the scanline filter types that come out of the flipped bytes
    with pytest.raises(NotAnImage, match="corrupt|invalid filter type"):
        inspector.inspect(io.BytesIO(png_with_broken_pixel_data(good)))


def png_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_png_claiming_too_many_pixels_is_too_large_before_any_decoding(
    inspector: PillowImageInspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("a decompression bomb must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", never, raising=False)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "verify", never)

    with pytest.raises(TooLarge, match="20000x20000"):
        inspector.inspect(io.BytesIO(png_claiming(20000, 20000)))


def test_the_pixel_limit_is_the_configured_one(decode_pool: DecodePool) -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")

    with pytest.raises(TooLarge):
        PillowImageInspector(9_999, decode_pool).inspect(io.BytesIO(data))
    assert PillowImageInspector(10_000, decode_pool).inspect(io.BytesIO(data)).width == 100


# The renderer adapter ------------------------------------------------------------------


class DictBlobStorage:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        self.blobs[key] = (data if isinstance(data, bytes) else data.read(), content_type)

    def open(self, key: str) -> StoredBlob:
        data, content_type = self.blobs[key]
        return StoredBlob(io.BytesIO(data), len(data), content_type)

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def check(self) -> None:
        pass


@pytest.fixture
def blobs() -> DictBlobStorage:
    return DictBlobStorage()


@pytest.fixture
def renderer(blobs: DictBlobStorage) -> Iterator[PillowRenderer]:
    renderer = PillowRenderer(blobs, DecodePool(2, 60, 1024 * 2**20), MAX_PIXELS)
    yield renderer
    renderer.close()


def test_the_renderer_writes_the_thumbnail_and_reports_its_sha256(
    blobs: DictBlobStorage, renderer: PillowRenderer
) -> None:
    blobs.put("originals/a", encode(marked((800, 600)), "PNG"), "image/png")

    made = renderer.render("originals/a", "thumbnails/a/200", 200)

    data, content_type = blobs.blobs["thumbnails/a/200"]
    assert content_type == made.content_type == "image/png"
    assert made.sha256 == hashlib.sha256(data).hexdigest()
    assert made.size_bytes == len(data)
    assert (made.width, made.height) == opened(data).size == (267, 200)


@pytest.mark.parametrize(
    "original",
    [b"this is not an image", encode(marked((800, 600)), "JPEG")[:2000]],
    ids=["garbage", "truncated-jpeg"],
)
def test_a_corrupt_stored_original_fails_the_render(
    blobs: DictBlobStorage, renderer: PillowRenderer, original: bytes
) -> None:
    blobs.put("originals/b", original, "image/jpeg")

    with pytest.raises(RenderFailed, match="could not render the thumbnail"):
        renderer.render("originals/b", "thumbnails/b/200", 200)
    assert not blobs.exists("thumbnails/b/200")


def test_the_renderer_can_be_closed_and_used_again(
    blobs: DictBlobStorage, renderer: PillowRenderer
) -> None:
    blobs.put("originals/c", encode(marked((80, 60)), "WEBP"), "image/webp")
    renderer.close()

    assert renderer.render("originals/c", "thumbnails/c/30", 30).height == 30
