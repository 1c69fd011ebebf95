"""A renderer that fails, crashes or hangs: 502 with a clear detail, and the next request renders.

On the embedded and cloud backends. A failure the renderer reports is a wrapper around the real renderer; a
crash and a hang happen inside the real Pillow renderer's worker process (its render function
is replaced, once across processes, by a marker file), as a decoder bug or a pathological
image would.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from imagify.adapters.pillow import PillowRenderer
from imagify.domain.errors import RenderFailed
from imagify.domain.model import RenderedThumbnail
from imagify.domain.ports import Renderer
from imagify.entrypoints.container import build_renderer
from tests.integration.conftest import assert_error, login, running_app, upload
from tests.integration.faulty_renders import crash_once, hang_once

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "cloud"])
def backend(request: pytest.FixtureRequest) -> str:
    """The in-process renderer's backends; the Lambda renderer's faults are in test_lambda_*."""
    return str(request.param)


class FailsOnce:
    """The real renderer, except that its first call raises `error`."""

    def __init__(self, inner: Renderer, error: BaseException) -> None:
        self._inner = inner
        self._error: BaseException | None = error

    def render(self, source_key: str, target_key: str, height: int, format: str | None = None) -> RenderedThumbnail:
        error, self._error = self._error, None
        if error is not None:
            raise error
        return self._inner.render(source_key, target_key, height, format)

    def close(self) -> None:
        getattr(self._inner, "close", lambda: None)()


def with_render(function: Any, marker: Path) -> Any:
    """A `prepare` giving the app a Pillow renderer whose worker runs `function` once."""

    def prepare(container: Any) -> None:
        settings = container.settings()
        render = partial(function, str(marker))
        renderer = PillowRenderer(container.blobs(), container.decode_pool(), settings.max_image_pixels, render)
        container.renderer.override(renderer)

    return prepare


def thumbnail_twice(make_settings, prepare=None, **overrides: str):  # type: ignore[no-untyped-def]
    """Upload, then ask for the 200px thumbnail twice: (first, second, seconds the first took,
    the stored keys, the image id). `prepare(container)` runs before any request."""
    settings = make_settings(**overrides)
    with running_app(settings) as (container, client):
        if prepare is not None:
            prepare(container)
        ann = login(container, client, "ann", "basic")
        image_id = upload(client, ann).json()["id"]
        url = f"/api/v1/images/{image_id}/thumbnails/200"
        started = time.monotonic()
        first = client.get(url, headers=ann.headers)
        took = time.monotonic() - started
        second = client.get(url, headers=ann.headers)
        keys = sorted(container.blobs().keys())
    return first, second, took, keys, image_id


def test_a_render_the_renderer_reports_failed_is_502_and_the_next_request_renders(
    make_settings,
) -> None:
    def prepare(container: Any) -> None:
        real = build_renderer(container.settings(), container.blobs(), container.decode_pool())
        failure = RenderFailed("the thumbnail function failed: out of memory")
        container.renderer.override(FailsOnce(real, failure))

    first, second, _, keys, image_id = thumbnail_twice(make_settings, prepare)

    assert "thumbnail" in assert_error(first, 502)
    assert second.status_code == 200 and second.content
    assert len(keys) == 2 and f"originals/{image_id}" in keys  # the original and one thumbnail


def test_a_renderer_crash_is_502_and_the_next_request_renders(make_settings, tmp_path: Path) -> None:
    first, second, _, _, _ = thumbnail_twice(make_settings, with_render(crash_once, tmp_path / "used"))

    assert second.status_code == 200  # the lock was released, the worker pool survived
    assert "render" in assert_error(first, 502)


def test_a_render_that_hangs_past_the_timeout_is_killed_with_a_502_and_a_later_request_renders(
    make_settings, tmp_path: Path
) -> None:
    prepare = with_render(hang_once, tmp_path / "used")
    first, second, took, _, _ = thumbnail_twice(make_settings, prepare, IMAGIFY_RENDER_TIMEOUT_SECONDS="1")

    assert second.status_code == 200
    assert "timed out" in assert_error(first, 502)
    assert took < 2.5


def test_a_render_whose_original_was_deleted_meanwhile_is_a_404_not_a_502(tmp_path: Path) -> None:
    from imagify.adapters.decode_pool import DecodePool
    from imagify.adapters.local_storage import LocalFolderBlobStorage
    from imagify.adapters.pillow import PillowRenderer
    from imagify.domain.errors import NotFound
    from tests.integration.conftest import image_bytes
    from tests.integration.faulty_renders import deleted_first

    blobs = LocalFolderBlobStorage(tmp_path / "blobs")
    blobs.put("originals/gone", image_bytes(), "image/jpeg")
    renderer = PillowRenderer(blobs, DecodePool(1, 30, 256 * 2**20), 50_000_000, deleted_first)
    try:
        with pytest.raises(NotFound, match="deleted while its thumbnail"):
            renderer.render("originals/gone", "thumbnails/gone-200", 200)
    finally:
        renderer.close()
