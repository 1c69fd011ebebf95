"""Hostile images against the upload check (over HTTP) and the renderer (directly and through
the decode pool): each is refused with a detail a person can act on, within the budgets, and
every image the upload check accepts renders."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator
from functools import cache

import anyio
import httpx
import pytest
from PIL import Image

from imagify.adapters.decode_pool import DecodePool
from imagify.adapters.pillow import PillowImageInspector, PillowRenderer
from imagify.adapters.pillow_render import DECODE_ERRORS, render_thumbnail
from imagify.domain.errors import DomainError, NotAnImage, RenderFailed, TooLarge
from tests import hostile_images as hostile
from tests.hostile_images import CORPUS, Hostile, png_chunk
from tests.integration.conftest import assert_error, embedded_settings, login, running_app, upload
from tests.integration.test_pillow_render import DictBlobStorage

pytestmark = pytest.mark.integration
MAX_PIXELS = 50_000_000
BY_NAME = {h.name: h for h in CORPUS}


@cache
def corpus_bytes(name: str) -> bytes:
    return BY_NAME[name].data()


def grey_png(side: int, colour: int = 0) -> bytes:
    """side x side of black in a few hundred KB (colour 0: grey, 2: RGB, 6: RGBA)."""
    channels = {0: 1, 2: 3, 6: 4}[colour]
    raw = zlib.compress(b"\0" * (side * (1 + channels * side)), 1)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")


def slow_to_check_png() -> bytes:
    """196 MB of pixels to inflate, then 63 MiB of text: most of a second to check."""
    png = grey_png(7000, colour=6)
    text = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"t" * (1024 * 1024 - 64), 9))
    at = png.rindex(b"IEND") - 4
    return png[:at] + text * 63 + png[at:]


def real_images() -> dict[str, bytes]:
    def saved(fmt: str, **options: object) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (640, 480), (200, 30, 30)).save(out, fmt, **options)
        return out.getvalue()

    return {
        "jpeg": saved("JPEG"),
        "progressive-jpeg": hostile.many_scan_jpeg(),
        "png": saved("PNG"),
        "webp": saved("WEBP"),
        "lossless-webp": saved("WEBP", lossless=True),
    }


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, object, object]]:
    settings = embedded_settings(tmp_path_factory.mktemp("hostile"))
    with running_app(settings) as (container, client):
        yield container, client, login(container, client, "mallory", "basic")


# The upload check, over HTTP ---------------------------------------------------------------


@pytest.mark.parametrize("image", CORPUS, ids=[h.name for h in CORPUS])
def test_a_hostile_image_is_refused_at_upload_with_a_detail_that_says_why(app, image: Hostile) -> None:
    _, client, mallory = app
    started = time.monotonic()

    response = upload(client, mallory, corpus_bytes(image.name), "hostile.img")

    assert image.says in assert_error(response, image.status)
    assert time.monotonic() - started < 5


def test_a_jpeg_with_more_scans_than_any_encoder_writes_is_refused_at_upload(app) -> None:
    _, client, mallory = app
    detail = assert_error(upload(client, mallory, hostile.scan_bomb_jpeg()), 400)
    assert "more than 100 scans" in detail


def test_a_jpeg_whose_data_covers_16x16_of_a_7000x7000_header_is_refused_at_upload(app) -> None:
    _, client, mallory = app
    detail = assert_error(upload(client, mallory, hostile.lying_jpeg()), 400)
    assert "too short for its declared 7000x7000: truncated or lying about its size" in detail


def test_a_png_with_a_text_bomb_after_its_pixels_is_refused_at_upload(app) -> None:
    _, client, mallory = app
    detail = assert_error(upload(client, mallory, hostile.ztxt_bomb_png(), "bomb.png"), 400)
    assert "decompression bomb" in detail


def test_a_png_declaring_7000x7000_is_checked_without_decoding_its_pixels(app) -> None:
    container, client, mallory = app
    solid = io.BytesIO()
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(solid, "PNG")
    assert len(solid.getvalue()) < 300_000
    pool = container.decode_pool()
    pool.budget.largest = 0  # the module's earlier uploads

    response = upload(client, mallory, solid.getvalue(), "solid.png")

    assert response.status_code == 201, response.text
    assert response.json()["placeholder"] is None  # it comes with the first thumbnail
    assert pool.budget.largest <= 1024 * 1024  # not 7000 x 7000 x 4 = 187 MiB


def test_a_decode_larger_than_the_whole_memory_budget_is_refused_with_413(tmp_path) -> None:
    # The upload check does not decode a PNG, but an image no render could decode is
    # refused at upload (from its declared size), not on its first thumbnail.
    settings = embedded_settings(tmp_path, IMAGIFY_DECODE_MEMORY_MB="8")
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "basic")
        response = upload(client, ann, grey_png(2000, colour=2), "big.png")

    assert "more than the 8 MiB decode memory budget" in assert_error(response, 413)


def test_a_jpeg_whose_preview_could_not_fit_a_small_budget_is_checked_at_1_8_without_one(tmp_path) -> None:
    # Tall and narrow: shown turned it would be 1300 px high and keep a half-scale preview
    # (2 x 650 x 2500 x 3 bytes = 9.3 MiB counted); a budget of 8 MiB must not refuse it.
    settings = embedded_settings(tmp_path, IMAGIFY_DECODE_MEMORY_MB="8")
    out = io.BytesIO()
    Image.merge("RGB", [Image.effect_noise((1300, 5000), 30)] * 3).save(out, "JPEG", quality=80)
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "basic")
        response = upload(client, ann, out.getvalue(), "tall.jpg")
        assert response.status_code == 201, response.text
        image_id = response.json()["id"]
        assert not container.blobs().exists(f"previews/{image_id}")
        thumb = client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann.headers)
        assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (52, 200)


# The renderer ------------------------------------------------------------------------------


# What the pixel limit refuses never reaches render_thumbnail.
DECODABLE = [h for h in CORPUS if h.status != 413]


@pytest.mark.parametrize("image", DECODABLE, ids=[h.name for h in DECODABLE])
def test_render_thumbnail_refuses_a_hostile_image_quickly_instead_of_decoding_it(image: Hostile) -> None:
    started = time.monotonic()

    if image.renders:
        render_thumbnail(corpus_bytes(image.name), 200)
    else:
        with pytest.raises(DECODE_ERRORS):
            render_thumbnail(corpus_bytes(image.name), 200)

    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def renderer() -> Iterator[tuple[DictBlobStorage, PillowRenderer]]:
    blobs = DictBlobStorage()
    renderer = PillowRenderer(blobs, DecodePool(2, 10, 1024 * 2**20), MAX_PIXELS)
    yield blobs, renderer
    renderer.close()


# Those the renderer decodes anyway are the upload check's alone (it is stricter).
UNRENDERABLE = [h for h in CORPUS if not h.renders]


@pytest.mark.parametrize("image", UNRENDERABLE, ids=[h.name for h in UNRENDERABLE])
def test_the_pool_renderer_answers_every_hostile_image_with_a_clear_error(renderer, image: Hostile) -> None:
    blobs, pillow = renderer
    blobs.put(f"originals/{image.name}", corpus_bytes(image.name), "image/png")

    with pytest.raises((RenderFailed, TooLarge)) as refused:
        pillow.render(f"originals/{image.name}", f"thumbnails/{image.name}", 200)

    assert isinstance(refused.value, DomainError) and refused.value.detail


def test_every_image_the_upload_check_accepts_renders(decode_pool: DecodePool) -> None:
    inspector = PillowImageInspector(MAX_PIXELS, decode_pool)
    candidates = {**{h.name: corpus_bytes(h.name) for h in CORPUS}, **real_images()}
    accepted = []
    for name, data in candidates.items():
        try:
            inspector.inspect(io.BytesIO(data))
        except DomainError:
            continue
        accepted.append(name)
        assert render_thumbnail(data, 200).height == 200, name

    assert set(accepted) == set(real_images())


def test_a_lossless_webp_lying_about_its_size_is_refused_at_upload(decode_pool: DecodePool) -> None:
    inspector = PillowImageInspector(MAX_PIXELS, decode_pool)
    with pytest.raises(NotAnImage):
        inspector.inspect(io.BytesIO(hostile.lying_webp()))


def test_stray_bytes_between_jpeg_segments_are_tolerated_as_libjpeg_does(decode_pool: DecodePool) -> None:
    data = real_images()["jpeg"]
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    padded = data[:app0_end] + b"\0\0" + data[app0_end:]

    info = PillowImageInspector(MAX_PIXELS, decode_pool).inspect(io.BytesIO(padded))

    assert (info.content_type, info.width, info.height) == ("image/jpeg", 640, 480)


# The budgets -------------------------------------------------------------------------------


def test_a_render_past_the_wall_budget_is_killed_and_the_next_render_works(tmp_path) -> None:
    from functools import partial

    from tests.integration.faulty_renders import hang_once

    blobs = DictBlobStorage()
    blobs.put("originals/fine", grey_png(300), "image/png")
    pool = DecodePool(1, 0.5, 1024 * 2**20)
    # The first render hangs for 2.5 s (on any machine, however fast), the next ones do not.
    pillow = PillowRenderer(blobs, pool, MAX_PIXELS, partial(hang_once, str(tmp_path / "hung")))
    try:
        pool.start()  # a warm worker: the budget is the render's alone, not the worker's start
        started = time.monotonic()
        with pytest.raises(RenderFailed, match="timed out after 0.5 s"):
            pillow.render("originals/fine", "thumbnails/slow", 200)
        assert time.monotonic() - started < 2.4  # killed, not waited for

        pool.start()  # the killed worker was replaced: wait for the new one to answer
        assert pillow.render("originals/fine", "thumbnails/fine", 100).height == 100
    finally:
        pillow.close()


def test_a_decode_past_the_memory_rlimit_fails_cleanly_and_the_worker_survives() -> None:
    blobs = DictBlobStorage()
    blobs.put("originals/big", grey_png(7000, colour=2), "image/png")  # 196 MB decoded
    blobs.put("originals/fine", grey_png(300), "image/png")
    pool = DecodePool(1, 30, 1024 * 2**20, worker_memory_bytes=64 * 2**20)
    pillow = PillowRenderer(blobs, pool, MAX_PIXELS)
    try:
        with pytest.raises(RenderFailed, match="could not render the thumbnail"):
            pillow.render("originals/big", "thumbnails/big", 200)

        assert pillow.render("originals/fine", "thumbnails/fine", 100).height == 100
    finally:
        pillow.close()


def test_an_upload_check_past_the_wall_budget_is_refused_as_400_not_500() -> None:
    pool = DecodePool(1, 0.05, 1024 * 2**20)
    inspector = PillowImageInspector(MAX_PIXELS, pool)
    try:
        pool.start()
        with pytest.raises(NotAnImage, match="took longer than 0.05 s"):
            inspector.inspect(io.BytesIO(slow_to_check_png()))
    finally:
        pool.close()


# Slow decodes and fast requests ------------------------------------------------------------


class SlowInspector:
    """Every upload check takes a second, as a storm of hostile uploads would."""

    def __init__(self, inner: PillowImageInspector) -> None:
        self._inner = inner

    def inspect(self, stream):  # type: ignore[no-untyped-def]
        time.sleep(1)
        return self._inner.inspect(stream)


def test_a_storm_of_slow_upload_checks_does_not_hold_up_health_and_listing(tmp_path) -> None:
    settings = embedded_settings(tmp_path, IMAGIFY_RENDER_WORKERS="1")
    with running_app(settings) as (container, client):
        ann = login(container, client, "ann", "basic")
        container.inspector.override(SlowInspector(container.inspector()))
        container.images.reset()
        photo = io.BytesIO()
        Image.new("RGB", (64, 48)).save(photo, "JPEG")

        async def storm() -> tuple[float, float, list[int]]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
                statuses: list[int] = []

                async def one() -> None:
                    files = {"file": ("p.jpg", photo.getvalue(), "image/jpeg")}
                    statuses.append((await http.post("/api/v1/images", files=files, headers=ann.headers)).status_code)

                async with anyio.create_task_group() as tasks:
                    for _ in range(60):  # more than anyio's 40 default threads
                        tasks.start_soon(one)
                    await anyio.sleep(0.5)
                    started = time.monotonic()
                    assert (await http.get("/health/ready")).status_code == 200
                    ready = time.monotonic() - started
                    started = time.monotonic()
                    assert (await http.get("/api/v1/images", headers=ann.headers)).status_code == 200
                    listing = time.monotonic() - started
            return ready, listing, statuses

        ready, listing, statuses = anyio.run(storm)

    assert statuses == [201] * 60
    assert ready < 0.5 and listing < 0.5, (ready, listing)


# The Lambda function -----------------------------------------------------------------------


@pytest.mark.parametrize("image", [h for h in CORPUS if not h.renders], ids=lambda h: h.name)
def test_the_lambda_function_refuses_every_hostile_image_the_renderer_would_choke_on(image: Hostile) -> None:
    from tests.integration.lambda_endpoint import load_handler

    handler = load_handler()
    with pytest.raises(handler.Refused) as refused:
        handler._render(corpus_bytes(image.name), 200, MAX_PIXELS)

    assert refused.value.kind in ("InvalidImage", "ImageTooLarge") and str(refused.value)
