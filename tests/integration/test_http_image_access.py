"""HTTP: listing your images, reading one, deleting one, and never seeing anyone else's."""

from __future__ import annotations

import pytest

from tests.integration.conftest import assert_error, blob_files, image_bytes, upload

IMAGES = "/api/v1/images"
UNKNOWN = "ffffffffffffffffffffffffffffffff"


def upload_many(client, account, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = upload(client, account, image_bytes("PNG", (10 + n, 10)), filename=f"{n}.png")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_the_list_is_newest_first_with_a_default_page_of_20(client, make_user):
    ann = make_user("ann", "basic")
    ids = upload_many(client, ann, 22)
    page = client.get(IMAGES, headers=ann.headers).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:20]
    assert [item["filename"] for item in page["items"]][:2] == ["21.png", "20.png"]
    assert isinstance(page["next_cursor"], str)


def test_cursor_paging_gives_every_image_once(client, make_user):
    ann = make_user("ann", "basic")
    ids = upload_many(client, ann, 25)
    pages, cursor = [], None
    for _ in range(3):
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        response = client.get(IMAGES, params=params, headers=ann.headers)
        assert response.status_code == 200, response.text
        pages.append([item["id"] for item in response.json()["items"]])
        cursor = response.json()["next_cursor"]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert cursor is None
    assert pages[0] + pages[1] + pages[2] == ids[::-1]


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_accepts_1_to_100(client, make_user, limit):
    ann = make_user("ann", "basic")
    upload_many(client, ann, 2)
    page = client.get(IMAGES, params={"limit": limit}, headers=ann.headers).json()
    assert len(page["items"]) == min(limit, 2)
    assert (page["next_cursor"] is None) == (limit == 100)


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5"])
def test_a_limit_outside_1_to_100_is_a_400(client, make_user, limit):
    ann = make_user("ann", "basic")
    assert "limit" in assert_error(client.get(IMAGES, params={"limit": limit}, headers=ann.headers), 400)


@pytest.mark.parametrize("cursor", ["@@@", "Zm9v", "bm90LWEtZGF0ZXxpZA", "%%%", "\u00e9"])
def test_a_malformed_cursor_is_a_400(client, make_user, cursor):
    ann = make_user("ann", "basic")
    upload_many(client, ann, 1)
    response = client.get(IMAGES, params={"cursor": cursor}, headers=ann.headers)
    assert "cursor" in assert_error(response, 400)


def test_a_user_lists_only_their_own_images(client, make_user):
    ann, bob = make_user("ann", "basic"), make_user("bob", "basic")
    ann_ids = upload_many(client, ann, 2)
    bob_ids = upload_many(client, bob, 1)
    assert [i["id"] for i in client.get(IMAGES, headers=ann.headers).json()["items"]] == ann_ids[::-1]
    assert [i["id"] for i in client.get(IMAGES, headers=bob.headers).json()["items"]] == bob_ids


def test_the_owner_reads_one_image(client, make_user):
    ann = make_user("ann", "premium")
    created = upload(client, ann, image_bytes("WEBP", (64, 48)), filename="w.webp").json()
    response = client.get(f"{IMAGES}/{created['id']}", headers=ann.headers)
    assert response.status_code == 200
    assert response.json() == created


def test_deleting_an_image_removes_its_row_original_and_thumbnails(client, make_user, settings):
    ann = make_user("ann", "enterprise")
    keep = upload(client, ann).json()["id"]
    gone = upload(client, ann).json()["id"]
    for height in (200, 400):
        for image_id in (keep, gone):
            assert client.get(f"{IMAGES}/{image_id}/thumbnails/{height}", headers=ann.headers).status_code == 200
    assert sum(gone in str(p) for p in blob_files(settings)) >= 3  # original + two thumbnails

    response = client.delete(f"{IMAGES}/{gone}", headers=ann.headers)
    assert response.status_code == 204 and response.content == b""

    assert_error(client.get(f"{IMAGES}/{gone}", headers=ann.headers), 404)
    assert_error(client.get(f"{IMAGES}/{gone}/thumbnails/200", headers=ann.headers), 404)
    assert_error(client.delete(f"{IMAGES}/{gone}", headers=ann.headers), 404)
    assert [p for p in blob_files(settings) if gone in str(p)] == []
    assert any(keep in str(p) for p in blob_files(settings))
    assert [i["id"] for i in client.get(IMAGES, headers=ann.headers).json()["items"]] == [keep]


def routes_of(image_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("GET", f"{IMAGES}/{image_id}", {}),
        ("DELETE", f"{IMAGES}/{image_id}", {}),
        ("GET", f"{IMAGES}/{image_id}/thumbnails/200", {}),
        ("GET", f"{IMAGES}/{image_id}/original", {}),
        ("POST", f"{IMAGES}/{image_id}/expiring-links", {"json": {"seconds": 300}}),
    ]


def test_another_users_image_is_404_everywhere_never_403(client, make_user, settings):
    ann = make_user("ann", "enterprise")
    eve = make_user("eve", "enterprise")
    image_id = upload(client, ann).json()["id"]
    files = blob_files(settings)
    for method, path, extra in routes_of(image_id):
        detail = assert_error(client.request(method, path, headers=eve.headers, **extra), 404)
        assert image_id in detail
    assert client.get(f"{IMAGES}/{image_id}", headers=ann.headers).status_code == 200
    assert blob_files(settings) == files


def test_a_basic_user_gets_404_not_403_for_someone_elses_original(client, make_user):
    ann = make_user("ann", "enterprise")
    bob = make_user("bob", "basic")
    image_id = upload(client, ann).json()["id"]
    for method, path, extra in routes_of(image_id):
        assert_error(client.request(method, path, headers=bob.headers, **extra), 404)


def test_an_unknown_image_id_is_404_everywhere(client, make_user):
    ann = make_user("ann", "enterprise")
    for method, path, extra in routes_of(UNKNOWN) + routes_of("not-an-id"):
        assert_error(client.request(method, path, headers=ann.headers, **extra), 404)


def test_a_listing_served_from_memory_follows_uploads_deletes_and_tier_changes(client, make_user, container):
    ann = make_user("ann", "premium")
    first = upload(client, ann).json()["id"]

    def listing() -> list[tuple[str, set[str]]]:
        items = client.get("/api/v1/images", headers=ann.headers).json()["items"]
        return [(item["id"], set(item["links"]["thumbnails"])) for item in items]

    for _ in range(3):  # loaded, then remembered, then its body reused
        assert listing() == [(first, {"200", "400"})]
    second = upload(client, ann).json()["id"]
    assert listing() == [(second, {"200", "400"}), (first, {"200", "400"})]
    assert listing() == [(second, {"200", "400"}), (first, {"200", "400"})]
    container.admin().update_user("tests", "ann", tiers=["basic"])
    assert listing() == [(second, {"200"}), (first, {"200"})]
    assert listing() == [(second, {"200"}), (first, {"200"})]
    assert client.delete(f"/api/v1/images/{second}", headers=ann.headers).status_code == 204
    assert listing() == [(first, {"200"})]
