"""The change counters on what they really run on: a shared memory-mapped file, and Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from imagify.adapters.change_counters import MappedChangeCounters, RedisChangeCounters
from imagify.adapters.redis_links import make_async_redis, make_redis
from tests.integration.faults import TcpProxy, host_port, through

pytestmark = pytest.mark.integration


@pytest.fixture(params=["mapped file", "redis"])
def counters(request, tmp_path: Path) -> Iterator[MappedChangeCounters | RedisChangeCounters]:
    if request.param == "mapped file":
        mapped = MappedChangeCounters(tmp_path / "change-counters")
        yield mapped
        mapped.close()
    else:
        client = request.getfixturevalue("redis_client")
        url = request.getfixturevalue("redis_url")
        yield RedisChangeCounters(client, make_async_redis(url), prefix=f"test-{tmp_path.name}:")


def test_a_users_change_moves_every_owners_stamp(counters) -> None:
    before = [counters.stamp(owner) for owner in (1, 2, 5000)]
    counters.users_changed()
    after = [counters.stamp(owner) for owner in (1, 2, 5000)]
    assert all(b != a for b, a in zip(before, after, strict=True))
    assert after == [counters.stamp(owner) for owner in (1, 2, 5000)]  # stable until the next change


def test_an_event_loop_reads_the_same_stamp_without_blocking(counters) -> None:
    counters.images_changed(4)

    async def both() -> tuple[object, object]:
        return await counters.stamp_async(4), await counters.stamp_async(5)

    assert asyncio.run(both()) == (counters.stamp(4), counters.stamp(5))


def test_an_owners_change_moves_that_owners_stamp_only(counters) -> None:
    ann, bob = counters.stamp(1), counters.stamp(2)
    counters.images_changed(1)
    assert counters.stamp(1) != ann
    assert counters.stamp(2) == bob


def test_a_change_written_by_another_process_is_seen_through_the_mapped_file(tmp_path: Path) -> None:
    path = tmp_path / "change-counters"
    counters = MappedChangeCounters(path)
    before = counters.stamp(7)
    script = (
        "import sys; from pathlib import Path;"
        "from imagify.adapters.change_counters import MappedChangeCounters as C;"
        "c = C(Path(sys.argv[1])); c.images_changed(7); c.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert counters.stamp(7) != before
    assert counters.stamp(8) == counters.stamp(8)


def test_redis_unreachable_gives_no_stamp_and_a_lost_change_is_published_when_it_returns(
    redis_client: redis.Redis, redis_url: str
) -> None:
    with TcpProxy(*host_port(redis_url)) as proxy:
        client = make_redis(through(redis_url, proxy))
        counters = RedisChangeCounters(client, make_async_redis(through(redis_url, proxy)), prefix="test-outage:")
        watcher = RedisChangeCounters(redis_client, make_async_redis(redis_url), prefix="test-outage:")
        seen = watcher.stamp(3)
        proxy.down()
        assert counters.stamp(3) is None  # callers then trust nothing they remember
        assert asyncio.run(counters.stamp_async(3)) is None
        counters.images_changed(3)  # the commit happened: this must not raise
        assert watcher.stamp(3) == seen  # not published yet
        proxy.up()
        assert counters.stamp(3) is not None  # the first good round trip publishes it
        assert watcher.stamp(3) != seen
        client.close()


def test_many_concurrent_reads_on_one_loop_agree_and_see_a_change_made_before_they_asked(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    counters = RedisChangeCounters(redis_client, make_async_redis(redis_url), prefix=f"test-{tmp_path.name}:")

    async def scenario() -> None:
        first = await asyncio.gather(*(counters.stamp_async(owner % 3) for owner in range(50)))
        assert first == [counters.stamp(owner % 3) for owner in range(50)]
        counters.images_changed(1)
        second = await asyncio.gather(*(counters.stamp_async(owner % 3) for owner in range(50)))
        for owner, before, after in zip(range(50), first, second, strict=True):
            assert (before != after) == (owner % 3 == 1)

    asyncio.run(scenario())
