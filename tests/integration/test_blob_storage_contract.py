"""One contract for every BlobStorage: a local folder, and S3 on a moto server."""

from __future__ import annotations

import io
import os
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client, parse_s3_url
from imagify.domain.errors import NotFound, Unavailable
from imagify.domain.ports import BlobStorage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_client(moto_server: str) -> Any:
    return make_s3_client(moto_server)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStorage:
    if request.param == "local":
        return LocalFolderBlobStorage(tmp_path / "blobs")
    _, bucket = request.getfixturevalue("s3_bucket")
    return S3BlobStorage(request.getfixturevalue("s3_client"), bucket, prefix="tenant/blobs")


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The contract, on both


def test_bytes_put_come_back_with_their_size_and_content_type(storage: BlobStorage) -> None:
    storage.put("originals/abc", b"\xff\xd8jpeg bytes", "image/jpeg")
    blob = storage.open("originals/abc")
    assert (blob.size, blob.content_type) == (12, "image/jpeg")
    assert blob.read_all() == b"\xff\xd8jpeg bytes"


def test_a_file_object_is_stored_from_its_start_whatever_its_position(storage: BlobStorage) -> None:
    upload = io.BytesIO(b"\x89PNG image")
    upload.read()  # an upload handler may leave the position at the end
    storage.put("originals/png", upload, "image/png")
    blob = storage.open("originals/png")
    assert (blob.size, blob.content_type, blob.read_all()) == (10, "image/png", b"\x89PNG image")


def test_a_5_mb_file_round_trips_in_chunks(storage: BlobStorage, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024)
    source = tmp_path / "big.webp"
    source.write_bytes(data)
    with source.open("rb") as file:
        storage.put("originals/big", file, "image/webp")
    blob = storage.open("originals/big")
    assert (blob.size, blob.content_type) == (len(data), "image/webp")
    chunks = list(blob.chunks(1024 * 1024))
    assert len(chunks) >= 5
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024
    assert b"".join(chunks) == data


def test_putting_a_key_again_replaces_it(storage: BlobStorage) -> None:
    storage.put("thumbnails/abc/200", b"old", "image/jpeg")
    storage.put("thumbnails/abc/200", b"newer", "image/png")
    blob = storage.open("thumbnails/abc/200")
    assert (blob.read_all(), blob.content_type) == (b"newer", "image/png")


def test_opening_a_missing_key_is_not_found(storage: BlobStorage) -> None:
    with pytest.raises(NotFound, match="originals/nothing"):
        storage.open("originals/nothing")


def test_exists_follows_put_and_delete(storage: BlobStorage) -> None:
    assert not storage.exists("originals/abc")
    storage.put("originals/abc", b"x", "image/jpeg")
    assert storage.exists("originals/abc")
    storage.delete("originals/abc")
    assert not storage.exists("originals/abc")
    with pytest.raises(NotFound):
        storage.open("originals/abc")


def test_deleting_is_idempotent(storage: BlobStorage) -> None:
    storage.put("originals/abc", b"x", "image/jpeg")
    storage.delete("originals/abc")
    storage.delete("originals/abc")
    storage.delete("originals/never-there")
    assert not storage.exists("originals/abc")


def test_check_passes_on_a_usable_storage(storage: BlobStorage) -> None:
    storage.check()


# S3 only


def test_deleting_an_images_last_thumbnail_removes_its_folder(tmp_path: Path) -> None:
    storage = LocalFolderBlobStorage(tmp_path / "blobs")
    for key in ("thumbnails/abc/200-jpeg-1", "thumbnails/abc/400-webp-2", "originals/abc"):
        storage.put(key, b"x", "image/jpeg")

    storage.delete("thumbnails/abc/200-jpeg-1")
    assert (tmp_path / "blobs" / "thumbnails" / "abc").is_dir()  # its other thumbnail is there
    storage.delete("thumbnails/abc/400-webp-2")
    storage.delete("originals/abc")

    assert not (tmp_path / "blobs" / "thumbnails" / "abc").exists()
    assert (tmp_path / "blobs" / "thumbnails").is_dir() and (tmp_path / "blobs" / "originals").is_dir()


