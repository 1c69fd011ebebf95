"""Hostile uploads: SVG and HTML are refused; image polyglots never come back as something a
browser would run. Every image answer says nosniff and a sandboxing Content-Security-Policy.

The decision on polyglots: a JPEG with bytes after its end marker, or a PNG with a text
chunk, is a valid image (cameras append data after EOI; editors write tEXt), so refusing
them would refuse real photos. They are stored and served as what their content is
(image/jpeg, image/png) with nosniff and `default-src 'none'; sandbox`, so no browser
renders them as HTML, and thumbnails are re-encoded, so the payload does not survive.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from tests.integration.conftest import assert_error, image_bytes, upload

IMAGES = "/api/v1/images"
PAYLOAD = b"<script>alert(document.domain)</script>"


def svg(prolog: bytes = b"") -> bytes:
    return prolog + b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    "data",
    [
        svg(b'<?xml version="1.0" encoding="UTF-8"?>\n'),
        svg(b"\xef\xbb\xbf"),
        b"\xef\xbb\xbf<!DOCTYPE html><html><body>" + PAYLOAD + b"</body></html>",
        b"<html>" + PAYLOAD,
        b"GIF89a" + PAYLOAD,
        b"\xff\xd8\xff" + PAYLOAD,  # a JPEG signature and nothing of a JPEG after it
        b"\x89PNG\r\n\x1a\n" + PAYLOAD,
    ],
    ids=["svg-xml-prolog", "svg-bom", "html-bom", "html", "gif-magic-html", "jpeg-magic-html", "png-magic-html"],
)
def test_svg_html_and_fake_magic_numbers_are_refused(client, make_user, data):
    ann = make_user("ann", "enterprise")
    for declared in ("image/svg+xml", "text/html", "image/jpeg"):
        response = client.post(IMAGES, files={"file": ("x.svg", data, declared)}, headers=ann.headers)
        assert response.status_code in (400, 415), response.text
        assert_error(response, response.status_code)
    assert client.get(IMAGES, headers=ann.headers).json()["items"] == []


def png_with_text_chunk(text: bytes) -> bytes:
    png = image_bytes("PNG", (64, 48))
    body = b"Comment\x00" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:33] + chunk + png[33:]  # right after the IHDR chunk


def jpeg_with_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("index.html", b"<html>" + PAYLOAD)
    return image_bytes("JPEG", (64, 48)) + archive.getvalue()


POLYGLOTS = {
    "jpeg+html": (image_bytes("JPEG", (64, 48)) + b"<html><body>" + PAYLOAD, "image/jpeg"),
    "jpeg+zip": (jpeg_with_zip(), "image/jpeg"),
    "png-text-chunk-script": (png_with_text_chunk(PAYLOAD), "image/png"),
}


def assert_safe_image(response, content_type: str) -> None:
    assert response.status_code in (200, 304), response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy, policy
    if response.status_code == 200:
        assert response.headers["content-type"] == content_type


@pytest.mark.parametrize("name", list(POLYGLOTS))
def test_a_polyglot_is_only_ever_served_as_its_image_type_with_nosniff_and_a_sandbox(client, make_user, name):
    data, content_type = POLYGLOTS[name]
    ann = make_user("ann", "enterprise")
    created = upload(client, ann, data, filename="evil.html")
    assert created.status_code == 201, created.text
    image = created.json()
    assert image["content_type"] == content_type
    base = f"{IMAGES}/{image['id']}"

    original = client.get(f"{base}/original", headers=ann.headers)
    assert_safe_image(original, content_type)
    assert original.content == data  # the original is kept byte for byte...
    thumbnail = client.get(f"{base}/thumbnails/200", headers=ann.headers)
    assert_safe_image(thumbnail, content_type)
    assert PAYLOAD not in thumbnail.content  # ...thumbnails are re-encoded: the payload is gone
    link = client.post(f"{base}/expiring-links", json={"seconds": 300}, headers=ann.headers).json()
    followed = client.get(f"/l/{link['token']}")
    assert_safe_image(followed, content_type)
    assert "set-cookie" not in followed.headers
    for path, headers in ((f"{base}/original", ann.headers), (f"{base}/thumbnails/200", ann.headers),
                          (f"/l/{link['token']}", {})):
        revalidated = client.get(path, headers={**headers, "If-None-Match": original.headers["ETag"]
                                                if "thumbnails" not in path else thumbnail.headers["ETag"]})
        assert revalidated.status_code == 304
        assert_safe_image(revalidated, content_type)


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_every_image_answer_carries_nosniff_and_the_sandbox_policy(client, make_user, fmt, content_type):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, image_bytes(fmt, (300, 300))).json()["id"]
    for height in (200, 400):
        assert_safe_image(client.get(f"{IMAGES}/{image_id}/thumbnails/{height}", headers=ann.headers), content_type)
    assert_safe_image(client.get(f"{IMAGES}/{image_id}/original", headers=ann.headers), content_type)
    token = client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": 300}, headers=ann.headers).json()["token"]
    assert_safe_image(client.get(f"/l/{token}"), content_type)
