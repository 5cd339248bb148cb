"""Inspection capacity and workload per region; campaign completion per region.

监管力量与监管任务相匹配 (practice): a county bureau's grid officers can carry only so many
on-site supervision checks a year. Henan plan 二（二） asks for more frequent checks where the
risk is (“加大监督检查频次”) and the 《特种设备现场安全监督检查规则》 checks of
使用单位; Henan plan 三（二） asks that they be planned together with the 双随机、一公开
checks (“综合部署、统筹推进”). So the check schedule (:mod:`layers.frequency`) plans the
base intervals first and shortens intervals by boosts only within each county's capacity
(officers × ``checks_per_officer_year``, or the rule file's ``by_county``); the
``workload`` table shows planned checks against capacity per county, city and province, and
the build report names the counties whose plan exceeds it.

Campaign completion: the rule file's ``[[campaigns]]`` (Shaanxi plan 二（一） calendar) name the
units of some levels for some months; a campaign is complete for a unit when a supervision
check was recorded during its months that year. Counted per province, city and county, only
where the campaign is in force (its scope, :mod:`layers.scope`).
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator

from data.plans import cite
from geo.cells import cell_centres, from_strings
from layers.aggregate import PLACE_KEYS
from layers.campaigns import Campaign
from layers.columns import text
from layers.frames import LEVEL_ZH

BASIS = (cite("henan", "二（二）", "加大监督检查频次", short=True) + "；"
         + cite("henan", "三（二）", "综合部署、统筹推进", short=True)
         + "；监管力量与监管任务相匹配")
UNSTAFFED = "无网格员"
_COUNTY = re.compile(r"\d{6}")

WORKLOAD_COLUMNS: tuple[str, ...] = (
    "adcode", "name", "admin_level", "parent_adcode", "province_adcode", "city_adcode",
    "officers", "capacity", "capacity_source", "units", "never_checked", "boosted_units",
    "capped_units", "planned_base", "planned_full", "planned", "utilisation", "over_capacity",
    "counties_over", "note",
)
COMPLETION_COLUMNS: tuple[str, ...] = (
    "adcode", "name", "admin_level", "parent_adcode", "province_adcode", "city_adcode",
    "year", "campaign", "months", "levels", "status", "units_named", "units_checked",
    "completion", "basis",
)


class CapacityRules(BaseModel):
    """检查力量：每个区县一年能完成的现场监督检查次数."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks_per_officer_year: int = Field(
        200, ge=1, le=1000,
        description="每名网格员每年可完成的现场监督检查次数。默认 200：一年约 250 个工作日，"
        "一次现场检查连同路途、检查记录（指令书）和复查约需半天至一天，并须兼顾投诉举报、"
        "事故处置等其他工作，县级监管人员每人每年约 150–250 次现场检查；每天 2 次以上"
        "（500 次/年）不可持续")
    by_county: dict[str, int] = Field(
        {}, description="按区县设定的全年检查力量（次/年），覆盖按网格员人数的计算，"
        "如 {\"410102\" = 1200}")
    unstaffed_caps_boosts: bool = Field(
        False, description="无网格员（且未在 by_county 设定力量）的区县：为假时照常按风险加频，"
        "只在工作量表和构建摘要中列为“无网格员”（多为网格员名册未导入）；为真时按力量 0 处理，"
        "加频均不缩短检查间隔")

    @field_validator("by_county")
    @classmethod
    def _counties(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [k for k in v if not _COUNTY.fullmatch(k) or k.endswith("00")]
        if bad:
            raise ValueError(f"{bad} 不是区县行政区划代码（6 位，末两位不为 00）")
        if neg := [k for k, n in v.items() if n < 0]:
            raise ValueError(f"区县 {neg} 的检查力量不能为负数")
        return v


# --------------------------------------------------------------------------- capacity

def officer_counties(officers: pd.DataFrame, officer_cells: pd.DataFrame,
                     boundaries: pd.DataFrame) -> pd.Series:
    """The county each officer works for, by officer id: the county registered with the
    officer, else the county holding most of their cells' centres (ties: the lowest code).
    Officers placed nowhere are left out."""
    ids = text(officers, "officer_id", strip=True)
    own = text(officers, "county_adcode", strip=True)
    own = own.where(own.str.fullmatch(r"\d{6}").fillna(False).astype(bool))
    placed = pd.Series(own.to_numpy(), index=ids.to_numpy(), dtype="string")
    placed = placed[placed.index.notna()]
    placed = placed[~placed.index.duplicated()]
    rest = placed.index[placed.isna()]
    if len(rest) and len(officer_cells):
        oc = pd.DataFrame({"officer_id": text(officer_cells, "officer_id", strip=True),
                           "h3": text(officer_cells, "h3", strip=True)}).dropna()
        oc = oc[oc["officer_id"].isin(rest)].drop_duplicates()
        cell = from_strings(oc["h3"]) if len(oc) else np.zeros(0, dtype=np.uint64)
        oc, cell = oc[cell != 0], cell[cell != 0]
        counties = _counties(boundaries)
        if len(oc) and len(counties):
            lat, lon = cell_centres(cell)
            where = _locate(lon, lat, counties)
            hit = where >= 0
            votes = pd.DataFrame({"officer_id": oc["officer_id"].to_numpy()[hit],
                                  "county": counties["adcode"].to_numpy()[where[hit]]})
            best = (votes.value_counts().rename("n").reset_index()
                    .sort_values(["officer_id", "n", "county"], ascending=[True, False, True])
                    .drop_duplicates("officer_id").set_index("officer_id")["county"])
            placed = placed.fillna(best.astype("string").reindex(placed.index))
    return placed.dropna()


def _counties(boundaries: pd.DataFrame) -> pd.DataFrame:
    if boundaries is None or not len(boundaries) or "level" not in boundaries:
        return pd.DataFrame({"adcode": pd.Series(dtype=object), "geometry": []})
    return boundaries[boundaries["level"] == "county"].reset_index(drop=True)


def _locate(lon: np.ndarray, lat: np.ndarray, counties: pd.DataFrame) -> np.ndarray:
    """Index of the county containing each point (-1: none; the first where several)."""
    polys = np.asarray(counties.geometry, dtype=object)
    tree = shapely.STRtree(polys)
    pts, poly = tree.query(shapely.points(lon, lat), predicate="within")
    out = np.full(len(lon), -1, dtype=np.int64)
    first = np.unique(pts, return_index=True)[1]
    out[pts[first]] = poly[first]
    return out


def county_capacity(officers: pd.DataFrame, officer_cells: pd.DataFrame,
                    boundaries: pd.DataFrame, rules: CapacityRules | None = None
                    ) -> pd.DataFrame:
    """Per county (indexed by adcode): ``officers``, ``capacity`` (checks a year),
    ``source`` (网格员 / 规则文件 / 无网格员) and ``limit`` (what the schedule is bounded by:
    the capacity, or NaN for an unstaffed county when the rules say not to cap it).

    Every county of ``boundaries`` is listed, and any named by an officer or the rules."""
    rules = rules or CapacityRules()
    placed = officer_counties(officers, officer_cells, boundaries)
    counts = placed.value_counts()
    codes = pd.Index(sorted(set(_counties(boundaries)["adcode"].astype(str))
                            | set(counts.index.astype(str)) | set(rules.by_county)))
    n = counts.reindex(codes).fillna(0).astype(np.int64)
    capacity = (n * rules.checks_per_officer_year).astype("float64")
    source = pd.Series(np.where(n > 0, "网格员", UNSTAFFED), index=codes, dtype=object)
    given = pd.Series(rules.by_county, dtype="float64")
    if len(given):
        capacity[given.index] = given
        source[given.index] = "规则文件"
    limit = capacity.where((source != UNSTAFFED) | rules.unstaffed_caps_boosts)
    return pd.DataFrame({"officers": n, "capacity": capacity, "source": source,
                         "limit": limit}, index=codes)


# --------------------------------------------------------------------------- workload

def _region_table(boundaries: pd.DataFrame) -> pd.DataFrame:
    cols = ["adcode", "name", "level", "parent_adcode", "province_adcode", "city_adcode"]
    if boundaries is None or not len(boundaries):
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols}).rename(
            columns={"level": "admin_level"})
    reg = pd.DataFrame(boundaries[cols]).astype("string").rename(columns={"level": "admin_level"})
    rank = reg["admin_level"].map({"province": 0, "city": 1, "county": 2}).fillna(3)
    return (reg.assign(_r=rank.to_numpy()).sort_values(["_r", "adcode"])
            .drop(columns="_r").drop_duplicates(["admin_level", "adcode"])
            .reset_index(drop=True))


