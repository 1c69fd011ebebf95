"""Tenancy by construction: another user's image is a 404 on every route, with the owner's
entries warm in this process's memory; links, tokens and ids are decided at request time.

The attacker holds every permission there is, and the owner reads everything right before
the attack, after every user was created (creating a user changes the counters and would
drop the memory the attack needs).
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import PASSWORD, assert_error, upload
from tests.integration.test_security_matrix import SOME_ID, assert_refusal, protected

EVERYTHING = ["thumbnail:200", "thumbnail:400", "can_access_original_image", "can_generate_expiring_link"]


@pytest.fixture
def bob_and_mallory(client, container, make_user):
    """bob's image, warm in memory on every read path; mallory, who may do everything."""
    container.admin().create_tier("tests", "everything", EVERYTHING)
    mallory = make_user("mallory", "everything")
    bob = make_user("bob", "enterprise")
    image = upload(client, bob).json()["id"]
    link = client.post(f"/api/v1/images/{image}/expiring-links", json={"seconds": 300}, headers=bob.headers)
    for _ in range(2):  # the second round answers from memory
        for path in (
            f"/api/v1/images/{image}",
            f"/api/v1/images/{image}/thumbnails/200",
            f"/api/v1/images/{image}/thumbnails/400",
            f"/api/v1/images/{image}/original",
            "/api/v1/images",
        ):
            assert client.get(path, headers=bob.headers).status_code == 200, path
        assert client.get(link.json()["url"]).status_code == 200
    return bob, mallory, image


def test_a_warm_cache_never_serves_or_acts_on_another_users_image_on_any_route(client, bob_and_mallory):
    bob, mallory, image = bob_and_mallory
    routes = [op for op in protected(client.app) if "{image_id" in op[2]]
    assert len(routes) >= 5, routes
    for height in ("200", "400"):
        for method, path, route in routes:
            path = path.replace("/thumbnails/200", f"/thumbnails/{height}")
            theirs = client.request(method, path.replace(SOME_ID, image), headers=mallory.headers,
                                    json={"seconds": 300})
            missing = client.request(method, path, headers=mallory.headers, json={"seconds": 300})
            assert theirs.status_code == 404, (method, route, theirs.status_code, theirs.text)
            detail = assert_refusal(theirs, method, 404)
            assert detail.replace(image, SOME_ID) == assert_refusal(missing, method, 404)
    # bob's image, thumbnails and links are as they were; mallory's listing is empty.
    assert client.get(f"/api/v1/images/{image}/original", headers=bob.headers).status_code == 200
    assert client.get("/api/v1/images", headers=mallory.headers).json()["items"] == []


def test_a_link_to_another_users_warm_image_is_refused_even_with_every_permission(client, bob_and_mallory):
    _, mallory, image = bob_and_mallory
    response = client.post(f"/api/v1/images/{image}/expiring-links", json={"seconds": 300},
                           headers=mallory.headers)
    assert assert_error(response, 404) == f"no image with id {image!r}"


def test_a_link_opens_only_while_its_owner_still_may_make_links(client, container, make_user):
    bob = make_user("bob", "enterprise")
    image = upload(client, bob).json()["id"]
    url = client.post(f"/api/v1/images/{image}/expiring-links", json={"seconds": 300},
                      headers=bob.headers).json()["url"]
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200  # from memory
    container.admin().update_user("tests", "bob", tiers=["premium"])  # no links any more
    assert "unknown or has expired" in assert_error(client.get(url), 404)
    container.admin().update_user("tests", "bob", tiers=["enterprise"])  # decided per request
    assert client.get(url).status_code == 200
    container.admin().delete_user("tests", "bob")
    assert_error(client.get(url), 404)


