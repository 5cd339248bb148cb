"""The two plans the product implements, and how a user-facing string cites them.

A regulator names a plan by its document number and title, then the clause:
豫市监办〔2021〕55号《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》二（四）.
:func:`cite` writes that (and, with ``short=True``, the form for popups, reasons and
measures: 豫市监办〔2021〕55号 二（四）). Clauses are written as the plans write them, with
full-width brackets: 二（四） is part 二, item （四）.

- ``henan``: 河南省市场监督管理局《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》
  （豫市监办〔2021〕55号）, Henan (410000) from 2021.
- ``shaanxi``: 陕西省《全省特种设备安全专项整治三年行动实施方案》（附件14）, Shaanxi (610000),
  2020–2022. It has no document number of its own, so it is named by province and title.

The LEC grading is no plan's: it is the national practice :data:`LEC`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the LEC method, as a regulator names it
LEC = "作业条件危险性分析法（LEC）"
#: the LEC tables of E and C, each value with the descriptor it stands for
LEC_E_TABLE = "作业条件危险性分析法（LEC）暴露于危险环境的频繁程度（E）取值表"
LEC_E: dict[float, str] = {
    10: "连续暴露", 6: "每天工作时间内暴露", 3: "每周一次或偶然暴露", 2: "每月一次暴露",
    1: "每年几次暴露", 0.5: "非常罕见地暴露"}
LEC_C_TABLE = "作业条件危险性分析法（LEC）发生事故可能造成的后果（C）取值表"
LEC_C: dict[float, str] = {
    100: "大灾难，许多人死亡", 40: "灾难，数人死亡", 15: "非常严重，一人死亡", 7: "严重，重伤",
    3: "重大，致残", 1: "引人注目，需要救护"}
#: the classes of fixed pressure vessels (第Ⅰ、Ⅱ、Ⅲ类) by medium, design pressure and volume,
#: the catalogue's 2130/2150/2170 (2110 超高压容器 is listed on its own)
TSG_21 = ("TSG 21-2016《固定式压力容器安全技术监察规程》附件A 压力容器分类"
          "（按介质、设计压力和容积划分第Ⅰ、Ⅱ、Ⅲ类）")

_NUMERAL = "一二三四五六七八九十"
#: a clause as the plans write it: a part (二) and, mostly, an item in it (二（四）)
CLAUSE = re.compile(rf"[{_NUMERAL}]+(?:（[{_NUMERAL}]+）)?")


@dataclass(frozen=True)
class Plan:
    key: str
    issuer: str                 # who issued it
    title: str                  # the title, without 《》
    number: str | None          # 发文字号, None where the plan has none
    short: str                  # its name where there is little room
    province: str               # the adcode of the province it applies to
    year_from: int
    year_to: int | None         # None: still in force
    annex: str | None = None    # the attachment it was issued as

    @property
    def reference(self) -> str:
        """The plan named in full, as a list of sources names it."""
        tail = f"（{self.number}）" if self.number else (f"（{self.annex}）" if self.annex else "")
        return f"{self.issuer}《{self.title}》{tail}"

    @property
    def years(self) -> str:
        return f"{self.year_from}–{self.year_to}" if self.year_to else f"{self.year_from} 起"

    def name(self, short: bool = False) -> str:
        """How a citation begins: the number (and, in full, the title), or province and
        title for a plan without a number."""
        if self.number:
            return f"{self.number} " if short else f"{self.number}《{self.title}》"
        return f"{self.province_name}《{self.title}》"

    @property
    def province_name(self) -> str:
        return self.issuer[:3]


HENAN = Plan(
    key="henan", issuer="河南省市场监督管理局",
    title="河南省2021年持续深化特种设备领域双重预防体系建设工作方案",
    number="豫市监办〔2021〕55号", short="豫市监办〔2021〕55号",
    province="410000", year_from=2021, year_to=None)
SHAANXI = Plan(
    key="shaanxi", issuer="陕西省",
    title="全省特种设备安全专项整治三年行动实施方案",
    number=None, short="陕西省特种设备安全专项整治三年行动方案",
    province="610000", year_from=2020, year_to=2022, annex="附件14")
PLANS: dict[str, Plan] = {plan.key: plan for plan in (HENAN, SHAANXI)}


def written_clause(text: str) -> str:
    """A clause in the plans' own writing: half-width brackets become full-width; anything
    that is not a part or item number is refused."""
    written = text.strip().replace("(", "（").replace(")", "）")
    if not CLAUSE.fullmatch(written):
        raise ValueError(f"{text!r} is not a clause such as 二（四）")
    return written


def cite(plan_key: str, clause: str, quote: str | None = None, *, short: bool = False) -> str:
    """The citation a regulator reads: plan, clause and, if given, the quoted words.

    >>> cite("henan", "二（四）")
    '豫市监办〔2021〕55号《河南省2021年持续深化特种设备领域双重预防体系建设工作方案》二（四）'
    >>> cite("henan", "二(四)", short=True)
    '豫市监办〔2021〕55号 二（四）'
    >>> cite("shaanxi", "二（五）", "电梯保险覆盖率应不低于保有量的40%", short=True)
    '陕西省《全省特种设备安全专项整治三年行动实施方案》二（五）“电梯保险覆盖率应不低于保有量的40%”'
    """
    try:
        plan = PLANS[plan_key]
    except KeyError:
        raise KeyError(f"no plan {plan_key!r}; plans: {sorted(PLANS)}") from None
    text = plan.name(short) + written_clause(clause)
    return text + f"“{quote}”" if quote else text
