"""Point layers for supervision: open hazards, overdue inspections, the blacklist and its
candidates, and crowded venues with the risk inside them.

Each is a plain list a regulator acts on, located where the equipment (or unit) stands.
Rows without a location stay in the frame with a null geometry, so counts never lose them.
"""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field

from data.catalogue import category_name
from layers.columns import column, flags, in_use, text, top_categories
from layers.frames import (
    ELEVATORS,
    LEVEL_BY_RANK,
    LEVEL_RANK,
    LEVELS,
    MAJOR_HAZARD,
    OPEN_HAZARD_STATUS,
    top_category,
)

ADCODES: tuple[str, ...] = ("province_adcode", "city_adcode", "county_adcode")


class BlacklistRules(BaseModel):
    """黑名单候选的判定条件（豫市监办〔2021〕55号 二（二），
    陕西省《全省特种设备安全专项整治三年行动实施方案》四（三））."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_accidents: int = Field(
        default=1, ge=1,
        description="近三年发生特种设备事故不少于此起数即列为候选（“发生特种设备事故”）")
    major_overdue_days: int = Field(
        default=30, ge=0,
        description="重大隐患超过整改期限多少天仍未销号视为“重大隐患整改不力”（严格大于）")


# --------------------------------------------------------------------------- helpers

def _points(frame: pd.DataFrame) -> np.ndarray:
    """Point geometry of each row (the frame's own, else lon/lat); None where unlocated."""
    n = len(frame)
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        geo = frame.geometry
        if geo.crs is not None and geo.crs.to_epsg() != 4326:
            geo = geo.to_crs(4326)
        values = np.asarray(geo.values, dtype=object).copy()
    elif "geometry" in frame:
        values = np.asarray(gpd.GeoSeries(frame["geometry"]).values, dtype=object).copy()
    elif "lon" in frame and "lat" in frame:
        lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype="float64",
                                                                      na_value=np.nan)
        lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype="float64",
                                                                      na_value=np.nan)
        values = np.asarray(shapely.points(lon, lat), dtype=object)
    else:
        return np.full(n, None, dtype=object)
    if n:
        missing = shapely.is_missing(values)
        bad = missing.copy()
        bad[~missing] = np.isnan(shapely.bounds(values[~missing])[:, 0])  # empty or NaN
        values[bad] = None
    return values


def _gdf(columns: dict[str, object], geometry: np.ndarray) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(columns), geometry=gpd.GeoSeries(
        geometry, crs=4326).reset_index(drop=True), crs=4326)


def _days(later: pd.Timestamp | pd.Series, earlier: pd.Series | pd.Timestamp) -> pd.Series:
    return pd.Series(pd.array((later - earlier).dt.days, dtype="Int64"))


