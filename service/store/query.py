"""A query on a layer: conditions (scope and filters), a filter expression, a bounding box,
an order and a page.

The same :class:`LayerQuery` runs in both stores: the embedded store applies it to the
layer's frame with boolean masks (:func:`query_frame`), PostGIS turns it into one SQL
statement with bound parameters (``service/store/postgis/query.py``). A caller's scope is
just more conditions, so it is enforced in the query, not after it.

A ``filter`` is a small expression tree (:data:`Expr`, what :mod:`service.cql2` makes of a
CQL2 filter) that both stores evaluate with SQL's three-valued logic: a comparison with a
missing value is unknown, ``NOT`` unknown stays unknown, and only true rows are selected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Union

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

Op = Literal["eq", "in", "prefix", "contains"]


@dataclass(frozen=True)
class Condition:
    """``column`` equals one of ``values`` (eq/in), starts with one of them (prefix) or
    holds one of them anywhere (contains); text is matched literally (no wildcards).
    An empty ``values`` matches nothing (a scope with no cells sees no rows)."""

    column: str
    op: Op
    values: tuple[str | int, ...]


Scalar = str | int | float | bool | date | datetime
CompareOp = Literal["=", "<>", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Compare:
    """``column op value``; a date column compared with a datetime compares as midnight."""

    column: str
    op: CompareOp
    value: Scalar


@dataclass(frozen=True)
class Like:
    """``column LIKE pattern`` as CQL2 has it: ``%`` any run, ``_`` one character, ``\\``
    escapes the next one; case-sensitive."""

    column: str
    pattern: str
    negate: bool = False


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class Between:
    column: str
    low: Scalar
    high: Scalar
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    column: str
    negate: bool = False


@dataclass(frozen=True)
class Intersects:
    """The row's geometry intersects ``wkb`` (lon/lat, EPSG:4326)."""

    wkb: bytes


