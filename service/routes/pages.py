"""The interactive map page (folium), built from the store on request for the caller's
scope (signing in and out: service/routes/session.py)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from geo.boundaries import load_boundaries
from layers.cells import count_cells, provinces_with_data
from layers.registry import ALL
from service.auth import Principal, Role, current_caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import BadParameter, Unauthorized, bilingual
from service.params import one_of
from service.security_headers import csp_nonce
from service.selection import Selection, select_visible
from service.settings import Settings
from service.store.base import LayerBuild, Store
from service.store.query import Condition
from web.map import build_map, build_risk_map
from web.pages import landing

router = APIRouter(tags=["map"])
MAP_RESOLUTIONS = (5, 6, 7)  # finer cells go out as vector tiles, not inline GeoJSON


@router.get("/", include_in_schema=False)
def root(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep
         ) -> RedirectResponse:
    """The signed-in user's own page (their role's landing page); else sign in."""
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(landing(caller.role.value, caller.scope), status_code=303)


@router.get("/map", summary="风险地图", response_class=HTMLResponse)
def risk_map(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
             resolution: Annotated[int | None, Query(ge=5, le=12)] = None) -> HTMLResponse:
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303
                                )  # type: ignore[return-value]
    res = resolution or settings.map_resolution
    build = store.layer_build()
    if build is not None:
        return HTMLResponse(_risk_map(store, settings, caller, res, build,
                                      csp_nonce(request)))
    if caller.role != Role.ADMIN:
        raise BadParameter(bilingual(
            "风险图层尚未生成（riskmap build）；生成前仅系统管理员可查看设备分布",
            "the risk layers are not built yet (riskmap build); until then only "
            "administrators may view the equipment map"))
    if res not in {5, 6, 7, store.h3_resolution}:
        raise one_of("H3 分辨率", "resolution", sorted({5, 6, 7, store.h3_resolution}))
    cells = count_cells(store.cell_counts(res))
    shown = provinces_with_data(cells, settings.provinces) or settings.provinces
    counties = load_boundaries(shown, level="county")
    provinces = load_boundaries(shown, level="province")
    page = build_map(cells, counties, provinces, resolution=res,
                     resolutions=sorted({5, 6, 7, store.h3_resolution}),
                     nonce=csp_nonce(request))
    return HTMLResponse(page)


def _visible(store: Store, caller: Principal, layer: str,
             where: tuple[Condition, ...] = ()) -> pd.DataFrame:
    """The caller's part of a layer (empty when their role does not see it)."""
    return select_visible(store, caller, Selection(ALL[layer], where))


def _risk_map(store: Store, settings: Settings, caller: Principal, res: int,
              build: LayerBuild, nonce: str) -> str:
    if res not in MAP_RESOLUTIONS:
        raise one_of("H3 分辨率", "resolution", MAP_RESOLUTIONS)
    cells = _visible(store, caller, "risk-cells", (Condition("resolution", "eq", (res,)),))
    cells = cells[cells["equipment"] > 0]
    warnings = _visible(store, caller, "warnings", (Condition("admin_level", "eq",
                                                              ("county",)),))
    shown = provinces_with_data(cells, settings.provinces) or settings.provinces
    note = (f"{caller.name}（{caller.role.value}，范围 {caller.scope or '全部'}）。"
            f"图层生成于 {build.built_at:%Y-%m-%d %H:%M} UTC，统计日期 {build.as_of}，"
            f"规则 {build.rules_version}（{build.rules_hash}）")
    if build.data_version != store.data_version():
        note += "。数据已更新，图层尚未重新生成（riskmap build）"
    return build_risk_map(
        cells, _visible(store, caller, "hotspots"), _visible(store, caller, "hazards"),
        _visible(store, caller, "parks"), warnings, load_boundaries(shown, level="county"),
        load_boundaries(shown, level="province"), resolution=res,
        resolutions=list(MAP_RESOLUTIONS), build_note=note, nonce=nonce)
