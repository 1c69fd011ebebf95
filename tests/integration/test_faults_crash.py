"""A server killed (SIGKILL) in the middle of an upload leaves a whole image or nothing,
and `imagify doctor` finds, then with --fix removes, what a kill can leave: a blob no row names.

Real `imagify serve` processes. The kill lands while the body is still arriving, or after
the original was stored but before its row was written: the test holds the database back
(SQLite: another process holds the write lock; MariaDB: its proxy stops answering) and
kills the server as soon as the blob shows up in storage.
"""

from __future__ import annotations

import io
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image as PILImage

from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.sql.migrate import upgrade
from imagify.adapters.sql.unit_of_work import make_engine
from imagify.entrypoints.container import build_container, shutdown
from imagify.settings import load_settings
from tests.integration.faults import Server, TcpProxy, count_rows, host_port, run_cli, serving, through
from tests.integration.services import AWS_TEST_ENV

pytestmark = pytest.mark.integration

PASSWORD = "a-long-password"
# Real server processes on a machine the rest of the suite keeps busy: a first upload can
# take seconds (it starts the decode workers), well past httpx's 5 s default.
http = httpx.Client(timeout=60)
BOUNDARY = "imagify-crash-test-boundary"


def noise_jpeg(side: int = 1100) -> bytes:
    """A slow upload of about 1.2 MB, under 1200 px high so it has no preview: a crash
    leaves exactly one orphan, its original (test_previews covers an orphaned preview)."""
    buffer = io.BytesIO()
    PILImage.effect_noise((side, side), 80).convert("RGB").save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def prepare(env: dict[str, str]) -> None:
    """Migrate and create the user `ann` (enterprise)."""
    settings = load_settings(env, dotenv=None)
    upgrade(settings.database_url)
    container = build_container(settings)
    try:
        container.admin().create_user("tests", "ann", PASSWORD, ["enterprise"])
    finally:
        shutdown(container)


def token(server: Server) -> str:
    response = http.post(f"{server.base}/api/v1/auth/token", json={"username": "ann", "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def raw_upload(server: Server, bearer: str, data: bytes) -> tuple[socket.socket, bytes]:
    """A connected socket with the request head sent, and the multipart body still to send."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST /api/v1/images HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {bearer}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(head)
    return sock, body


def wait_for(condition: Callable[[], Any], seconds: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def doctor(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return run_cli(env, "doctor", "--min-age-seconds", "0", *args)


def assert_doctor_finds_and_fixes(env: dict[str, str], orphan: str) -> None:
    found = doctor(env)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"orphaned blob: {orphan}: a stored original that no row names" in found.stdout
    assert found.stdout.strip().splitlines()[-1].endswith(
        "1 problems (1 orphaned blob); none fixed (run with --fix to remove them)"
    )
    fixed = doctor(env, "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"orphaned blob: {orphan}" in fixed.stdout and "[fixed]" in fixed.stdout
    clean = doctor(env)
    assert clean.returncode == 0 and "no problems found" in clean.stdout, clean.stdout


# Embedded: SQLite and a blob folder


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_SECRET_KEY": "crash-test-secret-of-at-least-32-characters",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
    }
    prepare(env)
    return env


def sqlite_images(env: dict[str, str]) -> int:
    with sqlite3.connect(Path(env["IMAGIFY_DATA_DIR"]) / "imagify.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])


def blob_folder_files(env: dict[str, str]) -> list[str]:
    root = Path(env["IMAGIFY_DATA_DIR"]) / "blobs"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_server_killed_while_the_body_arrives_leaves_nothing(embedded_env, tmp_path: Path) -> None:
    data = noise_jpeg()
    with serving(embedded_env, tmp_path / "serve") as server:
        sock, body = raw_upload(server, token(server), data)
        for start in range(0, len(body) // 2, 64 * 1024):  # slowly, half of it
            sock.sendall(body[start : start + 64 * 1024])
            time.sleep(0.01)
        server.kill()
        sock.close()
    assert sqlite_images(embedded_env) == 0
    assert blob_folder_files(embedded_env) == []
    assert doctor(embedded_env).returncode == 0


def test_a_server_killed_after_storing_the_original_but_before_its_row_leaves_an_orphan_the_doctor_removes(
    embedded_env, tmp_path: Path
) -> None:
    data = noise_jpeg()
    storage = LocalFolderBlobStorage(Path(embedded_env["IMAGIFY_DATA_DIR"]) / "blobs")
    with serving(embedded_env, tmp_path / "serve") as server:
        bearer = token(server)
        kept = http.post(f"{server.base}/api/v1/images", files={"file": ("k.jpg", data)},
                          headers={"Authorization": f"Bearer {bearer}"}).json()
        other = sqlite3.connect(Path(embedded_env["IMAGIFY_DATA_DIR"]) / "imagify.db", isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")  # the row must wait; the blob goes first
            sock, body = raw_upload(server, bearer, data)
            sock.sendall(body)
            orphan = wait_for(
                lambda: [k for k in storage.keys("originals/") if k != f"originals/{kept['id']}"],
                what="the original to be stored",
            )[0]
            server.kill()
            sock.close()
        finally:
            other.execute("ROLLBACK")
            other.close()

    assert sqlite_images(embedded_env) == 1  # only the image uploaded before: no half image
    assert storage.open(orphan).read_all() == data
    assert not [f for f in blob_folder_files(embedded_env) if ".tmp-" in f]
    assert_doctor_finds_and_fixes(embedded_env, orphan)
    assert sorted(storage.keys()) == [f"originals/{kept['id']}"]

    with serving(embedded_env, tmp_path / "again") as server:  # the survivor is whole
        original = http.get(f"{server.base}/api/v1/images/{kept['id']}/original",
                             headers={"Authorization": f"Bearer {token(server)}"})
        assert original.status_code == 200 and original.content == data


# Cloud: MariaDB behind a proxy, S3 on moto


def test_a_cloud_server_killed_while_the_database_hangs_after_the_s3_write_leaves_an_orphan_the_doctor_removes(
    tmp_path: Path, mysql_database, s3_bucket
) -> None:
    endpoint, bucket = s3_bucket
    database = mysql_database()
    env = {
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_DATABASE_URL": database,
        "IMAGIFY_STORAGE_URL": f"s3://{bucket}/app",
        "IMAGIFY_S3_ENDPOINT_URL": endpoint,
        "IMAGIFY_SECRET_KEY": "crash-test-secret-of-at-least-32-characters",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
        **AWS_TEST_ENV,
    }
    prepare(env)
    s3: Any = boto3.session.Session().client("s3", endpoint_url=endpoint)

    def originals() -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="app/originals/").get("Contents", [])
        return [o["Key"].removeprefix("app/") for o in listed]

    data = noise_jpeg()
    with TcpProxy(*host_port(database)) as proxy:
        served = {**env, "IMAGIFY_DATABASE_URL": through(database, proxy)}
        with serving(served, tmp_path / "serve") as server:
            sock, body = raw_upload(server, token(server), data)
            time.sleep(0.3)  # the request is authenticated; its body is on the way
            proxy.stall()  # the database stops answering
            sock.sendall(body)
            orphan = wait_for(originals, what="the original in S3")[0]
            server.kill()
            sock.close()

    engine = make_engine(database)
    try:
        assert count_rows(engine, "images") == 0  # no half image
    finally:
        engine.dispose()
    assert s3.get_object(Bucket=bucket, Key=f"app/{orphan}")["Body"].read() == data
    assert_doctor_finds_and_fixes(env, orphan)
    assert originals() == []
