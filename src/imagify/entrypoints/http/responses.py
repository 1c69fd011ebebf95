"""Image byte responses: ETag, Cache-Control, 304 on If-None-Match, byte ranges, redirects."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import anyio
from litestar import Request, Response
from litestar.openapi import ResponseSpec
from litestar.response import Stream
from litestar.types import Send

from imagify.domain.model import Image
from imagify.domain.ports import StoredBlob
from imagify.domain.services.images import ImageService
from imagify.entrypoints.http.errors import error_response
from imagify.entrypoints.http.numbers import ascii_int
from imagify.entrypoints.http.observability import is_head, scope_header
from imagify.entrypoints.http.schemas import ErrorOut

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
# Up to this size a blob is read whole in the handler's worker thread and sent in one
# message; larger ones stream in chunks of this size (one worker-thread hop per chunk).
WHOLE_BELOW = 1024 * 1024
CHUNK = 1024 * 1024
REDIRECT_CACHE = "private, no-store"  # a presigned URL is a short-lived credential

# For the routes' OpenAPI `responses`, beside openapi_docs.errors(...).
RANGE_ERROR = {416: ResponseSpec(ErrorOut, description="The Range asked for is outside the file")}

Span = tuple[int, int]  # first and last byte, inclusive
UNSATISFIABLE: Span = (-1, -1)


class EncodedResponse(Response[bytes]):
    """A whole body already in memory, sent with headers encoded once per response.

    For the answers served most (warm thumbnails, listing pages, small originals, 304s):
    Litestar's Response normalises and re-encodes every header on each request, about a
    tenth of such a request's cost. The status, body and headers sent are the same.
    """

    def __init__(self, body: bytes, media_type: str | None, headers: dict[str, str], status_code: int = 200) -> None:
        super().__init__(body, status_code=status_code, media_type=media_type or "application/octet-stream")
        self._encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        if media_type is not None:
            self._encoded.append((b"content-type", media_type.encode("latin-1")))
        if status_code not in (204, 304):
            self._encoded.append((b"content-length", str(len(body)).encode()))

    def to_asgi_response(self, app: object = None, request: Request | None = None, **_: object) -> _Whole:  # type: ignore[override]
        # HEAD: ObservabilityMiddleware drops the body.
        return _Whole(self.status_code, self._encoded, b"" if self.status_code == 304 else self.content)


class _Whole:
    """The ASGI app of an EncodedResponse: two messages, nothing computed."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: object, receive: object, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def quoted(etag: str) -> str:
    return f'"{etag}"'


def not_modified(request: Request, etag: str) -> bool:
    """True when If-None-Match names this ETag (weak or strong) or is '*'."""
    value = scope_header(request.scope, b"if-none-match")
    if not value:
        return False
    for candidate in value.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == quoted(etag):
            return True
    return False


def caching_headers(etag: str, cache_control: str, vary: str | None = None) -> dict[str, str]:
    headers = {"ETag": quoted(etag), "Cache-Control": cache_control, **SAFE_HEADERS}
    if vary:
        headers["Vary"] = vary
    return headers


def not_modified_response(etag: str, cache_control: str, vary: str | None = None) -> Response:
    return EncodedResponse(b"", None, caching_headers(etag, cache_control, vary), status_code=304)


def redirect_response(location: str) -> Response:
    """302 to a presigned URL; never cached, since the URL expires and carries a signature."""
    return Response(
        b"", status_code=302, headers={"Location": location, "Cache-Control": REDIRECT_CACHE}
    )


def requested_span(request: Request, etag: str, size: int) -> Span | None:
    """The one byte range asked for, None for the whole blob, or UNSATISFIABLE.

    Per RFC 9110 a Range that does not parse, names several ranges, or comes with an
    If-Range that does not match the current ETag is ignored: the answer is the whole blob.
    """
    header = request.headers.get("range")
    if not header:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != quoted(etag):
        return None  # changed since (or a date: we send no Last-Modified): send it all
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = (part.strip() for part in spec.strip().partition("-"))
    # Numbers in other digits than 0-9, or too long to be a position, make it malformed.
    first, last = ascii_int(first_text), ascii_int(last_text)
    if not dash or (first_text and first is None) or (last_text and last is None):
        return None
    if first is None:
        if last is None:
            return None
        if last == 0 or size == 0:  # a suffix: the last N bytes
            return UNSATISFIABLE
        return max(0, size - last), size - 1
    start = first
    end = last if last is not None else size - 1
    if last is not None and end < start:
        return None  # invalid syntax, so ignored
    if start >= size:
        return UNSATISFIABLE
    return start, min(end, size - 1)


def blob_response(
    request: Request, blob: StoredBlob, etag: str, cache_control: str, media_type: str
) -> Response | Stream:
    """The blob, or the byte range asked for (206), or 416; bytes copied once through Python."""
    headers = caching_headers(etag, cache_control)
    headers["Accept-Ranges"] = "bytes"
    span = requested_span(request, etag, blob.size)
    if span == UNSATISFIABLE:
        blob.stream.close()
        headers = {"Content-Range": f"bytes */{blob.size}", "Accept-Ranges": "bytes"}
        return error_response(
            416, f"the range {request.headers.get('range', '')[:100]!r} is outside the {blob.size} bytes", headers
        )
    status, start, length = 200, 0, blob.size
    if span is not None:
        status, start, length = 206, span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{blob.size}"
    if length <= WHOLE_BELOW:
        try:
            _skip(blob.stream, start)
            data = _read_exactly(blob.stream, length)
        finally:
            blob.stream.close()
        return EncodedResponse(data, media_type, headers, status_code=status)
    headers["Content-Length"] = str(length)
    if is_head(request.scope):  # no bytes to read or send, only the headers
        blob.stream.close()
        return Stream(iter(()), status_code=status, media_type=media_type, headers=headers)
    return Stream(_window(blob.stream, start, length), status_code=status, media_type=media_type, headers=headers)


def bytes_response(data: bytes, etag: str, cache_control: str, media_type: str, vary: str | None = None) -> Response:
    return EncodedResponse(data, media_type, caching_headers(etag, cache_control, vary))


def _skip(stream: BinaryIO, count: int) -> None:
    """Move past `count` bytes: seek where the stream can, else read and drop them in chunks."""
    if count == 0:
        return
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        stream.seek(count, 1)
        return
    while count > 0:
        dropped = stream.read(min(CHUNK, count))
        if not dropped:
            raise OSError("the stored file is shorter than its recorded size")
        count -= len(dropped)


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) == length:
        return data
    parts = [data]
    missing = length - len(data)
    while missing > 0:
        more = stream.read(missing)
        if not more:
            raise OSError("the stored file is shorter than its recorded size")
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _window(stream: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        _skip(stream, start)
        while length > 0:
            chunk = stream.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


async def read_all(blob: StoredBlob) -> bytes:
    if isinstance(blob.stream, io.BytesIO):
        return blob.read_all()  # in memory: no thread needed
    return await anyio.to_thread.run_sync(blob.read_all)


async def original_response(request: Request, images: ImageService, image: Image, cache: str) -> Response | Stream:
    """The original (or the Range asked for): from memory on the event loop, else read in a thread."""
    blob = images.known_blob(image.storage_key)
    if blob is not None:
        return blob_response(request, blob, image.etag, cache, image.content_type)

    def read() -> Response | Stream:
        return blob_response(request, images.open(image.storage_key), image.etag, cache, image.content_type)

    return await anyio.to_thread.run_sync(read)
