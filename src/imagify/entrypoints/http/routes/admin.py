"""The admin API: tiers and user accounts, over the same use cases as the CLI."""

from __future__ import annotations

from typing import Annotated

import anyio
import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from imagify.domain.cursors import decode_cursor_text, encode_cursor_text, invalid_cursor
from imagify.domain.errors import InvalidInput
from imagify.domain.model import User, check_username
from imagify.domain.services.admin import AdminService
from imagify.entrypoints.http.deps import ADMIN, SECURITY
from imagify.entrypoints.http.openapi_docs import errors, json_body_operation, strict_json
from imagify.entrypoints.http.schemas import (
    TierIn,
    TierOut,
    TierPatch,
    TierReplace,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
    limits_given,
    tier_out,
    user_out,
)

run = anyio.to_thread.run_sync


def _unset(value: object) -> object:
    return None if value is msgspec.UNSET else value


def _username_after(cursor: str) -> str:
    """The username a users cursor continues after; a 400 when it cannot be one."""
    try:
        return check_username(decode_cursor_text(cursor))
    except InvalidInput:
        raise invalid_cursor() from None


class TierController(Controller):
    path = "/api/v1/admin/tiers"
    tags = ["admin"]
    security = SECURITY
    dependencies = ADMIN

    @get("/", sync_to_thread=True, responses=errors(401, 403), summary="All tiers")
    def list_tiers(self, admin_user: NamedDependency[User], admin: NamedDependency[AdminService]) -> list[TierOut]:
        return [tier_out(t) for t in admin.list_tiers()]

    @post("/", status_code=201, operation_class=json_body_operation(TierIn),
          responses=errors(400, 401, 403, 409), summary="Create a tier")
    async def create_tier(self, request: Request, admin_user: NamedDependency[User], admin: NamedDependency[AdminService]) -> TierOut:
        body = await strict_json(request, TierIn, '{"name": "pro", "permissions": ["thumbnail:800"]}')
        return tier_out(
            await run(admin.create_tier, admin_user.username, body.name, body.permissions, limits_given(body.limits))
        )

    @get("/{name:str}", sync_to_thread=True, responses=errors(401, 403, 404), summary="One tier")
    def get_tier(self, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], name: FromPath[str]) -> TierOut:
        return tier_out(admin.get_tier(name))

    @put("/{name:str}", operation_class=json_body_operation(TierReplace),
         responses=errors(400, 401, 403, 404), summary="Replace a tier's permissions")
    async def replace_tier(
        self, request: Request, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], name: FromPath[str]
    ) -> TierOut:
        body = await strict_json(request, TierReplace, '{"permissions": ["thumbnail:200"]}')
        return tier_out(
            await run(admin.replace_tier, admin_user.username, name, body.permissions, limits_given(body.limits))
        )

    @patch("/{name:str}", operation_class=json_body_operation(TierPatch),
           responses=errors(400, 401, 403, 404), summary="Change some of a tier's permissions")
    async def patch_tier(
        self, request: Request, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], name: FromPath[str]
    ) -> TierOut:
        body = await strict_json(request, TierPatch, '{"add": ["thumbnail:800"], "remove": []}')
        tier = await run(
            lambda: admin.patch_tier(
                admin_user.username,
                name,
                permissions=_unset(body.permissions),  # type: ignore[arg-type]
                add=body.add,
                remove=body.remove,
                limits=limits_given(body.limits),
            )
        )
        return tier_out(tier)

    @delete("/{name:str}", sync_to_thread=True, responses=errors(401, 403, 404, 409),
            summary="Delete a tier no user holds")
    def delete_tier(self, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], name: FromPath[str]) -> None:
        admin.delete_tier(admin_user.username, name)


class UserController(Controller):
    path = "/api/v1/admin/users"
    tags = ["admin"]
    security = SECURITY
    dependencies = ADMIN

    @get("/", sync_to_thread=True, responses=errors(400, 401, 403), summary="Users by name")
    def list_users(
        self,
        admin_user: NamedDependency[User],
        admin: NamedDependency[AdminService],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="page size")] = 50,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
    ) -> UserPage:
        users, more = admin.list_users(_username_after(cursor) if cursor else None, limit)
        return UserPage([user_out(u) for u in users], encode_cursor_text(users[-1].username) if more else None)

    @post("/", status_code=201, operation_class=json_body_operation(UserIn),
          responses=errors(400, 401, 403, 409), summary="Create a user")
    async def create_user(self, request: Request, admin_user: NamedDependency[User], admin: NamedDependency[AdminService]) -> UserOut:
        body = await strict_json(
            request, UserIn, '{"username": "ann", "password": "…", "tiers": ["basic"], "is_admin": false}'
        )
        user = await run(
            admin.create_user, admin_user.username, body.username, body.password, body.tiers, body.is_admin
        )
        return user_out(user)

    @get("/{username:str}", sync_to_thread=True, responses=errors(401, 403, 404), summary="One user")
    def get_user(self, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], username: FromPath[str]) -> UserOut:
        return user_out(admin.get_user(username))

    @patch("/{username:str}", operation_class=json_body_operation(UserPatch),
           responses=errors(400, 401, 403, 404, 409), summary="Change a user's password, tiers or admin flag")
    async def patch_user(
        self, request: Request, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], username: FromPath[str]
    ) -> UserOut:
        body = await strict_json(request, UserPatch, '{"tiers": ["premium"]}')
        user = await run(
            lambda: admin.update_user(
                admin_user.username,
                username,
                password=_unset(body.password),  # type: ignore[arg-type]
                tiers=_unset(body.tiers),  # type: ignore[arg-type]
                is_admin=_unset(body.is_admin),  # type: ignore[arg-type]
            )
        )
        return user_out(user)

    @delete("/{username:str}", sync_to_thread=True, responses=errors(401, 403, 404, 409),
            summary="Delete a user with their images, thumbnails and links")
    def delete_user(self, admin_user: NamedDependency[User], admin: NamedDependency[AdminService], username: FromPath[str]) -> None:
        admin.delete_user(admin_user.username, username)
