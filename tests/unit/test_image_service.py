import io
import threading

import pytest

from imagify.domain.model import Rendition
from imagify.domain.errors import Forbidden, InvalidInput, NotAnImage, NotFound, RenderFailed, RenderTimedOut


def test_an_upload_stores_the_bytes_and_records_the_image(world):
    ann = world.user()
    image = world.upload(ann, b"IMG:cat", "cat.jpg")
    assert world.blobs.blobs[image.storage_key] == (b"IMG:cat", "image/jpeg")
    assert world.images.get(ann, image.id) == image
    assert (image.width, image.height, image.size_bytes) == (40, 30, 7)


def test_the_storage_key_never_comes_from_the_filename(world):
    image = world.upload(world.user(), filename="../../etc/passwd")
    assert "passwd" not in image.storage_key and ".." not in image.storage_key
    assert image.filename == "passwd"


def test_control_characters_and_huge_names_are_trimmed_for_display(world):
    image = world.upload(world.user(), filename="a\x00b\nc" + "x" * 1000 + ".jpg")
    assert image.filename.startswith("abc") and len(image.filename) == 255


def test_an_upload_that_is_not_an_image_leaves_no_row_and_no_blob(world):
    ann = world.user()
    with pytest.raises(NotAnImage):
        world.upload(ann, b"<svg></svg>")
    assert world.blobs.blobs == {} and world.uow.store.images == {}


def test_an_empty_upload_is_refused(world):
    with pytest.raises(NotAnImage):
        world.images.upload(world.user(), "x.jpg", io.BytesIO(b""), 0)


def test_a_failed_commit_removes_the_blob_already_written(world):
    ann = world.user()
    world.uow.fail_commit = RuntimeError("database went away")
    with pytest.raises(RuntimeError):
        world.upload(ann)
    assert world.blobs.blobs == {}


def test_another_users_image_is_not_found_rather_than_forbidden(world):
    ann, bob = world.user("ann"), world.user("bob", "enterprise")
    image = world.upload(ann)
    for call in (
        lambda: world.images.get(bob, image.id),
        lambda: world.images.thumbnail(bob, image.id, 200),
        lambda: world.images.original(bob, image.id),
        lambda: world.images.delete(bob, image.id),
        lambda: world.link_service.create(bob, image.id, 300),
    ):
        with pytest.raises(NotFound):
            call()


def test_listing_pages_newest_first_with_a_cursor(world):
    ann = world.user()
    ids = []
    for _ in range(5):
        ids.append(world.upload(ann).id)
        world.clock.advance(seconds=1)
    first = world.images.list(ann, None, 2)
    second = world.images.list(ann, first.next_cursor, 2)
    third = world.images.list(ann, second.next_cursor, 2)
    seen = [i.id for page in (first, second, third) for i in page.items]
    assert seen == list(reversed(ids))
    assert third.next_cursor is None


def test_images_uploaded_in_the_same_instant_are_neither_skipped_nor_repeated(world):
    ann = world.user()
    ids = {world.upload(ann).id for _ in range(7)}
    seen, cursor = [], None
    while True:
        page = world.images.list(ann, cursor, 3)
        seen += [i.id for i in page.items]
        if not (cursor := page.next_cursor):
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_a_listing_shows_only_the_owners_images(world):
    ann, bob = world.user("ann"), world.user("bob")
    world.upload(ann)
    assert world.images.list(bob, None, 20).items == []


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "Zm9v"])
def test_a_malformed_cursor_is_a_clear_400(world, cursor):
    with pytest.raises(InvalidInput, match="cursor"):
        world.images.list(world.user(), cursor, 20)


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_a_page_size_outside_1_to_100_is_refused(world, limit):
    with pytest.raises(InvalidInput, match="limit"):
        world.images.list(world.user(), None, limit)


def test_a_thumbnail_is_rendered_on_first_access_and_reused_after(world):
    ann = world.user()
    image = world.upload(ann)
    first = world.images.thumbnail(ann, image.id, 200)
    second = world.images.thumbnail(ann, image.id, 200)
    assert first == second and world.renderer.calls == 1
    assert world.blobs.exists(first.storage_key)


