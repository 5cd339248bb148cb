"""The interactive map page (folium), built from the store on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from geo.boundaries import load_boundaries
from layers.cells import count_cells, provinces_with_data
from service.deps import SettingsDep, StoreDep
from service.errors import BadParameter
from web.map import build_map

router = APIRouter(tags=["map"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/map")


@router.get("/map", summary="风险地图", response_class=HTMLResponse)
def risk_map(store: StoreDep, settings: SettingsDep,
             resolution: Annotated[int | None, Query(ge=5, le=12)] = None) -> HTMLResponse:
    res = resolution or settings.map_resolution
    if res not in {5, 6, 7, store.h3_resolution}:
        raise BadParameter(f"H3 分辨率须为 5、6、7 或 {store.h3_resolution}")
    cells = count_cells(store.cell_counts(res))
    shown = provinces_with_data(cells, settings.provinces) or settings.provinces
    counties = load_boundaries(shown, level="county")
    provinces = load_boundaries(shown, level="province")
    html = build_map(cells, counties, provinces, resolution=res,
                     resolutions=sorted({5, 6, 7, store.h3_resolution}))
    return HTMLResponse(html)
