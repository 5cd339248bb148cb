"""Whether each unit's double-prevention system is built (建成), and each region's 建成率.

Henan plan 二（一）: a using unit builds its system to the "五有" standard ("完善的工作推进机制、
全面覆盖的风险辨识分级管控机制、责任明确的隐患排查治理机制、线上线下的智能化信息平台、奖惩分明的
激励约束机制"); 二（四）: "2021年底，在全省特种设备领域全面建成双重预防体系". So:

- a unit's ``build_status`` (:func:`unit_build_status`) comes from its 五有 score (0–5):
  已建成 at ``five_have_min`` or more (default 5, all five), 部分建成 at ``partial_min`` or
  more, 未建成 below, 未评估 when the score is missing;
- a region's 建成率 (:func:`region_build_rates`) is its units built over its units (units
  not assessed count as not built, unless ``unassessed_in_rate`` is false), overall and for
  large/medium and small/micro units apart (small/micro as :func:`layers.small_micro.small_micro`
  says), beside the plan's target and date where a target is in force: Henan's 100% by
  2021-12-31, for 410000 from 2021 (``[[build_status.targets]]``, scoped like every plan
  rule, :mod:`layers.scope`). Elsewhere the rate is shown without a target.

Units are placed in regions exactly as the regions layer counts its ``units``
(:func:`layers.aggregate.region_positions`), so ``units_built <= units`` in every row.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from data.plans import cite
from layers.aggregate import region_positions
from layers.columns import numbers
from layers.scope import Scope

BUILT, PARTIAL, NOT_BUILT, UNASSESSED = "已建成", "部分建成", "未建成", "未评估"
#: the values of ``build_status``, most complete first
BUILD_STATUSES: tuple[str, ...] = (BUILT, PARTIAL, NOT_BUILT, UNASSESSED)

#: the regions layer's 建成率 columns, in order (the yearly report reads them by these names)
BUILD_RATE_COLUMNS: tuple[str, ...] = (
    "units_assessed", "units_built", "units_small_micro", "build_rate",
    "build_rate_large_medium", "build_rate_small_micro", "build_target", "build_target_date")

HENAN_BASIS = cite("henan", "二（四）", "2021年底，在全省特种设备领域全面建成双重预防体系",
                   short=True)


class BuildTarget(Scope):
    """A plan's 建成率 target, in force in its provinces and years (by default Henan's: the
    whole province built by the end of 2021, for 410000 from 2021 on)."""

    provinces: tuple[str, ...] | None = Field(
        ("410000",), description="适用省份（省级行政区划代码）；不写表示全国适用")
    from_year: int | None = Field(2021, ge=2000, le=2100,
                                  description="起始年度（含）；不写表示不限")
    target: float = Field(1.0, gt=0, le=1, description="建成率目标（已建成单位占比，0–1）")
    target_date: date = Field(date(2021, 12, 31), description="目标完成日期（YYYY-MM-DD）")
    basis: str = Field(HENAN_BASIS, min_length=1, max_length=200,
                       description="依据（方案条款原文）")


class BuildStatusRules(BaseModel):
    """双重预防体系建成情况与建成率（豫市监办〔2021〕55号 二（一）“五有”标准、二（四））."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    five_have_min: int = Field(
        5, ge=1, le=5,
        description="“五有”得分达到该分数为已建成（默认 5，即五项全部具备）")
    partial_min: int = Field(
        3, ge=0, le=5,
        description="“五有”得分达到该分数（而未达已建成）为部分建成，低于此为未建成；"
                    "未填写得分的为未评估")
    unassessed_in_rate: bool = Field(
        True,
        description="未评估的单位是否计入建成率分母（计入即视为未建成：未经评估不能认定已建成）")
    targets: tuple[BuildTarget, ...] = Field(
        (BuildTarget(),),
        description="建成率目标及其适用省份、年度（按顺序取第一个适用者）；"
                    "无适用目标的地区只显示建成率")

    @model_validator(mode="after")
    def _ordered(self) -> BuildStatusRules:
        if self.partial_min > self.five_have_min:
            raise ValueError(f"partial_min={self.partial_min} 不能高于 "
                             f"five_have_min={self.five_have_min}")
        return self