def test_a_basic_user_may_not_fetch_the_400px_thumbnail(world):
    ann = world.user("ann", "basic")
    image = world.upload(ann)
    with pytest.raises(Forbidden, match="200"):
        world.images.thumbnail(ann, image.id, 400)
    assert world.renderer.calls == 0


def test_a_basic_user_may_not_fetch_the_original(world):
    ann = world.user("ann", "basic")
    with pytest.raises(Forbidden):
        world.images.original(ann, world.upload(ann).id)


def test_concurrent_first_requests_render_a_thumbnail_once(world):
    ann = world.user()
    image = world.upload(ann)
    results, barrier = [], threading.Barrier(8)

    def fetch():
        barrier.wait()
        results.append(world.images.thumbnail(ann, image.id, 200))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.renderer.calls == 1
    assert len({r.sha256 for r in results}) == 1 and len(results) == 8


def test_a_failed_render_caches_nothing_and_the_next_request_tries_again(world):
    ann = world.user()
    image = world.upload(ann)
    world.renderer.fail = True
    with pytest.raises(RenderFailed):
        world.images.thumbnail(ann, image.id, 200)
    world.renderer.fail = False
    assert world.images.thumbnail(ann, image.id, 200).height == 200
    assert world.renderer.calls == 2


def test_deleting_an_image_removes_its_row_blobs_renditions_and_links(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 200)
    link = world.link_service.create(ann, image.id, 300)
    world.images.delete(ann, image.id)
    assert world.blobs.blobs == {}
    assert world.uow.store.images == {} and world.uow.store.renditions == {}
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)


def test_a_downgrade_takes_effect_on_the_next_request(world):
    ann = world.user("ann", "premium")
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 400)
    world.admin.update_user("root", "ann", tiers=["basic"])
    ann = world.admin.get_user("ann")
    with pytest.raises(Forbidden):
        world.images.thumbnail(ann, image.id, 400)


def test_a_render_that_loses_a_race_serves_the_stored_thumbnail_and_drops_its_own_bytes(world):
    ann = world.user()
    image = world.upload(ann)
    winner = Rendition(image.id, 200, "thumbnails/winner", "image/jpeg", 3, 200, 200, "f" * 64)
    world.blobs.put("thumbnails/winner", b"win", "image/jpeg")

    def another_process_stores_it_first():
        with world.uow() as uow:
            uow.renditions.add(winner)
            uow.commit()

    world.renderer.during_render = another_process_stores_it_first
    assert world.images.thumbnail(ann, image.id, 200) == winner
    assert sorted(world.blobs.blobs) == ["originals/" + image.id, "thumbnails/winner"]


def test_a_thumbnail_of_an_image_deleted_during_its_render_leaves_no_bytes(world):
    ann = world.user()
    image = world.upload(ann)
    world.renderer.during_render = lambda: world.images.delete(ann, image.id)
    with pytest.raises(NotFound):
        world.images.thumbnail(ann, image.id, 200)
    assert world.blobs.blobs == {}


