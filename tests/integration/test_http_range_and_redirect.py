"""Byte ranges on originals and expiring links; redirect mode's 302 to a presigned S3 URL."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image as PILImage

from tests.integration.conftest import assert_error, image_bytes, login, running_app, upload

IMAGES = "/api/v1/images"


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: big enough to be streamed in several chunks."""
    buffer = io.BytesIO()
    PILImage.merge("RGB", [PILImage.effect_noise(size, 100)] * 3).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


@pytest.fixture
def original(client, make_user):
    """(account, image id, uploaded bytes) for an enterprise user's PNG."""
    ann = make_user("ann", "enterprise")
    data = image_bytes("PNG", (300, 200))
    response = upload(client, ann, data, "cat.png")
    assert response.status_code == 201, response.text
    return ann, response.json()["id"], data


def test_an_original_says_it_accepts_byte_ranges(client, original):
    ann, image_id, data = original
    response = client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers)

    assert response.status_code == 200
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=10-99", 10, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=0-0", 0, 0)],
)
def test_a_range_of_the_original_answers_206_with_exactly_those_bytes(client, original, header, start, end):
    ann, image_id, data = original
    response = client.get(f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": header})

    expected = data[start:] if end is None else data[start : end + 1]
    first = start if start >= 0 else len(data) + start
    assert response.status_code == 206, response.text
    assert response.content == expected
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(len(expected))
    assert response.headers["ETag"] == f'"{original_etag(client, ann, image_id)}"'


def original_etag(client, account, image_id: str) -> str:
    return client.get(f"{IMAGES}/{image_id}/original", headers=account.headers).headers["ETag"].strip('"')


def test_a_range_that_ends_past_the_file_is_cut_at_its_last_byte(client, original):
    ann, image_id, data = original
    response = client.get(f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": "bytes=5-999999"})

    assert response.status_code == 206
    assert response.content == data[5:]
    assert response.headers["Content-Range"] == f"bytes 5-{len(data) - 1}/{len(data)}"


def test_a_range_that_starts_past_the_end_answers_416_with_the_size(client, original):
    ann, image_id, data = original
    response = client.get(
        f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": f"bytes={len(data)}-"}
    )

    assert "outside" in assert_error(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["bytes=5-2", "lines=0-5", "bytes=0-1,5-9", "bytes=abc"])
def test_a_range_that_is_malformed_or_multiple_is_ignored_and_the_whole_original_sent(client, original, header):
    ann, image_id, data = original
    response = client.get(f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": header})

    assert response.status_code == 200
    assert response.content == data


def test_an_if_range_with_another_etag_sends_the_whole_original(client, original):
    ann, image_id, data = original
    headers = {**ann.headers, "Range": "bytes=0-9", "If-Range": '"not-the-current-etag"'}
    response = client.get(f"{IMAGES}/{image_id}/original", headers=headers)

    assert response.status_code == 200
    assert response.content == data


def test_an_if_range_with_the_current_etag_honours_the_range(client, original):
    ann, image_id, data = original
    etag = client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers).headers["ETag"]
    response = client.get(
        f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": "bytes=0-9", "If-Range": etag}
    )

    assert response.status_code == 206
    assert response.content == data[:10]


def test_if_none_match_wins_over_range_with_an_empty_304(client, original):
    ann, image_id, _ = original
    etag = client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers).headers["ETag"]
    response = client.get(
        f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": "bytes=0-9", "If-None-Match": etag}
    )

    assert response.status_code == 304
    assert response.content == b""


def test_a_range_is_no_way_around_a_missing_original_permission(client, make_user):
    bob = make_user("bob", "basic")
    image_id = upload(client, bob).json()["id"]
    response = client.get(f"{IMAGES}/{image_id}/original", headers={**bob.headers, "Range": "bytes=0-9"})

    assert_error(response, 403)


def test_a_large_original_streams_any_range_of_it_exactly(client, make_user):
    ann = make_user("ann", "enterprise")
    data = noise_png((1100, 1000))  # about 3.3 MB: streamed in chunks, not read whole
    image_id = upload(client, ann, data, "noise.png").json()["id"]

    whole = client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers)
    middle = client.get(
        f"{IMAGES}/{image_id}/original", headers={**ann.headers, "Range": "bytes=1000000-2500000"}
    )

    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Length"] == str(len(data))
    assert middle.status_code == 206
    assert middle.content == data[1000000:2500001]
    assert middle.headers["Content-Range"] == f"bytes 1000000-2500000/{len(data)}"


