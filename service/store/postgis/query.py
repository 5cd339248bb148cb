"""A :class:`~service.store.query.LayerQuery` as one SQL statement (SQLAlchemy Core).

Scope and filters become WHERE conditions with bound parameters, a filter expression
(:data:`~service.store.query.Expr`) the same with SQL's own three-valued logic, the
bounding box an ``ST_Intersects`` with ``ST_MakeEnvelope`` (served by the layer's GiST
index), the page an ``ORDER BY [sortby,] fid LIMIT … OFFSET …``; the count is a second
statement in the same snapshot (skipped when the whole selection is fetched anyway, or the
page shows it: a short page), of at most ``count_cap`` rows when the query caps it.
"""

from __future__ import annotations

import functools
import io
from datetime import date, datetime

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql as psycopg_sql
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Float,
    LargeBinary,
    Select,
    Table,
    Text,
    and_,
    any_,
    between,
    bindparam,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from layers.frames import LEVELS
from service.store.arrow import arrow_schema, frame_from_arrow
from service.store.postgis.layers import sql_table
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.query import (
    And,
    Between,
    Compare,
    Condition,
    Const,
    Expr,
    In,
    Intersects,
    IsNull,
    LayerQuery,
    Like,
    Not,
    Or,
    Scalar,
    count_bound,
    page_total,
)
from service.store.tables import LAYER_TABLES
from service.store.tables import Table as Spec

# Above this many values an ``in`` goes as one array parameter (see sql_condition).
ARRAY_VALUES = 64


# The region a scope names (a regulator's: ``county_adcode LIKE '4101%'``) is checked row by
# row, not read from its b-tree, when a bbox at most NARROW_DEG wide and high bounds the
# rows (a z12 tile is 0.088°): PostgreSQL takes the bbox and the region as independent and
# ANDs the region's index into the bbox's, reading every entry of the region (郑州: 749k
# at 5M, 1.5M at 10M) for a bbox that lies inside it; the bbox's own rows are far fewer.
# A wider bbox keeps the planner's choice (a county's index beats a z8 tile's GiST).
REGION_COLUMNS = frozenset({"province_adcode", "city_adcode", "county_adcode"})
NARROW_DEG = 0.1


def narrow(bbox: tuple[float, float, float, float] | None) -> bool:
    """Whether ``bbox`` bounds its rows tightly enough to check the region row by row."""
    return bbox is not None and bbox[2] - bbox[0] <= NARROW_DEG \
        and bbox[3] - bbox[1] <= NARROW_DEG


def in_list(column: ColumnElement, values: list) -> ColumnElement[bool]:
    """``column IN (values)``; of ``level``, one equality per value ORed (the same in SQL's
    logic): PostgreSQL reads ``IN (a, b)`` as ``= ANY`` of an array, which no partial index
    serves, and a level's rows in a bbox have one each (layers.LEVEL_INDEXED); ORed, a
    list of levels is a BitmapOr of them."""
    if getattr(column, "name", None) == "level" and 1 < len(values) <= len(LEVELS):
        return or_(*(column == v for v in values))
    return column.in_(values)


def sql_condition(table: Table, condition: Condition, *, row_by_row: bool = False
                  ) -> ColumnElement[bool]:
    """One :class:`Condition` as a WHERE clause on ``table`` (values as bound parameters);
    with ``row_by_row`` a :data:`REGION_COLUMNS` condition is on ``column || ''``, the same
    values but no index (see :data:`NARROW_DEG`).

    A long list (a grid officer's ~6,000 cells) goes as one JSON text parameter inside
    ``= ANY(ARRAY(SELECT json_array_elements_text(:values)))``, not ``IN (:v1, …, :v6000)``:
    SQLAlchemy and psycopg spend ~100 ms rendering that many placeholders (~10 ms escaping a
    text[] parameter), and the planner, seeing a constant array, estimates each element
    (~25 ms) and then picks a sequential scan (70 ms) over the index probes (~6 ms) it
    takes when the array is a sub-select's result."""
    column: ColumnElement = table.c[condition.column]
    if row_by_row and condition.column in REGION_COLUMNS:
        column = column.concat(literal("", Text()))
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
    return in_list(column, values)


@functools.cache
def layer_sql_table(layer: str) -> Table:
    """The SQLAlchemy table of a layer, built once (the registry does not change)."""
    spec = LAYER_TABLES[layer]
    return sql_table(spec, spec.name)


