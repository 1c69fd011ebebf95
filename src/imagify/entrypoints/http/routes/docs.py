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
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/schema/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      oauth2RedirectUrl: window.location.origin + "/docs/static/oauth2-redirect.html",
      persistAuthorization: true
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
