"""A caller's worklist: what needs doing in their scope, most urgent first.

Items come from the built layers, corrected by what has happened since the build (hazards
closed or moved on, supervision checks recorded through the service):

1. open 重大 hazards under listed supervision (挂牌督办, seed 002 二(二));
2. hazards past their rectification deadline (闭环管理, seed 002 二(一));
3. equipment overdue for periodic inspection (逾期未检, seed 002 二(三));
4. supervision checks due within 30 days by the unit's frequency (加大监督检查频次, 二(二));
5. this month's campaign task for the red and orange units (seed 000 二(一) calendar).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from layers.registry import ALL
from service.auth import Forbidden, Principal
from service.scope import layer_scope
from service.store.base import Store
from service.store.query import Condition, LayerQuery

DUE_SOON_DAYS = 30
# seed 000 二(一): the monthly campaign calendar, by month
CAMPAIGNS = {
    2: "春节后企业复工复产隐患自我排查月", 3: "春节后企业复工复产隐患自我排查月",
    4: "企业法规政策、技术规范、主体责任、设备风险自查整改月",
    5: "企业法规政策、技术规范、主体责任、设备风险自查整改月",
    6: "企业自我风险研判月", 7: "企业自我风险研判月", 8: "企业应急演练月", 9: "企业应急演练月",
}
COLUMNS = ("priority", "kind", "kind_zh", "due", "reason", "unit_credit_code", "unit_name",
           "registration_code", "hazard_id", "level", "h3", "county_adcode", "lon", "lat")
KIND_ZH = {"listed_hazard": "挂牌督办重大隐患", "late_hazard": "逾期未整改隐患",
           "overdue_inspection": "逾期未检", "check_due": "监督检查到期",
           "campaign": "本月专项任务"}


def _scoped(store: Store, caller: Principal, layer: str,
            extra: tuple[Condition, ...] = ()) -> pd.DataFrame:
    try:
        scope = layer_scope(caller, ALL[layer], store)
    except Forbidden:
        return pd.DataFrame()
    frame, _ = store.query_layer(LayerQuery(layer, (*scope, *extra), None, None, 0))
    return frame


def _xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "geometry" not in frame or frame.empty:
        return np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    geoms = frame.geometry
    ok = geoms.notna().to_numpy()
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    lon[ok], lat[ok] = geoms[ok].x.to_numpy(), geoms[ok].y.to_numpy()
    return lon, lat


def _items(frame: pd.DataFrame, **columns: object) -> pd.DataFrame:
    out = pd.DataFrame({c: columns.get(c) for c in COLUMNS}, index=range(len(frame)))
    out["kind_zh"] = out["kind"].map(KIND_ZH)
    return out


def worklist(store: Store, caller: Principal, today: date,
             extra: tuple[Condition, ...] = ()) -> pd.DataFrame:
    """Every item in the caller's scope (and ``extra`` conditions, e.g. one cell)."""
    parts = [_hazard_items(store, caller, today, extra),
             _overdue_items(store, caller, extra), _check_items(store, caller, today, extra),
             _campaign_items(store, caller, today, extra)]
    items = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=COLUMNS)
    items["due"] = pd.to_datetime(items["due"])
    return items.sort_values(["priority", "due", "unit_credit_code"], kind="stable",
                             na_position="last").reset_index(drop=True)[list(COLUMNS)]


