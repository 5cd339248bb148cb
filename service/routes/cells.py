"""Equipment counted on H3 cells, and the administrative boundaries, as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from geo.boundaries import load_boundaries
from layers.cells import count_cells
from service.auth import Caller, Role, require
from service.deps import SettingsDep, StoreDep
from service.params import one_of

router = APIRouter(prefix="/api", tags=["cells"])
GEOJSON = "application/geo+json"


@router.get("/cells", summary="按 H3 网格统计设备数量（系统管理员）", response_class=Response,
            dependencies=[require(Role.ADMIN)])
def cells(store: StoreDep,
          resolution: Annotated[int, Query(ge=5, le=12, description="H3 分辨率")] = 7,
          ) -> Response:
    allowed = {5, 6, 7, store.h3_resolution}
    if resolution not in allowed:
        raise one_of("H3 分辨率", "resolution", sorted(allowed))
    layer = count_cells(store.cell_counts(resolution))
    return Response(layer.to_json(drop_id=True, ensure_ascii=False), media_type=GEOJSON)


@router.get("/boundaries", summary="行政区划边界", response_class=Response)
def boundaries(_caller: Caller, settings: SettingsDep,
               level: Annotated[Literal["province", "city", "county"], Query()] = "county",
               ) -> Response:
    gdf = load_boundaries(settings.provinces, level=level)
    return Response(gdf.to_json(drop_id=True, ensure_ascii=False), media_type=GEOJSON)
