"""Load: eight clients at once on a real `imagify serve` (two worker processes), then an audit.

Fixed request counts, no timing assertions. Each client uploads, lists, fetches thumbnails
(its own and, racing their deletion, its partner's), makes and follows expiring links and
deletes a quarter of what it uploaded. Afterwards: nothing was answered 5xx, every
acknowledged upload still there has its exact bytes, every deleted one is gone from the
database and the storage, and `imagify doctor` finds nothing out of place.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image as PILImage

from imagify.adapters.sql.unit_of_work import make_engine
from imagify.entrypoints.container import build_container, shutdown
from imagify.settings import load_settings
from tests.integration.faults import count_rows, run_cli, serving
from tests.integration.services import AWS_TEST_ENV

pytestmark = pytest.mark.integration

CLIENTS = 8
ROUNDS = 40  # per client
PASSWORD = "a-long-password"


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    uploaded: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (owner, bytes)
    deleted: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)  # token -> image id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, response: httpx.Response, allowed: tuple[int, ...]) -> httpx.Response:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code not in allowed:
                self.errors.append(
                    f"{response.request.method} {response.request.url.path} -> "
                    f"{response.status_code} {response.text[:200]}"
                )
        return response


def unique_jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    image = PILImage.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(40):
        image.putpixel((rng.randrange(320), rng.randrange(240)), (rng.randrange(256), 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def client_run(base: str, number: int, username: str, token: str, tally: Tally) -> None:
    rng = random.Random(number)
    auth = {"Authorization": f"Bearer {token}"}
    mine: list[str] = []
    with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
        for round_ in range(ROUNDS):
            data = unique_jpeg(number * 1000 + round_)
            created = tally.saw(http.post("/api/v1/images", files={"file": ("x.jpg", data)}), (201,))
            if created.status_code == 201:
                image_id = created.json()["id"]
                mine.append(image_id)
                with tally.lock:
                    tally.uploaded[image_id] = (username, data)
            listed = tally.saw(http.get("/api/v1/images", params={"limit": 10}), (200,))
            if mine:
                own = rng.choice(mine)
                tally.saw(http.get(f"/api/v1/images/{own}/thumbnails/{rng.choice((200, 400))}"), (200,))
            if listed.status_code == 200 and listed.json()["items"]:
                # Possibly the partner client's image, possibly being deleted right now.
                anyone = rng.choice(listed.json()["items"])["id"]
                tally.saw(http.get(f"/api/v1/images/{anyone}/thumbnails/200"), (200, 404))
            if mine and round_ % 3 == 0:
                target = rng.choice(mine)
                link = tally.saw(
                    http.post(f"/api/v1/images/{target}/expiring-links", json={"seconds": 600}), (201,)
                )
                if link.status_code == 201:
                    token_ = link.json()["token"]
                    with tally.lock:
                        tally.links[token_] = target
                    tally.saw(httpx.get(f"{base}/l/{token_}", timeout=60), (200,))
            if len(mine) > 1 and round_ % 4 == 3:
                victim = mine.pop(rng.randrange(len(mine)))
                tally.saw(http.delete(f"/api/v1/images/{victim}"), (204,))
                with tally.lock:
                    tally.deleted.add(victim)


def run_load(env: dict[str, str], folder: Path) -> tuple[Tally, float, list[str]]:
    users = [f"user{i}" for i in range(CLIENTS // 2)]  # two clients per user
    settings = load_settings(env, dotenv=None)
    container = build_container(settings)
    try:
        for username in users:
            container.admin().create_user("tests", username, PASSWORD, ["enterprise"])
    finally:
        shutdown(container)
    tally = Tally()
    with serving(env, folder / "serve", workers=2) as server:
        tokens = {
            u: httpx.post(f"{server.base}/api/v1/auth/token", json={"username": u, "password": PASSWORD}).json()["access_token"]
            for u in users
        }
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(client_run, server.base, n, users[n % len(users)], tokens[users[n % len(users)]], tally)
                for n in range(CLIENTS)
            ]
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        audit(server.base, tally, tokens)
    log_5xx = [line for line in server.log.read_text().splitlines() if '"status": 5' in line or " 500 " in line]
    return tally, elapsed, log_5xx


def audit(base: str, tally: Tally, tokens: dict[str, str]) -> None:
    """Every kept upload whole; every deleted one, and its links, gone."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for image_id, (owner, data) in tally.uploaded.items():
            auth = {"Authorization": f"Bearer {tokens[owner]}"}
            response = http.get(f"/api/v1/images/{image_id}/original", headers=auth)
            if image_id in tally.deleted:
                assert response.status_code == 404, (image_id, response.status_code)
            else:
                assert response.status_code == 200, (image_id, response.text)
                assert response.content == data, f"{image_id}: bytes differ"
        for token, image_id in tally.links.items():
            expected = 404 if image_id in tally.deleted else 200
            assert http.get(f"/l/{token}").status_code == expected


