"""The ports: what the use cases need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from imagify.domain.model import (
    ExpiringLink, Image, ImageInfo, LinkInfo, Placeholder, RenderedThumbnail, Rendition, User,
)
from imagify.domain.permissions import Tier
from imagify.domain.quotas import Usage


class UserRepository(Protocol):
    def add(self, user: User) -> User: ...
    def get(self, user_id: int) -> User | None: ...
    def get_by_username(self, username: str) -> User | None: ...
    def list(self, after_username: str | None, limit: int, search: str | None = None) -> list[User]:
        """Users by name after `after_username`, only those whose name contains `search`
        (ignoring case) when it is given."""
    def save(self, user: User) -> None:
        """Write the name, admin flag and tiers (not the password: see set_password)."""
    def set_password(self, user_id: int, password_hash: str) -> None:
        """Replace the password and raise token_version, ending every older token."""
    def delete(self, user_id: int) -> None:
        """Remove the user with what is theirs alone: tiers held, revoked tokens."""
    def count_admins(self) -> int: ...
    def count_holding_tier(self, tier_name: str) -> int: ...
    def lock(self, user_id: int, exclusive: bool) -> bool:
        """Whether the user exists, holding their row until the unit of work ends: shared
        to add an image of theirs, exclusive to delete them, so no upload outlives them."""
    def lock_admins(self) -> int:
        """How many admins there are, holding their rows until the unit of work ends."""
    def add_usage(self, user_id: int, images: int, storage_bytes: int) -> None:
        """Change the user's usage by these amounts (negative to release), with the image rows."""
    def set_usage(self, user_id: int, usage: Usage) -> None: ...
    def recorded_usage(self) -> dict[int, Usage]:
        """Every user's usage counters as stored: for the doctor to compare with the rows."""


class TierRepository(Protocol):
    def add(self, tier: Tier) -> None: ...
    def get(self, name: str) -> Tier | None: ...
    def list(self) -> list[Tier]: ...
    def save(self, tier: Tier) -> None: ...
    def delete(self, name: str) -> None: ...
    def lock(self, names: Iterable[str], exclusive: bool) -> set[str]:
        """Which of the tiers exist, holding their rows until the unit of work ends:
        shared to assign them, exclusive to delete one."""


@dataclass(frozen=True)
class Cursor:
    """Where a page of a user's images, newest first, continues."""

    created_at: datetime
    image_id: str


class ImageRepository(Protocol):
    def add(self, image: Image) -> None: ...
    def get(self, owner_id: int, image_id: str) -> Image | None:
        """The image, only if `owner_id` owns it: the one way a user's request reads one."""
    def owner_of(self, image_id: str) -> int | None:
        """Who owns the image: for links made before links recorded their owner."""
    def find_any(self, image_id: str) -> Image | None:
        """The image whoever owns it: for maintenance (the doctor), never on a user's behalf."""
    def lock(self, image_id: str, exclusive: bool) -> Image | None:
        """get(), holding the row until the unit of work ends: exclusive to delete the image,
        shared to add to it, so a delete and a new thumbnail never both miss each other."""
    def list_owned(self, owner_id: int, after: Cursor | None, limit: int) -> list[Image]: ...
    def ids_owned(self, owner_id: int) -> list[str]: ...
    def delete(self, image_id: str) -> None: ...
    def ids_without_owner(self) -> list[str]:
        """Images whose owner no longer exists (a user deletion cut short)."""
    def usage_by_owner(self, owner_id: int | None = None) -> dict[int, Usage]:
        """What each owner's (or only `owner_id`'s) image rows add up to; owners with no
        image are left out."""
    def without_placeholder(self, after_id: str, limit: int) -> list[Image]:
        """Images with no placeholder yet, by id after `after_id`: for the backfill."""
    def set_placeholder(self, image_id: str, placeholder: Placeholder) -> None: ...
    def without_preview(self, content_type: str, after_id: str, limit: int) -> list[Image]:
        """Images of `content_type` with no preview, by id after `after_id`: for the backfill."""
    def set_preview(self, image_id: str, height: int) -> None: ...


class RenditionRepository(Protocol):
    def add(self, rendition: Rendition) -> None: ...
    def get(self, image_id: str, height: int, format: str) -> Rendition | None: ...
    def list_for(self, image_id: str) -> list[Rendition]: ...
    def delete_for(self, image_id: str) -> None: ...


class RevokedTokenRepository(Protocol):
    """Tokens ended before their expiry (a logout), by their id, under their user."""

    def add(self, user_id: int, token_id: str, expires_at: datetime) -> None:
        """Record the token as revoked until it expires; a second add of it changes nothing."""
    def live(self, user_id: int, now: datetime) -> frozenset[str]:
        """The ids of the user's revoked tokens that have not expired yet."""
    def delete_expired(self, user_id: int, now: datetime) -> None:
        """Forget the user's revoked tokens that have expired: they end on their own."""


class UnitOfWork(Protocol):
    """One transaction; leaving the block without commit() rolls back."""

    users: UserRepository
    tiers: TierRepository
    images: ImageRepository
    renditions: RenditionRepository
    revoked_tokens: RevokedTokenRepository

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


