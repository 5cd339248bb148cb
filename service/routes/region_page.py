"""The region page ``/regions/{adcode}``: a region's summary with its breakdowns, its child
regions ranked, 建成率 against the plan's target, its warnings with their reasons and its
yearly report (issue 14 §4).

Thin: every row comes through the scoped selection the API uses (:func:`select`); the
page's script (web/static/js/region.js) draws the charts from ``/api/regions/{adcode}/
summary``. What the page renders itself is a handful of figures: the region's own row, its
children (at most a few dozen rows, without their geometry, which would make a province's
``/api/layers/regions`` megabytes) and its warnings, and the in-use equipment by category ×
level (40 counts; no API gives it).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

import orjson
import pandas as pd
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from data.catalogue import TOP_CATEGORIES
from geo.boundaries import load_boundaries
from geo.regions import LEVEL_ZH as ADMIN_LEVEL_ZH
from geo.regions import Region, UnknownRegion, resolve_region
from layers.frames import LEVEL_ZH, LEVELS
from layers.registry import ALL
from service.auth import ADCODE_ROLES, ROLE_ZH, Principal, Role, current_caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import Unauthorized
from service.page_user import page_user
from service.scope import region_conditions
from service.security_headers import csp_nonce
from service.selection import Selection, scope_of, select
from service.store.base import Store
from service.store.query import Condition, LayerQuery
from web.pages import PageUser, message_page, render

router = APIRouter(tags=["pages"])
CHILD_LEVEL = {"province": "city", "city": "county"}
_FORM = re.compile(r"\d{2}|\d{4}|\d{6}")


def _rows(store: Store, caller: Principal, layer: str, *where: Condition) -> pd.DataFrame:
    """The caller's rows of ``layer`` (the API's scoped selection), without geometry."""
    frame = select(store, caller, Selection(ALL[layer], where)).frame
    return pd.DataFrame(frame.drop(columns=["geometry"], errors="ignore"))


def _plain(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts: missing values None, JSON fields (a warning's triggers) parsed."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        if isinstance(row.get("triggers"), str | bytes):
            row["triggers"] = orjson.loads(row["triggers"])
    return rows


def may_open(caller: Principal, region: Region) -> bool:
    """Administrators open every region; regulators and planners theirs and those inside."""
    if caller.role == Role.ADMIN:
        return True
    if caller.role not in ADCODE_ROLES or not caller.scope:
        return False
    try:
        own = resolve_region(caller.scope)
    except UnknownRegion:
        return False
    return region.adcode.startswith(own.prefix)


def category_levels(store: Store, caller: Principal, region: Region) -> list[dict]:
    """In-use graded equipment of the region by category × level, in the caller's scope."""
    spec = ALL["equipment"]
    inside = region_conditions(spec, region.adcode, region.level) or ()
    frame, _ = store.query_layer(LayerQuery(
        spec.id, (*scope_of(caller, spec), *inside), None, None,
        columns=("top_category", "level", "in_use")))
    graded = frame["level"].isin(LEVELS) & frame["in_use"].fillna(False).astype(bool)
    frame = frame[graded.to_numpy(dtype=bool)]
    counts = frame.groupby([frame["top_category"].astype(str), frame["level"].astype(str)]
                           ).size()
    out = []
    for code, name in TOP_CATEGORIES.items():
        values = {lv: int(counts.get((code, lv), 0)) for lv in LEVELS}
        if sum(values.values()):
            out.append({"code": code, "name": name, **values})
    return out


OFFICERS_SHOWN = 50  # a province has ~1,000 officers: the page lists those with most to do


def region_officers(store: Store, caller: Principal, region: Region) -> tuple[list[dict], int]:
    """The grid officers working in the region (their cells' counties, as the built
    ``grid-cells`` layer places each cell), in the caller's scope: the ``OFFICERS_SHOWN``
    with the most open major hazards, then open hazards, then equipment, each linking to
    their grid (``/grid?officer=``), and how many there are. Regulators and administrators
    only: the officer view is theirs."""
    if caller.role not in (Role.REGULATOR, Role.ADMIN):
        return [], 0
    spec = ALL["grid-cells"]
    inside = region_conditions(spec, region.adcode, region.level)
    if inside is None:
        return [], 0
    frame, _ = store.query_layer(LayerQuery(
        spec.id, (*scope_of(caller, spec), *inside), None, None,
        columns=("officer_id", "officer_name", "county_adcode", "h3", "equipment",
                 "open_hazards", "open_major_hazards", "overdue")))
    if frame.empty:
        return [], 0
    numbers = ["equipment", "open_hazards", "open_major_hazards", "overdue"]
    frame[numbers] = frame[numbers].astype("float64").fillna(0)
    grouped = frame.groupby("officer_id", sort=True).agg(
        name=("officer_name", "first"), county=("county_adcode", _most_common),
        cells=("h3", "size"), equipment=("equipment", "sum"),
        open_hazards=("open_hazards", "sum"), open_major=("open_major_hazards", "sum"),
        overdue=("overdue", "sum")).reset_index()
    grouped = grouped.sort_values(["open_major", "open_hazards", "equipment", "officer_id"],
                                  ascending=[False, False, False, True], kind="stable")
    names = county_names()
    rows = [{"officer_id": str(r.officer_id), "name": None if pd.isna(r.name) else str(r.name),
             "county": names.get(str(r.county), str(r.county)) if isinstance(r.county, str)
             else None, "cells": int(r.cells), "equipment": int(r.equipment),
             "open_hazards": int(r.open_hazards), "open_major": int(r.open_major),
             "overdue": int(r.overdue)}
            for r in grouped.head(OFFICERS_SHOWN).itertuples(index=False)]
    return rows, len(grouped)