def _per_region(reg: pd.DataFrame, units: pd.DataFrame, values: dict[str, np.ndarray]
                ) -> pd.DataFrame:
    """Sums of ``values`` (one array per column, one value per unit) per region row of
    ``reg``: counties by the unit's county, cities and provinces by theirs."""
    out = pd.DataFrame(0.0, index=range(len(reg)), columns=list(values))
    frame = pd.DataFrame(values)
    for level in ("province", "city", "county"):
        codes = units[f"{level}_adcode"].astype("string").to_numpy(dtype=object, na_value=None)
        sums = frame.groupby(codes, dropna=True).sum()
        rows = np.flatnonzero((reg["admin_level"] == level).to_numpy())
        got = sums.reindex(reg["adcode"].to_numpy()[rows]).fillna(0.0)
        out.iloc[rows] = got.to_numpy()
    return out


def workload(schedule: pd.DataFrame, capacity: pd.DataFrame, boundaries: pd.DataFrame,
             ladder: tuple[int, ...] = (12, 6, 3, 2, 1)) -> pd.DataFrame:
    """One row per province, city and county: officers, capacity (checks a year), units,
    never-checked units, planned checks with base intervals (``planned_base``), with every
    boost (``planned_full``) and as scheduled (``planned``), utilisation, over capacity.

    A city's or province's capacity and plan are its counties' sums; ``counties_over``
    counts its counties over capacity. A county with no officer and no ``by_county``
    capacity has capacity 0 and the note 无网格员. ``ladder`` is the frequency rules' ladder
    (for ``planned_full``)."""
    return workload_from(schedule_sums(schedule, ladder), capacity, boundaries)


