"""The database unreachable, hung or locked: 503 (never 500), and recovery with no restart.

MariaDB sits behind a loopback proxy the test cuts, stalls and restores. SQLite is a
file in the process, with no connection to lose: its realistic fault is another process
(a backup, a migration, an `sqlite3` shell) holding the write lock longer than the busy
timeout, so that is what the SQLite test does.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from imagify.adapters.sql import unit_of_work
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
from tests.integration.faults import TcpProxy, count_rows, host_port, through

pytestmark = pytest.mark.integration

App = tuple[Container, TestClient, Account]


@pytest.fixture
def db_proxy(mysql_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(*host_port(mysql_url)) as proxy:
        yield proxy


@pytest.fixture
def mysql_app(tmp_path: Path, mysql_database, db_proxy: TcpProxy) -> Iterator[App]:
    # Short I/O timeouts (set in the URL) so a hung server is noticed within the test.
    url = through(mysql_database(), db_proxy) + "&read_timeout=2&write_timeout=2&connect_timeout=2"
    with running_app(embedded_settings(tmp_path, IMAGIFY_DATABASE_URL=url)) as (container, client):
        yield container, client, login(container, client, "ann", "enterprise")


def test_mariadb_down_is_503_on_every_api_route_and_recovers_on_the_next_request(
    mysql_app: App, db_proxy: TcpProxy
) -> None:
    container, client, ann = mysql_app
    assert upload(client, ann).status_code == 201
    db_proxy.down()  # every pooled connection is reset, and each new one

    for response in (
        client.get("/api/v1/images", headers=ann.headers),
        client.get("/api/v1/me", headers=ann.headers),
        upload(client, ann),
        client.post("/api/v1/auth/token", json={"username": "ann", "password": "a-long-password"}),
    ):
        assert "database" in assert_error(response, 503)
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
    assert len(list(container.blobs().keys())) == 1  # the refused upload stored nothing

    db_proxy.up()
    # Pre-ping replaces the dead pooled connections: the first request already succeeds.
    first = client.get("/api/v1/images", headers=ann.headers)
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 1
    assert upload(client, ann).status_code == 201
    assert client.get("/health/ready").status_code == 200


def test_a_hung_mariadb_is_503_after_the_io_timeout_not_a_request_held_forever(
    mysql_app: App, db_proxy: TcpProxy
) -> None:
    container, client, ann = mysql_app
    db_proxy.stall()  # accepts, answers nothing

    started = time.monotonic()
    assert "database" in assert_error(client.get("/api/v1/images", headers=ann.headers), 503)
    assert time.monotonic() - started < 15

    db_proxy.up()
    responses = [client.get("/api/v1/images", headers=ann.headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert count_rows(container.engine(), "images") == 0


@pytest.fixture
def sqlite_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    # Wait 0.3 s (not 10) for a lock, so the test is quick; the path is the same.
    pragmas = tuple(
        "PRAGMA busy_timeout=300" if p.startswith("PRAGMA busy_timeout") else p
        for p in unit_of_work.SQLITE_PRAGMAS
    )
    monkeypatch.setattr(unit_of_work, "SQLITE_PRAGMAS", pragmas)
    with running_app(embedded_settings(tmp_path)) as (container, client):
        yield container, client, login(container, client, "ann", "enterprise")


def test_sqlite_locked_by_another_process_is_503_for_writes_while_reads_go_on(sqlite_app: App) -> None:
    container, client, ann = sqlite_app
    kept = upload(client, ann).json()["id"]
    database = container.settings().database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # as a backup or a long migration would

        detail = assert_error(upload(client, ann, image_bytes("PNG")), 503)
        assert "database" in detail and "locked" in detail, detail
        assert "database" in assert_error(client.delete(f"/api/v1/images/{kept}", headers=ann.headers), 503)
        listed = client.get("/api/v1/images", headers=ann.headers)  # WAL: readers never wait
        assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [kept]
    finally:
        other.execute("ROLLBACK")
        other.close()

    # The refused upload's bytes were removed; nothing is left but the kept image.
    assert list(container.blobs().keys()) == [f"originals/{kept}"]
    assert upload(client, ann).status_code == 201
    assert client.delete(f"/api/v1/images/{kept}", headers=ann.headers).status_code == 204


def test_mysql_connections_give_up_on_a_silent_server_by_default(mysql_url: str) -> None:
    engine = unit_of_work.make_engine(mysql_url)
    try:
        raw = engine.raw_connection()
        connection = raw.driver_connection
        assert (connection.connect_timeout, connection._read_timeout, connection._write_timeout) == (5, 60, 60)
        raw.close()
    finally:
        engine.dispose()
    engine = unit_of_work.make_engine(mysql_url + "&read_timeout=600", io_timeout=None)
    try:
        raw = engine.raw_connection()
        assert raw.driver_connection._read_timeout == 600  # the URL wins
        raw.close()
    finally:
        engine.dispose()
