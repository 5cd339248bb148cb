"""OGC API – Features (Part 1 Core + GeoJSON, Part 2 CRS by reference) rooted at ``/ogc``,
so QGIS, ArcGIS or GDAL's OAPIF driver can add every map layer.

One collection per map layer the caller may see; items go through the same scoped store
query as ``/api/layers`` (``layer_scope`` conditions in the query, ``scoped_cells`` for the
risk cells of scoped callers). A collection or feature outside the caller's scope is 404,
exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import h3
import orjson
import pandas as pd
from fastapi import APIRouter, Query, Request, Response

from layers.registry import LAYERS, LayerSpec
from service.auth import Caller, Principal, Role
from service.deps import SettingsDep, StoreDep
from service.errors import NotFound
from service.geojson import feature_collection, features
from service.ogc import (
    CONFORMANCE,
    CRS84,
    CRS_LIST,
    DEFAULT_LIMIT,
    FEATURE_ID,
    GEOJSON,
    JSON,
    MAX_LIMIT,
    MAX_OFFSET,
    OPENAPI,
    Crs,
    check_datetime,
    check_query,
    extent,
    parse_bbox,
    parse_crs,
    parse_int,
)
from service.routes.layers import can_see, layer_filters, scoped_cells
from service.scope import layer_scope
from service.store.base import Store
from service.store.query import Condition, LayerQuery

router = APIRouter(prefix="/ogc", tags=["ogc"])

FORMAT = Annotated[str | None, Query(description="响应格式：仅 json")]
CRS = Annotated[str | None, Query(description=f"输出坐标参照系 URI：{' 或 '.join(CRS_LIST)}")]
ITEM_PARAMS = frozenset({"f", "crs"})
ITEMS_PARAMS = ITEM_PARAMS | {"bbox", "bbox-crs", "limit", "offset", "datetime", "level",
                              "category", "industry", "adcode", "park", "resolution"}
CELL_RESOLUTION = 7  # risk cells when no resolution is asked for (as /api/layers)


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


def _url(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params))


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("", summary="OGC API 着陆页", name="ogc_landing")
def landing(request: Request, _caller: Caller, f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    app = request.app
    return _json({
        "title": "riskmap 特种设备双重预防风险地图 OGC API – Features",
        "description": "按调用者权限范围提供各风险图层的要素（GeoJSON，CRS84 或 CGCS2000）",
        "links": [
            {"rel": "self", "type": JSON, "title": "本页", "href": str(request.url)},
            {"rel": "service-desc", "type": OPENAPI, "title": "OpenAPI 接口定义",
             "href": _root(request) + app.openapi_url},
            {"rel": "service-doc", "type": "text/html", "title": "接口文档",
             "href": _root(request) + (app.docs_url or "/docs")},
            {"rel": "conformance", "type": JSON, "title": "符合的标准类",
             "href": _url(request, "ogc_conformance")},
            {"rel": "data", "type": JSON, "title": "要素集合",
             "href": _url(request, "ogc_collections")},
        ]})


@router.get("/", include_in_schema=False)
def landing_slash(request: Request, caller: Caller, f: FORMAT = None) -> Response:
    """Clients such as OWSLib ask for the landing page with a trailing slash."""
    return landing(request, caller, f)


@router.get("/conformance", summary="OGC API 符合性声明", name="ogc_conformance")
def conformance(request: Request, _caller: Caller, f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    return _json({"conformsTo": CONFORMANCE})


def _visible(caller: Principal, store: Store, collection_id: str) -> LayerSpec:
    """The map layer, if the caller may see any of it; else 404 as for an unknown id."""
    spec = LAYERS.get(collection_id)
    if spec is None or not can_see(caller, spec, store):
        raise NotFound("没有此要素集合，或不在您的权限范围内")
    return spec


def _collection(request: Request, spec: LayerSpec, bbox: list[float]) -> dict:
    return {
        "id": spec.id, "title": spec.title, "description": spec.description,
        "links": [
            {"rel": "self", "type": JSON, "title": spec.title,
             "href": _url(request, "ogc_collection", collection_id=spec.id)},
            {"rel": "items", "type": GEOJSON, "title": f"{spec.title}（要素）",
             "href": _url(request, "ogc_items", collection_id=spec.id)},
        ],
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}, "temporal": None},
        "itemType": "feature", "crs": CRS_LIST, "storageCrs": CRS84,
    }


@router.get("/collections", summary="要素集合列表", name="ogc_collections")
def collections(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
                f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    bbox = extent(caller, tuple(settings.provinces))
    return _json({
        "links": [{"rel": "self", "type": JSON, "href": str(request.url)}],
        "collections": [_collection(request, spec, bbox) for spec in LAYERS.values()
                        if can_see(caller, spec, store)],
        "crs": CRS_LIST})


@router.get("/collections/{collection_id}", summary="要素集合", name="ogc_collection")
def collection(request: Request, caller: Caller, store: StoreDep, settings: SettingsDep,
               collection_id: str, f: FORMAT = None) -> Response:
    spec = _visible(caller, store, collection_id)
    check_query(request, frozenset({"f"}), f)
    return _json(_collection(request, spec, extent(caller, tuple(settings.provinces))))


def _select(store: Store, caller: Principal, spec: LayerSpec, where: list[Condition],
            bbox: tuple[float, float, float, float] | None, limit: int, offset: int,
            resolution: int) -> tuple[pd.DataFrame, int]:
    """The caller's page of a layer: scope conditions in the query."""
    if spec.id == "risk-cells" and caller.role != Role.ADMIN:
        query = LayerQuery(spec.id, tuple(where), bbox, limit, offset)
        return scoped_cells(store, caller, query, resolution)
    scope = layer_scope(caller, spec, store)
    return store.query_layer(LayerQuery(spec.id, (*scope, *where), bbox, limit, offset))


