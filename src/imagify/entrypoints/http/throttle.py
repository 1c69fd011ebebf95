"""Login brute-force throttling at the HTTP edge: per (username, address), per address and
per username (OWASP's authentication guidance: slow guessing down, never lock a user out)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.openapi import ResponseSpec

from imagify.domain.errors import InvalidInput, Unauthorized
from imagify.domain.model import User, check_username
from imagify.domain.ports import LoginThrottle
from imagify.domain.services.auth import AuthService
from imagify.entrypoints.http.schemas import ErrorOut
from imagify.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TOO_MANY = {
    429: ResponseSpec(
        ErrorOut,
        description="Too many failed logins for this username or from this address: "
        "wait the seconds in Retry-After",
    )
}


def client_address(request: Request) -> str:
    """The peer address (behind a proxy, the one uvicorn's --proxy-headers trusts)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed per window: few per (username, address), more per address, and
    more per username than one address can spend, so no single attacker locks a user out."""

    per_username_and_address: int
    per_address: int
    per_username: int

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            settings.login_max_failures,
            settings.login_max_failures_per_address,
            settings.login_max_failures_per_username,
        )


def login_keys(username: str, address: str, limits: LoginLimits) -> dict[str, int]:
    """The counters a login is held to, with their limits.

    Byte for byte, as usernames compare: 'STRASSE' and 'straße' are two names. A name that
    is not a valid username can never log in (not even as 'ann' through 'ann '), so it is
    counted only against the address.
    """
    keys = {f"address:{address}": limits.per_address}
    try:
        check_username(username)
    except InvalidInput:
        return keys
    # A space is in no username: the pair cannot be read two ways.
    keys[f"user-address:{username} {address}"] = limits.per_username_and_address
    keys[f"user:{username}"] = limits.per_username
    return keys


def throttled(throttle: LoginThrottle, keys: dict[str, int], check: Callable[[], T]) -> T:
    """Run a password check unless its keys failed too often: an Unauthorized from `check`
    counts as a failure, success forgives the address and resets the name's counters, and
    any other error (the database down, a new password too short) counts nothing."""
    wait = throttle.attempt(keys)
    if wait:
        log.warning("login refused: too many failures", extra={"retry_after": wait})
        raise TooManyRequestsException(
            detail=f"too many failed logins for this username or from this address; "
            f"try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    try:
        result = check()
    except Unauthorized:
        raise  # counted already
    except BaseException:
        throttle.forgive(list(keys))
        raise
    address_key, *user_keys = keys  # login_keys puts the address first
    for key in user_keys:
        throttle.reset(key)
    throttle.forgive([address_key])
    return result


def throttled_login(
    throttle: LoginThrottle,
    auth: AuthService,
    username: str,
    password: str,
    address: str,
    limits: LoginLimits,
) -> tuple[str, datetime]:
    """A token for the right password, unless this username or address failed too often."""
    keys = login_keys(username, address, limits)
    return throttled(throttle, keys, lambda: auth.issue_token(username, password))


def throttled_password_change(
    throttle: LoginThrottle,
    auth: AuthService,
    user: User,
    current_password: str,
    new_password: str,
    address: str,
    limits: LoginLimits,
) -> None:
    """A password change, its current password held to the same counters as a login: a
    stolen token is no way to guess the password behind it."""
    keys = login_keys(user.username, address, limits)
    throttled(throttle, keys, lambda: auth.change_password(user, current_password, new_password))
