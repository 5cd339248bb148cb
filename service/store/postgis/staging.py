"""A batch's staging tables: the Dask workers COPY their partitions in parallel, each into
its own UNLOGGED table ``stage_<batch>_<table>_<n>`` committed on its own; the driver then
merges them in ONE transaction (:meth:`PostGISStore.write_batch` of a
:class:`StagedBatch`: upsert by key, audit, rejects, relink, batch record) and drops them
there. Until that commit nothing a reader or the next batch sees has changed: a failed
partition (its COPY, or any other step of the batch) only leaves staging tables, which
:func:`drop_stages` removes, so the store is exactly as it was before the batch.

Staging tables are named from the batch id, never from data, and quoted by psycopg.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from service.store.base import Batch
from service.store.conform import conform_frame
from service.store.layer_parts import token_started
from service.store.postgis.copy import copy_into
from service.store.postgis.models import GEOMETRY_COLUMN
from service.store.tables import ALL_TABLES, TABLES

PREFIX = "stage_"
# Called on the worker before a partition's COPY commits, with the table and partition
# number: tests inject a failure here (a fault in one partition of a batch).
FAULT: Callable[[str, int], None] | None = None


@dataclass
class StagedBatch(Batch):
    """A batch whose tables of ``staged`` (table -> staging tables, in partition order)
    were COPYed by the workers; ``staged_rows`` counts their rows per table."""

    staged: dict[str, list[str]] = field(default_factory=dict)
    staged_rows: dict[str, int] = field(default_factory=dict)


def batch_prefix(batch_id: str) -> str:
    """The name every staging table of ``batch_id`` starts with."""
    return f"{PREFIX}{re.sub(r'[^0-9a-z]', '_', batch_id.lower())}_"


def stage_table(batch_id: str, table: str, n: int) -> str:
    if table not in TABLES:
        raise ValueError(f"not an ingested table: {table!r}")
    name = f"{batch_prefix(batch_id)}{table}_{int(n)}"
    if len(name) > 63:  # PostgreSQL would cut it (and two partitions could collide)
        raise ValueError(f"staging table name too long: {name}")
    return name


def libpq(url: str) -> str:
    """A SQLAlchemy URL of the store as libpq takes it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def copy_partition(url: str, batch_id: str, table: str, n: int, frame: pd.DataFrame) -> int:
    """On a worker: partition ``n`` of ``table``'s rows (as the batch writes them) into a
    new staging table, committed. Returns the rows staged."""
    name = stage_table(batch_id, table, n)
    spec = ALL_TABLES[table]
    conformed = conform_frame(table, frame, batch_id)
    with psycopg.connect(libpq(url), autocommit=False) as conn:
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(
            sql.Identifier(name), sql.Identifier(table)))
        with conn.cursor() as cursor:
            rows = copy_into(cursor, sql.Identifier(name), spec, conformed)
        if FAULT is not None:
            FAULT(table, n)
        conn.commit()
    return rows


def merge_sql(table: str, source: str, target: str | None = None) -> sql.Composed:
    """INSERT every stored column of staging table ``source`` into ``target`` (default
    ``table``, else e.g. the transaction's own stage ``stage_<table>``)."""
    spec = ALL_TABLES[table]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in
                                 [*spec.column_names, *([GEOMETRY_COLUMN] if spec.geometry
                                                        else [])])
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        sql.Identifier(target or table), columns, columns, sql.Identifier(source))


def stage_names(cursor: psycopg.Cursor, batch_id: str) -> list[str]:
    """The staging tables of ``batch_id`` that exist."""
    prefix = batch_prefix(batch_id)
    rows = cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND left(tablename, length(%(p)s)) = %(p)s", {"p": prefix}).fetchall()
    return sorted(r[0] for r in rows)


def stale_stage_names(cursor: psycopg.Cursor, before: datetime) -> list[str]:
    """The staging tables (of batches and of builds) whose batch or build started before
    ``before``: left by a driver that was killed."""
    rows = cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND left(tablename, length(%(p)s)) = %(p)s", {"p": PREFIX}).fetchall()
    found = []
    for (name,) in rows:
        started = token_started(name[len(PREFIX):])
        if started is not None and started < before:
            found.append(name)
    return sorted(found)


def drop_stage_tables(cursor: psycopg.Cursor, names: list[str]) -> None:
    for name in names:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def drop_stages(url: str, batch_id: str) -> int:
    """Drop every staging table of ``batch_id`` (after a failure, or left by a crash);
    returns how many there were."""
    with psycopg.connect(libpq(url), autocommit=True) as conn, conn.cursor() as cursor:
        names = stage_names(cursor, batch_id)
        drop_stage_tables(cursor, names)
    return len(names)
