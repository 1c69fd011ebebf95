"""Storing an image's placeholder, made from one of its blobs (its original, or a thumbnail)."""

from __future__ import annotations

from imagify.domain.model import Image
from imagify.domain.ports import BlobStorage, ImageInspector, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache


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
