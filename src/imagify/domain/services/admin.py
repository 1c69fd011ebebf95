"""Use cases of administration: tiers and user accounts, shared by the CLI and the HTTP API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from imagify.domain.errors import Conflict, InvalidInput, NotFound
from imagify.domain.model import User, check_password, check_username
from imagify.domain.permissions import Permissions, Tier, check_tier_name
from imagify.domain.ports import BlobStorage, LinkStore, PasswordHasher, UnitOfWork, UnitOfWorkFactory
from imagify.domain.quotas import Limits
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.image_store import delete_images

audit = logging.getLogger("imagify.audit")

MAX_USERS_PAGE = 100
LAST_ADMIN = "at least one admin must remain"


class AdminService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        blobs: BlobStorage,
        links: LinkStore,
        cache: ReadCache,
        max_upload_bytes: int | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._blobs = blobs
        self._links = links
        self._cache = cache  # told of every change, so permissions apply on the next request
        self._max_upload_bytes = max_upload_bytes  # the server's own limit, if known

    def _limits(self, limits: Limits) -> Limits:
        if self._max_upload_bytes is not None:
            limits.check_server_upload_limit(self._max_upload_bytes)
        return limits

    # Tiers

    def list_tiers(self) -> list[Tier]:
        with self._uow() as uow:
            return sorted(uow.tiers.list(), key=lambda t: t.name)

    def tiers_with_holders(self) -> list[tuple[Tier, int]]:
        """Every tier by name, with how many users hold it."""
        with self._uow() as uow:
            tiers = sorted(uow.tiers.list(), key=lambda t: t.name)
            return [(tier, uow.users.count_holding_tier(tier.name)) for tier in tiers]

    def get_tier(self, name: str) -> Tier:
        with self._uow() as uow:
            return _tier(uow, name)

    def create_tier(
        self, actor: str, name: str, permissions: Iterable[str], limits: Mapping[str, object] | None = None
    ) -> Tier:
        tier = Tier(check_tier_name(name), Permissions.parse(permissions), self._limits(Limits.parse(limits)))
        with self._uow() as uow:
            if uow.tiers.get(name) is not None:
                raise Conflict(f"a tier named {name!r} already exists")
            uow.tiers.add(tier)
            uow.commit()
            self._cache.users_changed()
        _audit(actor, "tier.create", name, permissions=tier.permissions.sorted(), limits=tier.limits.as_dict())
        return tier

    def replace_tier(
        self, actor: str, name: str, permissions: Iterable[str], limits: Mapping[str, object] | None = None
    ) -> Tier:
        """Replace the permissions, and the limits when given (else they stay as they are)."""
        parsed = Permissions.parse(permissions)
        new_limits = None if limits is None else self._limits(Limits.parse(limits))
        with self._uow() as uow:
            current = _tier(uow, name)
            tier = Tier(name, parsed, current.limits if new_limits is None else new_limits)
            uow.tiers.save(tier)
            uow.commit()
            self._cache.users_changed()
        _audit(actor, "tier.update", name, permissions=tier.permissions.sorted(), limits=tier.limits.as_dict())
        return tier

    def patch_tier(
        self,
        actor: str,
        name: str,
        *,
        permissions: Iterable[str] | None = None,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        limits: Mapping[str, object] | None = None,
    ) -> Tier:
        """Replace the permissions, or add and remove some, and change the limits named in
        `limits` (null removes one), in one transaction."""
        added, removed = Permissions.parse(add), Permissions.parse(remove)
        Limits.parse(limits)  # bad names or values are refused before anything is read
        with self._uow() as uow:
            found = _tier(uow, name)
            base = Permissions.parse(permissions) if permissions is not None else found.permissions
            new_limits = found.limits if limits is None else self._limits(found.limits.changed(limits))
            tier = Tier(name, Permissions((base.codenames | added.codenames) - removed.codenames), new_limits)
            uow.tiers.save(tier)
            uow.commit()
            self._cache.users_changed()
        _audit(actor, "tier.update", name, permissions=tier.permissions.sorted(), limits=tier.limits.as_dict())
        return tier

    def delete_tier(self, actor: str, name: str) -> None:
        with self._uow() as uow:
            # Exclusive: an assignment of this tier in flight commits first (and is counted
            # below) or finds the tier gone; no user is left holding a tier that is not there.
            if name not in uow.tiers.lock([name], exclusive=True):  # compared here, byte for byte
                raise NotFound(f"no tier named {name!r}")
            holders = uow.users.count_holding_tier(name)
            if holders:
                raise Conflict(
                    f"tier {name!r} is held by {holders} user{'s' if holders != 1 else ''}; "
                    "move them to another tier first"
                )
            uow.tiers.delete(name)
            uow.commit()
            self._cache.users_changed()
        _audit(actor, "tier.delete", name)

    # Users

    def list_users(
        self, after: str | None = None, limit: int = MAX_USERS_PAGE, search: str | None = None
    ) -> tuple[list[User], bool]:
        """A page of users by name after `after` (whose name contains `search`, in any
        case), and whether more follow."""
        if not 1 <= limit <= MAX_USERS_PAGE:
            raise InvalidInput(f"'limit' must be between 1 and {MAX_USERS_PAGE}, got {limit}")
        with self._uow() as uow:
            users = uow.users.list(after, limit + 1, search or None)
        return users[:limit], len(users) > limit

    def get_user(self, username: str) -> User:
        with self._uow() as uow:
            return _user(uow, username)

    def create_user(
        self, actor: str, username: str, password: str, tiers: Iterable[str], is_admin: bool = False
    ) -> User:
        check_username(username)
        check_password(password)
        tier_names = list(dict.fromkeys(tiers))
        with self._uow() as uow:
            _check_tiers(uow, tier_names)
            if uow.users.get_by_username(username) is not None:
                raise Conflict(f"a user named {username!r} already exists")
            uow.users.add(User(None, username, self._hasher.hash(password), is_admin, tier_names))
            uow.commit()
            self._cache.users_changed()
            user = _user(uow, username)
        _audit(actor, "user.create", username, tiers=tier_names, is_admin=is_admin)
        return user

    def update_user(
        self,
        actor: str,
        username: str,
        *,
        password: str | None = None,
        tiers: Iterable[str] | None = None,
        is_admin: bool | None = None,
    ) -> User:
        changed: dict[str, object] = {}
        with self._uow() as uow:
            # Before reading: a demotion or deletion of another admin in flight ends first.
            admins = uow.users.lock_admins() if is_admin is False else 0
            user = _user(uow, username)
            if password is not None:
                password_hash = self._hasher.hash(check_password(password))
                changed["password"] = "changed"  # ends every token the user holds
            if tiers is not None:
                user.tiers = list(dict.fromkeys(tiers))
                _check_tiers(uow, user.tiers)
                changed["tiers"] = user.tiers
            if is_admin is not None:
                if not is_admin and username == actor:
                    raise Conflict("you cannot remove your own admin flag; ask another admin")
                if not is_admin and user.is_admin and admins <= 1:
                    raise Conflict(LAST_ADMIN)
                user.is_admin = is_admin
                changed["is_admin"] = is_admin
            uow.users.save(user)
            if password is not None:
                assert user.id is not None
                uow.users.set_password(user.id, password_hash)
            uow.commit()
            self._cache.users_changed()
            user = _user(uow, username)
        _audit(actor, "user.update", username, **changed)
        return user

    def delete_user(self, actor: str, username: str) -> None:
        if username == actor:
            raise Conflict("you cannot delete your own account; ask another admin")
        with self._uow() as uow:
            # The admins' rows, then the user's, held until the row is gone: a deletion or
            # demotion of another admin in flight ends first, and an upload in flight either
            # commits first (its image is listed below) or finds its owner gone.
            admins = uow.users.lock_admins()
            user = _user(uow, username)
            assert user.id is not None
            if not uow.users.lock(user.id, exclusive=True):
                raise NotFound(f"no user named {username!r}")
            if user.is_admin and admins <= 1:
                raise Conflict(LAST_ADMIN)
            uow.users.delete(user.id)
            uow.commit()
            self._cache.users_changed()
        with self._uow() as uow:
            image_ids = uow.images.ids_owned(user.id)
        # Killed before this ends, the doctor finds the images left (their owner is gone).
        delete_images(self._uow, self._blobs, self._links, image_ids, self._cache)
        _audit(actor, "user.delete", username, images=len(image_ids))


def _tier(uow: UnitOfWork, name: str) -> Tier:
    # A name no tier can have is looked up nowhere: MySQL's PAD SPACE would find 'basic '.
    tier = uow.tiers.get(name) if _valid(check_tier_name, name) else None
    if tier is None:
        raise NotFound(f"no tier named {name!r}")
    return tier


def _user(uow: UnitOfWork, username: str) -> User:
    user = uow.users.get_by_username(username) if _valid(check_username, username) else None
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _valid(check: Callable[[str], str], name: str) -> bool:
    try:
        check(name)
    except InvalidInput:
        return False
    return True


def _check_tiers(uow: UnitOfWork, names: list[str]) -> None:
    """Every tier exists, and (rows held shared) still will when the unit of work commits."""
    held = uow.tiers.lock(names, exclusive=False)
    unknown = [n for n in names if n not in held]
    if unknown:
        known = {t.name for t in uow.tiers.list()}
        raise InvalidInput(
            f"unknown tier{'s' if len(unknown) > 1 else ''}: {', '.join(map(repr, unknown))}; "
            f"known tiers: {', '.join(sorted(known)) or 'none'}"
        )


def _audit(actor: str, action: str, target: str, **details: object) -> None:
    audit.info(
        "%s %s by %s",
        action,
        target,
        actor,
        extra={"actor": actor, "action": action, "target": target, **details},
    )
