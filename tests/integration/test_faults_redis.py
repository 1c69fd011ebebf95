"""Redis down in cloud mode: link routes 503 naming the link store, the rest keeps working.

Redis sits behind a loopback proxy the test cuts and restores; MariaDB and S3 (moto) are
reached directly. Render locks degrade to this machine's locks, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from imagify.entrypoints.container import Container
from tests.integration.conftest import (
    Account,
    assert_error,
    embedded_settings,
    image_bytes,
    login,
    running_app,
    upload,
)
from tests.integration.faults import TcpProxy, host_port, through

pytestmark = pytest.mark.integration

App = tuple[Container, TestClient, Account]


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(*host_port(redis_url)) as proxy:
        yield proxy


@pytest.fixture
def cloud_app(tmp_path: Path, mysql_database, s3_bucket, redis_client, redis_url, redis_proxy) -> Iterator[App]:
    endpoint, bucket = s3_bucket
    settings = embedded_settings(
        tmp_path,
        IMAGIFY_DATABASE_URL=mysql_database(),
        IMAGIFY_STORAGE_URL=f"s3://{bucket}/app",
        IMAGIFY_S3_ENDPOINT_URL=endpoint,
        IMAGIFY_REDIS_URL=through(redis_url, redis_proxy),
    )
    with running_app(settings) as (container, client):
        yield container, client, login(container, client, "ann", "enterprise")


def make_link(client: TestClient, account: Account, image_id: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 600}, headers=account.headers
    )


def test_redis_down_fails_only_the_link_routes_and_readiness_names_the_link_store(
    cloud_app: App, redis_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    container, client, ann = cloud_app
    before = upload(client, ann).json()["id"]
    token = make_link(client, ann, before).json()["token"]
    redis_proxy.down()

    # The link routes say what is missing.
    assert "link store" in assert_error(make_link(client, ann, before), 503)
    assert "link store" in assert_error(client.get(f"/l/{token}"), 503)
    ready = client.get("/health/ready")
    assert "link_store" in assert_error(ready, 503)
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["storage"] == "ok" and checks["link_store"] != "ok"

    # Everything else goes on: uploads, listings, first renders (local locks), originals.
    with caplog.at_level(logging.WARNING, logger="imagify.adapters.redis_locks"):
        created = upload(client, ann, image_bytes("PNG", (900, 700), "RGBA"), "new.png")
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        listed = client.get("/api/v1/images", headers=ann.headers)
        assert [i["id"] for i in listed.json()["items"]] == [image_id, before]
        for height in (200, 400):
            thumb = client.get(f"/api/v1/images/{image_id}/thumbnails/{height}", headers=ann.headers)
            assert thumb.status_code == 200, thumb.text
            assert thumb.headers["content-type"] == "image/png"
        again = client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann.headers)
        assert again.status_code == 200
        original = client.get(f"/api/v1/images/{before}/original", headers=ann.headers)
        assert original.status_code == 200
    assert any("this machine only" in r.getMessage() for r in caplog.records), caplog.text

    # Deleting goes on too: the image's links cannot be removed now, but a link whose
    # image row is gone resolves to 404 when Redis returns, and Redis expires it by its TTL.
    assert client.delete(f"/api/v1/images/{image_id}", headers=ann.headers).status_code == 204
    assert client.get(f"/api/v1/images/{image_id}", headers=ann.headers).status_code == 404

    redis_proxy.up()
    assert client.get(f"/l/{token}").status_code == 200  # links made before survive
    fresh = make_link(client, ann, before)
    assert fresh.status_code == 201
    assert client.get("/health/ready").status_code == 200
    assert client.delete(f"/api/v1/images/{before}", headers=ann.headers).status_code == 204
    assert client.get(f"/l/{token}").status_code == 404
    assert client.get(f"/l/{fresh.json()['token']}").status_code == 404


def test_render_locks_go_back_to_redis_once_it_returns(
    cloud_app: App, redis_proxy: TcpProxy, redis_client
) -> None:
    container, client, ann = cloud_app
    image_id = upload(client, ann).json()["id"]
    locks = container.locks()
    redis_proxy.down()
    with locks.hold("probe"):  # Redis unreachable: the machine's own lock
        assert redis_client.keys("imagify:lock:*") == []
    redis_proxy.up()
    locks._down_until = 0  # skip the 5 s back-off the test would otherwise wait out
    with locks.hold("probe"):
        assert redis_client.keys("imagify:lock:*") == [b"imagify:lock:probe"]
    assert client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann.headers).status_code == 200
