"""The backfills: placeholders and previews for images uploaded before uploads made them."""

from __future__ import annotations

from dataclasses import replace

from imagify.domain.services.backfills import PlaceholderBackfill, PreviewBackfill
from tests.unit.fakes import FakeInspector


def as_uploaded_before_previews(world, image):  # type: ignore[no-untyped-def]
    """The row and blobs an upload from before previews left: no preview."""
    del world.blobs.blobs[image.preview_key]
    world.uow.store.images[image.id] = replace(image, preview_height=None)
    world.cache.owner_changed(image.owner_id)


def preview_backfill(world, inspector=None):  # type: ignore[no-untyped-def]
    return PreviewBackfill(world.uow, world.blobs, inspector or FakeInspector(), world.cache)


def test_a_large_jpeg_uploaded_before_previews_gets_one_and_renders_from_it(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    as_uploaded_before_previews(world, image)

    report = preview_backfill(world).run()

    assert report.summary() == "1 previews made"
    assert world.blobs.blobs[image.preview_key] == (b"preview of BIG:photo", "image/jpeg")
    world.images.thumbnail(ann, image.id, 200)  # a fresh read of the row: the cache was told
    assert world.renderer.sources == [image.preview_key]


def test_small_jpegs_and_other_formats_are_left_without_a_decode(world):
    ann = world.user()
    small = world.upload(ann, b"IMG:pixels")  # 40x30
    world.upload(ann, b"PNG:pixels", "x.png")
    inspector = FakeInspector()

    report = preview_backfill(world, inspector).run()

    assert report.summary() == "0 previews made; 1 images need none"
    assert inspector.inspected == 0 and world.uow.store.images[small.id].preview_height is None


def test_an_image_deleted_while_its_preview_is_made_keeps_no_preview(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    as_uploaded_before_previews(world, image)

    class DeletingInspector(FakeInspector):
        def inspect(self, stream):  # type: ignore[no-untyped-def]
            info = super().inspect(stream)
            world.images.delete(ann, image.id)  # between the decode and the row's update
            return info

    report = preview_backfill(world, DeletingInspector()).run()

    assert report.filled == 0 and report.failed == 0
    assert world.blobs.blobs == {}


def test_a_missing_original_is_reported_and_the_backfill_goes_on(world):
    ann = world.user()
    first, second = world.upload(ann, b"BIG:one"), world.upload(ann, b"BIG:two")
    for image in (first, second):
        as_uploaded_before_previews(world, image)
    del world.blobs.blobs[first.storage_key]
    errors = []

    report = preview_backfill(world).run(lambda image, error: errors.append((image.id, error)))

    assert report.summary() == "1 previews made; 1 could not be read or decoded"
    assert errors[0][0] == first.id and "no blob" in errors[0][1] and errors[1] == (second.id, None)


def test_a_jpeg_whose_preview_is_not_worth_keeping_is_decoded_once_not_on_every_run(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:lowq photo")
    assert image.preview_key is None
    inspector = FakeInspector()

    assert preview_backfill(world, inspector).run().summary() == "0 previews made; 1 images need none"
    assert preview_backfill(world, inspector).run().summary() == "0 previews made"
    assert inspector.inspected == 1 and world.uow.store.images[image.id].preview_key is None


def test_running_a_backfill_again_makes_nothing_new(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    as_uploaded_before_previews(world, image)
    assert preview_backfill(world).run().filled == 1
    assert preview_backfill(world).run().summary() == "0 previews made"
    placeholders = PlaceholderBackfill(world.uow, world.blobs, FakeInspector(), world.cache)
    assert placeholders.run().summary() == "0 placeholders made"
