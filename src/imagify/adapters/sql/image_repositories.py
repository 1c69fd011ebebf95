"""The image and rendition repositories on SQLAlchemy Core: rows in, domain objects out,
never a commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, Row, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from imagify.adapters.sql.repositories import begin_immediate
from imagify.adapters.sql.tables import images, renditions, users
from imagify.domain.errors import Conflict
from imagify.domain.model import Image, Placeholder, Rendition
from imagify.domain.ports import Cursor
from imagify.domain.quotas import Usage

# The statements every request runs, built once (see repositories).
_IMAGE_BY_ID = select(images).where(images.c.id == bindparam("image_id"))
# The one read of an image on a user's behalf: the owner is part of the lookup.
_OWNED_IMAGE = _IMAGE_BY_ID.where(images.c.owner_id == bindparam("owner_id"))
# Row locks until commit on MySQL. SQLite has no row locks: there lock() takes the
# database's write lock instead (BEGIN IMMEDIATE), which serialises the same two paths.
_IMAGE_BY_ID_EXCLUSIVE = _IMAGE_BY_ID.with_for_update()
_IMAGE_BY_ID_SHARED = _IMAGE_BY_ID.with_for_update(read=True)
_IMAGES_OWNED = (
    select(images)
    .where(images.c.owner_id == bindparam("owner_id"))
    .order_by(images.c.created_at.desc(), images.c.id.desc())
    .limit(bindparam("limit", type_=Integer, literal_execute=True))
)
_IMAGES_OWNED_AFTER = _IMAGES_OWNED.where(
    or_(
        images.c.created_at < bindparam("created_at", type_=images.c.created_at.type),
        and_(
            images.c.created_at == bindparam("created_at", type_=images.c.created_at.type),
            images.c.id < bindparam("image_id"),
        ),
    )
)
_RENDITION = select(renditions).where(
    renditions.c.image_id == bindparam("image_id"),
    renditions.c.height == bindparam("height"),
    renditions.c.format == bindparam("format"),
)



class SqlAlchemyImageRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, image: Image) -> None:
        self._db.execute(
            insert(images).values(
                id=image.id,
                owner_id=image.owner_id,
                filename=image.filename,
                content_type=image.content_type,
                width=image.width,
                height=image.height,
                size_bytes=image.size_bytes,
                sha256=image.sha256,
                storage_key=image.storage_key,
                created_at=image.created_at,
                preview_height=image.preview_height,
                **_placeholder_columns(image.placeholder),
            )
        )

    def get(self, owner_id: int, image_id: str) -> Image | None:
        row = self._db.execute(_OWNED_IMAGE, {"image_id": image_id, "owner_id": owner_id}).first()
        return None if row is None else _image(row)

    def owner_of(self, image_id: str) -> int | None:
        return self._db.execute(select(images.c.owner_id).where(images.c.id == image_id)).scalar()

    def find_any(self, image_id: str) -> Image | None:
        row = self._db.execute(_IMAGE_BY_ID, {"image_id": image_id}).first()
        return None if row is None else _image(row)

    def lock(self, image_id: str, exclusive: bool) -> Image | None:
        begin_immediate(self._db)
        query = _IMAGE_BY_ID_EXCLUSIVE if exclusive else _IMAGE_BY_ID_SHARED
        row = self._db.execute(query, {"image_id": image_id}).first()
        return None if row is None else _image(row)

    def list_owned(self, owner_id: int, after: Cursor | None, limit: int) -> list[Image]:
        """Newest first; `after` continues strictly past the cursor's (created_at, id)."""
        params: dict[str, Any] = {"owner_id": owner_id, "limit": limit}
        if after is None:
            return [_image(row) for row in self._db.execute(_IMAGES_OWNED, params)]
        params |= {"created_at": after.created_at, "image_id": after.image_id}
        return [_image(row) for row in self._db.execute(_IMAGES_OWNED_AFTER, params)]

    def ids_owned(self, owner_id: int) -> list[str]:
        query = (
            select(images.c.id)
            .where(images.c.owner_id == owner_id)
            .order_by(images.c.created_at.desc(), images.c.id.desc())
        )
        return list(self._db.execute(query).scalars())

    def delete(self, image_id: str) -> None:
        self._db.execute(delete(images).where(images.c.id == image_id))

    def usage_by_owner(self, owner_id: int | None = None) -> dict[int, Usage]:
        """What each owner's image rows add up to: the truth the usage counters must match."""
        query = select(images.c.owner_id, func.count(), func.coalesce(func.sum(images.c.size_bytes), 0)).group_by(
            images.c.owner_id
        )
        if owner_id is not None:
            query = query.where(images.c.owner_id == owner_id)
        return {owner: Usage(int(count), int(total)) for owner, count, total in self._db.execute(query)}

    def ids_without_owner(self) -> list[str]:
        query = select(images.c.id).where(images.c.owner_id.not_in(select(users.c.id))).order_by(images.c.id)
        return list(self._db.execute(query).scalars())

    def without_placeholder(self, after_id: str, limit: int) -> list[Image]:
        query = (
            select(images)
            .where(images.c.placeholder_thumbhash.is_(None), images.c.id > after_id)
            .order_by(images.c.id)
            .limit(limit)
        )
        return [_image(row) for row in self._db.execute(query)]

    def without_preview(self, content_type: str, after_id: str, limit: int) -> list[Image]:
        query = (
            select(images)
            .where(images.c.preview_height.is_(None), images.c.content_type == content_type, images.c.id > after_id)
            .order_by(images.c.id)
            .limit(limit)
        )
        return [_image(row) for row in self._db.execute(query)]

    def set_preview(self, image_id: str, height: int) -> None:
        self._db.execute(update(images).where(images.c.id == image_id).values(preview_height=height))

    def set_placeholder(self, image_id: str, placeholder: Placeholder) -> None:
        self._db.execute(
            update(images).where(images.c.id == image_id).values(**_placeholder_columns(placeholder))
        )


class SqlAlchemyRenditionRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, rendition: Rendition) -> None:
        try:
            self._db.execute(
                insert(renditions).values(
                    image_id=rendition.image_id,
                    height=rendition.height,
                    format=rendition.format,
                    storage_key=rendition.storage_key,
                    content_type=rendition.content_type,
                    size_bytes=rendition.size_bytes,
                    pixel_width=rendition.pixel_width,
                    pixel_height=rendition.pixel_height,
                    sha256=rendition.sha256,
                )
            )
        except IntegrityError:
            raise Conflict(
                f"the {rendition.height}px {rendition.format} thumbnail of {rendition.image_id!r} is already stored"
            ) from None

    def get(self, image_id: str, height: int, format: str) -> Rendition | None:
        row = self._db.execute(_RENDITION, {"image_id": image_id, "height": height, "format": format}).first()
        return None if row is None else _rendition(row)

    def list_for(self, image_id: str) -> list[Rendition]:
        query = select(renditions).where(renditions.c.image_id == image_id).order_by(renditions.c.height, renditions.c.format)
        return [_rendition(row) for row in self._db.execute(query)]

    def delete_for(self, image_id: str) -> None:
        self._db.execute(delete(renditions).where(renditions.c.image_id == image_id))


def _image(row: Row[Any]) -> Image:
    return Image(
        id=row.id,
        owner_id=row.owner_id,
        filename=row.filename,
        content_type=row.content_type,
        width=row.width,
        height=row.height,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        storage_key=row.storage_key,
        created_at=row.created_at,
        placeholder=None if row.placeholder_thumbhash is None else Placeholder(
            row.placeholder_thumbhash, row.placeholder_color, row.placeholder_aspect
        ),
        preview_height=row.preview_height,
    )


def _placeholder_columns(placeholder: Placeholder | None) -> dict[str, Any]:
    if placeholder is None:
        return {}
    return {
        "placeholder_thumbhash": placeholder.thumbhash,
        "placeholder_color": placeholder.color,
        "placeholder_aspect": placeholder.aspect_ratio,
    }


def _rendition(row: Row[Any]) -> Rendition:
    return Rendition(
        image_id=row.image_id,
        height=row.height,
        storage_key=row.storage_key,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        pixel_width=row.pixel_width,
        pixel_height=row.pixel_height,
        sha256=row.sha256,
    )
