"""The grid officer's field page ``/grid`` (我的网格): their cells on a map beside their
worklist, most urgent first; a check recorded, a hazard moved 已登记 → 整改中 → 已销号,
evidence attached to a hazard at any time, the list downloaded as Excel. The page is a
shell: its script (web/static/js/grid.js) draws everything from scoped endpoints the
caller's session may call: this module's ``/api/grid/cells`` (the cells with only what the
map draws), ``/api/grid/worklist`` (the worklist with only what the page shows) and
``/api/grid/outline``, and the API's ``/api/units/{code}/file``, ``/api/checks``,
``/api/hazards/{id}/transitions`` and ``/api/hazards/{id}/evidence``, so nothing outside
the caller's scope reaches the page. (The layer API's ``grid-cells`` sends every indicator
of every cell: 4.2 MB for the busiest officer of the 50k demo.)

Who may open it:

- a grid officer: their own grid (``?officer=`` naming anyone else is a 403);
- a regulator or an administrator: ``/grid?officer=<id>``, an officer's grid as the
  regulator may see it (监管查看): the officer's cells whose centre lies in the regulator's
  region (as :func:`service.officers.officers_in_region` places officers), the map's
  figures re-counted from the equipment the regulator may see, and the worklist of the
  regulator's own scope within those cells. An officer who works outside the region is
  not found (404), exactly as one that does not exist. The actions are the API's: a
  regulator moves hazards and attaches evidence in their region as they may anywhere;
- anyone else signed in gets a 403 page that says so (their own pages are in their
  navigation); a visitor not signed in is sent to sign in first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote

import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from geo.boundaries import load_boundaries
from geo.cells import cell_polygons
from layers.registry import ALL
from service.auth import ROLE_ZH, Caller, Principal, Role, current_caller, require
from service.caches import Caches
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import BadParameter, Forbidden, NotFound, Unauthorized, bilingual
from service.ingest.write_scope import WriteScope
from service.officers import cells_in_region, known_officers, officer_name
from service.page_user import page_user
from service.scope import layer_scope
from service.security_headers import csp_nonce
from service.selection import Selection, scoped_risk_cells, select_visible
from service.settings import Settings
from service.store.base import Store
from service.store.query import Condition
from service.worklist import KIND_ZH, default_campaigns, worklist
from web.pages import message_page, render

router = APIRouter(tags=["pages"])
PATH = "/grid"
GEOJSON = "application/geo+json"
OFFICER_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
_OFFICER = re.compile(OFFICER_PATTERN)
VIEWERS = (Role.GRID_OFFICER, Role.REGULATOR, Role.ADMIN)  # who may call the page's data
OfficerParam = Annotated[str | None, Query(
    pattern=OFFICER_PATTERN, max_length=64,
    description="网格员编号：监管人员、管理员查看该网格员的网格；网格员只能是本人（可省略）")]
# what the page shows of an item (its kind in Chinese comes once, in "kinds")
ITEM_FIELDS = ("priority", "kind", "due", "reason", "unit_credit_code", "unit_name",
               "registration_code", "hazard_id", "level", "h3", "lon", "lat")
DIGITS = 6  # coordinates to 6 decimals: ~0.1 m, far finer than a cell or a map click


@dataclass(frozen=True)
class Viewed:
    """Whose grid a request shows and what of it: ``cells`` are the cells drawn and the
    worklist's bounds; ``officer`` is true for a grid officer's own view."""

    officer_id: str
    name: str
    cells: tuple[str, ...]
    officer: bool  # the caller is the officer (their own view)


def _officer_missing(officer_id: str) -> NotFound:
    return NotFound(bilingual(
        f"网格员 {officer_id} 不存在（或不在您的管辖范围内）：请核对网格员编号",
        f"grid officer {officer_id} not found (or outside your region)"))


@lru_cache(maxsize=64)
def _in_region(held: tuple[str, ...], adcode: str, provinces: tuple[str, ...]
               ) -> tuple[str, ...]:
    """Kept by the cells themselves (they change with the data, and so does the key)."""
    return cells_in_region(held, WriteScope(adcode), list(provinces))


def viewed(caller: Principal, store: Store, settings: Settings, caches: Caches,
           officer: str | None) -> Viewed:
    """The grid ``caller`` may see for ``officer`` (None: their own, for a grid officer);
    403 for a grid officer naming another officer or a role that views no grid, 400 for a
    regulator or administrator naming none, 404 for an officer unknown or outside the
    caller's region."""
    if caller.role == Role.GRID_OFFICER:
        own = caller.scope or ""
        if officer and officer.upper() != own.upper():
            raise Forbidden(bilingual("网格员只能查看本人的网格", "a grid officer sees only "
                                      "their own grid"))
        return Viewed(own, caller.name, caller.cells, True)
    if caller.role not in (Role.REGULATOR, Role.ADMIN):
        raise Forbidden(bilingual(f"{ROLE_ZH[caller.role]}无权查看网格员的网格",
                                  f"a {caller.role.value} may not view a grid officer's grid"))
    if not officer:
        raise BadParameter(bilingual("请用 officer 参数指明要查看的网格员编号",
                                     "give the grid officer's id as officer"))
    wanted = officer.upper()
    name = officer_name(store, wanted)
    if name is None:
        raise _officer_missing(wanted)
    held = caches.officer_cells.of(store, wanted)
    if caller.role == Role.ADMIN:
        return Viewed(wanted, name, held, False)
    adcode = caller.scope or ""
    inside = _in_region(held, adcode, tuple(settings.provinces))
    # as officers_in_region places them: a cell's centre in the region, or their county
    if not inside and not WriteScope(adcode).contains(
            known_officers(store, [wanted])["county_adcode"]).any():
        raise _officer_missing(wanted)
    return Viewed(wanted, name, inside, False)


