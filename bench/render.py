"""Render targets: thumbnail vs the JPEG decode floor, PNG vs libvips, peak memory at 50 MP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from bench.common import PYTHON, ROOT, Options, Report, Target, interleaved
from bench.fixtures import encode, megapixel_size, photo_like
from imagify.adapters.decode_pool import DecodePool
from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.pillow import PillowRenderer
from imagify.adapters.pillow_render import render_thumbnail

HEIGHT = 200


def draft_decode(data: bytes) -> None:
    """The physical floor: libjpeg's 1/8 DCT scaling decode, and nothing else."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft(im.mode, (im.width // 8, im.height // 8))
        im.load()


def run(report: Report, options: Options, workdir: Path) -> dict[str, bytes]:
    """Returns the generated files, for the HTTP benchmarks to reuse."""
    files: dict[str, bytes] = {}
    for mp in (12, 24):
        size = megapixel_size(mp)
        data = encode(photo_like(size), "JPEG")
        files[f"jpeg{mp}"] = data
        times = interleaved(
            {"render": lambda: render_thumbnail(data, HEIGHT), "draft": lambda: draft_decode(data)},
            options.runs * 2,
        )
        ratio = times["render"] / times["draft"]
        what = f"{size[0]}x{size[1]} JPEG ({len(data) / 1e6:.1f} MB)"
        report.figure("render", f"{mp} MP JPEG -> {HEIGHT} px: render_thumbnail", f"{times['render'] * 1000:.1f} ms", what)
        report.figure("render", f"{mp} MP JPEG: Pillow draft (1/8 DCT) decode alone", f"{times['draft'] * 1000:.1f} ms")
        report.target(Target(
            f"render 200 px from a {mp} MP JPEG", "Pillow draft (1/8 scale) decode alone", "<= 1.15x",
            ratio, ratio <= 1.15, f"{times['render'] * 1000:.1f} ms vs {times['draft'] * 1000:.1f} ms",
        ))  # fmt: skip

    _through_workers(report, options, workdir, files["jpeg12"])
    size = megapixel_size(12)
    png = encode(photo_like(size), "PNG")
    files["png12"] = png
    _png_vs_vips(report, options, png, size)
    _memory(report, workdir)
    return files


class _ReadOnly(LocalFolderBlobStorage):
    """Local storage whose writes are dropped: the render alone is timed, not the fsync."""

    def put(self, key: str, data: object, content_type: str) -> None:
        pass


def pooled_renderer(folder: Path, data: bytes) -> PillowRenderer:
    """A renderer in warm worker processes reading `data` from a local file by its path."""
    blobs = _ReadOnly(folder)
    LocalFolderBlobStorage(folder).put("originals/bench", data, "image/jpeg")
    pool = DecodePool(1, 60, 1024 * 2**20)
    pool.start()
    return PillowRenderer(blobs, pool, 50_000_000)


def _through_workers(report: Report, options: Options, workdir: Path, data: bytes) -> None:
    """The cold render as the server does it: in a decode worker process, from the file's path."""
    renderer = pooled_renderer(workdir / "pooled", data)
    try:
        times = interleaved(
            {"pooled": lambda: renderer.render("originals/bench", "thumbnails/bench", HEIGHT),
             "draft": lambda: draft_decode(data)},
            options.runs * 2,
        )  # fmt: skip
    finally:
        renderer.close()
    ratio = times["pooled"] / times["draft"]
    report.figure("render", f"12 MP JPEG -> {HEIGHT} px in a decode worker process (file path)",
                  f"{times['pooled'] * 1000:.1f} ms", "PillowRenderer through DecodePool")  # fmt: skip
    report.target(Target(
        "render 200 px from a 12 MP JPEG in a worker process", "Pillow draft (1/8 scale) decode alone",
        "<= 1.15x", ratio, ratio <= 1.15, f"{times['pooled'] * 1000:.1f} ms vs {times['draft'] * 1000:.1f} ms",
    ))  # fmt: skip


def _png_vs_vips(report: Report, options: Options, png: bytes, size: tuple[int, int]) -> None:
    try:
        import pyvips
    except Exception as error:  # noqa: BLE001 (OSError when libvips itself is missing)
        report.target(Target("render 200 px from a 12 MP PNG", "pyvips thumbnail", "<= 1.2x", None, None,
                             "not measured", f"pyvips unusable here: {error}"))  # fmt: skip
        return

    def vips() -> None:
        # Same work as ours: decode, shrink to 200 px high, encode as PNG.
        pyvips.Image.thumbnail_buffer(png, 100_000, height=HEIGHT).write_to_buffer(".png")

    def decode() -> None:
        with Image.open(io.BytesIO(png)) as im:
            im.load()

    times = interleaved(
        {"render": lambda: render_thumbnail(png, HEIGHT), "vips": vips, "decode": decode}, options.runs * 2
    )
    ratio = times["render"] / times["vips"]
    report.figure("render", f"12 MP PNG -> {HEIGHT} px: render_thumbnail", f"{times['render'] * 1000:.1f} ms",
                  f"{size[0]}x{size[1]} PNG ({len(png) / 1e6:.1f} MB)")  # fmt: skip
    report.figure("render", "12 MP PNG: pyvips thumbnail_buffer + PNG encode", f"{times['vips'] * 1000:.1f} ms",
                  f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}")  # fmt: skip
    report.figure("render", "12 MP PNG: Pillow full decode alone", f"{times['decode'] * 1000:.1f} ms")
    note = ""
    if ratio > 1.2:
        note = (f"PNG has no reduced-scale decode: Pillow's zlib inflate + unfilter alone takes "
                f"{times['decode'] / times['vips']:.2f}x libvips' whole thumbnail")  # fmt: skip
    report.target(Target(
        "render 200 px from a 12 MP PNG", "pyvips Image.thumbnail on the same file", "<= 1.2x",
        ratio, ratio <= 1.2, f"{times['render'] * 1000:.1f} ms vs {times['vips'] * 1000:.1f} ms", note,
    ))  # fmt: skip


def _memory(report: Report, workdir: Path) -> None:
    size = megapixel_size(50)
    path = workdir / "photo-50mp.jpg"
    path.write_bytes(encode(photo_like(size), "JPEG"))
    for source in ("file", "bytes"):
        out = subprocess.run(
            [PYTHON, "-m", "bench.render_memory", str(path), str(HEIGHT), source],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        m = json.loads(out.stdout)
        extra = m["extra_mib"]
        how = {"file": "from the file on disk (local storage)",
               "bytes": "from bytes in memory (S3: the body is read whole)"}[source]  # fmt: skip
        report.figure("memory", f"50 MP JPEG -> {HEIGHT} px, {how}", f"+{extra:.1f} MiB",
                      f"RSS high-water {m['before_mib']:.1f} -> {m['after_mib']:.1f} MiB; "
                      f"{size[0]}x{size[1]}, {path.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        note = "" if extra <= 64 else "the encoded file itself is held in memory while decoding"
        report.target(Target(
            f"peak memory rendering a 50 MP JPEG {how}", "the process before rendering (RSS high-water)",
            "<= 64 MiB extra", extra / 64, extra <= 64, f"+{extra:.1f} MiB", note,
        ))  # fmt: skip
    path.unlink()


if __name__ == "__main__":
    sys.exit("run bench/run.py")
