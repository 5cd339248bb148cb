"""``GET /api/search?q=…``: find a unit or a piece of equipment the caller may see, for the
map's search box: units whose name contains ``q`` or whose credit code starts with it,
equipment whose registration code starts with it, each with where it is (lon/lat) and which
map layer holds it. Scoped like the layers (the caller's scope conditions are ANDed into
each query); ``q`` is matched literally (``%`` and ``_`` are text, not wildcards)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query

from layers.frames import LEVEL_ZH
from layers.registry import ALL
from service.auth import Caller
from service.deps import StoreDep
from service.errors import Forbidden
from service.params import known_query
from service.selection import scope_of
from service.store.query import Condition, LayerQuery

router = APIRouter(prefix="/api", tags=["search"])
MAX_RESULTS = 10
KIND_ZH = {"unit": "使用单位", "equipment": "设备"}
# (kind, layer, condition column, op, code column, name column, columns read)
_LOOKUPS = (
    ("unit", "units", "name", "contains", "credit_code", "name"),
    ("unit", "units", "credit_code", "prefix", "credit_code", "name"),
    ("equipment", "equipment", "registration_code", "prefix", "registration_code",
     "unit_name"),
)


@router.get("/search", summary="按单位名称、统一社会信用代码或设备注册代码查找（限本人范围）",
            dependencies=[Depends(known_query)])
def search(caller: Caller, store: StoreDep,
           q: Annotated[str, Query(min_length=2, max_length=50,
                                   description="单位名称的一部分，或统一社会信用代码、"
                                   "设备注册代码的开头")]) -> dict:
    text = q.strip()
    results: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for kind, layer, column, op, code, name in _LOOKUPS:
        if len(results) >= MAX_RESULTS or len(text) < 2:
            break
        spec = ALL[layer]
        try:
            scope = scope_of(caller, spec)
        except Forbidden:
            continue  # the caller's role sees none of this layer
        value = text if op == "contains" else text.upper()
        columns = tuple(dict.fromkeys((code, name, "level")))
        frame, _ = store.query_layer(LayerQuery(
            layer, (*scope, Condition(column, op, (value,))), None,
            MAX_RESULTS - len(results), columns=columns))
        for row in _rows(frame, code, name):
            if (layer, row["fid"]) in seen:
                continue
            seen.add((layer, row["fid"]))
            results.append({"kind": kind, "kind_zh": KIND_ZH[kind], "layer": layer, **row})
    return {"q": text, "results": results[:MAX_RESULTS]}


def _rows(frame: pd.DataFrame, code: str, name: str) -> list[dict]:
    if not len(frame):
        return []
    geoms = frame.geometry.to_numpy()
    located = ~shapely.is_missing(geoms)
    lon = shapely.get_x(geoms)
    lat = shapely.get_y(geoms)
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        level = _text(getattr(row, "level", None))
        out.append({
            "fid": _text(row.fid), "code": _text(getattr(row, code)),
            "name": _text(getattr(row, name)), "level": level,
            "level_zh": LEVEL_ZH.get(level) if level else None,
            "lon": round(float(lon[i]), 6) if located[i] else None,
            "lat": round(float(lat[i]), 6) if located[i] else None})
    return out


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
