"""The PostGIS store: the production backend (SQLAlchemy 2, GeoAlchemy2, psycopg 3).

Opening it runs the Alembic migrations (``alembic upgrade head``) and checks the H3
resolution recorded in ``meta``. A batch is one transaction under an advisory lock (one
writer at a time): each frame is COPYed into a temporary stage table and merged with
``INSERT … ON CONFLICT … DO UPDATE … WHERE row_hash IS DISTINCT FROM …`` (a first big load
into an empty table is COPYed straight in and indexed afterwards), officer cells are
replaced, rejects and the batch record appended and the park/venue links recomputed in SQL
(:func:`relink_sql`). Any error rolls all of it back. Reads go out through COPY as well and
are cached per table until the data version changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from alembic import command
from alembic.config import Config
from psycopg import Cursor
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    create_engine,
    func,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.schema import CreateIndex, DropIndex

from layers.aggregate import summed_by_cell
from service.mvt import BUFFER, EXTENT, BBox, Tile
from service.store.base import (
    Batch,
    Change,
    Evidence,
    Keys,
    LayerBuild,
    Session,
    StagedLayer,
    Store,
    UpsertCounts,
    User,
)
from service.store.changes import audit_row, changed_row, plain, user_audit_row
from service.store.conform import (
    check_layers_current,
    conform_frame,
    conform_layer,
    empty_layer,
    layer_columns,
    layer_table,
)
from service.store.errors import (
    ConflictError,
    DataChanged,
    ResolutionMismatchError,
    SeedSuperseded,
    StoreError,
)
from service.store.history import as_adcodes, empty_history, finish, history_rows
from service.store.location import StoreLocation, store_location
from service.store.postgis import tiles as sql_tiles
from service.store.postgis.copy import copy_frame, copy_query, read_table
from service.store.postgis.layer_parts import (
    copy_part,
    create_stage,
    fill_next_from_stage,
    read_keyed,
    stage_table,
)
from service.store.postgis.layers import (
    COUNTED_LAYERS,
    fill_counts_next,
    fill_next,
    swap_counts_in,
    swap_in,
    table_exists,
)
from service.store.postgis.models import MODELS, Base
from service.store.postgis.query import (
    run_query,
    selected_columns,
    sql_condition,
    typed_frame,
)
from service.store.postgis.risk_sums import (
    RISK_SUFFIX,
    cell_sums,
    fill_risk_sums,
    summable,
    swap_risk_sums_in,
)
from service.store.postgis.staging import (
    StagedBatch,
    drop_stage_tables,
    merge_sql,
    stage_names,
    stale_stage_names,
)
from service.store.postgis.statements import (
    NEXT_SUFFIX,
    cell_counts_sql,
    column_list,
    create_stage_sql,
    expect_name,
    expect_spec,
    expect_table_sql,
    ident,
    relink_sql,
    stage_name,
    unmet_expectations_sql,
    upsert_sql,
)
from service.store.query import Condition, LayerQuery, query_frame
from service.store.tables import (
    ALL_TABLES,
    AUDIT,
    BATCHES,
    LAYER_SPECS,
    LAYER_TABLES,
    LINKS,
    OFFICER_CELLS,
    REGION_HISTORY,
    REJECTS,
    TABLES,
    Table,
)

__all__ = ["PostGISStore", "migrate", "relink_sql"]

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
WRITE_LOCK = 0x52534B57  # "RSKW": pg_advisory_xact_lock key held by the one writer
LAYER_LOCK = 0x52534B4C  # "RSKL": held by the one layer build
POINT_TABLES = ("equipment", "units")
# A load of at least this many rows, and no fewer than the table holds, drops the secondary
# indexes and builds them afterwards, in the same transaction (see PostGISStore._upsert).
BULK_ROWS = 100_000
BULK_INDEX_MEMORY = "256MB"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config located through the package directory, so an installed package
    migrates too; ``connection`` is handed to migrations/env.py."""
    config = Config(str(PACKAGE_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade`` on the engine's database, in one transaction."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


POOL_SIZE, POOL_OVERFLOW = 20, 10  # kept connections, and more for a burst
READS_RECYCLE = 1800  # seconds a connection of the tile reads' pool is kept at most
T = TypeVar("T")


@dataclass
class _Cached:
    version: str
    frame: pd.DataFrame
    columns: frozenset[str]


@dataclass
class _Tx:
    """One batch's transaction: the SQLAlchemy connection and its psycopg cursor."""

    conn: Connection
    cursor: Cursor
    batch_id: str


# JIT off: ST_AsMVT's cost estimate triggers ~30 ms of compilation on every tile, and the
# service's queries are all short. Custom plans always: a statement psycopg has prepared
# (after 5 runs on a connection) is otherwise planned once for any values after 5 more,
# and that generic plan cannot know how much a bbox, a scope prefix or a level selects,
# nor use the per-level GiST indexes (layers.LEVEL_INDEXED): a dense bbox + level items
# page took 27 ms on its generic plan against 4 ms planned with its values at 1M.
SESSION_OPTIONS = "-c jit=off -c plan_cache_mode=force_custom_plan"


class PostGISStore(Store):
    """Tables in PostGIS; one writer at a time (advisory lock), readers never blocked."""

    kind = "postgis"

    def __init__(self, address: str | StoreLocation, h3_resolution: int = 8, *,
                 migrate_schema: bool = True) -> None:
        self._location = (address if isinstance(address, StoreLocation)
                          else store_location(address))
        if self._location.kind != "postgis":
            raise StoreError(f"not a PostgreSQL URL: {self._location.safe}")
        self.h3_resolution = h3_resolution
        self._cache: dict[str, _Cached] = {}
        self._layer_cache: dict[str, _Cached] = {}
        self._verified_build: str | None = None
        self._build: LayerBuild | None = None  # the last build record read
        # SESSION_OPTIONS: JIT off, and every statement planned with its values (see there)
        # a pool as wide as the concurrent requests one server process answers: with
        # SQLAlchemy's default 5 (+10 overflow, closed after use) a burst of 8 tile clients
        # opened ~100 new sessions per 1,000 tiles, each planning afresh (~30 ms); see
        # docs/benchmarks.md "Cold tiles". Connections open only when used.
        self.engine = create_engine(self._location.target, pool_pre_ping=True,
                                    pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                                    connect_args={"options": SESSION_OPTIONS})
        # The tile path's reads (build id, row tile, cell counts, points: each one
        # read-only statement) on their own pool of autocommit connections without a
        # pre-ping: one round trip each instead of four (BEGIN, SELECT 1, the statement,
        # ROLLBACK); cold z12 p50 ~65 → ~53 ms (docs/benchmarks.md "Cold tiles"). A statement
        # in autocommit reads one snapshot, as it did in a READ COMMITTED transaction
        # (where every statement takes a new one), and holds its table locks only while it
        # runs; a connection found dropped is replaced and the read run again (:meth:`_read`).
        self._reads = create_engine(self._location.target, isolation_level="AUTOCOMMIT",
                                    pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                                    pool_recycle=READS_RECYCLE,
                                    connect_args={"options": SESSION_OPTIONS})
        try:
            if migrate_schema:
                migrate(self.engine)
            self._check_meta()
        except OperationalError as exc:
            self.close()
            raise StoreError(f"cannot open the PostGIS store at {self.url}: "
                             f"{exc.orig}") from exc
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostGISStore({self.url!r}, h3_resolution={self.h3_resolution})"

    def close(self) -> None:
        self.engine.dispose()
        self._reads.dispose()
        self._cache.clear()

    def _read(self, run: Callable[[Connection], T]) -> T:
        """``run(conn)`` on an autocommit connection of the tile reads' pool. That pool
        does not ping a connection before lending it, so one that PostgreSQL dropped (a
        restart, an idle timeout) fails its first statement: SQLAlchemy then discards it
        and the rest of the pool, and the read, which writes nothing, runs once more."""
        for attempt in (1, 2):
            try:
                with self._reads.connect() as conn:
                    return run(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        return self._location.safe

    def _check_meta(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value) "
                              "ON CONFLICT (key) DO NOTHING"),
                         {"key": "h3_resolution", "value": str(self.h3_resolution)})
            stored = conn.execute(text("SELECT value FROM meta WHERE key = :key"),
                                  {"key": "h3_resolution"}).scalar_one()
        if int(stored) != self.h3_resolution:
            raise ResolutionMismatchError(
                f"the store at {self.url} holds H3 cells at resolution {stored}, "
                f"but resolution {self.h3_resolution} is configured; set "
                f"RISKMAP_H3_RESOLUTION={stored} or ingest into a new database")

    # reading ---------------------------------------------------------------------------

    def data_version(self) -> str:
        with self.engine.connect() as conn:
            return _version(conn)

    def forget(self, table: str) -> None:
        self._cache.pop(table, None)

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A whole table through COPY; geometry tables return a GeoDataFrame when
        ``columns`` is None or names ``geometry``. Cached per table by data version."""
        spec = self.spec(table)
        wanted = self.read_columns(table, columns)
        with self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn:  # version and rows agree
            version = _version(conn)
            cached = self._cache.get(table)
            if not (cached and cached.version == version and cached.columns.issuperset(wanted)):
                with _cursor(conn) as cursor:
                    frame = read_table(cursor, spec, wanted)
                conn.rollback()
                have = frozenset(frame.columns)
                cached = _Cached(version, frame, have)
                old = self._cache.get(table)
                if not old or old.version != version or have.issuperset(old.columns):
                    self._cache[table] = cached
        frame = cached.frame
        return frame[wanted].copy(deep=False) if columns is not None else frame.copy(deep=False)

    def read_rows(self, table: str, keys: Keys, version: str) -> pd.DataFrame:
        spec = self.spec(table)
        wanted = self.read_columns(table, None)
        with self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn:  # version and rows agree
            now = _version(conn)
            if now != version:
                raise DataChanged(f"{table}: the data changed (version {version} -> {now}) "
                                  "while the build read it")
            with _cursor(conn) as cursor:
                frame = read_keyed(cursor, spec, wanted, keys)
            conn.rollback()
        if len(frame) != len(keys):
            raise DataChanged(f"{table}: {len(keys) - len(frame)} rows the build planned for "
                              "are gone")
        return frame

    def query_table(self, table: str, where: tuple[Condition, ...], order_by: str, *,
                    descending: bool = False, limit: int | None = None, offset: int = 0
                    ) -> tuple[pd.DataFrame, int]:
        spec = self.spec(table)
        if order_by not in spec.column_names:
            raise ValueError(f"{table} has no column {order_by!r}")
        sql = Base.metadata.tables[spec.name]  # the audit and draw tables have no model class
        condition = and_(true(), *(sql_condition(sql, c) for c in where))
        order = sql.c[order_by].desc() if descending else sql.c[order_by].asc()
        return self._page(spec, condition, (order, sql.c[spec.key]), limit, offset)

    def _page(self, spec: Table, condition: ColumnElement, order: tuple, limit: int | None,
              offset: int) -> tuple[pd.DataFrame, int]:
        """One page of ``spec``'s rows and the count of all that match, read together."""
        sql = Base.metadata.tables[spec.name]
        names = list(spec.column_names)
        statement = select(*selected_columns(sql, spec, names, False)).where(
            condition).order_by(*order).offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn:  # count and page agree
            rows = conn.execute(statement).all()
            # a short page shows the number (not an empty one past the first row)
            short = limit is not None and len(rows) < limit and (rows or not offset)
            matched = offset + len(rows) if short else conn.execute(
                select(func.count()).select_from(sql).where(condition)).scalar_one()
        return typed_frame(spec, names, rows, False), int(matched)

    def lookup(self, table: str, column: str, values: tuple | list,
               columns: list[str] | None = None) -> pd.DataFrame:
        """One indexed SELECT (``column = ANY(…)``, values bound), not the cached whole
        table: every change bumps the data version, and re-reading a live table after each
        one is what made worklists slow."""
        spec = self.spec(table)
        wanted = self.read_columns(table, columns)
        if column not in spec.column_names:
            raise ValueError(f"{table} has no column {column!r}")
        sql = Base.metadata.tables[spec.name]  # the audit table has no model class
        names = [c for c in wanted if c != "geometry"]
        geometry = "geometry" in wanted
        statement = select(*selected_columns(sql, spec, names, geometry)).where(
            sql_condition(sql, Condition(column, "in", tuple(values))))
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        frame = typed_frame(spec, names, rows, geometry)
        return frame[wanted] if geometry else frame

    def cell_counts(self, resolution: int, table: str = "equipment") -> pd.DataFrame:
        """Counted by a GROUP BY in SQL, shipped back through COPY."""
        column = self.cell_column(resolution, self.h3_resolution)
        self.spec(table)
        schema = pa.schema([("h3", pa.large_string()), ("count", pa.int64())])
        with self.engine.connect() as conn, _cursor(conn) as cursor:
            data = copy_query(cursor, cell_counts_sql(table, column), schema)
        return pd.DataFrame({
            "h3": pd.array(data.column("h3").to_numpy(zero_copy_only=False), dtype="string"),
            "count": data.column("count").to_numpy().astype("int64"),
        })

    # derived layers ----------------------------------------------------------------------

    def write_layers(self, frames: dict[str, pd.DataFrame], build: LayerBuild,
                     staged: dict[str, StagedLayer] | None = None) -> None:
        staged = staged or {}
        missing = [lid for lid in LAYER_TABLES if lid not in frames and lid not in staged]
        if missing:
            raise StoreError(f"a build must write every layer; missing {missing}")
        conformed = {lid: conform_layer(lid, frames[lid]) for lid in LAYER_TABLES
                     if lid not in staged}
        with _timed("layers", build.build_id), self.engine.begin() as conn, \
                _cursor(conn) as cursor:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LAYER_LOCK})
            for lid in LAYER_TABLES:
                if lid in staged:
                    fill_next_from_stage(conn, cursor, LAYER_TABLES[lid],
                                         stage_table(staged[lid].token, lid),
                                         staged[lid].rows)
                else:
                    fill_next(conn, cursor, LAYER_TABLES[lid], conformed[lid])
            for lid in COUNTED_LAYERS:
                fill_counts_next(cursor, LAYER_TABLES[lid])
            summed = LAYER_TABLES["equipment"].name + RISK_SUFFIX
            fill_risk_sums(cursor, LAYER_TABLES["equipment"].name + NEXT_SUFFIX,
                           summed + NEXT_SUFFIX)
            for lid in LAYER_TABLES:  # the swap: brief exclusive locks, at the very end
                swap_in(cursor, LAYER_TABLES[lid])
            for lid in COUNTED_LAYERS:
                swap_counts_in(cursor, LAYER_TABLES[lid])
            swap_risk_sums_in(cursor, summed + NEXT_SUFFIX, summed)
            # a build written again (same build_id) replaces its rows of the history
            conn.execute(text(f"DELETE FROM {ident(REGION_HISTORY.name)} WHERE build_id = :b"),
                         {"b": build.build_id})
            copy_frame(cursor, REGION_HISTORY.name, REGION_HISTORY,
                       history_rows(conformed["regions"], build,
                                    conformed["insurance"]))
            # seeded tiles belong to the build before (their ETags name it)
            conn.execute(text("DELETE FROM tile_seeds"))
            conn.execute(text(
                "INSERT INTO layer_builds (build_id, built_at, as_of, rules_version, "
                "rules_hash, data_version, report) VALUES (:build_id, :built_at, :as_of, "
                ":rules_version, :rules_hash, :data_version, CAST(:report AS jsonb))"), {
                "build_id": build.build_id, "built_at": _naive_utc(build.built_at),
                "as_of": build.as_of, "rules_version": build.rules_version,
                "rules_hash": build.rules_hash, "data_version": build.data_version,
                "report": json.dumps(build.report, ensure_ascii=False, default=str)})
        self._layer_cache.clear()

    def stage_layer_part(self, layer: str, token: str, part: int, frame: pd.DataFrame
                         ) -> int:
        name, spec = stage_table(token, layer), LAYER_TABLES[layer]
        conformed = conform_layer(layer, frame)
        with self.engine.begin() as conn:
            create_stage(conn, spec, name)
        with self.engine.begin() as conn, _cursor(conn) as cursor:
            return copy_part(cursor, spec, name, conformed)

    def drop_staged_layers(self, token: str) -> int:
        with self.engine.begin() as conn, _cursor(conn) as cursor:
            names = stage_names(cursor, token)
            drop_stage_tables(cursor, names)
        return len(names)

    def drop_stale_stages(self, before: datetime) -> list[str]:
        with self.engine.begin() as conn, _cursor(conn) as cursor:
            names = stale_stage_names(cursor, before)
            drop_stage_tables(cursor, names)
        return names

    def read_layer(self, layer: str, columns: list[str] | None = None) -> pd.DataFrame:
        table = layer_table(layer)
        wanted = layer_columns(layer, columns)
        with self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn:
            build = _layer_build_id(conn)
            cached = self._layer_cache.get(layer)
            if build is None or not table_exists(conn, table.name):
                return empty_layer(layer)[wanted]
            self._check_build(build)
            if not (cached and cached.version == build and cached.columns.issuperset(wanted)):
                with _cursor(conn) as cursor:
                    frame = read_table(cursor, table, wanted)
                conn.rollback()
                cached = _Cached(build, frame, frozenset(frame.columns))
                self._layer_cache[layer] = cached
        frame = cached.frame
        return frame[wanted].copy(deep=False) if columns is not None else frame.copy(deep=False)

    def query_layer(self, query: LayerQuery) -> tuple[pd.DataFrame, int]:
        layer_table(query.layer)
        with self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ") as conn:  # count and page agree
            build = _layer_build_id(conn)
            if build is None or not table_exists(conn, LAYER_TABLES[query.layer].name):
                return query_frame(empty_layer(query.layer), query)
            self._check_build(build)
            return run_query(conn, query)

    def region_history(self, adcodes: str | list[str] | tuple[str, ...],
                       level: str | None = None) -> pd.DataFrame:
        """One indexed SELECT (``adcode = ANY(…)``, values bound)."""
        codes = list(as_adcodes(adcodes))
        names = REGION_HISTORY.column_names
        sql = (f"SELECT {column_list(names)} FROM {ident(REGION_HISTORY.name)} "
               "WHERE adcode = ANY(:codes)" + (" AND level = :level" if level else ""))
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), {"codes": codes, "level": level}).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=names) if rows else \
            empty_history()
        return finish(frame)

    # map tiles: one statement each, in SQL ------------------------------------------------

    def layer_tile(self, layer: str, where: tuple[Condition, ...], tile: Tile, *,
                   cap: int | None, fields: tuple[tuple[str, str], ...]) -> bytes | None:
        return self._read(lambda conn: sql_tiles.mvt(
            conn, layer, where, tile.z, tile.x, tile.y, extent=EXTENT, buffer=BUFFER, cap=cap,
            cell_ids=LAYER_SPECS[layer].cells, fields=fields))

    def layer_cell_counts(self, layer: str, where: tuple[Condition, ...], resolution: int,
                          bbox: BBox | None, levels: tuple[str, ...]
                          ) -> tuple[np.ndarray, np.ndarray]:
        if "h3" not in LAYER_SPECS[layer].field_names:  # cells from the points
            return super().layer_cell_counts(layer, where, resolution, bbox, levels)
        return self._read(lambda conn: sql_tiles.cell_counts(conn, layer, where, resolution,
                                                             bbox, levels))

    def risk_cell_sums(self, where: tuple[Condition, ...], bbox: BBox | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        def read(conn: Connection) -> tuple[np.ndarray, np.ndarray] | None:
            table = summable(conn, where)
            return None if table is None else cell_sums(conn, table, where, bbox)

        got = self._read(read)
        if got is None:  # a filter the sums do not keep, or a build made before them
            return super().risk_cell_sums(where, bbox)
        return summed_by_cell(*got)

    def layer_points(self, layer: str, where: tuple[Condition, ...], bbox: BBox | None,
                     columns: tuple[str, ...]) -> pd.DataFrame:
        return self._read(lambda conn: sql_tiles.layer_points(conn, layer, where, bbox,
                                                              columns))

    def _check_build(self, build_id: str) -> None:
        """The build's tables match this version's registry (checked once per build)."""
        if self._verified_build != build_id:
            check_layers_current(self.layer_build())
            self._verified_build = build_id

    def layer_build(self) -> LayerBuild | None:
        """The build in force; its record (with the build report) is read again only when
        another build has taken over, so asking on every tile costs one short query (one
        round trip: the tile reads' pool, :meth:`_read`)."""
        cached = self._build
        build_id, row = self._read(lambda conn: _build_row(conn, cached))
        if build_id is None or row is None:
            return None if build_id is None else cached
        if row is False:  # replaced between the two statements: ask again
            return self.layer_build()
        self._build = LayerBuild(
            build_id=row.build_id, built_at=row.built_at.replace(tzinfo=UTC), as_of=row.as_of,
            rules_version=row.rules_version, rules_hash=row.rules_hash,
            data_version=row.data_version, report=row.report or {})
        return self._build

    # seeded tiles (migration 0010) -------------------------------------------------------

    def seeded_tile(self, key: str) -> bytes | None:
        """One primary-key read on the tile reads' pool."""
        data = self._read(lambda conn: conn.execute(
            text("SELECT data FROM tile_seeds WHERE etag = :etag"), {"etag": key}).scalar())
        return None if data is None else bytes(data)

    def drop_seeded_tiles(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM tile_seeds"))

    def add_seeded_tiles(self, build_id: str, tiles: list[tuple[str, bytes]]) -> int:
        """Inserted under the layers' lock, in one transaction, only while ``build_id`` is
        in force (a build landing meanwhile waits for it, then deletes them)."""
        if not tiles:
            return 0
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LAYER_LOCK})
            if _layer_build_id(conn) != build_id:
                raise SeedSuperseded(f"build {build_id} is no longer in force")
            result = conn.execute(text(
                "INSERT INTO tile_seeds (etag, build_id, data) VALUES (:etag, :build_id, :data) "
                "ON CONFLICT (etag) DO NOTHING"),
                [{"etag": key, "build_id": build_id, "data": data} for key, data in tiles])
            return result.rowcount

    # changes through the service ---------------------------------------------------------

    def row(self, table: str, key: str) -> dict | None:
        spec = self.spec(table)
        with self.engine.connect() as conn:
            found = conn.execute(text(
                f"SELECT {column_list(spec.column_names)} FROM {ident(table)} "
                f"WHERE {ident(spec.key)} = :key"), {"key": key}).mappings().first()
        return None if found is None else {c: plain(found[c]) for c in spec.column_names}

    def apply_change(self, change: Change) -> tuple[dict | None, dict]:
        spec = self.spec(change.table)
        if spec.geometry:
            raise ValueError(f"changes to {change.table} (a geometry table) go through ingest")
        names = spec.column_names
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
            found = conn.execute(text(
                f"SELECT {column_list(names)} FROM {ident(change.table)} "
                f"WHERE {ident(spec.key)} = :key FOR UPDATE"), {"key": change.key}
            ).mappings().first()
            before = None if found is None else {c: plain(found[c]) for c in names}
            after = changed_row(spec, change, before)
            updates = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in names
                                if c != spec.key)
            placeholders = ", ".join(f"CAST(:{c} AS jsonb)" if t == "json" else f":{c}"
                                     for c, t in spec.columns)
            conn.execute(text(
                f"INSERT INTO {ident(change.table)} ({column_list(names)}) VALUES "
                f"({placeholders}) ON CONFLICT ({ident(spec.key)}) "
                f"DO UPDATE SET {updates}"), after)
            _insert_audit(conn, audit_row(change, before, after))
            _bump_version(conn, after["batch_id"])
        return before, after

    # evidence of hazard rectification (migration 0009) --------------------------------

    _EVIDENCE_COLUMNS = ("evidence_id, hazard_id, filename, media_type, size, sha256, "
                         "uploaded_by, uploaded_at, audit_id")

    def add_evidence(self, evidence: Evidence, content: bytes, audit: dict | None = None
                     ) -> None:
        """The file's row with its bytes and the audit entry, one transaction (no new data
        version)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(text(
                    f"INSERT INTO evidence ({self._EVIDENCE_COLUMNS}, content) VALUES ("
                    ":evidence_id, :hazard_id, :filename, :media_type, :size, :sha256, "
                    ":uploaded_by, :uploaded_at, :audit_id, :content)"),
                    {**evidence.__dict__, "content": content})
                if audit is not None:
                    _insert_audit(conn, audit)
        except IntegrityError:
            raise StoreError(f"evidence {evidence.evidence_id} exists already") from None

    def evidence_for(self, hazard_id: str) -> list[Evidence]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT {self._EVIDENCE_COLUMNS} FROM evidence WHERE hazard_id = :h "
                "ORDER BY uploaded_at, evidence_id"), {"h": hazard_id}).mappings().all()
        return [Evidence(**row) for row in rows]

    def evidence(self, evidence_id: str) -> tuple[Evidence, bytes] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                f"SELECT {self._EVIDENCE_COLUMNS}, content FROM evidence "
                "WHERE evidence_id = :e"), {"e": evidence_id}).mappings().first()
        if row is None:
            return None
        values = dict(row)
        return Evidence(**{k: v for k, v in values.items() if k != "content"}), bytes(
            values["content"])

    # users -------------------------------------------------------------------------------

    _USER_COLUMNS = "user_id, name, role, scope, token_hash, created_at, disabled"

    def add_user(self, user: User, actor: str = "cli") -> None:
        """The user and its audit entry in one transaction (no new data version)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(text(
                    f"INSERT INTO users ({self._USER_COLUMNS}) VALUES (:user_id, :name, :role, "
                    ":scope, :token_hash, :created_at, :disabled)"),
                    {**user.__dict__, "created_at": _naive_utc(user.created_at)})
                _insert_audit(conn, user_audit_row("user.add", user, actor))
        except IntegrityError:
            raise StoreError(f"user {user.user_id} or its token exists already") from None

    def disable_user(self, user_id: str, actor: str = "cli") -> None:
        with self.engine.begin() as conn:
            row = conn.execute(text(
                f"UPDATE users SET disabled = true WHERE user_id = :u "
                f"RETURNING {self._USER_COLUMNS}"), {"u": user_id}).mappings().first()
            if row is None:
                raise StoreError(f"no user {user_id}")
            conn.execute(text("UPDATE sessions SET ended = true WHERE user_id = :u"),
                         {"u": user_id})
            _insert_audit(conn, user_audit_row("user.disable", _user(row), actor))

    def query_audit(self, where: tuple[Condition, ...], *, since: datetime | None = None,
                    until: datetime | None = None, limit: int | None = None, offset: int = 0
                    ) -> tuple[pd.DataFrame, int]:
        """Conditions, times, order and page in the SQL (``at`` is indexed)."""
        sql = Base.metadata.tables[AUDIT.name]
        condition = and_(true(), *(sql_condition(sql, c) for c in where),
                         *([sql.c.at >= since] if since is not None else []),
                         *([sql.c.at < until] if until is not None else []))
        return self._page(AUDIT, condition, (sql.c.at.desc(), sql.c.audit_id.desc()), limit,
                          offset)

    def user_by_token_hash(self, token_hash: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                f"SELECT {self._USER_COLUMNS} FROM users WHERE token_hash = :h "
                "AND NOT coalesce(disabled, false)"), {"h": token_hash}).mappings().first()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT {self._USER_COLUMNS} FROM users ORDER BY user_id")).mappings().all()
        return [_user(r) for r in rows]

    # browser sessions --------------------------------------------------------------------

    _SESSION_COLUMNS = "session_hash, user_id, created_at, last_seen, expires_at, ended"

    def add_session(self, session: Session) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM sessions WHERE ended OR expires_at < :now"),
                         {"now": now})
            conn.execute(text(
                f"INSERT INTO sessions ({self._SESSION_COLUMNS}) VALUES (:session_hash, "
                ":user_id, :created_at, :last_seen, :expires_at, :ended)"), {
                **session.__dict__, **{t: _naive_utc(getattr(session, t)) for t in
                                       ("created_at", "last_seen", "expires_at")}})

    def session_user(self, session_hash: str) -> tuple[Session, User] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT s.session_hash, s.user_id AS session_user, s.created_at AS started, "
                "s.last_seen, s.expires_at, s.ended, "
                f"{', '.join('u.' + c for c in self._USER_COLUMNS.split(', '))} "
                "FROM sessions AS s JOIN users AS u ON u.user_id = s.user_id "
                "WHERE s.session_hash = :h AND NOT coalesce(s.ended, false) "
                "AND NOT coalesce(u.disabled, false)"), {"h": session_hash}).mappings().first()
        if row is None:
            return None
        session = Session(row["session_hash"], row["session_user"], row["started"],
                          row["last_seen"], row["expires_at"], bool(row["ended"]))
        return session, _user({c: row[c] for c in self._USER_COLUMNS.split(", ")})

    def touch_session(self, session_hash: str, last_seen: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE sessions SET last_seen = :t WHERE session_hash = :h"),
                         {"t": _naive_utc(last_seen), "h": session_hash})

    def end_session(self, session_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE sessions SET ended = true WHERE session_hash = :h"),
                         {"h": session_hash})

    # existence and size ----------------------------------------------------------------

    @staticmethod
    def why_missing(location: StoreLocation) -> str | None:
        """The database cannot be reached, or holds no riskmap tables (never migrated).
        A store migrated by an older version is there: opening it migrates it."""
        from sqlalchemy.pool import NullPool

        engine = create_engine(location.target, poolclass=NullPool,
                               connect_args={"connect_timeout": 10})
        try:
            with engine.connect() as conn:
                present = conn.execute(text(
                    "SELECT to_regclass('alembic_version') IS NOT NULL "
                    "AND to_regclass('meta') IS NOT NULL")).scalar_one()
        except OperationalError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            return (f"无法连接数据库 cannot connect: {detail}；请检查数据库服务、数据库名与 URL "
                    "check the server, the database name and the URL")
        finally:
            engine.dispose()
        if not present:
            return "数据库中没有 riskmap 的表 no riskmap tables in the database (not migrated)"
        return None

    def size_bytes(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")
                                    ).scalar_one())

    def row_counts(self) -> dict[str, int]:
        """Exact counts, one statement."""
        names = list(ALL_TABLES)
        sql = " UNION ALL ".join(f"SELECT {i} AS n, count(*) AS c FROM {ident(name)}"
                                 for i, name in enumerate(names))
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql)).all()
        return {names[n]: int(c) for n, c in rows}

    def has_data(self) -> bool:
        sql = " OR ".join(f"EXISTS (SELECT FROM {ident(name)})" for name in TABLES)
        with self.engine.connect() as conn:
            return bool(conn.execute(text(f"SELECT {sql}")).scalar_one())

    def last_batch(self) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                f"SELECT batch_id, started_at, finished_at, files, report FROM "
                f"{ident(BATCHES.name)} ORDER BY finished_at DESC, batch_id DESC LIMIT 1")
            ).mappings().first()
        if row is None:
            return None
        return {**row, "files": row["files"] or [], "report": row["report"] or {}}

    # writing ---------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> dict[str, UpsertCounts]:
        counts: dict[str, UpsertCounts] = {}
        try:
            with _timed("batch", batch.batch_id), self.engine.begin() as conn, \
                    _cursor(conn) as cursor:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
                tx = _Tx(conn, cursor, batch.batch_id)
                for table, expected in batch.expect.items():
                    self._check_expected(tx, table, expected)
                for table, frame in batch.frames.items():
                    counts[table] = self._upsert(tx, table,
                                                 conform_frame(table, frame, batch.batch_id))
                staged = batch.staged if isinstance(batch, StagedBatch) else {}
                for table, names in staged.items():
                    counts[table] = self._upsert_staged(tx, table, names,
                                                        batch.staged_rows.get(table, 0))
                if batch.officer_cells is not None:
                    self._replace_officer_cells(tx, batch.officer_cells)
                if batch.rejects is not None and len(batch.rejects):
                    self._append_rejects(tx, batch)
                if batch.audit is not None and len(batch.audit):
                    copy_frame(cursor, AUDIT.name, AUDIT, conform_frame(AUDIT.name, batch.audit))
                self._analyze(tx, counts)
                self._relink(tx, counts)
                self._record_batch(tx, batch)
                # the workers' staging tables go with the commit (and stay on a rollback:
                # the runner drops them, see staging.drop_stages)
                drop_stage_tables(cursor, [n for names in staged.values() for n in names])
        except IntegrityError as exc:
            raise StoreError(f"batch {batch.batch_id} rejected by the database: "
                             f"{exc.orig}") from exc
        return counts

    @staticmethod
    def _check_expected(tx: _Tx, table: str, expected: pd.DataFrame) -> None:
        """ConflictError unless the rows the batch was checked against are unchanged (under
        the writer's lock, so they stay so until the commit)."""
        if expected.empty:
            return
        key = ALL_TABLES[table].key
        frame = pd.DataFrame({key: expected[key].astype("string"),
                              "row_hash": pd.array(expected["row_hash"], dtype="Int64")})
        tx.conn.execute(text(expect_table_sql(table)))
        copy_frame(tx.cursor, expect_name(table), expect_spec(table), frame)
        changed = tx.conn.execute(text(unmet_expectations_sql(table))).scalar_one()
        if changed:
            raise ConflictError(f"{changed} rows of {table} changed while the batch was "
                                "being checked")

    def _upsert(self, tx: _Tx, table: str, frame: pd.DataFrame) -> UpsertCounts:
        """COPY into a stage table, then merge into the table by key.

        Big loads (``BULK_ROWS`` or more, and at least as many rows as the table holds)
        drop the secondary indexes first and build each once afterwards, 3-4x faster than
        maintaining them row by row; into an empty table the COPY goes straight in (the
        keys are unique, nothing can conflict). DROP INDEX locks the table, so its readers
        wait for the commit: acceptable for loads of that size."""
        if frame.empty:
            return UpsertCounts()
        rows = self._row_estimate(tx, table) if len(frame) >= BULK_ROWS else None
        big = rows is not None and len(frame) >= rows
        with self._indexes_rebuilt(tx, table) if big else contextlib.nullcontext():
            if big and rows == 0:
                with _timed("bulk copy", table):
                    return UpsertCounts(inserted=copy_frame(tx.cursor, table,
                                                            ALL_TABLES[table], frame))
            tx.conn.execute(text(create_stage_sql(table)))
            with _timed("copy", table):
                staged = copy_frame(tx.cursor, stage_name(table), ALL_TABLES[table], frame)
            with _timed("upsert", table):
                inserted, updated = tx.conn.execute(text(upsert_sql(table))).one()
        return UpsertCounts(int(inserted), int(updated), staged - int(inserted) - int(updated))

    def _upsert_staged(self, tx: _Tx, table: str, names: list[str], rows: int
                       ) -> UpsertCounts:
        """:meth:`_upsert` of rows the workers COPYed into the staging tables ``names``
        (``rows`` in all): moved within the server, then merged by key as ``_upsert``
        merges a frame."""
        if not rows:
            return UpsertCounts()
        estimate = self._row_estimate(tx, table) if rows >= BULK_ROWS else None
        big = estimate is not None and rows >= estimate
        with self._indexes_rebuilt(tx, table) if big else contextlib.nullcontext():
            if big and estimate == 0:  # unique keys into an empty table: straight in
                with _timed("bulk merge", table):
                    for name in names:
                        tx.cursor.execute(merge_sql(table, name))
                return UpsertCounts(inserted=rows)
            tx.conn.execute(text(create_stage_sql(table)))
            with _timed("merge", table):
                for name in names:
                    tx.cursor.execute(merge_sql(table, name, stage_name(table)))
            with _timed("upsert", table):
                inserted, updated = tx.conn.execute(text(upsert_sql(table))).one()
        return UpsertCounts(int(inserted), int(updated), rows - int(inserted) - int(updated))

    @staticmethod
    def _row_estimate(tx: _Tx, table: str) -> int:
        """Rows in ``table``: 0 when empty, else the planner's estimate (exact enough)."""
        if tx.conn.execute(text(f"SELECT NOT EXISTS (SELECT FROM {ident(table)})")
                           ).scalar_one():
            return 0
        estimate = tx.conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = "
                                        "to_regclass(:name)"), {"name": table}).scalar()
        if estimate is None or estimate < 0:  # never analysed
            return int(tx.conn.execute(text(f"SELECT count(*) FROM {ident(table)}")
                                       ).scalar_one())
        return int(estimate)

    @staticmethod
    @contextlib.contextmanager
    def _indexes_rebuilt(tx: _Tx, table: str) -> Iterator[None]:
        """Drop the table's secondary indexes (not its key) and build them again after."""
        indexes = sorted(MODELS[table].__table__.indexes, key=lambda i: str(i.name))
        for index in indexes:
            tx.conn.execute(DropIndex(index))
        yield
        with _timed("index", table):
            tx.conn.execute(text("SELECT set_config('maintenance_work_mem', :value, true)"),
                            {"value": BULK_INDEX_MEMORY})
            for index in indexes:
                tx.conn.execute(CreateIndex(index))

    def _replace_officer_cells(self, tx: _Tx, cells: pd.DataFrame) -> None:
        frame = conform_frame(OFFICER_CELLS.name, cells).drop_duplicates(ignore_index=True)
        name = OFFICER_CELLS.name
        tx.conn.execute(text(create_stage_sql(name)))
        copy_frame(tx.cursor, stage_name(name), OFFICER_CELLS, frame)
        tx.conn.execute(text(
            f"DELETE FROM {ident(name)} WHERE officer_id IN "
            f"(SELECT officer_id FROM {ident(stage_name(name))})"))
        tx.conn.execute(text(
            f"INSERT INTO {ident(name)} (officer_id, h3) "
            f"SELECT officer_id, h3 FROM {ident(stage_name(name))}"))

    def _append_rejects(self, tx: _Tx, batch: Batch) -> None:
        """Straight COPY into rejects; reject_id comes from its identity column."""
        rejects = batch.rejects.reset_index(drop=True).assign(reject_id=pd.NA)
        frame = conform_frame(REJECTS.name, rejects, batch.batch_id)
        columns = [c for c in REJECTS.column_names if c != REJECTS.key]
        copy_frame(tx.cursor, REJECTS.name, REJECTS, frame, columns)

    def _analyze(self, tx: _Tx, counts: dict[str, UpsertCounts]) -> None:
        """Fresh statistics before the relink joins when a table changed by a tenth or more
        (or was never analysed), so the planner sees the real sizes; smaller changes are
        left to autovacuum."""
        for table, c in counts.items():
            changed = c.inserted + c.updated
            if not changed:
                continue
            known = tx.conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = "
                                         "to_regclass(:name)"), {"name": table}).scalar()
            if known is None or known < 0 or changed >= 0.1 * known:
                with _timed("analyze", table):
                    tx.conn.execute(text(f"ANALYZE {ident(table)}"))

    def _relink(self, tx: _Tx, counts: dict[str, UpsertCounts]) -> None:
        """Every row when the polygons changed, else only the rows this batch wrote."""
        for table in POINT_TABLES:
            wrote = counts.get(table, UpsertCounts())
            for column, polygons in LINKS:
                changed = counts.get(polygons, UpsertCounts())
                everything = bool(changed.inserted or changed.updated)
                if everything or wrote.inserted or wrote.updated:
                    with _timed(f"relink {column}", table):
                        tx.conn.execute(text(relink_sql(table, column)),
                                        {"everything": everything, "batch_id": tx.batch_id})

    def _record_batch(self, tx: _Tx, batch: Batch) -> None:
        tx.conn.execute(
            text(f"INSERT INTO {ident(BATCHES.name)} (batch_id, started_at, finished_at, "
                 "files, report) VALUES (:batch_id, :started_at, :finished_at, "
                 "CAST(:files AS jsonb), CAST(:report AS jsonb))"),
            {"batch_id": batch.batch_id, "started_at": _naive_utc(batch.started_at),
             "finished_at": datetime.now(UTC).replace(tzinfo=None),
             "files": json.dumps(batch.files, ensure_ascii=False),
             "report": json.dumps(batch.report, ensure_ascii=False, default=str)})
        _bump_version(tx.conn, batch.batch_id)


