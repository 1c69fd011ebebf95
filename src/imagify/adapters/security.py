"""Password hashing with argon2 and bearer tokens signed as JWTs (HS256)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import argon2
import jwt

from imagify.domain.errors import Unauthorized
from imagify.domain.ports import TokenClaims

TOKEN_ID_LENGTH = 64  # at most, as stored by a logout


class Argon2PasswordHasher:
    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class JwtTokenSigner:
    """Tokens carry only the user id, its token version, expiry and a random id (`jti`):
    permissions (and whether the version is still the user's, whether the token was
    logged out) are read on every request. A token from before ids has its hash for one.

    A token whose signature checked out is remembered (a bounded LRU): it is a pure
    function of the token and the secret, so a client's next request skips the HMAC and
    the JSON decode. Expiry is still compared with the clock on every read.
    """

    _ALGORITHM = "HS256"
    _REMEMBERED = 10_000

    def __init__(self, secret: str, ttl: timedelta) -> None:
        self._secret = secret
        self._ttl = ttl
        self._verified = functools.lru_cache(maxsize=self._REMEMBERED)(self._verify)

    def issue(self, user_id: int, version: int, now: datetime) -> tuple[str, datetime]:
        expires = now + self._ttl
        claims = {
            "sub": str(user_id),
            "ver": version,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_urlsafe(16),  # two tokens of one second still differ
        }
        return jwt.encode(claims, self._secret, algorithm=self._ALGORITHM), expires

    def read(self, token: str, now: datetime) -> TokenClaims:
        claims = self._verified(token)  # raises Unauthorized (never remembered)
        if claims.expires_at <= now:
            raise Unauthorized("the bearer token has expired; log in again")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._ALGORITHM],
                options={"require": ["sub", "exp"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is invalid; log in again") from None
        version = claims.get("ver", 0)  # tokens from before versions: the first version
        if isinstance(version, bool) or not isinstance(version, int):
            raise Unauthorized("the bearer token is invalid; log in again")
        token_id = claims.get("jti", token_hash(token))
        if not isinstance(token_id, str) or not 0 < len(token_id) <= TOKEN_ID_LENGTH:
            raise Unauthorized("the bearer token is invalid; log in again")
        try:
            expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
            return TokenClaims(int(claims["sub"]), version, token_id, expires)
        except (TypeError, ValueError, OverflowError, OSError):
            raise Unauthorized("the bearer token is invalid; log in again") from None


def token_hash(token: str) -> str:
    """What link stores keep instead of a link token: looked up by hash, never kept in clear."""
    return hashlib.sha256(token.encode()).hexdigest()
