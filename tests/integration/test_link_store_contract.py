"""One contract for every LinkStore: the SQL table (SQLite, MariaDB) and Redis."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, delete, select

from imagify.adapters.redis_links import RedisLinkStore, make_redis
from imagify.adapters.security import token_hash
from imagify.adapters.sql import SqlLinkStore, make_engine, upgrade
from imagify.adapters.sql.tables import links as links_table
from imagify.domain.errors import Unavailable
from imagify.domain.model import ExpiringLink
from imagify.domain.ports import LinkStore

pytestmark = pytest.mark.integration


@dataclass
class Backend:
    store: LinkStore
    everything_stored: Callable[[], list[str]]  # every key and value, as text


def _sql_backend(engine: Engine) -> Backend:
    def dump() -> list[str]:
        with engine.connect() as connection:
            return [str(value) for row in connection.execute(select(links_table)) for value in row]

    return Backend(SqlLinkStore(engine), dump)


def _redis_dump(client: redis.Redis) -> list[str]:
    stored = []
    for key in client.scan_iter():
        stored.append(key.decode())
        if client.type(key) == b"zset":
            stored.extend(member.decode() for member in client.zrange(key, 0, -1))
        else:
            stored.append(client.get(key).decode())
    return stored


@pytest.fixture(scope="module")
def mysql_engine(mysql_url: str) -> Iterator[Engine]:
    upgrade(mysql_url)
    engine = make_engine(mysql_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'imagify.db'}"
        upgrade(url)
        engine = make_engine(url)
        yield _sql_backend(engine)
        engine.dispose()
    elif request.param == "mariadb":
        engine = request.getfixturevalue("mysql_engine")
        with engine.begin() as connection:
            connection.execute(delete(links_table))
        yield _sql_backend(engine)
    else:
        client: redis.Redis = request.getfixturevalue("redis_client")
        yield Backend(RedisLinkStore(client), lambda: _redis_dump(client))


@pytest.fixture
def links(backend: Backend) -> LinkStore:
    return backend.store


def now() -> datetime:
    return datetime.now(UTC)


def link(image_id: str, seconds: float, owner_id: int | None = 42) -> ExpiringLink:
    return ExpiringLink(secrets.token_urlsafe(32), image_id, now() + timedelta(seconds=seconds), owner_id)


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The contract, on every store


def test_a_live_link_resolves_to_its_image(links: LinkStore) -> None:
    added = link("img-1", 300)
    links.add(added)
    assert links.resolve(added.token, now()).image_id == "img-1"
    assert links.resolve(added.token, added.expires_at - timedelta(seconds=1)).image_id == "img-1"


def test_a_link_keeps_its_owner_and_a_link_from_before_owners_has_none(links: LinkStore) -> None:
    owned, legacy = link("img-1", 300, owner_id=7), link("img-2", 300, owner_id=None)
    links.add(owned)
    links.add(legacy)
    assert links.resolve(owned.token, now()).owner_id == 7
    assert links.resolve(legacy.token, now()).owner_id is None


def test_a_link_is_dead_from_its_expiry_on(links: LinkStore) -> None:
    added = link("img-1", 300)
    links.add(added)
    assert links.resolve(added.token, added.expires_at) is None
    assert links.resolve(added.token, added.expires_at + timedelta(days=1)) is None


def test_an_unknown_token_resolves_to_nothing(links: LinkStore) -> None:
    links.add(link("img-1", 300))
    assert links.resolve("not-a-token", now()) is None
    assert links.resolve("", now()) is None


def test_deleting_an_image_kills_all_its_links_and_no_others(links: LinkStore) -> None:
    mine = [link("img-1", seconds) for seconds in (300, 600, 30000)]
    other = link("img-2", 300)
    for added in [*mine, other]:
        links.add(added)
    links.delete_for_image("img-1")
    assert [links.resolve(added.token, now()) for added in mine] == [None, None, None]
    assert links.resolve(other.token, now()).image_id == "img-2"
    links.delete_for_image("img-1")  # idempotent
    links.delete_for_image("never-had-links")


def test_an_images_live_links_are_listed_by_hash_prefix_with_their_dates_and_revoked_one_by_one(
    links: LinkStore,
) -> None:
    made = now()
    mine = [replace(link("img-1", seconds), created_at=made) for seconds in (600, 300, 900)]
    legacy = link("img-1", 1200)  # made before links had a creation date
    expired = link("img-1", 1)
    for added in [*mine, legacy, expired, link("img-2", 300)]:
        links.add(added)
    time.sleep(1.1)
    listed = links.list_for_image("img-1", now())
    assert [l.id for l in listed] == [token_hash(m.token)[:16] for m in (mine[1], mine[0], mine[2], legacy)]
    assert all(abs((l.created_at - made).total_seconds()) < 0.002 for l in listed[:3])
    assert listed[3].created_at is None
    assert [abs((l.expires_at - m.expires_at).total_seconds()) < 0.002 for l, m in zip(listed, (mine[1], mine[0], mine[2]))] == [True] * 3

    assert links.revoke("img-1", listed[0].id)
    assert links.resolve(mine[1].token, now()) is None
    assert links.resolve(mine[0].token, now()) is not None
    assert not links.revoke("img-1", listed[0].id)  # already gone
    assert not links.revoke("img-2", listed[1].id)  # not that image's link
    assert [l.id for l in links.list_for_image("img-1", now())] == [l.id for l in listed[1:]]
    assert links.list_for_image("never-had-links", now()) == []


def test_the_token_is_never_stored_in_clear(backend: Backend) -> None:
    added = link("img-1", 300)
    backend.store.add(added)
    stored = backend.everything_stored()
    assert any("img-1" in text for text in stored)
    assert any(token_hash(added.token) in text for text in stored)
    assert not any(added.token in text for text in stored)


def test_check_passes_on_a_reachable_store(links: LinkStore) -> None:
    links.check()


# Redis only


def test_redis_expires_a_link_by_itself(redis_client: redis.Redis) -> None:
    links = RedisLinkStore(redis_client)
    short, long = link("img-1", 1.2), link("img-1", 300)
    links.add(short)
    links.add(long)
    short_key = f"imagify:link:{token_hash(short.token)}"
    assert redis_client.exists(short_key) == 1
    time.sleep(max(0.0, (short.expires_at - now()).total_seconds()) + 0.1)
    assert redis_client.exists(short_key) == 0  # gone from Redis, not merely filtered out
    assert links.resolve(short.token, now()) is None
    assert links.resolve(long.token, now()).image_id == "img-1"
    later = link("img-1", 300)
    links.add(later)  # prunes the index of the expired link
    index = {m.decode() for m in redis_client.zrange("imagify:image-links:img-1", 0, -1)}
    assert index == {token_hash(long.token), token_hash(later.token)}


def test_redis_index_lives_as_long_as_the_longest_link(redis_client: redis.Redis) -> None:
    links = RedisLinkStore(redis_client, prefix="app:")
    for seconds in (600, 30000, 300):
        links.add(link("img-1", seconds))
    index_ttl = redis_client.pttl("app:image-links:img-1") / 1000
    assert 29990 < index_ttl <= 30000
    link_ttls = sorted(redis_client.pttl(key) / 1000 for key in redis_client.scan_iter("app:link:*"))
    assert [round(ttl, -1) for ttl in link_ttls] == [300, 600, 30000]


def test_redis_deletes_many_links_of_an_image_at_once(redis_client: redis.Redis) -> None:
    links = RedisLinkStore(redis_client)
    for _ in range(50):
        links.add(link("img-1", 300))
    links.add(link("img-2", 300))
    links.delete_for_image("img-1")
    remaining = sorted(key.decode() for key in redis_client.scan_iter())
    assert len(remaining) == 2 and "imagify:image-links:img-2" in remaining


def test_redis_down_is_unavailable() -> None:
    links = RedisLinkStore(make_redis(f"redis://127.0.0.1:{closed_loopback_port()}/0"))
    with pytest.raises(Unavailable, match="^Redis is unreachable"):
        links.check()
    for attempt in (
        lambda: links.add(link("img-1", 300)),
        lambda: links.resolve("token", now()),
        lambda: links.delete_for_image("img-1"),
    ):
        with pytest.raises(Unavailable, match=r"^the link store \(Redis\) is unreachable"):
            attempt()
