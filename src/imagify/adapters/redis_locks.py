"""Locks across machines in Redis; each expires by itself, so a crashed holder frees it.

Given a `fallback` (the machine's own locks), Redis being unreachable degrades the lock to
that one, with a warning, instead of failing: render locks only save duplicate work, and a
render that loses a race serves the winner's thumbnail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError

from imagify.domain.errors import Unavailable
from imagify.domain.ports import LockManager

log = logging.getLogger(__name__)

_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class RedisLockManager:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "imagify:",
        timeout: float = 120.0,
        blocking_timeout: float = 150.0,
        fallback: LockManager | None = None,
        retry_after: float = 5.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout
        self._blocking_timeout = blocking_timeout
        self._fallback = fallback
        # After Redis fails, use the fallback this long before trying Redis again, so a hung
        # Redis costs one request its socket timeout, not every request.
        self._retry_after = retry_after
        self._down_until = 0.0

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        if self._fallback is not None and time.monotonic() < self._down_until:
            with self._fallback.hold(key):
                yield
            return
        lock = self._redis.lock(
            f"{self._prefix}lock:{key}",
            timeout=self._timeout,
            blocking_timeout=self._blocking_timeout,
            thread_local=False,
        )
        try:
            acquired = lock.acquire()
        except _UNREACHABLE as error:
            if self._fallback is None:
                raise Unavailable(f"the lock store (Redis) is unreachable: {error}") from error
            self._down_until = time.monotonic() + self._retry_after
            log.warning(
                "Redis is unreachable, holding the %r lock on this machine only: %s", key, error
            )
            with self._fallback.hold(key):
                yield
            return
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
            except _UNREACHABLE as error:
                log.warning("could not release the %r lock (it expires by itself): %s", key, error)
