"""Use cases on identity: issue a token for a password, find the user behind a token, end one."""

from __future__ import annotations

import secrets
from datetime import datetime

from imagify.domain.errors import Conflict, InvalidInput, Unauthorized
from imagify.domain.model import User, check_password, check_username
from imagify.domain.ports import Clock, PasswordHasher, TokenClaims, TokenSigner, UnitOfWorkFactory
from imagify.domain.read_cache import RECORD_BYTES, ReadCache

FIRST_ADMIN = "admin"
# The read cache's key of a user's own record, with the ids of the user's logged-out
# tokens: what a token is checked against (a logout changes the owner's counter).
USER = ("user",)
LOGGED_OUT = "this session was logged out; log in again"
SignedIn = tuple[User, frozenset[str]]  # the user, and the ids of their live logged-out tokens


def signed_in(uow_factory: UnitOfWorkFactory, cache: ReadCache, user_id: int, now: datetime) -> SignedIn | None:
    """The user as they are now with the ids of their logged-out tokens not yet expired,
    in one transaction (from memory while nothing of the user's changed); None once deleted."""

    def load() -> SignedIn | None:
        with uow_factory() as uow:
            user = uow.users.get(user_id)
            if user is None:
                return None
            # Most users have no live logged-out token: then the user's row is the one read.
            revoked = uow.revoked_tokens.live(user_id, now) if user.has_revoked_tokens(now) else frozenset()
            return user, revoked

    return cache.fetch(user_id, USER, load, weight=2 * RECORD_BYTES)


def current_user(uow_factory: UnitOfWorkFactory, cache: ReadCache, user_id: int, now: datetime) -> User | None:
    """The user as they are now (from memory while nothing changed), or None once deleted."""
    known = signed_in(uow_factory, cache, user_id, now)
    return None if known is None else known[0]


def known_user(cache: ReadCache, user_id: int) -> SignedIn | None:
    """signed_in() from memory only: None when it needs the database."""
    return cache.peek(user_id, USER)  # type: ignore[return-value]


def _current(user: User, revoked: frozenset[str], claims: TokenClaims) -> User:
    if user.token_version != claims.version:
        raise Unauthorized("this token was issued before the password changed; log in again")
    if claims.token_id in revoked:
        raise Unauthorized(LOGGED_OUT)
    return user


class AuthService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        signer: TokenSigner,
        clock: Clock,
        cache: ReadCache,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._signer = signer
        self._clock = clock
        self._cache = cache
        self._decoy_hash: str | None = None

    def issue_token(self, username: str, password: str) -> tuple[str, datetime]:
        try:
            check_username(username)
        except InvalidInput:
            user = None  # never a user's, even where the database pads: 'ann ' is not 'ann'
        else:
            with self._uow() as uow:
                user = uow.users.get_by_username(username)
        if user is None:
            # Spend the same time as a real check, so timing does not tell which names exist.
            self._hasher.verify(self._decoy(), password)
            raise Unauthorized("wrong username or password")
        if not self._hasher.verify(user.password_hash, password):
            raise Unauthorized("wrong username or password")
        assert user.id is not None
        return self._signer.issue(user.id, user.token_version, self._clock.now())

    def begin_request(self) -> None:
        """Start a request's reads (stamps are then read once per owner, in cloud mode)."""
        self._cache.begin_request()

    async def known(self, token: str) -> User | None:
        """The token's user from memory, or None when it needs the database.

        Awaits at most the user's stamp (cloud mode); never blocks an event loop.
        """
        claims = self._signer.read(token, self._clock.now())
        await self._cache.prepare(claims.user_id)
        known = known_user(self._cache, claims.user_id)
        return None if known is None else _current(*known, claims)

    def authenticate(self, token: str) -> User:
        """The token's user with permissions as they are now, not as when it was issued;
        Unauthorized once the user is gone, their password changed since, or the token was
        logged out."""
        return self._authenticated(token, self._clock.now())[0]

    def _authenticated(self, token: str, now: datetime) -> tuple[User, TokenClaims]:
        claims = self._signer.read(token, now)
        known = signed_in(self._uow, self._cache, claims.user_id, now)
        if known is None:
            raise Unauthorized("the user of this token no longer exists; log in again")
        return _current(*known, claims), claims

    def revoke(self, token: str) -> None:
        """Log out: end this token now, on every process; the user's other tokens go on.
        Unauthorized when the token no longer works anyway."""
        now = self._clock.now()
        _, claims = self._authenticated(token, now)
        with self._uow() as uow:
            # Held shared against a deletion of the user, so no row outlives them.
            if not uow.users.lock(claims.user_id, exclusive=False):
                raise Unauthorized("the user of this token no longer exists; log in again")
            uow.revoked_tokens.delete_expired(claims.user_id, now)
            uow.revoked_tokens.add(claims.user_id, claims.token_id, claims.expires_at)
            uow.commit()
        self._cache.owner_changed(claims.user_id)

    def change_password(self, user: User, current_password: str, new_password: str) -> None:
        """Self-service: the current password, then the new one; every older token ends."""
        check_password(new_password)
        assert user.id is not None
        with self._uow() as uow:
            stored = uow.users.get(user.id)
        if stored is None:
            raise Unauthorized("the user of this token no longer exists; log in again")
        if not self._hasher.verify(stored.password_hash, current_password):
            raise Unauthorized("the current password is wrong")
        password_hash = self._hasher.hash(new_password)
        with self._uow() as uow:
            uow.users.set_password(user.id, password_hash)
            uow.commit()
        self._cache.users_changed()

    def ensure_first_admin(self, password: str | None) -> str | None:
        """Create the `admin` user when there is no admin yet; return a generated password."""
        if password:
            check_password(password)
        try:
            generated = self._create_first_admin(password)
        except Conflict:
            # Another process starting at the same moment created it first.
            if self.has_admin():
                return None
            raise
        self._cache.users_changed()
        return generated

    def _create_first_admin(self, password: str | None) -> str | None:
        with self._uow() as uow:
            if uow.users.count_admins() > 0:
                return None
            generated = None if password else secrets.token_urlsafe(15)
            password_hash = self._hasher.hash(password or generated or "")
            existing = uow.users.get_by_username(FIRST_ADMIN)
            if existing is not None and existing.id is not None:
                existing.is_admin = True
                uow.users.save(existing)
                uow.users.set_password(existing.id, password_hash)
            else:
                tiers = ["enterprise"] if uow.tiers.get("enterprise") is not None else []
                uow.users.add(User(None, FIRST_ADMIN, password_hash, True, tiers))
            uow.commit()
        return generated

    def has_admin(self) -> bool:
        with self._uow() as uow:
            return uow.users.count_admins() > 0

    def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._decoy_hash
