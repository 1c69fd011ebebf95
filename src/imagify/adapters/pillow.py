"""The in-process Pillow adapters: the upload inspector and the thumbnail renderer.

Both decode untrusted bytes, so both run in a DecodePool's worker processes: a decode that
passes the wall-time budget is killed, one larger than the memory budget is refused.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image

from imagify.adapters import image_checks
from imagify.adapters.decode_pool import Busy, DecodePool, OverBudget, TimedOut, WorkerDied
from imagify.adapters.local_storage import LocalBlob
from imagify.adapters.pillow_render import (
    DECODE_ERRORS,
    JPEG_DRAFT_GAP,
    ORIENTATION_TAG,
    PREVIEW_HEIGHT,
    PREVIEW_SCALES,
    SUPPORTED,
    ImageTooLarge,
    InvalidImage,
    Thumbnail,
    UnsupportedImageFormat,
    contents,
    inspect_image,
    make_preview,
    render_thumbnail,
    upload_decode_scale,
)
from imagify.adapters.placeholders import SIDE, placeholder
from imagify.domain.errors import (
    NotAnImage, NotFound, RenderFailed, RenderTimedOut, TooLarge, Unavailable, UnsupportedFormat,
)
from imagify.domain.model import ImageInfo, Placeholder, Preview, RenderedThumbnail
from imagify.domain.ports import BlobStorage


def inspect_in_worker(data: bytes, max_pixels: int, previews: bool = True) -> ImageInfo:
    """The upload check, the placeholder from its decode, and a JPEG's preview unless
    `previews` is False (a PNG, which the check does not decode, gets its placeholder from
    its first thumbnail)."""
    made: list[tuple[Placeholder, Preview | None]] = []

    def keep(im: Image.Image, orientation: int) -> None:
        preview = make_preview(im, orientation, len(data)) if previews else None
        made.append((
            Placeholder(*placeholder(im, orientation)),
            None if preview is None else Preview(preview[0], "image/jpeg", preview[1]),
        ))  # fmt: skip

    content_type, width, height = inspect_image(io.BytesIO(data), max_pixels, keep, previews)
    return ImageInfo(content_type, width, height, *(made[0] if made else (None, None)))


def placeholder_in_worker(data: bytes) -> Placeholder:
    """The placeholder of a checked image: a JPEG decoded at the smallest scale that still
    covers ThumbHash's 100 px, any other format whole (only ever asked of thumbnails Imagify
    rendered, and by `imagify backfill-placeholders`)."""
    image_checks.check(data)
    with Image.open(io.BytesIO(data), formats=SUPPORTED) as im:
        if im.format in ("JPEG", "MPO"):
            im.draft("RGB" if im.mode != "L" else "L", (SIDE, SIDE))
        im.load()
        return Placeholder(*placeholder(im, im.getexif().get(ORIENTATION_TAG, 1)))


def render_in_worker(source: str | bytes, height: int, output: str | None = None) -> Thumbnail:
    """Render from a local file's path (read by the worker) or from the original's bytes."""
    if isinstance(source, str):
        with open(source, "rb") as fp:
            return render_thumbnail(fp, height, output)
    return render_thumbnail(source, height, output)


def _layout(data: bytes) -> image_checks.Layout | None:
    """What the headers say, or None when the worker is to find out what the file is."""
    try:
        return image_checks.layout(data)
    except image_checks.BadStructure:
        return None


class PillowImageInspector:
    def __init__(self, max_pixels: int, pool: DecodePool) -> None:
        self._max_pixels = max_pixels
        self._pool = pool

    def inspect(self, stream: BinaryIO) -> ImageInfo:
        data = _read(stream)
        # The upload check decodes a JPEG at 1/8, 1/4 or 1/2 scale, a PNG not at all, the
        # other formats whole (see inspect_image); an image over the pixel limit is refused
        # from its header, and one no render could decode within the memory budget from its
        # size.
        layout = _layout(data)
        estimate, previews = image_checks.INFLATE_STEP, True
        with _refusals():
            if layout and layout.width * layout.height <= self._max_pixels:
                whole = image_checks.decode_bytes(layout, 8 if layout.format == "JPEG" else 1)
                self._pool.budget.check(whole)
                if layout.format == "JPEG":  # either side may be the displayed height
                    size = (layout.width, layout.height)
                    scale = min(upload_decode_scale(size, 1), upload_decode_scale(size, 6))
                    estimate = image_checks.decode_bytes(layout, scale)
                    if self.may_keep_preview(layout.width, layout.height):
                        estimate *= 2  # the preview is encoded from an upright copy of it
                    if estimate > self._pool.budget.total:  # a preview is never worth a 413
                        estimate, previews = whole, False
                elif layout.format != "PNG":
                    estimate = whole
            return self._pool.run(inspect_in_worker, data, self._max_pixels, previews, estimate=estimate)

    def may_keep_preview(self, width: int, height: int) -> bool:
        # The largest decode a check keeps is at 1/min(PREVIEW_SCALES) of the displayed height.
        return max(width, height) // min(PREVIEW_SCALES) >= PREVIEW_HEIGHT

    def placeholder(self, stream: BinaryIO) -> Placeholder:
        data = _read(stream)
        layout = _layout(data)
        if layout is None:
            raise NotAnImage("the file is not an image Imagify can make a placeholder of")
        if layout.width * layout.height > self._max_pixels:
            raise TooLarge(f"the image is {layout.width}x{layout.height} pixels, more than the limit of {self._max_pixels}")
        # draft() stops at the smallest 1/n scale still covering SIDE x SIDE
        side = min(layout.width, layout.height)
        scale = next((n for n in (8, 4, 2) if side >= n * SIDE), 1) if layout.format == "JPEG" else 1
        with _refusals():
            return self._pool.run(placeholder_in_worker, data, estimate=image_checks.decode_bytes(layout, scale))


def _read(stream: BinaryIO) -> bytes:
    stream.seek(0)
    data = stream.read()
    stream.seek(0)
    return data


@contextmanager
def _refusals() -> Iterator[None]:
    """What a decode in the pool raises, as the domain's 4xx/5xx errors."""
    try:
        yield
    except UnsupportedImageFormat as e:
        raise UnsupportedFormat(str(e)) from None
    except InvalidImage as e:
        raise NotAnImage(str(e)) from None
    except (ImageTooLarge, OverBudget) as e:
        raise TooLarge(f"the image is refused: {e}") from None
    except TimedOut as e:
        raise NotAnImage(f"the image is refused: checking it {e} (a decoding bomb?)") from None
    except (WorkerDied, MemoryError) as e:
        raise TooLarge(f"the image is refused: checking it needs too much memory ({e})") from None
    except Busy as e:
        raise Unavailable(str(e)) from None
    except (image_checks.BadStructure, *DECODE_ERRORS) as e:
        raise NotAnImage(f"the image cannot be decoded: {e}") from None


