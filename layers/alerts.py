"""Elevator liability-insurance coverage and region warnings (风险提示、警示、预警).

Two region layers for the risk monitoring centre:

* :func:`insurance` — elevator liability-insurance coverage per province, city and county
  against the yearly target of Shaanxi plan 二（五） (40% / 55% / 70% of the elevator stock),
  in Shaanxi for 2020–2022 only (the rule's scope, ``layers/scope.py``).
* :func:`warnings` — the three warning grades of Shaanxi plan 二（三）
  ("开展风险提示、警示、预警及压力测试活动"), raised per region by a regulator-editable table of
  indicator thresholds.
"""

from __future__ import annotations

import json
import string
from datetime import date
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from layers.columns import text
from layers.scope import ShaanxiScope

ELEVATORS = "3000"  # 特种设备目录：电梯
ADMIN_LEVELS: tuple[str, ...] = ("province", "city", "county")
_ADCODE_OF = {"province": "province_adcode", "city": "city_adcode", "county": "county_adcode"}


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- insurance

class InsuranceRules(_Rules, ShaanxiScope):
    """电梯责任保险覆盖率目标（陕西省《全省特种设备安全专项整治三年行动实施方案》二（五））.
    Shaanxi's targets for the plan's years: scoped to 610000, 2020–2022. Elsewhere and
    later a region's coverage is still shown, without a target (and so without a warning)."""

    targets: dict[int, float] = Field(
        default={2020: 0.40, 2021: 0.55, 2022: 0.70},
        description="各年度电梯责任保险覆盖率目标（占电梯保有量的比例），"
                    "依据“2020年…不低于保有量的40%…2021年…55%…2022年…70%”")
    hold_last: bool = Field(
        default=True,
        description="目标表最后一年之后是否沿用最后一年的目标；为 false 时此后不设目标")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("targets 不能为空")
        for year, target in v.items():
            if not 2000 <= year <= 2100:
                raise ValueError(f"年份 {year} 不合理")
            if not 0 < target <= 1:
                raise ValueError(f"{year} 年目标 {target} 须在 (0, 1] 之内")
        return dict(sorted(v.items()))

    def target_for(self, year: int) -> float:
        """The target of ``year``; NaN before the first year (and after the last if not held)."""
        if year in self.targets:
            return self.targets[year]
        years = sorted(self.targets)
        if year > years[-1] and self.hold_last:
            return self.targets[years[-1]]
        if years[0] < year < years[-1]:  # a gap inside the table: the last target before it
            return self.targets[max(y for y in years if y < year)]
        return float("nan")


INSURANCE_COLUMNS: tuple[str, ...] = (
    "adcode", "name", "admin_level", "parent_adcode", "province_adcode", "city_adcode",
    "year", "elevators", "insured", "insured_unknown", "coverage", "target", "gap",
    "meets_target", "geometry")


def _elevator_counts(equipment: pd.DataFrame) -> pd.DataFrame:
    """Elevators / insured / insured-unknown per (admin_level, adcode), all three levels."""
    eq = equipment
    elevator = (eq["top_category"].astype("string") == ELEVATORS).fillna(False)
    in_use = pd.Series(eq["in_use"], dtype="boolean").fillna(False)
    keep = (elevator & in_use).to_numpy(dtype=bool)
    insured = pd.Series(eq["insured"], dtype="boolean")
    base = pd.DataFrame({
        "elevators": np.ones(int(keep.sum()), dtype=np.int64),
        "insured": insured[keep].fillna(False).to_numpy(dtype=np.int64),
        "insured_unknown": insured[keep].isna().to_numpy(dtype=np.int64)})
    parts = []
    for level, col in _ADCODE_OF.items():
        part = base.assign(admin_level=level,
                           adcode=eq.loc[keep, col].astype("string").to_numpy())
        parts.append(part[part["adcode"].notna()])
    long = pd.concat(parts, ignore_index=True)
    return long.groupby(["admin_level", "adcode"], sort=False).sum()


