"""The monthly campaign calendar (专项整治月历), as rule-file data.

Shaanxi plan 二（一）: 2–3 月春节后企业复工复产隐患自我排查月；4–5 月法规政策、技术规范、主体责任、
设备风险自查整改月；6–7 月自我风险研判月；8–9 月应急演练月. It is Shaanxi's, for the plan's
years, so each default campaign is scoped to 610000, 2020–2022 (``layers/scope.py``). The
worklist (``service/worklist.py``) turns a campaign in force into a task for each unit of
the levels it names.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, field_validator

from data.plans import cite
from layers.scope import Scope

LEVELS = ("red", "orange", "yellow", "blue")
BASIS = cite("shaanxi", "二（一）", short=True)


class Campaign(Scope):
    """One campaign of the calendar: its months, its name and the units it addresses."""

    months: tuple[int, ...] = Field(min_length=1, description="开展月份（1–12）")
    text: str = Field(min_length=1, description="专项任务名称")
    levels: tuple[str, ...] = Field(("red", "orange"), min_length=1,
                                    description="督促落实的单位风险等级（red/orange/yellow/blue）")
    basis: str = Field(BASIS, min_length=1, description="依据（文件条款）")

    @field_validator("months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"月份 {bad} 须在 1 至 12 之间")
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [lv for lv in v if lv not in LEVELS]
        if bad:
            raise ValueError(f"风险等级 {bad} 不在 {list(LEVELS)} 之中")
        return v


def _shaanxi(months: tuple[int, ...], text: str) -> Campaign:
    return Campaign(months=months, text=text, provinces=("610000",), from_year=2020,
                    to_year=2022)


DEFAULT_CAMPAIGNS: tuple[Campaign, ...] = (
    _shaanxi((2, 3), "春节后企业复工复产隐患自我排查月"),
    _shaanxi((4, 5), "企业法规政策、技术规范、主体责任、设备风险自查整改月"),
    _shaanxi((6, 7), "企业自我风险研判月"),
    _shaanxi((8, 9), "企业应急演练月"),
)


def campaigns_on(campaigns: tuple[Campaign, ...], day: date) -> tuple[Campaign, ...]:
    """The campaigns of ``day``'s month whose years include it (provinces are per unit)."""
    return tuple(c for c in campaigns if day.month in c.months and c.in_years(day))
