"""HTTP: uploading images, the Image shape and its links, listing, reading and deleting."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.integration.conftest import (
    assert_error,
    blob_files,
    image_bytes,
    login,
    running_app,
    upload,
)

IMAGES = "/api/v1/images"
FORMATS = [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
# Blob names are made by the app: ids, heights and ".meta" sidecars, nothing a user typed.
APP_MADE_NAME = re.compile(r"[0-9a-f]{32}|originals|thumbnails|\d+|[0-9a-f]{32}\.meta|\d+\.meta")


def upload_as(client, account, data: bytes, filename: str, declared: str):
    return client.post(IMAGES, files={"file": (filename, data, declared)}, headers=account.headers)


@pytest.mark.parametrize(("fmt", "content_type"), FORMATS)
def test_an_upload_answers_201_with_the_image_typed_by_its_content(client, make_user, fmt, content_type):
    ann = make_user("ann", "basic")
    data = image_bytes(fmt, (320, 240))
    response = upload_as(client, ann, data, "holiday.gif", "text/plain")
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert (body["filename"], body["content_type"]) == ("holiday.gif", content_type)
    assert (body["width"], body["height"], body["size_bytes"]) == (320, 240, len(data))
    assert body["created_at"].endswith("Z")
    assert abs(datetime.fromisoformat(body["created_at"]).timestamp() - datetime.now().timestamp()) < 60
    assert set(body) == {"id", "filename", "content_type", "width", "height", "size_bytes", "created_at", "links", "placeholder"}


@pytest.mark.parametrize(
    ("tier", "heights", "has_original"),
    [("basic", {"200"}, False), ("premium", {"200", "400"}, False), ("enterprise", {"200", "400"}, True)],
)
def test_links_hold_exactly_what_the_callers_tiers_allow(client, make_user, tier, heights, has_original):
    account = make_user("ann", tier)
    body = upload(client, account).json()
    prefix = f"{str(client.base_url).rstrip('/')}/api/v1/images/{body['id']}"
    assert prefix.startswith("http://testserver")
    assert body["links"]["thumbnails"] == {h: f"{prefix}/thumbnails/{h}" for h in heights}
    if has_original:
        assert body["links"]["original"] == f"{prefix}/original"
    else:
        assert "original" not in body["links"]
    for read in (client.get(prefix, headers=account.headers).json(),
                 client.get(IMAGES, headers=account.headers).json()["items"][0]):
        assert read["links"] == body["links"]


def test_a_basic_user_sees_only_the_200px_thumbnail_link(client, make_user):
    body = upload(client, make_user("ann", "basic")).json()
    assert list(body["links"]["thumbnails"]) == ["200"]


def test_links_use_the_configured_public_base_url(make_settings):
    settings = make_settings(IMAGIFY_PUBLIC_BASE_URL="https://img.example.com")
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "enterprise")
        body = upload(client, ann).json()
    base = f"https://img.example.com/api/v1/images/{body['id']}"
    assert body["links"] == {
        "thumbnails": {"200": f"{base}/thumbnails/200", "400": f"{base}/thumbnails/400"},
        "original": f"{base}/original",
    }


def other_format(fmt: str) -> bytes:
    return image_bytes(fmt, (40, 30))


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (other_format("ICO"), 415),
        (other_format("BMP"), 415),
        (other_format("TIFF"), 415),
        (b"just some text, not an image\n", 400),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', 400),
        (b"<!doctype html><html><body>hi</body></html>", 400),
        (b"", 400),
        (image_bytes("JPEG")[:1500], 400),
        (image_bytes("PNG")[:-30], 400),
        (image_bytes("WEBP")[:60], 400),
    ],
    ids=["gif", "bmp", "tiff", "text", "svg", "html", "empty", "truncated-jpeg", "truncated-png", "truncated-webp"],
)
def test_a_rejected_upload_leaves_no_row_and_no_blob(client, make_user, settings, data, status):
    ann = make_user("ann", "enterprise")
    assert_error(upload(client, ann, data, filename="x.jpg"), status)
    assert client.get(IMAGES, headers=ann.headers).json() == {"items": [], "next_cursor": None}
    assert blob_files(settings) == []


def test_an_upload_without_the_file_field_is_a_400(client, make_user, settings):
    ann = make_user("ann", "basic")
    response = client.post(IMAGES, files={"picture": ("a.jpg", image_bytes())}, headers=ann.headers)
    assert "'file'" in assert_error(response, 400)
    assert blob_files(settings) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("image/jpeg", image_bytes()), ("application/json", b'{"file": "x"}'), ("multipart/form-data", b"x")],
)
def test_an_upload_that_is_not_multipart_is_a_415(client, make_user, settings, content_type, body):
    ann = make_user("ann", "basic")
    response = client.post(IMAGES, content=body, headers={**ann.headers, "Content-Type": content_type})
    assert "multipart/form-data" in assert_error(response, 415)
    assert blob_files(settings) == []


def test_uploads_over_the_byte_limit_are_413_and_leave_nothing(make_settings):
    settings = make_settings(IMAGIFY_MAX_UPLOAD_BYTES="2000")
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "basic")
        small = image_bytes("JPEG", (16, 16))
        assert len(small) < 2000 and upload(client, ann, small).status_code == 201
        before = blob_files(settings)
        for data in (image_bytes("JPEG", (400, 300)), bytes(200_000)):
            assert len(data) > 2000
            assert "2000 bytes" in assert_error(upload(client, ann, data), 413)
        assert len(client.get(IMAGES, headers=ann.headers).json()["items"]) == 1
        assert blob_files(settings) == before


def test_uploads_over_the_pixel_limit_are_413_and_leave_nothing(make_settings):
    settings = make_settings(IMAGIFY_MAX_IMAGE_PIXELS="10000")
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "basic")
        assert upload(client, ann, image_bytes("PNG", (100, 100))).status_code == 201
        before = blob_files(settings)
        assert "10000" in assert_error(upload(client, ann, image_bytes("PNG", (200, 100))), 413)
        assert len(client.get(IMAGES, headers=ann.headers).json()["items"]) == 1
        assert blob_files(settings) == before


def raw_upload(client, account, filename: bytes, data: bytes):
    """A hand-made multipart body, so the filename reaches the server byte for byte."""
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + filename
        + b'"\r\nContent-Type: image/jpeg\r\n\r\n' + data + b"\r\n--b0undary--\r\n"
    )
    headers = {**account.headers, "Content-Type": "multipart/form-data; boundary=b0undary"}
    return client.post(IMAGES, content=body, headers=headers)


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (b"../../x.jpg", "x.jpg"),
        (b"..\\..\\windows\\x.jpg", "x.jpg"),
        (b"/etc/passwd", "passwd"),
        (b"a\x01b\x1fc\x7fd.jpg", "abcd.jpg"),
        ("ünïcødé 猫.jpg".encode(), "ünïcødé 猫.jpg"),
        (b"a" * 1000 + b".jpg", "a" * 255),
        (b"", "upload"),
    ],
    ids=["dotdot", "backslashes", "absolute", "control-chars", "unicode", "1000-chars", "empty"],
)
def test_filenames_are_kept_only_as_sanitised_display_text(client, make_user, settings, sent, shown):
    ann = make_user("ann", "basic")
    response = raw_upload(client, ann, sent, image_bytes())
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == shown
    files = blob_files(settings)
    assert files, "the original was stored"
    for path in files:
        assert all(APP_MADE_NAME.fullmatch(part) for part in path.parts), path
