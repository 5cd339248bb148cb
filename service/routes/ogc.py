"""OGC API – Features (Part 1 Core + GeoJSON, Part 2 CRS by reference) rooted at ``/ogc``,
so QGIS, ArcGIS or GDAL's OAPIF driver can add every map layer.

One collection per map layer the caller may see; items go through the same scoped
selection as ``/api/layers`` (:mod:`service.selection`). A collection or feature outside
the caller's scope is 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from geo.cells import cell_resolution_or_none
from layers.registry import LAYERS, LayerSpec
from service.auth import Caller, Principal
from service.deps import SettingsDep, StoreDep
from service.errors import NotFound, bilingual
from service.geojson import features
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
from service.params import FILTER_PARAMS, LayerFilters, page_links
from service.selection import Selection, can_see, select
from service.store.query import Condition

router = APIRouter(prefix="/ogc", tags=["ogc"])

FORMAT = Annotated[str | None, Query(description="响应格式：仅 json")]
CRS = Annotated[str | None, Query(description=f"输出坐标参照系 URI：{' 或 '.join(CRS_LIST)}")]
ITEM_PARAMS = frozenset({"f", "crs"})
ITEMS_PARAMS = ITEM_PARAMS | FILTER_PARAMS | {"bbox", "bbox-crs", "limit", "offset",
                                              "datetime", "resolution"}


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


def _visible(caller: Principal, collection_id: str) -> LayerSpec:
    """The map layer, if the caller may see any of it; else 404 as for an unknown id."""
    spec = LAYERS.get(collection_id)
    if spec is None or not can_see(caller, spec):
        raise NotFound(bilingual(
            f"没有要素集合 {collection_id[:64]}（或不在您的权限范围内）：要素集合编号"
            "（collection_id）见 /ogc/collections",
            f"no collection {collection_id[:64]} (or it is outside your scope): see "
            "/ogc/collections for the collection ids (collection_id)"))
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
def collections(request: Request, caller: Caller, settings: SettingsDep,
                f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    bbox = extent(caller, tuple(settings.provinces))
    return _json({
        "links": [{"rel": "self", "type": JSON, "href": str(request.url)}],
        "collections": [_collection(request, spec, bbox) for spec in LAYERS.values()
                        if can_see(caller, spec)],
        "crs": CRS_LIST})


@router.get("/collections/{collection_id}", summary="要素集合", name="ogc_collection")
def collection(request: Request, caller: Caller, settings: SettingsDep,
               collection_id: str, f: FORMAT = None) -> Response:
    spec = _visible(caller, collection_id)
    check_query(request, frozenset({"f"}), f)
    return _json(_collection(request, spec, extent(caller, tuple(settings.provinces))))


def _geojson(body: bytes, crs: Crs) -> Response:
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs.uri}>"})


@router.get("/collections/{collection_id}/items", summary="要素（GeoJSON）", name="ogc_items",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}}})
def items(
    request: Request, caller: Caller, store: StoreDep, collection_id: str,
    filters: Annotated[LayerFilters, Depends()],
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy（按 bbox-crs 的轴序）")
                    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="bbox 的坐标参照系 URI")
                        ] = None,
    crs: CRS = None,
    limit: Annotated[str | None, Query(description="每页要素数，整数 1–10000，默认 10")] = None,
    offset: Annotated[str | None, Query(description="跳过的要素数，整数，默认 0")] = None,
    datetime_: Annotated[str | None, Query(
        alias="datetime", description="时间（图层无时间属性，合法值不作筛选）")] = None,
    resolution: Annotated[str | None, Query(description="H3 分辨率 5–9（网格图层）")] = None,
    f: FORMAT = None,
) -> Response:
    spec = _visible(caller, collection_id)
    check_query(request, ITEMS_PARAMS, f)
    out = parse_crs(crs)
    box = parse_bbox(bbox, parse_crs(bbox_crs, "bbox-crs"))
    size = parse_int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, clamp=True)
    start = parse_int(offset, "offset", 0, 0, MAX_OFFSET)
    check_datetime(datetime_)
    res = None if resolution is None else parse_int(resolution, "resolution", 0, 5, 9)
    selection = Selection(spec, filters.conditions(spec, res), box, size, start, out.output)
    page = select(store, caller, selection)
    collection = {"rel": "collection", "type": JSON, "title": spec.title,
                  "href": _url(request, "ogc_collection", collection_id=spec.id)}
    links = page_links(request, start, size, len(page.frame), page.matched,
                       first=(collection,))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _geojson(page.geojson(links, lat_lon=out.lat_lon,
                                 members={"timeStamp": stamp}), out)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="单个要素（GeoJSON）",
            name="ogc_item", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}})
def item(request: Request, caller: Caller, store: StoreDep, collection_id: str,
         feature_id: str, crs: CRS = None, f: FORMAT = None) -> Response:
    spec = _visible(caller, collection_id)
    check_query(request, ITEM_PARAMS, f)
    out = parse_crs(crs)
    items = f"/ogc/collections/{spec.id}/items"
    missing = NotFound(bilingual(  # the same words whichever id: none tells "not yours"
        f"图层 {spec.id} 中没有此要素（或不在您的权限范围内）：要素编号（feature_id）见 {items} "
        "返回的 id",
        f"no such feature in {spec.id} (or it is outside your scope): feature_id is an id "
        f"{items} returns"))
    if not FEATURE_ID.match(feature_id):
        raise missing
    where: tuple[Condition, ...] = (Condition("fid", "eq", (feature_id,)),)
    if spec.id == "risk-cells":  # the id says which resolution to aggregate for scoped callers
        res = cell_resolution_or_none(feature_id)
        if res is None or not 5 <= res <= 9:
            raise missing
        where = (*where, Condition("resolution", "eq", (res,)))
    page = select(store, caller, Selection(spec, where, None, 1, 0, out.output))
    if page.frame.empty:
        raise missing
    feature = features(page.frame, spec, out.output, out.lat_lon)[0][0]
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "href": str(request.url)},
        {"rel": "collection", "type": JSON, "title": spec.title,
         "href": _url(request, "ogc_collection", collection_id=spec.id)}]
    return _geojson(orjson.dumps(feature), out)
