"""Park profiles (一园一策) and unit files (一企一策).

Seed 002 二（四）: "推进园区双重预防体系建设，按照“一园一策”“一企一策”要求，督促、指导特种设备
使用单位将特种设备双重预防体系建设标准纳入企业双重预防体系". A park profile sums what a park
holds (its equipment, the units that sit or run equipment in it, their hazards, inspections,
insurance and "五有" standing); a unit file does the same for one using unit. Both end in a
list of measures chosen by :class:`MeasureRule`, a small condition language
(``metric op number [and …]``, the metric from :data:`METRICS`, no eval) with a Chinese
template filled from the row's numbers.
"""

from __future__ import annotations

import re
import string
from datetime import date
from typing import Literal

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.catalogue import TOP_CATEGORIES
from layers.frames import LEVEL_BY_RANK, LEVEL_COUNT_COLUMNS, LEVEL_RANK, LEVELS, top_category

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

_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
        "==": np.equal}
_CLAUSE = re.compile(r"^\s*([a-z_A-Z0-9]+)\s*(>=|<=|==|>|<)\s*"
                     r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_SPEC = re.compile(r"^,?(?:\.\d{1,2})?[f%]?$")
_ELEVATOR = "3000"


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
        return parse_condition(self.when)

    def applies_to(self, scope: Scope) -> bool:
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


# Sources quoted in ``basis`` (short names of the two seeds).
_S002 = "豫市监办〔2021〕55号"
_S000 = "特种设备安全专项整治三年行动实施方案"

DEFAULT_MEASURES: tuple[MeasureRule, ...] = (
    MeasureRule(
        id="major_hazards", when="open_major_hazards > 0",
        text="{open_major_hazards}项重大隐患实行挂牌督办，明确整改责任、措施和时限，销号前落实管控措施",
        basis=f"{_S002} 二（二）“推动建立特种设备安全综合治理、重大隐患挂牌督办制度”"),
    MeasureRule(
        id="red_units", when="red_units > 0", scope="park",
        text="{red_units}家重大风险使用单位实行“一企一策”，加大监督检查频次",
        basis=f"{_S002} 二（四）“按照“一园一策”“一企一策”要求”；二（二）“加大监督检查频次”"),
    MeasureRule(
        id="red_unit", when="red_units > 0", scope="unit",
        text="列为重大风险使用单位，实行“一企一策”重点管控，加大监督检查频次",
        basis=f"{_S002} 二（四）“一企一策”；二（二）“加大监督检查频次”"),
    MeasureRule(
        id="blacklist", when="blacklisted_units > 0", scope="park",
        text="{blacklisted_units}家使用单位列入黑名单，实施失信联合惩戒并及时通报",
        basis=f"{_S002} 二（二）“列入黑名单并及时进行通报”；{_S000} 四（三）“实施联合惩戒”"),
    MeasureRule(
        id="blacklist_unit", when="blacklisted_units > 0", scope="unit",
        text="已列入黑名单，实施失信联合惩戒并及时通报",
        basis=f"{_S002} 二（二）“列入黑名单并及时进行通报”；{_S000} 四（三）“实施联合惩戒”"),
    MeasureRule(
        id="late_hazards", when="late_hazards > 0",
        text="{late_hazards}项隐患超过整改期限未销号，督促按“排查、登记、治理、销号”闭环整改",
        basis=f"{_S002} 二（一）“实现隐患排查、登记、治理、销号的全过程记录和闭环管理”"),
    MeasureRule(
        id="overdue", when="overdue_rate > 0.05",
        text="逾期未检率{overdue_rate:.0%}（{overdue}台），督促限期报检，检验机构及时报告属地市场监管部门",
        basis=f"{_S002} 二（三）“发现设备逾期未检……及时报告所在地市场监管部门”"),
    MeasureRule(
        id="accidents", when="accidents_3y > 0",
        text="近三年发生特种设备事故{accidents_3y}起，督促完善事故应急预案并组织应急演练",
        basis=f"{_S000} 二（六）“督促特种设备使用单位完善事故应急预案并开展演练”"),
    MeasureRule(
        id="focus_category", when="in_use > 0",
        text="以{dominant_category_name}为重点，开展专项风险辨识和隐患排查，编制风险管控清单和隐患排查治理清单",
        basis=f"{_S002} 二（二）“按设备类别、使用场所、应用行业等开展分类监管，"
              "突出差异化监管措施”"),
    MeasureRule(
        id="insurance", when="insurance_coverage < 0.7",
        text="电梯责任保险覆盖率{insurance_coverage:.0%}，低于{threshold:.0%}的目标，推动投保并推广“保险+服务”模式",
        basis=f"{_S000} 二（五）“2022年，电梯保险覆盖率应不低于保有量的70%”"),
    MeasureRule(
        id="five_have", when="five_have_rate < 1", scope="park",
        text="“五有”标准达标率{five_have_rate:.0%}，指导未达标使用单位对照“五有”标准完善双重预防体系",
        basis=f"{_S002} 二（一）“五有”标准；二（四）“2021年底……全面建成双重预防体系”"),
    MeasureRule(
        id="five_have_unit", when="five_have_score < 5", scope="unit",
        text="“五有”得分{five_have_score:.0f}分，对照“五有”标准补齐双重预防体系短板",
        basis=f"{_S002} 二（一）“五有”标准"),
    MeasureRule(
        id="small_micro", when="small_micro_share >= 0.5", scope="park",
        text="小微企业占{small_micro_share:.0%}，推行小微企业简易模式（一企一档一码）",
        basis=f"{_S002} 二（四）“依托安全生产“一企一档一码”……按照“简便、实用、管用”原则”"),
    MeasureRule(
        id="small_micro_unit", when="small_micro_units >= 1", scope="unit",
        text="推行小微企业简易模式（一企一档一码），按“简便、实用、管用”原则抓住风险隐患关键环节",
        basis=f"{_S002} 二（四）“依托安全生产“一企一档一码”……按照“简便、实用、管用”原则”"),
)


class ParkRules(BaseModel):
    """Knobs of the park profiles and unit files (rules TOML section ``parks``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_units: int = Field(5, ge=1, le=50, description="园区档案列出的最高风险使用单位数")
    months: int = Field(12, ge=1, le=120,
                        description="隐患月度发现/销号统计的月数（截至统计日所在月）")
    small_sizes: tuple[str, ...] = Field(("小型", "微型"), min_length=1,
                                         description="视为小微企业的企业规模取值")
    dominant_exclude: tuple[str, ...] = Field(
        ("7000", "F000"),
        description="确定主要设备种类时不计的种类代码（压力管道元件为产品、安全附件随所属设备）")
    measures: tuple[MeasureRule, ...] = Field(DEFAULT_MEASURES,
                                              description="措施规则（按顺序输出）")

    @field_validator("small_sizes", "dominant_exclude")
    @classmethod
    def _no_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s.strip() for s in v):
            raise ValueError("取值不能为空字符串")
        return v

    @field_validator("dominant_exclude")
    @classmethod
    def _top_codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in v if c not in TOP_CATEGORIES]
        if unknown:
            raise ValueError(f"不是特种设备种类代码：{unknown}；可用：{list(TOP_CATEGORIES)}")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> ParkRules:
        ids = [m.id for m in self.measures]
        if len(ids) != len(set(ids)):
            raise ValueError("measures 的 id 不能重复")
        return self


# --------------------------------------------------------------------------- strings
# JSON columns are built as Arrow string arrays (element-wise concatenation and list joins
# run in Arrow's C++ kernels); Python only encodes distinct values.

_LS = pa.large_string()


def _arrow(values: object) -> pa.Array:
    """Values as an Arrow large_string array (nulls kept)."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.array
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(_LS)


def _cat(*parts: str | pa.Array) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and literal strings."""
    args = [pa.scalar(p, _LS) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", _LS))


def _strs(values: np.ndarray) -> pa.Array:
    """Integers as decimal strings."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _json_values(values: object) -> pa.Array:
    """Each value as a JSON literal (``null`` for missing); encoded once per distinct value."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    encoded = [orjson.dumps(u).decode() for u in pd.Series(uniques).tolist()]
    table = pa.array([*encoded, "null"], type=_LS)
    return table.take(pa.array(np.where(codes < 0, len(encoded), codes)))


def _json_records(frame: pd.DataFrame, columns: list[str]) -> pa.Array:
    """One JSON object string per row over ``columns`` (keys are the column names)."""
    parts: list[str | pa.Array] = []
    for i, col in enumerate(columns):
        parts += [f'{"," if i else "{"}"{col}":', _json_values(frame[col])]
    return _cat(*parts, "}")


def _join(pos: np.ndarray, parts: pa.Array, n: int, empty: str, left: str, right: str
          ) -> pa.Array:
    """``left + ",".join(parts at row r) + right`` for each row r < n (``empty`` if none).

    Parts keep their order within a row; the join runs over Arrow list offsets from a
    stable sort, not a Python call per group."""
    pos = np.asarray(pos, dtype=np.int64)
    take = np.flatnonzero(pos >= 0)
    take = take[np.argsort(pos[take], kind="stable")]
    counts = np.bincount(pos[take], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), parts.take(pa.array(take)))
    joined = _cat(left, pc.binary_join(lists, pa.scalar(",", _LS)), right)
    return pc.if_else(pa.array(counts > 0), joined, pa.scalar(empty, _LS))


def _text(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    """An Arrow string array as a pandas "string" column (no copy)."""
    return pd.array(values, dtype="string")


# --------------------------------------------------------------------------- grouping
# Sums per park or unit are bincounts over integer positions: the row of the park (unit)
# each piece of equipment belongs to, -1 for none. No Python call per group.

def _positions(index: object, keys: object) -> np.ndarray:
    """Row of the first ``index`` value equal to each key; -1 where missing or unknown."""
    keys = _arrow(keys)
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    found = pc.index_in(keys, value_set=_arrow(index), skip_nulls=True)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _sum(pos: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    ok = pos >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    return np.bincount(pos[ok], weights=w, minlength=n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (a rate of nothing is unknown, not 0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(len(den), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _take(values: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
    """``values[rows]`` with ``fill`` where the row is -1."""
    values = np.append(np.asarray(values), np.asarray([fill], dtype=np.asarray(values).dtype))
    return values[np.where(rows >= 0, rows, len(values) - 1)]


# --------------------------------------------------------------------------- inputs

def _col(frame: pd.DataFrame, name: str, default: object = pd.NA,
         dtype: str | None = None) -> pd.Series:
    """A column, or ``default`` everywhere when the frame lacks it."""
    if name in frame.columns:
        s = frame[name].reset_index(drop=True)
    else:
        s = pd.Series(default, index=pd.RangeIndex(len(frame)), dtype=object)
    return s.astype(dtype) if dtype else s


def _flag(frame: pd.DataFrame, name: str) -> np.ndarray:
    return _col(frame, name, False).astype("boolean").fillna(False).to_numpy(dtype=bool)


def _num(frame: pd.DataFrame, name: str, fill: float = 0.0) -> np.ndarray:
    return pd.to_numeric(_col(frame, name, fill), errors="coerce").fillna(fill).to_numpy(
        dtype=np.float64)


def _equipment_rows(equipment: pd.DataFrame) -> pd.DataFrame:
    """The few columns of the graded equipment these layers read, plain and light."""
    cat = (_col(equipment, "top_category", dtype="string") if "top_category" in equipment
           else top_category(_col(equipment, "category_code", dtype="string")))
    in_use = _flag(equipment, "in_use")
    elevator = (cat == _ELEVATOR).fillna(False).to_numpy(dtype=bool) & in_use
    rank = _num(equipment, "level_rank").astype(np.int64)
    return pd.DataFrame({
        "registration_code": _col(equipment, "registration_code"),
        "unit": _col(equipment, "unit_credit_code"),
        "park_id": _col(equipment, "park_id"),
        "top_category": cat,
        "equipment": np.ones(len(equipment), dtype=np.int64),
        "in_use": in_use.astype(np.int64),
        **{f"n_{lv}": (rank == LEVEL_RANK[lv]).astype(np.int64) for lv in LEVELS},
        "overdue": (_flag(equipment, "overdue") & in_use).astype(np.int64),
        "open_hazards": _num(equipment, "open_hazards").astype(np.int64),
        "open_major_hazards": _num(equipment, "open_major_hazards").astype(np.int64),
        "late_hazards": _num(equipment, "late_hazards").astype(np.int64),
        "elevators": elevator.astype(np.int64),
        "elevators_insured": (elevator & _flag(equipment, "insured")).astype(np.int64),
        "risk_score": _num(equipment, "D"),
    })


_SUMS = ("equipment", "in_use", *LEVEL_COUNT_COLUMNS, "overdue", "open_hazards",
         "open_major_hazards", "late_hazards", "elevators", "elevators_insured", "risk_score")


def _equipment_stats(eq: pd.DataFrame, pos: np.ndarray, n: int) -> pd.DataFrame:
    """Counts, rates and D statistics of the equipment at each of the ``n`` positions.

    Elevator insurance coverage is over elevators in use (保有量, seed 000 二（五））; the
    overdue rate is over pieces in use (only those can be 逾期未检)."""
    out = {}
    for col in _SUMS:
        total = _sum(pos, n, eq[col].to_numpy())
        out[col] = total if col == "risk_score" else np.rint(total).astype(np.int64)
    d_max = np.zeros(n)
    ok = pos >= 0
    np.maximum.at(d_max, pos[ok], eq["risk_score"].to_numpy()[ok])
    out["D_max"] = d_max
    out["overdue_rate"] = _ratio(out["overdue"], out["in_use"])
    out["insurance_coverage"] = _ratio(out["elevators_insured"], out["elevators"])
    return pd.DataFrame(out)


def _categories(eq: pd.DataFrame, pos: np.ndarray, n: int, exclude: tuple[str, ...]
                ) -> tuple[pa.Array, np.ndarray]:
    """Pieces per top category as a JSON object per position, and the dominant category.

    Dominant = most pieces in use (ties: higher summed D, then the lower code), leaving out
    ``exclude``; seed 002 二（二） "按设备类别……开展分类监管"."""
    cats = np.sort(eq["top_category"].dropna().unique().astype(object))
    m = len(cats)
    if m == 0 or n == 0:
        return pa.array(["{}"] * n, type=_LS), np.full(n, None, dtype=object)
    ci = _positions(cats, eq["top_category"])
    ok = (pos >= 0) & (ci >= 0)
    key = pos[ok] * m + ci[ok]

    def grid(weights: np.ndarray | None) -> np.ndarray:
        w = None if weights is None else weights[ok]
        return np.bincount(key, weights=w, minlength=n * m).reshape(n, m)

    count = grid(None)
    rows, cols = np.nonzero(count)
    parts = _cat(_json_values(cats).take(pa.array(cols)), ":", _strs(count[rows, cols]))
    json = _join(rows, parts, n, "{}", "{", "}")

    used = np.where(np.isin(cats, list(exclude)), -1.0,
                    grid(eq["in_use"].to_numpy(dtype=np.float64)))
    best_used = used.max(axis=1)
    d = np.where(used == best_used[:, None], grid(eq["risk_score"].to_numpy()), -np.inf)
    best = d.argmax(axis=1)  # first maximum = lowest code among ties
    return json, np.where(best_used > 0, cats[best], None)


def _category_names(codes: np.ndarray) -> np.ndarray:
    """Chinese name of each top category code (None where the code is missing/unknown)."""
    at, uniques = pd.factorize(pd.Series(codes, dtype=object))
    names = np.asarray([*(TOP_CATEGORIES.get(c) for c in uniques), None], dtype=object)
    return names[at]


def _month_index(dates: pd.Series) -> np.ndarray:
    """Months since year 0 (year × 12 + month − 1); −1 where the date is missing."""
    d = pd.to_datetime(dates, errors="coerce")
    return (d.dt.year * 12 + d.dt.month - 1).fillna(-1).to_numpy(dtype=np.int64)


def _hazard_months(hazards: pd.DataFrame, eq: pd.DataFrame, pos: np.ndarray, n: int,
                   as_of: date, months: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Hazards found and closed per position and month, ``months`` months up to as_of's.

    A hazard reaches a park or unit through its equipment (registration code); found is
    counted by ``found_on``, closed (销号) by ``closed_on``."""
    today = pd.Timestamp(as_of)
    start = today.year * 12 + today.month - 1 - (months - 1)
    labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(start, start + months)]
    owner = _take(pos, _positions(eq["registration_code"], _col(hazards, "registration_code")),
                  -1)
    out = []
    for col in ("found_on", "closed_on"):
        month = _month_index(_col(hazards, col)) - start
        ok = (owner >= 0) & (month >= 0) & (month < months)
        out.append(np.bincount(owner[ok] * months + month[ok], minlength=n * months)
                   .reshape(n, months))
    return out[0], out[1], labels


# --------------------------------------------------------------------------- measures

def apply_measures(metrics: pd.DataFrame, labels: pd.DataFrame, rules: ParkRules,
                   scope: Scope) -> tuple[pa.Array, pa.Array]:
    """JSON lists of measure texts and of measure ids per row of ``metrics``.

    A rule fires where every clause holds (a missing number never satisfies a clause) and
    every field its template prints is known; each row lists its measures in rule order.
    Texts are rendered once per distinct combination of the printed values."""
    n = len(metrics)
    rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    texts: list[pa.Array] = [pa.array([], type=_LS)]
    ids: list[pa.Array] = [pa.array([], type=_LS)]
    for rule in rules.measures:
        if not rule.applies_to(scope):
            continue
        clauses = rule.clauses()
        fire = np.ones(n, dtype=bool)
        for metric, op, value in clauses:
            fire &= _OPS[op](metrics[metric].to_numpy(dtype=np.float64, na_value=np.nan), value)
        segments = template_fields(rule.text)
        fields = {f: _field(metrics, labels, f, clauses[0][2]) for _, f, _ in segments if f}
        for values in fields.values():
            fire &= ~pd.isna(values)
        at = np.flatnonzero(fire)
        rows.append(at)
        texts.append(_render(segments, {f: v[at] for f, v in fields.items()}, len(at)))
        ids.append(pa.array([orjson.dumps(rule.id).decode()] * len(at), type=_LS))
    at = np.concatenate(rows)
    return (_join(at, pa.concat_arrays(texts), n, "[]", "[", "]"),
            _join(at, pa.concat_arrays(ids), n, "[]", "[", "]"))


def _field(metrics: pd.DataFrame, labels: pd.DataFrame, name: str, threshold: float
           ) -> np.ndarray:
    if name == "threshold":
        return np.full(len(metrics), threshold)
    if name in METRICS:
        return metrics[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return labels[name].to_numpy(dtype=object, na_value=None)


def _render(segments: list[tuple[str, str, str]], fields: dict[str, np.ndarray], n: int
            ) -> pa.Array:
    """The template filled per row, as JSON strings; formatted once per distinct combination.

    Whole numbers print without ".0" when no format is given (counts)."""
    combo = np.zeros(n, dtype=np.int64)  # 0..k-1, one code per distinct combination
    for values in fields.values():
        codes, uniques = pd.factorize(pd.Series(values, dtype=values.dtype))
        combo, _ = pd.factorize(combo * max(len(uniques), 1) + codes)
    _, first = np.unique(combo, return_index=True)
    encoded = []
    for row in first:
        text = []
        for literal, f, spec in segments:
            text.append(literal)
            if f:
                v = fields[f][row]
                if isinstance(v, float | np.floating):
                    v = float(v)
                    if not spec and v.is_integer():
                        v = int(v)
                text.append(format(v, spec))
        encoded.append(orjson.dumps("".join(text)).decode())
    return pa.array(encoded, type=_LS).take(pa.array(combo))


# --------------------------------------------------------------------------- parks

PARK_COLUMNS = [
    "park_id", "name", "kind", "province_adcode", "city_adcode", "county_adcode", "area_km2",
    "units", "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "categories", "units_by_level",
    "red_units", "open_hazards", "open_major_hazards", "late_hazards", "overdue", "overdue_rate",
    "elevators", "elevators_insured", "insurance_coverage", "five_have_score",
    "five_have_compliant", "five_have_rate", "small_micro_units", "small_micro_share",
    "blacklisted_units", "accidents_3y", "risk_score", "D_max", "risk_index", "rank",
    "dominant_category", "dominant_category_name", "top_units", "monthly", "measures",
    "measure_ids",
]


def park_profiles(equipment: pd.DataFrame, units: pd.DataFrame, parks: gpd.GeoDataFrame,
                  hazards: pd.DataFrame, as_of: date, rules: ParkRules) -> gpd.GeoDataFrame:
    """One profile per park (一园一策), riskiest first; parks holding nothing get zeros.

    A unit belongs to a park when its own location or any of its equipment lies in it.
    ``rank`` 1 = highest ``risk_score`` (sum of D), then more open major hazards, then
    park_id; ``risk_index`` = risk_score as a share (0–100) of the highest park's."""
    pk = _parks(parks)
    index = pd.Index(pk["park_id"])
    n = len(pk)
    eq = _equipment_rows(equipment)
    pos = _positions(index, eq["park_id"])
    u = _unit_rows(units, rules)
    park, unit = _members(u, eq, pos, index)

    out = pd.DataFrame({"park_id": pk["park_id"]})
    for col in ("name", "kind", "province_adcode", "city_adcode", "county_adcode"):
        out[col] = _col(pk, col, dtype="string")
    out["area_km2"] = pd.to_numeric(_col(pk, "area_km2"), errors="coerce").astype("float64")
    out = pd.concat([out, _member_stats(u, park, unit, n), _equipment_stats(eq, pos, n)],
                    axis=1)
    categories, dominant = _categories(eq, pos, n, rules.dominant_exclude)
    out["categories"] = _text(categories)
    out["dominant_category"] = dominant
    out["dominant_category_name"] = _category_names(dominant)
    top = out["risk_score"].max() if n else 0.0
    out["risk_index"] = 100 * out["risk_score"] / top if top > 0 else 0.0
    out["top_units"] = _text(_top_units(u, park, unit, n, rules.top_units))
    out["monthly"] = _text(_monthly(*_hazard_months(hazards, eq, pos, n, as_of, rules.months)))
    order = np.lexsort((out["park_id"].to_numpy(dtype=object),
                        -out["open_major_hazards"].to_numpy(), -out["risk_score"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, n + 1)
    measures, ids = apply_measures(out, out[["name", "dominant_category_name"]], rules, "park")
    out["measures"], out["measure_ids"] = _text(measures), _text(ids)
    geometry = np.asarray(pk.geometry.to_numpy(), dtype=object)[order]
    return _typed(gpd.GeoDataFrame(out[PARK_COLUMNS], geometry=geometry, crs=4326))


def _parks(parks: pd.DataFrame) -> gpd.GeoDataFrame:
    """Parks in EPSG:4326, one row per park_id (the first), no missing ids, index 0..n-1."""
    pk = parks if isinstance(parks, gpd.GeoDataFrame) else gpd.GeoDataFrame(
        parks, geometry=_col(parks, "geometry", None).to_numpy(), crs=4326)
    if pk.crs is None:
        pk = pk.set_crs(4326)
    elif pk.crs.to_epsg() != 4326:
        pk = pk.to_crs(4326)
    ids = _col(pk, "park_id", dtype="string")
    keep = (ids.notna() & ~ids.duplicated()).to_numpy(dtype=bool)
    return pk[keep].assign(park_id=ids[keep].to_numpy()).reset_index(drop=True)


def _unit_rows(units: pd.DataFrame, rules: ParkRules) -> pd.DataFrame:
    """The graded units' columns a park profile reads, one row per credit code."""
    five = pd.to_numeric(_col(units, "five_have_score"), errors="coerce").astype("float64")
    codes = _col(units, "credit_code", dtype="string")
    u = pd.DataFrame({
        "credit_code": codes,
        "park_id": _col(units, "park_id"),
        "name": _col(units, "name", dtype="string"),
        "level": _col(units, "level", dtype="string"),
        "level_rank": _unit_rank(units),
        "D_max": _num(units, "D_max"),
        "open_hazards": _num(units, "open_hazards").astype(np.int64),
        "five_have_score": five.to_numpy(dtype=np.float64, na_value=np.nan),
        "small": _col(units, "size", dtype="string").isin(list(rules.small_sizes))
        .to_numpy(dtype=bool),
        "blacklisted": _flag(units, "blacklisted"),
        "accidents_3y": _num(units, "accidents_3y").astype(np.int64),
    })
    keep = (codes.notna() & ~codes.duplicated()).to_numpy(dtype=bool)
    return u[keep].reset_index(drop=True)


def _unit_rank(units: pd.DataFrame) -> np.ndarray:
    """Level rank 4..1 of each unit (0 ungraded); from ``level`` when no ``level_rank``."""
    if "level_rank" in units.columns:
        return _num(units, "level_rank").astype(np.int64)
    level = _col(units, "level", dtype="string").map(LEVEL_RANK)
    return pd.to_numeric(level).fillna(0).to_numpy(dtype=np.int64)


def _members(u: pd.DataFrame, eq: pd.DataFrame, pos: np.ndarray, index: pd.Index
             ) -> tuple[np.ndarray, np.ndarray]:
    """(park row, unit row) pairs, sorted: the unit's point or any of its equipment is in the
    park (一园一策 covers every enterprise operating in the park)."""
    codes = pd.Index(u["credit_code"])
    in_park = pos >= 0
    park = np.concatenate([_positions(index, u["park_id"]), pos[in_park]])
    unit = np.concatenate([np.arange(len(u)), _positions(codes, eq["unit"][in_park])])
    ok = (park >= 0) & (unit >= 0)
    pairs = np.unique(park[ok] * max(len(u), 1) + unit[ok])
    return pairs // max(len(u), 1), pairs % max(len(u), 1)


def _member_stats(u: pd.DataFrame, park: np.ndarray, unit: np.ndarray, n: int
                  ) -> pd.DataFrame:
    """Per park: units, their levels, "五有", small/micro, blacklist and accident counts."""
    rank = u["level_rank"].to_numpy()[unit]
    by_level = {lv: np.rint(_sum(park, n, rank == r)).astype(np.int64)
                for lv, r in LEVEL_RANK.items()}
    five = u["five_have_score"].to_numpy()[unit]
    known = ~np.isnan(five)
    units = np.bincount(park, minlength=n)
    compliant = np.rint(_sum(park, n, five == 5)).astype(np.int64)
    small = np.rint(_sum(park, n, u["small"].to_numpy()[unit])).astype(np.int64)
    parts: list[str | pa.Array] = []
    for i, lv in enumerate(LEVELS):
        parts += [f'{"," if i else "{"}"{lv}":', _strs(by_level[lv])]
    units_by_level = _text(_cat(*parts, "}"))
    return pd.DataFrame({
        "units": units, "red_units": by_level["red"], "units_by_level": units_by_level,
        "five_have_score": _ratio(_sum(park[known], n, five[known]),
                                  np.bincount(park[known], minlength=n)),
        "five_have_compliant": compliant, "five_have_rate": _ratio(compliant, units),
        "small_micro_units": small, "small_micro_share": _ratio(small, units),
        "blacklisted_units": np.rint(_sum(park, n, u["blacklisted"].to_numpy()[unit]))
        .astype(np.int64),
        "accidents_3y": np.rint(_sum(park, n, u["accidents_3y"].to_numpy()[unit]))
        .astype(np.int64),
    })


def _top_units(u: pd.DataFrame, park: np.ndarray, unit: np.ndarray, n: int, k: int
               ) -> pa.Array:
    """The ``k`` riskiest units of each park: level rank, then D_max, then credit code."""
    m = u.iloc[unit].assign(park=park).sort_values(
        ["park", "level_rank", "D_max", "credit_code"], ascending=[True, False, False, True],
        kind="stable")
    m = m[m.groupby("park", sort=False).cumcount().to_numpy() < k]
    rows = _json_records(m, ["credit_code", "name", "level", "D_max", "open_hazards"])
    return _join(m["park"].to_numpy(), rows, n, "[]", "[", "]")


def _monthly(found: np.ndarray, closed: np.ndarray, labels: list[str]) -> pa.Array:
    """JSON list of {"month", "found", "closed"} per row, oldest month first."""
    n, k = found.shape
    head = pa.array([f'{{"month":"{m}","found":' for m in labels], type=_LS)
    rows = _cat(head.take(pa.array(np.tile(np.arange(k), n))), _strs(found.ravel()),
                ',"closed":', _strs(closed.ravel()), "}")
    return _join(np.repeat(np.arange(n), k), rows, n, "[]", "[", "]")


# --------------------------------------------------------------------------- units

UNIT_COLUMNS = [
    "credit_code", "name", "industry", "size", "park_id", "level", "level_rank", "level_reason",
    "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "categories", "dominant_category",
    "dominant_category_name", "open_hazards", "open_major_hazards", "late_hazards",
    "hazards_found", "hazards_closed", "overdue", "overdue_rate", "elevators",
    "elevators_insured", "insurance_coverage", "five_have_score", "blacklisted", "accidents_3y",
    "risk_score", "D_max", "measures", "measure_ids",
]


def unit_files(equipment: pd.DataFrame, units: pd.DataFrame, hazards: pd.DataFrame,
               as_of: date, rules: ParkRules) -> gpd.GeoDataFrame:
    """One file per graded unit (一企一策), in input order, with its measures and its point.

    Counts come from the unit's equipment; ``hazards_found``/``hazards_closed`` count its
    hazards found / closed in the ``rules.months`` months up to as_of's month."""
    codes = _col(units, "credit_code", dtype="string")
    keys = pd.Index(codes.dropna().unique())
    row = _positions(keys, codes)
    k = len(keys)
    eq = _equipment_rows(equipment)
    pos = _positions(keys, eq["unit"])
    stats = _equipment_stats(eq, pos, k).reindex(row).reset_index(drop=True)
    for col in (*_SUMS, "D_max"):
        stats[col] = stats[col].fillna(0)
    categories, dominant = _categories(eq, pos, k, rules.dominant_exclude)
    found, closed, _ = _hazard_months(hazards, eq, pos, k, as_of, rules.months)

    level_rank = _unit_rank(units)
    five = pd.to_numeric(_col(units, "five_have_score"), errors="coerce").astype("float64")
    small = _col(units, "size", dtype="string").isin(list(rules.small_sizes)).to_numpy(
        dtype=bool)
    blacklisted = _col(units, "blacklisted", dtype="boolean")
    accidents = pd.to_numeric(_col(units, "accidents_3y"), errors="coerce").astype("Int64")
    out = pd.DataFrame({
        "credit_code": codes, "name": _col(units, "name", dtype="string"),
        "industry": _col(units, "industry", dtype="string"),
        "size": _col(units, "size", dtype="string"),
        "park_id": _col(units, "park_id", dtype="string"),
        "level": _level(level_rank, _col(units, "level", dtype="string")),
        "level_rank": level_rank, "level_reason": _col(units, "level_reason", dtype="string"),
    })
    out = pd.concat([out, stats], axis=1)
    out["categories"] = _text(pc.fill_null(categories.take(pa.array(row, mask=row < 0)), "{}"))
    out["dominant_category"] = _take(dominant, row, None)
    out["dominant_category_name"] = _category_names(out["dominant_category"].to_numpy())
    out["hazards_found"] = _take(found.sum(axis=1), row, 0)
    out["hazards_closed"] = _take(closed.sum(axis=1), row, 0)
    out["five_have_score"] = five
    out["blacklisted"] = blacklisted
    out["accidents_3y"] = accidents

    # the unit as "a park of one", so the same measure rules read the same metric names
    full = (five == 5).to_numpy(dtype=bool, na_value=False)
    metrics = out.assign(
        units=1, red_units=(level_rank == LEVEL_RANK["red"]).astype(np.int64),
        five_have_compliant=full.astype(np.int64),
        five_have_rate=np.where(five.notna().to_numpy(dtype=bool), full.astype(float), np.nan),
        small_micro_units=small.astype(np.int64), small_micro_share=small.astype(np.float64),
        blacklisted_units=blacklisted.fillna(False).to_numpy(dtype=np.int64),
        accidents_3y=accidents.fillna(0).to_numpy(dtype=np.int64),
        risk_index=np.nan, rank=np.nan)
    measures, ids = apply_measures(metrics, out[["name", "dominant_category_name"]], rules,
                                   "unit")
    out["measures"], out["measure_ids"] = _text(measures), _text(ids)
    # a unit's "五有" score is a whole number 0–5 (a park's is a mean)
    return _typed(gpd.GeoDataFrame(out[UNIT_COLUMNS], geometry=_points(units), crs=4326),
                  ints=frozenset({"five_have_score"}))


def _level(rank: np.ndarray, level: pd.Series) -> pd.Series:
    """The unit's level column where given, else the level of its rank (0 → <NA>)."""
    return level.fillna(pd.Series(rank).map(LEVEL_BY_RANK).astype("string"))


def _points(units: pd.DataFrame) -> np.ndarray:
    """Each unit's point in EPSG:4326; POINT EMPTY when it has no location (kept, not dropped)."""
    if "geometry" in units.columns:
        crs = units.crs if isinstance(units, gpd.GeoDataFrame) else None
        geo = gpd.GeoSeries(units["geometry"].to_numpy(), crs=crs or 4326)
        if geo.crs.to_epsg() != 4326:
            geo = geo.to_crs(4326)
        values = np.asarray(geo.to_numpy(), dtype=object)
    else:
        values = np.asarray(shapely.points(_num(units, "lon", np.nan), _num(units, "lat", np.nan)),
                            dtype=object)
    values = values.copy()
    missing = shapely.is_missing(values)
    missing[~missing] = np.isnan(shapely.bounds(values[~missing])[:, 0])
    values[missing] = shapely.Point()
    return values


# --------------------------------------------------------------------------- output

_COUNT = {"units", "equipment", "in_use", *LEVEL_COUNT_COLUMNS, "red_units", "open_hazards",
          "open_major_hazards", "late_hazards", "overdue", "elevators", "elevators_insured",
          "five_have_compliant", "small_micro_units", "blacklisted_units", "accidents_3y",
          "rank", "level_rank", "hazards_found", "hazards_closed"}
_FLOAT = {"area_km2", "overdue_rate", "insurance_coverage", "five_have_score", "five_have_rate",
          "small_micro_share", "risk_score", "D_max", "risk_index"}


def _typed(gdf: gpd.GeoDataFrame, ints: frozenset[str] = frozenset()) -> gpd.GeoDataFrame:
    """Plain column dtypes: Int64 counts (and ``ints``), float64 numbers, boolean flags,
    string text/JSON."""
    for col in gdf.columns:
        if col == "geometry":
            continue
        if col in _COUNT or col in ints:
            gdf[col] = pd.to_numeric(gdf[col]).astype("Int64")
        elif col in _FLOAT:
            gdf[col] = pd.to_numeric(gdf[col]).astype("float64")
        elif col == "blacklisted":
            gdf[col] = gdf[col].astype("boolean")
        else:
            gdf[col] = gdf[col].astype("string")
    return gdf
