"""The SQL adapters and migrations against a temp-file SQLite and a fresh MariaDB database."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, insert, inspect, select

from imagify.adapters.sql import (
    SqlAlchemyUnitOfWork,
    SqlAlchemyUnitOfWorkFactory,
    SqlLinkStore,
    check_database,
    current_revision,
    downgrade,
    make_engine,
    upgrade,
)
from imagify.adapters.sql import links as sql_links
from imagify.adapters.sql.migrate import head_revision
from imagify.adapters.sql.tables import images as images_table
from imagify.adapters.sql.tables import links as links_table
from imagify.adapters.sql.tables import user_tiers as user_tiers_table
from imagify.adapters.sql.tables import users as users_table
from imagify.adapters.sql.tables import metadata
from imagify.domain.errors import Conflict, Unavailable
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.image_store import delete_images
from imagify.domain.model import ExpiringLink, Image, Rendition, User
from imagify.domain.permissions import Permissions, Tier
from tests.unit.fakes import FakeBlobStorage, FakeChangeCounters, FakeLinkStore
from imagify.domain.ports import Cursor

pytestmark = pytest.mark.integration

TABLES = {"users", "tiers", "tier_permissions", "user_tiers", "images", "renditions", "links", "revoked_tokens"}
T0 = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'imagify.db'}"
    else:
        yield request.getfixturevalue("mysql_database")()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> SqlAlchemyUnitOfWorkFactory:
    return SqlAlchemyUnitOfWorkFactory(engine)


def _image(image_id: str, owner_id: int = 1, created_at: datetime = T0) -> Image:
    return Image(
        id=image_id,
        owner_id=owner_id,
        filename="cat.jpg",
        content_type="image/jpeg",
        width=4000,
        height=3000,
        size_bytes=5_000_000_000,
        sha256="a" * 64,
        storage_key=f"originals/{image_id}",
        created_at=created_at,
    )


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


# Migrations


def test_upgrading_an_empty_database_creates_the_tables_and_built_in_tiers(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision() == "0007"
    assert _tables(database_url) == TABLES
    engine = make_engine(database_url)
    try:
        with SqlAlchemyUnitOfWork(engine) as uow:
            tiers = {t.name: t.permissions.sorted() for t in uow.tiers.list()}
    finally:
        engine.dispose()
    assert tiers == {
        "basic": ["thumbnail:200"],
        "premium": ["thumbnail:200", "thumbnail:400", "format:webp"],
        "enterprise": [
            "thumbnail:200",
            "thumbnail:400",
            "can_access_original_image",
            "can_generate_expiring_link",
            "format:avif",
            "format:webp",
        ],
    }


def test_downgrading_to_base_drops_every_table_and_upgrading_again_works(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # idempotent
    downgrade(database_url)
    assert _tables(database_url) == set()
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert _tables(database_url) == TABLES


def test_migrating_leaves_the_application_loggers_enabled(database_url: str) -> None:
    logger = logging.getLogger("imagify.audit")
    upgrade(database_url)
    assert not logger.disabled


def test_the_schema_has_no_foreign_keys_and_indexes_the_listing(engine: Engine) -> None:
    schema = inspect(engine)
    for table in TABLES:
        assert schema.get_foreign_keys(table) == []
    indexes = {i["name"]: i["column_names"] for i in schema.get_indexes("images")}
    assert indexes["ix_images_owner_created"] == ["owner_id", "created_at", "id"]
    assert [i["column_names"] for i in schema.get_indexes("user_tiers")] == [["tier_name"]]


def test_the_tables_module_matches_what_the_migrations_create(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


# Users and tiers


def test_a_user_round_trips_with_tiers_sorted_and_the_union_of_their_permissions(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    with uow() as u:
        added = u.users.add(User(None, "ann", "hash", False, ["premium", "basic"]))
        u.commit()
    assert added.id is not None
    with uow() as u:
        by_id = u.users.get(added.id)
        by_name = u.users.get_by_username("ann")
    assert by_id == by_name == added
    assert added.tiers == ["basic", "premium"]
    assert added.permissions == Permissions.parse(["thumbnail:200", "thumbnail:400", "format:webp"])

    with uow() as u:
        u.tiers.add(Tier("photographers", Permissions.parse(["thumbnail:600", "can_generate_expiring_link"])))
        u.users.add(User(None, "bob", "hash", True, ["basic", "photographers"]))
        u.commit()
        bob = u.users.get_by_username("bob")
    assert bob is not None and bob.is_admin
    assert bob.permissions.sorted() == ["thumbnail:200", "thumbnail:600", "can_generate_expiring_link"]


def test_saving_a_user_rewrites_the_row_and_tiers_and_deleting_removes_both(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    with uow() as u:
        ann = u.users.add(User(None, "ann", "hash", False, ["basic"]))
        u.commit()
    assert ann.id is not None
    ann.password_hash, ann.is_admin, ann.tiers = "ignored-by-save", True, ["enterprise"]
    with uow() as u:
        u.users.save(ann)
        u.commit()
    with uow() as u:
        assert u.users.get(ann.id).password_hash == "hash"  # a password changes only with its version
        u.users.set_password(ann.id, "new-hash")
        u.commit()
    with uow() as u:
        saved = u.users.get(ann.id)
        assert saved is not None
        assert (saved.password_hash, saved.is_admin, saved.tiers) == ("new-hash", True, ["enterprise"])
        assert saved.token_version == ann.token_version + 1
        assert saved.permissions.original_access
        assert u.users.count_admins() == 1
        assert u.users.count_holding_tier("enterprise") == 1
        assert u.users.count_holding_tier("basic") == 0
        u.users.delete(ann.id)
        u.commit()
    with uow() as u:
        assert u.users.get(ann.id) is None
        assert u.users.count_holding_tier("enterprise") == 0
        assert u.users.get_by_username("nobody") is None


def test_users_are_listed_by_username_in_keyset_pages(uow: SqlAlchemyUnitOfWorkFactory) -> None:
    names = ["dora", "ann", "Carl", "bob", "eve"]
    with uow() as u:
        for name in names:
            u.users.add(User(None, name, "hash", False, ["basic"]))
        u.commit()
    with uow() as u:
        first = u.users.list(None, 2)
        second = u.users.list(first[-1].username, 2)
        third = u.users.list(second[-1].username, 2)
    listed = [x.username for x in first + second + third]
    assert listed == sorted(names)  # byte order on both backends: "Carl" before "ann"
    assert all(x.tiers == ["basic"] for x in first + second + third)


def test_saving_a_tier_replaces_its_permissions_and_deleting_removes_them(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    with uow() as u:
        u.tiers.add(Tier("pros", Permissions.parse(["thumbnail:100", "thumbnail:600"])))
        u.commit()
    with uow() as u:
        u.tiers.save(Tier("pros", Permissions.parse(["thumbnail:800", "can_access_original_image"])))
        u.commit()
    with uow() as u:
        pros = u.tiers.get("pros")
        assert pros is not None
        assert pros.permissions.sorted() == ["thumbnail:800", "can_access_original_image"]
        u.tiers.save(Tier("pros", Permissions()))
        u.commit()
    with uow() as u:
        assert u.tiers.get("pros") == Tier("pros", Permissions())
        u.tiers.delete("pros")
        u.tiers.add(Tier("pros", Permissions()))  # no permission rows were left behind
        u.tiers.delete("pros")
        u.commit()
    with uow() as u:
        assert u.tiers.get("pros") is None
        assert [t.name for t in u.tiers.list()] == ["basic", "enterprise", "premium"]


# Revoked tokens


def test_revoked_tokens_are_listed_until_they_expire_and_forgotten_after_per_user(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    with uow() as u:
        ann = u.users.add(User(None, "ann", "hash", False, [])).id
        bob = u.users.add(User(None, "bob", "hash", False, [])).id
        u.revoked_tokens.add(ann, "a" * 64, T0 + timedelta(minutes=1))
        u.revoked_tokens.add(ann, "b" * 22, T0 + timedelta(hours=1))
        u.revoked_tokens.add(ann, "b" * 22, T0 + timedelta(hours=1))  # again: no error, one row
        u.revoked_tokens.add(bob, "c" * 22, T0 - timedelta(minutes=1))
        u.commit()
    with uow() as u:
        assert u.revoked_tokens.live(ann, T0) == {"a" * 64, "b" * 22}
        assert u.revoked_tokens.live(ann, T0 + timedelta(minutes=1)) == {"b" * 22}  # expired at its expiry
        assert u.revoked_tokens.live(bob, T0) == frozenset()
        u.revoked_tokens.delete_expired(ann, T0 + timedelta(minutes=1))
        u.commit()
    with uow() as u:
        assert u.revoked_tokens.live(ann, T0 - timedelta(days=1)) == {"b" * 22}
        assert u.revoked_tokens.live(bob, T0 - timedelta(days=1)) == {"c" * 22}  # only ann's went
        u.users.delete(bob)
        u.commit()
    with uow() as u:
        assert u.revoked_tokens.live(bob, T0 - timedelta(days=1)) == frozenset()  # gone with bob


def test_a_revoked_token_is_told_apart_from_another_whose_id_differs_only_in_case(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    with uow() as u:
        ann = u.users.add(User(None, "ann", "hash", False, [])).id
        u.revoked_tokens.add(ann, "AbC", T0)
        u.revoked_tokens.add(ann, "abc", T0)  # a different id: MySQL compares bytes here too
        u.commit()
    with uow() as u:
        assert u.revoked_tokens.live(ann, T0 - timedelta(seconds=1)) == {"AbC", "abc"}


# Images and renditions


def test_an_image_round_trips_with_an_aware_utc_timestamp_to_the_microsecond(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    with uow() as u:
        u.images.add(_image("0" * 32, created_at=paris))
        u.commit()
    with uow() as u:
        got = u.images.get(_image("0" * 32).owner_id, "0" * 32)
        assert u.images.get(_image("0" * 32).owner_id, "missing") is None
        assert u.images.get(_image("0" * 32).owner_id + 1, "0" * 32) is None  # scoped to its owner
        assert u.images.find_any("0" * 32) == got
    assert got == _image("0" * 32)
    assert got is not None and got.created_at.tzinfo == UTC and got.created_at.microsecond == 123456


def test_listing_pages_newest_first_without_overlap_or_gaps_across_equal_timestamps(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    # Three images share each timestamp, so only the id breaks the ties.
    expected = []
    with uow() as u:
        for i in range(12):
            image = _image(f"img{i:02d}", created_at=T0 + timedelta(microseconds=i // 3))
            u.images.add(image)
            expected.append(image)
        u.images.add(_image("someone-else", owner_id=2, created_at=T0))
        u.commit()
    expected.sort(key=lambda im: (im.created_at, im.id), reverse=True)

    pages, after = [], None
    with uow() as u:
        while True:
            page = u.images.list_owned(1, after, 5)
            if not page:
                break
            pages.append(page)
            after = Cursor(page[-1].created_at, page[-1].id)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [im.id for p in pages for im in p] == [im.id for im in expected]


def test_ids_owned_and_delete_cover_only_the_owners_images(uow: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow() as u:
        u.images.add(_image("a1", owner_id=1, created_at=T0))
        u.images.add(_image("a2", owner_id=1, created_at=T0 + timedelta(seconds=1)))
        u.images.add(_image("b1", owner_id=2))
        u.commit()
    with uow() as u:
        assert u.images.ids_owned(1) == ["a2", "a1"]
        u.images.delete("a2")
        u.commit()
    with uow() as u:
        assert u.images.ids_owned(1) == ["a1"]
        assert u.images.ids_owned(2) == ["b1"]


def test_images_without_a_preview_come_by_type_in_id_order_until_one_is_set(uow: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow() as u:
        for image_id in ("c", "a", "b"):
            u.images.add(_image(image_id))
        u.images.add(replace(_image("p"), content_type="image/png"))
        u.images.add(replace(_image("d"), preview_height=750))
        u.commit()
    with uow() as u:
        assert [i.id for i in u.images.without_preview("image/jpeg", "", 2)] == ["a", "b"]
        assert [i.id for i in u.images.without_preview("image/jpeg", "b", 2)] == ["c"]
        u.images.set_preview("b", 612)
        u.commit()
    with uow() as u:
        assert [i.id for i in u.images.without_preview("image/jpeg", "", 10)] == ["a", "c"]
        assert u.images.get(1, "b").preview_height == 612


def test_renditions_round_trip_list_by_height_and_delete_per_image(
    uow: SqlAlchemyUnitOfWorkFactory,
) -> None:
    def rendition(image_id: str, height: int) -> Rendition:
        return Rendition(image_id, height, f"thumbnails/{image_id}/{height}", "image/jpeg", 1234, 267, height, "b" * 64)

    with uow() as u:
        for height in (400, 200):
            u.renditions.add(rendition("a", height))
        u.renditions.add(rendition("b", 200))
        u.commit()
    with uow() as u:
        assert u.renditions.get("a", 200, "jpeg") == rendition("a", 200)
        assert u.renditions.get("a", 300, "jpeg") is None
        assert u.renditions.list_for("a") == [rendition("a", 200), rendition("a", 400)]
        u.renditions.delete_for("a")
        u.commit()
    with uow() as u:
        assert u.renditions.list_for("a") == []
        assert u.renditions.list_for("b") == [rendition("b", 200)]


# Unit of work


def test_a_unit_of_work_left_without_commit_rolls_back(uow: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow() as u:
        u.images.add(_image("draft"))
    with uow() as u:
        u.images.add(_image("dropped"))
        u.rollback()
        u.images.add(_image("kept"))
        u.commit()
    with pytest.raises(RuntimeError), uow() as u:
        u.images.add(_image("failed"))
        raise RuntimeError("boom")
    with uow() as u:
        assert [u.images.find_any(i) is not None for i in ("draft", "dropped", "kept", "failed")] == [
            False,
            False,
            True,
            False,
        ]


def test_a_unit_of_work_can_read_and_write_again_after_commit(uow: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow() as u:
        u.images.add(_image("first"))
        u.commit()
        assert u.images.find_any("first") is not None
        u.images.add(_image("second"))  # in a new transaction, never committed
    with uow() as u:
        assert u.images.find_any("first") is not None
        assert u.images.find_any("second") is None


def test_an_unreachable_database_raises_unavailable(tmp_path: Path) -> None:
    refused = make_engine("mysql+pymysql://root@127.0.0.1:1/nothing?connect_timeout=2")
    with pytest.raises(Unavailable, match="the database is unreachable"):
        check_database(refused)
    with pytest.raises(Unavailable, match="the database is unreachable"):
        with SqlAlchemyUnitOfWork(refused):
            pass
    with pytest.raises(Unavailable):
        SqlLinkStore(refused).check()
    refused.dispose()


# Expiring links


def test_a_link_resolves_before_expiry_and_not_after_nor_once_its_image_is_deleted(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resolve at T0+300 s may sweep every row expired by then, other-token too: no sweeps.
    monkeypatch.setattr(sql_links, "SWEEP_ONE_IN", 10**12)
    store = SqlLinkStore(engine)
    store.check()
    store.add(ExpiringLink("the-token", "img1", T0 + timedelta(seconds=300)))
    store.add(ExpiringLink("other-token", "img2", T0 + timedelta(seconds=300)))
    assert store.resolve("the-token", T0).image_id == "img1"
    assert store.resolve("the-token", T0 + timedelta(seconds=299, microseconds=999999)).image_id == "img1"
    assert store.resolve("the-token", T0 + timedelta(seconds=300)) is None
    assert store.resolve("unknown", T0) is None
    store.delete_for_image("img1")
    assert store.resolve("the-token", T0) is None
    assert store.resolve("other-token", T0).image_id == "img2"


def test_a_resolve_now_and_then_sweeps_the_expired_links_and_only_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_links, "SWEEP_ONE_IN", 1)  # every resolve sweeps
    store = SqlLinkStore(engine)
    store.add(ExpiringLink("expired", "img1", T0))
    store.add(ExpiringLink("live", "img1", T0 + timedelta(seconds=1)))
    assert store.resolve("unknown", T0) is None
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(links_table)).scalar_one() == 1
    assert store.resolve("live", T0).image_id == "img1"


def test_the_link_store_keeps_only_a_hash_of_the_token(engine: Engine) -> None:
    SqlLinkStore(engine).add(ExpiringLink("secret-token", "img1", T0))
    with engine.connect() as connection:
        stored = connection.execute(select(links_table.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(b"secret-token").hexdigest()]


def test_upgrading_from_the_first_revision_keeps_users_and_never_reuses_their_ids(database_url: str) -> None:
    upgrade(database_url, "0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:  # rows as revision 0001 had them
            for name in ("ann", "bob", "cy"):
                user_id = connection.execute(
                    insert(users_table).values(username=name, password_hash="hash", is_admin=False,
                                               created_at=T0)
                ).inserted_primary_key[0]
                connection.execute(insert(user_tiers_table).values(user_id=user_id, tier_name="basic"))
        upgrade(database_url)
        with SqlAlchemyUnitOfWork(engine) as uow:
            ids = {name: uow.users.get_by_username(name).id for name in ("ann", "bob", "cy")}
            assert uow.users.get_by_username("cy").tiers == ["basic"]
            uow.users.delete(ids["cy"])
            uow.commit()
        with SqlAlchemyUnitOfWork(engine) as uow:
            uow.users.add(User(None, "dee", "hash", False, []))
            uow.commit()
            assert uow.users.get_by_username("dee").id > ids["cy"]
        with pytest.raises(Conflict), SqlAlchemyUnitOfWork(engine) as uow:  # still unique
            uow.users.add(User(None, "ann", "hash", False, []))
            uow.commit()
    finally:
        engine.dispose()


def test_upgrading_to_0003_gives_links_their_owner_and_users_the_first_token_version(database_url: str) -> None:
    upgrade(database_url, "0002")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:  # rows as revision 0002 had them
            connection.execute(insert(users_table).values(id=7, username="ann", password_hash="h",
                                                          is_admin=False, created_at=T0))
            image = _image("a" * 32, owner_id=7)
            connection.execute(insert(images_table).values(
                id=image.id, owner_id=7, filename="x.jpg", content_type="image/jpeg", width=1, height=1,
                size_bytes=1, sha256="0" * 64, storage_key="originals/x", created_at=T0))
            connection.execute(insert(links_table).values(token_hash="1" * 64, image_id=image.id,
                                                          expires_at=T0 + timedelta(hours=1)))
            connection.execute(insert(links_table).values(token_hash="2" * 64, image_id="b" * 32,
                                                          expires_at=T0 + timedelta(hours=1)))
        upgrade(database_url)
        with engine.connect() as connection:
            owners = dict(connection.execute(select(links_table.c.token_hash, links_table.c.owner_id)).all())
        assert owners == {"1" * 64: 7, "2" * 64: None}  # a link to a vanished image has none
        with SqlAlchemyUnitOfWork(engine) as uow:
            assert uow.users.get(7).token_version == 0
    finally:
        engine.dispose()


def test_upgrading_to_0004_backfills_usage_from_the_rows_and_leaves_every_tier_unlimited(database_url: str) -> None:
    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:  # rows as revision 0003 had them
            for user_id, name in ((7, "ann"), (8, "bob")):
                connection.execute(insert(users_table).values(id=user_id, username=name, password_hash="h",
                                                              is_admin=False, created_at=T0))  # fmt: skip
            for image_id, size in (("a" * 32, 100), ("b" * 32, 23)):
                connection.execute(insert(images_table).values(
                    id=image_id, owner_id=7, filename="x.jpg", content_type="image/jpeg", width=1, height=1,
                    size_bytes=size, sha256="0" * 64, storage_key=f"originals/{image_id}", created_at=T0))
            connection.execute(insert(links_table).values(token_hash="1" * 64, image_id="a" * 32, owner_id=7,
                                                          expires_at=T0 + timedelta(hours=1)))  # fmt: skip
        upgrade(database_url)
        with SqlAlchemyUnitOfWork(engine) as uow:
            assert (uow.users.get(7).usage.images, uow.users.get(7).usage.storage_bytes) == (2, 123)
            assert (uow.users.get(8).usage.images, uow.users.get(8).usage.storage_bytes) == (0, 0)
            assert all(t.limits.unlimited for t in uow.tiers.list())
            assert uow.images.usage_by_owner() == {7: uow.users.get(7).usage}
        with engine.connect() as connection:
            assert connection.execute(select(links_table.c.created_at)).scalar_one() is None
    finally:
        engine.dispose()


def test_a_delete_waits_for_a_thumbnail_being_recorded_and_removes_it_with_its_bytes(engine) -> None:
    factory = SqlAlchemyUnitOfWorkFactory(engine)
    with factory() as uow:
        uow.users.add(User(None, "ann", "hash", False, []))
        uow.commit()
        owner = uow.users.get_by_username("ann").id
        uow.images.add(Image("img1", owner, "a.jpg", "image/jpeg", 10, 10, 100, "0" * 64, "originals/img1",
                             datetime.now(UTC)))  # fmt: skip
        uow.commit()
    rendition = Rendition("img1", 200, "thumbnails/img1/200-abc", "image/jpeg", 10, 10, 10, "1" * 64)
    recorded, finish = threading.Event(), threading.Event()

    def record_thumbnail() -> None:  # ImageService._render's unit of work, held open
        with factory() as uow:
            assert uow.images.lock("img1", exclusive=False) is not None
            uow.renditions.add(rendition)
            recorded.set()
            finish.wait(10)
            uow.commit()

    blobs = FakeBlobStorage()
    for key in ("originals/img1", rendition.storage_key):
        blobs.put(key, b"bytes", "image/jpeg")
    recorder = threading.Thread(target=record_thumbnail)
    recorder.start()
    assert recorded.wait(10)
    deleter = threading.Thread(
        target=delete_images, args=(factory, blobs, FakeLinkStore(), ["img1"], ReadCache(FakeChangeCounters()))
    )
    deleter.start()
    deleter.join(0.5)
    assert deleter.is_alive()  # waiting for the thumbnail's row to commit
    finish.set()
    recorder.join(10)
    deleter.join(10)
    assert blobs.blobs == {}  # the thumbnail's bytes too: its row was listed once it committed
    with factory() as uow:
        assert uow.images.find_any("img1") is None and uow.renditions.list_for("img1") == []


def test_upgrading_to_0005_gives_renditions_their_format_and_the_built_in_tiers_theirs(database_url: str) -> None:
    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    rendition = sa_table("renditions")
    try:
        with engine.begin() as connection:  # a thumbnail as revision 0004 stored it
            connection.execute(insert(rendition).values(
                image_id="a" * 32, height=200, storage_key="thumbnails/a/200-n", content_type="image/png",
                size_bytes=1, pixel_width=1, pixel_height=1, sha256="0" * 64))  # fmt: skip
        upgrade(database_url)
        with SqlAlchemyUnitOfWork(engine) as uow:
            assert uow.renditions.get("a" * 32, 200, "png").storage_key == "thumbnails/a/200-n"
            tiers = {t.name: t.permissions.formats for t in uow.tiers.list()}
        assert tiers == {"basic": [], "premium": ["webp"], "enterprise": ["avif", "webp"]}
        downgrade(database_url, "0004")
        upgrade(database_url)  # and back again: nothing left behind blocks it
    finally:
        engine.dispose()


def sa_table(name: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import column, table

    return table(name, *(column(c) for c in (
        "image_id", "height", "storage_key", "content_type", "size_bytes", "pixel_width", "pixel_height", "sha256")))  # fmt: skip


def test_upgrading_to_0007_adds_revoked_tokens_and_downgrading_drops_them(database_url: str) -> None:
    upgrade(database_url, "0006")
    assert "revoked_tokens" not in _tables(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with SqlAlchemyUnitOfWork(engine) as uow:
            ann = uow.users.add(User(None, "ann", "hash", False, [])).id
            uow.revoked_tokens.add(ann, "t" * 22, T0)
            uow.commit()
        downgrade(database_url, "0006")
        assert "revoked_tokens" not in _tables(database_url)
        upgrade(database_url)  # and back again
        with SqlAlchemyUnitOfWork(engine) as uow:
            assert uow.revoked_tokens.live(ann, T0 - timedelta(hours=1)) == frozenset()
    finally:
        engine.dispose()
