"""Revoked tokens: a logout ends its own token, not the user's others.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10

`revoked_tokens` holds, under each user, the id of every token logged out before it
expired, with that expiry. A token whose id is listed is refused; a row past its expiry
is useless and is deleted at the user's next logout. No foreign key (PlanetScale): a
user's rows are deleted with the user by the application. `users.revoked_until`, the
latest expiry among a user's rows, spares the lookup for the users with none live.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("revoked_until", DATETIME, nullable=True))
    op.create_table(
        "revoked_tokens",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("expires_at", DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "token_id", name="pk_revoked_tokens"),
        **MYSQL,
    )


def downgrade() -> None:
    # Tokens logged out work again until they expire.
    op.drop_table("revoked_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("revoked_until")
