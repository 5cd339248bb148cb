"""Demonstration pilot enterprises per city and equipment category (示范试点企业).

Henan plan 二（四）: "强化示范企业引领带动作用，每个地市按照每类特种设备分别建立 1 至 2 家
示范试点企业，优选示范、精心培育、观摩交流，为同地区同行业提供参考"; Shaanxi plan 四（二）:
"培育一批示范单位，发挥示范表率作用". A unit qualifies by explicit criteria (each can be
switched off), qualified units are ranked transparently, and the city × category cells
where nobody qualifies are reported as a gap, with why the candidates failed.

Demonstration enterprises are enterprises: a candidate's unified social credit code
(GB 32100) must start with a registration authority of ``registration_authorities``
(default 9, 工商/市场监管 — enterprises); a court (11…), a school (12…) or a social
organisation (52…) holds equipment but does not become a demonstration enterprise, and the
coverage counts only eligible candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from data.catalogue import TOP_CATEGORIES, check_top_codes
from layers.columns import column, numbers
from layers.frames import ELEVATORS
from layers.frequency import Pieces, positions, unit_frame, unit_points

#: GB 32100-2015 登记管理部门代码, the first character of a unified social credit code.
REGISTRATION_AUTHORITIES: dict[str, str] = {
    "1": "机构编制", "2": "外交", "3": "司法行政", "4": "文化", "5": "民政", "6": "旅游",
    "7": "宗教", "8": "工会", "9": "工商（市场监管）", "A": "中央军委改革和编制办公室",
    "N": "农业", "Y": "其他"}


class DemonstrationRules(BaseModel):
    """示范试点企业: how many per city × category, the criteria and how candidates are ranked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_per_city_category: int = Field(
        2, ge=1, le=2, description="每个地市每类特种设备选取的示范试点企业数（1 至 2 家）")
    require_no_accident: bool = Field(
        True, description="条件：近三年未发生事故（accidents_3y 为 0）")
    require_no_open_hazard: bool = Field(True, description="条件：全单位无未销号隐患")
    require_nothing_overdue: bool = Field(True, description="条件：全单位无逾期未检设备")
    require_five_have: bool = Field(True, description="条件：双重预防“五有”标准达标")
    five_have_min: int = Field(
        5, ge=0, le=5, description="“五有”得分须不低于此值（5 即五个标准全部达到）")
    require_elevators_insured: bool = Field(
        True, description="条件：在用电梯全部投保责任保险（无电梯的单位视为满足）")
    require_not_blacklisted: bool = Field(True, description="条件：未列入黑名单")
    checks_window_years: int = Field(3, ge=1, le=10, description="统计监督检查通过次数的年数")
    pass_words: tuple[str, ...] = Field(
        ("合格", "通过", "未发现", "符合"), min_length=1,
        description="检查结论含其中任一词即为通过（且不含否定词）")
    fail_words: tuple[str, ...] = Field(
        ("不合格", "未通过", "不通过", "不符合"), description="检查结论含其中任一词即不算通过")
    exclude_categories: tuple[str, ...] = Field(
        ("7000", "F000"),
        description="不单独选示范企业的设备种类（压力管道元件为产品，安全附件随所属设备）")
    registration_authorities: tuple[str, ...] = Field(
        ("9",), min_length=1,
        description="可作候选的统一社会信用代码登记管理部门代码（代码第1位）：9 为工商（市场监管）"
        "登记的企业；1 机构编制（机关、事业单位）、5 民政（社会组织）等不是企业，不参选")

    @field_validator("pass_words", "fail_words")
    @classmethod
    def _words(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not w.strip() for w in v):
            raise ValueError("检查结论关键词不能为空")
        return v

    @field_validator("exclude_categories")
    @classmethod
    def _tops(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_top_codes(v)

    @field_validator("registration_authorities")
    @classmethod
    def _authorities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in v if c not in REGISTRATION_AUTHORITIES]
        if unknown:
            known = "、".join(REGISTRATION_AUTHORITIES)
            raise ValueError(f"{unknown} 不是登记管理部门代码（{known}）")
        return v


