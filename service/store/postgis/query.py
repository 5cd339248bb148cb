"""A :class:`~service.store.query.LayerQuery` as one SQL statement (SQLAlchemy Core).

Scope and filters become WHERE conditions with bound parameters, the bounding box an
``ST_Intersects`` with ``ST_MakeEnvelope`` (served by the layer's GiST index), the page an
``ORDER BY fid LIMIT … OFFSET …``; the count is a second statement in the same snapshot
(skipped when the whole selection is fetched anyway).
"""

from __future__ import annotations

import functools

import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from service.store.arrow import arrow_schema, frame_from_arrow
from service.store.postgis.layers import sql_table
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.query import Condition, LayerQuery
from service.store.tables import LAYER_TABLES
from service.store.tables import Table as Spec

# Above this many values an ``in`` goes as one array parameter (see sql_condition).
ARRAY_VALUES = 64


def sql_condition(table: Table, condition: Condition) -> ColumnElement[bool]:
    """One :class:`Condition` as a WHERE clause on ``table`` (values as bound parameters).

    A long list (a grid officer's ~6,000 cells) goes as one JSON text parameter inside
    ``= ANY(ARRAY(SELECT json_array_elements_text(:values)))``, not ``IN (:v1, …, :v6000)``:
    SQLAlchemy and psycopg spend ~100 ms rendering that many placeholders (~10 ms escaping a
    text[] parameter), and the planner, seeing a constant array, estimates each element
    (~25 ms) and then picks a sequential scan (70 ms) over the index probes (~6 ms) it
    takes when the array is a sub-select's result."""
    column = table.c[condition.column]
    values = list(condition.values)
    if not values:
        return false()
    if condition.op == "prefix":
        return or_(*(column.startswith(str(v), autoescape=True) for v in values))
    if condition.op == "contains":  # LIKE '%…%' with %, _ and the escape escaped
        return or_(*(column.contains(str(v), autoescape=True) for v in values))
    if len(values) > ARRAY_VALUES:
        types = set(map(type, values))
        kind = Text if types == {str} else BigInteger if types == {int} else None
        if kind is not None:
            listed = bindparam(None, orjson.dumps(values).decode(), type_=Text)
            element = func.json_array_elements_text(cast(listed, JSON))
            if kind is BigInteger:
                element = cast(element, BigInteger)
            return column == any_(func.array(select(element).scalar_subquery()))
    return column.in_(values)


@functools.cache
def layer_sql_table(layer: str) -> Table:
    """The SQLAlchemy table of a layer, built once (the registry does not change)."""
    spec = LAYER_TABLES[layer]
    return sql_table(spec, spec.name)


def run_query(conn: Connection, query: LayerQuery) -> tuple[pd.DataFrame, int]:
    spec = LAYER_TABLES[query.layer]
    table = layer_sql_table(query.layer)
    conditions = [sql_condition(table, c) for c in query.where]
    if query.bbox is not None and spec.geometry:
        conditions.append(func.ST_Intersects(
            table.c[GEOMETRY_COLUMN], func.ST_MakeEnvelope(*query.bbox, SRID)))
    where = and_(true(), *conditions)
    whole = query.limit is None and query.offset == 0  # every match is fetched: len counts
    matched = None if whole else conn.execute(
        select(func.count()).select_from(table).where(where)).scalar_one()
    names = query.read_columns(spec.column_names, False) or spec.column_names
    statement = select(*selected_columns(table, spec, names, spec.geometry)
                       ).where(where).order_by(table.c.fid).offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    frame = typed_frame(spec, names, conn.execute(statement).all(), bool(spec.geometry))
    return frame, len(frame) if matched is None else int(matched)


def selected_columns(table: Table, spec: Spec, names: list[str], geometry: bool
                     ) -> list[ColumnElement]:
    """``names`` of ``table`` (JSON as its stored text, as COPY and the embedded store give
    it, not parsed and dumped again), then the geometry as WKB (``_wkb``) when asked for."""
    columns: list[ColumnElement] = [
        cast(table.c[c], Text).label(c) if spec.type_of(c) == "json" else table.c[c]
        for c in names]
    if geometry and spec.geometry:
        columns.append(func.ST_AsBinary(table.c[GEOMETRY_COLUMN]).label("_wkb"))
    return columns


def typed_frame(spec: Spec, names: list[str], rows: list, geometry: bool) -> pd.DataFrame:
    """Fetched rows (``names``, then ``_wkb`` when ``geometry``) as a frame in the canonical
    dtypes (a GeoDataFrame with the geometry), through the same Arrow conversion as a COPY
    read: building it column by column in pandas cost ~0.5 ms a column."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(names) + geometry)
    schema = arrow_schema(spec, names)
    data = pa.Table.from_arrays([pa.array(values, type=field.type) for values, field in zip(
        columns, schema, strict=False)], schema=schema)
    return frame_from_arrow(spec, data, columns[-1] if geometry else None)