_SCHEDULE_SUMS = ("units", "never_checked", "boosted_units", "capped_units", "planned_base",
                  "planned_full", "planned")


def schedule_sums(schedule: pd.DataFrame, ladder: tuple[int, ...] = (12, 6, 3, 2, 1)
                  ) -> pd.DataFrame:
    """What :func:`workload` reads of the check schedule, summed per (province, city,
    county) a unit counts under, sorted by them. A county's units are summed in the
    schedule's order, so a part holding each county's units whole (a Dask partition) sums
    each county as the whole schedule does: the parts' rows, concatenated and sorted
    (:func:`combined_schedule_sums`), are the whole's to the last bit."""
    s = schedule
    base = s["base_interval_months"].astype("float64").to_numpy()
    full = s["interval_months"].astype("float64").to_numpy()
    capped = s["interval_capped"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    full = np.where(capped, _boosted_interval(s, ladder), full)
    units = pd.DataFrame({c: s[c] for c in PLACE_KEYS}).reset_index(drop=True)
    # a unit without a province or city code counts where its county says
    county = units["county_adcode"].astype("string")
    units["city_adcode"] = units["city_adcode"].astype("string").fillna(
        county.str.slice(0, 4) + "00")
    units["province_adcode"] = units["province_adcode"].astype("string").fillna(
        county.str.slice(0, 2) + "0000")
    weights = pd.DataFrame({
        "units": np.ones(len(s)),
        "never_checked": s["last_check_on"].isna().to_numpy(dtype="float64"),
        "boosted_units": s["boosted"].astype("boolean").fillna(False).to_numpy(dtype="float64"),
        "capped_units": capped.astype("float64"),
        "planned_base": 12.0 / base, "planned_full": 12.0 / full,
        "planned": s["checks_per_year"].astype("float64").to_numpy()})
    return _by_place(units, weights)


def combined_schedule_sums(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The :func:`schedule_sums` of a schedule cut into parts, each place's units in one
    (a place in one part is its sum there; one in several would add in another order)."""
    out = pd.concat(parts, ignore_index=True)
    return _by_place(out, out[list(_SCHEDULE_SUMS)])


def _by_place(places: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    keys = [places[c].to_numpy(dtype=object, na_value=None) for c in PLACE_KEYS]
    sums = weights.reset_index(drop=True).groupby(keys, dropna=False, sort=True).sum()
    sums.index.names = list(PLACE_KEYS)
    return sums.reset_index().astype({c: "string" for c in PLACE_KEYS})


def workload_from(sums: pd.DataFrame, capacity: pd.DataFrame, boundaries: pd.DataFrame
                  ) -> pd.DataFrame:
    """:func:`workload` from the check schedule's :func:`schedule_sums`."""
    reg = _region_table(boundaries)
    sums = _per_region(reg, sums[list(PLACE_KEYS)], {c: sums[c].to_numpy() for c in _SCHEDULE_SUMS})

    is_county = (reg["admin_level"] == "county").to_numpy()
    cap = capacity.reindex(reg["adcode"].to_numpy())
    officers = cap["officers"].fillna(0).to_numpy(dtype="float64")
    cap_value = cap["capacity"].fillna(0).to_numpy(dtype="float64")
    source = cap["source"].fillna(UNSTAFFED).to_numpy(dtype=object)
    over = is_county & (sums["planned"].to_numpy() > cap_value + 1e-9)
    county_rows = pd.DataFrame({"province_adcode": reg["province_adcode"],
                                "city_adcode": reg["city_adcode"],
                                "county_adcode": reg["adcode"]})[is_county]
    rolled = _per_region(reg, county_rows.reset_index(drop=True), {
        "officers": officers[is_county], "capacity": cap_value[is_county],
        "counties_over": over[is_county].astype("float64")})
    officers = np.where(is_county, officers, rolled["officers"].to_numpy())
    cap_value = np.where(is_county, cap_value, rolled["capacity"].to_numpy())
    counties_over = np.where(is_county, over, rolled["counties_over"].to_numpy())
    planned = sums["planned"].to_numpy()
    over = over | (~is_county & (planned > cap_value + 1e-9))
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap_value > 0, planned / np.where(cap_value > 0, cap_value, 1), np.nan)
    unstaffed = is_county & (source == UNSTAFFED)
    note = np.where(unstaffed & (planned > 0), "无网格员：未登记本区县网格员，检查力量为 0",
                    np.where(over, "计划检查超出检查力量", None))
    out = pd.DataFrame({
        **{c: reg[c] for c in ("adcode", "name", "admin_level", "parent_adcode",
                               "province_adcode", "city_adcode")},
        "officers": pd.array(officers.round().astype(np.int64), dtype="Int64"),
        "capacity": pd.array(cap_value.round().astype(np.int64), dtype="Int64"),
        "capacity_source": pd.array(np.where(is_county, source, None), dtype="string"),
        **{c: pd.array(sums[c].round().astype(np.int64), dtype="Int64")
           for c in ("units", "never_checked", "boosted_units", "capped_units")},
        **{c: sums[c].round(1).astype("float64") for c in ("planned_base", "planned_full")},
        "planned": planned.round(1),
        "utilisation": pd.Series(util).round(3).astype("float64"),
        "over_capacity": pd.array(over, dtype="boolean"),
        "counties_over": pd.array(counties_over.astype(np.int64), dtype="Int64"),
        "note": pd.array(note, dtype="string"),
    })
    return out[list(WORKLOAD_COLUMNS)]


def _boosted_interval(s: pd.DataFrame, ladder: tuple[int, ...]) -> np.ndarray:
    """The interval every boost would give: the base interval ``boost_steps`` rungs down
    ``ladder`` (the schedule keeps the base interval where a boost did not fit)."""
    base = s["base_interval_months"].astype("Int64").fillna(12).to_numpy(dtype=np.int64)
    steps = s["boost_steps"].astype("Int64").fillna(0).to_numpy(dtype=np.int64)
    rungs = np.asarray(ladder, dtype=np.int64)
    rung = np.searchsorted(-rungs, -base)
    return rungs[np.minimum(rung + steps, len(rungs) - 1)].astype("float64")


def over_capacity(frame: pd.DataFrame) -> list[dict]:
    """The counties of a ``workload`` frame whose planned checks exceed their capacity,
    most over first: adcode, name, planned, capacity, officers, unstaffed (no officer),
    by_rules (the capacity is the rule file's ``by_county``)."""
    rows = frame[(frame["admin_level"] == "county").to_numpy()
                 & frame["over_capacity"].fillna(False).to_numpy(dtype=bool)]
    rows = rows.assign(_gap=rows["planned"] - rows["capacity"].astype("float64")).sort_values(
        ["_gap", "adcode"], ascending=[False, True])
    return [{"adcode": str(r.adcode), "name": str(r.name), "planned": float(r.planned),
             "capacity": int(r.capacity), "officers": int(r.officers),
             "unstaffed": r.capacity_source == UNSTAFFED,
             "by_rules": r.capacity_source == "规则文件"}
            for r in rows.itertuples(index=False)]


def region_names(boundaries: pd.DataFrame) -> dict[str, str]:
    """``郑州市金水区``-style full names of the counties (city name + county name)."""
    reg = _region_table(boundaries)
    cities = reg[reg["admin_level"] == "city"]
    names = cities.set_index("adcode")["name"]
    county = reg[reg["admin_level"] == "county"]
    city = county["city_adcode"].map(names).fillna("")
    full = (city.where(city != county["name"], "") + county["name"]).to_numpy()
    return dict(zip(county["adcode"].to_numpy(), full, strict=True))


# --------------------------------------------------------------------------- campaigns

def _months_text(months: tuple[int, ...]) -> str:
    ms = sorted(set(months))
    if ms == list(range(ms[0], ms[-1] + 1)) and len(ms) > 1:
        return f"{ms[0]}–{ms[-1]}月"
    return "、".join(str(m) for m in ms) + "月"


def campaign_completion(units: pd.DataFrame, checks: pd.DataFrame | None,
                        boundaries: pd.DataFrame, campaigns: tuple[Campaign, ...],
                        as_of: date) -> pd.DataFrame:
    """Per province, city and county and campaign of ``as_of``'s year in force there: the
    units named (units of the campaign's levels), those with a supervision check recorded
    in the campaign's months that year (up to ``as_of``) and completion = checked / named.

    ``status`` is 未开始 before its first month, 进行中 until the end of its last, then
    已结束. Regions of provinces where a campaign is not in force get no row for it."""
    reg = _region_table(boundaries)
    year = as_of.year
    u = pd.DataFrame({"credit_code": text(units, "credit_code"),
                      "level": text(units, "level"),
                      "county_adcode": text(units, "county_adcode")})
    county = u["county_adcode"]
    u["city_adcode"] = text(units, "city_adcode").fillna(county.str.slice(0, 4) + "00")
    u["province_adcode"] = text(units, "province_adcode").fillna(
        county.str.slice(0, 2) + "0000")
    u = u[u["credit_code"].notna()].drop_duplicates("credit_code").reset_index(drop=True)

    month_of = pd.Series(dtype="float64")
    if checks is not None and len(checks):
        on = pd.to_datetime(checks["checked_on"], errors="coerce")
        keep = (on.dt.year == year) & (on <= pd.Timestamp(as_of))
        c = pd.DataFrame({"u": text(checks, "credit_code")[keep.to_numpy()],
                          "m": on[keep].dt.month.to_numpy()})
        month_of = c.dropna()
    parts = []
    for campaign in campaigns:
        start = date(year, min(campaign.months), 1)
        if not campaign.in_years(start):
            continue
        in_force = campaign.mask(u["province_adcode"], start)
        named = in_force & u["level"].isin(list(campaign.levels)).fillna(False).to_numpy(bool)
        checked_units = (month_of.loc[month_of["m"].isin(list(campaign.months)), "u"].unique()
                         if len(month_of) else [])
        checked = named & u["credit_code"].isin(checked_units).to_numpy(dtype=bool)
        sums = _per_region(reg, u, {"units_named": named.astype("float64"),
                                    "units_checked": checked.astype("float64")})
        provinces = reg["province_adcode"].fillna(reg["adcode"])
        rows = campaign.mask(provinces, start)
        if not rows.any():
            continue
        last = max(campaign.months)
        end = (pd.Timestamp(year, last, 1) + pd.offsets.MonthEnd(0)).date()
        status = "未开始" if as_of < start else ("进行中" if as_of <= end else "已结束")
        named_n = sums["units_named"].to_numpy()[rows]
        checked_n = sums["units_checked"].to_numpy()[rows]
        part = reg[rows].reset_index(drop=True).assign(
            year=year, campaign=campaign.text, months=_months_text(campaign.months),
            levels="、".join(LEVEL_ZH[lv] for lv in campaign.levels), status=status,
            units_named=named_n.astype(np.int64), units_checked=checked_n.astype(np.int64),
            completion=np.where(named_n > 0, np.round(checked_n / np.maximum(named_n, 1), 3),
                                np.nan),
            basis=campaign.basis)
        parts.append(part)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            COMPLETION_COLUMNS, ("string",) * 6 + ("Int64",) + ("string",) * 4
            + ("Int64", "Int64", "float64", "string"), strict=True)})
    out = pd.concat(parts, ignore_index=True)
    for col in ("year", "units_named", "units_checked"):
        out[col] = out[col].astype("Int64")
    for col in ("campaign", "months", "levels", "status", "basis"):
        out[col] = out[col].astype("string")
    out["completion"] = out["completion"].astype("float64")
    return out[list(COMPLETION_COLUMNS)]