def test_an_image_is_deleted_even_when_the_link_store_is_down_and_its_links_then_die(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    link = world.link_service.create(ann, image.id, 300)
    world.links.down = True
    world.images.delete(ann, image.id)
    world.links.down = False
    assert world.uow.store.images == {} and world.blobs.blobs == {}
    with pytest.raises(NotFound):
        world.link_service.resolve(link.token)


def test_a_renderer_that_crashes_unexpectedly_is_a_render_failure_leaving_no_bytes(world):
    ann = world.user()
    image = world.upload(ann)

    def crash():
        raise MemoryError("no memory for the decode buffer")

    world.renderer.during_render = crash
    with pytest.raises(RenderFailed, match="crashed"):
        world.images.thumbnail(ann, image.id, 200)
    assert list(world.blobs.blobs) == [image.storage_key]


def test_each_format_of_a_height_is_rendered_once_and_deleted_with_the_image(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann)
    chrome = "image/avif,image/webp,*/*"
    first = world.images.thumbnail(ann, image.id, 200, chrome)
    assert first.format == "avif" and world.images.thumbnail(ann, image.id, 200, chrome) == first
    webp = world.images.thumbnail(ann, image.id, 200, None, "webp")
    jpeg = world.images.thumbnail(ann, image.id, 200)
    assert (webp.format, jpeg.format) == ("webp", "jpeg")
    assert len({first.etag, webp.etag, jpeg.etag}) == 3 and world.renderer.calls == 3
    world.images.delete(ann, image.id)
    assert not [k for k in world.blobs.blobs if k.startswith("thumbnails/")]


def test_an_image_uploaded_without_a_placeholder_gets_the_one_of_its_first_thumbnail(world):
    ann = world.user("ann", "enterprise")
    image = world.upload(ann, b"PNG:diagram")
    assert image.placeholder is None  # a format the upload check does not decode

    rendition = world.images.thumbnail(ann, image.id, 200)

    placeholder = world.images.get(ann, image.id).placeholder  # a warm read cache sees it too
    assert placeholder is not None and placeholder.thumbhash == world.blobs.blobs[rendition.storage_key][0].decode()[:64]
    world.images.thumbnail(ann, image.id, 200, None, "webp")
    assert world.images.get(ann, image.id).placeholder == placeholder  # made once, from the first


def test_a_placeholder_that_cannot_be_made_does_not_fail_the_thumbnail(world, monkeypatch):
    ann = world.user()
    image = world.upload(ann, b"PNG:diagram")

    def broken(stream):
        raise NotAnImage("cannot decode")

    monkeypatch.setattr(world.images._inspector, "placeholder", broken)
    rendition = world.images.thumbnail(ann, image.id, 200)

    assert world.blobs.exists(rendition.storage_key)
    assert world.images.get(ann, image.id).placeholder is None


def test_a_large_jpeg_keeps_its_upload_preview_and_small_thumbnails_render_from_it(world):
    world.admin.create_tier("test", "wide", ["thumbnail:200", "thumbnail:400", "thumbnail:600"])
    ann = world.user("ann", "wide")
    image = world.upload(ann, b"BIG:photo")
    assert image.preview_height == 750
    assert world.blobs.blobs[image.preview_key] == (b"preview of BIG:photo", "image/jpeg")

    world.images.thumbnail(ann, image.id, 200)
    world.images.thumbnail(ann, image.id, 400)  # 400 x 1.5 = 600 <= 750: still covered
    world.images.thumbnail(ann, image.id, 600)  # needs more than the preview has
    assert world.renderer.sources == [image.preview_key, image.preview_key, image.storage_key]


def test_a_small_jpeg_has_no_preview_and_renders_from_its_original(world):
    ann = world.user()
    image = world.upload(ann)
    world.images.thumbnail(ann, image.id, 200)
    assert image.preview_height is None and image.preview_key is None
    assert world.renderer.sources == [image.storage_key]


def test_a_preview_whose_bytes_are_gone_falls_back_to_the_original(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    del world.blobs.blobs[image.preview_key]

    rendition = world.images.thumbnail(ann, image.id, 200)

    assert world.renderer.sources == [image.preview_key, image.storage_key]
    assert world.blobs.exists(rendition.storage_key)


def test_a_preview_render_that_timed_out_is_not_tried_again_on_the_original(world):
    # The original is the larger decode: a retry would make the caller wait twice as long.
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    world.renderer.too_slow.add(image.preview_key)

    with pytest.raises(RenderTimedOut):
        world.images.thumbnail(ann, image.id, 200)

    assert world.renderer.sources == [image.preview_key]
    assert not [key for key in world.blobs.blobs if key.startswith("thumbnails/")]


def test_deleting_an_image_removes_its_preview(world):
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    world.images.delete(ann, image.id)
    assert world.blobs.blobs == {}


def test_an_upload_whose_commit_fails_leaves_neither_original_nor_preview(world):
    ann = world.user()
    world.uow.fail_commit = RuntimeError("database went away")
    with pytest.raises(RuntimeError):
        world.upload(ann, b"BIG:photo")
    assert world.blobs.blobs == {}


def test_a_preview_the_renderer_cannot_read_falls_back_to_the_original(world):
    # e.g. a Lambda role deployed before previews, without s3:GetObject on previews/*
    ann = world.user()
    image = world.upload(ann, b"BIG:photo")
    world.renderer.unreadable.add(image.preview_key)

    rendition = world.images.thumbnail(ann, image.id, 200)

    assert world.renderer.sources == [image.preview_key, image.storage_key]
    assert world.blobs.exists(rendition.storage_key)
