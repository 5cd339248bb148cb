"""Grid officers' worklist and the closed hazard loop (排查、登记、治理、销号); every change is
audited with the change itself (the trail is read at ``/api/audit``, routes/audit.py)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import date, datetime
from typing import Annotated, Literal

import h3
import orjson
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Path, Query, Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from layers.registry import ALL
from service import tabular
from service.auth import Caller, Forbidden, Principal, Role, require
from service.deps import CachesDep, SettingsDep, StoreDep
from service.errors import BadParameter, NotFound, bilingual, invalid
from service.ingest.values import parse_dates
from service.ingest.write_scope import WriteScope
from service.officers import known_officers, officers_in_region
from service.scope import layer_scope
from service.store.base import Change, Store
from service.store.errors import ConflictError
from service.store.query import Condition, LayerQuery
from service.worklist import default_campaigns, worklist

router = APIRouter(prefix="/api", tags=["worklist"])
WORKERS = (Role.ADMIN, Role.REGULATOR, Role.GRID_OFFICER, Role.PARK_ADMIN)
CLOSERS = (Role.ADMIN, Role.REGULATOR, Role.GRID_OFFICER)
# the closed loop of 豫市监办〔2021〕55号 二（一）: 已登记 → 整改中 → 已销号; a regulator may
# reopen a hazard closed by mistake (已销号 → 整改中, with the reason)
TRANSITIONS = {("已登记", "整改中"), ("整改中", "已销号")}
REOPEN = ("已销号", "整改中")
Format = Literal["json", "csv", "xlsx"]
# dates a worklist is asked for, or a check or closing is recorded on: a register's era
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
Day = Annotated[date | None, Query(description=f"默认今天；{EARLIEST} 至 {LATEST}")]
MAX_OFFSET = 10_000_000  # as for layer pages: far beyond any trail, within a bigint


def _day(today: date | None) -> date:
    """The worklist's day (default today), within EARLIEST–LATEST, else 400."""
    day = date.today() if today is None else today
    if not EARLIEST <= day <= LATEST:
        raise BadParameter(bilingual(f"日期 today 须在 {EARLIEST} 至 {LATEST} 之间（YYYY-MM-DD）",
                                     f"today must be between {EARLIEST} and {LATEST} "
                                     "(YYYY-MM-DD)"))
    return day


def _hazard_missing(hazard_id: str) -> NotFound:
    """The same 404 whether a hazard is missing or outside the caller's scope."""
    return NotFound(bilingual(f"隐患 {hazard_id} 不存在（或不在您的管辖范围内）：请核对隐患编号",
                              f"hazard {hazard_id} not found (or outside your region): "
                              "check the hazard id"))


def _written_date(value: object) -> object:
    """A date in a request body as ingest reads it in a file (2024-03-01, 2024/3/1,
    2024年3月1日, 20240301, …: :func:`service.ingest.values.parse_dates`); anything else is
    a ``date_parsing`` error, which says to use YYYY-MM-DD."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str) and value.strip():
        parsed, bad = parse_dates(pd.Series([value], dtype=object))
        if not bad[0] and pd.notna(parsed.iloc[0]):
            return parsed.iloc[0].date()
        with contextlib.suppress(ValueError):  # a real day outside ingest's years: the
            return date.fromisoformat(value.strip())  # field's own check names its era
    raise PydanticCustomError("date_parsing", "Input should be a date as YYYY-MM-DD")


WrittenDate = Annotated[date, BeforeValidator(_written_date)]


class Conflict(ConflictError):
    """409 with a Chinese message for the caller."""


def _respond(items: pd.DataFrame, fmt: Format, today: date, name: str) -> Response:
    if fmt == "json":
        records = _records(items.assign(due=items["due"].dt.strftime("%Y-%m-%d")))
        return Response(orjson.dumps({"as_of": today.isoformat(), "count": len(records),
                                      "items": records}), media_type="application/json")
    table = items.rename(columns={
        "priority": "优先级", "kind_zh": "类别", "due": "期限", "reason": "事由",
        "unit_credit_code": "统一社会信用代码", "unit_name": "使用单位",
        "registration_code": "设备注册代码", "hazard_id": "隐患编号", "level": "等级",
        "h3": "网格", "county_adcode": "区县代码", "lon": "经度", "lat": "纬度"}).drop(
        columns=["kind"])
    table["期限"] = table["期限"].dt.strftime("%Y-%m-%d")
    if fmt == "csv":  # UTF-8 with BOM: Excel opens Chinese CSV correctly
        return Response(tabular.to_csv(table).encode("utf-8-sig"), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(tabular.to_xlsx(table, "工作清单"), media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain values (None for missing), built column by column: pandas'
    ``to_dict("records")`` boxes every cell on its own (~8 ms for an officer's 437 items)."""
    columns = [_plain(frame[c]) for c in frame.columns]
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _plain(column: pd.Series) -> list:
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pa.array(column.array).to_pylist()
    if dtype.kind == "f":
        return [None if v != v else v for v in column.to_numpy().tolist()]  # NaN: missing
    return column.astype(object).where(column.notna(), None).tolist()


