"""PostGIS side of a build made in parts (``riskmap build --engine dask``): a worker's
read of its own partition by key, and the layer parts the workers stage.

A part is an UNLOGGED table ``stage_<token>_layer_<layer>_<n>`` (committed by its worker,
invisible to readers). The build's one transaction fills the layer's ``__next`` table
from the parts, one after another, then drops them. A table is a set of rows: every read
of a layer orders by ``fid`` (tiles, pages, worklists), so the parts are not sorted back
into the input's order (the embedded store, whose files are read in their order, does).
A build that fails leaves only staging tables, which
:func:`service.store.postgis.staging.drop_stages` removes with the token.

Names come from the build's token and the registry's layer ids, never from data, and
are quoted by psycopg.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import Cursor, sql
from sqlalchemy import Connection, Index
from sqlalchemy.schema import CreateIndex, CreateTable

from service.store.base import Keys
from service.store.errors import StoreError
from service.store.postgis.copy import copy_into, read_table
from service.store.postgis.layers import index_names, sql_table
from service.store.postgis.models import GEOMETRY_COLUMN
from service.store.postgis.staging import batch_prefix
from service.store.postgis.statements import NEXT_SUFFIX
from service.store.tables import Table

KEYS_TABLE = "_build_keys"


def part_table(token: str, layer: str, part: int) -> str:
    name = f"{batch_prefix(token)}layer_{re.sub(r'[^0-9a-z]', '_', layer)}_{int(part)}"
    if len(name) > 63:  # PostgreSQL would cut it (and two parts could collide)
        raise ValueError(f"staging table name too long: {name}")
    return name


def read_keyed(cursor: Cursor, spec: Table, columns: list[str], keys: Keys) -> pd.DataFrame:
    """``columns`` of the rows of ``spec`` keyed ``keys``, in that order (absent keys are
    absent), inside the cursor's transaction: the keys go in by COPY to a temporary table
    dropped at its end, and the rows come out by COPY joined to it."""
    cursor.execute(sql.SQL('CREATE TEMPORARY TABLE {} (_n bigint, _k text COLLATE "C") '
                           "ON COMMIT DROP").format(sql.Identifier(KEYS_TABLE)))
    data = pa.table({"_n": pa.array(np.arange(len(keys), dtype=np.int64)),
                     "_k": pa.array(keys, type=pa.string())})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(data, sink, pacsv.WriteOptions(include_header=False,
                                                   quoting_style="all_valid"))
    with cursor.copy(sql.SQL("COPY {} (_n, _k) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(KEYS_TABLE))) as copy:
        copy.write(memoryview(sink.getvalue()))
    cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(KEYS_TABLE)))
    return read_table(cursor, spec, columns, keyed_by=KEYS_TABLE)


def stage_part(conn: Connection, cursor: Cursor, spec: Table, name: str,
               frame: pd.DataFrame) -> int:
    """Create part table ``name`` (UNLOGGED, no index) and COPY ``frame`` (conformed)
    into it."""
    conn.execute(CreateTable(sql_table(spec, name)))
    cursor.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(sql.Identifier(name)))
    copy_into(cursor, sql.Identifier(name), spec, frame)
    return len(frame)


def fill_next_from_parts(conn: Connection, cursor: Cursor, spec: Table,
                         parts: list[str], rows: int) -> None:
    """``<table>__next`` from the staged ``parts``, indexed, the parts dropped (all in the
    caller's transaction). Parts holding other than ``rows`` rows in all are not this
    layer's: :class:`StoreError`."""
    name = spec.name + NEXT_SUFFIX
    ident = sql.Identifier
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))
    table = sql_table(spec, name)
    conn.execute(CreateTable(table))
    columns = [*spec.column_names, *([GEOMETRY_COLUMN] if spec.geometry else [])]
    listed = sql.SQL(", ").join(ident(c) for c in columns)
    written = 0
    for part in parts:
        cursor.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            ident(name), listed, listed, ident(part)))
        written += cursor.rowcount
    if written != rows:
        raise StoreError(f"{spec.name}: the staged parts hold {written} rows, the build "
                         f"made {rows}")
    for part in parts:
        cursor.execute(sql.SQL("DROP TABLE {}").format(ident(part)))
    for index, column, method in index_names(spec, name):
        conn.execute(CreateIndex(Index(index, table.c[column], postgresql_using=method)))
    cursor.execute(sql.SQL("ANALYZE {}").format(ident(name)))
