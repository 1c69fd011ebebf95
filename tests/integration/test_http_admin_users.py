"""The admin API for users, the cascade on delete, and who may call the admin routes."""

from __future__ import annotations

import logging

import pytest

from tests.integration.conftest import PASSWORD, assert_error, blob_files, upload

USERS = "/api/v1/admin/users"
ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/tiers", None),
    ("POST", "/api/v1/admin/tiers", {"name": "x", "permissions": []}),
    ("GET", "/api/v1/admin/tiers/basic", None),
    ("PUT", "/api/v1/admin/tiers/basic", {"permissions": []}),
    ("PATCH", "/api/v1/admin/tiers/basic", {"add": []}),
    ("DELETE", "/api/v1/admin/tiers/basic", None),
    ("GET", USERS, None),
    ("POST", USERS, {"username": "x", "password": PASSWORD}),
    ("GET", f"{USERS}/root", None),
    ("PATCH", f"{USERS}/root", {"is_admin": False}),
    ("DELETE", f"{USERS}/root", None),
]


@pytest.fixture
def root(make_user):
    return make_user("root", is_admin=True)


def login(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_an_admin_creates_a_user_who_can_then_log_in(client, root):
    body = {"username": "ann", "password": "ann-secret-pw", "tiers": ["basic"], "is_admin": False}
    created = client.post(USERS, json=body, headers=root.headers)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "username": "ann", "tiers": ["basic"], "is_admin": False, "permissions": ["thumbnail:200"],
        "usage": {"images": 0, "storage_bytes": 0},
        "limits": {"max_images": None, "max_storage_bytes": None, "max_upload_bytes": None, "max_link_seconds": None},
    }
    assert login(client, "ann", "ann-secret-pw").status_code == 201
    assert client.get(f"{USERS}/ann", headers=root.headers).json() == created.json()


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"username": "ann", "password": "short"}, 400, "10 characters"),
        ({"username": "ann", "password": PASSWORD, "tiers": ["gold"]}, 400, "gold"),
        ({"username": "", "password": PASSWORD}, 400, "username"),
        ({"username": "a/b", "password": PASSWORD}, 400, "username"),
        ({"username": "ann", "password": PASSWORD, "is_admin": "yes"}, 400, "is_admin"),
        ({"password": PASSWORD}, 400, "username"),
        ({"username": "root", "password": PASSWORD}, 409, "root"),
    ],
    ids=["short-password", "unknown-tier", "empty-name", "slash", "admin-not-bool", "missing", "taken"],
)
def test_a_bad_user_is_refused_with_a_detail_naming_the_problem(client, root, body, status, named):
    assert named in assert_error(client.post(USERS, json=body, headers=root.headers), status)
    if body.get("username") == "ann":
        assert_error(client.get(f"{USERS}/ann", headers=root.headers), 404)


def test_users_are_listed_by_name_in_pages(client, root, make_user):
    for name in ("dora", "bob", "carl", "ann"):
        make_user(name, "basic")
    first = client.get(f"{USERS}?limit=2", headers=root.headers).json()
    second = client.get(f"{USERS}?limit=2&cursor={first['next_cursor']}", headers=root.headers).json()
    third = client.get(f"{USERS}?limit=2&cursor={second['next_cursor']}", headers=root.headers).json()
    names = [u["username"] for page in (first, second, third) for u in page["items"]]
    assert names == ["ann", "bob", "carl", "dora", "root"]
    assert third["next_cursor"] is None
    assert_error(client.get(f"{USERS}?limit=0", headers=root.headers), 400)
    assert_error(client.get(f"{USERS}?cursor=%%%", headers=root.headers), 400)


def test_patch_changes_only_the_fields_sent(client, root, make_user):
    make_user("ann", "basic")
    response = client.patch(f"{USERS}/ann", json={"tiers": ["premium", "basic"]}, headers=root.headers)
    assert response.json()["tiers"] == ["basic", "premium"]
    assert response.json()["is_admin"] is False
    assert login(client, "ann").status_code == 201  # password untouched
    client.patch(f"{USERS}/ann", json={"password": "a-new-password"}, headers=root.headers)
    assert login(client, "ann").status_code == 401
    assert login(client, "ann", "a-new-password").status_code == 201
    assert client.patch(f"{USERS}/ann", json={"is_admin": True}, headers=root.headers).json()["is_admin"]


@pytest.mark.parametrize(
    "body", [{"tiers": ["gold"]}, {"password": "short"}, {"is_admin": 1}, {"tiers": "basic"}]
)
def test_a_bad_patch_is_a_400_and_changes_nothing(client, root, make_user, body):
    make_user("ann", "basic")
    assert_error(client.patch(f"{USERS}/ann", json=body, headers=root.headers), 400)
    assert client.get(f"{USERS}/ann", headers=root.headers).json()["tiers"] == ["basic"]


