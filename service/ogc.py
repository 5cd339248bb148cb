"""OGC API – Features vocabulary: conformance classes, CRS URIs and parameter parsing.

Every parameter is parsed here into plain values, and every refusal is a
:class:`BadParameter` (400), as the standard asks of invalid or unknown query parameters
(Part 1 /req/core/query-param-invalid and /req/core/query-param-unknown).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from fastapi import Request

from geo.boundaries import load_boundaries
from service.auth import ADCODE_ROLES, Principal
from service.errors import BadParameter, bilingual
from service.geojson import OutputCrs
from service.messages import label
from service.params import check_known

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
CRS_LIST = [CRS84, CGCS2000]
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
JSON = "application/json"
GEOJSON = "application/geo+json"
# FastAPI writes OpenAPI 3.1, so the Part 1 "oas30" class is not claimed
OPENAPI = "application/vnd.oai.openapi+json;version=3.1"
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 10, 10_000, 10_000_000
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


def check_datetime(text: str | None) -> None:
    """Accept an RFC 3339 instant or interval (``..`` or empty for open ends). Layers are
    snapshots of one build without a time property, so a valid value filters nothing."""
    if text is None:
        return
    malformed = BadParameter(bilingual(
        f"{label('datetime')}须为 RFC 3339 时刻或时间段，如 2026-11-01T00:00:00Z、"
        "2026-01-01T00:00:00Z/2026-12-31T23:59:59Z 或 2026-01-01T00:00:00Z/..",
        "datetime must be an RFC 3339 instant or interval, e.g. 2026-11-01T00:00:00Z, "
        "2026-01-01T00:00:00Z/2026-12-31T23:59:59Z or 2026-01-01T00:00:00Z/.."))
    parts = text.split("/")
    if len(parts) > 2 or all(p in ("", "..") for p in parts):
        raise malformed
    for part in parts:
        if part in ("", ".."):
            continue
        try:
            datetime.fromisoformat(part)
        except ValueError:
            raise malformed from None


def check_query(request: Request, allowed: frozenset[str], f: str | None) -> None:
    """Refuse unknown parameters and any format but JSON (no HTML here)."""
    check_known(request, allowed)
    if f is not None and f.lower() not in ("json", "geojson"):
        raise BadParameter(bilingual(
            f"{label('f')}须为 json（或 geojson）：仅提供 JSON，不提供 {f}",
            f"f must be json (or geojson): only JSON is served, not {f}"))


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
