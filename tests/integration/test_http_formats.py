"""HTTP: thumbnails in the format Accept and the tiers agree on, or ?format=; HEIC, AVIF and
GIF uploads; placeholders in the Image JSON. Every backend, the Lambda function's included."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image as PILImage

from tests.integration.conftest import assert_error, image_bytes, upload

IMAGES = "/api/v1/images"
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


def thumbnail(client, account, image_id: str, height: int = 200, accept: str | None = None, **params: str):
    headers = dict(account.headers)
    if accept is not None:
        headers["Accept"] = accept
    return client.get(f"{IMAGES}/{image_id}/thumbnails/{height}", headers=headers, params=params)


def opened(data: bytes) -> PILImage.Image:
    im = PILImage.open(io.BytesIO(data))
    im.load()
    return im


def encoded(im: PILImage.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("tier", "accept", "expected"),
    [
        ("enterprise", CHROME, "image/avif"),
        ("premium", CHROME, "image/webp"),  # premium has no AVIF
        ("basic", CHROME, "image/jpeg"),  # basic keeps the original's format
        ("enterprise", SAFARI_15, "image/webp"),
        ("enterprise", "image/webp;q=0.9,image/avif;q=0.5", "image/webp"),  # q-values rank
        ("enterprise", "image/avif;q=0,image/webp", "image/webp"),  # q=0 refuses
        ("enterprise", "*/*", "image/jpeg"),  # a wildcard names no modern format
        ("enterprise", "image/*", "image/jpeg"),
        ("enterprise", None, "image/jpeg"),
    ],
)
def test_the_thumbnail_is_the_best_format_accept_admits_and_the_tiers_grant(
    client, make_user, tier, accept, expected
):
    ann = make_user("ann", tier)
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]
    response = thumbnail(client, ann, image_id, accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == expected
    assert response.headers["Vary"] == "Accept"
    assert opened(response.content).size == (267, 200)


def test_explicit_format_overrides_accept_and_needs_the_tier(client, make_user):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]

    png = thumbnail(client, ann, image_id, accept=CHROME, format="png")
    assert png.headers["content-type"] == "image/png" and "Vary" not in png.headers
    assert thumbnail(client, ann, image_id, format="webp").headers["content-type"] == "image/webp"
    assert "AVIF" in assert_error(thumbnail(client, ann, image_id, format="avif"), 403)
    assert "'format'" in assert_error(thumbnail(client, ann, image_id, format="gif"), 400)


def test_each_format_is_rendered_once_with_its_own_etag_and_304(client, make_user):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]
    etags = {}
    for accept in ("image/jpeg", "image/webp", CHROME):
        first = thumbnail(client, ann, image_id, accept=accept)
        again = thumbnail(client, ann, image_id, accept=accept)
        assert first.content == again.content and first.headers["ETag"] == again.headers["ETag"]
        etags[first.headers["content-type"]] = first.headers["ETag"]
        cached = thumbnail(client, ann, image_id, accept=accept, **{})
        revalidated = client.get(
            f"{IMAGES}/{image_id}/thumbnails/200",
            headers={**ann.headers, "Accept": accept, "If-None-Match": first.headers["ETag"]},
        )
        assert cached.status_code == 200
        assert revalidated.status_code == 304 and revalidated.headers["Vary"] == "Accept"
    assert set(etags) == {"image/jpeg", "image/webp", "image/avif"}
    assert len(set(etags.values())) == 3


def test_deleting_the_image_removes_every_format(client, make_user, container):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]
    for fmt in ("jpeg", "webp", "avif", "png"):
        assert thumbnail(client, ann, image_id, format=fmt).status_code == 200
    blobs = container.blobs()
    assert len(list(blobs.keys(f"thumbnails/{image_id}/"))) == 4
    assert client.delete(f"{IMAGES}/{image_id}", headers=ann.headers).status_code == 204
    assert list(blobs.keys(f"thumbnails/{image_id}/")) == []


def test_a_transparent_png_keeps_its_alpha_in_webp_and_avif_and_is_flattened_in_jpeg(client, make_user):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, image_bytes("PNG", (400, 400), "RGBA"), "a.png").json()["id"]
    assert opened(thumbnail(client, ann, image_id, accept=CHROME).content).mode == "RGBA"  # AVIF
    assert opened(thumbnail(client, ann, image_id, format="webp").content).mode == "RGBA"
    assert opened(thumbnail(client, ann, image_id, format="png").content).mode == "RGBA"
    assert opened(thumbnail(client, ann, image_id, format="jpeg").content).mode == "RGB"


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("HEIF", "image/heic"), ("AVIF", "image/avif"), ("GIF", "image/gif")],
)
def test_heic_avif_and_gif_uploads_are_identified_and_thumbnailed(client, make_user, fmt, content_type):
    pillow_heif.register_heif_opener()
    ann = make_user("ann", "premium")
    data = encoded(PILImage.new("RGB", (600, 400), (30, 120, 200)), fmt)
    created = upload(client, ann, data, "upload.bin")
    assert created.status_code == 201, created.text
    image = created.json()
    assert (image["content_type"], image["width"], image["height"]) == (content_type, 600, 400)
    default = thumbnail(client, ann, image["id"])
    assert default.headers["content-type"] == ("image/png" if fmt == "GIF" else "image/jpeg")
    assert opened(default.content).size == (300, 200)
    assert thumbnail(client, ann, image["id"], accept=CHROME).headers["content-type"] == "image/webp"


def test_an_animated_gif_is_thumbnailed_from_its_first_frame(client, make_user):
    ann = make_user("ann", "basic")
    frames = [PILImage.new("RGB", (800, 400), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image_id = upload(client, ann, data, "anim.gif").json()["id"]
    response = thumbnail(client, ann, image_id)
    assert response.status_code == 200, response.text
    thumb = opened(response.content)
    assert thumb.size == (400, 200) and getattr(thumb, "n_frames", 1) == 1
    r, g, b = thumb.convert("RGB").getpixel((200, 100))
    assert r > 200 and g < 30 and b < 30


def test_an_upload_carries_a_stable_placeholder(client, make_user):
    ann = make_user("ann", "basic")
    data = image_bytes("JPEG", (800, 600))
    first = upload(client, ann, data).json()
    second = upload(client, ann, data).json()
    placeholder = first["placeholder"]
    assert placeholder == second["placeholder"]
    assert placeholder["color"].startswith("#") and len(placeholder["color"]) == 7
    r, g, b = (int(placeholder["color"][i:i + 2], 16) for i in (1, 3, 5))
    assert abs(r - 200) < 12 and g < 45 and b < 45
    assert placeholder["aspect_ratio"] == pytest.approx(800 / 600, rel=1e-3)
    assert 10 < len(placeholder["thumbhash"]) < 64
    listed = client.get(IMAGES, headers=ann.headers).json()["items"][0]
    assert listed["placeholder"] == placeholder


def test_a_png_which_the_upload_check_does_not_decode_gets_its_placeholder_with_its_first_thumbnail(
    client, make_user
):
    ann = make_user("ann", "basic")
    image = upload(client, ann, encoded(PILImage.new("RGB", (800, 400), (20, 40, 220)), "PNG"), "blue.png").json()
    assert image["placeholder"] is None  # the check inflates a PNG's pixel data, never decodes it

    assert thumbnail(client, ann, image["id"]).status_code == 200

    placeholder = client.get(f"{IMAGES}/{image['id']}", headers=ann.headers).json()["placeholder"]
    r, g, b = (int(placeholder["color"][i:i + 2], 16) for i in (1, 3, 5))
    assert r < 50 and g < 70 and b > 190
    assert placeholder["aspect_ratio"] == pytest.approx(2.0, rel=1e-3)
    assert 10 < len(placeholder["thumbhash"]) < 64


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "AVIF", "HEIF"])
def test_formats_the_upload_check_decodes_whole_carry_their_placeholder_at_once(client, make_user, fmt):
    pillow_heif.register_heif_opener()
    ann = make_user("ann", "basic")
    image = upload(client, ann, encoded(PILImage.new("RGB", (800, 400), (20, 40, 220)), fmt), "blue").json()
    placeholder = image["placeholder"]
    r, g, b = (int(placeholder["color"][i:i + 2], 16) for i in (1, 3, 5))
    assert r < 50 and g < 70 and b > 190 and placeholder["aspect_ratio"] == pytest.approx(2.0, rel=1e-3)