def _dates(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(pd.NaT, index=range(len(frame)), dtype="datetime64[s]")
    return pd.to_datetime(frame[name].reset_index(drop=True)).astype("datetime64[s]")


# --------------------------------------------------------------------------- open hazards

OPEN_HAZARD_COLUMNS: tuple[str, ...] = (
    "hazard_id", "registration_code", "unit_credit_code", "unit_name", "category_code",
    "top_category", "level", "description", "status", "found_on", "deadline", "listed",
    "past_deadline", "days_open", "days_past_deadline", "equipment_level", *ADCODES, "h3",
    "park_id", "venue_id", "geometry")


def open_hazards(hazards: pd.DataFrame, equipment: pd.DataFrame, units: pd.DataFrame,
                 as_of: date) -> gpd.GeoDataFrame:
    """Open hazards (已登记/整改中) located at their equipment.

    ``listed`` marks a 重大 hazard, under 挂牌督办 (Henan plan 二（二） "推动建立…重大隐患挂牌督办
    制度"); ``past_deadline`` is deadline < as_of (NA without a deadline). Hazards whose
    equipment is unknown or unlocated keep a null geometry. ``level`` is the hazard's level
    (一般/重大); ``equipment_level`` the equipment's risk colour.
    """
    today = pd.Timestamp(as_of)
    h = hazards[hazards["status"].isin(OPEN_HAZARD_STATUS).fillna(False).to_numpy(
        dtype=bool)].reset_index(drop=True)
    codes = h["registration_code"].astype("string")
    key = equipment["registration_code"].astype("string")
    eq = equipment[key.isin(codes.dropna()).to_numpy(dtype=bool)]  # only the pieces named
    eq = eq[~eq["registration_code"].astype("string").duplicated().to_numpy()]
    pos = pd.Index(eq["registration_code"].astype("string")).get_indexer(codes)
    found = pos >= 0
    take = np.where(found, pos, 0)

    def from_eq(name: str) -> pd.Series:
        if name not in eq or not len(eq):
            return pd.Series(pd.array([pd.NA] * len(h), dtype="string"))
        values = eq[name].astype("string").to_numpy(dtype=object, na_value=None)[take]
        return pd.Series(pd.array(np.where(found, values, None), dtype="string"))

    unit_code = from_eq("unit_credit_code")
    unit_name = from_eq("unit_name")
    if "credit_code" in units and len(units):
        names = units.drop_duplicates("credit_code").set_index(
            units.drop_duplicates("credit_code")["credit_code"].astype("string"))["name"]
        unit_name = unit_name.fillna(names.astype("string").reindex(unit_code).reset_index(
            drop=True))
    category = from_eq("category_code")
    top = from_eq("top_category").fillna(top_category(category))
    found_on, deadline = _dates(h, "found_on"), _dates(h, "deadline")
    past = pd.Series(pd.array(deadline < today, dtype="boolean"))
    past[deadline.isna()] = pd.NA
    late_days = _days(today, deadline)
    geometry = np.full(len(h), None, dtype=object)
    if len(eq):
        geometry[found] = _points(eq.iloc[pos[found]])

    cols = {
        "hazard_id": text(h, "hazard_id"), "registration_code": text(h, "registration_code"),
        "unit_credit_code": unit_code, "unit_name": unit_name, "category_code": category,
        "top_category": top, "level": text(h, "level"), "description": text(h, "description"),
        "status": text(h, "status"), "found_on": found_on, "deadline": deadline,
        "listed": pd.Series(pd.array((text(h, "level") == MAJOR_HAZARD).fillna(False),
                                     dtype="boolean")),
        "past_deadline": past, "days_open": _days(today, found_on),
        "days_past_deadline": late_days.clip(lower=0),
        "equipment_level": from_eq("level"),
        **{c: from_eq(c) for c in (*ADCODES, "h3", "park_id", "venue_id")},
    }
    out = _gdf(cols, geometry)
    order = np.lexsort((out["hazard_id"].to_numpy(dtype=object, na_value=""),
                        -out["days_past_deadline"].fillna(-1).to_numpy(dtype=np.int64),
                        ~out["listed"].to_numpy(dtype=bool)))
    return out.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- overdue

OVERDUE_COLUMNS: tuple[str, ...] = (
    "registration_code", "category_code", "category", "top_category", "unit_credit_code",
    "unit_name", "next_inspection_due", "days_overdue", "level", *ADCODES, "h3", "park_id",
    "venue_id", "geometry")


def overdue_inspections(equipment: pd.DataFrame, as_of: date) -> gpd.GeoDataFrame:
    """In-use equipment past its next inspection date (逾期未检).

    Henan plan 二（三）: "发现设备逾期未检或存在其它严重隐患时，及时报告所在地市场监管部门".
    Sorted by days overdue, longest first.
    """
    today = pd.Timestamp(as_of)
    due = pd.to_datetime(equipment["next_inspection_due"])
    keep = in_use(equipment) & (due < today).fillna(False).to_numpy(dtype=bool)
    eq = equipment[keep]
    due_kept = _dates(eq, "next_inspection_due")
    cols = {
        "registration_code": text(eq, "registration_code"),
        "category_code": text(eq, "category_code"), "category": text(eq, "category"),
        "top_category": top_categories(eq), "unit_credit_code": text(eq, "unit_credit_code"),
        "unit_name": text(eq, "unit_name"), "next_inspection_due": due_kept,
        "days_overdue": _days(today, due_kept), "level": text(eq, "level"),
        **{c: text(eq, c) for c in (*ADCODES, "h3", "park_id", "venue_id")},
    }
    out = _gdf(cols, _points(eq))
    order = np.lexsort((out["registration_code"].to_numpy(dtype=object, na_value=""),
                        -out["days_overdue"].to_numpy(dtype=np.int64)))
    return out.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- blacklist

BLACKLIST_COLUMNS: tuple[str, ...] = (
    "credit_code", "name", "industry", "level", "accidents_3y", "open_major_hazards",
    "equipment_count", *ADCODES, "h3", "geometry")


def _unit_columns(u: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "credit_code": text(u, "credit_code"), "name": text(u, "name"),
        "industry": text(u, "industry"), "level": text(u, "level"),
        "accidents_3y": column(u, "accidents_3y", "Int64"),
        "open_major_hazards": column(u, "open_major_hazards", "Int64"),
        "equipment_count": column(u, "equipment_count", "Int64"),
        **{c: text(u, c) for c in (*ADCODES, "h3")},
    }


def blacklist(units: pd.DataFrame) -> gpd.GeoDataFrame:
    """Units on the blacklist (黑名单).

    Henan plan 二（二）: "对发生特种设备事故、存在重大隐患整改不力的使用单位，列入黑名单并及时
    进行通报";
    Shaanxi plan 四（三）: "对失信企业要纳入“黑名单”，实施联合惩戒".
    """
    flag = flags(units, "blacklisted")
    u = units[flag]
    return _gdf(_unit_columns(u), _points(u))


CANDIDATE_COLUMNS: tuple[str, ...] = (
    *BLACKLIST_COLUMNS[:-1], "late_major_hazards", "max_days_past_deadline", "criteria",
    "reason", "geometry")


def late_major_hazards(hazards: pd.DataFrame, equipment: pd.DataFrame | None, as_of: date,
                       rules: BlacklistRules) -> pd.DataFrame:
    """Per unit (indexed by credit code, sorted): its open 重大 hazards more than
    ``major_overdue_days`` past their deadline, the most days past and the hazard past
    most (ties: the smallest hazard id). A unit's rows come only from its own pieces'
    hazards, so the frames of parts keeping each unit's pieces together concatenate into
    the whole's (the Dask build's partitions)."""
    h = hazards
    if "unit_credit_code" in h:
        unit = h["unit_credit_code"].astype("string")
    elif equipment is not None:
        pairs = equipment[["registration_code", "unit_credit_code"]].drop_duplicates(
            "registration_code")  # two columns of a wide frame, not a copy of every one
        owner = pairs.set_index(pairs["registration_code"].astype("string"))[
            "unit_credit_code"].astype("string")
        unit = pd.Series(owner.reindex(h["registration_code"].astype("string")).to_numpy(),
                         index=h.index, dtype="string")
    else:
        raise ValueError("hazards 须含 unit_credit_code 列，或传入 equipment 以关联使用单位")
    late = (pd.Timestamp(as_of) - pd.to_datetime(h["deadline"])).dt.days
    hit = (h["status"].isin(OPEN_HAZARD_STATUS) & (h["level"] == MAJOR_HAZARD)
           & (late > rules.major_overdue_days)).fillna(False).to_numpy(dtype=bool)
    frame = pd.DataFrame({"credit_code": unit[hit].to_numpy(), "days": late[hit].to_numpy(),
                          "hazard_id": text(h, "hazard_id")[hit].to_numpy()})
    frame = frame.dropna(subset=["credit_code"])
    frame = frame.sort_values(["credit_code", "days", "hazard_id"],
                              ascending=[True, False, True], kind="stable")
    g = frame.groupby("credit_code", sort=False)
    return pd.DataFrame({"late_major_hazards": g.size(), "max_days": g["days"].max(),
                         "worst": g["hazard_id"].first()})


def blacklist_candidates(units: pd.DataFrame, hazards: pd.DataFrame, as_of: date,
                         rules: BlacklistRules | None = None,
                         equipment: pd.DataFrame | None = None, *,
                         late: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """Units meeting the blacklist criteria but not yet blacklisted — a finding, not a listing.

    Henan plan 二（二）: "对发生特种设备事故、存在重大隐患整改不力的使用单位，列入黑名单": an
    accident in the last three years (``accidents_3y`` ≥ ``min_accidents``), or a 重大 hazard still
    open more than ``major_overdue_days`` after its deadline. ``hazards`` needs
    ``unit_credit_code`` (the :func:`open_hazards` frame has it) or pass ``equipment``;
    or pass ``late``, their :func:`late_major_hazards`.
    """
    rules = rules or BlacklistRules()
    u = units.reset_index(drop=True)
    if late is None:
        late = late_major_hazards(hazards, equipment, as_of, rules)
    late = late.reindex(u["credit_code"].astype("string")).reset_index(drop=True)
    accidents = column(u, "accidents_3y", "Int64")
    by_accident = (accidents >= rules.min_accidents).fillna(False).to_numpy(dtype=bool)
    by_hazard = late["late_major_hazards"].notna().to_numpy()
    listed = flags(u, "blacklisted")
    keep = (by_accident | by_hazard) & ~listed

    acc_text = np.where(by_accident, "近三年发生特种设备事故" + accidents.astype("string").fillna(
        "").to_numpy(dtype=object) + "起", "")
    n_late = late["late_major_hazards"].astype("Int64")
    haz_text = np.where(
        by_hazard, "重大隐患整改不力：" + n_late.astype("string").fillna("").to_numpy(dtype=object)
        + "处重大隐患超过整改期限" + str(rules.major_overdue_days) + "天以上未销号（最长"
        + late["max_days"].astype("Int64").astype("string").fillna("").to_numpy(dtype=object)
        + "天，" + late["worst"].astype("string").fillna("").to_numpy(dtype=object) + "）", "")
    reason = pd.Series(acc_text + np.where(by_accident & by_hazard, "；", "") + haz_text)
    criteria = np.where(by_accident & by_hazard, '["accident","major_hazard_late"]',
                        np.where(by_accident, '["accident"]', '["major_hazard_late"]'))

    cols = _unit_columns(u)
    cols["late_major_hazards"] = n_late.fillna(0)
    cols["max_days_past_deadline"] = late["max_days"].astype("Int64")
    cols["criteria"] = pd.Series(criteria, dtype="string")
    cols["reason"] = (reason + "，建议核实后列入黑名单并通报").astype("string")
    out = _gdf(cols, _points(u))[keep].reset_index(drop=True)
    return out[list(CANDIDATE_COLUMNS)]


# --------------------------------------------------------------------------- venues

VENUE_COLUMNS: tuple[str, ...] = (
    "venue_id", "name", "kind", "daily_visitors", "equipment", *(f"n_{lv}" for lv in LEVELS),
    "max_level", "max_level_rank", "open_hazards", "open_major_hazards", "overdue",
    "elevators", "elevators_insured", "categories", "geometry")


def _venue_categories(counts: pd.DataFrame) -> pd.Series:
    """JSON list of {code, name, count} per venue, largest first (a pass over venues), from
    the :func:`venue_counts`."""
    pairs = counts[["venue_id", "code", "equipment"]].rename(columns={"equipment": "count"})
    pairs = pairs.sort_values(["venue_id", "count", "code"], ascending=[True, False, True])
    names = {c: (category_name(c) if c else "未知类别") for c in pairs["code"].unique()}
    out = {}
    for vid, grp in pairs.groupby("venue_id", sort=False):
        out[vid] = json.dumps([{"code": c or None, "name": names[c], "count": int(k)}
                               for c, k in zip(grp["code"], grp["count"], strict=True)],
                              ensure_ascii=False)
    return pd.Series(out, dtype="string")


def venues_risk(venues: pd.DataFrame, equipment: pd.DataFrame) -> gpd.GeoDataFrame:
    """Each crowded venue (人员密集场所) with the in-use equipment and risk inside it.

    Henan plan 二（二）: "加强人员密集场所特种设备和重点特种设备的双重预防". Counts are of in-use
    pieces linked to the venue (``venue_id``); venues without any get zeros.
    """
    return venues_risk_from(venues, venue_counts(equipment))


#: What :func:`venue_counts` sums per venue and category (``max_level_rank``: the largest).
VENUE_SUMS: tuple[str, ...] = (
    "equipment", *(f"n_{lv}" for lv in LEVEL_RANK), "max_level_rank", "open_hazards",
    "open_major_hazards", "overdue", "elevators", "elevators_insured")


def venue_counts(equipment: pd.DataFrame) -> pd.DataFrame:
    """The in-use pieces linked to a venue, counted per (``venue_id``, ``code``: the top
    category, "" when unknown): :data:`VENUE_SUMS`. Counts of parts of the pieces add up
    (:func:`added_venue_counts`) to the whole's."""
    if "venue_id" in equipment:
        eq = equipment[in_use(equipment) & equipment["venue_id"].notna().to_numpy(dtype=bool)]
    else:
        eq = equipment.iloc[0:0]
    rank = column(eq, "level_rank", "Int64").fillna(0).to_numpy(dtype=np.int64)
    top = top_categories(eq)
    elevator = (top == ELEVATORS).fillna(False).to_numpy(dtype=bool)
    stats = pd.DataFrame({
        "venue_id": text(eq, "venue_id").reset_index(drop=True),
        "code": top.fillna("").reset_index(drop=True), "equipment": 1,
        **{f"n_{lv}": (rank == r).astype(np.int64) for lv, r in LEVEL_RANK.items()},
        "max_level_rank": rank,
        "open_hazards": column(eq, "open_hazards", "Int64").fillna(0).to_numpy(np.int64),
        "open_major_hazards": column(eq, "open_major_hazards", "Int64").fillna(0).to_numpy(
            np.int64),
        "overdue": column(eq, "overdue", "boolean").fillna(False).to_numpy(np.int64),
        "elevators": elevator.astype(np.int64),
        "elevators_insured": (elevator & flags(eq, "insured")).astype(np.int64),
    })
    return added_venue_counts([stats])


def added_venue_counts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """:func:`venue_counts` of several parts of the pieces as the whole's."""
    rows = pd.concat(parts, ignore_index=True)
    return rows.groupby(["venue_id", "code"], sort=True, as_index=False).agg(
        {c: ("max" if c == "max_level_rank" else "sum") for c in VENUE_SUMS})


def venues_risk_from(venues: pd.DataFrame, counts: pd.DataFrame) -> gpd.GeoDataFrame:
    """:func:`venues_risk` from the pieces' :func:`venue_counts`."""
    v = venues.reset_index(drop=True)
    key = v["venue_id"].astype("string")
    agg = counts.groupby("venue_id").agg(
        {c: ("max" if c == "max_level_rank" else "sum") for c in VENUE_SUMS}
    ).reindex(key).fillna(0).reset_index(drop=True)

    cols: dict[str, object] = {
        "venue_id": key, "name": text(v, "name"), "kind": text(v, "kind"),
        "daily_visitors": column(v, "daily_visitors", "Int64"),
    }
    for c in ("equipment", *(f"n_{lv}" for lv in LEVELS)):
        cols[c] = agg[c].astype("Int64")
    max_rank = agg["max_level_rank"].astype("int64")
    cols["max_level"] = max_rank.map(LEVEL_BY_RANK).astype("string")
    cols["max_level_rank"] = max_rank.astype("Int64")
    for c in ("open_hazards", "open_major_hazards", "overdue", "elevators", "elevators_insured"):
        cols[c] = agg[c].astype("Int64")
    cats = _venue_categories(counts) if len(counts) else pd.Series([], dtype="string")
    cols["categories"] = cats.reindex(key).fillna("[]").reset_index(drop=True).astype("string")
    geo = gpd.GeoSeries(v.geometry if isinstance(v, gpd.GeoDataFrame) else v["geometry"])
    if geo.crs is None:
        geo = geo.set_crs(4326)
    elif geo.crs.to_epsg() != 4326:
        geo = geo.to_crs(4326)
    return _gdf(cols, np.asarray(geo.values, dtype=object))
