"""A using unit's file (一企一档一码): everything the service knows of one unit, for a
caller in whose scope it is, and the stable public code (a QR code) that opens it.

Henan plan 二（四）: "依托安全生产“一企一档一码”". The file reads the built layers (the unit's
row of ``units``, its pieces of ``equipment``, its ``check-schedule``) through the scoped
selection, and the stored tables (address, checks, hazards) and the audit trail (each
hazard's history) for the unit the selection found. A unit outside the caller's scope is
not found, exactly as a unit that does not exist: the file never tells which.

The unit's measures are its 一企一策 measures (the ``[[parks.measures]]`` rules written for
units), or, for a unit in the small/micro simplified mode, its short checklist
(``[[small_micro.checklist]]``) instead.

The public code encodes ``{public base}/units/{credit code}``: the base is
``RISKMAP_PUBLIC_URL`` (:class:`service.settings.Settings`), else the request's base URL,
so the code printed on a unit's wall stays the same across builds.
"""

from __future__ import annotations

import io
from datetime import UTC, timedelta, timezone

import orjson
import pandas as pd
import segno

from data.catalogue import TOP_CATEGORIES
from data.credit_code import is_valid
from layers.aggregate import INDUSTRY_NAMES
from layers.frames import LEVEL_ZH
from layers.registry import ALL
from service.auth import Principal, Role, audit_actor
from service.errors import BadParameter, NotFound, bilingual
from service.geojson import features
from service.selection import Selection, select, select_visible
from service.store.base import Store
from service.store.changes import ACTIONS
from service.store.query import Condition

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
#: what the QR code holds: error correction M (15%) survives a worn sticker
QR_ERROR = "m"
SMALL_MICRO_TITLE = "小微企业简易清单（一企一档一码，“简便、实用、管用”）"
FULL_TITLE = "一企一策措施"
# the equipment fields a file shows (the rest of the layer is location bookkeeping)
EQUIPMENT_FIELDS = (
    "registration_code", "category_code", "category", "top_category", "status", "in_use",
    "commissioned_on", "next_inspection_due", "inspection_conclusion", "overdue", "insured",
    "open_hazards", "open_major_hazards", "late_hazards", "L", "E", "C", "D", "lec_band",
    "level", "level_rank", "L_reason", "L_also", "E_reason", "C_reason", "level_reason")
UNIT_HIDDEN = ("measures", "measure_ids", "checklist", "categories")


def check_credit_code(credit_code: str) -> str:
    """The code as stored (trimmed, upper case), or a 400 naming it when it is not a valid
    GB 32100 统一社会信用代码."""
    code = credit_code.strip().upper()
    if not is_valid(pd.Series([code], dtype="string"))[0]:
        shown = credit_code if len(credit_code) <= 40 else credit_code[:40] + "…"
        raise BadParameter(bilingual(
            f"统一社会信用代码（credit_code）{shown!r} 无效：须为 18 位，由数字和大写字母"
            "（不含 I、O、S、V、Z）组成，末位为 GB 32100 校验码",
            f"credit_code {shown!r} is not a valid unified social credit code: 18 digits and "
            "capitals (no I, O, S, V, Z), the last a GB 32100 check character"))
    return code


def _not_found(code: str) -> NotFound:
    """The same 404 whether the unit is missing or outside the caller's scope."""
    return NotFound(bilingual(
        f"使用单位 {code} 不存在（或不在您的管辖范围内）：请核对统一社会信用代码",
        f"unit {code} not found (or outside your region): check the credit code"))


def _rows(store: Store, caller: Principal, layer: str, *where: Condition) -> pd.DataFrame:
    return select(store, caller, Selection(ALL[layer], where)).frame


def _records(frame: pd.DataFrame, layer: str) -> list[dict]:
    """Layer rows as plain dicts (JSON fields parsed)."""
    items, _ = features(frame, ALL[layer])
    return orjson.loads(orjson.dumps([f["properties"] for f in items]))


def visible_unit(store: Store, caller: Principal, credit_code: str) -> dict:
    """The caller's row of the ``units`` layer for this code; 400 if the code is invalid,
    404 if there is no such unit or it is outside the caller's scope."""
    code = check_credit_code(credit_code)
    found = _rows(store, caller, "units", Condition("credit_code", "eq", (code,)))
    if found.empty:
        raise _not_found(code)
    return _records(found.iloc[[0]], "units")[0]


def public_link(base_url: str, credit_code: str) -> str:
    """The stable URL a unit's code opens: ``{base}/units/{credit code}``."""
    return f"{base_url.rstrip('/')}/units/{credit_code}"


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error=QR_ERROR, micro=False)


