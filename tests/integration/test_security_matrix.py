"""The attacker's matrix: every route of the app, enumerated from the app itself, tried with
every kind of bad credential, as a non-admin, and with another user's image ids.

A new route is covered without editing this file: it must either refuse a missing token
(401), or be added to PUBLIC below on purpose (with the methods anyone may use). A new console route (under /console) must
send a visitor without a live session to the login page (401 for a change), refuse a
change without its CSRF token, and follow the same admin and tenancy rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from litestar.routes import HTTPRoute

from imagify.adapters.security import JwtTokenSigner
from imagify.entrypoints.console.session import sign
from imagify.entrypoints.http.deps import SESSION_COOKIE
from imagify.settings import secret_key
from tests.integration.conftest import assert_error, upload

# Routes anyone may call, as Litestar spells their paths, with the methods anyone may use
# (None: all of them). Everything else needs a token: logging out (DELETE) on the token route too.
PUBLIC: dict[str, set[str] | None] = {
    "/api/v1/auth/token": {"POST"},
    "/l/{token:str}": None,
    "/health/live": None,
    "/health/ready": None,
    "/": None,
    "/docs/static/{file_path:path}": None,
    "/metrics": None,
    "/schema": None,
    "/schema/openapi.json": None,
    "/schema/{path:str}": None,
}
CONSOLE = "/console"
# Console routes anyone may call; every other console route needs a live session.
CONSOLE_PUBLIC = {"/console/login", "/console/static/{file_path:path}"}
SOME_ID = "0123456789abcdef0123456789abcdef"
PARAM = re.compile(r"\{(\w+):\w+\}")
# A value for each path parameter; a new parameter name fails the tests until it has one.
VALUES = {
    "image_id": SOME_ID,
    "height": "200",
    "name": "basic",
    "username": "ann",
    "token": "A" * 43,
    "link_id": "0" * 16,
    "file_path": "swagger-ui.css",
    "path": "openapi.json",
}
READS = {"GET", "HEAD"}
IGNORED_METHODS = {"OPTIONS"}  # Litestar answers it itself, with no body or data


def operations(app, **values: str) -> list[tuple[str, str, str]]:
    """(method, concrete path, route path) for every HTTP route and method of `app`."""
    found = []
    for route in app.routes:
        assert isinstance(route, HTTPRoute), f"{route.path}: a new kind of route; cover it here"
        names = PARAM.findall(route.path)
        missing = [n for n in names if n not in {**VALUES, **values}]
        assert not missing, f"{route.path}: give the parameters {missing} a value in VALUES"
        path = PARAM.sub(lambda m: {**VALUES, **values}[m.group(1)], route.path)
        methods = route.methods - IGNORED_METHODS
        if "GET" in methods:
            methods |= {"HEAD"}  # wherever GET works, HEAD must answer the same, without a body
        for method in sorted(methods):
            found.append((method, path, route.path))
    return found


def assert_refusal(response, method: str, status: int) -> str:
    """assert_error, or for HEAD the same status and JSON headers with an empty body."""
    if method != "HEAD":
        return assert_error(response, status)
    assert response.status_code == status, (method, response.status_code)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.content == b"" and int(response.headers["content-length"]) > 0, response.headers
    return ""


def public(method: str, route: str) -> bool:
    if route not in PUBLIC:
        return False
    methods = PUBLIC[route]
    return methods is None or method in methods or (method == "HEAD" and "GET" in methods)


def protected(app, **values: str) -> list[tuple[str, str, str]]:
    """The API's routes that need a bearer token (the console's are below)."""
    return [op for op in operations(app, **values) if not public(op[0], op[2]) and not op[2].startswith(CONSOLE)]


def console_pages(app, **values: str) -> list[tuple[str, str, str]]:
    return [op for op in operations(app, **values) if op[2].startswith(CONSOLE) and op[2] not in CONSOLE_PUBLIC]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, key: bytes | None) -> str:
    """A JWT made by hand: signed with HMAC-SHA256 under `key`, or unsigned when key is None."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), digest).digest())


def tampered(token: str) -> str:
    header, claims, signature = token.split(".")
    i = len(signature) // 2
    return f"{header}.{claims}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1:]}"


