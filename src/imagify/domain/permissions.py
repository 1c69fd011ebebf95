"""Permission codenames, tiers as permission sets, and the policy that reads them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagify.domain.errors import InvalidInput
from imagify.domain.quotas import Limits

MIN_THUMBNAIL_HEIGHT = 1
MAX_THUMBNAIL_HEIGHT = 4096

ORIGINAL_ACCESS = "can_access_original_image"
EXPIRING_LINKS = "can_generate_expiring_link"
_THUMBNAIL = re.compile(r"thumbnail:(\d{1,9})")
FORMAT_CODENAMES = ("format:webp", "format:avif")
_TIER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, order=True)
class ThumbnailHeight:
    """A thumbnail height in pixels, 1..4096."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise InvalidInput(f"thumbnail height must be an integer, got {self.value!r}")
        if not MIN_THUMBNAIL_HEIGHT <= self.value <= MAX_THUMBNAIL_HEIGHT:
            raise InvalidInput(
                f"thumbnail height must be between {MIN_THUMBNAIL_HEIGHT} and "
                f"{MAX_THUMBNAIL_HEIGHT}, got {self.value}"
            )


def parse_codename(codename: str) -> str:
    """Check one permission codename and return it in canonical form; raise InvalidInput."""
    if not isinstance(codename, str):
        raise InvalidInput(f"permission codename must be a string, got {codename!r}")
    if codename in (ORIGINAL_ACCESS, EXPIRING_LINKS, *FORMAT_CODENAMES):
        return codename
    match = _THUMBNAIL.fullmatch(codename)
    if match is None:
        raise InvalidInput(
            f"unknown permission {codename!r}: expected 'thumbnail:<height>', "
            f"'{ORIGINAL_ACCESS}', '{EXPIRING_LINKS}', 'format:webp' or 'format:avif'"
        )
    try:
        return f"thumbnail:{ThumbnailHeight(int(match.group(1))).value}"
    except InvalidInput as error:
        raise InvalidInput(f"permission {codename!r}: {error.detail}") from None


def thumbnail_codename(height: int) -> str:
    return f"thumbnail:{ThumbnailHeight(height).value}"


def check_tier_name(name: str) -> str:
    if not isinstance(name, str) or _TIER_NAME.fullmatch(name) is None:
        raise InvalidInput(
            f"tier name must be 1 to 64 letters, digits, '-' or '_', got {name!r}"
        )
    return name


@dataclass(frozen=True)
class Permissions:
    """A set of parsed codenames, and the answers the rest of the system asks of it."""

    codenames: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, codenames: Iterable[str]) -> Permissions:
        return cls(frozenset(parse_codename(c) for c in codenames))

    def union(self, other: Permissions) -> Permissions:
        return Permissions(self.codenames | other.codenames)

    @property
    def thumbnail_heights(self) -> list[int]:
        return sorted(int(c.split(":", 1)[1]) for c in self.codenames if c.startswith("thumbnail:"))

    @property
    def original_access(self) -> bool:
        return ORIGINAL_ACCESS in self.codenames

    @property
    def expiring_links(self) -> bool:
        return EXPIRING_LINKS in self.codenames

    @property
    def formats(self) -> list[str]:
        """The thumbnail formats granted besides JPEG and PNG ('webp', 'avif')."""
        return sorted(c.split(":", 1)[1] for c in self.codenames if c.startswith("format:"))

    def may_see_thumbnail(self, height: int) -> bool:
        return f"thumbnail:{height}" in self.codenames

    def sorted(self) -> list[str]:
        """Thumbnails by height first, then the flags, for stable output."""
        flags = sorted(c for c in self.codenames if not c.startswith("thumbnail:"))
        return [f"thumbnail:{h}" for h in self.thumbnail_heights] + flags


@dataclass(frozen=True)
class Tier:
    name: str
    permissions: Permissions
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        check_tier_name(self.name)


BUILT_IN_TIERS: tuple[Tier, ...] = (
    Tier("basic", Permissions.parse(["thumbnail:200"])),
    Tier("premium", Permissions.parse(["thumbnail:200", "thumbnail:400", "format:webp"])),
    Tier(
        "enterprise",
        Permissions.parse(
            ["thumbnail:200", "thumbnail:400", ORIGINAL_ACCESS, EXPIRING_LINKS, *FORMAT_CODENAMES]
        ),
    ),
)
