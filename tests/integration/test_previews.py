"""Upload previews: a JPEG 1200 px or more high keeps the upright 1/2-, 1/4- or 1/8-scale
decode its upload check made, and thumbnails it covers render from it, looking as if made
from the original.

Runs on every backend (the Lambda function renders from the preview's key like any other).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat, JpegImagePlugin

from imagify.adapters.pillow_render import render_thumbnail
from tests.integration.conftest import upload
from tests.integration.test_doctor import run_doctor

pytestmark = pytest.mark.integration

IMAGES = "/api/v1/images"
RED = (220, 20, 20)


def turned_photo() -> bytes:
    """A 3200x2400 picture as displayed (red top-left corner), stored turned with EXIF
    orientation 6, as phones write portrait-held photos."""
    shown = Image.merge("RGB", [
        Image.linear_gradient("L").resize((3200, 2400)),
        Image.linear_gradient("L").rotate(90).resize((3200, 2400)),
        Image.new("L", (3200, 2400), 120),
    ])  # fmt: skip
    shown.paste(RED, (0, 0, 400, 300))
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_a_large_jpeg_keeps_an_upright_preview_its_thumbnails_render_from(client, container, make_user):
    ann = make_user("ann", "premium")
    data = turned_photo()
    image = upload(client, ann, data, "portrait.jpg").json()
    preview = container.blobs().open(f"previews/{image['id']}")
    try:
        kept = opened(preview.stream.read())
    finally:
        preview.stream.close()
    assert kept.size == (800, 600)  # upright, a quarter of each side
    assert kept.getpixel((10, 10))[0] > 200 and not kept.getexif()

    for height, size in ((200, (267, 200)), (400, (533, 400))):
        response = client.get(f"{IMAGES}/{image['id']}/thumbnails/{height}", headers=ann.headers)
        assert response.status_code == 200, response.text
        thumb = opened(response.content)
        assert thumb.size == size and thumb.getpixel((5, 5))[0] > 200  # upright, red corner first
        # As made from the original: the same picture to within a grey level or two.
        direct = opened(render_thumbnail(data, height, "jpeg").data)
        assert direct.size == size
        assert max(ImageStat.Stat(ImageChops.difference(thumb, direct)).mean) < 3


def test_the_thumbnails_a_preview_covers_need_no_original(client, container, make_user):
    ann = make_user("ann", "premium")
    image = upload(client, ann, turned_photo(), "portrait.jpg").json()
    container.blobs().delete(f"originals/{image['id']}")  # as if lost: proof of which is read

    covered = client.get(f"{IMAGES}/{image['id']}/thumbnails/400", headers=ann.headers)

    assert covered.status_code == 200 and opened(covered.content).size == (533, 400)


def test_a_2_mp_jpeg_keeps_a_half_scale_preview_with_the_originals_subsampling(client, container, make_user):
    ann = make_user("ann", "premium")
    for subsampling in (2, 0):  # 4:2:0 as cameras write, and 4:4:4
        photo = Image.merge("RGB", [
            Image.linear_gradient("L").resize((1632, 1224)),
            Image.effect_noise((1632, 1224), 30),
            Image.linear_gradient("L").rotate(90).resize((1632, 1224)),
        ])  # fmt: skip
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=90, subsampling=subsampling)
        data = out.getvalue()
        image = upload(client, ann, data, "2mp.jpg").json()
        preview = container.blobs().open(f"previews/{image['id']}")
        try:
            kept = Image.open(io.BytesIO(preview.stream.read()))
        finally:
            preview.stream.close()
        assert kept.size == (816, 612)  # half of each side
        assert JpegImagePlugin.get_sampling(kept) == subsampling

        container.blobs().delete(f"originals/{image['id']}")  # the 400 px renders from it alone
        response = client.get(f"{IMAGES}/{image['id']}/thumbnails/400", headers=ann.headers)
        assert response.status_code == 200, response.text
        thumb = opened(response.content)
        direct = opened(render_thumbnail(data, 400, "jpeg").data)
        assert thumb.size == direct.size == (533, 400)
        assert max(ImageStat.Stat(ImageChops.difference(thumb, direct)).mean) < 3


def test_a_preview_larger_than_half_its_original_is_not_kept(client, container, make_user):
    # Previews are not counted in the owner's storage usage: a q30 original's would be
    # larger than the original itself, room stored past the quota.
    ann = make_user("ann", "basic")
    noisy = Image.merge("RGB", [Image.effect_noise((1632, 1224), 60)] * 3)
    out = io.BytesIO()
    noisy.save(out, "JPEG", quality=30)
    image = upload(client, ann, out.getvalue(), "low.jpg").json()

    assert not container.blobs().exists(f"previews/{image['id']}")
    assert client.get(f"{IMAGES}/{image['id']}/thumbnails/200", headers=ann.headers).status_code == 200


def test_a_turned_4_2_2_photo_keeps_a_4_4_4_preview(client, container, make_user):
    # 4:2:2 halves the stored width's chroma; turned upright, that is the height's: the
    # preview keeps it whole rather than halve the other side too.
    ann = make_user("ann", "premium")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.merge("RGB", [Image.effect_noise((1632, 1224), 30)] * 3).save(
        out, "JPEG", quality=90, subsampling=1, exif=exif.tobytes()
    )
    image = upload(client, ann, out.getvalue(), "turned.jpg").json()
    preview = container.blobs().open(f"previews/{image['id']}")
    try:
        kept = Image.open(io.BytesIO(preview.stream.read()))
    finally:
        preview.stream.close()
    assert kept.size == (612, 816) and JpegImagePlugin.get_sampling(kept) == 0


def test_the_upload_checks_memory_estimate_counts_the_upright_copy_a_preview_is_made_from(
    client, container, make_user
):
    ann = make_user("ann", "basic")
    out = io.BytesIO()
    Image.new("RGB", (1632, 1224), (90, 120, 30)).save(out, "JPEG", quality=90)
    pool = container.decode_pool()  # every backend checks uploads in its own pool
    pool.budget.largest = 0  # earlier uploads

    assert upload(client, ann, out.getvalue(), "2mp.jpg").status_code == 201

    half_scale_decode = 816 * 612 * 3
    assert pool.budget.largest >= 2 * half_scale_decode


def test_a_jpeg_under_1200_px_high_or_a_png_has_no_preview(client, container, make_user):
    ann = make_user("ann", "basic")
    for fmt in ("JPEG", "PNG"):
        out = io.BytesIO()
        Image.new("RGB", (1600, 1150) if fmt == "JPEG" else (3200, 2400), (10, 90, 200)).save(out, fmt)
        image = upload(client, ann, out.getvalue(), f"x.{fmt.lower()}").json()
        assert not container.blobs().exists(f"previews/{image['id']}"), fmt  # 1150 / 2 < 600


def test_deleting_the_image_deletes_its_preview(client, container, make_user):
    ann = make_user("ann", "basic")
    image = upload(client, ann, turned_photo(), "portrait.jpg").json()
    assert container.blobs().exists(f"previews/{image['id']}")
    assert client.delete(f"{IMAGES}/{image['id']}", headers=ann.headers).status_code == 204
    assert not container.blobs().exists(f"previews/{image['id']}")


def test_the_doctor_keeps_a_named_preview_and_removes_one_no_image_names(client, container, make_user, settings):
    ann = make_user("ann", "basic")
    image = upload(client, ann, turned_photo(), "portrait.jpg").json()
    stray = "previews/0123456789abcdef0123456789abcdef"
    container.blobs().put(stray, b"left by a crash", "image/jpeg")

    report = run_doctor(settings, "--fix", "--min-age-seconds", "0")

    assert report.output.splitlines()[:-1] == [
        f"orphaned blob: {stray}: a stored preview that no row names "
        "(image 0123456789abcdef0123456789abcdef); deleted it [fixed]"
    ], report.output
    assert container.blobs().exists(f"previews/{image['id']}")
    assert not container.blobs().exists(stray)

