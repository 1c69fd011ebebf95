"""Tier limits, per-user usage, and when each link was made.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

`tiers.max_*` hold a tier's limits (NULL: unlimited; the built-in tiers stay unlimited).
`users.usage_images` and `users.usage_storage_bytes` count a user's images and their
originals' bytes, changed in the same transaction as the image rows (the user's row
locked first) so a quota never overshoots; existing users get theirs from their images.
`links.created_at` lets an owner see when each link was made (NULL for older links).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _datetime() -> sa.types.TypeEngine[object]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("tiers") as batch:
        batch.add_column(sa.Column("max_images", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_storage_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_upload_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_link_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("usage_images", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("usage_storage_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("created_at", _datetime(), nullable=True))
    op.execute(
        "UPDATE users SET"
        " usage_images = (SELECT COUNT(*) FROM images WHERE images.owner_id = users.id),"
        " usage_storage_bytes = (SELECT COALESCE(SUM(images.size_bytes), 0) FROM images"
        " WHERE images.owner_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("created_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("usage_storage_bytes")
        batch.drop_column("usage_images")
    with op.batch_alter_table("tiers") as batch:
        batch.drop_column("max_link_seconds")
        batch.drop_column("max_upload_bytes")
        batch.drop_column("max_storage_bytes")
        batch.drop_column("max_images")
