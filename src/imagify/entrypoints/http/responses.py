"""Image byte responses: ETag, Cache-Control, 304 on If-None-Match, safe headers."""

from __future__ import annotations

from litestar import Request, Response
from litestar.response import Stream

from imagify.domain.ports import StoredBlob

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def quoted(etag: str) -> str:
    return f'"{etag}"'


def not_modified(request: Request, etag: str) -> bool:
    """True when If-None-Match names this ETag (weak or strong) or is '*'."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == quoted(etag):
            return True
    return False


def caching_headers(etag: str, cache_control: str) -> dict[str, str]:
    return {"ETag": quoted(etag), "Cache-Control": cache_control, **SAFE_HEADERS}


def not_modified_response(etag: str, cache_control: str) -> Response:
    return Response(b"", status_code=304, headers=caching_headers(etag, cache_control))


def blob_response(blob: StoredBlob, etag: str, cache_control: str, media_type: str) -> Stream:
    headers = caching_headers(etag, cache_control)
    headers["Content-Length"] = str(blob.size)
    return Stream(blob.chunks(), media_type=media_type, headers=headers)


def bytes_response(data: bytes, etag: str, cache_control: str, media_type: str) -> Response:
    return Response(data, media_type=media_type, headers=caching_headers(etag, cache_control))
