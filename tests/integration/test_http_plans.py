"""Tiers as plans over HTTP: limits at the boundary, exact usage, downgrades, and links
their owners list and revoke."""

from __future__ import annotations

import pytest

from tests.integration.conftest import assert_error, image_bytes, upload

TIERS = "/api/v1/admin/tiers"
SMALL = image_bytes(size=(40, 30))


@pytest.fixture
def root(make_user):
    return make_user("root", is_admin=True)


def plan(client, root, name: str, permissions=("thumbnail:200",), **limits) -> None:
    body = {"name": name, "permissions": list(permissions), "limits": limits}
    response = client.post(TIERS, json=body, headers=root.headers)
    assert response.status_code == 201, response.text


def me(client, account) -> dict:
    return client.get("/api/v1/me", headers=account.headers).json()


def test_the_image_limit_admits_exactly_the_limit_and_names_itself_and_the_usage_one_over(
    client, root, make_user
):
    plan(client, root, "two", max_images=2)
    ann = make_user("ann", "two")
    assert upload(client, ann, SMALL).status_code == 201
    assert upload(client, ann, SMALL).status_code == 201
    detail = assert_error(upload(client, ann, SMALL), 403)
    assert "max_images" in detail and "2 of 2" in detail
    assert me(client, ann)["usage"] == {"images": 2, "storage_bytes": 2 * len(SMALL)}
    assert me(client, ann)["limits"]["max_images"] == 2


def test_the_storage_limit_admits_an_upload_ending_exactly_at_it_and_refuses_one_byte_more(
    client, root, make_user, settings
):
    plan(client, root, "tight", max_storage_bytes=2 * len(SMALL))
    ann = make_user("ann", "tight")
    assert upload(client, ann, SMALL).status_code == 201
    assert upload(client, ann, SMALL).status_code == 201  # exactly at the limit
    detail = assert_error(upload(client, ann, SMALL), 403)
    assert "max_storage_bytes" in detail and f"{2 * len(SMALL)} of {2 * len(SMALL)}" in detail
    client.patch(f"{TIERS}/tight", json={"limits": {"max_storage_bytes": 3 * len(SMALL) - 1}},
                 headers=root.headers)  # fmt: skip
    assert_error(upload(client, ann, SMALL), 403)  # one byte short
    assert len(client.get("/api/v1/images", headers=ann.headers).json()["items"]) == 2


def test_an_upload_larger_than_the_tiers_upload_limit_is_a_413_naming_it(client, root, make_user):
    plan(client, root, "small-files", max_upload_bytes=len(SMALL))
    ann = make_user("ann", "small-files")
    assert upload(client, ann, SMALL).status_code == 201  # exactly at the limit
    big = image_bytes(size=(400, 300))
    assert "max_upload_bytes" in assert_error(upload(client, ann, big), 413)
    assert me(client, ann)["usage"] == {"images": 1, "storage_bytes": len(SMALL)}


def test_usage_is_exact_after_deletes_and_failed_uploads(client, make_user):
    ann = make_user("ann", "basic")
    ids = [upload(client, ann, SMALL).json()["id"] for _ in range(3)]
    assert_error(upload(client, ann, b"not an image at all"), 400)
    assert me(client, ann)["usage"] == {"images": 3, "storage_bytes": 3 * len(SMALL)}
    assert client.delete(f"/api/v1/images/{ids[0]}", headers=ann.headers).status_code == 204
    assert client.delete(f"/api/v1/images/{ids[0]}", headers=ann.headers).status_code == 404
    assert me(client, ann)["usage"] == {"images": 2, "storage_bytes": 2 * len(SMALL)}
    assert me(client, ann)["limits"] == {
        "max_images": None, "max_storage_bytes": None, "max_upload_bytes": None, "max_link_seconds": None,
    }


def test_a_downgrade_below_usage_blocks_uploads_and_deletes_nothing(client, root, make_user):
    plan(client, root, "one", max_images=1)
    ann = make_user("ann", "basic")
    ids = [upload(client, ann, SMALL).json()["id"] for _ in range(3)]
    changed = client.patch(f"/api/v1/admin/users/ann", json={"tiers": ["one"]}, headers=root.headers)
    assert changed.json()["usage"]["images"] == 3 and changed.json()["limits"]["max_images"] == 1
    assert "3 of 1" in assert_error(upload(client, ann, SMALL), 403)
    listed = client.get("/api/v1/images", headers=ann.headers).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted(ids)
    # Deleting down below the limit lets uploads in again.
    for image_id in ids:
        client.delete(f"/api/v1/images/{image_id}", headers=ann.headers)
    assert upload(client, ann, SMALL).status_code == 201


def test_a_user_gets_the_most_generous_of_their_tiers_limits(client, root, make_user):
    plan(client, root, "few", max_images=1, max_storage_bytes=10**9)
    plan(client, root, "many", max_images=5, max_storage_bytes=10)
    both = make_user("ann", "few", "many")
    assert me(client, both)["limits"]["max_images"] == 5
    assert me(client, both)["limits"]["max_storage_bytes"] == 10**9
    with_basic = make_user("bob", "few", "basic")  # basic has no limit: unlimited wins
    assert me(client, with_basic)["limits"]["max_images"] is None


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"max_images": -1}, "max_images"),
        ({"max_images": "ten"}, "max_images"),
        ({"max_link_seconds": 299}, "max_link_seconds"),
        ({"max_link_seconds": 30001}, "max_link_seconds"),
        ({"max_upload_bytes": 10**12}, "server"),
        ({"max_pixels": 1}, "max_pixels"),
    ],
    ids=["negative", "not-int", "link-too-short", "link-too-long", "above-server", "unknown"],
)
def test_a_bad_limit_is_a_400_naming_it(client, root, limits, named):
    body = {"name": "x", "permissions": [], "limits": limits}
    assert named in assert_error(client.post(TIERS, json=body, headers=root.headers), 400)
    assert named in assert_error(client.patch(f"{TIERS}/basic", json={"limits": limits}, headers=root.headers), 400)


