"""OGC API – Features vocabulary: conformance classes, CRS URIs and parameter parsing.

Every parameter is parsed here into plain values (a ``filter`` into a store expression by
:mod:`service.cql2`), and every refusal is a
:class:`BadParameter` (400), as the standard asks of invalid or unknown query parameters
(Part 1 /req/core/query-param-invalid and /req/core/query-param-unknown).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Request

from geo.boundaries import load_boundaries
from layers.registry import LayerSpec
from service.auth import ADCODE_ROLES, Principal
from service.cql2 import datetime_expr, queryables
from service.errors import BadParameter, bilingual
from service.geojson import OutputCrs
from service.messages import label
from service.params import check_known
from service.store.query import Expr

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
CRS_LIST = [CRS84, CGCS2000]
_SPEC = "http://www.opengis.net/spec"
# Every class declared here has its test in tests/test_ogc_conformance.py (which fails for
# a class declared without one).
CONFORMANCE = [
    # OGC API – Common: landing page, JSON, HTML, OpenAPI 3.0, collections
    f"{_SPEC}/ogcapi-common-1/1.0/conf/core",
    f"{_SPEC}/ogcapi-common-1/1.0/conf/landing-page",
    f"{_SPEC}/ogcapi-common-1/1.0/conf/json",
    f"{_SPEC}/ogcapi-common-1/1.0/conf/html",
    f"{_SPEC}/ogcapi-common-1/1.0/conf/oas30",
    f"{_SPEC}/ogcapi-common-2/1.0/conf/collections",
    # OGC API – Features: Part 1, Part 2 (CRS by reference), Part 3 (filtering)
    f"{_SPEC}/ogcapi-features-1/1.0/conf/core",
    f"{_SPEC}/ogcapi-features-1/1.0/conf/geojson",
    f"{_SPEC}/ogcapi-features-1/1.0/conf/html",
    f"{_SPEC}/ogcapi-features-1/1.0/conf/oas30",
    f"{_SPEC}/ogcapi-features-2/1.0/conf/crs",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/queryables",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/filter",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/features-filter",
    # CQL2 (the filter language)
    f"{_SPEC}/cql2/1.0/conf/basic-cql2",
    f"{_SPEC}/cql2/1.0/conf/cql2-text",
    f"{_SPEC}/cql2/1.0/conf/cql2-json",
    f"{_SPEC}/cql2/1.0/conf/advanced-comparison-operators",
    f"{_SPEC}/cql2/1.0/conf/basic-spatial-functions",
    f"{_SPEC}/cql2/1.0/conf/basic-spatial-functions-plus",
    # sortby (as OGC API – Records defines it; pygeoapi declares the same)
    f"{_SPEC}/ogcapi-records-1/1.0/conf/sorting",
    # OGC API – Tiles: the vector tiles, and the tile matrix set they use
    f"{_SPEC}/ogcapi-tiles-1/1.0/conf/core",
    f"{_SPEC}/ogcapi-tiles-1/1.0/conf/tileset",
    f"{_SPEC}/ogcapi-tiles-1/1.0/conf/tilesets-list",
    f"{_SPEC}/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    f"{_SPEC}/ogcapi-tiles-1/1.0/conf/mvt",
    f"{_SPEC}/tms/2.0/conf/tilematrixset",
    f"{_SPEC}/tms/2.0/conf/json-tilematrixset",
]
JSON = "application/json"
GEOJSON = "application/geo+json"
# the /ogc part as OpenAPI 3.0 (service/openapi30.py, /ogc/api: the Part 1 "oas30" class);
# (FastAPI writes 3.1 for /openapi.json, every endpoint)
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 10, 10_000, 10_000_000
MAX_SORT = 8  # properties in a sortby
# feature ids are the layer key joined by ":" (codes, adcodes, H3, industry letters or 未知)
FEATURE_ID = re.compile(r"^[\w\-:.]{1,128}$")


@dataclass(frozen=True)
class Crs:
    uri: str
    output: OutputCrs   # what service.geojson calls it
    lat_lon: bool       # axis order of the CRS definition: EPSG:4490 is latitude first


CRSES = {CRS84: Crs(CRS84, "EPSG:4326", False), CGCS2000: Crs(CGCS2000, "EPSG:4490", True)}


def parse_crs(text: str | None, name: str = "crs") -> Crs:
    """The CRS a parameter ``name`` (``crs`` or ``bbox-crs``) names by URI; CRS84 if none."""
    if text is None:
        return CRSES[CRS84]
    crs = CRSES.get(text.strip())
    if crs is None:
        raise BadParameter(bilingual(
            f"不支持的{label(name)}：{text}；可用：{'、'.join(CRS_LIST)}",
            f"unsupported {name} {text}; use one of {', '.join(CRS_LIST)}"))
    return crs


def parse_bbox(text: str | None, crs: Crs) -> tuple[float, float, float, float] | None:
    """The box as lon/lat (min, min, max, max), from 4 or 6 numbers in ``crs`` axis order
    (a 6-number box's heights are ignored: the layers are 2D)."""
    if text is None:
        return None
    order = ("最小纬度,最小经度,最大纬度,最大经度", "minLat,minLon,maxLat,maxLon") if crs.lat_lon \
        else ("最小经度,最小纬度,最大经度,最大纬度", "minLon,minLat,maxLon,maxLat")
    example = "34.6,113.5,34.9,113.8" if crs.lat_lon else "113.5,34.6,113.8,34.9"
    malformed = BadParameter(bilingual(
        f"{label('bbox')} 须为 4 个（或 6 个）以逗号分隔的数值：{order[0]}，如 {example}",
        f"bbox must be 4 (or 6) comma-separated numbers: {order[1]}, e.g. {example}"))
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise malformed from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise malformed
    if crs.lat_lon:
        values = [values[1], values[0], values[3], values[2]]
    x0, y0, x1, y1 = values
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise BadParameter(bilingual(
            f"{label('bbox')} 须为 {order[0]}，且最小值小于最大值、经度在 -180–180、纬度在 -90–90 "
            f"之间，如 {example}",
            f"bbox must be {order[1]} with each minimum below its maximum, longitudes within "
            f"-180–180 and latitudes within -90–90, e.g. {example}"))
    return x0, y0, x1, y1


def parse_int(text: str | None, name: str, default: int, low: int, high: int,
              clamp: bool = False) -> int:
    """An integer parameter; above ``high`` it is clamped when ``clamp`` (a ``limit`` above
    the maximum is not an error in OGC API – Features), else refused."""
    if text is None:
        return default
    within = BadParameter(bilingual(f"{label(name)}须为 {low}–{high} 之间的整数",
                                    f"{name} must be an integer from {low} to {high}"))
    try:
        value = int(text)
    except ValueError:
        raise within from None
    if clamp and value > high:
        return high
    if not low <= value <= high:
        raise within
    return value


#: each layer's temporal property, which ``datetime`` filters (Part 1 7.15.4); a layer
#: without one refuses ``datetime``
TEMPORAL: dict[str, str] = {"hazards": "found_on", "equipment": "next_inspection_due",
                            "overdue": "next_inspection_due", "frequency": "next_due"}


def parse_datetime(text: str | None, spec: LayerSpec) -> Expr | None:
    """The ``datetime`` parameter (an RFC 3339 instant or interval, ``..`` or nothing for
    an open end) as a filter on the layer's temporal property (:data:`TEMPORAL`); a 400
    when malformed or when the layer has no such property."""
    if text is None:
        return None
    malformed = BadParameter(bilingual(
        f"{label('datetime')}须为 RFC 3339 时刻或时间段，如 2026-11-01、2026-11-01T00:00:00Z、"
        "2026-01-01T00:00:00Z/2026-12-31T23:59:59Z 或 2026-01-01/..",
        "datetime must be an RFC 3339 instant or interval, e.g. 2026-11-01, "
        "2026-11-01T00:00:00Z, 2026-01-01T00:00:00Z/2026-12-31T23:59:59Z or 2026-01-01/.."))
    parts = text.split("/")
    if len(parts) > 2 or all(p in ("", "..") for p in parts):
        raise malformed
    field = TEMPORAL.get(spec.id)
    if field is None:
        timed = "、".join(f"{k}（{v}）" for k, v in TEMPORAL.items())
        raise BadParameter(bilingual(
            f"图层 {spec.id}（{spec.title}）没有时间属性，不能按{label('datetime')}筛选；"
            f"可按时间筛选的图层：{timed}",
            f"layer {spec.id} has no temporal property: datetime does not apply to it; "
            f"layers with one: {', '.join(f'{k} ({v})' for k, v in TEMPORAL.items())}"))
    try:
        return datetime_expr(text, field, spec.type_of(field))
    except ValueError:
        raise malformed from None


def parse_sortby(text: str | None, spec: LayerSpec) -> tuple[tuple[str, bool], ...]:
    """``sortby``: comma-separated queryables, each ``+name`` / ``name`` (ascending) or
    ``-name`` (descending), as (name, descending) pairs; a 400 naming an unknown one."""
    if text is None:
        return ()
    fields = queryables(spec)
    order: list[tuple[str, bool]] = []
    for raw in text.split(","):
        item = raw.strip()
        descending = item.startswith("-")
        name = item[1:] if item[:1] in ("+", "-") else item
        if name not in fields or name in (n for n, _ in order):
            shown = name[:64]
            raise BadParameter(bilingual(
                f"排序（sortby）中的 {shown or '空项'} 不可用：须为不重复的可查询属性，前加 + "
                f"（升序，默认）或 -（降序），如 -D,unit_name；可用：{'、'.join(fields)}",
                f"sortby {shown or '(empty)'} is not a (distinct) queryable; give "
                f"+name or -name, e.g. -D,unit_name; queryables: {', '.join(fields)}"))
        order.append((name, descending))
    if len(order) > MAX_SORT:
        raise BadParameter(bilingual(f"排序（sortby）至多 {MAX_SORT} 个属性",
                                     f"sortby takes at most {MAX_SORT} properties"))
    return tuple(order)


def parse_properties(text: str | None, spec: LayerSpec) -> tuple[str, ...] | None:
    """``properties``: the comma-separated fields to return (``fid`` and the geometry
    always come); None for all; a 400 naming an unknown one."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = spec.field_names
    if not names:
        raise BadParameter(bilingual(
            "属性列表（properties）至少列出一个字段，以逗号分隔，如 level,D",
            "properties must list at least one field, comma-separated, e.g. level,D"))
    for name in names:
        if name not in known:
            shown = name[:64]
            raise BadParameter(bilingual(
                f"属性列表（properties）中没有 {shown}：须为该图层的字段，以逗号分隔；"
                f"可用：{'、'.join(known)}",
                f"properties: {shown} is not a field of layer {spec.id}; fields: "
                f"{', '.join(known)}"))
    return tuple(n for n in known if n in names)


def check_query(request: Request, allowed: frozenset[str], f: str | None) -> None:
    """Refuse unknown parameters and any format but JSON (or GeoJSON) and HTML."""
    check_known(request, allowed)
    if f is not None and f.strip().lower() not in ("json", "geojson", "html"):
        raise BadParameter(bilingual(
            f"{label('f')}须为 json（或 geojson）或 html：不提供 {f[:32]}",
            f"f must be json (or geojson) or html, not {f[:32]}"))


def extent(caller: Principal, provinces: tuple[str, ...]) -> list[float]:
    """A layer's spatial extent for this caller: their region for regulators and planners,
    else the configured provinces (the layers lie within them)."""
    if caller.role in ADCODE_ROLES and caller.scope:
        return _bounds(provinces, caller.scope)
    return _bounds(provinces, None)


@lru_cache(maxsize=256)
def _bounds(provinces: tuple[str, ...], adcode: str | None) -> list[float]:
    gdf = load_boundaries(list(provinces))
    if adcode is not None and (gdf["adcode"] == adcode).any():
        gdf = gdf[gdf["adcode"] == adcode]
    else:
        gdf = gdf[gdf["level"] == "province"]
    return [round(float(v), 6) for v in gdf.total_bounds]