def _hazard_items(store: Store, caller: Principal, today: date,
                  extra: tuple[Condition, ...]) -> pd.DataFrame:
    hz = _scoped(store, caller, "hazards", extra)
    if hz.empty:
        return hz
    live = store.read("hazards", ["hazard_id", "status", "deadline"])  # since the build
    now = live.set_index("hazard_id").reindex(hz["hazard_id"])
    still_open = now["status"].isin(["已登记", "整改中"]).to_numpy()
    hz = hz.loc[still_open].reset_index(drop=True)
    status = now["status"].to_numpy()[still_open]
    late = (pd.to_datetime(hz["deadline"]) < pd.Timestamp(today)).fillna(False).to_numpy()
    listed = hz["listed"].fillna(False).to_numpy(dtype=bool)
    keep = listed | late
    hz, status, late, listed = hz.loc[keep].reset_index(drop=True), status[keep], late[
        keep], listed[keep]
    lon, lat = _xy(hz)
    reason = np.where(listed, "重大隐患挂牌督办：", "隐患逾期未整改：") + hz["description"].fillna(
        "").astype(str).to_numpy() + "（" + status.astype(str) + "）"
    return _items(hz, priority=np.where(listed, 1, 2), kind=np.where(
        listed, "listed_hazard", "late_hazard"), due=hz["deadline"], reason=reason,
        unit_credit_code=hz["unit_credit_code"], unit_name=hz["unit_name"],
        registration_code=hz["registration_code"], hazard_id=hz["hazard_id"],
        level=hz["level"], h3=hz["h3"], county_adcode=hz["county_adcode"], lon=lon, lat=lat)


def _overdue_items(store: Store, caller: Principal, extra: tuple[Condition, ...]
                   ) -> pd.DataFrame:
    od = _scoped(store, caller, "overdue", extra)
    if od.empty:
        return od
    lon, lat = _xy(od)
    reason = ("逾期未检 " + od["days_overdue"].astype("string").fillna("?") + " 天，督促报检（"
              + od["category"].fillna("").astype(str) + "）")
    return _items(od, priority=3, kind="overdue_inspection", due=od["next_inspection_due"],
                  reason=reason, unit_credit_code=od["unit_credit_code"],
                  unit_name=od["unit_name"], registration_code=od["registration_code"],
                  level=od["level"], h3=od["h3"], county_adcode=od["county_adcode"],
                  lon=lon, lat=lat)


def _check_items(store: Store, caller: Principal, today: date,
                 extra: tuple[Condition, ...]) -> pd.DataFrame:
    schedule = _scoped(store, caller, "check-schedule", extra)
    if schedule.empty:
        return schedule
    checks = store.read("checks", ["credit_code", "checked_on"])  # including new ones
    last = checks.groupby("credit_code")["checked_on"].max()
    since = pd.to_datetime(last.reindex(schedule["credit_code"]).to_numpy())
    months = schedule["interval_months"].astype("Int64").fillna(12).to_numpy(dtype=int)
    due = pd.to_datetime(schedule["next_due"]).to_numpy()
    before = pd.DatetimeIndex(pd.to_datetime(schedule["last_check_on"]))
    moved = np.asarray(since.notna() & (before.isna() | (since > before)), dtype=bool)
    if moved.any():
        due[moved] = (pd.DatetimeIndex(since[moved]) + pd.to_timedelta(
            months[moved] * 30.4375, unit="D")).normalize().to_numpy()
    soon = due <= np.datetime64(today + timedelta(days=DUE_SOON_DAYS))
    rows = schedule.loc[soon].reset_index(drop=True)
    units = _scoped(store, caller, "units", extra)
    where = units.set_index("credit_code") if len(units) else None
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
    return _items(rows, priority=4, kind="check_due", due=due[soon], reason=reason,
                  unit_credit_code=rows["credit_code"], unit_name=rows["name"],
                  level=rows["level"], h3=rows["h3"], county_adcode=rows["county_adcode"],
                  lon=lon, lat=lat)


def _campaign_items(store: Store, caller: Principal, today: date,
                    extra: tuple[Condition, ...]) -> pd.DataFrame:
    campaign = CAMPAIGNS.get(today.month)
    if campaign is None:
        return pd.DataFrame()
    units = _scoped(store, caller, "units", (*extra, Condition("level", "in",
                                                                ("red", "orange"))))
    if units.empty:
        return units
    lon, lat = _xy(units)
    month_end = (pd.Timestamp(today) + pd.offsets.MonthEnd(0)).normalize()
    return _items(units, priority=5, kind="campaign", due=month_end,
                  reason=f"{today.month}月为{campaign}：督促高风险单位落实",
                  unit_credit_code=units["credit_code"], unit_name=units["name"],
                  level=units["level"], h3=units["h3"], county_adcode=units["county_adcode"],
                  lon=lon, lat=lat)
