"""User ids are never given out twice, on SQLite too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

A bearer token names its user by id. SQLite, without AUTOINCREMENT, gives a new row the
highest id plus one, so deleting the newest user and creating another handed the old
user's tokens to the new one. AUTOINCREMENT keeps the highest id ever used. MySQL and
MariaDB (InnoDB) already never reuse one: their counter survives restarts (MySQL 8,
MariaDB 10.2.4 and later), so there is nothing to change there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_users(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # SQLite cannot alter a column: batch mode copies the table into a new one, keeping
    # its rows, ids, constraints and indexes; AUTOINCREMENT then starts past the highest id.
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_users(True)


def downgrade() -> None:
    _rebuild_users(False)
