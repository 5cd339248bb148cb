"""The rule language of the park and unit measures (一园一策、一企一策).

A measure is a :class:`MeasureRule`: when its condition holds for a park profile or a
unit file, its Chinese text is added to the row's measures. The condition is a small
language, ``metric op number [and …]`` (the metric from :data:`METRICS`, the operator from
:data:`OPERATORS`), parsed by :func:`parse_condition`, never evaluated as Python. The text
is a template filled from the row's own numbers (:func:`template_fields` checks it against
a whitelist). :data:`DEFAULT_MEASURES` are the defaults, each citing the plan clause it
implements (:func:`data.plans.cite`). :func:`layers.parks.apply_measures` applies them to
the rows.
"""

from __future__ import annotations

import re
import string
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from data.plans import cite

#: What a measure is written for: a park profile (一园一策) or a unit file (一企一策).
Scope = Literal["park", "unit"]

#: Numbers a measure may test and print. Park rows sum over the park; a unit row is "a park
#: of one" (units = 1, red_units = 1 when the unit itself is red, …) so one rule serves both.
METRICS: dict[str, str] = {
    "units": "使用单位数（园区）；单位档案恒为 1",
    "equipment": "设备台数（全部状态）",
    "in_use": "在用设备台数",
    "n_red": "重大风险（红）设备台数",
    "n_orange": "较大风险（橙）设备台数",
    "n_yellow": "一般风险（黄）设备台数",
    "n_blue": "低风险（蓝）设备台数",
    "red_units": "重大风险使用单位数；单位档案：本单位为红色时为 1",
    "open_hazards": "未销号隐患数",
    "open_major_hazards": "未销号重大隐患数",
    "late_hazards": "超过整改期限未销号的隐患数",
    "overdue": "逾期未检设备台数",
    "overdue_rate": "逾期未检率（逾期未检台数 / 在用台数）",
    "elevators": "在用电梯台数",
    "elevators_insured": "已投保责任保险的在用电梯台数",
    "insurance_coverage": "电梯责任保险覆盖率（已投保 / 在用电梯）",
    "five_have_score": "“五有”得分（园区为已知得分的平均值）",
    "five_have_compliant": "“五有”得分为 5 的使用单位数",
    "five_have_rate": "“五有”达标率（达标单位 / 使用单位）",
    "small_micro_units": "小微企业数；单位档案：本单位为小微企业时为 1",
    "small_micro_share": "小微企业占比",
    "blacklisted_units": "列入黑名单的使用单位数；单位档案：本单位列入时为 1",
    "accidents_3y": "近三年事故起数",
    "risk_score": "风险总分（在用设备 D 值之和）",
    "D_max": "最高设备 D 值",
    "risk_index": "风险指数 0–100（园区风险总分 / 最高园区风险总分 × 100；单位档案为空）",
    "rank": "园区风险排名（1 为最高；单位档案为空）",
}
#: Text a template may print besides the metrics; ``threshold`` is the number of the first
#: clause of the rule's condition.
TEXT_FIELDS: dict[str, str] = {
    "name": "园区或使用单位名称",
    "dominant_category_name": "主要设备种类名称",
    "threshold": "条件中第一个比较的数值",
}

#: The comparison of each operator a condition may use, applied element-wise to a metric.
OPERATORS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
             "==": np.equal}
