"""The layer catalogue and each layer as GeoJSON, filtered, paged and scoped to the caller."""

from __future__ import annotations

import re
from typing import Annotated

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response

from data.catalogue import TOP_CATEGORIES
from layers import aggregate
from layers.frames import LEVELS
from layers.registry import ALL, LAYERS, LayerSpec
from service.auth import Caller, Forbidden, Principal, Role
from service.deps import StoreDep
from service.errors import BadParameter, NotFound
from service.geojson import CRS_URI, OutputCrs, feature_collection
from service.scope import layer_scope
from service.store.base import Store
from service.store.query import Condition, LayerQuery, query_frame

router = APIRouter(prefix="/api", tags=["layers"])
GEOJSON = "application/geo+json"
LAYER_ID = Annotated[str, Path(pattern=r"^[a-z][a-z\-]{1,40}$", description="图层编号")]
INDUSTRIES = set("ABCDEFGHIJKLMNOPQRST") | {"未知"}
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def can_see(caller: Principal, spec: LayerSpec, store: Store) -> bool:
    """Whether any of ``spec`` is within the caller's scope (risk cells are aggregated
    from the equipment the caller may see)."""
    try:
        layer_scope(caller, ALL["equipment"] if spec.id == "risk-cells" else spec, store)
    except Forbidden:
        return False
    return True


def spec_of(layer: str) -> LayerSpec:
    spec = ALL.get(layer)
    if spec is None:
        raise NotFound(f"没有图层 {layer}")
    return spec


@router.get("/layers", summary="图层目录")
def catalogue(caller: Caller, store: StoreDep) -> dict:
    build = store.layer_build()
    rows = (build.report.get("rows", {}) if build else {})
    out = []
    for spec in ALL.values():
        if not can_see(caller, spec, store):
            continue
        out.append({
            "id": spec.id, "title": spec.title, "description": spec.description,
            "source": spec.source, "geometry_type": spec.geometry, "is_map_layer":
            spec.id in LAYERS, "cells": spec.cells,
            "fields": [{"name": n, "type": t} for n, t in spec.fields],
            "rows": rows.get(spec.id), "updated": build.built_at.isoformat() if build else None,
            "links": [{"rel": "items", "href": f"/api/layers/{spec.id}",
                       "type": GEOJSON}]})
    return {"layers": out, "build": None if build is None else {
        "build_id": build.build_id, "built_at": build.built_at.isoformat(),
        "as_of": build.as_of.isoformat(), "rules_version": build.rules_version,
        "rules_hash": build.rules_hash, "stale": build.data_version != store.data_version()}}


def layer_filters(spec: LayerSpec, level: str | None, category: str | None,
                  industry: str | None, adcode: str | None, park: str | None,
                  resolution: int | None) -> list[Condition]:
    """The query conditions of the common layer filters (400 for one the layer lacks)."""
    fields = set(spec.field_names)
    out: list[Condition] = []

    def column(*names: str, what: str) -> str:
        for name in names:
            if name in fields:
                return name
        raise BadParameter(f"图层 {spec.id} 不支持按{what}筛选")

    if level is not None:
        if level not in LEVELS:
            raise BadParameter(f"风险等级须为 {', '.join(LEVELS)} 之一")
        out.append(Condition(column("level", "max_level", what="风险等级"), "eq", (level,)))
    if category is not None:
        if category not in TOP_CATEGORIES:
            raise BadParameter(f"设备种类代码须为 {', '.join(TOP_CATEGORIES)} 之一")
        out.append(Condition(column("top_category", "dominant_category", what="设备种类"), "eq",
                             (category,)))
    if industry is not None:
        if industry not in INDUSTRIES:
            raise BadParameter("行业须为 GB/T 4754 门类字母 A–T 或 未知")
        out.append(Condition(column("industry", what="行业"), "eq", (industry,)))
    if adcode is not None:
        if not re.fullmatch(r"\d{2,6}", adcode):
            raise BadParameter("行政区划代码前缀须为 2–6 位数字")
        out.append(Condition(column("adcode", "county_adcode", "city_adcode", "province_adcode",
                                    what="行政区划"), "prefix", (adcode,)))
    if park is not None:
        if not _CODE.match(park):
            raise BadParameter("园区编号格式无效")
        out.append(Condition(column("park_id", what="园区"), "eq", (park.upper(),)))
    if resolution is not None:
        out.append(Condition(column("resolution", what="网格分辨率"), "eq", (resolution,)))
    return out


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise BadParameter("bbox 须为 minLon,minLat,maxLon,maxLat") from None
    if len(values) != 4 or not (-180 <= values[0] < values[2] <= 180
                                and -90 <= values[1] < values[3] <= 90):
        raise BadParameter("bbox 须为 minLon,minLat,maxLon,maxLat，且最小值小于最大值")
    return values  # type: ignore[return-value]


