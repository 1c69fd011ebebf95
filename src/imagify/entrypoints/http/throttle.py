"""Login brute-force throttling at the HTTP edge: per username and per client address."""

from __future__ import annotations

import logging
from datetime import datetime

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.openapi import ResponseSpec

from imagify.domain.errors import Unauthorized
from imagify.domain.ports import LoginThrottle
from imagify.domain.services.auth import AuthService
from imagify.entrypoints.http.schemas import ErrorOut

log = logging.getLogger(__name__)

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


def login_keys(username: str, address: str) -> tuple[str, str]:
    return f"user:{username.strip().casefold()}", f"address:{address}"


def throttled_login(
    throttle: LoginThrottle, auth: AuthService, username: str, password: str, address: str
) -> tuple[str, datetime]:
    """A token for the right password, unless this username or address failed too often."""
    user_key, address_key = login_keys(username, address)
    wait = throttle.attempt([user_key, address_key])
    if wait:
        log.warning("login refused: too many failures", extra={"client": address, "retry_after": wait})
        raise TooManyRequestsException(
            detail=f"too many failed logins for this username or from this address; "
            f"try again in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    try:
        issued = auth.issue_token(username, password)
    except Unauthorized:
        raise  # counted already
    except BaseException:
        throttle.forgive([user_key, address_key])  # not a failed login: the database was down, say
        raise
    throttle.reset(user_key)
    throttle.forgive([address_key])
    return issued