def insurance(equipment: pd.DataFrame, boundaries: gpd.GeoDataFrame, as_of: date,
              rules: InsuranceRules | None = None) -> gpd.GeoDataFrame:
    """Elevator liability-insurance coverage per region against the year's target.

    Shaanxi plan 二（五）: "2020年，重点推进电梯责任保险，电梯保险覆盖率应不低于保有量的40%…".
    Counts in-use elevators (top category 3000); ``insured`` NA counts as not insured and is
    reported in ``insured_unknown``. ``gap`` = target − coverage: > 0 means short of the
    target. Regions without elevators get NA coverage, gap and ``meets_target``.
    """
    rules = rules or InsuranceRules()
    b = boundaries.reset_index(drop=True)
    if "level" not in b and "admin_level" in b:
        b = b.rename(columns={"admin_level": "level"})
    counts = _elevator_counts(equipment)
    key = pd.MultiIndex.from_arrays([b["level"].astype("string"), b["adcode"].astype("string")])
    stats = counts.reindex(key).fillna(0)
    year = pd.Timestamp(as_of).year
    # the year's target only where and when the target rule is in force
    target = np.where(rules.mask(b["province_adcode"], as_of), rules.target_for(year), np.nan)

    elevators = stats["elevators"].to_numpy(dtype=np.int64)
    insured = stats["insured"].to_numpy(dtype=np.int64)
    has = elevators > 0
    coverage = np.where(has, insured / np.maximum(elevators, 1), np.nan)
    # rounded so that e.g. 11/20 against 0.55 reads as "met" rather than a 1e-17 shortfall
    gap = np.round(target - coverage, 12)
    judged = has & np.isfinite(target)
    meets = pd.array(np.where(judged, gap <= 0, False), dtype="boolean")
    meets[~judged] = pd.NA

    out = pd.DataFrame({
        "adcode": b["adcode"].astype("string"), "name": b["name"].astype("string"),
        "admin_level": b["level"].astype("string"),
        "parent_adcode": b["parent_adcode"].astype("string"),
        "province_adcode": b["province_adcode"].astype("string"),
        "city_adcode": b["city_adcode"].astype("string"),
        "year": pd.array(np.full(len(b), year), dtype="Int64"),
        "elevators": pd.array(elevators, dtype="Int64"),
        "insured": pd.array(insured, dtype="Int64"),
        "insured_unknown": pd.array(stats["insured_unknown"].to_numpy(dtype=np.int64),
                                    dtype="Int64"),
        "coverage": coverage.astype("float64"),
        "target": target.astype("float64"),
        "gap": gap.astype("float64"),
        "meets_target": meets})
    return gpd.GeoDataFrame(out, geometry=_geometry_4326(b), crs=4326)


def _geometry_4326(frame: pd.DataFrame) -> gpd.GeoSeries:
    if "geometry" not in frame:
        return gpd.GeoSeries([None] * len(frame), crs=4326)
    geo = gpd.GeoSeries(frame["geometry"]).reset_index(drop=True)
    if geo.crs is None:
        return geo.set_crs(4326)
    return geo.to_crs(4326) if geo.crs.to_epsg() != 4326 else geo


# --------------------------------------------------------------------------- warnings

Grade = Literal["prompt", "caution", "alert"]
GRADE_RANK: dict[str, int] = {"prompt": 1, "caution": 2, "alert": 3}
GRADE_ZH: dict[str, str] = {"prompt": "风险提示", "caution": "警示", "alert": "预警"}
GRADE_BY_RANK: dict[int, str] = {v: k for k, v in GRADE_RANK.items()}

# Indicator whitelist: Chinese name and the range its values (and thresholds) live in.
INDICATORS: dict[str, tuple[str, float, float]] = {
    "overdue_rate": ("逾期未检率", 0.0, 1.0),
    "overdue": ("逾期未检设备数", 0.0, float("inf")),
    "open_major_hazards": ("未销号重大隐患数", 0.0, float("inf")),
    "insurance_gap": ("电梯责任保险覆盖率缺口", -1.0, 1.0),
    "insurance_coverage": ("电梯责任保险覆盖率", 0.0, 1.0),
    "hot_cells": ("隐患热点网格数", 0.0, float("inf")),
    "regional_clusters": ("区域性隐患聚集区数", 0.0, float("inf")),
    "widespread_categories": ("存在普遍性隐患的设备类别数", 0.0, float("inf")),
}
Indicator = Literal["overdue_rate", "overdue", "open_major_hazards", "insurance_gap",
                    "insurance_coverage", "hot_cells", "regional_clusters",
                    "widespread_categories"]
