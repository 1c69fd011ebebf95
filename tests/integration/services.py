"""Fixtures for the real services: S3 on a moto server, Redis, a fresh MariaDB database.

Import them into a conftest.py or a test module:
`from tests.integration.services import moto_server, s3_bucket, redis_client, redis_url, mysql_url`.
Each service is found by an environment variable with the machine's default, and a test
skips, saying why, only when its service is absent.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import boto3
import pymysql
import pytest
import redis
from moto.server import ThreadedMotoServer
from sqlalchemy import URL, make_url



def _redis_url() -> str:
    """db 11, or under pytest-xdist db 11 + the worker's number, so parallel workers never flush each other's."""
    if "IMAGIFY_TEST_REDIS_URL" in os.environ:
        return os.environ["IMAGIFY_TEST_REDIS_URL"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3" -> 3
    return f"redis://127.0.0.1:6379/{11 + int(worker.removeprefix('gw'))}"


REDIS_URL = _redis_url()
MYSQL_URL = os.environ.get("IMAGIFY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of an S3 (moto) server on a free loopback port, with dummy credentials."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_TEST_ENV.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(moto_server: str) -> Iterator[tuple[str, str]]:
    """A fresh, empty bucket on the moto server: (endpoint_url, bucket)."""
    s3 = _s3_admin(moto_server)
    bucket = f"imagify-test-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=bucket)
    yield moto_server, bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@cache
def _s3_admin(endpoint_url: str) -> Any:
    # One client per server: building a boto3 client costs a few hundred milliseconds.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis database (db 11 + the xdist worker's number unless IMAGIFY_TEST_REDIS_URL says otherwise)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test database, emptied before and after the test."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _connect(server: URL, **options: Any) -> pymysql.Connection:
    return pymysql.connect(
        host=server.host or "127.0.0.1",
        port=server.port or 3306,
        user=server.username or "root",
        password=server.password or "",
        connect_timeout=3,
        **options,
    )


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A fresh `imagify_<hex>` database on MariaDB for the session, dropped afterwards."""
    server = make_url(MYSQL_URL)
    try:
        admin = _connect(server)
    except pymysql.err.OperationalError as error:
        pytest.skip(f"MariaDB is not reachable at {server.host}:{server.port or 3306}: {error}")
    name = f"imagify_{secrets.token_hex(4)}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        url = server.set(database=name).update_query_dict({"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def mysql_database(mysql_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty MariaDB databases for one test, all dropped afterwards."""
    server = make_url(mysql_url).set(database=None)
    made: list[str] = []
    admin = _connect(server, autocommit=True)

    def make() -> str:
        name = f"imagify_{secrets.token_hex(4)}"
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        made.append(name)
        url = server.set(database=name).update_query_dict({"charset": "utf8mb4"})
        return url.render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.cursor() as cursor:
            for name in made:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


class MigratedDatabases:
    """MariaDB databases at the latest migration, lent to one test at a time.

    Migrating a fresh database costs about half a second; a returned one is emptied back to
    the rows its migrations wrote (the built-in tiers) in a few milliseconds, so each test
    still starts from what a fresh `imagify migrate` leaves.
    """

    def __init__(self, server: URL) -> None:
        self._server = server
        self._admin = _connect(server, autocommit=True)
        self._free: list[str] = []
        self._made: list[str] = []
        self._seed: dict[str, tuple[list[str], list[tuple[Any, ...]]]] | None = None

    def borrow(self) -> str:
        if self._free:
            return self._url(self._free.pop())
        from imagify.adapters.sql.migrate import upgrade

        name = f"imagify_{secrets.token_hex(4)}"
        with self._admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        self._made.append(name)
        upgrade(self._url(name))
        if self._seed is None:
            self._seed = self._rows(name)
        return self._url(name)

    def give_back(self, url: str) -> None:
        name = make_url(url).database
        assert name in self._made and self._seed is not None
        try:
            with self._admin.cursor() as cursor:
                cursor.execute("SET SESSION lock_wait_timeout = 10")
                cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
                for table, (columns, rows) in self._seed.items():
                    cursor.execute(f"DELETE FROM `{name}`.`{table}`")
                    if rows:
                        names = ", ".join(f"`{c}`" for c in columns)
                        marks = ", ".join(["%s"] * len(columns))
                        cursor.executemany(f"INSERT INTO `{name}`.`{table}` ({names}) VALUES ({marks})", rows)
                cursor.execute(f"ALTER TABLE `{name}`.`users` AUTO_INCREMENT = 1")
                cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        except pymysql.err.MySQLError:  # a test left it locked or changed: not lent again
            return
        self._free.append(name)

    def close(self) -> None:
        with self._admin.cursor() as cursor:
            for name in self._made:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        self._admin.close()

    def _url(self, name: str) -> str:
        url = self._server.set(database=name).update_query_dict({"charset": "utf8mb4"})
        return url.render_as_string(hide_password=False)

    def _rows(self, name: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        with self._admin.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name <> 'alembic_version'", (name,)
            )
            tables = sorted(row[0] for row in cursor.fetchall())
            seed = {}
            for table in tables:
                cursor.execute(f"SELECT * FROM `{name}`.`{table}`")
                seed[table] = ([d[0] for d in cursor.description], list(cursor.fetchall()))
        return seed


@pytest.fixture(scope="session")
def _migrated_databases(mysql_url: str) -> Iterator[MigratedDatabases]:
    pool = MigratedDatabases(make_url(mysql_url).set(database=None))
    yield pool
    pool.close()


@pytest.fixture
def migrated_mysql_database(_migrated_databases: MigratedDatabases) -> Iterator[Callable[[], str]]:
    """A factory of MariaDB databases at the latest migration, as fresh as `imagify migrate`
    leaves them, for one test (emptied and lent again afterwards)."""
    lent: list[str] = []

    def borrow() -> str:
        lent.append(_migrated_databases.borrow())
        return lent[-1]

    yield borrow
    for url in lent:
        _migrated_databases.give_back(url)
