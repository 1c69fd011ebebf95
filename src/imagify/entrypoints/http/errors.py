"""Every error becomes `{"status_code", "detail"}` with a detail a person can act on."""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from imagify.domain import errors
from imagify.entrypoints.http.observability import client_gone

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024  # every route's body limit, but the upload's

STATUS = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.UnsupportedFormat: 415,
    errors.RenderFailed: 502,
    errors.Unavailable: 503,
}


def status_of(error: errors.DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 500


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        {"status_code": status, "detail": detail},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def domain_error(_: Request, error: errors.DomainError) -> Response:
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error.detail)
    return error_response(status, error.detail, headers)


def validation_error(_: Request, error: ValidationException) -> Response:
    """Litestar's 'Validation failed for POST /x' says little: name the bad field."""
    messages = []
    for item in error.extra or []:
        if isinstance(item, dict):
            key = item.get("key")
            text = item.get("message", "")
            messages.append(f"{key}: {text}" if key else text)
    detail = "; ".join(m for m in messages if m) or error.detail
    return error_response(400, detail)


def http_error(request: Request, error: HTTPException) -> Response:
    detail = error.detail
    if isinstance(error, RequestEntityTooLarge):  # Litestar's own detail names no limit
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"the request body is larger than this route's limit of {limit} bytes"
    return error_response(error.status_code, detail, error.headers)


def unexpected_error(request: Request, error: Exception) -> Response:
    # The route template, not the path: `/l/{token}` must not put a live token in the logs.
    route = request.scope.get("path_template") or "<unmatched>"
    if client_gone():  # what failed was reading from a client that left: not our error
        log.info("client went away on %s %s: %s", request.method, route, type(error).__name__)
        return error_response(500, "the client went away")
    log.exception("unhandled error on %s %s", request.method, route)
    return error_response(500, "internal error; it has been logged")


HANDLERS = {
    errors.DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