def _links(request: Request, offset: int, limit: int, returned: int, matched: int
           ) -> list[dict]:
    def at(start: int) -> str:
        return str(request.url.include_query_params(offset=start, limit=limit))

    links = [{"rel": "self", "type": GEOJSON, "href": str(request.url)}]
    if offset + returned < matched:
        links.append({"rel": "next", "type": GEOJSON, "href": at(offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "href": at(max(offset - limit, 0))})
    return links


def scoped_cells(store: Store, caller: Principal, query: LayerQuery, resolution: int
                 ) -> tuple[pd.DataFrame, int]:
    """Risk cells of a scoped caller, aggregated from the equipment they may see (a cell on
    their border counts only their side)."""
    equipment_spec = ALL["equipment"]
    scope = layer_scope(caller, equipment_spec, store)
    eq, _ = store.query_layer(LayerQuery("equipment", scope, None, None, 0))
    located = eq[eq.geometry.notna()]
    frame = pd.DataFrame(located.drop(columns="geometry"))
    frame["lon"], frame["lat"] = located.geometry.x.to_numpy(), located.geometry.y.to_numpy()
    # nested from res 9 as the build nests them, so a point falls in the same cell everywhere
    cells = aggregate.risk_cells(frame, tuple(sorted({resolution, 9})))
    cells = cells[cells["resolution"] == resolution].reset_index(drop=True)
    cells["fid"] = cells["h3"].astype("string")
    cells = gpd.GeoDataFrame(cells, geometry="geometry", crs=4326)
    rest = tuple(c for c in query.where if c.column != "resolution")
    return query_frame(cells, LayerQuery("risk-cells", rest, query.bbox, query.limit,
                                         query.offset))


@router.get("/layers/{layer}", summary="图层要素（GeoJSON）", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}})
def items(
    request: Request, caller: Caller, store: StoreDep, layer: LAYER_ID,
    level: Annotated[str | None, Query(description="风险等级 red/orange/yellow/blue")] = None,
    category: Annotated[str | None, Query(description="设备种类代码，如 3000")] = None,
    industry: Annotated[str | None, Query(description="行业门类 A–T")] = None,
    adcode: Annotated[str | None, Query(description="行政区划代码前缀")] = None,
    park: Annotated[str | None, Query(description="园区编号")] = None,
    resolution: Annotated[int | None, Query(ge=5, le=9, description="H3 分辨率（网格图层）")
                          ] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    crs: Annotated[OutputCrs, Query(description="输出坐标系")] = "EPSG:4326",
) -> Response:
    spec = spec_of(layer)
    if spec.id == "risk-cells" and resolution is None:
        resolution = 7
    where = layer_filters(spec, level, category, industry, adcode, park, resolution)
    query = LayerQuery(spec.id, (), _bbox(bbox), limit, offset)
    if spec.id == "risk-cells" and caller.role != Role.ADMIN:
        query = LayerQuery(spec.id, tuple(where), query.bbox, limit, offset)
        frame, matched = scoped_cells(store, caller, query, resolution or 7)
    else:
        scope = layer_scope(caller, spec, store)
        query = LayerQuery(spec.id, (*scope, *where), query.bbox, limit, offset)
        frame, matched = store.query_layer(query)
    body = feature_collection(frame, spec, matched=matched, crs=crs,
                              links=_links(request, offset, limit, len(frame), matched))
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{CRS_URI[crs]}>"})
