"""SQL statements per request stay constant however many images a user has (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event

from imagify.adapters.sql import links as sql_links
from tests.integration.conftest import PASSWORD, upload

IMAGES = "/api/v1/images"


@pytest.fixture(autouse=True)
def no_link_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SQL link store sweeps expired rows on a random one resolve in 50: not per image,
    # but it would make a count flaky.
    monkeypatch.setattr(sql_links, "SWEEP_ONE_IN", 10**12)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_per_request(client, container, account, image_id: str) -> dict[str, int]:
    engine = container.engine()
    # A fresh link each time: the Redis test database may be emptied meanwhile by another run.
    link = client.post(f"{IMAGES}/{image_id}/expiring-links", json={"seconds": 300}, headers=account.headers)
    link_url = link.json()["url"]
    requests = {
        "list": (f"{IMAGES}?limit=20", account.headers),
        "thumbnail": (f"{IMAGES}/{image_id}/thumbnails/200", account.headers),
        "original": (f"{IMAGES}/{image_id}/original", account.headers),
        "link": (link_url, {}),
    }
    counts = {}
    for name, (url, headers) in requests.items():
        with counted(engine) as statements:
            response = client.get(url, headers=headers)
        assert response.status_code == 200, (name, response.text)
        counts[name] = len(statements)
    return counts


def test_list_thumbnail_original_and_link_run_as_many_statements_with_50_images_as_with_5(
    client, container, make_user
):
    ann = make_user("ann", "enterprise")
    ids = [upload(client, ann).json()["id"] for _ in range(5)]
    assert client.get(f"{IMAGES}/{ids[0]}/thumbnails/200", headers=ann.headers).status_code == 200  # rendered now

    with_5 = statements_per_request(client, container, ann, ids[0])
    ids += [upload(client, ann).json()["id"] for _ in range(45)]
    with_50 = statements_per_request(client, container, ann, ids[0])

    assert with_50 == with_5


def test_a_listing_of_20_images_takes_one_statement_for_the_user_and_one_for_the_page(
    client, container, make_user
):
    ann = make_user("ann", "premium")
    for _ in range(25):
        upload(client, ann)

    with counted(container.engine()) as statements:
        page = client.get(f"{IMAGES}?limit=20", headers=ann.headers)

    assert len(page.json()["items"]) == 20
    assert len(statements) == 2, statements


def test_authenticating_a_request_reads_the_user_and_permissions_in_one_statement(client, container, make_user):
    ann = make_user("ann", "basic", "premium", "enterprise")

    with counted(container.engine()) as statements:
        me = client.get("/api/v1/me", headers=ann.headers)

    assert me.status_code == 200
    assert sorted(me.json()["tiers"]) == ["basic", "enterprise", "premium"]
    assert len(statements) == 1, statements


def test_a_user_with_a_live_logged_out_token_is_read_with_its_ids_in_a_second_statement(
    client, container, make_user
):
    ann = make_user("ann", "basic")
    other = client.post("/api/v1/auth/token", json={"username": "ann", "password": PASSWORD})
    assert client.delete("/api/v1/auth/token", headers=ann.headers).status_code == 204
    still = {"Authorization": f"Bearer {other.json()['access_token']}"}

    with counted(container.engine()) as statements:
        me = client.get("/api/v1/me", headers=still)

    assert me.status_code == 200
    assert len(statements) == 2, statements  # the user, then their logged-out ids
    assert client.get("/api/v1/me", headers=ann.headers).status_code == 401


def test_a_warm_thumbnail_takes_a_fixed_handful_of_statements(client, container, make_user):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    client.get(f"{IMAGES}/{image_id}/thumbnails/200", headers=ann.headers)

    with counted(container.engine()) as statements:
        response = client.get(f"{IMAGES}/{image_id}/thumbnails/200", headers=ann.headers)

    assert response.status_code == 200
    # the user with permissions, then the image and its rendition
    assert len(statements) <= 3, statements


def test_a_repeated_request_runs_no_statement_until_something_it_read_changes(client, container, make_user):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann).json()["id"]
    urls = [f"{IMAGES}?limit=20", f"{IMAGES}/{image_id}/thumbnails/400", "/api/v1/me"]
    for url in urls * 2:  # renders, then remembers
        assert client.get(url, headers=ann.headers).status_code == 200

    with counted(container.engine()) as statements:
        for url in urls:
            assert client.get(url, headers=ann.headers).status_code == 200
    assert statements == []

    upload(client, ann)  # the owner's images changed: the page is read again
    with counted(container.engine()) as statements:
        assert len(client.get(urls[0], headers=ann.headers).json()["items"]) == 2
    assert statements
