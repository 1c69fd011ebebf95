"""Use cases on expiring links: create one for an owned image, resolve one."""

from __future__ import annotations

from imagify.domain.errors import Forbidden, NotFound
from imagify.domain.model import ExpiringLink, Image, User, link_lifetime
from imagify.domain.ports import Clock, IdGenerator, LinkStore, UnitOfWorkFactory


class LinkService:
    def __init__(
        self, uow: UnitOfWorkFactory, links: LinkStore, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow = uow
        self._links = links
        self._clock = clock
        self._ids = ids

    def create(self, owner: User, image_id: str, seconds: object) -> ExpiringLink:
        with self._uow() as uow:
            image = uow.images.get(image_id)
        if image is None or image.owner_id != owner.id:
            raise NotFound(f"no image with id {image_id!r}")
        if not owner.permissions.expiring_links:
            raise Forbidden("your tiers do not include generating expiring links")
        lifetime = link_lifetime(seconds)
        link = ExpiringLink(self._ids.link_token(), image_id, self._clock.now() + lifetime)
        self._links.add(link)
        return link

    def resolve(self, token: str) -> Image:
        image_id = self._links.resolve(token, self._clock.now())
        if image_id is None:
            raise NotFound("this link is unknown or has expired")
        with self._uow() as uow:
            image = uow.images.get(image_id)
        if image is None:
            raise NotFound("this link is unknown or has expired")
        return image