# Placeholders a template may use (each trigger fills them).
TEMPLATE_FIELDS: tuple[str, ...] = ("name", "indicator_zh", "value", "threshold", "op",
                                    "grade_zh", "coverage", "target")


class IndicatorRule(_Rules):
    """One indicator with a threshold per warning grade."""

    id: str = Field(min_length=1, description="规则编号（唯一）")
    indicator: Indicator = Field(description="指标名称（限白名单）")
    direction: Literal["higher", "lower"] = Field(
        default="higher", description="higher：数值越高越严重；lower：数值越低越严重")
    thresholds: dict[Grade, float] = Field(
        description="各等级阈值：prompt 风险提示、caution 警示、alert 预警；未列出的等级不使用")
    strict: tuple[Grade, ...] = Field(
        default=(), description="这些等级按严格不等号比较（> 或 <），其余按 ≥ 或 ≤")
    template: str = Field(
        description="提示语模板（中文），可用占位符：" + "、".join(TEMPLATE_FIELDS))

    @model_validator(mode="after")
    def _check(self) -> IndicatorRule:
        if not self.thresholds:
            raise ValueError(f"规则 {self.id}：至少设置一个等级的阈值")
        _, lo, hi = INDICATORS[self.indicator]
        ordered = [self.thresholds[g] for g in sorted(self.thresholds, key=GRADE_RANK.get)]
        for grade, t in self.thresholds.items():
            if not lo <= t <= hi:
                raise ValueError(f"规则 {self.id}：{grade} 阈值 {t} 超出指标取值范围 [{lo}, {hi}]")
            edge = lo if self.direction == "higher" else hi
            if t == edge and grade not in self.strict:
                raise ValueError(f"规则 {self.id}：{grade} 阈值 {t} 等于指标边界，将对所有地区触发")
        steps = np.diff(ordered) if self.direction == "higher" else -np.diff(ordered)
        if (steps <= 0).any():
            word = "递增" if self.direction == "higher" else "递减"
            raise ValueError(f"规则 {self.id}：阈值须按 提示→警示→预警 严格{word}")
        if not set(self.strict) <= set(self.thresholds):
            raise ValueError(f"规则 {self.id}：strict 中的等级未设置阈值")
        _check_template(self.id, self.template)
        return self

    def op(self, grade: str) -> str:
        strict = grade in self.strict
        if self.direction == "higher":
            return ">" if strict else "≥"
        return "<" if strict else "≤"


def _check_template(rule_id: str, template: str) -> None:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"规则 {rule_id}：模板含未知占位符 {sorted(unknown)}")
    try:
        template.format(name="某地", indicator_zh="指标", value=0.5, threshold=0.1, op="≥",
                        grade_zh="警示", coverage=0.5, target=0.7)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"规则 {rule_id}：模板无法格式化（{exc}）") from exc


def _default_rules() -> tuple[IndicatorRule, ...]:
    return (
        # Henan plan 二（三） "发现设备逾期未检…及时报告所在地市场监管部门"
        IndicatorRule(id="overdue_rate", indicator="overdue_rate",
                      thresholds={"prompt": 0.03, "caution": 0.05, "alert": 0.10},
                      template="{name}在用设备逾期未检率{value:.1%}（{grade_zh}阈值{op}{threshold:.0%}）"),
        # Henan plan 二（二） "推动建立…重大隐患挂牌督办制度"
        IndicatorRule(id="open_major_hazards", indicator="open_major_hazards",
                      thresholds={"prompt": 1, "caution": 3, "alert": 5},
                      template="{name}有{value:.0f}处重大隐患未销号（{grade_zh}阈值{op}{threshold:.0f}处）"),
        # Shaanxi plan 二（五） "电梯保险覆盖率应不低于保有量的40%…55%…70%"
        IndicatorRule(id="insurance_shortfall", indicator="insurance_gap",
                      thresholds={"prompt": 0.0, "caution": 0.10, "alert": 0.20},
                      strict=("prompt",),
                      template="{name}电梯责任保险覆盖率{coverage:.1%}，低于年度目标{target:.0%}"
                               "（{grade_zh}阈值：缺口{op}{threshold:.0%}）"),
        # Henan plan 二（二） "对存在区域性或者普遍严重事故隐患的…使用单位，加大监督检查频次"
        IndicatorRule(id="hot_cells", indicator="hot_cells",
                      thresholds={"prompt": 1, "alert": 3},
                      template="{name}有{value:.0f}个隐患热点网格（{grade_zh}阈值{op}{threshold:.0f}个）"),
        IndicatorRule(id="regional_clusters", indicator="regional_clusters",
                      thresholds={"caution": 1},
                      template="{name}存在{value:.0f}处区域性隐患聚集（{grade_zh}阈值{op}{threshold:.0f}处）"),
        IndicatorRule(id="widespread_categories", indicator="widespread_categories",
                      thresholds={"caution": 1},
                      template="{name}有{value:.0f}类设备存在普遍性隐患（{grade_zh}阈值{op}{threshold:.0f}类）"),
    )


