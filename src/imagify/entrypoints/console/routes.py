"""The console's pages for every user: log in and out, my images, upload, one image, password."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import MediaType, Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from imagify.domain.errors import InvalidInput, Unauthorized
from imagify.domain.model import MAX_LINK_SECONDS, MIN_LINK_SECONDS, MIN_PASSWORD_LENGTH, Image, User
from imagify.entrypoints.console import admin
from imagify.entrypoints.console.pages import HANDLERS, HERE, NO_STORE, human_seconds, render, see_other
from imagify.entrypoints.console.session import (
    CSRF_FIELD,
    check_csrf,
    check_login_csrf,
    end_session,
    login_csrf,
    login_nonce,
    set_login_nonce,
    session_of,
    set_session,
    signed_in,
)
from imagify.entrypoints.http.deps import base_url, root
from imagify.entrypoints.http.throttle import (
    LoginLimits,
    client_address,
    throttled_login,
    throttled_password_change,
)
from imagify.entrypoints.http.routes.images import store_upload

PAGE_SIZE = 24
LINK_PRESETS = [(300, "5 minutes"), (3600, "1 hour"), (MAX_LINK_SECONDS, "8 h 20 min (longest)")]


async def form_of(request: Request) -> Any:
    """The submitted form, after its CSRF token was checked."""
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    return form


def safe_next(target: object) -> str:
    """Only a path inside the console: never an open redirect."""
    if isinstance(target, str) and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return "/console/"


def card(image: Image, user: User) -> dict[str, Any]:
    heights = user.permissions.thumbnail_heights
    return {
        "id": image.id,
        "filename": image.filename,
        "size": image.size_bytes,
        "width": image.width,
        "height": image.height,
        "created_at": image.created_at.strftime("%Y-%m-%d %H:%M"),
        "thumbnail": f"/api/v1/images/{image.id}/thumbnails/{heights[-1]}" if heights else None,
        "href": f"/console/images/{image.id}",
    }


# Log in and out


def _login_page(request: Request, status: int = 200, error: str | None = None, username: str = "") -> Response:
    nonce, new = login_nonce(request)
    response = render(
        request, "login.html", status=status, error=error, username=username,
        login_csrf=login_csrf(request, nonce), next=safe_next(request.query_params.get("next")),
    )
    if new:
        set_login_nonce(response, request, nonce)
    return response


@get("/login", sync_to_thread=False)
def login_page(request: Request) -> Response:
    return _login_page(request)


@post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    check_login_csrf(request, form.get(CSRF_FIELD))
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    services = root(request)
    try:
        token, expires = await anyio.to_thread.run_sync(
            throttled_login, services.login_throttle(), services.auth(), username, password,
            client_address(request), LoginLimits.of(services.settings()),
        )
    except Unauthorized as error:
        return _login_page(request, 401, error.detail, username)
    response: Response = Redirect(safe_next(form.get("next")), status_code=303, headers=NO_STORE)
    set_session(response, request, token, expires)
    return response


@post("/logout")
async def logout(request: Request) -> Response:
    """End this session on every process (not the user's others), then drop the cookie."""
    await signed_in(request)
    await form_of(request)
    session = session_of(request)
    assert session is not None  # signed_in found it
    try:
        await anyio.to_thread.run_sync(root(request).auth().revoke, session)
    except Unauthorized:
        pass  # it ended meanwhile (logged out in another tab): the cookie is all that is left
    response: Response = see_other("/console/login", "logged-out")
    end_session(response)
    return response


# My images


@get("/")
async def gallery(request: Request) -> Response:
    user = await signed_in(request)
    cursor = request.query_params.get("cursor") or None
    page = await anyio.to_thread.run_sync(root(request).images().list, user, cursor, PAGE_SIZE)
    settings = root(request).settings()
    own_limit = user.limits.max_upload_bytes
    return render(
        request, "gallery.html", user,
        cards=[card(image, user) for image in page.items], next_cursor=page.next_cursor,
        more=cursor is not None, usage=user.usage, limits=user.limits,
        max_upload=settings.max_upload_bytes if own_limit is None else min(own_limit, settings.max_upload_bytes),
    )


@post("/images", request_max_body_size=None)  # store_upload holds it to the upload limit
async def upload(request: Request) -> Response:
    """One file from the upload form (XMLHttpRequest, CSRF in the header); JSON back."""
    user = await signed_in(request)
    check_csrf(request, None)
    image = await store_upload(request, user)
    return Response(card(image, user), status_code=201, media_type=MediaType.JSON, headers=NO_STORE)


async def _image_page(request: Request, user: User, image_id: str, status: int = 200, **context: Any) -> Response:
    image = await anyio.to_thread.run_sync(root(request).images().get, user, image_id)
    live = await anyio.to_thread.run_sync(root(request).link_service().list, user, image_id)
    longest = user.limits.max_link_seconds or MAX_LINK_SECONDS
    presets = [(s, label) for s, label in LINK_PRESETS if s < longest] + [(longest, f"{human_seconds(longest)} (longest)")]
    return render(
        request, "image.html", user, status=status, image=image, info=card(image, user),
        heights=user.permissions.thumbnail_heights, perms=user.permissions, live_links=live,
        presets=presets, min_seconds=MIN_LINK_SECONDS, max_seconds=longest,
        confirm=request.query_params.get("confirm") == "delete", **context,
    )


@get("/images/{image_id:str}")
async def image_page(request: Request, image_id: FromPath[str]) -> Response:
    return await _image_page(request, await signed_in(request), image_id)


@post("/images/{image_id:str}/links")
async def create_link(request: Request, image_id: FromPath[str]) -> Response:
    user = await signed_in(request)
    form = await form_of(request)
    raw = str(form.get("preset") or form.get("seconds") or "").strip()
    services = root(request)
    try:
        seconds: object = int(raw) if raw.isdigit() else raw
        link = await anyio.to_thread.run_sync(services.link_service().create, user, image_id, seconds)
    except InvalidInput as error:
        return await _image_page(request, user, image_id, 400, link_error=error.detail, seconds=raw)
    url = f"{base_url(request, services.settings())}/l/{link.token}"
    return await _image_page(request, user, image_id, 201, link=url, link_expires=link.expires_at, seconds=raw)


@post("/images/{image_id:str}/links/revoke")
async def revoke_links(request: Request, image_id: FromPath[str]) -> Response:
    """Revoke one link (form field link_id) or, without it, every link of the image."""
    user = await signed_in(request)
    form = await form_of(request)
    link_id = str(form.get("link_id") or "") or None
    await anyio.to_thread.run_sync(root(request).link_service().revoke, user, image_id, link_id)
    return see_other(f"/console/images/{image_id}", "link-revoked" if link_id else "links-revoked")


@post("/images/{image_id:str}/delete")
async def delete_image(request: Request, image_id: FromPath[str]) -> Response:
    user = await signed_in(request)
    await form_of(request)
    await anyio.to_thread.run_sync(root(request).images().delete, user, image_id)
    return see_other("/console/", "deleted")


# My password


@get("/password")
async def password_page(request: Request) -> Response:
    user = await signed_in(request)
    return render(request, "password.html", user, errors={}, min_length=MIN_PASSWORD_LENGTH)


@post("/password")
async def change_password(request: Request) -> Response:
    user = await signed_in(request)
    form = await form_of(request)
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    services = root(request)
    problems: dict[str, str] = {}
    if new != again:
        problems["again"] = "the two new passwords differ"
    else:
        try:
            await anyio.to_thread.run_sync(
                throttled_password_change, services.login_throttle(), services.auth(), user, current, new,
                client_address(request), LoginLimits.of(services.settings()),
            )
        except Unauthorized as error:
            problems["current"] = error.detail
        except InvalidInput as error:
            problems["new"] = error.detail
    if problems:
        return render(request, "password.html", user, status=400, errors=problems, min_length=MIN_PASSWORD_LENGTH)
    # The old session ended with the change: this browser gets a new one.
    token, expires = await anyio.to_thread.run_sync(
        throttled_login, services.login_throttle(), services.auth(), user.username, new, client_address(request),
        LoginLimits.of(services.settings()),
    )
    response: Response = see_other("/console/", "password")
    set_session(response, request, token, expires)
    return response


console_router = Router(
    path="/console",
    route_handlers=[
        login_page, login, logout, gallery, upload, image_page, create_link, revoke_links, delete_image,
        password_page, change_password, *admin.ROUTES,
        create_static_files_router("/static", [HERE / "static"], name="console-static"),
    ],
    exception_handlers=HANDLERS,  # type: ignore[arg-type]
    include_in_schema=False,
)
