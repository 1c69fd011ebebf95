"""Placeholders from a decoded image: the same picture gives the same placeholder whatever
scale the upload check decoded it at, and transparent pixels never make the colour."""

from __future__ import annotations

import io
import random

from PIL import Image

from imagify.adapters.placeholders import dominant_colour, placeholder


def photo(size: tuple[int, int]) -> Image.Image:
    """Mostly teal with a red band and noise: a clear dominant colour under texture."""
    w, h = size
    im = Image.new("RGB", size, (20, 140, 150))
    im.paste((200, 30, 30), (0, 0, w, h // 5))
    noise = Image.frombytes("RGB", size, random.Random(7).randbytes(w * h * 3))  # the same each run
    return Image.blend(im, noise, 0.1)


def decoded_at(data: bytes, scale: int) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (im.width // scale, im.height // scale))
    im.load()
    return im


def distance(a: str, b: str) -> int:
    return max(abs(int(a[i:i + 2], 16) - int(b[i:i + 2], 16)) for i in (1, 3, 5))


def test_the_placeholder_of_a_jpeg_hardly_depends_on_the_scale_it_was_decoded_at():
    out = io.BytesIO()
    photo((1632, 1224)).save(out, "JPEG", quality=90)
    made = {scale: placeholder(decoded_at(out.getvalue(), scale), 1) for scale in (8, 4, 2)}

    colours = [colour for _, colour, _ in made.values()]
    assert all(distance(colours[0], other) <= 6 for other in colours), colours
    assert {ratio for _, _, ratio in made.values()} == {round(1632 / 1224, 4)}
    hashes = {thumbhash for thumbhash, _, _ in made.values()}
    assert all(10 < len(h) < 64 for h in hashes)


def test_the_same_decode_always_gives_the_same_placeholder():
    im = photo((800, 600))
    assert placeholder(im, 6) == placeholder(im.copy(), 6)
    thumbhash, _, ratio = placeholder(im, 6)
    assert ratio == 0.75  # orientation 6 is shown turned
    assert thumbhash != placeholder(im, 1)[0]


def test_transparent_pixels_never_make_the_dominant_colour():
    im = Image.new("RGBA", (300, 100), (250, 0, 0, 0))  # two thirds transparent red
    im.paste((0, 0, 240, 255), (200, 0, 300, 100))
    r, g, b = (int(dominant_colour(im)[i:i + 2], 16) for i in (1, 3, 5))
    assert b > 200 and r < 30


def test_the_dominant_colour_is_the_one_covering_most_of_a_noisy_picture():
    # Median cut over every noisy pixel splits the teal four fifths into several boxes and
    # names the red band; counted on COLOUR_SIDE pixels a side,
    # the noise is averaged away first.
    for size in ((1000, 1000), (100, 75)):
        r, g, b = (int(dominant_colour(photo(size))[i:i + 2], 16) for i in (1, 3, 5))
        assert r < 80 and g > 100 and b > 110, (size, r, g, b)