@router.get("/worklist", summary="我的工作清单", response_class=Response,
            dependencies=[require(*WORKERS)])
def my_worklist(caller: Caller, store: StoreDep, caches: CachesDep, settings: SettingsDep,
                format: Format = "json", today: Day = None) -> Response:
    day = _day(today)
    items = worklist(store, caller, day, caches.worklists,
                     campaigns=default_campaigns(settings.rules))
    return _respond(items, format, day, "worklist")


@router.get("/cells/{cell}/worklist", summary="某网格的工作清单", response_class=Response,
            dependencies=[require(*WORKERS)])
def cell_worklist(caller: Caller, store: StoreDep, caches: CachesDep, settings: SettingsDep,
                  cell: Annotated[str, Path(pattern=r"^[0-9a-f]{15}$")],
                  format: Format = "json",
                  today: Day = None) -> Response:
    if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != store.h3_resolution:
        raise BadParameter(bilingual(
            f"网格 {cell} 须为分辨率 {store.h3_resolution} 的 H3 单元（15 位十六进制）",
            f"cell must be an H3 cell at resolution {store.h3_resolution} (15 hex digits)"))
    if caller.role == Role.GRID_OFFICER and cell not in caller.cells:
        raise Forbidden(bilingual(f"网格 {cell} 不是您负责的网格：请选择您的网格",
                                  f"cell {cell} is not one of your cells"))
    day = _day(today)
    items = worklist(store, caller, day, caches.worklists, (Condition("h3", "eq", (cell,)),),
                     campaigns=default_campaigns(settings.rules))
    return _respond(items, format, day, f"worklist-{cell}")


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_status: Literal["已登记", "整改中", "已销号"] = Field(
        alias="from", description="调用方看到的当前状态（乐观锁：已被他人改动则 409）")
    to: Literal["整改中", "已销号"]
    evidence: str = Field(min_length=2, max_length=2000,
                          description="整改情况或证据说明；重新打开时为原因")
    closed_on: WrittenDate | None = Field(
        None, description="销号日期（销号时必填），YYYY-MM-DD（也接受 2024/3/1、2024年3月1日）")
    verified_by: str | None = Field(None, min_length=1, max_length=100,
                                    description="验收人（销号时必填）")

    @model_validator(mode="after")
    def _closing_needs_date_and_verifier(self) -> Transition:
        if (self.from_status, self.to) not in {*TRANSITIONS, REOPEN}:
            raise ValueError(bilingual(
                f"不允许的状态变更：{self.from_status} → {self.to}；允许的变更为 已登记 → 整改中、"
                "整改中 → 已销号，以及监管人员重新打开 已销号 → 整改中",
                f"transition {self.from_status} → {self.to} not allowed; allowed: 已登记 → "
                "整改中, 整改中 → 已销号, and 已销号 → 整改中 (reopening, regulators only)"))
        if self.to == "已销号" and (self.closed_on is None or not self.verified_by):
            raise ValueError(bilingual(
                "销号须填写销号日期 closed_on（YYYY-MM-DD）和验收人 verified_by",
                "closing needs closed_on (YYYY-MM-DD) and verified_by"))
        return self

    @field_validator("closed_on")
    @classmethod
    def _closed_within_the_register(cls, day: date | None) -> date | None:
        return None if day is None else _past_day(day, "销号日期", "closed_on")