_CLAUSE = re.compile(r"^\s*([a-z_A-Z0-9]+)\s*(>=|<=|==|>|<)\s*"
                     r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_SPEC = re.compile(r"^,?(?:\.\d{1,2})?[f%]?$")


class MeasureRule(BaseModel):
    """One measure: when the condition holds for a park (or unit), its text is added."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40,
                    description="措施编号（英文小写、数字、下划线）")
    when: str = Field(max_length=400,
                      description="触发条件：指标 运算符 数值，可用 and 连接，如 "
                                  "“overdue_rate > 0.05”；指标取自固定清单，运算符为 > >= < <= ==")
    text: str = Field(min_length=1, max_length=400,
                      description="措施文本模板，{指标} 处填入数值，可带格式如 {overdue_rate:.0%}")
    scope: Literal["both", "park", "unit"] = Field(
        "both",
        description="适用对象：both 园区和单位，park 仅园区（一园一策），unit 仅单位（一企一策）")
    basis: str = Field("", max_length=200, description="依据（文件条款原文或所依据的通行做法）")

    @field_validator("when")
    @classmethod
    def _condition(cls, v: str) -> str:
        parse_condition(v)
        return v

    @field_validator("text")
    @classmethod
    def _template(cls, v: str) -> str:
        template_fields(v)
        return v

    def clauses(self) -> list[tuple[str, str, float]]:
        """The condition as (metric, operator, number) clauses, all of which must hold."""
        return parse_condition(self.when)

    def applies_to(self, scope: Scope) -> bool:
        """Whether the measure is written for parks or units of ``scope``."""
        return self.scope in ("both", scope)


def parse_condition(when: str) -> list[tuple[str, str, float]]:
    """``"a > 1 and b <= 0.5"`` → [(metric, op, number), …]; refuses anything else."""
    out = []
    for part in re.split(r"\s+and\s+", when.strip()):
        m = _CLAUSE.match(part)
        if not m:
            raise ValueError(f"条件 “{part}” 不合法：应为 指标 运算符 数值，如 overdue_rate > 0.05")
        metric, op, number = m.groups()
        if metric not in METRICS:
            raise ValueError(f"未知指标 {metric}；可用：{', '.join(METRICS)}")
        value = float(number)
        if not np.isfinite(value):
            raise ValueError(f"条件数值须为有限数：{number}")
        out.append((metric, op, value))
    return out


def template_fields(text: str) -> list[tuple[str, str, str]]:
    """(literal, field, format spec) segments of a template, checked against the whitelist.

    Only bare names from :data:`METRICS`/:data:`TEXT_FIELDS`, no attribute or index access,
    no conversion, and numeric specs of the forms ``.0%``, ``.1f``, ``,`` — so a
    regulator-edited template cannot reach anything but the row's own numbers."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"模板花括号不匹配：{exc}") from exc
    out = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            out.append((literal, "", ""))
            continue
        if field not in METRICS and field not in TEXT_FIELDS:
            raise ValueError(f"模板字段 {{{field}}} 不在可用字段内")
        if conversion is not None or not _SPEC.match(spec or ""):
            raise ValueError(f"模板字段 {{{field}}} 的格式 “{spec}” 不支持（可用如 .0% .1f）")
        if spec and field in ("name", "dominant_category_name"):
            raise ValueError(f"文本字段 {{{field}}} 不能带数值格式")
        out.append((literal, field, spec or ""))
    return out


def _henan(clause: str, quote: str | None = None) -> str:
    """A measure's basis in the Henan plan, cited short (豫市监办〔2021〕55号 二（二）)."""
    return cite("henan", clause, quote, short=True)


def _shaanxi(clause: str, quote: str | None = None) -> str:
    """A measure's basis in the Shaanxi three-year plan, cited short."""
    return cite("shaanxi", clause, quote, short=True)


DEFAULT_MEASURES: tuple[MeasureRule, ...] = (
    MeasureRule(
        id="major_hazards", when="open_major_hazards > 0",
        text="{open_major_hazards}项重大隐患实行挂牌督办，明确整改责任、措施和时限，销号前落实管控措施",
        basis=_henan("二（二）", "推动建立特种设备安全综合治理、重大隐患挂牌督办制度")),
    MeasureRule(
        id="red_units", when="red_units > 0", scope="park",
        text="{red_units}家重大风险使用单位实行“一企一策”，加大监督检查频次",
        basis=_henan("二（四）", "按照“一园一策”“一企一策”要求") + "；二（二）“加大监督检查频次”"),
    MeasureRule(
        id="red_unit", when="red_units > 0", scope="unit",
        text="列为重大风险使用单位，实行“一企一策”重点管控，加大监督检查频次",
        basis=_henan("二（四）", "一企一策") + "；二（二）“加大监督检查频次”"),
    MeasureRule(
        id="blacklist", when="blacklisted_units > 0", scope="park",
        text="{blacklisted_units}家使用单位列入黑名单，实施失信联合惩戒并及时通报",
        basis=f"{_henan('二（二）', '列入黑名单并及时进行通报')}；"
              f"{_shaanxi('四（三）', '实施联合惩戒')}"),
    MeasureRule(
        id="blacklist_unit", when="blacklisted_units > 0", scope="unit",
        text="已列入黑名单，实施失信联合惩戒并及时通报",
        basis=f"{_henan('二（二）', '列入黑名单并及时进行通报')}；"
              f"{_shaanxi('四（三）', '实施联合惩戒')}"),
    MeasureRule(
        id="late_hazards", when="late_hazards > 0",
        text="{late_hazards}项隐患超过整改期限未销号，督促按“排查、登记、治理、销号”闭环整改",
        basis=_henan("二（一）", "实现隐患排查、登记、治理、销号的全过程记录和闭环管理")),
    MeasureRule(
        id="overdue", when="overdue_rate > 0.05",
        text="逾期未检率{overdue_rate:.0%}（{overdue}台），督促限期报检，检验机构及时报告属地市场监管部门",
        basis=_henan("二（三）", "发现设备逾期未检……及时报告所在地市场监管部门")),
    MeasureRule(
        id="accidents", when="accidents_3y > 0",
        text="近三年发生特种设备事故{accidents_3y}起，督促完善事故应急预案并组织应急演练",
        basis=_shaanxi("二（六）", "督促特种设备使用单位完善事故应急预案并开展演练")),
    MeasureRule(
        id="focus_category", when="in_use > 0",
        text="以{dominant_category_name}为重点，开展专项风险辨识和隐患排查，编制风险管控清单和隐患排查治理清单",
        basis=_henan("二（二）", "按设备类别、使用场所、应用行业等开展分类监管，"
                            "突出差异化监管措施")),
    MeasureRule(
        id="insurance", when="insurance_coverage < 0.7",
        text="电梯责任保险覆盖率{insurance_coverage:.0%}，低于{threshold:.0%}的目标，推动投保并推广“保险+服务”模式",
        basis=_shaanxi("二（五）", "2022年，电梯保险覆盖率应不低于保有量的70%")),
    MeasureRule(
        id="five_have", when="five_have_rate < 1", scope="park",
        text="“五有”标准达标率{five_have_rate:.0%}，指导未达标使用单位对照“五有”标准完善双重预防体系",
        basis=_henan("二（一）") + "“五有”标准；二（四）“2021年底……全面建成双重预防体系”"),
    MeasureRule(
        id="five_have_unit", when="five_have_score < 5", scope="unit",
        text="“五有”得分{five_have_score:.0f}分，对照“五有”标准补齐双重预防体系短板",
        basis=_henan("二（一）") + "“五有”标准"),
    MeasureRule(
        id="small_micro", when="small_micro_share >= 0.5", scope="park",
        text="小微企业占{small_micro_share:.0%}，推行小微企业简易模式（一企一档一码）",
        basis=_henan("二（四）", "依托安全生产“一企一档一码”……按照“简便、实用、管用”原则")),
    MeasureRule(
        id="small_micro_unit", when="small_micro_units >= 1", scope="unit",
        text="推行小微企业简易模式（一企一档一码），按“简便、实用、管用”原则抓住风险隐患关键环节",
        basis=_henan("二（四）", "依托安全生产“一企一档一码”……按照“简便、实用、管用”原则")),
)
