"""The FastAPI application factory; the lifespan opens the store and the app's caches
(:class:`service.caches.Caches`) and closes the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service import errors, messages
from service.body_limit import BodyLimit
from service.caches import Caches
from service.routes import (
    audit,
    cells,
    draws,
    evidence,
    exports,
    grid_page,
    health,
    layers,
    ogc,
    ogc_api,
    ogc_tiles,
    pages,
    park_page,
    profiles,
    region_page,
    reports,
    search,
    session,
    tiles,
    units,
    uploads,
    work,
)
from service.security_headers import REDOC_PATH, SecurityHeaders, csp_nonce
from service.settings import Settings
from service.store import open_store
from web.basemaps import image_hosts
from web.map import STATIC_DIR


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.store = open_store(settings.store, h3_resolution=settings.h3_resolution)
        app.state.caches = Caches.for_settings(settings)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(title="riskmap 特种设备双重预防区域风险地图", version="0.1.0",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    errors.register(app)
    messages.register(app)  # request validation errors
    # bodies bounded while they stream; uploads up to their own limit (and a form's framing)
    app.add_middleware(BodyLimit, limits={
        "/api/ingest": settings.max_upload_mb * 2**20 + uploads.CHUNK}, patterns={
        evidence.UPLOAD_PATH: settings.max_evidence_mb * 2**20 + evidence.FRAMING})
    # added last, so outermost: its headers go on every response, the 413s above included
    app.add_middleware(SecurityHeaders, image_hosts=image_hosts(  # the basemaps offered
        settings.basemaps, settings.tianditu_key))  # CSP with a per-request nonce, nosniff, …
    app.include_router(health.router)
    app.include_router(cells.router)
    app.include_router(layers.router)
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(grid_page.router)
    app.include_router(work.router)
    app.include_router(evidence.router)
    app.include_router(audit.router)
    app.include_router(exports.router)
    app.include_router(uploads.router)
    app.include_router(profiles.router)
    app.include_router(park_page.router)
    app.include_router(reports.router)
    app.include_router(units.router)
    app.include_router(region_page.router)
    app.include_router(draws.router)
    app.include_router(ogc.router)
    app.include_router(ogc_api.router)
    app.include_router(ogc_tiles.router)
    app.include_router(tiles.router)
    app.include_router(search.router)
    add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


# The API docs pages, from vendored Swagger UI and ReDoc (web/static/vendor; FastAPI's own
# pages load them from cdn.jsdelivr.net and fonts from Google, so they were blank on an
# intranet). Public, like the schema at /openapi.json they read.
SWAGGER_UI = "/static/vendor/swagger-ui-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"
DOCS_PATH = "/docs"


def add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc). No OAuth2 redirect page: the API
    declares no OAuth2 flow. Swagger UI's inline start script carries the request's CSP
    nonce, so the pages run under the strict policy (service/security_headers.py)."""

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "").rstrip("/")
        return root, root + (app.openapi_url or "/openapi.json")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root, openapi_url = urls(request)
        page = get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            # no badge that sends the schema to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None})
        html = bytes(page.body).decode()
        return HTMLResponse(html.replace("<script", f'<script nonce="{csp_nonce(request)}"'))

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root, openapi_url = urls(request)
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            with_google_fonts=False)
