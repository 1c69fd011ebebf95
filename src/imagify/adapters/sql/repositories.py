"""The repositories on SQLAlchemy Core: rows in, domain objects out, never a commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from sqlalchemy.exc import IntegrityError

from imagify.adapters.sql.tables import (
    images, renditions, revoked_tokens, tier_permissions, tiers, user_tiers, users,
)
from imagify.domain.errors import Conflict
from imagify.domain.model import Image, Placeholder, Rendition, User
from imagify.domain.permissions import Permissions, Tier
from imagify.domain.quotas import LIMIT_NAMES, Limits, Usage
from imagify.domain.ports import Cursor


# The statements every request runs, built once: SQLAlchemy then reuses their cache keys
# and compiled SQL instead of rebuilding them per call.
_TIER_LIMITS = [tiers.c[name] for name in LIMIT_NAMES]
_USER_WITH_PERMISSIONS = select(
    users, user_tiers.c.tier_name, tier_permissions.c.codename, *_TIER_LIMITS
).select_from(
    users.outerjoin(user_tiers, user_tiers.c.user_id == users.c.id)
    .outerjoin(tier_permissions, tier_permissions.c.tier_name == user_tiers.c.tier_name)
    .outerjoin(tiers, tiers.c.name == user_tiers.c.tier_name)
)
_USER_BY_ID = _USER_WITH_PERMISSIONS.where(users.c.id == bindparam("key"))
_USER_BY_NAME = _USER_WITH_PERMISSIONS.where(users.c.username == bindparam("key"))
_IMAGE_BY_ID = select(images).where(images.c.id == bindparam("image_id"))
# The one read of an image on a user's behalf: the owner is part of the lookup.
_OWNED_IMAGE = _IMAGE_BY_ID.where(images.c.owner_id == bindparam("owner_id"))
# Row locks until commit on MySQL. SQLite has no row locks: there lock() takes the
# database's write lock instead (BEGIN IMMEDIATE), which serialises the same two paths.
_IMAGE_BY_ID_EXCLUSIVE = _IMAGE_BY_ID.with_for_update()
_IMAGE_BY_ID_SHARED = _IMAGE_BY_ID.with_for_update(read=True)
_USER_ROW = select(users.c.id).where(users.c.id == bindparam("user_id"))
_ADMIN_ROWS = select(users.c.id).where(users.c.is_admin).with_for_update()
_TIER_ROWS = select(tiers.c.name).where(tiers.c.name.in_(bindparam("names", expanding=True)))
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
_LIVE_REVOKED = select(revoked_tokens.c.token_id).where(
    revoked_tokens.c.user_id == bindparam("user_id"),
    revoked_tokens.c.expires_at > bindparam("now", type_=revoked_tokens.c.expires_at.type),
)
_RENDITION = select(renditions).where(
    renditions.c.image_id == bindparam("image_id"),
    renditions.c.height == bindparam("height"),
    renditions.c.format == bindparam("format"),
)


class SqlAlchemyUserRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, user: User) -> User:
        try:
            result = self._db.execute(
                insert(users).values(
                    username=user.username,
                    password_hash=user.password_hash,
                    is_admin=user.is_admin,
                    created_at=datetime.now(UTC),
                )
            )
        except IntegrityError:  # a concurrent create of the same name won the race
            raise Conflict(f"a user named {user.username!r} already exists") from None
        user_id = result.inserted_primary_key[0]
        self._insert_tiers(user_id, user.tiers)
        added = self.get(user_id)
        assert added is not None
        return added

    def get(self, user_id: int) -> User | None:
        return self._read_one(_USER_BY_ID, {"key": user_id})

    def get_by_username(self, username: str) -> User | None:
        return self._read_one(_USER_BY_NAME, {"key": username})

    def list(self, after_username: str | None, limit: int, search: str | None = None) -> list[User]:
        query = select(users).order_by(users.c.username).limit(limit)
        if after_username is not None:
            query = query.where(users.c.username > after_username)
        if search:
            query = query.where(func.lower(users.c.username).contains(search.lower(), autoescape=True))
        return self._read(query)

    def save(self, user: User) -> None:
        if user.id is None:
            raise ValueError("cannot save a user that was never added")
        self._db.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(username=user.username, is_admin=user.is_admin)
        )
        self._db.execute(delete(user_tiers).where(user_tiers.c.user_id == user.id))
        self._insert_tiers(user.id, user.tiers)

    def set_password(self, user_id: int, password_hash: str) -> None:
        self._db.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, token_version=users.c.token_version + 1)
        )

    def delete(self, user_id: int) -> None:
        self._db.execute(delete(user_tiers).where(user_tiers.c.user_id == user_id))
        self._db.execute(delete(revoked_tokens).where(revoked_tokens.c.user_id == user_id))
        self._db.execute(delete(users).where(users.c.id == user_id))

    def count_admins(self) -> int:
        query = select(func.count()).select_from(users).where(users.c.is_admin)
        return self._db.execute(query).scalar_one()

    def count_holding_tier(self, tier_name: str) -> int:
        query = select(func.count()).select_from(user_tiers).where(user_tiers.c.tier_name == tier_name)
        return self._db.execute(query).scalar_one()

    def lock(self, user_id: int, exclusive: bool) -> bool:
        _begin_immediate(self._db)
        query = _USER_ROW.with_for_update(read=not exclusive)
        return self._db.execute(query, {"user_id": user_id}).first() is not None

    def lock_admins(self) -> int:
        _begin_immediate(self._db)
        return len(self._db.execute(_ADMIN_ROWS).all())

    def add_usage(self, user_id: int, images: int, storage_bytes: int) -> None:
        self._db.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                usage_images=users.c.usage_images + images,
                usage_storage_bytes=users.c.usage_storage_bytes + storage_bytes,
            )
        )

    def set_usage(self, user_id: int, usage: Usage) -> None:
        self._db.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(usage_images=usage.images, usage_storage_bytes=usage.storage_bytes)
        )

    def recorded_usage(self) -> dict[int, Usage]:
        query = select(users.c.id, users.c.usage_images, users.c.usage_storage_bytes)
        return {row.id: Usage(row.usage_images, row.usage_storage_bytes) for row in self._db.execute(query)}

    def _insert_tiers(self, user_id: int, tier_names: Iterable[str]) -> None:
        rows = [{"user_id": user_id, "tier_name": name} for name in dict.fromkeys(tier_names)]
        if rows:
            self._db.execute(insert(user_tiers), rows)

    def _read_one(self, query: Select[Any], params: dict[str, Any]) -> User | None:
        """One user with tiers and permissions in one query: every request authenticates."""
        rows = self._db.execute(query, params).all()
        if not rows:
            return None
        tier_limits = {row.tier_name: _limits(row) for row in rows if row.tier_name is not None}
        codenames = {row.codename for row in rows if row.codename is not None}
        row = rows[0]
        return User(
            id=row.id,
            username=row.username,
            password_hash=row.password_hash,
            is_admin=bool(row.is_admin),
            tiers=sorted(tier_limits),
            permissions=Permissions(frozenset(codenames)),
            token_version=row.token_version,
            limits=Limits.most_generous(tier_limits.values()),
            usage=Usage(row.usage_images, row.usage_storage_bytes),
            revoked_until=row.revoked_until,
        )

    def _read(self, query: Select[Any]) -> list[User]:
        """The users a query selects, with their tiers and permissions: two queries in all."""
        rows = self._db.execute(query).all()
        if not rows:
            return []
        held = self._db.execute(
            select(user_tiers.c.user_id, user_tiers.c.tier_name, tier_permissions.c.codename, *_TIER_LIMITS)
            .select_from(user_tiers)
            .outerjoin(tier_permissions, tier_permissions.c.tier_name == user_tiers.c.tier_name)
            .outerjoin(tiers, tiers.c.name == user_tiers.c.tier_name)
            .where(user_tiers.c.user_id.in_([row.id for row in rows]))
        ).all()
        tier_limits: dict[int, dict[str, Limits]] = defaultdict(dict)
        codenames: dict[int, set[str]] = defaultdict(set)
        for held_row in held:
            tier_limits[held_row.user_id][held_row.tier_name] = _limits(held_row)
            if held_row.codename is not None:
                codenames[held_row.user_id].add(held_row.codename)
        return [
            User(
                id=row.id,
                username=row.username,
                password_hash=row.password_hash,
                is_admin=bool(row.is_admin),
                tiers=sorted(tier_limits[row.id]),
                permissions=Permissions(frozenset(codenames[row.id])),
                token_version=row.token_version,
                limits=Limits.most_generous(tier_limits[row.id].values()),
                usage=Usage(row.usage_images, row.usage_storage_bytes),
                revoked_until=row.revoked_until,
            )
            for row in rows
        ]


class SqlAlchemyRevokedTokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, user_id: int, token_id: str, expires_at: datetime) -> None:
        self._db.execute(
            update(users)
            .where(users.c.id == user_id, or_(users.c.revoked_until.is_(None), users.c.revoked_until < expires_at))
            .values(revoked_until=expires_at)
        )
        try:
            self._db.execute(
                insert(revoked_tokens).values(user_id=user_id, token_id=token_id, expires_at=expires_at)
            )
        except IntegrityError:
            pass  # revoked at the same moment by another request: revoked all the same

    def live(self, user_id: int, now: datetime) -> frozenset[str]:
        return frozenset(self._db.execute(_LIVE_REVOKED, {"user_id": user_id, "now": now}).scalars())

    def delete_expired(self, user_id: int, now: datetime) -> None:
        self._db.execute(
            delete(revoked_tokens).where(revoked_tokens.c.user_id == user_id, revoked_tokens.c.expires_at <= now)
        )


class SqlAlchemyTierRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, tier: Tier) -> None:
        try:
            self._db.execute(insert(tiers).values(name=tier.name, **tier.limits.as_dict()))
        except IntegrityError:
            raise Conflict(f"a tier named {tier.name!r} already exists") from None
        self._insert_permissions(tier)

    def get(self, name: str) -> Tier | None:
        found = self._read(tiers.c.name == name)
        return found[0] if found else None

    def list(self) -> list[Tier]:
        return self._read(None)

    def save(self, tier: Tier) -> None:
        self._db.execute(update(tiers).where(tiers.c.name == tier.name).values(**tier.limits.as_dict()))
        self._db.execute(delete(tier_permissions).where(tier_permissions.c.tier_name == tier.name))
        self._insert_permissions(tier)

    def delete(self, name: str) -> None:
        self._db.execute(delete(tier_permissions).where(tier_permissions.c.tier_name == name))
        self._db.execute(delete(tiers).where(tiers.c.name == name))

    def lock(self, names: Iterable[str], exclusive: bool) -> set[str]:
        _begin_immediate(self._db)
        query = _TIER_ROWS.with_for_update(read=not exclusive)
        return set(self._db.execute(query, {"names": sorted(set(names))}).scalars())

    def _insert_permissions(self, tier: Tier) -> None:
        rows = [{"tier_name": tier.name, "codename": c} for c in sorted(tier.permissions.codenames)]
        if rows:
            self._db.execute(insert(tier_permissions), rows)

    def _read(self, condition: ColumnElement[bool] | None) -> list[Tier]:
        query = (
            select(tiers.c.name, tier_permissions.c.codename, *_TIER_LIMITS)
            .select_from(tiers)
            .outerjoin(tier_permissions, tier_permissions.c.tier_name == tiers.c.name)
            .order_by(tiers.c.name)
        )
        if condition is not None:
            query = query.where(condition)
        codenames: dict[str, set[str]] = {}
        limits: dict[str, Limits] = {}
        for row in self._db.execute(query):
            codenames.setdefault(row.name, set())
            limits[row.name] = _limits(row)
            if row.codename is not None:
                codenames[row.name].add(row.codename)
        return [Tier(name, Permissions(frozenset(c)), limits[name]) for name, c in codenames.items()]


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
        _begin_immediate(self._db)
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


def _begin_immediate(db: Connection) -> None:
    """On SQLite, take the database's write lock now: it has no row locks to take.

    pysqlite opens a transaction only at the first write, so the reads before it would
    see a state another writer may change before this one writes.
    """
    if db.dialect.name == "sqlite" and not db.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        db.exec_driver_sql("BEGIN IMMEDIATE")


def _limits(row: Row[Any]) -> Limits:
    return Limits(**{name: getattr(row, name) for name in LIMIT_NAMES})


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
