"""The API docs, Swagger UI at `/docs` and ReDoc at `/redoc`, from assets vendored under
`static/vendor/` (FastAPI's defaults load them from a CDN, which left the page blank offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse

VENDOR = "/static/vendor"
FAVICON = "/static/favicon.svg"

router = APIRouter(tags=["docs"], include_in_schema=False)


def _openapi_url(request: Request) -> str:
    return request.app.openapi_url or "/openapi.json"


@router.api_route("/docs", methods=["GET", "HEAD"])
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title="Tollgate API",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
    )


@router.api_route("/redoc", methods=["GET", "HEAD"])
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title="Tollgate API",
        redoc_js_url=f"{VENDOR}/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )
