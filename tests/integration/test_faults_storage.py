"""S3 unreachable, before and in the middle of an upload: 503, no row, nothing in the bucket.

The app talks to the moto S3 server through a loopback proxy the test cuts and restores.
(The embedded backend's blob folder is a local disk: it has no network to lose.)
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from litestar.testing import TestClient
from PIL import Image as PILImage

from click.testing import CliRunner, Result

from imagify.entrypoints.cli import main
from imagify.entrypoints.container import Container
from imagify.settings import Settings
from tests.integration.conftest import Account, assert_error, embedded_settings, login, running_app
from tests.integration.faults import TcpProxy, count_rows, host_port, through

pytestmark = pytest.mark.integration


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about side*side*3 bytes."""
    buffer = io.BytesIO()
    PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def s3_proxy(s3_bucket: tuple[str, str]) -> Iterator[TcpProxy]:
    with TcpProxy(*host_port(s3_bucket[0])) as proxy:
        yield proxy


@pytest.fixture
def app(tmp_path: Path, mysql_database, s3_bucket, s3_proxy) -> Iterator[tuple[Container, TestClient, Account]]:
    endpoint, bucket = s3_bucket
    settings = embedded_settings(
        tmp_path,
        IMAGIFY_DATABASE_URL=mysql_database(),
        IMAGIFY_STORAGE_URL=f"s3://{bucket}/app",
        IMAGIFY_S3_ENDPOINT_URL=through(endpoint, s3_proxy),
    )
    with running_app(settings) as (container, client):
        yield container, client, login(container, client, "ann", "enterprise")


def bucket_state(s3_bucket: tuple[str, str]) -> tuple[list[str], list[str]]:
    """(object keys, keys of unfinished multipart uploads), read from moto directly."""
    endpoint, bucket = s3_bucket
    s3: Any = boto3.session.Session().client("s3", endpoint_url=endpoint)
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects, uploads


def run_doctor(settings: Settings, s3_endpoint: str, *args: str) -> Result:
    env = {
        "IMAGIFY_DATA_DIR": settings.data_dir,
        "IMAGIFY_DATABASE_URL": settings.database_url,
        "IMAGIFY_STORAGE_URL": settings.storage_url,
        "IMAGIFY_S3_ENDPOINT_URL": s3_endpoint,
        "IMAGIFY_SECRET_KEY": settings.secret_key,
    }
    return CliRunner().invoke(main, ["doctor", *args], env=env)


def post_image(client: TestClient, account: Account, data: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/images", files={"file": ("big.png", data, "image/png")}, headers=account.headers
    )


def test_s3_down_before_an_upload_is_503_naming_s3_and_leaves_no_row(app, s3_proxy, s3_bucket) -> None:
    container, client, ann = app
    s3_proxy.down()

    detail = assert_error(post_image(client, ann, noise_png(64)), 503)
    assert "S3" in detail, detail
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and "storage" in ready.json()["checks"]
    assert ready.json()["checks"]["storage"] != "ok"
    assert count_rows(container.engine(), "images") == 0

    s3_proxy.up()
    assert bucket_state(s3_bucket) == ([], [])
    assert post_image(client, ann, noise_png(64)).status_code == 201  # recovered by itself


@pytest.mark.parametrize(
    ("side", "cut_after"),
    [(300, 100_000), (1900, 3_000_000)],  # a single PUT; a multipart upload (above 8 MB)
    ids=["single-put", "multipart"],
)
def test_s3_lost_in_the_middle_of_storing_an_upload_is_503_with_no_row_and_no_object(
    app, s3_proxy, s3_bucket, side: int, cut_after: int
) -> None:
    container, client, ann = app
    data = noise_png(side)
    assert len(data) > cut_after * 2
    s3_proxy.down_after(cut_after)  # S3 dies after receiving this many more bytes

    detail = assert_error(post_image(client, ann, data), 503)

    assert "S3" in detail, detail
    assert s3_proxy.mode == "down"
    assert count_rows(container.engine(), "images") == 0
    assert client.get("/api/v1/images", headers=ann.headers).json()["items"] == []
    s3_proxy.up()
    objects, unfinished = bucket_state(s3_bucket)
    assert objects == []
    if side > 1000:
        # S3 was gone when the upload failed, so nobody could abort it: its parts stay,
        # billed and invisible, until `imagify doctor --fix` (or a lifecycle rule) aborts it.
        assert len(unfinished) == 1 and unfinished[0].startswith("app/originals/")
        doctor = run_doctor(container.settings(), s3_bucket[0], "--fix", "--min-age-seconds", "0")
        assert doctor.exit_code == 0, doctor.output
        assert f"unfinished upload: {unfinished[0].removeprefix('app/')}" in doctor.output
        assert bucket_state(s3_bucket) == ([], [])
    else:
        assert unfinished == []
    again = post_image(client, ann, data)
    assert again.status_code == 201, again.text
    image_id = again.json()["id"]
    original = client.get(f"/api/v1/images/{image_id}/original", headers=ann.headers)
    assert original.content == data
