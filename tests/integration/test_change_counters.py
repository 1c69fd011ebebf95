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
from imagify.adapters.sql.migrate import upgrade
from imagify.entrypoints.container import build_container, shutdown
from tests.integration.conftest import embedded_settings
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


def proxied_counters(redis_url: str, proxy: TcpProxy, prefix: str) -> tuple[redis.Redis, RedisChangeCounters]:
    """Counters reaching Redis through a proxy the test can cut."""
    client = make_redis(through(redis_url, proxy))
    return client, RedisChangeCounters(client, make_async_redis(through(redis_url, proxy)), prefix=prefix)


def test_a_users_change_moves_every_owners_stamp(counters) -> None:
    before = [counters.stamp(owner) for owner in (1, 2, 5000)]
    counters.users_changed()
    after = [counters.stamp(owner) for owner in (1, 2, 5000)]
    assert all(b != a for b, a in zip(before, after, strict=True))
    assert after == [counters.stamp(owner) for owner in (1, 2, 5000)]  # stable until the next change


def test_an_event_loop_reads_the_same_stamp_without_blocking(counters) -> None:
    counters.owner_changed(4)

    async def both() -> tuple[object, object]:
        return await counters.stamp_async(4), await counters.stamp_async(5)

    assert asyncio.run(both()) == (counters.stamp(4), counters.stamp(5))


def test_an_owners_change_moves_that_owners_stamp_only(counters) -> None:
    ann, bob = counters.stamp(1), counters.stamp(2)
    counters.owner_changed(1)
    assert counters.stamp(1) != ann
    assert counters.stamp(2) == bob


def test_a_change_written_by_another_process_is_seen_through_the_mapped_file(tmp_path: Path) -> None:
    path = tmp_path / "change-counters"
    counters = MappedChangeCounters(path)
    before = counters.stamp(7)
    script = (
        "import sys; from pathlib import Path;"
        "from imagify.adapters.change_counters import MappedChangeCounters as C;"
        "c = C(Path(sys.argv[1])); c.owner_changed(7); c.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert counters.stamp(7) != before
    assert counters.stamp(8) == counters.stamp(8)


def test_redis_unreachable_gives_no_stamp_and_a_lost_change_is_published_when_it_returns(
    redis_client: redis.Redis, redis_url: str
) -> None:
    with TcpProxy(*host_port(redis_url)) as proxy:
        client, counters = proxied_counters(redis_url, proxy, "test-outage:")
        watcher = RedisChangeCounters(redis_client, make_async_redis(redis_url), prefix="test-outage:")
        seen = watcher.stamp(3)
        proxy.down()
        assert counters.stamp(3) is None  # callers then trust nothing they remember
        assert asyncio.run(counters.stamp_async(3)) is None
        counters.owner_changed(3)  # the commit happened: this must not raise
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
        counters.owner_changed(1)
        second = await asyncio.gather(*(counters.stamp_async(owner % 3) for owner in range(50)))
        for owner, before, after in zip(range(50), first, second, strict=True):
            assert (before != after) == (owner % 3 == 1)

    asyncio.run(scenario())


def test_counters_lost_by_redis_never_come_back_with_a_value_already_seen(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"test-{tmp_path.name}:"
    counters = RedisChangeCounters(redis_client, make_async_redis(redis_url), prefix=prefix)
    seen = {counters.stamp(1)}
    counters.owner_changed(1)
    counters.users_changed()
    seen.add(counters.stamp(1))
    for loss in range(4):  # Redis restarted empty, or evicted the keys
        redis_client.delete(*redis_client.keys(f"{prefix}*"))
        on_a_loop = RedisChangeCounters(redis_client, make_async_redis(redis_url), prefix=prefix)
        if loss % 2:  # the first read after the loss is a blocking one, or one on an event loop
            again = counters.stamp(1)
            assert asyncio.run(on_a_loop.stamp_async(1)) == again
        else:
            again = asyncio.run(on_a_loop.stamp_async(1))  # type: ignore[assignment]
            assert counters.stamp(1) == again
        assert again not in seen and None not in again
        seen.add(again)


def test_a_change_that_could_not_be_published_is_reported_until_it_is(
    redis_client: redis.Redis, redis_url: str
) -> None:
    with TcpProxy(*host_port(redis_url)) as proxy:
        client, counters = proxied_counters(redis_url, proxy, "test-flush:")
        assert counters.flush()
        proxy.down()
        counters.users_changed()
        assert not counters.flush()
        proxy.up()
        assert counters.flush()
        client.close()


def test_a_writer_with_the_cache_off_and_its_own_data_folder_still_tells_the_servers(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared' / 'imagify.db'}"
    server = build_container(embedded_settings(tmp_path / "server", IMAGIFY_DATABASE_URL=database))
    cli = build_container(embedded_settings(tmp_path / "cli", IMAGIFY_DATABASE_URL=database, IMAGIFY_READ_CACHE="off"))
    try:
        upgrade(database)
        cli.admin().create_user("cli", "ann", "a-long-password", ["enterprise"], False)
        with server.uow()() as uow:
            ann_id = uow.users.get_by_username("ann").id
        token = server.signer().issue(ann_id, 0, server.clock().now())[0]
        assert server.auth().authenticate(token).permissions.original_access
        assert server.auth().authenticate(token).permissions.original_access  # now from memory
        cli.admin().update_user("cli", "ann", tiers=["basic"])
        assert not server.auth().authenticate(token).permissions.original_access
    finally:
        shutdown(server)
        shutdown(cli)
