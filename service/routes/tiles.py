"""``GET /tiles/{layer}/{z}/{x}/{y}.mvt``: each layer as Mapbox vector tiles, scoped.

Tiles are scoped to the caller, so they are ``Cache-Control: private``; the ETag names the
build, the caller's scope conditions and the tile, and ``If-None-Match`` gets a 304 before
anything is read. Not gzipped here: compressing in the app halved throughput (issue 5), a
reverse proxy can do it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from service import mvt, tiles
from service.auth import Caller
from service.deps import CachesDep, StoreDep
from service.errors import BadParameter, bilingual
from service.params import LAYER_ID, spec_of

router = APIRouter(tags=["tiles"])


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt", summary="图层矢量瓦片（MVT）", response_class=Response,
    responses={200: {"content": {mvt.MEDIA_TYPE: {}},
                     "description": "矢量瓦片；范围外为空瓦片"},
               304: {"description": "未修改（If-None-Match 与 ETag 相同）"}})
def tile(
    request: Request, caller: Caller, store: StoreDep, caches: CachesDep, layer: LAYER_ID,
    z: Annotated[int, Path(ge=0, le=mvt.MAX_ZOOM, description="缩放级别")],
    x: Annotated[int, Path(ge=0, description="瓦片列号")],
    y: Annotated[int, Path(ge=0, description="瓦片行号")],
    properties: Annotated[str | None, Query(
        max_length=2000, description="逐行要素携带的属性，逗号分隔；* 为全部字段。"
        "点图层默认只带着色与标注所需的字段")] = None,
    level: Annotated[str | None, Query(
        max_length=200, description="风险等级，逗号分隔：red,orange,yellow,blue")] = None,
    category: Annotated[str | None, Query(
        max_length=200, description="设备种类代码，逗号分隔，如 3000,4000")] = None,
    industry: Annotated[str | None, Query(
        max_length=200, description="行业门类 A–T 或 未知，逗号分隔")] = None,
) -> Response:
    try:
        address = mvt.Tile.checked(z, x, y)
    except ValueError:
        last = (1 << z) - 1
        raise BadParameter(bilingual(
            f"瓦片坐标超出范围：缩放级别 z={z} 时瓦片列号（x）和行号（y）须在 0–{last} 之间",
            f"tile x and y must be within 0–{last} at zoom z={z}")) from None
    # the one tile response (service/tiles.py): tables 404, bad properties or filters 400
    served = tiles.serve(caller, store, caches.tiles, spec_of(layer), address,
                         properties=properties,
                         if_none_match=request.headers.get("if-none-match"),
                         level=level, category=category, industry=industry)
    if served.status == 304:
        return Response(status_code=304, headers=served.headers)
    return Response(served.body, media_type=mvt.MEDIA_TYPE, headers=served.headers)
