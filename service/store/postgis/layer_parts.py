"""PostGIS side of a build made in parts (``riskmap build --engine dask``): a worker's
read of its own partition by key, and the layer parts the workers stage.

Each staged layer has one table, ``stage_<token>_layer_<layer>``, shaped as the layer
table; the first part to arrive creates it (under an advisory lock) and every worker
COPYs its part into it in its own transaction. The build's one transaction checks its
rows, renames it to the layer's ``__next`` table, indexes it and swaps it in with the
other layers: the rows are written once, as in process, and the disk holds the old layer
and the new one, never a third copy. A table is a set of rows: every read of a layer
orders by ``fid`` (tiles, pages, worklists), so the parts are not put back in the input's
order (the embedded store, whose files are read in their order, does). A build that fails
leaves only its staging table, which :func:`service.store.postgis.staging.drop_stages`
removes with the token.

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
from sqlalchemy import Connection, text
from sqlalchemy.schema import CreateTable

from service.store.base import Keys
from service.store.errors import StoreError
from service.store.postgis.copy import copy_into, read_table
from service.store.postgis.layers import create_indexes, sql_table, table_exists
from service.store.postgis.staging import batch_prefix
from service.store.postgis.statements import NEXT_SUFFIX
from service.store.tables import Table

KEYS_TABLE = "_build_keys"


def stage_table(token: str, layer: str) -> str:
    """The staging table of ``layer`` in the build ``token``."""
    name = f"{batch_prefix(token)}layer_{re.sub(r'[^0-9a-z]', '_', layer)}"
    if len(name) > 58:  # its key's name (+ "_pkey") must fit PostgreSQL's 63 bytes
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
    # A partition's keys are a few percent of the table. Joined by hash, each partition's
    # read scans the whole table (7.9 s for 200,000 keys at 10M pieces: the build's reads
    # then grow as N x partitions); looked up in the key's index, each costs the same at
    # any N (1.3-2.1 s at 10M, 1.1 s at 1M where the hash join takes 1.0 s). This
    # transaction's planner only (docs/benchmarks.md "Where a worker's time went").
    cursor.execute("SET LOCAL enable_hashjoin = off")
    cursor.execute("SET LOCAL enable_mergejoin = off")
    return read_table(cursor, spec, columns, keyed_by=KEYS_TABLE)


def create_stage(conn: Connection, spec: Table, name: str) -> None:
    """Create staging table ``name`` shaped as ``spec``'s layer table, unless a worker
    did (the check and the creation under one advisory lock, in their own transaction:
    not held while the COPYs run)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
    if not table_exists(conn, name):
        conn.execute(CreateTable(sql_table(spec, name)))


def copy_part(cursor: Cursor, spec: Table, name: str, frame: pd.DataFrame) -> int:
    """COPY a part (conformed) into staging table ``name``."""
    return copy_into(cursor, sql.Identifier(name), spec, frame)


def fill_next_from_stage(conn: Connection, cursor: Cursor, spec: Table, name: str,
                         rows: int) -> None:
    """Staging table ``name`` made ``<table>__next`` (renamed, its key renamed with it,
    indexed), in the caller's transaction. A stage holding other than ``rows`` rows is
    not this layer's: :class:`StoreError`."""
    ident = sql.Identifier
    target = spec.name + NEXT_SUFFIX
    if not table_exists(conn, name):  # no part had a row to stage
        conn.execute(CreateTable(sql_table(spec, name)))
    written = cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(name))
                             ).fetchone()[0]
    if written != rows:
        raise StoreError(f"{spec.name}: the staged parts hold {written} rows, the build "
                         f"made {rows}")
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(target)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(name), ident(target)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
        ident(target), ident(f"{name}_pkey"), ident(f"{target}_pkey")))
    create_indexes(conn, spec, target)
    cursor.execute(sql.SQL("ANALYZE {}").format(ident(target)))
