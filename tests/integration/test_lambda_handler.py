"""The Lambda function's handler, called directly, against S3 on a moto server."""

from __future__ import annotations

import hashlib
import io
import socket
import time
from typing import Any

import boto3
import pytest
from PIL import Image

from tests.integration.lambda_endpoint import load_handler

pytestmark = pytest.mark.integration

PREFIX = "tenant/blobs"
SOURCE = "originals/img-1"
TARGET = "thumbnails/img-1/200"
RED = (255, 0, 0)
BLUE = (0, 0, 255)

handler = load_handler()


def encode(im: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


class Bucket:
    """The test bucket as the function sees it: keys under PREFIX."""

    def __init__(self, endpoint_url: str, name: str) -> None:
        self.endpoint_url = endpoint_url
        self.name = name
        self.s3 = boto3.session.Session().client("s3", endpoint_url=endpoint_url)
        self.env = {
            "IMAGIFY_S3_ENDPOINT_URL": endpoint_url,
            "IMAGIFY_STORAGE_URL": f"s3://{name}/{PREFIX}",
        }

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.name, Key=f"{PREFIX}/{key}", Body=data)

    def get(self, key: str) -> tuple[bytes, str]:
        response = self.s3.get_object(Bucket=self.name, Key=f"{PREFIX}/{key}")
        return response["Body"].read(), response["ContentType"]

    def keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def render(self, data: bytes | None, height: int = 200, format: str | None = None, **env: Any) -> dict[str, Any]:
        if data is not None:
            self.put(SOURCE, data)
        event: dict[str, Any] = {"source_key": SOURCE, "target_key": TARGET, "height": height}
        if format is not None:
            event["format"] = format
        result: dict[str, Any] = handler.handle(event, {**self.env, **env})
        return result


@pytest.fixture
def bucket(s3_bucket: tuple[str, str]) -> Bucket:
    return Bucket(*s3_bucket)


def assert_refused(result: dict[str, Any], kind: str) -> str:
    assert list(result) == ["error"], result
    assert result["error"]["type"] == kind, result
    assert isinstance(result["error"]["message"], str) and result["error"]["message"].strip()
    return str(result["error"]["message"])


# Rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_thumbnail_is_written_with_its_content_type_and_described(
    bucket: Bucket, fmt: str
) -> None:
    result = bucket.render(encode(Image.new("RGB", (1000, 750), BLUE), fmt))

    data, content_type = bucket.get(TARGET)
    assert result == {
        "key": TARGET,
        "content_type": f"image/{fmt.lower()}",
        "size": len(data),
        "width": 267,
        "height": 200,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert content_type == f"image/{fmt.lower()}"
    assert opened(data).format == fmt and opened(data).size == (267, 200)


@pytest.mark.parametrize("height, size", [(1, (1, 1)), (50, (67, 50)), (599, (799, 599))])
def test_each_height_keeps_the_aspect_ratio(
    bucket: Bucket, height: int, size: tuple[int, int]
) -> None:
    result = bucket.render(encode(Image.new("RGB", (800, 600), BLUE), "JPEG"), height)

    assert (result["width"], result["height"]) == size
    assert opened(bucket.get(TARGET)[0]).size == size


@pytest.mark.parametrize("height", [600, 601, 4096])
def test_a_thumbnail_is_never_upscaled(bucket: Bucket, height: int) -> None:
    result = bucket.render(encode(Image.new("RGB", (800, 600), BLUE), "PNG"), height)

    assert (result["width"], result["height"]) == (800, 600)


def test_exif_orientation_is_applied_and_metadata_stripped(bucket: Bucket) -> None:
    stored = Image.new("RGB", (400, 300), BLUE)
    stored.paste(RED, (0, 0, 100, 75))  # top-left as stored; orientation 6 turns it clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Camera maker"

    result = bucket.render(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))

    thumb = opened(bucket.get(TARGET)[0])
    assert (result["width"], result["height"]) == thumb.size == (150, 200)
    assert thumb.getexif().get(0x0112) is None and "exif" not in thumb.info
    red_corner = thumb.getpixel((thumb.width - 5, 5))
    assert isinstance(red_corner, tuple) and red_corner[0] > 200 and red_corner[2] < 80


def test_png_transparency_survives(bucket: Bucket) -> None:
    im = Image.new("RGBA", (400, 400), (0, 0, 255, 0))
    im.paste((255, 0, 0, 255), (0, 0, 200, 400))

    bucket.render(encode(im, "PNG"))

    thumb = opened(bucket.get(TARGET)[0])
    assert thumb.mode == "RGBA" and thumb.size == (200, 200)
    assert thumb.getpixel((190, 100))[3] == 0 and thumb.getpixel((5, 100))[3] == 255  # type: ignore[index]


