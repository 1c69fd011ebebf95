"""Hand-written in-memory fakes of every port, for fast unit tests of the use cases."""

from __future__ import annotations

import copy
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from imagify.domain.errors import (
    Conflict,
    NotAnImage,
    NotFound,
    RenderFailed,
    RenderTimedOut,
    Unauthorized,
    Unavailable,
)
from imagify.domain.formats import CONTENT_TYPES
from imagify.domain.model import (
    LINK_ID_LENGTH, ExpiringLink, Image, ImageInfo, LinkInfo, Placeholder, Preview, RenderedThumbnail, Rendition,
    User,
)
from imagify.domain.permissions import BUILT_IN_TIERS, Permissions, Tier
from imagify.domain.quotas import Limits, Usage
from imagify.domain.ports import Cursor, Leftover, StoredBlob, TokenClaims


class Store:
    """The 'database' the fake repositories share; a unit of work copies it and writes back."""

    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.tiers: dict[str, Tier] = {t.name: t for t in BUILT_IN_TIERS}
        self.images: dict[str, Image] = {}
        self.renditions: dict[tuple[str, int, str], Rendition] = {}
        self.revoked_tokens: dict[tuple[int, str], datetime] = {}  # (user id, token id): expiry
        self.next_user_id = 1
        self.commits = 0


class FakeUserRepository:
    def __init__(self, store: Store) -> None:
        self._s = store

    def _full(self, user: User) -> User:
        perms = Permissions()
        held = [self._s.tiers[name] for name in user.tiers if name in self._s.tiers]
        for tier in held:
            perms = perms.union(tier.permissions)
        limits = Limits.most_generous(t.limits for t in held)
        return replace(user, tiers=sorted(user.tiers), permissions=perms, limits=limits)

    def add(self, user: User) -> User:
        user = replace(user, id=self._s.next_user_id)
        self._s.next_user_id += 1
        self._s.users[user.id] = user  # type: ignore[index]
        return self._full(user)

    def get(self, user_id: int) -> User | None:
        user = self._s.users.get(user_id)
        return self._full(user) if user else None

    def get_by_username(self, username: str) -> User | None:
        return next((self._full(u) for u in self._s.users.values() if u.username == username), None)

    def list(self, after_username: str | None, limit: int, search: str | None = None) -> list[User]:
        users = sorted(self._s.users.values(), key=lambda u: u.username)
        return [
            self._full(u) for u in users
            if (after_username is None or u.username > after_username)
            and (not search or search.casefold() in u.username.casefold())
        ][:limit]

    def save(self, user: User) -> None:
        stored = self._s.users[user.id]  # type: ignore[index]
        self._s.users[user.id] = replace(  # type: ignore[index]
            user, permissions=Permissions(), password_hash=stored.password_hash,
            token_version=stored.token_version, usage=stored.usage, revoked_until=stored.revoked_until,
        )

    def set_password(self, user_id: int, password_hash: str) -> None:
        stored = self._s.users[user_id]
        self._s.users[user_id] = replace(
            stored, password_hash=password_hash, token_version=stored.token_version + 1
        )

    def delete(self, user_id: int) -> None:
        self._s.users.pop(user_id, None)
        for key in [k for k in self._s.revoked_tokens if k[0] == user_id]:
            del self._s.revoked_tokens[key]

    def count_admins(self) -> int:
        return sum(u.is_admin for u in self._s.users.values())

    def count_holding_tier(self, tier_name: str) -> int:
        return sum(tier_name in u.tiers for u in self._s.users.values())

    def lock(self, user_id: int, exclusive: bool) -> bool:
        return user_id in self._s.users  # one thread at a time: nothing to hold

    def lock_admins(self) -> int:
        return self.count_admins()

    def add_usage(self, user_id: int, images: int, storage_bytes: int) -> None:
        stored = self._s.users.get(user_id)
        if stored is not None:
            usage = Usage(stored.usage.images + images, stored.usage.storage_bytes + storage_bytes)
            self._s.users[user_id] = replace(stored, usage=usage)

    def set_usage(self, user_id: int, usage: Usage) -> None:
        if user_id in self._s.users:
            self._s.users[user_id] = replace(self._s.users[user_id], usage=usage)

    def recorded_usage(self) -> dict[int, Usage]:
        return {user_id: u.usage for user_id, u in self._s.users.items()}


