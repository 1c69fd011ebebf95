"""Test data for the benchmarks: photo-like images, and a seeded deployment (embedded or cloud)."""

from __future__ import annotations

import io
import os
import secrets
import tempfile
from contextlib import ExitStack, contextmanager
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops

from bench.common import SECRET

PASSWORD = "bench-password-1234"
REDIS_URL = os.environ.get("IMAGIFY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
MYSQL_URL = os.environ.get("IMAGIFY_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def photo_like(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Deterministic: two gradients for colour, Gaussian noise for texture (compresses like a photo)."""
    w, h = size
    horizontal = Image.linear_gradient("L").resize((w, h)).rotate(90 + seed, expand=False)
    vertical = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40)
    texture = ImageChops.add(noise, vertical, scale=2.0)
    return Image.merge("RGB", (horizontal, texture, ImageChops.invert(vertical)))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}) | options)
    return out.getvalue()


def megapixel_size(megapixels: float) -> tuple[int, int]:
    """4:3 landscape with about that many pixels."""
    h = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    return round(h * 4 / 3), h


# Deployments.


def cloud_available() -> str | None:
    """None when MariaDB, Redis and moto are all usable, else why not."""
    try:
        import pymysql
        import redis
        from moto.server import ThreadedMotoServer  # noqa: F401
        from sqlalchemy import make_url
    except ImportError as error:
        return f"missing Python package: {error.name}"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as error:  # noqa: BLE001
        return f"Redis at {REDIS_URL} does not answer: {error}"
    url = make_url(MYSQL_URL)
    try:
        pymysql.connect(host=url.host, port=url.port or 3306, user=url.username or "root",
                        password=url.password or "", connect_timeout=3).close()  # fmt: skip
    except Exception as error:  # noqa: BLE001
        return f"MariaDB at {url.host}:{url.port or 3306} does not answer: {error}"
    return None


@dataclass
class Deployment:
    """Where an Imagify runs: its environment (for `imagify serve`) and seeded data."""

    name: str
    env: dict[str, str]
    workdir: Path
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    link_token: str = ""
    thumb_height: int = 200

    def settings(self):  # type: ignore[no-untyped-def]
        from imagify.settings import load_settings

        return load_settings(self.env, dotenv=None)


@contextmanager
def deployment(name: str, workdir: Path) -> Iterator[Deployment]:
    """An empty, migrated Imagify: embedded (SQLite, folder) or cloud (MariaDB, moto S3, Redis)."""
    from imagify.adapters.sql.migrate import upgrade

    with ExitStack() as stack:
        data = workdir / name
        data.mkdir(parents=True, exist_ok=True)
        env = {
            "IMAGIFY_DATA_DIR": str(data),
            "IMAGIFY_SECRET_KEY": SECRET,
            "IMAGIFY_ADMIN_PASSWORD": PASSWORD,
            "BENCH_CWD": str(data),  # no stray .env is read
        }
        if name == "cloud":
            env |= stack.enter_context(_cloud_services())
            os.environ.update(AWS_ENV)
        dep = Deployment(name, env, data)
        upgrade(dep.settings().database_url)
        yield dep


@contextmanager
def _cloud_services() -> Iterator[dict[str, str]]:
    import boto3
    import pymysql
    from moto.server import ThreadedMotoServer
    from sqlalchemy import make_url

    os.environ.update(AWS_ENV)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    url = make_url(MYSQL_URL)
    admin = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username or "root",
                            password=url.password or "", autocommit=True)  # fmt: skip
    database = f"imagify_bench_{secrets.token_hex(4)}"
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"imagify-bench-{secrets.token_hex(4)}"
        boto3.session.Session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        db_url = url.set(database=database).update_query_dict({"charset": "utf8mb4"})
        yield {
            "IMAGIFY_DATABASE_URL": db_url.render_as_string(hide_password=False),
            "IMAGIFY_STORAGE_URL": f"s3://{bucket}/images",
            "IMAGIFY_S3_ENDPOINT_URL": endpoint,
            "IMAGIFY_REDIS_URL": REDIS_URL,
            **AWS_ENV,
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
        moto.stop()


def seed(dep: Deployment, images: int, photo: bytes, original: bytes) -> None:
    """A user on the enterprise tier, `images` uploads (the last one `original`), a link to it."""
    from imagify.entrypoints.container import build_container, shutdown

    container = build_container(dep.settings())
    try:
        container.admin().create_user("bench", "bench", PASSWORD, ["enterprise"], False)
        user = container.auth().authenticate(_token(container, "bench"))
        service = container.images()
        ids = []
        for n in range(images):
            data = original if n == images - 1 else photo
            with tempfile.SpooledTemporaryFile() as f:
                f.write(data)
                ids.append(service.upload(user, f"photo-{n}.jpg", f, len(data)).id)
        dep.image_ids = ids
        dep.link_token = container.link_service().create(user, ids[-1], 30000).token
        dep.token = _token(container, "bench")
        dep.headers = {"Authorization": f"Bearer {dep.token}"}
    finally:
        shutdown(container)


def _token(container, username: str) -> str:  # type: ignore[no-untyped-def]
    with container.uow()() as uow:
        user = uow.users.get_by_username(username)
    return container.signer().issue(user.id, 0, container.clock().now())[0]
