"""Expiring links in Redis: one key per token hash, which Redis itself expires."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from imagify.adapters.security import token_hash
from imagify.domain.errors import Unavailable
from imagify.domain.model import LINK_ID_LENGTH, ExpiringLink, LinkInfo


def make_async_redis(url: str) -> redis.asyncio.Redis:
    """An asyncio client with the same timeouts, for reads made on an event loop.

    Its connections belong to the event loop that opens them: one per serving process.
    """
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def make_redis(url: str) -> redis.Redis:
    """A client with short timeouts that retries a timed-out or dropped command once."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
    )


class RedisLinkStore:
    """`{prefix}link:{sha256(token)}` holds "{owner_id} {created_at in ms} {image_id}
    {expires_at in ms}" until it expires (older links hold "{owner_id} {image_id} {expires}"
    or "{image_id} {expires}"; the order keeps the last two fields where older readers look).

    Each image has a sorted set `{prefix}image-links:{image_id}` of its token hashes
    (scored by expiry) so that deleting the image deletes its links.
    """

    def __init__(self, client: redis.Redis, prefix: str = "imagify:") -> None:
        self._redis = client
        self._prefix = prefix

    def add(self, link: ExpiringLink) -> None:
        digest = token_hash(link.token)
        expires_ms = int(link.expires_at.timestamp() * 1000)
        index = self._index(link.image_id)
        with _unreachable_as_unavailable():
            pipe = self._redis.pipeline(transaction=True)
            owner = "" if link.owner_id is None else f"{link.owner_id} "
            if link.owner_id is not None and link.created_at is not None:
                owner += f"{int(link.created_at.timestamp() * 1000)} "
            pipe.set(self._link(digest), f"{owner}{link.image_id} {expires_ms}", pxat=expires_ms)
            pipe.zadd(index, {digest: expires_ms})
            # Forget hashes whose links have expired, so the index of a busy image stays small.
            pipe.zremrangebyscore(index, "-inf", int(time.time() * 1000))
            # The index lives as long as its longest link: set an expiry, or push it later.
            pipe.pexpireat(index, expires_ms, nx=True)
            pipe.pexpireat(index, expires_ms, gt=True)
            pipe.execute()

    def resolve(self, token: str, now: datetime) -> ExpiringLink | None:
        with _unreachable_as_unavailable():
            value = self._redis.get(self._link(token_hash(token)))
        if value is None:
            return None
        link = _parse(token, value)
        # Redis expires the key; the stored expiry also holds the link to the caller's clock.
        return link if link.expires_at > now else None

    def list_for_image(self, image_id: str, now: datetime) -> list[LinkInfo]:
        now_ms = int(now.timestamp() * 1000)
        with _unreachable_as_unavailable():
            digests = [_text(d) for d in self._redis.zrangebyscore(self._index(image_id), f"({now_ms}", "+inf")]
            values = self._redis.mget([self._link(d) for d in digests]) if digests else []
        found = []
        for digest, value in zip(digests, values):
            if value is None:  # revoked or expired between the two reads
                continue
            link = _parse("", value)
            if link.image_id == image_id and link.expires_at > now:
                found.append(LinkInfo(digest[:LINK_ID_LENGTH], image_id, link.created_at, link.expires_at))
        return found

    def revoke(self, image_id: str, link_id: str) -> bool:
        index = self._index(image_id)
        with _unreachable_as_unavailable():
            digests = [_text(d) for d in self._redis.zrange(index, 0, -1)]
            matching = [d for d in digests if d.startswith(link_id)]
            if not matching:
                return False
            pipe = self._redis.pipeline(transaction=True)
            for digest in matching:
                pipe.delete(self._link(digest))
            pipe.zrem(index, *matching)
            deleted = pipe.execute()
        return any(deleted[: len(matching)])

    def delete_for_image(self, image_id: str) -> None:
        index = self._index(image_id)

        def delete_all(pipe: redis.client.Pipeline) -> None:
            digests = pipe.zrange(index, 0, -1)
            pipe.multi()
            for digest in digests:
                pipe.delete(self._link(digest.decode() if isinstance(digest, bytes) else digest))
            pipe.delete(index)

        # WATCH the index: a link added meanwhile makes Redis refuse, and redis-py retries.
        with _unreachable_as_unavailable():
            self._redis.transaction(delete_all, index)

    def check(self) -> None:
        try:
            self._redis.ping()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise Unavailable(f"Redis is unreachable: {error}") from error

    def _link(self, digest: str) -> str:
        return f"{self._prefix}link:{digest}"

    def _index(self, image_id: str) -> str:
        return f"{self._prefix}image-links:{image_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(token: str, value: bytes | str) -> ExpiringLink:
    fields = _text(value).split(" ")
    owner_id = created_at = None
    if len(fields) == 4:
        owner, created_ms, image_id, expires_ms = fields
        owner_id, created_at = int(owner), datetime.fromtimestamp(int(created_ms) / 1000, UTC)
    elif len(fields) == 3:
        owner, image_id, expires_ms = fields
        owner_id = int(owner)
    else:
        image_id, expires_ms = fields
    expires_at = datetime.fromtimestamp(int(expires_ms) / 1000, UTC)
    return ExpiringLink(token, image_id, expires_at, owner_id, created_at)


@contextmanager
def _unreachable_as_unavailable() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise Unavailable(f"the link store (Redis) is unreachable: {error}") from error