def _problem_page(exc: Exception, caller: Principal, nonce: str) -> HTMLResponse:
    """The page's answer to a refused view, as a page (the API answers the same as JSON)."""
    user = page_user(caller)
    text = str(exc).split(" / ")[0]
    if isinstance(exc, NotFound):
        return HTMLResponse(message_page("未找到该网格员", text, user=user, nonce=nonce),
                            status_code=404)
    if isinstance(exc, BadParameter):
        return HTMLResponse(message_page("此页面仅供网格员使用", (
            f"“我的网格”是网格员的工作页；{ROLE_ZH[caller.role]}可在 /grid?officer=网格员编号 "
            "查看本辖区网格员的网格，或从导航进入您的页面。"), user=user, nonce=nonce),
            status_code=403)
    return HTMLResponse(message_page("此页面仅供网格员使用", (
        f"“我的网格”是网格员的工作页，显示本人负责的网格和工作清单；{text}。"
        f"{ROLE_ZH[caller.role]}请从导航进入您的页面。"), user=user, nonce=nonce),
        status_code=403)


@router.get(PATH, summary="网格员工作页（我的网格；监管人员查看网格员的网格）",
            response_class=HTMLResponse)
def grid_page(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
              officer: str | None = None) -> Response:
    officer = officer or None  # ?officer= with nothing names no one
    well_formed = officer is None or _OFFICER.fullmatch(officer) is not None
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        back = PATH if officer is None or not well_formed else f"{PATH}?officer={officer}"
        return RedirectResponse(f"/login?next={quote(back, safe='/')}", status_code=303)
    nonce = csp_nonce(request)
    user = page_user(caller)
    if not well_formed:
        return HTMLResponse(message_page(
            "网格员编号有误", "网格员编号只能由字母、数字、“_”和“-”组成，至多 64 个字符。",
            user=user, nonce=nonce), status_code=400)
    try:
        view = viewed(caller, store, settings, caches, officer)
    except (Forbidden, BadParameter, NotFound) as exc:
        return _problem_page(exc, caller, nonce)
    query = "" if view.officer else f"?officer={view.officer_id}"
    title = "我的网格" if view.officer else f"网格员 {view.name or view.officer_id} 的网格"
    return HTMLResponse(render(
        "grid.html.j2", user=user, nonce=nonce, current=PATH if view.officer else "",
        title=title, officer_id=view.officer_id, officer_name=view.name,
        regulator_view=not view.officer, query=query, cell_count=len(view.cells),
        viewer_zh=ROLE_ZH[caller.role], today=date.today().isoformat(),
        basemaps=settings.basemap_config))


@router.get("/api/grid/cells", summary="网格员的网格（GeoJSON，仅页面所绘字段）",
            response_class=Response, dependencies=[require(*VIEWERS)],
            responses={200: {"content": {GEOJSON: {}}}})
def grid_cells(caller: Caller, store: StoreDep, settings: SettingsDep, caches: CachesDep,
               officer: OfficerParam = None) -> Response:
    """The cells of the grid shown, each with its ``h3``, in-use ``equipment`` and
    ``max_level``, coordinates to 6 decimals. A grid officer's are their rows of the
    ``grid-cells`` layer; a regulator's view counts the equipment the regulator may see in
    each cell (a cell on their border counts only their side)."""
    view = viewed(caller, store, settings, caches, officer)
    if view.officer:
        rows = select_visible(store, caller, Selection(ALL["grid-cells"]))
        frame = pd.DataFrame({c: rows[c] for c in ("h3", "equipment", "max_level")})
    else:
        frame = _counted_cells(store, caller, view.cells)
    return Response(cells_geojson(frame), media_type=GEOJSON,
                    headers={"Cache-Control": "private, no-store"})


def _counted_cells(store: Store, caller: Principal, held: tuple[str, ...]) -> pd.DataFrame:
    """``held`` with the caller's in-use equipment and worst level in each."""
    out = pd.DataFrame({"h3": pd.Series(held, dtype="string")})
    if not held:
        return out.assign(equipment=pd.Series(dtype="Int64"),
                          max_level=pd.Series(dtype="string"))
    where = (*layer_scope(caller, ALL["equipment"]), Condition("h3", "in", held))
    counted = scoped_risk_cells(store, where, None, (store.h3_resolution,))
    counted = pd.DataFrame(counted[["h3", "equipment", "max_level"]]).astype(
        {"h3": "string"}).drop_duplicates("h3")
    out = out.merge(counted, on="h3", how="left")
    out["equipment"] = out["equipment"].astype("Int64").fillna(0)
    return out


