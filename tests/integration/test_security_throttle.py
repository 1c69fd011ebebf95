"""Login brute force over HTTP: 429 with Retry-After per username and per client address,
on both backends (memory counters embedded, Redis counters in cloud mode), and logins that
keep working when Redis is down."""

from __future__ import annotations

import logging
import re
import time

import pytest

from imagify.adapters.memory_throttle import MemoryLoginThrottle
from imagify.adapters.redis_links import make_redis
from imagify.adapters.redis_throttle import RedisLoginThrottle
from tests.integration.conftest import PASSWORD, assert_error, embedded_settings, login, running_app

TOKEN = "/api/v1/auth/token"
DEAD_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


class ClientAddress:
    """Sets the ASGI client address the app sees, as uvicorn does from trusted proxy headers."""

    def __init__(self, app) -> None:
        self.host = "203.0.113.1"
        inner = app.asgi_handler

        async def with_address(scope, receive, send):
            if scope["type"] == "http":
                scope["client"] = (self.host, 40000)
            await inner(scope, receive, send)

        app.asgi_handler = with_address


def log_in(client, username: str, password: str):
    return client.post(TOKEN, json={"username": username, "password": password})


LIMITS = {
    "IMAGIFY_LOGIN_MAX_FAILURES": "3",
    "IMAGIFY_LOGIN_MAX_FAILURES_PER_ADDRESS": "4",
    "IMAGIFY_LOGIN_MAX_FAILURES_PER_USERNAME": "5",
}


@pytest.fixture
def throttled(make_settings):
    """An app allowing per 300 s 3 failures per (username, address), 4 per address and 5 per
    username, whose client address the test picks."""
    with running_app(make_settings(**LIMITS)) as (container, client):
        for name in ("ann", "bob"):
            container.admin().create_user("tests", name, PASSWORD, ["basic"], False)
        yield client, ClientAddress(client.app)


def assert_throttled(response) -> int:
    detail = assert_error(response, 429)
    assert "too many failed logins" in detail
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 300
    assert str(wait) in detail
    return wait


def test_a_username_that_failed_too_often_gets_429_even_with_the_right_password(throttled):
    client, address = throttled
    for i in range(5):
        address.host = f"203.0.113.{i + 10}"  # from five places: only the username is counted
        assert_error(log_in(client, "ann", "wrong-password"), 401)
    address.host = "198.51.100.7"
    assert_throttled(log_in(client, "ann", PASSWORD))
    assert_error(log_in(client, "ANN", PASSWORD), 401)  # another name, that nobody has
    assert log_in(client, "bob", PASSWORD).status_code == 201  # other users are unaffected


def test_an_attacker_failing_50_times_at_one_address_does_not_lock_the_user_out(make_settings):
    with running_app(make_settings()) as (container, client):  # the default limits
        container.admin().create_user("tests", "ann", PASSWORD, ["basic"], False)
        address = ClientAddress(client.app)
        address.host = "203.0.113.66"
        statuses = [log_in(client, "ann", "wrong-password").status_code for _ in range(50)]
        assert statuses == [401] * 5 + [429] * 45, statuses
        address.host = "198.51.100.7"
        assert log_in(client, "ann", PASSWORD).status_code == 201


def test_usernames_are_counted_byte_for_byte(throttled):
    client, _ = throttled
    client.app.state.container.admin().create_user("tests", "straße", PASSWORD, ["basic"], False)
    for _ in range(3):
        assert_error(log_in(client, "STRASSE", "wrong-password"), 401)
    assert_throttled(log_in(client, "STRASSE", PASSWORD))
    assert log_in(client, "straße", PASSWORD).status_code == 201  # from the same address


@pytest.mark.parametrize("name", ["ann ", " ann", "ann\t"])
def test_a_name_that_is_no_username_never_logs_in(throttled, name):
    client, _ = throttled
    detail = assert_error(log_in(client, name, PASSWORD), 401)  # where MySQL pads, 'ann ' = 'ann'
    assert detail == assert_error(log_in(client, "nobody", PASSWORD), 401)
    assert log_in(client, "ann", PASSWORD).status_code == 201


def test_one_address_guessing_many_usernames_gets_429(throttled):
    client, address = throttled
    for name in ("carol", "dave", "erin", "ann"):
        assert_error(log_in(client, name, "wrong-password"), 401)
    assert_throttled(log_in(client, "bob", PASSWORD))
    address.host = "198.51.100.8"
    assert log_in(client, "bob", PASSWORD).status_code == 201