BAD_CREDENTIALS = [
    "no-header", "not-bearer", "empty-bearer", "garbage", "tampered", "expired", "other-secret",
    "deleted-user", "alg-none", "empty-key", "hs512-real-secret", "no-expiry", "sub-not-an-id", "claims-swapped",
]


@pytest.fixture
def bad_headers(make_user, container, settings):
    """Every kind of bad Authorization header, by name (made once per test)."""
    ann = make_user("ann", "enterprise")
    zed = make_user("zed", "enterprise")
    container.admin().delete_user("tests", "zed")
    token = ann.headers["Authorization"].removeprefix("Bearer ")
    ann_id = str(container.admin().get_user("ann").id)
    now = datetime.now(UTC)
    live = {"sub": ann_id, "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())}
    secret = settings.secret_key.encode()
    other_header, other_claims, _ = token.split(".")
    tokens = {
        "no-header": None,
        "not-bearer": f"Basic {b64(b'ann:a-long-password')}",
        "empty-bearer": "Bearer ",
        "garbage": "Bearer not.a.jwt",
        "tampered": f"Bearer {tampered(token)}",
        "expired": "Bearer " + container.signer().issue(int(ann_id), 0, now - timedelta(hours=2))[0],
        "other-secret": "Bearer "
        + JwtTokenSigner("another-secret-of-at-least-32-chars!", timedelta(hours=1)).issue(int(ann_id), 0, now)[0],
        "deleted-user": zed.headers["Authorization"],
        "alg-none": "Bearer " + forged({"alg": "none", "typ": "JWT"}, live, None),
        "empty-key": "Bearer " + forged({"alg": "HS256", "typ": "JWT"}, live, b""),
        "hs512-real-secret": "Bearer " + forged({"alg": "HS512", "typ": "JWT"}, live, secret),
        "no-expiry": "Bearer " + forged({"alg": "HS256", "typ": "JWT"}, {"sub": ann_id}, secret),
        "sub-not-an-id": "Bearer " + forged({"alg": "HS256", "typ": "JWT"}, {**live, "sub": "ann"}, secret),
        # A valid signature moved onto other claims.
        "claims-swapped": "Bearer " + ".".join(
            [other_header, b64(json.dumps({**live, "sub": "1"}).encode()), token.split(".")[2]]
        ),
    }
    assert jwt.decode(forged({"alg": "HS256", "typ": "JWT"}, live, secret), secret, algorithms=["HS256"])["sub"] == ann_id
    return {name: ({} if value is None else {"Authorization": value}) for name, value in tokens.items()}


@pytest.mark.parametrize("kind", BAD_CREDENTIALS)
def test_every_protected_route_refuses_a_bad_credential_with_a_401(client, bad_headers, kind):
    headers = bad_headers[kind]
    ops = protected(client.app)
    assert len(ops) >= 17 + 7, ops  # the images, me and admin routes, at least, and HEAD on each GET
    wrong = []
    for method, path, _ in ops:
        response = client.request(method, path, headers=headers)
        if response.status_code != 401:
            wrong.append((method, path, response.status_code, response.text[:200]))
            continue
        assert_refusal(response, method, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert not wrong, wrong


def test_the_public_routes_really_are_public_and_nothing_else_is(client):
    for method, path, route in operations(client.app):
        if not public(method, route) and route not in CONSOLE_PUBLIC:
            continue
        response = client.request(method, path)
        assert response.status_code != 401, (method, path, response.text)
    ops = {(method, route) for method, _, route in operations(client.app)}
    named = {(method, route) for route, methods in PUBLIC.items() for method in methods or ()}
    assert {route for _, route in ops} >= set(PUBLIC) | CONSOLE_PUBLIC, "PUBLIC names a route that is gone"
    assert ops >= named, "PUBLIC names a method a route no longer has"


def test_a_non_admin_gets_403_on_every_admin_route_and_changes_nothing(client, make_user, container):
    ann = make_user("ann", "enterprise")
    admin = container.admin()
    before = ([(t.name, t.permissions.sorted()) for t in admin.list_tiers()], admin.list_users(None, 100))
    bodies = {"POST": {"name": "x", "permissions": ["thumbnail:10"], "username": "x", "password": "p" * 12,
                       "tiers": ["basic"], "is_admin": True},
              "PUT": {"permissions": ["thumbnail:10"]}, "PATCH": {"is_admin": True, "permissions": []}}
    admin_ops = [op for op in protected(client.app) if op[2].startswith("/api/v1/admin")]
    assert len(admin_ops) >= 11 + 4, admin_ops
    for method, path, _ in admin_ops:
        response = client.request(method, path, headers=ann.headers, json=bodies.get(method))
        detail = assert_refusal(response, method, 403)
        assert method == "HEAD" or "admin" in detail, (method, path)
    after = ([(t.name, t.permissions.sorted()) for t in admin.list_tiers()], admin.list_users(None, 100))
    assert after == before
    assert client.get("/api/v1/me", headers=ann.headers).json()["is_admin"] is False


@pytest.mark.parametrize("tier", ["basic", "enterprise"])
def test_another_users_image_is_404_on_every_image_route_exactly_like_a_missing_one(
    client, make_user, tier
):
    bob = make_user("bob", "enterprise")
    bobs = upload(client, bob).json()["id"]
    client.get(f"/api/v1/images/{bobs}/thumbnails/400", headers=bob.headers)  # a stored thumbnail too
    intruder = make_user("mallory", tier)
    body = {"seconds": 300}
    image_ops = [op for op in protected(client.app, height="400") if "{image_id" in op[2]]
    assert len(image_ops) >= 5 + 3, image_ops
    for method, path, route in image_ops:
        theirs = client.request(method, path.replace(SOME_ID, bobs), headers=intruder.headers, json=body)
        missing = client.request(method, path, headers=intruder.headers, json=body)
        detail = assert_refusal(theirs, method, 404)
        assert detail.replace(bobs, SOME_ID) == assert_refusal(missing, method, 404), route
    # Nothing of bob's was touched, and bob still sees everything.
    assert client.get(f"/api/v1/images/{bobs}", headers=bob.headers).status_code == 200
    assert client.get(f"/api/v1/images/{bobs}/original", headers=bob.headers).status_code == 200
    assert client.get("/api/v1/images", headers=intruder.headers).json()["items"] == []


def test_jwt_verification_compares_signatures_in_constant_time():
    """The design, asserted: PyJWT checks HMAC signatures with hmac.compare_digest."""
    import inspect

    from jwt.algorithms import HMACAlgorithm

    assert "compare_digest" in inspect.getsource(HMACAlgorithm.verify)


def test_the_signer_refuses_unsigned_and_empty_key_tokens_directly():
    signer = JwtTokenSigner("the-real-secret-of-at-least-32-chars", timedelta(hours=1))
    now = datetime.now(UTC)
    claims = {"sub": "1", "exp": int(time.time()) + 3600}
    from imagify.domain.errors import Unauthorized

    for token in (forged({"alg": "none"}, claims, None), forged({"alg": "HS256"}, claims, b""),
                  forged({"alg": "None"}, claims, None), forged({"alg": "HS256"}, claims, None)):
        with pytest.raises(Unauthorized):
            signer.read(token, now)
    claims = signer.read(signer.issue(1, 0, now)[0], now)
    assert (claims.user_id, claims.version) == (1, 0)


# The console: the same rules through a session cookie, and CSRF on every change.


def session_of(account) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={account.headers['Authorization'].removeprefix('Bearer ')}"}


def with_csrf(settings, account) -> dict[str, str]:
    token = account.headers["Authorization"].removeprefix("Bearer ")
    return {**session_of(account), "X-CSRF-Token": sign(secret_key(settings).encode(), "csrf", token)}


@pytest.mark.parametrize("kind", BAD_CREDENTIALS)
def test_every_console_page_sends_a_visitor_without_a_live_session_to_log_in(client, bad_headers, kind):
    token = bad_headers[kind].get("Authorization", "").removeprefix("Bearer ").removeprefix("Basic ")
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"} if token.strip() else {}
    ops = console_pages(client.app)
    assert len(ops) >= 20, ops  # my images, one image, password and the admin pages
    wrong = []
    for method, path, _ in ops:
        response = client.request(method, path, headers=headers, follow_redirects=False)
        if method in READS:
            good = response.status_code == 303 and response.headers["location"].startswith("/console/login?next=")
        else:
            good = response.status_code == 401 and "log in" in response.text
        if not good:
            wrong.append((method, path, response.status_code, response.text[:200]))
    assert not wrong, wrong


def test_every_console_change_without_its_csrf_token_is_refused(client, make_user, settings, container):
    ann = make_user("ann", "enterprise", is_admin=True)
    other = make_user("bob", "basic")
    before = [(t.name, t.permissions.sorted()) for t in container.admin().list_tiers()]
    changes = [op for op in console_pages(client.app, username="bob") if op[0] not in READS]
    assert len(changes) >= 10, changes
    for method, path, _ in changes:
        for headers in (session_of(ann), {**session_of(ann), "X-CSRF-Token": "0" * 64},
                        {**session_of(ann), "X-CSRF-Token": with_csrf(settings, other)["X-CSRF-Token"]}):
            response = client.request(method, path, headers=headers, data={"name": "x", "height": "10"})
            assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
            assert "security token" in response.text
    assert [(t.name, t.permissions.sorted()) for t in container.admin().list_tiers()] == before
    assert container.admin().get_user("bob").tiers == ["basic"]
    response = client.post("/console/login", data={"username": "ann", "password": "a-long-password"})
    assert response.status_code == 403  # the login form has its own token too


def test_a_non_admin_gets_403_on_every_console_admin_page_and_changes_nothing(client, make_user, settings, container):
    ann = make_user("ann", "enterprise")
    admin = container.admin()
    before = ([(t.name, t.permissions.sorted()) for t in admin.list_tiers()], admin.list_users(None, 100))
    admin_ops = [op for op in console_pages(client.app) if op[2].startswith(f"{CONSOLE}/admin")]
    assert len(admin_ops) >= 13, admin_ops
    for method, path, _ in admin_ops:
        data = {"name": "x", "height": "10", "username": "x", "password": "p" * 12, "tiers": "basic", "is_admin": "1"}
        response = client.request(method, path, headers=with_csrf(settings, ann), data=data, follow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code)
        assert method == "HEAD" or "only admins" in response.text, (method, path)
    after = ([(t.name, t.permissions.sorted()) for t in admin.list_tiers()], admin.list_users(None, 100))
    assert after == before


def test_another_users_image_is_404_on_every_console_image_page(client, make_user, settings):
    bob = make_user("bob", "enterprise")
    bobs = upload(client, bob).json()["id"]
    intruder = make_user("mallory", "enterprise")
    image_ops = [op for op in console_pages(client.app) if "{image_id" in op[2]]
    assert len(image_ops) >= 3, image_ops  # the page, its link form, its delete
    for method, path, route in image_ops:
        for image_id in (bobs, SOME_ID):
            response = client.request(method, path.replace(SOME_ID, image_id), headers=with_csrf(settings, intruder),
                                      data={"seconds": "300"}, follow_redirects=False)
            assert response.status_code == 404, (route, image_id, response.status_code)
            assert method == "HEAD" or "no image with id" in response.text
    assert client.get(f"/api/v1/images/{bobs}", headers=bob.headers).status_code == 200


def test_a_session_cookie_reads_image_bytes_but_never_authorizes_an_api_change(client, make_user):
    ann = make_user("ann", "enterprise")
    image = upload(client, ann).json()
    for url in (image["links"]["thumbnails"]["200"], image["links"]["original"]):
        assert client.get(url, headers=session_of(ann)).status_code == 200
    # Every other API route still wants the bearer header, the session cookie notwithstanding.
    byte_routes = {"/api/v1/images/{image_id:str}/thumbnails/{height:str}", "/api/v1/images/{image_id:str}/original"}
    for method, path, route in protected(client.app, image_id=image["id"]):
        if method in READS and route in byte_routes:
            continue
        response = client.request(method, path, headers=session_of(ann), json={"seconds": 300})
        assert response.status_code == 401, (method, path, response.status_code)
    assert client.get(f"/api/v1/images/{image['id']}", headers=ann.headers).status_code == 200
