"""Token versions on users, owners on links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

`users.token_version` is raised by every password change; a token names the version it
was issued under, so changing a password ends every token issued before. `links.owner_id`
records whose image a link opens, so resolving a link reads the image scoped to its owner
and checks that owner's permissions as they are now; existing links get theirs from their
image.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE links SET owner_id = (SELECT images.owner_id FROM images WHERE images.id = links.image_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("owner_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
