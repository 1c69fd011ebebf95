"""The read cache: repeated reads come from memory, and no change is ever missed."""

import asyncio

from datetime import timedelta

import pytest

from imagify.adapters.blob_cache import CachedBlobStorage
from imagify.domain.errors import Forbidden, NotFound
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.admin import AdminService
from imagify.domain.services.auth import AuthService
from imagify.domain.services.images import ImageService
from tests.unit.fakes import (
    FakeBlobStorage,
    FakeChangeCounters,
    FakeClock,
    FakeHasher,
    FakeInspector,
    FakeLocks,
    FakeSigner,
    FakeUnitOfWorkFactory,
    SequentialIds,
)


class CountingUow(FakeUnitOfWorkFactory):
    """Counts units of work: each is a trip to the database."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0

    def __call__(self):  # type: ignore[no-untyped-def]
        self.opened += 1
        return super().__call__()


@pytest.fixture
def counted(world):  # type: ignore[no-untyped-def]
    uow = CountingUow()
    uow.store = world.uow.store
    world.uow = uow
    for service in (world.images, world.link_service, world.auth, world.admin):
        service._uow = uow
    return world


def test_a_repeated_thumbnail_read_touches_the_database_once(counted):
    ann = counted.user("ann", "premium")
    image = counted.upload(ann)
    counted.images.thumbnail(ann, image.id, 200)  # renders
    counted.uow.opened = 0
    for _ in range(5):
        counted.images.thumbnail(ann, image.id, 200)
    assert counted.uow.opened == 1  # the new thumbnail's record once; then all from memory
    assert counted.images.known_thumbnail(ann, image.id, 200) is not None


def test_a_token_is_read_from_memory_until_its_user_changes(counted):
    counted.user("ann", "basic")
    token, _ = counted.auth.issue_token("ann", "a-long-password")
    counted.auth.authenticate(token)
    counted.uow.opened = 0
    assert counted.auth.authenticate(token).tiers == ["basic"]
    assert counted.uow.opened == 0
    counted.admin.update_user("root", "ann", tiers=["premium"])
    counted.uow.opened = 0
    assert counted.auth.authenticate(token).tiers == ["premium"]
    assert counted.uow.opened == 1


def test_a_downgrade_applies_to_the_next_request_served_from_memory(world):
    world.user("ann", "enterprise")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    ann = world.auth.authenticate(token)
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 400)  # renders
    world.images.thumbnail(ann, image.id, 400)  # remembers
    world.images.original(ann, image.id)
    assert world.images.known_thumbnail(ann, image.id, 400) is not None

    world.admin.update_user("root", "ann", tiers=["basic"])
    ann = world.auth.authenticate(token)
    assert ann.tiers == ["basic"]
    with pytest.raises(Forbidden):
        world.images.thumbnail(ann, image.id, 400)
    with pytest.raises(Forbidden):
        world.images.original(ann, image.id)


def test_a_tier_edited_by_an_admin_applies_to_users_already_in_memory(world):
    world.user("ann", "premium")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    assert world.auth.authenticate(token).permissions.may_see_thumbnail(400)
    world.admin.replace_tier("root", "premium", ["thumbnail:200"])
    assert not world.auth.authenticate(token).permissions.may_see_thumbnail(400)


def test_a_deleted_image_is_gone_from_memory_at_once(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 200)
    link = world.link_service.create(ann, image.id, 300)
    world.link_service.resolve(link.token)
    world.images.delete(ann, image.id)
    assert world.images.known_thumbnail(ann, image.id, 200) is None
    assert asyncio.run(world.link_service.known(link.token)) is None
    with pytest.raises(NotFound):
        world.images.thumbnail(ann, image.id, 200)
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)


def test_an_upload_shows_in_the_next_listing(world):
    ann = world.user()
    first = world.upload(ann)
    assert [i.id for i in world.images.list(ann, None, 20).items] == [first.id]
    assert world.images.known_page(ann, None, 20) is not None
    second = world.upload(ann)
    assert world.images.known_page(ann, None, 20) is None
    assert [i.id for i in world.images.list(ann, None, 20).items] == [second.id, first.id]


def test_one_owners_upload_leaves_another_owners_entries_alone(world):
    ann, bob = world.user("ann"), world.user("bob")
    image = world.upload(ann)
    world.images.list(ann, None, 20)
    world.images.get(ann, image.id)
    world.upload(bob)
    assert world.images.known_page(ann, None, 20) is not None
    assert world.cache.get(ann.id, ("image", image.id)) == image


def test_memory_never_shows_one_owners_image_to_another(world):
    ann, bob = world.user("ann", "enterprise"), world.user("bob", "enterprise")
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 200)  # in memory now, under ann
    world.images.original(ann, image.id)
    assert world.images.known_thumbnail(bob, image.id, 200) is None  # bob's memory has none
    assert world.images.known_original(bob, image.id) is None
    assert world.cache.get(bob.id, ("image", image.id)) is None
    for read in (
        lambda: world.images.thumbnail(bob, image.id, 200),
        lambda: world.images.original(bob, image.id),
        lambda: world.images.get(bob, image.id),
        lambda: world.link_service.create(bob, image.id, 300),
        lambda: world.images.delete(bob, image.id),
    ):
        with pytest.raises(NotFound):
            read()
    assert world.images.get(ann, image.id) == image and world.links.links == {}


def test_a_change_made_by_another_process_is_seen_through_the_shared_counters(world):
    """Two processes: their own memory, one database, one set of counters."""
    other = ReadCache(world.counters)
    other_admin = AdminService(world.uow, FakeHasher(), world.blobs, world.links, other)
    other_images = ImageService(
        world.uow, world.blobs, world.links, world.renderer, FakeInspector(), FakeLocks(),
        world.clock, SequentialIds(), other,
    )  # fmt: skip
    world.user("ann", "enterprise")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    ann = world.auth.authenticate(token)
    image = world.upload(ann)
    world.images.original(ann, image.id)

    other_admin.update_user("root", "ann", tiers=["basic"])
    assert world.auth.authenticate(token).tiers == ["basic"]

    other_images.delete(world.auth.authenticate(token), image.id)
    assert world.images.known_original(ann, image.id) is None
    with pytest.raises(NotFound):
        world.images.get(ann, image.id)


def test_nothing_in_memory_is_trusted_while_the_counters_cannot_be_read(world):
    ann = world.user()
    image = world.upload(ann)
    world.images.get(ann, image.id)
    assert len(world.cache) > 0
    world.counters.down = True
    assert world.cache.get(ann.id, ("image", image.id)) is None
    assert len(world.cache) == 0  # dropped: changes made meanwhile would go unseen
    assert world.images.get(ann, image.id) == image  # still served, from the database
    world.counters.down = False
    assert world.images.get(ann, image.id) == image


def test_an_entry_older_than_the_backstop_age_is_read_again():
    now = [0.0]
    counters = FakeChangeCounters()
    cache = ReadCache(counters, max_age=60, monotonic=lambda: now[0])
    loads = []
    load = lambda: loads.append(1) or "value"  # noqa: E731
    assert cache.fetch(1, "k", load) == "value"
    now[0] = 59
    assert cache.fetch(1, "k", load) == "value"
    now[0] = 61
    assert cache.fetch(1, "k", load) == "value"
    assert len(loads) == 2


def test_the_cache_keeps_at_most_its_entry_limit_dropping_the_least_recently_used():
    cache = ReadCache(FakeChangeCounters(), max_entries=2)
    cache.fetch(1, "a", lambda: "A")
    cache.fetch(1, "b", lambda: "B")
    assert cache.get(1, "a") == "A"  # a is now the most recently used
    cache.fetch(1, "c", lambda: "C")
    assert cache.get(1, "b") is None and cache.get(1, "a") == "A" and cache.get(1, "c") == "C"


def test_nothing_is_remembered_for_a_missing_value():
    cache = ReadCache(FakeChangeCounters())
    assert cache.fetch(1, "k", lambda: None) is None
    assert len(cache) == 0


def test_a_link_past_its_expiry_is_refused_from_memory(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    link = world.link_service.create(ann, image.id, 300)
    assert world.link_service.resolve(link.token) == image
    assert asyncio.run(world.link_service.known(link.token)) == image
    world.clock.advance(seconds=300)
    with pytest.raises(NotFound):
        asyncio.run(world.link_service.known(link.token))
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)


def test_the_blob_cache_keeps_small_blobs_within_its_byte_budget():
    inner = FakeBlobStorage()
    for key, size in (("a", 40), ("b", 40), ("c", 40), ("big", 200)):
        inner.put(key, b"x" * size, "image/jpeg")
    blobs = CachedBlobStorage(inner, max_bytes=100, max_item=60)
    assert blobs.cached("a") is None
    assert blobs.open("a").read_all() == b"x" * 40
    assert blobs.cached("a").read_all() == b"x" * 40
    blobs.open("b")
    blobs.open("c")  # 120 bytes > 100: the least recently used (a) goes
    assert blobs.cached("a") is None and blobs.cached("c") is not None
    assert blobs.open("big").size == 200 and blobs.cached("big") is None  # too big to keep
    blobs.delete("c")
    assert blobs.cached("c") is None and not inner.exists("c")


def test_a_token_signature_is_checked_once_but_expiry_on_every_read():
    from imagify.adapters.security import JwtTokenSigner
    from imagify.domain.errors import Unauthorized

    clock = FakeClock()
    signer = JwtTokenSigner("a-secret-of-at-least-thirty-two-characters!", timedelta(seconds=60))
    token, _ = signer.issue(7, 0, clock.now())
    claims = signer.read(token, clock.now())
    assert (claims.user_id, claims.version) == (7, 0)
    assert signer.read(token, clock.now()) == claims
    with pytest.raises(Unauthorized, match="expired"):
        signer.read(token, clock.now() + timedelta(seconds=60))
    with pytest.raises(Unauthorized, match="invalid"):
        signer.read(token[:-2] + "xx", clock.now())


def test_services_without_shared_counters_read_the_database_every_time():
    from imagify.adapters.change_counters import NoChangeCounters

    uow = CountingUow()
    cache = ReadCache(NoChangeCounters())
    admin = AdminService(uow, FakeHasher(), FakeBlobStorage(), None, cache)  # type: ignore[arg-type]
    auth = AuthService(uow, FakeHasher(), FakeSigner(), FakeClock(), cache)
    admin.create_user("root", "ann", "a-long-password", ["basic"])
    token, _ = auth.issue_token("ann", "a-long-password")
    uow.opened = 0
    auth.authenticate(token)
    auth.authenticate(token)
    assert uow.opened == 2 and len(cache) == 0


class RemoteCounters(FakeChangeCounters):
    """Counters behind a network, as Redis: `reads` counts blocking round trips."""

    local = False
    reads = 0

    def stamp(self, owner_id: int):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().stamp(owner_id)

    async def stamp_async(self, owner_id: int):  # type: ignore[no-untyped-def]
        return FakeChangeCounters.stamp(self, owner_id)


def test_a_request_reads_each_owners_stamp_once_when_stamps_cost_a_round_trip():
    import contextvars

    counters = RemoteCounters()
    cache = ReadCache(counters)

    def one_request() -> None:
        cache.begin_request()
        cache.fetch(1, "a", lambda: "A")
        cache.fetch(1, "b", lambda: "B")
        assert cache.get(1, "a") == "A" and cache.get(1, "b") == "B"

    contextvars.copy_context().run(one_request)
    assert counters.reads == 1
    counters.owner_changed(1)
    contextvars.copy_context().run(lambda: cache.begin_request() or cache.get(1, "a"))
    assert counters.reads == 2 and cache.get(1, "a") is None  # the next request saw the change


def test_a_peek_never_waits_for_a_remote_stamp_unless_the_request_prepared_it():
    counters = RemoteCounters()
    cache = ReadCache(counters)
    cache.fetch(1, "a", lambda: "A")
    counters.reads = 0

    async def one_request() -> object:
        assert cache.peek(1, "a") is None  # not prepared: a miss rather than a blocking read
        await cache.prepare(1)
        return cache.peek(1, "a")

    assert asyncio.run(one_request()) == "A"
    assert counters.reads == 0


def test_the_cache_keeps_within_its_byte_budget_dropping_the_least_recently_used():
    cache = ReadCache(FakeChangeCounters(), max_bytes=3000)
    for key in "abcd":
        cache.fetch(1, key, lambda: key.upper(), weight=1000)
    assert cache.bytes == 3000 and cache.get(1, "a") is None  # the fourth pushed the first out
    cache.fetch(1, "huge", lambda: "H", weight=5000)  # more than the whole budget: not kept
    assert cache.get(1, "huge") is None and cache.get(1, "d") == "D"


def test_expired_entries_are_swept_without_being_asked_for():
    now = [0.0]
    cache = ReadCache(FakeChangeCounters(), max_age=60, monotonic=lambda: now[0])
    for key in "abc":
        cache.fetch(1, key, lambda: key)
    now[0] = 61
    cache.fetch(2, "fresh", lambda: "F")  # a write past half the age sweeps
    assert len(cache) == 1 and cache.get(2, "fresh") == "F"


def test_an_entry_is_found_only_under_the_owner_it_was_read_for():
    cache = ReadCache(FakeChangeCounters())
    cache.fetch(1, ("image", "x"), lambda: "ann's")
    assert cache.get(1, ("image", "x")) == "ann's"
    assert cache.get(2, ("image", "x")) is None
    assert cache.fetch(2, ("image", "x"), lambda: None) is None  # bob's load finds nothing


def test_two_spellings_of_one_cursor_share_a_listing_entry(world):
    ann = world.user("ann")
    for _ in range(3):
        world.upload(ann)
    cursor = world.images.list(ann, None, 1).next_cursor
    assert cursor is not None
    world.images.list(ann, cursor, 1)
    before = len(world.cache)
    padded = cursor + "=" * (-len(cursor) % 4)
    assert padded != cursor
    assert world.images.known_page(ann, padded, 1) is not None
    world.images.list(ann, padded, 1)
    assert len(world.cache) == before


def test_a_link_stops_resolving_when_its_owner_loses_the_permission_and_returns_with_it(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    link = world.link_service.create(ann, image.id, 300)
    assert world.link_service.resolve(link.token) == image
    assert asyncio.run(world.link_service.known(link.token)) == image
    world.admin.update_user("root", "ann", tiers=["premium"])
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)
    with pytest.raises(NotFound):  # from memory too
        asyncio.run(world.link_service.known(link.token))
    world.admin.update_user("root", "ann", tiers=["enterprise"])
    assert world.link_service.resolve(link.token) == image


def test_a_changed_password_ends_every_earlier_token(world):
    from imagify.domain.errors import Unauthorized

    ann = world.user("ann", "basic")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    assert world.auth.authenticate(token).username == "ann"
    with pytest.raises(Unauthorized, match="current password"):
        world.auth.change_password(ann, "wrong-password", "another-long-one")
    assert world.auth.authenticate(token).username == "ann"
    world.auth.change_password(ann, "a-long-password", "another-long-one")
    with pytest.raises(Unauthorized, match="log in again"):
        world.auth.authenticate(token)
    with pytest.raises(Unauthorized, match="log in again"):  # from memory too
        asyncio.run(world.auth.known(token))
    fresh, _ = world.auth.issue_token("ann", "another-long-one")
    assert world.auth.authenticate(fresh).username == "ann"


def test_a_token_served_from_memory_is_refused_at_once_after_its_logout(counted):
    from imagify.domain.errors import Unauthorized

    counted.user("ann", "basic")
    token, _ = counted.auth.issue_token("ann", "a-long-password")
    other, _ = counted.auth.issue_token("ann", "a-long-password")
    counted.auth.authenticate(token)
    assert asyncio.run(counted.auth.known(token)).username == "ann"  # warm: from memory
    counted.uow.opened = 0
    counted.auth.authenticate(token)
    assert counted.uow.opened == 0  # the revoked ids are in memory with the user
    counted.auth.revoke(token)
    assert asyncio.run(counted.auth.known(token)) is None  # what memory held is no longer true
    with pytest.raises(Unauthorized, match="logged out"):
        counted.auth.authenticate(token)
    with pytest.raises(Unauthorized, match="logged out"):  # from memory, once read again
        asyncio.run(counted.auth.known(token))
    assert counted.auth.authenticate(other).username == "ann"


def test_a_logout_through_one_process_is_seen_by_another_that_remembers_the_token(world):
    """Two processes: their own memory, one database and one set of counters between them."""
    from imagify.domain.errors import Unauthorized

    world.user("ann", "basic")
    token, _ = world.auth.issue_token("ann", "a-long-password")
    other = AuthService(world.uow, FakeHasher(), FakeSigner(), world.clock, ReadCache(world.counters))
    other.authenticate(token)
    assert asyncio.run(other.known(token)).username == "ann"  # b remembers it
    world.auth.revoke(token)  # through a
    assert asyncio.run(other.known(token)) is None  # b's memory no longer holds
    with pytest.raises(Unauthorized, match="logged out"):
        other.authenticate(token)
