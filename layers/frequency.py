"""Supervision-check frequency per using unit (加大监督检查频次).

Henan plan 二（二）: "加强人员密集场所特种设备和重点特种设备的双重预防，对存在区域性或者
普遍严重事故隐患的特种设备使用单位，加大监督检查频次". Each unit starts from a base
interval set by its risk level (安全风险分级管控: each level controlled differently);
every triggered boost moves the interval ``steps`` rungs down a ladder of intervals
(12 → 6 → 3 → 2 → 1 months). The boosts are the plan's crowded places, key equipment and
regional/widespread hazards, plus the blacklist (Henan plan 二（二）), overdue inspection
(Henan plan 二（三）), the year's focus categories (Shaanxi plan 二（四）) and late
rectification (Henan plan 二（一）, a general hazard past its deadline).

Within a county's inspection capacity (``capacity``, :mod:`layers.workload`): the base
intervals are planned first; the boosts then shorten intervals in priority order (riskiest
first: level, then boost steps, then the unit's highest D) only while the county's planned
checks stay within its capacity. A boost that does not fit keeps the base interval
(``interval_capped``) but still ranks the unit (``priority``, 1 = first in its county).
Units never checked are not all due on the build date: within a county and interval, in
priority order, their first due dates are spread evenly over the interval (Shaanxi plan
四（三）“合理安排阶段性工作”), so red units fall in the first month and the county's checks
per month stay level.

One fact, one boost: each boost id is a fact about the unit, and boosts add up over
distinct facts only. Where two rules name the same fact it counts once, by the larger of
their steps, and its reason names it once: an elevator is key equipment only inside a
crowded venue, so the venue is the fact (``crowded_venue``, its reason noting the
elevator); a category that is both key equipment and the year's focus is one fact
(``key_equipment``, its reason noting the focus year), and ``focus_category`` counts only
the focus categories that are not key equipment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.catalogue import TOP_CATEGORIES, category_name, load_catalogue
from layers.columns import arrow_text, as_flags, text, top_categories
from layers.frames import LEVEL_RANK, LEVEL_ZH
from layers.hotspots import late_general_hazards
from layers.scope import ShaanxiScope

BOOSTS: tuple[str, ...] = ("crowded_venue", "key_equipment", "hotspot", "blacklisted",
                           "overdue_inspection", "focus_category", "late_rectification")
"""Boost ids — the facts — in the order they are reported; each counts once per unit."""

COLUMNS: tuple[str, ...] = (
    "credit_code", "name", "level", "province_adcode", "city_adcode", "county_adcode",
    "base_interval_months", "boost_steps", "interval_months", "checks_per_year", "boosts",
    "reasons", "last_check_on", "next_due", "due_in_days", "check_overdue", "boosted",
    "priority", "interval_capped",
)
CAPPED = "检查力量已满，优先安排而未缩短间隔"
"""The closing words of a boosted unit's reasons when its county's capacity is used up."""


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@cache
def _catalogue_codes() -> frozenset[str]:
    return frozenset(load_catalogue()["code"].dropna().tolist())


def _check_codes(codes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [c for c in codes if c not in _catalogue_codes()]
    if unknown:
        raise ValueError(f"设备类别代码 {unknown} 不在特种设备目录中")
    return codes


class BaseIntervals(_Rules):
    """Base interval by level: 风险分级管控, stricter control for a more serious level."""

    red: int = Field(1, ge=1, description="重大风险（红色）单位的基础检查间隔（月）")
    orange: int = Field(3, ge=1, description="较大风险（橙色）单位的基础检查间隔（月）")
    yellow: int = Field(6, ge=1, description="一般风险（黄色）单位的基础检查间隔（月）")
    blue: int = Field(12, ge=1, description="低风险（蓝色）单位的基础检查间隔（月）")
    unlevelled: int = Field(12, ge=1,
                            description="无在用设备、未分级单位的基础检查间隔（月），按低风险对待")

    @model_validator(mode="after")
    def _ordered(self) -> BaseIntervals:
        if not self.red <= self.orange <= self.yellow <= self.blue:
            raise ValueError("风险等级越高，基础检查间隔应越短（红≤橙≤黄≤蓝）")
        return self


class _Boost(_Rules):
    steps: int = Field(1, ge=0, le=4, description="触发时检查间隔沿阶梯缩短的档数；0 表示不启用")


class CrowdedVenueBoost(_Boost):
    """Henan plan 二（二）: 加强人员密集场所特种设备的双重预防."""

    reason: str = Field("在用设备位于人员密集场所", min_length=1,
                        description="理由；其后括注场所类型")


class KeyEquipmentBoost(_Boost):
    """Henan plan 二（二）: 加强重点特种设备的双重预防 (ropeways, rides, venue elevators,
    cylinders)."""

    reason: str = Field("持有重点特种设备", min_length=1, description="理由；其后括注设备类别")
    anywhere: tuple[str, ...] = Field(
        ("9000", "6000", "2300"),
        description="无论位于何处均为重点设备的类别代码（客运索道、大型游乐设施、气瓶充装）")
    in_venue: tuple[str, ...] = Field(
        ("3000",), description="位于人员密集场所内才算重点设备的类别代码（电梯）；与“人员密集场所”"
        "是同一事实，只加频一次（取两项档数较大者），理由中注明")

    @field_validator("anywhere", "in_venue")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_codes(v)


class HotspotBoost(_Boost):
    """Henan plan 二（二）: 存在区域性或者普遍严重事故隐患的使用单位，加大监督检查频次."""

    reason: str = Field("存在区域性或者普遍严重事故隐患", min_length=1,
                        description="理由；其后括注热点网格或普遍隐患类别")
    regional_only: bool = Field(
        False, description="为真时只计入区域性聚集（相邻显著热点网格≥2个）的热点网格")
    widespread: bool = Field(True, description="是否计入县区×设备类别的普遍严重事故隐患")


class BlacklistBoost(_Boost):
    """Henan plan 二（二）: 完善特种设备安全不良记录“黑名单”制度."""

    reason: str = Field("列入特种设备安全不良记录黑名单", min_length=1, description="理由")


class OverdueBoost(_Boost):
    """Henan plan 二（三）: 发现设备逾期未检…及时报告所在地市场监管部门."""

    reason: str = Field("有逾期未检设备", min_length=1, description="理由；其后括注台数")


class LateRectificationBoost(_Boost):
    """Henan plan 二（一）: 隐患排查、登记、治理、销号的全过程记录和闭环管理 — a general hazard
    past its deadline is an overdue rectification (its own fact; a major hazard is serious and
    sets the unit's level instead)."""

    reason: str = Field("有逾期未整改的一般隐患", min_length=1, description="理由；其后括注项数")
    basis: str = Field(
        "豫市监办〔2021〕55号 二（一）“实现隐患排查、登记、治理、销号的全过程记录和闭环管理”",
        description="依据（文件条款原文）")


FOCUS_BY_YEAR: dict[int, tuple[str, ...]] = {
    2020: ("8000", "2300", "3000"),
    2021: ("2000", "1000", "4000"),
    2022: ("5000", "6000", "9000"),
}


class FocusBoost(_Boost, ShaanxiScope):
    """Shaanxi plan 二（四）: 2020 压力管道、气瓶、电梯；2021 压力容器、锅炉、起重机械；
    2022 场（厂）车、大型游乐设施、客运索道 (重点治理…存在的突出问题). Shaanxi's alone, for
    the plan's years: scoped to 610000, 2020–2022."""

    reason: str = Field("持有本年度重点治理领域设备", min_length=1,
                        description="理由；其后括注年份与类别（已作为重点特种设备加频的类别不再计入）")
    by_year: dict[int, tuple[str, ...]] = Field(
        FOCUS_BY_YEAR, description="各年度重点治理的设备类别代码；晚于最后一年时沿用最后一年")

    @field_validator("by_year")
    @classmethod
    def _years(cls, v: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        for year, codes in v.items():
            if not 2000 <= year <= 2100:
                raise ValueError(f"年份 {year} 不合理")
            _check_codes(codes)
        return v

    def codes_for(self, year: int) -> tuple[int | None, tuple[str, ...]]:
        """The configured year that applies to ``year`` and its codes (none before the first)."""
        years = sorted(y for y in self.by_year if y <= year)
        if not years:
            return None, ()
        return years[-1], self.by_year[years[-1]]


class FrequencyRules(_Rules):
    """加大监督检查频次: base interval by level, shortened along a ladder by each boost."""

    ladder: tuple[int, ...] = Field(
        (12, 6, 3, 2, 1), description="检查间隔阶梯（月，由长到短）；每档加频向短一档移动")
    base_months: BaseIntervals = Field(BaseIntervals(), description="各风险等级的基础检查间隔")
    crowded_venue: CrowdedVenueBoost = Field(CrowdedVenueBoost(), description="人员密集场所加频")
    key_equipment: KeyEquipmentBoost = Field(KeyEquipmentBoost(), description="重点特种设备加频")
    hotspot: HotspotBoost = Field(HotspotBoost(), description="区域性或者普遍严重事故隐患加频")
    blacklisted: BlacklistBoost = Field(BlacklistBoost(), description="黑名单单位加频")
    overdue_inspection: OverdueBoost = Field(OverdueBoost(), description="逾期未检加频")
    focus_category: FocusBoost = Field(FocusBoost(), description="年度重点治理领域加频")
    late_rectification: LateRectificationBoost = Field(
        LateRectificationBoost(), description="逾期未整改一般隐患（逾期整改）加频")
    spread_first_checks: bool = Field(
        True, description="从未检查过的单位：为真时在区县内按优先顺序（风险高者在前）把首次检查"
        "均匀排布在其检查周期内（红色单位在首月内），各月检查量大致均衡（陕西省方案四（三）"
        "“合理安排阶段性工作”）；为假时均于统计日期到期")

    @model_validator(mode="after")
    def _ladder(self) -> FrequencyRules:
        lad = self.ladder
        if not lad or any(m < 1 or m > 36 for m in lad):
            raise ValueError("检查间隔阶梯须非空，每档 1 至 36 个月")
        if any(a <= b for a, b in pairwise(lad)):
            raise ValueError("检查间隔阶梯须由长到短严格递减")
        for name, months in self.base_months.model_dump().items():
            if months not in lad:
                raise ValueError(f"base_months.{name}={months} 不在检查间隔阶梯 {list(lad)} 上")
        return self


# --------------------------------------------------------------------------- helpers
# Everything below works on integer positions (units) and factorized codes (categories,
# venues, counties), so 1M pieces cost a few array passes and no per-row Python.

def _prefix(code: str) -> str:
    """Catalogue codes are hierarchical: ``2300`` covers every code starting with ``23``."""
    return code.rstrip("0") or code


def _factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 for missing) and the distinct values as an object array."""
    codes, uniques = pd.factorize(pd.Series(values, dtype="string"), use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def positions(keys: pd.Series, index: pd.Series) -> np.ndarray:
    """Position of each key in ``index`` (-1 where absent), by an Arrow hash lookup."""
    keys = pa.array(pd.Series(keys, dtype="string").array).cast(pa.large_string())
    index = pa.array(pd.Series(index, dtype="string").array).cast(pa.large_string())
    found = pac.index_in(keys, value_set=index)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _take(table: np.ndarray, codes: np.ndarray, fill: object = None) -> np.ndarray:
    """``table[codes]`` with ``fill`` where the code is -1."""
    table = np.asarray(table, dtype=object)
    out = np.full(len(codes), fill, dtype=object)
    ok = codes >= 0
    out[ok] = table[codes[ok]]
    return out


def join_labels(pos: np.ndarray, label: np.ndarray, n: int, sep: str = "、") -> np.ndarray:
    """The distinct labels of each of ``n`` units, sorted and joined; None where it has none.

    ``pos`` is the unit position of each row, ``label`` its label (None = no label). Labels
    come from a small vocabulary (venue kinds, category names), so a unit's set is a bit
    mask and only the distinct masks are turned into text in Python."""
    out = np.full(n, None, dtype=object)
    label = pd.Series(label, dtype="string")
    ok = label.notna().to_numpy() & (np.asarray(pos) >= 0)
    if not ok.any():
        return out
    codes, vocab = pd.factorize(label[ok], sort=True)
    where = np.asarray(pos)[ok]
    words = np.asarray(vocab, dtype=object)
    if len(words) > 62:  # an unexpectedly large vocabulary: plain (slower) join
        pairs = pd.DataFrame({"u": where, "label": words[codes]}).drop_duplicates()
        joined = pairs.sort_values(["u", "label"]).groupby("u")["label"].agg(sep.join)
        out[joined.index.to_numpy()] = joined.to_numpy(dtype=object)
        return out
    masks = np.zeros(n, dtype=np.int64)
    np.bitwise_or.at(masks, where, np.left_shift(np.int64(1), codes.astype(np.int64)))
    has = masks != 0
    inverse, distinct = pd.factorize(masks[has])
    bits = (distinct[:, None] >> np.arange(len(words))[None, :]) & 1 == 1
    texts = np.asarray([sep.join(words[b]) for b in bits], dtype=object)
    out[has] = texts[inverse]
    return out


def _scalar(value: str | None) -> pa.Scalar:
    return pa.scalar(value, type=pa.large_string())


def _reason(reason: str, detail: pa.Array) -> pa.Array:
    """``reason（detail）``, or ``reason`` for an empty detail, null where detail is null."""
    wrapped = pac.binary_join_element_wise(_scalar(reason), _scalar("（"), detail,
                                           _scalar("）"), _scalar(""))
    return pac.if_else(pac.equal(detail, _scalar("")), _scalar(reason), wrapped)


def _summary(steps: np.ndarray, base: np.ndarray, interval: np.ndarray,
             capped: np.ndarray) -> pa.Array:
    """The closing sentence of a boosted unit's reasons (null when not boosted); text is
    built once per distinct (capped, steps, base, interval)."""
    inverse, combos = pd.factorize(((capped * 100 + steps) * 100 + base) * 100 + interval)

    def sentence(k: int) -> str | None:
        cap, s, b, i = k // 1_000_000, k // 10_000 % 100, k // 100 % 100, k % 100
        if s == 0:
            return None
        if cap:
            return f"共加频{s}档；{CAPPED}（仍为{b}个月）"
        return f"共加频{s}档，检查间隔由{b}个月缩短为{i}个月" if i < b else "已为最短检查间隔"

    sentences = np.asarray([sentence(k) for k in combos.tolist()], dtype=object)
    return pa.array(sentences[inverse], type=pa.large_string(), from_pandas=True)


class Pieces:
    """In-use equipment as arrays: unit position, registration code, factorized category,
    venue, county, city, top category; overdue and insured flags."""

    def __init__(self, equipment: pd.DataFrame, units: pd.DataFrame) -> None:
        use = (equipment["in_use"].fillna(False).to_numpy(dtype=bool)
               if len(equipment) and "in_use" in equipment else None)

        def in_use(values: pd.Series) -> pd.Series:
            """The in-use rows of one column: the graded equipment is wide, and a copy of
            all its in-use rows would be the stage's largest allocation."""
            return values if use is None else values[use]

        n = len(equipment) if use is None else int(use.sum())
        self.pos = positions(in_use(text(equipment, "unit_credit_code")), units["credit_code"])
        self.codes = in_use(text(equipment, "registration_code"))
        self.cat, self.cat_u = _factorize(in_use(text(equipment, "category_code")))
        self.venue, self.venue_u = _factorize(in_use(text(equipment, "venue_id")))
        self.top, self.top_u = _factorize(in_use(top_categories(equipment)))
        self.county, self.county_u = self._placed(in_use(text(equipment, "county_adcode")),
                                                  units, "county_adcode")
        self.city, self.city_u = self._placed(in_use(text(equipment, "city_adcode")), units,
                                              "city_adcode")
        self.overdue = (in_use(equipment["overdue"]).fillna(False).to_numpy(dtype=bool)
                        if "overdue" in equipment else np.zeros(n, dtype=bool))
        if "insured" in equipment:
            ins = in_use(equipment["insured"]).astype("boolean")
            self.insured = ins.fillna(False).to_numpy(dtype=bool)
            self.insured_na = ins.isna().to_numpy()
        else:
            self.insured = np.zeros(n, dtype=bool)
            self.insured_na = np.ones(n, dtype=bool)

    def _placed(self, own: pd.Series, units: pd.DataFrame, col: str
                ) -> tuple[np.ndarray, np.ndarray]:
        """A piece's own admin code, else its unit's (a piece without one stands there)."""
        gap = own.isna().to_numpy()
        if gap.any() and col in units:
            unit_codes = units[col].astype("string").to_numpy(dtype=object, na_value=None)
            own = own.copy()
            own[gap] = _take(unit_codes, self.pos[gap])
        return _factorize(own)

    def matches(self, code: str) -> np.ndarray:
        """Pieces whose category lies under catalogue ``code``."""
        hit_u = np.asarray([str(c).startswith(_prefix(code)) for c in self.cat_u], dtype=bool)
        return np.where(self.cat >= 0, hit_u[np.maximum(self.cat, 0)] if len(hit_u) else False,
                        False)

    def category_labels(self, codes: tuple[str, ...], prefix: str = "") -> np.ndarray:
        """Per piece: ``prefix`` + name of the first of ``codes`` it lies under (else None)."""
        table = np.full(len(self.cat_u), None, dtype=object)
        for code in codes:
            hit = np.asarray([str(c).startswith(_prefix(code)) for c in self.cat_u], dtype=bool)
            table[hit & pd.isna(table)] = prefix + category_name(code)
        return _take(table, self.cat)


def _add_months(start: pd.Series, months: np.ndarray) -> pd.Series:
    """``start`` + ``months`` calendar months, the day clipped to the month's end (vectorised)."""
    total = start.dt.year.to_numpy() * 12 + start.dt.month.to_numpy() - 1 + months
    first = pd.to_datetime(pd.DataFrame({"year": total // 12, "month": total % 12 + 1, "day": 1}))
    day = np.minimum(start.dt.day.to_numpy(), first.dt.days_in_month.to_numpy())
    return (first + pd.to_timedelta(day - 1, unit="D")).astype("datetime64[s]")


def unit_points(units: pd.DataFrame) -> np.ndarray:
    """Point of each unit's lon/lat; an empty point where either is missing (not dropped)."""

    def coord(name: str) -> np.ndarray:
        if name not in units:
            return np.full(len(units), np.nan)
        return pd.to_numeric(units[name], errors="coerce").to_numpy(dtype="float64",
                                                                    na_value=np.nan)

    lon, lat = coord("lon"), coord("lat")
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(len(units), shapely.from_wkt("POINT EMPTY"), dtype=object)
    if ok.any():
        geoms[ok] = shapely.points(lon[ok], lat[ok])
    return geoms


def unit_frame(units: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Units sorted by credit code, one row each, with ``columns`` present (as strings)."""
    u = pd.DataFrame(units)  # copy-on-write: ``units`` is never changed through ``u``
    if "geometry" in u:
        u = pd.DataFrame(u.drop(columns="geometry"))
    u["credit_code"] = u["credit_code"].astype("string")
    u = u[u["credit_code"].notna()].drop_duplicates("credit_code").sort_values("credit_code")
    for col in columns:
        u[col] = u[col].astype("string") if col in u else pd.Series(pd.NA, index=u.index,
                                                                    dtype="string")
    return u.reset_index(drop=True)


# --------------------------------------------------------------------------- boosts
# A fact is (detail, steps) per unit position: the detail text of a triggered fact ("" = no
# detail) or None where it does not apply, and the steps it moves the interval (0 there).

Fact = tuple[np.ndarray, np.ndarray]


def _fact(detail: np.ndarray, steps: int) -> Fact:
    return detail, np.where(pd.isna(detail), 0, steps).astype(np.int64)


def _venue_kinds(pc: Pieces, venues: pd.DataFrame, n: int) -> np.ndarray:
    """The kinds of the crowded venues each unit has in-use equipment in (None: none)."""
    kinds = np.full(len(pc.venue_u), "场所类型不明", dtype=object)
    if len(venues) and len(pc.venue_u):
        by_id = venues.drop_duplicates("venue_id").set_index(
            venues.drop_duplicates("venue_id")["venue_id"].astype("string"))["kind"]
        known = by_id.astype("string").reindex(pc.venue_u)
        kinds = known.fillna("场所类型不明").to_numpy(dtype=object)
    return join_labels(pc.pos, _take(kinds, pc.venue), n)


def _note(detail: np.ndarray, names: np.ndarray, before: str, after: str) -> np.ndarray:
    """``detail`` + ``before`` + names + ``after`` where a unit has names (and a detail)."""
    out = detail.copy()
    has = ~pd.isna(names) & ~pd.isna(detail)
    out[has] = out[has] + before + names[has] + after
    return out


def _category_facts(pc: Pieces, venues: pd.DataFrame, rules: FrequencyRules, as_of: date,
                    units: pd.DataFrame) -> dict[str, Fact]:
    """Where the unit's equipment stands and what it is: ``crowded_venue``,
    ``key_equipment`` and ``focus_category``, each fact once.

    An in-venue key category (the elevator) is key only because of the venue: it is the
    venue fact, noted in its reason, with the larger of the two rules' steps (the key
    equipment fact when the venue rule is off). A category both key and the year's focus
    is one fact, the key equipment, noted, with the larger steps; the focus fact counts the
    other focus categories only. The focus categories count only for units where and when
    the focus rule is in force (its scope against the unit's province and ``as_of``)."""
    crowd, key, focus = rules.crowded_venue, rules.key_equipment, rules.focus_category
    n = len(units)
    none = np.full(len(pc.pos), None, dtype=object)
    key_any = pc.category_labels(key.anywhere) if key.steps else none
    key_venue = (np.where(pc.venue >= 0, pc.category_labels(key.in_venue), None)
                 if key.steps else none)
    used, codes = focus.codes_for(as_of.year)
    in_force = focus.mask(units["province_adcode"], as_of)
    if not in_force.any():
        codes = ()
    focus_of = pc.category_labels(codes) if focus.steps and codes else none
    if focus.steps and codes:  # a piece counts where its unit is in the focus rule's scope
        focus_of = np.where(_take(in_force, pc.pos, False).astype(bool), focus_of, None)
    is_key, is_focus = ~pd.isna(key_any), ~pd.isna(focus_of)
    out: dict[str, Fact] = {}

    key_label = key_any
    if crowd.steps:
        lifts = join_labels(pc.pos, key_venue, n)
        detail = _note(_venue_kinds(pc, venues, n), lifts, "；其中", "为重点特种设备")
        venue, steps = _fact(detail, crowd.steps)
        out["crowded_venue"] = (venue, np.where(~pd.isna(lifts) & (steps > 0),
                                                max(crowd.steps, key.steps), steps))
    else:  # no venue fact: the in-venue categories are key equipment of their own
        in_venue = ~pd.isna(key_venue)
        key_label = key_any.copy()
        key_label[in_venue] = "人员密集场所" + key_venue[in_venue]
    if key.steps:
        also = join_labels(pc.pos, np.where(is_key & is_focus, key_any, None), n)
        held = join_labels(pc.pos, key_label, n)
        whole = ~pd.isna(also) & (also == held)  # every key category is a focus one
        detail = _note(held, np.where(whole, None, also), "；其中", f"亦为{used}年重点治理领域")
        detail[whole] = held[whole] + f"，亦为{used}年重点治理领域"
        detail, steps = _fact(detail, key.steps)
        out["key_equipment"] = (detail, np.where(~pd.isna(also) & (steps > 0),
                                               max(key.steps, focus.steps), steps))
    if focus.steps and codes:
        names = join_labels(pc.pos, np.where(is_focus & ~is_key, focus_of, None), n)
        has = ~pd.isna(names)
        names[has] = f"{used}年：" + names[has].astype(object)
        out["focus_category"] = _fact(names, focus.steps)
    return out


def _hotspot(places: pd.DataFrame, units: pd.DataFrame, hotspot_units: pd.DataFrame,
             widespread: pd.DataFrame, rule: HotspotBoost, n: int) -> np.ndarray:
    """Per unit: inside a hot cell, or holding pieces of a category found widespread in
    their county (``places``: :attr:`UnitFacts.places`)."""
    pos: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    if hotspot_units is not None and len(hotspot_units):
        h = hotspot_units
        regional = (h["regional"].astype("boolean").fillna(False).to_numpy(dtype=bool)
                    if "regional" in h else np.zeros(len(h), dtype=bool))
        keep = regional if rule.regional_only else np.ones(len(h), dtype=bool)
        where = positions(h["credit_code"], units["credit_code"])
        pos.append(where[keep])
        labels.append(np.where(regional, "位于区域性聚集的严重隐患热点网格",
                               "位于严重隐患热点网格")[keep].astype(object))
    if rule.widespread and widespread is not None and len(widespread) and len(places):
        w = widespread[widespread["widespread"].astype("boolean").fillna(False).to_numpy(
            dtype=bool)]
        wide = pd.MultiIndex.from_arrays([w["county_adcode"].astype("string"),
                                          w["top_category"].astype("string")])
        hit = pd.MultiIndex.from_arrays([places["county_adcode"], places["top_category"]]
                                        ).isin(wide)
        top, tops = pd.factorize(places["top_category"][hit])
        names = np.asarray([TOP_CATEGORIES.get(t, t) for t in tops], dtype=object)
        pos.append(positions(places["credit_code"][hit], units["credit_code"]))
        labels.append(("所在县区" + names + "普遍存在严重事故隐患")[top] if len(names)
                      else names)
    if not pos:
        return np.full(n, None, dtype=object)
    return join_labels(np.concatenate(pos), np.concatenate(labels), n, sep="，")


def _blacklisted(u: pd.DataFrame) -> np.ndarray:
    if "blacklisted" not in u:
        return np.full(len(u), None, dtype=object)
    hit = as_flags(u["blacklisted"])
    return np.where(hit, "", None).astype(object)


def _overdue(pc: Pieces, n: int) -> np.ndarray:
    ok = pc.overdue & (pc.pos >= 0)
    count = np.bincount(pc.pos[ok], minlength=n)
    return np.where(count > 0, pd.Series(count).astype(str).to_numpy(dtype=object) + "台",
                    None).astype(object)


def _late_rectification(pc: Pieces, hazards: pd.DataFrame | None, as_of: date, n: int
                        ) -> np.ndarray:
    """The overdue rectifications (general hazards past deadline, not 销号) on each unit's
    in-use equipment, as "N项" (None: none)."""
    if hazards is None or not len(hazards) or not len(pc.pos):
        return np.full(n, None, dtype=object)
    late = late_general_hazards(hazards, as_of)
    per_code = late["registration_code"].astype("string").value_counts()
    per_piece = per_code.reindex(pc.codes).fillna(0).to_numpy(dtype=np.int64)
    ok = pc.pos >= 0
    count = np.bincount(pc.pos[ok], weights=per_piece[ok], minlength=n).astype(np.int64)
    return np.where(count > 0, pd.Series(count).astype(str).to_numpy(dtype=object) + "项",
                    None).astype(object)



# --------------------------------------------------------------------------- capacity

def priorities(county: np.ndarray, level_rank: np.ndarray, steps: np.ndarray,
               d_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The units in priority order (county by county, riskiest first: level, then boost
    steps, then D; ties keep credit-code order) and each unit's rank in its county
    (1 = first)."""
    n = len(county)
    order = np.lexsort((np.arange(n), -d_max, -steps, -level_rank, county))
    sorted_county = county[order]
    start = np.r_[True, sorted_county[1:] != sorted_county[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else start
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first + 1
    return order, rank


def _group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` within each run of equal ``groups`` (sorted by group)."""
    total = np.cumsum(values)
    if not len(values):
        return total
    start = np.r_[True, groups[1:] != groups[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(values)), 0))
    return total - (total - values)[first]


def fit_capacity(county: np.ndarray, order: np.ndarray, base: np.ndarray,
                 boosted: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Which units' boosts do not fit their county's capacity (``capped``).

    The county's base plan (12 / base interval per unit) comes first; each boost adds its
    extra checks (12 / boosted − 12 / base) in priority ``order`` while the running total
    stays within ``capacity`` (checks a year per unit's county; NaN: not limited). A county
    whose base plan already exceeds its capacity fits no boost."""
    base_checks = 12.0 / base
    extra = 12.0 / boosted - base_checks
    key = county + 1  # -1 (no county) becomes group 0
    base_total = np.bincount(key, weights=base_checks, minlength=int(key.max(initial=0)) + 1)
    ordered = key[order]
    running = _group_cumsum(extra[order], ordered)
    fits = np.empty(len(order), dtype=bool)
    cap = capacity[order]
    fits[order] = np.isnan(cap) | (base_total[ordered] + running <= cap + 1e-9)
    return (extra > 0) & ~fits


def spread_first_checks(never: np.ndarray, county: np.ndarray, interval: np.ndarray,
                        order: np.ndarray) -> np.ndarray:
    """Days from ``as_of`` to the first due date of each never-checked unit (0 elsewhere):
    within its county and interval, the k-th of m units in priority ``order`` is due after
    floor(k / m × the interval's days)."""
    days = np.zeros(len(never), dtype=np.int64)
    pick = order[never[order]]
    if not len(pick):
        return days
    group = pd.Series((county[pick] + 1) * 100 + interval[pick])
    pos = group.groupby(group, sort=False).cumcount().to_numpy()
    size = group.map(group.value_counts()).to_numpy()
    span = np.round(interval[pick] * 365.25 / 12)
    days[pick] = np.floor(pos / size * span).astype(np.int64)
    return days


# --------------------------------------------------------------------------- the layer

def _empty() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in (
        ("credit_code", "string"), ("name", "string"), ("level", "string"),
        ("province_adcode", "string"), ("city_adcode", "string"), ("county_adcode", "string"),
        ("base_interval_months", "Int64"), ("boost_steps", "Int64"),
        ("interval_months", "Int64"), ("checks_per_year", "float64"), ("boosts", "string"),
        ("reasons", "string"), ("last_check_on", "datetime64[s]"),
        ("next_due", "datetime64[s]"), ("due_in_days", "Int64"), ("check_overdue", "boolean"),
        ("boosted", "boolean"), ("priority", "Int64"), ("interval_capped", "boolean"))})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def last_checks(checks: pd.DataFrame | None, as_of: date) -> pd.Series:
    """Date of each unit's latest supervision check on or before ``as_of`` (later ones are
    ignored: the layer is computed as of that day), indexed by credit code."""
    if checks is None or checks.empty:
        return pd.Series(dtype="datetime64[s]")
    on = pd.to_datetime(checks["checked_on"])
    c = pd.DataFrame({"u": checks["credit_code"].astype("string"), "on": on})
    c = c[c["on"].notna() & (c["on"] <= pd.Timestamp(as_of)) & c["u"].notna()]
    return c.groupby("u")["on"].max().astype("datetime64[s]")


def inspection_frequency(units: pd.DataFrame, equipment: pd.DataFrame, checks: pd.DataFrame,
                         venues: pd.DataFrame, hotspot_units: pd.DataFrame,
                         widespread: pd.DataFrame, as_of: date,
                         rules: FrequencyRules | None = None, *,
                         hazards: pd.DataFrame | None = None,
                         capacity: pd.Series | None = None) -> gpd.GeoDataFrame:
    """One row per graded unit: check interval, the boosts that shortened it (each fact
    once, see the module), priority in its county, next due date. ``hazards`` (the stored
    hazards) give the late rectifications; without them that fact is not evaluated.
    ``capacity`` (checks a year by county adcode, NaN or absent: not limited) bounds the
    boosts; without it no county is limited."""
    rules = rules or FrequencyRules()
    return inspection_frequency_from(
        UnitFacts.of(units, equipment, venues, as_of, rules, hazards=hazards), units, checks,
        hotspot_units, widespread, as_of, rules, capacity=capacity)


_UNIT_COLUMNS = ("name", "level", "province_adcode", "city_adcode", "county_adcode")
#: The facts a unit's own pieces set, each a detail text per unit (None: not set).
PIECE_FACTS: tuple[str, ...] = ("crowded_venue", "key_equipment", "focus_category",
                                "overdue_inspection", "late_rectification")


@dataclass(frozen=True)
class UnitFacts:
    """What the check schedule reads of each unit's in-use pieces, by credit code:
    ``facts``, the detail (and, for the category facts, the steps) of each of
    :data:`PIECE_FACTS` (``<fact>`` and ``<fact>_steps``), of the units any of them names
    (a unit absent reads as none set); ``places``, the distinct
    (county, top category) of its pieces, for the widespread hotspot fact. A unit's rows
    come from its own pieces only, so parts keeping each unit's pieces together (the Dask
    build's partitions) concatenate into the whole's (:meth:`joined`)."""

    facts: pd.DataFrame
    places: pd.DataFrame

    @classmethod
    def of(cls, units: pd.DataFrame, equipment: pd.DataFrame, venues: pd.DataFrame,
           as_of: date, rules: FrequencyRules, *, hazards: pd.DataFrame | None = None
           ) -> UnitFacts:
        """The facts of ``equipment``'s in-use pieces per unit of ``units`` (both graded)."""
        u = unit_frame(units, _UNIT_COLUMNS)
        n = len(u)
        pc = Pieces(equipment, u)
        facts = _category_facts(pc, venues, rules, as_of, u)
        out = pd.DataFrame({"credit_code": u["credit_code"]})
        for name in PIECE_FACTS[:3]:
            detail, steps = facts.get(name, (np.full(n, None, dtype=object),
                                             np.zeros(n, dtype=np.int64)))
            out[name] = pd.array(detail, dtype="string")
            out[f"{name}_steps"] = steps
        out["overdue_inspection"] = pd.array(_overdue(pc, n), dtype="string")
        out["late_rectification"] = pd.array(_late_rectification(pc, hazards, as_of, n),
                                             dtype="string")
        # a unit no fact names reads as absent (None, 0 steps): only the others are kept
        named = out[list(PIECE_FACTS)].notna().any(axis=1).to_numpy() | (
            out[[f"{f}_steps" for f in PIECE_FACTS[:3]]].to_numpy() > 0).any(axis=1)
        out = out[named].reset_index(drop=True)
        ok = (pc.pos >= 0) & (pc.county >= 0) & (pc.top >= 0)
        places = pd.DataFrame({
            "credit_code": u["credit_code"].to_numpy()[pc.pos[ok]],
            "county_adcode": _take(np.asarray(pc.county_u, dtype=object), pc.county[ok]),
            "top_category": _take(np.asarray(pc.top_u, dtype=object), pc.top[ok]),
        }).drop_duplicates().astype("string")
        return cls(out, places.reset_index(drop=True))

    @classmethod
    def joined(cls, parts: list[UnitFacts]) -> UnitFacts:
        """The facts of all ``parts`` (each unit's pieces in one part)."""
        return cls(pd.concat([p.facts for p in parts], ignore_index=True),
                   pd.concat([p.places for p in parts], ignore_index=True))


def inspection_frequency_from(facts: UnitFacts, units: pd.DataFrame, checks: pd.DataFrame,
                              hotspot_units: pd.DataFrame, widespread: pd.DataFrame,
                              as_of: date, rules: FrequencyRules | None = None, *,
                              capacity: pd.Series | None = None) -> gpd.GeoDataFrame:
    """:func:`inspection_frequency` from the units' :class:`UnitFacts`."""
    rules = rules or FrequencyRules()
    u = unit_frame(units, _UNIT_COLUMNS)
    if u.empty:
        return _empty()
    n = len(u)
    at = positions(facts.facts["credit_code"], u["credit_code"])
    found = at >= 0

    def per_unit(column: str, fill: object, dtype: object) -> np.ndarray:
        values = np.full(n, fill, dtype=dtype)
        values[at[found]] = facts.facts[column].to_numpy(dtype=dtype, na_value=fill)[found]
        return values

    piece_facts = {name: per_unit(name, None, object) for name in PIECE_FACTS}
    # a category fact whose rule is off is None for every unit, with no steps: not applied
    category = {name: (piece_facts[name], per_unit(f"{name}_steps", 0, np.int64))
                for name in PIECE_FACTS[:3]}
    others = {
        "hotspot": lambda: _hotspot(facts.places, u, hotspot_units, widespread,
                                    rules.hotspot, n),
        "blacklisted": lambda: _blacklisted(u),
        "overdue_inspection": lambda: piece_facts["overdue_inspection"],
        "late_rectification": lambda: piece_facts["late_rectification"],
    }

    # base interval from the level (missing level: no in-use equipment → the unlevelled one)
    base_by_level = rules.base_months.model_dump()
    level = u["level"].where(u["level"].isin(list(LEVEL_RANK)))
    base = level.map(base_by_level).fillna(rules.base_months.unlevelled).to_numpy(dtype=np.int64)
    base_text = {lv: f"{LEVEL_ZH[lv]}单位基础检查间隔{m}个月" for lv, m in base_by_level.items()
                 if lv in LEVEL_ZH}
    texts = [arrow_text(level.map(base_text).fillna(
        f"未分级（无在用设备）单位基础检查间隔{rules.base_months.unlevelled}个月"))]

    steps = np.zeros(n, dtype=np.int64)
    mask = np.zeros(n, dtype=np.int64)  # bit i set: BOOSTS[i] triggered
    for bit, boost in enumerate(BOOSTS):
        rule = getattr(rules, boost)
        if boost in category:
            detail, fact_steps = category[boost]
        elif boost in others and rule.steps:  # steps 0: switched off
            detail, fact_steps = _fact(others[boost](), rule.steps)
        else:
            continue
        hit = fact_steps > 0
        if not hit.any():
            continue
        steps += fact_steps
        mask |= np.where(hit, 1 << bit, 0)
        texts.append(_reason(rule.reason, arrow_text(np.where(hit, detail, None))))

    ladder = np.asarray(rules.ladder, dtype=np.int64)
    base_rung = np.searchsorted(-ladder, -base)  # the ladder is strictly decreasing
    interval = ladder[np.minimum(base_rung + steps, len(ladder) - 1)]
    boosted = steps > 0

    county, county_u = _factorize(u["county_adcode"])
    d_max = (pd.to_numeric(units.set_index(units["credit_code"].astype("string"))["D_max"]
                           .groupby(level=0).max().reindex(u["credit_code"]), errors="coerce")
             .fillna(0).to_numpy(dtype="float64") if "D_max" in units else np.zeros(n))
    rank_of = level.map(LEVEL_RANK).fillna(0).to_numpy(dtype=np.int64)
    order, priority = priorities(county, rank_of, steps, d_max)
    capped = np.zeros(n, dtype=bool)
    if capacity is not None and n:
        cap = pd.Series(capacity, dtype="float64")
        cap.index = cap.index.astype(str)
        per_county = cap.reindex(pd.Index(county_u, dtype=object).astype(str)).to_numpy()
        capped = fit_capacity(county, order, base, interval,
                              _take(per_county, county, np.nan).astype("float64"))
        interval = np.where(capped, base, interval)
    texts.append(_summary(steps, base, interval, capped.astype(np.int64)))
    # the first text (the base interval) is never null, so no row is all-null
    reasons = pac.binary_join_element_wise(*texts, _scalar("；"), null_handling="skip")
    assert len(reasons) == n
    inverse, distinct = pd.factorize(mask)
    lists = np.asarray([json.dumps([b for i, b in enumerate(BOOSTS) if m >> i & 1])
                        for m in distinct.tolist()], dtype=object)

    today = pd.Timestamp(as_of)
    last = last_checks(checks, as_of).reindex(u["credit_code"]).reset_index(drop=True)
    last = last.astype("datetime64[s]")
    checked = last.notna().to_numpy()
    due = pd.Series(today, index=range(n)).astype("datetime64[s]")
    if rules.spread_first_checks and not checked.all():
        days = spread_first_checks(~checked, county, interval, order)
        due = (due + pd.to_timedelta(days, unit="D")).astype("datetime64[s]")
    if checked.any():
        due[checked] = _add_months(last[checked], interval[checked]).to_numpy()
    due_in = (due - today).dt.days.to_numpy(dtype=np.int64)

    out = pd.DataFrame({
        "credit_code": u["credit_code"], "name": u["name"], "level": u["level"],
        "province_adcode": u["province_adcode"], "city_adcode": u["city_adcode"],
        "county_adcode": u["county_adcode"],
        "base_interval_months": pd.array(base, dtype="Int64"),
        "boost_steps": pd.array(steps, dtype="Int64"),
        "interval_months": pd.array(interval, dtype="Int64"),
        "checks_per_year": 12.0 / interval.astype("float64"),
        "boosts": pd.array(lists[inverse], dtype="string"),
        "reasons": pd.arrays.ArrowStringArray(reasons),
        "last_check_on": last, "next_due": due,
        "due_in_days": pd.array(due_in, dtype="Int64"),
        "check_overdue": pd.array(due_in < 0, dtype="boolean"),
        "boosted": pd.array(boosted, dtype="boolean"),
        "priority": pd.array(priority, dtype="Int64"),
        "interval_capped": pd.array(capped, dtype="boolean"),
    })
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(unit_points(u), crs=4326), crs=4326)


def boosted_units(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The ``frequency`` map layer: units whose check frequency was raised."""
    return frame[frame["boosted"].fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