class WarningRules(_Rules):
    """风险提示、警示、预警的指标规则表（陕西省《全省特种设备安全专项整治三年行动实施方案》二（三））."""

    rules: tuple[IndicatorRule, ...] = Field(
        default_factory=_default_rules,
        description="指标规则：每条规则按阈值给出 风险提示/警示/预警，地区取最高等级")

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: tuple[IndicatorRule, ...]) -> tuple[IndicatorRule, ...]:
        ids = [r.id for r in v]
        if len(ids) != len(set(ids)):
            raise ValueError("规则编号 id 须唯一")
        return v


WARNING_COLUMNS: tuple[str, ...] = (
    "adcode", "name", "admin_level", "parent_adcode", "grade", "grade_zh", "grade_rank",
    "trigger_count", "triggers", "message", "geometry")


def _county_chain(regions: pd.DataFrame) -> pd.DataFrame:
    """county_adcode → city_adcode, province_adcode, from the regions frame's county rows."""
    r = regions
    counties = r[r["admin_level"] == "county"]
    if {"city_adcode", "province_adcode"} <= set(r.columns):
        city = counties["city_adcode"].astype("string").to_numpy()
        prov = counties["province_adcode"].astype("string").to_numpy()
    else:  # parent chain: county → city → province
        cities = r[r["admin_level"] == "city"]
        up = pd.Series(cities["parent_adcode"].astype("string").to_numpy(),
                       index=cities["adcode"].astype("string").to_numpy())
        city = counties["parent_adcode"].astype("string").to_numpy()
        prov = up.reindex(city).to_numpy()
    chain = pd.DataFrame({"city_adcode": pd.array(city, dtype="string"),
                          "province_adcode": pd.array(prov, dtype="string")},
                         index=pd.Index(counties["adcode"].astype("string"), name="county"))
    return chain[~chain.index.duplicated()]


def _rolled_nunique(frame: pd.DataFrame | None, key: pd.Series | None,
                    chain: pd.DataFrame, name: str) -> pd.Series:
    """Distinct ``key`` values per (admin_level, adcode): each county row counts for its
    county, its city and its province (so a cluster across two counties counts once above)."""
    idx = pd.MultiIndex.from_arrays([[], []], names=["admin_level", "adcode"])
    if frame is None or key is None or not len(frame):
        return pd.Series([], index=idx, dtype="int64", name=name)
    county = frame["county_adcode"].astype("string").reset_index(drop=True)
    key = key.astype("string").reset_index(drop=True)
    up = chain.reindex(county).reset_index(drop=True)
    codes = {"county": county}
    for level in ("city", "province"):
        col = f"{level}_adcode"
        codes[level] = up[col]
        if col in frame:  # the frame's own parents fill what the regions frame lacks
            codes[level] = codes[level].fillna(frame[col].astype("string").reset_index(drop=True))
    parts = [pd.DataFrame({"admin_level": level, "adcode": c, "key": key})
             for level, c in codes.items()]
    long = pd.concat(parts, ignore_index=True).dropna()
    if not len(long):
        return pd.Series([], index=idx, dtype="int64", name=name)
    return long.groupby(["admin_level", "adcode"])["key"].nunique().rename(name)