def eligible(credit_codes: pd.Series, rules: DemonstrationRules) -> np.ndarray:
    """Units that may be demonstration enterprises: the first character of the credit code
    (its 登记管理部门代码) is one of ``registration_authorities`` (default 9: enterprises)."""
    first = pd.Series(credit_codes, dtype="string").str.strip().str.slice(0, 1).str.upper()
    return first.isin(list(rules.registration_authorities)).fillna(False).to_numpy(dtype=bool)


# (id, rule switch, met, failed, data missing) in the order they are reported. Sources:
# accidents and blacklist — Henan plan 二（二） "建立失信惩戒和守信激励制度，对发生特种设备事故、
# 存在重大隐患整改不力的使用单位，列入黑名单"; hazards — Henan plan 二（一） "隐患排查、登记、
# 治理、销号的全过程记录和闭环管理"; overdue — Henan plan 二（三） "发现设备逾期未检…及时报告";
# 五有 — Henan plan 二（一） "五个标准（简称“五有”标准）"; elevator insurance — Shaanxi
# plan 二（五） "重点推进电梯责任保险".
CRITERIA: tuple[tuple[str, str, str, str, str], ...] = (
    ("no_accident", "require_no_accident", "近三年无事故", "近三年发生过事故",
     "近三年事故数据缺失"),
    ("no_open_hazard", "require_no_open_hazard", "无未销号隐患", "有未销号隐患", "隐患数据缺失"),
    ("nothing_overdue", "require_nothing_overdue", "无逾期未检设备", "逾期未检", "检验数据缺失"),
    ("five_have", "require_five_have", "五有标准达标", "五有未达标", "五有评分缺失"),
    ("elevators_insured", "require_elevators_insured", "在用电梯全部投保", "在用电梯未全部投保",
     "电梯投保情况不明"),
    ("not_blacklisted", "require_not_blacklisted", "未列入黑名单", "列入黑名单", "黑名单状态不明"),
)

CHOSEN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("city_adcode", "string"), ("top_category", "string"), ("category_name", "string"),
    ("credit_code", "string"), ("name", "string"), ("industry", "string"), ("rank", "Int64"),
    ("equipment_in_category", "Int64"), ("passed_checks_3y", "Int64"), ("reasons", "string"))
COVERAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("city_adcode", "string"), ("top_category", "string"), ("category_name", "string"),
    ("candidates", "Int64"), ("qualified", "Int64"), ("chosen", "Int64"), ("gap", "boolean"),
    ("failed_counts", "string"))


def passed_check(result: pd.Series, rules: DemonstrationRules) -> np.ndarray:
    """A check with a passing result: a pass word (合格/通过/未发现/符合) and no fail word
    (不合格/未通过/不通过/不符合); "责令整改", "立案调查" and blanks do not pass."""
    r = pd.Series(result, dtype="string")
    ok = np.zeros(len(r), dtype=bool)
    for word in rules.pass_words:
        ok |= r.str.contains(word, regex=False).fillna(False).to_numpy(dtype=bool)
    for word in rules.fail_words:
        ok &= ~r.str.contains(word, regex=False).fillna(False).to_numpy(dtype=bool)
    return ok


def passed_checks(checks: pd.DataFrame | None, units: pd.DataFrame, as_of: date,
                  rules: DemonstrationRules) -> np.ndarray:
    """Per unit (in ``units`` order): supervision checks passed in the window ending at as_of."""
    count = np.zeros(len(units), dtype=np.int64)
    if checks is None or checks.empty:
        return count
    on = pd.to_datetime(checks["checked_on"])
    end = pd.Timestamp(as_of)
    start = end - pd.DateOffset(years=rules.checks_window_years)
    keep = ((on > start) & (on <= end)).fillna(False).to_numpy(dtype=bool) & passed_check(
        checks["result"], rules)
    where = positions(checks["credit_code"][keep], units["credit_code"])
    where = where[where >= 0]
    return np.bincount(where, minlength=len(units)).astype(np.int64)