def test_patching_a_limit_keeps_the_others_and_null_removes_one(client, root):
    plan(client, root, "p", max_images=3, max_link_seconds=600)
    patched = client.patch(f"{TIERS}/p", json={"limits": {"max_images": None, "max_storage_bytes": 99}},
                           headers=root.headers)  # fmt: skip
    assert patched.json()["limits"] == {
        "max_images": None, "max_storage_bytes": 99, "max_upload_bytes": None, "max_link_seconds": 600,
    }
    replaced = client.put(f"{TIERS}/p", json={"permissions": ["thumbnail:100"]}, headers=root.headers)
    assert replaced.json()["limits"]["max_link_seconds"] == 600  # PUT without limits keeps them


# Links their owners can manage


LINKS = "/api/v1/images/{}/expiring-links"
LINKER = ("thumbnail:200", "can_access_original_image", "can_generate_expiring_link")


def test_an_owner_lists_links_without_tokens_and_revokes_one_then_all(client, make_user):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, SMALL).json()["id"]
    made = [
        client.post(LINKS.format(image_id), json={"seconds": s}, headers=ann.headers).json()
        for s in (300, 600, 900)
    ]
    listed = client.get(LINKS.format(image_id), headers=ann.headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()
    assert [i["expires_at"][:19] for i in items] == [m["expires_at"][:19] for m in made]
    assert all(set(i) == {"id", "created_at", "expires_at"} and i["created_at"] for i in items)
    assert not any(m["token"] in listed.text for m in made)

    gone = client.delete(f"{LINKS.format(image_id)}/{items[1]['id']}", headers=ann.headers)
    assert gone.status_code == 204, gone.text
    assert client.get(f"/l/{made[1]['token']}").status_code == 404
    assert client.get(f"/l/{made[0]['token']}").status_code == 200
    assert [i["id"] for i in client.get(LINKS.format(image_id), headers=ann.headers).json()] == [
        items[0]["id"], items[2]["id"]
    ]
    assert_error(client.delete(f"{LINKS.format(image_id)}/{items[1]['id']}", headers=ann.headers), 404)
    assert_error(client.delete(f"{LINKS.format(image_id)}/not-an-id", headers=ann.headers), 404)

    assert client.delete(LINKS.format(image_id), headers=ann.headers).status_code == 204
    assert client.get(LINKS.format(image_id), headers=ann.headers).json() == []
    assert all(client.get(f"/l/{m['token']}").status_code == 404 for m in made)


def test_a_remembered_link_is_refused_at_once_after_its_revoke(client, make_user):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann, SMALL).json()["id"]
    link = client.post(LINKS.format(image_id), json={"seconds": 300}, headers=ann.headers).json()
    for _ in range(3):  # remembered after the first
        assert client.get(f"/l/{link['token']}").status_code == 200
    assert client.delete(LINKS.format(image_id), headers=ann.headers).status_code == 204
    assert client.get(f"/l/{link['token']}").status_code == 404


def test_another_users_image_links_are_a_404_to_list_and_to_revoke(client, make_user):
    ann, bob = make_user("ann", "enterprise"), make_user("bob", "enterprise")
    image_id = upload(client, ann, SMALL).json()["id"]
    link = client.post(LINKS.format(image_id), json={"seconds": 300}, headers=ann.headers).json()
    link_id = client.get(LINKS.format(image_id), headers=ann.headers).json()[0]["id"]
    assert_error(client.get(LINKS.format(image_id), headers=bob.headers), 404)
    assert_error(client.delete(LINKS.format(image_id), headers=bob.headers), 404)
    assert_error(client.delete(f"{LINKS.format(image_id)}/{link_id}", headers=bob.headers), 404)
    assert client.get(f"/l/{link['token']}").status_code == 200


def test_a_tiers_link_cap_refuses_a_longer_link_naming_the_cap(client, root, make_user):
    plan(client, root, "short-links", LINKER, max_link_seconds=600)
    ann = make_user("ann", "short-links")
    image_id = upload(client, ann, SMALL).json()["id"]
    assert client.post(LINKS.format(image_id), json={"seconds": 600}, headers=ann.headers).status_code == 201
    detail = assert_error(client.post(LINKS.format(image_id), json={"seconds": 601}, headers=ann.headers), 400)
    assert "600" in detail and "max_link_seconds" in detail


def test_the_doctor_reports_usage_drift_and_fix_sets_it_from_the_rows(client, container, make_user):
    from datetime import timedelta

    from imagify.domain.quotas import Usage
    from imagify.domain.services.doctor import USAGE_DRIFT

    ann = make_user("ann", "basic")
    upload(client, ann, SMALL)
    user_id = container.admin().get_user("ann").id
    with container.uow()() as uow:
        uow.users.set_usage(user_id, Usage(7, 1))
        uow.commit()
    report = container.doctor().examine(min_age=timedelta(0))
    assert [(f.kind, f.fixed) for f in report.findings] == [(USAGE_DRIFT, False)]
    assert "7 images" in report.findings[0].detail and f"1 and {len(SMALL)}" in report.findings[0].detail
    assert container.doctor().examine(fix=True, min_age=timedelta(0)).findings[0].fixed
    assert me(client, ann)["usage"] == {"images": 1, "storage_bytes": len(SMALL)}
    assert container.doctor().examine(min_age=timedelta(0)).findings == []