class FakeTierRepository:
    def __init__(self, store: Store) -> None:
        self._s = store

    def add(self, tier: Tier) -> None:
        self._s.tiers[tier.name] = tier

    def get(self, name: str) -> Tier | None:
        return self._s.tiers.get(name)

    def list(self) -> list[Tier]:
        return list(self._s.tiers.values())

    def save(self, tier: Tier) -> None:
        self._s.tiers[tier.name] = tier

    def delete(self, name: str) -> None:
        self._s.tiers.pop(name, None)

    def lock(self, names: Iterable[str], exclusive: bool) -> set[str]:
        return {n for n in names if n in self._s.tiers}


class FakeImageRepository:
    def __init__(self, store: Store) -> None:
        self._s = store

    def add(self, image: Image) -> None:
        self._s.images[image.id] = image

    def get(self, owner_id: int, image_id: str) -> Image | None:
        image = self._s.images.get(image_id)
        return image if image is not None and image.owner_id == owner_id else None

    def owner_of(self, image_id: str) -> int | None:
        image = self._s.images.get(image_id)
        return None if image is None else image.owner_id

    def find_any(self, image_id: str) -> Image | None:
        return self._s.images.get(image_id)

    def lock(self, image_id: str, exclusive: bool) -> Image | None:
        return self.find_any(image_id)  # one thread at a time: nothing to hold

    def list_owned(self, owner_id: int, after: Cursor | None, limit: int) -> list[Image]:
        mine = sorted(
            (i for i in self._s.images.values() if i.owner_id == owner_id),
            key=lambda i: (i.created_at, i.id),
            reverse=True,
        )
        if after is not None:
            mine = [i for i in mine if (i.created_at, i.id) < (after.created_at, after.image_id)]
        return mine[:limit]

    def ids_owned(self, owner_id: int) -> list[str]:
        return [i.id for i in self._s.images.values() if i.owner_id == owner_id]

    def delete(self, image_id: str) -> None:
        self._s.images.pop(image_id, None)

    def usage_by_owner(self, owner_id: int | None = None) -> dict[int, Usage]:
        totals: dict[int, Usage] = {}
        for image in self._s.images.values():
            if owner_id is not None and image.owner_id != owner_id:
                continue
            old = totals.get(image.owner_id, Usage())
            totals[image.owner_id] = Usage(old.images + 1, old.storage_bytes + image.size_bytes)
        return totals

    def ids_without_owner(self) -> list[str]:
        return sorted(i.id for i in self._s.images.values() if i.owner_id not in self._s.users)

    def without_placeholder(self, after_id: str, limit: int) -> list[Image]:
        found = sorted((i for i in self._s.images.values() if i.placeholder is None and i.id > after_id), key=lambda i: i.id)
        return found[:limit]

    def set_placeholder(self, image_id: str, placeholder: Placeholder) -> None:
        self._s.images[image_id] = replace(self._s.images[image_id], placeholder=placeholder)

    def without_preview(self, content_type: str, after_id: str, limit: int) -> list[Image]:
        found = sorted(
            (i for i in self._s.images.values()
             if i.preview_height is None and i.content_type == content_type and i.id > after_id),
            key=lambda i: i.id,
        )  # fmt: skip
        return found[:limit]

    def set_preview(self, image_id: str, height: int) -> None:
        self._s.images[image_id] = replace(self._s.images[image_id], preview_height=height)


class FakeRenditionRepository:
    def __init__(self, store: Store) -> None:
        self._s = store

    def add(self, rendition: Rendition) -> None:
        key = (rendition.image_id, rendition.height, rendition.format)
        if key in self._s.renditions:
            raise Conflict("rendition already stored")
        self._s.renditions[key] = rendition

    def get(self, image_id: str, height: int, format: str) -> Rendition | None:
        return self._s.renditions.get((image_id, height, format))

    def list_for(self, image_id: str) -> list[Rendition]:
        return [r for (i, *_), r in self._s.renditions.items() if i == image_id]

    def delete_for(self, image_id: str) -> None:
        for key in [k for k in self._s.renditions if k[0] == image_id]:
            del self._s.renditions[key]


class FakeRevokedTokenRepository:
    def __init__(self, store: Store) -> None:
        self._s = store

    def add(self, user_id: int, token_id: str, expires_at: datetime) -> None:
        self._s.revoked_tokens.setdefault((user_id, token_id), expires_at)
        user = self._s.users.get(user_id)
        if user is not None and (user.revoked_until is None or user.revoked_until < expires_at):
            self._s.users[user_id] = replace(user, revoked_until=expires_at)

    def live(self, user_id: int, now: datetime) -> frozenset[str]:
        return frozenset(t for (u, t), expires in self._s.revoked_tokens.items() if u == user_id and expires > now)

    def delete_expired(self, user_id: int, now: datetime) -> None:
        for key in [k for k, expires in self._s.revoked_tokens.items() if k[0] == user_id and expires <= now]:
            del self._s.revoked_tokens[key]


