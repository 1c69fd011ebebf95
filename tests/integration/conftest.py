"""The app on real adapters: a temp-file SQLite and a temp folder (embedded mode)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import argon2
import pytest
from litestar.testing import TestClient
from PIL import Image as PILImage

from imagify.adapters.security import Argon2PasswordHasher
from imagify.adapters.sql.migrate import upgrade
from imagify.entrypoints.container import Container, build_container, shutdown
from imagify.entrypoints.http.app import create_app
from imagify.settings import Settings, load_settings

PASSWORD = "a-long-password"


def embedded_settings(tmp_path: Path, **overrides: str) -> Settings:
    env = {"IMAGIFY_DATA_DIR": str(tmp_path / "var"), "IMAGIFY_SECRET_KEY": "test-secret-of-at-least-32-characters"}
    env.update(overrides)
    return load_settings(env, dotenv=None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return embedded_settings(tmp_path)


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
    with TestClient(create_app(container), base_url="http://testserver") as client:
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


def blob_files(settings: Settings) -> list[Path]:
    """Every file under the blob folder (an absent folder holds none)."""
    root = Path(settings.data_dir) / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@contextmanager
def running_app(settings: Settings) -> Iterator[tuple[Container, TestClient]]:
    """A second app on its own settings, set up like the `container` and `client` fixtures."""
    upgrade(settings.database_url)
    container = build_container(settings)
    container.hasher.override(
        Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    )
    try:
        with TestClient(create_app(container), base_url="http://testserver") as client:
            yield container, client
    finally:
        shutdown(container)


def login(container: Container, client: TestClient, username: str, *tiers: str) -> Account:
    """Create a user in `container` and log in through `client`."""
    container.admin().create_user("tests", username, PASSWORD, list(tiers), False)
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return Account(username, {"Authorization": f"Bearer {response.json()['access_token']}"})
