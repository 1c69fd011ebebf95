"""msgspec Structs at the HTTP edge, and how domain objects become them."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Annotated

import msgspec

from imagify.domain.model import Image, LinkInfo, User
from imagify.domain.permissions import Permissions, Tier
from imagify.domain.quotas import Limits
from imagify.domain.cursors import Page


class ImageLinks(msgspec.Struct, omit_defaults=True):
    thumbnails: dict[str, str]
    original: str | None = None


class PlaceholderOut(msgspec.Struct):
    """Paint this before any thumbnail loads: a ThumbHash (base64), the dominant colour and
    width / height as displayed. null for a PNG until its first thumbnail is rendered (the
    upload check never decodes a PNG), and for uploads older than placeholders until
    `imagify backfill-placeholders`."""

    thumbhash: str
    color: str
    aspect_ratio: float


class ImageOut(msgspec.Struct):
    id: str
    filename: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    created_at: datetime
    links: ImageLinks
    placeholder: PlaceholderOut | None = None  # see PlaceholderOut for when it is null


class ImagePage(msgspec.Struct):
    items: list[ImageOut]
    next_cursor: str | None


class TokenIn(msgspec.Struct):
    username: str
    password: str


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str
    expires_at: datetime


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True):
    """Your current password, and the new one (at least 10 characters); every token and
    session issued before the change ends."""

    current_password: str
    new_password: str


class LinkIn(msgspec.Struct):
    seconds: int


class LinkOut(msgspec.Struct):
    url: str
    token: str
    expires_at: datetime


class LimitsOut(msgspec.Struct):
    """A tier's limits, or a user's effective ones (the most generous of their tiers'); null is unlimited."""

    max_images: int | None
    max_storage_bytes: int | None
    max_upload_bytes: int | None
    max_link_seconds: int | None


class UsageOut(msgspec.Struct):
    """What a user's images take now (originals only)."""

    images: int
    storage_bytes: int


class MeOut(msgspec.Struct):
    username: str
    is_admin: bool
    tiers: list[str]
    permissions: list[str]
    usage: UsageOut
    limits: LimitsOut


class LinkInfoOut(msgspec.Struct):
    """A live link: its id (to revoke it by) and dates; never its token."""

    id: str
    created_at: datetime | None
    expires_at: datetime


class ErrorOut(msgspec.Struct):
    status_code: int
    detail: str


class TierOut(msgspec.Struct):
    name: str
    permissions: list[str]
    thumbnail_heights: list[int]
    original_access: bool
    expiring_links: bool
    limits: LimitsOut
    formats: list[str]


class UserOut(msgspec.Struct):
    username: str
    tiers: list[str]
    is_admin: bool
    permissions: list[str]
    usage: UsageOut
    limits: LimitsOut


def image_out(image: Image, user: User, base_url: str) -> ImageOut:
    """Links hold exactly the renditions the caller may fetch now."""
    perms = user.permissions
    return _image_out(image, base_url, perms.thumbnail_heights, perms.original_access)


def images_out(images: list[Image], user: User, base_url: str) -> list[ImageOut]:
    """image_out for a page, with the caller's permissions read once."""
    perms = user.permissions
    heights, original = perms.thumbnail_heights, perms.original_access
    return [_image_out(image, base_url, heights, original) for image in images]


class EncodedPages:
    """The JSON of recently served listing pages, by page, caller's permissions and base URL.

    A body is reused only while the page is the very object the read cache serves: a page
    read again (after an upload, a delete, a permission change) is a new object, so no
    stale body can be sent, and the permissions in the key keep the links exact.
    """

    def __init__(self, max_entries: int = 1024, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._bodies: OrderedDict[tuple[int, str, Permissions], tuple[Page, bytes]] = OrderedDict()

    def body(self, page: Page, user: User, base_url: str, remembered: bool) -> bytes:
        """The page's JSON; kept for next time only when the page itself was `remembered`
        (served by the read cache), since only then can the same object come again."""
        key = (id(page), base_url, user.permissions)  # id is unique while the entry holds the page
        hit = self._bodies.get(key)
        if hit is not None and hit[0] is page:
            self._bodies.move_to_end(key)
            return hit[1]
        body = msgspec.json.encode(ImagePage(images_out(page.items, user, base_url), page.next_cursor))
        if remembered and len(body) <= self._max_bytes:
            old = self._bodies.pop(key, None)
            self._bytes += len(body) - (len(old[1]) if old else 0)
            self._bodies[key] = (page, body)
            while len(self._bodies) > self._max or self._bytes > self._max_bytes:
                self._bytes -= len(self._bodies.popitem(last=False)[1][1])
        return body


def _image_out(image: Image, base_url: str, heights: list[int], original: bool) -> ImageOut:
    prefix = f"{base_url}/api/v1/images/{image.id}"
    return ImageOut(
        id=image.id,
        filename=image.filename,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        created_at=image.created_at,
        links=ImageLinks(
            thumbnails={str(h): f"{prefix}/thumbnails/{h}" for h in heights},
            original=f"{prefix}/original" if original else None,
        ),
        placeholder=None if (p := image.placeholder) is None else PlaceholderOut(p.thumbhash, p.color, p.aspect_ratio),
    )


def limits_out(limits: Limits) -> LimitsOut:
    return LimitsOut(**limits.as_dict())


def usage_out(user: User) -> UsageOut:
    return UsageOut(user.usage.images, user.usage.storage_bytes)


def me_out(user: User) -> MeOut:
    return MeOut(
        user.username, user.is_admin, list(user.tiers), user.permissions.sorted(),
        usage_out(user), limits_out(user.limits),
    )


def tier_out(tier: Tier) -> TierOut:
    p = tier.permissions
    return TierOut(
        tier.name, p.sorted(), p.thumbnail_heights, p.original_access, p.expiring_links, limits_out(tier.limits),
        p.formats,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        user.username, list(user.tiers), user.is_admin, user.permissions.sorted(),
        usage_out(user), limits_out(user.limits),
    )


def link_info_out(link: LinkInfo) -> LinkInfoOut:
    return LinkInfoOut(link.id, link.created_at, link.expires_at)


CODENAMES = (
    "permission codenames: 'thumbnail:<height>' (a thumbnail that many pixels high, 1 to 4096), "
    "'can_access_original_image' (the uploaded original), 'can_generate_expiring_link', and "
    "'format:webp' / 'format:avif' (thumbnails in that format when Accept or ?format= asks)"
)
Codenames = Annotated[
    list[str],
    msgspec.Meta(description=CODENAMES, examples=[["thumbnail:100", "thumbnail:600", "can_generate_expiring_link"]]),
]
TierNames = Annotated[
    list[str],
    msgspec.Meta(
        description="tier names; built in: basic (thumbnail:200), premium (thumbnail:200 and 400, "
        "format:webp), enterprise (both, originals, expiring links, format:webp and format:avif)",
        examples=[["premium"]],
    ),
]
Password = Annotated[str, msgspec.Meta(description="at least 10 characters", examples=["a-long-password"])]


Limit = Annotated[int | None, msgspec.Meta(description="a non-negative integer; null is unlimited")]


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A tier's limits (each optional; null or absent is unlimited). max_upload_bytes is
    at most the server's own limit; max_link_seconds is 300..30000."""

    max_images: Limit | msgspec.UnsetType = msgspec.UNSET
    max_storage_bytes: Limit | msgspec.UnsetType = msgspec.UNSET
    max_upload_bytes: Limit | msgspec.UnsetType = msgspec.UNSET
    max_link_seconds: Limit | msgspec.UnsetType = msgspec.UNSET

    def given(self) -> dict[str, int | None]:
        """The limits the body names (in a PATCH, the others stay as they are)."""
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not msgspec.UNSET}


def limits_given(limits: LimitsIn | None | msgspec.UnsetType) -> dict[str, int | None] | None:
    return None if limits is None or limits is msgspec.UNSET else limits.given()  # type: ignore[union-attr]


class TierIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new tier: its name, the permissions it grants and its limits."""

    name: Annotated[str, msgspec.Meta(description="1 to 64 letters, digits, '-' or '_'", examples=["photographers"])]
    permissions: Codenames
    limits: LimitsIn | None = None


class TierReplace(msgspec.Struct, forbid_unknown_fields=True):
    """Every permission the tier grants from now on, and its limits (left out: unchanged)."""

    permissions: Codenames
    limits: LimitsIn | msgspec.UnsetType = msgspec.UNSET


class TierPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Replace the permissions, or add and remove some; change the limits named."""

    permissions: Codenames | msgspec.UnsetType = msgspec.UNSET
    add: Codenames = []
    remove: Codenames = []
    limits: LimitsIn | msgspec.UnsetType = msgspec.UNSET


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new user with their password and tiers."""

    username: Annotated[str, msgspec.Meta(description="1 to 64 letters, digits or -_.@", examples=["ann"])]
    password: Password
    tiers: TierNames = []
    is_admin: bool = False


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Any subset of the fields; what is left out stays as it is."""

    password: Password | msgspec.UnsetType = msgspec.UNSET
    tiers: TierNames | msgspec.UnsetType = msgspec.UNSET
    is_admin: bool | msgspec.UnsetType = msgspec.UNSET


class UserPage(msgspec.Struct):
    items: list[UserOut]
    next_cursor: str | None
