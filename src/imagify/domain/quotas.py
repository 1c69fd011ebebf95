"""Limits a tier puts on its users, what a user has used, and the one check between them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from imagify.domain.errors import InvalidInput, QuotaExceeded, TooLarge

MIN_LINK_SECONDS = 300
MAX_LINK_SECONDS = 30000
LIMIT_NAMES = ("max_images", "max_storage_bytes", "max_upload_bytes", "max_link_seconds")


@dataclass(frozen=True)
class Usage:
    """What a user's images take now: originals only (renditions are the service's cost)."""

    images: int = 0
    storage_bytes: int = 0


@dataclass(frozen=True)
class Limits:
    """A tier's limits, or a user's effective ones; None is unlimited."""

    max_images: int | None = None
    max_storage_bytes: int | None = None
    max_upload_bytes: int | None = None
    max_link_seconds: int | None = None

    def __post_init__(self) -> None:
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"limit {name!r} must be a non-negative integer or null, got {value!r}")
        seconds = self.max_link_seconds
        if seconds is not None and not MIN_LINK_SECONDS <= seconds <= MAX_LINK_SECONDS:
            raise InvalidInput(
                f"limit 'max_link_seconds' must be between {MIN_LINK_SECONDS} and {MAX_LINK_SECONDS}, got {seconds}"
            )

    @classmethod
    def parse(cls, values: Mapping[str, object] | None) -> Limits:
        """Limits from JSON-like input: only the known names, each an integer or null."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise InvalidInput(f"'limits' must be an object, got {values!r}")
        unknown = sorted(set(values) - set(LIMIT_NAMES))
        if unknown:
            raise InvalidInput(f"unknown limit {unknown[0]!r}: expected {', '.join(LIMIT_NAMES)}")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def most_generous(cls, each: Iterable[Limits]) -> Limits:
        """A user's limits from their tiers': per limit the largest, unlimited if any tier is
        (no tiers at all: unlimited, as before limits existed)."""
        result: dict[str, int | None] | None = None
        for limits in each:
            if result is None:
                result = limits.as_dict()
                continue
            for name in LIMIT_NAMES:
                ours, theirs = result[name], getattr(limits, name)
                result[name] = None if ours is None or theirs is None else max(ours, theirs)
        return cls(**result) if result else cls()

    def changed(self, values: Mapping[str, object]) -> Limits:
        """These limits with some replaced (a null value removes that limit)."""
        return Limits.parse({**self.as_dict(), **values})

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def check_upload(self, usage: Usage, size: int) -> None:
        """Refuse an upload of `size` bytes that would take the user past a limit."""
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            raise TooLarge(
                f"the upload is {size} bytes; your tiers allow uploads of at most "
                f"{self.max_upload_bytes} bytes (max_upload_bytes)"
            )
        if self.max_images is not None and usage.images + 1 > self.max_images:
            raise QuotaExceeded(
                f"image limit reached: you have {usage.images} of {self.max_images} images "
                "(max_images); delete some or ask for a larger plan"
            )
        if self.max_storage_bytes is not None and usage.storage_bytes + size > self.max_storage_bytes:
            raise QuotaExceeded(
                f"storage limit reached: you use {usage.storage_bytes} of {self.max_storage_bytes} bytes "
                f"(max_storage_bytes) and this upload is {size} bytes; delete some or ask for a larger plan"
            )

    def check_link_seconds(self, seconds: int) -> None:
        if self.max_link_seconds is not None and seconds > self.max_link_seconds:
            raise InvalidInput(
                f"'seconds' must be at most {self.max_link_seconds} for your tiers "
                f"(max_link_seconds), got {seconds}"
            )

    def check_server_upload_limit(self, server_max: int) -> None:
        if self.max_upload_bytes is not None and self.max_upload_bytes > server_max:
            raise InvalidInput(
                f"limit 'max_upload_bytes' must be at most the server's limit of {server_max} bytes, "
                f"got {self.max_upload_bytes}"
            )
