"""Stamp reads on an event loop share round trips, but never one sent before they asked."""

from __future__ import annotations

import asyncio

from imagify.adapters.change_counters import _GroupedReads
from imagify.domain.ports import Stamp


class SlowCounters:
    """A counter store whose round trips the test releases one at a time."""

    def __init__(self) -> None:
        self.version = 0
        self.round_trips: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail = False

    async def read_many(self, owners: list[int]) -> dict[int, Stamp] | None:
        self.round_trips.append(owners)
        seen = self.version  # the state as of the moment the round trip reaches the store
        await self.release.wait()
        self.release.clear()
        if self.fail:
            return None
        return {owner: (seen, owner) for owner in owners}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_reads_for_several_owners_share_one_round_trip() -> None:
    async def scenario() -> list[Stamp | None]:
        store = SlowCounters()
        grouped = _GroupedReads(asyncio.get_running_loop(), store.read_many)
        reads = [asyncio.ensure_future(grouped.read(owner)) for owner in (1, 2, 1, 3)]
        await settle()
        store.release.set()
        stamps = await asyncio.gather(*reads)
        assert store.round_trips == [[1, 2, 3]]
        return stamps

    assert asyncio.run(scenario()) == [(0, 1), (0, 2), (0, 1), (0, 3)]


def test_a_read_asked_while_a_round_trip_is_in_flight_waits_for_the_next_one() -> None:
    async def scenario() -> None:
        store = SlowCounters()
        grouped = _GroupedReads(asyncio.get_running_loop(), store.read_many)
        early = asyncio.ensure_future(grouped.read(1))
        await settle()  # the first round trip has left, seeing version 0
        store.version = 1  # a change commits, then a request arrives
        late = asyncio.ensure_future(grouped.read(1))
        await settle()
        store.release.set()
        assert await early == (0, 1)
        await settle()
        assert not late.done()  # not answered by the round trip sent before it asked
        store.release.set()
        assert await late == (1, 1)
        assert store.round_trips == [[1], [1]]

    asyncio.run(scenario())


def test_a_cancelled_reader_does_not_cancel_the_others_answer() -> None:
    async def scenario() -> None:
        store = SlowCounters()
        grouped = _GroupedReads(asyncio.get_running_loop(), store.read_many)
        gone, kept = asyncio.ensure_future(grouped.read(1)), asyncio.ensure_future(grouped.read(2))
        await settle()
        gone.cancel()
        await settle()
        store.release.set()
        assert await kept == (0, 2)
        assert gone.cancelled()

    asyncio.run(scenario())


def test_an_unreadable_store_answers_none_to_everyone_and_the_next_read_tries_again() -> None:
    async def scenario() -> None:
        store = SlowCounters()
        grouped = _GroupedReads(asyncio.get_running_loop(), store.read_many)
        store.fail = True
        reads = [asyncio.ensure_future(grouped.read(owner)) for owner in (1, 2)]
        await settle()
        store.release.set()
        assert await asyncio.gather(*reads) == [None, None]
        store.fail = False
        again = asyncio.ensure_future(grouped.read(1))
        await settle()
        store.release.set()
        assert await again == (0, 1)
        assert len(store.round_trips) == 2

    asyncio.run(scenario())
