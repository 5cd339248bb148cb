"""The park administrator's page (一园一策, issue 14 §3): ``/parks/{park_id}`` and its PDF.

Henan plan 二（四）"按照“一园一策”“一企一策”要求": the page shows one park's profile. The
route renders the frame (header and a handful of figures from the park's row) and the
park's in-use equipment counted by category × level (~50 numbers, from the same scoped
selection as ``/api/layers/equipment?park=``, reading three fields); the page's script
(web/static/js/park.js) draws the map, the charts, the riskiest units and the measures from
``/api/parks/{id}/profile?units=false``, the park's outline and ``/parks/{id}/units.geojson``
(the park's units with only what the map shows), with the session cookie. At 1M pieces of
equipment the largest park's first view is thus well under 2 MB instead of 24 MB.
``/parks/{id}/profile.pdf`` is the same profile rendered on the server (tables and
matplotlib SVG charts, WeasyPrint), for printing and filing.

Who may open it: the park's own administrators, regulators and planners whose region holds
the park, administrators. The park is read through the caller's scoped selection (as the
API reads it), so a park outside a regulator's region is not found (404, as in the API);
an administrator of another park, and roles that see no parks, get a 403 page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shapely import get_x, get_y

from data.catalogue import TOP_CATEGORIES
from geo.regions import UnknownRegion, resolve_region
from layers.frames import LEVEL_ZH, LEVELS
from layers.park_measures import METRICS
from layers.registry import ALL
from layers.rules import RulesError, load_rules
from service.auth import ADCODE_ROLES, Principal, Role, current_caller
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import Forbidden, Unauthorized, problem
from service.export import content_disposition
from service.page_user import page_user
from service.report import charts
from service.report.render import ReportUnavailable, render_pdf
from service.security_headers import csp_nonce
from service.selection import Selection, scope_of, select
from service.settings import Settings
from service.store.base import Store
from service.store.query import Condition, LayerQuery
from web.pages import ENV, PageUser, message_page, render

router = APIRouter(tags=["pages"])

PARK_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
LEVEL_OF_UNITS = "按园区内最高风险使用单位的等级"
OPERATOR_ZH = {">": "大于", ">=": "不低于", "<": "低于", "<=": "不高于", "==": "等于"}


@dataclass(frozen=True)
class OpenPark:
    """A park the caller may open: who they are, their page user and nonce, the park's row."""

    caller: Principal
    user: PageUser
    nonce: str
    row: pd.Series


def _refuse(status: int, title: str, message: str, user: PageUser | None, nonce: str
            ) -> HTMLResponse:
    return HTMLResponse(message_page(title, message, user=user, nonce=nonce),
                        status_code=status)


def _open(request: Request, store: Store, settings: Settings, caches: Any, park_id: str
          ) -> OpenPark | Response:
    """The park for this caller, or the response that refuses it (login, 403, 404)."""
    nonce = csp_nonce(request)
    try:
        caller = current_caller(request, store, settings, caches)
    except Unauthorized:
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}",
                                status_code=303)
    user = page_user(caller)
    pid = park_id.upper()
    if not PARK_ID.match(park_id):
        return _refuse(404, "园区不存在", "园区编号格式不正确：应为字母、数字、下划线或连字符。",
                       user, nonce)
    if caller.role == Role.PARK_ADMIN and (caller.scope or "").upper() != pid:
        return _refuse(403, "无权查看该园区", "园区管理员只能查看本园区的画像。", user, nonce)
    try:
        park = select(store, caller, Selection(
            ALL["parks"], (Condition("park_id", "eq", (pid,)),))).frame
    except Forbidden:
        return _refuse(403, "无权查看园区画像",
                       f"{user.role_zh}不能查看园区画像（一园一策）。", user, nonce)
    if park.empty:
        return _refuse(404, "园区不存在",
                       f"园区 {pid} 不存在或不在您的管辖范围内（或风险图层尚未生成）。",
                       user, nonce)
    return OpenPark(caller, user, nonce, park.iloc[0])


# --------------------------------------------------------------------------- figures

def _json(value: object, default: object) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return default
    try:
        return orjson.loads(value)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return default


def _num(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _pct(value: object) -> str:
    v = _num(value)
    return "—" if v is None else f"{100 * v:.1f}%"


def _count(value: object) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:,.0f}"


def park_level(units_by_level: dict) -> str | None:
    """The park's level: the level of its riskiest unit (None when no unit is graded)."""
    return next((lv for lv in LEVELS if int(units_by_level.get(lv) or 0) > 0), None)


def county_name(code: object) -> str:
    """「金水区（410105）」, or the code alone when it names no loaded region."""
    if not isinstance(code, str) or not code:
        return "—"
    try:
        return f"{resolve_region(code).name}（{code}）"
    except UnknownRegion:
        return code


