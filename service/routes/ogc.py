"""OGC API – Features (Part 1 Core + GeoJSON, Part 2 CRS by reference, Part 3 queryables
and CQL2 filters, sorting) rooted at ``/ogc``, so QGIS, ArcGIS or GDAL's OAPIF driver can
add every map layer.

One collection per map layer the caller may see; items go through the same scoped
selection as ``/api/layers`` (:mod:`service.selection`). A collection or feature outside
the caller's scope is 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from geo.cells import cell_resolution_or_none
from layers.registry import LAYERS, LayerSpec
from service.auth import Caller, Principal
from service.cql2 import parse_filter, queryable_schema
from service.deps import SettingsDep, StoreDep
from service.errors import NotFound, bilingual
from service.export import code_lists
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
    TEMPORAL,
    Crs,
    check_query,
    extent,
    parse_bbox,
    parse_crs,
    parse_datetime,
    parse_int,
    parse_properties,
    parse_sortby,
)
from service.page_user import page_user
from service.params import FILTER_PARAMS, LayerFilters, page_links
from service.security_headers import csp_nonce
from service.selection import Selection, can_see, select
from service.store.base import Store
from service.store.query import And, Condition, Expr, IsNull
from web import ogc_html

router = APIRouter(prefix="/ogc", tags=["ogc"])

FORMAT = Annotated[str | None, Query(
    max_length=16, description="响应格式：json 或 html（浏览器默认网页，其他客户端默认 JSON）")]
CRS = Annotated[str | None, Query(description=f"输出坐标参照系 URI：{' 或 '.join(CRS_LIST)}")]
ITEM_PARAMS = frozenset({"f", "crs"})
ITEMS_PARAMS = ITEM_PARAMS | FILTER_PARAMS | {
    "bbox", "bbox-crs", "limit", "offset", "datetime", "resolution", "filter", "filter-lang",
    "filter-crs", "sortby", "properties"}
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
# the code lists whose codes a queryable lists as its enum (not the long catalogue)
ENUM_LISTS = ("level", "category", "industry", "admin_level", "precision")
# an items page counts at most this many matches (or up to its own end, if more): past it
# numberMatched is left out and the next link says there is more (as /api/layers does)
COUNT_CAP = 200_000  # above any layer of the seeded demo (110,389 grid cells)


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type=JSON, headers=VARY)


VARY = {"Vary": "Accept"}
HTML = "text/html"
TILING_SCHEMES_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
TILESETS_VECTOR_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


def _html(request: Request, f: str | None) -> bool:
    return ogc_html.wants_html(request.headers.get("accept"), f)


def _page(request: Request, caller: Principal, render, body: dict, **kw) -> Response:
    return HTMLResponse(render(body, nonce=csp_nonce(request), user=page_user(caller), **kw),
                        headers=VARY)


def _url(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params))


def _self(request: Request, title: str) -> list[dict]:
    """The page's own links: itself as JSON, and as HTML (``f=html``)."""
    here = str(request.url)
    return [{"rel": "self", "type": JSON, "title": title, "href": ogc_html.with_format(
                here, "json")},
            {"rel": "alternate", "type": HTML, "title": f"{title}（网页）",
             "href": ogc_html.with_format(here, "html")}]


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("", summary="OGC API 着陆页", name="ogc_landing")
def landing(request: Request, _caller: Caller, f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    app = request.app
    body = ({
        "title": "riskmap 特种设备双重预防风险地图 OGC API",
        "description": "按调用者权限范围提供各风险图层的要素（GeoJSON，CRS84 或 CGCS2000，"
                       "CQL2 筛选）与矢量瓦片（OGC API – Tiles，WebMercatorQuad）",
        "links": [
            *_self(request, "本页"),
            {"rel": "service-desc", "type": OPENAPI, "title": "OpenAPI 3.0 接口定义（/ogc）",
             "href": _url(request, "ogc_api")},
            {"rel": "service-doc", "type": "text/html", "title": "接口文档",
             "href": _root(request) + (app.docs_url or "/docs")},
            {"rel": "conformance", "type": JSON, "title": "符合的标准类",
             "href": _url(request, "ogc_conformance")},
            {"rel": "data", "type": JSON, "title": "要素集合",
             "href": _url(request, "ogc_collections")},
            {"rel": TILING_SCHEMES_REL, "type": JSON, "title": "瓦片矩阵集",
             "href": _url(request, "ogc_tile_matrix_sets")},
            {"rel": "related", "type": JSON, "title": "各图层矢量瓦片集",
             "href": _url(request, "ogc_map_tilesets")},
        ]})
    if _html(request, f):
        return _page(request, _caller, ogc_html.landing_page, body)
    return _json(body)


@router.get("/", include_in_schema=False)
def landing_slash(request: Request, caller: Caller, f: FORMAT = None) -> Response:
    """Clients such as OWSLib ask for the landing page with a trailing slash."""
    return landing(request, caller, f)


@router.get("/conformance", summary="OGC API 符合性声明", name="ogc_conformance")
def conformance(request: Request, _caller: Caller, f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    if _html(request, f):
        return _page(request, _caller, ogc_html.conformance_page, {"conformsTo": CONFORMANCE})
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


def _collection(request: Request, spec: LayerSpec, bbox: list[float],
                temporal: dict | None) -> dict:
    here = _url(request, "ogc_collection", collection_id=spec.id)
    return {
        "id": spec.id, "title": spec.title, "description": spec.description,
        "links": [
            {"rel": "self", "type": JSON, "title": spec.title, "href": here},
            {"rel": "alternate", "type": HTML, "title": f"{spec.title}（网页）",
             "href": ogc_html.with_format(here, "html")},
            {"rel": "items", "type": GEOJSON, "title": f"{spec.title}（要素）",
             "href": _url(request, "ogc_items", collection_id=spec.id)},
            {"rel": QUERYABLES_REL, "type": SCHEMA_JSON, "title": f"{spec.title}（可查询属性）",
             "href": _url(request, "ogc_queryables", collection_id=spec.id)},
            *([{"rel": TILESETS_VECTOR_REL, "type": JSON, "title": f"{spec.title}（矢量瓦片集）",
                "href": _url(request, "ogc_collection_tilesets", collection_id=spec.id)}]
              if spec.geometry is not None else []),
        ],
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}, "temporal": temporal},
        "itemType": "feature", "crs": CRS_LIST, "storageCrs": CRS84,
    }


