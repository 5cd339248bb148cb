"""Parse every field of a raw table by its schema type; record what cannot be parsed.

Whole columns at a time: each parser returns values and a mask of bad entries, and the
mask becomes reject rows naming the field. Location fields (lon, lat, crs, address)
are parsed here and resolved in :mod:`service.ingest.locate`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data import credit_code
from data.catalogue import resolve_categories
from data.reasons import Reason
from data.schema import SCHEMAS, Field, FieldType
from geo.datum import normalise_datum_labels
from service.ingest import values
from service.ingest.read import RawTable
from service.ingest.rejects import Detail, RejectLog


def _column(raw: RawTable, name: str) -> pd.Series:
    if name in raw.frame.columns:
        return raw.frame[name]
    return pd.Series(pd.NA, index=raw.frame.index, dtype="object")


def parse_table(raw: RawTable, log: RejectLog) -> pd.DataFrame:
    """Typed canonical columns for every field of the kind (missing columns are NA). The
    needed columns the file lacks are told to ``log``, which rejects their rows for the
    file (``missing_column``) rather than each row as ``missing``."""
    log.lacks(raw.path, raw.absent)
    out: dict[str, pd.Series] = {}
    n = len(raw.frame)
    for f in SCHEMAS[raw.kind]:
        source = _column(raw, f.name)
        text = values.normalise_text(source)
        present = text.notna().to_numpy()
        parsed, bad, code, detail = _parse(f, source, text)
        if f.type == FieldType.CATEGORY:
            out["category_code"] = parsed["category_code"]
            out["category"] = parsed["category"]
        else:
            out[f.name] = parsed
        if bad is not None:
            log.add(raw.path, raw.kind, raw.rows, bad & present, f.name, code, text, detail)
        if f.required:
            log.add(raw.path, raw.kind, raw.rows, ~present, f.name, Reason.MISSING)
        if f.min is not None or f.max is not None:
            num = pd.to_numeric(parsed, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            lo = -np.inf if f.min is None else f.min
            hi = np.inf if f.max is None else f.max
            out_of = np.isfinite(num) & ((num < lo) | (num > hi))
            log.add(raw.path, raw.kind, raw.rows, out_of, f.name, Reason.OUT_OF_RANGE, text,
                    f"{f.min}–{f.max}")
    frame = pd.DataFrame(out, index=range(n))
    return frame


COORDINATES = ("lon", "lat")
SIXTY = ("分或秒不小于 60", "minutes or seconds of 60 or more")


def _parse(f: Field, source: pd.Series, text: pd.Series
           ) -> tuple[pd.Series | pd.DataFrame, np.ndarray | None, str, Detail]:
    """Parsed values, the mask of bad ones, their reason code and the reason's detail."""
    t = f.type
    if t == FieldType.DATE:
        parsed, bad = values.parse_dates(source)
        return parsed, bad, Reason.BAD_DATE, None
    if t == FieldType.FLOAT and f.name in COORDINATES:
        parsed, bad, sixty = values.parse_coordinates(source)
        detail: Detail = None
        if sixty.any():
            detail = tuple(pd.Series(np.where(sixty, d, None), index=text.index, dtype="string")
                           for d in SIXTY)
        return parsed, bad, Reason.BAD_NUMBER, detail
    if t == FieldType.FLOAT:
        parsed, bad = values.parse_floats(source)
        return parsed, bad, Reason.BAD_NUMBER, None
    if t == FieldType.INT:
        parsed, bad = values.parse_ints(source)
        return parsed, bad, Reason.BAD_NUMBER, None
    if t == FieldType.BOOL:
        parsed, bad = values.parse_bools(source)
        return parsed, bad, Reason.BAD_BOOL, None
    if t == FieldType.ENUM:
        parsed, bad = values.parse_choices(source, f.choices,
                                           values.CHOICE_ALIASES.get(f.name))
        allowed = ("应为 " + "、".join(f.choices) + " 之一",
                   "expected one of " + ", ".join(f.choices))
        return parsed, bad, Reason.BAD_CHOICE, allowed
    if t == FieldType.CREDIT_CODE:
        upper = text.str.upper()
        bad = ~credit_code.is_valid(upper)
        return upper, bad, Reason.BAD_CREDIT_CODE, None
    if t == FieldType.CATEGORY:
        resolved = resolve_categories(text)
        bad = resolved["category_code"].isna().to_numpy()
        return resolved, bad, Reason.UNKNOWN_CATEGORY, None
    if t == FieldType.DATUM:
        labels = normalise_datum_labels(text.fillna("").to_numpy(dtype=object))
        parsed = pd.Series(labels, index=text.index, dtype="string").replace("", pd.NA)
        return parsed, parsed.isna().to_numpy(), Reason.UNKNOWN_DATUM, None
    if t == FieldType.CODE:
        return text.str.upper(), None, "", None
    # free text (names, addresses, descriptions) is kept as written, only trimmed: the
    # full-width punctuation of Chinese names is not ours to change
    kept = source.astype("string").str.strip()
    return kept.where(text.notna()), None, "", None
