"""The image routes: upload, list, get, delete, thumbnails, originals and expiring links."""

from __future__ import annotations

from typing import Annotated

import anyio
import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from imagify.domain.errors import InvalidInput
from imagify.domain.model import Image, User
from imagify.domain.ports import Presigner
from imagify.domain.services.images import ImageService
from imagify.domain.services.links import LinkService
from imagify.entrypoints.container import decode_waits as decode_wait_capacity
from imagify.entrypoints.http.observability import scope_header
from imagify.entrypoints.http.deps import (
    SECURITY, USER, base_url, encoded_pages, provide_reader, provide_user, root,
)
from imagify.entrypoints.http.numbers import ascii_int
from imagify.entrypoints.http.openapi_docs import LinkOperation, UploadOperation, errors, image_bytes_operation
from imagify.entrypoints.http.responses import (
    RANGE_ERROR,
    EncodedResponse,
    bytes_response,
    not_modified,
    not_modified_response,
    original_response,
    read_all,
    redirect_response,
)
from imagify.entrypoints.http.schemas import (
    ImageOut, ImagePage, LinkIn, LinkInfoOut, LinkOut, image_out, link_info_out,
)
from imagify.entrypoints.http.upload import receive_upload
from imagify.settings import Settings

THUMBNAIL_CACHE = "private, max-age=86400"
ThumbnailFormat = Annotated[
    str | None,
    QueryParameter(
        description="jpeg, png, webp or avif: overrides Accept negotiation (webp and avif need "
        "format:webp / format:avif); without it the best format Accept names and your tiers grant"
    ),
]
ORIGINAL_CACHE = "private, max-age=3600"
MAX_HEIGHT_DIGITS = 5  # 1..4096, and a few leading zeros at most


class Redirects:
    """In redirect mode, where a blob can be fetched straight from S3; None in proxy mode."""

    def __init__(self, presigner: Presigner | None, seconds: int) -> None:
        self._presigner = presigner
        self._seconds = seconds

    def location(self, key: str) -> str | None:
        return None if self._presigner is None else self._presigner.presigned_url(key, self._seconds)


def redirects_of(request: Request) -> Redirects:
    """The app's one Redirects, made on first use (asking the container for the presigner
    and the settings on every request cost warm byte requests 5% of their time)."""
    state = request.app.state
    redirects = state.get("redirects")
    if redirects is None:
        container = root(request)
        settings: Settings = container.settings()
        redirects = state["redirects"] = Redirects(container.presigner(), settings.presigned_url_seconds)
    return redirects  # type: ignore[no-any-return]


def decode_waits(request: Request, kind: str) -> anyio.CapacityLimiter:
    """The threads that may wait on the decode pool for this kind (see decode_wait_capacity)."""
    state = request.app.state
    limiter = state.get(f"{kind}_waits")
    if limiter is None:  # made on the serving event loop, on first use
        size = decode_wait_capacity(kind, root(request).decode_pool().workers)
        limiter = state[f"{kind}_waits"] = anyio.CapacityLimiter(size)
    return limiter  # type: ignore[no-any-return]


def render_waits(request: Request) -> anyio.CapacityLimiter:
    return decode_waits(request, "render")


async def store_upload(request: Request, user: User) -> Image:
    """Receive the multipart upload within the settings' limits, then check and store it,
    waiting on the uploads' own capacity (the API's route and the console's)."""
    services = root(request)
    settings, images = services.settings(), services.images()
    upload = await receive_upload(request, settings.max_upload_bytes, settings.body_idle_timeout_seconds)
    try:
        return await anyio.to_thread.run_sync(
            images.upload, user, upload.filename, upload.file, upload.size,
            limiter=decode_waits(request, "upload"),
        )
    finally:
        upload.file.close()


