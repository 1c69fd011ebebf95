"""The schema as SQLAlchemy Core tables: no foreign keys, so it runs on PlanetScale too.

Rows are mapped to domain objects by hand in the repositories. The migrations under
`migrations/versions` are the source of truth for the database; keep both in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CHAR,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# utf8mb4_bin makes MySQL compare names and ids byte for byte, as SQLite does.
MYSQL_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC with microseconds, read back as timezone-aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value  # naive values are taken to be UTC already
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Raised by every password change; tokens name the version they were issued under.
    Column("token_version", Integer, nullable=False, server_default="0"),
    # What the user's images take: changed with the image rows, this row locked first.
    Column("usage_images", BigInteger, nullable=False, server_default="0"),
    Column("usage_storage_bytes", BigInteger, nullable=False, server_default="0"),
    # The latest expiry of the user's logged-out tokens (revoked_tokens): until then a
    # token's id is looked up there; NULL or past, there is nothing to look up.
    Column("revoked_until", UtcDateTime, nullable=True),
    sqlite_autoincrement=True,  # ids are never reused: a token names its user by id
    **MYSQL_OPTIONS,
)

tiers = Table(
    "tiers",
    metadata,
    Column("name", String(64), primary_key=True),
    # The tier's limits; NULL is unlimited.
    Column("max_images", BigInteger, nullable=True),
    Column("max_storage_bytes", BigInteger, nullable=True),
    Column("max_upload_bytes", BigInteger, nullable=True),
    Column("max_link_seconds", Integer, nullable=True),
    **MYSQL_OPTIONS,
)

tier_permissions = Table(
    "tier_permissions",
    metadata,
    Column("tier_name", String(64), primary_key=True),
    Column("codename", String(64), primary_key=True),
    **MYSQL_OPTIONS,
)

user_tiers = Table(
    "user_tiers",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=False),
    Column("tier_name", String(64), primary_key=True),
    Index("ix_user_tiers_tier_name", "tier_name"),
    **MYSQL_OPTIONS,
)

images = Table(
    "images",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", Integer, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", CHAR(64), nullable=False),
    Column("storage_key", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The upload's placeholder (migration 0005); NULL until backfilled for older images.
    Column("placeholder_thumbhash", String(64), nullable=True),
    Column("placeholder_color", CHAR(7), nullable=True),
    Column("placeholder_aspect", Float, nullable=True),
    # The height of the upload's preview at previews/<id> (migration 0006); NULL: none; 0: none,
    # and `imagify backfill-previews` found none worth keeping.
    Column("preview_height", Integer, nullable=True),
    # Serves a user's images newest first, keyset-paginated.
    Index("ix_images_owner_created", "owner_id", "created_at", "id"),
    **MYSQL_OPTIONS,
)

renditions = Table(
    "renditions",
    metadata,
    Column("image_id", String(32), primary_key=True),
    Column("height", Integer, primary_key=True, autoincrement=False),
    Column("format", String(8), primary_key=True, server_default="jpeg"),  # 'jpeg', 'png', 'webp', 'avif'
    Column("storage_key", String(255), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("pixel_width", Integer, nullable=False),
    Column("pixel_height", Integer, nullable=False),
    Column("sha256", CHAR(64), nullable=False),
    **MYSQL_OPTIONS,
)

links = Table(
    "links",
    metadata,
    Column("token_hash", CHAR(64), primary_key=True),  # sha256 hex; the token itself is never stored
    Column("image_id", String(32), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("owner_id", Integer, nullable=True),  # NULL only for links made before migration 0003
    Column("created_at", UtcDateTime, nullable=True),  # NULL only for links made before 0004
    Index("ix_links_image_id", "image_id"),
    Index("ix_links_expires_at", "expires_at"),
    **MYSQL_OPTIONS,
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    # The user's id: their rows go with them (UserRepository.delete), and are read together.
    Column("user_id", Integer, primary_key=True, autoincrement=False),
    Column("token_id", String(64), primary_key=True),  # the token's `jti` (or its sha256, before ids)
    Column("expires_at", UtcDateTime, nullable=False),  # past it the token ends anyway: the row can go
    **MYSQL_OPTIONS,
)
