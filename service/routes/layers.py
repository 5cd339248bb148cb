"""The layer catalogue and each layer as GeoJSON, filtered, paged and scoped to the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from layers.registry import ALL, LAYERS
from service.auth import Caller
from service.deps import StoreDep
from service.geojson import CRS_URI, OutputCrs
from service.ogc import CRS84, CRSES, parse_bbox
from service.params import GEOJSON, LAYER_ID, LayerFilters, page_links, spec_of
from service.selection import Selection, can_see, select

# an items page counts at most this many matches (or up to its own end, if more): past it
# the count would cost what the rows cost, growing with the registry, so the page leaves
# numberMatched out and its next link says there is more (as a row tile stops at its cap)
COUNT_CAP = 200_000  # above any layer of the seeded demo (110,389 grid cells)

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", summary="图层目录")
def catalogue(caller: Caller, store: StoreDep) -> dict:
    build = store.layer_build()
    rows = (build.report.get("rows", {}) if build else {})
    out = []
    for spec in ALL.values():
        if not can_see(caller, spec):
            continue
        out.append({
            "id": spec.id, "title": spec.title, "description": spec.description,
            "source": spec.source, "geometry_type": spec.geometry, "is_map_layer":
            spec.id in LAYERS, "cells": spec.cells,
            "fields": [{"name": n, "type": t, "title": spec.field_labels[n]}
                       for n, t in spec.fields],
            "rows": rows.get(spec.id), "updated": build.built_at.isoformat() if build else None,
            "links": [{"rel": "items", "href": f"/api/layers/{spec.id}",
                       "type": GEOJSON}]})
    return {"layers": out, "build": None if build is None else {
        "build_id": build.build_id, "built_at": build.built_at.isoformat(),
        "as_of": build.as_of.isoformat(), "rules_version": build.rules_version,
        "rules_hash": build.rules_hash, "stale": build.data_version != store.data_version()}}


@router.get("/layers/{layer}", summary="图层要素（GeoJSON）", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}})
def items(
    request: Request, caller: Caller, store: StoreDep, layer: LAYER_ID,
    filters: Annotated[LayerFilters, Depends()],
    resolution: Annotated[int | None, Query(ge=5, le=9, description="H3 分辨率（网格图层）")
                          ] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    crs: Annotated[OutputCrs, Query(description="输出坐标系")] = "EPSG:4326",
) -> Response:
    spec = spec_of(layer)
    selection = Selection(spec, filters.conditions(spec, resolution),
                          parse_bbox(bbox, CRSES[CRS84]), limit, offset, crs,
                          count_cap=COUNT_CAP)
    page = select(store, caller, selection)
    body = page.geojson(page_links(request, offset, limit, len(page.frame), page.matched))
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{CRS_URI[crs]}>"})