def test_the_lambda_entry_point_reads_its_environment(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    bucket.put(SOURCE, encode(Image.new("RGB", (300, 300), BLUE), "JPEG"))

    result = handler.handler({"source_key": SOURCE, "target_key": TARGET, "height": 100}, None)

    assert result["height"] == 100 and f"{PREFIX}/{TARGET}" in bucket.keys()


def test_a_bucket_and_prefix_in_the_event_win_over_the_environment(bucket: Bucket) -> None:
    bucket.s3.put_object(
        Bucket=bucket.name,
        Key="elsewhere/originals/x",
        Body=encode(Image.new("RGB", (90, 60)), "PNG"),
    )
    event = {"source_key": "originals/x", "target_key": "thumbnails/x/30", "height": 30,
             "bucket": bucket.name, "prefix": "elsewhere/"}  # fmt: skip

    result = handler.handle(event, {"IMAGIFY_S3_ENDPOINT_URL": bucket.endpoint_url})

    assert result["key"] == "thumbnails/x/30"
    assert "elsewhere/thumbnails/x/30" in bucket.keys()


def test_the_s3_client_is_built_once_per_endpoint(bucket: Bucket) -> None:
    bucket.render(encode(Image.new("RGB", (80, 60)), "PNG"), 10)
    first = handler.s3_client(bucket.endpoint_url)
    bucket.render(None, 20)

    assert handler.s3_client(bucket.endpoint_url) is first


# Refused events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        [],
        "thumbnail please",
        {},
        {"source_key": SOURCE, "target_key": TARGET},
        {"source_key": SOURCE, "height": 200},
        {"source_key": 7, "target_key": TARGET, "height": 200},
        {"source_key": "", "target_key": TARGET, "height": 200},
        {"source_key": "/etc/passwd", "target_key": TARGET, "height": 200},
        {"source_key": SOURCE, "target_key": None, "height": 200},
        {"source_key": SOURCE, "target_key": TARGET, "height": "200"},
        {"source_key": SOURCE, "target_key": TARGET, "height": 200.0},
        {"source_key": SOURCE, "target_key": TARGET, "height": True},
        {"source_key": SOURCE, "target_key": TARGET, "height": 0},
        {"source_key": SOURCE, "target_key": TARGET, "height": -5},
        {"source_key": SOURCE, "target_key": TARGET, "height": 4097},
        {"source_key": SOURCE, "target_key": TARGET, "height": 200, "bucket": "Not_A_Bucket"},
        {
            "source_key": SOURCE,
            "target_key": TARGET,
            "height": 200,
            "bucket": "ok-bucket",
            "prefix": 3,
        },
        {"source_key": SOURCE, "target_key": TARGET, "height": 200, "prefix": "p"},
    ],
)
def test_a_malformed_event_is_refused_with_a_structured_error(bucket: Bucket, event: Any) -> None:
    bucket.put(SOURCE, encode(Image.new("RGB", (80, 60)), "PNG"))

    assert_refused(handler.handle(event, bucket.env), "InvalidEvent")
    assert bucket.keys() == [f"{PREFIX}/{SOURCE}"]


def test_an_unknown_source_is_refused(bucket: Bucket) -> None:
    message = assert_refused(bucket.render(None), "SourceNotFound")

    assert SOURCE in message and bucket.keys() == []


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", "InvalidImage"),
        (b"just some text, no image", "InvalidImage"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "InvalidImage"),
        (encode(Image.new("RGB", (50, 50)), "BMP"), "UnsupportedImageFormat"),
        (encode(Image.new("RGB", (500, 400), BLUE), "JPEG")[:600], "InvalidImage"),
        (encode(Image.new("RGB", (500, 400), BLUE), "PNG")[:-30], "InvalidImage"),
    ],
)
def test_something_that_is_not_a_usable_image_is_refused(
    bucket: Bucket, data: bytes, kind: str
) -> None:
    assert_refused(bucket.render(data), kind)
    assert f"{PREFIX}/{TARGET}" not in bucket.keys()


def test_a_pixel_bomb_is_refused_from_its_header(bucket: Bucket) -> None:
    message = assert_refused(
        bucket.render(encode(Image.new("L", (800, 600)), "PNG"), IMAGIFY_MAX_IMAGE_PIXELS="1000"),
        "ImageTooLarge",
    )

    assert "800x600" in message and f"{PREFIX}/{TARGET}" not in bucket.keys()


def test_an_original_over_the_byte_limit_is_refused(bucket: Bucket) -> None:
    assert_refused(
        bucket.render(encode(Image.new("RGB", (80, 60)), "PNG"), IMAGIFY_MAX_UPLOAD_BYTES="10"),
        "ImageTooLarge",
    )


@pytest.mark.parametrize(
    "env",
    [
        {"IMAGIFY_STORAGE_URL": ""},
        {"IMAGIFY_STORAGE_URL": "file:///tmp/blobs"},
        {"IMAGIFY_MAX_IMAGE_PIXELS": "lots"},
    ],
)
def test_a_misconfigured_function_says_what_to_fix(bucket: Bucket, env: dict[str, str]) -> None:
    message = assert_refused(
        bucket.render(encode(Image.new("RGB", (80, 60)), "PNG"), 200, **env), "ConfigurationError"
    )

    assert "IMAGIFY_" in message


def test_unreachable_s3_is_a_storage_error_not_a_hang() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"IMAGIFY_S3_ENDPOINT_URL": closed, "IMAGIFY_STORAGE_URL": "s3://some-bucket/p"}
    started = time.monotonic()

    result = handler.handle({"source_key": SOURCE, "target_key": TARGET, "height": 200}, env)

    assert_refused(result, "StorageError")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("output", ["jpeg", "png", "webp", "avif"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "AVIF", "HEIF"])
def test_the_function_renders_every_input_in_every_format_the_event_names(bucket: Bucket, fmt: str, output: str) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    im = Image.new("RGB", (400, 300), (200, 30, 30))
    answer = bucket.render(encode(im, fmt), format=output)

    assert answer["content_type"] == f"image/{output}", answer
    assert (answer["width"], answer["height"]) == (267, 200)


def test_an_unknown_format_in_the_event_is_refused(bucket: Bucket) -> None:
    assert "format" in assert_refused(bucket.render(encode(Image.new("RGB", (50, 50)), "PNG"), format="gif"), "InvalidEvent")