def _temporal(store: Store, caller: Principal, spec: LayerSpec) -> dict | None:
    """The interval of the layer's temporal property over the caller's rows (two one-row
    queries, earliest and latest), None for a layer without one or with no dates."""
    field = TEMPORAL.get(spec.id)
    if field is None:
        return None
    present = IsNull(field, negate=True)
    ends = []
    for descending in (False, True):
        page = select(store, caller, Selection(spec, (), None, 1, 0, filter=present,
                                               order=((field, descending),),
                                               properties=(field,), count=False))
        if page.frame.empty:
            return None
        ends.append(page.frame[field].iloc[0].strftime("%Y-%m-%dT00:00:00Z"))
    return {"interval": [ends], "trs": GREGORIAN}


@router.get("/collections", summary="要素集合列表", name="ogc_collections")
def collections(request: Request, caller: Caller, settings: SettingsDep, store: StoreDep,
                f: FORMAT = None) -> Response:
    check_query(request, frozenset({"f"}), f)
    bbox = extent(caller, tuple(settings.provinces))
    body = {
        "links": _self(request, "要素集合"),
        "collections": [_collection(request, spec, bbox, _temporal(store, caller, spec))
                        for spec in LAYERS.values() if can_see(caller, spec)],
        "crs": CRS_LIST}
    if _html(request, f):
        return _page(request, caller, ogc_html.collections_page, body)
    return _json(body)


@router.get("/collections/{collection_id}", summary="要素集合", name="ogc_collection")
def collection(request: Request, caller: Caller, settings: SettingsDep, store: StoreDep,
               collection_id: str, f: FORMAT = None) -> Response:
    spec = _visible(caller, collection_id)
    check_query(request, frozenset({"f"}), f)
    body = _collection(request, spec, extent(caller, tuple(settings.provinces)),
                       _temporal(store, caller, spec))
    if _html(request, f):
        return _page(request, caller, ogc_html.collection_page, body)
    return _json(body)


@router.get("/collections/{collection_id}/queryables", summary="可查询属性（JSON Schema）",
            name="ogc_queryables", response_class=Response,
            responses={200: {"content": {SCHEMA_JSON: {}}}})