class PillowRenderer:
    """Renders in the decode pool's worker processes."""

    def __init__(
        self,
        blobs: BlobStorage,
        pool: DecodePool,
        max_pixels: int,
        render: Callable[[str | bytes, int, str | None], Thumbnail] = render_in_worker,
    ) -> None:
        self._blobs = blobs
        self._pool = pool
        self._max_pixels = max_pixels
        self._render = render

    def render(self, source_key: str, target_key: str, height: int, format: str | None = None) -> RenderedThumbnail:
        blob = self._blobs.open(source_key)
        try:
            # A local file is read by the worker from its path; a network stream is read here.
            if isinstance(blob, LocalBlob):
                source: str | bytes = str(blob.path)
                head = contents(blob.stream)
            else:
                source = head = blob.stream.read()
        finally:
            blob.stream.close()
        layout = _layout(head)
        estimate = 0  # the worker refuses what has no header we know before decoding it
        if layout is not None:
            if layout.width * layout.height > self._max_pixels:
                raise TooLarge(
                    f"the original is {layout.width}x{layout.height} pixels, more than the "
                    f"limit of {self._max_pixels}: it cannot be rendered"
                )
            estimate = image_checks.decode_bytes(layout, _draft_scale(layout, height))
        try:
            thumb = self._pool.run(self._render, source, height, format, estimate=estimate)
        except OverBudget as e:
            raise TooLarge(f"the thumbnail cannot be rendered: {e}") from None
        except Busy as e:
            raise Unavailable(str(e)) from None
        except TimedOut:
            raise RenderTimedOut(
                f"the thumbnail render timed out after {self._pool.timeout:g} s; try again"
            ) from None
        except (WorkerDied, MemoryError) as e:
            raise RenderFailed(f"could not render the thumbnail: out of memory ({e})") from None
        except FileNotFoundError:  # the worker opens the path: a delete got there first
            raise NotFound("the image was deleted while its thumbnail was being rendered") from None
        except DECODE_ERRORS as e:
            raise RenderFailed(f"could not render the thumbnail: {e}") from e
        self._blobs.put(target_key, thumb.data, thumb.content_type)
        return RenderedThumbnail(
            content_type=thumb.content_type,
            size_bytes=len(thumb.data),
            width=thumb.width,
            height=thumb.height,
            sha256=hashlib.sha256(thumb.data).hexdigest(),
        )

    def close(self) -> None:
        self._pool.close()


def _draft_scale(layout: image_checks.Layout, height: int) -> int:
    """The 1/n scale render_thumbnail's JPEG draft decodes at (1 for other formats)."""
    if layout.format != "JPEG":
        return 1
    out_h = min(height, layout.height)
    out_w = max(1, round(layout.width * out_h / layout.height))
    room = min(layout.width / (out_w * JPEG_DRAFT_GAP), layout.height / (out_h * JPEG_DRAFT_GAP))
    return next((s for s in (8, 4, 2) if s <= room), 1)
