"""The interactive map page (folium), built from the store on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from geo.boundaries import load_boundaries
from layers.cells import count_cells, provinces_with_data
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter
from service.settings import Settings
from service.store.base import LayerBuild, Store
from web.map import build_map, build_risk_map

router = APIRouter(tags=["map"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/map")


@router.get("/map", summary="风险地图", response_class=HTMLResponse)
def risk_map(store: StoreDep, settings: SettingsDep,
             resolution: Annotated[int | None, Query(ge=5, le=12)] = None) -> HTMLResponse:
    res = resolution or settings.map_resolution
    build = store.layer_build()
    if build is not None:
        return HTMLResponse(_risk_map(store, settings, res, build))
    if res not in {5, 6, 7, store.h3_resolution}:
        raise BadParameter(f"H3 分辨率须为 5、6、7 或 {store.h3_resolution}")
    cells = count_cells(store.cell_counts(res))
    shown = provinces_with_data(cells, settings.provinces) or settings.provinces
    counties = load_boundaries(shown, level="county")
    provinces = load_boundaries(shown, level="province")
    html = build_map(cells, counties, provinces, resolution=res,
                     resolutions=sorted({5, 6, 7, store.h3_resolution}))
    return HTMLResponse(html)


MAP_RESOLUTIONS = (5, 6, 7)  # finer cells go out as vector tiles, not inline GeoJSON


def _risk_map(store: Store, settings: Settings, res: int, build: LayerBuild) -> str:
    if res not in MAP_RESOLUTIONS:
        raise BadParameter(f"H3 分辨率须为 {'、'.join(map(str, MAP_RESOLUTIONS))} 之一")
    cells = store.read_layer("risk-cells")
    cells = cells[(cells["resolution"] == res) & (cells["equipment"] > 0)]
    warnings = store.read_layer("warnings")
    warnings = warnings[warnings["admin_level"] == "county"]
    shown = provinces_with_data(cells, settings.provinces) or settings.provinces
    note = (f"图层生成于 {build.built_at:%Y-%m-%d %H:%M} UTC，统计日期 {build.as_of}，"
            f"规则 {build.rules_version}（{build.rules_hash}）")
    if build.data_version != store.data_version():
        note += "。数据已更新，图层尚未重新生成（riskmap build）"
    return build_risk_map(
        cells, store.read_layer("hotspots"), store.read_layer("hazards"),
        store.read_layer("parks"), warnings, load_boundaries(shown, level="county"),
        load_boundaries(shown, level="province"), resolution=res,
        resolutions=list(MAP_RESOLUTIONS), build_note=note)
