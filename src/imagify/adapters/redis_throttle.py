"""Login throttling in Redis, shared by every process: one counter per hashed key."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import redis

from imagify.domain.ports import LoginThrottle

log = logging.getLogger(__name__)
T = TypeVar("T")

# When a key is at its limit already, answer the longest wait among such keys, in ms, and
# count nothing: a refused attempt must not use up another key's allowance (an attacker
# held back per address would otherwise go on filling the victim's username). Else INCR
# each key, starting its window (PEXPIRE) on the first failure, and answer 0. One round
# trip, atomic. ARGV: the window, then each key's limit.
ATTEMPT = """
local window, wait = tonumber(ARGV[1]), 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window) end
end
return 0
"""
# DECR only a counter that still exists: a bare DECR would make a -1 that never expires.
FORGIVE = """
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then redis.call('DECR', key) end
end
return 0
"""


class RedisLoginThrottle:
    """`{prefix}{sha256(key)}` counts attempts, expiring with its window.

    Keys are hashed so that usernames and addresses are not readable from Redis. When Redis
    is unreachable the in-process `fallback` counts instead: logins keep working, and a
    brute force is still limited per process (failing open would hand an attacker unlimited
    guesses exactly while Redis is down, which they might cause).
    """

    def __init__(
        self,
        client: redis.Redis,
        window_seconds: int,
        fallback: LoginThrottle,
        prefix: str = "imagify:login-failures:",
    ) -> None:
        self._redis = client
        self._window_ms = window_seconds * 1000
        self._fallback = fallback
        self._prefix = prefix
        self._attempt = client.register_script(ATTEMPT)
        self._forgive = client.register_script(FORGIVE)
        self._degraded = False

    def attempt(self, limits: Mapping[str, int]) -> int:
        def in_redis() -> int:
            keys = list(limits)
            args = [self._window_ms, *(limits[key] for key in keys)]
            wait_ms = int(self._attempt(keys=self._hashed(keys), args=args))
            return -(-wait_ms // 1000) if wait_ms > 0 else 0

        return self._or_fallback(in_redis, lambda: self._fallback.attempt(limits))

    def forgive(self, keys: Sequence[str]) -> None:
        self._or_fallback(
            lambda: self._forgive(keys=self._hashed(keys)), lambda: self._fallback.forgive(keys)
        )

    def reset(self, key: str) -> None:
        self._fallback.reset(key)  # it may hold failures counted while Redis was down
        self._or_fallback(lambda: self._redis.delete(*self._hashed([key])), lambda: None)

    def _hashed(self, keys: Sequence[str]) -> list[str]:
        return [self._prefix + hashlib.sha256(key.encode()).hexdigest() for key in keys]

    def _or_fallback(self, in_redis: Callable[[], T], in_memory: Callable[[], T]) -> T:
        try:
            result = in_redis()
        except redis.RedisError as error:
            if not self._degraded:
                log.warning("login throttling falls back to this process's memory: Redis failed: %s", error)
                self._degraded = True
            return in_memory()
        if self._degraded:
            log.info("login throttling is back on Redis")
            self._degraded = False
        return result
