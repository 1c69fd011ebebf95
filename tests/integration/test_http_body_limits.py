"""Request bodies are refused before they are buffered: small limits for JSON and login,
the upload limit on the upload route alone, and an upload that goes quiet is cut off."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.integration.asgi import call
from tests.integration.conftest import image_bytes, running_app

embedded_only = pytest.mark.parametrize("backend", ["embedded"])
MIB = 1024 * 1024
CHUNK = 64 * 1024


def _chunks(total: int) -> list[bytes]:
    return [b"{" + b" " * (CHUNK - 1)] + [b" " * CHUNK] * (total // CHUNK - 1)


def _refused_unread(answer, limit_words: str) -> None:
    assert answer.status == 413, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert limit_words in answer.json()["detail"]
    assert answer.received <= 64 * 1024 + CHUNK, answer.received  # stopped early, not 1 MiB in


@embedded_only
@pytest.mark.parametrize("declared", [True, False])
def test_the_login_route_refuses_a_1_mib_body_with_413_without_reading_it(client, declared):
    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(MIB).encode()))
    answer = call(client.app, "POST", "/api/v1/auth/token", headers, _chunks(MIB))
    _refused_unread(answer, "16384 bytes")
    if declared:
        assert answer.received == 0  # the Content-Length alone was enough


@embedded_only
def test_a_json_route_refuses_a_1_mib_body_with_413_without_reading_it(client, make_user):
    admin = make_user("root", is_admin=True)
    headers = [(b"authorization", admin.headers["Authorization"].encode()), (b"content-type", b"application/json")]
    answer = call(client.app, "POST", "/api/v1/admin/users", headers, _chunks(MIB))
    _refused_unread(answer, "65536 bytes")


@embedded_only
def test_the_upload_route_alone_still_takes_bodies_up_to_the_upload_limit(client, make_user):
    ann = make_user("ann", "enterprise")
    data = image_bytes("PNG", (1200, 1200)) + b"\0" * MIB  # past the JSON limit, under the upload one
    response = client.post("/api/v1/images", files={"file": ("big.png", data, "image/png")}, headers=ann.headers)
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == len(data)


@embedded_only
def test_an_upload_that_stops_sending_is_answered_408_after_the_idle_timeout(make_settings):
    with running_app(make_settings(IMAGIFY_BODY_IDLE_TIMEOUT_SECONDS="1")) as (container, client):
        container.admin().create_user("tests", "ann", "a-long-password", ["enterprise"], False)
        token = client.post("/api/v1/auth/token", json={"username": "ann", "password": "a-long-password"}).json()
        headers = [
            (b"authorization", f"Bearer {token['access_token']}".encode()),
            (b"content-type", b"multipart/form-data; boundary=b"),
        ]
        first = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + b"x" * 1000
        started = time.monotonic()
        answer = call(client.app, "POST", "/api/v1/images", headers, [first], stall=lambda: anyio.sleep(15))
        elapsed = time.monotonic() - started
    assert answer.status == 408, answer.body
    assert "1 second" in answer.json()["detail"]
    assert elapsed < 10
