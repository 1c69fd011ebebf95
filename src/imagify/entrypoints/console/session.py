"""The console's session and CSRF rules.

The session is a bearer token from the API's own signer, kept in an HttpOnly, SameSite=Lax
cookie and resolved by AuthService.authenticate: a password change, a deleted user or a
logout (AuthService.revoke) ends a session exactly as it ends a token. Every
state-changing request carries a CSRF token, an HMAC of the session under the app's
secret, in a form field or an X-CSRF-Token header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import anyio
from litestar import Request, Response

from imagify.domain.errors import DomainError, Forbidden, Unauthorized
from imagify.domain.model import User
from imagify.entrypoints.http.deps import SESSION_COOKIE, root
from imagify.settings import secret_key

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_COOKIE = "imagify_login"  # a random nonce binding the login form's CSRF token
LOGIN_PATH = "/console/login"


class LoginRequired(DomainError):
    """No session, or one that no longer holds: the console asks to log in (again)."""


class CsrfRefused(Forbidden):
    """A state-changing request without the token of its session."""


def _secret(request: Request) -> bytes:
    state = request.app.state
    key = state.get("console_secret")
    if key is None:
        key = state.console_secret = secret_key(root(request).settings()).encode()
    return key  # type: ignore[no-any-return]


def sign(secret: bytes, purpose: str, value: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _mac(request: Request, purpose: str, value: str) -> str:
    return sign(_secret(request), purpose, value)


def csrf_token(request: Request, session: str) -> str:
    return _mac(request, "csrf", session)


def session_of(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def signed_in(request: Request) -> User:
    """The session's user as they are now; LoginRequired without a live session."""
    token = session_of(request)
    if token is None:
        raise LoginRequired("log in to use the console")
    auth = root(request).auth()
    auth.begin_request()
    try:
        user = await auth.known(token)
        if user is None:
            user = await anyio.to_thread.run_sync(auth.authenticate, token)
    except Unauthorized as error:
        raise LoginRequired(f"your session has ended: {error.detail}") from None
    return user


async def signed_in_admin(request: Request) -> User:
    user = await signed_in(request)
    if not user.is_admin:
        raise Forbidden("only admins may use the admin pages")
    return user


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def check_csrf(request: Request, given: object) -> None:
    """Refuse (403) a change whose token is missing or not its session's."""
    session = session_of(request)
    if session is None or not _same(given or request.headers.get(CSRF_HEADER), csrf_token(request, session)):
        raise CsrfRefused("the form was missing its security token or it has expired; reload the page and try again")


def login_nonce(request: Request) -> tuple[str, bool]:
    """The login form's nonce, and whether it is new (and so must be set as a cookie)."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    return (nonce, False) if nonce else (secrets.token_urlsafe(24), True)


def login_csrf(request: Request, nonce: str) -> str:
    return _mac(request, "login", nonce)


def check_login_csrf(request: Request, given: object) -> None:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not _same(given, login_csrf(request, nonce)):
        raise CsrfRefused("the login form has expired; reload the page and try again")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str, expires: datetime) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path="/", max_age=max(0, int((expires - datetime.now(UTC)).total_seconds())),
        httponly=True, samesite="lax", secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, path=LOGIN_PATH, httponly=True, samesite="lax", secure=_secure(request)
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
