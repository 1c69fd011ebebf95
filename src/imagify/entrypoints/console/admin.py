"""The console's admin pages: tiers with a permission editor, and user accounts."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, get, post
from litestar.params import FromPath

from imagify.domain.errors import Conflict, InvalidInput
from imagify.domain.model import MIN_PASSWORD_LENGTH, User
from imagify.domain.permissions import (
    EXPIRING_LINKS,
    MAX_THUMBNAIL_HEIGHT,
    MIN_THUMBNAIL_HEIGHT,
    ORIGINAL_ACCESS,
    Tier,
    thumbnail_codename,
)
from imagify.entrypoints.console.pages import render, see_other
from imagify.entrypoints.console.session import CSRF_FIELD, check_csrf, signed_in_admin
from imagify.entrypoints.http.deps import root

USERS_PAGE = 25


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    return form


def _run(request: Request, method: str, *args: Any, **kwargs: Any) -> Any:
    """An AdminService use case, in a worker thread."""
    use_case = getattr(root(request).admin(), method)
    return anyio.to_thread.run_sync(lambda: use_case(*args, **kwargs))


@get("/admin")
async def admin_home(request: Request) -> Response:
    await signed_in_admin(request)
    return see_other("/console/admin/tiers")


# Tiers


def permissions_from(form: Any) -> tuple[list[str], list[int]]:
    """The codenames an admin picked with chips and switches, built here, never typed."""
    heights: list[int] = []
    for raw in form.getall("height", []):
        text = str(raw).strip()
        if not text:
            continue
        if not text.isdigit() or not MIN_THUMBNAIL_HEIGHT <= int(text) <= MAX_THUMBNAIL_HEIGHT:
            raise InvalidInput(
                f"a thumbnail height must be a whole number from {MIN_THUMBNAIL_HEIGHT} to "
                f"{MAX_THUMBNAIL_HEIGHT}, got {text!r}"
            )
        heights.append(int(text))
    heights = sorted(set(heights))
    codenames = [thumbnail_codename(h) for h in heights]
    codenames += [ORIGINAL_ACCESS] if form.get("original") else []
    codenames += [EXPIRING_LINKS] if form.get("links") else []
    return codenames, heights


LIMIT_LABELS = {
    "max_images": "Images kept",
    "max_storage_bytes": "Bytes of originals stored",
    "max_upload_bytes": "Bytes per upload",
    "max_link_seconds": "Seconds an expiring link lives (300–30000)",
}


def limits_from(form: Any) -> dict[str, int | None] | None:
    """The limits typed in the form (empty: unlimited); None when the form has no limit fields."""
    if not any(name in form for name in LIMIT_LABELS):
        return None
    limits: dict[str, int | None] = {}
    for name in LIMIT_LABELS:
        text = str(form.get(name) or "").strip()
        if text and not text.isdigit():
            raise InvalidInput(f"limit {name!r} must be a whole number, or empty for unlimited; got {text!r}")
        limits[name] = int(text) if text else None
    return limits


def _tier_page(request: Request, user: User, tier: dict[str, Any], status: int = 200, **context: Any) -> Response:
    return render(
        request, "tier.html", user, status=status, tier=tier,
        min_height=MIN_THUMBNAIL_HEIGHT, max_height=MAX_THUMBNAIL_HEIGHT, limit_labels=LIMIT_LABELS,
        confirm=request.query_params.get("confirm") == "delete", **context,
    )


def _tier_view(tier: Tier) -> dict[str, Any]:
    p = tier.permissions
    return {"name": tier.name, "heights": p.thumbnail_heights, "original": p.original_access, "links": p.expiring_links,
            "limits": tier.limits.as_dict()}


@get("/admin/tiers")
async def tiers_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    tiers = await _run(request, "tiers_with_holders")
    return render(request, "tiers.html", user, tiers=[(_tier_view(t), n) for t, n in tiers])


@get("/admin/tiers/new")
async def new_tier_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    return _tier_page(request, user, {"name": "", "heights": [], "original": False, "links": False, "limits": {}}, new=True)


@post("/admin/tiers")
async def create_tier(request: Request) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    name = str(form.get("name", "")).strip()
    view = {"name": name, "original": bool(form.get("original")), "links": bool(form.get("links")), "heights": [],
            "limits": {n: form.get(n) for n in LIMIT_LABELS}}
    try:
        codenames, view["heights"] = permissions_from(form)
        await _run(request, "create_tier", user.username, name, codenames, limits_from(form))
    except (InvalidInput, Conflict) as error:
        return _tier_page(request, user, view, 409 if isinstance(error, Conflict) else 400, new=True, error=error.detail)
    return see_other(f"/console/admin/tiers/{name}", "tier-created")


@get("/admin/tiers/{name:str}")
async def tier_page(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    return _tier_page(request, user, _tier_view(await _run(request, "get_tier", name)))


@post("/admin/tiers/{name:str}")
async def save_tier(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    current = await _run(request, "get_tier", name)
    view = {**_tier_view(current), "original": bool(form.get("original")), "links": bool(form.get("links")),
            "limits": {n: form.get(n) for n in LIMIT_LABELS}}
    try:
        codenames, view["heights"] = permissions_from(form)
        # Codenames this editor does not show (added through the API) are kept.
        shown = {c for c in current.permissions.codenames if c.startswith("thumbnail:")} | {ORIGINAL_ACCESS, EXPIRING_LINKS}
        kept = [c for c in current.permissions.codenames if c not in shown]
        await _run(request, "replace_tier", user.username, name, codenames + kept, limits_from(form))
    except InvalidInput as error:
        return _tier_page(request, user, view, 400, error=error.detail)
    return see_other(f"/console/admin/tiers/{name}", "tier-saved")


@post("/admin/tiers/{name:str}/delete")
async def delete_tier(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    await _form(request)
    try:
        await _run(request, "delete_tier", user.username, name)
    except Conflict as error:
        return _tier_page(request, user, _tier_view(await _run(request, "get_tier", name)), 409, error=error.detail)
    return see_other("/console/admin/tiers", "tier-deleted")


# Users


@get("/admin/users")
async def users_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    search = request.query_params.get("q", "").strip()
    after = request.query_params.get("after") or None
    users, more = await _run(request, "list_users", after, USERS_PAGE, search=search)
    return render(
        request, "users.html", user, users=users, search=search, after=after,
        next_after=users[-1].username if more and users else None,
    )


async def _user_page(
    request: Request, actor: User, template: str, account: dict[str, Any], status: int = 200, **context: Any
) -> Response:
    tiers = await _run(request, "list_tiers")
    return render(
        request, template, actor, status=status, account=account, tiers=[t.name for t in tiers],
        min_length=MIN_PASSWORD_LENGTH, confirm=request.query_params.get("confirm") == "delete", **context,
    )


def _user_view(account: User) -> dict[str, Any]:
    return {"username": account.username, "tiers": account.tiers, "is_admin": account.is_admin,
            "permissions": account.permissions.sorted()}


@get("/admin/users/new")
async def new_user_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    return await _user_page(request, user, "user_new.html", {"username": "", "tiers": [], "is_admin": False})


@post("/admin/users")
async def create_user(request: Request) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    username = str(form.get("username", "")).strip()
    tiers = [str(t) for t in form.getall("tiers", [])]
    is_admin = bool(form.get("is_admin"))
    try:
        await _run(request, "create_user", user.username, username, str(form.get("password", "")), tiers, is_admin)
    except (InvalidInput, Conflict) as error:
        account = {"username": username, "tiers": tiers, "is_admin": is_admin}
        status = 409 if isinstance(error, Conflict) else 400
        return await _user_page(request, user, "user_new.html", account, status, error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-created")


@get("/admin/users/{username:str}")
async def user_page(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    account = await _run(request, "get_user", username)
    return await _user_page(request, user, "user.html", _user_view(account))


@post("/admin/users/{username:str}")
async def save_user(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    tiers = [str(t) for t in form.getall("tiers", [])]
    # Your own admin flag is shown but cannot be sent: it is not changed from here.
    is_admin = None if username == user.username else bool(form.get("is_admin"))
    try:
        await _run(request, "update_user", user.username, username, tiers=tiers, is_admin=is_admin)
    except (InvalidInput, Conflict) as error:
        account = {**_user_view(await _run(request, "get_user", username)), "tiers": tiers}
        return await _user_page(request, user, "user.html", account, 400, error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-saved")


@post("/admin/users/{username:str}/password")
async def reset_password(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    try:
        await _run(request, "update_user", user.username, username, password=str(form.get("password", "")))
    except InvalidInput as error:
        account = _user_view(await _run(request, "get_user", username))
        return await _user_page(request, user, "user.html", account, 400, password_error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-password")


@post("/admin/users/{username:str}/delete")
async def delete_user(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    await _form(request)
    try:
        await _run(request, "delete_user", user.username, username)
    except Conflict as error:
        account = _user_view(await _run(request, "get_user", username))
        return await _user_page(request, user, "user.html", account, 409, error=error.detail)
    return see_other("/console/admin/users", "user-deleted")


ROUTES = [
    admin_home, tiers_page, new_tier_page, create_tier, tier_page, save_tier, delete_tier,
    users_page, new_user_page, create_user, user_page, save_user, reset_password, delete_user,
]
