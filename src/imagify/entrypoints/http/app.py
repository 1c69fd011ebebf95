"""The Litestar application: routes, error mapping, OpenAPI, and the container in app state."""

from __future__ import annotations

from functools import partial

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme

from imagify.entrypoints.container import Container, build_container, close_async_clients, shutdown
from imagify.entrypoints.http.deps import DEPENDENCIES
from imagify.entrypoints.http.errors import HANDLERS, MAX_JSON_BODY
from imagify.entrypoints.http.observability import instrument, metrics_endpoint
from imagify.entrypoints.http.routes.admin import TierController, UserController
from imagify.entrypoints.http.routes.docs import docs_assets, docs_page
from imagify.entrypoints.http.routes.images import ImageController
from imagify.entrypoints.http.routes.public import follow_link, issue_token, live, me, ready
from imagify.entrypoints.http.schemas import EncodedPages
from imagify.logs import configure_logging
from imagify.settings import load_settings

DESCRIPTION = """Upload JPEG, PNG and WebP images and fetch them back as thumbnails, originals
and expiring links, as your tiers allow. Press **Authorize** and log in with your username
and password (leave the client fields empty), or paste a token from `POST /api/v1/auth/token`."""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Imagify",
        version="1.0.0",
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[JsonRenderPlugin()],
        components=Components(
            security_schemes={
                "OAuth2PasswordBearer": SecurityScheme(
                    type="oauth2",
                    flows=OAuthFlows(password=OAuthFlow(token_url="/api/v1/auth/token", scopes={})),
                    description="Log in with a username and password",
                ),
                "BearerToken": SecurityScheme(
                    type="http", scheme="bearer", bearer_format="JWT",
                    description="A token from POST /api/v1/auth/token",
                ),
            }
        ),
    )


def create_app(container: Container) -> Litestar:
    app = Litestar(
        route_handlers=[
            ImageController,
            TierController,
            UserController,
            issue_token,
            me,
            follow_link,
            live,
            ready,
            docs_page,
            docs_assets,
            metrics_endpoint,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        openapi_config=openapi_config(),
        state=State({"container": container, "pages": EncodedPages()}),
        request_max_body_size=MAX_JSON_BODY,  # the upload route has its own, from settings
        on_shutdown=[lambda: shutdown(container), partial(close_async_clients, container)],
    )
    return instrument(app, container.metrics())


def create_app_from_env() -> Litestar:
    """The app as `imagify serve` runs it (a factory, so each worker builds its own clients)."""
    configure_logging()
    return create_app(build_container(load_settings()))
