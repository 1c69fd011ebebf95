"""Thumbnail formats and upload placeholders.

Revision ID: 0005
Revises: 0004 (re-pointed to 0004, quotas, when both branches merge)
Create Date: 2026-12-03

Renditions get a `format` column ('jpeg', 'png', 'webp', 'avif'; existing rows get theirs
from their content type) and the primary key (image_id, height, format): one stored
thumbnail per height and format. Images get their placeholder (ThumbHash, dominant colour,
aspect ratio), NULL until `imagify backfill-placeholders` fills in older uploads. The
built-in tiers gain `format:webp` (premium) and both formats (enterprise) when they exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {"premium": ["format:webp"], "enterprise": ["format:webp", "format:avif"]}
_FORMAT_OF = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/avif": "avif"}


def upgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.add_column(sa.Column("format", sa.String(8), nullable=False, server_default="jpeg"))
    for content_type, name in _FORMAT_OF.items():
        op.execute(
            sa.text("UPDATE renditions SET format = :name WHERE content_type = :type").bindparams(
                name=name, type=content_type
            )
        )
    with op.batch_alter_table("renditions") as batch:
        batch.drop_constraint("pk_renditions", type_="primary")
        batch.create_primary_key("pk_renditions", ["image_id", "height", "format"])
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("placeholder_thumbhash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("placeholder_color", sa.CHAR(7), nullable=True))
        batch.add_column(sa.Column("placeholder_aspect", sa.Float(), nullable=True))
    tiers = sa.table("tiers", sa.column("name"))
    permissions = sa.table("tier_permissions", sa.column("tier_name"), sa.column("codename"))
    bind = op.get_bind()
    existing = set(bind.execute(sa.select(tiers.c.name)).scalars())
    held = {tuple(row) for row in bind.execute(sa.select(permissions.c.tier_name, permissions.c.codename))}
    rows = [
        {"tier_name": tier, "codename": codename}
        for tier, codenames in GRANTS.items()
        if tier in existing
        for codename in codenames
        if (tier, codename) not in held
    ]
    if rows:
        op.bulk_insert(permissions, rows)


def downgrade() -> None:
    op.execute("DELETE FROM tier_permissions WHERE codename LIKE 'format:%'")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("placeholder_aspect")
        batch.drop_column("placeholder_color")
        batch.drop_column("placeholder_thumbhash")
    # One rendition per height again: the original's default format (the doctor then
    # removes the other formats' blobs as orphans).
    op.execute(
        "DELETE FROM renditions WHERE format <> (CASE (SELECT images.content_type FROM images "
        "WHERE images.id = renditions.image_id) WHEN 'image/png' THEN 'png' WHEN 'image/gif' "
        "THEN 'png' WHEN 'image/webp' THEN 'webp' ELSE 'jpeg' END)"
    )
    with op.batch_alter_table("renditions") as batch:
        batch.drop_constraint("pk_renditions", type_="primary")
        batch.create_primary_key("pk_renditions", ["image_id", "height"])
        batch.drop_column("format")
