"""The doctor: find, and on request remove, blobs without rows and rows without blobs.

A crash between storing bytes and recording them (a killed server, a lost database)
leaves a blob no row names; a blob lost outside the application leaves a row whose bytes
are gone. Uploads and renders write the blob first, so a young blob with no row may be
one in flight: only blobs older than `min_age` count as orphaned. A user deletion cut
short leaves images whose owner is gone; a writer killed mid-write leaves a partial one
in the storage (a temporary file, an unfinished upload), counted once older than `min_age`.
A user's usage counters that differ from what their image rows add up to are drift.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from imagify.domain.model import PREVIEWS, Image, Rendition
from imagify.domain.ports import BlobStorage, Clock, LinkStore, UnitOfWorkFactory
from imagify.domain.quotas import Usage
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.image_store import delete_images

log = logging.getLogger(__name__)

ORPHANED_BLOB = "orphaned blob"
MISSING_ORIGINAL = "missing original"
MISSING_THUMBNAIL = "missing thumbnail"
OWNERLESS_IMAGE = "ownerless image"
USAGE_DRIFT = "usage drift"

ORIGINALS, THUMBNAILS = "originals/", "thumbnails/"  # and model.PREVIEWS
USERS_PAGE = 100


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str
    detail: str
    fixed: bool = False

    def line(self) -> str:
        return f"{self.kind}: {self.key}: {self.detail}" + (" [fixed]" if self.fixed else "")


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    images: int = 0
    thumbnails: int = 0
    blobs: int = 0

    @property
    def unfixed(self) -> int:
        return sum(not f.fixed for f in self.findings)

    def summary(self) -> str:
        checked = f"checked {self.images} images, {self.thumbnails} thumbnails, {self.blobs} blobs"
        if not self.findings:
            return f"{checked}: no problems found"
        kinds = Counter(f.kind for f in self.findings)
        order = [MISSING_ORIGINAL, MISSING_THUMBNAIL, OWNERLESS_IMAGE, ORPHANED_BLOB, USAGE_DRIFT]
        ordered = sorted(kinds, key=lambda k: (order.index(k) if k in order else len(order), k))
        found = ", ".join(f"{kinds[k]} {k}{'s' if kinds[k] > 1 else ''}" for k in ordered)
        fixed = len(self.findings) - self.unfixed
        if fixed == len(self.findings):
            outcome = "all fixed"
        elif fixed:
            outcome = f"{fixed} fixed, {self.unfixed} left"
        else:
            outcome = "none fixed (run with --fix to remove them)"
        return f"{checked}: {len(self.findings)} problems ({found}); {outcome}"


class DoctorService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStorage,
        links: LinkStore,
        clock: Clock,
        cache: ReadCache,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._links = links
        self._clock = clock
        self._cache = cache

    def examine(
        self,
        fix: bool = False,
        min_age: timedelta = timedelta(hours=1),
        on_finding: Callable[[Finding], None] | None = None,
    ) -> Report:
        """Compare rows and blobs; with `fix`, remove orphaned blobs and rows without bytes.

        An image whose original is gone loses its row, its thumbnails and its links; a
        thumbnail row whose blob is gone is removed, so the thumbnail renders again.
        """
        report = Report()

        def found(finding: Finding) -> None:
            report.findings.append(finding)
            if on_finding is not None:
                on_finding(finding)

        # List the blobs first: a row read afterwards names a blob that already existed,
        # unless it is brand new, which `exists` settles before anything is reported.
        stored = set(self._stored_keys(None))
        if min_age > timedelta(0):
            old_enough = set(self._stored_keys(self._clock.now() - min_age)) & stored
        else:
            old_enough = stored
        report.blobs = len(stored)

        referenced: set[str] = set()
        for owner, image, renditions in self._rows():
            report.images += 1
            report.thumbnails += len(renditions)
            referenced.update(image.blob_keys)
            referenced.update(r.storage_key for r in renditions)
            if image.storage_key not in stored and not self._blobs.exists(image.storage_key):
                if (finding := self._missing_original(owner, image, fix)) is not None:
                    found(finding)
                continue
            for rendition in renditions:
                key = rendition.storage_key
                if key not in stored and not self._blobs.exists(key):
                    if (finding := self._missing_thumbnail(rendition, fix)) is not None:
                        found(finding)

        for image, renditions in self._ownerless():
            report.images += 1
            report.thumbnails += len(renditions)
            # removed with the image, not again as orphans
            referenced.update(image.blob_keys)
            referenced.update(r.storage_key for r in renditions)
            found(self._ownerless_image(image, renditions, fix))

        for key in sorted(old_enough - referenced):
            if not self._is_referenced(key):  # a row committed since the pass above
                found(self._orphan(key, fix))

        started_before = self._clock.now() - min_age if min_age > timedelta(0) else None
        for leftover in self._blobs.leftovers(started_before):
            if fix:
                self._blobs.remove_leftover(leftover)
            detail = "left by a write that never finished" + ("; removed it" if fix else "")
            found(Finding(leftover.kind, leftover.key, detail, fixed=fix))

        for finding in self._usage_drift(fix):
            found(finding)
        return report

    # Usage counters

    def _usage_drift(self, fix: bool) -> Iterator[Finding]:
        """Users whose usage counters differ from what their image rows add up to."""
        with self._uow() as uow:
            recorded = uow.users.recorded_usage()
            actual = uow.images.usage_by_owner()
        for user_id in sorted(recorded):
            if recorded[user_id] == actual.get(user_id, Usage()):
                continue
            with self._uow() as uow:
                # Held as an upload holds it: no upload or delete of theirs moves it meanwhile.
                if not uow.users.lock(user_id, exclusive=True):
                    continue
                stored = uow.users.recorded_usage().get(user_id, Usage())
                truth = uow.images.usage_by_owner(user_id).get(user_id, Usage())
                if stored == truth:
                    continue  # an upload or delete in flight during the first read
                detail = (
                    f"user {user_id} is counted {stored.images} images and {stored.storage_bytes} bytes; "
                    f"their images add up to {truth.images} and {truth.storage_bytes}"
                )
                if fix:
                    uow.users.set_usage(user_id, truth)
                    uow.commit()
                    detail += "; set the counters to match"
            if fix:
                self._cache.owner_changed(user_id)
            yield Finding(USAGE_DRIFT, f"user {user_id}", detail, fixed=fix)

    # The row side

    def _rows(self) -> Iterator[tuple[str, Image, list[Rendition]]]:
        """(owner's username, image, its renditions) for every user's images."""
        after: str | None = None
        while True:
            with self._uow() as uow:
                users = uow.users.list(after, USERS_PAGE)
                owned = [(u.username, uow.images.ids_owned(u.id)) for u in users if u.id is not None]
            for username, image_ids in owned:
                for image_id in image_ids:
                    with self._uow() as uow:
                        image = uow.images.find_any(image_id)
                        renditions = uow.renditions.list_for(image_id) if image else []
                    if image is not None:
                        yield username, image, renditions
            if len(users) < USERS_PAGE:
                return
            after = users[-1].username

    def _ownerless(self) -> Iterator[tuple[Image, list[Rendition]]]:
        with self._uow() as uow:
            image_ids = uow.images.ids_without_owner()
        for image_id in image_ids:
            with self._uow() as uow:
                image = uow.images.find_any(image_id)
                renditions = uow.renditions.list_for(image_id) if image else []
            if image is not None:
                yield image, renditions

    def _ownerless_image(self, image: Image, renditions: list[Rendition], fix: bool) -> Finding:
        detail = f"image {image.id} ({image.filename!r}) of user {image.owner_id}, who no longer exists"
        if not fix:
            return Finding(OWNERLESS_IMAGE, image.storage_key, detail)
        delete_images(self._uow, self._blobs, self._links, [image.id], self._cache)
        return Finding(
            OWNERLESS_IMAGE,
            image.storage_key,
            f"{detail}; removed the image, its {len(renditions)} thumbnails and its links",
            fixed=True,
        )

    def _missing_original(self, owner: str, image: Image, fix: bool) -> Finding | None:
        with self._uow() as uow:
            current = uow.images.find_any(image.id)
            renditions = uow.renditions.list_for(image.id) if current else []
        if current is None:
            return None  # deleted meanwhile: not a problem
        detail = (
            f"image {image.id} ({image.filename!r} of {owner}) has no stored original"
        )
        if not fix:
            return Finding(MISSING_ORIGINAL, image.storage_key, detail)
        delete_images(self._uow, self._blobs, self._links, [image.id], self._cache)
        return Finding(
            MISSING_ORIGINAL,
            image.storage_key,
            f"{detail}; removed the image, its {len(renditions)} thumbnails and its links",
            fixed=True,
        )

    def _missing_thumbnail(self, rendition: Rendition, fix: bool) -> Finding | None:
        detail = f"the {rendition.height}px thumbnail of image {rendition.image_id} has no stored bytes"
        if not fix:
            return Finding(MISSING_THUMBNAIL, rendition.storage_key, detail)
        with self._uow() as uow:
            # The port deletes an image's renditions together: keep the others.
            kept = [
                r for r in uow.renditions.list_for(rendition.image_id)
                if r.storage_key != rendition.storage_key
            ]
            uow.renditions.delete_for(rendition.image_id)
            for other in kept:
                uow.renditions.add(other)
            uow.commit()
        self._cache.users_changed()  # drops every process's cached thumbnail records
        return Finding(
            MISSING_THUMBNAIL,
            rendition.storage_key,
            f"{detail}; removed its row, so it renders again when next asked for",
            fixed=True,
        )

    # The blob side

    def _stored_keys(self, modified_before: datetime | None) -> Iterator[str]:
        for prefix in (ORIGINALS, PREVIEWS, THUMBNAILS):
            yield from self._blobs.keys(prefix, modified_before)

    def _is_referenced(self, key: str) -> bool:
        """A row names the key; a thumbnail's row counts only while its image's row exists."""
        image_id, height = _parse_key(key)
        if image_id is None:
            return False
        with self._uow() as uow:
            image = uow.images.find_any(image_id)
            if height is None:
                return image is not None and key in image.blob_keys
            return image is not None and any(
                r.storage_key == key for r in uow.renditions.list_for(image_id)
            )

    def _orphan(self, key: str, fix: bool) -> Finding:
        image_id, _ = _parse_key(key)
        what = "original" if key.startswith(ORIGINALS) else "preview" if key.startswith(PREVIEWS) else "thumbnail"
        detail = f"a stored {what} that no row names (image {image_id or 'unknown'})"
        if not fix:
            return Finding(ORPHANED_BLOB, key, detail)
        if image_id is not None and what == "thumbnail":
            with self._uow() as uow:
                if uow.images.find_any(image_id) is None:
                    # A render that finished as its image was deleted may have left a row too.
                    uow.renditions.delete_for(image_id)
                    uow.commit()
                    self._cache.users_changed()
        self._blobs.delete(key)
        return Finding(ORPHANED_BLOB, key, f"{detail}; deleted it", fixed=True)


def _parse_key(key: str) -> tuple[str | None, int | None]:
    """`originals/<id>` and `previews/<id>` -> (id, None);
    `thumbnails/<id>/<height>[-<format>]-<nonce>` -> (id, height)."""
    for prefix in (ORIGINALS, PREVIEWS):
        if key.startswith(prefix):
            image_id = key[len(prefix):]
            return (image_id or None) if "/" not in image_id else None, None
    parts = key[len(THUMBNAILS):].split("/")
    if key.startswith(THUMBNAILS) and len(parts) == 2:
        height = parts[1].split("-", 1)[0]
        if parts[0] and height.isdigit():
            return parts[0], int(height)
    return None, None
