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
from scipy.stats import binom, poisson

from layers.aggregate import place_counts
from layers.columns import text
from layers.hotspots import benjamini_hochberg
from layers.scope import ShaanxiScope

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
    counts = place_counts(equipment)
    keep = counts[:, 0] > 0
    return elevator_counts(pd.DataFrame({
        **{col: equipment[col].astype("string").to_numpy()[keep]
           for col in _ADCODE_OF.values()},
        **{c: counts[keep, j].astype(np.int64)
           for j, c in enumerate(("elevators", "insured", "insured_unknown"))}}))


def elevator_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Elevators / insured / insured-unknown per (admin_level, adcode), all three levels,
    of ``rows`` that count them where their adcodes say (a row per elevator, or per place:
    :meth:`layers.aggregate.PlaceSums.frame`)."""
    base = rows[["elevators", "insured", "insured_unknown"]].astype(np.int64).reset_index(
        drop=True)
    parts = []
    for level, col in _ADCODE_OF.items():
        part = base.assign(admin_level=level,
                           adcode=rows[col].astype("string").to_numpy())
        parts.append(part[part["adcode"].notna().to_numpy(dtype=bool)
                          & (part["elevators"] > 0).to_numpy()])
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
    return insurance_from(_elevator_counts(equipment), boundaries, as_of, rules)


def insurance_from(counts: pd.DataFrame, boundaries: gpd.GeoDataFrame, as_of: date,
                   rules: InsuranceRules | None = None) -> gpd.GeoDataFrame:
    """:func:`insurance` from the elevators counted per region (:func:`elevator_counts`)."""
    rules = rules or InsuranceRules()
    b = boundaries.reset_index(drop=True)
    if "level" not in b and "admin_level" in b:
        b = b.rename(columns={"admin_level": "level"})
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

# Rate indicators: Chinese name, the count it divides by the region's in-use pieces, the
# exact test of that count, and the unit a value is written in (1: a share; 1000: per
# 1,000 in-use pieces).
RATE_INDICATORS: dict[str, tuple[str, str, str, float]] = {
    "overdue_rate": ("逾期未检率", "overdue", "binomial", 1.0),
    "open_major_rate": ("每千台在用设备未销号重大隐患数", "open_major_hazards", "poisson",
                        1000.0),
    "late_hazard_rate": ("每千台在用设备逾期未整改隐患数", "late_hazards", "poisson", 1000.0),
}
RateIndicator = Literal["overdue_rate", "open_major_rate", "late_hazard_rate"]
TEST_ZH: dict[str, str] = {"binomial": "单侧精确二项检验", "poisson": "单侧精确泊松检验"}

# Count indicators (threshold rules): Chinese name and the range its values live in.
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
# … a rate rule's template against the reference region, and its province template.
RATE_TEMPLATE_FIELDS: tuple[str, ...] = (
    "name", "indicator_zh", "value", "parent_name", "parent_value", "ratio", "threshold",
    "p_value", "q_value", "p_text", "n", "count", "grade_zh")
ABSOLUTE_TEMPLATE_FIELDS: tuple[str, ...] = (
    "name", "indicator_zh", "value", "threshold", "op", "n", "count", "grade_zh")


def _check_grades(rule_id: str, values: dict[str, float], what: str) -> None:
    """Per-grade values must rise strictly from 提示 to 警示 to 预警."""
    ordered = [values[g] for g in sorted(values, key=GRADE_RANK.get)]
    if (np.diff(ordered) <= 0).any():
        raise ValueError(f"规则 {rule_id}：{what}须按 提示→警示→预警 严格递增")


def _check_format(rule_id: str, template: str, fields: tuple[str, ...], sample: dict) -> None:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    unknown = names - set(fields)
    if unknown:
        raise ValueError(f"规则 {rule_id}：模板含未知占位符 {sorted(unknown)}")
    try:
        template.format(**sample)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"规则 {rule_id}：模板无法格式化（{exc}）") from exc


class IndicatorRule(_Rules):
    """One count indicator with a threshold per warning grade (for indicators that are
    already significance-tested upstream, such as hot cells, or that have a target)."""

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
    _check_format(rule_id, template, TEMPLATE_FIELDS, dict(
        name="某地", indicator_zh="指标", value=0.5, threshold=0.1, op="≥", grade_zh="警示",
        coverage=0.5, target=0.7))


class RateRule(_Rules):
    """One rate indicator judged against the reference region's rate (see
    :class:`WarningRules`): warned when the rate is ``ratios`` times the reference's or more
    AND an exact one-sided test, corrected for the number of regions of the level, finds
    the excess unlikely by chance. A region with no reference (a province) is judged on
    the ``absolute`` rates instead."""

    id: str = Field(min_length=1, description="规则编号（唯一）")
    indicator: RateIndicator = Field(
        description="比率指标：overdue_rate 逾期未检率（逾期未检在用设备/在用设备）；"
                    "open_major_rate 每千台在用设备未销号重大隐患数；late_hazard_rate "
                    "每千台在用设备逾期未整改隐患数（超过整改期限仍未销号）")
    ratios: dict[Grade, float] = Field(
        description="各等级的倍数下限：本地区比率为参照地区（默认全省）比率的多少倍及以上，"
                    "且经显著性检验，才发布该等级；须大于 1 并按 提示→警示→预警 递增")
    min_events: int = Field(
        default=3, ge=1,
        description="发布提示所需的最少事件数（逾期台数或隐患处数）：一两起不成规律")
    absolute: dict[Grade, float] = Field(
        default={},
        description="无上级参照的地区（省）按绝对比率判定的各等级下限（单位同指标："
                    "逾期未检率为比例，隐患为每千台处数）；为空则省级不按此指标发布")
    template: str = Field(
        description="地区对比参照地区的提示语模板，可用占位符：" + "、".join(RATE_TEMPLATE_FIELDS))
    absolute_template: str = Field(
        description="省级按绝对比率的提示语模板，可用占位符："
                    + "、".join(ABSOLUTE_TEMPLATE_FIELDS))

    @model_validator(mode="after")
    def _check(self) -> RateRule:
        if not self.ratios:
            raise ValueError(f"规则 {self.id}：至少设置一个等级的倍数")
        if min(self.ratios.values()) <= 1:
            raise ValueError(f"规则 {self.id}：倍数须大于 1（等于参照比率不算超出）")
        _check_grades(self.id, self.ratios, "倍数")
        if self.absolute:
            if min(self.absolute.values()) <= 0:
                raise ValueError(f"规则 {self.id}：省级绝对比率下限须大于 0")
            if self.indicator == "overdue_rate" and max(self.absolute.values()) > 1:
                raise ValueError(f"规则 {self.id}：逾期未检率下限须在 (0, 1] 之内")
            _check_grades(self.id, self.absolute, "省级绝对比率下限")
        _check_format(self.id, self.template, RATE_TEMPLATE_FIELDS, dict(
            name="某县", indicator_zh="指标", value=0.08, parent_name="全省",
            parent_value=0.02, ratio=4.0, threshold=3.0, p_value=1e-4, q_value=1e-3,
            p_text="p<0.001", n=1234, count=100, grade_zh="预警"))
        _check_format(self.id, self.absolute_template, ABSOLUTE_TEMPLATE_FIELDS, dict(
            name="某省", indicator_zh="指标", value=0.08, threshold=0.05, op="≥", n=1234,
            count=100, grade_zh="警示"))
        return self


def _default_rates() -> tuple[RateRule, ...]:
    bands = {"prompt": 1.5, "caution": 2.0, "alert": 3.0}
    tail = "（{grade_zh}阈值≥{threshold:g}倍，在用{n:,}台、%s，{p_text}）"
    return (
        # Henan plan 二（三） "发现设备逾期未检…及时报告所在地市场监管部门"
        RateRule(id="overdue_rate", indicator="overdue_rate", ratios=bands,
                 absolute={"prompt": 0.03, "caution": 0.05, "alert": 0.10},
                 template="{name}逾期未检率{value:.1%}，为{parent_name}{parent_value:.1%}的"
                          "{ratio:.1f}倍" + tail % "逾期{count:,}台",
                 absolute_template="{name}逾期未检率{value:.1%}（{grade_zh}阈值{op}{threshold:.0%}，"
                                   "在用{n:,}台、逾期{count:,}台）"),
        # Henan plan 二（二） "推动建立…重大隐患挂牌督办制度"
        RateRule(id="open_major_rate", indicator="open_major_rate", ratios=bands,
                 absolute={"prompt": 2.0, "caution": 5.0, "alert": 10.0},
                 template="{name}每千台在用设备未销号重大隐患{value:.1f}处，为{parent_name}"
                          "{parent_value:.1f}处的{ratio:.1f}倍"
                          + tail % "未销号重大隐患{count:,}处",
                 absolute_template="{name}每千台在用设备未销号重大隐患{value:.1f}处（{grade_zh}阈值"
                                   "{op}{threshold:g}处，在用{n:,}台、{count:,}处）"),
        # Henan plan 二（一） "隐患排查、登记、治理、销号的全过程记录和闭环管理"
        RateRule(id="late_hazard_rate", indicator="late_hazard_rate", ratios=bands,
                 absolute={"prompt": 5.0, "caution": 10.0, "alert": 20.0},
                 template="{name}每千台在用设备逾期未整改隐患{value:.1f}处，为{parent_name}"
                          "{parent_value:.1f}处的{ratio:.1f}倍" + tail % "逾期未整改{count:,}处",
                 absolute_template="{name}每千台在用设备逾期未整改隐患{value:.1f}处（{grade_zh}阈值"
                                   "{op}{threshold:g}处，在用{n:,}台、{count:,}处）"),
    )


def _default_rules() -> tuple[IndicatorRule, ...]:
    return (
        # Shaanxi plan 二（五） "电梯保险覆盖率应不低于保有量的40%…55%…70%": a target, so a
        # threshold on the gap (no target in force, no gap, no warning)
        IndicatorRule(id="insurance_shortfall", indicator="insurance_gap",
                      thresholds={"prompt": 0.0, "caution": 0.10, "alert": 0.20},
                      strict=("prompt",),
                      template="{name}电梯责任保险覆盖率{coverage:.1%}，低于年度目标{target:.0%}"
                               "（{grade_zh}阈值：缺口{op}{threshold:.0%}）"),
        # Henan plan 二（二） "对存在区域性或者普遍严重事故隐患的…使用单位，加大监督检查频次".
        # Counts of findings that are significance-tested already (Gi* with an exact Poisson
        # test and FDR for hot cells; a share and a minimum of units for widespread
        # categories), so a count threshold is enough.
        IndicatorRule(id="hot_cells", indicator="hot_cells",
                      thresholds={"prompt": 1, "alert": 3},
                      template="{name}有{value:.0f}个隐患热点网格（经Gi*与精确泊松检验，"
                               "{grade_zh}阈值{op}{threshold:.0f}个）"),
        IndicatorRule(id="regional_clusters", indicator="regional_clusters",
                      thresholds={"caution": 1},
                      template="{name}存在{value:.0f}处区域性隐患聚集（相连的显著热点网格，"
                               "{grade_zh}阈值{op}{threshold:.0f}处）"),
        IndicatorRule(id="widespread_categories", indicator="widespread_categories",
                      thresholds={"caution": 1},
                      template="{name}有{value:.0f}类设备存在普遍性隐患（{grade_zh}阈值"
                               "{op}{threshold:.0f}类）"),
    )


class WarningRules(_Rules):
    """风险提示、警示、预警的指标规则表（陕西省《全省特种设备安全专项整治三年行动实施方案》二（三））.

    ``rates``: rates judged against the reference region with an exact test (size-aware);
    ``rules``: counts with thresholds, for findings already tested upstream or with a
    target."""

    rates: tuple[RateRule, ...] = Field(
        default_factory=_default_rates,
        description="比率规则：地区比率须达到参照地区比率的规定倍数，且经单侧精确检验"
                    "（逾期未检率用二项检验，隐患数用泊松检验）与同级地区的错误发现率校正后"
                    "显著，才发布；等级按倍数分档。省级（无上级）按绝对比率判定")
    reference: Literal["province", "parent"] = Field(
        default="province",
        description="比率的参照地区：province 全省（市、县均与本省比较）；parent 上级"
                    "（县与所在市比较、市与省比较）")
    alpha: float = Field(
        default=0.01, gt=0, lt=1,
        description="显著性水平：校正后 p 值（q 值）不超过此值才认为超出参照比率并非偶然")
    fdr: bool = Field(
        default=True,
        description="是否按 Benjamini–Hochberg 法在同级地区（各县、各市）间控制错误发现率"
                    "（多重检验校正：一百多个县同时检验，偶然显著者须剔除）")
    rules: tuple[IndicatorRule, ...] = Field(
        default_factory=_default_rules,
        description="计数阈值规则：用于已在上游经显著性检验的发现（隐患热点网格、区域性聚集、"
                    "普遍性隐患）和有目标值的指标（电梯责任保险覆盖率）；地区取最高等级")

    @model_validator(mode="after")
    def _unique(self) -> WarningRules:
        ids = [r.id for r in self.rates] + [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("规则编号 id 须唯一（比率规则与计数规则合计）")
        return self


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


def _rolled_long(frame: pd.DataFrame, chain: pd.DataFrame, **values: pd.Series
                 ) -> pd.DataFrame:
    """``frame``'s rows once per level (county, its city, its province: column
    ``admin_level`` and ``adcode``) with ``values`` beside them; rows without a code at a
    level are left out there. The frame's own parents fill what the regions frame lacks."""
    county = frame["county_adcode"].astype("string").reset_index(drop=True)
    vals = {k: pd.Series(v).reset_index(drop=True) for k, v in values.items()}
    up = chain.reindex(county).reset_index(drop=True)
    codes = {"county": county}
    for level in ("city", "province"):
        col = f"{level}_adcode"
        codes[level] = up[col]
        if col in frame:
            codes[level] = codes[level].fillna(frame[col].astype("string").reset_index(drop=True))
    parts = [pd.DataFrame({"admin_level": level, "adcode": c, **vals})
             for level, c in codes.items()]
    return pd.concat(parts, ignore_index=True).dropna(subset=["adcode"])