def rank_in_view(store: Store, caller: Principal, row: pd.Series) -> tuple[int, int] | None:
    """(rank, count) of the park among the parks the caller may see (their region's); None
    for a park administrator, who sees only their own park."""
    if caller.role not in ADCODE_ROLES and caller.role != Role.ADMIN:
        return None
    ranks = pd.to_numeric(select(store, caller, Selection(ALL["parks"])).frame["rank"])
    own = _num(row["rank"])
    if own is None:
        return None
    return int((ranks < own).sum()) + 1, len(ranks)


def header(store: Store, caller: Principal, row: pd.Series) -> dict:
    """The page's header and figures row, from the park's own row."""
    by_level = _json(row["units_by_level"], {})
    level = park_level(by_level)
    overdue = _num(row["overdue_rate"])
    in_view = rank_in_view(store, caller, row)
    rank = f"全部园区第 {_count(row['rank'])} 位"
    if in_view is not None:
        rank = f"辖区 {in_view[1]} 个园区中第 {in_view[0]} 位（{rank}）"
    return {
        "park_id": row["park_id"], "name": row["name"], "kind": row["kind"] or "—",
        "county": county_name(row["county_adcode"]),
        "area": "—" if _num(row["area_km2"]) is None else f"{float(row['area_km2']):.2f} 平方公里",
        "level": level, "level_zh": LEVEL_ZH[level] if level else "未分级",
        "level_note": LEVEL_OF_UNITS, "rank": rank,
        "figures": [
            ("使用单位", _count(row["units"]), "家"),
            ("在用设备", _count(row["in_use"]), "台"),
            ("重大/较大风险单位", f"{int(by_level.get('red') or 0)} / "
                               f"{int(by_level.get('orange') or 0)}", "家"),
            ("未销号隐患", _count(row["open_hazards"]),
             f"项（重大 {_count(row['open_major_hazards'])}）"),
            ("逾期未检率", _pct(overdue), ""),
            ("电梯责任保险覆盖率", _pct(row["insurance_coverage"]), ""),
            ("定期检验合规率", _pct(None if overdue is None else 1 - overdue), ""),
            ("“五有”达标率", _pct(row["five_have_rate"]), ""),
        ],
    }


RATES = frozenset({"overdue_rate", "insurance_coverage", "five_have_rate", "small_micro_share"})


def _metric_name(metric: str) -> str:
    """The metric's name without its notes: 「逾期未检率」."""
    return re.split(r"[（；]", METRICS[metric], maxsplit=1)[0]


def _threshold(metric: str, value: float) -> str:
    return f" {100 * value:g}%" if metric in RATES else f" {value:g}"


def measure_rules(settings: Settings) -> list[dict]:
    """Each park measure's trigger in words and its basis (from the service's rule file)."""
    try:
        rules = load_rules(settings.rules).parks.measures
    except RulesError:
        return []
    out = []
    for rule in rules:
        if not rule.applies_to("park"):
            continue
        reason = "，且".join(f"{_metric_name(m)}{OPERATOR_ZH[op]}{_threshold(m, v)}"
                            for m, op, v in rule.clauses())
        out.append({"id": rule.id, "reason": reason, "basis": rule.basis})
    return out


# --------------------------------------------------------------------------- the page

@router.get("/parks/{park_id}", summary="园区画像页（一园一策）", response_class=HTMLResponse,
            include_in_schema=False)
