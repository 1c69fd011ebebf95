"""The in-process Pillow adapters: the upload inspector and the thumbnail renderer."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from imagify.adapters.pillow_render import (
    DECODE_ERRORS,
    ImageTooLarge,
    InvalidImage,
    UnsupportedImageFormat,
    inspect_image,
    render_thumbnail,
)
from imagify.domain.errors import NotAnImage, RenderFailed, TooLarge, UnsupportedFormat
from imagify.domain.model import ImageInfo, RenderedThumbnail
from imagify.domain.ports import BlobStorage


def _seekable(stream: BinaryIO) -> bool:
    seekable = getattr(stream, "seekable", None)
    return bool(seekable and seekable())


class PillowImageInspector:
    def __init__(self, max_pixels: int) -> None:
        self._max_pixels = max_pixels

    def inspect(self, stream: BinaryIO) -> ImageInfo:
        try:
            content_type, width, height = inspect_image(stream, self._max_pixels)
        except UnsupportedImageFormat as e:
            raise UnsupportedFormat(str(e)) from None
        except InvalidImage as e:
            raise NotAnImage(str(e)) from None
        except ImageTooLarge as e:
            raise TooLarge(str(e)) from None
        return ImageInfo(content_type, width, height)


class PillowRenderer:
    """Renders in a bounded pool of worker threads; Pillow releases the GIL while it works."""

    def __init__(self, blobs: BlobStorage, workers: int = 0, timeout: float = 60.0) -> None:
        self._blobs = blobs
        self._timeout = timeout
        self._workers = workers or os.cpu_count() or 1
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, source_key: str, target_key: str, height: int) -> RenderedThumbnail:
        blob = self._blobs.open(source_key)
        try:
            # A local file is decoded straight from disk (Pillow reads only what it needs,
            # and the original is never held in memory whole); a network stream cannot seek,
            # so it is read into memory first.
            source = blob.stream if _seekable(blob.stream) else blob.stream.read()
            thumb = self._pool().submit(render_thumbnail, source, height).result(self._timeout)
        except TimeoutError:  # before DECODE_ERRORS: TimeoutError is an OSError
            # The worker thread cannot be stopped; it finishes (or fails) on its own, and
            # the pool stays bounded. The request is answered now.
            raise RenderFailed(
                f"the thumbnail render timed out after {self._timeout:g} s; try again"
            ) from None
        except DECODE_ERRORS as e:
            raise RenderFailed(f"could not render the thumbnail: {e}") from e
        finally:
            blob.stream.close()
        self._blobs.put(target_key, thumb.data, thumb.content_type)
        return RenderedThumbnail(
            content_type=thumb.content_type,
            size_bytes=len(thumb.data),
            width=thumb.width,
            height=thumb.height,
            sha256=hashlib.sha256(thumb.data).hexdigest(),
        )

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="imagify-render"
                )
            return self._executor
