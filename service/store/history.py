"""The kept history of builds: each build's region indicators (``region_history``).

Every ``riskmap build`` appends one row per region of its ``regions`` layer (province, city
and county rows) in the same write as the layers, so a failed build adds none and a report
can compare a year's figures with the last build of the year before. Both stores write the
rows made here and return them through :func:`finish`.

Why one JSON column of indicators rather than a typed column each: the regions layer gains
fields as the product grows (建成率 and its targets, …), and the history must stay readable
across those changes without a migration per indicator; a report reads a region and its
children (a few hundred rows), never filters on an indicator in SQL.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from layers.registry import ALL
from service.store.base import LayerBuild
from service.store.conform import pandas_dtype
from service.store.tables import REGION_HISTORY

# numeric fields of the regions layer that are not codes: what a report compares
NOT_INDICATORS = frozenset({"admin_level", "adcode", "parent_adcode", "province_adcode",
                            "city_adcode", "name"})


def indicator_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric columns of a regions frame (the registry's int and float fields, and any
    numeric column a newer registry added)."""
    spec = ALL["regions"]
    typed = [n for n, t in spec.fields if t in ("int", "float") and n in frame.columns]
    extra = [c for c in frame.columns if c not in typed and c not in NOT_INDICATORS
             and c != "geometry" and c not in spec.field_names
             and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
                 frame[c])]
    return [*typed, *extra]


#: the insurance layer's figures kept beside the regions' (insurance field → indicator)
INSURANCE = {"elevators": "insurance_elevators", "insured": "insurance_insured",
             "coverage": "insurance_coverage"}


def history_rows(regions: pd.DataFrame, build: LayerBuild,
                 insurance: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``region_history`` rows of one build from its regions layer (and the elevator
    insurance coverage of its insurance layer), canonical dtypes."""
    n = len(regions)
    numeric = regions[indicator_columns(regions)]
    if insurance is not None and len(insurance) and n:
        keyed = insurance.drop_duplicates(["admin_level", "adcode"]).set_index(
            ["admin_level", "adcode"])[list(INSURANCE)].rename(columns=INSURANCE)
        at = pd.MultiIndex.from_arrays([regions["admin_level"].to_numpy(dtype=object),
                                        regions["adcode"].to_numpy(dtype=object)])
        extra = keyed.reindex(at).reset_index(drop=True).astype("float64")
        numeric = pd.concat([numeric.reset_index(drop=True), extra], axis=1)
    if n:
        values = numeric.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
        values = pd.DataFrame(values, columns=numeric.columns)
        # one JSON object per row, nulls for missing values, integers kept integral
        lines = values.to_json(orient="records", lines=True, double_precision=10)
        indicators = lines.strip().split("\n")
    else:
        indicators = []
    built_at = pd.Timestamp(build.built_at)
    if built_at.tzinfo is not None:
        built_at = built_at.tz_convert("UTC").tz_localize(None)
    data = {
        "build_id": [build.build_id] * n, "built_at": [built_at] * n,
        "as_of": [pd.Timestamp(build.as_of)] * n, "rules_hash": [build.rules_hash] * n,
        "level": regions["admin_level"].to_numpy(dtype=object) if n else [],
        "adcode": regions["adcode"].to_numpy(dtype=object) if n else [],
        "name": regions["name"].to_numpy(dtype=object) if n else [],
        "parent_adcode": regions["parent_adcode"].to_numpy(dtype=object) if n else [],
        "indicators": indicators,
    }
    return pd.DataFrame({c: pd.Series(data[c], dtype=object).astype(pandas_dtype(t))
                         for c, t in REGION_HISTORY.columns})


def empty_history() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=pandas_dtype(t)) for c, t in REGION_HISTORY.columns})


def select_rows(frame: pd.DataFrame, adcodes: tuple[str, ...], level: str | None
                ) -> pd.DataFrame:
    """The rows of ``adcodes`` (of ``level`` if given), in memory (the embedded way)."""
    mask = frame["adcode"].isin(adcodes).fillna(False).to_numpy(dtype=bool)
    if level is not None:
        mask = mask & (frame["level"] == level).fillna(False).to_numpy(dtype=bool)
    return frame.loc[mask]


def finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as both stores return them: canonical dtypes, ``indicators`` parsed to dicts,
    oldest build first."""
    out = pd.DataFrame({c: frame[c].reset_index(drop=True) for c, _ in REGION_HISTORY.columns})
    for column, abstract in REGION_HISTORY.columns:
        if abstract != "json":
            out[column] = out[column].astype(pandas_dtype(abstract))
    out["indicators"] = pd.Series(
        [json.loads(v) if isinstance(v, str) else (dict(v) if isinstance(v, dict) else {})
         for v in out["indicators"]], dtype=object)
    return out.sort_values(["built_at", "build_id", "level", "adcode"],
                           kind="stable").reset_index(drop=True)


def as_adcodes(adcodes: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (adcodes,) if isinstance(adcodes, str) else tuple(adcodes)
