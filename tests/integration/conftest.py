"""The app on real adapters, once per backend.

`embedded`: a temp-file SQLite, a temp folder, SQL links, local renders.
`cloud`: a MariaDB database as `imagify migrate` leaves it, a fresh S3 bucket on a moto
server, Redis links and locks.
`lambda`: cloud, with thumbnails rendered by the real Lambda handler behind a loopback
Invoke API (boto3's Lambda client over HTTP).
Every test that uses `settings` (and so `container` and `client`) runs on each backend.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import argon2
import pytest
from litestar.testing import TestClient
from PIL import Image as PILImage

from imagify.adapters.decode_pool import DecodePool
from imagify.adapters.s3_storage import make_s3_client, parse_s3_url
from imagify.adapters.security import Argon2PasswordHasher
from imagify.adapters.sql.migrate import upgrade
from imagify.entrypoints.container import Container, build_container, shutdown
from imagify.entrypoints.http.app import create_app
from imagify.settings import Settings, load_settings
from tests.integration.lambda_endpoint import FUNCTION as LAMBDA_FUNCTION
from tests.integration.lambda_endpoint import lambda_endpoint  # noqa: F401  (fixture)
from tests.integration.services import (  # noqa: F401  (fixtures for the cloud backend)
    _migrated_databases,
    migrated_mysql_database,
    moto_server,
    mysql_database,
    mysql_url,
    redis_client,
    redis_url,
    s3_bucket,
)

PASSWORD = "a-long-password"


def embedded_settings(tmp_path: Path, **overrides: str) -> Settings:
    env = {"IMAGIFY_DATA_DIR": str(tmp_path / "var"), "IMAGIFY_SECRET_KEY": "test-secret-of-at-least-32-characters"}
    env.update(overrides)
    return load_settings(env, dotenv=None)


BACKENDS = ["embedded", "cloud", "lambda"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """Settings for the test's backend; each call gets its own database, bucket and folder."""
    count = iter(range(1000))

    def make(**overrides: str) -> Settings:
        folder = tmp_path / f"app{next(count)}"
        if backend == "embedded":
            return embedded_settings(folder, **overrides)
        database = request.getfixturevalue("migrated_mysql_database")
        request.getfixturevalue("redis_client")  # emptied before and after the test
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        env = {
            "IMAGIFY_DATABASE_URL": database(),
            "IMAGIFY_STORAGE_URL": f"s3://{bucket}/{folder.name}",
            "IMAGIFY_S3_ENDPOINT_URL": endpoint,
            "IMAGIFY_REDIS_URL": request.getfixturevalue("redis_url"),
        }
        if backend == "lambda":
            env["IMAGIFY_RENDERER"] = "lambda"
            env["IMAGIFY_LAMBDA_FUNCTION"] = LAMBDA_FUNCTION
            env["IMAGIFY_LAMBDA_ENDPOINT_URL"] = request.getfixturevalue("lambda_endpoint")
        env.update(overrides)
        return embedded_settings(folder, **env)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    upgrade(settings.database_url)
    container = build_container(settings)
    # The real argon2 adapter, with cheap parameters so tests can create many users.
    container.hasher.override(
        Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    )
    yield container
    shutdown(container)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), base_url="http://testserver.local") as client:
        yield client


@dataclass
class Account:
    username: str
    headers: dict[str, str]


@pytest.fixture
def make_user(container: Container, client: TestClient):
    """Create a user through the admin use case and log in over HTTP."""

    def make(username: str, *tiers: str, is_admin: bool = False) -> Account:
        container.admin().create_user("tests", username, PASSWORD, list(tiers), is_admin)
        response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return Account(username, {"Authorization": f"Bearer {response.json()['access_token']}"})

    return make


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (800, 600), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(buffer, fmt)
    return buffer.getvalue()


def upload(client: TestClient, account: Account, data: bytes | None = None, filename: str = "cat.jpg"):
    return client.post(
        "/api/v1/images",
        files={"file": (filename, data if data is not None else image_bytes(), "application/octet-stream")},
        headers=account.headers,
    )


# Helpers for the HTTP tests.


def assert_error(response, status: int) -> str:
    """An error answer is JSON {"status_code": int, "detail": str}; returns the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert type(body["status_code"]) is int and body["status_code"] == status, body
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    return body["detail"]


def blob_files(settings: Settings) -> list[PurePosixPath]:
    """Every stored key, relative to the storage root: files in the folder or objects in S3."""
    if settings.storage_url.startswith("s3://"):
        bucket, prefix = parse_s3_url(settings.storage_url)
        s3 = make_s3_client(settings.s3_endpoint_url)
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]
        return sorted(PurePosixPath(k).relative_to(prefix) if prefix else PurePosixPath(k) for k in keys)
    root = Path(settings.data_dir) / "blobs"
    if not root.exists():
        return []
    return sorted(PurePosixPath(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())


@contextmanager
def running_app(settings: Settings) -> Iterator[tuple[Container, TestClient]]:
    """A second app on its own settings, set up like the `container` and `client` fixtures."""
    upgrade(settings.database_url)
    container = build_container(settings)
    container.hasher.override(
        Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    )
    try:
        with TestClient(create_app(container), base_url="http://testserver.local") as client:
            yield container, client
    finally:
        shutdown(container)


def login(container: Container, client: TestClient, username: str, *tiers: str) -> Account:
    """Create a user in `container` and log in through `client`."""
    container.admin().create_user("tests", username, PASSWORD, list(tiers), False)
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return Account(username, {"Authorization": f"Bearer {response.json()['access_token']}"})


@pytest.fixture(scope="session")
def decode_pool() -> Iterator[DecodePool]:
    """Two warm decode workers, shared by the tests that inspect or render directly."""
    pool = DecodePool(2, 30, 1024 * 2**20)
    pool.start()
    yield pool
    pool.close()