@dataclass(frozen=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    part: Expr


@dataclass(frozen=True)
class Const:
    """A comparison of two literals, decided when parsed (``1 = 1``)."""

    value: bool


Expr = Union[Compare, Like, In, Between, IsNull, Intersects, And, Or, Not, Const]  # noqa: UP007


def expr_columns(expr: Expr | None) -> set[str]:
    """The columns an expression reads (``geometry`` for a spatial test)."""
    if expr is None or isinstance(expr, Const):
        return set()
    if isinstance(expr, And | Or):
        return set().union(*(expr_columns(p) for p in expr.parts))
    if isinstance(expr, Not):
        return expr_columns(expr.part)
    if isinstance(expr, Intersects):
        return {"geometry"}
    return {expr.column}


def required_geometry(expr: Expr | None) -> shapely.Geometry | None:
    """A geometry every selected row must intersect (an ``S_INTERSECTS`` of the filter or
    of one of its top-level ``AND`` terms), for a spatial index to find candidates."""
    if isinstance(expr, Intersects):
        return shapely.from_wkb(expr.wkb)
    if isinstance(expr, And):
        for part in expr.parts:
            found = required_geometry(part)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class LayerQuery:
    layer: str
    where: tuple[Condition, ...] = ()
    bbox: tuple[float, float, float, float] | None = None   # lon/lat, EPSG:4326
    limit: int | None = 1000
    offset: int = 0
    columns: tuple[str, ...] | None = None   # fields wanted (None = all); fid, geometry always
    filter: Expr | None = None
    #: (column, descending) to order by before ``fid`` (missing values last)
    order: tuple[tuple[str, bool], ...] = ()
    #: whether the number matched is wanted (False: a store may answer the page's length)
    count: bool = True
    #: count at most this many matches (see :func:`count_bound`): None counts them all
    count_cap: int | None = None

    def read_columns(self, names: list[str], geometry: bool) -> list[str] | None:
        """The columns a store reads of a layer with columns ``names`` to answer this query:
        None for all, else ``fid``, the wanted, condition, filter and order columns, then
        ``geometry``."""
        if self.columns is None:
            return None
        wanted = {"fid", *self.columns, *(c.column for c in self.where),
                  *expr_columns(self.filter), *(c for c, _ in self.order)}
        return [c for c in names if c in wanted] + (["geometry"] if geometry else [])


def count_bound(query: LayerQuery) -> int | None:
    """How many matches a capped count counts at most (None: all of them): the query's
    ``count_cap``, or the rows up to the page's end when that is more (so a page past the
    cap still knows whether another follows). A store answers ``matched`` as the number
    when it is at most this bound, else as the bound + 1, "more than the bound": it counts
    ``bound + 1`` rows at most, as a tile draws at most its cap of rows."""
    if query.count_cap is None or query.limit is None:
        return None
    return max(query.count_cap, query.offset + query.limit)


def page_total(query: LayerQuery, returned: int) -> int | None:
    """The number matched when the page itself shows it (a page shorter than its limit,
    and not an empty one past the first row), else None: no count is needed then."""
    if query.limit is not None and returned < query.limit and (returned or not query.offset):
        return query.offset + returned
    return None


def condition_mask(frame: pd.DataFrame, condition: Condition) -> np.ndarray:
    column = frame[condition.column]
    if not condition.values:
        return np.zeros(len(frame), dtype=bool)
    if condition.op in ("prefix", "contains"):
        text = column.astype("string")
        mask = np.zeros(len(frame), dtype=bool)
        for value in condition.values:
            hits = (text.str.startswith(str(value)) if condition.op == "prefix"
                    else text.str.contains(str(value), regex=False))
            mask |= hits.fillna(False).to_numpy(dtype=bool)
        return mask
    return isin(column, condition.values)


def isin(column: pd.Series, values: tuple | list) -> np.ndarray:
    """Where ``column`` holds one of ``values``, as a boolean mask (False for nulls).

    Arrow-backed text goes straight to Arrow's hash lookup: pandas' own ``isin`` boxes every
    value as an Arrow scalar first, ~25 ms for a grid officer's 6,000 cells."""
    dtype = column.dtype
    if (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
            and set(map(type, values)) <= {str}):
        data = pa.array(column.array)
        hits = pc.is_in(data, value_set=pa.array(list(values), type=data.type))
        return pc.fill_null(hits, False).to_numpy(zero_copy_only=False)
    return column.isin(list(values)).fillna(False).to_numpy(dtype=bool)


def text_isin(values: pd.Series | pd.Index | list, among: pd.Series | pd.Index | list
              ) -> np.ndarray:
    """Where each of ``values`` (text) is one of ``among``, as a boolean mask (False for
    nulls), by Arrow's hash lookup: pandas' own ``isin`` on Arrow-backed text builds its
    value set from Python scalars (seconds for a million keys)."""
    found = pc.is_in(arrow_text(values), value_set=arrow_text(among))
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def arrow_text(values: pd.Series | pd.Index | list) -> pa.Array:
    """Text values as one Arrow ``large_string`` array (nulls for missing values)."""
    array = pa.array(pd.array(values, dtype="string[pyarrow]"))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def query_frame(frame: pd.DataFrame, query: LayerQuery) -> tuple[pd.DataFrame, int]:
    """The page of ``frame`` (ordered by ``fid``) that ``query`` selects, and how many
    rows match in all."""
    mask = np.ones(len(frame), dtype=bool)
    for condition in query.where:
        mask &= condition_mask(frame, condition)
    if query.bbox is not None and isinstance(frame, gpd.GeoDataFrame):
        box = shapely.box(*query.bbox)
        geoms = frame.geometry.to_numpy()
        mask &= shapely.intersects(geoms, box) & ~shapely.is_missing(geoms)
    if query.filter is not None:
        mask &= expr_mask(frame, query.filter)
    hits = frame.loc[mask]
    matched = len(hits)
    bound = count_bound(query)
    if bound is not None:  # as PostGIS counts it: at most bound + 1
        matched = min(matched, bound + 1)
    if query.order:
        keys = [c for c, _ in query.order]
        hits = hits.sort_values([*keys, "fid"], ascending=[not d for _, d in query.order] + [True],
                                kind="stable", na_position="last")
    else:
        hits = hits.sort_values("fid", kind="stable")
    end = None if query.limit is None else query.offset + query.limit
    return hits.iloc[query.offset:end].reset_index(drop=True), matched


# filter expressions, evaluated on a frame --------------------------------------------------

def expr_mask(frame: pd.DataFrame, expr: Expr) -> np.ndarray:
    """Where ``expr`` is true on the rows of ``frame`` (unknown counts as false), with
    vectorised masks only."""
    return np.asarray(_truth(frame, expr).fillna(False).to_numpy(dtype=bool), dtype=bool)


def _kleene(values: np.ndarray, unknown: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool),
                                  np.asarray(unknown, dtype=bool))


