"""The console's admin pages: tiers with a permission editor, and user accounts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from litestar import Request, Response, get, post
from litestar.params import FromPath

from imagify.domain.errors import Conflict, InvalidInput
from imagify.domain.model import MIN_PASSWORD_LENGTH, User
from imagify.domain.permissions import (
    EXPIRING_LINKS,
    FORMAT_CODENAMES,
    MAX_THUMBNAIL_HEIGHT,
    MIN_THUMBNAIL_HEIGHT,
    ORIGINAL_ACCESS,
    Tier,
    thumbnail_codename,
)
from imagify.domain.services.admin import AdminService
from imagify.entrypoints.console.pages import render, see_other
from imagify.entrypoints.console.session import CSRF_FIELD, check_csrf, signed_in_admin
from imagify.entrypoints.http.deps import root

USERS_PAGE = 25
# The tier form's switches: form field -> the codename it grants.
SWITCHES = {"original": ORIGINAL_ACCESS, "links": EXPIRING_LINKS,
            "webp": FORMAT_CODENAMES[0], "avif": FORMAT_CODENAMES[1]}  # fmt: skip
T = TypeVar("T")


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    return form


async def _admin(request: Request, use_case: Callable[[AdminService], T]) -> T:
    """`use_case(the AdminService)`, in a worker thread (the use cases block on the database)."""
    return await anyio.to_thread.run_sync(use_case, root(request).admin())


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
    codenames += [codename for field, codename in SWITCHES.items() if form.get(field)]
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
        min_height=MIN_THUMBNAIL_HEIGHT, max_height=MAX_THUMBNAIL_HEIGHT, limit_labels=LIMIT_LABELS, switches=SWITCHES,
        confirm=request.query_params.get("confirm") == "delete", **context,
    )


def _tier_view(tier: Tier) -> dict[str, Any]:
    p = tier.permissions
    switches = {field: codename in p.codenames for field, codename in SWITCHES.items()}
    return {"name": tier.name, "heights": p.thumbnail_heights, **switches, "limits": tier.limits.as_dict()}


def _form_view(form: Any, **view: Any) -> dict[str, Any]:
    """What the admin sent, to show again beside an error."""
    return {"heights": [], **view, **{field: bool(form.get(field)) for field in SWITCHES},
            "limits": {n: form.get(n) for n in LIMIT_LABELS}}


@get("/admin/tiers")
async def tiers_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    tiers = await _admin(request, lambda admin: admin.tiers_with_holders())
    return render(request, "tiers.html", user, tiers=[(_tier_view(t), n) for t, n in tiers])


@get("/admin/tiers/new")
async def new_tier_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    return _tier_page(request, user, {"name": "", "heights": [], **dict.fromkeys(SWITCHES, False), "limits": {}}, new=True)


@post("/admin/tiers")
async def create_tier(request: Request) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    name = str(form.get("name", "")).strip()
    view = _form_view(form, name=name)
    try:
        codenames, view["heights"] = permissions_from(form)
        limits = limits_from(form)
        await _admin(request, lambda admin: admin.create_tier(user.username, name, codenames, limits))
    except (InvalidInput, Conflict) as error:
        return _tier_page(request, user, view, 409 if isinstance(error, Conflict) else 400, new=True, error=error.detail)
    return see_other(f"/console/admin/tiers/{name}", "tier-created")


@get("/admin/tiers/{name:str}")
async def tier_page(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    return _tier_page(request, user, _tier_view(await _admin(request, lambda admin: admin.get_tier(name))))


@post("/admin/tiers/{name:str}")
async def save_tier(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    view = _form_view(form, name=name)
    try:
        codenames, view["heights"] = permissions_from(form)
        limits = limits_from(form)
        # Only what the admin changed from what the form showed, in one transaction: a
        # codename it has no control for, or one another admin granted since, is kept.
        shown = [thumbnail_codename(int(h)) for h in form.getall("shown_height", []) if str(h).isdigit()]
        shown += [SWITCHES[f] for f in form.getall("shown_on", []) if f in SWITCHES]
        unpicked = set(shown) - set(codenames)
        await _admin(request, lambda admin: admin.patch_tier(
            user.username, name, add=codenames, remove=unpicked, limits=limits))  # fmt: skip
    except InvalidInput as error:
        return _tier_page(request, user, view, 400, error=error.detail)
    return see_other(f"/console/admin/tiers/{name}", "tier-saved")


@post("/admin/tiers/{name:str}/delete")
async def delete_tier(request: Request, name: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    await _form(request)
    try:
        await _admin(request, lambda admin: admin.delete_tier(user.username, name))
    except Conflict as error:
        current = await _admin(request, lambda admin: admin.get_tier(name))
        return _tier_page(request, user, _tier_view(current), 409, error=error.detail)
    return see_other("/console/admin/tiers", "tier-deleted")


# Users


@get("/admin/users")
async def users_page(request: Request) -> Response:
    user = await signed_in_admin(request)
    search = request.query_params.get("q", "").strip()
    after = request.query_params.get("after") or None
    users, more = await _admin(request, lambda admin: admin.list_users(after, USERS_PAGE, search=search))
    return render(
        request, "users.html", user, users=users, search=search, after=after,
        next_after=users[-1].username if more and users else None,
    )


async def _user_page(
    request: Request, actor: User, template: str, account: dict[str, Any], status: int = 200, **context: Any
) -> Response:
    tiers = await _admin(request, lambda admin: admin.list_tiers())
    return render(
        request, template, actor, status=status, account=account, tiers=[t.name for t in tiers],
        min_length=MIN_PASSWORD_LENGTH, confirm=request.query_params.get("confirm") == "delete", **context,
    )


def _user_view(account: User) -> dict[str, Any]:
    return {"username": account.username, "tiers": account.tiers, "is_admin": account.is_admin,
            "permissions": account.permissions.sorted(), "usage": account.usage, "limits": account.limits}


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
        password = str(form.get("password", ""))
        await _admin(request, lambda admin: admin.create_user(user.username, username, password, tiers, is_admin))
    except (InvalidInput, Conflict) as error:
        account = {"username": username, "tiers": tiers, "is_admin": is_admin}
        status = 409 if isinstance(error, Conflict) else 400
        return await _user_page(request, user, "user_new.html", account, status, error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-created")


@get("/admin/users/{username:str}")
async def user_page(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    account = await _admin(request, lambda admin: admin.get_user(username))
    return await _user_page(request, user, "user.html", _user_view(account))


@post("/admin/users/{username:str}")
async def save_user(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    tiers = [str(t) for t in form.getall("tiers", [])]
    # Your own admin flag is shown but cannot be sent: it is not changed from here.
    is_admin = None if username == user.username else bool(form.get("is_admin"))
    try:
        await _admin(request, lambda admin: admin.update_user(user.username, username, tiers=tiers, is_admin=is_admin))
    except (InvalidInput, Conflict) as error:
        account = {**_user_view(await _admin(request, lambda admin: admin.get_user(username))), "tiers": tiers}
        return await _user_page(request, user, "user.html", account, 400, error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-saved")


@post("/admin/users/{username:str}/password")
async def reset_password(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    form = await _form(request)
    try:
        password = str(form.get("password", ""))
        await _admin(request, lambda admin: admin.update_user(user.username, username, password=password))
    except InvalidInput as error:
        account = _user_view(await _admin(request, lambda admin: admin.get_user(username)))
        return await _user_page(request, user, "user.html", account, 400, password_error=error.detail)
    return see_other(f"/console/admin/users/{username}", "user-password")


@post("/admin/users/{username:str}/delete")
async def delete_user(request: Request, username: FromPath[str]) -> Response:
    user = await signed_in_admin(request)
    await _form(request)
    try:
        await _admin(request, lambda admin: admin.delete_user(user.username, username))
    except Conflict as error:
        account = _user_view(await _admin(request, lambda admin: admin.get_user(username)))
        return await _user_page(request, user, "user.html", account, 409, error=error.detail)
    return see_other("/console/admin/users", "user-deleted")


ROUTES = [
    admin_home, tiers_page, new_tier_page, create_tier, tier_page, save_tier, delete_tier,
    users_page, new_user_page, create_user, user_page, save_user, reset_password, delete_user,
]
