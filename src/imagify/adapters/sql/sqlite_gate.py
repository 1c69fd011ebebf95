"""One SQLite writer per process at a time, queued on a lock instead of in the busy handler.

SQLite has one write lock per database. A connection that finds it taken sleeps in
SQLite's busy handler in growing steps (1, 2, 5 ... 100 ms) and retries, while writers
that arrive later can take the lock between its naps: under 16 concurrent link writes a
few waited a second (the profile: 92% of a link creation's time inside the INSERT's
execute, 3% in its commit). Here a write transaction first takes a lock shared by the
engine's connections, handed to the waiters in the order they came the moment the previous
writer commits. Reads take nothing; other processes (`--workers N`) still meet in SQLite's
busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from typing import Any

# Statements that open a write transaction (pysqlite begins one implicitly before DML).
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


class FairLock:
    """A lock handed to its waiters in the order they came: threading.Lock lets a thread
    that just arrived take it before one that has waited, which is where a tail comes from."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):  # released by release(): the lock is ours
            return True
        with self._mutex:
            try:
                self._waiters.remove(waiter)
            except ValueError:  # handed over just as the wait ran out: ours after all
                return True
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # held still, by the first waiter now
            else:
                self._held = False


def gated_connection_class(wait_seconds: float) -> type[sqlite3.Connection]:
    """A sqlite3.Connection class whose write transactions share one lock (one per call)."""
    gate = FairLock()

    class GatedCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> GatedCursor:
            self.connection._enter(sql)  # type: ignore[attr-defined]
            try:
                return super().execute(sql, parameters)  # type: ignore[return-value]
            finally:
                self.connection._settle()  # type: ignore[attr-defined]

        def executemany(self, sql: str, parameters: Any, /) -> GatedCursor:
            self.connection._enter(sql)  # type: ignore[attr-defined]
            try:
                return super().executemany(sql, parameters)  # type: ignore[return-value]
            finally:
                self.connection._settle()  # type: ignore[attr-defined]

    class GatedConnection(sqlite3.Connection):
        _holds = False

        def cursor(self, factory: Any = GatedCursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

        def _enter(self, sql: str) -> None:
            if self._holds or self.in_transaction or not sql.lstrip()[:15].upper().startswith(WRITES):
                return
            # Bounded like the busy timeout: a thread that already writes on another
            # connection must not wait forever for itself; SQLite then says "locked".
            self._holds = gate.acquire(timeout=wait_seconds)

        def _settle(self) -> None:
            if self._holds and not self.in_transaction:  # failed, or autocommitted
                self._release()

        def _release(self) -> None:
            if self._holds:
                self._holds = False
                gate.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._settle()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

    return GatedConnection