def _hotspot_keys(hotspots: pd.DataFrame | None) -> tuple[pd.Series | None, pd.Series | None]:
    """Keys for hot-cell and regional-cluster counts (a regional cell without a cluster id is
    its own cluster)."""
    if hotspots is None or not len(hotspots):
        return None, None
    h = hotspots
    cells = h["h3"].astype("string")
    regional = (pd.Series(h["regional"], dtype="boolean").fillna(False).to_numpy(dtype=bool)
                if "regional" in h else np.zeros(len(h), dtype=bool))
    cluster = (h["cluster_id"].astype("string") if "cluster_id" in h
               else pd.Series(pd.NA, index=h.index, dtype="string"))
    cluster = ("c:" + cluster).fillna("h:" + cells)
    return cells, cluster.where(regional)


def _indicator_frame(regions: pd.DataFrame, insurance: pd.DataFrame | None,
                     hotspots: pd.DataFrame | None, widespread: pd.DataFrame | None
                     ) -> pd.DataFrame:
    """One row per region (regions' order) with every whitelisted indicator (NaN = unknown)."""
    r = regions
    key = pd.MultiIndex.from_arrays([r["admin_level"].astype("string"),
                                     r["adcode"].astype("string")])
    out = pd.DataFrame(index=range(len(r)))
    for col in ("overdue_rate", "overdue", "open_major_hazards"):
        out[col] = (pd.to_numeric(r[col], errors="coerce").astype("float64").to_numpy()
                    if col in r else np.nan)
    if insurance is not None and len(insurance):
        ins = insurance.set_index([insurance["admin_level"].astype("string"),
                                   insurance["adcode"].astype("string")])
        ins = ins[~ins.index.duplicated()].reindex(key)
        out["insurance_gap"] = pd.to_numeric(ins["gap"]).astype("float64").to_numpy()
        out["insurance_coverage"] = pd.to_numeric(ins["coverage"]).astype("float64").to_numpy()
        out["target"] = pd.to_numeric(ins["target"]).astype("float64").to_numpy()
    else:
        out["insurance_gap"] = out["insurance_coverage"] = out["target"] = np.nan
    out["coverage"] = out["insurance_coverage"]

    chain = _county_chain(r)
    cells, clusters = _hotspot_keys(hotspots)
    wide_key = None
    if widespread is not None and len(widespread):
        flag = pd.Series(widespread["widespread"], dtype="boolean").fillna(False)
        wide_key = widespread["top_category"].astype("string").where(flag.to_numpy(dtype=bool))
    for name, frame, k in (("hot_cells", hotspots, cells),
                           ("regional_clusters", hotspots, clusters),
                           ("widespread_categories", widespread, wide_key)):
        counts = _rolled_nunique(frame, k, chain, name)
        out[name] = counts.reindex(key).fillna(0).to_numpy(dtype="float64")
    return out


def _evaluate(values: np.ndarray, rule: IndicatorRule) -> tuple[np.ndarray, np.ndarray]:
    """Highest grade rank reached by each value (0 = none) and that grade's threshold."""
    rank = np.zeros(len(values), dtype=np.int64)
    threshold = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    for grade in sorted(rule.thresholds, key=GRADE_RANK.get):
        t = rule.thresholds[grade]
        strict = grade in rule.strict
        if rule.direction == "higher":
            hit = v > t if strict else v >= t
        else:
            hit = v < t if strict else v <= t
        hit &= finite
        rank = np.where(hit, GRADE_RANK[grade], rank)
        threshold = np.where(hit, t, threshold)
    return rank, threshold