def qr_svg(url: str, scale: int = 4) -> bytes:
    """The QR code of ``url`` as a standalone SVG document."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="svg", scale=scale, border=4, title="一企一档一码",
                      dark="#000", light="#fff")
    return out.getvalue()


def qr_png(url: str, scale: int = 6) -> bytes:
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def unit_file(store: Store, caller: Principal, credit_code: str, base_url: str) -> dict:
    """The file of the unit ``credit_code`` as the caller may see it (see the module)."""
    unit = visible_unit(store, caller, credit_code)
    code = unit["credit_code"]
    build = store.layer_build()
    stored = store.lookup("units", "credit_code", [code], ["credit_code", "address"])
    address = stored["address"].dropna()
    equipment = _rows(store, caller, "equipment", Condition("unit_credit_code", "eq", (code,)))
    equipment = equipment.sort_values(["level_rank", "D", "registration_code"],
                                      ascending=[False, False, True], kind="stable")
    pieces = _records(equipment, "equipment")
    # check schedules hold no park column: a park administrator gets none
    schedule = select_visible(store, caller, Selection(ALL["check-schedule"], (
        Condition("credit_code", "eq", (code,)),)))
    link = public_link(base_url, code)
    return {
        "as_of": build.as_of.isoformat() if build else None,
        "unit": {
            **{k: v for k, v in unit.items() if k not in UNIT_HIDDEN},
            "address": address.iloc[0] if len(address) else None,
            "industry_name": INDUSTRY_NAMES.get((unit.get("industry") or "")[:1]),
            "level_zh": LEVEL_ZH.get(unit.get("level") or ""),
            "categories": unit.get("categories") or {},
        },
        "equipment": [{**{k: p.get(k) for k in EQUIPMENT_FIELDS},
                       "category_name": TOP_CATEGORIES.get(p.get("top_category") or ""),
                       "level_zh": LEVEL_ZH.get(p.get("level") or "")} for p in pieces],
        "schedule": _records(schedule, "check-schedule")[0] if len(schedule) else None,
        "checks": _checks(store, code),
        "hazards": _hazards(store, caller, [p["registration_code"] for p in pieces]),
        "measures": _measures(unit),
        "code": {"url": link, "svg": f"/api/units/{code}/qr.svg",
                 "png": f"/api/units/{code}/qr.png"},
    }


def _measures(unit: dict) -> dict:
    """一企一策 measures, or the small/micro checklist instead."""
    if unit.get("small_micro"):
        return {"mode": "small_micro", "title": SMALL_MICRO_TITLE,
                "items": list(unit.get("checklist") or [])}
    texts = unit.get("measures") or []
    ids = unit.get("measure_ids") or [None] * len(texts)
    return {"mode": "full", "title": FULL_TITLE,
            "items": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=False)]}


def _plain(frame: pd.DataFrame) -> list[dict]:
    """Stored rows as JSON-ready dicts: dates as YYYY-MM-DD, missing as None."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    return out.astype(object).where(out.notna(), None).to_dict("records")


def _checks(store: Store, code: str) -> list[dict]:
    checks = store.lookup("checks", "credit_code", [code],
                          ["check_id", "checked_on", "officer_id", "result"])
    return _plain(checks.sort_values(["checked_on", "check_id"], ascending=False))


def _hazards(store: Store, caller: Principal, registration_codes: list[str]) -> list[dict]:
    """The hazards of the unit's (visible) equipment, open and closed, newest first, each
    with its history: registered (found_on), then every change made through the service
    (the audit trail), oldest first."""
    if not registration_codes:
        return []
    hazards = store.lookup("hazards", "registration_code", registration_codes, [
        "hazard_id", "registration_code", "found_on", "level", "description", "status",
        "deadline", "closed_on", "verified_by", "evidence"])
    hazards = hazards.sort_values(["found_on", "hazard_id"], ascending=False)
    rows = _plain(hazards)
    history = _history(store, caller, [r["hazard_id"] for r in rows])
    for row in rows:
        found = ([{"at": row["found_on"], "action": "hazard.register", "action_zh": "登记隐患",
                   "from": None, "to": "已登记", "note": row["description"], "by": None}]
                 if row["found_on"] else [])
        row["history"] = found + history.get(row["hazard_id"], [])
    return rows


def _history(store: Store, caller: Principal, ids: list[str]) -> dict[str, list[dict]]:
    """Each hazard's changes from the audit trail, oldest first. Who made a change is named
    to administrators and regulators (who read the trail itself); others see the role."""
    if not ids:
        return {}
    trail, _ = store.query_audit((Condition("entity", "eq", ("hazards",)),
                                  Condition("entity_id", "in", tuple(ids))))
    if trail.empty:
        return {}
    users = {u.user_id: u for u in store.users()}
    named = caller.role in (Role.ADMIN, Role.REGULATOR)
    out: dict[str, list[dict]] = {}
    trail = trail.sort_values(["at", "audit_id"], kind="stable")
    for row in trail.astype(object).where(trail.notna(), None).to_dict("records"):
        actor = audit_actor(row.get("actor"), users)
        before, after = (_status(row.get(k)) for k in ("before", "after"))
        attached = _evidence(row.get("after")) if row.get("action") == "hazard.evidence" else None
        out.setdefault(row["entity_id"], []).append({
            "at": _beijing(row["at"]), "action": row.get("action"),
            "action_zh": ACTIONS.get(row.get("action") or ""), "from": before, "to": after,
            "note": row.get("note"),
            "by": (f"{actor['name']}（{actor['role_zh']}）" if named and actor["name"]
                   else actor["role_zh"]),
            **({"evidence": attached} if attached else {})})
    return out


def _evidence(stored: object) -> dict | None:
    """An evidence upload's item as the history shows it: name, type, size and its link
    (``GET /api/evidence/{id}``, scoped like the hazard)."""
    if stored is None:
        return None
    values = orjson.loads(stored) if isinstance(stored, str | bytes) else dict(stored)
    item = values.get("evidence") or {}
    if not item.get("evidence_id"):
        return None
    return {"evidence_id": item["evidence_id"], "filename": item.get("filename"),
            "media_type": item.get("media_type"), "size": item.get("size"),
            "url": f"/api/evidence/{item['evidence_id']}"}


def _status(stored: object) -> str | None:
    if stored is None:
        return None
    values = orjson.loads(stored) if isinstance(stored, str | bytes) else dict(stored)
    return values.get("status")


def _beijing(value: object) -> str | None:
    """A stored (naive UTC) time in Beijing time, to the second."""
    if value is None:
        return None
    moment = pd.Timestamp(value).to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")