class ImageController(Controller):
    path = "/api/v1/images"
    tags = ["images"]
    security = SECURITY
    dependencies = USER

    @post(
        "/",
        status_code=201,
        operation_class=UploadOperation,
        responses=errors(400, 401, 408, 413, 415, 503),
        summary="Upload an image (multipart, field 'file')",
        request_max_body_size=None,  # receive_upload holds it to the settings' upload limit
    )
    async def upload(
        self, request: Request, user: NamedDependency[User], images: NamedDependency[ImageService], settings: NamedDependency[Settings]
    ) -> ImageOut:
        image = await store_upload(request, user)
        return image_out(image, user, base_url(request, settings))

    @get("/", responses=errors(400, 401), summary="Your images, newest first")
    async def list_images(
        self,
        request: Request,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="page size")] = 20,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> Response[ImagePage]:
        user = await provide_user(request)  # called, not injected: see deps.root
        services = root(request)
        images, settings = services.images(), services.settings()
        page = images.known_page(user, cursor, limit)
        remembered = page is not None
        if page is None:
            page = await anyio.to_thread.run_sync(images.list, user, cursor, limit)
        body = encoded_pages(request).body(page, user, base_url(request, settings), remembered)
        return EncodedResponse(body, MediaType.JSON, {})

    @get("/{image_id:str}", sync_to_thread=True, responses=errors(401, 404), summary="One image")
    def get_image(
        self, request: Request, user: NamedDependency[User], images: NamedDependency[ImageService], settings: NamedDependency[Settings], image_id: FromPath[str]
    ) -> ImageOut:
        return image_out(images.get(user, image_id), user, base_url(request, settings))

    @delete("/{image_id:str}", sync_to_thread=True, responses=errors(401, 404, 503),
            summary="Delete an image, its thumbnails and its links")
    def delete_image(self, user: NamedDependency[User], images: NamedDependency[ImageService], image_id: FromPath[str]) -> None:
        images.delete(user, image_id)

    @get(
        "/{image_id:str}/thumbnails/{height:str}",
        operation_class=image_bytes_operation(redirects=True, negotiated=True),
        responses=errors(400, 401, 403, 404, 502, 503),
        summary="A thumbnail, rendered on first access (a 302 to S3 in redirect mode)",
    )
    async def thumbnail(
        self, request: Request, image_id: FromPath[str], height: FromPath[str], format: ThumbnailFormat = None
    ) -> Response:
        user = await provide_reader(request)  # the session cookie too
        pixels = ascii_int(height, max_digits=MAX_HEIGHT_DIGITS)
        if pixels is None:  # a path segment: say what is wrong instead of a bare 404
            raise InvalidInput(f"thumbnail height must be an integer from 1 to 4096, got {height[:40]!r}")
        images, redirects = root(request).images(), redirects_of(request)
        accept = None if format is not None else scope_header(request.scope, b"accept")
        vary = "Accept" if format is None else None  # negotiated: the answer depends on Accept
        # From memory on the event loop when it can be (no I/O), else in a worker thread.
        rendition = images.known_thumbnail(user, image_id, pixels, accept, format)
        if rendition is None:
            rendition = await anyio.to_thread.run_sync(
                images.thumbnail, user, image_id, pixels, accept, format, limiter=render_waits(request)
            )
        if not_modified(request, rendition.etag):
            return not_modified_response(rendition.etag, THUMBNAIL_CACHE, vary)
        if location := redirects.location(rendition.storage_key):
            return redirect_response(location)
        key = rendition.storage_key
        blob = images.known_blob(key) or await anyio.to_thread.run_sync(images.open, key)
        data = await read_all(blob)
        return bytes_response(data, rendition.etag, THUMBNAIL_CACHE, rendition.content_type, vary)

    @get(
        "/{image_id:str}/original",
        operation_class=image_bytes_operation(ranges=True, redirects=True),
        responses={**errors(401, 403, 404, 503), **RANGE_ERROR},
        summary="The original bytes; a Range header gets 206 (a 302 to S3 in redirect mode)",
    )
    async def original(self, request: Request, image_id: FromPath[str]) -> Response | Stream:
        user = await provide_reader(request)
        images, redirects = root(request).images(), redirects_of(request)
        image = images.known_original(user, image_id)
        if image is None:
            image = await anyio.to_thread.run_sync(images.original, user, image_id)
        if not_modified(request, image.etag):
            return not_modified_response(image.etag, ORIGINAL_CACHE)
        if location := redirects.location(image.storage_key):
            return redirect_response(location)  # S3 answers Range itself
        return await original_response(request, images, image, ORIGINAL_CACHE)

    @post(
        "/{image_id:str}/expiring-links",
        status_code=201,
        operation_class=LinkOperation,
        responses=errors(400, 401, 403, 404, 503),
        summary="A link to the original that works without auth until it expires",
    )
    async def create_link(
        self, request: Request, user: NamedDependency[User], links: NamedDependency[LinkService], settings: NamedDependency[Settings], image_id: FromPath[str]
    ) -> LinkOut:
        # Decoded strictly by hand: Litestar's own conversion would accept 300.0 and "300".
        try:
            body = msgspec.json.decode(await request.body(), type=LinkIn, strict=True)
        except msgspec.DecodeError as error:
            raise InvalidInput(f'send JSON {{"seconds": <integer 300..30000>}}: {error}') from None
        link = await anyio.to_thread.run_sync(links.create, user, image_id, body.seconds)
        return LinkOut(f"{base_url(request, settings)}/l/{link.token}", link.token, link.expires_at)

    @get("/{image_id:str}/expiring-links", sync_to_thread=True, responses=errors(401, 404, 503),
         summary="The image's live links: ids and dates, never their tokens")
    def list_links(self, user: NamedDependency[User], links: NamedDependency[LinkService], image_id: FromPath[str]) -> list[LinkInfoOut]:
        return [link_info_out(link) for link in links.list(user, image_id)]

    @delete("/{image_id:str}/expiring-links", sync_to_thread=True, responses=errors(401, 404, 503),
            summary="Revoke every link of the image, at once on every process")
    def revoke_links(self, user: NamedDependency[User], links: NamedDependency[LinkService], image_id: FromPath[str]) -> None:
        links.revoke(user, image_id)

    @delete("/{image_id:str}/expiring-links/{link_id:str}", sync_to_thread=True, responses=errors(401, 404, 503),
            summary="Revoke one link of the image (by the id its listing shows)")
    def revoke_link(
        self, user: NamedDependency[User], links: NamedDependency[LinkService], image_id: FromPath[str], link_id: FromPath[str]
    ) -> None:
        links.revoke(user, image_id, link_id)