def report(name: str, tally: Tally, elapsed: float) -> None:
    total = sum(tally.statuses.values())
    print(
        f"\n[load {name}] {total} requests by {CLIENTS} clients in {elapsed:.1f} s "
        f"({total / elapsed:.0f} requests/s); {len(tally.uploaded)} uploads, "
        f"{len(tally.deleted)} deleted, {len(tally.links)} links; statuses {dict(sorted(tally.statuses.items()))}"
    )


def assert_storage_and_rows(env: dict[str, str], tally: Tally, blob_keys: list[str]) -> None:
    kept = set(tally.uploaded) - tally.deleted
    assert {k.removeprefix("originals/") for k in blob_keys if k.startswith("originals/")} == kept
    for image_id in tally.deleted:
        assert not any(image_id in key for key in blob_keys), f"a blob of deleted {image_id} is left"
    engine = make_engine(env["IMAGIFY_DATABASE_URL"] if "IMAGIFY_DATABASE_URL" in env
                         else f"sqlite:///{env['IMAGIFY_DATA_DIR']}/imagify.db")
    try:
        assert count_rows(engine, "images") == len(kept)
        from sqlalchemy import text

        with engine.connect() as connection:
            ids = set(connection.execute(text("SELECT id FROM images")).scalars())
            rendered = set(connection.execute(text("SELECT DISTINCT image_id FROM renditions")).scalars())
        assert ids == kept
        assert rendered <= kept, f"renditions of deleted images: {rendered - kept}"
    finally:
        engine.dispose()
    doctor = run_cli(env, "doctor", "--min-age-seconds", "0")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def check(name: str, env: dict[str, str], tally: Tally, elapsed: float, log_5xx: list[str], keys: list[str]) -> None:
    report(name, tally, elapsed)
    assert tally.errors == [], "\n".join(tally.errors[:20])
    assert not [s for s in tally.statuses if s >= 500]
    assert log_5xx == [], "\n".join(log_5xx[:5])
    assert_storage_and_rows(env, tally, keys)


def test_load_embedded(tmp_path: Path) -> None:
    env = {
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_SECRET_KEY": "load-test-secret-of-at-least-32-characters",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
    }
    prepare_schema(env)
    tally, elapsed, log_5xx = run_load(env, tmp_path)
    from imagify.adapters.local_storage import LocalFolderBlobStorage

    keys = sorted(LocalFolderBlobStorage(tmp_path / "var" / "blobs").keys())
    check("embedded", env, tally, elapsed, log_5xx, keys)


def test_load_cloud(tmp_path: Path, mysql_database, s3_bucket, redis_client, redis_url) -> None:
    endpoint, bucket = s3_bucket
    env = {
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_DATABASE_URL": mysql_database(),
        "IMAGIFY_STORAGE_URL": f"s3://{bucket}/load",
        "IMAGIFY_S3_ENDPOINT_URL": endpoint,
        "IMAGIFY_REDIS_URL": redis_url,
        "IMAGIFY_SECRET_KEY": "load-test-secret-of-at-least-32-characters",
        "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test",
        **AWS_TEST_ENV,
    }
    prepare_schema(env)
    tally, elapsed, log_5xx = run_load(env, tmp_path)
    from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client

    keys = sorted(S3BlobStorage(make_s3_client(endpoint), bucket, "load").keys())
    check("cloud", env, tally, elapsed, log_5xx, keys)


def prepare_schema(env: dict[str, str]) -> None:
    from imagify.adapters.sql.migrate import upgrade

    upgrade(load_settings(env, dotenv=None).database_url)
