"""The small and micro units' simplified mode (小微企业简易模式): who is in it, and the short
checklist each gets instead of the full measure set.

Henan plan 二（四）: "推进小微企业双重预防简易化实用化，依托安全生产“一企一档一码”，注重小微企业
特种设备双重预防体系建设的实用性、操作性，紧紧抓住风险隐患关键环节，按照“简便、实用、管用”原则".
A small or micro unit gets a simpler mode, not a higher risk (its level is its equipment's).

- A unit is small/micro (:func:`small_micro`) when its registered size (企业规模) is one of
  ``[parks] small_sizes`` (小型、微型), or, where the size is not given, when it has at most
  ``[small_micro] max_equipment`` pieces in use.
- Its checklist (:func:`checklists`) is the items of ``[[small_micro.checklist]]`` that
  matter for its equipment: an item names top categories (``3000`` 电梯 …) and goes to units
  with a piece of them in use; an item without categories goes to every small/micro unit.
  Each item cites its basis: the plans (:func:`data.plans.cite`) or the law.

Vectorised: units × items presence from one bincount per item; the JSON of a checklist is
written once per distinct set of items, not per unit.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.catalogue import check_top_codes
from data.plans import cite
from layers.columns import arrow_text, column, in_use, number_array, text, top_categories

#: the law most checklist items rest on, as a regulator names it
LAW = "《中华人民共和国特种设备安全法》"
MAX_ITEMS = 60  # a checklist is short; the set of items a unit gets is packed in one int64


class ChecklistItem(BaseModel):
    """One item of the small/micro checklist."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40,
                    description="清单项编号（英文小写、数字、下划线）")
    categories: tuple[str, ...] = Field(
        (), description="适用的设备种类代码（如 3000 电梯）：单位有该种类在用设备时列入；"
                        "不写表示所有小微企业都列入")
    text: str = Field(min_length=1, max_length=200, description="清单项内容（简短、可操作）")
    basis: str = Field(min_length=1, max_length=200, description="依据（方案条款或法律条文）")

    @field_validator("categories")
    @classmethod
    def _top_codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_top_codes(v)


def _henan(clause: str, quote: str | None = None) -> str:
    return cite("henan", clause, quote, short=True)


_CERTIFIED = _henan("二（一）", "严格落实特种设备作业人员、管理人员持证上岗")
_SELF_CHECK = f"{LAW}第三十九条（经常性维护保养和定期自行检查，安全附件定期校验、检修）"

DEFAULT_CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        id="self_check",
        text="隐患自查、自报、自纠：每月对照本清单自查一次，发现隐患当场登记，限期整改，整改后销号",
        basis=_henan("二（三）", "督促使用单位履行隐患自查、自报、自纠的主体责任")
        + "；二（一）“隐患排查、登记、治理、销号的全过程记录和闭环管理”"),
    ChecklistItem(
        id="inspection_due",
        text="按期报检：在下次检验日期前1个月申报定期检验；未经定期检验或检验不合格的设备停止使用",
        basis=f"{LAW}第四十条"),
    ChecklistItem(
        id="elevator_maintenance", categories=("3000",),
        text="电梯委托有资质的单位维护保养，签订维保合同，每15日至少维保一次并留存记录",
        basis=f"{LAW}第四十五条；TSG T5002-2017《电梯维护保养规则》"),
    ChecklistItem(
        id="elevator_96333", categories=("3000",),
        text="轿厢内张贴96333电梯应急救援电话和安全使用须知，电梯困人立即报告并配合救援",
        basis=_henan("二（三）", "强化电梯96333应急处置平台应用")),
    ChecklistItem(
        id="boiler_operators", categories=("1000",),
        text="司炉人员持证上岗，按操作规程运行并记录",
        basis=_CERTIFIED),
    ChecklistItem(
        id="boiler_water", categories=("1000",),
        text="按规定做好锅炉水（介）质处理并定期化验；安全阀、压力表等安全附件定期校验",
        basis=f"{LAW}第四十四条、第三十九条"),
    ChecklistItem(
        id="vessel_accessories", categories=("2000",),
        text="压力容器、气瓶的安全阀、压力表等安全附件定期校验、检修并记录",
        basis=_SELF_CHECK),
    ChecklistItem(
        id="lifting_operators", categories=("4000",),
        text="起重机械作业人员持证上岗；作业前检查吊索具、限位器和制动器",
        basis=f"{_CERTIFIED}；{_SELF_CHECK}"),
    ChecklistItem(
        id="vehicle_drivers", categories=("5000",),
        text="叉车等厂内机动车辆司机持证驾驶；每日出车前点检制动、转向、灯光和喇叭",
        basis=f"{_CERTIFIED}；{_SELF_CHECK}"),
    ChecklistItem(
        id="daily_trial", categories=("6000", "9000"),
        text="大型游乐设施、客运索道每日投入使用前试运行和例行安全检查，确认安全附件和安全保护装置",
        basis=f"{LAW}第四十三条"),
)


