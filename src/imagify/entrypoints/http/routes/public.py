"""Routes anyone may call (log in, follow an expiring link, health), and a user's own: me,
my password, log out."""

from __future__ import annotations

import anyio
import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.datastructures import State
from litestar.params import FromPath, SkipValidation
from litestar.response import Stream

from imagify.domain.errors import DomainError, InvalidInput
from imagify.domain.model import User
from imagify.domain.ports import LoginThrottle
from imagify.domain.services.auth import AuthService
from imagify.entrypoints.http.deps import SECURITY, USER, bearer_token, root
from imagify.entrypoints.http.errors import error_response
from imagify.entrypoints.http.openapi_docs import (
    TokenOperation,
    errors,
    image_bytes_operation,
    json_body_operation,
    strict_json,
)
from imagify.entrypoints.http.responses import (
    RANGE_ERROR,
    not_modified,
    not_modified_response,
    original_response,
)
from imagify.entrypoints.http.schemas import MeOut, PasswordIn, TokenIn, TokenOut, me_out
from imagify.entrypoints.http.throttle import (
    TOO_MANY,
    LoginLimits,
    client_address,
    throttled_login,
    throttled_password_change,
)
from imagify.settings import Settings

MAX_LOGIN_BODY = 16 * 1024


async def _credentials(request: Request) -> TokenIn:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()  # at most MAX_LOGIN_BODY: the route's request_max_body_size
    if content_type == "application/x-www-form-urlencoded":
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidInput("send the form fields 'username' and 'password'")
        return TokenIn(username, password)
    try:
        return msgspec.json.decode(body, type=TokenIn)
    except msgspec.DecodeError as error:
        raise InvalidInput(
            f'send JSON {{"username": "...", "password": "..."}} or an OAuth2 password form: {error}'
        ) from None


@post(
    "/api/v1/auth/token",
    status_code=201,
    tags=["auth"],
    operation_class=TokenOperation,
    request_max_body_size=MAX_LOGIN_BODY,
    responses={**errors(400, 401, 413), **TOO_MANY},
    summary="Exchange a username and password for a bearer token",
)
async def issue_token(
    request: Request,
    auth: NamedDependency[AuthService],
    login_throttle: NamedDependency[SkipValidation[LoginThrottle]],  # a Protocol: no isinstance
    settings: NamedDependency[Settings],
) -> TokenOut:
    credentials = await _credentials(request)
    token, expires = await anyio.to_thread.run_sync(
        throttled_login,
        login_throttle,
        auth,
        credentials.username,
        credentials.password,
        client_address(request),
        LoginLimits.of(settings),
    )
    return TokenOut(token, "bearer", expires)


@delete(
    "/api/v1/auth/token",
    status_code=204,
    tags=["auth"],
    security=SECURITY,
    dependencies=USER,
    responses=errors(401, 503),
    summary="Log out: end this bearer token now, on every server; your other tokens go on",
)
async def revoke_token(request: Request, user: NamedDependency[User], auth: NamedDependency[AuthService]) -> None:
    # `user`: the token was live when the request came (401 otherwise).
    await anyio.to_thread.run_sync(auth.revoke, bearer_token(request))


@get("/api/v1/me", sync_to_thread=False, tags=["auth"], security=SECURITY, dependencies=USER,
     responses=errors(401), summary="Who am I, and what may I do")
def me(user: NamedDependency[User]) -> MeOut:
    return me_out(user)


@put(
    "/api/v1/me/password",
    status_code=204,
    tags=["auth"],
    security=SECURITY,
    dependencies=USER,
    operation_class=json_body_operation(PasswordIn),
    responses={**errors(400, 401), **TOO_MANY},
    summary="Change your password; every token issued before stops working",
)
async def change_password(
    request: Request,
    user: NamedDependency[User],
    auth: NamedDependency[AuthService],
    login_throttle: NamedDependency[SkipValidation[LoginThrottle]],
    settings: NamedDependency[Settings],
) -> None:
    body = await strict_json(
        request, PasswordIn, '{"current_password": "...", "new_password": "at least 10 characters"}'
    )
    await anyio.to_thread.run_sync(
        throttled_password_change,
        login_throttle,
        auth,
        user,
        body.current_password,
        body.new_password,
        client_address(request),
        LoginLimits.of(settings),
    )


@get(
    "/l/{token:str}",
    tags=["links"],
    operation_class=image_bytes_operation(ranges=True),
    responses={**errors(404), **RANGE_ERROR},
    summary="The original behind an expiring link; a Range header gets 206",
)
async def follow_link(request: Request, token: FromPath[str]) -> Response | Stream:
    services = root(request)
    links, images = services.link_service(), services.images()
    # Always proxied, also in redirect mode: a presigned URL would outlive the link's expiry
    # (and a deletion of the image) by up to its own lifetime.
    links.begin_request()  # this request's own stamps, never an earlier one's
    image = await links.known(token)
    if image is None:
        image = await anyio.to_thread.run_sync(links.resolve, token)
    cache = "private, no-cache"  # revalidate each time, so an expired link stops working
    if not_modified(request, image.etag):
        return not_modified_response(image.etag, cache)
    return await original_response(request, images, image, cache)


@get("/health/live", sync_to_thread=False, tags=["health"], summary="The process is up")
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", sync_to_thread=True, tags=["health"], responses=errors(503),
     summary="Database, storage and link store all answer")
def ready(state: State) -> Response:
    container = state.container
    checks: dict[str, str] = {}
    failed: list[str] = []
    for name, check in (
        ("database", container.database_check),
        ("storage", lambda: container.blobs().check()),
        ("link_store", lambda: container.links().check()),
    ):
        try:
            check()
            checks[name] = "ok"
        except DomainError as error:
            checks[name] = error.detail
            failed.append(f"{name}: {error.detail}")
        except Exception as error:  # a broken adapter must still give a readable answer
            checks[name] = f"{type(error).__name__}: {error}"
            failed.append(f"{name}: {checks[name]}")
    if failed:
        response = error_response(503, "not ready: " + "; ".join(failed))
        response.content["checks"] = checks  # type: ignore[index]
        return response
    return Response({"status": "ready", "checks": checks})