def criteria(units: pd.DataFrame, elevators: np.ndarray, rules: DemonstrationRules
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per criterion: (met, data missing) per unit; a unit with missing data never meets it.
    ``elevators``: per unit, its in-use elevators, insured and of unknown insurance (n × 3,
    :func:`_elevator_counts`)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for cid, col in (("no_accident", "accidents_3y"), ("no_open_hazard", "open_hazards"),
                     ("nothing_overdue", "overdue_count")):
        v = numbers(units, col)
        out[cid] = ((v == 0).fillna(False).to_numpy(dtype=bool), v.isna().to_numpy())
    five = numbers(units, "five_have_score")
    out["five_have"] = ((five >= rules.five_have_min).fillna(False).to_numpy(dtype=bool),
                        five.isna().to_numpy())
    # elevators: every in-use elevator insured; a unit without elevators passes
    total, insured, unknown = elevators.T
    refused = total - insured - unknown
    out["elevators_insured"] = (insured == total, (unknown > 0) & (refused == 0))
    black = column(units, "blacklisted", "boolean")
    out["not_blacklisted"] = ((~black).fillna(False).to_numpy(dtype=bool),
                              black.isna().to_numpy())
    return out


def _enabled(rules: DemonstrationRules) -> list[tuple[str, str, str, str]]:
    return [(cid, met, failed, missing) for cid, switch, met, failed, missing in CRITERIA
            if getattr(rules, switch)]


def _empty() -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    chosen = pd.DataFrame({c: pd.Series(dtype=t) for c, t in CHOSEN_COLUMNS})
    coverage = pd.DataFrame({c: pd.Series(dtype=t) for c, t in COVERAGE_COLUMNS})
    return gpd.GeoDataFrame(chosen, geometry=gpd.GeoSeries([], crs=4326), crs=4326), coverage


def _candidates(pieces: Pieces, units: pd.DataFrame, rules: DemonstrationRules
                ) -> pd.DataFrame:
    """One row per city × top category × unit holding in-use equipment of it there.

    The city is the piece's own city_adcode, else its unit's; pieces placed in no city
    cannot be counted for any city and are left out."""
    n = len(units)
    city, city_u = pieces.city, pieces.city_u
    tops = pieces.top_u[np.maximum(pieces.top, 0)] if len(pieces.top_u) else np.zeros(0)
    keep = (pieces.pos >= 0) & (city >= 0) & (pieces.top >= 0) & ~np.isin(
        tops, list(rules.exclude_categories))
    stride_top = max(len(pieces.top_u), 1)
    group = city[keep] * stride_top + pieces.top[keep]
    key, count = np.unique(group * n + pieces.pos[keep], return_counts=True)
    g = key // n
    return pd.DataFrame({
        "g": g, "pos": key % n,
        "city_adcode": pd.array(city_u[g // stride_top], dtype="string"),
        "top_category": pd.array(pieces.top_u[g % stride_top], dtype="string"),
        "equipment_in_category": count.astype(np.int64),
    })


def _select(cand: pd.DataFrame, max_per: int) -> pd.DataFrame:
    """Qualified candidates ordered; rank 1 the best, rank 2 the best of another industry
    (Henan plan 二（四） "优选示范…为同地区同行业提供参考": the most equipment of the category,
    the cleanest supervision record, and a second industry where one qualifies).

    Order: in-use equipment of the category desc, passed checks desc, credit code asc (units
    are sorted by credit code, so by position)."""
    q = cand[cand["qualified"]].copy()
    q = q.iloc[np.lexsort((q["pos"].to_numpy(), -q["passed_checks_3y"].to_numpy(),
                           -q["equipment_in_category"].to_numpy(), q["g"].to_numpy()))]
    q["order"] = q.groupby("g").cumcount() + 1
    q["of"] = q.groupby("g")["pos"].transform("size")
    first = q[q["order"] == 1].assign(rank=1, other_industry=False)
    if max_per == 1:
        return first
    rest = q[q["order"] > 1]
    lead = first.set_index("g")["industry"]
    lead_ind = lead.reindex(rest["g"]).to_numpy(dtype=object, na_value=None)
    ind = rest["industry"].to_numpy(dtype=object, na_value=None)
    other = ~pd.isna(ind) & ~pd.isna(lead_ind) & (ind != lead_ind)
    rest = rest.assign(other_industry=other)
    pick_other = rest[rest["other_industry"]].groupby("g").head(1)
    fallback = rest[~rest["g"].isin(pick_other["g"])].groupby("g").head(1)
    second = pd.concat([pick_other, fallback]).assign(rank=2)
    return pd.concat([first, second], ignore_index=True)


_UNIT_COLUMNS = ("name", "industry", "city_adcode", "county_adcode")


@dataclass(frozen=True)
class UnitPieces:
    """What the demonstration picks read of the in-use pieces, per unit (by credit code):
    ``candidates``, its pieces per city × top category (``city_adcode``,
    ``top_category``, ``credit_code``, ``equipment_in_category``), and ``elevators``, its
    in-use elevators, insured and of unknown insurance (``credit_code``, ``total``,
    ``insured``, ``unknown``; units with elevators). A unit's rows come from its own pieces
    only, so parts keeping each unit's pieces together (the Dask build's partitions)
    concatenate into the whole's (:meth:`joined`)."""

    candidates: pd.DataFrame
    elevators: pd.DataFrame

    @classmethod
    def of(cls, units: pd.DataFrame, equipment: pd.DataFrame, rules: DemonstrationRules
           ) -> UnitPieces:
        """The pieces of ``equipment`` (graded) per unit of ``units`` (graded)."""
        u = unit_frame(units, _UNIT_COLUMNS)
        pieces = Pieces(equipment, u)
        cand = _candidates(pieces, u, rules)
        code = u["credit_code"].to_numpy(dtype=object)
        counts = _elevator_counts(pieces, len(u))
        has = np.flatnonzero(counts[:, 0] > 0)
        return cls(pd.DataFrame({
            "city_adcode": cand["city_adcode"], "top_category": cand["top_category"],
            "credit_code": pd.array(code[cand["pos"].to_numpy()], dtype="string"),
            "equipment_in_category": cand["equipment_in_category"]}),
            pd.DataFrame({"credit_code": pd.array(code[has], dtype="string"),
                          **{c: counts[has, j] for j, c in enumerate(
                              ("total", "insured", "unknown"))}}))

    @classmethod
    def joined(cls, parts: list[UnitPieces]) -> UnitPieces:
        """The pieces of all ``parts`` (each unit's pieces in one part)."""
        return cls(pd.concat([p.candidates for p in parts], ignore_index=True),
                   pd.concat([p.elevators for p in parts], ignore_index=True))


def _elevator_counts(pieces: Pieces, n: int) -> np.ndarray:
    """Per unit position (n × 3): in-use elevators, insured, of unknown insurance."""
    elevator = pieces.matches(ELEVATORS) & (pieces.pos >= 0)
    at = pieces.pos[elevator]
    return np.column_stack([np.bincount(at, minlength=n),
                            np.bincount(at[pieces.insured[elevator]], minlength=n),
                            np.bincount(at[pieces.insured_na[elevator]], minlength=n)])


def demonstration(units: pd.DataFrame, equipment: pd.DataFrame, checks: pd.DataFrame,
                  as_of: date, rules: DemonstrationRules | None = None
                  ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """(chosen demonstration enterprises, coverage per city × top category with gaps)."""
    rules = rules or DemonstrationRules()
    return demonstration_from(UnitPieces.of(units, equipment, rules), units, checks, as_of,
                              rules)


def demonstration_from(pieces: UnitPieces, units: pd.DataFrame, checks: pd.DataFrame,
                       as_of: date, rules: DemonstrationRules | None = None
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """:func:`demonstration` from the in-use pieces per unit (:class:`UnitPieces`)."""
    rules = rules or DemonstrationRules()
    u = unit_frame(units, _UNIT_COLUMNS)
    if u.empty:
        return _empty()
    n = len(u)
    cand = _placed_candidates(pieces.candidates, u)
    if cand.empty:
        return _empty()
    elevators = np.zeros((n, 3), dtype=np.int64)
    at = positions(pieces.elevators["credit_code"], u["credit_code"])
    elevators[at[at >= 0]] = pieces.elevators[["total", "insured", "unknown"]].to_numpy(
        dtype=np.int64)[at >= 0]

    met = criteria(u, elevators, rules)
    enabled = _enabled(rules)
    qualified = np.ones(n, dtype=bool)
    for cid, *_ in enabled:
        qualified &= met[cid][0]
    passed = passed_checks(checks, u, as_of, rules)
    pos = cand["pos"].to_numpy()
    enterprise = eligible(u["credit_code"], rules)
    cand["eligible"] = enterprise[pos]
    cand["qualified"] = qualified[pos] & enterprise[pos]
    cand["passed_checks_3y"] = passed[pos]
    cand["industry"] = u["industry"].to_numpy(dtype=object, na_value=None)[pos]

    picked = _select(cand, rules.max_per_city_category)
    chosen = _chosen_frame(picked, u, elevators[:, 0], enabled, rules)
    coverage = _coverage(cand, picked, met, enabled, rules)
    return chosen, coverage


def _placed_candidates(rows: pd.DataFrame, u: pd.DataFrame) -> pd.DataFrame:
    """The candidate rows with ``pos`` (the unit's position in ``u``) and ``g`` (the city ×
    category group, numbered in sorted order), ordered by group then unit."""
    pos = positions(rows["credit_code"], u["credit_code"])
    rows = rows[pos >= 0].assign(pos=pos[pos >= 0])
    city, _ = pd.factorize(rows["city_adcode"].astype("string"), sort=True)
    top, tops = pd.factorize(rows["top_category"].astype("string"), sort=True)
    g = city.astype(np.int64) * max(len(tops), 1) + top
    out = rows.assign(g=g).iloc[np.lexsort((rows["pos"].to_numpy(), g))]
    return out[["g", "pos", "city_adcode", "top_category", "equipment_in_category"]
               ].reset_index(drop=True)


def _text(values: pd.Series) -> np.ndarray:
    return np.asarray(values).astype(str).astype(object)


def _chosen_frame(picked: pd.DataFrame, u: pd.DataFrame, elevators: np.ndarray,
                  enabled: list[tuple[str, str, str, str]],
                  rules: DemonstrationRules) -> gpd.GeoDataFrame:
    if picked.empty:
        return _empty()[0]
    picked = picked.sort_values(["city_adcode", "top_category", "rank"]).reset_index(drop=True)
    pos = picked["pos"].to_numpy()
    years = rules.checks_window_years
    met_text = np.full(len(picked), "符合示范条件：", dtype=object)
    for i, (cid, label, *_) in enumerate(enabled):
        sep = "、" if i else ""
        if cid == "five_have":
            met_text = met_text + sep + f"{label}（不低于{rules.five_have_min}分）"
        elif cid == "elevators_insured":
            none = elevators[pos] == 0
            met_text = met_text + sep + np.where(none, "无在用电梯（不涉及投保）", label)
        else:
            met_text = met_text + sep + label
    if not enabled:
        met_text = np.full(len(picked), "未设示范条件", dtype=object)
    first = u["credit_code"].iloc[pos].str.slice(0, 1).str.upper()
    kind = ("企业（统一社会信用代码登记管理部门代码" + first + "："
            + first.map(REGISTRATION_AUTHORITIES).fillna("未知") + "）；")
    met_text = kind.to_numpy(dtype=object) + met_text
    ranked = ("；排序依据：本市该类在用设备" + _text(picked["equipment_in_category"]) + "台、近"
              + str(years) + "年监督检查通过" + _text(picked["passed_checks_3y"]) + "次，在"
              + _text(picked["of"]) + "家符合条件的企业中居第" + _text(picked["order"]) + "位")
    second = picked["rank"].to_numpy() == 2
    other = picked["other_industry"].to_numpy(dtype=bool)
    tail = np.where(second & other, "；与第1家行业不同，优先选取",
                    np.where(second, "；无其他行业的符合条件企业，按排序递补", ""))
    names = picked["top_category"].map(TOP_CATEGORIES).fillna(picked["top_category"])
    out = pd.DataFrame({
        "city_adcode": picked["city_adcode"].astype("string"),
        "top_category": picked["top_category"].astype("string"),
        "category_name": names.astype("string"),
        "credit_code": u["credit_code"].to_numpy()[pos],
        "name": u["name"].to_numpy()[pos], "industry": u["industry"].to_numpy()[pos],
        "rank": pd.array(picked["rank"].to_numpy(), dtype="Int64"),
        "equipment_in_category": pd.array(picked["equipment_in_category"], dtype="Int64"),
        "passed_checks_3y": pd.array(picked["passed_checks_3y"], dtype="Int64"),
        "reasons": pd.array(met_text + ranked + tail, dtype="string"),
    })
    for col in ("credit_code", "name", "industry"):
        out[col] = out[col].astype("string")
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(unit_points(u.iloc[pos]), crs=4326),
                            crs=4326)


def _coverage(cand: pd.DataFrame, picked: pd.DataFrame,
              met: dict[str, tuple[np.ndarray, np.ndarray]],
              enabled: list[tuple[str, str, str, str]],
              rules: DemonstrationRules) -> pd.DataFrame:
    """Per city × category with in-use equipment: the eligible candidates (enterprises),
    qualified and chosen, a gap where none qualifies, and why the candidates failed (the
    units not eligible are named apart, never counted as candidates)."""
    groups = cand.drop_duplicates("g").set_index("g")[["city_adcode", "top_category"]]
    gi = pd.Index(groups.index).get_indexer(cand["g"])
    m = len(groups)
    pos = cand["pos"].to_numpy()
    elig = cand["eligible"].to_numpy(dtype=bool)
    text = np.full(m, "", dtype=object)
    others = ("不参选的非企业使用单位（统一社会信用代码首位不是"
              + "、".join(rules.registration_authorities) + "）")
    rows: list[tuple[str, np.ndarray]] = []
    for cid, _met, failed, missing in enabled:
        ok, na = met[cid]
        rows += [(failed, ~ok[pos] & ~na[pos] & elig), (missing, na[pos] & elig)]
    rows.append((others, ~elig))
    for label, hit in rows:
        count = np.bincount(gi[hit], minlength=m)
        piece = np.where(count > 0, label + " " + count.astype(str).astype(object) + "家", "")
        sep = np.where((text != "") & (piece != ""), "；", "")
        text = text + sep + piece
    text = np.where(text == "", "无", text)
    qualified = np.bincount(gi[cand["qualified"].to_numpy(dtype=bool)], minlength=m)
    chosen = np.bincount(pd.Index(groups.index).get_indexer(picked["g"]), minlength=m) if len(
        picked) else np.zeros(m, dtype=np.int64)
    out = pd.DataFrame({
        "city_adcode": groups["city_adcode"].astype("string").to_numpy(),
        "top_category": groups["top_category"].astype("string").to_numpy(),
        "category_name": groups["top_category"].map(TOP_CATEGORIES).fillna(
            groups["top_category"]).to_numpy(),
        "candidates": pd.array(np.bincount(gi[elig], minlength=m), dtype="Int64"),
        "qualified": pd.array(qualified, dtype="Int64"),
        "chosen": pd.array(chosen, dtype="Int64"),
        "gap": pd.array(qualified == 0, dtype="boolean"),
        "failed_counts": pd.array(text, dtype="string"),
    })
    for col in ("city_adcode", "top_category", "category_name"):
        out[col] = out[col].astype("string")
    return out.sort_values(["city_adcode", "top_category"]).reset_index(drop=True)
