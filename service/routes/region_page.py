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
from typing import Annotated

import orjson
import pandas as pd
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from data.catalogue import TOP_CATEGORIES
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
        years=_years(store, region, build.as_of.year))
    return HTMLResponse(page)
