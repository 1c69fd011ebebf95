"""HTTP: thumbnails and originals, their caching headers, and rendering each thumbnail once."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from dependency_injector import providers
from PIL import Image as PILImage

from tests.integration.conftest import assert_error, image_bytes, upload

IMAGES = "/api/v1/images"


def thumbnail(client, account, image_id: str, height: object, **headers: str):
    return client.get(f"{IMAGES}/{image_id}/thumbnails/{height}", headers={**account.headers, **headers})


def decoded(data: bytes) -> PILImage.Image:
    im = PILImage.open(io.BytesIO(data))
    im.load()
    return im


def test_a_basic_user_gets_the_200px_jpeg_thumbnail_with_caching_headers(client, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]
    response = thumbnail(client, ann, image_id, 200)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    im = decoded(response.content)
    assert (im.format, im.size) == ("JPEG", (267, 200))
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert "max-age" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Length"] == str(len(response.content))


def test_a_basic_user_is_refused_the_400px_thumbnail_with_the_allowed_heights(client, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    detail = assert_error(thumbnail(client, ann, image_id, 400), 403)
    assert "400" in detail and "allowed heights: 200" in detail


@pytest.mark.parametrize("height", [0, -1, 4097, 5000])
def test_a_height_outside_1_to_4096_is_a_400(client, make_user, height):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    assert "height" in assert_error(thumbnail(client, ann, image_id, height), 400)


@pytest.mark.parametrize("height", ["abc", "2.5"])
def test_a_height_that_is_not_an_integer_is_a_400(client, make_user, height):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    assert "height" in assert_error(thumbnail(client, ann, image_id, height), 400)


def test_if_none_match_with_the_etag_gives_an_empty_304(client, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    first = thumbnail(client, ann, image_id, 200)
    etag = first.headers["ETag"]
    for header in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        response = thumbnail(client, ann, image_id, 200, **{"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["ETag"] == etag
    other = thumbnail(client, ann, image_id, 200, **{"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.content == first.content


def test_a_png_with_alpha_stays_an_rgba_png(client, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann, image_bytes("PNG", (600, 400), mode="RGBA"), filename="a.png").json()["id"]
    response = thumbnail(client, ann, image_id, 200)
    assert response.headers["content-type"] == "image/png"
    im = decoded(response.content)
    assert (im.format, im.mode, im.size) == ("PNG", "RGBA", (300, 200))
    assert im.getpixel((10, 10))[3] == 128


def test_a_webp_thumbnail_stays_webp(client, make_user):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann, image_bytes("WEBP", (1000, 500)), filename="w.webp").json()["id"]
    response = thumbnail(client, ann, image_id, 400)
    assert response.headers["content-type"] == "image/webp"
    assert (decoded(response.content).format, decoded(response.content).size) == ("WEBP", (800, 400))


def test_an_original_shorter_than_the_height_is_not_upscaled(client, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann, image_bytes("JPEG", (150, 100))).json()["id"]
    assert decoded(thumbnail(client, ann, image_id, 200).content).size == (150, 100)


def test_exif_orientation_is_applied_and_metadata_stripped(client, make_user):
    ann = make_user("ann", "basic")
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated to portrait
    exif[0x010F] = "SecretCam"
    buffer = io.BytesIO()
    PILImage.new("RGB", (800, 400), (10, 20, 30)).save(buffer, "JPEG", exif=exif.tobytes())
    image_id = upload(client, ann, buffer.getvalue()).json()["id"]
    data = thumbnail(client, ann, image_id, 200).content
    im = decoded(data)
    assert im.size == (100, 200)
    assert len(im.getexif()) == 0 and b"SecretCam" not in data


def test_a_second_request_returns_the_same_bytes_and_etag(client, make_user):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann).json()["id"]
    first, second = (thumbnail(client, ann, image_id, 400) for _ in range(2))
    assert first.content == second.content
    assert first.headers["ETag"] == second.headers["ETag"]


class CountingRenderer:
    """Wraps the real renderer, counting renders and widening the race window."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()

    def render(self, source_key: str, target_key: str, height: int, format: str | None = None):
        with self._lock:
            self.calls += 1
        time.sleep(0.05)
        return self.inner.render(source_key, target_key, height, format)

    def close(self) -> None:
        self.inner.close()


def test_twenty_concurrent_first_requests_render_once_and_agree(client, make_user, container):
    counting = CountingRenderer(container.renderer())
    container.renderer.override(providers.Object(counting))  # before the image service exists
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    user = container.auth().authenticate(ann.headers["Authorization"].removeprefix("Bearer "))
    images = container.images()
    barrier = threading.Barrier(20)

    def first_request(_: int):
        barrier.wait()
        rendition = images.thumbnail(user, image_id, 200)
        return rendition.sha256, hashlib.sha256(images.open(rendition.storage_key).read_all()).hexdigest()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(first_request, range(20)))
    assert counting.calls == 1
    assert len(set(results)) == 1
    recorded, stored = results[0]
    assert recorded == stored
    over_http = thumbnail(client, ann, image_id, 200).content
    assert hashlib.sha256(over_http).hexdigest() == recorded
    assert counting.calls == 1


def test_an_enterprise_user_gets_the_original_bytes_with_their_real_type(client, make_user):
    ann = make_user("ann", "enterprise")
    data = image_bytes("PNG", (123, 45))
    body = client.post(IMAGES, files={"file": ("looks.jpg", data, "image/jpeg")}, headers=ann.headers).json()
    response = client.get(f"{IMAGES}/{body['id']}/original", headers=ann.headers)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert "Cache-Control" in response.headers
    again = client.get(
        f"{IMAGES}/{body['id']}/original", headers={**ann.headers, "If-None-Match": response.headers["ETag"]}
    )
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize("tier", ["basic", "premium"])
def test_the_original_is_refused_without_original_access(client, make_user, tier):
    ann = make_user("ann", tier)
    image_id = upload(client, ann).json()["id"]
    assert "original" in assert_error(client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers), 403)