def _comparable(column: pd.Series, value: Scalar) -> tuple[pd.Series, object]:
    """The column and value in types that compare as SQL compares them."""
    if isinstance(value, date):
        return pd.to_datetime(column), pd.Timestamp(value)
    if isinstance(value, bool):
        return column.astype("boolean"), value
    if isinstance(value, int | float):
        return column.astype("Float64"), float(value)
    return column.astype("string"), value


def _compare(column: pd.Series, op: CompareOp, value: Scalar) -> pd.arrays.BooleanArray:
    unknown = column.isna().to_numpy(dtype=bool)
    col, val = _comparable(column, value)
    result = {"=": col.__eq__, "<>": col.__ne__, "<": col.__lt__, "<=": col.__le__,
              ">": col.__gt__, ">=": col.__ge__}[op](val)
    values = pd.Series(result).fillna(False).to_numpy(dtype=bool)
    return _kleene(values & ~unknown, unknown)


def like_regex(pattern: str) -> str:
    """A CQL2 LIKE pattern as an anchored-by-fullmatch regular expression."""
    out, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _truth(frame: pd.DataFrame, expr: Expr) -> pd.arrays.BooleanArray:
    n = len(frame)
    if isinstance(expr, Const):
        return _kleene(np.full(n, expr.value), np.zeros(n, dtype=bool))
    if isinstance(expr, And | Or):
        parts = [_truth(frame, p) for p in expr.parts]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(expr, And) else (out | part)
        return out
    if isinstance(expr, Not):
        return ~_truth(frame, expr.part)
    if isinstance(expr, Intersects):
        geoms = frame.geometry.to_numpy() if isinstance(frame, gpd.GeoDataFrame) \
            else np.full(n, None)
        missing = shapely.is_missing(geoms)
        hits = shapely.intersects(geoms, shapely.from_wkb(expr.wkb))
        return _kleene(np.asarray(hits, dtype=bool) & ~missing, missing)
    column = frame[expr.column]
    unknown = column.isna().to_numpy(dtype=bool)
    if isinstance(expr, IsNull):
        return _kleene(unknown != expr.negate, np.zeros(n, dtype=bool))
    if isinstance(expr, Compare):
        return _compare(column, expr.op, expr.value)
    if isinstance(expr, Between):
        out = _compare(column, ">=", expr.low) & _compare(column, "<=", expr.high)
    elif isinstance(expr, In):
        if not expr.values:
            out = _kleene(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
        else:
            col, _ = _comparable(column, expr.values[0])
            values = [_comparable(column, v)[1] for v in expr.values]
            hits = col.isin(values).fillna(False).to_numpy(dtype=bool)
            out = _kleene(hits & ~unknown, unknown)
    elif isinstance(expr, Like):
        hits = column.astype("string").str.fullmatch(like_regex(expr.pattern), flags=re.DOTALL)
        out = _kleene(hits.fillna(False).to_numpy(dtype=bool) & ~unknown, unknown)
    else:  # pragma: no cover - every node is handled above
        raise TypeError(f"not a filter expression: {expr!r}")
    return ~out if expr.negate else out