class FakeUnitOfWork:
    """Works on a copy of the store and writes it back on commit, like a transaction."""

    _lock = threading.Lock()

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> FakeUnitOfWork:
        with self._lock:
            self._work = copy.deepcopy(self._store)
        self.users = FakeUserRepository(self._work)
        self.tiers = FakeTierRepository(self._work)
        self.images = FakeImageRepository(self._work)
        self.renditions = FakeRenditionRepository(self._work)
        self.revoked_tokens = FakeRevokedTokenRepository(self._work)
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def commit(self) -> None:
        with self._lock:
            self._work.commits = self._store.commits + 1
            self._store.__dict__.update(copy.deepcopy(self._work).__dict__)

    def rollback(self) -> None:
        self.__enter__()


class FakeUnitOfWorkFactory:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.fail_commit: Exception | None = None

    def __call__(self) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        if self.fail_commit is not None:
            error = self.fail_commit

            def failing_commit() -> None:
                raise error

            uow.commit = failing_commit  # type: ignore[method-assign]
        return uow


class FakeBlobStorage:
    def __init__(self, clock: FakeClock | None = None) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.written: dict[str, datetime] = {}  # when each key was last put, by `clock`
        self.left: dict[Leftover, datetime] = {}  # partial writes, and when each began
        self._clock = clock

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        if not isinstance(data, bytes):
            data.seek(0)
            data = data.read()
        self.blobs[key] = (data, content_type)
        self.written[key] = self._clock.now() if self._clock else datetime.now(UTC)

    def keys(self, prefix: str = "", modified_before: datetime | None = None) -> Iterator[str]:
        for key in list(self.blobs):
            if key.startswith(prefix) and (
                modified_before is None or self.written[key] < modified_before
            ):
                yield key

    def leftovers(self, started_before: datetime | None = None) -> Iterator[Leftover]:
        for leftover, began in list(self.left.items()):
            if started_before is None or began < started_before:
                yield leftover

    def remove_leftover(self, leftover: Leftover) -> None:
        self.left.pop(leftover, None)

    def open(self, key: str) -> StoredBlob:
        if key not in self.blobs:
            raise NotFound(f"no blob {key}")
        data, content_type = self.blobs[key]
        return StoredBlob(io.BytesIO(data), len(data), content_type)

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)
        self.written.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def cached(self, key: str) -> StoredBlob | None:
        return None

    def check(self) -> None:
        pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FakeLinkStore:
    def __init__(self) -> None:
        self.links: dict[str, ExpiringLink] = {}
        self.down = False

    def add(self, link: ExpiringLink) -> None:
        self.links[link.token] = link

    def resolve(self, token: str, now: datetime) -> ExpiringLink | None:
        link = self.links.get(token)
        return link if link and link.expires_at > now else None

    def delete_for_image(self, image_id: str) -> None:
        if self.down:
            raise Unavailable("the link store is down")
        self.links = {t: l for t, l in self.links.items() if l.image_id != image_id}

    def list_for_image(self, image_id: str, now: datetime) -> list[LinkInfo]:
        live = [(t, l) for t, l in self.links.items() if l.image_id == image_id and l.expires_at > now]
        return [
            LinkInfo(token_hash(t)[:LINK_ID_LENGTH], image_id, l.created_at, l.expires_at)
            for t, l in sorted(live, key=lambda item: item[1].expires_at)
        ]

    def revoke(self, image_id: str, link_id: str) -> bool:
        gone = [t for t, l in self.links.items() if l.image_id == image_id and token_hash(t).startswith(link_id)]
        for token in gone:
            del self.links[token]
        return bool(gone)

    def check(self) -> None:
        pass


