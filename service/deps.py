"""Dependency aliases: routes ask for what they need, the app state provides it.

``async def``: they only read ``app.state``, and FastAPI runs a plain ``def`` dependency
in the threadpool (a hop there and back, ~0.2 ms each, three per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.caches import Caches
from service.settings import Settings
from service.store.base import Store


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_caches(request: Request) -> Caches:
    return request.app.state.caches


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CachesDep = Annotated[Caches, Depends(get_caches)]
