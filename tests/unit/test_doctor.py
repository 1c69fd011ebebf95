"""The doctor on fakes: orphaned blobs, rows whose blob is gone, the grace period, --fix."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import pytest

from imagify.domain.model import ExpiringLink, Image, User
from imagify.domain.ports import Leftover
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.admin import AdminService
from imagify.domain.services.doctor import (
    MISSING_ORIGINAL,
    MISSING_THUMBNAIL,
    ORPHANED_BLOB,
    OWNERLESS_IMAGE,
    DoctorService,
    Finding,
)
from imagify.domain.services.images import ImageService
from tests.unit.fakes import (
    FakeChangeCounters,
    FakeBlobStorage,
    FakeClock,
    FakeHasher,
    FakeInspector,
    FakeLinkStore,
    FakeLocks,
    FakeRenderer,
    FakeUnitOfWorkFactory,
    SequentialIds,
)

HOUR = timedelta(hours=1)


@dataclass
class Shop:
    uow: FakeUnitOfWorkFactory
    blobs: FakeBlobStorage
    links: FakeLinkStore
    clock: FakeClock
    images: ImageService
    doctor: DoctorService
    owner: User
    cache: ReadCache

    def upload(self) -> Image:
        return self.images.upload(self.owner, "cat.jpg", io.BytesIO(b"IMG:pixels"), 10)

    def row_count(self) -> tuple[int, int]:
        return len(self.uow.store.images), len(self.uow.store.renditions)


@pytest.fixture
def shop() -> Shop:
    uow, clock, links = FakeUnitOfWorkFactory(), FakeClock(), FakeLinkStore()
    blobs = FakeBlobStorage(clock)
    cache = ReadCache(FakeChangeCounters())
    images = ImageService(
        uow, blobs, links, FakeRenderer(blobs), FakeInspector(), FakeLocks(), clock, SequentialIds(), cache
    )
    admin = AdminService(uow, FakeHasher(), blobs, links, cache)
    owner = admin.create_user("test", "ann", "a-long-password", ["premium"])
    return Shop(uow, blobs, links, clock, images, DoctorService(uow, blobs, links, clock, cache), owner, cache)


def test_a_consistent_store_is_clean(shop: Shop) -> None:
    image = shop.upload()
    shop.images.thumbnail(shop.owner, image.id, 200)
    shop.clock.advance(hours=2)
    report = shop.doctor.examine(min_age=HOUR)
    assert report.findings == [] and report.unfixed == 0
    assert report.summary() == "checked 1 images, 1 thumbnails, 2 blobs: no problems found"


def test_an_old_blob_no_row_names_is_orphaned_but_a_young_one_may_be_an_upload_in_flight(
    shop: Shop,
) -> None:
    shop.blobs.put("originals/crashed", b"IMG:bytes", "image/jpeg")
    shop.clock.advance(minutes=61)
    shop.blobs.put("originals/in-flight", b"IMG:bytes", "image/jpeg")
    report = shop.doctor.examine(min_age=HOUR)
    assert [(f.kind, f.key, f.fixed) for f in report.findings] == [
        (ORPHANED_BLOB, "originals/crashed", False)
    ]
    assert report.unfixed == 1
    assert shop.blobs.exists("originals/crashed")  # reported, not touched


def test_fix_deletes_orphaned_originals_and_thumbnails_only(shop: Shop) -> None:
    image = shop.upload()
    shop.images.thumbnail(shop.owner, image.id, 200)
    kept = set(shop.blobs.blobs)
    shop.blobs.put("originals/crashed", b"IMG:bytes", "image/jpeg")
    shop.blobs.put(f"thumbnails/{image.id}/200-lostrace", b"thumb", "image/jpeg")  # a losing render
    shop.blobs.put("thumbnails/gone-image/400-abc", b"thumb", "image/jpeg")
    shop.clock.advance(hours=2)

    report = shop.doctor.examine(fix=True, min_age=HOUR)

    assert sorted(f.key for f in report.findings) == sorted([
        "originals/crashed",
        "thumbnails/gone-image/400-abc",
        f"thumbnails/{image.id}/200-lostrace",
    ])
    assert all(f.kind == ORPHANED_BLOB and f.fixed for f in report.findings)
    assert set(shop.blobs.blobs) == kept
    assert report.unfixed == 0
    assert report.summary().endswith("3 problems (3 orphaned blobs); all fixed")
    assert shop.doctor.examine(min_age=timedelta(0)).findings == []


def test_an_image_whose_original_is_gone_is_reported_then_removed_with_its_thumbnails_and_links(
    shop: Shop,
) -> None:
    lost, fine = shop.upload(), shop.upload()
    for image in (lost, fine):
        shop.images.thumbnail(shop.owner, image.id, 200)
        shop.links.add(ExpiringLink(f"tok-{image.id}", image.id, shop.clock.now() + HOUR))
    shop.blobs.delete(lost.storage_key)

    report = shop.doctor.examine(min_age=HOUR)
    assert [(f.kind, f.key) for f in report.findings] == [(MISSING_ORIGINAL, lost.storage_key)]
    assert shop.row_count() == (2, 2)  # nothing changed without --fix

    report = shop.doctor.examine(fix=True, min_age=HOUR)
    assert report.findings[0].fixed and "its 1 thumbnails and its links" in report.findings[0].line()
    assert set(shop.uow.store.images) == {fine.id}
    assert [key for key in shop.uow.store.renditions] == [(fine.id, 200, "jpeg")]
    assert shop.links.resolve(f"tok-{lost.id}", shop.clock.now()) is None
    assert shop.links.resolve(f"tok-{fine.id}", shop.clock.now()).image_id == fine.id
    assert not any(key.startswith(f"thumbnails/{lost.id}/") for key in shop.blobs.blobs)


def test_a_thumbnail_whose_blob_is_gone_loses_only_its_row_and_renders_again(shop: Shop) -> None:
    image = shop.upload()
    lost = shop.images.thumbnail(shop.owner, image.id, 200)
    other = shop.images.thumbnail(shop.owner, image.id, 400)
    shop.blobs.delete(lost.storage_key)

    report = shop.doctor.examine(fix=True, min_age=HOUR)

    assert [(f.kind, f.key, f.fixed) for f in report.findings] == [
        (MISSING_THUMBNAIL, lost.storage_key, True)
    ]
    assert set(shop.uow.store.renditions) == {(image.id, 400, "jpeg")}
    assert shop.uow.store.renditions[(image.id, 400, "jpeg")] == other
    again = shop.images.thumbnail(shop.owner, image.id, 200)
    assert again.storage_key != lost.storage_key and shop.blobs.exists(again.storage_key)
    assert shop.doctor.examine(min_age=timedelta(0)).findings == []


def test_each_finding_is_announced_as_it_is_found_and_summed_up(shop: Shop) -> None:
    image = shop.upload()
    rendition = shop.images.thumbnail(shop.owner, image.id, 200)
    shop.blobs.delete(rendition.storage_key)
    shop.blobs.put("originals/crashed", b"IMG:bytes", "image/jpeg")
    heard: list[Finding] = []

    report = shop.doctor.examine(min_age=timedelta(0), on_finding=heard.append)

    assert heard == report.findings and len(heard) == 2
    assert heard[0].line() == (
        f"missing thumbnail: {rendition.storage_key}: "
        f"the 200px thumbnail of image {image.id} has no stored bytes"
    )
    assert heard[1].line().startswith("orphaned blob: originals/crashed: a stored original")
    assert report.summary() == (
        "checked 1 images, 1 thumbnails, 2 blobs: 2 problems "
        "(1 missing thumbnail, 1 orphaned blob); none fixed (run with --fix to remove them)"
    )


def test_an_image_deleted_while_the_doctor_looks_is_not_a_finding(shop: Shop) -> None:
    image = shop.upload()
    images, blobs = shop.images, shop.blobs

    class DeletedMeanwhile(FakeBlobStorage):
        def exists(self, key: str) -> bool:
            images.delete(shop.owner, image.id)  # the owner deletes it right now
            return False

    racing = DeletedMeanwhile(shop.clock)
    racing.blobs, racing.written = blobs.blobs, blobs.written
    doctor = DoctorService(shop.uow, racing, shop.links, shop.clock, shop.cache)
    # The listing happened before the delete; the row pass sees the row, the blob gone.
    racing.blobs.pop(image.storage_key)
    assert doctor.examine(fix=True, min_age=timedelta(0)).findings == []


def test_a_thumbnail_left_by_a_render_that_finished_as_its_image_was_deleted_is_orphaned(
    shop: Shop,
) -> None:
    image = shop.upload()
    rendition = shop.images.thumbnail(shop.owner, image.id, 200)
    with shop.uow() as uow:  # the image's row went, the render's row and bytes stayed
        uow.images.delete(image.id)
        uow.users.add_usage(image.owner_id, -1, -image.size_bytes)  # as delete_images does
        uow.commit()
    shop.blobs.delete(image.storage_key)

    report = shop.doctor.examine(fix=True, min_age=timedelta(0))

    assert [(f.kind, f.key, f.fixed) for f in report.findings] == [
        (ORPHANED_BLOB, rendition.storage_key, True)
    ]
    assert shop.blobs.blobs == {} and shop.uow.store.renditions == {}


def test_an_image_whose_owner_is_gone_is_reported_then_removed_with_its_bytes(shop: Shop) -> None:
    image = shop.upload()
    shop.images.thumbnail(shop.owner, image.id, 200)
    del shop.uow.store.users[shop.owner.id]  # a user deletion killed before it removed the images
    shop.clock.advance(hours=2)

    report = shop.doctor.examine(min_age=HOUR)
    assert [(f.kind, f.key, f.fixed) for f in report.findings] == [
        (OWNERLESS_IMAGE, image.storage_key, False)
    ]
    report = shop.doctor.examine(fix=True, min_age=HOUR)
    assert [(f.kind, f.fixed) for f in report.findings] == [(OWNERLESS_IMAGE, True)]
    assert shop.row_count() == (0, 0) and shop.blobs.blobs == {}
    assert shop.doctor.examine(min_age=timedelta(0)).findings == []


def test_an_old_leftover_of_a_killed_write_is_reported_then_removed_but_a_young_one_is_not(
    shop: Shop,
) -> None:
    old = Leftover("temporary file", "originals/.tmp-crashed")
    shop.blobs.left[old] = shop.clock.now()
    shop.clock.advance(minutes=61)
    young = Leftover("unfinished upload", "originals/in-flight", "upload-2")
    shop.blobs.left[young] = shop.clock.now()

    report = shop.doctor.examine(min_age=HOUR)
    assert [(f.kind, f.key, f.fixed) for f in report.findings] == [
        ("temporary file", "originals/.tmp-crashed", False)
    ]
    report = shop.doctor.examine(fix=True, min_age=HOUR)
    assert report.unfixed == 0 and list(shop.blobs.left) == [young]
