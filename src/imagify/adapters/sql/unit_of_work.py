"""The engine, and the unit of work: one connection, one transaction at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool

from imagify.adapters.sql.image_repositories import SqlAlchemyImageRepository, SqlAlchemyRenditionRepository
from imagify.adapters.sql.repositories import (
    SqlAlchemyRevokedTokenRepository,
    SqlAlchemyTierRepository,
    SqlAlchemyUserRepository,
)
from imagify.adapters.sql.sqlite_gate import gated_connection_class
from imagify.domain.errors import Unavailable

SQLITE_BUSY_SECONDS = 10
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA synchronous=NORMAL",
)


# A MySQL server that accepts connections but stops answering must not hold a request
# (and its pooled connection) forever: connect, read and write give up after these.
MYSQL_CONNECT_TIMEOUT = 5
MYSQL_IO_TIMEOUT = 60


# Connections kept open per process. Requests reach the database from anyio's worker
# threads (40 at most): with SQLAlchemy's default of 5, every checkout past the fifth
# under load opened a new connection and closed it again (for SQLite, setting its
# pragmas each time), which cost several times the query itself. A SQLite connection is
# a file handle, so there is one per thread; MySQL's are kept to a share of a server's
# connection limit, and bursts beyond it still open extra ones.
SQLITE_POOL = 40
MYSQL_POOL = 20
MYSQL_OVERFLOW = 20


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database, an in-memory one or a URI."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str, io_timeout: float | None = MYSQL_IO_TIMEOUT) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode, or MySQL/PlanetScale.

    `io_timeout` bounds each MySQL read and write (None: wait forever, for long migrations);
    `connect_timeout`, `read_timeout` or `write_timeout` in the URL's query win.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = (
            {"poolclass": StaticPool} if in_memory else {"pool_size": SQLITE_POOL, "max_overflow": 10}
        )
        # No pre-ping: a SQLite file does not drop connections, and the ping costs a
        # statement per checkout on the hottest paths.
        # Writers queue on a lock in this process (sqlite_gate.py) rather than in the busy handler.
        connect_args = {"check_same_thread": False, "factory": gated_connection_class(SQLITE_BUSY_SECONDS)}
        engine = create_engine(parsed, connect_args=connect_args, **options)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        timeouts: dict[str, float] = {"connect_timeout": MYSQL_CONNECT_TIMEOUT}
        if io_timeout is not None:
            timeouts.update(read_timeout=io_timeout, write_timeout=io_timeout)
        # PlanetScale and most proxies drop idle connections after about five minutes.
        return create_engine(
            parsed,
            pool_size=MYSQL_POOL,
            max_overflow=MYSQL_OVERFLOW,
            pool_pre_ping=True,
            pool_recycle=280,
            isolation_level="READ COMMITTED",
            connect_args={k: v for k, v in timeouts.items() if k not in parsed.query},
        )
    return create_engine(parsed, pool_pre_ping=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def check_database(engine: Engine) -> None:
    """Raise Unavailable unless the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise _unavailable(exc) from exc


class SqlAlchemyUnitOfWork:
    """One connection for the block; the transaction begins on first use, again after commit()."""

    users: SqlAlchemyUserRepository
    tiers: SqlAlchemyTierRepository
    images: SqlAlchemyImageRepository
    renditions: SqlAlchemyRenditionRepository
    revoked_tokens: SqlAlchemyRevokedTokenRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        try:
            connection = self._engine.connect()
            connection.begin()
        except DBAPIError as exc:
            raise _unavailable(exc) from exc
        except PoolTimeout as exc:
            raise _pool_exhausted(exc) from exc
        self._connection = connection
        self.users = SqlAlchemyUserRepository(connection)
        self.tiers = SqlAlchemyTierRepository(connection)
        self.images = SqlAlchemyImageRepository(connection)
        self.renditions = SqlAlchemyRenditionRepository(connection)
        self.revoked_tokens = SqlAlchemyRevokedTokenRepository(connection)
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.rollback()  # a no-op after commit() with nothing read since
        except DBAPIError:
            pass  # the connection is already gone; closing it is all that is left
        finally:
            connection.close()
        if isinstance(exc, DBAPIError) and _is_unavailable(exc):
            raise _unavailable(exc, connected=True) from exc

    def commit(self) -> None:
        with unreachable_as_unavailable():
            self._active().commit()

    def rollback(self) -> None:
        self._active().rollback()

    def _active(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the unit of work is used outside its `with` block")
        return self._connection


class SqlAlchemyUnitOfWorkFactory:
    """Makes a fresh unit of work per use, all sharing one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._engine)


@contextmanager
def unreachable_as_unavailable() -> Iterator[None]:
    """Turn a lost or refused connection into Unavailable; constraint errors pass through."""
    try:
        yield
    except DBAPIError as exc:
        if _is_unavailable(exc):
            raise _unavailable(exc) from exc
        raise
    except PoolTimeout as exc:
        raise _pool_exhausted(exc) from exc


def _is_unavailable(exc: DBAPIError) -> bool:
    """A lost connection, or an operational failure (locked, timed out, read-only, deadlock)."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    # SQLite says OperationalError for a missing table too (SQLITE_ERROR): that is a
    # schema problem, not an outage. Busy, locked, I/O, full, read-only are outages.
    sqlite_code = getattr(exc.orig, "sqlite_errorname", None)
    return sqlite_code is None or sqlite_code != "SQLITE_ERROR"


def _pool_exhausted(exc: PoolTimeout) -> Unavailable:
    # Every pooled connection is busy: a hung server holds them, or far too many requests.
    return Unavailable(f"the database is not answering in time (all connections busy): {exc}")


def _unavailable(exc: DBAPIError, connected: bool = False) -> Unavailable:
    if connected and not exc.connection_invalidated:
        # Reached, but it failed the statement: locked, a lock wait timed out, a deadlock.
        return Unavailable(f"the database could not complete the request, try again: {exc.orig}")
    return Unavailable(f"the database is unreachable: {exc.orig}")