def _past_day(day: date, label: str, field: str) -> date:
    """A day of the register's era, not later than today (the 422 names the field)."""
    today = date.today()
    if day > today:
        raise ValueError(bilingual(f"{label}不能晚于今天（{today}）",
                                   f"{field} cannot be later than today ({today})"))
    if day < EARLIEST:
        raise ValueError(bilingual(f"{label}不能早于 {EARLIEST}",
                                   f"{field} cannot be earlier than {EARLIEST}"))
    return day


def _equipment_in_scope(store: Store, caller: Principal, registration_code: str,
                        hazard_id: str) -> dict:
    """The caller's equipment row by code, or the hazard's 404 (out of scope looks like
    absent)."""
    scope = layer_scope(caller, ALL["equipment"])
    found, _ = store.query_layer(LayerQuery("equipment", (*scope, Condition(
        "registration_code", "eq", (registration_code,))), None, 1, 0))
    if found.empty:
        raise _hazard_missing(hazard_id)
    return found.iloc[0].to_dict()


@router.post("/hazards/{hazard_id}/transitions", summary="隐患状态变更（整改、销号、重新打开）",
             dependencies=[require(*CLOSERS)])
def transition(caller: Caller, store: StoreDep, body: Transition,
               hazard_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]) -> dict:
    """已登记 → 整改中 → 已销号 (closing needs its date, verifier and evidence); 已销号 →
    整改中 reopens a hazard closed by mistake, for regulators of its region only."""
    wanted = hazard_id.upper()
    hazard = store.row("hazards", wanted)
    if hazard is None:
        raise _hazard_missing(wanted)
    piece = _equipment_in_scope(store, caller, hazard["registration_code"], wanted)
    reopen = (body.from_status, body.to) == REOPEN
    if reopen and caller.role != Role.REGULATOR:
        raise Forbidden(bilingual("只有隐患所在辖区的监管人员可以重新打开已销号的隐患",
                                  "only a regulator of the hazard's region may reopen a "
                                  "closed hazard"))
    if hazard.get("status") != body.from_status:  # the caller's view is stale
        raise Conflict(bilingual(
            f"隐患 {wanted} 当前状态为“{hazard.get('status')}”，而您提交的 from 为"
            f"“{body.from_status}”：您看到的状态已过时，请刷新后按当前状态重试",
            f"hazard {wanted} is now {hazard.get('status')}, you sent "
            f"from={body.from_status}: reload and try again"))
    found_on = hazard.get("found_on")
    if body.closed_on and found_on and body.closed_on < _as_date(found_on):
        raise invalid("closed_on", f"销号日期不能早于发现日期 {_as_date(found_on)}",
                      f"closed_on cannot be earlier than the day the hazard was found, "
                      f"{_as_date(found_on)}")
    values: dict = {"status": body.to}
    if body.to == "已销号":
        values |= {"closed_on": body.closed_on, "verified_by": body.verified_by,
                   "evidence": body.evidence}
    if reopen:
        values |= {"closed_on": None, "verified_by": None, "evidence": None}
    note = (f"重新打开：{body.evidence}" if reopen else body.evidence
            + (f"；验收人：{body.verified_by}" if body.verified_by else ""))
    try:
        before, after = store.apply_change(Change(
            "hazards", hazard["hazard_id"], {"status": body.from_status}, values,
            actor=caller.user_id, action="hazard.reopen" if reopen else "hazard.transition",
            note=note, county_adcode=piece.get("county_adcode"), h3=piece.get("h3")))
    except ConflictError:  # it was as the caller saw it, and changed while we wrote
        current = (store.row("hazards", hazard["hazard_id"]) or {}).get("status")
        raise Conflict(bilingual(
            f"隐患 {wanted} 在您提交的同时已被他人改为“{current}”，您的变更未保存：请刷新后重试",
            f"hazard {wanted} was changed by someone else meanwhile (now {current}); "
            "yours was not saved: reload and try again")) from None
    return {"hazard_id": after["hazard_id"], "before": before["status"] if before else None,
            "status": after["status"], "closed_on": _iso(after.get("closed_on")),
            "evidence": body.evidence, "verified_by": body.verified_by}


