"""Park profiles (一园一策), region summaries and demonstration enterprises as JSON, scoped."""

from __future__ import annotations

from typing import Annotated

import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Response

from data.catalogue import TOP_CATEGORIES
from geo.regions import Region, UnknownRegion, resolve_region
from layers.registry import ALL
from service.auth import Caller, Principal
from service.deps import StoreDep
from service.errors import BadParameter, Forbidden, NotFound, bilingual
from service.geojson import features
from service.params import one_of
from service.selection import Selection, select
from service.store.base import Store
from service.store.query import Condition

router = APIRouter(prefix="/api", tags=["profiles"])


def _rows(store: Store, caller: Principal, layer: str, *where: Condition,
          limit: int | None = None) -> pd.DataFrame:
    return select(store, caller, Selection(ALL[layer], where, limit=limit)).frame


def _records(frame: pd.DataFrame, layer: str) -> list[dict]:
    items, _ = features(frame, ALL[layer])
    return [{"id": f["id"], **f["properties"]} for f in items]


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/parks/{park_id}/profile", summary="园区风险画像（一园一策）")
def park_profile(caller: Caller, store: StoreDep,
                 park_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")],
                 units: Annotated[bool, Query(
                     description="是否附园区内各使用单位的完整记录（false：只返回园区画像，"
                                 "大园区可小几个数量级）")] = True) -> Response:
    park = _rows(store, caller, "parks", Condition("park_id", "eq", (park_id.upper(),)))
    if park.empty:
        raise NotFound(bilingual(
            f"园区 {park_id} 不存在（或不在您的管辖范围内）：请核对园区编号（park_id）",
            f"park {park_id} not found (or outside your region): check park_id"))
    profile = _records(park, "parks")[0]
    if not units:
        return _json({"park": profile})
    rows = _rows(store, caller, "units", Condition("park_id", "eq", (park_id.upper(),)))
    rows = rows.sort_values(["level_rank", "D_max"], ascending=False)
    return _json({"park": profile, "units": _records(rows, "units")})


@router.get("/regions/{adcode}/summary", summary="行政区风险汇总")
def region_summary(caller: Caller, store: StoreDep,
                   adcode: Annotated[str, Path(pattern=r"^\d{2}(\d{2}){0,2}$",
                                               description="行政区划代码，如 410100 或 4101")],
                   level: Annotated[str | None, Query(pattern="^(province|city|county)$")] = None
                   ) -> Response:
    adcode = _region(adcode, "行政区划代码", "adcode").adcode
    where = [Condition("adcode", "eq", (adcode,))]
    if level:
        where.append(Condition("admin_level", "eq", (level,)))
    region = _rows(store, caller, "regions", *where)
    if region.empty:
        raise NotFound(bilingual(
            f"行政区 {adcode} 的汇总不存在（或不在您的管辖范围内）：请核对行政区划代码（adcode）"
            "和级别（level：province、city 或 county）",
            f"no summary of region {adcode} (or it is outside your region): check adcode and "
            "level (province, city or county)"))
    region = region.sort_values("admin_level").iloc[[0]]  # 济源: city before county
    keys = (Condition("adcode", "eq", (adcode,)),
            Condition("admin_level", "eq", (region["admin_level"].iloc[0],)))
    body = {"region": _records(region, "regions")[0],
            "insurance": _records(_rows(store, caller, "insurance", *keys), "insurance"),
            "warnings": _records(_rows(store, caller, "warnings", *keys), "warnings"),
            "industries": _records(_rows(store, caller, "industries", *keys), "industries")}
    return _json(body)


@router.get("/demonstration", summary="示范试点企业与遴选缺口")
def demonstration(caller: Caller, store: StoreDep,
                  city: Annotated[str | None, Query(pattern=r"^\d{4}(\d{2})?$",
                                                    description="地市代码，如 410100 或 4101")
                                  ] = None,
                  category: Annotated[str | None, Query()] = None) -> Response:
    if category is not None and category not in TOP_CATEGORIES:
        raise one_of("设备种类代码", "category", TOP_CATEGORIES,
                     (f"{c}（{n}）" for c, n in TOP_CATEGORIES.items()))
    where = []
    if city:
        found = _region(city, "地市代码", "city")
        if found.level != "city":
            raise BadParameter(bilingual(
                f"地市代码（city）：{found.label}不是地市，请填写地市代码，如 410100 或 4101",
                f"city: {found.adcode} is not a city; give a city code such as 410100 or 4101"))
        city = found.adcode
        where.append(Condition("city_adcode", "eq", (city,)))
    if category:
        where.append(Condition("top_category", "eq", (category,)))
    try:
        chosen = _rows(store, caller, "demonstration", *where)
        coverage = _rows(store, caller, "demonstration-coverage", *where)
    except Forbidden:
        raise Forbidden(bilingual("示范企业按地市遴选，仅地市及以上监管人员可查看",
                                  "demonstration enterprises are chosen per city: only city "
                                  "and province regulators may view them")) from None
    gaps = coverage[coverage["gap"].fillna(False).astype(bool)]
    return _json({"chosen": _records(chosen, "demonstration"),
                  "coverage": _records(coverage, "demonstration-coverage"),
                  "gaps": len(gaps)})


def _region(code: str, zh_name: str, name: str) -> Region:
    """The region parameter ``name`` names, or a 400 naming it."""
    try:
        return resolve_region(code)
    except UnknownRegion as exc:
        raise BadParameter(exc.named(zh_name, name)) from None