def _most_common(values: pd.Series) -> str | None:
    counted = values.dropna().astype(str).value_counts()
    return str(counted.index[0]) if len(counted) else None


@lru_cache(maxsize=1)
def county_names() -> dict[str, str]:
    """County adcode → name, of every county the shipped boundaries hold."""
    frame = load_boundaries(None, level="county")
    return dict(zip(frame["adcode"].astype(str), frame["name"].astype(str), strict=True))


def _years(store: Store, region: Region, current: int) -> list[int]:
    """The years with a build holding the region's figures (newest first)."""
    history = store.region_history(region.adcode, region.level)
    years = {current}
    if len(history):
        years |= {int(y) for y in pd.to_datetime(history["as_of"]).dt.year.dropna()}
    return sorted(years, reverse=True)


def _refuse(status: int, title: str, message: str, user: PageUser | None,
            nonce: str) -> HTMLResponse:
    return HTMLResponse(message_page(title, message, user=user, nonce=nonce),
                        status_code=status)


@router.get("/regions/{adcode}", summary="辖区概况页", response_class=HTMLResponse)
def region_page(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
                adcode: Annotated[str, Path(max_length=64)]) -> Response:
    nonce = csp_nonce(request)
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        target = f"/regions/{adcode}" if adcode.isascii() and adcode.isdigit() else "/map"
        return RedirectResponse(f"/login?next={target}", status_code=303)
    user = page_user(caller)
    title = "辖区概况"
    try:
        region = resolve_region(adcode, settings.provinces)
    except UnknownRegion as exc:
        status = 404 if _FORM.fullmatch(adcode.strip()) else 400
        return _refuse(status, title, exc.named("行政区划代码", "adcode"), user, nonce)
    if not may_open(caller, region):
        return _refuse(403, title, (
            f"{ROLE_ZH[caller.role]}无权查看{region.label}的辖区概况："
            "仅系统管理员和该行政区及其上级的监管、规划人员可查看"), user, nonce)
    build = store.layer_build()
    own = _rows(store, caller, "regions", Condition("adcode", "eq", (region.adcode,)),
                Condition("admin_level", "eq", (region.level,)))
    if build is None or own.empty:
        return _refuse(404, title, (
            f"{region.label}尚无风险汇总：风险图层尚未生成（riskmap build），"
            "或该行政区不在图层范围内"), user, nonce)
    row = _plain(own)[0]
    child = CHILD_LEVEL.get(region.level)
    children = (_rows(store, caller, "regions",
                      Condition("parent_adcode", "eq", (region.adcode,)),
                      Condition("admin_level", "eq", (child,))) if child else own.iloc[:0])
    if len(children):
        children = children.sort_values(["risk_index", "adcode"], ascending=[False, True],
                                        na_position="last", kind="stable")
    codes = (region.adcode, *children["adcode"].astype(str))
    warnings = _rows(store, caller, "warnings", Condition("adcode", "in", codes),
                     Condition("admin_level", "in", tuple(x for x in (region.level, child)
                                                          if x)))
    if len(warnings):
        warnings = warnings.sort_values(["grade_rank", "adcode"], ascending=[False, True],
                                        kind="stable")
    insurance = _plain(_rows(store, caller, "insurance",
                             Condition("adcode", "eq", (region.adcode,)),
                             Condition("admin_level", "eq", (region.level,))))
    parent = None
    if region.level != "province":
        parent_code = region.city_adcode if region.level == "county" else \
            region.province_adcode
        if parent_code and parent_code != region.adcode:
            above = resolve_region(parent_code)
            if may_open(caller, above):
                parent = above
    officers, officer_count = region_officers(store, caller, region)
    page = render(
        "region.html.j2", user=user, nonce=nonce,
        current=f"/regions/{region.adcode}",
        title=f"{region.name}辖区概况", region=region,
        level_zh=ADMIN_LEVEL_ZH[region.level],
        child_level_zh=ADMIN_LEVEL_ZH.get(child or "", ""), row=row,
        children=_plain(children), warnings=_plain(warnings),
        insurance=insurance[0] if insurance else None, build=build,
        stale=build.data_version != store.data_version(), parent=parent,
        matrix=category_levels(store, caller, region), levels=LEVELS, level_names=LEVEL_ZH,
        years=_years(store, region, build.as_of.year),
        officers=officers, officer_count=officer_count)
    return HTMLResponse(page)
