"""Upload previews: the upright reduced-scale copy a JPEG's upload check decodes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Images get `preview_height`: the height in pixels of the preview stored at
`previews/<id>`, or NULL when there is none (uploads before this revision, formats without
a reduced-scale decode, and JPEGs too small for one to help). Thumbnails it covers render
from it instead of the original.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("preview_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    # The preview blobs stay behind: `imagify doctor --fix` removes them as orphans.
    with op.batch_alter_table("images") as batch:
        batch.drop_column("preview_height")
