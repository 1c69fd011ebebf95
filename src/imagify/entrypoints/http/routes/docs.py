"""The interactive API page at `/`, with Swagger UI 5 served by the app itself (no CDN)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from litestar import MediaType, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

ASSETS = Path(swagger_ui.__file__).parent / "static"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Imagify API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
  <style>
    /* Log in with a username and password only: no client id, secret or scopes to puzzle over. */
    .auth-container .wrapper:has(> label[for="password_type"]),
    .auth-container .wrapper:has(> label[for^="client_id"]),
    .auth-container .wrapper:has(> label[for^="client_secret"]),
    .auth-container .scope-def, .auth-container .scopes { display: none; }
  </style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    var TOKEN_ROUTE = "/api/v1/auth/token";
    window.ui = SwaggerUIBundle({
      url: "/schema/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      oauth2RedirectUrl: window.location.origin + "/docs/static/oauth2-redirect.html",
      persistAuthorization: true,
      // A failed login shows the server's own words ("wrong username or password", "too
      // many failed logins..."), not only "Unauthorized".
      responseInterceptor: function (response) {
        if (!response.ok && response.url.indexOf(TOKEN_ROUTE) !== -1) {
          try { response.statusText = JSON.parse(response.text).detail || response.statusText; } catch (e) {}
        }
        return response;
      }
    });
  </script>
</body>
</html>
"""


@get("/", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def docs_page() -> str:
    return PAGE


# The asset names, read once: a request names one of them or gets a 404, so no path it
# sends (a NUL byte, '..', a name too long for the file system) reaches the file system.
ASSET_NAMES = frozenset(p.name for p in ASSETS.iterdir() if p.is_file())
ASSET_CACHE = "public, max-age=86400"


@get("/docs/static/{file_path:path}", include_in_schema=False, sync_to_thread=False)
def docs_assets(file_path: FromPath[str]) -> File:
    name = file_path.lstrip("/")
    if name not in ASSET_NAMES:
        raise NotFoundException(f"no documentation asset named {name[:100]!r}")
    return File(
        ASSETS / name, filename=name, content_disposition_type="inline", headers={"Cache-Control": ASSET_CACHE}
    )