@dataclass
class StoredBlob:
    """An open blob: read it in chunks, then close it."""

    stream: BinaryIO
    size: int
    content_type: str

    def chunks(self, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        try:
            while chunk := self.stream.read(chunk_size):
                yield chunk
        finally:
            self.stream.close()

    def read_all(self) -> bytes:
        try:
            return self.stream.read()
        finally:
            self.stream.close()


@dataclass(frozen=True)
class Leftover:
    """What a writer killed mid-write left behind: a temporary file, an unfinished upload."""

    kind: str  # "temporary file", "unfinished upload"
    key: str  # where the storage keeps it
    handle: str = ""  # what the storage needs to remove it, besides the key (an upload id)


class BlobStorage(Protocol):
    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None: ...
    def open(self, key: str) -> StoredBlob: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def keys(self, prefix: str = "", modified_before: datetime | None = None) -> Iterator[str]:
        """Every stored key starting with `prefix` (only those last written before
        `modified_before`, when given), in no particular order."""

    def leftovers(self, started_before: datetime | None = None) -> Iterator[Leftover]:
        """Partial writes never finished nor cleaned up (begun before `started_before`, when given)."""

    def remove_leftover(self, leftover: Leftover) -> None: ...

    def check(self) -> None:
        """Raise Unavailable when the storage cannot be used."""

    def cached(self, key: str) -> StoredBlob | None:
        """The blob from this process's memory, or None when reading it needs the storage
        (always None for a storage that keeps nothing in memory). Never blocks."""


class LinkStore(Protocol):
    def add(self, link: ExpiringLink) -> None:
        """Store a link with its owner_id set."""
    def resolve(self, token: str, now: datetime) -> ExpiringLink | None:
        """The live link behind `token` (owner_id None for a link stored before owners
        were), or None when unknown or expired."""

    def delete_for_image(self, image_id: str) -> None: ...
    def list_for_image(self, image_id: str, now: datetime) -> list[LinkInfo]:
        """The image's live links, soonest to expire first."""
    def revoke(self, image_id: str, link_id: str) -> bool:
        """End the image's link with this id now; False when there is none."""
    def check(self) -> None: ...


class Presigner(Protocol):
    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that fetches the blob at `key` without credentials for `seconds`."""


class Renderer(Protocol):
    def render(self, source_key: str, target_key: str, height: int, format: str) -> RenderedThumbnail:
        """Read the original at source_key, write a thumbnail `height` px high at target_key
        in `format` ('jpeg', 'png', 'webp' or 'avif')."""


class ImageInspector(Protocol):
    def inspect(self, stream: BinaryIO) -> ImageInfo:
        """Identify the format from content, check pixels from the header, then check it
        decodes, never decoding whole what has no reduced-scale decode; a JPEG's
        placeholder comes from its reduced decode, other formats' from placeholder()."""
    def placeholder(self, stream: BinaryIO) -> Placeholder:
        """The placeholder of an image, decoding it (a JPEG at reduced scale) within the
        decode budgets: asked of a first thumbnail, or of an original by the backfill."""
    def may_keep_preview(self, width: int, height: int) -> bool:
        """Whether inspect() may keep a preview of a JPEG this size (either side shown as
        its height): False spares the backfill a decode."""


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: whose it is, under which token_version, its own id."""

    user_id: int
    version: int
    token_id: str  # unique per token: what a logout revokes
    expires_at: datetime


class TokenSigner(Protocol):
    def issue(self, user_id: int, version: int, now: datetime) -> tuple[str, datetime]:
        """A token for the user at its current token_version, with an id of its own, and
        when it expires."""
    def read(self, token: str, now: datetime) -> TokenClaims:
        """The claims of a valid, unexpired token; raise Unauthorized otherwise."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def image_id(self) -> str: ...
    def link_token(self) -> str: ...


class LockManager(Protocol):
    def hold(self, key: str) -> AbstractContextManager[None]:
        """Hold a lock named `key`; it is released on exit or if its holder dies."""


class LoginThrottle(Protocol):
    """Failed logins counted per key (a username, a client address) in a fixed window.

    An attempt counts as a failure from the moment it starts, so a burst of parallel
    guesses cannot all slip in before the first one is known to have failed. Keys are
    compared byte for byte, as usernames are.
    """

    def attempt(self, limits: Mapping[str, int]) -> int:
        """0 to go ahead, counting an attempt against each key; else the seconds to wait
        until no key is at its limit, counting nothing."""

    def forgive(self, keys: Sequence[str]) -> None:
        """Take back the attempt of a login that did not fail."""

    def reset(self, key: str) -> None:
        """Forget every failure counted against `key` (a username that just logged in)."""


Stamp = tuple[object, object]


class ChangeCounters(Protocol):
    """Counters every process shares, changed after each committed write, so that a
    process's read cache can tell an entry went stale before it serves it.

    Two scopes: users and tiers (anything that moves a permission), and each owner's own
    things (their images and links, their revoked tokens). A stamp is both values as read
    now; None means they cannot be read, and then nothing cached may be trusted.
    """

    local: bool  # True when reading a stamp does no network I/O (fine on an event loop)

    def stamp(self, owner_id: int) -> Stamp | None: ...
    async def stamp_async(self, owner_id: int) -> Stamp | None:
        """stamp(), for an event loop: awaits the network instead of blocking on it."""

    def users_changed(self) -> None: ...
    def owner_changed(self, owner_id: int) -> None: ...
