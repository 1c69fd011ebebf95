"""Login throttling on a fake clock: the in-memory adapter and the HTTP-edge policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from litestar.exceptions import TooManyRequestsException

from imagify.adapters.memory_throttle import MemoryLoginThrottle
from imagify.domain.errors import Unauthorized, Unavailable
from imagify.entrypoints.http.throttle import LoginLimits, login_keys, throttled_login

USER, ADDRESS = "user:ann", "address:10.0.0.1"
LIMITS = LoginLimits(per_username_and_address=3, per_address=4, per_username=5)


def three(*keys: str) -> dict[str, int]:
    return dict.fromkeys(keys, 3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> MemoryLoginThrottle:
    return MemoryLoginThrottle(window_seconds=60, clock=clock)


def test_attempts_up_to_the_limit_go_ahead_and_the_next_waits_for_the_window(throttle, clock):
    assert [throttle.attempt(three(USER)) for _ in range(3)] == [0, 0, 0]
    clock.now += 20
    assert throttle.attempt(three(USER)) == 40
    clock.now += 39.5
    assert throttle.attempt(three(USER)) == 1  # never 0 while blocked: rounded up
    clock.now += 0.5
    assert throttle.attempt(three(USER)) == 0  # a new window


def test_blocked_attempts_do_not_push_the_window_further(throttle, clock):
    for _ in range(3):
        throttle.attempt(three(USER))
    for _ in range(10):
        clock.now += 5
        throttle.attempt(three(USER))
    clock.now += 10
    assert throttle.attempt(three(USER)) == 0


def test_the_longest_wait_among_the_blocked_keys_is_answered(throttle, clock):
    for _ in range(3):
        throttle.attempt(three(ADDRESS))
    clock.now += 30
    for _ in range(3):
        throttle.attempt(three(USER))
    assert throttle.attempt(three(USER, ADDRESS)) == 60


def test_keys_are_counted_separately(throttle):
    for _ in range(3):
        throttle.attempt(three(USER, ADDRESS))
    other_user, other_address = "user:bob", "address:10.0.0.2"
    assert throttle.attempt(three(other_user, other_address)) == 0
    assert throttle.attempt(three(other_user, ADDRESS)) > 0
    assert throttle.attempt(three(USER, other_address)) > 0


def test_forgive_takes_back_one_attempt_and_reset_forgets_the_key(throttle):
    for _ in range(3):
        throttle.attempt(three(USER, ADDRESS))
    throttle.forgive([ADDRESS])
    assert throttle.attempt(three(ADDRESS)) == 0
    assert throttle.attempt(three(ADDRESS)) > 0
    throttle.reset(USER)
    assert [throttle.attempt(three(USER)) for _ in range(3)] == [0, 0, 0]


def test_forgiving_an_unknown_or_expired_key_does_nothing(throttle, clock):
    throttle.forgive(["nobody"])
    throttle.attempt(three(USER))
    clock.now += 61
    throttle.forgive([USER])
    assert [throttle.attempt(three(USER)) for _ in range(4)][-1] > 0  # no credit was left behind


def test_memory_stays_bounded_under_a_spray_of_usernames(clock):
    throttle = MemoryLoginThrottle(60, clock=clock, max_keys=100)
    for i in range(1000):
        throttle.attempt(three(f"user:{i}"))
    assert len(throttle._counts) <= 101
    clock.now += 61
    throttle.attempt(three("user:late"))
    assert throttle.attempt(three("user:late")) == 0


def test_keys_compare_byte_for_byte_as_usernames_do():
    assert login_keys("ann", "a", LIMITS) == {
        "address:a": 4, "user-address:ann a": 3, "user:ann": 5
    }
    assert login_keys("STRASSE", "a", LIMITS).keys().isdisjoint(
        set(login_keys("straße", "a", LIMITS)) - {"address:a"}
    )


def test_a_name_that_is_no_username_is_counted_against_the_address_only():
    for name in ("ann ", " ann", "", "a" * 65, "ann\n"):
        assert login_keys(name, "a", LIMITS) == {"address:a": 4}


class FakeAuth:
    def __init__(self, password: str = "right", error: Exception | None = None) -> None:
        self.password = password
        self.error = error

    def issue_token(self, username: str, password: str) -> tuple[str, datetime]:
        if self.error is not None:
            raise self.error
        if password != self.password:
            raise Unauthorized("wrong username or password")
        return "token", datetime(2030, 1, 1, tzinfo=UTC)


def login(throttle, auth, password: str, username: str = "ann", address: str = "10.0.0.1"):
    return throttled_login(throttle, auth, username, password, address, LIMITS)  # type: ignore[arg-type]


def test_the_right_password_is_refused_once_a_username_failed_too_often_from_many_addresses(throttle, clock):
    auth = FakeAuth()
    for i in range(5):
        with pytest.raises(Unauthorized):
            login(throttle, auth, "wrong", address=f"10.0.0.{i}")
    with pytest.raises(TooManyRequestsException) as refused:
        login(throttle, auth, "right", address="10.9.9.9")
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "60"}
    assert "60 seconds" in refused.value.detail
    clock.now += 60
    assert login(throttle, auth, "right", address="10.9.9.9")[0] == "token"


def test_an_attacker_at_one_address_cannot_lock_the_user_out(throttle):
    auth = FakeAuth()
    outcomes = []
    for _ in range(50):
        try:
            login(throttle, auth, "wrong", address="10.6.6.6")
        except (Unauthorized, TooManyRequestsException) as error:
            outcomes.append(type(error))
    assert outcomes == [Unauthorized] * 3 + [TooManyRequestsException] * 47
    assert login(throttle, auth, "right", address="10.0.0.1")[0] == "token"


def test_one_address_trying_many_usernames_is_throttled(throttle):
    auth = FakeAuth()
    for name in ("a", "b", "c", "d"):
        with pytest.raises(Unauthorized):
            login(throttle, auth, "wrong", username=name)
    with pytest.raises(TooManyRequestsException):
        login(throttle, auth, "right", username="e")


def test_a_success_resets_the_username_but_not_the_address(throttle):
    auth = FakeAuth()
    for _ in range(2):
        with pytest.raises(Unauthorized):
            login(throttle, auth, "wrong")
    login(throttle, auth, "right")
    for i in range(4):  # the username starts again from zero (2 + 4 would be over 5)...
        with pytest.raises(Unauthorized):
            login(throttle, auth, "wrong", address=f"10.0.1.{i}")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            login(throttle, auth, "wrong", username="bob")  # ...the address holds its 2 failures + these
    with pytest.raises(TooManyRequestsException):
        login(throttle, auth, "right", username="bob")


def test_successes_alone_never_throttle(throttle):
    auth = FakeAuth()
    for _ in range(20):
        assert login(throttle, auth, "right")[0] == "token"


def test_an_error_that_is_not_a_failed_login_is_not_counted(throttle):
    auth = FakeAuth(error=Unavailable("the database is unreachable"))
    for _ in range(10):
        with pytest.raises(Unavailable):
            login(throttle, auth, "right")
    auth.error = None
    assert login(throttle, auth, "right")[0] == "token"