def test_a_put_whose_folder_a_delete_removes_meanwhile_still_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalFolderBlobStorage(tmp_path / "blobs")
    folder = tmp_path / "blobs" / "thumbnails" / "abc"
    real_mkstemp = tempfile.mkstemp
    raced = []

    def mkstemp_after_a_delete(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if not raced:  # the folder was made; a delete of the image's last file removes it
            raced.append(True)
            folder.rmdir()
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_after_a_delete)
    storage.put("thumbnails/abc/200-jpeg-1", b"thumb", "image/jpeg")

    assert raced and storage.open("thumbnails/abc/200-jpeg-1").read_all() == b"thumb"


def test_s3_keys_live_under_the_prefix(s3_bucket: tuple[str, str], s3_client: Any) -> None:
    _, bucket = s3_bucket
    S3BlobStorage(s3_client, bucket, prefix="/tenant/").put("originals/abc", b"x", "image/jpeg")
    S3BlobStorage(s3_client, bucket).put("originals/def", b"y", "image/jpeg")
    keys = [item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["originals/def", "tenant/originals/abc"]


def test_s3_check_on_a_missing_bucket_names_the_bucket(s3_client: Any) -> None:
    with pytest.raises(Unavailable, match="S3 bucket 'no-such-bucket-here' does not exist"):
        S3BlobStorage(s3_client, "no-such-bucket-here").check()


def test_s3_on_an_unreachable_endpoint_is_unavailable() -> None:
    client = make_s3_client(
        f"http://127.0.0.1:{closed_loopback_port()}", connect_timeout=1, max_attempts=1
    )
    storage = S3BlobStorage(client, "imagify")
    with pytest.raises(Unavailable, match="S3 bucket 'imagify' is unreachable: .*127.0.0.1"):
        storage.check()
    with pytest.raises(Unavailable, match="S3 is unreachable"):
        storage.put("originals/abc", b"x", "image/jpeg")
    with pytest.raises(Unavailable, match="S3 is unreachable"):
        storage.put("originals/abc", io.BytesIO(b"x"), "image/jpeg")
    with pytest.raises(Unavailable, match="S3 is unreachable"):
        storage.open("originals/abc")
    with pytest.raises(Unavailable, match="S3 is unreachable"):
        storage.delete("originals/abc")


def test_a_presigned_url_fetches_the_blob_without_credentials(
    s3_bucket: tuple[str, str], s3_client: Any
) -> None:
    _, bucket = s3_bucket
    storage = S3BlobStorage(s3_client, bucket, prefix="p")
    storage.put("originals/abc", b"signed bytes", "image/jpeg")
    url = storage.presigned_url("originals/abc", 60)
    assert url.startswith("http://127.0.0.1:") and "Signature" in url
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        assert (response.read(), response.headers["Content-Type"]) == (b"signed bytes", "image/jpeg")


def test_a_presigned_url_is_reused_only_while_half_its_lifetime_remains(
    s3_bucket: tuple[str, str], s3_client: Any
) -> None:
    _, bucket = s3_bucket
    signed: list[str] = []

    class CountingClient:
        def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str:
            signed.append(kwargs["Params"]["Key"])
            return s3_client.generate_presigned_url(*args, **kwargs)  # type: ignore[no-any-return]

    now = [1000.0]
    storage = S3BlobStorage(CountingClient(), bucket, prefix="p", monotonic=lambda: now[0])
    first = storage.presigned_url("originals/abc", 60)
    now[0] += 30
    assert storage.presigned_url("originals/abc", 60) == first
    storage.presigned_url("originals/other", 60)
    assert signed == ["p/originals/abc", "p/originals/other"]
    now[0] += 0.5  # less than half of its 60 s left: signed anew
    storage.presigned_url("originals/abc", 60)
    assert signed == ["p/originals/abc", "p/originals/other", "p/originals/abc"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://imagify", ("imagify", "")),
        ("s3://imagify/", ("imagify", "")),
        ("s3://my.bucket-1/some/prefix/", ("my.bucket-1", "some/prefix")),
    ],
)
def test_parse_s3_url_splits_bucket_and_prefix(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["imagify", "file:///var/blobs", "s3://", "s3:///prefix", "s3://Bad_Bucket/x",
     "s3://key:secret@bucket/x", "s3://bucket:9000/x", "s3://bucket/x?region=eu"],
)
def test_parse_s3_url_refuses_what_is_not_a_bucket_url(url: str) -> None:
    with pytest.raises(ValueError, match="S3"):
        parse_s3_url(url)