def cells_geojson(frame: pd.DataFrame) -> bytes:
    """Cells (``h3``, ``equipment``, ``max_level``) as hexagons with only those three."""
    frame = frame.dropna(subset=["h3"]).reset_index(drop=True)
    geoms = cell_polygons(frame["h3"]) if len(frame) else np.zeros(0, dtype=object)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, DIGITS)) if len(geoms) else geoms
    encoded = shapely.to_geojson(geoms) if len(geoms) else []
    props = zip(frame["h3"].astype(str).tolist(), _plain(frame["equipment"]),
                _plain(frame["max_level"]), strict=True)
    features = [{"type": "Feature", "geometry": orjson.Fragment(g) if g else None,
                 "properties": {"h3": h, "equipment": n, "max_level": lv}}
                for g, (h, n, lv) in zip(encoded, props, strict=True)]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def _plain(column: pd.Series) -> list:
    """Plain Python values, None for missing."""
    return column.astype(object).where(column.notna(), None).tolist()


@router.get("/api/grid/worklist", summary="网格员的工作清单（仅页面所示字段）",
            dependencies=[require(*VIEWERS)])
def grid_worklist(caller: Caller, store: StoreDep, settings: SettingsDep, caches: CachesDep,
                  officer: OfficerParam = None) -> Response:
    """The worklist of the grid shown, in priority order, column by column (the fields the
    page shows; ``kinds`` names each kind in Chinese once). A grid officer's is
    their ``/api/worklist``; a regulator's view is the regulator's worklist within the
    officer's cells in their region."""
    view = viewed(caller, store, settings, caches, officer)
    day = date.today()
    campaigns = default_campaigns(settings.rules)
    if view.officer:
        items = worklist(store, caller, day, caches.worklists, campaigns=campaigns)
    elif view.cells:
        items = worklist(store, caller, day, caches.worklists,
                         (Condition("h3", "in", view.cells),), campaigns=campaigns)
    else:
        items = pd.DataFrame(columns=list(ITEM_FIELDS))
    return Response(orjson.dumps(worklist_rows(items, day)), media_type="application/json",
                    headers={"Cache-Control": "private, no-store"})


def worklist_rows(items: pd.DataFrame, day: date) -> dict:
    """The items as ``columns`` of ``ITEM_FIELDS`` (due as YYYY-MM-DD, coordinates
    rounded): a column is its values in order, or, when it repeats much (an item's kind,
    a unit's name, a reason: 1,426 items of 655 units at 1M), ``{"values", "codes"}``, its
    distinct values and each item's index into them."""
    columns: dict[str, object] = {}
    for name in ITEM_FIELDS:
        column = items[name]
        if name == "due":
            column = pd.to_datetime(column).dt.strftime("%Y-%m-%d")
        elif name in ("lon", "lat"):
            column = pd.to_numeric(column, errors="coerce").round(DIGITS)
        elif name == "priority":
            column = column.astype("Int64")
        columns[name] = _encoded(_plain(column))
    return {"as_of": day.isoformat(), "count": len(items), "kinds": KIND_ZH,
            "columns": columns}


def _encoded(values: list) -> list | dict:
    """``values``, or their dictionary encoding when that is at most half as many."""
    distinct: dict = {}
    codes = [distinct.setdefault(v, len(distinct)) for v in values]
    if len(distinct) * 2 > len(values):
        return values
    return {"values": list(distinct), "codes": codes}


@router.get("/api/grid/outline", summary="网格所在区县的边界（GeoJSON）",
            response_class=Response, dependencies=[require(*VIEWERS)],
            responses={200: {"content": {GEOJSON: {}}}})
def outline(caller: Caller, store: StoreDep, settings: SettingsDep, caches: CachesDep,
            officer: OfficerParam = None) -> Response:
    """The outline of the counties the grid's cells touch, for the page's map: a few
    polygons rather than every county of the service's provinces (``/api/boundaries``).
    Found by geometry (the built layer's ``county_adcode`` may be empty)."""
    view = viewed(caller, store, settings, caches, officer)
    counties = load_boundaries(settings.provinces, level="county")
    geoms = cell_polygons(pd.Series(view.cells, dtype="string")) if view.cells else None
    area = shapely.union_all(geoms) if geoms is not None else None
    touched = (counties.geometry.intersects(area) if area is not None and not area.is_empty
               else counties.geometry.isna() & False)
    shown = counties.loc[touched.to_numpy(dtype=bool), ["adcode", "name", "geometry"]]
    return Response(shown.to_json(drop_id=True, ensure_ascii=False), media_type=GEOJSON)
