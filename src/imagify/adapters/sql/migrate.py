"""Apply the Alembic migrations from code: no alembic.ini, the URL is passed in."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from imagify.adapters.sql.unit_of_work import check_database, make_engine
from imagify.domain.errors import Unavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser treats '%' specially, and URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> tuple[list[str], str | None]:
    """Apply the migrations; the revisions applied (oldest first) and the one the database is at."""
    before = current_revision(url)
    config = alembic_config(url)
    command.upgrade(config, revision)
    after = current_revision(url)
    if after == before:
        return [], after
    steps = ScriptDirectory.from_config(config).iterate_revisions(after, before)
    return [step.revision for step in reversed(list(steps))], after


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None before the first migration."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def check_schema(engine: Engine) -> None:
    """Raise Unavailable unless the database answers and is migrated to the latest revision."""
    check_database(engine)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise Unavailable(f"cannot read the schema revision: {error.orig}") from None
    if current != head_revision():
        raise Unavailable(
            f"the database schema is at revision {current or 'none'}, not {head_revision()}: "
            "run `imagify migrate`"
        )