def _bump_version(conn: Connection, batch_id: str) -> None:
    """A new data version, for caches and ETags (in the writer's transaction)."""
    number = int(_version(conn).split(":", 1)[0]) + 1
    conn.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
                 {"key": "data_version", "value": f"{number}:{batch_id}"})


@contextlib.contextmanager
def _timed(step: str, table: str = "") -> Iterator[None]:
    """Debug log of how long each step of a batch takes (bulk loads are tuned by these)."""
    start = time.perf_counter()
    yield
    log.debug("%s %s: %.2f s", step, table, time.perf_counter() - start)


def _insert_audit(conn: Connection, entry: dict) -> None:
    """Append one entry to the audit trail (in the caller's transaction)."""
    values = ", ".join(f"CAST(:{c} AS jsonb)" if t == "json" else f":{c}"
                       for c, t in AUDIT.columns)
    conn.execute(text(f"INSERT INTO {ident(AUDIT.name)} "
                      f"({column_list(AUDIT.column_names)}) VALUES ({values})"), entry)


def _user(row: object) -> User:
    values = dict(row)  # type: ignore[call-overload]
    return User(**{**values, "created_at": values["created_at"].replace(tzinfo=UTC),
                   "disabled": bool(values["disabled"])})


def _build_row(conn: Connection, cached: LayerBuild | None) -> tuple[str | None, object]:
    """The id of the build in force, and its record: None if ``cached`` is that build,
    False if the build was gone by the second statement (each statement reads its own
    snapshot, in autocommit as in a READ COMMITTED transaction)."""
    build_id = _layer_build_id(conn)
    if build_id is None or (cached is not None and cached.build_id == build_id):
        return build_id, None
    row = conn.execute(text(
        "SELECT build_id, built_at, as_of, rules_version, rules_hash, data_version, "
        "report FROM layer_builds WHERE build_id = :build_id"),
        {"build_id": build_id}).first()
    return build_id, (False if row is None else row)


def _layer_build_id(conn: Connection) -> str | None:
    return conn.execute(text("SELECT build_id FROM layer_builds ORDER BY built_at DESC, "
                             "build_id DESC LIMIT 1")).scalar()


def _version(conn: Connection) -> str:
    value = conn.execute(text("SELECT value FROM meta WHERE key = :key"),
                         {"key": "data_version"}).scalar()
    return value or "0"


def _cursor(conn: Connection) -> Cursor:
    """The psycopg cursor of a SQLAlchemy connection, inside its transaction."""
    return conn.connection.driver_connection.cursor()


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
