"""What several services do with images: the owner-scoped read, deletion with everything
an image owns, and the keys its blobs are stored under."""

from __future__ import annotations

import logging

from imagify.domain.errors import Unavailable
from imagify.domain.model import Image, check_image_id
from imagify.domain.ports import BlobStorage, LinkStore, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache

log = logging.getLogger(__name__)


def original_key(image_id: str) -> str:
    return f"originals/{image_id}"


def thumbnail_key(image_id: str, height: int, format: str, nonce: str) -> str:
    """Each render writes its own key, so a render that loses a race deletes only its own bytes."""
    return f"thumbnails/{image_id}/{height}-{format}-{nonce}"


def delete_images(
    uow_factory: UnitOfWorkFactory,
    blobs: BlobStorage,
    links: LinkStore,
    image_ids: list[str],
    cache: ReadCache,
) -> None:
    """Kill the links first, then the rows, then the bytes: a failure leaves no live link."""
    for image_id in image_ids:
        try:
            links.delete_for_image(image_id)
        except Unavailable as error:
            # Safe to go on: resolving a link re-reads the image row, so the links of a
            # deleted image answer 404, and the link store expires them by their TTL.
            log.warning("links of image %s not deleted now: %s", image_id, error.detail)
        with uow_factory() as uow:
            # The owner's row first, as an upload takes it, so the usage released below
            # and an upload's check never miss each other (and never deadlock).
            owner_id = uow.images.owner_of(image_id)
            if owner_id is not None:
                uow.users.lock(owner_id, exclusive=True)
            # Exclusive first: a thumbnail being recorded now either commits before (and is
            # listed here) or finds the image gone (and deletes its own bytes).
            image = uow.images.lock(image_id, exclusive=True)
            if image is None:
                continue
            keys = image.blob_keys + [r.storage_key for r in uow.renditions.list_for(image_id)]
            uow.renditions.delete_for(image_id)
            uow.images.delete(image_id)
            uow.users.add_usage(image.owner_id, -1, -image.size_bytes)
            uow.commit()
        cache.owner_changed(image.owner_id)
        delete_blobs(blobs, keys)


def owned_image(uow_factory: UnitOfWorkFactory, cache: ReadCache, owner_id: int, image_id: str) -> Image | None:
    """The image if `owner_id` owns it (from memory while nothing changed), else None: the
    one way to read an image for a user, scoped to its owner in memory and in the database."""
    check_image_id(image_id)

    def load() -> Image | None:
        with uow_factory() as uow:
            return uow.images.get(owner_id, image_id)

    return cache.fetch(owner_id, ("image", image_id), load)


def delete_blobs(blobs: BlobStorage, keys: list[str]) -> None:
    for key in keys:
        try:
            blobs.delete(key)
        except Exception:  # the row is gone; an orphaned blob is only wasted space
            log.exception("could not delete blob %s", key)
