"""Locks across machines in Redis; each expires by itself, so a crashed holder frees it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError

from imagify.domain.errors import Unavailable

log = logging.getLogger(__name__)


class RedisLockManager:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "imagify:",
        timeout: float = 120.0,
        blocking_timeout: float = 150.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout
        self._blocking_timeout = blocking_timeout

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        lock = self._redis.lock(
            f"{self._prefix}lock:{key}",
            timeout=self._timeout,
            blocking_timeout=self._blocking_timeout,
            thread_local=False,
        )
        try:
            acquired = lock.acquire()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise Unavailable(f"the lock store (Redis) is unreachable: {error}") from error
        if not acquired:
            raise Unavailable(
                f"timed out waiting for the {key!r} lock after {self._blocking_timeout:g} s"
            )
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                # Held past its timeout: someone else may have run meanwhile. Nothing to undo.
                log.warning("the %r lock expired before its holder released it", key)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("could not release the %r lock (it expires by itself): %s", key, error)
