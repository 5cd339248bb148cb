"""The FastAPI application factory; the lifespan opens the store and the app's caches
(:class:`service.caches.Caches`) and closes the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service import errors
from service.body_limit import BodyLimit
from service.caches import Caches
from service.routes import (
    cells,
    draws,
    exports,
    health,
    layers,
    ogc,
    pages,
    profiles,
    session,
    tiles,
    uploads,
    work,
)
from service.security_headers import SecurityHeaders
from service.settings import Settings
from service.store import open_store
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
                  lifespan=lifespan)
    errors.register(app)
    # bodies bounded while they stream; uploads up to their own limit (and a form's framing)
    app.add_middleware(BodyLimit, limits={
        "/api/ingest": settings.max_upload_mb * 2**20 + uploads.CHUNK})
    # added last, so outermost: its headers go on every response, the 413s above included
    app.add_middleware(SecurityHeaders)  # CSP with a per-request nonce, nosniff, …
    app.include_router(health.router)
    app.include_router(cells.router)
    app.include_router(layers.router)
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(work.router)
    app.include_router(exports.router)
    app.include_router(uploads.router)
    app.include_router(profiles.router)
    app.include_router(draws.router)
    app.include_router(ogc.router)
    app.include_router(tiles.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
