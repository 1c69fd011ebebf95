"""Plans across two server processes: quotas never overshoot, revokes apply everywhere at once.

Embedded: SQLite and the SQL link store, shared through one data folder. Cloud: MySQL,
S3 and the Redis link store.
"""

from __future__ import annotations

import io
import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image as PILImage

from tests.integration.test_two_processes import (  # noqa: F401  (fixtures)
    PASSWORD,
    _token,
    cloud_env,
    embedded_env,
    two_servers_any,
)


# Generous: under a loaded machine a server's first upload waits for its decode workers.
http = httpx.Client(timeout=60)


def _small_jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (32 + seed % 7, 24), (seed % 256, 40, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_32_concurrent_uploads_through_two_processes_against_a_limit_of_10_leave_exactly_10(two_servers_any):
    a, b, env = two_servers_any
    username = env["TEST_USERNAME"]
    admin = _token(a, "admin", env["IMAGIFY_ADMIN_PASSWORD"])
    tier = f"ten-{secrets.token_hex(3)}"  # the cloud database lives for the whole session
    made = http.post(f"{a}/api/v1/admin/tiers", headers=admin, json={
        "name": tier, "permissions": ["thumbnail:200"], "limits": {"max_images": 10},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    moved = http.patch(f"{b}/api/v1/admin/users/{username}", json={"tiers": [tier]}, headers=admin)
    assert moved.status_code == 200, moved.text
    ann = _token(a, username, PASSWORD)

    def send(i: int) -> int:
        base = a if i % 2 else b
        files = {"file": (f"{i}.jpg", _small_jpeg(i))}
        return http.post(f"{base}/api/v1/images", files=files, headers=ann).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(send, range(32)))
    assert sorted(statuses) == [201] * 10 + [403] * 22
    for base in (a, b):
        listed = http.get(f"{base}/api/v1/images", params={"limit": 100}, headers=ann).json()["items"]
        assert len(listed) == 10
        usage = http.get(f"{base}/api/v1/me", headers=ann).json()["usage"]
        assert usage == {"images": 10, "storage_bytes": sum(i["size_bytes"] for i in listed)}

    # A delete through one process frees a place for an upload through the other.
    assert http.delete(f"{a}/api/v1/images/{listed[0]['id']}", headers=ann).status_code == 204
    assert send(0) == 201  # through b
    assert send(2) == 403


def test_links_listed_and_revoked_through_one_process_are_refused_at_once_by_the_other(two_servers_any):
    a, b, env = two_servers_any
    ann = _token(a, env["TEST_USERNAME"], PASSWORD)
    uploaded = http.post(f"{a}/api/v1/images", files={"file": ("x.jpg", _small_jpeg(1))}, headers=ann)
    assert uploaded.status_code == 201, uploaded.text
    links = f"/api/v1/images/{uploaded.json()['id']}/expiring-links"
    tokens = [
        http.post(f"{a}{links}", json={"seconds": s}, headers=ann).json()["token"] for s in (300, 600)
    ]
    for _ in range(2):  # b remembers both after the first read
        assert [http.get(f"{b}/l/{t}").status_code for t in tokens] == [200, 200]
    listed = http.get(f"{b}{links}", headers=ann).json()
    assert len(listed) == 2 and not any(t in str(listed) for t in tokens)

    assert http.delete(f"{a}{links}/{listed[0]['id']}", headers=ann).status_code == 204
    assert [http.get(f"{b}/l/{t}").status_code for t in tokens] == [404, 200]
    assert [i["id"] for i in http.get(f"{b}{links}", headers=ann).json()] == [listed[1]["id"]]

    assert http.get(f"{a}/l/{tokens[1]}").status_code == 200  # a remembers it too
    assert http.delete(f"{b}{links}", headers=ann).status_code == 204
    assert [http.get(f"{base}/l/{tokens[1]}").status_code for base in (a, b)] == [404, 404]
    assert http.get(f"{a}{links}", headers=ann).json() == []
