"""Two API server processes sharing MySQL, Redis and S3 behave as one service."""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image as PILImage

from imagify.adapters.sql.migrate import upgrade
from imagify.entrypoints.container import build_container, shutdown
from imagify.settings import load_settings
from tests.integration.services import AWS_TEST_ENV

PASSWORD = "a-long-password"
# Real server processes on a machine the rest of the suite keeps busy: a first upload can
# take seconds (it starts the decode workers), well past httpx's 5 s default.
http = httpx.Client(timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server at {base} not ready after 30 s:\n{log.read_text()}")


@pytest.fixture
def cloud_env(tmp_path, mysql_url, redis_client, redis_url, s3_bucket) -> dict[str, str]:
    endpoint, bucket = s3_bucket
    env = {
        "IMAGIFY_DATABASE_URL": mysql_url,
        "IMAGIFY_STORAGE_URL": f"s3://{bucket}/imagify",
        "IMAGIFY_S3_ENDPOINT_URL": endpoint,
        "IMAGIFY_REDIS_URL": redis_url,
        "IMAGIFY_SECRET_KEY": "shared-secret-of-the-two-processes-0123456789",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
        **AWS_TEST_ENV,
    }
    upgrade(mysql_url)
    settings = load_settings({**env, "IMAGIFY_DATA_DIR": str(tmp_path / "setup")}, dotenv=None)
    container = build_container(settings)
    username = f"ann-{secrets.token_hex(4)}"  # the database lives for the whole session
    container.admin().create_user("tests", username, PASSWORD, ["enterprise"])
    shutdown(container)
    return {**env, "TEST_USERNAME": username}


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    """Two processes on one machine, sharing the data folder (SQLite, blobs, counters)."""
    data = tmp_path / "shared"
    env = {
        "IMAGIFY_DATA_DIR": str(data),
        "IMAGIFY_SECRET_KEY": "shared-secret-of-the-two-processes-0123456789",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
    }
    settings = load_settings(env, dotenv=None)
    upgrade(settings.database_url)
    container = build_container(settings)
    container.auth().ensure_first_admin(env["IMAGIFY_ADMIN_PASSWORD"])
    container.admin().create_user("tests", "ann", PASSWORD, ["enterprise"])
    shutdown(container)
    return {**env, "TEST_USERNAME": "ann"}


@contextmanager
def serving(tmp_path: Path, envs: list[dict[str, str]]) -> Iterator[tuple[str, str, list[Path]]]:
    processes, bases, logs = [], [], []
    for name, own_env in zip(("a", "b"), envs, strict=True):
        port = _free_port()
        log = tmp_path / f"{name}.log"
        env = {**os.environ, **own_env}
        process = subprocess.Popen(
            [sys.executable, "-m", "imagify.entrypoints.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        processes.append(process)
        bases.append(f"http://127.0.0.1:{port}")
        logs.append(log)
    try:
        for base, process, log in zip(bases, processes, logs, strict=True):
            _wait_ready(base, process, log)
        yield bases[0], bases[1], logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def two_servers(tmp_path, cloud_env) -> Iterator[tuple[str, str, list[Path]]]:
    # Each process has its own, empty, local folder: all they share is in the cloud.
    envs = [{**cloud_env, "IMAGIFY_DATA_DIR": str(tmp_path / name)} for name in ("a", "b")]
    with serving(tmp_path, envs) as servers:
        yield servers


@pytest.fixture(params=["embedded", "cloud"])
def two_servers_any(request, tmp_path) -> Iterator[tuple[str, str, dict[str, str]]]:
    if request.param == "embedded":
        env = request.getfixturevalue("embedded_env")
        envs = [env, env]
    else:
        env = request.getfixturevalue("cloud_env")
        envs = [{**env, "IMAGIFY_DATA_DIR": str(tmp_path / name)} for name in ("a", "b")]
    with serving(tmp_path, envs) as (a, b, _):
        yield a, b, env


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    PILImage.effect_noise((1600, 1200), 60).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def _renders(logs: list[Path]) -> int:
    count = 0
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("message") == "thumbnail rendered":
                count += 1
    return count


def test_an_image_uploaded_through_one_process_is_listed_rendered_once_and_linked_through_the_other(
    two_servers, cloud_env
):
    two_servers_user = cloud_env["TEST_USERNAME"]
    a, b, logs = two_servers
    username = two_servers_user
    token = http.post(f"{a}/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    original = _jpeg()

    uploaded = http.post(f"{a}/api/v1/images", files={"file": ("x.jpg", original)}, headers=auth)
    assert uploaded.status_code == 201, uploaded.text
    image_id = uploaded.json()["id"]

    listed = http.get(f"{b}/api/v1/images", headers=auth).json()
    assert [i["id"] for i in listed["items"]] == [image_id]

    def fetch(i: int) -> tuple[int, bytes]:
        base = a if i % 2 else b
        r = http.get(f"{base}/api/v1/images/{image_id}/thumbnails/200", headers=auth)
        return r.status_code, r.content

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(fetch, range(20)))
    assert {status for status, _ in results} == {200}
    assert len({body for _, body in results}) == 1
    assert _renders(logs) == 1

    link = http.post(
        f"{b}/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=auth
    )
    assert link.status_code == 201, link.text
    followed = http.get(f"{a}/l/{link.json()['token']}")
    assert followed.status_code == 200
    assert followed.content == original
    assert followed.headers["content-type"] == "image/jpeg"

    assert http.delete(f"{a}/api/v1/images/{image_id}", headers=auth).status_code == 204
    assert http.get(f"{b}/l/{link.json()['token']}").status_code == 404
    assert http.get(f"{b}/api/v1/images/{image_id}", headers=auth).status_code == 404


def _token(base: str, username: str, password: str) -> dict[str, str]:
    response = http.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_what_one_process_remembers_never_outlives_a_change_made_through_the_other(two_servers_any):
    """Process b serves from memory; admin edits, tier edits and deletes made through a
    apply on b's very next request."""
    a, b, env = two_servers_any
    username = env["TEST_USERNAME"]
    admin = _token(a, "admin", env["IMAGIFY_ADMIN_PASSWORD"])
    ann = _token(a, username, PASSWORD)
    uploaded = http.post(f"{a}/api/v1/images", files={"file": ("x.jpg", _jpeg())}, headers=ann)
    assert uploaded.status_code == 201, uploaded.text
    image_id = uploaded.json()["id"]
    link = http.post(f"{a}/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=ann)
    link_url = f"{b}/l/{link.json()['token']}"
    thumbnail = f"{b}/api/v1/images/{image_id}/thumbnails/400"
    original = f"{b}/api/v1/images/{image_id}/original"
    for _ in range(3):  # b reads each once from the database, then from memory
        assert http.get(thumbnail, headers=ann).status_code == 200
        assert http.get(original, headers=ann).status_code == 200
        assert http.get(link_url).status_code == 200
        assert [i["id"] for i in http.get(f"{b}/api/v1/images", headers=ann).json()["items"]] == [image_id]

    # A downgrade through a: b's next request already has the user's new permissions.
    changed = http.patch(f"{a}/api/v1/admin/users/{username}", json={"tiers": ["premium"]}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert http.get(original, headers=ann).status_code == 403
    assert http.get(thumbnail, headers=ann).status_code == 200
    assert http.get(f"{b}/api/v1/me", headers=ann).json()["tiers"] == ["premium"]

    # An edit of the tier itself, through a.
    edited = http.put(f"{a}/api/v1/admin/tiers/premium", json={"permissions": ["thumbnail:200"]}, headers=admin)
    assert edited.status_code == 200, edited.text
    try:
        assert http.get(thumbnail, headers=ann).status_code == 403
    finally:
        http.put(f"{a}/api/v1/admin/tiers/premium", json={"permissions": ["thumbnail:200", "thumbnail:400"]},
                  headers=admin)  # fmt: skip
    assert http.get(thumbnail, headers=ann).status_code == 200

    # A delete through a: gone from b at once, link included.
    assert http.delete(f"{a}/api/v1/images/{image_id}", headers=ann).status_code == 204
    assert http.get(thumbnail, headers=ann).status_code == 404
    assert http.get(link_url).status_code == 404
    assert http.get(f"{b}/api/v1/images", headers=ann).json()["items"] == []

    # A user deleted through a can no longer use the token on b.
    assert http.delete(f"{a}/api/v1/admin/users/{username}", headers=admin).status_code == 204
    assert http.get(f"{b}/api/v1/images", headers=ann).status_code == 401


def test_a_change_made_with_the_cli_applies_to_a_running_server_on_the_next_request(tmp_path, embedded_env):
    with serving(tmp_path, [embedded_env, embedded_env]) as (a, _, _):
        ann = _token(a, "ann", PASSWORD)
        assert http.get(f"{a}/api/v1/me", headers=ann).json()["tiers"] == ["enterprise"]
        assert http.get(f"{a}/api/v1/me", headers=ann).json()["tiers"] == ["enterprise"]  # from memory
        subprocess.run(
            [sys.executable, "-m", "imagify.entrypoints.cli", "users", "set-tiers", "ann", "basic"],
            env={**os.environ, **embedded_env}, cwd=tmp_path, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        assert http.get(f"{a}/api/v1/me", headers=ann).json()["tiers"] == ["basic"]


def test_a_token_logged_out_through_one_process_is_refused_by_the_other_at_once(two_servers_any):
    a, b, env = two_servers_any
    username = env["TEST_USERNAME"]
    ann, other = _token(a, username, PASSWORD), _token(a, username, PASSWORD)
    for _ in range(2):  # b reads the user once from the database, then from memory
        assert http.get(f"{b}/api/v1/me", headers=ann).status_code == 200
        assert http.get(f"{b}/api/v1/me", headers=other).status_code == 200
    assert http.delete(f"{a}/api/v1/auth/token", headers=ann).status_code == 204
    refused = http.get(f"{b}/api/v1/me", headers=ann)
    assert refused.status_code == 401 and "logged out" in refused.json()["detail"]
    assert http.get(f"{a}/api/v1/me", headers=ann).status_code == 401
    assert http.get(f"{b}/api/v1/me", headers=other).json()["username"] == username  # the other session goes on
