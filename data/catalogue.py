"""The special-equipment catalogue (特种设备目录) as data, and resolution of registry values.

The table ships as ``equipment_catalogue.csv`` next to this module: every 种类 (category,
e.g. 3000 电梯), 类别 (class, e.g. 3100) and 品种 (variety, e.g. 3110) of the catalogue
published with 质检总局公告2014年第114号. ``equipment_catalogue.md`` says how it was checked.

:func:`resolve_categories` maps what registries export in a "设备类别" column (a code, a
name, or a common short name) to the catalogue code it names and to its top-level 种类.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

CATALOGUE_CSV = Path(__file__).parent / "equipment_catalogue.csv"
LEVELS = ("种类", "类别", "品种")

# Short names that registries and people use for a catalogue entry. Each maps to the code
# whose published name it abbreviates; names and codes of the catalogue itself need no entry.
ALIASES: dict[str, str] = {
    "扶梯": "3310",              # 自动扶梯
    "人行道": "3320",            # 自动人行道
    "起重机": "4000",            # 起重机械
    "立体车库": "4D00",          # 机械式停车设备, its everyday name
    "场内专用机动车辆": "5000",  # 场（厂）内专用机动车辆 written with one of its two words
    "厂内专用机动车辆": "5000",
    "场（厂）内机动车辆": "5000",
    "场内机动车辆": "5000",
    "厂内机动车辆": "5000",
    "场车": "5000",              # customary abbreviation in bureau statistics
    "观光车": "5200",            # 非公路用旅游观光车辆
    "观光车辆": "5200",
    "游乐设施": "6000",          # 大型游乐设施
    "索道": "9000",              # 客运索道
}

_WHITESPACE = re.compile(r"\s+")
_FLOAT_CODE = re.compile(r"^(\d{4})\.0*$")  # '3110.0' as Excel floats give


@cache
def _read() -> pd.DataFrame:
    return pd.read_csv(CATALOGUE_CSV, dtype="string", keep_default_na=False, na_values=[""])


def load_catalogue() -> pd.DataFrame:
    """The catalogue: code, name, level (种类/类别/品种), parent_code, top_code, source."""
    return _read().copy()


def _keys(values: pd.Series) -> pd.Series:
    """Lookup keys: NFKC (full-width digits, letters, brackets, spaces), no spaces, upper."""
    text = values.astype("string")
    text = text.map(lambda s: unicodedata.normalize("NFKC", s), na_action="ignore")
    text = text.str.replace(_WHITESPACE, "", regex=True).str.upper()
    return text.str.replace(_FLOAT_CODE, r"\1", regex=True)


@cache
def _lookup() -> tuple[dict[str, str], dict[str, str]]:
    """(key → catalogue code, code → top-level code)."""
    cat = _read()
    codes = cat["code"].tolist()
    table: dict[str, str] = {}
    table.update(zip(_keys(cat["name"]).tolist(), codes, strict=True))
    table.update(zip(_keys(pd.Series(list(ALIASES))).tolist(), ALIASES.values(), strict=True))
    table.update(zip(_keys(cat["code"]).tolist(), codes, strict=True))
    return table, dict(zip(codes, cat["top_code"].tolist(), strict=True))


def resolve_categories(values: pd.Series) -> pd.DataFrame:
    """Catalogue code named by each value and its top-level 种类 code, index-aligned.

    Accepts codes ('3110', ' 3110 ', '3110.0', '３１１０', 'f000'), catalogue names ('电梯',
    '曳引驱动乘客电梯', half- or full-width brackets) and :data:`ALIASES`. Unknown or empty
    values give <NA> in both columns. Work is done once per distinct value.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table, top = _lookup()
    keys = _keys(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    code = keys.map(table)
    category = code.map(top, na_action="ignore")
    return pd.DataFrame(
        {"category_code": _take(code, codes), "category": _take(category, codes)},
        index=values.index,
    ).astype("string")


def top_codes(codes: pd.Series) -> pd.Series:
    """The top-level 种类 of each catalogue code, as the catalogue says (7310 安全阀 is in
    F000 安全附件, not in 7000), index-aligned; a code not in the catalogue gives <NA>.
    Work is done once per distinct code."""
    index, uniques = pd.factorize(codes, use_na_sentinel=True)
    _, top = _lookup()
    per_unique = pd.Series(np.asarray(uniques, dtype=object), dtype=object).map(top)
    return pd.Series(_take(per_unique, index), index=codes.index, dtype="string")


def _take(per_unique: pd.Series, codes: np.ndarray) -> np.ndarray:
    """Spread per-distinct results back over the rows; the NA sentinel (-1) gives <NA>."""
    arr = np.append(per_unique.to_numpy(dtype=object, na_value=pd.NA), pd.NA)
    return arr[np.where(codes < 0, len(arr) - 1, codes)]


def category_name(code: object, default: str | None = None) -> str:
    """Chinese name of the catalogue entry ``code`` names (any form resolve accepts).

    Unknown values return ``default``, or raise KeyError when no default is given.
    """
    resolved = resolve_categories(pd.Series([code], dtype=object))["category_code"].iloc[0]
    if pd.isna(resolved):
        if default is None:
            raise KeyError(code)
        return default
    return _names()[resolved]


@cache
def _names() -> dict[str, str]:
    cat = _read()
    return dict(zip(cat["code"].tolist(), cat["name"].tolist(), strict=True))


def _top_categories() -> dict[str, str]:
    cat = _read()
    top = cat[cat["level"] == "种类"]
    return dict(zip(top["code"].tolist(), top["name"].tolist(), strict=True))


TOP_CATEGORIES: dict[str, str] = _top_categories()
"""Top-level 种类 code → Chinese name, in catalogue order (1000 锅炉 … 9000, F000)."""


def check_top_codes(codes: tuple[str, ...]) -> tuple[str, ...]:
    """``codes`` if every one is a top-level 种类 code; else a ValueError naming the others
    (for the rule-file validators that take category lists)."""
    unknown = [c for c in codes if c not in TOP_CATEGORIES]
    if unknown:
        raise ValueError(f"不是特种设备种类代码：{unknown}；可用：{list(TOP_CATEGORIES)}")
    return codes
