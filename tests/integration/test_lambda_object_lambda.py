"""The handler answering S3 Object Lambda `getObjectContext` events.

The original comes from a presigned URL on the moto server, as `inputS3Url` would. moto
does not implement WriteGetObjectResponse, so the handler's S3 client points at a small
loopback HTTP server that records each WriteGetObjectResponse request boto3 sends: real
HTTP through boto3, headers and body as S3 would receive them.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from PIL import Image

from tests.integration.lambda_endpoint import load_handler

pytestmark = pytest.mark.integration

handler = load_handler()


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


class WriteGetObjectResponseStub:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append(Recorded(self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def s3_object_lambda() -> Iterator[WriteGetObjectResponseStub]:
    stub = WriteGetObjectResponseStub()
    stub.thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def original_url(s3_bucket: tuple[str, str]) -> Any:
    """Store bytes under a key and give the presigned URL S3 would pass as inputS3Url."""
    endpoint_url, bucket = s3_bucket
    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint_url)

    def store(key: str, data: bytes | None) -> str:
        if data is not None:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        url: str = s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60
        )
        return url

    return store


def event(input_url: str, requested: str) -> dict[str, Any]:
    return {
        "xAmzRequestId": "1a5ed718-5f53-471d-b6fe-5cf62d88d02a",
        "getObjectContext": {
            "inputS3Url": input_url,
            "outputRoute": "io-use1-001",
            "outputToken": "OutputToken",
        },
        "configuration": {
            "accessPointArn": "arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/thumbs",
            "supportingAccessPointArn": "arn:aws:s3:us-east-1:123456789012:accesspoint/originals",
            "payload": "",
        },
        "userRequest": {
            "url": f"https://thumbs-123456789012.s3-object-lambda.us-east-1.amazonaws.com/{requested}",
            "headers": {"Host": "thumbs-123456789012.s3-object-lambda.us-east-1.amazonaws.com"},
        },
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE"},
        "protocolVersion": "1.00",
    }


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(out, "JPEG")
    return out.getvalue()


def answer(stub: WriteGetObjectResponseStub, result: dict[str, Any]) -> Recorded:
    assert len(stub.requests) == 1, stub.requests
    sent = stub.requests.pop()
    assert sent.path == "/WriteGetObjectResponse"
    assert sent.headers["x-amz-request-route"] == "io-use1-001"
    assert sent.headers["x-amz-request-token"] == "OutputToken"
    assert "/s3-object-lambda/aws4_request" in sent.headers["authorization"]
    assert result["status_code"] == int(sent.headers["x-amz-fwd-status"])
    return sent


def test_the_thumbnail_named_by_at_height_goes_back_through_write_get_object_response(
    s3_object_lambda: WriteGetObjectResponseStub, original_url: Any
) -> None:
    url = original_url("originals/cat", jpeg((800, 600)))

    result = handler.handle(
        event(url, "originals/cat%40200"), {"IMAGIFY_S3_ENDPOINT_URL": s3_object_lambda.url}
    )

    sent = answer(s3_object_lambda, result)
    assert sent.headers["x-amz-fwd-status"] == "200"
    assert sent.headers["x-amz-fwd-header-content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(sent.body))
    assert thumb.format == "JPEG" and thumb.size == (267, 200)


@pytest.mark.parametrize(
    "requested, data, status, code",
    [
        ("originals/missing@200", None, 404, "NoSuchKey"),
        ("originals/cat", b"unused", 400, "InvalidRequest"),
        ("originals/cat@0", b"unused", 400, "InvalidRequest"),
        ("originals/cat@5000", b"unused", 400, "InvalidRequest"),
        ("originals/cat@200", b"no image here", 400, "InvalidImage"),
    ],
)
def test_a_request_that_cannot_be_served_gets_an_s3_error(
    s3_object_lambda: WriteGetObjectResponseStub,
    original_url: Any,
    requested: str,
    data: bytes | None,
    status: int,
    code: str,
) -> None:
    url = original_url(requested.split("@")[0], data)

    result = handler.handle(
        event(url, requested), {"IMAGIFY_S3_ENDPOINT_URL": s3_object_lambda.url}
    )

    sent = answer(s3_object_lambda, result)
    assert sent.headers["x-amz-fwd-status"] == str(status)
    assert sent.headers["x-amz-fwd-error-code"] == code
    assert sent.headers["x-amz-fwd-error-message"].strip()
    assert sent.body == b""


def test_a_pixel_bomb_is_refused_before_decoding(
    s3_object_lambda: WriteGetObjectResponseStub, original_url: Any
) -> None:
    url = original_url("originals/big", jpeg((800, 600)))
    env = {"IMAGIFY_S3_ENDPOINT_URL": s3_object_lambda.url, "IMAGIFY_MAX_IMAGE_PIXELS": "1000"}

    result = handler.handle(event(url, "originals/big@200"), env)

    sent = answer(s3_object_lambda, result)
    assert (sent.headers["x-amz-fwd-status"], sent.headers["x-amz-fwd-error-code"]) == (
        "400",
        "ImageTooLarge",
    )


def test_an_event_without_its_output_route_is_refused_without_calling_s3(
    s3_object_lambda: WriteGetObjectResponseStub,
) -> None:
    result = handler.handle(
        {"getObjectContext": {"inputS3Url": "http://127.0.0.1:1/x"}},
        {"IMAGIFY_S3_ENDPOINT_URL": s3_object_lambda.url},
    )

    assert result["error"]["type"] == "InvalidEvent"
    assert s3_object_lambda.requests == []


def test_a_misconfigured_function_still_answers_s3_with_a_500(
    s3_object_lambda: WriteGetObjectResponseStub, original_url: Any
) -> None:
    url = original_url("originals/cat", jpeg((80, 60)))
    env = {"IMAGIFY_S3_ENDPOINT_URL": s3_object_lambda.url, "IMAGIFY_MAX_IMAGE_PIXELS": "lots"}

    result = handler.handle(event(url, "originals/cat@20"), env)

    sent = answer(s3_object_lambda, result)
    assert (sent.headers["x-amz-fwd-status"], sent.headers["x-amz-fwd-error-code"]) == (
        "500",
        "ConfigurationError",
    )
