"""The interactive map page (folium composes it, web/static/js/map.js draws it): a frame
opened at the caller's region whose layers come from the scoped vector tiles and whose
boundaries come from ``/map/boundaries`` (signing in and out: service/routes/session.py)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from geo.boundaries import load_boundaries, representative_points
from layers.cells import count_cells, provinces_with_data
from layers.registry import ALL
from service.auth import ROLE_ZH, Caller, Principal, Role, current_caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import BadParameter, Unauthorized, bilingual
from service.params import one_of
from service.security_headers import csp_nonce
from service.selection import Selection, can_see, select_visible
from service.settings import Settings
from service.store.base import LayerBuild, Store
from service.store.query import Condition
from web.map import TILED_LAYERS, build_map, build_risk_map
from web.pages import landing

router = APIRouter(tags=["map"])
MAP_RESOLUTIONS = (5, 6, 7)  # the grid sizes the risk map may open at (?resolution=)
SIMPLIFY_DEGREES = 0.003     # boundaries for the map: ~300 m, a county is a few kB
GRID_DEGREES = 1e-4          # and coordinates to ~10 m


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """No icon (pages declare none); a 204 instead of a 404 in every browser's console."""
    return Response(status_code=204)


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
    build = store.layer_build()
    if build is not None:
        return HTMLResponse(_risk_map(store, settings, caller, resolution, build,
                                      csp_nonce(request)))
    res = resolution or settings.map_resolution
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


def shown_provinces(store: Store, settings: Settings, caller: Principal) -> list[str]:
    """The loaded provinces the caller's map shows: the province of a regulator's or
    planner's region; else those holding equipment the caller sees (all loaded if none)."""
    if caller.admin_level is not None and caller.scope:
        province = caller.scope[:2] + "0000"
        if province in settings.provinces:
            return [province]
    regions = _visible(store, caller, "regions", (Condition("admin_level", "eq",
                                                            ("province",)),))
    held = regions[regions["equipment"] > 0]["adcode"].astype(str).tolist() if len(
        regions) else []
    return sorted(p for p in held if p in settings.provinces) or list(settings.provinces)


def opening_bounds(caller: Principal, provinces: list[str]) -> list[list[float]]:
    """[[south, west], [north, east]] of the caller's region, else of ``provinces``."""
    every = load_boundaries(provinces)
    own = every[every["adcode"] == caller.scope] if caller.admin_level else every.iloc[:0]
    shape = own if len(own) else every[every["level"] == "province"]
    if not len(shape):
        shape = every
    west, south, east, north = (float(v) for v in shape.total_bounds)
    return [[south, west], [north, east]]


def _risk_map(store: Store, settings: Settings, caller: Principal, res: int | None,
              build: LayerBuild, nonce: str) -> str:
    if res is not None and res not in MAP_RESOLUTIONS:
        raise one_of("H3 分辨率", "resolution", MAP_RESOLUTIONS)
    note = (f"{caller.name}（{ROLE_ZH[caller.role]}，范围 {caller.scope or '全部'}）。"
            f"图层生成于 {build.built_at:%Y-%m-%d %H:%M} UTC，统计日期 {build.as_of}，"
            f"规则 {build.rules_version}（{build.rules_hash}）")
    if build.data_version != store.data_version():
        note += "。数据已更新，图层尚未重新生成（riskmap build）"
    provinces = shown_provinces(store, settings, caller)
    visible = [layer for layer in TILED_LAYERS if can_see(caller, ALL[layer])]
    return build_risk_map(bounds=opening_bounds(caller, provinces), build_note=note,
                          nonce=nonce, layers=visible, open_resolution=res,
                          basemaps=settings.basemap_config)


@lru_cache(maxsize=16)
def _boundaries_json(provinces: tuple[str, ...]) -> bytes:
    """Simplified county and province outlines of ``provinces`` with one label point per
    city and county, as one JSON object of three FeatureCollections (~300 kB a province)."""
    def light(frame: gpd.GeoDataFrame) -> str:
        out = frame[["adcode", "name", "level", "geometry"]].copy()
        out["geometry"] = shapely.set_precision(
            out.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True).to_numpy(),
            GRID_DEGREES)
        return out.to_json(drop_id=True, ensure_ascii=False)

    every = load_boundaries(list(provinces))
    labels = pd.concat([representative_points(level, list(provinces)).assign(level=level)
                        for level in ("city", "county")], ignore_index=True)
    labels = gpd.GeoDataFrame(labels, geometry="geometry", crs=4326)
    labels = labels[~(labels["level"].eq("county") & labels["adcode"].isin(
        labels.loc[labels["level"].eq("city"), "adcode"]))]  # 济源市 once
    points = labels[["adcode", "name", "level", "geometry"]].copy()
    points["geometry"] = shapely.set_precision(points.geometry.to_numpy(), GRID_DEGREES)
    return ('{"counties": ' + light(every[every["level"] == "county"])
            + ', "provinces": ' + light(every[every["level"] == "province"])
            + ', "labels": ' + points.to_json(drop_id=True, ensure_ascii=False)
            + "}").encode()


@router.get("/map/boundaries", summary="风险地图的行政区划边界与地名",
            response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
def map_boundaries(caller: Caller, store: StoreDep, settings: SettingsDep) -> Response:
    """The county and province outlines (simplified to ~300 m) and the label points of the
    cities and counties of the provinces the caller's map shows: the offline basemap."""
    body = _boundaries_json(tuple(shown_provinces(store, settings, caller)))
    return Response(body, media_type="application/json",
                    headers={"Cache-Control": "private, max-age=3600"})
