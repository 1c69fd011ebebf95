"""Login throttling in this process's memory: the embedded mode, and Redis's fallback."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence

MAX_KEYS = 100_000  # a spray of made-up usernames must not grow memory without bound


class MemoryLoginThrottle:
    """Per key: (attempts counted, when its window ends). Windows are fixed, from the first."""

    def __init__(
        self,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def attempt(self, limits: Mapping[str, int]) -> int:
        now = self._clock()
        with self._lock:
            entries = {key: self._live(key, now) or (0, now + self._window) for key in limits}
            wait = max(
                (ends - now for key, (count, ends) in entries.items() if count >= limits[key]),
                default=0.0,
            )
            if wait > 0:
                return max(1, math.ceil(wait))
            for key, (count, ends) in entries.items():
                self._counts[key] = (count + 1, ends)
            if len(self._counts) > self._max_keys:
                self._prune(now)
        return 0

    def forgive(self, keys: Sequence[str]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                entry = self._live(key, now)
                if entry is not None and entry[0] > 0:
                    self._counts[key] = (entry[0] - 1, entry[1])

    def reset(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, ends) in self._counts.items() if ends <= now]:
            del self._counts[key]
        # Still too many live windows: drop the oldest (dicts keep insertion order).
        for key in list(self._counts)[: max(0, len(self._counts) - self._max_keys)]:
            del self._counts[key]