def run_query(conn: Connection, query: LayerQuery) -> tuple[pd.DataFrame, int]:
    spec = LAYER_TABLES[query.layer]
    table = layer_sql_table(query.layer)
    conditions = [sql_condition(table, c, row_by_row=narrow(query.bbox)) for c in query.where]
    if query.bbox is not None and spec.geometry:
        conditions.append(func.ST_Intersects(
            table.c[GEOMETRY_COLUMN], func.ST_MakeEnvelope(*query.bbox, SRID)))
    if query.filter is not None:
        conditions.append(sql_expr(table, spec, query.filter))
    where = and_(true(), *conditions)
    names = query.read_columns(spec.column_names, False) or spec.column_names
    order = (*sql_order(table, spec, query.order), table.c.fid)
    if query.limit is None:  # every match from offset: as COPY, into Arrow (see copied_frame)
        frame = copied_frame(conn, select(*copied_columns(table, spec, names)).where(
            where).order_by(*order).offset(query.offset), spec, names)
    else:
        statement = select(*selected_columns(table, spec, names, spec.geometry)).where(
            where).order_by(*order).offset(query.offset).limit(query.limit)
        frame = typed_frame(spec, names, conn.execute(statement).all(), bool(spec.geometry))
    # every match was fetched (len counts), the page shows the number, or none is wanted
    if (query.limit is None and query.offset == 0) or not query.count:
        return frame, len(frame)
    shown = page_total(query, len(frame))
    if shown is not None:
        return frame, shown
    return frame, int(conn.execute(count_statement(table, where, count_bound(query))
                                   ).scalar_one())


def count_statement(table: Table, where: ColumnElement[bool], bound: int | None) -> Select:
    """``count(*)`` of the rows ``where`` selects, or of at most ``bound + 1`` of them (a
    LIMIT in a sub-select: no order, so the scan stops at the first ``bound + 1``)."""
    if bound is None:
        return select(func.count()).select_from(table).where(where)
    hits = select(literal(1, BigInteger()).label("one")).select_from(table).where(
        where).limit(bound + 1).subquery()
    return select(func.count()).select_from(hits)


def copied_columns(table: Table, spec: Spec, names: list[str]) -> list[ColumnElement]:
    """``names`` as :func:`selected_columns` has them, then the geometry as hex WKB text
    (``_wkb``), for COPY's text output."""
    columns = selected_columns(table, spec, names, False)
    if spec.geometry:
        columns.append(func.encode(func.ST_AsBinary(table.c[GEOMETRY_COLUMN]),
                                   literal("hex", Text())).label("_wkb"))
    return columns


def copied_frame(conn: Connection, statement: Select, spec: Spec, names: list[str]
                 ) -> pd.DataFrame:
    """The rows of ``statement`` (``names``, then ``_wkb`` for a layer with geometry) as
    :func:`typed_frame` makes them, read as ``COPY (…) TO STDOUT`` in the connection's
    transaction and parsed by Arrow: a whole scope's rows (a city's 258,000 schedule rows
    at 10M) cost ~1 µs a value to box as Python rows and unbox again (1.2 s → 0.8 s).

    COPY takes no server-side parameters: the statement is SQLAlchemy's, compiled for
    psycopg, and its bound values are merged by psycopg's client-side binding (quoted by
    the driver's adapters, as its ``ClientCursor`` does), never formatted into the text
    here."""
    schema = arrow_schema(spec, names)
    if spec.geometry:
        schema = schema.append(pa.field("_wkb", pa.large_string()))
    data = copied_arrow(conn, statement, schema)
    if not spec.geometry:
        return frame_from_arrow(spec, data)
    wkb = data.column("_wkb").to_numpy(zero_copy_only=False)
    return frame_from_arrow(spec, data.drop_columns(["_wkb"]), wkb)


