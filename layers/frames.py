"""The frames the layer functions pass each other, and the risk levels.

Every function in :mod:`layers` is pure: pandas/GeoPandas in, GeoPandas out, no store,
web or clock (``as_of`` is always an argument). The graded frames below are the contract
between :mod:`layers.risk` and every layer built on it.

``GRADED_EQUIPMENT`` (one row per piece of equipment, from ``layers.risk.grade_equipment``)
    the stored ``equipment`` columns plus
    ``top_category`` (e.g. ``"3000"``), ``in_use`` (status 在用 or unknown),
    ``overdue`` (in use and ``next_inspection_due`` < as_of),
    ``open_hazards`` / ``open_major_hazards`` / ``late_hazards`` (open past deadline),
    ``L``, ``E``, ``C``, ``D`` (LEC, 0 when not graded), ``lec_band`` (five-band name),
    ``level`` (``red``/``orange``/``yellow``/``blue``; <NA> when not in use),
    ``level_rank`` (4..1; 0 when not graded) and the explanation
    ``L_reason``, ``E_reason``, ``C_reason`` (Chinese, the factor that set each value)
    and ``level_reason`` (overrides such as an open major hazard).

``GRADED_UNITS`` (one row per using unit, from ``layers.risk.grade_units``)
    the stored ``units`` columns plus ``equipment_count``, ``in_use_count``,
    ``n_red``/``n_orange``/``n_yellow``/``n_blue``, ``D_max``, ``open_hazards``,
    ``open_major_hazards``, ``overdue_count``, ``level``, ``level_rank`` and
    ``level_reason``. Units named by equipment but absent from the units table are
    included with what the equipment says (name, location of the first piece).
"""

from __future__ import annotations

import pandas as pd

from data.catalogue import top_codes

#: 特种设备目录: the top category code of elevators (电梯).
ELEVATORS = "3000"

# The four colour levels of 安全风险分级管控, most serious first.
LEVELS: tuple[str, ...] = ("red", "orange", "yellow", "blue")
LEVEL_RANK: dict[str, int] = {"red": 4, "orange": 3, "yellow": 2, "blue": 1}
LEVEL_BY_RANK: dict[int, str] = {v: k for k, v in LEVEL_RANK.items()}
LEVEL_ZH: dict[str, str] = {"red": "重大风险", "orange": "较大风险", "yellow": "一般风险",
                            "blue": "低风险"}
LEVEL_COLOURS: dict[str, str] = {"red": "#d7191c", "orange": "#fd8d3c", "yellow": "#fed976",
                                 "blue": "#2c7bb6"}

# Level count columns, in LEVELS order (``n_red`` ...).
LEVEL_COUNT_COLUMNS: tuple[str, ...] = tuple(f"n_{lv}" for lv in LEVELS)

OPEN_HAZARD_STATUS: tuple[str, ...] = ("已登记", "整改中")
MAJOR_HAZARD = "重大"


def level_from_rank(rank: pd.Series) -> pd.Series:
    """Rank 4..1 -> level code; 0 or missing -> <NA>."""
    return rank.map(LEVEL_BY_RANK).astype("string")


def top_category(codes: pd.Series) -> pd.Series:
    """Catalogue code -> its top-level category as the catalogue has it (``3110`` -> ``3000``,
    ``7310`` 安全阀 -> ``F000``, not ``7000``); <NA> for a code not in the catalogue."""
    return top_codes(codes.astype("string"))
