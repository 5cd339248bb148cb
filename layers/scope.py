"""Where and when a rule is in force: its provinces and its years.

A provincial plan binds its own province for its own years: Shaanxi's three-year plan is
Shaanxi's (610000), 2020–2022; Henan's plan is Henan's (410000), from 2021 (``data/plans.py``).
A rule or section of the rule file that comes from such a plan carries a scope::

    provinces = ["610000"]
    from_year = 2020
    to_year = 2022

Absent fields mean "no limit": a rule without any is national practice and applies
everywhere, always. Each scoped rule checks every row's ``province_adcode`` and the build's
as-of date with :meth:`Scope.mask` (or one region with :meth:`Scope.applies`).

``layers/rules.py`` re-exports :class:`Scope`; it lives here because the rule sections that
inherit it (``layers/frequency.py``, ``layers/alerts.py``) are imported by ``layers/rules.py``.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo.boundaries import province_codes

_ADCODE = re.compile(r"\d{2}0000")


class Scope(BaseModel):
    """Provinces and years a rule is in force; each absent field is no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provinces: tuple[str, ...] | None = Field(
        None, description="适用省份（省级行政区划代码）；不写表示全国适用")
    from_year: int | None = Field(None, ge=2000, le=2100,
                                  description="起始年度（含）；不写表示不限")
    to_year: int | None = Field(None, ge=2000, le=2100,
                                description="截止年度（含）；不写表示长期有效")

    @field_validator("provinces")
    @classmethod
    def _scope_provinces(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("provinces 不能为空列表（全国适用请删去 provinces）")
        known = province_codes()
        bad = [p for p in v if not _ADCODE.fullmatch(p) or p not in known]
        if bad:
            raise ValueError(f"适用省份 {bad} 不是已知的省级行政区划代码（已知：{list(known)}）")
        return v

    @model_validator(mode="after")
    def _scope_years(self) -> Scope:
        if self.from_year is not None and self.to_year is not None and (
                self.to_year < self.from_year):
            raise ValueError(f"截止年度 to_year={self.to_year} 早于起始年度 "
                             f"from_year={self.from_year}")
        return self

    @property
    def scope(self) -> Scope:
        """Only the scope of a scoped rule (what :meth:`applies` and :meth:`mask` read)."""
        return Scope(provinces=self.provinces, from_year=self.from_year, to_year=self.to_year)

    def in_years(self, day: date) -> bool:
        return ((self.from_year is None or day.year >= self.from_year)
                and (self.to_year is None or day.year <= self.to_year))

    def applies(self, province_adcode: str | None, day: date) -> bool:
        """Whether the rule is in force in this province on ``day``."""
        if not self.in_years(day):
            return False
        return self.provinces is None or (province_adcode is not None
                                          and str(province_adcode) in self.provinces)

    def mask(self, province_adcodes: pd.Series | np.ndarray, day: date) -> np.ndarray:
        """Per row, whether the rule is in force there on ``day`` (a row without a
        province only where the rule is national)."""
        n = len(province_adcodes)
        if not self.in_years(day):
            return np.zeros(n, dtype=bool)
        if self.provinces is None:
            return np.ones(n, dtype=bool)
        codes = pd.Series(province_adcodes, dtype="string")
        return codes.isin(list(self.provinces)).fillna(False).to_numpy(dtype=bool)


class ShaanxiScope(Scope):
    """A Shaanxi plan rule's scope by default: Shaanxi (610000), 2020–2022."""

    provinces: tuple[str, ...] | None = Field(
        ("610000",), description="适用省份（省级行政区划代码）；不写表示全国适用")
    from_year: int | None = Field(2020, ge=2000, le=2100,
                                  description="起始年度（含）；不写表示不限")
    to_year: int | None = Field(2022, ge=2000, le=2100,
                                description="截止年度（含）；不写表示长期有效")
