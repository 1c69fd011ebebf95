"""HTTP: logging in, bearer tokens on every authenticated route, and /me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imagify.adapters.security import JwtTokenSigner
from tests.integration.conftest import PASSWORD, assert_error, image_bytes, upload

TOKEN = "/api/v1/auth/token"
SOME_ID = "0123456789abcdef0123456789abcdef"

# Every route that needs a bearer token (admin routes are tested elsewhere).
AUTHENTICATED = [
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/images"),
    ("GET", "/api/v1/images"),
    ("GET", f"/api/v1/images/{SOME_ID}"),
    ("DELETE", f"/api/v1/images/{SOME_ID}"),
    ("GET", f"/api/v1/images/{SOME_ID}/thumbnails/200"),
    ("GET", f"/api/v1/images/{SOME_ID}/original"),
    ("POST", f"/api/v1/images/{SOME_ID}/expiring-links"),
]


def user_id(container, username: str) -> int:
    return container.admin().get_user(username).id


def tampered(token: str) -> str:
    """The token with one character in the middle of its signature changed."""
    header, claims, signature = token.split(".")
    i = len(signature) // 2
    swapped = "A" if signature[i] != "A" else "B"
    return f"{header}.{claims}.{signature[:i]}{swapped}{signature[i + 1:]}"


@pytest.fixture
def ann(make_user):
    return make_user("ann", "basic")


@pytest.fixture(params=["none", "basic-scheme", "empty-bearer", "tampered", "other-secret", "expired", "garbage"])
def bad_authorization(request, ann, container) -> dict[str, str]:
    token = ann.headers["Authorization"].removeprefix("Bearer ")
    now = datetime.now(UTC)
    return {
        "none": {},
        "basic-scheme": {"Authorization": "Basic xyz"},
        "empty-bearer": {"Authorization": "Bearer "},
        "tampered": {"Authorization": f"Bearer {tampered(token)}"},
        "other-secret": {
            "Authorization": "Bearer "
            + JwtTokenSigner("another-secret-entirely-of-32-characters", timedelta(hours=1)).issue(user_id(container, "ann"), 0, now
            )[0]
        },
        "expired": {
            "Authorization": "Bearer "
            + container.signer().issue(user_id(container, "ann"), 0, now - timedelta(hours=2))[0]
        },
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }[request.param]


def test_a_json_login_gives_a_bearer_token_that_works(client, make_user):
    make_user("ann", "basic")
    response = client.post(TOKEN, json={"username": "ann", "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "ann"


def test_the_oauth2_password_form_swagger_sends_gives_a_token_too(client, make_user):
    make_user("ann", "basic")
    response = client.post(
        TOKEN,
        content=f"grant_type=password&username=ann&password={PASSWORD}&scope=&client_id=&client_secret=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["username"] == "ann"


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(client, make_user):
    make_user("ann", "basic")
    wrong = client.post(TOKEN, json={"username": "ann", "password": "not-the-password"})
    unknown = client.post(TOKEN, json={"username": "nobody", "password": PASSWORD})
    assert assert_error(wrong, 401) == assert_error(unknown, 401)
    form = client.post(TOKEN, data={"grant_type": "password", "username": "ann", "password": "nope-nope-nope"})
    assert assert_error(form, 401) == assert_error(wrong, 401)


@pytest.mark.parametrize(
    "body",
    [b"{bad json", b"", b"[]", b'{"username": "ann"}', b'{"password": "a-long-password"}',
     b'{"username": 1, "password": "a-long-password"}'],
    ids=["malformed", "empty", "array", "no-password", "no-username", "number-username"],
)
def test_a_malformed_json_login_is_a_400_with_a_detail(client, make_user, body):
    make_user("ann", "basic")
    response = client.post(TOKEN, content=body, headers={"Content-Type": "application/json"})
    assert '"username"' in assert_error(response, 400)


@pytest.mark.parametrize("form", ["grant_type=password&username=ann", "grant_type=password&password=x"])
def test_a_login_form_missing_a_field_is_a_400_with_a_detail(client, make_user, form):
    make_user("ann", "basic")
    response = client.post(TOKEN, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "password" in assert_error(response, 400)


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_every_authenticated_route_refuses_a_missing_or_bad_token_with_401(
    client, bad_authorization, method, path
):
    response = client.request(method, path, headers=bad_authorization)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_says_it_has_expired(client, ann, container):
    token, _ = container.signer().issue(user_id(container, "ann"), 0, datetime.now(UTC) - timedelta(hours=2))
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert "expired" in assert_error(response, 401)


def test_a_token_of_a_deleted_user_is_refused(client, ann, container):
    container.admin().delete_user("tests", "ann")
    assert_error(client.get("/api/v1/me", headers=ann.headers), 401)


def test_me_shows_username_admin_flag_tiers_and_permissions(client, make_user):
    ann = make_user("ann", "enterprise")
    root = make_user("root", "basic", is_admin=True)
    me = client.get("/api/v1/me", headers=ann.headers).json()
    assert {**me, "permissions": sorted(me["permissions"])} == {
        "username": "ann",
        "is_admin": False,
        "tiers": ["enterprise"],
        "permissions": [
            "can_access_original_image", "can_generate_expiring_link", "format:avif", "format:webp",
            "thumbnail:200", "thumbnail:400",
        ],
        "usage": {"images": 0, "storage_bytes": 0},
        "limits": {"max_images": None, "max_storage_bytes": None, "max_upload_bytes": None, "max_link_seconds": None},
    }
    me = client.get("/api/v1/me", headers=root.headers).json()
    assert (me["username"], me["is_admin"], me["tiers"], me["permissions"]) == (
        "root", True, ["basic"], ["thumbnail:200"]
    )


def test_a_tier_change_shows_on_the_next_me_with_the_same_token(client, make_user, container):
    ann = make_user("ann", "basic")
    assert client.get("/api/v1/me", headers=ann.headers).json()["permissions"] == ["thumbnail:200"]
    container.admin().update_user("tests", "ann", tiers=["premium"])
    me = client.get("/api/v1/me", headers=ann.headers)
    assert me.status_code == 200
    assert me.json()["tiers"] == ["premium"]
    assert me.json()["permissions"] == ["thumbnail:200", "thumbnail:400", "format:webp"]


def test_a_downgrade_takes_effect_on_the_next_request(client, make_user, container):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann, image_bytes()).json()["id"]
    assert client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers=ann.headers).status_code == 200
    container.admin().update_user("tests", "ann", tiers=["basic"])
    assert_error(client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers=ann.headers), 403)
    links = client.get(f"/api/v1/images/{image_id}", headers=ann.headers).json()["links"]
    assert set(links["thumbnails"]) == {"200"}


def _second_token(client, username: str = "ann") -> dict[str, str]:
    response = client.post(TOKEN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_deleting_the_token_logs_it_out_while_another_token_of_the_user_still_works(client, ann):
    other = _second_token(client)
    assert client.get("/api/v1/me", headers=ann.headers).status_code == 200  # used, so remembered
    response = client.delete(TOKEN, headers=ann.headers)
    assert response.status_code == 204 and response.content == b""
    assert "logged out" in assert_error(client.get("/api/v1/me", headers=ann.headers), 401)
    assert_error(client.get("/api/v1/images", headers=ann.headers), 401)
    assert client.get("/api/v1/me", headers=other).json()["username"] == "ann"
    assert_error(client.delete(TOKEN, headers=ann.headers), 401)  # already ended
    assert client.delete(TOKEN, headers=other).status_code == 204


def test_a_logged_out_token_no_longer_opens_image_bytes_even_from_memory(client, ann):
    image_id = upload(client, ann, image_bytes()).json()["id"]
    thumbnail = f"/api/v1/images/{image_id}/thumbnails/200"
    for _ in range(2):  # the second from memory
        assert client.get(thumbnail, headers=ann.headers).status_code == 200
    assert client.delete(TOKEN, headers=ann.headers).status_code == 204
    assert "logged out" in assert_error(client.get(thumbnail, headers=ann.headers), 401)


def test_deleting_the_token_wants_a_live_bearer_token(client, bad_authorization):
    response = client.delete(TOKEN, headers=bad_authorization)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_logout_route_is_documented_with_its_answers(client):
    operation = client.get("/schema/openapi.json").json()["paths"]["/api/v1/auth/token"]["delete"]
    assert {"204", "401"} <= set(operation["responses"])
    assert {"OAuth2PasswordBearer": []} in operation["security"]
    assert "log out" in operation["summary"].lower()
