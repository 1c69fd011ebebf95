"""The account repositories on SQLAlchemy Core (users, tiers, logged-out tokens): rows in,
domain objects out, never a commit. Images and renditions are in image_repositories."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from sqlalchemy.exc import IntegrityError

from imagify.adapters.sql.tables import revoked_tokens, tier_permissions, tiers, user_tiers, users
from imagify.domain.errors import Conflict
from imagify.domain.model import User
from imagify.domain.permissions import Permissions, Tier
from imagify.domain.quotas import LIMIT_NAMES, Limits, Usage


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
_USER_ROW = select(users.c.id).where(users.c.id == bindparam("user_id"))
_ADMIN_ROWS = select(users.c.id).where(users.c.is_admin).with_for_update()
_TIER_ROWS = select(tiers.c.name).where(tiers.c.name.in_(bindparam("names", expanding=True)))
_LIVE_REVOKED = select(revoked_tokens.c.token_id).where(
    revoked_tokens.c.user_id == bindparam("user_id"),
    revoked_tokens.c.expires_at > bindparam("now", type_=revoked_tokens.c.expires_at.type),
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
        begin_immediate(self._db)
        query = _USER_ROW.with_for_update(read=not exclusive)
        return self._db.execute(query, {"user_id": user_id}).first() is not None

    def lock_admins(self) -> int:
        begin_immediate(self._db)
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
        begin_immediate(self._db)
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


def begin_immediate(db: Connection) -> None:
    """On SQLite, take the database's write lock now: it has no row locks to take.

    pysqlite opens a transaction only at the first write, so the reads before it would
    see a state another writer may change before this one writes.
    """
    if db.dialect.name == "sqlite" and not db.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        db.exec_driver_sql("BEGIN IMMEDIATE")


def _limits(row: Row[Any]) -> Limits:
    return Limits(**{name: getattr(row, name) for name in LIMIT_NAMES})
