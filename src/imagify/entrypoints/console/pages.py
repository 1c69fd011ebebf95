"""Rendering console pages, and turning every error into a page that says what happened."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from imagify.domain import errors
from imagify.domain.model import User
from imagify.entrypoints.console.session import LOGIN_PATH, LoginRequired, csrf_token, session_of
from imagify.entrypoints.http.errors import error_response, status_of

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
NO_STORE = {"Cache-Control": "no-store"}


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def human_seconds(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{seconds} s"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["size"] = human_size
templates.filters["duration"] = human_seconds


def render(
    request: Request, name: str, user: User | None = None, status: int = 200, **context: Any
) -> Response:
    session = session_of(request)
    html = templates.get_template(name).render(
        user=user,
        csrf=csrf_token(request, session) if user is not None and session else "",
        path=request.url.path,
        notice=NOTICES.get(request.query_params.get("done", "")),
        **context,
    )
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=NO_STORE)


def see_other(path: str, done: str | None = None) -> Redirect:
    """POST, then redirect (303) to a page, naming what was done for its notice."""
    return Redirect(f"{path}?done={done}" if done else path, status_code=303, headers=NO_STORE)


NOTICES = {
    "deleted": "The image was deleted.",
    "link-revoked": "The link was revoked; it no longer opens the image.",
    "links-revoked": "Every link of this image was revoked.",
    "password": "Your password was changed. Every other session and token has been signed out.",
    "tier-created": "The tier was created.",
    "tier-saved": "The tier was saved.",
    "tier-deleted": "The tier was deleted.",
    "user-created": "The user was created.",
    "user-saved": "The user was saved.",
    "user-password": "The password was reset; the user's sessions and tokens have been signed out.",
    "user-deleted": "The user and their images were deleted.",
    "logged-out": "You have logged out.",
}


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _error_page(request: Request, status: int, detail: str) -> Response:
    if _wants_json(request):
        return error_response(status, detail)
    try:
        return render(request, "error.html", status=status, code=status, detail=detail)
    except Exception:  # the error page itself must never fail
        log.exception("could not render the console's error page")
        return Response(detail, status_code=status, media_type=MediaType.TEXT)


def login_required(request: Request, error: LoginRequired) -> Response:
    """GET: to the login page and back. A change: 401 (the form's page said who you were)."""
    if request.method in ("GET", "HEAD") and not _wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303, headers=NO_STORE)
    return _error_page(request, 401, error.detail)


def domain_error(request: Request, error: errors.DomainError) -> Response:
    status = status_of(error)
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error.detail)
    return _error_page(request, status, error.detail)


def http_error(request: Request, error: HTTPException) -> Response:
    response = _error_page(request, error.status_code, error.detail)
    response.headers.update(error.headers or {})
    return response


def unexpected_error(request: Request, error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.scope.get("path_template") or "<console>")
    return _error_page(request, 500, "Something went wrong on our side; it has been logged. Try again.")


HANDLERS = {
    LoginRequired: login_required,
    errors.DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
