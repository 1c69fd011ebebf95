"""LambdaRenderer -> boto3's Lambda client -> the loopback Invoke endpoint -> the real
handler -> S3 on moto, and back."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest
from PIL import Image

from imagify.adapters.lambda_renderer import LambdaRenderer, make_lambda_client
from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client
from imagify.domain.errors import NotFound, RenderFailed, RenderTimedOut
from tests.integration.lambda_endpoint import FAILING, FUNCTION, SLOW, SLOW_SECONDS, TIMING_OUT

pytestmark = pytest.mark.integration

PREFIX = "tenant/blobs"
SOURCE = "originals/img-1"
TARGET = "thumbnails/img-1/200"


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def blobs(s3_bucket: tuple[str, str]) -> S3BlobStorage:
    endpoint_url, bucket = s3_bucket
    return S3BlobStorage(make_s3_client(endpoint_url), bucket, PREFIX)


@pytest.fixture
def bucket(s3_bucket: tuple[str, str]) -> str:
    return s3_bucket[1]


@pytest.fixture(scope="module")
def lambda_client(lambda_endpoint: str) -> Any:
    return make_lambda_client(lambda_endpoint, connect_timeout=1, read_timeout=1, max_attempts=1)


@pytest.fixture
def renderer(bucket: str) -> Any:
    """A LambdaRenderer that names the test bucket and prefix in its events."""

    def make(client: Any, function: str = FUNCTION) -> LambdaRenderer:
        return LambdaRenderer(client, function, bucket, PREFIX)

    return make


def test_the_function_writes_the_thumbnail_the_service_then_reads(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    blobs.put(SOURCE, jpeg(), "image/jpeg")

    made = renderer(lambda_client).render(SOURCE, TARGET, 200)

    stored = blobs.open(TARGET)
    data = stored.read_all()
    assert stored.content_type == made.content_type == "image/jpeg"
    assert made.size_bytes == stored.size == len(data)
    assert made.sha256 == hashlib.sha256(data).hexdigest()
    assert (made.width, made.height) == Image.open(io.BytesIO(data)).size == (267, 200)


def test_without_a_bucket_the_functions_own_storage_url_is_used(
    lambda_client: Any, blobs: S3BlobStorage
) -> None:
    blobs.put(SOURCE, jpeg(), "image/jpeg")

    with pytest.raises(RenderFailed) as failed:  # the test function has no IMAGIFY_STORAGE_URL
        LambdaRenderer(lambda_client, FUNCTION).render(SOURCE, TARGET, 200)

    assert (
        "ConfigurationError" in failed.value.detail and "IMAGIFY_STORAGE_URL" in failed.value.detail
    )


def test_an_error_the_function_answers_becomes_render_failed_with_its_type(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    blobs.put(SOURCE, b"these are not the pixels you are looking for", "image/jpeg")

    with pytest.raises(RenderFailed) as failed:
        renderer(lambda_client).render(SOURCE, TARGET, 200)

    assert failed.value.detail.startswith("the thumbnail function failed: InvalidImage: ")
    assert not blobs.exists(TARGET)


def test_a_source_the_function_cannot_find_is_not_found_as_in_process(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    # The image was deleted meanwhile, or its preview is gone (the service then tries the original).
    with pytest.raises(NotFound, match="originals/nobody"):
        renderer(lambda_client).render("originals/nobody", TARGET, 200)
    assert not blobs.exists(TARGET)


def test_a_crashing_function_becomes_render_failed_with_its_error(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    blobs.put(SOURCE, jpeg(), "image/jpeg")

    with pytest.raises(RenderFailed) as failed:
        renderer(lambda_client, FAILING).render(SOURCE, TARGET, 200)

    assert failed.value.detail == (
        "the thumbnail function failed: FunctionCrashed: "
        "the render worker crashed (the test function 'failing')"
    )


def test_an_unknown_function_is_named_in_the_failure(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    with pytest.raises(RenderFailed) as failed:
        renderer(lambda_client, "no-such-function").render(SOURCE, TARGET, 200)

    assert "ResourceNotFoundException" in failed.value.detail
    assert "no-such-function" in failed.value.detail


def test_a_slow_function_times_out_within_the_read_timeout(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    blobs.put(SOURCE, jpeg(), "image/jpeg")
    started = time.monotonic()

    with pytest.raises(RenderTimedOut) as failed:
        renderer(lambda_client, SLOW).render(SOURCE, TARGET, 200)

    assert time.monotonic() - started < 2.5  # one try, read timeout 1 s
    assert failed.value.detail.startswith("the thumbnail function failed: Timeout: ")


def test_a_function_stopped_at_its_own_timeout_is_a_timed_out_render(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    with pytest.raises(RenderTimedOut) as failed:
        renderer(lambda_client, TIMING_OUT).render(SOURCE, TARGET, 200)

    assert "Sandbox.Timedout" in failed.value.detail and "Task timed out" in failed.value.detail


def test_bounded_retries_still_end_in_time(
    renderer: Any, lambda_endpoint: str, blobs: S3BlobStorage
) -> None:
    client = make_lambda_client(
        lambda_endpoint, connect_timeout=1, read_timeout=0.5, max_attempts=2
    )
    started = time.monotonic()

    with pytest.raises(RenderFailed, match="Timeout"):
        renderer(client, SLOW).render(SOURCE, TARGET, 200)

    assert 1.0 <= time.monotonic() - started < SLOW_SECONDS - 1  # two reads of 0.5 s and a backoff


def test_an_unreachable_endpoint_fails_fast(renderer: Any, blobs: S3BlobStorage) -> None:
    client = make_lambda_client(
        "http://127.0.0.1:9", connect_timeout=1, read_timeout=1, max_attempts=1
    )

    with pytest.raises(
        RenderFailed, match="the thumbnail function failed: EndpointConnectionError"
    ):
        renderer(client).render(SOURCE, TARGET, 200)


def test_nothing_is_cached_so_a_retry_after_a_failure_renders(
    renderer: Any, lambda_client: Any, blobs: S3BlobStorage
) -> None:
    lambda_renderer = renderer(lambda_client)
    with pytest.raises(NotFound, match=SOURCE):
        lambda_renderer.render(SOURCE, TARGET, 200)

    blobs.put(SOURCE, jpeg(), "image/jpeg")
    made = lambda_renderer.render(SOURCE, TARGET, 200)

    assert made.height == 200 and blobs.exists(TARGET)
