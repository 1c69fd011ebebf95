"""Use cases on expiring links: create one for an owned image, resolve one."""

from __future__ import annotations

from datetime import datetime

from imagify.domain.errors import Forbidden, NotFound
from imagify.domain.model import ExpiringLink, Image, User, link_lifetime
from imagify.domain.ports import Clock, IdGenerator, LinkStore, UnitOfWorkFactory
from imagify.domain.read_cache import ReadCache

GONE = "this link is unknown or has expired"


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
        image = self._image(image_id, owner.id) if owner.id is not None else None
        if image is None:
            raise NotFound(f"no image with id {image_id!r}")
        if not owner.permissions.expiring_links:
            raise Forbidden("your tiers do not include generating expiring links")
        lifetime = link_lifetime(seconds)
        link = ExpiringLink(self._ids.link_token(), image_id, self._clock.now() + lifetime)
        self._links.add(link)
        return link

    def resolve(self, token: str) -> Image:
        now = self._clock.now()
        fact = self._fact(token, now)
        if fact is None:
            link = self._links.resolve(token, now)
            if link is None:
                raise NotFound(GONE)
            with self._uow() as uow:
                image = uow.images.get(link.image_id)
            if image is None:
                raise NotFound(GONE)
            # Which image, whose, until when: facts that never change. Whether the image
            # still exists is asked of the stamped image entry on every later request.
            self._cache.remember(("link", token), (link.image_id, image.owner_id, link.expires_at))
            return image
        image_id, owner_id = fact
        image = self._image(image_id, owner_id)
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
        fact = self._fact(token, self._clock.now())
        if fact is None:
            return None
        image_id, owner_id = fact
        await self._cache.prepare(owner_id)
        return self._cache.peek(("image", image_id))  # type: ignore[return-value]

    def _fact(self, token: str, now: datetime) -> tuple[str, int] | None:
        fact = self._cache.peek(("link", token))  # a fact: no stamp to read
        if fact is None:
            return None
        image_id, owner_id, expires_at = fact  # type: ignore[misc]
        if expires_at <= now:
            raise NotFound(GONE)
        return image_id, owner_id

    def _image(self, image_id: str, owner_id: int) -> Image | None:
        def load() -> Image | None:
            with self._uow() as uow:
                image = uow.images.get(image_id)
            return image if image is not None and image.owner_id == owner_id else None

        return self._cache.fetch(("image", image_id), owner_id, load)