def _as_date(value: object) -> date:
    return value.date() if hasattr(value, "date") else value  # type: ignore[return-value]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_code: str = Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$", description="被检查单位")
    checked_on: WrittenDate = Field(
        description="检查日期，YYYY-MM-DD（也接受 2024/3/1、2024年3月1日）")
    result: str = Field(min_length=1, max_length=500, description="检查结果，如 符合 / 责令整改")
    officer_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,64}$")

    @field_validator("checked_on")
    @classmethod
    def _within_the_register(cls, day: date) -> date:
        return _past_day(day, "检查日期", "checked_on")


@router.post("/checks", summary="登记一次监督检查", status_code=201,
             dependencies=[require(*CLOSERS)])
def record_check(caller: Caller, store: StoreDep, settings: SettingsDep, body: CheckIn,
                 response: Response) -> dict:
    """The checking officer is the caller: a grid officer records their own checks; an
    administrator or regulator may name an officer who works in their region. The same
    check (unit, officer, date, result) posted again is the record made the first time."""
    scope = layer_scope(caller, ALL["units"])
    unit, _ = store.query_layer(LayerQuery("units", (*scope, Condition(
        "credit_code", "eq", (body.credit_code,))), None, 1, 0))
    if unit.empty:
        raise NotFound(bilingual(
            f"单位 {body.credit_code} 不存在（或不在您的管辖范围内）：请核对统一社会信用代码",
            f"unit {body.credit_code} not found (or outside your region): check the "
            "credit code"))
    officer = _checking_officer(caller, store, settings.provinces, body.officer_id)
    check_id = _check_id(body, officer)
    row = unit.iloc[0]
    try:
        _before, after = store.apply_change(Change(
            "checks", check_id, None, {"check_id": check_id, "credit_code": body.credit_code,
                                       "checked_on": body.checked_on, "officer_id": officer,
                                       "result": body.result},
            actor=caller.user_id, action="check.record", note=body.result,
            county_adcode=row.get("county_adcode"), h3=row.get("h3")))
        duplicate = False
    except ConflictError:  # recorded before: the same check, not a second one
        after, duplicate = store.row("checks", check_id) or {"check_id": check_id}, True
        response.status_code = 200
    schedule, _ = store.query_layer(LayerQuery("check-schedule", (Condition(
        "credit_code", "eq", (body.credit_code,)),), None, 1, 0))
    months = int(schedule["interval_months"].iloc[0]) if len(schedule) else 12
    next_due = (pd.Timestamp(body.checked_on) + pd.DateOffset(months=months)).date()
    return {"check_id": after["check_id"], "credit_code": body.credit_code,
            "checked_on": body.checked_on.isoformat(), "officer_id": officer,
            "interval_months": months, "next_due": next_due.isoformat(),
            "duplicate": duplicate}


def _checking_officer(caller: Principal, store: Store, provinces: list[str],
                      named: str | None) -> str | None:
    if caller.role == Role.GRID_OFFICER:
        if named and named.upper() != (caller.scope or "").upper():
            raise Forbidden(bilingual(
                f"网格员只能以本人名义登记检查：officer_id 留空或填写 {caller.scope}",
                f"a grid officer records their own checks: leave officer_id empty or give "
                f"{caller.scope}"))
        return caller.scope
    if not named:
        return None
    named = named.upper()
    if known_officers(store, [named]).empty:
        raise invalid("officer_id", f"没有网格员 {named}：请填写已登记的网格员编号",
                      f"no grid officer {named}: give a registered officer's id")
    if caller.role == Role.REGULATOR and named not in officers_in_region(
            store, [named], WriteScope(caller.scope or ""), provinces):
        raise invalid("officer_id", f"网格员 {named} 不在您的管辖范围内：请填写您辖区内的网格员",
                      f"grid officer {named} does not work in your region")
    return named


def _check_id(body: CheckIn, officer: str | None) -> str:
    """The same check always gets the same id, so posting it twice records it once."""
    what = "|".join([body.credit_code, officer or "", body.checked_on.isoformat(),
                     body.result.strip()])
    return f"JC{body.checked_on:%Y}{hashlib.sha256(what.encode()).hexdigest()[:12].upper()}"


def _iso(value: object) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
