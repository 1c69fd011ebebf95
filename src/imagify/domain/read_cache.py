"""A process's memory of what requests read most, never trusted past a change, and never
another owner's.

Every entry belongs to an owner (a user id) and is stored under that owner: a lookup names
the owner it reads for, so a key built from another tenant's image id finds nothing, by
construction, whatever the caller forgets to check. Each entry carries the stamp of the
change counters (ports.ChangeCounters) for its owner, read before its value was loaded.
Serving an entry first reads the counters again: if a user, a tier or the owner's images
changed anywhere since, in any process, the entry is dropped and the value is read afresh.
So a permission change still applies on the very next request, and a deleted image is gone
at once, while a repeated read costs a stamp instead of queries.

Facts are entries found through a secret rather than an owner (an expiring link's token):
they name their owner, and are stamped by that owner like any other entry.

Memory is bounded in bytes (each entry is weighed when stored) and expired entries are
swept, not only dropped when looked up.
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

MAX_ENTRIES = 200_000
MAX_BYTES = 64 * 1024 * 1024
# What one remembered record (an image, a user, a thumbnail's record) costs in memory, about:
# the object, its dict and its strings. A page weighs one per item, plus one.
RECORD_BYTES = 1024
# A backstop only: counters decide freshness. It bounds how long an entry can outlive a
# change whose counter update was lost (the counters' store failing right after a commit).
MAX_AGE_SECONDS = 60.0


class _Entry:
    __slots__ = ("value", "owner_id", "stamp", "stored", "weight")

    def __init__(self, value: object, owner_id: int, stamp: Stamp, stored: float, weight: int) -> None:
        self.value = value
        self.owner_id = owner_id
        self.stamp = stamp
        self.stored = stored
        self.weight = weight


class ReadCache:
    def __init__(
        self,
        counters: ChangeCounters,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._counters = counters
        self._max_entries = max_entries if max_bytes > 0 else 0
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._monotonic = monotonic
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._swept = monotonic()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0

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

    # Owned entries: every lookup names the owner it reads for.

    def fetch(
        self, owner_id: int, key: Hashable, load: Callable[[], T | None], weight: int = RECORD_BYTES
    ) -> T | None:
        """The owner's value at `key`, from memory while the owner's stamp holds, else from
        `load` (which must itself read only what `owner_id` owns). None is not remembered."""
        if not self._max_entries:  # caching off: no stamp to read either
            return load()
        hit = self._lookup(("owned", owner_id, key), may_block=True)
        if hit is not None:
            return hit  # type: ignore[return-value]
        stamp = self.stamp(owner_id)  # before loading: a change during the load shows
        value = load()
        if value is not None and stamp is not None:
            self._put(("owned", owner_id, key), _Entry(value, owner_id, stamp, self._monotonic(), weight))
        return value

    def get(self, owner_id: int, key: Hashable) -> object | None:
        """The owner's value from memory if it is still true (reading the stamp if need be)."""
        return self._lookup(("owned", owner_id, key), may_block=True)

    def peek(self, owner_id: int, key: Hashable) -> object | None:
        """The owner's value from memory if it is still true, else None; never waits on the
        network (None also when checking would: a stamp neither local nor prepared)."""
        return self._lookup(("owned", owner_id, key), may_block=False)

    # Facts: found through a secret, stamped by the owner they name.

    def remember_fact(self, key: Hashable, owner_id: int, value: object, stamp: Stamp | None) -> None:
        """Keep what a secret (a link token) leads to, as true as `owner_id`'s `stamp`, read
        before the fact was loaded."""
        if self._max_entries and stamp is not None:
            self._put(("fact", key), _Entry(value, owner_id, stamp, self._monotonic(), RECORD_BYTES))

    def fact_owner(self, key: Hashable) -> int | None:
        """Whose stamp a remembered fact needs, so it can be prepared before peek_fact()."""
        entry = self._entries.get(("fact", key))
        return None if entry is None else entry.owner_id

    def peek_fact(self, key: Hashable) -> object | None:
        return self._lookup(("fact", key), may_block=False)

    # Changes

    def users_changed(self) -> None:
        """A user or a tier changed: every process re-reads users (call after the commit)."""
        self._counters.users_changed()

    def owner_changed(self, owner_id: int) -> None:
        """Something of one owner's changed: their images, links or logged-out tokens (call
        after the commit). Every process re-reads that owner's entries, and only theirs, on
        its next lookup."""
        self._counters.owner_changed(owner_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The weight of what is remembered now."""
        return self._bytes

    def _lookup(self, key: Hashable, may_block: bool) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._monotonic() - entry.stored > self._max_age:
            self._drop(key, entry)
            return None
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

    def _put(self, key: Hashable, entry: _Entry) -> None:
        if entry.weight > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.weight
            self._entries[key] = entry
            self._bytes += entry.weight
            if entry.stored - self._swept > self._max_age / 2:
                self._sweep(entry.stored)
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.weight

    def _sweep(self, now: float) -> None:
        """Drop every entry past its age (under the lock): memory is not kept for entries
        nobody asks for again."""
        self._swept = now
        for key in [k for k, e in self._entries.items() if now - e.stored > self._max_age]:
            self._bytes -= self._entries.pop(key).weight

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
                self._bytes -= entry.weight
