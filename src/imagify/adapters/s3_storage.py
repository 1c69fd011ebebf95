"""Blob storage in an S3 bucket (AWS, or any S3-compatible endpoint such as MinIO or moto)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error

from imagify.domain.errors import NotFound, Unavailable
from imagify.domain.ports import Leftover, StoredBlob

# Lower case letters, digits, dots and hyphens, 3 to 63 of them (the S3 naming rules, roughly).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_UNREACHABLE = (BotocoreConnectionError, HTTPClientError)
_MISSING = {"404", "NoSuchKey", "NotFound"}
UNFINISHED_UPLOAD = "unfinished upload"
# What reading a response body can raise when the connection drops or stalls midway.
_STREAM_ERRORS = (BotoCoreError, Urllib3Error, OSError)


def make_s3_client(
    endpoint_url: str | None,
    connect_timeout: float = 5,
    read_timeout: float = 30,
    max_attempts: int = 3,
    max_connections: int = 10,
) -> Any:
    """A boto3 S3 client with bounded timeouts and retries; path-style when an endpoint is set.

    `max_connections`: its connection pool, as large as the threads that share the client.
    """
    config = Config(
        max_pool_connections=max_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    # A session of its own: the default session is shared module state and not thread-safe.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"an S3 storage URL looks like s3://bucket/prefix, not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password or parts.port:
        raise ValueError(f"an S3 storage URL takes only a bucket and a prefix: {url!r}")
    if not _BUCKET.fullmatch(parts.hostname or "") or parts.netloc != parts.hostname:
        raise ValueError(
            f"{parts.netloc!r} in {url!r} is not a valid S3 bucket name "
            "(3 to 63 lower case letters, digits, dots and hyphens)"
        )
    return parts.netloc, parts.path.strip("/")


PRESIGNED_KEPT = 10_000  # presigned URLs remembered for reuse (see presigned_url)


class S3BlobStorage:
    def __init__(
        self, client: Any, bucket: str, prefix: str = "", monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._monotonic = monotonic
        self._presigned: dict[tuple[str, int], tuple[str, float]] = {}

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        name = self._name(key)
        with _unreachable_as_unavailable():
            try:
                if isinstance(data, bytes):
                    self._client.put_object(
                        Bucket=self._bucket, Key=name, Body=data, ContentType=content_type
                    )
                    return
                data.seek(0)
                # Streams in parts (multipart above 8 MB), never the whole file in memory.
                self._client.upload_fileobj(
                    data, self._bucket, name, ExtraArgs={"ContentType": content_type}
                )
            except S3UploadFailedError as error:
                raise Unavailable(f"S3 refused to store {key!r}: {error}") from error
            except ClientError as error:  # e.g. 500 InternalError or 503 SlowDown, after retries
                raise Unavailable(f"S3 refused to store {key!r}: {_reason(error)}") from error

    def open(self, key: str) -> StoredBlob:
        with _unreachable_as_unavailable():
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=self._name(key))
            except ClientError as error:
                if _code(error) in _MISSING:
                    raise NotFound(f"the stored file for {key!r} is missing") from None
                raise Unavailable(f"S3 refused to read {key!r}: {_reason(error)}") from error
        body = _GuardedBody(response["Body"], key)
        return StoredBlob(body, response["ContentLength"], response["ContentType"])  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success: idempotent as it stands.
        with _unreachable_as_unavailable():
            try:
                self._client.delete_object(Bucket=self._bucket, Key=self._name(key))
            except ClientError as error:
                raise Unavailable(f"S3 refused to delete {key!r}: {_reason(error)}") from error

    def exists(self, key: str) -> bool:
        with _unreachable_as_unavailable():
            try:
                self._client.head_object(Bucket=self._bucket, Key=self._name(key))
            except ClientError as error:
                if _code(error) in _MISSING:
                    return False
                raise Unavailable(f"S3 refused to look up {key!r}: {_reason(error)}") from error
        return True

    def keys(self, prefix: str = "", modified_before: datetime | None = None) -> Iterator[str]:
        """The keys under `prefix`, optionally only those last written before a moment."""
        start = f"{self._prefix}/" if self._prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        with _unreachable_as_unavailable():
            try:
                for page in paginator.paginate(Bucket=self._bucket, Prefix=start + prefix):
                    for item in page.get("Contents", []):
                        if modified_before is None or item["LastModified"] < modified_before:
                            yield item["Key"][len(start):]
            except ClientError as error:
                raise Unavailable(f"S3 refused to list {prefix!r}: {_reason(error)}") from error

    def leftovers(self, started_before: datetime | None = None) -> Iterator[Leftover]:
        """Multipart uploads begun and never completed nor aborted.

        An upload cut off with S3 unreachable cannot be aborted then; its parts stay,
        billed and invisible to listings, until someone aborts it (or a lifecycle rule does).
        """
        start = f"{self._prefix}/" if self._prefix else ""
        paginator = self._client.get_paginator("list_multipart_uploads")
        with _unreachable_as_unavailable():
            try:
                for page in paginator.paginate(Bucket=self._bucket, Prefix=start):
                    for upload in page.get("Uploads", []):
                        if started_before is None or upload["Initiated"] < started_before:
                            yield Leftover(UNFINISHED_UPLOAD, upload["Key"][len(start):], upload["UploadId"])
            except ClientError as error:
                raise Unavailable(f"S3 refused to list uploads: {_reason(error)}") from error

    def remove_leftover(self, leftover: Leftover) -> None:
        with _unreachable_as_unavailable():
            try:
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name(leftover.key), UploadId=leftover.handle
                )
            except ClientError as error:
                if _code(error) != "NoSuchUpload":  # finished or aborted meanwhile
                    raise Unavailable(f"S3 refused to abort {leftover.key!r}: {_reason(error)}") from error

    def cached(self, key: str) -> StoredBlob | None:
        return None  # nothing kept in memory: see CachedBlobStorage

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as error:
            problem = "does not exist" if _code(error) in ("404", "NoSuchBucket") else "is not usable"
            raise Unavailable(f"S3 bucket {self._bucket!r} {problem}: {_reason(error)}") from error
        except _UNREACHABLE as error:
            raise Unavailable(f"S3 bucket {self._bucket!r} is unreachable: {error}") from error

    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that fetches the blob without credentials for `seconds`, or at least half that.

        A URL is handed out again while half its lifetime or more remains: signing is most
        of the cost of a redirect, and a repeated URL is one a browser or CDN can cache.
        It never outlives what it was signed for.
        """
        now = self._monotonic()
        kept = self._presigned.get((key, seconds))
        if kept is not None and kept[1] - now >= seconds / 2:
            return kept[0]
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": self._name(key)}, ExpiresIn=seconds
        )
        if len(self._presigned) >= PRESIGNED_KEPT:
            self._presigned.clear()  # a bound, not an LRU: signing again is all it costs
        self._presigned[(key, seconds)] = (url, now + seconds)
        return url

    def _name(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return f"{self._prefix}/{key}" if self._prefix else key


class _GuardedBody:
    """A response body whose read errors (the connection dropped midway) are Unavailable."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def read(self, size: int | None = -1) -> bytes:
        try:
            data: bytes = self._body.read(None if size is None or size < 0 else size)
        except _STREAM_ERRORS as error:
            raise Unavailable(f"S3 stopped sending {self._key!r} midway: {error}") from error
        return data

    def close(self) -> None:
        self._body.close()


@contextmanager
def _unreachable_as_unavailable() -> Iterator[None]:
    try:
        yield
    except _UNREACHABLE as error:
        raise Unavailable(f"S3 is unreachable: {error}") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reason(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')} {details.get('Message', '')}".strip()
