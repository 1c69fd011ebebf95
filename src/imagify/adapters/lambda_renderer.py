"""The thumbnail renderer that invokes the AWS Lambda function in `lambda/handler.py`."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from imagify.domain.errors import NotFound, RenderFailed, RenderTimedOut
from imagify.domain.model import RenderedThumbnail

_FIELDS = {"content_type": str, "size": int, "width": int, "height": int, "sha256": str}


def make_lambda_client(
    endpoint_url: str | None = None,
    connect_timeout: float = 3,
    read_timeout: float = 35,
    max_attempts: int = 2,
    max_connections: int = 10,
) -> Any:
    """A boto3 Lambda client with bounded timeouts and `max_attempts` tries in all.

    The read timeout outlasts the function's own 30 s timeout, so a slow render comes
    back as the function's timeout error rather than a dropped connection. (botocore's
    own `max_attempts` counts retries only; `total_max_attempts` counts every try.)
    `max_connections`: its connection pool, as large as the threads that share the client.
    """
    config = Config(
        max_pool_connections=max_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )
    # A session of its own: the default session is shared module state and not thread-safe.
    return boto3.session.Session().client("lambda", endpoint_url=endpoint_url, config=config)


class LambdaRenderer:
    """Renders by a synchronous invocation; the function reads and writes the bucket itself.

    With `bucket`, every event names the bucket and prefix, so the function writes where
    this service's S3BlobStorage reads; without it the function's IMAGIFY_STORAGE_URL decides.
    """

    def __init__(
        self, client: Any, function_name: str, bucket: str | None = None, prefix: str = ""
    ) -> None:
        self._client = client
        self._function = function_name
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def render(self, source_key: str, target_key: str, height: int, format: str | None = None) -> RenderedThumbnail:
        event: dict[str, Any] = {
            "source_key": source_key,
            "target_key": target_key,
            "height": height,
        }
        if format is not None:
            event["format"] = format
        if self._bucket:
            event.update(bucket=self._bucket, prefix=self._prefix)
        body = self._invoke(event)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            if error.get("type") == "SourceNotFound":  # deleted meanwhile, as in process
                raise NotFound(f"the thumbnail's source is gone: {error.get('message', '')}")
            raise self._failed(str(error.get("type", "Error")), str(error.get("message", "")))
        if not isinstance(body, dict) or any(
            type(body.get(k)) is not t for k, t in _FIELDS.items()
        ):
            raise self._failed("InvalidAnswer", f"the function answered {str(body)[:200]!r}")
        return RenderedThumbnail(
            content_type=body["content_type"],
            size_bytes=body["size"],
            width=body["width"],
            height=body["height"],
            sha256=body["sha256"],
        )

    def _invoke(self, event: dict[str, Any]) -> Any:
        try:
            response = self._client.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            raw = response["Payload"].read()
        except (ReadTimeoutError, ConnectTimeoutError) as error:
            raise RenderTimedOut(f"the thumbnail function failed: Timeout: no answer in time ({error})") from error
        except ClientError as error:
            details = error.response.get("Error", {})
            raise self._failed(
                str(details.get("Code") or "ClientError"), str(details.get("Message") or error)
            ) from error
        except BotoCoreError as error:
            raise self._failed(type(error).__name__, str(error)) from error
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise self._failed("InvalidAnswer", f"the answer is not JSON: {raw[:200]!r}") from None
        if response.get("FunctionError"):
            # Lambda's own error payload: {"errorType", "errorMessage", ...} (timeouts too).
            kind = body.get("errorType", "Unhandled") if isinstance(body, dict) else "Unhandled"
            message = body.get("errorMessage", "") if isinstance(body, dict) else str(body)
            failed = self._failed(str(kind), str(message))
            if kind == "Sandbox.Timedout" or "Task timed out" in str(message):
                raise RenderTimedOut(failed.detail)  # stopped at the function's own timeout
            raise failed
        return body

    def _failed(self, kind: str, message: str) -> RenderFailed:
        return RenderFailed(f"the thumbnail function failed: {kind}: {message}".rstrip(": "))