def queryables(request: Request, caller: Caller, collection_id: str,
               f: FORMAT = None) -> Response:
    """The properties a ``filter`` or ``sortby`` may name (Part 3), with their Chinese
    titles, types and codes."""
    spec = _visible(caller, collection_id)
    check_query(request, frozenset({"f"}), f)
    lists = code_lists()
    enums = {name: list(lists[vocab]) for name, vocab in spec.coded_fields.items()
             if vocab in ENUM_LISTS}
    schema = queryable_schema(spec, _url(request, "ogc_queryables", collection_id=spec.id),
                              enums)
    if _html(request, f):
        return _page(request, caller, ogc_html.queryables_page, schema)
    return Response(orjson.dumps(schema), media_type=SCHEMA_JSON, headers=VARY)


def _geojson(body: bytes, crs: Crs) -> Response:
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs.uri}>", **VARY})


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
        alias="datetime", description="时间：RFC 3339 时刻或时间段（.. 为开放端），筛选图层的"
        "时间属性（hazards 发现日期 found_on，equipment 与 overdue 下次检验日期 "
        "next_inspection_due，frequency 下次应检日期 next_due）；其他图层不接受")] = None,
    resolution: Annotated[str | None, Query(description="H3 分辨率 5–9（网格图层）")] = None,
    filter_: Annotated[str | None, Query(
        alias="filter", description="CQL2 过滤条件（可查询属性见 queryables），如 "
        "level = 'red' AND \"D\" >= 160")] = None,
    filter_lang: Annotated[str | None, Query(
        alias="filter-lang", description="过滤语言：cql2-text（默认）或 cql2-json"
        "（草案名 cql-text、cql-json 同义）",
        json_schema_extra={"enum": ["cql2-text", "cql2-json", "cql-text", "cql-json"]})] = None,
    filter_crs: Annotated[str | None, Query(
        alias="filter-crs", description="filter 中几何的坐标参照系 URI（默认 CRS84）")] = None,
    sortby: Annotated[str | None, Query(
        description="排序：以逗号分隔的可查询属性，+ 升序（默认）、- 降序，如 -D,unit_name")
    ] = None,
    properties: Annotated[str | None, Query(
        description="返回的属性：以逗号分隔的字段名（要素编号与几何总会返回）")] = None,
    f: FORMAT = None,
) -> Response:
    spec = _visible(caller, collection_id)
    check_query(request, ITEMS_PARAMS, f)
    out = parse_crs(crs)
    box = parse_bbox(bbox, parse_crs(bbox_crs, "bbox-crs"))
    size = parse_int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, clamp=True)
    start = parse_int(offset, "offset", 0, 0, MAX_OFFSET)
    res = None if resolution is None else parse_int(resolution, "resolution", 0, 5, 9)
    lat_lon = parse_crs(filter_crs, "filter-crs").lat_lon
    terms = [t for t in (parse_filter(filter_, filter_lang, lat_lon, spec),
                         parse_datetime(datetime_, spec)) if t is not None]
    expr: Expr | None = None if not terms else terms[0] if len(terms) == 1 else And(tuple(terms))
    selection = Selection(spec, filters.conditions(spec, res), box, size, start, out.output,
                          filter=expr, order=parse_sortby(sortby, spec),
                          properties=parse_properties(properties, spec), count_cap=COUNT_CAP)
    page = select(store, caller, selection)
    collection = {"rel": "collection", "type": JSON, "title": spec.title,
                  "href": _url(request, "ogc_collection", collection_id=spec.id)}
    html = {"rel": "alternate", "type": HTML, "title": f"{spec.title}（网页）",
            "href": ogc_html.with_format(str(request.url), "html")}
    links = page_links(request, start, size, len(page.frame), page.matched,
                       first=(html, collection))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = page.geojson(links, lat_lon=out.lat_lon, members={"timeStamp": stamp})
    if _html(request, f):
        return _page(request, caller, ogc_html.items_page, orjson.loads(body),
                     title=spec.title, titles=spec.field_labels, lat_lon=out.lat_lon)
    return _geojson(body, out)


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
        {"rel": "alternate", "type": HTML, "title": "本要素（网页）",
         "href": ogc_html.with_format(str(request.url), "html")},
        {"rel": "collection", "type": JSON, "title": spec.title,
         "href": _url(request, "ogc_collection", collection_id=spec.id)}]
    if _html(request, f):
        return _page(request, caller, ogc_html.item_page, feature,
                     titles=spec.field_labels, lat_lon=out.lat_lon)
    return _geojson(orjson.dumps(feature), out)
