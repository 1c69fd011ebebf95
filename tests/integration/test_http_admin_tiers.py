"""The admin API for tiers: list, create, read, replace, patch, delete, and who may call it."""

from __future__ import annotations

import logging

import pytest

from tests.integration.conftest import assert_error, upload

TIERS = "/api/v1/admin/tiers"
UNLIMITED = {"max_images": None, "max_storage_bytes": None, "max_upload_bytes": None, "max_link_seconds": None}


@pytest.fixture
def root(make_user):
    return make_user("root", is_admin=True)


def test_the_built_in_tiers_are_listed_with_their_derived_fields(client, root):
    response = client.get(TIERS, headers=root.headers)
    assert response.status_code == 200
    tiers = {t["name"]: t for t in response.json()}
    assert set(tiers) == {"basic", "premium", "enterprise"}
    assert tiers["premium"] == {
        "name": "premium",
        "permissions": ["thumbnail:200", "thumbnail:400", "format:webp"],
        "thumbnail_heights": [200, 400],
        "original_access": False,
        "expiring_links": False,
        "limits": UNLIMITED,  # the built-in tiers stay unlimited
        "formats": ["webp"],
    }
    assert tiers["enterprise"]["formats"] == ["avif", "webp"] and tiers["basic"]["formats"] == []
    assert tiers["enterprise"]["original_access"] and tiers["enterprise"]["expiring_links"]


def test_an_admin_creates_a_custom_tier_and_reads_it_back(client, root):
    body = {
        "name": "photographers",
        "permissions": ["thumbnail:600", "thumbnail:100", "can_generate_expiring_link", "format:avif"],
    }
    created = client.post(TIERS, json=body, headers=root.headers)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "photographers",
        "permissions": ["thumbnail:100", "thumbnail:600", "can_generate_expiring_link", "format:avif"],
        "thumbnail_heights": [100, 600],
        "original_access": False,
        "expiring_links": True,
        "limits": UNLIMITED,
        "formats": ["avif"],
    }
    assert client.get(f"{TIERS}/photographers", headers=root.headers).json() == created.json()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "x", "permissions": ["thumbnail:big"]}, "thumbnail:big"),
        ({"name": "x", "permissions": ["thumbnail:0"]}, "thumbnail:0"),
        ({"name": "x", "permissions": ["thumbnail:4097"]}, "thumbnail:4097"),
        ({"name": "x", "permissions": ["can_fly"]}, "can_fly"),
        ({"name": "", "permissions": []}, "tier name"),
        ({"name": "has space", "permissions": []}, "has space"),
        ({"name": "a" * 65, "permissions": []}, "tier name"),
        ({"name": "x", "permissions": "thumbnail:200"}, "permissions"),
        ({"name": "x"}, "permissions"),
        ({"name": "x", "permissions": [], "extra": 1}, "extra"),
    ],
    ids=["unparseable", "zero", "too-high", "unknown", "empty-name", "space", "long-name",
         "not-a-list", "missing", "unknown-field"],
)
def test_a_bad_tier_is_a_400_naming_the_bad_value(client, root, body, named):
    detail = assert_error(client.post(TIERS, json=body, headers=root.headers), 400)
    assert named in detail
    assert client.get(f"{TIERS}/x", headers=root.headers).status_code == 404


def test_a_taken_tier_name_is_a_409(client, root):
    detail = assert_error(
        client.post(TIERS, json={"name": "basic", "permissions": []}, headers=root.headers), 409
    )
    assert "basic" in detail


def test_put_replaces_a_tiers_permissions(client, root):
    response = client.put(
        f"{TIERS}/basic", json={"permissions": ["thumbnail:150"]}, headers=root.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["thumbnail_heights"] == [150]
    assert client.get(f"{TIERS}/basic", headers=root.headers).json()["permissions"] == ["thumbnail:150"]


def test_patch_adds_and_removes_permissions(client, root):
    response = client.patch(
        f"{TIERS}/premium",
        json={"add": ["can_access_original_image"], "remove": ["thumbnail:200"]},
        headers=root.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == ["thumbnail:400", "can_access_original_image", "format:webp"]


def test_patch_with_a_bad_codename_changes_nothing(client, root):
    assert_error(client.patch(f"{TIERS}/premium", json={"add": ["thumbnail:-1"]}, headers=root.headers), 400)
    assert client.get(f"{TIERS}/premium", headers=root.headers).json()["thumbnail_heights"] == [200, 400]


def test_reading_changing_or_deleting_an_unknown_tier_is_a_404(client, root):
    assert_error(client.get(f"{TIERS}/nope", headers=root.headers), 404)
    assert_error(client.put(f"{TIERS}/nope", json={"permissions": []}, headers=root.headers), 404)
    assert_error(client.patch(f"{TIERS}/nope", json={"add": []}, headers=root.headers), 404)
    assert_error(client.delete(f"{TIERS}/nope", headers=root.headers), 404)


def test_deleting_a_tier_that_users_hold_is_a_409_saying_how_many(client, root, make_user):
    make_user("ann", "premium")
    make_user("bob", "premium")
    detail = assert_error(client.delete(f"{TIERS}/premium", headers=root.headers), 409)
    assert "2 users" in detail


def test_a_built_in_tier_nobody_holds_can_be_deleted(client, root):
    assert client.delete(f"{TIERS}/premium", headers=root.headers).status_code == 204
    assert_error(client.get(f"{TIERS}/premium", headers=root.headers), 404)


def test_users_of_a_custom_tier_see_exactly_its_thumbnail_links(client, root, make_user):
    client.post(
        TIERS,
        json={"name": "photographers", "permissions": ["thumbnail:100", "thumbnail:600"]},
        headers=root.headers,
    )
    ann = make_user("ann", "photographers")
    image = upload(client, ann).json()
    assert set(image["links"]["thumbnails"]) == {"100", "600"}
    assert "original" not in image["links"]
    for height in (100, 600):
        thumb = client.get(f"/api/v1/images/{image['id']}/thumbnails/{height}", headers=ann.headers)
        assert thumb.status_code == 200
    assert_error(client.get(f"/api/v1/images/{image['id']}/thumbnails/200", headers=ann.headers), 403)


def test_a_tier_change_shows_on_the_holders_next_request(client, root, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    assert_error(client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers=ann.headers), 403)
    client.patch(f"{TIERS}/basic", json={"add": ["thumbnail:400"]}, headers=root.headers)
    assert client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers=ann.headers).status_code == 200


def test_every_tier_action_is_logged_with_who_what_and_target(client, root, caplog):
    with caplog.at_level(logging.INFO, logger="imagify.audit"):
        client.post(TIERS, json={"name": "pro", "permissions": ["thumbnail:800"]}, headers=root.headers)
        client.patch(f"{TIERS}/pro", json={"add": ["thumbnail:900"]}, headers=root.headers)
        client.delete(f"{TIERS}/pro", headers=root.headers)
    audit = [(r.actor, r.action, r.target) for r in caplog.records if r.name == "imagify.audit"]
    assert audit == [("root", "tier.create", "pro"), ("root", "tier.update", "pro"), ("root", "tier.delete", "pro")]
