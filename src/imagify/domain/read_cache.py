"""A process's memory of what requests read most, never trusted past a change.

Every entry carries the stamp of the change counters (ports.ChangeCounters) read before
its value was loaded. Serving an entry first reads the counters again: if a user, a tier
or the owner's images changed anywhere since, in any process, the entry is dropped and the
value is read afresh. So a permission change still applies on the very next request, and a
deleted image is gone at once, while a repeated read costs a stamp instead of queries.

Entries whose owner is None are immutable facts (a link token's image and expiry): they
need no stamp, and what they point to is looked up through stamped entries.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import TypeVar

from imagify.domain.ports import ChangeCounters, Stamp

T = TypeVar("T")

# Stamps already read while serving the current request, by owner (see begin_request).
_request_stamps: ContextVar[dict[int, Stamp | None] | None] = ContextVar("imagify_stamps", default=None)

MAX_ENTRIES = 50_000
# A backstop only: counters decide freshness. It bounds how long an entry can outlive a
# change whose counter update was lost (the counters' store failing right after a commit).
MAX_AGE_SECONDS = 60.0


class _Entry:
    __slots__ = ("value", "owner_id", "stamp", "stored")

    def __init__(self, value: object, owner_id: int | None, stamp: Stamp | None, stored: float) -> None:
        self.value = value
        self.owner_id = owner_id
        self.stamp = stamp
        self.stored = stored


class ReadCache:
    def __init__(
        self,
        counters: ChangeCounters,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._max_entries = max_entries
        self._max_age = max_age
        self._monotonic = monotonic
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def begin_request(self) -> None:
        """Read each owner's stamp once for the rest of this request (and its worker threads).

        Sound because a request may act on the state as of its first lookup: a change that
        lands while it is being served is concurrent with it, and the next request reads
        fresh stamps. Only worth it when a stamp is a network round trip.
        """
        if not self._counters.local:
            _request_stamps.set({})

    async def prepare(self, owner_id: int) -> None:
        """Read the owner's stamp without blocking the event loop, for this request's peeks."""
        if self._counters.local or not self._max_entries:
            return
        memo = _request_stamps.get()
        if memo is None:
            memo = {}
            _request_stamps.set(memo)
        if owner_id not in memo:
            memo[owner_id] = await self._counters.stamp_async(owner_id)

    def stamp(self, owner_id: int) -> Stamp | None:
        memo = _request_stamps.get()
        if memo is None:
            return self._counters.stamp(owner_id)
        if owner_id not in memo:
            memo[owner_id] = self._counters.stamp(owner_id)
        return memo[owner_id]

    def get(self, key: Hashable) -> object | None:
        """The entry's value if it is still true, else None (and the entry is dropped)."""
        return self._lookup(key, may_block=True)

    def peek(self, key: Hashable) -> object | None:
        """As get(), but never waiting on the network: None also when checking would
        (a stamp neither local nor prepared for this request). Safe on an event loop."""
        return self._lookup(key, may_block=False)

    def _lookup(self, key: Hashable, may_block: bool) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._monotonic() - entry.stored > self._max_age:
            self._drop(key, entry)
            return None
        if entry.owner_id is not None:
            if may_block or self._counters.local:
                stamp = self.stamp(entry.owner_id)
            else:
                memo = _request_stamps.get()
                if memo is None or entry.owner_id not in memo:
                    return None
                stamp = memo[entry.owner_id]
            if stamp is None:
                # The counters cannot be read: changes may go unseen from now on, so
                # nothing remembered so far can be trusted when they come back.
                self.clear()
                return None
            if stamp != entry.stamp:
                self._drop(key, entry)
                return None
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
        return entry.value

    def fetch(self, key: Hashable, owner_id: int, load: Callable[[], T | None]) -> T | None:
        """The value at `key`, from memory while the owner's stamp holds, else from `load`.

        None from `load` (nothing there) is not remembered.
        """
        if not self._max_entries:  # caching off: no stamp to read either
            return load()
        hit = self.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        stamp = self.stamp(owner_id)  # before loading: a change during the load shows
        value = load()
        if value is not None and stamp is not None:
            self._put(key, _Entry(value, owner_id, stamp, self._monotonic()))
        return value

    def remember(self, key: Hashable, value: object) -> None:
        """Keep an immutable fact (no stamp): it is only aged out."""
        if self._max_entries:
            self._put(key, _Entry(value, None, None, self._monotonic()))

    def users_changed(self) -> None:
        """A user or a tier changed: every process re-reads users (call after the commit)."""
        self._counters.users_changed()

    def images_changed(self, owner_id: int) -> None:
        """An owner's images changed (call after the commit)."""
        self._counters.images_changed(owner_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