def copied_arrow(conn: Connection, statement: Select, schema: pa.Schema) -> pa.Table:
    """The rows of ``statement`` (its columns named and typed by ``schema``) read as
    ``COPY (…) TO STDOUT`` and parsed by Arrow (see :func:`copied_frame`)."""
    compiled = statement.compile(dialect=conn.dialect,
                                 compile_kwargs={"render_postcompile": True})
    buffer = io.BytesIO()
    copy_sql = psycopg_sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(
        psycopg_sql.SQL(str(compiled)))
    with conn.connection.driver_connection.cursor() as cursor, \
            cursor.copy(copy_sql, compiled.params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(buffer, read_options=pacsv.ReadOptions(
        column_names=schema.names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))


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


# filter expressions and order ----------------------------------------------------------------

def _value(spec: Spec, column: str, value: Scalar) -> ColumnElement:
    """``value`` as a typed bound parameter for a comparison with ``column``."""
    if isinstance(value, datetime):
        return bindparam(None, value, type_=DateTime())
    if isinstance(value, date):
        return bindparam(None, value, type_=Date())
    if isinstance(value, bool):
        return bindparam(None, value, type_=Boolean())
    if isinstance(value, int | float):
        whole = isinstance(value, int) and -(2 ** 63) <= value < 2 ** 63
        if spec.type_of(column) == "int" and whole:
            return bindparam(None, value, type_=BigInteger())
        return bindparam(None, float(value), type_=Float())
    return bindparam(None, str(value), type_=Text())


def _operand(table: Table, spec: Spec, column: str, value: Scalar, *, ordered: bool = False
             ) -> ColumnElement:
    """The column as compared with ``value``: a date as a timestamp against a datetime;
    text in code-point order (``COLLATE "C"``, as Arrow and pandas order it) when
    ``ordered`` (``<``, ``BETWEEN``; equality keeps the column's own collation, so its
    index serves it)."""
    col = table.c[column]
    if isinstance(value, datetime) and spec.type_of(column) == "date":
        return cast(col, DateTime())
    if ordered and spec.type_of(column) == "text":
        return col.collate("C")
    return col


def sql_expr(table: Table, spec: Spec, expr: Expr) -> ColumnElement[bool]:
    """A filter expression as a WHERE clause on ``table``, every value a bound parameter."""
    if isinstance(expr, Const):
        return literal(expr.value, Boolean())
    if isinstance(expr, And):
        return and_(*(sql_expr(table, spec, p) for p in expr.parts))
    if isinstance(expr, Or):
        return or_(*(sql_expr(table, spec, p) for p in expr.parts))
    if isinstance(expr, Not):
        return not_(sql_expr(table, spec, expr.part))
    if isinstance(expr, Intersects):
        shape = func.ST_GeomFromWKB(bindparam(None, expr.wkb, type_=LargeBinary()), SRID)
        return func.ST_Intersects(table.c[GEOMETRY_COLUMN], shape)
    col = table.c[expr.column]
    if isinstance(expr, IsNull):
        return col.is_not(None) if expr.negate else col.is_(None)
    if isinstance(expr, Compare):
        left = _operand(table, spec, expr.column, expr.value,
                        ordered=expr.op not in ("=", "<>"))
        right = _value(spec, expr.column, expr.value)
        return {"=": left.__eq__, "<>": left.__ne__, "<": left.__lt__, "<=": left.__le__,
                ">": left.__gt__, ">=": left.__ge__}[expr.op](right)
    if isinstance(expr, Between):
        left = _operand(table, spec, expr.column, expr.low, ordered=True)
        clause = between(left, _value(spec, expr.column, expr.low),
                         _value(spec, expr.column, expr.high))
    elif isinstance(expr, In):
        if not expr.values:
            clause = and_(col.is_not(None), false())
        else:
            left = _operand(table, spec, expr.column, expr.values[0])
            clause = in_list(left, [_value(spec, expr.column, v) for v in expr.values])
    elif isinstance(expr, Like):  # CQL2's escape is the backslash, as PostgreSQL's
        clause = col.like(bindparam(None, expr.pattern, type_=Text()), escape="\\")
    else:  # pragma: no cover - every node is handled above
        raise TypeError(f"not a filter expression: {expr!r}")
    return not_(clause) if expr.negate else clause


def sql_order(table: Table, spec: Spec, order: tuple[tuple[str, bool], ...]
              ) -> list[ColumnElement]:
    """ORDER BY terms, missing values last either way (as pandas sorts them)."""
    terms = []
    for column, descending in order:
        col = table.c[column].collate("C") if spec.type_of(column) == "text" \
            else table.c[column]
        terms.append((col.desc() if descending else col.asc()).nulls_last())
    return terms
