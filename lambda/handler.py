"""The Imagify thumbnail function for AWS Lambda.

Two kinds of event:

- An invocation from `LambdaRenderer`:
  `{"source_key", "target_key", "height", "format"?, "bucket"?, "prefix"?}`. It reads the
  original at `source_key`, renders it `height` px high in `format` ('jpeg', 'png', 'webp',
  'avif'; absent: the original's default) with the same code as the in-process
  renderer (`imagify.adapters.pillow_render`), writes it at `target_key` with its content
  type and answers `{"key", "content_type", "size", "width", "height", "sha256"}`. Keys
  are relative to the storage prefix, as in `S3BlobStorage`; the bucket and prefix come
  from the event when it names a bucket, else from `IMAGIFY_STORAGE_URL=s3://bucket/prefix`.
- An S3 Object Lambda `getObjectContext` event: the user asked for `…@{height}`; the
  original comes from `inputS3Url` and the thumbnail goes back by `WriteGetObjectResponse`.

Errors are answers, not exceptions: an event it refuses (bad fields, unknown source, not an
image, too many pixels, S3 refusing) returns `{"error": {"type", "message"}}`, so the invoker
reads the type. Only a bug, or Lambda's own timeout, surfaces as a function error
(`X-Amz-Function-Error: Unhandled`). Object Lambda errors go to S3 as a status code,
`ErrorCode` and `ErrorMessage`.

Imports only the standard library and Pillow at import time; boto3 is imported, and its
client built, on the first event of a cold start.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from imagify.adapters import pillow_render as render

log = logging.getLogger("imagify.lambda")

MAX_HEIGHT = 4096
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = 10  # seconds, for the Object Lambda inputS3Url
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HEIGHT_SUFFIX = re.compile(r"@(\d{1,5})$")
_MISSING = {"404", "NoSuchKey", "NotFound"}

_clients: dict[str | None, Any] = {}
_clients_lock = threading.Lock()


class Refused(Exception):
    """An event this function answers with an error: `kind` names it, `status` is HTTP-like."""

    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    def payload(self) -> dict[str, Any]:
        return {"error": {"type": self.kind, "message": str(self)}}


@dataclass(frozen=True)
class Settings:
    endpoint_url: str | None
    storage_url: str | None
    max_pixels: int
    max_bytes: int


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (`handler.handler`)."""
    return handle(event, os.environ)


