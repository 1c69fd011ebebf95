"""HTTP: expiring links to originals, created by entitled owners and followed without auth."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from dependency_injector import providers

from tests.integration.conftest import assert_error, image_bytes, upload

IMAGES = "/api/v1/images"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock(container) -> FakeClock:
    fake = FakeClock()
    container.clock.override(providers.Object(fake))  # before any use case is built
    return fake


@pytest.fixture
def ann(clock, make_user):
    return make_user("ann", "enterprise")


@pytest.fixture
def original(client, ann) -> tuple[str, bytes]:
    data = image_bytes("PNG", (90, 60))
    response = client.post(IMAGES, files={"file": ("pretends.jpg", data, "image/jpeg")}, headers=ann.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"], data


def create_link(client, account, image_id: str, seconds: object = 300):
    return client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": seconds}, headers=account.headers)


def test_an_enterprise_user_creates_a_link_anyone_can_follow(client, ann, original, clock):
    image_id, data = original
    response = create_link(client, ann, image_id, 600)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"url", "token", "expires_at"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", body["token"])
    assert body["url"] == f"{str(client.base_url).rstrip('/')}/l/{body['token']}"
    assert body["url"].startswith("http://testserver")
    assert body["expires_at"].endswith("Z")
    assert datetime.fromisoformat(body["expires_at"]) == clock.now() + timedelta(seconds=600)

    followed = client.get(body["url"])  # no Authorization header
    assert followed.status_code == 200
    assert followed.content == data
    assert followed.headers["content-type"] == "image/png"
    assert followed.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(body["url"], headers={"If-None-Match": followed.headers["ETag"]})
    assert (again.status_code, again.content) == (304, b"")


def test_a_link_created_with_the_real_clock_expires_about_seconds_from_now(client, make_user):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    before = datetime.now(UTC)
    body = create_link(client, ann, image_id, 300).json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=299) <= expires <= datetime.now(UTC) + timedelta(seconds=301)


@pytest.mark.parametrize("seconds", [300, 30000])
def test_the_bounds_of_the_lifetime_are_accepted(client, ann, original, seconds):
    assert create_link(client, ann, original[0], seconds).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b'{"seconds": 299}',
        b'{"seconds": 30001}',
        b'{"seconds": 0}',
        b'{"seconds": -300}',
        b'{"seconds": 300.0}',
        b'{"seconds": true}',
        b'{"seconds": "300"}',
        b'{"seconds": null}',
        b"{}",
        b"[300]",
        b"not json",
        b"",
    ],
    ids=["299", "30001", "0", "negative", "float", "bool", "string", "null", "missing", "array", "non-json", "empty"],
)
def test_a_bad_lifetime_is_a_400_naming_seconds(client, ann, original, body):
    response = client.post(
        f"{IMAGES}/{original[0]}/expiring-links",
        content=body,
        headers={**ann.headers, "Content-Type": "application/json"},
    )
    assert "seconds" in assert_error(response, 400)


@pytest.mark.parametrize("tier", ["basic", "premium"])
def test_a_user_without_expiring_links_is_refused_with_403(client, clock, make_user, tier):
    account = make_user("bob", tier)
    image_id = upload(client, account).json()["id"]
    assert "expiring links" in assert_error(create_link(client, account, image_id), 403)


def test_a_link_to_another_users_image_is_404(client, clock, make_user, original):
    eve = make_user("eve", "enterprise")
    assert_error(create_link(client, eve, original[0]), 404)


@pytest.mark.parametrize("token", ["unknown", "A" * 43, "x" * 500])
def test_an_unknown_token_is_404(client, token):
    assert_error(client.get(f"/l/{token}"), 404)


def test_a_link_works_until_its_expiry_and_is_404_from_then_on(client, ann, original, clock):
    url = create_link(client, ann, original[0], 300).json()["url"]
    clock.advance(299)
    assert client.get(url).status_code == 200
    clock.advance(1)
    assert "expired" in assert_error(client.get(url), 404)
    clock.advance(1)
    assert_error(client.get(url), 404)


def test_deleting_the_image_kills_its_links(client, ann, original):
    url = create_link(client, ann, original[0]).json()["url"]
    assert client.get(url).status_code == 200
    assert client.delete(f"{IMAGES}/{original[0]}", headers=ann.headers).status_code == 204
    assert_error(client.get(url), 404)


def test_two_links_for_one_image_have_different_tokens_and_both_work(client, ann, original):
    first, second = (create_link(client, ann, original[0]).json() for _ in range(2))
    assert first["token"] != second["token"]
    assert client.get(first["url"]).content == client.get(second["url"]).content == original[1]

