from __future__ import annotations

from fastapi import APIRouter

from service.deps import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="健康检查")
def healthz(store: StoreDep) -> dict:
    return {"status": "ok", "store": store.kind,
            "data_version": store.data_version(), "h3_resolution": store.h3_resolution}
