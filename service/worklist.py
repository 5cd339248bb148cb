"""A caller's worklist: what needs doing in their scope, most urgent first.

Items come from the built layers, corrected by what has happened since the build (hazards
closed or moved on, supervision checks recorded through the service):

1. open 重大 hazards under listed supervision (挂牌督办, Henan plan 二（二）);
2. hazards past their rectification deadline (闭环管理, Henan plan 二（一）);
3. equipment overdue for periodic inspection (逾期未检, Henan plan 二（三）);
4. supervision checks due within 30 days by the unit's frequency (加大监督检查频次, Henan
   plan 二（二）), the riskiest first (the schedule's ``priority`` in the unit's county: a
   boost that did not fit the county's inspection capacity still moves the unit up);
5. this month's campaign task for the units of the levels it names (red and orange by
   default): the campaigns are the rule file's ``[[campaigns]]`` (Shaanxi plan 二（一）
   calendar), each only for units in its scope (Shaanxi, 2020–2022 by default);
6. units drawn for 双随机 checks (Henan plan 三（二）) and not checked since the draw: those in
   the caller's scope, and for a grid officer also those the draw assigned to them (the
   draw is public, and an inspector is drawn away from their own cells).

Each layer is queried once with the caller's scope; what changed since the build is looked up
only for the rows in scope (``Store.lookup``), never by reading whole live tables. A list is
kept until the store's data version or layer build changes, so asking again costs two
version checks, not six queries. What does not depend on the day is kept as well (the
layers' rows in scope by build, what the live tables say of them by data version, and
the item each open hazard or scheduled unit makes, up to KEPT_ITEM_ROWS of them), so a
list for another day is a filter and a sort (a few ms for the largest officer at 1M), and
the first list after a check or a hazard's move costs two lookups, not six queries.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from data.catalogue import category_name
from layers.campaigns import BASIS as CAMPAIGN_BASIS
from layers.campaigns import Campaign, campaigns_on
from layers.registry import ALL
from layers.rules import load_rules
from service.auth import Forbidden, Principal, Role
from service.caches import Worklists
from service.scope import layer_scope
from service.store.base import Store
from service.store.query import Condition, LayerQuery, isin

DUE_SOON_DAYS = 30
#: A scope with at most this many open hazards (units scheduled) keeps every one's item,
#: made once per data version: another day's list is then a filter (a larger scope's
#: items would not fit the worklists' cache beside its other parts).
KEPT_ITEM_ROWS = 20_000
__all__ = ["CAMPAIGN_BASIS", "worklist"]
COLUMNS = ("priority", "kind", "kind_zh", "due", "reason", "unit_credit_code", "unit_name",
           "registration_code", "hazard_id", "level", "h3", "county_adcode", "lon", "lat")
# the fields each layer contributes (fid, geometry and the scope's columns come along)
FIELDS = {
    "hazards": ("hazard_id", "registration_code", "unit_credit_code", "unit_name", "level",
                "description", "deadline", "listed", "county_adcode", "h3"),
    "overdue": ("registration_code", "category", "unit_credit_code", "unit_name",
                "next_inspection_due", "days_overdue", "level", "county_adcode", "h3"),
    "check-schedule": ("credit_code", "name", "level", "interval_months", "reasons",
                       "last_check_on", "next_due", "priority", "county_adcode", "h3"),
    "units": ("credit_code", "name", "level", "province_adcode", "county_adcode", "h3"),
}
KIND_ZH = {"listed_hazard": "挂牌督办重大隐患", "late_hazard": "逾期未整改隐患",
           "overdue_inspection": "逾期未检", "check_due": "监督检查到期",
           "campaign": "本月专项任务", "random_check": "双随机抽查"}


def _scoped(store: Store, caller: Principal, layer: str,
            extra: tuple[Condition, ...] = ()) -> pd.DataFrame:
    try:
        scope = layer_scope(caller, ALL[layer])
    except Forbidden:
        return pd.DataFrame()
    frame, _ = store.query_layer(LayerQuery(layer, (*scope, *extra), None, None, 0,
                                            columns=FIELDS[layer]))
    return frame


def _codes(column: pd.Series) -> tuple[str, ...]:
    """The distinct non-null values of a key column, to look rows up by."""
    return tuple(column.dropna().astype(str).unique())


def _xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "geometry" not in frame or frame.empty:
        return np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    geoms = frame.geometry
    ok = geoms.notna().to_numpy()
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    lon[ok], lat[ok] = geoms[ok].x.to_numpy(), geoms[ok].y.to_numpy()
    return lon, lat


def _items(frame: pd.DataFrame, rank: object = None, **columns: object) -> pd.DataFrame:
    out = pd.DataFrame({c: columns.get(c) for c in COLUMNS}, index=range(len(frame)))
    out["kind_zh"] = out["kind"].map(KIND_ZH)
    out["_rank"] = pd.to_numeric(pd.Series(rank, index=out.index, dtype="object"),
                                 errors="coerce")
    return out


@cache
def default_campaigns(rules: Path | None = None) -> tuple[Campaign, ...]:
    """The campaign calendar of the rule file ``rules`` (the service's ``RISKMAP_RULES``,
    the one its builds use; default ``data/rules.toml``), read once per process."""
    return load_rules(rules).campaigns


def worklist(store: Store, caller: Principal, today: date, kept: Worklists,
             extra: tuple[Condition, ...] = (),
             campaigns: tuple[Campaign, ...] | None = None) -> pd.DataFrame:
    """Every item in the caller's scope (and ``extra`` conditions, e.g. one cell).

    Kept in ``kept`` under everything the list depends on: the data version (live hazards,
    checks, officer cells), the layer build, the caller's role and scope, ``extra`` and the
    day. The versions are read before the list is made, so a kept list is never older than
    its key. ``campaigns`` default to the default rule file's.

    What does not depend on the day is kept in ``kept`` too: the layers' rows in scope by
    build (a layer changes only with a build), what the live tables say of them by data
    version, so a list for another day costs a filter and a sort, and one after a check or
    a hazard's move two lookups, not six queries."""
    campaigns = default_campaigns() if campaigns is None else campaigns
    build = store.layer_build()
    version = store.data_version()
    build_id = build.build_id if build else None
    key = (version, build_id, caller.role, caller.scope, extra, today, campaigns)
    return kept.get(key, lambda: _worklist(store, caller, today, extra, campaigns,
                                           _Parts(kept, version, build_id, caller, extra)))


