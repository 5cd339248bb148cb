"""Risk grading (安全风险分级管控) of equipment and using units by the LEC method.

D = L × E × C (作业条件危险性分析法, domain.md "Risk grading methods used in practice"):
C (consequence) from the equipment's category and class (固定式压力容器 by its TSG 21 class),
E (exposure, as the LEC table means it: how often people are near the hazard) from the
category's normal use, raised by a crowded venue, a park or the registered use place
(使用场所), L (likelihood) from its age, inspection record, open hazards and its unit. C and
E rules name catalogue codes and the most specific one wins; each value is on the LEC scale
and its reason begins with the table's descriptor (非常严重，一人死亡 …). Each factor is a
rule of :class:`RiskRules`; the value that wins is the largest triggered one, and the
rule that set it is kept beside it, so a popup can say why (``L_reason`` …). D is banded
in the five customary LEC bands and each band maps onto one of the four colour levels.
An open major hazard makes the piece red whatever D says (重大隐患挂牌督办, Henan plan 二（二）).
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.catalogue import load_catalogue
from data.plans import LEC_C, LEC_C_TABLE, LEC_E, LEC_E_TABLE, TSG_21
from layers.columns import in_use_status
from layers.frames import (
    LEVEL_BY_RANK,
    LEVEL_RANK,
    LEVEL_ZH,
    MAJOR_HAZARD,
    OPEN_HAZARD_STATUS,
    top_category,
)

Level = Literal["red", "orange", "yellow", "blue"]
_L_SCALE = (0.1, 0.2, 0.5, 1, 3, 6, 10)   # customary LEC values
_E_SCALE = (0.5, 1, 2, 3, 6, 10)
_C_SCALE = (1, 3, 7, 15, 40, 100)


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _on_scale(value: float, scale: tuple[float, ...], name: str) -> float:
    if value not in scale:
        raise ValueError(f"{name} 取值 {value} 不在 LEC 标度 {list(scale)} 内")
    return value


@cache
def _catalogue() -> tuple[dict[str, str | None], dict[str, str]]:
    """(catalogue code -> parent code, code -> name) of the 特种设备目录."""
    cat = load_catalogue()
    parent = cat["parent_code"].astype(object).where(cat["parent_code"].notna(), None)
    return (dict(zip(cat["code"], parent, strict=True)),
            dict(zip(cat["code"], cat["name"], strict=True)))


def _catalogue_code(code: str) -> str:
    written = code.strip().upper()
    if written not in _catalogue()[0]:
        raise ValueError(f"{code!r} 不是特种设备目录中的代码（种类、类别或品种，如 2130、5100）")
    return written


def _unique_codes(rules: tuple) -> tuple:
    codes = [r.code for r in rules]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise ValueError(f"目录代码 {'、'.join(twice)} 出现了不止一次")
    return rules


class Band(_Rules):
    name: str = Field(description="LEC 危险程度名称，如 极其危险")
    min: float = Field(ge=0, description="D 值下限（含）")
    level: Level = Field(description="对应的四色风险等级")


class CategoryValue(_Rules):
    """A C value for a catalogue entry and everything under it (the most specific wins)."""

    code: str = Field(description="特种设备目录代码（种类、类别或品种），含其下级；最具体者优先")
    value: float = Field(description="C 值（LEC 标度 1、3、7、15、40、100）")
    reason: str = Field(description="说明：该值所代表的事故后果")
    basis: str = Field("", description="分类依据（如 TSG 21-2016 压力容器分类），无则留空")

    @field_validator("value")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _C_SCALE, "C")

    @field_validator("code")
    @classmethod
    def _known(cls, v: str) -> str:
        return _catalogue_code(v)


class ExposureValue(_Rules):
    """An E value for a catalogue entry and everything under it (the most specific wins)."""

    code: str = Field(description="特种设备目录代码（种类、类别或品种），含其下级；最具体者优先")
    value: float = Field(description="E 值（LEC 标度 0.5、1、2、3、6、10）")
    reason: str = Field(description="说明：正常使用中人员多久接近一次")

    @field_validator("value")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _E_SCALE, "E")

    @field_validator("code")
    @classmethod
    def _known(cls, v: str) -> str:
        return _catalogue_code(v)


class VisitorBand(_Rules):
    min_visitors: int = Field(ge=0, description="场所日均客流下限（含）")
    value: float = Field(description="E 值")
    reason: str

    @field_validator("value")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _E_SCALE, "E")


class UsePlaceValue(_Rules):
    """An E value for equipment whose registered use place (使用场所) names one of the words."""

    words: tuple[str, ...] = Field(min_length=1,
                                   description="使用场所中出现其中任一词即触发（如 住宅、小区）")
    value: float = Field(description="E 值")
    reason: str = Field(description="说明（弹窗中显示）")

    @field_validator("value")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _E_SCALE, "E")

    @field_validator("words")
    @classmethod
    def _words(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not w.strip() for w in v):
            raise ValueError("words 中不得有空词")
        return tuple(w.strip() for w in v)


class AgeBand(_Rules):
    min_years: float = Field(gt=0, description="使用年限下限（年，含）")
    value: float = Field(description="L 值")
    reason: str

    @field_validator("value")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _L_SCALE, "L")


class Factor(_Rules):
    value: float = Field(description="触发时的取值")
    reason: str = Field(description="说明（弹窗中显示）")


def _l(value: float, reason: str) -> Factor:
    return Factor(value=value, reason=reason)


def _c(code: str, value: float, reason: str, basis: str = "") -> CategoryValue:
    return CategoryValue(code=code, value=value, reason=reason, basis=basis)


def _e(code: str, value: float, reason: str) -> ExposureValue:
    return ExposureValue(code=code, value=value, reason=reason)


class Consequence(_Rules):
    default: float = Field(7, description="目录中未匹配任何条目时的 C 值")
    default_reason: str = Field("其他特种设备", description="未匹配时的说明")
    by_category: tuple[CategoryValue, ...] = Field(
        description=f"按设备类别和品种取 C 值（{LEC_C_TABLE}），目录代码最具体者优先", default=(
        _c("9000", 100, "载人高空运行，坠落、脱索可致群死群伤"),
        _c("9300", 15, "乘客在地面被牵引，伤害多为单人"),
        _c("6000", 40, "同时载多人，坠落、碰撞可致数人伤亡"),
        _c("6E00", 15, "每次载一至数人"),
        _c("6E60", 40, "同时载多人高空运行"),
        _c("1000", 40, "爆炸释放大量能量，可致锅炉房内外数人伤亡"),
        _c("2100", 15, "爆炸、泄漏", TSG_21),
        _c("2110", 40, "设计压力≥100MPa，爆炸能量大", TSG_21),
        _c("2130", 40, "高压、大容积或毒性、易爆介质，爆炸泄漏可致数人伤亡",
           TSG_21),
        _c("2150", 15, "中压或中等危害介质，爆炸、泄漏", TSG_21),
        _c("2170", 7, "低压、小容积或非危害介质，失效多致局部伤害", TSG_21),
        _c("2200", 40, "易燃有毒介质，行驶于公共道路"),
        _c("2300", 40, "数量大、流动广，爆炸燃烧危及公众"),
        _c("2400", 40, "载人，舱内火灾可致数人死亡"),
        _c("3000", 15, "坠落、剪切、挤压"),
        _c("3430", 7, "不载人，伤害多发生于装卸时"),
        _c("4000", 15, "吊物坠落、挤压、倾覆"),
        _c("4300", 40, "倾覆、折臂危及施工现场多人"),
        _c("4860", 40, "吊笼载多名作业人员，坠落可致数人死亡"),
        _c("5100", 15, "碾压、撞击、倾翻"),
        _c("5200", 15, "载客，碰撞、倾翻"),
        _c("7000", 3, "产品，随所在管道受控"),
        _c("8100", 40, "泄漏爆炸影响范围大"),
        _c("8200", 40, "燃气泄漏爆炸穿越人口密集区"),
        _c("8220", 15, "爆裂、烫伤"),
        _c("8300", 15, "泄漏、爆炸"),
        _c("F000", 3, "随所属设备受控"),
    ))

    @field_validator("default")
    @classmethod
    def _scale(cls, v: float) -> float:
        return _on_scale(v, _C_SCALE, "C")

    @field_validator("by_category")
    @classmethod
    def _unique(cls, v: tuple[CategoryValue, ...]) -> tuple[CategoryValue, ...]:
        return _unique_codes(v)


class Exposure(_Rules):
    default: Factor = Field(_l(3, "其他特种设备，人员偶然接近"),
                            description="目录中未匹配任何条目时的 E 值")
    by_category: tuple[ExposureValue, ...] = Field(
        description=f"按设备类别取 E 值：正常使用中人员多久接近一次（{LEC_E_TABLE}），"
        "目录代码最具体者优先", default=(
        _e("1000", 6, "司炉人员每天在锅炉房值守操作"),
        _e("2100", 3, "多为连续运行、无人值守，操作人员巡检时接近"),
        _e("2200", 3, "充装、装卸和运输时有人员接近"),
        _e("2300", 3, "充装、搬运和使用时有人员接近"),
        _e("2400", 6, "患者和陪舱人员每天在舱内治疗"),
        _e("3000", 6, "乘客和随行人员每天乘用"),
        _e("3430", 3, "人员不进入轿厢，仅装卸时接近"),
        _e("4000", 6, "工作时间内每天作业，司机、司索和周边人员暴露"),
        _e("4D00", 6, "公众每天存取车辆"),
        _e("5000", 6, "工作时间内每天驾驶，周边作业人员暴露"),
        _e("5200", 6, "运营期间每天载客"),
        _e("6000", 6, "营业期间每天载客运行"),
        _e("7000", 2, "随所在管道，巡检时接近"),
        _e("8000", 2, "埋地或架空敷设、无人值守，巡线时接近"),
        _e("8200", 3, "敷设于城镇道路和居住区，沿线人员偶然暴露"),
        _e("8300", 3, "位于生产装置区，操作人员巡检时接近"),
        _e("9000", 6, "运营期间每天载客"),
        _e("F000", 3, "随所属承压设备，操作人员巡检时接近"),
    ))
    venue_visitors: tuple[VisitorBand, ...] = Field(
        description="位于人员密集场所时按日均客流取 E 值，客流下限高者优先", default=(
        VisitorBand(min_visitors=20_000, value=10,
                    reason="位于日均客流≥2万人的人员密集场所，公众持续在场"),
        VisitorBand(min_visitors=0, value=6, reason="位于人员密集场所，公众每天在场"),
    ))
    park: Factor = Field(_l(6, "位于园区，人员每天在园区内集中作业"),
                         description="位于园区时的 E 值")
    by_use_place: tuple[UsePlaceValue, ...] = Field(
        description="按登记的设备使用场所（使用场所）取 E 值：场所名含其中任一词即触发",
        default=(
        UsePlaceValue(words=("住宅", "小区", "公寓", "宿舍"), value=6,
                      reason="使用场所为住宅，居民每天乘用"),
        UsePlaceValue(words=("学校", "幼儿园", "医院", "养老"), value=6,
                      reason="使用场所为学校、医院或养老机构，学生、患者和老人每天使用"),
        UsePlaceValue(words=("商场", "超市", "市场", "车站", "机场", "码头", "地铁"), value=6,
                      reason="使用场所为商场或交通场站，公众每天使用"),
        UsePlaceValue(words=("宾馆", "酒店", "办公", "写字楼", "影剧院", "展览", "体育"),
                      value=6, reason="使用场所为宾馆、办公楼或文体场馆，公众每天使用"),
        UsePlaceValue(words=("公园", "景区", "游乐"), value=6,
                      reason="使用场所为公园、景区或游乐场，游客每天在场"),
    ))

    @model_validator(mode="after")
    def _scales(self) -> Exposure:
        _on_scale(self.default.value, _E_SCALE, "E.default")
        _on_scale(self.park.value, _E_SCALE, "E.park")
        _unique_codes(self.by_category)
        return self


class Likelihood(_Rules):
    base: Factor = Field(_l(0.5, "检验合格、在有效期内，无其他不利因素"),
                         description="L 的基础值；以下各项触发时取其中最大者")
    age: tuple[AgeBand, ...] = Field(description="按使用年限取 L 值", default=(
        AgeBand(min_years=20, value=1, reason="使用年限≥20年"),
    ))
    conclusion: dict[str, Factor] = Field(description="按最近一次检验结论取 L 值", default={
        "不合格": _l(6, "最近一次检验结论为不合格"),
        "基本合格": _l(1, "最近一次检验结论为基本合格"),
        "复检合格": _l(1, "最近一次检验为复检合格"),
    })
    # 3 (可能，但不经常), not 6 (相当可能): an overdue piece is one whose condition nobody has
    # confirmed, not one found defective (that is 不合格, 6); with E=6 for daily use, 6 would
    # make every overdue elevator 重大 (6×6×15=540) and red would lose its meaning
    overdue: Factor = _l(3, "逾期未检（超过下次检验日期仍在使用，安全状况未经检验确认）")
    open_hazard: Factor = _l(3, "存在未销号一般隐患")
    late_hazard: Factor = _l(6, "隐患超过整改期限未销号")
    open_major_hazard: Factor = _l(10, "存在未销号重大隐患（挂牌督办）")
    unit_blacklisted: Factor = _l(3, "使用单位列入黑名单")
    unit_accident: Factor = _l(3, "使用单位近三年发生过事故")
    unit_five_have_below: int = Field(3, ge=0, le=5,
                                      description="五有得分低于此值时触发 unit_five_have")
    unit_five_have: Factor = _l(1, "使用单位五有得分偏低")
    # No factor for small and micro units: being small is no likelihood of an accident, and
    # the Henan plan 二（四） asks for a 简便、实用、管用 approach for them (the unit's file and
    # measures), not a higher grade.

    @model_validator(mode="after")
    def _scales(self) -> Likelihood:
        for name in ("base", "overdue", "open_hazard", "late_hazard", "open_major_hazard",
                     "unit_blacklisted", "unit_accident", "unit_five_have"):
            _on_scale(getattr(self, name).value, _L_SCALE, f"L.{name}")
        for key, f in self.conclusion.items():
            _on_scale(f.value, _L_SCALE, f"L.conclusion.{key}")
        return self


class UnitFloor(_Rules):
    """A unit's own factor that sets a minimum level whatever its equipment says."""

    factor: Literal["blacklisted", "accident", "open_major_hazard", "five_have_below"]
    level: Level
    reason: str


