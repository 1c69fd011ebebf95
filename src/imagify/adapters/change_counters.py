"""Change counters (ports.ChangeCounters): a memory-mapped file on one machine, Redis across machines.

A counter's value means nothing but "changed": a reader keeps the one it saw and compares.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import redis
import redis.asyncio

from imagify.domain.ports import Stamp

log = logging.getLogger(__name__)

WIDTH = 8  # bytes per counter


class MappedChangeCounters:
    """Counters in a small file that every process on this machine maps into memory.

    Reading a stamp is two 8-byte slices of shared memory: no system call, no lock. A
    writer stores fresh random bytes instead of incrementing, so no lock is needed there
    either (a repeat of an older value has odds of 2**-64). Owners share `slots` counters
    by id: two owners on one slot only invalidate each other's entries more often.
    """

    local = True

    def __init__(self, path: Path, slots: int = 4096) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._slots = slots
        size = WIDTH * (1 + slots)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zero-filled; racing creators agree on the size
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def stamp(self, owner_id: int) -> Stamp:
        at = WIDTH * (1 + owner_id % self._slots)
        return self._map[0:WIDTH], self._map[at : at + WIDTH]

    async def stamp_async(self, owner_id: int) -> Stamp:
        return self.stamp(owner_id)

    def users_changed(self) -> None:
        self._map[0:WIDTH] = os.urandom(WIDTH)

    def owner_changed(self, owner_id: int) -> None:
        at = WIDTH * (1 + owner_id % self._slots)
        self._map[at : at + WIDTH] = os.urandom(WIDTH)

    def close(self) -> None:
        self._map.close()


class RedisChangeCounters:
    """`{prefix}changes:users` and `{prefix}changes:owner:{id}`, read together with one MGET.

    A change stores fresh random bytes, as the mapped file does, and a read that finds a
    key missing creates it with fresh random bytes (SET NX) before using it. So a value
    is never seen twice, even after Redis lost its keys (a restart without persistence,
    an eviction, a flush): an entry stamped before the loss can never look current again.

    When Redis cannot be reached a stamp is None (callers then trust no cached entry). A
    change that could not be published is kept and published on this process's next good
    round trip, so it is late rather than lost; `flush()` says whether any is still waiting.

    On an event loop, concurrent reads are grouped (see _GroupedReads): one MGET answers
    every request that asked while the previous one was in flight.
    """

    local = False

    def __init__(
        self, client: redis.Redis, async_client: redis.asyncio.Redis, prefix: str = "imagify:"
    ) -> None:
        self._redis = client
        self._async = async_client  # for event loops: the same server, never blocking
        self._users = f"{prefix}changes:users"
        self._owner = f"{prefix}changes:owner:"
        # key -> how many changes to it wait; a publish removes only what it sent, so a
        # change that fails while an earlier publish is in flight is not forgotten.
        self._unpublished: dict[str, int] = {}
        self._guard = threading.Lock()
        self._grouped: _GroupedReads | None = None

    def stamp(self, owner_id: int) -> Stamp | None:
        keys = [self._users, f"{self._owner}{owner_id}"]
        try:
            if self._unpublished:
                self._publish()
            values = self._redis.mget(keys)
            if None in values:
                _set_fresh(self._redis.pipeline(transaction=False), _missing(keys, values)).execute()
                values = self._redis.mget(keys)
        except redis.RedisError as error:
            log.warning("change counters unreadable, serving without the read cache: %s", error)
            return None
        return values[0], values[1]

    async def stamp_async(self, owner_id: int) -> Stamp | None:
        loop = asyncio.get_running_loop()
        if self._grouped is None or self._grouped.loop is not loop:
            self._grouped = _GroupedReads(loop, self._read_many)
        return await self._grouped.read(owner_id)

    async def _read_many(self, owner_ids: list[int]) -> dict[int, Stamp] | None:
        keys = [self._users, *(f"{self._owner}{o}" for o in owner_ids)]
        try:
            if self._unpublished:
                await self._publish_async()
            values = await self._async.mget(keys)
            if None in values:
                async with self._async.pipeline(transaction=False) as pipe:
                    await _set_fresh(pipe, _missing(keys, values)).execute()
                values = await self._async.mget(keys)
        except (redis.RedisError, OSError, asyncio.TimeoutError) as error:
            log.warning("change counters unreadable, serving without the read cache: %s", error)
            return None
        users, *owners = values
        return {owner_id: (users, owner) for owner_id, owner in zip(owner_ids, owners, strict=True)}

    async def aclose(self) -> None:
        await self._async.aclose()

    def users_changed(self) -> None:
        self._changed(self._users)

    def owner_changed(self, owner_id: int) -> None:
        self._changed(f"{self._owner}{owner_id}")

    def flush(self) -> bool:
        """Publish what waits; True when nothing is left unpublished."""
        try:
            self._publish()
        except redis.RedisError as error:
            log.error("could not publish a change to Redis: %s", error)
        return not self._unpublished

    def _changed(self, key: str) -> None:
        with self._guard:
            self._unpublished[key] = self._unpublished.get(key, 0) + 1
        try:
            self._publish()
        except redis.RedisError as error:
            log.error("could not publish a change to Redis (retried on the next request): %s", error)

    def _publish(self) -> None:
        with self._guard:
            sent = dict(self._unpublished)
        if not sent:
            return
        _set_fresh(self._redis.pipeline(transaction=False), sorted(sent), only_new=False).execute()
        self._published(sent)

    async def _publish_async(self) -> None:
        with self._guard:
            sent = dict(self._unpublished)
        async with self._async.pipeline(transaction=False) as pipe:
            await _set_fresh(pipe, sorted(sent), only_new=False).execute()
        self._published(sent)

    def _published(self, sent: dict[str, int]) -> None:
        with self._guard:
            for key, count in sent.items():
                left = self._unpublished.get(key, 0) - count
                if left > 0:
                    self._unpublished[key] = left  # changed again meanwhile: still to send
                else:
                    self._unpublished.pop(key, None)


P = TypeVar("P", redis.client.Pipeline, redis.asyncio.client.Pipeline)


def _set_fresh(pipe: P, keys: list[str], only_new: bool = True) -> P:
    """Queue fresh random values (as text, so redis-cli shows them plainly) for `keys`:
    a change overwrites; creating a missing key (only_new) never does."""
    for key in keys:
        pipe.set(key, os.urandom(WIDTH).hex(), nx=only_new)
    return pipe


def _missing(keys: list[str], values: list[object]) -> list[str]:
    return [key for key, value in zip(keys, values, strict=True) if value is None]


class _GroupedReads:
    """Stamp reads on one event loop, grouped like a group commit: at most one MGET in
    flight; whoever asks meanwhile waits for the next one, which then answers them all.

    Still "as of the request": a read only ever joins an MGET not yet sent when it asked,
    so a change committed before a request arrived is in the stamp that request gets.
    Under load this turns one round trip per request into one per batch of requests.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, read_many: Callable[[list[int]], Awaitable[dict[int, Stamp] | None]]
    ) -> None:
        self.loop = loop
        self._read_many = read_many
        self._next: tuple[set[int], asyncio.Future[dict[int, Stamp] | None]] | None = None
        self._in_flight = False

    async def read(self, owner_id: int) -> Stamp | None:
        if self._next is None:
            self._next = (set(), self.loop.create_future())
            if not self._in_flight:
                self.loop.call_soon(self._send)  # after this tick's other requests have joined
        owners, answer = self._next
        owners.add(owner_id)
        # shield: one waiter cancelled (a client gone) must not cancel the others' answer
        stamps = await asyncio.shield(answer)
        return None if stamps is None else stamps[owner_id]

    def _send(self) -> None:
        if self._in_flight or self._next is None:
            return
        owners, answer = self._next
        self._next = None
        self._in_flight = True
        self.loop.create_task(self._round_trip(sorted(owners), answer))

    async def _round_trip(self, owners: list[int], answer: asyncio.Future[dict[int, Stamp] | None]) -> None:
        stamps: dict[int, Stamp] | None = None
        try:
            stamps = await self._read_many(owners)
        finally:
            self._in_flight = False
            if not answer.done():
                answer.set_result(stamps)
            self._send()  # those who asked meanwhile


class NoChangeCounters:
    """No shared counters (MySQL without Redis): nothing is cached."""

    local = True

    def stamp(self, owner_id: int) -> Stamp | None:
        return None

    async def stamp_async(self, owner_id: int) -> Stamp | None:
        return None

    def users_changed(self) -> None:
        pass

    def owner_changed(self, owner_id: int) -> None:
        pass
