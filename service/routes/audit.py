"""The audit trail (``GET /api/audit``): every change made through the service, every
ingest batch and every user added or disabled, append-only, as a supervisor reads it: who
(name and role), when (Beijing time), the row before and after without the store's
bookkeeping; filtered by action, object and time, as JSON or CSV."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from service import tabular
from service.auth import Caller, Role, audit_actor, require
from service.deps import StoreDep
from service.errors import BadParameter, bilingual
from service.ingest.values import parse_dates
from service.params import known_query
from service.store.changes import ACTIONS, ENTITIES
from service.store.query import Condition
from service.store.tables import ALL_TABLES, META

router = APIRouter(prefix="/api", tags=["audit"])
# the trail's era, as for the dates the worklist routes take
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
MAX_OFFSET = 10_000_000  # as for layer pages: far beyond any trail, within a bigint

# times in the trail are shown in Beijing time (China keeps one zone and no summer time);
# they are stored as naive UTC
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
AUDIT_ZONE = "Asia/Shanghai (+08:00)"
# what ``action`` takes: an action, or a family of them (``hazard``: every hazard.*)
AUDIT_ACTIONS = (*ACTIONS, *dict.fromkeys(a.split(".")[0] for a in ACTIONS))
AuditAction = Literal[AUDIT_ACTIONS]  # type: ignore[valid-type]
# what an entry's rows keep to themselves: fingerprints, batch and source bookkeeping
INTERNAL = frozenset(c for c, _ in META)
_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]00:00:00$")


def _moment(value: object, end: bool) -> object:
    """A ``since`` (``end`` False) or ``until`` bound as an aware datetime: a date (YYYY-MM-DD,
    or as ingest reads dates) is that day in Beijing time, its start for ``since`` and the
    next day's start for ``until`` (the whole day included); a time without a zone is
    Beijing time; ``until`` includes the instant it names."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    text = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", text)
    moment: datetime | None = None
    day = not any(c in text for c in ":T")  # a date, no time of day
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        parsed, bad = parse_dates(pd.Series([text], dtype=object))
        if text and day and not bad[0] and pd.notna(parsed.iloc[0]):
            moment = parsed.iloc[0].to_pydatetime()
    if moment is None:
        raise PydanticCustomError("datetime_parsing", "Input should be a date or a time")
    if not EARLIEST.year <= moment.year <= LATEST.year:
        raise ValueError(bilingual(f"须在 {EARLIEST} 至 {LATEST} 之间",
                                   f"must be between {EARLIEST} and {LATEST}"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    if end:
        moment += timedelta(days=1) if day else timedelta(microseconds=1)
    return moment


Since = Annotated[datetime | None, BeforeValidator(lambda v: _moment(v, False)), Query(
    description="起始时间（含）：YYYY-MM-DD 或 YYYY-MM-DDTHH:MM:SS，可带时区，不带时区按北京时间")]
Until = Annotated[datetime | None, BeforeValidator(lambda v: _moment(v, True)), Query(
    description="截止时间（含）：YYYY-MM-DD（含当天全天）或 YYYY-MM-DDTHH:MM:SS，可带时区")]


@router.get("/audit", summary="审计记录（只增不改）", response_class=Response,
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
            dependencies=[require(Role.ADMIN, Role.REGULATOR), Depends(known_query)])
def audit(caller: Caller, store: StoreDep,
          entity_id: Annotated[str | None, Query(max_length=64, description="对象编号")] = None,
          action: Annotated[AuditAction | None, Query(
              description="操作类型，如 hazard.transition；或一类操作，如 hazard")] = None,
          since: Since = None, until: Until = None,
          format: Annotated[Literal["json", "csv"], Query(description="json 或 csv")] = "json",
          limit: Annotated[int, Query(ge=1, le=1000, description="每页条数 1–1000")] = 100,
          offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="起始位置")] = 0
          ) -> Response:
    """Newest first. Each entry names its actor (id, name, role), its time in Beijing time
    (+08:00) and the row before and after, without the store's bookkeeping. A regulator
    reads the entries of their region only (placed by the changed row's county)."""
    where: list[Condition] = []
    if caller.role == Role.REGULATOR:  # their region's entries, selected in the query
        prefix = (caller.scope or "")[:{"province": 2, "city": 4}.get(
            caller.admin_level or "", 6)]
        where.append(Condition("county_adcode", "prefix", (prefix,)))
    if entity_id:
        where.append(Condition("entity_id", "eq", (entity_id,)))
    if action:
        where.append(Condition("action", "eq", (action,)) if action in ACTIONS
                     else Condition("action", "prefix", (action + ".",)))
    if since is not None and until is not None and since >= until:
        raise BadParameter(bilingual("起始时间 since 须早于截止时间 until",
                                     "since must be earlier than until"))
    page, matched = store.query_audit(tuple(where), since=_stored_time(since),
                                      until=_stored_time(until), limit=limit, offset=offset)
    users = {u.user_id: u for u in store.users()}
    entries = [_entry(row, users) for row in
               page.astype(object).where(page.notna(), None).to_dict("records")]
    if format == "csv":
        return _audit_csv(entries, matched)
    return Response(orjson.dumps({"count": matched, "limit": limit, "offset": offset,
                                  "timezone": AUDIT_ZONE, "entries": entries}),
                    media_type="application/json")