class RiskRules(_Rules):
    method: Literal["LEC"] = Field("LEC",
                                   description="分级方法：作业条件危险性分析法 D=L×E×C")
    bands: tuple[Band, ...] = Field(
        description="LEC 五级危险程度及其对应的四色等级，按 D 下限从高到低", default=(
        Band(name="极其危险", min=320, level="red"),
        Band(name="高度危险", min=160, level="orange"),
        Band(name="显著危险", min=70, level="yellow"),
        Band(name="一般危险", min=20, level="blue"),
        Band(name="稍有危险", min=0, level="blue"),
    ))
    major_hazard_level: Level = Field("red", description="存在未销号重大隐患的设备至少定为此等级")
    consequence: Consequence = Field(Consequence(), description="C：事故后果严重程度")
    exposure: Exposure = Field(Exposure(), description="E：人员暴露于危险环境的程度")
    likelihood: Likelihood = Field(Likelihood(), description="L：事故发生的可能性")
    unit_floors: tuple[UnitFloor, ...] = Field(
        description="使用单位自身因素决定的最低等级", default=(
        UnitFloor(factor="blacklisted", level="orange",
                  reason="列入黑名单的使用单位至少为较大风险"),
        UnitFloor(factor="accident", level="orange",
                  reason="近三年发生事故的使用单位至少为较大风险"),
        UnitFloor(factor="open_major_hazard", level="red", reason="存在未销号重大隐患"),
    ))

    @model_validator(mode="after")
    def _bands(self) -> RiskRules:
        mins = [b.min for b in self.bands]
        if not mins or mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("bands 须按 min 从高到低排列且互不相同")
        if mins[-1] != 0:
            raise ValueError("最后一个 band 的 min 须为 0，使所有 D 值都有归属")
        ranks = [LEVEL_RANK[b.level] for b in self.bands]
        if ranks != sorted(ranks, reverse=True):
            raise ValueError("bands 的等级须随 D 值下降而不升高")
        return self


