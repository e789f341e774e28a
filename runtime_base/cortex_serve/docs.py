"""GET /openapi.json (openapi.py's document) and GET /docs (Swagger UI over it), as routes of a
worker's Starlette app.

The document is built once per process, at its first request after the predictor loaded (503
before: which arguments predict names is known only then), and sent as the same bytes afterwards.

The page works without internet: its script and stylesheet are the swagger-ui dist files that
the swagger-ui-bundle package ships, served under /docs/static/ (StaticFiles); the page names no
other host, and the online validator badge (which would call validator.swagger.io) is off.
swagger-ui-bundle is located, never imported: only its files are used (its Jinja2 requirement is
for a template this page does not use, so a user's older Jinja2 pin costs nothing here). Without
it /docs is a JSON 404 that says so; /openapi.json works regardless.

These routes sit in the Starlette app behind CortexApp, which sends the prediction paths to
PredictEndpoint first: they cost predictions nothing.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .openapi import build_openapi

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
STATIC_PATH = "/docs/static"
_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
_VENDOR_FOLDER = re.compile(r"swagger-ui-(\d+)\.(\d+)\.(\d+)")


def swagger_ui_dir() -> Path | None:
    """The newest swagger-ui dist folder swagger-ui-bundle ships (`vendor/swagger-ui-X.Y.Z`, 3.x
    or later: every release from 0.0.2 to 1.1.0 has one), or None without the package."""
    try:
        found = importlib.util.find_spec("swagger_ui_bundle")  # finds; runs nothing
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    candidates: list[tuple[tuple[int, int, int], Path]] = []
    for location in found.submodule_search_locations:
        vendor = Path(location) / "vendor"
        if not vendor.is_dir():
            continue
        for folder in vendor.iterdir():
            match = _VENDOR_FOLDER.fullmatch(folder.name)
            if match is None or int(match.group(1)) < 3:
                continue  # swagger-ui 2 has neither file, nor renders OpenAPI 3
            if all((folder / name).is_file() for name in _UI_FILES):
                version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
                candidates.append((version, folder))
    return max(candidates)[1] if candidates else None


def docs_page(title: str) -> str:
    """The /docs page: swagger-ui from STATIC_PATH over OPENAPI_PATH, nothing from elsewhere."""
    config = {
        "url": OPENAPI_PATH,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "displayRequestDuration": True,
        # The badge would send the document's address to validator.swagger.io.
        "validatorUrl": None,
        "layout": "BaseLayout",
    }
    script = (
        "window.ui = SwaggerUIBundle(Object.assign("
        + json.dumps(config).replace("</", "<\\/")
        + ", {presets: [SwaggerUIBundle.presets.apis]}));"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - API docs</title>
<link rel="stylesheet" href="{STATIC_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{STATIC_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC_PATH}/swagger-ui-bundle.js"></script>
<script>{script}</script>
</body>
</html>
"""


def _json_error(status: int, message: str) -> Response:
    body = json.dumps({"error": message, "status": status}, separators=(",", ":"))
    return Response(body, status, media_type="application/json")


def routes(
    spec: Mapping[str, Any],
    get_predictor: Callable[[], Any],
    max_body_bytes: int | None = None,
) -> list[BaseRoute]:
    """/openapi.json, /docs and /docs/static/ for the API `spec`; `get_predictor()` is the
    worker's loaded predictor, or None while it initialises."""
    cached: list[bytes] = []

    async def openapi_endpoint(request: Request) -> Response:
        if not cached:
            predictor = get_predictor()
            if predictor is None:
                return _json_error(503, "the predictor is still initialising")
            document = build_openapi(spec, predictor, max_body_bytes)
            cached.append(json.dumps(document, separators=(",", ":")).encode("utf-8"))
        return Response(cached[0], media_type="application/json")

    ui_dir = swagger_ui_dir()
    page = docs_page(str(spec["name"])).encode("utf-8")

    async def docs_endpoint(request: Request) -> Response:
        if ui_dir is None:
            return _json_error(
                404,
                "the docs page needs the swagger-ui-bundle package, which this image lacks; "
                f"the OpenAPI document is at {OPENAPI_PATH}",
            )
        return Response(page, media_type="text/html; charset=utf-8")

    result: list[BaseRoute] = [
        Route(OPENAPI_PATH, openapi_endpoint, methods=["GET"]),
        Route(DOCS_PATH, docs_endpoint, methods=["GET"]),
    ]
    if ui_dir is not None:
        result.append(Mount(STATIC_PATH, app=StaticFiles(directory=ui_dir), name="docs-static"))
    return result
