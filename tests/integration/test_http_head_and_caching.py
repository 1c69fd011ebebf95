"""HEAD answers wherever GET does, with GET's status and headers and no body; every answer
that sets no Cache-Control of its own is `no-store` (private JSON above all)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import image_bytes, upload
from tests.integration.faults import run_cli, serving
from tests.integration.test_security_matrix import operations

embedded_only = pytest.mark.parametrize("backend", ["embedded"])
VARYING = {"x-request-id"}  # differs on every answer


@pytest.fixture
def world(client, make_user):
    """An admin with an image, a thumbnail and a link: every GET route has something to show."""
    root = make_user("root", "enterprise", is_admin=True)
    image_id = upload(client, root).json()["id"]
    link = client.post(f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=root.headers)
    values = {"image_id": image_id, "username": "root", "token": link.json()["token"]}
    return root, values


def get_routes(app, **values: str) -> list[tuple[str, str]]:
    return [(path, route) for method, path, route in operations(app, **values) if method == "GET"]


@embedded_only
def test_head_on_every_get_route_answers_gets_status_and_headers_with_no_body(client, world):
    root, values = world
    routes = get_routes(client.app, **values)
    assert len(routes) >= 15, routes
    for headers in (root.headers, {}):  # logged in, and refused
        for path, route in routes:
            client.cookies.clear()  # the same cookies for both: a page may set one when none is sent
            got = client.get(path, headers=headers)
            client.cookies.clear()
            head = client.head(path, headers=headers)
            assert head.status_code == got.status_code, (route, head.status_code, got.status_code)
            assert head.content == b"", route
            expected = {k: v for k, v in got.headers.items() if k not in VARYING}
            if "set-cookie" in expected:  # a fresh random nonce each time: the same cookie, by name
                expected["set-cookie"] = got.headers["set-cookie"].split("=", 1)[0]
                head.headers["set-cookie"] = head.headers.get("set-cookie", "").split("=", 1)[0]
            if route == "/metrics":  # the counters move between the two requests
                expected.pop("content-length")
            assert {k: v for k, v in head.headers.items() if k in expected} == expected, route
            assert set(head.headers) - VARYING >= set(expected), route


@embedded_only
def test_head_on_an_original_sends_its_length_and_range_headers_without_the_bytes(client, world):
    root, values = world
    data = image_bytes("PNG", (1500, 1500)) + b"\0" * (2 * 1024 * 1024)  # streamed, not sent whole
    image_id = upload(client, root, data, "big.png").json()["id"]
    head = client.head(f"/api/v1/images/{image_id}/original", headers=root.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    part = client.head(f"/api/v1/images/{image_id}/original", headers={**root.headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == b""
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert part.headers["content-length"] == "10"


def _is_json(response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


@embedded_only
def test_every_json_answer_says_no_store(client, world):
    root, values = world
    image_id = values["image_id"]
    answers = [client.get(path, headers=h) for path, _ in get_routes(client.app, **values) for h in (root.headers, {})]
    answers += [
        client.post("/api/v1/auth/token", json={"username": "root", "password": "a-long-password"}),
        client.post("/api/v1/auth/token", json={"username": "root", "password": "wrong"}),
        client.post(f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=root.headers),
        client.post("/api/v1/admin/users", json={"username": "zoe", "password": "p" * 12, "tiers": []}, headers=root.headers),
        client.get("/api/v1/nothing-here"),
        client.delete("/health/live"),
        client.get("/api/v1/images?limit=0", headers=root.headers),
        client.get(f"/api/v1/images/{image_id}/original", headers={**root.headers, "Range": "bytes=999999-"}),
    ]
    json_answers = [a for a in answers if _is_json(a)]
    assert len(json_answers) >= 25, len(json_answers)
    wrong = [(a.request.method, a.request.url.path, a.status_code, a.headers.get("cache-control"))
             for a in json_answers if a.headers.get("cache-control") != "no-store"]
    assert not wrong, wrong


@embedded_only
def test_byte_answers_keep_their_own_cache_control(client, world):
    root, values = world
    image_id = values["image_id"]
    thumbnail = client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=root.headers)
    original = client.get(f"/api/v1/images/{image_id}/original", headers=root.headers)
    link = client.get(f"/l/{values['token']}")
    assert thumbnail.headers["cache-control"] == "private, max-age=86400"
    assert original.headers["cache-control"] == "private, max-age=3600"
    assert link.headers["cache-control"] == "private, no-cache"
    assert client.get("/docs/static/swagger-ui.css").headers["cache-control"] == "public, max-age=86400"


def test_head_through_a_real_server_answers_without_a_body_and_keeps_the_connection(tmp_path):
    """uvicorn, not the test client: it checks each body against the Content-Length the
    answer declared, so a HEAD it took for a GET used to fail there and reset the connection."""
    env = {
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_SECRET_KEY": "head-test-secret-of-at-least-32-characters",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
    }
    assert run_cli(env, "migrate").returncode == 0
    with serving(env, tmp_path / "serve") as server, httpx.Client(base_url=server.base, timeout=60) as http:
        token = http.post("/api/v1/auth/token", json={"username": "admin", "password": env["IMAGIFY_ADMIN_PASSWORD"]})
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        image_id = http.post("/api/v1/images", files={"file": ("a.jpg", image_bytes())}, headers=auth).json()["id"]
        paths = [
            "/health/live", "/api/v1/me", f"/api/v1/images/{image_id}", f"/api/v1/images/{image_id}/thumbnails/200",
            f"/api/v1/images/{image_id}/original", f"/api/v1/images/{'0' * 32}", "/no/such/route",
        ]
        for path in paths:  # one keep-alive connection throughout
            got = http.get(path, headers=auth)
            head = http.head(path, headers=auth)
            assert (head.status_code, head.content) == (got.status_code, b""), path
            assert head.headers.get("content-length") == got.headers.get("content-length"), path
        assert http.head("/api/v1/me").status_code == 401
        assert http.get("/health/live").status_code == 200
    assert "Response content shorter than Content-Length" not in server.log.read_text()
