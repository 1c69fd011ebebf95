"""Placeholders for images uploaded before uploads made them (`imagify backfill-placeholders`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from imagify.domain.errors import DomainError
from imagify.domain.model import Image
from imagify.domain.ports import BlobStorage, ImageInspector, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache

log = logging.getLogger(__name__)
BATCH = 50


@dataclass
class BackfillReport:
    filled: int = 0
    failed: int = 0

    def summary(self) -> str:
        failed = f"; {self.failed} could not be read or decoded" if self.failed else ""
        return f"{self.filled} placeholders made{failed}"


class PlaceholderBackfill:
    """Decodes each original without a placeholder (a JPEG at reduced scale, one at a time, within the
    decode budgets) and stores its placeholder."""

    def __init__(
        self, uow: UnitOfWorkFactory, blobs: BlobStorage, inspector: ImageInspector, cache: ReadCache
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._inspector = inspector
        self._cache = cache

    def run(self, on_image: Callable[[Image, str | None], None] | None = None) -> BackfillReport:
        """Every image in id order, in batches; `on_image(image, error)` after each."""
        report, after = BackfillReport(), ""
        while True:
            with self._uow() as uow:
                batch = uow.images.without_placeholder(after, BATCH)
            if not batch:
                return report
            for image in batch:
                after = image.id
                error = self._fill(image)
                report.failed += error is not None
                report.filled += error is None
                if on_image is not None:
                    on_image(image, error)

    def _fill(self, image: Image) -> str | None:
        try:
            store_placeholder(self._uow, self._blobs, self._inspector, self._cache, image, image.storage_key)
        except DomainError as error:
            return error.detail
        except Exception as error:  # a missing blob is the doctor's to report
            log.warning("no placeholder for %s: %s", image.id, error)
            return f"{type(error).__name__}: {error}"
        return None


def store_placeholder(
    uow: UnitOfWorkFactory, blobs: BlobStorage, inspector: ImageInspector, cache: ReadCache, image: Image, key: str
) -> None:
    """Make the image's placeholder from the blob at `key` (its original, or a thumbnail
    of it) and store it; every process sees it on its next read."""
    blob = blobs.open(key)
    try:
        made = inspector.placeholder(blob.stream)
    finally:
        blob.stream.close()
    with uow() as unit:
        unit.images.set_placeholder(image.id, made)
        unit.commit()
    cache.owner_changed(image.owner_id)
