"""The real clock, random ids and locks for one machine."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import filelock


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SecretsIdGenerator:
    def image_id(self) -> str:
        return secrets.token_hex(16)

    def link_token(self) -> str:
        return secrets.token_urlsafe(32)  # 256 bits


class LocalLockManager:
    """A thread lock per key inside the process, and a file lock across processes.

    The operating system drops a file lock when its process dies, so a crashed renderer
    never leaves a lock behind.
    """

    def __init__(self, folder: Path, timeout: float = 120.0) -> None:
        self._folder = Path(folder)
        self._timeout = timeout
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                self._folder.mkdir(parents=True, exist_ok=True)
                name = sha256(key.encode()).hexdigest()[:32] + ".lock"
                with filelock.FileLock(self._folder / name, timeout=self._timeout):
                    yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