def test_an_expiring_link_answers_a_range_with_206(client, original):
    ann, image_id, data = original
    link = client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": 300}, headers=ann.headers)
    url = link.json()["url"]

    whole = client.get(url)
    part = client.get(url, headers={"Range": "bytes=-20"})
    too_far = client.get(url, headers={"Range": f"bytes={len(data) + 5}-"})

    assert whole.headers["Accept-Ranges"] == "bytes"
    assert part.status_code == 206 and part.content == data[-20:]
    assert assert_error(too_far, 416)


# Redirect mode needs S3, so these run on the cloud backend only.
cloud_only = pytest.mark.parametrize("backend", ["cloud"])


@pytest.fixture
def redirecting(make_settings):
    """An app in redirect mode on the cloud backend, with an enterprise and a basic user."""
    with running_app(make_settings(IMAGIFY_SERVE_MODE="redirect", IMAGIFY_PRESIGNED_URL_SECONDS="30")) as (
        container,
        client,
    ):
        yield container, client, login(container, client, "ann", "enterprise"), login(container, client, "bob", "basic")


@cloud_only
def test_in_redirect_mode_a_thumbnail_answers_302_to_a_presigned_url_that_serves_it(redirecting):
    _, client, ann, _ = redirecting
    image_id = upload(client, ann, image_bytes("JPEG", (800, 600))).json()["id"]

    response = client.get(f"{IMAGES}/{image_id}/thumbnails/200", headers=ann.headers, follow_redirects=False)

    assert response.status_code == 302, response.text
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    assert "Expires=" in location or "X-Amz-Expires=30" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert PILImage.open(io.BytesIO(fetched.content)).size == (267, 200)


@cloud_only
def test_in_redirect_mode_the_original_answers_302_and_s3_serves_the_same_bytes_and_ranges(redirecting):
    _, client, ann, _ = redirecting
    data = image_bytes("PNG", (300, 200))
    image_id = upload(client, ann, data, "cat.png").json()["id"]

    response = client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers, follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    assert httpx.get(response.headers["Location"]).content == data
    part = httpx.get(response.headers["Location"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == data[:10]


@cloud_only
def test_in_redirect_mode_permissions_are_checked_before_any_redirect(redirecting):
    _, client, _, bob = redirecting
    image_id = upload(client, bob).json()["id"]

    original = client.get(f"{IMAGES}/{image_id}/original", headers=bob.headers, follow_redirects=False)
    thumbnail = client.get(f"{IMAGES}/{image_id}/thumbnails/400", headers=bob.headers, follow_redirects=False)

    assert_error(original, 403)
    assert_error(thumbnail, 403)


@cloud_only
def test_in_redirect_mode_a_matching_etag_still_answers_304_without_a_redirect(redirecting):
    container, client, ann, _ = redirecting
    image_id = upload(client, ann).json()["id"]
    user = container.auth().authenticate(ann.headers["Authorization"].removeprefix("Bearer "))
    etag = container.images().original(user, image_id).etag

    response = client.get(
        f"{IMAGES}/{image_id}/original", headers={**ann.headers, "If-None-Match": f'"{etag}"'}, follow_redirects=False
    )

    assert response.status_code == 304


@cloud_only
def test_in_redirect_mode_an_expiring_link_still_serves_the_bytes_itself(redirecting):
    _, client, ann, _ = redirecting
    data = image_bytes("PNG", (300, 200))
    image_id = upload(client, ann, data, "cat.png").json()["id"]
    url = client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": 300}, headers=ann.headers).json()["url"]

    response = client.get(url, follow_redirects=False)

    assert response.status_code == 200
    assert response.content == data