def _stored_time(moment: datetime | None) -> datetime | None:
    """A bound as the trail stores times: naive UTC."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _beijing(value: object) -> str | None:
    """A stored (naive UTC) time as ISO 8601 in Beijing time, to the second."""
    if value is None or value is pd.NaT:
        return None
    moment = pd.Timestamp(value).to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def _entry(row: dict, users: dict) -> dict:
    entity = row.get("entity")
    return {"audit_id": row["audit_id"], "at": _beijing(row["at"]),
            "actor": audit_actor(row.get("actor"), users),
            "action": row.get("action"), "action_zh": ACTIONS.get(row.get("action") or ""),
            "entity": entity, "entity_zh": ENTITIES.get(entity or ""),
            "entity_id": row.get("entity_id"), "note": row.get("note"),
            "county_adcode": row.get("county_adcode"), "h3": row.get("h3"),
            "before": _shown_row(entity, row.get("before")),
            "after": _shown_row(entity, row.get("after"))}


def _shown_row(entity: str | None, stored: object) -> dict | None:
    """A row as an entry shows it: no bookkeeping columns, dates as YYYY-MM-DD and times
    in Beijing time."""
    if stored is None:
        return None
    values = orjson.loads(stored) if isinstance(stored, str | bytes) else dict(stored)
    spec = ALL_TABLES.get(entity or "")
    kinds = dict(spec.columns) if spec is not None else {}
    shown = {}
    for key, value in values.items():
        if key in INTERNAL:
            continue
        if isinstance(value, str) and kinds.get(key) == "timestamp":
            with contextlib.suppress(ValueError):
                value = _beijing(datetime.fromisoformat(value))
        elif isinstance(value, str):
            midnight = _MIDNIGHT.match(value)
            value = midnight.group(1) if midnight else value
        shown[key] = value
    return shown


AUDIT_CSV = {"at": "时间（北京时间）", "actor_name": "操作人", "actor_role": "角色",
             "actor_id": "操作人编号", "action_zh": "操作", "action": "操作代码",
             "entity_zh": "对象", "entity_id": "对象编号", "note": "说明",
             "county_adcode": "区县代码", "h3": "网格", "before": "变更前", "after": "变更后"}


def _audit_csv(entries: list[dict], matched: int) -> Response:
    """The page as CSV (UTF-8 with BOM, formula-safe), the rows as JSON text."""
    rows = [{"at": e["at"], "actor_name": e["actor"]["name"],
             "actor_role": e["actor"]["role_zh"], "actor_id": e["actor"]["id"],
             "action_zh": e["action_zh"], "action": e["action"], "entity_zh": e["entity_zh"],
             "entity_id": e["entity_id"], "note": e["note"],
             "county_adcode": e["county_adcode"], "h3": e["h3"],
             **{k: None if e[k] is None else orjson.dumps(e[k]).decode()
                for k in ("before", "after")}} for e in entries]
    table = pd.DataFrame(rows, columns=list(AUDIT_CSV)).rename(columns=AUDIT_CSV)
    return Response(tabular.to_csv(table).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"',
                             "X-Total-Count": str(matched)})
