"""The API docs pages, served offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

FastAPI's own pages load their scripts and stylesheets from a CDN, so they are blank on a
machine without internet access. These pages load the same assets from the ``fastapi-offline``
package (Swagger UI 5, which renders OpenAPI 3.1, and ReDoc), served by the app under
:data:`ASSETS_PATH`; no page refers to another host.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PACKAGE", "ASSETS_PATH", "add_docs_routes"]

ASSETS_PATH = "/docs/static"
ASSETS_PACKAGE = ("fastapi_offline", "static")  # the package's folder of docs assets
# null turns off Swagger UI's online spec validator, the one other host it could call
_SWAGGER_PARAMETERS = {"validatorUrl": None}


def add_docs_routes(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Add ``GET /docs`` (Swagger UI), ``GET /redoc`` and their assets to ``app``.

    Build the app with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added.
    The pages honour the ASGI ``root_path``, so they work behind a proxy that mounts the server
    under a prefix.

    Args:
        app: the app to add the pages to.
        openapi_url: where the app serves its OpenAPI schema.

    Raises:
        RuntimeError: the assets package is not installed (it is a dependency of Shipyard).
    """
    try:
        assets = StaticFiles(packages=[ASSETS_PACKAGE])
    except AssertionError as exc:  # starlette asserts that the package can be found
        msg = f"the API docs assets are missing: install the {ASSETS_PACKAGE[0]!r} package"
        raise RuntimeError(msg) from exc
    app.mount(ASSETS_PATH, assets, name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
