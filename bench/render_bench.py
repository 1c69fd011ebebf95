"""How much the fast thumbnail path saves on 12 MP originals.

Makes a 4000x3000 JPEG and PNG (noise over gradients, so they compress like photos)
in a temporary directory, then times, best of N, rendering a 200 px high thumbnail
with imagify's `render_thumbnail` (JPEG shrink-on-load via draft, thumbnail with a
reducing gap, transpose only the small image) against the naive path: open, load,
exif_transpose, LANCZOS resize of the full image, save in the same format.

Run: python bench/render_bench.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from imagify.adapters.pillow_render import render_thumbnail  # noqa: E402

SIZE = (4000, 3000)
HEIGHT = 200
RUNS = 5


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Deterministic: two gradients for colour, Gaussian noise for texture."""
    w, h = size
    horizontal = Image.linear_gradient("L").resize((w, h)).rotate(90, expand=False)
    vertical = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40)
    texture = ImageChops.add(noise, vertical, scale=2.0)
    return Image.merge("RGB", (horizontal, texture, ImageChops.invert(vertical)))


def naive(data: bytes, height: int) -> bytes:
    im = Image.open(io.BytesIO(data))
    fmt = im.format
    im.load()
    im = ImageOps.exif_transpose(im)
    width = max(1, round(im.width * height / im.height))
    im = im.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


def best_ms(render: Callable[[bytes, int], object], data: bytes) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        render(data, HEIGHT)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="imagify-bench-") as tmp:
        image = photo_like(SIZE)
        paths = {"JPEG": Path(tmp) / "photo.jpg", "PNG": Path(tmp) / "photo.png"}
        image.save(paths["JPEG"], "JPEG", quality=90)
        image.save(paths["PNG"], "PNG")
        megapixels = SIZE[0] * SIZE[1] / 1e6
        print(f"render_thumbnail(data, {HEIGHT}) vs naive, best of {RUNS}, Pillow "
              f"{Image.__version__}")  # fmt: skip
        for fmt, path in paths.items():
            data = path.read_bytes()
            fast_ms = best_ms(render_thumbnail, data)
            naive_ms = best_ms(naive, data)
            print(
                f"{fmt:<4} {megapixels:.0f} MP ({len(data) / 1e6:.1f} MB): "
                f"fast {fast_ms:7.1f} ms, naive {naive_ms:7.1f} ms, "
                f"{naive_ms / fast_ms:4.1f}x faster"
            )


if __name__ == "__main__":
    main()
