"""What uploads now make, made for images uploaded before: placeholders
(`imagify backfill-placeholders`) and previews (`imagify backfill-previews`).

Each backfill walks the images it may concern in id order, in batches, one decode at a
time within the decode budgets, and is safe to run while the API serves and to run again.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace

from imagify.domain.errors import DomainError
from imagify.domain.model import Image
from imagify.domain.ports import BlobStorage, ImageInspector, UnitOfWork, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.placeholders import store_placeholder

log = logging.getLogger(__name__)
BATCH = 50


@dataclass
class BackfillReport:
    noun: str
    filled: int = 0
    needless: int = 0  # looked at, and nothing to make (a preview would not pay)
    failed: int = 0

    def summary(self) -> str:
        needless = f"; {self.needless} images need none" if self.needless else ""
        failed = f"; {self.failed} could not be read or decoded" if self.failed else ""
        return f"{self.filled} {self.noun} made{needless}{failed}"


class _Backfill(ABC):
    """The walk every backfill shares; a subclass says which images and what to make."""

    noun = ""

    def __init__(
        self, uow: UnitOfWorkFactory, blobs: BlobStorage, inspector: ImageInspector, cache: ReadCache
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._inspector = inspector
        self._cache = cache

    def run(self, on_image: Callable[[Image, str | None], None] | None = None) -> BackfillReport:
        """Every image concerned, in id order; `on_image(image, error)` after each."""
        report, after = BackfillReport(self.noun), ""
        while True:
            with self._uow() as uow:
                batch = self._batch(uow, after)
            if not batch:
                return report
            for image in batch:
                after = image.id
                try:
                    made = self._fill(image)
                    error = None
                except DomainError as failure:
                    error = failure.detail
                except Exception as failure:  # a missing blob is the doctor's to report
                    log.warning("no %s for %s: %s", self.noun, image.id, failure)
                    error = f"{type(failure).__name__}: {failure}"
                report.failed += error is not None
                report.filled += error is None and made
                report.needless += error is None and not made
                if on_image is not None:
                    on_image(image, error)

    @abstractmethod
    def _batch(self, uow: UnitOfWork, after: str) -> list[Image]:
        """Up to BATCH images concerned, by id after `after`."""

    @abstractmethod
    def _fill(self, image: Image) -> bool:
        """Make what `image` lacks; False when there was nothing worth making."""


class PlaceholderBackfill(_Backfill):
    """Decodes each original without a placeholder (a JPEG at reduced scale) and stores
    its placeholder."""

    noun = "placeholders"

    def _batch(self, uow: UnitOfWork, after: str) -> list[Image]:
        return uow.images.without_placeholder(after, BATCH)

    def _fill(self, image: Image) -> bool:
        store_placeholder(self._uow, self._blobs, self._inspector, self._cache, image, image.storage_key)
        return True


class PreviewBackfill(_Backfill):
    """Runs the upload check again on each JPEG without a preview that is large enough to
    have one, and stores the preview it keeps (see README, Previews)."""

    noun = "previews"

    def _batch(self, uow: UnitOfWork, after: str) -> list[Image]:
        return uow.images.without_preview("image/jpeg", after, BATCH)

    def _fill(self, image: Image) -> bool:
        if not self._inspector.may_keep_preview(image.width, image.height):
            return False  # too small: no decode needed to know
        blob = self._blobs.open(image.storage_key)
        try:
            preview = self._inspector.inspect(blob.stream).preview
        finally:
            blob.stream.close()
        if preview is None:  # not worth keeping: 0 says so, so no later run decodes it again
            with self._uow() as uow:
                uow.images.set_preview(image.id, 0)
                uow.commit()
            return False
        key = replace(image, preview_height=preview.height).preview_key
        assert key is not None  # a preview has a height
        self._blobs.put(key, preview.data, preview.content_type)
        with self._uow() as uow:
            # Exclusive, as a deletion takes it: either the deletion comes first and the
            # row is gone (the preview is removed here), or it comes after and finds the
            # preview named by the row (and removes it with the image).
            if uow.images.lock(image.id, exclusive=True) is None:
                self._blobs.delete(key)
                return False
            uow.images.set_preview(image.id, preview.height)
            uow.commit()
        self._cache.owner_changed(image.owner_id)
        return True