def test_an_upgrade_and_a_downgrade_apply_to_tokens_already_issued(client, root, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    original = f"/api/v1/images/{image_id}/original"
    assert_error(client.get(original, headers=ann.headers), 403)
    client.patch(f"{USERS}/ann", json={"tiers": ["enterprise"]}, headers=root.headers)
    assert client.get(original, headers=ann.headers).status_code == 200
    assert "original" in client.get(f"/api/v1/images/{image_id}", headers=ann.headers).json()["links"]
    client.patch(f"{USERS}/ann", json={"tiers": ["basic"]}, headers=root.headers)
    assert_error(client.get(original, headers=ann.headers), 403)


def test_admin_rights_granted_and_revoked_apply_on_the_next_request(client, root, make_user):
    ann = make_user("ann", "basic")
    assert_error(client.get(USERS, headers=ann.headers), 403)
    client.patch(f"{USERS}/ann", json={"is_admin": True}, headers=root.headers)
    assert client.get(USERS, headers=ann.headers).status_code == 200
    client.patch(f"{USERS}/ann", json={"is_admin": False}, headers=root.headers)
    assert_error(client.get(USERS, headers=ann.headers), 403)


def test_an_admin_cannot_drop_their_own_admin_flag_or_delete_themselves(client, root):
    assert "own admin" in assert_error(
        client.patch(f"{USERS}/root", json={"is_admin": False}, headers=root.headers), 409
    )
    assert "own account" in assert_error(client.delete(f"{USERS}/root", headers=root.headers), 409)
    assert client.get(f"{USERS}/root", headers=root.headers).json()["is_admin"] is True


def test_deleting_a_user_deletes_their_images_thumbnails_and_links(client, root, make_user, settings):
    ann = make_user("ann", "enterprise")
    bob = make_user("bob", "basic")
    image_id = upload(client, ann).json()["id"]
    kept_id = upload(client, bob).json()["id"]
    client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann.headers)
    link = client.post(
        f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=ann.headers
    ).json()
    assert client.get(f"/l/{link['token']}").status_code == 200

    assert client.delete(f"{USERS}/ann", headers=root.headers).status_code == 204
    assert_error(client.get(f"{USERS}/ann", headers=root.headers), 404)
    assert_error(client.get(f"/l/{link['token']}"), 404)
    assert_error(client.get("/api/v1/me", headers=ann.headers), 401)
    assert [str(p) for p in blob_files(settings) if image_id in str(p)] == []
    assert any(kept_id in str(p) for p in blob_files(settings))
    assert login(client, "ann").status_code == 401


def test_a_deleted_users_token_never_works_for_the_user_created_after_them(client, root, make_user):
    ann = make_user("ann", "enterprise")  # the newest user: the id a reusing database gives next
    assert client.get("/api/v1/me", headers=ann.headers).json()["username"] == "ann"
    assert client.delete(f"{USERS}/ann", headers=root.headers).status_code == 204
    bob = make_user("bob", "basic")
    assert_error(client.get("/api/v1/me", headers=ann.headers), 401)
    assert client.get("/api/v1/me", headers=bob.headers).json()["username"] == "bob"


def test_an_unknown_user_is_404_on_read_patch_and_delete(client, root):
    assert_error(client.get(f"{USERS}/nobody", headers=root.headers), 404)
    assert_error(client.patch(f"{USERS}/nobody", json={"tiers": []}, headers=root.headers), 404)
    assert_error(client.delete(f"{USERS}/nobody", headers=root.headers), 404)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_routes_are_401_without_a_token_and_403_for_a_non_admin(client, root, make_user, method, path, body):
    ann = make_user("ann", "enterprise")
    kwargs = {"json": body} if body is not None else {}
    assert_error(client.request(method, path, **kwargs), 401)
    assert_error(client.request(method, path, headers=ann.headers, **kwargs), 403)


def test_every_user_action_is_logged_with_who_what_and_target(client, root, caplog):
    with caplog.at_level(logging.INFO, logger="imagify.audit"):
        client.post(USERS, json={"username": "ann", "password": PASSWORD}, headers=root.headers)
        client.patch(f"{USERS}/ann", json={"tiers": ["basic"]}, headers=root.headers)
        client.delete(f"{USERS}/ann", headers=root.headers)
    audit = [(r.actor, r.action, r.target) for r in caplog.records if r.name == "imagify.audit"]
    assert audit == [("root", "user.create", "ann"), ("root", "user.update", "ann"), ("root", "user.delete", "ann")]
    assert all(PASSWORD not in r.getMessage() and PASSWORD not in str(vars(r)) for r in caplog.records)
