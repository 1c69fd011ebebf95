"""Small Provide functions bridging the container into Litestar, and the bearer-token user."""

from __future__ import annotations

import anyio
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from imagify.domain.errors import Forbidden, Unauthorized
from imagify.domain.model import User
from imagify.domain.ports import LoginThrottle
from imagify.domain.services.admin import AdminService
from imagify.domain.services.auth import AuthService
from imagify.domain.services.images import ImageService
from imagify.domain.services.links import LinkService
from imagify.entrypoints.container import Container
from imagify.entrypoints.http.observability import scope_header
from imagify.entrypoints.http.schemas import EncodedPages
from imagify.settings import Settings

SECURITY = [{"OAuth2PasswordBearer": []}]
# The web console's session: a bearer token from the same signer, in an HttpOnly cookie.
SESSION_COOKIE = "imagify_session"


def provide_settings(state: State) -> Settings:
    return state.container.settings()


def provide_images(state: State) -> ImageService:
    return state.container.images()


def provide_links(state: State) -> LinkService:
    return state.container.link_service()


def provide_auth(state: State) -> AuthService:
    return state.container.auth()


def provide_admin(state: State) -> AdminService:
    return state.container.admin()


def provide_login_throttle(state: State) -> LoginThrottle:
    return state.container.login_throttle()


def bearer_token(request: Request) -> str:
    header = scope_header(request.scope, b"authorization")
    if not header:
        raise Unauthorized(
            "missing 'Authorization: Bearer <token>' header; get a token from POST /api/v1/auth/token"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def root(request: Request) -> Container:
    """The composition root. Hot routes take their services from it instead of as
    dependencies: Litestar resolves two or more dependencies of one level in an anyio
    task group, a cost of the same order as the whole cached request."""
    return request.app.state.container  # type: ignore[no-any-return]


def encoded_pages(request: Request) -> EncodedPages:
    return request.app.state.pages  # type: ignore[no-any-return]


def reader_token(request: Request) -> str:
    """The bearer token; for GET and HEAD without one, the console's session cookie, so the
    image links in API answers also open in a logged-in browser tab (reads only: a cookie
    never authorizes a change through the API)."""
    if request.scope["method"] in ("GET", "HEAD") and scope_header(request.scope, b"authorization") is None:
        if session := request.cookies.get(SESSION_COOKIE):
            return session
    return bearer_token(request)


async def provide_user(request: Request) -> User:
    """The token's user with permissions as they are now (a cache entry only while no change)."""
    return await user_of(request, bearer_token(request))


async def provide_reader(request: Request) -> User:
    """provide_user for the image byte routes, which also take the session cookie."""
    return await user_of(request, reader_token(request))


async def user_of(request: Request, token: str) -> User:
    auth = root(request).auth()
    auth.begin_request()
    user = await auth.known(token)  # memory, after at most an awaited stamp
    if user is None:
        user = await anyio.to_thread.run_sync(auth.authenticate, token)
    return user


def provide_admin_user(user: NamedDependency[User]) -> User:
    if not user.is_admin:
        raise Forbidden("only admins may use the admin API")
    return user


def base_url(request: Request, settings: Settings) -> str:
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "images": Provide(provide_images, sync_to_thread=False),
    "links": Provide(provide_links, sync_to_thread=False),
    "auth": Provide(provide_auth, sync_to_thread=False),
    "admin": Provide(provide_admin, sync_to_thread=False),
    "login_throttle": Provide(provide_login_throttle, sync_to_thread=False),
}
USER = {"user": Provide(provide_user)}
ADMIN = {**USER, "admin_user": Provide(provide_admin_user, sync_to_thread=False)}