class FakeRenderer:
    """'Renders' by writing a marker derived from the source; counts its calls."""

    def __init__(self, blobs: FakeBlobStorage) -> None:
        self._blobs = blobs
        self.calls = 0
        self.fail = False
        self.during_render: Callable[[], None] | None = None
        self.sources: list[str] = []  # the blob each render read
        self.unreadable: set[str] = set()  # keys it fails to render from
        self.too_slow: set[str] = set()  # keys whose render runs past its time budget

    def render(self, source_key: str, target_key: str, height: int, format: str) -> RenderedThumbnail:
        self.calls += 1
        self.sources.append(source_key)
        if self.fail or source_key in self.unreadable:
            raise RenderFailed("the renderer is down")
        if source_key in self.too_slow:
            raise RenderTimedOut("the thumbnail render timed out after 60 s; try again")
        if source_key not in self._blobs.blobs:
            raise NotFound(f"the stored file for {source_key!r} is missing")
        source, _ = self._blobs.blobs[source_key]
        content_type = CONTENT_TYPES[format]
        if self.during_render is not None:
            self.during_render()
        data = f"thumb {height} {format} of {hashlib.sha256(source).hexdigest()}".encode()
        self._blobs.put(target_key, data, content_type)
        return RenderedThumbnail(content_type, len(data), height, height, hashlib.sha256(data).hexdigest())


class FakeInspector:
    """Accepts bytes starting with b'IMG:' as a 40x30 JPEG (its placeholder made at upload)
    and b'PNG:' as a 40x30 PNG (none: the check does not decode it); anything else is not an image."""

    def __init__(self) -> None:
        self.inspected = 0  # how many times inspect() decoded

    def may_keep_preview(self, width: int, height: int) -> bool:
        return max(width, height) >= 1200

    def inspect(self, stream: BinaryIO) -> ImageInfo:
        self.inspected += 1
        kind = stream.read(4)
        if kind not in (b"IMG:", b"PNG:", b"BIG:"):
            raise NotAnImage("not an image")
        if kind == b"PNG:":
            return ImageInfo("image/png", 40, 30)
        stream.seek(0)
        if kind == b"BIG:":  # a 4000x3000 JPEG, with the preview its check decoded
            data = stream.read()  # b"BIG:lowq...": a low-quality one, its preview not worth keeping
            preview = None if data.startswith(b"BIG:lowq") else Preview(b"preview of " + data, "image/jpeg", 750)
            stream.seek(0)
            return ImageInfo("image/jpeg", 4000, 3000, self.placeholder(stream), preview)
        return ImageInfo("image/jpeg", 40, 30, self.placeholder(stream))

    def placeholder(self, stream: BinaryIO) -> Placeholder:
        """A placeholder naming the bytes it was made from."""
        return Placeholder(stream.read().decode(errors="replace")[:64], "#102030", 4 / 3)


class FakeHasher:
    def hash(self, password: str) -> str:
        return "hashed:" + password

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "hashed:" + password


class FakeSigner:
    """Tokens in clear, `token:<user>:<version>:<expiry>:<id>`, each with an id of its own."""

    def __init__(self, ttl: timedelta = timedelta(hours=1)) -> None:
        self._ttl = ttl
        self._issued = 0

    def issue(self, user_id: int, version: int, now: datetime) -> tuple[str, datetime]:
        expires = now + self._ttl
        self._issued += 1
        return f"token:{user_id}:{version}:{expires.timestamp()}:t{self._issued}", expires

    def read(self, token: str, now: datetime) -> TokenClaims:
        try:
            _, user_id, version, expires, token_id = token.split(":")
        except ValueError:
            raise Unauthorized("invalid token") from None
        if float(expires) <= now.timestamp():
            raise Unauthorized("expired token")
        return TokenClaims(int(user_id), int(version), token_id, datetime.fromtimestamp(float(expires), UTC))


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class SequentialIds:
    def __init__(self) -> None:
        self.n = 0

    def image_id(self) -> str:
        self.n += 1
        return f"{self.n:012x}{'0' * 20}"  # the shape of a real id, unique in its first 12

    def link_token(self) -> str:
        self.n += 1
        return f"tok{self.n:04d}"


class FakeLocks:
    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


class FakeChangeCounters:
    """Counters in a dict, as one machine's shared file would hold them; `down` makes them unreadable."""

    local = True

    def __init__(self) -> None:
        self.values: dict[object, int] = {}
        self.down = False

    def stamp(self, owner_id: int) -> tuple[object, object] | None:
        if self.down:
            return None
        return self.values.get("users", 0), self.values.get(owner_id, 0)

    async def stamp_async(self, owner_id: int) -> tuple[object, object] | None:
        return self.stamp(owner_id)

    def users_changed(self) -> None:
        self.values["users"] = self.values.get("users", 0) + 1

    def owner_changed(self, owner_id: int) -> None:
        self.values[owner_id] = self.values.get(owner_id, 0) + 1
