"""OGC API – Tiles (Part 1) at ``/ogc``: the layers' vector tiles described, so QGIS, GDAL's
OGCAPI driver or a TileJSON client finds them.

- ``/ogc/tileMatrixSets`` and ``/ogc/tileMatrixSets/WebMercatorQuad``: the tiling scheme;
- ``/ogc/collections/{id}/tiles``: a collection's tilesets (one: vector, WebMercatorQuad),
  ``…/tiles/WebMercatorQuad`` its metadata, ``…/tilejson.json`` its TileJSON 3.0.0;
- ``…/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``: a tile, exactly what
  ``/tiles/{id}/{z}/{x}/{y}.mvt`` answers (one implementation: :func:`service.tiles.serve`);
- ``/ogc/tiles``: the tilesets of every layer the caller may see.

Why no map-wide TileJSON: a TileJSON's ``tiles`` are alternative endpoints that "MUST
return the same content for the same URL" (TileJSON 3.0.0), and ``vector_layers`` are the
layers each such tile holds. Our tiles hold one layer each, so a TileJSON naming one URL per
layer would be invalid; ``/ogc/tiles`` lists each layer's tileset with its own TileJSON
(``rel=describedby``) instead, one map source per layer, as the map page adds them.

Everything is scoped: a collection the caller may not see is 404 in the words of
``/ogc/collections/{id}``, and tiles hold only the caller's rows.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from layers.registry import LAYERS
from service import mvt, ogc_tiles, tiles
from service.auth import Caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.ogc import extent
from service.selection import can_see

router = APIRouter(prefix="/ogc", tags=["ogc"])

FORMAT = Annotated[str | None, Query(description="响应格式：仅 json")]
TMS = Annotated[str, Path(alias="tileMatrixSetId", max_length=64,
                          description="瓦片矩阵集：仅 WebMercatorQuad")]
COLLECTION = Annotated[str, Path(max_length=64, description="要素集合（图层）编号")]
ONLY_F = frozenset({"f"})
TILE_PARAMS = frozenset({"properties", "level", "category", "industry"})


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type=ogc_tiles.JSON)


def _base(request: Request) -> str:
    """The ``/ogc`` root as the caller reached it."""
    return str(request.base_url).rstrip("/") + "/ogc"


@router.get("/tileMatrixSets", summary="瓦片矩阵集列表", name="ogc_tile_matrix_sets")
def tile_matrix_sets(request: Request, _caller: Caller, f: FORMAT = None) -> Response:
    ogc_tiles.check_query(request, ONLY_F, f)
    return _json(ogc_tiles.tile_matrix_sets(_base(request)))


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="瓦片矩阵集定义（OGC TMS 2.0）",
            name="ogc_tile_matrix_set")
def tile_matrix_set(request: Request, _caller: Caller, tms: TMS, f: FORMAT = None
                    ) -> Response:
    ogc_tiles.check_tms(tms)
    ogc_tiles.check_query(request, ONLY_F, f)
    return _json(ogc_tiles.tile_matrix_set())


@router.get("/tiles", summary="各图层矢量瓦片集列表", name="ogc_map_tilesets")
def map_tilesets(request: Request, caller: Caller, f: FORMAT = None) -> Response:
    ogc_tiles.check_query(request, ONLY_F, f)
    specs = [spec for spec in LAYERS.values() if spec.geometry and can_see(caller, spec)]
    return _json(ogc_tiles.map_tilesets(_base(request), specs))


@router.get("/collections/{collection_id}/tiles", summary="要素集合的瓦片集列表",
            name="ogc_collection_tilesets")
def collection_tilesets(request: Request, caller: Caller, collection_id: COLLECTION,
                        f: FORMAT = None) -> Response:
    spec = ogc_tiles.visible(caller, collection_id)
    ogc_tiles.check_query(request, ONLY_F, f)
    return _json(ogc_tiles.tilesets(_base(request), spec))


@router.get("/collections/{collection_id}/tiles/{tileMatrixSetId}",
            summary="要素集合的矢量瓦片集（元数据）", name="ogc_collection_tileset")
def collection_tileset(request: Request, caller: Caller, settings: SettingsDep,
                       collection_id: COLLECTION, tms: TMS, f: FORMAT = None) -> Response:
    spec = ogc_tiles.visible(caller, collection_id)
    ogc_tiles.check_tms(tms)
    ogc_tiles.check_query(request, ONLY_F, f)
    bbox = extent(caller, tuple(settings.provinces))
    return _json(ogc_tiles.tileset(_base(request), spec, bbox))


@router.get("/collections/{collection_id}/tiles/{tileMatrixSetId}/tilejson.json",
            summary="要素集合的 TileJSON 3.0.0", name="ogc_collection_tilejson")
def collection_tilejson(request: Request, caller: Caller, settings: SettingsDep,
                        collection_id: COLLECTION, tms: TMS) -> Response:
    spec = ogc_tiles.visible(caller, collection_id)
    ogc_tiles.check_tms(tms)
    ogc_tiles.check_query(request, frozenset())
    bbox = extent(caller, tuple(settings.provinces))
    return _json(ogc_tiles.tilejson(_base(request), spec, bbox))


@router.get(
    "/collections/{collection_id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="矢量瓦片（MVT，OGC 瓦片地址）", name="ogc_collection_tile", response_class=Response,
    responses={200: {"content": {mvt.MEDIA_TYPE: {}}, "description": "矢量瓦片；范围外为空瓦片"},
               304: {"description": "未修改（If-None-Match 与 ETag 相同）"}})
def collection_tile(
    request: Request, caller: Caller, store: StoreDep, caches: CachesDep,
    collection_id: COLLECTION, tms: TMS,
    tile_matrix: Annotated[str, Path(alias="tileMatrix", max_length=16,
                                     description=f"瓦片矩阵（缩放级别）0–{mvt.MAX_ZOOM}")],
    tile_row: Annotated[str, Path(alias="tileRow", max_length=16, description="瓦片行号")],
    tile_col: Annotated[str, Path(alias="tileCol", max_length=16, description="瓦片列号")],
    properties: Annotated[str | None, Query(
        max_length=2000, description="逐行要素携带的属性，逗号分隔；* 为全部字段")] = None,
    level: Annotated[str | None, Query(
        max_length=200, description="风险等级，逗号分隔：red,orange,yellow,blue")] = None,
    category: Annotated[str | None, Query(
        max_length=200, description="设备种类代码，逗号分隔，如 3000,4000")] = None,
    industry: Annotated[str | None, Query(
        max_length=200, description="行业门类 A–T 或 未知，逗号分隔")] = None,
) -> Response:
    spec = ogc_tiles.visible(caller, collection_id)
    ogc_tiles.check_tms(tms)
    address = ogc_tiles.tile_address(tile_matrix, tile_row, tile_col)
    ogc_tiles.check_query(request, TILE_PARAMS)
    served = tiles.serve(caller, store, caches.tiles, spec, address, properties=properties,
                         if_none_match=request.headers.get("if-none-match"),
                         level=level, category=category, industry=industry)
    if served.status == 304:
        return Response(status_code=304, headers=served.headers)
    return Response(served.body, media_type=mvt.MEDIA_TYPE, headers=served.headers)
