"""Reading the columns of the frames the layer functions receive, one way everywhere.

A stored table, a graded frame or a hand-built test frame may lack a column or hold it
with another dtype. These helpers read a column whatever it holds: an absent column gives
a default on every row (never a KeyError), and a Series comes back with a fresh
RangeIndex, so it lines up with other columns read the same way. Where two readings really
differ (missing numbers kept as NaN or filled; text trimmed or not) both are here, named
apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from layers.frames import top_category

#: The equipment status of a piece in use (使用登记状态 “在用”).
IN_USE_STATUS = "在用"


# --------------------------------------------------------------------------- pandas columns

def column(frame: pd.DataFrame, name: str, dtype: str | None = None, *,
           default: object = pd.NA) -> pd.Series:
    """``frame[name]`` with a fresh RangeIndex, as ``dtype`` when given; ``default`` on every
    row when the frame lacks the column."""
    if name in frame.columns:
        s = frame[name].reset_index(drop=True)
    else:
        s = pd.Series(default, index=pd.RangeIndex(len(frame)), dtype=object)
    return s.astype(dtype) if dtype else s


def text(frame: pd.DataFrame, name: str, *, strip: bool = False) -> pd.Series:
    """A column as pandas "string" (all <NA> when absent); surrounding blanks trimmed when
    ``strip``."""
    s = column(frame, name, "string")
    return s.str.strip() if strip else s


def numbers(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as float64: NaN where a value is missing or not a number, or the column is
    absent."""
    return pd.to_numeric(column(frame, name), errors="coerce").astype("float64")


def number_array(frame: pd.DataFrame, name: str, fill: float = 0.0) -> np.ndarray:
    """A column as a float64 array, ``fill`` where a value is missing or not a number, or
    the column is absent."""
    values = pd.to_numeric(column(frame, name, default=fill), errors="coerce")
    return values.astype("float64").fillna(fill).to_numpy(dtype=np.float64)


def as_flags(values: pd.Series) -> np.ndarray:
    """Values as a bool array: True only where true (<NA> counts as False)."""
    return pd.Series(values, dtype="boolean").fillna(False).to_numpy(dtype=bool)


def flags(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A boolean column as a bool array (<NA> → False; absent → all False)."""
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return as_flags(frame[name])


def in_use_status(status: pd.Series) -> np.ndarray:
    """In use = status 在用 or unknown: a piece whose status nobody recorded is graded and
    counted, not dropped (:func:`layers.risk.grade_equipment` sets ``in_use`` by this)."""
    s = status.astype("string")
    return (s.isna() | (s == IN_USE_STATUS)).to_numpy(dtype=bool)


def in_use(equipment: pd.DataFrame) -> np.ndarray:
    """Each piece's ``in_use`` flag; from its ``status`` (:func:`in_use_status`) when the
    frame is not graded yet."""
    if "in_use" in equipment.columns:
        return flags(equipment, "in_use")
    return in_use_status(equipment["status"])


def top_categories(equipment: pd.DataFrame) -> pd.Series:
    """The ``top_category`` column as text, else the top category of ``category_code``."""
    if "top_category" in equipment.columns:
        return text(equipment, "top_category")
    return top_category(text(equipment, "category_code"))


# --------------------------------------------------------------------------- Arrow

def arrow_text(values: object) -> pa.Array:
    """Values (a Series, an Index or an array) as an Arrow large_string array; None, NaN
    and <NA> become null."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.array
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def arrow_trimmed(values: pd.Series | np.ndarray) -> pa.Array | pa.ChunkedArray:
    """Values as Arrow strings with surrounding blanks trimmed, read as pandas "string"
    first (so ``1.0`` reads "1.0"); zero-copy from pandas' Arrow-backed strings."""
    s = pd.Series(values).reset_index(drop=True)
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype("string")
    return pc.utf8_trim_whitespace(pa.array(s.array))
