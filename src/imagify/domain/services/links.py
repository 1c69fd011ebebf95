"""Use cases on expiring links: create one for an owned image, resolve one.

A link is decided when it is followed, not when it was made: it opens its image only while
the image exists and its owner exists and still holds `can_generate_expiring_link`.
"""

from __future__ import annotations

from datetime import datetime

from imagify.domain.errors import Forbidden, NotFound
from imagify.domain.model import ExpiringLink, Image, LinkInfo, User, check_link_id, link_lifetime
from imagify.domain.ports import Clock, IdGenerator, LinkStore, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.auth import current_user, known_user
from imagify.domain.services.image_store import owned_image

GONE = "this link is unknown or has expired"

# What a token leads to, remembered as a fact stamped by its owner: (image id, owner id, expiry).
Fact = tuple[str, int, datetime]


class LinkService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        links: LinkStore,
        clock: Clock,
        ids: IdGenerator,
        cache: ReadCache,
    ) -> None:
        self._uow = uow
        self._links = links
        self._clock = clock
        self._ids = ids
        self._cache = cache

    def create(self, owner: User, image_id: str, seconds: object) -> ExpiringLink:
        if owner.id is None or owned_image(self._uow, self._cache, owner.id, image_id) is None:
            raise NotFound(f"no image with id {image_id!r}")
        if not owner.permissions.expiring_links:
            raise Forbidden("your tiers do not include generating expiring links")
        lifetime = link_lifetime(seconds, owner.limits)
        now = self._clock.now()
        link = ExpiringLink(self._ids.link_token(), image_id, now + lifetime, owner.id, now)
        self._links.add(link)
        return link

    def list(self, owner: User, image_id: str) -> list[LinkInfo]:
        """The owner's image's live links (ids and dates, never tokens)."""
        self._owned(owner, image_id)
        return self._links.list_for_image(image_id, self._clock.now())

    def revoke(self, owner: User, image_id: str, link_id: str | None = None) -> None:
        """End one link of the owner's image (by id), or all of them when link_id is None.

        The owner's change counter moves after, so every process forgets the link at once.
        """
        owner_id = self._owned(owner, image_id)
        try:
            if link_id is None:
                self._links.delete_for_image(image_id)
            elif not self._links.revoke(image_id, check_link_id(link_id)):
                raise NotFound(f"no live link with id {link_id!r} on image {image_id!r}")
        finally:
            self._cache.owner_changed(owner_id)

    def _owned(self, owner: User, image_id: str) -> int:
        if owner.id is None or owned_image(self._uow, self._cache, owner.id, image_id) is None:
            raise NotFound(f"no image with id {image_id!r}")
        return owner.id

    def resolve(self, token: str) -> Image:
        now = self._clock.now()
        fact: Fact | None = self._cache.peek_fact(("link", token))  # type: ignore[assignment]
        if fact is None:
            fact = self._load_fact(token, now)
        image_id, owner_id, expires_at = fact
        _check_live(expires_at, now)
        owner = current_user(self._uow, self._cache, owner_id, now)
        image = owned_image(self._uow, self._cache, owner_id, image_id) if _may_share(owner) else None
        if image is None:
            raise NotFound(GONE)
        return image

    def begin_request(self) -> None:
        """Start a request's reads (stamps are then read once per owner, in cloud mode)."""
        self._cache.begin_request()

    async def known(self, token: str) -> Image | None:
        """The link's image from memory, or None when resolving it needs a store.

        Awaits at most the owner's stamp (cloud mode); never blocks an event loop.
        """
        owner_id = self._cache.fact_owner(("link", token))
        if owner_id is None:
            return None
        await self._cache.prepare(owner_id)
        fact: Fact | None = self._cache.peek_fact(("link", token))  # type: ignore[assignment]
        known = known_user(self._cache, owner_id)
        if fact is None or known is None:
            return None
        owner = known[0]
        image_id, _, expires_at = fact
        _check_live(expires_at, self._clock.now())
        if not _may_share(owner):
            raise NotFound(GONE)
        return self._cache.peek(owner_id, ("image", image_id))  # type: ignore[return-value]

    def _load_fact(self, token: str, now: datetime) -> Fact:
        link = self._links.resolve(token, now)
        if link is None:
            raise NotFound(GONE)
        owner_id = link.owner_id
        if owner_id is None:  # stored before links recorded their owner
            with self._uow() as uow:
                owner_id = uow.images.owner_of(link.image_id)
            if owner_id is None:
                raise NotFound(GONE)
        fact = (link.image_id, owner_id, link.expires_at)
        if self._cache.enabled:
            # A stamp vouches only for reads made after it: read it, then the link again,
            # so a revoke landing in between is not remembered as live.
            stamp = self._cache.stamp(owner_id)
            if self._links.resolve(token, now) is None:
                raise NotFound(GONE)
            self._cache.remember_fact(("link", token), owner_id, fact, stamp)
        return fact


def _check_live(expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise NotFound(GONE)


def _may_share(owner: User | None) -> bool:
    """Whether the owner's links may open now: they exist and still hold the permission."""
    return owner is not None and owner.permissions.expiring_links