def _empty_index() -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([[], []], names=["admin_level", "adcode"])


def _rolled_nunique(frame: pd.DataFrame | None, key: pd.Series | None,
                    chain: pd.DataFrame, name: str) -> pd.Series:
    """Distinct ``key`` values per (admin_level, adcode): each county row counts for its
    county, its city and its province (so a cluster across two counties counts once above)."""
    if frame is None or key is None or not len(frame):
        return pd.Series([], index=_empty_index(), dtype="int64", name=name)
    long = _rolled_long(frame, chain, key=key.astype("string")).dropna()
    if not len(long):
        return pd.Series([], index=_empty_index(), dtype="int64", name=name)
    return long.groupby(["admin_level", "adcode"])["key"].nunique().rename(name)


def _rolled_sum(frame: pd.DataFrame | None, column: str, chain: pd.DataFrame) -> pd.Series:
    """Sum of ``frame[column]`` per (admin_level, adcode), each county row counted for its
    county, city and province."""
    if frame is None or column not in frame or "county_adcode" not in frame or not len(frame):
        return pd.Series([], index=_empty_index(), dtype="float64", name=column)
    weight = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("float64")
    keep = (weight > 0).to_numpy(dtype=bool)  # only rows that add something
    long = _rolled_long(frame[keep], chain, w=weight[keep])
    return long.groupby(["admin_level", "adcode"])["w"].sum().rename(column)


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


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()