def _json_value(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def warnings(regions: pd.DataFrame, insurance: pd.DataFrame | None = None,
             hotspots: pd.DataFrame | None = None, widespread: pd.DataFrame | None = None,
             rules: WarningRules | None = None) -> gpd.GeoDataFrame:
    """Regions with at least one triggered indicator rule, graded 风险提示/警示/预警.

    Shaanxi plan 二（三）: "开展风险提示、警示、预警及压力测试活动". Each rule gives a region the
    highest grade whose threshold its indicator reaches; the region's grade is the highest over its
    rules. Hotspot and widespread indicators count a county's cells and categories for its
    city and province too.
    """
    rules = rules or WarningRules()
    r = regions.reset_index(drop=True)
    if not len(r) or not rules.rules:
        return _empty_warnings()
    ind = _indicator_frame(r, insurance, hotspots, widespread)

    parts = []
    for rule in rules.rules:
        values = ind[rule.indicator].to_numpy(dtype="float64")
        rank, threshold = _evaluate(values, rule)
        hit = np.flatnonzero(rank > 0)
        if len(hit):
            parts.append(pd.DataFrame({
                "row": hit, "rule": rule.id, "indicator": rule.indicator,
                "value": values[hit], "threshold": threshold[hit], "rank": rank[hit],
                "order": len(parts)}))
    if not parts:
        return _empty_warnings()
    trig = pd.concat(parts, ignore_index=True).sort_values(["row", "order"], kind="stable")
    trig["message"] = _messages(trig, r, ind, {x.id: x for x in rules.rules})
    trig["json"] = _trigger_json(trig)

    g = trig.groupby("row", sort=True)
    rows = g["rank"].max()
    sel = r.loc[rows.index]
    out = pd.DataFrame({c: _strings(sel, c) for c in ("adcode", "name", "admin_level",
                                                       "parent_adcode")})
    out["grade"] = pd.array(rows.map(GRADE_BY_RANK).to_numpy(), dtype="string")
    out["grade_zh"] = out["grade"].map(GRADE_ZH).astype("string")
    out["grade_rank"] = pd.array(rows.to_numpy(), dtype="Int64")
    out["trigger_count"] = pd.array(g.size().to_numpy(), dtype="Int64")
    out["triggers"] = pd.array(("[" + g["json"].agg(",".join) + "]").to_numpy(), dtype="string")
    out["message"] = pd.array((g["message"].agg("；".join) + "。").to_numpy(), dtype="string")
    gdf = gpd.GeoDataFrame(out, geometry=_geometry_4326(sel).to_numpy(), crs=4326)
    level_order = gdf["admin_level"].map({lv: i for i, lv in enumerate(ADMIN_LEVELS)})
    order = np.lexsort((gdf["adcode"].to_numpy(dtype=object), level_order.fillna(9).to_numpy(),
                        -gdf["grade_rank"].to_numpy(dtype=np.int64)))
    return gdf.iloc[order].reset_index(drop=True)


def _strings(frame: pd.DataFrame, name: str) -> pd.arrays.StringArray:
    """A column as a plain string array (all NA when missing)."""
    return pd.array(text(frame, name).to_numpy(dtype=object, na_value=None), dtype="string")


def _messages(trig: pd.DataFrame, regions: pd.DataFrame, ind: pd.DataFrame,
              by_id: dict[str, IndicatorRule]) -> list[str]:
    """One Chinese sentence per trigger, from its rule's template (a pass over triggers)."""
    names = regions["name"].astype("string").fillna(regions["adcode"].astype("string"))
    names = names.fillna("").to_numpy(dtype=object)
    cov = ind["coverage"].to_numpy()
    tgt = ind["target"].to_numpy()
    out = []
    for row, rid, value, threshold, rank in zip(
            trig["row"].to_numpy(), trig["rule"].to_numpy(), trig["value"].to_numpy(),
            trig["threshold"].to_numpy(), trig["rank"].to_numpy(), strict=True):
        rule = by_id[rid]
        grade = GRADE_BY_RANK[int(rank)]
        sentence = rule.template.format(
            name=names[row], indicator_zh=INDICATORS[rule.indicator][0], value=value,
            threshold=threshold, op=rule.op(grade), grade_zh=GRADE_ZH[grade],
            coverage=cov[row], target=tgt[row])
        out.append(sentence.rstrip("。；;. "))
    return out


def _trigger_json(trig: pd.DataFrame) -> list[str]:
    out = []
    for rid, ind, v, t, k in zip(trig["rule"], trig["indicator"], trig["value"],
                                 trig["threshold"], trig["rank"], strict=True):
        grade = GRADE_BY_RANK[int(k)]
        out.append(json.dumps({
            "rule": rid, "indicator": ind, "indicator_zh": INDICATORS[ind][0],
            "value": _json_value(v), "threshold": _json_value(t), "grade": grade,
            "grade_zh": GRADE_ZH[grade]}, ensure_ascii=False))
    return out


def _empty_warnings() -> gpd.GeoDataFrame:
    cols = {c: pd.Series([], dtype="string") for c in WARNING_COLUMNS if c != "geometry"}
    cols["grade_rank"] = pd.Series([], dtype="Int64")
    cols["trigger_count"] = pd.Series([], dtype="Int64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
