"""Use cases on images: upload, list, get, delete, thumbnails and originals."""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from typing import BinaryIO

from imagify.domain.cursors import Page, decode_cursor, encode_cursor
from imagify.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotAnImage,
    NotFound,
    RenderFailed,
    RenderTimedOut,
    Unauthorized,
)
from imagify.domain.formats import negotiate
from imagify.domain.model import Image, RenderedThumbnail, Rendition, User, check_image_id
from imagify.domain.permissions import ThumbnailHeight
from imagify.domain.ports import (
    BlobStorage,
    Clock,
    Cursor,
    IdGenerator,
    ImageInspector,
    LinkStore,
    LockManager,
    Renderer,
    StoredBlob,
    UnitOfWorkFactory,
)
from imagify.domain.read_cache import RECORD_BYTES, ReadCache
from imagify.domain.services.image_store import delete_blobs, delete_images, original_key, owned_image, thumbnail_key
from imagify.domain.services.placeholders import store_placeholder

log = logging.getLogger(__name__)

MAX_PAGE = 100
MAX_FILENAME = 255


def display_filename(name: str | None) -> str:
    """The uploaded name, kept only for display: last path part, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:MAX_FILENAME] or "upload"


def sha256_of(stream: BinaryIO) -> str:
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


class ImageService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStorage,
        links: LinkStore,
        renderer: Renderer,
        inspector: ImageInspector,
        locks: LockManager,
        clock: Clock,
        ids: IdGenerator,
        cache: ReadCache,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._links = links
        self._renderer = renderer
        self._inspector = inspector
        self._locks = locks
        self._clock = clock
        self._ids = ids
        self._cache = cache

    def upload(self, owner: User, filename: str | None, stream: BinaryIO, size: int) -> Image:
        """Check the upload is a supported image, store the bytes, then record it."""
        if size <= 0:
            raise NotAnImage("the upload is empty: send the image in the multipart field 'file'")
        # Refused before anything is decoded or stored when the usage read with the request
        # says so (an owner over quota must not buy decodes); the check that counts is the
        # one below, in the transaction.
        owner.limits.check_upload(owner.usage, size)
        stream.seek(0)
        info = self._inspector.inspect(stream)
        image_id = self._ids.image_id()
        image = Image(
            id=image_id,
            owner_id=_user_id(owner),
            filename=display_filename(filename),
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            size_bytes=size,
            sha256=sha256_of(stream),
            storage_key=original_key(image_id),
            created_at=self._clock.now(),
            placeholder=info.placeholder,
            preview_height=info.preview.height if info.preview else None,
        )
        self._blobs.put(image.storage_key, stream, image.content_type)
        try:
            if info.preview is not None and image.preview_key is not None:
                self._blobs.put(image.preview_key, info.preview.data, info.preview.content_type)
            with self._uow() as uow:
                # Exclusive: a deletion of the owner in flight ends first, then this fails,
                # so no image is kept that nobody can reach; and uploads of one owner take
                # turns, each checking the usage the one before it committed.
                if not uow.users.lock(image.owner_id, exclusive=True):
                    raise Unauthorized("the user of this token no longer exists; log in again")
                current = uow.users.get(image.owner_id)
                if current is None:
                    raise Unauthorized("the user of this token no longer exists; log in again")
                current.limits.check_upload(current.usage, size)
                uow.images.add(image)
                uow.users.add_usage(image.owner_id, 1, size)
                uow.commit()
        except BaseException:
            self._delete_blobs(image.blob_keys)
            raise
        self._cache.owner_changed(image.owner_id)
        return image

    def list(self, owner: User, cursor: str | None, limit: int) -> Page:
        owner_id, key = _user_id(owner), self._page_key(cursor, limit)
        after = key[1]

        def load() -> Page:
            with self._uow() as uow:
                items = uow.images.list_owned(owner_id, after, limit + 1)
            more = len(items) > limit
            items = items[:limit]
            return Page(items, encode_cursor(items[-1]) if more else None)

        page = self._cache.fetch(owner_id, key, load, weight=RECORD_BYTES * (limit + 1))
        assert page is not None
        return page

    def known_page(self, owner: User, cursor: str | None, limit: int) -> Page | None:
        """The page from memory, or None when it needs the database (never blocks: see ReadCache.peek)."""
        return self._cache.peek(_user_id(owner), self._page_key(cursor, limit))  # type: ignore[return-value]

    def get(self, owner: User, image_id: str) -> Image:
        return self._owned(owner, image_id)

    def delete(self, owner: User, image_id: str) -> None:
        self._owned(owner, image_id)
        delete_images(self._uow, self._blobs, self._links, [image_id], self._cache)

    def thumbnail(
        self, owner: User, image_id: str, height: int, accept: str | None = None, format: str | None = None
    ) -> Rendition:
        """The stored thumbnail in the format negotiated from `accept` (or the explicit
        `format`) and the owner's tiers, rendered once on first access."""
        height = ThumbnailHeight(height).value
        image = self._owned(owner, image_id)
        _check_thumbnail_permission(owner, height)
        fmt = negotiate(image.content_type, owner.permissions.formats, accept, format)
        rendition = self._stored_rendition(owner, image_id, height, fmt)
        if rendition is not None:
            return rendition
        with self._locks.hold(f"render:{image_id}:{height}:{fmt}"):
            with self._uow() as uow:
                rendition = uow.renditions.get(image_id, height, fmt)
            if rendition is not None:
                return rendition
            return self._render(image, height, fmt)

    def _render(self, image: Image, height: int, fmt: str) -> Rendition:
        key = thumbnail_key(image.id, height, fmt, self._ids.image_id()[:12])
        started = time.perf_counter()
        try:
            made, source = self._render_from_preview_or_original(image, key, height, fmt)
        except DomainError:
            raise
        except Exception as error:  # a crashed renderer is a bad gateway, not our 500
            log.exception("thumbnail renderer crashed", extra={"image_id": image.id})
            self._delete_blobs([key])
            raise RenderFailed(
                f"the thumbnail renderer crashed ({type(error).__name__}); try again"
            ) from error
        log.info(
            "thumbnail rendered",
            extra={
                "image_id": image.id,
                "thumbnail_height": height,
                "thumbnail_format": fmt,
                "render_source": "preview" if source != image.storage_key else "original",
                "render_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        rendition = Rendition(
            image_id=image.id,
            height=height,
            storage_key=key,
            content_type=made.content_type,
            size_bytes=made.size_bytes,
            pixel_width=made.width,
            pixel_height=made.height,
            sha256=made.sha256,
        )
        try:
            with self._uow() as uow:
                # Shared lock: a delete waits for this row to commit, then removes it and its bytes.
                if uow.images.lock(image.id, exclusive=False) is None:
                    raise NotFound(f"image {image.id!r} was deleted while its thumbnail rendered")
                uow.renditions.add(rendition)
                uow.commit()
        except Conflict:
            # Another process stored this thumbnail first (its lock expired, or none was
            # shared): serve theirs, so every client gets the same bytes.
            self._delete_blobs([key])
            with self._uow() as uow:
                stored = uow.renditions.get(image.id, height, fmt)
            if stored is None:
                raise
            return stored
        except BaseException:
            self._delete_blobs([key])
            raise
        if image.placeholder is None:
            self._placeholder_from(image, rendition)
        return rendition

    def _render_from_preview_or_original(
        self, image: Image, key: str, height: int, fmt: str
    ) -> tuple[RenderedThumbnail, str]:
        """The thumbnail rendered from the preview when it covers the height, and the key
        it was read from. A preview gone or unreadable (a Lambda role that predates
        previews) leaves the original to do; a preview render that timed out does not (the
        original is the larger decode: it would only make the caller wait twice)."""
        source = image.render_source(height)
        try:
            return self._renderer.render(source, key, height, fmt), source
        except RenderTimedOut:
            raise
        except (NotFound, RenderFailed) as error:
            if source == image.storage_key:
                raise
            log.warning("no render from the preview, rendering from the original: %s", error.detail,
                        extra={"image_id": image.id})
            return self._renderer.render(image.storage_key, key, height, fmt), image.storage_key

    def _placeholder_from(self, image: Image, rendition: Rendition) -> None:
        """Give an image without a placeholder (a format the upload check does not decode,
        or an upload older than placeholders) the one of its first thumbnail. Best effort:
        the thumbnail is served either way."""
        try:
            store_placeholder(self._uow, self._blobs, self._inspector, self._cache, image, rendition.storage_key)
        except Exception:  # noqa: BLE001 - the backfill can try again
            log.warning("no placeholder from the thumbnail", extra={"image_id": image.id}, exc_info=True)

    def known_thumbnail(
        self, owner: User, image_id: str, height: int, accept: str | None = None, format: str | None = None
    ) -> Rendition | None:
        """The stored thumbnail from memory, or None when it needs the database or a render.

        Raises as thumbnail() does for what memory can already tell (another's image,
        a height the owner's tiers do not grant).
        """
        height = ThumbnailHeight(height).value
        image = self._known_owned(owner, image_id)
        if image is None:
            return None
        _check_thumbnail_permission(owner, height)
        fmt = negotiate(image.content_type, owner.permissions.formats, accept, format)
        return self._cache.peek(_user_id(owner), ("rendition", image_id, height, fmt))  # type: ignore[return-value]

    def original(self, owner: User, image_id: str) -> Image:
        image = self._owned(owner, image_id)
        _check_original_permission(owner)
        return image

    def known_original(self, owner: User, image_id: str) -> Image | None:
        """The original's record from memory, or None when it needs the database."""
        image = self._known_owned(owner, image_id)
        if image is not None:
            _check_original_permission(owner)
        return image

    def open(self, key: str) -> StoredBlob:
        return self._blobs.open(key)

    def known_blob(self, key: str) -> StoredBlob | None:
        """The blob from memory (small blobs are kept after their first read), else None."""
        return self._blobs.cached(key)

    def _owned(self, owner: User, image_id: str) -> Image:
        image = owned_image(self._uow, self._cache, _user_id(owner), image_id)
        if image is None:
            raise NotFound(f"no image with id {image_id!r}")
        return image

    def _known_owned(self, owner: User, image_id: str) -> Image | None:
        key = ("image", check_image_id(image_id))
        return self._cache.peek(_user_id(owner), key)  # type: ignore[return-value]

    def _stored_rendition(self, owner: User, image_id: str, height: int, fmt: str) -> Rendition | None:
        def load() -> Rendition | None:
            with self._uow() as uow:
                return uow.renditions.get(image_id, height, fmt)

        return self._cache.fetch(_user_id(owner), ("rendition", image_id, height, fmt), load)

    @staticmethod
    def _page_key(cursor: str | None, limit: int) -> tuple[str, Cursor | None, int]:
        """Pages are remembered by where they start, decoded: two spellings of one cursor
        are one entry."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"'limit' must be between 1 and {MAX_PAGE}, got {limit}")
        return ("page", decode_cursor(cursor) if cursor else None, limit)

    def _delete_blobs(self, keys: list[str]) -> None:
        delete_blobs(self._blobs, keys)


def _check_thumbnail_permission(owner: User, height: int) -> None:
    if not owner.permissions.may_see_thumbnail(height):
        allowed = ", ".join(str(h) for h in owner.permissions.thumbnail_heights) or "none"
        raise Forbidden(f"your tiers do not include {height}px thumbnails (allowed heights: {allowed})")


def _check_original_permission(owner: User) -> None:
    if not owner.permissions.original_access:
        raise Forbidden("your tiers do not include access to original images")


def _user_id(user: User) -> int:
    if user.id is None:
        raise ValueError("user has no id")
    return user.id