class SmallMicroRules(BaseModel):
    """小微企业简易模式（豫市监办〔2021〕55号 二（四）“简便、实用、管用”）."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_equipment: int = Field(
        3, ge=0, le=1000,
        description="企业规模未填写时，在用设备不超过该台数的单位按小微企业管理（简易模式）；"
                    "填写了规模的按 [parks] small_sizes 判定")
    checklist: tuple[ChecklistItem, ...] = Field(
        DEFAULT_CHECKLIST,
        description="小微企业简易清单：按单位在用设备种类列入的少数关键事项（按顺序输出），"
                    "代替完整的一企一策措施")

    @model_validator(mode="after")
    def _unique_ids(self) -> SmallMicroRules:
        ids = [item.id for item in self.checklist]
        if len(ids) != len(set(ids)):
            raise ValueError("checklist 的 id 不能重复")
        if len(ids) > MAX_ITEMS:
            raise ValueError(f"checklist 至多 {MAX_ITEMS} 项（简易清单应简短）")
        return self


def small_micro(units: pd.DataFrame, sizes: tuple[str, ...], max_equipment: int
                ) -> np.ndarray:
    """Per unit, whether it is in the simplified mode: its size is one of ``sizes``, or its
    size is not given and it has at most ``max_equipment`` pieces in use (``in_use_count``
    of the graded units; 0 when absent)."""
    size = text(units, "size", strip=True)
    known = size.notna().to_numpy(dtype=bool) & (size != "").fillna(False).to_numpy(dtype=bool)
    listed = size.isin(list(sizes)).to_numpy(dtype=bool)
    few = number_array(units, "in_use_count") <= max_equipment
    return np.where(known, listed, few)


def category_presence(units: pd.DataFrame, equipment: pd.DataFrame, codes: tuple[str, ...]
                      ) -> np.ndarray:
    """units × ``codes``: whether the unit has a piece in use of each top category."""
    keys = arrow_text(text(units, "credit_code"))
    n = len(units)
    out = np.zeros((n, len(codes)), dtype=bool)
    if not n or not len(equipment) or not codes:
        return out
    owner = pc.fill_null(pc.index_in(arrow_text(column(equipment, "unit_credit_code")),
                                     value_set=keys, skip_nulls=True), -1)
    owner = owner.to_numpy(zero_copy_only=False).astype(np.int64)
    cat = pc.fill_null(pc.index_in(arrow_text(top_categories(equipment)),
                                   value_set=arrow_text(list(codes))), -1)
    cat = cat.to_numpy(zero_copy_only=False).astype(np.int64)
    hit = (owner >= 0) & (cat >= 0) & in_use(equipment)
    k = len(codes)
    counts = np.bincount(owner[hit] * k + cat[hit], minlength=n * k)
    return counts.reshape(n, k) > 0


def checklists(units: pd.DataFrame, equipment: pd.DataFrame, small: np.ndarray,
               rules: SmallMicroRules) -> np.ndarray:
    """Per unit, its checklist as a JSON list of ``{id, text, basis}`` (``[]`` for a unit
    not in the simplified mode): the items without categories, and those naming a
    category the unit has in use, in rule order."""
    items = rules.checklist
    n = len(units)
    if not n:
        return np.zeros(0, dtype=object)
    codes = tuple(dict.fromkeys(c for item in items for c in item.categories))
    has = category_presence(units, equipment, codes)
    fire = np.zeros((n, len(items)), dtype=bool)
    for j, item in enumerate(items):
        fire[:, j] = (has[:, [codes.index(c) for c in item.categories]].any(axis=1)
                      if item.categories else True)
    fire &= np.asarray(small, dtype=bool)[:, None]
    packed = fire.astype(np.int64) @ (np.int64(1) << np.arange(len(items), dtype=np.int64))
    combos, at = np.unique(packed, return_inverse=True)
    texts = [orjson.dumps([{"id": items[j].id, "text": items[j].text,
                            "basis": items[j].basis}
                           for j in range(len(items)) if (int(c) >> j) & 1]).decode()
             for c in combos]
    return np.asarray(texts, dtype=object)[at.reshape(-1)]
