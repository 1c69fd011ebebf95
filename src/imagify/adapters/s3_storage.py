"""Blob storage in an S3 bucket (AWS, or any S3-compatible endpoint such as MinIO or moto)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from imagify.domain.errors import NotFound, Unavailable
from imagify.domain.ports import StoredBlob

# Lower case letters, digits, dots and hyphens, 3 to 63 of them (the S3 naming rules, roughly).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_UNREACHABLE = (BotocoreConnectionError, HTTPClientError)
_MISSING = {"404", "NoSuchKey", "NotFound"}


def make_s3_client(
    endpoint_url: str | None,
    connect_timeout: float = 5,
    read_timeout: float = 30,
    max_attempts: int = 3,
) -> Any:
    """A boto3 S3 client with bounded timeouts and retries; path-style when an endpoint is set."""
    config = Config(
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


class S3BlobStorage:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> None:
        name = self._name(key)
        with _unreachable_as_unavailable():
            if isinstance(data, bytes):
                self._client.put_object(
                    Bucket=self._bucket, Key=name, Body=data, ContentType=content_type
                )
                return
            data.seek(0)
            try:
                # Streams in parts (multipart above 8 MB), never the whole file in memory.
                self._client.upload_fileobj(
                    data, self._bucket, name, ExtraArgs={"ContentType": content_type}
                )
            except S3UploadFailedError as error:
                raise Unavailable(f"S3 refused to store {key!r}: {error}") from error

    def open(self, key: str) -> StoredBlob:
        with _unreachable_as_unavailable():
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=self._name(key))
            except ClientError as error:
                if _code(error) in _MISSING:
                    raise NotFound(f"the stored file for {key!r} is missing") from None
                raise Unavailable(f"S3 refused to read {key!r}: {_reason(error)}") from error
        return StoredBlob(response["Body"], response["ContentLength"], response["ContentType"])

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

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as error:
            problem = "does not exist" if _code(error) in ("404", "NoSuchBucket") else "is not usable"
            raise Unavailable(f"S3 bucket {self._bucket!r} {problem}: {_reason(error)}") from error
        except _UNREACHABLE as error:
            raise Unavailable(f"S3 bucket {self._bucket!r} is unreachable: {error}") from error

    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that fetches the blob without credentials for `seconds`."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": self._name(key)}, ExpiresIn=seconds
        )
        return url

    def _name(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return f"{self._prefix}/{key}" if self._prefix else key


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