def test_a_success_resets_the_usernames_failures(throttled):
    client, address = throttled
    for round_ in range(3):
        address.host = f"203.0.113.{round_ + 20}"  # a fresh address each round
        for _ in range(2):
            assert_error(log_in(client, "ann", "wrong-password"), 401)
        assert log_in(client, "ann", PASSWORD).status_code == 201


def test_the_form_login_is_throttled_too(throttled):
    client, _ = throttled
    for _ in range(3):
        client.post(TOKEN, data={"grant_type": "password", "username": "ann", "password": "nope"})
    response = client.post(TOKEN, data={"grant_type": "password", "username": "ann", "password": PASSWORD})
    assert_throttled(response)


def test_the_login_works_again_once_the_window_has_passed(make_settings):
    settings = make_settings(IMAGIFY_LOGIN_MAX_FAILURES="2", IMAGIFY_LOGIN_WINDOW_SECONDS="1")
    with running_app(settings) as (container, client):
        container.admin().create_user("tests", "ann", PASSWORD, ["basic"], False)
        for _ in range(2):
            assert_error(log_in(client, "ann", "wrong-password"), 401)
        assert assert_throttled(log_in(client, "ann", PASSWORD)) == 1
        time.sleep(1.2)
        assert log_in(client, "ann", PASSWORD).status_code == 201


@pytest.fixture
def redis_settings(tmp_path, redis_client, redis_url):
    """SQLite and a folder, but counters (and links) in the real, emptied test Redis."""
    return embedded_settings(tmp_path, IMAGIFY_REDIS_URL=redis_url, IMAGIFY_LOGIN_MAX_FAILURES="3")


def test_redis_holds_only_hashed_counters_that_expire(redis_settings):
    with running_app(redis_settings) as (container, client):
        assert isinstance(container.login_throttle(), RedisLoginThrottle)
        for _ in range(3):
            log_in(client, "ann-the-victim", "wrong-password")
        redis_client = container.redis()
        keys = [k.decode() for k in redis_client.scan_iter("imagify:login-failures:*")]
        assert len(keys) == 3  # the username, the address, the pair
        for key in keys:
            assert re.fullmatch(r"imagify:login-failures:[0-9a-f]{64}", key)
            assert 0 < redis_client.ttl(key) <= 300
            assert redis_client.get(key) == b"3"
        assert_throttled(log_in(client, "ann-the-victim", "wrong-password"))


def test_counters_in_redis_are_shared_by_every_process(redis_settings):
    with running_app(redis_settings) as (container, first), running_app(redis_settings) as (_, second):
        container.admin().create_user("tests", "ann", PASSWORD, ["basic"], False)
        for client in (first, second, first):
            assert_error(log_in(client, "ann", "wrong-password"), 401)
        assert_throttled(log_in(second, "ann", PASSWORD))


class Captured(logging.Handler):
    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self._logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> Captured:
        self._logger.addHandler(self)
        self._level, self._logger.level = self._logger.level, logging.DEBUG
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def test_with_redis_down_logins_work_and_are_still_throttled_per_process(tmp_path):
    settings = embedded_settings(tmp_path, IMAGIFY_REDIS_URL=DEAD_REDIS, IMAGIFY_LOGIN_MAX_FAILURES="3")
    with running_app(settings) as (container, client), Captured("imagify.adapters.redis_throttle") as logs:
        assert isinstance(container.login_throttle(), RedisLoginThrottle)
        ann = login(container, client, "ann", "basic")
        assert client.get("/api/v1/me", headers=ann.headers).status_code == 200
        for _ in range(3):
            assert_error(log_in(client, "ann", "wrong-password"), 401)
        assert_throttled(log_in(client, "ann", PASSWORD))
    assert len([m for m in logs.messages if "falls back" in m]) == 1, logs.messages  # once, not per login


def test_the_redis_throttle_goes_back_to_redis_when_it_returns(redis_client):
    memory = MemoryLoginThrottle(60)
    dead = RedisLoginThrottle(make_redis(DEAD_REDIS), 60, fallback=memory)
    assert dead.attempt({"user:ann": 3}) == 0
    assert memory._counts["user:ann"][0] == 1  # counted in memory meanwhile
    live = RedisLoginThrottle(redis_client, 60, fallback=memory)
    live._degraded = True  # as if it had failed before
    with Captured("imagify.adapters.redis_throttle") as logs:
        assert [live.attempt({"user:bob": 3}) for _ in range(4)] == [0, 0, 0, 60]
    assert any("back on Redis" in m for m in logs.messages)
    live.reset("user:ann")
    assert "user:ann" not in memory._counts  # a reset clears what memory counted too