def park_page(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
              park_id: str) -> Response:
    opened = _open(request, store, settings, caches, park_id)
    if isinstance(opened, Response):
        return opened
    head = header(store, opened.caller, opened.row)
    categories = category_levels(park_columns(store, opened.caller, "equipment",
                                              head["park_id"], EQUIPMENT_FIELDS))
    page = render("park.html.j2", user=opened.user, nonce=opened.nonce,
                  current=request.url.path, title=f"{head['name']} · 园区画像", park=head,
                  rules=measure_rules(settings), levels=LEVEL_ZH,
                  categories=[{k: r[k] for k in ("code", *LEVELS, "none")} for r in categories],
                  pdf=f"/parks/{quote(head['park_id'], safe='')}/profile.pdf",
                  basemaps=settings.basemap_config)
    return HTMLResponse(page, headers={"Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- the map's units

UNIT_FIELDS = ("credit_code", "name", "level", "equipment", "open_hazards")
EQUIPMENT_FIELDS = ("top_category", "level", "in_use")


def park_columns(store: Store, caller: Principal, layer: str, park_id: str,
                 columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` (and geometry) of the caller's rows of ``layer`` in the park: the API's
    scope and ``park=`` filter, reading only the fields a page draws (empty when the role
    sees none of the layer)."""
    try:
        scope = scope_of(caller, ALL[layer])
    except Forbidden:
        return pd.DataFrame(columns=list(columns))
    frame, _ = store.query_layer(LayerQuery(
        layer, (*scope, Condition("park_id", "eq", (park_id,))), None, None, columns=columns))
    return frame


def _value(v: object) -> object:
    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def units_geojson(frame: pd.DataFrame) -> bytes:
    """The park's located units as GeoJSON points with only what the map shows."""
    if "geometry" in frame.columns:
        frame = frame[frame.geometry.notna()]
        geoms = frame.geometry.to_numpy()
        lon, lat = get_x(geoms).round(6), get_y(geoms).round(6)
    else:
        lon = lat = []
    fields = {f: frame[f].astype(object).tolist() for f in UNIT_FIELDS if f in frame.columns}
    features = [{"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
                 "properties": {f: _value(values[i]) for f, values in fields.items()}}
                for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


@router.get("/parks/{park_id}/units.geojson", summary="园区画像页地图上的使用单位",
            include_in_schema=False)
def park_units(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
               park_id: str) -> Response:
    """The park's units for the page's map: point, credit code, name, level, equipment and
    open hazards only (the units layer's full records are ~2 kB each)."""
    opened = _open(request, store, settings, caches, park_id)
    if isinstance(opened, Response):
        return opened
    frame = park_columns(store, opened.caller, "units", opened.row["park_id"], UNIT_FIELDS)
    return Response(units_geojson(frame), media_type="application/geo+json",
                    headers={"Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- the PDF

def category_levels(equipment: pd.DataFrame) -> list[dict]:
    """In-use equipment of each category by level (the chart's and the table's rows);
    ``none`` counts the pieces with no level."""
    if equipment.empty:
        return []
    eq = equipment[equipment["in_use"].astype("boolean").fillna(True).astype(bool)]
    out = []
    for code, group in eq.groupby(eq["top_category"].astype("string").fillna("未知"),
                                  sort=True):
        levels = group["level"].astype("string").value_counts()
        row = {"code": code, "name": TOP_CATEGORIES.get(code, "未知种类"), "n": len(group),
               **{lv: int(levels.get(lv, 0)) for lv in LEVELS}}
        row["none"] = len(group) - sum(row[lv] for lv in LEVELS)
        out.append(row)
    return out


def _category_chart(rows: list[dict]) -> str | None:
    if not rows:
        return None
    with charts._figure(6.4, 0.32 * len(rows) + 1.0) as fig:
        rows = list(reversed(rows))
        names = [f"{r['name']}（{r['code']}）" for r in rows]
        ax = fig.add_subplot()
        left = [0] * len(rows)
        for lv, colour in zip(LEVELS, ("red", "orange", "yellow", "blue"), strict=True):
            values = [r[lv] for r in rows]
            ax.barh(names, values, left=left, color=charts.COLOURS[colour], label=LEVEL_ZH[lv])
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlabel("在用设备（台）")
        ax.legend(loc="lower right", frameon=False, ncols=4, bbox_to_anchor=(1, 1))
        return charts._svg(fig, "park-levels")


def _monthly_chart(months: list[dict]) -> str | None:
    if not months:
        return None
    with charts._figure(6.4, 2.4) as fig:
        ax = fig.add_subplot()
        labels = [m["month"] for m in months]
        ax.plot(labels, [m["found"] for m in months], color=charts.COLOURS["orange"],
                marker="o", label="发现隐患")
        ax.plot(labels, [m["closed"] for m in months], color=charts.COLOURS["line"],
                marker="s", label="隐患销号")
        ax.set_ylabel("隐患（项）")
        ax.tick_params(axis="x", labelrotation=45)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1, 1))
        return charts._svg(fig, "park-monthly")


def print_html(store: Store, settings: Settings, opened: OpenPark) -> str:
    """The profile as a self-contained printable page (inline CSS and SVG charts)."""
    from markupsafe import Markup

    row, caller = opened.row, opened.caller
    head = header(store, caller, row)
    categories = category_levels(park_columns(store, caller, "equipment", row["park_id"],
                                              EQUIPMENT_FIELDS))
    months = _json(row["monthly"], [])
    texts, ids = _json(row["measures"], []), _json(row["measure_ids"], [])
    why = {r["id"]: r for r in measure_rules(settings)}
    measures = [{"text": t, "reason": why.get(i, {}).get("reason", ""),
                 "basis": why.get(i, {}).get("basis", "")}
                for t, i in zip(texts, ids, strict=False)]
    svg = {"categories": _category_chart(categories), "monthly": _monthly_chart(months)}
    return ENV.get_template("park_print.html.j2").render(
        park=head, categories=categories, months=months, levels=LEVEL_ZH,
        top_units=_json(row["top_units"], []), measures=measures,
        charts={k: Markup(v) if v else None for k, v in svg.items()},
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


@router.get("/parks/{park_id}/profile.pdf", summary="园区画像（一园一策）PDF",
            response_class=Response, include_in_schema=False)
def park_pdf(request: Request, store: StoreDep, settings: SettingsDep, caches: CachesDep,
             park_id: str) -> Response:
    opened = _open(request, store, settings, caches, park_id)
    if isinstance(opened, Response):
        return opened
    try:
        body = render_pdf(print_html(store, settings, opened))
    except ReportUnavailable as exc:
        return problem(503, "无法生成 PDF", str(exc))
    headers = {"Content-Disposition": content_disposition(
                   f"园区画像_{opened.row['name']}.pdf", f"park_{opened.row['park_id']}.pdf"),
               "Cache-Control": "private, no-store"}
    return Response(body, media_type="application/pdf", headers=headers)