def _indicator_frame(regions: pd.DataFrame, insurance: pd.DataFrame | None,
                     hotspots: pd.DataFrame | None, widespread: pd.DataFrame | None,
                     equipment: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per region (regions' order) with every whitelisted indicator (NaN = unknown)
    and the counts behind the rates (``equipment`` in use, ``overdue``,
    ``open_major_hazards``, ``late_hazards``)."""
    r = regions
    key = pd.MultiIndex.from_arrays([r["admin_level"].astype("string"),
                                     r["adcode"].astype("string")])
    out = pd.DataFrame(index=range(len(r)))
    for col in ("equipment", "overdue_rate", "overdue", "open_major_hazards"):
        out[col] = _numbers(r, col)
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
    if "late_hazards" in r:  # a regions frame that carries the count
        out["late_hazards"] = _numbers(r, "late_hazards")
    elif equipment is not None and "late_hazards" in equipment:
        late = _rolled_sum(equipment, "late_hazards", chain)
        out["late_hazards"] = late.reindex(key).fillna(0).to_numpy(dtype="float64")
    else:
        out["late_hazards"] = np.nan
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


# --------------------------------------------------------------------------- rate tests

def _reference_rows(regions: pd.DataFrame, reference: str) -> np.ndarray:
    """Row of each region's reference region (its province, or its parent), -1 for none
    (a province, or a parent missing from the frame)."""
    r = regions
    level = r["admin_level"].astype("string")
    adcode = r["adcode"].astype("string")
    if reference == "province" and "province_adcode" in r:
        up_level = pd.Series("province", index=r.index, dtype="string")
        up = r["province_adcode"].astype("string")
    else:
        up_level = level.map({"county": "city", "city": "province"}).astype("string")
        up = (r["parent_adcode"].astype("string") if "parent_adcode" in r
              else pd.Series(pd.NA, index=r.index, dtype="string"))
        if reference == "province":  # no province column: climb the parents
            city_parent = pd.Series(up.to_numpy(), index=pd.MultiIndex.from_arrays(
                [level.to_numpy(), adcode.to_numpy()]))
            city_parent = city_parent[~city_parent.index.duplicated()]
            county = (level == "county").to_numpy(dtype=bool)
            climbed = city_parent.reindex(pd.MultiIndex.from_arrays(
                [np.full(len(r), "city", dtype=object), up.to_numpy()])).to_numpy()
            up = pd.Series(np.where(county, climbed, up.to_numpy()), index=r.index,
                           dtype="string")
            up_level = up_level.where(~county, "province")
    own = pd.MultiIndex.from_arrays([level.to_numpy(), adcode.to_numpy()])
    pos = pd.Series(np.arange(len(r)), index=own)
    pos = pos[~pos.index.duplicated()]
    ref = pos.reindex(pd.MultiIndex.from_arrays([up_level.to_numpy(), up.to_numpy()]))
    ref = ref.fillna(-1).to_numpy(dtype=np.int64)
    return np.where((level == "province").to_numpy(dtype=bool), -1, ref)


def excess_p(count: np.ndarray, n: np.ndarray, rate: np.ndarray, test: str) -> np.ndarray:
    """One-sided p of ``count`` or more events among ``n`` in-use pieces when the true rate
    is the reference ``rate``: binomial (each piece overdue or not) or Poisson (events
    per piece). p = 1 without events; NaN without pieces or reference rate."""
    count = np.asarray(count, dtype="float64")
    n = np.asarray(n, dtype="float64")
    rate = np.asarray(rate, dtype="float64")
    ok = (n > 0) & np.isfinite(rate) & np.isfinite(count)
    p = np.full(len(count), np.nan)
    if not ok.any():
        return p
    k, m, r0 = count[ok], n[ok], np.clip(rate[ok], 0.0, 1.0 if test == "binomial" else None)
    if test == "binomial":
        k = np.minimum(k, m)
        value = binom.sf(k - 1, m.astype(np.int64), r0)
    else:
        value = poisson.sf(k - 1, m * r0)
    p[ok] = np.where(k > 0, value, 1.0)
    return p


def _bh_by_level(p: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q of each p among the regions of its level (NaN not tested)."""
    q = np.full(len(p), np.nan)
    for lv in pd.unique(level):
        mine = level == lv
        q[mine] = benjamini_hochberg(p[mine])
    return q


def _rate_triggers(rule: RateRule, ind: pd.DataFrame, level: np.ndarray, ref: np.ndarray,
                   rules: WarningRules) -> pd.DataFrame:
    """The triggers of one rate rule: regions with a reference by ratio band and test,
    regions without one (provinces) by the absolute rates."""
    name_zh, column, test, scale = RATE_INDICATORS[rule.indicator]
    n = ind["equipment"].to_numpy(dtype="float64")
    count = ind[column].to_numpy(dtype="float64")
    has_n = np.isfinite(n) & (n > 0) & np.isfinite(count)
    rate = np.divide(count, n, out=np.full(len(n), np.nan), where=has_n)
    has_ref = ref >= 0
    ref_rate = np.where(has_ref, rate[np.maximum(ref, 0)], np.nan)
    p = excess_p(count, n, np.where(has_ref, ref_rate, np.nan), test)
    q = _bh_by_level(p, level) if rules.fdr else p
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref_rate > 0, rate / ref_rate, np.where(rate > 0, np.inf, np.nan))
    significant = has_n & has_ref & (q <= rules.alpha) & (count >= rule.min_events)
    rank = np.zeros(len(n), dtype=np.int64)
    threshold = np.full(len(n), np.nan)
    for grade in sorted(rule.ratios, key=GRADE_RANK.get):
        hit = significant & (ratio >= rule.ratios[grade] - 1e-12)
        rank = np.where(hit, GRADE_RANK[grade], rank)
        threshold = np.where(hit, rule.ratios[grade], threshold)
    absolute = np.zeros(len(n), dtype=bool)
    alone = has_n & (level == "province") & (count >= rule.min_events)  # no reference
    for grade in sorted(rule.absolute, key=GRADE_RANK.get):
        t = rule.absolute[grade]
        hit = alone & (rate * scale >= t - 1e-12)
        rank = np.where(hit, GRADE_RANK[grade], rank)
        threshold = np.where(hit, t, threshold)
        absolute |= hit
    rows = np.flatnonzero(rank > 0)
    safe = np.maximum(ref, 0)[rows]
    return pd.DataFrame({
        "row": rows, "rule": rule.id, "indicator": rule.indicator, "kind": "rate",
        "value": rate[rows] * scale, "threshold": threshold[rows], "rank": rank[rows],
        "absolute": absolute[rows], "parent_row": np.where(has_ref[rows], safe, -1),
        "parent_value": ref_rate[rows] * scale, "ratio": ratio[rows], "p_value": p[rows],
        "q_value": q[rows], "n": n[rows], "count": count[rows], "test": test,
        "indicator_zh": name_zh})


def _json_value(value: float) -> float | int | None:
    if not np.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else round(float(value), 6)


def _json_p(value: float) -> float | None:
    """A p-value to four significant digits (small ones stay small)."""
    return float(f"{value:.4g}") if np.isfinite(value) else None


def warnings(regions: pd.DataFrame, insurance: pd.DataFrame | None = None,
             hotspots: pd.DataFrame | None = None, widespread: pd.DataFrame | None = None,
             rules: WarningRules | None = None, *, equipment: pd.DataFrame | None = None
             ) -> gpd.GeoDataFrame:
    """Regions with at least one triggered rule, graded 风险提示/警示/预警.

    Shaanxi plan 二（三）: "开展风险提示、警示、预警及压力测试活动". Rate rules judge a
    region's rate against its reference region's (the province by default): warned when
    the ratio reaches a grade's band AND the exact one-sided test of the region's count
    (binomial for the overdue rate, Poisson for hazards per piece), Benjamini–Hochberg
    corrected over the regions of the level, is significant at ``alpha``; a province is
    judged on absolute rates. Count rules (hot cells, clusters, widespread categories,
    insurance shortfall) keep thresholds; hotspot and widespread counts of a county count
    for its city and province too. A region's grade is the highest over its rules.
    ``equipment`` (graded, with ``late_hazards``; or rows summing them per place,
    :meth:`layers.aggregate.PlaceSums.frame`) gives the late-rectification counts when
    ``regions`` lacks them.
    """
    rules = rules or WarningRules()
    r = regions.reset_index(drop=True)
    if not len(r) or not (rules.rules or rules.rates):
        return _empty_warnings()
    ind = _indicator_frame(r, insurance, hotspots, widespread, equipment)
    level = r["admin_level"].astype("string").fillna("").to_numpy(dtype=object)
    ref = _reference_rows(r, rules.reference)

    parts = []
    for rule in rules.rates:
        trig = _rate_triggers(rule, ind, level, ref, rules)
        if len(trig):
            parts.append(trig.assign(order=len(parts)))
    for rule in rules.rules:
        values = ind[rule.indicator].to_numpy(dtype="float64")
        rank, threshold = _evaluate(values, rule)
        hit = np.flatnonzero(rank > 0)
        if len(hit):
            parts.append(pd.DataFrame({
                "row": hit, "rule": rule.id, "indicator": rule.indicator, "kind": "count",
                "value": values[hit], "threshold": threshold[hit], "rank": rank[hit],
                "indicator_zh": INDICATORS[rule.indicator][0], "order": len(parts)}))
    if not parts:
        return _empty_warnings()
    trig = pd.concat(parts, ignore_index=True).sort_values(["row", "order"], kind="stable")
    by_id = {x.id: x for x in (*rules.rates, *rules.rules)}
    trig["message"] = _messages(trig, r, ind, by_id)
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


def p_text(p: float, q: float | None = None, test: str | None = None) -> str:
    """A p-value as a regulator reads it: "单侧精确二项检验 p<0.001、多重检验校正后q=0.004"."""
    def fmt(name: str, v: float) -> str:
        return f"{name}<0.001" if v < 0.001 else f"{name}={v:.3f}"
    out = (TEST_ZH.get(test, "显著性检验") + " " if test else "") + fmt("p", p)
    if q is not None and np.isfinite(q) and q != p:
        out += "、多重检验校正后" + fmt("q", q)
    return out


def _region_word(regions: pd.DataFrame, row: int, names: np.ndarray) -> str:
    """How a message names a reference region: "全省" for a province, else its name."""
    return "全省" if regions["admin_level"].iat[row] == "province" else str(names[row])


def _messages(trig: pd.DataFrame, regions: pd.DataFrame, ind: pd.DataFrame,
              by_id: dict[str, IndicatorRule | RateRule]) -> list[str]:
    """One Chinese sentence per trigger, from its rule's template (a pass over triggers)."""
    names = regions["name"].astype("string").fillna(regions["adcode"].astype("string"))
    names = names.fillna("").to_numpy(dtype=object)
    cov = ind["coverage"].to_numpy()
    tgt = ind["target"].to_numpy()
    out = []
    for t in trig.to_dict("records"):
        rule = by_id[t["rule"]]
        row = int(t["row"])
        grade = GRADE_BY_RANK[int(t["rank"])]
        if isinstance(rule, RateRule) and t["absolute"]:
            sentence = rule.absolute_template.format(
                name=names[row], indicator_zh=t["indicator_zh"], value=t["value"],
                threshold=t["threshold"], op="≥", n=int(t["n"]), count=int(t["count"]),
                grade_zh=GRADE_ZH[grade])
        elif isinstance(rule, RateRule):
            sentence = rule.template.format(
                name=names[row], indicator_zh=t["indicator_zh"], value=t["value"],
                parent_name=_region_word(regions, int(t["parent_row"]), names),
                parent_value=t["parent_value"], ratio=t["ratio"], threshold=t["threshold"],
                p_value=t["p_value"], q_value=t["q_value"],
                p_text=p_text(t["p_value"], t["q_value"], t["test"]), n=int(t["n"]),
                count=int(t["count"]), grade_zh=GRADE_ZH[grade])
        else:
            sentence = rule.template.format(
                name=names[row], indicator_zh=t["indicator_zh"], value=t["value"],
                threshold=t["threshold"], op=rule.op(grade), grade_zh=GRADE_ZH[grade],
                coverage=cov[row], target=tgt[row])
        out.append(sentence.rstrip("。；;. "))
    return out


def _trigger_json(trig: pd.DataFrame) -> list[str]:
    out = []
    for t in trig.to_dict("records"):
        grade = GRADE_BY_RANK[int(t["rank"])]
        item = {"rule": t["rule"], "indicator": t["indicator"],
                "indicator_zh": t["indicator_zh"], "value": _json_value(t["value"]),
                "threshold": _json_value(t["threshold"]), "grade": grade,
                "grade_zh": GRADE_ZH[grade]}
        if t["kind"] == "rate":
            item.update({
                "basis": "absolute" if t["absolute"] else "ratio",
                "parent_value": _json_value(t["parent_value"]),
                "ratio": _json_value(t["ratio"]), "n": int(t["n"]), "count": int(t["count"]),
                "test": t["test"], "p_value": _json_p(t["p_value"]),
                "q_value": _json_p(t["q_value"])})
        out.append(json.dumps(item, ensure_ascii=False))
    return out


def _empty_warnings() -> gpd.GeoDataFrame:
    cols = {c: pd.Series([], dtype="string") for c in WARNING_COLUMNS if c != "geometry"}
    cols["grade_rank"] = pd.Series([], dtype="Int64")
    cols["trigger_count"] = pd.Series([], dtype="Int64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