# --------------------------------------------------------------------------- helpers

def _pick(values: np.ndarray, reasons: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise max over factor columns (0 = not triggered) and the reason that set it."""
    idx = values.argmax(axis=1)
    best = values[np.arange(len(values)), idx]
    return best, np.asarray(reasons, dtype=object)[idx]


def _hazard_counts(hazards: pd.DataFrame, as_of: date) -> pd.DataFrame:
    h = hazards
    open_ = h["status"].isin(OPEN_HAZARD_STATUS).fillna(False).to_numpy(dtype=bool)
    major = (h["level"] == MAJOR_HAZARD).fillna(False).to_numpy(dtype=bool)
    late = open_ & (pd.to_datetime(h["deadline"]) < pd.Timestamp(as_of)).fillna(False).to_numpy(
        dtype=bool)
    counts = pd.DataFrame({
        "registration_code": h["registration_code"].astype("string").to_numpy(),
        "open_hazards": open_.astype(np.int64), "open_major_hazards": (open_ & major).astype(
            np.int64), "late_hazards": late.astype(np.int64)})
    return counts.groupby("registration_code", sort=False).sum()


def _by_catalogue(codes: pd.Series, rules: tuple[CategoryValue, ...] | tuple[
        ExposureValue, ...], default: float, default_reason: str, letter: str,
                  descriptors: dict[float, str]) -> tuple[np.ndarray, np.ndarray]:
    """Value and reason of each code's most specific rule: the rule for the code itself, else
    for its 类别, else its 种类, as the catalogue nests them (7310 安全阀 is in F000, not in
    7000). A code not in the catalogue, or under no rule, gets the default. The reason begins
    with the factor's value and what it stands for on the LEC scale (``descriptors``):
    C=15 非常严重，一人死亡：碾压、撞击、倾翻（5100 机动工业车辆）."""
    parent, names = _catalogue()
    by_code = {r.code: r for r in rules}
    table_value: dict[str, float] = {}
    table_reason: dict[str, str] = {}
    for code in parent:  # the catalogue's ~160 codes, not the equipment
        node: str | None = code
        while node is not None and node not in by_code:
            node = parent[node]
        if node is not None:
            rule = by_code[node]
            table_value[code] = rule.value
            table_reason[code] = (f"{letter}={rule.value:g} {descriptors[rule.value]}："
                                  f"{rule.reason}（{node} {names[node]}）")
    index, uniques = pd.factorize(codes.astype("string"), use_na_sentinel=True)
    keys = pd.Series(np.asarray(uniques, dtype=object))
    values = np.append(keys.map(table_value).fillna(default).to_numpy(dtype=np.float64), default)
    fallback = f"{letter}={default:g} {descriptors[default]}：{default_reason}"
    reasons = np.append(keys.map(table_reason).fillna(fallback).to_numpy(dtype=object), fallback)
    where = np.where(index < 0, len(values) - 1, index)
    return values[where], reasons[where]


def _use_place_hits(places: pd.Series, rules: tuple[UsePlaceValue, ...]) -> list[np.ndarray]:
    """For each use-place rule, which rows' 使用场所 names one of its words (work is done once
    per distinct place)."""
    index, uniques = pd.factorize(places.astype("string"), use_na_sentinel=True)
    distinct = pd.Series(np.asarray(uniques, dtype=object), dtype="string")
    out = []
    for rule in rules:
        hit = np.zeros(len(distinct), dtype=bool)
        for word in rule.words:
            hit |= distinct.str.contains(word, regex=False).fillna(False).to_numpy(dtype=bool)
        out.append(np.append(hit, False)[np.where(index < 0, len(distinct), index)])
    return out


def band_of(d: np.ndarray, rules: RiskRules) -> tuple[np.ndarray, np.ndarray]:
    """LEC band name and level rank of each D value."""
    mins = np.asarray([b.min for b in rules.bands])
    idx = (d[:, None] < mins[None, :]).sum(axis=1)  # bands sorted high → low
    idx = np.clip(idx, 0, len(mins) - 1)
    names = np.asarray([b.name for b in rules.bands], dtype=object)[idx]
    ranks = np.asarray([LEVEL_RANK[b.level] for b in rules.bands])[idx]
    return names, ranks


# --------------------------------------------------------------------------- equipment

def grade_equipment(equipment: pd.DataFrame, units: pd.DataFrame, hazards: pd.DataFrame,
                    venues: pd.DataFrame, as_of: date, rules: RiskRules) -> pd.DataFrame:
    """Every piece of equipment with L, E, C, D, its level and the reasons (see frames.py)."""
    eq = pd.DataFrame(equipment).copy()
    n = len(eq)
    today = pd.Timestamp(as_of)
    eq["top_category"] = top_category(eq["category_code"])
    eq["in_use"] = in_use_status(eq["status"])
    due = pd.to_datetime(eq["next_inspection_due"])
    eq["overdue"] = eq["in_use"].to_numpy() & (due < today).fillna(False).to_numpy(dtype=bool)

    counts = _hazard_counts(hazards, as_of).reindex(eq["registration_code"].astype("string"))
    for col in ("open_hazards", "open_major_hazards", "late_hazards"):
        eq[col] = counts[col].fillna(0).to_numpy(dtype=np.int64)

    # C — consequence from the category and class
    cr = rules.consequence
    c, c_reason = _by_catalogue(eq["category_code"], cr.by_category, cr.default,
                                cr.default_reason, "C", LEC_C)

    # E — exposure: how often people are near it in normal use (the category), raised by
    # where it stands (a crowded venue by its visitors, a park) and the use place registered
    ex = rules.exposure
    e_cols, e_reasons = [], []

    def add_e(hit: np.ndarray, value: float, reason: str) -> None:
        e_cols.append(np.where(hit, value, 0.0))
        e_reasons.append(f"E={value:g} {LEC_E[value]}：{reason}")

    visitors = pd.Series(np.nan, index=range(n))
    if len(venues) and "venue_id" in eq:
        v = venues.set_index(venues["venue_id"].astype("string"))["daily_visitors"]
        v = pd.to_numeric(v, errors="coerce").astype("float64")
        visitors = v.reindex(eq["venue_id"].astype("string")).reset_index(drop=True)
    in_venue = eq["venue_id"].notna().to_numpy(dtype=bool) if "venue_id" in eq else np.zeros(
        n, dtype=bool)
    for band in sorted(ex.venue_visitors, key=lambda b: -b.min_visitors):
        add_e(in_venue & (visitors.fillna(0).to_numpy() >= band.min_visitors), band.value,
              band.reason)
    if "use_place" in eq:
        for rule, hit in zip(ex.by_use_place, _use_place_hits(eq["use_place"], ex.by_use_place),
                             strict=True):
            add_e(hit, rule.value, rule.reason)
    e_cat, e_cat_reason = _by_catalogue(eq["category_code"], ex.by_category, ex.default.value,
                                        ex.default.reason, "E", LEC_E)
    e_cols.append(e_cat)
    e_reasons.append("")  # the category's reason is per row, below
    in_park = eq["park_id"].notna().to_numpy(dtype=bool) if "park_id" in eq else np.zeros(
        n, dtype=bool)
    add_e(in_park, ex.park.value, ex.park.reason)
    if n:
        matrix = np.column_stack(e_cols)
        e, e_reason = _pick(matrix, e_reasons)
        by_category = matrix.argmax(axis=1) == len(e_cols) - 2
        e_reason = np.where(by_category, e_cat_reason, e_reason)
    else:
        e, e_reason = np.zeros(0), np.zeros(0, dtype=object)

    # L — likelihood from the piece's record and its unit
    lk = rules.likelihood
    # one lookup of each piece's unit row (a string reindex per column costs ~0.3 s at 1M)
    codes = pd.Index(units["credit_code"].astype("string")).drop_duplicates()
    first = units.drop_duplicates("credit_code") if len(codes) < len(units) else units
    where = codes.get_indexer(eq["unit_credit_code"].astype("string"))
    found = where >= 0

    def unit_col(name: str) -> pd.Series:
        if not len(first):
            return pd.Series(pd.NA, index=range(n), dtype=first[name].dtype)
        values = first[name].take(np.where(found, where, 0)).reset_index(drop=True)
        return values.mask(~found)

    commissioned = pd.to_datetime(eq["commissioned_on"])
    age = ((today - commissioned).dt.days / 365.25).to_numpy(dtype="float64", na_value=np.nan)
    conclusion = eq["inspection_conclusion"].astype("string")
    l_cols: list[np.ndarray] = [np.full(n, lk.base.value)]
    l_reasons = [lk.base.reason]

    def add(hit: np.ndarray, f: Factor | AgeBand) -> None:
        l_cols.append(np.where(hit, f.value, 0.0))
        l_reasons.append(f.reason)

    for band in lk.age:
        add(np.nan_to_num(age, nan=-1) >= band.min_years, band)
    for key, f in lk.conclusion.items():
        add((conclusion == key).fillna(False).to_numpy(dtype=bool), f)
    add(eq["overdue"].to_numpy(), lk.overdue)
    add(eq["open_hazards"].to_numpy() > 0, lk.open_hazard)
    add(eq["late_hazards"].to_numpy() > 0, lk.late_hazard)
    add(eq["open_major_hazards"].to_numpy() > 0, lk.open_major_hazard)
    add(unit_col("blacklisted").fillna(False).to_numpy(dtype=bool), lk.unit_blacklisted)
    add(pd.to_numeric(unit_col("accidents_3y")).fillna(0).to_numpy() > 0, lk.unit_accident)
    five = pd.to_numeric(unit_col("five_have_score"))
    add((five < lk.unit_five_have_below).fillna(False).to_numpy(dtype=bool), lk.unit_five_have)
    if n:
        matrix = np.column_stack(l_cols)
        lv, l_reason = _pick(matrix, l_reasons)
        also = _others(matrix, l_reasons)
    else:
        lv, l_reason, also = np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=object)

    d = lv * e * c
    band, rank = band_of(d, rules) if n else (np.zeros(0, dtype=object), np.zeros(0, int))
    forced = (eq["open_major_hazards"].to_numpy() > 0) & (
        rank < LEVEL_RANK[rules.major_hazard_level])
    rank = np.where(forced, LEVEL_RANK[rules.major_hazard_level], rank)
    graded = eq["in_use"].to_numpy()
    eq["L"] = np.where(graded, lv, 0.0)
    eq["E"] = np.where(graded, e, 0.0)
    eq["C"] = np.where(graded, c, 0.0)
    eq["D"] = np.where(graded, d, 0.0)
    eq["lec_band"] = pd.array(np.where(graded, band, None), dtype="string")
    eq["level_rank"] = np.where(graded, rank, 0).astype(np.int64)
    eq["level"] = eq["level_rank"].map(LEVEL_BY_RANK).astype("string")
    eq["L_reason"] = pd.array(np.where(graded, l_reason, None), dtype="string")
    eq["L_also"] = pd.array(np.where(graded, also, None), dtype="string")
    eq["E_reason"] = pd.array(np.where(graded, e_reason, None), dtype="string")
    eq["C_reason"] = pd.array(np.where(graded, c_reason, None), dtype="string")
    level_reason = np.where(
        forced, f"存在未销号重大隐患，定为{LEVEL_ZH[rules.major_hazard_level]}",
        np.where(graded, "按 D=L×E×C 分级", "非在用设备，不分级"))
    eq["level_reason"] = pd.array(level_reason, dtype="string")
    return eq


def _others(matrix: np.ndarray, reasons: list[str]) -> np.ndarray:
    """The other triggered L factors (beyond the base and the winner), joined by "、"."""
    best = matrix.argmax(axis=1)
    hit = matrix > 0
    hit[:, 0] = False  # the base always applies
    hit[np.arange(len(matrix)), best] = False
    out = np.full(len(matrix), "", dtype=object)
    for j, reason in enumerate(reasons):
        if j == 0 or not hit[:, j].any():
            continue
        sel = hit[:, j]
        out[sel] = out[sel] + np.where(out[sel] == "", "", "、") + reason
    return out


# --------------------------------------------------------------------------- units

#: The columns :func:`grade_units` sets on a unit's row; every other column is the units
#: table's as stored (``credit_code`` as text).
GRADED_UNIT_COLUMNS: tuple[str, ...] = (
    "equipment_count", "in_use_count", *(f"n_{lv}" for lv in LEVEL_RANK), "D_max",
    "open_hazards", "open_major_hazards", "overdue_count", "level_rank", "level",
    "level_reason")


def grade_units(units: pd.DataFrame, equipment: pd.DataFrame, rules: RiskRules
                ) -> pd.DataFrame:
    """Each using unit's level: its riskiest in-use equipment, raised by its own factors.

    Units that equipment names but the units table lacks are kept (name and location from
    their first piece), so no graded equipment is without a unit."""
    eq = equipment
    key = eq["unit_credit_code"].astype("string")
    rank = eq["level_rank"].to_numpy()
    g = pd.DataFrame({
        "credit_code": key.to_numpy(), "equipment_count": 1,
        "in_use_count": eq["in_use"].to_numpy(dtype=np.int64),
        **{f"n_{lv}": (rank == r).astype(np.int64) for lv, r in LEVEL_RANK.items()},
        "D_max": eq["D"].to_numpy(), "rank_max": rank,
        "open_hazards": eq["open_hazards"].to_numpy(),
        "open_major_hazards": eq["open_major_hazards"].to_numpy(),
        "overdue_count": eq["overdue"].to_numpy(dtype=np.int64),
    }).groupby("credit_code", sort=True).agg(
        equipment_count=("equipment_count", "sum"), in_use_count=("in_use_count", "sum"),
        n_red=("n_red", "sum"), n_orange=("n_orange", "sum"), n_yellow=("n_yellow", "sum"),
        n_blue=("n_blue", "sum"), D_max=("D_max", "max"), rank_max=("rank_max", "max"),
        open_hazards=("open_hazards", "sum"), open_major_hazards=("open_major_hazards", "sum"),
        overdue_count=("overdue_count", "sum"))

    out = pd.DataFrame(units).copy()
    out["credit_code"] = out["credit_code"].astype("string")
    missing = g.index.difference(pd.Index(out["credit_code"]))
    if len(missing):
        out = pd.concat([out, _units_from_equipment(eq, missing, out.columns)],
                        ignore_index=True)
    stats = g.reindex(out["credit_code"]).reset_index(drop=True)
    for col in g.columns:
        fill = 0 if col != "D_max" else 0.0
        out[col] = stats[col].fillna(fill).to_numpy()
    for col in ("equipment_count", "in_use_count", "n_red", "n_orange", "n_yellow", "n_blue",
                "open_hazards", "open_major_hazards", "overdue_count", "rank_max"):
        out[col] = out[col].astype(np.int64)

    base = out["rank_max"].to_numpy()
    reason = np.where(base > 0, "按所属最高风险设备", "无在用设备").astype(object)
    final = base.copy()
    five = pd.to_numeric(out.get("five_have_score"), errors="coerce")
    triggers = {
        "blacklisted": out["blacklisted"].fillna(False).to_numpy(dtype=bool)
        if "blacklisted" in out else np.zeros(len(out), bool),
        "accident": (pd.to_numeric(out["accidents_3y"]).fillna(0).to_numpy() > 0)
        if "accidents_3y" in out else np.zeros(len(out), bool),
        "open_major_hazard": out["open_major_hazards"].to_numpy() > 0,
        "five_have_below": (five < rules.likelihood.unit_five_have_below).fillna(False)
        .to_numpy(dtype=bool) if five is not None else np.zeros(len(out), bool),
    }
    for floor in rules.unit_floors:
        r = LEVEL_RANK[floor.level]
        hit = triggers[floor.factor] & (final < r)
        final = np.where(hit, r, final)
        reason = np.where(hit, floor.reason, reason)
    out["level_rank"] = final.astype(np.int64)
    out["level"] = out["level_rank"].map(LEVEL_BY_RANK).astype("string")
    out["level_reason"] = pd.array(reason, dtype="string")
    return out.drop(columns=["rank_max"])


def _units_from_equipment(eq: pd.DataFrame, codes: pd.Index, columns: pd.Index
                          ) -> pd.DataFrame:
    first = eq.assign(_k=eq["unit_credit_code"].astype("string")).drop_duplicates("_k")
    first = first.set_index("_k").loc[codes]
    out = pd.DataFrame(index=range(len(codes)), columns=columns)
    out["credit_code"] = codes.to_numpy()
    out["name"] = first["unit_name"].to_numpy() if "unit_name" in first else pd.NA
    for col in ("lon", "lat", "province_adcode", "city_adcode", "county_adcode", "h3", "h3_5",
                "h3_6", "h3_7", "park_id", "venue_id"):
        if col in first and col in out:
            out[col] = first[col].to_numpy()
    if "geometry" in out and "geometry" in first:
        out["geometry"] = first["geometry"].to_numpy()
    return out
