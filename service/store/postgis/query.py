"""A :class:`~service.store.query.LayerQuery` as one SQL statement (SQLAlchemy Core).

Scope and filters become WHERE conditions with bound parameters, the bounding box an
``ST_Intersects`` with ``ST_MakeEnvelope`` (served by the layer's GiST index), the page an
``ORDER BY fid LIMIT … OFFSET …``; the count is a second statement in the same snapshot.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from sqlalchemy import Connection, Table, and_, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from service.store.base import pandas_dtype
from service.store.postgis.layers import sql_table
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.query import Condition, LayerQuery
from service.store.tables import LAYER_TABLES


def sql_condition(table: Table, condition: Condition) -> ColumnElement[bool]:
    """One :class:`Condition` as a WHERE clause on ``table`` (values as bound parameters)."""
    column = table.c[condition.column]
    if not condition.values:
        return false()
    if condition.op == "prefix":
        return or_(*(column.startswith(str(v), autoescape=True) for v in condition.values))
    return column.in_(list(condition.values))


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
    matched = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    columns = [table.c[c] for c in spec.column_names]
    if spec.geometry:
        columns.append(func.ST_AsBinary(table.c[GEOMETRY_COLUMN]).label("_wkb"))
    statement = select(*columns).where(where).order_by(table.c.fid).offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    rows = conn.execute(statement).all()
    names = [*spec.column_names, *(["_wkb"] if spec.geometry else [])]
    raw = pd.DataFrame.from_records(rows, columns=names)
    frame = pd.DataFrame({c: _typed(raw[c], spec.type_of(c)) for c in spec.column_names})
    if spec.geometry:
        wkb = np.asarray([bytes(v) if v is not None else None for v in raw["_wkb"]],
                         dtype=object)
        frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapely.from_wkb(wkb),
                                                               crs=4326), crs=4326)
    return frame, int(matched)


def _typed(values: pd.Series, abstract: str) -> pd.Series:
    if abstract == "json":  # psycopg parses json columns: give the text back
        return pd.Series([None if v is None else orjson.dumps(v).decode() for v in values],
                         dtype="string")
    if abstract in ("date", "timestamp"):
        return pd.to_datetime(values).astype(pandas_dtype(abstract))
    if abstract == "float":
        return pd.to_numeric(values).astype("float64")
    return values.astype(pandas_dtype(abstract))
