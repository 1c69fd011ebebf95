"""The initial schema and the built-in tiers.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

No foreign keys (PlanetScale): the application deletes dependants itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

BUILT_IN_TIERS = {
    "basic": ["thumbnail:200"],
    "premium": ["thumbnail:200", "thumbnail:400"],
    "enterprise": [
        "thumbnail:200",
        "thumbnail:400",
        "can_access_original_image",
        "can_generate_expiring_link",
    ],
}


def _datetime() -> sa.types.TypeEngine[object]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        **MYSQL,
    )
    tiers = op.create_table(
        "tiers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_tiers"),
        **MYSQL,
    )
    tier_permissions = op.create_table(
        "tier_permissions",
        sa.Column("tier_name", sa.String(64), nullable=False),
        sa.Column("codename", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tier_name", "codename", name="pk_tier_permissions"),
        **MYSQL,
    )
    op.create_table(
        "user_tiers",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tier_name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "tier_name", name="pk_user_tiers"),
        **MYSQL,
    )
    op.create_index("ix_user_tiers_tier_name", "user_tiers", ["tier_name"])
    op.create_table(
        "images",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("created_at", _datetime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        **MYSQL,
    )
    op.create_index("ix_images_owner_created", "images", ["owner_id", "created_at", "id"])
    op.create_table(
        "renditions",
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("height", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("pixel_width", sa.Integer(), nullable=False),
        sa.Column("pixel_height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.PrimaryKeyConstraint("image_id", "height", name="pk_renditions"),
        **MYSQL,
    )
    op.create_table(
        "links",
        sa.Column("token_hash", sa.CHAR(64), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("expires_at", _datetime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_links"),
        **MYSQL,
    )
    op.create_index("ix_links_image_id", "links", ["image_id"])
    op.create_index("ix_links_expires_at", "links", ["expires_at"])

    op.bulk_insert(tiers, [{"name": name} for name in BUILT_IN_TIERS])
    op.bulk_insert(
        tier_permissions,
        [
            {"tier_name": name, "codename": codename}
            for name, codenames in BUILT_IN_TIERS.items()
            for codename in codenames
        ],
    )


def downgrade() -> None:
    for table in ("links", "renditions", "images", "user_tiers", "tier_permissions", "tiers", "users"):
        op.drop_table(table)
