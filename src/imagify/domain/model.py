"""Entities and value objects: users, images, their renditions and expiring links."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from imagify.domain.errors import InvalidInput, NotFound
from imagify.domain.formats import FORMAT_OF
from imagify.domain.permissions import Permissions
from imagify.domain.quotas import MAX_LINK_SECONDS, MIN_LINK_SECONDS, Limits, Usage

MIN_PASSWORD_LENGTH = 10
PREVIEWS = "previews/"  # where upload previews are stored, by image id
# A thumbnail renders from the preview when the preview is at least this many times its
# height, so Lanczos always has a real step down to antialias (as JPEG_DRAFT_GAP).
PREVIEW_GAP = 1.5


@dataclass
class User:
    id: int | None
    username: str
    password_hash: str
    is_admin: bool = False
    tiers: list[str] = field(default_factory=list)
    # The union of the tiers' permissions, filled in by the repository on every read.
    permissions: Permissions = field(default_factory=Permissions)
    # Raised with every password change: a token or session names the version it was
    # issued under, and is refused once its user's version has moved on.
    token_version: int = 0
    # The most generous of the tiers' limits, and what the user's images take now: both
    # filled in by the repository on every read, like permissions.
    limits: Limits = field(default_factory=Limits)
    usage: Usage = field(default_factory=Usage)
    # The latest expiry of the user's logged-out tokens: None, or past, when no token of
    # theirs is both revoked and unexpired (so none needs looking up).
    revoked_until: datetime | None = None

    def has_revoked_tokens(self, now: datetime) -> bool:
        return self.revoked_until is not None and self.revoked_until > now


@dataclass(frozen=True)
class Placeholder:
    """What a client paints before any thumbnail exists: a ThumbHash, the dominant colour
    ('#rrggbb') and the aspect ratio as displayed (width / height, orientation applied)."""

    thumbhash: str
    color: str
    aspect_ratio: float


@dataclass(frozen=True)
class ImageInfo:
    """What inspecting an upload tells: its real format and size, and its placeholder."""

    content_type: str
    width: int
    height: int
    placeholder: Placeholder | None = None
    preview: Preview | None = None


@dataclass(frozen=True)
class Preview:
    """An upright copy of an upload at a reduced scale, made from the upload check's own
    decode: thumbnails it covers are rendered from it instead of the original."""

    data: bytes
    content_type: str
    height: int


@dataclass
class Image:
    id: str
    owner_id: int
    filename: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    storage_key: str
    created_at: datetime
    placeholder: Placeholder | None = None  # None for images uploaded before placeholders
    preview_height: int | None = None  # the stored preview's height; None or 0: no preview

    @property
    def etag(self) -> str:
        return self.sha256

    @property
    def preview_key(self) -> str | None:
        return f"{PREVIEWS}{self.id}" if self.preview_height else None

    @property
    def blob_keys(self) -> list[str]:
        """The image's own blobs: its original and its preview (not its thumbnails)."""
        return [self.storage_key] + ([self.preview_key] if self.preview_key else [])

    def render_source(self, height: int) -> str:
        """The blob a thumbnail `height` px high renders from: the preview when it has at
        least PREVIEW_GAP times the pixels the thumbnail needs, else the original."""
        if self.preview_key and self.preview_height and height * PREVIEW_GAP <= self.preview_height:
            return self.preview_key
        return self.storage_key


@dataclass(frozen=True)
class Rendition:
    """A stored thumbnail of one image at one height in one format."""

    image_id: str
    height: int
    storage_key: str
    content_type: str
    size_bytes: int
    pixel_width: int
    pixel_height: int
    sha256: str

    @property
    def format(self) -> str:
        return FORMAT_OF[self.content_type]

    @property
    def etag(self) -> str:
        return f"{self.sha256[:32]}-{self.height}-{self.format}"


@dataclass(frozen=True)
class RenderedThumbnail:
    """What the renderer reports after writing a thumbnail to blob storage."""

    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str


def link_lifetime(seconds: object, limits: Limits | None = None) -> timedelta:
    """The link policy: an integer number of seconds, 300..30000, and at most the owner's
    tiers' max_link_seconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidInput(f"'seconds' must be an integer, got {seconds!r}")
    if not MIN_LINK_SECONDS <= seconds <= MAX_LINK_SECONDS:
        raise InvalidInput(
            f"'seconds' must be between {MIN_LINK_SECONDS} and {MAX_LINK_SECONDS}, got {seconds}"
        )
    if limits is not None:
        limits.check_link_seconds(seconds)
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class ExpiringLink:
    token: str
    image_id: str
    expires_at: datetime
    owner_id: int | None = None  # None only for links made before owners were recorded
    created_at: datetime | None = None  # None only for links made before migration 0004


LINK_ID_LENGTH = 16


@dataclass(frozen=True)
class LinkInfo:
    """A live link as its owner sees it: never its token, only an id to revoke it by."""

    id: str  # the first LINK_ID_LENGTH hex digits of the token's sha256
    image_id: str
    created_at: datetime | None
    expires_at: datetime


_LINK_ID = re.compile(f"[0-9a-f]{{{LINK_ID_LENGTH}}}")


def check_link_id(link_id: str) -> str:
    if not isinstance(link_id, str) or _LINK_ID.fullmatch(link_id) is None:
        raise NotFound(f"no link with id {link_id!r}")
    return link_id


_IMAGE_ID = re.compile(r"[0-9a-f]{32}")


def check_image_id(image_id: str) -> str:
    """An image id as this service makes them (32 lower-case hex digits), else NotFound.

    Checked before any lookup: MySQL compares strings with PAD SPACE, so an id with a
    trailing space would otherwise find the image.
    """
    if not isinstance(image_id, str) or _IMAGE_ID.fullmatch(image_id) is None:
        raise NotFound(f"no image with id {image_id!r}")
    return image_id


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def check_username(username: str) -> str:
    if (
        not isinstance(username, str)
        or not 1 <= len(username) <= 64
        or not all(c.isalnum() or c in "-_.@" for c in username)
    ):
        raise InvalidInput(
            f"username must be 1 to 64 letters, digits, '-', '_', '.' or '@', got {username!r}"
        )
    return username