def handle(event: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    """Answer one event with the function's environment `environ`."""
    if isinstance(event, dict) and "getObjectContext" in event:
        return _object_lambda(event, environ)
    try:
        return _render_request(event, _settings(environ))
    except Refused as refused:
        log.warning("refused %s: %s", refused.kind, refused)
        return refused.payload()


def _render_request(event: Any, settings: Settings) -> dict[str, Any]:
    source_key, target_key, height = _read_event(event)
    output = event.get("format")
    if output is not None and output not in render.OUTPUTS:
        raise Refused("InvalidEvent", f"format must be one of {', '.join(render.OUTPUTS)}, got {output!r}")
    bucket, prefix = _location(event, settings)
    s3 = s3_client(settings.endpoint_url)
    original = _read_original(s3, bucket, _name(prefix, source_key), source_key, settings.max_bytes)
    thumb = _render(original, height, settings.max_pixels, output)
    _write(s3, bucket, _name(prefix, target_key), target_key, thumb)
    return {
        "key": target_key,
        "content_type": thumb.content_type,
        "size": len(thumb.data),
        "width": thumb.width,
        "height": thumb.height,
        "sha256": hashlib.sha256(thumb.data).hexdigest(),
    }


def _object_lambda(event: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    context = event["getObjectContext"]
    if not isinstance(context, dict) or not all(
        isinstance(context.get(k), str) and context.get(k)
        for k in ("inputS3Url", "outputRoute", "outputToken")
    ):
        return Refused(
            "InvalidEvent", "getObjectContext needs inputS3Url, outputRoute and outputToken"
        ).payload()
    route, token = context["outputRoute"], context["outputToken"]
    s3 = s3_client(environ.get("IMAGIFY_S3_ENDPOINT_URL") or None)
    try:
        settings = _settings(environ)
        height = _requested_height(event.get("userRequest"))
        original = _fetch(context["inputS3Url"], settings.max_bytes)
        thumb = _render(original, height, settings.max_pixels)
    except Exception as error:
        refused = error if isinstance(error, Refused) else None
        if refused is None:
            log.exception("rendering for Object Lambda failed")
            refused = Refused("InternalError", f"the thumbnail could not be made: {error}", 500)
        s3.write_get_object_response(
            RequestRoute=route,
            RequestToken=token,
            StatusCode=refused.status,
            ErrorCode=refused.kind,
            ErrorMessage=str(refused),
        )
        return {"status_code": refused.status, **refused.payload()}
    s3.write_get_object_response(
        RequestRoute=route,
        RequestToken=token,
        StatusCode=200,
        Body=thumb.data,
        ContentType=thumb.content_type,
        ContentLength=len(thumb.data),
    )
    return {"status_code": 200}


# The event and the environment -------------------------------------------------------


def _settings(environ: Mapping[str, str]) -> Settings:
    return Settings(
        endpoint_url=environ.get("IMAGIFY_S3_ENDPOINT_URL") or None,
        storage_url=environ.get("IMAGIFY_STORAGE_URL") or None,
        max_pixels=_positive(environ, "IMAGIFY_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS),
        max_bytes=_positive(environ, "IMAGIFY_MAX_UPLOAD_BYTES", DEFAULT_MAX_BYTES),
    )


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise Refused("ConfigurationError", f"{name} must be a positive integer, got {raw!r}", 500)
    return value


def _read_event(event: Any) -> tuple[str, str, int]:
    if not isinstance(event, dict):
        raise Refused(
            "InvalidEvent", f"the event must be a JSON object, got {type(event).__name__}"
        )
    missing = [k for k in ("source_key", "target_key", "height") if k not in event]
    if missing:
        raise Refused("InvalidEvent", f"the event lacks {', '.join(missing)}")
    keys = []
    for field in ("source_key", "target_key"):
        key = event[field]
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise Refused(
                "InvalidEvent", f"{field} must be a relative key such as 'originals/…', got {key!r}"
            )
        keys.append(key)
    height = event["height"]
    if type(height) is not int:
        raise Refused("InvalidEvent", f"height must be an integer, got {height!r}")
    if not 1 <= height <= MAX_HEIGHT:
        raise Refused("InvalidEvent", f"height must be between 1 and {MAX_HEIGHT}, got {height}")
    return keys[0], keys[1], height


def _location(event: dict[str, Any], settings: Settings) -> tuple[str, str]:
    """(bucket, prefix): both from the event when it names a bucket, else IMAGIFY_STORAGE_URL."""
    if "bucket" in event:
        bucket, prefix = event["bucket"], event.get("prefix", "")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise Refused("InvalidEvent", f"bucket must be an S3 bucket name, got {bucket!r}")
        if not isinstance(prefix, str):
            raise Refused("InvalidEvent", f"prefix must be a string, got {prefix!r}")
        return bucket, prefix.strip("/")
    if "prefix" in event:
        raise Refused("InvalidEvent", "prefix is given without bucket: give both or neither")
    if not settings.storage_url:
        raise Refused(
            "ConfigurationError", "no bucket in the event and IMAGIFY_STORAGE_URL is not set", 500
        )
    parts = urlsplit(settings.storage_url)
    if parts.scheme != "s3" or not _BUCKET.fullmatch(parts.netloc):
        raise Refused(
            "ConfigurationError",
            f"IMAGIFY_STORAGE_URL must look like s3://bucket/prefix, got {settings.storage_url!r}",
            500,
        )
    return parts.netloc, parts.path.strip("/")


def _requested_height(user_request: Any) -> int:
    url = user_request.get("url") if isinstance(user_request, dict) else None
    if not isinstance(url, str):
        raise Refused("InvalidRequest", "the request names no object")
    match = _HEIGHT_SUFFIX.search(unquote(urlsplit(url).path))
    if match is None:
        raise Refused("InvalidRequest", "ask for a thumbnail as <key>@<height>, e.g. photo.jpg@200")
    height = int(match.group(1))
    if not 1 <= height <= MAX_HEIGHT:
        raise Refused("InvalidRequest", f"height must be between 1 and {MAX_HEIGHT}, got {height}")
    return height


def _name(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


# S3, rendering -------------------------------------------------------------------------


def s3_client(endpoint_url: str | None) -> Any:
    """One S3 client per endpoint for the life of the process (a cold start builds it once)."""
    with _clients_lock:
        client = _clients.get(endpoint_url)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"mode": "standard", "total_max_attempts": 3},
                s3={"addressing_style": "path"} if endpoint_url else None,
                # WriteGetObjectResponse goes to {route}.<endpoint>: only AWS resolves that.
                inject_host_prefix=endpoint_url is None,
            )
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
            _clients[endpoint_url] = client
        return client


def _read_original(s3: Any, bucket: str, name: str, key: str, max_bytes: int) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = s3.get_object(Bucket=bucket, Key=name)
        if response["ContentLength"] > max_bytes:
            response["Body"].close()
            raise Refused(
                "ImageTooLarge",
                f"the original is {response['ContentLength']} bytes, more than the limit of {max_bytes}",
            )
        with response["Body"] as body:
            return bytes(body.read())
    except ClientError as error:
        code, message = _client_error(error)
        if code in _MISSING:
            raise Refused(
                "SourceNotFound", f"no original at {key!r} in bucket {bucket!r}", 404
            ) from None
        raise Refused(
            "StorageError", f"S3 refused to read {key!r}: {code} {message}", 503
        ) from None
    except BotoCoreError as error:
        raise Refused("StorageError", f"S3 could not be read: {error}", 503) from None


def _write(s3: Any, bucket: str, name: str, key: str, thumb: render.Thumbnail) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.put_object(Bucket=bucket, Key=name, Body=thumb.data, ContentType=thumb.content_type)
    except ClientError as error:
        code, message = _client_error(error)
        raise Refused(
            "StorageError", f"S3 refused to store {key!r}: {code} {message}", 503
        ) from None
    except BotoCoreError as error:
        raise Refused("StorageError", f"S3 could not be written: {error}", 503) from None


def _client_error(error: Any) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return str(details.get("Code", "")), str(details.get("Message", ""))


def _fetch(url: str, max_bytes: int) -> bytes:
    import urllib.error
    import urllib.request

    if urlsplit(url).scheme not in ("http", "https"):
        raise Refused("InvalidRequest", "inputS3Url must be an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
            data = bytes(response.read(max_bytes + 1))
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise Refused("NoSuchKey", "the original does not exist", 404) from None
        if error.code == 403:
            raise Refused("AccessDenied", "S3 refused to read the original", 403) from None
        raise Refused("StorageError", f"S3 answered {error.code} for the original", 503) from None
    except (urllib.error.URLError, OSError) as error:
        raise Refused("StorageError", f"the original could not be fetched: {error}", 503) from None
    if len(data) > max_bytes:
        raise Refused("ImageTooLarge", f"the original is more than the limit of {max_bytes} bytes")
    return data


def _render(original: bytes, height: int, max_pixels: int, output: str | None = None) -> render.Thumbnail:
    """Refuse bombs from the header, then render with the shared code."""
    try:
        layout = render.image_checks.layout(original)  # our own parse: GIF frames, HEIF 'ispe'
        width, stored_height = layout.width, layout.height
    except render.image_checks.BadStructure:
        try:
            with Image.open(io.BytesIO(original), formats=render.SUPPORTED) as im:
                width, stored_height = im.size
        except render.DECODE_ERRORS:
            _raise_from_inspection(original, max_pixels)
            raise Refused("InvalidImage", "the original is not an image or is corrupt") from None
    if width * stored_height > max_pixels:
        raise Refused(
            "ImageTooLarge",
            f"the original is {width}x{stored_height} = {width * stored_height} pixels, "
            f"more than the limit of {max_pixels}",
        )
    try:
        return render.render_thumbnail(original, height, output)
    except render.DECODE_ERRORS as error:
        raise Refused("InvalidImage", f"the original could not be rendered: {error}") from None


def _raise_from_inspection(original: bytes, max_pixels: int) -> None:
    """The shared inspector's verdict (and message) on something Pillow would not open."""
    try:
        render.inspect_image(io.BytesIO(original), max_pixels)
    except render.UnsupportedImageFormat as error:
        raise Refused("UnsupportedImageFormat", str(error)) from None
    except render.InvalidImage as error:
        raise Refused("InvalidImage", str(error)) from None
    except render.ImageTooLarge as error:
        raise Refused("ImageTooLarge", str(error)) from None