def unit_build_status(units: pd.DataFrame, rules: BuildStatusRules) -> pd.Series:
    """Each unit's build status (:data:`BUILD_STATUSES`) from its ``five_have_score``."""
    score = numbers(units, "five_have_score").to_numpy()
    status = np.where(np.isnan(score), UNASSESSED,
                      np.where(score >= rules.five_have_min, BUILT,
                               np.where(score >= rules.partial_min, PARTIAL, NOT_BUILT)))
    return pd.Series(status, dtype="string")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (the rate of no units is unknown, not 0)."""
    out = np.full(len(den), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def region_build_rates(regions: pd.DataFrame, units: pd.DataFrame, status: pd.Series,
                       small: np.ndarray, as_of: date, rules: BuildStatusRules
                       ) -> pd.DataFrame:
    """:data:`BUILD_RATE_COLUMNS` for each row of ``regions`` (the regions layer: adcode,
    admin_level and the parent codes), aligned with it.

    ``status`` and ``small`` are per unit (:func:`unit_build_status`,
    :func:`layers.small_micro.small_micro`). Rates are NaN where a region has no unit of the
    kind; ``build_target``/``build_target_date`` are null where no target is in force in
    the region's province on ``as_of``."""
    st = pd.Series(status, dtype="string").reset_index(drop=True)
    built = (st == BUILT).fillna(False).to_numpy(dtype=bool)
    assessed = (st != UNASSESSED).fillna(False).to_numpy(dtype=bool)
    small = np.asarray(small, dtype=bool)
    counted = np.ones(len(st), dtype=bool) if rules.unassessed_in_rate else assessed
    parts = np.column_stack([assessed, built, small, counted, built & small, counted & small,
                             built & ~small, counted & ~small]).astype(np.float64)
    sums = np.zeros((len(regions), parts.shape[1]))
    if len(st) and len(regions):
        for pos, codes in region_positions(regions, units):
            ok = codes >= 0
            for j in range(parts.shape[1]):
                sums[pos, j] = np.bincount(codes[ok], weights=parts[ok, j], minlength=len(pos))
    adcode = regions["adcode"].astype("string").reset_index(drop=True)
    province = adcode.str.slice(0, 2) + "0000"
    target = np.full(len(regions), np.nan)
    target_date = np.full(len(regions), None, dtype=object)
    for rule in rules.targets:
        hit = rule.mask(province, as_of) & np.isnan(target)
        target[hit] = rule.target
        target_date[hit] = rule.target_date.isoformat()
    return pd.DataFrame({
        "units_assessed": pd.array(np.rint(sums[:, 0]).astype(np.int64), dtype="Int64"),
        "units_built": pd.array(np.rint(sums[:, 1]).astype(np.int64), dtype="Int64"),
        "units_small_micro": pd.array(np.rint(sums[:, 2]).astype(np.int64), dtype="Int64"),
        "build_rate": _ratio(sums[:, 1], sums[:, 3]),
        "build_rate_large_medium": _ratio(sums[:, 6], sums[:, 7]),
        "build_rate_small_micro": _ratio(sums[:, 4], sums[:, 5]),
        "build_target": target,
        "build_target_date": pd.array(target_date, dtype="string"),
    })


def with_build_rates(regions: pd.DataFrame, units: pd.DataFrame, status: pd.Series,
                     small: np.ndarray, as_of: date, rules: BuildStatusRules) -> pd.DataFrame:
    """``regions`` with :data:`BUILD_RATE_COLUMNS` added (replaced if present), before its
    geometry column."""
    rates = region_build_rates(regions, units, status, small, as_of, rules)
    out = regions.drop(columns=[c for c in BUILD_RATE_COLUMNS if c in regions.columns])
    out = out.reset_index(drop=True)
    at = list(out.columns).index("geometry") if "geometry" in out.columns else len(out.columns)
    for i, col in enumerate(BUILD_RATE_COLUMNS):
        out.insert(at + i, col, rates[col].to_numpy() if rates[col].dtype.kind == "f"
                   else rates[col].array)
    return out
