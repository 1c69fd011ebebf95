"""The Litestar application: routes, error mapping, OpenAPI, and the container in app state."""

from __future__ import annotations

from functools import partial

from litestar import Litestar
from litestar.datastructures import State
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme

from imagify.entrypoints.console.routes import console_router
from imagify.entrypoints.container import (
    Container,
    build_container,
    close_async_clients,
    shutdown,
    warm_decode_pool,
)
from imagify.entrypoints.http.deps import DEPENDENCIES
from imagify.entrypoints.http.errors import HANDLERS, MAX_JSON_BODY
from imagify.entrypoints.http.observability import instrument, metrics_endpoint
from imagify.entrypoints.http.routes.admin import TierController, UserController
from imagify.entrypoints.http.routes.docs import docs_assets, docs_page
from imagify.entrypoints.http.routes.images import ImageController
from imagify.entrypoints.http.routes.public import (
    change_password,
    follow_link,
    issue_token,
    live,
    me,
    ready,
    revoke_token,
)
from imagify.entrypoints.http.schemas import EncodedPages
from imagify.logs import JsonFormatter, configure_logging
from imagify.settings import load_settings

DESCRIPTION = """Upload JPEG, PNG and WebP images and fetch them back as thumbnails, originals
and expiring links, as your tiers allow. Press **Authorize**, enter your username and
password, and press **Authorize** again: every request then carries your token.

Tiers grant permission codenames: `thumbnail:<height>` (1 to 4096 pixels high),
`can_access_original_image` and `can_generate_expiring_link`. Built in: `basic`
(thumbnail:200), `premium` (thumbnail:200 and 400) and `enterprise` (both, originals and
expiring links)."""


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
                    description="Your Imagify username and password",
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
            revoke_token,
            me,
            change_password,
            follow_link,
            live,
            ready,
            docs_page,
            docs_assets,
            metrics_endpoint,
            console_router,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        openapi_config=openapi_config(),
        # Litestar's own lines in Imagify's JSON; the root logger is left to whoever runs the
        # app (imagify serve: JSON too), not set to Litestar's text format.
        logging_config=LoggingConfig(configure_root_logger=False, formatters={"standard": {"()": JsonFormatter}}),
        state=State({"container": container, "pages": EncodedPages()}),
        request_max_body_size=MAX_JSON_BODY,  # the upload route has its own, from settings
        on_startup=[lambda: warm_decode_pool(container)],
        on_shutdown=[lambda: shutdown(container), partial(close_async_clients, container)],
    )
    return instrument(app, container.metrics())


def create_app_from_env() -> Litestar:
    """The app as `imagify serve` runs it (a factory, so each worker builds its own clients)."""
    configure_logging()
    return create_app(build_container(load_settings()))