def _geojson(body: bytes, crs: Crs) -> Response:
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs.uri}>"})


def _page_links(request: Request, spec: LayerSpec, offset: int, limit: int, returned: int,
                matched: int) -> list[dict]:
    def at(start: int) -> str:
        return str(request.url.include_query_params(offset=start, limit=limit))

    links = [{"rel": "self", "type": GEOJSON, "title": "本页", "href": str(request.url)},
             {"rel": "collection", "type": JSON, "title": spec.title,
              "href": _url(request, "ogc_collection", collection_id=spec.id)}]
    if offset + returned < matched:
        links.append({"rel": "next", "type": GEOJSON, "title": "下一页",
                      "href": at(offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "title": "上一页",
                      "href": at(max(offset - limit, 0))})
    return links


@router.get("/collections/{collection_id}/items", summary="要素（GeoJSON）", name="ogc_items",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}}})
def items(
    request: Request, caller: Caller, store: StoreDep, collection_id: str,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy（按 bbox-crs 的轴序）")
                    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="bbox 的坐标参照系 URI")
                        ] = None,
    crs: CRS = None,
    limit: Annotated[str | None, Query(description="每页要素数，整数 1–10000，默认 10")] = None,
    offset: Annotated[str | None, Query(description="跳过的要素数，整数，默认 0")] = None,
    datetime_: Annotated[str | None, Query(
        alias="datetime", description="时间（图层无时间属性，合法值不作筛选）")] = None,
    level: Annotated[str | None, Query(description="风险等级 red/orange/yellow/blue")] = None,
    category: Annotated[str | None, Query(description="设备种类代码，如 3000")] = None,
    industry: Annotated[str | None, Query(description="行业门类 A–T")] = None,
    adcode: Annotated[str | None, Query(description="行政区划代码前缀")] = None,
    park: Annotated[str | None, Query(description="园区编号")] = None,
    resolution: Annotated[str | None, Query(description="H3 分辨率 5–9（网格图层）")] = None,
    f: FORMAT = None,
) -> Response:
    spec = _visible(caller, store, collection_id)
    check_query(request, ITEMS_PARAMS, f)
    out = parse_crs(crs)
    box = parse_bbox(bbox, parse_crs(bbox_crs, "bbox-crs"))
    size = parse_int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, clamp=True)
    start = parse_int(offset, "offset", 0, 0, MAX_OFFSET)
    check_datetime(datetime_)
    res = None if resolution is None else parse_int(resolution, "resolution", 0, 5, 9)
    if spec.id == "risk-cells" and res is None:
        res = CELL_RESOLUTION
    where = layer_filters(spec, level, category, industry, adcode, park, res)
    frame, matched = _select(store, caller, spec, where, box, size, start,
                             res or CELL_RESOLUTION)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = feature_collection(
        frame, spec, matched=matched, crs=out.output, lat_lon=out.lat_lon,
        links=_page_links(request, spec, start, size, len(frame), matched),
        members={"timeStamp": stamp})
    return _geojson(body, out)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="单个要素（GeoJSON）",
            name="ogc_item", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}})
def item(request: Request, caller: Caller, store: StoreDep, collection_id: str,
         feature_id: str, crs: CRS = None, f: FORMAT = None) -> Response:
    spec = _visible(caller, store, collection_id)
    check_query(request, ITEM_PARAMS, f)
    out = parse_crs(crs)
    missing = NotFound("没有此要素，或不在您的权限范围内")
    if not FEATURE_ID.match(feature_id):
        raise missing
    resolution = CELL_RESOLUTION
    if spec.id == "risk-cells":  # the id says which resolution to aggregate for scoped callers
        if not h3.is_valid_cell(feature_id) or not 5 <= h3.get_resolution(feature_id) <= 9:
            raise missing
        resolution = h3.get_resolution(feature_id)
    where = [Condition("fid", "eq", (feature_id,))]
    frame, _ = _select(store, caller, spec, where, None, 1, 0, resolution)
    if frame.empty:
        raise missing
    feature = features(frame, spec, out.output, out.lat_lon)[0][0]
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "href": str(request.url)},
        {"rel": "collection", "type": JSON, "title": spec.title,
         "href": _url(request, "ogc_collection", collection_id=spec.id)}]
    return _geojson(orjson.dumps(feature), out)