def test_changing_your_password_ends_every_token_issued_before_it(client, make_user):
    ann = make_user("ann", "basic")
    second = client.post("/api/v1/auth/token", json={"username": "ann", "password": PASSWORD}).json()
    other = {"Authorization": f"Bearer {second['access_token']}"}

    wrong = client.put("/api/v1/me/password", headers=ann.headers,
                       json={"current_password": "not-the-password", "new_password": "a-brand-new-password"})
    assert "current password" in assert_error(wrong, 401)
    short = client.put("/api/v1/me/password", headers=ann.headers,
                       json={"current_password": PASSWORD, "new_password": "short"})
    assert "at least 10 characters" in assert_error(short, 400)
    assert client.get("/api/v1/me", headers=other).status_code == 200  # nothing changed yet

    changed = client.put("/api/v1/me/password", headers=ann.headers,
                         json={"current_password": PASSWORD, "new_password": "a-brand-new-password"})
    assert changed.status_code == 204, changed.text
    for headers in (ann.headers, other):
        assert "log in again" in assert_error(client.get("/api/v1/me", headers=headers), 401)
        assert_error(client.get("/api/v1/images", headers=headers), 401)
    assert client.post("/api/v1/auth/token", json={"username": "ann", "password": PASSWORD}).status_code == 401
    fresh = client.post("/api/v1/auth/token", json={"username": "ann", "password": "a-brand-new-password"})
    assert fresh.status_code == 201
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"})
    assert me.json()["username"] == "ann"


def test_an_admin_resetting_a_password_ends_the_users_tokens(client, make_user):
    admin = make_user("root", is_admin=True)
    ann = make_user("ann", "basic")
    assert client.get("/api/v1/me", headers=ann.headers).status_code == 200
    reset = client.patch("/api/v1/admin/users/ann", json={"password": "reset-by-the-admin"}, headers=admin.headers)
    assert reset.status_code == 200, reset.text
    assert_error(client.get("/api/v1/me", headers=ann.headers), 401)
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200  # other users keep theirs


def test_changing_tiers_or_the_admin_flag_keeps_the_users_tokens(client, make_user):
    admin = make_user("root", is_admin=True)
    ann = make_user("ann", "basic")
    client.patch("/api/v1/admin/users/ann", json={"tiers": ["premium"]}, headers=admin.headers)
    assert client.get("/api/v1/me", headers=ann.headers).json()["tiers"] == ["premium"]


@pytest.mark.parametrize("suffix", ["%20", "%20%20", "%09", "A", "0"])
def test_an_image_id_that_is_not_exactly_an_id_never_reaches_the_image(client, make_user, suffix):
    """MySQL compares with PAD SPACE: 'id ' would find 'id' if ids were not checked first."""
    ann = make_user("ann", "enterprise")
    image = upload(client, ann).json()["id"]
    assert client.get(f"/api/v1/images/{image}", headers=ann.headers).status_code == 200
    for method, path, route in [op for op in protected(client.app) if "{image_id" in op[2]]:
        response = client.request(method, path.replace(SOME_ID, image + suffix), headers=ann.headers,
                                  json={"seconds": 300})
        assert response.status_code == 404, (method, route, response.text)
    assert client.get(f"/api/v1/images/{image.upper()}", headers=ann.headers).status_code == 404
    assert client.get(f"/api/v1/images/{image}/original", headers=ann.headers).status_code == 200


def test_guessing_the_current_password_is_throttled_like_a_login(client, make_user):
    ann = make_user("ann", "basic")
    wrong = {"current_password": "not-the-password", "new_password": "a-brand-new-password"}
    answers = [client.put("/api/v1/me/password", headers=ann.headers, json=wrong).status_code for _ in range(7)]
    assert answers[:5] == [401] * 5 and answers[5:] == [429, 429]
    right = {"current_password": PASSWORD, "new_password": "a-brand-new-password"}
    assert client.put("/api/v1/me/password", headers=ann.headers, json=right).status_code == 429


@pytest.mark.parametrize("path", ["/api/v1/admin/users/root%20", "/api/v1/admin/tiers/basic%20"])
def test_an_admin_route_never_reaches_a_name_through_a_trailing_space(client, make_user, path):
    admin = make_user("root", is_admin=True)
    assert_error(client.get(path, headers=admin.headers), 404)
    assert_error(client.delete(path, headers=admin.headers), 404)
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200