class _Parts:
    """A caller's day-independent parts of a list, each kept in the worklists' cache
    under the build (``by_build``) or the data version and the build (``by_version``),
    and the caller's scope (officer cells included) and ``extra``."""

    def __init__(self, kept: Worklists, version: str, build_id: str | None,
                 caller: Principal, extra: tuple[Condition, ...]) -> None:
        self.kept, self.version, self.build_id = kept, version, build_id
        self.where = (caller.role, caller.scope, caller.cells, extra)

    def by_build(self, name: str, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        return self.kept.get(("worklist " + name, self.build_id, self.where), make)

    def by_version(self, name: str, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        return self.kept.get(("worklist " + name, self.version, self.build_id, self.where),
                             make)


def _worklist(store: Store, caller: Principal, today: date, extra: tuple[Condition, ...],
              campaigns: tuple[Campaign, ...], kept: _Parts) -> pd.DataFrame:
    # The scope's reads do not depend on one another: they go to the store side by side
    # (a city's units, schedule and overdue equipment at 5M: 1.5 s one after another, the
    # units alone 0.6 s), each part kept as before; the units are read whatever the day
    # (a check falls due, a campaign or a draw names them), once a build.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="worklist") as reads:
        units_read = reads.submit(kept.by_build, "units",
                                  lambda: _scoped(store, caller, "units", extra))
        schedule_read = reads.submit(
            kept.by_version, "check schedule", lambda: _schedule_due(store, kept.by_build(
                "check schedule", lambda: _scoped(store, caller, "check-schedule", extra))))
        overdue_read = reads.submit(kept.by_build, "overdue",
                                    lambda: _overdue_items(store, caller, extra))
        units = units_read.result
        checks_read = reads.submit(lambda: _on_day(
            schedule_read.result(), _due_soon(today),
            lambda rows: _check_items(rows, units), kept, "check items"))
        hazards = kept.by_version("open hazards", lambda: _open_hazards(store, kept.by_build(
            "hazards", lambda: _scoped(store, caller, "hazards", extra))))
        parts = [_on_day(hazards, _listed_or_late(today), _hazard_items, kept, "hazard items"),
                 overdue_read.result(), checks_read.result(),
                 _campaign_items(today, units, campaigns),
                 kept.by_version("draws", lambda: _draw_items(store, caller, extra, units))]
    items = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=COLUMNS)
    items["due"] = pd.to_datetime(items["due"])
    if "_rank" not in items:
        items["_rank"] = np.nan
    # within a kind: the schedule's priority (checks due: riskiest first), then the due date
    return items.sort_values(["priority", "_rank", "due", "unit_credit_code"], kind="stable",
                             na_position="last").reset_index(drop=True)[list(COLUMNS)]


def _open_hazards(store: Store, hz: pd.DataFrame) -> pd.DataFrame:
    """The scope's hazards still open now (moved on or closed since the build: looked up
    by id), with their status now as ``_status``."""
    if hz.empty:
        return hz
    live = store.lookup("hazards", "hazard_id", _codes(hz["hazard_id"]), ["hazard_id", "status"])
    now = live.set_index("hazard_id").reindex(hz["hazard_id"])
    still_open = now["status"].isin(["已登记", "整改中"]).to_numpy()
    return hz.loc[still_open].reset_index(drop=True).assign(
        _status=now["status"].to_numpy()[still_open])


def _on_day(rows: pd.DataFrame, on_day: Callable[[pd.DataFrame], np.ndarray],
            items: Callable[[pd.DataFrame], pd.DataFrame], kept: _Parts, name: str
            ) -> pd.DataFrame:
    """The items of the ``rows`` that ``on_day`` picks for the day (a mask of the rows).

    A scope of at most :data:`KEPT_ITEM_ROWS` rows has the item of every row made once per
    data version and kept (row for row: the mask picks them), so that another day is a
    filter; a larger one has only the day's rows made into items, every time, as the
    worklists' cache would not keep them."""
    if rows.empty:
        return rows
    if len(rows) > KEPT_ITEM_ROWS:
        return items(rows.loc[on_day(rows)].reset_index(drop=True))
    every = kept.by_version(name, lambda: items(rows.reset_index(drop=True)))
    return every.loc[on_day(rows)].reset_index(drop=True)


def _listed_or_late(today: date) -> Callable[[pd.DataFrame], np.ndarray]:
    """Open hazards in the day's list: under listed supervision, or past their deadline."""

    def pick(hz: pd.DataFrame) -> np.ndarray:
        late = (pd.to_datetime(hz["deadline"]) < pd.Timestamp(today)).fillna(False)
        return hz["listed"].fillna(False).to_numpy(dtype=bool) | late.to_numpy(dtype=bool)

    return pick


def _hazard_items(hz: pd.DataFrame) -> pd.DataFrame:
    """Open hazards as items: under listed supervision first, the others as late."""
    listed = hz["listed"].fillna(False).to_numpy(dtype=bool)
    status = hz["_status"].to_numpy()
    lon, lat = _xy(hz)
    reason = np.where(listed, "重大隐患挂牌督办：", "隐患逾期未整改：") + hz["description"].fillna(
        "").astype(str).to_numpy() + "（" + status.astype(str) + "）"
    return _items(hz, priority=np.where(listed, 1, 2), kind=np.where(
        listed, "listed_hazard", "late_hazard"), due=hz["deadline"], reason=reason,
        unit_credit_code=hz["unit_credit_code"], unit_name=hz["unit_name"],
        registration_code=hz["registration_code"], hazard_id=hz["hazard_id"],
        level=hz["level"], h3=hz["h3"], county_adcode=hz["county_adcode"], lon=lon, lat=lat)


@cache
def _category_name(code: str) -> str:
    """The catalogue's name of a category code (itself if unknown): a handful of codes,
    each resolved once per process (resolving one costs milliseconds)."""
    return category_name(code, code)


def _overdue_items(store: Store, caller: Principal, extra: tuple[Condition, ...]
                   ) -> pd.DataFrame:
    od = _scoped(store, caller, "overdue", extra)
    if od.empty:
        return od
    lon, lat = _xy(od)
    category = od["category"].fillna("").astype(str)
    names = category.map({c: _category_name(c) for c in category.unique()})  # ~10 codes
    reason = ("逾期未检 " + od["days_overdue"].astype("string").fillna("?") + " 天，督促报检（"
              + names + "）")
    return _items(od, priority=3, kind="overdue_inspection", due=od["next_inspection_due"],
                  reason=reason, unit_credit_code=od["unit_credit_code"],
                  unit_name=od["unit_name"], registration_code=od["registration_code"],
                  level=od["level"], h3=od["h3"], county_adcode=od["county_adcode"],
                  lon=lon, lat=lat)


def _last_checks(store: Store, credit_codes: pd.Series) -> pd.DatetimeIndex:
    """Each unit's latest supervision check (NaT if none), including checks recorded
    through the service since the build; looked up for these units only."""
    checks = store.lookup("checks", "credit_code", _codes(credit_codes),
                          ["credit_code", "checked_on"])
    last = checks.groupby("credit_code")["checked_on"].max()
    return pd.DatetimeIndex(pd.to_datetime(last.reindex(credit_codes).to_numpy()))


def _schedule_due(store: Store, schedule: pd.DataFrame) -> pd.DataFrame:
    """The schedule with each unit's next check as ``_due``: the build's, or for a unit
    checked since (through the service) its interval after that check."""
    if schedule.empty:
        return schedule
    since = _last_checks(store, schedule["credit_code"])
    months = schedule["interval_months"].astype("Int64").fillna(12).to_numpy(dtype=int)
    due = pd.to_datetime(schedule["next_due"]).to_numpy(copy=True)  # moved ones change
    before = pd.DatetimeIndex(pd.to_datetime(schedule["last_check_on"]))
    moved = np.asarray(since.notna() & (before.isna() | (since > before)), dtype=bool)
    if moved.any():
        due[moved] = (pd.DatetimeIndex(since[moved]) + pd.to_timedelta(
            months[moved] * 30.4375, unit="D")).normalize().to_numpy()
    return schedule.assign(_due=due)


def _due_soon(today: date) -> Callable[[pd.DataFrame], np.ndarray]:
    """Units of the schedule whose next check (``_due``) falls within DUE_SOON_DAYS."""
    return lambda schedule: (schedule["_due"].to_numpy()
                             <= np.datetime64(today + timedelta(days=DUE_SOON_DAYS)))


def _check_items(rows: pd.DataFrame, units: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Units of the schedule as check items, due on their next check, where the unit is."""
    located = units() if len(rows) else pd.DataFrame()
    where = located.set_index("credit_code") if len(located) else None
    lon = lat = np.full(len(rows), np.nan)
    if where is not None:
        located = where.reindex(rows["credit_code"])
        pts = located.geometry if "geometry" in located else None
        if pts is not None:
            ok = pts.notna().to_numpy()
            lon, lat = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
            lon[ok], lat[ok] = pts[ok].x.to_numpy(), pts[ok].y.to_numpy()
    reason = ("每 " + rows["interval_months"].astype("string") + " 个月检查一次："
              + rows["reasons"].fillna("按风险等级").astype(str))
    rank = (rows["priority"].to_numpy(dtype=object) if "priority" in rows
            else None)  # a build before the schedule had priorities: by due date
    return _items(rows, rank=rank, priority=4, kind="check_due", due=rows["_due"].to_numpy(),
                  reason=reason, unit_credit_code=rows["credit_code"], unit_name=rows["name"],
                  level=rows["level"], h3=rows["h3"], county_adcode=rows["county_adcode"],
                  lon=lon, lat=lat)


def _campaign_items(today: date, scoped_units: Callable[[], pd.DataFrame],
                    campaigns: tuple[Campaign, ...]) -> pd.DataFrame:
    """One item per unit and campaign of this month in force at the unit's province."""
    month = campaigns_on(campaigns, today)
    if not month:
        return pd.DataFrame()
    all_units = scoped_units()
    if all_units.empty:
        return all_units
    province = province_of(all_units)
    month_end = (pd.Timestamp(today) + pd.offsets.MonthEnd(0)).normalize()
    parts = []
    for campaign in month:
        keep = campaign.mask(province, today) & isin(all_units["level"], campaign.levels)
        units = all_units.loc[keep].reset_index(drop=True)
        if units.empty:
            continue
        lon, lat = _xy(units)
        parts.append(_items(
            units, priority=5, kind="campaign", due=month_end,
            reason=f"{today.month}月为{campaign.text}（{campaign.basis}）：督促高风险单位落实",
            unit_credit_code=units["credit_code"], unit_name=units["name"],
            level=units["level"], h3=units["h3"], county_adcode=units["county_adcode"],
            lon=lon, lat=lat))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def province_of(units: pd.DataFrame) -> pd.Series:
    """Each unit's province: its ``province_adcode``, else its county's first two digits."""
    county = units["county_adcode"].astype("string") if "county_adcode" in units else None
    from_county = (county.str.slice(0, 2) + "0000") if county is not None else pd.Series(
        pd.NA, index=units.index, dtype="string")
    if "province_adcode" not in units:
        return from_county
    return units["province_adcode"].astype("string").fillna(from_county)


def _draw_items(store: Store, caller: Principal, extra: tuple[Condition, ...],
                scoped_units: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    draws = store.read("draws", ["draw_id", "created_at", "result"])
    if draws.empty:
        return pd.DataFrame()
    drawn = pd.concat([pd.DataFrame(orjson.loads(result)).assign(draw_id=draw_id, drawn_on=at)
                       for draw_id, at, result in draws.itertuples(index=False) if result],
                      ignore_index=True)  # a few draws of at most 5,000 units each
    if drawn.empty:
        return pd.DataFrame()
    units = scoped_units()
    codes = units["credit_code"] if len(units) else pd.Series([], dtype="string")
    mine = isin(drawn["credit_code"], _codes(codes))
    if caller.role == Role.GRID_OFFICER and not extra:
        mine |= (drawn["inspector"].astype("string") == (caller.scope or "")).fillna(
            False).to_numpy(dtype=bool)
    drawn = drawn.loc[mine].reset_index(drop=True)
    if drawn.empty:
        return drawn
    checked = _last_checks(store, drawn["credit_code"])
    drawn_on = pd.to_datetime(drawn["drawn_on"]).dt.normalize().to_numpy()
    drawn = drawn.loc[~(checked >= drawn_on)].reset_index(drop=True)  # NaT compares False
    if drawn.empty:
        return drawn
    located = units.set_index("credit_code").reindex(drawn["credit_code"]) if len(
        units) else None
    lon, lat = _xy(located.reset_index()) if located is not None else (None, None)
    conflict = drawn["conflict"].fillna(False).astype(bool).to_numpy()
    reason = ("双随机抽查（" + drawn["draw_id"].astype(str) + "，检查人员 "
              + drawn["inspector"].astype("string").fillna("未指派").astype(str)
              + np.where(conflict, "，未能回避本人网格", "") + "）")
    return _items(drawn, priority=4, kind="random_check", due=None, reason=reason,
                  unit_credit_code=drawn["credit_code"], unit_name=drawn["name"],
                  level=drawn["level"],
                  h3=None if located is None else located["h3"].to_numpy(),
                  county_adcode=drawn["county_adcode"], lon=lon, lat=lat)
