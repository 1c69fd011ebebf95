"""Hostile values on every kind of input the HTTP edge parses: each is a 4xx with a JSON
detail a person can act on (or, for a Range, the whole file as RFC 9110 allows), never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.integration.asgi import call
from tests.integration.conftest import assert_error, image_bytes, upload

IMAGES = "/api/v1/images"
embedded_only = pytest.mark.parametrize("backend", ["embedded"])
LONG = "9" * 5000  # past Python's 4300-digit limit for int()


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def ann(make_user):
    return make_user("ann", "enterprise")


@pytest.fixture
def image_id(client, ann):
    return upload(client, ann).json()["id"]


@embedded_only
@pytest.mark.parametrize("height", ["%C2%B2", "%D9%A3%D9%A0%D9%A0", "%EF%BC%92%EF%BC%90%EF%BC%90", LONG, "0" * 30 + "200"])
def test_a_thumbnail_height_in_anything_but_a_few_ascii_digits_is_a_400(client, ann, image_id, height):
    # '²', Arabic-Indic '٣٠٠' and full-width '２００' pass str.isdigit(); 5000 digits break int()
    response = client.get(f"{IMAGES}/{image_id}/thumbnails/{height}", headers=ann.headers)
    assert "thumbnail height must be an integer from 1 to 4096" in assert_error(response, 400)


def _whole_file_answer(answer, size: int) -> None:
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["content-length"] == str(size)
    assert "content-range" not in answer.headers


@embedded_only
@pytest.mark.parametrize(
    "header",
    [b"bytes=\xb2-", b"bytes=0-\xb9", b"bytes=-\xb3", b"bytes=" + LONG.encode() + b"-", b"bytes=0-" + LONG.encode(),
     b"bytes=-" + LONG.encode()],
)
def test_a_range_with_non_ascii_or_endless_digits_is_ignored_and_the_whole_original_sent(
    client, ann, image_id, header
):
    size = len(image_bytes())
    auth = (b"authorization", ann.headers["Authorization"].encode())
    answer = call(client.app, "GET", f"{IMAGES}/{image_id}/original", [auth, (b"range", header)])
    _whole_file_answer(answer, size)


@embedded_only
@pytest.mark.parametrize("header", [b"bytes=-\xb3", b"bytes=0-" + LONG.encode()])
def test_an_expiring_link_without_login_ignores_a_range_it_cannot_read(client, ann, image_id, header):
    token = client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": 300}, headers=ann.headers).json()["token"]
    answer = call(client.app, "GET", f"/l/{token}", [(b"range", header), (b"if-range", b"\xff\xfe")])
    _whole_file_answer(answer, len(image_bytes()))
    answer = call(client.app, "GET", f"/l/{token}", [(b"range", header)])
    _whole_file_answer(answer, len(image_bytes()))


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+05:00|x", "9999-12-31T23:59:59-05:00|x", "0001-01-01T00:00:00|x", "2020-13-01|x", "|"],
)
def test_a_listing_cursor_with_a_timestamp_out_of_range_is_a_400(client, ann, text):
    response = client.get(IMAGES, params={"cursor": cursor_of(text)}, headers=ann.headers)
    assert "pass the next_cursor of a previous page unchanged" in assert_error(response, 400)


@pytest.mark.parametrize("text", ["a" * 5000, "\U0001f600", "x\x00"])
def test_an_admin_users_cursor_that_is_no_username_is_a_400(client, make_user, text):
    admin = make_user("root", is_admin=True)
    response = client.get("/api/v1/admin/users", params={"cursor": cursor_of(text)}, headers=admin.headers)
    assert "pass the next_cursor of a previous page unchanged" in assert_error(response, 400)


def _multipart(*parts: bytes) -> bytes:
    return b"".join(b"--b\r\n" + p + b"\r\n" for p in parts) + b"--b--\r\n"


FILE_PART = b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nx'


@embedded_only
@pytest.mark.parametrize(
    "body, words",
    [
        (_multipart(*[b'Content-Disposition: form-data; name="f%d"\r\n\r\nx' % i for i in range(40)]), "parts"),
        (_multipart(b"".join(b"X-H%d: v\r\n" % i for i in range(20)) + FILE_PART), "headers"),
        (_multipart(b'Content-Disposition: form-data; name="file"; filename="' + b"a" * 10000 + b'"\r\n\r\nx'),
         "headers"),
    ],
)
def test_a_multipart_body_past_the_parser_limits_is_a_400_that_says_which(client, ann, body, words):
    headers = {**ann.headers, "Content-Type": "multipart/form-data; boundary=b"}
    detail = assert_error(client.post(IMAGES, content=body, headers=headers), 400)
    assert words in detail and "'file'" in detail


@embedded_only
@pytest.mark.parametrize("length", [LONG.encode(), "٣".encode(), b"\xb2", b"-1", b"1e3"])
def test_an_upload_with_a_content_length_that_is_no_ascii_number_is_a_400(client, ann, length):
    headers = [
        (b"authorization", ann.headers["Authorization"].encode()),
        (b"content-type", b"multipart/form-data; boundary=b"),
        (b"content-length", length),
    ]
    answer = call(client.app, "POST", IMAGES, headers, [_multipart(FILE_PART)])
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert "content-length" in answer.json()["detail"].lower()


@embedded_only
@pytest.mark.parametrize("name", ["%00", "a%00b", "a" * 5000, "..%2F..%2Fpyproject.toml"])
def test_a_docs_asset_that_does_not_exist_is_a_404_whatever_its_name(client, name):
    assert_error(client.get(f"/docs/static/{name}"), 404)
    assert client.get("/docs/static/swagger-ui.css").status_code == 200
