"""`imagify doctor` on real storage and databases, and `keys()` of both blob storages."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client
from imagify.domain.ports import BlobStorage
from imagify.entrypoints.cli import main
from imagify.settings import Settings
from tests.integration.conftest import image_bytes, upload

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "cloud"])
def backend(request: pytest.FixtureRequest) -> str:
    """The doctor reads rows and blobs, not renders: the Lambda backend adds nothing here."""
    return str(request.param)


def run_doctor(settings: Settings, *args: str) -> Result:
    env = {
        f"IMAGIFY_{name.upper()}": str(value)
        for name in Settings.__struct_fields__
        if (value := getattr(settings, name)) not in (None, "")
    }
    return CliRunner().invoke(main, ["doctor", *args], env=env)


def test_the_doctor_reports_then_fixes_orphaned_blobs_and_rows_whose_blob_is_gone(
    container, client, make_user, settings  # noqa: ANN001
) -> None:
    ann = make_user("ann", "enterprise")
    kept, lost, thumbed = (upload(client, ann, image_bytes()).json()["id"] for _ in range(3))
    for height in (200, 400):
        assert client.get(f"/api/v1/images/{thumbed}/thumbnails/{height}", headers=ann.headers).status_code == 200
    link = client.post(f"/api/v1/images/{lost}/expiring-links", json={"seconds": 600}, headers=ann.headers)
    blobs = container.blobs()
    thumbs = sorted(blobs.keys(f"thumbnails/{thumbed}/"))
    lost_thumb = next(k for k in thumbs if k.split("/")[-1].startswith("400-"))
    # What crashes and accidents leave: bytes with no row, rows with no bytes.
    blobs.delete(f"originals/{lost}")
    blobs.delete(lost_thumb)
    blobs.put("originals/0123456789abcdef0123456789abcdef", b"half an upload", "image/jpeg")
    blobs.put(f"thumbnails/{thumbed}/200-losingrender", b"a render that lost", "image/jpeg")

    young = run_doctor(settings)  # the default grace period: new blobs may be in flight
    assert young.exit_code == 1, young.output
    assert sorted(line.split(":")[0] for line in young.output.splitlines()[:-1]) == [
        "missing original", "missing thumbnail",
    ]

    report = run_doctor(settings, "--min-age-seconds", "0")
    assert report.exit_code == 1, report.output
    lines = report.output.splitlines()
    assert sorted(lines[:-1]) == sorted([
        f"missing original: originals/{lost}: image {lost} ('cat.jpg' of ann) has no stored original",
        f"missing thumbnail: {lost_thumb}: the 400px thumbnail of image {thumbed} has no stored bytes",
        "orphaned blob: originals/0123456789abcdef0123456789abcdef: "
        "a stored original that no row names (image 0123456789abcdef0123456789abcdef)",
        f"orphaned blob: thumbnails/{thumbed}/200-losingrender: "
        f"a stored thumbnail that no row names (image {thumbed})",
    ])
    assert lines[-1] == (
        "checked 3 images, 2 thumbnails, 5 blobs: 4 problems (1 missing original, "
        "1 missing thumbnail, 2 orphaned blobs); none fixed (run with --fix to remove them)"
    )
    assert client.get(f"/api/v1/images/{lost}", headers=ann.headers).status_code == 200  # untouched

    fixed = run_doctor(settings, "--fix", "--min-age-seconds", "0")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.count("[fixed]") == 4
    assert fixed.output.splitlines()[-1].endswith("all fixed")

    assert client.get(f"/api/v1/images/{lost}", headers=ann.headers).status_code == 404
    assert client.get(f"/l/{link.json()['token']}").status_code == 404
    listed = client.get("/api/v1/images", headers=ann.headers).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted([kept, thumbed])
    again = client.get(f"/api/v1/images/{thumbed}/thumbnails/400", headers=ann.headers)
    assert again.status_code == 200 and again.content  # rendered anew
    assert client.get(f"/api/v1/images/{kept}/original", headers=ann.headers).content == image_bytes()
    clean = run_doctor(settings, "--min-age-seconds", "0")
    assert clean.exit_code == 0 and clean.output.endswith("no problems found\n"), clean.output


def test_a_clean_store_exits_0_and_a_negative_grace_period_is_refused(container, settings) -> None:  # noqa: ANN001
    clean = run_doctor(settings)
    assert clean.exit_code == 0 and clean.output == "checked 0 images, 0 thumbnails, 0 blobs: no problems found\n"
    refused = run_doctor(settings, "--min-age-seconds", "-1")
    assert refused.exit_code == 2 and "min-age-seconds" in refused.output


# keys(), on both storages


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStorage:
    if request.param == "local":
        return LocalFolderBlobStorage(tmp_path / "blobs")
    endpoint, bucket = request.getfixturevalue("s3_bucket")
    return S3BlobStorage(make_s3_client(endpoint), bucket, prefix="tenant/blobs")


def test_keys_lists_what_was_put_under_a_prefix_and_nothing_else(storage: BlobStorage) -> None:
    assert list(storage.keys()) == []
    for key in ("originals/a", "originals/b", "thumbnails/a/200-x"):
        storage.put(key, b"bytes", "image/jpeg")
    storage.delete("originals/b")
    assert sorted(storage.keys()) == ["originals/a", "thumbnails/a/200-x"]
    assert list(storage.keys("thumbnails/")) == ["thumbnails/a/200-x"]
    assert list(storage.keys("nothing/")) == []


def test_keys_modified_before_leaves_out_blobs_written_since(storage: BlobStorage, tmp_path: Path) -> None:
    storage.put("originals/old", b"bytes", "image/jpeg")
    if isinstance(storage, LocalFolderBlobStorage):
        past = time.time() - 7200
        os.utime(tmp_path / "blobs" / "originals" / "old", (past, past))
    else:
        time.sleep(1.1)  # S3 keeps LastModified to the second
    # To the second: S3 keeps LastModified to the second, so a blob put after the cutoff
    # is never listed as written before it.
    cutoff = datetime.now(UTC).replace(microsecond=0)
    storage.put("originals/new", b"bytes", "image/jpeg")
    assert list(storage.keys("originals/", modified_before=cutoff)) == ["originals/old"]


def test_local_keys_skip_temporary_and_metadata_files(tmp_path: Path) -> None:
    storage = LocalFolderBlobStorage(tmp_path / "blobs")
    storage.put("originals/a", b"bytes", "image/jpeg")
    (tmp_path / "blobs" / "originals" / ".tmp-crashedput").write_bytes(b"half")
    assert list(storage.keys()) == ["originals/a"]


def test_the_doctor_finds_then_removes_images_whose_owner_is_gone(
    container, client, make_user, settings  # noqa: ANN001
) -> None:
    ann = make_user("ann", "basic")
    image_id = upload(client, ann, image_bytes()).json()["id"]
    with container.uow()() as uow:  # a user deletion killed after the user's row went
        user = uow.users.get_by_username("ann")
        uow.users.delete(user.id)
        uow.commit()

    report = run_doctor(settings)
    assert report.exit_code == 1, report.output
    assert report.output.splitlines()[0] == (
        f"ownerless image: originals/{image_id}: "
        f"image {image_id} ('cat.jpg') of user {user.id}, who no longer exists"
    )
    fixed = run_doctor(settings, "--fix")
    assert fixed.exit_code == 0 and fixed.output.count("[fixed]") == 1, fixed.output
    assert list(container.blobs().keys()) == []
    assert run_doctor(settings, "--min-age-seconds", "0").exit_code == 0


@pytest.mark.parametrize("backend", ["embedded"])  # S3's leftovers, unfinished uploads: test_faults_storage
def test_the_doctor_removes_old_temporary_files_of_a_killed_write(container, settings) -> None:  # noqa: ANN001
    folder = Path(settings.data_dir) / "blobs" / "originals"
    folder.mkdir(parents=True)
    old, young = folder / ".tmp-killedwrite", folder / ".tmp-inflight"
    for path in (old, young):
        path.write_bytes(b"half an image")
    past = time.time() - 7200
    os.utime(old, (past, past))

    report = run_doctor(settings)
    assert report.exit_code == 1, report.output
    assert report.output.splitlines()[0] == (
        "temporary file: originals/.tmp-killedwrite: left by a write that never finished"
    )
    fixed = run_doctor(settings, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert not old.exists() and young.exists()
