"""RedisLockManager on a real Redis: serialises holders of a key, and survives a crashed one."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from imagify.adapters.redis_links import make_redis
from imagify.adapters.redis_locks import RedisLockManager
from imagify.domain.errors import Unavailable

pytestmark = pytest.mark.integration

HOLD = 0.3


def hold_in_threads(locks: RedisLockManager, keys: list[str]) -> list[tuple[str, float, float]]:
    """Each thread holds its key for HOLD seconds; returns (key, entered, left) per holder."""
    spans: list[tuple[str, float, float]] = []
    start = threading.Barrier(len(keys))

    def work(key: str) -> None:
        start.wait()
        with locks.hold(key):
            entered = time.monotonic()
            time.sleep(HOLD)
            spans.append((key, entered, time.monotonic()))

    threads = [threading.Thread(target=work, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(spans) == len(keys)
    return sorted(spans, key=lambda span: span[1])


def test_two_holders_of_the_same_key_take_turns(redis_client: redis.Redis) -> None:
    locks = RedisLockManager(redis_client, timeout=10, blocking_timeout=5)
    (_, _, first_left), (_, second_entered, _) = hold_in_threads(locks, ["thumb:img-1:200"] * 2)
    assert second_entered >= first_left


def test_holders_of_different_keys_do_not_wait_for_each_other(redis_client: redis.Redis) -> None:
    locks = RedisLockManager(redis_client, timeout=10, blocking_timeout=5)
    (_, _, first_left), (_, second_entered, _) = hold_in_threads(
        locks, ["thumb:img-1:200", "thumb:img-1:400"]
    )
    assert second_entered < first_left


def test_a_crashed_holder_blocks_the_next_one_only_until_its_lock_expires(
    redis_client: redis.Redis,
) -> None:
    # What a holder whose process died leaves behind: a lock acquired, never released.
    assert redis_client.lock("imagify:lock:thumb:img-1:200", timeout=1.0).acquire(blocking=False)
    started = time.monotonic()
    with RedisLockManager(redis_client, blocking_timeout=5).hold("thumb:img-1:200"):
        waited = time.monotonic() - started
    assert 0.5 < waited < 2.0
    assert redis_client.keys("imagify:lock:*") == []  # released on exit


def test_waiting_longer_than_the_blocking_timeout_is_unavailable(redis_client: redis.Redis) -> None:
    locks = RedisLockManager(redis_client, timeout=10, blocking_timeout=0.3)
    with locks.hold("thumb:img-1:200"):
        with pytest.raises(Unavailable, match="timed out waiting for the 'thumb:img-1:200' lock"):
            with locks.hold("thumb:img-1:200"):
                pass


def test_redis_down_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    locks = RedisLockManager(make_redis(f"redis://127.0.0.1:{port}/0"))
    with pytest.raises(Unavailable, match="unreachable"):
        with locks.hold("thumb:img-1:200"):
            pass
