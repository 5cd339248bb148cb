from __future__ import annotations

from fastapi import APIRouter

from service.deps import SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="健康检查")
def healthz(store: StoreDep, settings: SettingsDep) -> dict:
    return {"status": "ok", "store": "postgis" if settings.is_postgis else "embedded",
            "data_version": store.data_version(), "h3_resolution": store.h3_resolution}
