"""Routes for the pages and their static files. The pages hold no secrets: the playground
asks for a tenant key, the dashboard and the console for the admin token, keep them in the tab's
sessionStorage, and call the JSON API with them (`/chat`, `/admin/*`) like any client."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse

from api.web import docs

STATIC_DIR = Path(__file__).parent / "static"

# Scripts and styles only from this origin; no inline script, no framing.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": _CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}

router = APIRouter(tags=["web"], include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=PAGE_HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
async def playground() -> FileResponse:
    return _page("playground.html")


@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def dashboard() -> FileResponse:
    return _page("dashboard.html")


@router.api_route("/console", methods=["GET", "HEAD"])
@router.api_route("/console/{page:path}", methods=["GET", "HEAD"])
async def console(page: str = "") -> FileResponse:
    """The operator's console: one page whose script draws the view the path names (tenants,
    a tenant, plans, prices, billing, audit, tokens); an unknown path shows "not found"."""
    return _page("console.html")


def install(app: FastAPI) -> None:
    """The page routes, the API docs, and the static files under `/static/`."""
    app.include_router(router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
